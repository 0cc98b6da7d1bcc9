/* Tests for common/task/verifier.c, the verifiable rewards: the configuration
 * keys; the final-answer rule, number syntax, matching and format score on
 * crafted responses; hand-derived scores of gold, answer and format (gold
 * also equal to arith_gold over every teacher response); the JSON lines a
 * cmd: program receives (escaping, invalid UTF-8); command-line splitting;
 * and real programs (tests/fixtures/verifiers/): a good one, big batches
 * without pipe deadlock, the per-answer timeout, and every way a program can
 * fail (exit, hang, garbage, too few or too many lines, closed stdout or
 * stdin, no newline, a long line, cannot start), each giving its error in
 * time with the program reaped, its process group gone and no descriptor
 * leaked; no descriptor or ignored signal passed on; killed when its parent
 * dies. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/task/arith.h"
#include "common/task/verifier.h"
#include "tests/harness.h"

/* ---- helpers ------------------------------------------------------------- */

static const char *fixture(const char *name) {
    return harness_join(harness_join(harness_fixtures(), "verifiers"), name);
}

/* Open descriptors of this process. */
static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* Processes of group pgid that have not exited (zombies do not count: an
 * orphan's zombie waits for init, which may never reap it). */
static int group_live(pid_t pgid) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int live = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char path[300], buf[512] = "";
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *close = strrchr(buf, ')'), state = 0;
        long ppid = 0, group = 0;
        if (close && sscanf(close + 1, " %c %ld %ld", &state, &ppid, &group) == 3 && group == pgid)
            live += state != 'Z' && state != 'X';
    }
    closedir(d);
    return live;
}

/* The program is reaped (no zombie: not our child any more) and, within a
 * second (SIGKILL takes a moment), nothing of its process group runs (its
 * own children were killed too). */
static int all_gone(pid_t pid) {
    if (pid <= 0) return 0;
    int reaped = waitpid(pid, NULL, WNOHANG) == -1 && errno == ECHILD;
    double t0 = fs_now();
    while (group_live(pid) != 0 && fs_now() - t0 < 1) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    int gone = group_live(pid) == 0;
    if (!gone) kill(-pid, SIGKILL); /* leave nothing holding our stderr open */
    return reaped && gone;
}

/* A cmd: verifier from a printf-style command line, timeout in seconds. */
static Verifier *open_cmd(double timeout, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static Verifier *open_cmd(double timeout, const char *fmt, ...) {
    char spec[2048] = "cmd:";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(spec + 4, sizeof spec - 4, fmt, ap);
    va_end(ap);
    VerifierOptions o;
    verifier_defaults(&o);
    o.spec = spec;
    o.timeout = timeout;
    err_clear();
    return verifier_new(&o);
}

static Verifier *open_builtin(const char *name, VerifierOptions *o) {
    o->spec = name;
    Verifier *v = verifier_new(o);
    CHECKF(v != NULL, "%s: %s", name, err_msg());
    return v;
}

#define ARITH_PROMPT "Q: 7+5=?\nA:"

/* One sample for a program that needs only something to read. */
static const VerifierSample ONE = {.prompt = ARITH_PROMPT, .response = " 12", .answer = "12"};

/* Scores a batch of n copies of ONE; returns verifier_score's result. */
static int score_copies(Verifier *v, int n, VerifierResult *out) {
    VerifierSample *s = malloc((size_t)n * sizeof *s);
    for (int i = 0; i < n; i++) s[i] = ONE;
    int rc = verifier_score(v, n, s, out);
    free(s);
    return rc;
}

/* A program that must fail: one call of n samples fails within max_s
 * seconds, naming the program (start) and the rest; afterwards the program
 * is gone, later calls fail, and no descriptor is left open. */
static void expect_cmd_error(Verifier *v, int fds_before, int n, double max_s, const char *start, ...) {
    CHECKF(v != NULL, "%s", err_msg());
    if (!v) return;
    VerifierResult r[8];
    pid_t pid = verifier_pid(v);
    double t0 = fs_now();
    err_clear();
    int rc = score_copies(v, n, r);
    double took = fs_now() - t0;
    CHECKF(rc == -1, "succeeded: %s", start);
    CHECKF(took < max_s, "took %.2f s (at most %.2f): %s", took, max_s, err_msg());
    va_list ap;
    va_start(ap, start);
    const char *parts[4] = {0};
    for (int i = 0; i < 4 && (parts[i] = va_arg(ap, const char *)); i++) {}
    va_end(ap);
    CHECK_ERR(start, parts[0], parts[1], parts[2], parts[3]);
    CHECKF(all_gone(pid), "program %ld left behind after: %s", (long)pid, err_msg());
    CHECK(score_copies(v, 1, r) == -1);
    CHECK_ERR("verifier cmd:", "stopped after an earlier error");
    verifier_free(v);
    CHECKF(count_fds() == fds_before, "%d descriptors open, %d before", count_fds(), fds_before);
}

/* ---- configuration keys -------------------------------------------------- */

TEST(verifier_keys_table_builds_with_ranges) {
    const CfgKey *const t[] = {verifier_keys};
    err_clear();
    Config *c = config_new(t, 1);
    CHECKF(c != NULL, "%s", err_msg());
    if (!c) return;
    int n = 0;
    for (const CfgKey *k = verifier_keys; k->key; k++, n++) {
        CHECKF(!strncmp(k->key, "verifier", 8), "key %s is not prefixed", k->key);
        CHECKF(k->help && strlen(k->help) > 10, "key %s has no help", k->key);
        if (k->type == CFG_INT || k->type == CFG_FLOAT) CHECKF(k->range != NULL, "key '%s' has no range", k->key);
    }
    CHECK(n == 8);
    VerifierOptions o, d;
    CHECK(verifier_options_from_config(c, &o) == 0);
    verifier_defaults(&d);
    CHECK(!strcmp(o.spec, "gold") && !strcmp(d.spec, "gold"));
    CHECK(o.timeout == 30 && o.offensive_penalty == 0.5 && o.word_penalty == 0.04 && o.word_cap == 10);
    CHECK(o.format_weight == 0 && o.format_marker == 0 && o.tolerance == 1e-6);
    CHECK(d.timeout == o.timeout && d.word_penalty == o.word_penalty && d.tolerance == o.tolerance);
    /* the defaults are arith's gold score */
    CHECK(o.offensive_penalty == ARITH_W_OFFENSIVE && o.word_penalty == ARITH_W_EXTRA_WORD &&
          o.word_cap == ARITH_EXTRA_WORDS_CAP);
    CHECK(config_set(c, "verifier_timeout", "0", "command line") == -1);
    CHECK_ERR("command line: ", "verifier_timeout must be > 0, got 0");
    CHECK(config_set(c, "verifier_word_cap", "-1", "command line") == -1);
    CHECK_ERR("command line: ", "verifier_word_cap must be >= 0");
    CHECK(config_set(c, "verifier_tolerance", "-1e-3", "command line") == -1);
    CHECK(config_set(c, "verifier", "cmd:/bin/cat", "command line") == 0);
    CHECK(config_set(c, "verifier_timeout", "2.5", "command line") == 0);
    CHECK(config_set(c, "verifier_format_marker", "true", "command line") == 0);
    CHECK(verifier_options_from_config(c, &o) == 0);
    CHECK(!strcmp(o.spec, "cmd:/bin/cat") && o.timeout == 2.5 && o.format_marker == 1);
    CHECK(config_set(c, "verifier", "golden", "command line") == 0); /* a string key: checked here */
    err_clear();
    CHECK(verifier_options_from_config(c, &o) == -1);
    CHECK_ERR("verifier: ", "unknown verifier 'golden'", "gold, answer, format or cmd:PROGRAM ARGS");
    config_free(c);
}

TEST(verifier_spec_check) {
    CHECK(verifier_check_spec("gold") == 0 && verifier_check_spec("answer") == 0 &&
          verifier_check_spec("format") == 0 && verifier_check_spec("cmd:prog a 'b c'") == 0);
    const char *bad[] = {"", "Gold", "gold ", "cmd", "rm"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err_clear();
        CHECKF(verifier_check_spec(bad[i]) == -1, "'%s' accepted", bad[i]);
        CHECK_ERR("verifier: unknown verifier '", bad[i]);
    }
    CHECK(verifier_check_spec("cmd:") == -1);
    CHECK_ERR("verifier: 'cmd:': ", "names no program");
    CHECK(verifier_check_spec("cmd:  prog 'a b") == -1);
    CHECK_ERR("verifier: 'cmd:  prog 'a b': ", "unterminated ' quote");
    VerifierOptions o;
    verifier_defaults(&o);
    o.spec = "nope";
    CHECK(verifier_new(&o) == NULL);
    CHECK_ERR("verifier: unknown verifier 'nope'", "(gold, answer, format or cmd:PROGRAM ARGS)");
    o.spec = "gold";
    o.timeout = 0;
    CHECK(verifier_new(&o) == NULL);
    CHECK_ERR("verifier: verifier_timeout must be > 0, got 0", "");
    verifier_defaults(&o);
    o.word_cap = -1;
    CHECK(verifier_new(&o) == NULL);
    CHECK_ERR("verifier: ", ">= 0");
    verifier_defaults(&o);
    Verifier *v = verifier_new(&o);
    CHECK(v && !strcmp(verifier_name(v), "gold") && verifier_pid(v) == -1);
    verifier_free(v);
    verifier_free(NULL);
}

/* ---- command lines ------------------------------------------------------- */

/* text splits into the words of want (NULL-terminated). */
static void check_split(const char *text, const char *const *want) {
    char **argv;
    int argc, n = 0;
    err_clear();
    CHECKF(verifier_split_command(text, &argv, &argc) == 0, "%s: %s", text, err_msg());
    while (want[n]) n++;
    CHECKF(argc == n, "%s: %d words, want %d", text, argc, n);
    for (int i = 0; i < n && i < argc; i++)
        CHECKF(!strcmp(argv[i], want[i]), "%s: word %d is [%s], want [%s]", text, i, argv[i], want[i]);
    if (argc == n) CHECK(argv[n] == NULL);
    verifier_free_argv(argv);
}

TEST(verifier_split_command_like_a_shell) {
    check_split("prog", (const char *[]){"prog", NULL});
    check_split("  /usr/bin/python3\tcheck.py  --n 3 ",
                (const char *[]){"/usr/bin/python3", "check.py", "--n", "3", NULL});
    check_split("sh -c 'echo \"$x\" | cat'", (const char *[]){"sh", "-c", "echo \"$x\" | cat", NULL});
    check_split("a \"b c\" d\\ e 'f''g' \"h\"i", (const char *[]){"a", "b c", "d e", "fg", "hi", NULL});
    check_split("\"q\\\"uote\\\\ \\$HOME \\n\"", (const char *[]){"q\"uote\\ $HOME \\n", NULL});
    check_split("x '' \"\" y", (const char *[]){"x", "", "", "y", NULL});
    check_split("a\nb 'c\nd'", (const char *[]){"a", "b", "c\nd", NULL});
    check_split("'it'\\''s'", (const char *[]){"it's", NULL});
    char **argv = (char **)1;
    int argc = 7;
    const char *bad[][2] = {{"", "names no program"}, {"  \t ", "names no program"}, {"a 'b", "unterminated ' quote"},
                            {"a \"b", "unterminated \" quote"}, {"a b\\", "trailing backslash"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err_clear();
        CHECKF(verifier_split_command(bad[i][0], &argv, &argc) == -1, "[%s] accepted", bad[i][0]);
        CHECK_ERR(bad[i][1], "");
        CHECK(argv == NULL && argc == 0);
    }
}

/* ---- the final answer ---------------------------------------------------- */

/* response's final answer is text by rule (text NULL: none). */
static void check_extract(const char *response, VerifierRule rule, const char *text) {
    VerifierAnswer a;
    int found = verifier_extract_answer(response, &a);
    CHECKF(found == (text != NULL) && a.rule == rule, "[%s]: found %d rule %d, want rule %d", response, found, a.rule,
           rule);
    if (!text || !found) return;
    CHECKF(a.len == strlen(text) && !strncmp(response + a.start, text, a.len), "[%s]: answer [%.*s], want [%s]",
           response, (int)a.len, response + a.start, text);
}

TEST(verifier_answer_extraction_rule) {
    check_extract("", VERIFIER_RULE_NONE, NULL);
    check_extract(NULL, VERIFIER_RULE_NONE, NULL);
    check_extract("no number here, twelve.", VERIFIER_RULE_NONE, NULL);
    /* the last number */
    check_extract(" 12", VERIFIER_RULE_NUMBER, "12");
    check_extract("7+5 is 12, not 13", VERIFIER_RULE_NUMBER, "13");
    check_extract("x = -3", VERIFIER_RULE_NUMBER, "-3");
    check_extract("-3", VERIFIER_RULE_NUMBER, "-3");
    check_extract("5-3", VERIFIER_RULE_NUMBER, "3");   /* a minus after a digit is not a sign */
    check_extract("a-3", VERIFIER_RULE_NUMBER, "3");   /* ... nor after a letter */
    check_extract("it is \xe2\x88\x92" "4", VERIFIER_RULE_NUMBER, "\xe2\x88\x92" "4"); /* U+2212 */
    check_extract("pi is 3.14.", VERIFIER_RULE_NUMBER, "3.14");
    check_extract("it costs .5 now", VERIFIER_RULE_NUMBER, ".5");
    check_extract("-0.25", VERIFIER_RULE_NUMBER, "-0.25");
    check_extract("1,234,567 people", VERIFIER_RULE_NUMBER, "1,234,567");
    check_extract("1,2,3", VERIFIER_RULE_NUMBER, "3");
    check_extract("12,3456", VERIFIER_RULE_NUMBER, "3456");
    check_extract("version 1.2.3", VERIFIER_RULE_NUMBER, "3");
    check_extract("1e5", VERIFIER_RULE_NUMBER, "5");
    check_extract("3/4", VERIFIER_RULE_NUMBER, "4");
    check_extract("2 apples and 10 pears\nso 12 fruit.", VERIFIER_RULE_NUMBER, "12");
    /* \boxed{} first, the last one, braces balanced */
    check_extract("so \\boxed{42} and 7", VERIFIER_RULE_BOXED, "42");
    check_extract("\\boxed{1} then \\boxed{\\frac{1}{2}}", VERIFIER_RULE_BOXED, "\\frac{1}{2}");
    check_extract("\\boxed{ 6. } then 7", VERIFIER_RULE_BOXED, "6");
    check_extract("#### 5 \\boxed{6}", VERIFIER_RULE_BOXED, "6");
    check_extract("\\boxed{5", VERIFIER_RULE_NUMBER, "5"); /* not closed */
    check_extract("\\boxed{} 3", VERIFIER_RULE_NUMBER, "3");  /* empty */
    /* then ####, then answer: (any case); the rest of that line */
    check_extract("step 1\n#### 72\n", VERIFIER_RULE_HASHES, "72");
    check_extract("#### 1 then\n#### $1,234.  \nbye 9", VERIFIER_RULE_HASHES, "$1,234");
    check_extract("#### 3\nanswer: 4", VERIFIER_RULE_HASHES, "3");
    check_extract("####\n7", VERIFIER_RULE_NUMBER, "7"); /* nothing after the mark */
    check_extract("Answer: Paris.", VERIFIER_RULE_MARKED, "Paris");
    check_extract("the ANSWER:4\nchecking 5", VERIFIER_RULE_MARKED, "4");
    check_extract("answer: 1, final answer: 2", VERIFIER_RULE_MARKED, "2");
}

TEST(verifier_number_syntax) {
    struct {
        const char *s;
        int ok;
        double v;
    } cases[] = {
        {"42", 1, 42},       {" -3.5 ", 1, -3.5},       {"1,234", 1, 1234},  {"1,234,567.5", 1, 1234567.5},
        {".5", 1, 0.5},      {"\xe2\x88\x92" "2", 1, -2}, {"0", 1, 0},       {"007", 1, 7},
        {"1e5", 0, 0},       {"12abc", 0, 0},           {"", 0, 0},          {"- 3", 0, 0},
        {"3.", 0, 0},        {"+5", 0, 0},              {"1,23", 0, 0},      {"1 2", 0, 0},
        {"abc", 0, 0},       {"--3", 0, 0},             {"1.2.3", 0, 0},     {"x1", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double v = -999;
        int ok = verifier_parse_number(cases[i].s, strlen(cases[i].s), &v);
        CHECKF(ok == cases[i].ok, "[%s]: %d", cases[i].s, ok);
        if (ok && cases[i].ok) CHECKF(v == cases[i].v, "[%s]: %g, want %g", cases[i].s, v, cases[i].v);
    }
    double v;
    CHECK(verifier_parse_number("12 apples", 2, &v) == 1 && v == 12); /* only len bytes */
}

static int matches(const char *response, const char *answer, double tol) {
    VerifierAnswer a;
    verifier_extract_answer(response, &a);
    return verifier_answer_match(response, &a, answer, tol);
}

TEST(verifier_answer_matching) {
    CHECK(matches(" 12", "12", 1e-6) && matches(" 12", "12.0", 1e-6) && !matches(" 12", "13", 1e-6));
    CHECK(matches("#### $1,234.", "1234", 0) && matches("1234", "1,234", 0));
    CHECK(matches("x = -3", "-3", 0) && !matches("x = -3", "3", 0) && !matches("5-3", "-3", 0));
    CHECK(matches("0.1 + 0.2 = 0.30000000000000004", "0.3", 1e-6));
    CHECK(!matches("0.1 + 0.2 = 0.30000000000000004", "0.3", 0));
    /* tolerance relative to max(1, |answer|) */
    CHECK(matches("1000001", "1000000", 1e-6) && !matches("1000002", "1000000", 1e-6));
    CHECK(!matches("1000001", "1000000", 1e-7));
    CHECK(matches("0.0000005", "0", 1e-6) && !matches("0.000002", "0", 1e-6));
    /* numeric answers take the first number of a marked text */
    CHECK(matches("answer: 5 (from 2+3)", "5", 0) && matches("#### 42 apples", "42", 0));
    CHECK(!matches("\\boxed{\\frac{1}{2}}", "0.5", 1e-6)); /* fractions are not evaluated */
    CHECK(matches("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", 0));
    /* other answers: exact text, trimmed of spaces and one '.' */
    CHECK(matches("Answer: Paris.", "Paris", 0) && matches("Answer: Paris", " Paris. ", 0));
    CHECK(!matches("Answer: Paris", "paris", 0) && !matches("Answer: Paris, France", "Paris", 0));
    CHECK(!matches("nothing here", "5", 1) && !matches("", "", 0));
    VerifierAnswer a;
    verifier_extract_answer(" 12", &a);
    CHECK(!verifier_answer_match(" 12", &a, NULL, 0) && !verifier_answer_match(NULL, &a, "12", 0));
}

/* ---- the format score ---------------------------------------------------- */

TEST(verifier_format_rule) {
    struct {
        const char *r;
        int bare, marked; /* score with format_marker 0, 1 */
    } cases[] = {
        {" 12", 1, 0},
        {" -3", 1, 0},
        {"12.\n", 1, 0},
        {"1,234", 1, 0},
        {" Ugh, 12.", 0, 0},
        {" The answer is 12.", 0, 0},
        {"12 apples", 0, 0},
        {"work\n#### 72", 1, 1},
        {"work\n#### 72\n\n  \n", 1, 1},
        {"#### ", 0, 0},
        {"#### 72\nthanks", 0, 0},
        {"Answer: 5", 1, 1},
        {"  FINAL ANSWER: five", 1, 1},
        {"answer:", 0, 0},
        {"so it is \\boxed{5}.", 1, 1},
        {"$\\boxed{x^{2}}$", 1, 1},
        {"\\boxed{}", 0, 0},
        {"\\boxed{5} done", 0, 0},
        {"{5}", 0, 0},
        {"", 0, 0},
        {"\n\n", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECKF(verifier_format_score(cases[i].r, 0) == cases[i].bare, "[%s] unmarked", cases[i].r);
        CHECKF(verifier_format_score(cases[i].r, 1) == cases[i].marked, "[%s] marked", cases[i].r);
    }
    CHECK(verifier_format_score(NULL, 0) == 0);
}

/* ---- the built-in verifiers ---------------------------------------------- */

static void check_result(const VerifierResult *r, double score, double correct, double format, double manners,
                         double concision, const char *what) {
    CHECKF(fabs(r->score - score) < 1e-12, "%s: score %.17g, want %g", what, r->score, score);
    CHECKF(r->comp[VERIFIER_CORRECT] == correct && r->comp[VERIFIER_FORMAT] == format, "%s: correct %g format %g",
           what, r->comp[VERIFIER_CORRECT], r->comp[VERIFIER_FORMAT]);
    CHECKF(fabs(r->comp[VERIFIER_MANNERS] - manners) < 1e-12 && fabs(r->comp[VERIFIER_CONCISION] - concision) < 1e-12,
           "%s: manners %g concision %g", what, r->comp[VERIFIER_MANNERS], r->comp[VERIFIER_CONCISION]);
}

TEST(verifier_gold_hand_scores) {
    VerifierOptions o;
    verifier_defaults(&o);
    Verifier *v = open_builtin("gold", &o);
    if (!v) return;
    CHECK(verifier_components(v) == 15);
    const VerifierSample s[] = {
        {.prompt = ARITH_PROMPT, .response = " 12"},
        {.prompt = ARITH_PROMPT, .response = " Ugh, 12."},           /* 1 - 0.5 - 0.04*1 */
        {.prompt = ARITH_PROMPT, .response = " The answer is 13."},  /* 0 - 0.04*3 */
        {.prompt = ARITH_PROMPT, .response = " Well, let me think. It is 12, I believe."}, /* 1 - 0.04*8 */
        {.prompt = ARITH_PROMPT, .response = ""},                    /* no answer, no words */
        {.prompt = ARITH_PROMPT, .response = " 12 a b c d e f g h i j k l"}, /* 12 extra, capped at 10 */
        {.prompt = ARITH_PROMPT, .response = NULL},
    };
    VerifierResult r[7];
    CHECKF(verifier_score(v, 7, s, r) == 0, "%s", err_msg());
    check_result(&r[0], 1, 1, 1, 0, 0, "ideal");
    check_result(&r[1], 0.46, 1, 0, -0.5, -0.04, "rude");
    check_result(&r[2], -0.12, 0, 0, 0, -0.12, "wrong and wordy");
    check_result(&r[3], 0.68, 1, 0, 0, -0.32, "rambling");
    check_result(&r[4], 0, 0, 0, 0, 0, "empty");
    check_result(&r[5], 0.6, 1, 0, 0, -0.4, "capped");
    check_result(&r[6], 0, 0, 0, 0, 0, "NULL response");
    CHECK(!signbit(r[0].comp[VERIFIER_MANNERS]) && !signbit(r[0].comp[VERIFIER_CONCISION])); /* no -0 in logs */
    verifier_free(v);

    /* the knobs: correctness alone, a cap of 5, the format score added */
    o.offensive_penalty = 0;
    o.word_penalty = 0;
    o.format_weight = 0.5;
    v = open_builtin("gold", &o);
    if (!v) return;
    CHECK(verifier_score(v, 3, s, r) == 0);
    check_result(&r[0], 1.5, 1, 1, 0, 0, "ideal, format 0.5");
    check_result(&r[1], 1, 1, 0, 0, 0, "rude, no penalties");
    check_result(&r[2], 0, 0, 0, 0, 0, "wrong, no penalties");
    CHECK(!signbit(r[2].comp[VERIFIER_CONCISION]));
    verifier_free(v);
    verifier_defaults(&o);
    o.word_cap = 5;
    v = open_builtin("gold", &o);
    if (!v) return;
    CHECK(verifier_score(v, 1, &s[5], r) == 0);
    check_result(&r[0], 0.8, 1, 0, 0, -0.2, "cap 5");
    /* a prompt that is not the arith task's */
    VerifierSample foreign[2] = {s[0], {.prompt = "What is 7+5?", .response = " 12"}};
    err_clear();
    CHECK(verifier_score(v, 2, foreign, r) == -1);
    CHECK_ERR("verifier gold: sample 2 of 2: ", "arith: prompt \"What is 7+5?\"");
    verifier_free(v);
}

/* With the defaults gold is arith_gold, to the bit, on every teacher response. */
TEST(verifier_gold_is_arith_gold) {
    VerifierOptions o;
    verifier_defaults(&o);
    Verifier *v = open_builtin("gold", &o);
    if (!v) return;
    int n = 0, same = 0;
    for (int a = 0; a <= 12; a += 3)
        for (int op = 0; op < 2; op++) {
            char prompt[ARITH_PROMPT_MAX];
            arith_format_prompt(a, op ? '-' : '+', 4, prompt, sizeof prompt);
            for (int style = 0; style < ARITH_NSTYLES; style++)
                for (int t = 0; t < arith_n_templates((ArithStyle)style); t++)
                    for (int off = -1; off <= 1; off++) {
                        char *resp = arith_render((ArithStyle)style, t, arith_answer(a, op ? '-' : '+', 4) + off);
                        VerifierSample s = {.prompt = prompt, .response = resp};
                        VerifierResult r;
                        n++;
                        same += verifier_score(v, 1, &s, &r) == 0 && r.score == arith_gold(prompt, resp, NULL);
                        free(resp);
                    }
        }
    CHECKF(same == n && n > 100, "%d of %d equal", same, n);
    verifier_free(v);
}

TEST(verifier_answer_and_format_scores) {
    VerifierOptions o;
    verifier_defaults(&o);
    Verifier *v = open_builtin("answer", &o);
    if (!v) return;
    CHECK(verifier_components(v) == 3 && !strcmp(verifier_name(v), "answer"));
    const VerifierSample s[] = {
        {.prompt = "6*7?", .response = "so 6*7 = 42", .answer = "42"},
        {.prompt = "6*7?", .response = "I think\n#### 41", .answer = "42"},
        {.prompt = "6*7?", .response = "I think\n#### 42", .answer = "42.0"},
        {.prompt = "capital?", .response = "Answer: Paris.", .answer = "Paris"},
    };
    VerifierResult r[4];
    CHECK(verifier_score(v, 4, s, r) == 0);
    check_result(&r[0], 1, 1, 0, 0, 0, "last number");
    check_result(&r[1], 0, 0, 1, 0, 0, "wrong, formatted");
    check_result(&r[2], 1, 1, 1, 0, 0, "numeric match");
    check_result(&r[3], 1, 1, 1, 0, 0, "text match");
    verifier_free(v);
    o.format_weight = 0.25;
    v = open_builtin("answer", &o);
    if (!v) return;
    CHECK(verifier_score(v, 4, s, r) == 0);
    check_result(&r[0], 1, 1, 0, 0, 0, "last number, weighted");
    check_result(&r[1], 0.25, 0, 1, 0, 0, "wrong, weighted format");
    check_result(&r[2], 1.25, 1, 1, 0, 0, "right, weighted format");
    VerifierSample none[2] = {s[0], {.prompt = "p", .response = "1"}};
    err_clear();
    CHECK(verifier_score(v, 2, none, r) == -1);
    CHECK_ERR("verifier answer: sample 2 of 2: ", "no \"answer\"", "{\"prompt\", \"answer\"}");
    verifier_free(v);

    verifier_defaults(&o);
    v = open_builtin("format", &o);
    if (!v) return;
    CHECK(verifier_components(v) == 2);
    const VerifierSample f[] = {{.prompt = "x", .response = " 12"}, {.prompt = "x", .response = " Ugh, 12."}};
    CHECK(verifier_score(v, 2, f, r) == 0);
    check_result(&r[0], 1, 0, 1, 0, 0, "formatted");
    check_result(&r[1], 0, 0, 0, 0, 0, "not formatted");
    verifier_free(v);
    o.format_marker = 1;
    v = open_builtin("format", &o);
    CHECK(v && verifier_score(v, 1, f, r) == 0 && r[0].score == 0);
    verifier_free(v);
    CHECK(!strcmp(verifier_comp_name(VERIFIER_CORRECT), "correct") &&
          !strcmp(verifier_comp_name(VERIFIER_CONCISION), "concision") &&
          !strcmp(verifier_comp_name(VERIFIER_NCOMP), "?"));
}

/* ---- JSON lines ---------------------------------------------------------- */

TEST(verifier_json_line_escaping) {
    VerifierSample s = {.prompt = "Q: \"hi\"\\ \n", .response = "a\xff\xfe b\t\x01", .answer = NULL};
    char *line = verifier_json_line(&s);
    const char *want = "{\"prompt\":\"Q: \\\"hi\\\"\\\\ \\n\",\"response\":\"a\xEF\xBF\xBD\xEF\xBF\xBD b\\t\\u0001\","
                       "\"answer\":null}";
    CHECKF(!strcmp(line, want), "got  %s\nwant %s", line, want);
    free(line);
    /* valid UTF-8 kept, each byte of a broken or forbidden sequence replaced */
    VerifierSample u = {.prompt = "\xe2\x82\xac \xe2\x82",
                        .response = "\xed\xa0\x80|\xc0\xaf|\xf0\x9f\x98\x80|\xff\x80\x80",
                        .answer = "4\xc0"};
    line = verifier_json_line(&u);
    json_error_t e;
    json_t *o = json_loads(line, 0, &e);
    CHECKF(o != NULL, "not JSON: %s: %s", e.text, line);
    if (o) {
        const char *p = json_string_value(json_object_get(o, "prompt"));
        const char *r = json_string_value(json_object_get(o, "response"));
        const char *a = json_string_value(json_object_get(o, "answer"));
        CHECK(p && !strcmp(p, "\xe2\x82\xac \xEF\xBF\xBD\xEF\xBF\xBD"));
        CHECK(r && !strcmp(r, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD|\xf0\x9f\x98\x80|"
                              "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
        CHECK(a && !strcmp(a, "4\xEF\xBF\xBD"));
        CHECK(json_object_size(o) == 3);
        json_decref(o);
    }
    CHECK(!strchr(line, '\n'));
    free(line);
    VerifierSample empty = {0};
    line = verifier_json_line(&empty);
    CHECK(!strcmp(line, "{\"prompt\":\"\",\"response\":\"\",\"answer\":null}"));
    free(line);
}

/* ---- external programs: working ones ------------------------------------- */

TEST(verifier_cmd_good_program) {
    int fds = count_fds();
    Verifier *v = open_cmd(5, "/usr/bin/python3 '%s'", fixture("good.py"));
    CHECKF(v != NULL, "%s", err_msg());
    if (!v) return;
    pid_t pid = verifier_pid(v);
    CHECK(pid > 0 && kill(pid, 0) == 0 && verifier_components(v) == 0);
    CHECK(!strncmp(verifier_name(v), "cmd:/usr/bin/python3", 20));
    const VerifierSample s[] = {
        {.prompt = "p", .response = "it is 42", .answer = "42"},
        {.prompt = "p", .response = "it is 41", .answer = "42"},
        {.prompt = "p\n\"q\"", .response = "line\nbreak \"42\" \\", .answer = "\"42\" \\"},
        {.prompt = "p", .response = "no answer", .answer = NULL},
    };
    VerifierResult r[4];
    for (int round = 0; round < 3; round++) {
        err_clear();
        CHECKF(verifier_score(v, 4, s, r) == 0, "round %d: %s", round, err_msg());
        CHECK(r[0].score == 1 && r[1].score == 0 && r[2].score == 1 && r[3].score == 0);
        CHECK(r[0].comp[VERIFIER_CORRECT] == 0);
    }
    CHECK(verifier_score(v, 0, s, r) == 0);
    CHECK(verifier_score(v, 1, &s[2], r) == 0 && r[0].score == 1);
    double t0 = fs_now();
    verifier_free(v); /* end of input: it exits by itself, or is killed after the grace time */
    CHECKF(fs_now() - t0 < 1.0, "free took %.3f s", fs_now() - t0);
    CHECK(all_gone(pid));
    CHECK(count_fds() == fds);
}

/* Found through PATH, started through its #! line. */
TEST(verifier_cmd_path_and_shebang) {
    const char *dir = harness_join(harness_fixtures(), "verifiers");
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    char path[4096];
    snprintf(path, sizeof path, "/nonexistent:%s:%s", dir, old ? old : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    Verifier *v = open_cmd(5, "good.py");
    if (old) setenv("PATH", old, 1);
    free(old);
    CHECKF(v != NULL, "%s", err_msg());
    VerifierResult r;
    CHECK(v && verifier_score(v, 1, &ONE, &r) == 0 && r.score == 1);
    verifier_free(v);
    v = open_cmd(5, "'%s'", fixture("good.py"));
    CHECK(v && verifier_score(v, 1, &ONE, &r) == 0 && r.score == 1);
    verifier_free(v);
}

/* Each field arrives as it was sent, invalid UTF-8 as U+FFFD, one line per
 * sample whatever the text holds. */
TEST(verifier_cmd_receives_escaped_fields) {
    const VerifierSample s[] = {
        {.prompt = "\xc3\xa9", .response = "a\xff" "b", .answer = NULL},
        {.prompt = "x\ny", .response = "tab\there\nand \"quotes\" \\ \x01", .answer = "\xe2\x82"},
        {.prompt = "", .response = "", .answer = ""},
    };
    VerifierResult r[3];
    const char *field[] = {"prompt", "response", "answer"};
    double want[3][3] = {{1, 3, 0}, {3, 25, 0}, {-1, 2, 0}}; /* [field][sample] */
    for (int f = 0; f < 3; f++) {
        Verifier *v = open_cmd(5, "/usr/bin/python3 %s %s", fixture("fields.py"), field[f]);
        CHECKF(v != NULL, "%s", err_msg());
        if (!v) continue;
        err_clear();
        CHECKF(verifier_score(v, 3, s, r) == 0, "%s: %s", field[f], err_msg());
        for (int i = 0; i < 3; i++)
            CHECKF(r[i].score == want[f][i], "%s of sample %d: %g, want %g", field[f], i, r[i].score, want[f][i]);
        verifier_free(v);
    }
}

/* 50000 samples: its answers fill the output pipe long before we have
 * written the input; writing everything first would deadlock. */
TEST(verifier_cmd_big_batch_no_deadlock) {
    int n = 50000;
    VerifierSample *s = malloc((size_t)n * sizeof *s);
    VerifierResult *r = malloc((size_t)n * sizeof *r);
    char resp[2][64] = {"the answer is 42", "the answer is 41"};
    for (int i = 0; i < n; i++) s[i] = (VerifierSample){.prompt = "p", .response = resp[i % 2], .answer = "42"};
    Verifier *v = open_cmd(10, "/usr/bin/python3 %s", fixture("good.py"));
    CHECKF(v != NULL, "%s", err_msg());
    if (v) {
        err_clear();
        CHECKF(verifier_score(v, n, s, r) == 0, "%s", err_msg());
        int ok = 1;
        for (int i = 0; i < n; i++) ok &= r[i].score == (i % 2 == 0);
        CHECK(ok);
    }
    verifier_free(v);
    free(s);
    free(r);
}

/* The timeout is per answer: 5 answers 0.3 s apart take 1.5 s, over a 1 s
 * timeout, and succeed. */
TEST(verifier_cmd_timeout_is_per_answer) {
    Verifier *v = open_cmd(1, "/bin/sh %s 0.3", fixture("slow.sh"));
    VerifierResult r[5];
    double t0 = fs_now();
    CHECKF(v && score_copies(v, 5, r) == 0, "%s", err_msg());
    CHECK(fs_now() - t0 > 1.2);
    verifier_free(v);
}

TEST(verifier_cmd_accepts_number_forms) {
    const char *forms[][2] = {{"  -1.5e2 ", "-150"}, {"+2", "2"}, {"0.25", "0.25"}, {".5", "0.5"}, {"7.", "7"},
                              {"1E-3", "0.001"},     {"1e-999", "0"}};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        Verifier *v = open_cmd(5, "/bin/sh %s '%s'", fixture("reply.sh"), forms[i][0]);
        VerifierResult r[2];
        err_clear();
        CHECKF(v && score_copies(v, 2, r) == 0, "[%s]: %s", forms[i][0], err_msg());
        if (v)
            CHECKF(r[0].score == atof(forms[i][1]) && r[1].score == r[0].score, "[%s]: %g", forms[i][0], r[0].score);
        verifier_free(v);
    }
}

/* A descriptor of ours without O_CLOEXEC and an ignored SIGPIPE stay here. */
TEST(verifier_cmd_inherits_no_fd_nor_ignored_signal) {
    int p[2];
    CHECK(pipe(p) == 0); /* no O_CLOEXEC: a careless child would keep them */
    Verifier *v = open_cmd(5, "/usr/bin/python3 %s", fixture("fds.py"));
    VerifierResult r;
    CHECKF(v && verifier_score(v, 1, &ONE, &r) == 0, "%s", err_msg());
    if (v) CHECKF(r.score == 0, "the program holds %g descriptors above 2", r.score);
    verifier_free(v);
    close(p[0]);
    close(p[1]);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    v = open_cmd(5, "/bin/sh %s", fixture("sigign.sh"));
    sigaction(SIGPIPE, &old, NULL);
    CHECKF(v && verifier_score(v, 1, &ONE, &r) == 0, "%s", err_msg());
    if (v) CHECKF(r.score == 0, "the program started with a signal ignored");
    verifier_free(v);
}

/* ---- external programs: failing ones ------------------------------------- */

TEST(verifier_cmd_program_exits) {
    int fds = count_fds();
    Verifier *v = open_cmd(5, "/bin/sh %s", fixture("exit_after_one.sh"));
    expect_cmd_error(v, fds, 2, 1.5, "verifier cmd:/bin/sh ", "exit_after_one.sh: exited with status 3",
                     "before answering line 2 (sample 2 of 2)", NULL);
    /* a program that answers two batches, then exits, is named at line 3 */
    v = open_cmd(5, "/bin/sh -c 'read a; echo 1; read b; echo 2; exit 0'");
    VerifierResult r[2];
    CHECK(v && score_copies(v, 1, r) == 0 && r[0].score == 1);
    CHECK(v && score_copies(v, 1, r) == 0 && r[0].score == 2);
    expect_cmd_error(v, fds, 2, 1.5, "verifier cmd:/bin/sh -c ", "exited with status 0",
                     "before answering line 3 (sample 1 of 2)", NULL);
    v = open_cmd(5, "/bin/sh -c 'kill -9 $$'");
    expect_cmd_error(v, fds, 1, 1.5, "verifier cmd:", "was killed by signal 9", "line 1 (sample 1 of 1)", NULL);
}

TEST(verifier_cmd_program_hangs) {
    int fds = count_fds();
    Verifier *v = open_cmd(1, "/bin/sh %s", fixture("hang.sh"));
    double t0 = fs_now();
    expect_cmd_error(v, fds, 3, 3.0, "verifier cmd:", "hang.sh: no answer to line 1 (sample 1 of 3)",
                     "within verifier_timeout = 1 s", NULL);
    CHECKF(fs_now() - t0 >= 1.0, "gave up after %.2f s, before the timeout", fs_now() - t0);
}

TEST(verifier_cmd_program_prints_garbage) {
    int fds = count_fds();
    const char *bad[][2] = {{"abc", "'abc', not a number"},        {"nan", "'nan', not a finite number"},
                            {"-inf", "'-inf', not a finite number"}, {"1e999", "'1e999', not a finite number"},
                            {"", "'', not a number"},              {"0x10", "'0x10', not a number"},
                            {"1 2", "'1 2', not a number"},        {"1,5", "'1,5', not a number"},
                            {"1e", "'1e', not a number"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Verifier *v = open_cmd(5, "/bin/sh %s '%s'", fixture("reply.sh"), bad[i][0]);
        expect_cmd_error(v, fds, 2, 1.5, "verifier cmd:", "reply.sh", "line 1 (sample 1 of 2) of its output is ",
                         bad[i][1], NULL);
    }
    /* after a good first batch the line is counted over the program's run */
    Verifier *v = open_cmd(5, "/bin/sh -c 'read a; echo 1; read b; echo 2; read c; echo oops'");
    VerifierResult r[2];
    CHECK(v && score_copies(v, 2, r) == 0);
    expect_cmd_error(v, fds, 1, 1.5, "verifier cmd:", "line 3 (sample 1 of 1) of its output is 'oops'", NULL);
}

TEST(verifier_cmd_program_prints_too_few_or_too_many) {
    int fds = count_fds();
    Verifier *v = open_cmd(1, "/bin/sh %s", fixture("too_few.sh"));
    expect_cmd_error(v, fds, 2, 3.0, "verifier cmd:", "too_few.sh: no answer to line 2 (sample 2 of 2)", NULL);
    /* two answers per line: seen at the end of this call or the start of the next */
    v = open_cmd(5, "/bin/sh %s", fixture("too_many.sh"));
    VerifierResult r[2];
    pid_t pid = v ? verifier_pid(v) : -1;
    err_clear();
    int rc = v ? score_copies(v, 1, r) : -1;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    if (rc == 0) rc = score_copies(v, 1, r);
    CHECK(rc == -1);
    CHECK_ERR("verifier cmd:", "too_many.sh: printed more lines than it was sent");
    CHECK(all_gone(pid));
    verifier_free(v);
    CHECK(count_fds() == fds);
    /* all 3000 answers after reading one line, its input still unsent */
    v = open_cmd(5, "/bin/sh -c 'read a; yes 1 | head -n 3000; exec sleep 1000'");
    int n = 3000;
    VerifierSample *big = malloc((size_t)n * sizeof *big);
    VerifierResult *out = malloc((size_t)n * sizeof *out);
    char text[200];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = 0;
    for (int i = 0; i < n; i++) big[i] = (VerifierSample){.prompt = "p", .response = text};
    pid = v ? verifier_pid(v) : -1;
    err_clear();
    CHECK(v && verifier_score(v, n, big, out) == -1);
    CHECK_ERR("verifier cmd:", "printed more lines than it was sent: 3000 lines of output after ", "lines of input");
    CHECK(all_gone(pid));
    free(big);
    free(out);
    verifier_free(v);
    CHECK(count_fds() == fds);
}

TEST(verifier_cmd_program_closes_its_pipes) {
    int fds = count_fds();
    Verifier *v = open_cmd(5, "/bin/sh %s", fixture("close_stdout.sh"));
    expect_cmd_error(v, fds, 1, 1.5, "verifier cmd:", "close_stdout.sh: closed its output",
                     "before answering line 1 (sample 1 of 1)", NULL);
    /* stopped reading: more than a pipe holds is sent, so the write meets
     * the closed pipe: EPIPE, and SIGPIPE must not end this process */
    v = open_cmd(5, "/bin/sh %s", fixture("close_stdin.sh"));
    int n = 2000;
    VerifierSample *s = malloc((size_t)n * sizeof *s);
    VerifierResult *r = malloc((size_t)n * sizeof *r);
    char text[200];
    memset(text, 'y', sizeof text - 1);
    text[sizeof text - 1] = 0;
    for (int i = 0; i < n; i++) s[i] = (VerifierSample){.prompt = "p", .response = text};
    pid_t pid = v ? verifier_pid(v) : -1;
    err_clear();
    double t0 = fs_now();
    CHECK(v && verifier_score(v, n, s, r) == -1);
    CHECK(fs_now() - t0 < 1.5);
    CHECK_ERR("verifier cmd:", "close_stdin.sh: stopped reading its input",
              "before answering line 1 (sample 1 of 2000)");
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGPIPE));
    CHECK(all_gone(pid));
    verifier_free(v);
    CHECK(count_fds() == fds);
    free(s);
    free(r);
}

TEST(verifier_cmd_program_line_without_newline_or_too_long) {
    int fds = count_fds();
    Verifier *v = open_cmd(5, "/bin/sh %s", fixture("no_newline.sh"));
    expect_cmd_error(v, fds, 1, 1.5, "verifier cmd:", "exited with status 0 before answering line 1",
                     "its last output '1' has no newline", NULL);
    v = open_cmd(5, "/bin/sh %s", fixture("long_line.sh"));
    expect_cmd_error(v, fds, 1, 1.5, "verifier cmd:",
                     "line 1 (sample 1 of 1) of its output is longer than 4096 bytes", NULL);
}

TEST(verifier_cmd_program_cannot_start) {
    int fds = count_fds();
    const char *noexec = harness_tmp_text("verifier-noexec.sh", "#!/bin/sh\necho 1\n");
    const char *noshebang = harness_tmp_text("verifier-noshebang", "echo 1\n");
    chmod(noshebang, 0755);
    struct {
        char spec[600];
        const char *start, *part;
    } cases[] = {
        {"cmd:/nonexistent/prog -x", "verifier cmd:/nonexistent/prog -x: ",
         "cannot run /nonexistent/prog: No such file or directory"},
        {"cmd:rlhf-no-such-verifier", "verifier cmd:rlhf-no-such-verifier: ",
         "rlhf-no-such-verifier: not found on PATH"},
        {"", "verifier cmd:", "Permission denied"},
        {"", "verifier cmd:", "Exec format error (a script needs a #! line)"},
        {"", "verifier cmd:", "Permission denied"},
    };
    snprintf(cases[2].spec, sizeof cases[2].spec, "cmd:%s", noexec);
    snprintf(cases[3].spec, sizeof cases[3].spec, "cmd:%s", noshebang);
    snprintf(cases[4].spec, sizeof cases[4].spec, "cmd:%s", harness_tmpdir()); /* a directory */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        VerifierOptions o;
        verifier_defaults(&o);
        o.spec = cases[i].spec;
        err_clear();
        Verifier *v = verifier_new(&o);
        CHECKF(v == NULL, "%s started", cases[i].spec);
        verifier_free(v);
        CHECK_ERR(cases[i].start, cases[i].part);
        CHECKF(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, "%s: a child is left", cases[i].spec);
        CHECK(count_fds() == fds);
    }
}

/* verifier_free stops a program that never ends, its own children too. */
TEST(verifier_cmd_free_stops_a_busy_program) {
    int fds = count_fds();
    Verifier *v = open_cmd(5, "/bin/sh -c 'trap \"\" TERM; sleep 1000 & read a; wait'");
    CHECKF(v != NULL, "%s", err_msg());
    pid_t pid = v ? verifier_pid(v) : -1;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&pause, NULL); /* the sleep has started */
    double t0 = fs_now();
    verifier_free(v);
    CHECKF(fs_now() - t0 < 1.0, "free took %.2f s", fs_now() - t0);
    CHECK(all_gone(pid));
    CHECK(count_fds() == fds);
}

/* A rewarder killed with SIGKILL takes its program with it. */
TEST(verifier_cmd_dies_with_its_parent) {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t mid = fork();
    if (mid == 0) {
        close(p[0]);
        Verifier *v = open_cmd(5, "/bin/sh %s", fixture("hang.sh"));
        pid_t prog = v ? verifier_pid(v) : -1;
        ssize_t w = write(p[1], &prog, sizeof prog);
        (void)w;
        for (;;) pause();
    }
    close(p[1]);
    pid_t prog = -1;
    CHECK(read(p[0], &prog, sizeof prog) == (ssize_t)sizeof prog && prog > 0);
    close(p[0]);
    CHECK(prog > 0 && fs_process_start(prog) > 0);
    kill(mid, SIGKILL);
    waitpid(mid, NULL, 0);
    double t0 = fs_now();
    while (prog > 0 && fs_process_start(prog) && fs_now() - t0 < 3) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    CHECKF(prog > 0 && fs_process_start(prog) == 0, "program %ld still runs after its parent died", (long)prog);
    /* the dying parent's pipes close before the signal comes: hang.sh may
     * have started its sleep, which no PDEATHSIG reaches (verifier.h) */
    if (prog > 0) kill(-prog, SIGKILL);
}

/* The README's table of verifier keys is the table the code declares. */
TEST(verifier_keys_in_readme) {
    char *readme = harness_read_file("README.md", NULL);
    CHECK(readme != NULL);
    if (!readme) return;
    static const char *const types[] = {[CFG_INT] = "int", [CFG_FLOAT] = "float", [CFG_STR] = "string",
                                        [CFG_BOOL] = "bool", [CFG_ENUM] = "enum"};
    for (const CfgKey *k = verifier_keys; k->key; k++) {
        char row[2048];
        const char *range = k->range ? k->range : "";
        snprintf(row, sizeof row, "| `%s` | %s | `%s` | %s | ", k->key, types[k->type], k->def, range);
        CHECKF(strstr(readme, row) != NULL, "README has no row starting %s", row);
    }
    free(readme);
}
