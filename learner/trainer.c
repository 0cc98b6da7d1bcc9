/* trainer — the shared training loop of the supervised stages; see
 * trainer.h for the schedule, determinism and loss conventions. */
#include "learner/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/io/ckpt.h"
#include "common/io/runrec.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/rng.h"
#include "learner/metrics.h"

const CfgKey trainer_keys[] = {
    {.key = "out_dir", .type = CFG_STR, .def = NULL,
     .help = "run directory: checkpoints, metrics.h5, final.h5"},
    {.key = "train_data", .type = CFG_STR, .def = NULL, .help = "training data file"},
    {.key = "valid_data", .type = CFG_STR, .def = "", .help = "validation data file (empty: none)"},
    {.key = "epochs", .type = CFG_INT, .def = "1", .help = "passes over the training data", .range = ">= 1"},
    {.key = "max_steps", .type = CFG_INT, .def = "0",
     .help = "stop after this many steps (0: epochs decide)", .range = ">= 0"},
    {.key = "batch_size", .type = CFG_INT, .def = "32",
     .help = "examples per optimizer step, over all ranks", .range = ">= 1"},
    {.key = "micro_batch", .type = CFG_INT, .def = "8",
     .help = "examples per forward pass; batch_size must be a multiple of micro_batch x ranks", .range = ">= 1"},
    {.key = "lr", .type = CFG_FLOAT, .def = "3e-4", .help = "peak learning rate", .range = ">= 0"},
    {.key = "lr_min", .type = CFG_FLOAT, .def = "3e-5", .help = "floor of the cosine decay", .range = ">= 0"},
    {.key = "warmup_steps", .type = CFG_INT, .def = "10", .help = "linear warm-up steps", .range = ">= 0"},
    {.key = "weight_decay", .type = CFG_FLOAT, .def = "0.1",
     .help = "AdamW weight decay (matrices only)", .range = ">= 0"},
    {.key = "beta1", .type = CFG_FLOAT, .def = "0.9", .help = "AdamW beta1", .range = "[0, 1)"},
    {.key = "beta2", .type = CFG_FLOAT, .def = "0.95", .help = "AdamW beta2", .range = "[0, 1)"},
    {.key = "grad_clip", .type = CFG_FLOAT, .def = "1.0",
     .help = "global gradient-norm clip (0: off)", .range = ">= 0"},
    {.key = "dropout", .type = CFG_FLOAT, .def = "0.0",
     .help = "dropout on embeddings, attention and residual branches", .range = "[0, 1)"},
    {.key = "seed", .type = CFG_INT, .def = "1", .help = "seed for data order and dropout", .range = "any"},
    {.key = "long_sequences", .type = CFG_ENUM, .def = "truncate",
     .help = "sequences longer than the context", .choices = "truncate|skip|error"},
    {.key = "log_every", .type = CFG_INT, .def = "10", .help = "progress line every N steps", .range = ">= 1"},
    {.key = "eval_every", .type = CFG_INT, .def = "0",
     .help = "validation every N steps (0: once per epoch)", .range = ">= 0"},
    {.key = "ckpt_every", .type = CFG_INT, .def = "100", .help = "checkpoint every N steps", .range = ">= 1"},
    {.key = "keep_checkpoints", .type = CFG_INT, .def = "2",
     .help = "step checkpoints kept in out_dir", .range = ">= 0"},
    {.key = "max_bad_steps", .type = CFG_INT, .def = "5",
     .help = "stop after this many non-finite losses in a row", .range = ">= 1"},
    {.key = "overwrite", .type = CFG_BOOL, .def = "false",
     .help = "replace a run in out_dir made with other settings (its checkpoints and logs)", .alias = "force"},
    {0}};

/* Keys that may change between runs of one out_dir (the settings record and
 * the checkpoint comparison ignore them); out_dir too: a run moved off a
 * full disk resumes where it now is. */
static const char *const trainer_runtime_keys[] = {"log_every", "eval_every", "ckpt_every", "keep_checkpoints",
                                                   "max_bad_steps", "out_dir", "overwrite", NULL};

/* Rules between trainer keys that a range alone cannot state (each key's
 * own range is checked by common/config when it is set): lr_min <= lr, so
 * the cosine decay goes down. Names both keys and where each value came from. */
static int check_keys(const Config *c) {
    double lr = config_float(c, "lr"), lr_min = config_float(c, "lr_min");
    if (lr_min > lr)
        return err_set("lr_min (%s, from %s) must be <= lr (%s, from %s)", config_get_raw(c, "lr_min"),
                       config_origin(c, "lr_min"), config_get_raw(c, "lr"), config_origin(c, "lr"));
    return 0;
}


void trainer_log(const Trainer *t, const char *fmt, ...) {
    if (t->dp.rank) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", t->stage->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t trainer_dropout_seed(const Trainer *t, int j) {
    return rng_mix64(t->seed ^ rng_mix64((uint64_t)t->step * 1000003u + (uint64_t)j + 0x9e37));
}

int trainer_load_init(Trainer *t, const char *path, GptHead want_head) {
    char what[64];
    snprintf(what, sizeof what, "%s's init", t->stage->name);
    CkptWant want = {.head = want_head, .what = what};
    return ckpt_load_model_as(path, &t->model, &t->tok, &want);
}

void *trainer_batch_alloc(const Trainer *t, int rows, size_t elem) {
    size_t n = 0;
    int big = err_mul_size((size_t)rows * (size_t)t->micro_batch, (size_t)t->model.cfg.n_ctx, &n) ||
              err_mul_size(n, elem, &n);
    void *p = big ? NULL : malloc(n ? n : 1);
    if (p) return p;
    char size[32] = "more than can be addressed";
    if (!big) err_format_bytes((double)n, size, sizeof size);
    err_set("micro_batch (%d) x n_ctx (%d)%s: %s of buffers; out of memory (lower micro_batch)", t->micro_batch,
            t->model.cfg.n_ctx, rows > 1 ? (rows == 2 ? " x 2 rows" : " x rows") : "", size);
    return NULL;
}

void trainer_seq_rows(const Seq *const *seqs, const int *from, int n, ScoreRow *rows) {
    for (int i = 0; i < n; i++) {
        const Seq *s = seqs[i];
        rows[i] = (ScoreRow){.prompt = s->tokens, .prompt_len = from[i], .resp = s->tokens + from[i],
                             .resp_len = s->len - from[i]};
    }
}

/* ---- checkpoints ------------------------------------------------------- */

static void ckpt_name(const Trainer *t, int64_t step, char *buf, size_t n) {
    fs_numbered(buf, n, t->out_dir, "ckpt-", 8, step);
}

static int write_ckpt(Trainer *t, const char *path) {
    Ckpt *k = ckpt_create(path);
    if (!k) return -1;
    int rc = ckpt_put_model(k, &t->model, t->tok, t->stage->kind) ||
             ckpt_put_buffer(k, "optim/m", &t->model, t->opt.m) ||
             ckpt_put_buffer(k, "optim/v", &t->model, t->opt.v) ||
             ckpt_put_attr_i64(k, "/state", "step", t->step) ||
             ckpt_put_attr_i64(k, "/state", "adam_step", t->opt.step) ||
             ckpt_put_attr_i64(k, "/state", "total_steps", t->total_steps) ||
             ckpt_put_attr_str(k, "/state", "stage", t->stage->name) ||
             ckpt_put_attr_i64(k, "/state", "world", t->dp.world) ||
             ckpt_save_config(k, t->cfg) || (t->stage->save_extra && t->stage->save_extra(t, k));
    if (rc) {
        ckpt_discard(k);
        return -1;
    }
    return ckpt_commit(k);
}

/* Rank 0 writes; every rank learns whether it worked. logs_failed: rank 0
 * could not flush the metrics logs, so no checkpoint may claim their rows. */
static int save_step_ckpt(Trainer *t, int logs_failed) {
    char path[1200];
    int rc = 0;
    ckpt_name(t, t->step, path, sizeof path);
    if (t->dp.rank == 0) {
        rc = logs_failed ? -1 : write_ckpt(t, path); /* its message is printed once, by trainer_main */
        if (!rc) fs_prune_numbered(t->out_dir, "ckpt-", 8, t->step, config_int(t->cfg, "keep_checkpoints"));
    }
    return dp_any(&t->dp, rc) ? -1 : 0;
}

/* Loads parameters, moments and step from the latest checkpoint, after
 * checking that it belongs to this run (same stage and configuration). */
static int resume(Trainer *t, int64_t step) {
    char path[1200], diff[512];
    ckpt_name(t, step, path, sizeof path);
    Ckpt *k = ckpt_open(path);
    if (!k) return -1;
    Config *saved = config_new((const CfgKey *const[]){trainer_keys, t->stage->keys}, 2);
    int64_t s, a, world;
    int rc = ckpt_load_config(k, saved, NULL) ||
             ckpt_get_attr_i64(k, "/state", "step", &s) || ckpt_get_attr_i64(k, "/state", "adam_step", &a) ||
             ckpt_get_attr_i64(k, "/state", "world", &world);
    for (int i = 0; !rc && trainer_runtime_keys[i]; i++)
        config_set(saved, trainer_runtime_keys[i], config_get_raw(t->cfg, trainer_runtime_keys[i]), "resume");
    if (!rc && config_diff(t->cfg, saved, diff, sizeof diff))
        rc = err_set("%s: written with a different configuration: %s; use a new out_dir or the same settings",
                     path, diff);
    if (!rc) rc = ckpt_check_model_config(k, "/", &t->model.cfg, "the model");
    if (!rc) {
        Gpt m;
        rc = ckpt_get_model(k, &m);
        if (!rc) memcpy(t->model.params, m.params, m.n_params * sizeof(float));
        if (!rc) gpt_free(&m);
    }
    rc = rc || ckpt_get_buffer(k, "optim/m", &t->model, t->opt.m) ||
         ckpt_get_buffer(k, "optim/v", &t->model, t->opt.v);
    if (!rc) {
        t->step = s;
        t->opt.step = a;
        if (world != t->dp.world)
            trainer_log(t, "warning: resuming a %lld-rank run on %d ranks: results will not be bit-identical",
                        (long long)world, t->dp.world);
    }
    config_free(saved);
    ckpt_close(k);
    return rc;
}

/* Rank 0, before anything in out_dir is read or written: refuses inputs
 * that are files the run writes there (runrec_check_inputs), creates out_dir,
 * takes its lock (one run at a time, fs_lock_dir) and checks the settings
 * record (runrec): a run with other settings is refused unless overwrite=1
 * (then *replacing = 1). */
static int claim_out_dir(Trainer *t, int *lock, int *replacing) {
    static const char *const outputs[] = {"final.h5", "metrics.h5", "eval.h5", NULL};
    if (runrec_check_inputs(t->out_dir, t->cfg, outputs, "ckpt-")) return -1;
    if (fs_mkdirs(t->out_dir) || (*lock = fs_lock_dir(t->out_dir)) < 0) return -1;
    Config *saved = config_new((const CfgKey *const[]){trainer_keys, t->stage->keys}, 2);
    int state = runrec_check(t->out_dir, t->stage->name, t->cfg, saved, trainer_runtime_keys);
    config_free(saved);
    if (state < 0 || (state == RUNREC_DIFFERS && !config_bool(t->cfg, "overwrite"))) return -1;
    *replacing = state == RUNREC_DIFFERS;
    return 0;
}

/* Rank 0, once set-up has succeeded (a run that fails on its data leaves no
 * record): removes the replaced run's checkpoints, so that this one starts
 * afresh, and records this run's settings. */
static int record_run(Trainer *t, int replacing) {
    if (replacing) {
        trainer_log(t, "overwrite = true: replacing the earlier run in %s", t->out_dir);
        if (fs_remove_numbered(t->out_dir, "ckpt-", 8)) return -1;
    }
    return runrec_write(t->out_dir, t->stage->name, t->cfg, trainer_runtime_keys);
}

/* ---- the loop ------------------------------------------------------------ */

static void epoch_perm(const Trainer *t, int64_t epoch, int *perm) {
    Rng r;
    rng_seed(&r, rng_mix64(t->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)epoch + 1));
    for (int i = 0; i < t->train.n; i++) perm[i] = i;
    for (int i = t->train.n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint32_t)i + 1), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
}

static void fmt_duration(double s, char *buf, size_t n) {
    if (s < 0 || !isfinite(s)) snprintf(buf, n, "?");
    else if (s < 60) snprintf(buf, n, "%.0fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* Sums acc over ranks (as a flat array of doubles). */
static void acc_sum(Trainer *t, TrainAcc *acc) { dp_sum_f64(&t->dp, (double *)acc, sizeof *acc / sizeof(double)); }

/* TEST-ONLY fault injection, used by tests/cli/faults.sh: with the
 * environment variable RLHF_TEST_NAN_STEP=K or K:N, the summed loss of steps
 * K..K+N-1 (1-based, as in metrics.h5 and the progress lines) is replaced by
 * NaN after the all-reduce, so the skip / max_bad_steps path runs at a known
 * step on every rank alike. Never set it outside tests. */
static int test_poisoned_step(int64_t step) {
    const char *v = getenv("RLHF_TEST_NAN_STEP");
    long long k, n = 1;
    if (!v || sscanf(v, "%lld:%lld", &k, &n) < 1) return 0;
    return step >= k && step < k + n;
}

static int grads_finite(const Gpt *m) {
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->grads[i])) return 0;
    return 1;
}

/* Leading columns of metrics.h5 (train) and eval.h5 (eval); the stage's own
 * metrics follow them. */
enum { TRAIN_COL_STEP, TRAIN_COL_LOSS, TRAIN_COL_LR, TRAIN_COL_GRAD_NORM, TRAIN_COL_TOKENS, TRAIN_COL_ELAPSED, TRAIN_COLS };
enum { EVAL_COL_STEP, EVAL_COL_LOSS, EVAL_COLS };

typedef struct {
    Metrics *train_log, *eval_log;
    double t_start, tokens;
    int64_t step_start;
    int log_failed;       /* rank 0: a row could not be written; the run ends after this step */
    char log_error[1024]; /* that write's message (later writes would only say "an earlier write failed") */
} LoopState;

/* Appends a row to a log (rank 0); the first failure is kept for the
 * message the run ends with. */
static void log_row(LoopState *ls, Metrics *log, const double *row) {
    if (!log || ls->log_failed || !metrics_append(log, row)) return;
    ls->log_failed = 1;
    snprintf(ls->log_error, sizeof ls->log_error, "%s", err_msg());
}

/* Validation over the whole valid set, split across ranks. */
static void evaluate(Trainer *t, LoopState *ls) {
    if (!t->has_valid || !t->stage->evaluate) return;
    TrainAcc acc = {0};
    int mb = t->micro_batch, *idx = err_malloc((size_t)mb * sizeof(int));
    t->model.training = 0;
    for (int start = t->dp.rank * mb; start < t->valid.n; start += mb * t->dp.world) {
        int n = t->valid.n - start < mb ? t->valid.n - start : mb;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        t->stage->evaluate(t, idx, n, &acc);
    }
    free(idx);
    acc_sum(t, &acc);
    double row[EVAL_COLS + TRAIN_MAX_METRICS] = {[EVAL_COL_STEP] = (double)t->step,
                                                 [EVAL_COL_LOSS] = acc.loss / acc.weight};
    char line[512];
    int k = snprintf(line, sizeof line, "eval step %lld | valid loss %.4f", (long long)t->step, row[EVAL_COL_LOSS]);
    for (int i = 0; i < t->n_metrics; i++) {
        row[EVAL_COLS + i] = acc.metric[i] / acc.weight;
        k += snprintf(line + k, sizeof line - k, " | %s %.4f", t->stage->metric_names[i], row[EVAL_COLS + i]);
    }
    trainer_log(t, "%s", line);
    log_row(ls, ls->eval_log, row);
}

static void progress(Trainer *t, LoopState *ls, const TrainAcc *acc, float lr, float norm) {
    double el = fs_now() - ls->t_start, per = el / (double)(t->step - ls->step_start);
    char eta[32];
    fmt_duration(per * (double)(t->total_steps - t->step), eta, sizeof eta);
    char line[512];
    int k = snprintf(line, sizeof line, "step %lld/%lld | loss %.4f | lr %.2e | |g| %.3f | %.0f tok/s",
                     (long long)t->step, (long long)t->total_steps, acc->loss / acc->weight, lr, norm,
                     ls->tokens / el);
    for (int i = 0; i < t->n_metrics; i++)
        k += snprintf(line + k, sizeof line - k, " | %s %.3f", t->stage->metric_names[i], acc->metric[i] / acc->weight);
    snprintf(line + k, sizeof line - k, " | ETA %s", eta);
    trainer_log(t, "%s", line);
}

/* One optimizer step over the global batch; returns 1 if applied, 0 if
 * skipped for a non-finite loss or gradient. */
static int train_step(Trainer *t, const int *batch, TrainAcc *acc, float *lr, float *norm) {
    int mb = t->micro_batch, n_micro = t->batch_size / mb;
    memset(acc, 0, sizeof *acc);
    gpt_zero_grad(&t->model);
    t->model.training = 1;
    for (int j = t->dp.rank; j < n_micro; j += t->dp.world) {
        rng_seed(&t->model.dropout_rng, trainer_dropout_seed(t, j));
        /* the last micro-batch's backward completes the gradients */
        if (j + t->dp.world >= n_micro) dp_gradsum_arm(&t->gradsum, &t->model, MPI_COMM_WORLD);
        t->stage->micro_batch(t, batch + j * mb, mb, acc);
    }
    dp_gradsum_finish(&t->gradsum);
    acc_sum(t, acc);
    if (test_poisoned_step(t->step + 1)) acc->loss = NAN;
    *lr = adamw_lr_at(&t->opt.cfg, t->opt.step);
    if (!isfinite(acc->loss) || acc->weight <= 0 || !grads_finite(&t->model)) return 0;
    float inv = (float)(1.0 / acc->weight);
    for (size_t i = 0; i < t->model.n_params; i++) t->model.grads[i] *= inv;
    *norm = adamw_step(&t->opt, &t->model);
    return 1;
}

/* Metric rows on disk before a checkpoint records their step: -1 if not
 * (with the first failed write's message). */
static int flush_logs(LoopState *ls) {
    if (ls->log_failed) return err_set("%s", ls->log_error);
    int rc = 0;
    if (ls->train_log && metrics_flush(ls->train_log)) rc = -1;
    if (ls->eval_log && metrics_flush(ls->eval_log)) rc = -1;
    return rc;
}

static int run_loop(Trainer *t, LoopState *ls) {
    int B = t->batch_size, *perm = err_malloc((size_t)t->train.n * sizeof(int)), bad = 0;
    int64_t perm_epoch = -1, eval_every = config_int(t->cfg, "eval_every");
    int64_t log_every = config_int(t->cfg, "log_every"), ckpt_every = config_int(t->cfg, "ckpt_every");
    int rc = 0;
    while (t->step < t->total_steps && !rc) {
        int64_t epoch = t->step / t->steps_per_epoch, b = t->step % t->steps_per_epoch;
        if (epoch != perm_epoch) {
            epoch_perm(t, epoch, perm);
            perm_epoch = epoch;
        }
        TrainAcc acc;
        float lr = 0, norm = NAN;
        int ok = train_step(t, perm + b * B, &acc, &lr, &norm);
        bad = ok ? 0 : bad + 1;
        t->step++; /* steps are numbered from 1 in messages, as in metrics.h5 */
        if (!ok) trainer_log(t, "warning: step %lld: non-finite loss or gradient, step skipped", (long long)t->step);
        ls->tokens += acc.tokens;
        double row[TRAIN_COLS + TRAIN_MAX_METRICS] = {[TRAIN_COL_STEP] = (double)t->step,
                                                      [TRAIN_COL_LOSS] = acc.loss / acc.weight,
                                                      [TRAIN_COL_LR] = lr,
                                                      [TRAIN_COL_GRAD_NORM] = norm,
                                                      [TRAIN_COL_TOKENS] = acc.tokens,
                                                      [TRAIN_COL_ELAPSED] = fs_now() - ls->t_start};
        for (int i = 0; i < t->n_metrics; i++) row[TRAIN_COLS + i] = acc.metric[i] / acc.weight;
        log_row(ls, ls->train_log, row);
        if (!ok && bad >= config_int(t->cfg, "max_bad_steps")) {
            if (ls->train_log) (void)metrics_close(ls->train_log); /* closed cleanly: the bad rows stay readable */
            if (ls->eval_log) (void)metrics_close(ls->eval_log);   /* (the run is ending with its own error) */
            ls->train_log = ls->eval_log = NULL;
            /* every rank gets here together (the loss is all-reduced): one message, not one per rank */
            char prefix[64];
            snprintf(prefix, sizeof prefix, "%s: ", t->stage->name);
            dp_check(&t->dp, err_set("%d non-finite steps in a row (steps %lld-%lld, max_bad_steps = %d); "
                                     "lower lr or check the data",
                                     bad, (long long)t->step - bad + 1, (long long)t->step,
                                     config_int(t->cfg, "max_bad_steps")),
                     prefix);
        }
        if (t->step % log_every == 0 || t->step == t->total_steps) progress(t, ls, &acc, lr, norm);
        int epoch_end = t->step % t->steps_per_epoch == 0;
        if ((eval_every > 0 && t->step % eval_every == 0) || (eval_every <= 0 && epoch_end)) evaluate(t, ls);
        /* a signal, or a log row rank 0 could not write (a full disk): stop
         * now, not after the next ckpt_every steps; with a failed log the
         * checkpoint is refused too (flush_logs), naming the log */
        if (dp_any(&t->dp, *t->stop || ls->log_failed)) {
            if (!ls->log_failed) trainer_log(t, "signal received: saving a checkpoint at step %lld", (long long)t->step);
            rc = save_step_ckpt(t, flush_logs(ls)) ? -1 : 1;
        } else if (t->step % ckpt_every == 0 || t->step == t->total_steps) {
            if (save_step_ckpt(t, flush_logs(ls))) rc = -1;
        }
    }
    free(perm);
    return rc;
}

/* ---- set-up and main ------------------------------------------------------ */

static int check_layout(Trainer *t) {
    int B = t->batch_size, mb = t->micro_batch, W = t->dp.world;
    if (B < 1 || mb < 1) return err_set("batch_size and micro_batch must be >= 1");
    /* the rank-count hint below only makes sense once micro_batch divides
     * batch_size: a micro_batch larger than the batch, or one that does not
     * divide it, is named as such whatever the rank count */
    if (mb > B)
        return err_set("micro_batch (%d) is larger than batch_size (%d); set micro_batch to at most batch_size", mb, B);
    if (B % mb)
        return err_set("batch_size (%d) must be a multiple of micro_batch (%d); change batch_size or micro_batch",
                       B, mb);
    if (B % (mb * W))
        return err_set("batch_size (%d) must be a multiple of micro_batch (%d) x ranks (%d); "
                       "change batch_size or micro_batch, or run on a rank count that divides %d",
                       B, mb, W, B / mb);
    if (t->train.n < B)
        return err_set("%s: %d examples, fewer than one batch (batch_size %d)", t->train.path, t->train.n, B);
    return 0;
}

static void schedule(Trainer *t) {
    t->steps_per_epoch = t->train.n / t->batch_size;
    t->total_steps = t->steps_per_epoch * config_int(t->cfg, "epochs");
    int max_steps = config_int(t->cfg, "max_steps");
    if (max_steps > 0 && max_steps < t->total_steps) t->total_steps = max_steps;
    AdamWConfig a = {.lr = (float)config_float(t->cfg, "lr"),
                     .beta1 = (float)config_float(t->cfg, "beta1"),
                     .beta2 = (float)config_float(t->cfg, "beta2"),
                     .eps = 1e-8f,
                     .weight_decay = (float)config_float(t->cfg, "weight_decay"),
                     .grad_clip = (float)config_float(t->cfg, "grad_clip"),
                     .warmup_steps = config_int(t->cfg, "warmup_steps"),
                     .total_steps = t->total_steps,
                     .lr_min = (float)config_float(t->cfg, "lr_min")};
    adamw_init(&t->opt, t->model.n_params, &a);
}

static void open_logs(Trainer *t, LoopState *ls, int64_t keep_step) {
    static const char *train_cols[TRAIN_COLS + TRAIN_MAX_METRICS] = {
        [TRAIN_COL_STEP] = "step",           [TRAIN_COL_LOSS] = "loss",     [TRAIN_COL_LR] = "lr",
        [TRAIN_COL_GRAD_NORM] = "grad_norm", [TRAIN_COL_TOKENS] = "tokens", [TRAIN_COL_ELAPSED] = "elapsed"};
    static const char *eval_cols[EVAL_COLS + TRAIN_MAX_METRICS] = {[EVAL_COL_STEP] = "step", [EVAL_COL_LOSS] = "loss"};
    char path[1200];
    for (int i = 0; i < t->n_metrics; i++) {
        train_cols[TRAIN_COLS + i] = t->stage->metric_names[i];
        eval_cols[EVAL_COLS + i] = t->stage->metric_names[i];
    }
    if (t->dp.rank) return;
    snprintf(path, sizeof path, "%s/metrics.h5", t->out_dir);
    if (!(ls->train_log = metrics_open(path, "train", train_cols, TRAIN_COLS + t->n_metrics, keep_step))) err_die_last();
    snprintf(path, sizeof path, "%s/eval.h5", t->out_dir);
    if (!(ls->eval_log = metrics_open(path, "eval", eval_cols, EVAL_COLS + t->n_metrics, keep_step))) err_die_last();
}

/* Parses arguments into t->cfg; returns 1 after --help, dies on errors. */
static int configure(Trainer *t, int argc, char **argv) {
    const CfgKey *const tables[] = {trainer_keys, t->stage->keys};
    int help = 0;
    if (!(t->cfg = config_new(tables, 2))) err_die_last();
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", t->stage->name);
    dp_check(&t->dp, config_parse_args(t->cfg, argc, argv, &help), prefix);
    if (help) {
        if (t->dp.rank == 0) {
            printf("usage: rlhf %s [--config FILE] [key=value ...]\n\n%s\n\nconfiguration keys:\n",
                   t->stage->name, t->stage->summary);
            config_help(tables, 2, stdout);
        }
        return 1;
    }
    dp_check(&t->dp, config_check_required(t->cfg) || check_keys(t->cfg), prefix);
    t->batch_size = config_int(t->cfg, "batch_size");
    t->micro_batch = config_int(t->cfg, "micro_batch");
    t->seed = (uint64_t)config_int(t->cfg, "seed");
    snprintf(t->out_dir, sizeof t->out_dir, "%s", config_str(t->cfg, "out_dir"));
    while (t->stage->metric_names[t->n_metrics] && t->n_metrics < TRAIN_MAX_METRICS) t->n_metrics++;
    return 0;
}

static void write_final(Trainer *t) {
    char path[1200];
    snprintf(path, sizeof path, "%s/final.h5", t->out_dir);
    int rc = 0;
    if (t->dp.rank == 0) {
        Ckpt *k = ckpt_create(path);
        rc = !k || ckpt_put_model(k, &t->model, t->tok, t->stage->kind) || ckpt_save_config(k, t->cfg) ||
             ckpt_put_attr_i64(k, "/state", "step", t->step) ||
             (t->stage->save_extra && t->stage->save_extra(t, k));
        if (k) rc = rc ? (ckpt_discard(k), 1) : ckpt_commit(k) != 0;
        if (rc) err_warn("%s", err_msg());
    }
    if (dp_any(&t->dp, rc)) err_die("%s: could not write %s", t->stage->name, path);
    trainer_log(t, "done: %s", path);
}

int trainer_main(const TrainStage *stage, int argc, char **argv, volatile sig_atomic_t *stop) {
    static Trainer tr;
    Trainer *t = &tr;
    memset(t, 0, sizeof *t);
    t->stage = stage;
    t->stop = stop;
    dp_init(&t->dp, &argc, &argv);
    if (configure(t, argc, argv)) {
        dp_finalize(&t->dp);
        return 0;
    }
    if (t->dp.rank == 0) {
        fprintf(stderr, "%s: %d rank%s x %d OpenBLAS thread%s; configuration:\n", stage->name, t->dp.world,
                t->dp.world > 1 ? "s" : "", t->dp.blas_threads, t->dp.blas_threads > 1 ? "s" : "");
        config_print(t->cfg, stderr);
    }
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", stage->name);
    int lock = -1, replacing = 0; /* out_dir/.lock, held by rank 0 until the end */
    dp_check(&t->dp, t->dp.rank == 0 ? claim_out_dir(t, &lock, &replacing) : 0, prefix);
    /* data against the layout before anything is sized by them (issue 14 item 18) */
    dp_check(&t->dp, stage->setup(t) || check_layout(t) || (stage->build && stage->build(t)), prefix);
    dp_check(&t->dp, t->dp.rank == 0 ? record_run(t, replacing) : 0, prefix);
    t->model.dropout = (float)config_float(t->cfg, "dropout");
    schedule(t);
    dp_barrier(&t->dp); /* out_dir exists everywhere before anyone looks */
    int64_t last = fs_latest_numbered(t->out_dir, "ckpt-");
    if (last >= 0) {
        char why[80];
        snprintf(why, sizeof why, "%s: cannot resume: ", stage->name);
        dp_check(&t->dp, resume(t, last), why);
        trainer_log(t, "resuming from %s/ckpt-%08lld.h5", t->out_dir, (long long)last);
    }
    trainer_log(t, "%d training examples, %lld steps of %d (%lld per epoch), %zu parameters", t->train.n,
                (long long)t->total_steps, t->batch_size, (long long)t->steps_per_epoch, t->model.n_params);
    LoopState ls = {0};
    open_logs(t, &ls, last >= 0 ? t->step : -1);
    ls.t_start = fs_now();
    ls.step_start = t->step;
    if (t->step == 0) evaluate(t, &ls);
    int rc = run_loop(t, &ls);
    if (t->dp.world > 1 && t->step > ls.step_start)
        trainer_log(t, "gradient sums: %.2f s waited after backward over %lld steps (%.1f%% of training time)",
                    t->gradsum.wait_s, (long long)(t->step - ls.step_start),
                    100 * t->gradsum.wait_s / (fs_now() - ls.t_start));
    if (rc == 0 && stage->finish && stage->finish(t)) err_die("%s: %s", stage->name, err_msg());
    if (rc == 0) write_final(t);
    char why[1024]; /* a failed checkpoint's message, before closing the logs can replace it */
    snprintf(why, sizeof why, "%s", err_msg());
    int closed = (ls.train_log && metrics_close(ls.train_log)) | (ls.eval_log && metrics_close(ls.eval_log));
    /* a log that could not be completed fails the run even after final.h5 (rank 0 only: err_die aborts the job) */
    if (closed && rc == 0) err_die("%s: %s", stage->name, err_msg());
    fs_unlock_dir(lock);
    if (rc > 0) trainer_log(t, "stopped at step %lld; run the same command again to resume", (long long)t->step);
    /* only rank 0 wrote, so only it has the message: print it once */
    if (rc < 0) dp_check(&t->dp, err_set("%s", why), prefix);
    if (stage->teardown) stage->teardown(t);
    adamw_free(&t->opt);
    gpt_free(&t->model);
    tok_free(t->tok);
    data_free(&t->train);
    if (t->has_valid) data_free(&t->valid);
    config_free(t->cfg);
    dp_finalize(&t->dp);
    /* a rank that did not get the signal itself stops because another did */
    return rc > 0 ? 128 + (*stop ? (int)*stop : SIGTERM) : 0;
}
