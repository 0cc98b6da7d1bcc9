/* score — packing prompt + response rows, response log-probs and the
 * reward-model convention, defined once; see score.h. */
#include "common/model/score.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Token t of a row's prompt + response. */
static int row_token(const ScoreRow *r, int t) { return t < r->prompt_len ? r->prompt[t] : r->resp[t - r->prompt_len]; }

int score_pack_rows(const ScoreRow *rows, int n, int pad, int *tokens, int *targets) {
    int T = 1;
    for (int i = 0; i < n; i++) {
        int len = rows[i].prompt_len + rows[i].resp_len;
        if (len - 1 > T) T = len - 1;
    }
    for (int i = 0; i < n; i++) {
        const ScoreRow *r = &rows[i];
        int len = r->prompt_len + r->resp_len;
        for (int t = 0; t < T; t++) {
            int in = t < len - 1;
            tokens[(size_t)i * T + t] = in ? row_token(r, t) : pad;
            /* position t predicts token t + 1: a target if that is a response token */
            if (targets) targets[(size_t)i * T + t] = in && t + 1 >= r->prompt_len ? row_token(r, t + 1) : -1;
        }
    }
    return T;
}

void score_batch_free(ScoreBatch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->logp);
    free(b->entropy);
    memset(b, 0, sizeof *b);
}

/* Room for n rows of the longest row's length. */
static void batch_reserve(ScoreBatch *b, const ScoreRow *rows, int n) {
    size_t T = 1;
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)rows[i].prompt_len + rows[i].resp_len;
        if (len > T + 1) T = len - 1;
    }
    size_t need = (size_t)n * T;
    if (need <= b->cap) return;
    b->tokens = err_realloc(b->tokens, need * sizeof(int));
    b->targets = err_realloc(b->targets, need * sizeof(int));
    b->logp = err_realloc(b->logp, need * sizeof(float));
    b->entropy = err_realloc(b->entropy, need * sizeof(float));
    b->cap = need;
}

int score_response_logp(Gpt *lm, ScoreBatch *b, const ScoreRow *rows, int n, int pad, float *const *logp,
                        double *sums) {
    batch_reserve(b, rows, n);
    int T = score_pack_rows(rows, n, pad, b->tokens, b->targets);
    b->n = n;
    b->T = T;
    if (gpt_forward(lm, b->tokens, n, T)) return -1;
    gpt_token_logprobs(lm, b->targets, b->logp, b->want_entropy ? b->entropy : NULL);
    for (int i = 0; i < n; i++) {
        const float *lp = b->logp + (size_t)i * T;
        if (sums) {
            double s = 0;
            for (int t = 0; t < T; t++) s += b->targets[(size_t)i * T + t] >= 0 ? lp[t] : 0.0;
            sums[i] = s;
        }
        if (logp && logp[i])
            for (int k = 0; k < rows[i].resp_len; k++) logp[i][k] = lp[score_resp_pos(rows[i].prompt_len, k)];
    }
    return 0;
}

double score_normalise(const ScoreRm *c, double raw) {
    double s = (raw - c->offset) / c->scale;
    if (c->clip > 0 && s > c->clip) return c->clip;
    if (c->clip > 0 && s < -c->clip) return -c->clip;
    return s;
}

/* prompt + response (+ the end token unless the response ends with it),
 * cut to n_ctx tokens: the sequence as the reward model was trained on it. */
static int *rm_sequence(const ScoreRow *r, int eot, int n_ctx, int *len) {
    int ends = r->resp_len > 0 && r->resp[r->resp_len - 1] == eot;
    int full = r->prompt_len + r->resp_len + !ends;
    int *seq = err_malloc((size_t)full * sizeof(int));
    memcpy(seq, r->prompt, (size_t)r->prompt_len * sizeof(int));
    if (r->resp_len) memcpy(seq + r->prompt_len, r->resp, (size_t)r->resp_len * sizeof(int));
    if (!ends) seq[full - 1] = eot;
    *len = full < n_ctx ? full : n_ctx;
    return seq;
}

int score_reward(Gpt *rm, const ScoreRm *c, const ScoreRow *rows, int n, float *raw, double *score) {
    int n_ctx = rm->cfg.n_ctx;
    for (int i = 0; i < n; i++)
        if (rows[i].prompt_len >= n_ctx)
            return err_set("prompt of %d tokens does not fit the context (%d)", rows[i].prompt_len, n_ctx);
    int **seq = err_malloc((size_t)(n ? n : 1) * sizeof(int *));
    int *len = err_malloc((size_t)(n ? n : 1) * sizeof(int));
    float *out = err_malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int i = 0; i < n; i++) seq[i] = rm_sequence(&rows[i], c->eot, n_ctx, &len[i]);
    int rc = gpt_score_last(rm, (const int *const *)seq, len, n, out);
    for (int i = 0; i < n && !rc; i++) {
        if (raw) raw[i] = out[i];
        if (score) score[i] = score_normalise(c, out[i]);
    }
    for (int i = 0; i < n; i++) free(seq[i]);
    free(seq);
    free(len);
    free(out);
    return rc;
}
