/* Tests for learner/losses.c: every loss, gradient and metric against the
 * torch autograd fixture tests/fixtures/losses-ref.h5 (written in float64 by
 * tests/fixtures/make_loss_fixture.py, read here with the plain HDF5 API),
 * both per element and batched; central finite differences on random inputs;
 * hand-derived values; stability at margins of ±100 and beyond; K-wise with
 * K = 2 against the pairwise loss; the data-parallel split of a batch; and
 * the rejection of bad configs, type names, ranking sizes and denominators. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "learner/losses.h"
#include "tests/harness.h"

/* Per-element results are double all the way: they agree with torch to
 * rounding. Batched gradients are stored as float. */
#define TOL_DOUBLE 1e-9
#define TOL_FLOAT 1e-6
/* Float gradients below this are underflow noise (e.g. sigmoid(-100)/n). */
#define FLOAT_TINY 1e-30

/* ---- fixture access (tests/harness.c reads the file) --------------------- */

static hid_t fixture_open(void) { return harness_fixture_open("losses-ref.h5"); }

static float *to_floats(const double *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

/* ---- Bradley–Terry and K-wise vs torch --------------------------------- */

TEST(losses_bt_matches_torch) {
    hid_t f = fixture_open();
    if (f < 0) return;
    size_t n = 0;
    double *rc = harness_fixture_doubles(f, "bt/r_chosen", &n), *rr = harness_fixture_doubles(f, "bt/r_rejected", NULL);
    double *loss = harness_fixture_doubles(f, "bt/loss", NULL), *acc = harness_fixture_doubles(f, "bt/accuracy", NULL);
    double *dc = harness_fixture_doubles(f, "bt/d_chosen", NULL), *dr = harness_fixture_doubles(f, "bt/d_rejected", NULL);
    double *mdc = harness_fixture_doubles(f, "bt/mean_d_chosen", NULL), *mdr = harness_fixture_doubles(f, "bt/mean_d_rejected", NULL);
    CHECK(n >= 20);
    if (!rc || !rr || !loss || !acc || !dc || !dr || !mdc || !mdr || n == 0) {
        free(rc), free(rr), free(loss), free(acc), free(dc), free(dr), free(mdc), free(mdr);
        H5Fclose(f);
        return;
    }
    double *l = malloc(n * sizeof *l), *gc = malloc(n * sizeof *gc), *gr = malloc(n * sizeof *gr);
    for (size_t i = 0; i < n; i++) l[i] = loss_bt(rc[i], rr[i], &gc[i], &gr[i]);
    harness_close_doubles("bt loss", l, loss, NULL, n, TOL_DOUBLE, 0);
    harness_close_doubles("bt d_chosen", gc, dc, NULL, n, TOL_DOUBLE, 0);
    harness_close_doubles("bt d_rejected", gr, dr, NULL, n, TOL_DOUBLE, 0);

    float *frc = to_floats(rc, n), *frr = to_floats(rr, n);
    float *fdc = malloc(n * sizeof *fdc), *fdr = malloc(n * sizeof *fdr);
    double accuracy, want_acc = 0;
    for (size_t i = 0; i < n; i++) want_acc += acc[i] / n;
    double mean = loss_bt_batch(n, frc, frr, n, fdc, fdr, &accuracy);
    CHECK_NEAR(mean, harness_fixture_scalar(f, "bt/mean_loss"), TOL_DOUBLE);
    CHECK_NEAR(accuracy, want_acc, 1e-12);
    harness_close_floats("bt batch d_chosen", fdc, mdc, NULL, n, TOL_FLOAT, FLOAT_TINY);
    harness_close_floats("bt batch d_rejected", fdr, mdr, NULL, n, TOL_FLOAT, FLOAT_TINY);

    free(rc), free(rr), free(loss), free(acc), free(dc), free(dr), free(mdc), free(mdr);
    free(l), free(gc), free(gr), free(frc), free(frr), free(fdc), free(fdr);
    H5Fclose(f);
}

/* kwise/k<k>/<field> */
static double *kwise_read(hid_t f, int k, const char *field, size_t *n) {
    char name[64];
    snprintf(name, sizeof name, "kwise/k%d/%s", k, field);
    return harness_fixture_doubles(f, name, n);
}

typedef struct {
    double *r, *loss, *d_r, *accuracy, *mean_loss, *mean_d_r;
    size_t n;
} KwiseRef;

/* Per-element and batched K-wise results against one fixture group. */
static void check_kwise(int k, const KwiseRef *ref) {
    char what[64];
    size_t n = ref->n;
    CHECK(n >= 10);
    double *l = malloc(n * sizeof *l), *a = malloc(n * sizeof *a), *g = malloc(n * k * sizeof *g);
    for (size_t b = 0; b < n; b++) l[b] = loss_kwise(ref->r + b * k, k, g + b * k, &a[b]);
    snprintf(what, sizeof what, "kwise k=%d loss", k);
    harness_close_doubles(what, l, ref->loss, NULL, n, TOL_DOUBLE, 0);
    snprintf(what, sizeof what, "kwise k=%d d_r", k);
    harness_close_doubles(what, g, ref->d_r, NULL, n * k, TOL_DOUBLE, 0);
    snprintf(what, sizeof what, "kwise k=%d accuracy", k);
    harness_close_doubles(what, a, ref->accuracy, NULL, n, 1e-15, 0);

    float *fr = to_floats(ref->r, n * k), *fg = malloc(n * k * sizeof *fg);
    double accuracy, want_acc = 0;
    for (size_t b = 0; b < n; b++) want_acc += ref->accuracy[b] / n;
    double mean = loss_kwise_batch(n, k, fr, n, fg, &accuracy);
    CHECKF(harness_close(mean, ref->mean_loss[0], TOL_DOUBLE, 0), "kwise k=%d mean %.17g, torch %.17g", k, mean,
           ref->mean_loss[0]);
    CHECK_NEAR(accuracy, want_acc, 1e-12);
    snprintf(what, sizeof what, "kwise k=%d batch d_r", k);
    harness_close_floats(what, fg, ref->mean_d_r, NULL, n * k, TOL_FLOAT, FLOAT_TINY);
    free(l), free(a), free(g), free(fr), free(fg);
}

TEST(losses_kwise_matches_torch) {
    hid_t f = fixture_open();
    if (f < 0) return;
    for (int k = 2; k <= 4; k++) {
        KwiseRef ref = {0};
        ref.r = kwise_read(f, k, "r", NULL);
        ref.loss = kwise_read(f, k, "loss", &ref.n);
        ref.d_r = kwise_read(f, k, "d_r", NULL);
        ref.accuracy = kwise_read(f, k, "accuracy", NULL);
        ref.mean_loss = kwise_read(f, k, "mean_loss", NULL);
        ref.mean_d_r = kwise_read(f, k, "mean_d_r", NULL);
        if (ref.r && ref.loss && ref.d_r && ref.accuracy && ref.mean_loss && ref.mean_d_r) check_kwise(k, &ref);
        free(ref.r), free(ref.loss), free(ref.d_r), free(ref.accuracy), free(ref.mean_loss), free(ref.mean_d_r);
    }
    H5Fclose(f);
}

/* ---- DPO family vs torch ----------------------------------------------- */

typedef struct {
    double *policy_chosen, *policy_rejected, *ref_chosen, *ref_rejected;
    size_t n;
} DpoInputs;

static void check_dpo_group(hid_t f, const DpoInputs *in, const char *group, LossDpoType type) {
    LossDpoConfig c = {type, harness_fixture_attr(f, group, "beta"), harness_fixture_attr(f, group, "label_smoothing")};
    CHECKF(loss_dpo_config_check(&c) == 0, "%s: %s", group, err_msg());
    const char *fields[] = {"loss", "d_policy_chosen", "d_policy_rejected", "chosen_reward",
                            "rejected_reward", "margin", "accuracy", "mean_d_policy_chosen",
                            "mean_d_policy_rejected"};
    enum { N_FIELDS = sizeof fields / sizeof fields[0] };
    double *want[N_FIELDS], *got[N_FIELDS];
    char name[128];
    size_t n = in->n;
    for (int i = 0; i < N_FIELDS; i++) {
        snprintf(name, sizeof name, "%s/%s", group, fields[i]);
        want[i] = harness_fixture_doubles(f, name, NULL);
        got[i] = calloc(n, sizeof **got);
    }
    for (size_t b = 0; b < n; b++) {
        LossDpoPair p = {.policy_chosen = in->policy_chosen[b],
                         .policy_rejected = in->policy_rejected[b],
                         .ref_chosen = in->ref_chosen[b],
                         .ref_rejected = in->ref_rejected[b]};
        LossDpoMetrics m;
        got[0][b] = loss_dpo(&c, &p, &got[1][b], &got[2][b], &m);
        got[3][b] = m.chosen_reward, got[4][b] = m.rejected_reward;
        got[5][b] = m.margin, got[6][b] = m.accuracy;
    }
    for (int i = 0; i < 7; i++) {
        if (!want[i]) continue;
        snprintf(name, sizeof name, "%s %s", group, fields[i]);
        /* metrics are differences of log-prob sums of ~100: absolute floor */
        harness_close_doubles(name, got[i], want[i], NULL, n, TOL_DOUBLE, i >= 3 ? 1e-12 : 0);
    }

    float *pc = to_floats(in->policy_chosen, n), *pr = to_floats(in->policy_rejected, n);
    float *rc = to_floats(in->ref_chosen, n), *rr = to_floats(in->ref_rejected, n);
    float *dpc = malloc(n * sizeof *dpc), *dpr = malloc(n * sizeof *dpr);
    LossDpoMetrics mean_m;
    double mean = loss_dpo_batch(&c, n, pc, pr, rc, rr, n, dpc, dpr, &mean_m);
    snprintf(name, sizeof name, "%s/mean_loss", group);
    double want_mean = harness_fixture_scalar(f, name);
    CHECKF(harness_close(mean, want_mean, TOL_DOUBLE, 0), "%s batch loss %.17g, torch %.17g", group, mean, want_mean);
    double sums[4] = {0, 0, 0, 0};
    for (size_t b = 0; b < n; b++)
        for (int i = 0; i < 4; i++) sums[i] += want[3 + i] ? want[3 + i][b] : NAN;
    CHECK_NEAR(mean_m.chosen_reward, sums[0] / n, 1e-9);
    CHECK_NEAR(mean_m.rejected_reward, sums[1] / n, 1e-9);
    CHECK_NEAR(mean_m.margin, sums[2] / n, 1e-9);
    CHECK_NEAR(mean_m.accuracy, sums[3] / n, 1e-12);
    snprintf(name, sizeof name, "%s batch d_policy_chosen", group);
    if (want[7]) harness_close_floats(name, dpc, want[7], NULL, n, TOL_FLOAT, FLOAT_TINY);
    snprintf(name, sizeof name, "%s batch d_policy_rejected", group);
    if (want[8]) harness_close_floats(name, dpr, want[8], NULL, n, TOL_FLOAT, FLOAT_TINY);

    for (int i = 0; i < N_FIELDS; i++) free(want[i]), free(got[i]);
    free(pc), free(pr), free(rc), free(rr), free(dpc), free(dpr);
}

TEST(losses_dpo_family_matches_torch) {
    hid_t f = fixture_open();
    if (f < 0) return;
    DpoInputs in = {0};
    in.policy_chosen = harness_fixture_doubles(f, "dpo/policy_chosen", &in.n);
    in.policy_rejected = harness_fixture_doubles(f, "dpo/policy_rejected", NULL);
    in.ref_chosen = harness_fixture_doubles(f, "dpo/ref_chosen", NULL);
    in.ref_rejected = harness_fixture_doubles(f, "dpo/ref_rejected", NULL);
    CHECK(in.n >= 20);
    if (in.policy_chosen && in.policy_rejected && in.ref_chosen && in.ref_rejected) {
        check_dpo_group(f, &in, "dpo/dpo_b0.1", LOSS_DPO);
        check_dpo_group(f, &in, "dpo/dpo_b0.5", LOSS_DPO);
        check_dpo_group(f, &in, "dpo/cdpo_b0.1", LOSS_CDPO);
        check_dpo_group(f, &in, "dpo/cdpo_b0.5", LOSS_CDPO);
        check_dpo_group(f, &in, "dpo/ipo_b0.1", LOSS_IPO);
        check_dpo_group(f, &in, "dpo/ipo_b0.5", LOSS_IPO);
    }
    free(in.policy_chosen), free(in.policy_rejected), free(in.ref_chosen), free(in.ref_rejected);
    H5Fclose(f);
}

/* ---- finite differences ------------------------------------------------ */

/* Central difference of a scalar function of one coordinate; step scaled to
 * the value so log-prob sums of ~-100 get a comparable relative step. */
#define FD_STEP(x) (1e-6 * fmax(1.0, fabs(x)))
#define FD_TOL 1e-6

static double bt_of(const double *x) {
    return loss_bt(x[0], x[1], NULL, NULL);
}

TEST(losses_bt_and_kwise_match_finite_differences) {
    Rng rng;
    rng_seed(&rng, 7);
    for (int trial = 0; trial < 20; trial++) {
        double x[2] = {4 * rng_normal(&rng), 4 * rng_normal(&rng)}, g[2];
        loss_bt(x[0], x[1], &g[0], &g[1]);
        for (int i = 0; i < 2; i++) {
            double h = FD_STEP(x[i]), save = x[i];
            x[i] = save + h;
            double up = bt_of(x);
            x[i] = save - h;
            double down = bt_of(x);
            x[i] = save;
            CHECKF(fabs((up - down) / (2 * h) - g[i]) < FD_TOL, "bt trial %d d[%d]: fd %.10g, analytic %.10g", trial,
                   i, (up - down) / (2 * h), g[i]);
        }
    }
    for (int k = 2; k <= 6; k++)
        for (int trial = 0; trial < 5; trial++) {
            double r[6], g[6];
            for (int i = 0; i < k; i++) r[i] = 3 * rng_normal(&rng);
            loss_kwise(r, k, g, NULL);
            for (int i = 0; i < k; i++) {
                double h = FD_STEP(r[i]), save = r[i];
                r[i] = save + h;
                double up = loss_kwise(r, k, NULL, NULL);
                r[i] = save - h;
                double down = loss_kwise(r, k, NULL, NULL);
                r[i] = save;
                double fd = (up - down) / (2 * h);
                CHECKF(fabs(fd - g[i]) < FD_TOL, "kwise k=%d d[%d]: fd %.10g, analytic %.10g", k, i, fd, g[i]);
            }
        }
}

TEST(losses_dpo_family_matches_finite_differences) {
    const LossDpoConfig configs[] = {
        {LOSS_DPO, 0.1, 0}, {LOSS_DPO, 0.5, 0}, {LOSS_CDPO, 0.1, 0.1},
        {LOSS_CDPO, 0.5, 0.25}, {LOSS_IPO, 0.1, 0}, {LOSS_IPO, 0.5, 0},
    };
    Rng rng;
    rng_seed(&rng, 11);
    for (size_t ci = 0; ci < sizeof configs / sizeof configs[0]; ci++)
        for (int trial = 0; trial < 5; trial++) {
            const LossDpoConfig *c = &configs[ci];
            double ref_c = -80 * rng_uniform_double(&rng) - 5, ref_r = -80 * rng_uniform_double(&rng) - 5;
            LossDpoPair p = {.policy_chosen = ref_c + 4 * rng_normal(&rng),
                             .policy_rejected = ref_r + 4 * rng_normal(&rng),
                             .ref_chosen = ref_c,
                             .ref_rejected = ref_r};
            double g[2];
            loss_dpo(c, &p, &g[0], &g[1], NULL);
            double *x[2] = {&p.policy_chosen, &p.policy_rejected};
            for (int i = 0; i < 2; i++) {
                double save = *x[i], h = FD_STEP(save);
                *x[i] = save + h;
                double up = loss_dpo(c, &p, NULL, NULL, NULL);
                *x[i] = save - h;
                double down = loss_dpo(c, &p, NULL, NULL, NULL);
                *x[i] = save;
                double fd = (up - down) / (2 * h);
                /* IPO's loss grows like h^2: compare relative to the gradient */
                CHECKF(fabs(fd - g[i]) < FD_TOL * fmax(1, fabs(g[i])), "%s beta %g d[%d]: fd %.10g, analytic %.10g",
                       loss_dpo_type_name(c->type), c->beta, i, fd, g[i]);
            }
        }
}

/* ---- hand-derived values ----------------------------------------------- */

TEST(losses_hand_derived_values) {
    const double ln2 = 0.69314718055994531, sp1 = 0.31326168751822284; /* log(1+e^-1) */
    const double sp2 = 0.12692801104297263, s1 = 0.26894142136999512; /* log(1+e^-2), 1/(1+e) */
    double dc, dr, g[3], acc;
    CHECK_NEAR(loss_bt(0.5, 0.5, &dc, &dr), ln2, 1e-15);
    CHECK_NEAR(dc, -0.5, 1e-15);
    CHECK_NEAR(dr, 0.5, 1e-15);
    CHECK_NEAR(loss_bt(1, 0, &dc, &dr), sp1, 1e-15);
    CHECK_NEAR(dc, -s1, 1e-15);
    CHECK_NEAR(loss_bt(0, 1, &dc, NULL), 1 + sp1, 1e-15); /* softplus(1) = 1 + softplus(-1) */
    CHECK_NEAR(dc, -(1 - s1), 1e-15);

    /* three tied responses: every pair costs log 2; the best gets pushed up
     * by two pairs, the worst down by two, the middle one balanced */
    CHECK_NEAR(loss_kwise((double[]){2, 2, 2}, 3, g, &acc), ln2, 1e-15);
    CHECK_NEAR(g[0], -1.0 / 3, 1e-15);
    CHECK_NEAR(g[1], 0, 1e-15);
    CHECK_NEAR(g[2], 1.0 / 3, 1e-15);
    CHECK(acc == 0); /* ties are not correct orderings */
    /* (2,1,0): pair margins 1, 2, 1 */
    CHECK_NEAR(loss_kwise((double[]){2, 1, 0}, 3, g, &acc), (2 * sp1 + sp2) / 3, 1e-15);
    CHECK(acc == 1);
    CHECK_NEAR(loss_kwise((double[]){0, 1, 2}, 3, NULL, &acc), (2 * (1 + sp1) + 2 + sp2) / 3, 1e-14);
    CHECK(acc == 0);
    loss_kwise((double[]){1, 3, 2}, 3, NULL, &acc);
    CHECK_NEAR(acc, 1.0 / 3, 1e-15); /* 1 > 3 wrong, 1 > 2 wrong, 3 > 2 right */
}

TEST(losses_dpo_hand_derived_values) {
    const double ln2 = 0.69314718055994531;
    /* policy = reference: h = 0 */
    LossDpoPair same = {.policy_chosen = -20, .policy_rejected = -35, .ref_chosen = -20, .ref_rejected = -35};
    double dc, dr;
    LossDpoMetrics m;
    LossDpoConfig c = {LOSS_DPO, 0.2, 0};
    CHECK_NEAR(loss_dpo(&c, &same, &dc, &dr, &m), ln2, 1e-15);
    CHECK_NEAR(dc, -0.1, 1e-15); /* -beta * sigmoid(0) */
    CHECK_NEAR(dr, 0.1, 1e-15);
    CHECK(m.chosen_reward == 0 && m.rejected_reward == 0 && m.margin == 0 && m.accuracy == 0);
    c = (LossDpoConfig){LOSS_CDPO, 0.2, 0.1};
    CHECK_NEAR(loss_dpo(&c, &same, &dc, NULL, NULL), ln2, 1e-15); /* any eps at h = 0 */
    CHECK_NEAR(dc, -0.2 * (1 - 2 * 0.1) / 2, 1e-15);
    c = (LossDpoConfig){LOSS_IPO, 0.2, 0};
    CHECK_NEAR(loss_dpo(&c, &same, &dc, &dr, NULL), 6.25, 1e-13); /* (0 - 1/0.4)^2 */
    CHECK_NEAR(dc, -5, 1e-13);
    CHECK_NEAR(dr, 5, 1e-13);
    /* IPO's target: h = 1/(2 beta) = 2.5 is the minimum */
    LossDpoPair at_target = {.policy_chosen = -10, .policy_rejected = -12.5, .ref_chosen = -10, .ref_rejected = -10};
    CHECK_NEAR(loss_dpo(&c, &at_target, &dc, NULL, &m), 0, 1e-15);
    CHECK_NEAR(dc, 0, 1e-14);
    CHECK_NEAR(m.chosen_reward, 0, 1e-15);
    CHECK_NEAR(m.rejected_reward, -0.5, 1e-15); /* 0.2 * (-12.5 + 10) */
    CHECK_NEAR(m.margin, 0.5, 1e-15);
    CHECK(m.accuracy == 1);
    /* DPO with beta*h = 1: softplus(-1); the reference's sign matters */
    c = (LossDpoConfig){LOSS_DPO, 0.5, 0};
    /* h = (1) - (-1) = 2 */
    LossDpoPair p = {.policy_chosen = -9, .policy_rejected = -10, .ref_chosen = -10, .ref_rejected = -9};
    CHECK_NEAR(loss_dpo(&c, &p, &dc, NULL, NULL), 0.31326168751822284, 1e-15);
    CHECK_NEAR(dc, -0.5 * 0.26894142136999512, 1e-15);
}

/* ---- stability ---------------------------------------------------------- */

TEST(losses_stable_at_huge_margins) {
    const double margins[] = {100, -100, 1000, -1000, 1e6, -1e6};
    for (size_t i = 0; i < sizeof margins / sizeof margins[0]; i++) {
        double z = margins[i], dc, dr, g[4], acc;
        double l = loss_bt(z, 0, &dc, &dr);
        CHECKF(isfinite(l) && isfinite(dc) && isfinite(dr), "bt margin %g: %g %g %g", z, l, dc, dr);
        /* -log sigmoid(z) is ~0 for large z and ~-z for very negative z */
        CHECKF(z > 0 ? l >= 0 && l < 1e-40 : fabs(l + z) <= 1e-12 * fabs(z), "bt margin %g: loss %g", z, l);
        CHECKF(z > 0 ? dc <= 0 && dc > -1e-40 : fabs(dc + 1) < 1e-15, "bt margin %g: d_chosen %g", z, dc);
        l = loss_kwise((double[]){z, 0, -z, z}, 4, g, &acc);
        CHECKF(isfinite(l) && isfinite(g[0]) && isfinite(g[1]) && isfinite(g[2]) && isfinite(g[3]),
               "kwise spread %g: loss %g", z, l);
        for (int t = 0; t < 3; t++) {
            LossDpoConfig c = {(LossDpoType)t, 0.5, t == LOSS_CDPO ? 0.1 : 0};
            /* beta*h = z */
            LossDpoPair p = {
                .policy_chosen = -50 + z / 0.5, .policy_rejected = -50, .ref_chosen = -50, .ref_rejected = -50};
            LossDpoMetrics m;
            l = loss_dpo(&c, &p, &dc, &dr, &m);
            CHECKF(isfinite(l) && isfinite(dc) && isfinite(dr) && isfinite(m.margin), "%s at beta*h = %g: %g %g",
                   loss_dpo_type_name(c.type), z, l, dc);
            CHECKF(l >= 0, "%s at beta*h = %g: negative loss %g", loss_dpo_type_name(c.type), z, l);
        }
    }
    /* cDPO never stops pushing back: at beta*h = +1000 the eps term still pulls */
    LossDpoConfig c = {LOSS_CDPO, 1, 0.1};
    LossDpoPair p = {.policy_chosen = -1, .policy_rejected = -1001, .ref_chosen = -1, .ref_rejected = -1};
    double dc, l = loss_dpo(&c, &p, &dc, NULL, NULL);
    CHECK_NEAR(l, 0.1 * 1000, 1e-9);
    CHECK_NEAR(dc, 0.1, 1e-12);
    /* the float batch path too */
    float big[2] = {100, -100}, zero[2] = {0, 0}, d[2];
    double mean = loss_bt_batch(2, big, zero, 2, d, NULL, NULL);
    CHECK_NEAR(mean, 50, 1e-12);
    CHECK(isfinite(d[0]) && isfinite(d[1]) && fabs(d[1] + 0.5f) < 1e-7);
}

/* ---- relations between the losses --------------------------------------- */

TEST(losses_kwise_two_equals_pairwise) {
    Rng rng;
    rng_seed(&rng, 3);
    float rc[16], rr[16], both[32], dc[16], dr[16], dk[32];
    for (int i = 0; i < 16; i++) {
        double a = 5 * rng_normal(&rng), b = i % 5 ? 5 * rng_normal(&rng) : a, g[2], dca, dra, acc;
        CHECK(loss_kwise((double[]){a, b}, 2, g, &acc) == loss_bt(a, b, &dca, &dra));
        CHECK(g[0] == dca && g[1] == dra);
        CHECK(acc == (a > b));
        rc[i] = both[2 * i] = (float)a, rr[i] = both[2 * i + 1] = (float)b;
    }
    double acc_bt, acc_k;
    double lb = loss_bt_batch(16, rc, rr, 16, dc, dr, &acc_bt);
    double lk = loss_kwise_batch(16, 2, both, 16, dk, &acc_k);
    CHECK_NEAR(lb, lk, 1e-15);
    CHECK(acc_bt == acc_k);
    for (int i = 0; i < 16; i++) CHECK(dk[2 * i] == dc[i] && dk[2 * i + 1] == dr[i]);
}

TEST(losses_kwise_gradient_sums_to_zero_and_order_matters) {
    Rng rng;
    rng_seed(&rng, 5);
    double r[5], g[5], rev[5];
    for (int i = 0; i < 5; i++) r[i] = 2 * rng_normal(&rng), rev[4 - i] = r[i];
    double l = loss_kwise(r, 5, g, NULL), sum = 0;
    for (int i = 0; i < 5; i++) sum += g[i];
    CHECK_NEAR(sum, 0, 1e-15); /* adding a constant to every reward changes nothing */
    double shifted[5];
    for (int i = 0; i < 5; i++) shifted[i] = r[i] + 7;
    CHECK_NEAR(loss_kwise(shifted, 5, NULL, NULL), l, 1e-13);
    CHECK(fabs(loss_kwise(rev, 5, NULL, NULL) - l) > 1e-3); /* the order is the label */
}

/* Data parallelism: each rank passes the global batch size as denom and the
 * results are summed; that must equal the whole batch on one rank. */
TEST(losses_batches_split_across_ranks_sum_to_the_whole) {
    Rng rng;
    rng_seed(&rng, 9);
    enum { N = 10, K = 3, HALF = 4 };
    float a[N], b[N], rk[N * K], pc[N], pr[N], rc[N], rr[N];
    for (int i = 0; i < N; i++) {
        a[i] = 2 * rng_normal(&rng), b[i] = 2 * rng_normal(&rng);
        for (int j = 0; j < K; j++) rk[i * K + j] = 2 * rng_normal(&rng);
        rc[i] = -30 * rng_uniform(&rng), rr[i] = -30 * rng_uniform(&rng);
        pc[i] = rc[i] + rng_normal(&rng), pr[i] = rr[i] + rng_normal(&rng);
    }
    float g1[N * K], g2[N * K], g3[N];
    double acc_all, acc_lo, acc_hi;
    double all = loss_bt_batch(N, a, b, N, g1, g3, &acc_all);
    double lo = loss_bt_batch(HALF, a, b, N, g2, NULL, &acc_lo);
    double hi = loss_bt_batch(N - HALF, a + HALF, b + HALF, N, g2 + HALF, NULL, &acc_hi);
    CHECK_NEAR(lo + hi, all, 1e-12);
    CHECK_NEAR(acc_lo + acc_hi, acc_all, 1e-12);
    CHECK(memcmp(g1, g2, N * sizeof *g1) == 0);
    for (int i = 0; i < N; i++) CHECK(g3[i] == -g1[i]);

    all = loss_kwise_batch(N, K, rk, N, g1, &acc_all);
    lo = loss_kwise_batch(HALF, K, rk, N, g2, &acc_lo);
    hi = loss_kwise_batch(N - HALF, K, rk + HALF * K, N, g2 + HALF * K, &acc_hi);
    CHECK_NEAR(lo + hi, all, 1e-12);
    CHECK_NEAR(acc_lo + acc_hi, acc_all, 1e-12);
    CHECK(memcmp(g1, g2, N * K * sizeof *g1) == 0);

    LossDpoConfig c = {LOSS_CDPO, 0.3, 0.2};
    LossDpoMetrics m_all, m_lo, m_hi;
    all = loss_dpo_batch(&c, N, pc, pr, rc, rr, N, g1, g3, &m_all);
    lo = loss_dpo_batch(&c, HALF, pc, pr, rc, rr, N, g2, NULL, &m_lo);
    hi = loss_dpo_batch(&c, N - HALF, pc + HALF, pr + HALF, rc + HALF, rr + HALF, N, g2 + HALF, NULL, &m_hi);
    CHECK_NEAR(lo + hi, all, 1e-12);
    CHECK_NEAR(m_lo.margin + m_hi.margin, m_all.margin, 1e-12);
    CHECK_NEAR(m_lo.accuracy + m_hi.accuracy, m_all.accuracy, 1e-12);
    CHECK_NEAR(m_lo.chosen_reward + m_hi.chosen_reward, m_all.chosen_reward, 1e-12);
    CHECK(memcmp(g1, g2, N * sizeof *g1) == 0);
    for (int i = 0; i < N; i++) CHECK(g3[i] == -g1[i]);
    /* an empty shard contributes nothing and is not an error */
    CHECK(loss_dpo_batch(&c, 0, pc, pr, rc, rr, N, NULL, NULL, &m_lo) == 0 && m_lo.accuracy == 0);
}

/* ---- bad input ----------------------------------------------------------- */

TEST(losses_dpo_type_names) {
    const char *names[] = {"dpo", "cdpo", "ipo"};
    for (int i = 0; i < 3; i++) {
        LossDpoType t = (LossDpoType)-1;
        CHECK(loss_dpo_type_parse(names[i], &t) == 0);
        CHECK(!strcmp(loss_dpo_type_name(t), names[i]));
    }
    const char *bad[] = {"kto", "", "DPO", "dpo ", "sigmoid"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LossDpoType t = LOSS_IPO;
        err_clear();
        CHECK(loss_dpo_type_parse(bad[i], &t) == -1);
        CHECK(t == LOSS_IPO); /* untouched on failure */
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        CHECKF(strstr(err_msg(), quoted) && strstr(err_msg(), "dpo, cdpo or ipo"), "message: %s", err_msg());
    }
    LossDpoType t;
    CHECK(loss_dpo_type_parse(NULL, &t) == -1);
    CHECK(!strcmp(loss_dpo_type_name((LossDpoType)7), "?"));
}

static void check_config_rejected(LossDpoConfig c, const char *field) {
    err_clear();
    CHECK(loss_dpo_config_check(&c) == -1);
    CHECKF(strstr(err_msg(), field) != NULL, "expected a message naming %s, got: %s", field, err_msg());
}

TEST(losses_dpo_config_checked) {
    LossDpoConfig d = loss_dpo_default();
    CHECK(d.type == LOSS_DPO && d.beta == 0.1 && d.label_smoothing == 0);
    CHECK(loss_dpo_config_check(&d) == 0);
    CHECK(loss_dpo_config_check(&(LossDpoConfig){LOSS_CDPO, 0.5, 0.49}) == 0);
    CHECK(loss_dpo_config_check(&(LossDpoConfig){LOSS_CDPO, 0.5, 0}) == 0);
    CHECK(loss_dpo_config_check(&(LossDpoConfig){LOSS_IPO, 2, 0}) == 0);
    check_config_rejected((LossDpoConfig){LOSS_DPO, 0, 0}, "beta");
    check_config_rejected((LossDpoConfig){LOSS_IPO, -0.1, 0}, "beta");
    check_config_rejected((LossDpoConfig){LOSS_DPO, NAN, 0}, "beta");
    check_config_rejected((LossDpoConfig){LOSS_DPO, INFINITY, 0}, "beta");
    check_config_rejected((LossDpoConfig){LOSS_CDPO, 0.1, 0.5}, "label_smoothing");
    check_config_rejected((LossDpoConfig){LOSS_CDPO, 0.1, -0.01}, "label_smoothing");
    check_config_rejected((LossDpoConfig){LOSS_CDPO, 0.1, NAN}, "label_smoothing");
    check_config_rejected((LossDpoConfig){LOSS_DPO, 0.1, 0.1}, "label_smoothing");
    check_config_rejected((LossDpoConfig){LOSS_IPO, 0.1, 0.1}, "label_smoothing");
    check_config_rejected((LossDpoConfig){(LossDpoType)9, 0.1, 0}, "type");
}

TEST(losses_reject_short_rankings_and_bad_denominators) {
    double g[2] = {5, 5}, acc = 0;
    err_clear();
    CHECK(isnan(loss_kwise((double[]){1}, 1, g, &acc)));
    CHECK(g[0] == 0 && isnan(acc));
    CHECKF(strstr(err_msg(), "at least 2") && strstr(err_msg(), "got 1"), "message: %s", err_msg());
    float r[4] = {1, 2, 3, 4}, d[4];
    err_clear();
    CHECK(isnan(loss_kwise_batch(4, 1, r, 4, d, NULL)));
    CHECKF(strstr(err_msg(), "got 1") != NULL, "message: %s", err_msg());
    const double bad[] = {0, -2, NAN, INFINITY};
    LossDpoConfig c = loss_dpo_default();
    for (int i = 0; i < 4; i++) {
        err_clear();
        CHECK(isnan(loss_bt_batch(2, r, r + 2, bad[i], d, d + 2, NULL)));
        CHECKF(strstr(err_msg(), "denom") != NULL, "message: %s", err_msg());
        err_clear();
        CHECK(isnan(loss_kwise_batch(2, 2, r, bad[i], d, NULL)));
        CHECKF(strstr(err_msg(), "denom") != NULL, "message: %s", err_msg());
        err_clear();
        CHECK(isnan(loss_dpo_batch(&c, 1, r, r + 1, r + 2, r + 3, bad[i], d, d + 1, NULL)));
        CHECKF(strstr(err_msg(), "denom") != NULL, "message: %s", err_msg());
    }
}
