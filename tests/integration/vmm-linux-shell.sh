#!/bin/bash
# herd-test-needs: kvm-linux
# Real Linux to a shell, through both boot paths and with 1 and 2 vCPUs:
# the Debian cloud kernel as bzImage (64-bit Linux boot protocol) and as the
# PVH vmlinux, with a busybox initramfs. Each guest must
#   - reach the busybox shell and write its marker from userspace through
#     /dev/ttyS0 (the 8250 driver found COM1 in the DSDT and got its IRQ:
#     without that, user writes to the port fail with EIO),
#   - show the UART's interrupt as IO-APIC pin 4, delivered at least once,
#   - end herd-vmm with status 0 through `poweroff -f` (ACPI S5 via the FADT
#     sleep control register) or `reboot -f` (no reboot=k: Linux's own
#     order on a hardware-reduced platform).
# Four runs cover each kernel format and each vCPU count with both ends.
#
# Needs hardware virtualization (vmx/svm): on PVM hosts the decompressor and
# kernel run under KVM's instruction emulator and never reach userspace, so
# the test skips there with that reason (tools in /work/shared run it in a
# nested SVM host).
#
# Exit 0 pass, 77 skip (reason on the last line), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=$build/bin/herd-vmm
linux=$root/build/linux
limit=${HERD_LINUX_TIMEOUT:-300}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
if ! grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then
    echo "skip: host CPU has no vmx/svm (KVM here is PVM: guest CPL0 code is emulated, a stock kernel cannot reach userspace)"
    exit 77
fi
[ -s "$linux/vmlinuz" ] && [ -s "$linux/vmlinux" ] || "$root/tools/fetch-test-kernel" || true
if [ ! -s "$linux/vmlinuz" ] || [ ! -s "$linux/vmlinux" ]; then
    echo "skip: no test kernel in $linux (tools/fetch-test-kernel failed)"
    exit 77
fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
    echo "skip: busybox-static is not installed (tools/install-deps installs it)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/initrd/bin" "$tmp/initrd/proc" "$tmp/initrd/sys" "$tmp/initrd/dev"
cp "$busybox" "$tmp/initrd/bin/busybox"
cat > "$tmp/initrd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Userspace writes through the UART's tty: these lines only reach the
# console if the 8250 driver owns the port and its interrupt.
{
    echo "HERD-SHELL-OK cpus=$(grep -c ^processor /proc/cpuinfo)"
    echo "HERD-SERIAL $(grep '^0:' /proc/tty/driver/serial)"
    echo "HERD-IRQ $(grep -E 'ttyS0$' /proc/interrupts)"
} > /dev/ttyS0
case "$(cat /proc/cmdline)" in
*herd.end=reboot*) reboot -f ;;
*) poweroff -f ;;
esac
INIT
chmod +x "$tmp/initrd/init"
(cd "$tmp/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$tmp/initrd.gz"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# check_run NAME CPUS END: the checks on one guest's console and herd-vmm log.
check_run() {
    local name=$1 cpus=$2 end=$3 console=$tmp/$1.console.txt log=$tmp/$1.log
    local irqline count

    tr -d '\r' < "$tmp/$name.console" > "$console" # the tty writes CR LF

    grep -q "^HERD-SHELL-OK cpus=$cpus" "$console" ||
        fail "$name: no userspace marker with $cpus CPUs written through /dev/ttyS0"
    grep -qE '^HERD-SERIAL 0: uart:16550A port:000003F8 irq:[1-9][0-9]* tx:[1-9]' "$console" ||
        fail "$name: the 8250 driver has no IRQ or sent nothing on ttyS0"
    irqline=$(grep '^HERD-IRQ ' "$console")
    grep -qE 'IO-APIC +4-edge +ttyS0$' <<<"$irqline" ||
        fail "$name: ttyS0 is not on IO-APIC pin 4 (edge): '$irqline'"
    count=$(awk '{s = 0; for (i = 3; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s}' <<<"$irqline")
    [ "${count:-0}" -gt 0 ] || fail "$name: no UART interrupt was delivered"
    if [ "$end" = poweroff ]; then
        grep -q "guest powered off (ACPI S5)" "$log" ||
            fail "$name: poweroff -f did not end through ACPI S5"
    else
        grep -q "guest reset (" "$log" || fail "$name: reboot -f did not reset the guest"
    fi
}

# run NAME KERNEL CPUS END
run() {
    local name=$1 kernel=$2 cpus=$3 end=$4 status
    timeout "$limit" "$vmm" --kernel "$kernel" --initrd "$tmp/initrd.gz" --mem 256M \
        --cpus "$cpus" --cmdline "console=ttyS0 panic=-1 rdinit=/init herd.end=$end" \
        --serial "file:$tmp/$name.console" </dev/null > "$tmp/$name.log" 2>&1
    status=$?
    echo "== $name: herd-vmm exit $status ($(tail -n 1 "$tmp/$name.log"))"
    grep -E '^HERD-' "$tmp/$name.console"
    [ "$status" -eq 0 ] || fail "$name: $end -f ended herd-vmm with $status, expected 0"
    check_run "$name" "$cpus" "$end"
    if [ "$failures" -gt 0 ]; then
        tail -n 30 "$tmp/$name.console"
        cat "$tmp/$name.log"
    fi
}

run bzimage-1cpu-poweroff "$linux/vmlinuz" 1 poweroff
run bzimage-2cpu-reboot "$linux/vmlinuz" 2 reboot
run pvh-1cpu-reboot "$linux/vmlinux" 1 reboot
run pvh-2cpu-poweroff "$linux/vmlinux" 2 poweroff
[ "$failures" -eq 0 ] || exit 1
echo "vmm-linux-shell: all checks passed"
