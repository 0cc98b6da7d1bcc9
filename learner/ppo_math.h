/* ppo_math — the arithmetic of PPO as used by the distributed PPO learner
 * (language-model responses, one terminal trajectory per response) and by
 * `rlhf gridworld` (multi-step episodes with gamma < 1): generalised
 * advantage estimation, advantage whitening, the clipped policy loss (also
 * with clip-higher, dual-clip and a log-ratio clamp, for the critic-free
 * estimators of learner/algos.h) and value loss with their gradients, the
 * entropy bonus and the adaptive KL controller (the learner owns lambda).
 * The per-token KL estimators and the reward shaping r = score - lambda * KL
 * are the rewarder's (common/model/kl.h, rewarder/rewarder.h). Model-free:
 * callers feed log-probs, values and entropies from their model and push the
 * returned gradients back through it. Everything is computed in double;
 * checked against torch autograd fixtures (tests/fixtures/make_ppo_fixture.py;
 * the clip-higher, dual-clip and clamp cases in make_algos_fixture.py).
 *
 * Like learner/losses.h, the losses come in two flavours:
 *   per-element  ppo_policy_loss(_with), ppo_value_loss: one token (or one step),
 *                unscaled loss and gradient, double in and out.
 *   batched      ppo_*_batch: n tokens, float arrays in, float gradients out,
 *                an optional mask (NULL = every token counts; mask[i] == 0
 *                drops token i: no loss, no statistics, gradient 0). The
 *                returned loss, the gradients and the averaged statistics are
 *                per-token sums divided by `denom`. Pass denom = number of
 *                unmasked tokens for a local mean; under data parallelism pass
 *                the GLOBAL count on every rank and all-reduce-sum loss,
 *                gradients and statistics (MAX for the *_max fields) — the
 *                result is the global mean for any number of ranks. denom
 *                must be positive and finite, else NAN and an error
 *                (common/err.h).
 *
 * Sign convention: every loss is to be MINIMISED, so the policy loss is the
 * negated PPO surrogate and the entropy bonus enters as -c2 * H. */
#ifndef PPO_MATH_H
#define PPO_MATH_H

#include <stddef.h>

/* ---- generalised advantage estimation ---------------------------------- */

/* GAE (Schulman et al. 2016) over one trajectory of T steps. values[t] is
 * V(s_t), the value of the state in which action t was taken; bootstrap is
 * V(s_T), the value after the last step: 0 when the trajectory terminated
 * (a finished response, the cat on the meat or in the bathtub), the critic's
 * estimate when it was cut off (step limit).
 *   delta_t = rewards[t] + gamma * V(s_{t+1}) - values[t]   (V(s_T) = bootstrap)
 *   adv[t]  = delta_t + gamma * lambda * adv[t+1]            (adv[T] = 0)
 *   ret[t]  = adv[t] + values[t]                             (value target)
 * lambda = 1 makes ret the discounted reward-to-go plus gamma^(T-t) *
 * bootstrap; lambda = 0 makes adv the one-step TD error. Accumulates in
 * double. adv may be the rewards array and ret the values array (computed in
 * place); ret may be NULL. T = 0 does nothing. Returns 0, or -1 with an error
 * when gamma or lambda is outside [0, 1], bootstrap is not finite or T < 0. */
int ppo_gae(int T, const float *rewards, const float *values, double bootstrap, double gamma,
            double lambda, float *adv, float *ret);

/* ---- advantage whitening ----------------------------------------------- */

/* Moments of the selected entries in two passes, so the variance stays
 * accurate when the mean is far larger than the spread (a one-pass
 * sum_sq - sum^2 / count cancels: at mean 1e4 and spread 1e-2 it loses about
 * 8 of double's 16 digits before the float rounding of the data is even
 * counted). Every field is a plain sum, so data-parallel ranks whiten with
 * the global moments in two all-reduces:
 *   pass 1: ppo_moments_add over every array; all-reduce-sum count and sum
 *   pass 2: ppo_moments_add_sq_dev over the same arrays (deviations about the
 *           GLOBAL mean, sum / count); all-reduce-sum sq_dev
 * A single process runs the two passes without the all-reduces. */
typedef struct {
    double count;  /* selected entries */
    double sum;    /* their sum */
    double sq_dev; /* sum of (x - sum / count)^2, from pass 2 */
} PpoMoments;

/* Pass 1: adds the count and sum of the entries with mask[i] != 0 (mask NULL
 * = all n) to *m; start from (PpoMoments){0}. Several arrays may be added to
 * one PpoMoments. */
void ppo_moments_add(PpoMoments *m, size_t n, const float *x, const float *mask);
/* Pass 2: adds the squared deviations of the same entries about
 * ppo_moments_mean(m) to m->sq_dev. Call it only once count and sum are
 * final (global) and on the same arrays and masks as pass 1. */
void ppo_moments_add_sq_dev(PpoMoments *m, size_t n, const float *x, const float *mask);
/* Mean (0 when count is 0). */
double ppo_moments_mean(const PpoMoments *m);
/* Unbiased variance sq_dev / (count - 1), as torch.var and TRL's masked_var;
 * 0 when count < 2 (one value has no spread). Never negative. */
double ppo_moments_var(const PpoMoments *m);

/* Whitening epsilon: x' = (x - mean) / sqrt(var + PPO_WHITEN_EPS), as TRL's
 * masked_whiten. It keeps a batch of (nearly) equal advantages from being
 * blown up to unit variance: zero spread whitens to exactly 0. */
#define PPO_WHITEN_EPS 1e-8

/* Whitens x[0..n) in place with the given (global) moments. shift_mean = 0
 * adds the mean back (scale only; TRL's shift_mean=False). Entries with
 * mask[i] == 0 are set to 0 so padding never leaks into a loss. m->count = 0
 * (everything masked on every rank) zeroes the selected entries — there are
 * none — and returns 0. Returns -1 with an error for negative or non-finite
 * moments. */
int ppo_whiten_with(size_t n, float *x, const float *mask, const PpoMoments *m, int shift_mean);
/* The single-process version: both passes over x itself, then
 * ppo_whiten_with. */
int ppo_whiten(size_t n, float *x, const float *mask, int shift_mean);

/* ---- clipped policy loss ----------------------------------------------- */

/* Statistics of the policy loss. Per element: the *_frac fields are 0 or 1,
 * approx_kl and ratio_dev_max that token's values. Batched: the *_frac
 * fields and approx_kl are sums / denom; ratio_dev_max is the maximum over
 * unmasked tokens (all-reduce with MAX). */
typedef struct {
    double clip_frac;      /* the clipped term was strictly the larger loss, so the
                              token gives no gradient (TRL's pg_clipfrac) */
    double clip_frac_low;  /* ...of which adv < 0 and ratio below 1 - clip_low */
    double clip_frac_high; /* ...of which adv > 0 and ratio above 1 + clip_high */
    double dual_clip_frac; /* adv < 0 and the dual-clip cap -c * adv held (verl's
                              pg_clipfrac_lower); no gradient either */
    double approx_kl;      /* k3 estimate of KL(old || new): (ratio - 1) - log ratio, >= 0 */
    double ratio_dev_max;  /* |ratio - 1|: the actor/learner mismatch check at lag 0 */
} PpoPolicyStats;

/* The clip settings of the general per-token policy loss. */
typedef struct {
    double low;           /* ratio clipped below at 1 - low; in [0, 1) */
    double high;          /* ... and above at 1 + high, >= 0 (DAPO's clip-higher:
                             high > low, Yu et al. 2025 use 0.2 / 0.28) */
    double dual;          /* dual-clip c > 1 (Ye et al. 2020): the loss of a token
                             with adv < 0 is at most -c * adv, however large the
                             ratio has grown; 0 = off */
    double log_ratio_max; /* logp - old_logp clamped to [-max, max] before exp, a
                             numerical guard (verl and OpenRLHF: 20); INFINITY = off */
} PpoClip;

/* 0, or -1 with an error naming the field (clip_low, clip_high, dual_clip,
 * log_ratio_max) and its range. */
int ppo_clip_check(const PpoClip *c);

/* One token, with lr = clamp(logp - old_logp, -log_ratio_max, log_ratio_max)
 * and ratio = exp(lr):
 *   L = max(-adv * ratio, -adv * clip(ratio, 1 - low, 1 + high))
 *   L = min(L, -dual * adv)   when adv < 0 and dual > 0 (dual-clip)
 * Writes dL/dlogp: -adv * ratio when the unclipped term is active (ties
 * included), neither the dual cap nor the log-ratio clamp holds (their bounds
 * themselves still pass the gradient, as torch.clamp does), else 0. adv = 0
 * gives loss 0 and gradient 0 even for an infinite ratio; approx_kl and
 * ratio_dev_max are of the unclamped ratio. d_logp and stats may be NULL. c
 * is trusted (ppo_clip_check). */
double ppo_policy_loss_with(double logp, double old_logp, double adv, const PpoClip *c, double *d_logp,
                            PpoPolicyStats *stats);

/* The symmetric PPO loss: ppo_policy_loss_with low = high = clip, no dual
 * clip, no log-ratio clamp:
 *   L = max(-adv * ratio, -adv * clip(ratio, 1 - clip, 1 + clip))
 * (= -min(ratio*A, clip(ratio)*A)). At ratio = 1 the gradient is exactly
 * -adv. clip >= 0 is trusted (the batched version checks it). */
double ppo_policy_loss(double logp, double old_logp, double adv, double clip, double *d_logp,
                       PpoPolicyStats *stats);

/* n tokens; see the file comment for mask and denom. d_logp and stats may be
 * NULL. clip must be >= 0 and finite, else NAN and an error. */
double ppo_policy_loss_batch(size_t n, const float *logp, const float *old_logp, const float *adv,
                             const float *mask, double clip, double denom, float *d_logp,
                             PpoPolicyStats *stats);

/* ---- clipped value loss ------------------------------------------------ */

/* One token with value v (current critic), v_old (the critic when the
 * rollout was scored) and return ret:
 *   vc = clip(v, v_old - clip, v_old + clip)
 *   L  = 0.5 * max((v - ret)^2, (vc - ret)^2)
 * The caller multiplies by c1. Writes dL/dv: (v - ret) when the unclipped
 * term is active (ties included), else 0 (v is then outside the clip range
 * and vc does not move with it); *clipped = 1 when the clipped term was
 * strictly larger. clip = 0 turns clipping off (plain 0.5 * (v - ret)^2).
 * d_v and clipped may be NULL. */
double ppo_value_loss(double v, double v_old, double ret, double clip, double *d_v, int *clipped);

/* n tokens; *clip_frac (may be NULL) = clipped count / denom. clip must be
 * >= 0 (0 = off) and not NaN, else NAN and an error. */
double ppo_value_loss_batch(size_t n, const float *v, const float *v_old, const float *ret,
                            const float *mask, double clip, double denom, float *d_v,
                            double *clip_frac);

/* ---- entropy bonus ----------------------------------------------------- */

/* L_ent = -c2 * sum(mask_i * H_i) / denom, minimised alongside the other
 * losses (so entropy is rewarded). The model computes each token's entropy H
 * and its backward takes dL/dH, which is the same for every unmasked token:
 * *d_entropy = -c2 / denom (masked tokens get 0). Returns L_ent; d_entropy
 * may be NULL. Bad denom: NAN and an error. */
double ppo_entropy_loss_batch(size_t n, const float *entropy, const float *mask, double c2,
                              double denom, double *d_entropy);

/* ---- adaptive KL controller -------------------------------------------- */

/* Ziegler et al. 2019, as TRL's AdaptiveKLController: the KL coefficient
 * (lambda of r = r_theta - lambda * KL) moves towards the value that keeps
 * the measured KL at target:
 *   e = clip(current_kl / target - 1, -0.2, 0.2)
 *   value *= 1 + e * n_steps / horizon
 * n_steps is the number of samples (responses) since the last update, so the
 * speed of adaptation does not depend on the batch size. target <= 0 makes a
 * fixed controller (TRL's FixedKLController): value never changes. */
typedef struct {
    double value;   /* current coefficient */
    double target;  /* target KL per response; <= 0: fixed coefficient */
    double horizon; /* samples over which a 20% error changes value by ~20% */
} PpoKlController;

/* Checks value >= 0 and finite, and horizon > 0 and finite when target > 0:
 * 0, or -1 with an error naming the field. */
int ppo_klctl_init(PpoKlController *c, double value, double target, double horizon);
/* One update. Returns 0, or -1 with an error (value unchanged) when
 * current_kl is not finite or n_steps is negative or not finite: a NaN KL
 * would otherwise poison the coefficient for the rest of the run. */
int ppo_klctl_update(PpoKlController *c, double current_kl, double n_steps);

#endif
