/* fuzz_tok — libFuzzer harness for the GPT-2 tokenizer loader in
 * common/model/tok.c (tok_gpt2_from_memory, the path checkpoints use; the file
 * loader only reads the files first). The input is vocab.json, a NUL byte,
 * then merges.txt; without a NUL the whole input is vocab.json and
 * merges.txt is empty. A tokenizer that loads must encode text (fixed
 * samples, and the merges text itself as arbitrary bytes) so that decoding
 * gives the text back byte for byte (tok.h), and ids stay in the vocabulary. */
#include "common/err.h"
#include "common/model/tok.h"
#include "tests/fuzz/fuzz_util.h"

static void fuzz_tok_round_trip(const Tok *t, const char *text, size_t len) {
    int n = 0;
    err_clear();
    int *ids = tok_encode(t, text, len, &n);
    if (!ids) { /* allowed only when a byte has no token */
        FUZZ_CHECK(strstr(err_msg(), "has no token") != NULL, "encode failed: %s", err_msg());
        return;
    }
    FUZZ_CHECK(n >= 0 && (size_t)n <= len, "%d ids for %zu bytes", n, len);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < tok_vocab_size(t), "id %d outside 0..%d", ids[i],
                   tok_vocab_size(t) - 1);
    size_t back_len = 0;
    char *back = tok_decode(t, ids, n, &back_len);
    FUZZ_CHECK(back && back_len == len && !memcmp(back, text, len), "decode(encode(x)) != x (%zu bytes)",
               len);
    free(back);
    free(ids);
}

static void fuzz_tok(const uint8_t *data, size_t n) {
    const uint8_t *nul = memchr(data, 0, n);
    size_t vlen = nul ? (size_t)(nul - data) : n;
    const char *merges = nul ? (const char *)nul + 1 : "";
    size_t mlen = nul ? n - vlen - 1 : 0;
    err_clear();
    Tok *t = tok_gpt2_from_memory((const char *)data, vlen, merges, mlen);
    if (!t) {
        FUZZ_CHECK(!strncmp(err_msg(), "vocab.json", 10) || !strncmp(err_msg(), "merges.txt", 10),
                   "message names neither file: %s", err_msg());
        return;
    }
    FUZZ_CHECK(tok_eot(t) >= 0 && tok_eot(t) < tok_vocab_size(t), "EOT id %d", tok_eot(t));
    static const char *const samples[] = {"Hello world, it's 2024!", "  aaa   bbb\n\n\tccc",
                                          "ab ab abab", "\xe2\x82\xac \xff\xfe caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++)
        fuzz_tok_round_trip(t, samples[i], strlen(samples[i]));
    fuzz_tok_round_trip(t, merges, mlen);
    size_t len;
    FUZZ_CHECK(tok_vocab_json(t, &len) && len == vlen, "vocab.json contents not kept");
    tok_is_plain_bytes(t);
    tok_free(t);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_tok(data, n);
    return 0;
}
#endif
