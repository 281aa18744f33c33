#!/bin/bash
# escape-api.sh and escape-net.sh (the escape tests that start no guest, so
# need no KVM) again with the ASan+UBSan herdd and herdctl (build/san): the
# attacker's inputs (3000 roleless connections, oversized and deep bodies,
# hostile NIC address lists) must not make the sanitizers report anything.
# herdd-sanitizers.sh does the same for the KVM ones.
set -u
. "$(dirname "$0")/common.sh"
# ASan's shadow memory and quarantine are not herdd's: escape-api's RSS bound
# (64 MiB) is for the plain build; here it only has to stay bounded
export ESCAPE_API_RSS_MAX_KB=${ESCAPE_API_RSS_MAX_KB:-524288}
with_san_herdd escape-api escape-net
