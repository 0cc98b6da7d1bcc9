#!/bin/bash
# Runs the unit-test binary and every tests/cli/*.sh script, then prints the
# total as "N passed, N failed". Each shell test prints "ok   NAME" or
# "FAIL NAME" lines; the unit binary prints the same.
set -u
cd "$(dirname "$0")/.."
: "${RLHF_BIN:=bin/rlhf}" "${UNIT_BIN:=build/opt/unit_tests}"
export RLHF_BIN UNIT_BIN
# Under `make test SAN=1`: full malloc stacks so Open MPI's own never-freed
# allocations at MPI_Init can be recognised and suppressed (tests/lsan.supp).
export ASAN_OPTIONS=${ASAN_OPTIONS:-fast_unwind_on_malloc=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
"$UNIT_BIN" 2>&1 | tee -a "$log" | grep -v '^[0-9]* passed, [0-9]* failed$'
echo "time $UNIT_BIN $((SECONDS - start)) s" >&2
# Each suite's wall time goes to stderr (not counted), so a slow one shows.
for t in tests/cli/*.sh; do
    [ -e "$t" ] || continue
    start=$SECONDS
    bash "$t" 2>&1 | tee -a "$log"
    echo "time $t $((SECONDS - start)) s" >&2
done
passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^FAIL ' "$log")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
