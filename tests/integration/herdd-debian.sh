#!/bin/bash
# herd-test-needs: kvm-linux
# A range of real Debian guests through herdd and herdctl, in a private
# network namespace: the guest image from tools/build-guest-image is
# registered as a template (kernel, initrd, raw root parent, its command
# line with root=/dev/vda, ready line "herd-guest: ready"), a range of 4
# guests (make check-full only) on one segment comes up and every guest reaches ready (systemd at
# multi-user, reported by the image's herd-guest-ready unit); cloud-init, from
# the NoCloud seed herdd built, gave each guest its name and the address
# herdd planned (reported from inside the guest on its console), each pings
# the next by that address, and ssh with the range's key logs into each
# (the same instance-id as herdd's record); the guests are
# listed with their boot times; each console shows systemd's state, a
# login: prompt and the root disk; the first guest shuts itself down on
# `herdctl vm shutdown` (ACPI power button: systemd stops its units,
# herd-vmm exits 0), the others are stopped; qemu-img check is clean on
# every overlay, the parent is unchanged, and range down leaves no herd-vmm,
# tap, overlay, socket or segment bridge.
# The image dir is $HERD_GUEST_IMAGE (default build/guest).
# Exit 0 pass, 77 skip, else fail.
set -u
. "$(dirname "$0")/herdd-lib.sh"
. "$(dirname "$0")/common.sh"
limit=${HERD_LINUX_TIMEOUT:-600}
require_guest_image
[ -z "$(grep -wE 'vmx|svm' /proc/cpuinfo)" ] && skip "real Linux needs vmx/svm (run-all runs this in the nested host)"
# range-debian.sh covers all of this (and more) in make check; in the nested
# host each Debian boot costs minutes of the run's time (docs/testing.md)
[ "${HERD_CHECK_FULL:-0}" = 1 ] ||
    skip "make check-full only: range-debian.sh checks seeds, addresses, ssh, ACPI shutdown and overlays in make check"

start_debian_herdd

echo "== template add debian ($img)"
debian_template debian
hc template ls

count=4
# The range's addressing and cloud-init seed (docs/ranges.md "Addressing",
# docs/herdd.md "Seeds"): each guest reports, from inside, the host name and
# address cloud-init gave it and pings the next guest by its planned
# address; the test then logs in with the range's key over ssh.
ssh-keygen -q -t ed25519 -N '' -C 'herdd-debian' -f "$tmp/key" || fail "ssh-keygen"
peer() { echo "10.30.0.$(( $1 % count + 2 ))"; } # guest n pings guest n+1 (wrapping)
cat > "$tmp/debian.yaml" <<YAML
range: deb
networks:
  communication:
    segments:
      lab-net: {subnet: 10.30.0.0/24, gateway: 10.30.0.1}
ssh_authorized_keys: ["$(cat "$tmp/key.pub")"]
scenarios:
  - name: lab
    roles:
      - name: node
        template: debian
        count: $count
        nics:
          - {network: communication, segment: lab-net}
        runcmd:
          - "echo herd-seed: host=\$(hostname) > /dev/ttyS0"
          - "ip -4 -o addr show dev eth0 | sed 's/^/herd-seed: /' > /dev/ttyS0"
          - "for a in \$(seq 60); do ping -c 1 -W 2 10.30.0.\$(( \$(hostname | sed 's/.*-//') % $count + 2 )) >/dev/null && break; done; echo herd-seed: ping rc=\$? > /dev/ttyS0"
YAML
echo "== range up ($count Debian guests)"
debian_range_up deb "$tmp/debian.yaml"
hc vm ls --range deb
hc --json range status deb > "$tmp/status.json" || fail "range status"
python3 - "$tmp/status.json" "$count" <<'PY' || fail "range deb: not every guest is ready"
import json, sys
d = json.load(open(sys.argv[1]))
vms = d["vms"]
bad = [f'{v["name"]}: state {v["state"]}, ready {v["ready"]}' for v in vms
       if not v["ready"] or v["state"] != "running"]
print(f'{len(vms)} guests, {len(vms) - len(bad)} ready')
for b in bad: print("  " + b)
sys.exit(1 if bad or len(vms) != int(sys.argv[2]) else 0)
PY
check_debian_consoles deb

echo "== inside the guests: cloud-init's host name, address, ping; ssh with the range's key"
seg_br=$(vm_field deb-lab-node-1 'd["nics"][0]["bridge"]') # the range's own lab-net
ip -n "$ns" addr add 10.30.0.254/24 dev "$seg_br" || fail "host address on $seg_br"
for v in $(range_vms deb); do
    n=${v##*-} # deb-lab-node-N (range_vms lists them in no set order)
    con=$tmp/state/vms/$v/console.log
    want=$(vm_field "$v" 'd["nics"][0]["ipv4"]')
    [ "$want" = "10.30.0.$((n + 1))/24" ] || fail "$v: herdd planned $want"
    wait_line "$con" 'herd-seed: ping rc=' 240 || fail "$v: cloud-init's runcmd did not report"
    tr -d '\r' < "$con" | grep -a '^herd-seed: ' | sed "s/^/   $v: /"
    tr -d '\r' < "$con" | grep -aq "^herd-seed: host=$v\$" || fail "$v: host name is not $v"
    tr -d '\r' < "$con" | grep -aq "^herd-seed: .* inet ${want%/*}/24 " ||
        fail "$v: eth0 does not have $want"
    tr -d '\r' < "$con" | grep -aq '^herd-seed: ping rc=0' || fail "$v: could not ping $(peer $n)"
    out=$(ip netns exec "$ns" timeout 60 ssh -i "$tmp/key" -o StrictHostKeyChecking=no \
          -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=20 \
          "debian@${want%/*}" 'hostname; cat /var/lib/cloud/data/instance-id' 2>"$tmp/ssh.err")
    [ "$(head -n 1 <<<"$out")" = "$v" ] || fail "$v: ssh with the range's key: '$out' $(cat "$tmp/ssh.err")"
    [ "$(tail -n 1 <<<"$out")" = "$(vm_field "$v" 'd["seed"]["instance_id"]')" ] ||
        fail "$v: its cloud-init instance-id is not herdd's: $out"
done

echo "== shutdown (ACPI power button) of the first guest, stop of the rest, qemu-img check"
first=$(hc --json range status deb | python3 -c 'import json,sys; print(json.load(sys.stdin)["vms"][0]["name"])')
hc vm shutdown "$first" || fail "shutdown $first"
[ "$(vm_field "$first" 'd["state"]')" = stopped ] || fail "$first: state $(vm_field "$first" 'd["state"]') after shutdown"
[ "$(vm_field "$first" 'd["exit"]["code"]')" = 0 ] ||
    fail "$first: herd-vmm exit status $(vm_field "$first" 'd["exit"]["code"]') after shutdown, expected 0 (ACPI S5)"
con=$tmp/state/vms/$first/console.log
tr -d '\r' < "$con" | grep -aqE 'Stopped target|Stopping ' ||
    fail "$first: no units stopped on its console: not an orderly systemd shutdown"
tr -d '\r' < "$con" | grep -aqE 'reboot: Power down|Powering off' || fail "$first: its console shows no power-off"
stop_and_check_overlays deb
[ "$(sha256sum < "$parent")" = "$parent_sum" ] || fail "the parent changed"
hc range down deb || fail "range down"
check_nothing_left
ip -n "$ns" link show "$seg_br" >/dev/null 2>&1 && fail "segment bridge $seg_br left"
hc audit verify >/dev/null || fail "audit verify"
finish
