/* opts — table-driven option parsing and --help; see opts.h. */
#include "common/opts.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"

static const Opt *find_opt(const OptSpec *s, const char *name, size_t len) {
    for (const Opt *o = s->opts; o && o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    return NULL;
}

/* o's range, parsed; 0 if it has none. A malformed range is a bug in the
 * table: a message on stderr and abort(). */
static int opt_range(const OptSpec *s, const Opt *o, CfgRange *r) {
    if (!o->range) return 0;
    if (config_range_parse(o->range, r)) {
        fprintf(stderr, "rlhf: bug: %s --%s: %s\n", s->command, o->name, err_msg());
        abort();
    }
    return 1;
}

/* The rule for every ranged option: x (read from text v) lies in o's
 * range, or "COMMAND: --NAME must be RANGE, got V". */
static int check_range(const OptSpec *s, const Opt *o, double x, const char *v) {
    CfgRange r;
    if (!opt_range(s, o, &r) || config_range_contains(&r, x)) return 0;
    char want[96];
    config_range_format(&r, want, sizeof want);
    return err_set("%s: --%s must be %s, got %s", s->command, o->name, want, v);
}

static int set_value(const OptSpec *s, const Opt *o, const char *v) {
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        *(const char **)o->dest = v;
        return 0;
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (end == v || *end) return err_set("%s: --%s expects an integer, got '%s'", s->command, o->name, v);
        if (errno == ERANGE || x < INT_MIN || x > INT_MAX) /* an integer, but not an int: say so */
            return err_set("%s: --%s: %s is out of range for an integer (%d..%d)", s->command, o->name, v, INT_MIN,
                           INT_MAX);
        if (check_range(s, o, (double)x, v)) return -1;
        *(int *)o->dest = (int)x;
        return 0;
    }
    case OPT_FLOAT: {
        /* read as a double, so that a number outside float's range is named
         * as such (config_float_misfit) rather than "not a number" */
        double x = strtod(v, &end);
        if (end == v || *end)
            return err_set("%s: --%s expects a number, got '%s'", s->command, o->name, v);
        const char *misfit = config_float_misfit(x);
        if (misfit) return err_set("%s: --%s: %s %s", s->command, o->name, v, misfit);
        if (check_range(s, o, x, v)) return -1;
        *(float *)o->dest = (float)x;
        return 0;
    }
    case OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (end == v || *end)
            return err_set("%s: --%s expects a number, got '%s'", s->command, o->name, v);
        if (errno == ERANGE)
            return err_set("%s: --%s: %s is too %s for a double", s->command, o->name, v,
                           fabs(x) < 1 ? "small" : "large");
        if (check_range(s, o, x, v)) return -1;
        *(double *)o->dest = x;
        return 0;
    }
    case OPT_FLAG:
        break;
    }
    return err_set("%s: --%s takes no value", s->command, o->name);
}

int opts_parse(const OptSpec *s, int argc, char **argv, char **pos, int *n_pos) {
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            opts_help(s, stdout);
            return 1;
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            if (*n_pos >= s->max_pos)
                return err_set("%s: unexpected argument '%s' (see rlhf %s --help)", s->command, a, s->command);
            pos[(*n_pos)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const Opt *o = find_opt(s, name, len);
        if (!o)
            return err_set("%s: unknown option --%.*s (see rlhf %s --help)", s->command, (int)len, name, s->command);
        if (o->type == OPT_FLAG) {
            if (eq) return err_set("%s: --%s takes no value", s->command, o->name);
            *(int *)o->dest = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return err_set("%s: --%s needs a value (%s)", s->command, o->name, o->metavar ? o->metavar : "VALUE");
        if (set_value(s, o, v)) return -1;
    }
    if (*n_pos < s->min_pos)
        return err_set("%s: missing argument (usage: %s)", s->command, s->usage);
    return 0;
}

/* " (default: X" without the closing parenthesis; 0 if there is no default. */
static int print_default(const Opt *o, FILE *f) {
    switch (o->type) {
    case OPT_STR:
        if (!*(const char **)o->dest) return 0;
        fprintf(f, " (default: %s", *(const char **)o->dest);
        return 1;
    case OPT_INT:
        fprintf(f, " (default: %d", *(int *)o->dest);
        return 1;
    case OPT_FLOAT:
        fprintf(f, " (default: %g", *(float *)o->dest);
        return 1;
    case OPT_DOUBLE:
        fprintf(f, " (default: %g", *(double *)o->dest);
        return 1;
    case OPT_FLAG:
        break;
    }
    return 0;
}

void opts_help(const OptSpec *s, FILE *f) {
    fprintf(f, "usage: %s\n\n%s\n", s->usage, s->summary);
    fprintf(f, "\noptions:\n"); /* --help at least, even in an empty table */
    for (const Opt *o = s->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-24s %s", left, o->help);
        int open = print_default(o, f);
        CfgRange r;
        if (opt_range(s, o, &r) && (r.has_lo || r.has_hi)) { /* "any" is not worth a word */
            char range[96];
            config_range_format(&r, range, sizeof range);
            fprintf(f, "%s%s", open ? "; " : " (", range);
            open = 1;
        }
        fputs(open ? ")\n" : "\n", f);
    }
    fprintf(f, "  %-24s %s\n", "--help", "show this help and exit");
    if (s->details) fprintf(f, "\n%s\n", s->details);
}
