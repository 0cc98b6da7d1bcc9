/* tok — stub, being written; see tok.h. */
#include "common/tok.h"
#include <stddef.h>
Tok *tok_byte_new(void) { return NULL; }
Tok *tok_gpt2_load(const char *a, const char *b) { (void)a; (void)b; return NULL; }
Tok *tok_gpt2_from_memory(const char *a, size_t b, const char *c, size_t d) { (void)a; (void)b; (void)c; (void)d; return NULL; }
void tok_free(Tok *t) { (void)t; }
TokKind tok_kind(const Tok *t) { (void)t; return TOK_BYTE; }
int tok_vocab_size(const Tok *t) { (void)t; return 0; }
int tok_eot(const Tok *t) { (void)t; return 0; }
int *tok_encode(const Tok *t, const char *s, size_t l, int *n) { (void)t; (void)s; (void)l; (void)n; return NULL; }
char *tok_decode(const Tok *t, const int *i, int n, size_t *l) { (void)t; (void)i; (void)n; (void)l; return NULL; }
const char *tok_vocab_json(const Tok *t, size_t *l) { (void)t; (void)l; return NULL; }
const char *tok_merges_txt(const Tok *t, size_t *l) { (void)t; (void)l; return NULL; }
char *tok_byte_vocab_json(size_t *l) { (void)l; return NULL; }
int tok_is_plain_bytes(const Tok *t) { (void)t; return 0; }
