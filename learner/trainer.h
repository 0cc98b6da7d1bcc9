/* trainer — the training loop shared by the supervised stages (pretrain,
 * SFT, reward model, DPO), data-parallel over MPI ranks.
 *
 * A stage supplies callbacks (setup, micro_batch, evaluate, finish); the
 * core owns everything else: configuration, the global batch schedule,
 * gradient all-reduce, AdamW with warm-up + cosine, progress lines, metrics
 * in HDF5, checkpoints, resume, and stopping when the caller's stop flag
 * (set by rlhf.c's signal handler) says so.
 *
 * Determinism. The global batch of step s is examples perm_e[s*B ..
 * (s+1)*B) of epoch e's permutation (seeded by seed and e). It is cut into
 * micro-batches of micro_batch examples; micro-batch j goes to rank
 * j % world and its dropout masks are seeded by (seed, s, j). So every
 * layout computes the same per-micro-batch gradients and differs only in
 * the order the all-reduce adds them. Resuming needs no RNG state: all of it
 * derives from the step, stored in the checkpoint with parameters and
 * optimizer moments; a resumed run finishes bit-identical to an
 * uninterrupted one on the same layout.
 *
 * Losses are sums: micro_batch adds each element's loss times its weight
 * (tokens for language modelling, comparisons for RM/DPO) to acc->loss and
 * the weight to acc->weight, and accumulates gradients of that sum; the core
 * divides the all-reduced gradient by the global weight. */
#ifndef TRAINER_H
#define TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "common/model/adamw.h"
#include "common/config.h"
#include "common/io/ckpt.h"
#include "common/model/gpt.h"
#include "common/model/score.h"
#include "common/model/tok.h"
#include "learner/dataset.h"
#include "learner/dp.h"

#define TRAIN_MAX_METRICS 8

typedef struct {
    double loss, weight, tokens;
    double metric[TRAIN_MAX_METRICS]; /* sums, reported divided by weight */
} TrainAcc;

typedef struct Trainer Trainer;

typedef struct {
    const char *name;              /* subcommand, e.g. "sft" */
    const char *summary;           /* one line for --help */
    const CfgKey *keys;            /* stage keys, {NULL}-terminated */
    const char *kind;              /* checkpoint kind: "policy" or "reward" */
    const char *metric_names[TRAIN_MAX_METRICS]; /* NULL-terminated */
    /* Load t->tok, the data into t->train / t->valid, and t->model when it
     * comes from a checkpoint; nothing sized by batch keys or by a fresh
     * model's shape: the core checks the data against the batch layout
     * first (check_layout), so a slip fails before memory is spent. */
    int (*setup)(Trainer *t);
    /* After those checks: a fresh model, the batch buffers, anything
     * computed over the data (DPO's reference log-probs). May be NULL. */
    int (*build)(Trainer *t);
    /* Accumulate loss sums and gradients over examples idx[0..n). */
    void (*micro_batch)(Trainer *t, const int *idx, int n, TrainAcc *acc);
    /* Validation sums over examples idx[0..n) (no gradients). */
    void (*evaluate)(Trainer *t, const int *idx, int n, TrainAcc *acc);
    /* Extra attributes/datasets for every checkpoint (may be NULL). */
    int (*save_extra)(Trainer *t, Ckpt *k);
    /* After the last step, before the final checkpoint (may be NULL). */
    int (*finish)(Trainer *t);
    void (*teardown)(Trainer *t);  /* may be NULL */
} TrainStage;

struct Trainer {
    const TrainStage *stage;
    Config *cfg;
    Dp dp;
    DpGradSum gradsum; /* gradient sums overlapped with the last backward */
    Gpt model;
    Tok *tok;
    AdamW opt;
    Dataset train, valid;
    int has_valid;
    int64_t step, total_steps, steps_per_epoch;
    int batch_size, micro_batch;
    uint64_t seed;
    char out_dir[1024];
    void *state;                   /* the stage's own */
    volatile sig_atomic_t *stop;   /* set to a signal number: checkpoint and stop */
    int n_metrics;
};

/* Keys shared by every trainer (out_dir, data, schedule, optimizer, ...). */
extern const CfgKey trainer_keys[];

/* Runs a stage as a subcommand: argv[0..argc) are the arguments after it.
 * *stop is set by the caller's signal handler to the signal's number: the
 * trainer then checkpoints at the end of the step and returns. Returns the
 * process exit status (0, or 128 + the signal after such a checkpoint). */
int trainer_main(const TrainStage *stage, int argc, char **argv, volatile sig_atomic_t *stop);

/* Dropout seed for micro-batch j of the current step. */
uint64_t trainer_dropout_seed(const Trainer *t, int j);
/* Loads a checkpoint's model + tokenizer, checking its kind and head. */
int trainer_load_init(Trainer *t, const char *path, GptHead want_head);
/* A buffer of rows x micro_batch x n_ctx values of elem bytes (a stage's
 * per-micro-batch token or gradient buffer), or NULL + err_set("micro_batch
 * (8) x n_ctx (1000000) x 2 rows: 64.0 GB of buffers; out of memory (lower
 * micro_batch)") when the size overflows or the allocation fails, instead
 * of dying with a bare byte count. Call it from the stage's build. */
void *trainer_batch_alloc(const Trainer *t, int rows, size_t elem);
/* Print on rank 0 only (stderr, with the stage name). */
void trainer_log(const Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sequences as prompt + response rows for score_pack_rows: seqs[i]'s
 * tokens before from[i] are the prompt (from[i] = 0: plain text). */
void trainer_seq_rows(const Seq *const *seqs, const int *from, int n, ScoreRow *rows);

#endif
