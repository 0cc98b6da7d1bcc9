/* ppo — the PPO learner; see ppo.h. Conventions: a rollout of response
 * length n has actions y_0..y_{n-1}; value v_t is the value model's output
 * at the position of the last token before y_t (the state s_t = prompt +
 * y_<t); the trajectory ends after y_{n-1} (bootstrap 0). */
#include "learner/ppo.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "common/model/adamw.h"
#include "common/task/arith.h"
#include "common/io/ckpt.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/h5log.h"
#include "common/io/runrec.h"
#include "common/mpi/rollout.h"
#include "common/rng.h"
#include "common/model/generate.h"
#include "common/task/verifier.h"
#include "learner/algos.h"
#include "learner/dataset.h"
#include "learner/dispatch.h"
#include "learner/dp.h"
#include "learner/ppo_math.h"
#include "learner/trainer.h"

const CfgKey *const ppo_config_tables[PPO_CONFIG_TABLES] = {ppo_keys, verifier_keys};

typedef struct {
    Rollout r;               /* owned */
    int version, actor;
    int64_t group;           /* global sample index / group_size */
    double lambda, t_generate, t_score, gold;
    int correct;
    float *values, *adv, *ret; /* per response token */
    float *mask;             /* per response token, 0 = out of the loss; NULL = all in */
} Sample;

typedef struct {
    const Config *cfg;
    const PpoLayout *lay;
    int leader;
    Gpt policy, value;        /* value: only with a critic (advantage = gae) */
    int critic;
    const AlgosAdvantage *adv; /* the advantage estimator (learner/algos) */
    const AlgosAgg *agg;       /* loss aggregation */
    const AlgosPolicyLoss *ploss;
    PpoClip clip;              /* clip_low/clip_high/dual_clip */
    int kl_loss;               /* kl_in = loss: lambda * KL in the policy loss */
    KlEstimator kl_est;
    Tok *tok;
    AdamW popt, vopt;
    DpGradSum psum, vsum; /* gradient sums over learners, overlapped with backward */
    PpoPrompts prompts;
    int64_t iteration;        /* completed iterations = policy version */
    int64_t iterations;
    double kl_coef;
    int B, chunk, n_chunks, lag, max_new, n_ctx;
    int G;                    /* group_size: samples per prompt */
    int rounds;               /* sampling rounds per iteration at most: 1 + max_fill_rounds with filter_groups */
    int64_t stride;           /* samples an iteration may sample (B * rounds): group ids */
    Sample *more;             /* filter_groups: the samples of fill rounds */
    struct {
        double groups, dead;  /* groups sampled this iteration, those whose scores do not vary */
        int rounds;           /* fill rounds it took */
    } fill;
    uint64_t seed;
    Sample *s;                /* this learner's samples of the iteration */
    int n;
    Dispatch d;               /* orders out, rollouts in, deadlines (learner/dispatch) */
    H5log *rollouts, *metrics;
    Dataset ptx;
    int has_ptx;
    char out_dir[1024];
    double t_start;
    volatile sig_atomic_t *stop;
    /* scratch for packed forward passes */
    int *tokens, *targets;
    float *dlogp, *dent, *dval;
    ScoreBatch policy_pass;   /* the policy's forward of the current micro-batch */
} Learner;

static void learner_log(const Learner *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void learner_log(const Learner *L, const char *fmt, ...) {
    if (!L->leader) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("ppo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- collectives among the learners ------------------------------------------ */

/* MPI_Allreduce and MPI_Bcast on the learners' communicator, posted
 * non-blocking and waited for with msg_wait's 1 ms naps: Open MPI's blocking
 * collectives busy-poll a core, and learner k sits in them whenever the
 * leader works alone (dispatching, logging, writing a checkpoint) -- with
 * more ranks than cores that core is taken from the ranks doing the work
 * (tests/cli/ranks.sh measured learner 1 using more CPU than the leader). */
static void learners_allreduce(const void *in, void *out, int n, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
    MPI_Request r;
    MPI_Iallreduce(in, out, n, type, op, comm, &r);
    msg_wait(&r);
}

static void learners_bcast(void *buf, int n, MPI_Datatype type, int root, MPI_Comm comm) {
    MPI_Request r;
    MPI_Ibcast(buf, n, type, root, comm, &r);
    msg_wait(&r);
}

/* ---- gathering scored rollouts --------------------------------------------- */

static void sample_from(Learner *L, Sample *s, Rollout *r, const RolloutBatch *rb) {
    memset(s, 0, sizeof *s);
    s->r = *r;
    memset(r, 0, sizeof *r); /* ownership moves to the sample */
    s->version = rb->version;
    s->actor = rb->actor;
    s->lambda = rb->lambda;
    s->t_generate = rb->t_generate;
    s->t_score = rb->t_score;
    int n = s->r.resp_len ? s->r.resp_len : 1;
    s->values = err_calloc(n, sizeof(float));
    s->adv = err_calloc(n, sizeof(float));
    s->ret = err_calloc(n, sizeof(float));
    /* mask_truncated (DAPO): a response cut at max_new (or the context) trains nothing */
    if (config_bool(L->cfg, "mask_truncated") && s->r.stop != GEN_STOP_EOT) s->mask = err_calloc(n, sizeof(float));
    /* the gold judge reads the text; the end token is not part of it */
    int body = s->r.resp_len - (s->r.resp_len && s->r.resp[s->r.resp_len - 1] == tok_eot(L->tok));
    size_t len;
    char *text = tok_decode(L->tok, s->r.resp, body, &len);
    ArithJudgement j;
    s->gold = text ? arith_gold(L->prompts.text[s->r.prompt_index], text, &j) : NAN;
    s->correct = text && !isnan(s->gold) ? j.correct : 0;
    free(text);
    err_clear();
}

static void sample_free(Sample *s) {
    rollout_free(&s->r);
    free(s->values);
    free(s->adv);
    free(s->ret);
    free(s->mask);
    memset(s, 0, sizeof *s); /* an abandoned iteration fills only some slots */
}

static void some_samples_free(Sample *s, int n) {
    for (int i = 0; i < n; i++) sample_free(&s[i]);
}

static void samples_free(Learner *L) {
    some_samples_free(L->s, L->n);
    L->n = 0;
}

/* Moves a scored batch's rollouts into to[], the samples of its round. */
static void take_batch(Learner *L, RolloutBatch *rb, Sample *to, int round) {
    int c = rb->chunk - round * L->n_chunks; /* the chunk within its round */
    for (int i = 0; i < rb->n; i++) {
        int slot = (c / L->lay->n_learners) * L->chunk + i; /* order by chunk: layout-independent */
        sample_from(L, &to[slot], &rb->r[i], rb);
        to[slot].group = ((int64_t)rb->iteration * L->stride + (int64_t)rb->chunk * L->chunk + i) / L->G;
    }
    rollout_batch_free(rb);
}

/* This learner's samples of round `round` of iteration it into to[0..*n)
 * (learner/dispatch waits for them). Returns 0, or why every learner leaves
 * the iteration (RolloutAbandon; to[] is then empty); *t_wait: the seconds
 * spent waiting. */
static int gather_round(Learner *L, int64_t it, int round, Sample *to, int *n_to, double *t_wait) {
    int mine = 0, n;
    for (int c = 0; c < L->n_chunks; c++) mine += c % L->lay->n_learners == L->lay->index;
    *n_to = mine * L->chunk;
    RolloutBatch *b;
    int reason = dispatch_gather_round(&L->d, it, round, &b, &n, t_wait);
    for (int k = 0; k < n; k++) take_batch(L, &b[k], to, round);
    free(b);
    reason = dispatch_agree(&L->d, reason);
    if (reason) some_samples_free(to, *n_to);
    return reason;
}

static int gather(Learner *L, int64_t it, double *t_wait) {
    int reason = gather_round(L, it, 0, L->s, &L->n, t_wait);
    if (reason) L->n = 0;
    return reason;
}

/* ---- dynamic sampling (DAPO filter_groups) --------------------------------------- */

/* 1 if the scores of the group s[0..G) are not all equal: it carries a
 * signal (a group estimator gives every member 0 otherwise). */
static int group_varies(const Sample *s, int G) {
    for (int j = 1; j < G; j++)
        if (s[j].r.score != s[0].r.score) return 1;
    return 0;
}

/* Adds the groups of s[0..n) to L->fill; returns the samples in live groups. */
static int count_live(Learner *L, const Sample *s, int n) {
    int live = 0;
    for (int g = 0; g < n; g += L->G) {
        int v = group_varies(&s[g], L->G);
        live += v * L->G;
        L->fill.groups++;
        L->fill.dead += !v;
    }
    return live;
}

/* Moves the group at from[g..g+G) to to[*k..], marking it used. */
static void take_group(Sample *from, int g, int G, char *used, Sample *to, int *k) {
    memcpy(&to[*k], &from[g], (size_t)G * sizeof *to);
    memset(&from[g], 0, (size_t)G * sizeof *from);
    used[g] = 1;
    *k += G;
}

/* The batch of L->n samples: live groups of the first round, then of the
 * fill rounds, in order; if still short, the first round's dead groups
 * (their advantages are 0 with a group estimator). The rest is freed. */
static void select_groups(Learner *L, int n_more) {
    int need = L->n, G = L->G, k = 0;
    Sample *pick = err_calloc((size_t)need, sizeof *pick);
    char *used = err_calloc((size_t)need + (size_t)n_more + 1, 1), *used_more = used + need;
    for (int g = 0; g < need && k < need; g += G)
        if (group_varies(&L->s[g], G)) take_group(L->s, g, G, used, pick, &k);
    for (int g = 0; g < n_more && k < need; g += G)
        if (group_varies(&L->more[g], G)) take_group(L->more, g, G, used_more, pick, &k);
    for (int g = 0; g < need && k < need; g += G)
        if (!used[g]) take_group(L->s, g, G, used, pick, &k);
    some_samples_free(L->s, need); /* what was not taken (taken slots are zeroed) */
    some_samples_free(L->more, n_more);
    memcpy(L->s, pick, (size_t)need * sizeof *pick);
    free(pick);
    free(used);
}

/* Counts the iteration's groups and those without variance; with
 * filter_groups, while any learner is short of live groups, samples fill
 * rounds of new prompts (max_fill_rounds at most), then keeps the live
 * groups (select_groups). */
static int fill_groups(Learner *L, int64_t it, double *t_wait) {
    L->fill.groups = L->fill.dead = 0;
    L->fill.rounds = 0;
    int live = count_live(L, L->s, L->n), n_more = 0;
    if (L->rounds < 2) return 0;
    for (int r = 1; r < L->rounds; r++) {
        int short_of = live < L->n;
        if (L->lay->n_learners > 1) learners_allreduce(MPI_IN_PLACE, &short_of, 1, MPI_INT, MPI_MAX, L->lay->role_comm);
        if (!short_of) break;
        if (L->leader) dispatch_send_round(&L->d, it, r);
        int got;
        double t;
        int left = gather_round(L, it, r, L->more + n_more, &got, &t);
        *t_wait += t;
        if (left) {
            some_samples_free(L->more, n_more);
            samples_free(L);
            return left;
        }
        live += count_live(L, L->more + n_more, got);
        n_more += got;
        L->fill.rounds = r;
    }
    select_groups(L, n_more);
    return 0;
}

/* ---- packed forward passes ---------------------------------------------------- */

/* Samples idx[0..n) as prompt + response rows. */
static void rows_of(const Learner *L, const int *idx, int n, ScoreRow *rows) {
    for (int i = 0; i < n; i++) {
        const Rollout *r = &L->s[idx[i]].r;
        rows[i] = (ScoreRow){.prompt = r->prompt, .prompt_len = r->prompt_len, .resp = r->resp,
                             .resp_len = r->resp_len};
    }
}

/* Packs samples idx[0..n) as rows prompt + response; targets are the response
 * tokens. Returns T. */
static int pack(Learner *L, const int *idx, int n) {
    ScoreRow rows[n];
    rows_of(L, idx, n, rows);
    return score_pack_rows(rows, n, tok_eot(L->tok), L->tokens, L->targets);
}

/* Position in the packed row of response token k's prediction. */
static inline int at(const Rollout *r, int k) { return score_resp_pos(r->prompt_len, k); }

/* Values of every response token of samples idx (no gradients). */
static void compute_values(Learner *L, const int *idx, int n) {
    int T = pack(L, idx, n);
    if (gpt_forward(&L->value, L->tokens, n, T)) err_die("learner: %s", err_msg());
    for (int i = 0; i < n; i++) {
        Sample *s = &L->s[idx[i]];
        for (int k = 0; k < s->r.resp_len; k++) s->values[k] = L->value.values[i * T + at(&s->r, k)];
    }
}

/* ---- advantages ------------------------------------------------------------------ */

/* Sums n doubles over the learners (in place). */
static void learners_sum(const Learner *L, double *x, int n) {
    if (L->lay->n_learners > 1) learners_allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, L->lay->role_comm);
}

/* learners_sum as algos' reducer. */
static void learners_reduce(double *x, int n, void *ctx) {
    learners_sum(ctx, x, n);
}

/* The value model's values of every sample (gae), micro-batch by micro-batch. */
static void all_values(Learner *L) {
    int mb = config_int(L->cfg, "micro_batch"), idx[mb];
    L->value.training = 0;
    for (int start = 0; start < L->n; start += mb) {
        int n = L->n - start < mb ? L->n - start : mb;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        compute_values(L, idx, n);
    }
}

/* The estimator of `advantage` over this learner's samples (whole groups:
 * chunk is a multiple of group_size); batch-wide moments go through the
 * learners' all-reduce. */
static void advantages(Learner *L) {
    if (L->critic) all_values(L);
    AlgosSeq *seq = err_calloc((size_t)(L->n ? L->n : 1), sizeof *seq);
    int64_t first_group = L->iteration * L->stride / L->G; /* group ids of this iteration from 0 */
    for (int i = 0; i < L->n; i++) {
        Sample *s = &L->s[i];
        seq[i] = (AlgosSeq){.len = s->r.resp_len,
                            .group = (int)(s->group - first_group),
                            .score = s->r.score,
                            .reward = s->r.reward,
                            .values = L->critic ? s->values : NULL,
                            .mask = s->mask,
                            .adv = s->adv,
                            .ret = s->ret};
    }
    /* double all the way to ppo_gae: a float gamma of 0.99 is 0.99000001 */
    AlgosAdvOpts o = {.gamma = config_float(L->cfg, "gamma"),
                      .lambda = config_float(L->cfg, "lam"),
                      .eps = ALGOS_GRPO_EPS,
                      .whiten = config_bool(L->cfg, "whiten_advantages"),
                      .reduce = learners_reduce,
                      .reduce_ctx = L};
    if (algos_advantage(L->adv, &o, seq, L->n)) err_die("learner: %s", err_msg());
    free(seq);
}

/* ---- PPO updates ------------------------------------------------------------------ */

/* Per-iteration means: each minibatch adds its mean (its sums over this
 * learner divided by the minibatch's totals over all learners, so the
 * learners' shares add up), divided by the steps at the end. */
typedef struct {
    double policy_loss, value_loss, entropy, clipfrac, approx_kl, vclipfrac;
    double clipfrac_low, clipfrac_high, dual_clipfrac; /* fractions of valid tokens */
    double kl_loss;         /* kl_in = loss: lambda * mean KL, as aggregated */
    double ratio_dev_first; /* max |ratio - 1| on the first minibatch, before any update */
    double ptx_loss;
} Stats;

/* The aggregation normaliser of minibatch idx[0..n): valid tokens and
 * responses over all learners, so a token's weight does not depend on the
 * micro-batch size or the learner count. */
static AlgosAggNorm minibatch_norm(Learner *L, const int *idx, int n) {
    AlgosAggNorm g = {.max_new = L->max_new};
    for (int i = 0; i < n; i++) algos_agg_count(&g, L->s[idx[i]].r.resp_len, L->s[idx[i]].mask);
    algos_agg_reduce(&g, learners_reduce, L);
    return g;
}

/* One response's policy loss (and KL in the loss) with weight w per valid
 * token; gradients into dlogp and dent at its positions. */
static void policy_seq(Learner *L, const Sample *s, const ScoreBatch *sb, int p0, double w, AlgosSums *sum) {
    AlgosTokens t = {.len = s->r.resp_len,
                     .logp = sb->logp + p0,
                     .old_logp = s->r.logp_behav,
                     .ref_logp = s->r.logp_ref,
                     .adv = s->adv,
                     .mask = s->mask};
    if (isnan(algos_policy_loss(L->ploss, &L->clip, &t, w, L->dlogp + p0, sum)) ||
        (L->kl_loss && isnan(algos_kl_loss(L->kl_est, L->kl_coef, &t, w, L->dlogp + p0, sum))))
        err_die("learner: %s", err_msg());
    double c2 = config_float(L->cfg, "ent_coef");
    for (int k = 0; k < t.len; k++)
        if (!s->mask || s->mask[k] != 0) L->dent[p0 + k] = (float)(-c2 * w);
}

/* Policy micro-batch: the policy loss with loss_agg's weights from the
 * minibatch normaliser g, KL in the loss, entropy bonus (weighted alike). */
static void policy_micro(Learner *L, const int *idx, int n, const AlgosAggNorm *g, Stats *st, int first) {
    ScoreRow rows[n];
    rows_of(L, idx, n, rows);
    ScoreBatch *sb = &L->policy_pass;
    sb->want_entropy = 1;
    if (score_response_logp(&L->policy, sb, rows, n, tok_eot(L->tok), NULL, NULL)) err_die("learner: %s", err_msg());
    int T = sb->T;
    memset(L->dlogp, 0, (size_t)n * T * sizeof(float));
    memset(L->dent, 0, (size_t)n * T * sizeof(float));
    AlgosSums sum = {0};
    double entropy = 0;
    for (int i = 0; i < n; i++) {
        const Sample *s = &L->s[idx[i]];
        int p0 = i * T + at(&s->r, 0);
        double w = algos_agg_weight(L->agg, g, s->r.resp_len, s->mask);
        if (isnan(w)) err_die("learner: %s", err_msg());
        policy_seq(L, s, sb, p0, w, &sum);
        for (int k = 0; k < s->r.resp_len; k++)
            if (!s->mask || s->mask[k] != 0) entropy += sb->entropy[p0 + k];
    }
    double tokens = g->tokens > 0 ? g->tokens : 1;
    st->policy_loss += sum.loss;
    st->kl_loss += sum.kl_loss;
    st->entropy += entropy / tokens;
    st->clipfrac += sum.clipped / tokens;
    st->clipfrac_low += sum.clipped_low / tokens;
    st->clipfrac_high += sum.clipped_high / tokens;
    st->dual_clipfrac += sum.dual_clipped / tokens;
    st->approx_kl += sum.approx_kl / tokens;
    if (first) st->ratio_dev_first = fmax(st->ratio_dev_first, sum.ratio_dev_max);
    gpt_backward_lm(&L->policy, sb->targets, L->dlogp, config_float(L->cfg, "ent_coef") != 0 ? L->dent : NULL);
}

static void value_micro(Learner *L, const int *idx, int n, double denom, Stats *st) {
    float vclip = (float)config_float(L->cfg, "value_clip"), c1 = (float)config_float(L->cfg, "vf_coef");
    int T = pack(L, idx, n);
    if (gpt_forward(&L->value, L->tokens, n, T)) err_die("learner: %s", err_msg());
    memset(L->dval, 0, (size_t)n * T * sizeof(float));
    for (int i = 0; i < n; i++) {
        const Sample *s = &L->s[idx[i]];
        for (int k = 0; k < s->r.resp_len; k++) {
            int p = i * T + at(&s->r, k), clipped;
            double d, loss = ppo_value_loss(L->value.values[p], s->values[k], s->ret[k], vclip, &d, &clipped);
            L->dval[p] = (float)(c1 * d / denom);
            st->value_loss += loss / denom;
            st->vclipfrac += clipped / denom;
        }
    }
    gpt_backward_scalar(&L->value, L->dval);
}

/* PPO-ptx: the pretraining loss on a few text windows, weighted by ptx_coef. */
static void ptx_micro(Learner *L, int64_t step, Stats *st) {
    int n = config_int(L->cfg, "ptx_batch"), idx[n];
    const Seq *seqs[n];
    int from[n];
    for (int i = 0; i < n; i++) {
        idx[i] = (int)((step * n + i) % L->ptx.n);
        data_example_seqs(&L->ptx, idx[i], &seqs[i]);
        from[i] = 0;
    }
    ScoreRow rows[n];
    trainer_seq_rows(seqs, from, n, rows);
    int T = score_pack_rows(rows, n, tok_eot(L->tok), L->tokens, L->targets);
    if (gpt_forward(&L->policy, L->tokens, n, T)) err_die("learner: %s", err_msg());
    float loss = gpt_ce_loss(&L->policy, L->targets, NULL, L->dlogp);
    float coef = (float)config_float(L->cfg, "ptx_coef") / (float)L->lay->n_learners;
    for (int i = 0; i < n * T; i++) L->dlogp[i] *= coef;
    gpt_backward_lm(&L->policy, L->targets, L->dlogp, NULL);
    st->ptx_loss += loss;
}

/* Response tokens of samples idx over all learners. */
static double global_tokens(Learner *L, const int *idx, int n) {
    double t = 0;
    for (int i = 0; i < n; i++) t += L->s[idx[i]].r.resp_len;
    if (L->lay->n_learners > 1) learners_allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_SUM, L->lay->role_comm);
    return t > 0 ? t : 1;
}

static void ppo_epochs(Learner *L, Stats *st) {
    int epochs = config_int(L->cfg, "ppo_epochs"), mb = config_int(L->cfg, "minibatch") / L->lay->n_learners;
    int micro = config_int(L->cfg, "micro_batch"), *perm = err_malloc((size_t)L->n * sizeof(int)), steps = 0;
    memset(st, 0, sizeof *st);
    L->policy.training = 1;
    L->value.training = L->critic;
    for (int e = 0; e < epochs; e++) {
        Rng r;
        rng_seed(&r, rng_mix64(L->seed ^ (uint64_t)(L->iteration * 131 + e + 1)));
        for (int i = 0; i < L->n; i++) perm[i] = i;
        for (int i = L->n - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint32_t)i + 1), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (int start = 0; start + mb <= L->n; start += mb, steps++) {
            double denom = L->critic ? global_tokens(L, perm + start, mb) : 1; /* the value loss: token-mean */
            AlgosAggNorm g = minibatch_norm(L, perm + start, mb);
            gpt_zero_grad(&L->policy);
            if (L->critic) gpt_zero_grad(&L->value);
            for (int m = start; m < start + mb; m += micro) {
                int n = start + mb - m < micro ? start + mb - m : micro, last = m + micro >= start + mb;
                /* each model's last backward of the minibatch sums its gradients as it goes */
                if (last && !L->has_ptx) dp_gradsum_arm(&L->psum, &L->policy, L->lay->role_comm);
                policy_micro(L, perm + m, n, &g, st, steps == 0);
                if (!L->critic) continue;
                if (last) dp_gradsum_arm(&L->vsum, &L->value, L->lay->role_comm);
                value_micro(L, perm + m, n, denom, st);
            }
            if (L->has_ptx) {
                dp_gradsum_arm(&L->psum, &L->policy, L->lay->role_comm);
                ptx_micro(L, L->iteration * 1000 + steps, st);
            }
            dp_gradsum_finish(&L->psum);
            adamw_step(&L->popt, &L->policy);
            if (!L->critic) continue;
            dp_gradsum_finish(&L->vsum);
            adamw_step(&L->vopt, &L->value);
        }
    }
    free(perm);
    double k = steps ? 1.0 / steps : 0;
    st->policy_loss *= k;
    st->value_loss *= k;
    st->entropy *= k;
    st->clipfrac *= k;
    st->approx_kl *= k;
    st->vclipfrac *= k;
    st->clipfrac_low *= k;
    st->clipfrac_high *= k;
    st->dual_clipfrac *= k;
    st->kl_loss *= k;
    st->ptx_loss *= k;
}

/* ---- logs ---------------------------------------------------------------------------- */

/* Columns of metrics.h5, one row per iteration (the progress line prints some). */
typedef enum {
    MET_ITERATION,
    MET_VERSION,
    MET_REWARD,
    MET_R_THETA,
    MET_KL,
    MET_LAMBDA,
    MET_GOLD,
    MET_CORRECT,
    MET_LENGTH,
    MET_ENTROPY,
    MET_POLICY_LOSS,
    MET_VALUE_LOSS,
    MET_CLIPFRAC,
    MET_APPROX_KL,
    MET_RATIO_DEV_FIRST,
    MET_LAG_MEAN,
    MET_LAG_MAX,
    MET_T_GENERATE,
    MET_T_SCORE,
    MET_T_LEARN,
    MET_T_WAIT,
    MET_ROLLOUTS_PER_S,
    MET_ELAPSED,
    MET_PTX_LOSS,
    MET_CLIPFRAC_LOW,
    MET_CLIPFRAC_HIGH,
    MET_DUAL_CLIPFRAC,
    MET_KL_LOSS,
    MET_DEAD_GROUPS,
    MET_FILL_ROUNDS,
    MET_SCORE,
    MET_R_VERIFIER,
    MET_V_CORRECT,
    MET_V_FORMAT,
    MET_V_MANNERS,
    MET_V_CONCISION,
    METRIC_COLS
} MetricCol;

static const char *const metric_names[METRIC_COLS] = {
    [MET_ITERATION] = "iteration",
    [MET_VERSION] = "version",
    [MET_REWARD] = "reward",
    [MET_R_THETA] = "r_theta",
    [MET_KL] = "kl",
    [MET_LAMBDA] = "lambda",
    [MET_GOLD] = "gold",
    [MET_CORRECT] = "correct",
    [MET_LENGTH] = "length",
    [MET_ENTROPY] = "entropy",
    [MET_POLICY_LOSS] = "policy_loss",
    [MET_VALUE_LOSS] = "value_loss",
    [MET_CLIPFRAC] = "clipfrac",
    [MET_APPROX_KL] = "approx_kl",
    [MET_RATIO_DEV_FIRST] = "ratio_dev_first",
    [MET_LAG_MEAN] = "lag_mean",
    [MET_LAG_MAX] = "lag_max",
    [MET_T_GENERATE] = "t_generate",
    [MET_T_SCORE] = "t_score",
    [MET_T_LEARN] = "t_learn",
    [MET_T_WAIT] = "t_wait",
    [MET_ROLLOUTS_PER_S] = "rollouts_per_s",
    [MET_ELAPSED] = "elapsed",
    [MET_PTX_LOSS] = "ptx_loss",
    [MET_CLIPFRAC_LOW] = "clipfrac_low",
    [MET_CLIPFRAC_HIGH] = "clipfrac_high",
    [MET_DUAL_CLIPFRAC] = "dual_clipfrac",
    [MET_KL_LOSS] = "kl_loss",
    [MET_DEAD_GROUPS] = "dead_groups",
    [MET_FILL_ROUNDS] = "fill_rounds",
    [MET_SCORE] = "score",
    [MET_R_VERIFIER] = "r_verifier",
    [MET_V_CORRECT] = "v_correct",
    [MET_V_FORMAT] = "v_format",
    [MET_V_MANNERS] = "v_manners",
    [MET_V_CONCISION] = "v_concision",
};

/* The rollout log's and the metrics' names of the verifier components, in
 * VerifierComp order. */
static const char *const verifier_columns[ROLLOUT_VCOMPS] = {
    [VERIFIER_CORRECT] = "v_correct",
    [VERIFIER_FORMAT] = "v_format",
    [VERIFIER_MANNERS] = "v_manners",
    [VERIFIER_CONCISION] = "v_concision",
};

static void rollout_columns(const Learner *L, H5logColumn *c) {
    int W = L->max_new, P = L->n_ctx;
    H5logColumn cols[] = {
        {.name = "iteration", .type = H5LOG_I64, .width = 0, .help = "PPO iteration the sample was used in"},
        {.name = "version", .type = H5LOG_I32, .width = 0, .help = "policy version the actor sampled with"},
        {.name = "actor", .type = H5LOG_I32, .width = 0, .help = "MPI rank of the actor"},
        {.name = "group", .type = H5LOG_I64, .width = 0,
         .help = "group id: the group_size samples of one prompt share it (global sample index / group_size; "
                 "with filter_groups an iteration spans batch_size x (1 + max_fill_rounds) indices)"},
        {.name = "prompt_index", .type = H5LOG_I32, .width = 0,
         .help = "line of the prompt in the prompts file (0-based)"},
        {.name = "prompt_len", .type = H5LOG_I32, .width = 0, .help = "prompt tokens"},
        {.name = "prompt", .type = H5LOG_I32, .width = P, .help = "prompt tokens, zero-padded"},
        {.name = "response_len", .type = H5LOG_I32, .width = 0,
         .help = "response tokens (with the end token if sampled)"},
        {.name = "response", .type = H5LOG_I32, .width = W, .help = "response tokens, zero-padded"},
        {.name = "stop", .type = H5LOG_I32, .width = 0,
         .help = "why sampling stopped: 0 end token, 1 max_new, 2 context full (1, 2: truncated)"},
        {.name = "logp_behav", .type = H5LOG_F32, .width = W,
         .help = "behaviour log-prob of each response token (actor)"},
        {.name = "logp_ref", .type = H5LOG_F32, .width = W,
         .help = "reference log-prob of each response token (rewarder)"},
        {.name = "kl", .type = H5LOG_F32, .width = W, .help = "per-token KL estimate"},
        {.name = "values", .type = H5LOG_F32, .width = W,
         .help = "value model output per response token (0 without a value model)"},
        {.name = "advantages", .type = H5LOG_F32, .width = W,
         .help = "advantages of the advantage estimator (gae: whitened if configured); 0 on masked tokens"},
        {.name = "r_raw", .type = H5LOG_F64, .width = 0, .help = "reward model score, raw (NaN without one)"},
        {.name = "r_theta", .type = H5LOG_F64, .width = 0,
         .help = "reward model score, normalised and clipped"},
        {.name = "kl_sum", .type = H5LOG_F64, .width = 0, .help = "sum of per-token KL"},
        {.name = "score", .type = H5LOG_F64, .width = 0,
         .help = "sequence score: rm_weight r_theta + verifier_weight r_verifier + overlong"},
        {.name = "r_verifier", .type = H5LOG_F64, .width = 0, .help = "the verifier's score (NaN without one)"},
        {.name = "overlong", .type = H5LOG_F64, .width = 0, .help = "overlong penalty in the score (<= 0)"},
        {.name = "v_correct", .type = H5LOG_F64, .width = 0,
         .help = "verifier component: 1 if the answer is right (gold, answer; NaN otherwise)"},
        {.name = "v_format", .type = H5LOG_F64, .width = 0, .help = "verifier component: format score"},
        {.name = "v_manners", .type = H5LOG_F64, .width = 0,
         .help = "verifier component: -verifier_offensive_penalty or 0 (gold)"},
        {.name = "v_concision", .type = H5LOG_F64, .width = 0,
         .help = "verifier component: -verifier_word_penalty x extra words (gold)"},
        {.name = "reward", .type = H5LOG_F64, .width = 0,
         .help = "total reward: the sum of token rewards (score - lambda * kl_sum with kl_in = reward)"},
        {.name = "lambda", .type = H5LOG_F64, .width = 0, .help = "KL coefficient"},
        {.name = "gold", .type = H5LOG_F64, .width = 0,
         .help = "gold score of the built-in task (NaN for other prompts)"},
        {.name = "t_generate", .type = H5LOG_F64, .width = 0,
         .help = "seconds the actor spent on the sample's batch"},
        {.name = "t_score", .type = H5LOG_F64, .width = 0,
         .help = "seconds the rewarder spent on the sample's batch"},
        {.name = "timestamp", .type = H5LOG_F64, .width = 0,
         .help = "unix time the learner logged the sample"}};
    memcpy(c, cols, sizeof cols);
}
#define ROLLOUT_COLS 31

static void log_samples(Learner *L) {
    double t = fs_wall_now();
    for (int i = 0; i < L->n; i++) {
        const Sample *s = &L->s[i];
        const Rollout *r = &s->r;
        double total = 0;
        for (int k = 0; k < r->resp_len; k++) total += r->reward[k];
        int n = r->resp_len < L->max_new ? r->resp_len : L->max_new;
        H5log *g = L->rollouts;
        h5log_set_i64(g, "iteration", L->iteration);
        h5log_set_i64(g, "version", s->version);
        h5log_set_i64(g, "actor", s->actor);
        h5log_set_i64(g, "group", s->group);
        h5log_set_i64(g, "prompt_index", r->prompt_index);
        h5log_set_i64(g, "prompt_len", r->prompt_len);
        h5log_set_i32s(g, "prompt", r->prompt, r->prompt_len < L->n_ctx ? r->prompt_len : L->n_ctx);
        h5log_set_i64(g, "response_len", r->resp_len);
        h5log_set_i32s(g, "response", r->resp, n);
        h5log_set_i64(g, "stop", r->stop);
        h5log_set_f32s(g, "logp_behav", r->logp_behav, n);
        h5log_set_f32s(g, "logp_ref", r->logp_ref, n);
        h5log_set_f32s(g, "kl", r->kl, n);
        h5log_set_f32s(g, "values", s->values, n);
        h5log_set_f32s(g, "advantages", s->adv, n);
        h5log_set_f64(g, "r_raw", r->r_raw);
        h5log_set_f64(g, "r_theta", r->r_theta);
        h5log_set_f64(g, "kl_sum", r->kl_sum);
        h5log_set_f64(g, "score", r->score);
        h5log_set_f64(g, "r_verifier", r->r_verifier);
        h5log_set_f64(g, "overlong", r->overlong);
        for (int c = 0; c < ROLLOUT_VCOMPS; c++) h5log_set_f64(g, verifier_columns[c], r->v_comp[c]);
        h5log_set_f64(g, "reward", total);
        h5log_set_f64(g, "lambda", s->lambda);
        h5log_set_f64(g, "gold", s->gold);
        h5log_set_f64(g, "t_generate", s->t_generate);
        h5log_set_f64(g, "t_score", s->t_score);
        h5log_set_f64(g, "timestamp", t);
        if (h5log_row_done(g)) err_die("%s", err_msg());
    }
}

/* Rows of an existing log whose iteration column is < keep_iter. */
static int64_t rows_before(const char *path, const char *col, int64_t keep_iter) {
    H5log *r = h5log_open_read(path);
    if (!r) return -1;
    int64_t n = h5log_rows(r), keep = 0;
    double *v = err_malloc((size_t)(n ? n : 1) * sizeof(double));
    if (h5log_read_f64(r, col, 0, n, v)) keep = -1;
    while (keep >= 0 && keep < n && v[keep] < (double)keep_iter) keep++;
    free(v);
    h5log_close(r);
    return keep;
}

static H5log *open_log(const char *path, const H5logColumn *cols, int n, const char *kind, const char *col,
                       int64_t resume_iter) {
    struct stat st;
    if (resume_iter < 0 || stat(path, &st)) return h5log_create(path, cols, n, kind);
    int64_t keep = rows_before(path, col, resume_iter);
    return keep < 0 ? NULL : h5log_open_append(path, cols, n, kind, keep);
}

static void open_logs(Learner *L, int64_t resume_iter) {
    H5logColumn rc[ROLLOUT_COLS], mc[METRIC_COLS];
    char path[1200];
    rollout_columns(L, rc);
    for (int i = 0; i < METRIC_COLS; i++) mc[i] = (H5logColumn){.name = metric_names[i], .type = H5LOG_F64};
    snprintf(path, sizeof path, "%s/rollouts.h5", L->out_dir);
    if (!(L->rollouts = open_log(path, rc, ROLLOUT_COLS, "rollouts", "iteration", resume_iter))) err_die_last();
    snprintf(path, sizeof path, "%s/metrics.h5", L->out_dir);
    /* metrics rows carry the iteration number after the update: 1, 2, ... */
    if (!(L->metrics = open_log(path, mc, METRIC_COLS, "ppo-metrics", "iteration", resume_iter))) err_die_last();
}

/* ---- checkpoints ------------------------------------------------------------------------ */

static void ckpt_name(const Learner *L, int64_t it, char *buf, size_t n) {
    fs_numbered(buf, n, L->out_dir, "ckpt-", 6, it);
}

static int write_ckpt(Learner *L, const char *path, int final) {
    Ckpt *k = ckpt_create(path);
    if (!k) return -1;
    int rc = ckpt_put_model(k, &L->policy, L->tok, "policy") || ckpt_save_config(k, L->cfg) ||
             ckpt_put_attr_i64(k, "/state", "iteration", L->iteration) ||
             ckpt_put_attr_f64(k, "/state", "kl_coef", L->kl_coef) ||
             ckpt_put_attr_str(k, "/state", "stage", "ppo");
    if (!rc && !final) {
        rc = ckpt_put_buffer(k, "optim/policy_m", &L->policy, L->popt.m) ||
             ckpt_put_buffer(k, "optim/policy_v", &L->policy, L->popt.v) ||
             ckpt_put_attr_i64(k, "/state", "policy_adam_step", L->popt.step) ||
             ckpt_put_attr_i64(k, "/state", "learners", L->lay->n_learners);
    }
    if (!rc && !final && L->critic)
        rc = ckpt_put_buffer(k, "value/params", &L->value, L->value.params) ||
             ckpt_put_buffer(k, "optim/value_m", &L->value, L->vopt.m) ||
             ckpt_put_buffer(k, "optim/value_v", &L->value, L->vopt.v) ||
             ckpt_put_attr_i64(k, "/state", "value_adam_step", L->vopt.step) ||
             ckpt_put_model_config(k, "/value", &L->value.cfg);
    if (rc) {
        ckpt_discard(k);
        return -1;
    }
    return ckpt_commit(k);
}

static int save_ckpt(Learner *L) {
    char path[1200];
    int rc = 0;
    ckpt_name(L, L->iteration, path, sizeof path);
    if (L->leader) { /* logged rows on disk before a checkpoint says their iterations are done */
        rc = h5log_flush(L->rollouts) || h5log_flush(L->metrics) || write_ckpt(L, path, 0);
        if (!rc) fs_prune_numbered(L->out_dir, "ckpt-", 6, L->iteration, config_int(L->cfg, "keep_checkpoints"));
    }
    if (L->lay->n_learners > 1) learners_bcast(&rc, 1, MPI_INT, 0, L->lay->role_comm);
    return rc;
}

/* Keys that may change between runs of one out_dir (the settings record and
 * the checkpoint comparison ignore them); out_dir included: a run moved off
 * a full disk resumes where it now is. A changed learner count is allowed
 * with a warning, as the trainers allow a changed rank count. */
static const char *const ppo_runtime_keys[] = {"ckpt_every", "keep_checkpoints", "log_samples", "role", "learners",
                                               "rewarders", "out_dir", "overwrite", "rank_timeout",
                                               "actor_slots", "snapshot_send", NULL};

static int resume(Learner *L, int64_t it) {
    char path[1200], diff[600];
    ckpt_name(L, it, path, sizeof path);
    Ckpt *k = ckpt_open(path);
    if (!k) return -1;
    Config *saved = config_new(ppo_config_tables, PPO_CONFIG_TABLES);
    int64_t iter, pstep, vstep = 0;
    int rc = ckpt_load_config(k, saved, NULL) || ckpt_get_attr_i64(k, "/state", "iteration", &iter) ||
             ckpt_get_attr_f64(k, "/state", "kl_coef", &L->kl_coef) ||
             ckpt_get_attr_i64(k, "/state", "policy_adam_step", &pstep);
    /* checkpoints from before /state/learners: the learners key they were run with */
    int64_t learners = config_int(saved, "learners");
    if (!rc && ckpt_has_attr(k, "/state", "learners")) rc = ckpt_get_attr_i64(k, "/state", "learners", &learners);
    for (int i = 0; !rc && ppo_runtime_keys[i]; i++)
        config_set(saved, ppo_runtime_keys[i], config_get_raw(L->cfg, ppo_runtime_keys[i]), "resume");
    if (!rc && config_diff(L->cfg, saved, diff, sizeof diff))
        rc = err_set("%s: written with a different configuration: %s; use a new out_dir or the same settings", path, diff);
    /* after the comparison: a checkpoint of another advantage says so, not that a value model is missing */
    if (!rc && L->critic) rc = ckpt_get_attr_i64(k, "/state", "value_adam_step", &vstep);
    if (!rc) rc = ckpt_check_model_config(k, "/", &L->policy.cfg, "the policy");
    /* checkpoints from before /value's attributes: ckpt_get_buffer checks the tensor shapes */
    if (!rc && L->critic && ckpt_has_attr(k, "/value", "n_head")) rc = ckpt_check_model_config(k, "/value", &L->value.cfg, "the value model");
    Gpt m;
    if (!rc && !(rc = ckpt_get_model(k, &m))) {
        memcpy(L->policy.params, m.params, m.n_params * sizeof(float));
        gpt_free(&m);
    }
    rc = rc || ckpt_get_buffer(k, "optim/policy_m", &L->policy, L->popt.m) ||
         ckpt_get_buffer(k, "optim/policy_v", &L->policy, L->popt.v) ||
         (L->critic && ckpt_get_buffer(k, "value/params", &L->value, L->value.params)) ||
         (L->critic && (ckpt_get_buffer(k, "optim/value_m", &L->value, L->vopt.m) ||
                        ckpt_get_buffer(k, "optim/value_v", &L->value, L->vopt.v)));
    if (!rc) {
        L->iteration = iter;
        L->popt.step = pstep;
        L->vopt.step = vstep;
        if (learners != L->lay->n_learners)
            learner_log(L, "warning: resuming a %lld-learner run on %d learners: results will not be bit-identical",
                        (long long)learners, L->lay->n_learners);
    }
    config_free(saved);
    ckpt_close(k);
    return rc;
}

/* The leader, before anything in out_dir is read or written: refuses
 * inputs that are files the run writes there (runrec_check_inputs), creates
 * out_dir, takes its lock (one run at a time, fs_lock_dir) and checks the
 * settings record (runrec): a run with other settings is refused unless
 * overwrite=1, which removes the old run's checkpoints so that it starts
 * afresh. Then the record is written for this run. */
static int claim_out_dir(Learner *L, int *lock) {
    static const char *const outputs[] = {"final.h5", "value.h5", "metrics.h5", "rollouts.h5", NULL};
    if (runrec_check_inputs(L->out_dir, L->cfg, outputs, "ckpt-")) return -1;
    if (fs_mkdirs(L->out_dir) || (*lock = fs_lock_dir(L->out_dir)) < 0) return -1;
    Config *saved = config_new(ppo_config_tables, PPO_CONFIG_TABLES);
    int state = runrec_check(L->out_dir, "ppo", L->cfg, saved, ppo_runtime_keys);
    config_free(saved);
    if (state < 0 || (state == RUNREC_DIFFERS && !config_bool(L->cfg, "overwrite"))) return -1;
    if (state == RUNREC_DIFFERS) {
        learner_log(L, "overwrite = true: replacing the earlier run in %s", L->out_dir);
        if (fs_remove_numbered(L->out_dir, "ckpt-", 6)) return -1;
    }
    return runrec_write(L->out_dir, "ppo", L->cfg, ppo_runtime_keys);
}

/* ---- set-up --------------------------------------------------------------------------------- */

static AdamWConfig adam_of(const Config *c, const char *lr_key) {
    AdamWConfig a = adamw_default();
    a.lr = (float)config_float(c, lr_key);
    a.lr_min = a.lr;
    a.weight_decay = (float)config_float(c, "weight_decay");
    a.grad_clip = (float)config_float(c, "grad_clip");
    return a;
}

static int check_sizes(Learner *L) {
    int Ln = L->lay->n_learners, mb = config_int(L->cfg, "minibatch");
    if (L->B < 1 || L->chunk < 1 || L->B % L->chunk)
        return err_set("batch_size (%d) must be a positive multiple of chunk (%d)", L->B, L->chunk);
    if (L->n_chunks % Ln) return err_set("batch_size / chunk (%d) must be a multiple of the learner count (%d)", L->n_chunks, Ln);
    if (mb < Ln || mb % Ln || (L->B / Ln) % (mb / Ln))
        return err_set("minibatch (%d) must be a multiple of the learner count (%d) and divide batch_size (%d)", mb, Ln, L->B);
    if (L->has_ptx && config_int(L->cfg, "ptx_batch") < 1) return err_set("ptx_batch must be >= 1");
    if (config_int(L->cfg, "micro_batch") < 1) return err_set("micro_batch must be >= 1");
    if (config_int(L->cfg, "ppo_epochs") < 1) return err_set("ppo_epochs must be >= 1");
    return 0;
}

/* The critic of advantage = gae: value_init, or the reward model as
 * InstructGPT. The critic-free estimators allocate no value model. */
static int load_value_model(Learner *L, const Config *cfg) {
    const char *vinit = config_str(cfg, "value_init"), *rm = config_str(cfg, "reward_model");
    if (!*vinit && !*rm)
        return err_set("advantage = gae needs a value model: set value_init or reward_model (its initialisation)");
    /* the value model's messages name the key its file came from: with
     * value_init empty that is reward_model, not value_init */
    const char *vwhat = *vinit ? "the value model (value_init)" : "the value model (reward_model, as value_init is empty)";
    CkptWant vw = {.head = GPT_HEAD_SCALAR, .what = vwhat, .vocab = L->policy.cfg.vocab_size,
                   .min_ctx = L->policy.cfg.n_ctx, .tok = L->tok, .like = "the policy"};
    return ckpt_load_model_as(*vinit ? vinit : rm, &L->value, NULL, &vw);
}

/* The estimator, aggregation, clipping and KL-in-loss of the settings. */
static int algorithms_of(Learner *L, const Config *cfg) {
    double clip = config_float(cfg, "clip"), low = config_float(cfg, "clip_low"), high = config_float(cfg, "clip_high");
    L->adv = algos_advantage_find(config_str(cfg, "advantage"));
    L->agg = algos_agg_find(config_str(cfg, "loss_agg"));
    L->ploss = algos_policy_loss_find("ppo");
    if (!L->adv || !L->agg || !L->ploss) return -1;
    if (algos_clip(low < 0 ? clip : low, high < 0 ? clip : high, config_float(cfg, "dual_clip"), &L->clip)) return -1;
    L->kl_loss = !strcmp(config_str(cfg, "kl_in"), "loss");
    return kl_parse(config_str(cfg, "kl_estimator"), &L->kl_est);
}

static int learner_setup(Learner *L, const Config *cfg, const PpoLayout *lay) {
    memset(L, 0, sizeof *L);
    L->cfg = cfg;
    L->lay = lay;
    L->leader = lay->index == 0;
    L->seed = (uint64_t)config_int(cfg, "seed");
    L->iterations = config_int(cfg, "iterations");
    L->B = config_int(cfg, "batch_size");
    L->chunk = config_int(cfg, "chunk");
    L->G = config_int(cfg, "group_size");
    L->rounds = config_bool(cfg, "filter_groups") ? 1 + config_int(cfg, "max_fill_rounds") : 1;
    L->stride = (int64_t)L->B * L->rounds;
    L->n_chunks = L->chunk > 0 ? L->B / L->chunk : 0;
    L->lag = config_int(cfg, "max_policy_lag");
    L->kl_coef = config_float(cfg, "kl_coef");
    snprintf(L->out_dir, sizeof L->out_dir, "%s", config_str(cfg, "out_dir"));
    L->critic = !strcmp(config_str(cfg, "advantage"), "gae");
    CkptWant pw = {.head = GPT_HEAD_LM, .what = "the policy"};
    if (ckpt_load_model_as(config_str(cfg, "policy"), &L->policy, &L->tok, &pw)) return -1;
    L->policy.temperature = (float)config_float(cfg, "temperature"); /* the ratio of the distribution sampled */
    if (L->critic && load_value_model(L, cfg)) return -1;
    if (algorithms_of(L, cfg)) return -1;
    L->n_ctx = L->policy.cfg.n_ctx;
    L->max_new = config_int(cfg, "max_new");
    if (L->lag < 0) return err_set("max_policy_lag must be >= 0");
    if (L->max_new < 1 || L->iterations < 1) return err_set("max_new and iterations must be >= 1");
    if (ppo_prompts_load(&L->prompts, config_str(cfg, "prompts"), L->tok, L->n_ctx)) return -1;
    const char *ptx = config_str(cfg, "ptx_data");
    L->has_ptx = config_float(cfg, "ptx_coef") > 0;
    if (L->has_ptx && !*ptx) return err_set("ptx_coef > 0 needs ptx_data (a plain-text file)");
    if (L->has_ptx && data_load_text(&L->ptx, ptx, L->tok, L->n_ctx)) return -1;
    if (check_sizes(L)) return -1;
    AdamWConfig pa = adam_of(cfg, "lr"), va = adam_of(cfg, "value_lr");
    adamw_init(&L->popt, L->policy.n_params, &pa);
    if (L->critic) adamw_init(&L->vopt, L->value.n_params, &va);
    int rows = config_int(cfg, "micro_batch") > config_int(cfg, "ptx_batch") ? config_int(cfg, "micro_batch")
                                                                              : config_int(cfg, "ptx_batch");
    /* sized by settings: refused naming them when memory runs out (the rule in common/err.h) */
    size_t n = (size_t)rows * L->n_ctx;
    char size[32];
    L->tokens = malloc(n * sizeof(int));
    L->targets = malloc(n * sizeof(int));
    L->dlogp = malloc(n * sizeof(float));
    L->dent = malloc(n * sizeof(float));
    L->dval = malloc(n * sizeof(float));
    err_format_bytes((double)n * (2 * sizeof(int) + 3 * sizeof(float)), size, sizeof size);
    if (!L->tokens || !L->targets || !L->dlogp || !L->dent || !L->dval)
        return err_set("micro_batch or ptx_batch (%d) x n_ctx (%d): %s of buffers; out of memory", rows, L->n_ctx, size);
    err_format_bytes((double)L->B * sizeof(Sample), size, sizeof size);
    if (!(L->s = calloc((size_t)L->B, sizeof(Sample))))
        return err_set("batch_size (%d): %s of samples; out of memory", L->B, size);
    if (L->rounds > 1 && !(L->more = calloc((size_t)L->B * (size_t)(L->rounds - 1), sizeof(Sample))))
        return err_set("batch_size (%d) x max_fill_rounds (%d): out of memory", L->B, L->rounds - 1);
    return 0;
}

static void learner_free(Learner *L) {
    samples_free(L);
    dispatch_free(&L->d);
    free(L->s);
    free(L->more);
    free(L->tokens);
    free(L->targets);
    free(L->dlogp);
    free(L->dent);
    free(L->dval);
    score_batch_free(&L->policy_pass);
    adamw_free(&L->popt);
    adamw_free(&L->vopt);
    gpt_free(&L->policy);
    gpt_free(&L->value);
    if (L->has_ptx) data_free(&L->ptx);
    ppo_prompts_free(&L->prompts);
    tok_free(L->tok);
}

/* ---- one iteration ---------------------------------------------------------------------------- */

/* Other learners send their samples to the leader, which logs them all. */
static void send_log_rows(const Learner *L) {
    RolloutLogRow *rows = err_calloc((size_t)(L->n ? L->n : 1), sizeof *rows);
    for (int i = 0; i < L->n; i++) {
        const Sample *s = &L->s[i];
        rows[i] = (RolloutLogRow){.r = s->r, /* borrowed */
                                  .version = s->version,
                                  .actor = s->actor,
                                  .group = s->group,
                                  .lambda = s->lambda,
                                  .t_generate = s->t_generate,
                                  .t_score = s->t_score,
                                  .gold = s->gold,
                                  .values = s->values,
                                  .adv = s->adv};
    }
    MsgBuf b;
    msg_buf_init(&b);
    rollout_logrows_pack(rows, L->n, &b);
    msg_send(&b, 0, MSG_LOGROWS, L->lay->role_comm);
    msg_buf_free(&b);
    free(rows);
}

/* Learner k's rows as samples of other (whose s holds room for them). */
static void samples_of_rows(Learner *L, Learner *other, RolloutLogRow *rows, int n) {
    for (int i = 0; i < n; i++) {
        RolloutLogRow *w = &rows[i];
        if (w->r.prompt_index >= L->prompts.n)
            err_die("learner: log rows message: sample %d: prompt_index: %d of %d prompts", i, w->r.prompt_index,
                    L->prompts.n);
        RolloutBatch meta = {.version = w->version,
                             .actor = w->actor,
                             .lambda = w->lambda,
                             .t_generate = w->t_generate,
                             .t_score = w->t_score};
        Sample *s = &other->s[other->n++];
        sample_from(L, s, &w->r, &meta);
        s->gold = w->gold;
        s->group = w->group;
        memcpy(s->values, w->values, (size_t)s->r.resp_len * sizeof(float));
        memcpy(s->adv, w->adv, (size_t)s->r.resp_len * sizeof(float));
    }
}

static void recv_log_rows(Learner *L, int k) {
    MsgBuf b;
    RolloutLogRow *rows;
    int n;
    msg_buf_init(&b);
    msg_recv(&b, k, MSG_LOGROWS, L->lay->role_comm, NULL);
    if (rollout_logrows_unpack(&b, &rows, &n)) err_die("learner: from learner %d: %s", k, err_msg());
    msg_buf_free(&b);
    Learner other = *L; /* log_samples reads s/n only */
    other.s = err_calloc((size_t)(n > 0 ? n : 1), sizeof(Sample));
    other.n = 0;
    samples_of_rows(L, &other, rows, n);
    rollout_logrows_free(rows, n);
    log_samples(&other);
    samples_free(&other);
    free(other.s);
}

static void gather_logs(Learner *L) {
    if (!L->leader) {
        send_log_rows(L);
        return;
    }
    log_samples(L);
    for (int k = 1; k < L->lay->n_learners; k++) recv_log_rows(L, k);
}

enum { SUM_N, SUM_REWARD, SUM_RTHETA, SUM_KL, SUM_GOLD, SUM_GOLD_N, SUM_CORRECT, SUM_LEN, SUM_LAG, SUM_TGEN,
       SUM_TSCORE, SUM_GROUPS, SUM_DEAD, SUM_SCORE, SUM_VERIFIER, SUM_VCOMP, SUM_LAGMAX = SUM_VCOMP + ROLLOUT_VCOMPS,
       SUM_COUNT };

static void sample_sums(const Learner *L, int64_t it, double *sum) {
    memset(sum, 0, SUM_COUNT * sizeof(double));
    for (int i = 0; i < L->n; i++) {
        const Sample *s = &L->s[i];
        double total = 0;
        for (int k = 0; k < s->r.resp_len; k++) total += s->r.reward[k];
        sum[SUM_N]++;
        sum[SUM_REWARD] += total;
        sum[SUM_RTHETA] += s->r.r_theta;
        sum[SUM_SCORE] += s->r.score;
        sum[SUM_VERIFIER] += s->r.r_verifier; /* NaN without a verifier: so is the mean */
        for (int c = 0; c < ROLLOUT_VCOMPS; c++) sum[SUM_VCOMP + c] += s->r.v_comp[c];
        sum[SUM_KL] += s->r.kl_sum;
        if (!isnan(s->gold)) {
            sum[SUM_GOLD] += s->gold;
            sum[SUM_GOLD_N]++;
            sum[SUM_CORRECT] += s->correct;
        }
        sum[SUM_LEN] += s->r.resp_len;
        sum[SUM_LAG] += (double)(it - s->version);
        sum[SUM_LAGMAX] = fmax(sum[SUM_LAGMAX], (double)(it - s->version));
        sum[SUM_TGEN] += s->t_generate / L->chunk; /* per-batch times, counted once per batch */
        sum[SUM_TSCORE] += s->t_score / L->chunk;
    }
    sum[SUM_GROUPS] = L->fill.groups;
    sum[SUM_DEAD] = L->fill.dead;
}

/* Text with newlines and non-printable bytes escaped, for one-line output. */
static void put_escaped(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f || c >= 0x80) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
}

static void print_samples(const Learner *L) {
    int n = config_int(L->cfg, "log_samples");
    for (int i = 0; i < n && i < L->n; i++) {
        const Sample *s = &L->s[i];
        size_t len;
        char *text = tok_decode(L->tok, s->r.resp, s->r.resp_len, &len);
        const char *p = L->prompts.text[s->r.prompt_index];
        fputs("     ", stderr);
        put_escaped(stderr, p, strlen(p));
        fputs(" -> ", stderr);
        put_escaped(stderr, text ? text : "?", text ? len : 1);
        fprintf(stderr, "  [r_theta %.2f, gold %.2f]\n", s->r.r_theta, s->gold);
        free(text);
    }
}

/* Learner statistics summed over learner ranks (ST_RATIO_DEV: maximum). */
enum { ST_POLICY_LOSS, ST_VALUE_LOSS, ST_ENTROPY, ST_CLIPFRAC, ST_APPROX_KL, ST_RATIO_DEV, ST_PTX_LOSS, ST_CLIP_LOW,
       ST_CLIP_HIGH, ST_DUAL_CLIP, ST_KL_LOSS, ST_COUNT };

static void report(Learner *L, int64_t it, const Stats *st_in, double t_learn, double t_wait, double t_iter) {
    double sum[SUM_COUNT];
    double st[ST_COUNT] = {
        [ST_POLICY_LOSS] = st_in->policy_loss,
        [ST_VALUE_LOSS] = st_in->value_loss,
        [ST_ENTROPY] = st_in->entropy,
        [ST_CLIPFRAC] = st_in->clipfrac,
        [ST_APPROX_KL] = st_in->approx_kl,
        [ST_RATIO_DEV] = st_in->ratio_dev_first,
        [ST_PTX_LOSS] = st_in->ptx_loss,
        [ST_CLIP_LOW] = st_in->clipfrac_low,
        [ST_CLIP_HIGH] = st_in->clipfrac_high,
        [ST_DUAL_CLIP] = st_in->dual_clipfrac,
        [ST_KL_LOSS] = st_in->kl_loss,
    };
    sample_sums(L, it, sum);
    if (L->lay->n_learners > 1) {
        double lagmax = sum[SUM_LAGMAX];
        double rd = st[ST_RATIO_DEV];
        learners_allreduce(MPI_IN_PLACE, sum, SUM_COUNT, MPI_DOUBLE, MPI_SUM, L->lay->role_comm);
        learners_allreduce(MPI_IN_PLACE, st, ST_COUNT, MPI_DOUBLE, MPI_SUM, L->lay->role_comm);
        learners_allreduce(&lagmax, &sum[SUM_LAGMAX], 1, MPI_DOUBLE, MPI_MAX, L->lay->role_comm);
        learners_allreduce(&rd, &st[ST_RATIO_DEV], 1, MPI_DOUBLE, MPI_MAX, L->lay->role_comm);
        st[ST_PTX_LOSS] /= L->lay->n_learners;
    }
    if (!L->leader) return;
    double n = sum[SUM_N];
    double row[METRIC_COLS] = {
        [MET_ITERATION] = (double)it,
        [MET_VERSION] = (double)(it + 1),
        [MET_REWARD] = sum[SUM_REWARD] / n,
        [MET_R_THETA] = sum[SUM_RTHETA] / n,
        [MET_KL] = sum[SUM_KL] / n,
        [MET_LAMBDA] = L->kl_coef,
        [MET_GOLD] = sum[SUM_GOLD_N] ? sum[SUM_GOLD] / sum[SUM_GOLD_N] : NAN,
        [MET_CORRECT] = sum[SUM_GOLD_N] ? sum[SUM_CORRECT] / sum[SUM_GOLD_N] : NAN,
        [MET_LENGTH] = sum[SUM_LEN] / n,
        [MET_ENTROPY] = st[ST_ENTROPY],
        [MET_POLICY_LOSS] = st[ST_POLICY_LOSS],
        [MET_VALUE_LOSS] = st[ST_VALUE_LOSS],
        [MET_CLIPFRAC] = st[ST_CLIPFRAC],
        [MET_APPROX_KL] = st[ST_APPROX_KL],
        [MET_RATIO_DEV_FIRST] = st[ST_RATIO_DEV],
        [MET_LAG_MEAN] = sum[SUM_LAG] / n,
        [MET_LAG_MAX] = sum[SUM_LAGMAX],
        [MET_T_GENERATE] = sum[SUM_TGEN],
        [MET_T_SCORE] = sum[SUM_TSCORE],
        [MET_T_LEARN] = t_learn,
        [MET_T_WAIT] = t_wait,
        [MET_ROLLOUTS_PER_S] = n / t_iter,
        [MET_ELAPSED] = fs_now() - L->t_start,
        [MET_PTX_LOSS] = st[ST_PTX_LOSS],
        [MET_CLIPFRAC_LOW] = st[ST_CLIP_LOW],
        [MET_CLIPFRAC_HIGH] = st[ST_CLIP_HIGH],
        [MET_DUAL_CLIPFRAC] = st[ST_DUAL_CLIP],
        [MET_KL_LOSS] = st[ST_KL_LOSS],
        [MET_DEAD_GROUPS] = sum[SUM_GROUPS] ? sum[SUM_DEAD] / sum[SUM_GROUPS] : 0,
        [MET_FILL_ROUNDS] = L->fill.rounds,
        [MET_SCORE] = sum[SUM_SCORE] / n,
        [MET_R_VERIFIER] = sum[SUM_VERIFIER] / n,
        [MET_V_CORRECT] = sum[SUM_VCOMP + VERIFIER_CORRECT] / n,
        [MET_V_FORMAT] = sum[SUM_VCOMP + VERIFIER_FORMAT] / n,
        [MET_V_MANNERS] = sum[SUM_VCOMP + VERIFIER_MANNERS] / n,
        [MET_V_CONCISION] = sum[SUM_VCOMP + VERIFIER_CONCISION] / n,
    };
    for (int i = 0; i < METRIC_COLS; i++) h5log_set_f64(L->metrics, metric_names[i], row[i]);
    if (h5log_row_done(L->metrics)) err_die("%s", err_msg());
    fprintf(stderr,
            "ppo: it %lld/%lld v%lld | reward %.3f | r_theta %.3f | kl %.3f | lambda %.4f | gold %.3f | len %.1f | "
            "ent %.2f | |ratio-1| %.1e | gen %.2fs score %.2fs learn %.2fs wait %.2fs | %.1f rollouts/s\n",
            (long long)it + 1, (long long)L->iterations, (long long)it + 1, row[MET_REWARD], row[MET_R_THETA],
            row[MET_KL], row[MET_LAMBDA], row[MET_GOLD], row[MET_LENGTH], row[MET_ENTROPY], row[MET_RATIO_DEV_FIRST],
            row[MET_T_GENERATE], row[MET_T_SCORE], row[MET_T_LEARN], row[MET_T_WAIT], row[MET_ROLLOUTS_PER_S]);
    if (!isnan(row[MET_R_VERIFIER]))
        fprintf(stderr, "     verifier %.3f (correct %.3f) | score %.3f\n", row[MET_R_VERIFIER], row[MET_V_CORRECT],
                row[MET_SCORE]);
    if (L->G > 1) /* groups whose scores do not vary carry no signal for a group estimator */
        fprintf(stderr, "     groups: %.0f sampled, %.0f%% without variance\n", sum[SUM_GROUPS],
                100 * row[MET_DEAD_GROUPS]);
    if (L->fill.rounds) fprintf(stderr, "     filter_groups: %d fill round(s)\n", L->fill.rounds);
    print_samples(L);
}

/* KL controller: proportional update towards kl_target (fixed if target <= 0). */
static void update_kl(Learner *L) {
    double target = config_float(L->cfg, "kl_target");
    if (target <= 0) return;
    double sum[2] = {0, (double)L->n};
    for (int i = 0; i < L->n; i++) sum[0] += L->s[i].r.kl_sum;
    if (L->lay->n_learners > 1) learners_allreduce(MPI_IN_PLACE, sum, 2, MPI_DOUBLE, MPI_SUM, L->lay->role_comm);
    PpoKlController c;
    if (ppo_klctl_init(&c, L->kl_coef, target, config_float(L->cfg, "kl_horizon")) ||
        ppo_klctl_update(&c, sum[0] / sum[1], sum[1]))
        err_die("learner: %s", err_msg());
    L->kl_coef = c.value;
}

/* One iteration; 0, or why it was left before its update (RolloutAbandon). */
static int iterate(Learner *L, int64_t it) {
    double t0 = fs_now(), t_wait;
    int left = gather(L, it, &t_wait);
    if (!left) left = fill_groups(L, it, &t_wait);
    if (left) return left;
    double t1 = fs_now();
    advantages(L);
    Stats st;
    ppo_epochs(L, &st);
    double t_learn = fs_now() - t1;
    report(L, it, &st, t_learn, t_wait, fs_now() - t0);
    gather_logs(L);
    update_kl(L);
    samples_free(L);
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------------ */

static void write_final(Learner *L) {
    char path[1200];
    snprintf(path, sizeof path, "%s/final.h5", L->out_dir);
    if (write_ckpt(L, path, 1)) err_die("could not write %s: %s", path, err_msg());
    if (!L->critic) {
        learner_log(L, "done: %s/final.h5 (policy)", L->out_dir);
        return;
    }
    snprintf(path, sizeof path, "%s/value.h5", L->out_dir);
    if (ckpt_save_model(path, &L->value, L->tok, "value")) err_die_last();
    learner_log(L, "done: %s/final.h5 (policy), %s/value.h5", L->out_dir, L->out_dir);
}

/* Every learner: checkpoints the last complete iteration; a failure ends
 * the job with the leader's message. */
static void checkpoint_or_die(Learner *L) {
    if (!save_ckpt(L)) return;
    if (L->leader) err_die("ppo: checkpoint failed: %s", err_msg());
    for (;;) nanosleep(&(struct timespec){0, 10000000}, NULL); /* the leader's message and abort end us */
}

/* The signal any learner got (0: none). */
static int stop_signal_of_all(Learner *L) {
    int stop = *L->stop;
    if (L->lay->n_learners > 1) learners_allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, L->lay->role_comm);
    return stop;
}

/* Leaves iteration L->iteration before its update: the checkpoint is of the
 * last complete one. A rank past its second deadline ends the job (the
 * learner that found it says which); after a signal, returns 128 + it. */
static int leave(Learner *L, int reason) {
    int sig = stop_signal_of_all(L);
    checkpoint_or_die(L);
    char path[1200];
    ckpt_name(L, L->iteration, path, sizeof path);
    if (reason == ROLLOUT_ABANDON_DEADLINE) {
        if (*dispatch_why(&L->d))
            err_die("ppo: %s: ending the job; the last complete iteration (%lld) is in %s; run the same command "
                    "again to resume", dispatch_why(&L->d), (long long)L->iteration, path);
        for (;;) nanosleep(&(struct timespec){0, 10000000}, NULL); /* the learner that found it ends the job */
    }
    learner_log(L, "signal received: checkpoint at iteration %lld; run the same command again to resume (%s)",
                (long long)L->iteration, path);
    return 128 + (sig ? sig : SIGTERM);
}

/* Orders for the next iteration that may start (lag ahead), after the
 * snapshot of version L->iteration: on every learner the KL coefficient is
 * noted (an order's owner may rebuild it), on the leader the sends go out. */
static void send_work(Learner *L, int64_t first, int64_t last) {
    dispatch_note_kl(&L->d, L->iteration, L->kl_coef);
    if (!L->leader) return;
    dispatch_send_snapshot(&L->d, L->policy.params, L->policy.n_params, L->iteration);
    for (int64_t j = first; j <= last && j < L->iterations; j++) dispatch_send_orders(&L->d, j);
}

static void start_dispatch(Learner *L, volatile sig_atomic_t *stop_flag) {
    DispatchConfig dc = {.lay = L->lay,
                         .n_prompts = L->prompts.n,
                         .batch = L->B,
                         .chunk = L->chunk,
                         .lag = L->lag,
                         .max_new = L->max_new,
                         .n_ctx = L->n_ctx,
                         .group = L->G,
                         .rounds = L->rounds,
                         .seed = L->seed,
                         .rank_timeout = config_float(L->cfg, "rank_timeout"),
                         .start = L->iteration,
                         .bcast = !strcmp(config_str(L->cfg, "snapshot_send"), "bcast"),
                         .stop = stop_flag};
    if (dispatch_init(&L->d, &dc)) err_die("ppo: %s", err_msg());
}

/* Ends the other roles; a rank that does not stop ends the job instead
 * (MPI_Finalize would wait for it forever). */
static void end_roles(Learner *L, int rc) {
    if (!dispatch_shutdown(&L->d, rc != 0)) return;
    err_die_status(rc ? rc : 1, "ppo: %s: ending the job%s", err_msg(),
                   rc ? "" : " (the run itself is complete)");
}

int ppo_learner_run(const Config *cfg, const PpoLayout *lay, volatile sig_atomic_t *stop_flag) {
    static Learner learner;
    Learner *L = &learner;
    msg_check_all(learner_setup(L, cfg, lay), "ppo: ");
    L->stop = stop_flag;
    int lock = -1; /* out_dir/.lock, held by the leader until the end */
    if (L->leader && claim_out_dir(L, &lock)) err_die("ppo: %s", err_msg()); /* MPI_Abort: every rank ends */
    if (lay->n_learners > 1) { /* the others look for checkpoints only after the leader's claim */
        MPI_Request r;
        MPI_Ibarrier(lay->role_comm, &r);
        msg_wait(&r);
    }
    int64_t last = fs_latest_numbered(L->out_dir, "ckpt-");
    if (last >= 0 && resume(L, last)) err_die("cannot resume: %s", err_msg());
    if (last >= 0) learner_log(L, "resuming from %s/ckpt-%06lld.h5", L->out_dir, (long long)last);
    if (L->leader) open_logs(L, last >= 0 ? L->iteration : -1);
    char critic[96];
    if (L->critic) snprintf(critic, sizeof critic, "value model %zu", L->value.n_params);
    else snprintf(critic, sizeof critic, "no value model (advantage = %s)", L->adv->name);
    learner_log(L, "%d learner(s), %d rewarder(s), %d actor(s); %lld iterations of %d rollouts; policy %zu "
                "parameters, %s", lay->n_learners, lay->n_rewarders, lay->n_actors, (long long)L->iterations,
                L->B, L->policy.n_params, critic);
    L->t_start = fs_now();
    start_dispatch(L, stop_flag);
    if (L->iteration < L->iterations) send_work(L, L->iteration, L->iteration + L->lag);
    int rc = 0;
    while (L->iteration < L->iterations) {
        int64_t it = L->iteration;
        int left = iterate(L, it);
        if (left) {
            rc = leave(L, left);
            break;
        }
        L->iteration = it + 1;
        int more = L->iteration < L->iterations, stop = stop_signal_of_all(L);
        if (stop || L->iteration % config_int(cfg, "ckpt_every") == 0 || !more) checkpoint_or_die(L);
        if (stop && more) {
            learner_log(L, "signal received: checkpoint at iteration %lld; run the same command again to resume",
                        (long long)L->iteration);
            rc = 128 + stop;
            break;
        }
        if (more) send_work(L, it + 1 + L->lag, it + 1 + L->lag);
    }
    if (L->leader) {
        int64_t nb, np;
        dispatch_snapshot_counts(&L->d, &nb, &np);
        learner_log(L, "snapshots: %lld version(s) sent by broadcast, %lld point-to-point (snapshot_send = %s)",
                    (long long)nb, (long long)np, config_str(L->cfg, "snapshot_send"));
        if (!rc) write_final(L);
        int bad = h5log_close(L->rollouts);
        bad |= h5log_close(L->metrics); /* both closed, whichever fails */
        if (bad) err_die_status(rc ? rc : 1, "ppo: %s", err_msg());
    }
    end_roles(L, rc);
    fs_unlock_dir(lock);
    learner_free(L);
    return rc;
}
