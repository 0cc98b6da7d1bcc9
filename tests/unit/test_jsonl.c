/* Tests for jsonl: reading good files (blank lines, CRLF, BOM, no final
 * newline, escapes, extra fields), every kind of malformed line and field,
 * with messages checked for the path, the line number and the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/io/jsonl.h"
#include "tests/harness.h"

/* "PATH:LINE: ", how a message about that line starts (for harness_err_has). */
static const char *place(const char *path, int line) {
    static char want[600];
    snprintf(want, sizeof want, "%s:%d: ", path, line);
    return want;
}

TEST(jsonl_reads_good_file) {
    const char *text =
        "{\"prompt\": \"Hi\", \"completion\": \" there\", \"extra\": {\"x\": [1]}}\n"
        "\n"
        "  \t \r\n"
        "{\"prompt\":\"Q2\",\"chosen\":\"a\\nb\",\"rejected\":\"\\u00e9\"}\r\n"
        "{\"prompt\": \"caf\xc3\xa9 \xe2\x9c\x93\", \"ranking\": [\"best\", \"mid\", \"worst\"],"
        " \"n\": 3, \"m\": 4.0, \"score\": -2.5}";
    const char *path = harness_tmp_text("good.jsonl", text);
    Jsonl *j = jsonl_open(path);
    CHECK(j != NULL);
    if (!j) return;
    CHECK(strcmp(jsonl_path(j), path) == 0);
    CHECK(jsonl_line(j) == 0);
    json_t *rec;
    const char *s;

    CHECK(jsonl_next(j, &rec) == 1);
    CHECK(jsonl_line(j) == 1);
    CHECK(jsonl_get_str(j, rec, "prompt", &s) == 0 && strcmp(s, "Hi") == 0);
    CHECK(jsonl_get_str(j, rec, "completion", &s) == 0 && strcmp(s, " there") == 0);

    CHECK(jsonl_next(j, &rec) == 1);
    CHECK(jsonl_line(j) == 4); /* blank and whitespace-only lines skipped */
    CHECK(jsonl_get_str(j, rec, "chosen", &s) == 0 && strcmp(s, "a\nb") == 0);
    CHECK(jsonl_get_str(j, rec, "rejected", &s) == 0 && strcmp(s, "\xc3\xa9") == 0);

    CHECK(jsonl_next(j, &rec) == 1); /* the last line has no newline */
    CHECK(jsonl_line(j) == 5);
    CHECK(jsonl_get_str(j, rec, "prompt", &s) == 0 && strcmp(s, "caf\xc3\xa9 \xe2\x9c\x93") == 0);
    const char **rank;
    int n;
    CHECK(jsonl_get_str_array(j, rec, "ranking", &rank, &n) == 0);
    CHECK(n == 3);
    if (n == 3)
        CHECK(strcmp(rank[0], "best") == 0 && strcmp(rank[1], "mid") == 0 &&
              strcmp(rank[2], "worst") == 0);
    free(rank);
    long long i;
    double d;
    CHECK(jsonl_get_int(j, rec, "n", &i) == 0 && i == 3);
    CHECK(jsonl_get_int(j, rec, "m", &i) == 0 && i == 4); /* 4.0 is exact */
    CHECK(jsonl_get_num(j, rec, "score", &d) == 0 && d == -2.5);
    CHECK(jsonl_get_num(j, rec, "n", &d) == 0 && d == 3);

    CHECK(jsonl_next(j, &rec) == 0);
    CHECK(rec == NULL);
    CHECK(jsonl_next(j, &rec) == 0); /* stays at end */
    CHECK(jsonl_line(j) == 5);
    jsonl_close(j);
}

TEST(jsonl_bom_and_trailing_newline) {
    const char *path = harness_tmp_text("bom.jsonl", "\xEF\xBB\xBF{\"prompt\": \"x\"}\n{\"prompt\": \"y\"}\n");
    Jsonl *j = jsonl_open(path);
    json_t *rec;
    const char *s;
    CHECK(jsonl_next(j, &rec) == 1 && jsonl_get_str(j, rec, "prompt", &s) == 0 && s[0] == 'x');
    CHECK(jsonl_next(j, &rec) == 1 && jsonl_get_str(j, rec, "prompt", &s) == 0 && s[0] == 'y');
    CHECK(jsonl_next(j, &rec) == 0);
    CHECK(jsonl_line(j) == 2);
    jsonl_close(j);
}

TEST(jsonl_empty_and_missing_files) {
    json_t *rec = (json_t *)1;
    const char *path = harness_tmp_text("empty.jsonl", "");
    Jsonl *j = jsonl_open(path);
    CHECK(j != NULL);
    CHECK(jsonl_next(j, &rec) == 0 && rec == NULL);
    CHECK(jsonl_line(j) == 0);
    jsonl_close(j);

    path = harness_tmp_text("blank.jsonl", "\n\n  \n");
    j = jsonl_open(path);
    CHECK(jsonl_next(j, &rec) == 0);
    jsonl_close(j);

    char missing[512];
    snprintf(missing, sizeof missing, "%s/no-such.jsonl", harness_tmpdir());
    CHECK(jsonl_open(missing) == NULL);
    char want[600];
    snprintf(want, sizeof want, "%s: No such file or directory", missing);
    CHECKF(strcmp(err_msg(), want) == 0, "msg: %s", err_msg());

    CHECK(jsonl_open(harness_tmpdir()) == NULL);
    CHECKF(harness_err_has("", harness_tmpdir(), "directory", (const char *)NULL), "msg: %s", err_msg());
    jsonl_close(NULL);
}

/* One bad line after a good line and a blank one, so it is line 3. */
static void expect_bad_line(const char *name, const char *bad, size_t bad_len,
                            const char *needle) {
    char text[512];
    size_t head = (size_t)snprintf(text, sizeof text, "{\"prompt\": \"ok\"}\n\n");
    memcpy(text + head, bad, bad_len);
    memcpy(text + head + bad_len, "\n{\"prompt\": \"after\"}\n", 22);
    const char *path = harness_tmp_file(name, text, head + bad_len + 22);
    Jsonl *j = jsonl_open(path);
    json_t *rec;
    CHECK(jsonl_next(j, &rec) == 1);
    CHECKF(jsonl_next(j, &rec) == -1 && rec == NULL, "%s: bad line accepted", name);
    CHECKF(harness_err_has(place(path, 3), needle, (const char *)NULL), "%s: msg: %s", name, err_msg());
    /* Reading can go on after a bad line. */
    const char *s;
    CHECK(jsonl_next(j, &rec) == 1 && jsonl_line(j) == 4);
    CHECK(jsonl_get_str(j, rec, "prompt", &s) == 0 && strcmp(s, "after") == 0);
    jsonl_close(j);
}

#define BAD(name, literal, needle) expect_bad_line(name, literal, sizeof(literal) - 1, needle)

TEST(jsonl_rejects_malformed_lines) {
    BAD("trailing_comma.jsonl", "{\"prompt\": \"x\",}", "invalid JSON at column");
    BAD("truncated.jsonl", "{\"prompt\": \"x\"", "expected at end of line");
    BAD("two_values.jsonl", "{\"a\": 1} {\"b\": 2}", "invalid JSON");
    BAD("unquoted.jsonl", "{prompt: 1}", "invalid JSON");
    BAD("array.jsonl", "[\"a\", \"b\"]", "expected a JSON object {...}, got array");
    BAD("number.jsonl", "42", "expected a JSON object {...}, got number");
    BAD("string.jsonl", "\"just text\"", "got string");
    BAD("latin1.jsonl", "{\"prompt\": \"caf\xe9\"}", "invalid UTF-8");
    BAD("overlong.jsonl", "{\"prompt\": \"\xc0\xaf\"}", "invalid UTF-8");
    BAD("bad_byte_outside_string.jsonl", "{\"prompt\": \xff}", "invalid UTF-8");
    BAD("duplicate.jsonl", "{\"prompt\": \"a\", \"prompt\": \"b\"}", "duplicate");
    BAD("nul_escape.jsonl", "{\"prompt\": \"a\\u0000b\"}", "invalid JSON");
    BAD("raw_nul.jsonl", "{\"prompt\": \"a\0b\"}", "invalid JSON");
}

TEST(jsonl_rejects_overlong_line) {
    size_t big = JSONL_MAX_LINE + 100;
    char *text = malloc(big + 64);
    size_t n = 0;
    n += (size_t)sprintf(text, "{\"prompt\": \"");
    memset(text + n, 'a', big - n);
    n = big;
    n += (size_t)sprintf(text + n, "\"}\n{\"prompt\": \"next\"}");
    const char *path = harness_tmp_file("long.jsonl", text, n);
    free(text);
    Jsonl *j = jsonl_open(path);
    json_t *rec;
    CHECK(jsonl_next(j, &rec) == -1);
    CHECKF(harness_err_has(place(path, 1), "line longer than", (const char *)NULL), "msg: %s", err_msg());
    const char *s;
    CHECK(jsonl_next(j, &rec) == 1 && jsonl_line(j) == 2);
    CHECK(jsonl_get_str(j, rec, "prompt", &s) == 0 && strcmp(s, "next") == 0);
    jsonl_close(j);

    /* Just under the limit is fine. */
    size_t len = JSONL_MAX_LINE;
    text = malloc(len + 1);
    n = (size_t)sprintf(text, "{\"prompt\": \"");
    memset(text + n, 'b', len - n - 2);
    memcpy(text + len - 2, "\"}", 2);
    path = harness_tmp_file("limit.jsonl", text, len);
    free(text);
    j = jsonl_open(path);
    CHECK(jsonl_next(j, &rec) == 1);
    CHECK(jsonl_get_str(j, rec, "prompt", &s) == 0 && strlen(s) == len - 14);
    jsonl_close(j);
}

/* A 40 MiB line is refused at the limit: the file was read to the end of
 * the line (all 40 MiB; a 10 GB line took minutes) before the refusal. The
 * kernel's file offset shows how far it read (stdio reads ahead a buffer). */
TEST(jsonl_refuses_overlong_line_at_the_limit) {
    size_t big = (size_t)40 << 20;
    char *text = malloc(big + 64);
    memset(text, 'a', big);
    size_t n = big + (size_t)sprintf(text + big, "\n{\"prompt\": \"next\"}\n");
    const char *path = harness_tmp_file("huge.jsonl", text, n);
    free(text);
    int fd = dup(0); /* the number jsonl_open's fopen will get: the lowest free */
    close(fd);
    Jsonl *j = jsonl_open(path);
    json_t *rec;
    CHECK(jsonl_next(j, &rec) == -1);
    CHECKF(harness_err_has(place(path, 1), "line longer than 16777216 bytes", (const char *)NULL), "msg: %s",
           err_msg());
    off_t pos = lseek(fd, 0, SEEK_CUR);
    CHECKF(pos > 0 && (size_t)pos <= JSONL_MAX_LINE + ((size_t)1 << 20), "read %lld bytes of a %zu-byte line",
           (long long)pos, big);
    /* reading on skips the rest of the line */
    const char *s;
    CHECK(jsonl_next(j, &rec) == 1 && jsonl_line(j) == 2);
    CHECK(jsonl_get_str(j, rec, "prompt", &s) == 0 && strcmp(s, "next") == 0);
    jsonl_close(j);
}

/* Opens a one-record file whose record is on line 2 and returns it. */
static Jsonl *open_record(const char *name, const char *record, json_t **rec,
                          const char **path) {
    char text[512];
    snprintf(text, sizeof text, "\n%s\n", record);
    *path = harness_tmp_text(name, text);
    Jsonl *j = jsonl_open(*path);
    CHECK(jsonl_next(j, rec) == 1);
    return j;
}

static void expect_msg(const char *path, const char *rest) {
    char want[700];
    snprintf(want, sizeof want, "%s:2: %s", path, rest);
    CHECKF(strcmp(err_msg(), want) == 0, "got \"%s\", want \"%s\"", err_msg(), want);
}

TEST(jsonl_field_errors_name_path_line_field) {
    const char *path;
    json_t *rec;
    Jsonl *j = open_record("fields.jsonl",
                           "{\"completion\": \"x\", \"prompt\": 5, \"p2\": null, \"p3\": [\"a\"],"
                           " \"p4\": true, \"p5\": {}, \"n\": \"7\", \"f\": 2.5}",
                           &rec, &path);
    const char *s = "untouched";
    CHECK(jsonl_get_str(j, rec, "missing", &s) == -1 && s == NULL);
    expect_msg(path, "field \"missing\": missing");
    CHECK(jsonl_get_str(j, rec, "prompt", &s) == -1);
    expect_msg(path, "field \"prompt\": expected a string, got number");
    CHECK(jsonl_get_str(j, rec, "p2", &s) == -1);
    expect_msg(path, "field \"p2\": expected a string, got null");
    CHECK(jsonl_get_str(j, rec, "p3", &s) == -1);
    expect_msg(path, "field \"p3\": expected a string, got array");
    CHECK(jsonl_get_str(j, rec, "p4", &s) == -1);
    expect_msg(path, "field \"p4\": expected a string, got boolean");
    CHECK(jsonl_get_str(j, rec, "p5", &s) == -1);
    expect_msg(path, "field \"p5\": expected a string, got object");

    long long i;
    double d;
    CHECK(jsonl_get_int(j, rec, "n", &i) == -1);
    expect_msg(path, "field \"n\": expected an integer, got string");
    CHECK(jsonl_get_int(j, rec, "f", &i) == -1);
    expect_msg(path, "field \"f\": expected an integer, got 2.5");
    CHECK(jsonl_get_int(j, rec, "nope", &i) == -1);
    expect_msg(path, "field \"nope\": missing");
    CHECK(jsonl_get_num(j, rec, "n", &d) == -1);
    expect_msg(path, "field \"n\": expected a number, got string");
    CHECK(jsonl_get_num(j, rec, "f", &d) == 0 && d == 2.5);
    jsonl_close(j);
}

TEST(jsonl_ranking_errors) {
    const char *path;
    json_t *rec;
    Jsonl *j = open_record("rank.jsonl",
                           "{\"one\": [\"a\"], \"none\": [], \"mixed\": [\"a\", 3, \"c\"],"
                           " \"str\": \"a\", \"two\": [\"x\", \"\"]}",
                           &rec, &path);
    const char **out = (const char **)1;
    int n = 99;
    CHECK(jsonl_get_str_array(j, rec, "one", &out, &n) == -1 && out == NULL && n == 0);
    expect_msg(path, "field \"one\": expected at least 2 strings, got 1");
    CHECK(jsonl_get_str_array(j, rec, "none", &out, &n) == -1);
    expect_msg(path, "field \"none\": expected at least 2 strings, got 0");
    CHECK(jsonl_get_str_array(j, rec, "mixed", &out, &n) == -1);
    expect_msg(path, "field \"mixed\"[1]: expected a string, got number");
    CHECK(jsonl_get_str_array(j, rec, "str", &out, &n) == -1);
    expect_msg(path, "field \"str\": expected an array of strings, got string");
    CHECK(jsonl_get_str_array(j, rec, "ranking", &out, &n) == -1);
    expect_msg(path, "field \"ranking\": missing");
    CHECK(jsonl_get_str_array(j, rec, "two", &out, &n) == 0 && n == 2);
    if (n == 2) CHECK(strcmp(out[0], "x") == 0 && out[1][0] == 0);
    free(out);
    jsonl_close(j);
}

/* ---- jsonl_read_prompts ------------------------------------------------------ */

TEST(jsonl_read_prompts_in_order) {
    const char *path = harness_tmp_text("prompts.jsonl",
                                  "{\"prompt\": \"one\"}\n\n{\"prompt\": \"two\", \"answer\": \"2\"}\r\n"
                                  "{\"answer\": 3, \"prompt\": \"th\\u00e9ree\"}");
    JsonlPrompts p = {0};
    jsonl_prompts_add(&p, "first", 0);
    CHECK(jsonl_read_prompts(path, &p) == 0);
    CHECK(p.n == 4);
    if (p.n == 4) {
        CHECK(strcmp(p.text[0], "first") == 0);
        CHECK(strcmp(p.text[1], "one") == 0);
        CHECK(strcmp(p.text[2], "two") == 0);
        CHECK(strcmp(p.text[3], "th\xc3\xa9ree") == 0);
        /* the line each prompt came from (the blank line 2 is skipped) */
        CHECK(p.line[0] == 0 && p.line[1] == 1 && p.line[2] == 3 && p.line[3] == 4);
    }
    jsonl_prompts_free(&p);
    CHECK(p.n == 0 && p.text == NULL);
}

TEST(jsonl_read_prompts_many) {
    char text[4000] = "", line[40];
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof line, "{\"prompt\": \"p%d\"}\n", i);
        strcat(text, line);
    }
    JsonlPrompts p = {0};
    CHECK(jsonl_read_prompts(harness_tmp_text("many.jsonl", text), &p) == 0);
    CHECK(p.n == 100);
    CHECK(p.n == 100 && strcmp(p.text[99], "p99") == 0 && strcmp(p.text[16], "p16") == 0);
    jsonl_prompts_free(&p);
}

/* The optional "answer": a string, a number kept as its text, or none. */
TEST(jsonl_read_prompts_answers) {
    const char *text = "{\"prompt\": \"a\", \"answer\": \"x = 3\"}\n{\"prompt\": \"b\"}\n"
                       "{\"prompt\": \"c\", \"answer\": 42}\n{\"prompt\": \"d\", \"answer\": -2.5}\n"
                       "{\"prompt\": \"e\", \"answer\": null}\n";
    JsonlPrompts p = {0};
    CHECK(jsonl_read_prompts(harness_tmp_text("answers.jsonl", text), &p) == 0);
    CHECK(p.n == 5);
    if (p.n != 5) return;
    CHECK(!strcmp(p.answer[0], "x = 3"));
    CHECK(p.answer[1] == NULL);
    CHECK(!strcmp(p.answer[2], "42"));
    CHECK(!strcmp(p.answer[3], "-2.5"));
    CHECK(p.answer[4] == NULL);
    jsonl_prompts_free(&p);
}

/* Each bad file: -1, the message names the place, and nothing is left. */
TEST(jsonl_read_prompts_malformed) {
    static const struct {
        const char *name, *text, *expect;
        int line;
    } cases[] = {
        {.name = "p_missing.jsonl", .text = "{\"prompt\": \"ok\"}\n{\"completion\": \"x\"}\n", .expect = "\"prompt\"", .line = 2},
        {.name = "p_number.jsonl", .text = "{\"prompt\": 7}\n", .expect = "expected a string", .line = 1},
        {.name = "p_badjson.jsonl", .text = "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\"\n", .expect = "", .line = 3},
        {.name = "p_array.jsonl", .text = "[\"prompt\"]\n", .expect = "", .line = 1},
        {.name = "p_answer.jsonl", .text = "{\"prompt\": \"a\", \"answer\": \"1\"}\n{\"prompt\": \"b\", \"answer\": [1]}\n",
         .expect = "answer", .line = 2},
        {.name = "p_answer_bool.jsonl", .text = "{\"prompt\": \"a\", \"answer\": true}\n", .expect = "a string or a number",
         .line = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = harness_tmp_text(cases[i].name, cases[i].text);
        char copy[512];
        snprintf(copy, sizeof copy, "%s", path);
        JsonlPrompts p = {0};
        CHECKF(jsonl_read_prompts(copy, &p) == -1, "%s accepted", cases[i].name);
        CHECKF(harness_err_has(place(copy, cases[i].line), (const char *)NULL), "%s: %s", cases[i].name, err_msg());
        CHECKF(harness_err_has("", cases[i].expect, (const char *)NULL), "%s: %s", cases[i].name, err_msg());
        CHECK(p.n == 0 && p.text == NULL);
    }
}

TEST(jsonl_read_prompts_empty_or_missing) {
    JsonlPrompts p = {0};
    const char *path = harness_tmp_text("p_empty.jsonl", "\n  \n");
    char want[600];
    snprintf(want, sizeof want, "%s: no prompts in file", path);
    CHECK(jsonl_read_prompts(path, &p) == -1);
    CHECKF(strcmp(err_msg(), want) == 0, "%s", err_msg());
    CHECK(p.n == 0);
    CHECK(jsonl_read_prompts("/nonexistent/prompts.jsonl", &p) == -1);
    CHECK(harness_err_has("", "/nonexistent/prompts.jsonl", (const char *)NULL));
    CHECK(p.n == 0);
}
