#!/bin/bash
# A read-only parent served by qemu-nbd (the "remote parent" mode): an overlay
# whose backing file is an NBD URI (format "nbd") reads through and writes
# copy-on-write locally; the served file is untouched.
set -u
. "$(dirname "$0")/blockdev-lib.sh"
blockdev_require qemu-nbd
cd "$T"
qemu-img create -q -f raw p.raw 16M
qemu-io -f raw -c 'write -P 0x77 0 1M' -c 'write -P 0x78 9M 64k' p.raw >/dev/null
sha=$(sha256sum < p.raw)
qemu-nbd -r -f raw -k "$T/nbd.sock" -t p.raw 2>/dev/null &
npid=$!
trap 'kill $npid 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 50); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
[ -S "$T/nbd.sock" ] || skip "qemu-nbd did not start"
"$H" create -q -f qcow2 -b "nbd+unix:///?socket=$T/nbd.sock" -F nbd o.qcow2 ||
    fail "create over NBD parent"
"$H" io -f qcow2 -c 'read -P 0x77 0 1M' -c 'write -P 1 4k 4k' -c 'read -P 0x77 64k 4k' \
    -c 'read -P 0x78 9M 64k' -c 'read -P 0 2M 4k' -c 'read -P 1 4k 4k' o.qcow2 > io.log ||
    { cat io.log; fail "reads/writes over an NBD parent"; }
qemu-img check -q o.qcow2 || fail "check"
[ "$(sha256sum < p.raw)" = "$sha" ] || fail "NBD parent changed"
echo PASS
