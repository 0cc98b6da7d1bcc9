/* decode_bw — the decoding loop against the memory-bandwidth limit, both
 * measured in this process on the same threads (OPENBLAS_NUM_THREADS, as
 * for the whole library):
 *   decode: the per-token step of KV-cache decoding (gpt_forward_cached,
 *     one row per sequence, head packed as the actors pack it) after a
 *     16-token prompt, 128 steps per sequence; achieved GB/s = the bytes a
 *     step must read (every weight once: the layers, the packed head, one
 *     row of wte and of wpe, plus the KV cache of each row up to its
 *     position) over the step's time. The sampler is left out (tokens are
 *     fed back by argmax, untimed): it reads the logits, not the weights.
 *   stream: STREAM-style copy (c = a) and triad (a = b + s*c) on arrays of
 *     4x the L3 cache (128 MB each here), counted as STREAM counts (copy 2,
 *     triad 3 arrays; no write-allocate traffic), best of 5; and a read-only
 *     sum (the decoding step only reads weights).
 * Usage: decode_bw [VOCAB D LAYERS HEADS [BATCH...]] (default 50257 256 4 4
 * 1 8). Prints one JSON line per batch. A report, never a test: nothing
 * here asserts speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/model/gpt.h"
#include "common/model/ops.h"
#include "tests/bench/bench_util.h"

#define PROMPT 16
#define STEPS 128

/* ---- STREAM-style kernels on the pool's threads ------------------------ */

typedef struct {
    float *a, *b, *c;
    float s;
    int op; /* 0 copy, 1 triad, 2 read (sum into partial) */
    double *partial;
} Stream;

#define STREAM_CHUNK 65536 /* floats per task: 256 KB */

static void stream_range(void *ctx, size_t c0, size_t c1) {
    const Stream *st = ctx;
    for (size_t ch = c0; ch < c1; ch++) {
        size_t o = ch * STREAM_CHUNK;
        float *a = st->a + o, *b = st->b + o, *c = st->c + o;
        if (st->op == 0) {
            for (size_t i = 0; i < STREAM_CHUNK; i++) c[i] = a[i];
        } else if (st->op == 1) {
            for (size_t i = 0; i < STREAM_CHUNK; i++) a[i] = b[i] + st->s * c[i];
        } else { /* 8 independent partial sums: one add chain would be latency-bound */
            float acc[32] = {0};
            for (size_t i = 0; i < STREAM_CHUNK; i += 32)
                for (int j = 0; j < 32; j++) acc[j] += a[i + j];
            double sum = 0;
            for (int j = 0; j < 32; j++) sum += acc[j];
            st->partial[ch] = sum;
        }
    }
}

/* Best bandwidth (bytes/s) of op over arrays of n floats. */
static double stream_best(Stream *st, size_t n, int op) {
    size_t chunks = n / STREAM_CHUNK;
    double best = 1e30, bytes = (op == 0 ? 2.0 : op == 1 ? 3.0 : 1.0) * n * sizeof(float);
    st->op = op;
    for (int r = 0; r < 5; r++) {
        double t0 = fs_now();
        ops_parallel_for(chunks, 4, stream_range, st);
        double t = fs_now() - t0;
        best = t < best ? t : best;
    }
    return bytes / best;
}

/* The L3 size of the cache cpu0 sees (sysfs: glibc's sysconf reports the
 * whole package's on this EPYC, 256 MB, not the 32 MB one core shares). */
static size_t l3_bytes(void) {
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    unsigned long kb = 0;
    if (f) {
        if (fscanf(f, "%luK", &kb) != 1) kb = 0;
        fclose(f);
    }
    if (kb) return (size_t)kb << 10;
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return l3 > 0 ? (size_t)l3 : (size_t)32 << 20;
}

/* ---- the decoding step ---------------------------------------------------- */

/* Bytes one step must read for rows at cache lengths len[0..B) (their
 * positions + 1): every weight once (the head as the packed panels it reads,
 * embeddings one row each per row) and each row's cached keys and values. */
static double step_bytes(const Gpt *m, int B, const int *len) {
    const GptConfig *c = &m->cfg;
    size_t C = c->n_embd;
    double w = (double)m->n_params - (double)c->vocab_size * C - (double)c->n_ctx * C; /* layers + lnf */
    w += m->head_panels ? (double)ops_panels_size(c->vocab_size, c->n_embd) : (double)c->vocab_size * C;
    w += 2.0 * C * B; /* wte and wpe rows */
    double kv = 0;
    for (int b = 0; b < B; b++) kv += 2.0 * c->n_layer * C * len[b];
    return 4.0 * (w + kv);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct {
    double step_ms, gbs, weights_mb, kv_mb;
} Decode;

/* B sequences: PROMPT-token prompts prefilled, then STEPS timed one-row
 * steps each; best of 3 runs of the loop. */
static Decode decode(const Gpt *m, int B) {
    int V = m->cfg.vocab_size, *tok = malloc(B * PROMPT * sizeof(int)), *seq = malloc(B * PROMPT * sizeof(int));
    int *len = malloc(B * sizeof(int));
    float *out = malloc((size_t)B * PROMPT * V * sizeof(float));
    Decode d = {.step_ms = 1e30};
    for (int rep = 0; rep < 3; rep++) {
        GptKV kv;
        if (gpt_kv_init(&kv, m, B, PROMPT + STEPS)) exit(1);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < PROMPT; i++) tok[b * PROMPT + i] = (b * 13 + i * 7) % V, seq[b * PROMPT + i] = b;
        gpt_forward_cached(m, &kv, tok, seq, B * PROMPT, NULL, out, V);
        for (int b = 0; b < B; b++) tok[b] = argmax(out + (size_t)(b * PROMPT + PROMPT - 1) * V, V), seq[b] = b;
        double t = 0, bytes = 0, kvb = 0;
        for (int s = 0; s < STEPS; s++) {
            for (int b = 0; b < B; b++) len[b] = kv.len[b] + 1;
            bytes += step_bytes(m, B, len);
            kvb += step_bytes(m, B, len) - step_bytes(m, 0, len);
            double t0 = fs_now();
            gpt_forward_cached(m, &kv, tok, seq, B, NULL, out, V);
            t += fs_now() - t0;
            for (int b = 0; b < B; b++) tok[b] = argmax(out + (size_t)b * V, V);
        }
        gpt_kv_free(&kv);
        if (t / STEPS * 1e3 < d.step_ms)
            d = (Decode){.step_ms = t / STEPS * 1e3, .gbs = bytes / t * 1e-9,
                         .weights_mb = step_bytes(m, 0, len) * 1e-6, .kv_mb = kvb / STEPS * 1e-6};
    }
    free(tok), free(seq), free(len), free(out);
    return d;
}

int main(int argc, char **argv) {
    int V = argc > 1 ? atoi(argv[1]) : 50257, C = argc > 2 ? atoi(argv[2]) : 256;
    int L = argc > 3 ? atoi(argv[3]) : 4, H = argc > 4 ? atoi(argv[4]) : 4;
    int batches[8] = {1, 8}, nb = 2;
    if (argc > 5) {
        nb = 0;
        for (int i = 5; i < argc && nb < 8; i++) batches[nb++] = atoi(argv[i]);
    }
    GptConfig c = {.vocab_size = V, .n_ctx = PROMPT + STEPS, .n_layer = L, .n_head = H, .n_embd = C,
                   .head = GPT_HEAD_LM};
    Gpt m;
    if (gpt_init(&m, &c)) return 1;
    gpt_init_random(&m, 1);
    gpt_pack_decode(&m); /* as the actors do */

    /* arrays of 4x L3 each (at most 512 MB), a multiple of the chunk */
    size_t l3 = l3_bytes() < ((size_t)128 << 20) ? l3_bytes() : (size_t)128 << 20;
    size_t n = (4 * l3 / sizeof(float) + STREAM_CHUNK - 1) / STREAM_CHUNK * STREAM_CHUNK;
    Stream st = {.a = malloc(n * 4), .b = malloc(n * 4), .c = malloc(n * 4), .s = 3.0f,
                 .partial = malloc(n / STREAM_CHUNK * sizeof(double))};
    for (size_t i = 0; i < n; i++) st.a[i] = 1.0f, st.b[i] = 2.0f, st.c[i] = 0.5f; /* pages touched */

    for (int k = 0; k < nb; k++) {
        int B = batches[k];
        /* decoding first, then STREAM: each row's pair measured back to back */
        Decode d = decode(&m, B);
        double copy = stream_best(&st, n, 0), triad = stream_best(&st, n, 1), rd = stream_best(&st, n, 2);
        printf("{\"impl\": \"c\", \"bench\": \"decode_bw\", \"vocab\": %d, \"d\": %d, \"layers\": %d, \"heads\": %d, "
               "\"batch\": %d, \"threads\": %d, \"step_ms\": %.3f, \"tokens_per_s\": %.1f, \"step_weights_mb\": %.2f, "
               "\"step_kv_mb\": %.3f, \"decode_gbs\": %.2f, \"stream_copy_gbs\": %.2f, \"stream_triad_gbs\": %.2f, "
               "\"read_gbs\": %.2f, \"stream_array_mb\": %.0f}\n",
               V, C, L, H, B, ops_threads(), d.step_ms, B / d.step_ms * 1e3, d.weights_mb, d.kv_mb, d.gbs,
               copy * 1e-9, triad * 1e-9, rd * 1e-9, n * 4e-6);
        fflush(stdout);
    }
    free(st.a), free(st.b), free(st.c), free(st.partial);
    gpt_free(&m);
    return 0;
}
