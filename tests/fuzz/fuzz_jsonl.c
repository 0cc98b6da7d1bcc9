/* fuzz_jsonl — libFuzzer harness for common/io/jsonl.c: the input is a whole
 * JSONL data file. Every record is read (reading goes on after a bad line,
 * as jsonl.h promises) and every typed getter is tried on the fields the
 * datasets use, so bad records must give messages, never crashes or leaks. */
#include "common/err.h"
#include "common/io/jsonl.h"
#include "tests/fuzz/fuzz_util.h"

/* Each getter on each TRL field name; the results only need to be safe. */
static void fuzz_jsonl_fields(Jsonl *j, json_t *rec) {
    static const char *const fields[] = {"prompt", "completion", "chosen", "rejected", "ranking"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const char *s, **arr;
        long long v;
        double d;
        int n;
        if (!jsonl_get_str(j, rec, fields[i], &s)) FUZZ_CHECK(s != NULL, "string field without value");
        if (!jsonl_get_str_array(j, rec, fields[i], &arr, &n)) {
            FUZZ_CHECK(n >= 2, "ranking with %d strings", n);
            for (int k = 0; k < n; k++) FUZZ_CHECK(arr[k] != NULL, "NULL string in ranking");
            free(arr);
        }
        jsonl_get_int(j, rec, fields[i], &v);
        jsonl_get_num(j, rec, fields[i], &d);
    }
}

static void fuzz_jsonl(const uint8_t *data, size_t n) {
    const char *path = fuzz_path("data.jsonl");
    fuzz_write(path, data, n);
    Jsonl *j = jsonl_open(path);
    FUZZ_CHECK(j != NULL, "jsonl_open failed on a regular file: %s", err_msg());
    if (!j) return;
    json_t *rec;
    int rc, last_line = 0;
    /* Stop after many bad lines in a row only to bound the time per input. */
    for (int tries = 0; tries < 10000 && (rc = jsonl_next(j, &rec)) != 0; tries++) {
        FUZZ_CHECK(jsonl_line(j) > last_line, "line number did not advance (%d)", jsonl_line(j));
        last_line = jsonl_line(j);
        if (rc < 0) {
            FUZZ_CHECK(strstr(err_msg(), path) == err_msg(), "message does not start with the path: %s",
                       err_msg());
            continue;
        }
        FUZZ_CHECK(json_is_object(rec), "record is not an object");
        fuzz_jsonl_fields(j, rec);
    }
    jsonl_close(j);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_jsonl(data, n);
    return 0;
}
#endif
