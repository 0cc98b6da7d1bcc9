/* ops — the tensor kernels of the transformer, forward and backward:
 * linear layers on cblas_sgemm, LayerNorm, GELU (tanh), residual add,
 * dropout, and causal multi-head attention. Row-major float32; weights use
 * the (in, out) layout of Hugging Face's Conv1D. Backward functions that
 * take parameter gradients accumulate into them (+=), so gradients can be
 * accumulated over micro-batches; see each function for its input gradient. */
#include "common/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>


/* out (N, OC) = inp (N, C) @ w (C, OC) + b */
/* Few rows (token-by-token decoding): stream each weight row once and use
 * it for every input row. sgemm would first pack the whole weight matrix,
 * which costs more than the product itself at this size. */
static void matmul_few_rows(float *out, const float *inp, const float *w, int N, int C, int OC) {
    int k = 0;
    for (; k + 4 <= C; k += 4) { /* four weight rows per pass: 4x less traffic on out */
        const float *w0 = w + (size_t)k * OC, *w1 = w0 + OC, *w2 = w1 + OC, *w3 = w2 + OC;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C + k;
            float x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3], *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++) o[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j];
        }
    }
    for (; k < C; k++) {
        const float *wk = w + (size_t)k * OC;
        for (int n = 0; n < N; n++) {
            float x = inp[(size_t)n * C + k], *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++) o[j] += x * wk[j];
        }
    }
}

void ops_matmul_forward(float *out, const float *inp, const float *w,
                        const float *b, int N, int C, int OC) {
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, OC * sizeof(float));
    if (N <= OPS_FEW_ROWS) {
        matmul_few_rows(out, inp, w, N, C, OC);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, C, 1.0f,
                inp, C, w, OC, 1.0f, out, OC);
}

/* dot product with 16 independent partial sums, so it vectorises */
static float dot16(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

void ops_matmul_nt(float *out, const float *inp, const float *w, int N, int C, int OC) {
    if (N > OPS_FEW_ROWS) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
        return;
    }
    for (int j = 0; j < OC; j++) {
        const float *wj = w + (size_t)j * C;
        for (int n = 0; n < N; n++) out[(size_t)n * OC + j] = dot16(inp + (size_t)n * C, wj, C);
    }
}

float ops_dot(const float *a, const float *b, int n) { return dot16(a, b, n); }

/* dinp (N, C) = dout @ w^T (overwrites); dw += inp^T @ dout; db += sum dout */
void ops_matmul_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, C, OC, 1.0f,
                dout, OC, w, OC, 0.0f, dinp, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, N, 1.0f,
                inp, C, dout, OC, 1.0f, dw, OC);
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        for (int o = 0; o < OC; o++) db[o] += d[o];
    }
}

void ops_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0.0f, v = 0.0f;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        float s = 1.0f / sqrtf(v / C + 1e-5f);
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
        if (mean) mean[n] = m, rstd[n] = s;
    }
}

/* dinp += layernorm backward; dw, db accumulate. */
void ops_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float m = mean[n], s = rstd[n], dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = w[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float *dx = dinp + (size_t)n * C;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = w[i] * d[i];
            db[i] += d[i];
            dw[i] += norm * d[i];
            dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

void ops_gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + ops_tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

/* dinp = dout * gelu'(inp) (overwrites) */
void ops_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], u = GELU_SCALE * (x + 0.044715f * x * x * x);
        float t = ops_tanhf(u), sech2 = 1.0f - t * t;
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * x * sech2 * du);
    }
}

void ops_residual_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* Dropout with inverted scaling; mask records kept elements (1) for backward. */
void ops_dropout_forward(float *x, unsigned char *mask, size_t n, float p, Rng *r) {
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        mask[i] = rng_uniform(r) >= p;
        x[i] = mask[i] ? x[i] * scale : 0.0f;
    }
}

void ops_dropout_backward(float *dx, const unsigned char *mask, size_t n, float p) {
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) dx[i] = mask[i] ? dx[i] * scale : 0.0f;
}


/* Row-wise causal softmax of S (T, T) in place: row t keeps columns 0..t. */
static void causal_softmax(float *S, int T) {
    for (int t = 0; t < T; t++) {
        float *row = S + (size_t)t * T, mx = row[0], sum = 0.0f;
        for (int j = 1; j <= t; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j <= t; j++) row[j] = ops_expf(row[j] - mx), sum += row[j];
        float inv = 1.0f / sum;
        for (int j = 0; j <= t; j++) row[j] *= inv;
        for (int j = t + 1; j < T; j++) row[j] = 0.0f;
    }
}

/* atty (B*T, C) from qkv (B*T, 3C); att keeps the softmax probabilities
 * (B, NH, T, T). With dropout, the dropped probabilities go through pd. */
void ops_attention_forward(float *atty, float *att, unsigned char *att_mask,
                           const float *qkv, int B, int T, int C, int NH, float p,
                           Rng *rng, float *pd) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * hs;
            const float *k = q + C, *v = q + 2 * C;
            float *P = att + ((size_t)b * NH + h) * T * T;
            float *out = atty + (size_t)b * T * C + h * hs;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale,
                        q, C3, k, C3, 0.0f, P, T);
            causal_softmax(P, T);
            const float *Puse = P;
            if (att_mask) {
                memcpy(pd, P, (size_t)T * T * sizeof(float));
                ops_dropout_forward(pd, att_mask + ((size_t)b * NH + h) * T * T,
                                (size_t)T * T, p, rng);
                Puse = pd;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f,
                        Puse, T, v, C3, 0.0f, out, C);
        }
    }
}

/* dqkv (overwritten) from datty; dP and pd are (T, T) scratch. */
void ops_attention_backward(float *dqkv, const float *datty, const float *qkv,
                            const float *att, const unsigned char *att_mask, int B,
                            int T, int C, int NH, float p, float *dP, float *pd) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t row0 = (size_t)b * T;
            const float *q = qkv + row0 * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + row0 * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            const float *P = att + ((size_t)b * NH + h) * T * T;
            const float *dout = datty + row0 * C + h * hs;
            const unsigned char *mask = att_mask ? att_mask + ((size_t)b * NH + h) * T * T : NULL;
            const float *Puse = P;
            if (mask) {
                float s = 1.0f / (1.0f - p);
                for (size_t i = 0; i < (size_t)T * T; i++) pd[i] = mask[i] ? P[i] * s : 0.0f;
                Puse = pd;
            }
            /* dP = dout @ v^T ; dv = Puse^T @ dout */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f,
                        dout, C, v, C3, 0.0f, dP, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f,
                        Puse, T, dout, C, 0.0f, dv, C3);
            if (mask) ops_dropout_backward(dP, mask, (size_t)T * T, p);
            /* softmax backward: dS = P * (dP - sum_j P dP), causal part only */
            for (int t = 0; t < T; t++) {
                const float *pr = P + (size_t)t * T;
                float *dr = dP + (size_t)t * T, dot = 0.0f;
                for (int j = 0; j <= t; j++) dot += pr[j] * dr[j];
                for (int j = 0; j <= t; j++) dr[j] = pr[j] * (dr[j] - dot);
                for (int j = t + 1; j < T; j++) dr[j] = 0.0f;
            }
            /* S = scale q k^T: dq = scale dS k ; dk = scale dS^T q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale,
                        dP, T, k, C3, 0.0f, dq, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale,
                        dP, T, q, C3, 0.0f, dk, C3);
        }
    }
}

