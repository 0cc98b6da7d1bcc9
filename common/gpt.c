/* gpt — GPT-2 forward, backward and KV-cache inference on OpenBLAS; see gpt.h. */
#include "common/gpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int gpt_config_validate(const GptConfig *c) {
    if (c->vocab_size < 1) return err_set("vocab_size must be >= 1 (got %d)", c->vocab_size);
    if (c->n_ctx < 1) return err_set("n_ctx must be >= 1 (got %d)", c->n_ctx);
    if (c->n_layer < 1) return err_set("n_layer must be >= 1 (got %d)", c->n_layer);
    if (c->n_head < 1) return err_set("n_head must be >= 1 (got %d)", c->n_head);
    if (c->n_embd < 1 || c->n_embd % c->n_head)
        return err_set("n_embd (%d) must be a positive multiple of n_head (%d)", c->n_embd, c->n_head);
    if (c->head != GPT_HEAD_LM && c->head != GPT_HEAD_SCALAR)
        return err_set("head must be lm or scalar");
    return 0;
}

/* Appends one named tensor to the table; returns its offset. */
static size_t add_tensor(GptTensor *t, int *n, size_t *off, const char *name,
                         int d0, int d1, int decay) {
    GptTensor *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->offset = *off;
    x->ndim = d1 ? 2 : 1;
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->size = (size_t)d0 * (d1 ? d1 : 1);
    x->decay = decay;
    *off += x->size;
    return x->offset;
}

static int table_count(const GptConfig *c) {
    return 4 + 12 * c->n_layer + (c->head == GPT_HEAD_SCALAR ? 2 : 0);
}

/* Fills the tensor table (HF names, each layer contiguous); returns count. */
static int build_table(const GptConfig *c, GptTensor *t, size_t *total) {
    int n = 0, C = c->n_embd;
    size_t off = 0;
    char name[48];
#define ADD(nm, d0, d1, dec) add_tensor(t, &n, &off, nm, d0, d1, dec)
#define LADD(suffix, d0, d1, dec) \
    (snprintf(name, sizeof name, "h.%d.%s", l, suffix), ADD(name, d0, d1, dec))
    ADD("wte.weight", c->vocab_size, C, 1);
    ADD("wpe.weight", c->n_ctx, C, 1);
    for (int l = 0; l < c->n_layer; l++) {
        LADD("ln_1.weight", C, 0, 0);
        LADD("ln_1.bias", C, 0, 0);
        LADD("attn.c_attn.weight", C, 3 * C, 1);
        LADD("attn.c_attn.bias", 3 * C, 0, 0);
        LADD("attn.c_proj.weight", C, C, 1);
        LADD("attn.c_proj.bias", C, 0, 0);
        LADD("ln_2.weight", C, 0, 0);
        LADD("ln_2.bias", C, 0, 0);
        LADD("mlp.c_fc.weight", C, 4 * C, 1);
        LADD("mlp.c_fc.bias", 4 * C, 0, 0);
        LADD("mlp.c_proj.weight", 4 * C, C, 1);
        LADD("mlp.c_proj.bias", C, 0, 0);
    }
    ADD("ln_f.weight", C, 0, 0);
    ADD("ln_f.bias", C, 0, 0);
    if (c->head == GPT_HEAD_SCALAR) {
        ADD("score.weight", 1, C, 1);
        ADD("score.bias", 1, 0, 0);
    }
#undef LADD
#undef ADD
    *total = off;
    return n;
}

size_t gpt_count_params(const GptConfig *c) {
    GptTensor *t = err_calloc(table_count(c), sizeof *t);
    size_t total;
    build_table(c, t, &total);
    free(t);
    return total;
}

static float *view(float *base, const Gpt *m, const char *name) {
    const GptTensor *t = gpt_find_tensor(m, name);
    return t ? base + t->offset : NULL;
}

static void set_views(const Gpt *m, float *base, GptViews *v) {
    char name[48];
    v->wte = view(base, m, "wte.weight");
    v->wpe = view(base, m, "wpe.weight");
    v->lnf_w = view(base, m, "ln_f.weight");
    v->lnf_b = view(base, m, "ln_f.bias");
    v->score_w = view(base, m, "score.weight");
    v->score_b = view(base, m, "score.bias");
    for (int l = 0; l < m->cfg.n_layer; l++) {
        GptLayer *y = &v->layer[l];
#define V(field, suffix) snprintf(name, sizeof name, "h.%d.%s", l, suffix), y->field = view(base, m, name)
        V(ln1_w, "ln_1.weight");
        V(ln1_b, "ln_1.bias");
        V(qkv_w, "attn.c_attn.weight");
        V(qkv_b, "attn.c_attn.bias");
        V(attproj_w, "attn.c_proj.weight");
        V(attproj_b, "attn.c_proj.bias");
        V(ln2_w, "ln_2.weight");
        V(ln2_b, "ln_2.bias");
        V(fc_w, "mlp.c_fc.weight");
        V(fc_b, "mlp.c_fc.bias");
        V(fcproj_w, "mlp.c_proj.weight");
        V(fcproj_b, "mlp.c_proj.bias");
#undef V
    }
}

int gpt_init(Gpt *m, const GptConfig *c) {
    memset(m, 0, sizeof *m);
    if (gpt_config_validate(c)) return -1;
    m->cfg = *c;
    size_t total;
    m->tensors = err_calloc(table_count(c), sizeof *m->tensors);
    m->n_tensors = build_table(c, m->tensors, &total);
    m->n_params = total;
    m->params = err_calloc(total, sizeof(float));
    m->grads = err_calloc(total, sizeof(float));
    m->p.layer = err_calloc(c->n_layer, sizeof(GptLayer));
    m->g.layer = err_calloc(c->n_layer, sizeof(GptLayer));
    set_views(m, m->params, &m->p);
    set_views(m, m->grads, &m->g);
    rng_seed(&m->dropout_rng, 0x5eed);
    return 0;
}

const GptTensor *gpt_find_tensor(const Gpt *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void gpt_init_random(Gpt *m, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    float resid_std = 0.02f / sqrtf(2.0f * m->cfg.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const GptTensor *t = &m->tensors[i];
        float *x = m->params + t->offset;
        const char *nm = t->name;
        int is_ln_w = strstr(nm, "ln_") && strstr(nm, ".weight");
        int is_resid = strstr(nm, "c_proj.weight") != NULL;
        int is_score = strncmp(nm, "score.", 6) == 0;
        for (size_t j = 0; j < t->size; j++) {
            if (is_ln_w) x[j] = 1.0f;
            else if (is_score || t->ndim == 1) x[j] = 0.0f;
            else x[j] = (is_resid ? resid_std : 0.02f) * rng_normal(&r);
        }
    }
}

/* ---- stubs, being written ---- */
int gpt_forward(Gpt *m, const int *tokens, int B, int T) { (void)m; (void)tokens; (void)B; (void)T; return -1; }
void gpt_token_logprobs(const Gpt *m, const int *t, float *l, float *e) { (void)m; (void)t; (void)l; (void)e; }
float gpt_ce_loss(const Gpt *m, const int *t, const float *mask, float *d) { (void)m; (void)t; (void)mask; (void)d; return 0; }
void gpt_zero_grad(Gpt *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }
void gpt_backward_lm(Gpt *m, const int *t, const float *d, const float *e) { (void)m; (void)t; (void)d; (void)e; }
void gpt_backward_scalar(Gpt *m, const float *d) { (void)m; (void)d; }
int gpt_kv_init(GptKV *kv, const Gpt *m, int n, int l) { (void)kv; (void)m; (void)n; (void)l; return -1; }
void gpt_kv_free(GptKV *kv) { (void)kv; }
void gpt_kv_reset(GptKV *kv) { (void)kv; }
int gpt_forward_cached(const Gpt *m, GptKV *kv, const int *t, const int *s, int n, const unsigned char *w, float *o, size_t st) {
    (void)m; (void)kv; (void)t; (void)s; (void)n; (void)w; (void)o; (void)st; return -1; }
void gpt_free(Gpt *m) {
    free(m->params); free(m->grads); free(m->tensors); free(m->p.layer); free(m->g.layer);
    memset(m, 0, sizeof *m);
}
