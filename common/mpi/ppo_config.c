/* ppo_config — PPO keys, role layout and prompts; see ppo_config.h. */
#include "common/mpi/ppo_config.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/jsonl.h"

const CfgKey ppo_keys[] = {
    {"out_dir", CFG_STR, NULL, "run directory: checkpoints, rollouts.h5, metrics.h5, final.h5", NULL},
    {"policy", CFG_STR, NULL, "SFT checkpoint: the initial policy", NULL},
    {"ref", CFG_STR, "", "frozen reference for the KL penalty (empty: the policy checkpoint)", NULL},
    {"reward_model", CFG_STR, NULL, "reward model checkpoint (rlhf rm)", NULL},
    {"value_init", CFG_STR, "", "value model initialisation (empty: the reward model, as InstructGPT)", NULL},
    {"prompts", CFG_STR, NULL, "RL prompts, {\"prompt\": ...} per line", NULL},
    {"role", CFG_ENUM, "auto", "this rank's role (auto: learners first, then rewarders, then actors)",
     "auto|learner|rewarder|actor"},
    {"learners", CFG_INT, "1", "learner ranks (data-parallel)", NULL},
    {"rewarders", CFG_INT, "1", "rewarder ranks", NULL},
    {"iterations", CFG_INT, "50", "PPO iterations (policy versions)", NULL},
    {"batch_size", CFG_INT, "64", "rollouts per iteration", NULL},
    {"chunk", CFG_INT, "16", "prompts per work order sent to an actor", NULL},
    {"max_new", CFG_INT, "32", "response tokens at most", NULL},
    {"temperature", CFG_FLOAT, "1.0", "actor sampling temperature", NULL},
    {"top_k", CFG_INT, "0", "actor top-k (0: off)", NULL},
    {"top_p", CFG_FLOAT, "1.0", "actor top-p (1: off)", NULL},
    {"max_policy_lag", CFG_INT, "0", "actors may sample with weights this many versions old (0: on-policy)", NULL},
    {"ppo_epochs", CFG_INT, "4", "passes over each iteration's rollouts", NULL},
    {"minibatch", CFG_INT, "16", "rollouts per optimizer step (over all learners)", NULL},
    {"micro_batch", CFG_INT, "16", "rollouts per forward pass", NULL},
    {"lr", CFG_FLOAT, "1e-5", "policy learning rate", NULL},
    {"value_lr", CFG_FLOAT, "1e-5", "value model learning rate", NULL},
    {"weight_decay", CFG_FLOAT, "0.0", "AdamW weight decay (matrices)", NULL},
    {"grad_clip", CFG_FLOAT, "1.0", "gradient-norm clip for both models (0: off)", NULL},
    {"clip", CFG_FLOAT, "0.2", "PPO ratio clip epsilon", NULL},
    {"value_clip", CFG_FLOAT, "0.2", "value clip around the old values", NULL},
    {"vf_coef", CFG_FLOAT, "0.1", "value loss coefficient c1", NULL},
    {"ent_coef", CFG_FLOAT, "0.0", "entropy bonus coefficient c2", NULL},
    {"gamma", CFG_FLOAT, "1.0", "discount", NULL},
    {"lam", CFG_FLOAT, "0.95", "GAE lambda", NULL},
    {"whiten_advantages", CFG_BOOL, "true", "normalise advantages to mean 0, std 1 per iteration", NULL},
    {"kl_coef", CFG_FLOAT, "0.05", "initial KL coefficient lambda", NULL},
    {"kl_target", CFG_FLOAT, "6.0", "adaptive KL target per response (0: fixed coefficient)", NULL},
    {"kl_horizon", CFG_FLOAT, "10000", "adaptive KL horizon, in rollouts", NULL},
    {"kl_estimator", CFG_ENUM, "k1", "per-token KL estimator", "k1|k3"},
    {"normalize_reward", CFG_BOOL, "true", "score = (r - offset) / scale with the RM's stored normalisation", NULL},
    {"reward_clip", CFG_FLOAT, "5.0", "clip the normalised score to [-c, c] (0: off)", NULL},
    {"ptx_coef", CFG_FLOAT, "0.0", "PPO-ptx: weight of the pretraining loss (gamma_ptx; 0: off)", NULL},
    {"ptx_data", CFG_STR, "", "PPO-ptx: plain-text pretraining data", NULL},
    {"ptx_batch", CFG_INT, "8", "PPO-ptx: text windows per optimizer step", NULL},
    {"seed", CFG_INT, "1", "seed for prompt order and sampling", NULL},
    {"ckpt_every", CFG_INT, "10", "checkpoint every N iterations", NULL},
    {"keep_checkpoints", CFG_INT, "2", "iteration checkpoints kept", NULL},
    {"log_samples", CFG_INT, "2", "decoded samples printed per iteration", NULL},
    {0}};

const char *ppo_role_name(PpoRole r) {
    return r == PPO_LEARNER ? "learner" : r == PPO_REWARDER ? "rewarder" : "actor";
}

static int wanted_role(const Config *c) {
    const char *r = config_str(c, "role");
    return !strcmp(r, "learner") ? PPO_LEARNER : !strcmp(r, "rewarder") ? PPO_REWARDER
           : !strcmp(r, "actor") ? PPO_ACTOR : -1;
}

/* Role of every rank: declared (--role) or by position. */
static int assign(PpoLayout *l, const Config *c, const int *declared) {
    int L = config_int(c, "learners"), R = config_int(c, "rewarders"), any = 0, all = 1;
    for (int i = 0; i < l->world; i++) any |= declared[i] >= 0, all &= declared[i] >= 0;
    if (any && !all) return err_set("some ranks were given --role and some not: give every rank a role, or none");
    l->n_learners = l->n_rewarders = l->n_actors = 0;
    for (int i = 0; i < l->world; i++) {
        int role = any ? declared[i] : i < L ? PPO_LEARNER : i < L + R ? PPO_REWARDER : PPO_ACTOR;
        int *list = role == PPO_LEARNER ? l->learners : role == PPO_REWARDER ? l->rewarders : l->actors;
        int *count = role == PPO_LEARNER ? &l->n_learners : role == PPO_REWARDER ? &l->n_rewarders : &l->n_actors;
        if (i == l->rank) l->role = role, l->index = *count;
        list[(*count)++] = i;
    }
    if (!any && L + R >= l->world)
        return err_set("%d ranks cannot hold %d learner(s), %d rewarder(s) and at least one actor; "
                       "start at least %d ranks", l->world, L, R, L + R + 1);
    if (l->n_learners < 1) return err_set("no learner rank (learners = %d)", L);
    if (l->n_rewarders < 1) return err_set("no rewarder rank: at least one is needed");
    if (l->n_actors < 1) return err_set("no actor rank: at least one is needed");
    return 0;
}

int ppo_layout(PpoLayout *l, const Config *c) {
    memset(l, 0, sizeof *l);
    l->role_comm = MPI_COMM_NULL;
    MPI_Comm_rank(MPI_COMM_WORLD, &l->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &l->world);
    int mine = wanted_role(c), *declared = err_malloc((size_t)l->world * sizeof(int));
    MPI_Allgather(&mine, 1, MPI_INT, declared, 1, MPI_INT, MPI_COMM_WORLD);
    l->learners = err_malloc((size_t)l->world * sizeof(int));
    l->rewarders = err_malloc((size_t)l->world * sizeof(int));
    l->actors = err_malloc((size_t)l->world * sizeof(int));
    int rc = config_int(c, "learners") < 1 ? err_set("learners must be >= 1")
             : config_int(c, "rewarders") < 1 ? err_set("rewarders must be >= 1 (got %d)", config_int(c, "rewarders"))
             : assign(l, c, declared);
    free(declared);
    if (!rc) MPI_Comm_split(MPI_COMM_WORLD, (int)l->role, l->rank, &l->role_comm);
    return rc;
}

PpoRole ppo_layout_role_of(const PpoLayout *l, int rank) {
    for (int i = 0; i < l->n_learners; i++)
        if (l->learners[i] == rank) return PPO_LEARNER;
    for (int i = 0; i < l->n_rewarders; i++)
        if (l->rewarders[i] == rank) return PPO_REWARDER;
    return PPO_ACTOR;
}

void ppo_layout_print(const PpoLayout *l, FILE *f) {
    fprintf(f, "ppo: roles by rank:");
    for (int r = 0; r < l->world; r++) fprintf(f, " %d=%s", r, ppo_role_name(ppo_layout_role_of(l, r)));
    fputc('\n', f);
}

void ppo_layout_free(PpoLayout *l) {
    free(l->learners), free(l->rewarders), free(l->actors);
    if (l->role_comm != MPI_COMM_NULL) MPI_Comm_free(&l->role_comm);
    memset(l, 0, sizeof *l);
}

int ppo_prompts_load(PpoPrompts *p, const char *path, const Tok *tok, int n_ctx) {
    memset(p, 0, sizeof *p);
    Jsonl *j = jsonl_open(path);
    json_t *rec;
    int rc, cap = 0;
    const char *s;
    if (!j) return -1;
    while ((rc = jsonl_next(j, &rec)) == 1) {
        if (jsonl_get_str(j, rec, "prompt", &s)) { rc = -1; break; }
        if (p->n == cap) {
            cap = cap ? 2 * cap : 256;
            p->tokens = err_realloc(p->tokens, cap * sizeof(int *));
            p->len = err_realloc(p->len, cap * sizeof(int));
            p->text = err_realloc(p->text, cap * sizeof(char *));
        }
        int n;
        int *ids = tok_encode(tok, s, strlen(s), &n);
        if (!ids || n < 1 || n >= n_ctx) {
            free(ids);
            rc = ids ? err_set("%s:%d: prompt of %d tokens; it must leave room in the context (%d)", path,
                               jsonl_line(j), n, n_ctx)
                     : err_prefix("%s:%d: ", path, jsonl_line(j));
            break;
        }
        p->tokens[p->n] = ids, p->len[p->n] = n, p->text[p->n] = err_strdup(s), p->n++;
    }
    jsonl_close(j);
    if (rc == 0 && p->n == 0) rc = err_set("%s: no prompts", path);
    if (rc) ppo_prompts_free(p);
    return rc ? -1 : 0;
}

void ppo_prompts_free(PpoPrompts *p) {
    for (int i = 0; i < p->n; i++) free(p->tokens[i]), free(p->text[i]);
    free(p->tokens), free(p->len), free(p->text);
    memset(p, 0, sizeof *p);
}
