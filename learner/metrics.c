/* metrics — float64 metric tables over common/io/h5log; see metrics.h. */
#include "learner/metrics.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/io/h5log.h"

struct Metrics {
    H5log *log;
    int n_cols;
    const char *const *cols;
};

/* Rows of an existing log whose step is <= keep_step (steps are increasing). */
static int64_t rows_to_keep(const char *path, int64_t keep_step) {
    H5log *r = h5log_open_read(path);
    if (!r) return -1;
    int64_t n = h5log_rows(r), keep = 0;
    double *steps = err_malloc((size_t)(n ? n : 1) * sizeof(double));
    if (h5log_read_f64(r, "step", 0, n, steps)) keep = -1;
    while (keep >= 0 && keep < n && steps[keep] <= (double)keep_step) keep++;
    free(steps);
    h5log_close(r);
    return keep;
}

Metrics *metrics_open(const char *path, const char *kind, const char *const *cols, int n_cols, int64_t keep_step) {
    H5logColumn spec[H5LOG_MAX_COLUMNS];
    for (int i = 0; i < n_cols; i++) spec[i] = (H5logColumn){.name = cols[i], .type = H5LOG_F64, .width = 0};
    struct stat st;
    H5log *l;
    if (keep_step < 0 || stat(path, &st)) {
        l = h5log_create(path, spec, n_cols, kind);
    } else {
        int64_t keep = rows_to_keep(path, keep_step);
        l = keep < 0 ? NULL : h5log_open_append(path, spec, n_cols, kind, keep);
    }
    if (!l) return NULL;
    Metrics *m = err_calloc(1, sizeof *m);
    m->log = l;
    m->n_cols = n_cols;
    m->cols = cols;
    return m;
}

int metrics_append(Metrics *m, const double *row) {
    for (int i = 0; i < m->n_cols; i++)
        if (h5log_set_f64(m->log, m->cols[i], row[i])) return -1;
    return h5log_row_done(m->log);
}

int metrics_flush(Metrics *m) { return h5log_flush(m->log); }

int metrics_close(Metrics *m) {
    int rc = h5log_close(m->log);
    free(m);
    return rc;
}
