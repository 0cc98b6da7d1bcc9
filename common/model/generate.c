/* generate — batched KV-cache generation; see generate.h. */
#include "common/model/generate.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/model/ops.h"

#define GEN_PREFILL_ROWS 512 /* rows per prefill call: bounds scratch memory */

static void result_alloc(GenResult *r, int n, int max_new) {
    memset(r, 0, sizeof *r);
    r->n = n;
    r->len = err_calloc(n, sizeof(int));
    r->stop = err_calloc(n, sizeof(GenStop));
    r->tokens = err_calloc(n, sizeof(int *));
    r->logp_sample = err_calloc(n, sizeof(float *));
    r->logp_model = err_calloc(n, sizeof(float *));
    for (int i = 0; i < n; i++) {
        r->tokens[i] = err_calloc(max_new, sizeof(int));
        r->logp_sample[i] = err_calloc(max_new, sizeof(float));
        r->logp_model[i] = err_calloc(max_new, sizeof(float));
    }
}

void gen_result_free(GenResult *r) {
    for (int i = 0; i < r->n; i++) {
        free(r->tokens[i]);
        free(r->logp_sample[i]);
        free(r->logp_model[i]);
    }
    free(r->tokens);
    free(r->logp_sample);
    free(r->logp_model);
    free(r->len);
    free(r->stop);
    memset(r, 0, sizeof *r);
}

/* 1 if sequence i repeats sequence i - 1's prompt. */
static int repeats_previous(const int *const *prompts, const int *prompt_len, int i) {
    if (i == 0 || prompt_len[i] != prompt_len[i - 1]) return 0;
    return prompts[i] == prompts[i - 1] || !memcmp(prompts[i], prompts[i - 1], (size_t)prompt_len[i] * sizeof(int));
}

/* Feeds every prompt through the cache; logits (n, V) get each prompt's last
 * position. A prompt that repeats the one before it is not fed again: its
 * sequence forks the cache of the first of the run and copies its logits. */
static int prefill(const Gpt *m, GptKV *kv, const int *const *prompts,
                   const int *prompt_len, int n, int share, float *logits) {
    int V = m->cfg.vocab_size, rows = 0;
    int *first = err_malloc((size_t)n * sizeof(int)); /* the sequence whose prefill i uses */
    int last_fed = 0;
    for (int i = 0; i < n; i++) {
        first[i] = share && repeats_previous(prompts, prompt_len, i) ? first[i - 1] : i;
        if (first[i] == i) last_fed = i;
    }
    int *tok = err_malloc(GEN_PREFILL_ROWS * sizeof(int));
    int *seq = err_malloc(GEN_PREFILL_ROWS * sizeof(int));
    unsigned char *want = err_malloc(GEN_PREFILL_ROWS);
    float *out = err_malloc((size_t)GEN_PREFILL_ROWS * V * sizeof(float));
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        for (int t = 0; t < prompt_len[i] && !rc && first[i] == i; t++) {
            tok[rows] = prompts[i][t];
            seq[rows] = i;
            want[rows] = t == prompt_len[i] - 1;
            rows++;
            int last = i == last_fed && t == prompt_len[i] - 1;
            if (rows == GEN_PREFILL_ROWS || last) {
                rc = gpt_forward_cached(m, kv, tok, seq, rows, want, out, V);
                for (int r = 0; r < rows && !rc; r++)
                    if (want[r]) memcpy(logits + (size_t)seq[r] * V, out + (size_t)r * V, V * sizeof(float));
                rows = 0;
            }
        }
    for (int i = 0; i < n && !rc; i++)
        if (first[i] != i) {
            gpt_kv_copy(kv, m, i, first[i]);
            memcpy(logits + (size_t)i * V, logits + (size_t)first[i] * V, V * sizeof(float));
        }
    free(first);
    free(tok);
    free(seq);
    free(want);
    free(out);
    return rc;
}

static int check_prompts(const Gpt *m, const int *const *prompts, const int *prompt_len, int n) {
    for (int i = 0; i < n; i++) {
        if (prompt_len[i] < 1) return err_set("prompt %d is empty", i);
        if (prompt_len[i] >= m->cfg.n_ctx)
            return err_set("prompt %d has %d tokens; the model's context is %d", i, prompt_len[i], m->cfg.n_ctx);
        for (int t = 0; t < prompt_len[i]; t++)
            if (prompts[i][t] < 0 || prompts[i][t] >= m->cfg.vocab_size)
                return err_set("prompt %d: token id %d outside the vocabulary", i, prompts[i][t]);
    }
    return 0;
}

/* One decoding step's sampling, run over the kernel threads: sequence i
 * draws from its own random stream, so the tokens do not depend on which
 * thread samples which sequence. Chunk j uses sampler j's scratch. */
typedef struct {
    const GenConfig *c;
    GenResult *out;
    Sampler *samplers;
    Rng *rngs;
    const float **next;
    const int *todo; /* sequences to sample */
    int n_todo, per_chunk;
} SampleStep;

static void sample_range(void *ctx, size_t j0, size_t j1) {
    SampleStep *st = ctx;
    for (size_t j = j0; j < j1; j++)
        for (int q = (int)j * st->per_chunk; q < (int)(j + 1) * st->per_chunk && q < st->n_todo; q++) {
            int i = st->todo[q], k = st->out->len[i];
            int t = sampler_sample(&st->samplers[j], &st->c->sampler, st->next[i], &st->rngs[i],
                                   &st->out->logp_sample[i][k], &st->out->logp_model[i][k]);
            st->out->tokens[i][k] = t; /* -1: failed (err_msg is the worker thread's) */
        }
}

int gen_run(const Gpt *m, const int *const *prompts, const int *prompt_len, int n,
            const GenConfig *c, Rng *rng, GenResult *out) {
    if (n < 1 || c->max_new < 1) return err_set("generate: need at least one prompt and max_new >= 1");
    if (sampler_validate(&c->sampler) || check_prompts(m, prompts, prompt_len, n)) return -1;
    int V = m->cfg.vocab_size, longest = 0, shortest = m->cfg.n_ctx;
    for (int i = 0; i < n; i++) {
        longest = prompt_len[i] > longest ? prompt_len[i] : longest;
        shortest = prompt_len[i] < shortest ? prompt_len[i] : shortest;
    }
    /* a response ends when the context is full, so max_new beyond the room
     * left sizes nothing (--max-new 2e9 once asked for 8 GB); no int sum
     * overflows */
    int max_len = c->max_new < m->cfg.n_ctx - longest ? longest + c->max_new : m->cfg.n_ctx;
    int room = c->max_new < m->cfg.n_ctx - shortest ? c->max_new : m->cfg.n_ctx - shortest;
    GptKV kv;
    if (gpt_kv_init(&kv, m, n, max_len)) return -1;
    /* one sampler (scratch) per chunk of sequences: as many chunks as threads */
    int chunks = ops_threads() < n ? ops_threads() : n;
    Sampler *samplers = err_malloc((size_t)chunks * sizeof *samplers);
    for (int j = 0; j < chunks; j++) sampler_init(&samplers[j], V);
    Rng *rngs = err_malloc((size_t)n * sizeof *rngs);
    for (int i = 0; i < n; i++) rng_seed(&rngs[i], rng_u64(rng));
    /* next[i]: sequence i's next-token logits, a row of the prefill's
     * output at first, then of the last step's (no copying back) */
    float *logits = err_malloc((size_t)n * V * sizeof(float));
    float *step = err_malloc((size_t)n * V * sizeof(float));
    const float **next = err_malloc(n * sizeof *next);
    for (int i = 0; i < n; i++) next[i] = logits + (size_t)i * V;
    int *tok = err_malloc(n * sizeof(int));
    int *seq = err_malloc(n * sizeof(int));
    int *todo = err_malloc(n * sizeof(int));
    int rc = prefill(m, &kv, prompts, prompt_len, n, !c->prefill_each, logits);
    int active = n;
    result_alloc(out, n, room);
    unsigned char *done = err_calloc(n, 1);
    while (!rc && active > 0) {
        int n_todo = 0;
        for (int i = 0; i < n; i++)
            if (!done[i]) todo[n_todo++] = i;
        int per_chunk = (n_todo + chunks - 1) / chunks;
        SampleStep st = {.c = c, .out = out, .samplers = samplers, .rngs = rngs, .next = next,
                         .todo = todo, .n_todo = n_todo, .per_chunk = per_chunk};
        ops_parallel_for((size_t)(n_todo + per_chunk - 1) / per_chunk, 1, sample_range, &st);
        for (int q = 0; q < n_todo && !rc; q++) {
            int i = todo[q];
            if (out->tokens[i][out->len[i]] < 0) { /* fails again here, setting this thread's message */
                sampler_sample(&samplers[0], &c->sampler, next[i], &rngs[i], NULL, NULL);
                rc = -1;
            }
        }
        if (rc) break;
        int rows = 0;
        for (int q = 0; q < n_todo; q++) {
            int i = todo[q], t = out->tokens[i][out->len[i]];
            out->len[i]++;
            /* prompt + response never exceeds the context */
            GenStop why = t == c->eot ? GEN_STOP_EOT : out->len[i] >= c->max_new ? GEN_STOP_LENGTH
                        : prompt_len[i] + out->len[i] >= m->cfg.n_ctx ? GEN_STOP_CONTEXT : (GenStop)-1;
            if ((int)why >= 0) {
                done[i] = 1;
                out->stop[i] = why;
                active--;
                continue;
            }
            tok[rows] = t;
            seq[rows] = i;
            rows++;
        }
        if (rows) { /* every row was sampled above, so the step's output can be overwritten */
            rc = gpt_forward_cached(m, &kv, tok, seq, rows, NULL, step, V);
            for (int r = 0; r < rows; r++) next[seq[r]] = step + (size_t)r * V;
        }
    }
    if (rc) gen_result_free(out);
    free(done);
    free(tok);
    free(seq);
    free(todo);
    free(logits);
    free(step);
    free(next);
    free(rngs);
    for (int j = 0; j < chunks; j++) sampler_free(&samplers[j]);
    free(samplers);
    gpt_kv_free(&kv);
    return rc;
}
