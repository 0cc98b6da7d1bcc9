/* config — run configuration from key tables, config files and key=value
 * arguments, validated on every set; printing, --help and Markdown
 * reference. See config.h for the file syntax; checkpoints store a Config
 * through ckpt_save_config / ckpt_load_config (common/io/ckpt.h). */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/err.h"

#define CFG_ORIGIN_DEFAULT "default"
#define CFG_ORIGIN_ARGS "command line"
#define CFG_MAX_KEY 64 /* longer keys are never declared; names are copied into buffers this size */

/* A parsed value: canonical text plus the typed form the getters return. */
typedef struct {
    char *text; /* canonical text; NULL = no value (required key not set) */
    int i;      /* CFG_INT; CFG_BOOL 0/1; CFG_ENUM index into choices */
    double f;   /* CFG_FLOAT */
} CfgValue;

typedef struct {
    const CfgKey *k;
    CfgValue val, def;
    char *origin;
    CfgRange range; /* parsed k->range; unbounded when k->range is NULL */
} CfgEntry;

struct Config {
    CfgEntry *e;
    int n;
};

/* ---- Values ------------------------------------------------------------- */

static const char *type_name(CfgType t) {
    switch (t) {
    case CFG_INT: return "int";
    case CFG_FLOAT: return "float";
    case CFG_STR: return "string";
    case CFG_BOOL: return "bool";
    case CFG_ENUM: return "enum";
    }
    return "?";
}

/* The n-th '|'-separated choice of k (start and length); 0 if there is none. */
static int enum_choice(const CfgKey *k, int n, const char **s, size_t *len) {
    const char *p = k->choices;
    for (int i = 0; i < n; i++) {
        p = strchr(p, '|');
        if (!p) return 0;
        p++;
    }
    *s = p;
    *len = strcspn(p, "|");
    return 1;
}

/* "k1, k3" for messages. */
static void enum_list(const CfgKey *k, char *buf, size_t n) {
    size_t used = 0;
    const char *s;
    size_t len;
    buf[0] = 0;
    for (int i = 0; enum_choice(k, i, &s, &len) && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%.*s", i ? ", " : "", (int)len, s);
}

/* Shortest "%.Ng" text that reads back as exactly x. */
static void format_double(double x, char *buf, size_t n) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

static int parse_int(const CfgKey *k, const char *s, CfgValue *v, char *canon, size_t n) {
    char *end = NULL;
    errno = 0;
    long x = isspace((unsigned char)*s) ? 0 : strtol(s, &end, 10); /* strtol alone would skip leading blanks */
    if (!end || end == s || *end) return err_set("'%s' expects an integer, got '%s'", k->key, s);
    if (errno == ERANGE || x < INT_MIN || x > INT_MAX)
        return err_set("'%s' is out of range for an integer (%d..%d), got '%s'", k->key, INT_MIN, INT_MAX, s);
    v->i = (int)x;
    snprintf(canon, n, "%d", v->i);
    return 0;
}

const char *config_float_misfit(double x) {
    if (fabs(x) > FLT_MAX) return "is too large for a float (largest 3.4e+38)";
    if (x != 0 && fabs(x) < FLT_MIN) return "is too small for a float (smallest normal 1.2e-38)";
    return NULL;
}

static int parse_float(const CfgKey *k, const char *s, CfgValue *v, char *canon, size_t n) {
    char *end = NULL;
    double x = isspace((unsigned char)*s) ? 0 : strtod(s, &end);
    if (!end || end == s || *end) return err_set("'%s' expects a number, got '%s'", k->key, s);
    if (!isfinite(x)) return err_set("'%s' expects a finite number, got '%s'", k->key, s);
    const char *misfit = config_float_misfit(x);
    if (misfit) return err_set("'%s': %s %s", k->key, s, misfit);
    v->f = x;
    format_double(x, canon, n);
    return 0;
}

static int parse_bool(const CfgKey *k, const char *s, CfgValue *v, char *canon, size_t n) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    v->i = -1;
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) v->i = 1;
        if (!strcasecmp(s, no[i])) v->i = 0;
    }
    if (v->i < 0) return err_set("'%s' expects true or false, got '%s'", k->key, s);
    snprintf(canon, n, "%s", v->i ? "true" : "false");
    return 0;
}

static int parse_enum(const CfgKey *k, const char *s, CfgValue *v, char *canon, size_t n) {
    const char *c;
    size_t len;
    for (int i = 0; enum_choice(k, i, &c, &len); i++)
        if (strlen(s) == len && !strncasecmp(s, c, len)) {
            v->i = i;
            snprintf(canon, n, "%.*s", (int)len, c);
            return 0;
        }
    char list[512];
    enum_list(k, list, sizeof list);
    return err_set("'%s' expects one of %s, got '%s'", k->key, list, s);
}

/* Parses text as k's type into v (v->text newly allocated). err_set names
 * the key but not the origin; callers prefix that. */
static int parse_value(const CfgKey *k, const char *text, CfgValue *v) {
    char canon[64];
    int rc = 0;
    switch (k->type) {
    case CFG_INT: rc = parse_int(k, text, v, canon, sizeof canon); break;
    case CFG_FLOAT: rc = parse_float(k, text, v, canon, sizeof canon); break;
    case CFG_BOOL: rc = parse_bool(k, text, v, canon, sizeof canon); break;
    case CFG_ENUM: rc = parse_enum(k, text, v, canon, sizeof canon); break;
    case CFG_STR: v->text = err_strdup(text); return 0;
    }
    if (rc) return -1;
    v->text = err_strdup(canon);
    return 0;
}

/* ---- Ranges ------------------------------------------------------------- */

/* One bound: a number strtod reads, then optional blanks. */
static int range_number(const char **p, double *x) {
    char *end;
    while (**p == ' ') (*p)++;
    *x = strtod(*p, &end);
    if (end == *p || isnan(*x)) return -1;
    *p = end;
    while (**p == ' ') (*p)++;
    return 0;
}

int config_range_parse(const char *text, CfgRange *r) {
    const char *p = text;
    *r = (CfgRange){0};
    if (!text) return err_set("bad range '(null)'");
    while (*p == ' ') p++;
    if (!strcmp(p, "any")) return 0;
    if (*p == '[' || *p == '(') {
        r->has_lo = r->has_hi = 1;
        r->lo_open = *p++ == '(';
        if (range_number(&p, &r->lo) || *p++ != ',' || range_number(&p, &r->hi) || (*p != ']' && *p != ')'))
            return err_set("bad range '%s': expected [a, b], [a, b), (a, b] or (a, b)", text);
        r->hi_open = *p++ == ')';
        while (*p == ' ') p++;
        if (*p) return err_set("bad range '%s': unexpected text after the interval", text);
        if (r->lo > r->hi || (r->lo == r->hi && (r->lo_open || r->hi_open)))
            return err_set("bad range '%s': the interval is empty", text);
        return 0;
    }
    int below = *p == '<';
    if (*p != '<' && *p != '>')
        return err_set("bad range '%s': expected an interval, >= a, > a, <= b, < b or any", text);
    p++;
    int open = *p != '=';
    if (!open) p++;
    double x;
    if (range_number(&p, &x) || *p) return err_set("bad range '%s': expected one number after the comparison", text);
    if (below) {
        r->has_hi = 1;
        r->hi = x;
        r->hi_open = open;
    } else {
        r->has_lo = 1;
        r->lo = x;
        r->lo_open = open;
    }
    return 0;
}

int config_range_contains(const CfgRange *r, double x) {
    if (r->has_lo && (r->lo_open ? !(x > r->lo) : !(x >= r->lo))) return 0;
    if (r->has_hi && (r->hi_open ? !(x < r->hi) : !(x <= r->hi))) return 0;
    return 1;
}

void config_range_format(const CfgRange *r, char *buf, size_t n) {
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%.15g", r->lo);
    snprintf(hi, sizeof hi, "%.15g", r->hi);
    if (r->has_lo && r->has_hi) snprintf(buf, n, "in %c%s, %s%c", r->lo_open ? '(' : '[', lo, hi, r->hi_open ? ')' : ']');
    else if (r->has_lo) snprintf(buf, n, "%s %s", r->lo_open ? ">" : ">=", lo);
    else if (r->has_hi) snprintf(buf, n, "%s %s", r->hi_open ? "<" : "<=", hi);
    else snprintf(buf, n, "any");
}

/* The parsed value v of entry e lies in its declared range, or err_set
 * "KEY must be in [0, 1), got TEXT" (callers prefix the origin). */
static int check_range(const CfgEntry *e, const CfgValue *v, const char *text) {
    if (!e->k->range) return 0;
    double x = e->k->type == CFG_INT ? (double)v->i : v->f;
    if (config_range_contains(&e->range, x)) return 0;
    char want[96];
    config_range_format(&e->range, want, sizeof want);
    return err_set("%s must be %s, got %s", e->k->key, want, text);
}

/* ---- Building ----------------------------------------------------------- */

static int valid_key_name(const char *s) {
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    return n > 0 && !s[n] && n < CFG_MAX_KEY;
}

static int find_key(const Config *c, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].k->key, key)) return i;
    return -1;
}

/* The key whose alias is name (command-line options only), or -1. */
static int find_alias(const Config *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (c->e[i].k->alias && !strcmp(c->e[i].k->alias, name)) return i;
    return -1;
}

static int check_decl(const Config *c, const CfgKey *k) {
    if (!valid_key_name(k->key))
        return err_set("config table: bad key name '%s' (expected [A-Za-z0-9_]+, under %d characters)", k->key, CFG_MAX_KEY);
    if (find_key(c, k->key) >= 0) return err_set("config table: key '%s' declared twice", k->key);
    if ((unsigned)k->type > CFG_ENUM) return err_set("config table: key '%s' has an unknown type %d", k->key, (int)k->type);
    if (k->type == CFG_ENUM && (!k->choices || !k->choices[0]))
        return err_set("config table: enum key '%s' has no choices", k->key);
    if (k->range && k->type != CFG_INT && k->type != CFG_FLOAT)
        return err_set("config table: key '%s' is a %s and cannot have a range", k->key, type_name(k->type));
    /* an alias is one more name on the command line: it must not hide a key or another alias */
    if (k->alias && (!valid_key_name(k->alias) || find_key(c, k->alias) >= 0 || find_alias(c, k->alias) >= 0))
        return err_set("config table: alias '%s' of key '%s' is not a free name", k->alias, k->key);
    int owner = find_alias(c, k->key);
    if (owner >= 0)
        return err_set("config table: alias '%s' of key '%s' is not a free name", k->key, c->e[owner].k->key);
    return 0;
}

static int add_entry(Config *c, const CfgKey *k) {
    if (check_decl(c, k)) return -1;
    CfgEntry *e = &c->e[c->n];
    memset(e, 0, sizeof *e);
    e->k = k;
    if (k->range && config_range_parse(k->range, &e->range)) return err_prefix("config table: key '%s': ", k->key);
    if (k->def && (parse_value(k, k->def, &e->def) || check_range(e, &e->def, k->def))) {
        free(e->def.text);
        e->def.text = NULL;
        return err_prefix("config table: default of '%s': ", k->key);
    }
    if (k->def) e->val = (CfgValue){err_strdup(e->def.text), e->def.i, e->def.f};
    e->origin = err_strdup(CFG_ORIGIN_DEFAULT);
    c->n++;
    return 0;
}

Config *config_new(const CfgKey *const *tables, int n_tables) {
    int total = 0;
    for (int t = 0; t < n_tables; t++)
        for (const CfgKey *k = tables[t]; k->key; k++) total++;
    Config *c = err_calloc(1, sizeof *c);
    c->e = err_calloc((size_t)total, sizeof *c->e);
    for (int t = 0; t < n_tables; t++)
        for (const CfgKey *k = tables[t]; k->key; k++)
            if (add_entry(c, k)) {
                config_free(c);
                return NULL;
            }
    return c;
}

void config_free(Config *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        free(c->e[i].val.text);
        free(c->e[i].def.text);
        free(c->e[i].origin);
    }
    free(c->e);
    free(c);
}

/* ---- Setting ------------------------------------------------------------ */

/* Edit distance with adjacent transpositions, on keys compared without
 * case and with '-' read as '_' (so "Batch-Size" is 0 from "batch_size"). */
static int key_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na >= CFG_MAX_KEY || nb >= CFG_MAX_KEY) return INT_MAX;
    int d[CFG_MAX_KEY + 1][CFG_MAX_KEY + 1];
    char la[CFG_MAX_KEY], lb[CFG_MAX_KEY];
    for (size_t i = 0; i < na; i++) la[i] = a[i] == '-' ? '_' : (char)tolower((unsigned char)a[i]);
    for (size_t j = 0; j < nb; j++) lb[j] = b[j] == '-' ? '_' : (char)tolower((unsigned char)b[j]);
    for (size_t i = 0; i <= na; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            int cost = la[i - 1] != lb[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && la[i - 1] == lb[j - 2] && la[i - 2] == lb[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[na][nb];
}

/* err_set("ORIGIN: unknown key 'x'"), with the nearest declared key when
 * it is close enough to be a likely typo. */
static int unknown_key(const Config *c, const char *key, const char *origin) {
    size_t len = strlen(key);
    int allowed = len <= 3 ? 1 : len <= 6 ? 2 : 3, best = INT_MAX;
    const char *near = NULL;
    for (int i = 0; i < c->n; i++) {
        int d = key_distance(key, c->e[i].k->key);
        if (d < best) {
            best = d;
            near = c->e[i].k->key;
        }
    }
    if (near && best <= allowed)
        return err_set("%s: unknown key '%s' (did you mean '%s'?)", origin, key, near);
    return err_set("%s: unknown key '%s'", origin, key);
}

/* Every value a key takes passes here: its type, then its declared range
 * (config.h, "Ranges"), whatever its origin (file, command line, checkpoint). */
static int set_entry(CfgEntry *e, const char *value, const char *origin) {
    CfgValue v = {0};
    if (parse_value(e->k, value, &v)) return err_prefix("%s: ", origin);
    if (check_range(e, &v, value)) {
        free(v.text);
        return err_prefix("%s: ", origin);
    }
    free(e->val.text);
    free(e->origin);
    e->val = v;
    e->origin = err_strdup(origin);
    return 0;
}

int config_set(Config *c, const char *key, const char *value, const char *origin) {
    int i = find_key(c, key);
    if (i < 0) return unknown_key(c, key, origin);
    return set_entry(&c->e[i], value, origin);
}

/* ---- Config files ------------------------------------------------------- */

static char *skip_space(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

static void trim_end(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
}

/* Decodes the double-quoted string at s (s[0] == '"') in place; only
 * whitespace or a comment may follow the closing quote. */
static int parse_quoted(char *s) {
    char *out = s, *p = s + 1;
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            *out++ = *p;
            continue;
        }
        switch (*++p) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case 'n': *out++ = '\n'; break;
        case 't': *out++ = '\t'; break;
        case 'r': *out++ = '\r'; break;
        case 0: return err_set("unterminated quoted value");
        default: return err_set("unknown escape '\\%c' in quoted value (use \\\" \\\\ \\n \\t \\r)", *p);
        }
    }
    if (!*p) return err_set("unterminated quoted value");
    char *rest = skip_space(p + 1);
    if (*rest && *rest != '#') return err_set("unexpected text after closing quote: '%s'", rest);
    *out = 0;
    return 0;
}

/* Cuts an unquoted value at a '#' that starts a word, then trims. */
static void strip_comment(char *v) {
    for (char *p = v; *p; p++)
        if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
            *p = 0;
            break;
        }
    trim_end(v);
}

/* Splits one line in place. Returns 0 for a blank or comment line, 1 with
 * *key and *val set, -1 + err_set (without file and line) otherwise. */
static int parse_line(char *line, char **key, char **val) {
    char *s = skip_space(line);
    if (!*s || *s == '#') return 0;
    char *eq = strchr(s, '=');
    if (!eq) return err_set("expected 'key = value', got '%s'", s);
    *eq = 0;
    trim_end(s);
    if (!*s) return err_set("missing key before '='");
    *key = s;
    *val = skip_space(eq + 1);
    if (**val == '"') return parse_quoted(*val) ? -1 : 1;
    strip_comment(*val);
    return 1;
}

/* Applies one line; seen[i] holds the line that set key i in this file. */
static int load_line(Config *c, char *line, const char *path, int lineno, int *seen) {
    char *key = NULL, *val = NULL, origin[4096];
    snprintf(origin, sizeof origin, "%s:%d", path, lineno);
    int rc = parse_line(line, &key, &val);
    if (rc <= 0) return rc ? err_prefix("%s: ", origin) : 0;
    int i = find_key(c, key);
    if (i < 0) return unknown_key(c, key, origin);
    if (seen[i]) return err_set("%s: '%s' is already set on line %d", origin, key, seen[i]);
    seen[i] = lineno;
    return set_entry(&c->e[i], val, origin);
}

/* Reads one line (without its '\n') into *line, growing it up to
 * CFG_MAX_LINE bytes. Returns 1 with *len set, 0 at end of file, -1 +
 * err_set naming path and lineno for a read error or an over-long line:
 * a line that cannot be read ends the load with an error, never as if the
 * file ended there. Reading stops at the limit (the rest is not read). */
static int read_line(FILE *f, const char *path, int lineno, char **line, size_t *cap, size_t *len) {
    size_t n = 0;
    int ch;
    errno = 0;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (n == CFG_MAX_LINE) return err_set("%s:%d: line longer than %zu bytes", path, lineno, CFG_MAX_LINE);
        if (n + 1 >= *cap) { /* room for the NUL; err_realloc ends the process if memory runs out */
            *cap = *cap * 2 < CFG_MAX_LINE + 1 ? *cap * 2 : CFG_MAX_LINE + 1;
            *line = err_realloc(*line, *cap);
        }
        (*line)[n++] = (char)ch;
    }
    if (ferror(f)) return err_set("%s:%d: read error: %s", path, lineno, strerror(errno ? errno : EIO));
    if (ch == EOF && n == 0) return 0;
    (*line)[n] = 0;
    *len = n;
    return 1;
}

int config_load_file(Config *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: %s", path, strerror(errno));
    struct stat st;
    if (!fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) {
        fclose(f);
        return err_set("%s: %s", path, strerror(EISDIR));
    }
    int *seen = err_calloc((size_t)c->n, sizeof *seen), rc = 0, lineno = 0;
    size_t cap = 256, n = 0;
    char *line = err_malloc(cap);
    while (!rc) {
        int got = read_line(f, path, lineno + 1, &line, &cap, &n);
        if (got <= 0) {
            rc = got;
            break;
        }
        lineno++;
        if (n && line[n - 1] == '\r') line[--n] = 0; /* CRLF files */
        char *text = line;
        if (lineno == 1 && !strncmp(text, "\xEF\xBB\xBF", 3)) text += 3; /* UTF-8 BOM from some editors */
        if (strlen(line) != n) rc = err_set("%s:%d: NUL byte in line (not a text file?)", path, lineno);
        else rc = load_line(c, text, path, lineno, seen);
    }
    free(line);
    free(seen);
    fclose(f);
    return rc;
}

/* ---- Command line ------------------------------------------------------- */

typedef enum { ARG_HELP, ARG_CONFIG, ARG_SET } ArgKind;

typedef struct {
    ArgKind kind;
    int used;          /* arguments consumed */
    int entry;         /* ARG_SET: index of the key */
    const char *value; /* ARG_SET: value text; ARG_CONFIG: file */
} Arg;

/* "--batch-size=8" / "--batch-size 8" / "--resume". */
static int classify_long(const Config *c, int argc, char **argv, int i, Arg *a) {
    const char *name = argv[i] + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    char key[CFG_MAX_KEY];
    if (len >= sizeof key) return err_set("%s: unknown option '%s'", CFG_ORIGIN_ARGS, argv[i]);
    for (size_t j = 0; j < len; j++) key[j] = name[j] == '-' ? '_' : name[j];
    key[len] = 0;
    if ((a->entry = find_key(c, key)) < 0) a->entry = find_alias(c, key);
    if (a->entry < 0) return unknown_key(c, key, CFG_ORIGIN_ARGS);
    a->kind = ARG_SET;
    if (eq) a->value = eq + 1;
    else if (c->e[a->entry].k->type == CFG_BOOL) a->value = "true";
    else if (i + 1 < argc) {
        a->value = argv[i + 1];
        a->used = 2;
    }
    else return err_set("%s: '--%.*s' needs a value", CFG_ORIGIN_ARGS, (int)len, name);
    return 0;
}

/* Reads argv[i] (and its value, if separate) into a. */
static int classify(const Config *c, int argc, char **argv, int i, Arg *a) {
    const char *s = argv[i], *eq = strchr(s, '=');
    *a = (Arg){.kind = ARG_SET, .used = 1, .entry = -1};
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
        a->kind = ARG_HELP;
        return 0;
    }
    if (!strcmp(s, "--config") || !strncmp(s, "--config=", 9)) {
        a->kind = ARG_CONFIG;
        a->value = s[8] ? s + 9 : i + 1 < argc ? argv[i + 1] : NULL;
        a->used = s[8] ? 1 : 2;
        if (!a->value || !a->value[0]) return err_set("%s: --config needs a FILE", CFG_ORIGIN_ARGS);
        return 0;
    }
    if (!strncmp(s, "--", 2) && s[2] && s[2] != '=') return classify_long(c, argc, argv, i, a);
    if (s[0] != '-' && eq && eq > s) {
        char key[CFG_MAX_KEY];
        snprintf(key, sizeof key, "%.*s", (int)(eq - s), s);
        if ((size_t)(eq - s) >= sizeof key || (a->entry = find_key(c, key)) < 0)
            return unknown_key(c, key, CFG_ORIGIN_ARGS);
        a->value = eq + 1;
        return 0;
    }
    const char *hint = i + 1 < argc && argv[i + 1][0] == '=' ? "; write key=value without spaces" : "";
    return err_set("%s: unexpected argument '%s' (expected key=value or --config FILE%s)", CFG_ORIGIN_ARGS, s, hint);
}

int config_parse_args(Config *c, int argc, char **argv, int *help) {
    Arg *args = err_calloc((size_t)argc, sizeof *args);
    int n = 0, bad = -1, rc = 0;
    *help = 0;
    for (int i = 0; i < argc; i += args[n++].used) { /* --help wins over any error */
        if (classify(c, argc, argv, i, &args[n]) && bad < 0) bad = i;
        if (args[n].kind == ARG_HELP) *help = 1;
    }
    if (*help) goto done;
    if (bad >= 0) {
        Arg a;
        rc = classify(c, argc, argv, bad, &a); /* recreates the first message */
        goto done;
    }
    for (int j = 0; j < n && !rc; j++)
        if (args[j].kind == ARG_CONFIG) rc = config_load_file(c, args[j].value);
    for (int j = 0; j < n && !rc; j++)
        if (args[j].kind == ARG_SET) rc = set_entry(&c->e[args[j].entry], args[j].value, CFG_ORIGIN_ARGS);
done:
    free(args);
    return rc;
}

int config_check_required(const Config *c) {
    for (int i = 0; i < c->n; i++)
        if (!c->e[i].val.text)
            return err_set("missing required key '%s'%s%s%s; set it in the config file or as %s=...", c->e[i].k->key,
                           c->e[i].k->help ? " (" : "", c->e[i].k->help ? c->e[i].k->help : "",
                           c->e[i].k->help ? ")" : "", c->e[i].k->key);
    return 0;
}

/* ---- Getters ------------------------------------------------------------ */

/* The entry for key, checked to be declared, of type t (or t2) and set;
 * anything else is a bug in the caller, not bad input. */
static const CfgEntry *entry_or_abort(const Config *c, const char *key, CfgType t, CfgType t2) {
    int i = find_key(c, key);
    if (i < 0) {
        fprintf(stderr, "rlhf: bug: config key '%s' is not declared\n", key);
        abort();
    }
    const CfgEntry *e = &c->e[i];
    if (e->k->type != t && e->k->type != t2) {
        fprintf(stderr, "rlhf: bug: config key '%s' is a %s, read as a %s\n", key, type_name(e->k->type), type_name(t));
        abort();
    }
    if (!e->val.text) {
        fprintf(stderr, "rlhf: bug: config key '%s' has no value (config_check_required not called?)\n", key);
        abort();
    }
    return e;
}

int config_int(const Config *c, const char *key) { return entry_or_abort(c, key, CFG_INT, CFG_INT)->val.i; }
double config_float(const Config *c, const char *key) { return entry_or_abort(c, key, CFG_FLOAT, CFG_FLOAT)->val.f; }
const char *config_str(const Config *c, const char *key) { return entry_or_abort(c, key, CFG_STR, CFG_ENUM)->val.text; }
int config_bool(const Config *c, const char *key) { return entry_or_abort(c, key, CFG_BOOL, CFG_BOOL)->val.i; }
int config_enum(const Config *c, const char *key) { return entry_or_abort(c, key, CFG_ENUM, CFG_ENUM)->val.i; }

const char *config_get_raw(const Config *c, const char *key) {
    int i = find_key(c, key);
    return i < 0 ? NULL : c->e[i].val.text;
}

const char *config_origin(const Config *c, const char *key) {
    int i = find_key(c, key);
    return i < 0 ? NULL : c->e[i].origin;
}

int config_count(const Config *c) { return c->n; }
const CfgKey *config_key_at(const Config *c, int i) { return i >= 0 && i < c->n ? c->e[i].k : NULL; }

int config_set_origin(Config *c, const char *key, const char *origin) {
    int i = find_key(c, key);
    if (i < 0) return err_set("config key '%s' is not declared", key);
    free(c->e[i].origin);
    c->e[i].origin = err_strdup(origin);
    return 0;
}

/* ---- Printing ----------------------------------------------------------- */

static int needs_quotes(const char *v) {
    if (!*v || v[0] == ' ' || v[0] == '\t' || v[0] == '"') return 1;
    size_t n = strlen(v);
    if (v[n - 1] == ' ' || v[n - 1] == '\t') return 1;
    for (const char *p = v; *p; p++)
        if (*p == '#' || (unsigned char)*p < 0x20) return 1;
    return 0;
}

/* v as it would be written in a config file, quoted and escaped if needed. */
static void fput_value(const char *v, FILE *f) {
    if (!needs_quotes(v)) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const char *p = v; *p; p++) {
        const char *esc = *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : NULL;
        if (esc) fputs(esc, f);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int differs_from_default(const CfgEntry *e) {
    if (!e->val.text || !e->def.text) return e->val.text != e->def.text;
    return strcmp(e->val.text, e->def.text) != 0;
}

void config_print(const Config *c, FILE *f) {
    int width = 0;
    for (int i = 0; i < c->n; i++) {
        int len = (int)strlen(c->e[i].k->key);
        if (len > width) width = len;
    }
    for (int i = 0; i < c->n; i++) {
        const CfgEntry *e = &c->e[i];
        if (!e->val.text) {
            fprintf(f, "# %-*s = (required, not set)\n", width - 2, e->k->key); /* '=' stays in line */
            continue;
        }
        fprintf(f, "%-*s = ", width, e->k->key);
        fput_value(e->val.text, f);
        if (differs_from_default(e)) fprintf(f, "  # %s", e->origin);
        fputc('\n', f);
    }
}

/* "INT", "k1|k3", ... : what help shows after "key=". */
static const char *help_metavar(const CfgKey *k) {
    switch (k->type) {
    case CFG_INT: return "INT";
    case CFG_FLOAT: return "FLOAT";
    case CFG_STR: return "STR";
    case CFG_BOOL: return "BOOL";
    case CFG_ENUM: return k->choices;
    }
    return "?";
}

/* k's range as messages spell it ("in [0, 1)", ">= 1"); 0 if it has none.
 * Tables were checked by config_new; an unparsable range prints as written. */
static int table_range(const CfgKey *k, char *buf, size_t n) {
    CfgRange r;
    if (!k->range) return 0;
    if (config_range_parse(k->range, &r)) snprintf(buf, n, "%s", k->range);
    else config_range_format(&r, buf, n);
    return 1;
}

void config_help(const CfgKey *const *tables, int n_tables, FILE *f) {
    int width = 0;
    for (int t = 0; t < n_tables; t++)
        for (const CfgKey *k = tables[t]; k->key; k++) {
            int len = (int)(strlen(k->key) + 1 + strlen(help_metavar(k)));
            if (len > width) width = len;
        }
    for (int t = 0; t < n_tables; t++)
        for (const CfgKey *k = tables[t]; k->key; k++) {
            char left[256];
            snprintf(left, sizeof left, "%s=%s", k->key, help_metavar(k));
            fprintf(f, "  %-*s  %s ", width, left, k->help ? k->help : "");
            if (!k->def) fputs("(required", f);
            else {
                fputs("(default: ", f);
                fput_value(k->def, f);
            }
            char range[96];
            if (table_range(k, range, sizeof range) && strcmp(range, "any")) fprintf(f, "; %s", range);
            if (k->alias) fprintf(f, "; --%s is the same", k->alias);
            fputs(")\n", f);
        }
}

/* Markdown table cell text: '|' escaped so it does not split the cell. */
static void fput_cell(const char *s, FILE *f) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

static void markdown_type(const CfgKey *k, FILE *f) {
    if (k->type != CFG_ENUM) {
        fputs(type_name(k->type), f);
        return;
    }
    const char *s;
    size_t len;
    fputs("one of", f);
    for (int i = 0; enum_choice(k, i, &s, &len); i++) fprintf(f, "%s `%.*s`", i ? "," : "", (int)len, s);
}

void config_markdown(const CfgKey *const *tables, int n_tables, FILE *f) {
    fputs("| Key | Type | Default | Range | Description |\n|---|---|---|---|---|\n", f);
    for (int t = 0; t < n_tables; t++)
        for (const CfgKey *k = tables[t]; k->key; k++) {
            fprintf(f, "| `%s` | ", k->key);
            markdown_type(k, f);
            fputs(" | ", f);
            if (!k->def) fputs("*required*", f);
            else if (!k->def[0]) fputs("`\"\"`", f);
            else {
                fputc('`', f);
                fput_cell(k->def, f);
                fputc('`', f);
            }
            fputs(" | ", f);
            char range[96];
            if (table_range(k, range, sizeof range)) {
                const char *r = strncmp(range, "in ", 3) ? range : range + 3;
                fprintf(f, "`%s` ", r);
            }
            fputs("| ", f);
            fput_cell(k->help ? k->help : "", f);
            if (k->alias) fprintf(f, "; `--%s` is the same", k->alias);
            fputs(" |\n", f);
        }
}

/* ---- Comparing ---------------------------------------------------------- */

/* Appends to buf[0..n) at *used; on overflow ends the text with "...". */
static void append(char *buf, size_t n, size_t *used, const char *fmt, const char *key, const char *va, const char *vb) {
    if (!n || *used >= n) return;
    int w = snprintf(buf + *used, n - *used, fmt, key, va, vb);
    if (w >= 0 && (size_t)w < n - *used) {
        *used += (size_t)w;
        return;
    }
    if (n >= 4) memcpy(buf + n - 4, "...", 4);
    *used = n;
}

int config_diff(const Config *a, const Config *b, char *buf, size_t n) {
    int count = 0;
    size_t used = 0;
    if (n) buf[0] = 0;
    for (int i = 0; i < a->n; i++) {
        int j = find_key(b, a->e[i].k->key);
        if (j < 0) continue;
        const char *va = a->e[i].val.text, *vb = b->e[j].val.text;
        if (va && vb ? !strcmp(va, vb) : va == vb) continue;
        append(buf, n, &used, count ? ", %s (%s vs %s)" : "%s (%s vs %s)", a->e[i].k->key, va ? va : "(not set)",
               vb ? vb : "(not set)");
        count++;
    }
    return count;
}
