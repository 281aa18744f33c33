#!/bin/bash
# herd-test-needs: kvm-linux
# The README's main job (`make demo` runs tools/demo after building) must
# keep working: run it with a few guests and require its success lines
# (the probe range and the Debian guests; the image is build/guest).
# Exit 0 pass, 77 skip (no /dev/kvm), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
out=$(DEMO_GUESTS=4 "$root/tools/demo" 2>&1)
status=$?
printf '%s\n' "$out"
[ "$status" -eq 0 ] || { echo "FAIL: tools/demo exited $status"; exit 1; }
grep -qE "4 guests started, checked their disks and talked, in [0-9]+ ms wall time; 0 failed" <<<"$out" ||
    { echo "FAIL: no success line"; exit 1; }
grep -qE "2 Debian guests booted to login:, ran systemd and pinged each other; 0 failed" <<<"$out" ||
    { echo "FAIL: no success line from the real-Linux part"; exit 1; }
echo "demo: ok"
