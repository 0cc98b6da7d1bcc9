#!/bin/bash
# Runs every libFuzzer harness (tests/fuzz/fuzz_*.c) for a bounded time inside
# `make test`: FUZZ_SECONDS each (default 5), with a fixed seed (FUZZ_SEED,
# default 1) and only the committed seed corpus, so a run here and a run in CI
# try the same inputs, as far as the machine's speed allows. `make fuzz` is the
# longer, open-ended version. Prints tests/fuzz/run.sh's "ok   fuzz: TARGET"
# / "FAIL fuzz: TARGET" lines; clang missing is a failure here, since
# launch/install-deps.sh installs it.
set -u
SUITE=fuzz
. "$(dirname "$0")/../lib.sh"
if ! command -v clang >/dev/null 2>&1 && ! command -v clang-14 >/dev/null 2>&1; then
    fail "clang not installed (run launch/install-deps.sh)"
    exit 1
fi
export FUZZ_OUT=${FUZZ_OUT:-build/fuzz-test}
export FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_CLASSIFY=${FUZZ_CLASSIFY:-8} FUZZ_RERUN_TIMEOUT=${FUZZ_RERUN_TIMEOUT:-3}
rm -rf "$FUZZ_OUT/corpus" "$FUZZ_OUT/artifacts" "$FUZZ_OUT/reports"
scratch fuzz
out=$T/out
bash tests/fuzz/run.sh "${FUZZ_SECONDS:-5}" >"$out" 2>&1
rc=$?
grep -E '^(ok |FAIL |note: )' "$out"
if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
    fail "tests/fuzz/run.sh exited $rc" "$(tail -5 "$out")"
fi
grep -q '^note: fuzz: .*skipped' "$out" && fail "libFuzzer unavailable (run launch/install-deps.sh)"
exit 0
