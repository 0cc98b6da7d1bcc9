/* generate — batched text generation with the KV cache: all prompts are
 * prefilled together, then every unfinished sequence gets one new token per
 * step from the sampler, stopping on the end token or at max_new (or when
 * prompt + response fill the context: their total never exceeds n_ctx). Records each token's log-prob under the sampling
 * distribution and under the unmodified model (the behaviour log-probs PPO
 * needs). Used by `rlhf generate`, evaluation and the actor role.
 * Shared prefill: a prompt repeated in consecutive sequences (the G samples
 * of a group, eval's samples per prompt) runs through the model once and
 * the others fork its cache (gpt_kv_copy).
 * Continuous batching: with slots = S < n, S sequences decode at once (the
 * KV cache holds S); when one ends, its slot takes the next sequence in
 * order, prefilled in that step, so the batch never waits for its longest
 * member and the cache is sized by S, not n.
 * Results: sequence i samples from its own stream and the cached forward is
 * batch-invariant (gpt.h), so its tokens and log-probs are the same bits
 * whatever the slot count, its slot, its neighbours and whether its prefill
 * was shared (tests/unit/test_generate.c). */
#ifndef GENERATE_H
#define GENERATE_H

#include "common/model/gpt.h"
#include "common/rng.h"
#include "common/model/sampler.h"

typedef struct {
    int max_new;           /* new tokens at most per sequence */
    int eot;               /* stop token id, or -1 for none */
    SamplerConfig sampler;
    int prefill_each;      /* 1: prefill every sequence, even a repeated prompt (tests compare with it) */
    int slots;             /* sequences decoded at once, 0: all; a finished one's slot takes the next */
    /* Called once before every decoding step (NULL: none); it must not touch
     * the model or the results (the actor progresses a snapshot broadcast
     * into its staging buffer here). */
    void (*step_hook)(void *ctx);
    void *step_ctx;
} GenConfig;

typedef enum { GEN_STOP_EOT = 0, GEN_STOP_LENGTH = 1, GEN_STOP_CONTEXT = 2 } GenStop;

typedef struct {
    int n;               /* sequences */
    int *len;            /* new tokens per sequence (the end token included) */
    int **tokens;        /* new tokens */
    float **logp_sample; /* log-prob under the sampling distribution */
    float **logp_model;  /* log-prob under the plain model softmax */
    GenStop *stop;
} GenResult;

/* prompts[i] has prompt_len[i] >= 1 tokens. Sequence i samples from its own
 * random stream, seeded by the i-th draw of rng (so the sequences can be
 * sampled in parallel, on the kernel threads, with the same results on any
 * thread count). Returns 0, or -1 + err_set. */
int gen_run(const Gpt *m, const int *const *prompts, const int *prompt_len, int n,
            const GenConfig *c, Rng *rng, GenResult *out);
void gen_result_free(GenResult *r);

#endif
