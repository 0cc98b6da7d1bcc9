/* err — one-line error messages, recorded by library code and printed by
 * front ends; see err.h. */
#include "common/err.h"

#include <errno.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Thread_local char err_buf[2048]; /* per thread: kernels may run on pool threads */

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(const char *fmt, ...) {
    char head[512], old[sizeof err_buf - sizeof head];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t k = strnlen(err_buf, sizeof old - 1);
    memcpy(old, err_buf, k);
    old[k] = 0;
    snprintf(err_buf, sizeof err_buf, "%s%s", head, old);
    return -1;
}

const char *err_msg(void) { return err_buf; }
void err_clear(void) { err_buf[0] = 0; }

/* 1 once err_die runs: its message is the one to show, not a later one about stdout. */
static int err_dying;

static void __attribute__((noreturn)) err_exit(int status) {
    err_dying = 1;
    int inited = 0, finalized = 0, size = 1;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) {
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1) MPI_Abort(MPI_COMM_WORLD, status);
        MPI_Finalize();
    }
    exit(status);
}

/* "rlhf: KIND: MESSAGE\n" in one write: under mpirun a line written in
 * pieces was seen split by Open MPI's MPI_ABORT notice, which mpirun prints
 * from another channel ("rlhf: error: ----..."). */
static void print_line(const char *kind, const char *fmt, va_list ap) {
    char line[sizeof err_buf + 64];
    int n = snprintf(line, sizeof line, "rlhf: %s: ", kind);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}

void err_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_line("error", fmt, ap);
    va_end(ap);
    err_exit(1);
}

void err_die_status(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_line("error", fmt, ap);
    va_end(ap);
    err_exit(status);
}

void err_die_last(void) { err_die("%s", err_buf[0] ? err_buf : "unknown error"); }

void err_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_line("warning", fmt, ap);
    va_end(ap);
}

void *err_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) err_die("out of memory allocating %zu bytes", n);
    return p;
}

void *err_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) err_die("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *err_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) err_die("out of memory allocating %zu bytes", n);
    return q;
}

int err_mul_size(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return -1;
    if (out) *out = r;
    return 0;
}

void err_format_bytes(double bytes, char *buf, size_t n) {
    static const char *const units[] = {"KB", "MB", "GB", "TB", "PB", "EB", "ZB"};
    if (bytes < 1000) {
        snprintf(buf, n, "%.0f bytes", bytes);
        return;
    }
    int u = 0;
    bytes /= 1000;
    while (bytes >= 999.95 && u < 6) {
        bytes /= 1000;
        u++;
    }
    snprintf(buf, n, "%.1f %s", bytes, units[u]);
}

char *err_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(err_malloc(n), s, n);
}

/* ---- stdout ---------------------------------------------------------------- */

int err_stdout_check(void) {
    errno = 0;
    int flush_failed = fflush(stdout) == EOF, saved = errno;
    if (!flush_failed && !ferror(stdout)) return 0;
    /* an earlier implicit flush failed and its errno is gone: say so generically */
    return err_set("stdout: %s", flush_failed && saved ? strerror(saved) : "write error");
}

static void err_stdout_exit_handler(void) {
    if (err_dying || !err_stdout_check()) return;
    fprintf(stderr, "rlhf: error: %s\n", err_buf);
    fflush(stderr);
    _exit(1); /* in an exit handler exit() may not be called again */
}

void err_stdout_at_exit(void) {
    static int registered;
    if (registered) return;
    registered = 1;
    atexit(err_stdout_exit_handler);
}
