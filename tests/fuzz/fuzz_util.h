/* fuzz_util — helpers shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Every harness defines `static void fuzz_NAME(const uint8_t *data, size_t n)`
 * and, unless FUZZ_NO_ENTRY is defined, the LLVMFuzzerTestOneInput entry
 * that calls it. tests/unit/test_fuzz_regressions.c defines FUZZ_NO_ENTRY and
 * FUZZ_UNIT_TESTS and includes every harness, so the committed corpora and crash reproducers
 * run through exactly the same code in the ordinary unit-test binary (and
 * under ASan/UBSan with `make SAN=1`).
 *
 * The parsers take paths, so inputs are written to files in a private
 * scratch directory on /dev/shm (memory only; /tmp when /dev/shm is
 * missing), removed at exit. FUZZ_CHECK states a property every input must
 * keep (a crafted safetensors header never leads to a read past the end of
 * the file, decode(encode(x)) == x, ...): in the fuzzer a violation aborts,
 * which libFuzzer saves as a crash; in the unit tests it is a failed check. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#ifdef FUZZ_UNIT_TESTS
#include "tests/harness.h"
#define FUZZ_CHECK(cond, ...) harness_checkf(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#else
#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz property violated (%s:%d): ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)
#endif

static char fuzz_dir_buf[256];

static inline void fuzz_remove_dir(void) {
    if (!fuzz_dir_buf[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_buf);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_buf);
}

/* This process's scratch directory, created on first use. */
static inline const char *fuzz_dir(void) {
    if (fuzz_dir_buf[0]) return fuzz_dir_buf;
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/rlhf-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_buf)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_remove_dir);
    return fuzz_dir_buf;
}

/* DIR/name in one of a few rotating static buffers: valid for the next
 * seven calls only (fuzz_path_keep for longer). */
static inline const char *fuzz_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    return p;
}

/* DIR/name in memory of its own, for paths kept across calls. */
static inline const char *fuzz_path_keep(const char *name) {
    char *p = malloc(512);
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    return p;
}

/* Writes data[0..n) to path (replacing it); aborts if the scratch space
 * itself fails, which is not the parser's fault. */
static inline void fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) {
        perror(path);
        abort();
    }
}

/* A whole file into a malloc'd buffer (NULL if unreadable); *n its length
 * (0 if unreadable). fs_read_all, which also sets err_msg on failure. */
static inline char *fuzz_read(const char *path, size_t *n) {
    *n = 0;
    return fs_read_all(path, n);
}

/* Reads the fuzz input as a little stream of choices. */
typedef struct {
    const uint8_t *p;
    size_t n;
} FuzzIn;

static inline int fuzz_left(const FuzzIn *in) { return in->n > 0; }

static inline uint8_t fuzz_u8(FuzzIn *in) {
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

/* Up to 8 bytes, little-endian; k < 8 gives small numbers, which is what
 * most fields want. */
static inline uint64_t fuzz_uint(FuzzIn *in, int k) {
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v |= (uint64_t)fuzz_u8(in) << (8 * i);
    return v;
}

/* Up to max bytes taken as they are; *len gets the count. */
static inline const uint8_t *fuzz_bytes(FuzzIn *in, size_t max, size_t *len) {
    size_t k = max < in->n ? max : in->n;
    const uint8_t *p = in->p;
    in->p += k;
    in->n -= k;
    *len = k;
    return p;
}

/* A NUL-terminated string of at most 255 bytes (length byte first). */
static inline void fuzz_str(FuzzIn *in, char out[256]) {
    size_t want = fuzz_u8(in), len;
    const uint8_t *p = fuzz_bytes(in, want, &len);
    memcpy(out, p, len);
    out[len] = 0;
}

#endif
