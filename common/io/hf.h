/* hf — import and export of Hugging Face GPT-2 model directories
 * (config.json, model.safetensors, vocab.json, merges.txt), so users can
 * start from real GPT-2 weights and take trained models back to the
 * transformers ecosystem.
 *
 * Our parameter table already uses Hugging Face names and shapes (Conv1D
 * weights are (in, out), see gpt.h), so tensors move across unchanged.
 * Import accepts both the hub's key names ("h.0.attn.c_attn.weight") and
 * save_pretrained's ("transformer.h.0..."), F32/F16/BF16 data, ignores the
 * attention-mask buffers and a tied "lm_head.weight", and picks the scalar
 * head when the file has "score.weight" (GPT2ForSequenceClassification,
 * whose score layer has no bias: a missing "score.bias" reads as 0).
 * Export writes F32 tensors without prefix, including score.bias
 * (transformers ignores that one with a warning). */
#ifndef HF_H
#define HF_H

#include "common/model/gpt.h"
#include "common/model/tok.h"

/* The files of a Hugging Face directory that import reads and export
 * writes, in that order (config.json first). */
#define HF_N_FILES 4
extern const char *const hf_files[HF_N_FILES];

/* Loads DIR into *m (gpt_init'ed here; free with gpt_free) and, if tok is
 * not NULL, the tokenizer into *tok (the byte tokenizer when vocab.json is
 * exactly the byte vocabulary with no merges). tok == NULL loads weights
 * only. Returns 0, or -1 + err_set naming the file and field/tensor (a
 * NaN/Inf weight too: gpt_check_finite); on failure nothing is left
 * allocated. */
int hf_import(const char *dir, Gpt *m, Tok **tok);

/* Writes DIR (created if missing, parents too): config.json,
 * model.safetensors and, if tok is not NULL, vocab.json + merges.txt.
 * Atomic as a whole: every file is written under a temporary name first,
 * then all are renamed (config.json last), so a failure midway leaves an
 * existing export complete and unchanged. One export into DIR at a time
 * (an flock on DIR itself): a second one at once is refused with "DIR: in
 * use by another export ...", so two never mix their files. */
int hf_export(const char *dir, const Gpt *m, const Tok *tok);

#endif
