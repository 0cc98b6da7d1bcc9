/* dpo — `rlhf dpo`: direct preference optimisation from an SFT checkpoint
 * with the SFT model as the frozen reference (its log-probs of every
 * training response computed once at the start). Variants: DPO, IPO and
 * conservative DPO (label smoothing); logs implicit-reward accuracy, margin
 * and the chosen/rejected rewards. */
#ifndef DPO_H
#define DPO_H

#include "learner/trainer.h"

extern const TrainStage dpo_stage;

#endif
