#!/bin/bash
# The unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer,
# inside `make test` (so in CI): builds build/san/unit_tests (`make SAN=1`'s
# objects) and prints its lines as "ok   san: NAME" / "FAIL san: NAME". The
# whole suite under the sanitizers is `make test SAN=1` (~15 minutes here,
# too long for every CI run); the CLI tests' parsers also run instrumented
# in tests/cli/fuzz.sh and under valgrind in tests/cli/valgrind.sh. Skipped
# when this suite already is the sanitizer build.
set -u
SUITE=san
. "$(dirname "$0")/../lib.sh"
case "${UNIT_BIN:-}" in
*build/san/*) echo "note: san: this is the sanitizer build already"; exit 0 ;;
esac
scratch san
log=$T/log
if ! make -s -j2 SAN=1 build/san/unit_tests >"$log" 2>&1; then
    fail "build of build/san/unit_tests" "$(tail -5 "$log")"
    exit 0
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-fast_unwind_on_malloc=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}
# less a benchmark (1 MB encodes) and a 9 s deadlock check of pipe traffic,
# whose ASan run finds nothing the ordinary one does not
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2} build/san/unit_tests -tok_gpt2_speed,-verifier_cmd_big_batch >"$log" 2>&1
rc=$?
sed -n -E 's/^(ok  |FAIL) /\1 san: /p' "$log"
# a sanitizer report ends the binary early: say so, with the report's summary
if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$log"; then
    fail "unit tests exited $rc: $(grep -m1 -E 'SUMMARY|runtime error' "$log" | cut -c1-200)"
fi
exit 0
