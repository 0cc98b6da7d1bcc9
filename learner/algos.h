/* algos — the mathematics of the critic-free RL family on the PPO job (issue
 * 15), in the style of verl's core_algos.py: advantage estimators, loss
 * aggregation modes and policy losses, each a small function registered by
 * name in ONE table (a new estimator is one function and one row), plus the
 * KL-in-loss term. Model-free and MPI-free: the learner feeds log-probs and
 * rewards and pushes the returned per-token gradients back through its model;
 * what must be global (whitening moments, loss normalisers) comes through a
 * reducer the learner implements with MPI_Allreduce and tests with the
 * identity. Everything is computed in double; float appears only at the array
 * interfaces. Per-token formulas live where they were: GAE, whitening and the
 * clipped loss in learner/ppo_math.h (ppo_policy_loss_with carries clip-higher
 * and dual-clip), the k1/k2/k3 estimators and their gradients in
 * rewarder/kl.h. Checked against an independent float64 numpy/torch-autograd
 * reference written from the papers' formulas
 * (tests/fixtures/make_algos_fixture.py -> algos-ref.h5).
 *
 * Advantages (one batch of n responses; a group is the G samples of one
 * prompt, identified by an id — members need not be adjacent — and lives
 * wholly on one learner, so group statistics need no reducer). With R_i the
 * sequence reward (below) and mean, std over the group (std with n - 1):
 *   grpo     A_i = (R_i - mean) / (std + eps), eps = 1e-6, broadcast to every
 *            token (DeepSeekMath, Shao et al. 2024)
 *   drgrpo   A_i = R_i - mean (Liu et al. 2025, "Understanding R1-Zero-Like
 *            Training": no std division, no length normalisation)
 *   rloo     A_i = R_i - mean of the other G - 1 = G/(G-1) (R_i - mean)
 *            (Ahmadian et al. 2024); G = 1 is an error
 *   reinforce++           token rewards r_t (the score on the last token,
 *            -beta*KL_t when KL is in the reward), returns
 *            G_t = r_t + gamma G_{t+1}, whitened over every valid token of the
 *            GLOBAL batch (Hu 2025, REINFORCE++)
 *   reinforce++-baseline  the group mean of the scores subtracted from the
 *            last token's reward first, then as reinforce++ (Hu 2025; OpenRLHF
 *            reinforce_baseline)
 *   gae      ppo_gae with the value model, optionally whitened like
 *            reinforce++ (today's PPO; learner/ppo.c may keep its own call)
 * R_i is the sum of the response's token rewards (verl: token_level_rewards
 * .sum(-1)): the score, minus beta * sum KL when KL is in the reward; the
 * score itself when reward is NULL or the response is empty (no token for it
 * to land on). Edge cases: a group of equal rewards gives exactly 0 (the
 * group mean is taken relative to the first member, so no rounding residue is
 * divided by eps); a group of one has itself as baseline: 0 for grpo/drgrpo,
 * the score term 0 for reinforce++-baseline, an error for rloo; masked tokens
 * get 0 and stay out of the whitening moments (they still carry their reward
 * into the returns of earlier tokens); empty responses take part in their
 * group's statistics and have no tokens; a global batch with fewer than 2
 * valid tokens is not whitened (as learner/ppo.c).
 *
 * Where peers disagree (checked against verl core_algos.py, OpenRLHF
 * experience_maker.py/loss.py, TRL grpo_trainer.py, 2025-26):
 *   - singleton groups: verl uses mean 0 and std 1 (grpo gives the raw reward,
 *     rloo too); TRL refuses num_generations < 2; here baseline = itself.
 *   - eps: verl 1e-6, OpenRLHF 1e-9, TRL 1e-4 (std + eps for all three).
 *   - reinforce++-baseline: verl broadcasts (R_i - mean R) to every token
 *     without returns (KL in the reward enters through R); OpenRLHF, and
 *     this module, subtract the mean score and then take returns of the
 *     shaped token rewards. Equal without KL in the reward and gamma = 1.
 *   - whitening: verl masked_whiten and this module (x - mean) / sqrt(var +
 *     1e-8) with the unbiased variance; OpenRLHF the biased variance,
 *     rsqrt(max(var, 1e-8)).
 *   - grpo with KL in the reward: OpenRLHF normalises the score, then adds the
 *     per-token KL and takes returns; verl and this module normalise R_i.
 *   - masked tokens in reinforce++ returns: verl's mask marks tool-output
 *     tokens inside a response, which it skips (no reward, no discount);
 *     here every response token is an action and the mask only says which
 *     ones train (mask_truncated), so returns run over all of them.
 *
 * Loss aggregation: each mode gives every valid token of a response the same
 * weight w, from normalisers counted over the whole minibatch on every learner
 * (AlgosAggNorm, summed through the reducer), so the summed gradient is the
 * same for any micro-batch size and learner count:
 *   token-mean               w = 1 / tokens              (DAPO; TRL "dapo")
 *   seq-mean-token-mean      w = 1 / (seqs * n_i)        (GRPO paper; TRL "grpo")
 *   seq-mean-token-sum-norm  w = 1 / (seqs * max_new)    (Dr. GRPO; TRL "dr_grpo")
 * with n_i the response's valid tokens and seqs the responses with at least
 * one valid token (verl agg_loss's global_batch_size; TRL's dr_grpo counts
 * every completion, fully masked or not). Defaults: verl token-mean, TRL dapo
 * (= token-mean), OpenRLHF token-level. Any ppo_*_batch function run on one
 * response with denom = 1 / w aggregates the same way (e.g. the entropy bonus).
 *
 * Policy loss "ppo": ppo_policy_loss_with per token — the clipped surrogate
 * with clip_low / clip_high (clip-higher, DAPO, Yu et al. 2025: 0.2 / 0.28),
 * dual_clip = c > 1 capping a negative-advantage token's loss at -c * A (Ye et
 * al. 2020; verl's clip_ratio_c, default 3 and always on; OpenRLHF off by
 * default; off here unless set) and the log-ratio clamp to [-20, 20] (verl,
 * OpenRLHF). KL in the loss: coef * k(logp, ref_logp) per token with the same
 * weights (verl kl_loss via agg_loss; GRPO paper: k3, beta 0.04; verl
 * kl_loss_type low_var_kl, coef 0.001; TRL beta 0 = off).
 *
 * Peers' defaults for the presets: TRL GRPOTrainer G = 8, beta = 0, epsilon
 * 0.2 (epsilon_high = epsilon), loss_type dapo, scale_rewards group, one
 * update per batch; verl grpo: norm_adv_by_std_in_grpo, clip 0.2, token-mean,
 * use_kl_loss off (kl_loss_coef 0.001, low_var_kl when on), gamma = lam = 1;
 * OpenRLHF: eps_clip 0.2, k1 in the reward (init_kl_coef 0.01), gamma 1.
 *
 * Sign convention as ppo_math: every loss is to be MINIMISED. Functions that
 * fail return -1 (or NAN) with a one-line error (common/err.h) naming the
 * setting or the sample. */
#ifndef ALGOS_H
#define ALGOS_H

#include <stddef.h>

#include "learner/ppo_math.h"
#include "rewarder/kl.h"

/* GRPO's std epsilon (verl; TRL uses 1e-4). */
#define ALGOS_GRPO_EPS 1e-6
/* The log-ratio guard of the policy loss (verl, OpenRLHF). */
#define ALGOS_LOG_RATIO_MAX 20.0

/* Sums x[0..n) over every learner, in place: MPI_Allreduce(SUM) on the
 * learners' communicator in the learner; NULL stands for one process. Every
 * learner must make the same calls in the same order. */
typedef void (*AlgosReduce)(double *x, int n, void *ctx);

/* ---- advantages -------------------------------------------------------- */

/* One response of the batch. */
typedef struct {
    int len;             /* response tokens; 0 = an empty response */
    int group;           /* group id: the samples of one prompt share it */
    double score;        /* sequence score (reward model and/or verifier) */
    const float *reward; /* len token rewards as the rewarder shaped them (score
                            on the last token, -beta*KL_t with KL in the reward);
                            NULL = the score alone on the last token */
    const float *values; /* len values V(s_t): gae only */
    const float *mask;   /* len; 0 = token out of the loss and the whitening;
                            NULL = every token counts */
    float *adv;          /* out: len advantages, 0 on masked tokens */
    float *ret;          /* out, may be NULL: len returns (gae: value targets;
                            reinforce++: returns before whitening; group
                            estimators: the advantage, as verl) */
} AlgosSeq;

typedef struct {
    double gamma;        /* reinforce++ and gae discount, [0, 1] (peers: 1) */
    double lambda;       /* gae, [0, 1] */
    double eps;          /* grpo std epsilon, >= 0 (ALGOS_GRPO_EPS) */
    int whiten;          /* gae only: whiten over the global batch
                            (whiten_advantages); reinforce++ always does,
                            the group estimators never */
    AlgosReduce reduce;  /* NULL: one process */
    void *reduce_ctx;
} AlgosAdvOpts;

typedef struct AlgosAdvantage AlgosAdvantage;
struct AlgosAdvantage {
    const char *name;
    int (*run)(const AlgosAdvOpts *o, AlgosSeq *s, int n);
    int needs_values; /* a value model (and its checkpoint) is needed */
    int min_group;    /* smallest group the estimator is defined for */
};

/* The row named `name`; NULL and an error listing the names otherwise. */
const AlgosAdvantage *algos_advantage_find(const char *name);
/* "gae|grpo|drgrpo|rloo|reinforce++|reinforce++-baseline", from the table
 * (the form of a CfgKey's .choices). */
const char *algos_advantage_names(void);
/* Fills s[i].adv (and .ret) for the n responses of this learner. Checks the
 * options and the responses first (lengths, arrays, finite scores and
 * rewards, values for gae, group sizes): 0, or -1 with an error naming the
 * option or the sample and group. With a reducer, every learner calls it
 * (n may be 0 on some). */
int algos_advantage(const AlgosAdvantage *a, const AlgosAdvOpts *o, AlgosSeq *s, int n);

/* ---- loss aggregation -------------------------------------------------- */

/* Normalisers of one minibatch: local counts from algos_agg_count, then
 * summed over the learners (algos_agg_reduce). */
typedef struct {
    double tokens;  /* valid tokens */
    double seqs;    /* responses with at least one valid token */
    double max_new; /* the response length limit (seq-mean-token-sum-norm) */
} AlgosAggNorm;

typedef struct AlgosAgg AlgosAgg;
struct AlgosAgg {
    const char *name;
    /* weight of each valid token of a response with n valid tokens */
    double (*weight)(const AlgosAggNorm *g, double n);
    int needs_max_new; /* the weight uses g->max_new */
};

const AlgosAgg *algos_agg_find(const char *name);
/* "token-mean|seq-mean-token-mean|seq-mean-token-sum-norm". */
const char *algos_agg_names(void);
/* Adds one response's valid tokens (and the response, if it has any) to
 * acc->tokens and acc->seqs. mask NULL = all len tokens. */
void algos_agg_count(AlgosAggNorm *acc, int len, const float *mask);
/* Sums tokens and seqs over the learners (one reducer call; max_new is a
 * setting, the same everywhere). */
void algos_agg_reduce(AlgosAggNorm *g, AlgosReduce reduce, void *ctx);
/* The weight of every valid token of this response (0 if it has none): what
 * the learner multiplies each token's loss gradient by. NAN and an error when
 * the normaliser cannot hold this response (tokens or seqs not positive,
 * fewer global tokens than its own, len > max_new for the sum-norm mode). */
double algos_agg_weight(const AlgosAgg *a, const AlgosAggNorm *g, int len, const float *mask);

/* ---- policy loss and KL in the loss ------------------------------------ */

/* One response's tokens as the learner sees them in a micro-batch. */
typedef struct {
    int len;
    const float *logp;     /* current policy */
    const float *old_logp; /* behaviour policy (the actor's) */
    const float *ref_logp; /* frozen reference: KL in the loss only */
    const float *adv;
    const float *mask;     /* NULL = every token counts */
} AlgosTokens;

/* Plain sums over the tokens seen, so they all-reduce-sum (MAX for
 * ratio_dev_max); fractions are count / tokens. Start from (AlgosSums){0}. */
typedef struct {
    double loss;          /* weighted policy loss (sum of w * L) */
    double tokens;        /* valid tokens */
    double clipped;       /* tokens whose clipped term held (no gradient) */
    double clipped_low;   /* ...adv < 0, ratio < 1 - clip_low */
    double clipped_high;  /* ...adv > 0, ratio > 1 + clip_high */
    double dual_clipped;  /* adv < 0 tokens capped by dual_clip */
    double approx_kl;     /* sum of k3(old || new) */
    double ratio_dev_max; /* max |ratio - 1| */
    double kl;            /* KL in the loss: sum of k over valid tokens */
    double kl_loss;       /* ...and coef * sum of w * k */
} AlgosSums;

typedef struct AlgosPolicyLoss AlgosPolicyLoss;
struct AlgosPolicyLoss {
    const char *name;
    /* the weighted loss of one response; ADDS w * dL/dlogp to d_logp */
    double (*seq)(const PpoClip *c, const AlgosTokens *t, double w, float *d_logp, AlgosSums *sum);
};

const AlgosPolicyLoss *algos_policy_loss_find(const char *name);
/* "ppo". */
const char *algos_policy_loss_names(void);
/* The PpoClip of the settings, with the log-ratio guard ALGOS_LOG_RATIO_MAX;
 * 0, or -1 with an error naming the setting (ppo_clip_check). */
int algos_clip(double clip_low, double clip_high, double dual_clip, PpoClip *c);
/* One response: returns sum over valid tokens of w * L_t and ADDS
 * w * dL_t/dlogp_t to d_logp[t] (masked tokens untouched), so the policy and
 * KL terms of a token share one gradient array: zero it first. Adds to *sum
 * (may be NULL). NAN and an error for a bad clip, w < 0 or not finite, or
 * missing arrays. */
double algos_policy_loss(const AlgosPolicyLoss *p, const PpoClip *c, const AlgosTokens *t, double w,
                         float *d_logp, AlgosSums *sum);
/* KL in the loss (kl_in = loss): returns coef * sum over valid tokens of
 * w * k(logp, ref_logp) and ADDS coef * w * dk/dlogp to d_logp. coef >= 0
 * and finite. NAN and an error as algos_policy_loss, or without ref_logp. */
double algos_kl_loss(RewarderKl est, double coef, const AlgosTokens *t, double w, float *d_logp, AlgosSums *sum);

#endif
