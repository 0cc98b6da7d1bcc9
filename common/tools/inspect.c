/* inspect — summaries of checkpoints, rollout logs and metrics logs; see inspect.h. */
#include "common/tools/inspect.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/io/ckpt.h"
#include "common/io/h5log.h"
#include "common/model/gpt.h"

typedef struct {
    int64_t iteration, rows;
    double reward, r_theta, kl, lambda, gold, length;
    int64_t gold_n;
} IterSummary;

static double *read_col(H5log *l, const char *col, int64_t n) {
    double *v = err_calloc((size_t)(n ? n : 1), sizeof(double));
    if (h5log_find_column(l, col) < 0 || h5log_read_f64(l, col, 0, n, v)) {
        for (int64_t i = 0; i < n; i++) v[i] = NAN;
        err_clear();
    }
    return v;
}

/* Rollout-log columns the per-iteration summary reads. */
typedef enum { COL_ITERATION, COL_REWARD, COL_R_THETA, COL_KL_SUM, COL_LAMBDA, COL_GOLD, COL_LENGTH, COL_VERSION, N_COLS } SummaryCol;

static const char *const summary_cols[N_COLS] = {
    [COL_ITERATION] = "iteration", [COL_REWARD] = "reward", [COL_R_THETA] = "r_theta",
    [COL_KL_SUM] = "kl_sum",       [COL_LAMBDA] = "lambda", [COL_GOLD] = "gold",
    [COL_LENGTH] = "response_len", [COL_VERSION] = "version"};

/* Adds rollout row r to the sums of its iteration. */
static void summary_add(IterSummary *x, double *const *c, int64_t r) {
    x->rows++;
    x->reward += c[COL_REWARD][r];
    x->r_theta += c[COL_R_THETA][r];
    x->kl += c[COL_KL_SUM][r];
    x->lambda += c[COL_LAMBDA][r];
    x->length += c[COL_LENGTH][r];
    if (!isnan(c[COL_GOLD][r])) {
        x->gold += c[COL_GOLD][r];
        x->gold_n++;
    }
}

/* Sums to means. */
static void summary_finish(IterSummary *x) {
    x->reward /= x->rows;
    x->r_theta /= x->rows;
    x->kl /= x->rows;
    x->lambda /= x->rows;
    x->length /= x->rows;
    x->gold = x->gold_n ? x->gold / x->gold_n : NAN;
}

/* Per-iteration means (rows are grouped by iteration, in order). */
static int summarise(H5log *l, int64_t n, IterSummary **out, int64_t *lag_hist, int lag_bins) {
    double *c[N_COLS];
    for (int i = 0; i < N_COLS; i++) c[i] = read_col(l, summary_cols[i], n);
    IterSummary *s = NULL;
    int k = -1;
    for (int64_t r = 0; r < n; r++) {
        if (k < 0 || s[k].iteration != (int64_t)c[COL_ITERATION][r]) {
            s = err_realloc(s, (size_t)(k + 2) * sizeof *s);
            memset(&s[++k], 0, sizeof *s);
            s[k].iteration = (int64_t)c[COL_ITERATION][r];
        }
        summary_add(&s[k], c, r);
        int lag = (int)(c[COL_ITERATION][r] - c[COL_VERSION][r]);
        lag_hist[lag < 0 ? 0 : lag >= lag_bins ? lag_bins - 1 : lag]++;
    }
    for (int i = 0; i <= k; i++) summary_finish(&s[i]);
    for (int i = 0; i < N_COLS; i++) free(c[i]);
    *out = s;
    return k + 1;
}

static void print_sample(H5log *l, const Tok *tok, int64_t row, FILE *f) {
    int32_t plen, rlen;
    int P = 0, W = 0;
    for (int i = 0; i < h5log_n_columns(l); i++) {
        const H5logColumn *c = h5log_column(l, i);
        if (!strcmp(c->name, "prompt")) P = c->width;
        if (!strcmp(c->name, "response")) W = c->width;
    }
    int32_t *pt = err_calloc((size_t)P + 1, sizeof(int32_t)), *rt = err_calloc((size_t)W + 1, sizeof(int32_t));
    if (h5log_read_i32(l, "prompt_len", row, 1, &plen) || h5log_read_i32(l, "response_len", row, 1, &rlen) ||
        h5log_read_i32(l, "prompt", row, 1, pt) || h5log_read_i32(l, "response", row, 1, rt)) {
        free(pt);
        free(rt);
        return;
    }
    plen = plen > P ? P : plen;
    rlen = rlen > W ? W : rlen;
    for (int part = 0; part < 2; part++) {
        const int32_t *ids = part ? rt : pt;
        int n = part ? rlen : plen;
        size_t len;
        char *text = tok ? tok_decode(tok, ids, n, &len) : NULL;
        fputs(part ? " -> " : "  ", f);
        if (text) {
            for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)text[i];
                if (ch == '\n') fputs("\\n", f);
                else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\x%02x", ch);
                else fputc(ch, f);
            }
        } else {
            for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? " " : "[", ids[i]);
            fputs("]", f);
        }
        free(text);
        err_clear();
    }
    fputc('\n', f);
    free(pt);
    free(rt);
}

static void rollouts_text(H5log *l, const Tok *tok, int64_t n, FILE *f) {
    int64_t lag[8] = {0};
    IterSummary *s;
    int k = summarise(l, n, &s, lag, 8);
    fprintf(f, "iterations  %d\n\n%9s %6s %9s %9s %9s %8s %8s %7s\n", k, "iteration", "rows", "reward", "r_theta",
            "kl", "lambda", "gold", "length");
    for (int i = 0; i < k; i++)
        fprintf(f, "%9lld %6lld %9.4f %9.4f %9.4f %8.4f %8.4f %7.2f\n", (long long)s[i].iteration,
                (long long)s[i].rows, s[i].reward, s[i].r_theta, s[i].kl, s[i].lambda, s[i].gold, s[i].length);
    fprintf(f, "\npolicy lag (iteration - version):");
    for (int i = 0; i < 8; i++)
        if (lag[i]) fprintf(f, "  %d%s: %lld", i, i == 7 ? "+" : "", (long long)lag[i]);
    fprintf(f, "\n\nsamples (last rows):\n");
    for (int64_t r = n - 3 < 0 ? 0 : n - 3; r < n; r++) print_sample(l, tok, r, f);
    free(s);
}

/* A JSON number, or null for NaN (JSON has no NaN). */
static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

/* A JSON string of text read from the file (the log's kind, column names):
 * any bytes, so invalid UTF-8 becomes U+FFFD (jansson refuses it: NULL). */
static json_t *text_of(const char *s) {
    char *clean = tok_utf8_clean(s, strlen(s));
    json_t *v = json_string(clean);
    free(clean);
    return v;
}

/* Prints o as one compact line; o is consumed. */
static int print_json(json_t *o, FILE *f) {
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) return err_set("cannot format the JSON summary");
    fprintf(f, "%s\n", text);
    free(text);
    return 0;
}

static int rollouts_json(H5log *l, int64_t n, FILE *f) {
    int64_t lag[8] = {0};
    IterSummary *s;
    int k = summarise(l, n, &s, lag, 8);
    json_t *o = json_pack("{s:o, s:I, s:i}", "kind", text_of(h5log_kind(l)), "rows", (json_int_t)n, "iterations", k);
    json_t *its = json_array(), *lags = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(its, json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "iteration",
                                             (json_int_t)s[i].iteration, "rows", (json_int_t)s[i].rows, "reward",
                                             num(s[i].reward), "r_theta", num(s[i].r_theta), "kl", num(s[i].kl),
                                             "lambda", num(s[i].lambda), "gold", num(s[i].gold), "length",
                                             num(s[i].length)));
    for (int i = 0; i < 8; i++) json_array_append_new(lags, json_integer(lag[i]));
    json_object_set_new(o, "per_iteration", its);
    json_object_set_new(o, "lag_histogram", lags);
    free(s);
    return print_json(o, f);
}

static void table_text(H5log *l, int64_t n, FILE *f) {
    int nc = h5log_n_columns(l);
    int64_t from = n > 5 ? n - 5 : 0;
    fprintf(f, "last rows:\n");
    for (int i = 0; i < nc; i++) {
        const H5logColumn *c = h5log_column(l, i);
        if (c->width) continue;
        double *v = read_col(l, c->name, n);
        fprintf(f, "  %-18s", c->name);
        for (int64_t r = from; r < n; r++) fprintf(f, " %12.6g", v[r]);
        fputc('\n', f);
        free(v);
    }
}

int inspect_log(const char *path, const Tok *tok, int as_json, FILE *out) {
    H5log *l = h5log_open_read(path);
    if (!l) return -1;
    int64_t n = h5log_rows(l);
    struct stat st;
    if (stat(path, &st) == 0 && n > (int64_t)st.st_size) { /* every row takes at least a byte on disk */
        h5log_close(l);
        return err_set("%s: claims %lld rows in a %lld-byte file: damaged", path, (long long)n, (long long)st.st_size);
    }
    int rollouts = !strcmp(h5log_kind(l), "rollouts"), rc = 0;
    if (as_json && rollouts) rc = rollouts_json(l, n, out);
    else if (as_json) {
        json_t *o = json_pack("{s:o, s:I}", "kind", text_of(h5log_kind(l)), "rows", (json_int_t)n), *cols = json_array();
        for (int i = 0; i < h5log_n_columns(l); i++) json_array_append_new(cols, text_of(h5log_column(l, i)->name));
        json_object_set_new(o, "columns", cols);
        rc = print_json(o, out);
    } else {
        fprintf(out, "file        %s\nkind        %s\nrows        %lld\ncolumns     %d\n", path, h5log_kind(l),
                (long long)n, h5log_n_columns(l));
        if (rollouts) rollouts_text(l, tok, n, out);
        else table_text(l, n, out);
    }
    if (rc) err_prefix("%s: ", path);
    h5log_close(l);
    return rc;
}

/* ---- checkpoints and the choice between a checkpoint and a log ---------------- */

int inspect_checkpoint(const char *path, int as_json, FILE *out) {
    Gpt m;
    Tok *tok = NULL;
    char kind[32];
    if (ckpt_load_model(path, &m, &tok, kind, sizeof kind)) return -1;
    const char *head = m.cfg.head == GPT_HEAD_LM ? "language model (tied unembedding)" : "scalar";
    const char *tokenizer = tok_kind(tok) == TOK_BYTE ? "byte" : "GPT-2 BPE";
    double sum = 0;
    for (size_t i = 0; i < m.n_params; i++) sum += (double)m.params[i] * m.params[i];
    double rms = sqrt(sum / m.n_params);
    int rc = 0;
    if (as_json) {
        /* the same fields as the text below, one compact line; the path is
         * any bytes, so it goes through text_of (valid UTF-8) */
        json_t *o = json_pack("{s:o, s:o, s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:I, s:o}", "file", text_of(path),
                              "kind", text_of(kind), "head", head, "layers", m.cfg.n_layer, "heads", m.cfg.n_head,
                              "width", m.cfg.n_embd, "context", m.cfg.n_ctx, "vocab", m.cfg.vocab_size, "tokenizer",
                              tokenizer, "parameters", (json_int_t)m.n_params, "param_rms", num(rms));
        rc = print_json(o, out);
    } else {
        fprintf(out, "file        %s\nkind        %s\nhead        %s\n", path, kind, head);
        fprintf(out, "layers      %d\nheads       %d\nwidth       %d\ncontext     %d\nvocab       %d\n",
                m.cfg.n_layer, m.cfg.n_head, m.cfg.n_embd, m.cfg.n_ctx, m.cfg.vocab_size);
        fprintf(out, "tokenizer   %s\nparameters  %zu\n", tokenizer, m.n_params);
        fprintf(out, "param rms   %.6g\n", rms);
    }
    gpt_free(&m);
    tok_free(tok);
    return rc;
}

/* The tokenizer of the run that wrote a log: model, else DIR/final.h5
 * beside it. NULL without an error when there is no final.h5 to ask (the
 * samples then show token ids); NULL + err_set when model does not load. */
static Tok *log_tokenizer(const char *log_path, const char *model, int *failed) {
    char path[4096];
    if (model) snprintf(path, sizeof path, "%s", model);
    else {
        const char *slash = strrchr(log_path, '/');
        snprintf(path, sizeof path, "%.*s/final.h5", slash ? (int)(slash - log_path) : 1, slash ? log_path : ".");
    }
    Ckpt *k = ckpt_open(path);
    Tok *tok = k ? ckpt_get_tok(k) : NULL;
    if (k) ckpt_close(k);
    *failed = !tok && model;
    if (!*failed) err_clear();
    return tok;
}

int inspect_path(const char *path, const char *model, int as_json, FILE *out) {
    Ckpt *k = ckpt_open(path);
    if (k) {
        ckpt_close(k);
        return inspect_checkpoint(path, as_json, out);
    }
    if (!strstr(err_msg(), "not an rlhf checkpoint")) return -1;
    int failed;
    Tok *tok = log_tokenizer(path, model, &failed);
    if (failed) return -1;
    int rc = inspect_log(path, tok, as_json, out);
    tok_free(tok);
    return rc;
}
