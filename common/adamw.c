/* adamw — AdamW, gradient clipping and the warm-up + cosine schedule; see
 * adamw.h. The update is written exactly as torch.optim.AdamW does it so the
 * PyTorch reference fixture can check it step for step. */
#include "common/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

AdamWConfig adamw_default(void) {
    AdamWConfig c = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0, 0, 0.0f};
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

float adamw_clip_grad_norm(float *grads, size_t n, float max_norm) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    float norm = (float)sqrt(sum);
    if (max_norm > 0.0f) {
        float coef = max_norm / (norm + 1e-6f);
        if (coef < 1.0f)
            for (size_t i = 0; i < n; i++) grads[i] *= coef;
    }
    return norm;
}

/* Updates one tensor's slice of parameters. */
static void update_slice(AdamW *o, float *p, const float *g, float *m, float *v,
                         size_t n, float lr, float decay, float bc1, float bc2) {
    const AdamWConfig *c = &o->cfg;
    for (size_t i = 0; i < n; i++) {
        m[i] = c->beta1 * m[i] + (1.0f - c->beta1) * g[i];
        v[i] = c->beta2 * v[i] + (1.0f - c->beta2) * g[i] * g[i];
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * decay * p[i];
        p[i] -= lr * mhat / (sqrtf(vhat) + c->eps);
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
        update_slice(o, m->params + x->offset, m->grads + x->offset, o->m + x->offset,
                     o->v + x->offset, x->size, lr, decay, bc1, bc2);
    }
    return norm;
}
