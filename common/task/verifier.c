/* verifier — verifiable rewards: the built-in verifiers (gold, answer,
 * format), the rules they share, and external cmd: programs; see
 * verifier.h for every rule. */
#include "common/task/verifier.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/model/tok.h"
#include "common/task/arith.h"

/* ---- configuration keys -------------------------------------------------- */

const CfgKey verifier_keys[] = {
    {.key = "verifier", .type = CFG_STR, .def = "gold",
     .help = "verifiable reward: gold (the arith task's judge), answer (the final answer against the data's "
             "\"answer\"), format (an answer line at the end), or cmd:PROGRAM ARGS (an external checker: "
             "JSONL {prompt, response, answer} in, one number per line out)"},
    {.key = "verifier_timeout", .type = CFG_FLOAT, .def = "30",
     .help = "cmd: seconds the program may take for one answer; then it is stopped and the job ends naming it",
     .range = "> 0"},
    {.key = "verifier_offensive_penalty", .type = CFG_FLOAT, .def = "0.5",
     .help = "gold: subtracted when the response has an offensive word (manners; 0: off)", .range = ">= 0"},
    {.key = "verifier_word_penalty", .type = CFG_FLOAT, .def = "0.04",
     .help = "gold: subtracted per word besides the answer (concision; 0: off)", .range = ">= 0"},
    {.key = "verifier_word_cap", .type = CFG_INT, .def = "10",
     .help = "gold: extra words counted at most", .range = ">= 0"},
    {.key = "verifier_format_weight", .type = CFG_FLOAT, .def = "0",
     .help = "gold, answer: weight of the format score (1 if the response ends with an answer line) added to "
             "the score",
     .range = ">= 0"},
    {.key = "verifier_format_marker", .type = CFG_BOOL, .def = "false",
     .help = "format: the answer line needs a marker (#### X, answer: X, \\boxed{X}); false: a bare number "
             "line counts too"},
    {.key = "verifier_tolerance", .type = CFG_FLOAT, .def = "1e-6",
     .help = "answer: a numeric answer matches within tolerance * max(1, |answer|)", .range = ">= 0"},
    {0}};

static const char *default_spec(void) { return verifier_keys[0].def; }

/* Reads the keys of verifier_keys from c into o (spec borrowed from c). */
static void read_options(const Config *c, VerifierOptions *o) {
    *o = (VerifierOptions){
        .spec = config_str(c, "verifier"),
        .timeout = config_float(c, "verifier_timeout"),
        .offensive_penalty = config_float(c, "verifier_offensive_penalty"),
        .word_penalty = config_float(c, "verifier_word_penalty"),
        .word_cap = config_int(c, "verifier_word_cap"),
        .format_weight = config_float(c, "verifier_format_weight"),
        .format_marker = config_bool(c, "verifier_format_marker"),
        .tolerance = config_float(c, "verifier_tolerance"),
    };
}

void verifier_defaults(VerifierOptions *o) {
    const CfgKey *const t[] = {verifier_keys};
    Config *c = config_new(t, 1);
    if (!c) err_die("verifier_keys: %s", err_msg()); /* a table error: tests/unit/test_verifier.c */
    read_options(c, o);
    o->spec = default_spec(); /* the Config's copy goes with it */
    config_free(c);
}

int verifier_options_from_config(const Config *c, VerifierOptions *o) {
    read_options(c, o);
    return verifier_check_spec(o->spec);
}

/* ---- text ---------------------------------------------------------------- */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
/* Letters, digits and non-ASCII bytes: what a minus sign may not follow. */
static int is_word_byte(unsigned char c) { return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80; }

/* Narrows [*b, *e) of s to exclude spaces at both ends. */
static void trim(const char *s, size_t *b, size_t *e) {
    while (*b < *e && is_space((unsigned char)s[*b])) ++*b;
    while (*e > *b && is_space((unsigned char)s[*e - 1])) --*e;
}

/* trim, then one trailing '.' and the spaces before it. */
static void trim_dot(const char *s, size_t *b, size_t *e) {
    trim(s, b, e);
    if (*e > *b && s[*e - 1] == '.') --*e;
    trim(s, b, e);
}

/* ---- numbers ------------------------------------------------------------- */

/* A number in a text: digits (and fraction) at [start, end), the minus sign
 * (sign bytes) just before start. */
typedef struct {
    size_t start, end, sign;
} Num;

/* Bytes of a minus sign ending right before i that counts (not after a
 * letter or digit); 0 if none. */
static size_t minus_before(const unsigned char *u, size_t lo, size_t i) {
    size_t len = 0;
    if (i >= lo + 1 && u[i - 1] == '-') len = 1;
    else if (i >= lo + 3 && u[i - 3] == 0xe2 && u[i - 2] == 0x88 && u[i - 1] == 0x92) len = 3; /* U+2212 */
    if (!len) return 0;
    return i - len == lo || !is_word_byte(u[i - len - 1]) ? len : 0;
}

/* Does ",ddd" (exactly three digits) start at j? */
static int group_at(const unsigned char *u, size_t j, size_t n) {
    if (j + 3 >= n || u[j] != ',') return 0;
    if (!is_digit(u[j + 1]) || !is_digit(u[j + 2]) || !is_digit(u[j + 3])) return 0;
    return j + 4 >= n || !is_digit(u[j + 4]);
}

/* End of the number whose first byte (a digit, or the '.' of ".5") is at i. */
static size_t number_end(const unsigned char *u, size_t i, size_t n) {
    size_t j = i;
    while (j < n && is_digit(u[j])) j++;
    while (j > i && group_at(u, j, n)) j += 4;
    if (j + 1 < n && u[j] == '.' && is_digit(u[j + 1])) {
        j++;
        while (j < n && is_digit(u[j])) j++;
    }
    return j;
}

/* Does a number start at i (no digit right before it)? */
static int number_starts(const unsigned char *u, size_t lo, size_t i, size_t n) {
    if (i > lo && is_digit(u[i - 1])) return 0;
    return is_digit(u[i]) || (u[i] == '.' && i + 1 < n && is_digit(u[i + 1]));
}

/* The next number of u[lo, n) at or after *pos; 1 and *pos past it, or 0. */
static int next_number(const unsigned char *u, size_t lo, size_t n, size_t *pos, Num *out) {
    for (size_t i = *pos; i < n; i++) {
        if (!number_starts(u, lo, i, n)) continue;
        *out = (Num){.start = i, .end = number_end(u, i, n), .sign = minus_before(u, lo, i)};
        *pos = out->end;
        return 1;
    }
    *pos = n;
    return 0;
}

/* The value of a number (commas dropped). */
static double num_value(const unsigned char *u, const Num *m) {
    size_t n = m->end - m->start;
    char small[64], *buf = n + 2 <= sizeof small ? small : err_malloc(n + 2);
    size_t k = 0;
    if (m->sign) buf[k++] = '-';
    for (size_t i = m->start; i < m->end; i++)
        if (u[i] != ',') buf[k++] = (char)u[i];
    buf[k] = 0;
    double v = strtod(buf, NULL);
    if (buf != small) free(buf);
    return v;
}

int verifier_parse_number(const char *s, size_t len, double *value) {
    const unsigned char *u = (const unsigned char *)s;
    size_t b = 0, e = len;
    trim(s, &b, &e);
    size_t pos = b;
    Num m;
    if (!next_number(u, b, e, &pos, &m) || m.end != e || m.start != b + m.sign) return 0;
    *value = num_value(u, &m);
    return 1;
}

/* The first number in s[b, e); 0 if none. */
static int first_number(const char *s, size_t b, size_t e, double *value) {
    const unsigned char *u = (const unsigned char *)s;
    size_t pos = b;
    Num m;
    if (!next_number(u, b, e, &pos, &m)) return 0;
    *value = num_value(u, &m);
    return 1;
}

/* ---- the final answer ---------------------------------------------------- */

/* Index of the '}' closing the '{' at open, or SIZE_MAX. */
static size_t closing_brace(const char *s, size_t open) {
    int depth = 0;
    for (size_t i = open; s[i]; i++) {
        depth += s[i] == '{';
        depth -= s[i] == '}';
        if (!depth) return i;
    }
    return SIZE_MAX;
}

/* Rule 1: the last balanced \boxed{...} with some text inside. */
static int rule_boxed(const char *r, VerifierAnswer *a) {
    static const char mark[] = "\\boxed{";
    int found = 0;
    for (const char *p = strstr(r, mark); p; p = strstr(p + 1, mark)) {
        size_t open = (size_t)(p - r) + sizeof mark - 2, close = closing_brace(r, open);
        size_t b = open + 1, e = close;
        if (close == SIZE_MAX) continue;
        trim_dot(r, &b, &e);
        if (e == b) continue;
        *a = (VerifierAnswer){.rule = VERIFIER_RULE_BOXED, .start = b, .len = e - b};
        found = 1;
    }
    return found;
}

/* The last place of mark in r (case-insensitive if nocase); NULL if none. */
static const char *last_mark(const char *r, const char *mark, int nocase) {
    size_t m = strlen(mark);
    const char *last = NULL;
    for (const char *p = r; *p; p++)
        if (nocase ? !strncasecmp(p, mark, m) : !strncmp(p, mark, m)) last = p;
    return last;
}

/* Rules 2 and 3: the rest of the line after the last mark, if not empty. */
static int rule_marked(const char *r, const char *mark, int nocase, VerifierRule rule, VerifierAnswer *a) {
    const char *p = last_mark(r, mark, nocase);
    if (!p) return 0;
    size_t b = (size_t)(p - r) + strlen(mark), e = b;
    while (r[e] && r[e] != '\n') e++;
    trim_dot(r, &b, &e);
    if (e == b) return 0;
    *a = (VerifierAnswer){.rule = rule, .start = b, .len = e - b};
    return 1;
}

/* Rule 4: the last number, its sign included. */
static int rule_number(const char *r, VerifierAnswer *a) {
    const unsigned char *u = (const unsigned char *)r;
    size_t n = strlen(r), pos = 0;
    Num m, last;
    int found = 0;
    while (next_number(u, 0, n, &pos, &m)) {
        last = m;
        found = 1;
    }
    if (found)
        *a = (VerifierAnswer){.rule = VERIFIER_RULE_NUMBER, .start = last.start - last.sign,
                              .len = last.end - last.start + last.sign};
    return found;
}

int verifier_extract_answer(const char *response, VerifierAnswer *a) {
    const char *r = response ? response : "";
    *a = (VerifierAnswer){.rule = VERIFIER_RULE_NONE};
    return rule_boxed(r, a) || rule_marked(r, "####", 0, VERIFIER_RULE_HASHES, a) ||
           rule_marked(r, "answer:", 1, VERIFIER_RULE_MARKED, a) || rule_number(r, a);
}

int verifier_answer_match(const char *response, const VerifierAnswer *a, const char *answer, double tolerance) {
    if (!response || !a || a->rule == VERIFIER_RULE_NONE || !answer) return 0;
    double want, got;
    if (verifier_parse_number(answer, strlen(answer), &want)) {
        if (!first_number(response, a->start, a->start + a->len, &got)) return 0;
        return fabs(got - want) <= tolerance * fmax(1.0, fabs(want));
    }
    size_t b = 0, e = strlen(answer);
    trim_dot(answer, &b, &e);
    return e - b == a->len && !memcmp(answer + b, response + a->start, a->len);
}

/* ---- the format score ---------------------------------------------------- */

/* Does line [b, e) of s start with mark (any case) followed by some text? */
static int marker_line(const char *s, size_t b, size_t e, const char *mark) {
    size_t m = strlen(mark);
    if (e - b < m || strncasecmp(s + b, mark, m)) return 0;
    size_t xb = b + m, xe = e;
    trim_dot(s, &xb, &xe);
    return xe > xb;
}

/* Does line [b, e) of s end with \boxed{X} (X not empty), then '$', '.'? */
static int boxed_line(const char *s, size_t b, size_t e) {
    if (e > b && s[e - 1] == '.') e--;
    if (e > b && s[e - 1] == '$') e--;
    if (e == b || s[e - 1] != '}') return 0;
    int depth = 0;
    size_t i = e;
    while (i > b) {
        i--;
        depth += s[i] == '}';
        depth -= s[i] == '{';
        if (!depth) break;
    }
    if (depth || i < b + 6 || strncmp(s + i - 6, "\\boxed", 6)) return 0;
    size_t xb = i + 1, xe = e - 1;
    trim(s, &xb, &xe);
    return xe > xb;
}

double verifier_format_score(const char *response, int marker_required) {
    const char *r = response ? response : "";
    size_t b = 0, e = strlen(r);
    trim(r, &b, &e);
    size_t start = e;
    while (start > b && r[start - 1] != '\n') start--;
    trim(r, &start, &e);
    if (e == start) return 0;
    if (marker_line(r, start, e, "####") || marker_line(r, start, e, "answer:") ||
        marker_line(r, start, e, "final answer:") || boxed_line(r, start, e))
        return 1;
    double v;
    size_t ne = e;
    if (r[ne - 1] == '.') ne--;
    return !marker_required && verifier_parse_number(r + start, ne - start, &v) ? 1 : 0;
}

/* ---- built-in verifiers -------------------------------------------------- */

typedef int (*VerifierFn)(const VerifierOptions *o, const VerifierSample *s, VerifierResult *r);

#define BIT(c) (1u << (c))

/* The arith judge, its penalties as configured. */
static int verify_gold(const VerifierOptions *o, const VerifierSample *s, VerifierResult *r) {
    ArithJudgement d;
    if (isnan(arith_gold(s->prompt, s->response, &d))) return -1;
    int extra = d.extra_words < o->word_cap ? d.extra_words : o->word_cap;
    r->comp[VERIFIER_CORRECT] = d.correct ? 1.0 : 0.0;
    r->comp[VERIFIER_MANNERS] = d.offensive > 0 ? 0.0 - o->offensive_penalty : 0.0;
    r->comp[VERIFIER_CONCISION] = 0.0 - o->word_penalty * extra;
    r->comp[VERIFIER_FORMAT] = verifier_format_score(s->response, o->format_marker);
    /* in arith_gold's order, so the defaults give its score to the bit */
    r->score = r->comp[VERIFIER_CORRECT] + r->comp[VERIFIER_MANNERS] + r->comp[VERIFIER_CONCISION] +
               o->format_weight * r->comp[VERIFIER_FORMAT];
    return 0;
}

static int verify_answer(const VerifierOptions *o, const VerifierSample *s, VerifierResult *r) {
    if (!s->answer) return err_set("no \"answer\" (the answer verifier needs {\"prompt\", \"answer\"} data)");
    VerifierAnswer a;
    const char *resp = s->response ? s->response : "";
    verifier_extract_answer(resp, &a);
    r->comp[VERIFIER_CORRECT] = verifier_answer_match(resp, &a, s->answer, o->tolerance) ? 1.0 : 0.0;
    r->comp[VERIFIER_FORMAT] = verifier_format_score(resp, o->format_marker);
    r->score = r->comp[VERIFIER_CORRECT] + o->format_weight * r->comp[VERIFIER_FORMAT];
    return 0;
}

static int verify_format(const VerifierOptions *o, const VerifierSample *s, VerifierResult *r) {
    r->comp[VERIFIER_FORMAT] = verifier_format_score(s->response, o->format_marker);
    r->score = r->comp[VERIFIER_FORMAT];
    return 0;
}

typedef struct {
    const char *name;
    VerifierFn fn;
    unsigned comps; /* the components it fills */
} Builtin;

static const Builtin BUILTINS[] = {
    {.name = "gold", .fn = verify_gold,
     .comps = BIT(VERIFIER_CORRECT) | BIT(VERIFIER_FORMAT) | BIT(VERIFIER_MANNERS) | BIT(VERIFIER_CONCISION)},
    {.name = "answer", .fn = verify_answer, .comps = BIT(VERIFIER_CORRECT) | BIT(VERIFIER_FORMAT)},
    {.name = "format", .fn = verify_format, .comps = BIT(VERIFIER_FORMAT)},
};
#define N_BUILTINS ((int)(sizeof BUILTINS / sizeof *BUILTINS))

static const Builtin *find_builtin(const char *name) {
    for (int i = 0; i < N_BUILTINS; i++)
        if (!strcmp(BUILTINS[i].name, name)) return &BUILTINS[i];
    return NULL;
}

static const char *const COMP_NAMES[VERIFIER_NCOMP] = {
    [VERIFIER_CORRECT] = "correct",
    [VERIFIER_FORMAT] = "format",
    [VERIFIER_MANNERS] = "manners",
    [VERIFIER_CONCISION] = "concision",
};

const char *verifier_comp_name(VerifierComp c) {
    return (int)c >= 0 && c < VERIFIER_NCOMP ? COMP_NAMES[c] : "?";
}

/* ---- JSON lines ---------------------------------------------------------- */

/* o[key] = s with bytes that are not UTF-8 replaced (jansson refuses them). */
static void set_clean(json_t *o, const char *key, const char *s) {
    char *clean = tok_utf8_clean(s, strlen(s));
    json_t *v = json_string(clean);
    free(clean);
    /* never a line without the field: that would be a bug in tok_utf8_clean */
    if (!v) err_die("verifier: \"%s\" is not UTF-8 after clean-up", key);
    json_object_set_new(o, key, v);
}

char *verifier_json_line(const VerifierSample *s) {
    json_t *o = json_object();
    if (!o) err_die("out of memory");
    set_clean(o, "prompt", s->prompt ? s->prompt : "");
    set_clean(o, "response", s->response ? s->response : "");
    if (s->answer) set_clean(o, "answer", s->answer);
    else json_object_set_new(o, "answer", json_null());
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line) err_die("out of memory");
    return line;
}

/* ---- command lines ------------------------------------------------------- */

void verifier_free_argv(char **argv) {
    if (!argv) return;
    for (char **p = argv; *p; p++) free(*p);
    free(argv);
}

/* Word separators of a command line. */
static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* Copies a quoted part starting after its opening quote q; advances *p past
 * the closing quote. -1 + err_set if it is not closed. */
static int copy_quoted(const char **p, char q, char *w, size_t *k) {
    const char *s = *p;
    for (; *s && *s != q; s++) {
        if (q == '"' && *s == '\\' && s[1] && strchr("\"\\$`", s[1])) s++;
        w[(*k)++] = *s;
    }
    if (!*s) return err_set("unterminated %c quote", q);
    *p = s + 1;
    return 0;
}

/* Appends word w[0..k) to the array. */
static void push_word(char ***argv, int *argc, const char *w, size_t k) {
    *argv = err_realloc(*argv, (size_t)(*argc + 2) * sizeof **argv);
    char *copy = err_malloc(k + 1);
    memcpy(copy, w, k);
    copy[k] = 0;
    (*argv)[(*argc)++] = copy;
    (*argv)[*argc] = NULL;
}

/* One word starting at *p (not a space); advances *p past it. */
static int read_word(const char **p, char *w, size_t *k) {
    const char *s = *p;
    *k = 0;
    while (*s && !is_blank(*s)) {
        char c = *s++;
        if (c == '\'' || c == '"') {
            if (copy_quoted(&s, c, w, k)) return -1;
        } else if (c == '\\') {
            if (!*s) return err_set("trailing backslash");
            w[(*k)++] = *s++;
        } else w[(*k)++] = c;
    }
    *p = s;
    return 0;
}

int verifier_split_command(const char *text, char ***argv, int *argc) {
    char *w = err_malloc(strlen(text) + 1);
    *argv = NULL;
    *argc = 0;
    int rc = 0;
    for (const char *p = text; rc == 0 && *p;) {
        if (is_blank(*p)) {
            p++;
            continue;
        }
        size_t k;
        rc = read_word(&p, w, &k);
        if (rc == 0) push_word(argv, argc, w, k);
    }
    free(w);
    if (rc == 0 && *argc == 0) rc = err_set("names no program");
    if (rc) {
        verifier_free_argv(*argv);
        *argv = NULL;
        *argc = 0;
    }
    return rc;
}

static const char CMD_PREFIX[] = "cmd:";

static int is_cmd(const char *spec) { return !strncmp(spec, CMD_PREFIX, sizeof CMD_PREFIX - 1); }

int verifier_check_spec(const char *spec) {
    if (!spec) return err_set("verifier: no verifier named");
    if (find_builtin(spec)) return 0;
    if (!is_cmd(spec))
        return err_set("verifier: unknown verifier '%s' (gold, answer, format or cmd:PROGRAM ARGS)", spec);
    char **argv;
    int argc;
    if (verifier_split_command(spec + sizeof CMD_PREFIX - 1, &argv, &argc))
        return err_prefix("verifier: '%s': ", spec);
    verifier_free_argv(argv);
    return 0;
}

/* ---- external programs: starting one ------------------------------------- */

typedef struct {
    char *label; /* "cmd:..." as given, for messages */
    char **argv;
    char *path; /* argv[0] found on PATH */
    double timeout;
    pid_t pid;
    int running;           /* not reaped yet */
    int broken;            /* stopped after an error: every call fails */
    int in_fd, out_fd;     /* our ends of its stdin and stdout; -1 when closed */
    long long answered;    /* lines of its output read so far */
    size_t len;            /* bytes of a line not complete yet in buf */
    char buf[VERIFIER_LINE_MAX + 1];
} Cmd;

/* What a child tells us when its exec failed. */
typedef struct {
    int err;
} ExecFail;

/* The program's path: as given with a '/', else the first executable regular
 * file of that name on PATH (looked up here, not after fork, where only
 * async-signal-safe calls are allowed). NULL + err_set if there is none. */
static char *find_program(const char *name) {
    if (strchr(name, '/')) return err_strdup(name);
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    size_t n = strlen(path) + strlen(name) + 3;
    char *cand = err_malloc(n);
    for (const char *d = path; d;) {
        const char *colon = strchr(d, ':');
        int dl = colon ? (int)(colon - d) : (int)strlen(d);
        snprintf(cand, n, "%.*s/%s", dl ? dl : 1, dl ? d : ".", name);
        struct stat st;
        if (!access(cand, X_OK) && !stat(cand, &st) && S_ISREG(st.st_mode)) return cand;
        d = colon ? colon + 1 : NULL;
    }
    free(cand);
    err_set("%s: not found on PATH", name);
    return NULL;
}

/* Every signal back to its default disposition, none blocked: an ignored
 * SIGPIPE or a blocked SIGTERM would survive exec otherwise. */
static void child_reset_signals(void) {
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* After fork: only async-signal-safe calls. Becomes the program or exits
 * 127 after telling the parent why on fail_fd. */
static void child_exec(const Cmd *c, int in_r, int out_w, int fail_fd, pid_t parent, int max_fd) {
    setpgid(0, 0); /* its own group, so that stopping it reaches its children */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent) _exit(127);
    /* copies above 2 first: a pipe end may itself be 0 or 1 */
    int in = fcntl(in_r, F_DUPFD_CLOEXEC, 3), out = fcntl(out_w, F_DUPFD_CLOEXEC, 3);
    ExecFail f;
    if (in >= 0 && out >= 0 && dup2(in, 0) == 0 && dup2(out, 1) == 1) {
        /* nothing but 0, 1, 2 across exec, whoever opened the rest */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC))
            for (int fd = 3; fd < max_fd; fd++)
                if (fd != fail_fd) close(fd);
        child_reset_signals();
        execv(c->path, c->argv);
        f.err = errno;
    } else f.err = errno;
    ssize_t w = write(fail_fd, &f, sizeof f);
    (void)w;
    _exit(127);
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void close_pair(int p[2]) {
    close_fd(&p[0]);
    close_fd(&p[1]);
}

static int open_pipes(int in[2], int out[2], int fail[2]) {
    in[0] = in[1] = out[0] = out[1] = fail[0] = fail[1] = -1;
    if (!pipe2(in, O_CLOEXEC) && !pipe2(out, O_CLOEXEC) && !pipe2(fail, O_CLOEXEC)) return 0;
    int e = errno;
    close_pair(in);
    close_pair(out);
    close_pair(fail);
    return err_set("pipe: %s", strerror(e));
}

/* Highest descriptor number + 1 that may be open (for the close fallback). */
static int fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1 << 20) return 1 << 16;
    return (int)rl.rlim_cur;
}

/* Waits for the program's end (its status was read with waitid before). */
static void reap(Cmd *c) {
    while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {}
    c->running = 0;
}

/* Waits for the child's exec: 0 when it ran, -1 + err_set when it failed. */
static int await_exec(Cmd *c, int fail_r) {
    ExecFail f;
    ssize_t got;
    while ((got = read(fail_r, &f, sizeof f)) < 0 && errno == EINTR) {}
    if (got != (ssize_t)sizeof f) return 0; /* end of file: exec closed it */
    reap(c);
    if (f.err == ENOEXEC) return err_set("cannot run %s: %s (a script needs a #! line)", c->path, strerror(f.err));
    return err_set("cannot run %s: %s", c->path, strerror(f.err));
}

static int cmd_start(Cmd *c) {
    int in[2], out[2], fail[2];
    if (open_pipes(in, out, fail)) return -1;
    int max_fd = fd_limit();
    pid_t parent = getpid();
    pid_t pid = fork(); /* the child only execs or _exits: our stdio buffers stay ours */
    if (pid == 0) child_exec(c, in[0], out[1], fail[1], parent, max_fd);
    int fork_err = errno;
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&fail[1]);
    if (pid < 0) {
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&fail[0]);
        return err_set("fork: %s", strerror(fork_err));
    }
    setpgid(pid, pid); /* as the child does: a kill of the group cannot miss it */
    c->pid = pid;
    c->running = 1;
    c->in_fd = in[1];
    c->out_fd = out[0];
    int rc = await_exec(c, fail[0]);
    close_fd(&fail[0]);
    if (rc) return -1;
    fcntl(c->in_fd, F_SETFL, fcntl(c->in_fd, F_GETFL) | O_NONBLOCK);
    fcntl(c->out_fd, F_SETFL, fcntl(c->out_fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* "cmd:TEXT" trimmed and cut to a readable length. */
static char *make_label(const char *spec) {
    size_t b = 0, e = strlen(spec);
    trim(spec, &b, &e);
    char *l = err_malloc(e - b + 1);
    int cut = e - b > 120;
    snprintf(l, e - b + 1, "%.*s%s", cut ? 117 : (int)(e - b), spec + b, cut ? "..." : "");
    return l;
}

static void cmd_stop(Cmd *c, int grace_ms);

static void cmd_free(Cmd *c) {
    if (!c) return;
    cmd_stop(c, VERIFIER_GRACE_MS);
    verifier_free_argv(c->argv);
    free(c->path);
    free(c->label);
    free(c);
}

static Cmd *cmd_new(const char *spec, double timeout) {
    Cmd *c = err_calloc(1, sizeof *c);
    *c = (Cmd){.label = make_label(spec), .timeout = timeout, .pid = -1, .in_fd = -1, .out_fd = -1};
    int argc;
    int rc = verifier_split_command(spec + sizeof CMD_PREFIX - 1, &c->argv, &argc);
    if (rc == 0) c->path = find_program(c->argv[0]);
    if (rc || !c->path || cmd_start(c)) {
        err_prefix("verifier %s: ", c->label);
        cmd_free(c);
        return NULL;
    }
    return c;
}

/* ---- external programs: stopping one ------------------------------------- */

/* 1 if the child has ended (not reaped: *info says how), waiting up to
 * wait_ms for it. */
static int has_ended(const Cmd *c, int wait_ms, siginfo_t *info) {
    struct timespec step = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
    for (int waited = 0;; waited += 5) {
        *info = (siginfo_t){0};
        if (waitid(P_PID, (id_t)c->pid, info, WEXITED | WNOHANG | WNOWAIT) == 0 && info->si_pid == c->pid) return 1;
        if (waited >= wait_ms) return 0;
        nanosleep(&step, NULL);
    }
}

/* Closes our pipes (the program sees end of input), gives it grace_ms to
 * exit, kills its process group (grandchildren too) and reaps it. */
static void cmd_stop(Cmd *c, int grace_ms) {
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    if (!c->running) return;
    siginfo_t info;
    has_ended(c, grace_ms, &info);
    kill(-c->pid, SIGKILL); /* the group outlives its leader until reaped */
    kill(c->pid, SIGKILL);
    reap(c);
}

/* How the program ended, if it did within the grace time, else `otherwise`. */
static void describe_end(const Cmd *c, const char *otherwise, char *buf, size_t n) {
    siginfo_t info;
    if (!has_ended(c, VERIFIER_GRACE_MS, &info)) snprintf(buf, n, "%s", otherwise);
    else if (info.si_code == CLD_EXITED) snprintf(buf, n, "exited with status %d", info.si_status);
    else snprintf(buf, n, "was killed by signal %d (%s)", info.si_status, strsignal(info.si_status));
}

/* Stops the program, marks it broken and sets "verifier LABEL: MESSAGE". */
static int cmd_fail(Cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cmd_fail(Cmd *c, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cmd_stop(c, 0);
    c->broken = 1;
    return err_set("verifier %s: %s", c->label, msg);
}

/* ---- external programs: a batch ------------------------------------------ */

/* The lines of one call: line numbers first .. first + n - 1. */
typedef struct {
    long long first;
    int n;
    const char *text; /* the JSON lines */
    size_t len, off;  /* bytes, bytes written */
} Batch;

/* "line K (sample I of N)" for line k. */
static const char *where(const Batch *b, long long k, char *buf, size_t n) {
    snprintf(buf, n, "line %lld (sample %lld of %d)", k, k - b->first + 1, b->n);
    return buf;
}

/* Up to 40 bytes of s[0..n) quoted, control and non-ASCII bytes escaped. */
static const char *quote(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    buf[k++] = '\'';
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == 40) {
            k += (size_t)snprintf(buf + k, cap - k, "...");
            break;
        }
        if (ch < 0x20 || ch >= 0x7f) k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", ch);
        else buf[k++] = (char)ch;
    }
    buf[k++] = '\'';
    buf[k] = 0;
    return buf;
}

/* The program's output ended (end of file or a broken input pipe) before
 * line k was answered. */
static int fail_ended(Cmd *c, const Batch *b, const char *otherwise) {
    char how[160], at[96], tail[128] = "";
    describe_end(c, otherwise, how, sizeof how);
    if (c->len) {
        char q[200];
        snprintf(tail, sizeof tail, "; its last output %s has no newline", quote(c->buf, c->len, q, sizeof q));
    }
    return cmd_fail(c, "%s before answering %s%s", how, where(b, c->answered + 1, at, sizeof at), tail);
}

/* A reply: a decimal number with optional sign, fraction and exponent. */
static int reply_syntax(const char *s, size_t b, size_t e) {
    size_t i = b, digits = 0;
    if (i < e && (s[i] == '+' || s[i] == '-')) i++;
    for (; i < e && is_digit((unsigned char)s[i]); i++) digits++;
    if (i < e && s[i] == '.')
        for (i++; i < e && is_digit((unsigned char)s[i]); i++) digits++;
    if (!digits) return 0;
    if (i < e && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < e && (s[i] == '+' || s[i] == '-')) i++;
        size_t exp = i;
        while (i < e && is_digit((unsigned char)s[i])) i++;
        if (i == exp) return 0;
    }
    return i == e;
}

/* "nan", "inf", "-Infinity", ...: a number, but not a finite one. */
static int nan_or_inf(const char *s, size_t b, size_t e) {
    if (b < e && (s[b] == '+' || s[b] == '-')) b++;
    return e - b >= 3 && (!strncasecmp(s + b, "nan", 3) || !strncasecmp(s + b, "inf", 3));
}

/* Line k of the program's output, s[0..n), into *v. */
static int parse_reply(Cmd *c, const Batch *b, long long k, const char *s, size_t n, double *v) {
    size_t lb = 0, le = n;
    trim(s, &lb, &le);
    char at[96], q[200], num[VERIFIER_LINE_MAX + 1];
    if (!reply_syntax(s, lb, le))
        return cmd_fail(c, "%s of its output is %s, not a %snumber", where(b, k, at, sizeof at),
                        quote(s, n, q, sizeof q), nan_or_inf(s, lb, le) ? "finite " : "");
    memcpy(num, s + lb, le - lb);
    num[le - lb] = 0;
    *v = strtod(num, NULL);
    if (!isfinite(*v))
        return cmd_fail(c, "%s of its output is %s, not a finite number", where(b, k, at, sizeof at),
                        quote(s, n, q, sizeof q));
    return 0;
}

/* Output beyond what was sent: line k shows as s[0..n). */
static int fail_extra(Cmd *c, long long k, const char *s, size_t n) {
    char q[200];
    return cmd_fail(c, "printed more lines than it was sent: line %lld of its output, %s, answers no input line", k,
                    quote(s, n, q, sizeof q));
}

/* Takes every complete line out of c->buf into out. */
static int take_lines(Cmd *c, const Batch *b, VerifierResult *out) {
    char *nl;
    while ((nl = memchr(c->buf, '\n', c->len))) {
        size_t n = (size_t)(nl - c->buf);
        long long k = c->answered + 1;
        if (k >= b->first + b->n) return fail_extra(c, k, c->buf, n);
        VerifierResult *r = &out[k - b->first];
        *r = (VerifierResult){0};
        if (parse_reply(c, b, k, c->buf, n, &r->score)) return -1;
        c->answered = k;
        c->len -= n + 1;
        memmove(c->buf, nl + 1, c->len);
    }
    if (c->len > VERIFIER_LINE_MAX) {
        char at[96];
        return cmd_fail(c, "%s of its output is longer than %d bytes", where(b, c->answered + 1, at, sizeof at),
                        VERIFIER_LINE_MAX);
    }
    return 0;
}

/* Reads what the program printed. */
static int read_some(Cmd *c, const Batch *b, VerifierResult *out) {
    ssize_t r = read(c->out_fd, c->buf + c->len, sizeof c->buf - c->len);
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : cmd_fail(c, "read: %s", strerror(errno));
    if (r == 0) return fail_ended(c, b, "closed its output");
    c->len += (size_t)r;
    return take_lines(c, b, out);
}

/* Writes what the pipe takes; *epipe set when the program stopped reading. */
static int write_some(Cmd *c, Batch *b, int *epipe) {
    ssize_t w = write(c->in_fd, b->text + b->off, b->len - b->off);
    if (w >= 0) {
        b->off += (size_t)w;
        return 0;
    }
    if (errno == EAGAIN || errno == EINTR) return 0;
    if (errno != EPIPE) return cmd_fail(c, "write: %s", strerror(errno));
    *epipe = 1;
    return fail_ended(c, b, "stopped reading its input");
}

static int poll_ms(double seconds) {
    double ms = ceil(seconds * 1000);
    return ms < 1 ? 1 : ms > 1e9 ? 1000000000 : (int)ms;
}

/* Sends the batch and reads its answers, interleaved: a program answering
 * while it reads fills its output pipe before we are done writing. */
static int exchange(Cmd *c, Batch *b, VerifierResult *out, int *epipe) {
    double deadline = fs_now() + c->timeout;
    while (c->answered < b->first + b->n - 1) {
        double left = deadline - fs_now();
        char at[96];
        if (left <= 0)
            return cmd_fail(c, "no answer to %s within verifier_timeout = %g s",
                            where(b, c->answered + 1, at, sizeof at), c->timeout);
        struct pollfd p[2] = {{.fd = c->out_fd, .events = POLLIN}, {.fd = c->in_fd, .events = POLLOUT}};
        int np = b->off < b->len ? 2 : 1;
        int r = poll(p, (nfds_t)np, poll_ms(left));
        if (r < 0 && errno != EINTR) return cmd_fail(c, "poll: %s", strerror(errno));
        if (r <= 0) continue;
        long long before = c->answered;
        if (p[0].revents && read_some(c, b, out)) return -1;
        if (c->answered > before) deadline = fs_now() + c->timeout; /* the timeout is per answer */
        if (np == 2 && p[1].revents && write_some(c, b, epipe)) return -1;
    }
    return 0;
}

/* Before a batch: nothing may be waiting from the program (extra lines), and
 * it must still be there. */
static int check_idle(Cmd *c, const Batch *b) {
    if (c->len) return fail_extra(c, c->answered + 1, c->buf, c->len);
    struct pollfd p = {.fd = c->out_fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return 0;
    ssize_t r = read(c->out_fd, c->buf, sizeof c->buf);
    if (r == 0) return fail_ended(c, b, "closed its output");
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : cmd_fail(c, "read: %s", strerror(errno));
    c->len = (size_t)r;
    char *nl = memchr(c->buf, '\n', c->len);
    return fail_extra(c, c->answered + 1, c->buf, nl ? (size_t)(nl - c->buf) : c->len);
}

/* The JSON lines of s[0..n), one buffer. */
static char *batch_text(int n, const VerifierSample *s, size_t *len) {
    size_t cap = 4096, k = 0;
    char *text = err_malloc(cap);
    for (int i = 0; i < n; i++) {
        char *line = verifier_json_line(&s[i]);
        size_t m = strlen(line);
        while (k + m + 2 > cap) text = err_realloc(text, cap *= 2);
        memcpy(text + k, line, m);
        k += m;
        text[k++] = '\n';
        free(line);
    }
    *len = k;
    return text;
}

/* SIGPIPE blocked in this thread while we write: a program that stopped
 * reading gives EPIPE instead of ending our process; a SIGPIPE we caused is
 * taken off the pending set before the mask comes back. */
typedef struct {
    sigset_t old, pipe;
    int was_pending;
} PipeGuard;

static void guard_begin(PipeGuard *g) {
    sigemptyset(&g->pipe);
    sigaddset(&g->pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &g->pipe, &g->old);
    sigset_t pending;
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void guard_end(PipeGuard *g, int epipe) {
    if (epipe && !g->was_pending) {
        struct timespec zero = {0};
        while (sigtimedwait(&g->pipe, NULL, &zero) < 0 && errno == EINTR) {}
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static long long count_lines(const char *s, size_t n) {
    long long k = 0;
    for (const char *p = s; (p = memchr(p, '\n', n - (size_t)(p - s))); p++) k++;
    return k;
}

static int cmd_score(Cmd *c, int n, const VerifierSample *s, VerifierResult *out) {
    if (c->broken) return err_set("verifier %s: stopped after an earlier error", c->label);
    if (n == 0) return 0;
    Batch b = {.first = c->answered + 1, .n = n};
    if (check_idle(c, &b)) return -1;
    char *text = batch_text(n, s, &b.len);
    b.text = text;
    PipeGuard g;
    int epipe = 0;
    guard_begin(&g);
    int rc = exchange(c, &b, out, &epipe);
    guard_end(&g, epipe);
    long long sent = b.first - 1 + count_lines(text, b.off);
    free(text);
    if (rc) return -1;
    /* every line answered: with input still unsent, or output left over, it
     * answered lines it was not sent */
    if (sent < c->answered)
        return cmd_fail(c, "printed more lines than it was sent: %lld lines of output after %lld lines of input",
                        c->answered, sent);
    if (c->len) return fail_extra(c, c->answered + 1, c->buf, c->len);
    return 0;
}

/* ---- the verifier -------------------------------------------------------- */

struct Verifier {
    VerifierOptions opt;
    char *spec;
    const Builtin *builtin; /* NULL for cmd: */
    Cmd *cmd;
};

static int check_options(const VerifierOptions *o) {
    if (!(o->timeout > 0) || !isfinite(o->timeout))
        return err_set("verifier: verifier_timeout must be > 0, got %g", o->timeout);
    double sum = o->offensive_penalty + o->word_penalty + o->tolerance + o->format_weight;
    if (!(o->offensive_penalty >= 0) || !(o->word_penalty >= 0) || !(o->tolerance >= 0) || o->word_cap < 0 ||
        !(o->format_weight >= 0) || !isfinite(sum))
        return err_set("verifier: penalties, weights, word cap and tolerance must be finite and >= 0");
    return 0;
}

Verifier *verifier_new(const VerifierOptions *o) {
    if (verifier_check_spec(o->spec) || check_options(o)) return NULL;
    Verifier *v = err_calloc(1, sizeof *v);
    *v = (Verifier){.opt = *o, .spec = err_strdup(o->spec), .builtin = find_builtin(o->spec)};
    v->opt.spec = v->spec;
    if (!v->builtin && !(v->cmd = cmd_new(v->spec, o->timeout))) {
        free(v->spec);
        free(v);
        return NULL;
    }
    return v;
}

int verifier_score(Verifier *v, int n, const VerifierSample *s, VerifierResult *out) {
    if (n < 0) return err_set("verifier %s: %d samples", v->spec, n);
    if (v->cmd) return cmd_score(v->cmd, n, s, out);
    for (int i = 0; i < n; i++) {
        out[i] = (VerifierResult){0};
        if (v->builtin->fn(&v->opt, &s[i], &out[i]))
            return err_prefix("verifier %s: sample %d of %d: ", v->spec, i + 1, n);
    }
    return 0;
}

void verifier_free(Verifier *v) {
    if (!v) return;
    cmd_free(v->cmd);
    free(v->spec);
    free(v);
}

const char *verifier_name(const Verifier *v) { return v->spec; }
unsigned verifier_components(const Verifier *v) { return v->builtin ? v->builtin->comps : 0; }
pid_t verifier_pid(const Verifier *v) { return v->cmd ? v->cmd->pid : -1; }
