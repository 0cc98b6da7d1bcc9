/* h5log — append-only HDF5 tables for training metrics (one row per
 * iteration) and PPO rollout logs (one row per sample), readable while they
 * are written (SWMR) by h5py and by `rlhf inspect`.
 *
 * A log is a table of named columns. Each column is one dataset in the root
 * group: a scalar per row (shape [rows]) or a fixed-width array per row
 * (shape [rows, width], e.g. response tokens padded to the longest response;
 * the caller logs the real length in a column of its own). HDF5 1.10 does
 * not allow variable-length types under SWMR, hence fixed widths; wide
 * rows are compressed, which makes the padding nearly free.
 *
 * File layout (h5py: f = h5py.File(p, "r", libver="latest", swmr=True)):
 *   /            attrs format="rlhf-log", version=1, kind ("metrics",
 *                "rollouts", ...), writer="HOST PID START" (the last
 *                process that opened it for writing)
 *   /<column>    dataset [rows] or [rows, width]: f64, f32, i64 or i32,
 *                little-endian, unlimited rows, chunked: rows of 64 bytes
 *                or more in gzip 4 + shuffle chunks of 64 rows, smaller
 *                rows uncompressed in 4 KiB chunks (see h5log.c: SWMR
 *                cannot reuse the space of rewritten compressed chunks);
 *                attr help = the column's units or meaning
 * Columns are listed in the order they were declared.
 *
 * Writing: rows are buffered in memory and written in blocks; h5log_flush
 * writes what is buffered and makes it visible to SWMR readers and durable
 * (fsync). A crash (kill -9, node failure) loses only rows not yet flushed.
 * Flush once per iteration (per rollout batch), not per row: each flush
 * rewrites the last, partly filled chunk of every compressed column.
 * Resuming: h5log_open_append(..., keep_rows) truncates the log to the row
 * count saved with the checkpoint being resumed, so rows logged after that
 * checkpoint are dropped and re-logged by the resumed run: no duplicates,
 * no gaps. It also recovers a log whose writer died (HDF5 marks such a file
 * "open for write"; h5dump refuses it until `h5clear -s`), after checking
 * that the writer recorded in the file is not still running on this host.
 * A writer on another host cannot be checked and is assumed dead: never
 * point two live runs at one log.
 *
 * Every failure returns -1 / NULL with err_set("PATH: ..."), one line naming
 * the file and, where it applies, the column. After a failed write (disk
 * full, ...) the handle refuses further writes; h5log_close then releases it
 * without touching the file again, so the rows flushed before the failure
 * stay readable and h5log_open_append can continue from them. */
#ifndef H5LOG_H
#define H5LOG_H

#include <stdint.h>

#define H5LOG_FORMAT "rlhf-log"
#define H5LOG_VERSION 1
#define H5LOG_MAX_COLUMNS 256
#define H5LOG_MAX_WIDTH (1 << 20)
#define H5LOG_NAME_MAX 128 /* column names and kinds are shorter than this */

typedef struct H5log H5log;
typedef enum { H5LOG_F64, H5LOG_F32, H5LOG_I64, H5LOG_I32 } H5logType;

typedef struct {
    const char *name;  /* dataset name: no '/', not "." */
    H5logType type;
    int width;         /* 0 = one value per row; > 0 = array of width values */
    const char *help;  /* units or meaning, stored as attribute "help"; may be NULL */
} H5logColumn;

/* ---- Writing ------------------------------------------------------------ */

/* Creates (truncating any existing file) a log with these columns and opens
 * it for SWMR writing. kind names what the rows are ("metrics", ...). */
H5log *h5log_create(const char *path, const H5logColumn *cols, int n_cols, const char *kind);
/* Reopens an existing log for appending after a restart. The file must be
 * an rlhf log of this kind with exactly these columns (name, type, width;
 * any order in the file). keep_rows >= 0 truncates it to that many rows
 * (an error if it has fewer: rows would be missing); -1 keeps every row. */
H5log *h5log_open_append(const char *path, const H5logColumn *cols, int n_cols,
                         const char *kind, int64_t keep_rows);

/* Row builder: set every column of the row, then h5log_row_done. A value
 * set twice keeps the last one. set_f64 fits f64/f32 scalar columns,
 * set_i64 i64/i32 scalar columns (an i32 column rejects values out of
 * range); the array setters take n <= width values of exactly the column's
 * type and pad the rest of the row with zeros. A row being built is not
 * part of the log until h5log_row_done, which fails (naming the column) if
 * a column was not set. */
int h5log_set_f64(H5log *l, const char *col, double v);
int h5log_set_i64(H5log *l, const char *col, int64_t v);
int h5log_set_i32s(H5log *l, const char *col, const int32_t *v, int n);
int h5log_set_f32s(H5log *l, const char *col, const float *v, int n);
int h5log_row_done(H5log *l);

/* Appends n_rows rows at once: cols[i] points to n_rows x max(width, 1)
 * values of column i (declaration order) in the column's exact type, row
 * after row. The fast path for rollout batches. */
int h5log_append(H5log *l, int n_rows, const void *const *cols);

/* Writes the buffered rows, makes them visible to SWMR readers and fsyncs.
 * Call it before saving a checkpoint that records h5log_rows(). */
int h5log_flush(H5log *l);

/* Flushes (when writing) and releases l; NULL is a no-op. Returns -1 if
 * the final flush failed or a started row was never finished (dropped). */
int h5log_close(H5log *l);

/* ---- Reading (works while a writer is active) --------------------------- */

/* Opens for reading, SWMR-aware; also opens a finished log, and one whose
 * writer died (without changing the file). */
H5log *h5log_open_read(const char *path);
/* Picks up rows a live writer has flushed since the open or last refresh. */
int h5log_refresh(H5log *l);

/* Rows in the log: for a writer, including rows still buffered; for a
 * reader, the rows every column had at the open / last refresh. */
int64_t h5log_rows(const H5log *l);
const char *h5log_path(const H5log *l);
const char *h5log_kind(const H5log *l);
int h5log_n_columns(const H5log *l);
/* Column i (0 <= i < n_columns), in declaration order; owned by l. */
const H5logColumn *h5log_column(const H5log *l, int i);
/* Index of the named column, or -1 with err_set. */
int h5log_find_column(const H5log *l, const char *name);

/* Reads rows [start, start + count) of a column into out (count x
 * max(width, 1) values of type as). Conversions that can lose values are
 * refused: f64 takes every type (i64 beyond 2^53 rounds), i64 takes
 * i64/i32, f32 and i32 only their own type. On a writer handle, buffered
 * rows are written first. */
int h5log_read(H5log *l, const char *col, int64_t start, int64_t count, H5logType as, void *out);
int h5log_read_f64(H5log *l, const char *col, int64_t start, int64_t count, double *out);
int h5log_read_i32(H5log *l, const char *col, int64_t start, int64_t count, int32_t *out);

/* "f64", "f32", "i64", "i32". */
const char *h5log_type_name(H5logType t);

#endif
