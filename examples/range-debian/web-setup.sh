#!/bin/sh
# Resource disk script for the blue web servers (examples/range-debian.yaml):
# serves a page on port 80 with the image's python3 (no package installs).
set -eu
mkdir -p /srv/www
echo "<h1>$(hostname)</h1>" > /srv/www/index.html
systemd-run --unit=herd-web --property=Restart=always \
    python3 -m http.server 80 --directory /srv/www
echo "web server $(hostname) ready at $(date -u +%FT%TZ)" > /var/lib/herd-role
