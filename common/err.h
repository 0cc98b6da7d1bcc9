/* err — error reporting shared by every module.
 *
 * Library code never exits: it records a one-line message with err_set()
 * and returns -1 (or NULL), so callers and tests can see what went wrong.
 * Front ends (rlhf.c, the role loops) call err_die() to print the message
 * and end the process; under MPI with more than one rank that is an
 * MPI_Abort, so every rank exits and nothing hangs. */
#ifndef ERR_H
#define ERR_H

#include <stddef.h>

/* Format the current error message; always returns -1. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message with more context ("file.h5: " + old). */
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message set (empty string if none). */
const char *err_msg(void);
void err_clear(void);

/* Print "rlhf: error: MESSAGE" on stderr and exit(1) / MPI_Abort. */
void err_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* err_die with the last recorded message. */
void err_die_last(void) __attribute__((noreturn));
/* Print "rlhf: warning: MESSAGE" on stderr. */
void err_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that dies with a clear message when memory runs out. */
void *err_malloc(size_t n);
void *err_calloc(size_t n, size_t size);
void *err_realloc(void *p, size_t n);
char *err_strdup(const char *s);

#endif
