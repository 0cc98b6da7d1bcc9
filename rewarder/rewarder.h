/* rewarder — the PPO rewarder role: holds the frozen reward model and the
 * frozen reference (SFT) model. For each rollout batch from an actor it
 * computes the reward model's score of every response (normalised by the
 * RM's stored offset/scale and clipped, as configured), the reference
 * log-prob of every response token, the per-token KL estimate between the
 * behaviour policy and the reference, and the per-token reward
 * r_t = -lambda * KL_t with the score added on the last token; every
 * component is kept for the log. Then it passes the batch on to a learner.
 *
 * The KL estimators (common/model/kl.h) and the reward shaping below are the
 * code the role runs and the code tests/unit/test_rewarder.c checks against
 * the torch fixture (tests/fixtures/make_ppo_fixture.py). Everything is computed in double;
 * float appears only at the array interfaces. lambda itself is owned by the
 * learner (learner/ppo_math.h's adaptive controller) and rides each order. */
#ifndef REWARDER_H
#define REWARDER_H

#include <stddef.h>

#include "common/config.h"
#include "common/mpi/ppo_config.h"
#include "common/model/kl.h"

/* ---- KL estimators ----------------------------------------------------- */

/* k1, k2, k3 and their gradients: common/model/kl.h (shared with the learner's
 * KL-in-loss term). */

/* ---- per-token reward of a response ------------------------------------ */

/* rewards[t] = -kl_coef * kl[t] for the T response tokens, plus the sequence
 * score on the last token. score_clip > 0 clips the score to [-score_clip,
 * score_clip] first (0 = off). kl may be NULL (no KL penalty). T >= 1 (the
 * score needs a token to land on); kl_coef, score and score_clip finite,
 * score_clip >= 0: else -1 and an error. Returns 0. */
int rewarder_shape_rewards(int T, const float *kl, double kl_coef, double score, double score_clip,
                           float *rewards);

/* ---- the role ---------------------------------------------------------- */

int rewarder_run(const Config *cfg, const PpoLayout *layout);

#endif
