/* fuzz_hf_config — libFuzzer harness for the config.json half of
 * common/io/hf.c: the input is config.json of a Hugging Face GPT-2 directory
 * whose other files (model.safetensors, vocab.json, merges.txt) are valid
 * for the small base model. hf_import must refuse anything that does not
 * describe that model, naming the file, and must never allocate what the
 * weights file cannot hold. */
#include "tests/fuzz/fuzz_model_base.h"

static void fuzz_hf_config(const uint8_t *data, size_t n) {
    static const char *dir;
    if (!dir) {
        dir = fuzz_path_keep("hf-config");
        mkdir(dir, 0700);
        fuzz_base_hf_copy(dir, "model.safetensors");
        fuzz_base_hf_copy(dir, "vocab.json");
        fuzz_base_hf_copy(dir, "merges.txt");
    }
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    fuzz_write(cfg, data, n);
    Gpt m;
    Tok *t = NULL;
    err_clear();
    if (hf_import(dir, &m, n % 2 ? &t : NULL)) {
        FUZZ_CHECK(!m.params && !t, "failed import left allocations");
        FUZZ_CHECK(strstr(err_msg(), dir) == err_msg(), "message does not name the file: %s", err_msg());
        return;
    }
    /* Only the base model's shapes fit its weights file. */
    FUZZ_CHECK(m.cfg.vocab_size == 4 && m.cfg.n_embd == 4 && m.cfg.n_layer == 1 && m.cfg.n_ctx == 4,
               "imported a model the weights do not describe");
    gpt_free(&m);
    tok_free(t);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_hf_config(data, n);
    return 0;
}
#endif
