/* Tests for learner/gridworld.c: the environment by hand (rewards,
 * termination, bumps, the slip's direction statistics), the map parser and
 * its errors, BFS, value iteration against a closed form and against the
 * map's design (safe path best at gamma 0.99, brooms at 0.95), evaluation and
 * paths, config checks, and PPO training: the greedy policy reaches the meat
 * by a shortest safe path and the slipping cat succeeds >= 95% of the time,
 * reproducibly for a seed. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/rng.h"
#include "learner/gridworld.h"
#include "tests/harness.h"

static int state_of(const Gridworld *g, int r, int c) {
    return r * g->cols + c;
}

enum { N, E, S, W };

TEST(gridworld_default_map_and_moves) {
    Gridworld g;
    CHECK(gridworld_parse(&g, gridworld_default_map) == 0);
    CHECK(g.rows == 4 && g.cols == 5 && g.start == 0);
    CHECK(g.cell[state_of(&g, 0, 2)] == 'T' && g.cell[state_of(&g, 0, 4)] == 'M');
    CHECK(g.cell[state_of(&g, 1, 1)] == 'B' && g.cell[state_of(&g, 1, 3)] == 'B' && g.cell[0] == '.');
    CHECK(gridworld_terminal(&g, state_of(&g, 0, 2)) && gridworld_terminal(&g, state_of(&g, 0, 4)));
    CHECK(!gridworld_terminal(&g, state_of(&g, 1, 1)));

    /* off the grid: stay, reward 0, not done */
    GridworldStep st = gridworld_move(&g, 0, N);
    CHECK(st.state == 0 && st.reward == 0 && !st.done);
    st = gridworld_move(&g, 0, W);
    CHECK(st.state == 0 && st.reward == 0 && !st.done);
    st = gridworld_move(&g, state_of(&g, 3, 4), S);
    CHECK(st.state == state_of(&g, 3, 4) && st.reward == 0 && !st.done);
    /* empty cell: 0 */
    st = gridworld_move(&g, 0, E);
    CHECK(st.state == 1 && st.reward == 0 && !st.done);
    /* bathtub: -10 and the episode ends */
    st = gridworld_move(&g, 1, E);
    CHECK(st.state == 2 && st.reward == -10 && st.done);
    st = gridworld_move(&g, state_of(&g, 1, 2), N);
    CHECK(st.state == 2 && st.reward == -10 && st.done);
    /* meat: +100 and the episode ends, from the side and from below */
    st = gridworld_move(&g, state_of(&g, 0, 3), E);
    CHECK(st.state == 4 && st.reward == 100 && st.done);
    st = gridworld_move(&g, state_of(&g, 1, 4), N);
    CHECK(st.state == 4 && st.reward == 100 && st.done);
    /* broom: -1, the cat stands on it and goes on; leaving it costs nothing */
    st = gridworld_move(&g, state_of(&g, 1, 0), E);
    CHECK(st.state == state_of(&g, 1, 1) && st.reward == -1 && !st.done);
    st = gridworld_move(&g, state_of(&g, 1, 1), S);
    CHECK(st.state == state_of(&g, 2, 1) && st.reward == 0 && !st.done);
    /* a bump while standing on a broom does not cost the broom again */
    Gridworld h;
    CHECK(gridworld_parse(&h, "CB/.M") == 0);
    st = gridworld_move(&h, 1, N);
    CHECK(st.state == 1 && st.reward == 0 && !st.done);
    gridworld_free(&h);
    gridworld_free(&g);
}

TEST(gridworld_slip_statistics) {
    Gridworld g;
    CHECK(gridworld_parse(&g, gridworld_default_map) == 0);
    Rng rng;
    rng_seed(&rng, 99);
    const int n = 60000, from = 2 * 5 + 2; /* (2,2): all four neighbours are empty */
    const double slips[3] = {0.0, 0.3, 1.0};
    for (int k = 0; k < 3; k++) {
        int count[4] = {0, 0, 0, 0}, reward_ok = 1;
        for (int i = 0; i < n; i++) {
            int moved;
            GridworldStep st = gridworld_step(&g, from, E, slips[k], &rng, &moved);
            count[moved]++;
            reward_ok &= st.state == gridworld_move(&g, from, moved).state && st.reward == 0 && !st.done;
        }
        CHECK(reward_ok);
        /* intended: 1 - slip; each of the other three: slip / 3. 5 standard errors. */
        for (int d = 0; d < 4; d++) {
            double p = d == E ? 1 - slips[k] : slips[k] / 3, se = sqrt(p * (1 - p) / n);
            double got = (double)count[d] / n;
            CHECKF(fabs(got - p) <= 5 * se + 1e-12, "slip %g: direction %d taken %.4f of the time, expected %.4f",
                   slips[k], d, got, p);
        }
    }
    gridworld_free(&g);
}

TEST(gridworld_shortest_safe_paths) {
    const struct {
        const char *map;
        int safe;
    } cases[] = {
        {"C.T.M/.B.B./...../.....", 8}, /* the default: drops to row 2 */
        {"C.M", 2},
        {"CM", 1},
        {"CBM", -1},                    /* only over the broom */
        {"CTM/...", 4},                 /* round the bathtub */
        {"CB.M/.B../....", 7},          /* under both brooms */
        {"C..M/TTT./....", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Gridworld g;
        if (!CHECKF(gridworld_parse(&g, cases[i].map) == 0, "%s: %s", cases[i].map, err_msg())) continue;
        int got = gridworld_shortest_safe(&g);
        CHECKF(got == cases[i].safe, "%s: shortest safe path %d, expected %d", cases[i].map, got, cases[i].safe);
        gridworld_free(&g);
    }
}

TEST(gridworld_map_errors) {
    const struct {
        const char *map, *expect;
    } cases[] = {
        {"", "empty"},
        {"C.M/..", "row 2 has 2 cells, expected 3"},
        {"C.M/....", "row 2 has more than 3 cells"},
        {"C.X", "row 1, column 3: unknown cell 'X'"},
        {"..M", "exactly one start C, found 0"},
        {"C.C/..M", "exactly one start C, found 2"},
        {"C..", "no meat"},
        {"CTM", "without entering a bathtub"},
        {"C.M//...", "row 2 has 0 cells"},
        {"C.M/", "row 2 has 0 cells"},
        {"C................................M", "each side must be 1..32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Gridworld g;
        int rc = gridworld_parse(&g, cases[i].map);
        CHECKF(rc == -1 && strstr(err_msg(), cases[i].expect), "map '%s': rc %d, message '%s', expected '%s'",
               cases[i].map, rc, err_msg(), cases[i].expect);
        CHECK(g.cell == NULL);
    }
}

TEST(gridworld_value_iteration_closed_form) {
    /* "CM": east reaches the meat; a slip (N, S or W) bumps and stays, so
     * V = (1 - s) * 100 + s * gamma * V  =>  V = (1 - s) 100 / (1 - s gamma). */
    Gridworld g;
    CHECK(gridworld_parse(&g, "CM") == 0);
    int policy[2];
    double V[2];
    CHECK(gridworld_value_iteration(&g, 0.9, 0.1, policy, V) == 0);
    CHECK(policy[0] == E);
    CHECK_NEAR(V[0], 90.0 / (1 - 0.09), 1e-8);
    CHECK(V[1] == 0);
    /* "C.M" without slips: 0 + gamma * 100 */
    Gridworld h;
    CHECK(gridworld_parse(&h, "C.M") == 0);
    int p3[3];
    double V3[3];
    CHECK(gridworld_value_iteration(&h, 0.9, 0.0, p3, V3) == 0);
    CHECK_NEAR(V3[0], 90.0, 1e-8);
    CHECK(p3[0] == E && p3[1] == E);
    CHECK(gridworld_value_iteration(&h, 1.0, 0.0, p3, NULL) == -1);
    CHECKF(strstr(err_msg(), "gamma") != NULL, "message: %s", err_msg());
    CHECK(gridworld_value_iteration(&h, 0.9, 1.5, p3, NULL) == -1);
    gridworld_free(&g);
    gridworld_free(&h);
}

TEST(gridworld_default_map_design) {
    /* What the map is designed for, checked by value iteration: at gamma 0.99
     * with slips the best policy takes the 8-step safe path; at gamma 0.95
     * two extra steps cost more than the brooms and it takes the shortcut. */
    Gridworld g;
    CHECK(gridworld_parse(&g, gridworld_default_map) == 0);
    int policy[20];
    CHECK(gridworld_value_iteration(&g, 0.99, 0.1, policy, NULL) == 0);
    GridworldPath p = gridworld_path(&g, policy, 50);
    CHECK(p.reached && p.length == 8 && p.brooms == 0 && p.length == gridworld_shortest_safe(&g));
    Rng rng;
    rng_seed(&rng, 4);
    GridworldEval ev = gridworld_evaluate(&g, policy, 0.1, 50, 20000, &rng);
    CHECKF(ev.success > 0.99 && ev.success < 1.0, "optimal success %.4f", ev.success);
    CHECK(gridworld_value_iteration(&g, 0.95, 0.1, policy, NULL) == 0);
    p = gridworld_path(&g, policy, 50);
    CHECK(p.reached && p.length == 6 && p.brooms == 2);
    gridworld_free(&g);
}

TEST(gridworld_evaluate_and_path) {
    Gridworld g;
    CHECK(gridworld_parse(&g, "C.M") == 0);
    int east[3] = {E, E, E}, north[3] = {N, N, N}, west_east[3] = {E, W, E};
    Rng rng;
    rng_seed(&rng, 1);
    GridworldEval ev = gridworld_evaluate(&g, east, 0.0, 10, 100, &rng);
    CHECK(ev.success == 1 && ev.mean_steps == 2 && ev.mean_return == 100);
    ev = gridworld_evaluate(&g, north, 0.0, 10, 5, &rng);
    CHECK(ev.success == 0 && ev.mean_steps == 10 && ev.mean_return == 0);
    GridworldPath p = gridworld_path(&g, east, 10);
    CHECK(p.length == 2 && p.reached && !p.brooms && !p.bathtub);
    p = gridworld_path(&g, west_east, 7); /* a loop: cut at max_steps */
    CHECK(p.length == 7 && !p.reached);
    gridworld_free(&g);
    CHECK(gridworld_parse(&g, "CBT/..M") == 0);
    int into_bath[6] = {E, E, 0, 0, 0, 0};
    p = gridworld_path(&g, into_bath, 10);
    CHECK(p.length == 2 && p.bathtub && !p.reached && p.brooms == 1);
    gridworld_free(&g);
}

TEST(gridworld_config_checks) {
    GridworldConfig c = gridworld_config_default();
    CHECK(gridworld_config_check(&c) == 0);
    CHECK(c.gamma < 1 && c.slip > 0);
    GridworldConfig b = c;
    b.slip = 1.5;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "--slip"));
    b = c, b.gamma = 0;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "--gamma"));
    b = c, b.lambda = NAN;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "--lambda"));
    b = c, b.episodes = 0;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "--episodes"));
    b = c, b.minibatch = -3;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "--minibatch"));
    b = c, b.lr = 0;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "--lr"));
    b = c, b.value_clip = -1;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "--value-clip"));
    b = c, b.episodes = 100000, b.max_steps = 100000;
    CHECK(gridworld_config_check(&b) == -1 && strstr(err_msg(), "steps per iteration"));
    Gridworld g;
    CHECK(gridworld_parse(&g, "C.M") == 0);
    GridworldAgent a;
    b = c, b.epochs = 0;
    CHECK(gridworld_train(&g, &b, &a, NULL, NULL) == -1 && a.logits == NULL);
    gridworld_free(&g);
}

/* f(l) = d_logp * log softmax(l)[a] + d_ent * H(softmax(l)), evaluated directly. */
static double softmax_objective(const double *l, int a, double d_logp, double d_ent) {
    double mx = fmax(fmax(l[0], l[1]), fmax(l[2], l[3])), z = 0, h = 0;
    for (int b = 0; b < 4; b++) z += exp(l[b] - mx);
    for (int b = 0; b < 4; b++) {
        double logp = l[b] - mx - log(z);
        h -= exp(logp) * logp;
    }
    return d_logp * (l[a] - mx - log(z)) + d_ent * h;
}

TEST(gridworld_softmax_backward_matches_finite_differences) {
    Rng rng;
    rng_seed(&rng, 8);
    for (int t = 0; t < 200; t++) {
        double l[4], grad[4] = {0.5, 0.5, 0.5, 0.5}, h = 1e-6;
        for (int b = 0; b < 4; b++) l[b] = 3 * rng_normal(&rng);
        int a = (int)rng_below(&rng, 4);
        double d_logp = rng_normal(&rng), d_ent = rng_normal(&rng);
        gridworld_softmax_backward(l, a, d_logp, d_ent, grad); /* adds to 0.5 */
        for (int b = 0; b < 4; b++) {
            double up[4], dn[4];
            memcpy(up, l, sizeof l), memcpy(dn, l, sizeof l);
            up[b] += h, dn[b] -= h;
            double fd = (softmax_objective(up, a, d_logp, d_ent) - softmax_objective(dn, a, d_logp, d_ent)) / (2 * h);
            if (!CHECKF(fabs(grad[b] - 0.5 - fd) <= 1e-6 * (1 + fabs(fd)), "logit %d: %.10g vs finite difference %.10g",
                        b, grad[b] - 0.5, fd))
                return;
        }
    }
}

/* A rollout with a fixed agent: the cat on "C.M" with V = 10 on both cells. */
static void collect_fixed(int action, int max_steps, GridworldRollout *ro, GridworldProgress *p) {
    Gridworld g;
    CHECK(gridworld_parse(&g, "C.M") == 0);
    GridworldAgent a;
    gridworld_agent_init(&a, 3);
    for (int s = 0; s < 2; s++) a.logits[s * 4 + action] = 50, a.values[s] = 10; /* pi(action) = 1 in double */
    GridworldConfig c = gridworld_config_default();
    c.slip = 0, c.gamma = 0.9, c.lambda = 0.8, c.episodes = 1, c.max_steps = max_steps;
    Rng rng;
    rng_seed(&rng, 1);
    gridworld_rollout_init(ro, c.episodes * c.max_steps);
    *p = (GridworldProgress){0};
    gridworld_collect(&g, &c, &a, &rng, ro, p);
    gridworld_agent_free(&a);
    gridworld_free(&g);
}

TEST(gridworld_collect_multistep_gae_by_hand) {
    /* Terminal: east twice, rewards (0, 100), bootstrap 0, gamma*lambda = 0.72.
     *   delta_1 = 100 - 10 = 90           A_1 = 90
     *   delta_0 = 0 + 0.9*10 - 10 = -1    A_0 = -1 + 0.72*90 = 63.8
     *   returns A + V = (73.8, 100); whitened advantages of two values: -/+ 1/sqrt(2) */
    GridworldRollout ro;
    GridworldProgress p;
    collect_fixed(E, 10, &ro, &p);
    CHECK(ro.n == 2 && ro.state[0] == 0 && ro.state[1] == 1 && ro.action[0] == E);
    CHECK(ro.reward[0] == 0 && ro.reward[1] == 100 && ro.old_value[0] == 10);
    CHECK_NEAR(ro.ret[0], 73.8, 1e-5);
    CHECK_NEAR(ro.ret[1], 100.0, 1e-5);
    CHECK_NEAR(ro.adv[0], -sqrt(0.5), 1e-6);
    CHECK_NEAR(ro.adv[1], sqrt(0.5), 1e-6);
    CHECK(p.success == 1 && p.mean_length == 2 && p.mean_return == 100);
    CHECK_NEAR(ro.old_logp[0], 0.0, 1e-12);
    gridworld_rollout_free(&ro);

    /* Cut off: north bumps three times (reward 0), bootstrap V(s_3) = 10:
     *   delta_t = 0 + 0.9*10 - 10 = -1 for every t
     *   A_2 = -1, A_1 = -1.72, A_0 = -1 - 0.72*1.72 = -2.2384
     *   returns (7.7616, 8.28, 9). Without the bootstrap delta_2 would be -10. */
    collect_fixed(N, 3, &ro, &p);
    CHECK(ro.n == 3 && ro.state[2] == 0);
    CHECK_NEAR(ro.ret[0], 7.7616, 1e-5);
    CHECK_NEAR(ro.ret[1], 8.28, 1e-5);
    CHECK_NEAR(ro.ret[2], 9.0, 1e-5);
    CHECK(p.success == 0 && p.mean_length == 3 && p.mean_return == 0);
    gridworld_rollout_free(&ro);
}

static void count_progress(const GridworldProgress *p, void *ctx) {
    GridworldProgress *last = ctx;
    *last = *p;
}

TEST(gridworld_ppo_learns_the_shortest_safe_path) {
    Gridworld g;
    CHECK(gridworld_parse(&g, gridworld_default_map) == 0);
    GridworldConfig c = gridworld_config_default();
    int safe = gridworld_shortest_safe(&g);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        c.seed = seed;
        GridworldAgent a;
        GridworldProgress last = {0};
        CHECK(gridworld_train(&g, &c, &a, count_progress, &last) == 0);
        CHECK(last.iteration == c.iterations);
        CHECKF(last.success > 0.9, "seed %d: rollout success %.3f in the last iteration", (int)seed, last.success);
        int policy[20];
        gridworld_greedy(&a, policy);
        GridworldPath p = gridworld_path(&g, policy, c.max_steps);
        CHECKF(p.reached && p.brooms == 0 && p.length == safe,
               "seed %d: greedy path %d steps, %d brooms, reached %d; shortest safe %d", (int)seed, p.length, p.brooms,
               p.reached, safe);
        Rng rng;
        rng_seed(&rng, 1000 + seed);
        GridworldEval ev = gridworld_evaluate(&g, policy, c.slip, c.max_steps, 5000, &rng);
        CHECKF(ev.success >= 0.95, "seed %d: success with slips %.4f", (int)seed, ev.success);
        gridworld_agent_free(&a);
    }
    gridworld_free(&g);
}

TEST(gridworld_training_is_deterministic) {
    Gridworld g;
    CHECK(gridworld_parse(&g, gridworld_default_map) == 0);
    GridworldConfig c = gridworld_config_default();
    c.iterations = 15;
    GridworldAgent a, b, d;
    CHECK(gridworld_train(&g, &c, &a, NULL, NULL) == 0);
    CHECK(gridworld_train(&g, &c, &b, NULL, NULL) == 0);
    c.seed = 2;
    CHECK(gridworld_train(&g, &c, &d, NULL, NULL) == 0);
    size_t n = (size_t)a.n_states * GRIDWORLD_ACTIONS;
    CHECK(!memcmp(a.logits, b.logits, n * sizeof(double)) && !memcmp(a.values, b.values, 20 * sizeof(double)));
    CHECK(memcmp(a.logits, d.logits, n * sizeof(double)) != 0);
    gridworld_agent_free(&a), gridworld_agent_free(&b), gridworld_agent_free(&d);
    gridworld_free(&g);
}
