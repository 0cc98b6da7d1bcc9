/* generate — batched KV-cache generation with shared prefill and
 * continuous batching; see generate.h. */
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

/* The state of one gen_run: samples are admitted into the cache's slots in
 * order as slots free up; sample i lives in slot slot_of[i] while it runs. */
typedef struct {
    const Gpt *m;
    const GenConfig *c;
    const int *const *prompts;
    const int *prompt_len;
    int n, slots, V;
    GptKV kv;
    int *slot_of;       /* per sample: its slot while it runs, else -1 */
    int *sample_in;     /* per slot: its sample, or -1 when free */
    float *logits;      /* (slots, V): prefill outputs, by slot */
    const float **next; /* per sample: its next-token logits (a row of logits or of the last step) */
    /* prefill scratch, GEN_PREFILL_ROWS rows at most per call */
    int *tok, *seq;
    unsigned char *want;
    float *out;
} Gen;

/* 1 if sample b has sample a's prompt. */
static int same_prompt(const Gen *g, int a, int b) {
    if (g->prompt_len[a] != g->prompt_len[b]) return 0;
    return g->prompts[a] == g->prompts[b] ||
           !memcmp(g->prompts[a], g->prompts[b], (size_t)g->prompt_len[a] * sizeof(int));
}

/* Feeds the prompts of samples list[0..k) (just admitted, slots empty)
 * through the cache; each one's slot row of logits gets its prompt's last
 * position. Shared prefill: a sample whose prompt repeats the one before it
 * in the list is not fed again; its slot forks the first one's cache. */
static int prefill(Gen *g, const int *list, int k) {
    int V = g->V, rows = 0, rc = 0, last_fed = 0;
    int first[k]; /* the list entry whose prefill entry j uses */
    for (int j = 0; j < k; j++) {
        int share = j > 0 && !g->c->prefill_each && same_prompt(g, list[j - 1], list[j]);
        first[j] = share ? first[j - 1] : j;
        if (first[j] == j) last_fed = j;
    }
    for (int j = 0; j < k && !rc; j++) {
        int i = list[j];
        for (int t = 0; t < g->prompt_len[i] && !rc && first[j] == j; t++) {
            g->tok[rows] = g->prompts[i][t];
            g->seq[rows] = g->slot_of[i];
            g->want[rows] = t == g->prompt_len[i] - 1;
            rows++;
            if (rows < GEN_PREFILL_ROWS && !(j == last_fed && t == g->prompt_len[i] - 1)) continue;
            rc = gpt_forward_cached(g->m, &g->kv, g->tok, g->seq, rows, g->want, g->out, V);
            for (int r = 0; r < rows && !rc; r++)
                if (g->want[r]) memcpy(g->logits + (size_t)g->seq[r] * V, g->out + (size_t)r * V, V * sizeof(float));
            rows = 0;
        }
    }
    for (int j = 0; j < k && !rc; j++) {
        int dst = g->slot_of[list[j]], src = g->slot_of[list[first[j]]];
        if (dst == src) continue;
        gpt_kv_copy(&g->kv, g->m, dst, src);
        memcpy(g->logits + (size_t)dst * V, g->logits + (size_t)src * V, V * sizeof(float));
    }
    for (int j = 0; j < k; j++) g->next[list[j]] = g->logits + (size_t)g->slot_of[list[j]] * V;
    return rc;
}

/* Admits pending samples (from *pending on) into free slots, lowest slot
 * first, and prefills them; *active counts the running samples. */
static int admit(Gen *g, int *pending, int *active) {
    int list[g->slots], k = 0;
    for (int s = 0; s < g->slots && *pending < g->n; s++) {
        if (g->sample_in[s] >= 0) continue;
        int i = (*pending)++;
        g->sample_in[s] = i;
        g->slot_of[i] = s;
        g->kv.len[s] = 0; /* a freed slot starts empty */
        list[k++] = i;
    }
    *active += k;
    return k ? prefill(g, list, k) : 0;
}

static void gen_free(Gen *g) {
    gpt_kv_free(&g->kv);
    free(g->slot_of);
    free(g->sample_in);
    free(g->logits);
    free(g->next);
    free(g->tok);
    free(g->seq);
    free(g->want);
    free(g->out);
}

int gen_run(const Gpt *m, const int *const *prompts, const int *prompt_len, int n,
            const GenConfig *c, Rng *rng, GenResult *out) {
    if (n < 1 || c->max_new < 1) return err_set("generate: need at least one prompt and max_new >= 1");
    if (c->slots < 0) return err_set("generate: slots must be >= 0 (0: every sample at once), got %d", c->slots);
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
    int slots = c->slots > 0 && c->slots < n ? c->slots : n;
    Gen g = {.m = m, .c = c, .prompts = prompts, .prompt_len = prompt_len, .n = n, .slots = slots, .V = V};
    if (gpt_kv_init(&g.kv, m, slots, max_len)) return -1;
    g.slot_of = err_malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) g.slot_of[i] = -1;
    g.sample_in = err_malloc((size_t)slots * sizeof(int));
    for (int s = 0; s < slots; s++) g.sample_in[s] = -1;
    g.logits = err_malloc((size_t)slots * V * sizeof(float));
    g.next = err_calloc((size_t)n, sizeof *g.next);
    g.tok = err_malloc(GEN_PREFILL_ROWS * sizeof(int));
    g.seq = err_malloc(GEN_PREFILL_ROWS * sizeof(int));
    g.want = err_malloc(GEN_PREFILL_ROWS);
    g.out = err_malloc((size_t)GEN_PREFILL_ROWS * V * sizeof(float));
    /* one sampler (scratch) per chunk of sequences: as many chunks as threads */
    int chunks = ops_threads() < slots ? ops_threads() : slots;
    Sampler *samplers = err_malloc((size_t)chunks * sizeof *samplers);
    for (int j = 0; j < chunks; j++) sampler_init(&samplers[j], V);
    /* sample i's stream: the i-th draw, whatever slot it runs in */
    Rng *rngs = err_malloc((size_t)n * sizeof *rngs);
    for (int i = 0; i < n; i++) rng_seed(&rngs[i], rng_u64(rng));
    float *step = err_malloc((size_t)slots * V * sizeof(float));
    int *tok = err_malloc(slots * sizeof(int));
    int *seq = err_malloc(slots * sizeof(int));
    int *todo = err_malloc(slots * sizeof(int));
    int *row_of = err_malloc(slots * sizeof(int)); /* sample of each decode row */
    result_alloc(out, n, room);
    int pending = 0, active = 0, rc = 0;
    while (!rc && (rc = admit(&g, &pending, &active)) == 0 && active > 0) {
        if (c->step_hook) c->step_hook(c->step_ctx);
        int n_todo = 0;
        for (int s = 0; s < slots; s++)
            if (g.sample_in[s] >= 0) todo[n_todo++] = g.sample_in[s];
        int per_chunk = (n_todo + chunks - 1) / chunks;
        SampleStep st = {.c = c, .out = out, .samplers = samplers, .rngs = rngs, .next = g.next,
                         .todo = todo, .n_todo = n_todo, .per_chunk = per_chunk};
        ops_parallel_for((size_t)(n_todo + per_chunk - 1) / per_chunk, 1, sample_range, &st);
        for (int q = 0; q < n_todo && !rc; q++) {
            int i = todo[q];
            if (out->tokens[i][out->len[i]] < 0) { /* fails again here, setting this thread's message */
                sampler_sample(&samplers[0], &c->sampler, g.next[i], &rngs[i], NULL, NULL);
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
            if ((int)why >= 0) { /* its slot takes the next pending sample */
                out->stop[i] = why;
                g.sample_in[g.slot_of[i]] = -1;
                g.slot_of[i] = -1;
                active--;
                continue;
            }
            tok[rows] = t;
            seq[rows] = g.slot_of[i];
            row_of[rows] = i;
            rows++;
        }
        if (rows) { /* every row was sampled above, so the step's output can be overwritten */
            rc = gpt_forward_cached(m, &g.kv, tok, seq, rows, NULL, step, V);
            for (int r = 0; r < rows; r++) g.next[row_of[r]] = step + (size_t)r * V;
        }
    }
    if (rc) gen_result_free(out);
    free(tok);
    free(seq);
    free(todo);
    free(row_of);
    free(step);
    free(rngs);
    for (int j = 0; j < chunks; j++) sampler_free(&samplers[j]);
    free(samplers);
    gen_free(&g);
    return rc;
}
