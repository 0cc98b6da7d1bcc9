/* fuzz_hf_config — libFuzzer harness for the config.json half of
 * common/io/hf.c: the input is config.json of a Hugging Face GPT-2 directory
 * whose other files (model.safetensors, vocab.json, merges.txt) are valid
 * for the small base model. hf_import must refuse anything that does not
 * describe that model, naming the file, and must never allocate what the
 * weights file cannot hold. */
#include "tests/fuzz/fuzz_model_base.h"

static void fuzz_hf_config(const uint8_t *data, size_t n) {
    /* Only the base model's shapes fit its weights file. */
    static const char *dir;
    fuzz_hf_import_one(&dir, "hf-config", "config.json", data, n, "imported a model the weights do not describe");
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_hf_config(data, n);
    return 0;
}
#endif
