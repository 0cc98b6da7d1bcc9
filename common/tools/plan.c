/* plan — the RL job's capacity model: calibration by timing the roles'
 * model functions, the calibration file, the prediction; see plan.h. */
#include "common/tools/plan.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/ckpt.h"
#include "common/model/adamw.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/model/score.h"
#include "common/mpi/ppo_config.h"

const CfgKey plan_keys[] = {
    {.key = "actors", .type = CFG_STR, .def = "1,2,4,8,16,32",
     .help = "plan: actor counts to predict for, comma-separated"},
    {.key = "cores", .type = CFG_INT, .def = "0", .range = ">= 0",
     .help = "plan: cores the whole job shares (0: one per rank, as an srun allocation gives)"},
    {.key = "bandwidth", .type = CFG_FLOAT, .def = "0", .range = ">= 0",
     .help = "plan: GB/s from the learner to an actor for snapshots (0: this machine's memory copy)"},
    {.key = "calibration", .type = CFG_STR, .def = "",
     .help = "plan: read the calibration from this file (rlhf plan save_calibration=F on a node of the target)"},
    {.key = "save_calibration", .type = CFG_STR, .def = "", .help = "plan: write the calibration measured here to this file"},
    {.key = "preset", .type = CFG_ENUM, .def = "ppo", .choices = "ppo|grpo|rloo|reinforce",
     .help = "plan: the job's defaults: ppo's, or those of the grpo, rloo or reinforce preset"},
    {.key = "threads", .type = CFG_INT, .def = "1", .range = "[1, 1024]",
     .help = "plan: OpenBLAS threads per rank (the job gives each rank cores / ranks on its node)"},
    {.key = "json", .type = CFG_BOOL, .def = "false", .help = "plan: one JSON object instead of the text report"},
    {0}};

/* ---- the calibration file ------------------------------------------------- */

/* Fields of the calibration file, in file order; shapes first. */
typedef enum { F_INT, F_LL, F_DOUBLE } FieldType;

typedef struct {
    const char *name;
    FieldType type;
    size_t offset;
    int shape; /* 1: must match the configuration's */
    const char *help;
} PlanField;

#define PF(n, t, s, h) {.name = #n, .type = t, .offset = offsetof(PlanCalibration, n), .shape = s, .help = h}
static const PlanField plan_fields[] = {
    PF(policy_params, F_LL, 1, "parameters of the policy"),
    PF(ref_params, F_LL, 1, "parameters of the reference (0: kl_in = none)"),
    PF(rm_params, F_LL, 1, "parameters of the reward model (0: none)"),
    PF(value_params, F_LL, 1, "parameters of the value model (0: no gae)"),
    PF(chunk, F_INT, 1, "sequences per work order"),
    PF(group_size, F_INT, 1, "samples per prompt"),
    PF(max_new, F_INT, 1, "response tokens at most"),
    PF(micro_batch, F_INT, 1, "rows per learner forward pass"),
    PF(threads, F_INT, 1, "OpenBLAS threads per rank"),
    PF(prompt_len, F_DOUBLE, 0, "mean prompt tokens"),
    PF(resp_len, F_DOUBLE, 0, "mean response tokens sampled"),
    PF(gen_order, F_DOUBLE, 0, "seconds: one work order generated"),
    PF(ref_order, F_DOUBLE, 0, "seconds: reference log-probs of one order"),
    PF(rm_order, F_DOUBLE, 0, "seconds: reward-model scores of one order"),
    PF(policy_micro, F_DOUBLE, 0, "seconds: policy forward + backward of micro_batch rows"),
    PF(value_micro, F_DOUBLE, 0, "seconds: value model forward + backward of micro_batch rows"),
    PF(value_fwd, F_DOUBLE, 0, "seconds: value model forward of micro_batch rows (before the epochs)"),
    PF(step, F_DOUBLE, 0, "seconds: one optimizer step"),
    PF(bandwidth, F_DOUBLE, 0, "bytes/s: snapshot copy"),
};
#undef PF
#define N_FIELDS (int)(sizeof plan_fields / sizeof plan_fields[0])

static double field_get(const PlanCalibration *c, const PlanField *f) {
    const char *p = (const char *)c + f->offset;
    if (f->type == F_INT) return *(const int *)p;
    if (f->type == F_LL) return (double)*(const long long *)p;
    return *(const double *)p;
}

static void field_set(PlanCalibration *c, const PlanField *f, double v) {
    char *p = (char *)c + f->offset;
    if (f->type == F_INT) *(int *)p = (int)v;
    else if (f->type == F_LL) *(long long *)p = (long long)v;
    else *(double *)p = v;
}

int plan_calibration_save(const PlanCalibration *cal, const char *path) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return err_set("%s: out of memory", path);
    fprintf(f, "# rlhf plan calibration: the shapes measured at, then seconds per unit of work\n");
    for (int i = 0; i < N_FIELDS; i++) {
        const PlanField *p = &plan_fields[i];
        if (p->type == F_DOUBLE) fprintf(f, "%s = %.9g  # %s\n", p->name, field_get(cal, p), p->help);
        else fprintf(f, "%s = %.0f  # %s\n", p->name, field_get(cal, p), p->help);
    }
    fclose(f);
    int rc = fs_write_atomic(path, text, len);
    free(text);
    return rc;
}

/* The calibration file's keys as a config table: the config module reads
 * it (file:line errors, unknown keys, ranges). */
static void calibration_table(CfgKey *keys) {
    for (int i = 0; i < N_FIELDS; i++)
        keys[i] = (CfgKey){.key = plan_fields[i].name,
                           .type = plan_fields[i].type == F_DOUBLE ? CFG_FLOAT : CFG_INT,
                           .def = NULL,
                           .help = plan_fields[i].help,
                           .range = ">= 0"};
    keys[N_FIELDS] = (CfgKey){0};
}

int plan_calibration_load(PlanCalibration *cal, const char *path, const PlanCalibration *want) {
    CfgKey keys[N_FIELDS + 1];
    calibration_table(keys);
    const CfgKey *tables[] = {keys};
    Config *c = config_new(tables, 1);
    if (!c) return -1;
    int rc = config_load_file(c, path);
    if (!rc && config_check_required(c)) rc = err_set("%s: %s", path, err_msg());
    *cal = *want;
    for (int i = 0; !rc && i < N_FIELDS; i++) {
        const PlanField *f = &plan_fields[i];
        double v = f->type == F_DOUBLE ? config_float(c, f->name) : config_int(c, f->name);
        if (f->shape && v != field_get(want, f))
            rc = err_set("%s: %s was %.0f when measured, the configuration gives %.0f (calibrate again)", path, f->name, v,
                         field_get(want, f));
        field_set(cal, f, v);
    }
    if (!rc && cal->bandwidth <= 0) rc = err_set("%s: bandwidth must be > 0", path);
    config_free(c);
    return rc;
}

/* ---- shapes ------------------------------------------------------------------ */

static int uses_reference(const Config *cfg) { return strcmp(config_str(cfg, "kl_in"), "none") != 0; }
static int uses_rm(const Config *cfg) { return strcmp(config_str(cfg, "reward"), "verifier") != 0; }
static int uses_value(const Config *cfg) { return strcmp(config_str(cfg, "advantage"), "gae") == 0; }

static const char *ref_path(const Config *cfg) {
    const char *r = config_str(cfg, "ref");
    return r[0] ? r : config_str(cfg, "policy");
}

static const char *value_path(const Config *cfg) {
    const char *v = config_str(cfg, "value_init");
    return v[0] ? v : config_str(cfg, "reward_model");
}

/* The models the job loads; the ones it does not stay zeroed. */
typedef struct {
    Gpt policy, ref, rm, value;
    Tok *tok;
    int has_ref, has_rm, has_value;
} PlanModels;

static void models_free(PlanModels *m) {
    gpt_free(&m->policy);
    if (m->has_ref) gpt_free(&m->ref);
    if (m->has_rm) gpt_free(&m->rm);
    if (m->has_value) gpt_free(&m->value);
    tok_free(m->tok);
    memset(m, 0, sizeof *m);
}

static int models_load(const Config *cfg, PlanModels *m) {
    memset(m, 0, sizeof *m);
    CkptWant lm = {.head = GPT_HEAD_LM, .what = "the policy"};
    if (ckpt_load_model_as(config_str(cfg, "policy"), &m->policy, &m->tok, &lm)) return -1;
    CkptWant ref = {.head = GPT_HEAD_LM, .what = "the reference", .vocab = m->policy.cfg.vocab_size,
                    .tok = m->tok, .like = "the policy"};
    CkptWant scalar = {.head = GPT_HEAD_SCALAR, .what = "the reward model", .vocab = m->policy.cfg.vocab_size,
                       .tok = m->tok, .like = "the policy"};
    int rc = 0;
    if (uses_reference(cfg)) {
        rc = ckpt_load_model_as(ref_path(cfg), &m->ref, NULL, &ref);
        m->has_ref = !rc;
    }
    if (!rc && uses_rm(cfg)) {
        rc = ckpt_load_model_as(config_str(cfg, "reward_model"), &m->rm, NULL, &scalar);
        m->has_rm = !rc;
    }
    if (!rc && uses_value(cfg)) {
        scalar.what = "the value model";
        rc = ckpt_load_model_as(value_path(cfg), &m->value, NULL, &scalar);
        m->has_value = !rc;
    }
    if (rc) models_free(m);
    return rc;
}

static void shapes_of(const Config *cfg, const PlanModels *m, PlanCalibration *cal) {
    memset(cal, 0, sizeof *cal);
    cal->policy_params = (long long)m->policy.n_params;
    cal->ref_params = m->has_ref ? (long long)m->ref.n_params : 0;
    cal->rm_params = m->has_rm ? (long long)m->rm.n_params : 0;
    cal->value_params = m->has_value ? (long long)m->value.n_params : 0;
    cal->chunk = config_int(cfg, "chunk");
    cal->group_size = config_int(cfg, "group_size");
    cal->max_new = config_int(cfg, "max_new");
    cal->micro_batch = config_int(cfg, "micro_batch");
    cal->threads = config_int(cfg, "threads");
}

int plan_shapes(const Config *cfg, PlanCalibration *cal) {
    PlanModels m;
    if (models_load(cfg, &m)) return -1;
    shapes_of(cfg, &m, cal);
    models_free(&m);
    return 0;
}

/* ---- calibration ------------------------------------------------------------ */

/* Timing repeats: the first warms caches and allocations; then at least
 * two more and until PLAN_MIN_SECONDS are spent, and the median is kept
 * (the job's ranks meet the same disturbances as a typical repeat does). */
enum { PLAN_MIN_REPS = 3, PLAN_MAX_REPS = 200 };
#define PLAN_MIN_SECONDS 0.3

typedef struct {
    double t[PLAN_MAX_REPS];
    int n;
    double spent;
} PlanTimer;

static int plan_more(const PlanTimer *tm, int r) {
    return r < PLAN_MIN_REPS || (tm->spent < PLAN_MIN_SECONDS && r < PLAN_MAX_REPS);
}

/* Keeps repeat r's time t (not the warm-up's). */
static void plan_keep(PlanTimer *tm, int r, double t) {
    if (r == 0) return;
    tm->t[tm->n++] = t;
    tm->spent += t;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double plan_median(PlanTimer *tm) {
    if (tm->n == 0) return 0;
    qsort(tm->t, (size_t)tm->n, sizeof(double), cmp_double);
    return tm->n % 2 ? tm->t[tm->n / 2] : 0.5 * (tm->t[tm->n / 2 - 1] + tm->t[tm->n / 2]);
}

typedef struct {
    const Config *cfg;
    PlanModels m;
    PpoPrompts prompts;
    GenResult gen;
    int **order_prompts; /* the order's prompt of each sequence (not owned) */
    int *order_len;
    ScoreRow *rows;
    int n;
} Calib;

/* An order as the learner builds it: groups of G consecutive samples of
 * one prompt, prompts in file order. */
static void calib_order(Calib *k) {
    int G = config_int(k->cfg, "group_size");
    k->n = config_int(k->cfg, "chunk");
    k->order_prompts = err_calloc((size_t)k->n, sizeof(int *));
    k->order_len = err_calloc((size_t)k->n, sizeof(int));
    for (int i = 0; i < k->n; i++) {
        int p = (i / G) % k->prompts.n;
        k->order_prompts[i] = k->prompts.tokens[p];
        k->order_len[i] = k->prompts.len[p];
    }
}

static double time_generate(Calib *k, PlanCalibration *cal) {
    GenConfig gc = ppo_gen_config(k->cfg, k->m.tok);
    gpt_pack_decode(&k->m.policy); /* as the actor does once per snapshot */
    PlanTimer tm = {0};
    for (int r = 0; plan_more(&tm, r); r++) {
        Rng rng;
        rng_seed(&rng, (uint64_t)config_int(k->cfg, "seed") + (uint64_t)r);
        gen_result_free(&k->gen);
        double t0 = fs_now();
        if (gen_run(&k->m.policy, (const int *const *)k->order_prompts, k->order_len, k->n, &gc, &rng, &k->gen))
            return -1;
        plan_keep(&tm, r, fs_now() - t0);
    }
    double sum_p = 0, sum_r = 0;
    k->rows = err_calloc((size_t)k->n, sizeof(ScoreRow));
    for (int i = 0; i < k->n; i++) {
        k->rows[i] = (ScoreRow){.prompt = k->order_prompts[i], .prompt_len = k->order_len[i],
                                .resp = k->gen.tokens[i], .resp_len = k->gen.len[i]};
        sum_p += k->order_len[i];
        sum_r += k->gen.len[i];
    }
    cal->prompt_len = sum_p / k->n;
    cal->resp_len = sum_r / k->n;
    return plan_median(&tm);
}

static double time_ref(Calib *k) {
    if (!k->m.has_ref) return 0;
    k->m.ref.temperature = (float)config_float(k->cfg, "temperature");
    ScoreBatch sb = {0};
    PlanTimer tm = {0};
    for (int r = 0; plan_more(&tm, r); r++) {
        double t0 = fs_now();
        if (score_response_logp(&k->m.ref, &sb, k->rows, k->n, tok_eot(k->m.tok), NULL, NULL)) {
            score_batch_free(&sb);
            return -1;
        }
        plan_keep(&tm, r, fs_now() - t0);
    }
    score_batch_free(&sb);
    return plan_median(&tm);
}

static double time_rm(Calib *k) {
    if (!k->m.has_rm) return 0;
    ScoreRm conv = {.eot = tok_eot(k->m.tok), .offset = 0, .scale = 1, .clip = 0};
    PlanTimer tm = {0};
    for (int r = 0; plan_more(&tm, r); r++) {
        double t0 = fs_now();
        if (score_reward(&k->m.rm, &conv, k->rows, k->n, NULL, NULL)) return -1;
        plan_keep(&tm, r, fs_now() - t0);
    }
    return plan_median(&tm);
}

/* The first micro_batch rows of the order (repeated when the order is
 * shorter), as the learner packs them. */
static ScoreRow *micro_rows(const Calib *k, int mb) {
    ScoreRow *rows = err_calloc((size_t)mb, sizeof(ScoreRow));
    for (int i = 0; i < mb; i++) rows[i] = k->rows[i % k->n];
    return rows;
}

/* The learner's policy micro-step: forward of the packed rows, then the
 * backward of a loss on every response token. */
static double time_policy_micro(Calib *k, int mb) {
    ScoreRow *rows = micro_rows(k, mb);
    ScoreBatch sb = {0};
    float *dlogp = NULL;
    PlanTimer tm = {0};
    int rc = 0;
    k->m.policy.temperature = (float)config_float(k->cfg, "temperature");
    for (int r = 0; plan_more(&tm, r); r++) {
        double t0 = fs_now();
        if (score_response_logp(&k->m.policy, &sb, rows, mb, tok_eot(k->m.tok), NULL, NULL)) {
            rc = -1;
            break;
        }
        size_t n = (size_t)sb.n * (size_t)sb.T;
        if (!dlogp) dlogp = err_calloc(n, sizeof(float));
        for (size_t i = 0; i < n; i++) dlogp[i] = sb.targets[i] >= 0 ? -1.0f / (float)n : 0.0f;
        gpt_zero_grad(&k->m.policy);
        gpt_backward_lm(&k->m.policy, sb.targets, dlogp, NULL);
        plan_keep(&tm, r, fs_now() - t0);
    }
    free(dlogp);
    score_batch_free(&sb);
    free(rows);
    return rc ? -1 : plan_median(&tm);
}

/* The value model's forward (before the epochs) and forward + backward
 * (each micro-step) over the packed rows. */
static int time_value_micro(Calib *k, int mb, PlanCalibration *cal) {
    if (!k->m.has_value) return 0;
    ScoreRow *rows = micro_rows(k, mb);
    int longest = 1;
    for (int i = 0; i < mb; i++)
        if (rows[i].prompt_len + rows[i].resp_len > longest) longest = rows[i].prompt_len + rows[i].resp_len;
    size_t cells = (size_t)mb * (size_t)longest;
    int *tokens = err_calloc(cells, sizeof(int));
    float *dval = err_calloc(cells, sizeof(float));
    int T = score_pack_rows(rows, mb, tok_eot(k->m.tok), tokens, NULL);
    PlanTimer fwd = {0}, both = {0};
    int rc = 0;
    for (int r = 0; plan_more(&both, r) && !rc; r++) {
        double t0 = fs_now();
        rc = gpt_forward(&k->m.value, tokens, mb, T);
        double t1 = fs_now();
        gpt_zero_grad(&k->m.value);
        gpt_backward_scalar(&k->m.value, dval);
        plan_keep(&fwd, r, t1 - t0);
        plan_keep(&both, r, fs_now() - t0);
    }
    cal->value_fwd = plan_median(&fwd);
    cal->value_micro = plan_median(&both);
    free(tokens);
    free(dval);
    free(rows);
    return rc;
}

static double time_step(Gpt *m) {
    AdamWConfig c = adamw_default();
    AdamW o;
    adamw_init(&o, m->n_params, &c);
    PlanTimer tm = {0};
    for (int r = 0; plan_more(&tm, r); r++) {
        double t0 = fs_now();
        adamw_step(&o, m);
        plan_keep(&tm, r, fs_now() - t0);
    }
    adamw_free(&o);
    return plan_median(&tm);
}

static double time_copy(const Gpt *m) {
    size_t bytes = m->n_params * sizeof(float);
    float *dst = err_malloc(bytes);
    PlanTimer tm = {0};
    for (int r = 0; plan_more(&tm, r); r++) {
        double t0 = fs_now();
        memcpy(dst, m->params, bytes);
        plan_keep(&tm, r, fs_now() - t0);
    }
    free(dst);
    double t = plan_median(&tm);
    return t > 0 ? (double)bytes / t : 1e10;
}

int plan_calibrate(const Config *cfg, PlanCalibration *cal) {
    Calib k = {.cfg = cfg};
    openblas_set_num_threads(config_int(cfg, "threads")); /* what each rank of the job runs with */
    if (models_load(cfg, &k.m)) return -1;
    shapes_of(cfg, &k.m, cal);
    int rc = ppo_prompts_load(&k.prompts, config_str(cfg, "prompts"), k.m.tok, k.m.policy.cfg.n_ctx);
    if (!rc) {
        calib_order(&k);
        int mb = config_int(cfg, "micro_batch");
        cal->gen_order = time_generate(&k, cal);
        cal->ref_order = cal->gen_order < 0 ? -1 : time_ref(&k);
        cal->rm_order = cal->ref_order < 0 ? -1 : time_rm(&k);
        cal->policy_micro = cal->rm_order < 0 ? -1 : time_policy_micro(&k, mb);
        rc = cal->policy_micro < 0 || time_value_micro(&k, mb, cal) ? -1 : 0;
        cal->step = time_step(&k.m.policy) + (k.m.has_value ? time_step(&k.m.value) : 0);
        cal->bandwidth = time_copy(&k.m.policy);
    }
    gen_result_free(&k.gen);
    free(k.rows);
    free(k.order_prompts);
    free(k.order_len);
    ppo_prompts_free(&k.prompts);
    models_free(&k.m);
    return rc;
}

/* ---- the model ------------------------------------------------------------- */

static double ceil_div(int a, int b) { return (double)((a + b - 1) / b); }

/* Per-iteration work of the job (seconds of one rank) and its counts. */
typedef struct {
    int orders, micro_steps, steps;
    double w_gen, w_rew, w_learn, snapshot_bytes;
} PlanWork;

static PlanWork work_of(const PlanCalibration *cal, const Config *cfg) {
    int batch = config_int(cfg, "batch_size"), epochs = config_int(cfg, "ppo_epochs");
    PlanWork w = {.orders = batch / config_int(cfg, "chunk")};
    w.micro_steps = epochs * (int)ceil_div(batch, cal->micro_batch);
    w.steps = epochs * (int)ceil_div(batch, config_int(cfg, "minibatch"));
    w.w_gen = w.orders * cal->gen_order;
    w.w_rew = w.orders * (cal->ref_order + cal->rm_order);
    w.w_learn = w.micro_steps * (cal->policy_micro + cal->value_micro) + ceil_div(batch, cal->micro_batch) * cal->value_fwd;
    w.snapshot_bytes = (double)cal->policy_params * sizeof(float);
    return w;
}

/* Processor sharing: process i needs work[i] seconds of one core; while
 * k > C of them run, each advances at C / k (the kernel shares the cores
 * fairly). The time the last one finishes. */
static double ps_finish(double *work, int n, double C) {
    qsort(work, (size_t)n, sizeof(double), cmp_double);
    double t = 0, level = 0;
    for (int i = 0; i < n; i++) {
        int running = n - i;
        double rate = running > C ? C / running : 1;
        t += (work[i] - level) / rate;
        level = work[i];
    }
    return t;
}

/* Appends the work of `ranks` processes sharing `units` units of `each`
 * seconds as evenly as whole units allow. */
static int add_shares(double *work, int n, int ranks, int units, double each) {
    for (int i = 0; i < ranks; i++) work[n++] = (units / ranks + (i < units % ranks)) * each;
    return n;
}

/* Snapshot copies one version costs, in time, to reach all A actors. p2p:
 * the learner sends A in turn. bcast: a binomial tree, each round doubling
 * the ranks that hold it, ceil(log2(A + 1)) rounds; on C shared cores at
 * most C copies run at once, so never fewer than ceil(A / C) (a lower bound:
 * the tree's rounds do not fill the cores evenly; this machine measures both
 * ways as linear in A, tests/bench/snapshot.sh). */
static int snapshots_p2p(const Config *cfg) { return !strcmp(config_str(cfg, "snapshot_send"), "p2p"); }

static double snapshot_copies(const Config *cfg, int A, double C) {
    if (snapshots_p2p(cfg)) return A;
    int rounds = 0;
    while ((1LL << rounds) < (long long)A + 1) rounds++;
    double shared = isfinite(C) ? ceil(A / C) : 0;
    return fmax(rounds, shared);
}

/* Processes a phase may hold (actor counts beyond a quarter of it are cut). */
enum { PLAN_MAX_PROCS = 4096 };

PlanRow plan_predict(const PlanCalibration *cal, const Config *cfg, int actors, int cores) {
    PlanWork w = work_of(cal, cfg);
    int R = config_int(cfg, "rewarders"), L = config_int(cfg, "learners");
    double C = cores > 0 ? cores : INFINITY, per_order = cal->ref_order + cal->rm_order;
    PlanRow p = {.actors = actors};
    double *work = err_malloc(PLAN_MAX_PROCS * sizeof(double));
    int A = actors < PLAN_MAX_PROCS / 4 ? actors : PLAN_MAX_PROCS / 4;
    if (R > PLAN_MAX_PROCS / 4) R = PLAN_MAX_PROCS / 4;
    if (L > PLAN_MAX_PROCS / 4) L = PLAN_MAX_PROCS / 4;
    /* generation and scoring: actors and rewarders busy at once */
    int n = add_shares(work, 0, A, w.orders, cal->gen_order);
    double gen_alone = ps_finish(work, n, C);
    n = add_shares(work, 0, A, w.orders, cal->gen_order);
    n = add_shares(work, n, R, w.orders, per_order);
    double gen_shared = ps_finish(work, n, C);
    /* scoring runs behind generation: done after the last wave of orders
     * (one per actor) is scored, or after the rewarders' backlog */
    int last_wave = A < w.orders ? A : w.orders;
    double orders_per_actor = ceil_div(w.orders, A) * cal->gen_order;
    p.generate = fmax(orders_per_actor, gen_alone);
    double gen_and_reward = fmax(fmax(orders_per_actor + ceil_div(last_wave, R) * per_order,
                                      cal->gen_order + ceil_div(w.orders, R) * per_order),
                                 fmax(gen_shared, p.generate));
    p.reward = gen_and_reward - p.generate;
    /* each learner runs its share of the micro-steps and every optimizer
     * step; with several, the gradients are all-reduced at each step */
    double allreduce = L > 1 ? w.steps * 2.0 * w.snapshot_bytes / cal->bandwidth : 0;
    double per_learner = w.w_learn / L + w.steps * cal->step;
    for (int i = 0; i < L; i++) work[i] = per_learner;
    p.learn = ps_finish(work, L, C) + allreduce;
    p.transfer = snapshot_copies(cfg, A, C) * w.snapshot_bytes / cal->bandwidth;
    if (config_int(cfg, "max_policy_lag") == 0) {
        p.iteration = gen_and_reward + p.learn + p.transfer;
    } else { /* the next iteration's generation runs beside learning */
        n = add_shares(work, 0, A, w.orders, cal->gen_order);
        n = add_shares(work, n, R, w.orders, per_order);
        for (int i = 0; i < L; i++) work[n++] = per_learner;
        p.iteration = fmax(fmax(gen_and_reward, p.learn + p.transfer), ps_finish(work, n, C) + allreduce);
    }
    p.util_actor = w.w_gen / A / p.iteration;
    p.util_rewarder = w.w_rew / R / p.iteration;
    p.util_learner = per_learner / p.iteration;
    p.bound = p.util_learner >= p.util_actor && p.util_learner >= p.util_rewarder ? "learner"
              : p.util_rewarder > p.util_actor                                   ? "rewarders"
                                                                                 : "actors";
    free(work);
    return p;
}

int plan_saturation(const PlanCalibration *cal, const Config *cfg, int cores, PlanRow *at) {
    int orders = work_of(cal, cfg).orders;
    double best = INFINITY;
    for (int a = 1; a <= orders; a++) best = fmin(best, plan_predict(cal, cfg, a, cores).iteration);
    for (int a = 1; a <= orders; a++) {
        *at = plan_predict(cal, cfg, a, cores);
        if (at->iteration <= PLAN_SATURATION * best) return a;
    }
    return orders; /* not reached: the best is within the range */
}

/* ---- the report ------------------------------------------------------------ */

/* Actor counts from "1,2,4": n of them into out[]; -1 + err_set otherwise. */
static int parse_actors(const char *text, int *out, int cap) {
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000 || (*end && *end != ','))
            return err_set("actors: expected actor counts >= 1 separated by commas, got '%s'", text);
        if (n == cap) return err_set("actors: at most %d counts", cap);
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) return err_set("actors: expected actor counts >= 1 separated by commas, got '%s'", text);
    return n;
}

static void report_json(const PlanCalibration *cal, const Config *cfg, const PlanRow *rows, int n, int sat,
                        const PlanRow *at, int cores, FILE *out) {
    fprintf(out, "{\"calibration\": {");
    for (int i = 0; i < N_FIELDS; i++)
        fprintf(out, "%s\"%s\": %.9g", i ? ", " : "", plan_fields[i].name, field_get(cal, &plan_fields[i]));
    fprintf(out, "}, \"cores\": %d, \"snapshot_send\": \"%s\", \"saturation_actors\": %d, \"saturation_bound\": \"%s\", "
            "\"rows\": [", cores, config_str(cfg, "snapshot_send"), sat, at->bound);
    for (int i = 0; i < n; i++)
        fprintf(out,
                "%s{\"actors\": %d, \"generate\": %.9g, \"reward\": %.9g, \"learn\": %.9g, \"transfer\": %.9g, "
                "\"iteration\": %.9g, \"util_actor\": %.9g, \"util_rewarder\": %.9g, \"util_learner\": %.9g, "
                "\"bound\": \"%s\"}",
                i ? ", " : "", rows[i].actors, rows[i].generate, rows[i].reward, rows[i].learn, rows[i].transfer,
                rows[i].iteration, rows[i].util_actor, rows[i].util_rewarder, rows[i].util_learner, rows[i].bound);
    fprintf(out, "]}\n");
}

static double busiest(const PlanRow *r) { return fmax(fmax(r->util_actor, r->util_rewarder), r->util_learner); }

static void report_text(const PlanCalibration *cal, const Config *cfg, const PlanRow *rows, int n, int sat,
                        const PlanRow *at, int cores, FILE *out) {
    fprintf(out, "calibration (%d OpenBLAS thread(s) per rank; prompt %.1f, response %.1f tokens on average):\n",
            cal->threads, cal->prompt_len, cal->resp_len);
    fprintf(out, "  one order of %d sequences: generate %.4f s, reference %.4f s, reward model %.4f s\n", cal->chunk,
            cal->gen_order, cal->ref_order, cal->rm_order);
    fprintf(out, "  learner: micro-step of %d rows %.4f s (value model %.4f s), optimizer step %.4f s\n",
            cal->micro_batch, cal->policy_micro, cal->value_micro, cal->step);
    fprintf(out, "  snapshot %.1f MB at %.2f GB/s\n", cal->policy_params * 4e-6, cal->bandwidth * 1e-9);
    fprintf(out, "job: %d learner(s), %d rewarder(s), max_policy_lag %d, %s, snapshots by %s\n",
            config_int(cfg, "learners"), config_int(cfg, "rewarders"), config_int(cfg, "max_policy_lag"),
            cores > 0 ? "cores shared as given" : "one core per rank",
            snapshots_p2p(cfg) ? "point-to-point sends" : "broadcast (log2 rounds)");
    if (cores > 0) fprintf(out, "  (%d cores in all)\n", cores);
    fprintf(out, "%7s %10s %10s %10s %10s %10s %7s %7s %7s  %s\n", "actors", "iter s", "generate", "reward", "learn",
            "transfer", "actor", "rewardr", "learner", "bound by");
    for (int i = 0; i < n; i++)
        fprintf(out, "%7d %10.4f %10.4f %10.4f %10.4f %10.4f %6.0f%% %6.0f%% %6.0f%%  %s\n", rows[i].actors,
                rows[i].iteration, rows[i].generate, rows[i].reward, rows[i].learn, rows[i].transfer,
                100 * rows[i].util_actor, 100 * rows[i].util_rewarder, 100 * rows[i].util_learner, rows[i].bound);
    fprintf(out,
            "from %d actor(s) on, more actors shorten the iteration by less than %.0f%%: it is bound by the %s there "
            "(%.0f%% busy)\n",
            sat, 100 * (PLAN_SATURATION - 1), at->bound, 100 * busiest(at));
}

int plan_report(const PlanCalibration *cal, const Config *cfg, const char *actors, int cores, int as_json, FILE *out) {
    int counts[64];
    int n = parse_actors(actors, counts, 64);
    if (n < 0) return -1;
    PlanRow rows[64];
    for (int i = 0; i < n; i++) rows[i] = plan_predict(cal, cfg, counts[i], cores);
    PlanRow at;
    int sat = plan_saturation(cal, cfg, cores, &at);
    if (as_json) report_json(cal, cfg, rows, n, sat, &at, cores, out);
    else report_text(cal, cfg, rows, n, sat, &at, cores, out);
    return 0;
}
