/* fsutil — mkdir -p and numbered checkpoint files; see fsutil.h. */
#include "common/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"

int fs_mkdirs(const char *dir) {
    if (!dir || !dir[0]) return err_set("empty output directory name");
    char *p = err_strdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s && *s != '/') continue;
        char saved = *s;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) rc = err_set("%s: cannot create directory: %s", p, strerror(errno));
        *s = saved;
        if (rc || !saved) break;
    }
    struct stat sb;
    if (!rc && (stat(dir, &sb) || !S_ISDIR(sb.st_mode))) rc = err_set("%s: not a directory", dir);
    free(p);
    return rc;
}

void fs_numbered(char *buf, size_t n, const char *dir, const char *prefix, int width, int64_t number) {
    snprintf(buf, n, "%s/%s%0*lld.h5", dir, prefix, width, (long long)number);
}

int64_t fs_latest_numbered(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int64_t best = -1;
    size_t plen = strlen(prefix);
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, prefix, plen)) continue;
        long long s = strtoll(e->d_name + plen, &end, 10);
        if (end != e->d_name + plen && !strcmp(end, ".h5") && s > best) best = s;
    }
    closedir(d);
    return best;
}

void fs_prune_numbered(const char *dir, const char *prefix, int width, int64_t below, int keep) {
    int kept = 1;
    for (int64_t s = below - 1; s >= 0; s--) {
        char path[4096];
        struct stat st;
        fs_numbered(path, sizeof path, dir, prefix, width, s);
        if (!stat(path, &st) && ++kept > keep) remove(path);
    }
}
