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

# start_etcd: on endpoint and pport (etcd's client and peer ports); 1 when a
# port was taken meanwhile
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
