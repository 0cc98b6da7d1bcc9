/* rollout — packing of PPO work orders and rollout batches; see rollout.h. */
#include "common/mpi/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define ROLLOUT_MAX_TOKENS (1 << 20) /* sanity bound on lengths in a message */

void rollout_order_pack(const RolloutOrder *o, MsgBuf *b) {
    msg_put_i32(b, o->iteration);
    msg_put_i32(b, o->chunk);
    msg_put_f64(b, o->lambda);
    msg_put(b, &o->seed, sizeof o->seed);
    msg_put_i32(b, o->n);
    msg_put_i32s(b, o->prompt_index, o->n);
}

int rollout_order_unpack(MsgBuf *b, RolloutOrder *o) {
    o->iteration = msg_get_i32(b);
    o->chunk = msg_get_i32(b);
    o->lambda = msg_get_f64(b);
    msg_get_i32s(b, (int32_t *)&o->seed, 2);
    o->n = msg_get_i32(b);
    if (b->bad || o->n < 0 || o->n > ROLLOUT_MAX_TOKENS) return err_set("malformed work order");
    o->prompt_index = err_malloc((size_t)(o->n ? o->n : 1) * sizeof(int32_t));
    msg_get_i32s(b, o->prompt_index, o->n);
    return b->bad ? err_set("malformed work order") : 0;
}

void rollout_order_free(RolloutOrder *o) {
    free(o->prompt_index);
    o->prompt_index = NULL;
}

static void pack_one(const Rollout *r, int scored, MsgBuf *b) {
    msg_put_i32(b, r->prompt_index);
    msg_put_i32(b, r->prompt_len);
    msg_put_i32(b, r->resp_len);
    msg_put_i32(b, r->stop);
    msg_put_i32s(b, r->prompt, r->prompt_len);
    msg_put_i32s(b, r->resp, r->resp_len);
    msg_put_f32s(b, r->logp_behav, r->resp_len);
    if (!scored) return;
    msg_put_f32s(b, &r->r_raw, 1);
    msg_put_f32s(b, &r->r_theta, 1);
    msg_put_f32s(b, &r->kl_sum, 1);
    msg_put_f32s(b, r->logp_ref, r->resp_len);
    msg_put_f32s(b, r->kl, r->resp_len);
    msg_put_f32s(b, r->reward, r->resp_len);
}

void rollout_batch_pack(const RolloutBatch *rb, MsgBuf *b) {
    msg_put_i32(b, rb->iteration);
    msg_put_i32(b, rb->chunk);
    msg_put_i32(b, rb->version);
    msg_put_i32(b, rb->actor);
    msg_put_i32(b, rb->scored);
    msg_put_f64(b, rb->lambda);
    msg_put_f64(b, rb->t_generate);
    msg_put_f64(b, rb->t_score);
    msg_put_f64(b, rb->t_sent);
    msg_put_i32(b, rb->n);
    for (int i = 0; i < rb->n; i++) pack_one(&rb->r[i], rb->scored, b);
}

static float *get_f32s(MsgBuf *b, int n) {
    float *v = err_malloc((size_t)(n ? n : 1) * sizeof(float));
    msg_get_f32s(b, v, n);
    return v;
}

static int unpack_one(MsgBuf *b, Rollout *r, int scored) {
    r->prompt_index = msg_get_i32(b);
    r->prompt_len = msg_get_i32(b);
    r->resp_len = msg_get_i32(b);
    r->stop = msg_get_i32(b);
    if (b->bad || r->prompt_len < 0 || r->resp_len < 0 || r->prompt_len > ROLLOUT_MAX_TOKENS ||
        r->resp_len > ROLLOUT_MAX_TOKENS)
        return -1;
    r->prompt = err_malloc((size_t)(r->prompt_len + 1) * sizeof(int32_t));
    r->resp = err_malloc((size_t)(r->resp_len + 1) * sizeof(int32_t));
    msg_get_i32s(b, r->prompt, r->prompt_len);
    msg_get_i32s(b, r->resp, r->resp_len);
    r->logp_behav = get_f32s(b, r->resp_len);
    if (scored) {
        msg_get_f32s(b, &r->r_raw, 1);
        msg_get_f32s(b, &r->r_theta, 1);
        msg_get_f32s(b, &r->kl_sum, 1);
        r->logp_ref = get_f32s(b, r->resp_len);
        r->kl = get_f32s(b, r->resp_len);
        r->reward = get_f32s(b, r->resp_len);
    }
    return b->bad ? -1 : 0;
}

int rollout_batch_unpack(MsgBuf *b, RolloutBatch *rb) {
    memset(rb, 0, sizeof *rb);
    rb->iteration = msg_get_i32(b);
    rb->chunk = msg_get_i32(b);
    rb->version = msg_get_i32(b);
    rb->actor = msg_get_i32(b);
    rb->scored = msg_get_i32(b);
    rb->lambda = msg_get_f64(b);
    rb->t_generate = msg_get_f64(b);
    rb->t_score = msg_get_f64(b);
    rb->t_sent = msg_get_f64(b);
    rb->n = msg_get_i32(b);
    if (b->bad || rb->n < 0 || rb->n > ROLLOUT_MAX_TOKENS) return err_set("malformed rollout message");
    rb->r = err_calloc((size_t)(rb->n ? rb->n : 1), sizeof(Rollout));
    for (int i = 0; i < rb->n; i++)
        if (unpack_one(b, &rb->r[i], rb->scored)) {
            rb->n = i + 1;
            rollout_batch_free(rb);
            return err_set("malformed rollout message");
        }
    return 0;
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

void rollout_batch_free(RolloutBatch *rb) {
    for (int i = 0; i < rb->n; i++) {
        Rollout *r = &rb->r[i];
        free(r->prompt), free(r->resp), free(r->logp_behav), free(r->logp_ref), free(r->kl), free(r->reward);
    }
    free(rb->r);
    memset(rb, 0, sizeof *rb);
}
