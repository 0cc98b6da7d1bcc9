/* inspect — `rlhf inspect`: a checkpoint (kind, model shape, tokenizer,
 * parameter count and RMS) or an HDF5 log: a rollout log (rows, iterations,
 * reward / r_theta / KL / lambda / gold / length per iteration, the policy-lag
 * histogram, a few decoded samples) or a metrics table (its last rows), as
 * text or JSON. Works while a writer is still appending (SWMR). */
#ifndef INSPECT_H
#define INSPECT_H

#include <stdio.h>

#include "common/model/tok.h"

/* 0, or -1 + err_set (e.g. the file is not an rlhf log). tok may be NULL
 * (samples are then shown as token ids). */
int inspect_log(const char *path, const Tok *tok, int as_json, FILE *out);

/* The summary of a checkpoint as text, or with as_json as one JSON object
 * with the same fields (file, kind, head, layers, heads, width, context,
 * vocab, tokenizer, parameters, param_rms), valid UTF-8 whatever the path's
 * bytes. 0, or -1 + err_set (the file does not load as a model). */
int inspect_checkpoint(const char *path, int as_json, FILE *out);

/* `rlhf inspect FILE`: a checkpoint, or else (when the file is HDF5 but not
 * an rlhf checkpoint) a log whose samples are decoded with model's tokenizer
 * (model may be NULL: final.h5 beside the log, or token ids when there is
 * none). as_json applies to checkpoints and logs. 0, or -1 + err_set. */
int inspect_path(const char *path, const char *model, int as_json, FILE *out);

#endif
