/* adamw — AdamW, gradient clipping and the warm-up + cosine schedule; see
 * adamw.h. The update is written exactly as torch.optim.AdamW does it so the
 * PyTorch reference fixture can check it step for step. */
#include "common/model/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/model/ops.h"

/* Elements per chunk of the kernel threads' loops below: results depend on
 * the chunking only, never on the thread count. */
#define ADAMW_GRAIN 32768

AdamWConfig adamw_default(void) {
    AdamWConfig c = {.lr = 3e-4f,
                     .beta1 = 0.9f,
                     .beta2 = 0.95f,
                     .eps = 1e-8f,
                     .weight_decay = 0.1f,
                     .grad_clip = 1.0f,
                     .warmup_steps = 0,
                     .total_steps = 0,
                     .lr_min = 0.0f};
    return c;
}

void adamw_init(AdamW *o, size_t n_params, const AdamWConfig *c) {
    o->cfg = *c;
    o->n = n_params;
    o->m = err_calloc(n_params, sizeof(float));
    o->v = err_calloc(n_params, sizeof(float));
    o->step = 0;
}

void adamw_free(AdamW *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

float adamw_lr_at(const AdamWConfig *c, int64_t step) {
    if (step < c->warmup_steps) return c->lr * (float)(step + 1) / (float)c->warmup_steps;
    if (c->total_steps <= c->warmup_steps) return c->lr;
    double progress = (double)(step - c->warmup_steps) / (double)(c->total_steps - c->warmup_steps);
    if (progress > 1.0) progress = 1.0;
    return c->lr_min + 0.5f * (c->lr - c->lr_min) * (float)(1.0 + cos(M_PI * progress));
}

typedef struct {
    float *x;
    size_t n;
    double *partial; /* per chunk */
    float scale;
} AdamWRange;

/* sum of squares per chunk, in 8 double lanes (vectorises) */
static void sumsq_range(void *ctx, size_t c0, size_t c1) {
    AdamWRange *r = ctx;
    for (size_t c = c0; c < c1; c++) {
        size_t lo = c * ADAMW_GRAIN, hi = lo + ADAMW_GRAIN < r->n ? lo + ADAMW_GRAIN : r->n, i = lo;
        double lane[8] = {0};
        for (; i + 8 <= hi; i += 8)
            for (int j = 0; j < 8; j++) lane[j] += (double)r->x[i + j] * r->x[i + j];
        double sum = 0;
        for (; i < hi; i++) sum += (double)r->x[i] * r->x[i];
        for (int j = 0; j < 8; j++) sum += lane[j];
        r->partial[c] = sum;
    }
}

static void scale_range(void *ctx, size_t lo, size_t hi) {
    AdamWRange *r = ctx;
    for (size_t i = lo; i < hi; i++) r->x[i] *= r->scale;
}

float adamw_clip_grad_norm(float *grads, size_t n, float max_norm) {
    size_t chunks = (n + ADAMW_GRAIN - 1) / ADAMW_GRAIN;
    AdamWRange r = {.x = grads, .n = n, .scale = 1.0f,
                    .partial = err_malloc((chunks ? chunks : 1) * sizeof(double))};
    ops_parallel_for(chunks, 1, sumsq_range, &r);
    double sum = 0.0;
    for (size_t c = 0; c < chunks; c++) sum += r.partial[c]; /* in order */
    free(r.partial);
    float norm = (float)sqrt(sum);
    if (max_norm > 0.0f) {
        float coef = max_norm / (norm + 1e-6f);
        if (coef < 1.0f) {
            r.scale = coef;
            ops_parallel_for(n, ADAMW_GRAIN, scale_range, &r);
        }
    }
    return norm;
}

typedef struct {
    const AdamWConfig *c;
    float *p, *m, *v;
    const float *g;
    float lr, decay, bc1, bc2;
} AdamWSlice;

/* Updates elements [lo, hi) of one tensor's slice. */
static void update_range(void *ctx, size_t lo, size_t hi) {
    const AdamWSlice *s = ctx;
    /* in locals: stores to m, v, p could alias the struct, which would keep
     * the loop from vectorising */
    const float beta1 = s->c->beta1, beta2 = s->c->beta2, eps = s->c->eps;
    const float lr = s->lr, decay = s->decay, bc1 = s->bc1, bc2 = s->bc2;
    float *p = s->p, *m = s->m, *v = s->v;
    const float *g = s->g;
    for (size_t i = lo; i < hi; i++) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * decay * p[i];
        p[i] -= lr * mhat / (sqrtf(vhat) + eps);
    }
}

float adamw_step(AdamW *o, Gpt *m) {
    float norm = adamw_clip_grad_norm(m->grads, m->n_params, o->cfg.grad_clip);
    float lr = adamw_lr_at(&o->cfg, o->step);
    o->step++;
    float bc1 = 1.0f - powf(o->cfg.beta1, (float)o->step);
    float bc2 = 1.0f - powf(o->cfg.beta2, (float)o->step);
    for (int t = 0; t < m->n_tensors; t++) {
        const GptTensor *x = &m->tensors[t];
        float decay = x->decay ? o->cfg.weight_decay : 0.0f;
        AdamWSlice sl = {.c = &o->cfg,
                         .p = m->params + x->offset,
                         .m = o->m + x->offset,
                         .v = o->v + x->offset,
                         .g = m->grads + x->offset,
                         .lr = lr,
                         .decay = decay,
                         .bc1 = bc1,
                         .bc2 = bc2};
        ops_parallel_for(x->size, ADAMW_GRAIN, update_range, &sl);
    }
    return norm;
}
