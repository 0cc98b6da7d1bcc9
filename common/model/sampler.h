/* sampler — picks the next token from a row of logits: greedy, temperature,
 * top-k and top-p (nucleus), seeded through rng.h. Besides the token it
 * returns the token's log-prob under the distribution actually sampled from
 * (after temperature/top-k/top-p) and under the unmodified model (plain
 * softmax of the logits), which PPO needs as the behaviour log-prob. */
#ifndef SAMPLER_H
#define SAMPLER_H

#include "common/rng.h"

typedef struct {
    int greedy;        /* 1: argmax, ignore the rest */
    float temperature; /* > 0; 1 = unmodified */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off; keep the smallest set with mass >= top_p */
} SamplerConfig;

/* Default: temperature 1, no top-k, no top-p (plain ancestral sampling). */
SamplerConfig sampler_default(void);
/* 0 if valid, else -1 with err_set naming the bad field. */
int sampler_validate(const SamplerConfig *c);

/* A token that survived top-k / top-p filtering, kept with its logit so
 * candidates order by (logit descending, id ascending): deterministic ties. */
typedef struct {
    float logit;
    int id;
} SamplerCand;

typedef struct {
    int vocab;
    float *probs;      /* scratch, vocab floats: unnormalised probabilities */
    SamplerCand *cand; /* scratch, vocab candidates */
} Sampler;

/* Allocates the scratch (dies if memory runs out, like err_malloc). */
void sampler_init(Sampler *s, int vocab);
void sampler_free(Sampler *s);

/* Sample one token from logits[0..vocab). logp_sample / logp_model may be
 * NULL. Greedy counts as a point mass: logp_sample = 0, and the rng is not
 * touched; every other mode draws exactly one rng_uniform. Ties go to the
 * lowest token id. Returns -1 with err_set if the config is invalid or the
 * largest logit is not finite. */
int sampler_sample(Sampler *s, const SamplerConfig *c, const float *logits,
                   Rng *rng, float *logp_sample, float *logp_model);

#endif
