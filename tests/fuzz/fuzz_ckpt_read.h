/* fuzz_ckpt_read — everything a run does with a checkpoint it is given
 * (resume, import, evaluate), applied to one file: open, model config,
 * model, optimizer buffer, tokenizer (and a text round trip through it),
 * arrays, attributes and the stored run configuration. Each step must
 * succeed or fail with a message naming the file; nothing may crash or
 * leak, and no HDF5 handle may stay open after ckpt_close. */
#ifndef FUZZ_CKPT_READ_H
#define FUZZ_CKPT_READ_H

#include "common/config.h"
#include "tests/fuzz/fuzz_h5edit.h"
#include "tests/fuzz/fuzz_model_base.h"

static const CfgKey fuzz_ckpt_cfg_keys[] = {
    {.key = "batch_size", .type = CFG_INT, .def = "4", .help = "sequences per step"},
    {.key = "kl_estimator", .type = CFG_ENUM, .def = "k1", .help = "per-token KL estimator", .choices = "k1|k3"},
    {0}};

static inline void fuzz_ckpt_expect_named(const char *path, int rc) {
    if (rc) FUZZ_CHECK(strstr(err_msg(), path) != NULL, "message does not name the file: %s", err_msg());
}

static inline void fuzz_ckpt_model(Ckpt *c, const char *path) {
    Gpt m;
    err_clear();
    int rc = ckpt_get_model(c, &m);
    fuzz_ckpt_expect_named(path, rc);
    if (rc) {
        FUZZ_CHECK(m.params == NULL, "failed ckpt_get_model left the model allocated");
        return;
    }
    float *buf = malloc(m.n_params * sizeof *buf);
    fuzz_ckpt_expect_named(path, ckpt_get_buffer(c, "optim/m", &m, buf));
    free(buf);
    gpt_free(&m);
}

static inline void fuzz_ckpt_tok(Ckpt *c, const char *path) {
    err_clear();
    Tok *t = ckpt_get_tok(c);
    fuzz_ckpt_expect_named(path, !t);
    if (!t) return;
    static const char text[] = "ab ba <|endoftext|> b";
    int n;
    int *ids = tok_encode(t, text, sizeof text - 1, &n);
    if (ids) {
        size_t len;
        char *back = tok_decode(t, ids, n, &len);
        FUZZ_CHECK(back && len == sizeof text - 1 && !memcmp(back, text, len), "decode(encode(x)) != x");
        free(back);
        free(ids);
    }
    tok_free(t);
}

static inline void fuzz_ckpt_misc(Ckpt *c, const char *path) {
    int ndim;
    int64_t dims[CKPT_MAX_DIMS], count = 1, v;
    if (!ckpt_get_shape(c, "train/steps", &ndim, dims)) {
        FUZZ_CHECK(ndim >= 0 && ndim <= CKPT_MAX_DIMS, "rank %d", ndim);
        for (int i = 0; i < ndim; i++) count = dims[i] < 0 || dims[i] > 4096 ? 4097 : count * dims[i];
        if (count <= 4096) { /* the caller's allocation: sized from the shape */
            int64_t *a = malloc((size_t)(count ? count : 1) * sizeof *a);
            fuzz_ckpt_expect_named(path, ckpt_get_array(c, "train/steps", CKPT_I64, count, a));
            free(a);
        }
    }
    double d;
    char s[64];
    fuzz_ckpt_expect_named(path, ckpt_get_attr_f64(c, "/", "kl_coef", &d));
    fuzz_ckpt_expect_named(path, ckpt_get_attr_i64(c, "/", "n_layer", &v));
    fuzz_ckpt_expect_named(path, ckpt_get_attr_str(c, "/", "kind", s, sizeof s));
    ckpt_has(c, "params/wte.weight");
    ckpt_kind(c);
    const CfgKey *const tables[] = {fuzz_ckpt_cfg_keys};
    static const char *const keys[] = {"batch_size", "kl_estimator", NULL};
    Config *cfg = config_new(tables, 1);
    fuzz_ckpt_expect_named(path, ckpt_load_config(c, cfg, NULL));
    fuzz_ckpt_expect_named(path, ckpt_load_config(c, cfg, keys));
    config_free(cfg);
}

static inline void fuzz_ckpt_read(const char *path) {
    err_clear();
    Ckpt *c = ckpt_open(path);
    if (!c) {
        fuzz_ckpt_expect_named(path, -1);
        FUZZ_CHECK(fuzz_h5_open_ids() == 0, "%ld HDF5 objects open after a failed ckpt_open",
                   fuzz_h5_open_ids());
        return;
    }
    GptConfig cfg;
    fuzz_ckpt_expect_named(path, ckpt_get_config(c, &cfg));
    fuzz_ckpt_model(c, path);
    fuzz_ckpt_tok(c, path);
    fuzz_ckpt_misc(c, path);
    ckpt_close(c);
    FUZZ_CHECK(fuzz_h5_open_ids() == 0, "%ld HDF5 objects open after ckpt_close", fuzz_h5_open_ids());
}

#endif
