/* Tests for h5log (HDF5 table logs): every value survives a write/read
 * round trip through both write APIs; resuming truncates to the checkpoint's
 * row count (no duplicates, no gaps); logs with other columns, foreign and
 * damaged files are refused with one-line messages; a SWMR reader in
 * another process (C, and h5py via tests/check_h5log.py) sees exactly the
 * flushed rows while the writer runs; a log whose writer was killed or
 * whose disk filled up keeps its flushed rows and can be continued; a live
 * writer is never joined by a second one. h5dump reads every closed log.
 *
 * Expected values come from closed-form functions of the row index (ref_*),
 * not from the code under test. Child processes end with _exit(): exit()
 * would run the harness's and HDF5's exit handlers in the child. */
#include "common/io/h5log.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "tests/harness.h"

#define W 8 /* width of the array columns */

static const H5logColumn COLS[] = {
    {.name = "step", .type = H5LOG_I64, .width = 0, .help = "row index"},
    {.name = "reward", .type = H5LOG_F64, .width = 0, .help = "r_theta"},
    {.name = "kl", .type = H5LOG_F32, .width = 0, .help = "nats"},
    {.name = "len", .type = H5LOG_I32, .width = 0, .help = "response length"},
    {.name = "tokens", .type = H5LOG_I32, .width = W, .help = "response tokens, zero padded"},
    {.name = "logp", .type = H5LOG_F32, .width = W, .help = "behaviour log-probs"}};
enum { N_COLS = sizeof COLS / sizeof *COLS };

/* ---- reference values: row r of generation gen ---------------------------
 * A resumed run writes generation 1 where the first run wrote generation 0,
 * so a stale row left behind after truncation is told from a new one. */

static double ref_reward(int64_t r, int gen) { return sin((double)r) * 1e3 + gen * 0.5 + (double)r * 1e-7; }
static float ref_kl(int64_t r) { return (float)r * 0.25f - 3.0f; }
static int32_t ref_len(int64_t r) { return (int32_t)(r % (W + 1)); }
static int32_t ref_token(int64_t r, int j) {
    return j < ref_len(r) ? (int32_t)((r * 31 + j * 7) % 50257) : 0;
}
static float ref_logp(int64_t r, int j) { return j < ref_len(r) ? -(float)(r + j) / 128.0f : 0.0f; }

/* Rows [start, start + n) through h5log_append. */
static int append_ref(H5log *l, int64_t start, int n, int gen) {
    int64_t *step = malloc(n * sizeof *step);
    double *reward = malloc(n * sizeof *reward);
    float *kl = malloc(n * sizeof *kl), *logp = malloc(n * W * sizeof *logp);
    int32_t *len = malloc(n * sizeof *len), *tokens = malloc(n * W * sizeof *tokens);
    for (int i = 0; i < n; i++) {
        int64_t r = start + i;
        step[i] = r;
        reward[i] = ref_reward(r, gen);
        kl[i] = ref_kl(r);
        len[i] = ref_len(r);
        for (int j = 0; j < W; j++) {
            tokens[i * W + j] = ref_token(r, j);
            logp[i * W + j] = ref_logp(r, j);
        }
    }
    const void *cols[N_COLS] = {step, reward, kl, len, tokens, logp};
    int rc = h5log_append(l, n, cols);
    free(step), free(reward), free(kl), free(logp), free(len), free(tokens);
    return rc;
}

/* Row r through the row builder: arrays get only len values (the builder
 * pads), kl goes through set_f64 into an f32 column, len through set_i64. */
static int add_row_ref(H5log *l, int64_t r, int gen) {
    int32_t tokens[W];
    float logp[W];
    for (int j = 0; j < W; j++) {
        tokens[j] = ref_token(r, j);
        logp[j] = ref_logp(r, j);
    }
    if (h5log_set_i32s(l, "tokens", tokens, ref_len(r)) || h5log_set_i64(l, "step", r) ||
        h5log_set_f64(l, "reward", ref_reward(r, gen)) || h5log_set_f64(l, "kl", ref_kl(r)) ||
        h5log_set_i64(l, "len", ref_len(r)) || h5log_set_f32s(l, "logp", logp, ref_len(r)))
        return -1;
    return h5log_row_done(l);
}

/* Mismatches between the log's first n rows and the reference (rows >=
 * gen1_from are generation 1); -1 if reading fails. Reports the first
 * mismatch on stdout. */
static int64_t first_mismatches(H5log *l, int64_t n, int64_t gen1_from) {
    int64_t *step = malloc((n + 1) * sizeof *step);
    double *reward = malloc((n + 1) * sizeof *reward);
    float *kl = malloc((n + 1) * sizeof *kl), *logp = malloc((n + 1) * W * sizeof *logp);
    int32_t *len = malloc((n + 1) * sizeof *len), *tokens = malloc((n + 1) * W * sizeof *tokens);
    int64_t bad = 0;
    if (h5log_read(l, "step", 0, n, H5LOG_I64, step) || h5log_read_f64(l, "reward", 0, n, reward) ||
        h5log_read(l, "kl", 0, n, H5LOG_F32, kl) || h5log_read_i32(l, "len", 0, n, len) ||
        h5log_read_i32(l, "tokens", 0, n, tokens) || h5log_read(l, "logp", 0, n, H5LOG_F32, logp)) {
        printf("    read failed: %s\n", err_msg());
        bad = -1;
    }
    for (int64_t r = 0; r < n && bad >= 0; r++) {
        int ok = step[r] == r && reward[r] == ref_reward(r, r >= gen1_from) && kl[r] == ref_kl(r) &&
                 len[r] == ref_len(r);
        for (int j = 0; j < W; j++)
            ok = ok && tokens[r * W + j] == ref_token(r, j) && logp[r * W + j] == ref_logp(r, j);
        if (!ok && bad++ == 0)
            printf("    first mismatch at row %lld (step %lld, reward %.17g)\n", (long long)r,
                   (long long)step[r], reward[r]);
    }
    free(step), free(reward), free(kl), free(logp), free(len), free(tokens);
    return bad;
}

/* As first_mismatches, and the log must have exactly n rows. */
static int64_t mismatches(H5log *l, int64_t n, int64_t gen1_from) {
    if (h5log_rows(l) != n) {
        printf("    %s: %lld rows, expected %lld\n", h5log_path(l), (long long)h5log_rows(l), (long long)n);
        return -1;
    }
    return first_mismatches(l, n, gen1_from);
}

/* ---- helpers ------------------------------------------------------------ */

static const char *tmp_path(const char *name) {
    char prefixed[256];
    snprintf(prefixed, sizeof prefixed, "h5log_%s", name);
    return harness_tmp_path(prefixed);
}

static ssize_t h5_open_ids(void) { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

/* 1 if path holds exactly the bytes of snap. */
static int same_bytes(const char *path, const char *snap, size_t snap_n) {
    size_t n = 0;
    char *now = harness_read_file(path, &n);
    int same = now && n == snap_n && !memcmp(now, snap, n);
    free(now);
    return same;
}

static int have_h5py(void) {
    static int known = -1;
    if (known < 0)
        known = !access("/usr/bin/python3", X_OK) &&
                system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") == 0;
    if (!known) printf("  note: /usr/bin/python3 with h5py missing, h5py check skipped\n");
    return known;
}

/* Exit status of tests/check_h5log.py on path (extra: more arguments). */
static int run_check_script(const char *path, const char *extra) {
    char cmd[1536];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../check_h5log.py '%s' %s >/dev/null",
             harness_fixtures(), path, extra);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* 1 if h5dump -H reads the file (-1 if h5dump is not installed). */
static int h5dump_reads(const char *path) {
    if (access("/usr/bin/h5dump", X_OK)) {
        printf("  note: h5dump missing (hdf5-tools), check skipped\n");
        return -1;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/h5dump -H '%s' >/dev/null 2>&1", path);
    return system(cmd) == 0;
}

/* A complete reference log of n rows of generation 0. */
static int make_ref_log(const char *path, int n) {
    H5log *l = h5log_create(path, COLS, N_COLS, "rollouts");
    if (!l || append_ref(l, 0, n, 0)) {
        h5log_close(l);
        return -1;
    }
    return h5log_close(l);
}

/* ---- round trips -------------------------------------------------------- */

TEST(h5log_roundtrip_every_value) {
    const char *path = tmp_path("roundtrip.h5");
    H5log *l = h5log_create(path, COLS, N_COLS, "rollouts");
    CHECKF(l != NULL, "%s", err_msg());
    if (!l) return;
    /* Small and empty batches, builder rows, then a batch larger than the
     * write buffer (8192 rows here) and several chunks of every column. */
    CHECK(append_ref(l, 0, 3, 0) == 0);
    CHECK(h5log_append(l, 0, NULL) == 0);
    for (int r = 3; r < 10; r++) CHECKF(add_row_ref(l, r, 0) == 0, "%s", err_msg());
    CHECK(append_ref(l, 10, 9000, 0) == 0);
    CHECK(h5log_rows(l) == 9010);
    CHECKF(h5log_flush(l) == 0, "%s", err_msg());
    for (int r = 9010; r < 9020; r++) CHECK(add_row_ref(l, r, 0) == 0);
    CHECKF(h5log_close(l) == 0, "%s", err_msg());

    l = h5log_open_read(path);
    CHECKF(l != NULL, "%s", err_msg());
    if (!l) return;
    CHECK(!strcmp(h5log_kind(l), "rollouts") && !strcmp(h5log_path(l), path));
    CHECK(h5log_n_columns(l) == N_COLS);
    for (int i = 0; i < N_COLS && i < h5log_n_columns(l); i++) {
        const H5logColumn *c = h5log_column(l, i);
        CHECKF(!strcmp(c->name, COLS[i].name) && c->type == COLS[i].type &&
                   c->width == COLS[i].width && !strcmp(c->help, COLS[i].help),
               "column %d is %s %s x%d '%s'", i, c->name, h5log_type_name(c->type), c->width, c->help);
    }
    CHECK(h5log_column(l, N_COLS) == NULL && h5log_column(l, -1) == NULL);
    CHECK(h5log_find_column(l, "len") == 3);
    CHECK(mismatches(l, 9020, 9020) == 0);
    CHECK(h5log_refresh(l) == 0 && h5log_rows(l) == 9020);

    /* Widening conversions are allowed and exact. */
    double lens[3], steps[2];
    int64_t tok64[2 * W];
    CHECK(h5log_read_f64(l, "len", 5, 3, lens) == 0);
    CHECK(lens[0] == ref_len(5) && lens[1] == ref_len(6) && lens[2] == ref_len(7));
    CHECK(h5log_read_f64(l, "step", 9018, 2, steps) == 0 && steps[0] == 9018 && steps[1] == 9019);
    CHECK(h5log_read(l, "tokens", 4, 2, H5LOG_I64, tok64) == 0);
    CHECK(tok64[3] == ref_token(4, 3) && tok64[W + 4] == ref_token(5, 4) && tok64[W + 7] == 0);
    /* Narrowing ones are refused, naming the column and its type. */
    int32_t i32[W];
    float f32[W];
    CHECK(h5log_read_i32(l, "reward", 0, 1, i32) == -1);
    CHECK_ERR(path, "'reward'", "f64", "i32");
    CHECK(h5log_read_i32(l, "step", 0, 1, i32) == -1);
    CHECK(h5log_read(l, "reward", 0, 1, H5LOG_F32, f32) == -1);
    CHECK(h5log_read(l, "tokens", 0, 1, H5LOG_F32, f32) == -1);
    CHECK_ERR(path, "'tokens'", "i32 x8");
    /* Row ranges outside the log, unknown columns. */
    CHECK(h5log_read_i32(l, "len", 9019, 2, i32) == -1);
    CHECK_ERR(path, "'len'", "9020");
    CHECK(h5log_read_i32(l, "len", -1, 1, i32) == -1);
    CHECK(h5log_read_i32(l, "len", 9020, 0, NULL) == 0);
    CHECK(h5log_read_i32(l, "nope", 0, 1, i32) == -1);
    CHECK_ERR(path, "no column 'nope'");
    CHECK(h5log_find_column(l, "nope") == -1);
    /* A reader cannot write. */
    CHECK(h5log_set_f64(l, "reward", 1) == -1);
    CHECK_ERR(path, "opened for reading");
    CHECK(h5log_append(l, 1, NULL) == -1 && h5log_flush(l) == -1 && h5log_row_done(l) == -1);
    CHECK(h5log_close(l) == 0);
    CHECK(h5log_close(NULL) == 0);
    CHECK(h5dump_reads(path) != 0);
    if (have_h5py()) CHECK(run_check_script(path, "--rows 9020") == 0);
    CHECK(h5_open_ids() == 0);
}

TEST(h5log_row_builder_checks_every_value) {
    const char *path = tmp_path("builder.h5");
    H5log *l = h5log_create(path, COLS, N_COLS, "rollouts");
    CHECKF(l != NULL, "%s", err_msg());
    if (!l) return;
    int32_t toks[W + 1] = {0};
    float fl[W] = {0};
    CHECK(h5log_set_f64(l, "nope", 1) == -1);
    CHECK_ERR(path, "no column 'nope'");
    CHECK(h5log_set_f64(l, "len", 1) == -1);
    CHECK_ERR(path, "'len'", "i32", "h5log_set_f64");
    CHECK(h5log_set_i64(l, "reward", 1) == -1);
    CHECK_ERR(path, "'reward'", "f64");
    CHECK(h5log_set_i64(l, "len", (int64_t)1 << 40) == -1);
    CHECK_ERR(path, "'len'", "1099511627776", "does not fit");
    CHECK(h5log_set_i64(l, "len", INT32_MIN) == 0);
    CHECK(h5log_set_i32s(l, "logp", toks, 1) == -1);
    CHECK_ERR(path, "'logp'", "f32 x8");
    CHECK(h5log_set_i32s(l, "tokens", toks, W + 1) == -1);
    CHECK_ERR(path, "'tokens'", "9 values", "width 8");
    CHECK(h5log_set_i32s(l, "tokens", NULL, 2) == -1);
    CHECK(h5log_set_f32s(l, "kl", fl, 1) == -1);
    CHECK_ERR(path, "'kl'", "scalar");
    CHECK(h5log_set_f64(l, "tokens", 1) == -1);
    CHECK_ERR(path, "'tokens'", "array");
    /* A row missing a column is refused, naming it; the values given stay. */
    CHECK(add_row_ref(l, 0, 0) == 0);
    CHECK(h5log_set_i64(l, "step", 1) == 0 && h5log_set_f64(l, "reward", 7.0) == 0);
    CHECK(h5log_set_f64(l, "kl", ref_kl(1)) == 0 && h5log_set_i64(l, "len", ref_len(1)) == 0);
    CHECK(h5log_set_i32s(l, "tokens", toks, 0) == 0);
    CHECK(h5log_row_done(l) == -1);
    CHECK_ERR(path, "row 1", "'logp'", "not set");
    /* The last value set wins; an array set again is padded again. */
    int32_t t1[W];
    for (int j = 0; j < W; j++) t1[j] = ref_token(1, j);
    CHECK(h5log_set_i32s(l, "tokens", t1, W) == 0 && h5log_set_i32s(l, "tokens", t1, ref_len(1)) == 0);
    for (int j = 0; j < W; j++) fl[j] = ref_logp(1, j);
    CHECK(h5log_set_f32s(l, "logp", fl, W) == 0);
    CHECK(h5log_set_f64(l, "reward", ref_reward(1, 0)) == 0);
    CHECK(h5log_row_done(l) == 0);
    /* A writer reads its own rows, buffered ones included. */
    CHECK(mismatches(l, 2, 2) == 0);
    /* A row started and never finished is dropped, and close says so. */
    CHECK(h5log_set_i64(l, "step", 2) == 0);
    CHECK(h5log_close(l) == -1);
    CHECK_ERR(path, "never finished");
    l = h5log_open_read(path);
    CHECKF(l && mismatches(l, 2, 2) == 0, "%s", err_msg());
    h5log_close(l);
    CHECK(h5_open_ids() == 0);
}

/* ---- resuming ----------------------------------------------------------- */

TEST(h5log_resume_truncates_without_duplicates_or_gaps) {
    const char *path = tmp_path("resume.h5");
    CHECKF(make_ref_log(path, 100) == 0, "%s", err_msg());
    /* The checkpoint being resumed was saved after row 60. */
    H5log *l = h5log_open_append(path, COLS, N_COLS, "rollouts", 60);
    CHECKF(l != NULL, "%s", err_msg());
    if (!l) return;
    CHECK(h5log_rows(l) == 60);
    CHECK(append_ref(l, 60, 70, 1) == 0);
    CHECK(h5log_close(l) == 0);
    l = h5log_open_read(path);
    CHECK(l && mismatches(l, 130, 60) == 0);
    h5log_close(l);
    /* keep_rows -1 keeps everything. */
    l = h5log_open_append(path, COLS, N_COLS, "rollouts", -1);
    CHECKF(l && h5log_rows(l) == 130, "%s", err_msg());
    CHECK(l && add_row_ref(l, 130, 1) == 0);
    CHECK(h5log_close(l) == 0);
    l = h5log_open_read(path);
    CHECK(l && mismatches(l, 131, 60) == 0);
    h5log_close(l);
    /* Keeping more rows than the log has would leave a gap: refused. */
    CHECK(h5log_open_append(path, COLS, N_COLS, "rollouts", 200) == NULL);
    CHECK_ERR(path, "131 rows", "200");
    CHECK(h5log_open_append(path, COLS, N_COLS, "rollouts", -2) == NULL);
    CHECK_ERR(path, "keep_rows -2");
    /* A resumed run that stops before logging anything leaves the kept rows. */
    l = h5log_open_append(path, COLS, N_COLS, "rollouts", 120);
    CHECKF(l != NULL, "%s", err_msg());
    CHECK(h5log_close(l) == 0);
    l = h5log_open_read(path);
    CHECK(l && mismatches(l, 120, 60) == 0);
    h5log_close(l);
    /* Back to zero rows, then a fresh start. */
    l = h5log_open_append(path, COLS, N_COLS, "rollouts", 0);
    CHECKF(l && h5log_rows(l) == 0, "%s", err_msg());
    CHECK(l && append_ref(l, 0, 5, 1) == 0);
    CHECK(h5log_close(l) == 0);
    l = h5log_open_read(path);
    CHECK(l && mismatches(l, 5, 0) == 0);
    h5log_close(l);
    CHECK(h5dump_reads(path) != 0);
    CHECK(h5_open_ids() == 0);
}

/* The file may list the columns in any order; values follow the names. */
TEST(h5log_resume_with_columns_in_another_order) {
    const char *path = tmp_path("order.h5");
    CHECKF(make_ref_log(path, 10) == 0, "%s", err_msg());
    H5logColumn rev[N_COLS];
    for (int i = 0; i < N_COLS; i++) rev[i] = COLS[N_COLS - 1 - i];
    H5log *l = h5log_open_append(path, rev, N_COLS, "rollouts", -1);
    CHECKF(l != NULL, "%s", err_msg());
    if (!l) return;
    CHECK(!strcmp(h5log_column(l, 0)->name, "logp"));
    int64_t step = 10;
    double reward = ref_reward(10, 0);
    float kl = ref_kl(10), logp[W];
    int32_t len = ref_len(10), tokens[W];
    for (int j = 0; j < W; j++) tokens[j] = ref_token(10, j), logp[j] = ref_logp(10, j);
    const void *cols[N_COLS] = {logp, tokens, &len, &kl, &reward, &step};
    CHECK(h5log_append(l, 1, cols) == 0);
    CHECK(h5log_close(l) == 0);
    l = h5log_open_read(path);
    CHECK(l && mismatches(l, 11, 11) == 0);
    CHECK(l && !strcmp(h5log_column(l, 0)->name, "step")); /* still the creation order */
    h5log_close(l);
    CHECK(h5_open_ids() == 0);
}

TEST(h5log_reopen_rejects_other_columns_and_kinds) {
    const char *path = tmp_path("columns.h5");
    CHECKF(make_ref_log(path, 20) == 0, "%s", err_msg());
    size_t n = 0;
    char *snap = harness_read_file(path, &n);
    H5logColumn c[N_COLS + 1];
    memcpy(c, COLS, sizeof COLS);

    CHECK(h5log_open_append(path, c, N_COLS - 1, "rollouts", -1) == NULL);
    CHECK_ERR(path, "column 'logp' in the file is not one this program writes");
    c[N_COLS] = (H5logColumn){.name = "value", .type = H5LOG_F32, .width = 0, .help = NULL};
    CHECK(h5log_open_append(path, c, N_COLS + 1, "rollouts", -1) == NULL);
    CHECK_ERR(path, "no column 'value'");
    c[3].type = H5LOG_F64;
    CHECK(h5log_open_append(path, c, N_COLS, "rollouts", -1) == NULL);
    CHECK_ERR(path, "column 'len' is i32 in the file but f64 in this program");
    c[3].type = H5LOG_I32;
    c[4].width = W + 1;
    CHECK(h5log_open_append(path, c, N_COLS, "rollouts", -1) == NULL);
    CHECK_ERR(path, "column 'tokens' is i32 x8 in the file but i32 x9");
    c[4].width = 0;
    CHECK(h5log_open_append(path, c, N_COLS, "rollouts", -1) == NULL);
    CHECK_ERR(path, "'tokens'", "i32 x8", "but i32 in");
    CHECK(h5log_open_append(path, COLS, N_COLS, "metrics", -1) == NULL);
    CHECK_ERR(path, "'rollouts' log, expected a 'metrics' log");
    /* None of the refusals changed a byte, and the log still works. */
    CHECK(same_bytes(path, snap, n));
    free(snap);
    H5log *l = h5log_open_read(path);
    CHECK(l && mismatches(l, 20, 20) == 0);
    h5log_close(l);
    CHECK(h5_open_ids() == 0);
}

/* ---- bad arguments and bad files ---------------------------------------- */

TEST(h5log_create_rejects_bad_tables) {
    const char *path = tmp_path("bad.h5");
    H5logColumn c[3] = {{.name = "a", .type = H5LOG_F64, .width = 0, .help = NULL},
                        {.name = "b", .type = H5LOG_I32, .width = 4, .help = "x"},
                        {.name = "a", .type = H5LOG_F64, .width = 0, .help = NULL}};
    CHECK(h5log_create(path, c, 3, "m") == NULL);
    CHECK_ERR(path, "column 'a' declared twice");
    CHECK(h5log_create(path, c, 0, "m") == NULL);
    CHECK_ERR(path, "0 columns");
    CHECK(h5log_create(path, NULL, 2, "m") == NULL);
    c[2].name = "a/b";
    CHECK(h5log_create(path, c, 3, "m") == NULL);
    CHECK_ERR(path, "'a/b'", "'/'");
    c[2].name = "";
    CHECK(h5log_create(path, c, 3, "m") == NULL);
    CHECK_ERR(path, "empty column name");
    c[2].name = "c";
    c[2].width = -1;
    CHECK(h5log_create(path, c, 3, "m") == NULL);
    CHECK_ERR(path, "column 'c'", "width -1");
    c[2].width = 0;
    c[2].type = (H5logType)9;
    CHECK(h5log_create(path, c, 3, "m") == NULL);
    CHECK_ERR(path, "column 'c'", "invalid type 9");
    c[2].type = H5LOG_I64;
    CHECK(h5log_create(path, c, 3, "") == NULL);
    CHECK_ERR(path, "empty kind name");
    CHECK(h5log_create(NULL, c, 3, "m") == NULL);
    CHECK_ERR("h5log_create", "empty log path");
    char missing_dir[600];
    snprintf(missing_dir, sizeof missing_dir, "%s/no/such/dir/log.h5", harness_tmpdir());
    CHECK(h5log_create(missing_dir, c, 3, "m") == NULL);
    CHECK_ERR(missing_dir, "No such file or directory");
    CHECK(access(path, F_OK) != 0); /* nothing was created by the refusals */
    /* An append with a missing column pointer names the column. */
    H5log *l = h5log_create(path, c, 3, "m");
    CHECKF(l != NULL, "%s", err_msg());
    double a[1] = {1};
    const void *cols[3] = {a, NULL, a};
    CHECK(l && h5log_append(l, 1, cols) == -1);
    CHECK_ERR(path, "no values for column 'b'");
    CHECK(l && h5log_append(l, -1, cols) == -1);
    CHECK(h5log_close(l) == 0);
    CHECK(h5_open_ids() == 0);
}

/* A hand-made HDF5 file: root attributes (format NULL = none, kind NULL =
 * none) and what = "group", "u8", "unequal" (i32 x with 5 rows, y with 3)
 * or "scalar3d" (a rank-3 dataset). Latest format, so SWMR can read it. */
static void write_raw(const char *path, const char *format, int64_t version, const char *kind,
                      const char *what) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    hid_t str = H5Tcopy(H5T_C_S1), one = H5Screate(H5S_SCALAR);
    H5Tset_size(str, H5T_VARIABLE);
    const char *attrs[2][2] = {{"format", format}, {"kind", kind}};
    for (int i = 0; i < 2; i++) {
        if (!attrs[i][1]) continue;
        hid_t a = H5Acreate2(f, attrs[i][0], str, one, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, str, &attrs[i][1]);
        H5Aclose(a);
    }
    hid_t a = H5Acreate2(f, "version", H5T_STD_I64LE, one, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &version);
    H5Aclose(a);
    if (!strcmp(what, "group")) {
        H5Gclose(H5Gcreate2(f, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    } else if (!strcmp(what, "u8") || !strcmp(what, "scalar3d")) {
        hsize_t dims[3] = {4, 2, 2};
        hid_t s = H5Screate_simple(what[0] == 'u' ? 1 : 3, dims, NULL);
        H5Dclose(H5Dcreate2(f, "x", what[0] == 'u' ? H5T_STD_U8LE : H5T_STD_I32LE, s, H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT));
        H5Sclose(s);
    } else if (!strcmp(what, "unequal")) {
        int32_t v[5] = {10, 11, 12, 13, 14};
        hsize_t max = H5S_UNLIMITED, chunk = 4;
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &chunk);
        for (int i = 0; i < 2; i++) {
            hsize_t n = i ? 3 : 5;
            hid_t s = H5Screate_simple(1, &n, &max);
            hid_t d = H5Dcreate2(f, i ? "y" : "x", H5T_STD_I32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            H5Dclose(d);
            H5Sclose(s);
        }
        H5Pclose(dcpl);
    }
    H5Sclose(one);
    H5Tclose(str);
    H5Fclose(f);
}

/* open_read and open_append both refuse path, with a message holding
 * want; open_append leaves the file's bytes alone. */
static void check_refused(const char *path, const char *want) {
    size_t n = 0;
    char *snap = harness_read_file(path, &n);
    CHECK(h5log_open_read(path) == NULL);
    CHECK_ERR(path, want);
    CHECK(h5log_open_append(path, COLS, N_COLS, "rollouts", -1) == NULL);
    CHECK_ERR(path, want);
    CHECKF(!snap || same_bytes(path, snap, n), "%s changed", path);
    free(snap);
}

TEST(h5log_rejects_missing_foreign_and_damaged_files) {
    check_refused(tmp_path("missing.h5"), "No such file or directory");
    const char *text = tmp_path("text.h5");
    FILE *f = fopen(text, "w");
    fputs("step,reward\n1,2\n", f);
    fclose(f);
    check_refused(text, "not an HDF5 file");
    const char *raw = tmp_path("raw.h5");
    write_raw(raw, NULL, 1, "rollouts", "u8");
    check_refused(raw, "not an rlhf log (no format attribute)");
    write_raw(raw, "rlhf-checkpoint", 1, "policy", "group");
    check_refused(raw, "not an rlhf log (format attribute is 'rlhf-checkpoint')");
    write_raw(raw, "rlhf-log", 99, "rollouts", "u8");
    check_refused(raw, "version 99 is newer");
    write_raw(raw, "rlhf-log", 1, NULL, "u8");
    check_refused(raw, "without a valid kind");
    write_raw(raw, "rlhf-log", 1, "rollouts", "group");
    check_refused(raw, "'/g' is not a dataset");
    write_raw(raw, "rlhf-log", 1, "rollouts", "u8");
    check_refused(raw, "column 'x': stored type is not");
    write_raw(raw, "rlhf-log", 1, "rollouts", "scalar3d");
    check_refused(raw, "column 'x': 3 dimensions");
    write_raw(raw, "rlhf-log", 1, "rollouts", "none");
    check_refused(raw, "without columns");
    /* A log cut short (a truncated copy) fails cleanly too. */
    const char *log = tmp_path("whole.h5"), *cut = tmp_path("cut.h5");
    CHECK(make_ref_log(log, 3000) == 0);
    size_t n = 0;
    char *bytes = harness_read_file(log, &n);
    f = fopen(cut, "wb");
    fwrite(bytes, 1, n / 2, f);
    fclose(f);
    free(bytes);
    check_refused(cut, "");
    CHECK(h5_open_ids() == 0);
}

/* Columns of unequal length (a writer died during a flush): readers see the
 * shortest, h5py's check flags it, resuming with -1 evens them out. */
TEST(h5log_unequal_columns_read_as_shortest) {
    const char *path = tmp_path("unequal.h5");
    write_raw(path, "rlhf-log", 1, "metrics", "unequal");
    H5log *l = h5log_open_read(path);
    CHECKF(l != NULL, "%s", err_msg());
    CHECK(l && h5log_rows(l) == 3);
    int32_t x[3];
    CHECK(l && h5log_read_i32(l, "x", 0, 3, x) == 0 && x[0] == 10 && x[2] == 12);
    h5log_close(l);
    int h5py = have_h5py();
    if (h5py) CHECK(run_check_script(path, "2>/dev/null") == 1);
    const H5logColumn cols[2] = {{.name = "x", .type = H5LOG_I32, .width = 0, .help = NULL},
                                 {.name = "y", .type = H5LOG_I32, .width = 0, .help = NULL}};
    l = h5log_open_append(path, cols, 2, "metrics", -1);
    CHECKF(l && h5log_rows(l) == 3, "%s", err_msg());
    CHECK(h5log_close(l) == 0);
    if (h5py) CHECK(run_check_script(path, "--rows 3") == 0);
    CHECK(h5_open_ids() == 0);
}

/* ---- concurrent readers, crashes, full disks ----------------------------- */

static int read_int64(int fd, int64_t *v) { return read(fd, v, sizeof *v) == sizeof *v ? 0 : -1; }
static int write_int64(int fd, int64_t v) { return write(fd, &v, sizeof v) == sizeof v ? 0 : -1; }

/* Child side of the SWMR test: for each row count the writer sends, open
 * (first time) or refresh, and answer 1 if the log holds exactly those
 * rows with the reference values. 0 ends it. */
static void swmr_reader(const char *path, int in, int out) {
    H5log *l = NULL;
    int64_t want;
    while (read_int64(in, &want) == 0 && want > 0) {
        if (!l) l = h5log_open_read(path);
        else if (h5log_refresh(l)) h5log_close(l), l = NULL;
        if (!l) printf("    reader: %s\n", err_msg());
        write_int64(out, l && mismatches(l, want, want) == 0);
    }
    _exit(h5log_close(l) == 0 && h5_open_ids() == 0 ? 0 : 1);
}

TEST(h5log_swmr_reader_sees_flushed_rows) {
    const char *path = tmp_path("swmr.h5");
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) { CHECK(0); return; }
    /* Fork before the writer opens the file: an HDF5 file open in the
     * parent would be open in the child's library state too. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) swmr_reader(path, to_child[0], from_child[1]);
    H5log *l = h5log_create(path, COLS, N_COLS, "rollouts");
    CHECKF(l != NULL, "%s", err_msg());
    int64_t ok = 0;
    int h5py = have_h5py();
    /* Round 1: 100 flushed rows. */
    CHECK(l && append_ref(l, 0, 100, 0) == 0 && h5log_flush(l) == 0);
    CHECK(write_int64(to_child[1], 100) == 0 && read_int64(from_child[0], &ok) == 0 && ok == 1);
    /* Round 2: 64 more, and h5py reads the live file too. */
    CHECK(l && append_ref(l, 100, 64, 0) == 0 && h5log_flush(l) == 0);
    if (h5py) CHECK(run_check_script(path, "--rows 164") == 0);
    CHECK(write_int64(to_child[1], 164) == 0 && read_int64(from_child[0], &ok) == 0 && ok == 1);
    /* Round 3: 10 rows still in the writer's buffer are not visible. */
    CHECK(l && append_ref(l, 164, 10, 0) == 0 && h5log_rows(l) == 174);
    CHECK(write_int64(to_child[1], 164) == 0 && read_int64(from_child[0], &ok) == 0 && ok == 1);
    CHECK(write_int64(to_child[1], 0) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(to_child[0]), close(to_child[1]), close(from_child[0]), close(from_child[1]);
    CHECK(h5log_close(l) == 0);
    CHECK(h5dump_reads(path) != 0);
    if (h5py) CHECK(run_check_script(path, "--rows 174") == 0);
    CHECK(h5_open_ids() == 0);
}

/* A writer killed with 50 flushed rows and 30 more written but not flushed:
 * readers see the file (without changing it); resuming from the checkpoint
 * at row 50 continues it, and afterwards h5dump reads it again. */
TEST(h5log_recovers_after_writer_killed) {
    const char *path = tmp_path("killed.h5");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        H5log *l = h5log_create(path, COLS, N_COLS, "rollouts");
        int32_t x;
        if (!l || append_ref(l, 0, 50, 0) || h5log_flush(l) || append_ref(l, 50, 30, 0) ||
            h5log_read_i32(l, "len", 0, 1, &x)) /* a read writes the buffer out */
            _exit(1);
        raise(SIGKILL);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    size_t n = 0;
    char *snap = harness_read_file(path, &n);
    H5log *l = h5log_open_read(path);
    CHECKF(l != NULL, "%s", err_msg());
    CHECKF(l && h5log_rows(l) >= 50 && h5log_rows(l) <= 80, "%lld rows", (long long)h5log_rows(l));
    h5log_close(l);
    CHECK(snap && same_bytes(path, snap, n));
    free(snap);
    if (have_h5py()) CHECK(run_check_script(path, "") == 0);
    l = h5log_open_append(path, COLS, N_COLS, "rollouts", 50);
    CHECKF(l != NULL, "%s", err_msg());
    CHECK(l && append_ref(l, 50, 20, 1) == 0);
    CHECK(h5log_close(l) == 0);
    l = h5log_open_read(path);
    CHECK(l && mismatches(l, 70, 50) == 0);
    h5log_close(l);
    CHECK(h5dump_reads(path) != 0);
    CHECK(h5_open_ids() == 0);
}

/* While a writer is alive, a second one is refused (it would destroy the
 * log); once the writer has closed, appending works. */
TEST(h5log_live_writer_is_not_joined) {
    const char *path = tmp_path("live.h5");
    int ready[2], done[2];
    if (pipe(ready) || pipe(done)) { CHECK(0); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        H5log *l = h5log_create(path, COLS, N_COLS, "rollouts");
        int64_t go = 0;
        int ok = l && append_ref(l, 0, 40, 0) == 0 && h5log_flush(l) == 0;
        write_int64(ready[1], ok);
        read_int64(done[0], &go);
        ok = ok && append_ref(l, 40, 5, 0) == 0 && h5log_close(l) == 0;
        _exit(ok ? 0 : 1);
    }
    int64_t ok = 0;
    CHECK(read_int64(ready[0], &ok) == 0 && ok == 1);
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "process %ld", (long)pid);
    CHECK(h5log_open_append(path, COLS, N_COLS, "rollouts", -1) == NULL);
    CHECK_ERR(path, pid_text, "still writing", "h5clear -s");
    H5log *r = h5log_open_read(path); /* reading is fine */
    CHECK(r && mismatches(r, 40, 40) == 0);
    h5log_close(r);
    CHECK(write_int64(done[1], 1) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]), close(ready[1]), close(done[0]), close(done[1]);
    H5log *l = h5log_open_append(path, COLS, N_COLS, "rollouts", -1);
    CHECKF(l && h5log_rows(l) == 45, "%s", err_msg());
    CHECK(h5log_close(l) == 0);
    CHECK(h5_open_ids() == 0);
}

/* The disk fills up (a file-size limit in a child process, so writes past
 * it fail with EFBIG): the failing call names the file and the reason, the
 * log takes no more rows, close does not crash, and the rows flushed before
 * the failure are intact and can be continued. */
TEST(h5log_disk_full_keeps_flushed_rows) {
    const char *path = tmp_path("full.h5");
    int res[2];
    if (pipe(res)) { CHECK(0); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit lim;
        getrlimit(RLIMIT_FSIZE, &lim);
        rlim_t old = lim.rlim_cur;
        lim.rlim_cur = 160 * 1024;
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &lim);
        H5log *l = h5log_create(path, COLS, N_COLS, "rollouts");
        int64_t good = 0;
        int ok = l != NULL;
        while (ok && good < 10000000) {
            if (append_ref(l, good, 64, 0) || h5log_flush(l)) break;
            good += 64;
        }
        ok = ok && harness_err_has(path, "File too large", (const char *)NULL);
        if (!ok) printf("    child: %s\n", err_msg());
        ok = ok && append_ref(l, good, 1, 0) == -1 && harness_err_has(path, "earlier write failed", (const char *)NULL);
        /* The disk is full, not memory: lift the limit before the close,
         * which must not write to the file any more. */
        size_t n = 0;
        char *snap = harness_read_file(path, &n);
        lim.rlim_cur = old;
        setrlimit(RLIMIT_FSIZE, &lim);
        h5log_close(l);
        ok = ok && snap && same_bytes(path, snap, n);
        free(snap);
        write_int64(res[1], ok ? good : -1);
        _exit(ok && h5_open_ids() == 0 ? 0 : 1);
    }
    int64_t good = -1;
    int status = 0;
    CHECK(read_int64(res[0], &good) == 0 && good > 0);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(res[0]), close(res[1]);
    if (good <= 0) return;
    H5log *l = h5log_open_read(path); /* `rlhf inspect` before the resume */
    CHECKF(l && h5log_rows(l) >= good && first_mismatches(l, good, good) == 0, "%s", err_msg());
    h5log_close(l);
    l = h5log_open_append(path, COLS, N_COLS, "rollouts", good);
    CHECKF(l != NULL, "%s", err_msg());
    CHECK(l && append_ref(l, good, 10, 1) == 0);
    CHECK(h5log_close(l) == 0);
    l = h5log_open_read(path);
    CHECK(l && mismatches(l, good + 10, good) == 0);
    h5log_close(l);
    CHECK(h5dump_reads(path) != 0);
    CHECK(h5_open_ids() == 0);
}

/* ---- file size under frequent flushes ------------------------------------ */

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* rows rows of (step, 128 token ids of which the first r % 97 + 32 are set),
 * flushed every flush_every rows. */
static long tokens_log_size(const char *path, int rows, int flush_every) {
    const H5logColumn cols[2] = {{.name = "step", .type = H5LOG_I64, .width = 0, .help = NULL},
                                 {.name = "tokens", .type = H5LOG_I32, .width = 128, .help = NULL}};
    H5log *l = h5log_create(path, cols, 2, "rollouts");
    int ok = l != NULL;
    for (int r = 0; r < rows && ok; r++) {
        int32_t tokens[128];
        int len = r % 97 + 32;
        for (int j = 0; j < len; j++) tokens[j] = (int32_t)(((uint32_t)r * 2654435761u + j * 40503u) % 50257);
        ok = !h5log_set_i64(l, "step", r) && !h5log_set_i32s(l, "tokens", tokens, len) &&
             !h5log_row_done(l) && ((r + 1) % flush_every || !h5log_flush(l));
    }
    if (h5log_close(l) || !ok) return -1;
    return file_size(path);
}

/* SWMR never reuses file space, so each flush that rewrote a compressed
 * chunk left the old copy behind: with large compressed chunks a log
 * flushed every row grew by kilobytes per row. Scalar columns flushed every
 * row must cost about their raw size; compressed token rows flushed every
 * 64-row batch about what one flush at the end costs. */
TEST(h5log_frequent_flushes_do_not_bloat_the_file) {
    const char *path = tmp_path("metrics.h5");
    char names[8][8];
    H5logColumn cols[8];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        cols[i] = (H5logColumn){.name = names[i], .type = i ? H5LOG_F64 : H5LOG_I64, .width = 0, .help = NULL};
    }
    H5log *l = h5log_create(path, cols, 8, "metrics");
    CHECKF(l != NULL, "%s", err_msg());
    int rows = 400;
    for (int r = 0; r < rows && l; r++) {
        int ok = h5log_set_i64(l, "m0", r) == 0;
        for (int i = 1; i < 8; i++) ok = ok && h5log_set_f64(l, names[i], sin(r * 1.7 + i)) == 0;
        if (!ok || h5log_row_done(l) || h5log_flush(l)) {
            CHECKF(0, "row %d: %s", r, err_msg());
            break;
        }
    }
    CHECK(h5log_close(l) == 0);
    long size = file_size(path), raw = (long)rows * 8 * 8;
    CHECKF(size > 0 && size < 2 * raw + 64 * 1024, "%ld bytes for %ld bytes of values", size, raw);
    long once = tokens_log_size(tmp_path("tokens1.h5"), 2048, 2048);
    long per_batch = tokens_log_size(tmp_path("tokens64.h5"), 2048, 64);
    CHECKF(once > 0 && per_batch > 0 && per_batch < once * 5 / 4, "%ld bytes flushed per batch, %ld flushed once",
           per_batch, once);
    CHECK(h5_open_ids() == 0);
}
