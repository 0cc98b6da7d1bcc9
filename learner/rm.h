/* rm — `rlhf rm`: the reward model. Initialised from the SFT checkpoint with
 * the unembedding replaced by a scalar head, trained with the Bradley-Terry
 * loss on preference pairs and K-wise rankings (one batch element holds all
 * K-choose-2 comparisons of a ranking, as in InstructGPT). The score of a
 * response is the head's output at its last token (<|endoftext|>). At the end
 * it samples responses from the SFT policy and stores an offset and scale
 * (attributes /reward/score_offset, /reward/score_scale) so that normalised
 * scores of SFT samples have mean 0 and standard deviation 1 (used by PPO). */
#ifndef RM_H
#define RM_H

#include "common/model/gpt.h"
#include "learner/trainer.h"

extern const TrainStage rm_stage;

#endif
