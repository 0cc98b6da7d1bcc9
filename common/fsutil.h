/* fsutil — the file-system helpers every module shares, so each has one
 * home: reading a whole file, joining paths, atomic output (a temporary in
 * the target's directory, fsync, rename, fsync of the directory), clocks,
 * mkdir -p, and numbered checkpoint files in a run directory
 * (DIR/PREFIX<number>.h5): the latest one, and pruning old ones.
 * Foundation: includes only common/err.h and system headers. */
#ifndef FSUTIL_H
#define FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What an atomic writer's temporary adds to the final name, before the
 * writer's pid: "PATH.tmp.<pid>" (ckpt recognises dead writers' leftovers
 * by it). */
#define FS_TMP_INFIX ".tmp."

/* Like mkdir -p; -1 + err_set naming the path that failed. */
int fs_mkdirs(const char *dir);
/* DIR/PREFIX%0*lld.h5 with width digits. */
void fs_numbered(char *buf, size_t n, const char *dir, const char *prefix, int width, int64_t number);
/* Highest number of an existing DIR/PREFIX<number>.h5, or -1. */
int64_t fs_latest_numbered(const char *dir, const char *prefix);
/* Removes numbered files below `below`, keeping the newest keep - 1 of them
 * (the file at `below` itself counts as one kept). */
void fs_prune_numbered(const char *dir, const char *prefix, int width, int64_t below, int keep);

/* The whole file, malloc'd, with a NUL after the last byte (not counted in
 * *len) so text callers can use it as a string. NULL + err_set
 * "PATH: cannot open: <reason>" or "PATH: read error". */
char *fs_read_all(const char *path, size_t *len);

/* "dir/name", malloc'd; no second '/' when dir already ends with one, and
 * just name when dir is empty. */
char *fs_join(const char *dir, const char *name);

/* ---- atomic output -------------------------------------------------------
 * A writer creates fs_tmp_name(path), writes and closes it, then calls
 * fs_commit; readers of path see the old file or the whole new one, never
 * a part, and a crash leaves at most the temporary behind. */

/* The output rule (DESIGN.md "Errors"): an output is replaced only if it
 * is a regular file. fs_check_target is 0 if path may be replaced: it does
 * not exist or is a regular file. A directory, device, FIFO or socket is
 * refused with -1 + err_set("PATH: exists and is not a regular file (a
 * FIFO)") before anything is written. Symlinks, decided once for every
 * writer: an atomic writer (temporary + fs_commit) replaces a symlink AS A
 * LINK, since rename never follows it, so the link's target is never
 * truncated; a link to a non-regular file is still refused. A writer that
 * changes a file in place (the HDF5 logs, appended or truncated) cannot
 * replace a link, so it calls fs_check_inplace, which refuses symlinks. */
int fs_check_target(const char *path);
/* For a file a command makes from nothing (init, import-hf): an existing
 * path may be a trained model, so it is replaced only when force is set
 * ("PATH: exists; give --force to replace it"); then fs_check_target. */
int fs_check_new(const char *path, int force);
/* For outputs written in place: 0 if path does not exist or is a regular
 * file that is not a symlink; -1 + err_set("PATH: is a symbolic link ...")
 * or fs_check_target's refusal otherwise. */
int fs_check_inplace(const char *path);
/* 1 if a and b both exist and are the same file (device + inode, after
 * following symlinks; hard links count), else 0. */
int fs_same_file(const char *a, const char *b);
/* An output that names an input of the same command is refused: 0 if out
 * is none of inputs[0..n) (NULL entries skipped), else -1 + err_set("OUT:
 * is the same file as the input IN; refusing to overwrite an input").
 * Call it before any work, with every file the command reads. */
int fs_check_not_input(const char *out, const char *const *inputs, int n);
/* fs_check_not_input for a run directory: every file a run writes there,
 * dir/NAME for each of names[] (NULL-terminated) and every existing
 * dir/PREFIX<number>.h5 (its checkpoints, which it prunes), must be none of
 * inputs[0..n). 0 if dir does not exist yet. */
int fs_check_dir_not_input(const char *dir, const char *const *names, const char *prefix,
                           const char *const *inputs, int n);
/* The input rule: a file that must be seekable (a checkpoint, a
 * safetensors file, a file of a Hugging Face directory) is stat'ed before
 * it is opened, so a FIFO can never block open(). 0 if path is a regular
 * file or does not exist (the opener then says so); -1 + err_set("PATH:
 * WHAT must be a regular file, not a FIFO") otherwise. Text inputs that
 * are read once from the start (prompts, training data, configs) do not
 * call it: pipes and /dev/stdin keep working there. */
int fs_check_input(const char *path, const char *what);
/* "PATH.tmp.<pid>", malloc'd: in path's directory, so the rename stays on
 * one filesystem. */
char *fs_tmp_name(const char *path);
/* fsync(tmp), rename(tmp, path), then fsync of path's directory (best
 * effort: the file is already complete under its name, and some
 * filesystems refuse a directory fsync). On failure tmp is removed and
 * -1 + err_set names path, tmp and the reason. */
int fs_commit(const char *tmp, const char *path);
/* Fills an open file; 0, or -1 after err_set for a failure of its own
 * (stdio write errors need no message: fs_write_tmp finds them with
 * ferror and reports errno). */
typedef int (*FsWriteFn)(FILE *f, void *ctx);
/* Creates tmp and fills it with write(f, ctx). "TMP: cannot create: ..."
 * or "TMP: write failed: ..."; on any failure tmp is removed. Tests can
 * make it fail: RLHF_TEST_FAIL_WRITE=TEXT fails every tmp whose name holds
 * TEXT. */
int fs_write_tmp(const char *tmp, FsWriteFn write, void *ctx);
/* TEST-ONLY fault injection: 1 (errno = ENOSPC) if RLHF_TEST_FAIL_WRITE is
 * set and path holds its text, so that a write to that file fails as on a
 * full disk: fs_write_tmp's temporaries (tests/cli/outputs.sh fails an
 * export midway) and the row writes of HDF5 logs (common/io/h5log;
 * tests/cli/slips.sh fails metrics.h5 and rollouts.h5 in a run). Never set
 * it outside tests. */
int fs_test_write_fails(const char *path);
/* The new contents of path from write(f, ctx): fs_check_target, then a
 * temporary filled by fs_write_tmp and committed by fs_commit. */
int fs_write_atomic_with(const char *path, FsWriteFn write, void *ctx);
/* data[0..len) as the new contents of path, the same way. */
int fs_write_atomic(const char *path, const void *data, size_t len);

/* Start time of a process in clock ticks since boot (field 22 of
 * /proc/PID/stat), 0 if there is no such process, it has exited and only
 * waits to be reaped (a zombie, state Z or X), or there is no /proc. With
 * the pid it names a process uniquely, even after its pid was reused. */
unsigned long long fs_process_start(long pid);

/* ---- clocks --------------------------------------------------------------- */

/* Seconds on the monotonic clock: for durations (never jumps). */
double fs_now(void);
/* Seconds since the Unix epoch (CLOCK_REALTIME): for timestamps in logs. */
double fs_wall_now(void);

/* ---- one run per directory -------------------------------------------------
 * Rule: one run at a time owns an output directory. The rank that writes
 * (trainers: rank 0; PPO: learner 0) takes DIR/.lock with flock before it
 * reads or writes anything there and keeps it for the whole run; the kernel
 * releases it when the process ends, however it ends (kill -9 included), so
 * a stale lock file is simply taken over. The holder writes "PID HOST" into
 * it after locking, for the message the next run prints. */

#define FS_LOCK_NAME ".lock"

/* Locks dir (which must exist): a file descriptor to keep until the run
 * ends, or -1 + err_set("DIR: in use by another run (pid PID on HOST, DIR/.lock)")
 * when another process holds it, or naming DIR/.lock and the reason when it
 * cannot be created (a .lock that is not a regular file is refused). The
 * descriptor is close-on-exec. */
int fs_lock_dir(const char *dir);
/* Releases a lock from fs_lock_dir (fd < 0: no-op). The file stays: removing
 * it would race with the next run's open. */
void fs_unlock_dir(int fd);

/* Removes every DIR/PREFIX<number>.h5 (a run replaced with overwrite=1);
 * -1 + err_set naming the file that could not be removed. */
int fs_remove_numbered(const char *dir, const char *prefix, int width);

#endif
