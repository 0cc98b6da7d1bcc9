/* safetensors — reads and writes Hugging Face .safetensors files, the format
 * of model.safetensors in a Hugging Face model directory (see hf.h).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *    ..., "__metadata__": {"key": "string", ...}}
 * then the data buffer; offsets are relative to the end of the header.
 *
 * st_open parses and validates the whole header before anything is read:
 * every tensor's byte range lies inside the file, matches its shape and
 * dtype, and overlaps no other, so a crafted header can never make a later
 * read leave the file. Tensor data is read on demand with pread (files may
 * be hundreds of MB), converting F16/BF16/F64 to float32. */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20) /* larger headers are rejected as absurd */

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E4M3, ST_F8_E5M2, ST_I16, ST_U16, ST_F16,
    ST_BF16, ST_I32, ST_U32, ST_F32, ST_I64, ST_U64, ST_F64
} StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;                    /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;         /* bytes, relative to the data buffer */
} StTensor;

typedef struct {
    char *path;
    int fd;
    uint64_t data_start;         /* 8 + header length */
    uint64_t data_size;          /* file size - data_start */
    int n_tensors;
    StTensor *tensors;           /* in header order */
    int n_meta;
    char **meta_keys, **meta_values; /* "__metadata__" (string values) */
} StFile;

/* Opens and validates PATH; NULL + err_set("PATH: ...") on any problem. */
StFile *st_open(const char *path);
void st_close(StFile *f);

/* The tensor called NAME, or NULL (no error set). */
const StTensor *st_find(const StFile *f, const char *name);
/* A "__metadata__" value, or NULL. */
const char *st_metadata(const StFile *f, const char *key);

/* Number of elements (product of the shape; 1 for a scalar). */
size_t st_numel(const StTensor *t);
/* "F32", "BF16", ... */
const char *st_dtype_name(StDtype d);
/* Bytes per element. */
size_t st_dtype_size(StDtype d);

/* Reads the whole tensor as float32 into out (st_numel floats). F32 is
 * copied as is, F16/BF16/F64 converted; other dtypes: -1 + err_set. */
int st_read_f32(const StFile *f, const StTensor *t, float *out);
/* Same for elements [first, first + count) in row-major order. */
int st_read_f32_range(const StFile *f, const StTensor *t, size_t first,
                      size_t count, float *out);

/* One float32 tensor to write. */
typedef struct {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;           /* product(shape) floats */
} StWriteTensor;

/* Writes an F32 safetensors file with "__metadata__": {"format": "pt"};
 * tensors are stored in the given order. The file is written under a
 * temporary name and renamed, so PATH is either the old file or complete. */
int st_write_f32(const char *path, const StWriteTensor *t, int n);
/* The same file written at exactly tmp (fs_write_tmp: removed on failure),
 * for a caller that commits several files together (hf_export). */
int st_write_f32_tmp(const char *tmp, const StWriteTensor *t, int n);

/* IEEE half / bfloat16 bits to float (exact). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif
