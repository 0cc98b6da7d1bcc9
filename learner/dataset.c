/* dataset — loading and tokenizing the supervised stages' data; see
 * dataset.h. Errors name the file and line (from common/io/jsonl). */
#include "learner/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/jsonl.h"
#include "common/fsutil.h"

int data_long_policy(const char *name, LongPolicy *out) {
    if (!strcmp(name, "truncate")) *out = LONG_TRUNCATE;
    else if (!strcmp(name, "skip")) *out = LONG_SKIP;
    else if (!strcmp(name, "error")) *out = LONG_ERROR;
    else return err_set("long_sequences must be truncate, skip or error, got '%s'", name);
    return 0;
}

static void data_init(Dataset *d, DataKind kind, const char *path) {
    memset(d, 0, sizeof *d);
    d->kind = kind;
    snprintf(d->path, sizeof d->path, "%s", path);
    d->cap_first = 64;
    d->first = err_malloc((size_t)d->cap_first * sizeof(int));
    d->first[0] = 0;
}

void data_free(Dataset *d) {
    for (int i = 0; i < d->n_seqs; i++) free(d->seqs[i].tokens);
    free(d->seqs);
    free(d->first);
    memset(d, 0, sizeof *d);
}

static void push_seq(Dataset *d, int *tokens, int len, int prompt_len) {
    if (d->n_seqs == d->cap_seqs) {
        d->cap_seqs = d->cap_seqs ? 2 * d->cap_seqs : 64;
        d->seqs = err_realloc(d->seqs, (size_t)d->cap_seqs * sizeof(Seq));
    }
    d->seqs[d->n_seqs++] = (Seq){tokens, len, prompt_len};
}

static void end_example(Dataset *d) {
    if (d->n + 2 > d->cap_first) { /* first has n + 1 entries */
        d->cap_first = 2 * (d->n + 2);
        d->first = err_realloc(d->first, (size_t)d->cap_first * sizeof(int));
    }
    d->first[++d->n] = d->n_seqs;
}

/* Drops sequences pushed since the last end_example. */
static void drop_partial(Dataset *d) {
    while (d->n_seqs > d->first[d->n]) free(d->seqs[--d->n_seqs].tokens);
}

/* prompt + response + EOT as one token array; applies the length policy.
 * Returns 1 if pushed, 0 if the example must be skipped, -1 on error. */
static int add_pair_seq(Dataset *d, Jsonl *j, const Tok *tok, const char *prompt,
                        const char *response, int n_ctx, LongPolicy p) {
    int np, nr;
    int *pt = tok_encode(tok, prompt, strlen(prompt), &np);
    int *rt = pt ? tok_encode(tok, response, strlen(response), &nr) : NULL;
    if (!pt || !rt) {
        free(pt);
        return err_prefix("%s:%d: ", jsonl_path(j), jsonl_line(j));
    }
    int len = np + nr + 1;
    if (np == 0) {
        free(pt);
        free(rt);
        return err_set("%s:%d: field \"prompt\": empty", jsonl_path(j), jsonl_line(j));
    }
    if (len > n_ctx) {
        if (p == LONG_ERROR || np >= n_ctx) {
            free(pt);
            free(rt);
            if (p == LONG_SKIP) return 0;
            return err_set("%s:%d: sequence of %d tokens (prompt %d) is longer than the context (%d); "
                           "set long_sequences = truncate or skip",
                           jsonl_path(j), jsonl_line(j), len, np, n_ctx);
        }
        if (p == LONG_SKIP) {
            free(pt);
            free(rt);
            return 0;
        }
        d->n_truncated++;
    }
    int keep = len > n_ctx ? n_ctx : len;
    int *seq = err_malloc((size_t)len * sizeof(int));
    memcpy(seq, pt, np * sizeof(int));
    memcpy(seq + np, rt, nr * sizeof(int));
    seq[np + nr] = tok_eot(tok);
    free(pt);
    free(rt);
    push_seq(d, seq, keep, np);
    return 1;
}

/* Adds one record's sequences; 1 added, 0 skipped, -1 error. */
static int add_record(Dataset *d, Jsonl *j, json_t *rec, const Tok *tok, int n_ctx, LongPolicy p) {
    const char *prompt, *a, *b, **rank = NULL;
    int n = 0, rc = 1;
    if (jsonl_get_str(j, rec, "prompt", &prompt)) return -1;
    if (d->kind == DATA_SFT) {
        if (jsonl_get_str(j, rec, "completion", &a)) return -1;
        return add_pair_seq(d, j, tok, prompt, a, n_ctx, p);
    }
    if (json_object_get(rec, "ranking")) {
        if (jsonl_get_str_array(j, rec, "ranking", &rank, &n)) return -1;
        for (int i = 0; i < n && rc == 1; i++) rc = add_pair_seq(d, j, tok, prompt, rank[i], n_ctx, p);
        free(rank);
        return rc;
    }
    if (jsonl_get_str(j, rec, "chosen", &a) || jsonl_get_str(j, rec, "rejected", &b)) return -1;
    rc = add_pair_seq(d, j, tok, prompt, a, n_ctx, p);
    return rc == 1 ? add_pair_seq(d, j, tok, prompt, b, n_ctx, p) : rc;
}

static int load_jsonl(Dataset *d, const char *path, const Tok *tok, int n_ctx, LongPolicy p) {
    Jsonl *j = jsonl_open(path);
    json_t *rec;
    int rc;
    if (!j) return -1;
    while ((rc = jsonl_next(j, &rec)) == 1) {
        int added = add_record(d, j, rec, tok, n_ctx, p);
        if (added < 0) break;
        if (added == 0) {
            drop_partial(d);
            d->n_skipped++;
        }
        else end_example(d);
    }
    jsonl_close(j);
    if (rc != 0) return -1;
    if (d->n == 0) return err_set("%s: no usable examples%s", path, d->n_skipped ? " (all too long)" : "");
    return 0;
}

int data_load_sft(Dataset *d, const char *path, const Tok *tok, int n_ctx, LongPolicy p) {
    data_init(d, DATA_SFT, path);
    if (load_jsonl(d, path, tok, n_ctx, p)) {
        data_free(d);
        return -1;
    }
    return 0;
}

int data_load_prefs(Dataset *d, const char *path, const Tok *tok, int n_ctx, LongPolicy p) {
    data_init(d, DATA_PREFS, path);
    if (load_jsonl(d, path, tok, n_ctx, p)) {
        data_free(d);
        return -1;
    }
    return 0;
}

int data_load_text(Dataset *d, const char *path, const Tok *tok, int block) {
    data_init(d, DATA_TEXT, path);
    size_t len;
    char *text = fs_read_all(path, &len);
    if (!text) {
        data_free(d);
        return -1;
    }
    int n;
    int *ids = tok_encode(tok, text, len, &n);
    free(text);
    if (!ids) {
        data_free(d);
        return err_prefix("%s: ", path);
    }
    if (n <= block) { /* block + 1 would overflow at block = INT_MAX */
        free(ids);
        data_free(d);
        return err_set("%s: %d tokens; pretraining needs at least one window of %lld (block_size + 1)", path, n,
                       (long long)block + 1);
    }
    for (int s = 0; n - s > block; s += block) {
        int *w = err_malloc((size_t)(block + 1) * sizeof(int));
        memcpy(w, ids + s, (size_t)(block + 1) * sizeof(int));
        push_seq(d, w, block + 1, 0);
        end_example(d);
    }
    free(ids);
    return 0;
}
