/* fuzz_ckpt_raw — libFuzzer harness for checkpoint loading from damaged
 * bytes: the input is the whole file (seeds: a valid checkpoint of the
 * small base model), read like a run would read it (fuzz_ckpt_read.h).
 * Most mutations are caught by libhdf5's own parser, and HDF5 1.10 has
 * known crashes on crafted files (CVEs); tests/fuzz/run.sh reports a crash
 * whose stack is inside libhdf5 as a finding about HDF5 and fails only on
 * crashes in our code. */
#include "tests/fuzz/fuzz_ckpt_read.h"

static void fuzz_ckpt_raw(const uint8_t *data, size_t n) {
    const char *path = fuzz_path("raw.h5");
    fuzz_write(path, data, n);
    fuzz_ckpt_read(path);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_ckpt_raw(data, n);
    return 0;
}
#endif
