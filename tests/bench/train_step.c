/* train_step — wall time of our training step alone (forward, cross-entropy,
 * backward, AdamW: the calls bench_gpt times), without bench_gpt's sgemm
 * and generation measurements, so tests/bench/llmc.sh can alternate short
 * runs of it with llm.c's step several times in one benchmark. Usage:
 *   train_step VOCAB D LAYERS HEADS T BATCH STEPS
 * Two warm-up steps, then STEPS timed steps; prints one JSON line with the
 * median and every step's milliseconds. Threads: OPENBLAS_NUM_THREADS, as
 * for the whole library. A report, never a test. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/adamw.h"
#include "common/err.h"
#include "common/gpt.h"
#include "common/ops.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Parses a positive integer argument; 0 (and a message) if it is not one. */
static int arg_int(const char *s, const char *name) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1000000) {
        fprintf(stderr, "train_step: %s = '%s': expected a positive integer\n", name, s);
        return 0;
    }
    return (int)v;
}

/* Runs steps + 2 steps, fills ms[0..steps) with the timed ones. */
static void time_steps(Gpt *m, int B, int T, int steps, double *ms) {
    int N = B * T, *tok = malloc(N * sizeof(int)), *tgt = malloc(N * sizeof(int));
    float *dlogp = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) tok[i] = (i * 31 + 7) % m->cfg.vocab_size, tgt[i] = (i * 17 + 3) % m->cfg.vocab_size;
    AdamWConfig ac = adamw_default();
    AdamW opt;
    adamw_init(&opt, m->n_params, &ac);
    for (int s = 0; s < steps + 2; s++) {
        double t0 = now();
        gpt_forward(m, tok, B, T);
        gpt_ce_loss(m, tgt, NULL, dlogp);
        gpt_zero_grad(m);
        gpt_backward_lm(m, tgt, dlogp, NULL);
        adamw_step(&opt, m);
        if (s >= 2) ms[s - 2] = 1e3 * (now() - t0);
    }
    adamw_free(&opt);
    free(tok), free(tgt), free(dlogp);
}

int main(int argc, char **argv) {
    static const char *names[] = {"VOCAB", "D", "LAYERS", "HEADS", "T", "BATCH", "STEPS"};
    int a[7];
    if (argc != 8) {
        fprintf(stderr, "usage: train_step VOCAB D LAYERS HEADS T BATCH STEPS\n");
        return 2;
    }
    for (int i = 0; i < 7; i++)
        if (!(a[i] = arg_int(argv[i + 1], names[i]))) return 2;
    int V = a[0], C = a[1], L = a[2], H = a[3], T = a[4], B = a[5], steps = a[6];
    GptConfig c = {V, T, L, H, C, GPT_HEAD_LM};
    Gpt m;
    if (gpt_init(&m, &c)) {
        fprintf(stderr, "train_step: %s\n", err_msg());
        return 2;
    }
    gpt_init_random(&m, 1);
    double *ms = malloc(steps * sizeof(double)), *sorted = malloc(steps * sizeof(double));
    time_steps(&m, B, T, steps, ms);
    for (int i = 0; i < steps; i++) sorted[i] = ms[i];
    qsort(sorted, steps, sizeof *sorted, cmp_double);
    printf("{\"impl\": \"c\", \"vocab\": %d, \"d\": %d, \"layers\": %d, \"heads\": %d, \"T\": %d, \"batch\": %d, "
           "\"params\": %zu, \"threads\": %d, \"train_step_ms\": %.2f, \"step_ms\": [",
           V, C, L, H, T, B, m.n_params, ops_threads(), sorted[steps / 2]);
    for (int i = 0; i < steps; i++) printf("%s%.2f", i ? ", " : "", ms[i]);
    printf("]}\n");
    free(ms), free(sorted);
    gpt_free(&m);
    return 0;
}
