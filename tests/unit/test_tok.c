/* Tests for common/model/tok.c: the byte tokenizer, GPT-2 BPE against reference
 * ids from gpt-3-encoder (tests/fixtures/gpt2-bpe, made by
 * tests/fixtures/make_bpe_fixture.js), hand-derived BPE cases, malformed
 * vocab.json / merges.txt, invalid UTF-8 and encoding speed. */
#include "common/err.h"
#include "common/fsutil.h"
#include "common/model/tok.h"
#include "tests/harness.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- helpers ------------------------------------------------------------ */

static Tok *load_gpt2(void) {
    char vocab[512], merges[512];
    snprintf(vocab, sizeof vocab, "%s/gpt2-bpe/vocab.json", harness_fixtures());
    snprintf(merges, sizeof merges, "%s/gpt2-bpe/merges.txt", harness_fixtures());
    Tok *t = tok_gpt2_load(vocab, merges);
    CHECKF(t != NULL, "loading GPT-2 fixtures: %s", err_msg());
    return t;
}

static Tok *from_strings(const char *vocab, const char *merges) {
    Tok *t = tok_gpt2_from_memory(vocab, strlen(vocab), merges, strlen(merges));
    CHECKF(t != NULL, "building tokenizer: %s", err_msg());
    return t;
}

/* Encodes text and compares with the expected ids; prints both on mismatch. */
static void check_ids(const Tok *t, const char *text, size_t len, const int *want,
                      int n_want, const char *label) {
    int n = -1;
    int *ids = tok_encode(t, text, len, &n);
    if (!CHECKF(ids != NULL, "%s: encode failed: %s", label, err_msg())) return;
    int same = n == n_want && (n == 0 || memcmp(ids, want, (size_t)n * sizeof *ids) == 0);
    if (!same) {
        printf("    %s: got %d ids:", label, n);
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("\n    %s: want %d ids:", label, n_want);
        for (int i = 0; i < n_want; i++) printf(" %d", want[i]);
        printf("\n");
    }
    CHECKF(same, "%s: ids differ from the reference", label);
    free(ids);
}

/* decode(encode(text)) must give back exactly the bytes. */
static void check_round_trip(const Tok *t, const char *text, size_t len,
                             const char *label) {
    int n = -1;
    int *ids = tok_encode(t, text, len, &n);
    if (!CHECKF(ids != NULL, "%s: encode failed: %s", label, err_msg())) return;
    size_t out_len = 0;
    char *out = tok_decode(t, ids, n, &out_len);
    CHECKF(out != NULL, "%s: decode failed: %s", label, err_msg());
    CHECKF(out && out_len == len && memcmp(out, text, len) == 0,
           "%s: round trip changed the text (%zu -> %zu bytes)", label, len, out_len);
    free(out);
    free(ids);
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}


/* ---- byte tokenizer ----------------------------------------------------- */

TEST(tok_byte_round_trip_arbitrary_bytes) {
    Tok *t = tok_byte_new();
    CHECK(tok_kind(t) == TOK_BYTE);
    CHECK(tok_vocab_size(t) == 257);
    CHECK(tok_eot(t) == 256);
    char all[512];
    for (int i = 0; i < 512; i++) all[i] = (char)(i % 256); /* zeros, 0x80.., 0xff */
    int n = 0;
    int *ids = tok_encode(t, all, sizeof all, &n);
    CHECK(ids && n == 512);
    for (int i = 0; ids && i < n; i++) CHECKF(ids[i] == i % 256, "id %d = %d", i, ids[i]);
    free(ids);
    check_round_trip(t, all, sizeof all, "all bytes");
    const char *bad = "\xff\xfe\xc3\x28\xed\xa0\x80\xc0\xaf\x00tail";
    check_round_trip(t, bad, 14, "invalid UTF-8");
    check_round_trip(t, "", 0, "empty");
    tok_free(t);
}

TEST(tok_byte_eot_and_literal_eot_text) {
    Tok *t = tok_byte_new();
    int eot = TOK_BYTE_EOT, n = 0;
    size_t len = 0;
    char *s = tok_decode(t, &eot, 1, &len);
    CHECK(s && len == 13 && strcmp(s, "<|endoftext|>") == 0);
    free(s);
    int *ids = tok_encode(t, "<|endoftext|>", 13, &n); /* not special: 13 bytes */
    CHECK(ids && n == 13 && ids[0] == '<' && ids[12] == '>');
    free(ids);
    tok_free(t);
}

TEST(tok_byte_decode_rejects_out_of_range) {
    Tok *t = tok_byte_new();
    int ids[] = {104, 105, 257};
    size_t len = 99;
    CHECK(tok_decode(t, ids, 3, &len) == NULL);
    CHECKF(strstr(err_msg(), "257") && strstr(err_msg(), "position 2"), "msg: %s", err_msg());
    int neg[] = {-1};
    CHECK(tok_decode(t, neg, 1, &len) == NULL);
    CHECKF(strstr(err_msg(), "-1") != NULL, "msg: %s", err_msg());
    tok_free(t);
}

/* ---- GPT-2 against the reference --------------------------------------- */

TEST(tok_gpt2_matches_reference_cases) {
    Tok *t = load_gpt2();
    if (!t) return;
    CHECK(tok_kind(t) == TOK_GPT2);
    CHECK(tok_vocab_size(t) == 50257);
    CHECK(tok_eot(t) == 50256);
    char path[512];
    snprintf(path, sizeof path, "%s/gpt2-bpe/cases.json", harness_fixtures());
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!CHECKF(root != NULL, "%s: line %d: %s", path, jerr.line, jerr.text)) {
        tok_free(t);
        return;
    }
    json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) >= 40);
    int n_diff = 0;
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        const char *name = json_string_value(json_object_get(cs, "name"));
        json_t *text = json_object_get(cs, "text");
        json_t *ref = json_object_get(cs, "ids");
        json_t *expected = json_object_get(cs, "expected_ids");
        json_t *want_json = expected ? expected : ref;
        int n_want = (int)json_array_size(want_json);
        int *want = malloc(sizeof(int) * (size_t)(n_want + 1));
        for (int i = 0; i < n_want; i++)
            want[i] = (int)json_integer_value(json_array_get(want_json, (size_t)i));
        const char *s = json_string_value(text);
        size_t len = json_string_length(text);
        check_ids(t, s, len, want, n_want, name);
        check_round_trip(t, s, len, name);
        if (expected) { /* a documented disagreement must be a real one */
            n_diff++;
            CHECKF(!json_equal(expected, ref), "%s: expected_ids equal ids", name);
            CHECKF(json_object_get(cs, "note") != NULL, "%s: difference without note", name);
        }
        free(want);
    }
    CHECK(n_diff <= 2); /* only the known JS-vs-PCRE2 whitespace difference */
    json_decref(root);
    tok_free(t);
}

/* GPT-2's first 256 ids are the bytes in bytes_to_unicode order: the
 * printable ranges '!'..'~', 0xA1..0xAC, 0xAE..0xFF, then the other bytes
 * in increasing order (so ' ' = 220 and '\n' = 198, as every GPT-2 user
 * knows). Each byte alone must encode to that single id. */
TEST(tok_gpt2_single_bytes_follow_bytes_to_unicode) {
    Tok *t = load_gpt2();
    if (!t) return;
    int want[256], next = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) want[b] = next++;
    for (int b = 0; b < 256; b++)
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE))
            want[b] = next++;
    CHECK(want[' '] == 220 && want['\n'] == 198);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        char label[32];
        snprintf(label, sizeof label, "byte 0x%02x", b);
        check_ids(t, &c, 1, &want[b], 1, label);
    }
    tok_free(t);
}

TEST(tok_gpt2_invalid_utf8_round_trips) {
    Tok *t = load_gpt2();
    if (!t) return;
#define BYTES(lit) {lit, sizeof lit - 1}
    static const struct { const char *s; size_t n; } texts[] = {
        BYTES("\xff"),
        BYTES("caf\xc3"),                  /* truncated sequence at the end */
        BYTES("\xc3\x28 ok"),              /* bad continuation byte */
        BYTES("a\xed\xa0\x80z"),           /* encoded surrogate */
        BYTES("\xf4\x90\x80\x80!"),        /* beyond U+10FFFF */
        BYTES("\xc0\xaf overlong"),
        BYTES("\x80\x80\x80 lone continuation"),
        BYTES("  \xfe\xfe  x \xff\n"),    /* next to whitespace runs */
        BYTES("nul\0in\0the\0middle\xff\0"),
    };
#undef BYTES
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "invalid text %zu", i);
        check_round_trip(t, texts[i].s, texts[i].n, label);
    }
    /* Documented behaviour: a run of invalid bytes is its own pre-token, so
     * "ab\xff\xfecd" encodes as "ab" + BPE("\xff\xfe") + "cd". 0xFF is 'ÿ'
     * (id 187) and 0xFE is 'þ' (id 186) in bytes_to_unicode order, and
     * GPT-2 has no merge "ÿ þ". */
    int n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    int *whole = tok_encode(t, "ab\xff\xfe" "cd", 6, &n1);
    int *ab = tok_encode(t, "ab", 2, &n2);
    int *mid = tok_encode(t, "\xff\xfe", 2, &n3);
    int *cd = tok_encode(t, "cd", 2, &n4);
    CHECK(whole && ab && mid && cd);
    if (whole && ab && mid && cd) {
        CHECK(n3 == 2 && mid[0] == 187 && mid[1] == 186);
        int want[16], k = 0;
        for (int i = 0; i < n2; i++) want[k++] = ab[i];
        for (int i = 0; i < n3; i++) want[k++] = mid[i];
        for (int i = 0; i < n4; i++) want[k++] = cd[i];
        CHECK(n1 == k && memcmp(whole, want, (size_t)k * sizeof(int)) == 0);
    }
    free(whole);
    free(ab);
    free(mid);
    free(cd);
    /* Random byte strings, biased towards bytes >= 0x80. */
    uint64_t seed = 7;
    char buf[96];
    for (int trial = 0; trial < 300; trial++) {
        size_t n = lcg(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = lcg(&seed);
            buf[i] = (char)(r % 3 == 0 ? ' ' + r % 95 : 0x80 + (r >> 8) % 128);
            if (r % 17 == 0) buf[i] = 0;
        }
        check_round_trip(t, buf, n, "random bytes");
    }
    tok_free(t);
}

TEST(tok_gpt2_decode_rejects_out_of_range) {
    Tok *t = load_gpt2();
    if (!t) return;
    int ids[] = {15496, 50257};
    size_t len = 0;
    CHECK(tok_decode(t, ids, 2, &len) == NULL);
    CHECKF(strstr(err_msg(), "50257") && strstr(err_msg(), "position 1"), "msg: %s", err_msg());
    int neg[] = {-5};
    CHECK(tok_decode(t, neg, 1, &len) == NULL);
    int eot = 50256;
    char *s = tok_decode(t, &eot, 1, &len);
    CHECK(s && strcmp(s, "<|endoftext|>") == 0 && len == 13);
    free(s);
    int n = 0; /* the literal text is not the special token */
    int *lit = tok_encode(t, "<|endoftext|>", 13, &n);
    CHECK(lit && n > 1);
    for (int i = 0; lit && i < n; i++) CHECK(lit[i] != 50256);
    free(lit);
    tok_free(t);
}

TEST(tok_gpt2_keeps_original_files) {
    Tok *t = load_gpt2();
    if (!t) return;
    size_t vlen = 0, mlen = 0;
    const char *v = tok_vocab_json(t, &vlen);
    const char *m = tok_merges_txt(t, &mlen);
    CHECK(v && vlen == 1042301 && v[0] == '{');
    CHECK(m && mlen == 456318 && strncmp(m, "#version: 0.2\n", 14) == 0);
    Tok *copy = v && m ? tok_gpt2_from_memory(v, vlen, m, mlen) : NULL;
    CHECKF(copy != NULL, "from_memory: %s", err_msg());
    if (copy) {
        const char *text = "Embedded tokenizers must encode identically, don't they?";
        int n1 = 0, n2 = 0;
        int *a = tok_encode(t, text, strlen(text), &n1);
        int *b = tok_encode(copy, text, strlen(text), &n2);
        CHECK(a && b && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof(int)) == 0);
        free(a);
        free(b);
        tok_free(copy);
    }
    Tok *bt = tok_byte_new();
    CHECK(tok_vocab_json(bt, &vlen) == NULL && tok_merges_txt(bt, &mlen) == NULL);
    tok_free(bt);
    tok_free(t);
}

/* tok_gpt2_load_dir: the fixture directory loads the same tokenizer as its
 * two files; a directory without merges.txt is refused naming that file. */
TEST(tok_gpt2_load_dir_reads_vocab_and_merges) {
    Tok *t = load_gpt2();
    Tok *d = tok_gpt2_load_dir(harness_join(harness_fixtures(), "gpt2-bpe"));
    CHECKF(d != NULL, "tok_gpt2_load_dir: %s", err_msg());
    if (t && d) {
        const char *text = "Loaded from a directory, it encodes the same.";
        int n1 = 0, n2 = 0;
        int *a = tok_encode(t, text, strlen(text), &n1);
        int *b = tok_encode(d, text, strlen(text), &n2);
        CHECK(tok_vocab_size(d) == tok_vocab_size(t));
        CHECK(a && b && n1 == n2 && memcmp(a, b, (size_t)n1 * sizeof(int)) == 0);
        free(a);
        free(b);
    }
    tok_free(t);
    tok_free(d);
    const char *dir = harness_tmp_path("bpe_no_merges");
    CHECK(mkdir(dir, 0777) == 0);
    harness_tmp_text("bpe_no_merges/vocab.json", "{\"a\": 0, \"<|endoftext|>\": 1}");
    err_clear();
    CHECK(tok_gpt2_load_dir(dir) == NULL);
    CHECK_ERR(harness_join(dir, "merges.txt"), "cannot open");
}

/* ---- hand-made vocabularies --------------------------------------------- */

/* "Ġ" is GPT-2's spelling of the space byte. Expected ids by hand:
 *   "abc":  a b c -> (a,b) rank 0 -> ab c -> (ab,c) rank 2 -> abc   = [5]
 *   "bca":  b c a -> (b,c) rank 1 -> bc a, no merge for (bc,a)      = [7,0]
 *   "aaa":  (a,a) twice, overlapping: left to right -> aa a         = [9,0]
 *   "aaaa": aa aa                                                   = [9,9]
 *   " abc": Ġ a b c -> (a,b) rank 0 beats (Ġ,a) rank 3 -> Ġ ab c ->
 *           (ab,c) rank 2 -> Ġ abc; (Ġ,abc) has no merge            = [3,5]
 *   "ab ab": pieces "ab" | " ab" -> [4] + Ġ ab                      = [4,3,4]
 *   "  a":  pieces " " | " a" (\s+(?!\S) leaves the last space)     = [3,6]
 *   "cab\n": pieces "cab" | "\n"; "\n" is not in the vocabulary -> error */
static const char HAND_VOCAB[] =
    "{\"a\": 0, \"b\": 1, \"c\": 2, \"\\u0120\": 3, \"ab\": 4, \"abc\": 5,"
    " \"\\u0120a\": 6, \"bc\": 7, \"<|endoftext|>\": 8, \"aa\": 9}";
static const char HAND_MERGES[] = "#version: 0.2\na b\nb c\nab c\n\xc4\xa0 a\na a\n";

TEST(tok_gpt2_hand_made_vocab) {
    Tok *t = from_strings(HAND_VOCAB, HAND_MERGES);
    if (!t) return;
    CHECK(tok_vocab_size(t) == 10 && tok_eot(t) == 8);
    CHECK(!tok_is_plain_bytes(t));
    static const struct { const char *text; int n; int ids[4]; } cases[] = {
        {"abc", 1, {5}},      {"bca", 2, {7, 0}},   {"aaa", 2, {9, 0}},
        {"aaaa", 2, {9, 9}},  {" abc", 2, {3, 5}},  {"ab ab", 3, {4, 3, 4}},
        {"  a", 2, {3, 6}},   {"", 0, {0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_ids(t, cases[i].text, strlen(cases[i].text), cases[i].ids, cases[i].n,
                  cases[i].text);
    int n = 0;
    CHECK(tok_encode(t, "cab\n", 4, &n) == NULL);
    CHECKF(strstr(err_msg(), "0x0a") != NULL, "msg: %s", err_msg());
    int ids[] = {6, 7, 8};
    size_t len = 0;
    char *s = tok_decode(t, ids, 3, &len);
    CHECK(s && strcmp(s, " abc<|endoftext|>") == 0 && len == 17); /* Ġa bc eot */
    free(s);
    tok_free(t);
    /* Without the "#version" line and with CRLF line ends: same merges. */
    t = from_strings(HAND_VOCAB, "a b\r\nb c\r\nab c\r\n\xc4\xa0 a\r\na a\r\n");
    if (t) check_ids(t, " abc", 4, (int[]){3, 5}, 2, "no header, CRLF");
    tok_free(t);
}

/* OpenAI's bpe() merges every occurrence of the best pair before looking at
 * pairs that merge created. With ranks "aa a" = 0 and "a a" = 1:
 *   "aaaa":  only (a,a) exists -> aa aa; (aa,aa) has no merge      = [1,1]
 * (merging one pair at a time would give aa a a -> aaa a = [2,0]);
 *   "aaa":   aa a -> (aa,a) rank 0 -> aaa                          = [2]
 *   "aaaaa": aa aa a -> (aa,a) -> aa aaa                           = [1,2] */
TEST(tok_gpt2_merges_whole_round_before_new_pairs) {
    Tok *t = from_strings("{\"a\": 0, \"aa\": 1, \"aaa\": 2, \"<|endoftext|>\": 3}",
                          "aa a\na a\n");
    if (!t) return;
    check_ids(t, "aaaa", 4, (int[]){1, 1}, 2, "aaaa");
    check_ids(t, "aaa", 3, (int[]){2}, 1, "aaa");
    check_ids(t, "aaaaa", 5, (int[]){1, 2}, 2, "aaaaa");
    tok_free(t);
}

/* A repeated merge line takes the later rank (encoder.py builds a dict):
 * with "a b" moved after "b c", "abc" -> a bc = [0,7]. */
TEST(tok_gpt2_repeated_merge_takes_later_rank) {
    Tok *t = from_strings(HAND_VOCAB, "a b\nb c\na b\n");
    if (!t) return;
    check_ids(t, "abc", 3, (int[]){0, 7}, 2, "abc");
    tok_free(t);
}

/* ---- malformed files ----------------------------------------------------- */

TEST(tok_gpt2_rejects_malformed_files) {
    static const char GOOD_VOCAB[] =
        "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<|endoftext|>\": 3}";
    static const struct {
        const char *vocab, *merges, *in_file, *expect;
    } cases[] = {
        {"{\"a\": 0,\n\"b\": ", "", "vocab.json", "line 2"},
        {"", "", "vocab.json", "line"},
        {"[1, 2]", "", "vocab.json", "JSON object"},
        {"{}", "", "vocab.json", "empty"},
        {"{\"a\": \"0\", \"<|endoftext|>\": 1}", "", "vocab.json", "\"a\": id is not an integer"},
        {"{\"a\": 0.5, \"<|endoftext|>\": 1}", "", "vocab.json", "not an integer"},
        {"{\"a\": 0, \"b\": 0, \"<|endoftext|>\": 1}", "", "vocab.json", "used by both"},
        {"{\"a\": 0, \"<|endoftext|>\": 2}", "", "vocab.json", "out of range"},
        {"{\"a\": -1, \"<|endoftext|>\": 0}", "", "vocab.json", "out of range"},
        {"{\"a\": 0, \"a\": 1}", "", "vocab.json", "duplicate"},
        {"{\"a\": 0, \"b\": 1}", "", "vocab.json", "<|endoftext|>"},
        {GOOD_VOCAB, "#version: 0.2\na b c\n", "merges.txt", "line 2: expected two tokens"},
        {GOOD_VOCAB, "a b\nab\n", "merges.txt", "line 2: expected two tokens"},
        {GOOD_VOCAB, "a b\n\na q\n", "merges.txt", "line 3: token \"q\""},
        {GOOD_VOCAB, "b a\n", "merges.txt", "line 1: merged token \"ba\""},
        {GOOD_VOCAB, "#version: 0.2\n#version: 0.2\n", "merges.txt", "line 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *vpath = harness_tmp_text("bad_vocab.json", cases[i].vocab);
        const char *mpath = harness_tmp_text("bad_merges.txt", cases[i].merges);
        err_clear();
        Tok *t = tok_gpt2_load(vpath, mpath);
        CHECKF(t == NULL, "case %zu accepted", i);
        tok_free(t);
        const char *want_file = strcmp(cases[i].in_file, "vocab.json") == 0 ? vpath : mpath;
        CHECKF(strncmp(err_msg(), want_file, strlen(want_file)) == 0 &&
                   strstr(err_msg(), cases[i].expect) != NULL,
               "case %zu: message \"%s\" should start with %s and mention \"%s\"", i,
               err_msg(), want_file, cases[i].expect);
        CHECKF(strchr(err_msg(), '\n') == NULL, "case %zu: message is not one line", i);
        /* In memory the files are called vocab.json and merges.txt. */
        t = tok_gpt2_from_memory(cases[i].vocab, strlen(cases[i].vocab), cases[i].merges,
                                 strlen(cases[i].merges));
        CHECK(t == NULL);
        tok_free(t);
        CHECKF(strncmp(err_msg(), cases[i].in_file, strlen(cases[i].in_file)) == 0,
               "case %zu: in-memory message \"%s\"", i, err_msg());
    }
    const char *missing = "/nonexistent/dir/vocab.json";
    CHECK(tok_gpt2_load(missing, "x") == NULL);
    CHECKF(strstr(err_msg(), missing) != NULL, "msg: %s", err_msg());
    /* The good vocabulary with good merges does load. */
    Tok *ok = from_strings(GOOD_VOCAB, "#version: 0.2\na b\n");
    tok_free(ok);
}

/* ---- the byte vocabulary as GPT-2 files --------------------------------- */

TEST(tok_byte_vocab_json_is_plain_bytes) {
    size_t len = 0;
    char *json = tok_byte_vocab_json(&len);
    CHECK(json && len == strlen(json));
    /* Independent parse: 257 entries, spot checks of the byte mapping. */
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    CHECKF(root && json_object_size(root) == 257, "parse: %s", jerr.text);
    CHECK(json_integer_value(json_object_get(root, "\xc4\xa0")) == ' ');  /* Ġ */
    CHECK(json_integer_value(json_object_get(root, "\xc4\x8a")) == '\n'); /* Ċ */
    CHECK(json_integer_value(json_object_get(root, "\"")) == '"');
    CHECK(json_integer_value(json_object_get(root, "\\")) == '\\');
    CHECK(json_integer_value(json_object_get(root, "\xc3\xbf")) == 0xFF); /* ÿ */
    CHECK(json_integer_value(json_object_get(root, "\xc5\x83")) == 0xAD); /* Ń */
    CHECK(json_integer_value(json_object_get(root, "<|endoftext|>")) == 256);
    json_decref(root);

    Tok *g = tok_gpt2_from_memory(json, len, "", 0);
    CHECKF(g != NULL, "from_memory: %s", err_msg());
    Tok *b = tok_byte_new();
    if (g) {
        CHECK(tok_is_plain_bytes(g));
        CHECK(tok_vocab_size(g) == 257 && tok_eot(g) == 256);
        uint64_t seed = 3;
        char buf[200];
        for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)lcg(&seed);
        memcpy(buf, "It's <|endoftext|>  ", 20);
        int n1 = 0, n2 = 0;
        int *a = tok_encode(g, buf, sizeof buf, &n1);
        int *c = tok_encode(b, buf, sizeof buf, &n2);
        CHECK(a && c && n1 == n2 && memcmp(a, c, sizeof(int) * (size_t)n1) == 0);
        free(a);
        free(c);
        tok_free(g);
    }
    CHECK(!tok_is_plain_bytes(b));
    tok_free(b);
    /* Same ids but one merge: no longer plain. Swapped ids: not plain. */
    char *swapped = malloc(len + 1);
    memcpy(swapped, json, len + 1);
    char *a_pos = strstr(swapped, "\"a\": 97"), *b_pos = strstr(swapped, "\"b\": 98");
    CHECK(a_pos && b_pos);
    if (a_pos && b_pos) {
        a_pos[1] = 'b';
        b_pos[1] = 'a';
        g = tok_gpt2_from_memory(swapped, len, "", 0);
        CHECK(g && !tok_is_plain_bytes(g));
        tok_free(g);
    }
    free(swapped);
    free(json);
}

/* ---- speed --------------------------------------------------------------- */

static void time_encoding(const Tok *t, const char *text, size_t len, const char *label) {
    double t0 = fs_now();
    int n = 0;
    int *ids = tok_encode(t, text, len, &n);
    double dt = fs_now() - t0;
    CHECKF(ids != NULL, "%s: %s", label, err_msg());
    printf("    tok_encode %-28s %.2f MB in %.3f s = %.1f MB/s, %d tokens\n", label,
           len / 1e6, dt, len / 1e6 / dt, n);
    size_t out_len = 0;
    char *out = ids ? tok_decode(t, ids, n, &out_len) : NULL;
    CHECKF(out && out_len == len && memcmp(out, text, len) == 0, "%s: round trip", label);
    free(out);
    free(ids);
}

TEST(tok_gpt2_speed_1mb) {
    Tok *t = load_gpt2();
    if (!t) return;
    const size_t size = 1 << 20;
    char *text = malloc(size);
    /* Mixed text: English words, numbers, punctuation, accents and CJK. */
    static const char *words[] = {
        "the ", "reward ", "model ", "learns ", "which ", "answer ", "people ",
        "prefer", ", ", ". ", "don't ", "It's ", "2024 ", "3.14 ", "(KL) ", "\n",
        "caf\xc3\xa9 ", "\xe6\x97\xa5\xe6\x9c\xac ", "PPO-ptx ", "   ", "policy\t",
    };
    uint64_t seed = 11;
    size_t pos = 0;
    while (pos < size) {
        const char *w = words[lcg(&seed) % (sizeof words / sizeof words[0])];
        size_t k = strlen(w);
        if (pos + k > size) k = size - pos;
        memcpy(text + pos, w, k);
        pos += k;
    }
    time_encoding(t, text, size, "mixed text");
    /* Single pre-tokens of 1 MB must not go quadratic. */
    memset(text, 'a', size);
    time_encoding(t, text, size, "one 1 MB word of 'a'");
    memset(text, ' ', size);
    time_encoding(t, text, size, "1 MB of spaces");
    for (size_t i = 0; i < size; i++) text[i] = (char)('0' + i * 7 % 10);
    time_encoding(t, text, size, "one 1 MB number");
    memset(text, '\xff', size);
    time_encoding(t, text, size, "1 MB of invalid UTF-8");
    free(text);
    tok_free(t);
}
