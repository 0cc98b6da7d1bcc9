/* harness — runs every registered TEST and prints "N passed, N failed";
 * and the helpers every test file shares (tests/harness.h): the scratch
 * directory and its files, CHECK_ERR, and the HDF5 fixture readers. */
#include "tests/harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"

#define HARNESS_MAX 1024

static struct { const char *name; harness_fn fn; } tests[HARNESS_MAX];
static int n_tests, current_failed;
static char tmpdir[256];

void harness_register(const char *name, harness_fn fn) {
    if (n_tests < HARNESS_MAX) {
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        n_tests++;
    }
}

int harness_check(int ok, const char *expr, const char *file, int line) {
    if (!ok) {
        printf("    check failed: %s (%s:%d)\n", expr, file, line);
        current_failed++;
    }
    return ok;
}

int harness_checkf(int ok, const char *file, int line, const char *fmt, ...) {
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        printf("    check failed (%s:%d): ", file, line);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        current_failed++;
    }
    return ok;
}

int harness_near(double a, double b, double tol, const char *ea, const char *eb,
                 const char *file, int line) {
    return harness_checkf(fabs(a - b) <= tol, file, line, "%s = %.9g, %s = %.9g, |diff| > %g",
                          ea, a, eb, b, tol);
}

const char *harness_fixtures(void) {
    const char *f = getenv("FIXTURES");
    return f ? f : "tests/fixtures";
}

const char *harness_tmpdir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/rlhf-unit-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

/* ---- error messages ----------------------------------------------------- */

static int err_matches(const char *start, va_list ap) {
    const char *msg = err_msg();
    int ok = !strncmp(msg, start, strlen(start)) && !strchr(msg, '\n');
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        if (!strstr(msg, s)) ok = 0;
    return ok;
}

int harness_err_has(const char *start, ...) {
    va_list ap;
    va_start(ap, start);
    int ok = err_matches(start, ap);
    va_end(ap);
    return ok;
}

int harness_err(const char *file, int line, const char *start, ...) {
    va_list ap;
    va_start(ap, start);
    int ok = err_matches(start, ap);
    va_end(ap);
    return harness_checkf(ok, file, line, "message \"%s\" should be one line starting with \"%s\""
                          " and containing the other strings given", err_msg(), start);
}

/* ---- files -------------------------------------------------------------- */

#define JOIN_BUFS 16
#define JOIN_LEN 600

const char *harness_join(const char *dir, const char *name) {
    static char bufs[JOIN_BUFS][JOIN_LEN];
    static int next;
    char tmp[JOIN_LEN];
    char *p = bufs[next++ % JOIN_BUFS];
    snprintf(tmp, sizeof tmp, "%s/%s", dir, name); /* dir may be an older result */
    return memcpy(p, tmp, sizeof tmp);
}

const char *harness_tmp_path(const char *name) { return harness_join(harness_tmpdir(), name); }

int harness_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) || w != n ? -1 : 0;
}

/* fs_read_all, keeping err_msg() as it was: tests read files back between
 * a call that failed and the check of its message. */
char *harness_read_file(const char *path, size_t *n) {
    char *saved = err_strdup(err_msg());
    size_t len = 0;
    char *buf = fs_read_all(path, &len);
    if (!buf && saved[0]) err_set("%s", saved);
    else if (!buf) err_clear();
    free(saved);
    if (n) *n = buf ? len : 0;
    return buf;
}

int harness_file_is(const char *path, const void *data, size_t n) {
    size_t len = 0;
    char *got = harness_read_file(path, &len);
    int same = got && len == n && (n == 0 || memcmp(got, data, n) == 0);
    free(got);
    return same;
}

const char *harness_tmp_file(const char *name, const void *data, size_t n) {
    const char *path = harness_tmp_path(name);
    CHECKF(harness_write_file(path, data, n) == 0, "cannot write %s", path);
    return path;
}

const char *harness_tmp_text(const char *name, const char *text) { return harness_tmp_file(name, text, strlen(text)); }

int harness_same_file(const char *a, const char *b) {
    size_t na = 0;
    size_t nb = 0;
    char *x = harness_read_file(a, &na);
    char *y = harness_read_file(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* ---- HDF5 fixtures ---------------------------------------------------- */

hid_t harness_fixture_open(const char *name) {
    const char *path = harness_join(harness_fixtures(), name);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECKF(f >= 0, "cannot open %s", path);
    return f;
}

void *harness_fixture_read(hid_t f, const char *name, hid_t type, size_t *n) {
    if (n) *n = 0;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) {
        CHECKF(0, "fixture has no dataset %s", name);
        return NULL;
    }
    hid_t s = H5Dget_space(d);
    hssize_t count = H5Sget_simple_extent_npoints(s);
    size_t elems = count > 0 ? (size_t)count : 0;
    void *buf = calloc(elems ? elems : 1, H5Tget_size(type));
    herr_t rc = buf ? H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
    H5Sclose(s);
    H5Dclose(d);
    if (!CHECKF(rc >= 0, "cannot read fixture dataset %s", name)) {
        free(buf);
        return NULL;
    }
    if (n) *n = elems;
    return buf;
}

double *harness_fixture_doubles(hid_t f, const char *name, size_t *n) {
    return harness_fixture_read(f, name, H5T_NATIVE_DOUBLE, n);
}

float *harness_fixture_floats(hid_t f, const char *name, size_t *n) {
    return harness_fixture_read(f, name, H5T_NATIVE_FLOAT, n);
}

float *harness_fixture_floats_or_empty(hid_t f, const char *name, size_t *n) {
    float *x = harness_fixture_floats(f, name, n);
    return x ? x : calloc(1, sizeof *x);
}

int *harness_fixture_ints(hid_t f, const char *name, size_t *n) {
    return harness_fixture_read(f, name, H5T_NATIVE_INT, n);
}

double harness_fixture_scalar(hid_t f, const char *name) {
    size_t n = 0;
    double *x = harness_fixture_doubles(f, name, &n);
    double v = x && n ? x[0] : NAN;
    free(x);
    return v;
}

double harness_fixture_attr(hid_t f, const char *object, const char *attr) {
    double v = NAN;
    hid_t a = H5Aopen_by_name(f, object, attr, H5P_DEFAULT, H5P_DEFAULT);
    if (!CHECKF(a >= 0, "fixture object %s has no attribute %s", object, attr)) return v;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
    H5Aclose(a);
    return v;
}

/* ---- arrays against a reference ---------------------------------------- */

int harness_close(double got, double want, double rtol, double atol) {
    return fabs(got - want) <= rtol * fabs(want) + atol; /* false for NaN */
}

int harness_close_doubles(const char *what, const double *got, const double *want, const double *mask,
                          size_t n, double rtol, double atol) {
    for (size_t i = 0; i < n; i++)
        if ((!mask || mask[i] != 0) && !harness_close(got[i], want[i], rtol, atol))
            return CHECKF(0, "%s[%zu] = %.17g, reference %.17g", what, i, got[i], want[i]);
    return 1;
}

int harness_close_floats(const char *what, const float *got, const double *want, const double *mask,
                         size_t n, double rtol, double atol) {
    for (size_t i = 0; i < n; i++)
        if ((!mask || mask[i] != 0) && !harness_close(got[i], want[i], rtol, atol))
            return CHECKF(0, "%s[%zu] = %.9g, reference %.17g", what, i, (double)got[i], want[i]);
    return 1;
}

/* ---- the runner --------------------------------------------------------- */

static void remove_tmpdir(void) {
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

/* The filter: comma-separated parts; a test runs if its name contains a
 * part without '-' (or there is none) and no part with '-' ("tok_,-speed":
 * the tok_ tests but their speed test; valgrind.sh leaves benchmarks out). */
static int filter_selects(const char *filter, const char *name) {
    int any_include = 0, included = 0;
    char part[128];
    for (const char *p = filter; *p;) {
        size_t n = strcspn(p, ",");
        snprintf(part, sizeof part, "%.*s", (int)(n < sizeof part ? n : sizeof part - 1), p);
        if (part[0] == '-') {
            if (part[1] && strstr(name, part + 1)) return 0;
        } else if (part[0]) {
            any_include = 1;
            included |= strstr(name, part) != NULL;
        }
        p += n + (p[n] == ',');
    }
    return !any_include || included;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    atexit(remove_tmpdir);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < n_tests; i++) {
        if (filter && !filter_selects(filter, tests[i].name)) continue;
        current_failed = 0;
        tests[i].fn();
        if (current_failed) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        } else {
            printf("ok   %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
