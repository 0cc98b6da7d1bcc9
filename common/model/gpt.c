/* gpt — GPT-2 forward, backward and KV-cache inference on OpenBLAS; see gpt.h. */
#include "common/model/gpt.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/model/ops.h"
#include <cblas.h>

/* "n_layer=4 n_embd=128 (n_ctx 64, vocab_size 257)": the keys that size a
 * model, for messages about its size. */
static void describe_shape(const GptConfig *c, char *buf, size_t n) {
    snprintf(buf, n, "n_layer=%d n_embd=%d (n_ctx %d, vocab_size %d)", c->n_layer, c->n_embd, c->n_ctx,
             c->vocab_size);
}

/* Parameter count with every product checked (the rule in common/err.h);
 * -1 if it overflows. build_table gives the same count without checks. */
static int checked_params(const GptConfig *c, size_t *total) {
    size_t C = (size_t)c->n_embd, per_layer, embed, rest = 2 * C + (c->head == GPT_HEAD_SCALAR ? C + 1 : 0);
    if (err_mul_size(C, 12 * C + 13, &per_layer) || err_mul_size(per_layer, (size_t)c->n_layer, &per_layer) ||
        err_mul_size((size_t)c->vocab_size + (size_t)c->n_ctx, C, &embed))
        return -1;
    *total = per_layer + embed + rest;
    return *total < per_layer || *total < embed ? -1 : 0;
}

/* Shapes hold 4 x n_embd in an int and the tensor table 12 x n_layer;
 * the parameters and their gradients (2 x 4 bytes each) must be
 * addressable. */
static int check_size(const GptConfig *c) {
    char shape[160];
    describe_shape(c, shape, sizeof shape);
    if (c->n_embd > INT_MAX / 4) return err_set("model: n_embd=%d is too large (at most %d)", c->n_embd, INT_MAX / 4);
    if (c->n_layer > (INT_MAX - 6) / 12)
        return err_set("model: n_layer=%d is too large (at most %d)", c->n_layer, (INT_MAX - 6) / 12);
    size_t total;
    if (checked_params(c, &total) || err_mul_size(total, 2 * sizeof(float), NULL))
        return err_set("model: %s: more parameters than can be addressed; too large", shape);
    return 0;
}

int gpt_config_validate(const GptConfig *c) {
    if (c->vocab_size < 1) return err_set("vocab_size must be >= 1 (got %d)", c->vocab_size);
    if (c->n_ctx < 1) return err_set("n_ctx must be >= 1 (got %d)", c->n_ctx);
    if (c->n_layer < 1) return err_set("n_layer must be >= 1 (got %d)", c->n_layer);
    if (c->n_head < 1) return err_set("n_head must be >= 1 (got %d)", c->n_head);
    if (c->n_embd < 1 || c->n_embd % c->n_head)
        return err_set("n_embd (%d) must be a positive multiple of n_head (%d)", c->n_embd, c->n_head);
    if (c->head != GPT_HEAD_LM && c->head != GPT_HEAD_SCALAR)
        return err_set("head must be lm or scalar");
    return check_size(c);
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
#define LADD(suffix, d0, d1, dec)                          \
    do {                                                   \
        snprintf(name, sizeof name, "h.%d.%s", l, suffix); \
        ADD(name, d0, d1, dec);                            \
    } while (0)
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
#define V(field, suffix)                                   \
    do {                                                   \
        snprintf(name, sizeof name, "h.%d.%s", l, suffix); \
        y->field = view(base, m, name);                    \
    } while (0)
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
    m->temperature = 1.0f;
    size_t total;
    m->tensors = err_calloc(table_count(c), sizeof *m->tensors);
    m->n_tensors = build_table(c, m->tensors, &total);
    m->n_params = total;
    /* the one allocation a setting can make huge: refused by name, not by a byte count */
    m->params = calloc(total, sizeof(float));
    m->grads = m->params ? calloc(total, sizeof(float)) : NULL;
    if (!m->grads) {
        char shape[160], size[32];
        describe_shape(c, shape, sizeof shape);
        err_format_bytes((double)total * sizeof(float), size, sizeof size);
        free(m->params);
        free(m->tensors);
        memset(m, 0, sizeof *m);
        return err_set("model: %s: %zu parameters need %s, and as much again for gradients; out of memory", shape,
                       total, size);
    }
    m->p.layer = err_calloc(c->n_layer, sizeof(GptLayer));
    m->g.layer = err_calloc(c->n_layer, sizeof(GptLayer));
    set_views(m, m->params, &m->p);
    set_views(m, m->grads, &m->g);
    rng_seed(&m->dropout_rng, 0x5eed);
    return 0;
}

void gpt_layer_range(const Gpt *m, int layer, size_t *offset, size_t *count) {
    const float *end = layer + 1 < m->cfg.n_layer ? m->p.layer[layer + 1].ln1_w : m->p.lnf_w;
    *offset = (size_t)(m->p.layer[layer].ln1_w - m->params);
    *count = (size_t)(end - m->p.layer[layer].ln1_w);
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

/* ---- activations ----------------------------------------------------- */

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *attproj, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj, *res3;
    unsigned char *att_mask, *attproj_mask, *fcproj_mask;
} GptLayerActs;

struct GptActs {
    float *base;            /* one allocation for every float below */
    unsigned char *masks;   /* one allocation for every dropout mask */
    size_t n_floats, n_masks;
    int *tokens;            /* copy of the forward's tokens (for wte grads) */
    int dropout_on;
    float *encoded;
    unsigned char *enc_mask;
    GptLayerActs *layer;
    float *lnf, *lnf_mean, *lnf_rstd, *out; /* out: logits or values */
    /* backward scratch */
    float *dres, *dc1, *dc2, *d4c1, *d4c2, *dqkv, *dlnf, *tt1, *tt2;
};

static float *take(float *base, size_t *off, size_t n) {
    float *p = base ? base + *off : NULL;
    *off += n;
    return p;
}

static unsigned char *take_mask(unsigned char *base, size_t *off, size_t n, int on) {
    if (!on) return NULL;
    unsigned char *p = base ? base + *off : NULL;
    *off += n;
    return p;
}

/* Lays out activations for (B, T) in base/masks (NULL: just count). */
static void acts_layout(const Gpt *m, GptActs *a, int B, int T) {
    size_t N = (size_t)B * T, C = m->cfg.n_embd, NH = m->cfg.n_head, f = 0, k = 0;
    int on = a->dropout_on;
    size_t out_cols = m->cfg.head == GPT_HEAD_LM ? (size_t)m->cfg.vocab_size : 1;
    a->encoded = take(a->base, &f, N * C);
    a->enc_mask = take_mask(a->masks, &k, N * C, on);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        GptLayerActs *y = &a->layer[l];
        y->ln1 = take(a->base, &f, N * C);
        y->ln1_mean = take(a->base, &f, N);
        y->ln1_rstd = take(a->base, &f, N);
        y->qkv = take(a->base, &f, N * 3 * C);
        y->att = take(a->base, &f, N * NH * T);
        y->atty = take(a->base, &f, N * C);
        y->attproj = take(a->base, &f, N * C);
        y->res2 = take(a->base, &f, N * C);
        y->ln2 = take(a->base, &f, N * C);
        y->ln2_mean = take(a->base, &f, N);
        y->ln2_rstd = take(a->base, &f, N);
        y->fch = take(a->base, &f, N * 4 * C);
        y->fch_gelu = take(a->base, &f, N * 4 * C);
        y->fcproj = take(a->base, &f, N * C);
        y->res3 = take(a->base, &f, N * C);
        y->att_mask = take_mask(a->masks, &k, N * NH * T, on);
        y->attproj_mask = take_mask(a->masks, &k, N * C, on);
        y->fcproj_mask = take_mask(a->masks, &k, N * C, on);
    }
    a->lnf = take(a->base, &f, N * C);
    a->lnf_mean = take(a->base, &f, N);
    a->lnf_rstd = take(a->base, &f, N);
    a->out = take(a->base, &f, N * out_cols);
    a->dres = take(a->base, &f, N * C);
    a->dc1 = take(a->base, &f, N * C);
    a->dc2 = take(a->base, &f, N * C);
    a->dlnf = take(a->base, &f, N * C);
    a->d4c1 = take(a->base, &f, N * 4 * C);
    a->d4c2 = take(a->base, &f, N * 4 * C);
    a->dqkv = take(a->base, &f, N * 3 * C);
    a->tt1 = take(a->base, &f, (size_t)T * T);
    a->tt2 = take(a->base, &f, (size_t)T * T);
    a->n_floats = f;
    a->n_masks = k;
}

/* "activations for 8 sequences x 1000000 tokens need 12.0 TB; out of
 * memory": the batch is what a user can lower. */
static int acts_too_large(int B, int T, size_t bytes) {
    char size[32];
    err_format_bytes((double)bytes, size, sizeof size);
    return err_set("activations for %d sequences x %d tokens need %s; out of memory (lower micro_batch or --batch)",
                   B, T, size);
}

/* Makes m->acts fit (B, T); reallocates only when it must grow. -1 +
 * acts_too_large when memory runs out (m->acts then holds no buffers). */
static int acts_prepare(Gpt *m, int B, int T) {
    if (!m->acts) {
        m->acts = err_calloc(1, sizeof *m->acts);
        m->acts->layer = err_calloc(m->cfg.n_layer, sizeof(GptLayerActs));
    }
    GptActs *a = m->acts;
    float *base = a->base;
    unsigned char *masks = a->masks;
    size_t have_f = a->base ? a->n_floats : 0, have_k = a->masks ? a->n_masks : 0;
    a->dropout_on = m->training && m->dropout > 0.0f;
    a->base = NULL;
    a->masks = NULL;
    acts_layout(m, a, B, T);
    size_t need_f = a->n_floats, need_k = a->n_masks;
    if (need_f > have_f) {
        free(base);
        base = err_mul_size(need_f, sizeof(float), NULL) ? NULL : malloc(need_f * sizeof(float));
        have_f = base ? need_f : 0;
    }
    if (base && need_k > have_k) {
        free(masks);
        masks = malloc(need_k);
        have_k = masks ? need_k : 0;
    }
    if ((size_t)B * T > m->acts_capacity) {
        free(a->tokens);
        a->tokens = malloc((size_t)B * T * sizeof(int));
        m->acts_capacity = a->tokens ? (size_t)B * T : 0;
    }
    if (!base || (need_k && !masks) || !a->tokens) {
        free(base);
        free(masks);
        a->n_floats = a->n_masks = 0;
        return acts_too_large(B, T, need_f * sizeof(float) + need_k);
    }
    a->base = base;
    a->masks = masks;
    acts_layout(m, a, B, T);
    a->n_floats = have_f;
    a->n_masks = have_k;
    return 0;
}

/* ---- whole model ----------------------------------------------------- */

/* encoded rows [n0, n1) = wte[token] + wpe[position] */
static void encoder_rows(void *ctx, size_t n0, size_t n1) {
    Gpt *m = ctx;
    int C = m->cfg.n_embd;
    for (size_t n = n0; n < n1; n++) {
        float *out = m->acts->encoded + n * C;
        const float *te = m->p.wte + (size_t)m->acts->tokens[n] * C;
        const float *pe = m->p.wpe + (size_t)(n % m->T) * C;
        for (int i = 0; i < C; i++) out[i] = te[i] + pe[i];
    }
}

static void encoder_forward(Gpt *m, int N) {
    ops_parallel_for(N, (size_t)N * m->cfg.n_embd < 65536 ? (size_t)N : 64, encoder_rows, m);
}

static void block_forward(Gpt *m, int l, const float *inp, int B, int T) {
    GptActs *a = m->acts;
    GptLayerActs *y = &a->layer[l];
    const GptLayer *w = &m->p.layer[l];
    int C = m->cfg.n_embd, N = B * T;
    float p = m->dropout;
    ops_layernorm_forward(y->ln1, y->ln1_mean, y->ln1_rstd, inp, w->ln1_w, w->ln1_b, N, C);
    ops_matmul_forward(y->qkv, y->ln1, w->qkv_w, w->qkv_b, N, C, 3 * C);
    ops_attention_forward(y->atty, y->att, y->att_mask, y->qkv, B, T, C, m->cfg.n_head,
                          m->dropout, &m->dropout_rng, a->tt1);
    ops_matmul_forward(y->attproj, y->atty, w->attproj_w, w->attproj_b, N, C, C);
    if (y->attproj_mask) ops_dropout_forward(y->attproj, y->attproj_mask, (size_t)N * C, p, &m->dropout_rng);
    ops_residual_forward(y->res2, inp, y->attproj, (size_t)N * C);
    ops_layernorm_forward(y->ln2, y->ln2_mean, y->ln2_rstd, y->res2, w->ln2_w, w->ln2_b, N, C);
    ops_matmul_forward(y->fch, y->ln2, w->fc_w, w->fc_b, N, C, 4 * C);
    ops_gelu_forward(y->fch_gelu, y->fch, (size_t)N * 4 * C);
    ops_matmul_forward(y->fcproj, y->fch_gelu, w->fcproj_w, w->fcproj_b, N, 4 * C, C);
    if (y->fcproj_mask) ops_dropout_forward(y->fcproj, y->fcproj_mask, (size_t)N * C, p, &m->dropout_rng);
    ops_residual_forward(y->res3, y->res2, y->fcproj, (size_t)N * C);
}

static void head_forward(Gpt *m, int N) {
    GptActs *a = m->acts;
    int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    if (m->cfg.head == GPT_HEAD_LM) { /* logits / temperature, the scale folded into the product */
        ops_sgemm(0, 1, N, V, C, 1.0f / m->temperature, a->lnf, C, m->p.wte, C, 0.0f, a->out, V);
        return;
    }
    for (int n = 0; n < N; n++) {
        const float *x = a->lnf + (size_t)n * C;
        float s = m->p.score_b[0];
        for (int i = 0; i < C; i++) s += x[i] * m->p.score_w[i];
        a->out[n] = s;
    }
}

int gpt_forward(Gpt *m, const int *tokens, int B, int T) {
    if (B < 1 || T < 1 || T > m->cfg.n_ctx)
        return err_set("forward: sequence length %d outside 1..%d (n_ctx)", T, m->cfg.n_ctx);
    if ((size_t)B * T > INT_MAX) /* positions are counted in an int below */
        return err_set("forward: %d sequences x %d tokens: more than %d positions at once", B, T, INT_MAX);
    for (int i = 0; i < B * T; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return err_set("forward: token id %d outside the vocabulary (0..%d)",
                           tokens[i], m->cfg.vocab_size - 1);
    if (acts_prepare(m, B, T)) return -1;
    GptActs *a = m->acts;
    int N = B * T, C = m->cfg.n_embd;
    memcpy(a->tokens, tokens, (size_t)N * sizeof(int));
    m->B = B;
    m->T = T;
    encoder_forward(m, N);
    if (a->enc_mask) ops_dropout_forward(a->encoded, a->enc_mask, (size_t)N * C, m->dropout, &m->dropout_rng);
    const float *x = a->encoded;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        block_forward(m, l, x, B, T);
        x = a->layer[l].res3;
    }
    ops_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, m->p.lnf_w, m->p.lnf_b, N, C);
    head_forward(m, N);
    m->logits = m->cfg.head == GPT_HEAD_LM ? a->out : NULL;
    m->values = m->cfg.head == GPT_HEAD_SCALAR ? a->out : NULL;
    return 0;
}

/* log-sum-exp of a row, and optionally its softmax entropy. Float
 * exponentials in vectorised blocks of 256, each block's sums added into
 * doubles (the GPT-2 vocabulary has 50,257 terms per row). */
#define LSE_LANES 16
#define LSE_BLOCK 256
static float row_logsumexp(const float *z, int V, float *entropy) {
    float mxl[LSE_LANES];
    for (int l = 0; l < LSE_LANES; l++) mxl[l] = z[0];
    int i = 0;
    for (; i + LSE_LANES <= V; i += LSE_LANES)
        for (int l = 0; l < LSE_LANES; l++) mxl[l] = z[i + l] > mxl[l] ? z[i + l] : mxl[l];
    float mx = mxl[0];
    for (int l = 1; l < LSE_LANES; l++) mx = mxl[l] > mx ? mxl[l] : mx;
    for (; i < V; i++) mx = z[i] > mx ? z[i] : mx;
    double sum = 0.0, wsum = 0.0;
    for (int b = 0; b < V; b += LSE_BLOCK) {
        int e = b + LSE_BLOCK < V ? b + LSE_BLOCK : V, j = b;
        float s[LSE_LANES] = {0}, w[LSE_LANES] = {0};
        for (; j + LSE_LANES <= e; j += LSE_LANES)
            for (int l = 0; l < LSE_LANES; l++) {
                float d = z[j + l] - mx, x = ops_expf(d);
                s[l] += x;
                w[l] += x * d;
            }
        for (; j < e; j++) {
            float d = z[j] - mx, x = ops_expf(d);
            s[0] += x;
            w[0] += x * d;
        }
        for (int l = 0; l < LSE_LANES; l++) {
            sum += s[l];
            wsum += w[l];
        }
    }
    float lse = mx + (float)log(sum);
    if (entropy) *entropy = (float)(log(sum) - wsum / sum); /* H = lse - E[z] */
    return lse;
}

/* Rows of logits per pool chunk: a row of the GPT-2 vocabulary is ~50K
 * exponentials, a byte-vocabulary row ~260. */
static size_t logit_rows_grain(int V) { return V >= 4096 ? 1 : 4096 / V + 1; }

typedef struct {
    const Gpt *m;
    const int *targets;
    const float *dlogp, *dentropy;
    float *lse, *entropy, *logp;
} LogitRows;

static void lse_rows(void *ctx, size_t n0, size_t n1) {
    const LogitRows *r = ctx;
    int V = r->m->cfg.vocab_size;
    for (size_t n = n0; n < n1; n++) {
        const float *z = r->m->logits + n * V;
        float lse = row_logsumexp(z, V, r->entropy ? &r->entropy[n] : NULL);
        if (r->lse) r->lse[n] = lse;
        if (r->logp) r->logp[n] = r->targets[n] >= 0 ? z[r->targets[n]] - lse : 0.0f;
    }
}

void gpt_token_logprobs(const Gpt *m, const int *targets, float *logp, float *entropy) {
    int N = m->B * m->T;
    LogitRows r = {.m = m, .targets = targets, .entropy = entropy, .logp = logp};
    ops_parallel_for(N, logit_rows_grain(m->cfg.vocab_size), lse_rows, &r);
}

float gpt_ce_loss(const Gpt *m, const int *targets, const float *mask, float *dlogp) {
    int N = m->B * m->T, V = m->cfg.vocab_size;
    float *logp = err_malloc((size_t)N * sizeof(float));
    LogitRows r = {.m = m, .targets = targets, .logp = logp};
    ops_parallel_for(N, logit_rows_grain(V), lse_rows, &r);
    double total = 0.0, weight = 0.0;
    for (int n = 0; n < N; n++) {
        float w = targets[n] < 0 ? 0.0f : (mask ? mask[n] : 1.0f);
        if (w <= 0.0f) continue;
        total += w * -(double)logp[n];
        weight += w;
    }
    free(logp);
    if (dlogp)
        for (int n = 0; n < N; n++) {
            float w = targets[n] < 0 ? 0.0f : (mask ? mask[n] : 1.0f);
            dlogp[n] = (w > 0.0f && weight > 0) ? (float)(-w / weight) : 0.0f;
        }
    return weight > 0 ? (float)(total / weight) : 0.0f;
}

static void zero_range(void *ctx, size_t i0, size_t i1) { memset((float *)ctx + i0, 0, (i1 - i0) * sizeof(float)); }

void gpt_zero_grad(Gpt *m) { ops_parallel_for(m->n_params, 1 << 18, zero_range, m->grads); }

static void dlogits_rows(void *ctx, size_t n0, size_t n1) {
    const LogitRows *r = ctx;
    int V = r->m->cfg.vocab_size;
    for (size_t n = n0; n < n1; n++) {
        float *z = r->m->logits + n * V;
        float g = (r->dlogp && r->targets[n] >= 0) ? r->dlogp[n] : 0.0f;
        float ge = r->dentropy ? r->dentropy[n] : 0.0f;
        if (g == 0.0f && ge == 0.0f) {
            memset(z, 0, (size_t)V * sizeof(float));
            continue;
        }
        float H, lse = row_logsumexp(z, V, &H);
        for (int i = 0; i < V; i++) {
            float logp = z[i] - lse, p = ops_expf(logp);
            /* d logp_target/dz_i = 1[i=target] - p_i ; dH/dz_i = -p_i (log p_i + H) */
            z[i] = -g * p - ge * p * (logp + H);
        }
        if (r->targets[n] >= 0) z[r->targets[n]] += g;
    }
}

/* Turns the logits into dLoss/dlogits in place, row by row. */
static void lm_head_dlogits(Gpt *m, const int *targets, const float *dlogp,
                            const float *dentropy) {
    LogitRows r = {.m = m, .targets = targets, .dlogp = dlogp, .dentropy = dentropy};
    ops_parallel_for((size_t)m->B * m->T, logit_rows_grain(m->cfg.vocab_size), dlogits_rows, &r);
}

static void block_backward(Gpt *m, int l, const float *inp, int B, int T) {
    GptActs *a = m->acts;
    GptLayerActs *y = &a->layer[l];
    const GptLayer *w = &m->p.layer[l];
    GptLayer *g = &m->g.layer[l];
    int C = m->cfg.n_embd, N = B * T;
    size_t NC = (size_t)N * C;
    float p = m->dropout;
    /* res3 = res2 + drop(fcproj): dres flows to res2 unchanged */
    const float *dbranch = a->dres;
    if (y->fcproj_mask) {
        memcpy(a->dc1, a->dres, NC * sizeof(float));
        ops_dropout_backward(a->dc1, y->fcproj_mask, NC, p);
        dbranch = a->dc1;
    }
    ops_matmul_backward(a->d4c1, g->fcproj_w, g->fcproj_b, dbranch, y->fch_gelu, w->fcproj_w, N, 4 * C, C);
    ops_gelu_backward(a->d4c2, y->fch, a->d4c1, NC * 4);
    ops_matmul_backward(a->dc2, g->fc_w, g->fc_b, a->d4c2, y->ln2, w->fc_w, N, C, 4 * C);
    ops_layernorm_backward(a->dres, g->ln2_w, g->ln2_b, a->dc2, y->res2, w->ln2_w, y->ln2_mean, y->ln2_rstd, N, C);
    /* res2 = inp + drop(attproj) */
    dbranch = a->dres;
    if (y->attproj_mask) {
        memcpy(a->dc1, a->dres, NC * sizeof(float));
        ops_dropout_backward(a->dc1, y->attproj_mask, NC, p);
        dbranch = a->dc1;
    }
    ops_matmul_backward(a->dc2, g->attproj_w, g->attproj_b, dbranch, y->atty, w->attproj_w, N, C, C);
    ops_attention_backward(a->dqkv, a->dc2, y->qkv, y->att, y->att_mask, B, T, C,
                           m->cfg.n_head, p, a->tt1, a->tt2);
    ops_matmul_backward(a->dc1, g->qkv_w, g->qkv_b, a->dqkv, y->ln1, w->qkv_w, N, C, 3 * C);
    ops_layernorm_backward(a->dres, g->ln1_w, g->ln1_b, a->dc1, inp, w->ln1_w, y->ln1_mean, y->ln1_rstd, N, C);
}

/* wte and wpe gradients for channels [c0, c1). */
static void embedding_grads(void *ctx, size_t c0, size_t c1) {
    Gpt *m = ctx;
    const GptActs *a = m->acts;
    int N = m->B * m->T, T = m->T, C = m->cfg.n_embd;
    for (int n = 0; n < N; n++) {
        const float *d = a->dres + (size_t)n * C;
        float *gte = m->g.wte + (size_t)a->tokens[n] * C, *gpe = m->g.wpe + (size_t)(n % T) * C;
        for (size_t i = c0; i < c1; i++) {
            gte[i] += d[i];
            gpe[i] += d[i];
        }
    }
}

/* From dlnf (gradient at the final LayerNorm output) down to embeddings. */
static void trunk_backward(Gpt *m) {
    GptActs *a = m->acts;
    int B = m->B, T = m->T, N = B * T, C = m->cfg.n_embd, L = m->cfg.n_layer;
    memset(a->dres, 0, (size_t)N * C * sizeof(float));
    ops_layernorm_backward(a->dres, m->g.lnf_w, m->g.lnf_b, a->dlnf, a->layer[L - 1].res3,
                       m->p.lnf_w, a->lnf_mean, a->lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        block_backward(m, l, l ? a->layer[l - 1].res3 : a->encoded, B, T);
        if (m->grads_ready) m->grads_ready(m->grads_ready_ctx, l);
    }
    if (a->enc_mask) ops_dropout_backward(a->dres, a->enc_mask, (size_t)N * C, m->dropout);
    /* rows with the same token add into the same wte row: split channels,
     * not rows, so each element's sum keeps the row order */
    ops_parallel_for(C, (size_t)N * C < 65536 ? (size_t)C : 16, embedding_grads, m);
}

void gpt_backward_lm(Gpt *m, const int *targets, const float *dlogp, const float *dentropy) {
    GptActs *a = m->acts;
    int N = m->B * m->T, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    lm_head_dlogits(m, targets, dlogp, dentropy);
    /* logits = (lnf @ wte^T) / temp: dlnf = dlogits @ wte / temp ; dwte += dlogits^T @ lnf / temp */
    float s = 1.0f / m->temperature;
    ops_sgemm(0, 0, N, C, V, s, m->logits, V, m->p.wte, C, 0.0f, a->dlnf, C);
    ops_sgemm(1, 0, V, C, N, s, m->logits, V, a->lnf, C, 1.0f, m->g.wte, C);
    trunk_backward(m);
}

void gpt_backward_scalar(Gpt *m, const float *dvalues) {
    GptActs *a = m->acts;
    int N = m->B * m->T, C = m->cfg.n_embd;
    for (int n = 0; n < N; n++) {
        const float *x = a->lnf + (size_t)n * C;
        float *dx = a->dlnf + (size_t)n * C;
        float d = dvalues[n];
        for (int i = 0; i < C; i++) {
            dx[i] = d * m->p.score_w[i];
            m->g.score_w[i] += d * x[i];
        }
        m->g.score_b[0] += d;
    }
    trunk_backward(m);
}

void gpt_free(Gpt *m) {
    free(m->head_panels);
    free(m->layer_panels);
    free(m->params);
    free(m->grads);
    free(m->tensors);
    free(m->p.layer);
    free(m->g.layer);
    if (m->acts) {
        free(m->acts->base);
        free(m->acts->masks);
        free(m->acts->tokens);
        free(m->acts->layer);
        free(m->acts);
    }
    memset(m, 0, sizeof *m);
}

int gpt_score_last(Gpt *m, const int *const *tokens, const int *len, int n, float *scores) {
    if (m->cfg.head != GPT_HEAD_SCALAR) return err_set("scoring needs a scalar-head (reward) model");
    int T = 1;
    for (int i = 0; i < n; i++) {
        if (len[i] < 1 || len[i] > m->cfg.n_ctx)
            return err_set("sequence of %d tokens outside 1..%d (n_ctx)", len[i], m->cfg.n_ctx);
        T = len[i] > T ? len[i] : T;
    }
    int *packed = err_calloc((size_t)n * T, sizeof(int));
    for (int i = 0; i < n; i++) memcpy(packed + (size_t)i * T, tokens[i], len[i] * sizeof(int));
    int rc = gpt_forward(m, packed, n, T);
    for (int i = 0; i < n && !rc; i++) scores[i] = m->values[(size_t)i * T + len[i] - 1];
    free(packed);
    return rc;
}

/* ---- KV-cache inference ---------------------------------------------- */

/* Keys are cached transposed, channel by channel, each channel's row padded
 * to a multiple of 16 positions: a query's scores over the past are then a
 * vectorised product across positions (ops_matvec_t), and the padding keeps
 * its whole-vector loads inside the cache. Values stay position-major, so
 * each position's weighted add reads one contiguous run. */
static size_t kv_key_stride(int max_len) { return ((size_t)max_len + 15) & ~(size_t)15; }

int gpt_kv_init(GptKV *kv, const Gpt *m, int n_seq, int max_len) {
    memset(kv, 0, sizeof *kv);
    if (n_seq < 1) return err_set("kv cache: need at least one sequence");
    if (max_len < 1 || max_len > m->cfg.n_ctx)
        return err_set("kv cache: length %d outside 1..%d (n_ctx)", max_len, m->cfg.n_ctx);
    size_t per_seq = (size_t)m->cfg.n_layer * n_seq * m->cfg.n_embd, nk = 0, nv = 0;
    int big = err_mul_size(per_seq, kv_key_stride(max_len), &nk) || err_mul_size(per_seq, (size_t)max_len, &nv) ||
              err_mul_size(nk + nv, sizeof(float), NULL);
    kv->n_seq = n_seq;
    kv->max_len = max_len;
    kv->k = big ? NULL : calloc(nk, sizeof(float)); /* zeroed padding */
    kv->v = kv->k ? malloc(nv * sizeof(float)) : NULL;
    if (!kv->v) { /* sized by the batch and the length a user asked for: name them */
        char size[32] = "more than can be addressed";
        if (!big) err_format_bytes((double)(nk + nv) * sizeof(float), size, sizeof size);
        free(kv->k);
        memset(kv, 0, sizeof *kv);
        return err_set("kv cache for %d sequences x %d positions (n_layer %d, n_embd %d): %s; out of memory "
                       "(lower --batch)", n_seq, max_len, m->cfg.n_layer, m->cfg.n_embd, size);
    }
    kv->len = err_calloc(n_seq, sizeof(int));
    return 0;
}

void gpt_kv_copy(GptKV *kv, const Gpt *m, int dst, int src) {
    size_t C = (size_t)m->cfg.n_embd, ks = kv_key_stride(kv->max_len), len = (size_t)kv->len[src];
    for (int l = 0; l < m->cfg.n_layer; l++) {
        size_t a = (size_t)l * kv->n_seq + (size_t)dst, b = (size_t)l * kv->n_seq + (size_t)src;
        memcpy(kv->k + a * C * ks, kv->k + b * C * ks, C * ks * sizeof(float)); /* padding included: zeros */
        memcpy(kv->v + a * kv->max_len * C, kv->v + b * kv->max_len * C, len * C * sizeof(float));
    }
    kv->len[dst] = kv->len[src];
}

void gpt_kv_free(GptKV *kv) {
    free(kv->k);
    free(kv->v);
    free(kv->len);
    free(kv->scratch);
    memset(kv, 0, sizeof *kv);
}

typedef struct {
    float *x, *ln, *qkv, *atty, *tmp, *fch, *fch_gelu, *scores, *logits;
    int *pos, *rows;
} KVScratch;

/* The next n floats of the scratch block at *p; advances *p past them. */
static float *carve(float **p, size_t n) {
    float *start = *p;
    *p += n;
    return start;
}

/* Scratch for chunks of R rows and the positions of all n rows. */
static void kv_scratch(const Gpt *m, GptKV *kv, int R, int n, KVScratch *s) {
    size_t C = m->cfg.n_embd, V = m->cfg.vocab_size, NH = m->cfg.n_head;
    size_t ld = kv_key_stride(kv->max_len);
    size_t need = R * (C * 5 + 3 * C + 8 * C) + R * NH * ld + (size_t)R * V + (size_t)R + (size_t)n;
    if (need > kv->scratch_size) {
        free(kv->scratch);
        kv->scratch = err_malloc(need * sizeof(float));
        kv->scratch_size = need;
    }
    float *p = kv->scratch;
    s->x = carve(&p, R * C);
    s->ln = carve(&p, R * C);
    s->qkv = carve(&p, R * 3 * C);
    s->atty = carve(&p, R * C);
    s->tmp = carve(&p, R * C);
    s->fch = carve(&p, R * 4 * C);
    s->fch_gelu = carve(&p, R * 4 * C);
    s->scores = carve(&p, R * NH * ld); /* one row per (row, head): tasks run in parallel */
    s->logits = carve(&p, (size_t)R * V);
    s->rows = (int *)carve(&p, R);
    s->pos = (int *)p;
}

typedef struct {
    const Gpt *m;
    GptKV *kv;
    int l;
    const int *seq;
    KVScratch *s;
} KVAttention;

/* Attention of (row, head) pairs [t0, t1) over their sequences' caches. */
static void kv_attention_range(void *ctx, size_t t0, size_t t1) {
    const KVAttention *a = ctx;
    const GptKV *kv = a->kv;
    const KVScratch *s = a->s;
    int C = a->m->cfg.n_embd, NH = a->m->cfg.n_head, hs = C / NH;
    size_t ld = kv_key_stride(kv->max_len);
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t t = t0; t < t1; t++) {
        int i = (int)(t / NH), h = (int)(t % NH), n = s->pos[i] + 1;
        size_t cache = (size_t)a->l * kv->n_seq + a->seq[i];
        const float *q = s->qkv + (size_t)i * 3 * C + h * hs;
        const float *kt = kv->k + (cache * C + (size_t)h * hs) * ld;
        const float *v = kv->v + cache * kv->max_len * C + h * hs;
        float *sc = s->scores + t * ld, *y = s->atty + (size_t)i * C + h * hs;
        float mx = -INFINITY, sum = 0.0f;
        ops_matvec_t(sc, q, kt, hs, n, ld, scale);
        for (int j = 0; j < n; j++) mx = sc[j] > mx ? sc[j] : mx;
        for (int j = 0; j < n; j++) {
            sc[j] = ops_expf(sc[j] - mx);
            sum += sc[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++) sc[j] *= inv;
        ops_weighted_rows(y, sc, v, n, hs, C);
    }
}

/* Attention of each row over its sequence's cache at layer l. */
static void kv_attention(const Gpt *m, GptKV *kv, int l, const int *seq, int R, KVScratch *s) {
    KVAttention a = {.m = m, .kv = kv, .l = l, .seq = seq, .s = s};
    size_t work = 0, tasks = (size_t)R * m->cfg.n_head;
    for (int i = 0; i < R; i++) work += (size_t)(s->pos[i] + 1) * m->cfg.n_embd;
    /* ~2 multiply-adds per cached float, but read from memory: the head has
     * streamed the cache out of L3 since the last step, so from a few
     * thousand floats two threads' bandwidth pays for the hand-off (8 rows,
     * 4 layers, ~60 positions: 265 -> 126 us a step) */
    ops_parallel_for(tasks, work < (1 << 13) ? tasks : 1, kv_attention_range, &a);
}

/* A layer's packed matrices, in kv_block's order. */
enum { LAYER_QKV, LAYER_ATTPROJ, LAYER_FC, LAYER_FCPROJ, LAYER_MATRICES };

static void layer_matrix_shape(int C, int which, int *in, int *out) {
    static const int in_mult[LAYER_MATRICES] = {[LAYER_QKV] = 1, [LAYER_ATTPROJ] = 1, [LAYER_FC] = 1, [LAYER_FCPROJ] = 4};
    static const int out_mult[LAYER_MATRICES] = {[LAYER_QKV] = 3, [LAYER_ATTPROJ] = 1, [LAYER_FC] = 4, [LAYER_FCPROJ] = 1};
    *in = in_mult[which] * C;
    *out = out_mult[which] * C;
}

static size_t layer_panels_offset(int C, int l, int which) {
    size_t per_layer = 0, before = 0;
    for (int i = 0; i < LAYER_MATRICES; i++) {
        int in, out;
        layer_matrix_shape(C, i, &in, &out);
        if (i < which) before += ops_column_panels_size(in, out);
        per_layer += ops_column_panels_size(in, out);
    }
    return (size_t)l * per_layer + before;
}

static const float *layer_matrix(const GptLayer *w, int which) {
    const float *m[LAYER_MATRICES] = {[LAYER_QKV] = w->qkv_w, [LAYER_ATTPROJ] = w->attproj_w,
                                      [LAYER_FC] = w->fc_w, [LAYER_FCPROJ] = w->fcproj_w};
    return m[which];
}

void gpt_pack_decode(Gpt *m) {
    int C = m->cfg.n_embd, L = m->cfg.n_layer;
    if (m->cfg.head == GPT_HEAD_LM) {
        if (!m->head_panels)
            m->head_panels = err_malloc(ops_panels_size(m->cfg.vocab_size, C) * sizeof(float));
        ops_pack_panels(m->head_panels, m->p.wte, m->cfg.vocab_size, C);
    }
    if (!m->layer_panels) m->layer_panels = err_malloc(layer_panels_offset(C, L, 0) * sizeof(float));
    for (int l = 0; l < L; l++)
        for (int i = 0; i < LAYER_MATRICES; i++) {
            int in, out;
            layer_matrix_shape(C, i, &in, &out);
            ops_pack_columns(m->layer_panels + layer_panels_offset(C, l, i), layer_matrix(&m->p.layer[l], i), in, out);
        }
}

/* out = inp @ (layer l's matrix `which`) + b, from the packed panels when
 * there are (the same bits either way). */
static void kv_matmul(const Gpt *m, int l, int which, float *out, const float *inp, const float *b, int R) {
    int in, n_out;
    layer_matrix_shape(m->cfg.n_embd, which, &in, &n_out);
    if (m->layer_panels) {
        const float *panels = m->layer_panels + layer_panels_offset(m->cfg.n_embd, l, which);
        ops_matmul_forward_panels(out, inp, panels, b, R, in, n_out);
        return;
    }
    ops_matmul_forward(out, inp, layer_matrix(&m->p.layer[l], which), b, R, in, n_out);
}

static void kv_block(const Gpt *m, GptKV *kv, int l, const int *seq, int R, KVScratch *s) {
    const GptLayer *w = &m->p.layer[l];
    int C = m->cfg.n_embd;
    ops_layernorm_forward(s->ln, NULL, NULL, s->x, w->ln1_w, w->ln1_b, R, C);
    kv_matmul(m, l, LAYER_QKV, s->qkv, s->ln, w->qkv_b, R);
    size_t ld = kv_key_stride(kv->max_len);
    for (int i = 0; i < R; i++) {
        size_t cache = (size_t)l * kv->n_seq + seq[i];
        const float *k = s->qkv + (size_t)i * 3 * C + C;
        float *kt = kv->k + cache * C * ld + s->pos[i];
        for (int c = 0; c < C; c++) kt[c * ld] = k[c];
        memcpy(kv->v + (cache * kv->max_len + s->pos[i]) * C, k + C, C * sizeof(float));
    }
    kv_attention(m, kv, l, seq, R, s);
    kv_matmul(m, l, LAYER_ATTPROJ, s->tmp, s->atty, w->attproj_b, R);
    ops_residual_forward(s->x, s->x, s->tmp, (size_t)R * C);
    ops_layernorm_forward(s->ln, NULL, NULL, s->x, w->ln2_w, w->ln2_b, R, C);
    kv_matmul(m, l, LAYER_FC, s->fch, s->ln, w->fc_b, R);
    ops_gelu_forward(s->fch_gelu, s->fch, (size_t)R * 4 * C);
    kv_matmul(m, l, LAYER_FCPROJ, s->tmp, s->fch_gelu, w->fcproj_b, R);
    ops_residual_forward(s->x, s->x, s->tmp, (size_t)R * C);
}


/* Final LayerNorm and head for the wanted rows only. */
static void kv_head(const Gpt *m, int R, const unsigned char *want, float *out, size_t out_stride,
                    KVScratch *s) {
    int C = m->cfg.n_embd, V = m->cfg.vocab_size, W = 0;
    for (int i = 0; i < R; i++)
        if (!want || want[i]) {
            memcpy(s->tmp + (size_t)W * C, s->x + (size_t)i * C, C * sizeof(float));
            s->rows[W++] = i;
        }
    if (!W) return;
    ops_layernorm_forward(s->ln, NULL, NULL, s->tmp, m->p.lnf_w, m->p.lnf_b, W, C);
    if (m->cfg.head == GPT_HEAD_SCALAR) {
        for (int r = 0; r < W; r++) {
            float v = m->p.score_b[0];
            for (int i = 0; i < C; i++) v += s->ln[(size_t)r * C + i] * m->p.score_w[i];
            out[(size_t)s->rows[r] * out_stride] = v;
        }
        return;
    }
    const float *panels = m->head_panels; /* one path per model, whatever W (batch invariance) */
    if (panels) {
        if (W == R) {
            ops_matmul_panels(out, out_stride, s->ln, panels, W, C, V);
            return;
        }
        ops_matmul_panels(s->logits, V, s->ln, panels, W, C, V);
    } else if (W == R && out_stride == (size_t)V) { /* every row, packed: no copy */
        ops_matmul_nt(out, s->ln, m->p.wte, W, C, V);
        return;
    } else {
        ops_matmul_nt(s->logits, s->ln, m->p.wte, W, C, V);
    }
    for (int r = 0; r < W; r++)
        memcpy(out + (size_t)s->rows[r] * out_stride, s->logits + (size_t)r * V, V * sizeof(float));
}

int gpt_forward_cached(const Gpt *m, GptKV *kv, const int *tokens, const int *seq,
                       int n_rows, const unsigned char *want, float *out, size_t out_stride) {
    int C = m->cfg.n_embd;
    KVScratch s;
    if (n_rows < 1) return 0;
    kv_scratch(m, kv, n_rows < OPS_FEW_ROWS ? n_rows : OPS_FEW_ROWS, n_rows, &s);
    for (int i = 0; i < n_rows; i++) {
        if (seq[i] < 0 || seq[i] >= kv->n_seq)
            return err_set("kv cache: sequence %d outside 0..%d", seq[i], kv->n_seq - 1);
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return err_set("token id %d outside the vocabulary (0..%d)", tokens[i], m->cfg.vocab_size - 1);
        s.pos[i] = kv->len[seq[i]]++;
    }
    for (int i = 0; i < n_rows; i++)
        if (s.pos[i] >= kv->max_len) {
            for (int j = 0; j < n_rows; j++) kv->len[seq[j]]--; /* undo */
            return err_set("kv cache: sequence %d is full (%d positions)", seq[i], kv->max_len);
        }
    /* a chunk's rows see the cache rows earlier chunks wrote: causal, as in one call */
    int *pos = s.pos;
    for (int c0 = 0; c0 < n_rows; c0 += OPS_FEW_ROWS) {
        int R = n_rows - c0 < OPS_FEW_ROWS ? n_rows - c0 : OPS_FEW_ROWS;
        s.pos = pos + c0;
        for (int i = 0; i < R; i++) {
            const float *te = m->p.wte + (size_t)tokens[c0 + i] * C, *pe = m->p.wpe + (size_t)s.pos[i] * C;
            for (int c = 0; c < C; c++) s.x[(size_t)i * C + c] = te[c] + pe[c];
        }
        for (int l = 0; l < m->cfg.n_layer; l++) kv_block(m, kv, l, seq + c0, R, &s);
        kv_head(m, R, want ? want + c0 : NULL, out + (size_t)c0 * out_stride, out_stride, &s);
    }
    return 0;
}

/* ---- loading checks -------------------------------------------------------------- */

int gpt_check_finite(const Gpt *layout, const float *buf) {
    for (int i = 0; i < layout->n_tensors; i++) {
        const GptTensor *t = &layout->tensors[i];
        const float *v = buf + t->offset;
        for (size_t k = 0; k < t->size; k++)
            if (!isfinite(v[k]))
                return err_set("tensor %s holds %s at element %zu; every value must be finite", t->name,
                               isnan(v[k]) ? "NaN" : v[k] > 0 ? "Inf" : "-Inf", k);
    }
    return 0;
}
