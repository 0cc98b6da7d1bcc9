/* jsonl — reads JSONL data files (one JSON object per line) for the SFT,
 * preference, ranking and prompt datasets (field names as in TRL: "prompt",
 * "completion", "chosen", "rejected", "ranking"). Parsing is jansson's; this
 * module adds line-by-line reading, blank-line skipping, a line-length limit
 * and error messages that name the file, the line and the field, e.g.
 * "data.jsonl:7: field \"prompt\": expected a string, got number".
 *
 *   Jsonl *j = jsonl_open(path);            // NULL + err_set on failure
 *   json_t *rec;
 *   int rc;
 *   while ((rc = jsonl_next(j, &rec)) == 1) {
 *       const char *prompt;
 *       if (jsonl_get_str(j, rec, "prompt", &prompt)) ...;  // -1 + err_set
 *   }
 *   jsonl_close(j);                          // rc == -1: bad line, see err_msg()
 */
#ifndef JSONL_H
#define JSONL_H

#include <jansson.h>
#include <stddef.h>

/* Longest accepted line in bytes, without its newline. */
#define JSONL_MAX_LINE ((size_t)16 << 20)

typedef struct Jsonl Jsonl;

/* NULL with err_set("PATH: No such file or directory") etc. on failure. */
Jsonl *jsonl_open(const char *path);
/* Reads the next record, skipping blank lines. Returns 1 and sets *obj to it
 * (a JSON object owned by j, valid until the next jsonl_next/jsonl_close),
 * 0 at end of file, or -1 with err_set("PATH:LINE: ...") for invalid JSON,
 * invalid UTF-8, a record that is not an object, a duplicate key, a line
 * longer than JSONL_MAX_LINE or a read error. After -1 reading may go on with
 * the following line. */
int jsonl_next(Jsonl *j, json_t **obj);
/* 1-based number of the line last read (0 before the first). */
int jsonl_line(const Jsonl *j);
const char *jsonl_path(const Jsonl *j);
void jsonl_close(Jsonl *j);

/* Typed fields of a record; 0 on success, -1 with err_set naming path, line
 * and field when the field is missing or has the wrong type. Unknown extra
 * fields are fine. Strings are borrowed from obj (valid as long as obj). */
int jsonl_get_str(Jsonl *j, json_t *obj, const char *field, const char **out);
/* An array of at least 2 strings (a K-wise "ranking", best first). *out is a
 * new array of *n borrowed strings: free(*out) when done. */
int jsonl_get_str_array(Jsonl *j, json_t *obj, const char *field, const char ***out, int *n);
/* An integer; a number with an integral value (3.0) counts too. */
int jsonl_get_int(Jsonl *j, json_t *obj, const char *field, long long *out);
/* Any number. */
int jsonl_get_num(Jsonl *j, json_t *obj, const char *field, double *out);

/* The prompts of a {"prompt": ...} file (generate, eval, the RL job), in
 * file order, with the optional "answer" of each line (for the answer
 * verifier: a string, or a number kept as its JSON text, e.g. "42"). */
typedef struct {
    char **text; /* owned copies */
    char **answer; /* owned copies; NULL where the line has no "answer" */
    int *line;   /* line of each prompt in its file (0: not from a file) */
    int n, cap;
} JsonlPrompts;

/* Appends a copy of s, read from line `line` (0: none), to p (which starts
 * as {0}). */
void jsonl_prompts_add(JsonlPrompts *p, const char *s, int line);
/* Appends every record's "prompt" string (and "answer", if there is one) to
 * p. 0, or -1 + err_set naming the file and line (a bad line, a record
 * without a string "prompt", an "answer" that is neither a string nor a
 * number) or
 * "PATH: no prompts in file"; on error p is freed (left empty). */
int jsonl_read_prompts(const char *path, JsonlPrompts *p);
void jsonl_prompts_free(JsonlPrompts *p);

#endif
