/* dp — MPI data parallelism with sleeping waits; see dp.h. */
#include "learner/dp.h"

#include <cblas.h>
#include <stdio.h>

#include "common/err.h"
#include "common/msg.h"
#include <limits.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void dp_wait(MPI_Request *r) { msg_wait(r); }

void dp_init(Dp *d, int *argc, char ***argv) {
    int inited;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_world);
    MPI_Comm_free(&node);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    d->blas_threads = (int)(cores / d->local_world);
    if (d->blas_threads < 1) d->blas_threads = 1;
    if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(d->blas_threads);
    d->blas_threads = openblas_get_num_threads();
}

void dp_finalize(Dp *d) {
    (void)d;
    int fin;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

void dp_sum_f32(Dp *d, float *buf, size_t n) {
    if (d->world == 1) return;
    for (size_t off = 0; off < n; off += INT_MAX / 2) { /* counts are int */
        int count = (int)(n - off < INT_MAX / 2 ? n - off : INT_MAX / 2);
        MPI_Request r;
        MPI_Iallreduce(MPI_IN_PLACE, buf + off, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
        dp_wait(&r);
    }
}

void dp_sum_f64(Dp *d, double *buf, int n) {
    if (d->world == 1) return;
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &r);
    dp_wait(&r);
}

int dp_any(Dp *d, int flag) {
    if (d->world == 1) return flag != 0;
    int in = flag != 0, out = 0;
    MPI_Request r;
    MPI_Iallreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &r);
    dp_wait(&r);
    return out;
}

void dp_check(Dp *d, int rc, const char *prefix) {
    (void)d;
    msg_check_all(rc, prefix);
}

void dp_barrier(Dp *d) {
    if (d->world == 1) return;
    MPI_Request r;
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    dp_wait(&r);
}
