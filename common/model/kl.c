/* kl — per-token KL estimators and their gradients; see kl.h. */
#include "common/model/kl.h"

#include <math.h>
#include <string.h>

#include "common/err.h"

static const char *const kl_names[] = {[KL_K1] = "k1", [KL_K2] = "k2", [KL_K3] = "k3"};
enum { KL_ESTIMATORS = sizeof kl_names / sizeof kl_names[0] };

int kl_parse(const char *name, KlEstimator *est) {
    for (int e = 0; name && e < KL_ESTIMATORS; e++)
        if (!strcmp(name, kl_names[e])) {
            *est = (KlEstimator)e;
            return 0;
        }
    return err_set("unknown KL estimator '%s' (expected k1, k2 or k3)", name ? name : "(null)");
}

const char *kl_name(KlEstimator est) {
    return (unsigned)est < KL_ESTIMATORS ? kl_names[est] : "?";
}

/* k3 before its upper clamp, at x = log(q/p) already clamped. expm1 keeps
 * it accurate for q close to p, where exp(x) - 1 - x cancels; expm1(x) >= x
 * for every x and fmax guards the last bit. */
static double k3_raw(double x) {
    return fmax(0.0, expm1(x) - x);
}

static double log_ratio_clamped(double logp, double logq) {
    return fmin(fmax(logq - logp, -KL_LOG_RATIO_MAX), KL_LOG_RATIO_MAX);
}

double kl_estimate(KlEstimator est, double logp, double logq) {
    double d = logp - logq;
    switch (est) {
    case KL_K1:
        return d;
    case KL_K2:
        return 0.5 * d * d;
    case KL_K3:
        return fmin(k3_raw(log_ratio_clamped(logp, logq)), KL_K3_MAX);
    }
    return NAN;
}

double kl_grad(KlEstimator est, double logp, double logq) {
    switch (est) {
    case KL_K1:
        return 1.0;
    case KL_K2:
        return logp - logq;
    case KL_K3: {
        double x = logq - logp;
        if (isnan(x)) return NAN;
        if (fabs(x) > KL_LOG_RATIO_MAX || k3_raw(x) > KL_K3_MAX) return 0.0;
        return -expm1(x);
    }
    }
    return NAN;
}

int kl_tokens(KlEstimator est, size_t n, const float *logp, const float *logq, float *kl) {
    if ((unsigned)est >= KL_ESTIMATORS) return err_set("KL estimator: invalid value %d", (int)est);
    for (size_t i = 0; i < n; i++) kl[i] = (float)kl_estimate(est, logp[i], logq[i]);
    return 0;
}
