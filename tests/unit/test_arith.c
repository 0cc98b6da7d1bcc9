/* Tests for common/task/arith.c, the built-in arithmetic task: prompt format and
 * rejection of foreign prompts, the gold judge on hand-scored responses and
 * its strict ordering over every teacher response, the teacher's rates
 * against the documented probabilities, and the dataset writer: every file
 * read back with common/io/jsonl.h, held-out prompts disjoint from training,
 * label noise against its analytic expectation, determinism, and errors that
 * leave nothing half-written. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/task/arith.h"
#include "common/err.h"
#include "common/io/jsonl.h"
#include "tests/harness.h"

#define M 19 /* prompt_index covers operands 0..19 */
#define SIDE (M + 1)
#define N_PROMPTS (2 * SIDE * SIDE)

/* ---- helpers ------------------------------------------------------------ */

/* Index of a prompt over operands 0..M (independent of arith.c's numbering);
 * -1 if it does not parse or is out of range. */
static int prompt_index(const char *prompt) {
    int a, b;
    char op;
    if (arith_parse_prompt(prompt, &a, &op, &b) || a > M || b > M) return -1;
    return (op == '-') * SIDE * SIDE + a * SIDE + b;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static const char *const DATA_FILES[] = {
    "pretrain.txt",     "sft.jsonl",        "sft_valid.jsonl",    "prefs.jsonl", "prefs_valid.jsonl",
    "rankings.jsonl",   "rl_prompts.jsonl", "eval_prompts.jsonl", "README.txt",
};
#define N_DATA_FILES ((int)(sizeof DATA_FILES / sizeof *DATA_FILES))

/* ---- prompts ------------------------------------------------------------ */

TEST(arith_prompt_format_and_parse) {
    char buf[ARITH_PROMPT_MAX];
    CHECK(arith_format_prompt(7, '+', 5, buf, sizeof buf) == 11);
    CHECK(strcmp(buf, "Q: 7+5=?\nA:") == 0);
    CHECK(arith_format_prompt(999, '-', 999, buf, sizeof buf) == 15);
    CHECK(strcmp(buf, "Q: 999-999=?\nA:") == 0);
    CHECK(arith_answer(3, '-', 9) == -6 && arith_answer(19, '+', 19) == 38);

    int bad = 0;
    for (int op = 0; op < 2; op++)
        for (int a = 0; a <= M; a++)
            for (int b = 0; b <= M; b++) {
                char o = op ? '-' : '+', o2 = 0;
                int a2 = -1, b2 = -1;
                bad += arith_format_prompt(a, o, b, buf, sizeof buf) < 0;
                bad += arith_parse_prompt(buf, &a2, &o2, &b2) != 0 || a2 != a || b2 != b || o2 != o;
            }
    CHECKF(bad == 0, "%d prompts did not round-trip", bad);

    CHECK(arith_format_prompt(1000, '+', 1, buf, sizeof buf) == -1 && strstr(err_msg(), "1000"));
    CHECK(arith_format_prompt(1, '*', 1, buf, sizeof buf) == -1);
    CHECK(arith_format_prompt(-1, '+', 1, buf, sizeof buf) == -1);
    CHECK(arith_format_prompt(1, '+', 1, buf, 5) == -1 && strstr(err_msg(), "too small"));
}

TEST(arith_prompt_rejects_foreign) {
    const char *foreign[] = {
        "",
        "Q: 7+5=?",
        "Q: 7+5=?\nA: ",
        "Q: 7+5=?\nA:x",
        "Q: 07+5=?\nA:",
        "Q: 7*5=?\nA:",
        "Q: -7+5=?\nA:",
        "Q: 1000+5=?\nA:",
        "Q: 7++5=?\nA:",
        "q: 7+5=?\nA:",
        "Q:7+5=?\nA:",
        "Q: 7 + 5=?\nA:",
        "Q: 7+5=?\r\nA:",
        "Q: +5=?\nA:",
        "Human: What is the capital of France?\n\nAssistant:",
        "Q: 7+5=?\nA:\nQ: 7+5=?\nA:",
    };
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        int a = 42, b = 42;
        char op = 'x';
        err_clear();
        CHECKF(arith_parse_prompt(foreign[i], &a, &op, &b) == -1, "accepted foreign prompt %zu", i);
        CHECKF(a == 42 && b == 42 && op == 'x', "outputs written for foreign prompt %zu", i);
        CHECKF(strstr(err_msg(), "not of the form") && !strchr(err_msg(), '\n'),
               "message for prompt %zu: %s", i, err_msg());
        ArithJudgement d = {.has_answer = 1, .parsed_answer = 1, .correct = 1, .offensive = 1, .extra_words = 1};
        CHECK(isnan(arith_gold(foreign[i], " 12", &d)));
        CHECK(d.has_answer == 0 && d.correct == 0 && d.extra_words == 0 && d.offensive == 0);
        Rng r;
        rng_seed(&r, 1);
        CHECK(arith_teacher(foreign[i], &r) == NULL);
        CHECK(arith_ideal(foreign[i]) == NULL);
    }
    /* the message quotes the prompt with its newline escaped */
    arith_parse_prompt("Hello\nthere", &(int){0}, &(char){0}, &(int){0});
    CHECKF(strstr(err_msg(), "\"Hello\\nthere\""), "%s", err_msg());
    /* a long prompt is cut in the message */
    char longp[300];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    arith_parse_prompt(longp, &(int){0}, &(char){0}, &(int){0});
    CHECKF(strlen(err_msg()) < 150 && strstr(err_msg(), "..."), "%s", err_msg());
    CHECK(arith_parse_prompt(NULL, &(int){0}, &(char){0}, &(int){0}) == -1);
}

/* ---- gold judge --------------------------------------------------------- */

typedef struct {
    const char *prompt, *response;
    int has_answer;
    long long parsed;
    int correct, offensive, extra;
    double gold; /* worked out by hand from the formula */
} Case;

TEST(arith_gold_hand_cases) {
    const char *p75 = "Q: 7+5=?\nA:", *p39 = "Q: 3-9=?\nA:";
    const Case cases[] = {
        {p75, " 12", 1, 12, 1, 0, 0, 1.0},
        {p75, "12", 1, 12, 1, 0, 0, 1.0},
        {p75, " 12.", 1, 12, 1, 0, 0, 1.0},          /* punctuation is free */
        {p75, " 012", 1, 12, 1, 0, 0, 1.0},
        {p75, " 13", 1, 13, 0, 0, 0, 0.0},
        {p75, " -12", 1, -12, 0, 0, 0, 0.0},
        {p75, "", 0, 0, 0, 0, 0, 0.0},
        {p75, " twelve", 0, 0, 0, 0, 1, -0.04},       /* number words are not read */
        {p75, " I don't know.", 0, 0, 0, 0, 3, -0.12}, /* "don't" is one word */
        {p75, " The answer is 12.", 1, 12, 1, 0, 3, 0.88},
        {p75, " Well, let me think. It is 12, I believe.", 1, 12, 1, 0, 8, 0.68},
        {p75, " 12, or maybe 13", 1, 12, 1, 0, 3, 0.88}, /* the first number counts */
        {p75, " 7+5=12", 1, 7, 0, 0, 2, -0.08},        /* echoing the question: 7 first */
        {p75, " 12-3", 1, 12, 1, 0, 1, 0.96},
        {p75, " Ugh, 12.", 1, 12, 1, 1, 1, 0.46},
        {p75, " 12, you IDIOT!", 1, 12, 1, 1, 2, 0.42},  /* case-insensitive */
        {p75, " 12. Whatever. Stupid. Dumb.", 1, 12, 1, 3, 3, 0.38}, /* one penalty */
        {p75, " 12, stupidity aside", 1, 12, 1, 0, 2, 0.92}, /* whole words only */
        {p75, " Ugh, 13.", 1, 13, 0, 1, 1, -0.54},
        {p75, " ugh whatever dumb", 0, 0, 0, 3, 3, -0.62},
        {p75, " 12 a b c d e f g h i j k l m n o", 1, 12, 1, 0, 15, 0.6}, /* cap 10 */
        {p75, " idiot a b c d e f g h i j k l m n o", 0, 0, 0, 1, 16, -0.9}, /* the minimum */
        {p75, " 99999999999999999999999", 1, 1000000000000000LL, 0, 0, 0, 0.0},
        {p75, " 12 \xc3\xa9t\xc3\xa9", 1, 12, 1, 0, 1, 0.96}, /* non-ASCII word */
        {p75, " 1 2", 1, 1, 0, 0, 1, -0.04},
        {p39, " -6", 1, -6, 1, 0, 0, 1.0},
        {p39, " 6", 1, 6, 0, 0, 0, 0.0},
        {p39, " The answer is -6.", 1, -6, 1, 0, 3, 0.88},
        {p39, " \xe2\x88\x92" "6", 1, -6, 1, 0, 0, 1.0}, /* U+2212 minus */
        {p39, " x-6", 1, 6, 0, 0, 1, -0.04},              /* a hyphen after a letter */
        {p39, "-6", 1, -6, 1, 0, 0, 1.0},
        {p39, " --6", 1, -6, 1, 0, 0, 1.0},
        {"Q: 0+0=?\nA:", " 0", 1, 0, 1, 0, 0, 1.0},
        {"Q: 0+0=?\nA:", " -0", 1, 0, 1, 0, 0, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const Case *c = &cases[i];
        ArithJudgement d;
        double g = arith_gold(c->prompt, c->response, &d);
        CHECKF(fabs(g - c->gold) < 1e-12 && d.has_answer == c->has_answer && d.parsed_answer == c->parsed &&
                   d.correct == c->correct && d.offensive == c->offensive && d.extra_words == c->extra,
               "case %zu %s: gold %g (want %g) has %d parsed %lld correct %d offensive %d extra %d", i,
               c->response, g, c->gold, d.has_answer, d.parsed_answer, d.correct, d.offensive,
               d.extra_words);
        CHECK(fabs(arith_gold_from(&d) - g) < 1e-15);
        CHECK(g >= -0.9 - 1e-12 && g <= 1.0);
    }
    CHECK(arith_gold(p75, NULL, NULL) == 0.0);
    char *ideal = arith_ideal(p39);
    CHECK(ideal && strcmp(ideal, " -6") == 0);
    free(ideal);
}

/* Lexicographic key the judge must respect: correct, then polite, then
 * fewer extra words (capped). Returns -1, 0 or 1. */
static int key_cmp(const ArithJudgement *x, const ArithJudgement *y) {
    if (x->correct != y->correct) return x->correct ? 1 : -1;
    int px = x->offensive == 0, py = y->offensive == 0;
    if (px != py) return px ? 1 : -1;
    int ex = x->extra_words < 10 ? x->extra_words : 10, ey = y->extra_words < 10 ? y->extra_words : 10;
    return ex < ey ? 1 : ex > ey ? -1 : 0;
}

TEST(arith_gold_strict_order_over_teacher_responses) {
    const char *prompts[] = {"Q: 7+5=?\nA:", "Q: 3-9=?\nA:", "Q: 0+0=?\nA:", "Q: 19-19=?\nA:",
                             "Q: 19+19=?\nA:", "Q: 0-19=?\nA:"};
    const int offsets[] = {0, -2, -1, 1, 2};
    int pairs = 0, bad = 0;
    for (size_t k = 0; k < sizeof prompts / sizeof *prompts; k++) {
        int a, b;
        char op;
        CHECK(arith_parse_prompt(prompts[k], &a, &op, &b) == 0);
        int truth = arith_answer(a, op, b);
        char *resp[128];
        double g[128];
        ArithJudgement d[128];
        int n = 0;
        for (int s = 0; s < ARITH_NSTYLES; s++)
            for (int t = 0; t < arith_n_templates((ArithStyle)s); t++)
                for (int o = 0; o < 5 && n < 128; o++) {
                    resp[n] = arith_render((ArithStyle)s, t, truth + offsets[o]);
                    g[n] = arith_gold(prompts[k], resp[n], &d[n]);
                    /* the judge reads back what the teacher meant */
                    CHECKF(d[n].correct == (o == 0) && (d[n].offensive > 0) == (s == ARITH_RUDE) &&
                               (d[n].extra_words > 0) == (s != ARITH_PLAIN),
                           "%s: style %d template %d judged %d/%d/%d", resp[n], s, t, d[n].correct,
                           d[n].offensive, d[n].extra_words);
                    n++;
                }
        CHECK(n == 5 * (1 + arith_n_templates(ARITH_RUDE) + arith_n_templates(ARITH_RAMBLING)));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                int want = key_cmp(&d[i], &d[j]);
                int got = g[i] > g[j] + 1e-9 ? 1 : g[i] < g[j] - 1e-9 ? -1 : 0;
                pairs++;
                if (want != got && bad++ < 5)
                    CHECKF(0, "%s (%g) vs %s (%g): order %d, key %d", resp[i], g[i], resp[j], g[j], got,
                           want);
            }
        for (int i = 0; i < n; i++) free(resp[i]);
    }
    CHECKF(bad == 0, "%d of %d pairs out of order", bad, pairs);
    CHECK(arith_render(ARITH_PLAIN, 1, 3) == NULL && arith_render(ARITH_NSTYLES, 0, 3) == NULL);
    CHECK(arith_render(ARITH_RUDE, -1, 3) == NULL);
}

/* ---- teacher ------------------------------------------------------------ */

typedef struct {
    int n, correct, rude, rambling, ideal;
    double gold;
} Stats;

static void stats_add(Stats *s, const char *prompt, const char *resp) {
    ArithJudgement d;
    s->gold += arith_gold(prompt, resp, &d);
    s->n++;
    s->correct += d.correct;
    s->rude += d.offensive > 0;
    s->rambling += d.offensive == 0 && d.extra_words > 0;
    s->ideal += d.correct && d.offensive == 0 && d.extra_words == 0;
}

static void stats_print(const char *what, const Stats *s) {
    printf("  %s: %d responses, mean gold %.3f, correct %.3f, rude %.3f, rambling %.3f, ideal %.3f\n",
           what, s->n, s->gold / s->n, (double)s->correct / s->n, (double)s->rude / s->n,
           (double)s->rambling / s->n, (double)s->ideal / s->n);
}

/* |observed fraction - p| within 4 standard errors. The seeds are fixed, so
 * these checks are deterministic; the margins only absorb changes in the
 * order of random draws. */
static int near_rate(int hits, int n, double p) {
    return fabs((double)hits / n - p) < 4 * sqrt(p * (1 - p) / n);
}

TEST(arith_teacher_rates) {
    /* Hand-derived: P(correct) 0.85, rude 0.15, rambling 0.15, ideal
     * 0.85*0.70. Mean extra words: rude templates 1,2,1,3,2,1 (mean 10/6),
     * rambling 8,3,5,5,7,7 (mean 35/6), so
     * E[gold] = 0.85 - 0.5*0.15 - 0.04*(0.15*10/6 + 0.15*35/6) = 0.730. */
    const double want_gold = 0.85 - 0.5 * 0.15 - 0.04 * (0.15 * 10 / 6 + 0.15 * 35 / 6);
    Rng r;
    rng_seed(&r, 12345);
    Stats s = {0};
    const char *prompts[] = {"Q: 7+5=?\nA:", "Q: 3-9=?\nA:", "Q: 19+19=?\nA:"};
    for (int i = 0; i < 30000; i++) {
        const char *p = prompts[i % 3];
        char *resp = arith_teacher(p, &r);
        stats_add(&s, p, resp);
        free(resp);
    }
    stats_print("teacher", &s);
    CHECK(near_rate(s.correct, s.n, 0.85));
    CHECK(near_rate(s.rude, s.n, 0.15));
    CHECK(near_rate(s.rambling, s.n, 0.15));
    CHECK(near_rate(s.ideal, s.n, 0.85 * 0.70));
    CHECKF(fabs(s.gold / s.n - want_gold) < 0.01, "mean gold %g, want %g", s.gold / s.n, want_gold);

    /* same seed, same responses */
    Rng r1, r2;
    rng_seed(&r1, 9);
    rng_seed(&r2, 9);
    int same = 1;
    for (int i = 0; i < 100; i++) {
        char *x = arith_teacher("Q: 4-4=?\nA:", &r1), *y = arith_teacher("Q: 4-4=?\nA:", &r2);
        same &= strcmp(x, y) == 0;
        free(x);
        free(y);
    }
    CHECK(same);
}

/* ---- dataset ------------------------------------------------------------ */

/* Prompt sets seen in a dataset, by prompt_index. */
typedef struct {
    char train[N_PROMPTS], valid[N_PROMPTS], eval[N_PROMPTS], pretrain_qa[N_PROMPTS];
} Seen;

/* What read_jsonl gathers: teacher rates, label noise, ranking order. */
typedef struct {
    Stats sft;
    int prefs, flipped, ties;
    double flip_expected, flip_var;
    int rankings, top_is_best;
    double top_expected;
} DataStats;

/* Reads a JSONL file checking the fields of its kind; marks its prompts in
 * mark (may be NULL). Returns the number of records or -1. kind: 's' SFT,
 * 'p' prefs, 'r' rankings, 'q' prompts only. */
static int read_jsonl(const char *path, char kind, char *mark, DataStats *ds) {
    Jsonl *j = jsonl_open(path);
    CHECKF(j != NULL, "%s: %s", path, err_msg());
    if (!j) return -1;
    json_t *rec;
    int rc, n = 0, bad = 0;
    while ((rc = jsonl_next(j, &rec)) == 1) {
        const char *prompt, *a, *b;
        n++;
        if (jsonl_get_str(j, rec, "prompt", &prompt)) {
            bad++;
            continue;
        }
        int idx = prompt_index(prompt);
        if (idx < 0) {
            bad++;
            continue;
        }
        if (mark) mark[idx] = 1;
        if (kind == 's') {
            if (jsonl_get_str(j, rec, "completion", &a)) bad++;
            else stats_add(&ds->sft, prompt, a);
        } else if (kind == 'p') {
            if (jsonl_get_str(j, rec, "chosen", &a) || jsonl_get_str(j, rec, "rejected", &b)) {
                bad++;
                continue;
            }
            double ga = arith_gold(prompt, a, NULL), gb = arith_gold(prompt, b, NULL);
            double q = sigmoid(-fabs(ga - gb) / ARITH_TAU); /* P(label disagrees with gold) */
            bad += strcmp(a, b) == 0;
            ds->prefs++;
            ds->ties += ga == gb;
            ds->flipped += ga < gb;
            ds->flip_expected += q;
            ds->flip_var += q * (1 - q);
        } else if (kind == 'r') {
            const char **rank;
            int k;
            if (jsonl_get_str_array(j, rec, "ranking", &rank, &k)) {
                bad++;
                continue;
            }
            bad += k != ARITH_RANKING_K;
            double g[ARITH_RANKING_K], z = 0, gmax = -1e9;
            for (int i = 0; i < k && i < ARITH_RANKING_K; i++) {
                g[i] = arith_gold(prompt, rank[i], NULL);
                gmax = g[i] > gmax ? g[i] : gmax;
                for (int m = 0; m < i; m++) bad += strcmp(rank[i], rank[m]) == 0;
            }
            /* Plackett-Luce: the first pick is the best with probability
             * sum over best-scoring responses of exp(g/tau) / sum exp(g/tau). */
            double pbest = 0;
            for (int i = 0; i < k && i < ARITH_RANKING_K; i++) {
                z += exp(g[i] / ARITH_TAU);
                if (g[i] == gmax) pbest += exp(g[i] / ARITH_TAU);
            }
            ds->rankings++;
            ds->top_expected += pbest / z;
            ds->top_is_best += g[0] == gmax;
            free(rank);
        }
    }
    CHECKF(rc == 0, "%s: %s", path, err_msg());
    CHECKF(bad == 0, "%s: %d bad records", path, bad);
    jsonl_close(j);
    return rc == 0 && bad == 0 ? n : -1;
}

/* Checks pretrain.txt line by line: facts are true, Q/A items are on
 * training prompts only. Returns the file size or -1. */
static long check_pretrain(const char *path, char *qa_mark, int *facts, int *qa) {
    size_t len;
    char *text = harness_read_file(path, &len);
    CHECK(text != NULL);
    if (!text) return -1;
    int bad = 0;
    *facts = *qa = 0;
    char *save = NULL;
    char *prev_q = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int a, b, c;
        char op, word[8];
        if (prev_q) { /* the answer line of a Q/A item */
            char prompt[64];
            snprintf(prompt, sizeof prompt, "%s\nA:", prev_q);
            int idx = prompt_index(prompt);
            bad += idx < 0 || strncmp(line, "A:", 2) != 0;
            if (idx >= 0) qa_mark[idx] = 1;
            (*qa)++;
            prev_q = NULL;
        } else if (strncmp(line, "Q: ", 3) == 0) {
            prev_q = line;
        } else if (sscanf(line, "%d%c%d=%d", &a, &op, &b, &c) == 4 ||
                   sscanf(line, "%d %c %d = %d", &a, &op, &b, &c) == 4) {
            bad += (op != '+' && op != '-') || c != (op == '+' ? a + b : a - b) || a > M || b > M;
            (*facts)++;
        } else if (sscanf(line, "%d %7s %d is %d", &a, word, &b, &c) == 4) {
            int plus = strcmp(word, "plus") == 0;
            bad += (!plus && strcmp(word, "minus")) || c != (plus ? a + b : a - b);
            (*facts)++;
        } else {
            if (bad++ < 3) CHECKF(0, "pretrain.txt: unexpected line \"%s\"", line);
        }
    }
    CHECKF(bad == 0, "pretrain.txt: %d bad lines", bad);
    free(text);
    return (long)len;
}

/* Counts distinct prompts per split; returns how many prompts are in more
 * than one of eval, validation and training (pretrain.txt's Q/A items count
 * as training when strict). */
static int split_counts(const Seen *seen, int strict, int *n_eval, int *n_valid, int *n_train, int *pre_qa) {
    int overlap = 0;
    *n_eval = *n_valid = *n_train = *pre_qa = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        *n_eval += seen->eval[i];
        *n_valid += seen->valid[i];
        *n_train += seen->train[i];
        *pre_qa += seen->pretrain_qa[i];
        int train = seen->train[i] | (strict && seen->pretrain_qa[i]);
        overlap += seen->eval[i] + seen->valid[i] + train > 1;
    }
    return overlap;
}

TEST(arith_dataset_contents) {
    const char *dir = harness_tmp_path("arith/nested/data");
    ArithSizes want;
    arith_default_sizes(&want, 4000);
    CHECK(want.sft == 4000 && want.sft_valid == 400 && want.prefs == 4000 && want.prefs_valid == 400 &&
          want.rankings == 1000 && want.rl_prompts == 4000 && want.eval_prompts == 500 &&
          want.pretrain_items == 20000 && want.max_operand == 9 && want.strict_holdout == 0);
    CHECKF(arith_write_dataset(dir, 4000, 1, NULL) == 0, "%s", err_msg());
    Seen seen = {0};
    DataStats ds = {0};
    CHECK(read_jsonl(harness_join(dir, "sft.jsonl"), 's', seen.train, &ds) == want.sft);
    Stats sft_train = ds.sft;
    CHECK(read_jsonl(harness_join(dir, "sft_valid.jsonl"), 's', seen.valid, &ds) == want.sft_valid);
    CHECK(read_jsonl(harness_join(dir, "prefs.jsonl"), 'p', seen.train, &ds) == want.prefs);
    CHECK(read_jsonl(harness_join(dir, "prefs_valid.jsonl"), 'p', seen.valid, &ds) == want.prefs_valid);
    CHECK(read_jsonl(harness_join(dir, "rankings.jsonl"), 'r', seen.train, &ds) == want.rankings);
    CHECK(read_jsonl(harness_join(dir, "rl_prompts.jsonl"), 'q', seen.train, &ds) == want.rl_prompts);
    CHECK(read_jsonl(harness_join(dir, "eval_prompts.jsonl"), 'q', seen.eval, &ds) == want.eval_prompts);
    int facts = 0, qa = 0;
    long size = check_pretrain(harness_join(dir, "pretrain.txt"), seen.pretrain_qa, &facts, &qa);
    CHECKF(facts + qa == want.pretrain_items, "%d facts + %d Q/A", facts, qa);
    CHECK(near_rate(facts, facts + qa, 0.80));
    CHECKF(size > 200000 && size < 500000, "pretrain.txt is %ld bytes", size);

    /* Operands 0..9: 200 prompts; 20% eval, 5% validation, the rest training,
     * disjoint; pretrain.txt's Q/A items cover all 200. */
    int n_eval, n_valid, n_train, pre_qa;
    int overlap = split_counts(&seen, 0, &n_eval, &n_valid, &n_train, &pre_qa);
    CHECKF(n_eval == 40 && n_valid == 10 && n_train == 150 && pre_qa == 200,
           "eval %d valid %d train %d pretrain Q/A %d distinct prompts", n_eval, n_valid, n_train, pre_qa);
    CHECKF(overlap == 0, "%d prompts in more than one split", overlap);

    /* SFT demonstrations follow the teacher's rates. */
    stats_print("sft.jsonl", &sft_train);
    CHECK(near_rate(sft_train.correct, sft_train.n, 0.85));
    CHECK(near_rate(sft_train.rude, sft_train.n, 0.15));
    CHECK(near_rate(sft_train.rambling, sft_train.n, 0.15));

    /* Label noise: the fraction of pairs whose chosen response has the lower
     * gold, against sum over pairs of sigmoid(-|dg|/tau). */
    double expect = ds.flip_expected / ds.prefs, se = sqrt(ds.flip_var) / ds.prefs;
    double got = (double)ds.flipped / ds.prefs;
    printf("  prefs: %d pairs, %.3f disagree with gold (expected %.3f +- %.3f), %d ties\n", ds.prefs, got,
           expect, se, ds.ties);
    CHECK(ds.ties == 0);
    CHECKF(fabs(got - expect) < 3 * se, "label noise %g, expected %g +- %g", got, expect, se);
    CHECK(expect > 0.10 && expect < 0.18);

    double top = (double)ds.top_is_best / ds.rankings, top_want = ds.top_expected / ds.rankings;
    printf("  rankings: %d, best response ranked first %.3f (Plackett-Luce expects %.3f)\n", ds.rankings, top,
           top_want);
    CHECKF(fabs(top - top_want) < 3 * sqrt(top_want * (1 - top_want) / ds.rankings), "top %g want %g", top,
           top_want);

    char *readme = harness_read_file(harness_join(dir, "README.txt"), NULL);
    CHECK(readme && strstr(readme, "gold") && strstr(readme, "eval_prompts.jsonl") && strstr(readme, "4000"));
    free(readme);
    printf("  pretrain.txt: %ld bytes, %d facts, %d Q/A items\n", size, facts, qa);

    /* no temporary files left behind */
    DIR *d = opendir(dir);
    int entries = 0, tmps = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        entries += e->d_name[0] != '.';
        tmps += strstr(e->d_name, ".tmp") != NULL;
    }
    if (d) closedir(d);
    CHECK(entries == N_DATA_FILES && tmps == 0);
}

TEST(arith_dataset_strict_holdout) {
    /* operands 0..19: 800 prompts, 160 eval, 40 validation, 600 training;
     * with strict_holdout no held-out prompt is in pretrain.txt either */
    const char *dir = harness_tmp_path("arith_strict");
    ArithSizes s = {.max_operand = 19, .strict_holdout = 1};
    CHECKF(arith_write_dataset(dir, 1000, 3, &s) == 0, "%s", err_msg());
    Seen seen = {0};
    DataStats ds = {0};
    CHECK(read_jsonl(harness_join(dir, "eval_prompts.jsonl"), 'q', seen.eval, &ds) == 160); /* max(n/8, 160) */
    CHECK(read_jsonl(harness_join(dir, "sft_valid.jsonl"), 's', seen.valid, &ds) == 100);
    CHECK(read_jsonl(harness_join(dir, "sft.jsonl"), 's', seen.train, &ds) == 1000);
    CHECK(read_jsonl(harness_join(dir, "rl_prompts.jsonl"), 'q', seen.train, &ds) == 1000);
    int facts = 0, qa = 0;
    check_pretrain(harness_join(dir, "pretrain.txt"), seen.pretrain_qa, &facts, &qa);
    CHECK(facts + qa == 5000);
    int n_eval, n_valid, n_train, pre_qa;
    int overlap = split_counts(&seen, 1, &n_eval, &n_valid, &n_train, &pre_qa);
    CHECKF(n_eval == 160 && n_valid == 40 && n_train <= 600 && n_train > 550 && pre_qa > 550 && pre_qa <= 600,
           "eval %d valid %d train %d pretrain Q/A %d distinct prompts", n_eval, n_valid, n_train, pre_qa);
    CHECKF(overlap == 0, "%d prompts in more than one split", overlap);
    char *readme = harness_read_file(harness_join(dir, "README.txt"), NULL);
    CHECK(readme && strstr(readme, "operands 0..19: 800 distinct prompts") &&
          strstr(readme, "on\n                    training prompts"));
    free(readme);
}

TEST(arith_dataset_deterministic) {
    /* Own copies: the loop below uses more harness_join results than it keeps. */
    char a[600], b[600], c[600], d[600];
    snprintf(a, sizeof a, "%s", harness_tmp_path("arith_det_a"));
    snprintf(b, sizeof b, "%s", harness_tmp_path("arith_det_b"));
    snprintf(c, sizeof c, "%s", harness_tmp_path("arith_det_c"));
    snprintf(d, sizeof d, "%s", harness_tmp_path("arith_det_d"));
    CHECK(arith_write_dataset(a, 300, 42, NULL) == 0);
    CHECK(arith_write_dataset(b, 300, 42, NULL) == 0);
    CHECK(arith_write_dataset(c, 300, 43, NULL) == 0);
    for (int k = 0; k < N_DATA_FILES; k++) {
        CHECKF(harness_same_file(harness_join(a, DATA_FILES[k]), harness_join(b, DATA_FILES[k])),
               "%s differs for the same seed", DATA_FILES[k]);
        if (strcmp(DATA_FILES[k], "README.txt"))
            CHECKF(!harness_same_file(harness_join(a, DATA_FILES[k]), harness_join(c, DATA_FILES[k])),
                   "%s identical for different seeds", DATA_FILES[k]);
    }
    /* Rewriting over an existing dataset gives the same bytes. */
    CHECK(arith_write_dataset(a, 300, 42, NULL) == 0);
    CHECK(harness_same_file(harness_join(a, "prefs.jsonl"), harness_join(b, "prefs.jsonl")));
    /* Each file has its own stream: more SFT lines leave prefs unchanged,
     * and the first lines of sft are the same. */
    ArithSizes s = {.sft = 600};
    CHECK(arith_write_dataset(d, 300, 42, &s) == 0);
    CHECK(harness_same_file(harness_join(a, "prefs.jsonl"), harness_join(d, "prefs.jsonl")));
    CHECK(harness_same_file(harness_join(a, "eval_prompts.jsonl"), harness_join(d, "eval_prompts.jsonl")));
    size_t la, ld;
    char *x = harness_read_file(harness_join(a, "sft.jsonl"), &la);
    char *y = harness_read_file(harness_join(d, "sft.jsonl"), &ld);
    CHECK(x && y && ld > la && memcmp(x, y, la) == 0);
    free(x);
    free(y);
}

TEST(arith_dataset_small_operands) {
    /* operands 0..1: 8 prompts, 2 eval, 1 validation, 5 training */
    const char *dir = harness_tmp_path("arith_small");
    ArithSizes s = {.max_operand = 1};
    CHECKF(arith_write_dataset(dir, 40, 5, &s) == 0, "%s", err_msg());
    Seen seen = {0};
    DataStats ds = {0};
    CHECK(read_jsonl(harness_join(dir, "eval_prompts.jsonl"), 'q', seen.eval, &ds) == 5); /* n/8 > 2 */
    CHECK(read_jsonl(harness_join(dir, "rankings.jsonl"), 'r', seen.train, &ds) == 10);
    CHECK(read_jsonl(harness_join(dir, "prefs.jsonl"), 'p', seen.train, &ds) == 40);
    CHECK(read_jsonl(harness_join(dir, "sft_valid.jsonl"), 's', seen.valid, &ds) == 4);
    int e = 0, t = 0, v = 0, both = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        e += seen.eval[i];
        t += seen.train[i];
        v += seen.valid[i];
        both += seen.eval[i] + seen.train[i] + seen.valid[i] > 1;
    }
    CHECKF(e == 2 && v == 1 && t <= 5 && both == 0, "eval %d valid %d train %d overlap %d", e, v, t, both);
}

TEST(arith_dataset_errors) {
    /* a path through a regular file */
    const char *file = harness_tmp_path("arith_plain_file");
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    char sub[700];
    snprintf(sub, sizeof sub, "%s/data", file);
    CHECK(arith_write_dataset(sub, 10, 1, NULL) == -1);
    CHECKF(strstr(err_msg(), file) && strstr(err_msg(), "cannot create directory"), "%s", err_msg());
    CHECK(arith_write_dataset(file, 10, 1, NULL) == -1 && strstr(err_msg(), "not a directory"));
    CHECK(arith_write_dataset("", 10, 1, NULL) == -1);

    const char *dir = harness_tmp_path("arith_bad_sizes");
    CHECK(arith_write_dataset(dir, 0, 1, NULL) == -1 && strstr(err_msg(), "n = 0"));
    CHECK(arith_write_dataset(dir, -5, 1, NULL) == -1);
    ArithSizes s = {.max_operand = 1000};
    CHECK(arith_write_dataset(dir, 10, 1, &s) == -1 && strstr(err_msg(), "max_operand"));
    s = (ArithSizes){.prefs = -1};
    CHECK(arith_write_dataset(dir, 10, 1, &s) == -1 && strstr(err_msg(), "-1"));
    struct stat st;
    CHECK(stat(dir, &st) != 0); /* nothing created for bad sizes */

    /* A file that cannot be written (a directory in the way of its temporary
     * name): the call fails naming it, no temporary is left, and the files
     * of an earlier dataset are untouched. */
    const char *old = harness_tmp_path("arith_keep");
    CHECK(arith_write_dataset(old, 20, 1, NULL) == 0);
    char *before = harness_read_file(harness_join(old, "sft.jsonl"), NULL);
    char blocker[800];
    snprintf(blocker, sizeof blocker, "%s/rankings.jsonl.tmp.%ld", old, (long)getpid());
    CHECK(mkdir(blocker, 0777) == 0);
    CHECK(arith_write_dataset(old, 20, 2, NULL) == -1);
    CHECKF(strstr(err_msg(), "rankings.jsonl.tmp") && strstr(err_msg(), "cannot create"), "%s", err_msg());
    char *after = harness_read_file(harness_join(old, "sft.jsonl"), NULL);
    CHECK(before && after && strcmp(before, after) == 0);
    free(before);
    free(after);
    rmdir(blocker);
    DIR *d = opendir(old);
    int tmps = 0;
    for (struct dirent *e; d && (e = readdir(d));) tmps += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    CHECK(tmps == 0);
}
