# Shared by tests/integration/herdd-*.sh (sourced, not run): a private herdd
# on a temp state dir inside its own network namespace, so its bridges and
# taps vanish with the namespace. Everything is removed on exit, failed or
# not: herdd, every process in the namespace (herd-vmm), the namespace, the
# temp dir.
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
herdd_bin=${HERD_HERDD:-$build/bin/herdd}
herdctl_bin=${HERD_HERDCTL:-$build/bin/herdctl}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
probe=$build/firmware/herd-probe.elf

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, taps)"
# A test that starts no guest sets herdd_lib_no_kvm=1 before sourcing this.
if [ "${herdd_lib_no_kvm:-0}" != 1 ]; then
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is missing or not accessible"
fi
for t in ip qemu-img curl sha256sum; do
    command -v $t >/dev/null || skip "$t is not installed"
done
for f in "$herdd_bin" "$herdctl_bin" "$vmm" "$probe"; do
    [ -x "$f" ] || [ -r "$f" ] || skip "$f is not built"
done

tmp=$(mktemp -d /tmp/herdd-t.XXXXXX)
chmod 755 "$tmp"
ns=hdt$$
sock=$tmp/herdd.sock
herdd_pid=
failures=0
cgmnt=

cleanup() {
    [ -n "$herdd_pid" ] && { kill -KILL "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    sleep 0.2
    ip netns del "$ns" 2>/dev/null
    [ -n "$cgmnt" ] && cgroup_v2_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # DESCRIPTION COMMAND...: fails when the command fails
    local d=$1
    shift
    "$@" || fail "$d"
}

ip netns add "$ns" || skip "cannot create a network namespace"

# cgroup_v2: the host's cgroup v2 hierarchy mounted at a path of our own
# ($cgmnt; `ip netns exec` remounts /sys, so herdd would find no cgroup at
# /sys/fs/cgroup, but other mounts carry into its mount namespace). Sets
# cg_yaml to "cgroup_root: $cgmnt" when the hierarchy has the memory, cpu
# and pids controllers (unified: L1, a pure cgroup2 host), else returns 1
# with cg_yaml empty and cg_why saying why (a hybrid v1/v2 host).
cgroup_v2() {
    local c w
    cg_yaml= cg_why=
    cgmnt=$(mktemp -d /tmp/herd-cg.XXXXXX)
    if ! mount -t cgroup2 none "$cgmnt" 2>"$tmp/cg.err"; then
        cg_why="cannot mount cgroup2: $(cat "$tmp/cg.err")"
        rmdir "$cgmnt"
        cgmnt=
        return 1
    fi
    c=$(cat "$cgmnt/cgroup.controllers")
    for w in memory cpu pids; do
        [[ " $c " == *" $w "* ]] && continue
        cg_why="the cgroup2 hierarchy has no $w controller (controllers: '$c'; a hybrid v1/v2 host?)"
        umount "$cgmnt" && rmdir "$cgmnt"
        cgmnt=
        return 1
    done
    cg_yaml="cgroup_root: $cgmnt"
}

# The groups a failed test left (this state dir's only: herd/<key>), the mount.
cgroup_v2_cleanup() {
    local key d
    key=$(python3 -c '
import sys
h = 2166136261
for c in sys.argv[1].encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
print("%08x" % h)' "$tmp/state")
    for d in "$cgmnt/herd/$key"/vm-*; do
        [ -d "$d" ] || continue
        echo 1 > "$d/cgroup.kill" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
    done
    rmdir "$cgmnt/herd/$key" "$cgmnt/herd" 2>/dev/null
    umount "$cgmnt" 2>/dev/null || umount -l "$cgmnt"
    rmdir "$cgmnt"
}

# write_config [EXTRA YAML LINES]
write_config() {
    cat > "$tmp/herdd.yaml" <<YAML
node: test
state_dir: $tmp/state
image_dirs: ${image_dirs:-[$tmp, $build]}
socket: $sock
vmm: $vmm
network_setup: true
stop_timeout: 5
roles:
  management: {bridge: hbr-mgmt}
  storage: {bridge: hbr-stor}
  service: {bridge: hbr-svc}
  communication: {bridge: hbr-comm}
$*
YAML
}

start_herdd() {
    ip netns exec "$ns" "$herdd_bin" --config "$tmp/herdd.yaml" >> "$tmp/herdd.log" 2>&1 &
    herdd_pid=$!
    for _ in $(seq 100); do
        [ -S "$sock" ] && hc node profile >/dev/null 2>&1 && return 0
        kill -0 "$herdd_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "herdd did not come up:"
    cat "$tmp/herdd.log"
    exit 1
}

stop_herdd() { # SIGNAL
    { kill -"${1:-TERM}" "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
    herdd_pid=
}

hc() { "$herdctl_bin" --socket "$sock" "$@"; }
api() { # METHOD PATH [BODY] -> prints "STATUS BODY"
    local m=$1 p=$2
    shift 2
    curl -s --unix-socket "$sock" -o "$tmp/api.out" -w '%{http_code}' -X "$m" \
        ${1+--data-binary "$1"} "http://herd$p"
    printf ' %s\n' "$(cat "$tmp/api.out")"
}
jget() { # JSON-FILE-OR-TEXT PYTHON-EXPR (d is the document)
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$1"
}

# make_parent: a small raw parent with known content; sets parent, parent_sum
make_parent() {
    parent=$tmp/parent.raw
    head -c 4M /dev/urandom > "$parent"
    truncate -s 16M "$parent"
    chmod 0444 "$parent"
    parent_sum=$(sha256sum < "$parent")
}

add_probe_template() { # [NAME]
    hc template add "${1:-probe}" --image "$parent" --format raw --kernel "$probe" \
        --cmdline "probe.tests=boot probe.idle=1" --mem 64M \
        --nic communication --nic management
}

wait_ready() { # NAME [SECONDS]: bounded by time (in the nested host one
    # round, herdctl and python3, costs about a second)
    local n=$1 deadline=$((EPOCHSECONDS + ${2:-60}))
    while :; do
        [ "$(vm_field "$n" 'd["ready"]' 2>/dev/null)" = True ] && return 0
        [ "$EPOCHSECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# alive PID: the process exists and is not a zombie (an adopted herd-vmm is
# reaped by whoever inherited it, maybe later)
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]
}

vm_field() { # NAME PYTHON-EXPR
    jget "$(hc --json vm inspect "$1")" "$2"
}

finish() {
    if grep -qE 'ERROR: AddressSanitizer|runtime error|ERROR: LeakSanitizer' "$tmp/herdd.log"; then
        grep -A30 -E 'ERROR: AddressSanitizer|runtime error|ERROR: LeakSanitizer' "$tmp/herdd.log" | head -60
        fail "sanitizer report in herdd's log"
    fi
    if [ "$failures" -ne 0 ]; then
        echo "--- herdd log"
        tail -n 40 "$tmp/herdd.log"
        echo "$(basename "$0" .sh): $failures check(s) failed"
        exit 1
    fi
    echo "$(basename "$0" .sh): all checks passed"
    exit 0
}

vmm_count() { # herd-vmm processes of this test (not zombies)
    local n=0 p
    for p in $(ip netns pids "$ns"); do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = herd-vmm ] && alive "$p" && n=$((n + 1))
    done
    echo $n
}

range_vms() { # RANGE [PYTHON-EXPR]: the names of RANGE's guests (v is
    # each guest's JSON; only those for which the expression is true)
    hc --json vm ls --range "$1" | python3 -c '
import json, sys
print(" ".join(v["name"] for v in json.load(sys.stdin) if eval(sys.argv[1])))' "${2:-True}"
}

stop_and_check_overlays() { # NAME: stops every running guest of range NAME
    local v
    for v in $(range_vms "$1"); do
        [ "$(vm_field "$v" 'd["state"]')" = stopped ] || hc vm stop "$v" >/dev/null || fail "stop $v"
        qemu-img check -q "$tmp/state/vms/$v/disk.qcow2" || fail "qemu-img check $v"
    done
}

check_nothing_left() {
    [ "$(vmm_count)" = 0 ] || fail "herd-vmm processes left: $(vmm_count)"
    ip -n "$ns" -o link show | grep -E ': (ht-|hs[msvc]-)' && fail "taps or segment bridges left"
    [ -z "$(ls "$tmp/state/vms")" ] || fail "guest directories left: $(ls "$tmp/state/vms" | head)"
    [ -z "$(ls "$tmp/state/run")" ] || fail "sockets left: $(ls "$tmp/state/run" | head)"
    [ "$(hc --json vm ls)" = "[]" ] || fail "guests still listed"
}

# debian_range_up RANGE SPEC: `range up` of a spec of real Linux guests,
# bounded by $limit. In the nested host only: QEMU's emulated SVM ends about
# 1 Debian boot in 6 to 9 in a guest triple fault or a hang, with QEMU as the
# VMM too (docs/nested-host.md); such a guest is started once more (while
# range up waits, or after it) and must then become ready. Fails the test
# when range up fails and no guest was retried. (Needs common.sh.)
declare -A retried=() size=() changed=()
emulated_fault() { # NAME: sets why when NAME triple-faulted, or its console
    # has been silent for $nested_silence s, in the nested host
    local v=$1 d=$tmp/state/vms/$1 s
    [ "${HERD_NESTED:-0}" = 1 ] && [ -z "${retried[$v]:-}" ] || return 1
    grep -qa 'herd-guest: ready ' "$d/console.log" 2>/dev/null && return 1
    if grep -q 'guest triple fault (KVM_EXIT_SHUTDOWN)' "$d/vmm.log" 2>/dev/null; then
        why="guest triple fault"
        return 0
    fi
    s=$(stat -c %s "$d/console.log" 2>/dev/null || echo 0)
    if [ "$s" != "${size[$v]:-}" ]; then
        size[$v]=$s changed[$v]=$EPOCHSECONDS
        return 1
    fi
    [ $((EPOCHSECONDS - changed[$v])) -ge "$nested_silence" ] || return 1
    why="console silent for $nested_silence s"
}
retry_faulted() { # RANGE
    local v
    for v in $(range_vms "$1" 'v["state"] in ("running", "exited")'); do
        emulated_fault "$v" || continue
        echo "$v: $why in the nested host (the emulated host's fault); starting it once more"
        retried[$v]=1
        unset "size[$v]"
        [ "$(vm_field "$v" 'd["state"]')" = exited ] || hc vm stop "$v" >/dev/null || fail "stop $v"
        hc vm start "$v" >/dev/null || fail "start $v again"
    done
}
debian_range_up() { # RANGE SPEC
    local start=$EPOCHSECONDS up_pid up v
    hc range up "$2" &
    up_pid=$!
    while kill -0 "$up_pid" 2>/dev/null && [ $((EPOCHSECONDS - start)) -lt $((limit + 60)) ]; do
        [ "${HERD_NESTED:-0}" = 1 ] && retry_faulted "$1"
        sleep 2
    done
    wait_bounded "$up_pid" 30
    up=$?
    echo "range up: $((EPOCHSECONDS - start))s"
    [ "${HERD_NESTED:-0}" = 1 ] && retry_faulted "$1" # one that faulted as range up ended
    for v in "${!retried[@]}"; do
        wait_ready "$v" "$((limit - (EPOCHSECONDS - start) > 60 ? limit - (EPOCHSECONDS - start) : 60))" ||
            echo "$v: not ready after its second start"
    done
    [ "$up" -eq 0 ] || [ ${#retried[@]} -gt 0 ] || fail "range up $1"
}

# check_debian_consoles RANGE: every guest of the range reported ready with
# systemd running, shows a login: prompt and its ext4 root on /dev/vda.
check_debian_consoles() {
    local v con state
    for v in $(range_vms "$1"); do
        con=$tmp/state/vms/$v/console.log
        state=$(grep -a 'herd-guest: ready ' "$con" | tail -n 1 | tr -d '\r')
        echo "$v: ${state:-no ready line}"
        if [ -z "$state" ]; then
            echo "--- $v: herd-vmm log"; tail -n 30 "$tmp/state/vms/$v/vmm.log" 2>/dev/null
            echo "--- $v: console (last 30 lines)"; tail -n 30 "$con" | tr -d '\r'
        fi
        grep -q 'state=running' <<<"$state" || fail "$v: systemd is not running cleanly: $state"
        # a ready guest prints login: within moments (getty starts with
        # multi-user); a guest that never got there has nothing to wait for
        wait_line "$con" ' login:' "$([ -n "$state" ] && echo 60 || echo 0)" ||
            fail "$v: no login: prompt on its console"
        grep -qaE 'EXT4-fs \(vda\): mounted' "$con" || fail "$v: no ext4 root on /dev/vda in its console"
    done
}

# start_range_herdd: the herdd of the no-KVM range tests: root has every API
# role, room on 2 CPUs for all their guests (with a /dev/kvm here the probes
# really run), and a probe template with one communication NIC.
start_range_herdd() {
    write_config "users: {0: [sysadmin, secadmin, auditor]}
capacity: {cpu_overcommit: 16}"
    start_herdd
    make_parent
    hc template add probe --image "$parent" --format raw --kernel "$probe" \
        --cmdline "probe.tests=boot probe.idle=1" --mem 64M --nic communication >/dev/null ||
        fail "template add"
}

# start_debian_herdd: the herdd of the Debian range tests (real guests:
# $limit to get ready, vCPU room on small machines); sets parent and
# parent_sum (the guest image's root, read-only). Needs common.sh's $img.
start_debian_herdd() {
    write_config "ready_timeout: $limit
capacity: {cpu_overcommit: 16}"
    start_herdd
    parent=$img/root.img
    parent_sum=$(sha256sum < "$parent")
}

# debian_template NAME [EXTRA-CMDLINE]: the guest image as a template (its
# kernel, initrd and command line, 384M, 1 vCPU, one communication NIC,
# ready when herd-guest-ready says so).
debian_template() {
    hc template add "$1" --image "$parent" --format raw --kernel "$img/vmlinuz" \
        --initrd "$img/initrd.img" --cmdline "$(cat "$img/cmdline")${2:+ $2}" --mem 384M \
        --cpus 1 --nic communication --ready-line "herd-guest: ready" >/dev/null ||
        fail "template add $1"
}

# The snapshot tests' helpers (herdd-snapshot.sh, herdd-checkpoint.sh).
# ticks_template NAME ROUNDS [ARGS...]: a 1-vCPU probe template counting
# timer ticks and writing its disk round by round, one communication NIC.
ticks_template() {
    local name=$1 rounds=$2 extra=${3:-}
    shift 3 2>/dev/null || shift $#
    hc template add "$name" --image "$parent" --format raw --kernel "$probe" --cpus 1 --mem 64M \
        --cmdline "probe.tests=boot,ticks probe.cpus=1 probe.mem=64M probe.ticks.disk=1 probe.ticks.rounds=$rounds${extra:+ $extra}" \
        --nic communication "$@" >/dev/null || fail "template add $name"
}
console_log() { echo "$tmp/state/vms/$1/console.log"; }
expect_reply() { # DESCRIPTION STATUS FIELD "STATUS BODY" (api's answer)
    local got_status=${4%% *} got_field
    got_field=$(jget "${4#* }" 'd.get("field")')
    [ "$got_status" = "$2" ] && [ "$got_field" = "$3" ] || fail "$1: expected $2 [$3], got $4"
}
snap_files() { find "$tmp/state/snapshots" -mindepth 1 2>/dev/null | sort; }
