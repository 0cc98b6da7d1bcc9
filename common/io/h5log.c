/* h5log — append-only HDF5 tables (training metrics, PPO rollout logs)
 * written under SWMR so h5py and `rlhf inspect` can read them while a run
 * is going; see h5log.h for the layout and the crash/resume contract.
 *
 * HDF5's own error printing is switched off: every failure becomes one
 * err_set() line "PATH: column 'x': what went wrong (HDF5's innermost
 * reason)". Every HDF5 handle a function opens is closed on all its paths;
 * a log's datasets stay open for the life of the handle.
 *
 * HDF5 1.10 cannot survive a failed file close, and after a failed write
 * (disk full) the close's own flush would fail again; so a log whose write
 * failed is closed "abandoned": its descriptor is first pointed at an
 * anonymous in-memory file, leaving on disk exactly what the last
 * successful flush put there (see h5util_detach). */
#include "common/io/h5log.h"

#include <errno.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/h5util.h"

/* Storage. Under SWMR, HDF5 1.10 did not reuse freed file space in our
 * measurements (with or without a free-space manager strategy), and a
 * compressed chunk moves whenever a flush rewrites it bigger: every flush
 * leaves the previous copy of each partly filled compressed chunk behind
 * as dead space (measured: 20 scalar columns in 8192-row gzip chunks,
 * flushed after every row, took 129 KB per row and 11 ms per flush). So:
 * - rows under GZIP_MIN_ROW_BYTES (scalars, short arrays) are stored
 *   uncompressed in chunks of about 4 KiB, which flushes rewrite in place;
 * - wider rows (token ids, per-token floats: the padding compresses away)
 *   are gzip + shuffle compressed in chunks of 64 rows, about one rollout
 *   batch, so that flushing once per batch writes each chunk about once.
 * Rows are buffered in memory up to about 1 MiB per log. */
#define RAW_CHUNK_BYTES 4096
#define RAW_CHUNK_ROWS_MAX 512
#define GZIP_MIN_ROW_BYTES 64
#define GZIP_CHUNK_ROWS 64
#define GZIP_CHUNK_BYTES_MAX (512 * 1024)
#define GZIP_LEVEL 4
#define BUFFER_BYTES (1 << 20)
#define BUFFER_ROWS_MIN 64
#define BUFFER_ROWS_MAX 8192
#define WRITER_MAX 512

typedef struct {
    hid_t dset;
    size_t elem;        /* bytes per value */
    size_t row_bytes;   /* elem * max(width, 1) */
    unsigned char *buf; /* buffered rows not yet written */
    unsigned char *row; /* the row being built */
    int set;            /* the row being built has this column */
} Col;

struct H5log {
    char *path;
    char kind[H5LOG_NAME_MAX];
    hid_t file;
    int writing;
    int swmr_read;      /* opened with H5F_ACC_SWMR_READ: refresh can see new rows */
    int failed;         /* a write failed: no more writes, close abandons */
    int row_started;
    int n_cols;
    H5logColumn *pub;   /* names and help strings owned by the log */
    Col *cols;
    int64_t disk_rows;  /* rows in every dataset */
    int buf_rows, buf_cap;
};

/* Columns found in a file, in creation order, with their datasets open. */
typedef struct {
    int n;
    H5logColumn col[H5LOG_MAX_COLUMNS];
    hid_t dset[H5LOG_MAX_COLUMNS];
    int64_t rows[H5LOG_MAX_COLUMNS];
} Scan;

/* ---- HDF5 plumbing ------------------------------------------------------ */

/* err_set("PATH: column 'col': what (reason)") from HDF5's error stack. */
static int h5_fail(const H5log *l, const char *col, const char *what) {
    if (!col) return h5util_fail(l->path, what);
    char where[4096];
    snprintf(where, sizeof where, "%s: column '%s'", l->path, col);
    return h5util_fail(where, what);
}

/* Latest format (SWMR needs it); h5util_fapl has no file locking: SWMR
 * does not rely on it, and a reader's lock would stop a resumed run from
 * reopening its log. clear_flags opens a file whose writer died (HDF5 left
 * it marked "open for write"), as h5clear does. */
static hid_t make_fapl(int clear_flags) {
    return h5util_fapl(H5UTIL_FAPL_LATEST | (clear_flags ? H5UTIL_FAPL_CLEAR_FLAGS : 0));
}

static int put_attr_i64(hid_t obj, const char *name, int64_t v) {
    return h5util_put_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

/* Opens an attribute that may be missing: invalid id if it is. */
static hid_t open_attr(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return H5I_INVALID_HID;
    return H5Aopen(obj, name, H5P_DEFAULT);
}

/* A scalar string attribute (variable or fixed length) as a malloc'd
 * string; NULL if missing or not a string. */
static char *get_attr_str(hid_t obj, const char *name) {
    hid_t a = open_attr(obj, name);
    if (a < 0) return NULL;
    char *out = NULL;
    h5util_read_str(a, &out);
    H5Aclose(a);
    return out;
}

static int get_attr_i64(hid_t obj, const char *name, int64_t *v) {
    hid_t a = open_attr(obj, name);
    if (a < 0) return -1;
    H5utilRead rc = h5util_read_num(a, H5T_INTEGER, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    return rc == H5UTIL_READ_OK ? 0 : -1;
}

/* ---- column types ------------------------------------------------------- */

const char *h5log_type_name(H5logType t) {
    static const char *names[] = {"f64", "f32", "i64", "i32"};
    return (unsigned)t <= H5LOG_I32 ? names[t] : "invalid type";
}

static size_t type_size(H5logType t) { return t == H5LOG_F64 || t == H5LOG_I64 ? 8 : 4; }

/* H5logType as h5util's element type (callers check the type first). */
static H5utilType as_h5util(H5logType t) {
    static const H5utilType map[] = {
        [H5LOG_F64] = H5UTIL_F64, [H5LOG_F32] = H5UTIL_F32,
        [H5LOG_I64] = H5UTIL_I64, [H5LOG_I32] = H5UTIL_I32,
    };
    return map[t];
}

static hid_t file_type(H5logType t) { return h5util_file_type(as_h5util(t)); }
static hid_t mem_type(H5logType t) { return h5util_mem_type(as_h5util(t)); }

/* The H5logType of a stored type, -1 if none matches exactly. */
static int type_of_h5(hid_t h5t) {
    int t = h5util_type_of(h5t);
    for (int k = H5LOG_F64; k <= H5LOG_I32; k++)
        if (t >= 0 && as_h5util((H5logType)k) == (H5utilType)t) return k;
    return -1;
}

/* "i32 x128" or "f64". */
static const char *describe(const H5logColumn *c, char out[48]) {
    if (c->width) snprintf(out, 48, "%s x%d", h5log_type_name(c->type), c->width);
    else snprintf(out, 48, "%s", h5log_type_name(c->type));
    return out;
}

/* Reading as `to` loses nothing (beyond i64 -> f64 rounding past 2^53). */
static int converts_safely(H5logType from, H5logType to) {
    return from == to || to == H5LOG_F64 || (to == H5LOG_I64 && from == H5LOG_I32);
}

/* ---- checking what callers pass ----------------------------------------- */

static int check_name(const char *path, const char *what, const char *name) {
    if (!name || !name[0]) return err_set("%s: empty %s name", path, what);
    if (strlen(name) >= H5LOG_NAME_MAX)
        return err_set("%s: %s name '%.40s...' is longer than %d bytes", path, what, name,
                       H5LOG_NAME_MAX - 1);
    if (strchr(name, '/') || !strcmp(name, "."))
        return err_set("%s: %s name '%s' contains '/' or is '.'", path, what, name);
    return 0;
}

static int check_columns(const char *path, const H5logColumn *cols, int n) {
    if (!cols || n < 1 || n > H5LOG_MAX_COLUMNS)
        return err_set("%s: %d columns given; a log has 1..%d", path, cols ? n : 0, H5LOG_MAX_COLUMNS);
    for (int i = 0; i < n; i++) {
        const H5logColumn *c = &cols[i];
        if (check_name(path, "column", c->name)) return -1;
        if ((unsigned)c->type > H5LOG_I32)
            return err_set("%s: column '%s': invalid type %d", path, c->name, (int)c->type);
        if (c->width < 0 || c->width > H5LOG_MAX_WIDTH)
            return err_set("%s: column '%s': width %d outside 0..%d", path, c->name, c->width,
                           H5LOG_MAX_WIDTH);
        for (int j = 0; j < i; j++)
            if (!strcmp(cols[j].name, c->name))
                return err_set("%s: column '%s' declared twice", path, c->name);
    }
    return 0;
}

static int check_path(const char *fn, const char *path) {
    if (!path || !path[0]) return err_set("%s: empty log path", fn);
    return 0;
}

/* Missing files and non-HDF5 files get plain messages, not HDF5's. */
static int check_is_hdf5(const char *path) {
    if (fs_check_input(path, "an HDF5 log")) return -1; /* a FIFO would block the open */
    int sig = h5util_signature(path);
    if (sig < 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    if (!sig) return err_set("%s: not an HDF5 file (so not an rlhf log)", path);
    return 0;
}

/* ---- allocation --------------------------------------------------------- */

static void col_init(Col *c, const H5logColumn *pub) {
    c->dset = H5I_INVALID_HID;
    c->elem = type_size(pub->type);
    c->row_bytes = c->elem * (size_t)(pub->width ? pub->width : 1);
}

static H5log *log_new(const char *path) {
    H5log *l = err_calloc(1, sizeof *l);
    l->path = err_strdup(path);
    l->file = H5I_INVALID_HID;
    return l;
}

/* Copies the caller's column table (names and help owned by the log). */
static void set_columns(H5log *l, const H5logColumn *cols, int n) {
    l->n_cols = n;
    l->pub = err_calloc((size_t)n, sizeof *l->pub);
    l->cols = err_calloc((size_t)n, sizeof *l->cols);
    for (int i = 0; i < n; i++) {
        l->pub[i] = cols[i];
        l->pub[i].name = err_strdup(cols[i].name);
        l->pub[i].help = err_strdup(cols[i].help ? cols[i].help : "");
        col_init(&l->cols[i], &l->pub[i]);
    }
}

static void alloc_buffers(H5log *l) {
    size_t row_bytes = 0;
    for (int i = 0; i < l->n_cols; i++) row_bytes += l->cols[i].row_bytes;
    size_t cap = BUFFER_BYTES / row_bytes;
    if (cap < BUFFER_ROWS_MIN) cap = BUFFER_ROWS_MIN;
    if (cap > BUFFER_ROWS_MAX) cap = BUFFER_ROWS_MAX;
    l->buf_cap = (int)cap;
    for (int i = 0; i < l->n_cols; i++) {
        l->cols[i].buf = err_malloc(cap * l->cols[i].row_bytes);
        l->cols[i].row = err_calloc(1, l->cols[i].row_bytes);
    }
}

static void log_free(H5log *l) {
    for (int i = 0; i < l->n_cols; i++) {
        free((char *)l->pub[i].name);
        free((char *)l->pub[i].help);
        free(l->cols[i].buf);
        free(l->cols[i].row);
    }
    free(l->pub);
    free(l->cols);
    free(l->path);
    free(l);
}

static void scan_free(Scan *s) {
    for (int i = 0; i < s->n; i++) {
        if (s->dset[i] >= 0) H5Dclose(s->dset[i]);
        free((char *)s->col[i].name);
        free((char *)s->col[i].help);
    }
    free(s);
}

/* ---- closing ------------------------------------------------------------ */

/* Closes every handle and frees l. Returns -1 if the final close failed. */
static int release(H5log *l, int abandon) {
    int rc = 0;
    if (abandon && l->file >= 0) h5util_detach(l->file); /* see the top of this file */
    for (int i = 0; i < l->n_cols; i++)
        if (l->cols[i].dset >= 0) H5Dclose(l->cols[i].dset);
    if (l->file >= 0 && H5Fclose(l->file) < 0 && !abandon) rc = h5_fail(l, NULL, "cannot close");
    log_free(l);
    return rc;
}

int h5log_close(H5log *l) {
    if (!l) return 0;
    int rc = 0;
    if (l->writing && !l->failed) rc = h5log_flush(l);
    if (!rc && l->row_started)
        rc = err_set("%s: a row was started but never finished with h5log_row_done; it was dropped",
                     l->path);
    if (release(l, l->writing && l->failed)) rc = -1;
    return rc;
}

/* ---- who is writing ----------------------------------------------------- */

/* "HOST PID START": recorded in the file by each process that writes it. */
static void writer_identity(char out[WRITER_MAX]) {
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    snprintf(out, WRITER_MAX, "%s %ld %llu", host, (long)getpid(), fs_process_start(getpid()));
}

/* 1 if the writer recorded as ident is a live process on this host other
 * than us (we cannot be writing the file through another handle: HDF5
 * would have shared it instead of reading the on-disk flags). */
static int writer_alive(const char *ident, long *pid_out) {
    char host[256], me[256] = "unknown";
    long pid;
    unsigned long long start;
    if (sscanf(ident, "%255s %ld %llu", host, &pid, &start) != 3) return 0;
    gethostname(me, sizeof me - 1);
    me[sizeof me - 1] = 0;
    *pid_out = pid;
    if (strcmp(host, me) || pid == (long)getpid() || pid <= 0) return 0;
    if (fs_process_start(getpid()) == 0) /* no /proc: the pid alone must do */
        return kill((pid_t)pid, 0) == 0 || errno == EPERM;
    return fs_process_start(pid) == start;
}

/* The log is marked "open for write": refuse if its writer still runs. */
static int check_writer_gone(const H5log *l) {
    hid_t fapl = make_fapl(1);
    hid_t f = H5Fopen(l->path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return 0; /* the open for appending will say what is wrong */
    char *w = get_attr_str(f, "writer");
    H5Fclose(f);
    long pid = 0;
    int alive = w && writer_alive(w, &pid);
    free(w);
    if (alive)
        return err_set("%s: process %ld on this host is still writing it; two writers would "
                       "destroy the log (if that process does not use it, run h5clear -s %s)",
                       l->path, pid, l->path);
    return 0;
}

/* ---- layout: writing and checking --------------------------------------- */

static int compressed(size_t row_bytes) { return row_bytes >= GZIP_MIN_ROW_BYTES; }

/* Rows per chunk (see Storage at the top). */
static hsize_t chunk_rows(size_t row_bytes) {
    size_t max = compressed(row_bytes) ? GZIP_CHUNK_BYTES_MAX : RAW_CHUNK_BYTES;
    size_t want = compressed(row_bytes) ? GZIP_CHUNK_ROWS : RAW_CHUNK_ROWS_MAX;
    size_t fit = max / row_bytes;
    if (fit < 1) fit = 1;
    return want < fit ? want : fit;
}

/* An empty, unlimited, chunked dataset for column i. */
static int create_dataset(H5log *l, int i) {
    const H5logColumn *c = &l->pub[i];
    int rank = c->width ? 2 : 1;
    hsize_t dims[2] = {0, (hsize_t)c->width}, maxd[2] = {H5S_UNLIMITED, (hsize_t)c->width};
    hsize_t chunk[2] = {chunk_rows(l->cols[i].row_bytes), (hsize_t)c->width};
    hid_t space = H5Screate_simple(rank, dims, maxd);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    if (compressed(l->cols[i].row_bytes)) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, GZIP_LEVEL);
    }
    hid_t d = H5Dcreate2(l->file, c->name, file_type(c->type), space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = 0;
    if (d < 0) rc = h5_fail(l, c->name, "cannot create dataset");
    else if (h5util_put_attr_str(d, "help", c->help)) rc = h5_fail(l, c->name, "cannot write help attribute");
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    return rc;
}

static int write_layout(H5log *l) {
    if (h5util_put_attr_str(l->file, "format", H5LOG_FORMAT) ||
        put_attr_i64(l->file, "version", H5LOG_VERSION) || h5util_put_attr_str(l->file, "kind", l->kind))
        return h5_fail(l, NULL, "cannot write root attributes");
    for (int i = 0; i < l->n_cols; i++)
        if (create_dataset(l, i)) return -1;
    return 0;
}

/* format, version and kind; kind NULL accepts any kind (readers). */
static int check_format(H5log *l, const char *kind) {
    char *format = get_attr_str(l->file, "format");
    char *k = get_attr_str(l->file, "kind");
    int64_t version = 0;
    int rc = 0;
    if (!format || strcmp(format, H5LOG_FORMAT))
        rc = format ? err_set("%s: not an rlhf log (format attribute is '%.60s')", l->path, format)
                    : err_set("%s: not an rlhf log (no format attribute)", l->path);
    else if (get_attr_i64(l->file, "version", &version) || version < 1)
        rc = err_set("%s: rlhf log without a valid version attribute", l->path);
    else if (version > H5LOG_VERSION)
        rc = err_set("%s: log format version %lld is newer than this program reads (%d)", l->path,
                     (long long)version, H5LOG_VERSION);
    else if (!k || !k[0] || strlen(k) >= sizeof l->kind)
        rc = err_set("%s: rlhf log without a valid kind attribute", l->path);
    else if (kind && strcmp(k, kind))
        rc = err_set("%s: is a '%s' log, expected a '%s' log", l->path, k, kind);
    else
        snprintf(l->kind, sizeof l->kind, "%s", k);
    free(format);
    free(k);
    return rc;
}

typedef struct {
    char *names[H5LOG_MAX_COLUMNS];
    int n, too_many;
} Names;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    Names *nl = data;
    (void)g;
    (void)info;
    if (nl->n == H5LOG_MAX_COLUMNS) {
        nl->too_many = 1;
        return 1;
    }
    nl->names[nl->n++] = err_strdup(name);
    return 0;
}

/* Root links in creation order (name order for files that do not track it). */
static int list_root(const H5log *l, Names *nl) {
    memset(nl, 0, sizeof *nl);
    if (H5Literate(l->file, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, collect_name, nl) < 0) {
        for (int i = 0; i < nl->n; i++) free(nl->names[i]);
        memset(nl, 0, sizeof *nl);
        if (H5Literate(l->file, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, nl) < 0)
            return h5_fail(l, NULL, "cannot list columns");
    }
    if (nl->too_many) return err_set("%s: more than %d columns", l->path, H5LOG_MAX_COLUMNS);
    return 0;
}

/* Type, width and rows of dataset d holding column name. */
static int describe_dataset(const H5log *l, hid_t d, const char *name, H5logColumn *c, int64_t *rows) {
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int type = type_of_h5(t), rank = H5Sget_simple_extent_ndims(s), rc = 0;
    hsize_t dims[2] = {0, 0};
    if (rank == 1 || rank == 2) H5Sget_simple_extent_dims(s, dims, NULL);
    if (type < 0)
        rc = err_set("%s: column '%s': stored type is not f64, f32, i64 or i32", l->path, name);
    else if (rank != 1 && rank != 2)
        rc = err_set("%s: column '%s': %d dimensions, expected 1 (scalar) or 2 (array)", l->path,
                     name, rank);
    else if (rank == 2 && (dims[1] < 1 || dims[1] > H5LOG_MAX_WIDTH))
        rc = err_set("%s: column '%s': width %llu outside 1..%d", l->path, name,
                     (unsigned long long)dims[1], H5LOG_MAX_WIDTH);
    H5Sclose(s);
    H5Tclose(t);
    if (rc) return -1;
    c->type = (H5logType)type;
    c->width = rank == 2 ? (int)dims[1] : 0;
    c->help = get_attr_str(d, "help");
    if (!c->help) c->help = err_strdup("");
    *rows = (int64_t)dims[0];
    return 0;
}

/* Opens the dataset of column name; anything else in the root is an error. */
static hid_t open_column(const H5log *l, const char *name) {
    hid_t o = H5Oopen(l->file, name, H5P_DEFAULT);
    if (o < 0) {
        h5_fail(l, name, "cannot open");
        return H5I_INVALID_HID;
    }
    if (H5Iget_type(o) != H5I_DATASET) {
        H5Oclose(o);
        err_set("%s: '/%s' is not a dataset (a log holds only column datasets)", l->path, name);
        return H5I_INVALID_HID;
    }
    return o;
}

/* Opens and describes every column dataset of the file. */
static Scan *scan_columns(const H5log *l) {
    Names nl;
    if (list_root(l, &nl)) return NULL;
    Scan *s = err_calloc(1, sizeof *s);
    int rc = 0;
    for (int i = 0; i < nl.n && !rc; i++) {
        hid_t d = open_column(l, nl.names[i]);
        if (d < 0) {
            rc = -1;
            break;
        }
        int j = s->n++;
        s->dset[j] = d;
        s->col[j].name = nl.names[i];
        nl.names[i] = NULL;
        rc = describe_dataset(l, d, s->col[j].name, &s->col[j], &s->rows[j]);
    }
    for (int i = 0; i < nl.n; i++) free(nl.names[i]);
    if (!rc && s->n == 0) rc = err_set("%s: rlhf log without columns", l->path);
    if (rc) {
        scan_free(s);
        return NULL;
    }
    return s;
}

static int64_t scan_min_rows(const Scan *s) {
    int64_t rows = s->n ? s->rows[0] : 0;
    for (int i = 1; i < s->n; i++)
        if (s->rows[i] < rows) rows = s->rows[i];
    return rows;
}

static int scan_find(const Scan *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->col[i].name, name)) return i;
    return -1;
}

/* Index of the named column, -1 if there is none (no message). */
static int column_index(const H5log *l, const char *name) {
    for (int i = 0; i < l->n_cols; i++)
        if (name && !strcmp(l->pub[i].name, name)) return i;
    return -1;
}

/* The file's columns must be exactly the ones the program writes. */
static int match_columns(const H5log *l, const Scan *s) {
    char want[48], have[48];
    for (int i = 0; i < l->n_cols; i++) {
        const H5logColumn *c = &l->pub[i];
        int j = scan_find(s, c->name);
        if (j < 0)
            return err_set("%s: has no column '%s' (it was written with other columns; "
                           "start a new log)", l->path, c->name);
        if (s->col[j].type != c->type || s->col[j].width != c->width)
            return err_set("%s: column '%s' is %s in the file but %s in this program", l->path,
                           c->name, describe(&s->col[j], have), describe(c, want));
    }
    for (int j = 0; j < s->n; j++)
        if (column_index(l, s->col[j].name) < 0)
            return err_set("%s: column '%s' in the file is not one this program writes", l->path,
                           s->col[j].name);
    return 0;
}

/* Shrinks every column to keep_rows rows (-1: to the shortest column, which
 * only differs from the others if a writer died during a flush). */
static int truncate_rows(H5log *l, const Scan *s, int64_t keep_rows) {
    int64_t rows = scan_min_rows(s);
    if (keep_rows > rows)
        return err_set("%s: has %lld rows, fewer than the %lld to keep (rows written before the "
                       "checkpoint are missing)", l->path, (long long)rows, (long long)keep_rows);
    int64_t target = keep_rows < 0 ? rows : keep_rows;
    for (int j = 0; j < s->n; j++) {
        if (s->rows[j] == target) continue;
        hsize_t dims[2] = {(hsize_t)target, (hsize_t)s->col[j].width};
        if (H5Dset_extent(s->dset[j], dims) < 0) {
            l->failed = 1;
            return h5_fail(l, s->col[j].name, "cannot truncate");
        }
    }
    l->disk_rows = target;
    return 0;
}

/* Records us as the writer, switches to SWMR writing and opens the
 * datasets (after the switch: HDF5 wants no objects open for it). */
static int start_writing(H5log *l) {
    char ident[WRITER_MAX];
    writer_identity(ident);
    if (h5util_put_attr_str(l->file, "writer", ident)) return h5_fail(l, NULL, "cannot write root attributes");
    if (H5Fstart_swmr_write(l->file) < 0) return h5_fail(l, NULL, "cannot start SWMR writing");
    for (int i = 0; i < l->n_cols; i++) {
        /* A chunk cache of two chunks, not HDF5's 1 MiB per dataset: the
         * writer only appends, so the partly filled last chunk is all it
         * needs in memory, and the default cache kept every chunk written
         * (a learner grew ~20 KB per iteration until it held ~1 MiB per
         * column; found by tests/soak.sh). w0 = 1: full chunks leave first. */
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
        size_t chunk_bytes = (size_t)chunk_rows(l->cols[i].row_bytes) * l->cols[i].row_bytes;
        H5Pset_chunk_cache(dapl, 11, 2 * chunk_bytes, 1.0);
        l->cols[i].dset = H5Dopen2(l->file, l->pub[i].name, dapl);
        H5Pclose(dapl);
        if (l->cols[i].dset < 0) return h5_fail(l, l->pub[i].name, "cannot open dataset");
    }
    alloc_buffers(l);
    l->writing = 1;
    return 0;
}

/* ---- opening for writing ------------------------------------------------ */

/* A log is written in place (created with truncation, or appended), so
 * its path must be a regular file or absent, and never a symlink: one
 * would truncate the link's target (fs_check_inplace). */
static int check_args(const char *fn, const char *path, const H5logColumn *cols, int n,
                      const char *kind) {
    return check_path(fn, path) || fs_check_inplace(path) || check_columns(path, cols, n) ||
                   check_name(path, "kind", kind)
               ? -1
               : 0;
}

H5log *h5log_create(const char *path, const H5logColumn *cols, int n_cols, const char *kind) {
    h5util_quiet();
    if (check_args("h5log_create", path, cols, n_cols, kind)) return NULL;
    H5log *l = log_new(path);
    set_columns(l, cols, n_cols);
    snprintf(l->kind, sizeof l->kind, "%s", kind);
    /* Creation order, so readers list columns as they were declared. */
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t fapl = make_fapl(0);
    l->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (l->file < 0) h5_fail(l, NULL, "cannot create HDF5 file"); /* before H5Pclose clears the stack */
    H5Pclose(fapl);
    H5Pclose(fcpl);
    if (l->file < 0 || write_layout(l) || start_writing(l)) {
        release(l, 1);
        return NULL;
    }
    return l;
}

/* Opens for read-write; a log whose writer died is recovered if that
 * writer is gone for sure. */
static int open_rdwr(H5log *l) {
    char reason[200];
    hid_t fapl = make_fapl(0);
    l->file = H5Fopen(l->path, H5F_ACC_RDWR, fapl);
    if (l->file < 0) h5util_reason(reason, sizeof reason);
    H5Pclose(fapl);
    if (l->file >= 0) return 0;
    if (!strstr(reason, "already open for write"))
        return err_set("%s: cannot open for appending (%s)", l->path, reason);
    if (check_writer_gone(l)) return -1;
    fapl = make_fapl(1);
    l->file = H5Fopen(l->path, H5F_ACC_RDWR, fapl);
    if (l->file < 0) h5_fail(l, NULL, "cannot open for appending");
    H5Pclose(fapl);
    if (l->file < 0) return -1;
    /* A writer that died inside a flush (disk full) may have written
     * metadata past the end-of-allocation its superblock records; HDF5
     * would then refuse to touch those objects ("addr overflow"). Cover
     * the whole file, as `h5clear --increment=0` does. */
    if (H5Fincrement_filesize(l->file, 0) < 0) return h5_fail(l, NULL, "cannot repair the file size");
    return 0;
}

H5log *h5log_open_append(const char *path, const H5logColumn *cols, int n_cols, const char *kind,
                         int64_t keep_rows) {
    h5util_quiet();
    if (check_args("h5log_open_append", path, cols, n_cols, kind)) return NULL;
    if (keep_rows < -1) {
        err_set("%s: keep_rows %lld: expected -1 (keep all) or a row count", path, (long long)keep_rows);
        return NULL;
    }
    if (check_is_hdf5(path)) return NULL;
    H5log *l = log_new(path);
    set_columns(l, cols, n_cols);
    Scan *s = NULL;
    int rc = open_rdwr(l) || check_format(l, kind) || !(s = scan_columns(l)) ||
             match_columns(l, s) || truncate_rows(l, s, keep_rows);
    if (s) scan_free(s); /* closes its datasets, as start_writing needs */
    if (rc || start_writing(l)) {
        release(l, l->failed);
        return NULL;
    }
    return l;
}

/* ---- writing rows ------------------------------------------------------- */

static int writable(const H5log *l, const char *fn) {
    if (!l) return err_set("%s: NULL log", fn);
    if (!l->writing) return err_set("%s: opened for reading, cannot write", l->path);
    if (l->failed)
        return err_set("%s: an earlier write failed, so the log takes no more rows "
                       "(reopen it with h5log_open_append)", l->path);
    return 0;
}

/* Writes rows [start, start + n) of column i from its buffer. */
static int write_rows(H5log *l, int i, int64_t start, int n) {
    const H5logColumn *c = &l->pub[i];
    int rank = c->width ? 2 : 1;
    hsize_t size[2] = {(hsize_t)(start + n), (hsize_t)c->width};
    hsize_t off[2] = {(hsize_t)start, 0}, count[2] = {(hsize_t)n, (hsize_t)c->width};
    if (H5Dset_extent(l->cols[i].dset, size) < 0) return h5_fail(l, c->name, "cannot add rows");
    hid_t fs = H5Dget_space(l->cols[i].dset), ms = H5Screate_simple(rank, count, NULL);
    int rc = 0;
    if (fs < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, count, NULL) < 0 ||
        H5Dwrite(l->cols[i].dset, mem_type(c->type), ms, fs, H5P_DEFAULT, l->cols[i].buf) < 0)
        rc = h5_fail(l, c->name, "cannot write rows");
    if (fs >= 0) H5Sclose(fs);
    H5Sclose(ms);
    return rc;
}

/* Moves the buffered rows into the datasets (not yet flushed). */
static int write_buffer(H5log *l) {
    if (!l->buf_rows) return 0;
    if (fs_test_write_fails(l->path)) { /* RLHF_TEST_FAIL_WRITE: as if the disk were full */
        l->failed = 1;
        return err_set("%s: column '%s': cannot write rows (%s; RLHF_TEST_FAIL_WRITE)", l->path, l->pub[0].name,
                       strerror(errno));
    }
    for (int i = 0; i < l->n_cols; i++) {
        if (write_rows(l, i, l->disk_rows, l->buf_rows)) {
            l->failed = 1;
            return -1;
        }
    }
    l->disk_rows += l->buf_rows;
    l->buf_rows = 0;
    return 0;
}

int h5log_append(H5log *l, int n_rows, const void *const *cols) {
    if (writable(l, "h5log_append")) return -1;
    if (n_rows < 0) return err_set("%s: h5log_append: %d rows", l->path, n_rows);
    if (n_rows == 0) return 0;
    if (!cols) return err_set("%s: h5log_append: NULL column array", l->path);
    for (int i = 0; i < l->n_cols; i++)
        if (!cols[i]) return err_set("%s: h5log_append: no values for column '%s'", l->path, l->pub[i].name);
    for (int done = 0; done < n_rows;) {
        int take = l->buf_cap - l->buf_rows;
        if (take > n_rows - done) take = n_rows - done;
        for (int i = 0; i < l->n_cols; i++) {
            const Col *c = &l->cols[i];
            memcpy(c->buf + (size_t)l->buf_rows * c->row_bytes,
                   (const unsigned char *)cols[i] + (size_t)done * c->row_bytes,
                   (size_t)take * c->row_bytes);
        }
        l->buf_rows += take;
        done += take;
        if (l->buf_rows == l->buf_cap && write_buffer(l)) return -1;
    }
    return 0;
}

static int sync_file(H5log *l) {
    int fd = h5util_fd(l->file);
    if (fd < 0) return h5_fail(l, NULL, "cannot find the file descriptor to sync");
    if (fsync(fd) && errno != EINVAL && errno != EROFS)
        return err_set("%s: cannot sync: %s", l->path, strerror(errno));
    return 0;
}

int h5log_flush(H5log *l) {
    if (writable(l, "h5log_flush") || write_buffer(l)) return -1;
    int rc = 0;
    for (int i = 0; i < l->n_cols && !rc; i++)
        if (H5Dflush(l->cols[i].dset) < 0) rc = h5_fail(l, l->pub[i].name, "cannot flush");
    if (!rc && H5Fflush(l->file, H5F_SCOPE_LOCAL) < 0) rc = h5_fail(l, NULL, "cannot flush");
    if (!rc) rc = sync_file(l);
    if (rc) l->failed = 1;
    return rc;
}

/* ---- the row builder ---------------------------------------------------- */

/* Column index for a set call: the column must exist and be an array
 * column iff array is set. */
static int settable(H5log *l, const char *name, const char *fn, int array) {
    if (writable(l, fn)) return -1;
    int i = h5log_find_column(l, name);
    if (i < 0) return -1;
    if ((l->pub[i].width > 0) != (array != 0))
        return err_set("%s: column '%s' is %s; %s is for %s columns", l->path, name,
                       l->pub[i].width ? "an array" : "a scalar", fn, array ? "array" : "scalar");
    return i;
}

static int wrong_type(const H5log *l, int i, const char *fn) {
    char have[48];
    return err_set("%s: column '%s' is %s; %s does not fit it", l->path, l->pub[i].name,
                   describe(&l->pub[i], have), fn);
}

static void mark_set(H5log *l, int i) {
    l->cols[i].set = 1;
    l->row_started = 1;
}

int h5log_set_f64(H5log *l, const char *col, double v) {
    int i = settable(l, col, "h5log_set_f64", 0);
    if (i < 0) return -1;
    if (l->pub[i].type == H5LOG_F64) memcpy(l->cols[i].row, &v, sizeof v);
    else if (l->pub[i].type == H5LOG_F32) {
        float f = (float)v;
        memcpy(l->cols[i].row, &f, sizeof f);
    } else return wrong_type(l, i, "h5log_set_f64");
    mark_set(l, i);
    return 0;
}

int h5log_set_i64(H5log *l, const char *col, int64_t v) {
    int i = settable(l, col, "h5log_set_i64", 0);
    if (i < 0) return -1;
    if (l->pub[i].type == H5LOG_I64) memcpy(l->cols[i].row, &v, sizeof v);
    else if (l->pub[i].type == H5LOG_I32) {
        if (v < INT32_MIN || v > INT32_MAX)
            return err_set("%s: column '%s' is i32; %lld does not fit", l->path, col, (long long)v);
        int32_t x = (int32_t)v;
        memcpy(l->cols[i].row, &x, sizeof x);
    } else return wrong_type(l, i, "h5log_set_i64");
    mark_set(l, i);
    return 0;
}

static int set_array(H5log *l, const char *col, const char *fn, H5logType t, const void *v, int n) {
    int i = settable(l, col, fn, 1);
    if (i < 0) return -1;
    if (l->pub[i].type != t) return wrong_type(l, i, fn);
    if (n < 0 || n > l->pub[i].width)
        return err_set("%s: column '%s': %d values for a row of width %d", l->path, col, n, l->pub[i].width);
    if (n && !v) return err_set("%s: column '%s': NULL values", l->path, col);
    Col *c = &l->cols[i];
    memset(c->row, 0, c->row_bytes);
    if (n) memcpy(c->row, v, (size_t)n * c->elem);
    mark_set(l, i);
    return 0;
}

int h5log_set_i32s(H5log *l, const char *col, const int32_t *v, int n) {
    return set_array(l, col, "h5log_set_i32s", H5LOG_I32, v, n);
}

int h5log_set_f32s(H5log *l, const char *col, const float *v, int n) {
    return set_array(l, col, "h5log_set_f32s", H5LOG_F32, v, n);
}

int h5log_row_done(H5log *l) {
    if (writable(l, "h5log_row_done")) return -1;
    for (int i = 0; i < l->n_cols; i++)
        if (!l->cols[i].set)
            return err_set("%s: row %lld: column '%s' was not set", l->path,
                           (long long)h5log_rows(l), l->pub[i].name);
    for (int i = 0; i < l->n_cols; i++) {
        Col *c = &l->cols[i];
        memcpy(c->buf + (size_t)l->buf_rows * c->row_bytes, c->row, c->row_bytes);
        c->set = 0;
    }
    l->row_started = 0;
    if (++l->buf_rows == l->buf_cap) return write_buffer(l);
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

/* Takes over the scanned columns and their open datasets. */
static void adopt_scan(H5log *l, Scan *s) {
    l->n_cols = s->n;
    l->pub = err_calloc((size_t)s->n, sizeof *l->pub);
    l->cols = err_calloc((size_t)s->n, sizeof *l->cols);
    for (int i = 0; i < s->n; i++) {
        l->pub[i] = s->col[i];
        col_init(&l->cols[i], &l->pub[i]);
        l->cols[i].dset = s->dset[i];
    }
    l->disk_rows = scan_min_rows(s);
    free(s);
}

/* A SWMR reader retries a metadata read whose checksum fails (the writer
 * may be mid-flush), doubling its sleep between tries from 1 ns: with
 * HDF5's default of 100 tries reading a damaged log never ended (found by
 * tests/fuzz: still asleep after 290 s). 24 tries wait about 17 ms in all
 * (that log now fails in under 0.1 s), far longer than a flush takes. */
#define SWMR_READ_ATTEMPTS 24

/* SWMR read works for live and finished logs; a log whose writer died
 * before it switched to SWMR needs HDF5's "open for write" mark ignored,
 * which a read-only open does without writing anything. */
static int open_for_reading(H5log *l) {
    hid_t fapl = make_fapl(0);
    H5Pset_metadata_read_attempts(fapl, SWMR_READ_ATTEMPTS);
    l->file = H5Fopen(l->path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    H5Pclose(fapl);
    if (l->file >= 0) {
        l->swmr_read = 1;
        return 0;
    }
    fapl = make_fapl(1);
    l->file = H5Fopen(l->path, H5F_ACC_RDONLY, fapl);
    if (l->file < 0) h5_fail(l, NULL, "cannot open for reading");
    H5Pclose(fapl);
    return l->file < 0 ? -1 : 0;
}

H5log *h5log_open_read(const char *path) {
    h5util_quiet();
    if (check_path("h5log_open_read", path) || check_is_hdf5(path)) return NULL;
    H5log *l = log_new(path);
    Scan *s = NULL;
    if (open_for_reading(l) || check_format(l, NULL) || !(s = scan_columns(l))) {
        release(l, 0);
        return NULL;
    }
    adopt_scan(l, s);
    return l;
}

int h5log_refresh(H5log *l) {
    if (!l) return err_set("h5log_refresh: NULL log");
    if (l->writing || !l->swmr_read) return 0; /* nobody else can add rows */
    int64_t rows = INT64_MAX;
    for (int i = 0; i < l->n_cols; i++) {
        if (H5Drefresh(l->cols[i].dset) < 0) return h5_fail(l, l->pub[i].name, "cannot refresh");
        hid_t s = H5Dget_space(l->cols[i].dset);
        hsize_t dims[2] = {0, 0};
        H5Sget_simple_extent_dims(s, dims, NULL);
        H5Sclose(s);
        if ((int64_t)dims[0] < rows) rows = (int64_t)dims[0];
    }
    l->disk_rows = rows;
    return 0;
}

int64_t h5log_rows(const H5log *l) { return l ? l->disk_rows + l->buf_rows : 0; }
const char *h5log_path(const H5log *l) { return l ? l->path : ""; }
const char *h5log_kind(const H5log *l) { return l ? l->kind : ""; }
int h5log_n_columns(const H5log *l) { return l ? l->n_cols : 0; }

const H5logColumn *h5log_column(const H5log *l, int i) {
    return l && i >= 0 && i < l->n_cols ? &l->pub[i] : NULL;
}

int h5log_find_column(const H5log *l, const char *name) {
    if (!l) return err_set("h5log_find_column: NULL log");
    int i = column_index(l, name);
    if (i >= 0) return i;
    return err_set("%s: no column '%s'", l->path, name ? name : "(null)");
}

int h5log_read(H5log *l, const char *col, int64_t start, int64_t count, H5logType as, void *out) {
    if (!l) return err_set("h5log_read: NULL log");
    int i = h5log_find_column(l, col);
    if (i < 0) return -1;
    const H5logColumn *c = &l->pub[i];
    char have[48];
    if ((unsigned)as > H5LOG_I32 || !converts_safely(c->type, as))
        return err_set("%s: column '%s' is %s; reading it as %s would lose values", l->path, col,
                       describe(c, have), h5log_type_name(as));
    if (l->writing && !l->failed && write_buffer(l)) return -1;
    if (start < 0 || count < 0 || start > l->disk_rows - count)
        return err_set("%s: column '%s': rows %lld..%lld requested, the log has %lld", l->path, col,
                       (long long)start, (long long)(start + count), (long long)l->disk_rows);
    if (count == 0) return 0;
    if (!out) return err_set("%s: column '%s': NULL output buffer", l->path, col);
    int rank = c->width ? 2 : 1;
    hsize_t off[2] = {(hsize_t)start, 0}, cnt[2] = {(hsize_t)count, (hsize_t)c->width};
    hid_t fs = H5Dget_space(l->cols[i].dset), ms = H5Screate_simple(rank, cnt, NULL);
    int rc = 0;
    if (fs < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
        H5Dread(l->cols[i].dset, mem_type(as), ms, fs, H5P_DEFAULT, out) < 0)
        rc = h5_fail(l, col, "cannot read rows");
    if (fs >= 0) H5Sclose(fs);
    H5Sclose(ms);
    return rc;
}

int h5log_read_f64(H5log *l, const char *col, int64_t start, int64_t count, double *out) {
    return h5log_read(l, col, start, count, H5LOG_F64, out);
}

int h5log_read_i32(H5log *l, const char *col, int64_t start, int64_t count, int32_t *out) {
    return h5log_read(l, col, start, count, H5LOG_I32, out);
}
