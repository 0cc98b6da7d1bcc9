/* dpo — DPO/IPO/cDPO on the shared trainer; see dpo.h. A preference example
 * is two rows, chosen and rejected (a ranking contributes its best and its
 * worst response); the policy's summed log-prob of each response enters the
 * loss of learner/losses.c. */
#include "learner/dpo.h"

#include <stdlib.h>
#include <string.h>

#include "common/io/ckpt.h"
#include "common/err.h"
#include "learner/losses.h"

typedef struct {
    LossDpoConfig loss;
    float *ref_train, *ref_valid; /* reference log-prob sum per sequence */
    ScoreBatch sb;  /* the last packed forward: its targets drive the backward */
    float *dlogp;
} DpoState;

static const CfgKey dpo_keys[] = {
    {.key = "init", .type = CFG_STR, .def = NULL, .help = "SFT checkpoint: the policy to start from"},
    {.key = "ref", .type = CFG_STR, .def = "",
     .help = "frozen reference checkpoint (empty: the init checkpoint)"},
    {.key = "beta", .type = CFG_FLOAT, .def = "0.1", .help = "strength of the tie to the reference", .range = "> 0"},
    {.key = "loss_type", .type = CFG_ENUM, .def = "dpo",
     .help = "dpo, ipo, or cdpo (conservative DPO with label_smoothing)", .choices = "dpo|ipo|cdpo"},
    {.key = "label_smoothing", .type = CFG_FLOAT, .def = "0.0",
     .help = "cdpo: assumed fraction of flipped labels, in [0, 0.5)", .range = "[0, 0.5)"},
    {0}};

/* The two sequences an example contributes: best and worst. */
static void pair_of(const Dataset *d, int e, const Seq **c, const Seq **r) {
    const Seq *q;
    int k = data_example_seqs(d, e, &q);
    *c = &q[0];
    *r = &q[k - 1];
}

/* Packs examples idx[0..n) as 2n rows (chosen, rejected) and runs m. */
static int forward_pairs(Gpt *m, DpoState *s, const Dataset *d, const int *idx, int n, int eot, double *sums) {
    const Seq *seqs[2 * n];
    int from[2 * n];
    for (int i = 0; i < n; i++) {
        pair_of(d, idx[i], &seqs[2 * i], &seqs[2 * i + 1]);
        from[2 * i] = seqs[2 * i]->prompt_len;
        from[2 * i + 1] = seqs[2 * i + 1]->prompt_len;
    }
    ScoreRow rows[2 * n];
    trainer_seq_rows(seqs, from, 2 * n, rows);
    if (score_response_logp(m, &s->sb, rows, 2 * n, eot, NULL, sums)) err_die("dpo: %s", err_msg());
    return s->sb.T;
}

/* Reference log-prob sums of every example (ranks share the work). */
static float *reference_logps(Trainer *t, Gpt *ref, const Dataset *d) {
    DpoState *s = t->state;
    int mb = t->micro_batch, idx[mb];
    double sums[2 * mb];
    double *all = err_calloc((size_t)2 * d->n, sizeof(double));
    for (int start = t->dp.rank * mb; start < d->n; start += mb * t->dp.world) {
        int n = d->n - start < mb ? d->n - start : mb;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        forward_pairs(ref, s, d, idx, n, tok_eot(t->tok), sums);
        memcpy(all + 2 * start, sums, (size_t)2 * n * sizeof(double));
    }
    dp_sum_f64(&t->dp, all, 2 * d->n);
    float *out = err_malloc((size_t)2 * d->n * sizeof(float));
    for (int i = 0; i < 2 * d->n; i++) out[i] = (float)all[i];
    free(all);
    return out;
}

static int dpo_setup(Trainer *t) {
    LongPolicy p;
    DpoState *s = err_calloc(1, sizeof *s);
    t->state = s;
    if (data_long_policy(config_str(t->cfg, "long_sequences"), &p)) return -1;
    s->loss.beta = config_float(t->cfg, "beta");
    s->loss.label_smoothing = config_float(t->cfg, "label_smoothing");
    if (loss_dpo_type_parse(config_str(t->cfg, "loss_type"), &s->loss.type) || loss_dpo_config_check(&s->loss))
        return -1;
    if (trainer_load_init(t, config_str(t->cfg, "init"), GPT_HEAD_LM)) return -1;
    int n_ctx = t->model.cfg.n_ctx;
    if (data_load_prefs(&t->train, config_str(t->cfg, "train_data"), t->tok, n_ctx, p)) return -1;
    const char *valid = config_str(t->cfg, "valid_data");
    if (*valid && data_load_prefs(&t->valid, valid, t->tok, n_ctx, p)) return -1;
    t->has_valid = *valid != 0;
    return 0;
}

/* After the layout checks: the gradient buffer and the reference pass over
 * every example (the expensive part of setting up). */
static int dpo_build(Trainer *t) {
    DpoState *s = t->state;
    const char *init = config_str(t->cfg, "init"), *ref_path = config_str(t->cfg, "ref");
    int n_ctx = t->model.cfg.n_ctx;
    if (!(s->dlogp = trainer_batch_alloc(t, 2, sizeof(float)))) return -1;
    Gpt ref;
    CkptWant want = {.head = GPT_HEAD_LM, .what = "the reference", .vocab = t->model.cfg.vocab_size,
                     .min_ctx = n_ctx, .tok = t->tok, .like = "the policy"};
    if (ckpt_load_model_as(*ref_path ? ref_path : init, &ref, NULL, &want)) return -1;
    trainer_log(t, "reference log-probs for %d + %d examples", t->train.n, t->has_valid ? t->valid.n : 0);
    s->ref_train = reference_logps(t, &ref, &t->train);
    if (t->has_valid) s->ref_valid = reference_logps(t, &ref, &t->valid);
    gpt_free(&ref);
    return 0;
}

static void dpo_run(Trainer *t, const Dataset *d, const float *ref, const int *idx, int n, TrainAcc *acc, int grad) {
    DpoState *s = t->state;
    double sums[2 * n];
    int T = forward_pairs(&t->model, s, d, idx, n, tok_eot(t->tok), sums);
    for (int i = 0; i < n; i++) {
        LossDpoPair pr = {.policy_chosen = sums[2 * i],
                          .policy_rejected = sums[2 * i + 1],
                          .ref_chosen = ref[2 * idx[i]],
                          .ref_rejected = ref[2 * idx[i] + 1]};
        LossDpoMetrics mt;
        double dc, dr, loss = loss_dpo(&s->loss, &pr, &dc, &dr, &mt);
        for (int row = 2 * i; row < 2 * i + 2; row++)
            for (int x = 0; x < T; x++)
                s->dlogp[row * T + x] = s->sb.targets[row * T + x] >= 0 ? (float)(row == 2 * i ? dc : dr) : 0.0f;
        acc->loss += loss;
        acc->weight += 1;
        acc->metric[0] += mt.accuracy;
        acc->metric[1] += mt.margin;
        acc->metric[2] += mt.chosen_reward;
        acc->metric[3] += mt.rejected_reward;
    }
    acc->tokens += 2.0 * n * T;
    if (grad) gpt_backward_lm(&t->model, s->sb.targets, s->dlogp, NULL);
}

static void dpo_micro_batch(Trainer *t, const int *idx, int n, TrainAcc *acc) {
    dpo_run(t, &t->train, ((DpoState *)t->state)->ref_train, idx, n, acc, 1);
}

static void dpo_evaluate(Trainer *t, const int *idx, int n, TrainAcc *acc) {
    dpo_run(t, &t->valid, ((DpoState *)t->state)->ref_valid, idx, n, acc, 0);
}

static void dpo_teardown(Trainer *t) {
    DpoState *s = t->state;
    free(s->ref_train);
    free(s->ref_valid);
    free(s->dlogp);
    score_batch_free(&s->sb);
    free(s);
}

const TrainStage dpo_stage = {
    .name = "dpo",
    .summary = "Direct preference optimisation (DPO, IPO, conservative DPO) from an SFT checkpoint against a frozen "
               "reference.",
    .keys = dpo_keys,
    .kind = "policy",
    .metric_names = {"accuracy", "margin", "chosen_reward", "rejected_reward", NULL},
    .setup = dpo_setup,
    .build = dpo_build,
    .micro_batch = dpo_micro_batch,
    .evaluate = dpo_evaluate,
    .save_extra = NULL,
    .finish = NULL,
    .teardown = dpo_teardown};
