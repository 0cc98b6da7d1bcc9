/* Tests for common/config.c: defaults from composed tables; config files
 * (comments, quotes, escapes, whitespace, CRLF, BOM); command-line values
 * winning over --config wherever it appears; every malformed file line and
 * argument, with messages checked for file, line and key; canonical values;
 * print output (exact text, and that it reads back); --help and Markdown
 * reference; checkpoint round trip; config_diff; misuse aborting. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/io/ckpt.h"
#include "common/config.h"
#include "common/err.h"
#include "common/model/gpt.h"
#include "common/model/tok.h"
#include "common/mpi/ppo_config.h"
#include "common/task/verifier.h"
#include "learner/dpo.h"
#include "learner/lm.h"
#include "learner/rm.h"
#include "learner/trainer.h"
#include "tests/harness.h"

/* ---- fixtures ----------------------------------------------------------- */

static const CfgKey common_keys[] = {
    {.key = "batch_size", .type = CFG_INT, .def = "8", .help = "sequences per optimizer step"},
    {.key = "learning_rate", .type = CFG_FLOAT, .def = "3e-4", .help = "peak learning rate"},
    {.key = "resume", .type = CFG_BOOL, .def = "true", .help = "continue from the latest checkpoint"},
    {.key = "out_dir", .type = CFG_STR, .def = "runs/out", .help = "directory for checkpoints | logs"},
    {NULL}};

static const CfgKey rl_keys[] = {
    {.key = "kl_estimator", .type = CFG_ENUM, .def = "k1", .help = "per-token KL estimator", .choices = "k1|k3"},
    {.key = "run_name", .type = CFG_STR, .def = "", .help = "label shown in logs"},
    {.key = "prompts", .type = CFG_STR, .def = NULL, .help = "JSONL file of RL prompts"},
    {.key = "kl_coef", .type = CFG_FLOAT, .def = "0.1", .help = "initial KL coefficient"},
    {NULL}};

static const CfgKey *const tables[] = {common_keys, rl_keys};
#define N_TABLES 2
#define N_KEYS 8

static Config *new_config(void) {
    Config *c = config_new(tables, N_TABLES);
    CHECKF(c != NULL, "config_new: %s", err_msg());
    return c;
}

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* Loads text as a config file into a fresh config; expects failure with a
 * message starting "PATH:LINE: " and containing fragment. */
static void expect_file_error(const char *text, int line, const char *fragment) {
    Config *c = new_config();
    if (!c) return;
    const char *path = harness_tmp_text("bad.conf", text);
    char place[600];
    snprintf(place, sizeof place, "%s:%d: ", path, line);
    err_clear();
    CHECKF(config_load_file(c, path) == -1, "accepted: %s", text);
    CHECK_ERR(place, fragment);
    config_free(c);
}

static int parse(Config *c, int *help, int argc, ...) {
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) argv[i] = va_arg(ap, char *);
    va_end(ap);
    err_clear();
    return config_parse_args(c, argc, argv, help);
}

/* config_print into a string (caller frees). */
static char *print_to_string(const Config *c) {
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    config_print(c, f);
    fclose(f);
    return s;
}

/* ---- defaults and tables ------------------------------------------------ */

TEST(config_defaults_from_composed_tables) {
    Config *c = new_config();
    if (!c) return;
    CHECK(config_count(c) == N_KEYS);
    CHECK(streq(config_key_at(c, 0)->key, "batch_size"));
    CHECK(streq(config_key_at(c, 4)->key, "kl_estimator")); /* second table follows the first */
    CHECK(config_key_at(c, N_KEYS) == NULL && config_key_at(c, -1) == NULL);
    CHECK(config_int(c, "batch_size") == 8);
    CHECK(config_float(c, "learning_rate") == 3e-4);
    CHECK(config_bool(c, "resume") == 1);
    CHECK(streq(config_str(c, "out_dir"), "runs/out"));
    CHECK(streq(config_str(c, "kl_estimator"), "k1") && config_enum(c, "kl_estimator") == 0);
    CHECK(streq(config_str(c, "run_name"), ""));
    /* canonical texts: shortest round-trip float, bool spelled out */
    CHECK(streq(config_get_raw(c, "learning_rate"), "0.0003"));
    CHECK(streq(config_get_raw(c, "resume"), "true"));
    CHECK(config_get_raw(c, "prompts") == NULL); /* required, not set */
    CHECK(config_get_raw(c, "nope") == NULL && config_origin(c, "nope") == NULL);
    CHECK(streq(config_origin(c, "batch_size"), "default"));
    config_free(c);
}

TEST(config_new_rejects_bad_tables) {
    static const CfgKey dup[] = {{.key = "learning_rate", .type = CFG_FLOAT, .def = "1", .help = "again"}, {NULL}};
    static const CfgKey bad_default[] = {{.key = "steps", .type = CFG_INT, .def = "10k", .help = "h"}, {NULL}};
    static const CfgKey bad_name[] = {{.key = "two words", .type = CFG_INT, .def = "1", .help = "h"}, {NULL}};
    static const CfgKey empty_name[] = {{.key = "", .type = CFG_INT, .def = "1", .help = "h"}, {NULL}};
    static const CfgKey no_choices[] = {{.key = "mode", .type = CFG_ENUM, .def = "a", .help = "h"}, {NULL}};
    static const CfgKey bad_choice[] = {{.key = "mode", .type = CFG_ENUM, .def = "c", .help = "h", .choices = "a|b"}, {NULL}};
    struct {
        const CfgKey *t;
        const char *fragment;
    } cases[] = {{dup, "'learning_rate' declared twice"},
                 {bad_default, "default of 'steps': 'steps' expects an integer, got '10k'"},
                 {bad_name, "bad key name 'two words'"},
                 {empty_name, "bad key name ''"},
                 {no_choices, "enum key 'mode' has no choices"},
                 {bad_choice, "'mode' expects one of a, b, got 'c'"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const CfgKey *const two[] = {common_keys, cases[i].t};
        err_clear();
        Config *c = config_new(two, 2);
        CHECKF(c == NULL, "case %zu accepted", i);
        config_free(c);
        CHECK_ERR("config table: ", cases[i].fragment);
    }
    Config *empty = config_new(NULL, 0);
    CHECK(empty && config_count(empty) == 0);
    config_free(empty);
    config_free(NULL);
}

/* ---- config files ------------------------------------------------------- */

/* A config file exercising the syntax; line 5 sets learning_rate to lr_text. */
static const char *write_syntax_file(const char *lr_text) {
    static const char fmt[] =
        "\xEF\xBB\xBF# full-line comment\n"
        "\n"
        "   \t\n"
        "  batch_size\t=   16   \n"
        "learning_rate=%s\n"
        "resume = NO   # trailing comment\r\n"
        "out_dir = http://host/a#frag b  # '#' inside a word is kept\n"
        "run_name = \"two  words # kept\"   # comment after quotes\n"
        "kl_estimator = K3\n"
        "prompts = \"tab\\there \\\"q\\\" back\\\\slash\\nnl\"\n"
        "kl_coef = 2.50";
    char text[1024];
    snprintf(text, sizeof text, fmt, lr_text);
    return harness_tmp_text("syntax.conf", text);
}

TEST(config_file_comments_quotes_whitespace) {
    Config *c = new_config();
    if (!c) return;
    /* '#' right after a word is part of the value, so this does not parse */
    const char *path = write_syntax_file("1e-3# not a comment");
    CHECK(config_load_file(c, path) == -1);
    CHECK_ERR(path, ":5: 'learning_rate' expects a number, got '1e-3# not a comment'");
    CHECK(config_int(c, "batch_size") == 16); /* lines before the bad one stay applied */
    config_free(c);

    path = write_syntax_file("1e-3 # a comment");
    c = new_config();
    if (!c) return;
    CHECKF(config_load_file(c, path) == 0, "%s", err_msg());
    CHECK(config_int(c, "batch_size") == 16);
    CHECK(config_float(c, "learning_rate") == 1e-3 && streq(config_get_raw(c, "learning_rate"), "0.001"));
    CHECK(config_bool(c, "resume") == 0 && streq(config_get_raw(c, "resume"), "false"));
    CHECK(streq(config_str(c, "out_dir"), "http://host/a#frag b"));
    CHECK(streq(config_str(c, "run_name"), "two  words # kept"));
    CHECK(streq(config_str(c, "kl_estimator"), "k3") && config_enum(c, "kl_estimator") == 1);
    CHECK(streq(config_str(c, "prompts"), "tab\there \"q\" back\\slash\nnl"));
    CHECK(config_float(c, "kl_coef") == 2.5 && streq(config_get_raw(c, "kl_coef"), "2.5"));
    char want[600];
    snprintf(want, sizeof want, "%s:4", path);
    CHECK(streq(config_origin(c, "batch_size"), want));
    snprintf(want, sizeof want, "%s:11", path);
    CHECK(streq(config_origin(c, "kl_coef"), want));
    CHECK(config_check_required(c) == 0);
    config_free(c);
}

TEST(config_file_empty_values) {
    Config *c = new_config();
    if (!c) return;
    const char *path = harness_tmp_text("empty.conf", "out_dir =\nrun_name = \"\"\nprompts = # only a comment\n");
    CHECKF(config_load_file(c, path) == 0, "%s", err_msg());
    CHECK(streq(config_str(c, "out_dir"), "") && streq(config_str(c, "run_name"), ""));
    CHECK(streq(config_str(c, "prompts"), ""));
    config_free(c);
    expect_file_error("batch_size =\n", 1, "'batch_size' expects an integer, got ''");
}

TEST(config_file_malformed_lines) {
    expect_file_error("# ok\nlerning_rate = 0.1\n", 2, "unknown key 'lerning_rate' (did you mean 'learning_rate'?)");
    expect_file_error("batch-size = 4\n", 1, "unknown key 'batch-size' (did you mean 'batch_size'?)");
    expect_file_error("learningrate = 4\n", 1, "(did you mean 'learning_rate'?)");
    expect_file_error("lr = 4\n", 1, "unknown key 'lr'");
    expect_file_error("\n\nbatch_size = 8x\n", 3, "'batch_size' expects an integer, got '8x'");
    expect_file_error("batch_size = 8.0\n", 1, "'batch_size' expects an integer, got '8.0'");
    expect_file_error("batch_size = 99999999999\n", 1, "'batch_size' is out of range for an integer");
    expect_file_error("learning_rate = fast\n", 1, "'learning_rate' expects a number, got 'fast'");
    expect_file_error("learning_rate = inf\n", 1, "'learning_rate' expects a finite number, got 'inf'");
    expect_file_error("learning_rate = nan\n", 1, "expects a finite number");
    expect_file_error("resume = maybe\n", 1, "'resume' expects true or false, got 'maybe'");
    expect_file_error("kl_estimator = k2\n", 1, "'kl_estimator' expects one of k1, k3, got 'k2'");
    expect_file_error("batch_size 8\n", 1, "expected 'key = value', got 'batch_size 8'");
    expect_file_error("a\n", 1, "expected 'key = value'");
    expect_file_error("  = 8\n", 1, "missing key before '='");
    expect_file_error("batch_size = 8\nresume = no\nbatch_size = 9\n", 3, "'batch_size' is already set on line 1");
    expect_file_error("run_name = \"open\n", 1, "unterminated quoted value");
    expect_file_error("run_name = \"ends in backslash\\", 1, "unterminated quoted value");
    expect_file_error("run_name = \"a\" b\n", 1, "unexpected text after closing quote: 'b'");
    expect_file_error("run_name = \"a\\qb\"\n", 1, "unknown escape '\\q'");
    expect_file_error("bad key = 1\n", 1, "unknown key 'bad key'");

    Config *c = new_config();
    if (!c) return;
    static const char nul_text[] = "batch_size = 8\nrun_name = a\0b\n";
    const char *path = harness_tmp_file("nul.conf", nul_text, sizeof nul_text - 1);
    CHECK(config_load_file(c, path) == -1);
    char place[600];
    snprintf(place, sizeof place, "%s:2: ", path);
    CHECK_ERR(place, "NUL byte");

    const char *missing = harness_tmp_path("missing.conf");
    CHECK(config_load_file(c, missing) == -1);
    snprintf(place, sizeof place, "%s: ", missing);
    CHECK_ERR(place, "No such file or directory");

    CHECK(config_load_file(c, harness_tmpdir()) == -1);
    snprintf(place, sizeof place, "%s: ", harness_tmpdir());
    CHECK_ERR(place, "Is a directory");
    config_free(c);
}

TEST(config_set_validates_and_names_origin) {
    Config *c = new_config();
    if (!c) return;
    CHECK(config_set(c, "batch_size", "32", "here") == 0 && config_int(c, "batch_size") == 32);
    CHECK(streq(config_origin(c, "batch_size"), "here"));
    CHECK(config_set(c, "batch_size", " 4", "here") == -1); /* no blanks around numbers */
    CHECK_ERR("here: ", "'batch_size' expects an integer, got ' 4'");
    CHECK(config_set(c, "batch_size", "", "here") == -1);
    CHECK(config_int(c, "batch_size") == 32); /* a rejected value leaves the old one */
    CHECK(config_set(c, "Batch_Size", "4", "there") == -1);
    CHECK_ERR("there: ", "unknown key 'Batch_Size' (did you mean 'batch_size'?)");
    CHECK(config_set(c, "learning_rate", "1e-5", "x") == 0 && streq(config_get_raw(c, "learning_rate"), "1e-05"));
    CHECK(config_set(c, "learning_rate", "0.1", "x") == 0 && streq(config_get_raw(c, "learning_rate"), "0.1"));
    CHECK(config_set(c, "learning_rate", "1", "x") == 0 && streq(config_get_raw(c, "learning_rate"), "1"));
    CHECK(config_set(c, "kl_coef", "0.3333333333333333", "x") == 0);
    CHECK(config_float(c, "kl_coef") == 1.0 / 3.0 && streq(config_get_raw(c, "kl_coef"), "0.3333333333333333"));
    const char *yes[] = {"true", "TRUE", "yes", "On", "1"}, *no[] = {"false", "No", "OFF", "0"};
    for (int i = 0; i < 5; i++) CHECK(config_set(c, "resume", yes[i], "x") == 0 && config_bool(c, "resume") == 1);
    for (int i = 0; i < 4; i++) CHECK(config_set(c, "resume", no[i], "x") == 0 && config_bool(c, "resume") == 0);
    CHECK(config_set(c, "resume", "2", "x") == -1);
    CHECK(config_set(c, "kl_estimator", "k", "x") == -1); /* a prefix of a choice is not a choice */
    CHECK(config_set(c, "kl_estimator", "k3|", "x") == -1);
    config_free(c);
}

/* ---- command line ------------------------------------------------------- */

TEST(config_command_line_wins_regardless_of_order) {
    const char *path = harness_tmp_text("base.conf", "batch_size = 4\nlearning_rate = 0.01\nresume = yes\n");
    const char *second = harness_tmp_text("second.conf", "batch_size = 6\n");
    char cfg_eq[600];
    snprintf(cfg_eq, sizeof cfg_eq, "--config=%s", second);
    int help = -1;

    Config *c = new_config();
    if (!c) return;
    CHECKF(parse(c, &help, 3, "learning_rate=0.5", "--config", path) == 0, "%s", err_msg());
    CHECK(help == 0);
    CHECK(config_float(c, "learning_rate") == 0.5 && streq(config_origin(c, "learning_rate"), "command line"));
    CHECK(config_int(c, "batch_size") == 4 && config_bool(c, "resume") == 1);
    config_free(c);

    c = new_config();
    if (!c) return;
    /* files in order (later wins), then arguments in order (later wins) */
    CHECKF(parse(c, &help, 8, "batch_size=1", cfg_eq, "--batch-size", "2", "--resume=false", "--config", path,
                 "prompts=p.jsonl") == 0,
           "%s", err_msg());
    CHECK(config_int(c, "batch_size") == 2);
    CHECK(config_bool(c, "resume") == 0);
    CHECK(config_float(c, "learning_rate") == 0.01);
    CHECK(streq(config_str(c, "prompts"), "p.jsonl"));
    config_free(c);

    c = new_config();
    if (!c) return;
    CHECK(config_set(c, "resume", "false", "x") == 0);
    CHECKF(parse(c, &help, 3, "--resume", "--kl-estimator=k3", "run_name=a=b") == 0, "%s", err_msg());
    CHECK(config_bool(c, "resume") == 1); /* a bare bool option means true */
    CHECK(streq(config_str(c, "kl_estimator"), "k3"));
    CHECK(streq(config_str(c, "run_name"), "a=b")); /* split at the first '=' */
    CHECK(parse(c, &help, 0) == 0 && help == 0);
    config_free(c);
}

/* A key's command-line alias (.alias: overwrite's --force): --ALIAS and
 * --ALIAS=value set the key, help and the Markdown reference name it, and
 * a table whose alias hides a key or another alias is refused. */
TEST(config_alias_on_the_command_line) {
    static const CfgKey keys[] = {
        {.key = "overwrite", .type = CFG_BOOL, .def = "false", .help = "replace", .alias = "force"},
        {.key = "lr", .type = CFG_FLOAT, .def = "1", .help = "rate", .range = ">= 0"},
        {NULL}};
    const CfgKey *const tables[] = {keys};
    int help = -1;
    Config *c = config_new(tables, 1);
    CHECKF(c != NULL, "%s", err_msg());
    if (!c) return;
    CHECKF(parse(c, &help, 1, "--force") == 0, "%s", err_msg());
    CHECK(config_bool(c, "overwrite") == 1 && streq(config_origin(c, "overwrite"), "command line"));
    CHECKF(parse(c, &help, 1, "--force=false") == 0, "%s", err_msg());
    CHECK(config_bool(c, "overwrite") == 0);
    CHECK(parse(c, &help, 1, "force=1") == -1); /* an option spelling, not a key */
    CHECK_ERR("command line: ", "unknown key 'force'");
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    config_help(tables, 1, f);
    config_markdown(tables, 1, f);
    fclose(f);
    CHECKF(strstr(text, "(default: false; --force is the same)") && strstr(text, "replace; `--force` is the same |"),
           "%s", text);
    free(text);
    config_free(c);
    static const CfgKey hides_key[] = {{.key = "a", .type = CFG_BOOL, .def = "0", .help = "h", .alias = "b"},
                                       {.key = "b", .type = CFG_BOOL, .def = "0", .help = "h"}, {NULL}};
    static const CfgKey twice[] = {{.key = "a", .type = CFG_BOOL, .def = "0", .help = "h", .alias = "x"},
                                   {.key = "b", .type = CFG_BOOL, .def = "0", .help = "h", .alias = "x"}, {NULL}};
    const CfgKey *const bad1[] = {hides_key}, *const bad2[] = {twice};
    CHECK(config_new(bad1, 1) == NULL);
    CHECK_ERR("config table: ", "alias 'b' of key 'a' is not a free name");
    CHECK(config_new(bad2, 1) == NULL);
    CHECK_ERR("config table: ", "alias 'x' of key 'b' is not a free name");
}

TEST(config_command_line_errors) {
    int help = -1;
    Config *c = new_config();
    if (!c) return;
    CHECK(parse(c, &help, 1, "lerning_rate=1") == -1);
    CHECK_ERR("command line: ", "unknown key 'lerning_rate' (did you mean 'learning_rate'?)");
    CHECK(parse(c, &help, 1, "--lerning-rate=1") == -1);
    CHECK_ERR("command line: ", "unknown key 'lerning_rate' (did you mean 'learning_rate'?)");
    CHECK(parse(c, &help, 1, "stray") == -1);
    CHECK_ERR("command line: ", "unexpected argument 'stray' (expected key=value or --config FILE)");
    CHECK(parse(c, &help, 3, "batch_size", "=", "3") == -1);
    CHECK_ERR("command line: unexpected argument 'batch_size'", "without spaces");
    CHECK(parse(c, &help, 1, "=3") == -1);
    CHECK_ERR("command line: ", "unexpected argument '=3'");
    CHECK(parse(c, &help, 1, "-x") == -1);
    CHECK_ERR("command line: ", "unexpected argument '-x'");
    CHECK(parse(c, &help, 1, "--") == -1);
    CHECK(parse(c, &help, 1, "--config") == -1);
    CHECK_ERR("command line: ", "--config needs a FILE");
    CHECK(parse(c, &help, 1, "--config=") == -1);
    CHECK(parse(c, &help, 1, "--batch-size") == -1);
    CHECK_ERR("command line: ", "'--batch-size' needs a value");
    CHECK(parse(c, &help, 1, "batch_size=x") == -1);
    CHECK_ERR("command line: ", "'batch_size' expects an integer, got 'x'");
    CHECK(parse(c, &help, 1, "--resume=perhaps") == -1);
    CHECK_ERR("command line: ", "'resume' expects true or false");

    /* an argument error is reported before any file is read */
    const char *missing = harness_tmp_path("nowhere.conf");
    CHECK(parse(c, &help, 3, "--config", missing, "oops") == -1);
    CHECK_ERR("command line: ", "'oops'");
    CHECK(parse(c, &help, 2, "--config", missing) == -1);
    CHECK_ERR(missing, "No such file or directory");
    const char *bad = harness_tmp_text("bad-args.conf", "resume = sometimes\n");
    CHECK(parse(c, &help, 2, "--config", bad) == -1);
    CHECK_ERR(bad, ":1: 'resume' expects true or false, got 'sometimes'");

    /* --help wins over errors and reads nothing */
    CHECK(config_int(c, "batch_size") == 8);
    CHECK(parse(c, &help, 4, "oops", "--config", missing, "-h") == 0 && help == 1);
    CHECK(parse(c, &help, 2, "batch_size=99", "--help") == 0 && help == 1);
    CHECK(config_int(c, "batch_size") == 8);
    config_free(c);
}

TEST(config_required_keys) {
    Config *c = new_config();
    if (!c) return;
    CHECK(config_check_required(c) == -1);
    CHECK_ERR("missing required key 'prompts' (JSONL file of RL prompts)", "prompts=...");
    CHECK(config_set(c, "prompts", "rl.jsonl", "command line") == 0);
    CHECK(config_check_required(c) == 0);
    config_free(c);
}

/* ---- printing ----------------------------------------------------------- */

TEST(config_print_exact_text_and_reads_back) {
    Config *c = new_config();
    if (!c) return;
    char *s = print_to_string(c);
    const char *want_defaults =
        "batch_size    = 8\n"
        "learning_rate = 0.0003\n"
        "resume        = true\n"
        "out_dir       = runs/out\n"
        "kl_estimator  = k1\n"
        "run_name      = \"\"\n"
        "# prompts     = (required, not set)\n"
        "kl_coef       = 0.1\n";
    CHECKF(streq(s, want_defaults), "got:\n%s", s);
    free(s);

    const char *path = harness_tmp_text("p.conf", "\n\nbatch_size = 8\nlearning_rate = 1e-3\n");
    CHECK(config_load_file(c, path) == 0);
    CHECK(config_set(c, "run_name", "say \"hi\" # now\tand\\n", "command line") == 0);
    CHECK(config_set(c, "prompts", " lead", "command line") == 0);
    CHECK(config_set(c, "kl_estimator", "K3", "command line") == 0);
    s = print_to_string(c);
    char want[2048];
    snprintf(want, sizeof want,
             "batch_size    = 8\n" /* set from the file, but equal to the default: no origin */
             "learning_rate = 0.001  # %s:4\n"
             "resume        = true\n"
             "out_dir       = runs/out\n"
             "kl_estimator  = k3  # command line\n"
             "run_name      = \"say \\\"hi\\\" # now\\tand\\\\n\"  # command line\n"
             "prompts       = \" lead\"  # command line\n"
             "kl_coef       = 0.1\n",
             path);
    CHECKF(streq(s, want), "got:\n%s\nwant:\n%s", s, want);

    /* the printed configuration is a config file giving the same values */
    const char *again = harness_tmp_text("printed.conf", s);
    Config *d = new_config();
    if (d) {
        CHECKF(config_load_file(d, again) == 0, "%s", err_msg());
        char diff[256];
        CHECKF(config_diff(c, d, diff, sizeof diff) == 0, "%s", diff);
        config_free(d);
    }
    free(s);
    config_free(c);
}

TEST(config_help_and_markdown_list_every_key) {
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    config_help(tables, N_TABLES, f);
    fclose(f);
    int lines = 0;
    for (char *p = s; *p; p++) lines += *p == '\n';
    CHECK(lines == N_KEYS);
    for (int t = 0; t < N_TABLES; t++)
        for (const CfgKey *k = tables[t]; k->key; k++) {
            char frag[128];
            snprintf(frag, sizeof frag, "  %s=", k->key);
            CHECKF(strstr(s, frag) && strstr(s, k->help), "help lacks %s", k->key);
        }
    CHECKF(strstr(s, "  batch_size=INT       sequences per optimizer step (default: 8)\n"), "%s", s);
    CHECK(strstr(s, "  kl_estimator=k1|k3   per-token KL estimator (default: k1)\n"));
    CHECK(strstr(s, "  prompts=STR          JSONL file of RL prompts (required)\n"));
    CHECK(strstr(s, "  run_name=STR         label shown in logs (default: \"\")\n"));
    CHECK(strstr(s, "(default: 3e-4)")); /* defaults as the table spells them */
    free(s);

    f = open_memstream(&s, &n);
    config_markdown(tables, N_TABLES, f);
    fclose(f);
    lines = 0;
    for (char *p = s; *p; p++) lines += *p == '\n';
    CHECK(lines == N_KEYS + 2);
    CHECK(!strncmp(s, "| Key | Type | Default | Range | Description |\n|---|---|---|---|---|\n", 68));
    CHECKF(strstr(s, "| `batch_size` | int | `8` | | sequences per optimizer step |\n"), "%s", s);
    CHECK(strstr(s, "| `kl_estimator` | one of `k1`, `k3` | `k1` | | per-token KL estimator |\n"));
    CHECK(strstr(s, "| `prompts` | string | *required* | | JSONL file of RL prompts |\n"));
    CHECK(strstr(s, "| `run_name` | string | `\"\"` |"));
    CHECK(strstr(s, "directory for checkpoints \\| logs |")); /* '|' escaped inside a cell */
    free(s);
}

/* ---- checkpoints and diff ----------------------------------------------- */

/* Writes a checkpoint holding a tiny model and c's configuration, plus the
 * extra /config attributes given as name, value pairs (NULL-terminated). */
static int save_ckpt(const char *path, const Config *c, ...) {
    Gpt m;
    GptConfig gc = {
        .vocab_size = TOK_BYTE_VOCAB, .n_ctx = 8, .n_layer = 1, .n_head = 2, .n_embd = 8, .head = GPT_HEAD_LM};
    if (gpt_init(&m, &gc)) return -1;
    Tok *tok = tok_byte_new();
    Ckpt *k = ckpt_create(path);
    int rc = !k || ckpt_put_model(k, &m, tok, "policy") || ckpt_save_config(k, c);
    va_list ap;
    va_start(ap, c);
    for (const char *name; !rc && (name = va_arg(ap, const char *));)
        rc = ckpt_put_attr_str(k, "/config", name, va_arg(ap, const char *));
    va_end(ap);
    if (k) rc |= ckpt_commit(k) != 0;
    tok_free(tok);
    gpt_free(&m);
    return rc ? -1 : 0;
}

TEST(config_checkpoint_round_trip) {
    Config *c = new_config(), *d = new_config();
    if (!c || !d) return;
    CHECK(config_set(c, "batch_size", "32", "command line") == 0);
    CHECK(config_set(c, "learning_rate", "0.1", "command line") == 0);
    CHECK(config_set(c, "run_name", "with \"quotes\" and # hash\n", "command line") == 0);
    CHECK(config_set(c, "kl_estimator", "k3", "command line") == 0);
    CHECK(config_set(c, "resume", "no", "command line") == 0);
    const char *path = harness_tmp_path("cfg.h5");
    CHECKF(save_ckpt(path, c, "other_stage_key", "ignored", (const char *)NULL) == 0, "%s", err_msg());
    Ckpt *k = ckpt_open(path);
    CHECKF(k != NULL, "%s", err_msg());
    if (!k) return;
    char v[64];
    CHECK(ckpt_get_attr_str(k, "/config", "learning_rate", v, sizeof v) == 0 && streq(v, "0.1"));
    CHECK(!ckpt_has_attr(k, "/config", "prompts")); /* unset required key: not written */

    CHECKF(ckpt_load_config(k, d, NULL) == 0, "%s", err_msg());
    char diff[256];
    CHECKF(config_diff(c, d, diff, sizeof diff) == 0, "%s", diff);
    CHECK(config_float(d, "learning_rate") == 0.1 && config_int(d, "batch_size") == 32);
    CHECK(streq(config_str(d, "run_name"), "with \"quotes\" and # hash\n"));
    CHECK(streq(config_origin(d, "batch_size"), path));
    CHECK(config_get_raw(d, "prompts") == NULL);

    Config *e = new_config();
    const char *some[] = {"batch_size", "resume", NULL};
    CHECK(ckpt_load_config(k, e, some) == 0);
    CHECK(config_int(e, "batch_size") == 32 && config_bool(e, "resume") == 0);
    CHECK(config_float(e, "learning_rate") == 3e-4); /* not asked for */
    const char *with_missing[] = {"batch_size", "prompts", NULL};
    CHECK(ckpt_load_config(k, e, with_missing) == -1);
    CHECK_ERR(path, ": /config has no attribute 'prompts'");
    const char *undeclared[] = {"nope", NULL};
    CHECK(ckpt_load_config(k, e, undeclared) == -1);
    CHECK_ERR(path, "config key 'nope' is not declared");
    config_free(e);
    ckpt_close(k);

    /* a stored value that does not parse names the file and the key */
    const char *bad = harness_tmp_path("cfg-bad.h5");
    CHECKF(save_ckpt(bad, c, "batch_size", "eight", (const char *)NULL) == 0, "%s", err_msg());
    k = ckpt_open(bad);
    if (k) {
        CHECK(ckpt_load_config(k, d, NULL) == -1);
        CHECK_ERR(bad, "/config: 'batch_size' expects an integer, got 'eight'");
        ckpt_close(k);
    }
    config_free(c);
    config_free(d);
}

TEST(config_diff_lists_differences) {
    Config *a = new_config(), *b = new_config();
    if (!a || !b) return;
    char buf[256];
    CHECK(config_diff(a, b, buf, sizeof buf) == 0 && streq(buf, ""));
    CHECK(config_set(b, "learning_rate", "0.0003", "x") == 0); /* same value as the default "3e-4" */
    CHECK(config_set(b, "resume", "yes", "x") == 0);            /* same as true */
    CHECK(config_diff(a, b, buf, sizeof buf) == 0);
    CHECK(config_set(b, "batch_size", "16", "x") == 0);
    CHECK(config_set(b, "kl_coef", "0.2", "x") == 0);
    CHECK(config_set(a, "prompts", "a.jsonl", "x") == 0);
    CHECK(config_diff(a, b, buf, sizeof buf) == 3);
    CHECKF(streq(buf, "batch_size (8 vs 16), prompts (a.jsonl vs (not set)), kl_coef (0.1 vs 0.2)"), "%s", buf);
    CHECK(config_diff(b, a, NULL, 0) == 3);
    char small[20];
    CHECK(config_diff(a, b, small, sizeof small) == 3);
    CHECKF(streq(small, "batch_size (8 vs..."), "%s", small);

    /* only keys declared in both are compared */
    const CfgKey *const one[] = {common_keys};
    Config *only_common = config_new(one, 1);
    CHECK(config_diff(a, only_common, buf, sizeof buf) == 0);
    CHECK(config_diff(b, only_common, buf, sizeof buf) == 1 && streq(buf, "batch_size (16 vs 8)"));
    config_free(only_common);
    config_free(a);
    config_free(b);
}

/* ---- misuse ------------------------------------------------------------- */

/* 1 if fn(c) aborts (SIGABRT) in a child process. */
static int aborts(void (*fn)(const Config *), const Config *c) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        fn(c);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void get_undeclared(const Config *c) { (void)config_int(c, "nope"); }
static void get_wrong_type(const Config *c) { (void)config_int(c, "learning_rate"); }
static void get_unset(const Config *c) { (void)config_str(c, "prompts"); }
static void get_enum_as_bool(const Config *c) { (void)config_bool(c, "kl_estimator"); }
static void get_fine(const Config *c) { (void)config_int(c, "batch_size"); }

TEST(config_getters_abort_on_misuse) {
    Config *c = new_config();
    if (!c) return;
    CHECK(aborts(get_undeclared, c));
    CHECK(aborts(get_wrong_type, c));
    CHECK(aborts(get_unset, c));
    CHECK(aborts(get_enum_as_bool, c));
    CHECK(!aborts(get_fine, c));
    config_free(c);
}

/* ---- ranges (issue 14: every numeric setting has one) -------------------- */

static const CfgKey ranged_keys[] = {
    {.key = "steps", .type = CFG_INT, .def = "10", .help = "h", .range = ">= 1"},
    {.key = "rate", .type = CFG_FLOAT, .def = "0.5", .help = "h", .range = "[0, 1)"},
    {.key = "temp", .type = CFG_FLOAT, .def = "1", .help = "h", .range = "> 0"},
    {.key = "top", .type = CFG_FLOAT, .def = "1", .help = "h", .range = "(0, 1]"},
    {.key = "seed", .type = CFG_INT, .def = "-3", .help = "h", .range = "any"},
    {.key = "width", .type = CFG_INT, .def = NULL, .help = "h", .range = "[2, 8]"},
    {.key = "neg", .type = CFG_FLOAT, .def = "-1", .help = "h", .range = "< 0"},
    {.key = "cap", .type = CFG_INT, .def = "5", .help = "h", .range = "<= 5"},
    {0}};

static Config *new_ranged(void) {
    Config *c = config_new((const CfgKey *const[]){ranged_keys}, 1);
    CHECKF(c != NULL, "config_new: %s", err_msg());
    return c;
}

/* config_set(key, value) from "command line" succeeds (want_ok) or fails
 * with "command line: " + fragment. */
static void expect_set(Config *c, const char *key, const char *value, int want_ok, const char *fragment) {
    err_clear();
    int rc = config_set(c, key, value, "command line");
    CHECKF(want_ok ? rc == 0 : rc == -1, "%s=%s: rc %d (%s)", key, value, rc, err_msg());
    if (!want_ok) CHECK_ERR("command line: ", fragment);
}

TEST(config_range_parse_syntax_and_bounds) {
    CfgRange r;
    char buf[96];
    struct {
        const char *text, *shown;
        double in, out;
    } ok[] = {{"[0, 1)", "in [0, 1)", 0, 1},    {"(0, 1]", "in (0, 1]", 1, 0},   {"[0,1]", "in [0, 1]", 1, -1e-9},
              {"(0, 0.5)", "in (0, 0.5)", 0.25, 0.5}, {">= 1", ">= 1", 1, 0.999}, {"> 0", "> 0", 1e-300, 0},
              {"<= 5", "<= 5", 5, 5.0001}, {"< 0", "< 0", -1e-9, 0},       {" >=-2.5", ">= -2.5", -2.5, -2.6}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        err_clear();
        CHECKF(config_range_parse(ok[i].text, &r) == 0, "'%s': %s", ok[i].text, err_msg());
        config_range_format(&r, buf, sizeof buf);
        CHECKF(streq(buf, ok[i].shown), "'%s' shows as '%s'", ok[i].text, buf);
        CHECKF(config_range_contains(&r, ok[i].in), "'%s' should contain %g", ok[i].text, ok[i].in);
        CHECKF(!config_range_contains(&r, ok[i].out), "'%s' should not contain %g", ok[i].text, ok[i].out);
        CHECK(!config_range_contains(&r, NAN));
    }
    CHECK(config_range_parse("any", &r) == 0 && config_range_contains(&r, -1e300) && config_range_contains(&r, 1e300));
    config_range_format(&r, buf, sizeof buf);
    CHECK(streq(buf, "any"));
    const char *bad[] = {"", "0..1", "[0, 1", "[0 1]", "[1, 0]", "(1, 1]", "[0, 1) x", ">=", "> x", "=> 1", ">= 1 2",
                         "[nan, 1]", "all"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err_clear();
        CHECKF(config_range_parse(bad[i], &r) == -1, "'%s' accepted", bad[i]);
        CHECK_ERR("bad range '", bad[i]);
    }
}

TEST(config_range_checked_on_every_set) {
    Config *c = new_ranged();
    if (!c) return;
    expect_set(c, "steps", "1", 1, NULL);
    expect_set(c, "steps", "0", 0, "steps must be >= 1, got 0");
    expect_set(c, "steps", "-5", 0, "steps must be >= 1, got -5");
    CHECK(config_int(c, "steps") == 1); /* a refused value changes nothing */
    expect_set(c, "rate", "0", 1, NULL);
    expect_set(c, "rate", "0.999", 1, NULL);
    expect_set(c, "rate", "1", 0, "rate must be in [0, 1), got 1");
    expect_set(c, "rate", "-1e-9", 0, "rate must be in [0, 1), got -1e-9");
    expect_set(c, "temp", "0", 0, "temp must be > 0, got 0");
    expect_set(c, "temp", "1e-30", 1, NULL);
    expect_set(c, "top", "0", 0, "top must be in (0, 1], got 0");
    expect_set(c, "top", "1", 1, NULL);
    expect_set(c, "top", "1.5", 0, "top must be in (0, 1], got 1.5");
    expect_set(c, "seed", "-2147483648", 1, NULL);
    expect_set(c, "width", "2", 1, NULL);
    expect_set(c, "width", "8", 1, NULL);
    expect_set(c, "width", "9", 0, "width must be in [2, 8], got 9");
    expect_set(c, "neg", "0", 0, "neg must be < 0, got 0");
    expect_set(c, "cap", "5", 1, NULL);
    expect_set(c, "cap", "6", 0, "cap must be <= 5, got 6");
    expect_set(c, "steps", "x", 0, "'steps' expects an integer, got 'x'"); /* the type comes first */

    /* a file names its line; the command line says so */
    const char *path = harness_tmp_text("range.conf", "steps = 3\n\nrate = 2\n");
    char place[600];
    snprintf(place, sizeof place, "%s:3: ", path);
    err_clear();
    CHECK(config_load_file(c, path) == -1);
    CHECK_ERR(place, "rate must be in [0, 1), got 2");
    int help = 0;
    CHECK(parse(c, &help, 1, "steps=0") == -1);
    CHECK_ERR("command line: ", "steps must be >= 1, got 0");
    CHECK(parse(c, &help, 2, "--steps", "0") == -1);
    CHECK_ERR("command line: ", "steps must be >= 1, got 0");
    config_free(c);
}

TEST(config_range_table_errors) {
    static const CfgKey bad_syntax[] = {{.key = "n", .type = CFG_INT, .def = "1", .help = "h", .range = ">= one"}, {0}};
    static const CfgKey on_string[] = {{.key = "s", .type = CFG_STR, .def = "", .help = "h", .range = ">= 0"}, {0}};
    static const CfgKey on_bool[] = {{.key = "b", .type = CFG_BOOL, .def = "true", .help = "h", .range = "any"}, {0}};
    static const CfgKey def_out[] = {{.key = "n", .type = CFG_INT, .def = "0", .help = "h", .range = ">= 1"}, {0}};
    static const CfgKey def_open[] = {{.key = "p", .type = CFG_FLOAT, .def = "1", .help = "h", .range = "[0, 1)"}, {0}};
    static const CfgKey empty[] = {{.key = "p", .type = CFG_FLOAT, .def = "1", .help = "h", .range = "(1, 1]"}, {0}};
    struct {
        const CfgKey *t;
        const char *fragment;
    } cases[] = {{bad_syntax, "key 'n': bad range '>= one'"},
                 {on_string, "key 's' is a string and cannot have a range"},
                 {on_bool, "key 'b' is a bool and cannot have a range"},
                 {def_out, "default of 'n': n must be >= 1, got 0"},
                 {def_open, "default of 'p': p must be in [0, 1), got 1"},
                 {empty, "the interval is empty"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err_clear();
        Config *c = config_new((const CfgKey *const[]){cases[i].t}, 1);
        CHECKF(c == NULL, "case %zu accepted", i);
        config_free(c);
        CHECK_ERR("config table: ", cases[i].fragment);
    }
}

TEST(config_range_in_help_and_markdown) {
    const CfgKey *const t[] = {ranged_keys};
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    config_help(t, 1, f);
    fclose(f);
    CHECKF(strstr(s, "  steps=INT   h (default: 10; >= 1)\n"), "%s", s);
    CHECK(strstr(s, "  rate=FLOAT  h (default: 0.5; in [0, 1))\n"));
    CHECK(strstr(s, "  width=INT   h (required; in [2, 8])\n"));
    CHECK(strstr(s, "  seed=INT    h (default: -3)\n")); /* "any" is not printed */
    free(s);
    f = open_memstream(&s, &n);
    config_markdown(t, 1, f);
    fclose(f);
    CHECKF(strstr(s, "| `steps` | int | `10` | `>= 1` | h |\n"), "%s", s);
    CHECK(strstr(s, "| `rate` | float | `0.5` | `[0, 1)` | h |\n"));
    CHECK(strstr(s, "| `seed` | int | `-3` | `any` | h |\n"));
    free(s);
}

/* A value read back from a checkpoint on resume passes the same check. */
TEST(config_range_checked_from_checkpoint) {
    Config *c = new_ranged();
    if (!c) return;
    CHECK(config_set(c, "width", "4", "command line") == 0);
    const char *path = harness_tmp_path("cfg-range.h5");
    CHECKF(save_ckpt(path, c, "steps", "0", (const char *)NULL) == 0, "%s", err_msg());
    Ckpt *k = ckpt_open(path);
    CHECKF(k != NULL, "%s", err_msg());
    if (k) {
        Config *d = new_ranged();
        err_clear();
        CHECK(d && ckpt_load_config(k, d, NULL) == -1);
        CHECK_ERR(path, "/config: steps must be >= 1, got 0");
        config_free(d);
        ckpt_close(k);
    }
    config_free(c);
}

/* The rule: every int or float key of every real table declares a range,
 * and every table builds (defaults inside their ranges). */
TEST(config_every_numeric_key_has_a_range) {
    const CfgKey *const all[] = {trainer_keys, lm_pretrain_stage.keys, lm_sft_stage.keys, rm_stage.keys,
                                 dpo_stage.keys, ppo_keys, verifier_keys};
    int numeric = 0;
    for (size_t t = 0; t < sizeof all / sizeof *all; t++) {
        for (const CfgKey *k = all[t]; k->key; k++)
            if (k->type == CFG_INT || k->type == CFG_FLOAT) {
                numeric++;
                CHECKF(k->range != NULL, "key '%s' has no range", k->key);
            }
        const CfgKey *const one[] = {all[t]};
        err_clear();
        Config *c = config_new(t >= 1 && t <= 4 ? (const CfgKey *const[]){trainer_keys, all[t]} : one,
                               t >= 1 && t <= 4 ? 2 : 1);
        CHECKF(c != NULL, "table %zu: %s", t, err_msg());
        config_free(c);
    }
    CHECK(numeric > 50);
}

/* ---- config file lines (issue 14 item 12) -------------------------------- */

/* A line over CFG_MAX_LINE is an error naming file and line; before, a 17 MiB
 * value was read whole and accepted. */
TEST(config_file_line_longer_than_the_cap) {
    Config *c = new_config();
    if (!c) return;
    size_t n = CFG_MAX_LINE + 64;
    char *text = malloc(n + 32);
    int k = snprintf(text, 32, "batch_size = 4\nout_dir = ");
    memset(text + k, 'a', n - (size_t)k);
    memcpy(text + n, "\n", 2);
    const char *path = harness_tmp_path("long.conf");
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(text, 1, n + 1, f) == n + 1);
    if (f) fclose(f);
    free(text);
    char place[600];
    snprintf(place, sizeof place, "%s:2: ", path);
    err_clear();
    CHECK(config_load_file(c, path) == -1);
    CHECK_ERR(place, "line longer than 16777216 bytes");
    CHECK(streq(config_str(c, "out_dir"), "runs/out"));

    /* exactly at the cap is still a line */
    const char *edge = harness_tmp_path("edge.conf");
    f = fopen(edge, "wb");
    if (f) {
        fputs("out_dir = ", f);
        for (size_t i = 10; i < CFG_MAX_LINE; i++) fputc('b', f);
        fclose(f);
    }
    err_clear();
    CHECKF(config_load_file(c, edge) == 0, "%s", err_msg());
    CHECK(strlen(config_str(c, "out_dir")) == CFG_MAX_LINE - 10);
    config_free(c);
}

/* A read error (here: reading a directory's worth of nothing from
 * /proc/self/mem, which fails with EIO) is an error, not the end of file. */
TEST(config_file_read_error_is_an_error) {
    Config *c = new_config();
    if (!c) return;
    err_clear();
    CHECK(config_load_file(c, "/proc/self/mem") == -1);
    CHECK_ERR("/proc/self/mem:1: ", "read error");
    config_free(c);
}
