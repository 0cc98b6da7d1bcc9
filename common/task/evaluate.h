/* evaluate — how good is a policy: sample responses to prompts and report
 * the gold score of the built-in task (correctness, manners, concision), the
 * reward model's normalised score, the KL divergence to a reference model
 * (per response: the sum over its tokens of log pi(y_t) - log ref(y_t), an
 * unbiased estimate under the policy's own samples) and the response length,
 * each as mean +- standard error. Used by `rlhf eval` and the demo's final
 * table; PPO's per-iteration gold score calls the same judge
 * (common/task/arith's arith_gold) directly. Also scores JSONL records with
 * a reward model for `rlhf score`, and the negative log-likelihood of a text
 * under a language model (`rlhf nll`). Log-probs and RM scores come from
 * common/model/score, as everywhere else. */
#ifndef EVALUATE_H
#define EVALUATE_H

#include <stdio.h>

#include "common/io/jsonl.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/model/score.h"
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
    const char *source;    /* where the prompts came from, for messages ("eval_prompts.jsonl") */
    const int *lines;      /* line of each prompt in source (JsonlPrompts.line); NULL: 1-based position */
} EvalSetup;

/* Evaluates prompts[0..n). 0, or -1 + err_set; a prompt that cannot be
 * tokenized, is empty or does not fit the context is named as
 * "SOURCE:LINE: ..." (the numbering of every prompt message: file:line). */
int eval_run(const EvalSetup *s, char *const *prompts, int n, EvalReport *out);

/* ---- scoring JSONL records with a reward model (`rlhf score`) ---- */

#define EVAL_MAX_RESPONSES 64

typedef struct {
    Gpt *rm;
    const Tok *tok;
    ScoreRm conv;  /* end token and normalisation (offset 0, scale 1: raw) */
} EvalScorer;

typedef struct {
    int records;
    int pairs, right; /* comparisons within records, and how many the raw scores order as given */
} EvalTally;

/* Scores one record: {"prompt","completion"} (one score), {"prompt",
 * "chosen","rejected"} (two) or {"prompt","ranking":[best..worst]} (at most
 * EVAL_MAX_RESPONSES): *k scores into scores[0..*k), each response scored
 * after the prompt with score_reward's convention; tally counts the record
 * and, for k >= 2, its pairwise comparisons. 0, or -1 + err_set naming
 * file:line. */
int eval_score_record(const EvalScorer *s, Jsonl *j, json_t *rec, double *scores, int *k, EvalTally *tally);

/* Negative log-likelihood of the token sequence ids[0..n) under a language
 * model: cut into non-overlapping windows of n_ctx predictions (the
 * remainder last), `batch` windows per forward pass, so every token after
 * the first is predicted once, from at most n_ctx tokens before it within
 * its window. *total = -sum log p in nats, *count = n - 1 (the mean is
 * *total / *count). 0, or -1 + err_set: a scalar-head model, n < 2,
 * batch < 1, or gpt_forward's error (a token outside the vocabulary). */
int eval_nll(Gpt *m, const int *ids, int n, int batch, double *total, long *count);

#endif
