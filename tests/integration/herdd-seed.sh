#!/bin/bash
# cloud-init NoCloud seeds through herdd (issue 12; docs/herdd.md "Seeds").
# Needs no KVM: the seed is checked as a disk, with readers we did not
# write (blkid for the label and type, bsdtar's ISO 9660 reader for the
# files; the Debian guests of herdd-debian.sh are the consumer):
#  - vm create with cloud_init {hostname, ssh_authorized_keys, runcmd} and
#    NIC addresses: STATE/vms/NAME/seed.iso is an iso9660 disk labelled
#    cidata, read-only (0400, root's), with meta-data (instance-id, local-hostname),
#    user-data (#cloud-config: the keys, runcmd, byte-exact even with
#    quotes and newlines in a command) and network-config (version 2: the
#    NIC with addresses matched by its MAC, the gateway as default route);
#    vm inspect shows cloud_init and the instance id;
#  - the seed and its instance id survive a herdd restart;
#  - a range whose spec has ssh_authorized_keys gives every guest a seed
#    with its own hostname and addresses; range reset writes new seeds
#    with new instance-ids (cloud-init runs again on the fresh overlays);
#  - bad cloud_init bodies are refused (400, field), nothing created: an
#    unknown field, a host name with '_', a key that is not an OpenSSH
#    public key, a DSA key, a runcmd that is not a list of strings.
# Exit 0 pass, 77 skip, else fail.
set -u
herdd_lib_no_kvm=1
. "$(dirname "$0")/herdd-lib.sh"
for t in bsdtar blkid ssh-keygen; do command -v $t >/dev/null || skip "$t is not installed"; done

start_range_herdd
ssh-keygen -q -t ed25519 -N '' -C 'instructor@range' -f "$tmp/key" || fail "ssh-keygen"
key=$(cat "$tmp/key.pub")

seed_file() { # NAME FILE: prints FILE of NAME's seed (bsdtar reads the ISO)
    bsdtar -xOf "$tmp/state/vms/$1/seed.iso" "$2"
}

echo "== vm create with cloud_init"
body=$(python3 - "$key" <<'PY'
import json, sys
print(json.dumps({"name": "s1", "template": "probe",
    "nics": [{"network": "communication", "ipv4": "10.1.0.7/24", "gateway": "10.1.0.1",
              "ipv6": "fd00:1::7/64"}],
    "cloud_init": {"hostname": "web-01", "ssh_authorized_keys": [sys.argv[1]],
                   "runcmd": ["echo \"quoted\" 'and' \\\\ back > /dev/ttyS0",
                              "printf 'two\\nlines\\n'"]}}))
PY
)
out=$(api POST /v1/vms "$body")
[[ $out == 201* || $out == 200* ]] || fail "vm create s1: $out"
seed=$tmp/state/vms/s1/seed.iso
[ -f "$seed" ] || fail "no seed.iso"
[ "$(blkid -o value -s LABEL "$seed")" = cidata ] || fail "seed label: $(blkid "$seed")"
[ "$(blkid -o value -s TYPE "$seed")" = iso9660 ] || fail "seed type: $(blkid "$seed")"
[ "$(stat -c %a "$seed")" = 400 ] || fail "seed mode $(stat -c %a "$seed") (expected 0400: root's, read-only; herd-vmm opens it before it drops to the guest uid)"
mac=$(vm_field s1 'd["nics"][0]["mac"]')
iid=$(vm_field s1 'd["seed"]["instance_id"]')
seed_file s1 meta-data > "$tmp/meta" && seed_file s1 user-data > "$tmp/user" &&
    seed_file s1 network-config > "$tmp/net" || fail "bsdtar cannot read the seed"
python3 - "$tmp" "$iid" "$key" "$mac" <<'PY' || fail "seed contents (above)"
import json, sys
tmp, iid, key, mac = sys.argv[1:]
bad = []
meta = json.load(open(tmp + "/meta"))
if meta != {"instance-id": iid, "local-hostname": "web-01"}:
    bad.append("meta-data %r" % meta)
text = open(tmp + "/user").read()
if not text.startswith("#cloud-config\n"):
    bad.append("user-data does not start with #cloud-config")
user = json.loads(text.split("\n", 1)[1])
want = {"ssh_authorized_keys": [key],
        "runcmd": ["echo \"quoted\" 'and' \\\\ back > /dev/ttyS0", "printf 'two\\nlines\\n'"]}
if user != want:
    bad.append("user-data %r, want %r" % (user, want))
net = json.load(open(tmp + "/net"))
want = {"version": 2, "ethernets": {"nic0": {"match": {"macaddress": mac},
        "addresses": ["10.1.0.7/24", "fd00:1::7/64"],
        "routes": [{"to": "0.0.0.0/0", "via": "10.1.0.1"}]}}}
if net != want:
    bad.append("network-config %r, want %r" % (net, want))
for b in bad:
    print("  ", b)
sys.exit(1 if bad else 0)
PY
[[ $iid == s1.* ]] || fail "instance id $iid"

echo "== the seed survives a herdd restart"
stop_herdd TERM
start_herdd
[ "$(vm_field s1 'd["seed"]["instance_id"]')" = "$iid" ] || fail "instance id lost across a restart"
[ "$(vm_field s1 'd["cloud_init"]["hostname"]')" = web-01 ] || fail "cloud_init lost across a restart"

echo "== bad cloud_init: 400, nothing created"
bad() { # FIELD JSON-OF-cloud_init
    local out
    out=$(api POST /v1/vms '{"name": "bad", "template": "probe", "cloud_init": '"$2"'}')
    [[ $out == "400 "*'"field":"'"$1"'"'* ]] ||
        fail "cloud_init $2: expected 400 at $1, got $out"
    [ -e "$tmp/state/vms/bad" ] && fail "cloud_init $2 left $tmp/state/vms/bad"
}
bad cloud_init '{"user_data": "x"}'
bad cloud_init.hostname '{"hostname": "web_01"}'
bad cloud_init '["x"]'
bad 'cloud_init.ssh_authorized_keys[0]' '{"ssh_authorized_keys": ["ssh-ed25519 not-base64!"]}'
bad 'cloud_init.ssh_authorized_keys[0]' '{"ssh_authorized_keys": ["ssh-dss AAAAB3NzaC1kc3MAAACBAP"]}'
bad cloud_init.runcmd '{"runcmd": "reboot"}'
bad 'cloud_init.runcmd[0]' '{"runcmd": [1]}'

echo "== a range with keys: a seed per guest"
cat > "$tmp/r.yaml" <<YAML
range: lab
networks:
  communication:
    segments:
      red: {subnet: 10.20.1.0/24, gateway: 10.20.1.1}
ssh_authorized_keys: ["$key"]
scenarios:
  - name: s
    roles:
      - name: web
        template: probe
        count: 2
        nics: [{network: communication, segment: red}]
        runcmd: ["touch /run/web-was-here"]
YAML
# range up returns when its job is done (without KVM the guests' herd-vmm
# exits: what counts here is that every guest was made, with its seed)
timeout 300 "$herdctl_bin" --socket "$sock" range up "$tmp/r.yaml" >/dev/null 2>&1
[ "$(hc --json range status lab | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" != starting ] ||
    fail "range up did not finish"
for n in 1 2; do
    g=lab-s-web-$n
    host=$(seed_file $g meta-data | python3 -c 'import json,sys; print(json.load(sys.stdin)["local-hostname"])')
    [ "$host" = "$g" ] || fail "$g: hostname $host"
    addr=$(seed_file $g network-config | python3 -c 'import json,sys; print(json.load(sys.stdin)["ethernets"]["nic0"]["addresses"][0])')
    [ "$addr" = "10.20.1.$((n + 1))/24" ] || fail "$g: address $addr"
    seed_file $g user-data | grep -q 'touch /run/web-was-here' || fail "$g: no runcmd"
done
echo "== range reset: a new instance-id in every seed"
iid1=$(vm_field lab-s-web-1 'd["seed"]["instance_id"]')
hc range reset lab >/dev/null || fail "range reset"
iid2=$(vm_field lab-s-web-1 'd["seed"]["instance_id"]')
[ -n "$iid2" ] && [ "$iid2" != "$iid1" ] || fail "reset kept the instance id $iid1"
got=$(seed_file lab-s-web-1 meta-data | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance-id"])')
[ "$got" = "$iid2" ] || fail "the seed after reset says $got, the record $iid2"
hc range down lab >/dev/null || fail "range down"
[ -e "$tmp/state/vms/lab-s-web-1" ] && fail "range down left the guest's directory (seed)"
finish
