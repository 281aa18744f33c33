#!/bin/bash
# Real Linux to a shell: the Debian cloud bzImage through the 64-bit Linux
# boot protocol (zero page, e820, initrd, ACPI RSDP) with a busybox
# initramfs; the shell prints a marker with the CPU count it sees, then
# "reboot -f" with reboot=k (i8042 reset) must end herd-vmm with status 0.
#
# Needs hardware virtualization (vmx/svm): on PVM hosts the decompressor and
# kernel run under KVM's instruction emulator and never reach userspace, so
# the test skips there with that reason.
#
# Exit 0 pass, 77 skip (reason on the last line), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
vmm=$build/bin/herd-vmm
linux=$root/build/linux
cpus=2

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
if ! grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then
    echo "skip: host CPU has no vmx/svm (KVM here is PVM: guest CPL0 code is emulated, a stock kernel cannot reach userspace)"
    exit 77
fi
[ -s "$linux/vmlinuz" ] || "$root/tools/fetch-test-kernel" || true
if [ ! -s "$linux/vmlinuz" ]; then
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

mkdir -p "$tmp/initrd/bin" "$tmp/initrd/proc"
cp "$busybox" "$tmp/initrd/bin/busybox"
cat > "$tmp/initrd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
echo "HERD-SHELL-OK cpus=$(grep -c ^processor /proc/cpuinfo)"
reboot -f
INIT
chmod +x "$tmp/initrd/init"
(cd "$tmp/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$tmp/initrd.gz"

console=$tmp/console.log
timeout 120 "$vmm" --kernel "$linux/vmlinuz" --initrd "$tmp/initrd.gz" --mem 256M \
    --cpus $cpus --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init" \
    --serial "file:$console" </dev/null > "$tmp/vmm.log" 2>&1
status=$?
tail -n 30 "$console"
cat "$tmp/vmm.log"
failures=0
grep -q "HERD-SHELL-OK cpus=$cpus" "$console" || { echo "FAIL: no shell marker with $cpus CPUs"; failures=1; }
[ "$status" -eq 0 ] || { echo "FAIL: reboot -f ended herd-vmm with $status, expected 0"; failures=1; }
[ "$failures" -eq 0 ] || exit 1
echo "vmm-linux-shell: all checks passed"
