/* fuzz_h5edit — structured damage to a valid HDF5 file, for the checkpoint
 * and log harnesses. Byte-level mutation of an HDF5 file mostly exercises
 * libhdf5's own parser (and HDF5 1.10 has known crashes there); to reach our
 * validation code instead, these harnesses copy a valid file and let the
 * fuzz input drive edits made through the HDF5 API: attributes set to other
 * values, types, sizes and shapes or removed, datasets replaced by others
 * of any type and shape (also huge unallocated ones) or by groups, links
 * removed, objects added. The result is always a well-formed HDF5 file
 * whose content is hostile. */
#ifndef FUZZ_H5EDIT_H
#define FUZZ_H5EDIT_H

#include <hdf5.h>

#include "tests/fuzz/fuzz_util.h"

/* What the edits may touch: attribute holders + names, and object paths. */
typedef struct {
    const char *const *objs;   /* objects carrying attributes ("/", ...) */
    int n_objs;
    const char *const *attrs;  /* attribute names */
    int n_attrs;
    const char *const *paths;  /* datasets and groups */
    int n_paths;
} FuzzH5Targets;

static inline const char *fuzz_h5_pick(FuzzIn *in, const char *const *list, int n) {
    return list[fuzz_u8(in) % n];
}

/* A dimension: mostly small, sometimes 0 or far larger than the file. */
static inline hsize_t fuzz_h5_dim(FuzzIn *in) {
    uint8_t b = fuzz_u8(in);
    if (b >= 0xF0) return (hsize_t)1 << (b & 0x0F ? 20 + (b & 0x0F) : 40);
    return b % 9;
}

static inline hid_t fuzz_h5_type(FuzzIn *in) {
    static const hid_t *const types[] = {&H5T_IEEE_F32LE_g, &H5T_IEEE_F64LE_g, &H5T_STD_I32LE_g,
                                         &H5T_STD_I64LE_g,  &H5T_STD_U8LE_g,   &H5T_STD_U64LE_g,
                                         &H5T_STD_I16BE_g,  &H5T_IEEE_F32BE_g, &H5T_STD_I8LE_g};
    uint8_t k = fuzz_u8(in);
    if (k % 11 == 9) { /* fixed-length string */
        hid_t s = H5Tcopy(H5T_C_S1);
        H5Tset_size(s, 1 + fuzz_u8(in));
        return s;
    }
    if (k % 11 == 10) { /* variable-length string */
        hid_t s = H5Tcopy(H5T_C_S1);
        H5Tset_size(s, H5T_VARIABLE);
        return s;
    }
    H5open(); /* the predefined type ids exist only after the library started */
    return H5Tcopy(*types[k % 9]);
}

/* Fills an element buffer for t with input bytes (variable-length strings
 * get pointers to NUL-terminated copies held in strs). */
static inline void *fuzz_h5_fill(FuzzIn *in, hid_t t, size_t count, char (*strs)[256]) {
    if (H5Tis_variable_str(t) > 0) {
        char **p = calloc(count ? count : 1, sizeof *p);
        for (size_t i = 0; i < count; i++) {
            fuzz_str(in, strs[i % 4]);
            p[i] = strs[i % 4];
        }
        return p;
    }
    size_t bytes = count * H5Tget_size(t), got;
    unsigned char *buf = calloc(bytes ? bytes : 1, 1);
    const uint8_t *src = fuzz_bytes(in, bytes, &got);
    if (got) memcpy(buf, src, got);
    return buf;
}

/* A dataspace: scalar, or rank 1..3 with fuzzed dimensions. */
static inline hid_t fuzz_h5_space(FuzzIn *in, hsize_t *count) {
    int rank = fuzz_u8(in) % 4;
    hsize_t dims[3];
    *count = 1;
    for (int i = 0; i < rank; i++) {
        dims[i] = fuzz_h5_dim(in);
        *count *= dims[i];
    }
    return rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
}

static inline void fuzz_h5_set_attr(FuzzIn *in, hid_t file, const char *obj, const char *name) {
    if (H5Aexists_by_name(file, obj, name, H5P_DEFAULT) > 0) H5Adelete_by_name(file, obj, name, H5P_DEFAULT);
    hid_t t = fuzz_h5_type(in), s;
    hsize_t count = 1;
    if (fuzz_u8(in) % 4 == 0) {
        s = fuzz_h5_space(in, &count); /* usually attributes are one value */
    } else {
        s = H5Screate(H5S_SCALAR);
    }
    if (count <= 64) {
        hid_t a = H5Acreate_by_name(file, obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            char strs[4][256];
            void *buf = fuzz_h5_fill(in, t, count, strs);
            H5Awrite(a, t, buf);
            free(buf);
            H5Aclose(a);
        }
    }
    H5Sclose(s);
    H5Tclose(t);
}

/* Replaces the object at path by a new dataset (or a group). */
static inline void fuzz_h5_replace(FuzzIn *in, hid_t file, const char *path) {
    if (H5Lexists(file, path, H5P_DEFAULT) > 0) H5Ldelete(file, path, H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (fuzz_u8(in) % 8 == 0) {
        hid_t g = H5Gcreate2(file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g >= 0) H5Gclose(g);
        H5Pclose(lcpl);
        return;
    }
    hid_t t = fuzz_h5_type(in);
    hsize_t count;
    hid_t s = fuzz_h5_space(in, &count);
    hid_t d = H5Dcreate2(file, path, t, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        if (count && count <= 4096) { /* larger ones stay unwritten: no storage */
            char strs[4][256];
            void *buf = fuzz_h5_fill(in, t, count, strs);
            H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            free(buf);
        }
        H5Dclose(d);
    }
    H5Sclose(s);
    H5Tclose(t);
    H5Pclose(lcpl);
}

/* A 1-D u8 dataset holding the next bytes of the input (tokenizer files). */
static inline void fuzz_h5_bytes(FuzzIn *in, hid_t file, const char *path) {
    if (H5Lexists(file, path, H5P_DEFAULT) > 0) H5Ldelete(file, path, H5P_DEFAULT);
    size_t len;
    const uint8_t *p = fuzz_bytes(in, fuzz_uint(in, 2), &len);
    hsize_t dims[1] = {len};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(file, path, H5T_STD_U8LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        if (len) H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, p);
        H5Dclose(d);
    }
    H5Pclose(lcpl);
    H5Sclose(s);
}

/* Applies edits until the input runs out (at most 32). */
static inline void fuzz_h5_edit(FuzzIn *in, hid_t file, const FuzzH5Targets *t) {
    for (int k = 0; k < 32 && fuzz_left(in); k++) {
        uint8_t op = fuzz_u8(in) % 7;
        const char *obj = fuzz_h5_pick(in, t->objs, t->n_objs);
        const char *attr = fuzz_h5_pick(in, t->attrs, t->n_attrs);
        const char *path = fuzz_h5_pick(in, t->paths, t->n_paths);
        char name[256], full[300];
        switch (op) {
        case 0:
        case 1: fuzz_h5_set_attr(in, file, obj, attr); break;
        case 2:
            if (H5Aexists_by_name(file, obj, attr, H5P_DEFAULT) > 0)
                H5Adelete_by_name(file, obj, attr, H5P_DEFAULT);
            break;
        case 3:
            if (H5Lexists(file, path, H5P_DEFAULT) > 0) H5Ldelete(file, path, H5P_DEFAULT);
            break;
        case 4: fuzz_h5_replace(in, file, path); break;
        case 5: fuzz_h5_bytes(in, file, path); break;
        case 6: /* a new object with a fuzzed name beside the known ones */
            fuzz_str(in, name);
            snprintf(full, sizeof full, "%s/%s", obj, name);
            if (name[0] && !strchr(name, '/') && strcmp(name, ".")) fuzz_h5_replace(in, file, full);
            break;
        }
    }
}

/* Copies the base file to path and applies the input's edits to it. */
static inline void fuzz_h5_edited_copy(const char *base, const char *path, FuzzIn *in, const FuzzH5Targets *t) {
    size_t n;
    char *bytes = fuzz_read(base, &n);
    if (!bytes) abort();
    fuzz_write(path, bytes, n);
    free(bytes);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5Pset_file_locking(fapl, 0, 1);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (file < 0) {
        fprintf(stderr, "fuzz: cannot reopen the copy of %s\n", base);
        abort();
    }
    fuzz_h5_edit(in, file, t);
    H5Fclose(file);
}

/* Open HDF5 objects anywhere: a reader must leave none behind. */
static inline long fuzz_h5_open_ids(void) { return (long)H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL); }

#endif
