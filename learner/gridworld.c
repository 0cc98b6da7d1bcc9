/* gridworld — the tutorial's drunk cat trained with the language model's PPO
 * code (see gridworld.h for the map and the rules). Four parts: the
 * environment (parse, move, slip, BFS, value iteration), the tabular agent
 * (softmax logits, values, a small Adam), PPO training (rollouts, GAE,
 * whitening, minibatch epochs through learner/ppo_math.h) and the command. */
#include "learner/gridworld.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "learner/ppo_math.h"

const char gridworld_default_map[] = "C.T.M/.B.B./...../.....";

static const int dir_row[GRIDWORLD_ACTIONS] = {-1, 0, 1, 0};
static const int dir_col[GRIDWORLD_ACTIONS] = {0, 1, 0, -1};
static const char dir_arrow[GRIDWORLD_ACTIONS] = {'^', '>', 'v', '<'};

/* ---- environment ------------------------------------------------------------ */

static int cell_terminal(char c) {
    return c == 'M' || c == 'T';
}

int gridworld_terminal(const Gridworld *g, int state) {
    return cell_terminal(g->cell[state]);
}

/* Distances from the start over cells accepted by `passable` (BFS); dist[s]
 * = -1 where unreachable. */
static void bfs(const Gridworld *g, int (*passable)(char), int *dist) {
    int n = g->rows * g->cols, *queue = err_malloc((size_t)n * sizeof *queue), head = 0, tail = 0;
    for (int s = 0; s < n; s++) dist[s] = -1;
    dist[g->start] = 0;
    queue[tail++] = g->start;
    while (head < tail) {
        int s = queue[head++];
        if (cell_terminal(g->cell[s])) continue; /* the episode ends there */
        int r = s / g->cols, c = s % g->cols;
        for (int a = 0; a < GRIDWORLD_ACTIONS; a++) {
            int rr = r + dir_row[a], cc = c + dir_col[a], t = rr * g->cols + cc;
            if (rr < 0 || rr >= g->rows || cc < 0 || cc >= g->cols || dist[t] >= 0 || !passable(g->cell[t])) continue;
            dist[t] = dist[s] + 1;
            queue[tail++] = t;
        }
    }
    free(queue);
}

static int not_bathtub(char c) {
    return c != 'T';
}

static int safe_cell(char c) {
    return c != 'T' && c != 'B';
}

/* Shortest distance to any meat under `passable`, -1 if none. */
static int meat_distance(const Gridworld *g, int (*passable)(char)) {
    int n = g->rows * g->cols, *dist = err_malloc((size_t)n * sizeof *dist), best = -1;
    bfs(g, passable, dist);
    for (int s = 0; s < n; s++)
        if (g->cell[s] == 'M' && dist[s] >= 0 && (best < 0 || dist[s] < best)) best = dist[s];
    free(dist);
    return best;
}

static int parse_cells(Gridworld *g, const char *map) {
    int starts = 0, meats = 0, row = 0, col = 0;
    for (const char *p = map;; p++) {
        if (*p == '/' || *p == '\0') {
            if (col != g->cols) return err_set("gridworld map: row %d has %d cells, expected %d", row + 1, col, g->cols);
            row++;
            col = 0;
            if (*p == '\0') break;
            continue;
        }
        if (!strchr(".CBTM", *p))
            return err_set("gridworld map: row %d, column %d: unknown cell '%c' (expected . C B T M)", row + 1, col + 1, *p);
        if (col == g->cols) return err_set("gridworld map: row %d has more than %d cells", row + 1, g->cols);
        int s = row * g->cols + col++;
        starts += *p == 'C';
        meats += *p == 'M';
        if (*p == 'C') g->start = s;
        g->cell[s] = *p == 'C' ? '.' : *p;
    }
    if (starts != 1) return err_set("gridworld map: expected exactly one start C, found %d", starts);
    if (meats < 1) return err_set("gridworld map: no meat M");
    return 0;
}

int gridworld_parse(Gridworld *g, const char *map) {
    memset(g, 0, sizeof *g);
    if (!map || !*map) return err_set("gridworld map: empty");
    size_t len = strlen(map);
    const char *slash = strchr(map, '/');
    g->cols = (int)(slash ? (size_t)(slash - map) : len);
    g->rows = 1;
    for (const char *p = map; *p; p++) g->rows += *p == '/';
    if (g->cols < 1 || g->cols > GRIDWORLD_MAX_SIDE || g->rows > GRIDWORLD_MAX_SIDE)
        return err_set("gridworld map: %d x %d cells; each side must be 1..%d", g->rows, g->cols, GRIDWORLD_MAX_SIDE);
    g->cell = err_malloc((size_t)g->rows * g->cols);
    if (parse_cells(g, map) == 0) {
        if (meat_distance(g, not_bathtub) >= 0) return 0;
        err_set("gridworld map: no meat can be reached from the start without entering a bathtub");
    }
    gridworld_free(g);
    return -1;
}

void gridworld_free(Gridworld *g) {
    free(g->cell);
    g->cell = NULL;
}

GridworldStep gridworld_move(const Gridworld *g, int state, int dir) {
    int r = state / g->cols + dir_row[dir], c = state % g->cols + dir_col[dir];
    if (r < 0 || r >= g->rows || c < 0 || c >= g->cols) return (GridworldStep){state, 0.0, 0};
    int t = r * g->cols + c;
    switch (g->cell[t]) {
    case 'B':
        return (GridworldStep){t, -1.0, 0};
    case 'T':
        return (GridworldStep){t, -10.0, 1};
    case 'M':
        return (GridworldStep){t, 100.0, 1};
    }
    return (GridworldStep){t, 0.0, 0};
}

GridworldStep gridworld_step(const Gridworld *g, int state, int action, double slip, Rng *rng, int *moved) {
    int dir = action;
    if (rng_uniform_double(rng) < slip) dir = (action + 1 + (int)rng_below(rng, 3)) % GRIDWORLD_ACTIONS;
    if (moved) *moved = dir;
    return gridworld_move(g, state, dir);
}

int gridworld_shortest_safe(const Gridworld *g) {
    return meat_distance(g, safe_cell);
}

/* Expected reward plus discounted value of intending `a` in s. */
static double q_value(const Gridworld *g, const double *V, int s, int a, double gamma, double slip) {
    double q = 0;
    for (int d = 0; d < GRIDWORLD_ACTIONS; d++) {
        double p = d == a ? 1 - slip : slip / 3;
        GridworldStep st = gridworld_move(g, s, d);
        q += p * (st.reward + (st.done ? 0.0 : gamma * V[st.state]));
    }
    return q;
}

int gridworld_value_iteration(const Gridworld *g, double gamma, double slip, int *policy, double *V_out) {
    if (!(gamma >= 0 && gamma < 1)) return err_set("value iteration: gamma must be in [0, 1), got %g", gamma);
    if (!(slip >= 0 && slip <= 1)) return err_set("value iteration: slip must be in [0, 1], got %g", slip);
    int n = g->rows * g->cols;
    double *V = err_calloc((size_t)n, sizeof *V);
    /* gamma < 1 makes the update a contraction; 100000 sweeps bound gamma
     * very close to 1, where convergence slows */
    for (int sweep = 0; sweep < 100000; sweep++) {
        double change = 0;
        for (int s = 0; s < n; s++) {
            if (gridworld_terminal(g, s)) continue;
            double best = -INFINITY;
            for (int a = 0; a < GRIDWORLD_ACTIONS; a++) best = fmax(best, q_value(g, V, s, a, gamma, slip));
            change = fmax(change, fabs(best - V[s]));
            V[s] = best;
        }
        if (change < 1e-10) break;
    }
    for (int s = 0; s < n; s++) {
        int best = 0;
        for (int a = 1; a < GRIDWORLD_ACTIONS && !gridworld_terminal(g, s); a++)
            if (q_value(g, V, s, a, gamma, slip) > q_value(g, V, s, best, gamma, slip) + 1e-12) best = a;
        policy[s] = best;
        if (V_out) V_out[s] = V[s];
    }
    free(V);
    return 0;
}

/* ---- tabular agent ------------------------------------------------------------ */

/* pi = softmax(logits[0..4)); returns the entropy. */
static double softmax4(const double *logits, double *pi) {
    double mx = logits[0], z = 0, h = 0;
    for (int a = 1; a < GRIDWORLD_ACTIONS; a++) mx = fmax(mx, logits[a]);
    for (int a = 0; a < GRIDWORLD_ACTIONS; a++) z += pi[a] = exp(logits[a] - mx);
    for (int a = 0; a < GRIDWORLD_ACTIONS; a++) {
        pi[a] /= z;
        if (pi[a] > 0) h -= pi[a] * log(pi[a]);
    }
    return h;
}

static int sample_action(const double *pi, Rng *rng) {
    double u = rng_uniform_double(rng), acc = 0;
    for (int a = 0; a < GRIDWORLD_ACTIONS - 1; a++)
        if (u < (acc += pi[a])) return a;
    return GRIDWORLD_ACTIONS - 1;
}

void gridworld_greedy(const GridworldAgent *a, int *policy) {
    for (int s = 0; s < a->n_states; s++) {
        const double *l = a->logits + (size_t)s * GRIDWORLD_ACTIONS;
        int best = 0;
        for (int k = 1; k < GRIDWORLD_ACTIONS; k++)
            if (l[k] > l[best]) best = k;
        policy[s] = best;
    }
}

void gridworld_agent_init(GridworldAgent *a, int n_states) {
    a->n_states = n_states;
    a->logits = err_calloc((size_t)n_states * GRIDWORLD_ACTIONS, sizeof(double));
    a->values = err_calloc((size_t)n_states, sizeof(double));
}

void gridworld_agent_free(GridworldAgent *a) {
    free(a->logits);
    free(a->values);
    a->logits = a->values = NULL;
}

/* Adam (Kingma & Ba) over one table, as common/model/adamw.c without weight decay:
 * the tables are tiny, so a separate copy beats adapting the Gpt-bound one. */
typedef struct {
    size_t n;
    double lr, *m, *v;
    long step;
} Adam;

static void adam_init(Adam *o, size_t n, double lr) {
    *o = (Adam){.n = n, .lr = lr, .m = err_calloc(n, sizeof(double)), .v = err_calloc(n, sizeof(double))};
}

static void adam_step(Adam *o, double *param, const double *grad) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    o->step++;
    double c1 = 1 - pow(b1, (double)o->step), c2 = 1 - pow(b2, (double)o->step);
    for (size_t i = 0; i < o->n; i++) {
        o->m[i] = b1 * o->m[i] + (1 - b1) * grad[i];
        o->v[i] = b2 * o->v[i] + (1 - b2) * grad[i] * grad[i];
        param[i] -= o->lr * (o->m[i] / c1) / (sqrt(o->v[i] / c2) + eps);
    }
}

static void adam_free(Adam *o) {
    free(o->m);
    free(o->v);
}

/* ---- PPO training ---------------------------------------------------------------- */

GridworldConfig gridworld_config_default(void) {
    return (GridworldConfig){
        .slip = 0.1, .gamma = 0.99, .lambda = 0.95, .max_steps = 50, .iterations = 60, .episodes = 64,
        .epochs = 4, .minibatch = 128, .lr = 0.05, .value_lr = 1.0, .clip = 0.2, .value_clip = 10.0,
        .ent_coef = 0.01, .seed = 1,
    };
}

int gridworld_config_check(const GridworldConfig *c) {
    if (!(c->slip >= 0 && c->slip <= 1)) return err_set("gridworld: --slip must be in [0, 1], got %g", c->slip);
    if (!(c->gamma > 0 && c->gamma <= 1)) return err_set("gridworld: --gamma must be in (0, 1], got %g", c->gamma);
    if (!(c->lambda >= 0 && c->lambda <= 1)) return err_set("gridworld: --lambda must be in [0, 1], got %g", c->lambda);
    if (c->max_steps < 1) return err_set("gridworld: --max-steps must be >= 1, got %d", c->max_steps);
    if (c->iterations < 0) return err_set("gridworld: --iterations must be >= 0, got %d", c->iterations);
    if (c->episodes < 1) return err_set("gridworld: --episodes must be >= 1, got %d", c->episodes);
    if (c->epochs < 1) return err_set("gridworld: --epochs must be >= 1, got %d", c->epochs);
    if (c->minibatch < 1) return err_set("gridworld: --minibatch must be >= 1, got %d", c->minibatch);
    /* one iteration's steps are kept in memory */
    if ((long long)c->episodes * c->max_steps > 50000000)
        return err_set("gridworld: --episodes x --max-steps = %lld steps per iteration; at most 50000000",
                       (long long)c->episodes * c->max_steps);
    if (!(c->lr > 0 && isfinite(c->lr))) return err_set("gridworld: --lr must be positive, got %g", c->lr);
    if (!(c->value_lr > 0 && isfinite(c->value_lr)))
        return err_set("gridworld: --value-lr must be positive, got %g", c->value_lr);
    if (!(c->clip >= 0 && isfinite(c->clip))) return err_set("gridworld: --clip must be >= 0, got %g", c->clip);
    if (!(c->value_clip >= 0)) return err_set("gridworld: --value-clip must be >= 0 (0 = off), got %g", c->value_clip);
    if (!(c->ent_coef >= 0 && isfinite(c->ent_coef)))
        return err_set("gridworld: --ent-coef must be >= 0, got %g", c->ent_coef);
    return 0;
}

void gridworld_rollout_init(GridworldRollout *r, int cap) {
    r->n = 0;
    r->cap = cap;
    r->state = err_malloc((size_t)cap * sizeof(int));
    r->action = err_malloc((size_t)cap * sizeof(int));
    float **f[] = {&r->old_logp, &r->old_value, &r->reward, &r->adv, &r->ret};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = err_malloc((size_t)cap * sizeof(float));
}

void gridworld_rollout_free(GridworldRollout *r) {
    free(r->state);
    free(r->action);
    free(r->old_logp);
    free(r->old_value);
    free(r->reward);
    free(r->adv);
    free(r->ret);
    memset(r, 0, sizeof *r);
}

/* Plays one episode with the sampling policy, appends its steps and computes
 * their advantages and returns: bootstrap 0 after meat or bathtub, V(s_T)
 * when the step limit cut it off. */
static void play_episode(const Gridworld *g, const GridworldConfig *c, const GridworldAgent *ag, Rng *rng,
                         GridworldRollout *ro, GridworldProgress *p) {
    int s = g->start, first = ro->n, done = 0;
    double total = 0, pi[GRIDWORLD_ACTIONS];
    for (int t = 0; t < c->max_steps && !done; t++) {
        p->entropy += softmax4(ag->logits + (size_t)s * GRIDWORLD_ACTIONS, pi);
        int a = sample_action(pi, rng), k = ro->n++;
        GridworldStep st = gridworld_step(g, s, a, c->slip, rng, NULL);
        ro->state[k] = s;
        ro->action[k] = a;
        ro->old_logp[k] = (float)log(pi[a]);
        ro->old_value[k] = (float)ag->values[s];
        ro->reward[k] = (float)st.reward;
        total += st.reward;
        done = st.done;
        s = st.state;
        if (done) p->success += g->cell[s] == 'M';
    }
    int T = ro->n - first;
    double bootstrap = done ? 0.0 : ag->values[s];
    /* gamma and lambda were checked with the config */
    ppo_gae(T, ro->reward + first, ro->old_value + first, bootstrap, c->gamma, c->lambda, ro->adv + first,
            ro->ret + first);
    p->mean_return += total;
    p->mean_length += T;
}

void gridworld_collect(const Gridworld *g, const GridworldConfig *c, const GridworldAgent *ag, Rng *rng,
                       GridworldRollout *ro, GridworldProgress *p) {
    ro->n = 0;
    for (int e = 0; e < c->episodes; e++) play_episode(g, c, ag, rng, ro, p);
    p->entropy /= ro->n;
    p->mean_return /= c->episodes;
    p->mean_length /= c->episodes;
    p->success /= c->episodes;
    ppo_whiten((size_t)ro->n, ro->adv, NULL, 1);
}

/* Scratch for one minibatch: the PPO inputs as the loss functions take them
 * and the gradient tables they flow into. */
typedef struct {
    float *logp, *old_logp, *adv, *ent, *value, *old_value, *ret, *d_logp, *d_value;
    double *g_logits, *g_values;
} Minibatch;

static void minibatch_init(Minibatch *m, int size, int n_states) {
    float **f[] = {&m->logp, &m->old_logp, &m->adv, &m->ent, &m->value, &m->old_value, &m->ret, &m->d_logp, &m->d_value};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = err_malloc((size_t)size * sizeof(float));
    m->g_logits = err_malloc((size_t)n_states * GRIDWORLD_ACTIONS * sizeof(double));
    m->g_values = err_malloc((size_t)n_states * sizeof(double));
}

static void minibatch_free(Minibatch *m) {
    float *f[] = {m->logp, m->old_logp, m->adv, m->ent, m->value, m->old_value, m->ret, m->d_logp, m->d_value};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
    free(m->g_logits);
    free(m->g_values);
}

/* d log pi(a) / d l_b = [b == a] - pi_b and d H / d l_b = -pi_b (log pi_b + H). */
void gridworld_softmax_backward(const double *logits, int action, double d_logp, double d_ent, double *grad) {
    double pi[GRIDWORLD_ACTIONS], h = softmax4(logits, pi);
    for (int b = 0; b < GRIDWORLD_ACTIONS; b++) {
        double dlogpi = (b == action) - pi[b];
        double dh = pi[b] > 0 ? -pi[b] * (log(pi[b]) + h) : 0.0;
        grad[b] += d_logp * dlogpi + d_ent * dh;
    }
}

/* One gradient step on the steps idx[0..n). */
static void ppo_update(const GridworldConfig *c, GridworldAgent *ag, const GridworldRollout *ro, const int *idx, int n,
                       Minibatch *m, Adam *opt_pi, Adam *opt_v, GridworldProgress *p) {
    double pis[GRIDWORLD_ACTIONS];
    for (int i = 0; i < n; i++) {
        int k = idx[i], s = ro->state[k];
        m->ent[i] = (float)softmax4(ag->logits + (size_t)s * GRIDWORLD_ACTIONS, pis);
        m->logp[i] = (float)log(pis[ro->action[k]]);
        m->old_logp[i] = ro->old_logp[k];
        m->adv[i] = ro->adv[k];
        m->value[i] = (float)ag->values[s];
        m->old_value[i] = ro->old_value[k];
        m->ret[i] = ro->ret[k];
    }
    PpoPolicyStats ps;
    double d_ent, vclip_frac;
    ppo_policy_loss_batch((size_t)n, m->logp, m->old_logp, m->adv, NULL, c->clip, n, m->d_logp, &ps);
    ppo_entropy_loss_batch((size_t)n, m->ent, NULL, c->ent_coef, n, &d_ent);
    p->value_loss += ppo_value_loss_batch((size_t)n, m->value, m->old_value, m->ret, NULL, c->value_clip, n,
                                          m->d_value, &vclip_frac);
    p->clip_frac += ps.clip_frac;
    p->approx_kl += ps.approx_kl;

    memset(m->g_logits, 0, (size_t)ag->n_states * GRIDWORLD_ACTIONS * sizeof(double));
    memset(m->g_values, 0, (size_t)ag->n_states * sizeof(double));
    for (int i = 0; i < n; i++) {
        int k = idx[i], s = ro->state[k];
        gridworld_softmax_backward(ag->logits + (size_t)s * GRIDWORLD_ACTIONS, ro->action[k], m->d_logp[i], d_ent,
                                   m->g_logits + (size_t)s * GRIDWORLD_ACTIONS);
        m->g_values[s] += m->d_value[i];
    }
    adam_step(opt_pi, ag->logits, m->g_logits);
    adam_step(opt_v, ag->values, m->g_values);
}

static void shuffle(int *x, int n, Rng *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint32_t)i + 1), t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

int gridworld_train(const Gridworld *g, const GridworldConfig *c, GridworldAgent *ag, GridworldProgressFn progress,
                    void *ctx) {
    memset(ag, 0, sizeof *ag);
    if (gridworld_config_check(c)) return -1;
    int n_states = g->rows * g->cols;
    gridworld_agent_init(ag, n_states);
    Rng rng;
    rng_seed(&rng, c->seed);
    GridworldRollout ro;
    gridworld_rollout_init(&ro, c->episodes * c->max_steps);
    Minibatch mb;
    minibatch_init(&mb, c->minibatch, n_states);
    int *order = err_malloc((size_t)ro.cap * sizeof *order);
    Adam opt_pi, opt_v;
    adam_init(&opt_pi, (size_t)n_states * GRIDWORLD_ACTIONS, c->lr);
    adam_init(&opt_v, (size_t)n_states, c->value_lr);
    for (int it = 1; it <= c->iterations; it++) {
        GridworldProgress p = {.iteration = it};
        gridworld_collect(g, c, ag, &rng, &ro, &p);
        int updates = 0;
        for (int e = 0; e < c->epochs; e++) {
            for (int i = 0; i < ro.n; i++) order[i] = i;
            shuffle(order, ro.n, &rng);
            for (int start = 0; start < ro.n; start += c->minibatch, updates++) {
                int n = ro.n - start < c->minibatch ? ro.n - start : c->minibatch;
                ppo_update(c, ag, &ro, order + start, n, &mb, &opt_pi, &opt_v, &p);
            }
        }
        p.clip_frac /= updates;
        p.approx_kl /= updates;
        p.value_loss /= updates;
        if (progress) progress(&p, ctx);
    }
    adam_free(&opt_pi);
    adam_free(&opt_v);
    free(order);
    minibatch_free(&mb);
    gridworld_rollout_free(&ro);
    return 0;
}

/* ---- evaluation --------------------------------------------------------------- */

GridworldEval gridworld_evaluate(const Gridworld *g, const int *policy, double slip, int max_steps, int episodes,
                                 Rng *rng) {
    GridworldEval ev = {0, 0, 0};
    for (int e = 0; e < episodes; e++) {
        int s = g->start;
        for (int t = 0; t < max_steps; t++) {
            GridworldStep st = gridworld_step(g, s, policy[s], slip, rng, NULL);
            ev.mean_steps += 1;
            ev.mean_return += st.reward;
            s = st.state;
            if (st.done) {
                ev.success += g->cell[s] == 'M';
                break;
            }
        }
    }
    if (episodes > 0) {
        ev.success /= episodes;
        ev.mean_steps /= episodes;
        ev.mean_return /= episodes;
    }
    return ev;
}

GridworldPath gridworld_path(const Gridworld *g, const int *policy, int max_steps) {
    GridworldPath p = {0, 0, 0, 0};
    int s = g->start;
    while (p.length < max_steps) {
        GridworldStep st = gridworld_move(g, s, policy[s]);
        p.length++;
        s = st.state;
        p.brooms += g->cell[s] == 'B';
        if (st.done) {
            p.reached = g->cell[s] == 'M';
            p.bathtub = g->cell[s] == 'T';
            break;
        }
    }
    return p;
}

/* ---- the command ------------------------------------------------------------------ */

static void print_progress(const GridworldProgress *p, void *ctx) {
    int every = *(const int *)ctx;
    if (every <= 0 || (p->iteration % every && p->iteration != 1)) return;
    printf("iter %4d  return %7.2f  length %5.2f  success %5.1f%%  entropy %.3f  clip %.3f  kl %.4f  vloss %8.3f\n",
           p->iteration, p->mean_return, p->mean_length, 100 * p->success, p->entropy, p->clip_frac, p->approx_kl,
           p->value_loss);
    fflush(stdout);
}

/* The map and the policy side by side; terminal cells show their letter. */
static void print_policy(const Gridworld *g, const int *policy, const char *title) {
    printf("\n%-*s   %s\n", 2 * g->cols, "map", title);
    for (int r = 0; r < g->rows; r++) {
        for (int c = 0; c < g->cols; c++) {
            int s = r * g->cols + c;
            printf("%c ", s == g->start ? 'C' : g->cell[s]);
        }
        printf("   ");
        for (int c = 0; c < g->cols; c++) {
            int s = r * g->cols + c;
            printf("%c ", gridworld_terminal(g, s) ? g->cell[s] : dir_arrow[policy[s]]);
        }
        printf("\n");
    }
}

static void print_eval(const char *who, const GridworldEval *e, int episodes, double slip) {
    printf("%-26s over %d episodes with slip %g: success %.1f%%, mean steps %.2f, mean return %.2f\n", who, episodes,
           slip, 100 * e->success, e->mean_steps, e->mean_return);
}

static void print_path(const char *who, const GridworldPath *p) {
    printf("%-26s without slips: %d steps, %s, %d broom%s\n", who, p->length,
           p->reached ? "reaches the meat" : p->bathtub ? "ends in the bathtub" : "does not reach the meat",
           p->brooms, p->brooms == 1 ? "" : "s");
}

/* The verdict: the greedy path is a shortest safe path and the slipping cat
 * reaches the meat often enough. */
static void print_verdict(const GridworldPath *p, int safe, const GridworldEval *e, double min_success) {
    char why[256] = "";
    size_t n = 0;
    if (safe < 0) n += (size_t)snprintf(why + n, sizeof why - n, "; the map has no broom-free path");
    else if (!p->reached || p->brooms || p->length != safe)
        n += (size_t)snprintf(why + n, sizeof why - n, "; greedy path is not a shortest safe path (%d steps, %d brooms, %s)",
                              p->length, p->brooms, p->reached ? "reaches the meat" : "misses the meat");
    if (e->success < min_success)
        snprintf(why + n, sizeof why - n, "; success %.1f%% < %.1f%%", 100 * e->success, 100 * min_success);
    if (why[0]) printf("verdict: FAIL%s\n", why + 1);
    else printf("verdict: PASS (greedy path = shortest safe path, %d steps; success %.1f%% >= %.1f%%)\n", safe,
                100 * e->success, 100 * min_success);
}

/* Everything after the map is parsed; g is freed by the caller. */
static int run_on(const Gridworld *g, const GridworldConfig *c, const GridworldRunOptions *o) {
    printf("gridworld %dx%d, slip %g, gamma %g, lambda %g, %d iterations x %d episodes, seed %d\n", g->rows, g->cols,
           c->slip, c->gamma, c->lambda, c->iterations, c->episodes,
           (int)(int64_t)c->seed);
    GridworldAgent ag;
    if (gridworld_train(g, c, &ag, print_progress, (void *)&o->log_every)) return -1;
    int n = g->rows * g->cols;
    int *greedy = err_malloc((size_t)n * sizeof(int));
    int *optimal = err_malloc((size_t)n * sizeof(int));
    gridworld_greedy(&ag, greedy);
    print_policy(g, greedy, "greedy policy after PPO");

    int safe = gridworld_shortest_safe(g);
    GridworldPath path = gridworld_path(g, greedy, c->max_steps);
    printf("\n");
    print_path("greedy path", &path);
    printf("%-26s %d steps (BFS avoiding bathtubs and brooms)\n", "shortest safe path", safe);
    Rng eval_rng;
    rng_seed(&eval_rng, c->seed ^ 0x9e3779b97f4a7c15ull);
    GridworldEval ev = gridworld_evaluate(g, greedy, c->slip, c->max_steps, o->eval_episodes, &eval_rng);
    print_eval("greedy policy", &ev, o->eval_episodes, c->slip);
    if (c->gamma < 1 && gridworld_value_iteration(g, c->gamma, c->slip, optimal, NULL) == 0) {
        rng_seed(&eval_rng, c->seed ^ 0x9e3779b97f4a7c15ull); /* the same episodes' randomness */
        GridworldEval best = gridworld_evaluate(g, optimal, c->slip, c->max_steps, o->eval_episodes, &eval_rng);
        GridworldPath best_path = gridworld_path(g, optimal, c->max_steps);
        print_eval("optimal (value iteration)", &best, o->eval_episodes, c->slip);
        print_path("optimal path", &best_path);
    }
    print_verdict(&path, safe, &ev, o->min_success);
    free(greedy);
    free(optimal);
    gridworld_agent_free(&ag);
    return 0;
}

int gridworld_run(const GridworldConfig *c, const GridworldRunOptions *o) {
    if (gridworld_config_check(c)) return -1;
    if (o->eval_episodes < 1) return err_set("gridworld: --eval-episodes must be >= 1, got %d", o->eval_episodes);
    Gridworld g;
    if (gridworld_parse(&g, o->map)) return err_prefix("--map: ");
    int rc = run_on(&g, c, o);
    gridworld_free(&g);
    return rc;
}
