/* harness — a tiny unit-test framework. TEST(name) { ... } defines a test
 * that registers itself before main(); CHECK* record failures without
 * stopping the test. Run: unit_tests [substring-filter]. The last line
 * printed is "N passed, N failed". */
#ifndef HARNESS_H
#define HARNESS_H

#include <math.h>
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

#endif
