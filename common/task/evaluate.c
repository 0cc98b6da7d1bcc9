/* evaluate — sampled evaluation of a policy (eval_run), reward-model scores
 * of JSONL records (eval_score_record, `rlhf score`) and the negative
 * log-likelihood of a text (eval_nll, `rlhf nll`); see evaluate.h. */
#include "common/task/evaluate.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/task/arith.h"
#include "common/err.h"
#include "common/model/score.h"

void eval_add(EvalStat *s, double x) {
    s->sum += x;
    s->sum2 += x * x;
    s->n++;
}

double eval_mean(const EvalStat *s) { return s->n ? s->sum / s->n : NAN; }

double eval_se(const EvalStat *s) {
    if (s->n < 2) return NAN;
    double m = s->sum / s->n, var = (s->sum2 - s->n * m * m) / (s->n - 1);
    return sqrt(var > 0 ? var / s->n : 0);
}

/* One sample's line in the samples file. JSON strings must be UTF-8 (jansson
 * returns NULL otherwise): the response, decoded from any tokens, and the
 * prompt are cleaned (invalid bytes become U+FFFD). */
static void write_sample(FILE *f, const char *prompt, const char *resp, size_t resp_len, double gold, double rm,
                         double kl, int len) {
    char *clean_prompt = tok_utf8_clean(prompt, strlen(prompt)), *clean = tok_utf8_clean(resp, resp_len);
    json_t *o = json_pack("{s:s, s:s, s:i}", "prompt", clean_prompt, "response", clean, "length", len);
    free(clean);
    free(clean_prompt);
    if (!o) return; /* both strings are clean: cannot happen */
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
    int eot = tok_eot(s->tok), rc = 0;
    ScoreRow rows[n];
    double ref_sum[n], score[n];
    for (int i = 0; i < n; i++)
        rows[i] = (ScoreRow){.prompt = ids[i], .prompt_len = plen[i], .resp = g->tokens[i], .resp_len = g->len[i]};
    if (s->ref) {
        ScoreBatch sb = {0};
        rc = score_response_logp(s->ref, &sb, rows, n, eot, NULL, ref_sum);
        score_batch_free(&sb);
    }
    ScoreRm conv = {.eot = eot, .offset = s->rm_offset, .scale = s->rm_scale, .clip = 0};
    if (s->rm && !rc) rc = score_reward(s->rm, &conv, rows, n, NULL, score);
    for (int i = 0; i < n && !rc; i++) {
        int body = g->len[i] - (g->stop[i] == GEN_STOP_EOT);
        size_t tl;
        char *text = tok_decode(s->tok, g->tokens[i], body, &tl);
        if (!text) { rc = -1; break; }
        ArithJudgement j;
        double gold = arith_gold(prompts[i], text, &j), kl = NAN, rm = NAN;
        if (isnan(gold)) out->foreign_prompts++;
        else {
            eval_add(&out->gold, gold);
            eval_add(&out->correct, j.correct);
            eval_add(&out->offensive, j.offensive > 0);
        }
        if (s->ref) {
            double lp = 0;
            for (int k = 0; k < g->len[i]; k++) lp += g->logp_model[i][k];
            eval_add(&out->kl, kl = lp - ref_sum[i]);
        }
        if (s->rm) eval_add(&out->rm, rm = score[i]);
        eval_add(&out->length, body);
        if (s->samples) write_sample(s->samples, prompts[i], text, tl, gold, rm, kl, body);
        free(text);
    }
    if (!rc) err_clear(); /* the judge's note on a foreign prompt is not an error here */
    return rc;
}

/* Tokenizes prompt k, which must be non-empty and leave room in the context;
 * errors name it as SOURCE:LINE. NULL + err_set on failure. */
static int *encode_prompt(const EvalSetup *s, const char *prompt, int k, int *len) {
    int *ids = tok_encode(s->tok, prompt, strlen(prompt), len);
    if (ids && *len < 1) err_set("prompt is empty");
    else if (ids && *len >= s->policy->cfg.n_ctx)
        err_set("prompt has %d tokens; the model's context is %d", *len, s->policy->cfg.n_ctx);
    else if (ids) return ids;
    free(ids);
    err_prefix("%s:%d: ", s->source ? s->source : "prompts", s->lines ? s->lines[k] : k + 1);
    return NULL;
}

int eval_run(const EvalSetup *s, char *const *prompts, int n, EvalReport *out) {
    memset(out, 0, sizeof *out);
    Rng rng;
    rng_seed(&rng, s->seed);
    int rc = 0;
    for (int start = 0; start < n && !rc; start += s->batch) {
        int b = n - start < s->batch ? n - start : s->batch, plen[b], *ids[b];
        for (int i = 0; i < b; i++) {
            ids[i] = encode_prompt(s, prompts[start + i], start + i, &plen[i]);
            if (!ids[i]) {
                while (i--) free(ids[i]);
                return -1;
            }
        }
        GenResult g;
        rc = gen_run(s->policy, (const int *const *)ids, plen, b, &s->gen, &rng, &g);
        if (!rc) {
            rc = score_batch(s, prompts + start, ids, plen, b, &g, out);
            gen_result_free(&g);
        }
        for (int i = 0; i < b; i++) free(ids[i]);
    }
    return rc;
}

/* The responses of a record: completion, chosen + rejected, or a ranking. */
static int record_responses(Jsonl *j, json_t *rec, const char **resp, const char ***rank, int *k) {
    *rank = NULL;
    if (json_object_get(rec, "ranking")) {
        if (jsonl_get_str_array(j, rec, "ranking", rank, k)) return -1;
        if (*k > EVAL_MAX_RESPONSES) {
            free(*rank); /* on every error *rank is NULL: the caller frees it only on success */
            *rank = NULL;
            return err_set("%s:%d: ranking of %d responses; at most %d", jsonl_path(j), jsonl_line(j), *k,
                           EVAL_MAX_RESPONSES);
        }
        for (int i = 0; i < *k; i++) resp[i] = (*rank)[i];
        return 0;
    }
    *k = json_object_get(rec, "chosen") ? 2 : 1;
    if (*k == 1) return jsonl_get_str(j, rec, "completion", &resp[0]);
    return jsonl_get_str(j, rec, "chosen", &resp[0]) || jsonl_get_str(j, rec, "rejected", &resp[1]) ? -1 : 0;
}

/* Encodes prompt and responses and scores them; ids are freed here. */
static int score_texts(const EvalScorer *s, const char *prompt, const char **resp, int k, float *raw,
                       double *scores) {
    ScoreRow rows[EVAL_MAX_RESPONSES];
    int np, rc = 0;
    int *pt = tok_encode(s->tok, prompt, strlen(prompt), &np);
    if (!pt) return -1;
    for (int i = 0; i < k; i++) {
        rows[i] = (ScoreRow){.prompt = pt, .prompt_len = np};
        int *rt = rc ? NULL : tok_encode(s->tok, resp[i], strlen(resp[i]), &rows[i].resp_len);
        if (!rt) rc = -1;
        rows[i].resp = rt;
    }
    if (!rc) rc = score_reward(s->rm, &s->conv, rows, k, raw, scores);
    for (int i = 0; i < k; i++) free((int *)rows[i].resp);
    free(pt);
    return rc;
}

int eval_score_record(const EvalScorer *s, Jsonl *j, json_t *rec, double *scores, int *k, EvalTally *tally) {
    const char *prompt, *resp[EVAL_MAX_RESPONSES], **rank;
    float raw[EVAL_MAX_RESPONSES];
    if (jsonl_get_str(j, rec, "prompt", &prompt) || record_responses(j, rec, resp, &rank, k)) return -1;
    int rc = score_texts(s, prompt, resp, *k, raw, scores);
    free(rank);
    if (rc) return err_prefix("%s:%d: ", jsonl_path(j), jsonl_line(j));
    for (int a = 0; a < *k && *k > 1; a++)
        for (int b = a + 1; b < *k; b++) {
            tally->pairs++;
            tally->right += raw[a] > raw[b];
        }
    tally->records++;
    return 0;
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
