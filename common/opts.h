/* opts — command-line options for the subcommands: each subcommand declares
 * a table of options (name, type, destination, help) and gets parsing,
 * type-checked values, clear errors for unknown or malformed options and a
 * generated --help from the same table, so the two never disagree. */
#ifndef OPTS_H
#define OPTS_H

#include <stdio.h>

/* OPT_DOUBLE for values that must not be narrowed to float (a discount of
 * 0.99 is 0.99000001 as a float). */
typedef enum { OPT_STR, OPT_INT, OPT_FLOAT, OPT_FLAG, OPT_DOUBLE } OptType;

typedef struct {
    const char *name;    /* without the leading "--" */
    OptType type;
    void *dest;          /* char**, int*, float*, int* (flag set to 1), double* */
    const char *metavar; /* shown in help, e.g. "FILE"; NULL for flags */
    const char *help;
    const char *range;   /* OPT_INT/OPT_FLOAT/OPT_DOUBLE: allowed values, the syntax of
                          * CfgRange in common/config.h (">= 1", "(0, 1]"); NULL = none */
} Opt;

typedef struct {
    const char *command; /* e.g. "generate" */
    const char *usage;   /* e.g. "rlhf generate --model CKPT ..." */
    const char *summary; /* one line */
    const char *details; /* more text after the options, or NULL */
    const Opt *opts;     /* terminated by {NULL} */
    int min_pos, max_pos;/* positional arguments accepted */
} OptSpec;

/* Parses argv[0..argc) (argv[0] is the first argument after the command).
 * Accepts "--name value" and "--name=value". Positional arguments go to
 * pos[0..*n_pos). Returns 0, 1 if --help/-h was given (help printed on
 * stdout), or -1 + err_set naming the option. A numeric option with a range
 * is checked as it is read: "generate: --top-p must be in (0, 1], got 1.5";
 * the subcommand then sees only values inside it. --help prints each range. */
int opts_parse(const OptSpec *s, int argc, char **argv, char **pos, int *n_pos);
void opts_help(const OptSpec *s, FILE *f);

#endif
