/* hf — Hugging Face GPT-2 directory import/export; see hf.h. config.json is
 * read and written with jansson, weights through safetensors.h. Import
 * checks everything (config, shapes, the size the file can hold) before it
 * allocates the model, so a bad directory gives a message, never a crash. */
#include "common/io/hf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/safetensors.h"

#define HF_PREFIX "transformer."

const char *const hf_files[HF_N_FILES] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};

/* ---- config.json -------------------------------------------------------- */

/* A positive int field: 1 found, 0 absent, -1 invalid. */
static int cfg_int(const json_t *root, const char *key, int *out) {
    const json_t *v = json_object_get(root, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT_MAX)
        return err_set("field \"%s\" must be a positive integer", key);
    *out = (int)json_integer_value(v);
    return 1;
}

static int cfg_required_int(const json_t *root, const char *key, int *out) {
    int r = cfg_int(root, key, out);
    if (r == 0) return err_set("missing field \"%s\"", key);
    return r < 0 ? -1 : 0;
}

/* A string field, if present, must be one of the allowed values (b may be NULL). */
static int cfg_string_in(const json_t *root, const char *key, const char *a, const char *b) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    const char *s = json_string_value(v);
    if (!s) return err_set("field \"%s\" is not a string", key);
    if (!strcmp(s, a) || (b && !strcmp(s, b))) return 0;
    if (b) return err_set("field \"%s\" is \"%s\", expected \"%s\" or \"%s\"", key, s, a, b);
    return err_set("field \"%s\" is \"%s\", expected \"%s\"", key, s, a);
}

/* Options that would change the computation our model does. */
static int cfg_check_semantics(const json_t *root, int n_embd) {
    const json_t *v = json_object_get(root, "layer_norm_epsilon");
    if (v && (!json_is_number(v) || fabs(json_number_value(v) - 1e-5) > 1e-12))
        return err_set("field \"layer_norm_epsilon\" must be 1e-5 (the only value supported)");
    if (json_is_false(json_object_get(root, "scale_attn_weights")))
        return err_set("field \"scale_attn_weights\": false is not supported");
    if (json_is_true(json_object_get(root, "scale_attn_by_inverse_layer_idx")))
        return err_set("field \"scale_attn_by_inverse_layer_idx\": true is not supported");
    if (json_is_true(json_object_get(root, "add_cross_attention")))
        return err_set("field \"add_cross_attention\": true is not supported");
    v = json_object_get(root, "n_inner");
    if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) != 4 * (json_int_t)n_embd))
        return err_set("field \"n_inner\" must be null or 4 * n_embd = %d", 4 * n_embd);
    return 0;
}

/* 1 if "architectures" names the sequence-classification model. */
static int cfg_is_classifier(const json_t *root) {
    const json_t *a = json_object_get(root, "architectures");
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *s = json_string_value(v);
        if (s && !strcmp(s, "GPT2ForSequenceClassification")) return 1;
    }
    return 0;
}

static int parse_config(const json_t *root, GptConfig *c, int *classifier) {
    if (!json_is_object(root)) return err_set("not a JSON object");
    if (cfg_string_in(root, "model_type", "gpt2", NULL) ||
        cfg_string_in(root, "activation_function", "gelu_new", "gelu_pytorch_tanh"))
        return -1;
    if (cfg_required_int(root, "n_embd", &c->n_embd) || cfg_required_int(root, "n_layer", &c->n_layer) ||
        cfg_required_int(root, "n_head", &c->n_head) || cfg_required_int(root, "vocab_size", &c->vocab_size))
        return -1;
    int r = cfg_int(root, "n_positions", &c->n_ctx);
    if (r == 0) r = cfg_int(root, "n_ctx", &c->n_ctx); /* older configs */
    if (r == 0) return err_set("missing field \"n_positions\" (or \"n_ctx\")");
    if (r < 0 || cfg_check_semantics(root, c->n_embd)) return -1;
    *classifier = cfg_is_classifier(root);
    return 0;
}

static int read_config(const char *path, GptConfig *c, int *classifier) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line < 1) return err_set("%s: %s", path, je.text);
        return err_set("%s: line %d: invalid JSON: %s", path, je.line, je.text);
    }
    int rc = parse_config(root, c, classifier);
    json_decref(root);
    if (!rc) rc = gpt_config_validate(c);
    if (rc) err_prefix("%s: ", path);
    return rc;
}

/* ---- model.safetensors -------------------------------------------------- */

/* A tensor by its Hugging Face name, with or without "transformer.". */
static const StTensor *find_hf(const StFile *f, const char *name) {
    const StTensor *t = st_find(f, name);
    if (t) return t;
    char buf[128];
    snprintf(buf, sizeof buf, HF_PREFIX "%s", name);
    return st_find(f, buf);
}

static const char *strip_prefix(const char *name) {
    size_t k = strlen(HF_PREFIX);
    return strncmp(name, HF_PREFIX, k) ? name : name + k;
}

/* The causal-mask buffers older transformers versions saved. */
static int is_mask_buffer(const char *name) {
    int layer, end = 0;
    if (sscanf(name, "h.%d.attn.bias%n", &layer, &end) == 1 && end && !name[end]) return 1;
    end = 0;
    return sscanf(name, "h.%d.attn.masked_bias%n", &layer, &end) == 1 && end && !name[end];
}

/* Every tensor in the file must be one we load or know to ignore. */
static int check_tensor_names(const StFile *f, const Gpt *m) {
    for (int i = 0; i < f->n_tensors; i++) {
        const char *full = f->tensors[i].name, *name = strip_prefix(full);
        if (name != full && st_find(f, name))
            return err_set("%s: tensor '%s' appears both with and without the \"" HF_PREFIX "\" prefix",
                           f->path, name);
        if (!strcmp(name, "lm_head.weight") || is_mask_buffer(name)) continue;
        if (!gpt_find_tensor(m, name))
            return err_set("%s: unexpected tensor '%s' (not part of a GPT-2 model with this config)",
                           f->path, full);
    }
    return 0;
}

static void format_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int check_shape(const StFile *f, const StTensor *t, const GptTensor *g, const GptConfig *c) {
    int64_t want[2] = {g->shape[0], g->shape[1]};
    int same = t->ndim == g->ndim;
    for (int d = 0; same && d < g->ndim; d++) same = t->shape[d] == want[d];
    if (same) return 0;
    if (!strcmp(g->name, "wte.weight") && t->ndim == 2 && t->shape[1] == c->n_embd)
        return err_set("%s: tensor '%s' has %lld rows but config.json vocab_size is %d", f->path,
                       t->name, (long long)t->shape[0], c->vocab_size);
    char got[128], exp[64];
    format_shape(got, sizeof got, t->ndim, t->shape);
    format_shape(exp, sizeof exp, g->ndim, want);
    return err_set("%s: tensor '%s' has shape %s, expected %s", f->path, t->name, got, exp);
}

/* Shapes first (cheap), so nothing is read from a mismatched file. */
static int check_all_shapes(const StFile *f, const Gpt *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const GptTensor *g = &m->tensors[i];
        const StTensor *t = find_hf(f, g->name);
        if (!t && !strcmp(g->name, "score.bias")) continue; /* HF's score has no bias */
        if (!t) return err_set("%s: missing tensor '%s'", f->path, g->name);
        if (check_shape(f, t, g, &m->cfg)) return -1;
    }
    const StTensor *lm = find_hf(f, "lm_head.weight");
    const GptTensor *wte = gpt_find_tensor(m, "wte.weight");
    return lm ? check_shape(f, lm, wte, &m->cfg) : 0;
}

static int read_all_tensors(const StFile *f, Gpt *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const StTensor *t = find_hf(f, m->tensors[i].name);
        if (t && st_read_f32(f, t, m->params + m->tensors[i].offset)) return -1;
    }
    /* NaN/Inf (stored, or F16/BF16 infinities) is refused here, naming the tensor */
    if (gpt_check_finite(m, m->params)) return err_prefix("%s: ", f->path);
    return 0;
}

/* A stored lm_head.weight is accepted only if it is the tied wte. */
static int check_lm_head_tied(const StFile *f, const Gpt *m) {
    const StTensor *lm = find_hf(f, "lm_head.weight");
    if (!lm) return 0;
    enum { CHUNK = 1 << 14 };
    float *buf = err_malloc(CHUNK * sizeof(float));
    size_t n = st_numel(lm);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        rc = st_read_f32_range(f, lm, i, k, buf);
        if (!rc && memcmp(buf, m->p.wte + i, k * sizeof(float)))
            rc = err_set("%s: tensor '%s' differs from wte.weight: untied output embeddings are not supported",
                         f->path, lm->name);
    }
    free(buf);
    return rc;
}

/* Parameters the config implies, in 64-bit arithmetic (no allocation). */
static double implied_params(const GptConfig *c) {
    double C = c->n_embd;
    return (double)c->vocab_size * C + (double)c->n_ctx * C + (double)c->n_layer * (12 * C * C + 13 * C) +
           2 * C;
}

/* The file must hold at least 2 bytes (F16) per parameter: this stops an
 * absurd config.json from making gpt_init allocate terabytes. */
static int check_file_can_hold(const StFile *f, const GptConfig *c) {
    double need = 2 * implied_params(c);
    if (need > (double)f->data_size)
        return err_set("%s: config.json implies %.0f parameters but the file holds only %llu bytes of data",
                       f->path, implied_params(c), (unsigned long long)f->data_size);
    return 0;
}

static int load_weights(const char *path, GptConfig *c, int classifier, Gpt *m) {
    StFile *f = st_open(path);
    if (!f) return -1;
    if (classifier || find_hf(f, "score.weight")) c->head = GPT_HEAD_SCALAR;
    int rc = check_file_can_hold(f, c);
    if (!rc) rc = gpt_init(m, c);
    if (!rc) rc = check_tensor_names(f, m);
    if (!rc) rc = check_all_shapes(f, m);
    if (!rc) rc = read_all_tensors(f, m);
    if (!rc) rc = check_lm_head_tied(f, m);
    if (rc) gpt_free(m);
    st_close(f);
    return rc;
}

/* ---- tokenizer ---------------------------------------------------------- */

static Tok *load_tokenizer(const char *dir, int vocab_size) {
    char *vp = fs_join(dir, "vocab.json"); /* for the messages below */
    err_clear();
    Tok *t = tok_gpt2_load_dir(dir);
    if (!t && !err_msg()[0]) err_set("%s: cannot load the tokenizer", vp);
    if (t && tok_is_plain_bytes(t)) {
        tok_free(t);
        t = tok_byte_new();
    }
    if (t && tok_vocab_size(t) != vocab_size) {
        err_set("%s: tokenizer has %d tokens but config.json vocab_size is %d", vp, tok_vocab_size(t),
                vocab_size);
        tok_free(t);
        t = NULL;
    }
    free(vp);
    return t;
}

/* Every file of the directory is stat'ed before anything is opened: a
 * FIFO among them would block open() (fs_check_input). */
static int check_inputs(const char *dir) {
    int rc = 0;
    for (int i = 0; i < HF_N_FILES && !rc; i++) {
        char *p = fs_join(dir, hf_files[i]);
        rc = fs_check_input(p, "a file of a Hugging Face directory");
        free(p);
    }
    return rc;
}

/* 1 if DIR/NAME exists (anything: the message only names it). */
static int dir_has(const char *dir, const char *name) {
    char *p = fs_join(dir, name);
    struct stat st;
    int has = !lstat(p, &st);
    free(p);
    return has;
}

/* The rule for weights: import reads one model.safetensors. A directory
 * without it but with the weights in another form transformers writes
 * (sharded safetensors, PyTorch pickles) is refused with what to do, not
 * "model.safetensors: cannot open". 0 when model.safetensors exists or
 * there is nothing better to say (the open then names the missing file). */
static int check_weights_format(const char *dir) {
    if (dir_has(dir, "model.safetensors")) return 0;
    if (dir_has(dir, "model.safetensors.index.json"))
        return err_set("%s: has a sharded checkpoint (model.safetensors.index.json) but no model.safetensors; "
                       "sharded checkpoints are not supported: save it as one file with transformers, "
                       "model.save_pretrained(dir, max_shard_size=\"100GB\") (larger than the model)",
                       dir);
    if (dir_has(dir, "pytorch_model.bin") || dir_has(dir, "pytorch_model.bin.index.json"))
        return err_set("%s: has pytorch_model.bin but no model.safetensors; convert it with transformers: "
                       "model.save_pretrained(dir, safe_serialization=True, max_shard_size=\"100GB\")",
                       dir);
    return 0;
}

int hf_import(const char *dir, Gpt *m, Tok **tok) {
    memset(m, 0, sizeof *m);
    if (tok) *tok = NULL;
    if (check_inputs(dir) || check_weights_format(dir)) return -1;
    char *cp = fs_join(dir, "config.json"), *wp = fs_join(dir, "model.safetensors");
    GptConfig c = {0};
    int classifier = 0;
    int rc = read_config(cp, &c, &classifier);
    if (!rc) rc = load_weights(wp, &c, classifier, m);
    if (!rc && tok && !(*tok = load_tokenizer(dir, c.vocab_size))) {
        gpt_free(m);
        rc = -1;
    }
    free(cp);
    free(wp);
    return rc;
}

/* ---- export ------------------------------------------------------------- */

/* config.json as transformers' GPT2Config writes it for gpt2. */
static char *config_json(const GptConfig *c, int eot) {
    int scalar = c->head == GPT_HEAD_SCALAR;
    json_t *root = json_object();
    json_object_set_new(root, "activation_function", json_string("gelu_new"));
    json_object_set_new(root, "architectures",
                        json_pack("[s]", scalar ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel"));
    json_object_set_new(root, "attn_pdrop", json_real(0.1));
    json_object_set_new(root, "bos_token_id", json_integer(eot));
    json_object_set_new(root, "embd_pdrop", json_real(0.1));
    json_object_set_new(root, "eos_token_id", json_integer(eot));
    json_object_set_new(root, "initializer_range", json_real(0.02));
    json_object_set_new(root, "layer_norm_epsilon", json_real(1e-5));
    json_object_set_new(root, "model_type", json_string("gpt2"));
    json_object_set_new(root, "n_ctx", json_integer(c->n_ctx));
    json_object_set_new(root, "n_embd", json_integer(c->n_embd));
    json_object_set_new(root, "n_head", json_integer(c->n_head));
    json_object_set_new(root, "n_layer", json_integer(c->n_layer));
    json_object_set_new(root, "n_positions", json_integer(c->n_ctx));
    if (scalar) json_object_set_new(root, "num_labels", json_integer(1));
    json_object_set_new(root, "resid_pdrop", json_real(0.1));
    json_object_set_new(root, "vocab_size", json_integer(c->vocab_size));
    /* 15 significant digits print 0.1 and 1e-5 as written (17 would not). */
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    json_decref(root);
    return s;
}

/* The files of one export, indexed like hf_files. */
enum { HF_CONFIG, HF_WEIGHTS, HF_VOCAB, HF_MERGES };

typedef struct {
    const char *data;
    size_t len;
} HfBytes;

static int write_bytes(FILE *f, void *ctx) {
    const HfBytes *b = ctx;
    fwrite(b->data, 1, b->len, f); /* a short write sets ferror for fs_write_tmp */
    return 0;
}

static int write_tmp_bytes(const char *tmp, const char *data, size_t len) {
    HfBytes b = {.data = data, .len = len};
    return fs_write_tmp(tmp, write_bytes, &b);
}

static int write_config(const char *tmp, const Gpt *m, const Tok *tok) {
    int eot = tok ? tok_eot(tok) : m->cfg.vocab_size - 1; /* GPT-2 and bytes: last id */
    char *s = config_json(&m->cfg, eot);
    size_t n = strlen(s);
    s = err_realloc(s, n + 2);
    memcpy(s + n, "\n", 2);
    int rc = write_tmp_bytes(tmp, s, n + 1);
    free(s);
    return rc;
}

static int write_weights(const char *tmp, const Gpt *m) {
    StWriteTensor *w = err_calloc((size_t)m->n_tensors, sizeof *w);
    int64_t (*shape)[2] = err_calloc((size_t)m->n_tensors, sizeof *shape);
    for (int i = 0; i < m->n_tensors; i++) {
        const GptTensor *g = &m->tensors[i];
        shape[i][0] = g->shape[0];
        shape[i][1] = g->shape[1];
        w[i] = (StWriteTensor){.name = g->name, .ndim = g->ndim, .shape = shape[i], .data = m->params + g->offset};
    }
    int rc = st_write_f32_tmp(tmp, w, m->n_tensors);
    free(shape);
    free(w);
    return rc;
}

static int write_tokenizer(const char *dir, char *const *tmps, const Gpt *m, const Tok *tok) {
    if (tok_vocab_size(tok) != m->cfg.vocab_size)
        return err_set("%s: tokenizer has %d tokens but the model's vocab_size is %d", dir,
                       tok_vocab_size(tok), m->cfg.vocab_size);
    if (tok_kind(tok) == TOK_BYTE) {
        static const char merges[] = "#version: 0.2\n";
        size_t n;
        char *vocab = tok_byte_vocab_json(&n);
        if (!vocab) return err_set("%s: cannot write vocab.json for the byte tokenizer", dir);
        int rc = write_tmp_bytes(tmps[HF_VOCAB], vocab, n);
        free(vocab);
        return rc ? rc : write_tmp_bytes(tmps[HF_MERGES], merges, sizeof merges - 1);
    }
    size_t vn, mn;
    const char *vocab = tok_vocab_json(tok, &vn), *merges = tok_merges_txt(tok, &mn);
    if (!vocab || !merges) return err_set("%s: tokenizer has no vocab.json/merges.txt contents", dir);
    if (write_tmp_bytes(tmps[HF_VOCAB], vocab, vn)) return -1;
    return write_tmp_bytes(tmps[HF_MERGES], merges, mn);
}

/* One export into a directory at a time: an exclusive flock on the
 * directory itself (unlike a run's out_dir/.lock it leaves no file among
 * the exported ones), held from the first temporary to the last rename, so
 * two exports at once cannot leave one's config.json beside the other's
 * weights; the second is refused. The kernel releases it however the
 * process ends. A descriptor to close, or -1 + err_set. */
static int lock_export_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_set("%s: cannot open: %s", dir, strerror(errno));
    if (!flock(fd, LOCK_EX | LOCK_NB)) return fd;
    if (errno == EWOULDBLOCK)
        err_set("%s: in use by another export (the directory is locked); wait for it to end or export elsewhere",
                dir);
    else
        err_set("%s: cannot lock: %s", dir, strerror(errno));
    close(fd);
    return -1;
}

/* Atomic as a whole for an existing export: every file is written under
 * its temporary name first and only then are they renamed into place,
 * config.json last (a config.json means complete). A failure while
 * writing leaves the old export complete and unchanged; only a failed
 * rename between two renames within one directory (hardly possible) could
 * mix old and new files. */
int hf_export(const char *dir, const Gpt *m, const Tok *tok) {
    if (fs_mkdirs(dir)) return -1;
    int lock = lock_export_dir(dir);
    if (lock < 0) return -1;
    int n = tok ? HF_N_FILES : HF_VOCAB; /* config and weights, then the tokenizer */
    char *paths[HF_N_FILES] = {0}, *tmps[HF_N_FILES] = {0};
    int rc = 0;
    for (int i = 0; i < n; i++) {
        paths[i] = fs_join(dir, hf_files[i]);
        tmps[i] = fs_tmp_name(paths[i]);
        if (!rc) rc = fs_check_target(paths[i]);
    }
    if (!rc) rc = write_weights(tmps[HF_WEIGHTS], m);
    if (!rc && tok) rc = write_tokenizer(dir, tmps, m, tok);
    if (!rc) rc = write_config(tmps[HF_CONFIG], m, tok);
    for (int i = n - 1; i >= 0 && !rc; i--) rc = fs_commit(tmps[i], paths[i]); /* config.json last */
    for (int i = 0; i < n; i++) {
        if (rc) unlink(tmps[i]); /* the ones not yet removed (fs_write_tmp/fs_commit remove their own) */
        free(paths[i]);
        free(tmps[i]);
    }
    close(lock);
    return rc;
}
