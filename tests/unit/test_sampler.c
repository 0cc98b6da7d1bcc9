/* Tests for common/model/sampler.c: greedy, temperature, top-k, top-p
 * against hand-computed nuclei and a brute-force reference, log-probs,
 * reproducibility, config validation (its random source, common/rng.c, is
 * tested in test_rng.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "common/model/sampler.h"
#include "tests/harness.h"

/* ---- sampler: helpers --------------------------------------------------- */

static SamplerConfig config(float temperature, int top_k, float top_p) {
    SamplerConfig c = sampler_default();
    c.temperature = temperature;
    c.top_k = top_k;
    c.top_p = top_p;
    return c;
}

/* Pearson chi-square of counts against probabilities expect[0..n). */
static double chi_square(const int *counts, const double *expect, int n, int draws) {
    double chi = 0;
    for (int i = 0; i < n; i++) {
        double e = expect[i] * draws;
        chi += e > 0 ? (counts[i] - e) * (counts[i] - e) / e : (counts[i] ? 1e300 : 0);
    }
    return chi;
}

static void softmax_ref(const float *logits, int n, double temperature, double *p) {
    double max = logits[0], sum = 0;
    for (int i = 1; i < n; i++) max = fmax(max, logits[i]);
    for (int i = 0; i < n; i++) sum += p[i] = exp((logits[i] - max) / temperature);
    for (int i = 0; i < n; i++) p[i] /= sum;
}

/* ---- sampler: config ---------------------------------------------------- */

TEST(sampler_validate_rejects_bad_configs) {
    SamplerConfig c = sampler_default();
    CHECK(sampler_validate(&c) == 0);
    CHECK(c.temperature == 1 && c.top_k == 0 && c.top_p == 1 && !c.greedy);

    c = config(0, 0, 1);
    CHECK(sampler_validate(&c) == -1);
    CHECKF(strstr(err_msg(), "temperature") && strstr(err_msg(), "got 0"), "msg: %s", err_msg());
    c = config(-1, 0, 1);
    CHECK(sampler_validate(&c) == -1);
    c = config(NAN, 0, 1);
    CHECK(sampler_validate(&c) == -1);
    c = config(INFINITY, 0, 1);
    CHECK(sampler_validate(&c) == -1);
    c = config(0, 0, 1);
    c.greedy = 1; /* temperature is ignored when greedy */
    CHECK(sampler_validate(&c) == 0);

    c = config(1, -1, 1);
    CHECK(sampler_validate(&c) == -1);
    CHECKF(strstr(err_msg(), "top_k must be >= 0") && strstr(err_msg(), "got -1"), "msg: %s",
           err_msg());

    c = config(1, 0, 1.5f);
    CHECK(sampler_validate(&c) == -1);
    CHECKF(strcmp(err_msg(), "top_p must be in (0, 1], got 1.5") == 0, "msg: %s", err_msg());
    c = config(1, 0, 0);
    CHECK(sampler_validate(&c) == -1);
    CHECK(strstr(err_msg(), "top_p") != NULL);
    c = config(1, 0, NAN);
    CHECK(sampler_validate(&c) == -1);
    c = config(1, 0, 1e-6f);
    CHECK(sampler_validate(&c) == 0);

    /* sampler_sample refuses a bad config instead of sampling garbage. */
    Sampler s;
    sampler_init(&s, 4);
    Rng r;
    rng_seed(&r, 1);
    float logits[4] = {0, 1, 2, 3};
    c = config(1, 0, 2);
    CHECK(sampler_sample(&s, &c, logits, &r, NULL, NULL) == -1);
    CHECK(strstr(err_msg(), "top_p") != NULL);
    float bad[4] = {NAN, 1, 2, 3};
    c = sampler_default();
    CHECK(sampler_sample(&s, &c, bad, &r, NULL, NULL) == -1);
    float bad2[4] = {0, NAN, 2, 3};
    CHECK(sampler_sample(&s, &c, bad2, &r, NULL, NULL) == -1);
    CHECKF(strstr(err_msg(), "NaN") != NULL, "msg: %s", err_msg());
    sampler_free(&s);
}

/* ---- sampler: modes ----------------------------------------------------- */

TEST(sampler_greedy_is_argmax_lowest_id) {
    Sampler s;
    sampler_init(&s, 5);
    Rng r, before;
    rng_seed(&r, 3);
    before = r;
    SamplerConfig c = sampler_default();
    c.greedy = 1;
    float logits[5] = {1, 3, -2, 3, 2};
    float lps = 99, lpm = 99;
    CHECK(sampler_sample(&s, &c, logits, &r, &lps, &lpm) == 1);
    CHECK(lps == 0);
    /* log softmax at 3 of {1, 3, -2, 3, 2}, by hand. */
    double z = log(exp(1) + 2 * exp(3) + exp(-2) + exp(2));
    CHECK_NEAR(lpm, 3 - z, 1e-6);
    CHECK(memcmp(&r, &before, sizeof r) == 0); /* greedy draws nothing */
    float tie[5] = {-1, -1, -1, -1, -1};
    CHECK(sampler_sample(&s, &c, tie, &r, NULL, NULL) == 0);
    CHECK(sampler_sample(&s, &c, tie, &r, &lps, &lpm) == 0);
    CHECK_NEAR(lpm, -log(5.0), 1e-6);
    sampler_free(&s);
}

/* logits {0, 1, 2, 3}, top_k 2, temperature 0.5: tokens 3 and 2 remain with
 * scaled logits 6 and 4, so p(3) = 1/(1+e^-2) = 0.880797, log = -0.126928,
 * p(2) = e^-2/(1+e^-2), log = -2.126928. Under the raw model,
 * log p = l - log(1+e+e^2+e^3) = l - 3.440190. */
TEST(sampler_logp_hand_example) {
    Sampler s;
    sampler_init(&s, 4);
    Rng r;
    rng_seed(&r, 99);
    float logits[4] = {0, 1, 2, 3};
    SamplerConfig c = config(0.5f, 2, 1);
    int counts[4] = {0}, ok = 1;
    const int draws = 20000;
    for (int i = 0; i < draws; i++) {
        float lps, lpm;
        int t = sampler_sample(&s, &c, logits, &r, &lps, &lpm);
        if (t != 2 && t != 3) {
            ok = 0;
            continue;
        }
        counts[t]++;
        double want_s = t == 3 ? -0.1269280110 : -2.1269280110;
        double want_m = t == 3 ? -0.4401896986 : -1.4401896986;
        if (fabs(lps - want_s) > 1e-5 || fabs(lpm - want_m) > 1e-5) ok = 0;
    }
    CHECK(ok);
    CHECK_NEAR(counts[3] / (double)draws, 0.8807970780, 0.012);
    sampler_free(&s);
}

TEST(sampler_logp_model_stable_for_large_logits) {
    Sampler s;
    sampler_init(&s, 2);
    Rng r;
    rng_seed(&r, 1);
    float logits[2] = {1000, 999};
    SamplerConfig c = sampler_default();
    c.greedy = 1;
    float lpm;
    CHECK(sampler_sample(&s, &c, logits, &r, NULL, &lpm) == 0);
    CHECK_NEAR(lpm, -0.3132616875, 1e-5); /* -log(1 + e^-1) */
    c = sampler_default();
    for (int i = 0; i < 50; i++) {
        float lps;
        int t = sampler_sample(&s, &c, logits, &r, &lps, &lpm);
        CHECK(isfinite(lps) && isfinite(lpm));
        CHECK_NEAR(lps, t == 0 ? -0.3132616875 : -1.3132616875, 1e-5);
    }
    sampler_free(&s);
}

TEST(sampler_temperature_frequencies_match_softmax) {
    enum { V = 5 };
    float logits[V] = {0.3f, -1, 2, 0.5f, 1};
    const float temps[2] = {1.0f, 2.0f};
    Sampler s;
    sampler_init(&s, V);
    Rng r;
    rng_seed(&r, 2024);
    for (int k = 0; k < 2; k++) {
        SamplerConfig c = config(temps[k], 0, 1);
        double p[V];
        softmax_ref(logits, V, temps[k], p);
        int counts[V] = {0};
        const int draws = 200000;
        int lp_ok = 1;
        for (int i = 0; i < draws; i++) {
            float lps, lpm;
            int t = sampler_sample(&s, &c, logits, &r, &lps, &lpm);
            counts[t]++;
            if (fabs(lps - log(p[t])) > 1e-5) lp_ok = 0;
        }
        CHECK(lp_ok);
        /* 4 degrees of freedom: P(chi2 > 18.47) = 0.001. */
        double chi = chi_square(counts, p, V, draws);
        CHECKF(chi < 18.47, "T=%g: chi-square %g", temps[k], chi);
    }
    sampler_free(&s);
}

/* The full-vocabulary draw (temperature only) passes whole blocks of 256 by
 * their sums: it must pick the token a float64 inverse CDF over the same
 * weights (left in s.probs) picks for the same uniform: in the first block,
 * the middle, the tail past the last whole block and around whole blocks of
 * zero weight (-inf logits), for vocabularies shorter than a block, a few
 * blocks and GPT-2's. Draws whose target lies within 1e-12 of the total
 * from a boundary (the sums' rounding may go either way) are not judged. */
TEST(sampler_full_draw_matches_float64_inverse_cdf) {
    const int vocabs[3] = {100, 1000, 50257};
    Rng r, u;
    rng_seed(&r, 77);
    for (int k = 0; k < 3; k++) {
        int V = vocabs[k], judged = 0, wrong = 0, zero_drawn = 0;
        float *logits = malloc(sizeof *logits * V);
        for (int i = 0; i < V; i++) logits[i] = 2.0f * rng_normal(&r);
        int z0 = V < 512 ? V / 5 : 256, z1 = V < 512 ? V / 2 : 768; /* blocks 1 and 2 when there are */
        for (int i = z0; i < z1; i++) logits[i] = -INFINITY;
        logits[V - 1] = 6.0f; /* mass in the tail */
        Sampler s;
        sampler_init(&s, V);
        SamplerConfig c = config(1, 0, 1);
        for (int d = 0; d < 2000; d++) {
            u = r; /* the sampler's one uniform, read ahead from a copy */
            double un = rng_uniform(&u);
            int t = sampler_sample(&s, &c, logits, &r, NULL, NULL), want = -1;
            double total = 0, cum = 0, margin = INFINITY;
            for (int i = 0; i < V; i++) total += s.probs[i];
            double target = un * total;
            for (int i = 0; i < V; i++) {
                if (s.probs[i] <= 0) continue;
                margin = fmin(margin, fabs(cum - target));
                cum += s.probs[i];
                if (want < 0 && target < cum) want = i;
            }
            margin = fmin(margin, fabs(cum - target));
            zero_drawn += t >= z0 && t < z1;
            if (margin < 1e-12 * total) continue;
            judged++;
            wrong += t != want;
        }
        CHECKF(wrong == 0 && zero_drawn == 0 && judged > 1990, "V=%d: %d of %d draws differ from the inverse CDF, %d of weight 0",
               V, wrong, judged, zero_drawn);
        sampler_free(&s);
        free(logits);
    }
}

TEST(sampler_low_temperature_is_greedy) {
    enum { V = 64 };
    Sampler s;
    sampler_init(&s, V);
    Rng r;
    rng_seed(&r, 8);
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = rng_normal(&r);
    logits[37] = 10; /* the clear max: 5+ above everything else */
    SamplerConfig c = config(0.01f, 0, 1);
    int ok = 1;
    for (int i = 0; i < 2000; i++) {
        float lps;
        if (sampler_sample(&s, &c, logits, &r, &lps, NULL) != 37 || fabs(lps) > 1e-6) ok = 0;
    }
    CHECK(ok);
    sampler_free(&s);
}

/* Is token t among the k best of logits (order: logit desc, id asc)? */
static int in_top_k(const float *logits, int n, int k, int t) {
    int better = 0;
    for (int i = 0; i < n; i++)
        if (logits[i] > logits[t] || (logits[i] == logits[t] && i < t)) better++;
    return better < k;
}

TEST(sampler_top_k_stays_in_k_best) {
    enum { V = 1000, K = 10 };
    Sampler s;
    sampler_init(&s, V);
    Rng r;
    rng_seed(&r, 31);
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = 0.5f * rng_normal(&r);
    SamplerConfig c = config(1.5f, K, 1);
    int ok = 1, distinct = 0, seen[V] = {0};
    for (int i = 0; i < 20000; i++) {
        int t = sampler_sample(&s, &c, logits, &r, NULL, NULL);
        if (t < 0 || t >= V || !in_top_k(logits, V, K, t)) ok = 0;
        else if (!seen[t]++) distinct++;
    }
    CHECK(ok);
    CHECK(distinct == K); /* all k are reachable, not just the best */

    /* Ties at the boundary: of the three 5s only ids 0 and 2 make top 2. */
    float tie[5] = {5, 1, 5, 5, 0};
    Sampler s5;
    sampler_init(&s5, 5);
    c = config(1, 2, 1);
    int counts[5] = {0};
    for (int i = 0; i < 4000; i++) counts[sampler_sample(&s5, &c, tie, &r, NULL, NULL)]++;
    CHECK(counts[1] == 0 && counts[3] == 0 && counts[4] == 0);
    CHECK_NEAR(counts[0] / 4000.0, 0.5, 0.04);
    sampler_free(&s5);
    sampler_free(&s);
}

/* probs {0.10, 0.25, 0.05, 0.50, 0.07, 0.03}, top_p 0.8: sorted mass
 * 0.50 (id 3), 0.75 (+id 1) < 0.8, 0.85 (+id 0) >= 0.8, so the nucleus is
 * {3, 1, 0}, renormalised to 0.50/0.85, 0.25/0.85, 0.10/0.85. */
TEST(sampler_top_p_hand_nucleus) {
    enum { V = 6 };
    const double p[V] = {0.10, 0.25, 0.05, 0.50, 0.07, 0.03};
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = (float)log(p[i]) + 1.7f; /* shift: no effect */
    const double nucleus[V] = {0.10 / 0.85, 0.25 / 0.85, 0, 0.50 / 0.85, 0, 0};
    Sampler s;
    sampler_init(&s, V);
    Rng r;
    rng_seed(&r, 77);
    SamplerConfig c = config(1, 0, 0.8f);
    int counts[V] = {0}, lp_ok = 1;
    const int draws = 200000;
    for (int i = 0; i < draws; i++) {
        float lps, lpm;
        int t = sampler_sample(&s, &c, logits, &r, &lps, &lpm);
        counts[t]++;
        if (nucleus[t] > 0 &&
            (fabs(lps - log(nucleus[t])) > 1e-5 || fabs(lpm - log(p[t])) > 1e-5))
            lp_ok = 0;
    }
    CHECK(counts[2] == 0 && counts[4] == 0 && counts[5] == 0);
    CHECK(lp_ok);
    double chi = chi_square(counts, nucleus, V, draws);
    CHECKF(chi < 13.82, "chi-square %g (2 dof, P = 0.001 at 13.82)", chi);

    /* Top-p acts after top-k: top 2 renormalise to {2/3, 1/3}, and 2/3 >= 0.6
     * so only token 3 is left (without top-k, 0.5 < 0.6 keeps token 1 too). */
    c = config(1, 2, 0.6f);
    int only3 = 1;
    for (int i = 0; i < 2000; i++) {
        float lps;
        if (sampler_sample(&s, &c, logits, &r, &lps, NULL) != 3 || fabs(lps) > 1e-6) only3 = 0;
    }
    CHECK(only3);
    c = config(1, 0, 0.6f);
    int saw1 = 0;
    for (int i = 0; i < 2000; i++) saw1 |= sampler_sample(&s, &c, logits, &r, NULL, NULL) == 1;
    CHECK(saw1);
    sampler_free(&s);
}

TEST(sampler_top_p_ties_and_tiny_p) {
    enum { V = 4 };
    float flat[V] = {0, 0, 0, 0};
    Sampler s;
    sampler_init(&s, V);
    Rng r;
    rng_seed(&r, 4);
    /* p below 1/V: the nucleus is the single best token (lowest id on ties);
     * a naive (1-p)/(V-1) pre-filter would keep nothing here. */
    SamplerConfig c = config(1, 0, 0.1f);
    int ok = 1;
    for (int i = 0; i < 500; i++) {
        float lps;
        if (sampler_sample(&s, &c, flat, &r, &lps, NULL) != 0 || fabs(lps) > 1e-6) ok = 0;
    }
    CHECK(ok);
    /* p = 0.5 over four equal tokens: {0, 1}, each 1/2. */
    c = config(1, 0, 0.5f);
    int counts[V] = {0};
    for (int i = 0; i < 4000; i++) counts[sampler_sample(&s, &c, flat, &r, NULL, NULL)]++;
    CHECK(counts[2] == 0 && counts[3] == 0);
    CHECK_NEAR(counts[0] / 4000.0, 0.5, 0.04);
    sampler_free(&s);
}

/* A flat distribution defeats the pre-filter (every token passes it), so
 * this exercises the selection on the whole vocabulary: 1000 equal logits
 * with top_p 0.25 must keep exactly ids 0..249 (ties: lowest id). */
TEST(sampler_top_p_flat_distribution) {
    enum { V = 1000 };
    float flat[V];
    for (int i = 0; i < V; i++) flat[i] = 0.5f;
    Sampler s;
    sampler_init(&s, V);
    Rng r;
    rng_seed(&r, 6);
    SamplerConfig c = config(1, 0, 0.25f);
    int ok = 1, below_125 = 0;
    const int draws = 20000;
    for (int i = 0; i < draws; i++) {
        float lps;
        int t = sampler_sample(&s, &c, flat, &r, &lps, NULL);
        if (t < 0 || t >= 250 || fabs(lps + log(250.0)) > 1e-5) ok = 0;
        below_125 += t < 125;
    }
    CHECK(ok);
    CHECK_NEAR(below_125 / (double)draws, 0.5, 0.02);
    sampler_free(&s);
}

TEST(sampler_seed_reproducibility) {
    enum { V = 50, N = 200 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = 0.1f * (float)(i % 7);
    Sampler s;
    sampler_init(&s, V);
    SamplerConfig c = config(0.9f, 20, 0.95f);
    int a[N], b[N], d[N];
    Rng r;
    rng_seed(&r, 1234);
    for (int i = 0; i < N; i++) a[i] = sampler_sample(&s, &c, logits, &r, NULL, NULL);
    rng_seed(&r, 1234);
    for (int i = 0; i < N; i++) b[i] = sampler_sample(&s, &c, logits, &r, NULL, NULL);
    rng_seed(&r, 1235);
    for (int i = 0; i < N; i++) d[i] = sampler_sample(&s, &c, logits, &r, NULL, NULL);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, d, sizeof a) != 0);
    sampler_free(&s);
}

/* Brute-force reference for the 50257 case: full sort, then top-k, then
 * top-p, in doubles. Fills keep[] (0/1) and returns the kept mass. */
static int ref_compare_logits_desc(const void *a, const void *b, void *ctx) {
    const float *l = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (l[i] != l[j]) return l[i] > l[j] ? -1 : 1;
    return i - j;
}

static double reference_filter(const float *logits, int n, double temperature, int top_k,
                               double top_p, char *keep) {
    int *order = malloc(sizeof *order * n);
    double *p = malloc(sizeof *p * n);
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof *order, ref_compare_logits_desc, (void *)logits);
    softmax_ref(logits, n, temperature, p);
    int m = top_k > 0 && top_k < n ? top_k : n;
    double mass_k = 0, cum = 0;
    for (int i = 0; i < m; i++) mass_k += p[order[i]];
    memset(keep, 0, n);
    for (int i = 0; i < m; i++) {
        keep[order[i]] = 1;
        cum += p[order[i]];
        if (cum >= top_p * mass_k) break;
    }
    free(order);
    free(p);
    return cum;
}

TEST(sampler_gpt2_vocab_matches_reference) {
    enum { V = 50257 };
    float *logits = malloc(sizeof *logits * V);
    char *keep = malloc(V);
    double *p = malloc(sizeof *p * V);
    Rng r;
    rng_seed(&r, 50257);
    Sampler s;
    sampler_init(&s, V);
    /* Peaked (scale 3) and nearly flat (scale 0.05, like an untrained model). */
    const float scale[6] = {3, 3, 3, 3, 0.05f, 0.05f};
    const SamplerConfig cases[6] = {config(1, 0, 0.9f),   config(0.7f, 50, 1),
                                    config(1.3f, 200, 0.5f), config(1, 0, 1),
                                    config(1, 0, 0.9f),   config(0.8f, 0, 0.3f)};
    for (int k = 0; k < 6; k++) {
        const SamplerConfig *c = &cases[k];
        for (int i = 0; i < V; i++) logits[i] = scale[k] * rng_normal(&r);
        double mass = reference_filter(logits, V, c->temperature, c->top_k, c->top_p, keep);
        softmax_ref(logits, V, c->temperature, p);
        int ok = 1;
        for (int i = 0; i < 300; i++) {
            float lps, lpm;
            int t = sampler_sample(&s, c, logits, &r, &lps, &lpm);
            if (t < 0 || t >= V || !keep[t]) {
                ok = 0;
                break;
            }
            if (fabs(lps - log(p[t] / mass)) > 1e-4) ok = 0;
        }
        CHECKF(ok, "case %d: sampled outside the reference set or wrong logp_sample", k);
    }
    sampler_free(&s);
    free(logits);
    free(keep);
    free(p);
}
