/* actor — the PPO actor role: holds a policy snapshot (weights + version,
 * replaced whenever the learner sends a newer one), and for every work order
 * samples responses to the ordered prompts with the KV-cache sampler,
 * recording each token's behaviour log-prob and the snapshot version, then
 * sends the batch to a rewarder. Sampling of an order is seeded by the order
 * itself, so which actor serves it does not change the samples. */
#ifndef ACTOR_H
#define ACTOR_H

#include "common/config.h"
#include "common/mpi/ppo_config.h"

/* Runs until the learner says stop. Returns 0 or dies with a message. */
int actor_run(const Config *cfg, const PpoLayout *layout);

#endif
