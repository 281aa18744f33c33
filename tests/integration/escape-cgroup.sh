#!/bin/bash
# herd-test-needs: kvm-cgroup
# The cgroup part of containment (issue 11), played as the attacker: each
# guest's group holds it, and a guest that goes past its pids or memory
# limit is stopped by the kernel, and herdd records it. Runs where the
# host's cgroup v2 hierarchy has the memory, cpu and pids controllers (the
# nested host L1 mounts a pure cgroup2 one; herdd-lib's cgroup_v2 mounts it
# at a path of its own, since ip netns exec remounts /sys); run-all sends it
# to the nested host where this host lacks them (herd-test-needs:
# kvm-cgroup), it skips when run alone without them, and in L1
# (HERD_NESTED=1) fails instead.
#  1. a guest's herd-vmm is in its group: cgroup.procs, memory.max, cpu.max,
#     pids.max (cgroup_pids_max), memory.swap.max 0; a process slipped into
#     the group outlives herd-vmm: herdd kills it (cgroup.kill, logged) and
#     removes the group on stop; the exit record has the group's counters
#     and no limit;
#  2. pids: a guest with 32 vCPUs under cgroup_pids_max 16: thread creation
#     fails (EAGAIN), herd-vmm exits with status 2; exit.limit "pids.max",
#     pids.events max > 0 in the exit record, a vm.limit event, an audit
#     entry, a "herdd: LIMIT:" log line, not restarted (on-failure); the
#     record survives a herdd restart;
#  3. memory: herd-vmm-hooks with HERD_TEST_HOG=memory (passed through the
#     test-only vmm_env list) touches ever more memory once confined, like
#     a compromised herd-vmm: the kernel's OOM killer stops it inside its
#     memory.max (signal 9); exit.limit "memory.max", oom_kill > 0, event,
#     audit, log line, not restarted (always);
#  4. nothing is left under herdd's cgroup directory; the audit log verifies.
# Exit 0 pass, 77 skip, else fail.
set -u
. "$(dirname "$0")/herdd-lib.sh"
. "$(dirname "$0")/common.sh"
hooks=${HERD_VMM_HOOKS:-$build/tests/bin/herd-vmm-hooks}
[ -x "$hooks" ] || skip "$hooks is not built"
if ! cgroup_v2; then
    if [ "${HERD_NESTED:-0}" = 1 ]; then
        echo "FAIL: no usable cgroup v2 in the nested host: $cg_why"
        exit 1
    fi
    skip "no unified cgroup2 hierarchy with memory, cpu and pids controllers here: $cg_why"
fi

config() {
    write_config "$cg_yaml
cgroup_pids_max: 16
capacity: {cpu_overcommit: 64}
vmm_env: [HERD_TEST_HOG]"
    sed -i "s|^vmm: .*|vmm: $hooks|" "$tmp/herdd.yaml"
}

# wait_state NAME STATE SECS: bounded by time
wait_state() {
    local deadline=$((EPOCHSECONDS + $3))
    while [ "$(vm_field "$1" 'd["state"]' 2>/dev/null)" != "$2" ]; do
        [ "$EPOCHSECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# limit_checks NAME LIMIT EVENTS-FILE-KEY SINCE: the exit record, the
# vm.limit event, the audit entry and herdd's log line for a limit hit
limit_checks() {
    local n=$1 lim=$2 key=$3 since=$4 ev ex audit
    ex=$(hc --json vm inspect "$n")
    [ "$(jget "$ex" 'd["exit"].get("limit")')" = "$lim" ] ||
        fail "$n: exit.limit $(jget "$ex" 'd["exit"].get("limit")'), not $lim"
    [ "$(jget "$ex" "d['exit']['cgroup_events']$key > 0")" = True ] ||
        fail "$n: exit.cgroup_events: $(jget "$ex" 'd["exit"].get("cgroup_events")')"
    [ "$(jget "$ex" 'd["restarts"]')" = 0 ] || fail "$n was restarted"
    jget "$ex" 'd["note"]' | grep -q "hit its cgroup's $lim" || fail "$n: note: $(jget "$ex" 'd["note"]')"
    ev=$(api GET "/v1/events?since=$since&type=vm.&name=$n" | cut -d' ' -f2-)
    [ "$(jget "$ev" "sum(e['type'] == 'vm.limit' and e['limit'] == '$lim' for e in d['events'])")" = 1 ] ||
        fail "$n: no vm.limit event for $lim: $ev"
    [ "$(jget "$ev" "[e for e in d['events'] if e['type'] == 'vm.exited'][-1].get('limit')")" = "$lim" ] ||
        fail "$n: vm.exited does not carry the limit"
    [ "$(jget "$ev" 'sum(e["type"] == "vm.restarting" for e in d["events"])')" = 0 ] ||
        fail "$n was restarted (vm.restarting)"
    audit=$(api GET '/v1/audit?limit=50' | cut -d' ' -f2-)
    [ "$(jget "$audit" "sum(e['target'] == '$n' and 'vm.limit' in e['action'] and '$lim' in e['result'] for e in d)")" = 1 ] ||
        fail "$n: no audit entry for $lim: $audit"
    grep -q "^herdd: LIMIT: guest $n (uid [0-9]*) hit its cgroup's $lim" "$tmp/herdd.log" ||
        fail "$n: no LIMIT line in herdd's log"
}

config
start_herdd
make_parent
add_probe_template >/dev/null || fail "template add"
prof=$(hc --json node profile)
[ "$(jget "$prof" 'd["confinement"]["cgroups"]["enabled"]')" = True ] ||
    { fail "herdd does not use $cgmnt: $(jget "$prof" 'd["confinement"]["cgroups"]')"; finish; }
cgdir=$(jget "$prof" 'd["confinement"]["cgroups"]["dir"]')
[ "$(jget "$prof" 'd["confinement"]["cgroups"]["pids_max"]')" = 16 ] || fail "profile: pids_max"
echo "cgroups: $cgdir"

echo "== 1. the guest's group; a stray process in it is killed, the group removed"
hc vm create cg --template probe --start >/dev/null || fail "create cg"
wait_ready cg || fail "cg never became ready"
pid=$(vm_field cg 'd["pid"]')
cg=$(vm_field cg 'd.get("cgroup", "")')
[ "$cg" = "$cgdir/vm-cg" ] || fail "cg's group: '$cg'"
grep -qx "$pid" "$cg/cgroup.procs" || fail "herd-vmm $pid not in $cg/cgroup.procs"
[ "$(cat "$cg/memory.max")" = $(((64 + 16) << 20)) ] || fail "memory.max $(cat "$cg/memory.max")"
[ "$(cat "$cg/cpu.max")" = "100000 100000" ] || fail "cpu.max $(cat "$cg/cpu.max")"
[ "$(cat "$cg/pids.max")" = 16 ] || fail "pids.max $(cat "$cg/pids.max"), not cgroup_pids_max 16"
[ "$(cat "$cg/memory.swap.max" 2>&1)" = 0 ] || fail "memory.swap.max: $(cat "$cg/memory.swap.max" 2>&1)"
# not our child (setsid -f): nothing to reap, no job notice when it is killed
stray=$(setsid -f sh -c 'echo $$; exec sleep 600 >/dev/null 2>&1')
echo "$stray" > "$cg/cgroup.procs" || fail "cannot move a process into $cg"
hc vm stop cg >/dev/null || fail "stop cg"
deadline=$((EPOCHSECONDS + 10))
while alive "$stray" && [ "$EPOCHSECONDS" -lt "$deadline" ]; do sleep 0.1; done
alive "$stray" && { fail "the stray process $stray outlived its group"; kill -KILL "$stray"; }
[ -e "$cg" ] && fail "cg's group left after stop: $(cat "$cg/cgroup.procs")"
grep -q "herdd: cg: cgroup $cg still has processes after herd-vmm ended: killing them" \
    "$tmp/herdd.log" || fail "no cgroup.kill line in herdd's log"
ex=$(hc --json vm inspect cg)
[ "$(jget "$ex" '"limit" in d["exit"]')" = False ] || fail "cg: a limit recorded: $(jget "$ex" 'd["exit"]')"
[ "$(jget "$ex" 'd["exit"]["cgroup_events"]["pids.events"]["max"]')" = 0 ] ||
    fail "cg: exit.cgroup_events: $(jget "$ex" 'd["exit"].get("cgroup_events")')"
hc vm rm cg >/dev/null || fail "rm cg"

echo "== 2. pids.max: 32 vCPUs under cgroup_pids_max 16"
seq0=$(jget "$(api GET '/v1/events?since=0' | cut -d' ' -f2-)" 'd["last"]')
hc vm create threads --template probe --cpus 32 --restart on-failure --start >/dev/null ||
    fail "create threads"
wait_state threads exited 60 || fail "threads is $(vm_field threads 'd["state"]'), not exited"
sleep 1 # a restart (there must be none) would show by now
wait_state threads exited 1 || fail "threads is $(vm_field threads 'd["state"]') (restarted?)"
[ "$(vm_field threads 'd["exit"]["code"]')" = 2 ] || fail "threads: exit $(vm_field threads 'd["exit"]')"
grep -q "cannot start a vCPU thread" "$tmp/state/vms/threads/vmm.log" ||
    fail "threads: vmm.log: $(tail -n 3 "$tmp/state/vms/threads/vmm.log")"
limit_checks threads pids.max "['pids.events']['max']" "$seq0"
echo "threads: $(vm_field threads 'd["exit"]["cgroup_events"]')"
[ -e "$cgdir/vm-threads" ] && fail "threads' group left"

echo "== the exit record survives a herdd restart"
stop_herdd TERM
config
HERD_TEST_HOG=memory start_herdd
[ "$(vm_field threads 'd["exit"].get("limit")')" = pids.max ] ||
    fail "after a restart threads' exit: $(vm_field threads 'd["exit"]')"
hc vm rm threads >/dev/null || fail "rm threads"

echo "== 3. memory.max: a herd-vmm that touches ever more memory"
grep -q "vmm_env: passing 1 variable" "$tmp/herdd.log" || fail "no vmm_env line in herdd's log"
seq0=$(jget "$(api GET '/v1/events?since=0' | cut -d' ' -f2-)" 'd["last"]')
hc vm create hog --template probe --restart always --start >/dev/null || fail "create hog"
wait_line "$tmp/herdd.log" "^herdd: LIMIT: guest hog " 120 || fail "no LIMIT line for hog in 120 s"
wait_state hog exited 30 || fail "hog is $(vm_field hog 'd["state"]'), not exited"
sleep 1
wait_state hog exited 1 || fail "hog is $(vm_field hog 'd["state"]') (restarted?)"
[ "$(vm_field hog 'd["exit"].get("signal")')" = 9 ] || fail "hog: exit $(vm_field hog 'd["exit"]')"
grep -q "test hook: the main thread touches ever more memory" "$tmp/state/vms/hog/vmm.log" ||
    fail "hog: the hook did not run: $(tail -n 3 "$tmp/state/vms/hog/vmm.log")"
grep -q "still running: no memory limit" "$tmp/state/vms/hog/vmm.log" && fail "hog was never stopped"
limit_checks hog memory.max "['memory.events']['oom_kill']" "$seq0"
echo "hog: $(vm_field hog 'd["exit"]["cgroup_events"]')"
hc vm rm hog >/dev/null || fail "rm hog"

echo "== 4. nothing left"
[ -z "$(find "$cgdir" -mindepth 1 -type d)" ] || fail "groups left: $(find "$cgdir" -mindepth 1 -type d)"
hc audit verify >/dev/null || fail "audit verify"
check_nothing_left
finish
