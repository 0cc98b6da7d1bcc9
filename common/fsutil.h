/* fsutil — small file-system helpers shared by the trainers, PPO and the
 * exporters: mkdir -p, and numbered checkpoint files in a run directory
 * (DIR/PREFIX<number>.h5): the latest one, and pruning old ones. */
#ifndef FSUTIL_H
#define FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Like mkdir -p; -1 + err_set naming the path that failed. */
int fs_mkdirs(const char *dir);
/* DIR/PREFIX%0*lld.h5 with width digits. */
void fs_numbered(char *buf, size_t n, const char *dir, const char *prefix, int width, int64_t number);
/* Highest number of an existing DIR/PREFIX<number>.h5, or -1. */
int64_t fs_latest_numbered(const char *dir, const char *prefix);
/* Removes numbered files below `below`, keeping the newest keep - 1 of them
 * (the file at `below` itself counts as one kept). */
void fs_prune_numbered(const char *dir, const char *prefix, int width, int64_t below, int keep);

#endif
