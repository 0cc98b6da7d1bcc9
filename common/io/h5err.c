/* h5err — one-line reasons from HDF5's error stack; see h5err.h. */
#include "common/io/h5err.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

/* Raw HDF5 descriptions can be long (I/O errors list the file name, fd,
 * errno, buffer and sizes before the part we keep). */
#define H5ERR_DESC_MAX 2048

static herr_t first_desc(unsigned n, const H5E_error2_t *e, void *data) {
    char *out = data;
    (void)n;
    if (!out[0] && e->desc && e->desc[0]) snprintf(out, H5ERR_DESC_MAX, "%s", e->desc);
    return 0;
}

void h5err_reason(char *out, size_t n) {
    char raw[H5ERR_DESC_MAX] = "";
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
