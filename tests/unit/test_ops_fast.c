/* Tests for the fast paths of common/model/ops.c: the thread pool (every index
 * once, nested calls, same bits on 1 and 2 threads), the register-tiled
 * few-row products at every row count and column tail against a
 * double-precision reference, ops_sgemm against cblas_sgemm, the KV-cache
 * attention pieces, and a whole training step on 1 and 2 threads. */
#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/model/gpt.h"
#include "common/model/ops.h"
#include "tests/harness.h"

static uint64_t st = 4242;
static float urand(void) {
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((st >> 40) / 16777216.0) * 2.0f - 1.0f;
}
static float *rvec(size_t n) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = urand();
    return x;
}

typedef struct {
    atomic_int *hits;
    size_t grain;
    int bad_bounds;
} Count;

static void count_range(void *ctx, size_t b, size_t e) {
    Count *c = ctx;
    if (b % c->grain || e <= b || e - b > c->grain) c->bad_bounds = 1;
    for (size_t i = b; i < e; i++) atomic_fetch_add(&c->hits[i], 1);
}

static void nested_range(void *ctx, size_t b, size_t e) {
    Count *c = ctx;
    for (size_t i = b; i < e; i++) {
        Count inner = {c->hits + i * 10, 3, 0};
        ops_parallel_for(10, 3, count_range, &inner); /* runs serially inside */
    }
}

TEST(ops_parallel_for_covers_each_index_once) {
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(2);
    size_t sizes[][2] = {{0, 4}, {1, 4}, {7, 1}, {100, 7}, {1000, 64}, {4096, 4096}, {5000, 3}};
    for (int s = 0; s < 7; s++) {
        size_t n = sizes[s][0];
        Count c = {calloc(n + 1, sizeof(atomic_int)), sizes[s][1], 0};
        for (int rep = 0; rep < 20; rep++) ops_parallel_for(n, c.grain, count_range, &c);
        int wrong = 0;
        for (size_t i = 0; i < n; i++) wrong += c.hits[i] != 20;
        CHECKF(!wrong && !c.bad_bounds && c.hits[n] == 0, "n %zu grain %zu: %d indices not hit 20 times",
               n, c.grain, wrong);
        free(c.hits);
    }
    Count outer = {calloc(50 * 10, sizeof(atomic_int)), 1, 0};
    ops_parallel_for(50, 1, nested_range, &outer);
    int wrong = 0;
    for (int i = 0; i < 500; i++) wrong += outer.hits[i] != 1;
    CHECKF(!wrong, "nested: %d indices not hit once", wrong);
    free(outer.hits);
    openblas_set_num_threads(saved);
}

/* max |a - ref| / (1 + |ref|) */
static double rel_err(const float *a, const double *ref, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(a[i] - ref[i]) / (1 + fabs(ref[i])));
    return e;
}

/* Few-row out = inp @ w + b against double sums, for every row count up to
 * OPS_FEW_ROWS and column counts with and without whole tiles. */
TEST(ops_few_row_tiles_match_double_reference) {
    int Cs[] = {5, 64}, OCs[] = {1, 17, 48, 200, 1000};
    double worst = 0;
    for (int ci = 0; ci < 2; ci++)
        for (int oi = 0; oi < 5; oi++)
            for (int N = 1; N <= OPS_FEW_ROWS; N++) {
                int C = Cs[ci], OC = OCs[oi];
                float *x = rvec((size_t)N * C), *w = rvec((size_t)C * OC), *b = rvec(OC);
                float *out = malloc(sizeof(float) * N * OC);
                double *ref = malloc(sizeof(double) * N * OC);
                for (int n = 0; n < N; n++)
                    for (int j = 0; j < OC; j++) {
                        double s = b[j];
                        for (int k = 0; k < C; k++) s += (double)x[n * C + k] * w[(size_t)k * OC + j];
                        ref[(size_t)n * OC + j] = s;
                    }
                ops_matmul_forward(out, x, w, b, N, C, OC);
                double e = rel_err(out, ref, (size_t)N * OC);
                if (e > 1e-5) CHECKF(0, "N %d C %d OC %d: relative error %.3g", N, C, OC, e);
                worst = fmax(worst, e);
                free(x), free(w), free(b), free(out), free(ref);
            }
    CHECKF(worst < 1e-5, "few-row tiles: worst relative error %.3g", worst);
}

TEST(ops_few_row_nt_matches_double_reference) {
    int Cs[] = {7, 64}, OCs[] = {1, 3, 7, 1000};
    double worst = 0;
    for (int ci = 0; ci < 2; ci++)
        for (int oi = 0; oi < 4; oi++)
            for (int N = 1; N <= OPS_FEW_ROWS; N++) {
                int C = Cs[ci], OC = OCs[oi];
                float *x = rvec((size_t)N * C), *w = rvec((size_t)OC * C), *out = malloc(sizeof(float) * N * OC);
                double *ref = malloc(sizeof(double) * N * OC);
                for (int n = 0; n < N; n++)
                    for (int j = 0; j < OC; j++) {
                        double s = 0;
                        for (int k = 0; k < C; k++) s += (double)x[n * C + k] * w[(size_t)j * C + k];
                        ref[(size_t)n * OC + j] = s;
                    }
                ops_matmul_nt(out, x, w, N, C, OC);
                double e = rel_err(out, ref, (size_t)N * OC);
                if (e > 1e-5) CHECKF(0, "nt N %d C %d OC %d: relative error %.3g", N, C, OC, e);
                worst = fmax(worst, e);
                free(x), free(w), free(out), free(ref);
            }
    CHECKF(worst < 1e-5, "few-row nt: worst relative error %.3g", worst);
}

/* The pool splits work, never the sums: 1 and 2 threads give the same bits. */
TEST(ops_few_row_products_same_bits_on_one_and_two_threads) {
    int saved = openblas_get_num_threads(), N = 8, C = 256, OC = 1024;
    float *x = rvec((size_t)N * C), *w = rvec((size_t)C * OC), *b = rvec(OC);
    float *o1 = malloc(sizeof(float) * N * OC), *o2 = malloc(sizeof(float) * N * OC);
    float *n1 = malloc(sizeof(float) * N * OC), *n2 = malloc(sizeof(float) * N * OC);
    openblas_set_num_threads(1);
    ops_matmul_forward(o1, x, w, b, N, C, OC);
    ops_matmul_nt(n1, x, w, N, C, OC);
    openblas_set_num_threads(2);
    ops_matmul_forward(o2, x, w, b, N, C, OC);
    ops_matmul_nt(n2, x, w, N, C, OC);
    CHECK(memcmp(o1, o2, sizeof(float) * N * OC) == 0);
    CHECK(memcmp(n1, n2, sizeof(float) * N * OC) == 0);
    openblas_set_num_threads(saved);
    free(x), free(w), free(b), free(o1), free(o2), free(n1), free(n2);
}

TEST(ops_kv_attention_pieces_match_reference) {
    double worst = 0;
    for (int n = 1; n <= 40; n++)
        for (int D = 1; D <= 64; D += 21) {
            size_t lda = (n + 15) / 16 * 16 + 16 * (n % 2); /* padded, sometimes more */
            float *a = rvec((size_t)D * lda), *x = rvec(D), *out = malloc(sizeof(float) * lda);
            ops_matvec_t(out, x, a, D, n, lda, 0.5f);
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)x[d] * a[(size_t)d * lda + j];
                worst = fmax(worst, fabs(out[j] - 0.5 * s));
            }
            free(a), free(x), free(out);
        }
    CHECKF(worst < 1e-5, "matvec_t: max error %.3g", worst);
    worst = 0;
    int Ds[] = {7, 16, 64, 130};
    for (int di = 0; di < 4; di++)
        for (int n = 1; n <= 33; n += 8) {
            int D = Ds[di];
            size_t ld = D + 3;
            float *rows = rvec(n * ld), *p = rvec(n), *y = malloc(sizeof(float) * D);
            ops_weighted_rows(y, p, rows, n, D, ld);
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int j = 0; j < n; j++) s += (double)p[j] * rows[j * ld + d];
                worst = fmax(worst, fabs(y[d] - s));
            }
            free(rows), free(p), free(y);
        }
    CHECKF(worst < 1e-5, "weighted_rows: max error %.3g", worst);
}

/* ops_sgemm against cblas_sgemm for every transpose pair, alpha, beta 0/1,
 * shapes with column tails, partial row tiles and several k blocks. */
TEST(ops_sgemm_matches_cblas) {
    int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {9, 17, 33}, {64, 48, 256}, {70, 200, 300}, {130, 257, 513}};
    double worst = 0;
    for (int s = 0; s < 6; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
                    float *A = rvec((size_t)(ta ? K : M) * lda), *B = rvec((size_t)(tb ? N : K) * ldb);
                    float *C1 = rvec((size_t)M * ldc), *C2 = malloc(sizeof(float) * M * ldc);
                    memcpy(C2, C1, sizeof(float) * M * ldc);
                    ops_sgemm(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, (float)beta, C1, ldc);
                    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                                N, K, 0.7f, A, lda, B, ldb, (float)beta, C2, ldc);
                    double e = 0;
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < ldc; j++) {
                            double d = fabs(C1[(size_t)i * ldc + j] - C2[(size_t)i * ldc + j]);
                            e = fmax(e, j < N ? d / (1 + sqrt((double)K)) : d); /* padding untouched */
                        }
                    if (e > 1e-5) CHECKF(0, "sgemm %dx%dx%d ta %d tb %d beta %d: error %.3g", M, N, K, ta, tb, beta, e);
                    worst = fmax(worst, e);
                    free(A), free(B), free(C1), free(C2);
                }
    CHECKF(worst < 1e-5, "ops_sgemm vs cblas: worst scaled error %.3g", worst);
}

TEST(ops_sgemm_same_bits_on_one_and_two_threads) {
    if (!OPS_OWN_GEMM) return; /* cblas_sgemm: OpenBLAS's own splits */
    int saved = openblas_get_num_threads(), M = 300, N = 200, K = 600;
    float *A = rvec((size_t)M * K), *B = rvec((size_t)N * K), *C1 = calloc((size_t)M * N, 4), *C2 = calloc((size_t)M * N, 4);
    openblas_set_num_threads(1);
    ops_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    openblas_set_num_threads(2);
    ops_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    openblas_set_num_threads(saved);
    free(A), free(B), free(C1), free(C2);
}

/* The transposes inside ops_sgemm (B^T) and attention: odd shapes, exact. */
TEST(ops_sgemm_transposed_b_exact_on_unit_vectors) {
    int M = 3, N = 37, K = 35; /* A = first rows of the identity: C = B^T rows */
    float *A = calloc((size_t)M * K, 4), *B = rvec((size_t)N * K), *Cm = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M; i++) A[i * K + i * 16] = 1.0f; /* rows 0, 16, 32 of B^T */
    ops_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, Cm, N);
    int wrong = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) wrong += Cm[i * N + j] != B[(size_t)j * K + i * 16];
    CHECKF(!wrong, "%d entries of B^T wrong", wrong);
    free(A), free(B), free(Cm);
}

/* A whole training step's outputs and gradients do not depend on the
 * thread count (the pool splits work, never a sum). */
TEST(gpt_step_same_bits_on_one_and_two_threads) {
    if (!OPS_OWN_GEMM) return; /* products on cblas_sgemm: OpenBLAS's own splits */
    GptConfig c = {.vocab_size = 300, .n_ctx = 64, .n_layer = 2, .n_head = 4, .n_embd = 64, .head = GPT_HEAD_LM};
    int saved = openblas_get_num_threads(), B = 4, T = 64, N = B * T;
    int *tok = malloc(sizeof(int) * N), *tgt = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tok[i] = (i * 37 + 5) % c.vocab_size, tgt[i] = (i * 11 + 2) % c.vocab_size;
    float *dlogp = malloc(sizeof(float) * N), *g1 = NULL, loss[2];
    Gpt m;
    gpt_init(&m, &c);
    gpt_init_random(&m, 7);
    for (int run = 0; run < 2; run++) {
        openblas_set_num_threads(run ? 2 : 1);
        gpt_forward(&m, tok, B, T);
        loss[run] = gpt_ce_loss(&m, tgt, NULL, dlogp);
        gpt_zero_grad(&m);
        gpt_backward_lm(&m, tgt, dlogp, NULL);
        if (!run) {
            g1 = malloc(sizeof(float) * m.n_params);
            memcpy(g1, m.grads, sizeof(float) * m.n_params);
        }
    }
    CHECKF(loss[0] == loss[1], "loss %.9g vs %.9g", loss[0], loss[1]);
    CHECK(memcmp(g1, m.grads, sizeof(float) * m.n_params) == 0);
    openblas_set_num_threads(saved);
    gpt_free(&m);
    free(tok), free(tgt), free(dlogp), free(g1);
}

/* Packed-panel unembedding against ops_matmul_nt's reference sums, with a
 * partial last panel and an output row stride wider than the columns. */
TEST(ops_panel_product_matches_reference) {
    int Ns[] = {4, 8, 11, 16}, OCs[] = {5, 48, 97, 1000}, C = 64;
    double worst = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            int N = Ns[a], OC = OCs[b];
            size_t ldo = OC + 7;
            float *x = rvec((size_t)N * C), *w = rvec((size_t)OC * C), *out = rvec(N * ldo);
            float *panels = malloc(ops_panels_size(OC, C) * sizeof(float)), *keep = malloc(sizeof(float) * N * ldo);
            memcpy(keep, out, sizeof(float) * N * ldo);
            ops_pack_panels(panels, w, OC, C);
            ops_matmul_panels(out, ldo, x, panels, N, C, OC);
            for (int n = 0; n < N; n++) {
                for (int j = 0; j < OC; j++) {
                    double s = 0;
                    for (int k = 0; k < C; k++) s += (double)x[n * C + k] * w[(size_t)j * C + k];
                    worst = fmax(worst, fabs(out[n * ldo + j] - s));
                }
                for (size_t j = OC; j < ldo; j++) CHECK(out[n * ldo + j] == keep[n * ldo + j]);
            }
            free(x), free(w), free(out), free(panels), free(keep);
        }
    CHECKF(worst < 1e-4, "panel product: max error %.3g", worst);
}

/* Packed layer matrices (column panels) against the unpacked few-row
 * product bit for bit (the decoding path may take either), and against a
 * float64 sum; partial last panels, inner sizes that are not whole vectors. */
TEST(ops_column_panels_equal_unpacked_product) {
    int OCs[] = {5, 24, 48, 97, 256}, Cs[] = {7, 64, 100};
    double worst = 0;
    for (int a = 0; a < 5; a++)
        for (int c = 0; c < 3; c++)
            for (int N = 1; N <= OPS_FEW_ROWS; N++) {
                int OC = OCs[a], C = Cs[c];
                float *x = rvec((size_t)N * C), *w = rvec((size_t)C * OC), *b = rvec(OC);
                float *o1 = malloc(sizeof(float) * N * OC), *o2 = malloc(sizeof(float) * N * OC);
                float *panels = malloc(ops_column_panels_size(C, OC) * sizeof(float));
                ops_pack_columns(panels, w, C, OC);
                ops_matmul_forward(o1, x, w, b, N, C, OC);
                ops_matmul_forward_panels(o2, x, panels, b, N, C, OC);
                CHECKF(memcmp(o1, o2, sizeof(float) * N * OC) == 0, "N %d C %d OC %d: packed != unpacked", N, C, OC);
                for (int n = 0; n < N; n++)
                    for (int j = 0; j < OC; j++) {
                        double s = b[j];
                        for (int k = 0; k < C; k++) s += (double)x[n * C + k] * w[(size_t)k * OC + j];
                        worst = fmax(worst, fabs(o2[n * OC + j] - s));
                    }
                free(x), free(w), free(b), free(o1), free(o2), free(panels);
            }
    CHECKF(worst < 1e-4, "column panels: max error %.3g", worst);
}
