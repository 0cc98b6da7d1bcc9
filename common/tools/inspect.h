/* inspect — `rlhf inspect` for HDF5 logs: a rollout log (rows, iterations,
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

#endif
