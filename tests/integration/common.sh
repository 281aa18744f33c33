# Helpers every integration test may source (not a test: not executable).

# wait_bounded PID SECS: waits for PID (a child of this shell) to end, at
# most SECS seconds; past that it kills it (SIGKILL) and says so on stderr.
# Returns the child's exit status (137 when it had to be killed), so no
# test ever blocks forever on a guest nobody stops.
wait_bounded() {
    local pid=$1 limit=$2 deadline=$((EPOCHSECONDS + $2))
    # bounded by time, not rounds: a round costs far more than its sleep in
    # the nested host
    while kill -0 "$pid" 2>/dev/null && [ "$EPOCHSECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "wait_bounded: pid $pid still running after ${limit}s: killed" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid"
}

# HERD_NESTED_SILENCE (default 120): seconds a booting guest's console may
# stay silent in the nested host before the guest counts as hung. QEMU's
# emulated SVM hangs now and then a Debian boot there, with any VMM
# (docs/nested-host.md); a Debian boot there prints something every few
# seconds. On real hardware this is never used.
nested_silence=${HERD_NESTED_SILENCE:-120}

# wait_for_line SILENCE FILE REGEX SECS [PID]: true once FILE has a line
# matching REGEX; false after SECS seconds, or when PID (if given) has ended
# without it; with SILENCE > 0, 2 (saying so) once FILE has not grown for
# SILENCE seconds.
wait_for_line() {
    local silence=$1 file=$2 re=$3 pid=${5:-} deadline=$((EPOCHSECONDS + $4))
    local size last=-1 changed=$EPOCHSECONDS
    while [ "$EPOCHSECONDS" -lt "$deadline" ]; do
        grep -qaE "$re" "$file" 2>/dev/null && return 0
        [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || { grep -qaE "$re" "$file" 2>/dev/null; return; }
        if [ "$silence" -gt 0 ]; then
            size=$(stat -c %s "$file" 2>/dev/null || echo 0)
            [ "$size" != "$last" ] && { last=$size changed=$EPOCHSECONDS; }
            if [ $((EPOCHSECONDS - changed)) -ge "$silence" ]; then
                echo "$file: console silent for $silence s in the nested host (a hang of the emulated host; docs/nested-host.md)"
                return 2
            fi
        fi
        sleep 0.2
    done
    grep -qaE "$re" "$file" 2>/dev/null
}

# wait_line FILE REGEX SECS [PID]: wait_for_line without a silence limit.
wait_line() { wait_for_line 0 "$@"; }

# wait_console FILE REGEX SECS [PID]: wait_line for a guest's console, except
# that in the nested host it gives up early, printing "console silent for
# N s in the nested host" and returning 2, when FILE has not grown for
# $nested_silence seconds (run-all runs such a test once more).
wait_console() {
    wait_for_line "$([ "${HERD_NESTED:-0}" = 1 ] && echo "$nested_silence" || echo 0)" "$@"
}

# require_guest_image: sets $img to the Debian guest image directory
# ($HERD_GUEST_IMAGE, default build/guest: tools/build-guest-image) and
# skips the test (exit 77, with the reason) when it is not there.
require_guest_image() {
    img=${HERD_GUEST_IMAGE:-${HERD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/build/guest}
    local f
    for f in vmlinuz initrd.img root.img cmdline; do
        [ -s "$img/$f" ] && continue
        echo "skip: no guest image in $img ($f missing): run tools/build-guest-image $img"
        exit 77
    done
}

# require_root_kvm WHY: skips (77, saying why) unless we are root with a
# usable /dev/kvm
require_root_kvm() {
    [ "$(id -u)" = 0 ] || { echo "skip: needs root ($1)"; exit 77; }
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "skip: /dev/kvm is missing or not accessible"; exit 77; }
}

# require_built FILE...: fails (not skips) when a build product is missing
require_built() {
    local f
    for f; do
        [ -r "$f" ] || { echo "FAIL: $f not built (make)"; exit 1; }
    done
}

# with_san_herdd TEST...: runs each tests/integration/TEST.sh again with the
# ASan+UBSan herdd and herdctl (build/san; skip when they are not built);
# exits 77 if one skips, 1 if any failed, else 0
with_san_herdd() {
    local san=${HERD_SAN_BUILD:-${HERD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/build/san}
    local b t r rc=0
    for b in herdd herdctl; do
        [ -x "$san/bin/$b" ] || { echo "skip: $san/bin/$b is not built (make SAN=1)"; exit 77; }
    done
    export HERD_HERDD=$san/bin/herdd HERD_HERDCTL=$san/bin/herdctl
    for t; do
        echo "=== $t (sanitizers)"
        "$(dirname "${BASH_SOURCE[0]}")/$t.sh"
        r=$?
        [ "$r" -eq 77 ] && exit 77
        [ "$r" -eq 0 ] || rc=1
    done
    exit $rc
}
