#!/bin/bash
# herd-test-needs: kvm
# herdd-jail.sh, herdd-console.sh, escape-chain.sh (and herdd-basic.sh,
# herdd-range.sh, escape-cgroup.sh, escape-console.sh in make check-full)
# again with the ASan+UBSan herdd and herdctl (build/san); any sanitizer
# report in herdd's log fails them. escape-sanitizers.sh does the same for
# the herdd tests that need no KVM.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
san=${HERD_SAN_BUILD:-$root/build/san}
for b in herdd herdctl; do
    [ -x "$san/bin/$b" ] || { echo "skip: $san/bin/$b is not built (make SAN=1)"; exit 77; }
done
export HERD_HERDD=$san/bin/herdd HERD_HERDCTL=$san/bin/herdctl
rc=0
# The longest herdd tests a second time (herdd-basic, herdd-range, and the
# two escapes that wait a minute each) are in make check-full only.
tests="herdd-jail herdd-console escape-chain"
[ "${HERD_CHECK_FULL:-0}" = 1 ] &&
    tests="herdd-basic $tests herdd-range escape-cgroup escape-console"
for t in $tests; do
    echo "=== $t (sanitizers)"
    "$(dirname "$0")/$t.sh"
    r=$?
    [ "$r" -eq 77 ] && exit 77
    [ "$r" -eq 0 ] || rc=1
done
exit $rc
