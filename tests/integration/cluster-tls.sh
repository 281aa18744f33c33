#!/bin/bash
# herdd on an etcd that speaks TLS only and wants client certificates
# (docs/cluster.md "Configuration": cluster.ca, cert, key): a CA, a server
# certificate for 127.0.0.1 and a client certificate made here with
# openssl; one etcd of the test's own (free ports, temp data dir). Checks:
#  - herdd with ca, cert and key registers and `herdctl cluster nodes`
#    lists it over https;
#  - herdd without a client certificate runs unregistered and its cluster
#    status says why (the TLS handshake fails), logged once, not each try;
#  - herdd trusting the wrong CA (a stranger's) likewise ("SSL certificate
#    problem"); nothing registered by either;
#  - SIGTERM: the key is gone; nothing of the test is left.
# No guests, no KVM. Exit 0 pass, 77 skip (not root, no /usr/bin/etcd or
# openssl, not built), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
herdd_bin=${HERD_HERDD:-$build/bin/herdd}
herdctl_bin=${HERD_HERDCTL:-$build/bin/herdctl}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
etcd_bin=${HERD_ETCD:-/usr/bin/etcd}

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (herdd)"
[ -x "$etcd_bin" ] || skip "$etcd_bin is missing (apt-get install etcd-server)"
for f in "$herdd_bin" "$herdctl_bin" "$vmm"; do
    [ -x "$f" ] || skip "$f is not built"
done
for t in curl python3 openssl; do
    command -v $t >/dev/null || skip "$t is not installed"
done

tmp=$(mktemp -d /tmp/herd-cluster-tls.XXXXXX)
chmod 755 "$tmp"
etcd_pid= herdd_pid=
failures=0

cleanup() {
    [ -n "$herdd_pid" ] && { kill -KILL "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
    [ -n "$etcd_pid" ] && { kill -KILL "$etcd_pid"; wait "$etcd_pid"; } 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP # through cleanup too (run-all's timeout sends TERM)
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# --- certificates: a CA, etcd's for IP 127.0.0.1, a client's; a stranger CA ---
pki=$tmp/pki
mkdir "$pki"
ossl() { openssl "$@" 2>>"$tmp/openssl.log" || { cat "$tmp/openssl.log"; exit 1; }; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=herd-test-ca \
    -keyout "$pki/ca.key" -out "$pki/ca.pem"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stranger-ca \
    -keyout "$pki/other.key" -out "$pki/other.pem"
leaf() { # NAME EXTENSIONS
    ossl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.csr"
    printf '%s\n' "$2" > "$pki/$1.ext"
    ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem"
}
leaf server "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
leaf client "extendedKeyUsage=clientAuth"

. "$root/tests/integration/cluster-lib.sh"
tls_curl() { curl -s --cacert "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key" "$@"; }
up=
for _ in 1 2 3; do # two free ports; again if one was taken meanwhile
    read -r cport pport < <(free_ports 2)
    endpoint=https://127.0.0.1:$cport
    rm -rf "$tmp/etcd"
    : > "$tmp/etcd.log"
    "$etcd_bin" --name tls --data-dir "$tmp/etcd" \
        --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
        --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "tls=http://127.0.0.1:$pport" \
        --cert-file "$pki/server.pem" --key-file "$pki/server.key" \
        --client-cert-auth --trusted-ca-file "$pki/ca.pem" >> "$tmp/etcd.log" 2>&1 &
    etcd_pid=$!
    for _ in $(seq 100); do
        tls_curl "$endpoint/health" 2>/dev/null | grep -q '"health":"true"' && { up=1; break; }
        kill -0 "$etcd_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$up" ] && break
    { kill -KILL "$etcd_pid"; wait "$etcd_pid"; } 2>/dev/null
    etcd_pid=
    etcd_lost_port "$tmp/etcd.log" || break
done
[ -n "$up" ] || { echo "etcd (TLS) did not come up:"; tail -n 20 "$tmp/etcd.log"; exit 1; }

config() { # NAME EXTRA-CLUSTER-LINES
    mkdir -p "$tmp/$1"
    cat > "$tmp/$1.yaml" <<YAML
node: $1
state_dir: $tmp/$1/state
socket: $tmp/$1.sock
vmm: $vmm
image_dirs: [$tmp]
cgroup_root: "off"
cluster:
  endpoints: $endpoint
  address: 127.0.0.1
  lease_ttl: 3
$2
YAML
}
nodes_in_etcd() {
    tls_curl "$endpoint/v3/kv/range" -d '{"key": "L2hlcmQvbm9kZXMv", "range_end": "L2hlcmQvbm9kZXMw"}' |
        python3 -c 'import json, sys, base64
print(" ".join(base64.b64decode(k["key"]).decode() for k in json.load(sys.stdin).get("kvs", [])))'
}

# start_herdd NAME: in the background, its API up
start_herdd() {
    "$herdd_bin" --config "$tmp/$1.yaml" >> "$tmp/$1.log" 2>&1 &
    herdd_pid=$!
    for _ in $(seq 100); do
        [ -S "$tmp/$1.sock" ] && "$herdctl_bin" --socket "$tmp/$1.sock" node profile >/dev/null 2>&1 &&
            return 0
        kill -0 "$herdd_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "herdd $1 did not come up:"
    cat "$tmp/$1.log"
    exit 1
}
stop_herdd() { { kill -TERM "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null; herdd_pid=; }
last_error() {
    "$herdctl_bin" --socket "$tmp/$1.sock" --json cluster status |
        python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["registered"], d["last_error"])'
}

# --- without a client certificate, and trusting another CA: never registered ---
# (herdd runs: its guests do not wait for etcd; status says why)
config nocert "  ca: $pki/ca.pem"
start_herdd nocert
sleep 1.5
[[ $(last_error nocert) == "False etcd $endpoint: "* ]] || fail "no certificate: $(last_error nocert)"
[ "$(grep -c 'herdd: cluster: ' "$tmp/nocert.log")" -le 2 ] ||
    fail "no certificate: the same failure logged each tick: $(cat "$tmp/nocert.log")"
stop_herdd
config stranger "  ca: $pki/other.pem
  cert: $pki/client.pem
  key: $pki/client.key"
start_herdd stranger
[[ $(last_error stranger) == "False etcd $endpoint: "*"SSL certificate problem"* ]] ||
    fail "wrong CA: $(last_error stranger)"
stop_herdd
[ -z "$(nodes_in_etcd)" ] || fail "registered without TLS: $(nodes_in_etcd)"

# --- with ca, cert and key: registered, listed ---
config t1 "  ca: $pki/ca.pem
  cert: $pki/client.pem
  key: $pki/client.key"
start_herdd t1
"$herdctl_bin" --socket "$tmp/t1.sock" cluster nodes | grep -q '^t1 ' ||
    fail "cluster nodes over TLS: $("$herdctl_bin" --socket "$tmp/t1.sock" cluster nodes 2>&1)"
"$herdctl_bin" --socket "$tmp/t1.sock" --json cluster status | grep -q "\"endpoint\": \"$endpoint\"" ||
    fail "status over TLS"
[ "$(nodes_in_etcd)" = /herd/nodes/t1 ] || fail "in etcd: '$(nodes_in_etcd)'"
sleep 2 # a renewal or two over TLS
"$herdctl_bin" --socket "$tmp/t1.sock" cluster status | grep -q '^registered  yes' ||
    fail "t1 lost its registration over TLS: $(cat "$tmp/t1.log")"
stop_herdd
[ -z "$(nodes_in_etcd)" ] || fail "after SIGTERM: $(nodes_in_etcd)"
kill -TERM "$etcd_pid"
wait "$etcd_pid" 2>/dev/null
etcd_pid=
pgrep -f "$tmp" >/dev/null && fail "processes of this test left: $(pgrep -af "$tmp")"

if [ "$failures" -ne 0 ]; then
    echo "--- t1 log"
    tail -n 20 "$tmp/t1.log"
    echo "cluster-tls: $failures check(s) failed"
    exit 1
fi
echo "cluster-tls: all checks passed"
exit 0
