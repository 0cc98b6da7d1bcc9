/* dp — MPI data parallelism with sleeping waits; see dp.h. */
#include "learner/dp.h"

#include <cblas.h>
#include <stdio.h>

#include "common/err.h"
#include "common/mpi/msg.h"
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

/* ---- gradient sums overlapped with backward ------------------------------ */

static void gradsum_start(DpGradSum *s, size_t off, size_t n) {
    for (size_t done = 0; done < n; done += INT_MAX / 2) { /* counts are int */
        int count = (int)(n - done < INT_MAX / 2 ? n - done : INT_MAX / 2);
        s->req = err_realloc(s->req, (size_t)(s->n_req + 1) * sizeof *s->req);
        MPI_Iallreduce(MPI_IN_PLACE, s->m->grads + off + done, count, MPI_FLOAT, MPI_SUM, s->comm,
                       &s->req[s->n_req++]);
    }
}

/* Open MPI moves non-blocking collectives on only inside MPI calls: testing
 * them after each layer is what makes them overlap the backward pass. */
static void gradsum_progress(DpGradSum *s) {
    int done;
    MPI_Testall(s->n_req, s->req, &done, MPI_STATUSES_IGNORE);
}

static void gradsum_layer(DpGradSum *s, int layer) {
    size_t off, n;
    gpt_layer_range(s->m, layer, &off, &n);
    gradsum_start(s, off, n);
    s->low = layer;
}

/* Layers arrive last to first, each once (a second backward pass while
 * armed would be a caller's bug: its calls are ignored). */
static void gradsum_layer_ready(void *ctx, int layer) {
    DpGradSum *s = ctx;
    if (layer != s->low - 1) return;
    gradsum_layer(s, layer);
    gradsum_progress(s);
}

static int comm_size(MPI_Comm c) {
    int n;
    MPI_Comm_size(c, &n);
    return n;
}

void dp_gradsum_arm(DpGradSum *s, Gpt *m, MPI_Comm comm) {
    s->m = m, s->comm = comm, s->req = NULL, s->n_req = 0; /* wait_s accumulates */
    s->low = m->cfg.n_layer;
    if (comm_size(comm) == 1) return;
    m->grads_ready = gradsum_layer_ready;
    m->grads_ready_ctx = s;
}

void dp_gradsum_finish(DpGradSum *s) {
    Gpt *m = s->m;
    m->grads_ready = NULL;
    m->grads_ready_ctx = NULL;
    if (comm_size(s->comm) > 1) {
        size_t first, n, lnf = (size_t)(m->p.lnf_w - m->params);
        while (s->low > 0) gradsum_layer(s, s->low - 1); /* layers no backward reported */
        gpt_layer_range(m, 0, &first, &n);
        gradsum_start(s, 0, first);                 /* wte, wpe */
        gradsum_start(s, lnf, m->n_params - lnf);   /* ln_f, score head */
        double t0 = MPI_Wtime();
        for (int i = 0; i < s->n_req; i++) dp_wait(&s->req[i]);
        s->wait_s += MPI_Wtime() - t0;
    }
    free(s->req);
    s->req = NULL;
    s->n_req = 0;
}
