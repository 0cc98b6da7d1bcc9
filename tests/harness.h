/* harness — a tiny unit-test framework and the helpers the test files share.
 * TEST(name) { ... } defines a test that registers itself before main();
 * CHECK* record failures without stopping the test. Run: unit_tests
 * [substring-filter]. The last line printed is "N passed, N failed".
 * Shared helpers: the scratch directory and files in it, the error-message
 * check CHECK_ERR, and readers of the committed HDF5 fixtures (float64
 * references written by the scripts beside them in tests/fixtures/). */
#ifndef HARNESS_H
#define HARNESS_H

#include <hdf5.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

typedef void (*harness_fn)(void);
void harness_register(const char *name, harness_fn fn);
int harness_check(int ok, const char *expr, const char *file, int line);
int harness_checkf(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Directory holding committed fixtures (tests/fixtures unless FIXTURES set). */
const char *harness_fixtures(void);
/* A fresh scratch directory for this test run (removed at exit). */
const char *harness_tmpdir(void);

#define TEST(name)                                                          \
    static void name(void);                                                 \
    __attribute__((constructor)) static void name##_register(void) {        \
        harness_register(#name, name);                                      \
    }                                                                       \
    static void name(void)

#define CHECK(cond) harness_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECKF(cond, ...) harness_checkf(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
/* Evaluates a and b once each. */
int harness_near(double a, double b, double tol, const char *ea, const char *eb,
                 const char *file, int line);
#define CHECK_NEAR(a, b, tol) harness_near((a), (b), (tol), #a, #b, __FILE__, __LINE__)

/* ---- error messages ----------------------------------------------------- */

/* Checks err_msg() after a call that failed: it is one line, starts with
 * `start` (by the project's convention the file or function that failed)
 * and contains every further string. NULL ends the list. */
int harness_err(const char *file, int line, const char *start, ...);
/* The same test without recording a failure (e.g. in a forked child). */
int harness_err_has(const char *start, ...);
#define CHECK_ERR(start, ...) harness_err(__FILE__, __LINE__, (start), __VA_ARGS__, (const char *)NULL)

/* ---- files -------------------------------------------------------------- */

/* dir/name in one of 16 rotating buffers (a few results stay valid at once;
 * dir may be an earlier result). */
const char *harness_join(const char *dir, const char *name);
/* harness_join(harness_tmpdir(), name). */
const char *harness_tmp_path(const char *name);
/* Writes n bytes to path: 0, or -1 when it cannot. */
int harness_write_file(const char *path, const void *data, size_t n);
/* The whole file, NUL-terminated, malloc'd; *n (if n) its length. NULL when
 * it cannot be read. */
char *harness_read_file(const char *path, size_t *n);
/* 1 if path can be read and holds exactly data[0..n). */
int harness_file_is(const char *path, const void *data, size_t n);
/* Writes n bytes (or the string text) to harness_tmp_path(name) and returns
 * that path; a failed check when it cannot. */
const char *harness_tmp_file(const char *name, const void *data, size_t n);
const char *harness_tmp_text(const char *name, const char *text);
/* 1 if the two files can be read and hold the same bytes. */
int harness_same_file(const char *a, const char *b);

/* ---- HDF5 fixtures ---------------------------------------------------- */

/* Opens fixture `name` (under harness_fixtures()) read-only, with HDF5's
 * error printing off; a failed check and a negative id when it cannot. */
hid_t harness_fixture_open(const char *name);
/* Dataset `name` converted to `type` (H5T_NATIVE_DOUBLE, _FLOAT, _INT) in a
 * zeroed malloc'd buffer; *n (if n) its element count. NULL and a failed
 * check when missing or unreadable. */
void *harness_fixture_read(hid_t f, const char *name, hid_t type, size_t *n);
double *harness_fixture_doubles(hid_t f, const char *name, size_t *n);
float *harness_fixture_floats(hid_t f, const char *name, size_t *n);
/* harness_fixture_floats that never returns NULL: a missing dataset is an
 * empty array (*n = 0, one zeroed element to index) and a failed check. */
float *harness_fixture_floats_or_empty(hid_t f, const char *name, size_t *n);
int *harness_fixture_ints(hid_t f, const char *name, size_t *n);
/* The first element of dataset `name`; NaN (and a failed check) if missing. */
double harness_fixture_scalar(hid_t f, const char *name);
/* Attribute `attr` of object `object` as a double; NaN and a failed check
 * when missing. */
double harness_fixture_attr(hid_t f, const char *object, const char *attr);

/* ---- arrays against a reference ---------------------------------------- */

/* |got - want| <= rtol*|want| + atol; 0 for NaN. */
int harness_close(double got, double want, double rtol, double atol);
/* got[i] against a float64 reference want[i] wherever mask (NULL: all) is
 * non-zero: |got - want| <= rtol*|want| + atol, NaN never. One failed check,
 * for the first miss only, naming what[i]; returns 1 if all agree. */
int harness_close_doubles(const char *what, const double *got, const double *want, const double *mask,
                          size_t n, double rtol, double atol);
int harness_close_floats(const char *what, const float *got, const double *want, const double *mask,
                         size_t n, double rtol, double atol);

#endif
