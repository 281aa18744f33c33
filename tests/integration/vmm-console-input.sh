#!/bin/bash
# herd-test-needs: kvm
# Console input through the control socket: {"cmd":"input","data":...}
# reaches the guest's UART (tests/guests/echo.S echoes it and exits on 'q'),
# bad input requests get precise errors, and it works under the seccomp
# filters (the control thread raises the UART interrupt).
# Exit 0 pass, 77 skip (no /dev/kvm), else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
client=$build/tests/bin/control-client
guest=$build/tests/guests/echo.elf

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$vmm" --kernel "$guest" --control "$tmp/c.sock" --serial "file:$tmp/console.log" \
    </dev/null > "$tmp/vmm.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    grep -q "E>" "$tmp/console.log" 2>/dev/null && [ -S "$tmp/c.sock" ] && break
    sleep 0.05
done
ask() { printf '%s\n' "$1" | "$client" "$tmp/c.sock" 2>&1; }

out=$(ask '{"cmd":"input"}')
grep -q '"ok":false.*input needs \\"data\\"' <<<"$out" || fail "input without data: $out"
out=$(ask '{"cmd":"ping","data":"x"}')
grep -q '"ok":false.*only for the input command' <<<"$out" || fail "data on ping: $out"
out=$(ask "{\"cmd\":\"input\",\"data\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}")
grep -q '"ok":false.*longer than 4096' <<<"$out" || fail "oversize input: ${out:0:120}"
out=$(ask '{"cmd":"input","data":"hello herd","id":7}')
grep -q '"ok":true,"accepted":10,"id":7' <<<"$out" || fail "input: $out"
for _ in $(seq 100); do
    grep -q "hello herd" "$tmp/console.log" && break
    sleep 0.05
done
grep -q "E>hello herd" "$tmp/console.log" || fail "the guest did not echo the input"
ask '{"cmd":"input","data":"q"}' > /dev/null
wait_bounded "$pid" 30
status=$?
pid=
[ "$status" -eq 1 ] || fail "the guest did not see 'q' (exit status $status, expected 1)"
cat "$tmp/console.log"; echo; cat "$tmp/vmm.log"
[ "$failures" -eq 0 ] || exit 1
echo "vmm-console-input: all checks passed"
