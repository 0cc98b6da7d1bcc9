/* sampler — turns one row of logits into a token: greedy, temperature,
 * top-k, top-p (nucleus); see sampler.h. The actor calls it once per
 * generated token, so it never sorts the vocabulary: top-k keeps its k best
 * in a small heap, and top-p first drops tokens too unlikely to be in any
 * nucleus (the llama2.c trick), then finds the nucleus among the rest by
 * quickselect, which stays linear even for the nearly flat distributions of
 * an untrained model.
 *
 * Probabilities are kept unnormalised: w_i = exp((logit_i - max) / T), so the
 * largest is exactly 1 and nothing overflows; each stage just sums the weights
 * it keeps, and the final sum normalises both the draw and logp_sample. */
#include "common/model/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/model/ops.h"

/* Over the GPT-2 vocabulary these loops run over 50,257 logits per token, so
 * they are written to vectorise: lanes of partial results, combined in a
 * fixed order, so the results do not depend on the build's vector width. */
#define SAMPLER_LANES 16
#define SAMPLER_BLOCK 256 /* float partial sums per block, blocks summed in double */

SamplerConfig sampler_default(void) {
    SamplerConfig c = {.greedy = 0, .temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    return c;
}

int sampler_validate(const SamplerConfig *c) {
    /* Written as !(ok) so NaN fails too. */
    if (!c->greedy && !(c->temperature > 0 && isfinite(c->temperature)))
        return err_set("temperature must be a finite number > 0, got %g", c->temperature);
    if (c->top_k < 0) return err_set("top_k must be >= 0 (0 = off), got %d", c->top_k);
    if (!(c->top_p > 0 && c->top_p <= 1))
        return err_set("top_p must be in (0, 1], got %g", c->top_p);
    return 0;
}

void sampler_init(Sampler *s, int vocab) {
    s->vocab = vocab;
    s->probs = err_malloc(sizeof *s->probs * (size_t)vocab);
    s->cand = err_malloc(sizeof *s->cand * (size_t)vocab);
}

void sampler_free(Sampler *s) {
    free(s->probs);
    free(s->cand);
    s->probs = NULL;
    s->cand = NULL;
}

/* The sampling order: higher logit first, lower id on ties. */
static int cand_before(const SamplerCand *a, const SamplerCand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static void cand_swap(SamplerCand *a, SamplerCand *b) {
    SamplerCand t = *a;
    *a = *b;
    *b = t;
}

/* Lowest id among the largest logits; NaNs are passed over (an all-NaN or
 * all -inf row gives a non-finite maximum, which the caller refuses). */
static int argmax(const float *logits, int n) {
    float lane[SAMPLER_LANES];
    for (int j = 0; j < SAMPLER_LANES; j++) lane[j] = -INFINITY;
    int i = 0;
    for (; i + SAMPLER_LANES <= n; i += SAMPLER_LANES)
        for (int j = 0; j < SAMPLER_LANES; j++) lane[j] = logits[i + j] > lane[j] ? logits[i + j] : lane[j];
    float max = -INFINITY;
    for (; i < n; i++) max = logits[i] > max ? logits[i] : max;
    for (int j = 0; j < SAMPLER_LANES; j++) max = lane[j] > max ? lane[j] : max;
    for (i = 0; i < n; i++)
        if (logits[i] == max) return i;
    return 0; /* no number above -inf: logits[0] is reported */
}

/* sum of one block x[0..SAMPLER_BLOCK): float lanes, added in double */
static double block_sum(const float *x) {
    float lane[SAMPLER_LANES] = {0};
    for (int b = 0; b < SAMPLER_BLOCK; b += SAMPLER_LANES)
        for (int j = 0; j < SAMPLER_LANES; j++) lane[j] += x[b + j];
    double sum = 0;
    for (int j = 0; j < SAMPLER_LANES; j++) sum += lane[j];
    return sum;
}

/* sum of x[0..n) in double: whole blocks by block_sum, then the tail */
static double sum_weights(const float *x, int n) {
    double sum = 0;
    int i = 0;
    for (; i + SAMPLER_BLOCK <= n; i += SAMPLER_BLOCK) sum += block_sum(x + i);
    for (; i < n; i++) sum += x[i];
    return sum;
}

/* w[i] = exp((logits[i] - max) / T); returns their sum. Weights below
 * exp(-87) (too small to matter next to the largest, 1) are exactly 0, as
 * expf would make them further down, so such tokens are never drawn. */
static double exp_weights(float *w, const float *logits, int n, float max, float temperature) {
    for (int i = 0; i < n; i++) {
        float x = (logits[i] - max) / temperature;
        w[i] = x < -87.0f ? 0.0f : ops_expf(x);
    }
    return sum_weights(w, n);
}

static double cand_weight(const Sampler *s, int i) { return s->probs[s->cand[i].id]; }

static double sum_cand_weights(const Sampler *s, int lo, int hi) {
    double sum = 0;
    for (int i = lo; i < hi; i++) sum += cand_weight(s, i);
    return sum;
}

/* Min-heap on the sampling order: the root is the worst of those kept, the
 * one to evict when a better token comes along. */
static void heap_sift_down(SamplerCand *h, int n, int i) {
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_before(&h[worst], &h[l])) worst = l;
        if (r < n && cand_before(&h[worst], &h[r])) worst = r;
        if (worst == i) return;
        cand_swap(&h[i], &h[worst]);
        i = worst;
    }
}

/* Puts the k best tokens into cand[0..k), in heap order: O(V log k). */
static void select_top_k(Sampler *s, const float *logits, int k) {
    SamplerCand *h = s->cand;
    for (int i = 0; i < k; i++) h[i] = (SamplerCand){logits[i], i};
    for (int i = k / 2 - 1; i >= 0; i--) heap_sift_down(h, k, i);
    for (int i = k; i < s->vocab; i++) {
        SamplerCand c = {logits[i], i};
        if (cand_before(&c, &h[0])) {
            h[0] = c;
            heap_sift_down(h, k, 0);
        }
    }
}

/* Candidates for the nucleus over the whole vocabulary, into cand[0..n).
 * A token with weight below (1 - p) / (V - 1) of the total cannot be in the
 * nucleus: even all V - 1 such tokens together hold less than 1 - p, so the
 * tokens above the cut reach mass p first. The argmax is always kept (for
 * p < 1/V the cut can exceed even its weight). */
static int nucleus_candidates(Sampler *s, const float *logits, int best, double total,
                              double top_p) {
    double cutoff = s->vocab > 1 ? (1.0 - top_p) / (s->vocab - 1) * total : 0;
    int n = 0;
    for (int i = 0; i < s->vocab; i++)
        if (s->probs[i] >= cutoff || i == best) s->cand[n++] = (SamplerCand){logits[i], i};
    return n;
}

/* Rearranges c[lo..hi) as: tokens before the pivot in the sampling order,
 * the pivot, tokens after it; returns the pivot's position. The pivot is the
 * median of the first, middle and last, so sorted input stays O(n). The
 * order is total (ids break ties), so equal logits split evenly too. */
static int partition(SamplerCand *c, int lo, int hi) {
    int a = lo, m = lo + (hi - lo) / 2, z = hi - 1;
    if (cand_before(&c[m], &c[a])) cand_swap(&c[m], &c[a]);
    if (cand_before(&c[z], &c[m])) {
        cand_swap(&c[z], &c[m]);
        if (cand_before(&c[m], &c[a])) cand_swap(&c[m], &c[a]);
    }
    cand_swap(&c[m], &c[z]); /* median to the end */
    int q = lo;
    for (int i = lo; i < z; i++)
        if (cand_before(&c[i], &c[z])) cand_swap(&c[i], &c[q++]);
    cand_swap(&c[q], &c[z]);
    return q;
}

/* Moves the nucleus (the shortest run, in sampling order, whose weight
 * reaches target) to the front of cand[0..n) and returns its length.
 * Quickselect instead of a sort: expected O(n) even when the distribution is
 * nearly flat and the pre-filter keeps most of the vocabulary. The nucleus's
 * own order is left arbitrary (but deterministic): the draw does not need it.
 * Invariant: cand[0..lo) is inside the nucleus with weight mass < target,
 * and the nucleus ends within (lo, hi]. If rounding leaves all n short of
 * target, the answer is all n. */
static int nucleus_select(Sampler *s, int n, double target) {
    int lo = 0, hi = n;
    double mass = 0;
    while (hi - lo > 1) {
        int q = partition(s->cand, lo, hi);
        double better = sum_cand_weights(s, lo, q);
        if (mass + better >= target) {
            hi = q;
            continue;
        }
        mass += better + cand_weight(s, q);
        lo = q + 1;
        if (mass >= target) return lo;
    }
    return hi;
}

/* Inverse-CDF draw among candidates ids[0..n): the first whose running
 * weight exceeds target. Zero-weight tokens are never returned; if rounding
 * leaves target past the end, the last candidate with positive weight is. */
static int draw(const Sampler *s, const SamplerCand *ids, int n, double target) {
    double cum = 0;
    int last = -1;
    for (int i = 0; i < n; i++) {
        int id = ids[i].id;
        if (s->probs[id] <= 0) continue;
        cum += s->probs[id];
        last = id;
        if (target < cum) return id;
    }
    return last;
}

/* The first token of p[lo..hi) whose running weight, from cum, exceeds
 * target; the last one with weight if none does. Zero weights are never
 * drawn; p[lo..hi) holds some weight unless it is the tail past the last
 * block and rounding carried the target there (then the last token of the
 * whole vocabulary with weight is searched for). */
static int draw_in(const float *p, int lo, int hi, double cum, double target) {
    int last = -1;
    for (int j = lo; j < hi; j++) {
        if (p[j] <= 0) continue;
        cum += p[j];
        last = j;
        if (target < cum) return j;
    }
    for (int j = lo - 1; last < 0 && j >= 0; j--)
        if (p[j] > 0) last = j;
    return last < 0 ? 0 : last;
}

/* The same draw over the whole vocabulary in id order. A walk token by token
 * is one chain of dependent additions, 50,257 long for GPT-2 (~70 us a
 * token; 8 rows on 2 threads are a tenth of a batch-8 decoding step): whole
 * blocks are passed by their sums instead (the block sums `total` was made
 * of) and only the block the target falls in is walked. Each block keeps
 * exactly its own weight: if rounding leaves the walk short of its sum, the
 * block's last token with weight is drawn. */
static int draw_all(const Sampler *s, double target) {
    const float *p = s->probs;
    int n = s->vocab, i = 0;
    double cum = 0;
    for (; i + SAMPLER_BLOCK <= n; i += SAMPLER_BLOCK) {
        double b = block_sum(p + i);
        if (target < cum + b) return draw_in(p, i, i + SAMPLER_BLOCK, cum, target);
        cum += b;
    }
    return draw_in(p, i, n, cum, target);
}

int sampler_sample(Sampler *s, const SamplerConfig *c, const float *logits, Rng *rng,
                   float *logp_sample, float *logp_model) {
    if (sampler_validate(c)) return -1;
    int best = argmax(logits, s->vocab);
    float max = logits[best];
    if (!isfinite(max)) return err_set("sampler: largest logit is %g, expected finite", max);

    int token = best;
    double logp = 0;         /* greedy: a point mass */
    double model_norm = 0;   /* sum exp(logit - max), once known */
    if (!c->greedy) {
        double total = exp_weights(s->probs, logits, s->vocab, max, c->temperature);
        if (isnan(total)) return err_set("sampler: logits contain NaN");
        if (c->temperature == 1) model_norm = total;
        int n = s->vocab;              /* candidates left */
        const SamplerCand *ids = NULL; /* NULL: all tokens, in id order */
        if (c->top_k > 0 && c->top_k < s->vocab) {
            n = c->top_k;
            select_top_k(s, logits, n);
            ids = s->cand;
            total = sum_cand_weights(s, 0, n);
        }
        if (c->top_p < 1) {
            if (!ids) n = nucleus_candidates(s, logits, best, total, c->top_p);
            ids = s->cand;
            n = nucleus_select(s, n, c->top_p * total);
            total = sum_cand_weights(s, 0, n);
        }
        double target = rng_uniform(rng) * total;
        token = ids ? draw(s, ids, n, target) : draw_all(s, target);
        logp = ((double)logits[token] - max) / c->temperature - log(total);
    }
    if (logp_sample) *logp_sample = (float)logp;
    if (logp_model) {
        /* (probs is scratch by now: the token is drawn) */
        if (model_norm == 0) model_norm = exp_weights(s->probs, logits, s->vocab, max, 1.0f);
        *logp_model = (float)((double)logits[token] - max - log(model_norm));
    }
    return token;
}
