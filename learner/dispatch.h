/* dispatch — the learner's side of the distributed RL job: which prompts go
 * in which work order to which actor and rewarder, snapshots out, scored
 * batches in, the deadlines on the ranks it waits for (rank_timeout, see
 * learner/watch.h), and the end of the job. The learner proper (ppo.c) sees
 * only "the scored batches of iteration it", and the reasons it may have to
 * leave an iteration early: a signal, or a rank past its second deadline.
 *
 * Orders: the leader sends every iteration's orders, chunk c to actor
 * c mod actors and rewarder c mod rewarders (with filter_groups, fill
 * rounds add chunks round * n_chunks + c, owned like chunk c); the order carries the snapshot
 * version it is for, the KL coefficient and the seed, so the learner that
 * owns a chunk (ppo_layout_owner) can rebuild it and give it to another
 * actor or rewarder, with the same result, when the holder is late. A
 * duplicate that arrives after all is dropped.
 *
 * The end: the leader stops the actors, waits for their word (receiving and
 * dropping what is still coming), then the rewarders, then tells the other
 * learners, who drain until then; no rank is left blocked in a send, so
 * MPI_Finalize does not hang. A rank that does not answer ends the job
 * instead (MPI_Abort): a stopped process would hang MPI_Finalize. */
#ifndef DISPATCH_H
#define DISPATCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mpi/ppo_config.h"
#include "common/mpi/rollout.h"
#include "learner/watch.h"

typedef struct {
    const PpoLayout *lay;
    int n_prompts, batch, chunk, lag, max_new, n_ctx;
    int group;                         /* samples per prompt (group_size): consecutive in an order */
    int rounds;                        /* 1 + max_fill_rounds with filter_groups, else 1 (0 = 1) */
    uint64_t seed;
    double rank_timeout;
    int64_t start;                     /* the version of the first snapshot of this run (resume point) */
    int bcast;                         /* snapshot_send = bcast: weights by MPI_Ibcast on lay->snap_comm */
    volatile sig_atomic_t *stop;       /* the signal that asked us to stop, or 0 */
} DispatchConfig;

typedef struct {
    DispatchConfig c;
    int n_chunks;
    Watch watch;
    double *kl_of_version;             /* ring of lag + 1: the KL coefficient orders of a version carry */
    int *perm;                         /* prompt permutation of pass perm_epoch */
    int64_t perm_epoch;
    struct DispatchSend *out;          /* sends in flight */
    int n_out;
    RolloutBatch *pending;             /* scored batches of later iterations (lag > 0) */
    int n_pending;
    struct DispatchNote *notes;        /* progress of later iterations' orders */
    int n_notes;
    int64_t gathering;                 /* the iteration of the last dispatch_gather */
    int round;                         /* ...and its round (filter_groups) */
    char why[512];                     /* the message of a rank past its second deadline */
    /* snapshots (leader): the last version sent, and of the broadcasts */
    int64_t sent_version;
    const float *params;               /* the weights of sent_version (the learner's own) */
    size_t n_params;
    int64_t bcast_next;                /* number of the next broadcast (bcast_seq) */
    RolloutSnapshot bcast_last;        /* header of the last broadcast (bcast_seq -1: none yet) */
    double bcast_since;                /* when it was posted */
    int bcast_resent;                  /* sent again point-to-point to the actors that did not finish it */
    int64_t *holds;                    /* per world rank: the last broadcast completed there (-1: none) */
    int64_t n_bcast, n_p2p;            /* versions sent each way */
    int way;                           /* how the last version went: 1 broadcast, 0 point-to-point, -1 none yet */
} Dispatch;

/* 0, or -1 + err_set (a bad rank_timeout). */
int dispatch_init(Dispatch *d, const DispatchConfig *c);
void dispatch_free(Dispatch *d);

/* The KL coefficient the orders sampled from snapshot `version` carry (call
 * when the version is sent, on every learner: the owner of a chunk rebuilds
 * its order from it). */
void dispatch_note_kl(Dispatch *d, int64_t version, double kl);
/* Leader: posts the snapshot to every actor (the next update of the
 * weights waits for these sends, in dispatch_gather: so a late actor that
 * has not taken its snapshot holds the run until it answers or reaches its
 * second deadline, while its orders go to other actors).
 * With c.bcast, a header goes to every actor point-to-point and the weights
 * once, by MPI_Ibcast on lay->snap_comm, if every actor has finished the
 * previous broadcast (RolloutHolds) and none is late; otherwise this
 * version goes point-to-point (header and weights to each actor), so a
 * stopped actor, which never posts its part of a broadcast, costs speed,
 * not progress: every member posts every broadcast, in order, and no actor
 * ever has two in flight. While actors have not finished the last
 * broadcast they are watched as holders of a send (rank_timeout); when one
 * becomes late, the version is sent again point-to-point to each of them
 * (an actor stuck behind a stopped one in the broadcast tree takes that
 * copy instead). */
void dispatch_send_snapshot(Dispatch *d, const float *params, size_t n, int64_t version);
/* Leader: how many versions went by broadcast and point-to-point so far. */
void dispatch_snapshot_counts(const Dispatch *d, int64_t *n_bcast, int64_t *n_p2p);
/* Leader: posts the work orders of iteration it. */
void dispatch_send_orders(Dispatch *d, int64_t it);
/* Leader: posts the orders of fill round `round` (1 .. rounds - 1) of
 * iteration it (filter_groups: more groups after dead ones were dropped):
 * chunks round * n_chunks + c, with prompts drawn at random (seeded by the
 * iteration and chunk), sampled from the same version as the first round.
 * Round 0 is dispatch_send_orders. */
void dispatch_send_round(Dispatch *d, int64_t it, int round);

/* Waits for this learner's chunks of iteration it, in chunk order, into
 * out[0..*n_out) (the caller frees them), and on the leader for the sends of
 * the snapshot the next update overwrites. Late ranks are warned about and
 * their work reassigned here. Returns 0, or why the iteration is abandoned
 * (ROLLOUT_ABANDON_SIGNAL, or ROLLOUT_ABANDON_DEADLINE with dispatch_why
 * telling which rank); other learners are told. *t_wait: seconds waited. */
int dispatch_gather(Dispatch *d, int64_t it, RolloutBatch **out, int *n_out, double *t_wait);
/* The same for the chunks of fill round `round` of iteration it (sent by
 * dispatch_send_round); dispatch_gather is round 0. */
int dispatch_gather_round(Dispatch *d, int64_t it, int round, RolloutBatch **out, int *n_out, double *t_wait);
/* With several learners: all agree on leaving (the highest reason wins);
 * 0 with one learner unless it gives a reason. */
int dispatch_agree(Dispatch *d, int reason);
/* The message for ROLLOUT_ABANDON_DEADLINE (empty if another learner found it). */
const char *dispatch_why(const Dispatch *d);

/* Ends the roles (see above). after_signal: waits for busy ranks at most
 * 3 s (the checkpoint is written already). 0 when every rank has stopped
 * (MPI_Finalize is safe), or -1 +
 * err_set naming a rank that did not (the caller must MPI_Abort). */
int dispatch_shutdown(Dispatch *d, int after_signal);

/* The prompt index of group g (global sample / group_size): epochs over a
 * seeded permutation of the prompts. */
int dispatch_prompt_of(Dispatch *d, int64_t g);

#endif
