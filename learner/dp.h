/* dp — data parallelism for the trainers over MPI: rank/world, one OpenBLAS
 * thread budget per rank so ranks x threads fit the cores, gradient
 * all-reduce, and waits that sleep instead of spinning (Open MPI's blocking
 * calls poll a core at 100%, which on a small machine steals it from the
 * rank doing the work). */
#ifndef DP_H
#define DP_H

#include <mpi.h>
#include <stddef.h>

#include "common/model/gpt.h"

typedef struct {
    int rank, world;        /* in MPI_COMM_WORLD */
    int local_rank, local_world; /* on this node */
    int blas_threads;
} Dp;

/* MPI_Init (if not yet), ranks, OpenBLAS threads = max(1, cores / ranks on
 * this node) unless OPENBLAS_NUM_THREADS is set. */
void dp_init(Dp *d, int *argc, char ***argv);
void dp_finalize(Dp *d);
/* In-place sum over all ranks (sleeping wait); gradients go through
 * DpGradSum below. */
void dp_sum_f64(Dp *d, double *buf, int n);
/* 1 if flag is non-zero on any rank. */
int dp_any(Dp *d, int flag);
/* Collective error check after a step every rank performs (set-up, data
 * loading): if rc != 0 on any rank, the lowest failing rank prints its
 * err_msg() with prefix and the job ends (MPI_Abort); the others wait for
 * that without printing, so the user sees one message, not one per rank. */
void dp_check(Dp *d, int rc, const char *prefix);
/* Barrier whose wait sleeps ~1 ms between polls. */
void dp_barrier(Dp *d);
/* Waits for a request, sleeping ~1 ms between polls. */
void dp_wait(MPI_Request *r);

/* Gradient sum overlapped with backward: armed before a model's last
 * backward pass of a step, it starts summing each layer's gradients over
 * comm as soon as the backward pass has finished that layer (and lets the
 * sums progress at every later layer), while earlier layers compute;
 * dp_gradsum_finish sums the rest (embeddings, final LayerNorm, head) and
 * waits. The sums are the same as one all-reduce of the whole buffer. Every
 * rank of comm must arm and finish the same models in the same order. With
 * one rank in comm both are no-ops. Start from a zeroed DpGradSum. */
typedef struct {
    Gpt *m;
    MPI_Comm comm;
    MPI_Request *req;
    int n_req;
    int low;       /* lowest layer whose sum has started */
    double wait_s; /* time waited in dp_gradsum_finish, summed over steps */
} DpGradSum;

void dp_gradsum_arm(DpGradSum *s, Gpt *m, MPI_Comm comm);
void dp_gradsum_finish(DpGradSum *s);

#endif
