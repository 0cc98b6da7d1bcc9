/* fuzz_h5log_read — what `rlhf inspect` and the tests do with a log they are
 * given, applied to one file: open for reading, list the columns, read the
 * first rows of each (as stored and as f64 where that is allowed), refuse
 * rows past the end, refresh, close. Each step succeeds or fails with a
 * message naming the file; nothing crashes or leaks and no HDF5 handle
 * stays open. Also builds the small valid log the harnesses start from. */
#ifndef FUZZ_H5LOG_READ_H
#define FUZZ_H5LOG_READ_H

#include "common/err.h"
#include "common/io/h5log.h"
#include "tests/fuzz/fuzz_h5edit.h"

/* A log with a scalar of each width and a compressed (wide) array column,
 * 5 rows, closed cleanly. Written once per process. */
static inline const char *fuzz_base_log(void) {
    static const char *path;
    if (path) return path;
    path = fuzz_path_keep("base-log.h5");
    static const H5logColumn cols[] = {{.name = "step", .type = H5LOG_I64, .width = 0, .help = "iteration"},
                                       {.name = "loss", .type = H5LOG_F64, .width = 0, .help = "nats"},
                                       {.name = "tokens", .type = H5LOG_I32, .width = 8, .help = "token ids"},
                                       {.name = "logp", .type = H5LOG_F32, .width = 32, .help = NULL}};
    H5log *l = h5log_create(path, cols, 4, "rollouts");
    int rc = !l;
    for (int r = 0; r < 5 && !rc; r++) {
        int32_t tok[8] = {r, r + 1, r + 2};
        float lp[32] = {-0.5f * (float)r, -1.0f};
        rc = h5log_set_i64(l, "step", r) || h5log_set_f64(l, "loss", 1.0 / (r + 1)) ||
             h5log_set_i32s(l, "tokens", tok, 3) || h5log_set_f32s(l, "logp", lp, 2) || h5log_row_done(l);
    }
    if (h5log_close(l) || rc) {
        fprintf(stderr, "fuzz: base log: %s\n", err_msg());
        abort();
    }
    return path;
}

static inline void fuzz_h5log_named(const char *path, int rc) {
    if (rc) FUZZ_CHECK(strstr(err_msg(), path) != NULL, "message does not name the file: %s", err_msg());
}

static inline void fuzz_h5log_column(H5log *l, const char *path, int i) {
    const H5logColumn *c = h5log_column(l, i);
    FUZZ_CHECK(c && c->name && c->width >= 0 && c->width <= H5LOG_MAX_WIDTH, "bad column %d", i);
    if (!c) return;
    FUZZ_CHECK(h5log_find_column(l, c->name) == i, "column '%s' not found by name", c->name);
    int64_t rows = h5log_rows(l), k = rows < 4 ? rows : 4;
    size_t per_row = (size_t)(c->width ? c->width : 1);
    if (per_row > 4096) k = k ? 1 : 0; /* wide rows: one is enough */
    double *buf = malloc((size_t)(k ? k : 1) * per_row * sizeof *buf);
    err_clear();
    fuzz_h5log_named(path, h5log_read(l, c->name, 0, k, c->type, buf));
    fuzz_h5log_named(path, h5log_read_f64(l, c->name, 0, k, buf)); /* f64 takes every type */
    FUZZ_CHECK(h5log_read(l, c->name, rows, 1, c->type, buf) < 0, "read past the last row accepted");
    free(buf);
}

static inline void fuzz_h5log_read(const char *path) {
    err_clear();
    H5log *l = h5log_open_read(path);
    if (!l) {
        fuzz_h5log_named(path, -1);
        FUZZ_CHECK(fuzz_h5_open_ids() == 0, "%ld HDF5 objects open after a failed open", fuzz_h5_open_ids());
        return;
    }
    FUZZ_CHECK(h5log_rows(l) >= 0, "negative row count");
    int n = h5log_n_columns(l);
    FUZZ_CHECK(n >= 1 && n <= H5LOG_MAX_COLUMNS, "%d columns", n);
    for (int i = 0; i < n; i++) fuzz_h5log_column(l, path, i);
    fuzz_h5log_named(path, h5log_refresh(l));
    h5log_kind(l);
    h5log_close(l);
    FUZZ_CHECK(fuzz_h5_open_ids() == 0, "%ld HDF5 objects open after h5log_close", fuzz_h5_open_ids());
}

#endif
