/* lm — the language-model stages: `rlhf pretrain` (next-token training on
 * plain text, from a fresh model or a checkpoint) and `rlhf sft` (supervised
 * fine-tuning on {"prompt","completion"} demonstrations, loss on the
 * completion and its end token only). */
#ifndef LM_H
#define LM_H

#include "learner/trainer.h"

extern const TrainStage lm_pretrain_stage;
extern const TrainStage lm_sft_stage;

#endif
