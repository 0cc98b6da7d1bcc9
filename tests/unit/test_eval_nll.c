/* Tests for eval_nll (common/task/evaluate.c, `rlhf nll`): the total against
 * a reference computed here, token by token, from each prediction's own
 * forward pass (its window alone, B = 1) with log-softmax in double; the
 * hand-derived value (n - 1) log V of a model whose logits are all zero;
 * batching that does not change the result; and the errors. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "common/model/gpt.h"
#include "common/task/evaluate.h"
#include "tests/harness.h"

enum { NLL_V = 13, NLL_CTX = 8 };

static const GptConfig nll_lm = {
    .vocab_size = NLL_V, .n_ctx = NLL_CTX, .n_layer = 2, .n_head = 2, .n_embd = 8, .head = GPT_HEAD_LM};

/* Test-local generator, independent of common/rng.c. */
static uint64_t nll_lcg = 777;
static uint32_t nll_next(void) {
    nll_lcg = nll_lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(nll_lcg >> 33);
}

static void random_tokens(int *ids, int n) {
    for (int i = 0; i < n; i++) ids[i] = (int)(nll_next() % NLL_V);
}

/* -log p(ids[t]) for every t >= 1: prediction t - 1 belongs to window
 * (t - 1) / n_ctx, which starts at token w * n_ctx and holds at most n_ctx
 * inputs; its logits come from a forward over that window alone. */
static double reference_nll(Gpt *m, const int *ids, int n) {
    double total = 0;
    for (int t = 1; t < n; t++) {
        int start = (t - 1) / NLL_CTX * NLL_CTX;
        int len = n - 1 - start < NLL_CTX ? n - 1 - start : NLL_CTX;
        if (gpt_forward(m, ids + start, 1, len)) return NAN;
        const float *z = m->logits + (size_t)(t - 1 - start) * NLL_V;
        double mx = z[0], sum = 0;
        for (int v = 1; v < NLL_V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < NLL_V; v++) sum += exp((double)z[v] - mx);
        total -= (double)z[ids[t]] - mx - log(sum);
    }
    return total;
}

TEST(eval_nll_matches_double_log_softmax) {
    Gpt m;
    CHECK(gpt_init(&m, &nll_lm) == 0);
    gpt_init_random(&m, 5);
    /* 29 and 16 predictions: three full windows and a remainder of 5; two full windows and none */
    const int lengths[] = {30, 17, 2, 9};
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        int n = lengths[k], ids[64];
        random_tokens(ids, n);
        double want = reference_nll(&m, ids, n);
        for (int batch = 1; batch <= 4; batch++) {
            double total = -1;
            long count = -1;
            CHECK(eval_nll(&m, ids, n, batch, &total, &count) == 0);
            CHECKF(count == n - 1, "n %d: count %ld", n, count);
            CHECKF(fabs(total - want) <= 1e-5 * fabs(want) + 1e-5, "n %d batch %d: %.9g vs reference %.9g", n,
                   batch, total, want);
        }
    }
    gpt_free(&m);
}

TEST(eval_nll_uniform_model_is_log_vocab) {
    Gpt m;
    CHECK(gpt_init(&m, &nll_lm) == 0);
    memset(m.params, 0, m.n_params * sizeof(float)); /* every logit 0: p = 1/V for every token */
    int ids[21];
    random_tokens(ids, 21);
    double total;
    long count;
    CHECK(eval_nll(&m, ids, 21, 3, &total, &count) == 0);
    CHECK(count == 20);
    CHECK_NEAR(total, 20 * log((double)NLL_V), 1e-4);
    gpt_free(&m);
}

TEST(eval_nll_errors) {
    Gpt m;
    CHECK(gpt_init(&m, &nll_lm) == 0);
    gpt_init_random(&m, 1);
    int ids[3] = {1, 2, 3};
    double total;
    long count;
    CHECK(eval_nll(&m, ids, 1, 1, &total, &count) == -1);
    CHECK(strstr(err_msg(), "at least 2 tokens, has 1") != NULL);
    CHECK(eval_nll(&m, ids, 3, 0, &total, &count) == -1);
    CHECK(strstr(err_msg(), "batch") != NULL);
    int bad[3] = {1, NLL_V, 2}; /* an input token outside the vocabulary */
    CHECK(eval_nll(&m, bad, 3, 1, &total, &count) == -1);
    CHECK(count == 0);
    gpt_free(&m);
    GptConfig scalar = nll_lm;
    scalar.head = GPT_HEAD_SCALAR;
    CHECK(gpt_init(&m, &scalar) == 0);
    CHECK(eval_nll(&m, ids, 3, 1, &total, &count) == -1);
    CHECK(strstr(err_msg(), "language model") != NULL);
    gpt_free(&m);
}
