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
