/* h5util — HDF5 plumbing shared by ckpt and h5log; see h5util.h. */
#include "common/io/h5util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"

/* Raw HDF5 descriptions can be long (I/O errors list the file name, fd,
 * errno, buffer and sizes before the part we keep). */
#define H5UTIL_DESC_MAX 2048

void h5util_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t first_desc(unsigned n, const H5E_error2_t *e, void *data) {
    char *out = data;
    (void)n;
    if (!out[0] && e->desc && e->desc[0]) snprintf(out, H5UTIL_DESC_MAX, "%s", e->desc);
    return 0;
}

void h5util_reason(char *out, size_t n) {
    char raw[H5UTIL_DESC_MAX] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_desc, raw);
    const char *sys = strstr(raw, "error message = '");
    if (sys) {
        sys += strlen("error message = '");
        snprintf(out, n, "%.*s", (int)strcspn(sys, "'"), sys);
    } else {
        snprintf(out, n, "%s", raw[0] ? raw : "HDF5 error");
    }
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

int h5util_fail(const char *where, const char *what) {
    char reason[200];
    h5util_reason(reason, sizeof reason);
    return err_set("%s: %s (%s)", where, what, reason);
}

hid_t h5util_fapl(unsigned flags) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (flags & H5UTIL_FAPL_LATEST) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5Pset_fapl_sec2(fapl);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI);
    H5Pset_file_locking(fapl, 0, 1);
    if (flags & H5UTIL_FAPL_CLEAR_FLAGS) {
        hbool_t clear = 1;
        H5Pset(fapl, "clear_status_flags", &clear);
    }
    return fapl;
}

/* ---- element types -------------------------------------------------------- */

hid_t h5util_mem_type(H5utilType t) {
    switch (t) {
    case H5UTIL_F32: return H5T_NATIVE_FLOAT;
    case H5UTIL_F64: return H5T_NATIVE_DOUBLE;
    case H5UTIL_I32: return H5T_NATIVE_INT32;
    case H5UTIL_I64: return H5T_NATIVE_INT64;
    case H5UTIL_U8: return H5T_NATIVE_UINT8;
    case H5UTIL_U64: return H5T_NATIVE_UINT64;
    }
    return H5I_INVALID_HID;
}

hid_t h5util_file_type(H5utilType t) {
    switch (t) {
    case H5UTIL_F32: return H5T_IEEE_F32LE;
    case H5UTIL_F64: return H5T_IEEE_F64LE;
    case H5UTIL_I32: return H5T_STD_I32LE;
    case H5UTIL_I64: return H5T_STD_I64LE;
    case H5UTIL_U8: return H5T_STD_U8LE;
    case H5UTIL_U64: return H5T_STD_U64LE;
    }
    return H5I_INVALID_HID;
}

const char *h5util_type_name(H5utilType t) {
    static const char *const names[] = {
        [H5UTIL_F32] = "f32", [H5UTIL_F64] = "f64", [H5UTIL_I32] = "i32",
        [H5UTIL_I64] = "i64", [H5UTIL_U8] = "u8",   [H5UTIL_U64] = "u64",
    };
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "invalid type";
}

int h5util_type_of(hid_t h5t) {
    for (int t = H5UTIL_F32; t <= H5UTIL_U64; t++) {
        hid_t want = h5util_file_type((H5utilType)t);
        if (H5Tget_class(h5t) != H5Tget_class(want) || H5Tget_size(h5t) != H5Tget_size(want)) continue;
        if (H5Tget_class(h5t) != H5T_INTEGER || H5Tget_sign(h5t) == H5Tget_sign(want)) return t;
    }
    return -1;
}

void h5util_describe_type(hid_t h5t, char *out, size_t n) {
    H5T_class_t cls = H5Tget_class(h5t);
    size_t bits = 8 * H5Tget_size(h5t);
    if (cls == H5T_FLOAT) snprintf(out, n, "f%zu", bits);
    else if (cls == H5T_INTEGER) snprintf(out, n, "%c%zu", H5Tget_sign(h5t) == H5T_SGN_NONE ? 'u' : 'i', bits);
    else if (cls == H5T_STRING) snprintf(out, n, "string");
    else snprintf(out, n, "non-numeric type");
}

/* ---- attributes ----------------------------------------------------------- */

hid_t h5util_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int h5util_put_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *val) {
    htri_t exists = H5Aexists(obj, name);
    if (exists < 0 || (exists && H5Adelete(obj, name) < 0)) return -1;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, mtype, val) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    return rc;
}

int h5util_put_attr_str(hid_t obj, const char *name, const char *val) {
    hid_t t = h5util_str_type();
    int rc = h5util_put_attr(obj, name, t, t, &val);
    H5Tclose(t);
    return rc;
}

H5utilRead h5util_read_num(hid_t attr, H5T_class_t cls, hid_t mtype, void *out) {
    hid_t t = H5Aget_type(attr);
    hid_t s = H5Aget_space(attr);
    H5utilRead rc = H5UTIL_READ_OK;
    if (H5Tget_class(t) != cls) rc = H5UTIL_WRONG_CLASS;
    else if (H5Sget_simple_extent_npoints(s) != 1) rc = H5UTIL_NOT_SCALAR;
    else if (H5Aread(attr, mtype, out) < 0) rc = H5UTIL_READ_FAILED;
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

/* Variable-length strings come back in HDF5's memory, fixed ones in ours. */
static H5utilRead read_str_value(hid_t attr, hid_t t, char **out) {
    if (H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        H5utilRead rc = H5Aread(attr, t, &v) < 0 ? H5UTIL_READ_FAILED : H5UTIL_READ_OK;
        if (!rc) *out = err_strdup(v ? v : "");
        if (v) H5free_memory(v);
        return rc;
    }
    char *s = err_calloc(H5Tget_size(t) + 1, 1);
    if (H5Aread(attr, t, s) < 0) {
        free(s);
        return H5UTIL_READ_FAILED;
    }
    *out = s;
    return H5UTIL_READ_OK;
}

H5utilRead h5util_read_str(hid_t attr, char **out) {
    hid_t t = H5Aget_type(attr);
    hid_t s = H5Aget_space(attr);
    H5utilRead rc = H5UTIL_WRONG_CLASS;
    *out = NULL;
    if (H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_npoints(s) == 1) rc = read_str_value(attr, t, out);
    H5Sclose(s);
    H5Tclose(t);
    return rc;
}

/* ---- files ---------------------------------------------------------------- */

int h5util_signature(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char buf[8];
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return n == sizeof buf && !memcmp(buf, sig, sizeof sig);
}

int h5util_fd(hid_t file) {
    void *handle = NULL;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || !handle) return -1;
    return *(int *)handle;
}

void h5util_detach(hid_t file) {
    int fd = h5util_fd(file);
    if (fd < 0) return;
    int mem = memfd_create("h5util-detached", MFD_CLOEXEC);
    if (mem < 0) return;
    dup2(mem, fd);
    close(mem);
}
