/* msg — packing and sleeping send/receive for the PPO roles; see msg.h. */
#include "common/mpi/msg.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

void msg_buf_init(MsgBuf *b) { memset(b, 0, sizeof *b); }

void msg_buf_free(MsgBuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void msg_put(MsgBuf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->data = err_realloc(b->data, b->cap);
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

void msg_put_i32(MsgBuf *b, int32_t v) { msg_put(b, &v, sizeof v); }
void msg_put_f64(MsgBuf *b, double v) { msg_put(b, &v, sizeof v); }
void msg_put_i32s(MsgBuf *b, const int32_t *v, int n) { msg_put(b, v, (size_t)n * sizeof *v); }
void msg_put_f32s(MsgBuf *b, const float *v, int n) { msg_put(b, v, (size_t)n * sizeof *v); }

static void get(MsgBuf *b, void *out, size_t n) {
    if (b->pos + n > b->len) {
        b->bad = 1;
        memset(out, 0, n);
        return;
    }
    if (n) memcpy(out, b->data + b->pos, n);
    b->pos += n;
}

int32_t msg_get_i32(MsgBuf *b) {
    int32_t v;
    get(b, &v, sizeof v);
    return v;
}

double msg_get_f64(MsgBuf *b) {
    double v;
    get(b, &v, sizeof v);
    return v;
}

void msg_get_i32s(MsgBuf *b, int32_t *out, int n) { get(b, out, (size_t)(n > 0 ? n : 0) * sizeof *out); }
void msg_get_f32s(MsgBuf *b, float *out, int n) { get(b, out, (size_t)(n > 0 ? n : 0) * sizeof *out); }

void msg_wait(MPI_Request *r) {
    int done = 0;
    struct timespec nap = {0, 1000000}; /* 1 ms: ~1% CPU while waiting */
    MPI_Test(r, &done, MPI_STATUS_IGNORE);
    while (!done) {
        nanosleep(&nap, NULL);
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
    }
}

void msg_send(const MsgBuf *b, int dest, int tag, MPI_Comm comm) {
    if (b->len > INT_MAX) err_die("message of %zu bytes is too large", b->len);
    MPI_Request r;
    MPI_Isend(b->data, (int)b->len, MPI_BYTE, dest, tag, comm, &r);
    msg_wait(&r);
}

void msg_send_f32(const float *v, size_t n, int dest, int tag, MPI_Comm comm) {
    if (n > INT_MAX) err_die("message of %zu floats is too large", n);
    MPI_Request r;
    MPI_Isend(v, (int)n, MPI_FLOAT, dest, tag, comm, &r);
    msg_wait(&r);
}

void msg_recv_f32(float *v, size_t n, int src, int tag, MPI_Comm comm) {
    MPI_Request r;
    MPI_Irecv(v, (int)n, MPI_FLOAT, src, tag, comm, &r);
    msg_wait(&r);
}

int msg_probe(int src, int tag, MPI_Comm comm, int *source, int *tag_out) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(src, tag, comm, &flag, &st);
    if (flag) {
        if (source) *source = st.MPI_SOURCE;
        if (tag_out) *tag_out = st.MPI_TAG;
    }
    return flag;
}

int msg_recv(MsgBuf *b, int src, int tag, MPI_Comm comm, int *source) {
    int flag = 0, count;
    MPI_Status st;
    struct timespec nap = {0, 1000000};
    for (MPI_Iprobe(src, tag, comm, &flag, &st); !flag; MPI_Iprobe(src, tag, comm, &flag, &st))
        nanosleep(&nap, NULL);
    MPI_Get_count(&st, MPI_BYTE, &count);
    b->len = b->pos = 0;
    b->bad = 0;
    if ((size_t)count > b->cap) {
        b->cap = (size_t)count;
        b->data = err_realloc(b->data, b->cap);
    }
    MPI_Recv(b->data, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, comm, MPI_STATUS_IGNORE);
    b->len = (size_t)count;
    if (source) *source = st.MPI_SOURCE;
    return st.MPI_TAG;
}

void msg_check_all(int rc, const char *prefix) {
    int world, rank, mine, first;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    mine = first = rc ? rank : INT_MAX;
    if (world > 1) {
        MPI_Request r;
        MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &r);
        msg_wait(&r);
    }
    if (first == INT_MAX) return;
    if (first == rank) err_die("%s%s", prefix, err_msg());
    struct timespec nap = {0, 10000000};
    for (;;) nanosleep(&nap, NULL); /* the failing rank's MPI_Abort ends us */
}
