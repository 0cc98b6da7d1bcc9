/* rlhf — the command-line front end. Parses the subcommand and hands over
 * to it; the one file that knows every part of the system. Subcommands that
 * train (and the PPO roles) will start MPI; the tools below run on one
 * process. Errors from any module arrive as one line through err.h. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/task/arith.h"
#include "common/io/ckpt.h"
#include "common/err.h"
#include "common/task/evaluate.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/io/hf.h"
#include "common/tools/inspect.h"
#include "common/io/jsonl.h"
#include "common/opts.h"
#include "common/tools/plot.h"
#include "common/model/tok.h"
#include "actor/actor.h"
#include "common/mpi/ppo_config.h"
#include "learner/dp.h"
#include "learner/dpo.h"
#include "learner/gridworld.h"
#include "learner/lm.h"
#include "learner/ppo.h"
#include "learner/rm.h"
#include "rewarder/rewarder.h"

#define RLHF_VERSION "0.1.0"

/* Parses options; exits 0 after --help, dies on a bad option. */
static void parse_or_die(const OptSpec *s, int argc, char **argv, char **pos, int *n_pos) {
    int rc = opts_parse(s, argc, argv, pos, n_pos);
    if (rc == 1) exit(0);
    if (rc) err_die_last();
}

/* Loads a checkpoint's model and tokenizer or dies naming the file. */
static Tok *load_model_or_die(const char *path, Gpt *m, char *kind, size_t kind_len) {
    Tok *tok = NULL;
    if (!path) err_die("--model is required");
    if (ckpt_load_model(path, m, &tok, kind, kind_len)) err_die_last();
    return tok;
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

static int cmd_init(int argc, char **argv) {
    const char *out = NULL, *head = "lm", *hf_tok = NULL;
    int n_layer = 4, n_head = 4, n_embd = 128, n_ctx = 128, seed = 1;
    Opt o[] = {
        {"out", OPT_STR, &out, "CKPT", "checkpoint to write (required)"},
        {"n-layer", OPT_INT, &n_layer, "N", "transformer blocks"},
        {"n-head", OPT_INT, &n_head, "N", "attention heads"},
        {"n-embd", OPT_INT, &n_embd, "N", "model width (multiple of n-head)"},
        {"n-ctx", OPT_INT, &n_ctx, "N", "context length in tokens"},
        {"head", OPT_STR, &head, "lm|scalar", "language-model head or scalar (reward/value) head"},
        {"tokenizer", OPT_STR, &hf_tok, "DIR", "take GPT-2 BPE vocab.json + merges.txt from DIR (default: byte tokenizer)"},
        {"seed", OPT_INT, &seed, "S", "random seed for the weights"},
        {0}};
    OptSpec s = {"init", "rlhf init --out CKPT [options]",
                 "Create a GPT-2 model with fresh random weights (GPT-2 initialisation).",
                 NULL, o, 0, 0};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (!out) err_die("init: --out is required");
    if (strcmp(head, "lm") && strcmp(head, "scalar")) err_die("init: --head must be lm or scalar, got '%s'", head);
    Tok *tok = hf_tok ? NULL : tok_byte_new();
    if (hf_tok) {
        char v[4096], mg[4096];
        snprintf(v, sizeof v, "%s/vocab.json", hf_tok);
        snprintf(mg, sizeof mg, "%s/merges.txt", hf_tok);
        if (!(tok = tok_gpt2_load(v, mg))) err_die_last();
    }
    GptConfig c = {tok_vocab_size(tok), n_ctx, n_layer, n_head, n_embd,
                   strcmp(head, "lm") ? GPT_HEAD_SCALAR : GPT_HEAD_LM};
    Gpt m;
    if (gpt_init(&m, &c)) err_die("init: %s", err_msg());
    gpt_init_random(&m, (uint64_t)seed);
    if (ckpt_save_model(out, &m, tok, c.head == GPT_HEAD_LM ? "policy" : "reward")) err_die_last();
    fprintf(stderr, "rlhf init: %s: %zu parameters (%d layers, %d heads, width %d, context %d, vocab %d)\n",
            out, m.n_params, n_layer, n_head, n_embd, n_ctx, c.vocab_size);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

/* ---- generate ------------------------------------------------------------ */

typedef struct {
    char **text;   /* prompt strings */
    int n, cap;
} PromptList;

static void prompts_add(PromptList *p, const char *s) {
    if (p->n == p->cap) p->cap = p->cap ? 2 * p->cap : 16, p->text = err_realloc(p->text, p->cap * sizeof(char *));
    p->text[p->n++] = err_strdup(s);
}

static void prompts_read_jsonl(PromptList *p, const char *path) {
    Jsonl *j = jsonl_open(path);
    json_t *obj;
    const char *s;
    int rc;
    if (!j) err_die_last();
    while ((rc = jsonl_next(j, &obj)) == 1) {
        if (jsonl_get_str(j, obj, "prompt", &s)) err_die_last();
        prompts_add(p, s);
    }
    if (rc < 0) err_die_last();
    if (!p->n) err_die("%s: no prompts in file", path);
    jsonl_close(j);
}

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
        char *clean = tok_utf8_clean(text, len);
        double lp = 0;
        for (int k = 0; k < r->len[i]; k++) lp += r->logp_model[i][k];
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:f}", "prompt", prompt, "completion", clean,
                              "tokens", r->len[i], "stop", stop_name(r->stop[i]), "logprob", lp);
        char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII * 0);
        puts(line);
        free(line), json_decref(o), free(clean);
    } else {
        if (numbered) printf("--- %d ---\n", index);
        fputs(prompt, stdout);
        fwrite(text, 1, len, stdout);
        putchar('\n');
    }
    free(text);
}

static int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *prompts_file = NULL;
    int max_new = 64, greedy = 0, top_k = 0, seed = 1, as_jsonl = 0, batch = 8;
    float temperature = 1.0f, top_p = 1.0f;
    Opt o[] = {
        {"model", OPT_STR, &model, "CKPT", "policy checkpoint (required)"},
        {"prompt", OPT_STR, &prompt, "TEXT", "one prompt"},
        {"prompts", OPT_STR, &prompts_file, "FILE.jsonl", "prompts, one {\"prompt\": ...} per line"},
        {"max-new", OPT_INT, &max_new, "N", "new tokens at most per prompt"},
        {"greedy", OPT_FLAG, &greedy, NULL, "always take the most likely token"},
        {"temperature", OPT_FLOAT, &temperature, "T", "sampling temperature (> 0)"},
        {"top-k", OPT_INT, &top_k, "K", "sample among the K most likely tokens (0 = all)"},
        {"top-p", OPT_FLOAT, &top_p, "P", "nucleus sampling: smallest set with mass >= P (1 = off)"},
        {"seed", OPT_INT, &seed, "S", "random seed (same seed, same output)"},
        {"batch", OPT_INT, &batch, "B", "prompts generated together"},
        {"jsonl", OPT_FLAG, &as_jsonl, NULL, "print one JSON object per prompt"},
        {0}};
    OptSpec s = {"generate",
                 "rlhf generate --model CKPT (--prompt TEXT | --prompts FILE.jsonl) [options]",
                 "Complete prompts with a KV-cache sampler: greedy, temperature, top-k, top-p.",
                 "Generation stops at the end-of-text token, after --max-new tokens, or when the\n"
                 "context is full. --jsonl prints {\"prompt\", \"completion\", \"tokens\", \"stop\",\n"
                 "\"logprob\"} per prompt; invalid UTF-8 in completions becomes U+FFFD there.",
                 o, 0, 0};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (!prompt == !prompts_file) err_die("generate: give exactly one of --prompt or --prompts");
    if (max_new < 1) err_die("generate: --max-new must be >= 1, got %d", max_new);
    if (batch < 1) err_die("generate: --batch must be >= 1, got %d", batch);
    GenConfig gc = {max_new, 0, {greedy, temperature, top_k, top_p}};
    if (sampler_validate(&gc.sampler)) err_die("generate: %s", err_msg());
    Gpt m;
    Tok *tok = load_as_or_die(model, &m, &(CkptWant){.head = GPT_HEAD_LM, .what = "generate --model"});
    if (batch > 1) gpt_pack_head(&m); /* once for every batch */
    gc.eot = tok_eot(tok);
    PromptList pl = {0};
    if (prompt) prompts_add(&pl, prompt);
    else prompts_read_jsonl(&pl, prompts_file);
    Rng rng;
    rng_seed(&rng, (uint64_t)seed);
    for (int start = 0; start < pl.n; start += batch) {
        int n = pl.n - start < batch ? pl.n - start : batch;
        int **ids = err_calloc(n, sizeof(int *)), *lens = err_calloc(n, sizeof(int));
        for (int i = 0; i < n; i++) {
            const char *t = pl.text[start + i];
            if (!(ids[i] = tok_encode(tok, t, strlen(t), &lens[i]))) err_die_last();
            if (lens[i] == 0) ids[i] = err_realloc(ids[i], sizeof(int)), ids[i][0] = gc.eot, lens[i] = 1;
            if (lens[i] >= m.cfg.n_ctx)
                err_die("%s: prompt %d has %d tokens; the model's context is %d", prompts_file ? prompts_file : "--prompt",
                        start + i + 1, lens[i], m.cfg.n_ctx);
        }
        GenResult r;
        if (gen_run(&m, (const int *const *)ids, lens, n, &gc, &rng, &r)) err_die("generate: %s", err_msg());
        for (int i = 0; i < n; i++) print_completion(tok, &r, i, pl.text[start + i], as_jsonl, pl.n > 1, start + i + 1);
        fflush(stdout);
        gen_result_free(&r);
        for (int i = 0; i < n; i++) free(ids[i]);
        free(ids), free(lens);
    }
    for (int i = 0; i < pl.n; i++) free(pl.text[i]);
    free(pl.text);
    tok_free(tok);
    gpt_free(&m);
    return 0;
}

/* ---- nll ------------------------------------------------------------------ */

static char *read_file_or_die(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) err_die("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = err_malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = err_realloc(buf, cap *= 2);
    }
    if (ferror(f)) err_die("%s: read error", path);
    fclose(f);
    *len = n;
    return buf;
}

/* -sum log p of B consecutive windows of T tokens starting at ids[0]. */
static double nll_block(Gpt *m, const int *ids, int B, int T, int *in, int *tg, float *logp) {
    double total = 0;
    for (int b = 0; b < B; b++) {
        memcpy(in + (size_t)b * T, ids + (size_t)b * T, T * sizeof(int));
        memcpy(tg + (size_t)b * T, ids + (size_t)b * T + 1, T * sizeof(int));
    }
    if (gpt_forward(m, in, B, T)) err_die_last();
    gpt_token_logprobs(m, tg, logp, NULL);
    for (int i = 0; i < B * T; i++) total -= logp[i];
    return total;
}

/* Non-overlapping windows of n_ctx predictions; the remainder last. */
static double nll_windows(Gpt *m, const int *ids, int n, int batch, long *count) {
    int W = m->cfg.n_ctx, full = (n - 1) / W, rest = (n - 1) % W;
    int *in = err_malloc((size_t)batch * W * sizeof(int)), *tg = err_malloc((size_t)batch * W * sizeof(int));
    float *logp = err_malloc((size_t)batch * W * sizeof(float));
    double total = 0;
    for (int w = 0; w < full; w += batch) {
        int B = full - w < batch ? full - w : batch;
        total += nll_block(m, ids + (size_t)w * W, B, W, in, tg, logp);
    }
    if (rest) total += nll_block(m, ids + (size_t)full * W, 1, rest, in, tg, logp);
    *count = n - 1;
    free(in), free(tg), free(logp);
    return total;
}

static int cmd_nll(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    int batch = 4, as_json = 0;
    Opt o[] = {
        {"model", OPT_STR, &model, "CKPT", "language-model checkpoint (required)"},
        {"text", OPT_STR, &text, "FILE", "plain UTF-8 text (required)"},
        {"batch", OPT_INT, &batch, "B", "context windows evaluated together"},
        {"json", OPT_FLAG, &as_json, NULL, "print a JSON object instead of text"},
        {0}};
    OptSpec s = {"nll", "rlhf nll --model CKPT --text FILE [options]",
                 "Mean negative log-likelihood (nats/token) and perplexity of a text.",
                 "The text is cut into non-overlapping windows of the model's context length;\n"
                 "every token after the first is predicted once.", o, 0, 0};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (!model || !text) err_die("nll: --model and --text are required");
    if (batch < 1) err_die("nll: --batch must be >= 1");
    Gpt m;
    Tok *tok = load_as_or_die(model, &m, &(CkptWant){.head = GPT_HEAD_LM, .what = "nll --model"});
    size_t len;
    char *buf = read_file_or_die(text, &len);
    int n;
    int *ids = tok_encode(tok, buf, len, &n);
    if (!ids) err_die("%s: %s", text, err_msg());
    if (n < 2) err_die("%s: needs at least 2 tokens, has %d", text, n);
    long count;
    double total = nll_windows(&m, ids, n, batch, &count), mean = total / count;
    if (as_json) printf("{\"tokens\": %ld, \"nll\": %.6f, \"perplexity\": %.6f}\n", count, mean, exp(mean));
    else printf("tokens %ld  nll %.6f nats/token  perplexity %.4f\n", count, mean, exp(mean));
    free(ids), free(buf);
    tok_free(tok);
    gpt_free(&m);
    return 0;
}

/* ---- import-hf / export-hf / inspect ------------------------------------- */

static int cmd_import_hf(int argc, char **argv) {
    const char *out = NULL;
    Opt o[] = {{"out", OPT_STR, &out, "CKPT", "checkpoint to write (required)"}, {0}};
    OptSpec s = {"import-hf", "rlhf import-hf DIR --out CKPT",
                 "Import a Hugging Face GPT-2 directory (config.json, model.safetensors,\n"
                 "vocab.json, merges.txt) into an rlhf checkpoint.",
                 "Accepts F32, F16 and BF16 tensors, keys with or without the \"transformer.\"\n"
                 "prefix; a model with a score.weight tensor becomes a scalar-head model.", o, 1, 1};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (!out) err_die("import-hf: --out is required");
    Gpt m;
    Tok *tok;
    if (hf_import(pos[0], &m, &tok)) err_die_last();
    if (ckpt_save_model(out, &m, tok, m.cfg.head == GPT_HEAD_LM ? "policy" : "reward")) err_die_last();
    fprintf(stderr, "rlhf import-hf: %s -> %s: %zu parameters, %d layers, width %d, vocab %d (%s tokenizer)\n",
            pos[0], out, m.n_params, m.cfg.n_layer, m.cfg.n_embd, m.cfg.vocab_size,
            tok_kind(tok) == TOK_BYTE ? "byte" : "GPT-2 BPE");
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

static int cmd_export_hf(int argc, char **argv) {
    const char *out = NULL;
    Opt o[] = {{"out", OPT_STR, &out, "DIR", "directory to write (created if missing; required)"}, {0}};
    OptSpec s = {"export-hf", "rlhf export-hf CKPT --out DIR",
                 "Export a checkpoint as a Hugging Face GPT-2 directory (config.json,\n"
                 "model.safetensors, vocab.json, merges.txt).", NULL, o, 1, 1};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (!out) err_die("export-hf: --out is required");
    Gpt m;
    char kind[32];
    Tok *tok = load_model_or_die(pos[0], &m, kind, sizeof kind);
    if (hf_export(out, &m, tok)) err_die_last();
    fprintf(stderr, "rlhf export-hf: %s -> %s/\n", pos[0], out);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

/* The tokenizer of the run that wrote a log: --model, else DIR/final.h5. */
static Tok *log_tokenizer(const char *log_path, const char *model) {
    char path[4096];
    if (model) snprintf(path, sizeof path, "%s", model);
    else {
        const char *slash = strrchr(log_path, '/');
        snprintf(path, sizeof path, "%.*s/final.h5", slash ? (int)(slash - log_path) : 1, slash ? log_path : ".");
    }
    Ckpt *k = ckpt_open(path);
    Tok *tok = k ? ckpt_get_tok(k) : NULL;
    if (k) ckpt_close(k);
    if (!tok && model) err_die_last();
    err_clear();
    return tok;
}

static void inspect_checkpoint(const char *path) {
    Gpt m;
    char kind[32];
    Tok *tok = load_model_or_die(path, &m, kind, sizeof kind);
    printf("file        %s\nkind        %s\nhead        %s\n", path, kind,
           m.cfg.head == GPT_HEAD_LM ? "language model (tied unembedding)" : "scalar");
    printf("layers      %d\nheads       %d\nwidth       %d\ncontext     %d\nvocab       %d\n",
           m.cfg.n_layer, m.cfg.n_head, m.cfg.n_embd, m.cfg.n_ctx, m.cfg.vocab_size);
    printf("tokenizer   %s\nparameters  %zu\n", tok_kind(tok) == TOK_BYTE ? "byte" : "GPT-2 BPE", m.n_params);
    double sum = 0;
    for (size_t i = 0; i < m.n_params; i++) sum += (double)m.params[i] * m.params[i];
    printf("param rms   %.6g\n", sqrt(sum / m.n_params));
    gpt_free(&m);
    tok_free(tok);
}

static int cmd_inspect(int argc, char **argv) {
    const char *model = NULL;
    int as_json = 0;
    Opt o[] = {{"model", OPT_STR, &model, "CKPT", "tokenizer for decoding a rollout log (default: final.h5 beside it)"},
               {"json", OPT_FLAG, &as_json, NULL, "machine-readable output (logs)"},
               {0}};
    OptSpec s = {"inspect", "rlhf inspect FILE.h5 [--json] [--model CKPT]",
                 "Summarise a checkpoint (kind, model, tokenizer, parameters) or a log: a rollout log\n"
                 "(rows, per-iteration reward / r_theta / KL / lambda / gold / length, policy-lag\n"
                 "histogram, decoded samples) or a metrics table. Logs can be inspected while written.",
                 NULL, o, 1, 1};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    Ckpt *k = ckpt_open(pos[0]);
    if (k) {
        ckpt_close(k);
        inspect_checkpoint(pos[0]);
        return 0;
    }
    char why[600];
    snprintf(why, sizeof why, "%s", err_msg());
    if (!strstr(why, "not an rlhf checkpoint")) err_die("%s", why);
    Tok *tok = log_tokenizer(pos[0], model);
    if (inspect_log(pos[0], tok, as_json, stdout)) err_die("%s", err_msg());
    tok_free(tok);
    return 0;
}

/* ---- data ----------------------------------------------------------------- */

static int cmd_data(int argc, char **argv) {
    const char *out = NULL;
    int n = 4000, seed = 1, max_operand = 0;
    Opt o[] = {
        {"out", OPT_STR, &out, "DIR", "directory to write (created if missing; required)"},
        {"n", OPT_INT, &n, "N", "dataset scale: SFT demonstrations and preference pairs"},
        {"seed", OPT_INT, &seed, "S", "random seed (same seed, same files)"},
        {"max-operand", OPT_INT, &max_operand, "M", "operands 0..M (0: the task's default)"},
        {0}};
    OptSpec s = {"data", "rlhf data arith --out DIR [--n N] [--seed S]",
                 "Write the built-in arithmetic task: pretraining text, SFT demonstrations, preference\n"
                 "pairs, K-wise rankings, RL prompts and held-out evaluation prompts.",
                 "Files: pretrain.txt, sft.jsonl, sft_valid.jsonl, prefs.jsonl,\n"
                 "prefs_valid.jsonl, rankings.jsonl, rl_prompts.jsonl, eval_prompts.jsonl, README.txt.\n"
                 "The gold judge scores correctness first, then manners, then concision.", o, 1, 1};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (strcmp(pos[0], "arith")) err_die("data: unknown task '%s' (available: arith)", pos[0]);
    if (!out) err_die("data: --out is required");
    ArithSizes sz = {0};
    sz.max_operand = max_operand;
    if (arith_write_dataset(out, n, (uint64_t)seed, &sz)) err_die_last();
    fprintf(stderr, "rlhf data: wrote the arith task (n %d, seed %d) to %s/\n", n, seed, out);
    return 0;
}

static int cmd_pretrain(int argc, char **argv) { return trainer_main(&lm_pretrain_stage, argc, argv); }
static int cmd_sft(int argc, char **argv) { return trainer_main(&lm_sft_stage, argc, argv); }
static int cmd_rm(int argc, char **argv) { return trainer_main(&rm_stage, argc, argv); }
static int cmd_dpo(int argc, char **argv) { return trainer_main(&dpo_stage, argc, argv); }

/* ---- ppo -------------------------------------------------------------------- */

static volatile int ppo_stop;
static void ppo_on_signal(int sig) { ppo_stop = sig; }

/* All ranks: the learner acts on the flag; actors and rewarders keep going
 * until the learner has checkpointed and tells them to stop. */
static void ppo_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ppo_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL); /* srun and mpirun pass USR1 straight to the ranks */
}

static int cmd_ppo(int argc, char **argv) {
    Dp dp;
    dp_init(&dp, &argc, &argv);
    const CfgKey *const tables[] = {ppo_keys};
    Config *cfg = config_new(tables, 1);
    int help = 0;
    if (!cfg) err_die_last();
    dp_check(&dp, config_parse_args(cfg, argc, argv, &help), "ppo: ");
    if (help) {
        if (dp.rank == 0) {
            printf("usage: mpirun -n N rlhf ppo [--config FILE] [key=value ...]\n\n"
                   "Distributed PPO (InstructGPT step 3): learner ranks first (learners), then rewarders\n"
                   "(rewarders), the rest actors; --role learner|rewarder|actor overrides for MPMD launches.\n\n"
                   "configuration keys:\n");
            config_help(tables, 1, stdout);
        }
        dp_finalize(&dp);
        return 0;
    }
    dp_check(&dp, config_check_required(cfg), "ppo: ");
    PpoLayout lay;
    dp_check(&dp, ppo_layout(&lay, cfg), "ppo: ");
    if (dp.rank == 0) {
        fprintf(stderr, "ppo: %d ranks: %d learner(s), %d rewarder(s), %d actor(s); %d OpenBLAS thread(s) per rank; "
                "configuration:\n", lay.world, lay.n_learners, lay.n_rewarders, lay.n_actors, dp.blas_threads);
        fprintf(stderr, "ppo: roles by rank:");
        for (int r = 0; r < lay.world; r++) {
            int role = -1;
            for (int i = 0; i < lay.n_learners; i++) role = lay.learners[i] == r ? PPO_LEARNER : role;
            for (int i = 0; i < lay.n_rewarders; i++) role = lay.rewarders[i] == r ? PPO_REWARDER : role;
            fprintf(stderr, " %d=%s", r, role < 0 ? "actor" : ppo_role_name((PpoRole)role));
        }
        fputc('\n', stderr);
        config_print(cfg, stderr);
    }
    ppo_signals();
    int rc = lay.role == PPO_LEARNER ? ppo_learner_run(cfg, &lay, &ppo_stop)
             : lay.role == PPO_REWARDER ? rewarder_run(cfg, &lay) : actor_run(cfg, &lay);
    dp_barrier(&dp);
    MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    ppo_layout_free(&lay);
    config_free(cfg);
    dp_finalize(&dp);
    return rc;
}

/* ---- eval / score ----------------------------------------------------------- */

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

static void print_report(const EvalReport *r, int as_json) {
    int first = 1;
    if (as_json) printf("{");
    print_stat("gold", &r->gold, "", as_json, &first);
    print_stat("correct", &r->correct, "", as_json, &first);
    print_stat("offensive", &r->offensive, "", as_json, &first);
    print_stat("rm", &r->rm, "  (normalised)", as_json, &first);
    print_stat("kl", &r->kl, " nats", as_json, &first);
    print_stat("length", &r->length, " tokens", as_json, &first);
    if (as_json) printf("}\n");
}

static int cmd_eval(int argc, char **argv) {
    const char *policy = NULL, *prompts = NULL, *ref = NULL, *rm = NULL, *samples = NULL;
    int n = 0, max_new = 32, greedy = 0, top_k = 0, seed = 1, batch = 16, as_json = 0;
    float temperature = 1.0f, top_p = 1.0f;
    Opt o[] = {
        {"policy", OPT_STR, &policy, "CKPT", "policy checkpoint (required)"},
        {"prompts", OPT_STR, &prompts, "FILE.jsonl", "prompts, {\"prompt\": ...} per line (required)"},
        {"ref", OPT_STR, &ref, "CKPT", "reference model: report KL(policy || ref) per response"},
        {"rm", OPT_STR, &rm, "CKPT", "reward model: report its normalised score"},
        {"n", OPT_INT, &n, "N", "evaluate the first N prompts (0: all)"},
        {"max-new", OPT_INT, &max_new, "N", "new tokens at most per response"},
        {"greedy", OPT_FLAG, &greedy, NULL, "greedy decoding (default: sample at --temperature)"},
        {"temperature", OPT_FLOAT, &temperature, "T", "sampling temperature"},
        {"top-k", OPT_INT, &top_k, "K", "top-k sampling (0 = off)"},
        {"top-p", OPT_FLOAT, &top_p, "P", "nucleus sampling (1 = off)"},
        {"seed", OPT_INT, &seed, "S", "random seed"},
        {"batch", OPT_INT, &batch, "B", "prompts generated together"},
        {"samples", OPT_STR, &samples, "FILE.jsonl", "write every response with its scores"},
        {"json", OPT_FLAG, &as_json, NULL, "print the report as JSON"},
        {0}};
    OptSpec s = {"eval", "rlhf eval --policy CKPT --prompts FILE [--ref CKPT] [--rm CKPT] [options]",
                 "Sample responses and report gold score (built-in task), RM score, KL to a reference\n"
                 "and length, each as mean +- standard error.",
                 "KL is the sum over a response's tokens of log pi(y_t) - log ref(y_t) under the unmodified\n"
                 "policy; it estimates KL(pi || ref) when sampling at temperature 1 without top-k/top-p.\n"
                 "Gold scores need the built-in task's prompts; other prompts are counted and skipped.",
                 o, 0, 0};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (!policy || !prompts) err_die("eval: --policy and --prompts are required");
    if (batch < 1 || max_new < 1) err_die("eval: --batch and --max-new must be >= 1");
    Gpt m;
    Tok *tok = load_as_or_die(policy, &m, &(CkptWant){.head = GPT_HEAD_LM, .what = "eval --policy"});
    gpt_pack_head(&m); /* once for every batch */
    EvalSetup es = {.policy = &m,
                    .tok = tok,
                    .ref = load_optional(ref, GPT_HEAD_LM, "eval --ref", &m, tok),
                    .rm = load_optional(rm, GPT_HEAD_SCALAR, "eval --rm", &m, tok),
                    .rm_offset = 0,
                    .rm_scale = 1,
                    .gen = {max_new, tok_eot(tok), {greedy, temperature, top_k, top_p}},
                    .seed = (uint64_t)seed,
                    .batch = batch,
                    .samples = NULL};
    if (sampler_validate(&es.gen.sampler)) err_die("eval: %s", err_msg());
    if (rm && eval_rm_norm(rm, &es.rm_offset, &es.rm_scale)) err_die_last();
    PromptList pl = {0};
    prompts_read_jsonl(&pl, prompts);
    int count = n > 0 && n < pl.n ? n : pl.n;
    if (samples && !(es.samples = fopen(samples, "w"))) err_die("%s: %s", samples, strerror(errno));
    EvalReport r;
    if (eval_run(&es, pl.text, count, &r)) err_die("eval: %s", err_msg());
    if (es.samples && fclose(es.samples)) err_die("%s: write error", samples);
    if (!as_json) printf("eval: %d responses from %s on %s\n", count, policy, prompts);
    print_report(&r, as_json);
    if (r.foreign_prompts) err_warn("%ld prompts are not the built-in task's: no gold score for them", r.foreign_prompts);
    for (int i = 0; i < pl.n; i++) free(pl.text[i]);
    free(pl.text);
    if (es.ref) gpt_free(es.ref), free(es.ref);
    if (es.rm) gpt_free(es.rm), free(es.rm);
    gpt_free(&m);
    tok_free(tok);
    return 0;
}

static int cmd_score(int argc, char **argv) {
    const char *model = NULL, *data = NULL;
    int raw = 0;
    Opt o[] = {{"model", OPT_STR, &model, "CKPT", "reward model checkpoint (required)"},
               {"data", OPT_STR, &data, "FILE.jsonl", "records to score (required)"},
               {"raw", OPT_FLAG, &raw, NULL, "raw head outputs (default: normalised by the stored offset/scale)"},
               {0}};
    OptSpec s = {"score", "rlhf score --model RM --data FILE.jsonl [--raw]",
                 "Score JSONL with a reward model; prints one JSON line per record and a summary.",
                 "Records: {\"prompt\",\"completion\"} -> score; {\"prompt\",\"chosen\",\"rejected\"} -> both\n"
                 "scores (summary: pairwise accuracy); {\"prompt\",\"ranking\":[...]} -> scores in order.",
                 o, 0, 0};
    char *pos[1];
    int np;
    parse_or_die(&s, argc, argv, pos, &np);
    if (!model || !data) err_die("score: --model and --data are required");
    Gpt m;
    Tok *tok = load_as_or_die(model, &m, &(CkptWant){.head = GPT_HEAD_SCALAR, .what = "score --model"});
    EvalScorer sc = {.rm = &m, .tok = tok, .conv = {.eot = tok_eot(tok), .offset = 0, .scale = 1, .clip = 0}};
    if (!raw && eval_rm_norm(model, &sc.conv.offset, &sc.conv.scale)) err_die_last();
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
        for (int i = 0; i < k; i++) json_array_append_new(arr, json_real(scores[i]));
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

/* ---- configuration reference ------------------------------------------------- */

/* Markdown tables of every stage's keys, from the tables --help prints; the
 * README's reference is this output (tests/cli/docs.sh checks they agree). */
static int cmd_config_reference(int argc, char **argv) {
    (void)argv;
    if (argc) err_die("config-reference takes no arguments");
    const TrainStage *stages[] = {&lm_pretrain_stage, &lm_sft_stage, &rm_stage, &dpo_stage};
    printf("#### Keys of every trainer (pretrain, sft, rm, dpo)\n\n");
    config_markdown((const CfgKey *const[]){trainer_keys}, 1, stdout);
    for (int i = 0; i < 4; i++) {
        printf("\n#### %s\n\n", stages[i]->name);
        config_markdown((const CfgKey *const[]){stages[i]->keys}, 1, stdout);
    }
    printf("\n#### ppo\n\n");
    config_markdown((const CfgKey *const[]){ppo_keys}, 1, stdout);
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"data", cmd_data, "write the built-in task's datasets (rlhf data arith)"},
    {"init", cmd_init, "create a model with random weights"},
    {"pretrain", cmd_pretrain, "next-token pretraining on text (MPI data-parallel)"},
    {"sft", cmd_sft, "supervised fine-tuning on demonstrations (MPI data-parallel)"},
    {"rm", cmd_rm, "reward model on preferences and rankings (MPI data-parallel)"},
    {"dpo", cmd_dpo, "direct preference optimisation: DPO, IPO, cDPO (MPI data-parallel)"},
    {"generate", cmd_generate, "complete prompts (greedy, temperature, top-k, top-p)"},
    {"nll", cmd_nll, "negative log-likelihood and perplexity of a text"},
    {"ppo", cmd_ppo, "distributed PPO: learner, rewarder and actor ranks over MPI"},
    {"plot", plot_main, "PNG plots of a pipeline run (gnuplot)"},
    {"gridworld", gridworld_main, "the tutorial's drunk cat trained with the PPO code (multi-step GAE check)"},
    {"eval", cmd_eval, "gold score, RM score, KL to a reference and length of a policy's samples"},
    {"score", cmd_score, "score JSONL with a reward model"},
    {"config-reference", cmd_config_reference, "print the configuration reference (Markdown) of every stage"},
    {"import-hf", cmd_import_hf, "import a Hugging Face GPT-2 directory"},
    {"export-hf", cmd_export_hf, "export a checkpoint as a Hugging Face GPT-2 directory"},
    {"inspect", cmd_inspect, "summarise a checkpoint, a rollout log or a metrics log"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: rlhf SUBCOMMAND [options]   (rlhf SUBCOMMAND --help for its options)\n\n"
               "RLHF for GPT-2 models in C: OpenBLAS, MPI, HDF5.\n\nsubcommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("rlhf %s\n", RLHF_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    err_die("unknown subcommand '%s' (rlhf --help lists them)", argv[1]);
}
