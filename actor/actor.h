/* actor — the PPO actor role: holds a policy snapshot (weights + version,
 * replaced whenever the learner sends a newer one), and for every work order
 * samples responses to the ordered prompts with the KV-cache sampler,
 * recording each token's behaviour log-prob and the snapshot version, then
 * sends the batch to a rewarder. Sampling of an order is seeded by the order
 * itself, so which actor serves it does not change the samples.
 * Messages are handled in the order they came; with snapshot_send = bcast
 * they are taken off MPI early (between orders and before every decoding
 * step) so that a snapshot's broadcast is posted, into a staging buffer, as
 * soon as its header arrives, and its weights replace the policy's at the
 * header's turn: the same orders meet the same version as point-to-point. */
#ifndef ACTOR_H
#define ACTOR_H

#include "common/config.h"
#include "common/mpi/ppo_config.h"

/* Runs until the learner says stop. Returns 0 or dies with a message. */
int actor_run(const Config *cfg, const PpoLayout *layout);

#endif
