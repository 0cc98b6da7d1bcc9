/* h5util — the HDF5 plumbing the checkpoint and log modules share: HDF5's
 * own error printing switched off and its error stack reduced to one line
 * for our messages, file-access properties, element types (memory and
 * little-endian file types, exact matching of stored types), scalar
 * attributes, the signature check, and detaching a file from the disk
 * before an abandoned close. */
#ifndef H5UTIL_H
#define H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Element types of datasets and attributes; ckpt and h5log map their own
 * public enums onto these. */
typedef enum { H5UTIL_F32, H5UTIL_F64, H5UTIL_I32, H5UTIL_I64, H5UTIL_U8, H5UTIL_U64 } H5utilType;

/* Our callers get one-line messages; HDF5's multi-line stack dumps on
 * stderr would only confuse them. Call before any other HDF5 call. */
void h5util_quiet(void);

/* The innermost (most specific) description on HDF5's error stack, on one
 * line. Low-level I/O failures embed a timestamp with a newline and a file
 * descriptor dump; their "error message = '...'" part (strerror) is what a
 * user needs. Call it right after the failing call: the next API call
 * clears the stack. */
void h5util_reason(char *out, size_t n);
/* err_set("WHERE: WHAT (reason)") with h5util_reason; returns -1. */
int h5util_fail(const char *where, const char *what);

typedef enum {
    H5UTIL_FAPL_LATEST = 1,      /* latest file format (SWMR needs it) */
    H5UTIL_FAPL_CLEAR_FLAGS = 2  /* open a file whose writer died, as h5clear -s does */
} H5utilFaplFlag;
/* File access: sec2 driver (a plain fd, for fsync, fallocate and
 * h5util_detach), H5F_CLOSE_SEMI (a leaked handle makes the close fail
 * loudly instead of silently keeping the file open), no file locking
 * (cluster filesystems often lack flock; our writers never share a file
 * with a reader that needs the lock); flags add H5utilFaplFlag bits.
 * H5Pclose the result. */
hid_t h5util_fapl(unsigned flags);

hid_t h5util_mem_type(H5utilType t);
/* Fixed little-endian file types, so files are the same on every host. */
hid_t h5util_file_type(H5utilType t);
/* "f32", "i64", ... */
const char *h5util_type_name(H5utilType t);
/* The H5utilType a stored type is exactly (class, width, signedness; byte
 * order is converted), -1 if none. */
int h5util_type_of(hid_t h5t);
/* "f32", "i16", "u64", "string", ... for any stored type, for messages. */
void h5util_describe_type(hid_t h5t, char *out, size_t n);

/* Variable-length UTF-8 string type (h5py reads it as str); H5Tclose it. */
hid_t h5util_str_type(void);
/* Creates (or replaces) the scalar attribute name of obj and writes *val
 * (mtype in memory, ftype in the file). -1 with HDF5's stack set. */
int h5util_put_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *val);
int h5util_put_attr_str(hid_t obj, const char *name, const char *val);

typedef enum {
    H5UTIL_READ_OK = 0,
    H5UTIL_READ_FAILED = -1,   /* HDF5 failed: h5util_reason says why */
    H5UTIL_WRONG_CLASS = 1,    /* not a string / not of the class asked for */
    H5UTIL_NOT_SCALAR = 2      /* more or fewer than one value */
} H5utilRead;
/* One value of an open attribute of class cls, converted to mtype. */
H5utilRead h5util_read_num(hid_t attr, H5T_class_t cls, hid_t mtype, void *out);
/* A scalar string attribute (variable or fixed length) as a malloc'd
 * NUL-terminated copy in *out. */
H5utilRead h5util_read_str(hid_t attr, char **out);

/* 1 if path starts with HDF5's 8-byte signature, 0 if not, -1 if it
 * cannot be opened (errno set). Files with a user block put the signature
 * at 512, 1024, ...; we never write those. */
int h5util_signature(const char *path);
/* The file's sec2 descriptor, -1 if HDF5 cannot give it. */
int h5util_fd(hid_t file);
/* Points the file's descriptor at an anonymous in-memory file, so that
 * closing a file we must not write to again (after a failed write or
 * flush: HDF5 1.10 cannot survive a failed close, and the close's own
 * flush would fail again) cannot touch the disk. The caller still closes
 * its handles and the file. */
void h5util_detach(hid_t file);

#endif
