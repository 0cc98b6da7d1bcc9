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

typedef struct {
    int vocab;
    float *probs;  /* scratch, vocab floats */
    int *index;    /* scratch, vocab ints */
} Sampler;

void sampler_init(Sampler *s, int vocab);
void sampler_free(Sampler *s);

/* Sample one token from logits[0..vocab). logp_sample / logp_model may be
 * NULL. Greedy counts as a point mass: logp_sample = 0. */
int sampler_sample(Sampler *s, const SamplerConfig *c, const float *logits,
                   Rng *rng, float *logp_sample, float *logp_model);

#endif
