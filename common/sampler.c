/* sampler — turns one row of logits into a token: greedy, temperature,
 * top-k, top-p (nucleus); see sampler.h. The actor calls it once per
 * generated token, so it avoids sorting the whole vocabulary: top-k keeps its
 * k best in a small heap, and top-p first drops tokens too unlikely to be in
 * any nucleus (the llama2.c trick) and sorts only the rest.
 *
 * Probabilities are kept unnormalised: w_i = exp((logit_i - max) / T), so the
 * largest is exactly 1 and nothing overflows; each stage just sums the weights
 * it keeps, and the final sum normalises both the draw and logp_sample. */
#include "common/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "common/err.h"

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

static int cand_compare(const void *pa, const void *pb) {
    const SamplerCand *a = pa, *b = pb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* Lowest id among the largest logits. */
static int argmax(const float *logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* log sum_i exp(logits_i - max): the model's log-normaliser, shifted. */
static double log_sum_exp_shifted(const float *logits, int n, float max) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - max);
    return log(sum);
}

/* probs[i] = exp((logits[i] - max) / T); returns their sum. */
static double fill_weights(Sampler *s, const float *logits, float max, float temperature) {
    double sum = 0;
    for (int i = 0; i < s->vocab; i++) {
        s->probs[i] = expf((logits[i] - max) / temperature);
        sum += s->probs[i];
    }
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
        SamplerCand t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* Puts the k best tokens into cand[0..k), sorted best first: O(V log k). */
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
    qsort(h, (size_t)k, sizeof *h, cand_compare);
}

/* Candidates for the nucleus over the whole vocabulary, sorted best first.
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
    qsort(s->cand, (size_t)n, sizeof *s->cand, cand_compare);
    return n;
}

/* Shortest prefix of cand[0..n) whose weight reaches top_p of total; its
 * weight goes to *kept. Rounding can leave the sum a hair short: then all n. */
static int nucleus_prefix(const Sampler *s, int n, double total, double top_p, double *kept) {
    double cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->probs[s->cand[i].id];
        if (cum >= top_p * total) {
            *kept = cum;
            return i + 1;
        }
    }
    *kept = cum;
    return n;
}

static double sum_cand_weights(const Sampler *s, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += s->probs[s->cand[i].id];
    return sum;
}

/* Inverse-CDF draw: the first token whose running weight exceeds target.
 * ids == NULL walks the whole vocabulary in id order. Zero-weight tokens are
 * never returned; if rounding leaves target past the end, the last token
 * with positive weight is. */
static int draw(const Sampler *s, const SamplerCand *ids, int n, double target) {
    double cum = 0;
    int last = -1;
    for (int i = 0; i < n; i++) {
        int id = ids ? ids[i].id : i;
        if (s->probs[id] <= 0) continue;
        cum += s->probs[id];
        last = id;
        if (target < cum) return id;
    }
    return last;
}

int sampler_sample(Sampler *s, const SamplerConfig *c, const float *logits, Rng *rng,
                   float *logp_sample, float *logp_model) {
    if (sampler_validate(c)) return -1;
    int best = argmax(logits, s->vocab);
    float max = logits[best];
    if (!isfinite(max)) return err_set("sampler: largest logit is %g, expected finite", max);

    int token = best;
    double logp = 0; /* greedy: a point mass */
    if (!c->greedy) {
        double total = fill_weights(s, logits, max, c->temperature);
        if (isnan(total)) return err_set("sampler: logits contain NaN");
        int n = s->vocab;           /* candidates left */
        const SamplerCand *ids = NULL; /* NULL: all tokens, in id order */
        if (c->top_k > 0 && c->top_k < s->vocab) {
            n = c->top_k;
            select_top_k(s, logits, n);
            ids = s->cand;
            total = sum_cand_weights(s, n);
        }
        if (c->top_p < 1) {
            if (!ids) n = nucleus_candidates(s, logits, best, total, c->top_p);
            ids = s->cand;
            n = nucleus_prefix(s, n, total, c->top_p, &total);
        }
        token = draw(s, ids, n, rng_uniform(rng) * total);
        logp = ((double)logits[token] - max) / c->temperature - log(total);
    }
    if (logp_sample) *logp_sample = (float)logp;
    if (logp_model)
        *logp_model = (float)((double)logits[token] - max - log_sum_exp_shifted(logits, s->vocab, max));
    return token;
}
