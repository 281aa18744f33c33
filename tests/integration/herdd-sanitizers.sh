#!/bin/bash
# herd-test-needs: kvm
# herdd-jail.sh, herdd-console.sh, escape-chain.sh, herdd-snapshot.sh, herdd-checkpoint.sh (and herdd-basic.sh,
# herdd-range.sh, escape-cgroup.sh, escape-console.sh in make check-full)
# again with the ASan+UBSan herdd and herdctl (build/san); any sanitizer
# report in herdd's log fails them. escape-sanitizers.sh does the same for
# the herdd tests that need no KVM.
set -u
. "$(dirname "$0")/common.sh"
# The longest herdd tests a second time (herdd-basic, herdd-range, and the
# two escapes that wait a minute each) are in make check-full only.
tests="herdd-jail herdd-console escape-chain herdd-snapshot herdd-checkpoint"
[ "${HERD_CHECK_FULL:-0}" = 1 ] &&
    tests="herdd-basic $tests herdd-range escape-cgroup escape-console"
# shellcheck disable=SC2086
with_san_herdd $tests
