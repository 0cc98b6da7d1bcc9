/* msg — the MPI message layer shared by the PPO roles: message tags, a
 * byte buffer with typed puts for packing messages (reading them back, with
 * every check, is common/mpi/rollout's), and send/receive whose waits sleep
 * ~1 ms between polls instead of spinning a core (Open MPI's blocking calls
 * busy-poll at 100% CPU even when idle). */
#ifndef MSG_H
#define MSG_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* Every MPI tag the PPO roles use, in one place; the message each tag
 * carries is packed and checked in common/mpi/rollout (its byte messages
 * also carry the tag as their type, so a mix-up is caught on unpacking). */
typedef enum {
    MSG_SNAPSHOT = 101,      /* learner -> actor: snapshot header (version, count, checksum) */
    MSG_ORDER = 102,         /* learner -> actor: prompts to sample for an iteration */
    MSG_ROLLOUT = 103,       /* actor -> rewarder: sampled responses */
    MSG_SCORED = 104,        /* rewarder -> learner: responses with rewards */
    MSG_STOP = 105,          /* learner -> actors and rewarders: shut down */
    MSG_LOGROWS = 106,       /* learner k -> learner 0: processed samples for the log */
    MSG_SNAPSHOT_DATA = 107, /* learner -> actor: the weights following a MSG_SNAPSHOT */
    MSG_PROGRESS = 108,      /* actor -> learner: an order is sampled, on its way to a rewarder */
    MSG_STOPPED = 109,       /* actor, rewarder -> leading learner: stopped */
    MSG_ABANDON = 110,       /* learner -> learners: leave the iteration now */
    MSG_HOLDS = 111,         /* actor -> leading learner: a snapshot broadcast completed here */
} MsgTag;

/* "work order", "snapshot header", ... for error messages; "unknown" otherwise. */
const char *msg_tag_name(int tag);

typedef struct {
    unsigned char *data;
    size_t len, cap, pos; /* pos: read cursor (common/mpi/rollout's unpack functions) */
} MsgBuf;

void msg_buf_init(MsgBuf *b);
void msg_buf_free(MsgBuf *b);
void msg_put(MsgBuf *b, const void *p, size_t n);
void msg_put_i32(MsgBuf *b, int32_t v);
void msg_put_f64(MsgBuf *b, double v);
void msg_put_i32s(MsgBuf *b, const int32_t *v, int n);
void msg_put_f32s(MsgBuf *b, const float *v, int n);

/* Waits for a request, sleeping ~1 ms between tests. */
void msg_wait(MPI_Request *r);
/* Sends b's bytes (blocking, sleeping wait). */
void msg_send(const MsgBuf *b, int dest, int tag, MPI_Comm comm);
/* Posts a send of b's bytes; b must stay untouched until *r completes. */
void msg_isend(const MsgBuf *b, int dest, int tag, MPI_Comm comm, MPI_Request *r);
/* Sends floats (for weights; count may exceed what fits in a MsgBuf). */
void msg_send_f32(const float *v, size_t n, int dest, int tag, MPI_Comm comm);
void msg_isend_f32(const float *v, size_t n, int dest, int tag, MPI_Comm comm, MPI_Request *r);
/* Receives at most n floats into v (sleeping wait); returns how many came
 * (a longer message is an MPI truncation error, which ends the job). */
size_t msg_recv_f32(float *v, size_t n, int src, int tag, MPI_Comm comm);
/* Waits (sleeping) for a message from src (or MPI_ANY_SOURCE) with tag (or
 * MPI_ANY_TAG) and receives it into b (replacing its contents); returns the
 * tag, and the source in *source. */
int msg_recv(MsgBuf *b, int src, int tag, MPI_Comm comm, int *source);
/* Collective over MPI_COMM_WORLD after a step every rank performs (set-up):
 * if rc != 0 on any rank, the lowest failing rank prints prefix + err_msg()
 * and ends the job (MPI_Abort); the others wait silently for the abort, so
 * the user sees one message instead of one per rank. */
void msg_check_all(int rc, const char *prefix);
/* 1 if a message is waiting (non-blocking). */
int msg_probe(int src, int tag, MPI_Comm comm, int *source, int *tag_out);

#endif
