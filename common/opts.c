/* opts — table-driven option parsing and --help; see opts.h. */
#include "common/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static const Opt *find_opt(const OptSpec *s, const char *name, size_t len) {
    for (const Opt *o = s->opts; o && o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    return NULL;
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
        if (errno || end == v || *end || x < -2147483647L || x > 2147483647L)
            return err_set("%s: --%s expects an integer, got '%s'", s->command, o->name, v);
        *(int *)o->dest = (int)x;
        return 0;
    }
    case OPT_FLOAT: {
        float x = strtof(v, &end);
        if (errno || end == v || *end)
            return err_set("%s: --%s expects a number, got '%s'", s->command, o->name, v);
        *(float *)o->dest = x;
        return 0;
    }
    case OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end)
            return err_set("%s: --%s expects a number, got '%s'", s->command, o->name, v);
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

static void print_default(const Opt *o, FILE *f) {
    switch (o->type) {
    case OPT_STR:
        if (*(const char **)o->dest) fprintf(f, " (default: %s)", *(const char **)o->dest);
        break;
    case OPT_INT:
        fprintf(f, " (default: %d)", *(int *)o->dest);
        break;
    case OPT_FLOAT:
        fprintf(f, " (default: %g)", *(float *)o->dest);
        break;
    case OPT_DOUBLE:
        fprintf(f, " (default: %g)", *(double *)o->dest);
        break;
    case OPT_FLAG:
        break;
    }
}

void opts_help(const OptSpec *s, FILE *f) {
    fprintf(f, "usage: %s\n\n%s\n", s->usage, s->summary);
    if (s->opts && s->opts->name) fprintf(f, "\noptions:\n");
    for (const Opt *o = s->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-24s %s", left, o->help);
        print_default(o, f);
        fputc('\n', f);
    }
    fprintf(f, "  %-24s %s\n", "--help", "show this help and exit");
    if (s->details) fprintf(f, "\n%s\n", s->details);
}
