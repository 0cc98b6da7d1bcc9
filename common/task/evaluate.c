/* evaluate — sampled evaluation of a policy; see evaluate.h. */
#include "common/task/evaluate.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/task/arith.h"
#include "common/io/ckpt.h"
#include "common/err.h"

void eval_add(EvalStat *s, double x) {
    s->sum += x, s->sum2 += x * x, s->n++;
}

double eval_mean(const EvalStat *s) { return s->n ? s->sum / s->n : NAN; }

double eval_se(const EvalStat *s) {
    if (s->n < 2) return NAN;
    double m = s->sum / s->n, var = (s->sum2 - s->n * m * m) / (s->n - 1);
    return sqrt(var > 0 ? var / s->n : 0);
}

int eval_rm_norm(const char *path, double *offset, double *scale) {
    Ckpt *k = ckpt_open(path);
    *offset = 0, *scale = 1;
    if (!k) return -1;
    int rc = 0;
    if (ckpt_has_attr(k, "/reward", "score_offset"))
        rc = ckpt_get_attr_f64(k, "/reward", "score_offset", offset) ||
             ckpt_get_attr_f64(k, "/reward", "score_scale", scale);
    ckpt_close(k);
    if (!rc && !(*scale > 0)) rc = err_set("%s: score_scale must be positive", path);
    return rc;
}

int eval_logprob_sums(Gpt *lm, const int *const *tokens, const int *len, const int *from, int n, double *sums) {
    int T = 1;
    for (int i = 0; i < n; i++) T = len[i] - 1 > T ? len[i] - 1 : T;
    int *in = err_calloc((size_t)n * T, sizeof(int)), *tg = err_malloc((size_t)n * T * sizeof(int));
    float *logp = err_malloc((size_t)n * T * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            int ok = t < len[i] - 1;
            in[i * T + t] = ok ? tokens[i][t] : 0;
            tg[i * T + t] = ok && t + 1 >= from[i] ? tokens[i][t + 1] : -1;
        }
    int rc = gpt_forward(lm, in, n, T);
    if (!rc) {
        gpt_token_logprobs(lm, tg, logp, NULL);
        for (int i = 0; i < n; i++) {
            sums[i] = 0;
            for (int t = 0; t < T; t++) sums[i] += logp[i * T + t];
        }
    }
    free(in), free(tg), free(logp);
    return rc;
}

/* One sample's line in the samples file. */
static void write_sample(FILE *f, const char *prompt, const char *resp, size_t resp_len, double gold, double rm,
                         double kl, int len) {
    char *clean = tok_utf8_clean(resp, resp_len);
    json_t *o = json_pack("{s:s, s:s, s:i}", "prompt", prompt, "response", clean, "length", len);
    free(clean);
    if (!o) return; /* the prompt came from valid JSON and the response is clean: cannot happen */
    if (isfinite(gold)) json_object_set_new(o, "gold", json_real(gold));
    if (isfinite(rm)) json_object_set_new(o, "rm", json_real(rm));
    if (isfinite(kl)) json_object_set_new(o, "kl", json_real(kl));
    char *line = json_dumps(o, JSON_COMPACT);
    fprintf(f, "%s\n", line);
    free(line);
    json_decref(o);
}

/* Scores one generated batch into the report. */
static int score_batch(const EvalSetup *s, char *const *prompts, int **ids, const int *plen, int n,
                       const GenResult *g, EvalReport *out) {
    int eot = tok_eot(s->tok), n_ctx = s->policy->cfg.n_ctx, rc = 0;
    int *seq[n], len[n];
    double ref_sum[n];
    float score[n];
    for (int i = 0; i < n; i++) {
        seq[i] = err_malloc((size_t)(plen[i] + g->len[i] + 1) * sizeof(int));
        memcpy(seq[i], ids[i], plen[i] * sizeof(int));
        memcpy(seq[i] + plen[i], g->tokens[i], g->len[i] * sizeof(int));
        len[i] = plen[i] + g->len[i];
    }
    if (s->ref) rc = eval_logprob_sums(s->ref, (const int *const *)seq, len, plen, n, ref_sum);
    if (s->rm && !rc) {
        int rlen[n];
        for (int i = 0; i < n; i++) { /* responses that ran out of room get the end token, as in training */
            rlen[i] = len[i];
            if (seq[i][len[i] - 1] != eot && len[i] < n_ctx) seq[i][rlen[i]++] = eot;
        }
        rc = gpt_score_last(s->rm, (const int *const *)seq, rlen, n, score);
    }
    for (int i = 0; i < n && !rc; i++) {
        int body = g->len[i] - (g->stop[i] == GEN_STOP_EOT);
        size_t tl;
        char *text = tok_decode(s->tok, g->tokens[i], body, &tl);
        if (!text) { rc = -1; break; }
        ArithJudgement j;
        double gold = arith_gold(prompts[i], text, &j), kl = NAN, rm = NAN;
        if (isnan(gold)) out->foreign_prompts++;
        else eval_add(&out->gold, gold), eval_add(&out->correct, j.correct), eval_add(&out->offensive, j.offensive > 0);
        if (s->ref) {
            double lp = 0;
            for (int k = 0; k < g->len[i]; k++) lp += g->logp_model[i][k];
            eval_add(&out->kl, kl = lp - ref_sum[i]);
        }
        if (s->rm) eval_add(&out->rm, rm = (score[i] - s->rm_offset) / s->rm_scale);
        eval_add(&out->length, body);
        if (s->samples) write_sample(s->samples, prompts[i], text, tl, gold, rm, kl, body);
        free(text);
    }
    for (int i = 0; i < n; i++) free(seq[i]);
    if (!rc) err_clear(); /* the judge's note on a foreign prompt is not an error here */
    return rc;
}

int eval_run(const EvalSetup *s, char *const *prompts, int n, EvalReport *out) {
    memset(out, 0, sizeof *out);
    Rng rng;
    rng_seed(&rng, s->seed);
    int rc = 0;
    for (int start = 0; start < n && !rc; start += s->batch) {
        int b = n - start < s->batch ? n - start : s->batch, plen[b], *ids[b];
        for (int i = 0; i < b; i++) {
            ids[i] = tok_encode(s->tok, prompts[start + i], strlen(prompts[start + i]), &plen[i]);
            if (!ids[i]) {
                while (i--) free(ids[i]);
                return -1;
            }
        }
        GenResult g;
        rc = gen_run(s->policy, (const int *const *)ids, plen, b, &s->gen, &rng, &g);
        if (!rc) rc = score_batch(s, prompts + start, ids, plen, b, &g, out), gen_result_free(&g);
        for (int i = 0; i < b; i++) free(ids[i]);
    }
    return rc;
}

/* ---- negative log-likelihood of a text ---------------------------------------- */

/* -sum log p of B consecutive windows of T predictions starting at ids[0]. */
static int nll_block(Gpt *m, const int *ids, int B, int T, int *in, int *tg, float *logp, double *total) {
    for (int b = 0; b < B; b++) {
        memcpy(in + (size_t)b * T, ids + (size_t)b * T, (size_t)T * sizeof(int));
        memcpy(tg + (size_t)b * T, ids + (size_t)b * T + 1, (size_t)T * sizeof(int));
    }
    if (gpt_forward(m, in, B, T)) return -1;
    gpt_token_logprobs(m, tg, logp, NULL);
    for (int i = 0; i < B * T; i++) *total -= logp[i];
    return 0;
}

int eval_nll(Gpt *m, const int *ids, int n, int batch, double *total, long *count) {
    *total = 0;
    *count = 0;
    if (m->cfg.head != GPT_HEAD_LM) return err_set("nll needs a language model (this one has a scalar head)");
    if (n < 2) return err_set("needs at least 2 tokens, has %d", n);
    if (batch < 1) return err_set("batch must be >= 1, got %d", batch);
    int W = m->cfg.n_ctx;
    int full = (n - 1) / W;
    int rest = (n - 1) % W;
    size_t cells = (size_t)batch * W;
    int *in = err_malloc(cells * sizeof(int));
    int *tg = err_malloc(cells * sizeof(int));
    float *logp = err_malloc(cells * sizeof(float));
    int rc = 0;
    for (int w = 0; w < full && !rc; w += batch) {
        int B = full - w < batch ? full - w : batch;
        rc = nll_block(m, ids + (size_t)w * W, B, W, in, tg, logp, total);
    }
    if (rest && !rc) rc = nll_block(m, ids + (size_t)full * W, 1, rest, in, tg, logp, total);
    free(in);
    free(tg);
    free(logp);
    if (!rc) *count = n - 1;
    return rc;
}
