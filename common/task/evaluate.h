/* evaluate — how good is a policy: sample responses to prompts and report
 * the gold score of the built-in task (correctness, manners, concision), the
 * reward model's normalised score, the KL divergence to a reference model
 * (per response: the sum over its tokens of log pi(y_t) - log ref(y_t), an
 * unbiased estimate under the policy's own samples) and the response length,
 * each as mean +- standard error. Used by `rlhf eval`, the demo's final
 * table and PPO's per-iteration gold score. Also the negative
 * log-likelihood of a text under a language model (`rlhf nll`). */
#ifndef EVALUATE_H
#define EVALUATE_H

#include <stdio.h>

#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/model/tok.h"

typedef struct {
    double sum, sum2;
    long n;
} EvalStat;

double eval_mean(const EvalStat *s);
double eval_se(const EvalStat *s); /* standard error of the mean */
void eval_add(EvalStat *s, double x);

typedef struct {
    EvalStat gold, correct, offensive, rm, kl, length;
    long foreign_prompts; /* prompts the gold judge does not know */
} EvalReport;

typedef struct {
    const Gpt *policy;
    const Tok *tok;
    Gpt *ref;              /* NULL: no KL */
    Gpt *rm;               /* NULL: no RM score */
    double rm_offset, rm_scale;
    GenConfig gen;
    uint64_t seed;
    int batch;             /* prompts generated together */
    FILE *samples;         /* NULL, or one JSON line per response */
} EvalSetup;

/* Evaluates prompts[0..n). 0, or -1 + err_set. */
int eval_run(const EvalSetup *s, char *const *prompts, int n, EvalReport *out);

/* Sum of log p(tokens[t]) for t >= from under a language model, for n
 * sequences (right-padded batch). */
int eval_logprob_sums(Gpt *lm, const int *const *tokens, const int *len, const int *from, int n,
                      double *sums);

/* Reads a reward checkpoint's stored normalisation (offset 0, scale 1 when
 * absent). */
int eval_rm_norm(const char *path, double *offset, double *scale);

/* Negative log-likelihood of the token sequence ids[0..n) under a language
 * model: cut into non-overlapping windows of n_ctx predictions (the
 * remainder last), `batch` windows per forward pass, so every token after
 * the first is predicted once, from at most n_ctx tokens before it within
 * its window. *total = -sum log p in nats, *count = n - 1 (the mean is
 * *total / *count). 0, or -1 + err_set: a scalar-head model, n < 2,
 * batch < 1, or gpt_forward's error (a token outside the vocabulary). */
int eval_nll(Gpt *m, const int *ids, int n, int batch, double *total, long *count);

#endif
