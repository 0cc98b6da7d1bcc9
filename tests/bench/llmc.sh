#!/bin/bash
# llmc.sh — our training step against llm.c's CPU trainer (karpathy/llm.c,
# train_gpt2.c) at the same model: randomly initialised GPT-2, one step =
# forward + backward + AdamW update, same threads. This script contains none
# of llm.c's code and fetches nothing: LLMC_DIR names an llm.c checkout (or
# its bare git directory); at run time its train_gpt2.c and llmc/ headers are
# copied to a scratch directory under /tmp, compiled with a small driver
# written there (train_gpt2.c included with TESTING defined, which leaves out
# its main) and deleted afterwards. llm.c is built as its Makefile builds it
# (-Ofast -march=native, OpenMP), with OMP_NUM_THREADS threads, both with
# libgomp's default wait policy and with OMP_WAIT_POLICY=passive (on a machine
# with more runnable threads than cores, spinning OpenMP barriers cost llm.c
# up to ~1.7x; the faster of the two is its "best"); ours runs with
# OPENBLAS_NUM_THREADS threads (build/opt/bench/train_step, the same calls
# bench_gpt times). The runs alternate, ROUNDS times, back to back; medians
# and the ratio are printed. A report, never a test.
#
#   LLMC_DIR=~/llm.c tests/bench/llmc.sh
# Environment: LLMC_CONFIGS ("vocab,d,layers,heads,T,batch[;...]"),
# LLMC_ROUNDS (3), LLMC_STEPS (timed steps per run, 4), LLMC_THREADS (2),
# LLMC_CC (gcc: llm.c's Makefile prefers clang, but Debian's clang 14 build
# of its loops ran ~3x slower here than gcc's, as did gcc -O3 without
# -Ofast, so llm.c is measured at its best), LLMC_CFLAGS,
# LLMC_PAD=1 to pad the vocabulary to a multiple of 128 as llm.c's exporter
# does (default: unpadded, the identical model), BENCH_DIR (build/opt/bench),
# LLMC_JSON (file to append the JSON lines to).
set -u
cd "$(dirname "$0")/../.."
: "${BENCH_DIR:=build/opt/bench}"
if [ -z "${LLMC_DIR:-}" ]; then
    echo "llmc: skipped: set LLMC_DIR to an llm.c checkout (git clone https://github.com/karpathy/llm.c)" >&2
    exit 0
fi
CONFIGS=${LLMC_CONFIGS:-"257,256,4,4,128,8"}
ROUNDS=${LLMC_ROUNDS:-3}
STEPS=${LLMC_STEPS:-4}
THREADS=${LLMC_THREADS:-2}
LLMC_CC=${LLMC_CC:-gcc}
CFLAGS=${LLMC_CFLAGS:-"-Ofast -march=native -fopenmp -DOMP -Wno-unused-result"}
if [ ! -x "$BENCH_DIR/train_step" ]; then
    echo "llmc: $BENCH_DIR/train_step is missing (make $BENCH_DIR/train_step)" >&2
    exit 1
fi

work=$(mktemp -d /tmp/llmc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -f "$LLMC_DIR/train_gpt2.c" ] && [ -d "$LLMC_DIR/llmc" ]; then
    cp "$LLMC_DIR/train_gpt2.c" "$work/" && cp -r "$LLMC_DIR/llmc" "$work/"
    rev=$(git -C "$LLMC_DIR" rev-parse --short HEAD 2>/dev/null || echo "?")
elif git --git-dir="$LLMC_DIR" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    git --git-dir="$LLMC_DIR" archive HEAD train_gpt2.c llmc | tar -x -C "$work"
    rev=$(git --git-dir="$LLMC_DIR" rev-parse --short HEAD)
else
    echo "llmc: $LLMC_DIR: no train_gpt2.c and llmc/ there, and not a git directory" >&2
    exit 1
fi

# The driver: builds a GPT2 in memory through llm.c's own allocation
# functions (no checkpoint file), initialises it as GPT-2 does (N(0, 0.02)
# weights, LayerNorm weights 1, biases 0), and times llm.c's step exactly as
# its main loop does: gpt2_forward, gpt2_zero_grad, gpt2_backward, gpt2_update.
cat >"$work/driver.c" <<'EOF'
#define TESTING
#include "train_gpt2.c"

static double driver_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static uint64_t driver_rng = 0x9e3779b97f4a7c15ULL;
static float driver_normal(void) { /* sum of 12 uniforms: mean 0, variance 1 */
    float s = 0;
    for (int i = 0; i < 12; i++) {
        driver_rng ^= driver_rng << 13, driver_rng ^= driver_rng >> 7, driver_rng ^= driver_rng << 17;
        s += (float)(driver_rng >> 40) / 16777216.0f;
    }
    return s - 6.0f;
}

static int driver_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 9) { fprintf(stderr, "usage: llmc_step V Vp C L NH T B STEPS\n"); return 2; }
    int V = atoi(argv[1]), Vp = atoi(argv[2]), C = atoi(argv[3]), L = atoi(argv[4]), NH = atoi(argv[5]);
    int T = atoi(argv[6]), B = atoi(argv[7]), steps = atoi(argv[8]);
    GPT2 model;
    memset(&model, 0, sizeof model);
    model.config = (GPT2Config){.max_seq_len = T, .vocab_size = V, .padded_vocab_size = Vp,
                                .num_layers = L, .num_heads = NH, .channels = C};
    fill_in_parameter_sizes(model.param_sizes, model.config);
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) model.num_parameters += model.param_sizes[i];
    model.params_memory = malloc_and_point_parameters(&model.params, model.param_sizes);
    for (size_t i = 0; i < model.num_parameters; i++) model.params_memory[i] = 0.02f * driver_normal();
    for (size_t i = 0; i < (size_t)L * C; i++) {
        model.params.ln1w[i] = model.params.ln2w[i] = 1.0f;
        model.params.ln1b[i] = model.params.ln2b[i] = model.params.attprojb[i] = model.params.fcprojb[i] = 0.0f;
    }
    for (size_t i = 0; i < (size_t)L * 3 * C; i++) model.params.qkvb[i] = 0.0f;
    for (size_t i = 0; i < (size_t)L * 4 * C; i++) model.params.fcb[i] = 0.0f;
    for (int i = 0; i < C; i++) model.params.lnfw[i] = 1.0f, model.params.lnfb[i] = 0.0f;
    model.mean_loss = -1.0f;
    int *in = malloc((size_t)B * T * sizeof(int)), *tg = malloc((size_t)B * T * sizeof(int));
    for (int i = 0; i < B * T; i++) in[i] = (i * 31 + 7) % V, tg[i] = (i * 17 + 3) % V;
    double *ms = malloc(steps * sizeof(double)), *sorted = malloc(steps * sizeof(double));
    float loss = 0;
    for (int s = 0; s < steps + 2; s++) { /* two warm-up steps: lazy allocation, first touch */
        double t0 = driver_now();
        gpt2_forward(&model, in, tg, B, T);
        gpt2_zero_grad(&model);
        gpt2_backward(&model);
        gpt2_update(&model, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, s + 1);
        if (s >= 2) ms[s - 2] = 1e3 * (driver_now() - t0);
        loss = model.mean_loss;
    }
    for (int i = 0; i < steps; i++) sorted[i] = ms[i];
    qsort(sorted, steps, sizeof *sorted, driver_cmp);
    int threads = 1;
#ifdef OMP
    threads = omp_get_max_threads();
#endif
    printf("{\"impl\": \"llmc\", \"vocab\": %d, \"padded_vocab\": %d, \"d\": %d, \"layers\": %d, \"heads\": %d, "
           "\"T\": %d, \"batch\": %d, \"params\": %zu, \"threads\": %d, \"loss\": %.4f, \"train_step_ms\": %.2f, "
           "\"step_ms\": [", V, Vp, C, L, NH, T, B, model.num_parameters, threads, loss, sorted[steps / 2]);
    for (int i = 0; i < steps; i++) printf("%s%.2f", i ? ", " : "", ms[i]);
    printf("]}\n");
    gpt2_free(&model);
    free(in), free(tg), free(ms), free(sorted);
    return 0;
}
EOF
# llm.c's printf of its activation count goes to stdout: keep only the JSON
if ! (cd "$work" && $LLMC_CC $CFLAGS -o llmc_step driver.c -lm) >"$work/build.log" 2>&1; then
    echo "llmc: building llm.c failed ($LLMC_CC $CFLAGS):" >&2
    tail -5 "$work/build.log" >&2
    exit 1
fi

out=$(mktemp)
trap 'rm -rf "$work" "$out"' EXIT
echo "llmc: llm.c $rev built with $LLMC_CC $CFLAGS; $ROUNDS rounds of $STEPS steps, $THREADS threads" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for cfg in ${CONFIGS//;/ }; do
    IFS=, read -r V D L H T B <<<"$cfg"
    VP=$V
    [ "${LLMC_PAD:-0}" = 1 ] && VP=$(( (V + 127) / 128 * 128 ))
    for r in $(seq "$ROUNDS"); do
        echo "llmc: vocab $V d $D layers $L heads $H T $T batch $B: round $r" >&2
        for policy in default passive; do
            wait_env=""
            [ $policy = passive ] && wait_env="OMP_WAIT_POLICY=passive"
            env $wait_env OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 \
                "$work/llmc_step" "$V" "$VP" "$D" "$L" "$H" "$T" "$B" "$STEPS" |
                grep '^{' | sed "s/\"impl\": \"llmc\"/\"impl\": \"llmc-$policy\"/; s/}\$/, \"round\": $r}/" >>"$out"
        done
        OPENBLAS_NUM_THREADS=$THREADS "$BENCH_DIR/train_step" "$V" "$D" "$L" "$H" "$T" "$B" "$STEPS" |
            sed "s/}\$/, \"round\": $r}/" >>"$out"
    done
done
[ -n "${LLMC_JSON:-}" ] && cat "$out" >>"$LLMC_JSON"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

/usr/bin/python3 - "$out" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda r: (r["vocab"], r["d"], r["layers"], r["heads"], r["T"], r["batch"])
print()
print("training step against llm.c (train_gpt2.c): same model, same threads, runs alternating")
print("%-36s %9s %12s %12s %8s  %s" % ("config", "C ms", "llm.c ms", "llm.c ms", "speedup", "speedup per round"))
print("%-36s %9s %12s %12s %8s" % ("", "", "(OMP default)", "(passive)", "vs best"))
for k in sorted({key(r) for r in rows}):
    sel = lambda impl: [r for r in rows if r["impl"] == impl and key(r) == k]
    c, ld, lp = sel("c"), sel("llmc-default"), sel("llmc-passive")
    if not c or not ld or not lp:
        continue
    med = lambda rs: st.median(x for r in rs for x in r["step_ms"])
    cm, dm, pm = med(c), med(ld), med(lp)
    rounds = " ".join("%.2fx" % (min(d["train_step_ms"], p["train_step_ms"]) / a["train_step_ms"])
                      for a, d, p in zip(c, ld, lp))
    print("%-36s %9.1f %12.1f %12.1f %7.2fx  %s" % ("vocab %d d %d L %d H %d T %d B %d" % k, cm, dm, pm,
                                                   min(dm, pm) / cm, rounds))
    print("  threads: C %d, llm.c %d; llm.c vocabulary padded to %d; params C %d, llm.c %d; llm.c loss %.3f"
          % (c[0]["threads"], ld[0]["threads"], ld[0]["padded_vocab"], c[0]["params"], ld[0]["params"], ld[0]["loss"]))
PY
echo "  llm.c $rev, $LLMC_CC $CFLAGS; load average before $load_before, after $load_after ($(nproc) cores)"
