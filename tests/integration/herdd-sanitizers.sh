#!/bin/bash
# herd-test-needs: kvm
# herdd-basic.sh, herdd-range.sh, herdd-jail.sh and herdd-console.sh again with the ASan+UBSan herdd and
# herdctl (build/san); any sanitizer report in herdd's log fails them.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
san=${HERD_SAN_BUILD:-$root/build/san}
for b in herdd herdctl; do
    [ -x "$san/bin/$b" ] || { echo "skip: $san/bin/$b is not built (make SAN=1)"; exit 77; }
done
export HERD_HERDD=$san/bin/herdd HERD_HERDCTL=$san/bin/herdctl
rc=0
for t in herdd-basic herdd-range herdd-jail herdd-console; do
    echo "=== $t (sanitizers)"
    "$(dirname "$0")/$t.sh"
    r=$?
    [ "$r" -eq 77 ] && exit 77
    [ "$r" -eq 0 ] || rc=1
done
exit $rc
