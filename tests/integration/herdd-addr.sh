#!/bin/bash
# Range addressing through herdd (issue 12, first part; docs/ranges.md
# "Addressing"). Needs no KVM: what is checked is what herdd plans, stores
# and refuses; the guests need not run (without KVM their herd-vmm exits,
# with KVM they boot; neither changes an address).
#  - range up of a spec with a management subnet and gateway, a segment
#    with an IPv6 prefix, explicit addresses and an override: every NIC
#    gets the documented address (lowest free hosts in guest order, the
#    gateway and the explicit ones skipped, IPv6 mirroring the host
#    number), shown by vm inspect (--json) and vm ls;
#  - the addresses survive a herdd restart (SQLite), and range up again
#    changes none;
#  - a second range on the same management network gets other addresses,
#    and one that asks for an address the first holds is refused (400,
#    field path, nothing created);
#  - bad specs: overlapping subnets, a subnet too small, an address
#    outside its subnet, a duplicate explicit address, the gateway taken,
#    a subnet with host bits set, an IPv6 prefix too small: each 400 with its field path, and no
#    guest, tap or range left behind;
#  - vm create with a NIC ipv4 another guest has on that bridge: 409; a
#    template with an ipv4: 400;
#  - range down frees the addresses: up again gives the same plan.
# Exit 0 pass, 77 skip, else fail.
set -u
herdd_lib_no_kvm=1
. "$(dirname "$0")/herdd-lib.sh"

start_range_herdd

spec() { # NAME [SED-EXPR]: the lab spec, renamed, edited
    sed -e "s/^range: lab/range: $1/" ${2:+-e "$2"} > "$tmp/$1.yaml" <<'YAML'
range: lab
networks:
  management: {subnet: 10.10.0.0/24, gateway: 10.10.0.1}
  communication:
    segments:
      red: {subnet: 10.20.1.0/24, gateway: 10.20.1.1, ipv6: "fd00:20:1::/64"}
scenarios:
  - name: s
    roles:
      - name: att
        template: probe
        count: 3
        nics:
          - {network: communication, segment: red}
          - {network: management, addresses: [10.10.0.50, 10.10.0.51, 10.10.0.52]}
        overrides:
          - {guest: 2, nic: 0, address: 10.20.1.99}
      - name: web
        template: probe
        count: 2
        nics:
          - {network: communication, segment: red}
          - {network: management}
YAML
    echo "$tmp/$1.yaml"
}

# NAME -> "ipv4,gateway,ipv6 ipv4,gateway,ipv6" per NIC, from vm inspect
addrs() {
    hc --json vm inspect "$1" | python3 -c '
import json, sys
print(" ".join(",".join(n.get(k, "-") for k in ("ipv4", "gateway", "ipv6"))
               for n in json.load(sys.stdin)["nics"]))'
}

check_addrs() { # "NAME NIC0 NIC1"...: each guest's addresses as addrs prints them
    local want got
    for want; do
        got="${want%% *} $(addrs "${want%% *}" 2>&1)"
        [ "$got" = "$want" ] || fail "addresses: got '$got', expected '$want'"
    done
}

expect_plan() { # RANGE: the documented plan of the lab spec
    local r=$1
    check_addrs \
        "$r-s-att-1 10.20.1.2/24,10.20.1.1,fd00:20:1::2/64 10.10.0.50/24,10.10.0.1,-" \
        "$r-s-att-2 10.20.1.99/24,10.20.1.1,fd00:20:1::63/64 10.10.0.51/24,10.10.0.1,-" \
        "$r-s-att-3 10.20.1.3/24,10.20.1.1,fd00:20:1::3/64 10.10.0.52/24,10.10.0.1,-" \
        "$r-s-web-1 10.20.1.4/24,10.20.1.1,fd00:20:1::4/64 10.10.0.2/24,10.10.0.1,-" \
        "$r-s-web-2 10.20.1.5/24,10.20.1.1,fd00:20:1::5/64 10.10.0.3/24,10.10.0.1,-"
}

up() { # SPEC: range up until its job is done (without KVM the guests' herd-vmm
    # exits and range up says so: what counts is that every guest was made)
    local name state
    name=$(sed -n 's/^range: //p' "$1")
    timeout 300 "$herdctl_bin" --socket "$sock" range up "$1" >/dev/null 2>&1
    state=$(hc --json range status "$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$state" = up ] || [ "$state" = degraded ] || { echo "range $name: $state"; return 1; }
}

before=$(hc --json vm ls)
taps_before=$(ip netns exec "$ns" ip -o link show type tun | wc -l)
refused() { # NAME FIELD TEXT SED-EXPR: range up of the edited spec is a 400 naming FIELD
    local out
    out=$(hc range up "$(spec "$1" "$4")" 2>&1)
    [[ $out == *"[field $2]"*"(HTTP 400)"* && $out == *"$3"* ]] ||
        fail "$1: expected 400 at $2 with '$3', got: $out"
}
echo "== bad specs: 400 with the field, nothing created"
refused bad-overlap 'networks.communication.segments.red.subnet' \
    '10.10.0.0/25 overlaps networks.management.subnet (10.10.0.0/24)' \
    's#10.20.1.0/24, gateway: 10.20.1.1#10.10.0.0/25, gateway: 10.10.0.126#'
refused bad-small 'networks.management.subnet' '10.10.0.0/29 has 5 free host addresses for 6 NICs' \
    's#10.10.0.0/24#10.10.0.0/29#; s/, addresses: \[10.10.0.50, 10.10.0.51, 10.10.0.52\]//; s/count: 2/count: 3/'
refused bad-outside 'scenarios[0].roles[0].nics[1].addresses[1]' \
    '10.11.0.51 is not in networks.management.subnet (10.10.0.0/24)' 's/10.10.0.51/10.11.0.51/'
refused bad-dup 'scenarios[0].roles[0].nics[1].addresses[2]' \
    'duplicate address (also [0])' 's/10.10.0.52/10.10.0.50/'
refused bad-gw 'scenarios[0].roles[0].overrides[0].address' \
    'already taken by networks.communication.segments.red.gateway' 's/10.20.1.99/10.20.1.1/'
refused bad-bits 'networks.management.subnet' 'host bits are set' 's#10.10.0.0/24#10.10.0.9/24#'
refused bad-v6 'networks.communication.segments.red.ipv6' 'has fewer host addresses than the subnet' \
    's#fd00:20:1::/64#fd00:20:1::/126#'
[ "$(hc --json vm ls)" = "$before" ] || fail "a refused spec made guests"
[ "$(ip netns exec "$ns" ip -o link show type tun | wc -l)" = "$taps_before" ] ||
    fail "a refused spec left taps behind"
hc range ls | grep -q '^bad-' && fail "a refused spec left a range record"

echo "== range up: the documented plan"
up "$(spec lab)" || fail "range up lab"
expect_plan lab
hc vm ls --range lab | tee "$tmp/ls.txt"
grep -q '^lab-s-att-2 .* 10\.20\.1\.99,10\.10\.0\.51 ' "$tmp/ls.txt" ||
    fail "vm ls does not show lab-s-att-2's addresses"

echo "== restart herdd, range up again: nothing moves"
stop_herdd TERM
start_herdd
expect_plan lab
up "$tmp/lab.yaml" || fail "range up lab again"
expect_plan lab

echo "== a second range on the same networks and segment"
# lab2's red segment is its own bridge (ranges never share a segment the
# configuration does not declare): the same hosts as lab's there; its
# management network is lab's (one role bridge): the free hosts lab left
up "$(spec lab2 's/10.10.0.5\([0-9]\)/10.10.0.6\1/g; s/10.20.1.99/10.20.1.98/')" ||
    fail "range up lab2"
check_addrs "lab2-s-att-1 10.20.1.2/24,10.20.1.1,fd00:20:1::2/64 10.10.0.60/24,10.10.0.1,-" \
            "lab2-s-att-2 10.20.1.98/24,10.20.1.1,fd00:20:1::62/64 10.10.0.61/24,10.10.0.1,-" \
            "lab2-s-web-1 10.20.1.4/24,10.20.1.1,fd00:20:1::4/64 10.10.0.4/24,10.10.0.1,-" \
            "lab2-s-web-2 10.20.1.5/24,10.20.1.1,fd00:20:1::5/64 10.10.0.5/24,10.10.0.1,-"
br1=$(vm_field lab-s-att-1 'd["nics"][0]["bridge"]') br2=$(vm_field lab2-s-att-1 'd["nics"][0]["bridge"]')
echo "segment red: lab on $br1, lab2 on $br2"
[ "$br1" != "$br2" ] || fail "lab and lab2 share the red segment's bridge $br1"
ip -n "$ns" link show "$br2" >/dev/null 2>&1 || fail "no bridge $br2"
before=$(hc --json vm ls)
refused lab3 'scenarios[0].roles[0].nics[1].addresses[0]' \
    '10.10.0.50 is already taken by guest lab-s-att-1' ''
[ "$(hc --json vm ls)" = "$before" ] || fail "the refused lab3 made guests"

echo "== vm create and templates"
out=$(hc vm create dup --template probe \
      --nic '{"network": "management", "ipv4": "10.10.0.51/24"}' 2>&1)
[[ $out == *"10.10.0.51/24 is already the address of guest lab-s-att-2"*"(HTTP 409)"* ]] ||
    fail "vm create with a held address: $out"
out=$(hc vm create other --template probe \
      --nic '{"network": "management", "ipv4": "10.20.1.99/24"}' 2>&1) ||
    fail "the same address on another bridge was refused: $out"
out=$(hc template add t2 --image "$parent" --format raw --kernel "$probe" \
      --nic '{"network": "management", "ipv4": "10.10.0.9/24"}' 2>&1)
[[ $out == *"[field nics[0].ipv4]"*"(HTTP 400)"* ]] || fail "template with an ipv4: $out"

echo "== range down frees, range up gives the same plan"
hc range down lab2 >/dev/null || fail "range down lab2"
hc range down lab >/dev/null || fail "range down lab"
hc vm rm other >/dev/null
[ "$(hc --json vm ls)" = "[]" ] || fail "guests left after range down"
up "$tmp/lab.yaml" || fail "range up lab after down"
expect_plan lab
hc range down lab >/dev/null || fail "range down lab (end)"
finish
