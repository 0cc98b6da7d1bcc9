/* snapshot_bench — how long a policy snapshot takes to reach an actor, against
 * the bare transport. Times, for a few weight counts up to GPT-2 small:
 *   raw       MPI_Send / MPI_Recv of the floats (Open MPI's busy-polling path)
 *   msg       msg_send_f32 / msg_recv_f32 (common/mpi/msg.h: non-blocking calls
 *             polled with ~1 ms sleeps so waiting ranks do not spin a core)
 *   snapshot  what learner/ppo.c and actor/actor.c do (common/mpi/rollout):
 *             the sender checksums the weights and posts the MSG_SNAPSHOT
 *             header and the weights (rollout_snapshot_of, _pack, _isend);
 *             the receiver unpacks the header, receives the weights in
 *             place and checks count and checksum (rollout_snapshot_recv)
 * Each repetition starts at a barrier and is timed on the receiving rank
 * (the moment the actor holds the weights); the three methods run back to
 * back in rotating order and the median is reported. Run with
 * `mpirun -n 2 build/opt/bench/snapshot_bench [floats ...]`; rank 0 prints one
 * JSON line per size. A report for tests/bench/run.sh, never a test.
 *
 * With --fanout first, or on N + 1 > 2 ranks (rank 0 the learner, 1..N
 * actors), it times instead the
 * distribution of one snapshot to N actors the two ways of snapshot_send
 * (learner/dispatch.c, actor/actor.c):
 *   p2p    header + weights to every actor (rollout_snapshot_isend N times)
 *   bcast  a header to every actor (bcast_seq), the weights once by
 *          MPI_Ibcast (rollout_snapshot_ibcast) on a learner + actors
 *          communicator; each actor posts its part when its header comes
 * every wait polling with the 1 ms naps of the job; per repetition, the time
 * until the last actor holds checked weights and until the learner's sends
 * are done (its buffer free again), medians. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/model/gpt.h"
#include "common/mpi/msg.h"
#include "common/mpi/rollout.h"
#include "tests/bench/bench_util.h"

enum { METHOD_RAW, METHOD_MSG, METHOD_SNAPSHOT, METHOD_COUNT };
static const char *method_names[METHOD_COUNT] = {"raw", "msg", "snapshot"};

/* One transfer of n floats from rank 0 to rank 1; returns the receiver's
 * elapsed time from the barrier (0 on the sender). */
static double transfer(int method, float *buf, size_t n, int rank) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = fs_now();
    if (method == METHOD_RAW) {
        if (rank == 0) MPI_Send(buf, (int)n, MPI_FLOAT, 1, MSG_SNAPSHOT_DATA, MPI_COMM_WORLD);
        else MPI_Recv(buf, (int)n, MPI_FLOAT, 0, MSG_SNAPSHOT_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (method == METHOD_MSG) {
        if (rank == 0) msg_send_f32(buf, n, 1, MSG_SNAPSHOT_DATA, MPI_COMM_WORLD);
        else msg_recv_f32(buf, n, 0, MSG_SNAPSHOT_DATA, MPI_COMM_WORLD);
    } else {
        MsgBuf b;
        msg_buf_init(&b);
        if (rank == 0) {
            RolloutSnapshot s = rollout_snapshot_of(7, buf, n);
            MPI_Request req[2];
            rollout_snapshot_pack(&s, &b);
            rollout_snapshot_isend(&b, buf, n, 1, MPI_COMM_WORLD, req);
            msg_wait(&req[0]);
            msg_wait(&req[1]);
        } else {
            RolloutSnapshot s;
            msg_recv(&b, 0, MSG_SNAPSHOT, MPI_COMM_WORLD, NULL);
            int rc = rollout_snapshot_unpack(&b, &s) || rollout_snapshot_recv(&s, buf, n, 0, MPI_COMM_WORLD);
            if (rc || s.version != 7) {
                fprintf(stderr, "snapshot_bench: %s\n", rc ? err_msg() : "bad snapshot version");
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        }
        msg_buf_free(&b);
    }
    return rank == 1 ? fs_now() - t0 : 0;
}

/* Repetitions: enough for a stable median at small sizes, few at 0.5 GB. */
static int reps_for(size_t n) {
    size_t r = (size_t)2e9 / (n * sizeof(float) + 1);
    return r < 5 ? 5 : r > 21 ? 21 : (int)r;
}

/* ---- fan-out: one learner, N actors -------------------------------------- */

static void nap(void) {
    struct timespec t = {0, 1000000};
    nanosleep(&t, NULL);
}

static void wait_all(int n, MPI_Request *r) {
    int done = 0;
    for (MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE); !done; MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE)) nap();
}

/* One distribution of n floats from rank 0 to every other rank (bcast: by
 * broadcast number seq); *t_hold: on an actor, seconds until it holds the
 * checked weights; *t_root: on rank 0, until its sends completed. */
static void fan_out(int bcast, int64_t seq, float *buf, size_t n, int rank, int size, MPI_Comm comm, double *t_hold,
                    double *t_root) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = fs_now();
    *t_hold = *t_root = 0;
    if (rank == 0) {
        RolloutSnapshot h = rollout_snapshot_of(3, buf, n); /* the learner checksums once per version */
        int k = size - 1, nr = 0;
        MsgBuf *hb = calloc((size_t)k, sizeof *hb);
        MPI_Request *req = calloc((size_t)(2 * k + 1), sizeof *req);
        if (bcast) h.bcast_seq = seq;
        for (int a = 0; a < k; a++) {
            msg_buf_init(&hb[a]);
            rollout_snapshot_pack(&h, &hb[a]);
            if (bcast) msg_isend(&hb[a], a + 1, MSG_SNAPSHOT, MPI_COMM_WORLD, &req[nr++]);
            else {
                rollout_snapshot_isend(&hb[a], buf, n, a + 1, MPI_COMM_WORLD, &req[nr]);
                nr += 2;
            }
        }
        if (bcast) rollout_snapshot_ibcast(buf, n, 0, comm, &req[nr++]);
        wait_all(nr, req);
        *t_root = fs_now() - t0;
        for (int a = 0; a < k; a++) msg_buf_free(&hb[a]);
        free(hb);
        free(req);
    } else {
        MsgBuf b;
        RolloutSnapshot s;
        msg_buf_init(&b);
        msg_recv(&b, 0, MSG_SNAPSHOT, MPI_COMM_WORLD, NULL);
        int rc = rollout_snapshot_unpack(&b, &s);
        if (!rc && s.bcast_seq < 0) rc = rollout_snapshot_recv(&s, buf, n, 0, MPI_COMM_WORLD);
        else if (!rc) {
            MPI_Request r;
            rollout_snapshot_ibcast(buf, n, 0, comm, &r);
            wait_all(1, &r);
            rc = rollout_snapshot_check_weights(&s, buf, n);
        }
        if (rc || s.bcast_seq != (bcast ? seq : -1)) {
            fprintf(stderr, "snapshot_bench: %s\n", rc ? err_msg() : "wrong header");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        *t_hold = fs_now() - t0;
        msg_buf_free(&b);
    }
}

static int bench_fan_out(size_t n, int rank, int size) {
    float *buf = malloc(n * sizeof(float));
    if (!buf) {
        fprintf(stderr, "snapshot_bench: cannot allocate %zu floats\n", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = rank == 0 ? (float)(i % 1021) : -1.0f;
    MPI_Comm comm; /* as PpoLayout.snap_comm: the learner is rank 0 */
    MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &comm);
    int reps = reps_for(n * (size_t)(size - 1));
    double *hold[2], *root[2];
    int64_t seq = 0;
    for (int m = 0; m < 2; m++) {
        hold[m] = calloc(reps, sizeof(double));
        root[m] = calloc(reps, sizeof(double));
        double x, y;
        fan_out(m, m ? seq++ : -1, buf, n, rank, size, comm, &x, &y); /* warm-up */
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 2; k++) {
            int m = (r + k) % 2;
            fan_out(m, m ? seq++ : -1, buf, n, rank, size, comm, &hold[m][r], &root[m][r]);
        }
    double med[4]; /* per method: the slowest actor's hold, the learner's sends */
    for (int m = 0; m < 2; m++) {
        MPI_Allreduce(MPI_IN_PLACE, hold[m], reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); /* the last actor */
        MPI_Allreduce(MPI_IN_PLACE, root[m], reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        med[2 * m] = bench_median(hold[m], reps);
        med[2 * m + 1] = bench_median(root[m], reps);
    }
    if (rank == 0) {
        printf("{\"impl\": \"snapshot_fanout\", \"actors\": %d, \"floats\": %zu, \"mbytes\": %.1f, \"reps\": %d, "
               "\"p2p_ms\": %.3f, \"p2p_learner_ms\": %.3f, \"bcast_ms\": %.3f, \"bcast_learner_ms\": %.3f}\n",
               size - 1, n, n * 4.0 / 1e6, reps, 1e3 * med[0], 1e3 * med[1], 1e3 * med[2], 1e3 * med[3]);
        fflush(stdout);
    }
    for (int m = 0; m < 2; m++) free(hold[m]), free(root[m]);
    MPI_Comm_free(&comm);
    free(buf);
    return 0;
}

/* Times every method at n floats; rank 0 prints the JSON line. Returns -1 if
 * the receiver's data did not arrive intact (the timing would be of nothing). */
static int bench_size(size_t n, int rank) {
    float *buf = malloc(n * sizeof(float));
    if (!buf) {
        fprintf(stderr, "snapshot_bench: cannot allocate %zu floats\n", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = rank == 0 ? (float)(i % 1021) : -1.0f; /* pages touched */
    int reps = reps_for(n), bad = 0;
    double *t[METHOD_COUNT];
    for (int m = 0; m < METHOD_COUNT; m++) t[m] = calloc(reps, sizeof(double));
    for (int m = 0; m < METHOD_COUNT; m++) transfer(m, buf, n, rank); /* warm-up: registration, first touch */
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < METHOD_COUNT; k++) {
            int m = (r + k) % METHOD_COUNT; /* rotate so no method always runs first */
            t[m][r] = transfer(m, buf, n, rank);
        }
    if (rank == 1)
        for (size_t i = 0; i < n; i += 4099) bad |= buf[i] != (float)(i % 1021);
    double med[METHOD_COUNT];
    for (int m = 0; m < METHOD_COUNT; m++) med[m] = bench_median(t[m], reps);
    /* the receiver measured; the sender prints */
    MPI_Allreduce(MPI_IN_PLACE, med, METHOD_COUNT, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0 && !bad) {
        double bytes = (double)n * sizeof(float);
        printf("{\"impl\": \"snapshot\", \"floats\": %zu, \"mbytes\": %.1f, \"reps\": %d", n, bytes / 1e6, reps);
        for (int m = 0; m < METHOD_COUNT; m++) printf(", \"%s_ms\": %.3f", method_names[m], 1e3 * med[m]);
        printf(", \"raw_gbps\": %.2f, \"msg_over_raw\": %.2f, \"snapshot_over_raw\": %.2f}\n", bytes / med[METHOD_RAW] / 1e9,
               med[METHOD_MSG] / med[METHOD_RAW], med[METHOD_SNAPSHOT] / med[METHOD_RAW]);
        fflush(stdout);
    }
    if (rank == 0 && bad) fprintf(stderr, "snapshot_bench: %zu floats arrived corrupted\n", n);
    for (int m = 0; m < METHOD_COUNT; m++) free(t[m]);
    free(buf);
    return bad ? -1 : 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) {
        if (rank == 0) fprintf(stderr, "snapshot_bench: run with mpirun -n 2, or N + 1 for N actors (got %d ranks)\n", size);
        MPI_Finalize();
        return 1;
    }
    /* default sizes: 1 MB; the d=256 4-layer model of the training
     * benchmarks with the byte and GPT-2 vocabularies; GPT-2 small */
    GptConfig byte = {.vocab_size = 257, .n_ctx = 144, .n_layer = 4, .n_head = 4, .n_embd = 256, .head = GPT_HEAD_LM},
              bpe = {.vocab_size = 50257, .n_ctx = 144, .n_layer = 4, .n_head = 4, .n_embd = 256, .head = GPT_HEAD_LM};
    GptConfig small = {
        .vocab_size = 50257, .n_ctx = 1024, .n_layer = 12, .n_head = 12, .n_embd = 768, .head = GPT_HEAD_LM};
    size_t defaults[] = {262144, gpt_count_params(&byte), gpt_count_params(&bpe), gpt_count_params(&small)};
    int fan = size > 2 || (argc > 1 && !strcmp(argv[1], "--fanout"));
    if (argc > 1 && !strcmp(argv[1], "--fanout")) argv++, argc--;
    int n_sizes = argc > 1 ? argc - 1 : 4, rc = 0;
    for (int i = 0; i < n_sizes && !rc; i++) {
        char *end = "";
        size_t n = argc > 1 ? strtoull(argv[i + 1], &end, 10) : defaults[i];
        if (n < 1 || n > 500000000 || *end) {
            if (rank == 0) fprintf(stderr, "snapshot_bench: size %s: expected 1..500000000 floats\n", argv[i + 1]);
            rc = 1;
            break;
        }
        rc = (fan ? bench_fan_out(n, rank, size) : bench_size(n, rank)) ? 1 : 0;
    }
    MPI_Finalize();
    return rc;
}
