/* runrec — the run directory's own record of the settings a run was started
 * with: OUT_DIR/settings.cfg, written atomically at start by the rank that
 * owns the directory (it holds the lock, fsutil's fs_lock_dir) and checked by
 * the next run whatever else the directory holds (checkpoints, only
 * final.h5, only logs). The trainers and the PPO learner use it; the
 * checkpoint comparison on resume (ckpt_load_config + config_diff) still
 * applies as well.
 *
 * Rule: a run that finds a record made with other settings refuses to touch
 * the directory, naming the keys that differ, unless told to overwrite
 * (overwrite=1 or --force); keys that may change between runs (log_every,
 * ckpt_every, out_dir, ...: each caller's runtime-key list, the one it also
 * uses for the checkpoint comparison) do not count.
 *
 * File format (a config file, readable by config_load_file):
 *   # rlhf run settings: stage STAGE, hash HEX16
 *   key = value ...       (config_print of the resolved configuration)
 * The hash is FNV-1a over "key=value\n" of the keys that count, in table
 * order: two directories with the same hash ran with the same settings. */
#ifndef RUNREC_H
#define RUNREC_H

#include <stdint.h>

#include "common/config.h"

#define RUNREC_NAME "settings.cfg"

typedef enum {
    RUNREC_NONE,   /* no record: a new run directory (or one from before records) */
    RUNREC_SAME,   /* the record's stage and settings are this run's */
    RUNREC_DIFFERS /* another stage or other settings: err_msg() says which */
} RunrecState;

/* Compares DIR/settings.cfg with cfg. saved is a fresh Config of the same
 * key tables as cfg (filled from the record; the caller frees it); ignore
 * is the NULL-terminated list of keys that do not count. -1 + err_set for a
 * record that cannot be read; RUNREC_DIFFERS after err_set("PATH: written
 * with a different configuration: lr (0.001 vs 0.002); ...") or
 * ("DIR holds a STAGE run, not a STAGE run; ..."). */
int runrec_check(const char *dir, const char *stage, const Config *cfg, Config *saved,
                 const char *const *ignore);
/* Writes DIR/settings.cfg for cfg (atomically, fs_write_atomic_with). */
int runrec_write(const char *dir, const char *stage, const Config *cfg, const char *const *ignore);
/* Rule: a run never writes over one of its inputs (DESIGN.md "Errors").
 * Every string key of cfg but out_dir names an input file (init,
 * train_data, ref, policy, prompts, ...); none may be a file the run writes
 * in DIR (fs_check_dir_not_input): RUNREC_NAME, the lock, each of
 * outputs[] (NULL-terminated) and every existing DIR/PREFIX<number>.h5.
 * Call it before anything is read or written there. 0, or -1 +
 * err_set("DIR/final.h5: is the same file as the input PATH; refusing to
 * overwrite an input (key init)"). */
int runrec_check_inputs(const char *dir, const Config *cfg, const char *const *outputs, const char *prefix);
/* The settings hash (see above). */
uint64_t runrec_hash(const Config *cfg, const char *const *ignore);

#endif
