#!/bin/bash
# QEMU's own qemu-iotests with herd-img as qemu-img and qemu-io: every test
# in tests/iotests/pass-list must pass with herd-img doing all the work (no
# fallback to QEMU's tools, no VM), and the wrappers must send what herd-img
# lacks to QEMU's tools and say so. The suite comes from Debian's qemu
# source package (tools/fetch-qemu-iotests, run by make check).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/blockdev-lib.sh"
src=${HERD_IOTESTS_DIR:-$root/build/qemu-iotests}
[ -x "$src/tests/qemu-iotests/check" ] ||
    skip "skip: no QEMU iotests in $src (tools/fetch-qemu-iotests: needs root once and a Debian mirror with qemu's source)"
blockdev_require qemu-nbd qemu-system-x86_64 qemu-storage-daemon python3

# The wrappers: a subcommand and a qemu-io command herd-img does not have go
# to QEMU's tools and are logged; what it has runs in herd-img, unlogged.
mkdir -p "$T/bin"
for p in qemu-img qemu-io; do ln -s "$root/tests/iotests/wrap" "$T/bin/$p"; done
export HERD_IMG=$H HERD_IOTESTS_PROBE=$T/probe HERD_IOTESTS_LOG=$T/wrap.log
"$T/bin/qemu-img" create -q -f qcow2 "$T/a.qcow2" 1M || fail "wrapper: create"
"$T/bin/qemu-io" --cache writeback --aio threads -f qcow2 -c 'write -P 7 0 4k' \
    "$T/a.qcow2" >/dev/null || fail "wrapper: qemu-io write"
[ -s "$T/wrap.log" ] && fail "wrapper fell back for what herd-img has: $(cat "$T/wrap.log")"
"$T/bin/qemu-img" no-such-subcommand >/dev/null 2>&1
grep -q '^fallback qemu-img: herd-img lacks subcommand no-such-subcommand' "$T/wrap.log" ||
    fail "wrapper: an unknown subcommand was not logged as a fallback"
echo 'no-such-command 0 512' | "$T/bin/qemu-io" -f qcow2 "$T/a.qcow2" >/dev/null 2>&1
grep -q '^fallback qemu-io: herd-img lacks qemu-io command no-such-command' "$T/wrap.log" ||
    fail "wrapper: an unknown qemu-io command from stdin was not logged as a fallback"
echo "wrappers: fallbacks logged, herd-img's own commands run in herd-img"

HERD_IOTESTS_WORK=$T/work "$root/tests/iotests/run" --strict \
    --list "$root/tests/iotests/pass-list" > "$T/run.out" 2>&1
rc=$?
grep -v '^PASS ' "$T/run.out" | grep -v '^results:'
[ "$rc" = 0 ] || fail "not every test of tests/iotests/pass-list passes with herd-img alone"
echo "$(grep -c '^PASS ' "$T/run.out") QEMU iotests pass with herd-img alone"
