/* rewarder — scores rollouts for PPO; see rewarder.h. */
#include "rewarder/rewarder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/io/ckpt.h"
#include "common/err.h"
#include "common/model/gpt.h"
#include "common/model/score.h"
#include "common/mpi/rollout.h"
#include "common/fsutil.h"

typedef struct {
    Gpt rm, ref;
    int eot;
    ScoreRm rm_conv; /* the reward model's end token, normalisation and clip */
    KlEstimator kl;
    const PpoLayout *layout;
} Rewarder;

/* ---- response rewards ----------------------------------------------------- */

int rewarder_shape_rewards(int T, const float *kl, double kl_coef, double score, double score_clip,
                           float *rewards) {
    if (T < 1) return err_set("reward: a response needs at least one token for its score, got %d", T);
    if (!isfinite(kl_coef)) return err_set("reward: KL coefficient must be finite, got %g", kl_coef);
    if (!isfinite(score)) return err_set("reward: score must be finite, got %g", score);
    if (!(score_clip >= 0 && isfinite(score_clip)))
        return err_set("reward: score clip must be >= 0 (0 = off), got %g", score_clip);
    if (score_clip > 0) score = fmin(fmax(score, -score_clip), score_clip);
    for (int t = 0; t < T; t++) rewards[t] = kl ? (float)(-kl_coef * kl[t]) : 0.0f;
    /* one rounding to float for the last token, not two */
    rewards[T - 1] = (float)((kl ? -kl_coef * kl[T - 1] : 0.0) + score);
    return 0;
}

/* ---- the role ------------------------------------------------------------- */

static int rewarder_setup(Rewarder *w, const Config *cfg, const PpoLayout *l) {
    memset(w, 0, sizeof *w);
    w->layout = l;
    const char *policy = config_str(cfg, "policy"), *ref = config_str(cfg, "ref");
    Ckpt *k = ckpt_open(policy);
    GptConfig pc;
    if (!k) return -1;
    Tok *tok = ckpt_get_config(k, &pc) ? NULL : ckpt_get_tok(k);
    ckpt_close(k);
    if (!tok) return -1;
    w->eot = tok_eot(tok);
    CkptWant rm_want = {.head = GPT_HEAD_SCALAR, .what = "the reward model", .vocab = pc.vocab_size,
                        .min_ctx = pc.n_ctx, .tok = tok, .like = "the policy"};
    CkptWant ref_want = rm_want;
    ref_want.head = GPT_HEAD_LM;
    ref_want.what = "the reference";
    int rc = ckpt_load_model_as(config_str(cfg, "reward_model"), &w->rm, NULL, &rm_want) ||
             ckpt_load_model_as(*ref ? ref : policy, &w->ref, NULL, &ref_want);
    tok_free(tok);
    if (rc) return -1;
    w->ref.temperature = (float)config_float(cfg, "temperature"); /* KL of the distribution the actor sampled */
    w->rm_conv = (ScoreRm){.eot = w->eot, .offset = 0, .scale = 1, .clip = config_float(cfg, "reward_clip")};
    if (config_bool(cfg, "normalize_reward") &&
        ckpt_get_rm_norm(config_str(cfg, "reward_model"), &w->rm_conv.offset, &w->rm_conv.scale))
        return -1;
    return kl_parse(config_str(cfg, "kl_estimator"), &w->kl);
}

/* The rollouts as prompt + response rows. */
static ScoreRow *rows_of(const RolloutBatch *rb) {
    ScoreRow *rows = err_malloc((size_t)(rb->n ? rb->n : 1) * sizeof *rows);
    for (int i = 0; i < rb->n; i++) {
        const Rollout *r = &rb->r[i];
        rows[i] = (ScoreRow){.prompt = r->prompt, .prompt_len = r->prompt_len, .resp = r->resp,
                             .resp_len = r->resp_len};
    }
    return rows;
}

/* Reference log-prob of every response token, for all samples at once. */
static void ref_logprobs(Rewarder *w, RolloutBatch *rb, const ScoreRow *rows) {
    float **out = err_malloc((size_t)(rb->n ? rb->n : 1) * sizeof *out);
    ScoreBatch sb = {0};
    for (int i = 0; i < rb->n; i++) out[i] = rb->r[i].logp_ref;
    if (score_response_logp(&w->ref, &sb, rows, rb->n, w->eot, out, NULL)) err_die("rewarder: %s", err_msg());
    score_batch_free(&sb);
    free(out);
}

/* Reward-model scores of prompt + response, raw and as configured. */
static void rm_scores(Rewarder *w, RolloutBatch *rb, const ScoreRow *rows) {
    int n = rb->n;
    double *s = err_malloc((size_t)(n ? n : 1) * sizeof *s);
    float *raw = err_malloc((size_t)(n ? n : 1) * sizeof *raw);
    if (score_reward(&w->rm, &w->rm_conv, rows, n, raw, s)) err_die("rewarder: %s", err_msg());
    for (int i = 0; i < n; i++) {
        rb->r[i].r_raw = raw[i];
        rb->r[i].r_theta = (float)s[i];
        rb->r[i].score = rb->r[i].r_theta;
    }
    free(s);
    free(raw);
}

/* Per-token KL to the reference and shaped rewards of one scored rollout.
 * r_theta is already normalised and clipped (rm_scores), so no second clip.
 * An empty response has no token for its score: no KL, no reward. */
static void shape(const Rewarder *w, double lambda, Rollout *r) {
    r->kl_sum = 0;
    if (r->resp_len == 0) return;
    if (kl_tokens(w->kl, (size_t)r->resp_len, r->logp_behav, r->logp_ref, r->kl) ||
        rewarder_shape_rewards(r->resp_len, r->kl, lambda, r->score, 0.0, r->reward))
        err_die("rewarder: %s", err_msg());
    double sum = 0;
    for (int k = 0; k < r->resp_len; k++) sum += r->kl[k];
    r->kl_sum = (float)sum;
}

static void score(Rewarder *w, RolloutBatch *rb) {
    rollout_batch_alloc_scores(rb);
    ScoreRow *rows = rows_of(rb);
    ref_logprobs(w, rb, rows);
    rm_scores(w, rb, rows);
    free(rows);
    for (int i = 0; i < rb->n; i++) shape(w, rb->lambda, &rb->r[i]);
}

/* After the stop: the batches actors sent before they stopped are work
 * nobody waits for (the leader stops rewarders only once every actor has
 * stopped, so nothing more is on its way): received and dropped, so that no
 * sender is left blocked. Then the leader hears that this rank is done. */
static void drain_and_report(const PpoLayout *l, MsgBuf *b) {
    while (msg_probe(MPI_ANY_SOURCE, MSG_ROLLOUT, MPI_COMM_WORLD, NULL, NULL))
        msg_recv(b, MPI_ANY_SOURCE, MSG_ROLLOUT, MPI_COMM_WORLD, NULL);
    b->len = b->pos = 0;
    rollout_stopped_pack(b);
    msg_send(b, l->learners[0], MSG_STOPPED, MPI_COMM_WORLD);
}

int rewarder_run(const Config *cfg, const PpoLayout *l) {
    Rewarder w;
    msg_check_all(rewarder_setup(&w, cfg, l), "ppo: ");
    MsgBuf b;
    msg_buf_init(&b);
    for (;;) {
        int src, tag = msg_recv(&b, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &src);
        if (tag == MSG_STOP) {
            if (src != l->learners[0]) err_die("rewarder: stop message from rank %d, not the leading learner", src);
            if (rollout_stop_unpack(&b)) err_die("rewarder: from rank %d: %s", src, err_msg());
            break;
        }
        if (tag != MSG_ROLLOUT) err_die("rewarder: unexpected message tag %d from rank %d", tag, src);
        RolloutBatch rb;
        if (rollout_batch_unpack(&b, 0, &rb)) err_die("rewarder: from rank %d: %s", src, err_msg());
        if (msg_probe(l->learners[0], MSG_STOP, MPI_COMM_WORLD, NULL, NULL)) { /* work nobody waits for */
            rollout_batch_free(&rb);
            continue;
        }
        double t0 = fs_now();
        score(&w, &rb);
        rb.t_score = fs_now() - t0;
        b.len = b.pos = 0;
        rollout_batch_pack(&rb, &b);
        msg_send(&b, ppo_layout_owner(l, rb.chunk), MSG_SCORED, MPI_COMM_WORLD);
        rollout_batch_free(&rb);
    }
    drain_and_report(l, &b);
    msg_buf_free(&b);
    gpt_free(&w.rm);
    gpt_free(&w.ref);
    return 0;
}
