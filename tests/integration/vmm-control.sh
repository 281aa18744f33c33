#!/bin/bash
# herd-test-needs: kvm
# herd-vmm's control socket (--control PATH, docs/control-socket.md), the way
# herdd uses it: a probe guest with probe.idle=1 reaches "herd-probe: ready";
# status fields; pause really takes the vCPUs out of KVM_RUN (no thread in
# ioctl(KVM_RUN), no CPU time) and resume puts them back; malformed, unknown
# and oversize requests get ok:false on a connection that stays usable;
# several clients at once; SIGHUP ignored; a live socket refuses a second
# herd-vmm, a non-socket path is refused, a stale socket (SIGKILL) is
# replaced; stop -> exit 0, "stopped by control request", socket gone; the
# socket also goes on SIGTERM, on a stop while paused and when the VM cannot
# be built. HERD_VMM picks the binary (vmm-sanitizers.sh runs the ASan one).
#
# Exit 0 pass, 77 skip (no /dev/kvm), else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
probe=$build/firmware/herd-probe.elf
client=$build/tests/bin/control-client

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
for f in "$vmm" "$client"; do
    [ -x "$f" ] || { echo "FAIL: $f not built (make)"; exit 1; }
done
[ -r "$probe" ] || { echo "FAIL: $probe not built (make)"; exit 1; }

tmp=$(mktemp -d /tmp/herd-ctl.XXXXXX)
sock=$tmp/vm.sock
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# ask REQUEST-LINE: prints the reply line(s) of one connection.
ask() { printf '%s\n' "$1" | "$client" "$sock" -t 2; }
# field JSON KEY: a top-level scalar (strings unquoted).
field() { sed -n "s/.*\"$2\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" <<<"$1" | head -n1 | tr -d '"'; }

# start [EXTRA ARGS]: a 2-vCPU probe that idles after its tests; sets $pid.
start() {
    : > "$tmp/console.log"
    "$vmm" --kernel "$probe" --cpus 2 --mem 64M \
        --cmdline "probe.tests=boot probe.mem=64M probe.cpus=2 probe.idle=1" \
        --serial "file:$tmp/console.log" --control "$sock" "$@" \
        </dev/null >>"$tmp/vmm.log" 2>&1 &
    pid=$!
}

wait_ready() {
    for _ in $(seq 1 600); do
        grep -qxF "herd-probe: ready" "$tmp/console.log" 2>/dev/null && [ -S "$sock" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    fail "no 'herd-probe: ready' on the console"
    cat "$tmp/console.log" "$tmp/vmm.log"
    return 1
}

# Threads of $pid inside ioctl(fd, KVM_RUN) (0xae80) right now. KVM's own
# worker (kvm-nx-lpage-recovery, a vhost_task listed among the process's
# tasks) shows its creator's syscall: only herd-vmm's threads count (vCPU
# threads are named herd-vcpu, see docs/security.md).
in_kvm_run() {
    local n=0 t
    for t in /proc/"$pid"/task/*; do
        case "$(cat "$t/comm" 2>/dev/null)" in herd-vmm | herd-vcpu) ;; *) continue ;; esac
        grep -qE '^16 0x[0-9a-f]+ 0xae80 ' "$t/syscall" 2>/dev/null && n=$((n + 1))
    done
    echo "$n"
}

# utime+stime of every thread of $pid, in clock ticks.
cpu_ticks() {
    cat /proc/"$pid"/task/*/stat 2>/dev/null | awk '{ s += $14 + $15 } END { print s + 0 }'
}

# wait_kvm_run N: until exactly N threads are in KVM_RUN (5 s).
wait_kvm_run() {
    for _ in $(seq 1 50); do
        [ "$(in_kvm_run)" -eq "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

finish() { # EXPECTED-STATUS WHAT: waits for $pid
    local status
    wait_bounded "$pid" 60
    status=$?
    pid=
    if [ "$status" -ne "$1" ]; then
        fail "$2: exit status $status, expected $1"
        cat "$tmp/vmm.log" "$tmp/term.log" 2>/dev/null | tail -n 60
    fi
}

# --- 1. start, ready, status ---------------------------------------------------
start
wait_ready || exit 1
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket mode $(stat -c %a "$sock"), expected 600"
out=$(ask '{"cmd":"ping"}')
[ "$out" = '{"ok":true}' ] || fail "ping: '$out'"
out=$(ask '{"cmd":"status","id":42}')
echo "status: $out"
[ "$(field "$out" ok)" = true ] || fail "status: not ok"
[ "$(field "$out" state)" = running ] || fail "status: state $(field "$out" state), expected running"
[ "$(field "$out" pid)" = "$pid" ] || fail "status: pid $(field "$out" pid), expected $pid"
[ "$(field "$out" cpus)" = 2 ] || fail "status: cpus $(field "$out" cpus)"
[ "$(field "$out" mem)" = 67108864 ] || fail "status: mem $(field "$out" mem)"
[ "$(field "$out" kernel)" = "$probe" ] || fail "status: kernel $(field "$out" kernel)"
[ "$(field "$out" cmdline)" = "probe.tests=boot probe.mem=64M probe.cpus=2 probe.idle=1" ] ||
    fail "status: cmdline $(field "$out" cmdline)"
[[ $(field "$out" uptime_ms) =~ ^[0-9]+$ ]] || fail "status: uptime_ms"
[[ $(field "$out" boot_marker_us) =~ ^[1-9][0-9]*$ ]] || fail "status: boot_marker_us (probe writes one)"
[ "$(field "$out" id)" = 42 ] || fail "status: id not echoed"
grep -qF '"disks":[],"nics":[]' <<<"$out" || fail "status: disks/nics"

# --- 2. pause / resume -------------------------------------------------------------
wait_kvm_run 2 || fail "running: $(in_kvm_run) threads in KVM_RUN, expected 2 (one per vCPU)"
out=$(ask '{"cmd":"pause"}')
[ "$out" = '{"ok":true}' ] || fail "pause: '$out'"
[ "$(in_kvm_run)" -eq 0 ] || fail "paused: $(in_kvm_run) threads still in KVM_RUN"
out=$(ask '{"cmd":"status"}')
[ "$(field "$out" state)" = paused ] || fail "status after pause: $(field "$out" state)"
out=$(ask '{"cmd":"pause"}')
[ "$out" = '{"ok":true}' ] || fail "second pause (idempotent): '$out'"
t0=$(cpu_ticks)
sleep 1
t1=$(cpu_ticks)
[ "$t1" -le "$((t0 + 1))" ] || fail "paused: CPU time grew from $t0 to $t1 ticks in 1 s"
[ "$(in_kvm_run)" -eq 0 ] || fail "paused: a vCPU went back into KVM_RUN"
out=$(ask '{"cmd":"resume"}')
[ "$out" = '{"ok":true}' ] || fail "resume: '$out'"
out=$(ask '{"cmd":"status"}')
[ "$(field "$out" state)" = running ] || fail "status after resume: $(field "$out" state)"
wait_kvm_run 2 || fail "resumed: $(in_kvm_run) threads in KVM_RUN, expected 2"
out=$(ask '{"cmd":"resume"}')
[ "$out" = '{"ok":true}' ] || fail "resume when running: '$out'"

# --- 3. bad requests; the connection stays usable ------------------------------
{
    printf 'not json\n'
    printf '{"cmd":"reboot"}\n'
    printf '{"cmd":7}\n'
    printf '{"command":"status"}\n'
    printf '[1,2]\n'
    printf '{"cmd":"ping"\n'
    printf '\x00\xff\xfe garbage\n'
    head -c 70000 /dev/zero | tr '\0' 'a'
    printf '\n'
    printf '{"cmd":"ping","id":"after"}\n'
} | "$client" "$sock" -t 2 > "$tmp/bad.out"
cat "$tmp/bad.out"
[ "$(wc -l < "$tmp/bad.out")" -eq 9 ] || fail "bad requests: $(wc -l < "$tmp/bad.out") replies, expected 9 (one per line)"
[ "$(grep -c '^{"ok":false,"error":"' "$tmp/bad.out")" -eq 8 ] || fail "bad requests: not 8 ok:false replies"
grep -q '"error":"malformed JSON' "$tmp/bad.out" || fail "bad JSON: no precise error"
grep -q "unknown command 'reboot'" "$tmp/bad.out" || fail "unknown cmd: no precise error"
grep -q '"error":"request line longer than 65536 bytes"' "$tmp/bad.out" || fail "oversize line: no precise error"
[ "$(tail -n1 "$tmp/bad.out")" = '{"ok":true,"id":"after"}' ] || fail "connection unusable after bad requests"
# A request that is still open at the end of the connection counts too.
out=$(printf '{"cmd":"ping"}' | "$client" "$sock" -t 2)
[ "$out" = '{"ok":true}' ] || fail "request without newline at EOF: '$out'"
kill -0 "$pid" 2>/dev/null || fail "herd-vmm died from bad requests"

# --- 4. several clients at once --------------------------------------------------
coproc held { "$client" "$sock" -t 5; }
echo '{"cmd":"ping","id":1}' >&"${held[1]}"
read -r -t 10 line <&"${held[0]}" || line=
[ "$line" = '{"ok":true,"id":1}' ] || fail "held client: first reply '$line'"
for i in $(seq 1 8); do
    ask '{"cmd":"status"}' > "$tmp/par.$i" &
done
out=$(ask '{"cmd":"status"}')
[ "$(field "$out" state)" = running ] || fail "second client while the first is open: '$out'"
echo '{"cmd":"status","id":2}' >&"${held[1]}"
read -r -t 10 line <&"${held[0]}" || line=
[ "$(field "$line" id)" = 2 ] && [ "$(field "$line" state)" = running ] ||
    fail "held client after others: '$line'"
eval "exec ${held[1]}>&-"
for i in $(seq 1 8); do
    while [ ! -s "$tmp/par.$i" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
done
sleep 0.5
for i in $(seq 1 8); do
    [ "$(field "$(cat "$tmp/par.$i")" state)" = running ] || fail "parallel client $i: '$(cat "$tmp/par.$i")'"
done

# --- 5. SIGHUP (a closed terminal) does not stop a supervised guest -------------
kill -HUP "$pid"
sleep 0.3
kill -0 "$pid" 2>/dev/null || fail "SIGHUP stopped herd-vmm under --control"
[ "$(ask '{"cmd":"ping"}')" = '{"ok":true}' ] || fail "ping after SIGHUP"

# --- 6. a live socket is refused; a non-socket path too ------------------------
first=$pid
out=$(timeout 60 "$vmm" --kernel "$probe" --control "$sock" --serial none </dev/null 2>&1)
status=$?
[ "$status" -eq 2 ] || fail "second herd-vmm on a live socket: exit $status, expected 2"
grep -q "is a live socket" <<<"$out" || fail "second herd-vmm: message '$out'"
[ -S "$sock" ] && [ "$(ask '{"cmd":"ping"}')" = '{"ok":true}' ] ||
    fail "the refused second herd-vmm disturbed the first one's socket"
touch "$tmp/plain"
out=$(timeout 60 "$vmm" --kernel "$probe" --control "$tmp/plain" --serial none </dev/null 2>&1)
status=$?
[ "$status" -eq 2 ] && grep -q "exists and is not a socket" <<<"$out" ||
    fail "non-socket path: exit $status, '$out'"
[ -f "$tmp/plain" ] || fail "non-socket path was removed"
pid=$first

# --- 7. stop --------------------------------------------------------------------
out=$(ask '{"cmd":"stop"}')
[ "$out" = '{"ok":true}' ] || fail "stop: '$out'"
finish 0 "stop"
grep -q "stopped by control request" "$tmp/vmm.log" || fail "stop: no log line"
[ -e "$sock" ] && fail "stop: socket file left behind"

# --- 8. SIGKILL leaves a stale socket; the next start replaces it ------------------
: > "$tmp/vmm.log"
start
wait_ready || exit 1
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
[ -S "$sock" ] || fail "SIGKILL: expected a stale socket file"
start
wait_ready || exit 1
grep -q "removed the stale socket" "$tmp/vmm.log" || fail "stale socket: no log line"
[ "$(ask '{"cmd":"ping"}')" = '{"ok":true}' ] || fail "ping after replacing a stale socket"
# stop while paused: still a clean exit.
[ "$(ask '{"cmd":"pause"}')" = '{"ok":true}' ] || fail "pause before stop"
[ "$(ask '{"cmd":"stop"}')" = '{"ok":true}' ] || fail "stop while paused"
finish 0 "stop while paused"
[ -e "$sock" ] && fail "stop while paused: socket left behind"

# --- 9. other exit paths remove the socket -----------------------------------------
cat > "$tmp/vm.json" <<JSON
{"kernel": "$probe", "cmdline": "probe.tests= probe.idle=1", "serial": "none",
 "control": "$sock"}
JSON
"$vmm" --config "$tmp/vm.json" </dev/null > "$tmp/term.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ "$(ask '{"cmd":"ping"}')" = '{"ok":true}' ] || fail "\"control\" in --config"
kill -TERM "$pid"
finish 143 "SIGTERM"
[ -e "$sock" ] && fail "SIGTERM: socket left behind"
out=$(timeout 60 "$vmm" --kernel "$tmp/missing" --control "$sock" </dev/null 2>&1)
status=$?
[ "$status" -eq 2 ] || fail "missing kernel: exit $status"
[ -e "$sock" ] && fail "herd-vmm that could not build its VM left its socket"
out=$(timeout 60 "$vmm" --kernel "$probe" --control "$tmp/$(printf 'x%.0s' $(seq 1 120))" </dev/null 2>&1)
[ $? -eq 2 ] && grep -q "a unix socket path holds at most" <<<"$out" || fail "long path: '$out'"

if [ "$failures" -ne 0 ]; then
    echo "vmm-control: $failures check(s) failed"
    exit 1
fi
echo "vmm-control: all checks passed"
