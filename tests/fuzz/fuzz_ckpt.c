/* fuzz_ckpt — libFuzzer harness for checkpoint loading (common/io/ckpt.c and
 * the readers on top of it: model, tokenizer, stored run configuration).
 * The input drives edits of a valid checkpoint of the small base model
 * through the HDF5 API (fuzz_h5edit.h): root attributes (format, version,
 * model config, head, tokenizer kind), parameter and tokenizer datasets,
 * the optimizer buffer, /config. The edited file is then read like a run
 * would read it (fuzz_ckpt_read.h). fuzz_ckpt_raw covers damaged bytes. */
#include "tests/fuzz/fuzz_ckpt_read.h"

static void fuzz_ckpt(const uint8_t *data, size_t n) {
    static const char *const objs[] = {"/", "/", "/", "/config", "/params", "/params/wte.weight"};
    static const char *const attrs[] = {"format", "version", "kind", "vocab_size", "n_ctx",
                                        "n_layer", "n_head", "n_embd", "head", "tokenizer",
                                        "kl_coef", "batch_size", "kl_estimator"};
    static const char *const paths[] = {"/params/wte.weight", "/params/wpe.weight",
                                        "/params/h.0.attn.c_attn.weight", "/params/ln_f.bias",
                                        "/params/h.0.mlp.c_proj.weight", "/tokenizer/vocab_json",
                                        "/tokenizer/merges_txt", "/optim/m/wte.weight",
                                        "/optim/m/ln_f.weight", "/train/steps", "/params", "/tokenizer",
                                        "/config", "/optim/m", "/params/score.weight"};
    static const FuzzH5Targets targets = {objs, 6, attrs, 13, paths, 15};
    const char *path = fuzz_path("edited.h5");
    FuzzIn in = {data, n};
    fuzz_h5_edited_copy(fuzz_base_ckpt(), path, &in, &targets);
    fuzz_ckpt_read(path);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_ckpt(data, n);
    return 0;
}
#endif
