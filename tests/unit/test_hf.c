/* Tests for common/io/safetensors.c and common/io/hf.c: the committed tiny
 * Hugging Face directory against values read independently with numpy,
 * bit-exact export/import round trips, key-name variants, half-precision
 * decoding, and rejection of malformed safetensors files, config.json and
 * model directories. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/model/gpt.h"
#include "common/io/hf.h"
#include "common/io/safetensors.h"
#include "common/model/tok.h"
#include "tests/harness.h"

/* ---- helpers ------------------------------------------------------------ */

/* A fresh directory under the scratch dir. */
static const char *scratch(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", harness_tmpdir(), name);
    mkdir(path, 0777);
    return path;
}

static void copy_file(const char *src, const char *dst) {
    size_t n;
    char *s = harness_read_file(src, &n);
    CHECKF(s && !harness_write_file(dst, s, n), "copy %s -> %s", src, dst);
    free(s);
}

/* Writes a safetensors file byte by byte: length prefix `len` (normally the
 * header's own length), the header text, then `data_bytes` zero bytes. */
static void write_raw_st(const char *path, uint64_t len, const char *header, size_t data_bytes) {
    size_t hn = strlen(header);
    unsigned char *b = calloc(1, 8 + hn + data_bytes);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(len >> (8 * i));
    memcpy(b + 8, header, hn);
    harness_write_file(path, b, 8 + hn + data_bytes);
    free(b);
}

static int has_fixture(void) {
    struct stat sb;
    if (stat(harness_join(harness_fixtures(), "tiny-gpt2/model.safetensors"), &sb) == 0) return 1;
    printf("    note: %s/tiny-gpt2 not present, skipped\n", harness_fixtures());
    return 0;
}

/* The tokenizer module may still be a stub returning NULL. */
static int tok_available(void) {
    Tok *t = tok_byte_new();
    if (!t) {
        printf("    note: tok_byte_new() returned NULL (tokenizer not implemented yet), tokenizer checks skipped\n");
        return 0;
    }
    tok_free(t);
    return 1;
}

static const char *tiny_dir(void) {
    static char p[512];
    snprintf(p, sizeof p, "%s/tiny-gpt2", harness_fixtures());
    return p;
}

static GptConfig small_config(GptHead head) {
    return (GptConfig){.vocab_size = 257, .n_ctx = 16, .n_layer = 2, .n_head = 2, .n_embd = 8, .head = head};
}

/* Randomised parameters, every tensor non-zero (biases and the score head
 * too, so a dropped or misplaced tensor shows). */
static void fill_params(Gpt *m, uint64_t seed) {
    gpt_init_random(m, seed);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 1e-3f * (float)((i * 7919) % 1000) - 0.5f;
}

/* Exports m (tok may be NULL), imports it back and checks bit equality. */
static void check_round_trip(const Gpt *m, const Tok *tok, const char *dir) {
    CHECKF(hf_export(dir, m, tok) == 0, "export: %s", err_msg());
    Gpt b;
    Tok *t2 = NULL;
    if (!CHECKF(hf_import(dir, &b, tok ? &t2 : NULL) == 0, "import: %s", err_msg())) return;
    CHECK(!memcmp(&b.cfg, &m->cfg, sizeof b.cfg));
    CHECK(b.n_params == m->n_params);
    CHECK(b.n_params == m->n_params && !memcmp(b.params, m->params, m->n_params * sizeof(float)));
    if (tok) {
        CHECK(t2 && tok_kind(t2) == tok_kind(tok) && tok_vocab_size(t2) == tok_vocab_size(tok));
        tok_free(t2);
    }
    gpt_free(&b);
}

static json_t *load_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECKF(j != NULL, "%s: %s", path, je.text);
    return j;
}

/* ---- the committed fixture ---------------------------------------------- */

/* Expected values were read from tests/fixtures/tiny-gpt2/model.safetensors
 * with /usr/bin/python3 + numpy and a struct/json reader independent of
 * this code (np.frombuffer(raw[8+n+a : 8+n+b], '<f4').reshape(shape)),
 * printed with repr(); float32 values survive the double round trip. */
TEST(hf_import_tiny_fixture_matches_numpy) {
    if (!has_fixture()) return;
    Gpt m;
    if (!CHECKF(hf_import(tiny_dir(), &m, NULL) == 0, "%s", err_msg())) return;
    GptConfig want = {.vocab_size = 257, .n_ctx = 32, .n_layer = 2, .n_head = 4, .n_embd = 32, .head = GPT_HEAD_LM};
    CHECK(!memcmp(&m.cfg, &want, sizeof want));
    int C = 32;
    CHECK(m.p.wte[0] == (float)-0.004223782569169998);
    CHECK(m.p.wte[1] == (float)-0.010354669764637947);
    CHECK(m.p.wte[2] == (float)0.0029919168446213007);
    CHECK(m.p.wte[256 * C + 31] == (float)0.05315423011779785);
    CHECK(m.p.wpe[31 * C + 0] == (float)0.01398642547428608);
    CHECK(m.p.layer[1].fc_w[3 * 4 * C + 5] == (float)0.001441366970539093);     /* c_fc.weight[3, 5] */
    CHECK(m.p.layer[1].fc_w[31 * 4 * C + 127] == (float)-0.004311557859182358); /* [31, 127] */
    CHECK(m.p.layer[0].qkv_b[95] == (float)0.03948620706796646);
    CHECK(m.p.lnf_b[31] == (float)-0.012294558808207512);
    CHECK(m.p.layer[0].ln1_w[0] == (float)0.8253691792488098);
    gpt_free(&m);
}

TEST(hf_import_tiny_fixture_tokenizer_is_bytes) {
    if (!has_fixture() || !tok_available()) return;
    Gpt m;
    Tok *tok = NULL;
    if (!CHECKF(hf_import(tiny_dir(), &m, &tok) == 0, "%s", err_msg())) return;
    CHECK(tok && tok_kind(tok) == TOK_BYTE && tok_vocab_size(tok) == 257);
    tok_free(tok);
    gpt_free(&m);
}

TEST(st_open_tiny_fixture_header) {
    if (!has_fixture()) return;
    StFile *f = st_open(harness_join(tiny_dir(), "model.safetensors"));
    if (!CHECKF(f != NULL, "%s", err_msg())) return;
    CHECK(f->n_tensors == 4 + 12 * 2);
    CHECK(st_metadata(f, "format") && !strcmp(st_metadata(f, "format"), "pt"));
    const StTensor *t = st_find(f, "h.1.mlp.c_fc.weight"); /* offsets from the numpy reader */
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 32 && t->shape[1] == 128);
    CHECK(t && t->begin == 68736 && t->end == 85120);
    CHECK(st_find(f, "lm_head.weight") == NULL);
    st_close(f);
}

/* ---- round trips -------------------------------------------------------- */

TEST(hf_round_trip_lm_bit_exact) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    gpt_init(&m, &c);
    fill_params(&m, 11);
    const char *dir = harness_join(scratch("rt_lm"), "nested/out"); /* parents created */
    check_round_trip(&m, NULL, dir);

    json_t *j = load_json(harness_join(dir, "config.json"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "model_type")), "gpt2"));
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(j, "architectures"), 0)), "GPT2LMHeadModel"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "activation_function")), "gelu_new"));
    CHECK(json_real_value(json_object_get(j, "layer_norm_epsilon")) == 1e-5);
    CHECK(json_real_value(json_object_get(j, "attn_pdrop")) == 0.1);
    CHECK(json_integer_value(json_object_get(j, "n_positions")) == 16);
    CHECK(json_integer_value(json_object_get(j, "n_ctx")) == 16);
    CHECK(json_integer_value(json_object_get(j, "eos_token_id")) == 256);
    CHECK(json_object_get(j, "num_labels") == NULL);
    json_decref(j);

    StFile *f = st_open(harness_join(dir, "model.safetensors"));
    if (CHECKF(f != NULL, "%s", err_msg())) {
        CHECK(f->n_tensors == m.n_tensors);
        CHECK(f->data_start % 8 == 0); /* header padded like Hugging Face's */
        CHECK(st_metadata(f, "format") && !strcmp(st_metadata(f, "format"), "pt"));
        const StTensor *t = st_find(f, "h.1.attn.c_attn.weight");
        CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 8 && t->shape[1] == 24);
        st_close(f);
    }
    size_t n;
    char *cfg = harness_read_file(harness_join(dir, "config.json"), &n);
    CHECK(cfg && strstr(cfg, "\"layer_norm_epsilon\": 1e-5") && strstr(cfg, "\"attn_pdrop\": 0.1,"));
    free(cfg);
    gpt_free(&m);
}

TEST(hf_round_trip_scalar_head_bit_exact) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_SCALAR);
    gpt_init(&m, &c);
    fill_params(&m, 12);
    CHECK(m.p.score_w[0] != 0 && m.p.score_b[0] != 0);
    const char *dir = scratch("rt_scalar");
    check_round_trip(&m, NULL, dir);
    json_t *j = load_json(harness_join(dir, "config.json"));
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(j, "architectures"), 0)),
                  "GPT2ForSequenceClassification"));
    CHECK(json_integer_value(json_object_get(j, "num_labels")) == 1);
    json_decref(j);
    gpt_free(&m);
}

TEST(hf_round_trip_with_byte_tokenizer) {
    if (!tok_available()) return;
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    gpt_init(&m, &c);
    fill_params(&m, 13);
    Tok *tok = tok_byte_new();
    const char *dir = scratch("rt_tok");
    check_round_trip(&m, tok, dir);
    size_t n;
    char *merges = harness_read_file(harness_join(dir, "merges.txt"), &n);
    CHECK(merges && !strcmp(merges, "#version: 0.2\n"));
    free(merges);
    size_t vn;
    char *want = tok_byte_vocab_json(&vn), *got = harness_read_file(harness_join(dir, "vocab.json"), &n);
    CHECK(want && got && n == vn && !memcmp(want, got, n));
    free(want);
    free(got);
    /* A model whose vocabulary differs from the tokenizer's is refused. */
    Gpt big;
    GptConfig cb = c;
    cb.vocab_size = 300;
    gpt_init(&big, &cb);
    CHECK(hf_export(scratch("rt_tok_bad"), &big, tok) == -1 && strstr(err_msg(), "vocab_size"));
    gpt_free(&big);
    tok_free(tok);
    gpt_free(&m);
}

/* A real BPE tokenizer (the fixture's byte vocabulary plus one merge) is
 * exported with its original file contents, byte for byte. */
TEST(hf_round_trip_with_gpt2_tokenizer) {
    if (!has_fixture() || !tok_available()) return;
    const char *dir = scratch("rt_bpe");
    size_t n;
    char *bytes = harness_read_file(harness_join(tiny_dir(), "vocab.json"), &n);
    char *close = bytes ? strrchr(bytes, '}') : NULL;
    if (!CHECK(close)) {
        free(bytes);
        return;
    }
    *close = 0;
    char vocab[8192];
    snprintf(vocab, sizeof vocab, "%s,\"he\":257}\n", bytes);
    free(bytes);
    const char *merges = "#version: 0.2\nh e\n";
    harness_write_file(harness_join(dir, "v.json"), vocab, strlen(vocab));
    harness_write_file(harness_join(dir, "m.txt"), merges, strlen(merges));
    Tok *tok = tok_gpt2_load(harness_join(dir, "v.json"), harness_join(dir, "m.txt"));
    if (!CHECKF(tok != NULL, "%s", err_msg())) return;
    CHECK(tok_kind(tok) == TOK_GPT2 && tok_vocab_size(tok) == 258 && !tok_is_plain_bytes(tok));

    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    c.vocab_size = 258;
    gpt_init(&m, &c);
    fill_params(&m, 17);
    const char *out = harness_join(dir, "out");
    check_round_trip(&m, tok, out);
    char *v2 = harness_read_file(harness_join(out, "vocab.json"), NULL),
         *m2 = harness_read_file(harness_join(out, "merges.txt"), NULL);
    CHECK(v2 && !strcmp(v2, vocab));
    CHECK(m2 && !strcmp(m2, merges));
    json_t *j = load_json(harness_join(out, "config.json"));
    CHECK(json_integer_value(json_object_get(j, "eos_token_id")) == 256); /* <|endoftext|>, not the last id */
    json_decref(j);
    free(v2);
    free(m2);
    gpt_free(&m);
    tok_free(tok);
}

/* ---- key-name variants -------------------------------------------------- */

typedef struct {
    const char *prefix;   /* prepended to every model tensor name */
    const char *skip;     /* model tensor left out */
    const char *shrink;   /* model tensor written with its first dim - 1 */
    const StWriteTensor *extra;
    int n_extra;
} StVariant;

static int write_variant(const char *path, const Gpt *m, const StVariant *v) {
    int n = 0;
    StWriteTensor *w = calloc((size_t)m->n_tensors + (size_t)v->n_extra, sizeof *w);
    int64_t(*shape)[2] = calloc((size_t)m->n_tensors, sizeof *shape);
    char(*names)[96] = calloc((size_t)m->n_tensors, sizeof *names);
    for (int i = 0; i < m->n_tensors; i++) {
        const GptTensor *g = &m->tensors[i];
        if (v->skip && !strcmp(g->name, v->skip)) continue;
        snprintf(names[i], sizeof names[i], "%s%s", v->prefix ? v->prefix : "", g->name);
        shape[i][0] = g->shape[0] - (v->shrink && !strcmp(g->name, v->shrink));
        shape[i][1] = g->shape[1];
        w[n++] = (StWriteTensor){.name = names[i], .ndim = g->ndim, .shape = shape[i], .data = m->params + g->offset};
    }
    for (int i = 0; i < v->n_extra; i++) w[n++] = v->extra[i];
    int rc = st_write_f32(path, w, n);
    free(names);
    free(shape);
    free(w);
    return rc;
}

/* A directory holding m's config.json and a model.safetensors variant. */
static const char *variant_dir(const char *name, const Gpt *m, const StVariant *v) {
    const char *dir = scratch(name);
    CHECKF(hf_export(dir, m, NULL) == 0, "%s", err_msg());
    CHECKF(write_variant(harness_join(dir, "model.safetensors"), m, v) == 0, "%s", err_msg());
    return dir;
}

/* Like GPT2LMHeadModel.save_pretrained: "transformer." keys, a tied
 * lm_head.weight and the attention mask buffers of older transformers. */
TEST(hf_import_prefixed_keys_lm_head_and_mask_buffers) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    gpt_init(&m, &c);
    fill_params(&m, 14);
    float mask[16 * 16] = {0}, masked_bias = -1e4f;
    int64_t mask_shape[4] = {1, 1, 16, 16}, lm_shape[2] = {257, 8};
    StWriteTensor extra[] = {
        {.name = "lm_head.weight", .ndim = 2, .shape = lm_shape, .data = m.p.wte},
        {.name = "transformer.h.0.attn.bias", .ndim = 4, .shape = mask_shape, .data = mask},
        {.name = "transformer.h.1.attn.bias", .ndim = 4, .shape = mask_shape, .data = mask},
        {.name = "transformer.h.1.attn.masked_bias", .ndim = 0, .shape = NULL, .data = &masked_bias}};
    StVariant v = {.prefix = "transformer.", .extra = extra, .n_extra = 4};
    const char *dir = variant_dir("prefixed", &m, &v);
    Gpt b;
    if (CHECKF(hf_import(dir, &b, NULL) == 0, "%s", err_msg())) {
        CHECK(b.n_params == m.n_params && !memcmp(b.params, m.params, m.n_params * sizeof(float)));
        gpt_free(&b);
    }

    /* An untied lm_head is refused. */
    float *other = malloc(257 * 8 * sizeof(float));
    memcpy(other, m.p.wte, 257 * 8 * sizeof(float));
    other[257 * 8 - 1] += 1.0f;
    extra[0].data = other;
    dir = variant_dir("untied", &m, &v);
    CHECK(hf_import(dir, &b, NULL) == -1 && strstr(err_msg(), "lm_head.weight") &&
          strstr(err_msg(), "model.safetensors"));
    free(other);

    /* A tensor our model does not have is refused, not silently dropped. */
    StWriteTensor odd = {.name = "transformer.h.0.attn.q_proj.weight", .ndim = 2, .shape = lm_shape, .data = m.p.wte};
    StVariant v2 = {.prefix = "transformer.", .extra = &odd, .n_extra = 1};
    dir = variant_dir("unexpected", &m, &v2);
    CHECK(hf_import(dir, &b, NULL) == -1 && strstr(err_msg(), "h.0.attn.q_proj.weight"));

    /* The same tensor with and without the prefix is ambiguous. */
    int64_t ln_shape[1] = {8};
    StWriteTensor dup = {.name = "ln_f.bias", .ndim = 1, .shape = ln_shape, .data = m.p.lnf_b};
    StVariant v3 = {.prefix = "transformer.", .extra = &dup, .n_extra = 1};
    dir = variant_dir("dup", &m, &v3);
    CHECK(hf_import(dir, &b, NULL) == -1 && strstr(err_msg(), "ln_f.bias"));
    gpt_free(&m);
}

/* GPT2ForSequenceClassification's score layer has no bias. */
TEST(hf_import_classifier_without_score_bias) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_SCALAR);
    gpt_init(&m, &c);
    fill_params(&m, 15);
    StVariant v = {.skip = "score.bias"};
    const char *dir = variant_dir("nobias", &m, &v);
    Gpt b;
    if (CHECKF(hf_import(dir, &b, NULL) == 0, "%s", err_msg())) {
        CHECK(b.cfg.head == GPT_HEAD_SCALAR && b.p.score_b[0] == 0.0f);
        CHECK(!memcmp(b.p.score_w, m.p.score_w, 8 * sizeof(float)));
        gpt_free(&b);
    }
    /* config says classifier but the file has no score.weight */
    StVariant v2 = {.skip = "score.weight"};
    dir = variant_dir("noscore", &m, &v2);
    CHECK(hf_import(dir, &b, NULL) == -1 && strstr(err_msg(), "missing tensor 'score.weight'"));
    gpt_free(&m);
}

/* ---- half precision ----------------------------------------------------- */

TEST(st_half_precision_decoding) {
    /* IEEE binary16 bit patterns with their exact values. */
    CHECK(st_f16_to_f32(0x3c00) == 1.0f);
    CHECK(st_f16_to_f32(0xc000) == -2.0f);
    CHECK(st_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(st_f16_to_f32(0x7bff) == 65504.0f);               /* largest normal */
    CHECK(st_f16_to_f32(0x0400) == 6.103515625e-05f);       /* smallest normal 2^-14 */
    CHECK(st_f16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal 2^-24 */
    CHECK(st_f16_to_f32(0x03ff) == 6.097555160522461e-05f); /* 1023 * 2^-24 */
    CHECK(st_f16_to_f32(0x7c00) == INFINITY && st_f16_to_f32(0xfc00) == -INFINITY);
    CHECK(isnan(st_f16_to_f32(0x7e00)));
    CHECK(st_f16_to_f32(0x8000) == 0.0f && signbit(st_f16_to_f32(0x8000)));
    CHECK(st_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(st_bf16_to_f32(0xc049) == -3.140625f);
    CHECK(st_bf16_to_f32(0x0001) == 9.183549615799121e-41f);
}

/* A hand-built file with F16 (crossing the reader's chunk size), BF16, F64
 * and I32 tensors. */
TEST(st_read_converts_f16_bf16_f64) {
    enum { NH = 40000 };
    const char *path = harness_join(scratch("half"), "h.safetensors");
    char header[512];
    size_t h16 = 2 * NH, hb = h16 + 2 * 3, hd = hb + 8 * 2, hi = hd + 4;
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[200,200],\"data_offsets\":[0,%zu]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[%zu,%zu]},"
             "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[%zu,%zu]},"
             "\"i\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[%zu,%zu]}}",
             h16, h16, hb, hb, hd, hd, hi);
    size_t hn = strlen(header);
    unsigned char *buf = calloc(1, 8 + hn + hi);
    buf[0] = (unsigned char)hn;
    buf[1] = (unsigned char)(hn >> 8);
    memcpy(buf + 8, header, hn);
    unsigned char *data = buf + 8 + hn;
    for (int i = 0; i < NH; i++) { /* integers 0..2047 are exact in F16 */
        float v = (float)(i % 2048) * (i % 3 ? 1.0f : -1.0f);
        uint32_t bits;
        memcpy(&bits, &v, 4);
        /* float -> half by hand for exact integers: rebias exponent 127 -> 15 */
        uint16_t h = v == 0 ? 0 : (uint16_t)((bits >> 16 & 0x8000) | (((bits >> 23 & 0xff) - 112) << 10) | (bits >> 13 & 0x3ff));
        data[2 * i] = (unsigned char)h;
        data[2 * i + 1] = (unsigned char)(h >> 8);
    }
    const uint16_t bf[3] = {0x3f80, 0xc049, 0x0000};
    memcpy(data + h16, bf, sizeof bf);
    const double dd[2] = {0.25, -1e300};
    memcpy(data + hb, dd, sizeof dd);
    harness_write_file(path, buf, 8 + hn + hi);
    free(buf);

    StFile *f = st_open(path);
    if (!CHECKF(f != NULL, "%s", err_msg())) return;
    float *out = malloc(NH * sizeof(float));
    CHECK(st_read_f32(f, st_find(f, "h"), out) == 0);
    int bad = 0;
    for (int i = 0; i < NH; i++) bad += out[i] != (float)(i % 2048) * (i % 3 ? 1.0f : -1.0f);
    CHECKF(bad == 0, "%d F16 values wrong", bad);
    CHECK(st_read_f32_range(f, st_find(f, "h"), 32767, 3, out) == 0 && out[0] == 32767 % 2048 &&
          out[2] == (32769 % 2048) * -1.0f);
    CHECK(st_read_f32_range(f, st_find(f, "h"), NH - 1, 2, out) == -1 && strstr(err_msg(), "out of range"));
    CHECK(st_read_f32(f, st_find(f, "b"), out) == 0 && out[0] == 1.0f && out[1] == -3.140625f && out[2] == 0);
    CHECK(st_read_f32(f, st_find(f, "d"), out) == 0 && out[0] == 0.25f && out[1] == -INFINITY);
    const StTensor *ti = st_find(f, "i");
    CHECK(ti && ti->ndim == 0 && st_numel(ti) == 1);
    CHECK(st_read_f32(f, ti, out) == -1 && strstr(err_msg(), "I32") && strstr(err_msg(), path));
    free(out);
    st_close(f);
}

/* ---- malformed safetensors ---------------------------------------------- */

/* Writes the header with its true length plus data_bytes of data and
 * expects st_open to fail with a message naming the file and `expect`. */
static void check_bad_header(const char *tag, const char *header, size_t data_bytes, const char *expect) {
    char name[64];
    snprintf(name, sizeof name, "%s.safetensors", tag);
    const char *path = harness_join(scratch("bad_st"), name);
    write_raw_st(path, strlen(header), header, data_bytes);
    err_clear();
    StFile *f = st_open(path);
    CHECKF(f == NULL, "%s: accepted", tag);
    CHECKF(strstr(err_msg(), path) && strstr(err_msg(), expect), "%s: message \"%s\" lacks \"%s\"", tag,
           err_msg(), expect);
    st_close(f);
}

#define ENTRY(dtype, shape, offs) "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

TEST(st_rejects_malformed_headers) {
    /* positive control: the helper writes valid files */
    const char *ok = harness_join(scratch("bad_st"), "ok.safetensors");
    const char *okh = "{\"a\":" ENTRY("F32", "[2,2]", "[0,16]") "}      "; /* trailing padding */
    write_raw_st(ok, strlen(okh), okh, 16);
    StFile *f = st_open(ok);
    CHECKF(f && f->n_tensors == 1 && st_numel(&f->tensors[0]) == 4, "%s", err_msg());
    st_close(f);

    check_bad_header("json", "{\"a\": ", 0, "invalid JSON");
    check_bad_header("root", "[1, 2]", 0, "not a JSON object");
    check_bad_header("entry", "{\"a\": 3}", 0, "'a': entry is not an object");
    check_bad_header("dtype", "{\"a\":" ENTRY("F31", "[1]", "[0,4]") "}", 4, "unknown dtype \"F31\"");
    check_bad_header("nodtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype missing");
    check_bad_header("shape_num", "{\"a\":" ENTRY("F32", "4", "[0,16]") "}", 16, "shape must be a list");
    check_bad_header("shape_neg", "{\"a\":" ENTRY("F32", "[-1]", "[0,0]") "}", 0, "shape[0]");
    check_bad_header("shape_real", "{\"a\":" ENTRY("F32", "[2.5]", "[0,8]") "}", 8, "shape[0]");
    check_bad_header("shape_str", "{\"a\":" ENTRY("F32", "[2,\"2\"]", "[0,16]") "}", 16, "shape[1]");
    check_bad_header("shape_dims", "{\"a\":" ENTRY("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, "dimensions");
    check_bad_header("shape_huge", "{\"a\":" ENTRY("F32", "[4611686018427387904,4]", "[0,16]") "}", 16, "too large");
    check_bad_header("offs_one", "{\"a\":" ENTRY("F32", "[1]", "[0]") "}", 4, "data_offsets must be");
    check_bad_header("offs_str", "{\"a\":" ENTRY("F32", "[1]", "[\"0\",4]") "}", 4, "data_offsets must be");
    check_bad_header("offs_neg", "{\"a\":" ENTRY("F32", "[1]", "[-4,0]") "}", 4, "data_offsets must be");
    check_bad_header("offs_order", "{\"a\":" ENTRY("F32", "[1]", "[8,4]") "}", 8, "begin 8 > end 4");
    check_bad_header("offs_past_end", "{\"a\":" ENTRY("F32", "[100]", "[0,400]") "}", 16, "beyond the data");
    check_bad_header("offs_overflow", "{\"a\":" ENTRY("F32", "[1]", "[0,18446744073709551615]") "}", 4,
                     "invalid JSON");
    check_bad_header("length", "{\"a\":" ENTRY("F32", "[3]", "[0,16]") "}", 16, "need 12");
    check_bad_header("length_f16", "{\"a\":" ENTRY("F16", "[4]", "[0,16]") "}", 16, "need 8");
    check_bad_header("overlap",
                     "{\"a\":" ENTRY("F32", "[2]", "[0,8]") ",\"b\":" ENTRY("F32", "[2]", "[4,12]") "}", 12,
                     "overlap");
    check_bad_header("dup_key",
                     "{\"a\":" ENTRY("F32", "[1]", "[0,4]") ",\"a\":" ENTRY("F32", "[1]", "[4,8]") "}", 8,
                     "duplicate");
    check_bad_header("meta", "{\"__metadata__\": [1]}", 0, "__metadata__ is not an object");
    check_bad_header("meta_val", "{\"__metadata__\": {\"format\": 1}}", 0, "\"format\" is not a string");

    /* Empty tensors may share an offset; the rest must not overlap. */
    const char *empty = harness_join(scratch("bad_st"), "empty.safetensors");
    const char *eh = "{\"a\":" ENTRY("F32", "[0]", "[4,4]") ",\"b\":" ENTRY("F32", "[1]", "[0,4]") "}";
    write_raw_st(empty, strlen(eh), eh, 4);
    f = st_open(empty);
    CHECKF(f != NULL, "%s", err_msg());
    st_close(f);
}

TEST(st_rejects_bad_length_prefix) {
    const char *dir = scratch("bad_len");
    const char *shortf = harness_join(dir, "short.safetensors");
    harness_write_file(shortf, "\x05\0\0\0\0", 5);
    CHECK(st_open(shortf) == NULL && strstr(err_msg(), shortf) && strstr(err_msg(), "too short"));

    const char *h = "{\"a\":" ENTRY("F32", "[1]", "[0,4]") "}";
    const char *longer = harness_join(dir, "longer.safetensors");
    write_raw_st(longer, 1000, h, 4);
    CHECK(st_open(longer) == NULL && strstr(err_msg(), longer) && strstr(err_msg(), "larger than the file"));

    const char *huge = harness_join(dir, "huge.safetensors");
    write_raw_st(huge, (uint64_t)1 << 40, h, 4);
    CHECK(st_open(huge) == NULL && strstr(err_msg(), huge) && strstr(err_msg(), "limit"));
    write_raw_st(huge, UINT64_MAX, h, 4);
    CHECK(st_open(huge) == NULL && strstr(err_msg(), "limit"));

    const char *zero = harness_join(dir, "zero.safetensors");
    write_raw_st(zero, 0, "", 0);
    CHECK(st_open(zero) == NULL && strstr(err_msg(), zero) && strstr(err_msg(), "invalid JSON"));

    CHECK(st_open(harness_join(dir, "absent.safetensors")) == NULL && strstr(err_msg(), "cannot open"));
}

TEST(st_write_rejects_bad_tensors) {
    const char *path = harness_join(scratch("st_write"), "w.safetensors");
    float x[2] = {1, 2};
    int64_t s[1] = {2}, neg[1] = {-1};
    StWriteTensor dup[2] = {{.name = "a", .ndim = 1, .shape = s, .data = x},
                            {.name = "a", .ndim = 1, .shape = s, .data = x}};
    CHECK(st_write_f32(path, dup, 2) == -1 && strstr(err_msg(), "duplicate") && strstr(err_msg(), path));
    StWriteTensor meta = {.name = "__metadata__", .ndim = 1, .shape = s, .data = x};
    CHECK(st_write_f32(path, &meta, 1) == -1 && strstr(err_msg(), "invalid tensor name"));
    StWriteTensor bad = {.name = "a", .ndim = 1, .shape = neg, .data = x};
    CHECK(st_write_f32(path, &bad, 1) == -1 && strstr(err_msg(), "negative"));
    struct stat sb;
    CHECK(stat(path, &sb) != 0); /* nothing written */
    CHECK(st_write_f32("/nonexistent-dir/w.safetensors", dup, 1) == -1 && strstr(err_msg(), "cannot create"));
}

/* Two exports into one directory at once could leave one's config.json
 * beside the other's weights (tests/cli/hostile.sh saw it in 4 of 100
 * runs): an export holds an flock on the directory, and one finding it
 * held is refused, naming the directory, with nothing written. flock locks
 * belong to an open file description, so this test's own open + flock
 * stands for the other process. */
TEST(hf_export_refuses_a_directory_being_exported) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    gpt_init(&m, &c);
    const char *dir = scratch("export_locked");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    CHECK(hf_export(dir, &m, NULL) == -1);
    CHECK_ERR(dir, ": in use by another export");
    struct stat sb;
    CHECK(stat(harness_join(dir, "config.json"), &sb) != 0 && stat(harness_join(dir, "model.safetensors"), &sb) != 0);
    close(fd);
    CHECKF(hf_export(dir, &m, NULL) == 0, "%s", err_msg());
    gpt_free(&m);
}

/* ---- malformed directories ---------------------------------------------- */

/* A copy of an exported small model with config.json replaced by cfg. */
static const char *dir_with_config(const char *name, const char *cfg) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    gpt_init(&m, &c);
    const char *dir = scratch(name);
    CHECKF(hf_export(dir, &m, NULL) == 0, "%s", err_msg());
    gpt_free(&m);
    if (cfg) harness_write_file(harness_join(dir, "config.json"), cfg, strlen(cfg));
    return dir;
}

static void check_import_fails(const char *dir, const char *file, const char *expect) {
    Gpt m;
    memset(&m, 0xab, sizeof m);
    err_clear();
    int rc = hf_import(dir, &m, NULL);
    CHECKF(rc == -1, "%s: accepted", dir);
    CHECKF(strstr(err_msg(), file) && strstr(err_msg(), expect), "%s: message \"%s\" lacks \"%s\" / \"%s\"", dir,
           err_msg(), file, expect);
    CHECK(m.params == NULL && m.tensors == NULL); /* nothing left allocated */
    if (rc == 0) gpt_free(&m);
}

#define CFG_BASE "\"vocab_size\": 257, \"n_positions\": 16, \"n_layer\": 2"

TEST(hf_import_rejects_bad_config) {
    /* positive control: a minimal hand-written config loads */
    const char *d = dir_with_config("cfg_ok", "{" CFG_BASE ", \"n_embd\": 8, \"n_head\": 2}");
    Gpt m;
    CHECKF(hf_import(d, &m, NULL) == 0, "%s", err_msg());
    gpt_free(&m);
    d = dir_with_config("cfg_nctx", "{\"vocab_size\": 257, \"n_ctx\": 16, \"n_layer\": 2, \"n_embd\": 8, \"n_head\": 2}");
    CHECKF(hf_import(d, &m, NULL) == 0 && m.cfg.n_ctx == 16, "%s", err_msg());
    gpt_free(&m);

    check_import_fails(dir_with_config("cfg_json", "{" CFG_BASE ",\n \"n_embd\": 8,,\n}"), "config.json", "line 2");
    check_import_fails(dir_with_config("cfg_array", "[1]"), "config.json", "not a JSON object");
    check_import_fails(dir_with_config("cfg_noembd", "{" CFG_BASE ", \"n_head\": 2}"), "config.json", "\"n_embd\"");
    check_import_fails(dir_with_config("cfg_nopos", "{\"vocab_size\": 257, \"n_layer\": 2, \"n_embd\": 8, \"n_head\": 2}"),
                       "config.json", "n_positions");
    check_import_fails(dir_with_config("cfg_div", "{" CFG_BASE ", \"n_embd\": 8, \"n_head\": 3}"), "config.json",
                       "multiple of n_head");
    check_import_fails(dir_with_config("cfg_str", "{" CFG_BASE ", \"n_embd\": \"8\", \"n_head\": 2}"), "config.json",
                       "\"n_embd\" must be a positive integer");
    check_import_fails(dir_with_config("cfg_zero", "{" CFG_BASE ", \"n_embd\": 0, \"n_head\": 2}"), "config.json",
                       "\"n_embd\"");
    check_import_fails(
        dir_with_config("cfg_act", "{" CFG_BASE ", \"n_embd\": 8, \"n_head\": 2, \"activation_function\": \"relu\"}"),
        "config.json", "\"activation_function\" is \"relu\"");
    check_import_fails(
        dir_with_config("cfg_type", "{" CFG_BASE ", \"n_embd\": 8, \"n_head\": 2, \"model_type\": \"llama\"}"),
        "config.json", "\"model_type\"");
    check_import_fails(dir_with_config("cfg_eps", "{" CFG_BASE ", \"n_embd\": 8, \"n_head\": 2, \"layer_norm_epsilon\": 1e-6}"),
                       "config.json", "layer_norm_epsilon");
    check_import_fails(dir_with_config("cfg_inner", "{" CFG_BASE ", \"n_embd\": 8, \"n_head\": 2, \"n_inner\": 16}"),
                       "config.json", "n_inner");
    check_import_fails(dir_with_config("cfg_scale", "{" CFG_BASE ", \"n_embd\": 8, \"n_head\": 2, \"scale_attn_by_inverse_layer_idx\": true}"),
                       "config.json", "scale_attn_by_inverse_layer_idx");
    /* absurd sizes are caught before anything is allocated */
    check_import_fails(dir_with_config("cfg_huge", "{" CFG_BASE ", \"n_embd\": 65536, \"n_head\": 2}"),
                       "model.safetensors", "implies");
    check_import_fails(scratch("cfg_missing_dir"), "config.json", "config.json");
}

TEST(hf_import_rejects_bad_weights) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    gpt_init(&m, &c);
    fill_params(&m, 16);

    const char *dir = dir_with_config("w_absent", NULL);
    remove(harness_join(dir, "model.safetensors"));
    check_import_fails(dir, "model.safetensors", "cannot open");

    StVariant missing = {.skip = "h.0.ln_2.bias"};
    check_import_fails(variant_dir("w_missing", &m, &missing), "model.safetensors", "missing tensor 'h.0.ln_2.bias'");

    StVariant shape = {.shrink = "h.1.mlp.c_fc.weight"};
    check_import_fails(variant_dir("w_shape", &m, &shape), "model.safetensors",
                       "'h.1.mlp.c_fc.weight' has shape [7, 32], expected [8, 32]");

    StVariant vocab = {.shrink = "wte.weight"};
    check_import_fails(variant_dir("w_vocab", &m, &vocab), "model.safetensors",
                       "'wte.weight' has 256 rows but config.json vocab_size is 257");

    /* corrupt file: valid JSON header, but a tensor's data runs off the end */
    dir = dir_with_config("w_trunc", NULL);
    const char *st = harness_join(dir, "model.safetensors");
    size_t n;
    char *raw = harness_read_file(st, &n);
    harness_write_file(st, raw, n - 4);
    free(raw);
    check_import_fails(dir, "model.safetensors", "beyond the data");
    gpt_free(&m);
}

TEST(hf_import_rejects_tokenizer_mismatch) {
    if (!has_fixture() || !tok_available()) return;
    const char *dir = scratch("tok_mismatch");
    copy_file(harness_join(tiny_dir(), "vocab.json"), harness_join(dir, "vocab.json"));
    copy_file(harness_join(tiny_dir(), "merges.txt"), harness_join(dir, "merges.txt"));
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    c.vocab_size = 300;
    gpt_init(&m, &c);
    CHECKF(hf_export(dir, &m, NULL) == 0, "%s", err_msg()); /* keeps the copied 257-token vocab.json */
    gpt_free(&m);
    Tok *tok = (Tok *)1;
    CHECK(hf_import(dir, &m, &tok) == -1 && strstr(err_msg(), "vocab.json") && strstr(err_msg(), "300"));
    CHECK(tok == NULL);
    remove(harness_join(dir, "vocab.json"));
    CHECK(hf_import(dir, &m, &tok) == -1 && strstr(err_msg(), "vocab.json"));
}

/* Overwrites element k of tensor name (F32) in dir/model.safetensors with v. */
static void poke_st(const char *dir, const char *name, size_t k, float v) {
    const char *path = harness_join(dir, "model.safetensors");
    StFile *f = st_open(path);
    if (!CHECKF(f != NULL, "%s", err_msg())) return;
    const StTensor *t = st_find(f, name);
    int f32 = t && t->dtype == ST_F32;
    size_t at = t ? (size_t)(f->data_start + t->begin) + 4 * k : 0;
    st_close(f);
    size_t n;
    char *raw = harness_read_file(path, &n);
    if (CHECK(f32 && raw && at + 4 <= n)) {
        memcpy(raw + at, &v, 4); /* little-endian host, as the format */
        harness_write_file(path, raw, n);
    }
    free(raw);
}

TEST(hf_import_refuses_nonfinite_weights) {
    Gpt m;
    GptConfig c = small_config(GPT_HEAD_LM);
    gpt_init(&m, &c);
    fill_params(&m, 17);
    const char *dir = scratch("w_inf");
    CHECKF(hf_export(dir, &m, NULL) == 0, "%s", err_msg());
    poke_st(dir, "h.1.mlp.c_fc.weight", 5, INFINITY);
    check_import_fails(dir, "model.safetensors", "tensor h.1.mlp.c_fc.weight holds Inf at element 5");
    dir = scratch("w_nan");
    CHECKF(hf_export(dir, &m, NULL) == 0, "%s", err_msg());
    poke_st(dir, "wte.weight", 0, NAN);
    check_import_fails(dir, "model.safetensors", "tensor wte.weight holds NaN at element 0");
    gpt_free(&m);
}
