# Shared helpers for tests/integration/blockdev-*.sh (sourced, not run).
HERD_BUILD=${HERD_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
H=$HERD_BUILD/bin/herd-img

skip() { echo "$1"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

blockdev_require() {
    [ -x "$H" ] || skip "herd-img not built ($H)"
    for t in qemu-img qemu-io "$@"; do
        command -v "$t" >/dev/null || skip "$t not installed"
    done
    T=$(mktemp -d "${TMPDIR:-/tmp}/herd-blockdev.XXXXXX")
    trap 'rm -rf "$T"' EXIT
}

# Same JSON from both tools for the same command.
same_output() {
    local what=$1; shift
    "$H" "$@" > "$T/h.out" 2>&1; local hr=$?
    qemu-img "$@" > "$T/q.out" 2>&1; local qr=$?
    sed -i 's/^herd-img:/qemu-img:/' "$T/h.out"
    [ "$hr" = "$qr" ] || fail "$what: exit herd=$hr qemu=$qr"
    diff -u "$T/q.out" "$T/h.out" || fail "$what: output differs"
}
