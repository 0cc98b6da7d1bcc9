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
#include "common/mpi/rollout.h"
#include "common/fsutil.h"

typedef struct {
    Gpt rm, ref;
    int eot;
    double offset, scale, clip;
    KlEstimator kl;
    const PpoLayout *layout;
} Rewarder;

double rewarder_kl(KlEstimator e, double logp, double logq) {
    if (e == KL_K1) return logp - logq;
    double log_ratio = logq - logp; /* log(q/p) */
    return exp(log_ratio) - 1.0 - log_ratio;
}

static int load(Gpt *m, const char *path, GptHead head, const char *what, int vocab, int n_ctx) {
    char kind[32];
    if (ckpt_load_model(path, m, NULL, kind, sizeof kind)) return -1;
    if (m->cfg.head != head)
        return err_set("%s: is a %s checkpoint; the %s must be a %s", path, kind, what,
                head == GPT_HEAD_LM ? "language model" : "reward model (scalar head)");
    if (m->cfg.vocab_size != vocab)
        return err_set("%s: the %s's vocabulary (%d) differs from the policy's (%d)", path, what, m->cfg.vocab_size, vocab);
    if (m->cfg.n_ctx < n_ctx)
        return err_set("%s: the %s's context (%d) is shorter than the policy's (%d)", path, what, m->cfg.n_ctx, n_ctx);
    return 0;
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
    tok_free(tok);
    if (load(&w->rm, config_str(cfg, "reward_model"), GPT_HEAD_SCALAR, "reward model", pc.vocab_size, pc.n_ctx) ||
        load(&w->ref, *ref ? ref : policy, GPT_HEAD_LM, "reference", pc.vocab_size, pc.n_ctx))
        return -1;
    w->offset = 0, w->scale = 1;
    if (config_bool(cfg, "normalize_reward") && eval_rm_norm(config_str(cfg, "reward_model"), &w->offset, &w->scale))
        return -1;
    w->clip = config_float(cfg, "reward_clip");
    w->kl = strcmp(config_str(cfg, "kl_estimator"), "k3") ? KL_K1 : KL_K3;
    return 0;
}

/* Reference log-prob of every response token, for all samples at once. */
static void ref_logprobs(Rewarder *w, RolloutBatch *rb) {
    int n = rb->n, T = 1;
    for (int i = 0; i < n; i++) T = rb->r[i].prompt_len + rb->r[i].resp_len - 1 > T ? rb->r[i].prompt_len + rb->r[i].resp_len - 1 : T;
    int *in = err_calloc((size_t)n * T, sizeof(int)), *tg = err_malloc((size_t)n * T * sizeof(int));
    float *logp = err_malloc((size_t)n * T * sizeof(float));
    for (int i = 0; i < n; i++) {
        const Rollout *r = &rb->r[i];
        for (int t = 0; t < T; t++) {
            int pos = t + 1; /* token predicted at t */
            int len = r->prompt_len + r->resp_len;
            in[i * T + t] = t < len - 1 ? (t < r->prompt_len ? r->prompt[t] : r->resp[t - r->prompt_len]) : w->eot;
            tg[i * T + t] = pos >= r->prompt_len && pos < len ? r->resp[pos - r->prompt_len] : -1;
        }
    }
    if (gpt_forward(&w->ref, in, n, T)) err_die("rewarder: %s", err_msg());
    gpt_token_logprobs(&w->ref, tg, logp, NULL);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < rb->r[i].resp_len; k++) rb->r[i].logp_ref[k] = logp[i * T + rb->r[i].prompt_len - 1 + k];
    free(in), free(tg), free(logp);
}

/* Reward-model scores of prompt + response (+ end token, as in RM training). */
static void rm_scores(Rewarder *w, RolloutBatch *rb) {
    int n = rb->n, n_ctx = w->rm.cfg.n_ctx;
    int *seq[n], len[n];
    float raw[n];
    for (int i = 0; i < n; i++) {
        const Rollout *r = &rb->r[i];
        seq[i] = err_malloc((size_t)(r->prompt_len + r->resp_len + 1) * sizeof(int));
        memcpy(seq[i], r->prompt, r->prompt_len * sizeof(int));
        memcpy(seq[i] + r->prompt_len, r->resp, r->resp_len * sizeof(int));
        len[i] = r->prompt_len + r->resp_len;
        if ((r->resp_len == 0 || r->resp[r->resp_len - 1] != w->eot) && len[i] < n_ctx) seq[i][len[i]++] = w->eot;
    }
    if (gpt_score_last(&w->rm, (const int *const *)seq, len, n, raw)) err_die("rewarder: %s", err_msg());
    for (int i = 0; i < n; i++) {
        double s = (raw[i] - w->offset) / w->scale;
        if (w->clip > 0) s = s > w->clip ? w->clip : s < -w->clip ? -w->clip : s;
        rb->r[i].r_raw = raw[i];
        rb->r[i].r_theta = (float)s;
        free(seq[i]);
    }
}

static void score(Rewarder *w, RolloutBatch *rb) {
    rollout_batch_alloc_scores(rb);
    ref_logprobs(w, rb);
    rm_scores(w, rb);
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
        double t0 = fs_now();
        score(&w, &rb);
        rb.t_score = fs_now() - t0;
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
