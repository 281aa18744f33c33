# Shared by tests/integration/cluster-*.sh (sourced, not run).

# free_ports N: N TCP ports free on 127.0.0.1 now, picked below the ephemeral
# range, so that no outgoing connection (of this test or another) takes one
# between the pick and etcd's bind.
free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
lo, hi = 20000, 32000
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        hi = max(lo + 1000, min(hi, int(f.read().split()[0])))
except (OSError, ValueError):
    pass
got = []
while len(got) < int(sys.argv[1]):
    p = random.randrange(lo, hi)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in got:
            got.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*got)
PY
}

# etcd_lost_port LOG: etcd ended because a port was taken meanwhile
etcd_lost_port() { grep -q 'address already in use' "$1"; }

# The rest is for the tests that run several plain (no TLS) herdd nodes on
# one etcd: cluster-nodes.sh, cluster-range.sh. They set tmp, etcd_bin,
# endpoint, pport, herdctl_bin, etcd_pid and the pid array.

elapsed() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$EPOCHREALTIME"; }

# start_etcd: on endpoint and pport (etcd's client and peer ports; the peer
# port on 127.0.0.1, the client URL wherever endpoint says: the underlay's
# address with netns_up); 1 when a port was taken meanwhile
start_etcd() {
    "$etcd_bin" --name herd-test --data-dir "$tmp/etcd" \
        --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
        --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "herd-test=http://127.0.0.1:$pport" >> "$tmp/etcd.log" 2>&1 &
    etcd_pid=$!
    for _ in $(seq 100); do
        curl -sf "$endpoint/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        kill -0 "$etcd_pid" 2>/dev/null || break
        sleep 0.1
    done
    { kill -KILL "$etcd_pid"; wait "$etcd_pid"; } 2>/dev/null
    etcd_pid=
    etcd_lost_port "$tmp/etcd.log" && return 1
    echo "etcd did not come up:"
    tail -n 20 "$tmp/etcd.log"
    exit 1
}

hc() { local n=$1; shift; "$herdctl_bin" --socket "$tmp/$n.sock" "$@"; }

# herdd_up NAME: waits until node NAME's herdd (pid[NAME], just spawned)
# answers on its socket; its log and exit 1 if it ends first or never does
herdd_up() {
    local n=$1
    for _ in $(seq 100); do
        [ -S "$tmp/$n.sock" ] && hc "$n" node profile >/dev/null 2>&1 && return 0
        kill -0 "${pid[$n]}" 2>/dev/null || break
        sleep 0.05
    done
    echo "herdd $n did not come up:"
    cat "$tmp/$n.log"
    exit 1
}

stop_herdd() { # NAME SIGNAL
    { kill -"$2" "${pid[$1]}"; wait "${pid[$1]}"; } 2>/dev/null
    pid[$1]=
}

# ---- nodes in network namespaces (an option: cluster-vxlan.sh) -------------
# netns_up NODE...: one network namespace per node (ns[NODE]), each with its
# own bridges once its herdd runs there (node_run), and an underlay between
# them: a bridge in the root namespace (ul_br, address ul_host: etcd listens
# there, and the test reaches it) and a veth pair per node into it (ul0 in
# the node, address addr[NODE]: the node's cluster `address`). The subnet is
# a free 10.x.y.0/24; MTU 9000, so that VXLAN carries 1500-byte segments
# (50 bytes of overhead). 1 (with why) when it cannot be made. netns_down
# removes all of it and kills what still runs in the namespaces.
declare -A ns=() addr=()
ul_br= ul_host=
netns_up() {
    local n i=0 net
    for _ in $(seq 50); do
        net=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
        ip -4 route show | grep -q "^$net\." || ip -4 addr show | grep -q " $net\." || break
        net=
    done
    [ -n "$net" ] || { echo "no free 10.x.y.0/24 for the underlay"; return 1; }
    ul_br=hvu$(($$ % 1000000))
    ul_host=$net.254
    ip link add "$ul_br" mtu 9000 type bridge || return 1
    ip addr add "$ul_host/24" dev "$ul_br" && ip link set "$ul_br" up || return 1
    for n in "$@"; do
        i=$((i + 1))
        ns[$n]=hvx$(($$ % 1000000))-$n
        addr[$n]=$net.$i
        ip netns add "${ns[$n]}" || return 1
        ip link add "$ul_br-$n" mtu 9000 type veth peer name ul0 mtu 9000 netns "${ns[$n]}" || return 1
        ip link set "$ul_br-$n" master "$ul_br" up || return 1
        ip -n "${ns[$n]}" addr add "${addr[$n]}/24" dev ul0 || return 1
        ip -n "${ns[$n]}" link set ul0 up && ip -n "${ns[$n]}" link set lo up || return 1
    done
}
netns_down() {
    local n p
    for n in "${!ns[@]}"; do
        for p in $(ip netns pids "${ns[$n]}" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    done
    [ ${#ns[@]} -gt 0 ] && sleep 0.2
    for n in "${!ns[@]}"; do
        ip netns del "${ns[$n]}" 2>/dev/null
        ip link del "$ul_br-$n" 2>/dev/null
    done
    [ -n "$ul_br" ] && ip link del "$ul_br" 2>/dev/null
    ns=()
    ul_br=
}
# node_run NODE COMMAND...: the command in NODE's namespace. (A function:
# `node_run ... &` is a subshell, its $! not the command's; start a process
# to be signalled later with `ip netns exec "${ns[NODE]}" COMMAND &`, which
# execs it.)
node_run() { local n=$1; shift; ip netns exec "${ns[$n]}" "$@"; }
# node_link NODE up|down: NODE's underlay link (down: a partition of NODE)
node_link() { ip -n "${ns[$1]}" link set ul0 "$2"; }

# The tests' API and etcd helpers (they set tmp, endpoint and fail).
api() { # NODE METHOD PATH [BODY] -> "STATUS BODY"
    local n=$1 m=$2 p=$3
    shift 3
    curl -s --unix-socket "$tmp/$n.sock" -o "$tmp/api.out" -w '%{http_code}' -X "$m" \
        ${1+--data-binary "$1"} "http://herd$p"
    printf ' %s\n' "$(cat "$tmp/api.out")"
}
# etcd's JSON gateway: b64 TEXT; put KEY VALUE; get KEY (its value or "");
# del KEY
b64() { printf %s "$1" | base64 -w0; }
put() { curl -sf "$endpoint/v3/kv/put" -d "{\"key\": \"$(b64 "$1")\", \"value\": \"$(b64 "$2")\"}" >/dev/null || fail "put $1"; }
get() { curl -s "$endpoint/v3/kv/range" -d "{\"key\": \"$(b64 "$1")\"}" | python3 -c '
import base64, json, sys
kvs = json.load(sys.stdin).get("kvs", [])
print(base64.b64decode(kvs[0]["value"]).decode() if kvs else "")'; }
del() { curl -sf "$endpoint/v3/kv/deleterange" -d "{\"key\": \"$(b64 "$1")\"}" >/dev/null; }
# wait_range NODE RANGE EXPR SECONDS: until EXPR (python, d = range status)
# holds; the status in $tmp/status.json
wait_range() {
    local deadline=$((EPOCHSECONDS + $4))
    while :; do
        hc "$1" --json range status "$2" > "$tmp/status.json" 2>/dev/null &&
            python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" \
                "$tmp/status.json" 2>/dev/null && return 0
        [ "$EPOCHSECONDS" -lt "$deadline" ] || return 1
        sleep 0.3
    done
}
