/* Tests for common/model/adamw.c beyond the torch fixture (test_gpt_torch.c): the
 * learning-rate schedule against hand-computed values, clipping, and weight
 * decay touching matrices only. */
#include <string.h>

#include "common/model/adamw.h"
#include "tests/harness.h"

TEST(adamw_schedule_warmup_then_cosine_to_floor) {
    AdamWConfig c = adamw_default();
    c.lr = 1.0f, c.lr_min = 0.1f, c.warmup_steps = 4, c.total_steps = 14;
    CHECK_NEAR(adamw_lr_at(&c, 0), 0.25, 1e-7);  /* (0+1)/4 */
    CHECK_NEAR(adamw_lr_at(&c, 3), 1.0, 1e-7);   /* end of warm-up */
    CHECK_NEAR(adamw_lr_at(&c, 4), 1.0, 1e-7);   /* cosine starts at the peak */
    CHECK_NEAR(adamw_lr_at(&c, 9), 0.55, 1e-6);  /* half way: floor + (1-0.1)/2 */
    CHECK_NEAR(adamw_lr_at(&c, 14), 0.1, 1e-7);  /* floor */
    CHECK_NEAR(adamw_lr_at(&c, 100), 0.1, 1e-7); /* stays at the floor */
    c.total_steps = 0;
    CHECK_NEAR(adamw_lr_at(&c, 50), 1.0, 1e-7);  /* constant after warm-up */
}

TEST(adamw_clip_grad_norm_scales_to_max) {
    float g[2] = {3.0f, 4.0f};
    CHECK_NEAR(adamw_clip_grad_norm(g, 2, 1.0f), 5.0, 1e-6);
    CHECK_NEAR(g[0], 0.6, 1e-6);
    CHECK_NEAR(g[1], 0.8, 1e-6);
    float h[2] = {0.3f, 0.4f};
    adamw_clip_grad_norm(h, 2, 1.0f);
    CHECK(h[0] == 0.3f && h[1] == 0.4f); /* below the limit: untouched */
}

TEST(adamw_decays_matrices_only) {
    GptConfig cfg = {.vocab_size = 11, .n_ctx = 4, .n_layer = 1, .n_head = 1, .n_embd = 4, .head = GPT_HEAD_LM};
    Gpt m;
    gpt_init(&m, &cfg);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 1.0f;
    gpt_zero_grad(&m); /* zero gradient: only weight decay moves parameters */
    AdamWConfig c = adamw_default();
    c.lr = 0.5f, c.weight_decay = 0.1f;
    AdamW o;
    adamw_init(&o, m.n_params, &c);
    adamw_step(&o, &m);
    const GptTensor *w = gpt_find_tensor(&m, "h.0.mlp.c_fc.weight");
    const GptTensor *b = gpt_find_tensor(&m, "h.0.mlp.c_fc.bias");
    const GptTensor *ln = gpt_find_tensor(&m, "ln_f.weight");
    CHECK_NEAR(m.params[w->offset], 0.95, 1e-7); /* 1 - 0.5*0.1 */
    CHECK(m.params[b->offset] == 1.0f);
    CHECK(m.params[ln->offset] == 1.0f);
    adamw_free(&o);
    gpt_free(&m);
}
