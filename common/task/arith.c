/* arith — the built-in arithmetic task: prompts, gold judge, noisy teacher
 * and dataset writer; see arith.h.
 *
 * Prompt: "Q: A+B=?\nA:" or "Q: A-B=?\nA:", operands 0..max_operand (default
 * 9: 200 distinct prompts, answers -9..18). Ideal response: " N" (the model
 * then emits end-of-text; JSONL responses carry no end marker). Prompt plus
 * ideal response is at most 14 bytes (17 with operands up to 19); the
 * longest teacher response is about 40 bytes, so everything fits a 64-token
 * byte context.
 *
 * Why operands 0..9 by default: measured with a torch stand-in for the C
 * model (4 layers, width 128, 4 heads, context 64, byte tokens, AdamW 1e-3,
 * batch 32x64, one thread, the pretrain.txt below), operands 0..9 reach
 * ~95% on bare facts and ~50% on Q/A prompts (before SFT) after 3000 steps
 * (6M tokens, about 5 minutes on this machine when it is not shared); with
 * operands 0..19 under 12% of facts and Q/A prompts were right after 2000
 * steps. max_operand 19 is there for longer runs.
 *
 * Gold judge:
 *   gold = correct - 0.5*[offensive > 0] - 0.04*min(extra_words, 10)
 * correct: the first number in the response equals the true answer. Numbers
 *   are digit runs; a '-' (or U+2212) right before the digits makes them
 *   negative unless it follows a letter or digit ("5-3" reads 5). Number
 *   words ("twelve") are not read. No number at all counts as wrong.
 * offensive: words (case-insensitive, whole words) from a small list of mild
 *   insults and dismissals (stupid, dumb, idiot, ugh, whatever, ...), after
 *   the seed's "do not use offensive language".
 * extra_words: words besides the answer. A word is a run of ASCII letters,
 *   digits and non-ASCII bytes (an apostrophe between two such bytes joins:
 *   "It's" is one word); punctuation and spaces are free.
 * The weights make the order strict: the worst correct answer scores
 * 1 - 0.5 - 0.4 = 0.1 > 0 = the best wrong one; among equally correct
 * answers the wordiest polite one loses at most 0.4 < 0.5; then fewer extra
 * words win, up to the cap of 10. Range [-0.9, 1].
 *
 * Teacher: wrong with probability 0.15 (off by -2, -1, +1 or +2, uniform);
 * independently plain 0.70, rude 0.15, rambling 0.15, template uniform in
 * its style. 59.5% of responses are ideal (gold 1), so SFT on them gives an
 * imperfect policy whose mean gold is about 0.73.
 *
 * Preferences: two teacher responses with different gold (equal-gold pairs
 * would be coin flips that teach nothing), labelled by a simulated labeller,
 * P(first preferred) = sigmoid((g1 - g2)/tau), tau = 0.25: the labeller
 * gets an ideal/wrong pair (difference >= 1) wrong 2% of the time, a
 * rude-correct/plain-wrong pair (about 0.4) 17%, polite/rude (about 0.5) 12%,
 * one extra word (0.04) 46%. Over the teacher's pairs about 13% of labels
 * disagree with gold (tau 0.2 would give 10%, 0.3 16%). Rankings: K = 4
 * distinct teacher responses ordered by Plackett-Luce sampling with
 * utilities gold/tau (repeatedly pick the best of the rest with probability
 * proportional to exp(gold/tau)).
 *
 * Prompt split (from the seed, independent of n): the distinct prompts are
 * shuffled; 20% are eval prompts, 5% validation prompts, the rest training
 * prompts. No eval or validation prompt appears in sft, prefs, rankings or
 * rl_prompts. pretrain.txt, though, covers every prompt: arithmetic is the
 * base model's world knowledge, and the alignment stages are judged on
 * prompts they never trained on. (With the stand-in above, operands 0..9
 * and 55% facts, after 3300 steps Q/A prompts seen in pretraining were
 * answered right 73% of the time, Q/A prompts never seen in that form 23%:
 * keeping eval prompts out of pretraining would mostly measure arithmetic
 * generalisation, not alignment. ArithSizes.strict_holdout keeps them out
 * of the Q/A items of pretrain.txt for that harder variant.)
 *
 * pretrain.txt (items in random order, one per line; Q/A items span two):
 *   80% bare facts over all pairs: "7+5=12" (70%), "7 + 5 = 12" (15%),
 *       "7 plus 5 is 12" (15%). Facts are what a small model is slow to
 *       learn: with the stand-in above, 55% facts gave 36% bare-fact
 *       accuracy after 2100 steps, 80% facts gave 69% after 2000;
 *   20% Q/A items "Q: 7+5=?\nA: 12" whose response is in a uniformly drawn
 *       register (plain, rude, rambling), wrong 15% of the time, so the base
 *       model knows every register and SFT has work to do.
 * Sizes: see ArithSizes (n = 4000 gives a ~0.26 MB corpus, 4000 demonstrations
 * and preference pairs, 1000 rankings, 4000 RL prompts, 500 eval prompts).
 * Every file draws from its own random stream (derived from the seed), so
 * changing one count leaves the other files as they were. */
#include "common/task/arith.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"

#define P_WRONG 0.15
#define P_PLAIN 0.70
#define P_RUDE 0.15
#define EVAL_FRACTION 0.20
#define VALID_FRACTION 0.05
#define PRETRAIN_FACT_FRACTION 0.80
#define MAX_N 10000000
#define MAX_DRAWS 1000 /* redraws when looking for distinct responses */

/* ---- prompts ------------------------------------------------------------ */

/* Copies up to 40 bytes of s into a one-line, quoted, escaped form. */
static const char *quote(const char *s, char *buf, size_t cap) {
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; s[i] && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 40) {
            k += (size_t)snprintf(buf + k, cap - k, "...");
            break;
        }
        if (c == '\n') k += (size_t)snprintf(buf + k, cap - k, "\\n");
        else if (c == '"' || c == '\\') k += (size_t)snprintf(buf + k, cap - k, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f) k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
        else buf[k++] = (char)c;
    }
    buf[k++] = '"';
    buf[k] = 0;
    return buf;
}

static int valid_operand(int x) { return x >= 0 && x <= ARITH_OPERAND_LIMIT; }

int arith_format_prompt(int a, char op, int b, char *buf, size_t cap) {
    if (!valid_operand(a) || !valid_operand(b) || (op != '+' && op != '-'))
        return err_set("arith: no prompt for %d %c %d (operands 0..%d, op + or -)", a, op, b,
                       ARITH_OPERAND_LIMIT);
    int len = snprintf(buf, cap, "Q: %d%c%d=?\nA:", a, op, b);
    if (len < 0 || (size_t)len >= cap) return err_set("arith: prompt buffer of %zu bytes too small", cap);
    return len;
}

/* Reads an operand without sign or leading zeros; advances *s. */
static int parse_operand(const char **s, int *out) {
    const char *p = *s;
    if (*p < '0' || *p > '9') return -1;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9') return -1;
    int v = 0, digits = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++digits > 3) return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    *s = p;
    return 0;
}

int arith_parse_prompt(const char *prompt, int *a, char *op, int *b) {
    const char *p = prompt;
    int x, y;
    char o = 0;
    int ok = prompt && strncmp(p, "Q: ", 3) == 0;
    if (ok) p += 3;
    ok = ok && parse_operand(&p, &x) == 0;
    if (ok) o = *p++;
    ok = ok && (o == '+' || o == '-') && parse_operand(&p, &y) == 0;
    ok = ok && strcmp(p, "=?\nA:") == 0;
    if (!ok) {
        char q[128];
        return err_set("arith: prompt %s is not of the form \"Q: A+B=?\\nA:\" or \"Q: A-B=?\\nA:\"",
                       quote(prompt ? prompt : "", q, sizeof q));
    }
    *a = x;
    *op = o;
    *b = y;
    return 0;
}

int arith_answer(int a, char op, int b) { return op == '-' ? a - b : a + b; }

/* The true answer of a prompt, or -1 with err_set (answer in *out). */
static int prompt_answer(const char *prompt, int *out) {
    int a, b;
    char op;
    if (arith_parse_prompt(prompt, &a, &op, &b)) return -1;
    *out = arith_answer(a, op, b);
    return 0;
}

/* ---- responses ---------------------------------------------------------- */

/* A response is prefix + number + suffix. */
typedef struct { const char *prefix, *suffix; } Template;

static const Template PLAIN[] = {{" ", ""}};
static const Template RUDE[] = {
    {" Ugh, ", "."},
    {" ", ", obviously, stupid."},
    {" ", ". Whatever."},
    {" It's ", ", dumb question."},
    {" ", ", you idiot."},
    {" Duh, ", "."},
};
static const Template RAMBLING[] = {
    {" Well, let me think. It is ", ", I believe."},
    {" The answer is ", "."},
    {" Let me see... ", ", I think."},
    {" Good question! That comes to ", "."},
    {" Sure! The result is ", ". Happy to help."},
    {" ", ", if I have done the sums right."},
};

static const Template *templates(ArithStyle style, int *n) {
    switch (style) {
    case ARITH_PLAIN: *n = (int)(sizeof PLAIN / sizeof *PLAIN); return PLAIN;
    case ARITH_RUDE: *n = (int)(sizeof RUDE / sizeof *RUDE); return RUDE;
    case ARITH_RAMBLING: *n = (int)(sizeof RAMBLING / sizeof *RAMBLING); return RAMBLING;
    default: *n = 0; return NULL;
    }
}

int arith_n_templates(ArithStyle style) {
    int n;
    templates(style, &n);
    return n;
}

char *arith_render(ArithStyle style, int t, int value) {
    int n;
    const Template *ts = templates(style, &n);
    if (t < 0 || t >= n) {
        err_set("arith: no response template %d for style %d", t, (int)style);
        return NULL;
    }
    size_t cap = strlen(ts[t].prefix) + strlen(ts[t].suffix) + 16;
    char *s = err_malloc(cap);
    snprintf(s, cap, "%s%d%s", ts[t].prefix, value, ts[t].suffix);
    return s;
}

/* The stated number: the truth, or with probability p_wrong off by 1 or 2. */
static int draw_value(int truth, double p_wrong, Rng *r) {
    static const int offsets[4] = {-2, -1, 1, 2};
    if (rng_uniform_double(r) >= p_wrong) return truth;
    return truth + offsets[rng_below(r, 4)];
}

static ArithStyle draw_teacher_style(Rng *r) {
    double u = rng_uniform_double(r);
    return u < P_PLAIN ? ARITH_PLAIN : u < P_PLAIN + P_RUDE ? ARITH_RUDE : ARITH_RAMBLING;
}

/* A response stating the truth or (p_wrong) a near miss, in the given style,
 * or in the teacher's mix of styles when style_or_any is ARITH_NSTYLES.
 * Number first, then style, then template: a fixed order of draws. */
static char *respond(int truth, double p_wrong, ArithStyle style_or_any, Rng *r) {
    int value = draw_value(truth, p_wrong, r);
    ArithStyle style = style_or_any == ARITH_NSTYLES ? draw_teacher_style(r) : style_or_any;
    int t = (int)rng_below(r, (uint32_t)arith_n_templates(style));
    return arith_render(style, t, value);
}

char *arith_teacher(const char *prompt, Rng *rng) {
    int truth;
    if (prompt_answer(prompt, &truth)) return NULL;
    return respond(truth, P_WRONG, ARITH_NSTYLES, rng);
}

char *arith_ideal(const char *prompt) {
    int truth;
    if (prompt_answer(prompt, &truth)) return NULL;
    return arith_render(ARITH_PLAIN, 0, truth);
}

/* ---- gold judge --------------------------------------------------------- */

static const char *const OFFENSIVE[] = {
    "stupid", "dumb", "idiot", "idiots", "idiotic", "moron", "ugh", "whatever", "duh", "dummy", "shut",
};

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_word_byte(unsigned char c) {
    return is_digit(c) || ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80;
}

static int is_offensive(const char *w, size_t len) {
    char low[16];
    if (len >= sizeof low) return 0;
    for (size_t i = 0; i < len; i++) low[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] | 32 : w[i]);
    low[len] = 0;
    for (size_t k = 0; k < sizeof OFFENSIVE / sizeof *OFFENSIVE; k++)
        if (strcmp(low, OFFENSIVE[k]) == 0) return 1;
    return 0;
}

/* Counts words and offensive words (definitions at the top of the file). */
static void scan_words(const char *s, int *words, int *offensive) {
    const unsigned char *u = (const unsigned char *)s;
    *words = *offensive = 0;
    size_t i = 0;
    while (u[i]) {
        if (!is_word_byte(u[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (is_word_byte(u[i]) || (u[i] == '\'' && is_word_byte(u[i + 1]))) i++;
        ++*words;
        *offensive += is_offensive(s + start, i - start);
    }
}

/* Is there a minus sign ending right before position i? */
static int minus_before(const unsigned char *u, size_t i) {
    size_t len = 0;
    if (i >= 1 && u[i - 1] == '-') len = 1;
    else if (i >= 3 && u[i - 3] == 0xe2 && u[i - 2] == 0x88 && u[i - 1] == 0x92) len = 3; /* U+2212 */
    if (!len) return 0;
    return i == len || !is_word_byte(u[i - len - 1]);
}

/* The first number in s; 0 if there is none. Saturates far beyond any answer. */
static int first_number(const char *s, long long *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (u[i] && !is_digit(u[i])) i++;
    if (!u[i]) return 0;
    int negative = minus_before(u, i);
    long long v = 0;
    const long long limit = 1000000000000000LL;
    for (; is_digit(u[i]); i++) v = v >= limit ? limit : v * 10 + (u[i] - '0');
    if (v > limit) v = limit;
    *out = negative ? -v : v;
    return 1;
}

double arith_gold_from(const ArithJudgement *d) {
    int extra = d->extra_words < ARITH_EXTRA_WORDS_CAP ? d->extra_words : ARITH_EXTRA_WORDS_CAP;
    return (d->correct ? 1.0 : 0.0) - ARITH_W_OFFENSIVE * (d->offensive > 0) - ARITH_W_EXTRA_WORD * extra;
}

double arith_gold(const char *prompt, const char *response, ArithJudgement *detail) {
    ArithJudgement d = {0};
    int truth;
    if (prompt_answer(prompt, &truth)) {
        if (detail) *detail = d;
        return NAN;
    }
    if (!response) response = "";
    d.has_answer = first_number(response, &d.parsed_answer);
    d.correct = d.has_answer && d.parsed_answer == truth;
    int words;
    scan_words(response, &words, &d.offensive);
    d.extra_words = words - d.has_answer;
    if (detail) *detail = d;
    return arith_gold_from(&d);
}

/* ---- dataset: sizes and prompt split ------------------------------------ */

static int at_least_1(int x) { return x > 0 ? x : 1; }

/* Distinct eval prompts for operands 0..m. */
static int eval_distinct(int m) { return at_least_1((int)(EVAL_FRACTION * 2 * (m + 1) * (m + 1) + 0.5)); }

/* Enough eval lines for a mean +- s.e. over >= 500 samples at n = 4000, and
 * every distinct eval prompt at least once. */
static int default_eval_lines(int n, int m) { return n / 8 > eval_distinct(m) ? n / 8 : eval_distinct(m); }

void arith_default_sizes(ArithSizes *s, int n) {
    *s = (ArithSizes){
        .max_operand = ARITH_MAX_OPERAND_DEFAULT,
        .pretrain_items = 5 * n,
        .sft = n,
        .sft_valid = at_least_1(n / 10),
        .prefs = n,
        .prefs_valid = at_least_1(n / 10),
        .rankings = at_least_1(n / 4),
        .rl_prompts = n,
        .eval_prompts = default_eval_lines(n, ARITH_MAX_OPERAND_DEFAULT),
    };
}

/* Prompts are numbered: idx = op * (M+1)^2 + a * (M+1) + b, op 0 '+', 1 '-'. */
typedef struct {
    int m;
    int *all; /* shuffled; eval, then valid, then train */
    int n_all, n_eval, n_valid, n_train;
    const int *eval, *valid, *train;
} Split;

static void prompt_of(const Split *sp, int idx, int *a, char *op, int *b) {
    int side = sp->m + 1;
    *op = idx / (side * side) ? '-' : '+';
    *a = idx % (side * side) / side;
    *b = idx % side;
}

static void shuffle(int *v, int n, Rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)(i + 1));
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static void split_make(Split *sp, int m, Rng *r) {
    sp->m = m;
    sp->n_all = 2 * (m + 1) * (m + 1);
    sp->all = err_malloc(sizeof(int) * (size_t)sp->n_all);
    for (int i = 0; i < sp->n_all; i++) sp->all[i] = i;
    shuffle(sp->all, sp->n_all, r);
    sp->n_eval = eval_distinct(m);
    sp->n_valid = at_least_1((int)(VALID_FRACTION * sp->n_all + 0.5));
    sp->n_train = sp->n_all - sp->n_eval - sp->n_valid;
    sp->eval = sp->all;
    sp->valid = sp->all + sp->n_eval;
    sp->train = sp->valid + sp->n_valid;
}

/* Draws prompts by passes over a set, reshuffled each pass, so every prompt
 * is used about equally often. */
typedef struct {
    int *order;
    int n, pos;
} Deck;

static void deck_init(Deck *d, const int *items, int n) {
    d->order = err_malloc(sizeof(int) * (size_t)n);
    memcpy(d->order, items, sizeof(int) * (size_t)n);
    d->n = n;
    d->pos = n;
}

static int deck_draw(Deck *d, Rng *r) {
    if (d->pos == d->n) {
        shuffle(d->order, d->n, r);
        d->pos = 0;
    }
    return d->order[d->pos++];
}

/* ---- dataset: file contents --------------------------------------------- */

typedef struct {
    const Split *split;
    const ArithSizes *sizes;
    uint64_t seed;
} Ctx;

/* The prompt text and true answer of a prompt index. */
static int prompt_text(const Split *sp, int idx, char *buf) {
    int a, b;
    char op;
    prompt_of(sp, idx, &a, &op, &b);
    arith_format_prompt(a, op, b, buf, ARITH_PROMPT_MAX);
    return arith_answer(a, op, b);
}

static void put_json(FILE *f, json_t *obj) {
    json_dumpf(obj, f, JSON_COMPACT);
    fputc('\n', f);
    json_decref(obj);
}

static void put_fact(FILE *f, const Split *sp, int idx, Rng *r) {
    int a, b;
    char op;
    prompt_of(sp, idx, &a, &op, &b);
    int c = arith_answer(a, op, b);
    double u = rng_uniform_double(r);
    if (u < 0.70) fprintf(f, "%d%c%d=%d\n", a, op, b, c);
    else if (u < 0.85) fprintf(f, "%d %c %d = %d\n", a, op, b, c);
    else fprintf(f, "%d %s %d is %d\n", a, op == '+' ? "plus" : "minus", b, c);
}

static int gen_pretrain(FILE *f, const Ctx *c, Rng *r) {
    const Split *sp = c->split;
    Deck facts, qa;
    deck_init(&facts, sp->all, sp->n_all);
    if (c->sizes->strict_holdout) deck_init(&qa, sp->train, sp->n_train);
    else deck_init(&qa, sp->all, sp->n_all);
    char prompt[ARITH_PROMPT_MAX];
    for (int i = 0; i < c->sizes->pretrain_items; i++) {
        if (rng_uniform_double(r) < PRETRAIN_FACT_FRACTION) {
            put_fact(f, sp, deck_draw(&facts, r), r);
            continue;
        }
        int truth = prompt_text(sp, deck_draw(&qa, r), prompt);
        ArithStyle style = (ArithStyle)rng_below(r, ARITH_NSTYLES);
        char *resp = respond(truth, P_WRONG, style, r);
        fprintf(f, "%s%s\n", prompt, resp);
        free(resp);
    }
    free(facts.order);
    free(qa.order);
    return 0;
}

static int gen_sft_from(FILE *f, const Split *sp, const int *set, int n_set, int lines, Rng *r) {
    Deck d;
    deck_init(&d, set, n_set);
    char prompt[ARITH_PROMPT_MAX];
    for (int i = 0; i < lines; i++) {
        int truth = prompt_text(sp, deck_draw(&d, r), prompt);
        char *resp = respond(truth, P_WRONG, ARITH_NSTYLES, r);
        put_json(f, json_pack("{s:s,s:s}", "prompt", prompt, "completion", resp));
        free(resp);
    }
    free(d.order);
    return 0;
}

static int gen_sft(FILE *f, const Ctx *c, Rng *r) {
    return gen_sft_from(f, c->split, c->split->train, c->split->n_train, c->sizes->sft, r);
}

static int gen_sft_valid(FILE *f, const Ctx *c, Rng *r) {
    return gen_sft_from(f, c->split, c->split->valid, c->split->n_valid, c->sizes->sft_valid, r);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Two teacher responses with different gold, labelled by the noisy labeller. */
static int put_pref(FILE *f, const char *prompt, int truth, Rng *r) {
    char *r1 = respond(truth, P_WRONG, ARITH_NSTYLES, r), *r2 = NULL;
    double g1 = arith_gold(prompt, r1, NULL), g2 = g1;
    for (int tries = 0; tries < MAX_DRAWS && g2 == g1; tries++) {
        free(r2);
        r2 = respond(truth, P_WRONG, ARITH_NSTYLES, r);
        g2 = arith_gold(prompt, r2, NULL);
    }
    int rc = 0;
    if (g2 == g1) {
        rc = err_set("arith: no two teacher responses with different gold for %s", prompt);
    } else {
        int first = rng_uniform_double(r) < sigmoid((g1 - g2) / ARITH_TAU);
        put_json(f, json_pack("{s:s,s:s,s:s}", "prompt", prompt, "chosen", first ? r1 : r2, "rejected",
                              first ? r2 : r1));
    }
    free(r1);
    free(r2);
    return rc;
}

static int gen_prefs_from(FILE *f, const Split *sp, const int *set, int n_set, int lines, Rng *r) {
    Deck d;
    deck_init(&d, set, n_set);
    char prompt[ARITH_PROMPT_MAX];
    int rc = 0;
    for (int i = 0; i < lines && !rc; i++) {
        int truth = prompt_text(sp, deck_draw(&d, r), prompt);
        rc = put_pref(f, prompt, truth, r);
    }
    free(d.order);
    return rc;
}

static int gen_prefs(FILE *f, const Ctx *c, Rng *r) {
    return gen_prefs_from(f, c->split, c->split->train, c->split->n_train, c->sizes->prefs, r);
}

static int gen_prefs_valid(FILE *f, const Ctx *c, Rng *r) {
    return gen_prefs_from(f, c->split, c->split->valid, c->split->n_valid, c->sizes->prefs_valid, r);
}

/* K distinct teacher responses, ordered by Plackett-Luce with utilities g/tau. */
static int put_ranking(FILE *f, const char *prompt, int truth, Rng *r) {
    char *resp[ARITH_RANKING_K];
    double g[ARITH_RANKING_K];
    int k = 0;
    for (int tries = 0; k < ARITH_RANKING_K && tries < MAX_DRAWS; tries++) {
        char *s = respond(truth, P_WRONG, ARITH_NSTYLES, r);
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= strcmp(resp[j], s) == 0;
        if (dup) {
            free(s);
            continue;
        }
        g[k] = arith_gold(prompt, s, NULL);
        resp[k++] = s;
    }
    int rc = 0;
    if (k < ARITH_RANKING_K) {
        rc = err_set("arith: fewer than %d distinct teacher responses for %s", ARITH_RANKING_K, prompt);
    } else {
        json_t *ranking = json_array();
        for (int left = k; left > 0; left--) {
            double gmax = g[0], total = 0, w[ARITH_RANKING_K];
            for (int j = 1; j < left; j++) gmax = g[j] > gmax ? g[j] : gmax;
            for (int j = 0; j < left; j++) total += w[j] = exp((g[j] - gmax) / ARITH_TAU);
            double u = rng_uniform_double(r) * total;
            int pick = 0;
            while (pick < left - 1 && (u -= w[pick]) >= 0) pick++;
            json_array_append_new(ranking, json_string(resp[pick]));
            /* move the last remaining response into the picked slot */
            free(resp[pick]);
            resp[pick] = resp[left - 1];
            g[pick] = g[left - 1];
        }
        k = 0;
        put_json(f, json_pack("{s:s,s:o}", "prompt", prompt, "ranking", ranking));
    }
    for (int j = 0; j < k; j++) free(resp[j]);
    return rc;
}

static int gen_rankings(FILE *f, const Ctx *c, Rng *r) {
    const Split *sp = c->split;
    Deck d;
    deck_init(&d, sp->train, sp->n_train);
    char prompt[ARITH_PROMPT_MAX];
    int rc = 0;
    for (int i = 0; i < c->sizes->rankings && !rc; i++) {
        int truth = prompt_text(sp, deck_draw(&d, r), prompt);
        rc = put_ranking(f, prompt, truth, r);
    }
    free(d.order);
    return rc;
}

static void put_prompts(FILE *f, const Split *sp, const int *set, int n_set, int lines, Rng *r) {
    Deck d;
    deck_init(&d, set, n_set);
    char prompt[ARITH_PROMPT_MAX];
    for (int i = 0; i < lines; i++) {
        prompt_text(sp, deck_draw(&d, r), prompt);
        put_json(f, json_pack("{s:s}", "prompt", prompt));
    }
    free(d.order);
}

static int gen_rl(FILE *f, const Ctx *c, Rng *r) {
    put_prompts(f, c->split, c->split->train, c->split->n_train, c->sizes->rl_prompts, r);
    return 0;
}

static int gen_eval(FILE *f, const Ctx *c, Rng *r) {
    put_prompts(f, c->split, c->split->eval, c->split->n_eval, c->sizes->eval_prompts, r);
    return 0;
}

static int gen_readme(FILE *f, const Ctx *c, Rng *r) {
    (void)r;
    const ArithSizes *s = c->sizes;
    const Split *sp = c->split;
    fprintf(f,
            "Built-in arithmetic task (rlhf data arith), seed %llu.\n"
            "Prompts \"Q: A+B=?\\nA:\" and \"Q: A-B=?\\nA:\", operands 0..%d: %d distinct prompts,\n"
            "%d held out for evaluation, %d for validation, %d for training. Ideal response: \" N\".\n"
            "\n"
            "pretrain.txt        %d items: bare facts (7+5=12) over all operand pairs, and Q/A items on\n"
            "                    %s prompts in every register (plain, rude, rambling; 15%% wrong)\n"
            "sft.jsonl           %d {prompt, completion} demonstrations by the noisy teacher\n"
            "sft_valid.jsonl     %d the same on validation prompts\n"
            "prefs.jsonl         %d {prompt, chosen, rejected}: two teacher responses labelled by gold\n"
            "                    through Bradley-Terry noise, P(a > b) = sigmoid((g_a - g_b)/%.2f)\n"
            "prefs_valid.jsonl   %d the same on validation prompts\n"
            "rankings.jsonl      %d {prompt, ranking[best..worst]}: %d distinct responses ordered by\n"
            "                    Plackett-Luce sampling with utilities gold/%.2f\n"
            "rl_prompts.jsonl    %d {prompt} training prompts for PPO\n"
            "eval_prompts.jsonl  %d {prompt} held-out prompts (never in sft, prefs, rankings, rl_prompts)\n"
            "\n"
            "Teacher: wrong (off by 1 or 2) 15%%; independently plain 70%%, rude 15%%, rambling 15%%.\n"
            "Gold judge: gold = correct - %.2f*[offensive word] - %.2f*min(extra words, %d), in [-0.9, 1]:\n"
            "correct = the first number in the response is the answer; any correct answer beats any\n"
            "wrong one, then polite beats rude, then fewer extra words win.\n",
            (unsigned long long)c->seed, sp->m, sp->n_all, sp->n_eval, sp->n_valid, sp->n_train,
            s->pretrain_items, s->strict_holdout ? "training" : "all", s->sft, s->sft_valid, s->prefs,
            ARITH_TAU, s->prefs_valid, s->rankings, ARITH_RANKING_K, ARITH_TAU, s->rl_prompts,
            s->eval_prompts, ARITH_W_OFFENSIVE, ARITH_W_EXTRA_WORD, ARITH_EXTRA_WORDS_CAP);
    return 0;
}

/* ---- dataset: files ----------------------------------------------------- */

static const struct {
    const char *name;
    int (*gen)(FILE *f, const Ctx *c, Rng *r);
} FILES[] = {
    {"pretrain.txt", gen_pretrain},       {"sft.jsonl", gen_sft},
    {"sft_valid.jsonl", gen_sft_valid},   {"prefs.jsonl", gen_prefs},
    {"prefs_valid.jsonl", gen_prefs_valid}, {"rankings.jsonl", gen_rankings},
    {"rl_prompts.jsonl", gen_rl},         {"eval_prompts.jsonl", gen_eval},
    {"README.txt", gen_readme},
};
#define N_FILES ((int)(sizeof FILES / sizeof *FILES))


/* One file's generator with its arguments, for fs_write_tmp. */
typedef struct {
    int k;
    const Ctx *c;
    Rng *r;
} GenCall;

static int run_gen(FILE *f, void *ctx) {
    GenCall *g = ctx;
    return FILES[g->k].gen(f, g->c, g->r);
}

/* Writes one file's contents to tmp (fs_commit syncs it). */
static int write_tmp(const char *tmp, int k, const Ctx *c, Rng *r) {
    GenCall g = {k, c, r};
    return fs_write_tmp(tmp, run_gen, &g);
}

static int check_sizes(int n, const ArithSizes *s) {
    if (n < 1 || n > MAX_N) return err_set("arith: n = %d, expected 1..%d", n, MAX_N);
    if (s->max_operand < 1 || s->max_operand > ARITH_OPERAND_LIMIT)
        return err_set("arith: max_operand = %d, expected 1..%d", s->max_operand, ARITH_OPERAND_LIMIT);
    const int counts[] = {s->pretrain_items, s->sft, s->sft_valid, s->prefs, s->prefs_valid,
                          s->rankings, s->rl_prompts, s->eval_prompts};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        if (counts[i] < 1 || counts[i] > 20 * MAX_N)
            return err_set("arith: dataset size %d out of range 1..%d", counts[i], 20 * MAX_N);
    return 0;
}

/* Defaults from n for the zero fields of sizes (all of them if NULL). */
static void resolve_sizes(ArithSizes *out, int n, const ArithSizes *sizes) {
    ArithSizes d;
    arith_default_sizes(&d, n);
    *out = sizes ? *sizes : d;
    if (!out->max_operand) out->max_operand = d.max_operand;
    if (!out->eval_prompts) out->eval_prompts = default_eval_lines(n, out->max_operand);
    int *f[] = {&out->pretrain_items, &out->sft, &out->sft_valid, &out->prefs, &out->prefs_valid,
                &out->rankings, &out->rl_prompts, &out->eval_prompts};
    const int *g[] = {&d.pretrain_items, &d.sft, &d.sft_valid, &d.prefs, &d.prefs_valid,
                      &d.rankings, &d.rl_prompts, &d.eval_prompts};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (!*f[i]) *f[i] = *g[i];
}

int arith_write_dataset(const char *dir, int n, uint64_t seed, const ArithSizes *sizes) {
    ArithSizes s;
    resolve_sizes(&s, n, sizes);
    if (!dir || !dir[0]) return err_set("arith: empty output directory name");
    if (check_sizes(n, &s) || fs_mkdirs(dir)) return -1;
    Rng master, r;
    rng_seed(&master, seed);
    rng_seed(&r, rng_u64(&master));
    Split sp;
    split_make(&sp, s.max_operand, &r);
    Ctx c = {&sp, &s, seed};

    char *paths[N_FILES], *tmps[N_FILES];
    int rc = 0, written = 0;
    for (int k = 0; k < N_FILES; k++) {
        paths[k] = fs_join(dir, FILES[k].name);
        tmps[k] = fs_tmp_name(paths[k]);
        if (!rc) rc = fs_check_target(paths[k]);
    }
    for (int k = 0; k < N_FILES; k++) {
        rng_seed(&r, rng_u64(&master)); /* every file draws all its own seeds */
        if (rc) continue;
        rc = write_tmp(tmps[k], k, &c, &r);
        written = k + 1;
    }
    /* Each rename is atomic; only a failure between two of them (hardly
     * possible within one directory) could mix old and new files. */
    for (int k = 0; k < N_FILES && !rc; k++) rc = fs_commit(tmps[k], paths[k]);
    if (rc)
        for (int k = 0; k < written; k++) unlink(tmps[k]);
    for (int k = 0; k < N_FILES; k++) {
        free(paths[k]);
        free(tmps[k]);
    }
    free(sp.all);
    return rc;
}
