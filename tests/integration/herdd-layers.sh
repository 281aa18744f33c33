#!/bin/bash
# herdd's files keep to their layers (docs/herdd.md, "Layers"): runs
# tools/layer-check on that table and herdd's objects, the plain build's and
# (where built) the sanitizer build's. Then shows the checker can fail, on
# tiny C files compiled here against a small table of their own (layer 0
# a.c, 1 b.c, 2 c.c d.c; a decoy second table that must not be read):
#  - clean: calls down and within a layer (functions and data) pass, and the
#    map names each call's symbols;
#  - upward: a.c calling b.c's function and reading d.c's variable is refused
#    naming both files, their layers and the symbols;
#  - cycle: c.c and d.c (one layer) calling each other is refused, printed;
#  - unlisted: an object the table does not place (e.o) is refused;
#  - missing: a file the table lists with no object (d.c) is refused;
#  - stale: an object whose make .d names a source that is gone is ignored;
#  - state: with --stateless, a file keeping a writable variable (global,
#    file-static or function-static) is refused, constant tables pass.
# herdd's own objects are checked with --stateless (docs/herdd.md "Contexts").
# Needs no KVM. Exit 0 pass, 77 skip (herdd not built), else fail.
set -u
root=${HERD_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HERD_BUILD:-$root/build}
san=${HERD_SAN_BUILD:-$root/build/san}
cc=${CC:-cc}
check=$root/tools/layer-check
cd "$root" || exit 1

skip() { echo "skip: $*"; exit 77; }
compgen -G "$build/obj/ctl/herdd/*.o" >/dev/null || skip "herdd not built: no objects in $build/obj/ctl/herdd"
command -v nm >/dev/null || skip "no nm (binutils)"
command -v "$cc" >/dev/null || skip "no C compiler ($cc)"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The real objects against the real table.
for objdir in "$build/obj/ctl/herdd" "$san/obj/ctl/herdd"; do
    compgen -G "$objdir/*.o" >/dev/null || continue
    echo "--- $check docs/herdd.md $objdir"
    "$check" --stateless docs/herdd.md "$objdir" || fail "herdd's objects in $objdir break the layers (above)"
done

# The synthetic cases.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/doc.md" <<'EOF'
# synthetic

| layer | files | what it is |
|---|---|---|
| 0 low | a.c | bottom |
| 1 mid | `b.c` | middle |
| 2 top | c.c, d.c | top, two files |

| layer | files |
|---|---|
| 0 decoy | e.c |
EOF
src() { printf '%s\n' "$2" > "$tmp/$1.c"; }
src a_ok 'int a_count; int a_fn(void); int a_fn(void) { return a_count; }'
src a_up 'int b_fn(void); extern int d_count; int a_fn(void);
int a_fn(void) { return b_fn() + d_count; }'
src b 'int a_fn(void); int b_fn(void); int b_fn(void) { return a_fn(); }'
src c_ok 'int b_fn(void); extern int a_count; int c_fn(void);
int c_fn(void) { return b_fn() + a_count; }'
src c_cyc 'int d_fn(void); int c_fn(void); int c_fn(void) { return d_fn(); }'
src d 'int c_fn(void); int d_fn(void); int d_count; int d_fn(void) { return c_fn() + d_count; }'
src e 'int e_fn(void); int e_fn(void) { return 7; }'
src s_const 'static const int tab[] = {1, 2}; const char *const names[] = {"x"};
int s_fn(int i); int s_fn(int i) { return tab[i & 1] + names[0][0]; }'
src s_static 'static int hits; int s_fn(int i); int s_fn(int i) { return hits += i; }'
src s_local 'int s_fn(int i); int s_fn(int i) { static int seen; return seen += i; }'
for f in a_ok a_up b c_ok c_cyc d e s_const s_static s_local; do
    "$cc" -c -o "$tmp/$f.o" "$tmp/$f.c" || { echo "FAIL: $cc -c $f.c"; exit 1; }
done

# objs CASE FILE.o=SOURCE...: the case's object dir
objs() {
    local dir=$tmp/$1 pair
    shift
    mkdir -p "$dir"
    for pair in "$@"; do cp "$tmp/${pair#*=}.o" "$dir/${pair%=*}.o"; done
}
objs clean a=a_ok b=b c=c_ok d=d
objs upward a=a_up b=b c=c_ok d=d
objs cycle a=a_ok b=b c=c_cyc d=d
objs unlisted a=a_ok b=b c=c_ok d=d e=e
objs missing a=a_ok b=b c=c_ok
objs stale a=a_ok b=b c=c_ok d=d e=e
echo "$tmp/stale/e.o: $tmp/gone/e.c" > "$tmp/stale/e.d"

# The --stateless cases: a.c-d.c without their mutable globals (a.c and
# d.c read a constant instead), plus a d.c with constant tables or a static.
src a_const 'const int a_count = 1; int a_fn(void); int a_fn(void) { return a_count; }'
src d_const 'int c_fn(void); int d_fn(void); int d_fn(void) { return c_fn(); }'
for f in a_const d_const; do
    "$cc" -c -o "$tmp/$f.o" "$tmp/$f.c" || { echo "FAIL: $cc -c $f.c"; exit 1; }
done
objs s_clean a=a_const b=b c=c_ok d=s_const
objs s_static a=a_const b=b c=c_ok d=s_static
objs s_local a=a_const b=b c=c_ok d=s_local
objs s_global a=a_ok b=b c=c_ok d=d_const

# expect [--stateless] CASE RC [STRING...]: the checker on the case exits RC
# and prints each STRING (and, for a passing case, no FAIL line)
expect() {
    local opt=()
    if [ "$1" = --stateless ]; then opt=(--stateless); shift; fi
    local name=$1 want=$2 out rc s
    shift 2
    out=$("$check" "${opt[@]}" "$tmp/doc.md" "$tmp/$name" 2>&1)
    rc=$?
    echo "--- case $name: exit $rc"
    printf '%s\n' "$out" | grep -E 'FAIL|OK|ignoring'
    [ "$rc" -eq "$want" ] || fail "case $name: exit $rc, expected $want"
    for s in "$@"; do
        grep -qF -- "$s" <<<"$out" || fail "case $name: no '$s' in:"$'\n'"$out"
    done
    if [ "$want" -eq 0 ] && grep -q 'FAIL' <<<"$out"; then fail "case $name: FAIL lines"; fi
}
d=$tmp
expect clean 0 'b.c [1]' '-> a.c [0]: a_fn' 'c.c [2]' '-> a.c [0]: a_count' \
    '-> b.c [1]: b_fn' 'd.c [2]' '-> c.c [2]: c_fn' 'layer-check: OK: 4 files in 3 layers'
expect upward 1 'upward call: a.c (layer 0) calls b.c (layer 1): b_fn' \
    'upward call: a.c (layer 0) calls d.c (layer 2): d_count' 'layer-check: 2 problem(s)'
expect cycle 1 'cycle: c.c -> d.c -> c.c (c.c -> d.c: d_fn; d.c -> c.c: c_fn)' \
    'layer-check: 1 problem(s)'
expect unlisted 1 "$d/unlisted/e.o is in no layer: place e.c in the layer table of $d/doc.md" \
    'layer-check: 1 problem(s)'
expect missing 1 "$d/doc.md lists d.c (layer 2) but $d/missing has no d.o" \
    'layer-check: 1 problem(s)'
expect stale 0 "ignoring $d/stale/e.o: its source is gone"
expect clean 0 'layer-check: OK: 4 files'   # without --stateless a_count is fine
expect --stateless s_clean 0 'no writable variable'
expect --stateless s_global 1 'state: a.c keeps state in writable variables: a_count' \
    'layer-check: 1 problem(s)'
expect --stateless s_static 1 'state: d.c keeps state in writable variables: hits' \
    'layer-check: 1 problem(s)'
expect --stateless s_local 1 'state: d.c keeps state in writable variables: seen' \
    'layer-check: 1 problem(s)'

if [ "$failures" -ne 0 ]; then
    echo "herdd-layers: $failures failure(s)"
    exit 1
fi
echo "herdd-layers: herdd's layers hold and herdd keeps no writable variable; the checker refuses upward calls, cycles, unplaced and missing files, and state outside contexts"
