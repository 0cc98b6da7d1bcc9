#!/bin/bash
# valgrind memcheck on a reduced set: the parsers and file formats (unit-test
# groups) and two CLI commands, on a build for AVX2 (`make VG=1`: valgrind
# 3.19 does not decode AVX-512). Skipped with a note when valgrind is missing
# or under SAN=1 (ASan and valgrind do not mix). ~2 minutes with the build.
set -u
SUITE=valgrind
. "$(dirname "$0")/../lib.sh"
if ! command -v valgrind >/dev/null; then echo "valgrind: not installed, memcheck skipped"; exit 0; fi
case "${UNIT_BIN:-}" in *san*) echo "valgrind: sanitizer build, memcheck skipped"; exit 0 ;; esac
make -s -j2 VG=1 build/vg/unit_tests build/vg/rlhf >/dev/null 2>&1 || { fail "make VG=1"; exit 0; }
UNIT=build/vg/unit_tests
RLHF=build/vg/rlhf
VG="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=tests/valgrind.supp"
export OPENBLAS_NUM_THREADS=1
# speed tests (1 MB encodes) are benchmarks, not parsers: 40 s under valgrind
for group in tok_,-speed jsonl_ config_ st_ hf_ ckpt_ h5log_ losses_ text_; do
    out=$($VG "$UNIT" "$group" 2>&1); rc=$?
    if [ $rc -ne 99 ] && echo "$out" | tail -1 | grep -q ' 0 failed'; then pass "unit tests $group"
    else fail "unit tests $group (exit $rc)" "$(echo "$out" | grep -E "==[0-9]+==|FAIL" | head -8)"; fi
done
scratch vg
"$RLHF" init --out "$T/m.h5" --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 2>/dev/null
printf '{"prompt": "a"}\n{"prompt": "bc"}\n' >"$T/p.jsonl"
for cmd in "generate --model $T/m.h5 --prompts $T/p.jsonl --jsonl --max-new 4" "inspect $T/m.h5"; do
    if $VG "$RLHF" $cmd >/dev/null 2>"$T/err"; then pass "rlhf ${cmd%% *}"
    else fail "rlhf ${cmd%% *}" "$(grep "==" "$T/err" | head -8)"; fi
done
