/* plan — the capacity model of the RL job (`rlhf plan`): how long an
 * iteration takes with A actors, split into generate / reward / learn /
 * transfer, how busy each role is, and from which actor count more actors
 * stop paying and which role (the learner, the rewarders) is then the
 * bottleneck, so a user can size an `srun` before submitting.
 *
 * Calibration: the work of each role is timed on this machine, one process,
 * by the same model functions the roles call, at the configuration's shapes
 * (the real policy and prompts, so response lengths are the model's own):
 *   gen_order    one work order: gen_run of `chunk` sequences (groups of G
 *                sharing a prefill), the actor's call
 *   ref_order    the reference's log-probs of one order's rows (0 when
 *                kl_in = none), the rewarder's score_response_logp
 *   rm_order     the reward model's scores of one order's rows (0 without
 *                a reward model), score_reward
 *   policy_micro the learner's forward + backward of micro_batch rows
 *   value_micro  the value model's forward + backward of micro_batch rows,
 *                and its forward before the epochs (0 unless advantage = gae)
 *   step         one optimizer step (AdamW over the policy, + the value model)
 *   bandwidth    bytes/s of copying a snapshot (a stand-in for shared memory;
 *                give the interconnect's for a cluster)
 * The calibration is a key = value file (plan_calibration_save/_load) that
 * also records the shapes it was measured at; loading it for another shape
 * is an error naming the field, so a file from one node of the target
 * cluster predicts for that cluster.
 *
 * The model, per iteration, with O = batch_size / chunk orders, A actors, R
 * rewarders, L learners, C cores (0: a core per rank, as on a cluster
 * allocation), r = ref_order + rm_order, and M = ppo_epochs * batch_size /
 * micro_batch micro-steps, S = ppo_epochs * batch_size / minibatch steps:
 *   W_gen = O gen_order   W_rew = O r
 *   W_learn = M (policy_micro + value_micro) + (batch_size / micro_batch) value_fwd
 *   PS(works): processor sharing of processes needing those seconds of one
 *            core each on C cores (while k > C run, each advances at C / k)
 *   generate = max(ceil(O / A) gen_order, PS(the actors' shares of W_gen))
 *   gen_and_reward = max(ceil(O / A) gen_order + ceil(min(A, O) / R) r,
 *                        gen_order + ceil(O / R) r,
 *                        PS(the actors' and the rewarders' shares), generate):
 *            scoring runs behind generation and ends after the last wave of
 *            orders (one per actor) is scored or after the rewarders'
 *            backlog; reward = gen_and_reward - generate
 *   learn    = PS(L learners of W_learn / L + S step each) (+ with L > 1, S
 *              all-reduces of the gradients: 2 * snapshot bytes / bandwidth)
 *   transfer = copies * snapshot bytes / bandwidth, copies = A with
 *              snapshot_send = p2p (the learner sends one to each actor),
 *              with bcast (the default) the binomial tree's ceil(log2(A + 1))
 *              rounds, at least ceil(A / C) on C shared cores
 *   lag 0:   iteration = gen_and_reward + learn + transfer
 *   lag >= 1: actors sample the next iteration while the learner trains:
 *            iteration = max(gen_and_reward, learn + transfer,
 *                            PS(actors, rewarders and learners together))
 * Utilisation of a role = its work per rank / iteration; the busiest role
 * bounds the iteration. The report names the actor count from which more
 * actors save less than 5% (plan_saturation) and the role that bounds the
 * iteration there. Filtered groups (filter_groups) add fill rounds the model does
 * not know in advance; an external verifier's time is not measured. */
#ifndef PLAN_H
#define PLAN_H

#include <stdio.h>

#include "common/config.h"

typedef struct {
    /* the shapes measured at */
    long long policy_params, rm_params, value_params, ref_params;
    int chunk, group_size, max_new, micro_batch, threads;
    double prompt_len, resp_len; /* mean tokens per prompt, per response */
    /* seconds, bytes/s */
    double gen_order, ref_order, rm_order, policy_micro, value_micro, value_fwd, step;
    double bandwidth;
} PlanCalibration;

typedef struct {
    int actors;
    double generate, reward, learn, transfer, iteration;
    double util_actor, util_rewarder, util_learner;
    const char *bound; /* the busiest role: "actors", "rewarders" or "learner" */
} PlanRow;

/* Keys of `rlhf plan` besides the RL job's (actors, cores, bandwidth,
 * calibration, save_calibration, json, preset). */
extern const CfgKey plan_keys[];

/* Times the roles' work for the RL job configured in cfg (the ppo keys):
 * loads policy, prompts, and the reference / reward / value models the
 * configuration uses. 0, or -1 + err_set. */
int plan_calibrate(const Config *cfg, PlanCalibration *cal);
/* The calibration expected for cfg's shapes, with the times unknown (0). */
int plan_shapes(const Config *cfg, PlanCalibration *cal);
int plan_calibration_save(const PlanCalibration *cal, const char *path);
/* Reads path and checks it was measured at want's shapes: -1 + err_set
 * "PATH: FIELD was N when measured, the configuration gives M" otherwise. */
int plan_calibration_load(PlanCalibration *cal, const char *path, const PlanCalibration *want);

/* The prediction for `actors` actor ranks; cores 0 = a core per rank. */
PlanRow plan_predict(const PlanCalibration *cal, const Config *cfg, int actors, int cores);
/* Where more actors stop paying: the smallest actor count whose iteration
 * is within PLAN_SATURATION of the best any count gives (counts up to the
 * orders per iteration: more actors would have no order to take), with its
 * row in *at (at->bound names the role that bounds the iteration there; at
 * lag >= 1 it is the learner once generation hides behind learning). */
#define PLAN_SATURATION 1.05
int plan_saturation(const PlanCalibration *cal, const Config *cfg, int cores, PlanRow *at);

/* The report: the calibration, a table of rows for each actor count in the
 * comma-separated list, the saturation line; as text or one JSON object. */
int plan_report(const PlanCalibration *cal, const Config *cfg, const char *actors, int cores, int as_json, FILE *out);

#endif
