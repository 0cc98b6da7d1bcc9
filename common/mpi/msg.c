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

void msg_wait(MPI_Request *r) {
    int done = 0;
    struct timespec nap = {0, 1000000}; /* 1 ms: ~1% CPU while waiting */
    MPI_Test(r, &done, MPI_STATUS_IGNORE);
    while (!done) {
        nanosleep(&nap, NULL);
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
    }
}

const char *msg_tag_name(int tag) {
    switch (tag) {
    case MSG_SNAPSHOT: return "snapshot header";
    case MSG_ORDER: return "work order";
    case MSG_ROLLOUT: return "rollout batch";
    case MSG_SCORED: return "scored batch";
    case MSG_STOP: return "stop";
    case MSG_LOGROWS: return "log rows";
    case MSG_SNAPSHOT_DATA: return "snapshot weights";
    case MSG_PROGRESS: return "progress";
    case MSG_STOPPED: return "stopped";
    case MSG_ABANDON: return "abandon";
    case MSG_HOLDS: return "snapshot held";
    default: return "unknown";
    }
}

void msg_isend(const MsgBuf *b, int dest, int tag, MPI_Comm comm, MPI_Request *r) {
    if (b->len > INT_MAX) err_die("%s message of %zu bytes is too large", msg_tag_name(tag), b->len);
    MPI_Isend(b->data, (int)b->len, MPI_BYTE, dest, tag, comm, r);
}

void msg_send(const MsgBuf *b, int dest, int tag, MPI_Comm comm) {
    MPI_Request r;
    msg_isend(b, dest, tag, comm, &r);
    msg_wait(&r);
}

void msg_isend_f32(const float *v, size_t n, int dest, int tag, MPI_Comm comm, MPI_Request *r) {
    if (n > INT_MAX) err_die("%s message of %zu floats is too large", msg_tag_name(tag), n);
    MPI_Isend(v, (int)n, MPI_FLOAT, dest, tag, comm, r);
}

void msg_send_f32(const float *v, size_t n, int dest, int tag, MPI_Comm comm) {
    MPI_Request r;
    msg_isend_f32(v, n, dest, tag, comm, &r);
    msg_wait(&r);
}

size_t msg_recv_f32(float *v, size_t n, int src, int tag, MPI_Comm comm) {
    if (n > INT_MAX) err_die("%s message of %zu floats is too large", msg_tag_name(tag), n);
    MPI_Request r;
    MPI_Status st;
    int done = 0, count = 0;
    struct timespec nap = {0, 1000000};
    MPI_Irecv(v, (int)n, MPI_FLOAT, src, tag, comm, &r);
    for (MPI_Test(&r, &done, &st); !done; MPI_Test(&r, &done, &st)) nanosleep(&nap, NULL);
    MPI_Get_count(&st, MPI_FLOAT, &count);
    return count < 0 ? 0 : (size_t)count;
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
    b->len = 0;
    b->pos = 0;
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
