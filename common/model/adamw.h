/* adamw — the AdamW optimizer (decoupled weight decay, as torch.optim.AdamW)
 * over a model's flat parameter buffer, weight decay only on the tensors the
 * model marks as matrices; global gradient-norm clipping; and the learning
 * rate schedule: linear warm-up, then cosine decay to a floor. */
#ifndef ADAMW_H
#define ADAMW_H

#include <stddef.h>
#include <stdint.h>

#include "common/model/gpt.h"

typedef struct {
    float lr;            /* peak learning rate */
    float beta1, beta2, eps;
    float weight_decay;  /* applied to tensors with decay = 1 */
    float grad_clip;     /* max global gradient norm; 0 = off */
    int64_t warmup_steps;
    int64_t total_steps; /* cosine reaches lr_min here; 0 = constant after warm-up */
    float lr_min;        /* floor of the cosine decay */
} AdamWConfig;

typedef struct {
    AdamWConfig cfg;
    size_t n;
    float *m, *v;        /* first and second moments, same layout as params */
    int64_t step;        /* steps taken so far */
} AdamW;

/* Defaults: lr 3e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1, clip 1.0. */
AdamWConfig adamw_default(void);
void adamw_init(AdamW *o, size_t n_params, const AdamWConfig *c);
void adamw_free(AdamW *o);
/* Learning rate for 0-based step number `step`. */
float adamw_lr_at(const AdamWConfig *c, int64_t step);
/* Scales grads so their global L2 norm is at most max_norm (torch's
 * clip_grad_norm_ rule); returns the norm before clipping. */
float adamw_clip_grad_norm(float *grads, size_t n, float max_norm);
/* One update of m's parameters from m->grads at the scheduled learning rate
 * (clipping first if configured). Returns the gradient norm before clipping. */
float adamw_step(AdamW *o, Gpt *m);

#endif
