/* algos — the mathematics of the critic-free RL family on the PPO job (issue
 * 15), in the style of verl's core_algos.py: advantage estimators, loss
 * aggregation modes and policy losses, each a small function registered by
 * name in ONE table (a new estimator is one function and one row), plus KL in
 * the loss. Model- and MPI-free: the learner passes log-probs and rewards in
 * and pushes the per-token gradients back through its model; what must be
 * global (whitening moments, loss normalisers) goes through a reducer the
 * learner implements with MPI_Allreduce (the tests: identity, or threads).
 * Arithmetic in double. The per-token formulas keep one home: GAE, whitening
 * and the clipped loss in learner/ppo_math.h, k1/k2/k3 and their gradients in
 * common/model/kl.h. Checked against a float64 numpy/torch-autograd reference
 * written from the papers (tests/fixtures/make_algos_fixture.py); where
 * verl, OpenRLHF and TRL disagree is noted in algos.c beside the code.
 *
 * Advantages, over the G samples of a prompt (a group: an id, members need
 * not be adjacent, all on one learner), R_i the response's reward (the sum of
 * its token rewards — the score, less beta * sum KL when KL is in the reward
 * — or the score when there are none), mean and std (n - 1) over its group:
 *   grpo                  (R_i - mean) / (std + 1e-6) on every token
 *                         (DeepSeekMath GRPO, Shao et al. 2024)
 *   drgrpo                R_i - mean (Dr. GRPO, Liu et al. 2025)
 *   rloo                  R_i - the mean of the other G - 1 (RLOO, Ahmadian et
 *                         al. 2024); a group of one is an error
 *   reinforce++           returns G_t = r_t + gamma G_{t+1} of the token
 *                         rewards, whitened over every valid token of the
 *                         GLOBAL batch (REINFORCE++, Hu 2025)
 *   reinforce++-baseline  the group's mean score off the last token first,
 *                         then as reinforce++ (Hu 2025; OpenRLHF)
 *   gae                   ppo_gae with the value model, optionally whitened
 *                         the same way (today's PPO)
 * Equal rewards in a group give exactly 0; a group of one is its own
 * baseline (0 for grpo and drgrpo); masked tokens get 0 and stay out of the
 * whitening (their rewards still reach earlier tokens' returns); an empty
 * response counts in its group and has no tokens; fewer than 2 valid tokens
 * in the global batch are left unwhitened, as learner/ppo.c does.
 *
 * Loss aggregation: every valid token of a response gets one weight w, from
 * the minibatch's counts over all learners (so the summed gradient does not
 * depend on micro-batch size or learner count):
 *   token-mean               1 / tokens            DAPO (Yu et al. 2025)
 *   seq-mean-token-mean      1 / (seqs * n_i)      the GRPO paper
 *   seq-mean-token-sum-norm  1 / (seqs * max_new)  Dr. GRPO
 * n_i: the response's valid tokens; seqs: responses with at least one. One
 * response through any ppo_*_batch with denom = 1 / w aggregates alike (e.g.
 * the entropy bonus).
 *
 * Policy loss "ppo": ppo_policy_loss_with, the clipped surrogate with
 * clip_low / clip_high (clip-higher: DAPO), dual_clip c > 1 capping the loss
 * of a negative-advantage token at -c * A (Ye et al. 2020) and the log ratio
 * clamped to [-20, 20]. KL in the loss: coef * k(logp, ref_logp) per token,
 * aggregated with the same weights.
 *
 * Peers' defaults (the presets' starting points): TRL GRPOTrainer G = 8,
 * beta 0 (no KL), epsilon 0.2 = epsilon_high, loss_type dapo (token-mean),
 * scale_rewards group, std + 1e-4; verl adv_estimator gae, grpo with
 * norm_adv_by_std_in_grpo, clip_ratio 0.2, clip_ratio_c 3 (dual-clip always
 * on), loss_agg_mode token-mean, use_kl_loss off (low_var_kl, 0.001 when on),
 * gamma = lam = 1; OpenRLHF eps_clip 0.2, dual_clip off, k1 in the reward
 * (init_kl_coef 0.01), gamma 1; the GRPO paper k3 in the loss, beta 0.04;
 * DAPO clip 0.2 / 0.28, no KL.
 *
 * Every loss is to be MINIMISED (as ppo_math). A failure returns -1 or NAN
 * with a one-line error (common/err.h) naming the setting or the sample. */
#ifndef ALGOS_H
#define ALGOS_H


#include "learner/ppo_math.h"
#include "common/model/kl.h"

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
    double tokens;        /* valid tokens (algos_policy_loss counts them) */
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
double algos_kl_loss(KlEstimator est, double coef, const AlgosTokens *t, double w, float *d_logp, AlgosSums *sum);

#endif
