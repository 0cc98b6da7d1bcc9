/* ppo — the PPO learner role (InstructGPT step 3). It owns the policy, the
 * value model (initialised from the reward model by default) and their
 * optimizers, the adaptive KL coefficient and the prompt schedule. Each
 * iteration it sends the policy snapshot to the actors, hands out work
 * orders, gathers scored rollouts from the rewarders, computes values, GAE
 * advantages (whitened) and returns, and runs PPO epochs of minibatch
 * updates: clipped policy loss with an entropy bonus (plus the pretraining
 * loss for PPO-ptx) and a clipped value loss. Learner 0 writes the rollout
 * log, the metrics and the checkpoints; several learners split each
 * iteration's rollouts and all-reduce gradients. */
#ifndef PPO_H
#define PPO_H

#include <signal.h>

#include "common/config.h"
#include "common/mpi/ppo_config.h"

/* The RL job's configuration: the job's keys (common/mpi/ppo_config.c)
 * and the verifier's (common/task/verifier.c), which common/mpi may not
 * include: every Config of the job (the command line, the settings record,
 * a checkpoint's) is built from these tables. */
#define PPO_CONFIG_TABLES 2
extern const CfgKey *const ppo_config_tables[PPO_CONFIG_TABLES];

/* Returns the exit status (0, or 128 + signal after a checkpoint on
 * SIGTERM/SIGINT/SIGUSR1). *stop_flag is set to the signal's number by the
 * caller's signal handler; the learner checkpoints at the end of the
 * iteration. */
int ppo_learner_run(const Config *cfg, const PpoLayout *layout, volatile sig_atomic_t *stop_flag);

#endif
