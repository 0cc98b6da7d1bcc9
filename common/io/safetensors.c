/* safetensors — reader and writer for Hugging Face .safetensors files; see
 * safetensors.h. The header is JSON, parsed with jansson. Validation happens
 * once in st_open, so the read functions can trust the tensor table. */
#include "common/io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"

/* Tensor bytes are copied to and from memory as is. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

static const struct { const char *name; size_t size; } dtypes[] = {
    [ST_BOOL] = {"BOOL", 1},       [ST_U8] = {"U8", 1},
    [ST_I8] = {"I8", 1},           [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},         [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2},       [ST_I32] = {"I32", 4},
    [ST_U32] = {"U32", 4},         [ST_F32] = {"F32", 4},
    [ST_I64] = {"I64", 8},         [ST_U64] = {"U64", 8},
    [ST_F64] = {"F64", 8},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *st_dtype_name(StDtype d) { return dtypes[d].name; }
size_t st_dtype_size(StDtype d) { return dtypes[d].size; }

static int dtype_from_name(const char *s, StDtype *d) {
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(dtypes[i].name, s)) {
            *d = (StDtype)i;
            return 0;
        }
    return -1;
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31) bits = sign | 0x7f800000u | (mant << 13); /* inf, NaN */
    else bits = sign | ((exp + 112) << 23) | (mant << 13);  /* rebias 15->127 */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- reading ----------------------------------------------------------- */

/* pread exactly n bytes at off; -1 + err_set on error or end of file. */
static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
    char *p = buf;
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return err_set("read error at byte %llu: %s", (unsigned long long)off, strerror(errno));
        if (k == 0) return err_set("unexpected end of file at byte %llu", (unsigned long long)off);
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* a * b into *out; -1 on overflow beyond 2^62 (far past any real file). */
static int mul_checked(uint64_t a, uint64_t b, uint64_t *out) {
    const uint64_t lim = (uint64_t)1 << 62;
    if (a && b > lim / a) return -1;
    *out = a * b;
    return 0;
}

/* A JSON integer >= 0 into *v; -1 otherwise. */
static int json_nonneg(const json_t *j, uint64_t *v) {
    if (!json_is_integer(j) || json_integer_value(j) < 0) return -1;
    *v = (uint64_t)json_integer_value(j);
    return 0;
}

static int parse_shape(const json_t *shape, StTensor *t) {
    if (!json_is_array(shape)) return err_set("tensor '%s': shape must be a list", t->name);
    if (json_array_size(shape) > ST_MAX_DIMS)
        return err_set("tensor '%s': shape has %zu dimensions (at most %d)", t->name,
                       json_array_size(shape), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (json_nonneg(json_array_get(shape, i), &d) || d > INT64_MAX)
            return err_set("tensor '%s': shape[%d] is not a non-negative integer", t->name, i);
        t->shape[i] = (int64_t)d;
    }
    return 0;
}

static int parse_offsets(const json_t *off, StTensor *t, uint64_t data_size) {
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        json_nonneg(json_array_get(off, 0), &t->begin) ||
        json_nonneg(json_array_get(off, 1), &t->end))
        return err_set("tensor '%s': data_offsets must be [begin, end] with non-negative integers", t->name);
    if (t->begin > t->end)
        return err_set("tensor '%s': data_offsets begin %llu > end %llu", t->name,
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_size)
        return err_set("tensor '%s': data_offsets end %llu is beyond the data (%llu bytes)", t->name,
                       (unsigned long long)t->end, (unsigned long long)data_size);
    return 0;
}

/* Byte length must equal product(shape) * dtype size. */
static int check_length(const StTensor *t) {
    uint64_t bytes = st_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++)
        if (mul_checked(bytes, (uint64_t)t->shape[i], &bytes))
            return err_set("tensor '%s': shape is too large", t->name);
    if (bytes != t->end - t->begin)
        return err_set("tensor '%s': data_offsets span %llu bytes but shape and dtype %s need %llu",
                       t->name, (unsigned long long)(t->end - t->begin), st_dtype_name(t->dtype),
                       (unsigned long long)bytes);
    return 0;
}

static int parse_tensor(const char *name, const json_t *v, StTensor *t, uint64_t data_size) {
    t->name = err_strdup(name);
    if (!json_is_object(v)) return err_set("tensor '%s': entry is not an object", name);
    const json_t *dt = json_object_get(v, "dtype");
    if (!json_is_string(dt)) return err_set("tensor '%s': dtype missing or not a string", name);
    if (dtype_from_name(json_string_value(dt), &t->dtype))
        return err_set("tensor '%s': unknown dtype \"%s\"", name, json_string_value(dt));
    if (parse_shape(json_object_get(v, "shape"), t)) return -1;
    if (parse_offsets(json_object_get(v, "data_offsets"), t, data_size)) return -1;
    return check_length(t);
}

static int parse_metadata(StFile *f, const json_t *meta) {
    if (!json_is_object(meta)) return err_set("__metadata__ is not an object");
    f->meta_keys = err_calloc(json_object_size(meta), sizeof(char *));
    f->meta_values = err_calloc(json_object_size(meta), sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)meta, k, v) {
        if (!json_is_string(v)) return err_set("__metadata__ \"%s\" is not a string", k);
        f->meta_keys[f->n_meta] = err_strdup(k);
        f->meta_values[f->n_meta++] = err_strdup(json_string_value(v));
    }
    return 0;
}

static int parse_header(StFile *f, const json_t *root) {
    if (!json_is_object(root)) return err_set("header is not a JSON object");
    f->tensors = err_calloc(json_object_size(root), sizeof *f->tensors);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)root, k, v) {
        if (!strcmp(k, "__metadata__")) {
            if (parse_metadata(f, v)) return -1;
        } else if (parse_tensor(k, v, &f->tensors[f->n_tensors++], f->data_size)) {
            return -1;
        }
    }
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* No two tensors may share a byte (empty tensors occupy none). */
static int check_overlaps(const StFile *f) {
    const StTensor **s = err_malloc((size_t)f->n_tensors * sizeof *s);
    int n = 0, rc = 0;
    for (int i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].end > f->tensors[i].begin) s[n++] = &f->tensors[i];
    qsort(s, (size_t)n, sizeof *s, cmp_begin);
    for (int i = 1; i < n && !rc; i++)
        if (s[i]->begin < s[i - 1]->end)
            rc = err_set("tensors '%s' and '%s' overlap", s[i - 1]->name, s[i]->name);
    free(s);
    return rc;
}

/* Reads the length prefix and the header JSON. */
static json_t *load_header(StFile *f) {
    struct stat sb;
    if (fstat(f->fd, &sb)) {
        err_set("%s", strerror(errno));
        return NULL;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        err_set("file is %llu bytes, too short for a safetensors header", (unsigned long long)size);
        return NULL;
    }
    unsigned char le[8];
    if (pread_all(f->fd, le, 8, 0)) return NULL;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | le[i];
    if (n > ST_MAX_HEADER) {
        err_set("header length %llu exceeds the %u-byte limit", (unsigned long long)n, ST_MAX_HEADER);
        return NULL;
    }
    if (n > size - 8) {
        err_set("header length %llu is larger than the file (%llu bytes)", (unsigned long long)n,
                (unsigned long long)size);
        return NULL;
    }
    f->data_start = 8 + n;
    f->data_size = size - f->data_start;
    char *buf = err_malloc(n);
    json_t *root = NULL;
    if (!pread_all(f->fd, buf, n, 8)) {
        json_error_t je;
        root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
        if (!root) err_set("header: invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    }
    free(buf);
    return root;
}

StFile *st_open(const char *path) {
    StFile *f = err_calloc(1, sizeof *f);
    f->path = err_strdup(path);
    f->fd = -1;
    if (fs_check_input(path, "a safetensors file")) { /* a FIFO would block open() */
        st_close(f);
        return NULL;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        st_close(f);
        return NULL;
    }
    json_t *root = load_header(f);
    int rc = root ? parse_header(f, root) : -1;
    if (!rc) rc = check_overlaps(f);
    json_decref(root);
    if (rc) {
        err_prefix("%s: ", path);
        st_close(f);
        return NULL;
    }
    return f;
}

void st_close(StFile *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    free(f);
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_metadata(const StFile *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

size_t st_numel(const StTensor *t) {
    size_t n = 1; /* cannot overflow: st_open checked bytes = numel * size */
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static void convert_to_f32(StDtype d, const unsigned char *in, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        if (d == ST_F64) {
            double x;
            memcpy(&x, in + 8 * i, 8);
            out[i] = (float)x;
        } else {
            uint16_t h;
            memcpy(&h, in + 2 * i, 2);
            out[i] = d == ST_F16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
        }
    }
}

int st_read_f32_range(const StFile *f, const StTensor *t, size_t first, size_t count, float *out) {
    size_t numel = st_numel(t), esz = st_dtype_size(t->dtype);
    if (first > numel || count > numel - first)
        return err_set("%s: tensor '%s': elements [%zu, %zu) out of range (%zu)", f->path, t->name,
                       first, first + count, numel);
    uint64_t off = f->data_start + t->begin + (uint64_t)first * esz;
    int rc = 0;
    if (t->dtype == ST_F32) {
        rc = pread_all(f->fd, out, count * 4, off);
    } else if (t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64) {
        unsigned char buf[1 << 16];
        size_t chunk = sizeof buf / esz;
        for (size_t i = 0; i < count && !rc; i += chunk) {
            size_t k = count - i < chunk ? count - i : chunk;
            rc = pread_all(f->fd, buf, k * esz, off + i * esz);
            if (!rc) convert_to_f32(t->dtype, buf, k, out + i);
        }
    } else {
        return err_set("%s: tensor '%s': dtype %s cannot be read as float32", f->path, t->name,
                       st_dtype_name(t->dtype));
    }
    if (rc) err_prefix("%s: tensor '%s': ", f->path, t->name);
    return rc;
}

int st_read_f32(const StFile *f, const StTensor *t, float *out) {
    return st_read_f32_range(f, t, 0, st_numel(t), out);
}

/* ---- writing ----------------------------------------------------------- */

static json_t *write_entry(const StWriteTensor *t, uint64_t *offset) {
    json_t *shape = json_array();
    uint64_t bytes = 4;
    for (int d = 0; d < t->ndim; d++) {
        json_array_append_new(shape, json_integer(t->shape[d]));
        bytes *= (uint64_t)t->shape[d];
    }
    json_t *e = json_object();
    json_object_set_new(e, "dtype", json_string("F32"));
    json_object_set_new(e, "shape", shape);
    json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)*offset, (json_int_t)(*offset + bytes)));
    *offset += bytes;
    return e;
}

static int check_write_tensor(const StWriteTensor *t, const json_t *root) {
    if (!t->name || !t->name[0] || !strcmp(t->name, "__metadata__"))
        return err_set("invalid tensor name \"%s\"", t->name ? t->name : "(null)");
    if (json_object_get(root, t->name)) return err_set("duplicate tensor name \"%s\"", t->name);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return err_set("tensor '%s': %d dimensions (0..%d allowed)", t->name, t->ndim, ST_MAX_DIMS);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0) return err_set("tensor '%s': negative shape", t->name);
    return 0;
}

/* The header JSON, padded with spaces to a multiple of 8 bytes as Hugging
 * Face does (keeps the data buffer aligned). */
static char *build_header(const StWriteTensor *t, int n, size_t *len) {
    json_t *root = json_object();
    json_object_set_new(root, "__metadata__", json_pack("{ss}", "format", "pt"));
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        if (check_write_tensor(&t[i], root)) {
            json_decref(root);
            return NULL;
        }
        json_object_set_new(root, t[i].name, write_entry(&t[i], &offset));
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t k = strlen(s), padded = (k + 7) / 8 * 8;
    char *h = err_malloc(padded);
    memcpy(h, s, k);
    memset(h + k, ' ', padded - k);
    free(s);
    *len = padded;
    return h;
}

typedef struct {
    const char *header;
    size_t hlen;
    const StWriteTensor *t;
    int n;
} StBody;

/* The file after the header is built; a failed write stops it early and
 * leaves ferror set for fs_write_tmp to report. */
static int write_body(FILE *fp, void *ctx) {
    const StBody *b = ctx;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)b->hlen >> (8 * i));
    if (fwrite(le, 1, 8, fp) != 8 || fwrite(b->header, 1, b->hlen, fp) != b->hlen) return 0;
    for (int i = 0; i < b->n; i++) {
        size_t numel = 1;
        for (int d = 0; d < b->t[i].ndim; d++) numel *= (size_t)b->t[i].shape[d];
        if (numel && fwrite(b->t[i].data, sizeof(float), numel, fp) != numel) return 0;
    }
    return 0;
}

/* Fills the file at path with fill (fs_write_atomic_with or fs_write_tmp). */
static int write_with(const char *path, const StWriteTensor *t, int n,
                      int (*fill)(const char *, FsWriteFn, void *)) {
    size_t hlen;
    char *header = build_header(t, n, &hlen);
    if (!header) return err_prefix("%s: ", path);
    StBody body = {.header = header, .hlen = hlen, .t = t, .n = n};
    int rc = fill(path, write_body, &body);
    free(header);
    return rc;
}

int st_write_f32(const char *path, const StWriteTensor *t, int n) {
    return write_with(path, t, n, fs_write_atomic_with);
}

int st_write_f32_tmp(const char *tmp, const StWriteTensor *t, int n) {
    return write_with(tmp, t, n, fs_write_tmp);
}
