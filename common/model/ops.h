/* ops — transformer kernels (forward and backward) used by gpt.c; exposed
 * so tests can check each against finite differences. Shapes: N rows
 * (batch x time), C channels; weights (in, out) as Hugging Face's Conv1D.
 * Every kernel runs on the calling thread plus a pool sized by OpenBLAS's
 * thread count (openblas_set_num_threads / OPENBLAS_NUM_THREADS set the
 * budget), with results independent of that count where the products are
 * this file's own (OPS_OWN_GEMM: AVX-512); elsewhere they are OpenBLAS's. */
#ifndef OPS_H
#define OPS_H

#include <stddef.h>
#include <string.h>

#include "common/rng.h"

/* exp(x) for float, branch-free so loops of it vectorise (glibc's expf does
 * not without -ffast-math; the Makefile's -fno-trapping-math lets the
 * clamps become vector blends). Cephes' polynomial after reduction by ln 2:
 * relative error ~2e-7 over the float range; clamps instead of overflowing. */
static inline float ops_expf(float x) {
    /* the exponent comes from a copy where NaN becomes a number (converting
     * NaN to int is undefined); x itself keeps a NaN so the result is NaN */
    float xn = x > -87.0f ? x : -87.0f;
    xn = xn < 88.0f ? xn : 88.0f;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float n = __builtin_rintf(xn * 1.44269504088896341f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int bits = ((int)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh(x) = 1 - 2 / (1 + exp(2x)), absolute error ~1e-7. */
static inline float ops_tanhf(float x) {
    x = x < -10.0f ? -10.0f : x;
    x = x > 10.0f ? 10.0f : x;
    return 1.0f - 2.0f / (1.0f + ops_expf(2.0f * x));
}

/* Threads the kernels use: OpenBLAS's thread count (the budget
 * the caller gave OpenBLAS), at least 1. */
int ops_threads(void);
/* fn(ctx, begin, end) over [0, n) cut into chunks of grain (the last may be
 * shorter), claimed by the calling thread and up to ops_threads() - 1
 * sleeping pool workers; returns when every chunk is done. Chunks depend
 * only on n and grain, so a loop whose chunks write disjoint outputs (or
 * per-chunk partial sums combined in order afterwards) gives the same
 * result whatever the threads and timing. Nested calls, and calls while
 * another thread's job runs, go through the same chunks serially. */
typedef void (*OpsRangeFn)(void *ctx, size_t begin, size_t end);
void ops_parallel_for(size_t n, size_t grain, OpsRangeFn fn, void *ctx);

#if defined(__AVX512F__)
#define OPS_OWN_GEMM 1
#else
#define OPS_OWN_GEMM 0
#endif
/* C (M x N) = alpha * op(A) @ op(B) + beta * C, row-major, with op(X) = X
 * or X^T as cblas_sgemm (CblasRowMajor); beta must be 0 or 1. Runs on the
 * pool with this file's AVX-512 tiles where available (same results on any
 * thread count), else on cblas_sgemm. */
void ops_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* Up to this many rows, products skip sgemm (see ops.c: matmul_few_rows). */
#define OPS_FEW_ROWS 16

/* out (N, OC) = inp (N, C) @ w (C, OC) + b (OC) */
void ops_matmul_forward(float *out, const float *inp, const float *w,
                        const float *b, int N, int C, int OC);
/* out (N, OC) = inp (N, C) @ w^T, w stored (OC, C) (the tied unembedding). */
void ops_matmul_nt(float *out, const float *inp, const float *w, int N, int C, int OC);
/* Batched decoding's unembedding: w (OC, C) packed once as w^T in panels
 * of OPS_PANEL columns (ops_panels_size floats), then
 * out (N, OC; row stride ldo) = inp (N, C) @ w^T for N <= OPS_FEW_ROWS. */
#if defined(__AVX512F__)
#define OPS_PANEL 48
#else
#define OPS_PANEL 24
#endif
size_t ops_panels_size(int OC, int C);
void ops_pack_panels(float *dst, const float *w, int OC, int C);
void ops_matmul_panels(float *out, size_t ldo, const float *inp, const float *panels, int N, int C, int OC);
/* The same for a layer's w (C, OC) as ops_matmul_forward takes it: packed
 * in column panels (ops_column_panels_size floats), then out (N, OC) =
 * inp (N, C) @ w + b for N <= OPS_FEW_ROWS, the same bits as
 * ops_matmul_forward. */
size_t ops_column_panels_size(int C, int OC);
void ops_pack_columns(float *dst, const float *w, int C, int OC);
void ops_matmul_forward_panels(float *out, const float *inp, const float *panels, const float *b, int N,
                               int C, int OC);
/* KV-cache attention pieces. out[j] = scale * sum_{d<D} x[d] * a[d*lda + j]
 * for j < n: scores of one query against keys stored transposed. Works in
 * whole vectors: every row of a and out must hold n rounded up to 16 floats
 * (lda >= that); out past n gets scratch values. */
void ops_matvec_t(float *out, const float *x, const float *a, int D, int n, size_t lda, float scale);
/* y[d] = sum_{j<n} p[j] * rows[j*ld + d] for d < D (overwritten). */
void ops_weighted_rows(float *y, const float *p, const float *rows, int n, int D, size_t ld);
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
 * dropout p on the probabilities. pd: (T, T) scratch, used only where
 * AVX-512 is missing (the tiled version keeps scratch per thread). */
void ops_attention_forward(float *atty, float *att, unsigned char *att_mask,
                           const float *qkv, int B, int T, int C, int NH, float p,
                           Rng *rng, float *pd);
/* dqkv (B*T, 3C) overwritten from datty. dP, pd: (T, T) scratch, used only
 * where AVX-512 is missing. */
void ops_attention_backward(float *dqkv, const float *datty, const float *qkv,
                            const float *att, const unsigned char *att_mask, int B,
                            int T, int C, int NH, float p, float *dP, float *pd);

#endif
