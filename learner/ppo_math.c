/* ppo_math — GAE, whitening, clipped policy/value losses, entropy bonus and
 * the adaptive KL controller for the PPO learner and the grid world (see
 * ppo_math.h). All arithmetic is in double;
 * float appears only at the array interfaces the models use. */
#include "learner/ppo_math.h"

#include <math.h>

#include "common/err.h"

static int denom_ok(const char *who, double denom) {
    if (denom > 0 && isfinite(denom)) return 1;
    err_set("%s: denom must be positive and finite, got %g", who, denom);
    return 0;
}

static int selected(const float *mask, size_t i) {
    return !mask || mask[i] != 0;
}

/* ---- GAE ------------------------------------------------------------------ */

static int gae_params_ok(double gamma, double lambda) {
    if (!(gamma >= 0 && gamma <= 1)) {
        err_set("GAE: gamma must be in [0, 1], got %g", gamma);
        return 0;
    }
    if (!(lambda >= 0 && lambda <= 1)) {
        err_set("GAE: lambda must be in [0, 1], got %g", lambda);
        return 0;
    }
    return 1;
}

/* The backward recursion. next_v holds V(s_{t+1}) read before ret[t] is
 * written, so ret may alias values; adv[t] is written after rewards[t] is
 * read, so adv may alias rewards. */
static void gae_run(int T, const float *rewards, const float *values, double bootstrap, double gamma,
                    double lambda, float *adv, float *ret) {
    double next_v = bootstrap, next_adv = 0;
    for (int t = T - 1; t >= 0; t--) {
        double v = values[t];
        double delta = rewards[t] + gamma * next_v - v;
        next_adv = delta + gamma * lambda * next_adv;
        adv[t] = (float)next_adv;
        if (ret) ret[t] = (float)(next_adv + v);
        next_v = v;
    }
}

int ppo_gae(int T, const float *rewards, const float *values, double bootstrap, double gamma,
            double lambda, float *adv, float *ret) {
    if (T < 0) return err_set("GAE: trajectory length must be >= 0, got %d", T);
    if (!gae_params_ok(gamma, lambda)) return -1;
    if (!isfinite(bootstrap)) return err_set("GAE: bootstrap value must be finite, got %g", bootstrap);
    gae_run(T, rewards, values, bootstrap, gamma, lambda, adv, ret);
    return 0;
}

/* ---- whitening ------------------------------------------------------------ */

void ppo_moments_add(PpoMoments *m, size_t n, const float *x, const float *mask) {
    for (size_t i = 0; i < n; i++)
        if (selected(mask, i)) {
            m->count += 1;
            m->sum += x[i];
        }
}

void ppo_moments_add_sq_dev(PpoMoments *m, size_t n, const float *x, const float *mask) {
    double mean = ppo_moments_mean(m);
    for (size_t i = 0; i < n; i++)
        if (selected(mask, i)) {
            double d = x[i] - mean;
            m->sq_dev += d * d;
        }
}

double ppo_moments_mean(const PpoMoments *m) {
    return m->count > 0 ? m->sum / m->count : 0.0;
}

double ppo_moments_var(const PpoMoments *m) {
    return m->count >= 2 ? m->sq_dev / (m->count - 1) : 0.0;
}

int ppo_whiten_with(size_t n, float *x, const float *mask, const PpoMoments *m, int shift_mean) {
    if (!(m->count >= 0 && isfinite(m->count) && isfinite(m->sum) && m->sq_dev >= 0 && isfinite(m->sq_dev)))
        return err_set("whitening: bad moments (count %g, sum %g, sum of squared deviations %g)", m->count,
                       m->sum, m->sq_dev);
    double mean = ppo_moments_mean(m);
    double scale = 1.0 / sqrt(ppo_moments_var(m) + PPO_WHITEN_EPS);
    double add_back = shift_mean ? 0.0 : mean;
    for (size_t i = 0; i < n; i++)
        x[i] = selected(mask, i) ? (float)((x[i] - mean) * scale + add_back) : 0.0f;
    return 0;
}

int ppo_whiten(size_t n, float *x, const float *mask, int shift_mean) {
    PpoMoments m = {0};
    ppo_moments_add(&m, n, x, mask);
    ppo_moments_add_sq_dev(&m, n, x, mask);
    return ppo_whiten_with(n, x, mask, &m, shift_mean);
}

/* ---- policy loss ---------------------------------------------------------- */

int ppo_clip_check(const PpoClip *c) {
    if (!(c->low >= 0 && c->low < 1)) return err_set("clip_low must be in [0, 1), got %g", c->low);
    if (!(c->high >= 0 && isfinite(c->high))) return err_set("clip_high must be >= 0 and finite, got %g", c->high);
    if (!(c->dual == 0 || (c->dual > 1 && isfinite(c->dual))))
        return err_set("dual_clip must be 0 (off) or a finite number > 1, got %g", c->dual);
    if (!(c->log_ratio_max > 0))
        return err_set("log_ratio_max must be > 0 (INFINITY = off), got %g", c->log_ratio_max);
    return 0;
}

static void policy_stats_nan(PpoPolicyStats *stats) {
    *stats = (PpoPolicyStats){.clip_frac = NAN, .clip_frac_low = NAN, .clip_frac_high = NAN,
                              .dual_clip_frac = NAN, .approx_kl = NAN, .ratio_dev_max = NAN};
}

/* The max of the two terms decided without forming them: for adv >= 0 the
 * loss is -adv * min(r, clip(r)), whose unclipped branch holds while
 * r <= 1 + high; for adv < 0 it is -adv * max(r, clip(r)), unclipped while
 * r >= 1 - low. Deciding by r keeps adv = 0, r = inf from giving 0 * inf.
 * With low = high, no dual clip and no clamp this is bit for bit the
 * symmetric loss PPO has always run. */
double ppo_policy_loss_with(double logp, double old_logp, double adv, const PpoClip *c, double *d_logp,
                            PpoPolicyStats *stats) {
    double raw = logp - old_logp;
    if (isnan(raw) || isnan(adv)) { /* fmin/fmax would quietly drop a NaN */
        if (d_logp) *d_logp = NAN;
        if (stats) policy_stats_nan(stats);
        return NAN;
    }
    double log_ratio = fmin(fmax(raw, -c->log_ratio_max), c->log_ratio_max), ratio = exp(log_ratio);
    int unclipped = adv >= 0 ? ratio <= 1 + c->high : ratio >= 1 - c->low;
    double kept = unclipped ? ratio : fmin(fmax(ratio, 1 - c->low), 1 + c->high);
    double loss = adv == 0 ? 0.0 : -adv * kept;
    int capped = c->dual > 0 && adv < 0 && loss > -c->dual * adv;
    if (capped) loss = -c->dual * adv;
    int flows = unclipped && !capped && log_ratio == raw && adv != 0;
    if (d_logp) *d_logp = flows ? -adv * ratio : 0.0;
    if (stats) {
        int clipped = !unclipped && adv != 0;
        *stats = (PpoPolicyStats){.clip_frac = clipped, .clip_frac_low = clipped && adv < 0,
                                  .clip_frac_high = clipped && adv > 0, .dual_clip_frac = capped,
                                  /* expm1 keeps the k3 estimate accurate (and >= 0) for ratios near 1 */
                                  .approx_kl = fmax(0.0, expm1(raw) - raw), .ratio_dev_max = fabs(expm1(raw))};
    }
    return loss;
}

double ppo_policy_loss(double logp, double old_logp, double adv, double clip, double *d_logp,
                       PpoPolicyStats *stats) {
    PpoClip c = {.low = clip, .high = clip, .dual = 0, .log_ratio_max = INFINITY};
    return ppo_policy_loss_with(logp, old_logp, adv, &c, d_logp, stats);
}

double ppo_policy_loss_batch(size_t n, const float *logp, const float *old_logp, const float *adv,
                             const float *mask, double clip, double denom, float *d_logp,
                             PpoPolicyStats *stats) {
    if (stats) policy_stats_nan(stats);
    if (!denom_ok("policy loss", denom)) return NAN;
    if (!(clip >= 0 && isfinite(clip))) {
        err_set("policy loss: clip range must be >= 0 and finite, got %g", clip);
        return NAN;
    }
    double loss = 0;
    PpoPolicyStats sum = {0};
    for (size_t i = 0; i < n; i++) {
        if (!selected(mask, i)) {
            if (d_logp) d_logp[i] = 0;
            continue;
        }
        double d;
        PpoPolicyStats s;
        loss += ppo_policy_loss(logp[i], old_logp[i], adv[i], clip, &d, &s);
        sum.clip_frac += s.clip_frac;
        sum.clip_frac_low += s.clip_frac_low;
        sum.clip_frac_high += s.clip_frac_high;
        sum.approx_kl += s.approx_kl;
        sum.ratio_dev_max = fmax(sum.ratio_dev_max, s.ratio_dev_max);
        if (d_logp) d_logp[i] = (float)(d / denom);
    }
    if (stats)
        *stats = (PpoPolicyStats){.clip_frac = sum.clip_frac / denom, .clip_frac_low = sum.clip_frac_low / denom,
                                  .clip_frac_high = sum.clip_frac_high / denom, .dual_clip_frac = 0,
                                  .approx_kl = sum.approx_kl / denom, .ratio_dev_max = sum.ratio_dev_max};
    return loss / denom;
}

/* ---- value loss ----------------------------------------------------------- */

double ppo_value_loss(double v, double v_old, double ret, double clip, double *d_v, int *clipped) {
    double err = v - ret, loss = 0.5 * err * err, grad = err;
    int was_clipped = 0;
    if (clip > 0) {
        double vc = fmin(fmax(v, v_old - clip), v_old + clip);
        double clipped_loss = 0.5 * (vc - ret) * (vc - ret);
        if (clipped_loss > loss) {
            loss = clipped_loss;
            grad = 0;
            was_clipped = 1;
        }
    }
    if (d_v) *d_v = grad;
    if (clipped) *clipped = was_clipped;
    return loss;
}

double ppo_value_loss_batch(size_t n, const float *v, const float *v_old, const float *ret,
                            const float *mask, double clip, double denom, float *d_v,
                            double *clip_frac) {
    if (clip_frac) *clip_frac = NAN;
    if (!denom_ok("value loss", denom)) return NAN;
    if (!(clip >= 0)) {
        err_set("value loss: clip range must be >= 0 (0 = off), got %g", clip);
        return NAN;
    }
    double loss = 0, n_clipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (!selected(mask, i)) {
            if (d_v) d_v[i] = 0;
            continue;
        }
        double d;
        int c;
        loss += ppo_value_loss(v[i], v_old[i], ret[i], clip, &d, &c);
        n_clipped += c;
        if (d_v) d_v[i] = (float)(d / denom);
    }
    if (clip_frac) *clip_frac = n_clipped / denom;
    return loss / denom;
}

/* ---- entropy -------------------------------------------------------------- */

double ppo_entropy_loss_batch(size_t n, const float *entropy, const float *mask, double c2,
                              double denom, double *d_entropy) {
    if (d_entropy) *d_entropy = NAN;
    if (!denom_ok("entropy bonus", denom)) return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        if (selected(mask, i)) sum += entropy[i];
    if (d_entropy) *d_entropy = -c2 / denom;
    return -c2 * sum / denom;
}

/* ---- adaptive KL controller ----------------------------------------------- */

int ppo_klctl_init(PpoKlController *c, double value, double target, double horizon) {
    if (!(value >= 0 && isfinite(value))) return err_set("kl_coef: expected a finite value >= 0, got %g", value);
    if (isnan(target)) return err_set("kl_target: expected a number (<= 0 for a fixed coefficient), got nan");
    if (target > 0 && !(horizon > 0 && isfinite(horizon)))
        return err_set("kl_horizon: expected a positive number with an adaptive KL target, got %g", horizon);
    *c = (PpoKlController){value, target, horizon};
    return 0;
}

int ppo_klctl_update(PpoKlController *c, double current_kl, double n_steps) {
    if (!isfinite(current_kl)) return err_set("adaptive KL: measured KL is %g; coefficient left at %g", current_kl, c->value);
    if (!(n_steps >= 0 && isfinite(n_steps))) return err_set("adaptive KL: n_steps must be >= 0, got %g", n_steps);
    if (c->target <= 0) return 0;
    double e = fmin(fmax(current_kl / c->target - 1, -0.2), 0.2);
    c->value *= 1 + e * n_steps / c->horizon;
    return 0;
}
