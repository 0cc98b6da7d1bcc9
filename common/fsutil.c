/* fsutil — whole-file reads, path joining, atomic output, clocks, mkdir -p
 * and numbered checkpoint files; see fsutil.h. */
#include "common/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

char *fs_read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16;
    size_t n = 0;
    char *buf = err_malloc(cap);
    for (;;) { /* one byte always stays free for the NUL */
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        cap *= 2;
        buf = err_realloc(buf, cap);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        err_set("%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

char *fs_join(const char *dir, const char *name) {
    size_t n = strlen(dir);
    const char *sep = n && dir[n - 1] != '/' ? "/" : "";
    size_t size = n + strlen(sep) + strlen(name) + 1;
    char *p = err_malloc(size);
    snprintf(p, size, "%s%s%s", dir, sep, name);
    return p;
}

/* ---- atomic output -------------------------------------------------------- */

/* "a directory", "a FIFO", ... for messages. */
static const char *kind_name(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISLNK(m)) return "a symbolic link";
    return "not a regular file";
}

/* Rule: outputs replace regular files only; see fsutil.h for symlinks. */
int fs_check_target(const char *path) {
    struct stat st;
    if (stat(path, &st)) return 0; /* absent or a dangling link (or unreadable: the create will say why) */
    if (!S_ISREG(st.st_mode))
        return err_set("%s: exists and is not a regular file (%s)", path, kind_name(st.st_mode));
    return 0;
}

/* Rule: creating commands replace an existing file only when told to. */
int fs_check_new(const char *path, int force) {
    struct stat st;
    if (!force && !lstat(path, &st)) return err_set("%s: exists; give --force to replace it", path);
    return fs_check_target(path);
}

/* Rule: a file changed in place is never reached through a symlink. */
int fs_check_inplace(const char *path) {
    struct stat st;
    if (lstat(path, &st)) return 0;
    if (S_ISLNK(st.st_mode))
        return err_set("%s: is a symbolic link; a log is written in place, so give the file itself", path);
    return fs_check_target(path);
}

int fs_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!a || !b || stat(a, &sa) || stat(b, &sb)) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Rule: no command overwrites one of its own inputs. */
int fs_check_not_input(const char *out, const char *const *inputs, int n) {
    for (int i = 0; i < n; i++)
        if (inputs[i] && fs_same_file(out, inputs[i]))
            return err_set("%s: is the same file as the input %s; refusing to overwrite an input", out,
                           inputs[i]);
    return 0;
}

/* Rule: no run writes over its inputs, whatever name it writes them under. */
int fs_check_dir_not_input(const char *dir, const char *const *names, const char *prefix,
                           const char *const *inputs, int n) {
    int rc = 0;
    for (int i = 0; names[i] && !rc; i++) {
        char *p = fs_join(dir, names[i]);
        rc = fs_check_not_input(p, inputs, n);
        free(p);
    }
    DIR *d = rc ? NULL : opendir(dir);
    size_t plen = strlen(prefix);
    for (struct dirent *e; d && !rc && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, plen) || len < plen + 3 || strcmp(e->d_name + len - 3, ".h5")) continue;
        char *p = fs_join(dir, e->d_name);
        rc = fs_check_not_input(p, inputs, n);
        free(p);
    }
    if (d) closedir(d);
    return rc;
}

/* Rule: a seekable input is stat'ed first, so a FIFO cannot block open(). */
int fs_check_input(const char *path, const char *what) {
    struct stat st;
    if (stat(path, &st) || S_ISREG(st.st_mode)) return 0;
    return err_set("%s: %s must be a regular file, not %s", path, what, kind_name(st.st_mode));
}

char *fs_tmp_name(const char *path) {
    size_t size = strlen(path) + strlen(FS_TMP_INFIX) + 24;
    char *tmp = err_malloc(size);
    snprintf(tmp, size, "%s%s%ld", path, FS_TMP_INFIX, (long)getpid());
    return tmp;
}

/* fsync of a file or directory by name; errno kept for the caller. */
static int sync_path(const char *p, int flags) {
    int fd = open(p, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Makes the rename itself durable (best effort, see fsutil.h). */
static void sync_parent_dir(const char *path) {
    char *dir = err_strdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, 2, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    sync_path(dir, O_RDONLY | O_DIRECTORY);
    free(dir);
}

int fs_commit(const char *tmp, const char *path) {
    int rc = fs_check_target(path);
    if (!rc && sync_path(tmp, O_RDONLY))
        rc = err_set("%s: cannot sync %s: %s", path, tmp, strerror(errno));
    else if (!rc && rename(tmp, path))
        rc = err_set("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc) {
        unlink(tmp);
        return -1;
    }
    sync_parent_dir(path);
    return 0;
}

/* Test-only fault injection (see fsutil.h). */
int fs_test_write_fails(const char *path) {
    const char *v = getenv("RLHF_TEST_FAIL_WRITE");
    if (!v || !v[0] || !strstr(path, v)) return 0;
    errno = ENOSPC;
    return 1;
}

int fs_write_tmp(const char *tmp, FsWriteFn write, void *ctx) {
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set("%s: cannot create: %s", tmp, strerror(errno));
    int rc = write(f, ctx);
    if (!rc && fs_test_write_fails(tmp)) rc = err_set("%s: write failed: %s (RLHF_TEST_FAIL_WRITE)", tmp, strerror(errno));
    if (!rc && (ferror(f) || fflush(f))) rc = err_set("%s: write failed: %s", tmp, strerror(errno));
    if (fclose(f) && !rc) rc = err_set("%s: write failed: %s", tmp, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

int fs_write_atomic_with(const char *path, FsWriteFn write, void *ctx) {
    if (fs_check_target(path)) return -1;
    char *tmp = fs_tmp_name(path);
    int rc = fs_write_tmp(tmp, write, ctx);
    if (!rc) rc = fs_commit(tmp, path);
    free(tmp);
    return rc;
}

typedef struct {
    const void *data;
    size_t len;
} FsBytes;

static int write_bytes(FILE *f, void *ctx) {
    const FsBytes *b = ctx;
    fwrite(b->data, 1, b->len, f); /* a short write sets ferror */
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len) {
    FsBytes b = {data, len};
    return fs_write_atomic_with(path, write_bytes, &b);
}

unsigned long long fs_process_start(long pid) {
    char p[64], buf[1024], *save = NULL;
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!s) return 0;
    int field = 2;
    for (char *tok = strtok_r(s + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (++field == 3 && (tok[0] == 'Z' || tok[0] == 'X')) return 0;
        if (field == 22) return strtoull(tok, NULL, 10);
    }
    return 0;
}

/* ---- clocks --------------------------------------------------------------- */

static double clock_seconds(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double fs_now(void) { return clock_seconds(CLOCK_MONOTONIC); }
double fs_wall_now(void) { return clock_seconds(CLOCK_REALTIME); }

/* ---- one run per directory (see fsutil.h for the rule) -------------------- */

int fs_lock_dir(const char *dir) {
    char *path = fs_join(dir, FS_LOCK_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        int rc = fd < 0 && errno != ELOOP ? err_set("%s: cannot create the run lock: %s", path, strerror(errno))
                                          : err_set("%s: exists and is not a regular file", path);
        if (fd >= 0) close(fd);
        free(path);
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int busy = errno == EWOULDBLOCK;
        char holder[256] = "";
        ssize_t n = busy ? pread(fd, holder, sizeof holder - 1, 0) : -1;
        holder[n > 0 ? n : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        long pid = 0;
        char host[200] = "?";
        if (sscanf(holder, "%ld %199s", &pid, host) < 1) pid = 0;
        if (busy && pid > 0)
            err_set("%s: in use by another run (pid %ld on %s, %s); wait for it to end or use another out_dir",
                    dir, pid, host, path);
        else if (busy)
            err_set("%s: in use by another run (%s is locked); wait for it to end or use another out_dir", dir, path);
        else
            err_set("%s: cannot lock: %s", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    char host[200] = "?", line[256];
    if (gethostname(host, sizeof host)) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = 0;
    int len = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), host);
    /* best effort: the lock holds whether or not the note is written */
    if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)len, 0) != len) errno = 0;
    free(path);
    return fd;
}

void fs_unlock_dir(int fd) {
    if (fd >= 0) close(fd); /* closing the last descriptor releases the flock */
}

int fs_remove_numbered(const char *dir, const char *prefix, int width) {
    for (int64_t s; (s = fs_latest_numbered(dir, prefix)) >= 0;) {
        char path[4096];
        fs_numbered(path, sizeof path, dir, prefix, width, s);
        if (remove(path)) return err_set("%s: cannot remove: %s", path, strerror(errno));
    }
    return 0;
}
