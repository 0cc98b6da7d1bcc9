/* score (common/model/score.c) and ckpt_load_model_as: packing against
 * hand-derived matrices, the reward-model convention against gpt_score_last
 * on hand-written sequences and hand arithmetic, response log-probs and
 * entropies against a log-softmax computed here in double from one-row
 * forward passes, and every mismatch ckpt_load_model_as refuses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/ckpt.h"
#include "common/model/sampler.h"
#include "common/model/score.h"
#include "common/model/tok.h"
#include "tests/harness.h"

#define EOT 256

/* ---- packing ------------------------------------------------------------ */

TEST(score_pack_rows_hand_matrices) {
    const int pa[] = {1, 2}, ra[] = {3, 4, 5}, pb[] = {7}, tc[] = {9, 8}, pd[] = {6}, rd[] = {5};
    const ScoreRow rows[] = {
        {.prompt = pa, .prompt_len = 2, .resp = ra, .resp_len = 3}, /* prompt + response */
        {.prompt = pb, .prompt_len = 1, .resp = NULL, .resp_len = 0}, /* empty response: nothing to predict */
        {.prompt = NULL, .prompt_len = 0, .resp = tc, .resp_len = 2}, /* plain text: all but the first */
        {.prompt = pd, .prompt_len = 1, .resp = rd, .resp_len = 1}};
    const int want_tok[4][4] = {{1, 2, 3, 4}, {99, 99, 99, 99}, {9, 99, 99, 99}, {6, 99, 99, 99}};
    const int want_tg[4][4] = {{-1, 3, 4, 5}, {-1, -1, -1, -1}, {8, -1, -1, -1}, {5, -1, -1, -1}};
    int tokens[16], targets[16];
    CHECK(score_pack_rows(rows, 4, 99, tokens, targets) == 4);
    CHECK(!memcmp(tokens, want_tok, sizeof tokens));
    CHECK(!memcmp(targets, want_tg, sizeof targets));
    /* targets may be left out; the tokens stay the same */
    int again[16];
    CHECK(score_pack_rows(rows, 4, 99, again, NULL) == 4 && !memcmp(again, want_tok, sizeof again));
    /* rows of one token still give one (padding) column */
    int t1[2], g1[2];
    CHECK(score_pack_rows(rows + 1, 1, 42, t1, g1) == 1 && t1[0] == 42 && g1[0] == -1);
    /* the response starts at position prompt_len - 1 */
    CHECK(score_resp_pos(2, 0) == 1 && score_resp_pos(2, 2) == 3 && score_resp_pos(1, 0) == 0);
}

/* ---- models --------------------------------------------------------------- */

static void random_model(Gpt *m, GptHead head, int n_ctx, uint64_t seed) {
    GptConfig c = {.vocab_size = TOK_BYTE_VOCAB, .n_ctx = n_ctx, .n_layer = 2, .n_head = 2, .n_embd = 16, .head = head};
    CHECK(gpt_init(m, &c) == 0);
    gpt_init_random(m, seed);
    if (head == GPT_HEAD_SCALAR) { /* gpt_init_random zeroes the head: make scores differ */
        Rng r;
        rng_seed(&r, seed + 1);
        for (int i = 0; i < c.n_embd; i++) m->p.score_w[i] = rng_normal(&r);
        m->p.score_b[0] = 0.25f;
    }
}

/* The head's output at the last token of seq[0..len), as its own batch. */
static float last_value(Gpt *m, const int *seq, int len) {
    float v = 0;
    const int *one[1] = {seq};
    CHECK(gpt_score_last(m, one, &len, 1, &v) == 0);
    return v;
}

/* ---- the reward-model convention ------------------------------------------ */

TEST(score_normalise_hand_values) {
    ScoreRm c = {.eot = EOT, .offset = 2, .scale = 4, .clip = 0};
    CHECK_NEAR(score_normalise(&c, 10), 2.0, 1e-15);
    CHECK_NEAR(score_normalise(&c, -10), -3.0, 1e-15);
    c.clip = 1.5;
    CHECK_NEAR(score_normalise(&c, 10), 1.5, 1e-15);
    CHECK_NEAR(score_normalise(&c, -10), -1.5, 1e-15);
    CHECK_NEAR(score_normalise(&c, 6), 1.0, 1e-15); /* inside the clip: unchanged */
    ScoreRm raw = {.eot = EOT, .offset = 0, .scale = 1, .clip = 0};
    CHECK(score_normalise(&raw, 0.123f) == (double)0.123f);
}

TEST(score_reward_end_token_cut_and_normalisation) {
    Gpt rm;
    random_model(&rm, GPT_HEAD_SCALAR, 8, 11);
    const int prompt[] = {65, 66, 67}, r_plain[] = {68, 69}, r_eot[] = {68, EOT}, r_long[] = {1, 2, 3, 4, 5, 6};
    const ScoreRow rows[] = {
        {.prompt = prompt, .prompt_len = 3, .resp = r_plain, .resp_len = 2},
        {.prompt = prompt, .prompt_len = 3, .resp = r_eot, .resp_len = 2},
        {.prompt = prompt, .prompt_len = 3, .resp = NULL, .resp_len = 0},
        {.prompt = prompt, .prompt_len = 3, .resp = r_long, .resp_len = 6}};
    /* the sequences the RM was trained on: + end token unless there, cut to the context (8) */
    const int s0[] = {65, 66, 67, 68, 69, EOT}, s1[] = {65, 66, 67, 68, EOT}, s2[] = {65, 66, 67, EOT};
    const int s3[] = {65, 66, 67, 1, 2, 3, 4, 5};
    float want[4] = {last_value(&rm, s0, 6), last_value(&rm, s1, 5), last_value(&rm, s2, 4), last_value(&rm, s3, 8)};
    CHECK(want[0] != last_value(&rm, s0, 5)); /* the end token matters for this model */
    ScoreRm c = {.eot = EOT, .offset = 0.5, .scale = 2, .clip = 0};
    float raw[4];
    double sc[4];
    CHECKF(score_reward(&rm, &c, rows, 4, raw, sc) == 0, "%s", err_msg());
    for (int i = 0; i < 4; i++) {
        CHECKF(fabsf(raw[i] - want[i]) < 1e-5f, "row %d: raw %.7g, want %.7g", i, raw[i], want[i]);
        CHECK_NEAR(sc[i], (raw[i] - 0.5) / 2, 1e-12);
    }
    c.clip = 0.01;
    CHECK(score_reward(&rm, &c, rows, 4, NULL, sc) == 0);
    for (int i = 0; i < 4; i++) CHECK(fabs(sc[i]) <= 0.01 + 1e-15);
    /* a prompt that fills the context leaves no room for a response */
    const int big[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ScoreRow full = {.prompt = big, .prompt_len = 8, .resp = r_plain, .resp_len = 1};
    CHECK(score_reward(&rm, &c, &full, 1, raw, sc) == -1);
    CHECKF(strstr(err_msg(), "prompt of 8 tokens does not fit the context (8)") != NULL, "%s", err_msg());
    gpt_free(&rm);
}

/* ---- response log-probs ------------------------------------------------------ */

/* log p(token) and the entropy at position pos of a one-row forward pass
 * over seq[0..len), computed here in double. */
static void direct_logp(Gpt *m, const int *seq, int len, int pos, int token, double *logp, double *ent) {
    CHECK(gpt_forward(m, seq, 1, len) == 0);
    const float *z = m->logits + (size_t)pos * m->cfg.vocab_size;
    double mx = z[0], sum = 0, h = 0;
    for (int v = 1; v < m->cfg.vocab_size; v++) mx = z[v] > mx ? z[v] : mx;
    for (int v = 0; v < m->cfg.vocab_size; v++) sum += exp(z[v] - mx);
    double lse = mx + log(sum);
    for (int v = 0; v < m->cfg.vocab_size; v++) h -= exp(z[v] - lse) * (z[v] - lse);
    *logp = z[token] - lse;
    *ent = h;
}

TEST(score_response_logp_matches_direct_log_softmax) {
    Gpt lm;
    random_model(&lm, GPT_HEAD_LM, 16, 5);
    const int p0[] = {72, 105, 32}, r0[] = {116, 104, 101, 114, 101}, p1[] = {88}, r1[] = {89, EOT};
    const int p2[] = {1, 2, 3, 4, 5, 6}, r2[] = {7};
    const ScoreRow rows[] = {{.prompt = p0, .prompt_len = 3, .resp = r0, .resp_len = 5},
                             {.prompt = p1, .prompt_len = 1, .resp = r1, .resp_len = 2},
                             {.prompt = p2, .prompt_len = 6, .resp = r2, .resp_len = 1},
                             {.prompt = p1, .prompt_len = 1, .resp = NULL, .resp_len = 0}};
    float lp0[5], lp1[2], lp2[1];
    float *out[] = {lp0, lp1, lp2, NULL};
    double sums[4];
    ScoreBatch sb = {.want_entropy = 1};
    CHECKF(score_response_logp(&lm, &sb, rows, 4, EOT, out, sums) == 0, "%s", err_msg());
    CHECK(sb.n == 4 && sb.T == 7);
    double worst = 0, worst_ent = 0;
    for (int i = 0; i < 4; i++) {
        const ScoreRow *r = &rows[i];
        int seq[16], len = r->prompt_len + r->resp_len;
        memcpy(seq, r->prompt, r->prompt_len * sizeof(int));
        if (r->resp_len) memcpy(seq + r->prompt_len, r->resp, r->resp_len * sizeof(int));
        double sum = 0;
        for (int k = 0; k < r->resp_len; k++) {
            int pos = r->prompt_len - 1 + k;
            double lp, h;
            direct_logp(&lm, seq, len - 1, pos, r->resp[k], &lp, &h);
            worst = fmax(worst, fabs(out[i][k] - lp));
            worst_ent = fmax(worst_ent, fabs(sb.entropy[i * sb.T + pos] - h));
            sum += lp;
        }
        CHECKF(fabs(sums[i] - sum) < 1e-4, "row %d: sum %.7g, direct %.7g", i, sums[i], sum);
    }
    CHECKF(worst < 1e-4, "log-probs differ from the direct log-softmax by %.3g", worst);
    CHECKF(worst_ent < 1e-4, "entropies differ from the direct ones by %.3g", worst_ent);
    CHECK(sums[3] == 0); /* an empty response */
    /* the pass stays in the batch for a backward: targets as packed */
    CHECK(sb.targets[1] == -1 && sb.targets[2] == r0[0] && sb.targets[6] == r0[4]);
    CHECK(sb.targets[7] == r1[0] && sb.targets[8] == EOT && sb.targets[9] == -1);
    /* a row longer than the context is an error, not a silent cut */
    int long_prompt[20] = {0};
    ScoreRow too_long = {.prompt = long_prompt, .prompt_len = 20, .resp = r2, .resp_len = 1};
    CHECK(score_response_logp(&lm, &sb, &too_long, 1, EOT, NULL, sums) == -1);
    score_batch_free(&sb);
    CHECK(sb.tokens == NULL && sb.cap == 0);
    gpt_free(&lm);
}

/* With lm.temperature = 0.7 every log-prob and entropy is that of
 * softmax(logits / 0.7), the logits taken from a forward at temperature 1
 * (the reference), and the sampler's own log-probs of what it drew at
 * temperature 0.7 are the same numbers (actor and learner agree: the
 * importance ratio of an on-policy sample is 1). */
TEST(score_response_logp_at_a_temperature_is_the_sampled_distribution) {
    Gpt lm;
    random_model(&lm, GPT_HEAD_LM, 16, 5);
    for (size_t i = 0; i < lm.n_params; i++) lm.params[i] *= 4.0f; /* peaked enough for 0.7 to matter */
    const int prompt[] = {72, 105, 32};
    int seq[16];
    memcpy(seq, prompt, sizeof prompt);
    /* sample 6 tokens at 0.7 with the sampler (temperature on the plain logits) */
    SamplerConfig sc = {.greedy = 0, .temperature = 0.7f, .top_k = 0, .top_p = 1.0f};
    Rng rng;
    rng_seed(&rng, 9);
    float lp_sample[6], lp_model[6];
    Sampler smp;
    sampler_init(&smp, lm.cfg.vocab_size);
    for (int k = 0; k < 6; k++) {
        CHECK(gpt_forward(&lm, seq, 1, 3 + k) == 0);
        seq[3 + k] = sampler_sample(&smp, &sc, lm.logits + (size_t)(2 + k) * lm.cfg.vocab_size, &rng, &lp_sample[k],
                                    &lp_model[k]);
        CHECK(seq[3 + k] >= 0);
    }
    sampler_free(&smp);
    /* the reference: log-softmax of logits / 0.7 from the plain forward */
    double ref[6], ref_h[6], plain_gap = 0;
    CHECK(gpt_forward(&lm, seq, 1, 8) == 0);
    for (int k = 0; k < 6; k++) {
        const float *z = lm.logits + (size_t)(2 + k) * lm.cfg.vocab_size;
        double mx = -INFINITY, sum = 0, h = 0;
        for (int v = 0; v < lm.cfg.vocab_size; v++) mx = fmax(mx, z[v] / 0.7);
        for (int v = 0; v < lm.cfg.vocab_size; v++) sum += exp(z[v] / 0.7 - mx);
        double lse = mx + log(sum);
        for (int v = 0; v < lm.cfg.vocab_size; v++) h -= exp(z[v] / 0.7 - lse) * (z[v] / 0.7 - lse);
        ref[k] = z[seq[3 + k]] / 0.7 - lse;
        ref_h[k] = h;
        plain_gap = fmax(plain_gap, fabs(lp_model[k] - ref[k]));
    }
    lm.temperature = 0.7f;
    ScoreRow row = {.prompt = prompt, .prompt_len = 3, .resp = seq + 3, .resp_len = 6};
    float lp[6];
    float *out[] = {lp};
    ScoreBatch sb = {.want_entropy = 1};
    CHECKF(score_response_logp(&lm, &sb, &row, 1, EOT, out, NULL) == 0, "%s", err_msg());
    double worst = 0, worst_s = 0, worst_h = 0;
    for (int k = 0; k < 6; k++) {
        worst = fmax(worst, fabs(lp[k] - ref[k]));
        worst_s = fmax(worst_s, fabs(lp[k] - lp_sample[k]));
        worst_h = fmax(worst_h, fabs(sb.entropy[2 + k] - ref_h[k]));
    }
    CHECKF(worst < 1e-5, "tempered log-probs differ from log-softmax(logits / T) by %.3g", worst);
    CHECKF(worst_s < 1e-5, "tempered log-probs differ from the sampler's by %.3g", worst_s);
    CHECKF(worst_h < 1e-4, "tempered entropies differ by %.3g", worst_h);
    CHECKF(plain_gap > 1e-2, "the plain model's log-probs should differ at T = 0.7 (gap %.3g)", plain_gap);
    score_batch_free(&sb);
    gpt_free(&lm);
}

/* ---- ckpt_load_model_as -------------------------------------------------- */

static void save(const char *path, int vocab, int n_ctx, GptHead head, const Tok *tok) {
    GptConfig c = {.vocab_size = vocab, .n_ctx = n_ctx, .n_layer = 1, .n_head = 2, .n_embd = 8, .head = head};
    Gpt m;
    CHECK(gpt_init(&m, &c) == 0);
    gpt_init_random(&m, 3);
    CHECKF(ckpt_save_model(path, &m, tok, head == GPT_HEAD_LM ? "policy" : "reward") == 0, "%s", err_msg());
    gpt_free(&m);
}

/* Loading fails with a message starting with the path and containing frag,
 * and leaves nothing allocated. */
static void check_refused(const char *path, const CkptWant *w, const char *frag) {
    Gpt m;
    Tok *tok = (Tok *)&m; /* must come back NULL */
    CHECK(ckpt_load_model_as(path, &m, &tok, w) == -1);
    CHECK(m.params == NULL && tok == NULL);
    CHECKF(strstr(err_msg(), path) == err_msg() && strstr(err_msg(), frag), "message \"%s\" should name %s and say \"%s\"",
           err_msg(), path, frag);
}

TEST(ckpt_load_model_as_checks_head_vocab_context_tokenizer) {
    Tok *byte = tok_byte_new();
    char vpath[1024], mpath[1024];
    snprintf(vpath, sizeof vpath, "%s/gpt2-bpe/vocab.json", harness_fixtures());
    snprintf(mpath, sizeof mpath, "%s/gpt2-bpe/merges.txt", harness_fixtures());
    Tok *bpe = tok_gpt2_load(vpath, mpath);
    CHECKF(bpe != NULL, "%s", err_msg());
    if (!bpe) return;
    const char *lm = harness_tmp_path("as_lm.h5"), *rm = harness_tmp_path("as_rm.h5");
    const char *wide = harness_tmp_path("as_bpe.h5");
    const char *bare = harness_tmp_path("as_bare.h5");
    save(lm, TOK_BYTE_VOCAB, 16, GPT_HEAD_LM, byte);
    save(rm, TOK_BYTE_VOCAB, 8, GPT_HEAD_SCALAR, byte);
    save(wide, tok_vocab_size(bpe), 16, GPT_HEAD_LM, bpe);
    save(bare, TOK_BYTE_VOCAB, 16, GPT_HEAD_LM, NULL); /* no tokenizer stored */

    CkptWant ref = {.head = GPT_HEAD_LM, .what = "the reference", .vocab = TOK_BYTE_VOCAB, .min_ctx = 16,
                    .tok = byte, .like = "the policy"};
    Gpt m;
    Tok *tok = NULL;
    CHECKF(ckpt_load_model_as(lm, &m, &tok, &ref) == 0, "%s", err_msg());
    CHECK(m.params && m.cfg.n_ctx == 16 && tok && tok_kind(tok) == TOK_BYTE);
    gpt_free(&m);
    tok_free(tok);

    check_refused(rm, &ref, "is a reward checkpoint (scalar head); the reference must be a language model");
    CkptWant scalar = {.head = GPT_HEAD_SCALAR, .what = "score --model"};
    check_refused(lm, &scalar, "is a policy checkpoint (language-model head); score --model must be a scalar-head");
    check_refused(wide, &ref, "the reference must be of the same vocabulary as the policy (257 tokens); it has");
    CkptWant short_ctx = ref;
    short_ctx.min_ctx = 32;
    check_refused(lm, &short_ctx, "the reference must have at least the context of the policy (32 tokens); it has 16");
    CkptWant other_tok = {.head = GPT_HEAD_LM, .what = "the reference", .tok = byte, .like = "the policy"};
    check_refused(wide, &other_tok, "the reference must use the same tokenizer as the policy");
    /* no tokenizer stored: nothing to compare (tok not asked for) */
    CHECKF(ckpt_load_model_as(bare, &m, NULL, &ref) == 0, "%s", err_msg());
    gpt_free(&m);
    /* but asking for its tokenizer fails, as ckpt_load_model does */
    check_refused(bare, &ref, "no tokenizer stored");
    check_refused(harness_tmp_path("as_missing.h5"), &ref, "as_missing.h5");
    tok_free(byte);
    tok_free(bpe);
}
