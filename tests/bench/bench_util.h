/* bench_util — what the benchmark programs share: the median of timings
 * (timed with fs_now), and the timed training step (forward, LM loss,
 * backward, AdamW) that bench_gpt and train_step both measure. Header-only:
 * each benchmark is one program built from its own .c file. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdlib.h>

#include "common/fsutil.h"
#include "common/model/adamw.h"
#include "common/model/gpt.h"

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of x[0..n) (sorts x; even n: the mean of the middle two). */
static inline double bench_median(double *x, int n) {
    qsort(x, n, sizeof *x, bench_cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* Runs steps + 2 training steps on fixed tokens (the first two warm up),
 * fills seconds[0..steps) with the timed ones. */
static inline void bench_train_steps(Gpt *m, int B, int T, int steps, double *seconds) {
    int N = B * T, *tok = malloc(N * sizeof(int)), *tgt = malloc(N * sizeof(int));
    float *dlogp = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) tok[i] = (i * 31 + 7) % m->cfg.vocab_size, tgt[i] = (i * 17 + 3) % m->cfg.vocab_size;
    AdamWConfig ac = adamw_default();
    AdamW opt;
    adamw_init(&opt, m->n_params, &ac);
    for (int s = 0; s < steps + 2; s++) {
        double t0 = fs_now();
        gpt_forward(m, tok, B, T);
        gpt_ce_loss(m, tgt, NULL, dlogp);
        gpt_zero_grad(m);
        gpt_backward_lm(m, tgt, dlogp, NULL);
        adamw_step(&opt, m);
        if (s >= 2) seconds[s - 2] = fs_now() - t0;
    }
    adamw_free(&opt);
    free(tok), free(tgt), free(dlogp);
}

#endif
