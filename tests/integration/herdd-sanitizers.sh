#!/bin/bash
# herd-test-needs: kvm
# herdd-basic.sh, herdd-jail.sh, herdd-console.sh (and herdd-range.sh in
# make check-full) again with the ASan+UBSan herdd and herdctl (build/san);
# any sanitizer report in herdd's log fails them.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
san=${HERD_SAN_BUILD:-$root/build/san}
for b in herdd herdctl; do
    [ -x "$san/bin/$b" ] || { echo "skip: $san/bin/$b is not built (make SAN=1)"; exit 77; }
done
export HERD_HERDD=$san/bin/herdd HERD_HERDCTL=$san/bin/herdctl
rc=0
# herdd-range under the sanitizers (the longest herdd test twice over) is
# in make check-full only; the others run in make check.
tests="herdd-basic herdd-jail herdd-console"
[ "${HERD_CHECK_FULL:-0}" = 1 ] && tests="$tests herdd-range"
for t in $tests; do
    echo "=== $t (sanitizers)"
    "$(dirname "$0")/$t.sh"
    r=$?
    [ "$r" -eq 77 ] && exit 77
    [ "$r" -eq 0 ] || rc=1
done
exit $rc
