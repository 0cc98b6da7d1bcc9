/* losses — the preference-learning objectives of the rm and dpo stages:
 * Bradley–Terry pairwise loss and InstructGPT's K-wise ranking loss on
 * reward-model scores, and DPO / conservative DPO / IPO on sequence log-prob
 * sums. Each returns the loss and its gradients w.r.t. its inputs, computed in
 * double and in numerically stable form (softplus, never log(sigmoid)), so a
 * margin of ±1000 gives finite values. The trainers feed the gradients into
 * the model's backward pass; checked against a torch autograd fixture
 * (tests/fixtures/make_loss_fixture.py).
 *
 * Two flavours of every loss:
 *   per-element  loss_bt, loss_kwise, loss_dpo: one comparison (or ranking),
 *                unscaled loss and gradients, double in and out.
 *   batched      loss_*_batch: n elements, float arrays in, float gradients
 *                out; the returned loss, the gradients and the metrics are the
 *                per-element sums divided by `denom`. Pass denom = n for a
 *                local mean; under data parallelism pass the GLOBAL batch size
 *                on every rank and all-reduce-sum the loss, gradients and
 *                metrics — the result is then the global mean for any number
 *                of ranks. denom must be positive and finite, or the batched
 *                functions return NAN and set an error (common/err.h). */
#ifndef LOSSES_H
#define LOSSES_H

#include <stddef.h>

/* ---- reward model ------------------------------------------------------ */

/* Bradley–Terry: L = -log sigmoid(r_chosen - r_rejected). Writes dL/dr_chosen
 * and dL/dr_rejected (= -dL/dr_chosen); either pointer may be NULL. */
double loss_bt(double r_chosen, double r_rejected, double *d_chosen, double *d_rejected);

/* One K-wise ranking r[0..k), best first, as one element holding all
 * C(k,2) comparisons: L = (1/C(k,2)) * sum_{i<j} -log sigmoid(r[i] - r[j]).
 * Writes dL/dr[0..k) into d_r and the fraction of pairs with r[i] > r[j]
 * (ties count as wrong) into *accuracy; either may be NULL. k = 2 equals
 * loss_bt. k < 2 has no comparison: returns NAN and sets an error. */
double loss_kwise(const double *r, int k, double *d_r, double *accuracy);

/* n pairs; *accuracy (may be NULL) = count(r_chosen > r_rejected) / denom. */
double loss_bt_batch(size_t n, const float *r_chosen, const float *r_rejected, double denom,
                     float *d_chosen, float *d_rejected, double *accuracy);

/* n rankings of the same k, row-major r[n*k]; d_r has the same layout;
 * *accuracy (may be NULL) = sum of per-ranking accuracies / denom; k < 2
 * returns NAN and sets an error. Rankings of mixed lengths: call loss_kwise
 * per element. */
double loss_kwise_batch(size_t n, int k, const float *r, double denom, float *d_r, double *accuracy);

/* ---- DPO family -------------------------------------------------------- */

typedef enum {
    LOSS_DPO,  /* -log sigmoid(beta*h) */
    LOSS_CDPO, /* conservative DPO: -(1-eps) log sigmoid(beta*h) - eps log sigmoid(-beta*h) */
    LOSS_IPO,  /* (h - 1/(2*beta))^2 */
} LossDpoType;

typedef struct {
    LossDpoType type;
    double beta;            /* > 0; strength of the tie to the reference */
    double label_smoothing; /* cdpo's eps in [0, 0.5); must be 0 for dpo and ipo */
} LossDpoConfig;

/* One preference pair's log-probabilities of the response tokens, summed
 * over the response (the DPO paper's sequence log-likelihood). For IPO too
 * we use sums, as in the IPO paper (Azar et al. 2023); TRL instead averages
 * the log-probs over response tokens for IPO, so to reproduce TRL numbers the
 * trainer would pass per-token means here. The losses themselves only see h. */
typedef struct {
    double policy_chosen, policy_rejected; /* under the policy being trained */
    double ref_chosen, ref_rejected;       /* under the frozen reference */
} LossDpoPair;

/* Implicit-reward metrics (the same for every type, as TRL logs them). */
typedef struct {
    double chosen_reward;   /* beta * (policy_chosen - ref_chosen) */
    double rejected_reward; /* beta * (policy_rejected - ref_rejected) */
    double margin;          /* chosen_reward - rejected_reward */
    double accuracy;        /* 1 if margin > 0 else 0 (batched: count/denom) */
} LossDpoMetrics;

/* {LOSS_DPO, beta 0.1, label_smoothing 0}. */
LossDpoConfig loss_dpo_default(void);
/* "dpo", "cdpo", "ipo" -> *type; anything else: -1 and an error naming it. */
int loss_dpo_type_parse(const char *name, LossDpoType *type);
/* The name loss_dpo_type_parse accepts ("?" for an invalid value). */
const char *loss_dpo_type_name(LossDpoType type);
/* Checks a known type, beta > 0 and finite, 0 <= label_smoothing < 0.5 for
 * cdpo and label_smoothing = 0 for dpo and ipo (where it would be silently
 * ignored): 0, or -1 with an error naming the field. The loss functions
 * trust their config, so trainers call this once at start-up. */
int loss_dpo_config_check(const LossDpoConfig *c);

/* With h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected),
 * returns the loss of c->type; writes dL/dpolicy_chosen and
 * dL/dpolicy_rejected (= -dL/dpolicy_chosen; the reference gets no gradient)
 * and the metrics. Any output pointer may be NULL. */
double loss_dpo(const LossDpoConfig *c, const LossDpoPair *p, double *d_policy_chosen,
                double *d_policy_rejected, LossDpoMetrics *metrics);

/* n pairs as four arrays; metrics (may be NULL) are per-element sums / denom. */
double loss_dpo_batch(const LossDpoConfig *c, size_t n, const float *policy_chosen,
                      const float *policy_rejected, const float *ref_chosen,
                      const float *ref_rejected, double denom, float *d_policy_chosen,
                      float *d_policy_rejected, LossDpoMetrics *metrics);

#endif
