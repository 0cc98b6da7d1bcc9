/* algos — critic-free advantage estimators, loss aggregation, policy loss and
 * KL in the loss; see algos.h. One table per kind; the per-token formulas
 * are ppo_math's and rewarder/kl's.
 *
 * Checked against verl core_algos.py, OpenRLHF (experience_maker.py,
 * loss.py, models/utils.py) and TRL grpo_trainer.py as of 2025-26. They
 * agree on the grpo, drgrpo and rloo formulas, the clip-higher and dual-clip
 * terms and the aggregation modes; where they part, and what is done here:
 *   - a group of one: verl takes mean 0, std 1 (grpo and rloo then pass the
 *     raw reward on); TRL refuses num_generations < 2; here it is its own
 *     baseline (grpo, drgrpo: 0) and rloo refuses it.
 *   - the std epsilon: verl 1e-6 (used here), OpenRLHF 1e-9, TRL 1e-4.
 *   - reinforce++-baseline: verl broadcasts R_i - mean R to every token, no
 *     returns; OpenRLHF (and this module) subtract the mean score, then take
 *     returns of the shaped token rewards. Equal without KL in the reward
 *     and with gamma = 1.
 *   - grpo with KL in the reward: OpenRLHF normalises the score, then adds
 *     the per-token KL and takes returns; verl and this module normalise R_i.
 *   - whitening: verl masked_whiten and ppo_math (x - mean) / sqrt(var +
 *     1e-8), unbiased variance; OpenRLHF the biased variance with
 *     rsqrt(max(var, 1e-8)).
 *   - masked tokens in returns: verl's mask marks tool-output tokens inside a
 *     response and skips them (no reward, no discount); here every response
 *     token is an action and the mask only says which ones train
 *     (mask_truncated), so returns run over all of them.
 *   - the sequences of seq-mean-token-sum-norm: verl counts those with a
 *     valid token (as here); TRL's dr_grpo every completion, masked or not.
 *   - dual-clip: verl always applies clip_ratio_c (default 3); OpenRLHF and
 *     this module only when set.
 *   - k3: verl clamps log(q/p) to [-20, 20] and k3 to [-10, 10] (here, in
 *     rewarder/kl.c), OpenRLHF k3 only, TRL not at all. */
#include "learner/algos.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static int selected(const float *mask, int t) {
    return !mask || mask[t] != 0;
}

static int valid_tokens(int len, const float *mask) {
    int n = 0;
    for (int t = 0; t < len; t++) n += selected(mask, t);
    return n;
}

static void reduce(const AlgosAdvOpts *o, double *x, int n) {
    if (o->reduce) o->reduce(x, n, o->reduce_ctx);
}

/* "a|b|c" from the names of a table's rows. Every row struct starts with its
 * name, so a row pointer is a pointer to it (C11 6.7.2.1p15). */
static const char *names_of(char *buf, size_t cap, const void *rows, size_t stride, size_t n) {
    if (buf[0]) return buf;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)rows + i * stride);
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? "|" : "", name);
    }
    return buf;
}

static const void *find_row(const char *what, const char *name, const void *rows, size_t stride, size_t n,
                            const char *names) {
    for (size_t i = 0; name && i < n; i++) {
        const void *row = (const char *)rows + i * stride;
        if (!strcmp(*(const char *const *)row, name)) return row;
    }
    err_set("unknown %s '%s' (expected one of %s)", what, name ? name : "(null)", names);
    return NULL;
}

/* ---- per-response pieces ---------------------------------------------------- */

/* Token t's reward: the shaped array, or the score alone on the last token. */
static double token_reward(const AlgosSeq *s, int t) {
    if (s->reward) return s->reward[t];
    return t == s->len - 1 ? s->score : 0.0;
}

/* R_i: the sum of the token rewards; the score when there are none. */
static double seq_return(const AlgosSeq *s) {
    if (!s->reward || s->len == 0) return s->score;
    double r = 0;
    for (int t = 0; t < s->len; t++) r += s->reward[t];
    return r;
}

static void broadcast(AlgosSeq *s, double a) {
    for (int t = 0; t < s->len; t++) {
        s->adv[t] = selected(s->mask, t) ? (float)a : 0.0f;
        if (s->ret) s->ret[t] = s->adv[t];
    }
}

static void zero_masked(AlgosSeq *s, int n) {
    for (int i = 0; i < n; i++)
        for (int t = 0; t < s[i].len; t++)
            if (!selected(s[i].mask, t)) s[i].adv[t] = 0;
}

/* ---- group statistics ------------------------------------------------------- */

typedef struct {
    double mean, std; /* std with n - 1; 0 for a group of one */
    int size;
} GroupStat;

/* Mean and std over the group of sample `first` (its first member) of the
 * values v. The mean is taken relative to that first member, so a group of
 * equal values has exactly that mean and exactly 0 deviations (sum / G need
 * not round back to the value); the deviations come in a second pass. */
static GroupStat group_stat(const AlgosSeq *s, const double *v, int n, int first) {
    double dev = 0, sq = 0;
    int size = 0;
    for (int j = first; j < n; j++)
        if (s[j].group == s[first].group) {
            dev += v[j] - v[first];
            size++;
        }
    double mean = v[first] + dev / size;
    for (int j = first; j < n; j++)
        if (s[j].group == s[first].group) sq += (v[j] - mean) * (v[j] - mean);
    return (GroupStat){.mean = mean, .std = size > 1 ? sqrt(sq / (size - 1)) : 0.0, .size = size};
}

/* Every sample's group statistics of value(sample). O(n * groups). */
static GroupStat *group_stats(const AlgosSeq *s, int n, double (*value)(const AlgosSeq *)) {
    GroupStat *st = err_calloc((size_t)(n ? n : 1), sizeof *st);
    double *v = err_malloc((size_t)(n ? n : 1) * sizeof *v);
    char *done = err_calloc((size_t)(n ? n : 1), 1);
    for (int i = 0; i < n; i++) v[i] = value(&s[i]);
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        GroupStat g = group_stat(s, v, n, i);
        for (int j = i; j < n; j++)
            if (s[j].group == s[i].group) {
                st[j] = g;
                done[j] = 1;
            }
    }
    free(done);
    free(v);
    return st;
}

/* ---- global whitening ------------------------------------------------------- */

/* ppo_math's two-pass whitening over every valid token of every learner's
 * responses, the moments summed through the reducer; masked tokens become
 * 0. Fewer than 2 valid tokens in the whole batch: left as they are (one
 * value has no spread), the same decision on every learner. */
static int whiten_global(const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    PpoMoments m = {0};
    for (int i = 0; i < n; i++) ppo_moments_add(&m, (size_t)s[i].len, s[i].adv, s[i].mask);
    double first[2] = {m.count, m.sum};
    reduce(o, first, 2);
    m.count = first[0];
    m.sum = first[1];
    if (m.count < 2) {
        zero_masked(s, n);
        return 0;
    }
    for (int i = 0; i < n; i++) ppo_moments_add_sq_dev(&m, (size_t)s[i].len, s[i].adv, s[i].mask);
    reduce(o, &m.sq_dev, 1);
    for (int i = 0; i < n; i++)
        if (ppo_whiten_with((size_t)s[i].len, s[i].adv, s[i].mask, &m, 1)) return -1;
    return 0;
}

/* ---- the estimators --------------------------------------------------------- */

/* The group estimators differ only in what they make of R - mean. */
typedef double (*GroupAdv)(double d, const GroupStat *g, const AlgosAdvOpts *o);

static int adv_group(const AlgosAdvOpts *o, AlgosSeq *s, int n, GroupAdv of) {
    GroupStat *st = group_stats(s, n, seq_return);
    for (int i = 0; i < n; i++) broadcast(&s[i], of(seq_return(&s[i]) - st[i].mean, &st[i], o));
    free(st);
    return 0;
}

/* DeepSeekMath GRPO: (R - mean) / (std + eps). */
static double of_grpo(double d, const GroupStat *g, const AlgosAdvOpts *o) {
    return d / (g->std + o->eps);
}

static int adv_grpo(const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    return adv_group(o, s, n, of_grpo);
}

/* Dr. GRPO: R - mean. */
static double of_drgrpo(double d, const GroupStat *g, const AlgosAdvOpts *o) {
    (void)g;
    (void)o;
    return d;
}

static int adv_drgrpo(const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    return adv_group(o, s, n, of_drgrpo);
}

/* RLOO: R minus the mean of the other G - 1, = G / (G - 1) * (R - mean);
 * groups of one are refused before (min_group). */
static double of_rloo(double d, const GroupStat *g, const AlgosAdvOpts *o) {
    (void)o;
    return d * g->size / (g->size - 1);
}

static int adv_rloo(const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    return adv_group(o, s, n, of_rloo);
}

/* Discounted returns of the token rewards, the baseline off the last token. */
static void returns_of(AlgosSeq *s, double gamma, double baseline) {
    double g = 0;
    for (int t = s->len - 1; t >= 0; t--) {
        double r = token_reward(s, t) - (t == s->len - 1 ? baseline : 0.0);
        g = r + gamma * g;
        s->adv[t] = (float)g;
        if (s->ret) s->ret[t] = (float)g;
    }
}

/* REINFORCE++: returns, then whitened over the global batch. */
static int adv_reinforce(const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    for (int i = 0; i < n; i++) returns_of(&s[i], o->gamma, 0.0);
    return whiten_global(o, s, n);
}

static double seq_score(const AlgosSeq *s) {
    return s->score;
}

/* REINFORCE++-baseline: the group's mean score off the last token first. */
static int adv_reinforce_baseline(const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    GroupStat *st = group_stats(s, n, seq_score);
    for (int i = 0; i < n; i++) returns_of(&s[i], o->gamma, st[i].mean);
    free(st);
    return whiten_global(o, s, n);
}

/* GAE with the value model (ppo_gae; terminal responses, bootstrap 0). */
static int adv_gae(const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    for (int i = 0; i < n; i++) {
        float *buf = s[i].reward ? NULL : err_calloc((size_t)(s[i].len ? s[i].len : 1), sizeof *buf);
        for (int t = 0; buf && t < s[i].len; t++) buf[t] = (float)token_reward(&s[i], t);
        const float *r = buf ? buf : s[i].reward;
        int rc = ppo_gae(s[i].len, r, s[i].values, 0.0, o->gamma, o->lambda, s[i].adv, s[i].ret);
        free(buf);
        if (rc) return -1;
    }
    if (o->whiten) return whiten_global(o, s, n);
    zero_masked(s, n);
    return 0;
}

static const AlgosAdvantage advantages[] = {
    {.name = "gae", .run = adv_gae, .needs_values = 1, .min_group = 1},
    {.name = "grpo", .run = adv_grpo, .needs_values = 0, .min_group = 1},
    {.name = "drgrpo", .run = adv_drgrpo, .needs_values = 0, .min_group = 1},
    {.name = "rloo", .run = adv_rloo, .needs_values = 0, .min_group = 2},
    {.name = "reinforce++", .run = adv_reinforce, .needs_values = 0, .min_group = 1},
    {.name = "reinforce++-baseline", .run = adv_reinforce_baseline, .needs_values = 0, .min_group = 1},
};
enum { N_ADVANTAGES = sizeof advantages / sizeof advantages[0] };

const char *algos_advantage_names(void) {
    static char buf[256];
    return names_of(buf, sizeof buf, advantages, sizeof advantages[0], N_ADVANTAGES);
}

const AlgosAdvantage *algos_advantage_find(const char *name) {
    return find_row("advantage estimator", name, advantages, sizeof advantages[0], N_ADVANTAGES,
                    algos_advantage_names());
}

/* ---- checks before an estimator runs: 0, or -1 and the error ------------------ */

static int adv_opts_check(const AlgosAdvantage *a, const AlgosAdvOpts *o) {
    if (!(o->gamma >= 0 && o->gamma <= 1)) return err_set("%s: gamma must be in [0, 1], got %g", a->name, o->gamma);
    if (!(o->lambda >= 0 && o->lambda <= 1))
        return err_set("%s: lambda must be in [0, 1], got %g", a->name, o->lambda);
    if (!(o->eps >= 0 && isfinite(o->eps)))
        return err_set("%s: eps must be >= 0 and finite, got %g", a->name, o->eps);
    return 0;
}

static int seq_check(const AlgosAdvantage *a, const AlgosSeq *s, int i) {
    if (s->len < 0) return err_set("%s: sample %d: length %d", a->name, i, s->len);
    if (!isfinite(s->score)) return err_set("%s: sample %d (group %d): score is %g", a->name, i, s->group, s->score);
    if (s->len == 0) return 0;
    if (!s->adv) return err_set("%s: sample %d: no advantage array", a->name, i);
    if (a->needs_values && !s->values)
        return err_set("%s: sample %d: no values (gae needs the value model)", a->name, i);
    for (int t = 0; s->reward && t < s->len; t++)
        if (!isfinite(s->reward[t]))
            return err_set("%s: sample %d (group %d): reward of token %d is %g", a->name, i, s->group, t,
                           s->reward[t]);
    return 0;
}

static int groups_check(const AlgosAdvantage *a, const AlgosSeq *s, int n) {
    if (a->min_group < 2) return 0;
    for (int i = 0; i < n; i++) {
        int size = 0;
        for (int j = 0; j < n; j++) size += s[j].group == s[i].group;
        if (size < a->min_group)
            return err_set("%s: group %d has %d sample%s (sample %d); the estimator needs at least %d per group "
                           "(group_size)", a->name, s[i].group, size, size == 1 ? "" : "s", i, a->min_group);
    }
    return 0;
}

int algos_advantage(const AlgosAdvantage *a, const AlgosAdvOpts *o, AlgosSeq *s, int n) {
    if (!a || !o || n < 0 || (n > 0 && !s)) return err_set("advantage: no estimator, options or samples");
    if (adv_opts_check(a, o)) return -1;
    for (int i = 0; i < n; i++)
        if (seq_check(a, &s[i], i)) return -1;
    if (groups_check(a, s, n)) return -1;
    return a->run(o, s, n);
}

/* ---- loss aggregation --------------------------------------------------------- */

static double w_token_mean(const AlgosAggNorm *g, double n) {
    (void)n;
    return 1.0 / g->tokens;
}

static double w_seq_mean_token_mean(const AlgosAggNorm *g, double n) {
    return 1.0 / (g->seqs * n);
}

static double w_seq_mean_token_sum_norm(const AlgosAggNorm *g, double n) {
    (void)n;
    return 1.0 / (g->seqs * g->max_new);
}

static const AlgosAgg aggs[] = {
    {.name = "token-mean", .weight = w_token_mean, .needs_max_new = 0},
    {.name = "seq-mean-token-mean", .weight = w_seq_mean_token_mean, .needs_max_new = 0},
    {.name = "seq-mean-token-sum-norm", .weight = w_seq_mean_token_sum_norm, .needs_max_new = 1},
};
enum { N_AGGS = sizeof aggs / sizeof aggs[0] };

const char *algos_agg_names(void) {
    static char buf[256];
    return names_of(buf, sizeof buf, aggs, sizeof aggs[0], N_AGGS);
}

const AlgosAgg *algos_agg_find(const char *name) {
    return find_row("loss_agg mode", name, aggs, sizeof aggs[0], N_AGGS, algos_agg_names());
}

void algos_agg_count(AlgosAggNorm *acc, int len, const float *mask) {
    int n = valid_tokens(len, mask);
    acc->tokens += n;
    acc->seqs += n > 0;
}

void algos_agg_reduce(AlgosAggNorm *g, AlgosReduce r, void *ctx) {
    double x[2] = {g->tokens, g->seqs};
    if (r) r(x, 2, ctx);
    g->tokens = x[0];
    g->seqs = x[1];
}

double algos_agg_weight(const AlgosAgg *a, const AlgosAggNorm *g, int len, const float *mask) {
    int n = valid_tokens(len, mask);
    if (n == 0) return 0.0;
    if (!(g->tokens >= n && g->seqs >= 1 && isfinite(g->tokens) && isfinite(g->seqs))) {
        err_set("loss_agg %s: the minibatch normaliser (%g tokens, %g responses over all learners) cannot hold a "
                "response with %d valid tokens",
                a->name, g->tokens, g->seqs, n);
        return NAN;
    }
    if (a->needs_max_new && !(g->max_new >= len && isfinite(g->max_new))) {
        err_set("loss_agg %s: a response of %d tokens is longer than max_new (%g)", a->name, len, g->max_new);
        return NAN;
    }
    return a->weight(g, n);
}

/* ---- policy loss ------------------------------------------------------------- */

static void sums_add(AlgosSums *sum, const PpoPolicyStats *ps) {
    sum->tokens += 1;
    sum->clipped += ps->clip_frac;
    sum->clipped_low += ps->clip_frac_low;
    sum->clipped_high += ps->clip_frac_high;
    sum->dual_clipped += ps->dual_clip_frac;
    sum->approx_kl += ps->approx_kl;
    sum->ratio_dev_max = fmax(sum->ratio_dev_max, ps->ratio_dev_max);
}

/* PPO's clipped surrogate with clip-higher and dual-clip, token by token. */
static double seq_ppo(const PpoClip *c, const AlgosTokens *t, double w, float *d_logp, AlgosSums *sum) {
    double loss = 0;
    for (int k = 0; k < t->len; k++) {
        if (!selected(t->mask, k)) continue;
        double d;
        PpoPolicyStats ps;
        loss += ppo_policy_loss_with(t->logp[k], t->old_logp[k], t->adv[k], c, &d, &ps);
        d_logp[k] = (float)(d_logp[k] + w * d);
        if (sum) sums_add(sum, &ps);
    }
    if (sum) sum->loss += w * loss;
    return w * loss;
}

static const AlgosPolicyLoss policy_losses[] = {
    {.name = "ppo", .seq = seq_ppo},
};
enum { N_POLICY_LOSSES = sizeof policy_losses / sizeof policy_losses[0] };

const char *algos_policy_loss_names(void) {
    static char buf[128];
    return names_of(buf, sizeof buf, policy_losses, sizeof policy_losses[0], N_POLICY_LOSSES);
}

const AlgosPolicyLoss *algos_policy_loss_find(const char *name) {
    return find_row("policy loss", name, policy_losses, sizeof policy_losses[0], N_POLICY_LOSSES,
                    algos_policy_loss_names());
}

int algos_clip(double clip_low, double clip_high, double dual_clip, PpoClip *c) {
    *c = (PpoClip){.low = clip_low, .high = clip_high, .dual = dual_clip, .log_ratio_max = ALGOS_LOG_RATIO_MAX};
    return ppo_clip_check(c);
}

static int tokens_check(const char *who, const AlgosTokens *t, double w, const float *d_logp, int want_ref) {
    if (!t || t->len < 0) return err_set("%s: no tokens", who);
    if (!(w >= 0 && isfinite(w))) return err_set("%s: token weight must be >= 0 and finite, got %g", who, w);
    if (t->len == 0) return 0;
    if (!t->logp || !d_logp) return err_set("%s: missing log-prob or gradient array", who);
    if (want_ref && !t->ref_logp)
        return err_set("%s: no reference log-probs (kl_in = loss needs the reference)", who);
    if (!want_ref && (!t->old_logp || !t->adv)) return err_set("%s: missing behaviour log-probs or advantages", who);
    return 0;
}

double algos_policy_loss(const AlgosPolicyLoss *p, const PpoClip *c, const AlgosTokens *t, double w,
                         float *d_logp, AlgosSums *sum) {
    if (!p || !c || ppo_clip_check(c) || tokens_check(p->name, t, w, d_logp, 0)) return NAN;
    return p->seq(c, t, w, d_logp, sum);
}

double algos_kl_loss(KlEstimator est, double coef, const AlgosTokens *t, double w, float *d_logp, AlgosSums *sum) {
    if (!strcmp(kl_name(est), "?")) {
        err_set("KL in the loss: invalid estimator %d", (int)est);
        return NAN;
    }
    if (!(coef >= 0 && isfinite(coef))) {
        err_set("KL in the loss: coefficient must be >= 0 and finite, got %g", coef);
        return NAN;
    }
    if (tokens_check("KL in the loss", t, w, d_logp, 1)) return NAN;
    double kl = 0, weighted = 0;
    for (int k = 0; k < t->len; k++) {
        if (!selected(t->mask, k)) continue;
        double v = kl_estimate(est, t->logp[k], t->ref_logp[k]);
        kl += v;
        weighted += w * v;
        d_logp[k] = (float)(d_logp[k] + coef * w * kl_grad(est, t->logp[k], t->ref_logp[k]));
    }
    if (sum) {
        sum->kl += kl;
        sum->kl_loss += coef * weighted;
    }
    return coef * weighted;
}
