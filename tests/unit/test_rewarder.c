/* Tests for the rewarder's mathematics (rewarder/kl.c, rewarder/rewarder.c):
 * the k1/k2/k3 per-token KL estimators (k3 with verl's clamps) and the reward
 * shaping r = -lambda * KL with the score on the last token, against the
 * torch fixture tests/fixtures/ppo-ref.h5 (groups kl/ and rewards/, float64,
 * written by tests/fixtures/make_ppo_fixture.py) and hand values; invariants
 * (k3 in [0, 10] and finite for q near p and far from it); the estimator
 * names against the choices of the kl_estimator key the rewarder parses; bad
 * input. The estimators' gradients (KL in the loss) are checked in
 * tests/unit/test_algos.c. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "common/mpi/ppo_config.h"
#include "common/rng.h"
#include "rewarder/rewarder.h"
#include "tests/harness.h"

/* arrays pass through float: agreement with torch to float rounding */
#define TOL_FLOAT 1e-6

/* ---- KL estimators ----------------------------------------------------- */

TEST(kl_estimators_match_torch) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    float *lp = harness_fixture_floats_or_empty(f, "kl/logp", &n),
          *lq = harness_fixture_floats_or_empty(f, "kl/logq", NULL);
    double *k1 = harness_fixture_doubles(f, "kl/k1", NULL), *k2 = harness_fixture_doubles(f, "kl/k2", NULL),
           *k3 = harness_fixture_doubles(f, "kl/k3", NULL);
    CHECK(n >= 8);
    if (k1 && k2 && k3) {
        float *out = malloc((n ? n : 1) * sizeof *out);
        double *dd = malloc((n ? n : 1) * sizeof *dd);
        CHECK(kl_tokens(KL_K1, n, lp, lq, out) == 0);
        harness_close_floats("k1 (tokens)", out, k1, NULL, n, TOL_FLOAT, 1e-9);
        CHECK(kl_tokens(KL_K2, n, lp, lq, out) == 0);
        harness_close_floats("k2 (tokens)", out, k2, NULL, n, TOL_FLOAT, 1e-9);
        CHECK(kl_tokens(KL_K3, n, lp, lq, out) == 0);
        harness_close_floats("k3 (tokens)", out, k3, NULL, n, TOL_FLOAT, 1e-9);
        for (size_t i = 0; i < n; i++) dd[i] = kl_estimate(KL_K3, lp[i], lq[i]);
        /* small values come from a cancellation in torch's formula; expm1 here */
        harness_close_doubles("k3", dd, k3, NULL, n, 1e-9, 1e-12);
        free(out);
        free(dd);
    }
    free(lp);
    free(lq);
    free(k1);
    free(k2);
    free(k3);
    H5Fclose(f);
}

TEST(kl_k3_is_never_negative) {
    /* exp(x) - 1 - x rounds below 0 for x near 0; the rewarder once ran that */
    Rng rng;
    rng_seed(&rng, 3);
    int ok = 1;
    for (int i = 0; i < 20000 && ok; i++) {
        double scale = i % 4 == 0 ? 1e-9 : i % 4 == 1 ? 1e-4 : i % 4 == 2 ? 1.0 : 30.0;
        double lp = -10 * rng_uniform_double(&rng), lq = lp + scale * rng_normal(&rng);
        double k = kl_estimate(KL_K3, lp, lq);
        ok = k >= 0 && k <= KL_K3_MAX && isfinite(k);
        if (!ok) CHECKF(0, "k3(%.17g, %.17g) = %g", lp, lq, k);
    }
    CHECK(kl_estimate(KL_K3, -1.5, -1.5) == 0 && kl_estimate(KL_K1, -1.5, -1.5) == 0);
    /* hand: p = 0.5, q = 0.25: k1 = log 2, k3 = (0.5 - 1) - log 0.5 = log 2 - 0.5 */
    CHECK_NEAR(kl_estimate(KL_K1, log(0.5), log(0.25)), log(2.0), 1e-15);
    CHECK_NEAR(kl_estimate(KL_K3, log(0.5), log(0.25)), log(2.0) - 0.5, 1e-15);
    /* k2 = (log 2)^2 / 2 either way round */
    CHECK_NEAR(kl_estimate(KL_K2, log(0.5), log(0.25)), 0.5 * log(2.0) * log(2.0), 1e-15);
    CHECK_NEAR(kl_estimate(KL_K2, log(0.25), log(0.5)), 0.5 * log(2.0) * log(2.0), 1e-15);
    /* k1 can be negative */
    CHECK(kl_estimate(KL_K1, log(0.25), log(0.5)) < 0);
    /* the clamps: q/p = e^3 gives e^3 - 4 = 16.1 -> 10; e^-30 gives 29 -> 10;
     * e^800 would overflow without the log-ratio clamp */
    CHECK(kl_estimate(KL_K3, -5.0, -2.0) == KL_K3_MAX);
    CHECK(kl_estimate(KL_K3, -1.0, -31.0) == KL_K3_MAX);
    CHECK(kl_estimate(KL_K3, -801.0, -1.0) == KL_K3_MAX);
    CHECK_NEAR(kl_estimate(KL_K3, -3.0, -1.0), exp(2.0) - 3.0, 1e-15); /* 4.39: below the clamp */
}

TEST(kl_names) {
    KlEstimator e = KL_K1;
    CHECK(kl_parse("k3", &e) == 0 && e == KL_K3);
    CHECK(kl_parse("k2", &e) == 0 && e == KL_K2);
    CHECK(kl_parse("k1", &e) == 0 && e == KL_K1);
    CHECK(!strcmp(kl_name(KL_K3), "k3") && !strcmp(kl_name(KL_K2), "k2"));
    CHECK(!strcmp(kl_name((KlEstimator)7), "?"));
    CHECK(kl_parse("k4", &e) == -1 && e == KL_K1);
    CHECKF(strstr(err_msg(), "'k4'") && strstr(err_msg(), "k1, k2 or k3"), "message: %s", err_msg());
    CHECK(kl_parse("K1", &e) == -1);
    CHECK(kl_parse(NULL, &e) == -1);
    float a = 0, b = 0, out;
    CHECK(kl_tokens((KlEstimator)9, 1, &a, &b, &out) == -1);
    CHECK(isnan(kl_estimate((KlEstimator)9, 0, 0)));
    CHECK(isnan(kl_grad((KlEstimator)9, 0, 0)));
}

TEST(kl_parses_every_kl_estimator_choice) {
    /* the config validates kl_estimator against its choices and the rewarder
     * parses the value: every choice must parse and name an estimator. k2 is
     * the learner's (KL in the loss) as well as the rewarder's; the key's
     * choices gain it with kl_in (issue 15), so only k1 and k3 are required */
    const CfgKey *k = ppo_keys;
    while (k->key && strcmp(k->key, "kl_estimator")) k++;
    CHECK(k->key && k->choices);
    if (!k->key || !k->choices) return;
    char choices[64];
    snprintf(choices, sizeof choices, "%s", k->choices);
    int seen = 0, n = 0;
    for (char *save = NULL, *c = strtok_r(choices, "|", &save); c; c = strtok_r(NULL, "|", &save)) {
        KlEstimator e;
        CHECKF(kl_parse(c, &e) == 0, "choice %s: %s", c, err_msg());
        CHECK(!strcmp(kl_name(e), c));
        seen |= 1 << e;
        n++;
    }
    CHECK(n >= 2 && (seen & (1 << KL_K1)) && (seen & (1 << KL_K3)));
    CHECK(!strcmp(k->def, "k1"));
}

/* ---- response rewards -------------------------------------------------- */

TEST(rewarder_shape_rewards_matches_torch) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    int cases = 0;
    for (int k = 0;; k++) {
        char g[64], name[96];
        snprintf(g, sizeof g, "rewards/case%d", k);
        if (H5Lexists(f, "rewards", H5P_DEFAULT) <= 0 || H5Lexists(f, g, H5P_DEFAULT) <= 0) break;
        cases++;
        size_t T = 0;
        snprintf(name, sizeof name, "%s/kl", g);
        float *kl = harness_fixture_floats_or_empty(f, name, &T);
        snprintf(name, sizeof name, "%s/rewards", g);
        double *want = harness_fixture_doubles(f, name, NULL);
        float *r = calloc(T ? T : 1, sizeof *r);
        CHECK(rewarder_shape_rewards((int)T, kl, harness_fixture_attr(f, g, "kl_coef"),
                                     harness_fixture_attr(f, g, "score"), harness_fixture_attr(f, g, "score_clip"),
                                     r) == 0);
        if (want) harness_close_floats(g, r, want, NULL, T, TOL_FLOAT, 1e-9);
        free(kl);
        free(want);
        free(r);
    }
    CHECK(cases >= 4);
    H5Fclose(f);
}

TEST(rewarder_shape_rewards_hand_and_bad_input) {
    const float kl[3] = {0.5f, -0.25f, 1.0f};
    float r[3];
    /* coef 0.1, score 7 clipped to 5: (-0.05, 0.025, -0.1 + 5) */
    CHECK(rewarder_shape_rewards(3, kl, 0.1, 7.0, 5.0, r) == 0);
    CHECK_NEAR(r[0], -0.05, 1e-7);
    CHECK_NEAR(r[1], 0.025, 1e-7);
    CHECK_NEAR(r[2], 4.9, 1e-6);
    /* the last token is rounded to float once: (2^24 + 1) - 0.75 rounds to
     * 2^24; rounding the score first (to 2^24), then the sum (2^24 - 0.75),
     * would give 2^24 - 1 */
    const float one = 1.0f;
    CHECK(rewarder_shape_rewards(1, &one, 0.75, 16777217.0, 0.0, r) == 0);
    CHECK(r[0] == 16777216.0f);
    /* no KL: only the score, unclipped */
    CHECK(rewarder_shape_rewards(3, NULL, 0.1, -7.0, 0.0, r) == 0);
    CHECK(r[0] == 0 && r[1] == 0 && r[2] == -7.0f);
    CHECK(rewarder_shape_rewards(0, kl, 0.1, 1.0, 0.0, r) == -1);
    CHECKF(strstr(err_msg(), "token") != NULL, "message: %s", err_msg());
    CHECK(rewarder_shape_rewards(3, kl, 0.1, NAN, 0.0, r) == -1);
    CHECKF(strstr(err_msg(), "score") != NULL, "message: %s", err_msg());
    CHECK(rewarder_shape_rewards(3, kl, 0.1, 1.0, -2.0, r) == -1);
    CHECK(rewarder_shape_rewards(3, kl, INFINITY, 1.0, 0.0, r) == -1);
}

/* DAPO's overlong shaping, by hand: max_new 16, buffer 4: lengths up to 12
 * go free, 13 loses penalty/4, 16 the whole penalty. */
TEST(rewarder_overlong_by_hand) {
    CHECK(rewarder_overlong(12, 16, 4, 1.0) == 0.0);
    CHECK(rewarder_overlong(0, 16, 4, 1.0) == 0.0);
    CHECK_NEAR(rewarder_overlong(13, 16, 4, 1.0), -0.25, 1e-15);
    CHECK_NEAR(rewarder_overlong(14, 16, 4, 2.0), -1.0, 1e-15);
    CHECK_NEAR(rewarder_overlong(16, 16, 4, 1.0), -1.0, 1e-15);
    CHECK(rewarder_overlong(16, 16, 0, 1.0) == 0.0); /* buffer 0: off */
    CHECK_NEAR(rewarder_overlong(16, 16, 16, 0.5), -0.5, 1e-15); /* the whole range */
    CHECK_NEAR(rewarder_overlong(1, 16, 16, 0.5), -0.5 / 16, 1e-15);
}

TEST(rewarder_combine_weights_the_terms_present) {
    RewarderScore rm = {.has_rm = 1, .r_theta = 0.5, .r_verifier = NAN, .overlong = 0};
    CHECK_NEAR(rewarder_combine(&rm, 2.0, 3.0), 1.0, 1e-15);
    RewarderScore v = {.has_verifier = 1, .r_theta = NAN, .r_verifier = 1.0, .overlong = -0.25};
    CHECK_NEAR(rewarder_combine(&v, 2.0, 3.0), 2.75, 1e-15);
    RewarderScore both = {.has_rm = 1, .r_theta = -0.5, .has_verifier = 1, .r_verifier = 1.0, .overlong = -1.0};
    CHECK_NEAR(rewarder_combine(&both, 1.0, 0.5), -1.0, 1e-15);
}
