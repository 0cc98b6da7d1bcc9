/* rewarder — the RL rewarder role: holds the frozen reward model (reward =
 * rm or rm+verifier), the verifier (reward = verifier or rm+verifier:
 * common/task/verifier.h, an external cmd: program started once per rank)
 * and the frozen reference (SFT) model (unless kl_in = none). For each
 * rollout batch from an actor it computes the reward model's score of every
 * response (normalised by the RM's stored offset/scale and clipped, as
 * configured), the verifier's score and components (from the prompt's text
 * and "answer"), the sequence score rm_weight * r_theta + verifier_weight *
 * r_verifier + the overlong penalty, the reference log-prob of every
 * response token, the per-token KL estimate between the behaviour policy
 * and the reference, and the per-token reward: r_t = -lambda * KL_t with
 * the score added on the last token for kl_in = reward, the score alone for
 * kl_in = loss (the learner puts the KL in its loss) or none (no reference:
 * logp_ref and kl are 0). Every component is kept for the log. Then it
 * passes the batch on to a learner.
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

/* ---- the sequence score ------------------------------------------------ */

/* DAPO's overlong shaping (Yu et al. 2025): a response of n tokens with
 * the limit max_new and a buffer of B > 0 tokens gets
 * -penalty * (n - (max_new - B)) / B when n > max_new - B (so -penalty at
 * n = max_new), else 0; B <= 0: always 0. */
double rewarder_overlong(int n, int max_new, int buffer, double penalty);

/* What a response's score is made of. */
typedef struct {
    int has_rm;          /* reward = rm or rm+verifier */
    double r_theta;      /* the reward model's score, normalised and clipped */
    int has_verifier;    /* reward = verifier or rm+verifier */
    double r_verifier;   /* the verifier's score */
    double overlong;     /* rewarder_overlong (<= 0) */
} RewarderScore;

/* rm_weight * r_theta + verifier_weight * r_verifier (the terms present) +
 * overlong: the sequence score the token rewards carry on the last token. */
double rewarder_combine(const RewarderScore *s, double rm_weight, double verifier_weight);

/* ---- the role ---------------------------------------------------------- */

int rewarder_run(const Config *cfg, const PpoLayout *layout);

#endif
