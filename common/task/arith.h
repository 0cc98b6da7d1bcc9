/* arith — the built-in task: a tiny assistant answering arithmetic questions
 * ("Q: 7+5=?\nA:" -> " 12"), with a deterministic gold judge, a noisy teacher
 * that writes demonstrations (sometimes wrong, rude or rambling), and a
 * dataset writer that produces every file the pipeline needs (pretraining
 * text, SFT, preferences, K-wise rankings, RL and held-out eval prompts), so
 * each stage can be run and judged without outside data. `rlhf data arith`
 * calls arith_write_dataset; `rlhf eval` calls arith_gold.
 *
 * Gold score (see arith.c for the reasoning):
 *   gold = correct - 0.5*[offensive > 0] - 0.04*min(extra_words, 10)
 * in [-0.9, 1]. Any correct answer beats any wrong one; among equally correct
 * ones, polite beats rude; then fewer extra words beat more (up to 10). */
#ifndef ARITH_H
#define ARITH_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

/* Gold-score weights (the formula above). */
#define ARITH_W_OFFENSIVE 0.5
#define ARITH_W_EXTRA_WORD 0.04
#define ARITH_EXTRA_WORDS_CAP 10

/* Bradley-Terry / Plackett-Luce temperature of the simulated labellers:
 * P(a preferred to b) = sigmoid((gold_a - gold_b) / ARITH_TAU). */
#define ARITH_TAU 0.25

/* Responses per K-wise ranking. */
#define ARITH_RANKING_K 4

#define ARITH_MAX_OPERAND_DEFAULT 9
/* Largest operand arith_parse_prompt accepts (and the dataset writer allows). */
#define ARITH_OPERAND_LIMIT 999
/* Room for any prompt, NUL included ("Q: 999-999=?\nA:" is 15 bytes). */
#define ARITH_PROMPT_MAX 32

/* What the gold judge saw in a response. */
typedef struct {
    int has_answer;           /* the response contains a number */
    long long parsed_answer;  /* the first number (0 if none; saturates at +-1e15) */
    int correct;              /* has_answer and parsed_answer == the true answer */
    int offensive;            /* how many words are on the offensive list */
    int extra_words;          /* words besides the answer (all words if no answer) */
} ArithJudgement;

/* Registers of the teacher's responses. */
typedef enum { ARITH_PLAIN = 0, ARITH_RUDE = 1, ARITH_RAMBLING = 2, ARITH_NSTYLES = 3 } ArithStyle;

/* Dataset sizes. A field left 0 takes its default from n (arith_default_sizes). */
typedef struct {
    int max_operand;     /* operands 0..max_operand, ops + and -; default 9 */
    int pretrain_items;  /* items in pretrain.txt; default 5n */
    int sft;             /* sft.jsonl lines; default n */
    int sft_valid;       /* default n/10 (at least 1) */
    int prefs;           /* prefs.jsonl lines; default n */
    int prefs_valid;     /* default n/10 (at least 1) */
    int rankings;        /* rankings.jsonl lines; default n/4 (at least 1) */
    int rl_prompts;      /* default n */
    int eval_prompts;    /* default max(n/8, number of distinct eval prompts) */
    int strict_holdout;  /* 1: Q/A items of pretrain.txt use training prompts
                          * only (default 0: all prompts, see arith.c) */
} ArithSizes;

/* ---- prompts ------------------------------------------------------------ */

/* Writes "Q: A+B=?\nA:" (op '+' or '-') into buf; returns its length, or -1
 * with err_set for a bad operand/op or a buffer that is too small. */
int arith_format_prompt(int a, char op, int b, char *buf, size_t cap);
/* Parses exactly the form above (operands 0..ARITH_OPERAND_LIMIT written
 * without leading zeros). 0 on success; -1 with err_set quoting the prompt
 * when it is not one of ours (so eval fails cleanly on foreign prompts). */
int arith_parse_prompt(const char *prompt, int *a, char *op, int *b);
/* The true answer a op b. */
int arith_answer(int a, char op, int b);

/* ---- responses ---------------------------------------------------------- */

/* Templates per style (plain has one: the ideal " N"). */
int arith_n_templates(ArithStyle style);
/* Response text of template t of a style, stating the number value
 * (e.g. RUDE, 0, 12 -> " Ugh, 12."). malloc'd; NULL + err_set for a bad
 * style or template index. */
char *arith_render(ArithStyle style, int t, int value);
/* The noisy teacher: one response to prompt, drawn from rng. Wrong (off by
 * +-1 or +-2) with probability 0.15; independently plain 0.70, rude 0.15,
 * rambling 0.15 (template uniform within the style), so 59.5% of responses
 * are ideal. malloc'd; NULL + err_set for a foreign prompt. */
char *arith_teacher(const char *prompt, Rng *rng);
/* The ideal response (" 12"); malloc'd; NULL + err_set for a foreign prompt. */
char *arith_ideal(const char *prompt);

/* ---- gold judge --------------------------------------------------------- */

/* Gold score of response to prompt (formula at the top). detail may be NULL.
 * A response without a number counts as wrong. For a prompt that is not one
 * of ours: NAN with err_set, and detail zeroed. */
double arith_gold(const char *prompt, const char *response, ArithJudgement *detail);
/* The same formula from a judgement (for tests and summaries). */
double arith_gold_from(const ArithJudgement *d);

/* ---- dataset ------------------------------------------------------------ */

/* Fills every field of s from n (n >= 1). */
void arith_default_sizes(ArithSizes *s, int n);

/* Creates dir (like mkdir -p) and writes pretrain.txt, sft.jsonl,
 * sft_valid.jsonl, prefs.jsonl, prefs_valid.jsonl, rankings.jsonl,
 * rl_prompts.jsonl, eval_prompts.jsonl and README.txt, deterministically
 * from seed. sizes may be NULL (all defaults from n); its zero fields take
 * their defaults from n. Every file is written to a temporary name and
 * renamed into place only after all of them were written, so a failed or
 * interrupted run leaves no half file. 0 on success; -1 with err_set naming
 * the path or the bad size. */
int arith_write_dataset(const char *dir, int n, uint64_t seed, const ArithSizes *sizes);

#endif
