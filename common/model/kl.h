/* kl — the per-token KL estimators (k1, k2, k3) and their gradients, in
 * common/ because two roles use them: the rewarder (KL in the reward:
 * rewarder.c) and the learner (KL in the loss: learner/algos.c). Pure
 * arithmetic: no model, no MPI. Double
 * in, double out; checked against the torch fixture tests/fixtures/ppo-ref.h5
 * (group kl/, make_ppo_fixture.py) and tests/fixtures/algos-ref.h5 (group
 * kl/, the gradients; make_algos_fixture.py).
 *
 * Estimators of KL(p || q) from a token sampled from the policy p, given
 * log p and log q (q: the frozen reference) of that token (Schulman,
 * "Approximating KL divergence", 2020), with x = log q - log p:
 *   k1 = -x = log p - log q          unbiased, can be negative
 *   k2 = x^2 / 2                     biased, never negative; its gradient
 *                                    is that of the true KL (for the loss)
 *   k3 = (e^x - 1) - x               unbiased, never negative, lower variance
 * k3 carries verl's clamps (core_algos.kl_penalty "low_var_kl"): x clamped to
 * [-20, 20] first, the estimate to [-10, 10] (so at most 10). Without them a
 * token the policy has made rare but the reference still likes (x = 19.5 in
 * the fixture) is worth 3e8 nats: one such token would swamp a batch's
 * reward or loss. OpenRLHF clamps the estimate only; TRL not at all. The
 * names are those of the kl_estimator key. */
#ifndef KL_H
#define KL_H

#include <stddef.h>

typedef enum {
    KL_K1,
    KL_K2,
    KL_K3,
} KlEstimator;

/* The k3 clamps: |log q - log p| at most this before the estimate... */
#define KL_LOG_RATIO_MAX 20.0
/* ...and the estimate itself at most this. */
#define KL_K3_MAX 10.0

/* "k1", "k2", "k3" -> *est; anything else: -1 and an error naming it and
 * the accepted names. */
int kl_parse(const char *name, KlEstimator *est);
/* The name kl_parse accepts ("?" for an invalid value). */
const char *kl_name(KlEstimator est);
/* One token's estimate; NAN for an invalid estimator. */
double kl_estimate(KlEstimator est, double logp, double logq);
/* d kl_estimate / d logp, the gradient the KL-in-loss term pushes into the
 * policy (logq is the frozen reference's):
 *   k1: 1     k2: logp - logq     k3: 1 - q/p = -expm1(x)
 * and 0 where a k3 clamp holds (|x| > 20, or the estimate above 10); at the
 * clamp bounds themselves the gradient still flows, as torch.clamp's does.
 * NAN for an invalid estimator. */
double kl_grad(KlEstimator est, double logp, double logq);
/* kl[i] = kl_estimate(est, logp[i], logq[i]) for n tokens. -1 and an error
 * for an invalid estimator. */
int kl_tokens(KlEstimator est, size_t n, const float *logp, const float *logq, float *kl);

#endif
