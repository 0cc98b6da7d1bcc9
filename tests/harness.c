/* harness — runs every registered TEST and prints "N passed, N failed". */
#include "tests/harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void remove_tmpdir(void) {
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    atexit(remove_tmpdir);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
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
