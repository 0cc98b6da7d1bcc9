/* Tests for learner/ppo_math.c: GAE, whitening, the clipped policy and value
 * losses, the entropy bonus and the adaptive KL controller against the torch
 * fixture tests/fixtures/ppo-ref.h5 (float64, written by
 * tests/fixtures/make_ppo_fixture.py: closed-form GAE, TRL's formulas,
 * autograd gradients) and whitening of data with mean 1e4 and spread 1e-2
 * against the numpy fixture tests/fixtures/whiten-ref.h5
 * (make_whiten_fixture.py); a hand-computed 3-step GAE; central finite
 * differences; invariants (gradient -A at ratio 1, in-place GAE, the
 * data-parallel split of whitening and of the batched losses); and edge
 * cases and bad input (T = 1, everything masked, zero spread, bad
 * gamma/lambda/denominators). The KL estimators and reward shaping are the
 * rewarder's: tests/unit/test_rewarder.c. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "learner/ppo_math.h"
#include "tests/harness.h"

/* Per-element results are double all the way and agree with torch to
 * rounding; arrays pass through float. */
#define TOL_DOUBLE 1e-9
#define TOL_FLOAT 1e-6

static float *mask_floats(const double *mask, size_t n) {
    float *m = malloc((n ? n : 1) * sizeof *m);
    for (size_t i = 0; i < n; i++) m[i] = (float)mask[i];
    return m;
}

static double count_selected(const double *mask, size_t n) {
    double c = 0;
    for (size_t i = 0; i < n; i++) c += mask[i] != 0;
    return c;
}

/* ---- GAE --------------------------------------------------------------- */

TEST(ppo_gae_matches_torch) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    int cases = 0;
    for (int c = 0;; c++) {
        char g[64], name[256];
        snprintf(g, sizeof g, "gae/case%d", c);
        if (H5Lexists(f, g, H5P_DEFAULT) <= 0) break;
        cases++;
        double gamma = harness_fixture_attr(f, g, "gamma"), lambda = harness_fixture_attr(f, g, "lambda");
        double boot = harness_fixture_attr(f, g, "bootstrap");
        size_t T = 0;
        snprintf(name, sizeof name, "%s/rewards", g);
        float *r = harness_fixture_floats_or_empty(f, name, &T);
        snprintf(name, sizeof name, "%s/values", g);
        float *v = harness_fixture_floats_or_empty(f, name, NULL);
        snprintf(name, sizeof name, "%s/adv", g);
        double *want_adv = harness_fixture_doubles(f, name, NULL);
        snprintf(name, sizeof name, "%s/ret", g);
        double *want_ret = harness_fixture_doubles(f, name, NULL);
        float *adv = calloc(T, sizeof *adv), *ret = calloc(T, sizeof *ret);
        CHECK(ppo_gae((int)T, r, v, boot, gamma, lambda, adv, ret) == 0);
        snprintf(name, sizeof name, "%s adv (T=%zu gamma=%g lambda=%g bootstrap=%g)", g, T, gamma, lambda, boot);
        if (want_adv) harness_close_floats(name, adv, want_adv, NULL, T, TOL_FLOAT, 1e-9);
        snprintf(name, sizeof name, "%s ret", g);
        if (want_ret) harness_close_floats(name, ret, want_ret, NULL, T, TOL_FLOAT, 1e-9);

        /* in place: advantages over the rewards, returns over the values */
        CHECK(ppo_gae((int)T, r, v, boot, gamma, lambda, r, v) == 0);
        CHECK(!memcmp(r, adv, T * sizeof *r) && !memcmp(v, ret, T * sizeof *v));
        free(r), free(v), free(want_adv), free(want_ret), free(adv), free(ret);
    }
    CHECKF(cases >= 8, "only %d GAE cases in the fixture", cases);
    H5Fclose(f);
}

TEST(ppo_gae_hand_computed) {
    /* r = (0, 0, 1), V = (0.5, 0.6, 0.8), terminal (bootstrap 0),
     * gamma = 0.9, lambda = 0.5, so gamma*lambda = 0.45:
     *   delta_2 = 1 + 0.9*0   - 0.8 = 0.2
     *   delta_1 = 0 + 0.9*0.8 - 0.6 = 0.12
     *   delta_0 = 0 + 0.9*0.6 - 0.5 = 0.04
     *   A_2 = 0.2
     *   A_1 = 0.12 + 0.45*0.2   = 0.21
     *   A_0 = 0.04 + 0.45*0.21  = 0.1345
     *   R   = A + V = (0.6345, 0.81, 1.0)
     * The same trajectory cut off with bootstrap V(s_3) = 2 changes
     * delta_2 to 1 + 0.9*2 - 0.8 = 2.0, so A_2 = 2.0, A_1 = 0.12 + 0.9 = 1.02,
     * A_0 = 0.04 + 0.459 = 0.499. */
    const float r[3] = {0, 0, 1}, v[3] = {0.5f, 0.6f, 0.8f};
    float adv[3], ret[3];
    CHECK(ppo_gae(3, r, v, 0.0, 0.9, 0.5, adv, ret) == 0);
    CHECK_NEAR(adv[2], 0.2, 1e-6);
    CHECK_NEAR(adv[1], 0.21, 1e-6);
    CHECK_NEAR(adv[0], 0.1345, 1e-6);
    CHECK_NEAR(ret[0], 0.6345, 1e-6);
    CHECK_NEAR(ret[1], 0.81, 1e-6);
    CHECK_NEAR(ret[2], 1.0, 1e-6);
    CHECK(ppo_gae(3, r, v, 2.0, 0.9, 0.5, adv, NULL) == 0);
    CHECK_NEAR(adv[2], 2.0, 1e-6);
    CHECK_NEAR(adv[1], 1.02, 1e-6);
    CHECK_NEAR(adv[0], 0.499, 1e-6);
}

TEST(ppo_gae_edge_cases_and_bad_input) {
    /* T = 1: A = r + gamma * bootstrap - V, whatever lambda is */
    const float r = 2.5f, v = 1.0f;
    float adv, ret;
    CHECK(ppo_gae(1, &r, &v, 0.0, 1.0, 0.95, &adv, &ret) == 0);
    CHECK(adv == 1.5f && ret == 2.5f);
    CHECK(ppo_gae(1, &r, &v, 4.0, 0.5, 0.3, &adv, &ret) == 0);
    CHECK(adv == 3.5f && ret == 4.5f);
    /* T = 0: nothing to do, nothing written */
    adv = 7;
    CHECK(ppo_gae(0, &r, &v, 0.0, 1.0, 0.95, &adv, &ret) == 0);
    CHECK(adv == 7);
    /* lambda = 1, gamma = 1: returns are plain reward-to-go */
    const float rr[4] = {1, 2, 3, 4}, vv[4] = {9, -9, 0.5f, 3};
    float a4[4], r4[4];
    CHECK(ppo_gae(4, rr, vv, 0.0, 1.0, 1.0, a4, r4) == 0);
    CHECK(r4[0] == 10 && r4[1] == 9 && r4[2] == 7 && r4[3] == 4);

    CHECK(ppo_gae(1, &r, &v, 0.0, 1.5, 0.95, &adv, &ret) == -1);
    CHECKF(strstr(err_msg(), "gamma") != NULL, "message: %s", err_msg());
    CHECK(ppo_gae(1, &r, &v, 0.0, 0.99, -0.1, &adv, &ret) == -1);
    CHECKF(strstr(err_msg(), "lambda") != NULL, "message: %s", err_msg());
    CHECK(ppo_gae(1, &r, &v, 0.0, NAN, 0.95, &adv, &ret) == -1);
    CHECK(ppo_gae(1, &r, &v, INFINITY, 0.99, 0.95, &adv, &ret) == -1);
    CHECKF(strstr(err_msg(), "bootstrap") != NULL, "message: %s", err_msg());
    CHECK(ppo_gae(-1, &r, &v, 0.0, 0.99, 0.95, &adv, &ret) == -1);
}

/* ---- whitening ----------------------------------------------------------- */

TEST(ppo_whiten_matches_torch) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    float *x = harness_fixture_floats_or_empty(f, "whiten/x", &n);
    double *mask = harness_fixture_doubles(f, "whiten/mask", NULL);
    float *fmask = mask ? mask_floats(mask, n) : NULL;
    const char *names[4] = {"whiten/all_shift", "whiten/all_noshift", "whiten/masked_shift", "whiten/masked_noshift"};
    for (int k = 0; k < 4 && mask; k++) {
        int masked = k >= 2, shift = k % 2 == 0;
        double *want = harness_fixture_doubles(f, names[k], NULL);
        float *y = malloc(n * sizeof *y);
        memcpy(y, x, n * sizeof *y);
        CHECK(ppo_whiten(n, y, masked ? fmask : NULL, shift) == 0);
        if (want) harness_close_floats(names[k], y, want, masked ? mask : NULL, n, TOL_FLOAT, 1e-9);
        for (size_t i = 0; masked && i < n; i++)
            if (mask[i] == 0 && y[i] != 0) {
                CHECKF(0, "%s: masked entry %zu = %g, expected 0", names[k], i, y[i]);
                break;
            }
        free(want), free(y);
    }
    free(x), free(mask), free(fmask);
    H5Fclose(f);
}

/* The moments two "ranks" holding x[0..cut) and x[cut..n) agree on, the way
 * learner/ppo.c forms them: all-reduce (sum) count and sum, then each rank
 * adds its squared deviations about the global mean, all-reduce sq_dev. */
static PpoMoments split_moments(size_t n, size_t cut, const float *x, const float *mask) {
    PpoMoments a = {0}, b = {0};
    ppo_moments_add(&a, cut, x, mask);
    ppo_moments_add(&b, n - cut, x + cut, mask ? mask + cut : NULL);
    PpoMoments global = {.count = a.count + b.count, .sum = a.sum + b.sum, .sq_dev = 0};
    a = global;
    b = global;
    ppo_moments_add_sq_dev(&a, cut, x, mask);
    ppo_moments_add_sq_dev(&b, n - cut, x + cut, mask ? mask + cut : NULL);
    global.sq_dev = a.sq_dev + b.sq_dev;
    return global;
}

TEST(ppo_whiten_split_across_ranks_equals_whole) {
    /* Two "ranks" add their moments, all-reduce (sum the fields), whiten
     * their own halves: the result is the whole batch whitened at once. */
    Rng rng;
    rng_seed(&rng, 11);
    enum { N = 101, CUT = 37 };
    float x[N], whole[N], mask[N];
    for (int i = 0; i < N; i++) x[i] = 3 + 2 * rng_normal(&rng), mask[i] = (float)(i % 5 != 0);
    memcpy(whole, x, sizeof x);
    CHECK(ppo_whiten(N, whole, mask, 1) == 0);
    PpoMoments global = split_moments(N, CUT, x, mask);
    CHECK(ppo_whiten_with(CUT, x, mask, &global, 1) == 0);
    CHECK(ppo_whiten_with(N - CUT, x + CUT, mask + CUT, &global, 1) == 0);
    int same = 1;
    for (int i = 0; i < N; i++) same &= x[i] == whole[i];
    CHECK(same);
    /* and the whitened selection has mean 0 and unbiased variance ~1 */
    PpoMoments m = {0};
    ppo_moments_add(&m, N, whole, mask);
    ppo_moments_add_sq_dev(&m, N, whole, mask);
    CHECK_NEAR(ppo_moments_mean(&m), 0.0, 1e-6);
    CHECK_NEAR(ppo_moments_var(&m), 1.0, 1e-5);
}

TEST(ppo_whiten_large_mean_small_spread_matches_numpy) {
    /* mean 1e4, spread 1e-2: a one-pass variance loses ~1e-4 relative here
     * (checked: the old sum-of-squares formula fails this test) */
    hid_t f = harness_fixture_open("whiten-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    float *x = harness_fixture_floats_or_empty(f, "x", &n);
    double *mask = harness_fixture_doubles(f, "mask", NULL);
    double *want_all = harness_fixture_doubles(f, "all_shift", NULL),
           *want_masked = harness_fixture_doubles(f, "masked_shift", NULL);
    double *want_noshift = harness_fixture_doubles(f, "masked_noshift", NULL);
    double var_all = harness_fixture_attr(f, "/", "var_all"), mean_m = harness_fixture_attr(f, "/", "mean_masked");
    CHECK(n >= 1000);
    if (mask && want_all && want_masked && want_noshift && n) {
        float *fm = mask_floats(mask, n), *y = malloc(n * sizeof *y);
        PpoMoments m = {0};
        ppo_moments_add(&m, n, x, NULL);
        ppo_moments_add_sq_dev(&m, n, x, NULL);
        CHECKF(harness_close(ppo_moments_var(&m), var_all, 1e-9, 0), "var %.17g, numpy %.17g",
               ppo_moments_var(&m), var_all);
        memcpy(y, x, n * sizeof *y);
        CHECK(ppo_whiten(n, y, NULL, 1) == 0);
        harness_close_floats("all_shift", y, want_all, NULL, n, TOL_FLOAT, 1e-9);
        memcpy(y, x, n * sizeof *y);
        CHECK(ppo_whiten(n, y, fm, 1) == 0);
        harness_close_floats("masked_shift", y, want_masked, mask, n, TOL_FLOAT, 1e-9);
        memcpy(y, x, n * sizeof *y);
        CHECK(ppo_whiten(n, y, fm, 0) == 0);
        harness_close_floats("masked_noshift", y, want_noshift, mask, n, TOL_FLOAT, 1e-9);
        /* split over two ranks, as learner/ppo.c does it */
        PpoMoments g = split_moments(n, n / 3, x, fm);
        CHECK_NEAR(ppo_moments_mean(&g), mean_m, 1e-9);
        memcpy(y, x, n * sizeof *y);
        CHECK(ppo_whiten_with(n / 3, y, fm, &g, 1) == 0);
        CHECK(ppo_whiten_with(n - n / 3, y + n / 3, fm + n / 3, &g, 1) == 0);
        harness_close_floats("masked_shift (two ranks)", y, want_masked, mask, n, TOL_FLOAT, 1e-9);
        free(fm);
        free(y);
    }
    free(x);
    free(mask);
    free(want_all);
    free(want_masked);
    free(want_noshift);
    H5Fclose(f);
}

TEST(ppo_whiten_edge_cases) {
    /* zero spread: whitening gives exactly 0 (shift) or the mean (no shift) */
    float x[4] = {2.5f, 2.5f, 2.5f, 2.5f};
    CHECK(ppo_whiten(4, x, NULL, 1) == 0);
    CHECK(x[0] == 0 && x[1] == 0 && x[2] == 0 && x[3] == 0);
    float y[3] = {-1.25f, -1.25f, -1.25f};
    CHECK(ppo_whiten(3, y, NULL, 0) == 0);
    CHECK(y[0] == -1.25f && y[2] == -1.25f);
    /* everything masked: no moments, every entry zeroed, no error */
    float z[3] = {1, 2, 3}, none[3] = {0, 0, 0};
    CHECK(ppo_whiten(3, z, none, 1) == 0);
    CHECK(z[0] == 0 && z[1] == 0 && z[2] == 0);
    /* one selected value: no spread, whitens to 0 */
    float w[3] = {4, 5, 6}, one[3] = {0, 1, 0};
    CHECK(ppo_whiten(3, w, one, 1) == 0);
    CHECK(w[0] == 0 && w[1] == 0 && w[2] == 0);
    /* hand: {1, 3}: mean 2, unbiased var 2, so (x - 2)/sqrt(2 + 1e-8) */
    float h[2] = {1, 3};
    CHECK(ppo_whiten(2, h, NULL, 1) == 0);
    CHECK_NEAR(h[0], -1 / sqrt(2 + 1e-8), 1e-7);
    CHECK_NEAR(h[1], 1 / sqrt(2 + 1e-8), 1e-7);
    /* bad moments are refused */
    PpoMoments bad = {.count = 3, .sum = NAN, .sq_dev = 1};
    CHECK(ppo_whiten_with(2, h, NULL, &bad, 1) == -1);
    CHECKF(strstr(err_msg(), "moments") != NULL, "message: %s", err_msg());
    PpoMoments neg = {.count = -1, .sum = 0, .sq_dev = 0};
    CHECK(ppo_whiten_with(2, h, NULL, &neg, 1) == -1);
    neg = (PpoMoments){.count = 2, .sum = 0, .sq_dev = -1};
    CHECK(ppo_whiten_with(2, h, NULL, &neg, 1) == -1);
}

/* ---- policy loss ------------------------------------------------------------ */

TEST(ppo_policy_loss_matches_torch) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    double *logp = harness_fixture_doubles(f, "policy/logp", &n),
           *old = harness_fixture_doubles(f, "policy/old_logp", NULL);
    double *adv = harness_fixture_doubles(f, "policy/adv", NULL),
           *mask = harness_fixture_doubles(f, "policy/mask", NULL);
    double *loss = harness_fixture_doubles(f, "policy/loss", NULL),
           *d_logp = harness_fixture_doubles(f, "policy/d_logp", NULL);
    double *clipped = harness_fixture_doubles(f, "policy/clipped", NULL),
           *akl = harness_fixture_doubles(f, "policy/approx_kl", NULL);
    double *mean_d = harness_fixture_doubles(f, "policy/mean_d_logp", NULL);
    double clip = harness_fixture_attr(f, "policy", "clip");
    CHECK(n >= 12);
    if (logp && old && adv && mask && loss && d_logp && clipped && akl && mean_d && n) {
        double *l = malloc(n * sizeof *l), *d = malloc(n * sizeof *d), *c = malloc(n * sizeof *c),
               *k = malloc(n * sizeof *k);
        int n_clipped = 0;
        for (size_t i = 0; i < n; i++) {
            PpoPolicyStats s;
            l[i] = ppo_policy_loss(logp[i], old[i], adv[i], clip, &d[i], &s);
            c[i] = s.clip_frac, k[i] = s.approx_kl;
            n_clipped += s.clip_frac != 0;
        }
        CHECKF(n_clipped >= 3, "fixture clips only %d tokens", n_clipped);
        harness_close_doubles("policy loss", l, loss, NULL, n, TOL_DOUBLE, 1e-15);
        harness_close_doubles("policy d_logp", d, d_logp, NULL, n, TOL_DOUBLE, 1e-15);
        harness_close_doubles("policy clipped", c, clipped, NULL, n, 0, 0);
        harness_close_doubles("policy approx_kl", k, akl, NULL, n, 1e-7, 1e-15);

        float *fl = malloc(n * sizeof *fl), *fo = malloc(n * sizeof *fo), *fa = malloc(n * sizeof *fa);
        float *fm = mask_floats(mask, n), *g = malloc(n * sizeof *g);
        for (size_t i = 0; i < n; i++) fl[i] = (float)logp[i], fo[i] = (float)old[i], fa[i] = (float)adv[i];
        PpoPolicyStats s;
        double mean = ppo_policy_loss_batch(n, fl, fo, fa, fm, clip, count_selected(mask, n), g, &s);
        CHECK(harness_close(mean, harness_fixture_scalar(f, "policy/mean_loss"), TOL_DOUBLE, 1e-15));
        harness_close_floats("policy mean_d_logp", g, mean_d, NULL, n, TOL_FLOAT, 1e-9);
        CHECK(harness_close(s.clip_frac, harness_fixture_scalar(f, "policy/clip_frac"), TOL_DOUBLE, 0));
        CHECK(harness_close(s.approx_kl, harness_fixture_scalar(f, "policy/mean_approx_kl"), 1e-7, 0));
        CHECK(harness_close(s.ratio_dev_max, harness_fixture_scalar(f, "policy/ratio_dev_max"), TOL_DOUBLE, 0));
        free(l), free(d), free(c), free(k), free(fl), free(fo), free(fa), free(fm), free(g);
    }
    free(logp), free(old), free(adv), free(mask), free(loss), free(d_logp), free(clipped), free(akl), free(mean_d);
    H5Fclose(f);
}

TEST(ppo_policy_gradient_at_ratio_one_is_minus_advantage) {
    const double advs[] = {1.0, -1.0, 0.37, -123.5, 1e-8, 4096.0};
    for (size_t i = 0; i < sizeof advs / sizeof advs[0]; i++) {
        double d;
        PpoPolicyStats s;
        double l = ppo_policy_loss(-2.75, -2.75, advs[i], 0.2, &d, &s);
        CHECKF(d == -advs[i] && l == -advs[i], "A = %g: loss %g, gradient %g", advs[i], l, d);
        CHECK(s.clip_frac == 0 && s.approx_kl == 0 && s.ratio_dev_max == 0);
    }
}

static double policy_loss_at(double logp, double old, double adv, double clip) {
    return ppo_policy_loss(logp, old, adv, clip, NULL, NULL);
}

TEST(ppo_policy_and_value_match_finite_differences) {
    Rng rng;
    rng_seed(&rng, 5);
    const double h = 1e-6, clip = 0.2;
    int tested = 0;
    for (int t = 0; t < 400; t++) {
        double old = -5 * rng_uniform_double(&rng), logp = old + 1.2 * (rng_uniform_double(&rng) - 0.5);
        double adv = 3 * rng_normal(&rng), ratio = exp(logp - old);
        if (fabs(ratio - (1 + clip)) < 1e-3 || fabs(ratio - (1 - clip)) < 1e-3) continue; /* kinks */
        double d;
        ppo_policy_loss(logp, old, adv, clip, &d, NULL);
        double fd = (policy_loss_at(logp + h, old, adv, clip) - policy_loss_at(logp - h, old, adv, clip)) / (2 * h);
        if (!harness_close(d, fd, 1e-6, 1e-8)) {
            CHECKF(0, "policy: logp %g old %g adv %g: gradient %.12g, finite difference %.12g", logp, old, adv, d, fd);
            break;
        }
        tested++;
    }
    CHECKF(tested > 300, "only %d policy points away from the kinks", tested);
    tested = 0;
    for (int t = 0; t < 400; t++) {
        double v_old = 4 * rng_normal(&rng), v = v_old + rng_normal(&rng), ret = v_old + 2 * rng_normal(&rng);
        double clip_v = t % 2 ? 0.2 : 0.0;
        if (clip_v > 0 && fabs(fabs(v - v_old) - clip_v) < 1e-3) continue;
        double d;
        ppo_value_loss(v, v_old, ret, clip_v, &d, NULL);
        double fd = (ppo_value_loss(v + h, v_old, ret, clip_v, NULL, NULL) -
                     ppo_value_loss(v - h, v_old, ret, clip_v, NULL, NULL)) / (2 * h);
        if (!harness_close(d, fd, 1e-6, 1e-7)) {
            CHECKF(0, "value: v %g v_old %g ret %g clip %g: gradient %.12g, finite difference %.12g", v, v_old, ret,
                   clip_v, d, fd);
            break;
        }
        tested++;
    }
    CHECKF(tested > 300, "only %d value points away from the kinks", tested);
}

TEST(ppo_policy_hand_values_and_extremes) {
    double d;
    PpoPolicyStats s;
    /* ratio e^0.5 = 1.6487 > 1.2 with A = 2: clipped, loss -2*1.2, no gradient */
    CHECK_NEAR(ppo_policy_loss(0.5, 0.0, 2.0, 0.2, &d, &s), -2.4, 1e-12);
    CHECK(d == 0 && s.clip_frac == 1);
    CHECK_NEAR(s.approx_kl, exp(0.5) - 1 - 0.5, 1e-12);
    CHECK_NEAR(s.ratio_dev_max, exp(0.5) - 1, 1e-12);
    /* same ratio with A = -2: the unclipped term is larger, gradient -A*r */
    CHECK_NEAR(ppo_policy_loss(0.5, 0.0, -2.0, 0.2, &d, &s), 2 * exp(0.5), 1e-12);
    CHECK_NEAR(d, 2 * exp(0.5), 1e-12);
    CHECK(s.clip_frac == 0);
    /* ratio e^-1 < 0.8 with A = -1: clipped at 0.8 */
    CHECK_NEAR(ppo_policy_loss(-1.0, 0.0, -1.0, 0.2, &d, &s), 0.8, 1e-12);
    CHECK(d == 0 && s.clip_frac == 1);
    /* an overflowing ratio: finite when clipped, no NaN from 0 * inf */
    CHECK(ppo_policy_loss(1000.0, 0.0, 1.0, 0.2, &d, &s) == -1.2 && d == 0);
    CHECK(ppo_policy_loss(1000.0, 0.0, 0.0, 0.2, &d, &s) == 0 && d == 0);
    /* NaN in, NaN out (a trainer must see it) */
    CHECK(isnan(ppo_policy_loss(NAN, 0.0, 1.0, 0.2, &d, &s)) && isnan(d));
}

TEST(ppo_batched_losses_split_across_ranks) {
    /* Two ranks with the global denominator: the sums of their losses and
     * statistics equal one rank holding everything; gradients are identical. */
    Rng rng;
    rng_seed(&rng, 21);
    enum { N = 64, CUT = 23 };
    float lp[N], old[N], adv[N], mask[N], v[N], vo[N], ret[N], g1[N], g2[N], gv1[N], gv2[N];
    for (int i = 0; i < N; i++) {
        old[i] = -3 * rng_uniform(&rng), lp[i] = old[i] + 0.6f * rng_normal(&rng), adv[i] = rng_normal(&rng);
        vo[i] = rng_normal(&rng), v[i] = vo[i] + 0.5f * rng_normal(&rng), ret[i] = vo[i] + rng_normal(&rng);
        mask[i] = (float)(rng_uniform(&rng) < 0.8f);
    }
    double denom = 0;
    for (int i = 0; i < N; i++) denom += mask[i];
    PpoPolicyStats all, a, b;
    double l = ppo_policy_loss_batch(N, lp, old, adv, mask, 0.2, denom, g1, &all);
    double la = ppo_policy_loss_batch(CUT, lp, old, adv, mask, 0.2, denom, g2, &a);
    double lb = ppo_policy_loss_batch(N - CUT, lp + CUT, old + CUT, adv + CUT, mask + CUT, 0.2, denom, g2 + CUT, &b);
    CHECK_NEAR(la + lb, l, 1e-12);
    CHECK_NEAR(a.clip_frac + b.clip_frac, all.clip_frac, 1e-12);
    CHECK_NEAR(a.approx_kl + b.approx_kl, all.approx_kl, 1e-12);
    CHECK(fmax(a.ratio_dev_max, b.ratio_dev_max) == all.ratio_dev_max);
    CHECK(!memcmp(g1, g2, sizeof g1));
    CHECK(all.clip_frac > 0 && all.clip_frac < 1);
    double c_all, c_a, c_b;
    double vl = ppo_value_loss_batch(N, v, vo, ret, mask, 0.2, denom, gv1, &c_all);
    double va = ppo_value_loss_batch(CUT, v, vo, ret, mask, 0.2, denom, gv2, &c_a);
    double vb = ppo_value_loss_batch(N - CUT, v + CUT, vo + CUT, ret + CUT, mask + CUT, 0.2, denom, gv2 + CUT, &c_b);
    CHECK_NEAR(va + vb, vl, 1e-12);
    CHECK_NEAR(c_a + c_b, c_all, 1e-12);
    CHECK(!memcmp(gv1, gv2, sizeof gv1));
    /* masked tokens get no gradient */
    int masked_zero = 1;
    for (int i = 0; i < N; i++) masked_zero &= mask[i] != 0 || (g1[i] == 0 && gv1[i] == 0);
    CHECK(masked_zero);
}

TEST(ppo_batched_losses_refuse_bad_arguments) {
    float x[2] = {0, 0}, g[2];
    PpoPolicyStats s;
    double c;
    CHECK(isnan(ppo_policy_loss_batch(2, x, x, x, NULL, 0.2, 0.0, g, &s)));
    CHECKF(strstr(err_msg(), "denom") != NULL, "message: %s", err_msg());
    CHECK(isnan(s.clip_frac));
    CHECK(isnan(ppo_policy_loss_batch(2, x, x, x, NULL, -0.2, 2.0, g, &s)));
    CHECKF(strstr(err_msg(), "clip") != NULL, "message: %s", err_msg());
    CHECK(isnan(ppo_value_loss_batch(2, x, x, x, NULL, 0.2, NAN, g, &c)));
    CHECK(isnan(ppo_value_loss_batch(2, x, x, x, NULL, -1, 2.0, g, &c)));
    CHECKF(strstr(err_msg(), "clip") != NULL, "message: %s", err_msg());
    CHECK(isnan(ppo_entropy_loss_batch(2, x, NULL, 0.01, INFINITY, NULL)));
    /* every token masked with a positive global denom: zero loss, zero gradients */
    float none[2] = {0, 0};
    g[0] = g[1] = 5;
    CHECK(ppo_policy_loss_batch(2, x, x, x, none, 0.2, 10.0, g, &s) == 0 && g[0] == 0 && g[1] == 0);
    CHECK(s.clip_frac == 0 && s.approx_kl == 0 && s.ratio_dev_max == 0);
}

/* ---- value loss ------------------------------------------------------------- */

TEST(ppo_value_loss_matches_torch) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    double *v = harness_fixture_doubles(f, "value/v", &n), *vo = harness_fixture_doubles(f, "value/v_old", NULL);
    double *ret = harness_fixture_doubles(f, "value/ret", NULL), *mask = harness_fixture_doubles(f, "value/mask", NULL);
    const char *groups[2] = {"value/clip0.2", "value/clip0"};
    for (int k = 0; k < 2 && v && vo && ret && mask; k++) {
        char name[96];
        double clip = harness_fixture_attr(f, groups[k], "clip");
#define READ(var, ds)                                                                                                  \
    snprintf(name, sizeof name, "%s/" ds, groups[k]);                                                                  \
    double *var = harness_fixture_doubles(f, name, NULL)
        READ(loss, "loss");
        READ(d_v, "d_v");
        READ(clipped, "clipped");
        READ(mean_d, "mean_d_v");
#undef READ
        double *l = malloc(n * sizeof *l), *d = malloc(n * sizeof *d), *c = malloc(n * sizeof *c);
        int n_clipped = 0;
        for (size_t i = 0; i < n; i++) {
            int ci;
            l[i] = ppo_value_loss(v[i], vo[i], ret[i], clip, &d[i], &ci);
            c[i] = ci, n_clipped += ci;
        }
        CHECKF(clip == 0 ? n_clipped == 0 : n_clipped >= 3, "%s: %d clipped", groups[k], n_clipped);
        snprintf(name, sizeof name, "%s loss", groups[k]);
        if (loss) harness_close_doubles(name, l, loss, NULL, n, TOL_DOUBLE, 1e-15);
        snprintf(name, sizeof name, "%s d_v", groups[k]);
        if (d_v) harness_close_doubles(name, d, d_v, NULL, n, TOL_DOUBLE, 1e-15);
        snprintf(name, sizeof name, "%s clipped", groups[k]);
        if (clipped) harness_close_doubles(name, c, clipped, NULL, n, 0, 0);

        float *fv = malloc(n * sizeof *fv), *fo = malloc(n * sizeof *fo), *fr = malloc(n * sizeof *fr);
        float *fm = mask_floats(mask, n), *g = malloc(n * sizeof *g);
        for (size_t i = 0; i < n; i++) fv[i] = (float)v[i], fo[i] = (float)vo[i], fr[i] = (float)ret[i];
        double frac;
        double mean = ppo_value_loss_batch(n, fv, fo, fr, fm, clip, count_selected(mask, n), g, &frac);
        snprintf(name, sizeof name, "%s/mean_loss", groups[k]);
        CHECKF(harness_close(mean, harness_fixture_scalar(f, name), TOL_DOUBLE, 1e-15), "%s: %.17g", name, mean);
        snprintf(name, sizeof name, "%s/clip_frac", groups[k]);
        CHECKF(harness_close(frac, harness_fixture_scalar(f, name), TOL_DOUBLE, 0), "%s: %.17g", name, frac);
        snprintf(name, sizeof name, "%s mean_d_v", groups[k]);
        if (mean_d) harness_close_floats(name, g, mean_d, NULL, n, TOL_FLOAT, 1e-9);
        free(loss), free(d_v), free(clipped), free(mean_d), free(l), free(d), free(c);
        free(fv), free(fo), free(fr), free(fm), free(g);
    }
    free(v), free(vo), free(ret), free(mask);
    H5Fclose(f);
}

TEST(ppo_value_loss_hand_values) {
    double d;
    int c;
    /* v = 1.5, v_old = 1, ret = 3: vc = 1.2; unclipped (1.5-3)^2 = 2.25,
     * clipped (1.2-3)^2 = 3.24 is larger: loss 0.5*3.24 = 1.62, no gradient */
    CHECK_NEAR(ppo_value_loss(1.5, 1.0, 3.0, 0.2, &d, &c), 1.62, 1e-12);
    CHECK(d == 0 && c == 1);
    /* moving away from the return is never clipped: v = 1.5, ret = 0 */
    CHECK_NEAR(ppo_value_loss(1.5, 1.0, 0.0, 0.2, &d, &c), 1.125, 1e-12);
    CHECK(d == 1.5 && c == 0);
    /* clip 0 is off: v = 1.5, ret = 3, plain 0.5 * 2.25 */
    CHECK_NEAR(ppo_value_loss(1.5, 1.0, 3.0, 0.0, &d, &c), 1.125, 1e-12);
    CHECK(d == -1.5 && c == 0);
}

/* ---- entropy -------------------------------------------------------------------- */

TEST(ppo_entropy_bonus_matches_torch) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    size_t n = 0;
    float *h = harness_fixture_floats_or_empty(f, "entropy/h", &n);
    double *mask = harness_fixture_doubles(f, "entropy/mask", NULL),
           *d_h = harness_fixture_doubles(f, "entropy/d_h", NULL);
    double c2 = harness_fixture_attr(f, "entropy", "c2");
    if (mask && d_h) {
        float *fm = mask_floats(mask, n);
        double d;
        double l = ppo_entropy_loss_batch(n, h, fm, c2, count_selected(mask, n), &d);
        CHECK(harness_close(l, harness_fixture_scalar(f, "entropy/loss"), TOL_DOUBLE, 0));
        for (size_t i = 0; i < n; i++)
            if (mask[i] != 0) CHECK(harness_close(d, d_h[i], TOL_DOUBLE, 0));
        free(fm);
    }
    /* hand: H = (1, 2, 3) with c2 = 0.5 over denom 3: loss -1, dL/dH = -1/6 */
    const float hh[3] = {1, 2, 3};
    double d;
    CHECK_NEAR(ppo_entropy_loss_batch(3, hh, NULL, 0.5, 3, &d), -1.0, 1e-12);
    CHECK_NEAR(d, -0.5 / 3, 1e-15);
    free(h), free(mask), free(d_h);
    H5Fclose(f);
}

/* ---- adaptive KL controller -------------------------------------------------- */

TEST(ppo_kl_controller_matches_trl) {
    hid_t f = harness_fixture_open("ppo-ref.h5");
    if (f < 0) return;
    const char *groups[2] = {"klctl/adaptive", "klctl/fixed"};
    for (int k = 0; k < 2; k++) {
        char name[96];
        size_t n = 0;
        snprintf(name, sizeof name, "%s/kl", groups[k]);
        double *kl = harness_fixture_doubles(f, name, &n);
        snprintf(name, sizeof name, "%s/n_steps", groups[k]);
        double *steps = harness_fixture_doubles(f, name, NULL);
        snprintf(name, sizeof name, "%s/value", groups[k]);
        double *want = harness_fixture_doubles(f, name, NULL);
        PpoKlController c;
        CHECK(ppo_klctl_init(&c, harness_fixture_attr(f, groups[k], "init"),
                             harness_fixture_attr(f, groups[k], "target"),
                             harness_fixture_attr(f, groups[k], "horizon")) == 0);
        double *got = calloc(n ? n : 1, sizeof *got);
        for (size_t i = 0; kl && steps && i < n; i++) {
            CHECK(ppo_klctl_update(&c, kl[i], steps[i]) == 0);
            got[i] = c.value;
        }
        if (want) harness_close_doubles(groups[k], got, want, NULL, n, 1e-12, 0);
        free(kl), free(steps), free(want), free(got);
    }
    H5Fclose(f);
}

TEST(ppo_kl_controller_hand_and_bad_input) {
    PpoKlController c;
    CHECK(ppo_klctl_init(&c, 0.1, 6.0, 1000.0) == 0);
    /* KL 7.5 = 1.25 * target: error clipped to 0.2; 500 samples: * (1 + 0.1) */
    CHECK(ppo_klctl_update(&c, 7.5, 500) == 0);
    CHECK_NEAR(c.value, 0.11, 1e-15);
    /* KL 5.4 = 0.9 * target: error -0.1; 1000 samples: * 0.9 */
    CHECK(ppo_klctl_update(&c, 5.4, 1000) == 0);
    CHECK_NEAR(c.value, 0.099, 1e-15);
    /* a NaN KL is refused and leaves the coefficient alone */
    CHECK(ppo_klctl_update(&c, NAN, 100) == -1);
    CHECKF(strstr(err_msg(), "KL") != NULL, "message: %s", err_msg());
    CHECK_NEAR(c.value, 0.099, 1e-15);
    CHECK(ppo_klctl_update(&c, 1.0, -5) == -1);
    CHECK(ppo_klctl_init(&c, -0.1, 6, 1000) == -1);
    CHECKF(strstr(err_msg(), "kl_coef") != NULL, "message: %s", err_msg());
    CHECK(ppo_klctl_init(&c, 0.1, 6, 0) == -1);
    CHECKF(strstr(err_msg(), "kl_horizon") != NULL, "message: %s", err_msg());
    /* fixed: target 0, any horizon */
    CHECK(ppo_klctl_init(&c, 0.05, 0, 0) == 0);
    CHECK(ppo_klctl_update(&c, 50.0, 10000) == 0 && c.value == 0.05);
}
