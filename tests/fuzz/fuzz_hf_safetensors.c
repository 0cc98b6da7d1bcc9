/* fuzz_hf_safetensors — libFuzzer harness for the weights half of
 * common/io/hf.c (on top of safetensors.c): the input is model.safetensors of
 * a Hugging Face GPT-2 directory whose config.json, vocab.json and
 * merges.txt are valid for the small base model. Whatever the header
 * claims, hf_import either loads a model of exactly the configured shape
 * or fails with a message naming the file, leaving nothing allocated. */
#include "tests/fuzz/fuzz_model_base.h"

static void fuzz_hf_safetensors(const uint8_t *data, size_t n) {
    static const char *dir;
    fuzz_hf_import_one(&dir, "hf-weights", "model.safetensors", data, n, "imported a model of another shape");
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_hf_safetensors(data, n);
    return 0;
}
#endif
