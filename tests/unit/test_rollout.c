/* Every PPO message type of common/mpi/rollout: pack -> unpack gives the
 * same fields; every shorter prefix of a packed message, and messages with
 * a wrong magic or type, out-of-range or inconsistent counts, non-finite
 * numbers where finite ones are required, or bytes left over, fail with an
 * error naming the message and the field. Prefixes are copied into buffers
 * of exactly their length, so a read past the end shows under SAN=1. The
 * byte offsets below are the wire layout rollout.c writes. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mpi/rollout.h"
#include "tests/harness.h"

/* ---- helpers ------------------------------------------------------------- */

typedef int (*UnpackFn)(MsgBuf *b); /* unpacks, frees what it got, returns rc */


/* A copy of b's first n bytes in a buffer of exactly n bytes. */
static MsgBuf prefix(const MsgBuf *b, size_t n) {
    MsgBuf t;
    msg_buf_init(&t);
    t.data = malloc(n ? n : 1);
    if (n) memcpy(t.data, b->data, n);
    t.len = n;
    t.cap = n;
    return t;
}

/* Every prefix 0..len-1 fails, naming the message. Returns how many did not. */
static int prefixes_fail(const MsgBuf *b, UnpackFn unpack, const char *what) {
    int wrong = 0;
    for (size_t n = 0; n < b->len; n++) {
        MsgBuf t = prefix(b, n);
        err_clear();
        if (unpack(&t) != -1 || !harness_err_has("", what, (const char *)NULL)) {
            if (!wrong) printf("    prefix of %zu/%zu bytes: rc 0 or message \"%s\"\n", n, b->len, err_msg());
            wrong++;
        }
        msg_buf_free(&t);
    }
    return wrong;
}

/* Unpacks a copy of b with bytes [at, at+n) replaced by v; 1 if it failed
 * with an error containing both what and field. */
static int patched_fails(const MsgBuf *b, size_t at, const void *v, size_t n, UnpackFn unpack, const char *what,
                         const char *field) {
    MsgBuf t = prefix(b, b->len);
    memcpy(t.data + at, v, n);
    err_clear();
    int ok = unpack(&t) == -1 && harness_err_has("", what, field, (const char *)NULL);
    if (!ok) printf("    patch at %zu: expected \"%s\" ... \"%s\", got \"%s\"\n", at, what, field, err_msg());
    msg_buf_free(&t);
    return ok;
}

static int patched_i32_fails(const MsgBuf *b, size_t at, int32_t v, UnpackFn unpack, const char *what,
                             const char *field) {
    return patched_fails(b, at, &v, sizeof v, unpack, what, field);
}

static int patched_f64_fails(const MsgBuf *b, size_t at, double v, UnpackFn unpack, const char *what,
                             const char *field) {
    return patched_fails(b, at, &v, sizeof v, unpack, what, field);
}

/* b with one more byte at the end fails naming "left over". */
static int trailing_fails(const MsgBuf *b, UnpackFn unpack, const char *what) {
    MsgBuf t = prefix(b, b->len);
    unsigned char zero = 0;
    msg_put(&t, &zero, 1);
    err_clear();
    int ok = unpack(&t) == -1 && harness_err_has("", what, "left over", (const char *)NULL);
    if (!ok) printf("    trailing byte: got \"%s\"\n", err_msg());
    msg_buf_free(&t);
    return ok;
}

/* Header: magic @0, type @4. Wrong magic and another message's type fail. */
static int header_checked(const MsgBuf *b, UnpackFn unpack, const char *what, int other_type) {
    return patched_i32_fails(b, 0, 0x12345678, unpack, what, "magic") &&
           patched_i32_fails(b, 4, other_type, unpack, what, "type");
}

/* ---- work orders --------------------------------------------------------- */

enum { ORD_ITERATION = 8, ORD_CHUNK = 12, ORD_LAMBDA = 16, ORD_SEED = 24, ORD_VERSION = 32, ORD_REWARDER = 36,
       ORD_N = 40, ORD_INDEX = 44 };

static int32_t order_index[3] = {4, 0, 17};

static RolloutOrder sample_order(void) {
    return (RolloutOrder){.iteration = 5,
                          .chunk = 2,
                          .lambda = 0.125,
                          .seed = 0x0123456789abcdefULL,
                          .version = 4,
                          .rewarder = 6,
                          .n = 3,
                          .prompt_index = order_index};
}

static int unpack_order(MsgBuf *b) {
    RolloutOrder o;
    int rc = rollout_order_unpack(b, &o);
    if (!rc) rollout_order_free(&o);
    return rc;
}

TEST(rollout_order_round_trip) {
    RolloutOrder o = sample_order(), back;
    MsgBuf b;
    msg_buf_init(&b);
    rollout_order_pack(&o, &b);
    CHECK(b.len == ORD_INDEX + 3 * sizeof(int32_t));
    CHECKF(rollout_order_unpack(&b, &back) == 0, "%s", err_msg());
    CHECK(back.iteration == 5 && back.chunk == 2 && back.lambda == 0.125 && back.seed == 0x0123456789abcdefULL);
    CHECK(back.version == 4 && back.rewarder == 6);
    CHECK(back.n == 3 && back.prompt_index[0] == 4 && back.prompt_index[1] == 0 && back.prompt_index[2] == 17);
    CHECK(b.pos == b.len);
    rollout_order_free(&back);
    msg_buf_free(&b);
}

TEST(rollout_order_refuses_truncated_and_corrupt) {
    RolloutOrder o = sample_order();
    MsgBuf b;
    msg_buf_init(&b);
    rollout_order_pack(&o, &b);
    const char *w = "work order message";
    CHECK(prefixes_fail(&b, unpack_order, w) == 0);
    CHECK(header_checked(&b, unpack_order, w, MSG_STOP));
    CHECK(patched_i32_fails(&b, ORD_ITERATION, -1, unpack_order, w, "iteration"));
    CHECK(patched_i32_fails(&b, ORD_CHUNK, -3, unpack_order, w, "chunk"));
    CHECK(patched_f64_fails(&b, ORD_LAMBDA, NAN, unpack_order, w, "lambda"));
    CHECK(patched_f64_fails(&b, ORD_LAMBDA, INFINITY, unpack_order, w, "lambda"));
    CHECK(patched_i32_fails(&b, ORD_VERSION, -1, unpack_order, w, "version"));
    CHECK(patched_i32_fails(&b, ORD_REWARDER, -2, unpack_order, w, "rewarder"));
    CHECK(patched_i32_fails(&b, ORD_N, -1, unpack_order, w, "n: -1"));
    CHECK(patched_i32_fails(&b, ORD_N, 0, unpack_order, w, "n: 0"));
    CHECK(patched_i32_fails(&b, ORD_N, INT32_MAX, unpack_order, w, "n:"));
    CHECK(patched_i32_fails(&b, ORD_N, 4, unpack_order, w, "n: 4 items")); /* more than the bytes hold */
    CHECK(patched_i32_fails(&b, ORD_N, 2, unpack_order, w, "left over"));  /* fewer than sent */
    CHECK(patched_i32_fails(&b, ORD_INDEX + 4, -7, unpack_order, w, "prompt_index"));
    CHECK(trailing_fails(&b, unpack_order, w));
    msg_buf_free(&b);
}

/* ---- rollout batches ----------------------------------------------------- */

enum {
    BAT_ITERATION = 8,
    BAT_CHUNK = 12,
    BAT_VERSION = 16,
    BAT_ACTOR = 20,
    BAT_LAMBDA = 24,
    BAT_TGEN = 32,
    BAT_TSCORE = 40,
    BAT_TSENT = 48,
    BAT_N = 56,
    BAT_SAMPLE0 = 60, /* prompt_index, prompt_len, resp_len, stop, then arrays */
};

/* Three samples with response lengths 2, 0 and 3; arrays from a counter so
 * every value differs. */
typedef struct {
    Rollout r[3];
    int32_t ints[64];
    float floats[64];
} BatchData;

static void fill_batch(BatchData *d, RolloutBatch *rb, int scored) {
    int lens[3][2] = {{3, 2}, {1, 0}, {2, 3}}, ni = 0, nf = 0;
    memset(d, 0, sizeof *d);
    for (int i = 0; i < 3; i++) {
        Rollout *r = &d->r[i];
        r->prompt_index = 10 + i;
        r->prompt_len = lens[i][0];
        r->resp_len = lens[i][1];
        r->stop = i;
        r->prompt = &d->ints[ni];
        ni += r->prompt_len;
        r->resp = &d->ints[ni];
        ni += r->resp_len;
        float **arrays[4] = {&r->logp_behav, &r->logp_ref, &r->kl, &r->reward};
        for (int a = 0; a < (scored ? 4 : 1); a++) {
            *arrays[a] = &d->floats[nf];
            nf += r->resp_len;
        }
        r->r_raw = scored ? 1.5f + (float)i : 0;
        r->r_theta = scored ? -0.25f * (float)i : 0;
        r->kl_sum = scored ? 0.01f * (float)i : 0;
        r->score = scored ? 0.5f - 0.125f * (float)i : 0;
        r->r_verifier = scored ? 0.25f * (float)i : 0;
        r->overlong = scored ? -0.0625f * (float)i : 0;
        for (int c = 0; c < ROLLOUT_VCOMPS; c++) r->v_comp[c] = scored ? (float)(c + i) : 0;
    }
    for (int k = 0; k < ni; k++) d->ints[k] = 100 + k;
    for (int k = 0; k < nf; k++) d->floats[k] = -0.5f * (float)k - 0.125f;
    *rb = (RolloutBatch){.iteration = 7,
                         .chunk = 3,
                         .version = 6,
                         .actor = 4,
                         .scored = scored,
                         .lambda = 0.05,
                         .t_generate = 0.75,
                         .t_score = scored ? 0.5 : 0,
                         .t_sent = 1234.5,
                         .n = 3,
                         .r = d->r};
}

static int same_f32s(const float *a, const float *b, int n) { return n == 0 || memcmp(a, b, (size_t)n * 4) == 0; }
static int same_i32s(const int32_t *a, const int32_t *b, int n) { return n == 0 || memcmp(a, b, (size_t)n * 4) == 0; }

static int same_rollout(const Rollout *a, const Rollout *b, int scored) {
    int n = a->resp_len;
    int ok = a->prompt_index == b->prompt_index && a->prompt_len == b->prompt_len && n == b->resp_len &&
             a->stop == b->stop && same_i32s(a->prompt, b->prompt, a->prompt_len) && same_i32s(a->resp, b->resp, n) &&
             same_f32s(a->logp_behav, b->logp_behav, n);
    if (!scored) return ok && !b->logp_ref && !b->kl && !b->reward;
    return ok && a->r_raw == b->r_raw && a->r_theta == b->r_theta && a->kl_sum == b->kl_sum && a->score == b->score &&
              a->r_verifier == b->r_verifier && a->overlong == b->overlong &&
              !memcmp(a->v_comp, b->v_comp, sizeof a->v_comp) &&
           same_f32s(a->logp_ref, b->logp_ref, n) && same_f32s(a->kl, b->kl, n) && same_f32s(a->reward, b->reward, n);
}

static void batch_round_trip(int scored) {
    BatchData d;
    RolloutBatch rb, back;
    MsgBuf b;
    fill_batch(&d, &rb, scored);
    msg_buf_init(&b);
    rollout_batch_pack(&rb, &b);
    CHECKF(rollout_batch_unpack(&b, scored, &back) == 0, "%s", err_msg());
    CHECK(back.iteration == 7 && back.chunk == 3 && back.version == 6 && back.actor == 4 && back.scored == scored);
    CHECK(back.lambda == 0.05 && back.t_generate == 0.75 && back.t_score == rb.t_score && back.t_sent == 1234.5);
    CHECK(back.n == 3);
    for (int i = 0; i < 3 && back.n == 3; i++) CHECKF(same_rollout(&rb.r[i], &back.r[i], scored), "sample %d", i);
    rollout_batch_free(&back);
    msg_buf_free(&b);
}

TEST(rollout_batch_round_trip_unscored_and_scored) {
    batch_round_trip(0);
    batch_round_trip(1);
}

static int unpack_unscored(MsgBuf *b) {
    RolloutBatch rb;
    int rc = rollout_batch_unpack(b, 0, &rb);
    if (!rc) rollout_batch_free(&rb);
    return rc;
}

static int unpack_scored(MsgBuf *b) {
    RolloutBatch rb;
    int rc = rollout_batch_unpack(b, 1, &rb);
    if (!rc) rollout_batch_free(&rb);
    return rc;
}

static void batch_refuses(int scored) {
    BatchData d;
    RolloutBatch rb;
    MsgBuf b;
    UnpackFn un = scored ? unpack_scored : unpack_unscored;
    const char *w = scored ? "scored batch message" : "rollout batch message";
    fill_batch(&d, &rb, scored);
    msg_buf_init(&b);
    rollout_batch_pack(&rb, &b);
    CHECK(prefixes_fail(&b, un, w) == 0);
    CHECK(header_checked(&b, un, w, scored ? MSG_ROLLOUT : MSG_SCORED)); /* the other batch kind */
    CHECK(patched_i32_fails(&b, BAT_ITERATION, -2, un, w, "iteration"));
    CHECK(patched_i32_fails(&b, BAT_CHUNK, -1, un, w, "chunk"));
    CHECK(patched_i32_fails(&b, BAT_VERSION, -1, un, w, "version"));
    CHECK(patched_i32_fails(&b, BAT_VERSION, 8, un, w, "newer than")); /* iteration 7 */
    CHECK(patched_i32_fails(&b, BAT_ACTOR, -1, un, w, "actor"));
    CHECK(patched_f64_fails(&b, BAT_LAMBDA, NAN, un, w, "lambda"));
    CHECK(patched_f64_fails(&b, BAT_TGEN, INFINITY, un, w, "t_generate"));
    CHECK(patched_f64_fails(&b, BAT_TSCORE, -1.0, un, w, "t_score"));
    CHECK(patched_f64_fails(&b, BAT_TSENT, NAN, un, w, "t_sent"));
    CHECK(patched_i32_fails(&b, BAT_N, -1, un, w, "n: -1"));
    CHECK(patched_i32_fails(&b, BAT_N, INT32_MAX, un, w, "n:"));
    CHECK(patched_i32_fails(&b, BAT_N, 1 << 20, un, w, "n: 1048576 items")); /* in range, more than the bytes */
    CHECK(patched_i32_fails(&b, BAT_N, 2, un, w, "left over"));
    CHECK(patched_i32_fails(&b, BAT_SAMPLE0, -1, un, w, "sample 0: prompt_index"));
    CHECK(patched_i32_fails(&b, BAT_SAMPLE0 + 4, 0, un, w, "sample 0: prompt_len"));
    CHECK(patched_i32_fails(&b, BAT_SAMPLE0 + 8, -1, un, w, "sample 0: resp_len"));
    CHECK(patched_i32_fails(&b, BAT_SAMPLE0 + 8, 1 << 20, un, w, "sample 0: resp_len"));
    CHECK(patched_i32_fails(&b, BAT_SAMPLE0 + 8, (1 << 20) + 1, un, w, "out of range"));
    CHECK(trailing_fails(&b, un, w));
    msg_buf_free(&b);
}

TEST(rollout_batch_refuses_truncated_and_corrupt) {
    batch_refuses(0);
    batch_refuses(1);
}

/* ---- snapshots ----------------------------------------------------------- */

enum { SNAP_VERSION = 8, SNAP_N = 16, SNAP_CHECKSUM = 24, SNAP_SEQ = 32, SNAP_BYTES = 40 };

TEST(rollout_checksum_hand_values_and_sensitivity) {
    /* sum of the bit patterns ^ (sum of (i+1) * bits) * 0x9e3779b97f4a7c15,
     * mod 2^64, worked out by hand (python ints) for 1.0f 2.0f [3.0f]:
     * bits 0x3f800000 0x40000000 0x40400000 */
    float v[3] = {1.0f, 2.0f, 3.0f};
    CHECK(rollout_checksum(v, 0) == 0);
    CHECK(rollout_checksum(v, 2) == 0x42b837d1ca000000ULL);
    CHECK(rollout_checksum(v, 3) == 0xad4f8cbe3a800000ULL);
    float w[5] = {0.5f, -1.25f, 3.0f, 1e-20f, 7.0f}, x[5];
    uint64_t base = rollout_checksum(w, 5);
    memcpy(x, w, sizeof w);
    x[1] = w[3];
    x[3] = w[1];
    CHECK(rollout_checksum(x, 5) != base); /* two values swapped */
    for (int i = 0; i < 5; i++)
        for (int bit = 0; bit < 32; bit++) {
            uint32_t u;
            memcpy(x, w, sizeof w);
            memcpy(&u, &x[i], 4);
            u ^= 1u << bit;
            memcpy(&x[i], &u, 4);
            CHECKF(rollout_checksum(x, 5) != base, "flip of bit %d of value %d unseen", bit, i);
        }
}

static int unpack_snapshot(MsgBuf *b) {
    RolloutSnapshot s;
    return rollout_snapshot_unpack(b, &s);
}

TEST(rollout_snapshot_round_trip_and_checks) {
    float w[4] = {0.25f, -2.0f, 1e-3f, 9.5f};
    RolloutSnapshot s = rollout_snapshot_of(12, w, 4), back;
    CHECK(s.version == 12 && s.n_params == 4 && s.checksum == rollout_checksum(w, 4) && s.bcast_seq == -1);
    MsgBuf b;
    msg_buf_init(&b);
    rollout_snapshot_pack(&s, &b);
    CHECK(b.len == SNAP_BYTES);
    CHECKF(rollout_snapshot_unpack(&b, &back) == 0, "%s", err_msg());
    CHECK(back.version == 12 && back.n_params == 4 && back.checksum == s.checksum && back.bcast_seq == -1);
    s.bcast_seq = 5; /* the weights come by broadcast number 5 */
    b.len = b.pos = 0;
    rollout_snapshot_pack(&s, &b);
    CHECKF(rollout_snapshot_unpack(&b, &back) == 0 && back.bcast_seq == 5, "%s", err_msg());
    CHECK(rollout_snapshot_check_count(&back, 4) == 0);
    CHECK(rollout_snapshot_check_weights(&back, w, 4) == 0);
    CHECK(rollout_snapshot_check_count(&back, 5) == -1 && harness_err_has("", "n_params", "5", (const char *)NULL));
    CHECK(rollout_snapshot_check_weights(&back, w, 3) == -1 &&
          harness_err_has("", "3 floats arrived", (const char *)NULL));
    w[2] = 2e-3f; /* weights that are not the header's */
    CHECK(rollout_snapshot_check_weights(&back, w, 4) == -1 &&
          harness_err_has("", "checksum", "version 12", (const char *)NULL));
    msg_buf_free(&b);
}

TEST(rollout_snapshot_refuses_truncated_and_corrupt) {
    float w[2] = {1, 2};
    RolloutSnapshot s = rollout_snapshot_of(3, w, 2);
    MsgBuf b;
    msg_buf_init(&b);
    rollout_snapshot_pack(&s, &b);
    const char *m = "snapshot header message";
    CHECK(prefixes_fail(&b, unpack_snapshot, m) == 0);
    CHECK(header_checked(&b, unpack_snapshot, m, MSG_ORDER));
    int64_t neg = -1, big_version = (int64_t)INT32_MAX + 1;
    uint64_t zero = 0, huge = (uint64_t)INT_MAX + 1, all = UINT64_MAX;
    CHECK(patched_fails(&b, SNAP_VERSION, &neg, 8, unpack_snapshot, m, "version"));
    CHECK(patched_fails(&b, SNAP_VERSION, &big_version, 8, unpack_snapshot, m, "version"));
    CHECK(patched_fails(&b, SNAP_N, &zero, 8, unpack_snapshot, m, "n_params"));
    CHECK(patched_fails(&b, SNAP_N, &huge, 8, unpack_snapshot, m, "n_params"));
    CHECK(patched_fails(&b, SNAP_N, &all, 8, unpack_snapshot, m, "n_params"));
    int64_t below = -2;
    CHECK(patched_fails(&b, SNAP_SEQ, &below, 8, unpack_snapshot, m, "bcast_seq"));
    CHECK(trailing_fails(&b, unpack_snapshot, m));
    msg_buf_free(&b);
}

static int unpack_holds(MsgBuf *b) {
    RolloutHolds h;
    return rollout_holds_unpack(b, &h);
}

TEST(rollout_holds_round_trip_and_refusals) {
    RolloutHolds h = {.version = 9, .bcast_seq = 4}, back = {0};
    MsgBuf b;
    msg_buf_init(&b);
    rollout_holds_pack(&h, &b);
    CHECK(b.len == 24);
    CHECKF(rollout_holds_unpack(&b, &back) == 0 && back.version == 9 && back.bcast_seq == 4, "%s", err_msg());
    const char *m = "snapshot held message";
    CHECK(prefixes_fail(&b, unpack_holds, m) == 0);
    CHECK(header_checked(&b, unpack_holds, m, MSG_SNAPSHOT));
    int64_t neg = -1, big = (int64_t)INT32_MAX + 1;
    CHECK(patched_fails(&b, 8, &neg, 8, unpack_holds, m, "version"));
    CHECK(patched_fails(&b, 8, &big, 8, unpack_holds, m, "version"));
    CHECK(patched_fails(&b, 16, &neg, 8, unpack_holds, m, "bcast_seq"));
    CHECK(trailing_fails(&b, unpack_holds, m));
    msg_buf_free(&b);
}

/* ---- stop ---------------------------------------------------------------- */

TEST(rollout_stop_round_trip_and_refusals) {
    MsgBuf b;
    msg_buf_init(&b);
    rollout_stop_pack(&b);
    CHECK(b.len == 8);
    CHECKF(rollout_stop_unpack(&b) == 0, "%s", err_msg());
    CHECK(prefixes_fail(&b, rollout_stop_unpack, "stop message") == 0);
    CHECK(header_checked(&b, rollout_stop_unpack, "stop message", MSG_SNAPSHOT));
    CHECK(trailing_fails(&b, rollout_stop_unpack, "stop message"));
    msg_buf_free(&b);
    /* a message of another type read as a stop */
    RolloutOrder o = sample_order();
    msg_buf_init(&b);
    rollout_order_pack(&o, &b);
    CHECK(rollout_stop_unpack(&b) == -1 && harness_err_has("", "stop message: type", "work order", (const char *)NULL));
    msg_buf_free(&b);
}

TEST(rollout_stopped_round_trip_and_refusals) {
    MsgBuf b;
    msg_buf_init(&b);
    rollout_stopped_pack(&b);
    CHECK(b.len == 8);
    CHECKF(rollout_stopped_unpack(&b) == 0, "%s", err_msg());
    CHECK(prefixes_fail(&b, rollout_stopped_unpack, "stopped message") == 0);
    CHECK(header_checked(&b, rollout_stopped_unpack, "stopped message", MSG_STOP));
    CHECK(trailing_fails(&b, rollout_stopped_unpack, "stopped message"));
    msg_buf_free(&b);
}

/* ---- progress and abandon ------------------------------------------------ */

enum { PROG_ITERATION = 8, PROG_CHUNK = 12, PROG_REWARDER = 16, PROG_BYTES = 20 };

static int unpack_progress(MsgBuf *b) {
    RolloutProgress p;
    return rollout_progress_unpack(b, &p);
}

TEST(rollout_progress_round_trip_and_refusals) {
    RolloutProgress p = {.iteration = 7, .chunk = 3, .rewarder = 2}, back = {0};
    MsgBuf b;
    msg_buf_init(&b);
    rollout_progress_pack(&p, &b);
    CHECK(b.len == PROG_BYTES);
    CHECKF(rollout_progress_unpack(&b, &back) == 0, "%s", err_msg());
    CHECK(back.iteration == 7 && back.chunk == 3 && back.rewarder == 2);
    const char *w = "progress message";
    CHECK(prefixes_fail(&b, unpack_progress, w) == 0);
    CHECK(header_checked(&b, unpack_progress, w, MSG_ORDER));
    CHECK(patched_i32_fails(&b, PROG_ITERATION, -1, unpack_progress, w, "iteration"));
    CHECK(patched_i32_fails(&b, PROG_CHUNK, -1, unpack_progress, w, "chunk"));
    CHECK(patched_i32_fails(&b, PROG_REWARDER, -5, unpack_progress, w, "rewarder"));
    CHECK(trailing_fails(&b, unpack_progress, w));
    msg_buf_free(&b);
}

static int unpack_abandon(MsgBuf *b) {
    RolloutAbandon why;
    return rollout_abandon_unpack(b, &why);
}

TEST(rollout_abandon_round_trip_and_refusals) {
    MsgBuf b;
    RolloutAbandon why = 0;
    msg_buf_init(&b);
    rollout_abandon_pack(ROLLOUT_ABANDON_DEADLINE, &b);
    CHECK(b.len == 12);
    CHECKF(rollout_abandon_unpack(&b, &why) == 0 && why == ROLLOUT_ABANDON_DEADLINE, "%s", err_msg());
    const char *w = "abandon message";
    CHECK(prefixes_fail(&b, unpack_abandon, w) == 0);
    CHECK(header_checked(&b, unpack_abandon, w, MSG_STOP));
    CHECK(patched_i32_fails(&b, 8, 0, unpack_abandon, w, "reason"));
    CHECK(patched_i32_fails(&b, 8, 3, unpack_abandon, w, "reason"));
    CHECK(trailing_fails(&b, unpack_abandon, w));
    msg_buf_free(&b);
}

/* ---- log rows ------------------------------------------------------------ */

enum { LOG_N = 8, LOG_ROW0 = 12 }; /* row: version, actor, group, lambda, t_generate, t_score, gold, sample */

static void fill_logrows(BatchData *d, RolloutLogRow rows[3], float values[3][4], float adv[3][4]) {
    RolloutBatch rb;
    fill_batch(d, &rb, 1);
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 4; k++) {
            values[i][k] = 0.5f * (float)(i * 4 + k);
            adv[i][k] = -0.25f * (float)(i * 4 + k) + 1.0f;
        }
        rows[i] = (RolloutLogRow){.r = d->r[i],
                                  .version = 2 + i,
                                  .actor = 5,
                                  .group = 1000000000000LL + i / 2,
                                  .lambda = 0.1 * (i + 1),
                                  .t_generate = 0.5,
                                  .t_score = 0.25,
                                  .gold = i == 1 ? NAN : 0.5 * i,
                                  .values = values[i],
                                  .adv = adv[i]};
    }
}

static int unpack_logrows(MsgBuf *b) {
    RolloutLogRow *rows;
    int n;
    int rc = rollout_logrows_unpack(b, &rows, &n);
    if (!rc) rollout_logrows_free(rows, n);
    return rc;
}

TEST(rollout_logrows_round_trip_and_refusals) {
    BatchData d;
    RolloutLogRow rows[3], *back;
    float values[3][4], adv[3][4];
    int n;
    fill_logrows(&d, rows, values, adv);
    MsgBuf b;
    msg_buf_init(&b);
    rollout_logrows_pack(rows, 3, &b);
    CHECKF(rollout_logrows_unpack(&b, &back, &n) == 0, "%s", err_msg());
    CHECK(n == 3);
    for (int i = 0; i < 3 && n == 3; i++) {
        const RolloutLogRow *a = &rows[i], *z = &back[i];
        CHECKF(same_rollout(&a->r, &z->r, 1), "row %d", i);
        CHECK(z->version == a->version && z->actor == a->actor && z->lambda == a->lambda && z->group == a->group);
        CHECK(z->t_generate == a->t_generate && z->t_score == a->t_score);
        CHECK(i == 1 ? isnan(z->gold) : z->gold == a->gold); /* gold may be NaN: not judged */
        CHECK(same_f32s(z->values, a->values, a->r.resp_len) && same_f32s(z->adv, a->adv, a->r.resp_len));
    }
    if (!n) back = NULL;
    rollout_logrows_free(back, n);
    const char *w = "log rows message";
    CHECK(prefixes_fail(&b, unpack_logrows, w) == 0);
    CHECK(header_checked(&b, unpack_logrows, w, MSG_SCORED));
    CHECK(patched_i32_fails(&b, LOG_N, -1, unpack_logrows, w, "n: -1"));
    CHECK(patched_i32_fails(&b, LOG_N, 1 << 20, unpack_logrows, w, "n: 1048576 items"));
    CHECK(patched_i32_fails(&b, LOG_N, 2, unpack_logrows, w, "left over"));
    CHECK(patched_i32_fails(&b, LOG_ROW0, -1, unpack_logrows, w, "sample 0: version"));
    int64_t negative = -3;
    CHECK(patched_fails(&b, LOG_ROW0 + 8, &negative, sizeof negative, unpack_logrows, w, "sample 0: group"));
    CHECK(patched_f64_fails(&b, LOG_ROW0 + 16, NAN, unpack_logrows, w, "sample 0: lambda"));
    CHECK(patched_i32_fails(&b, LOG_ROW0 + 48 + 8, -4, unpack_logrows, w, "sample 0: resp_len"));
    CHECK(trailing_fails(&b, unpack_logrows, w));
    msg_buf_free(&b);
    msg_buf_init(&b); /* no rows at all is a valid message */
    rollout_logrows_pack(NULL, 0, &b);
    CHECK(rollout_logrows_unpack(&b, &back, &n) == 0 && n == 0);
    rollout_logrows_free(back, n);
    msg_buf_free(&b);
}

/* ---- tags ------------------------------------------------------------------ */

TEST(rollout_tags_have_distinct_names) {
    int tags[] = {MSG_SNAPSHOT, MSG_ORDER, MSG_ROLLOUT, MSG_SCORED, MSG_STOP, MSG_LOGROWS, MSG_SNAPSHOT_DATA,
                  MSG_PROGRESS, MSG_STOPPED, MSG_ABANDON, MSG_HOLDS};
    int n = (int)(sizeof tags / sizeof tags[0]);
    for (int i = 0; i < n; i++) {
        CHECKF(strcmp(msg_tag_name(tags[i]), "unknown") != 0, "tag %d has no name", tags[i]);
        for (int j = 0; j < i; j++) CHECK(tags[i] != tags[j] && strcmp(msg_tag_name(tags[i]), msg_tag_name(tags[j])));
    }
    CHECK(strcmp(msg_tag_name(999), "unknown") == 0);
}
