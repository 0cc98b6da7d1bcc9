/* config — the run configuration of the training and RL subcommands.
 *
 * Each stage declares its keys in static tables (name, type, default, help);
 * a Config is built from one or more tables (keys shared by every trainer +
 * the stage's own), filled from a `key = value` file (--config F) and then
 * from key=value command-line arguments, which always win. Every value is
 * validated when it is set, so errors name the file and line (or "command
 * line") and the key; an unknown key suggests the nearest known one. The
 * same tables produce --help and the README's Markdown reference, so they
 * never disagree. A run prints the resolved configuration (config_print,
 * whose output is itself a valid config file) and stores it in its
 * checkpoints as string attributes of /config (ckpt_save_config in
 * common/io/ckpt.h); a resumed run reads it back (ckpt_load_config) and
 * compares (config_diff).
 *
 * Declaring keys (tables end with {NULL}; they must outlive the Config):
 *   static const CfgKey ppo_keys[] = {
 *       {"lr", CFG_FLOAT, "1e-5", "peak learning rate", NULL, ">= 0"},
 *       {"kl_estimator", CFG_ENUM, "k1", "per-token KL estimator", "k1|k3"},
 *       {"prompts", CFG_STR, NULL, "JSONL file of RL prompts", NULL},
 *       {0}};
 *
 * Key names are [A-Za-z0-9_]+. A NULL default means "required": the key
 * has no value until set and config_check_required reports it.
 *
 * File syntax, one setting per line:
 *   # a comment line            blank lines are ignored
 *   batch_size = 8              whitespace around key and value is trimmed
 *   lr = 3e-4   # trailing      "#" after whitespace starts a comment
 *   url = http://a/b#frag       "#" inside a word is part of the value
 *   name = "two words # not a comment"   double quotes keep spaces and "#";
 *                               escapes \" \\ \n \t inside quotes
 * Setting a key twice in one file is an error; a later file or the command
 * line overrides an earlier one.
 *
 * Values are stored in canonical form (what config_get_raw, config_print,
 * ckpt_save_config and config_diff see): ints in decimal, floats in the shortest
 * text that reads back to the same double ("3e-4" -> "0.0003"), bools as
 * true/false, enums as the declared spelling. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    CFG_INT,   /* a C int, decimal: "8", "-1" */
    CFG_FLOAT, /* a finite number that fits a C float: "3e-4", "0.1" */
    CFG_STR,   /* any text, may be empty */
    CFG_BOOL,  /* true/false, yes/no, on/off, 1/0 (any case) */
    CFG_ENUM   /* one of choices, e.g. "k1|k3" (any case on input) */
} CfgType;

typedef struct {
    const char *key;
    CfgType type;
    const char *def;     /* default as text; NULL = required, no default */
    const char *help;    /* one line for --help and the README */
    const char *choices; /* CFG_ENUM: allowed values separated by '|'; else NULL */
    const char *range;   /* CFG_INT/CFG_FLOAT: allowed values (syntax below); NULL = none */
    const char *alias;   /* another command-line name, --ALIAS for --KEY (overwrite: --force); NULL = none */
} CfgKey;

/* Ranges of numeric settings. The rule: every CFG_INT and CFG_FLOAT key of
 * a real table declares a range (tests/unit/test_config.c checks every
 * table), and a value outside it is refused when it is set (config file,
 * command line, or read back from a checkpoint), so a bad number never
 * reaches the code that divides by it. Syntax, numbers as strtod reads them:
 *   "[a, b]"  "[a, b)"  "(a, b]"  "(a, b)"   closed/open at each end
 *   ">= a"   "> a"   "<= b"   "< b"           one-sided
 *   "any"                                     every value of the type
 * config_new parses each range once (a malformed range, a range on a key
 * that is not numeric, or a default outside its range is a table error);
 * --help and the Markdown reference print it; a refusal reads
 * "ORIGIN: KEY must be in [0, 1), got 1.5" or "ORIGIN: KEY must be >= 1,
 * got 0". common/opts uses the same syntax and functions for options. */
typedef struct {
    double lo, hi;
    int has_lo, has_hi;   /* 0: unbounded on that side */
    int lo_open, hi_open; /* 1: the bound itself is excluded */
} CfgRange;

/* Parses text (syntax above) into r; -1 + err_set("bad range 'TEXT': ...")
 * otherwise. */
int config_range_parse(const char *text, CfgRange *r);
/* 1 if x lies in r. */
int config_range_contains(const CfgRange *r, double x);
/* "in [0, 1)", ">= 1", "any": the text that follows "must be" in messages
 * and that help prints. */
void config_range_format(const CfgRange *r, char *buf, size_t n);

/* The rule for every float setting (CFG_FLOAT keys and OPT_FLOAT options):
 * the number must fit a C float, i.e. be 0 or have a magnitude in
 * [FLT_MIN, FLT_MAX], since the code that uses it computes in float. NULL
 * if x fits; else what is wrong, for "TEXT " to precede it:
 * "is too small for a float (smallest normal 1.2e-38)" or
 * "is too large for a float (largest 3.4e+38)". A value that does not fit is
 * refused, never rounded to 0, a subnormal or infinity. */
const char *config_float_misfit(double x);

typedef struct Config Config;

/* A configuration holding every key of tables[0..n_tables) at its default.
 * NULL + err_set for a malformed table (bad key name, a key declared twice
 * across the tables, a default that does not parse as its type, an enum
 * without choices, a malformed range, a range on a non-numeric key, a
 * default outside its range). */
Config *config_new(const CfgKey *const *tables, int n_tables);
void config_free(Config *c);

/* Longest config file line, in bytes without its newline: the same limit as
 * JSONL_MAX_LINE (common/io/jsonl.h). Reading stops at the limit. */
#define CFG_MAX_LINE ((size_t)16 << 20)

/* Reads a config file (syntax above). Errors: "PATH: <reason>" when the
 * file cannot be opened, "PATH:LINE: <reason>" for an unknown key (with a
 * suggestion), a value that does not parse or is out of its range, a line
 * without '=', an empty key, a key set twice, a bad quoted string, a NUL
 * byte, a line longer than CFG_MAX_LINE, a read error. A line that cannot be
 * read is always an error, never the end of the file. On error, settings
 * from lines before the bad one stay applied. */
int config_load_file(Config *c, const char *path);

/* Sets one key from text after validating it (type, then range); origin names where the value
 * came from ("command line", "demo.conf:7") and prefixes error messages:
 * "command line: 'batch_size' expects an integer, got '8x'". */
int config_set(Config *c, const char *key, const char *value, const char *origin);

/* Applies the arguments after the subcommand, argv[0..argc):
 *   --config FILE | --config=FILE   loaded first, in order, whatever their
 *                                   position, so command-line values win
 *   key=value                       set with origin "command line"; a later
 *                                   one for the same key wins
 *   --key=value | --key value       the same; dashes in key read as
 *                                   underscores (--batch-size 8); a bool key
 *                                   alone (--resume) means true, and takes a
 *                                   value only as --resume=false
 *   --alias[=value]                 the same as --key[=value] for a key
 *                                   declaring .alias (--force is
 *                                   --overwrite); help prints the alias
 *   --help | -h                     *help = 1 and nothing else is done
 * Anything else is an error naming the argument. */
int config_parse_args(Config *c, int argc, char **argv, int *help);

/* -1 + err_set naming the first key that has no default and was not set. */
int config_check_required(const Config *c);

/* Typed getters. Asking for a key that is not declared, with the wrong
 * type, or that has no value yet is a programming error: a message on
 * stderr and abort(). config_str accepts CFG_STR and CFG_ENUM keys;
 * config_enum returns the index of the value in the key's choices. */
int config_int(const Config *c, const char *key);
double config_float(const Config *c, const char *key);
const char *config_str(const Config *c, const char *key);
int config_bool(const Config *c, const char *key);
int config_enum(const Config *c, const char *key);

/* Generic access. NULL for an undeclared key; config_get_raw is also NULL
 * for a required key not set yet. Origin is "default", "command line",
 * "FILE:LINE", or the checkpoint path. */
const char *config_get_raw(const Config *c, const char *key);
const char *config_origin(const Config *c, const char *key);
int config_count(const Config *c);
const CfgKey *config_key_at(const Config *c, int i);
/* Replaces the origin recorded for key (after a config_set whose origin
 * named the exact place for error messages, e.g. "PATH: /config", where
 * the value should be shown as coming from "PATH"). -1 + err_set for an
 * undeclared key. */
int config_set_origin(Config *c, const char *key, const char *origin);

/* The resolved configuration, one "key = value" line per key in table
 * order, keys padded to one width; values that differ from the default end
 * with "  # ORIGIN". Values that need it are quoted, so the output reads
 * back with config_load_file. Required keys not set print as
 * "# key = (required, not set)". */
void config_print(const Config *c, FILE *f);

/* Reference for --help: one line per key with type, help, default and range. */
void config_help(const CfgKey *const *tables, int n_tables, FILE *f);
/* The same as a Markdown table (key | type | default | range | description). */
void config_markdown(const CfgKey *const *tables, int n_tables, FILE *f);

/* Number of keys declared in both a and b whose values differ (an unset
 * required key counts as a value of its own). buf[0..n) receives them as
 * "lr (0.001 vs 0.002), batch_size (8 vs 16)" with a's value first,
 * truncated with "..." if it does not fit; buf may be NULL when n == 0. */
int config_diff(const Config *a, const Config *b, char *buf, size_t n);

#endif
