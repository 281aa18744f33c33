#!/bin/bash
# herdd's memory admission (docs/herdd.md "Capacity, storage"), without
# starting a guest: a range of 300 probe guests whose memory (+ 16 MiB
# each) is sized to commit about 3 times what this host may hold
# (MemTotal × 0.9):
#  1. default policy (memory_overcommit 1): `node plan` says it does not fit,
#     naming the memory threshold; `range up` is refused with 409 naming
#     it, and creates no guest;
#  2. memory_overcommit 4: the plan fits, with the figures it used
#     (mem_limit, mem_commit_limit = 4 × mem_limit, req_mem, req_resident =
#     req_mem / 4 rounded up, use_resident 0 with nothing running), the
#     node profile reports limits.mem_commit, use.resident and the policy,
#     and herdctl's text of both prints those figures;
#     500 of them (5 times the host's memory) are still refused, naming the
#     overcommit; with RLIMIT_NOFILE 1024 (prlimit on the running herdd) the
#     300 are refused naming the descriptors they would need (3 a guest +
#     256), and the profile says 256 guests fit by descriptors;
#  3. a configuration with memory_overcommit 0 or 101 does not start.
# Exit 0 pass, 77 skip, else fail.
set -u
herdd_lib_no_kvm=1
. "$(dirname "$0")/herdd-lib.sh"

# 300 guests whose memory (role mem, + 16 MiB each) commits 3 times what
# this host may hold (MemTotal × 0.9); 500 of them commit 5 times
mem_mib=$(python3 -c '
for l in open("/proc/meminfo"):
    if l.startswith("MemTotal:"):
        print(int(int(l.split()[1]) * 1024 * 0.9 * 3 / 300) // 2**20 - 16)')
count=300
per=$(( (mem_mib + 16) * 1024 * 1024 ))
spec() { # NAME COUNT
    printf 'range: %s\nscenarios:\n  - name: s\n    roles:\n      - {name: g, template: probe, count: %d, mem: %dM}\n' "$1" "$2" "$mem_mib"
}
spec big "$count" > "$tmp/big.yaml"
spec huge 500 > "$tmp/huge.yaml"

# 1. no memory overcommit
write_config "capacity: {cpu_overcommit: 1000}"
start_herdd
make_parent
add_probe_template probe >/dev/null || fail "template add"
hc --json node plan "$tmp/big.yaml" > "$tmp/plan1.json" || fail "node plan (default policy)"
check "plan without overcommit: does not fit, names the threshold" python3 - "$tmp/plan1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = d["fits"] is False and "memory threshold 0.9 would be exceeded" in d["message"]
ok = ok and d["mem_commit_limit"] == d["mem_limit"] and d["memory_overcommit"] == 1
ok = ok and d["rows"][0]["binds"] == "memory"
if not ok: print(d)
sys.exit(0 if ok else 1)
PY
if out=$(hc range up "$tmp/big.yaml" 2>&1); then
    fail "range up of $count guests without overcommit was admitted"
fi
case "$out" in
    *"admission refused: memory threshold 0.9 would be exceeded"*"(HTTP 409)"*) ;;
    *) fail "range up of $count guests without overcommit: $out" ;;
esac
[ "$(hc --json vm ls)" = "[]" ] || fail "a refused range up left guests"
stop_herdd

# 2. memory_overcommit 4
write_config "capacity: {cpu_overcommit: 1000, memory_overcommit: 4}"
start_herdd
hc --json node plan "$tmp/big.yaml" > "$tmp/plan4.json" || fail "node plan (overcommit 4)"
check "plan with overcommit 4: fits, with its figures" python3 - "$tmp/plan4.json" "$count" "$per" <<'PY'
import json, sys, math
d = json.load(open(sys.argv[1])); n = int(sys.argv[2]); per = int(sys.argv[3])
bad = []
if d["fits"] is not True: bad.append("does not fit: " + d["message"])
if d["mem_commit_limit"] != d["mem_limit"] * 4: bad.append("commit limit is not 4 x the limit")
if d["req_mem"] != n * per: bad.append(f"req_mem {d['req_mem']} != {n * per}")
if d["req_resident"] != math.ceil(n * per / 4): bad.append(f"req_resident {d['req_resident']}")
if d["use_resident"] != 0 or d["use_mem"] != 0: bad.append("use is not 0 with nothing running")
if d["memory_overcommit"] != 4: bad.append("memory_overcommit")
row = d["rows"][0]
if row["fits"] < n: bad.append(f"row fits {row['fits']} < {n}")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
PY
hc --json node profile > "$tmp/node.json" || fail "node profile"
check "node profile: the figures admission uses" python3 - "$tmp/node.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
l, u, p = d["limits"], d["use"], d["policy"]
ok = l["mem_commit"] == l["mem"] * 4 and u["resident"] == 0 and p["memory_overcommit"] == 4
if not ok: print(d)
sys.exit(0 if ok else 1)
PY
# herdctl's text says the same figures
hc node plan "$tmp/big.yaml" > "$tmp/plan4.txt" || fail "node plan (text)"
grep -qE "^memory: the range commits .* \\(limit .*, 0 ?B committed now\\), expected to hold .* \\(limit .*, 0 ?B held now\\)$" "$tmp/plan4.txt" ||
    fail "node plan text: $(cat "$tmp/plan4.txt")"
hc node profile > "$tmp/node.txt" || fail "node profile (text)"
grep -qE "^ +committed .* \\(memory_overcommit 4\\), resident 0 ?B \\(measured\\)$" "$tmp/node.txt" ||
    fail "node profile text: $(cat "$tmp/node.txt")"
hc --json node plan "$tmp/huge.yaml" > "$tmp/plan5.json" || fail "node plan (huge)"
check "5 x the host's memory is still refused, naming the overcommit" python3 - "$tmp/plan5.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = d["fits"] is False and "memory overcommit 4.0 would be exceeded" in d["message"]
if not ok: print(d)
sys.exit(0 if ok else 1)
PY
# herdd's descriptors: 3 a guest + 256 must stay under RLIMIT_NOFILE
if command -v prlimit >/dev/null; then
    prlimit --pid "$herdd_pid" --nofile=1024:1024 || fail "prlimit"
    [ "$(hc --json node profile | python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["guests_by_descriptors"])')" = 256 ] ||
        fail "guests_by_descriptors with RLIMIT_NOFILE 1024 is not 256"
    if out=$(hc range up "$tmp/big.yaml" 2>&1); then
        fail "range up of 300 guests admitted under RLIMIT_NOFILE 1024"
    fi
    case "$out" in
        *"open descriptors would pass RLIMIT_NOFILE: 300 guests need about 1156 of 1024"*"(HTTP 409)"*) ;;
        *) fail "range up under RLIMIT_NOFILE 1024: $out" ;;
    esac
    [ "$(hc --json vm ls)" = "[]" ] || fail "a refused range up left guests"
else
    echo "skip: descriptor admission: prlimit is not installed"
fi
stop_herdd

# 3. bad ratios stop herdd from starting, naming the key
for bad in 0 101 x; do
    write_config "capacity: {memory_overcommit: $bad}"
    if ip netns exec "$ns" "$herdd_bin" --config "$tmp/herdd.yaml" > "$tmp/bad.log" 2>&1; then
        fail "herdd started with memory_overcommit $bad"
    fi
    grep -q "memory_overcommit" "$tmp/bad.log" || fail "memory_overcommit $bad: $(cat "$tmp/bad.log")"
done
finish
