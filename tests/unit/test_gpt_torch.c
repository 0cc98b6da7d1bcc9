/* Tests the C model against an independent PyTorch implementation:
 * tests/fixtures/tiny-gpt2-ref.h5, written in float64 by
 * tests/fixtures/make_gpt2_fixture.py (parameters, logits, loss, gradients,
 * a log-prob/entropy objective, a scalar head, 10 AdamW steps with and
 * without clipping, and a greedy continuation). Read here with the plain
 * HDF5 API, independently of common/io/ckpt.c. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "common/model/adamw.h"
#include "common/model/gpt.h"
#include "tests/harness.h"

static hid_t ref_open(void) { return harness_fixture_open("tiny-gpt2-ref.h5"); }

/* Loads the fixture model (params/<name> for every tensor). */
static int ref_model(hid_t f, Gpt *m, GptHead head) {
    GptConfig c = {.vocab_size = 257, .n_ctx = 32, .n_layer = 2, .n_head = 4, .n_embd = 32, .head = head};
    if (gpt_init(m, &c)) return -1;
    char name[128];
    for (int i = 0; i < m->n_tensors; i++) {
        const GptTensor *t = &m->tensors[i];
        size_t n;
        snprintf(name, sizeof name, "%s%s", strncmp(t->name, "score.", 6) ? "params/" : "scalar/", t->name);
        float *x = harness_fixture_floats(f, name, &n);
        if (!x || n != t->size) return CHECKF(0, "%s: size %zu, expected %zu", name, n, t->size), free(x), -1;
        memcpy(m->params + t->offset, x, n * sizeof(float));
        free(x);
    }
    return 0;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, s = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return d / s;
}

static void check_grads(hid_t f, const Gpt *m, const char *group, double tol, int *count) {
    for (int i = 0; i < m->n_tensors; i++) {
        const GptTensor *t = &m->tensors[i];
        char name[160];
        snprintf(name, sizeof name, "%s/%s", group, t->name);
        if (H5Lexists(f, name, H5P_DEFAULT) <= 0) continue;
        size_t n;
        float *ref = harness_fixture_floats(f, name, &n);
        if (!ref) continue;
        double e = rel_err(m->grads + t->offset, ref, n);
        CHECKF(n == t->size && e <= tol, "%s: relative error %.3g > %g", name, e, tol);
        free(ref);
        (*count)++;
    }
}

typedef struct {
    int *tokens, *targets;
    float *mask;
    int B, T;
} RefBatch;

static void ref_batch(hid_t f, RefBatch *b) {
    size_t n;
    b->tokens = harness_fixture_ints(f, "tokens", &n);
    b->targets = harness_fixture_ints(f, "targets", NULL);
    b->mask = harness_fixture_floats(f, "mask", NULL);
    b->B = 3;
    b->T = (int)n / 3;
}

static void ref_batch_free(RefBatch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->mask);
}

TEST(reference_logits_loss_and_grads_match_torch) {
    hid_t f = ref_open();
    Gpt m;
    RefBatch b;
    if (f < 0 || ref_model(f, &m, GPT_HEAD_LM)) return;
    ref_batch(f, &b);
    CHECK(gpt_forward(&m, b.tokens, b.B, b.T) == 0);
    size_t n;
    float *logits = harness_fixture_floats(f, "logits", &n);
    double e = rel_err(m.logits, logits, n);
    CHECKF(e <= 1e-4, "logits relative error %.3g", e);
    float dlogp[96];
    float loss = gpt_ce_loss(&m, b.targets, b.mask, dlogp), ref = (float)harness_fixture_scalar(f, "loss");
    CHECK_NEAR(loss, ref, 1e-5 * fabs(ref));
    gpt_zero_grad(&m);
    gpt_backward_lm(&m, b.targets, dlogp, NULL);
    int count = 0;
    check_grads(f, &m, "grads", 1e-3, &count);
    CHECKF(count == m.n_tensors, "compared %d of %d gradients", count, m.n_tensors);
    printf("    logits rel err %.2e, loss %.7f vs %.7f, %d gradients\n", e, loss, ref, count);
    free(logits);
    ref_batch_free(&b);
    gpt_free(&m);
    H5Fclose(f);
}

TEST(reference_logprob_entropy_objective_matches_torch) {
    hid_t f = ref_open();
    Gpt m;
    RefBatch b;
    if (f < 0 || ref_model(f, &m, GPT_HEAD_LM)) return;
    ref_batch(f, &b);
    gpt_forward(&m, b.tokens, b.B, b.T);
    int N = b.B * b.T;
    float logp[96], ent[96];
    gpt_token_logprobs(&m, b.targets, logp, ent);
    float *rl = harness_fixture_floats(f, "dlogp_check/logp", NULL), *re = harness_fixture_floats(f, "dlogp_check/entropy", NULL);
    CHECKF(rel_err(logp, rl, N) <= 1e-5, "logp rel err %.3g", rel_err(logp, rl, N));
    CHECKF(rel_err(ent, re, N) <= 1e-5, "entropy rel err %.3g", rel_err(ent, re, N));
    float *cl = harness_fixture_floats(f, "dlogp_check/coef_logp", NULL), *ce = harness_fixture_floats(f, "dlogp_check/coef_entropy", NULL);
    gpt_zero_grad(&m);
    gpt_backward_lm(&m, b.targets, cl, ce);
    int count = 0;
    check_grads(f, &m, "dlogp_check/grads", 1e-3, &count);
    CHECK(count == 5);
    free(rl), free(re), free(cl), free(ce);
    ref_batch_free(&b);
    gpt_free(&m);
    H5Fclose(f);
}

TEST(reference_scalar_head_matches_torch) {
    hid_t f = ref_open();
    Gpt m;
    RefBatch b;
    if (f < 0 || ref_model(f, &m, GPT_HEAD_SCALAR)) return;
    ref_batch(f, &b);
    gpt_forward(&m, b.tokens, b.B, b.T);
    size_t n;
    float *vals = harness_fixture_floats(f, "scalar/values", &n), *coef = harness_fixture_floats(f, "scalar/coef", NULL);
    CHECKF(rel_err(m.values, vals, n) <= 1e-4, "values rel err %.3g", rel_err(m.values, vals, n));
    gpt_zero_grad(&m);
    gpt_backward_scalar(&m, coef);
    int count = 0;
    check_grads(f, &m, "scalar/grads", 1e-3, &count);
    CHECK(count == 4);
    free(vals), free(coef);
    ref_batch_free(&b);
    gpt_free(&m);
    H5Fclose(f);
}

/* 10 AdamW steps on the fixture batch; losses and final params vs torch. */
static void run_adamw(hid_t f, const char *group) {
    Gpt m;
    RefBatch b;
    if (ref_model(f, &m, GPT_HEAD_LM)) return;
    ref_batch(f, &b);
    char name[160];
    double lr, wd, b1, b2, eps, clip;
    const char *keys[] = {"lr", "weight_decay", "beta1", "beta2", "eps", "max_norm"};
    double *vals[] = {&lr, &wd, &b1, &b2, &eps, &clip};
    for (int i = 0; i < 6; i++) *vals[i] = harness_fixture_attr(f, group, keys[i]);
    AdamWConfig c = {.lr = (float)lr,
                     .beta1 = (float)b1,
                     .beta2 = (float)b2,
                     .eps = (float)eps,
                     .weight_decay = (float)wd,
                     .grad_clip = (float)clip,
                     .warmup_steps = 0,
                     .total_steps = 0,
                     .lr_min = 0};
    AdamW opt;
    adamw_init(&opt, m.n_params, &c);
    snprintf(name, sizeof name, "%s/losses", group);
    size_t steps;
    float *ref = harness_fixture_floats(f, name, &steps), dlogp[96];
    double worst = 0;
    for (size_t s = 0; s < steps; s++) {
        gpt_forward(&m, b.tokens, b.B, b.T);
        float loss = gpt_ce_loss(&m, b.targets, b.mask, dlogp);
        worst = fmax(worst, fabs(loss - ref[s]));
        gpt_zero_grad(&m);
        gpt_backward_lm(&m, b.targets, dlogp, NULL);
        adamw_step(&opt, &m);
    }
    CHECKF(worst <= 1e-4, "%s: loss curve max |diff| %.3g", group, worst);
    const char *finals[] = {"wte.weight", "h.1.mlp.c_fc.weight", "ln_f.bias", "h.0.ln_1.weight"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s/final/%s", group, finals[i]);
        size_t n;
        float *x = harness_fixture_floats(f, name, &n);
        const GptTensor *t = gpt_find_tensor(&m, finals[i]);
        double e = 0;
        for (size_t j = 0; j < n; j++) e = fmax(e, fabs(m.params[t->offset + j] - x[j]));
        CHECKF(e <= 1e-4, "%s: max |diff| %.3g", name, e);
        free(x);
    }
    printf("    %s: %zu steps, loss curve max |diff| %.2e\n", group, steps, worst);
    free(ref);
    adamw_free(&opt);
    ref_batch_free(&b);
    gpt_free(&m);
}

TEST(reference_adamw_steps_match_torch) {
    hid_t f = ref_open();
    if (f < 0) return;
    run_adamw(f, "adamw");
    run_adamw(f, "adamw_clip");
    H5Fclose(f);
}

TEST(reference_greedy_continuation_matches_torch) {
    hid_t f = ref_open();
    Gpt m;
    if (f < 0 || ref_model(f, &m, GPT_HEAD_LM)) return;
    size_t np, nt;
    int *prompt = harness_fixture_ints(f, "greedy/prompt", &np);
    int *want = harness_fixture_ints(f, "greedy/tokens", &nt);
    GptKV kv;
    gpt_kv_init(&kv, &m, 1, 32);
    int *seq = calloc(np, sizeof(int));
    float *logits = malloc(np * 257 * sizeof(float));
    gpt_forward_cached(&m, &kv, prompt, seq, (int)np, NULL, logits, 257);
    const float *last = logits + (np - 1) * 257;
    int same = 1;
    for (size_t i = 0; i < nt; i++) {
        int best = 0;
        for (int v = 1; v < 257; v++) best = last[v] > last[best] ? v : best;
        same &= best == want[i];
        gpt_forward_cached(&m, &kv, &best, seq, 1, NULL, logits, 257);
        last = logits;
    }
    CHECK(same);
    gpt_kv_free(&kv);
    free(seq), free(logits), free(prompt), free(want);
    gpt_free(&m);
    H5Fclose(f);
}
