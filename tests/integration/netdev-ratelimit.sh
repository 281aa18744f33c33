#!/bin/bash
# Rate limit on the userspace packet path: a "guest" offers 1000-byte frames
# as fast as its byte bucket (RATE B/s, Firecracker model) lets them go, for
# SECONDS; the tap on the other end of the bridge measures bytes delivered
# against the send times of the frames. Must hold within 10 %.
. "$(dirname "$0")/netdev-lib.bash"
netdev_preflight
RATE=${NETDEV_TEST_RATE:-1000000}
SECONDS_=${NETDEV_TEST_SECONDS:-3}
mkns "$NS1"
echo '{"roles": {"service": {"bridge": "hbr-svc"}}}' > "$TMP/svc.json"
ctl "$NS1" setup "$TMP/svc.json" || fail "setup"
"$TAPIO" ratelimit "$NS1" hbr-svc "$RATE" "$SECONDS_" || fail "rate outside 10 % of $RATE B/s"
ok "rate limit of $RATE B/s held within 10 % over ${SECONDS_} s"
