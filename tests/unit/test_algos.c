/* Tests for learner/algos.c (critic-free advantages, loss aggregation, the
 * policy loss with clip-higher / dual-clip / log-ratio clamp, KL in the
 * loss) and the gradients of rewarder/kl.c, against the float64 reference
 * tests/fixtures/algos-ref.h5 (make_algos_fixture.py: numpy from the papers'
 * formulas, torch autograd for the gradients): every estimator on batches
 * with interleaved group ids, groups of equal rewards, G = 2, a group of one,
 * empty, truncated (masked) and partly masked responses, KL in the reward and
 * not, gamma 1 and 0.9; every loss_agg mode with policy + KL-in-loss
 * gradients; the three clip settings; k1/k2/k3 values and gradients beyond
 * the clamps. Then invariances: the summed gradient of a minibatch for
 * micro-batches of 4 and 8 and for 1 and 2 learners; the reinforce++
 * whitening on 2 learners (threads with a barrier reducer) equal to 1;
 * central finite differences in double; hand values and bad input. */
#include <hdf5.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "learner/algos.h"
#include "tests/harness.h"

/* per element: double all the way; arrays pass through float */
#define TOL_DOUBLE 1e-9
#define TOL_FLOAT 1e-6

static const char *const adv_names[] = {"gae", "grpo", "drgrpo", "rloo", "reinforce++", "reinforce++-baseline"};
static const char *const agg_names[] = {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"};

/* ---- an advantage case of the fixture ------------------------------------- */

typedef struct {
    int n, has_reward, whiten;
    size_t total;
    int *len, *group;
    double *score, gamma, lambda;
    float *reward, *mask, *values, *adv, *ret;
    AlgosSeq *s;
} AdvCase;

static void adv_case_bind(AdvCase *c) {
    size_t at = 0;
    for (int i = 0; i < c->n; i++) {
        c->s[i] = (AlgosSeq){.len = c->len[i], .group = c->group[i], .score = c->score[i],
                             .reward = c->has_reward ? c->reward + at : NULL, .values = c->values + at,
                             .mask = c->mask + at, .adv = c->adv + at, .ret = c->ret + at};
        at += (size_t)c->len[i];
    }
}

static int adv_case_load(hid_t f, const char *g, AdvCase *c) {
    char name[128];
    memset(c, 0, sizeof *c);
    size_t n = 0;
    snprintf(name, sizeof name, "%s/len", g);
    c->len = harness_fixture_ints(f, name, &n);
    snprintf(name, sizeof name, "%s/group", g);
    c->group = harness_fixture_ints(f, name, NULL);
    snprintf(name, sizeof name, "%s/score", g);
    c->score = harness_fixture_doubles(f, name, NULL);
    snprintf(name, sizeof name, "%s/reward", g);
    c->reward = harness_fixture_floats_or_empty(f, name, &c->total);
    snprintf(name, sizeof name, "%s/mask", g);
    c->mask = harness_fixture_floats_or_empty(f, name, NULL);
    snprintf(name, sizeof name, "%s/values", g);
    c->values = harness_fixture_floats_or_empty(f, name, NULL);
    if (!c->len || !c->group || !c->score) return -1;
    c->n = (int)n;
    c->gamma = harness_fixture_attr(f, g, "gamma");
    c->lambda = harness_fixture_attr(f, g, "lambda");
    c->whiten = harness_fixture_attr(f, g, "whiten_gae") != 0;
    c->has_reward = harness_fixture_attr(f, g, "has_reward") != 0;
    c->adv = calloc(c->total + 1, sizeof *c->adv);
    c->ret = calloc(c->total + 1, sizeof *c->ret);
    c->s = calloc((size_t)c->n + 1, sizeof *c->s);
    adv_case_bind(c);
    return 0;
}

static void adv_case_free(AdvCase *c) {
    free(c->len), free(c->group), free(c->score), free(c->reward), free(c->mask), free(c->values);
    free(c->adv), free(c->ret), free(c->s);
}

static AlgosAdvOpts adv_opts(const AdvCase *c) {
    return (AlgosAdvOpts){.gamma = c->gamma, .lambda = c->lambda, .eps = ALGOS_GRPO_EPS, .whiten = c->whiten};
}

/* One estimator on one case against the fixture. */
static void check_estimator(hid_t f, const char *g, AdvCase *c, const char *est) {
    char grp[128], name[160], what[200];
    snprintf(grp, sizeof grp, "%s/%s", g, est);
    const AlgosAdvantage *a = algos_advantage_find(est);
    CHECK(a != NULL);
    if (!a) return;
    AlgosAdvOpts o = adv_opts(c);
    memset(c->adv, 0x7f, c->total * sizeof *c->adv); /* junk: every token must be written */
    int rc = algos_advantage(a, &o, c->s, c->n);
    if (H5Aexists_by_name(f, grp, "refused", H5P_DEFAULT) > 0) {
        CHECKF(rc == -1, "%s: accepted a batch the reference refuses", grp);
        CHECK_ERR(est, "group", "at least 2");
        return;
    }
    CHECKF(rc == 0, "%s: %s", grp, err_msg());
    snprintf(name, sizeof name, "%s/adv", grp);
    double *want = harness_fixture_doubles(f, name, NULL);
    snprintf(what, sizeof what, "%s adv", grp);
    if (want) harness_close_floats(what, c->adv, want, NULL, c->total, TOL_FLOAT, TOL_FLOAT);
    free(want);
    snprintf(name, sizeof name, "%s/ret", grp);
    want = harness_fixture_doubles(f, name, NULL);
    snprintf(what, sizeof what, "%s ret", grp);
    if (want) harness_close_floats(what, c->ret, want, NULL, c->total, TOL_FLOAT, TOL_FLOAT);
    free(want);
    /* ret is optional and changes nothing else */
    float *first = malloc((c->total + 1) * sizeof *first);
    memcpy(first, c->adv, c->total * sizeof *first);
    for (int i = 0; i < c->n; i++) c->s[i].ret = NULL;
    CHECK(algos_advantage(a, &o, c->s, c->n) == 0);
    CHECKF(!memcmp(first, c->adv, c->total * sizeof *first), "%s: advantages differ without ret", grp);
    adv_case_bind(c);
    free(first);
}

TEST(algos_advantages_match_reference) {
    hid_t f = harness_fixture_open("algos-ref.h5");
    if (f < 0) return;
    int cases = 0;
    for (int k = 0;; k++) {
        char g[64];
        snprintf(g, sizeof g, "adv/case%d", k);
        if (H5Lexists(f, "adv", H5P_DEFAULT) <= 0 || H5Lexists(f, g, H5P_DEFAULT) <= 0) break;
        AdvCase c;
        if (adv_case_load(f, g, &c) == 0)
            for (size_t e = 0; e < sizeof adv_names / sizeof adv_names[0]; e++)
                check_estimator(f, g, &c, adv_names[e]);
        adv_case_free(&c);
        cases++;
    }
    CHECKF(cases >= 3, "only %d advantage cases", cases);
    H5Fclose(f);
}

/* ---- group edge cases by hand --------------------------------------------- */

/* n one-token responses of one group with these scores. */
static void one_token_group(int n, const double *scores, AlgosSeq *s, float *adv) {
    for (int i = 0; i < n; i++) s[i] = (AlgosSeq){.len = 1, .group = 3, .score = scores[i], .adv = &adv[i]};
}

TEST(algos_advantage_equal_rewards_give_exact_zeros) {
    /* (0.1 + 0.1 + 0.1) / 3 is 0.10000000000000002: a mean taken naively
     * leaves a 1e-17 residue which grpo divides by std (1e-17) + eps: 1e-11,
     * not 0 */
    const double third = 1.0 / 3.0, scores[7] = {0.1, 0.1, 0.1, third, third, third, third};
    AlgosSeq s[7];
    float adv[7];
    AlgosAdvOpts o = {.gamma = 1, .eps = ALGOS_GRPO_EPS};
    const char *names[] = {"grpo", "drgrpo", "rloo"};
    for (int e = 0; e < 3; e++) {
        one_token_group(3, scores, s, adv);
        one_token_group(4, scores + 3, s + 3, adv + 3);
        for (int i = 3; i < 7; i++) s[i].group = 8;
        CHECK(algos_advantage(algos_advantage_find(names[e]), &o, s, 7) == 0);
        for (int i = 0; i < 7; i++) CHECKF(adv[i] == 0, "%s: equal rewards give %g", names[e], adv[i]);
    }
}

TEST(algos_advantage_group_of_two_and_of_one) {
    const double scores[2] = {1.0, 0.0};
    AlgosSeq s[2];
    float adv[2];
    AlgosAdvOpts o = {.gamma = 1, .eps = ALGOS_GRPO_EPS};
    /* G = 2: mean 0.5, std sqrt(0.5): grpo +-0.5/0.7071, rloo +-1, drgrpo +-0.5 */
    one_token_group(2, scores, s, adv);
    CHECK(algos_advantage(algos_advantage_find("grpo"), &o, s, 2) == 0);
    CHECK_NEAR(adv[0], 0.5 / (sqrt(0.5) + 1e-6), 1e-6);
    CHECK_NEAR(adv[1], -0.5 / (sqrt(0.5) + 1e-6), 1e-6);
    CHECK(algos_advantage(algos_advantage_find("rloo"), &o, s, 2) == 0);
    CHECK(adv[0] == 1 && adv[1] == -1);
    CHECK(algos_advantage(algos_advantage_find("drgrpo"), &o, s, 2) == 0);
    CHECK(adv[0] == 0.5f && adv[1] == -0.5f);
    /* G = 1: its own baseline for grpo and drgrpo; rloo is undefined */
    one_token_group(1, scores, s, adv);
    CHECK(algos_advantage(algos_advantage_find("grpo"), &o, s, 1) == 0 && adv[0] == 0);
    CHECK(algos_advantage(algos_advantage_find("drgrpo"), &o, s, 1) == 0 && adv[0] == 0);
    CHECK(algos_advantage(algos_advantage_find("rloo"), &o, s, 1) == -1);
    CHECK_ERR("rloo: group 3 has 1 sample (sample 0)", "at least 2", "group_size");
    /* the empty response of a group is in its statistics, with no tokens */
    AlgosSeq e[3] = {{.len = 0, .group = 1, .score = 3.0},
                     {.len = 1, .group = 1, .score = 1.0, .adv = &adv[0]},
                     {.len = 1, .group = 1, .score = 2.0, .adv = &adv[1]}};
    CHECK(algos_advantage(algos_advantage_find("drgrpo"), &o, e, 3) == 0);
    CHECK(adv[0] == -1 && adv[1] == 0);
}

TEST(algos_advantage_masks_and_token_rewards) {
    /* a truncated response masked whole keeps its score in the group mean
     * and gets 0 everywhere; KL in the reward enters R through the sum */
    const float r0[3] = {-0.1f, -0.2f, 0.7f}, r1[2] = {0.0f, 0.0f}, m0[3] = {1, 0, 1}, m1[2] = {0, 0};
    float a0[3], a1[2];
    AlgosSeq s[2] = {{.len = 3, .group = 0, .score = 1.0, .reward = r0, .mask = m0, .adv = a0},
                     {.len = 2, .group = 0, .score = 0.0, .reward = r1, .mask = m1, .adv = a1}};
    AlgosAdvOpts o = {.gamma = 1, .eps = ALGOS_GRPO_EPS};
    CHECK(algos_advantage(algos_advantage_find("drgrpo"), &o, s, 2) == 0);
    /* R = (0.4, 0): mean 0.2 */
    CHECK_NEAR(a0[0], 0.2, 1e-7);
    CHECK(a0[1] == 0);
    CHECK_NEAR(a0[2], 0.2, 1e-7);
    CHECK(a1[0] == 0 && a1[1] == 0);
    /* reinforce++ on one valid token in the whole batch: not whitened */
    const float last[3] = {0, 0, 1};
    AlgosSeq t = {.len = 3, .group = 0, .score = 2.0, .mask = last, .adv = a0};
    CHECK(algos_advantage(algos_advantage_find("reinforce++"), &o, &t, 1) == 0);
    CHECK(a0[0] == 0 && a0[1] == 0 && a0[2] == 2.0f);
}

/* ---- whitening over two learners ------------------------------------------ */

typedef struct {
    pthread_barrier_t bar;
    double slot[2][8];
} TwoLearners;

typedef struct {
    TwoLearners *tl;
    int rank, rc, n;
    const AlgosAdvantage *a;
    AlgosAdvOpts o;
    AlgosSeq *s;
} Learner;

/* An all-reduce-sum between two threads: both add the slots in the same
 * order, so both get the same bits, as MPI gives every rank. */
static void two_reduce(double *x, int n, void *ctx) {
    Learner *l = ctx;
    memcpy(l->tl->slot[l->rank], x, (size_t)n * sizeof *x);
    pthread_barrier_wait(&l->tl->bar);
    for (int i = 0; i < n; i++) x[i] = l->tl->slot[0][i] + l->tl->slot[1][i];
    pthread_barrier_wait(&l->tl->bar); /* nobody writes a slot before both have read */
}

static void *learner_run(void *arg) {
    Learner *l = arg;
    l->rc = algos_advantage(l->a, &l->o, l->s, l->n);
    return NULL;
}

TEST(algos_reinforce_whitening_two_learners_equal_one) {
    hid_t f = harness_fixture_open("algos-ref.h5");
    if (f < 0) return;
    AdvCase c;
    if (adv_case_load(f, "adv/case0", &c)) {
        adv_case_free(&c);
        H5Fclose(f);
        return;
    }
    const char *names[] = {"reinforce++", "reinforce++-baseline", "gae"};
    for (int e = 0; e < 3; e++) {
        const AlgosAdvantage *a = algos_advantage_find(names[e]);
        AlgosAdvOpts o = adv_opts(&c);
        CHECK(algos_advantage(a, &o, c.s, c.n) == 0);
        float *one = malloc(c.total * sizeof *one);
        memcpy(one, c.adv, c.total * sizeof *one);
        memset(c.adv, 0, c.total * sizeof *c.adv);
        /* whole groups to each learner: even group ids to 0, odd to 1 */
        AlgosSeq part[2][32];
        Learner l[2];
        TwoLearners tl;
        pthread_barrier_init(&tl.bar, NULL, 2);
        for (int r = 0; r < 2; r++) l[r] = (Learner){.tl = &tl, .rank = r, .a = a, .o = o, .s = part[r]};
        for (int i = 0; i < c.n && i < 32; i++) {
            Learner *to = &l[c.s[i].group % 2];
            to->s[to->n++] = c.s[i];
        }
        CHECK(l[0].n > 0 && l[1].n > 0);
        pthread_t th[2];
        for (int r = 0; r < 2; r++) {
            l[r].o.reduce = two_reduce;
            l[r].o.reduce_ctx = &l[r];
            pthread_create(&th[r], NULL, learner_run, &l[r]);
        }
        for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
        pthread_barrier_destroy(&tl.bar);
        CHECK(l[0].rc == 0 && l[1].rc == 0);
        double *want = malloc(c.total * sizeof *want);
        for (size_t t = 0; t < c.total; t++) want[t] = one[t];
        harness_close_floats(names[e], c.adv, want, NULL, c.total, 1e-6, 1e-7);
        /* and the reducer matters: each learner whitening alone differs */
        for (int r = 0; r < 2; r++) {
            l[r].o.reduce = NULL;
            CHECK(algos_advantage(a, &l[r].o, l[r].s, l[r].n) == 0);
        }
        double diff = 0;
        for (size_t t = 0; t < c.total; t++) diff = fmax(diff, fabs(c.adv[t] - one[t]));
        CHECKF(diff > 1e-2, "%s: local whitening is as good as global (%g): the test cannot fail", names[e], diff);
        free(want);
        free(one);
    }
    adv_case_free(&c);
    H5Fclose(f);
}

/* ---- policy loss ---------------------------------------------------------- */

static void check_policy_setting(hid_t f, const char *set, const float *lp, const float *old, const float *adv,
                                 size_t n) {
    char g[64], name[96];
    snprintf(g, sizeof g, "policy/%s", set);
    PpoClip c;
    CHECK(algos_clip(harness_fixture_attr(f, g, "clip_low"), harness_fixture_attr(f, g, "clip_high"),
                     harness_fixture_attr(f, g, "dual_clip"), &c) == 0);
    const char *fields[] = {"loss", "d_logp", "clipped", "clipped_low", "clipped_high", "dual_clipped"};
    double *want[6], *got[6];
    for (int k = 0; k < 6; k++) {
        snprintf(name, sizeof name, "%s/%s", g, fields[k]);
        want[k] = harness_fixture_doubles(f, name, NULL);
        got[k] = calloc(n, sizeof *got[k]);
    }
    double *akl = harness_fixture_doubles(f, "policy/approx_kl", NULL), *gkl = calloc(n, sizeof *gkl);
    for (size_t i = 0; i < n; i++) {
        PpoPolicyStats s;
        got[0][i] = ppo_policy_loss_with(lp[i], old[i], adv[i], &c, &got[1][i], &s);
        got[2][i] = s.clip_frac;
        got[3][i] = s.clip_frac_low;
        got[4][i] = s.clip_frac_high;
        got[5][i] = s.dual_clip_frac;
        gkl[i] = s.approx_kl;
    }
    for (int k = 0; k < 6; k++) {
        snprintf(name, sizeof name, "%s %s", g, fields[k]);
        if (want[k]) harness_close_doubles(name, got[k], want[k], NULL, n, TOL_DOUBLE, 1e-12);
    }
    if (akl) harness_close_doubles("approx_kl", gkl, akl, NULL, n, 1e-9, 1e-13);
    /* the response-level function: weighted sums, gradients added */
    float *d = calloc(n, sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = 1.0f;
    AlgosTokens t = {.len = (int)n, .logp = lp, .old_logp = old, .adv = adv};
    AlgosSums sum = {0};
    double w = 0.25, loss = algos_policy_loss(algos_policy_loss_find("ppo"), &c, &t, w, d, &sum);
    double want_loss = 0, want_counts[4] = {0}, *want_d = calloc(n, sizeof *want_d);
    for (size_t i = 0; want[0] && want[1] && i < n; i++) {
        want_loss += w * want[0][i];
        want_d[i] = 1.0 + w * want[1][i];
        for (int k = 0; k < 4; k++) want_counts[k] += want[k + 2] ? want[k + 2][i] : 0;
    }
    CHECKF(harness_close(loss, want_loss, 1e-9, 1e-12) && loss == sum.loss, "%s: loss %.12g, reference %.12g", g,
           loss, want_loss);
    harness_close_floats(g, d, want_d, NULL, n, TOL_FLOAT, 1e-9);
    CHECK(sum.tokens == n && sum.clipped == want_counts[0] && sum.clipped_low == want_counts[1]);
    CHECK(sum.clipped_high == want_counts[2] && sum.dual_clipped == want_counts[3]);
    for (int k = 0; k < 6; k++) free(want[k]), free(got[k]);
    free(akl), free(gkl), free(d), free(want_d);
}

TEST(algos_policy_loss_matches_reference) {
    hid_t f = harness_fixture_open("algos-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    float *lp = harness_fixture_floats_or_empty(f, "policy/logp", &n);
    float *old = harness_fixture_floats_or_empty(f, "policy/old_logp", NULL);
    float *adv = harness_fixture_floats_or_empty(f, "policy/adv", NULL);
    CHECK(n >= 20);
    const char *sets[] = {"sym", "higher", "dual"};
    for (int k = 0; k < 3; k++) check_policy_setting(f, sets[k], lp, old, adv, n);
    free(lp), free(old), free(adv);
    H5Fclose(f);
}

TEST(algos_policy_loss_hand_values) {
    PpoClip c;
    double d;
    PpoPolicyStats s;
    CHECK(algos_clip(0.2, 0.28, 3.0, &c) == 0);
    /* clip-higher: ratio 1.25 with A = 1 passes 1 + 0.28 (0.2 would clip it) */
    CHECK_NEAR(ppo_policy_loss_with(log(1.25), 0, 1.0, &c, &d, &s), -1.25, 1e-12);
    CHECK_NEAR(d, -1.25, 1e-12);
    CHECK(s.clip_frac == 0);
    /* dual-clip: ratio 4 with A = -1 would lose 4; capped at 3, no gradient */
    CHECK_NEAR(ppo_policy_loss_with(log(4.0), 0, -1.0, &c, &d, &s), 3.0, 1e-12);
    CHECK(d == 0 && s.dual_clip_frac == 1 && s.clip_frac == 0);
    /* ratio 2.5 < 3: not capped, gradient -A * r */
    CHECK_NEAR(ppo_policy_loss_with(log(2.5), 0, -1.0, &c, &d, &s), 2.5, 1e-12);
    CHECK_NEAR(d, 2.5, 1e-12);
    CHECK(s.dual_clip_frac == 0);
    /* the clamp: a log ratio of 800 is e^20 for the loss, no gradient, no inf */
    CHECK_NEAR(ppo_policy_loss_with(800.0, 0, -1e-3, &c, &d, &s), 3e-3, 1e-15);
    CHECK(d == 0);
    c.dual = 0;
    CHECK_NEAR(ppo_policy_loss_with(800.0, 0, -1e-3, &c, &d, &s), 1e-3 * exp(20.0), 1e-6);
    CHECK(d == 0 && isfinite(s.ratio_dev_max) == 0); /* the statistic shows the raw ratio */
    /* symmetric settings are exactly ppo_policy_loss */
    PpoClip sym = {.low = 0.2, .high = 0.2, .dual = 0, .log_ratio_max = INFINITY};
    Rng rng;
    rng_seed(&rng, 11);
    int same = 1;
    for (int i = 0; i < 2000 && same; i++) {
        double lp = -3 * rng_uniform_double(&rng), old = lp + 0.6 * rng_normal(&rng), a = rng_normal(&rng), d1, d2;
        same = ppo_policy_loss_with(lp, old, a, &sym, &d1, NULL) == ppo_policy_loss(lp, old, a, 0.2, &d2, NULL) &&
               d1 == d2;
    }
    CHECK(same);
}

/* ---- KL in the loss ------------------------------------------------------- */

TEST(algos_kl_in_loss_matches_reference) {
    hid_t f = harness_fixture_open("algos-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    float *lp = harness_fixture_floats_or_empty(f, "kl/logp", &n);
    float *ref = harness_fixture_floats_or_empty(f, "kl/ref_logp", NULL);
    CHECK(n >= 10);
    const KlEstimator ests[3] = {KL_K1, KL_K2, KL_K3};
    float *mask = calloc(n + 1, sizeof *mask), *d = calloc(n + 1, sizeof *d);
    for (size_t i = 0; i < n; i++) mask[i] = i % 5 != 2;
    for (int e = 0; e < 3; e++) {
        char name[64];
        snprintf(name, sizeof name, "kl/%s/value", kl_name(ests[e]));
        double *val = harness_fixture_doubles(f, name, NULL);
        snprintf(name, sizeof name, "kl/%s/grad", kl_name(ests[e]));
        double *grad = harness_fixture_doubles(f, name, NULL);
        double *gv = calloc(n, sizeof *gv), *gg = calloc(n, sizeof *gg), *want_d = calloc(n, sizeof *want_d);
        double want = 0, coef = 0.3, w = 0.5;
        for (size_t i = 0; i < n; i++) {
            gv[i] = kl_estimate(ests[e], lp[i], ref[i]);
            gg[i] = kl_grad(ests[e], lp[i], ref[i]);
            d[i] = -1.0f;
        }
        if (val && grad) {
            harness_close_doubles(kl_name(ests[e]), gv, val, NULL, n, 1e-9, 1e-12);
            harness_close_doubles(name, gg, grad, NULL, n, 1e-9, 1e-12);
            for (size_t i = 0; i < n; i++) {
                want += mask[i] ? coef * w * val[i] : 0;
                want_d[i] = -1.0 + (mask[i] ? coef * w * grad[i] : 0);
            }
        }
        AlgosTokens t = {.len = (int)n, .logp = lp, .ref_logp = ref, .mask = mask};
        AlgosSums sum = {0};
        double got = algos_kl_loss(ests[e], coef, &t, w, d, &sum);
        CHECKF(harness_close(got, want, 1e-6, 1e-9) && got == sum.kl_loss, "%s: KL loss %.12g, reference %.12g",
               kl_name(ests[e]), got, want);
        harness_close_floats(name, d, want_d, NULL, n, TOL_FLOAT, 1e-9);
        free(val), free(grad), free(gv), free(gg), free(want_d);
    }
    free(lp), free(ref), free(mask), free(d);
    H5Fclose(f);
}

/* ---- loss aggregation ----------------------------------------------------- */

typedef struct {
    int S, D;
    size_t total;
    int *len;
    size_t *off;
    float *logp, *old, *ref, *adv, *mask, *x;
    double max_new, beta;
    PpoClip clip;
} AggCase;

static int agg_case_load(hid_t f, AggCase *c) {
    size_t S = 0, nx = 0;
    memset(c, 0, sizeof *c);
    c->len = harness_fixture_ints(f, "agg/len", &S);
    c->logp = harness_fixture_floats_or_empty(f, "agg/logp", &c->total);
    c->old = harness_fixture_floats_or_empty(f, "agg/old_logp", NULL);
    c->ref = harness_fixture_floats_or_empty(f, "agg/ref_logp", NULL);
    c->adv = harness_fixture_floats_or_empty(f, "agg/adv", NULL);
    c->mask = harness_fixture_floats_or_empty(f, "agg/mask", NULL);
    c->x = harness_fixture_floats_or_empty(f, "agg/x", &nx);
    c->S = (int)S;
    c->D = (int)harness_fixture_attr(f, "agg", "D");
    c->max_new = harness_fixture_attr(f, "agg", "max_new");
    c->beta = harness_fixture_attr(f, "agg", "beta");
    c->off = calloc(S + 1, sizeof *c->off);
    for (size_t i = 0; c->len && i < S; i++) c->off[i + 1] = c->off[i] + (size_t)c->len[i];
    if (!c->len || c->off[S] != c->total || nx != c->total * (size_t)c->D) return -1;
    return algos_clip(harness_fixture_attr(f, "agg", "clip_low"), harness_fixture_attr(f, "agg", "clip_high"),
                      harness_fixture_attr(f, "agg", "dual_clip"), &c->clip);
}

static void agg_case_free(AggCase *c) {
    free(c->len), free(c->off), free(c->logp), free(c->old), free(c->ref), free(c->adv), free(c->mask), free(c->x);
}

/* The normaliser of sequences [from, to), as one learner counts it. */
static AlgosAggNorm agg_count(const AggCase *c, int from, int to) {
    AlgosAggNorm g = {.max_new = c->max_new};
    for (int i = from; i < to; i++) algos_agg_count(&g, c->len[i], c->mask + c->off[i]);
    return g;
}

/* One micro-batch [from, to) as the learner runs it: policy + KL gradients
 * into a scratch array, then into the float parameter gradient theta as a
 * backward pass would. Returns the loss. */
static double agg_micro(const AggCase *c, const AlgosAgg *a, const AlgosAggNorm *g, int from, int to, float *d_all,
                        float *theta) {
    double loss = 0;
    for (int i = from; i < to; i++) {
        size_t o = c->off[i];
        float *d = d_all + o;
        memset(d, 0, (size_t)c->len[i] * sizeof *d);
        AlgosTokens t = {.len = c->len[i], .logp = c->logp + o, .old_logp = c->old + o, .ref_logp = c->ref + o,
                         .adv = c->adv + o, .mask = c->mask + o};
        double w = algos_agg_weight(a, g, c->len[i], t.mask);
        loss += algos_policy_loss(algos_policy_loss_find("ppo"), &c->clip, &t, w, d, NULL);
        loss += algos_kl_loss(KL_K3, c->beta, &t, w, d, NULL);
        for (int k = 0; k < c->len[i]; k++)
            for (int j = 0; j < c->D; j++) theta[j] += d[k] * c->x[(o + (size_t)k) * (size_t)c->D + (size_t)j];
    }
    return loss;
}

/* The minibatch on `learners` learners (consecutive halves), each in
 * micro-batches of `micro` sequences; the learners' counts summed as the
 * reducer would; theta summed over learners as the gradient all-reduce. */
static double agg_run(const AggCase *c, const AlgosAgg *a, int learners, int micro, float *d, float *theta) {
    int per = c->S / learners;
    AlgosAggNorm g = {.max_new = c->max_new};
    for (int r = 0; r < learners; r++) {
        AlgosAggNorm local = agg_count(c, r * per, (r + 1) * per);
        g.tokens += local.tokens;
        g.seqs += local.seqs;
    }
    double loss = 0;
    memset(theta, 0, (size_t)c->D * sizeof *theta);
    for (int r = 0; r < learners; r++) {
        float mine[16] = {0};
        for (int m = r * per; m < (r + 1) * per; m += micro) loss += agg_micro(c, a, &g, m, m + micro, d, mine);
        for (int j = 0; j < c->D; j++) theta[j] += mine[j];
    }
    return loss;
}

TEST(algos_loss_agg_matches_reference_for_any_split) {
    hid_t f = harness_fixture_open("algos-ref.h5");
    if (f < 0) return;
    AggCase c;
    if (agg_case_load(f, &c) || c.S != 16 || c.D > 16) {
        CHECKF(0, "agg fixture: %s", err_msg());
        agg_case_free(&c);
        H5Fclose(f);
        return;
    }
    float *d = calloc(c.total, sizeof *d), theta[16];
    double th[16];
    const int splits[4][2] = {{1, 16}, {1, 8}, {1, 4}, {2, 4}}; /* learners, micro-batch */
    for (int m = 0; m < 3; m++) {
        const AlgosAgg *a = algos_agg_find(agg_names[m]);
        char g[96], name[128];
        snprintf(g, sizeof g, "agg/%s", agg_names[m]);
        snprintf(name, sizeof name, "%s/d_logp", g);
        double *want_d = harness_fixture_doubles(f, name, NULL);
        snprintf(name, sizeof name, "%s/theta_grad", g);
        double *want_th = harness_fixture_doubles(f, name, NULL);
        snprintf(name, sizeof name, "%s/loss", g);
        double want_loss = harness_fixture_scalar(f, name);
        for (int s = 0; s < 4; s++) {
            double loss = agg_run(&c, a, splits[s][0], splits[s][1], d, theta);
            snprintf(name, sizeof name, "%s, %d learner(s), micro-batch %d", agg_names[m], splits[s][0],
                     splits[s][1]);
            CHECKF(harness_close(loss, want_loss, 1e-6, 1e-9), "%s: loss %.10g, reference %.10g", name, loss,
                   want_loss);
            if (want_d) harness_close_floats(name, d, want_d, NULL, c.total, TOL_FLOAT, 1e-9);
            if (want_th) harness_close_floats(name, theta, want_th, NULL, (size_t)c.D, 1e-5, 1e-7);
            for (int j = 0; j < c.D; j++) {
                if (s == 0) th[j] = theta[j];
                /* and between the splits, to float rounding of the sums */
                CHECKF(harness_close(theta[j], th[j], 1e-5, 1e-7), "%s: theta[%d] %.9g, 1 learner %.9g", name, j,
                       theta[j], th[j]);
            }
        }
        /* the data can tell: a micro-batch's own normaliser is another update */
        AlgosAggNorm local = agg_count(&c, 0, 4);
        double loc = agg_micro(&c, a, &local, 0, 4, d, theta), glob = 0;
        AlgosAggNorm all = agg_count(&c, 0, c.S);
        memset(theta, 0, sizeof theta);
        glob = agg_micro(&c, a, &all, 0, 4, d, theta);
        CHECKF(fabs(loc - glob) > 1e-3 * fabs(glob), "%s: local and global normalisers agree", agg_names[m]);
        free(want_d), free(want_th);
    }
    free(d);
    agg_case_free(&c);
    H5Fclose(f);
}

TEST(algos_loss_agg_weights_by_hand) {
    /* 3 responses over all learners: 4 valid of 5 tokens, 2, and a fully
     * masked one (not a sequence of the normaliser), max_new 8 */
    const float m0[5] = {1, 1, 0, 1, 1}, m2[3] = {0, 0, 0};
    AlgosAggNorm g = {.max_new = 8};
    algos_agg_count(&g, 5, m0);
    algos_agg_count(&g, 2, NULL);
    algos_agg_count(&g, 3, m2);
    algos_agg_count(&g, 0, NULL);
    CHECK(g.tokens == 6 && g.seqs == 2);
    CHECK(algos_agg_weight(algos_agg_find("token-mean"), &g, 5, m0) == 1.0 / 6);
    CHECK(algos_agg_weight(algos_agg_find("seq-mean-token-mean"), &g, 5, m0) == 1.0 / 8);
    CHECK(algos_agg_weight(algos_agg_find("seq-mean-token-mean"), &g, 2, NULL) == 1.0 / 4);
    CHECK(algos_agg_weight(algos_agg_find("seq-mean-token-sum-norm"), &g, 2, NULL) == 1.0 / 16);
    CHECK(algos_agg_weight(algos_agg_find("token-mean"), &g, 3, m2) == 0);
    /* the reducer sums counts, not the length limit */
    AlgosAggNorm two = g;
    algos_agg_reduce(&two, NULL, NULL);
    CHECK(two.tokens == 6 && two.seqs == 2 && two.max_new == 8);
}

/* ---- finite differences --------------------------------------------------- */

static int near_kink(double lr, const PpoClip *c) {
    double r = exp(lr);
    int at_clip = fabs(r - (1 - c->low)) < 1e-3 || fabs(r - (1 + c->high)) < 1e-3;
    int at_dual = c->dual > 0 && fabs(r - c->dual) < 1e-3;
    return at_clip || at_dual || fabs(fabs(lr) - c->log_ratio_max) < 1e-3;
}

TEST(algos_gradients_match_finite_differences) {
    Rng rng;
    rng_seed(&rng, 17);
    const double h = 1e-6;
    PpoClip cs[3];
    CHECK(algos_clip(0.2, 0.2, 0, &cs[0]) == 0 && algos_clip(0.2, 0.28, 0, &cs[1]) == 0 &&
          algos_clip(0.2, 0.28, 3.0, &cs[2]) == 0);
    int tested = 0, ok = 1;
    for (int t = 0; t < 1500 && ok; t++) {
        const PpoClip *c = &cs[t % 3];
        double old = -5 * rng_uniform_double(&rng), lr = t % 50 == 0 ? 25 * rng_normal(&rng) : 2.5 * rng_normal(&rng);
        double lp = old + lr, adv = 2 * rng_normal(&rng), d;
        if (near_kink(lp - old, c)) continue;
        ppo_policy_loss_with(lp, old, adv, c, &d, NULL);
        double fd = (ppo_policy_loss_with(lp + h, old, adv, c, NULL, NULL) -
                     ppo_policy_loss_with(lp - h, old, adv, c, NULL, NULL)) / (2 * h);
        ok = harness_close(d, fd, 1e-6, 1e-6 * (1 + fabs(adv) * exp(fmin(lr, 20))));
        if (!ok)
            CHECKF(0, "policy lr %g adv %g dual %g: gradient %.12g, finite difference %.12g", lr, adv, c->dual, d,
                   fd);
        tested++;
    }
    CHECKF(tested > 1200, "only %d policy points", tested);
    tested = 0;
    for (int t = 0; t < 900 && ok; t++) {
        KlEstimator e = (KlEstimator)(t % 3);
        double lp = -4 * rng_uniform_double(&rng), x = 6 * rng_normal(&rng), ref = lp + x;
        /* k3's kinks: |x| = 20 and k3 = 10 (x near 2.53 and -11) */
        double k = expm1(x) - x;
        if (e == KL_K3 && (fabs(k - 10) < 1e-2 || fabs(fabs(x) - 20) < 1e-3)) continue;
        double g = kl_grad(e, lp, ref);
        double fd = (kl_estimate(e, lp + h, ref) - kl_estimate(e, lp - h, ref)) / (2 * h);
        ok = harness_close(g, fd, 1e-6, 1e-7);
        if (!ok)
            CHECKF(0, "%s lp %g ref %g: gradient %.12g, finite difference %.12g", kl_name(e), lp, ref, g,
                   fd);
        tested++;
    }
    CHECKF(tested > 800, "only %d KL points", tested);
}

/* ---- names and bad input -------------------------------------------------- */

TEST(algos_tables_and_names) {
    CHECK(!strcmp(algos_advantage_names(), "gae|grpo|drgrpo|rloo|reinforce++|reinforce++-baseline"));
    CHECK(!strcmp(algos_agg_names(), "token-mean|seq-mean-token-mean|seq-mean-token-sum-norm"));
    CHECK(!strcmp(algos_policy_loss_names(), "ppo"));
    for (size_t e = 0; e < sizeof adv_names / sizeof adv_names[0]; e++) {
        const AlgosAdvantage *a = algos_advantage_find(adv_names[e]);
        CHECK(a && !strcmp(a->name, adv_names[e]));
        AlgosAdvOpts o = {.gamma = 1, .eps = ALGOS_GRPO_EPS, .whiten = 1};
        CHECK(a && algos_advantage(a, &o, NULL, 0) == 0); /* a learner with no samples */
    }
    CHECK(algos_advantage_find("gae")->needs_values && !algos_advantage_find("grpo")->needs_values);
    CHECK(algos_advantage_find("rloo")->min_group == 2 && algos_advantage_find("grpo")->min_group == 1);
    CHECK(algos_advantage_find("GRPO") == NULL);
    CHECK_ERR("unknown advantage estimator 'GRPO'", "gae|grpo|drgrpo|rloo|reinforce++|reinforce++-baseline");
    CHECK(algos_agg_find("token_mean") == NULL);
    CHECK_ERR("unknown loss_agg mode 'token_mean'", "token-mean|seq-mean-token-mean");
    CHECK(algos_policy_loss_find(NULL) == NULL);
    CHECK_ERR("unknown policy loss '(null)'", "ppo");
}

TEST(algos_bad_input) {
    PpoClip c;
    CHECK(algos_clip(1.0, 0.2, 0, &c) == -1);
    CHECK_ERR("clip_low must be in [0, 1)", "got 1");
    CHECK(algos_clip(0.2, -0.1, 0, &c) == -1);
    CHECK_ERR("clip_high must be >= 0", "got -0.1");
    CHECK(algos_clip(0.2, 0.2, 1.0, &c) == -1);
    CHECK_ERR("dual_clip must be 0 (off) or a finite number > 1", "got 1");
    CHECK(algos_clip(0.2, 0.2, NAN, &c) == -1);
    CHECK(algos_clip(0.2, 0.28, 0, &c) == 0);
    /* advantages */
    float adv[4];
    const float bad[2] = {0.5f, NAN};
    AlgosSeq s[2] = {{.len = 2, .group = 4, .score = 1, .adv = adv},
                     {.len = 2, .group = 4, .score = NAN, .adv = adv + 2}};
    AlgosAdvOpts o = {.gamma = 1, .eps = ALGOS_GRPO_EPS};
    CHECK(algos_advantage(algos_advantage_find("grpo"), &o, s, 2) == -1);
    CHECK_ERR("grpo: sample 1 (group 4)", "score is nan");
    s[1].score = 0;
    s[1].reward = bad;
    CHECK(algos_advantage(algos_advantage_find("reinforce++"), &o, s, 2) == -1);
    CHECK_ERR("reinforce++: sample 1 (group 4)", "reward of token 1 is nan");
    s[1].reward = NULL;
    CHECK(algos_advantage(algos_advantage_find("gae"), &o, s, 2) == -1);
    CHECK_ERR("gae: sample 0", "no values", "value model");
    o.gamma = 1.5;
    CHECK(algos_advantage(algos_advantage_find("reinforce++"), &o, s, 2) == -1);
    CHECK_ERR("reinforce++: gamma must be in [0, 1]", "got 1.5");
    o.gamma = 1;
    o.eps = -1;
    CHECK(algos_advantage(algos_advantage_find("grpo"), &o, s, 2) == -1);
    CHECK_ERR("grpo: eps must be >= 0", "got -1");
    o.eps = ALGOS_GRPO_EPS;
    s[0].len = -1;
    CHECK(algos_advantage(algos_advantage_find("drgrpo"), &o, s, 2) == -1);
    CHECK_ERR("drgrpo: sample 0", "length -1");
    s[0].len = 2;
    s[0].adv = NULL;
    CHECK(algos_advantage(algos_advantage_find("drgrpo"), &o, s, 2) == -1);
    CHECK_ERR("drgrpo: sample 0", "no advantage array");
    CHECK(algos_advantage(NULL, &o, s, 2) == -1);
    /* aggregation */
    AlgosAggNorm g = {.tokens = 3, .seqs = 1, .max_new = 4};
    CHECK(isnan(algos_agg_weight(algos_agg_find("token-mean"), &g, 5, NULL)));
    CHECK_ERR("loss_agg token-mean: the minibatch normaliser (3 tokens, 1 responses", "5 valid tokens");
    g.tokens = 10;
    CHECK(isnan(algos_agg_weight(algos_agg_find("seq-mean-token-sum-norm"), &g, 5, NULL)));
    CHECK_ERR("loss_agg seq-mean-token-sum-norm: a response of 5 tokens", "longer than max_new (4)");
    CHECK(algos_agg_weight(algos_agg_find("token-mean"), &g, 5, NULL) == 0.1); /* max_new is not its business */
    g.seqs = 0;
    CHECK(isnan(algos_agg_weight(algos_agg_find("seq-mean-token-mean"), &g, 5, NULL)));
    /* losses */
    float lp[2] = {-1, -2}, d[2] = {0, 0};
    AlgosTokens t = {.len = 2, .logp = lp, .old_logp = lp, .adv = lp};
    const AlgosPolicyLoss *p = algos_policy_loss_find("ppo");
    CHECK(isnan(algos_policy_loss(p, &c, &t, NAN, d, NULL)));
    CHECK_ERR("ppo: token weight must be >= 0 and finite", "got nan");
    CHECK(isnan(algos_policy_loss(p, &c, &t, 1, NULL, NULL)));
    CHECK_ERR("ppo: missing log-prob or gradient array", "");
    t.adv = NULL;
    CHECK(isnan(algos_policy_loss(p, &c, &t, 1, d, NULL)));
    CHECK_ERR("ppo: missing behaviour log-probs or advantages", "");
    c.dual = 0.5;
    t.adv = lp;
    CHECK(isnan(algos_policy_loss(p, &c, &t, 1, d, NULL)));
    CHECK_ERR("dual_clip must be 0 (off)", "got 0.5");
    CHECK(isnan(algos_kl_loss(KL_K3, 0.1, &t, 1, d, NULL)));
    CHECK_ERR("KL in the loss: no reference log-probs", "kl_in = loss");
    t.ref_logp = lp;
    CHECK(isnan(algos_kl_loss(KL_K3, -0.1, &t, 1, d, NULL)));
    CHECK_ERR("KL in the loss: coefficient must be >= 0 and finite", "got -0.1");
    CHECK(isnan(algos_kl_loss((KlEstimator)7, 0.1, &t, 1, d, NULL)));
    CHECK_ERR("KL in the loss: invalid estimator 7", "");
    CHECK(d[0] == 0 && d[1] == 0); /* nothing written by a refused call */
}
