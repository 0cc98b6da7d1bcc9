/* plot — PNG plots of a pipeline run through gnuplot; see plot.h.
 *
 * Three steps: load every log of the run into a Table (all scalar columns
 * as doubles), write each Table as NAME.dat, then for each PlotSpec write
 * a gnuplot script that draws the curves whose data exist and run gnuplot
 * on it. The plots are a table below, so adding one is adding a row. */
#include "common/tools/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/h5log.h"

/* ---- small helpers -------------------------------------------------------- */

/* printf into a fresh string. */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = err_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int is_dir(const char *path) {
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

static int exists(const char *path) {
    struct stat st;
    return !stat(path, &st);
}

void plot_trailing_mean(const double *v, long n, int w, double *out) {
    if (w < 1) w = 1;
    for (long i = 0; i < n; i++) {
        double sum = 0;
        long count = 0;
        for (long j = i - w + 1 < 0 ? 0 : i - w + 1; j <= i; j++)
            if (isfinite(v[j])) {
                sum += v[j];
                count++;
            }
        out[i] = count ? sum / count : NAN;
    }
}

int plot_smooth_window(long n) {
    long w = n / 20;
    return (int)(w < 1 ? 1 : w > 200 ? 200 : w);
}

/* ---- logs ------------------------------------------------------------------- */

typedef struct {
    const char *name;  /* table name and data file: NAME.dat */
    const char *stage; /* run subdirectory */
    const char *file;  /* log file in it */
    const char *kind;  /* h5log kind it must have */
    int smooth;        /* add trailing means (NAME_avg) of the per-step columns */
} SourceSpec;

static const SourceSpec source_specs[] = {
    {"pretrain_train", "pretrain", "metrics.h5", "train", 1},
    {"pretrain_eval", "pretrain", "eval.h5", "eval", 0},
    {"sft_train", "sft", "metrics.h5", "train", 1},
    {"sft_eval", "sft", "eval.h5", "eval", 0},
    {"rm_train", "rm", "metrics.h5", "train", 1},
    {"rm_eval", "rm", "eval.h5", "eval", 0},
    {"dpo_train", "dpo", "metrics.h5", "train", 1},
    {"dpo_eval", "dpo", "eval.h5", "eval", 0},
    {"ppo_metrics", "ppo", "metrics.h5", "ppo-metrics", 0},
    {"grpo_metrics", "grpo", "metrics.h5", "ppo-metrics", 0}, /* the RL job with a group estimator (rlhf grpo) */
};
#define N_SOURCES (int)(sizeof source_specs / sizeof source_specs[0])

/* Training-log columns that are not noisy per-step measurements. */
static int smoothable(const char *col) {
    return strcmp(col, "step") && strcmp(col, "lr") && strcmp(col, "tokens") && strcmp(col, "elapsed");
}

typedef struct {
    const SourceSpec *spec;
    char *path;    /* the log file */
    char *absent;  /* why there is nothing to plot from it, or NULL */
    long rows;
    int n_cols;
    char *names[2 * H5LOG_MAX_COLUMNS];
    double *vals[2 * H5LOG_MAX_COLUMNS];
    int window;    /* of the _avg columns */
} Table;

static void table_free(Table *t) {
    for (int i = 0; i < t->n_cols; i++) {
        free(t->names[i]);
        free(t->vals[i]);
    }
    free(t->path);
    free(t->absent);
    memset(t, 0, sizeof *t);
}

static const double *table_col(const Table *t, const char *name) {
    for (int i = 0; i < t->n_cols; i++)
        if (!strcmp(t->names[i], name)) return t->vals[i];
    return NULL;
}

static void table_add_col(Table *t, char *name, double *v) {
    t->names[t->n_cols] = name;
    t->vals[t->n_cols++] = v;
}

static void table_add_means(Table *t) {
    int n = t->n_cols;
    t->window = plot_smooth_window(t->rows);
    for (int i = 0; i < n; i++) {
        if (!smoothable(t->names[i])) continue;
        double *avg = err_malloc((size_t)t->rows * sizeof(double));
        plot_trailing_mean(t->vals[i], t->rows, t->window, avg);
        table_add_col(t, strf("%s_avg", t->names[i]), avg);
    }
}

/* Reads every scalar column of an open log. */
static int table_read(Table *t, H5log *l) {
    t->rows = (long)h5log_rows(l);
    if (!t->rows) {
        t->absent = strf("%s has no rows yet", t->path);
        return 0;
    }
    for (int i = 0; i < h5log_n_columns(l); i++) {
        const H5logColumn *c = h5log_column(l, i);
        if (c->width) continue; /* per-row arrays (tokens): nothing to plot */
        double *v = err_malloc((size_t)t->rows * sizeof(double));
        table_add_col(t, err_strdup(c->name), v);
        if (h5log_read_f64(l, c->name, 0, t->rows, v)) return -1;
    }
    if (t->spec->smooth) table_add_means(t);
    return 0;
}

/* Loads root/spec->file; a missing file is noted, a wrong one is an error. */
static int table_load(Table *t, const SourceSpec *spec, const char *root) {
    memset(t, 0, sizeof *t);
    t->spec = spec;
    t->path = fs_join(root, spec->file);
    if (!exists(t->path)) {
        t->absent = strf("%s not found", t->path);
        return 0;
    }
    H5log *l = h5log_open_read(t->path);
    if (!l) return -1;
    int rc = strcmp(h5log_kind(l), spec->kind)
                 ? err_set("%s: a \"%s\" log; %s/%s should be a \"%s\" log", t->path, h5log_kind(l), spec->stage,
                           spec->file, spec->kind)
                 : table_read(t, l);
    h5log_close(l);
    return rc;
}

/* One field of a .dat file; gnuplot reads "NaN" as a missing point. */
static void put_value(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
    else fputs("NaN", f);
}

/* The path in a comment line: control characters (a newline would end
 * the comment) become '?'. */
static void put_comment_path(FILE *f, const char *s) {
    for (; *s; s++) fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
}

static int table_fill(FILE *f, void *ctx) {
    const Table *t = ctx;
    fputs("# rlhf plot: ", f);
    put_comment_path(f, t->path);
    fprintf(f, " (kind %s, %ld rows); NaN = no value\n", t->spec->kind, t->rows);
    if (t->spec->smooth)
        fprintf(f, "# NAME_avg = mean of the last %d rows of NAME (fewer at the start)\n", t->window);
    for (int c = 0; c < t->n_cols; c++) fprintf(f, "%s%s", c ? " " : "", t->names[c]);
    fputc('\n', f);
    for (long r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            if (c) fputc(' ', f);
            put_value(f, t->vals[c][r]);
        }
        fputc('\n', f);
    }
    return 0; /* stdio errors: fs_write_tmp reports them */
}

/* An output of the plot may not be one of the logs it reads (a symlink or
 * hard link in out_dir): fs_check_not_input. */
static int check_not_a_log(const char *path, const Table *tables) {
    for (int i = 0; i < N_SOURCES; i++) {
        const char *in = tables[i].path;
        if (fs_check_not_input(path, &in, 1)) return -1;
    }
    return 0;
}

/* NAME.dat, written atomically (fs_write_atomic_with: a regular file is
 * replaced, anything else refused). */
static int table_write(const Table *t, const Table *tables, const char *out_dir, FILE *list) {
    char *name = strf("%s.dat", t->spec->name);
    char *path = fs_join(out_dir, name);
    int rc = check_not_a_log(path, tables) || fs_write_atomic_with(path, table_fill, (void *)t) ? -1 : 0;
    if (!rc && list) fprintf(list, "%s\n", path);
    free(name);
    free(path);
    return rc;
}

/* ---- plot table ---------------------------------------------------------------- */

typedef enum {
    ST_LINE,    /* line with points, one per row (thinned when rows are many) */
    ST_RAW,     /* thin pale line: per-step values, drawn under their mean */
    ST_AVG,     /* thick line: the trailing mean; title gets the window */
    ST_EVAL,    /* dashed line with big points: validation */
    ST_PATH,    /* thin grey line joining points in order, no key entry */
    ST_PALETTE, /* filled points coloured by the `color` column */
    ST_PALETTE_OPEN /* open points coloured by the `color` column */
} Style;

enum { C_BLUE, C_RED, C_GREEN, C_PURPLE, C_GREY };
static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#999999"};
static const char *const pale_colors[] = {"#aec7e8", "#ff9896", "#98df8a", "#c5b0d5", "#cccccc"};

typedef struct {
    const char *source; /* table name; NULL ends the list */
    const char *x, *y;  /* column names */
    const char *title;  /* key entry */
    int right;          /* on the right-hand axis */
    Style style;
    int color;
    const char *color_by; /* column for ST_PALETTE*, else NULL */
} Series;

#define MAX_SERIES 6
typedef struct {
    const char *name; /* NAME.gp, NAME.png */
    const char *title, *xlabel, *ylabel, *y2label;
    const char *settings; /* more gnuplot lines, or NULL */
    Series s[MAX_SERIES];
} PlotSpec;

#define PPO "ppo_metrics", "iteration"
#define GRPO "grpo_metrics", "iteration"
#define LOSS_PLOT(stage, label)                                                                      \
    {"loss_" stage, label ": training and validation loss", "optimizer step", "loss (nats)", NULL, NULL, \
     {{stage "_train", "step", "loss", "training", 0, ST_RAW, C_BLUE, NULL},                       \
      {stage "_train", "step", "loss_avg", "training", 0, ST_AVG, C_BLUE, NULL},                   \
      {stage "_eval", "step", "loss", "validation", 0, ST_EVAL, C_RED, NULL}}}
#define CHANCE                                                                                      \
    "set yrange [0:1]\nset arrow from graph 0, first 0.5 to graph 1, first 0.5 nohead dt 2 lc rgb '#666666'\n" \
    "set label 'chance' at graph 0.01, first 0.53 tc rgb '#666666'\n"

static const PlotSpec plot_specs[] = {
    {"ppo_reward", "PPO: reward model score and reward", "PPO iteration", "mean per response", NULL, NULL,
     {{PPO, "r_theta", "RM score r_θ", 0, ST_LINE, C_BLUE, NULL},
      {PPO, "reward", "reward r_θ − λ·KL", 0, ST_LINE, C_RED, NULL}}},
    {"ppo_kl", "PPO: KL to the reference policy and KL coefficient", "PPO iteration",
     "KL(π ‖ π_ref), nats per response", "λ (KL coefficient)", NULL,
     {{PPO, "kl", "KL", 0, ST_LINE, C_BLUE, NULL}, {PPO, "lambda", "λ (right axis)", 1, ST_LINE, C_RED, NULL}}},
    {"ppo_gold", "PPO: gold score of the sampled responses", "PPO iteration", "gold score (mean)",
     "fraction correct", "set y2range [0:1]\n",
     {{PPO, "gold", "gold score", 0, ST_LINE, C_BLUE, NULL},
      {PPO, "correct", "fraction correct (right axis)", 1, ST_LINE, C_GREEN, NULL}}},
    {"ppo_entropy", "PPO: policy entropy", "PPO iteration", "entropy (nats per token)", NULL, NULL,
     {{PPO, "entropy", "entropy", 0, ST_LINE, C_BLUE, NULL}}},
    {"ppo_length", "PPO: response length", "PPO iteration", "tokens per response (mean)", NULL, NULL,
     {{PPO, "length", "length", 0, ST_LINE, C_BLUE, NULL}}},
    /* Lines, not stacked: actors, rewarders and the learner work at the
     * same time, so these seconds overlap and do not add up to wall time. */
    {"ppo_time", "PPO: time per iteration", "PPO iteration", "seconds", NULL, "set yrange [0:*]\n",
     {{PPO, "t_generate", "generate (actor-seconds, all actors)", 0, ST_LINE, C_BLUE, NULL},
      {PPO, "t_score", "score (rewarder-seconds)", 0, ST_LINE, C_GREEN, NULL},
      {PPO, "t_learn", "learn (learner)", 0, ST_LINE, C_RED, NULL},
      {PPO, "t_wait", "learner waiting for rollouts", 0, ST_LINE, C_PURPLE, NULL}}},
    {"ppo_overoptimisation", "Gold score against KL, one point per policy version", "KL(π ‖ π_ref), nats per response",
     "gold score (mean)", "RM score r_θ (mean)",
     "set cblabel 'PPO iteration'\nset palette defined (0 '#440154', 0.5 '#21918c', 1 '#fde725')\nset colorbox\n",
     {{"ppo_metrics", "kl", "gold", NULL, 0, ST_PATH, C_GREY, NULL},
      {"ppo_metrics", "kl", "gold", "gold score (filled)", 0, ST_PALETTE, C_BLUE, "iteration"},
      {"ppo_metrics", "kl", "r_theta", "RM score r_θ (open, right axis)", 1, ST_PALETTE_OPEN, C_BLUE, "iteration"}}},
    {"grpo_reward", "GRPO: reward of the sampled responses", "GRPO iteration", "mean per response", NULL, NULL,
     {{GRPO, "reward", "reward (sum of token rewards)", 0, ST_LINE, C_RED, NULL}}},
    {"grpo_gold", "GRPO: gold score and correctness of the sampled responses", "GRPO iteration",
     "gold score (mean)", "fraction correct", "set y2range [0:1]\n",
     {{GRPO, "gold", "gold score", 0, ST_LINE, C_BLUE, NULL},
      {GRPO, "correct", "fraction correct (right axis)", 1, ST_LINE, C_GREEN, NULL}}},
    {"grpo_groups", "GRPO: groups whose rewards do not vary (no signal)", "GRPO iteration",
     "fraction of groups sampled", NULL, "set yrange [0:1]\n",
     {{GRPO, "dead_groups", "dead groups", 0, ST_LINE, C_PURPLE, NULL}}},
    {"grpo_kl", "GRPO: KL to the reference policy", "GRPO iteration", "KL(π ‖ π_ref), nats per response", NULL,
     NULL, {{GRPO, "kl", "KL", 0, ST_LINE, C_BLUE, NULL}}},
    LOSS_PLOT("pretrain", "Pretraining"),
    LOSS_PLOT("sft", "SFT"),
    LOSS_PLOT("rm", "Reward model"),
    LOSS_PLOT("dpo", "DPO"),
    {"rm_accuracy", "Reward model: pairwise accuracy (chosen scored above rejected)", "optimizer step", "accuracy",
     NULL, CHANCE,
     {{"rm_train", "step", "accuracy", "training", 0, ST_RAW, C_BLUE, NULL},
      {"rm_train", "step", "accuracy_avg", "training", 0, ST_AVG, C_BLUE, NULL},
      {"rm_eval", "step", "accuracy", "held-out", 0, ST_EVAL, C_RED, NULL}}},
    {"dpo_accuracy", "DPO: implicit-reward accuracy (chosen reward above rejected)", "optimizer step", "accuracy",
     NULL, CHANCE,
     {{"dpo_train", "step", "accuracy", "training", 0, ST_RAW, C_BLUE, NULL},
      {"dpo_train", "step", "accuracy_avg", "training", 0, ST_AVG, C_BLUE, NULL},
      {"dpo_eval", "step", "accuracy", "validation", 0, ST_EVAL, C_RED, NULL}}},
    {"dpo_rewards", "DPO: implicit rewards β·log(π/π_ref) and their margin", "optimizer step", "implicit reward",
     NULL, NULL,
     {{"dpo_train", "step", "chosen_reward_avg", "chosen, training", 0, ST_AVG, C_GREEN, NULL},
      {"dpo_train", "step", "rejected_reward_avg", "rejected, training", 0, ST_AVG, C_RED, NULL},
      {"dpo_train", "step", "margin_avg", "margin, training", 0, ST_AVG, C_BLUE, NULL},
      {"dpo_eval", "step", "chosen_reward", "chosen, validation", 0, ST_EVAL, C_GREEN, NULL},
      {"dpo_eval", "step", "rejected_reward", "rejected, validation", 0, ST_EVAL, C_RED, NULL},
      {"dpo_eval", "step", "margin", "margin, validation", 0, ST_EVAL, C_BLUE, NULL}}},
};
#define N_PLOTS (int)(sizeof plot_specs / sizeof plot_specs[0])

/* ---- deciding what to draw ---------------------------------------------------- */

static const Table *find_table(const Table *tables, const char *name) {
    for (int i = 0; i < N_SOURCES; i++)
        if (!strcmp(tables[i].spec->name, name)) return &tables[i];
    return NULL;
}

static int any_finite_pair(const double *x, const double *y, long n) {
    for (long i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) return 1;
    return 0;
}

/* NULL when the series can be drawn, else why not (a fresh string). */
static char *series_absent(const Table *t, const Series *s) {
    if (t->absent) return err_strdup(t->absent);
    const char *cols[3] = {s->x, s->y, s->color_by};
    for (int i = 0; i < 3; i++)
        if (cols[i] && !table_col(t, cols[i])) return strf("%s has no column '%s'", t->path, cols[i]);
    if (!any_finite_pair(table_col(t, s->x), table_col(t, s->y), t->rows))
        return strf("%s: column '%s' has no values", t->path, s->y);
    return NULL;
}

/* A pale per-step curve adds nothing when its mean is over one row. */
static int redundant(const Table *t, const Series *s) { return s->style == ST_RAW && t->window <= 1; }

/* ---- gnuplot scripts --------------------------------------------------------- */

typedef struct {
    int width, height;
    const char *gnuplot;
} Render;

/* The "with" clause and key entry of one curve. */
static void put_style(FILE *f, const Series *s, const Table *t) {
    long pi = t->rows / 40 + 1; /* at most ~40 point markers per curve */
    const char *c = colors[s->color];
    switch (s->style) {
    case ST_LINE:
        fprintf(f, "with linespoints lw 2 pt 7 ps 0.8 pi %ld lc rgb '%s'", pi, c);
        break;
    case ST_RAW:
        fprintf(f, "with lines lw 1 lc rgb '%s'", pale_colors[s->color]);
        break;
    case ST_AVG:
        fprintf(f, "with lines lw 2 lc rgb '%s'", c);
        break;
    case ST_EVAL:
        fprintf(f, "with linespoints lw 2 dt 2 pt 7 ps 1.1 pi %ld lc rgb '%s'", pi, c);
        break;
    case ST_PATH:
        fprintf(f, "with lines lw 1 lc rgb '%s'", c);
        break;
    case ST_PALETTE:
        fputs("with points pt 7 ps 1.6 lc palette", f);
        break;
    case ST_PALETTE_OPEN:
        fputs("with points pt 8 ps 1.6 lw 2 lc palette", f);
        break;
    }
    if (!s->title) fputs(" notitle", f);
    else if (s->style == ST_AVG && t->window > 1)
        fprintf(f, " title \"%s (mean of %d steps)\"", s->title, t->window);
    else if (s->style == ST_RAW) fprintf(f, " title \"%s (per step)\"", s->title);
    else fprintf(f, " title \"%s\"", s->title);
}

/* Settings before the plot command: terminal, output, labels, axes. */
static void put_header(FILE *f, const PlotSpec *p, const Render *r, int right, int promote, long max_rows) {
    fprintf(f, "# %s: written by `rlhf plot`; redraw with: gnuplot %s.gp (in this directory)\n", p->name, p->name);
    fputs("set encoding utf8\n", f);
    fprintf(f, "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) { set terminal pngcairo size %d,%d noenhanced "
               "font \",10\" } else { set terminal png size %d,%d noenhanced }\n",
            r->width, r->height, r->width, r->height);
    fprintf(f, "set output \"%s.png\"\n", p->name);
    fprintf(f, "set title \"%s\"\nset xlabel \"%s\"\nset ylabel \"%s\"\n", p->title, p->xlabel,
            promote ? p->y2label : p->ylabel);
    fputs("set grid\nset key below\n", f);
    /* enough digits that close tick values (lambda barely moving) differ */
    fputs("set format y '%.6g'\nset format y2 '%.6g'\n", f);
    if (right && !promote) fprintf(f, "set y2label \"%s\"\nset y2tics\nset ytics nomirror\n", p->y2label);
    if (max_rows <= 20) { /* whole iterations, not 0.5 steps */
        if (!strcmp(p->s[0].x, "iteration")) fputs("set xtics 1\n", f);
        for (int i = 0; i < MAX_SERIES && p->s[i].source; i++)
            if (p->s[i].color_by && !strcmp(p->s[i].color_by, "iteration")) {
                fputs("set cbtics 1\n", f);
                break;
            }
    }
    if (p->settings) fputs(p->settings, f);
}

typedef struct {
    const PlotSpec *p;
    const Table *tables;
    const int *draw;
    const Render *r;
} Script;

/* The gnuplot script drawing the curves marked in draw[]. */
static int script_fill(FILE *f, void *ctx) {
    const Script *sc = ctx;
    const PlotSpec *p = sc->p;
    const Table *tables = sc->tables;
    const int *draw = sc->draw;
    const Render *r = sc->r;
    int right = 0, left = 0;
    long max_rows = 0;
    for (int i = 0; i < MAX_SERIES && p->s[i].source; i++)
        if (draw[i]) {
            const Table *t = find_table(tables, p->s[i].source);
            right |= p->s[i].right;
            left |= !p->s[i].right;
            if (t->rows > max_rows) max_rows = t->rows;
        }
    int promote = right && !left; /* only right-axis curves left: draw them on the left */
    put_header(f, p, r, right, promote, max_rows);
    const char *sep = "plot ";
    for (int i = 0; i < MAX_SERIES && p->s[i].source; i++) {
        if (!draw[i]) continue;
        const Series *s = &p->s[i];
        fprintf(f, "%s\"%s.dat\" using \"%s\":\"%s\"", sep, s->source, s->x, s->y);
        if (s->color_by) fprintf(f, ":\"%s\"", s->color_by);
        fprintf(f, " axes x1y%d ", s->right && !promote ? 2 : 1);
        put_style(f, s, find_table(tables, s->source));
        sep = ", \\\n     ";
    }
    fputs("\n", f);
    return 0; /* stdio errors: fs_write_tmp reports them */
}

/* Writes NAME.gp atomically (fs_write_atomic_with). */
static int write_script(const PlotSpec *p, const Table *tables, const int *draw, const Render *r,
                        const char *path) {
    Script sc = {.p = p, .tables = tables, .draw = draw, .r = r};
    if (check_not_a_log(path, tables)) return -1;
    return fs_write_atomic_with(path, script_fill, &sc);
}

/* ---- running gnuplot --------------------------------------------------------- */

/* What the child reports through a close-on-exec pipe when it cannot get
 * as far as exec: which step failed and errno. */
typedef struct {
    int step; /* 1 = chdir, 2 = exec */
    int err;
} ChildFail;

static void child_run(const char *dir, const char *prog, const char *script, int err_fd, int fail_fd) {
    ChildFail cf = {1, 0};
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
    }
    if (null > 2) close(null);
    dup2(err_fd, 2);
    if (err_fd > 2) close(err_fd);
    if (chdir(dir)) cf.err = errno;
    else {
        char *argv[] = {(char *)prog, (char *)script, NULL};
        execvp(prog, argv);
        cf = (ChildFail){2, errno};
    }
    ssize_t w = write(fail_fd, &cf, sizeof cf);
    (void)w;
    _exit(127);
}

/* Copies a line that is not blank to out (cut to cap - 1 bytes). */
static void keep_if_text(char *out, size_t cap, const char *s, size_t n) {
    if (strspn(s, " \t\r") >= n) return;
    if (n > cap - 1) n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* Reads the child's stderr to the end, keeping its last line that is not
 * blank (gnuplot's error message comes last). */
static void read_last_line(int fd, char *line, size_t cap) {
    char buf[4096], tail[4096];
    size_t n_tail = 0;
    ssize_t got;
    line[0] = 0;
    while ((got = read(fd, buf, sizeof buf)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] == '\n' || n_tail == sizeof tail - 1) {
                tail[n_tail] = 0;
                keep_if_text(line, cap, tail, n_tail);
                n_tail = 0;
            } else tail[n_tail++] = buf[i];
        }
    }
    tail[n_tail] = 0;
    keep_if_text(line, cap, tail, n_tail);
}

static int spawn_error(const ChildFail *cf, const char *prog, const char *dir) {
    if (cf->step == 1) return err_set("%s: cannot enter directory: %s", dir, strerror(cf->err));
    if (cf->err == ENOENT)
        return err_set("%s: not found; rlhf plot draws with gnuplot (Debian: apt-get install gnuplot-nox)", prog);
    return err_set("%s: cannot run: %s", prog, strerror(cf->err));
}

/* Runs `prog script` in dir without a shell; 0 if it exits with status 0. */
static int run_gnuplot(const char *prog, const char *dir, const char *script) {
    int err_pipe[2], fail_pipe[2];
    if (pipe(err_pipe)) return err_set("pipe: %s", strerror(errno));
    if (pipe2(fail_pipe, O_CLOEXEC)) {
        close(err_pipe[0]);
        close(err_pipe[1]);
        return err_set("pipe: %s", strerror(errno));
    }
    fflush(NULL); /* the child must not write our buffered output twice */
    pid_t pid = fork();
    if (pid == 0) {
        close(err_pipe[0]);
        close(fail_pipe[0]);
        child_run(dir, prog, script, err_pipe[1], fail_pipe[1]);
    }
    close(err_pipe[1]);
    close(fail_pipe[1]);
    if (pid < 0) {
        close(err_pipe[0]);
        close(fail_pipe[0]);
        return err_set("fork: %s", strerror(errno));
    }
    char last[512];
    read_last_line(err_pipe[0], last, sizeof last);
    ChildFail cf;
    ssize_t got;
    while ((got = read(fail_pipe[0], &cf, sizeof cf)) < 0 && errno == EINTR) {}
    close(err_pipe[0]);
    close(fail_pipe[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return err_set("waitpid: %s", strerror(errno));
    if (got == (ssize_t)sizeof cf) return spawn_error(&cf, prog, dir);
    if (WIFSIGNALED(status))
        return err_set("%s/%s: %s killed by signal %d", dir, script, prog, WTERMSIG(status));
    if (WEXITSTATUS(status))
        return err_set("%s/%s: %s exited with status %d%s%s", dir, script, prog, WEXITSTATUS(status),
                       last[0] ? ": " : "", last);
    return 0;
}

/* ---- one plot ---------------------------------------------------------------- */

static void note(FILE *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(FILE *notes, const char *fmt, ...) {
    if (!notes) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("rlhf plot: ", notes);
    vfprintf(notes, fmt, ap);
    fputc('\n', notes);
    va_end(ap);
}

/* Whether an earlier curve of the same title was left out for the same
 * reason (a per-step curve and its mean share a title): one note for both. */
static int noted_before(const PlotSpec *p, char *const *why, int i) {
    for (int j = 0; j < i; j++)
        if (why[j] && p->s[j].title && !strcmp(p->s[j].title, p->s[i].title) && !strcmp(why[j], why[i])) return 1;
    return 0;
}

/* Draws one plot; returns 1 if a PNG was written, 0 if skipped, -1. */
static int draw_plot(const PlotSpec *p, const Table *tables, const Render *r, const char *out_dir, FILE *list,
                     FILE *notes) {
    int draw[MAX_SERIES] = {0}, n_draw = 0;
    char *why[MAX_SERIES] = {0};
    for (int i = 0; i < MAX_SERIES && p->s[i].source; i++) {
        const Table *t = find_table(tables, p->s[i].source);
        why[i] = series_absent(t, &p->s[i]);
        draw[i] = !why[i] && !redundant(t, &p->s[i]);
        n_draw += draw[i];
    }
    char *gp = strf("%s.gp", p->name), *png = strf("%s.png", p->name);
    char *gp_path = fs_join(out_dir, gp), *png_path = fs_join(out_dir, png);
    int rc = 0;
    if (!n_draw) {
        note(notes, "skipped %s: %s", png, why[0] ? why[0] : "nothing to draw");
        goto done;
    }
    for (int i = 0; i < MAX_SERIES && p->s[i].source; i++)
        if (why[i] && p->s[i].title && !noted_before(p, why, i))
            note(notes, "%s without \"%s\": %s", png, p->s[i].title, why[i]);
    if (write_script(p, tables, draw, r, gp_path)) {
        rc = -1;
        goto done;
    }
    if (list) fprintf(list, "%s\n", gp_path);
    /* gnuplot writes NAME.png in place, so it must be absent or a regular
     * file (a symlink is removed as a link, never followed) */
    if (check_not_a_log(png_path, tables) || fs_check_target(png_path)) {
        rc = -1;
        goto done;
    }
    unlink(png_path); /* a failed run must not leave an older PNG looking current */
    if (run_gnuplot(r->gnuplot, out_dir, gp)) {
        unlink(png_path);
        rc = -1;
        goto done;
    }
    struct stat st;
    if (stat(png_path, &st) || st.st_size == 0) {
        rc = err_set("%s: %s exited with status 0 but wrote no PNG", gp_path, r->gnuplot);
        goto done;
    }
    if (list) fprintf(list, "%s\n", png_path);
    rc = 1;
done:
    for (int i = 0; i < MAX_SERIES; i++) free(why[i]);
    free(gp);
    free(png);
    free(gp_path);
    free(png_path);
    return rc;
}

/* ---- the run ------------------------------------------------------------------- */

/* Where a stage's logs are: RUN/STAGE, or RUN itself for a PPO out_dir
 * given on its own (no stage subdirectories, a ppo-metrics log in it). */
static char *stage_root(const char *run, const char *stage, int ppo_alone) {
    return ppo_alone && !strcmp(stage, "ppo") ? err_strdup(run) : fs_join(run, stage);
}

/* 1 if RUN is a PPO out_dir on its own, 0 if not, -1 on a bad log. */
static int is_ppo_alone(const char *run) {
    for (int i = 0; i < N_SOURCES; i++) {
        char *d = fs_join(run, source_specs[i].stage);
        int found = is_dir(d);
        free(d);
        if (found) return 0;
    }
    char *m = fs_join(run, "metrics.h5");
    int rc = 0;
    if (exists(m)) {
        H5log *l = h5log_open_read(m);
        if (!l) rc = -1;
        else if (strcmp(h5log_kind(l), "ppo-metrics"))
            rc = err_set("%s: a \"%s\" log of one stage; give the pipeline directory that holds pretrain/, sft/, "
                         "rm/, dpo/ and ppo/ (or a PPO out_dir)", m, h5log_kind(l));
        else rc = 1;
        h5log_close(l);
    }
    free(m);
    return rc;
}

static int load_tables(const char *run, Table *tables) {
    int ppo_alone = is_ppo_alone(run), found = 0;
    if (ppo_alone < 0) return -1;
    for (int i = 0; i < N_SOURCES; i++) {
        char *root = stage_root(run, source_specs[i].stage, ppo_alone);
        int rc = table_load(&tables[i], &source_specs[i], root);
        free(root);
        if (rc) return -1;
        found += exists(tables[i].path);
    }
    if (!found)
        return err_set("%s: no rlhf logs found (expected pretrain/, sft/, rm/, dpo/ or ppo/ with metrics.h5 "
                       "or eval.h5 in them)", run);
    return 0;
}

/* plot_run with the output directory settled. */
static int plot_into(const PlotOptions *o, FILE *list, FILE *notes) {
    Render r = {o->width > 0 ? o->width : 800, o->height > 0 ? o->height : 500, o->gnuplot ? o->gnuplot : "gnuplot"};
    if (r.width < 100 || r.width > 10000 || r.height < 100 || r.height > 10000)
        return err_set("plot: size %dx%d out of range (100 to 10000 pixels a side)", r.width, r.height);
    char *prog = NULL;
    if (strchr(r.gnuplot, '/') && r.gnuplot[0] != '/') { /* gnuplot runs in out_dir: make the path absolute */
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd)) return err_set("getcwd: %s", strerror(errno));
        r.gnuplot = prog = fs_join(cwd, r.gnuplot);
    }
    Table *tables = err_calloc(N_SOURCES, sizeof(Table));
    int rc = load_tables(o->run_dir, tables), pngs = 0, skipped = 0;
    if (!rc) rc = fs_mkdirs(o->out_dir);
    for (int i = 0; i < N_SOURCES && !rc; i++)
        if (!tables[i].absent) rc = table_write(&tables[i], tables, o->out_dir, list);
    for (int i = 0; i < N_PLOTS && !rc; i++) {
        int drawn = draw_plot(&plot_specs[i], tables, &r, o->out_dir, list, notes);
        if (drawn < 0) rc = -1;
        else {
            pngs += drawn;
            skipped += !drawn;
        }
    }
    if (!rc) note(notes, "%d plots in %s (%d skipped)", pngs, o->out_dir, skipped);
    for (int i = 0; i < N_SOURCES; i++) table_free(&tables[i]);
    free(tables);
    free(prog);
    return rc ? -1 : pngs;
}

int plot_run(const PlotOptions *o, FILE *list, FILE *notes) {
    if (!o->run_dir) return err_set("plot: a run directory is needed");
    if (!exists(o->run_dir)) return err_set("%s: no such run directory", o->run_dir);
    if (!is_dir(o->run_dir)) return err_set("%s: not a directory (give the run directory)", o->run_dir);
    if (o->out_dir) return plot_into(o, list, notes);
    PlotOptions in_run = *o;
    char *dir = fs_join(o->run_dir, "plots");
    in_run.out_dir = dir;
    int rc = plot_into(&in_run, list, notes);
    free(dir);
    return rc;
}
