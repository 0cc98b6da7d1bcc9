/* Tests for common/model/gpt.c: parameter layout, gradients of the whole model
 * against central finite differences (LM loss with mask, log-prob + entropy
 * objective, scalar head, dropout with fixed masks), and the KV-cache
 * forward against the full forward. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/model/gpt.h"
#include "tests/harness.h"

enum { TB = 2, TT = 5 };
static const GptConfig tiny_lm = {
    .vocab_size = 13, .n_ctx = 8, .n_layer = 2, .n_head = 2, .n_embd = 8, .head = GPT_HEAD_LM};

/* Test-local generator, independent of common/rng.c. */
static uint64_t lcg_state = 12345;
static float lcg_uniform(void) {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg_state >> 40) / 16777216.0);
}
static float lcg_sym(float scale) { return scale * (2.0f * lcg_uniform() - 1.0f); }

static void fill_random(Gpt *m, float scale) {
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = lcg_sym(scale);
    for (int i = 0; i < m->n_tensors; i++) /* keep LayerNorm gains near 1 */
        if (strstr(m->tensors[i].name, "ln_") && strstr(m->tensors[i].name, ".weight"))
            for (size_t j = 0; j < m->tensors[i].size; j++) m->params[m->tensors[i].offset + j] += 1.0f;
}

typedef struct {
    int tokens[TB * TT], targets[TB * TT];
    float mask[TB * TT], c_logp[TB * TT], c_ent[TB * TT], c_val[TB * TT];
    int use_entropy;
    uint64_t dropout_seed;
} Batch;

static void make_batch(Batch *b, int V) {
    for (int i = 0; i < TB * TT; i++) {
        b->tokens[i] = (int)(lcg_uniform() * V) % V;
        b->targets[i] = (i % 4 == 3) ? -1 : (int)(lcg_uniform() * V) % V;
        b->mask[i] = (i % 5 == 1) ? 0.0f : 0.5f + lcg_uniform();
        b->c_logp[i] = lcg_sym(1.0f);
        b->c_ent[i] = lcg_sym(1.0f);
        b->c_val[i] = lcg_sym(1.0f);
    }
}

/* The objective: CE loss (with mask), or sum c_logp*logp + c_ent*entropy,
 * or sum c_val*value for the scalar head. Same dropout masks every call. */
static double objective(Gpt *m, const Batch *b, float *dlogp, float *dent) {
    rng_seed(&m->dropout_rng, b->dropout_seed);
    if (gpt_forward(m, b->tokens, TB, TT)) return NAN;
    if (m->cfg.head == GPT_HEAD_SCALAR) {
        double s = 0;
        for (int i = 0; i < TB * TT; i++) s += b->c_val[i] * m->values[i];
        return s;
    }
    if (!b->use_entropy) return gpt_ce_loss(m, b->targets, b->mask, dlogp);
    float logp[TB * TT], ent[TB * TT];
    gpt_token_logprobs(m, b->targets, logp, ent);
    double s = 0;
    for (int i = 0; i < TB * TT; i++) {
        s += b->c_logp[i] * logp[i] + b->c_ent[i] * ent[i];
        if (dlogp) dlogp[i] = b->c_logp[i], dent[i] = b->c_ent[i];
    }
    return s;
}

/* Analytic gradient vs central differences on a few entries of every tensor. */
static void check_gradients(Gpt *m, const Batch *b, const char *label) {
    float dlogp[TB * TT], dent[TB * TT];
    gpt_zero_grad(m);
    objective(m, b, dlogp, dent);
    if (m->cfg.head == GPT_HEAD_SCALAR) gpt_backward_scalar(m, b->c_val);
    else gpt_backward_lm(m, b->targets, dlogp, b->use_entropy ? dent : NULL);
    int bad = 0;
    double worst = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const GptTensor *x = &m->tensors[t];
        for (int k = 0; k < 4; k++) {
            size_t i = x->offset + (size_t)(lcg_uniform() * x->size) % x->size;
            float keep = m->params[i], eps = 1e-2f;
            m->params[i] = keep + eps;
            double up = objective(m, b, NULL, NULL);
            m->params[i] = keep - eps;
            double down = objective(m, b, NULL, NULL);
            m->params[i] = keep;
            double num = (up - down) / (2 * eps), ana = m->grads[i];
            double err = fabs(num - ana) / (1e-2 + fabs(num));
            if (err > worst) worst = err;
            if (err > 2e-2 && bad++ < 5)
                CHECKF(0, "%s: %s[%zu] analytic %.6g numeric %.6g", label, x->name,
                       i - x->offset, ana, num);
        }
    }
    printf("    %s: worst relative error %.2e over %d tensors\n", label, worst, m->n_tensors);
}

TEST(gpt_param_count_matches_gpt2_small) {
    GptConfig c = {.vocab_size = 50257, .n_ctx = 1024, .n_layer = 12, .n_head = 12, .n_embd = 768, .head = GPT_HEAD_LM};
    CHECK(gpt_count_params(&c) == 124439808u); /* HF gpt2: 124,439,808 */
}

TEST(gpt_config_rejects_bad_fields) {
    GptConfig c = {.vocab_size = 257, .n_ctx = 16, .n_layer = 2, .n_head = 3, .n_embd = 8, .head = GPT_HEAD_LM};
    Gpt m;
    CHECK(gpt_init(&m, &c) == -1);
    CHECK(strstr(err_msg(), "n_embd") != NULL);
}

/* Sizes from settings (the rule at err_mul_size): a shape whose ints or
 * parameter count would overflow is refused naming the keys, and an
 * allocation that fails says how much it needed; nothing is left
 * allocated. Once n_embd = 2e9 printed "out of memory allocating
 * 10100654644230196224 x 4 bytes". */
TEST(gpt_sizes_that_overflow_are_named) {
    GptConfig c = {.vocab_size = 257, .n_ctx = 10, .n_layer = 2, .n_head = 2, .n_embd = 2000000000, .head = GPT_HEAD_LM};
    Gpt m;
    CHECK(gpt_init(&m, &c) == -1);
    CHECK_ERR("model: ", "n_embd=2000000000 is too large");
    c = (GptConfig){.vocab_size = 257, .n_ctx = 10, .n_layer = 2000000000, .n_head = 1, .n_embd = 8, .head = GPT_HEAD_LM};
    CHECK(gpt_config_validate(&c) == -1);
    CHECK_ERR("model: ", "n_layer=2000000000 is too large");
    c = (GptConfig){.vocab_size = 257, .n_ctx = 10, .n_layer = 20000000, .n_head = 2, .n_embd = 500000000,
                    .head = GPT_HEAD_SCALAR};
    CHECK(gpt_config_validate(&c) == -1);
    CHECK_ERR("model: ", "n_layer=20000000 n_embd=500000000", "more parameters than can be addressed");
    /* fits size_t, not memory: calloc fails at once (no page is touched);
     * ASan aborts on such a calloc instead (allocation-size-too-big), so
     * the sanitizer build checks only that it is accepted as a shape */
    c = (GptConfig){.vocab_size = 257, .n_ctx = 64, .n_layer = 1000, .n_head = 4, .n_embd = 100000, .head = GPT_HEAD_LM};
    CHECKF(gpt_config_validate(&c) == 0, "%s", err_msg());
#ifndef __SANITIZE_ADDRESS__
    CHECK(gpt_init(&m, &c) == -1 && m.params == NULL && m.tensors == NULL);
    CHECK_ERR("model: ", "n_layer=1000 n_embd=100000 (n_ctx 64, vocab_size 257)", "120001332300000 parameters need 480.0 TB",
              "out of memory");
#endif
    c = (GptConfig){.vocab_size = 50257, .n_ctx = 1024, .n_layer = 12, .n_head = 12, .n_embd = 768, .head = GPT_HEAD_LM};
    CHECKF(gpt_config_validate(&c) == 0, "%s", err_msg()); /* GPT-2 small is fine */
}

TEST(gpt_forward_rejects_bad_tokens_and_length) {
    Gpt m;
    gpt_init(&m, &tiny_lm);
    int toks[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(gpt_forward(&m, toks, 1, 9) == -1); /* longer than n_ctx 8 */
    toks[2] = 13;
    CHECK(gpt_forward(&m, toks, 1, 4) == -1 && strstr(err_msg(), "13"));
    gpt_free(&m);
}

TEST(gpt_grad_ce_loss_matches_finite_differences) {
    Gpt m;
    Batch b = {0};
    gpt_init(&m, &tiny_lm);
    fill_random(&m, 0.3f);
    make_batch(&b, tiny_lm.vocab_size);
    check_gradients(&m, &b, "ce loss");
    gpt_free(&m);
}

TEST(gpt_grad_logprob_entropy_matches_finite_differences) {
    Gpt m;
    Batch b = {0};
    gpt_init(&m, &tiny_lm);
    fill_random(&m, 0.3f);
    make_batch(&b, tiny_lm.vocab_size);
    b.use_entropy = 1;
    check_gradients(&m, &b, "logp+entropy");
    gpt_free(&m);
}

/* logits / temperature: the gradient of log-probs and entropies of the
 * tempered distribution, and the logits are the plain ones divided by T. */
TEST(gpt_grad_at_a_temperature_matches_finite_differences) {
    Gpt m;
    Batch b = {0};
    gpt_init(&m, &tiny_lm);
    fill_random(&m, 0.3f);
    make_batch(&b, tiny_lm.vocab_size);
    CHECK(gpt_forward(&m, b.tokens, TB, TT) == 0);
    float plain[TB * TT * 13];
    memcpy(plain, m.logits, sizeof plain);
    m.temperature = 0.7f;
    CHECK(gpt_forward(&m, b.tokens, TB, TT) == 0);
    double worst = 0;
    for (int i = 0; i < TB * TT * 13; i++) worst = fmax(worst, fabs(m.logits[i] - plain[i] / 0.7));
    CHECKF(worst < 1e-5, "tempered logits differ from plain / T by %.3g", worst);
    b.use_entropy = 1;
    check_gradients(&m, &b, "logp+entropy at T = 0.7");
    gpt_free(&m);
}

TEST(gpt_grad_scalar_head_matches_finite_differences) {
    GptConfig c = tiny_lm;
    c.head = GPT_HEAD_SCALAR;
    Gpt m;
    Batch b = {0};
    gpt_init(&m, &c);
    fill_random(&m, 0.3f);
    make_batch(&b, c.vocab_size);
    check_gradients(&m, &b, "scalar head");
    gpt_free(&m);
}

TEST(gpt_grad_with_dropout_matches_finite_differences) {
    Gpt m;
    Batch b = {0};
    gpt_init(&m, &tiny_lm);
    fill_random(&m, 0.3f);
    make_batch(&b, tiny_lm.vocab_size);
    m.training = 1;
    m.dropout = 0.2f;
    b.dropout_seed = 99;
    check_gradients(&m, &b, "dropout 0.2");
    /* dropout must actually change the output, and be off at inference */
    rng_seed(&m.dropout_rng, 1);
    gpt_forward(&m, b.tokens, TB, TT);
    float with = m.logits[3];
    m.training = 0;
    gpt_forward(&m, b.tokens, TB, TT);
    float without = m.logits[3];
    CHECK(with != without);
    gpt_free(&m);
}

TEST(gpt_kv_cache_matches_full_forward) {
    Gpt m;
    gpt_init(&m, &tiny_lm);
    fill_random(&m, 0.3f);
    int V = tiny_lm.vocab_size, T = 7;
    int seqs[2][7] = {{1, 5, 2, 9, 12, 0, 3}, {4, 4, 7, 1, 11, 6, 2}};
    float full[2][7][13];
    for (int s = 0; s < 2; s++) {
        gpt_forward(&m, seqs[s], 1, T);
        memcpy(full[s], m.logits, sizeof full[s]);
    }
    GptKV kv;
    CHECK(gpt_kv_init(&kv, &m, 2, 8) == 0);
    /* prefill: 3 tokens of seq 0 and 1 token of seq 1 in one call */
    int tok[4] = {seqs[0][0], seqs[0][1], seqs[1][0], seqs[0][2]};
    int sq[4] = {0, 0, 1, 0};
    float out[4][13];
    CHECK(gpt_forward_cached(&m, &kv, tok, sq, 4, NULL, &out[0][0], V) == 0);
    double worst = 0;
    int at[4] = {0, 1, 0, 2};
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < V; v++) {
            double d = fabs(out[r][v] - full[sq[r]][at[r]][v]);
            worst = d > worst ? d : worst;
        }
    /* then one token at a time for both, until seq 1 catches up */
    int p0 = 3, p1 = 1;
    while (p0 < T || p1 < T) {
        int n = 0, t2[2], s2[2], pos[2];
        if (p0 < T) t2[n] = seqs[0][p0], s2[n] = 0, pos[n++] = p0++;
        if (p1 < T) t2[n] = seqs[1][p1], s2[n] = 1, pos[n++] = p1++;
        CHECK(gpt_forward_cached(&m, &kv, t2, s2, n, NULL, &out[0][0], V) == 0);
        for (int r = 0; r < n; r++)
            for (int v = 0; v < V; v++) {
                double d = fabs(out[r][v] - full[s2[r]][pos[r]][v]);
                worst = d > worst ? d : worst;
            }
    }
    CHECKF(worst < 1e-5, "kv cache vs full forward: max |diff| %.3g", worst);
    int one = 0, zero = 0;
    CHECK(gpt_forward_cached(&m, &kv, &one, &zero, 1, NULL, &out[0][0], V) == 0); /* pos 7 */
    CHECK(gpt_forward_cached(&m, &kv, &one, &zero, 1, NULL, &out[0][0], V) == -1); /* full */
    gpt_kv_free(&kv);
    gpt_free(&m);
}

/* Decoding paths (few-row products, KV attention) against the full forward
 * at realistic head sizes, one token at a time for several sequences at once
 * (batch sizes below, at and above the few-row threshold). */
static void kv_wide_case(int S, int pack) {
    GptConfig c = { /* head size 16 */
        .vocab_size = 97, .n_ctx = 40, .n_layer = 2, .n_head = 4, .n_embd = 64, .head = GPT_HEAD_LM};
    Gpt m;
    gpt_init(&m, &c);
    if (pack) { /* packed for other weights first: repacking must replace them */
        fill_random(&m, 0.5f);
        gpt_pack_decode(&m);
    }
    fill_random(&m, 0.2f);
    if (pack) gpt_pack_decode(&m);
    enum { L = 30 };
    int toks[32][L];
    for (int s = 0; s < S; s++)
        for (int t = 0; t < L; t++) toks[s][t] = (s * 31 + t * 7) % c.vocab_size;
    float *full = malloc(sizeof(float) * S * L * c.vocab_size), out[32][97];
    gpt_forward(&m, &toks[0][0], S, L);
    memcpy(full, m.logits, sizeof(float) * S * L * c.vocab_size);
    GptKV kv;
    gpt_kv_init(&kv, &m, S, L);
    double worst = 0;
    for (int t = 0; t < L; t++) {
        int tk[32], sq[32];
        for (int s = 0; s < S; s++) tk[s] = toks[s][t], sq[s] = s;
        gpt_forward_cached(&m, &kv, tk, sq, S, NULL, &out[0][0], c.vocab_size);
        for (int s = 0; s < S; s++)
            for (int v = 0; v < c.vocab_size; v++)
                worst = fmax(worst, fabs(out[s][v] - full[((size_t)s * L + t) * c.vocab_size + v]));
    }
    CHECKF(worst < 1e-4, "kv cache vs full forward (head size 16, %d sequences%s): max |diff| %.3g", S,
           pack ? ", model's packed head" : "", worst);
    gpt_kv_free(&kv);
    free(full);
    gpt_free(&m);
}

TEST(gpt_kv_cache_matches_full_forward_wide_heads) {
    int sizes[] = {1, 3, 11, 16, 17, 32};
    for (int i = 0; i < 6; i++) kv_wide_case(sizes[i], 0);
}

TEST(gpt_kv_cache_with_packed_head_matches_full_forward) {
    int sizes[] = {1, 4, 11, 16, 17};
    for (int i = 0; i < 5; i++) kv_wide_case(sizes[i], 1);
}

/* Decoding with the layers' matrices packed (gpt_pack_decode) gives the
 * unpacked decoding's bits (the scalar head: the same head path either way),
 * at 1, 5 and 16 rows per call; a width whose panels end part-full. */
TEST(gpt_kv_packed_layers_give_the_same_bits) {
    GptConfig c = {.vocab_size = 61, .n_ctx = 24, .n_layer = 2, .n_head = 2, .n_embd = 40, .head = GPT_HEAD_SCALAR};
    int rows[] = {1, 5, 16};
    for (int i = 0; i < 3; i++) {
        int S = rows[i];
        float out[2][16][20];
        for (int pack = 0; pack < 2; pack++) {
            Gpt m;
            gpt_init(&m, &c);
            lcg_state = 12345; /* the same weights for both models */
            fill_random(&m, 0.3f);
            if (pack) gpt_pack_decode(&m);
            CHECK(pack == 0 || m.layer_panels != NULL);
            GptKV kv;
            gpt_kv_init(&kv, &m, S, 20);
            for (int t = 0; t < 20; t++) {
                int tk[16], sq[16];
                for (int s = 0; s < S; s++) tk[s] = (s * 13 + t * 5) % c.vocab_size, sq[s] = s;
                CHECK(gpt_forward_cached(&m, &kv, tk, sq, S, NULL, &out[pack][0][t], 20) == 0);
            }
            gpt_kv_free(&kv);
            gpt_free(&m);
        }
        CHECKF(memcmp(out[0], out[1], sizeof(float) * S * 20) == 0, "%d rows: packed layers changed bits", S);
    }
}

/* The layer ranges tile the parameters between wpe and ln_f, and backward
 * reports each layer once, last to first, after its gradients are final. */
typedef struct {
    int order[8], n;
    const Gpt *m;
    float snapshot[8]; /* a layer's first gradient when reported */
} ReadyLog;

static void log_ready(void *ctx, int layer) {
    ReadyLog *r = ctx;
    size_t off, n;
    gpt_layer_range(r->m, layer, &off, &n);
    r->snapshot[r->n] = r->m->grads[off]; /* ln_1.weight: the last one backward writes */
    (void)n;
    r->order[r->n++] = layer;
}

TEST(gpt_layer_ranges_and_grads_ready_hook) {
    Gpt m;
    gpt_init(&m, &tiny_lm);
    fill_random(&m, 0.3f);
    int L = tiny_lm.n_layer, C = tiny_lm.n_embd;
    size_t per_layer = 2 * C + C * 3 * C + 3 * C + C * C + C + 2 * C + C * 4 * C + 4 * C + 4 * C * C + C;
    size_t expect = (size_t)(tiny_lm.vocab_size + tiny_lm.n_ctx) * C;
    for (int l = 0; l < L; l++) {
        size_t off, n;
        gpt_layer_range(&m, l, &off, &n);
        CHECKF(off == expect && n == per_layer, "layer %d: offset %zu count %zu, expected %zu %zu", l, off, n, expect,
               per_layer);
        expect += per_layer;
    }
    CHECK(expect == (size_t)(m.p.lnf_w - m.params));
    ReadyLog r = {.m = &m};
    m.grads_ready = log_ready, m.grads_ready_ctx = &r;
    int tok[2 * 5] = {1, 5, 2, 9, 12, 0, 3, 4, 4, 7};
    float dlogp[10];
    gpt_forward(&m, tok, 2, 5);
    gpt_ce_loss(&m, tok, NULL, dlogp);
    gpt_zero_grad(&m);
    gpt_backward_lm(&m, tok, dlogp, NULL);
    CHECK(r.n == L);
    for (int i = 0; i < r.n && i < L; i++) {
        CHECK(r.order[i] == L - 1 - i);
        size_t off, n;
        gpt_layer_range(&m, r.order[i], &off, &n);
        CHECK(r.snapshot[i] == m.grads[off] && r.snapshot[i] != 0.0f); /* final when reported */
        (void)n;
    }
    gpt_free(&m);
}
