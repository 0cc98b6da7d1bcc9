/* bench_gpt — speed of the C model: training step (forward + backward +
 * AdamW) tokens/s, KV-cache generation tokens/s, and the time the same
 * step's matrix products take in bare cblas_sgemm calls (the OpenBLAS limit
 * for this model). Prints one JSON line; tests/bench/run.sh compares it with
 * torch measured in the same run. Not a test: nothing here asserts speed. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/model/adamw.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/model/ops.h"
#include "tests/bench/bench_util.h"

/* Time of one sgemm (M x K) @ (K x N) with the given transposes. */
static double time_sgemm(int M, int N, int K, int ta, int tb, int reps) {
    float *a = calloc((size_t)M * K, 4), *b = calloc((size_t)K * N, 4), *c = calloc((size_t)M * N, 4);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.01f;
    double t[32];
    for (int r = 0; r < reps + 1; r++) {
        double t0 = fs_now();
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                    1.0f, a, ta ? M : K, b, tb ? K : N, 0.0f, c, N);
        if (r) t[r - 1] = fs_now() - t0;
    }
    free(a), free(b), free(c);
    return bench_median(t, reps);
}

/* The training step's products, timed alone: forward, dinp and dW of each
 * linear layer, attention products, and the unembedding. */
static double sgemm_step_time(const GptConfig *c, int B, int T, double *flops) {
    int N = B * T, C = c->n_embd, V = c->vocab_size, hs = C / c->n_head, reps = 5;
    int shapes[4][2] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
    double t = 0;
    *flops = 0;
    for (int i = 0; i < 4; i++) {
        int in = shapes[i][0], out = shapes[i][1];
        double one = time_sgemm(N, out, in, 0, 0, reps) + time_sgemm(N, in, out, 0, 1, reps) +
                     time_sgemm(in, out, N, 1, 0, reps);
        t += c->n_layer * one;
        *flops += c->n_layer * 6.0 * N * in * out;
    }
    /* attention per (b, h): S = QK^T, Y = PV forward; four products backward */
    double att = 2 * time_sgemm(T, T, hs, 0, 1, reps) + 2 * time_sgemm(T, hs, T, 0, 0, reps) +
                 2 * time_sgemm(T, hs, T, 1, 0, reps);
    t += (double)c->n_layer * B * c->n_head * att;
    *flops += (double)c->n_layer * B * c->n_head * 6 * 2.0 * T * T * hs;
    t += time_sgemm(N, V, C, 0, 1, reps) + time_sgemm(N, C, V, 0, 0, reps) + time_sgemm(V, C, N, 1, 0, reps);
    *flops += 6.0 * N * V * C;
    return t;
}

static double train_step_time(Gpt *m, int B, int T, int steps) {
    double t[64];
    bench_train_steps(m, B, T, steps, t);
    return bench_median(t, steps);
}

/* Memory read bandwidth (bytes/s) on the kernels' threads: a 512 MB
 * buffer (far beyond the caches) summed in chunks, best of 5. */
typedef struct {
    const float *x;
    double *partial;
} Stream;

static void stream_range(void *ctx, size_t c0, size_t c1) {
    const Stream *s = ctx;
    for (size_t c = c0; c < c1; c++) {
        const float *x = s->x + c * 65536;
        /* four vector accumulators: one add chain would be latency-bound */
        typedef float v16 __attribute__((vector_size(64)));
        v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (size_t i = 0; i < 65536; i += 64) {
            v16 x0, x1, x2, x3;
            memcpy(&x0, x + i, 64), memcpy(&x1, x + i + 16, 64);
            memcpy(&x2, x + i + 32, 64), memcpy(&x3, x + i + 48, 64);
            a0 += x0, a1 += x1, a2 += x2, a3 += x3;
        }
        v16 t = a0 + a1 + a2 + a3;
        double sum = 0;
        for (int j = 0; j < 16; j++) sum += t[j];
        s->partial[c] = sum;
    }
}

static double read_bandwidth(void) {
    size_t chunks = 2048, n = chunks * 65536; /* 512 MB */
    float *x = malloc(n * sizeof(float));
    double *partial = malloc(chunks * sizeof(double)), best = 1e30, sink = 0;
    for (size_t i = 0; i < n; i++) x[i] = (float)(i & 7);
    Stream s = {x, partial};
    for (int r = 0; r < 5; r++) {
        double t0 = fs_now();
        ops_parallel_for(chunks, 16, stream_range, &s);
        double t = fs_now() - t0;
        best = t < best ? t : best;
        sink += partial[chunks - 1];
    }
    free(x), free(partial);
    return n * sizeof(float) / best + 0 * sink;
}

/* New tokens per second: B prompts of 16 tokens, 128 greedy new tokens,
 * through gen_run as the actors call it. */
static double gen_tokens_per_s(const Gpt *m, int B, int new_tokens) {
    int **p = malloc(B * sizeof(int *)), *len = malloc(B * sizeof(int));
    for (int b = 0; b < B; b++) {
        p[b] = malloc(16 * sizeof(int)), len[b] = 16;
        for (int i = 0; i < 16; i++) p[b][i] = (b * 13 + i * 7) % m->cfg.vocab_size;
    }
    GenConfig gc = {
        .max_new = new_tokens, .eot = -1, .sampler = {.greedy = 1, .temperature = 1.0f, .top_k = 0, .top_p = 1.0f}};
    Rng rng;
    rng_seed(&rng, 1);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        GenResult res;
        double t0 = fs_now();
        gen_run(m, (const int *const *)p, len, B, &gc, &rng, &res);
        double t = fs_now() - t0;
        best = t < best ? t : best;
        gen_result_free(&res);
    }
    for (int b = 0; b < B; b++) free(p[b]);
    free(p), free(len);
    return (double)B * new_tokens / best;
}

int main(int argc, char **argv) {
    int V = argc > 1 ? atoi(argv[1]) : 257, C = argc > 2 ? atoi(argv[2]) : 256;
    int L = argc > 3 ? atoi(argv[3]) : 4, H = argc > 4 ? atoi(argv[4]) : 4;
    int T = argc > 5 ? atoi(argv[5]) : 128, B = argc > 6 ? atoi(argv[6]) : 8;
    int steps = argc > 7 ? atoi(argv[7]) : 10;
    GptConfig c = {.vocab_size = V,
                   .n_ctx = T + 16 > 144 ? T + 16 : 144,
                   .n_layer = L,
                   .n_head = H,
                   .n_embd = C,
                   .head = GPT_HEAD_LM};
    Gpt m;
    if (gpt_init(&m, &c)) return 1;
    gpt_init_random(&m, 1);
    /* steps = 0: generation only (for profiling it) */
    double flops = 0, t_sgemm = steps ? sgemm_step_time(&c, B, T, &flops) : 0;
    double t_step = steps ? train_step_time(&m, B, T, steps) : 1;
    /* batch 1 also without the packed head (the tied wte read in place) */
    double g1_unpacked = gen_tokens_per_s(&m, 1, 128);
    gpt_pack_decode(&m); /* as the actors, rlhf generate and eval do, once per set of weights */
    double g1 = gen_tokens_per_s(&m, 1, 128);
    double g8 = gen_tokens_per_s(&m, 8, 128);
    /* batch 1 is bound by streaming every weight once per token (the
     * position table only one row) */
    double bw = read_bandwidth();
    double weight_bytes = 4.0 * (m.n_params - (size_t)c.n_ctx * C);
    double b1_bound = bw / weight_bytes;
    printf("{\"impl\": \"c\", \"vocab\": %d, \"d\": %d, \"layers\": %d, \"heads\": %d, \"T\": %d, \"batch\": %d, "
           "\"params\": %zu, \"train_step_ms\": %.2f, \"train_tokens_per_s\": %.1f, \"train_gflops\": %.2f, "
           "\"sgemm_step_ms\": %.2f, \"sgemm_gflops\": %.2f, \"share_of_sgemm\": %.3f, "
           "\"gen_b8_tokens_per_s\": %.1f, \"gen_b1_tokens_per_s\": %.1f, \"gen_b1_unpacked_tokens_per_s\": %.1f, "
           "\"read_gbs\": %.1f, "
           "\"weights_mb\": %.1f, \"gen_b1_bound_tokens_per_s\": %.1f, \"openblas_threads\": %d}\n",
           V, C, L, H, T, B, m.n_params, 1e3 * t_step, B * T / t_step, flops / t_step * 1e-9, 1e3 * t_sgemm,
           flops / t_sgemm * 1e-9, t_sgemm / t_step, g8, g1, g1_unpacked, bw * 1e-9, weight_bytes * 1e-6, b1_bound,
           openblas_get_num_threads());
    gpt_free(&m);
    return 0;
}
