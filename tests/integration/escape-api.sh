#!/bin/bash
# herdd's API against local callers that hold no role, or too many
# connections (issue 11 item 6). Needs no KVM: herdd serves its API with no
# guest. The socket is 0666, so any local uid (a guest uid too) may connect:
#  - 3000 connections from uid 65534 (no role), each starting a POST with a
#    Content-Length of 1000000 and sending its body slowly (16 KiB per
#    connection per round, up to 512 KiB): each is answered 403 (the
#    project's JSON error) before any body byte is read, or refused by the
#    connection limit; herdd's VmRSS (sampled every round) stays under
#    ESCAPE_API_RSS_MAX_KB (default 65536);
#  - root still gets its answers; a body announced over 1 MiB gets 413 at
#    once; JSON nested 2040 deep (jansson's limit is 2048) and 5000 deep is
#    answered 400 on the 2 MiB per-connection thread stacks; an unknown
#    field in an action's body is answered 400 naming it (herdd read the
#    name after freeing the body: escape-sanitizers.sh's ASan herdd aborted);
#  - api_connections_per_uid (here 16, ESCAPE_API_PER_UID) connections from
#    uid 4242 (auditor) are served; the next is answered 429; after one
#    closes, a new one is served again.
# HERD_HERDD=other/herdd runs it against another build (how the figures
# before the fix were taken). Exit 0 pass, 77 skip, else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
herdd_bin=${HERD_HERDD:-$build/bin/herdd}
vmm=${HERD_VMM:-$build/bin/herd-vmm}
rss_max=${ESCAPE_API_RSS_MAX_KB:-65536}
per_uid=${ESCAPE_API_PER_UID:-16}  # api_connections_per_uid for this herdd

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (runs clients as other uids)"
command -v setpriv >/dev/null || skip "setpriv is not installed"
command -v curl >/dev/null || skip "curl is not installed"
[ -x "$herdd_bin" ] || skip "$herdd_bin is not built"
# the clients run as other uids: a python3 they may execute
py=/usr/bin/python3
[ -x "$py" ] || skip "$py is not installed"

tmp=$(mktemp -d /tmp/escape-api.XXXXXX)
chmod 755 "$tmp"
sock=$tmp/herdd.sock
herdd_pid=
failures=0
cleanup() {
    [ -n "$herdd_pid" ] && { kill -KILL "$herdd_pid"; wait "$herdd_pid"; } 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

cat > "$tmp/herdd.yaml" <<YAML
node: test
state_dir: $tmp/state
socket: $sock
vmm: $vmm
cgroup_root: "off"
users: {0: [sysadmin, secadmin, auditor], 4242: auditor}
api_connections_per_uid: $per_uid
YAML
# herdd before the fix does not know the key: run it without
"$herdd_bin" --config "$tmp/herdd.yaml" --check >/dev/null 2>&1 ||
    sed -i '/api_connections_per_uid/d' "$tmp/herdd.yaml"
ulimit -n 20000 2>/dev/null
"$herdd_bin" --config "$tmp/herdd.yaml" >> "$tmp/herdd.log" 2>&1 &
herdd_pid=$!
for _ in $(seq 200); do
    [ -S "$sock" ] && curl -s --unix-socket "$sock" -o /dev/null http://h/v1/node && break
    kill -0 "$herdd_pid" 2>/dev/null || break
    sleep 0.05
done
[ -S "$sock" ] || { cat "$tmp/herdd.log"; echo "FAIL: herdd did not come up"; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' /proc/"$herdd_pid"/status; }
echo "herdd VmRSS at start: $(rss) kB"

cat > "$tmp/flood.py" <<'PY'
# Many AF_UNIX connections, each a POST announcing a large body, its body
# sent slowly; prints one JSON summary line.
import json, os, resource, socket, sys, time
path, pid, nconn, rounds, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, nconn + 100), hard))
max_threads = 0
def rss():
    global max_threads
    r = 0
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                r = int(l.split()[1])
            if l.startswith("Threads:"):
                max_threads = max(max_threads, int(l.split()[1]))
    return r
head = (b"POST /v1/vms HTTP/1.1\r\nHost: herd\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n")
socks, statuses, errors, connect_fail = {}, {}, {}, 0
max_rss = rss()
t0 = time.time()
for i in range(nconn):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)  # blocking: waits while herdd's backlog is full
        s.sendall(head)
    except OSError as ex:
        connect_fail += 1
        errors[ex.strerror] = errors.get(ex.strerror, 0) + 1
        s.close()
        continue
    s.setblocking(False)
    socks[i] = [s, b""]
    if i % 250 == 0:
        max_rss = max(max_rss, rss())
body = b" " * chunk
def poll_replies():
    for i, e in list(socks.items()):
        s = e[0]
        try:
            d = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            d = b""
        if d:
            e[1] += d
            continue
        # closed by herdd: what did it answer?
        st = e[1].split(b" ", 2)[1].decode() if e[1].startswith(b"HTTP/1.") else "closed"
        statuses[st] = statuses.get(st, 0) + 1
        if st != "closed":
            b = e[1].split(b"\r\n\r\n", 1)[-1]
            try:
                j = json.loads(b)
                if not ("error" in j and "field" in j):
                    statuses["bad-json"] = statuses.get("bad-json", 0) + 1
            except ValueError:
                statuses["bad-json"] = statuses.get("bad-json", 0) + 1
        s.close()
        del socks[i]
sent = 0
for r in range(rounds):
    poll_replies()
    for i, e in list(socks.items()):
        try:
            sent += e[0].send(body)
        except BlockingIOError:
            pass
        except OSError:
            pass
    max_rss = max(max_rss, rss())
    time.sleep(0.05)
deadline = time.time() + 5
while socks and time.time() < deadline:
    poll_replies()
    time.sleep(0.05)
max_rss = max(max_rss, rss())
print(json.dumps({"statuses": statuses, "still_open": len(socks), "connect_fail": connect_fail, "errors": errors,
                  "body_bytes_sent": sent, "max_rss_kb": max_rss, "max_threads": max_threads,
                  "seconds": round(time.time() - t0, 1)}))
for e in socks.values():
    e[0].close()
PY

echo "== 3000 connections from uid 65534 (no role), large POST bodies sent slowly"
out=$(setpriv --reuid 65534 --regid 65534 --clear-groups \
      "$py" "$tmp/flood.py" "$sock" "$herdd_pid" 3000 32 16384)
echo "$out"
kill -0 "$herdd_pid" 2>/dev/null || fail "herdd died"
j() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($1)" "$out"; }
[ "$(j 'd["still_open"]')" = 0 ] || fail "connections still open after the flood: $(j 'd["still_open"]')"
[ "$(j 'd["statuses"].get("403", 0)')" -gt 0 ] || fail "no connection was answered 403"
[ "$(j 'sorted(set(d["statuses"]) - {"403", "closed"})')" = "[]" ] ||
    fail "answers other than 403: $(j 'd["statuses"]')"
max_rss=$(j 'd["max_rss_kb"]')
echo "herdd VmRSS: at most $max_rss kB during the flood (bound $rss_max kB), $(rss) kB after"
[ "$max_rss" -le "$rss_max" ] || fail "herdd's VmRSS reached $max_rss kB (bound $rss_max kB)"
grep -q "uid 65534 has no role" "$tmp/state/audit.log" 2>/dev/null ||
    echo "note: no refused entry in the audit log"

echo "== root is still served"
code=$(curl -s --unix-socket "$sock" -o "$tmp/out" -w '%{http_code}' http://h/v1/node)
[ "$code" = 200 ] || fail "GET /v1/node as root: $code $(cat "$tmp/out")"

echo "== a body announced over 1 MiB: 413 at once"
out=$(python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"POST /v1/vms HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n")
d = b""
try:
    while True:
        x = s.recv(4096)
        if not x:
            break
        d += x
except OSError:
    pass
print(d.split(b"\r\n")[0].decode(), d.split(b"\r\n\r\n", 1)[-1].decode().strip())
PY
)
echo "$out"
case $out in "HTTP/1.1 413 "*'"error"'*) ;; *) fail "over-size body: $out" ;; esac

echo "== deeply nested JSON on the API threads' stacks"
for depth in 2040 5000; do
    python3 -c "import sys; d=int(sys.argv[1]); sys.stdout.write('['*d + ']'*d)" $depth > "$tmp/deep"
    code=$(curl -s --unix-socket "$sock" -o "$tmp/out" -w '%{http_code}' --data-binary @"$tmp/deep" \
           http://h/v1/vms)
    [ "$code" = 400 ] || fail "nesting $depth: $code $(cat "$tmp/out")"
    kill -0 "$herdd_pid" 2>/dev/null || { fail "herdd died on nesting $depth"; break; }
done

echo "== an unknown field in an action's body is named in the answer"
# (the name is the parsed body's: it was read after the body was freed)
code=$(curl -s --unix-socket "$sock" -o "$tmp/out" -w '%{http_code}' \
       --data-binary '{"colour-of-the-guest":1}' http://h/v1/vms/nope/start)
[ "$code" = 400 ] && grep -q '"unknown field '"'colour-of-the-guest'"'","field":"colour-of-the-guest"' "$tmp/out" ||
    fail "unknown action field: $code $(cat "$tmp/out")"
kill -0 "$herdd_pid" 2>/dev/null || fail "herdd died on an unknown action field"

echo "== api_connections_per_uid ($per_uid) for uid 4242 (auditor)"
out=$(setpriv --reuid 4242 --regid 4242 --clear-groups "$py" - "$sock" "$per_uid" <<'PY'
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
def get(s):
    s.sendall(b"GET /v1/node HTTP/1.1\r\nHost: h\r\n\r\n")
    d = b""
    s.settimeout(5)
    try:
        while b"\r\n\r\n" not in d:
            x = s.recv(4096)
            if not x:
                break
            d += x
    except OSError:
        pass
    return d.split(b" ", 2)[1].decode() if d.startswith(b"HTTP/1.") else "none"
held = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(path); held.append(s)
time.sleep(0.3)
first = get(held[0])
extra = socket.socket(socket.AF_UNIX); extra.connect(path)
over = get(extra)
extra.close()
held.pop().close()
time.sleep(0.5)
again = socket.socket(socket.AF_UNIX); again.connect(path)
after = get(again)
print(first, over, after)
PY
)
echo "held connection: ${out%% *}, $((per_uid + 1))th: $(echo "$out" | cut -d' ' -f2), after one closed: ${out##* }"
[ "$out" = "200 429 200" ] || fail "per-uid limit: expected '200 429 200', got '$out'"

kill -0 "$herdd_pid" 2>/dev/null || fail "herdd died"
grep -qE 'ERROR: AddressSanitizer|runtime error|ERROR: LeakSanitizer' "$tmp/herdd.log" &&
    fail "sanitizer report in herdd's log"
if [ "$failures" -ne 0 ]; then
    echo "--- herdd log"
    tail -n 20 "$tmp/herdd.log"
    echo "escape-api: $failures check(s) failed"
    exit 1
fi
echo "escape-api: all checks passed"
