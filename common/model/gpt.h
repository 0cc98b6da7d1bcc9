/* gpt — the GPT-2 model: configuration, one flat parameter buffer with a
 * table of named views (Hugging Face GPT-2 names and shapes), a twin gradient
 * buffer, activations sized for (batch, time), forward and backward, and a
 * KV-cache forward for generation.
 *
 * Weight layout follows Hugging Face's Conv1D: a linear layer's weight is
 * stored (in, out), so y = x @ W + b. Embeddings are wte (V, C), wpe (T, C);
 * the unembedding is tied to wte. A model with head GPT_HEAD_SCALAR replaces
 * the unembedding by score.weight (1, C) + score.bias (1): one scalar per
 * position (reward and value models).
 *
 * Usage for language-model training:
 *   gpt_forward(m, tokens, B, T);                 // logits in m->logits
 *   gpt_token_logprobs(m, targets, logp, NULL);   // log p(target) per (b,t)
 *   ... loss from logp, dlogp = dLoss/dlogp ...
 *   gpt_zero_grad(m); gpt_backward_lm(m, targets, dlogp, NULL);
 */
#ifndef GPT_H
#define GPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

typedef enum { GPT_HEAD_LM = 0, GPT_HEAD_SCALAR = 1 } GptHead;

typedef struct {
    int vocab_size; /* V */
    int n_ctx;      /* maximum sequence length (positions) */
    int n_layer;    /* L */
    int n_head;     /* NH */
    int n_embd;     /* C, divisible by n_head */
    GptHead head;
} GptConfig;

/* A named view into the parameter (and gradient, and optimizer) buffers. */
typedef struct {
    char name[48];   /* Hugging Face GPT-2 name, e.g. "h.0.attn.c_attn.weight" */
    size_t offset;   /* in floats from the start of the buffer */
    size_t size;     /* number of floats */
    int ndim;        /* 1 or 2 */
    int shape[2];
    int decay;       /* 1 for matrices (weight decay applies), 0 otherwise */
} GptTensor;

typedef struct {
    float *ln1_w, *ln1_b;       /* (C) */
    float *qkv_w, *qkv_b;       /* (C, 3C), (3C)   attn.c_attn */
    float *attproj_w, *attproj_b; /* (C, C), (C)   attn.c_proj */
    float *ln2_w, *ln2_b;       /* (C) */
    float *fc_w, *fc_b;         /* (C, 4C), (4C)   mlp.c_fc */
    float *fcproj_w, *fcproj_b; /* (4C, C), (C)    mlp.c_proj */
} GptLayer;

typedef struct {
    float *wte, *wpe;           /* (V, C), (n_ctx, C) */
    GptLayer *layer;            /* n_layer entries */
    float *lnf_w, *lnf_b;       /* (C) */
    float *score_w, *score_b;   /* (1, C), (1): scalar head only */
} GptViews;

typedef struct GptActs GptActs; /* private: activations for backward */

typedef struct {
    GptConfig cfg;
    size_t n_params;
    float *params;     /* n_params floats */
    float *grads;      /* n_params floats, same layout */
    GptTensor *tensors;
    int n_tensors;
    GptViews p;        /* views into params */
    GptViews g;        /* views into grads */

    /* The LM head's logits are divided by it (gpt_init: 1, the plain
     * model). RL stages set their sampling temperature on every model
     * whose log-probs they take, so that log-probs, entropies, ratios and
     * KL are those of the distribution the actor sampled from. The cached
     * decoding path (gpt_forward_cached) ignores it: the sampler applies the
     * temperature there. */
    float temperature;

    /* Dropout: applied to embeddings, attention probabilities and residual
     * branches when training != 0 and dropout > 0. */
    float dropout;
    int training;
    Rng dropout_rng;

    /* Outputs of the last gpt_forward. */
    int B, T;
    float *logits;     /* (B, T, V) for GPT_HEAD_LM */
    float *values;     /* (B, T) for GPT_HEAD_SCALAR */

    GptActs *acts;
    size_t acts_capacity; /* B*T the activations are sized for */

    /* Optional: the unembedding and the layers' matrices packed for batched
     * decoding (gpt_pack_decode), so KV caches need not pack their own.
     * Stale once the weights change. */
    float *head_panels;
    float *layer_panels; /* per layer: qkv, attproj, fc, fcproj */

    /* Optional: called by the next backward passes as soon as layer l's
     * parameter gradients are complete (layers last to first), so that a
     * data-parallel trainer can sum them while earlier layers compute. */
    void (*grads_ready)(void *ctx, int layer);
    void *grads_ready_ctx;
} Gpt;

/* Checks a configuration; -1 + err_set naming the bad field. */
int gpt_config_validate(const GptConfig *c);
/* Allocates a model with zeroed parameters and gradients. */
int gpt_init(Gpt *m, const GptConfig *c);
void gpt_free(Gpt *m);
/* GPT-2 initialisation: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)),
 * LayerNorm weights 1, biases 0, score head 0. */
void gpt_init_random(Gpt *m, uint64_t seed);
/* Layer l's parameters are params[*offset .. *offset + *count) (and the
 * same range of grads): its tensors are contiguous. */
void gpt_layer_range(const Gpt *m, int layer, size_t *offset, size_t *count);
/* The named view, or NULL. */
const GptTensor *gpt_find_tensor(const Gpt *m, const char *name);
size_t gpt_count_params(const GptConfig *c);

/* Forward over tokens (B, T), T <= n_ctx. Fills m->logits or m->values.
 * Returns 0, or -1 + err_set for an out-of-range token or shape. */
int gpt_forward(Gpt *m, const int *tokens, int B, int T);

/* After gpt_forward (LM head): log p(targets[b,t]) into logp (B*T) and, if
 * entropy != NULL, the entropy of each position's distribution. Positions
 * with targets < 0 get logp = 0. */
void gpt_token_logprobs(const Gpt *m, const int *targets, float *logp,
                        float *entropy);

/* Mean next-token cross-entropy over positions with targets >= 0 and
 * (mask == NULL or mask > 0), weighted by mask. Fills dlogp (B*T, may be
 * NULL) with dLoss/dlogp for gpt_backward_lm. Returns the loss (0 if no
 * position counts). */
float gpt_ce_loss(const Gpt *m, const int *targets, const float *mask,
                  float *dlogp);

void gpt_zero_grad(Gpt *m);
/* Backward of the last forward (LM head), accumulating into m->grads:
 * dlogp[b,t] = dLoss/d log p(targets[b,t]); dentropy (may be NULL) =
 * dLoss/d entropy[b,t]. */
void gpt_backward_lm(Gpt *m, const int *targets, const float *dlogp,
                     const float *dentropy);
/* Backward for the scalar head: dvalues[b,t] = dLoss/d values[b,t]. */
void gpt_backward_scalar(Gpt *m, const float *dvalues);

/* Scalar head: the value at the last token of each of n sequences
 * (tokens[i][0..len[i]), 1 <= len[i] <= n_ctx), run as one right-padded
 * batch. Reward models score a response this way. -1 + err_set on bad input. */
int gpt_score_last(Gpt *m, const int *const *tokens, const int *len, int n, float *scores);

/* --- KV-cache inference ------------------------------------------------ */

typedef struct {
    int n_seq;     /* sequences (batch) */
    int max_len;   /* positions per sequence, <= n_ctx */
    float *k;      /* keys transposed: (L, n_seq, C, max_len rounded up to 16) */
    float *v;      /* (L, n_seq, max_len, C) */
    int *len;      /* filled positions per sequence */
    /* scratch for gpt_forward_cached, grown on demand */
    float *scratch;
    size_t scratch_size;
    int rows_capacity;
} GptKV;

/* Packs the weights for batched decoding once, for every later KV cache of
 * these weights: the unembedding (LM head only; without it the head is the
 * unpacked product, ~3.5x slower at 8 rows and the GPT-2 vocabulary) and
 * the layers' matrices (the same bits as unpacked; batch-1 decoding of
 * GPT-2 small went from 40 to 52 tokens/s, make bench). Costs a second copy
 * of the parameters; call again after the weights change (an actor, after
 * each snapshot). */
void gpt_pack_decode(Gpt *m);

int gpt_kv_init(GptKV *kv, const Gpt *m, int n_seq, int max_len);
void gpt_kv_free(GptKV *kv);

/* Makes sequence dst's cached past a copy of sequence src's (dst's own is
 * overwritten): a group of samples of one prompt prefills it once and forks
 * the cache (common/model/generate). The copy is the same bits, so decoding
 * from it gives what decoding from dst's own prefill would. */
void gpt_kv_copy(GptKV *kv, const Gpt *m, int dst, int src);

/* The cache belongs to the weights it was filled with: the model must not
 * change between gpt_kv_init and gpt_kv_free.
 * Rule (batch invariance): a row's output depends only on its token, its
 * position and its own sequence's cached past, never on the other rows of
 * the call, their number or their order. Rows are processed OPS_FEW_ROWS
 * at a time on the few-row kernels, whose arithmetic per row does not
 * depend on the row count (sgemm's does), and the head takes one path per
 * model: the packed panels after gpt_pack_decode, else the unpacked product.
 * So a sample decodes to the same bits alone, in a batch, in any slot or
 * after a forked prefill (gpt_kv_copy); tests/unit/test_generate.c checks it.
 * Appends tokens to several sequences at once: for i in 0..n_rows-1, row i
 * is token tokens[i] of sequence seq[i]; rows of the same sequence must be
 * in order. Each row sees its own sequence's cached past. Writes the output
 * (V logits, or 1 value for the scalar head) of row i to out + i*out_stride,
 * only for rows with want[i] != 0 (want may be NULL = all). Inference only.
 * Returns -1 + err_set if a sequence would exceed max_len. */
int gpt_forward_cached(const Gpt *m, GptKV *kv, const int *tokens,
                       const int *seq, int n_rows, const unsigned char *want,
                       float *out, size_t out_stride);

/* Rule: weights (and optimizer moments) that are NaN or Inf are refused
 * when a file is loaded, not left to fail later with a misleading message.
 * Checks buf, laid out as layout's parameters, in one pass: 0, or -1 +
 * err_set("tensor NAME holds NaN at element K; every value must be finite")
 * for the first non-finite value. The loaders (ckpt, hf) call it. */
int gpt_check_finite(const Gpt *layout, const float *buf);

#endif
