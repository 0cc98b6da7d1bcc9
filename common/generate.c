/* generate — batched KV-cache generation; see generate.h. */
#include "common/generate.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

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

/* Feeds every prompt through the cache; logits (n, V) get each prompt's last
 * position. */
static int prefill(const Gpt *m, GptKV *kv, const int *const *prompts,
                   const int *prompt_len, int n, float *logits) {
    int V = m->cfg.vocab_size, rows = 0;
    int *tok = err_malloc(GEN_PREFILL_ROWS * sizeof(int));
    int *seq = err_malloc(GEN_PREFILL_ROWS * sizeof(int));
    unsigned char *want = err_malloc(GEN_PREFILL_ROWS);
    float *out = err_malloc((size_t)GEN_PREFILL_ROWS * V * sizeof(float));
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        for (int t = 0; t < prompt_len[i] && !rc; t++) {
            tok[rows] = prompts[i][t];
            seq[rows] = i;
            want[rows] = t == prompt_len[i] - 1;
            rows++;
            int last = i == n - 1 && t == prompt_len[i] - 1;
            if (rows == GEN_PREFILL_ROWS || last) {
                rc = gpt_forward_cached(m, kv, tok, seq, rows, want, out, V);
                for (int r = 0; r < rows && !rc; r++)
                    if (want[r]) memcpy(logits + (size_t)seq[r] * V, out + (size_t)r * V, V * sizeof(float));
                rows = 0;
            }
        }
    free(tok), free(seq), free(want), free(out);
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

int gen_run(const Gpt *m, const int *const *prompts, const int *prompt_len, int n,
            const GenConfig *c, Rng *rng, GenResult *out) {
    if (n < 1 || c->max_new < 1) return err_set("generate: need at least one prompt and max_new >= 1");
    if (sampler_validate(&c->sampler) || check_prompts(m, prompts, prompt_len, n)) return -1;
    int V = m->cfg.vocab_size, longest = 0;
    for (int i = 0; i < n; i++) longest = prompt_len[i] > longest ? prompt_len[i] : longest;
    int max_len = longest + c->max_new < m->cfg.n_ctx ? longest + c->max_new : m->cfg.n_ctx;
    GptKV kv;
    if (gpt_kv_init(&kv, m, n, max_len)) return -1;
    Sampler s;
    sampler_init(&s, V);
    /* next[i]: sequence i's next-token logits, a row of the prefill's
     * output at first, then of the last step's (no copying back) */
    float *logits = err_malloc((size_t)n * V * sizeof(float));
    float *step = err_malloc((size_t)n * V * sizeof(float));
    const float **next = err_malloc(n * sizeof *next);
    for (int i = 0; i < n; i++) next[i] = logits + (size_t)i * V;
    int *tok = err_malloc(n * sizeof(int)), *seq = err_malloc(n * sizeof(int));
    int rc = prefill(m, &kv, prompts, prompt_len, n, logits), active = n;
    result_alloc(out, n, c->max_new);
    unsigned char *done = err_calloc(n, 1);
    while (!rc && active > 0) {
        int rows = 0;
        for (int i = 0; i < n; i++) {
            if (done[i]) continue;
            int k = out->len[i];
            int t = sampler_sample(&s, &c->sampler, next[i], rng,
                                   &out->logp_sample[i][k], &out->logp_model[i][k]);
            out->tokens[i][k] = t;
            out->len[i] = k + 1;
            /* prompt + response never exceeds the context */
            GenStop why = t == c->eot ? GEN_STOP_EOT : out->len[i] >= c->max_new ? GEN_STOP_LENGTH
                        : prompt_len[i] + out->len[i] >= m->cfg.n_ctx ? GEN_STOP_CONTEXT : (GenStop)-1;
            if ((int)why >= 0) {
                done[i] = 1, out->stop[i] = why, active--;
                continue;
            }
            tok[rows] = t, seq[rows++] = i;
        }
        if (rows) { /* every row was sampled above, so the step's output can be overwritten */
            rc = gpt_forward_cached(m, &kv, tok, seq, rows, NULL, step, V);
            for (int r = 0; r < rows; r++) next[seq[r]] = step + (size_t)r * V;
        }
    }
    if (rc) gen_result_free(out);
    free(done), free(tok), free(seq), free(logits), free(step), free(next);
    sampler_free(&s);
    gpt_kv_free(&kv);
    return rc;
}
