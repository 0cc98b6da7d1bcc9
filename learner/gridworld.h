/* gridworld — the tutorial's cat: `rlhf gridworld` trains a tabular policy
 * and value function on a small grid with the same PPO code as the language
 * model (ppo_gae, ppo_whiten, ppo_policy_loss_batch, ppo_value_loss_batch,
 * ppo_entropy_loss_batch from learner/ppo_math.h). Unlike a response, which
 * is one terminal trajectory with the score on its last token, an episode
 * here is many steps with gamma < 1, slips and a step limit (a cut-off
 * episode bootstraps from the critic), so it exercises multi-step GAE.
 *
 * The default map (4 rows x 5 columns; rows written top to bottom, '/'
 * between rows in --map):
 *
 *       0   1   2   3   4
 *   0   C   .   T   .   M       C  the cat's start      T  bathtub: -10, episode ends
 *   1   .   B   .   B   .       M  meat: +100, ends     B  broom: -1 (the cat walks on)
 *   2   .   .   .   .   .       .  empty: 0             a move off the grid: stay, 0
 *   3   .   .   .   .   .
 *
 * The meat is 4 steps away in a straight line, through the bathtub. The
 * shortest way round (6 steps, below the bathtub) is the tempting shortcut:
 * it crosses both brooms (-2) and passes right beside the bathtub, where a
 * slip ends the episode. The shortest safe path (no broom, no bathtub) drops
 * to row 2 and takes 8 steps. The cat is drunk: with probability `slip` it
 * moves in one of the other three directions, chosen uniformly. With
 * gamma = 0.99 the two extra steps of the safe path cost 100 g^5 (1 - g^2)
 * = 1.89 in value, the two brooms of the shortcut 0.99 + 0.97 = 1.96: a
 * near tie without slips, which the shortcut's risk of slipping into the
 * bathtub breaks, so with slips the best policy (value iteration, about 1
 * ahead where the routes part) takes the 8-step safe path and reaches the
 * meat in ~99.7% of episodes. With gamma = 0.95 two steps cost ~7 and the
 * best policy takes the brooms: the discount decides what "safe" is worth.
 * (Where every short path runs beside a bathtub, a slip of 0.1 caps success
 * near 1 - 0.1/3 per such step; this map keeps the safe path clear of it.)
 *
 * Policy: softmax over a table of logits[state][4]; value: a table V[state];
 * both trained by Adam from the PPO gradients, chained by hand through the
 * softmax. Actions are 0 north, 1 east, 2 south, 3 west. */
#ifndef GRIDWORLD_H
#define GRIDWORLD_H

#include <stdint.h>

#include "common/rng.h"

#define GRIDWORLD_ACTIONS 4
#define GRIDWORLD_MAX_SIDE 32

/* The map above, in --map syntax. */
extern const char gridworld_default_map[];

typedef struct {
    int rows, cols;
    char *cell; /* rows*cols of '.', 'B', 'T', 'M' (the start is '.') */
    int start;  /* state index row * cols + col */
} Gridworld;

/* Parses rows of '.', 'C', 'B', 'T', 'M' separated by '/': equal lengths, at
 * most GRIDWORLD_MAX_SIDE a side, exactly one C, at least one M reachable
 * from C without entering a bathtub. Returns 0, or -1 with an error naming
 * the row/column. */
int gridworld_parse(Gridworld *g, const char *map);
void gridworld_free(Gridworld *g);

/* A state is terminal when it holds meat or a bathtub (the cat never acts there). */
int gridworld_terminal(const Gridworld *g, int state);

typedef struct {
    int state;     /* where the cat is after the move */
    double reward; /* of the cell entered: 0, -1, -10, +100; 0 for a bump */
    int done;      /* 1 on meat or bathtub */
} GridworldStep;

/* The deterministic move in direction dir (0..3) from a non-terminal state. */
GridworldStep gridworld_move(const Gridworld *g, int state, int dir);
/* The drunk cat: with probability slip the move goes in one of the other
 * three directions (uniform), else as intended. Draws one uniform double, and
 * one rng_below(3) only when slipping. *moved (may be NULL) gets the
 * direction actually taken. */
GridworldStep gridworld_step(const Gridworld *g, int state, int action, double slip, Rng *rng, int *moved);

/* Length of the shortest path from the start to any meat that enters no
 * broom and no bathtub (BFS); -1 when there is none. */
int gridworld_shortest_safe(const Gridworld *g);

/* Optimal policy of the slipping cat by value iteration (to 1e-10):
 * policy[state] (ties: lowest action) and, if V is not NULL, V[state]
 * (0 on terminal states). The independent check that the map and gamma make
 * the safe path the best one. Returns 0 or -1 with an error for bad
 * gamma (must be in [0, 1)) or slip (in [0, 1]). */
int gridworld_value_iteration(const Gridworld *g, double gamma, double slip, int *policy, double *V);

typedef struct {
    double slip;      /* probability of a random other direction */
    double gamma;     /* discount, in (0, 1] */
    double lambda;    /* GAE lambda */
    int max_steps;    /* per episode; a cut-off episode bootstraps from V */
    int iterations;   /* collect + update rounds */
    int episodes;     /* per iteration */
    int epochs;       /* PPO passes over each iteration's steps */
    int minibatch;    /* steps per gradient step */
    double lr;        /* Adam on the logits */
    double value_lr;  /* Adam on the value table */
    double clip;      /* policy ratio clip */
    double value_clip;/* value clip in reward units; 0 = off */
    double ent_coef;  /* c2 */
    uint64_t seed;
} GridworldConfig;

GridworldConfig gridworld_config_default(void);
/* 0, or -1 with an error naming the option. */
int gridworld_config_check(const GridworldConfig *c);

typedef struct {
    int n_states;
    double *logits; /* [n_states][GRIDWORLD_ACTIONS] */
    double *values; /* [n_states] */
} GridworldAgent;

/* Per-iteration statistics of the rollouts (before that iteration's update)
 * and of its PPO epochs. */
typedef struct {
    int iteration;
    double mean_return; /* undiscounted sum of rewards per episode */
    double mean_length; /* steps per episode */
    double success;     /* fraction of episodes that reached meat */
    double entropy;     /* mean policy entropy over the visited states (nats) */
    double clip_frac, approx_kl, value_loss; /* means over the minibatches */
} GridworldProgress;

typedef void (*GridworldProgressFn)(const GridworldProgress *p, void *ctx);

/* Uniform policy (zero logits), zero values. */
void gridworld_agent_init(GridworldAgent *a, int n_states);

/* Backward through pi = softmax(logits[0..4)) of one state: adds to
 * grad[0..4) the gradient of d_logp * log pi(action) + d_ent * H(pi). This is
 * where ppo_policy_loss_batch's dL/dlogp and ppo_entropy_loss_batch's dL/dH
 * reach the table. */
void gridworld_softmax_backward(const double *logits, int action, double d_logp, double d_ent, double *grad);

/* One iteration's steps, episode after episode. */
typedef struct {
    int n, cap;
    int *state, *action;
    float *old_logp, *old_value, *reward;
    float *adv; /* GAE advantages, whitened over all n steps */
    float *ret; /* GAE returns (value targets), not whitened */
} GridworldRollout;

void gridworld_rollout_init(GridworldRollout *r, int cap);
void gridworld_rollout_free(GridworldRollout *r);

/* Plays c->episodes episodes with a's sampling policy (r must hold
 * episodes * max_steps steps). GAE per episode with bootstrap 0 after meat
 * or bathtub and V(s_T) when the step limit cut the episode off; then the
 * advantages are whitened over the batch. Adds the rollout statistics
 * (return, length, success, entropy) to *p. */
void gridworld_collect(const Gridworld *g, const GridworldConfig *c, const GridworldAgent *a, Rng *rng,
                       GridworldRollout *r, GridworldProgress *p);

/* Trains a fresh agent (uniform policy, zero values) on g. progress (may be
 * NULL) is called after every iteration. Deterministic for a given config.
 * Returns 0, or -1 with an error (bad config). */
int gridworld_train(const Gridworld *g, const GridworldConfig *c, GridworldAgent *agent,
                    GridworldProgressFn progress, void *ctx);
void gridworld_agent_free(GridworldAgent *a);
/* policy[s] = argmax of the logits (ties: lowest action). */
void gridworld_greedy(const GridworldAgent *a, int *policy);

typedef struct {
    double success;     /* fraction of episodes that reached meat */
    double mean_steps;  /* over all episodes */
    double mean_return; /* undiscounted */
} GridworldEval;

/* Runs a deterministic policy for `episodes` episodes with slips. */
GridworldEval gridworld_evaluate(const Gridworld *g, const int *policy, double slip, int max_steps,
                                 int episodes, Rng *rng);

typedef struct {
    int length;  /* steps taken */
    int reached; /* ended on meat */
    int brooms;  /* brooms entered */
    int bathtub; /* ended in a bathtub */
} GridworldPath;

/* Follows a deterministic policy without slips from the start, at most
 * max_steps steps. */
GridworldPath gridworld_path(const Gridworld *g, const int *policy, int max_steps);

/* What `rlhf gridworld` does besides training. */
typedef struct {
    const char *map;    /* --map syntax, e.g. gridworld_default_map */
    int eval_episodes;  /* episodes of the final evaluation, >= 1 */
    double min_success; /* success rate the verdict asks for */
    int log_every;      /* progress every N iterations (0 = never) */
} GridworldRunOptions;

/* `rlhf gridworld`: check c, parse o->map, train, and print on stdout the
 * progress, the greedy policy, its path against the shortest safe path, the
 * evaluation (and value iteration's optimum) and a verdict. Returns 0 on completion whatever the
 * verdict (the tests read it), or -1 + err_set (bad config or map; a map
 * error starts "--map: "). */
int gridworld_run(const GridworldConfig *c, const GridworldRunOptions *o);

#endif
