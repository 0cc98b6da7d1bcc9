/* ckpt — stub while being written; see ckpt.h. */
#include "common/ckpt.h"
#include "common/err.h"

Ckpt *ckpt_create(const char *path) { (void)path; err_set("ckpt: not implemented yet"); return NULL; }
int ckpt_put_model(Ckpt *c, const Gpt *m, const Tok *tok, const char *kind) { (void)c; (void)m; (void)tok; (void)kind; return err_set("ckpt: not implemented yet"); }
int ckpt_put_buffer(Ckpt *c, const char *group, const Gpt *layout, const float *buf) { (void)c; (void)group; (void)layout; (void)buf; return err_set("ckpt: not implemented yet"); }
int ckpt_put_array(Ckpt *c, const char *path, CkptType t, int ndim, const int64_t *dims, const void *data) { (void)c; (void)path; (void)t; (void)ndim; (void)dims; (void)data; return err_set("ckpt: not implemented yet"); }
int ckpt_put_attr_str(Ckpt *c, const char *obj, const char *name, const char *val) { (void)c; (void)obj; (void)name; (void)val; return err_set("ckpt: not implemented yet"); }
int ckpt_put_attr_i64(Ckpt *c, const char *obj, const char *name, int64_t v) { (void)c; (void)obj; (void)name; (void)v; return err_set("ckpt: not implemented yet"); }
int ckpt_put_attr_f64(Ckpt *c, const char *obj, const char *name, double v) { (void)c; (void)obj; (void)name; (void)v; return err_set("ckpt: not implemented yet"); }
int ckpt_commit(Ckpt *c) { (void)c; return err_set("ckpt: not implemented yet"); }
void ckpt_discard(Ckpt *c) { (void)c; }
Ckpt *ckpt_open(const char *path) { (void)path; err_set("ckpt: not implemented yet"); return NULL; }
const char *ckpt_path(const Ckpt *c) { (void)c; err_set("ckpt: not implemented yet"); return NULL; }
const char *ckpt_kind(const Ckpt *c) { (void)c; err_set("ckpt: not implemented yet"); return NULL; }
int ckpt_get_config(const Ckpt *c, GptConfig *cfg) { (void)c; (void)cfg; return err_set("ckpt: not implemented yet"); }
int ckpt_get_model(Ckpt *c, Gpt *m) { (void)c; (void)m; return err_set("ckpt: not implemented yet"); }
Tok *ckpt_get_tok(Ckpt *c) { (void)c; err_set("ckpt: not implemented yet"); return NULL; }
int ckpt_has(Ckpt *c, const char *path) { (void)c; (void)path; return err_set("ckpt: not implemented yet"); }
int ckpt_get_buffer(Ckpt *c, const char *group, const Gpt *layout, float *buf) { (void)c; (void)group; (void)layout; (void)buf; return err_set("ckpt: not implemented yet"); }
int ckpt_get_shape(Ckpt *c, const char *path, int *ndim, int64_t dims[CKPT_MAX_DIMS]) { (void)c; (void)path; (void)ndim; (void)dims; return err_set("ckpt: not implemented yet"); }
int ckpt_get_array(Ckpt *c, const char *path, CkptType t, int64_t count, void *data) { (void)c; (void)path; (void)t; (void)count; (void)data; return err_set("ckpt: not implemented yet"); }
int ckpt_get_attr_str(Ckpt *c, const char *obj, const char *name, char *buf, size_t n) { (void)c; (void)obj; (void)name; (void)buf; (void)n; return err_set("ckpt: not implemented yet"); }
int ckpt_get_attr_i64(Ckpt *c, const char *obj, const char *name, int64_t *v) { (void)c; (void)obj; (void)name; (void)v; return err_set("ckpt: not implemented yet"); }
int ckpt_get_attr_f64(Ckpt *c, const char *obj, const char *name, double *v) { (void)c; (void)obj; (void)name; (void)v; return err_set("ckpt: not implemented yet"); }
int ckpt_has_attr(Ckpt *c, const char *obj, const char *name) { (void)c; (void)obj; (void)name; return err_set("ckpt: not implemented yet"); }
void ckpt_close(Ckpt *c) { (void)c; }
int ckpt_save_model(const char *path, const Gpt *m, const Tok *tok, const char *kind) { (void)path; (void)m; (void)tok; (void)kind; return err_set("ckpt: not implemented yet"); }
int ckpt_load_model(const char *path, Gpt *m, Tok **tok, char *kind, size_t kind_len) { (void)path; (void)m; (void)tok; (void)kind; (void)kind_len; return err_set("ckpt: not implemented yet"); }
