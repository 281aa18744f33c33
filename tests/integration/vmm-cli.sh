#!/bin/bash
# herd-test-needs: kvm
# herd-vmm's user-facing contract: --help/--version, --config JSON equivalent
# to the options, precise errors (exit 2, nothing started) for bad options,
# bad JSON, unusable kernels; and how a guest's end maps to the exit status:
# debug-exit -> (v<<1)|1, i8042 reset -> 0, triple fault -> 4 with the vCPU
# registers, SIGTERM -> 128+15, --serial file: captures the console.
#
# Exit 0 pass, 77 skip (no /dev/kvm), else fail.
set -u
. "$(dirname "$0")/common.sh"
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
probe=$build/firmware/herd-probe.elf
guests=$build/tests/guests

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run ARGS...: sets $out (stdout+stderr) and $status.
run() {
    out=$(timeout 60 "$vmm" "$@" </dev/null 2>&1)
    status=$?
    printf '%s\n' "--- herd-vmm $* (exit $status)" "$out"
}

expect() { # STATUS REGEX WHAT
    [ "$status" -eq "$1" ] || fail "$3: exit status $status, expected $1"
    grep -qE -- "$2" <<<"$out" || fail "$3: output lacks /$2/"
}

# Help and version.
run --help
expect 0 "--kernel PATH" "--help"
grep -q -- "--config FILE" <<<"$out" || fail "--help does not document --config"
grep -q "Exit status" <<<"$out" || fail "--help does not document exit statuses"
run --version
expect 0 "^herd-vmm [0-9]+\.[0-9]+" "--version"

# Bad options: exit 2 and a message that names the problem.
run
expect 2 "no kernel" "no --kernel"
run --kernel "$probe" --mem lots
expect 2 "mem: 'lots' is not a size" "bad --mem"
run --kernel "$probe" --mem 1M
expect 2 "at least 4 MiB" "tiny --mem"
run --kernel "$probe" --cpus 0
expect 2 "cpus: '0'" "--cpus 0"
run --kernel "$probe" --cpus 999
expect 2 "cpus: '999'" "--cpus 999"
run --kernel "$probe" --serial tcp:1
expect 2 "serial: 'tcp:1'" "bad --serial"
run --kernel "$probe" --frobnicate
expect 2 "unknown option '--frobnicate'" "unknown option"
run --kernel "$tmp/missing"
expect 2 "kernel $tmp/missing: No such file" "missing kernel"
head -c 4096 /dev/urandom > "$tmp/junk"
run --kernel "$tmp/junk"
expect 2 "not a kernel herd-vmm can boot" "junk kernel"
head -c 100 "$probe" > "$tmp/short.elf"
run --kernel "$tmp/short.elf"
expect 2 "ELF: program header table" "truncated ELF"
cp "$guests/i8042-reset.elf" "$tmp/nonote.elf"
# Overwrite the note type (18 -> 19) so the PVH entry note disappears.
off=$(grep -obUaP '\x04\x00\x00\x00\x04\x00\x00\x00\x12\x00\x00\x00Xen' "$tmp/nonote.elf" | head -n1 | cut -d: -f1)
printf '\x13' | dd of="$tmp/nonote.elf" bs=1 seek=$((off + 8)) conv=notrunc 2>/dev/null
run --kernel "$tmp/nonote.elf"
expect 2 "no PVH entry note" "ELF without PVH note"

# --config: same keys as the options; later options override it.
cat > "$tmp/vm.json" <<JSON
{"kernel": "$probe", "mem": "64M", "cpus": 2,
 "cmdline": "probe.tests=boot probe.mem=64M probe.cpus=2"}
JSON
run --config "$tmp/vm.json"
expect 1 "herd-probe: 1 passed, 0 failed" "--config boots the probe"
grep -qxF "herd-probe: cpus: 2 (mptable)" <<<"$out" || fail "--config cpus=2 not applied"
run --config "$tmp/vm.json" --cpus 1 --cmdline "probe.tests=boot probe.cpus=1"
expect 1 "herd-probe: cpus: 1 \(mptable\)" "options after --config override it"
echo '{"kernel": "x", "memory": "64M"}' > "$tmp/bad1.json"
run --config "$tmp/bad1.json"
expect 2 "unknown setting 'memory'" "unknown JSON key"
echo '{"kernel": "x", "cpus": "two"}' > "$tmp/bad2.json"
run --config "$tmp/bad2.json"
expect 2 "cpus: 'two'" "bad JSON value"
echo '{"kernel": ["x"]}' > "$tmp/bad3.json"
run --config "$tmp/bad3.json"
expect 2 "kernel: wrong type" "wrong JSON type"
echo '{"kernel": "x",' > "$tmp/bad4.json"
run --config "$tmp/bad4.json"
expect 2 "bad4.json:[0-9]+:[0-9]+:" "malformed JSON names line and column"

# How guests end.
run --kernel "$guests/i8042-reset.elf"
expect 0 "guest reset \(i8042\)" "i8042 reset ends with status 0"
run --kernel "$guests/triple-fault.elf"
expect 4 "guest triple fault" "triple fault"
if [ -d /sys/module/kvm_amd ]; then
    # AMD SVM: KVM puts the vCPU through INIT before it reports
    # KVM_EXIT_SHUTDOWN, so the dump shows the reset state, not the fault.
    grep -qE "RIP=000000000000fff0" <<<"$out" || fail "triple fault (SVM): registers not in the message"
    grep -qE "^CS=f000 base=ffff0000 " <<<"$out" || fail "triple fault (SVM): segment state not in the message"
else
    # Intel VMX, PVM: the registers at the fault.
    grep -qE "RSI=000000000000dead" <<<"$out" || fail "triple fault: registers not in the message"
    grep -qE "^CS=0008 " <<<"$out" || fail "triple fault: segment state not in the message"
fi

# --serial file: the console goes to the file, not stdout.
run --kernel "$probe" --serial "file:$tmp/console.log" --cmdline "probe.tests=serial"
expect 1 "debug-exit" "--serial file"
grep -q "herd-probe" <<<"$out" && fail "--serial file: console leaked to stdout"
grep -qxF "herd-probe: 1 passed, 0 failed" "$tmp/console.log" || fail "--serial file: console missing"
# --serial file: on a FIFO nobody reads (herdd's console pipe while herdd
# restarts): the guest runs anyway; its output waits in the pipe for a reader
mkfifo "$tmp/console.fifo"
run --kernel "$probe" --serial "file:$tmp/console.fifo" --cmdline "probe.tests=serial"
expect 1 "debug-exit" "--serial file: a FIFO without a reader"
run --kernel "$probe" --serial none --cmdline "probe.tests=serial"
expect 1 "debug-exit" "--serial none"
grep -q "herd-probe:" <<<"$out" && fail "--serial none still printed the console"

# A signal ends the guest with 128+N and no stray process.
"$vmm" --kernel "$probe" --cmdline "probe.tests= probe.idle=1" --serial none \
    </dev/null > "$tmp/idle.log" 2>&1 &
pid=$!
sleep 1
kill -TERM "$pid"
wait_bounded "$pid" 30
status=$?
[ "$status" -eq 143 ] || fail "SIGTERM: exit status $status, expected 143"
grep -q "stopped by signal 15" "$tmp/idle.log" || fail "SIGTERM: no log line"

if [ "$failures" -ne 0 ]; then
    echo "vmm-cli: $failures check(s) failed"
    exit 1
fi
echo "vmm-cli: all checks passed"
