/* tok — tokenizers: a byte-level one (ids 0..255 are bytes, 256 is
 * <|endoftext|>) for the small built-in models, and GPT-2's byte-level BPE
 * loaded from Hugging Face vocab.json + merges.txt. Both encode UTF-8 text to
 * ids and decode ids back to bytes. */
#ifndef TOK_H
#define TOK_H

#include <stddef.h>

typedef enum { TOK_BYTE = 0, TOK_GPT2 = 1 } TokKind;

#define TOK_BYTE_EOT 256
#define TOK_BYTE_VOCAB 257

typedef struct Tok Tok;

/* The byte tokenizer (never fails). */
Tok *tok_byte_new(void);
/* GPT-2 BPE from files; NULL + err_set naming the file/line on bad input
 * (a file that is not a regular file, e.g. a FIFO, is refused before it is
 * opened: "PATH: a tokenizer file must be a regular file, not a FIFO").
 * merges.txt: an optional "#version" first line, then "a b" per line in
 * rank order (blank lines and CRLF tolerated; a repeated pair takes the later
 * rank, as in GPT-2's encoder.py). Every merge's tokens and their
 * concatenation must be in vocab.json, whose ids must number its tokens
 * densely from 0 and which must contain "<|endoftext|>". */
Tok *tok_gpt2_load(const char *vocab_json_path, const char *merges_txt_path);
/* tok_gpt2_load of DIR/vocab.json and DIR/merges.txt (a Hugging Face model
 * directory, `init --tokenizer`, pretrain's tokenizer=DIR): the one place
 * that knows the two file names. Errors as tok_gpt2_load's, naming the file. */
Tok *tok_gpt2_load_dir(const char *dir);
/* Same, from in-memory file contents (used for checkpoints that embed them);
 * error messages call the two files "vocab.json" and "merges.txt". */
Tok *tok_gpt2_from_memory(const char *vocab_json, size_t vocab_len,
                          const char *merges_txt, size_t merges_len);
void tok_free(Tok *t);

TokKind tok_kind(const Tok *t);
int tok_vocab_size(const Tok *t);
int tok_eot(const Tok *t); /* id of <|endoftext|> */

/* Encode text (len bytes; need not be valid UTF-8 for either tokenizer).
 * Returns a malloc'd array and its length in *n, or NULL + err_set.
 * The literal string "<|endoftext|>" in text is NOT treated as special.
 * GPT-2: pre-tokenised with GPT-2's regex (PCRE2, Unicode properties); each
 * maximal run of bytes that are not valid UTF-8 becomes a pre-token of its
 * own, so decode(encode(x)) == x for any bytes. Fails only if a byte has no
 * token in the vocabulary (never for GPT-2's own files). t is not modified
 * (there is no cache). */
int *tok_encode(const Tok *t, const char *text, size_t len, int *n);
/* Decode ids to a malloc'd NUL-terminated byte string; *len gets its length.
 * Unknown ids give NULL + err_set. The EOT token decodes to "<|endoftext|>". */
char *tok_decode(const Tok *t, const int *ids, int n, size_t *len);

/* For checkpoints: the original file contents of a GPT-2 tokenizer (NULL for
 * the byte tokenizer). */
const char *tok_vocab_json(const Tok *t, size_t *len);
const char *tok_merges_txt(const Tok *t, size_t *len);

/* The byte tokenizer written as a GPT-2 vocab.json (GPT-2's bytes_to_unicode
 * character of byte b -> id b, "<|endoftext|>" -> 256); with an empty
 * merges.txt it encodes exactly like the byte tokenizer. malloc'd. */
char *tok_byte_vocab_json(size_t *len);
/* 1 if a GPT-2 tokenizer has no merges and exactly the vocabulary above, so
 * it can be replaced by the byte tokenizer; 0 otherwise (and 0 for the byte
 * tokenizer itself). */
int tok_is_plain_bytes(const Tok *t);

/* Copy of s[0..n) with every byte that is not part of valid UTF-8 replaced
 * by U+FFFD, so model output (a byte model can emit any byte) always makes
 * valid JSON. malloc'd, NUL-terminated. */
char *tok_utf8_clean(const char *s, size_t n);

#endif
