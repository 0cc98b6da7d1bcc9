#!/bin/bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan against the library sources, and runs each for a bounded time.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]  run each target SECONDS (20)
#   tests/fuzz/run.sh --build                build only
#   tests/fuzz/run.sh --seeds                rewrite tests/fuzz/corpus/ (make_seeds.*)
#
# Prints "ok   fuzz: TARGET (N execs, no crash)" or "FAIL fuzz: TARGET ..."
# per target, then "N passed, N failed". Without clang/libFuzzer it prints
# a note and exits 0 (Debian: apt-get install clang libclang-rt-14-dev).
#
# Each target starts from its committed seeds (tests/fuzz/corpus/TARGET)
# and keeps what it finds in build/fuzz/corpus/TARGET for the next run.
# Crashing inputs land in build/fuzz/artifacts/TARGET/. A crash whose stack
# is inside libhdf5 itself (HDF5 1.10 has known crashes on crafted files)
# is reported as a finding about HDF5, not a failure: the *_raw targets,
# which feed damaged bytes to HDF5, run in libFuzzer's fork mode so they go
# on after such a crash. Environment: CLANG (compiler), FUZZ_OUT (build/fuzz),
# FUZZ_CLASSIFY and FUZZ_RERUN_TIMEOUT (how many new saved inputs per target
# are rerun, with what -timeout, to tell ours from HDF5's; 20 and 10 s),
# FUZZ_SEED (libFuzzer's -seed: a fixed seed makes a run repeat the same
# inputs, as far as the time allows). One fuzzer runs at a time (the machine
# is shared).
set -uo pipefail
cd "$(dirname "$0")/../.."

OUT=${FUZZ_OUT:-build/fuzz}
SECONDS_EACH=20
BUILD_ONLY=0
SEEDS=0
TARGETS=()
for a in "$@"; do
    case "$a" in
    --build) BUILD_ONLY=1 ;;
    --seeds) SEEDS=1 ;;
    [0-9]*) SECONDS_EACH=$a ;;
    *) TARGETS+=("${a%.c}") ;;
    esac
done

# ---- toolchain ---------------------------------------------------------------

find_clang() {
    for c in ${CLANG:-} clang clang-14 clang-15 clang-16; do
        command -v "$c" >/dev/null 2>&1 && { echo "$c"; return; }
    done
}
CC=$(find_clang)
if [ -z "$CC" ]; then
    echo "note: fuzz: clang not installed, fuzzing skipped (apt-get install clang libclang-rt-14-dev)"
    exit 0
fi
mkdir -p "$OUT"
probe=$OUT/probe
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" >"$probe.log" 2>&1; then
    echo "note: fuzz: $CC cannot link libFuzzer, fuzzing skipped (apt-get install libclang-rt-14-dev)"
    exit 0
fi
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}

PKGS="openblas hdf5-serial ompi-c jansson libpcre2-8"
CFLAGS="-std=c11 -D_GNU_SOURCE -O1 -g -march=native -fno-omit-frame-pointer -Wall -Wextra -I.
        -fsanitize=address,undefined -fno-sanitize-recover=all $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lm -lpthread"

# ---- build -------------------------------------------------------------------

# 1 if $1 is missing or older than any of the following files.
stale() {
    local out=$1
    shift
    [ -e "$out" ] || return 0
    for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done
    return 1
}

build() {
    local objs=() headers=(common/*.h common/*/*.h) changed=0
    mkdir -p "$OUT/obj" "$OUT/bin"
    # Two compilers at a time (the machine's cores); coverage
    # instrumentation for the library, the fuzzer main only in the targets.
    local running=0 failed=0
    for src in common/*.c common/*/*.c; do
        local obj=$OUT/obj/$(basename "${src%.c}").o
        objs+=("$obj")
        # UBSan's checks on ops.c's unrolled kernel tiles take clang 14 four
        # minutes to compile (2 s without): ops.c parses no input, so it gets
        # ASan alone here (make test SAN=1 runs it under gcc's UBSan)
        local flags=$CFLAGS
        [ "$src" = common/model/ops.c ] && flags=${CFLAGS/-fsanitize=address,undefined/-fsanitize=address}
        if stale "$obj" "$src" "${headers[@]}"; then
            if [ $running -ge 2 ]; then wait -n || failed=1; running=$((running - 1)); fi
            { $CC $flags -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || { rm -f "$obj"; exit 1; }; } &
            running=$((running + 1))
            changed=1
        fi
    done
    while [ $running -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
    [ $failed = 0 ] || return 1
    local lib=$OUT/libcommon.a
    if [ $changed = 1 ] || [ ! -e "$lib" ]; then
        rm -f "$lib"
        ar rcs "$lib" "${objs[@]}" || return 1
    fi
    for src in tests/fuzz/fuzz_*.c; do
        local bin=$OUT/bin/$(basename "${src%.c}")
        if stale "$bin" "$src" tests/fuzz/*.h "$lib"; then
            $CC $CFLAGS -fsanitize=fuzzer "$src" "$lib" $LIBS -o "$bin" || return 1
        fi
    done
}

if ! build; then
    echo "FAIL fuzz: build (see the compiler messages above)"
    echo "0 passed, 1 failed"
    exit 1
fi
[ "$BUILD_ONLY" = 1 ] && exit 0

if [ "$SEEDS" = 1 ]; then
    $CC $CFLAGS tests/fuzz/make_seeds.c "$OUT/libcommon.a" $LIBS -o "$OUT/make_seeds" || exit 1
    rm -rf "$OUT/seed-base"
    OPENBLAS_NUM_THREADS=1 "$OUT/make_seeds" "$OUT/seed-base" && /usr/bin/python3 tests/fuzz/make_seeds.py "$OUT/seed-base"
    exit $?
fi

# ---- run ---------------------------------------------------------------------

# Longest input per target: the seeds' size with room to grow.
max_len() {
    case $1 in
    fuzz_ckpt_raw | fuzz_h5log_raw) echo 65536 ;;
    fuzz_safetensors | fuzz_hf_safetensors | fuzz_tok) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

dict_for() {
    case $1 in
    fuzz_jsonl | fuzz_safetensors | fuzz_hf_config | fuzz_hf_safetensors | fuzz_tok) echo tests/fuzz/json.dict ;;
    fuzz_config) echo tests/fuzz/config.dict ;;
    esac
}

# The first frame of the first report that is not the sanitizer, libc or the
# fuzzer itself: where the crash happened.
crash_frame() {
    # (sed -n 1p rather than head -1: no SIGPIPE upstream, which pipefail
    # would turn into a failed pipeline)
    grep -E '^ *#[0-9]+ ' "$1" |
        grep -vE 'libclang_rt|__asan|__interceptor|__sanitizer|__ubsan|libc\.so|fuzzer::|LLVMFuzzer|in (mem(cpy|move|set|cmp)|str[a-z]*|abort|raise|__GI_|malloc|calloc|realloc|free) ' |
        sed -n 1p
}

# 1 if report $1 is a crash or hang inside libhdf5, or a leak of memory
# libhdf5 allocated for itself: only the variable-length buffers H5Aread and
# H5Dread hand over (H5T vlen code) are ours to free. Checked by hand so
# far: H5HG_read and H5C_protect (loading a damaged object) leak on their
# own, in a plain HDF5 program too.
in_hdf5() {
    local frame
    frame=$(crash_frame "$1")
    case $frame in *libhdf5*) ;; *) return 1 ;; esac
    if grep -q 'LeakSanitizer' "$1"; then
        case $frame in *H5T_*vlen*) return 1 ;; esac
    fi
    return 0
}

summary_line() {
    grep -m1 -E '^SUMMARY: |ERROR: libFuzzer|runtime error|fuzz property violated' "$1" | cut -c1-200
}

passed=0
failed=0
[ ${#TARGETS[@]} -eq 0 ] && for src in tests/fuzz/fuzz_*.c; do TARGETS+=("$(basename "${src%.c}")"); done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export OPENBLAS_NUM_THREADS=1

for t in "${TARGETS[@]}"; do
    bin=$OUT/bin/$t
    if [ ! -x "$bin" ]; then
        echo "FAIL fuzz: $t (no such target)"
        failed=$((failed + 1))
        continue
    fi
    corpus=$OUT/corpus/$t
    art=$OUT/artifacts/$t
    log=$OUT/$t.log
    mkdir -p "$corpus" "$art" tests/fuzz/corpus/$t
    opts=(-max_total_time="$SECONDS_EACH" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=1024
          -max_len="$(max_len "$t")" -artifact_prefix="$art/" -print_final_stats=1)
    [ -n "${FUZZ_SEED:-}" ] && opts+=(-seed="$FUZZ_SEED")
    dict=$(dict_for "$t")
    [ -n "$dict" ] && opts+=(-dict="$dict")
    case $t in *_raw) opts+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1) ;; esac
    before=$(ls "$art" | wc -l)
    "$bin" "${opts[@]}" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    # Executions: the final stats, or in fork mode the last progress line.
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    execs=${execs:-0}
    # Every new artifact: ours (FAIL), inside libhdf5 (a finding about HDF5),
    # or not reproducible on its own (fork mode saves some of those).
    ours=() hdf5=() flaky=()
    new=$(($(ls "$art" | wc -l) - before))
    # Rerunning takes up to 10 s per input (hangs): classify at most
    # FUZZ_CLASSIFY (20) of them.
    local_max=${FUZZ_CLASSIFY:-20}
    [ $new -gt $local_max ] && echo "note: fuzz: $t: $new new inputs in $art, classifying the newest $local_max"
    for f in $(ls -t "$art" | sed -n "1,$((new > local_max ? local_max : new))p"); do
        mkdir -p "$OUT/reports/$t"
        rep=$OUT/reports/$t/$f.txt
        if ASAN_OPTIONS=fast_unwind_on_malloc=0:detect_leaks=1 "$bin" -runs=1 -timeout="${FUZZ_RERUN_TIMEOUT:-10}" "$art/$f" >"$rep" 2>&1; then
            # Outside fork mode the crash did happen in this process: ours.
            case $t in *_raw) flaky+=("$art/$f") ;; *) ours+=("$art/$f") ;; esac
        elif in_hdf5 "$rep"; then
            hdf5+=("$art/$f")
        else
            ours+=("$art/$f")
        fi
    done
    note=""
    [ ${#hdf5[@]} -gt 0 ] && note="; ${#hdf5[@]} inputs crash, hang or leak inside libhdf5 itself: ${hdf5[*]}"
    [ ${#flaky[@]} -gt 0 ] && note="$note; ${#flaky[@]} saved inputs pass when rerun alone: ${flaky[*]}"
    if [ ${#ours[@]} -gt 0 ] || { [ $rc -ne 0 ] && [ $((${#hdf5[@]} + ${#flaky[@]})) -eq 0 ]; }; then
        first=${ours[0]:-}
        why=$( [ -n "$first" ] && summary_line "$OUT/reports/$t/$(basename "$first").txt" || summary_line "$log")
        echo "FAIL fuzz: $t ($execs execs, crash: ${why:-exit status $rc}; reproduce: $bin ${first:-(see $log)}$note)"
        failed=$((failed + 1))
    else
        echo "ok   fuzz: $t ($execs execs, no crash$note)"
        passed=$((passed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
