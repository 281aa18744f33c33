#!/bin/bash
# herd-test-needs: kvm
# Interactive console through herdd: GET /v1/vms/NAME/console?offset= returns
# the console's bytes from an offset (prompts without newlines included),
# POST /v1/vms/NAME/console {"data"} types into the guest's UART through
# herd-vmm's control socket, bad bodies get 4xx with the field, and
# `herdctl vm console` on a terminal sends keystrokes until Ctrl-] detaches.
# The guest is tests/guests/echo.S (echoes its serial input). Then a probe
# guest boots while herdd is killed and restarted: its console output from
# that gap reaches console.log and the guest becomes ready.
# Exit 0 pass, 77 skip (reason on the last line), else fail.
set -u
. "$(dirname "$0")/herdd-lib.sh"
echo_guest=$build/tests/guests/echo.elf
[ -r "$echo_guest" ] || skip "$echo_guest is not built"
command -v script >/dev/null || skip "script (util-linux) is not installed"

write_config
start_herdd
make_parent
hc template add echo --image "$parent" --format raw --kernel "$echo_guest" --cmdline "" \
    --mem 16M --nic management > /dev/null || fail "template add"
hc vm create e1 --template echo --start > /dev/null || fail "vm create"

console() { api GET "/v1/vms/e1/console?offset=${1:-0}"; }
for _ in $(seq 100); do
    console | grep -q '"data": *"E>' && break
    sleep 0.05
done
out=$(console)
grep -q '^200 .*"data": *"E>"' <<<"$out" || fail "console read: $out"
grep -q '"next": *2' <<<"$out" || fail "console read next offset: $out"

out=$(api POST /v1/vms/e1/console '{"data":"hi"}')
grep -q '^200 .*"accepted": *2' <<<"$out" || fail "console input: $out"
for _ in $(seq 100); do
    console | grep -q '"data": *"E>hi"' && break
    sleep 0.05
done
grep -q '"data": *"E>hi"' <<<"$(console)" || fail "the guest did not echo the input"
out=$(console 2)
grep -q '"data": *"hi".*"offset": *2\|"offset": *2.*"data": *"hi"' <<<"$out" || fail "read from offset 2: $out"

# Refusals change nothing.
out=$(api POST /v1/vms/e1/console '{"data":5}')
grep -q '^400 .*"field": *"data"' <<<"$out" || fail "data not a string: $out"
out=$(api POST /v1/vms/e1/console '{"data":"x","extra":1}')
grep -q '^400 .*"field": *"extra"' <<<"$out" || fail "unknown field: $out"
out=$(api POST /v1/vms/e1/console '{"data":""}')
grep -q '^400 ' <<<"$out" || fail "empty data: $out"
out=$(api GET "/v1/vms/e1/console?offset=-1")
grep -q '^400 .*"field": *"offset"' <<<"$out" || fail "negative offset: $out"
out=$(api POST /v1/vms/nosuch/console '{"data":"x"}')
grep -q '^404 ' <<<"$out" || fail "unknown guest: $out"
grep -q '"data": *"E>hi"' <<<"$(console)" || fail "a refused request reached the guest"

# herdctl on a terminal: keystrokes go to the guest, Ctrl-] detaches.
printf 'abc\035' | timeout 20 script -qec "$herdctl_bin --socket $sock vm console e1" /dev/null \
    > "$tmp/attach.out" 2>&1
grep -q "attached to e1" "$tmp/attach.out" || fail "herdctl did not attach: $(cat "$tmp/attach.out")"
grep -q "detached from e1" "$tmp/attach.out" || fail "herdctl did not detach on Ctrl-]"
grep -q "E>hi" "$tmp/attach.out" || fail "herdctl did not show the console so far"
for _ in $(seq 100); do
    console | grep -q '"data": *"E>hiabc"' && break
    sleep 0.05
done
grep -q '"data": *"E>hiabc"' <<<"$(console)" || fail "keystrokes from herdctl did not reach the guest: $(console)"

cat "$tmp/attach.out"
hc vm stop e1 > /dev/null 2>&1 || hc vm kill e1 > /dev/null 2>&1
out=$(api POST /v1/vms/e1/console '{"data":"x"}')
grep -q '^409 ' <<<"$out" || fail "input to a stopped guest: $out"
hc vm rm e1 > /dev/null || fail "vm rm"

# What a guest prints while herdd is away (killed right after the start,
# restarted seconds later) waits in its console pipe: the next herdd drains
# it, finds the ready line and marks the guest ready (herd-vmm holds the
# pipe open for reading itself; without that the bytes were lost and the
# guest never became ready).
add_probe_template probe > /dev/null || fail "template add probe"
hc vm create away --template probe --start > /dev/null || fail "vm create away"
stop_herdd KILL
sleep 3
start_herdd
wait_ready away 60 || fail "a guest that printed its ready line while herdd was away is not ready"
grep -qa 'herd-probe: ready' "$tmp/state/vms/away/console.log" ||
    fail "the ready line printed while herdd was away is not in console.log"
hc vm rm away --force > /dev/null || fail "vm rm away"
finish
