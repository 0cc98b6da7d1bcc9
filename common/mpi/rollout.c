/* rollout — packing and checking of every PPO message; see rollout.h. */
#include "common/mpi/rollout.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* ---- reading with checks ------------------------------------------------- */

/* A cursor over one message; errors name the message, the sample (item >= 0)
 * and the field. */
typedef struct {
    MsgBuf *b;
    const char *what;
    int item;
} Reader;

static Reader reader(MsgBuf *b, int type) { return (Reader){.b = b, .what = msg_tag_name(type), .item = -1}; }

static size_t rd_left(const Reader *r) { return r->b->pos <= r->b->len ? r->b->len - r->b->pos : 0; }

static int rd_fail(const Reader *r, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rd_fail(const Reader *r, const char *field, const char *fmt, ...) {
    char detail[256], item[32] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (r->item >= 0) snprintf(item, sizeof item, "sample %d: ", r->item);
    return err_set("%s message: %s%s: %s", r->what, item, field, detail);
}

static int rd_bytes(Reader *r, const char *field, void *out, size_t n) {
    if (n > rd_left(r)) return rd_fail(r, field, "truncated (%zu bytes needed, %zu left)", n, rd_left(r));
    if (n) memcpy(out, r->b->data + r->b->pos, n);
    r->b->pos += n;
    return 0;
}

static int rd_i32(Reader *r, const char *field, int32_t *v) { return rd_bytes(r, field, v, sizeof *v); }
static int rd_i64(Reader *r, const char *field, int64_t *v) { return rd_bytes(r, field, v, sizeof *v); }
static int rd_u64(Reader *r, const char *field, uint64_t *v) { return rd_bytes(r, field, v, sizeof *v); }
static int rd_f32(Reader *r, const char *field, float *v) { return rd_bytes(r, field, v, sizeof *v); }
static int rd_f64(Reader *r, const char *field, double *v) { return rd_bytes(r, field, v, sizeof *v); }

/* An int32 in lo..hi. */
static int rd_range(Reader *r, const char *field, int32_t *v, int32_t lo, int32_t hi) {
    if (rd_i32(r, field, v)) return -1;
    if (*v < lo || *v > hi) return rd_fail(r, field, "%d is out of range %d..%d", *v, lo, hi);
    return 0;
}

/* A double that must be finite and at least lo (-HUGE_VAL: any finite;
 * lambda may be negative, since kl_coef has no lower bound). */
static int rd_finite(Reader *r, const char *field, double *v, double lo) {
    if (rd_f64(r, field, v)) return -1;
    if (!isfinite(*v)) return rd_fail(r, field, "%g is not a finite number", *v);
    if (*v < lo) return rd_fail(r, field, "%g is below %g", *v, lo);
    return 0;
}

/* A count in lo..ROLLOUT_MAX_COUNT whose items, at least min_bytes each,
 * fit in what is left: a corrupt count fails before anything is allocated. */
static int rd_count(Reader *r, const char *field, int32_t *v, int32_t lo, size_t min_bytes) {
    if (rd_range(r, field, v, lo, ROLLOUT_MAX_COUNT)) return -1;
    if ((size_t)*v * min_bytes > rd_left(r))
        return rd_fail(r, field, "%d items need at least %zu bytes, %zu left", *v, (size_t)*v * min_bytes, rd_left(r));
    return 0;
}

/* n items of size elem into a fresh array (one item at least, so n = 0 is
 * not a NULL that looks like a failure). */
static void *rd_array(Reader *r, const char *field, int32_t n, size_t elem, int *rc) {
    void *v = err_malloc((size_t)(n > 0 ? n : 1) * elem);
    if (!*rc) *rc = rd_bytes(r, field, v, (size_t)n * elem);
    return v;
}

/* Every message starts with the magic number and its type. */
static void put_header(MsgBuf *b, int type) {
    uint32_t magic = ROLLOUT_MAGIC;
    int32_t t = type;
    msg_put(b, &magic, sizeof magic);
    msg_put(b, &t, sizeof t);
}

static int rd_header(Reader *r, int type) {
    uint32_t magic;
    int32_t t;
    if (rd_bytes(r, "magic", &magic, sizeof magic)) return -1;
    if (magic != ROLLOUT_MAGIC)
        return rd_fail(r, "magic", "0x%08x, expected 0x%08x (a rank from another build of rlhf?)", magic, ROLLOUT_MAGIC);
    if (rd_i32(r, "type", &t)) return -1;
    if (t != type) return rd_fail(r, "type", "%d (a %s message), expected %d", t, msg_tag_name(t), type);
    return 0;
}

/* Nothing may follow the last field: a count that disagrees with the length
 * shows up here when it is too small. */
static int rd_end(Reader *r) {
    if (rd_left(r)) return rd_fail(r, "end", "%zu bytes left over after the last field", rd_left(r));
    return 0;
}

/* ---- work orders --------------------------------------------------------- */

void rollout_order_pack(const RolloutOrder *o, MsgBuf *b) {
    put_header(b, MSG_ORDER);
    msg_put_i32(b, o->iteration);
    msg_put_i32(b, o->chunk);
    msg_put_f64(b, o->lambda);
    msg_put(b, &o->seed, sizeof o->seed);
    msg_put_i32(b, o->version);
    msg_put_i32(b, o->rewarder);
    msg_put_i32(b, o->n);
    msg_put_i32s(b, o->prompt_index, o->n);
}

static int order_fields(Reader *r, RolloutOrder *o) {
    if (rd_header(r, MSG_ORDER) || rd_range(r, "iteration", &o->iteration, 0, INT32_MAX) ||
        rd_range(r, "chunk", &o->chunk, 0, INT32_MAX) || rd_finite(r, "lambda", &o->lambda, -HUGE_VAL) ||
        rd_u64(r, "seed", &o->seed) || rd_range(r, "version", &o->version, 0, INT32_MAX) ||
        rd_range(r, "rewarder", &o->rewarder, 0, INT32_MAX))
        return -1;
    /* n >= 1: the actor sizes arrays by it */
    return rd_count(r, "n", &o->n, 1, sizeof(int32_t));
}

static int check_order_indices(Reader *r, const RolloutOrder *o) {
    for (int i = 0; i < o->n; i++)
        if (o->prompt_index[i] < 0) return rd_fail(r, "prompt_index", "entry %d is %d", i, o->prompt_index[i]);
    return 0;
}

int rollout_order_unpack(MsgBuf *b, RolloutOrder *o) {
    Reader r = reader(b, MSG_ORDER);
    int rc = 0;
    memset(o, 0, sizeof *o);
    if (order_fields(&r, o)) return -1;
    o->prompt_index = rd_array(&r, "prompt_index", o->n, sizeof(int32_t), &rc);
    if (!rc) rc = check_order_indices(&r, o);
    if (!rc) rc = rd_end(&r);
    if (rc) rollout_order_free(o);
    return rc;
}

void rollout_order_free(RolloutOrder *o) {
    free(o->prompt_index);
    o->prompt_index = NULL;
}

/* ---- rollouts and batches ------------------------------------------------ */

enum {
    SAMPLE_HEAD_BYTES = 4 * sizeof(int32_t),   /* prompt_index, prompt_len, resp_len, stop */
    SAMPLE_SCORE_BYTES = (6 + ROLLOUT_VCOMPS) * sizeof(float), /* r_raw, r_theta, kl_sum, score, r_verifier,
                                                                  overlong, v_comp */
    UNSCORED_TOKEN_ARRAYS = 2,                 /* resp, logp_behav */
    SCORED_TOKEN_ARRAYS = 5,                   /* + logp_ref, kl, reward */
};

static void pack_one(const Rollout *r, int scored, MsgBuf *b) {
    msg_put_i32(b, r->prompt_index);
    msg_put_i32(b, r->prompt_len);
    msg_put_i32(b, r->resp_len);
    msg_put_i32(b, r->stop);
    msg_put_i32s(b, r->prompt, r->prompt_len);
    msg_put_i32s(b, r->resp, r->resp_len);
    msg_put_f32s(b, r->logp_behav, r->resp_len);
    if (!scored) return;
    msg_put(b, &r->r_raw, sizeof r->r_raw);
    msg_put(b, &r->r_theta, sizeof r->r_theta);
    msg_put(b, &r->kl_sum, sizeof r->kl_sum);
    msg_put(b, &r->score, sizeof r->score);
    msg_put(b, &r->r_verifier, sizeof r->r_verifier);
    msg_put(b, &r->overlong, sizeof r->overlong);
    msg_put(b, r->v_comp, sizeof r->v_comp);
    msg_put_f32s(b, r->logp_ref, r->resp_len);
    msg_put_f32s(b, r->kl, r->resp_len);
    msg_put_f32s(b, r->reward, r->resp_len);
}

/* The smallest packed sample: a one-token prompt, no response. */
static size_t min_sample_bytes(int scored) {
    return SAMPLE_HEAD_BYTES + sizeof(int32_t) + (scored ? SAMPLE_SCORE_BYTES : 0);
}

/* The four leading fields, and whether the arrays they announce fit. */
static int sample_head(Reader *r, Rollout *s, int scored) {
    if (rd_range(r, "prompt_index", &s->prompt_index, 0, INT32_MAX) ||
        rd_range(r, "prompt_len", &s->prompt_len, 1, ROLLOUT_MAX_COUNT) ||
        rd_range(r, "resp_len", &s->resp_len, 0, ROLLOUT_MAX_COUNT) || rd_i32(r, "stop", &s->stop))
        return -1;
    size_t arrays = scored ? SCORED_TOKEN_ARRAYS : UNSCORED_TOKEN_ARRAYS;
    size_t need = 4 * ((size_t)s->prompt_len + arrays * (size_t)s->resp_len) + (scored ? SAMPLE_SCORE_BYTES : 0);
    if (need > rd_left(r))
        return rd_fail(r, "resp_len", "prompt_len %d and resp_len %d need %zu bytes, %zu left", s->prompt_len,
                       s->resp_len, need, rd_left(r));
    return 0;
}

/* On failure s may hold arrays: rollout_free releases them. */
static int unpack_one(Reader *r, Rollout *s, int scored) {
    int rc = sample_head(r, s, scored);
    if (rc) return rc;
    s->prompt = rd_array(r, "prompt", s->prompt_len, sizeof(int32_t), &rc);
    s->resp = rd_array(r, "resp", s->resp_len, sizeof(int32_t), &rc);
    s->logp_behav = rd_array(r, "logp_behav", s->resp_len, sizeof(float), &rc);
    if (rc || !scored) return rc;
    if (rd_f32(r, "r_raw", &s->r_raw) || rd_f32(r, "r_theta", &s->r_theta) || rd_f32(r, "kl_sum", &s->kl_sum) ||
        rd_f32(r, "score", &s->score) || rd_f32(r, "r_verifier", &s->r_verifier) ||
        rd_f32(r, "overlong", &s->overlong) || rd_bytes(r, "v_comp", s->v_comp, sizeof s->v_comp))
        return -1;
    s->logp_ref = rd_array(r, "logp_ref", s->resp_len, sizeof(float), &rc);
    s->kl = rd_array(r, "kl", s->resp_len, sizeof(float), &rc);
    s->reward = rd_array(r, "reward", s->resp_len, sizeof(float), &rc);
    return rc;
}

void rollout_batch_pack(const RolloutBatch *rb, MsgBuf *b) {
    put_header(b, rb->scored ? MSG_SCORED : MSG_ROLLOUT);
    msg_put_i32(b, rb->iteration);
    msg_put_i32(b, rb->chunk);
    msg_put_i32(b, rb->version);
    msg_put_i32(b, rb->actor);
    msg_put_f64(b, rb->lambda);
    msg_put_f64(b, rb->t_generate);
    msg_put_f64(b, rb->t_score);
    msg_put_f64(b, rb->t_sent);
    msg_put_i32(b, rb->n);
    for (int i = 0; i < rb->n; i++) pack_one(&rb->r[i], rb->scored, b);
}

static int batch_fields(Reader *r, RolloutBatch *rb) {
    if (rd_header(r, rb->scored ? MSG_SCORED : MSG_ROLLOUT) ||
        rd_range(r, "iteration", &rb->iteration, 0, INT32_MAX) || rd_range(r, "chunk", &rb->chunk, 0, INT32_MAX) ||
        rd_range(r, "version", &rb->version, 0, INT32_MAX) || rd_range(r, "actor", &rb->actor, 0, INT32_MAX) ||
        rd_finite(r, "lambda", &rb->lambda, -HUGE_VAL) || rd_finite(r, "t_generate", &rb->t_generate, 0) ||
        rd_finite(r, "t_score", &rb->t_score, 0) || rd_finite(r, "t_sent", &rb->t_sent, 0))
        return -1;
    /* a sample is drawn from a snapshot no newer than its order's iteration */
    if (rb->version > rb->iteration)
        return rd_fail(r, "version", "%d is newer than the batch's iteration %d", rb->version, rb->iteration);
    return rd_count(r, "n", &rb->n, 0, min_sample_bytes(rb->scored));
}

int rollout_batch_unpack(MsgBuf *b, int scored, RolloutBatch *rb) {
    Reader r = reader(b, scored ? MSG_SCORED : MSG_ROLLOUT);
    int rc = 0;
    memset(rb, 0, sizeof *rb);
    rb->scored = scored != 0;
    if (batch_fields(&r, rb)) {
        rb->n = 0;
        return -1;
    }
    rb->r = err_calloc((size_t)(rb->n ? rb->n : 1), sizeof(Rollout));
    for (int i = 0; i < rb->n && !rc; i++) {
        r.item = i;
        rc = unpack_one(&r, &rb->r[i], rb->scored);
    }
    r.item = -1;
    if (!rc) rc = rd_end(&r);
    if (rc) rollout_batch_free(rb);
    return rc;
}

void rollout_batch_alloc_scores(RolloutBatch *rb) {
    for (int i = 0; i < rb->n; i++) {
        Rollout *r = &rb->r[i];
        size_t n = (size_t)(r->resp_len ? r->resp_len : 1);
        r->logp_ref = err_calloc(n, sizeof(float));
        r->kl = err_calloc(n, sizeof(float));
        r->reward = err_calloc(n, sizeof(float));
    }
    rb->scored = 1;
}

void rollout_free(Rollout *r) {
    free(r->prompt);
    free(r->resp);
    free(r->logp_behav);
    free(r->logp_ref);
    free(r->kl);
    free(r->reward);
    memset(r, 0, sizeof *r);
}

void rollout_batch_free(RolloutBatch *rb) {
    for (int i = 0; i < rb->n; i++) rollout_free(&rb->r[i]);
    free(rb->r);
    memset(rb, 0, sizeof *rb);
}

/* ---- snapshots ----------------------------------------------------------- */

uint64_t rollout_checksum(const float *params, size_t n) {
    uint64_t sum = 0, weighted = 0; /* weighted: a swap of two values changes it */
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &params[i], sizeof w);
        sum += w;
        weighted += (uint64_t)w * (i + 1);
    }
    return sum ^ (weighted * 0x9e3779b97f4a7c15ULL);
}

RolloutSnapshot rollout_snapshot_of(int64_t version, const float *params, size_t n) {
    return (RolloutSnapshot){.version = version, .n_params = n, .checksum = rollout_checksum(params, n), .bcast_seq = -1};
}

void rollout_snapshot_pack(const RolloutSnapshot *s, MsgBuf *b) {
    put_header(b, MSG_SNAPSHOT);
    msg_put(b, &s->version, sizeof s->version);
    msg_put(b, &s->n_params, sizeof s->n_params);
    msg_put(b, &s->checksum, sizeof s->checksum);
    msg_put(b, &s->bcast_seq, sizeof s->bcast_seq);
}

int rollout_snapshot_unpack(MsgBuf *b, RolloutSnapshot *s) {
    Reader r = reader(b, MSG_SNAPSHOT);
    memset(s, 0, sizeof *s);
    if (rd_header(&r, MSG_SNAPSHOT) || rd_i64(&r, "version", &s->version) || rd_u64(&r, "n_params", &s->n_params) ||
        rd_u64(&r, "checksum", &s->checksum) || rd_i64(&r, "bcast_seq", &s->bcast_seq))
        return -1;
    if (s->bcast_seq < -1)
        return rd_fail(&r, "bcast_seq", "%lld: -1 (point-to-point) or a broadcast number >= 0", (long long)s->bcast_seq);
    if (s->version < 0 || s->version > INT32_MAX)
        return rd_fail(&r, "version", "%lld is out of range 0..%d", (long long)s->version, INT32_MAX);
    /* the weights travel as one MPI message, whose count is an int */
    if (s->n_params < 1 || s->n_params > INT_MAX)
        return rd_fail(&r, "n_params", "%llu is out of range 1..%d", (unsigned long long)s->n_params, INT_MAX);
    return rd_end(&r);
}

int rollout_snapshot_check_count(const RolloutSnapshot *s, size_t n) {
    if (s->n_params != n)
        return err_set("snapshot header message: n_params: %llu parameters, the policy here has %zu",
                       (unsigned long long)s->n_params, n);
    return 0;
}

int rollout_snapshot_check_weights(const RolloutSnapshot *s, const float *params, size_t n) {
    if (s->n_params != n)
        return err_set("snapshot weights message: %zu floats arrived, the header announced %llu", n,
                       (unsigned long long)s->n_params);
    uint64_t sum = rollout_checksum(params, n);
    if (sum != s->checksum)
        return err_set("snapshot weights message: checksum %016llx, the header (version %lld) says %016llx",
                       (unsigned long long)sum, (long long)s->version, (unsigned long long)s->checksum);
    return 0;
}

void rollout_snapshot_isend(const MsgBuf *hdr, const float *params, size_t n, int dest, MPI_Comm comm,
                            MPI_Request req[2]) {
    msg_isend(hdr, dest, MSG_SNAPSHOT, comm, &req[0]);
    msg_isend_f32(params, n, dest, MSG_SNAPSHOT_DATA, comm, &req[1]);
}

int rollout_snapshot_recv(const RolloutSnapshot *s, float *params, size_t n, int src, MPI_Comm comm) {
    if (rollout_snapshot_check_count(s, n)) return -1; /* before the weights could overrun params */
    size_t got = msg_recv_f32(params, n, src, MSG_SNAPSHOT_DATA, comm);
    return rollout_snapshot_check_weights(s, params, got);
}

void rollout_snapshot_ibcast(float *params, size_t n, int root, MPI_Comm comm, MPI_Request *r) {
    if (n > INT_MAX) err_die("snapshot broadcast of %zu floats is too large", n);
    MPI_Ibcast(params, (int)n, MPI_FLOAT, root, comm, r);
}

void rollout_holds_pack(const RolloutHolds *h, MsgBuf *b) {
    put_header(b, MSG_HOLDS);
    msg_put(b, &h->version, sizeof h->version);
    msg_put(b, &h->bcast_seq, sizeof h->bcast_seq);
}

int rollout_holds_unpack(MsgBuf *b, RolloutHolds *h) {
    Reader r = reader(b, MSG_HOLDS);
    memset(h, 0, sizeof *h);
    if (rd_header(&r, MSG_HOLDS) || rd_i64(&r, "version", &h->version) || rd_i64(&r, "bcast_seq", &h->bcast_seq))
        return -1;
    if (h->version < 0 || h->version > INT32_MAX)
        return rd_fail(&r, "version", "%lld is out of range 0..%d", (long long)h->version, INT32_MAX);
    if (h->bcast_seq < 0) return rd_fail(&r, "bcast_seq", "%lld is negative", (long long)h->bcast_seq);
    return rd_end(&r);
}

/* ---- stop ---------------------------------------------------------------- */

void rollout_stop_pack(MsgBuf *b) { put_header(b, MSG_STOP); }

int rollout_stop_unpack(MsgBuf *b) {
    Reader r = reader(b, MSG_STOP);
    return rd_header(&r, MSG_STOP) || rd_end(&r) ? -1 : 0;
}

void rollout_stopped_pack(MsgBuf *b) { put_header(b, MSG_STOPPED); }

int rollout_stopped_unpack(MsgBuf *b) {
    Reader r = reader(b, MSG_STOPPED);
    return rd_header(&r, MSG_STOPPED) || rd_end(&r) ? -1 : 0;
}

/* ---- progress and abandon -------------------------------------------------- */

void rollout_progress_pack(const RolloutProgress *p, MsgBuf *b) {
    put_header(b, MSG_PROGRESS);
    msg_put_i32(b, p->iteration);
    msg_put_i32(b, p->chunk);
    msg_put_i32(b, p->rewarder);
}

int rollout_progress_unpack(MsgBuf *b, RolloutProgress *p) {
    Reader r = reader(b, MSG_PROGRESS);
    return rd_header(&r, MSG_PROGRESS) || rd_range(&r, "iteration", &p->iteration, 0, INT32_MAX) ||
                   rd_range(&r, "chunk", &p->chunk, 0, INT32_MAX) ||
                   rd_range(&r, "rewarder", &p->rewarder, 0, INT32_MAX) || rd_end(&r)
               ? -1
               : 0;
}

void rollout_abandon_pack(RolloutAbandon why, MsgBuf *b) {
    put_header(b, MSG_ABANDON);
    msg_put_i32(b, (int32_t)why);
}

int rollout_abandon_unpack(MsgBuf *b, RolloutAbandon *why) {
    Reader r = reader(b, MSG_ABANDON);
    int32_t v;
    if (rd_header(&r, MSG_ABANDON) || rd_range(&r, "reason", &v, ROLLOUT_ABANDON_SIGNAL, ROLLOUT_ABANDON_DEADLINE) ||
        rd_end(&r))
        return -1;
    *why = (RolloutAbandon)v;
    return 0;
}

/* ---- log rows ------------------------------------------------------------ */

enum { LOGROW_HEAD_BYTES = 2 * sizeof(int32_t) + sizeof(int64_t) + 4 * sizeof(double) };

void rollout_logrows_pack(const RolloutLogRow *rows, int n, MsgBuf *b) {
    put_header(b, MSG_LOGROWS);
    msg_put_i32(b, n);
    for (int i = 0; i < n; i++) {
        const RolloutLogRow *w = &rows[i];
        msg_put_i32(b, w->version);
        msg_put_i32(b, w->actor);
        msg_put(b, &w->group, sizeof w->group);
        msg_put_f64(b, w->lambda);
        msg_put_f64(b, w->t_generate);
        msg_put_f64(b, w->t_score);
        msg_put_f64(b, w->gold);
        pack_one(&w->r, 1, b);
        msg_put_f32s(b, w->values, w->r.resp_len);
        msg_put_f32s(b, w->adv, w->r.resp_len);
    }
}

static int logrow_fields(Reader *r, RolloutLogRow *w) {
    int rc = 0;
    if (rd_range(r, "version", &w->version, 0, INT32_MAX) || rd_range(r, "actor", &w->actor, 0, INT32_MAX) ||
        rd_i64(r, "group", &w->group) || (w->group < 0 && rd_fail(r, "group", "%lld is negative", (long long)w->group)) ||
        rd_finite(r, "lambda", &w->lambda, -HUGE_VAL) || rd_finite(r, "t_generate", &w->t_generate, 0) ||
        rd_finite(r, "t_score", &w->t_score, 0) || rd_f64(r, "gold", &w->gold)) /* gold: NaN when not judged */
        return -1;
    if (unpack_one(r, &w->r, 1)) return -1;
    w->values = rd_array(r, "values", w->r.resp_len, sizeof(float), &rc);
    w->adv = rd_array(r, "adv", w->r.resp_len, sizeof(float), &rc);
    return rc;
}

int rollout_logrows_unpack(MsgBuf *b, RolloutLogRow **rows, int *n_rows) {
    Reader r = reader(b, MSG_LOGROWS);
    int32_t n;
    int rc = 0;
    *rows = NULL;
    *n_rows = 0;
    if (rd_header(&r, MSG_LOGROWS) || rd_count(&r, "n", &n, 0, LOGROW_HEAD_BYTES + min_sample_bytes(1))) return -1;
    RolloutLogRow *w = err_calloc((size_t)(n ? n : 1), sizeof *w);
    for (int i = 0; i < n && !rc; i++) {
        r.item = i;
        rc = logrow_fields(&r, &w[i]);
    }
    r.item = -1;
    if (!rc) rc = rd_end(&r);
    if (rc) {
        rollout_logrows_free(w, n);
        return -1;
    }
    *rows = w;
    *n_rows = n;
    return 0;
}

void rollout_logrows_free(RolloutLogRow *rows, int n) {
    for (int i = 0; i < n && rows; i++) {
        rollout_free(&rows[i].r);
        free(rows[i].values);
        free(rows[i].adv);
    }
    free(rows);
}
