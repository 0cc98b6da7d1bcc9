/* ckpt — HDF5 checkpoints: one file per save holding a model (config as root
 * attributes, parameters under /params/<GPT-2 name>, the tokenizer), any
 * training state the trainers add (optimizer moments, step, RNG states, KL
 * coefficient, data position, policy version) and the resolved run
 * configuration as attributes of /config. Resuming from a checkpoint
 * continues the run as if it never stopped.
 *
 * Writing is atomic: ckpt_create writes "PATH.tmp.<pid>", ckpt_commit
 * flushes, fsyncs and rename()s it over PATH, so a crash or a failed write
 * never leaves a half checkpoint under PATH and never damages the old one.
 *
 * File layout (readable with h5py / h5dump):
 *   /                 attrs format="rlhf-checkpoint", version=1, kind,
 *                     vocab_size, n_ctx, n_layer, n_head, n_embd,
 *                     head="lm"|"scalar", tokenizer="byte"|"gpt2"
 *   /params/<name>    float32 datasets with the tensor shapes
 *   /tokenizer/vocab_json, /tokenizer/merges_txt   uint8 (GPT-2 only: the
 *                     original file contents)
 *   /config           attrs: resolved run configuration (key = value)
 *   anything else     ckpt_put_array / ckpt_put_buffer / ckpt_put_attr_*
 *
 * Paths of datasets and groups may be written with or without a leading
 * "/" ("optim/m" == "/optim/m"); missing intermediate groups are created.
 * Every failure returns -1 (or NULL) with err_set("PATH: ...") naming the
 * file and the dataset or attribute. */
#ifndef CKPT_H
#define CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/model/gpt.h"
#include "common/model/tok.h"

#define CKPT_FORMAT "rlhf-checkpoint"
#define CKPT_VERSION 1
#define CKPT_MAX_DIMS 8

typedef struct Ckpt Ckpt;
typedef enum { CKPT_F32, CKPT_F64, CKPT_I32, CKPT_I64, CKPT_U8, CKPT_U64 } CkptType;

/* ---- Writing ------------------------------------------------------------ */

/* Starts a checkpoint that will appear at path on ckpt_commit. Temporaries
 * of path left by writers that died (no such pid on this host) are removed. */
Ckpt *ckpt_create(const char *path);
/* Model config as root attributes, /params/<name> datasets and the tokenizer
 * (tok may be NULL: no tokenizer stored). kind: "policy", "reward",
 * "value", "reference", ... */
int ckpt_put_model(Ckpt *c, const Gpt *m, const Tok *tok, const char *kind);
/* A params-shaped buffer (AdamW moments, ...) as one dataset per tensor of
 * layout, under group (e.g. "optim/m"). */
int ckpt_put_buffer(Ckpt *c, const char *group, const Gpt *layout, const float *buf);
/* Any dataset; ndim 0 is a scalar, dims[i] >= 0. Writing a path twice is
 * an error. */
int ckpt_put_array(Ckpt *c, const char *path, CkptType t, int ndim,
                   const int64_t *dims, const void *data);
/* Attributes of obj ("/" or a group/dataset path; a missing group is
 * created). Writing an attribute again replaces it. Strings are stored as
 * variable-length UTF-8 (h5py reads them as str). */
int ckpt_put_attr_str(Ckpt *c, const char *obj, const char *name, const char *val);
int ckpt_put_attr_i64(Ckpt *c, const char *obj, const char *name, int64_t v);
int ckpt_put_attr_f64(Ckpt *c, const char *obj, const char *name, double v);
/* Closes, fsyncs and renames into place; always frees c. If any earlier
 * put failed, or the commit itself fails (disk full, ...), returns -1, PATH
 * is untouched and the temporary is removed. */
int ckpt_commit(Ckpt *c);
/* Abandons the write: removes the temporary, frees c. NULL is a no-op. */
void ckpt_discard(Ckpt *c);

/* ---- Reading ------------------------------------------------------------ */

/* NULL + err_set for a missing file, a file that is not HDF5, an HDF5 file
 * that is not a checkpoint, an unsupported version, a truncated file, or one
 * holding an HDF5 external (or user-defined) link anywhere: a checkpoint is
 * self-contained, so nothing outside it is ever opened. */
Ckpt *ckpt_open(const char *path);
/* The file path (the final PATH for a checkpoint being written). */
const char *ckpt_path(const Ckpt *c);
/* The "kind" attribute, "" if the checkpoint holds no model. */
const char *ckpt_kind(const Ckpt *c);
/* The stored model configuration, validated. */
int ckpt_get_config(const Ckpt *c, GptConfig *cfg);
/* gpt_init from the stored config, then every tensor from /params. A missing
 * or extra tensor, a wrong shape or type, or a NaN/Inf value
 * (gpt_check_finite) is an error naming the tensor (and both shapes, or the
 * element); on error m is freed (zeroed). */
int ckpt_get_model(Ckpt *c, Gpt *m);
/* The stored tokenizer (NULL + err_set if none or damaged); tok_free it. */
Tok *ckpt_get_tok(Ckpt *c);
/* 1 if the dataset or group exists, else 0. */
int ckpt_has(Ckpt *c, const char *path);
/* Reads a buffer written by ckpt_put_buffer with the same layout; NaN/Inf
 * is refused as in ckpt_get_model. */
int ckpt_get_buffer(Ckpt *c, const char *group, const Gpt *layout, float *buf);
/* The shape of a dataset: *ndim and dims[0..ndim). */
int ckpt_get_shape(Ckpt *c, const char *path, int *ndim, int64_t dims[CKPT_MAX_DIMS]);
/* Reads a whole dataset; the stored type must be t and hold exactly count
 * elements. */
int ckpt_get_array(Ckpt *c, const char *path, CkptType t, int64_t count, void *data);
/* A missing attribute is an error. Strings longer than n-1 bytes are an
 * error; i64 accepts any stored integer type, f64 any float type. */
int ckpt_get_attr_str(Ckpt *c, const char *obj, const char *name, char *buf, size_t n);
int ckpt_get_attr_i64(Ckpt *c, const char *obj, const char *name, int64_t *v);
int ckpt_get_attr_f64(Ckpt *c, const char *obj, const char *name, double *v);
/* 1 if obj has the attribute, else 0. */
int ckpt_has_attr(Ckpt *c, const char *obj, const char *name);
void ckpt_close(Ckpt *c);

/* ---- Run configuration -------------------------------------------------- */

/* Every key of cfg that has a value, as a string attribute of /config. */
int ckpt_save_config(Ckpt *c, const Config *cfg);
/* Reads values back from /config with origin = the checkpoint path.
 * keys == NULL: every declared key the checkpoint has (others keep their
 * value, attributes of undeclared keys are ignored). Otherwise keys is a
 * NULL-terminated list and each must be declared and present. A stored
 * value that does not parse is an error naming the file and key. */
int ckpt_load_config(Ckpt *c, Config *cfg, const char *const *keys);

/* ---- Convenience -------------------------------------------------------- */

/* create + put_model + commit. */
int ckpt_save_model(const char *path, const Gpt *m, const Tok *tok, const char *kind);
/* open + get_model (+ get_tok if tok != NULL, + kind into kind[kind_len] if
 * kind != NULL) + close. On error nothing is left allocated. */
int ckpt_load_model(const char *path, Gpt *m, Tok **tok, char *kind, size_t kind_len);

/* What a caller expects of the model it loads (ckpt_load_model_as). */
typedef struct {
    GptHead head;          /* the head the caller needs */
    const char *what;      /* the model's role in messages: "the reference", "generate --model" */
    int vocab;             /* > 0: vocab_size must equal it */
    int min_ctx;           /* > 0: n_ctx must be at least it */
    const Tok *tok;        /* non-NULL: a stored tokenizer must encode as this one */
    const char *like;      /* whose vocab/context/tokenizer those are: "the policy" */
} CkptWant;

/* ckpt_load_model (tok may be NULL) that also checks the model against
 * want: one error naming the file and the field that differs, e.g.
 * "PATH: is a reward checkpoint (scalar head); the reference must be a
 * language model". On error nothing is left allocated. */
int ckpt_load_model_as(const char *path, Gpt *m, Tok **tok, const CkptWant *want);

/* ---- Resuming ------------------------------------------------------------- */

/* Rule: a run resumes only into the model it was written with. The whole
 * model configuration is compared, not the parameter count (a 2-head and a
 * 4-head model of one width have the same count and would mix silently).
 * ckpt_put_model_config stores cfg as attributes of obj (ckpt_put_model does
 * it at "/"; the PPO learner also stores its value model's at "/value");
 * ckpt_check_model_config compares the configuration stored at obj with
 * want field by field (vocab_size, n_ctx, n_layer, n_head, n_embd, head):
 * -1 + err_set("PATH: WHAT: n_head is 2 in the checkpoint, 4 in this run; ...")
 * for the first field that differs, or for a missing or unreadable one. The
 * optimiser's settings are run configuration keys (lr, beta1, ...), compared
 * with config_diff; its moments are read with ckpt_get_buffer, which checks
 * every tensor's shape. */
int ckpt_put_model_config(Ckpt *c, const char *obj, const GptConfig *cfg);
int ckpt_check_model_config(Ckpt *c, const char *obj, const GptConfig *want, const char *what);

/* A reward checkpoint's stored score normalisation, the attributes
 * score_offset and score_scale of /reward (offset 0, scale 1 when absent).
 * 0, or -1 + err_set: the file cannot be opened, an attribute cannot be
 * read, or "PATH: score_scale must be positive". */
int ckpt_get_rm_norm(const char *path, double *offset, double *scale);

#endif
