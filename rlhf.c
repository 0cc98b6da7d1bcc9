/* rlhf — the command-line front end: the one file that knows every role.
 * One table of subcommands (below, `commands`) drives dispatch, `rlhf
 * --help`, each subcommand's --help (its option table, opts.h, or its
 * configuration keys, config.h) and `rlhf config-reference`. Signal
 * handlers are installed here once, for every subcommand, before it runs:
 * trainers and PPO get a stop flag and checkpoint before they exit
 * 128 + signal; the others end at once with that status. This file parses,
 * checks and prints; the computing is done by the modules it calls.
 * Training subcommands and the PPO roles start MPI; the rest run on one
 * process. Errors from any module arrive as one line through err.h. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor/actor.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/ckpt.h"
#include "common/io/hf.h"
#include "common/io/jsonl.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/model/tok.h"
#include "common/mpi/ppo_config.h"
#include "common/opts.h"
#include "common/task/arith.h"
#include "common/task/evaluate.h"
#include "common/tools/inspect.h"
#include "common/tools/plan.h"
#include "common/tools/plot.h"
#include "learner/dp.h"
#include "learner/dpo.h"
#include "learner/gridworld.h"
#include "learner/lm.h"
#include "learner/ppo.h"
#include "learner/rm.h"
#include "rewarder/rewarder.h"

#define RLHF_VERSION "0.1.0"

/* ---- the subcommand table's row ------------------------------------------- */

typedef struct Command Command;
typedef struct PpoPreset PpoPreset;

/* What a subcommand's run function gets. */
typedef struct {
    const Command *cmd; /* its row */
    int argc;           /* positional arguments (option table), else all */
    char **argv;
} Invocation;

/* A subcommand. Those with an option table get their arguments parsed (and
 * --help answered) before run, which receives the positional arguments;
 * the others (trainers, ppo: configuration keys, MPI) receive the raw
 * arguments after the subcommand name. */
struct Command {
    const char *name;
    const char *summary;        /* one line of `rlhf --help` */
    const OptSpec *opts;        /* option table and --help; NULL: see below */
    void (*set_defaults)(void); /* option defaults known only at run time; may be NULL */
    const TrainStage *stage;    /* trainers: the stage's keys (with trainer_keys) */
    const CfgKey *const *tables; /* ppo: its configuration key tables (n_tables) */
    int n_tables;
    const PpoPreset *preset;    /* ppo presets (grpo, rloo, reinforce): their defaults; NULL otherwise */
    int stops;                  /* acts on the stop flag: checkpoints, then exits */
    int (*run)(const Invocation *in);
};

/* ---- signals ----------------------------------------------------------------- */

/* The number of the signal that asked the running subcommand to stop; 0 if none. */
static volatile sig_atomic_t stop_signal;
/* 1 while the running subcommand checks stop_signal at its checkpoints. */
static volatile sig_atomic_t stops_at_checkpoints;

/* Subcommands without checkpoints have nothing to save: they end here,
 * with the status a shell shows for a process killed by the signal. */
static void on_signal(int sig) {
    if (!stops_at_checkpoints) _exit(128 + sig);
    stop_signal = sig;
}

/* On every rank of an MPI job too: srun and mpirun pass SIGTERM and SIGUSR1
 * straight to the ranks. PPO actors and rewarders keep going until the
 * learner, which acts on the flag, has checkpointed and tells them to stop. */
static void install_signals(const Command *c) {
    stops_at_checkpoints = c->stops;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Loads a checkpoint's model and tokenizer as want expects or dies naming
 * the file and what differs. */
static Tok *load_as_or_die(const char *path, Gpt *m, const CkptWant *want) {
    Tok *tok = NULL;
    if (!path) err_die("--model is required");
    if (ckpt_load_model_as(path, m, &tok, want)) err_die_last();
    return tok;
}

/* ---- init ---------------------------------------------------------------- */

static struct {
    const char *out, *head, *tokenizer;
    int n_layer, n_head, n_embd, n_ctx, seed, force;
} init_args = {.head = "lm", .n_layer = 4, .n_head = 4, .n_embd = 128, .n_ctx = 128, .seed = 1};

static const Opt init_opts[] = {
    {.name = "out", .type = OPT_STR, .dest = &init_args.out, .metavar = "CKPT",
     .help = "checkpoint to write (required)"},
    {.name = "n-layer", .type = OPT_INT, .dest = &init_args.n_layer, .metavar = "N",
     .help = "transformer blocks", .range = ">= 1"},
    {.name = "n-head", .type = OPT_INT, .dest = &init_args.n_head, .metavar = "N", .help = "attention heads",
     .range = ">= 1"},
    {.name = "n-embd", .type = OPT_INT, .dest = &init_args.n_embd, .metavar = "N",
     .help = "model width (multiple of n-head)", .range = ">= 1"},
    {.name = "n-ctx", .type = OPT_INT, .dest = &init_args.n_ctx, .metavar = "N",
     .help = "context length in tokens", .range = ">= 1"},
    {.name = "head", .type = OPT_STR, .dest = &init_args.head, .metavar = "lm|scalar",
     .help = "language-model head or scalar (reward/value) head"},
    {.name = "tokenizer", .type = OPT_STR, .dest = &init_args.tokenizer, .metavar = "DIR",
     .help = "take GPT-2 BPE vocab.json + merges.txt from DIR (default: byte tokenizer)"},
    {.name = "seed", .type = OPT_INT, .dest = &init_args.seed, .metavar = "S",
     .help = "random seed for the weights", .range = "any"},
    {.name = "force", .type = OPT_FLAG, .dest = &init_args.force, .help = "replace an existing CKPT"},
    {0}};

static const OptSpec init_spec = {
    .command = "init",
    .usage = "rlhf init --out CKPT [options]",
    .summary = "Create a GPT-2 model with fresh random weights (GPT-2 initialisation).",
    .opts = init_opts,
};

/* The output rule (DESIGN.md "Errors"): --out is never one of the files
 * --tokenizer DIR is read from, --force or not. */
static void init_check_not_tokenizer(const char *out, const char *dir) {
    if (!dir) return;
    char *vocab = fs_join(dir, "vocab.json");
    char *merges = fs_join(dir, "merges.txt");
    const char *inputs[] = {vocab, merges};
    int rc = fs_check_not_input(out, inputs, 2);
    free(vocab);
    free(merges);
    if (rc) err_die("init: %s", err_msg());
}

/* The byte tokenizer, or GPT-2 BPE from a Hugging Face directory. */
static Tok *init_tokenizer(const char *dir) {
    if (!dir) return tok_byte_new();
    Tok *tok = tok_gpt2_load_dir(dir);
    if (!tok) err_die_last();
    return tok;
}

static int cmd_init(const Invocation *in) {
    (void)in;
    const char *out = init_args.out, *head = init_args.head;
    if (!out) err_die("init: --out is required");
    if (strcmp(head, "lm") && strcmp(head, "scalar")) err_die("init: --head must be lm or scalar, got '%s'", head);
    if (fs_check_new(out, init_args.force)) err_die("init: %s", err_msg());
    init_check_not_tokenizer(out, init_args.tokenizer);
    Tok *tok = init_tokenizer(init_args.tokenizer);
    GptConfig c = {
        .vocab_size = tok_vocab_size(tok),
        .n_ctx = init_args.n_ctx,
        .n_layer = init_args.n_layer,
        .n_head = init_args.n_head,
        .n_embd = init_args.n_embd,
        .head = strcmp(head, "lm") ? GPT_HEAD_SCALAR : GPT_HEAD_LM,
    };
    Gpt m;
    if (gpt_init(&m, &c)) err_die("init: %s", err_msg());
    gpt_init_random(&m, (uint64_t)init_args.seed);
    if (ckpt_save_model(out, &m, tok, c.head == GPT_HEAD_LM ? "policy" : "reward")) err_die_last();
    fprintf(stderr, "rlhf init: %s: %zu parameters (%d layers, %d heads, width %d, context %d, vocab %d)\n",
            out, m.n_params, c.n_layer, c.n_head, c.n_embd, c.n_ctx, c.vocab_size);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

/* ---- generate ------------------------------------------------------------ */

static struct {
    const char *model, *prompt, *prompts;
    int max_new, greedy, top_k, seed, jsonl, batch;
    float temperature, top_p;
} gen_args = {.max_new = 64, .seed = 1, .batch = 8, .temperature = 1.0f, .top_p = 1.0f};

static const Opt gen_opts[] = {
    {.name = "model", .type = OPT_STR, .dest = &gen_args.model, .metavar = "CKPT",
     .help = "policy checkpoint (required)"},
    {.name = "prompt", .type = OPT_STR, .dest = &gen_args.prompt, .metavar = "TEXT", .help = "one prompt"},
    {.name = "prompts", .type = OPT_STR, .dest = &gen_args.prompts, .metavar = "FILE.jsonl",
     .help = "prompts, one {\"prompt\": ...} per line"},
    {.name = "max-new", .type = OPT_INT, .dest = &gen_args.max_new, .metavar = "N",
     .help = "new tokens at most per prompt", .range = ">= 1"},
    {.name = "greedy", .type = OPT_FLAG, .dest = &gen_args.greedy,
     .help = "always take the most likely token"},
    {.name = "temperature", .type = OPT_FLOAT, .dest = &gen_args.temperature, .metavar = "T",
     .help = "sampling temperature", .range = "> 0"},
    {.name = "top-k", .type = OPT_INT, .dest = &gen_args.top_k, .metavar = "K",
     .help = "sample among the K most likely tokens (0 = all)", .range = ">= 0"},
    {.name = "top-p", .type = OPT_FLOAT, .dest = &gen_args.top_p, .metavar = "P",
     .help = "nucleus sampling: smallest set with mass >= P (1 = off)", .range = "(0, 1]"},
    {.name = "seed", .type = OPT_INT, .dest = &gen_args.seed, .metavar = "S",
     .help = "random seed (same seed, same output)", .range = "any"},
    {.name = "batch", .type = OPT_INT, .dest = &gen_args.batch, .metavar = "B",
     .help = "prompts generated together", .range = ">= 1"},
    {.name = "jsonl", .type = OPT_FLAG, .dest = &gen_args.jsonl, .help = "print one JSON object per prompt"},
    {0}};

static const OptSpec gen_spec = {
    .command = "generate",
    .usage = "rlhf generate --model CKPT (--prompt TEXT | --prompts FILE.jsonl) [options]",
    .summary = "Complete prompts with a KV-cache sampler: greedy, temperature, top-k, top-p.",
    .details = "Generation stops at the end-of-text token, after --max-new tokens, or when the\n"
               "context is full. --jsonl prints {\"prompt\", \"completion\", \"tokens\", \"stop\",\n"
               "\"logprob\"} per prompt; invalid UTF-8 (prompt or completion) becomes U+FFFD.",
    .opts = gen_opts,
};

static const char *stop_name(GenStop s) {
    return s == GEN_STOP_EOT ? "eot" : s == GEN_STOP_LENGTH ? "length" : "context";
}

/* Decodes the new tokens, leaving out a final end token. */
static char *decode_completion(const Tok *tok, const GenResult *r, int i, size_t *len) {
    int n = r->len[i] - (r->stop[i] == GEN_STOP_EOT);
    char *text = tok_decode(tok, r->tokens[i], n, len);
    if (!text) err_die_last();
    return text;
}

static void print_completion(const Tok *tok, const GenResult *r, int i, const char *prompt,
                             int as_jsonl, int numbered, int index) {
    size_t len;
    char *text = decode_completion(tok, r, i, &len);
    if (as_jsonl) {
        /* JSON strings must be UTF-8: a --prompt from the shell and a byte
         * model's output may be any bytes (jansson returns NULL for them) */
        char *clean_prompt = tok_utf8_clean(prompt, strlen(prompt)), *clean = tok_utf8_clean(text, len);
        double lp = 0;
        for (int k = 0; k < r->len[i]; k++) lp += r->logp_model[i][k];
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:o}", "prompt", clean_prompt, "completion", clean,
                              "tokens", r->len[i], "stop", stop_name(r->stop[i]), "logprob",
                              isfinite(lp) ? json_real(lp) : json_null()); /* JSON has no NaN or Inf */
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (!line) err_die("generate: cannot format a JSON line"); /* both strings are clean: cannot happen */
        puts(line);
        free(line);
        json_decref(o);
        free(clean);
        free(clean_prompt);
    } else {
        if (numbered) printf("--- %d ---\n", index);
        fputs(prompt, stdout);
        fwrite(text, 1, len, stdout);
        putchar('\n');
    }
    free(text);
}

/* Tokenizes prompts[0..n) (an empty prompt becomes the end token) or dies
 * naming the prompt that does not fit the context or cannot be encoded as
 * SOURCE:LINE (lines[i], from the prompts file), or as SOURCE alone for
 * --prompt (line 0), as eval names its prompts. */
static int **encode_prompts(const Tok *tok, char *const *prompts, const int *lines, int n, int n_ctx, int eot,
                            const char *source, int *lens) {
    int **ids = err_calloc(n, sizeof(int *));
    for (int i = 0; i < n; i++) {
        char where[4200];
        if (lines[i] > 0) snprintf(where, sizeof where, "%s:%d", source, lines[i]);
        else snprintf(where, sizeof where, "%s", source);
        if (!(ids[i] = tok_encode(tok, prompts[i], strlen(prompts[i]), &lens[i])))
            err_die("%s: %s", where, err_msg());
        if (lens[i] == 0) {
            ids[i] = err_realloc(ids[i], sizeof(int));
            ids[i][0] = eot;
            lens[i] = 1;
        }
        if (lens[i] >= n_ctx) err_die("%s: prompt has %d tokens; the model's context is %d", where, lens[i], n_ctx);
    }
    return ids;
}

static int cmd_generate(const Invocation *in) {
    (void)in;
    const char *model = gen_args.model, *prompts_file = gen_args.prompts;
    int batch = gen_args.batch;
    if (!gen_args.prompt == !prompts_file) err_die("generate: give exactly one of --prompt or --prompts");
    if (gen_args.max_new < 1) err_die("generate: --max-new must be >= 1, got %d", gen_args.max_new);
    if (batch < 1) err_die("generate: --batch must be >= 1, got %d", batch);
    GenConfig gc = {
        .max_new = gen_args.max_new,
        .sampler = {.greedy = gen_args.greedy,
                    .temperature = gen_args.temperature,
                    .top_k = gen_args.top_k,
                    .top_p = gen_args.top_p},
    };
    if (sampler_validate(&gc.sampler)) err_die("generate: %s", err_msg());
    Gpt m;
    Tok *tok = load_as_or_die(model, &m, &(CkptWant){.head = GPT_HEAD_LM, .what = "generate --model"});
    if (batch > 1) gpt_pack_decode(&m); /* once for every batch */
    gc.eot = tok_eot(tok);
    JsonlPrompts pl = {0};
    if (gen_args.prompt) jsonl_prompts_add(&pl, gen_args.prompt, 0);
    else if (jsonl_read_prompts(prompts_file, &pl)) err_die_last();
    Rng rng;
    rng_seed(&rng, (uint64_t)gen_args.seed);
    for (int start = 0; start < pl.n; start += batch) {
        int n = pl.n - start < batch ? pl.n - start : batch;
        int *lens = err_calloc(n, sizeof(int));
        int **ids = encode_prompts(tok, pl.text + start, pl.line + start, n, m.cfg.n_ctx, gc.eot,
                                   prompts_file ? prompts_file : "--prompt", lens);
        GenResult r;
        if (gen_run(&m, (const int *const *)ids, lens, n, &gc, &rng, &r)) err_die("generate: %s", err_msg());
        for (int i = 0; i < n; i++)
            print_completion(tok, &r, i, pl.text[start + i], gen_args.jsonl, pl.n > 1, start + i + 1);
        if (err_stdout_check()) err_die_last(); /* stop at the first failed write, not after every batch */
        gen_result_free(&r);
        for (int i = 0; i < n; i++) free(ids[i]);
        free(ids);
        free(lens);
    }
    jsonl_prompts_free(&pl);
    tok_free(tok);
    gpt_free(&m);
    return 0;
}

/* ---- nll ------------------------------------------------------------------ */

static struct {
    const char *model, *text;
    int batch, json;
} nll_args = {.batch = 4};

static const Opt nll_opts[] = {
    {.name = "model", .type = OPT_STR, .dest = &nll_args.model, .metavar = "CKPT",
     .help = "language-model checkpoint (required)"},
    {.name = "text", .type = OPT_STR, .dest = &nll_args.text, .metavar = "FILE",
     .help = "plain UTF-8 text (required)"},
    {.name = "batch", .type = OPT_INT, .dest = &nll_args.batch, .metavar = "B",
     .help = "context windows evaluated together", .range = ">= 1"},
    {.name = "json", .type = OPT_FLAG, .dest = &nll_args.json, .help = "print a JSON object instead of text"},
    {0}};

static const OptSpec nll_spec = {
    .command = "nll",
    .usage = "rlhf nll --model CKPT --text FILE [options]",
    .summary = "Mean negative log-likelihood (nats/token) and perplexity of a text.",
    .details = "The text is cut into non-overlapping windows of the model's context length;\n"
               "every token after the first is predicted once.",
    .opts = nll_opts,
};

static int cmd_nll(const Invocation *in) {
    (void)in;
    const char *model = nll_args.model, *text = nll_args.text;
    if (!model || !text) err_die("nll: --model and --text are required");
    if (nll_args.batch < 1) err_die("nll: --batch must be >= 1");
    Gpt m;
    Tok *tok = load_as_or_die(model, &m, &(CkptWant){.head = GPT_HEAD_LM, .what = "nll --model"});
    size_t len;
    char *buf = fs_read_all(text, &len);
    if (!buf) err_die_last();
    int n;
    int *ids = tok_encode(tok, buf, len, &n);
    free(buf);
    if (!ids) err_die("%s: %s", text, err_msg());
    double total;
    long count;
    int rc = eval_nll(&m, ids, n, nll_args.batch, &total, &count);
    free(ids);
    if (rc) err_die("%s: %s", text, err_msg());
    double mean = total / count;
    if (nll_args.json) printf("{\"tokens\": %ld, \"nll\": %.6f, \"perplexity\": %.6f}\n", count, mean, exp(mean));
    else printf("tokens %ld  nll %.6f nats/token  perplexity %.4f\n", count, mean, exp(mean));
    tok_free(tok);
    gpt_free(&m);
    return 0;
}

/* ---- import-hf / export-hf / inspect ------------------------------------- */

static const char *import_out;
static int import_force;

static const Opt import_opts[] = {{.name = "out", .type = OPT_STR, .dest = &import_out, .metavar = "CKPT",
 .help = "checkpoint to write (required)"},
    {.name = "force", .type = OPT_FLAG, .dest = &import_force, .help = "replace an existing CKPT"}, {0}};

static const OptSpec import_spec = {
    .command = "import-hf",
    .usage = "rlhf import-hf DIR --out CKPT",
    .summary = "Import a Hugging Face GPT-2 directory (config.json, model.safetensors,\n"
               "vocab.json, merges.txt) into an rlhf checkpoint.",
    .details = "Accepts F32, F16 and BF16 tensors, keys with or without the \"transformer.\"\n"
               "prefix; a model with a score.weight tensor becomes a scalar-head model.",
    .opts = import_opts,
    .min_pos = 1,
    .max_pos = 1,
};

static int cmd_import_hf(const Invocation *in) {
    const char *dir = in->argv[0];
    if (!import_out) err_die("import-hf: --out is required");
    if (fs_check_new(import_out, import_force)) err_die("import-hf: %s", err_msg());
    for (int i = 0; i < HF_N_FILES; i++) {
        char *p = fs_join(dir, hf_files[i]);
        const char *inputs[] = {p};
        if (fs_check_not_input(import_out, inputs, 1)) err_die_last();
        free(p);
    }
    Gpt m;
    Tok *tok;
    if (hf_import(dir, &m, &tok)) err_die_last();
    if (ckpt_save_model(import_out, &m, tok, m.cfg.head == GPT_HEAD_LM ? "policy" : "reward")) err_die_last();
    fprintf(stderr, "rlhf import-hf: %s -> %s: %zu parameters, %d layers, width %d, vocab %d (%s tokenizer)\n",
            dir, import_out, m.n_params, m.cfg.n_layer, m.cfg.n_embd, m.cfg.vocab_size,
            tok_kind(tok) == TOK_BYTE ? "byte" : "GPT-2 BPE");
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

static const char *export_out;

static const Opt export_opts[] = {
    {.name = "out", .type = OPT_STR, .dest = &export_out, .metavar = "DIR",
     .help = "directory to write (created if missing; required)"}, {0}};

static const OptSpec export_spec = {
    .command = "export-hf",
    .usage = "rlhf export-hf CKPT --out DIR",
    .summary = "Export a checkpoint as a Hugging Face GPT-2 directory (config.json,\n"
               "model.safetensors, vocab.json, merges.txt).",
    .opts = export_opts,
    .min_pos = 1,
    .max_pos = 1,
};

static int cmd_export_hf(const Invocation *in) {
    const char *ckpt = in->argv[0];
    if (!export_out) err_die("export-hf: --out is required");
    for (int i = 0; i < HF_N_FILES; i++) {
        char *p = fs_join(export_out, hf_files[i]);
        if (fs_check_not_input(p, &ckpt, 1)) err_die_last();
        free(p);
    }
    Gpt m;
    Tok *tok = NULL;
    if (ckpt_load_model(ckpt, &m, &tok, NULL, 0)) err_die_last(); /* either head exports */
    if (hf_export(export_out, &m, tok)) err_die_last();
    fprintf(stderr, "rlhf export-hf: %s -> %s/\n", ckpt, export_out);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

static struct {
    const char *model;
    int json;
} inspect_args;

static const Opt inspect_opts[] = {
    {.name = "model", .type = OPT_STR, .dest = &inspect_args.model, .metavar = "CKPT",
     .help = "tokenizer for decoding a rollout log (default: final.h5 beside it)"},
    {.name = "json", .type = OPT_FLAG, .dest = &inspect_args.json,
     .help = "machine-readable output: one JSON object (checkpoints and logs)"},
    {0}};

static const OptSpec inspect_spec = {
    .command = "inspect",
    .usage = "rlhf inspect FILE.h5 [--json] [--model CKPT]",
    .summary = "Summarise a checkpoint (kind, model, tokenizer, parameters) or a log: a rollout log\n"
               "(rows, per-iteration reward / r_theta / KL / lambda / gold / length, policy-lag\n"
               "histogram, decoded samples) or a metrics table. Logs can be inspected while written.",
    .opts = inspect_opts,
    .min_pos = 1,
    .max_pos = 1,
};

static int cmd_inspect(const Invocation *in) {
    if (inspect_path(in->argv[0], inspect_args.model, inspect_args.json, stdout)) err_die_last();
    return 0;
}

/* ---- data ----------------------------------------------------------------- */

static struct {
    const char *out;
    int n, seed, max_operand;
} data_args = {.n = 4000, .seed = 1};

static const Opt data_opts[] = {
    {.name = "out", .type = OPT_STR, .dest = &data_args.out, .metavar = "DIR",
     .help = "directory to write (created if missing; required)"},
    {.name = "n", .type = OPT_INT, .dest = &data_args.n, .metavar = "N",
     .help = "dataset scale: SFT demonstrations and preference pairs", .range = ">= 1"},
    {.name = "seed", .type = OPT_INT, .dest = &data_args.seed, .metavar = "S",
     .help = "random seed (same seed, same files)", .range = "any"},
    {.name = "max-operand", .type = OPT_INT, .dest = &data_args.max_operand, .metavar = "M",
     .help = "operands 0..M (0: the task's default)", .range = ">= 0"},
    {0}};

static const OptSpec data_spec = {
    .command = "data",
    .usage = "rlhf data arith --out DIR [--n N] [--seed S]",
    .summary = "Write the built-in arithmetic task: pretraining text, SFT demonstrations, preference\n"
               "pairs, K-wise rankings, RL prompts and held-out evaluation prompts.",
    .details = "Files: pretrain.txt, sft.jsonl, sft_valid.jsonl, prefs.jsonl,\n"
               "prefs_valid.jsonl, rankings.jsonl, rl_prompts.jsonl, eval_prompts.jsonl, README.txt.\n"
               "The gold judge scores correctness first, then manners, then concision.",
    .opts = data_opts,
    .min_pos = 1,
    .max_pos = 1,
};

static int cmd_data(const Invocation *in) {
    if (strcmp(in->argv[0], "arith")) err_die("data: unknown task '%s' (available: arith)", in->argv[0]);
    if (!data_args.out) err_die("data: --out is required");
    ArithSizes sz = {0};
    sz.max_operand = data_args.max_operand;
    if (arith_write_dataset(data_args.out, data_args.n, (uint64_t)data_args.seed, &sz)) err_die_last();
    fprintf(stderr, "rlhf data: wrote the arith task (n %d, seed %d) to %s/\n", data_args.n, data_args.seed,
            data_args.out);
    return 0;
}

/* ---- trainers --------------------------------------------------------------- */

/* The row's stage parses its own configuration (after MPI starts). */
static int cmd_trainer(const Invocation *in) {
    return trainer_main(in->cmd->stage, in->argc, in->argv, &stop_signal);
}

/* ---- ppo presets --------------------------------------------------------------- */

/* One value of a preset and where it comes from (--help prints both). */
typedef struct {
    const char *key, *value, *why;
} PpoPresetValue;

/* A preset of the RL job: `rlhf grpo` is `rlhf ppo` starting from the
 * algorithm's published defaults. They are set (origin "preset NAME") over
 * the key table's defaults and before the config file and the command line,
 * so both still override each of them; the resolved configuration (printed
 * at start, stored in checkpoints and settings.cfg) holds them like any
 * other value, so a run started with `rlhf grpo` resumes with `rlhf grpo`, or
 * with `rlhf ppo` given the same values. The peers' defaults beside ours:
 * README, "Critic-free RL". */
struct PpoPreset {
    const char *algorithm;        /* --help's first line: the algorithm and its paper */
    const PpoPresetValue *values; /* ending with {NULL} */
};

/* The verifier needs no reward model: on the built-in task it is the gold judge. */
#define PRESET_REWARD                     \
    {.key = "reward", .value = "verifier", \
     .why = "the verifier's score (the gold judge on the built-in task); no reward model"}

static const PpoPresetValue grpo_values[] = {
    {.key = "advantage", .value = "grpo", .why = "(r - group mean) / (group std + eps) on every token, no value model"},
    {.key = "group_size", .value = "8",
     .why = "TRL num_generations; the paper's 64 would make a 64-rollout batch one prompt"},
    {.key = "kl_in", .value = "loss",
     .why = "KL to the reference in the loss, not in the reward (the paper; verl use_kl_loss)"},
    {.key = "kl_estimator", .value = "k3", .why = "the paper's unbiased positive estimator (TRL; verl low_var_kl)"},
    {.key = "kl_coef", .value = "0.04", .why = "the paper's beta (TRL now 0, verl 0.001)"},
    {.key = "kl_target", .value = "0", .why = "a fixed coefficient"},
    {.key = "loss_agg", .value = "seq-mean-token-mean",
     .why = "the paper's 1/G sum_i 1/|o_i| sum_t (TRL loss_type grpo)"},
    {.key = "clip", .value = "0.2", .why = "both sides (TRL epsilon, verl clip_ratio)"},
    {.key = "ppo_epochs", .value = "1",
     .why = "one pass over each batch (the paper; TRL num_iterations, verl ppo_epochs)"},
    PRESET_REWARD,
    {0}};

static const PpoPresetValue rloo_values[] = {
    {.key = "advantage", .value = "rloo", .why = "r - the mean of the group's other G - 1 rewards, no value model"},
    {.key = "group_size", .value = "4", .why = "k = 4, the larger of the paper's k = 2 and 4 (TRL num_generations 2)"},
    {.key = "kl_in", .value = "reward", .why = "the response's KL taken off its reward (the paper; TRL)"},
    {.key = "kl_estimator", .value = "k1", .why = "the log-ratio (the paper; TRL)"},
    {.key = "kl_coef", .value = "0.05", .why = "TRL beta"},
    {.key = "kl_target", .value = "0", .why = "a fixed coefficient"},
    {.key = "loss_agg", .value = "seq-mean-token-sum-norm",
     .why = "the response is one action: tokens summed, responses averaged (the paper; TRL); / max_new is a constant"},
    {.key = "clip", .value = "0.2", .why = "TRL epsilon"},
    {.key = "ppo_epochs", .value = "1", .why = "REINFORCE: one pass over each batch (the paper; TRL num_iterations)"},
    PRESET_REWARD,
    {0}};

static const PpoPresetValue reinforce_values[] = {
    {.key = "advantage", .value = "reinforce++",
     .why = "token returns (gamma 1) whitened over the global batch, no value model"},
    {.key = "group_size", .value = "1", .why = "one response per prompt: the batch whitening is the baseline"},
    {.key = "kl_in", .value = "reward",
     .why = "per-token KL penalty in the reward (the paper; OpenRLHF; verl use_kl_in_reward)"},
    {.key = "kl_estimator", .value = "k1", .why = "OpenRLHF kl_estimator k1, verl kl_penalty kl"},
    {.key = "kl_coef", .value = "0.01", .why = "OpenRLHF init_kl_coef (verl kl_coef 0.001)"},
    {.key = "kl_target", .value = "0", .why = "a fixed coefficient (OpenRLHF kl_target unset, verl kl_ctrl fixed)"},
    {.key = "loss_agg", .value = "token-mean", .why = "OpenRLHF and verl"},
    {.key = "clip", .value = "0.2", .why = "PPO's clip kept (OpenRLHF eps_clip, verl clip_ratio)"},
    {.key = "ppo_epochs", .value = "1", .why = "OpenRLHF max_epochs, verl ppo_epochs"},
    PRESET_REWARD,
    {0}};

static const PpoPreset grpo_preset = {
    .algorithm = "GRPO (Shao et al. 2024, DeepSeekMath): group-relative advantages, KL in the loss",
    .values = grpo_values,
};
static const PpoPreset rloo_preset = {
    .algorithm = "RLOO (Ahmadian et al. 2024, \"Back to Basics\"): REINFORCE with a leave-one-out baseline, "
                 "KL in the reward",
    .values = rloo_values,
};
static const PpoPreset reinforce_preset = {
    .algorithm = "REINFORCE++ (Hu 2025): REINFORCE with PPO's clip, per-token KL in the reward and "
                 "batch-whitened returns",
    .values = reinforce_values,
};

/* The row's preset values, over its keys' defaults. */
static int preset_apply(Config *cfg, const Command *c) {
    char origin[64];
    snprintf(origin, sizeof origin, "preset %s", c->name);
    for (const PpoPresetValue *v = c->preset->values; v->key; v++)
        if (config_set(cfg, v->key, v->value, origin)) return -1;
    return 0;
}

/* The preset's value of key, or NULL. */
static const char *preset_value(const PpoPreset *p, const char *key) {
    for (const PpoPresetValue *v = p->values; v->key; v++)
        if (!strcmp(v->key, key)) return v->value;
    return NULL;
}

/* A copy of a key table with the preset's values as its defaults: what the
 * preset's --help lists. free() it. */
static CfgKey *preset_keys(const PpoPreset *p, const CfgKey *table) {
    int n = 0;
    while (table[n].key) n++;
    CfgKey *keys = err_calloc((size_t)n + 1, sizeof *keys);
    memcpy(keys, table, (size_t)n * sizeof *keys);
    for (int i = 0; i < n; i++) {
        const char *v = preset_value(p, keys[i].key);
        if (v) keys[i].def = v;
    }
    return keys;
}

/* The preset's values as config-file lines, each with where it comes from. */
static void preset_help(const PpoPreset *p) {
    int width = 0;
    for (const PpoPresetValue *v = p->values; v->key; v++) {
        int len = (int)(strlen(v->key) + 3 + strlen(v->value));
        if (len > width) width = len;
    }
    printf("%s.\nThe job and keys of rlhf ppo, with these values instead of ppo's defaults\n"
           "(--config FILE and key=value override each of them):\n\n", p->algorithm);
    for (const PpoPresetValue *v = p->values; v->key; v++) {
        char line[128];
        snprintf(line, sizeof line, "%s = %s", v->key, v->value);
        printf("  %-*s  # %s\n", width, line, v->why);
    }
    printf("\n");
}

/* ---- ppo -------------------------------------------------------------------- */

/* --help of ppo and of its presets: the preset's values, then every key of
 * the job's tables with the default this subcommand gives it. */
static void ppo_help(const Command *c, const CfgKey *const *tables, int n_tables) {
    printf("usage: mpirun -n N rlhf %s [--config FILE] [key=value ...]\n\n", c->name);
    if (c->preset) preset_help(c->preset);
    printf("%s: learner ranks first (learners), then rewarders\n"
           "(rewarders), the rest actors; --role learner|rewarder|actor overrides for MPMD launches.\n\n"
           "configuration keys:\n", c->preset ? "Ranks as for ppo" : "Distributed PPO (InstructGPT step 3)");
    CfgKey **copies = err_calloc((size_t)n_tables, sizeof *copies);
    const CfgKey **shown = err_calloc((size_t)n_tables, sizeof *shown);
    for (int i = 0; i < n_tables; i++)
        shown[i] = c->preset ? (copies[i] = preset_keys(c->preset, tables[i])) : tables[i];
    config_help(shown, n_tables, stdout);
    for (int i = 0; i < n_tables; i++) free(copies[i]);
    free(copies);
    free(shown);
}

static int cmd_ppo(const Invocation *in) {
    int argc = in->argc;
    char **argv = in->argv;
    Dp dp;
    dp_init(&dp, &argc, &argv);
    const CfgKey *const *tables = in->cmd->tables;
    Config *cfg = config_new(tables, in->cmd->n_tables);
    int help = 0;
    if (!cfg) err_die_last();
    if (in->cmd->preset) dp_check(&dp, preset_apply(cfg, in->cmd), "ppo: ");
    dp_check(&dp, config_parse_args(cfg, argc, argv, &help), "ppo: ");
    if (help) {
        if (dp.rank == 0) ppo_help(in->cmd, tables, in->cmd->n_tables);
        dp_finalize(&dp);
        return 0;
    }
    dp_check(&dp, config_check_required(cfg), "ppo: ");
    dp_check(&dp, ppo_config_check(cfg), "ppo: ");
    const char *text_keys[] = {"prompts", "ptx_data"};
    const char *text[] = {config_str(cfg, "prompts"), config_str(cfg, "ptx_data")};
    dp_check(&dp, fs_check_shared_inputs(text, text_keys, 2, dp.world), "ppo: ");
    PpoLayout lay;
    dp_check(&dp, ppo_layout(&lay, cfg), "ppo: ");
    if (dp.rank == 0) {
        fprintf(stderr, "ppo: %d ranks: %d learner(s), %d rewarder(s), %d actor(s); %d OpenBLAS thread(s) per rank; "
                "configuration:\n", lay.world, lay.n_learners, lay.n_rewarders, lay.n_actors, dp.blas_threads);
        ppo_layout_print(&lay, stderr);
        config_print(cfg, stderr);
    }
    int rc = lay.role == PPO_LEARNER ? ppo_learner_run(cfg, &lay, &stop_signal)
             : lay.role == PPO_REWARDER ? rewarder_run(cfg, &lay) : actor_run(cfg, &lay);
    dp_barrier(&dp);
    MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    ppo_layout_free(&lay);
    config_free(cfg);
    dp_finalize(&dp);
    return rc;
}

/* ---- plot ------------------------------------------------------------------- */

static struct {
    const char *out, *gnuplot;
    int width, height;
} plot_args = {.gnuplot = "gnuplot", .width = 800, .height = 500};

static const Opt plot_opts[] = {
    {.name = "out", .type = OPT_STR, .dest = &plot_args.out, .metavar = "DIR",
     .help = "output directory, created if missing (default: RUN_DIR/plots)"},
    {.name = "gnuplot", .type = OPT_STR, .dest = &plot_args.gnuplot, .metavar = "PROG",
     .help = "gnuplot program to run"},
    {.name = "width", .type = OPT_INT, .dest = &plot_args.width, .metavar = "PX",
     .help = "PNG width in pixels", .range = ">= 1"},
    {.name = "height", .type = OPT_INT, .dest = &plot_args.height, .metavar = "PX",
     .help = "PNG height in pixels", .range = ">= 1"},
    {0}};

static const OptSpec plot_spec = {
    .command = "plot",
    .usage = "rlhf plot RUN_DIR [--out DIR] [options]",
    .summary = "PNG plots of a pipeline run (gnuplot): PPO reward, r_theta, KL and lambda, gold score,\n"
               "entropy, length and time per iteration; loss of each supervised stage; RM and DPO\n"
               "accuracy; DPO implicit rewards; gold score against KL (over-optimisation).",
    .details = "RUN_DIR holds pretrain/, sft/, rm/, dpo/ and ppo/ as `make demo` writes them (missing\n"
               "stages are skipped with a note), or is a PPO out_dir on its own. Logs may still be\n"
               "written to. DIR gets NAME.dat (one table per log, NAME_avg = trailing means), NAME.gp\n"
               "(redraw with `gnuplot NAME.gp` inside DIR) and NAME.png; every file written is listed\n"
               "on stdout. Needs gnuplot (Debian package gnuplot-nox).",
    .opts = plot_opts,
    .min_pos = 1,
    .max_pos = 1,
};

static int cmd_plot(const Invocation *in) {
    PlotOptions po = {
        .run_dir = in->argv[0],
        .out_dir = plot_args.out,
        .gnuplot = plot_args.gnuplot,
        .width = plot_args.width,
        .height = plot_args.height,
    };
    if (plot_run(&po, stdout, stderr) < 0) {
        fflush(stdout); /* the files listed so far, before the error */
        err_die_last();
    }
    return 0;
}

/* ---- gridworld -------------------------------------------------------------- */

/* Rates are floats on the command line (opts.h), doubles in the config. */
static struct {
    GridworldConfig cfg; /* the integer settings; the rest from the floats below */
    const char *map;
    float slip, lr, value_lr, clip, value_clip, ent_coef, min_success; /* gamma, lambda: doubles in cfg */
    int seed, eval_episodes, log_every;
} gw_args;

static void gridworld_defaults(void) {
    GridworldConfig c = gridworld_config_default();
    gw_args.cfg = c;
    gw_args.map = gridworld_default_map;
    gw_args.slip = (float)c.slip;
    gw_args.lr = (float)c.lr;
    gw_args.value_lr = (float)c.value_lr;
    gw_args.clip = (float)c.clip;
    gw_args.value_clip = (float)c.value_clip;
    gw_args.ent_coef = (float)c.ent_coef;
    gw_args.min_success = 0.95f;
    gw_args.seed = (int)c.seed;
    gw_args.eval_episodes = 5000;
    gw_args.log_every = 10;
}

static const Opt gridworld_opts[] = {
    {.name = "map", .type = OPT_STR, .dest = &gw_args.map, .metavar = "ROWS",
     .help = "grid rows top to bottom, '/' between rows: . C B T M"},
    {.name = "slip", .type = OPT_FLOAT, .dest = &gw_args.slip, .metavar = "P",
     .help = "probability that a move goes in a random other direction", .range = "[0, 1]"},
    {.name = "gamma", .type = OPT_DOUBLE, .dest = &gw_args.cfg.gamma, .metavar = "G",
     .help = "discount factor", .range = "(0, 1]"},
    {.name = "lambda", .type = OPT_DOUBLE, .dest = &gw_args.cfg.lambda, .metavar = "L", .help = "GAE lambda",
     .range = "[0, 1]"},
    {.name = "max-steps", .type = OPT_INT, .dest = &gw_args.cfg.max_steps, .metavar = "N",
     .help = "steps per episode before it is cut off", .range = ">= 1"},
    {.name = "iterations", .type = OPT_INT, .dest = &gw_args.cfg.iterations, .metavar = "N",
     .help = "PPO iterations (collect, then update)", .range = ">= 0"},
    {.name = "episodes", .type = OPT_INT, .dest = &gw_args.cfg.episodes, .metavar = "N",
     .help = "episodes collected per iteration", .range = ">= 1"},
    {.name = "epochs", .type = OPT_INT, .dest = &gw_args.cfg.epochs, .metavar = "K",
     .help = "PPO epochs over each iteration's steps", .range = ">= 1"},
    {.name = "minibatch", .type = OPT_INT, .dest = &gw_args.cfg.minibatch, .metavar = "M",
     .help = "steps per gradient step", .range = ">= 1"},
    {.name = "lr", .type = OPT_FLOAT, .dest = &gw_args.lr, .metavar = "LR",
     .help = "Adam learning rate of the policy logits", .range = "> 0"},
    {.name = "value-lr", .type = OPT_FLOAT, .dest = &gw_args.value_lr, .metavar = "LR",
     .help = "Adam learning rate of the value table", .range = "> 0"},
    {.name = "clip", .type = OPT_FLOAT, .dest = &gw_args.clip, .metavar = "EPS",
     .help = "policy ratio clip range", .range = ">= 0"},
    {.name = "value-clip", .type = OPT_FLOAT, .dest = &gw_args.value_clip, .metavar = "C",
     .help = "value clip range in reward units (0 = off)", .range = ">= 0"},
    {.name = "ent-coef", .type = OPT_FLOAT, .dest = &gw_args.ent_coef, .metavar = "C2",
     .help = "entropy bonus coefficient", .range = ">= 0"},
    {.name = "seed", .type = OPT_INT, .dest = &gw_args.seed, .metavar = "S",
     .help = "random seed (same seed, same run)", .range = "any"},
    {.name = "eval-episodes", .type = OPT_INT, .dest = &gw_args.eval_episodes, .metavar = "N",
     .help = "episodes of the final evaluation", .range = ">= 1"},
    {.name = "min-success", .type = OPT_FLOAT, .dest = &gw_args.min_success, .metavar = "F",
     .help = "success rate the verdict asks for", .range = "[0, 1]"},
    {.name = "log-every", .type = OPT_INT, .dest = &gw_args.log_every, .metavar = "N",
     .help = "print progress every N iterations (0 = never)", .range = ">= 0"},
    {0}};

static const OptSpec gridworld_spec = {
    .command = "gridworld",
    .usage = "rlhf gridworld [options]",
    .summary = "Train the tutorial's drunk cat with the PPO code of the language model (GAE, whitening,\n"
               "clipped policy and value losses, entropy bonus) on tabular softmax policy and values.",
    .details = "The default map (C start, B broom -1, T bathtub -10 and the episode ends,\n"
               "M meat +100 and the episode ends, . empty 0; a move off the grid stays put):\n\n"
               "      C . T . M      straight line: 4 steps, through the bathtub\n"
               "      . B . B .      shortcut: 6 steps over two brooms, beside the bathtub\n"
               "      . . . . .      shortest safe path: 8 steps along this row\n"
               "      . . . . .\n\n"
               "With probability --slip the cat moves in one of the other three directions.\n"
               "With gamma 0.99 the safe path is the best policy (value iteration agrees);\n"
               "with gamma 0.95 two extra steps cost more than the brooms and the cat takes\n"
               "the shortcut. At the end: the greedy policy, its path without slips against\n"
               "the shortest safe path (BFS avoiding bathtubs and brooms), its success rate\n"
               "with slips next to the value-iteration optimum, and a verdict line\n"
               "(PASS/FAIL). The exit status is 0 whenever the run completes.",
    .opts = gridworld_opts,
};

static int cmd_gridworld(const Invocation *in) {
    (void)in;
    GridworldConfig c = gw_args.cfg;
    c.slip = gw_args.slip;
    c.lr = gw_args.lr;
    c.value_lr = gw_args.value_lr;
    c.clip = gw_args.clip;
    c.value_clip = gw_args.value_clip;
    c.ent_coef = gw_args.ent_coef;
    c.seed = (uint64_t)(int64_t)gw_args.seed;
    GridworldRunOptions o = {
        .map = gw_args.map,
        .eval_episodes = gw_args.eval_episodes,
        .min_success = gw_args.min_success,
        .log_every = gw_args.log_every,
    };
    if (gridworld_run(&c, &o)) err_die_last();
    return 0;
}

/* ---- eval / score ----------------------------------------------------------- */

static struct {
    const char *policy, *prompts, *ref, *rm, *samples, *pass_k, *verifier;
    int n, max_new, greedy, top_k, seed, batch, json, samples_per_prompt;
    float temperature, top_p, verifier_timeout;
} eval_args = {.max_new = 32, .seed = 1, .batch = 16, .temperature = 1.0f, .top_p = 1.0f, .verifier_timeout = 30};

static const Opt eval_opts[] = {
    {.name = "policy", .type = OPT_STR, .dest = &eval_args.policy, .metavar = "CKPT",
     .help = "policy checkpoint (required)"},
    {.name = "prompts", .type = OPT_STR, .dest = &eval_args.prompts, .metavar = "FILE.jsonl",
     .help = "prompts, {\"prompt\": ...} per line (required)"},
    {.name = "ref", .type = OPT_STR, .dest = &eval_args.ref, .metavar = "CKPT",
     .help = "reference model: report KL(policy || ref) per response"},
    {.name = "rm", .type = OPT_STR, .dest = &eval_args.rm, .metavar = "CKPT",
     .help = "reward model: report its normalised score"},
    {.name = "n", .type = OPT_INT, .dest = &eval_args.n, .metavar = "N",
     .help = "evaluate the first N prompts (0: all)", .range = ">= 0"},
    {.name = "max-new", .type = OPT_INT, .dest = &eval_args.max_new, .metavar = "N",
     .help = "new tokens at most per response", .range = ">= 1"},
    {.name = "greedy", .type = OPT_FLAG, .dest = &eval_args.greedy,
     .help = "greedy decoding (default: sample at --temperature)"},
    {.name = "temperature", .type = OPT_FLOAT, .dest = &eval_args.temperature, .metavar = "T",
     .help = "sampling temperature", .range = "> 0"},
    {.name = "top-k", .type = OPT_INT, .dest = &eval_args.top_k, .metavar = "K",
     .help = "top-k sampling (0 = off)", .range = ">= 0"},
    {.name = "top-p", .type = OPT_FLOAT, .dest = &eval_args.top_p, .metavar = "P",
     .help = "nucleus sampling (1 = off)", .range = "(0, 1]"},
    {.name = "seed", .type = OPT_INT, .dest = &eval_args.seed, .metavar = "S", .help = "random seed", .range = "any"},
    {.name = "batch", .type = OPT_INT, .dest = &eval_args.batch, .metavar = "B",
     .help = "prompts generated together", .range = ">= 1"},
    {.name = "samples", .type = OPT_STR, .dest = &eval_args.samples, .metavar = "FILE.jsonl",
     .help = "write every response with its scores"},
    {.name = "json", .type = OPT_FLAG, .dest = &eval_args.json, .help = "print the report as JSON"},
    {.name = "samples-per-prompt", .type = OPT_INT, .dest = &eval_args.samples_per_prompt, .metavar = "N",
     .help = "responses sampled for each prompt (default 1, or the largest --pass-k)", .range = ">= 1"},
    {.name = "pass-k", .type = OPT_STR, .dest = &eval_args.pass_k, .metavar = "K[,K...]",
     .help = "report pass@k for each K (unbiased estimator; K <= --samples-per-prompt)"},
    {.name = "verifier", .type = OPT_STR, .dest = &eval_args.verifier, .metavar = "SPEC",
     .help = "judge samples with gold | answer | format | cmd:PROGRAM ARGS (default: the gold judge's "
             "correctness)"},
    {.name = "verifier-timeout", .type = OPT_FLOAT, .dest = &eval_args.verifier_timeout, .metavar = "S",
     .help = "cmd: verifier, seconds per answer", .range = "> 0"},
    {0}};

static const OptSpec eval_spec = {
    .command = "eval",
    .usage = "rlhf eval --policy CKPT --prompts FILE [--ref CKPT] [--rm CKPT] [options]",
    .summary = "Sample responses and report gold score (built-in task), RM score, KL to a reference\n"
               "and length, each as mean +- standard error.",
    .details = "KL is the sum over a response's tokens of log pi(y_t) - log ref(y_t) under the unmodified\n"
               "policy; it estimates KL(pi || ref) when sampling at temperature 1 without top-k/top-p.\n"
               "Gold scores need the built-in task's prompts; other prompts are counted and skipped.\n"
               "pass@k: each prompt is sampled --samples-per-prompt n times; with c of them passing,\n"
               "pass@k = 1 - C(n-c,k)/C(n,k) (Chen et al. 2021, unbiased for k <= n), averaged over\n"
               "prompts. A sample passes when the judge calls it correct: the built-in task's gold\n"
               "judge, or --verifier (the RL job's verifiers, same rules; answer reads each prompt's\n"
               "\"answer\"; a verifier without a correctness component, format or cmd:, passes a score\n"
               "> 0). Use n >= 2k or more: the estimate's variance falls with n.",
    .opts = eval_opts,
};

/* The --ref or --rm model of eval, checked against the policy; NULL if not
 * given. */
static Gpt *load_optional(const char *path, GptHead head, const char *what, const Gpt *policy, const Tok *tok) {
    if (!path) return NULL;
    Gpt *m = err_calloc(1, sizeof *m);
    /* the reference scores every token of a response: it needs the policy's context */
    CkptWant want = {.head = head, .what = what, .vocab = policy->cfg.vocab_size,
                     .min_ctx = head == GPT_HEAD_LM ? policy->cfg.n_ctx : 0, .tok = tok, .like = "the policy"};
    if (ckpt_load_model_as(path, m, NULL, &want)) err_die_last();
    return m;
}

static void print_stat(const char *name, const EvalStat *s, const char *unit, int as_json, int *first) {
    if (!s->n) return;
    if (as_json) printf("%s\"%s\": {\"mean\": %.6g, \"se\": %.6g, \"n\": %ld}", *first ? "" : ", ", name,
                        eval_mean(s), s->n > 1 ? eval_se(s) : 0.0, s->n);
    else printf("  %-12s %9.4f +- %.4f%s\n", name, eval_mean(s), s->n > 1 ? eval_se(s) : 0.0, unit);
    *first = 0;
}

static void print_report(const EvalReport *r, const int *pass_k, int n_pass_k, int as_json) {
    int first = 1;
    if (as_json) printf("{");
    print_stat("gold", &r->gold, "", as_json, &first);
    print_stat("correct", &r->correct, "", as_json, &first);
    print_stat("offensive", &r->offensive, "", as_json, &first);
    print_stat("rm", &r->rm, "  (normalised)", as_json, &first);
    print_stat("kl", &r->kl, " nats", as_json, &first);
    print_stat("length", &r->length, " tokens", as_json, &first);
    print_stat("verifier", &r->verifier, "", as_json, &first);
    for (int i = 0; i < n_pass_k; i++) {
        char name[32];
        snprintf(name, sizeof name, "pass@%d", pass_k[i]);
        print_stat(name, &r->pass[i], "  (over prompts)", as_json, &first);
    }
    if (as_json) printf("}\n");
}

/* --pass-k "1,4,16" into k[0..*n); exits with a message on a bad list. */
static void parse_pass_k(const char *text, int *k, int *n) {
    *n = 0;
    for (const char *p = text;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 1000000 || (*end && *end != ','))
            err_die("eval: --pass-k: '%s' is not a list of integers >= 1 (e.g. 1,4,16)", text);
        if (*n == EVAL_MAX_PASS_K) err_die("eval: --pass-k: at most %d values", EVAL_MAX_PASS_K);
        k[(*n)++] = (int)v;
        if (!*end) return;
        p = end + 1;
    }
}

/* --samples-per-prompt: as given, else the largest --pass-k (1 without). */
static int eval_samples_per_prompt(const int *k, int n) {
    int most = 1;
    for (int i = 0; i < n; i++) most = k[i] > most ? k[i] : most;
    int s = eval_args.samples_per_prompt ? eval_args.samples_per_prompt : most;
    if (most > s) err_die("eval: --pass-k %d needs --samples-per-prompt >= %d (it is %d)", most, most, s);
    return s;
}

/* The --verifier of eval, started (a cmd: program) or NULL. */
static Verifier *eval_verifier(void) {
    if (!eval_args.verifier) return NULL;
    VerifierOptions o;
    verifier_defaults(&o);
    o.spec = eval_args.verifier;
    o.timeout = eval_args.verifier_timeout;
    if (verifier_check_spec(o.spec)) err_die("eval: --%s", err_msg());
    Verifier *v = verifier_new(&o);
    if (!v) err_die("eval: --%s", err_msg());
    return v;
}

static void free_optional(Gpt *m) {
    if (!m) return;
    gpt_free(m);
    free(m);
}

static int cmd_eval(const Invocation *in) {
    (void)in;
    const char *policy = eval_args.policy, *prompts = eval_args.prompts, *rm = eval_args.rm;
    const char *samples = eval_args.samples;
    if (!policy || !prompts) err_die("eval: --policy and --prompts are required");
    if (eval_args.batch < 1 || eval_args.max_new < 1) err_die("eval: --batch and --max-new must be >= 1");
    const char *inputs[] = {policy, prompts, eval_args.ref, rm};
    if (samples && (fs_check_target(samples) || fs_check_not_input(samples, inputs, 4))) err_die_last();
    Gpt m;
    Tok *tok = load_as_or_die(policy, &m, &(CkptWant){.head = GPT_HEAD_LM, .what = "eval --policy"});
    gpt_pack_decode(&m); /* once for every batch */
    EvalSetup es = {
        .policy = &m,
        .tok = tok,
        .ref = load_optional(eval_args.ref, GPT_HEAD_LM, "eval --ref", &m, tok),
        .rm = load_optional(rm, GPT_HEAD_SCALAR, "eval --rm", &m, tok),
        .rm_offset = 0,
        .rm_scale = 1,
        .gen = {.max_new = eval_args.max_new,
                .eot = tok_eot(tok),
                .sampler = {.greedy = eval_args.greedy,
                            .temperature = eval_args.temperature,
                            .top_k = eval_args.top_k,
                            .top_p = eval_args.top_p}},
        .seed = (uint64_t)eval_args.seed,
        .batch = eval_args.batch,
        .source = prompts,
    };
    if (sampler_validate(&es.gen.sampler)) err_die("eval: %s", err_msg());
    if (rm && ckpt_get_rm_norm(rm, &es.rm_offset, &es.rm_scale)) err_die_last();
    int pass_k[EVAL_MAX_PASS_K], n_pass_k = 0;
    if (eval_args.pass_k) parse_pass_k(eval_args.pass_k, pass_k, &n_pass_k);
    es.samples_per_prompt = eval_samples_per_prompt(pass_k, n_pass_k);
    es.pass_k = pass_k;
    es.n_pass_k = n_pass_k;
    JsonlPrompts pl = {0};
    if (jsonl_read_prompts(prompts, &pl)) err_die_last();
    es.lines = pl.line;
    es.answers = pl.answer;
    es.verifier = eval_verifier();
    int count = eval_args.n > 0 && eval_args.n < pl.n ? eval_args.n : pl.n;
    /* --samples is written to a temporary and renamed into place at the end
     * (fs_commit), so a failed run leaves an older file as it was */
    char *samples_tmp = samples ? fs_tmp_name(samples) : NULL;
    if (samples && !(es.samples = fopen(samples_tmp, "w"))) err_die("%s: %s", samples_tmp, strerror(errno));
    EvalReport r;
    if (eval_run(&es, pl.text, count, &r)) {
        if (samples_tmp) unlink(samples_tmp);
        err_die("eval: %s", err_msg());
    }
    int bad = es.samples && ferror(es.samples);
    if (es.samples && fclose(es.samples)) bad = 1;
    if (bad) {
        unlink(samples_tmp);
        err_die("%s: write error", samples);
    }
    if (samples && fs_commit(samples_tmp, samples)) err_die_last();
    free(samples_tmp);
    if (!eval_args.json)
        printf("eval: %ld responses (%d prompts x %d) from %s on %s\n", (long)count * es.samples_per_prompt, count,
               es.samples_per_prompt, policy, prompts);
    print_report(&r, pass_k, n_pass_k, eval_args.json);
    verifier_free(es.verifier);
    if (r.foreign_prompts) err_warn("%ld prompts are not the built-in task's: no gold score for them", r.foreign_prompts);
    jsonl_prompts_free(&pl);
    free_optional(es.ref);
    free_optional(es.rm);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

static struct {
    const char *model, *data;
    int raw;
} score_args;

static const Opt score_opts[] = {
    {.name = "model", .type = OPT_STR, .dest = &score_args.model, .metavar = "CKPT",
     .help = "reward model checkpoint (required)"},
    {.name = "data", .type = OPT_STR, .dest = &score_args.data, .metavar = "FILE.jsonl",
     .help = "records to score (required)"},
    {.name = "raw", .type = OPT_FLAG, .dest = &score_args.raw,
     .help = "raw head outputs (default: normalised by the stored offset/scale)"},
    {0}};

static const OptSpec score_spec = {
    .command = "score",
    .usage = "rlhf score --model RM --data FILE.jsonl [--raw]",
    .summary = "Score JSONL with a reward model; prints one JSON line per record and a summary.",
    .details = "Records: {\"prompt\",\"completion\"} -> score; {\"prompt\",\"chosen\",\"rejected\"} -> both\n"
               "scores (summary: pairwise accuracy); {\"prompt\",\"ranking\":[...]} -> scores in order.",
    .opts = score_opts,
};

static int cmd_score(const Invocation *in) {
    (void)in;
    const char *model = score_args.model, *data = score_args.data;
    int raw = score_args.raw;
    if (!model || !data) err_die("score: --model and --data are required");
    Gpt m;
    Tok *tok = load_as_or_die(model, &m, &(CkptWant){.head = GPT_HEAD_SCALAR, .what = "score --model"});
    EvalScorer sc = {.rm = &m, .tok = tok, .conv = {.eot = tok_eot(tok), .offset = 0, .scale = 1, .clip = 0}};
    if (!raw && ckpt_get_rm_norm(model, &sc.conv.offset, &sc.conv.scale)) err_die_last();
    Jsonl *j = jsonl_open(data);
    if (!j) err_die_last();
    json_t *rec;
    EvalTally tally = {0};
    int rc;
    while ((rc = jsonl_next(j, &rec)) == 1) {
        double scores[EVAL_MAX_RESPONSES];
        int k;
        if (eval_score_record(&sc, j, rec, scores, &k, &tally)) err_die_last();
        json_t *arr = json_array();
        for (int i = 0; i < k; i++) /* JSON has no NaN or Inf: null */
            json_array_append_new(arr, isfinite(scores[i]) ? json_real(scores[i]) : json_null());
        char *line = json_dumps(arr, JSON_COMPACT);
        printf("{\"line\": %d, \"scores\": %s}\n", jsonl_line(j), line);
        free(line);
        json_decref(arr);
    }
    if (rc < 0) err_die_last();
    if (!tally.records) err_die("%s: no records", data);
    jsonl_close(j);
    if (tally.pairs)
        fprintf(stderr, "score: %d records, pairwise accuracy %.4f (%d of %d comparisons)\n", tally.records,
                (double)tally.right / tally.pairs, tally.right, tally.pairs);
    else fprintf(stderr, "score: %d records\n", tally.records);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

/* ---- the table ------------------------------------------------------------------ */

static int cmd_config_reference(const Invocation *in);
static int cmd_plan(const Invocation *in);

/* No options, but a table all the same: --help works and a stray argument
 * or option gets the usual message. */
static const Opt config_ref_opts[] = {{0}};

static const OptSpec config_ref_spec = {
    .command = "config-reference",
    .usage = "rlhf config-reference",
    .summary = "Print the configuration reference (Markdown tables of every stage's keys, with defaults\n"
               "and ranges); the README's reference is this output.",
    .opts = config_ref_opts,
};

/* plan reads the RL job's keys (the same config file) and its own. */
static const CfgKey *const plan_tables[PPO_CONFIG_TABLES + 1] = {ppo_keys, verifier_keys, plan_keys};

static const Command commands[] = {
    {.name = "data", .summary = "write the built-in task's datasets (rlhf data arith)",
     .opts = &data_spec, .run = cmd_data},
    {.name = "init", .summary = "create a model with random weights", .opts = &init_spec, .run = cmd_init},
    {.name = "pretrain", .summary = "next-token pretraining on text (MPI data-parallel)",
     .stage = &lm_pretrain_stage, .stops = 1, .run = cmd_trainer},
    {.name = "sft", .summary = "supervised fine-tuning on demonstrations (MPI data-parallel)",
     .stage = &lm_sft_stage, .stops = 1, .run = cmd_trainer},
    {.name = "rm", .summary = "reward model on preferences and rankings (MPI data-parallel)",
     .stage = &rm_stage, .stops = 1, .run = cmd_trainer},
    {.name = "dpo", .summary = "direct preference optimisation: DPO, IPO, cDPO (MPI data-parallel)",
     .stage = &dpo_stage, .stops = 1, .run = cmd_trainer},
    {.name = "generate", .summary = "complete prompts (greedy, temperature, top-k, top-p)",
     .opts = &gen_spec, .run = cmd_generate},
    {.name = "nll", .summary = "negative log-likelihood and perplexity of a text", .opts = &nll_spec,
     .run = cmd_nll},
    {.name = "ppo", .summary = "distributed PPO: learner, rewarder and actor ranks over MPI", .tables = ppo_config_tables,
     .n_tables = PPO_CONFIG_TABLES,
     .stops = 1, .run = cmd_ppo},
    {.name = "grpo", .summary = "the ppo job with GRPO's defaults (DeepSeekMath): group baseline, KL in the loss",
     .tables = ppo_config_tables, .n_tables = PPO_CONFIG_TABLES, .preset = &grpo_preset, .stops = 1, .run = cmd_ppo},
    {.name = "rloo", .summary = "the ppo job with RLOO's defaults: leave-one-out baseline, KL in the reward",
     .tables = ppo_config_tables, .n_tables = PPO_CONFIG_TABLES, .preset = &rloo_preset, .stops = 1, .run = cmd_ppo},
    {.name = "reinforce",
     .summary = "the ppo job with REINFORCE++'s defaults: batch-whitened returns, KL in the reward",
     .tables = ppo_config_tables, .n_tables = PPO_CONFIG_TABLES, .preset = &reinforce_preset, .stops = 1, .run = cmd_ppo},
    {.name = "plan", .summary = "capacity model of the RL job: time per iteration and role use for N actors",
     .tables = plan_tables, .n_tables = PPO_CONFIG_TABLES + 1, .run = cmd_plan},
    {.name = "plot", .summary = "PNG plots of a pipeline run (gnuplot)", .opts = &plot_spec, .run = cmd_plot},
    {.name = "gridworld", .summary = "the tutorial's drunk cat trained with the PPO code (multi-step GAE check)",
     .opts = &gridworld_spec, .set_defaults = gridworld_defaults, .run = cmd_gridworld},
    {.name = "eval", .summary = "gold score, RM score, KL to a reference and length of a policy's samples",
     .opts = &eval_spec, .run = cmd_eval},
    {.name = "score", .summary = "score JSONL with a reward model", .opts = &score_spec, .run = cmd_score},
    {.name = "config-reference", .summary = "print the configuration reference (Markdown) of every stage",
     .opts = &config_ref_spec, .run = cmd_config_reference},
    {.name = "import-hf", .summary = "import a Hugging Face GPT-2 directory", .opts = &import_spec,
     .run = cmd_import_hf},
    {.name = "export-hf", .summary = "export a checkpoint as a Hugging Face GPT-2 directory",
     .opts = &export_spec, .run = cmd_export_hf},
    {.name = "inspect", .summary = "summarise a checkpoint, a rollout log or a metrics log",
     .opts = &inspect_spec, .run = cmd_inspect},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

/* ---- configuration reference ------------------------------------------------- */

/* One Markdown row of the presets' table: the key, then each preset's value
 * (ppo's default where a preset leaves the key alone). */
static void preset_row(const CfgKey *k) {
    printf("| `%s` |", k->key);
    for (int i = 0; i < N_COMMANDS; i++) {
        if (!commands[i].preset) continue;
        const char *v = preset_value(commands[i].preset, k->key);
        printf(" `%s` |", v ? v : k->def);
    }
    printf("\n");
}

/* The presets of ppo share its keys: one table of the values they set. */
static void preset_markdown(void) {
    const Command *any = NULL;
    printf("\n#### Presets of ppo:");
    for (int i = 0; i < N_COMMANDS; i++)
        if (commands[i].preset) {
            printf(" %s", commands[i].name);
            any = &commands[i];
        }
    printf("\n\nThe keys of ppo; these values replace its defaults (`rlhf SUBCOMMAND --help` says why).\n\n| Key |");
    for (int i = 0; i < N_COMMANDS; i++)
        if (commands[i].preset) printf(" %s |", commands[i].name);
    printf("\n|---|");
    for (int i = 0; i < N_COMMANDS; i++)
        if (commands[i].preset) printf("---|");
    printf("\n");
    for (int t = 0; any && t < any->n_tables; t++)
        for (const CfgKey *k = any->tables[t]; k->key; k++) {
            int set = 0;
            for (int i = 0; i < N_COMMANDS; i++)
                set |= commands[i].preset && preset_value(commands[i].preset, k->key);
            if (set) preset_row(k);
        }
}

/* Markdown tables of every stage's keys, from the tables --help prints; the
 * README's reference is this output (tests/cli/docs.sh checks they agree).
 * The presets of ppo get one table of their values, not copies of its keys. */
static int cmd_config_reference(const Invocation *in) {
    (void)in; /* opts_parse refused any argument */
    printf("#### Keys of every trainer (pretrain, sft, rm, dpo)\n\n");
    config_markdown((const CfgKey *const[]){trainer_keys}, 1, stdout);
    for (int i = 0; i < N_COMMANDS; i++) {
        const Command *c = &commands[i];
        if ((!c->stage && !c->tables) || c->preset) continue;
        printf("\n#### %s\n\n", c->name);
        if (c->run == cmd_plan) { /* the job's keys are ppo's, listed above */
            printf("Every key of ppo (out_dir is not needed), and these:\n\n");
            config_markdown((const CfgKey *const[]){plan_keys}, 1, stdout);
        } else if (c->stage) config_markdown((const CfgKey *const[]){c->stage->keys}, 1, stdout);
        else config_markdown(c->tables, c->n_tables, stdout);
    }
    preset_markdown();
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f, "usage: rlhf SUBCOMMAND [options]   (rlhf SUBCOMMAND --help for its options)\n\n"
               "RLHF for GPT-2 models in C: OpenBLAS, MPI, HDF5.\n\nsubcommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

static const Command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return &commands[i];
    return NULL;
}

/* ---- plan ------------------------------------------------------------------- */

/* The configuration plan predicts for: preset= picks a preset row of the
 * RL job (its defaults under the file and the command line). */
static Config *plan_config(const Invocation *in, int *help) {
    Config *probe = config_new(in->cmd->tables, in->cmd->n_tables);
    if (!probe || config_parse_args(probe, in->argc, in->argv, help)) err_die("plan: %s", err_msg());
    const Command *row = find_command(config_str(probe, "preset"));
    config_free(probe);
    Config *cfg = config_new(in->cmd->tables, in->cmd->n_tables);
    if (!cfg) err_die_last();
    if (row->preset && preset_apply(cfg, row)) err_die("plan: %s", err_msg());
    if (config_parse_args(cfg, in->argc, in->argv, help)) err_die("plan: %s", err_msg());
    return cfg;
}

static int cmd_plan(const Invocation *in) {
    int help = 0;
    Config *cfg = plan_config(in, &help);
    if (help) {
        printf("usage: rlhf plan [--config F] [key=value ...]\n\n"
               "The RL job's capacity model: from the job's configuration (the same file and keys as\n"
               "rlhf ppo, preset= for grpo/rloo/reinforce) and a short calibration on this machine (or\n"
               "calibration=F measured on a node of the target cluster), the time per iteration split\n"
               "into generate / reward / learn / transfer for each actor count, each role's use, and\n"
               "the actor count from which the learner is the bottleneck. One process, no MPI.\n\n");
        config_help((const CfgKey *const[]){plan_keys}, 1, stdout);
        printf("\nand every key of rlhf ppo (rlhf ppo --help); out_dir is not needed.\n");
        config_free(cfg);
        return 0;
    }
    if (!config_get_raw(cfg, "out_dir") && config_set(cfg, "out_dir", "unused", "plan")) err_die_last();
    if (config_check_required(cfg) || ppo_config_check(cfg)) err_die("plan: %s", err_msg());
    PlanCalibration cal;
    const char *from = config_str(cfg, "calibration"), *save = config_str(cfg, "save_calibration");
    if (from[0]) {
        PlanCalibration want;
        if (plan_shapes(cfg, &want) || plan_calibration_load(&cal, from, &want)) err_die("plan: %s", err_msg());
    } else {
        fprintf(stderr, "plan: calibrating on this machine (%d OpenBLAS thread(s))...\n", config_int(cfg, "threads"));
        if (plan_calibrate(cfg, &cal)) err_die("plan: %s", err_msg());
    }
    if (config_float(cfg, "bandwidth") > 0) cal.bandwidth = config_float(cfg, "bandwidth") * 1e9;
    const char *inputs[] = {from, config_str(cfg, "policy"), config_str(cfg, "prompts"), config_str(cfg, "reward_model"),
                            config_str(cfg, "ref"), config_str(cfg, "value_init")};
    if (save[0] && (fs_check_not_input(save, inputs, 6) || plan_calibration_save(&cal, save))) err_die("plan: %s", err_msg());
    if (plan_report(&cal, cfg, config_str(cfg, "actors"), config_int(cfg, "cores"), config_bool(cfg, "json"), stdout))
        err_die("plan: %s", err_msg());
    config_free(cfg);
    return 0;
}

/* Parses the row's options (exits 0 after --help, dies on a bad option),
 * installs the signal handlers and runs it. */
static int run_command(const Command *c, int argc, char **argv) {
    char *pos[4];
    Invocation in = {.cmd = c, .argc = argc, .argv = argv};
    if (c->set_defaults) c->set_defaults();
    if (c->opts) {
        int rc = opts_parse(c->opts, argc, argv, pos, &in.argc);
        if (rc == 1) exit(0);
        if (rc) err_die_last();
        in.argv = pos;
    }
    install_signals(c);
    return c->run(&in);
}

int main(int argc, char **argv) {
    err_stdout_at_exit(); /* every subcommand: output that did not reach stdout is an error */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("rlhf %s\n", RLHF_VERSION);
        return 0;
    }
    const Command *c = find_command(argv[1]);
    if (!c) err_die("unknown subcommand '%s' (rlhf --help lists them)", argv[1]);
    return run_command(c, argc - 2, argv + 2);
}
