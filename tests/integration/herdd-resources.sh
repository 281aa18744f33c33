#!/bin/bash
# Range resource disks through herdd (issue 12; docs/ranges.md "Resource
# disk"). Needs no KVM: herd-vmm is a stand-in that logs its arguments, and
# the disks are read with readers we did not write (bsdtar, blkid):
#  - a range with a range-wide resources directory and one scenario's own:
#    one ISO 9660 image per scope (STATE/ranges/lab/resources.iso and
#    resources-blue.iso, labelled HERD_RES, 0400) holding the directory's
#    files and subdirectory, the script's exec bit kept, contents equal;
#  - each guest's herd-vmm gets its scope's image as a read-only raw disk
#    right after the seed (vda overlay, vdb seed, vdc resources); vm inspect
#    shows it, also after a herdd restart; every guest has a seed (no keys
#    or runcmd needed) whose user-data mounts LABEL=HERD_RES read-only at
#    /mnt/herd-resources, and runcmd can call the script there;
#  - range reset keeps the images; range down removes them and the range's
#    directory;
#  - refused with 400 and the field path, nothing created (no guest, no
#    range, no file): a missing directory (range-wide and a scenario's), a
#    directory outside image_dirs, a symbolic link inside the directory;
#    `vm create` takes no resources field.
# Exit 0 pass, 77 skip, else fail.
set -u
herdd_lib_no_kvm=1
. "$(dirname "$0")/herdd-lib.sh"
for t in bsdtar blkid; do command -v $t >/dev/null || skip "$t is not installed"; done

# herd-vmm's stand-in: its --help is the real one's (herdd reads its
# options), a start logs the arguments one per line and ends
real_vmm=$vmm
vmm=$tmp/vmm-logger
cat > "$vmm" <<SH
#!/bin/sh
[ "\$1" = --help ] && exec "$real_vmm" --help
for a in "\$@"; do echo "ARG \$a"; done >&2
exit 1
SH
chmod 755 "$vmm"

start_range_herdd

res=$tmp/res blue=$tmp/res-blue
mkdir -p "$res/sub/deeper" "$blue"
printf '#!/bin/sh\necho resource-script-ran > /run/herd-resource-marker\n' > "$res/install.sh"
chmod 755 "$res/install.sh"
echo "a file in a subdirectory" > "$res/sub/deeper/data.txt"
echo blue > "$blue/blue.txt"
chmod 644 "$res/sub/deeper/data.txt" "$blue/blue.txt"

cat > "$tmp/r.yaml" <<YAML
range: lab
resources: $res
scenarios:
  - name: red
    roles:
      - name: web
        template: probe
        count: 2
        runcmd: [/mnt/herd-resources/install.sh]
  - name: blue
    resources: $blue
    roles:
      - {name: db, template: probe, count: 1}
YAML

echo "== range up with resources"
timeout 300 "$herdctl_bin" --socket "$sock" range up "$tmp/r.yaml" >/dev/null 2>&1
[ "$(hc --json range status lab | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" != starting ] ||
    fail "range up did not finish"
rdir=$tmp/state/ranges/lab
iso=$rdir/resources.iso biso=$rdir/resources-blue.iso
for f in "$iso" "$biso"; do
    [ -f "$f" ] || { fail "no $f"; continue; }
    [ "$(blkid -o value -s LABEL "$f")" = HERD_RES ] || fail "$f label: $(blkid "$f")"
    [ "$(blkid -o value -s TYPE "$f")" = iso9660 ] || fail "$f type: $(blkid "$f")"
    [ "$(stat -c %a "$f")" = 400 ] || fail "$f mode $(stat -c %a "$f") (expected 0400)"
done
[ "$(ls "$rdir")" = "$(printf 'resources-blue.iso\nresources.iso')" ] ||
    fail "the range's directory holds: $(ls "$rdir")"
listing=$(bsdtar -tvf "$iso") || fail "bsdtar cannot read $iso"
echo "$listing" | grep -Eq '^-r-xr-xr-x .* (\./)?install\.sh$' || fail "install.sh lost its exec bit: $listing"
echo "$listing" | grep -Eq '^-r--r--r-- .* (\./)?sub/deeper/data\.txt$' || fail "no sub/deeper/data.txt: $listing"
[ "$(bsdtar -xOf "$iso" install.sh)" = "$(cat "$res/install.sh")" ] || fail "install.sh differs"
[ "$(bsdtar -xOf "$iso" sub/deeper/data.txt)" = "$(cat "$res/sub/deeper/data.txt")" ] ||
    fail "data.txt differs"
[ "$(bsdtar -tf "$biso" | sed 's|^\./||' | grep -vx '\.')" = blue.txt ] || fail "resources-blue.iso holds: $(bsdtar -tf "$biso")"
[ "$(bsdtar -xOf "$biso" blue.txt)" = blue ] || fail "blue.txt differs"

check_guest() { # NAME IMAGE: herd-vmm's disks, inspect, the seed's mounts
    local g=$1 want=$2 disks
    [ "$(vm_field "$g" 'd.get("resources")')" = "$want" ] || fail "$g: inspect resources $(vm_field "$g" 'd.get("resources")')"
    disks=$(sed -n '/^ARG --disk$/{n;s/^ARG //p}' "$tmp/state/vms/$g/vmm.log" | tail -n 3 |
        sed 's/,format=raw,readonly=on$/,ro/; s/,format=qcow2.*/,rw/')
    [ "$disks" = "$(printf '%s\n' "path=$tmp/state/vms/$g/disk.qcow2,rw" \
        "path=$tmp/state/vms/$g/seed.iso,ro" "path=$want,ro")" ] ||
        fail "$g: herd-vmm's disks: $disks"
    bsdtar -xOf "$tmp/state/vms/$g/seed.iso" user-data | sed 1d | python3 -c '
import json, sys
u = json.load(sys.stdin)
want = [["LABEL=HERD_RES", "/mnt/herd-resources", "iso9660", "ro,nofail", "0", "0"]]
sys.exit(0 if u.get("mounts") == want else "mounts %r" % u.get("mounts"))' || fail "$g: user-data mounts"
}
for g in lab-red-web-1 lab-red-web-2; do check_guest $g "$iso"; done
check_guest lab-blue-db-1 "$biso"
bsdtar -xOf "$tmp/state/vms/lab-red-web-1/seed.iso" user-data | grep -q '/mnt/herd-resources/install.sh' ||
    fail "lab-red-web-1: runcmd does not call the script"

echo "== kept across a herdd restart and a range reset"
stop_herdd TERM
start_herdd
[ "$(vm_field lab-blue-db-1 'd.get("resources")')" = "$biso" ] || fail "resources lost across a restart"
hc range reset lab >/dev/null || fail "range reset"
[ -f "$iso" ] && [ -f "$biso" ] || fail "range reset removed the images"
check_guest lab-red-web-1 "$iso"

echo "== range down removes the images"
hc range down lab >/dev/null || fail "range down"
[ -e "$rdir" ] && fail "range down left $rdir: $(ls -la "$rdir")"

echo "== refused: 400 with the field, nothing created"
refuse() { # FIELD MESSAGE-PART YAML-FILE
    local out
    out=$(api POST /v1/ranges "$(cat "$3")")
    [[ $out == "400 "*'"field":"'"$1"'"'* && $out == *"$2"* ]] ||
        fail "expected 400 at $1 ($2), got $out"
    [ -e "$tmp/state/ranges/lab" ] && fail "$1: left $tmp/state/ranges/lab"
    [ -n "$(range_vms lab)" ] && fail "$1: made guests $(range_vms lab)"
    [[ $(api GET /v1/ranges/lab) == 404* ]] || fail "$1: made the range"
    ls "$tmp/state/vms" 2>/dev/null | grep -q lab && fail "$1: left guest directories"
}
sed "s|^resources: .*|resources: $tmp/no-such-dir|" "$tmp/r.yaml" > "$tmp/bad1.yaml"
refuse resources "No such file or directory" "$tmp/bad1.yaml"
sed "s|    resources: .*|    resources: $tmp/no-blue|" "$tmp/r.yaml" > "$tmp/bad2.yaml"
refuse 'scenarios[1].resources' "No such file or directory" "$tmp/bad2.yaml"
outside=$(mktemp -d /var/tmp/herd-res.XXXXXX)
sed "s|^resources: .*|resources: $outside|" "$tmp/r.yaml" > "$tmp/bad3.yaml"
refuse resources "outside image_dirs" "$tmp/bad3.yaml"
rmdir "$outside"
ln -s /etc/shadow "$blue/shadow"
refuse 'scenarios[1].resources' "symbolic link" "$tmp/r.yaml"
rm "$blue/shadow"
out=$(api POST /v1/vms '{"name": "x", "template": "probe", "resources": "/etc"}')
[[ $out == "400 "*'"field":"resources"'* ]] || fail "vm create took resources: $out"
finish
