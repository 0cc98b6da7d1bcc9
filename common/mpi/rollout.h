/* rollout — every message the PPO ranks exchange, packed and checked in one
 * place (the tags are common/mpi/msg.h's MsgTag):
 *   MSG_ORDER     learner -> actor      RolloutOrder: which prompts to sample
 *                                       for which iteration, with the KL
 *                                       coefficient in force and the seed
 *   MSG_ROLLOUT   actor -> rewarder     RolloutBatch, unscored: prompts,
 *                                       responses, behaviour log-probs, version
 *   MSG_SCORED    rewarder -> learner   RolloutBatch, scored: + RM scores,
 *                                       reference log-probs, KL, rewards
 *   MSG_SNAPSHOT  learner -> actor      RolloutSnapshot header (version,
 *                                       parameter count, checksum, how the
 *                                       weights come): the weights follow as
 *                                       one float message (MSG_SNAPSHOT_DATA)
 *                                       received in place, or by broadcast
 *                                       number bcast_seq on the snapshot
 *                                       communicator (PpoLayout.snap_comm)
 *   MSG_HOLDS     actor -> leader       RolloutHolds: broadcast bcast_seq has
 *                                       completed here (its buffer is free)
 *   MSG_PROGRESS  actor -> learner     RolloutProgress: an order is sampled and
 *                                       on its way to the named rewarder (the
 *                                       learner's deadlines: who holds it)
 *   MSG_STOP      learner -> actor, rewarder: shut down (and leader ->
 *                                       learners at the very end: stop draining)
 *   MSG_STOPPED   actor, rewarder -> leader: stopped, nothing more will come
 *   MSG_ABANDON   learner -> learners   RolloutAbandon: leave the iteration
 *                                       now (a signal, or a rank past its
 *                                       second deadline)
 *   MSG_LOGROWS   learner k -> learner 0: RolloutLogRow[], samples to log
 * Every byte message starts with a magic number (which also names the wire
 * format's revision) and its type, equal to its tag. Pack functions append
 * to a MsgBuf. Unpack functions read from the buffer's cursor, check the
 * magic, the type, every count against the bytes actually there (never
 * reading past them; bytes left over are an error too) and every range they
 * can know, and on a bad message return -1 + err_set naming the message and
 * the field. Pack and unpack are pure functions over buffers (tested
 * without MPI); only the snapshot's send/receive touch MPI. */
#ifndef ROLLOUT_H
#define ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/mpi/msg.h"

/* 'R' 'L' 'H' + wire revision: ranks built from another revision refuse. */
#define ROLLOUT_MAGIC 0x524c4807u
/* Verifier components a rollout carries (common/task/verifier.h
 * VERIFIER_NCOMP: correct, format, manners, concision; the rewarder checks
 * they agree). */
#define ROLLOUT_VCOMPS 4
/* Bound on any count in a message (samples, tokens). */
#define ROLLOUT_MAX_COUNT (1 << 20)

typedef struct {
    int32_t iteration, chunk;  /* chunk: index of this order within the iteration */
    double lambda;             /* KL coefficient for these samples */
    uint64_t seed;             /* sampling seed of this chunk */
    int32_t version;           /* sample from this policy version or a newer one */
    int32_t rewarder;          /* world rank that scores the samples */
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
    float score;               /* the sequence score the rewards carry on the last token:
                                  rm_weight r_theta + verifier_weight r_verifier + overlong */
    float r_verifier;          /* the verifier's score (NaN without one) */
    float overlong;            /* the overlong penalty in score (<= 0) */
    float v_comp[ROLLOUT_VCOMPS]; /* the verifier's components (NaN without one) */
    float *logp_ref, *kl, *reward;
} Rollout;

typedef struct {
    int32_t iteration, chunk, version, actor, scored;
    double lambda, t_generate, t_score, t_sent;
    int32_t n;
    Rollout *r;
} RolloutBatch;

/* The header of a policy snapshot; n_params floats follow. */
typedef struct {
    int64_t version;           /* policy version: learner iterations completed */
    uint64_t n_params;
    uint64_t checksum;         /* rollout_checksum of the weights */
    int64_t bcast_seq;         /* -1: the weights follow point-to-point (MSG_SNAPSHOT_DATA); >= 0: they
                                  come by this broadcast (the bcast_seq-th on snap_comm, from 0) */
} RolloutSnapshot;

/* An actor's word to the leader that broadcast bcast_seq (of version) has
 * completed on it: the next broadcast may be posted. */
typedef struct {
    int64_t version, bcast_seq;
} RolloutHolds;

/* An actor's word to the order's learner that the order is sampled and
 * being sent to rewarder. */
typedef struct {
    int32_t iteration, chunk, rewarder;
} RolloutProgress;

/* Why a learner leaves an iteration before its rollouts are in. */
typedef enum { ROLLOUT_ABANDON_SIGNAL = 1, ROLLOUT_ABANDON_DEADLINE = 2 } RolloutAbandon;

/* One processed sample a non-leading learner sends to the leader's log. */
typedef struct {
    Rollout r;                 /* scored */
    int32_t version, actor;
    int64_t group;             /* global sample index / group_size */
    double lambda, t_generate, t_score, gold;
    float *values, *adv;       /* r.resp_len each */
} RolloutLogRow;

void rollout_order_pack(const RolloutOrder *o, MsgBuf *b);
/* 0, or -1 + err_set for a malformed message; on success o owns prompt_index. */
int rollout_order_unpack(MsgBuf *b, RolloutOrder *o);
void rollout_order_free(RolloutOrder *o);

/* MSG_ROLLOUT if !rb->scored, MSG_SCORED otherwise. */
void rollout_batch_pack(const RolloutBatch *rb, MsgBuf *b);
/* scored: 1 to expect MSG_SCORED, 0 for MSG_ROLLOUT. On failure *rb holds
 * nothing to free. */
int rollout_batch_unpack(MsgBuf *b, int scored, RolloutBatch *rb);
/* Allocates the rewarder's arrays of every sample (logp_ref, kl, reward). */
void rollout_batch_alloc_scores(RolloutBatch *rb);
void rollout_batch_free(RolloutBatch *rb);
/* Frees one rollout's arrays (a sample that left its batch). */
void rollout_free(Rollout *r);

/* Order-sensitive 64-bit checksum of the weights' bit patterns: two sums a
 * vectorizing compiler runs at memory speed, so checking a snapshot costs a
 * small fraction of sending it. */
uint64_t rollout_checksum(const float *params, size_t n);
/* The header for these weights at this version (bcast_seq -1: point-to-point). */
RolloutSnapshot rollout_snapshot_of(int64_t version, const float *params, size_t n);
void rollout_snapshot_pack(const RolloutSnapshot *s, MsgBuf *b);
int rollout_snapshot_unpack(MsgBuf *b, RolloutSnapshot *s);
/* -1 + err_set unless the header announces exactly n parameters. */
int rollout_snapshot_check_count(const RolloutSnapshot *s, size_t n);
/* -1 + err_set unless the n received weights are the header's (count and
 * checksum). */
int rollout_snapshot_check_weights(const RolloutSnapshot *s, const float *params, size_t n);
/* Posts the packed header hdr and the weights to dest (req[0], req[1]);
 * hdr and params must stay untouched until both complete. */
void rollout_snapshot_isend(const MsgBuf *hdr, const float *params, size_t n, int dest, MPI_Comm comm,
                            MPI_Request req[2]);
/* After a header s from src has been unpacked: receives its weights in place
 * into params (n floats) and checks them. 0, or -1 + err_set (a header of
 * the wrong count is refused before anything is received). */
int rollout_snapshot_recv(const RolloutSnapshot *s, float *params, size_t n, int src, MPI_Comm comm);
/* Posts the broadcast of the n weights from root on comm (the learner: its
 * parameters; an actor, after a header with bcast_seq >= 0: its staging
 * buffer). Every member posts the broadcasts in bcast_seq order. */
void rollout_snapshot_ibcast(float *params, size_t n, int root, MPI_Comm comm, MPI_Request *r);

void rollout_holds_pack(const RolloutHolds *h, MsgBuf *b);
int rollout_holds_unpack(MsgBuf *b, RolloutHolds *h);

void rollout_stop_pack(MsgBuf *b);
int rollout_stop_unpack(MsgBuf *b);
void rollout_stopped_pack(MsgBuf *b);
int rollout_stopped_unpack(MsgBuf *b);

void rollout_progress_pack(const RolloutProgress *p, MsgBuf *b);
int rollout_progress_unpack(MsgBuf *b, RolloutProgress *p);

void rollout_abandon_pack(RolloutAbandon why, MsgBuf *b);
int rollout_abandon_unpack(MsgBuf *b, RolloutAbandon *why);

/* rows borrowed: nothing is copied but into b. */
void rollout_logrows_pack(const RolloutLogRow *rows, int n, MsgBuf *b);
/* On success *rows (n_rows of them) is owned by the caller: rollout_logrows_free. */
int rollout_logrows_unpack(MsgBuf *b, RolloutLogRow **rows, int *n_rows);
void rollout_logrows_free(RolloutLogRow *rows, int n);

#endif
