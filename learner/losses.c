/* losses — Bradley–Terry, K-wise ranking, DPO / cDPO / IPO losses and their
 * gradients for the rm and dpo trainers (see losses.h). Everything is
 * written in terms of softplus(x) = log(1 + e^x) and the logistic sigmoid,
 * each evaluated so that no intermediate overflows: -log sigmoid(z) is
 * softplus(-z) and its derivative is -sigmoid(-z). */
#include "learner/losses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* log(1 + e^x) without overflow for large x or cancellation for small. */
static double softplus(double x) {
    return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

/* 1 / (1 + e^-x), exp only ever of a non-positive number. */
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static void store(double *dst, double v) {
    if (dst) *dst = v;
}

double loss_bt(double r_chosen, double r_rejected, double *d_chosen, double *d_rejected) {
    double z = r_chosen - r_rejected;
    double dz = -sigmoid(-z); /* d softplus(-z) / dz */
    store(d_chosen, dz);
    store(d_rejected, -dz);
    return softplus(-z);
}

double loss_kwise(const double *r, int k, double *d_r, double *accuracy) {
    if (d_r)
        for (int i = 0; i < k; i++) d_r[i] = 0;
    if (k < 2) {
        store(accuracy, NAN);
        err_set("K-wise loss: a ranking needs at least 2 responses, got %d", k);
        return NAN;
    }
    double pairs = 0.5 * k * (k - 1), loss = 0, correct = 0;
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++) {
            double dz;
            loss += loss_bt(r[i], r[j], &dz, NULL);
            correct += r[i] > r[j];
            if (d_r) {
                d_r[i] += dz / pairs;
                d_r[j] -= dz / pairs;
            }
        }
    store(accuracy, correct / pairs);
    return loss / pairs;
}

static int denom_ok(const char *who, double denom) {
    if (denom > 0 && isfinite(denom)) return 1;
    err_set("%s: denom must be positive and finite, got %g", who, denom);
    return 0;
}

double loss_bt_batch(size_t n, const float *r_chosen, const float *r_rejected, double denom,
                     float *d_chosen, float *d_rejected, double *accuracy) {
    if (!denom_ok("loss_bt_batch", denom)) return NAN;
    double loss = 0, correct = 0;
    for (size_t b = 0; b < n; b++) {
        double dc;
        loss += loss_bt(r_chosen[b], r_rejected[b], &dc, NULL);
        correct += r_chosen[b] > r_rejected[b];
        if (d_chosen) d_chosen[b] = (float)(dc / denom);
        if (d_rejected) d_rejected[b] = (float)(-dc / denom);
    }
    store(accuracy, correct / denom);
    return loss / denom;
}

double loss_kwise_batch(size_t n, int k, const float *r, double denom, float *d_r, double *accuracy) {
    if (!denom_ok("loss_kwise_batch", denom)) return NAN;
    if (k < 2) {
        err_set("loss_kwise_batch: a ranking needs at least 2 responses, got %d", k);
        return NAN;
    }
    double *row = err_malloc(2 * (size_t)k * sizeof *row), *grad = row + k;
    double loss = 0, correct = 0;
    for (size_t b = 0; b < n; b++) {
        double acc;
        for (int i = 0; i < k; i++) row[i] = r[b * k + i];
        loss += loss_kwise(row, k, grad, &acc);
        correct += acc;
        if (d_r)
            for (int i = 0; i < k; i++) d_r[b * k + i] = (float)(grad[i] / denom);
    }
    free(row);
    store(accuracy, correct / denom);
    return loss / denom;
}

LossDpoConfig loss_dpo_default(void) {
    return (LossDpoConfig){LOSS_DPO, 0.1, 0.0};
}

static const char *const dpo_type_names[] = {[LOSS_DPO] = "dpo", [LOSS_CDPO] = "cdpo", [LOSS_IPO] = "ipo"};
enum { DPO_TYPES = sizeof dpo_type_names / sizeof dpo_type_names[0] };

int loss_dpo_type_parse(const char *name, LossDpoType *type) {
    for (int t = 0; name && t < DPO_TYPES; t++)
        if (!strcmp(name, dpo_type_names[t])) {
            *type = (LossDpoType)t;
            return 0;
        }
    return err_set("unknown DPO loss type '%s' (expected dpo, cdpo or ipo)", name ? name : "(null)");
}

const char *loss_dpo_type_name(LossDpoType type) {
    return (unsigned)type < DPO_TYPES ? dpo_type_names[type] : "?";
}

int loss_dpo_config_check(const LossDpoConfig *c) {
    if ((unsigned)c->type >= DPO_TYPES) return err_set("DPO loss type: invalid value %d", (int)c->type);
    if (!(c->beta > 0 && isfinite(c->beta)))
        return err_set("beta: expected a positive number, got %g", c->beta);
    /* eps = 0.5 weighs both labels equally: the loss is then minimal at
     * h = 0 and nothing is learned, so the range is open at 0.5. */
    if (c->type == LOSS_CDPO && !(c->label_smoothing >= 0 && c->label_smoothing < 0.5))
        return err_set("label_smoothing: expected a value in [0, 0.5) for cdpo, got %g", c->label_smoothing);
    /* Silently ignoring a smoothing the user asked for would hide a typo in
     * the loss type. */
    if (c->type != LOSS_CDPO && c->label_smoothing != 0)
        return err_set("label_smoothing: %g has no effect with loss type %s (use cdpo)", c->label_smoothing,
                       loss_dpo_type_name(c->type));
    return 0;
}

/* The loss as a function of h and dL/dh, per type. */
static double dpo_loss_of_h(const LossDpoConfig *c, double h, double *dh) {
    double z = c->beta * h, eps = c->label_smoothing;
    switch (c->type) {
    case LOSS_DPO:
        *dh = -c->beta * sigmoid(-z);
        return softplus(-z);
    case LOSS_CDPO: /* (1-eps) softplus(-z) + eps softplus(z) */
        *dh = c->beta * (-(1 - eps) * sigmoid(-z) + eps * sigmoid(z));
        return (1 - eps) * softplus(-z) + eps * softplus(z);
    case LOSS_IPO: {
        double d = h - 1 / (2 * c->beta);
        *dh = 2 * d;
        return d * d;
    }
    }
    *dh = NAN; /* an invalid type: loss_dpo_config_check rejects it */
    return NAN;
}

double loss_dpo(const LossDpoConfig *c, const LossDpoPair *p, double *d_policy_chosen,
                double *d_policy_rejected, LossDpoMetrics *metrics) {
    double chosen = p->policy_chosen - p->ref_chosen;
    double rejected = p->policy_rejected - p->ref_rejected;
    double dh, loss = dpo_loss_of_h(c, chosen - rejected, &dh);
    store(d_policy_chosen, dh);
    store(d_policy_rejected, -dh);
    if (metrics) {
        metrics->chosen_reward = c->beta * chosen;
        metrics->rejected_reward = c->beta * rejected;
        metrics->margin = metrics->chosen_reward - metrics->rejected_reward;
        metrics->accuracy = metrics->margin > 0;
    }
    return loss;
}

double loss_dpo_batch(const LossDpoConfig *c, size_t n, const float *policy_chosen,
                      const float *policy_rejected, const float *ref_chosen,
                      const float *ref_rejected, double denom, float *d_policy_chosen,
                      float *d_policy_rejected, LossDpoMetrics *metrics) {
    if (!denom_ok("loss_dpo_batch", denom)) return NAN;
    double loss = 0;
    LossDpoMetrics sum = {0};
    for (size_t b = 0; b < n; b++) {
        LossDpoPair p = {.policy_chosen = policy_chosen[b], .policy_rejected = policy_rejected[b],
                         .ref_chosen = ref_chosen[b], .ref_rejected = ref_rejected[b]};
        LossDpoMetrics m;
        double dc;
        loss += loss_dpo(c, &p, &dc, NULL, &m);
        if (d_policy_chosen) d_policy_chosen[b] = (float)(dc / denom);
        if (d_policy_rejected) d_policy_rejected[b] = (float)(-dc / denom);
        sum.chosen_reward += m.chosen_reward;
        sum.rejected_reward += m.rejected_reward;
        sum.margin += m.margin;
        sum.accuracy += m.accuracy;
    }
    if (metrics)
        *metrics = (LossDpoMetrics){.chosen_reward = sum.chosen_reward / denom,
                                    .rejected_reward = sum.rejected_reward / denom,
                                    .margin = sum.margin / denom,
                                    .accuracy = sum.accuracy / denom};
    return loss / denom;
}
