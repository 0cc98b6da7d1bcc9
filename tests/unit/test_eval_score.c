/* Tests for eval_score_record (common/task/evaluate.c, `rlhf score`): the
 * rejections that come before any scoring — a ranking longer than
 * EVAL_MAX_RESPONSES is refused naming file:line, and frees what it read
 * (run under SAN=1, LeakSanitizer reports the array otherwise). */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/io/jsonl.h"
#include "common/task/evaluate.h"
#include "tests/harness.h"

TEST(eval_score_record_refuses_long_ranking) {
    enum { N = EVAL_MAX_RESPONSES + 1 };
    char text[64 + N * 8];
    int len = snprintf(text, sizeof text, "{\"prompt\": \"p\"}\n{\"prompt\": \"q\", \"ranking\": [");
    for (int i = 0; i < N; i++) len += snprintf(text + len, sizeof text - len, "%s\"r%d\"", i ? "," : "", i);
    snprintf(text + len, sizeof text - len, "]}\n");
    const char *path = harness_tmp_text("long_ranking.jsonl", text);
    Jsonl *j = jsonl_open(path);
    if (!CHECK(j != NULL)) return;
    json_t *rec;
    CHECK(jsonl_next(j, &rec) == 1);
    CHECK(jsonl_next(j, &rec) == 1);
    EvalScorer s = {0}; /* never reached: the record is refused first */
    EvalTally tally = {0};
    double scores[EVAL_MAX_RESPONSES];
    int k = 0;
    CHECK(eval_score_record(&s, j, rec, scores, &k, &tally) == -1);
    char where[600];
    snprintf(where, sizeof where, "%s:2: ", path);
    CHECK_ERR(where, "ranking of 65 responses", "at most 64");
    CHECK(tally.records == 0);
    jsonl_close(j);
}
