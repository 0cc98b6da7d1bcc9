/* fuzz_hf_safetensors — libFuzzer harness for the weights half of
 * common/io/hf.c (on top of safetensors.c): the input is model.safetensors of
 * a Hugging Face GPT-2 directory whose config.json, vocab.json and
 * merges.txt are valid for the small base model. Whatever the header
 * claims, hf_import either loads a model of exactly the configured shape
 * or fails with a message naming the file, leaving nothing allocated. */
#include "tests/fuzz/fuzz_model_base.h"

static void fuzz_hf_safetensors(const uint8_t *data, size_t n) {
    static const char *dir;
    if (!dir) {
        dir = fuzz_path_keep("hf-weights");
        mkdir(dir, 0700);
        fuzz_base_hf_copy(dir, "config.json");
        fuzz_base_hf_copy(dir, "vocab.json");
        fuzz_base_hf_copy(dir, "merges.txt");
    }
    char st[600];
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    fuzz_write(st, data, n);
    Gpt m;
    Tok *t = NULL;
    err_clear();
    if (hf_import(dir, &m, n % 2 ? &t : NULL)) {
        FUZZ_CHECK(!m.params && !t, "failed import left allocations");
        FUZZ_CHECK(strstr(err_msg(), dir) == err_msg(), "message does not name the file: %s", err_msg());
        return;
    }
    FUZZ_CHECK(m.cfg.vocab_size == 4 && m.cfg.n_embd == 4 && m.cfg.n_layer == 1 && m.cfg.n_ctx == 4,
               "imported a model of another shape");
    gpt_free(&m);
    tok_free(t);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_hf_safetensors(data, n);
    return 0;
}
#endif
