#!/bin/bash
# herdd's DHCP for range networks (issue 12; docs/ranges.md "DHCP"). Needs
# no KVM: the DHCP client is busybox's udhcpc in a network namespace of its
# own, on a veth into the range's segment bridge, with a guest's MAC.
#  - range up of a spec with two segments with `dhcp: true` (one with a
#    gateway): one dnsmasq per segment, each in its own network namespace,
#    its veth on the segment's bridge, the bridges without a host address;
#  - a client with guest red-1's MAC on the red bridge gets exactly the
#    address (and router) herdd planned and shows (vm inspect); blue's guest
#    on the blue bridge gets its own, without a router;
#  - no leaks: red-1's MAC on the blue bridge and an unknown MAC on the red
#    bridge get no lease;
#  - bad specs: dhcp not a boolean, a subnet the server leaves too small:
#    400 with the field path, nothing created;
#  - a second range with the same segments gets its own bridges, servers
#    and leases (the same addresses, isolated); DHCP on a bridge ranges
#    share (a role bridge) is one range's: 409 for the second;
#  - herdd restarted: the servers keep serving; range down stops them and
#    leaves no dnsmasq, veth, configuration file or range directory.
# Exit 0 pass, 77 skip, else fail.
set -u
herdd_lib_no_kvm=1
. "$(dirname "$0")/herdd-lib.sh"
[ -x /usr/sbin/dnsmasq ] || skip "dnsmasq is not installed (dnsmasq-base)"
busybox=$(command -v busybox) || skip "busybox is not installed"
"$busybox" udhcpc --help >/dev/null 2>&1 || [ $? -eq 1 ] || skip "busybox has no udhcpc"
cl=hdc$$

start_range_herdd

spec() { # NAME [SED-EXPR]
    sed -e "s/^range: dl/range: $1/" ${2:+-e "$2"} > "$tmp/$1.yaml" <<'YAML'
range: dl
networks:
  communication:
    segments:
      red: {subnet: 10.30.1.0/24, gateway: 10.30.1.1, dhcp: true}
      blue: {subnet: 10.30.2.0/28, dhcp: true}
scenarios:
  - name: s
    roles:
      - name: red
        template: probe
        count: 2
        nics: [{network: communication, segment: red}]
      - name: blue
        template: probe
        count: 1
        nics: [{network: communication, segment: blue}]
YAML
    echo "$tmp/$1.yaml"
}
up() {
    timeout 300 "$herdctl_bin" --socket "$sock" range up "$1" >/dev/null 2>&1
    local st
    st=$(hc --json range status "$(sed -n 's/^range: //p' "$1")" | js 'd["state"]')
    [ "$st" = up ] || [ "$st" = degraded ] || { echo "range: $st"; return 1; }
}
js() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
nicf() { hc --json vm inspect "$1" | js "d['nics'][0].get('$2', '-')"; }
dnsmasqs() { pgrep -x dnsmasq | while read -r p; do
    tr '\0' ' ' < /proc/$p/cmdline | grep -q -- "--conf-file=$tmp/state/" && echo "$p"; done; }

# A DHCP client: MAC on BRIDGE (in herdd's namespace); prints "IP ROUTER"
# or nothing when no lease comes within ~6 s.
dhcp_client() { # MAC BRIDGE
    ip netns add "$cl" || return 1
    ip -n "$ns" link add hdc-h type veth peer name eth0 netns "$cl"
    ip -n "$ns" link set hdc-h master "$2" up
    ip -n "$cl" link set eth0 address "$1" up
    cat > "$tmp/udhcpc.sh" <<'SH'
#!/bin/sh
[ "$1" = bound ] && echo "$ip ${router:--}" > "$LEASE_OUT"
exit 0
SH
    chmod +x "$tmp/udhcpc.sh"
    rm -f "$tmp/lease"
    LEASE_OUT=$tmp/lease ip netns exec "$cl" "$busybox" udhcpc -f -q -n -i eth0 -t 3 -T 2 \
        -s "$tmp/udhcpc.sh" >/dev/null 2>&1
    ip -n "$ns" link del hdc-h 2>/dev/null
    ip netns del "$cl"
    cat "$tmp/lease" 2>/dev/null
}
trap 'ip netns del "$cl" 2>/dev/null; cleanup' EXIT

echo "== bad specs: 4xx with the field, nothing created"
before=$(hc --json vm ls)
refused() { # NAME FIELD TEXT SED-EXPR [STATUS]: the spec, edited (m2: mspec's)
    local out f
    if [ "$1" = m2 ]; then f=$(mspec m2); else f=$(spec "$1" "$4"); fi
    out=$(hc range up "$f" 2>&1)
    [[ $out == *"[field $2]"*"(HTTP ${5:-400})"* && $out == *"$3"* ]] ||
        fail "$1: expected ${5:-400} at $2 with '$3', got: $out"
}
refused bad-bool 'networks.communication.segments.red.dhcp' "expected true or false, got 'yes'" \
    's/gateway: 10.30.1.1, dhcp: true/gateway: 10.30.1.1, dhcp: yes/'
refused bad-full 'networks.communication.segments.blue.subnet' \
    '10.30.2.0/30 has 0 free host addresses for 1 NICs' \
    's#10.30.2.0/28, dhcp: true#10.30.2.0/30, gateway: 10.30.2.1, dhcp: true#'
[ "$(hc --json vm ls)" = "$before" ] || fail "a refused spec made guests"
[ -z "$(dnsmasqs)" ] || fail "a refused spec started dnsmasq"

echo "== range up: one server per segment, in its own namespace"
up "$(spec dl)" || fail "range up dl"
hc --json range status dl > "$tmp/st.json"
[ "$(js 'len(d["dhcp"])' < "$tmp/st.json")" = 2 ] || fail "not 2 DHCP servers: $(cat "$tmp/st.json")"
[ "$(dnsmasqs | wc -l)" = 2 ] || fail "not 2 dnsmasq processes: $(dnsmasqs)"
for i in 0 1; do
    br=$(js "d['dhcp'][$i]['bridge']" < "$tmp/st.json")
    veth=$(js "d['dhcp'][$i]['veth']" < "$tmp/st.json")
    pid=$(js "d['dhcp'][$i]['pid']" < "$tmp/st.json")
    ip -n "$ns" -o link show master "$br" | grep -q " $veth@" || fail "$veth is not on $br"
    [ "$(readlink /proc/$pid/ns/net)" != "$(ip netns exec "$ns" readlink /proc/self/ns/net)" ] ||
        fail "dnsmasq $pid runs in herdd's network namespace"
    [ -z "$(ip -n "$ns" -4 -o addr show dev "$br")" ] || fail "bridge $br has a host address"
    [ "$(ps -o user= -p "$pid")" = nobody ] || fail "dnsmasq $pid runs as $(ps -o user= -p "$pid")"
done
red_br=$(nicf dl-s-red-1 bridge) blue_br=$(nicf dl-s-blue-1 bridge)

echo "== leases: what herdd planned, per segment"
lease_is() { # GUEST BRIDGE WANT
    local got
    got=$(dhcp_client "$(nicf "$1" mac)" "$2")
    echo "  $1 ($(nicf "$1" mac)) on $2: lease '$got'"
    [ "$got" = "$3" ] || fail "$1 on $2: lease '$got', expected '$3'"
}
check_leases() {
    lease_is dl-s-red-1 "$red_br" "$(nicf dl-s-red-1 ipv4 | cut -d/ -f1) 10.30.1.1"
    lease_is dl-s-red-2 "$red_br" "10.30.1.3 10.30.1.1"
    lease_is dl-s-blue-1 "$blue_br" "10.30.2.1 -"
}
[ "$(nicf dl-s-red-1 ipv4)" = 10.30.1.2/24 ] || fail "dl-s-red-1: $(nicf dl-s-red-1 ipv4)"
check_leases
echo "== no leaks: a red MAC on blue, an unknown MAC on red"
lease_is dl-s-red-1 "$blue_br" ""
got=$(dhcp_client 52:54:00:aa:bb:cc "$red_br")
[ -z "$got" ] || fail "an unknown MAC got a lease: $got"
grep -q 'DHCPACK(eth0) 10.30.1.2 ' "$tmp"/state/ranges/dl/dhcp-"$red_br".log ||
    fail "the red server's log has no DHCPACK for 10.30.1.2"

echo "== a second range with the same segments: its own bridges, servers and leases"
up "$(spec other 's/count: 2/count: 1/')" || fail "range up other"
[ "$(nicf other-s-red-1 ipv4)" = 10.30.1.2/24 ] || fail "other-s-red-1: $(nicf other-s-red-1 ipv4)"
[ "$(nicf other-s-red-1 bridge)" != "$red_br" ] || fail "ranges other and dl share $red_br"
lease_is other-s-red-1 "$(nicf other-s-red-1 bridge)" "10.30.1.2 10.30.1.1"
lease_is dl-s-red-1 "$(nicf other-s-red-1 bridge)" ""
hc range down other >/dev/null || fail "range down other"

echo "== DHCP on a bridge ranges share (the management role bridge): one range only"
mspec() { # NAME
    cat > "$tmp/$1.yaml" <<YAML
range: $1
networks:
  management: {subnet: 10.50.0.0/24, dhcp: true}
scenarios:
  - name: s
    roles:
      - {name: m, template: probe, count: 1, nics: [{network: management}]}
YAML
    echo "$tmp/$1.yaml"
}
up "$(mspec m1)" || fail "range up m1"
refused m2 'networks.management.dhcp' "bridge hbr-mgmt already has range m1's DHCP server" '' 409
hc range ls | grep -q '^m2 ' && fail "the refused m2 left a range"
hc range down m1 >/dev/null || fail "range down m1"

echo "== herdd restarted: the servers keep serving"
pids=$(dnsmasqs | sort)
stop_herdd TERM
start_herdd
[ "$(dnsmasqs | sort)" = "$pids" ] || fail "dnsmasq changed across a herdd restart"
check_leases

echo "== range down: nothing left"
hc range down dl >/dev/null || fail "range down dl"
sleep 0.5
[ -z "$(dnsmasqs)" ] || fail "dnsmasq left after range down: $(dnsmasqs)"
[ -z "$(ip -n "$ns" -o link show type veth)" ] || fail "veths left: $(ip -n "$ns" -o link show type veth)"
[ ! -e "$tmp/state/ranges/dl" ] || fail "left: $(ls -la "$tmp/state/ranges/dl")"

finish
