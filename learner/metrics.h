/* metrics — per-step training metrics and per-evaluation validation metrics
 * as HDF5 tables (float64 columns, one row per step), written by rank 0
 * through common/io/h5log. A resumed run reopens the file and drops rows after
 * the step it resumes from, so the table has no duplicates and no gaps. */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>

typedef struct Metrics Metrics;

/* cols[0] must be "step". keep_step < 0: create (replacing any old file);
 * otherwise append to the existing file (created if missing), first dropping
 * rows whose step is > keep_step. NULL + err_set on failure. */
Metrics *metrics_open(const char *path, const char *kind, const char *const *cols, int n_cols,
                      int64_t keep_step);
/* Each returns 0, or -1 + err_set naming the file (h5log's message: a
 * write that failed, e.g. a full disk); the caller ends the run with it
 * (the rule: a failed write to a log is an error). After a failure the
 * log takes no more rows; close then releases it without writing. */
int metrics_append(Metrics *m, const double *row);
int metrics_flush(Metrics *m);
int metrics_close(Metrics *m);

#endif
