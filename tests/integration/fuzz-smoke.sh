#!/bin/bash
# Fuzz smoke test: builds the libFuzzer targets (tests/fuzz/, clang with
# -fsanitize=fuzzer,address,undefined) and runs each one for a bounded time
# (FUZZ_SECONDS, default 15) from its committed seeds. Any crash, leak,
# UBSan report, out-of-memory, timeout or broken contract fails the test.
# Skips (77) when clang or its libFuzzer runtime is missing.
#
# FUZZ_SECONDS=60 ./tests/integration/fuzz-smoke.sh     a longer run
# Known open findings are kept out of this run by the targets' opt-in
# switches (FUZZ_BLOCKDEV_WRITES=0, FUZZ_BOOT_STRICT=0 turn checks off); see
# docs/fuzzing.md.
set -u
cd "$(dirname "$0")/../.."

cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "$cc is not installed (./tools/install-deps installs it)"
    exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    > "$probe/t.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined -o "$probe/t" "$probe/t.c" > "$probe/log" 2>&1; then
    cat "$probe/log"
    echo "$cc cannot link -fsanitize=fuzzer: its libFuzzer runtime is missing (libclang-rt-dev)"
    exit 77
fi

echo "== building the fuzzers (make fuzz-build)"
if ! make -s fuzz-build FUZZ_CC="$cc"; then
    echo "FAIL: make fuzz-build"
    exit 1
fi

# Own working corpora and logs, so two runs in one tree do not mix; the logs
# are kept when something fails.
echo "== running each target for ${FUZZ_SECONDS:-15}s"
logs=build/fuzz/smoke-logs.$$
mkdir -p "$probe/work"
if ! FUZZ_SECONDS=${FUZZ_SECONDS:-15} FUZZ_WORK_DIR=$probe/work FUZZ_LOG_DIR=$logs tests/fuzz/run; then
    echo "FAIL: a fuzz target found a problem (inputs in build/fuzz/artifacts/, logs in $logs/; docs/fuzzing.md says how to reproduce)"
    exit 1
fi
rm -rf "$logs"
echo "fuzz smoke: every target ran clean"
