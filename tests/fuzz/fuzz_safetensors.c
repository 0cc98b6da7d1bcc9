/* fuzz_safetensors — libFuzzer harness for common/io/safetensors.c: the input
 * is a whole .safetensors file. When st_open accepts it, the promise of
 * safetensors.h is checked against the input itself: every tensor's bytes
 * lie inside the file, match shape x dtype and overlap no other tensor, and
 * reading any float tensor succeeds and returns exactly the values decoded
 * here independently from the input bytes. So a crafted header can never
 * make a later read leave the file (ASan would also flag a stray access). */
#include <math.h>

#include "common/err.h"
#include "common/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

/* IEEE half to float written from the definition, not from st_f16_to_f32. */
static double fuzz_st_half(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v = exp == 0    ? ldexp(mant, -24)
               : exp == 31 ? (mant ? NAN : INFINITY)
                           : ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

/* Element i of tensor t decoded straight from the input bytes. */
static double fuzz_st_expected(const uint8_t *data, uint64_t start, const StTensor *t, size_t i) {
    const uint8_t *p = data + start + t->begin + i * st_dtype_size(t->dtype);
    uint16_t h;
    uint32_t u;
    double d;
    float f;
    switch (t->dtype) {
    case ST_F32: memcpy(&f, p, 4); return f;
    case ST_F64: memcpy(&d, p, 8); return (float)d;
    case ST_F16: memcpy(&h, p, 2); return fuzz_st_half(h);
    case ST_BF16:
        memcpy(&h, p, 2);
        u = (uint32_t)h << 16;
        memcpy(&f, &u, 4);
        return f;
    default: return NAN;
    }
}

static int fuzz_st_is_float(StDtype d) { return d == ST_F32 || d == ST_F64 || d == ST_F16 || d == ST_BF16; }

static void fuzz_st_check_tensor(const StFile *f, const StTensor *t, const uint8_t *data, size_t n) {
    size_t numel = st_numel(t);
    int inside = t->begin <= t->end && f->data_start + t->end <= n;
    FUZZ_CHECK(inside, "tensor '%s' bytes [%llu, %llu) + %llu leave the %zu-byte file", t->name,
               (unsigned long long)t->begin, (unsigned long long)t->end,
               (unsigned long long)f->data_start, n);
    int span_ok = t->end - t->begin == numel * st_dtype_size(t->dtype);
    FUZZ_CHECK(span_ok, "tensor '%s' span does not match its shape", t->name);
    if (!inside || !span_ok) return; /* the checks below would read outside the input */
    FUZZ_CHECK(st_find(f, t->name) != NULL, "st_find misses '%s'", t->name);
    if (!fuzz_st_is_float(t->dtype)) {
        float x;
        FUZZ_CHECK(numel == 0 || st_read_f32_range(f, t, 0, 1, &x) < 0, "read of a %s tensor as f32",
                   st_dtype_name(t->dtype));
        return;
    }
    float *out = malloc((numel ? numel : 1) * sizeof *out);
    int rc = st_read_f32(f, t, out);
    FUZZ_CHECK(rc == 0, "reading a validated tensor failed: %s", err_msg());
    for (size_t i = 0; !rc && i < numel; i++) {
        double want = fuzz_st_expected(data, f->data_start, t, i);
        FUZZ_CHECK(out[i] == (float)want || (isnan(out[i]) && isnan(want)),
                   "tensor '%s'[%zu] = %g, the input bytes say %g", t->name, i, out[i], want);
    }
    /* A range past the end must be refused, not read. */
    FUZZ_CHECK(st_read_f32_range(f, t, numel, 1, out) < 0, "range past the end accepted");
    free(out);
}

/* No two non-empty tensors share a byte (quadratic: inputs are small). */
static void fuzz_st_check_overlaps(const StFile *f) {
    for (int i = 0; i < f->n_tensors; i++)
        for (int k = i + 1; k < f->n_tensors; k++) {
            const StTensor *a = &f->tensors[i], *b = &f->tensors[k];
            int empty = a->begin == a->end || b->begin == b->end;
            FUZZ_CHECK(empty || a->end <= b->begin || b->end <= a->begin, "tensors '%s' and '%s' overlap",
                       a->name, b->name);
        }
}

static void fuzz_safetensors(const uint8_t *data, size_t n) {
    const char *path = fuzz_path("model.safetensors");
    fuzz_write(path, data, n);
    err_clear();
    StFile *f = st_open(path);
    if (!f) {
        FUZZ_CHECK(strncmp(err_msg(), path, strlen(path)) == 0, "message does not name the file: %s",
                   err_msg());
        return;
    }
    FUZZ_CHECK(f->data_start >= 8 && f->data_start <= n && f->data_size == n - f->data_start,
               "data buffer [%llu, +%llu) outside the %zu-byte file", (unsigned long long)f->data_start,
               (unsigned long long)f->data_size, n);
    for (int i = 0; i < f->n_tensors; i++) fuzz_st_check_tensor(f, &f->tensors[i], data, n);
    fuzz_st_check_overlaps(f);
    for (int i = 0; i < f->n_meta; i++)
        FUZZ_CHECK(st_metadata(f, f->meta_keys[i]) != NULL, "st_metadata misses '%s'", f->meta_keys[i]);
    st_close(f);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_safetensors(data, n);
    return 0;
}
#endif
