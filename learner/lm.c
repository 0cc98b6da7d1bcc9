/* lm — pretraining and SFT on the shared trainer; see lm.h. Both minimise
 * the mean cross-entropy of the predicted tokens (text: all of them; SFT:
 * the completion and its <|endoftext|>). */
#include "learner/lm.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

typedef struct {
    int *tokens, *targets;
    float *logp, *dlogp;
} LmState;

static const CfgKey pretrain_keys[] = {
    {.key = "init", .type = CFG_STR, .def = "",
     .help = "checkpoint to continue from (empty: a fresh model from the keys below)"},
    {.key = "tokenizer", .type = CFG_STR, .def = "byte",
     .help = "fresh model's tokenizer: byte, or a directory with GPT-2 vocab.json + merges.txt"},
    {.key = "n_layer", .type = CFG_INT, .def = "4", .help = "fresh model: transformer blocks", .range = ">= 1"},
    {.key = "n_head", .type = CFG_INT, .def = "4", .help = "fresh model: attention heads", .range = ">= 1"},
    {.key = "n_embd", .type = CFG_INT, .def = "128", .help = "fresh model: width", .range = ">= 1"},
    {.key = "n_ctx", .type = CFG_INT, .def = "64", .help = "fresh model: context length", .range = ">= 1"},
    {.key = "block_size", .type = CFG_INT, .def = "0",
     .help = "tokens per training window (HF run_clm's, nanoGPT's block_size), at most the model's n_ctx; 0: n_ctx",
     .range = ">= 0"},
    {0}};

static const CfgKey sft_keys[] = {
    {.key = "init", .type = CFG_STR, .def = NULL, .help = "checkpoint to fine-tune (a pretrained language model)"},
    {0}};

/* Token buffers of one micro-batch (trainer_batch_alloc names the keys if
 * they do not fit in memory). */
static int lm_alloc(Trainer *t) {
    LmState *s = err_calloc(1, sizeof *s);
    t->state = s;
    return !(s->tokens = trainer_batch_alloc(t, 1, sizeof(int))) ||
                   !(s->targets = trainer_batch_alloc(t, 1, sizeof(int))) ||
                   !(s->logp = trainer_batch_alloc(t, 1, sizeof(float))) ||
                   !(s->dlogp = trainer_batch_alloc(t, 1, sizeof(float)))
               ? -1
               : 0;
}

static void lm_teardown(Trainer *t) {
    LmState *s = t->state;
    if (!s) return;
    free(s->tokens);
    free(s->targets);
    free(s->logp);
    free(s->dlogp);
    free(s);
}

/* Forward (and backward if grad) over examples idx of d. */
static void lm_run(Trainer *t, const Dataset *d, const int *idx, int n, TrainAcc *acc, int grad) {
    LmState *s = t->state;
    const Seq *seqs[n];
    int from[n];
    for (int i = 0; i < n; i++) {
        data_example_seqs(d, idx[i], &seqs[i]);
        from[i] = seqs[i]->prompt_len;
    }
    ScoreRow rows[n];
    trainer_seq_rows(seqs, from, n, rows);
    int T = score_pack_rows(rows, n, tok_eot(t->tok), s->tokens, s->targets);
    if (gpt_forward(&t->model, s->tokens, n, T)) err_die("%s: %s", t->stage->name, err_msg());
    gpt_token_logprobs(&t->model, s->targets, s->logp, NULL);
    double loss = 0, count = 0;
    for (int i = 0; i < n * T; i++) {
        int on = s->targets[i] >= 0;
        loss -= on ? s->logp[i] : 0.0;
        count += on;
        s->dlogp[i] = on ? -1.0f : 0.0f; /* gradient of the summed loss */
    }
    acc->loss += loss;
    acc->weight += count;
    acc->tokens += (double)n * T;
    if (grad) gpt_backward_lm(&t->model, s->targets, s->dlogp, NULL);
}

static void lm_micro_batch(Trainer *t, const int *idx, int n, TrainAcc *acc) { lm_run(t, &t->train, idx, n, acc, 1); }
static void lm_evaluate(Trainer *t, const int *idx, int n, TrainAcc *acc) { lm_run(t, &t->valid, idx, n, acc, 0); }

/* A fresh model's tokenizer, before any data is read with it. */
static int new_tokenizer(Trainer *t) {
    const char *tk = config_str(t->cfg, "tokenizer");
    if (!strcmp(tk, "byte")) t->tok = tok_byte_new();
    else if (!(t->tok = tok_gpt2_load_dir(tk))) return -1;
    return 0;
}

static GptConfig fresh_config(const Trainer *t) {
    return (GptConfig){.vocab_size = tok_vocab_size(t->tok),
                       .n_ctx = config_int(t->cfg, "n_ctx"),
                       .n_layer = config_int(t->cfg, "n_layer"),
                       .n_head = config_int(t->cfg, "n_head"),
                       .n_embd = config_int(t->cfg, "n_embd"),
                       .head = GPT_HEAD_LM};
}

/* A fresh model's shape is only checked here (gpt_config_validate, which
 * also refuses sizes that overflow); it is built after the data has been
 * found long enough for it (pretrain_build). */
static int pretrain_setup(Trainer *t) {
    const char *init = config_str(t->cfg, "init");
    if (*init ? trainer_load_init(t, init, GPT_HEAD_LM) : new_tokenizer(t)) return -1;
    GptConfig fresh = fresh_config(t);
    if (!*init && gpt_config_validate(&fresh)) return -1;
    int n_ctx = *init ? t->model.cfg.n_ctx : fresh.n_ctx;
    int block = config_int(t->cfg, "block_size");
    if (block > n_ctx)
        return err_set("block_size = %d: more than the model's context (n_ctx %d)", block, n_ctx);
    if (block == 0) block = n_ctx;
    if (data_load_text(&t->train, config_str(t->cfg, "train_data"), t->tok, block)) return -1;
    const char *valid = config_str(t->cfg, "valid_data");
    if (*valid) {
        if (data_load_text(&t->valid, valid, t->tok, block)) return -1;
        t->has_valid = 1;
    }
    return 0;
}

static int pretrain_build(Trainer *t) {
    if (!*config_str(t->cfg, "init")) {
        GptConfig c = fresh_config(t);
        if (gpt_init(&t->model, &c)) return -1;
        gpt_init_random(&t->model, t->seed);
    }
    return lm_alloc(t);
}

static int sft_setup(Trainer *t) {
    LongPolicy p;
    if (data_long_policy(config_str(t->cfg, "long_sequences"), &p)) return -1;
    if (trainer_load_init(t, config_str(t->cfg, "init"), GPT_HEAD_LM)) return -1;
    int n_ctx = t->model.cfg.n_ctx;
    if (data_load_sft(&t->train, config_str(t->cfg, "train_data"), t->tok, n_ctx, p)) return -1;
    const char *valid = config_str(t->cfg, "valid_data");
    if (*valid) {
        if (data_load_sft(&t->valid, valid, t->tok, n_ctx, p)) return -1;
        t->has_valid = 1;
    }
    if (t->train.n_truncated || t->train.n_skipped)
        trainer_log(t, "%s: %ld sequences truncated, %ld examples skipped (longer than %d tokens)",
                    t->train.path, t->train.n_truncated, t->train.n_skipped, n_ctx);
    return 0;
}

const TrainStage lm_pretrain_stage = {
    .name = "pretrain",
    .summary = "Next-token pretraining on plain text (a fresh model or a checkpoint).",
    .keys = pretrain_keys,
    .kind = "policy",
    .metric_names = {NULL},
    .setup = pretrain_setup,
    .build = pretrain_build,
    .micro_batch = lm_micro_batch,
    .evaluate = lm_evaluate,
    .save_extra = NULL,
    .finish = NULL,
    .teardown = lm_teardown};

const TrainStage lm_sft_stage = {
    .name = "sft",
    .summary = "Supervised fine-tuning on {\"prompt\",\"completion\"} JSONL; loss on completion tokens only.",
    .keys = sft_keys,
    .kind = "policy",
    .metric_names = {NULL},
    .setup = sft_setup,
    .build = lm_alloc,
    .micro_batch = lm_micro_batch,
    .evaluate = lm_evaluate,
    .save_extra = NULL,
    .finish = NULL,
    .teardown = lm_teardown};
