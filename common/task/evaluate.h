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
 * common/model/score, as everywhere else. With several samples per prompt
 * it also reports pass@k (eval_pass_at_k), a sample passing when the judge
 * calls it correct: the built-in task's gold judge, or a verifier
 * (common/task/verifier) for any {"prompt","answer"} data. */
#ifndef EVALUATE_H
#define EVALUATE_H

#include <stdio.h>

#include "common/io/jsonl.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/model/score.h"
#include "common/model/tok.h"
#include "common/task/verifier.h"

typedef struct {
    double sum, sum2;
    long n;
} EvalStat;

double eval_mean(const EvalStat *s);
double eval_se(const EvalStat *s); /* standard error of the mean */
void eval_add(EvalStat *s, double x);

/* pass@k, the unbiased estimator of Chen et al. 2021 ("Evaluating Large
 * Language Models Trained on Code", eq. 1): from n samples of a prompt of
 * which c pass, the probability that at least one of k samples drawn
 * without replacement passes, 1 - C(n-c, k) / C(n, k), computed in their
 * numerically stable product form 1 - prod_{i=n-c+1..n} (1 - k/i) (1 when
 * n - c < k). NAN unless 0 <= c <= n and 1 <= k <= n. */
double eval_pass_at_k(int n, int c, int k);

#define EVAL_MAX_PASS_K 8 /* values of k reported at once */

typedef struct {
    EvalStat gold, correct, offensive, rm, kl, length;
    EvalStat verifier;               /* the verifier's score, per sample */
    EvalStat pass[EVAL_MAX_PASS_K];  /* pass@pass_k[i], one value per prompt */
    long foreign_prompts; /* samples of prompts the gold judge does not know */
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
    int samples_per_prompt; /* responses sampled for each prompt (0 counts as 1) */
    const int *pass_k;     /* report pass@pass_k[0..n_pass_k), each in [1, samples_per_prompt] */
    int n_pass_k;          /* at most EVAL_MAX_PASS_K */
    Verifier *verifier;    /* NULL: the gold judge decides what passes */
    char *const *answers;  /* the prompts' "answer" (JsonlPrompts.answer) for the verifier; may be NULL */
} EvalSetup;

/* Evaluates prompts[0..n), each sampled samples_per_prompt times in a row
 * (sample j of prompt p is row p*S + j of the generation, batch rows at a
 * time: with S = 1 exactly the rows of one sample per prompt). A sample
 * passes when the verifier, if any, calls it correct (its "correct"
 * component; a verifier without one, format or cmd:, passes a score > 0),
 * else when the gold judge does (a prompt it does not know has no pass@k).
 * 0, or -1 + err_set; a prompt that cannot be tokenized, is empty or does
 * not fit the context is named as "SOURCE:LINE: ..." (the numbering of
 * every prompt message: file:line), and so is a verifier's error. */
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
