/* rewarder — the PPO rewarder role: holds the frozen reward model and the
 * frozen reference (SFT) model. For each rollout batch from an actor it
 * computes the reward model's score of every response (normalised by the
 * RM's stored offset/scale and clipped, as configured), the reference
 * log-prob of every response token, the per-token KL estimate between the
 * behaviour policy and the reference, and the per-token reward
 * r_t = -lambda * KL_t with the score added on the last token; every
 * component is kept for the log. Then it passes the batch on to a learner. */
#ifndef REWARDER_H
#define REWARDER_H

#include "common/config.h"
#include "common/mpi/ppo_config.h"

typedef enum { KL_K1 = 0, KL_K3 = 1 } KlEstimator;

/* Per-token KL estimate from the sampled token's log-probs under the policy
 * (logp) and the reference (logq): k1 = logp - logq; k3 = (q/p - 1) - log(q/p),
 * never negative. */
double rewarder_kl(KlEstimator e, double logp, double logq);

int rewarder_run(const Config *cfg, const PpoLayout *layout);

#endif
