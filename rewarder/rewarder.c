/* rewarder — scores rollouts for PPO; see rewarder.h. */
#include "rewarder/rewarder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/io/ckpt.h"
#include "common/err.h"
#include "common/task/evaluate.h"
#include "common/model/gpt.h"
#include "common/model/score.h"
#include "common/mpi/rollout.h"

typedef struct {
    Gpt rm, ref;
    int eot;
    ScoreRm rm_conv; /* the reward model's end token, normalisation and clip */
    KlEstimator kl;
    const PpoLayout *layout;
} Rewarder;

double rewarder_kl(KlEstimator e, double logp, double logq) {
    if (e == KL_K1) return logp - logq;
    double log_ratio = logq - logp; /* log(q/p) */
    return exp(log_ratio) - 1.0 - log_ratio;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

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
    w->rm_conv = (ScoreRm){.eot = w->eot, .offset = 0, .scale = 1, .clip = config_float(cfg, "reward_clip")};
    if (config_bool(cfg, "normalize_reward") &&
        eval_rm_norm(config_str(cfg, "reward_model"), &w->rm_conv.offset, &w->rm_conv.scale))
        return -1;
    w->kl = strcmp(config_str(cfg, "kl_estimator"), "k3") ? KL_K1 : KL_K3;
    return 0;
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
    }
    free(s);
    free(raw);
}

static void score(Rewarder *w, RolloutBatch *rb) {
    rollout_batch_alloc_scores(rb);
    ScoreRow *rows = rows_of(rb);
    ref_logprobs(w, rb, rows);
    rm_scores(w, rb, rows);
    free(rows);
    for (int i = 0; i < rb->n; i++) {
        Rollout *r = &rb->r[i];
        double sum = 0;
        for (int k = 0; k < r->resp_len; k++) {
            r->kl[k] = (float)rewarder_kl(w->kl, r->logp_behav[k], r->logp_ref[k]);
            r->reward[k] = (float)(-rb->lambda * r->kl[k]);
            sum += r->kl[k];
        }
        r->kl_sum = (float)sum;
        if (r->resp_len) r->reward[r->resp_len - 1] += r->r_theta; /* the score lands on the last token */
    }
}

int rewarder_run(const Config *cfg, const PpoLayout *l) {
    Rewarder w;
    msg_check_all(rewarder_setup(&w, cfg, l), "ppo: ");
    MsgBuf b;
    msg_buf_init(&b);
    for (;;) {
        int src, tag = msg_recv(&b, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &src);
        if (tag == MSG_STOP) break;
        if (tag != MSG_ROLLOUT) err_die("rewarder: unexpected message tag %d from rank %d", tag, src);
        RolloutBatch rb;
        if (rollout_batch_unpack(&b, &rb)) err_die("rewarder: from rank %d: %s", src, err_msg());
        double t0 = now_s();
        score(&w, &rb);
        rb.t_score = now_s() - t0;
        b.len = b.pos = 0;
        rollout_batch_pack(&rb, &b);
        msg_send(&b, l->learners[rb.chunk % l->n_learners], MSG_SCORED, MPI_COMM_WORLD);
        rollout_batch_free(&rb);
    }
    msg_buf_free(&b);
    gpt_free(&w.rm);
    gpt_free(&w.ref);
    return 0;
}
