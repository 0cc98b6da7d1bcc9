/* dataset — training data for the supervised stages, tokenized and held in
 * memory: plain text for pretraining (cut into context-length windows),
 * {"prompt","completion"} demonstrations for SFT, {"prompt","chosen",
 * "rejected"} pairs and {"prompt","ranking":[best..worst]} K-wise rankings for
 * the reward model and DPO. Every example is one or more sequences
 * prompt + response + <|endoftext|>; the loss and the scores look only at the
 * response part (from prompt_len on). Sequences longer than the context are
 * truncated, skipped or rejected as configured, and counted. */
#ifndef DATASET_H
#define DATASET_H

#include "common/model/tok.h"

typedef enum { DATA_TEXT, DATA_SFT, DATA_PREFS } DataKind;
typedef enum { LONG_TRUNCATE, LONG_SKIP, LONG_ERROR } LongPolicy;

typedef struct {
    int *tokens;
    int len;        /* tokens in the sequence */
    int prompt_len; /* tokens[0..prompt_len) is the prompt; 0 for text */
} Seq;

typedef struct {
    DataKind kind;
    int n;              /* examples */
    int *first;         /* example i owns seqs[first[i] .. first[i+1]) */
    Seq *seqs;
    int n_seqs;
    long n_truncated;   /* sequences cut to the context */
    long n_skipped;     /* examples dropped for length */
    char path[512];
    int cap_seqs, cap_first; /* allocated entries */
} Dataset;

/* "truncate" / "skip" / "error"; -1 + err_set for anything else. */
int data_long_policy(const char *name, LongPolicy *out);

/* Plain text: the token stream cut into windows of block + 1 tokens that
 * overlap by one (each window trains block predictions). */
int data_load_text(Dataset *d, const char *path, const Tok *tok, int block);
/* SFT demonstrations. */
int data_load_sft(Dataset *d, const char *path, const Tok *tok, int n_ctx, LongPolicy p);
/* Preferences: lines with "chosen"/"rejected" (2 sequences, chosen first) or
 * a "ranking" of K >= 2 responses (best first); both kinds may be mixed. */
int data_load_prefs(Dataset *d, const char *path, const Tok *tok, int n_ctx, LongPolicy p);
/* Sequences of example i, and how many. */
static inline int data_example_seqs(const Dataset *d, int i, const Seq **seqs) {
    *seqs = d->seqs + d->first[i];
    return d->first[i + 1] - d->first[i];
}
void data_free(Dataset *d);

#endif
