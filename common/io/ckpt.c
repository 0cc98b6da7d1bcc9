/* ckpt — HDF5 checkpoints (model, tokenizer, training state, run config),
 * written atomically through a temporary file and rename(); see ckpt.h.
 *
 * HDF5's own error printing is switched off: every failure becomes one
 * err_set() line "PATH: /object: what went wrong (HDF5's innermost reason)".
 * Every HDF5 handle opened by a function is closed by that function on all
 * paths; the file is opened with H5F_CLOSE_SEMI so a leaked handle makes the
 * close fail loudly instead of silently keeping the file open.
 *
 * A full disk must never reach HDF5 1.10's file close (a failed close leaves
 * a half-destroyed file that crashes the process at exit): see
 * reserve_flush_space and close_abandoned. */
#include "common/io/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/h5util.h"

#define CKPT_NAME_MAX 1024

struct Ckpt {
    char *path;    /* the final path: the name every message starts with */
    char *tmp;     /* the temporary being written; NULL when reading */
    hid_t file;
    int failed;    /* a put failed, so commit must refuse */
    char kind[64];
};

/* ---- HDF5 plumbing ------------------------------------------------------ */

/* err_set("PATH: obj: what (reason)") from the current HDF5 error stack. */
static int h5_fail(const Ckpt *c, const char *obj, const char *what) {
    if (!obj) return h5util_fail(c->path, what);
    char where[8192];
    snprintf(where, sizeof where, "%s: %s", c->path, obj);
    return h5util_fail(where, what);
}

/* File access (h5util_fapl): no file locking is safe here because a
 * checkpoint is never written and read at once (writes go to a private
 * temporary). */
static hid_t make_fapl(void) { return h5util_fapl(0); }

/* Link-creation properties that create missing intermediate groups. */
static hid_t make_lcpl(void) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    return lcpl;
}

static int type_valid(CkptType t) { return (unsigned)t <= CKPT_U64; }

/* CkptType as h5util's element type (callers check type_valid first). */
static H5utilType as_h5util(CkptType t) {
    static const H5utilType map[] = {
        [CKPT_F32] = H5UTIL_F32, [CKPT_F64] = H5UTIL_F64, [CKPT_I32] = H5UTIL_I32,
        [CKPT_I64] = H5UTIL_I64, [CKPT_U8] = H5UTIL_U8,   [CKPT_U64] = H5UTIL_U64,
    };
    return map[t];
}

static hid_t mem_type(CkptType t) { return h5util_mem_type(as_h5util(t)); }
static hid_t file_type(CkptType t) { return h5util_file_type(as_h5util(t)); }
static const char *type_name(CkptType t) { return type_valid(t) ? h5util_type_name(as_h5util(t)) : "invalid type"; }
static int type_matches(hid_t h5t, CkptType t) { return h5util_type_of(h5t) == (int)as_h5util(t); }

/* "/a/b" from "a/b", "/a/b" or "a/b/"; "/" for "" or "/". */
static int norm_path(const Ckpt *c, const char *in, char out[CKPT_NAME_MAX]) {
    if (!in) return err_set("%s: NULL object path", c->path);
    int n = snprintf(out, CKPT_NAME_MAX, "%s%s", in[0] == '/' ? "" : "/", in);
    if (n >= CKPT_NAME_MAX) return err_set("%s: object path too long: %.60s...", c->path, in);
    while (n > 1 && out[n - 1] == '/') out[--n] = 0;
    return 0;
}

/* "group/name" joined and normalised. */
static int join_path(const Ckpt *c, const char *group, const char *name,
                     char out[CKPT_NAME_MAX]) {
    char g[CKPT_NAME_MAX];
    if (norm_path(c, group, g)) return -1;
    int n = snprintf(out, CKPT_NAME_MAX, "%s/%s", strcmp(g, "/") ? g : "", name);
    if (n >= CKPT_NAME_MAX) return err_set("%s: object path too long: %.60s...", c->path, g);
    return 0;
}

/* 1 if every component of the normalised path p exists (H5Lexists needs
 * each parent to exist, so walk them in order). */
static int path_exists(const Ckpt *c, const char *p) {
    char buf[CKPT_NAME_MAX];
    if (!strcmp(p, "/")) return 1;
    snprintf(buf, sizeof buf, "%s", p);
    for (char *s = strchr(buf + 1, '/');; s = strchr(s + 1, '/')) {
        if (s) *s = 0;
        if (H5Lexists(c->file, buf, H5P_DEFAULT) <= 0) return 0;
        if (!s) return 1;
        *s = '/';
    }
}

/* Before creating p: every existing ancestor must be a group (HDF5's own
 * message for a dataset in the way is "message type not found"). */
static int check_parents(const Ckpt *c, const char *p) {
    char buf[CKPT_NAME_MAX];
    snprintf(buf, sizeof buf, "%s", p);
    for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        if (H5Lexists(c->file, buf, H5P_DEFAULT) <= 0) return 0; /* rest gets created */
        hid_t g = H5Gopen2(c->file, buf, H5P_DEFAULT);
        if (g < 0) return err_set("%s: %s: %s is a dataset, not a group", c->path, p, buf);
        H5Gclose(g);
        *s = '/';
    }
    return 0;
}

static int writable(const Ckpt *c) {
    if (!c->tmp) return err_set("%s: opened for reading, cannot write", c->path);
    return 0;
}

/* Records a failed put so that ckpt_commit refuses the checkpoint. */
static int mark(Ckpt *c, int rc) {
    if (rc) c->failed = 1;
    return rc;
}

/* ---- writing datasets and attributes ------------------------------------ */

static int write_dataset(Ckpt *c, const char *path, CkptType t, int ndim,
                         const hsize_t *dims, const void *data) {
    hsize_t count = 1;
    for (int i = 0; i < ndim; i++) count *= dims[i];
    if (path_exists(c, path)) return err_set("%s: %s: already written", c->path, path);
    if (check_parents(c, path)) return -1;
    if (count && !data) return err_set("%s: %s: NULL data", c->path, path);
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t lcpl = make_lcpl();
    hid_t d = H5Dcreate2(c->file, path, file_type(t), space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (d < 0) rc = h5_fail(c, path, "cannot create dataset");
    /* An empty dataset has no storage; HDF5 rejects a NULL buffer anyway. */
    else if (count && H5Dwrite(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = h5_fail(c, path, "cannot write dataset");
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = h5_fail(c, path, "cannot close dataset");
    H5Pclose(lcpl);
    H5Sclose(space);
    return rc;
}

/* Opens obj; a missing object is created as a group when create != 0. */
static hid_t open_object(const Ckpt *c, const char *obj, int create) {
    if (!path_exists(c, obj)) {
        if (!create) {
            err_set("%s: %s: no such group or dataset", c->path, obj);
            return H5I_INVALID_HID;
        }
        if (check_parents(c, obj)) return H5I_INVALID_HID;
        hid_t lcpl = make_lcpl();
        hid_t g = H5Gcreate2(c->file, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) h5_fail(c, obj, "cannot create group");
        H5Pclose(lcpl);
        return g;
    }
    hid_t o = H5Oopen(c->file, obj, H5P_DEFAULT);
    if (o < 0) h5_fail(c, obj, "cannot open");
    return o;
}

/* Creates (or replaces) attribute name of obj and writes one value. */
static int write_attr(Ckpt *c, const char *obj_in, const char *name, hid_t ftype,
                      hid_t mtype, const void *val) {
    char obj[CKPT_NAME_MAX];
    if (writable(c) || norm_path(c, obj_in, obj)) return -1;
    if (!name || !name[0]) return err_set("%s: %s: empty attribute name", c->path, obj);
    hid_t o = open_object(c, obj, 1);
    if (o < 0) return -1;
    char what[160];
    snprintf(what, sizeof what, "cannot write attribute %.100s", name);
    int rc = h5util_put_attr(o, name, ftype, mtype, val) ? h5_fail(c, obj, what) : 0;
    H5Oclose(o);
    return rc;
}

int ckpt_put_attr_str(Ckpt *c, const char *obj, const char *name, const char *val) {
    if (!val) return mark(c, err_set("%s: %s: attribute %s: NULL string", c->path, obj, name));
    /* Variable-length UTF-8: h5py reads it as str, h5dump shows it plainly. */
    hid_t t = h5util_str_type();
    int rc = write_attr(c, obj, name, t, t, &val);
    H5Tclose(t);
    return mark(c, rc);
}

int ckpt_put_attr_i64(Ckpt *c, const char *obj, const char *name, int64_t v) {
    return mark(c, write_attr(c, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v));
}

int ckpt_put_attr_f64(Ckpt *c, const char *obj, const char *name, double v) {
    return mark(c, write_attr(c, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v));
}

int ckpt_put_array(Ckpt *c, const char *path_in, CkptType t, int ndim,
                   const int64_t *dims, const void *data) {
    char path[CKPT_NAME_MAX];
    hsize_t hd[CKPT_MAX_DIMS];
    if (writable(c) || norm_path(c, path_in, path)) return mark(c, -1);
    if (!type_valid(t)) return mark(c, err_set("%s: %s: invalid element type %d", c->path, path, (int)t));
    if (ndim < 0 || ndim > CKPT_MAX_DIMS)
        return mark(c, err_set("%s: %s: ndim %d outside 0..%d", c->path, path, ndim, CKPT_MAX_DIMS));
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return mark(c, err_set("%s: %s: negative dimension %lld", c->path, path, (long long)dims[i]));
        hd[i] = (hsize_t)dims[i];
    }
    return mark(c, write_dataset(c, path, t, ndim, hd, data));
}

/* One f32 dataset per tensor of layout, under group. */
static int put_tensors(Ckpt *c, const char *group, const Gpt *layout, const float *buf) {
    char path[CKPT_NAME_MAX];
    for (int i = 0; i < layout->n_tensors; i++) {
        const GptTensor *t = &layout->tensors[i];
        hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
        if (join_path(c, group, t->name, path) ||
            write_dataset(c, path, CKPT_F32, t->ndim, dims, buf + t->offset))
            return -1;
    }
    return 0;
}

int ckpt_put_buffer(Ckpt *c, const char *group, const Gpt *layout, const float *buf) {
    if (writable(c)) return mark(c, -1);
    if (!layout || !buf) return mark(c, err_set("%s: %s: NULL layout or buffer", c->path, group));
    return mark(c, put_tensors(c, group, layout, buf));
}

/* A byte string as a 1-D u8 dataset (tokenizer files). */
static int put_bytes(Ckpt *c, const char *path, const char *data, size_t len) {
    int64_t n = (int64_t)len;
    return ckpt_put_array(c, path, CKPT_U8, 1, &n, data);
}

static int put_tokenizer(Ckpt *c, const Tok *tok) {
    if (tok_kind(tok) == TOK_BYTE) return ckpt_put_attr_str(c, "/", "tokenizer", "byte");
    size_t vlen = 0, mlen = 0;
    const char *vocab = tok_vocab_json(tok, &vlen), *merges = tok_merges_txt(tok, &mlen);
    if (!vocab || !merges)
        return err_set("%s: GPT-2 tokenizer has no vocab.json/merges.txt contents to store", c->path);
    if (ckpt_put_attr_str(c, "/", "tokenizer", "gpt2") ||
        put_bytes(c, "/tokenizer/vocab_json", vocab, vlen) ||
        put_bytes(c, "/tokenizer/merges_txt", merges, mlen))
        return -1;
    return 0;
}

int ckpt_put_model(Ckpt *c, const Gpt *m, const Tok *tok, const char *kind) {
    if (writable(c)) return mark(c, -1);
    if (!m || !m->params) return mark(c, err_set("%s: no model to store", c->path));
    if (!kind || !kind[0] || strlen(kind) >= sizeof c->kind)
        return mark(c, err_set("%s: kind must be a non-empty name shorter than %zu bytes",
                               c->path, sizeof c->kind));
    const GptConfig *g = &m->cfg;
    if (tok && tok_vocab_size(tok) > g->vocab_size)
        return mark(c, err_set("%s: tokenizer has %d tokens but the model's vocab_size is %d",
                               c->path, tok_vocab_size(tok), g->vocab_size));
    if (ckpt_put_attr_str(c, "/", "kind", kind) ||
        ckpt_put_model_config(c, "/", g) ||
        put_tensors(c, "/params", m, m->params) ||
        (tok && put_tokenizer(c, tok)))
        return mark(c, -1);
    snprintf(c->kind, sizeof c->kind, "%s", kind);
    return 0;
}

/* ---- creating, committing, discarding ----------------------------------- */

static void ckpt_free(Ckpt *c) {
    free(c->path);
    free(c->tmp);
    free(c);
}

/* 1 if no live process on this host has pid: none at all, or only a zombie
 * not yet reaped (the killed ranks of an mpirun job linger as zombies for a
 * moment after a rerun has started). */
static int pid_dead(long pid) {
    if (kill((pid_t)pid, 0) && errno == ESRCH) return 1;
    if (!fs_process_start(getpid())) return 0; /* no /proc: kill's answer is all we have */
    return !fs_process_start(pid);
}

/* Removes the temporaries PATH.tmp.<pid> of earlier writers of the same
 * checkpoint that died before committing (kill -9, power loss): a resumed run
 * writes the same names again, and without this every crash during a save
 * would leave a checkpoint-sized file behind for good. Only a pid that no
 * live process on this host has is taken as dead; anything else is left
 * alone. */
static void remove_dead_temps(const char *path) {
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    int dir_len = slash ? (int)(slash - path) + (slash == path) : 1; /* "/x.h5" -> "/" */
    char dir[PATH_MAX], stale[2 * PATH_MAX];
    if (dir_len >= (int)sizeof dir) return;
    snprintf(dir, sizeof dir, "%.*s", dir_len, slash ? path : ".");
    DIR *d = opendir(dir);
    if (!d) return;
    size_t n = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t infix = strlen(FS_TMP_INFIX);
        if (strncmp(e->d_name, base, n) || strncmp(e->d_name + n, FS_TMP_INFIX, infix)) continue;
        char *end;
        long pid = strtol(e->d_name + n + infix, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || !pid_dead(pid)) continue;
        snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name);
        unlink(stale);
    }
    closedir(d);
}

Ckpt *ckpt_create(const char *path) {
    h5util_quiet();
    if (!path || !path[0]) {
        err_set("ckpt_create: empty checkpoint path");
        return NULL;
    }
    if (fs_check_target(path)) return NULL;
    Ckpt *c = err_calloc(1, sizeof *c);
    c->path = err_strdup(path);
    c->tmp = fs_tmp_name(path);
    remove_dead_temps(path);
    /* Create it ourselves first for a plain errno message ("No such file or
     * directory"). A stale temporary with our pid can only be left over from
     * a dead process, so truncating it is safe. */
    int fd = open(c->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        err_set("%s: cannot create temporary file %s: %s", path, c->tmp, strerror(errno));
        ckpt_free(c);
        return NULL;
    }
    close(fd);
    hid_t fapl = make_fapl();
    c->file = H5Fcreate(c->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (c->file < 0) h5_fail(c, NULL, "cannot create HDF5 file"); /* before H5Pclose clears the stack */
    H5Pclose(fapl);
    if (c->file < 0) {
        unlink(c->tmp);
        ckpt_free(c);
        return NULL;
    }
    if (ckpt_put_attr_str(c, "/", "format", CKPT_FORMAT) ||
        ckpt_put_attr_i64(c, "/", "version", CKPT_VERSION)) {
        ckpt_discard(c);
        return NULL;
    }
    return c;
}

/* Closes a temporary whose contents we no longer want. HDF5 1.10 cannot
 * survive a failed H5Fclose (the id stays half-destroyed and crashes a later
 * H5Fclose or the library's exit handler), and after a full disk or an I/O
 * error the close's final flush would fail again. So first point the
 * file's descriptor at an anonymous in-memory file: the flush and truncate
 * then succeed, and nothing more reaches the disk. */
static void close_abandoned(Ckpt *c) {
    if (c->file < 0) return;
    h5util_detach(c->file);
    H5Fclose(c->file);
    c->file = H5I_INVALID_HID;
}

void ckpt_discard(Ckpt *c) {
    if (!c) return;
    if (c->tmp) {
        close_abandoned(c);
        unlink(c->tmp);
    } else if (c->file >= 0) {
        H5Fclose(c->file);
    }
    ckpt_free(c);
}

/* Allocates disk blocks for the whole file before the final flush. HDF5
 * 1.10 cannot recover from a failed flush (its metadata cache is left
 * inconsistent and the file can then never be closed), so a full disk must
 * be found before flushing, not by it. The flush only writes inside the
 * space HDF5 has already allocated (the file never grows on close), so
 * once those blocks are reserved it cannot run out of space. Filesystems
 * without fallocate skip the check. */
static int reserve_flush_space(Ckpt *c) {
    hsize_t size = 0;
    int fd = h5util_fd(c->file);
    if (H5Fget_filesize(c->file, &size) < 0 || fd < 0 || !size) return 0;
    /* KEEP_SIZE: the file keeps the length HDF5 gives it, so a truncated
     * copy is still detected. The price: the few KB of aggregation space
     * HDF5 gives back on close may stay reserved past the end of file. */
    if (!fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)size)) return 0;
    if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)
        return err_set("%s: cannot finish writing (%s)", c->path, strerror(errno));
    return 0;
}

int ckpt_commit(Ckpt *c) {
    if (!c) return err_set("ckpt_commit: NULL checkpoint");
    if (!c->tmp) {
        err_set("%s: opened for reading, cannot commit", c->path);
        ckpt_close(c);
        return -1;
    }
    int rc = 0;
    if (c->failed) {
        rc = err_set("%s: not committed because an earlier write to it failed", c->path);
    } else if (reserve_flush_space(c)) {
        rc = -1;
    } else {
        herr_t closed = H5Fclose(c->file);
        c->file = H5I_INVALID_HID; /* even a failed close must not be retried */
        if (closed < 0)
            rc = h5_fail(c, NULL, "cannot finish writing");
        else
            rc = fs_commit(c->tmp, c->path); /* removes the temporary if it fails */
    }
    if (rc) {
        ckpt_discard(c);
        return -1;
    }
    ckpt_free(c);
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

static hid_t open_attr(const Ckpt *c, const char *obj_in, const char *name, char obj[CKPT_NAME_MAX]) {
    if (norm_path(c, obj_in, obj)) return H5I_INVALID_HID;
    if (!path_exists(c, obj)) {
        err_set("%s: %s: missing (looking for attribute %s)", c->path, obj, name);
        return H5I_INVALID_HID;
    }
    if (H5Aexists_by_name(c->file, obj, name, H5P_DEFAULT) <= 0) {
        err_set("%s: %s: missing attribute %s", c->path, obj, name);
        return H5I_INVALID_HID;
    }
    hid_t a = H5Aopen_by_name(c->file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) h5_fail(c, obj, "cannot open attribute");
    return a;
}

/* Reads a one-element numeric attribute of class cls as mtype. */
static int read_attr_num(const Ckpt *c, const char *obj_in, const char *name,
                         H5T_class_t cls, hid_t mtype, void *out) {
    char obj[CKPT_NAME_MAX], have[32];
    hid_t a = open_attr(c, obj_in, name, obj);
    if (a < 0) return -1;
    int rc = 0;
    switch (h5util_read_num(a, cls, mtype, out)) {
    case H5UTIL_READ_OK: break;
    case H5UTIL_WRONG_CLASS: {
        hid_t t = H5Aget_type(a);
        h5util_describe_type(t, have, sizeof have);
        H5Tclose(t);
        rc = err_set("%s: %s: attribute %s is %s, expected %s", c->path, obj, name, have,
                     cls == H5T_FLOAT ? "a float" : "an integer");
        break;
    }
    case H5UTIL_NOT_SCALAR: rc = err_set("%s: %s: attribute %s is not a single value", c->path, obj, name); break;
    case H5UTIL_READ_FAILED: rc = h5_fail(c, obj, "cannot read attribute"); break;
    }
    H5Aclose(a);
    return rc;
}

int ckpt_get_attr_i64(Ckpt *c, const char *obj, const char *name, int64_t *v) {
    return read_attr_num(c, obj, name, H5T_INTEGER, H5T_NATIVE_INT64, v);
}

int ckpt_get_attr_f64(Ckpt *c, const char *obj, const char *name, double *v) {
    return read_attr_num(c, obj, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, v);
}

/* Reads a scalar string attribute (variable- or fixed-length) into a
 * malloc'd NUL-terminated copy. */
static char *read_attr_string(const Ckpt *c, const char *obj_in, const char *name) {
    char obj[CKPT_NAME_MAX];
    hid_t a = open_attr(c, obj_in, name, obj);
    if (a < 0) return NULL;
    char *out = NULL;
    H5utilRead rc = h5util_read_str(a, &out);
    if (rc == H5UTIL_READ_FAILED) h5_fail(c, obj, "cannot read attribute");
    else if (rc) err_set("%s: %s: attribute %s is not a single string", c->path, obj, name);
    H5Aclose(a);
    return out;
}

int ckpt_get_attr_str(Ckpt *c, const char *obj, const char *name, char *buf, size_t n) {
    char *s = read_attr_string(c, obj, name);
    if (!s) return -1;
    size_t len = strlen(s);
    int rc = 0;
    if (len >= n)
        rc = err_set("%s: %s: attribute %s is %zu bytes, longer than the %zu-byte buffer",
                     c->path, obj, name, len, n);
    else memcpy(buf, s, len + 1);
    free(s);
    return rc;
}

int ckpt_has_attr(Ckpt *c, const char *obj_in, const char *name) {
    char obj[CKPT_NAME_MAX];
    if (norm_path(c, obj_in, obj) || !path_exists(c, obj)) return 0;
    return H5Aexists_by_name(c->file, obj, name, H5P_DEFAULT) > 0;
}

int ckpt_has(Ckpt *c, const char *path_in) {
    char path[CKPT_NAME_MAX];
    if (norm_path(c, path_in, path)) return 0;
    return path_exists(c, path);
}

/* Opens a dataset given a normalised path; missing -> error. */
static hid_t open_dataset(const Ckpt *c, const char *path) {
    if (!path_exists(c, path)) {
        err_set("%s: %s: missing dataset", c->path, path);
        return H5I_INVALID_HID;
    }
    hid_t d = H5Dopen2(c->file, path, H5P_DEFAULT);
    if (d < 0) h5_fail(c, path, "cannot open dataset");
    return d;
}

static int shape_of(const Ckpt *c, const char *path, int *ndim, hsize_t dims[CKPT_MAX_DIMS]) {
    hid_t d = open_dataset(c, path);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    int n = H5Sget_simple_extent_ndims(s), rc = 0;
    if (n < 0 || n > CKPT_MAX_DIMS) rc = err_set("%s: %s: unsupported rank %d", c->path, path, n);
    else H5Sget_simple_extent_dims(s, dims, NULL);
    *ndim = n;
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

int ckpt_get_shape(Ckpt *c, const char *path_in, int *ndim, int64_t dims[CKPT_MAX_DIMS]) {
    char path[CKPT_NAME_MAX];
    hsize_t hd[CKPT_MAX_DIMS];
    if (norm_path(c, path_in, path) || shape_of(c, path, ndim, hd)) return -1;
    for (int i = 0; i < *ndim; i++) dims[i] = (int64_t)hd[i];
    return 0;
}

static int read_dataset(const Ckpt *c, const char *path, CkptType t, int64_t count, void *data) {
    if (!type_valid(t)) return err_set("%s: %s: invalid element type %d", c->path, path, (int)t);
    hid_t d = open_dataset(c, path);
    if (d < 0) return -1;
    hid_t ft = H5Dget_type(d), s = H5Dget_space(d);
    hssize_t have = H5Sget_simple_extent_npoints(s);
    char tn[32];
    int rc = 0;
    if (!type_matches(ft, t)) {
        h5util_describe_type(ft, tn, sizeof tn);
        rc = err_set("%s: %s: stored as %s, expected %s", c->path, path, tn, type_name(t));
    } else if (have != count) {
        rc = err_set("%s: %s: holds %lld elements, expected %lld", c->path, path,
                     (long long)have, (long long)count);
    } else if (count && H5Dread(d, mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        rc = h5_fail(c, path, "cannot read dataset");
    }
    H5Sclose(s);
    H5Tclose(ft);
    H5Dclose(d);
    return rc;
}

int ckpt_get_array(Ckpt *c, const char *path_in, CkptType t, int64_t count, void *data) {
    char path[CKPT_NAME_MAX];
    if (norm_path(c, path_in, path)) return -1;
    return read_dataset(c, path, t, count, data);
}

static void format_shape(char *out, size_t n, int ndim, const hsize_t *dims) {
    int k = snprintf(out, n, "(");
    for (int i = 0; i < ndim && k < (int)n; i++)
        k += snprintf(out + k, n - k, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (k < (int)n) snprintf(out + k, n - k, ")");
}

/* Reads one tensor, checking its shape against the layout's. */
static int get_tensor(const Ckpt *c, const char *path, const GptTensor *t, float *dst) {
    hsize_t dims[CKPT_MAX_DIMS], want[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
    int ndim;
    if (!path_exists(c, path)) return err_set("%s: %s: missing tensor", c->path, path);
    if (shape_of(c, path, &ndim, dims)) return -1;
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = dims[i] == want[i];
    if (!same) {
        char a[96], b[96];
        format_shape(a, sizeof a, ndim, dims);
        format_shape(b, sizeof b, t->ndim, want);
        return err_set("%s: %s: shape %s in file, model expects %s", c->path, path, a, b);
    }
    return read_dataset(c, path, CKPT_F32, (int64_t)t->size, dst);
}

typedef struct {
    const Gpt *layout;
    char extra[64];
} ExtraScan;

static herr_t find_extra(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    ExtraScan *x = data;
    (void)g;
    (void)info;
    if (gpt_find_tensor(x->layout, name)) return 0;
    snprintf(x->extra, sizeof x->extra, "%s", name);
    return 1; /* stop: found one */
}

/* A group holding more entries than the layout has tensors belongs to a
 * different model (e.g. a scalar head read as an LM). */
static int check_no_extra(const Ckpt *c, const char *group, const Gpt *layout) {
    ExtraScan x = {layout, ""};
    hid_t g = H5Gopen2(c->file, group, H5P_DEFAULT);
    if (g < 0) return h5_fail(c, group, "cannot open group");
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, find_extra, &x);
    H5Gclose(g);
    if (rc < 0) return err_set("%s: %s: cannot list the group", c->path, group);
    if (x.extra[0]) return err_set("%s: %s/%s: tensor not in the model", c->path, group, x.extra);
    return 0;
}

static int get_tensors(const Ckpt *c, const char *group_in, const Gpt *layout, float *buf) {
    char group[CKPT_NAME_MAX], path[CKPT_NAME_MAX];
    if (norm_path(c, group_in, group)) return -1;
    if (!path_exists(c, group)) return err_set("%s: %s: missing group", c->path, group);
    for (int i = 0; i < layout->n_tensors; i++) {
        const GptTensor *t = &layout->tensors[i];
        if (join_path(c, group, t->name, path) || get_tensor(c, path, t, buf + t->offset))
            return -1;
    }
    if (check_no_extra(c, group, layout)) return -1;
    /* parameters and optimizer moments alike: NaN/Inf is refused here, naming the tensor */
    if (gpt_check_finite(layout, buf)) return err_prefix("%s: %s: ", c->path, group);
    return 0;
}

int ckpt_get_buffer(Ckpt *c, const char *group, const Gpt *layout, float *buf) {
    if (!layout || !buf) return err_set("%s: %s: NULL layout or buffer", c->path, group);
    return get_tensors(c, group, layout, buf);
}

/* An int-valued root attribute of the model config. */
static int get_config_int(const Ckpt *c, const char *name, int *out) {
    int64_t v;
    if (read_attr_num(c, "/", name, H5T_INTEGER, H5T_NATIVE_INT64, &v)) return -1;
    if (v < INT_MIN || v > INT_MAX)
        return err_set("%s: /: attribute %s = %lld out of range", c->path, name, (long long)v);
    *out = (int)v;
    return 0;
}

int ckpt_get_config(const Ckpt *c, GptConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (get_config_int(c, "vocab_size", &cfg->vocab_size) ||
        get_config_int(c, "n_ctx", &cfg->n_ctx) ||
        get_config_int(c, "n_layer", &cfg->n_layer) ||
        get_config_int(c, "n_head", &cfg->n_head) ||
        get_config_int(c, "n_embd", &cfg->n_embd))
        return -1;
    char *head = read_attr_string(c, "/", "head");
    if (!head) return -1;
    int rc = 0;
    if (!strcmp(head, "lm")) cfg->head = GPT_HEAD_LM;
    else if (!strcmp(head, "scalar")) cfg->head = GPT_HEAD_SCALAR;
    else rc = err_set("%s: /: attribute head is \"%s\", expected \"lm\" or \"scalar\"", c->path, head);
    free(head);
    if (!rc && gpt_config_validate(cfg)) rc = err_prefix("%s: model config: ", c->path);
    return rc;
}

/* Sizes read from a file are checked against the file's own size before
 * anything is allocated from them: a damaged or crafted checkpoint must get
 * a message, not an allocation of terabytes (found by tests/fuzz). */
static int file_size(const Ckpt *c, hsize_t *size) {
    if (H5Fget_filesize(c->file, size) < 0) return h5_fail(c, NULL, "cannot get the file size");
    return 0;
}

/* Parameters are stored as float32; even compressed (h5repack) they keep
 * over 2 bytes each, so a config implying more than the file can hold is
 * damaged. Counted in double: the int fields can overflow 64 bits. */
static int check_model_fits(const Ckpt *c, const GptConfig *cfg) {
    double C = cfg->n_embd, params = (double)cfg->vocab_size * C + (double)cfg->n_ctx * C +
                                     (double)cfg->n_layer * (12 * C * C + 13 * C) + 2 * C;
    hsize_t size;
    if (file_size(c, &size)) return -1;
    if (2 * params > (double)size)
        return err_set("%s: model config implies %.0f parameters, more than the file (%llu bytes) can hold",
                       c->path, params, (unsigned long long)size);
    return 0;
}

int ckpt_get_model(Ckpt *c, Gpt *m) {
    GptConfig cfg;
    memset(m, 0, sizeof *m);
    if (ckpt_get_config(c, &cfg) || check_model_fits(c, &cfg)) return -1;
    if (gpt_init(m, &cfg)) return err_prefix("%s: ", c->path);
    if (get_tensors(c, "/params", m, m->params)) {
        gpt_free(m);
        return -1;
    }
    return 0;
}

/* A 1-D u8 dataset as a malloc'd NUL-terminated string. */
static char *get_bytes(const Ckpt *c, const char *path, size_t *len) {
    hsize_t dims[CKPT_MAX_DIMS];
    int ndim;
    if (shape_of(c, path, &ndim, dims)) return NULL;
    if (ndim != 1) {
        err_set("%s: %s: expected a 1-D byte array", c->path, path);
        return NULL;
    }
    hsize_t size;
    if (file_size(c, &size)) return NULL;
    if (dims[0] > size) {
        err_set("%s: %s: claims %llu bytes, more than the whole file (%llu bytes)", c->path, path,
                (unsigned long long)dims[0], (unsigned long long)size);
        return NULL;
    }
    char *s = err_malloc(dims[0] + 1);
    if (read_dataset(c, path, CKPT_U8, (int64_t)dims[0], s)) {
        free(s);
        return NULL;
    }
    s[dims[0]] = 0;
    *len = dims[0];
    return s;
}

static Tok *get_gpt2_tok(const Ckpt *c) {
    size_t vlen = 0, mlen = 0;
    char *vocab = get_bytes(c, "/tokenizer/vocab_json", &vlen);
    char *merges = vocab ? get_bytes(c, "/tokenizer/merges_txt", &mlen) : NULL;
    Tok *t = NULL;
    if (merges) {
        t = tok_gpt2_from_memory(vocab, vlen, merges, mlen);
        if (!t) err_prefix("%s: /tokenizer: ", c->path);
    }
    free(vocab);
    free(merges);
    return t;
}

Tok *ckpt_get_tok(Ckpt *c) {
    if (!ckpt_has_attr(c, "/", "tokenizer")) {
        err_set("%s: no tokenizer stored", c->path);
        return NULL;
    }
    char *kind = read_attr_string(c, "/", "tokenizer");
    if (!kind) return NULL;
    Tok *t = NULL;
    if (!strcmp(kind, "byte")) {
        t = tok_byte_new();
        if (!t) err_set("%s: the byte tokenizer is unavailable", c->path);
    } else if (!strcmp(kind, "gpt2")) {
        t = get_gpt2_tok(c);
    } else {
        err_set("%s: /: attribute tokenizer is \"%s\", expected \"byte\" or \"gpt2\"", c->path, kind);
    }
    free(kind);
    int64_t vocab;
    if (t && ckpt_has_attr(c, "/", "vocab_size") &&
        !ckpt_get_attr_i64(c, "/", "vocab_size", &vocab) && tok_vocab_size(t) > vocab) {
        err_set("%s: tokenizer has %d tokens but the model's vocab_size is %lld", c->path,
                tok_vocab_size(t), (long long)vocab);
        tok_free(t);
        t = NULL;
    }
    return t;
}

/* Rule: a checkpoint is self-contained. An external link (to another
 * file, which may be anything: a FIFO, a file being written) or a
 * user-defined link is refused when the checkpoint is opened; one pass over
 * every link, without following any. */
typedef struct {
    const Ckpt *c;
    int bad;
} LinkScan;

static herr_t find_foreign_link(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    LinkScan *x = data;
    if (info->type == H5L_TYPE_HARD || info->type == H5L_TYPE_SOFT) return 0;
    x->bad = 1;
    if (info->type != H5L_TYPE_EXTERNAL) {
        err_set("%s: /%s: user-defined HDF5 link refused (a checkpoint must be self-contained)", x->c->path, name);
        return 1;
    }
    char val[1024] = "";
    const char *file = "?", *obj = "?";
    if (info->u.val_size <= sizeof val && H5Lget_val(g, name, val, sizeof val, H5P_DEFAULT) >= 0)
        H5Lunpack_elink_val(val, info->u.val_size, NULL, &file, &obj);
    err_set("%s: /%s: external link to %.300s:%.300s refused (a checkpoint must be self-contained)", x->c->path,
            name, file, obj);
    return 1; /* stop at the first */
}

static int check_links(const Ckpt *c) {
    LinkScan x = {.c = c, .bad = 0};
    herr_t rc = H5Lvisit(c->file, H5_INDEX_NAME, H5_ITER_NATIVE, find_foreign_link, &x);
    if (x.bad) return -1;
    if (rc < 0) return h5_fail(c, "/", "cannot list the links");
    return 0;
}

/* The format/version check that makes a file ours. */
static int check_format(Ckpt *c) {
    if (!ckpt_has_attr(c, "/", "format"))
        return err_set("%s: not an rlhf checkpoint (no \"format\" attribute on /)", c->path);
    char *fmt = read_attr_string(c, "/", "format");
    if (!fmt) return -1;
    int ours = !strcmp(fmt, CKPT_FORMAT);
    if (!ours) err_set("%s: not an rlhf checkpoint (format is \"%.60s\", expected \"%s\")",
                       c->path, fmt, CKPT_FORMAT);
    free(fmt);
    if (!ours) return -1;
    int64_t version;
    if (ckpt_get_attr_i64(c, "/", "version", &version)) return -1;
    if (version != CKPT_VERSION)
        return err_set("%s: checkpoint format version %lld is not supported (this build reads version %d)",
                       c->path, (long long)version, CKPT_VERSION);
    return 0;
}

Ckpt *ckpt_open(const char *path) {
    h5util_quiet();
    struct stat st;
    if (!path || stat(path, &st)) {
        err_set("%s: %s", path ? path : "(null)", path ? strerror(errno) : "no checkpoint path");
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        err_set("%s: is a directory, expected a checkpoint file", path);
        return NULL;
    }
    if (fs_check_input(path, "a checkpoint")) return NULL; /* a FIFO would block H5Fopen */
    Ckpt *c = err_calloc(1, sizeof *c);
    c->path = err_strdup(path);
    hid_t fapl = make_fapl();
    c->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    char reason[200];
    if (c->file < 0) h5util_reason(reason, sizeof reason); /* before H5Pclose clears the stack */
    H5Pclose(fapl);
    if (c->file < 0) {
        if (h5util_signature(path) != 1) err_set("%s: not an HDF5 file", path);
        else err_set("%s: damaged or truncated HDF5 file (%s)", path, reason);
        ckpt_free(c);
        return NULL;
    }
    if (check_format(c) || check_links(c) ||
        (ckpt_has_attr(c, "/", "kind") &&
         ckpt_get_attr_str(c, "/", "kind", c->kind, sizeof c->kind))) {
        ckpt_close(c);
        return NULL;
    }
    return c;
}

const char *ckpt_path(const Ckpt *c) { return c->path; }
const char *ckpt_kind(const Ckpt *c) { return c->kind; }

void ckpt_close(Ckpt *c) {
    if (!c) return;
    if (c->tmp) { /* closing a checkpoint still being written abandons it */
        ckpt_discard(c);
        return;
    }
    if (c->file >= 0) H5Fclose(c->file);
    ckpt_free(c);
}

/* ---- run configuration ------------------------------------------------- */

int ckpt_save_config(Ckpt *c, const Config *cfg) {
    for (int i = 0; i < config_count(cfg); i++) {
        const char *key = config_key_at(cfg, i)->key, *val = config_get_raw(cfg, key);
        if (val && ckpt_put_attr_str(c, "/config", key, val)) return -1;
    }
    return 0;
}

/* Reads one key from /config; a missing attribute is an error only when
 * the caller asked for the key by name. */
static int load_config_key(Ckpt *c, Config *cfg, const char *key, int must_exist, char *buf, size_t n) {
    if (!ckpt_has_attr(c, "/config", key)) {
        if (!must_exist) return 0;
        return err_set("%s: /config has no attribute '%s'", c->path, key);
    }
    if (ckpt_get_attr_str(c, "/config", key, buf, n)) return -1;
    char where[4096];
    snprintf(where, sizeof where, "%s: /config", c->path); /* error messages name the group */
    if (config_set(cfg, key, buf, where)) return -1;
    return config_set_origin(cfg, key, c->path); /* config_print shows the file */
}

int ckpt_load_config(Ckpt *c, Config *cfg, const char *const *keys) {
    size_t n = 1 << 16;
    char *buf = err_malloc(n);
    int rc = 0;
    for (int i = 0; !keys && i < config_count(cfg) && !rc; i++)
        rc = load_config_key(c, cfg, config_key_at(cfg, i)->key, 0, buf, n);
    for (int j = 0; keys && keys[j] && !rc; j++) {
        if (!config_origin(cfg, keys[j])) rc = err_set("%s: config key '%s' is not declared", c->path, keys[j]);
        else rc = load_config_key(c, cfg, keys[j], 1, buf, n);
    }
    free(buf);
    return rc;
}

/* ---- convenience -------------------------------------------------------- */

int ckpt_save_model(const char *path, const Gpt *m, const Tok *tok, const char *kind) {
    Ckpt *c = ckpt_create(path);
    if (!c) return -1;
    if (ckpt_put_model(c, m, tok, kind)) {
        ckpt_discard(c);
        return -1;
    }
    return ckpt_commit(c);
}

int ckpt_load_model(const char *path, Gpt *m, Tok **tok, char *kind, size_t kind_len) {
    memset(m, 0, sizeof *m);
    if (tok) *tok = NULL;
    Ckpt *c = ckpt_open(path);
    if (!c) return -1;
    int rc = ckpt_get_model(c, m);
    if (!rc && kind && strlen(c->kind) >= kind_len)
        rc = err_set("%s: kind \"%s\" does not fit in %zu bytes", path, c->kind, kind_len);
    if (!rc && kind) memcpy(kind, c->kind, strlen(c->kind) + 1);
    if (!rc && tok && !(*tok = ckpt_get_tok(c))) rc = -1;
    if (rc && m->params) gpt_free(m);
    ckpt_close(c);
    return rc;
}

/* 1 if two tokenizers encode alike: the same kind and files, or the byte
 * tokenizer and a GPT-2 one that is plain bytes. */
static int tok_alike(const Tok *a, const Tok *b) {
    if (tok_kind(a) != tok_kind(b)) return tok_is_plain_bytes(a) || tok_is_plain_bytes(b);
    if (tok_kind(a) == TOK_BYTE) return 1;
    size_t va, vb, ma, mb;
    const char *ja = tok_vocab_json(a, &va), *jb = tok_vocab_json(b, &vb);
    const char *ra = tok_merges_txt(a, &ma), *rb = tok_merges_txt(b, &mb);
    return va == vb && ma == mb && !memcmp(ja, jb, va) && !memcmp(ra, rb, ma);
}

static const char *head_name(GptHead h) { return h == GPT_HEAD_LM ? "language-model" : "scalar"; }

/* The checks of ckpt_load_model_as on an open checkpoint's model. */
static int check_wanted(Ckpt *c, const Gpt *m, const CkptWant *w) {
    const GptConfig *g = &m->cfg;
    if (g->head != w->head)
        return err_set("%s: is a %s checkpoint (%s head); %s must be a %s", c->path, *c->kind ? c->kind : "model",
                       head_name(g->head), w->what,
                       w->head == GPT_HEAD_LM ? "language model" : "scalar-head (reward/value) model");
    if (w->vocab > 0 && g->vocab_size != w->vocab)
        return err_set("%s: %s must be of the same vocabulary as %s (%d tokens); it has %d", c->path, w->what,
                       w->like, w->vocab, g->vocab_size);
    if (w->min_ctx > 0 && g->n_ctx < w->min_ctx)
        return err_set("%s: %s must have at least the context of %s (%d tokens); it has %d", c->path, w->what,
                       w->like, w->min_ctx, g->n_ctx);
    if (!w->tok || !ckpt_has_attr(c, "/", "tokenizer")) return 0;
    Tok *t = ckpt_get_tok(c);
    int same = t && tok_alike(t, w->tok);
    tok_free(t);
    if (!t) return -1;
    return same ? 0 : err_set("%s: %s must use the same tokenizer as %s", c->path, w->what, w->like);
}

int ckpt_load_model_as(const char *path, Gpt *m, Tok **tok, const CkptWant *want) {
    memset(m, 0, sizeof *m);
    if (tok) *tok = NULL;
    Ckpt *c = ckpt_open(path);
    if (!c) return -1;
    int rc = ckpt_get_model(c, m) || check_wanted(c, m, want);
    if (!rc && tok && !(*tok = ckpt_get_tok(c))) rc = -1;
    if (rc && m->params) gpt_free(m);
    ckpt_close(c);
    return rc ? -1 : 0;
}

/* ---- Resuming (see ckpt.h for the rule) ---------------------------------- */

int ckpt_put_model_config(Ckpt *c, const char *obj, const GptConfig *g) {
    return ckpt_put_attr_i64(c, obj, "vocab_size", g->vocab_size) ||
                   ckpt_put_attr_i64(c, obj, "n_ctx", g->n_ctx) ||
                   ckpt_put_attr_i64(c, obj, "n_layer", g->n_layer) ||
                   ckpt_put_attr_i64(c, obj, "n_head", g->n_head) ||
                   ckpt_put_attr_i64(c, obj, "n_embd", g->n_embd) ||
                   ckpt_put_attr_str(c, obj, "head", g->head == GPT_HEAD_SCALAR ? "scalar" : "lm")
               ? -1
               : 0;
}

int ckpt_check_model_config(Ckpt *c, const char *obj, const GptConfig *want, const char *what) {
    static const char *const names[] = {"vocab_size", "n_ctx", "n_layer", "n_head", "n_embd"};
    const int wanted[] = {want->vocab_size, want->n_ctx, want->n_layer, want->n_head, want->n_embd};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int64_t v;
        if (ckpt_get_attr_i64(c, obj, names[i], &v)) return -1;
        if (v != wanted[i])
            return err_set("%s: %s: %s is %lld in the checkpoint, %d in this run; use a new out_dir or the same model",
                           c->path, what, names[i], (long long)v, wanted[i]);
    }
    char head[16];
    if (ckpt_get_attr_str(c, obj, "head", head, sizeof head)) return -1;
    const char *want_head = want->head == GPT_HEAD_SCALAR ? "scalar" : "lm";
    if (strcmp(head, want_head))
        return err_set("%s: %s: head is %s in the checkpoint, %s in this run; use a new out_dir or the same model",
                       c->path, what, head, want_head);
    return 0;
}

int ckpt_get_rm_norm(const char *path, double *offset, double *scale) {
    Ckpt *k = ckpt_open(path);
    *offset = 0;
    *scale = 1;
    if (!k) return -1;
    int rc = 0;
    if (ckpt_has_attr(k, "/reward", "score_offset"))
        rc = ckpt_get_attr_f64(k, "/reward", "score_offset", offset) ||
             ckpt_get_attr_f64(k, "/reward", "score_scale", scale);
    ckpt_close(k);
    if (!rc && !(*scale > 0)) rc = err_set("%s: score_scale must be positive", path);
    return rc;
}
