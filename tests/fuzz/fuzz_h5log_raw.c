/* fuzz_h5log_raw — libFuzzer harness for reading logs from damaged bytes:
 * the input is the whole file (seeds: a valid rollout log), read like
 * `rlhf inspect` reads it (fuzz_h5log_read.h). As with fuzz_ckpt_raw, a
 * crash inside libhdf5 is reported by tests/fuzz/run.sh as a finding about
 * HDF5 1.10, and only crashes in our code fail the run. */
#include "tests/fuzz/fuzz_h5log_read.h"

static void fuzz_h5log_raw(const uint8_t *data, size_t n) {
    const char *path = fuzz_path("raw-log.h5");
    fuzz_write(path, data, n);
    fuzz_h5log_read(path);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_h5log_raw(data, n);
    return 0;
}
#endif
