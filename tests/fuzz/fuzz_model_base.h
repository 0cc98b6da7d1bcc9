/* fuzz_model_base — the small valid model and tokenizer the model-file
 * harnesses start from (fuzz_hf_*, fuzz_ckpt*): a 4-token GPT-2 BPE
 * tokenizer ("a", "b", "ab", "<|endoftext|>", one merge) and a GPT-2 of
 * width 4, 1 layer, 2 heads, 4 positions with random weights, so every file
 * is a few KB and every check of the loaders is reachable. Built once per
 * process. */
#ifndef FUZZ_MODEL_BASE_H
#define FUZZ_MODEL_BASE_H

#include "common/io/ckpt.h"
#include "common/err.h"
#include "common/model/gpt.h"
#include "common/io/hf.h"
#include "common/model/tok.h"
#include "tests/fuzz/fuzz_util.h"

static const char fuzz_base_vocab[] = "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<|endoftext|>\": 3}";
static const char fuzz_base_merges[] = "#version: 0.2\na b\n";

static inline Tok *fuzz_base_tok(void) {
    Tok *t = tok_gpt2_from_memory(fuzz_base_vocab, sizeof fuzz_base_vocab - 1, fuzz_base_merges,
                                  sizeof fuzz_base_merges - 1);
    if (!t) {
        fprintf(stderr, "fuzz: base tokenizer: %s\n", err_msg());
        abort();
    }
    return t;
}

/* The base model (head: GPT_HEAD_LM or GPT_HEAD_SCALAR); gpt_free it. */
static inline void fuzz_base_model(Gpt *m, GptHead head) {
    GptConfig c = {.vocab_size = 4, .n_ctx = 4, .n_layer = 1, .n_head = 2, .n_embd = 4, .head = head};
    if (gpt_init(m, &c)) {
        fprintf(stderr, "fuzz: base model: %s\n", err_msg());
        abort();
    }
    gpt_init_random(m, 7);
}

/* A Hugging Face directory of the base model (config.json,
 * model.safetensors, vocab.json, merges.txt), exported once. */
static inline const char *fuzz_base_hf_dir(void) {
    static const char *dir;
    if (dir) return dir;
    dir = fuzz_path_keep("hf-base");
    Gpt m;
    Tok *t = fuzz_base_tok();
    fuzz_base_model(&m, GPT_HEAD_LM);
    if (hf_export(dir, &m, t)) {
        fprintf(stderr, "fuzz: hf_export: %s\n", err_msg());
        abort();
    }
    gpt_free(&m);
    tok_free(t);
    return dir;
}

/* Copies file name from the base HF directory into dir. */
static inline void fuzz_base_hf_copy(const char *dir, const char *name) {
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/%s", fuzz_base_hf_dir(), name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    size_t n;
    char *buf = fuzz_read(src, &n);
    if (!buf) abort();
    fuzz_write(dst, buf, n);
    free(buf);
}

/* The two halves of hf_import's input: a Hugging Face directory (made on the
 * first call, under the scratch name `scratch`, into the caller's *dir: one
 * per harness, as harnesses share a translation unit in
 * tests/unit/test_fuzz_regressions.c) holding the base model's files but for
 * `fuzzed`, which is the input. hf_import either loads a model of exactly
 * the base shape or fails with a message naming the file, leaving nothing
 * allocated; `wrong_shape` is the complaint when it loads another shape. */
static inline void fuzz_hf_import_one(const char **dirp, const char *scratch, const char *fuzzed,
                                      const uint8_t *data, size_t n, const char *wrong_shape) {
    static const char *const files[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
    if (!*dirp) {
        *dirp = fuzz_path_keep(scratch);
        mkdir(*dirp, 0700);
        for (int i = 0; i < 4; i++)
            if (strcmp(files[i], fuzzed)) fuzz_base_hf_copy(*dirp, files[i]);
    }
    const char *dir = *dirp;
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, fuzzed);
    fuzz_write(path, data, n);
    Gpt m;
    Tok *t = NULL;
    err_clear();
    if (hf_import(dir, &m, n % 2 ? &t : NULL)) {
        FUZZ_CHECK(!m.params && !t, "failed import left allocations");
        FUZZ_CHECK(strstr(err_msg(), dir) == err_msg(), "message does not name the file: %s", err_msg());
        return;
    }
    FUZZ_CHECK(m.cfg.vocab_size == 4 && m.cfg.n_embd == 4 && m.cfg.n_layer == 1 && m.cfg.n_ctx == 4, "%s",
               wrong_shape);
    gpt_free(&m);
    tok_free(t);
}

/* A checkpoint of the base model with its tokenizer, an optimizer buffer
 * and a /config group, written once with the ckpt API. */
static inline const char *fuzz_base_ckpt(void) {
    static const char *path;
    if (path) return path;
    path = fuzz_path_keep("base.h5");
    Gpt m;
    Tok *t = fuzz_base_tok();
    fuzz_base_model(&m, GPT_HEAD_LM);
    Ckpt *c = ckpt_create(path);
    int64_t step_dims[1] = {2};
    const int64_t steps[2] = {10, 20};
    int rc = !c || ckpt_put_model(c, &m, t, "policy") || ckpt_put_buffer(c, "optim/m", &m, m.params) ||
             ckpt_put_array(c, "train/steps", CKPT_I64, 1, step_dims, steps) ||
             ckpt_put_attr_str(c, "/config", "batch_size", "8") ||
             ckpt_put_attr_str(c, "/config", "kl_estimator", "k3") ||
             ckpt_put_attr_f64(c, "/", "kl_coef", 0.1) || ckpt_commit(c);
    if (rc) {
        fprintf(stderr, "fuzz: base checkpoint: %s\n", err_msg());
        abort();
    }
    gpt_free(&m);
    tok_free(t);
    return path;
}

#endif
