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
/* err_die, ending the process (and the MPI job) with this exit status. */
void err_die_status(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* err_die with the last recorded message. */
void err_die_last(void) __attribute__((noreturn));
/* Print "rlhf: warning: MESSAGE" on stderr. */
void err_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that dies with a clear message when memory runs out. */
void *err_malloc(size_t n);
void *err_calloc(size_t n, size_t size);
void *err_realloc(void *p, size_t n);
char *err_strdup(const char *s);

/* ---- sizes from settings ---------------------------------------------------
 * Rule: a size computed from user settings (n_embd x n_layer, micro_batch x
 * n_ctx, --batch x --max-new) is multiplied with a check, and a size that
 * overflows or cannot be allocated is refused with one line naming the keys
 * and the size in bytes ("... needs 1.2 TB; too large"), never a wrapped
 * number or a crash. */

/* a * b: 0 with *out set (out may be NULL), or -1 if it overflows size_t
 * (no message: the caller names its keys). */
int err_mul_size(size_t a, size_t b, size_t *out);
/* bytes for a message, in decimal units: "17 bytes", "64.0 KB", "1.2 TB". */
void err_format_bytes(double bytes, char *buf, size_t n);

/* ---- stdout ---------------------------------------------------------------
 * Rule: a write to stdout that fails (disk full, `> /dev/full`, a closed
 * descriptor) is an error, never exit status 0. Output a user redirects to
 * a file must not be silently short. */

/* Flushes stdout: 0 if everything printed so far reached it, else -1 with
 * err_set("stdout: REASON"). A command that prints in a loop may call it
 * between parts to stop at the first failure. */
int err_stdout_check(void);
/* Registers (once, in main, before anything is printed) the exit handler
 * that runs err_stdout_check: when stdout failed, the process prints
 * "rlhf: error: stdout: REASON" and exits 1, whatever status it was
 * ending with, unless it is already ending through err_die. */
void err_stdout_at_exit(void);

#endif
