/* watch — deadlines for the ranks a learner waits on; see watch.h. */
#include "learner/watch.h"

#include <math.h>
#include <stdlib.h>

#include "common/err.h"

int watch_init(Watch *w, int n_ranks, double timeout, double now) {
    if (!(timeout > 0) || !isfinite(timeout)) return err_set("rank_timeout: %g is not a positive number of seconds", timeout);
    w->n_ranks = n_ranks;
    w->timeout = timeout;
    w->heard = err_malloc((size_t)(n_ranks > 0 ? n_ranks : 1) * sizeof(double));
    w->late_since = err_malloc((size_t)(n_ranks > 0 ? n_ranks : 1) * sizeof(double));
    for (int r = 0; r < n_ranks; r++) {
        w->heard[r] = now;
        w->late_since[r] = -1;
    }
    return 0;
}

void watch_free(Watch *w) {
    free(w->heard);
    free(w->late_since);
    w->heard = w->late_since = NULL;
}

void watch_heard(Watch *w, int rank, double now) {
    if (rank < 0 || rank >= w->n_ranks) return;
    w->heard[rank] = now;
    w->late_since[rank] = -1;
}

WatchState watch_check(Watch *w, int rank, double since, double now) {
    if (rank < 0 || rank >= w->n_ranks) return WATCH_OK;
    if (w->late_since[rank] >= 0) return now - w->late_since[rank] > 2 * w->timeout ? WATCH_GONE : WATCH_LATE;
    double quiet = since > w->heard[rank] ? since : w->heard[rank];
    if (now - quiet <= w->timeout) return WATCH_OK;
    w->late_since[rank] = quiet;
    return now - quiet > 2 * w->timeout ? WATCH_GONE : WATCH_NEWLY_LATE;
}

int watch_is_late(const Watch *w, int rank) { return rank >= 0 && rank < w->n_ranks && w->late_since[rank] >= 0; }

double watch_silent_for(const Watch *w, int rank, double now) {
    if (rank < 0 || rank >= w->n_ranks) return 0;
    return now - (w->late_since[rank] >= 0 ? w->late_since[rank] : w->heard[rank]);
}

int watch_pick(const Watch *w, const int *ranks, int n, int start, int avoid) {
    for (int k = 0; k < n; k++) {
        int r = ranks[((start + k) % n + n) % n];
        if (r != avoid && !watch_is_late(w, r)) return r;
    }
    return -1;
}
