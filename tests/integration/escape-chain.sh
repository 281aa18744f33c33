#!/bin/bash
# herd-test-needs: kvm
# Escapes through a guest's disk chain and a template's files, played as the
# attacker (issue 11, items 1 and 2). Each case fails without the fix:
#  1. a compromised herd-vmm rewrites its overlay's header between runs to
#     name a host file: the next start is refused (409, "pinned chain"),
#     audited and announced (vm.start_refused), and the file is never opened;
#     with the header restored the guest starts again;
#  2. the same while the guest runs under restart=on-failure, then the
#     guest's herd-vmm dies: herdd's restart is refused the same way;
#  3. herd-vmm itself, given herdd's pinned chain, refuses the rewritten
#     overlay before it opens the named file;
#  4. a uid with only the sysadmin role adds templates naming a file outside
#     image_dirs, a qcow2 inside whose chain leaves it, links out of it, a
#     device: 400 each, nothing opened; inside image_dirs it may add one;
#  5. template derive from a guest whose overlay was rewritten: refused.
# "Never opened" is watched with inotify (IN_OPEN) on the host files named.
. "$(dirname "$0")/herdd-lib.sh"
. "$(dirname "$0")/common.sh"
command -v setpriv >/dev/null || skip "setpriv is not installed (util-linux)"

images=$tmp/images
outside=$tmp/outside
mkdir -p "$images" "$outside"
image_dirs="[$images, $build]"
write_config "users: {0: [sysadmin, secadmin, auditor], 4242: sysadmin}"
start_herdd

make_parent
mv "$parent" "$images/parent.raw"
parent=$images/parent.raw
secret=$outside/secret.raw
printf 'HOST-SECRET' > "$secret"
truncate -s 1M "$secret"

# opens_of FILE...: starts an inotify watch; opened() says which were opened
python3 - "$tmp/opens" "$secret" "$outside" <<'PY' &
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
names = {}
for p in sys.argv[2:]:
    wd = libc.inotify_add_watch(fd, p.encode(), 0x20)  # IN_OPEN
    if wd < 0:
        sys.exit("inotify_add_watch %s failed" % p)
    names[wd] = p
out = open(sys.argv[1], "w", buffering=1)
out.write("watching\n")
while True:
    buf = os.read(fd, 4096)
    off = 0
    while off < len(buf):
        wd, mask, cookie, ln = struct.unpack_from("iIII", buf, off)
        name = buf[off + 16:off + 16 + ln].rstrip(b"\0").decode()
        out.write("OPEN %s%s\n" % (names.get(wd, "?"), "/" + name if name else ""))
        off += 16 + ln
PY
watcher=$!
trap 'kill $watcher 2>/dev/null; cleanup' EXIT
wait_line "$tmp/opens" '^watching' 10 || { cat "$tmp/opens"; fail "inotify watch"; exit 1; }
opened() { grep '^OPEN' "$tmp/opens"; }

# point OVERLAY at FILE (raw): what the guest's herd-vmm could write through
# the read-write fd it holds (qcow2 header: backing offset at 8, length at 16)
rewrite_backing() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
p, name = sys.argv[1], sys.argv[2].encode()
with open(p, "r+b") as f:
    h = f.read(104)
    off = struct.unpack_from(">Q", h, 8)[0]
    f.seek(off); f.write(name)
    f.seek(16); f.write(struct.pack(">I", len(name)))
PY
}
vm_state() { vm_field "$1" 'd["state"]'; }
seq0=$(jget "$(api GET '/v1/events?since=0' | cut -d' ' -f2-)" 'd["last"]')

echo "== 1. overlay rewritten between runs"
add_probe_template probe >/dev/null || fail "template add"
hc vm create g1 --template probe --start >/dev/null || fail "vm create g1"
wait_ready g1 || fail "g1 not ready"
hc vm stop g1 >/dev/null || fail "stop g1"
ov1=$tmp/state/vms/g1/disk.qcow2
rewrite_backing "$ov1" "$secret"
qemu-img info -U "$ov1" | grep -q "backing file: $secret" || fail "the rewrite did not take"
out=$(api POST /v1/vms/g1/start)
echo "   start: $out"
[ "${out%% *}" = 409 ] || fail "start after the rewrite: ${out%% *}, expected 409"
case $out in *"pinned chain"*"$parent"*) ;; *) fail "the refusal does not say why: $out" ;; esac
[ "$(vm_state g1)" = error ] || fail "g1 is $(vm_state g1), expected error"
ev=$(api GET "/v1/events?since=$seq0&type=vm.start_refused&name=g1" | cut -d' ' -f2-)
[ "$(jget "$ev" 'len(d["events"])')" -ge 1 ] || fail "no vm.start_refused event: $ev"
hc --json audit ls 50 > "$tmp/audit.json" || fail "audit ls"
grep -q '"vm.start' "$tmp/audit.json" && grep -q 'pinned chain' "$tmp/audit.json" ||
    fail "no audit entry for the refused start"
# with the right chain back, the guest starts (the check refuses only lies)
qemu-img rebase -u -f qcow2 -b "$parent" -F raw "$ov1" || fail "rebase back"
hc vm start g1 >/dev/null || fail "start with the header restored"
wait_ready g1 || fail "g1 not ready after the restore"

echo "== 2. rewritten while running, then herd-vmm dies (restart=on-failure)"
hc vm create g2 --template probe --restart on-failure --start >/dev/null || fail "vm create g2"
wait_ready g2 || fail "g2 not ready"
rewrite_backing "$tmp/state/vms/g2/disk.qcow2" "$secret"
kill -KILL "$(vm_field g2 'd["pid"]')" || fail "kill g2's herd-vmm"
deadline=$((EPOCHSECONDS + 60))
while [ "$(vm_state g2)" != error ] && [ "$EPOCHSECONDS" -lt "$deadline" ]; do sleep 0.2; done
[ "$(vm_state g2)" = error ] || fail "g2 is $(vm_state g2) after its restart, expected error"
ev=$(api GET "/v1/events?since=$seq0&type=vm.&name=g2" | cut -d' ' -f2-)
jget "$ev" '[e["type"] for e in d["events"]]'
[ "$(jget "$ev" 'sum(e["type"] == "vm.start_refused" for e in d["events"])')" -ge 1 ] ||
    fail "no vm.start_refused for g2's restart"

echo "== 3. herd-vmm given herdd's pinned chain"
hc vm stop g1 >/dev/null || fail "stop g1"
cp "$ov1" "$tmp/direct.qcow2"
rewrite_backing "$tmp/direct.qcow2" "$secret"
timeout 30 "$vmm" --kernel "$probe" --mem 64M --serial "file:$tmp/direct.console" \
    --disk "path=$tmp/direct.qcow2,format=qcow2,backing=raw:$parent" > "$tmp/direct.log" 2>&1
rc=$?
cat "$tmp/direct.log"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "herd-vmm ran with a rewritten overlay (exit $rc)"
grep -q "pinned chain says '$parent'" "$tmp/direct.log" || fail "herd-vmm's refusal does not say why"

echo "== 4. a sysadmin-only caller and image_dirs"
qemu-img create -q -f qcow2 -u -b "$secret" -F raw "$images/evil.qcow2" 1M || fail "evil.qcow2"
ln -s "$secret" "$images/link.raw"
qemu-img create -q -f qcow2 -u -b "$images/link.raw" -F raw "$images/evil2.qcow2" 1M || fail "evil2"
qemu-img create -q -f qcow2 -u -b /dev/zero -F raw "$images/evil3.qcow2" 1M || fail "evil3"
as4242() { setpriv --reuid=4242 --regid=4242 --clear-groups "$@"; }
tpl() { # NAME IMAGE FORMAT [KERNEL] [INITRD] -> prints STATUS BODY
    local body="{\"name\":\"$1\",\"image\":\"$2\",\"format\":\"$3\",\"kernel\":\"${4:-$probe}\""
    [ -n "${5:-}" ] && body="$body,\"initrd\":\"$5\""
    as4242 curl -s --unix-socket "$sock" -o "$tmp/tpl.out" -w '%{http_code}' -X POST \
        --data-binary "$body}" http://herd/v1/templates
    printf ' %s\n' "$(cat "$tmp/tpl.out")"
}
while IFS='|' read -r name image fmt kernel initrd want field msg; do
    out=$(tpl "$name" "$image" "$fmt" "$kernel" "$initrd")
    echo "   $name: $out"
    [ "${out%% *}" = "$want" ] || fail "$name: ${out%% *}, expected $want"
    case $out in *"\"field\":\"$field\""*"$msg"* | *"$msg"*"\"field\":\"$field\""*) ;;
        *) fail "$name: expected field $field and '$msg'" ;; esac
done <<CASES
t-shadow|/etc/shadow|raw|||400|image|outside image_dirs
t-secret|$secret|raw|||400|image|outside image_dirs
t-chain|$images/evil.qcow2|qcow2|||400|image|outside image_dirs
t-link|$images/link.raw|raw|||400|image|symbolic link
t-chainlink|$images/evil2.qcow2|qcow2|||400|image|symbolic link
t-dev|$images/evil3.qcow2|qcow2|||400|image|not a regular file
t-kernel|$parent|raw|$secret||400|kernel|outside image_dirs
t-initrd|$parent|raw||$outside/../outside/secret.raw|400|initrd|outside image_dirs
t-state|$tmp/state/vms/g1/disk.qcow2|qcow2|||400|image|outside image_dirs
CASES
out=$(tpl t-ok "$parent" raw)
[ "${out%% *}" = 200 ] || [ "${out%% *}" = 201 ] || fail "a sysadmin could not add a template from image_dirs: $out"

echo "== 5. derive from a rewritten overlay"
rewrite_backing "$ov1" "$secret"
out=$(api POST /v1/templates/derive '{"name":"d1","vm":"g1"}')
echo "   derive: $out"
[ "${out%% *}" = 409 ] || fail "derive from a rewritten overlay: ${out%% *}, expected 409"
[ -e "$tmp/state/templates/d1.qcow2" ] && fail "the refused derive left its copy behind"
hc template ls | grep -q '^d1 ' && fail "the refused derive made a template"

echo "== nothing opened the host files"
if opened; then fail "host files were opened"; else echo "   none"; fi
kill "$watcher" 2>/dev/null
finish
