#!/bin/bash
# escape-api.sh and escape-net.sh (the escape tests that start no guest, so
# need no KVM) again with the ASan+UBSan herdd and herdctl (build/san): the
# attacker's inputs (3000 roleless connections, oversized and deep bodies,
# hostile NIC address lists) must not make the sanitizers report anything.
# herdd-sanitizers.sh does the same for the KVM ones.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
san=${HERD_SAN_BUILD:-$root/build/san}
for b in herdd herdctl; do
    [ -x "$san/bin/$b" ] || { echo "skip: $san/bin/$b is not built (make SAN=1)"; exit 77; }
done
export HERD_HERDD=$san/bin/herdd HERD_HERDCTL=$san/bin/herdctl
# ASan's shadow memory and quarantine are not herdd's: escape-api's RSS bound
# (64 MiB) is for the plain build; here it only has to stay bounded
export ESCAPE_API_RSS_MAX_KB=${ESCAPE_API_RSS_MAX_KB:-524288}
rc=0
for t in escape-api escape-net; do
    echo "=== $t (sanitizers)"
    "$(dirname "$0")/$t.sh"
    r=$?
    [ "$r" -eq 77 ] && exit 77
    [ "$r" -eq 0 ] || rc=1
done
exit $rc
