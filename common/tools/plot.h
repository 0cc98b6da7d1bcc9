/* plot — `rlhf plot RUN_DIR --out DIR`: PNG plots of a pipeline run, drawn
 * by gnuplot (Debian package gnuplot-nox) from the HDF5 logs the trainers
 * write (h5log.h), for reading a run offline.
 *
 * RUN_DIR is laid out as `make demo` lays it out: pretrain/, sft/, rm/,
 * dpo/ (each metrics.h5, kind "train", and eval.h5, kind "eval") and ppo/
 * (metrics.h5, kind "ppo-metrics"). A PPO out_dir on its own (metrics.h5
 * of kind "ppo-metrics" directly in RUN_DIR) is accepted too. Missing
 * stages are skipped with a note; a file that is there but is not the
 * expected rlhf log is an error.
 *
 * Plots: PPO reward and r_theta, KL and lambda, gold score and fraction
 * correct, entropy, response length and time per iteration over PPO
 * iterations; training and validation loss of each supervised stage; RM
 * accuracy; DPO implicit-reward accuracy and rewards; and gold score against
 * KL, one point per PPO iteration (policy version), coloured by iteration:
 * reward over-optimisation made visible.
 *
 * Into the output directory go, so users can re-plot: one .dat table per log
 * (plain text, a column-name line gnuplot and numpy can read, "NaN" for
 * missing values, plus trailing means NAME_avg of noisy per-step training
 * columns), one NAME.gp script per plot (run `gnuplot NAME.gp` in that
 * directory) and NAME.png. gnuplot runs without a shell (fork + exec), so
 * paths may hold spaces or quotes. */
#ifndef PLOT_H
#define PLOT_H

#include <stdio.h>

typedef struct {
    const char *run_dir;  /* pipeline directory (or a PPO out_dir) */
    const char *out_dir;  /* created if missing; NULL = RUN_DIR/plots */
    const char *gnuplot;  /* program to run; NULL = "gnuplot" on PATH */
    int width, height;    /* PNG size in pixels; 0 = 800 x 500 */
} PlotOptions;

/* Writes the .dat tables, .gp scripts and PNGs. Every file written is
 * listed on `list`, one path per line; skipped plots and curves get a
 * one-line note on `notes` (either may be NULL). Returns the number of
 * PNGs written, or -1 + err_set naming the file: no run directory, no log
 * in it, a file that is not the expected rlhf log, gnuplot missing or
 * failing. */
int plot_run(const PlotOptions *o, FILE *list, FILE *notes);

/* Trailing mean used for the NAME_avg columns: out[i] = mean of the finite
 * values among v[max(0, i-w+1) .. i] (NaN if none). */
void plot_trailing_mean(const double *v, long n, int w, double *out);

/* The window of those means for a log of n rows: n / 20, within 1..200. */
int plot_smooth_window(long n);

#endif
