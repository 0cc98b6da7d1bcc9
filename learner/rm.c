/* rm — reward-model training on the shared trainer; see rm.h. */
#include "learner/rm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/io/ckpt.h"
#include "common/err.h"
#include "common/model/generate.h"
#include "common/model/score.h"
#include "learner/losses.h"

typedef struct {
    int *tokens;      /* (rows, T) packed sequences */
    float *dvalues;   /* (rows, T) */
    int cap_rows;
    double score_offset, score_scale;
} RmState;

static const CfgKey rm_keys[] = {
    {.key = "init", .type = CFG_STR, .def = NULL,
     .help = "SFT checkpoint: the trunk to start from and the policy sampled for normalisation"},
    {.key = "norm_samples", .type = CFG_INT, .def = "256",
     .help = "SFT samples scored to set the score offset/scale (0: none)", .range = ">= 0"},
    {.key = "norm_max_new", .type = CFG_INT, .def = "48",
     .help = "longest SFT sample for the normalisation, in tokens", .range = ">= 1"},
    {0}};

/* A scalar-head model whose trunk is the language model's. */
static int scalar_from_lm(Gpt *out, const Gpt *lm, uint64_t seed) {
    GptConfig c = lm->cfg;
    c.head = GPT_HEAD_SCALAR;
    if (gpt_init(out, &c)) return -1;
    for (int i = 0; i < lm->n_tensors; i++) {
        const GptTensor *src = &lm->tensors[i], *dst = gpt_find_tensor(out, src->name);
        memcpy(out->params + dst->offset, lm->params + src->offset, src->size * sizeof(float));
    }
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < c.n_embd; i++) out->p.score_w[i] = 0.02f * rng_normal(&r);
    return 0;
}

static int rm_setup(Trainer *t) {
    LongPolicy p;
    Gpt lm;
    if (data_long_policy(config_str(t->cfg, "long_sequences"), &p)) return -1;
    CkptWant want = {.head = GPT_HEAD_LM, .what = "rm's init (an SFT model)"};
    if (ckpt_load_model_as(config_str(t->cfg, "init"), &lm, &t->tok, &want)) return -1;
    int rc = scalar_from_lm(&t->model, &lm, t->seed);
    gpt_free(&lm);
    if (rc) return -1;
    int n_ctx = t->model.cfg.n_ctx;
    if (data_load_prefs(&t->train, config_str(t->cfg, "train_data"), t->tok, n_ctx, p)) return -1;
    const char *valid = config_str(t->cfg, "valid_data");
    if (*valid) {
        if (data_load_prefs(&t->valid, valid, t->tok, n_ctx, p)) return -1;
        t->has_valid = 1;
    }
    RmState *s = err_calloc(1, sizeof *s);
    s->score_scale = 1.0;
    t->state = s;
    return 0;
}

/* Packs every sequence of the examples as one row each; returns T. */
static int rm_pack(Trainer *t, const Dataset *d, const int *idx, int n, int *rows) {
    RmState *s = t->state;
    int R = 0, T = 1, n_ctx = t->model.cfg.n_ctx;
    for (int i = 0; i < n; i++) {
        const Seq *q;
        int k = data_example_seqs(d, idx[i], &q);
        for (int j = 0; j < k; j++) T = q[j].len > T ? q[j].len : T;
        R += k;
    }
    if (R > s->cap_rows) {
        s->cap_rows = R;
        s->tokens = err_realloc(s->tokens, (size_t)R * n_ctx * sizeof(int));
        s->dvalues = err_realloc(s->dvalues, (size_t)R * n_ctx * sizeof(float));
    }
    int r = 0;
    for (int i = 0; i < n; i++) {
        const Seq *q;
        int k = data_example_seqs(d, idx[i], &q);
        for (int j = 0; j < k; j++, r++) {
            int *row = s->tokens + (size_t)r * T;
            memcpy(row, q[j].tokens, q[j].len * sizeof(int));
            for (int x = q[j].len; x < T; x++) row[x] = tok_eot(t->tok);
        }
    }
    *rows = R;
    return T;
}

static void rm_run(Trainer *t, const Dataset *d, const int *idx, int n, TrainAcc *acc, int grad) {
    RmState *s = t->state;
    int R, T = rm_pack(t, d, idx, n, &R), r = 0;
    if (gpt_forward(&t->model, s->tokens, R, T)) err_die("rm: %s", err_msg());
    memset(s->dvalues, 0, (size_t)R * T * sizeof(float));
    for (int i = 0; i < n; i++) {
        const Seq *q;
        int k = data_example_seqs(d, idx[i], &q);
        double score[64], dscore[64], accuracy = 0, loss;
        if (k > 64) err_die("rm: %s: a ranking of %d responses; at most 64 are supported", d->path, k);
        for (int j = 0; j < k; j++) score[j] = t->model.values[(size_t)(r + j) * T + q[j].len - 1];
        loss = loss_kwise(score, k, dscore, &accuracy); /* k = 2 is the pairwise loss */
        for (int j = 0; j < k; j++) s->dvalues[(size_t)(r + j) * T + q[j].len - 1] = (float)dscore[j];
        acc->loss += loss;
        acc->weight += 1;
        acc->metric[0] += accuracy;
        acc->metric[1] += score[0] - score[k - 1];
        acc->tokens += k * T;
        r += k;
    }
    if (grad) gpt_backward_scalar(&t->model, s->dvalues);
}

static void rm_micro_batch(Trainer *t, const int *idx, int n, TrainAcc *acc) { rm_run(t, &t->train, idx, n, acc, 1); }
static void rm_evaluate(Trainer *t, const int *idx, int n, TrainAcc *acc) { rm_run(t, &t->valid, idx, n, acc, 0); }

static int rm_save_extra(Trainer *t, Ckpt *k) {
    RmState *s = t->state;
    return ckpt_put_attr_f64(k, "/reward", "score_offset", s->score_offset) ||
           ckpt_put_attr_f64(k, "/reward", "score_scale", s->score_scale);
}

/* Scores one batch of SFT samples; adds sum, sum of squares and count. */
static int score_batch(Trainer *t, const Gpt *policy, const int *ex, int n, uint64_t seed, double *sums) {
    const int *prompts[8];
    int plen[8], max_new = config_int(t->cfg, "norm_max_new"), eot = tok_eot(t->tok);
    for (int i = 0; i < n; i++) {
        const Seq *q;
        data_example_seqs(&t->train, ex[i], &q);
        prompts[i] = q->tokens;
        plen[i] = q->prompt_len;
    }
    GenConfig gc = {.max_new = max_new,
                    .eot = eot,
                    .sampler = {.greedy = 0, .temperature = 1.0f, .top_k = 0, .top_p = 1.0f}};
    Rng rng;
    rng_seed(&rng, seed);
    GenResult res;
    if (gen_run(policy, prompts, plen, n, &gc, &rng, &res)) return -1;
    ScoreRow rows[8];
    for (int i = 0; i < n; i++)
        rows[i] = (ScoreRow){.prompt = prompts[i], .prompt_len = plen[i], .resp = res.tokens[i], .resp_len = res.len[i]};
    ScoreRm raw_scores = {.eot = eot, .offset = 0, .scale = 1, .clip = 0};
    float scores[8];
    t->model.training = 0;
    int rc = score_reward(&t->model, &raw_scores, rows, n, scores, NULL);
    for (int i = 0; i < n && !rc; i++) {
        sums[0] += scores[i];
        sums[1] += (double)scores[i] * scores[i];
        sums[2] += 1;
    }
    gen_result_free(&res);
    return rc;
}

/* Samples from the SFT policy and sets the score offset/scale so those
 * samples score mean 0, standard deviation 1. Batch b goes to rank
 * b % world with its own seed, so every layout gets the same numbers. */
static int rm_finish(Trainer *t) {
    RmState *s = t->state;
    int want = config_int(t->cfg, "norm_samples");
    if (want <= 0) return 0;
    Gpt policy;
    CkptWant sft = {.head = GPT_HEAD_LM, .what = "rm's init (an SFT model)"};
    if (ckpt_load_model_as(config_str(t->cfg, "init"), &policy, NULL, &sft)) return -1;
    double sums[3] = {0, 0, 0};
    int rc = 0;
    for (int b = 0; b * 8 < want && !rc; b++) {
        if (b % t->dp.world != t->dp.rank) continue;
        int ex[8], n = want - b * 8 < 8 ? want - b * 8 : 8;
        for (int i = 0; i < n; i++) ex[i] = (b * 8 + i) % t->train.n;
        rc = score_batch(t, &policy, ex, n, t->seed * 7919 + (uint64_t)b, sums);
    }
    gpt_free(&policy);
    if (dp_any(&t->dp, rc)) return rc ? -1 : err_set("normalisation failed on another rank");
    dp_sum_f64(&t->dp, sums, 3);
    double mean = sums[0] / sums[2], var = sums[1] / sums[2] - mean * mean;
    s->score_offset = mean;
    s->score_scale = var > 1e-12 ? sqrt(var) : 1.0;
    trainer_log(t, "SFT samples (%d) score %.4f +- %.4f: stored as offset/scale", (int)sums[2], mean, s->score_scale);
    return 0;
}

static void rm_teardown(Trainer *t) {
    RmState *s = t->state;
    free(s->tokens);
    free(s->dvalues);
    free(s);
}

const TrainStage rm_stage = {
    .name = "rm",
    .summary = "Reward model from an SFT checkpoint: Bradley-Terry loss on {\"prompt\",\"chosen\",\"rejected\"} "
               "pairs and {\"prompt\",\"ranking\"} K-wise rankings.",
    .keys = rm_keys,
    .kind = "reward",
    .metric_names = {"accuracy", "margin", NULL},
    .setup = rm_setup,
    .build = NULL,
    .micro_batch = rm_micro_batch,
    .evaluate = rm_evaluate,
    .save_extra = rm_save_extra,
    .finish = rm_finish,
    .teardown = rm_teardown};
