/* Tests for inspect_checkpoint / inspect_path (common/tools/inspect.c,
 * `rlhf inspect`): the summary of a checkpoint whose parameters are all
 * 0.5 (so the RMS is 0.5 by hand), the parameter count from the shape
 * (GPT-2's formula written out here), files that are no checkpoint, and
 * --json output that stays valid JSON whatever bytes a log holds. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/h5log.h"
#include "common/io/ckpt.h"
#include "common/model/gpt.h"
#include "common/model/tok.h"
#include "common/tools/inspect.h"
#include "tests/harness.h"

/* What f printed, as a string (static). */
static const char *slurp(FILE *f) {
    static char buf[4096];
    size_t n = 0;
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    return buf;
}

static void save_half_model(const char *path, GptHead head) {
    const GptConfig c = {.vocab_size = 257, .n_ctx = 16, .n_layer = 2, .n_head = 2, .n_embd = 8, .head = head};
    Gpt m;
    Tok *tok = tok_byte_new();
    CHECK(gpt_init(&m, &c) == 0);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 0.5f;
    CHECK(ckpt_save_model(path, &m, tok, head == GPT_HEAD_LM ? "policy" : "reward") == 0);
    gpt_free(&m);
    tok_free(tok);
}

TEST(inspect_checkpoint_summary) {
    char path[512];
    snprintf(path, sizeof path, "%s/insp_lm.h5", harness_tmpdir());
    save_half_model(path, GPT_HEAD_LM);
    /* wte V*C + wpe T*C, per layer 2 LayerNorms (4C), attention (C*3C + 3C + C*C + C), MLP (C*4C + 4C + 4C*C + C),
     * final LayerNorm 2C */
    const long V = 257, T = 16, C = 8, L = 2;
    long params = V * C + T * C + L * (4 * C + 3 * C * C + 3 * C + C * C + C + 8 * C * C + 5 * C) + 2 * C;
    char want[256];
    snprintf(want, sizeof want, "parameters  %ld\n", params);
    FILE *f = tmpfile();
    CHECK(inspect_checkpoint(path, 0, f) == 0);
    const char *out = slurp(f);
    CHECKF(strstr(out, "kind        policy\n") && strstr(out, "head        language model (tied unembedding)\n"), "%s", out);
    CHECK(strstr(out, "layers      2\nheads       2\nwidth       8\ncontext     16\nvocab       257\n") != NULL);
    CHECK(strstr(out, "tokenizer   byte\n") != NULL);
    CHECKF(strstr(out, want) != NULL, "want %s in:\n%s", want, out);
    CHECKF(strstr(out, "param rms   0.5\n") != NULL, "%s", out);
    fclose(f);

    /* inspect_path sees a checkpoint and prints the same, as text or (as_json)
     * as one JSON object with the same fields; it printed text for --json */
    f = tmpfile();
    CHECK(inspect_path(path, NULL, 0, f) == 0);
    CHECK(strstr(slurp(f), "param rms   0.5\n") != NULL);
    fclose(f);
    f = tmpfile();
    CHECK(inspect_path(path, NULL, 1, f) == 0);
    out = slurp(f);
    CHECKF(out[0] == '{' && strstr(out, "\"kind\":\"policy\"") && strstr(out, "\"layers\":2") &&
               strstr(out, "\"param_rms\":0.5") && !strstr(out, "param rms"),
           "%s", out);
    fclose(f);
}

TEST(inspect_checkpoint_scalar_head) {
    char path[512];
    snprintf(path, sizeof path, "%s/insp_rm.h5", harness_tmpdir());
    save_half_model(path, GPT_HEAD_SCALAR);
    FILE *f = tmpfile();
    CHECK(inspect_path(path, NULL, 0, f) == 0);
    const char *out = slurp(f);
    CHECKF(strstr(out, "kind        reward\nhead        scalar\n") != NULL, "%s", out);
    fclose(f);
}

TEST(inspect_path_errors) {
    char path[512];
    FILE *f = tmpfile();
    CHECK(inspect_path("/nonexistent/x.h5", NULL, 0, f) == -1);
    CHECK(strstr(err_msg(), "/nonexistent/x.h5") != NULL);
    snprintf(path, sizeof path, "%s/insp_text.h5", harness_tmpdir());
    FILE *t = fopen(path, "w");
    if (t) {
        fputs("not hdf5 at all\n", t);
        fclose(t);
    }
    CHECK(inspect_path(path, NULL, 0, f) == -1);
    CHECK(strstr(err_msg(), "insp_text.h5") != NULL);
    CHECK(inspect_checkpoint(path, 0, f) == -1);
    CHECK(slurp(f)[0] == 0); /* nothing printed for a file that is not a checkpoint */
    fclose(f);
}

/* 1 if text is one valid JSON value (jansson refuses invalid UTF-8). */
static int is_json(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    json_decref(j);
    return j != NULL;
}

TEST(inspect_json_is_valid_utf8) {
    /* a rollout log whose response is two bytes that are not UTF-8 */
    char path[512];
    snprintf(path, sizeof path, "%s/insp_rollouts.h5", harness_tmpdir());
    const H5logColumn rc[] = {
        {.name = "iteration", .type = H5LOG_I64}, {.name = "version", .type = H5LOG_I64},
        {.name = "reward", .type = H5LOG_F64},    {.name = "prompt_len", .type = H5LOG_I32},
        {.name = "prompt", .type = H5LOG_I32, .width = 2}, {.name = "response_len", .type = H5LOG_I32},
        {.name = "response", .type = H5LOG_I32, .width = 2}};
    H5log *l = h5log_create(path, rc, 7, "rollouts");
    int32_t prompt[2] = {'h', 'i'}, resp[2] = {0xff, 0xfe};
    CHECKF(l && h5log_set_i64(l, "iteration", 0) == 0 && h5log_set_i64(l, "version", 0) == 0 &&
               h5log_set_f64(l, "reward", 0.5) == 0 && h5log_set_i64(l, "prompt_len", 2) == 0 &&
               h5log_set_i32s(l, "prompt", prompt, 2) == 0 && h5log_set_i64(l, "response_len", 2) == 0 &&
               h5log_set_i32s(l, "response", resp, 2) == 0 && h5log_row_done(l) == 0,
           "%s", err_msg());
    CHECK(h5log_close(l) == 0);
    char model[512];
    snprintf(model, sizeof model, "%s/insp_byte.h5", harness_tmpdir());
    save_half_model(model, GPT_HEAD_LM);
    FILE *f = tmpfile();
    CHECKF(inspect_path(path, model, 1, f) == 0, "%s", err_msg());
    const char *out = slurp(f);
    CHECKF(is_json(out) && strstr(out, "\"kind\":\"rollouts\""), "%s", out);
    fclose(f);
    f = tmpfile();
    CHECKF(inspect_path(path, model, 0, f) == 0, "%s", err_msg()); /* text: the bytes as they are */
    CHECKF(strstr(slurp(f), "  hi -> \xff\xfe\n") != NULL, "%s", slurp(f));
    fclose(f);

    /* a log whose kind and column names (from the file) are not UTF-8 */
    snprintf(path, sizeof path, "%s/insp_badnames.h5", harness_tmpdir());
    const H5logColumn mc[] = {{.name = "lo\xfess", .type = H5LOG_F64}};
    l = h5log_create(path, mc, 1, "metr\xff" "cs");
    CHECKF(l && h5log_set_f64(l, "lo\xfess", 1.0) == 0 && h5log_row_done(l) == 0, "%s", err_msg());
    CHECK(h5log_close(l) == 0);
    f = tmpfile();
    CHECKF(inspect_path(path, NULL, 1, f) == 0, "%s", err_msg());
    out = slurp(f);
    CHECKF(is_json(out) && strstr(out, "\"kind\":\"metr\xef\xbf\xbd" "cs\"") && strstr(out, "\"lo\xef\xbf\xbdss\""), "%s",
           out);
    fclose(f);
}
