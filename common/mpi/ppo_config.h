/* ppo_config — what every rank of a PPO job shares: the configuration keys
 * (one table, since all ranks parse the same arguments), the assignment of
 * ranks to roles (learners first, then rewarders, the rest actors; or each
 * rank's --role for MPMD launches, gathered so every rank knows the layout),
 * and the tokenized prompt set. Depends on nothing in the role directories. */
#ifndef PPO_CONFIG_H
#define PPO_CONFIG_H

#include <mpi.h>
#include <stdio.h>

#include "common/config.h"
#include "common/model/generate.h"
#include "common/model/tok.h"

extern const CfgKey ppo_keys[];

typedef enum { PPO_LEARNER = 0, PPO_REWARDER = 1, PPO_ACTOR = 2 } PpoRole;

typedef struct {
    int rank, world;
    PpoRole role;
    int index;                 /* position among the ranks of its role */
    int n_learners, n_rewarders, n_actors;
    int *learners, *rewarders, *actors; /* world ranks of each role, in order */
    MPI_Comm role_comm;        /* the ranks sharing this rank's role */
    MPI_Comm snap_comm;        /* snapshot broadcasts: the leading learner (its rank 0) and the actors
                                  (1 .. n_actors, in actors[] order); MPI_COMM_NULL on other ranks */
} PpoLayout;

const char *ppo_role_name(PpoRole r);
/* What the key ranges cannot say: -1 + err_set naming the keys that do not
 * go together (chunk a multiple of group_size; top_k / top_p: RL samples
 * with temperature only; clip_low/clip_high -1 or >= 0; dual_clip 0 or > 1;
 * reward_model for reward = rm or rm+verifier; a value model for gae;
 * group_size >= 2 for rloo and filter_groups; overlong_buffer <= max_new). */
int ppo_config_check(const Config *c);
/* Collective over MPI_COMM_WORLD (every rank splits role_comm and
 * snap_comm). -1 + err_set (the same on every rank) for
 * zero actors or rewarders, more roles than ranks, or a bad --role. */
int ppo_layout(PpoLayout *l, const Config *c);
/* The role of a world rank in the layout. */
PpoRole ppo_layout_role_of(const PpoLayout *l, int rank);
/* The world rank of the learner that owns chunk (its orders, progress and
 * scored batches): chunks go round the learners. */
int ppo_layout_owner(const PpoLayout *l, int chunk);
/* One line "ppo: roles by rank: 0=learner 1=rewarder 2=actor ..." on f. */
void ppo_layout_print(const PpoLayout *l, FILE *f);
void ppo_layout_free(PpoLayout *l);

/* The actor's generation settings (max_new, temperature, top_k, top_p,
 * actor_slots; the end token of tok): one home, so `rlhf plan` times the
 * call the actor makes. Check the sampler with sampler_validate. */
GenConfig ppo_gen_config(const Config *c, const Tok *tok);

typedef struct {
    int n;
    int **tokens;
    int *len;
    char **text;
    char **answer; /* the line's "answer" (answer verifier), NULL where none */
} PpoPrompts;

/* {"prompt"[, "answer"]} JSONL, tokenized; prompts that do not leave room for at least
 * one response token in n_ctx are an error naming the line. */
int ppo_prompts_load(PpoPrompts *p, const char *path, const Tok *tok, int n_ctx);
void ppo_prompts_free(PpoPrompts *p);

#endif
