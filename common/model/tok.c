/* tok — tokenizers (see tok.h): the byte tokenizer used by the small built-in
 * models, and GPT-2's byte-level BPE loaded from Hugging Face vocab.json and
 * merges.txt, so real GPT-2 checkpoints can be imported and their text
 * encoded exactly as GPT-2 does.
 *
 * GPT-2 encoding has two stages:
 *  1. Pre-tokenisation with GPT-2's regex (PCRE2, UTF + UCP, compiled once per
 *     tokenizer). Input need not be valid UTF-8: the pattern is compiled with
 *     PCRE2_MATCH_INVALID_UTF, so invalid sequences never match and are
 *     skipped by the matcher; each maximal run of skipped bytes becomes a
 *     pre-token of its own and is BPE-encoded like any other, so
 *     decode(encode(x)) == x holds for arbitrary bytes.
 *  2. BPE inside each pre-token, with the semantics of OpenAI's encoder.py:
 *     repeatedly take the adjacent pair with the lowest merge rank and merge
 *     every non-overlapping occurrence of it, left to right. Symbols are
 *     vocabulary ids, merge ranks live in an open-addressing hash keyed by
 *     (left id, right id), and a heap ordered by (rank, position) makes a
 *     pre-token of n bytes cost O(n log n) instead of O(n^2), so a long run of
 *     letters or spaces cannot stall the encoder.
 *
 * Tokens of vocab.json whose characters lie outside GPT-2's byte alphabet
 * (bytes_to_unicode) decode to their own UTF-8 bytes for those characters;
 * encode can never produce them. */
#include "common/model/tok.h"

#include "common/err.h"
#include "common/fsutil.h"
#include "common/rng.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static const char TOK_EOT_TEXT[] = "<|endoftext|>";

/* GPT-2's pre-tokenisation pattern (encoder.py). */
static const char TOK_GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
    "|\\s+(?!\\S)|\\s+";

/* ---- GPT-2's byte <-> character mapping (bytes_to_unicode) ------------- */

/* The code point GPT-2 uses to spell byte b: printable Latin-1 bytes stand
 * for themselves; the 68 others (0x00-0x20, 0x7F-0xA0, 0xAD) are shifted to
 * 256.. in byte order. Written as arithmetic so no table needs initialising. */
static int byte_to_cp(int b) {
    if (b <= 0x20) return 256 + b;
    if (b >= 0x7F && b <= 0xA0) return 256 + 33 + (b - 0x7F);
    if (b == 0xAD) return 256 + 67;
    return b;
}

/* The byte spelled by code point cp, or -1 if cp is not in the alphabet. */
static int cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_to_cp((int)cp) == (int)cp ? (int)cp : -1;
    if (cp <= 256 + 32) return (int)cp - 256;
    if (cp <= 256 + 66) return (int)cp - 256 - 33 + 0x7F;
    return cp == 256 + 67 ? 0xAD : -1;
}

/* Writes cp as UTF-8 (cp < 0x800 suffices for the alphabet); returns bytes. */
static int utf8_put(char *out, int cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Decodes one UTF-8 character of s[0..n) (already known valid: jansson
 * checks); returns its length and stores the code point. */
static int utf8_get(const unsigned char *s, size_t n, uint32_t *cp) {
    int len = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    if ((size_t)len > n) len = 1;
    uint32_t c = len == 1 ? s[0] : (uint32_t)(s[0] & (0x3F >> (len - 1)));
    for (int i = 1; i < len; i++) c = (c << 6) | (s[i] & 0x3F);
    *cp = c;
    return len;
}

/* How many bytes of s to quote in an error message: at most 40, cut at a
 * character boundary so the message stays valid UTF-8. */
static int preview_len(const char *s, size_t n) {
    size_t k = n < 40 ? n : 40;
    while (k > 0 && k < n && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return (int)k;
}

/* ---- hash tables ------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) { /* FNV-1a */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return rng_splitmix64_mix(h);
}

/* Power of two >= 2n, so the load factor stays <= 1/2. */
static size_t table_capacity(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

/* Token string -> id, used only while loading (the strings point into the
 * parsed JSON). */
typedef struct {
    const char **str;
    size_t *len;
    int *id; /* -1 = empty slot */
    size_t mask;
} StrMap;

static void strmap_init(StrMap *m, size_t n) {
    size_t cap = table_capacity(n);
    m->str = err_calloc(cap, sizeof *m->str);
    m->len = err_calloc(cap, sizeof *m->len);
    m->id = err_malloc(cap * sizeof *m->id);
    for (size_t i = 0; i < cap; i++) m->id[i] = -1;
    m->mask = cap - 1;
}

static void strmap_free(StrMap *m) {
    free(m->str);
    free(m->len);
    free(m->id);
}

/* Caller guarantees the key is not present yet (vocab keys are unique). */
static void strmap_put(StrMap *m, const char *s, size_t n, int id) {
    size_t i = hash_bytes(s, n) & m->mask;
    while (m->id[i] >= 0) i = (i + 1) & m->mask;
    m->str[i] = s;
    m->len[i] = n;
    m->id[i] = id;
}

static int strmap_get(const StrMap *m, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & m->mask; m->id[i] >= 0; i = (i + 1) & m->mask)
        if (m->len[i] == n && memcmp(m->str[i], s, n) == 0) return m->id[i];
    return -1;
}

/* (left id, right id) -> (merge rank, merged id). */
#define PAIR_EMPTY UINT64_MAX

typedef struct {
    uint64_t *key;
    int *rank, *merged;
    size_t mask;
} PairMap;

static uint64_t pair_key(int left, int right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static void pairmap_init(PairMap *m, size_t n) {
    size_t cap = table_capacity(n);
    m->key = err_malloc(cap * sizeof *m->key);
    m->rank = err_malloc(cap * sizeof *m->rank);
    m->merged = err_malloc(cap * sizeof *m->merged);
    for (size_t i = 0; i < cap; i++) m->key[i] = PAIR_EMPTY;
    m->mask = cap - 1;
}

static void pairmap_free(PairMap *m) {
    free(m->key);
    free(m->rank);
    free(m->merged);
}

/* A later merge of the same pair replaces the earlier one, as in
 * encoder.py's dict(zip(merges, range(len(merges)))). */
static void pairmap_put(PairMap *m, int left, int right, int rank, int merged) {
    uint64_t k = pair_key(left, right);
    size_t i = rng_splitmix64_mix(k) & m->mask;
    while (m->key[i] != PAIR_EMPTY && m->key[i] != k) i = (i + 1) & m->mask;
    m->key[i] = k;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

/* Slot of the pair, or -1 if the pair has no merge. */
static long pairmap_find(const PairMap *m, int left, int right) {
    uint64_t k = pair_key(left, right);
    for (size_t i = rng_splitmix64_mix(k) & m->mask; m->key[i] != PAIR_EMPTY; i = (i + 1) & m->mask)
        if (m->key[i] == k) return (long)i;
    return -1;
}

/* ---- the tokenizer object ---------------------------------------------- */

struct Tok {
    TokKind kind;
    int vocab_size;
    int eot;
    /* GPT-2 only: */
    char *vocab_json, *merges_txt; /* original file contents, NUL-terminated */
    size_t vocab_len, merges_len;
    char *tok_bytes;               /* decoded bytes of every token, by id */
    size_t *tok_off;               /* vocab_size + 1 offsets into tok_bytes */
    int byte_id[256];              /* id of each single byte, -1 if none */
    int n_merges;
    PairMap merges;
    pcre2_code *re;
};

Tok *tok_byte_new(void) {
    Tok *t = err_calloc(1, sizeof *t);
    t->kind = TOK_BYTE;
    t->vocab_size = TOK_BYTE_VOCAB;
    t->eot = TOK_BYTE_EOT;
    return t;
}

void tok_free(Tok *t) {
    if (!t) return;
    if (t->kind == TOK_GPT2) {
        free(t->vocab_json);
        free(t->merges_txt);
        free(t->tok_bytes);
        free(t->tok_off);
        pairmap_free(&t->merges);
        pcre2_code_free(t->re);
    }
    free(t);
}

TokKind tok_kind(const Tok *t) { return t->kind; }
int tok_vocab_size(const Tok *t) { return t->vocab_size; }
int tok_eot(const Tok *t) { return t->eot; }

const char *tok_vocab_json(const Tok *t, size_t *len) {
    if (len) *len = t->kind == TOK_GPT2 ? t->vocab_len : 0;
    return t->kind == TOK_GPT2 ? t->vocab_json : NULL;
}

const char *tok_merges_txt(const Tok *t, size_t *len) {
    if (len) *len = t->kind == TOK_GPT2 ? t->merges_len : 0;
    return t->kind == TOK_GPT2 ? t->merges_txt : NULL;
}

/* ---- loading vocab.json ------------------------------------------------ */

/* Parsed vocab.json: token strings by id (pointing into the JSON) and the
 * string -> id map. */
typedef struct {
    json_t *root;
    int n;
    const char **str;
    size_t *len;
    StrMap map;
} Vocab;

static void vocab_free(Vocab *v) {
    free(v->str);
    free(v->len);
    if (v->map.id) strmap_free(&v->map);
    json_decref(v->root);
}

/* Records one "token": id entry, checking the id. */
static int vocab_add(Vocab *v, const char *name, const char *key, size_t klen,
                     json_t *value) {
    int show = preview_len(key, klen);
    if (!json_is_integer(value))
        return err_set("%s: token \"%.*s\": id is not an integer", name, show, key);
    json_int_t id = json_integer_value(value);
    if (id < 0 || id >= v->n)
        return err_set("%s: token \"%.*s\": id %lld out of range 0..%d (ids must "
                       "number the %d tokens densely)",
                       name, show, key, (long long)id, v->n - 1, v->n);
    if (v->str[id]) {
        int show2 = preview_len(v->str[id], v->len[id]);
        return err_set("%s: id %lld used by both \"%.*s\" and \"%.*s\"", name,
                       (long long)id, show2, v->str[id], show, key);
    }
    v->str[id] = key;
    v->len[id] = klen;
    strmap_put(&v->map, key, klen, (int)id);
    return 0;
}

static int vocab_parse(Vocab *v, const char *text, size_t len, const char *name) {
    json_error_t jerr;
    memset(v, 0, sizeof *v);
    v->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v->root) return err_set("%s: line %d: %s", name, jerr.line, jerr.text);
    if (!json_is_object(v->root))
        return err_set("%s: expected a JSON object mapping token -> id", name);
    size_t n = json_object_size(v->root);
    if (n == 0) return err_set("%s: the vocabulary is empty", name);
    if (n > INT32_MAX / 2) return err_set("%s: too many tokens (%zu)", name, n);
    v->n = (int)n;
    v->str = err_calloc(n, sizeof *v->str);
    v->len = err_calloc(n, sizeof *v->len);
    strmap_init(&v->map, n);
    for (void *it = json_object_iter(v->root); it;
         it = json_object_iter_next(v->root, it)) {
        if (vocab_add(v, name, json_object_iter_key(it), json_object_iter_key_len(it),
                      json_object_iter_value(it)) < 0)
            return -1;
    }
    return 0;
}

/* Fills t->tok_bytes/tok_off with each token's bytes (inverse byte map). */
static void tok_build_bytes(Tok *t, const Vocab *v) {
    size_t total = 0;
    for (int id = 0; id < v->n; id++) total += v->len[id]; /* bytes <= chars' UTF-8 */
    t->tok_bytes = err_malloc(total + 1);
    t->tok_off = err_malloc(((size_t)v->n + 1) * sizeof *t->tok_off);
    size_t pos = 0;
    for (int id = 0; id < v->n; id++) {
        const unsigned char *s = (const unsigned char *)v->str[id];
        size_t n = v->len[id];
        t->tok_off[id] = pos;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int clen = utf8_get(s + i, n - i, &cp);
            int b = cp_to_byte(cp);
            if (b >= 0) {
                t->tok_bytes[pos++] = (char)b;
            } else { /* outside the alphabet: keep the character itself */
                memcpy(t->tok_bytes + pos, s + i, (size_t)clen);
                pos += (size_t)clen;
            }
            i += (size_t)clen;
        }
    }
    t->tok_off[v->n] = pos;
}

/* ---- loading merges.txt ------------------------------------------------ */

/* Splits one line on runs of spaces/tabs; returns the number of fields and
 * stores the first two. */
static int split_fields(const char *s, size_t n, const char *f[2], size_t flen[2]) {
    int count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i == n) break;
        size_t start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t') i++;
        if (count < 2) {
            f[count] = s + start;
            flen[count] = i - start;
        }
        count++;
    }
    return count;
}

/* One merge line "a b": both tokens and their concatenation must be in the
 * vocabulary. */
static int merge_add(Tok *t, const Vocab *v, const char *name, int lineno,
                     const char *s, size_t n, char **cat, size_t *cat_cap) {
    const char *f[2];
    size_t flen[2];
    int count = split_fields(s, n, f, flen);
    if (count != 2)
        return err_set("%s: line %d: expected two tokens separated by a space, "
                       "found %d", name, lineno, count);
    int ids[2];
    for (int k = 0; k < 2; k++) {
        ids[k] = strmap_get(&v->map, f[k], flen[k]);
        if (ids[k] < 0)
            return err_set("%s: line %d: token \"%.*s\" is not in the vocabulary",
                           name, lineno, preview_len(f[k], flen[k]), f[k]);
    }
    if (flen[0] + flen[1] > *cat_cap) {
        *cat_cap = 2 * (flen[0] + flen[1]);
        *cat = err_realloc(*cat, *cat_cap);
    }
    memcpy(*cat, f[0], flen[0]);
    memcpy(*cat + flen[0], f[1], flen[1]);
    size_t clen = flen[0] + flen[1];
    int merged = strmap_get(&v->map, *cat, clen);
    if (merged < 0)
        return err_set("%s: line %d: merged token \"%.*s\" is not in the vocabulary",
                       name, lineno, preview_len(*cat, clen), *cat);
    pairmap_put(&t->merges, ids[0], ids[1], t->n_merges++, merged);
    return 0;
}

static int merges_parse(Tok *t, const Vocab *v, const char *text, size_t len,
                        const char *name) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (lines > INT32_MAX / 2) return err_set("%s: too many lines", name);
    pairmap_init(&t->merges, lines);
    char *cat = NULL;
    size_t cat_cap = 0;
    int lineno = 0, rc = 0;
    for (size_t pos = 0; pos < len && rc == 0;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && line[n - 1] == '\r') n--; /* tolerate CRLF files */
        if (n == 0) continue;                  /* blank (e.g. final) line */
        if (lineno == 1 && n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        rc = merge_add(t, v, name, lineno, line, n, &cat, &cat_cap);
    }
    free(cat);
    return rc;
}

/* ---- building a GPT-2 tokenizer ---------------------------------------- */

static int tok_compile_regex(Tok *t) {
    int code;
    PCRE2_SIZE offset;
    t->re = pcre2_compile((PCRE2_SPTR)TOK_GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code,
                          &offset, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return err_set("tok: cannot compile GPT-2 pattern at offset %zu: %s",
                       (size_t)offset, (const char *)msg);
    }
    /* The JIT is only a speed-up; the interpreter gives the same matches. */
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return 0;
}

static char *copy_text(const char *s, size_t n) {
    char *c = err_malloc(n + 1);
    if (n) memcpy(c, s, n);
    c[n] = 0;
    return c;
}

static Tok *tok_gpt2_build(const char *vocab_json, size_t vocab_len, const char *vname,
                           const char *merges_txt, size_t merges_len,
                           const char *mname) {
    Vocab v;
    Tok *t = err_calloc(1, sizeof *t);
    t->kind = TOK_GPT2;
    int rc = vocab_parse(&v, vocab_json, vocab_len, vname);
    if (rc == 0) {
        t->vocab_size = v.n;
        t->eot = strmap_get(&v.map, TOK_EOT_TEXT, strlen(TOK_EOT_TEXT));
        if (t->eot < 0) rc = err_set("%s: no \"%s\" token", vname, TOK_EOT_TEXT);
    }
    if (rc == 0) {
        tok_build_bytes(t, &v);
        for (int b = 0; b < 256; b++) {
            char ch[2];
            t->byte_id[b] = strmap_get(&v.map, ch, (size_t)utf8_put(ch, byte_to_cp(b)));
        }
        rc = merges_parse(t, &v, merges_txt, merges_len, mname);
    }
    if (rc == 0) rc = tok_compile_regex(t);
    vocab_free(&v);
    if (rc < 0) {
        tok_free(t);
        return NULL;
    }
    t->vocab_json = copy_text(vocab_json, vocab_len);
    t->vocab_len = vocab_len;
    t->merges_txt = copy_text(merges_txt, merges_len);
    t->merges_len = merges_len;
    return t;
}

Tok *tok_gpt2_from_memory(const char *vocab_json, size_t vocab_len,
                          const char *merges_txt, size_t merges_len) {
    return tok_gpt2_build(vocab_json, vocab_len, "vocab.json", merges_txt, merges_len,
                          "merges.txt");
}

Tok *tok_gpt2_load(const char *vocab_json_path, const char *merges_txt_path) {
    /* read whole, so a FIFO in a tokenizer directory would block open() */
    if (fs_check_input(vocab_json_path, "a tokenizer file") || fs_check_input(merges_txt_path, "a tokenizer file"))
        return NULL;
    size_t vlen = 0, mlen = 0;
    char *vocab = fs_read_all(vocab_json_path, &vlen);
    char *merges = vocab ? fs_read_all(merges_txt_path, &mlen) : NULL;
    Tok *t = NULL;
    if (vocab && merges)
        t = tok_gpt2_build(vocab, vlen, vocab_json_path, merges, mlen, merges_txt_path);
    free(vocab);
    free(merges);
    return t;
}

Tok *tok_gpt2_load_dir(const char *dir) {
    char *vocab = fs_join(dir, "vocab.json");
    char *merges = fs_join(dir, "merges.txt");
    Tok *t = tok_gpt2_load(vocab, merges);
    free(vocab);
    free(merges);
    return t;
}

/* ---- BPE ---------------------------------------------------------------- */

/* A candidate merge of the symbol at pos with its right neighbour. */
typedef struct {
    int rank, pos, left, right, merged;
} Cand;

/* Scratch for one encode call, grown to the longest pre-token seen. */
typedef struct {
    int *sym, *next, *prev; /* symbols as a linked list; sym = -1: absorbed */
    Cand *heap, *round;
    int n_heap;
    size_t cap;             /* symbols the arrays hold */
} Bpe;

static void bpe_reserve(Bpe *s, size_t n) {
    if (n <= s->cap) return;
    s->cap = n < 64 ? 64 : 2 * n;
    s->sym = err_realloc(s->sym, s->cap * sizeof *s->sym);
    s->next = err_realloc(s->next, s->cap * sizeof *s->next);
    s->prev = err_realloc(s->prev, s->cap * sizeof *s->prev);
    /* n-1 initial pairs + at most 2 new pairs per merge: < 3n entries. */
    s->heap = err_realloc(s->heap, 3 * s->cap * sizeof *s->heap);
    s->round = err_realloc(s->round, 3 * s->cap * sizeof *s->round);
}

static void bpe_free(Bpe *s) {
    free(s->sym);
    free(s->next);
    free(s->prev);
    free(s->heap);
    free(s->round);
}

static int cand_less(const Cand *a, const Cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(Bpe *s, Cand c) {
    int i = s->n_heap++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!cand_less(&c, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = c;
}

static Cand heap_pop(Bpe *s) {
    Cand top = s->heap[0], last = s->heap[--s->n_heap];
    int i = 0, n = s->n_heap;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && cand_less(&s->heap[child + 1], &s->heap[child])) child++;
        if (!cand_less(&s->heap[child], &last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (n > 0) s->heap[i] = last;
    return top;
}

/* Queues the pair starting at symbol pos if it has a merge. */
static void bpe_consider(const Tok *t, Bpe *s, int pos) {
    if (pos < 0 || s->next[pos] < 0) return;
    int left = s->sym[pos], right = s->sym[s->next[pos]];
    long slot = pairmap_find(&t->merges, left, right);
    if (slot < 0) return;
    Cand c = {.rank = t->merges.rank[slot], .pos = pos, .left = left, .right = right, .merged = t->merges.merged[slot]};
    heap_push(s, c);
}

/* A queued candidate is stale once either symbol has changed. */
static int bpe_valid(const Bpe *s, const Cand *c) {
    int right = s->next[c->pos];
    return s->sym[c->pos] == c->left && right >= 0 && s->sym[right] == c->right;
}

static void bpe_merge(const Tok *t, Bpe *s, const Cand *c) {
    int pos = c->pos, gone = s->next[pos];
    s->sym[pos] = c->merged;
    s->sym[gone] = -1;
    s->next[pos] = s->next[gone];
    if (s->next[pos] >= 0) s->prev[s->next[pos]] = pos;
    bpe_consider(t, s, s->prev[pos]);
    bpe_consider(t, s, pos);
}

/* Encodes one pre-token of n bytes, appending ids to out[*n_out]. */
static int bpe_piece(const Tok *t, Bpe *s, const unsigned char *p, size_t n,
                     int *out, size_t *n_out) {
    bpe_reserve(s, n);
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = t->byte_id[p[i]];
        if (s->sym[i] < 0)
            return err_set("tok_encode: byte 0x%02x has no token in the vocabulary",
                           p[i]);
        s->next[i] = i + 1 < n ? (int)i + 1 : -1;
        s->prev[i] = (int)i - 1;
    }
    s->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) bpe_consider(t, s, (int)i);
    while (s->n_heap > 0) {
        /* One round: every queued occurrence of the lowest-rank pair, left to
         * right. New pairs pushed meanwhile never have this rank (a merge
         * result differs from both its parts), but may rank lower, so the
         * round is taken out of the heap before any merge is applied. */
        Cand first = heap_pop(s);
        if (!bpe_valid(s, &first)) continue;
        int n_round = 0;
        s->round[n_round++] = first;
        while (s->n_heap > 0 && s->heap[0].rank == first.rank)
            s->round[n_round++] = heap_pop(s);
        for (int k = 0; k < n_round; k++)
            if (bpe_valid(s, &s->round[k])) bpe_merge(t, s, &s->round[k]);
    }
    for (int i = 0; i >= 0; i = s->next[i]) out[(*n_out)++] = s->sym[i];
    return 0;
}

/* ---- encode / decode ---------------------------------------------------- */

static int *tok_encode_bytes(const char *text, size_t len, int *n) {
    int *ids = err_malloc((len ? len : 1) * sizeof *ids);
    for (size_t i = 0; i < len; i++) ids[i] = (unsigned char)text[i];
    *n = (int)len;
    return ids;
}

static int *tok_encode_gpt2(const Tok *t, const char *text, size_t len, int *n) {
    int *ids = err_malloc((len ? len : 1) * sizeof *ids); /* <= 1 id per byte */
    size_t n_ids = 0, pos = 0;
    const unsigned char *u = (const unsigned char *)text;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) err_die("out of memory allocating PCRE2 match data");
    Bpe s = {0};
    int rc = 0;
    while (pos < len && rc == 0) {
        int m = pcre2_match(t->re, u, len, pos, 0, md, NULL);
        size_t start = len, end = len;
        if (m >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            start = ov[0];
            end = ov[1];
        } else if (m != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = err_set("tok_encode: pre-tokenising at byte %zu: %s", pos,
                         (const char *)msg);
            break;
        }
        if (start > pos) /* bytes the matcher skipped: invalid UTF-8 */
            rc = bpe_piece(t, &s, u + pos, start - pos, ids, &n_ids);
        if (rc == 0 && end > start) rc = bpe_piece(t, &s, u + start, end - start, ids, &n_ids);
        pos = end > pos ? end : pos + 1;
    }
    bpe_free(&s);
    pcre2_match_data_free(md);
    if (rc < 0) {
        free(ids);
        return NULL;
    }
    *n = (int)n_ids;
    return ids;
}

int *tok_encode(const Tok *t, const char *text, size_t len, int *n) {
    if (len > (size_t)INT32_MAX) {
        err_set("tok_encode: text of %zu bytes is too long", len);
        return NULL;
    }
    return t->kind == TOK_BYTE ? tok_encode_bytes(text, len, n)
                               : tok_encode_gpt2(t, text, len, n);
}

/* The bytes of one valid id; byte-tokenizer bytes go through *scratch. */
static const char *tok_piece(const Tok *t, int id, char *scratch, size_t *len) {
    if (t->kind == TOK_GPT2) {
        *len = t->tok_off[id + 1] - t->tok_off[id];
        return t->tok_bytes + t->tok_off[id];
    }
    if (id == TOK_BYTE_EOT) {
        *len = sizeof TOK_EOT_TEXT - 1;
        return TOK_EOT_TEXT;
    }
    *scratch = (char)id;
    *len = 1;
    return scratch;
}

char *tok_decode(const Tok *t, const int *ids, int n, size_t *len) {
    size_t total = 0, piece;
    char byte;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size) {
            err_set("tok_decode: id %d at position %d is outside the vocabulary "
                    "(0..%d)", ids[i], i, t->vocab_size - 1);
            return NULL;
        }
        tok_piece(t, ids[i], &byte, &piece);
        total += piece;
    }
    char *out = err_malloc(total + 1), *w = out;
    for (int i = 0; i < n; i++) {
        const char *p = tok_piece(t, ids[i], &byte, &piece);
        memcpy(w, p, piece);
        w += piece;
    }
    *w = 0;
    if (len) *len = total;
    return out;
}

/* ---- the byte vocabulary as GPT-2 files -------------------------------- */

char *tok_byte_vocab_json(size_t *len) {
    size_t cap = 256 * 16 + 64, n = 0;
    char *out = err_malloc(cap);
    out[n++] = '{';
    for (int b = 0; b < 256; b++) {
        char ch[2];
        int clen = utf8_put(ch, byte_to_cp(b));
        out[n++] = '"';
        if (clen == 1 && (ch[0] == '"' || ch[0] == '\\')) out[n++] = '\\';
        memcpy(out + n, ch, (size_t)clen);
        n += (size_t)clen;
        n += (size_t)snprintf(out + n, cap - n, "\": %d, ", b);
    }
    n += (size_t)snprintf(out + n, cap - n, "\"%s\": %d}", TOK_EOT_TEXT, TOK_BYTE_EOT);
    if (len) *len = n;
    return out;
}

int tok_is_plain_bytes(const Tok *t) {
    if (t->kind != TOK_GPT2 || t->n_merges != 0 || t->vocab_size != TOK_BYTE_VOCAB ||
        t->eot != TOK_BYTE_EOT)
        return 0;
    /* 257 distinct ids, 256 of them the bytes in order: nothing else fits. */
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] != b) return 0;
    return 1;
}

/* ---- UTF-8 clean-up for JSON output ------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static int utf8_seq_len(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return 1;
    /* lead bytes F5..FF start nothing (they once read as 3-byte leads, and
     * jansson then refused the "clean" text) */
    int len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 && s[0] < 0xF0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!len || (size_t)len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (len == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (len == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return len;
}

/* Copy of s with every invalid UTF-8 byte replaced by U+FFFD, so that model
 * output (a byte model can emit any byte) always makes valid JSON. */
char *tok_utf8_clean(const char *s, size_t n) {
    char *out = err_malloc(n * 3 + 1), *o = out;
    for (size_t i = 0; i < n;) {
        int len = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (len) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *o = 0;
    return out;
}

