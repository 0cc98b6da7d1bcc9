/* rollout — the message types that travel between the PPO roles: a work
 * order (learner -> actor: which prompts to sample for which iteration, with
 * the KL coefficient in force) and a rollout batch (actor -> rewarder ->
 * learner: prompts, sampled responses with behaviour log-probs and the policy
 * version, then the rewarder's scores, reference log-probs, per-token KL and
 * rewards). Packing and unpacking over common/msg. */
#ifndef ROLLOUT_H
#define ROLLOUT_H

#include <stdint.h>

#include "common/mpi/msg.h"

typedef struct {
    int32_t iteration, chunk;  /* chunk: index of this order within the iteration */
    double lambda;             /* KL coefficient for these samples */
    uint64_t seed;             /* sampling seed of this chunk */
    int32_t n;
    int32_t *prompt_index;     /* indices into the prompt file */
} RolloutOrder;

typedef struct {
    int32_t prompt_index, prompt_len, resp_len, stop;
    int32_t *prompt, *resp;
    float *logp_behav;         /* behaviour log-prob of each response token */
    /* filled by the rewarder */
    float r_raw, r_theta;      /* reward-model score: raw, normalised (+ clipped) */
    float kl_sum;              /* sum of per-token KL */
    float *logp_ref, *kl, *reward;
} Rollout;

typedef struct {
    int32_t iteration, chunk, version, actor, scored;
    double lambda, t_generate, t_score, t_sent;
    int32_t n;
    Rollout *r;
} RolloutBatch;

void rollout_order_pack(const RolloutOrder *o, MsgBuf *b);
/* 0, or -1 + err_set for a malformed message. */
int rollout_order_unpack(MsgBuf *b, RolloutOrder *o);
void rollout_order_free(RolloutOrder *o);

void rollout_batch_pack(const RolloutBatch *rb, MsgBuf *b);
int rollout_batch_unpack(MsgBuf *b, RolloutBatch *rb);
/* Allocates the rewarder's arrays of every sample (logp_ref, kl, reward). */
void rollout_batch_alloc_scores(RolloutBatch *rb);
void rollout_batch_free(RolloutBatch *rb);

#endif
