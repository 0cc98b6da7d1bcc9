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

double eval_pass_at_k(int n, int c, int k) {
    if (c < 0 || c > n || k < 1 || k > n) return NAN;
    if (n - c < k) return 1.0; /* every k-subset holds a passing sample */
    double fail = 1.0;
    for (int i = n - c + 1; i <= n; i++) fail *= 1.0 - (double)k / i;
    return 1.0 - fail;
}

/* One sample's line in the samples file (NaN scores and negative ints are
 * left out). */
typedef struct {
    const char *prompt, *resp;
    size_t resp_len;
    double gold, rm, kl, verifier;
    int length;
    int sample; /* index within its prompt's samples; -1 with one per prompt */
    int pass;   /* 1 or 0 when pass@k is reported, else -1 */
} SampleLine;

/* JSON strings must be UTF-8 (jansson returns NULL otherwise): the
 * response, decoded from any tokens, and the prompt are cleaned (invalid
 * bytes become U+FFFD). */
static void write_sample(FILE *f, const SampleLine *l) {
    char *clean_prompt = tok_utf8_clean(l->prompt, strlen(l->prompt)), *clean = tok_utf8_clean(l->resp, l->resp_len);
    json_t *o = json_pack("{s:s, s:s, s:i}", "prompt", clean_prompt, "response", clean, "length", l->length);
    free(clean);
    free(clean_prompt);
    if (!o) return; /* both strings are clean: cannot happen */
    if (l->sample >= 0) json_object_set_new(o, "sample", json_integer(l->sample));
    if (isfinite(l->gold)) json_object_set_new(o, "gold", json_real(l->gold));
    if (isfinite(l->rm)) json_object_set_new(o, "rm", json_real(l->rm));
    if (isfinite(l->kl)) json_object_set_new(o, "kl", json_real(l->kl));
    if (isfinite(l->verifier)) json_object_set_new(o, "verifier", json_real(l->verifier));
    if (l->pass >= 0) json_object_set_new(o, "pass", json_boolean(l->pass));
    char *line = json_dumps(o, JSON_COMPACT);
    fprintf(f, "%s\n", line);
    free(line);
    json_decref(o);
}

/* Rows [first, first + n) of the generation: row r is sample r % S of
 * prompt r / S. */
typedef struct {
    long first;
    int n;
    int *const *ids;
    const int *plen;
} EvalRows;

/* Per prompt: samples judged and samples that passed. */
typedef struct {
    int *judged, *passed;
} PassCounts;

static int samples_per_prompt(const EvalSetup *s) { return s->samples_per_prompt > 1 ? s->samples_per_prompt : 1; }

/* The verifier's results for the decoded responses of a batch. */
static int verify_batch(const EvalSetup *s, char *const *prompts, const EvalRows *b, char **text,
                        VerifierResult *res) {
    int S = samples_per_prompt(s);
    VerifierSample vs[b->n];
    for (int i = 0; i < b->n; i++) {
        long p = (b->first + i) / S;
        vs[i] = (VerifierSample){.prompt = prompts[p], .response = text[i], .answer = s->answers ? s->answers[p] : NULL};
    }
    if (!verifier_score(s->verifier, b->n, vs, res)) return 0;
    long p = b->first / S, q = (b->first + b->n - 1) / S; /* the batch's prompts */
    const char *src = s->source ? s->source : "prompts";
    int lp = s->lines ? s->lines[p] : (int)p + 1, lq = s->lines ? s->lines[q] : (int)q + 1;
    if (p == q) return err_prefix("%s:%d: ", src, lp);
    return err_prefix("%s:%d-%d: ", src, lp, lq);
}

/* Whether a verifier's result passes: its "correct" component, or a score
 * above 0 for verifiers without one. */
static int verifier_passes(const Verifier *v, const VerifierResult *r) {
    if (verifier_components(v) & (1u << VERIFIER_CORRECT)) return r->comp[VERIFIER_CORRECT] > 0.5;
    return r->score > 0;
}

/* Scores one generated batch into the report and the pass counts. */
static int score_batch(const EvalSetup *s, char *const *prompts, const EvalRows *b, const GenResult *g,
                       EvalReport *out, PassCounts *pc) {
    int n = b->n, S = samples_per_prompt(s), eot = tok_eot(s->tok), rc = 0;
    ScoreRow rows[n];
    double ref_sum[n], score[n];
    char *text[n];
    size_t tl[n];
    int body[n];
    VerifierResult res[n];
    for (int i = 0; i < n; i++)
        rows[i] = (ScoreRow){.prompt = b->ids[i], .prompt_len = b->plen[i], .resp = g->tokens[i], .resp_len = g->len[i]};
    if (s->ref) {
        ScoreBatch sb = {0};
        rc = score_response_logp(s->ref, &sb, rows, n, eot, NULL, ref_sum);
        score_batch_free(&sb);
    }
    ScoreRm conv = {.eot = eot, .offset = s->rm_offset, .scale = s->rm_scale, .clip = 0};
    if (s->rm && !rc) rc = score_reward(s->rm, &conv, rows, n, NULL, score);
    int decoded = 0;
    while (!rc && decoded < n) {
        int i = decoded;
        body[i] = g->len[i] - (g->stop[i] == GEN_STOP_EOT);
        text[i] = tok_decode(s->tok, g->tokens[i], body[i], &tl[i]);
        if (text[i]) decoded++;
        else rc = -1;
    }
    if (!rc && s->verifier) rc = verify_batch(s, prompts, b, text, res);
    for (int i = 0; i < n && !rc; i++) {
        long p = (b->first + i) / S;
        ArithJudgement j;
        double gold = arith_gold(prompts[p], text[i], &j), kl = NAN, rm = NAN;
        int pass = -1;
        if (isnan(gold)) out->foreign_prompts++;
        else {
            eval_add(&out->gold, gold);
            eval_add(&out->correct, j.correct);
            eval_add(&out->offensive, j.offensive > 0);
            pass = j.correct > 0.5;
        }
        if (s->verifier) {
            eval_add(&out->verifier, res[i].score);
            pass = verifier_passes(s->verifier, &res[i]);
        }
        if (pass >= 0) {
            pc->judged[p]++;
            pc->passed[p] += pass;
        }
        if (s->ref) {
            double lp = 0;
            for (int k = 0; k < g->len[i]; k++) lp += g->logp_model[i][k];
            eval_add(&out->kl, kl = lp - ref_sum[i]);
        }
        if (s->rm) eval_add(&out->rm, rm = score[i]);
        eval_add(&out->length, body[i]);
        SampleLine line = {.prompt = prompts[p], .resp = text[i], .resp_len = tl[i], .gold = gold, .rm = rm, .kl = kl,
                           .verifier = s->verifier ? res[i].score : NAN, .length = body[i],
                           .sample = S > 1 ? (int)((b->first + i) % S) : -1,
                           .pass = s->n_pass_k > 0 ? (pass > 0) : -1};
        if (s->samples) write_sample(s->samples, &line);
    }
    for (int i = 0; i < decoded; i++) free(text[i]);
    if (!rc) err_clear(); /* the judge's note on a foreign prompt is not an error here */
    return rc;
}

/* Tokenizes prompt k, which must be non-empty and leave room in the context;
 * errors name it as SOURCE:LINE. NULL + err_set on failure. */
static int *encode_prompt(const EvalSetup *s, const char *prompt, long k, int *len) {
    int *ids = tok_encode(s->tok, prompt, strlen(prompt), len);
    if (ids && *len < 1) err_set("prompt is empty");
    else if (ids && *len >= s->policy->cfg.n_ctx)
        err_set("prompt has %d tokens; the model's context is %d", *len, s->policy->cfg.n_ctx);
    else if (ids) return ids;
    free(ids);
    err_prefix("%s:%d: ", s->source ? s->source : "prompts", s->lines ? s->lines[k] : (int)k + 1);
    return NULL;
}

/* pass@k of every prompt whose samples were all judged. */
static void add_pass_at_k(const EvalSetup *s, const PassCounts *pc, int n, EvalReport *out) {
    int S = samples_per_prompt(s);
    for (int p = 0; p < n; p++)
        for (int i = 0; i < s->n_pass_k && pc->judged[p] == S; i++)
            eval_add(&out->pass[i], eval_pass_at_k(S, pc->passed[p], s->pass_k[i]));
}

static int check_pass_k(const EvalSetup *s) {
    if (s->n_pass_k < 0 || s->n_pass_k > EVAL_MAX_PASS_K)
        return err_set("pass@k: %d values of k; at most %d", s->n_pass_k, EVAL_MAX_PASS_K);
    for (int i = 0; i < s->n_pass_k; i++)
        if (s->pass_k[i] < 1 || s->pass_k[i] > samples_per_prompt(s))
            return err_set("pass@%d needs at least %d samples per prompt (there are %d)", s->pass_k[i],
                           s->pass_k[i], samples_per_prompt(s));
    return 0;
}

int eval_run(const EvalSetup *s, char *const *prompts, int n, EvalReport *out) {
    memset(out, 0, sizeof *out);
    if (check_pass_k(s)) return -1;
    Rng rng;
    rng_seed(&rng, s->seed);
    int S = samples_per_prompt(s), rc = 0;
    long total = (long)n * S;
    PassCounts pc = {.judged = err_calloc(n ? n : 1, sizeof(int)), .passed = err_calloc(n ? n : 1, sizeof(int))};
    for (long start = 0; start < total && !rc; start += s->batch) {
        int b = total - start < s->batch ? (int)(total - start) : s->batch, plen[b], *ids[b];
        for (int i = 0; i < b; i++) {
            ids[i] = encode_prompt(s, prompts[(start + i) / S], (start + i) / S, &plen[i]);
            if (ids[i]) continue;
            while (i--) free(ids[i]);
            rc = -1;
            break;
        }
        if (rc) break;
        GenResult g;
        rc = gen_run(s->policy, (const int *const *)ids, plen, b, &s->gen, &rng, &g);
        if (!rc) {
            EvalRows rows = {.first = start, .n = b, .ids = ids, .plen = plen};
            rc = score_batch(s, prompts, &rows, &g, out, &pc);
            gen_result_free(&g);
        }
        for (int i = 0; i < b; i++) free(ids[i]);
    }
    if (!rc) add_pass_at_k(s, &pc, n, out);
    free(pc.judged);
    free(pc.passed);
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
