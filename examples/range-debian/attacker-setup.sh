#!/bin/sh
# Resource disk script for the red attacker boxes (examples/range-debian.yaml):
# runs once per instance from cloud-init's runcmd; leaves a marker.
set -eu
echo "attacker box $(hostname) ready at $(date -u +%FT%TZ)" > /var/lib/herd-role
# the blue web servers' segment is not reachable from here: show it
ping -c 1 -W 1 10.20.2.80 >/dev/null 2>&1 && echo "blue-net reachable" >> /var/lib/herd-role || true
