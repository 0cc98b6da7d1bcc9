/* h5err — HDF5's error stack reduced to one line for our messages; shared
 * by the checkpoint and log modules. */
#ifndef H5ERR_H
#define H5ERR_H

#include <stddef.h>

/* The innermost (most specific) description on HDF5's error stack, on one
 * line. Low-level I/O failures embed a timestamp with a newline and a file
 * descriptor dump; their "error message = '...'" part (strerror) is what a
 * user needs. Call it right after the failing call: the next API call
 * clears the stack. */
void h5err_reason(char *out, size_t n);

#endif
