/* fuzz_h5log — libFuzzer harness for reading logs (common/io/h5log.c,
 * h5log_open_read and the readers). The input drives edits of a valid
 * rollout log through the HDF5 API (fuzz_h5edit.h): format, version, kind
 * and help attributes, column datasets replaced by others of any type,
 * rank and size (also huge unallocated ones), groups among the columns,
 * extra objects. The edited file is then read like `rlhf inspect` reads it
 * (fuzz_h5log_read.h). fuzz_h5log_raw covers damaged bytes. */
#include "tests/fuzz/fuzz_h5log_read.h"

static void fuzz_h5log(const uint8_t *data, size_t n) {
    static const char *const objs[] = {"/", "/", "/step", "/tokens", "/logp"};
    static const char *const attrs[] = {"format", "version", "kind", "writer", "help"};
    static const char *const paths[] = {"/step", "/loss", "/tokens", "/logp", "/extra", "/g/x"};
    static const FuzzH5Targets targets = {objs, 5, attrs, 5, paths, 6};
    const char *path = fuzz_path("edited-log.h5");
    FuzzIn in = {data, n};
    fuzz_h5_edited_copy(fuzz_base_log(), path, &in, &targets);
    fuzz_h5log_read(path);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_h5log(data, n);
    return 0;
}
#endif
