/* jsonl — line-by-line reader for the JSONL datasets, on top of jansson; see
 * jsonl.h. Every message starts "PATH:LINE:" so a user can open the file at
 * the offending record; the typed getters add the field name. */
#include "common/io/jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"

struct Jsonl {
    FILE *f;
    char *path;
    int line;       /* number of the line last read */
    char *buf;      /* the current line, NUL-terminated */
    size_t cap;
    json_t *record; /* the last record returned; owned */
    int skip_rest;  /* the line read last was refused at JSONL_MAX_LINE: the
                       next read first skips what is left of it */
};

Jsonl *jsonl_open(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        err_set("%s: is a directory, expected a JSONL file", path);
        return NULL;
    }
    Jsonl *j = err_calloc(1, sizeof *j);
    j->f = f;
    j->path = err_strdup(path);
    j->cap = 4096;
    j->buf = err_malloc(j->cap);
    return j;
}

void jsonl_close(Jsonl *j) {
    if (!j) return;
    json_decref(j->record);
    fclose(j->f);
    free(j->path);
    free(j->buf);
    free(j);
}

int jsonl_line(const Jsonl *j) { return j->line; }
const char *jsonl_path(const Jsonl *j) { return j->path; }

/* Reads one line (without its '\n') into j->buf, growing it up to the limit.
 * Returns 1 with *len set, 0 at end of file, -1 on a read error or an
 * over-long line. The rule for an over-long line: the refusal comes at the
 * limit, after JSONL_MAX_LINE + 1 bytes, never after reading the whole line
 * (a 10 GB line must not take minutes to refuse); the rest of it is skipped
 * only if the caller reads on, so reading can go on at the next line. */
static int read_line(Jsonl *j, size_t *len) {
    size_t n = 0;
    int ch, too_long = 0;
    if (j->skip_rest) {
        while ((ch = getc_unlocked(j->f)) != EOF && ch != '\n') {}
        j->skip_rest = 0;
        if (ferror(j->f)) return err_set("%s:%d: read error: %s", j->path, j->line, strerror(errno));
    }
    while ((ch = getc_unlocked(j->f)) != EOF && ch != '\n') {
        if (n == JSONL_MAX_LINE) {
            too_long = 1;
            j->skip_rest = 1;
            break;
        }
        if (n + 1 >= j->cap) { /* room for the NUL, never beyond the limit */
            j->cap = j->cap * 2 < JSONL_MAX_LINE + 1 ? j->cap * 2 : JSONL_MAX_LINE + 1;
            j->buf = err_realloc(j->buf, j->cap);
        }
        j->buf[n++] = (char)ch;
    }
    if (ferror(j->f)) return err_set("%s:%d: read error: %s", j->path, j->line, strerror(errno));
    if (too_long)
        return err_set("%s:%d: line longer than %zu bytes", j->path, j->line, JSONL_MAX_LINE);
    if (ch == EOF && n == 0) return 0;
    j->buf[n] = 0;
    *len = n;
    return 1;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* Names as a user thinks of them: JSON has numbers, not integers and reals. */
static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* jansson sees one line as its whole input, so its "near end of file" means
 * the end of the line. */
static const char *line_message(json_error_t *e) {
    static const char eof[] = "near end of file";
    size_t n = strlen(e->text), k = sizeof eof - 1;
    if (n >= k && strcmp(e->text + n - k, eof) == 0)
        snprintf(e->text + n - k, sizeof e->text - (n - k), "at end of line");
    return e->text;
}

/* Parses the current line as a record; NULL with err_set if it is not one. */
static json_t *parse_record(Jsonl *j, const char *text, size_t len) {
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!v) {
        int utf8 = json_error_code(&e) == json_error_invalid_utf8;
        err_set("%s:%d: %s at column %d: %s", j->path, j->line,
                utf8 ? "invalid UTF-8" : "invalid JSON", e.column, line_message(&e));
        return NULL;
    }
    if (!json_is_object(v)) {
        err_set("%s:%d: expected a JSON object {...}, got %s", j->path, j->line, type_name(v));
        json_decref(v);
        return NULL;
    }
    return v;
}

int jsonl_next(Jsonl *j, json_t **obj) {
    *obj = NULL;
    json_decref(j->record);
    j->record = NULL;
    for (;;) {
        size_t len = 0;
        j->line++;
        int rc = read_line(j, &len);
        if (rc == 0) j->line--; /* no line there */
        if (rc <= 0) return rc;
        const char *text = j->buf;
        if (j->line == 1 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
            text += 3; /* a UTF-8 byte-order mark some editors write */
            len -= 3;
        }
        if (is_blank(text, len)) continue;
        j->record = parse_record(j, text, len);
        if (!j->record) return -1;
        *obj = j->record;
        return 1;
    }
}

/* The field's value, or NULL with err_set("PATH:LINE: field "F": missing"). */
static json_t *get_field(Jsonl *j, json_t *obj, const char *field) {
    json_t *v = json_object_get(obj, field);
    if (!v) err_set("%s:%d: field \"%s\": missing", j->path, j->line, field);
    return v;
}

static int wrong_type(Jsonl *j, const char *field, const char *expected, const json_t *v) {
    return err_set("%s:%d: field \"%s\": expected %s, got %s", j->path, j->line, field, expected,
                   type_name(v));
}

int jsonl_get_str(Jsonl *j, json_t *obj, const char *field, const char **out) {
    *out = NULL;
    json_t *v = get_field(j, obj, field);
    if (!v) return -1;
    if (!json_is_string(v)) return wrong_type(j, field, "a string", v);
    *out = json_string_value(v);
    return 0;
}

int jsonl_get_str_array(Jsonl *j, json_t *obj, const char *field, const char ***out, int *n) {
    *out = NULL;
    *n = 0;
    json_t *v = get_field(j, obj, field);
    if (!v) return -1;
    if (!json_is_array(v)) return wrong_type(j, field, "an array of strings", v);
    size_t len = json_array_size(v);
    if (len < 2)
        return err_set("%s:%d: field \"%s\": expected at least 2 strings, got %zu", j->path,
                       j->line, field, len);
    for (size_t i = 0; i < len; i++) {
        json_t *item = json_array_get(v, i);
        if (!json_is_string(item))
            return err_set("%s:%d: field \"%s\"[%zu]: expected a string, got %s", j->path,
                           j->line, field, i, type_name(item));
    }
    const char **strs = err_malloc(sizeof *strs * len);
    for (size_t i = 0; i < len; i++) strs[i] = json_string_value(json_array_get(v, i));
    *out = strs;
    *n = (int)len;
    return 0;
}

int jsonl_get_int(Jsonl *j, json_t *obj, const char *field, long long *out) {
    *out = 0;
    json_t *v = get_field(j, obj, field);
    if (!v) return -1;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_real(v)) return wrong_type(j, field, "an integer", v);
    /* Writers that only have doubles emit 3.0; take it if it is exact. */
    double d = json_real_value(v);
    if (d != floor(d) || fabs(d) > 9007199254740992.0)
        return err_set("%s:%d: field \"%s\": expected an integer, got %g", j->path, j->line,
                       field, d);
    *out = (long long)d;
    return 0;
}

int jsonl_get_num(Jsonl *j, json_t *obj, const char *field, double *out) {
    *out = 0;
    json_t *v = get_field(j, obj, field);
    if (!v) return -1;
    if (!json_is_number(v)) return wrong_type(j, field, "a number", v);
    *out = json_number_value(v);
    return 0;
}

/* ---- prompt files ----------------------------------------------------------- */

void jsonl_prompts_add(JsonlPrompts *p, const char *s, int line) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->text = err_realloc(p->text, (size_t)p->cap * sizeof(char *));
        p->line = err_realloc(p->line, (size_t)p->cap * sizeof(int));
        p->answer = err_realloc(p->answer, (size_t)p->cap * sizeof(char *));
    }
    p->line[p->n] = line;
    p->answer[p->n] = NULL;
    p->text[p->n] = err_strdup(s);
    p->n++;
}

/* The record's optional "answer": a string, or a number as its JSON text
 * ("42", "-3.5"); *out NULL when absent. 0, or -1 + err_set naming the line. */
static int optional_answer(Jsonl *j, json_t *rec, char **out) {
    json_t *v = json_object_get(rec, "answer");
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        *out = err_strdup(json_string_value(v));
        return 0;
    }
    if (!json_is_number(v)) return wrong_type(j, "answer", "a string or a number", v);
    char buf[64];
    if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
    *out = err_strdup(buf);
    return 0;
}

int jsonl_read_prompts(const char *path, JsonlPrompts *p) {
    Jsonl *j = jsonl_open(path);
    if (!j) return -1;
    json_t *rec;
    const char *s;
    int rc;
    while ((rc = jsonl_next(j, &rec)) == 1) {
        if (jsonl_get_str(j, rec, "prompt", &s)) {
            rc = -1;
            break;
        }
        char *answer;
        if (optional_answer(j, rec, &answer)) {
            rc = -1;
            break;
        }
        jsonl_prompts_add(p, s, jsonl_line(j));
        p->answer[p->n - 1] = answer;
    }
    jsonl_close(j);
    if (rc == 0 && p->n == 0) rc = err_set("%s: no prompts in file", path);
    if (rc) jsonl_prompts_free(p);
    return rc ? -1 : 0;
}

void jsonl_prompts_free(JsonlPrompts *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->text[i]);
        free(p->answer[i]);
    }
    free(p->text);
    free(p->answer);
    free(p->line);
    memset(p, 0, sizeof *p);
}
