/* ops — transformer kernels (forward and backward) used by gpt.c; exposed
 * so tests can check each against finite differences. Shapes: N rows
 * (batch x time), C channels; weights (in, out) as Hugging Face's Conv1D. */
#ifndef OPS_H
#define OPS_H

#include <stddef.h>

#include "common/rng.h"

/* out (N, OC) = inp (N, C) @ w (C, OC) + b (OC) */
void ops_matmul_forward(float *out, const float *inp, const float *w,
                        const float *b, int N, int C, int OC);
/* dinp = dout @ w^T (overwritten); dw += inp^T @ dout; db += column sums. */
void ops_matmul_backward(float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC);
/* LayerNorm over C with eps 1e-5; mean/rstd (N) saved for backward, may be
 * NULL (both) at inference. */
void ops_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int N, int C);
/* dinp += ..., dw += ..., db += ... */
void ops_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int N, int C);
/* GELU, tanh approximation (GPT-2's "gelu_new"). */
void ops_gelu_forward(float *out, const float *inp, size_t n);
/* dinp = dout * gelu'(inp) (overwritten). */
void ops_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
void ops_residual_forward(float *out, const float *a, const float *b, size_t n);
/* Inverted dropout in place; mask[i] = 1 where x[i] was kept. */
void ops_dropout_forward(float *x, unsigned char *mask, size_t n, float p, Rng *r);
void ops_dropout_backward(float *dx, const unsigned char *mask, size_t n, float p);
/* Causal multi-head attention. qkv (B*T, 3C) holds q | k | v; atty (B*T, C)
 * gets the heads' outputs side by side; att (B, NH, T, T) keeps the softmax
 * probabilities for backward. att_mask (same shape) non-NULL turns on
 * dropout p on the probabilities. pd: (T, T) scratch. */
void ops_attention_forward(float *atty, float *att, unsigned char *att_mask,
                           const float *qkv, int B, int T, int C, int NH, float p,
                           Rng *rng, float *pd);
/* dqkv (B*T, 3C) overwritten from datty. dP, pd: (T, T) scratch. */
void ops_attention_backward(float *dqkv, const float *datty, const float *qkv,
                            const float *att, const unsigned char *att_mask, int B,
                            int T, int C, int NH, float p, float *dP, float *pd);

#endif
