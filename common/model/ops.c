/* ops — the tensor kernels of the transformer, forward and backward:
 * linear layers, LayerNorm, GELU (tanh), residual add, dropout, causal
 * multi-head attention, and the pieces of KV-cache decoding. Row-major
 * float32; weights use the (in, out) layout of Hugging Face's Conv1D.
 * Backward functions that take parameter gradients accumulate into them
 * (+=), so gradients can be accumulated over micro-batches; see each
 * function for its input gradient.
 *
 * Layout of this file: small-vector helpers; a thread pool that gives every
 * loop the caller's OpenBLAS thread budget; matrix products (ops_sgemm:
 * AVX-512 register tiles, cblas_sgemm without AVX-512); few-row products
 * for decoding (weights streamed once); the elementwise kernels; attention.
 * Work is split so that no sum depends on the thread count: same inputs,
 * same bits, on 1 or 2 threads. */
#include "common/model/ops.h"

#include "common/err.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif


/* ---- small vectors ----------------------------------------------------
 * GCC vector extensions, as wide as the machine's registers: 16 floats with
 * AVX-512, 8 otherwise. The Makefile's -std=c11 turns off contraction of
 * a*b+c into fused multiply-adds, so the hot loops ask for them explicitly. */
#if defined(__AVX512F__)
#define VL 16
#else
#define VL 8
#endif
typedef float vfloat __attribute__((vector_size(VL * sizeof(float))));

static inline vfloat vload(const float *p) {
    vfloat v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vfloat v) { memcpy(p, &v, sizeof v); }
static inline vfloat vsplat(float s) { return s - (vfloat){0}; }

/* a * b + c */
static inline vfloat vfma(vfloat a, vfloat b, vfloat c) {
#if defined(__AVX512F__)
    return (vfloat)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && VL == 8
    return (vfloat)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

/* ---- thread pool --------------------------------------------------------
 * Every kernel here runs on as many threads as OpenBLAS would use (the
 * caller's thread budget): the calling thread plus persistent workers that
 * sleep on a condition variable between jobs. A job is a range cut into
 * fixed chunks that the threads claim one at a time, so a worker that the
 * kernel schedules late (the cores are shared) only takes fewer chunks, and
 * the caller waits only for chunks that are running. Chunk boundaries do
 * not depend on timing, so a loop whose chunks write disjoint outputs gives
 * the same result on every run. A second application thread calling in
 * while a job runs gets its loop run serially instead of waiting. */
#define POOL_MAX 64

typedef struct {
    OpsRangeFn fn;
    void *ctx;
    size_t n, grain, chunks;
    uint32_t id;
} PoolJob;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    int workers;               /* started so far */
    int busy;                  /* a job is in flight */
    PoolJob job;               /* the current job (read under mu) */
    /* (job id << 32) | next unclaimed chunk: a worker still holding an old
     * job cannot claim a chunk of the next one */
    _Atomic uint64_t claim;
    atomic_size_t finished;    /* chunks of the current job done */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* Claims and runs chunks of job j until none is left. */
static void pool_run_chunks(const PoolJob *j) {
    uint64_t v = atomic_load_explicit(&pool.claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != j->id || (v & 0xffffffffu) >= j->chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        size_t begin = (size_t)(v & 0xffffffffu) * j->grain;
        j->fn(j->ctx, begin, begin + j->grain < j->n ? begin + j->grain : j->n);
        if (atomic_fetch_add_explicit(&pool.finished, 1, memory_order_acq_rel) + 1 == j->chunks) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
        v = atomic_load_explicit(&pool.claim, memory_order_acquire);
    }
}

/* Pause instructions a worker spends watching for the next job before it
 * sleeps (~40 us on this AMD machine; a pause takes 30-140 cycles by CPU
 * model, so up to ~200 us elsewhere). A decoding step posts a dozen jobs of
 * 10-100 us each a few microseconds apart; a worker that slept between them
 * was woken late (a futex wake-up on a busy machine takes tens of
 * microseconds) and the caller ran most chunks alone: 8-row steps of four
 * d=256 layers took as long on two threads as on one. Bounded, so an idle
 * worker sleeps. */
#define POOL_WORKER_SPIN 4096

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *pool_worker(void *arg) {
    (void)arg;
    uint32_t seen = 0;
    for (;;) {
        for (int spin = 0; spin < POOL_WORKER_SPIN; spin++) {
            if ((uint32_t)(atomic_load_explicit(&pool.claim, memory_order_acquire) >> 32) != seen) break;
            cpu_relax();
        }
        pthread_mutex_lock(&pool.mu);
        while (pool.job.id == seen) pthread_cond_wait(&pool.go, &pool.mu);
        PoolJob j = pool.job;
        seen = j.id;
        pthread_mutex_unlock(&pool.mu);
        pool_run_chunks(&j);
    }
    return NULL;
}

/* A forked child has none of the parent's workers. */
static void pool_after_fork(void) {
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.go, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.workers = pool.busy = 0;
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_register_fork(void) { pthread_atfork(NULL, NULL, pool_after_fork); }

/* Starts workers up to `want` - 1 (called with pool.mu held); returns how
 * many threads, the caller included, can take part. */
static int pool_grow(int want) {
    while (pool.workers < want - 1 && pool.workers < POOL_MAX - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, pool_worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc) break;
        pool.workers++;
    }
    return pool.workers + 1 < want ? pool.workers + 1 : want;
}

int ops_threads(void) {
    int n = openblas_get_num_threads();
    return n < 1 ? 1 : n > POOL_MAX ? POOL_MAX : n;
}

/* Pause instructions the caller spends watching for running chunks to end
 * before it sleeps (~20 us: a pause is ~40 cycles on recent x86). */
#define POOL_SPIN 2048

/* The same chunks, in order, on the calling thread. */
static void run_serial(size_t n, size_t grain, OpsRangeFn fn, void *ctx) {
    for (size_t b = 0; b < n; b += grain) fn(ctx, b, b + grain < n ? b + grain : n);
}

void ops_parallel_for(size_t n, size_t grain, OpsRangeFn fn, void *ctx) {
    if (grain < 1) grain = 1;
    size_t chunks = (n + grain - 1) / grain;
    int threads = ops_threads();
    if (chunks <= 1 || threads <= 1 || chunks > 0xffffffffu) {
        run_serial(n, grain, fn, ctx);
        return;
    }
    pthread_once(&pool_once, pool_register_fork);
    pthread_mutex_lock(&pool.mu);
    if (pool.busy || pool_grow(threads) <= 1) {
        pthread_mutex_unlock(&pool.mu);
        run_serial(n, grain, fn, ctx);
        return;
    }
    pool.busy = 1;
    uint32_t id = pool.job.id + 1 ? pool.job.id + 1 : 1; /* 0: no job yet */
    pool.job = (PoolJob){.fn = fn, .ctx = ctx, .n = n, .grain = grain, .chunks = chunks, .id = id};
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.claim, (uint64_t)id << 32, memory_order_release);
    pthread_cond_broadcast(&pool.go);
    PoolJob j = pool.job;
    pthread_mutex_unlock(&pool.mu);
    pool_run_chunks(&j);
    /* The chunks still out are running on a worker and end within
     * microseconds: watch for that briefly before sleeping, since a thread
     * that sleeps on a busy machine can wait a whole time slice to get its
     * core back. Bounded (~20 us), so no thread ever spins while idle. */
    for (int spin = 0; spin < POOL_SPIN && atomic_load_explicit(&pool.finished, memory_order_acquire) < chunks; spin++)
        cpu_relax();
    pthread_mutex_lock(&pool.mu);
    while (atomic_load_explicit(&pool.finished, memory_order_acquire) < chunks)
        pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = 0;
    pthread_mutex_unlock(&pool.mu);
}

/* Multiply-adds below which a product runs on one thread: waking a worker
 * costs ~5-10 us, the time of ~0.5M multiply-adds here. */
#define PARALLEL_MIN_FMA (1 << 20)

/* ---- matrix products -----------------------------------------------------
 * With AVX-512, products run on this file's own register tiles instead of
 * cblas_sgemm: OpenBLAS here is held to its Haswell (AVX2) kernels, which
 * reach ~120 GFLOP/s per core at the model's shapes, while 8x3 tiles of
 * 16-float vectors reach ~230 without any packing. C is cut into blocks of
 * GEMM_MB rows by GEMM_NB columns that the pool's threads claim; each
 * element is summed by one thread in a fixed order (k blocks of GEMM_KB),
 * so results do not depend on the thread count. Without AVX-512 the same
 * calls go to cblas_sgemm. */
#define GEMM_MB 128
#define GEMM_NB 192
#define GEMM_KB 256

#if VL == 16
typedef struct {
    float *c;
    size_t ldc;
    const float *a;
    size_t a_rs, a_ks; /* A(i, k) = a[i*a_rs + k*a_ks] */
    const float *b;
    size_t ldb;        /* B(k, j) = b[k*ldb + j - b_col0] */
    int M, N, K, add;
    float alpha;
    size_t col_blocks;
    int b_col0;        /* column of C that b's first column feeds */
    const float *bt;   /* transposed B (N x K, leading dimension ldbt), or NULL */
    size_t ldbt;
    int panel;         /* columns per chunk when B is transposed */
} Gemm;

/* C[r][v*VL + l] (+)= alpha * sum_k A(r, k) B(k, v*VL + l) for r < nr,
 * v < nv, lanes l in mask. */
static inline __attribute__((always_inline)) void gemm_tile(float *c, size_t ldc, const float *a,
                                                            size_t a_rs, size_t a_ks, const float *b,
                                                            size_t ldb, int K, int nr, int nv,
                                                            __mmask16 mask, float alpha, int add) {
    vfloat acc[8][3] = {{{0}}}, bv[3];
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * ldb;
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            bv[v] = nv == 1 ? (vfloat)_mm512_maskz_loadu_ps(mask, bk) : vload(bk + v * VL);
        const float *ak = a + (size_t)k * a_ks;
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            vfloat as = vsplat(ak[r * a_rs]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[r][v] = vfma(as, bv[v], acc[r][v]);
        }
    }
    vfloat al = vsplat(alpha);
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            float *cp = c + r * ldc + v * VL;
            if (nv == 1) {
                __m512 old = add ? _mm512_maskz_loadu_ps(mask, cp) : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(cp, mask, _mm512_fmadd_ps((__m512)acc[r][v], (__m512)al, old));
            } else {
                vstore(cp, add ? vfma(acc[r][v], al, vload(cp)) : acc[r][v] * al);
            }
        }
}

#define GEMM_ROWS(NV, MASK)                                                                  \
    for (int i = i0; i < i1; i += 8) {                                                       \
        const float *ai = g->a + (size_t)i * g->a_rs + (size_t)k0 * g->a_ks;                 \
        const float *bj = g->b + (size_t)k0 * g->ldb + (j - g->b_col0);                      \
        float *ci = g->c + (size_t)i * g->ldc + j;                                           \
        switch (i1 - i < 8 ? i1 - i : 8) {                                                   \
        case 1: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 1, NV, MASK, g->alpha, add); break; \
        case 2: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 2, NV, MASK, g->alpha, add); break; \
        case 3: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 3, NV, MASK, g->alpha, add); break; \
        case 4: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 4, NV, MASK, g->alpha, add); break; \
        case 5: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 5, NV, MASK, g->alpha, add); break; \
        case 6: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 6, NV, MASK, g->alpha, add); break; \
        case 7: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 7, NV, MASK, g->alpha, add); break; \
        default: gemm_tile(ci, g->ldc, ai, g->a_rs, g->a_ks, bj, g->ldb, kb, 8, NV, MASK, g->alpha, add); break; \
        }                                                                                    \
    }

/* Rows [i0, i1) x columns [j0, j1) of C over k in [k0, k0 + kb). */
static void gemm_block(const Gemm *g, int i0, int i1, int j0, int j1, int k0, int kb, int add) {
    int j = j0;
    for (; j + 3 * VL <= j1; j += 3 * VL) GEMM_ROWS(3, 0xffff)
    for (; j + VL <= j1; j += VL) GEMM_ROWS(1, 0xffff)
    if (j < j1) {
        __mmask16 tail = (__mmask16)((1u << (j1 - j)) - 1);
        GEMM_ROWS(1, tail)
    }
}
#undef GEMM_ROWS

static void gemm_range(void *ctx, size_t b0, size_t b1) {
    const Gemm *g = ctx;
    for (size_t blk = b0; blk < b1; blk++) {
        int i0 = (int)(blk / g->col_blocks) * GEMM_MB, j0 = (int)(blk % g->col_blocks) * GEMM_NB;
        int i1 = i0 + GEMM_MB < g->M ? i0 + GEMM_MB : g->M, j1 = j0 + GEMM_NB < g->N ? j0 + GEMM_NB : g->N;
        for (int k0 = 0; k0 < g->K; k0 += GEMM_KB)
            gemm_block(g, i0, i1, j0, j1, k0, g->K - k0 < GEMM_KB ? g->K - k0 : GEMM_KB, g->add || k0 > 0);
    }
}

/* 16x16 block: dst[j*ldd + i] = src[i*lds + j], in registers. */
static inline void transpose16(float *dst, size_t ldd, const float *src, size_t lds) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 16; i += 2) { /* 2x2 blocks of singles */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) /* 2x2 blocks of pairs */
        for (int k = 0; k < 2; k++) {
            r[i + k] = (__m512)_mm512_unpacklo_pd((__m512d)t[i + k], (__m512d)t[i + k + 2]);
            r[i + k + 2] = (__m512)_mm512_unpackhi_pd((__m512d)t[i + k], (__m512d)t[i + k + 2]);
        }
    for (int i = 0; i < 16; i += 8) /* 128-bit lanes */
        for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
    /* r[k] now holds column c(k) of the block: undo the lane interleaving */
    static const int col[16] = {0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15};
    for (int k = 0; k < 16; k++) _mm512_storeu_ps(dst + col[k] * ldd, r[k]);
}

/* dst (cols x rows) = src^T for source rows [r0, r1) (r0 a multiple of 16). */
static void transpose_rows(float *dst, const float *src, int rows, int cols, size_t lds, int r0, int r1) {
    int i0 = r0;
    for (; i0 + 16 <= r1; i0 += 16) {
        int j0 = 0;
        for (; j0 + 16 <= cols; j0 += 16) transpose16(dst + (size_t)j0 * rows + i0, rows, src + (size_t)i0 * lds + j0, lds);
        for (int i = i0; i < i0 + 16; i++)
            for (int j = j0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * lds + j];
    }
    for (int i = i0; i < r1; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * lds + j];
}

/* dst (cols x rows) = src^T, src (rows x cols) with leading dimension lds. */
static void transpose(float *dst, const float *src, int rows, int cols, size_t lds) {
    transpose_rows(dst, src, rows, cols, lds, 0, rows);
}

/* With B transposed (N x K), a chunk is a panel of columns over all rows:
 * the thread transposes its panel of B into scratch it keeps (K x panel
 * floats, in L2), then runs every row block against it. */
static _Thread_local float *panel_buf;
static _Thread_local size_t panel_size;

static void gemm_panels_range(void *ctx, size_t p0, size_t p1) {
    const Gemm *g0 = ctx;
    size_t need = (size_t)g0->K * g0->panel;
    if (need > panel_size) {
        free(panel_buf);
        panel_buf = err_malloc(need * sizeof(float));
        panel_size = need;
    }
    for (size_t p = p0; p < p1; p++) {
        int j0 = (int)p * g0->panel, j1 = j0 + g0->panel < g0->N ? j0 + g0->panel : g0->N;
        Gemm g = *g0;
        transpose(panel_buf, g0->bt + (size_t)j0 * g0->ldbt, j1 - j0, g0->K, g0->ldbt);
        g.b = panel_buf;
        g.ldb = (size_t)(j1 - j0);
        g.b_col0 = j0;
        for (int i0 = 0; i0 < g.M; i0 += GEMM_MB) {
            int i1 = i0 + GEMM_MB < g.M ? i0 + GEMM_MB : g.M;
            for (int k0 = 0; k0 < g.K; k0 += GEMM_KB)
                gemm_block(&g, i0, i1, j0, j1, k0, g.K - k0 < GEMM_KB ? g.K - k0 : GEMM_KB, g.add || k0 > 0);
        }
    }
}
#endif

void ops_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#if VL == 16
    /* b_col0, bt, ldbt, panel start at 0: bt and panel are set below when B is transposed */
    Gemm g = {.c = C, .ldc = (size_t)ldc,
              .a = A, .a_rs = trans_a ? 1 : (size_t)lda, .a_ks = trans_a ? (size_t)lda : 1,
              .b = B, .ldb = (size_t)ldb,
              .M = M, .N = N, .K = K, .add = beta != 0.0f, .alpha = alpha,
              .col_blocks = ((size_t)N + GEMM_NB - 1) / GEMM_NB};
    if (K <= 0) {
        if (!g.add)
            for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    int small = (double)M * N * K < PARALLEL_MIN_FMA;
    if (trans_b) { /* B is N x K: tiles want K x N, made panel by panel */
        int per = N / (3 * VL * 8); /* panels of 48..192 columns, >= ~8 of them */
        g.panel = 3 * VL * (per < 1 ? 1 : per > 4 ? 4 : per);
        g.bt = B;
        g.ldbt = (size_t)ldb;
        size_t panels = ((size_t)N + g.panel - 1) / g.panel;
        ops_parallel_for(panels, small ? panels : 1, gemm_panels_range, &g);
        return;
    }
    size_t blocks = ((size_t)M + GEMM_MB - 1) / GEMM_MB * g.col_blocks;
    ops_parallel_for(blocks, small ? blocks : 1, gemm_range, &g);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* ---- few-row products ----------------------------------------------------
 * Token-by-token decoding multiplies a handful of rows by each weight
 * matrix. sgemm would first pack the whole matrix, which costs more than
 * the product; these kernels stream the weights once instead, keeping a
 * tile of outputs (nr rows x nv vectors) in registers over the whole inner
 * dimension. Columns are split across the pool's threads. */

/* out[r][0..nv*VL) += sum_k x[r][k] * w[k][0..nv*VL) for r < nr. */
static inline __attribute__((always_inline)) void rows_tile(float *out, size_t ldo, const float *x,
                                                            size_t ldx, const float *w, size_t ldw,
                                                            int K, int nr, int nv) {
    vfloat acc[8][16] = {{{0}}}, wv[16]; /* only [nr][nv] used: registers */
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) acc[r][v] = vload(out + r * ldo + v * VL);
    for (int k = 0; k < K; k++) {
        const float *wk = w + (size_t)k * ldw;
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) wv[v] = vload(wk + v * VL);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            vfloat xs = vsplat(x[r * ldx + k]);
#pragma GCC unroll 16
            for (int v = 0; v < nv; v++) acc[r][v] = vfma(xs, wv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 16
        for (int v = 0; v < nv; v++) vstore(out + r * ldo + v * VL, acc[r][v]);
}

/* Register tiles: nr rows by nv vectors, 24 accumulators where possible
 * (of AVX-512's 32 registers) so each weight load feeds several rows.
 * Measured at d=256 on 8 rows: 8x3 reaches ~230 GFLOP/s on one core, 8x2
 * 190, 4x4 90; one row streams the weights at ~100 GB/s with 1x16. */
static int tile_vectors(int nr) { return nr == 1 ? 16 : nr == 2 ? 12 : nr == 3 ? 8 : nr == 4 ? 6 : nr <= 6 ? 4 : 3; }

/* All rows (in tiles of 8, then the rest) for columns [0, nv*VL): each
 * row count takes tiles of its own width, then tiles of 3 vectors, then
 * single vectors. The 3-vector tiles are the packed head's panels at a few
 * rows (OPS_PANEL is 3 vectors): as single vectors, one row's product was
 * one chain of dependent multiply-adds per vector, latency-bound below the
 * memory bandwidth (1 row, GPT-2 vocabulary, one AVX2 core: 5.3 ms, 3.3
 * with the 3-vector tiles). Any tile computes each output as the same
 * chain of multiply-adds over k, so results do not depend on the shape. */
#define TILE_CASE(NR, NV)                                                          \
    case NR: {                                                                     \
        int v = 0;                                                                 \
        for (; v + NV <= nv; v += NV)                                              \
            rows_tile(o + v * VL, ldo, xr, ldx, w + v * VL, ldw, K, NR, NV);       \
        if (NV > 3)                                                                \
            for (; v + 3 <= nv; v += 3) rows_tile(o + v * VL, ldo, xr, ldx, w + v * VL, ldw, K, NR, 3); \
        for (; v < nv; v++) rows_tile(o + v * VL, ldo, xr, ldx, w + v * VL, ldw, K, NR, 1); \
    } break;
static void rows_columns(float *out, size_t ldo, const float *x, size_t ldx, const float *w,
                         size_t ldw, int N, int K, int nv) {
    for (int r = 0; r < N; r += 8) {
        int nr = N - r < 8 ? N - r : 8;
        float *o = out + r * ldo;
        const float *xr = x + r * ldx;
        switch (nr) {
            TILE_CASE(1, 16) TILE_CASE(2, 12) TILE_CASE(3, 8) TILE_CASE(4, 6)
            TILE_CASE(5, 4) TILE_CASE(6, 4) TILE_CASE(7, 3) TILE_CASE(8, 3)
        }
    }
}
#undef TILE_CASE

/* out[r*ldo + j] += sum_k x[r*ldx + k] * w[k*ldw + j] for j < n, one column
 * at a time: the columns past the last whole vector. Unpacked and packed
 * products both end with it, so their bits agree there too. */
static void single_columns(float *out, size_t ldo, const float *x, size_t ldx, const float *w, size_t ldw, int N,
                           int K, size_t n) {
    for (size_t j = 0; j < n; j++)
        for (int r = 0; r < N; r++) {
            const float *xr = x + (size_t)r * ldx;
            float s = out[(size_t)r * ldo + j];
            for (int k = 0; k < K; k++) s += xr[k] * w[(size_t)k * ldw + j];
            out[(size_t)r * ldo + j] = s;
        }
}

typedef struct {
    float *out;
    const float *inp, *w;
    int N, C, OC;
} FewRows;

/* Columns [j0, j1) of out += inp @ w: whole tiles, one-vector tiles, then
 * single columns. */
static void few_rows_range(void *ctx, size_t j0, size_t j1) {
    const FewRows *f = ctx;
    int nv = tile_vectors(f->N < 8 ? f->N : 8);
    size_t j = j0;
    for (; j + (size_t)nv * VL <= j1; j += (size_t)nv * VL)
        rows_columns(f->out + j, f->OC, f->inp, f->C, f->w + j, f->OC, f->N, f->C, nv);
    for (; j + VL <= j1; j += VL)
        rows_columns(f->out + j, f->OC, f->inp, f->C, f->w + j, f->OC, f->N, f->C, 1);
    single_columns(f->out + j, f->OC, f->inp, f->C, f->w + j, f->OC, f->N, f->C, j1 - j);
}

/* out (N, OC) += inp (N, C) @ w (C, OC), N <= OPS_FEW_ROWS. */
static void matmul_few_rows(float *out, const float *inp, const float *w, int N, int C, int OC) {
    FewRows f = {.out = out, .inp = inp, .w = w, .N = N, .C = C, .OC = OC};
    size_t grain = (size_t)tile_vectors(N < 8 ? N : 8) * VL;
    /* Below ~8 rows the product streams w from L3 at one core's bandwidth,
     * but splitting it measured slower (gen b1 at load ~2: 4,000 vs 5,000
     * tokens/s): the second core is rarely free for the ~10 us a product
     * takes. */
    if ((size_t)N * C * OC < PARALLEL_MIN_FMA) grain = OC;
    ops_parallel_for(OC, grain, few_rows_range, &f);
}

void ops_matmul_forward(float *out, const float *inp, const float *w,
                        const float *b, int N, int C, int OC) {
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, OC * sizeof(float));
    if (N <= OPS_FEW_ROWS) {
        matmul_few_rows(out, inp, w, N, C, OC);
        return;
    }
    ops_sgemm(0, 0, N, OC, C, 1.0f, inp, C, w, OC, 1.0f, out, OC);
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

/* ---- packed unembedding for batched decoding ----------------------------
 * out = inp @ w^T with w (OC, C) row-major needs a dot product (and a sum
 * across lanes) per output; with w^T packed in panels of OPS_PANEL columns
 * (C x OPS_PANEL each, contiguous) it becomes the broadcast tiles above,
 * streaming the matrix once: ~3.5x faster at 8 rows and the GPT-2
 * vocabulary (1.8 vs 6.5 ms per step here). */
size_t ops_panels_size(int OC, int C) { return (size_t)(OC + OPS_PANEL - 1) / OPS_PANEL * OPS_PANEL * C; }

typedef struct {
    float *dst;
    const float *w;
    int OC, C;
} Pack;

static void pack_range(void *ctx, size_t p0, size_t p1) {
    const Pack *pk = ctx;
    for (size_t p = p0; p < p1; p++) {
        float *d = pk->dst + p * OPS_PANEL * pk->C;
        for (int j = 0; j < OPS_PANEL; j++) {
            size_t row = p * OPS_PANEL + j;
            for (int k = 0; k < pk->C; k++)
                d[(size_t)k * OPS_PANEL + j] = row < (size_t)pk->OC ? pk->w[row * pk->C + k] : 0.0f;
        }
    }
}

void ops_pack_panels(float *dst, const float *w, int OC, int C) {
    Pack pk = {.dst = dst, .w = w, .OC = OC, .C = C};
    size_t panels = ops_panels_size(OC, C) / ((size_t)OPS_PANEL * C);
    ops_parallel_for(panels, 16, pack_range, &pk);
}

typedef struct {
    float *out;
    size_t ldo;
    const float *inp, *panels;
    int N, C, OC;
} PanelProduct;

static void panels_range(void *ctx, size_t p0, size_t p1) {
    const PanelProduct *f = ctx;
    float tmp[OPS_FEW_ROWS * OPS_PANEL];
    for (size_t p = p0; p < p1; p++) {
        const float *w = f->panels + p * OPS_PANEL * f->C;
        size_t j = p * OPS_PANEL;
        int full = j + OPS_PANEL <= (size_t)f->OC;
        float *o = full ? f->out + j : tmp;
        size_t ldo = full ? f->ldo : OPS_PANEL;
        for (int n = 0; n < f->N; n++) memset(o + n * ldo, 0, OPS_PANEL * sizeof(float));
        rows_columns(o, ldo, f->inp, f->C, w, OPS_PANEL, f->N, f->C, OPS_PANEL / VL);
        if (!full)
            for (int n = 0; n < f->N; n++) memcpy(f->out + n * f->ldo + j, tmp + n * OPS_PANEL, (f->OC - j) * sizeof(float));
    }
}

void ops_matmul_panels(float *out, size_t ldo, const float *inp, const float *panels, int N, int C, int OC) {
    PanelProduct f = {.out = out, .ldo = ldo, .inp = inp, .panels = panels, .N = N, .C = C, .OC = OC};
    size_t n_panels = ops_panels_size(OC, C) / ((size_t)OPS_PANEL * C);
    ops_parallel_for(n_panels, (size_t)N * C * OC < PARALLEL_MIN_FMA ? n_panels : 8, panels_range, &f);
}

/* ---- packed layer weights for batched decoding ----------------------------
 * At 8 rows each 8x3 tile reads 3 vectors of every row of w (C, OC), rows
 * OC floats apart: a strided walk that ran at half the copy bandwidth.
 * Packed in column panels of OPS_PANEL (C x OPS_PANEL each, contiguous) the
 * tiles stream the matrix. Each output is still bias + the same chain of
 * multiply-adds over k, so the result is the unpacked product's, bit for bit. */
size_t ops_column_panels_size(int C, int OC) { return ops_panels_size(OC, C); }

static void pack_columns_range(void *ctx, size_t p0, size_t p1) {
    const Pack *pk = ctx;
    for (size_t p = p0; p < p1; p++) {
        float *d = pk->dst + p * OPS_PANEL * pk->C;
        size_t j0 = p * OPS_PANEL, n = pk->OC - j0 < OPS_PANEL ? pk->OC - j0 : OPS_PANEL;
        for (int k = 0; k < pk->C; k++) {
            memcpy(d + (size_t)k * OPS_PANEL, pk->w + (size_t)k * pk->OC + j0, n * sizeof(float));
            memset(d + (size_t)k * OPS_PANEL + n, 0, (OPS_PANEL - n) * sizeof(float));
        }
    }
}

void ops_pack_columns(float *dst, const float *w, int C, int OC) {
    Pack pk = {.dst = dst, .w = w, .OC = OC, .C = C};
    size_t panels = ops_column_panels_size(C, OC) / ((size_t)OPS_PANEL * C);
    ops_parallel_for(panels, 16, pack_columns_range, &pk);
}

static void panels_bias_range(void *ctx, size_t p0, size_t p1) {
    const PanelProduct *f = ctx;
    for (size_t p = p0; p < p1; p++) {
        const float *w = f->panels + p * OPS_PANEL * f->C;
        size_t j = p * OPS_PANEL;
        if (j + OPS_PANEL <= (size_t)f->OC) {
            rows_columns(f->out + j, f->ldo, f->inp, f->C, w, OPS_PANEL, f->N, f->C, OPS_PANEL / VL);
            continue;
        }
        /* last, partial panel: whole vectors, then single columns as the
         * unpacked product ends, so the bits stay the same */
        size_t n = f->OC - j, nv = n / VL;
        if (nv) rows_columns(f->out + j, f->ldo, f->inp, f->C, w, OPS_PANEL, f->N, f->C, (int)nv);
        single_columns(f->out + j + nv * VL, f->ldo, f->inp, f->C, w + nv * VL, OPS_PANEL, f->N, f->C,
                       n - nv * VL);
    }
}

void ops_matmul_forward_panels(float *out, const float *inp, const float *panels, const float *b, int N,
                               int C, int OC) {
    PanelProduct f = {.out = out, .ldo = OC, .inp = inp, .panels = panels, .N = N, .C = C, .OC = OC};
    size_t n_panels = ops_column_panels_size(C, OC) / ((size_t)OPS_PANEL * C);
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, OC * sizeof(float));
    ops_parallel_for(n_panels, (size_t)N * C * OC < PARALLEL_MIN_FMA ? n_panels : 4, panels_bias_range, &f);
}

/* Sum of a vector's lanes, in a fixed order. */
static inline float vhsum(vfloat v) {
#if defined(__AVX512F__)
    return _mm512_reduce_add_ps((__m512)v);
#else
    for (int w = VL / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v[i] += v[i + w];
    return v[0];
#endif
}

/* out[r][c] = x[r] . w[c] for r < nr, c < nc (nr, nc <= 4), C a multiple
 * of VL: 16 dot products share each load. */
static inline __attribute__((always_inline)) void nt_tile(float *out, size_t ldo, const float *x,
                                                          const float *w, int C, int nr, int nc) {
    vfloat acc[4][4] = {{{0}}};
    for (int k = 0; k < C; k += VL) {
        vfloat wv[4];
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) wv[c] = vload(w + (size_t)c * C + k);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            vfloat xv = vload(x + (size_t)r * C + k);
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) acc[r][c] = vfma(xv, wv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) out[r * ldo + c] = vhsum(acc[r][c]);
}

typedef struct {
    float *out;
    const float *inp, *w;
    int N, C, OC;
} FewRowsNT;

/* Columns (rows of w) [j0, j1) of out = inp @ w^T. */
static void few_rows_nt_range(void *ctx, size_t j0, size_t j1) {
    const FewRowsNT *f = ctx;
    size_t C = f->C, OC = f->OC;
    if (f->C % VL) {
        for (size_t j = j0; j < j1; j++)
            for (int n = 0; n < f->N; n++) f->out[n * OC + j] = dot16(f->inp + n * C, f->w + j * C, f->C);
        return;
    }
    size_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        /* the next rows of w come from memory (the GPT-2 vocabulary is 51 MB
         * at d=256): ask for them 8 rows ahead, ~25% faster at one row */
        if (j + 12 <= (size_t)f->OC)
            for (size_t c = 0; c < 4 * C; c += 16) __builtin_prefetch(f->w + (j + 8) * C + c);
        for (int r = 0; r < f->N; r += 4) {
            float *o = f->out + r * OC + j;
            const float *x = f->inp + r * C, *w = f->w + j * C;
            switch (f->N - r < 4 ? f->N - r : 4) {
            case 1: nt_tile(o, OC, x, w, f->C, 1, 4); break;
            case 2: nt_tile(o, OC, x, w, f->C, 2, 4); break;
            case 3: nt_tile(o, OC, x, w, f->C, 3, 4); break;
            default: nt_tile(o, OC, x, w, f->C, 4, 4); break;
            }
        }
    }
    for (; j < j1; j++)
        for (int r = 0; r < f->N; r++) nt_tile(f->out + r * OC + j, OC, f->inp + r * C, f->w + j * C, f->C, 1, 1);
}

void ops_matmul_nt(float *out, const float *inp, const float *w, int N, int C, int OC) {
    if (N > OPS_FEW_ROWS) {
        ops_sgemm(0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
        return;
    }
    FewRowsNT f = {.out = out, .inp = inp, .w = w, .N = N, .C = C, .OC = OC};
    size_t grain = (size_t)N * C * OC < PARALLEL_MIN_FMA ? (size_t)OC : 64;
    ops_parallel_for(OC, grain, few_rows_nt_range, &f);
}

/* out[j] = scale * sum_d x[d] * a[d*lda + j], in whole vectors: the
 * caller pads rows and out (see ops.h). Four accumulators hide the FMA
 * latency over d. */
void ops_matvec_t(float *out, const float *x, const float *a, int D, int n, size_t lda, float scale) {
    int nr = (n + VL - 1) / VL * VL, j = 0;
    vfloat sv = vsplat(scale);
    for (; j + 4 * VL <= nr; j += 4 * VL) {
        vfloat acc[4] = {{0}};
        for (int d = 0; d < D; d++) {
            vfloat xd = vsplat(x[d]);
            const float *ad = a + (size_t)d * lda + j;
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[v] = vfma(xd, vload(ad + v * VL), acc[v]);
        }
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) vstore(out + j + v * VL, acc[v] * sv);
    }
    for (; j < nr; j += VL) { /* four chains over d, not one: FMA latency */
        vfloat acc[4] = {{0}};
        int d = 0;
        for (; d + 4 <= D; d += 4)
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) acc[u] = vfma(vsplat(x[d + u]), vload(a + (size_t)(d + u) * lda + j), acc[u]);
        for (; d < D; d++) acc[0] = vfma(vsplat(x[d]), vload(a + (size_t)d * lda + j), acc[0]);
        vstore(out + j, ((acc[0] + acc[1]) + (acc[2] + acc[3])) * sv);
    }
}

/* y[0..D) = sum_j p[j] * rows[j*ld + 0..D) */
void ops_weighted_rows(float *y, const float *p, const float *rows, int n, int D, size_t ld) {
    if (D % VL == 0 && D <= 4 * VL) { /* even and odd positions in separate chains */
        vfloat acc[2][4] = {{{0}}};
        int nv = D / VL, j = 0;
        for (; j + 2 <= n; j += 2)
#pragma GCC unroll 2
            for (int u = 0; u < 2; u++) {
                vfloat pj = vsplat(p[j + u]);
                const float *r = rows + (size_t)(j + u) * ld;
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++) acc[u][v] = vfma(pj, vload(r + v * VL), acc[u][v]);
            }
        for (; j < n; j++)
            for (int v = 0; v < nv; v++) acc[0][v] = vfma(vsplat(p[j]), vload(rows + (size_t)j * ld + v * VL), acc[0][v]);
        for (int v = 0; v < nv; v++) vstore(y + v * VL, acc[0][v] + acc[1][v]);
        return;
    }
    for (int d = 0; d < D; d++) y[d] = 0.0f;
    for (int j = 0; j < n; j++)
        for (int d = 0; d < D; d++) y[d] += p[j] * rows[(size_t)j * ld + d];
}

typedef struct {
    float *db;
    const float *dout;
    int N, OC;
} ColumnSums;

/* db[o] += sum over rows of dout[n][o], for columns [o0, o1) */
static void column_sums_range(void *ctx, size_t o0, size_t o1) {
    const ColumnSums *c = ctx;
    for (int n = 0; n < c->N; n++) {
        const float *d = c->dout + (size_t)n * c->OC;
        for (size_t o = o0; o < o1; o++) c->db[o] += d[o];
    }
}

/* dinp (N, C) = dout @ w^T (overwrites); dw += inp^T @ dout; db += sum dout */
void ops_matmul_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    ops_sgemm(0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, C);
    ops_sgemm(1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
    ColumnSums cs = {.db = db, .dout = dout, .N = N, .OC = OC};
    ops_parallel_for(OC, (size_t)N * OC < 65536 ? (size_t)OC : 64, column_sums_range, &cs);
}

/* ---- elementwise kernels ------------------------------------------------
 * Rows or runs of elements go to the pool in fixed chunks; reductions over
 * rows (LayerNorm's dw, db) sum per chunk, then chunks in order. */
#define ROWS_PER_CHUNK 32
#define ELEMS_PER_CHUNK 32768

typedef struct {
    float *out, *mean, *rstd, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout, *cmean, *crstd;
    int C;
} LayerNorm;

/* Sums over a row in vector lanes (a float sum in one chain would be latency
 * bound and the compiler may not reorder it): sum x, and sum (x - m)^2. */
static float row_sum(const float *x, int C) {
    vfloat acc = {0};
    int i = 0;
    for (; i + VL <= C; i += VL) acc += vload(x + i);
    float s = vhsum(acc);
    for (; i < C; i++) s += x[i];
    return s;
}

static float row_sq_dev(const float *x, float m, int C) {
    vfloat acc = {0}, mv = vsplat(m);
    int i = 0;
    for (; i + VL <= C; i += VL) {
        vfloat d = vload(x + i) - mv;
        acc = vfma(d, d, acc);
    }
    float s = vhsum(acc);
    for (; i < C; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

static void layernorm_forward_rows(void *ctx, size_t n0, size_t n1) {
    const LayerNorm *a = ctx;
    int C = a->C;
    for (size_t n = n0; n < n1; n++) {
        const float *x = a->inp + n * C;
        float m = row_sum(x, C) / C;
        float s = 1.0f / sqrtf(row_sq_dev(x, m, C) / C + 1e-5f);
        float *o = a->out + n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * a->w[i] + a->b[i];
        if (a->mean) {
            a->mean[n] = m;
            a->rstd[n] = s;
        }
    }
}

void ops_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, int N, int C) {
    LayerNorm a = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .C = C};
    ops_parallel_for(N, (size_t)N * C < ELEMS_PER_CHUNK ? (size_t)N : ROWS_PER_CHUNK, layernorm_forward_rows, &a);
}

/* dinp += for rows [n0, n1); this chunk's dw, db partials into a->dw, a->db
 * at row n0 / ROWS_PER_CHUNK. */
static void layernorm_backward_rows(void *ctx, size_t n0, size_t n1) {
    const LayerNorm *a = ctx;
    int C = a->C;
    float *pdw = a->dw + n0 / ROWS_PER_CHUNK * 2 * C, *pdb = pdw + C;
    memset(pdw, 0, 2 * C * sizeof(float));
    for (size_t n = n0; n < n1; n++) {
        const float *d = a->dout + n * C, *x = a->inp + n * C;
        float m = a->cmean[n], s = a->crstd[n], dnorm_mean, dnorm_norm_mean;
        vfloat acc = {0}, accn = {0}, mv = vsplat(m), sv = vsplat(s);
        int i = 0;
        for (; i + VL <= C; i += VL) { /* sums in vector lanes, as row_sum */
            vfloat norm = (vload(x + i) - mv) * sv, dnorm = vload(a->w + i) * vload(d + i);
            acc += dnorm;
            accn = vfma(dnorm, norm, accn);
        }
        dnorm_mean = vhsum(acc);
        dnorm_norm_mean = vhsum(accn);
        for (; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = a->w[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float *dx = a->dinp + n * C;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s, dnorm = a->w[i] * d[i];
            pdb[i] += d[i];
            pdw[i] += norm * d[i];
            dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

/* dinp += layernorm backward; dw, db accumulate. */
void ops_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, int N, int C) {
    size_t chunks = ((size_t)N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
    float *part = err_malloc(chunks * 2 * C * sizeof(float));
    LayerNorm a = {.dinp = dinp, .dw = part, .inp = inp, .w = w, .dout = dout, .cmean = mean, .crstd = rstd, .C = C};
    ops_parallel_for(N, ROWS_PER_CHUNK, layernorm_backward_rows, &a);
    for (size_t c = 0; c < chunks; c++)
        for (int i = 0; i < C; i++) {
            dw[i] += part[c * 2 * C + i];
            db[i] += part[c * 2 * C + C + i];
        }
    free(part);
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

typedef struct {
    float *out;
    const float *a, *b;
} Elementwise;

static void gelu_forward_range(void *ctx, size_t i0, size_t i1) {
    const Elementwise *e = ctx;
    for (size_t i = i0; i < i1; i++) {
        float x = e->a[i];
        e->out[i] = 0.5f * x * (1.0f + ops_tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

void ops_gelu_forward(float *out, const float *inp, size_t n) {
    Elementwise e = {out, inp, NULL};
    ops_parallel_for(n, ELEMS_PER_CHUNK, gelu_forward_range, &e);
}

static void gelu_backward_range(void *ctx, size_t i0, size_t i1) {
    const Elementwise *e = ctx;
    for (size_t i = i0; i < i1; i++) {
        float x = e->a[i], u = GELU_SCALE * (x + 0.044715f * x * x * x);
        float t = ops_tanhf(u), sech2 = 1.0f - t * t;
        float du = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        e->out[i] = e->b[i] * (0.5f * (1.0f + t) + 0.5f * x * sech2 * du);
    }
}

/* dinp = dout * gelu'(inp) (overwrites) */
void ops_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    Elementwise e = {dinp, inp, dout};
    ops_parallel_for(n, ELEMS_PER_CHUNK, gelu_backward_range, &e);
}

static void residual_range(void *ctx, size_t i0, size_t i1) {
    const Elementwise *e = ctx;
    for (size_t i = i0; i < i1; i++) e->out[i] = e->a[i] + e->b[i];
}

void ops_residual_forward(float *out, const float *a, const float *b, size_t n) {
    Elementwise e = {out, a, b};
    ops_parallel_for(n, 4 * ELEMS_PER_CHUNK, residual_range, &e);
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
        float *row = S + (size_t)t * T;
        float mx = row[0], sum = 0.0f;
        for (int j = 1; j <= t; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j <= t; j++) {
            row[j] = ops_expf(row[j] - mx);
            sum += row[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j <= t; j++) row[j] *= inv;
        for (int j = t + 1; j < T; j++) row[j] = 0.0f;
    }
}

#if VL == 16
/* Attention on the register tiles, one (batch, head) pair per pool chunk.
 * The causal mask is used to skip work: a tile of 8 query rows computes
 * scores only up to its last row, and the products over positions stop (or
 * start) where the probabilities are zero. Scratch lives per thread. */
static _Thread_local float *att_buf;
static _Thread_local size_t att_size;

static float *att_scratch(size_t n) {
    if (n > att_size) {
        free(att_buf);
        att_buf = err_malloc(n * sizeof(float));
        att_size = n;
    }
    return att_buf;
}

typedef struct {
    float *atty, *att, *dqkv;
    const float *qkv, *datty, *att_in;
    unsigned char *mask_out;
    const unsigned char *mask_in;
    int B, T, C, NH;
    float p;
    Rng *rng;
} Att;

/* One product as a Gemm over a row range: C = alpha * A @ B (+ C). */
static Gemm att_gemm(float *c, size_t ldc, const float *a, size_t a_rs, size_t a_ks, const float *b,
                     size_t ldb, float alpha) {
    Gemm g = {.c = c, .ldc = ldc, .a = a, .a_rs = a_rs, .a_ks = a_ks, .b = b, .ldb = ldb, .alpha = alpha};
    return g;
}

static void att_forward_range(void *ctx, size_t t0, size_t t1) {
    const Att *s = ctx;
    int T = s->T, C = s->C, C3 = 3 * C, hs = C / s->NH;
    float scale = 1.0f / sqrtf((float)hs);
    float *kt = att_scratch((size_t)hs * T + (size_t)T * T);
    float *pd = kt + (size_t)hs * T;
    for (size_t task = t0; task < t1; task++) {
        int b = (int)(task / s->NH), h = (int)(task % s->NH);
        const float *q = s->qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
        float *P = s->att + task * T * T, *out = s->atty + (size_t)b * T * C + h * hs;
        transpose(kt, k, T, hs, C3);
        Gemm qk = att_gemm(P, T, q, C3, 1, kt, T, scale);
        for (int i0 = 0; i0 < T; i0 += 8) {
            int i1 = i0 + 8 < T ? i0 + 8 : T;
            gemm_block(&qk, i0, i1, 0, i1, 0, hs, 0);
        }
        causal_softmax(P, T);
        const float *Puse = P;
        if (s->mask_out) { /* the kept probabilities, scaled; masks drawn already */
            const unsigned char *mask = s->mask_out + task * T * T;
            float sc = 1.0f / (1.0f - s->p);
            for (size_t i = 0; i < (size_t)T * T; i++) pd[i] = mask[i] ? P[i] * sc : 0.0f;
            Puse = pd;
        }
        Gemm pv = att_gemm(out, C, Puse, T, 1, v, C3, 1.0f);
        for (int i0 = 0; i0 < T; i0 += 8) {
            int i1 = i0 + 8 < T ? i0 + 8 : T;
            gemm_block(&pv, i0, i1, 0, hs, 0, i1, 0);
        }
    }
}

void ops_attention_forward(float *atty, float *att, unsigned char *att_mask,
                           const float *qkv, int B, int T, int C, int NH, float p,
                           Rng *rng, float *pd) {
    (void)pd; /* scratch is per thread now */
    Att s = {.atty = atty, .att = att, .qkv = qkv, .mask_out = att_mask,
             .B = B, .T = T, .C = C, .NH = NH, .p = p, .rng = rng};
    size_t tasks = (size_t)B * NH;
    if (att_mask) /* one random stream in (b, h, i, j) order, as ops_dropout_forward draws it */
        for (size_t i = 0; i < tasks * T * T; i++) att_mask[i] = rng_uniform(rng) >= p;
    ops_parallel_for(tasks, (double)tasks * T * T * C / NH < PARALLEL_MIN_FMA ? tasks : 1, att_forward_range, &s);
}

static void att_backward_range(void *ctx, size_t t0, size_t t1) {
    const Att *s = ctx;
    int T = s->T, C = s->C, C3 = 3 * C, hs = C / s->NH;
    float scale = 1.0f / sqrtf((float)hs);
    float *vt = att_scratch((size_t)hs * T + 2 * (size_t)T * T);
    float *dP = vt + (size_t)hs * T;
    float *pd = dP + (size_t)T * T;
    for (size_t task = t0; task < t1; task++) {
        int b = (int)(task / s->NH), h = (int)(task % s->NH);
        size_t row0 = (size_t)b * T;
        const float *q = s->qkv + row0 * C3 + h * hs, *k = q + C, *v = q + 2 * C;
        float *dq = s->dqkv + row0 * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
        const float *P = s->att_in + task * T * T, *dout = s->datty + row0 * C + h * hs;
        const unsigned char *mask = s->mask_in ? s->mask_in + task * T * T : NULL;
        const float *Puse = P;
        if (mask) {
            float sc = 1.0f / (1.0f - s->p);
            for (size_t i = 0; i < (size_t)T * T; i++) pd[i] = mask[i] ? P[i] * sc : 0.0f;
            Puse = pd;
        }
        /* dP = dout @ v^T (causal part); dv = Puse^T @ dout (rows j: i >= j) */
        transpose(vt, v, T, hs, C3);
        Gemm g1 = att_gemm(dP, T, dout, C, 1, vt, T, 1.0f);
        Gemm g2 = att_gemm(dv, C3, Puse, 1, T, dout, C, 1.0f);
        for (int i0 = 0; i0 < T; i0 += 8) {
            int i1 = i0 + 8 < T ? i0 + 8 : T;
            gemm_block(&g1, i0, i1, 0, i1, 0, hs, 0);
            gemm_block(&g2, i0, i1, 0, hs, i0, T - i0, 0);
        }
        if (mask) ops_dropout_backward(dP, mask, (size_t)T * T, s->p);
        /* softmax backward: dS = P * (dP - sum_j P dP), causal part only */
        for (int t = 0; t < T; t++) {
            const float *pr = P + (size_t)t * T;
            float *dr = dP + (size_t)t * T;
            float dot = 0.0f;
            for (int j = 0; j <= t; j++) dot += pr[j] * dr[j];
            for (int j = 0; j <= t; j++) dr[j] = pr[j] * (dr[j] - dot);
            for (int j = t + 1; j < T; j++) dr[j] = 0.0f;
        }
        /* dq = scale dS @ k (j <= i) ; dk = scale dS^T @ q (i >= j) */
        Gemm g3 = att_gemm(dq, C3, dP, T, 1, k, C3, scale);
        Gemm g4 = att_gemm(dk, C3, dP, 1, T, q, C3, scale);
        for (int i0 = 0; i0 < T; i0 += 8) {
            int i1 = i0 + 8 < T ? i0 + 8 : T;
            gemm_block(&g3, i0, i1, 0, hs, 0, i1, 0);
            gemm_block(&g4, i0, i1, 0, hs, i0, T - i0, 0);
        }
    }
}

void ops_attention_backward(float *dqkv, const float *datty, const float *qkv,
                            const float *att, const unsigned char *att_mask, int B,
                            int T, int C, int NH, float p, float *dP, float *pd) {
    (void)dP; /* scratch is per thread now */
    (void)pd;
    Att s = {.dqkv = dqkv, .qkv = qkv, .datty = datty, .att_in = att, .mask_in = att_mask,
             .B = B, .T = T, .C = C, .NH = NH, .p = p};
    size_t tasks = (size_t)B * NH;
    ops_parallel_for(tasks, (double)tasks * T * T * C / NH < PARALLEL_MIN_FMA ? tasks : 1, att_backward_range, &s);
}

#else /* without AVX-512: per-(b, h) cblas_sgemm */

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
                float *dr = dP + (size_t)t * T;
                float dot = 0.0f;
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


#endif
