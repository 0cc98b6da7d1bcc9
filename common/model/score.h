/* score — the one home of what every stage does with prompt + response
 * rows: packing them into a padded token matrix for a teacher-forced
 * forward pass, reading the response tokens' log-probs out of it, and the
 * reward-model convention (which token the scalar head is read from, the
 * stored normalisation, clipping). SFT/pretraining, DPO, PPO's learner, the
 * rewarder, `rlhf eval` and `rlhf score` all go through these functions, so
 * a reward or a log-prob means the same thing in every one of them.
 *
 * Packing. Row i is prompt + response (len = prompt_len + resp_len tokens).
 * The packed input is its first len - 1 tokens (each position predicts the
 * next token), padded with `pad` to T = max(len - 1, 1) over the rows;
 * targets are the response tokens at the positions that predict them
 * (position prompt_len - 1 + k predicts response token k) and -1 elsewhere.
 * A row with prompt_len 0 (plain text) targets every token but the first.
 *
 * Reward-model convention, as the RM is trained (learner/rm.c on
 * learner/dataset.c's sequences prompt + response + <|endoftext|>, cut to
 * the context): the end token is appended unless the response already ends
 * with it, the sequence is cut to the RM's context, and the scalar head is
 * read at the last token. The score is (raw - offset) / scale with the RM's
 * stored normalisation, then clipped to [-clip, clip] if clip > 0. */
#ifndef SCORE_H
#define SCORE_H

#include <stddef.h>

#include "common/model/gpt.h"

typedef struct {
    const int *prompt;
    int prompt_len;
    const int *resp;
    int resp_len;
} ScoreRow;

/* Packs rows[0..n) into tokens and targets (targets may be NULL), each
 * sized by the caller to n * (the longest row's len - 1, at least 1).
 * Returns T. */
int score_pack_rows(const ScoreRow *rows, int n, int pad, int *tokens, int *targets);

/* Position in a packed row of the prediction of response token k, for a
 * row whose prompt has prompt_len >= 1 tokens. */
static inline int score_resp_pos(int prompt_len, int k) { return prompt_len - 1 + k; }

/* Scratch of a packed forward pass, grown on demand; zero-initialise it.
 * After score_response_logp it holds that pass: tokens and targets (n, T),
 * logp (n, T) per position (0 where targets < 0) and, if want_entropy,
 * entropy (n, T), so a trainer can run the backward of the same pass. */
typedef struct {
    int *tokens, *targets;
    float *logp, *entropy;
    size_t cap;       /* positions allocated */
    int n, T;
    int want_entropy;
} ScoreBatch;

void score_batch_free(ScoreBatch *b);

/* Packs rows[0..n) (padded with pad), runs the language model lm over them
 * and reads the response tokens' log-probs: logp[i][0..resp_len) (logp may
 * be NULL, as may any logp[i]) and their sum sums[i] in double (sums may be
 * NULL). Rows need prompt_len >= 1 for per-token output. 0, or -1 + err_set
 * (a row longer than the context, a token out of range). */
int score_response_logp(Gpt *lm, ScoreBatch *b, const ScoreRow *rows, int n, int pad, float *const *logp,
                        double *sums);

typedef struct {
    int eot;          /* end token appended to responses that lack it */
    double offset;    /* stored normalisation: (raw - offset) / scale */
    double scale;     /* > 0; offset 0, scale 1 for raw scores */
    double clip;      /* > 0: scores clipped to [-clip, clip]; 0: off */
} ScoreRm;

/* The normalised, clipped score of a raw head output. */
double score_normalise(const ScoreRm *c, double raw);

/* Scores rows[0..n) with the reward model rm under the convention above:
 * raw head outputs into raw[i] (may be NULL), normalised and clipped scores
 * into score[i] (may be NULL). A prompt that leaves no room in rm's context
 * is an error. 0, or -1 + err_set. */
int score_reward(Gpt *rm, const ScoreRm *c, const ScoreRow *rows, int n, float *raw, double *score);

#endif
