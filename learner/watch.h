/* watch — the learner's deadlines for the ranks it waits on (rank_timeout).
 * A rank holding work the learner waits for (an order to sample or score, a
 * snapshot being sent to it) is late once it has been silent for the
 * timeout since the later of the work's start and the last message heard
 * from it: the learner names it and gives its work to another rank. A late
 * rank still silent past twice the timeout ends the job (the learner writes
 * a checkpoint of the last complete iteration first): a hung node cannot
 * finish an MPI job, so a resubmitted run, which resumes on any actor
 * count, is the way on. Hearing from a late rank makes it punctual again.
 * Pure bookkeeping over times the caller passes in (seconds, one clock per
 * process), so it is tested without MPI or waiting. */
#ifndef WATCH_H
#define WATCH_H

typedef enum {
    WATCH_OK,         /* within its deadline */
    WATCH_NEWLY_LATE, /* past the first deadline just now: warn, reassign */
    WATCH_LATE,       /* already late, before the second deadline */
    WATCH_GONE,       /* past the second deadline: end the job */
} WatchState;

typedef struct {
    int n_ranks;
    double timeout;
    double *heard;      /* when each rank was last heard from */
    double *late_since; /* start of the silence a late rank was found in; < 0: not late */
} Watch;

/* 0, or -1 + err_set for a timeout that is not a positive number. */
int watch_init(Watch *w, int n_ranks, double timeout, double now);
void watch_free(Watch *w);
/* A message from rank came: it is no longer late. */
void watch_heard(Watch *w, int rank, double now);
/* The state of rank for work it has held since `since`. */
WatchState watch_check(Watch *w, int rank, double since, double now);
int watch_is_late(const Watch *w, int rank);
/* Seconds rank has been silent (for messages). */
double watch_silent_for(const Watch *w, int rank, double now);
/* The first of ranks[0..n) from position start on (round robin) that is not
 * late and is not `avoid` (-1: none); -1 if there is none. */
int watch_pick(const Watch *w, const int *ranks, int n, int start, int avoid);

#endif
