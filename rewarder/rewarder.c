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
#include "common/task/verifier.h"

_Static_assert(ROLLOUT_VCOMPS == VERIFIER_NCOMP, "a rollout carries every verifier component");

/* Where the KL to the reference goes (kl_in). */
typedef enum { KL_IN_REWARD, KL_IN_LOSS, KL_IN_NONE } KlIn;

typedef struct {
    Gpt rm, ref;                 /* each loaded only if used */
    int use_rm, use_ref;
    Verifier *verifier;          /* NULL: reward = rm */
    double rm_weight, verifier_weight;
    KlIn kl_in;
    int max_new, overlong_buffer;
    double overlong_penalty;
    Tok *tok;                    /* decodes responses for the verifier */
    PpoPrompts prompts;          /* their text and answers */
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

double rewarder_overlong(int n, int max_new, int buffer, double penalty) {
    int start = max_new - buffer; /* the first length that is penalised is start + 1 */
    if (buffer <= 0 || n <= start) return 0.0;
    return -penalty * (double)(n - start) / buffer;
}

double rewarder_combine(const RewarderScore *s, double rm_weight, double verifier_weight) {
    double score = s->overlong;
    if (s->has_rm) score += rm_weight * s->r_theta;
    if (s->has_verifier) score += verifier_weight * s->r_verifier;
    return score;
}

/* ---- the role ------------------------------------------------------------- */

/* The reward model (reward = rm or rm+verifier) and the reference (unless
 * kl_in = none), checked against the policy's vocabulary and context. */
static int load_models(Rewarder *w, const Config *cfg, const GptConfig *pc) {
    const char *policy = config_str(cfg, "policy"), *ref = config_str(cfg, "ref");
    CkptWant rm_want = {.head = GPT_HEAD_SCALAR, .what = "the reward model", .vocab = pc->vocab_size,
                        .min_ctx = pc->n_ctx, .tok = w->tok, .like = "the policy"};
    CkptWant ref_want = rm_want;
    ref_want.head = GPT_HEAD_LM;
    ref_want.what = "the reference";
    if (w->use_rm && ckpt_load_model_as(config_str(cfg, "reward_model"), &w->rm, NULL, &rm_want)) return -1;
    if (w->use_ref && ckpt_load_model_as(*ref ? ref : policy, &w->ref, NULL, &ref_want)) return -1;
    w->ref.temperature = (float)config_float(cfg, "temperature"); /* KL of the distribution the actor sampled */
    w->rm_conv = (ScoreRm){.eot = w->eot, .offset = 0, .scale = 1, .clip = config_float(cfg, "reward_clip")};
    if (w->use_rm && config_bool(cfg, "normalize_reward") &&
        ckpt_get_rm_norm(config_str(cfg, "reward_model"), &w->rm_conv.offset, &w->rm_conv.scale))
        return -1;
    return 0;
}

/* The verifier of reward = verifier or rm+verifier, started on this rank. */
static int open_verifier(Rewarder *w, const Config *cfg) {
    VerifierOptions o;
    if (verifier_options_from_config(cfg, &o)) return -1;
    return (w->verifier = verifier_new(&o)) ? 0 : -1;
}

static int rewarder_setup(Rewarder *w, const Config *cfg, const PpoLayout *l) {
    memset(w, 0, sizeof *w);
    w->layout = l;
    const char *reward = config_str(cfg, "reward"), *kl_in = config_str(cfg, "kl_in");
    w->use_rm = strcmp(reward, "verifier") != 0;
    w->kl_in = !strcmp(kl_in, "reward") ? KL_IN_REWARD : !strcmp(kl_in, "loss") ? KL_IN_LOSS : KL_IN_NONE;
    w->use_ref = w->kl_in != KL_IN_NONE;
    w->rm_weight = config_float(cfg, "rm_weight");
    w->verifier_weight = config_float(cfg, "verifier_weight");
    w->max_new = config_int(cfg, "max_new");
    w->overlong_buffer = config_int(cfg, "overlong_buffer");
    w->overlong_penalty = config_float(cfg, "overlong_penalty");
    Ckpt *k = ckpt_open(config_str(cfg, "policy"));
    GptConfig pc;
    if (!k) return -1;
    w->tok = ckpt_get_config(k, &pc) ? NULL : ckpt_get_tok(k);
    ckpt_close(k);
    if (!w->tok) return -1;
    w->eot = tok_eot(w->tok);
    if (load_models(w, cfg, &pc) || kl_parse(config_str(cfg, "kl_estimator"), &w->kl)) return -1;
    if (strcmp(reward, "rm") && (ppo_prompts_load(&w->prompts, config_str(cfg, "prompts"), w->tok, pc.n_ctx) ||
                                 open_verifier(w, cfg)))
        return -1;
    return 0;
}

static void rewarder_free(Rewarder *w) {
    verifier_free(w->verifier);
    ppo_prompts_free(&w->prompts);
    tok_free(w->tok);
    gpt_free(&w->rm);
    gpt_free(&w->ref);
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

/* Reward-model scores of prompt + response, raw and as configured (NaN
 * without a reward model). */
static void rm_scores(Rewarder *w, RolloutBatch *rb, const ScoreRow *rows) {
    int n = rb->n;
    if (!w->use_rm) {
        for (int i = 0; i < n; i++) rb->r[i].r_raw = rb->r[i].r_theta = NAN;
        return;
    }
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

/* The verifier's scores of the batch (NaN without a verifier): the prompt's
 * text and answer, the response decoded without its end token. A verifier
 * that fails (an external program that exits, hangs or prints garbage)
 * ends the job, naming it. */
static void verifier_scores(Rewarder *w, RolloutBatch *rb) {
    int n = rb->n;
    for (int i = 0; i < n; i++) {
        rb->r[i].r_verifier = NAN;
        for (int c = 0; c < ROLLOUT_VCOMPS; c++) rb->r[i].v_comp[c] = NAN;
    }
    if (!w->verifier || n == 0) return;
    VerifierSample *vs = err_calloc((size_t)n, sizeof *vs);
    VerifierResult *res = err_calloc((size_t)n, sizeof *res);
    char **text = err_calloc((size_t)n, sizeof *text);
    for (int i = 0; i < n; i++) {
        const Rollout *r = &rb->r[i];
        int body = r->resp_len - (r->resp_len && r->resp[r->resp_len - 1] == w->eot);
        size_t len;
        text[i] = tok_decode(w->tok, r->resp, body, &len);
        if (!text[i]) err_die("rewarder: decoding sample %d of iteration %d: %s", i, rb->iteration, err_msg());
        vs[i] = (VerifierSample){.prompt = w->prompts.text[r->prompt_index],
                                 .response = text[i],
                                 .answer = w->prompts.answer[r->prompt_index]};
    }
    if (verifier_score(w->verifier, n, vs, res)) err_die("rewarder (rank %d): %s", w->layout->rank, err_msg());
    unsigned has = verifier_components(w->verifier); /* the others stay NaN: not measured, not 0 */
    for (int i = 0; i < n; i++) {
        rb->r[i].r_verifier = (float)res[i].score;
        for (int c = 0; c < ROLLOUT_VCOMPS; c++)
            if (has & (1u << c)) rb->r[i].v_comp[c] = (float)res[i].comp[c];
        free(text[i]);
    }
    free(text);
    free(vs);
    free(res);
}

/* The sequence score of one rollout: weighted components and the overlong
 * penalty. */
static void combine(const Rewarder *w, Rollout *r) {
    RewarderScore s = {.has_rm = w->use_rm,
                       .r_theta = r->r_theta,
                       .has_verifier = w->verifier != NULL,
                       .r_verifier = r->r_verifier,
                       .overlong = rewarder_overlong(r->resp_len, w->max_new, w->overlong_buffer,
                                                     w->overlong_penalty)};
    r->overlong = (float)s.overlong;
    r->score = (float)rewarder_combine(&s, w->rm_weight, w->verifier_weight);
}

/* Per-token KL to the reference and shaped rewards of one scored rollout:
 * -lambda * KL per token with kl_in = reward, the score alone otherwise
 * (kl_in = loss: the learner adds the KL to its loss; the KL is still
 * computed for the logs and the KL controller). r_theta is already
 * normalised and clipped (rm_scores), so no second clip. An empty response
 * has no token for its score: no KL, no reward. */
static void shape(const Rewarder *w, double lambda, Rollout *r) {
    r->kl_sum = 0;
    if (r->resp_len == 0) return;
    if (w->use_ref && kl_tokens(w->kl, (size_t)r->resp_len, r->logp_behav, r->logp_ref, r->kl))
        err_die("rewarder: %s", err_msg());
    const float *kl = w->kl_in == KL_IN_REWARD ? r->kl : NULL;
    if (rewarder_shape_rewards(r->resp_len, kl, lambda, r->score, 0.0, r->reward))
        err_die("rewarder: %s", err_msg());
    double sum = 0;
    for (int k = 0; k < r->resp_len; k++) sum += r->kl[k];
    r->kl_sum = (float)sum;
}

static void score(Rewarder *w, RolloutBatch *rb) {
    rollout_batch_alloc_scores(rb); /* zeroed: logp_ref and kl stay 0 without a reference */
    ScoreRow *rows = rows_of(rb);
    if (w->use_ref) ref_logprobs(w, rb, rows);
    rm_scores(w, rb, rows);
    free(rows);
    verifier_scores(w, rb);
    for (int i = 0; i < rb->n; i++) {
        combine(w, &rb->r[i]);
        shape(w, rb->lambda, &rb->r[i]);
    }
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

/* What the rewarders score with, said once (by the first). */
static void report_setup(const Rewarder *w) {
    if (w->layout->index != 0) return;
    fprintf(stderr, "ppo: rewarders score with %s%s%s%s; %s\n", w->use_rm ? "the reward model" : "",
            w->use_rm && w->verifier ? " and " : "", w->verifier ? "the verifier " : "",
            w->verifier ? verifier_name(w->verifier) : "",
            w->use_ref ? (w->kl_in == KL_IN_REWARD ? "KL to the reference in the reward"
                                                  : "KL to the reference for the learner's loss")
                       : "no reference model (kl_in = none)");
}

int rewarder_run(const Config *cfg, const PpoLayout *l) {
    Rewarder w;
    msg_check_all(rewarder_setup(&w, cfg, l), "ppo: ");
    report_setup(&w);
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
    rewarder_free(&w);
    return 0;
}
