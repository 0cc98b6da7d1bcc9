/* runrec — the settings record of a run directory; see runrec.h. */
#include "common/io/runrec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/fsutil.h"

#define RUNREC_HEADER "# rlhf run settings: stage "

static int ignored(const char *key, const char *const *ignore) {
    for (int i = 0; ignore && ignore[i]; i++)
        if (!strcmp(key, ignore[i])) return 1;
    return 0;
}

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t runrec_hash(const Config *cfg, const char *const *ignore) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < config_count(cfg); i++) {
        const char *key = config_key_at(cfg, i)->key, *val = config_get_raw(cfg, key);
        if (ignored(key, ignore)) continue;
        h = fnv1a(h, key);
        h = fnv1a(h, "=");
        h = fnv1a(h, val ? val : "");
        h = fnv1a(h, "\n");
    }
    return h;
}

typedef struct {
    const char *stage;
    const Config *cfg;
    const char *const *ignore;
} RunrecOut;

static int write_record(FILE *f, void *ctx) {
    const RunrecOut *o = ctx;
    fprintf(f, RUNREC_HEADER "%s, hash %016" PRIx64 "\n", o->stage, runrec_hash(o->cfg, o->ignore));
    config_print(o->cfg, f);
    return 0;
}

int runrec_write(const char *dir, const char *stage, const Config *cfg, const char *const *ignore) {
    char *path = fs_join(dir, RUNREC_NAME);
    RunrecOut o = {.stage = stage, .cfg = cfg, .ignore = ignore};
    int rc = fs_write_atomic_with(path, write_record, &o);
    free(path);
    return rc;
}

int runrec_check(const char *dir, const char *stage, const Config *cfg, Config *saved,
                 const char *const *ignore) {
    char *path = fs_join(dir, RUNREC_NAME);
    struct stat st;
    if (lstat(path, &st) && errno == ENOENT) {
        free(path);
        return RUNREC_NONE;
    }
    size_t len;
    char *text = fs_read_all(path, &len), old[64] = "";
    int rc = text ? RUNREC_SAME : -1;
    if (text && strncmp(text, RUNREC_HEADER, strlen(RUNREC_HEADER)))
        rc = err_set("%s: not a settings record (no \"%s\" line); move it away or use another out_dir", path,
                     RUNREC_HEADER "...");
    else if (text && sscanf(text + strlen(RUNREC_HEADER), "%63[^,\n]", old) == 1 && strcmp(old, stage)) {
        err_set("%s holds a %s run, not a %s run (%s); use another out_dir, or overwrite=1 to replace it", dir, old,
                stage, path);
        rc = RUNREC_DIFFERS;
    } else if (text && config_load_file(saved, path)) {
        rc = -1;
    } else if (text) {
        char diff[600];
        for (int i = 0; i < config_count(cfg); i++) {
            const char *key = config_key_at(cfg, i)->key, *val = config_get_raw(cfg, key);
            if (ignored(key, ignore) && val) config_set(saved, key, val, path);
        }
        if (config_diff(cfg, saved, diff, sizeof diff)) {
            err_set("%s: written with a different configuration: %s; use a new out_dir, the same settings, "
                    "or overwrite=1 to replace that run",
                    path, diff);
            rc = RUNREC_DIFFERS;
        }
    }
    free(text);
    free(path);
    return rc;
}

int runrec_check_inputs(const char *dir, const Config *cfg, const char *const *outputs, const char *prefix) {
    const char *names[32];
    int n = 0;
    names[n++] = RUNREC_NAME;
    names[n++] = FS_LOCK_NAME;
    for (int i = 0; outputs[i] && n < 31; i++) names[n++] = outputs[i];
    names[n] = NULL;
    for (int i = 0; i < config_count(cfg); i++) {
        const CfgKey *k = config_key_at(cfg, i);
        const char *path = config_get_raw(cfg, k->key);
        if (k->type != CFG_STR || !strcmp(k->key, "out_dir") || !path || !*path) continue;
        if (fs_check_dir_not_input(dir, names, prefix, &path, 1)) {
            char why[2048];
            snprintf(why, sizeof why, "%s", err_msg());
            return err_set("%s (key %s)", why, k->key);
        }
    }
    return 0;
}
