/* verifier — verifiable rewards (issue 15, "Rewards"): a score for each
 * response computed by a rule instead of a reward model. It lives in
 * common/task (DESIGN's "verify": rule-based rewards) because both the RL
 * rewarder and `rlhf eval` (pass@k) judge with it. The rewarder owns one
 * Verifier per rank, opened from the configuration
 * (the keys in verifier_keys[] below) and called with a batch of samples:
 *
 *   VerifierOptions o;
 *   if (verifier_options_from_config(cfg, &o)) err_die_last();
 *   Verifier *v = verifier_new(&o);          // NULL + err_set
 *   VerifierResult r[n];
 *   if (verifier_score(v, n, samples, r)) err_die_last();
 *   verifier_free(v);                         // stops a cmd: program
 *
 * The `verifier` key names one of:
 *   gold     the built-in arith task's judge (common/task/arith.h):
 *              score = correct - offensive_penalty*[an offensive word]
 *                      - word_penalty*min(extra words, word_cap)
 *                      + format_weight*format
 *            with the defaults (0.5, 0.04, 10, 0) exactly the gold score
 *            `rlhf eval` reports; set the penalties to 0 for correctness
 *            alone. A prompt that is not an arith prompt is an error.
 *   answer   for {"prompt","answer"} data: the final answer is taken from
 *            the response by the rule below and compared with the sample's
 *            answer; score = correct + format_weight*format.
 *   format   score = format (below): 1 when the response ends with an
 *            answer line, else 0.
 *   cmd:PROGRAM ARGS   an external program (below); score = its number.
 * Every result carries the components separately for the logs
 * (VerifierResult.comp, which of them a verifier fills: verifier_components).
 *
 * ---- the final answer (verifier_extract_answer) ----------------------------
 * The first rule that applies, searching the whole response:
 *   1. boxed   the text inside the last \boxed{...} (braces balanced);
 *   2. hashes  the rest of the line after the last "####";
 *   3. marked  the rest of the line after the last "answer:" (any case);
 *   4. number  the last number in the response;
 * else there is no answer (never correct). The text of rules 1-3 is trimmed
 * of spaces and of one trailing '.'.
 * A number is a run of ASCII digits with groups of exactly three digits
 * after a ',' joined to it ("1,234,567" is 1234567; "1,2" is 1 and 2), then
 * an optional fraction: a '.' and digits ("3.14"; ".5" alone is 0.5; "1.2.3"
 * reads 1.2 and 3); a minus sign ('-' or U+2212) right before it counts
 * unless that sign follows a letter or digit ("5-3" reads 5 and 3, "x = -3"
 * reads -3: the arith judge's rule). Exponents ("1e5" reads 1 and 5),
 * fractions ("3/4") and number words are not read.
 * Matching (verifier_answer_match): when the sample's answer, trimmed, is
 * one number of that syntax ("42", "-3.5", "1,234"), it is a numeric match:
 * the first number in the extracted text (rules 1-3; "#### $1,234." gives
 * 1234) or the number itself (rule 4) must lie within
 * tolerance*max(1, |answer|) of it. Otherwise the extracted text must equal
 * the answer exactly, both trimmed of spaces and of one trailing '.'.
 *
 * ---- the format score (verifier_format_score) ------------------------------
 * 1 if the last line of the response that is not blank is an answer line,
 * else 0. After trimming spaces that line is one of:
 *   "#### X", "answer: X" or "final answer: X" (any case), X not empty;
 *   a line that ends with \boxed{X} (optionally followed by '$' and '.');
 *   a number (the syntax above) with an optional trailing '.', unless
 *   format_marker is set (then a marker above is required).
 * For the arith task " 12" is well formatted, " Ugh, 12." and " The answer
 * is 12." are not.
 *
 * ---- external programs (cmd:) -----------------------------------------------
 * `cmd:PROGRAM ARGS` is split into words like a shell does for simple
 * quoting (verifier_split_command): spaces, tabs and newlines separate
 * words; '...' keeps everything literally; "..." keeps everything but \" \\
 * \$ \`, which stand for the second character; a backslash outside quotes
 * takes the next character literally. There is no shell: no variables, globs, pipes or
 * redirections (run `cmd:/bin/sh -c '...'` for those). A PROGRAM without '/'
 * is looked up on PATH. It is started once, by verifier_new, in its own
 * process group, with stdin and stdout connected to pipes to us, stderr
 * shared with ours, no other file descriptor, the default disposition of
 * every signal, and SIGKILL on the death of the thread that started it
 * (PR_SET_PDEATHSIG; start it from the rank's main thread). That signal
 * reaches the program only, not processes it started (verifier_free kills
 * the whole group): a wrapper script should `exec` its checker. Each call of
 * verifier_score sends one line per sample,
 *   {"prompt":"...","response":"...","answer":"..."}   (answer null if none)
 * JSON-escaped, with bytes that are not UTF-8 replaced by U+FFFD (so the
 * line is always valid JSON; a NUL byte ends a string), and reads one
 * number per line back, in the same order: a decimal number with optional
 * sign, fraction and exponent, surrounded by optional spaces (a "\r\n" end
 * is fine), finite as a double. Writing and reading are interleaved with
 * poll(), so a program that answers while it reads never deadlocks on a full
 * pipe. The program must flush each answer (Python: print(x, flush=True) or
 * python3 -u). Lines are numbered from 1 over the program's whole run (line k
 * of its output answers line k of its input).
 * Errors (-1 + err_set naming the program, the line and the sample of the
 * batch), after which the program is killed with its process group, reaped,
 * and every later call fails:
 *   it exits, is killed, or closes its stdout or stdin before answering
 *   every line; it waits longer than `timeout` seconds for one answer (the
 *   wait is timed from the call's start, then from the previous answer, and
 *   includes a write blocked because it stopped reading); a line is not a
 *   finite number ("abc", "nan", "1e999", "0x10", empty) or is longer than
 *   VERIFIER_LINE_MAX bytes; it prints more lines than it was sent (seen
 *   when the extra output is already there at the end of a call or the start
 *   of the next one). SIGPIPE is blocked in the calling thread while writing
 *   (a closed pipe is EPIPE, never the end of our process).
 * verifier_free closes the program's stdin, gives it VERIFIER_GRACE_MS to
 * exit, then kills its process group and reaps it. */
#ifndef VERIFIER_H
#define VERIFIER_H

#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"

/* Longest line accepted from a cmd: program, in bytes without its newline. */
#define VERIFIER_LINE_MAX 4096
/* How long verifier_free waits for a program to exit on its own. */
#define VERIFIER_GRACE_MS 200

/* The configuration keys of verifiers, a table of its own ({0}-terminated):
 * pass it to config_new beside the stage's keys. verifier, verifier_timeout,
 * verifier_offensive_penalty, verifier_word_penalty, verifier_word_cap,
 * verifier_format_weight, verifier_format_marker, verifier_tolerance. */
extern const CfgKey verifier_keys[];

/* What the keys say. spec is borrowed (from the Config or a literal). */
typedef struct {
    const char *spec;         /* gold | answer | format | cmd:PROGRAM ARGS */
    double timeout;           /* cmd: seconds per answer, > 0 */
    double offensive_penalty; /* gold: manners, >= 0 */
    double word_penalty;      /* gold: concision, per extra word, >= 0 */
    int word_cap;             /* gold: extra words counted at most, >= 0 */
    double format_weight;     /* gold, answer: weight of the format score */
    int format_marker;        /* format: an answer line needs a marker */
    double tolerance;         /* answer: relative numeric tolerance, >= 0 */
} VerifierOptions;

/* The defaults of verifier_keys (spec "gold"). */
void verifier_defaults(VerifierOptions *o);
/* Reads the keys of verifier_keys from c (which must declare them) and
 * checks the spec (verifier_check_spec). 0, or -1 + err_set. */
int verifier_options_from_config(const Config *c, VerifierOptions *o);
/* 0 if spec names a built-in verifier or is a cmd: line that splits into a
 * program and its arguments; else -1 + err_set("verifier: ..."). Does not
 * look for the program (verifier_new does). */
int verifier_check_spec(const char *spec);

/* ---- results ------------------------------------------------------------- */

typedef enum {
    VERIFIER_CORRECT,   /* 1 if the answer is right, else 0 (gold, answer) */
    VERIFIER_FORMAT,    /* the format score, 0 or 1 (gold, answer, format) */
    VERIFIER_MANNERS,   /* -offensive_penalty or 0 (gold) */
    VERIFIER_CONCISION, /* -word_penalty * min(extra words, word_cap) (gold) */
    VERIFIER_NCOMP
} VerifierComp;

/* "correct", "format", "manners", "concision" ("?" otherwise): names for the
 * logs. */
const char *verifier_comp_name(VerifierComp c);

typedef struct {
    double score;               /* the reward */
    double comp[VERIFIER_NCOMP]; /* components (0 where the verifier has none) */
} VerifierResult;

/* One sample. Strings end at their NUL; answer may be NULL (gold, format and
 * most cmd: programs do not need one). */
typedef struct {
    const char *prompt;
    const char *response;
    const char *answer;
} VerifierSample;

/* ---- the verifier -------------------------------------------------------- */

typedef struct Verifier Verifier;

/* Opens the verifier o->spec names (o is copied; the spec text too); starts
 * a cmd: program. NULL + err_set("verifier ...") for a bad spec, a program
 * not found or that cannot be run (its exec failed), bad options. */
Verifier *verifier_new(const VerifierOptions *o);
/* Scores samples s[0..n) into out[0..n). 0, or -1 + err_set naming the
 * verifier and the sample (and, for cmd:, the line); out is then undefined. */
int verifier_score(Verifier *v, int n, const VerifierSample *s, VerifierResult *out);
/* Stops and reaps a cmd: program (see the top); NULL is fine. */
void verifier_free(Verifier *v);

/* "gold", "answer", "format" or the cmd: spec as given. */
const char *verifier_name(const Verifier *v);
/* Bit (1u << c) set for each component c the verifier fills. */
unsigned verifier_components(const Verifier *v);
/* The pid of the cmd: program (still the same after it was stopped and
 * reaped, for tests); -1 for a built-in verifier. */
pid_t verifier_pid(const Verifier *v);

/* ---- the rules, for tests and for the rewarder's logs -------------------- */

typedef enum {
    VERIFIER_RULE_NONE,   /* no answer in the response */
    VERIFIER_RULE_BOXED,  /* \boxed{...} */
    VERIFIER_RULE_HASHES, /* #### ... */
    VERIFIER_RULE_MARKED, /* answer: ... */
    VERIFIER_RULE_NUMBER, /* the last number */
} VerifierRule;

/* The final answer of a response: response[start, start + len). */
typedef struct {
    VerifierRule rule;
    size_t start, len;
} VerifierAnswer;

/* Finds the final answer (rule at the top). Returns 1 if there is one, else
 * 0 (a->rule VERIFIER_RULE_NONE). */
int verifier_extract_answer(const char *response, VerifierAnswer *a);
/* 1 if the extracted answer a of response matches answer (rule at the top). */
int verifier_answer_match(const char *response, const VerifierAnswer *a, const char *answer, double tolerance);
/* 1 if s[0..len), trimmed of spaces, is exactly one number (syntax at the
 * top), its value in *value; else 0. */
int verifier_parse_number(const char *s, size_t len, double *value);
/* The format score of a response (rule at the top): 1 or 0. */
double verifier_format_score(const char *response, int marker_required);

/* The JSON line a cmd: program receives for s, without its newline;
 * malloc'd. */
char *verifier_json_line(const VerifierSample *s);
/* Splits a command line (the text after "cmd:") into words (rule at the
 * top). *argv is a NULL-terminated malloc'd array of malloc'd words, free
 * it with verifier_free_argv; *argc its length. 0, or -1 + err_set for an
 * unterminated quote, a trailing backslash, or no word at all. */
int verifier_split_command(const char *text, char ***argv, int *argc);
void verifier_free_argv(char **argv);

#endif
