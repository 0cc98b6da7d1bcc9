/* ppo_config — PPO keys, role layout and prompts; see ppo_config.h. */
#include "common/mpi/ppo_config.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/io/jsonl.h"

const CfgKey ppo_keys[] = {
    {.key = "out_dir", .type = CFG_STR, .def = NULL,
     .help = "run directory: checkpoints, rollouts.h5, metrics.h5, final.h5"},
    {.key = "policy", .type = CFG_STR, .def = NULL, .help = "SFT checkpoint: the initial policy"},
    {.key = "ref", .type = CFG_STR, .def = "",
     .help = "frozen reference for the KL penalty (empty: the policy checkpoint)"},
    {.key = "reward_model", .type = CFG_STR, .def = "",
     .help = "reward model checkpoint (rlhf rm): needed by reward = rm or rm+verifier, and as the value "
             "model's initialisation for advantage = gae"},
    {.key = "value_init", .type = CFG_STR, .def = "",
     .help = "value model initialisation (empty: the reward model, as InstructGPT)"},
    {.key = "prompts", .type = CFG_STR, .def = NULL, .help = "RL prompts, {\"prompt\": ...} per line"},
    {.key = "role", .type = CFG_ENUM, .def = "auto",
     .help = "this rank's role (auto: learners first, then rewarders, then actors)", .choices = "auto|learner|rewarder|actor"},
    {.key = "learners", .type = CFG_INT, .def = "1", .help = "learner ranks (data-parallel)", .range = ">= 1"},
    {.key = "rewarders", .type = CFG_INT, .def = "1", .help = "rewarder ranks", .range = ">= 1"},
    {.key = "iterations", .type = CFG_INT, .def = "50", .help = "PPO iterations (policy versions)", .range = ">= 1"},
    {.key = "batch_size", .type = CFG_INT, .def = "64", .help = "rollouts per iteration", .range = ">= 1"},
    {.key = "group_size", .type = CFG_INT, .def = "1",
     .help = "samples per prompt (G; GRPO/RLOO groups): one actor samples a group, which travels as one unit",
     .range = ">= 1"},
    {.key = "chunk", .type = CFG_INT, .def = "16",
     .help = "rollouts per work order sent to an actor (a multiple of group_size)", .range = ">= 1"},
    {.key = "max_new", .type = CFG_INT, .def = "32", .help = "response tokens at most", .range = ">= 1"},
    {.key = "actor_slots", .type = CFG_INT, .def = "0",
     .help = "sequences an actor decodes at once (vLLM max_num_seqs); a finished one's slot takes the order's "
             "next sample; 0: the whole order. Samples do not depend on it",
     .range = ">= 0"},
    {.key = "snapshot_send", .type = CFG_ENUM, .def = "bcast",
     .help = "how the leading learner sends each policy version to the actors: bcast (point-to-point headers, "
             "the weights once by MPI_Ibcast on the learner + actors communicator, which actors progress between "
             "decoding steps; point-to-point for a version while an actor is late or has not finished the last "
             "broadcast) or p2p (header and weights to every actor). Samples do not depend on it",
     .choices = "bcast|p2p"},
    {.key = "temperature", .type = CFG_FLOAT, .def = "1.0", .help = "actor sampling temperature", .range = "> 0"},
    {.key = "top_k", .type = CFG_INT, .def = "0", .help = "actor top-k (0: off)", .range = ">= 0"},
    {.key = "top_p", .type = CFG_FLOAT, .def = "1.0", .help = "actor top-p (1: off)", .range = "(0, 1]"},
    {.key = "max_policy_lag", .type = CFG_INT, .def = "0",
     .help = "actors may sample with weights this many versions old (0: on-policy)", .range = ">= 0"},
    {.key = "advantage", .type = CFG_ENUM, .def = "gae",
     .help = "advantage estimator: gae (value model, InstructGPT PPO) or a critic-free one over each group of "
             "group_size samples, no value model (verl adv_estimator)",
     .choices = "gae|grpo|drgrpo|rloo|reinforce++|reinforce++-baseline"},
    {.key = "loss_agg", .type = CFG_ENUM, .def = "token-mean",
     .help = "policy-loss aggregation over a minibatch: token-mean (DAPO), seq-mean-token-mean (GRPO paper), "
             "seq-mean-token-sum-norm (Dr. GRPO: / sequences x max_new) (verl loss_agg_mode)",
     .choices = "token-mean|seq-mean-token-mean|seq-mean-token-sum-norm"},
    {.key = "ppo_epochs", .type = CFG_INT, .def = "4",
     .help = "passes over each iteration's rollouts", .range = ">= 1"},
    {.key = "minibatch", .type = CFG_INT, .def = "16",
     .help = "rollouts per optimizer step (over all learners)", .range = ">= 1"},
    {.key = "micro_batch", .type = CFG_INT, .def = "16", .help = "rollouts per forward pass", .range = ">= 1"},
    {.key = "lr", .type = CFG_FLOAT, .def = "1e-5", .help = "policy learning rate", .range = ">= 0"},
    {.key = "value_lr", .type = CFG_FLOAT, .def = "1e-5", .help = "value model learning rate", .range = ">= 0"},
    {.key = "weight_decay", .type = CFG_FLOAT, .def = "0.0",
     .help = "AdamW weight decay (matrices)", .range = ">= 0"},
    {.key = "grad_clip", .type = CFG_FLOAT, .def = "1.0",
     .help = "gradient-norm clip for both models (0: off)", .range = ">= 0"},
    {.key = "clip", .type = CFG_FLOAT, .def = "0.2",
     .help = "PPO ratio clip epsilon (both sides unless clip_low/clip_high are set)", .range = ">= 0"},
    {.key = "clip_low", .type = CFG_FLOAT, .def = "-1",
     .help = "ratio clip below: 1 - clip_low (-1: clip; verl clip_ratio_low)", .range = ">= -1"},
    {.key = "clip_high", .type = CFG_FLOAT, .def = "-1",
     .help = "ratio clip above: 1 + clip_high (-1: clip; DAPO clip-higher 0.28; verl clip_ratio_high, TRL "
             "epsilon_high)", .range = ">= -1"},
    {.key = "dual_clip", .type = CFG_FLOAT, .def = "0",
     .help = "dual-clip c > 1: a negative-advantage token's loss is capped at -c * A (0: off; verl "
             "clip_ratio_c, OpenRLHF dual_clip)", .range = ">= 0"},
    {.key = "value_clip", .type = CFG_FLOAT, .def = "0.2",
     .help = "value clip around the old values", .range = ">= 0"},
    {.key = "vf_coef", .type = CFG_FLOAT, .def = "0.1", .help = "value loss coefficient c1", .range = ">= 0"},
    {.key = "ent_coef", .type = CFG_FLOAT, .def = "0.0", .help = "entropy bonus coefficient c2", .range = ">= 0"},
    {.key = "gamma", .type = CFG_FLOAT, .def = "1.0", .help = "discount", .range = "[0, 1]"},
    {.key = "lam", .type = CFG_FLOAT, .def = "0.95", .help = "GAE lambda", .range = "[0, 1]"},
    {.key = "whiten_advantages", .type = CFG_BOOL, .def = "true",
     .help = "normalise advantages to mean 0, std 1 per iteration"},
    {.key = "kl_in", .type = CFG_ENUM, .def = "reward",
     .help = "where the KL to the reference goes: reward (-lambda * KL per token, InstructGPT), loss "
             "(lambda * KL added to the policy loss, GRPO; verl use_kl_loss) or none (no reference model "
             "is loaded)", .choices = "reward|loss|none"},
    {.key = "kl_coef", .type = CFG_FLOAT, .def = "0.05",
     .help = "initial KL coefficient lambda, in the reward or the loss (kl_in; TRL beta, verl kl_loss_coef)",
     .range = ">= 0"},
    {.key = "kl_target", .type = CFG_FLOAT, .def = "6.0",
     .help = "adaptive KL target per response (0: fixed coefficient)", .range = ">= 0"},
    {.key = "kl_horizon", .type = CFG_FLOAT, .def = "10000",
     .help = "adaptive KL horizon, in rollouts", .range = "> 0"},
    {.key = "kl_estimator", .type = CFG_ENUM, .def = "k1",
     .help = "per-token KL estimator (k3 clamped as verl)", .choices = "k1|k2|k3"},
    {.key = "reward", .type = CFG_ENUM, .def = "rm",
     .help = "sequence score: rm (reward_model), verifier (the verifier key) or rm+verifier, weighted by "
             "rm_weight and verifier_weight", .choices = "rm|verifier|rm+verifier"},
    {.key = "rm_weight", .type = CFG_FLOAT, .def = "1", .help = "weight of the reward model's score",
     .range = ">= 0"},
    {.key = "verifier_weight", .type = CFG_FLOAT, .def = "1", .help = "weight of the verifier's score",
     .range = ">= 0"},
    {.key = "filter_groups", .type = CFG_BOOL, .def = "false",
     .help = "DAPO dynamic sampling: drop groups whose rewards do not vary and sample more prompts until the "
             "batch is full (at most max_fill_rounds extra rounds)"},
    {.key = "max_fill_rounds", .type = CFG_INT, .def = "4",
     .help = "filter_groups: extra sampling rounds per iteration at most; then the iteration trains on the "
             "groups it has", .range = ">= 0"},
    {.key = "overlong_buffer", .type = CFG_INT, .def = "0",
     .help = "DAPO overlong shaping: the last N tokens before max_new are penalised linearly (0: off)",
     .range = ">= 0"},
    {.key = "overlong_penalty", .type = CFG_FLOAT, .def = "1",
     .help = "overlong shaping: the penalty at max_new tokens (DAPO penalty_factor)", .range = ">= 0"},
    {.key = "mask_truncated", .type = CFG_BOOL, .def = "false",
     .help = "responses that hit max_new without an end token contribute no loss (DAPO overlong filtering)"},
    {.key = "normalize_reward", .type = CFG_BOOL, .def = "true",
     .help = "score = (r - offset) / scale with the RM's stored normalisation"},
    {.key = "reward_clip", .type = CFG_FLOAT, .def = "5.0",
     .help = "clip the normalised score to [-c, c] (0: off)", .range = ">= 0"},
    {.key = "ptx_coef", .type = CFG_FLOAT, .def = "0.0",
     .help = "PPO-ptx: weight of the pretraining loss (gamma_ptx; 0: off)", .range = ">= 0"},
    {.key = "ptx_data", .type = CFG_STR, .def = "", .help = "PPO-ptx: plain-text pretraining data"},
    {.key = "ptx_batch", .type = CFG_INT, .def = "8",
     .help = "PPO-ptx: text windows per optimizer step", .range = ">= 1"},
    {.key = "seed", .type = CFG_INT, .def = "1", .help = "seed for prompt order and sampling", .range = "any"},
    {.key = "rank_timeout", .type = CFG_FLOAT, .def = "300",
     .help = "seconds an actor or rewarder may stay silent while it holds work: then it is named and its "
             "work goes to another rank; silent twice as long, the job ends with a checkpoint",
     .range = "> 0"},
    {.key = "ckpt_every", .type = CFG_INT, .def = "10", .help = "checkpoint every N iterations", .range = ">= 1"},
    {.key = "keep_checkpoints", .type = CFG_INT, .def = "2", .help = "iteration checkpoints kept", .range = ">= 0"},
    {.key = "log_samples", .type = CFG_INT, .def = "2",
     .help = "decoded samples printed per iteration", .range = ">= 0"},
    {.key = "overwrite", .type = CFG_BOOL, .def = "false",
     .help = "replace a run in out_dir made with other settings (its checkpoints and logs)", .alias = "force"},
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
    for (int i = 0; i < l->world; i++) {
        any |= declared[i] >= 0;
        all &= declared[i] >= 0;
    }
    if (any && !all) return err_set("some ranks were given --role and some not: give every rank a role, or none");
    l->n_learners = l->n_rewarders = l->n_actors = 0;
    for (int i = 0; i < l->world; i++) {
        int role = any ? declared[i] : i < L ? PPO_LEARNER : i < L + R ? PPO_REWARDER : PPO_ACTOR;
        int *list = role == PPO_LEARNER ? l->learners : role == PPO_REWARDER ? l->rewarders : l->actors;
        int *count = role == PPO_LEARNER ? &l->n_learners : role == PPO_REWARDER ? &l->n_rewarders : &l->n_actors;
        if (i == l->rank) {
            l->role = role;
            l->index = *count;
        }
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
    l->role_comm = l->snap_comm = MPI_COMM_NULL;
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
    if (!rc) {
        MPI_Comm_split(MPI_COMM_WORLD, (int)l->role, l->rank, &l->role_comm);
        int leader = l->rank == l->learners[0], in = leader || l->role == PPO_ACTOR;
        MPI_Comm_split(MPI_COMM_WORLD, in ? 0 : MPI_UNDEFINED, leader ? 0 : 1 + l->index, &l->snap_comm);
    }
    return rc;
}

PpoRole ppo_layout_role_of(const PpoLayout *l, int rank) {
    for (int i = 0; i < l->n_learners; i++)
        if (l->learners[i] == rank) return PPO_LEARNER;
    for (int i = 0; i < l->n_rewarders; i++)
        if (l->rewarders[i] == rank) return PPO_REWARDER;
    return PPO_ACTOR;
}

int ppo_config_check(const Config *c) {
    int G = config_int(c, "group_size"), chunk = config_int(c, "chunk");
    if (chunk % G)
        return err_set("chunk (%d) must be a multiple of group_size (%d): a group is sampled by one actor", chunk, G);
    for (int i = 0; i < 2; i++) {
        const char *key = i ? "clip_high" : "clip_low";
        double v = config_float(c, key);
        if (v < 0 && v != -1) return err_set("%s = %g: must be >= 0, or -1 for clip's value", key, v);
    }
    double dual = config_float(c, "dual_clip");
    if (dual != 0 && !(dual > 1)) return err_set("dual_clip = %g: must be > 1 (0: off)", dual);
    const char *reward = config_str(c, "reward"), *adv = config_str(c, "advantage");
    if (strcmp(reward, "verifier") && !*config_str(c, "reward_model"))
        return err_set("reward = %s needs reward_model (a checkpoint of rlhf rm); reward = verifier scores "
                       "without one", reward);
    if (!strcmp(adv, "gae") && !*config_str(c, "reward_model") && !*config_str(c, "value_init"))
        return err_set("advantage = gae needs a value model: set value_init or reward_model (its "
                       "initialisation), or use a critic-free advantage (grpo, rloo, ...)");
    if (!strcmp(adv, "rloo") && G < 2)
        return err_set("advantage = rloo needs group_size >= 2 (the baseline is the other samples' mean), got %d", G);
    if (config_bool(c, "filter_groups") && G < 2)
        return err_set("filter_groups needs group_size >= 2 (a group of one never varies)");
    if (config_int(c, "overlong_buffer") > config_int(c, "max_new"))
        return err_set("overlong_buffer (%d) must not exceed max_new (%d)", config_int(c, "overlong_buffer"),
                       config_int(c, "max_new"));
    if (config_int(c, "top_k") != 0 || config_float(c, "top_p") != 1.0)
        return err_set("top_k = %d, top_p = %g: rlhf ppo samples without truncation (top_k = 0, top_p = 1): the "
                       "importance ratio and the KL need the log-probs of the distribution sampled from, and "
                       "truncation is not applied where they are taken; use temperature",
                       config_int(c, "top_k"), config_float(c, "top_p"));
    return 0;
}

int ppo_layout_owner(const PpoLayout *l, int chunk) { return l->learners[chunk % l->n_learners]; }

void ppo_layout_print(const PpoLayout *l, FILE *f) {
    fprintf(f, "ppo: roles by rank:");
    for (int r = 0; r < l->world; r++) fprintf(f, " %d=%s", r, ppo_role_name(ppo_layout_role_of(l, r)));
    fputc('\n', f);
}

void ppo_layout_free(PpoLayout *l) {
    free(l->learners);
    free(l->rewarders);
    free(l->actors);
    if (l->role_comm != MPI_COMM_NULL) MPI_Comm_free(&l->role_comm);
    if (l->snap_comm != MPI_COMM_NULL) MPI_Comm_free(&l->snap_comm);
    memset(l, 0, sizeof *l);
}

int ppo_prompts_load(PpoPrompts *p, const char *path, const Tok *tok, int n_ctx) {
    memset(p, 0, sizeof *p);
    JsonlPrompts jp = {0};
    if (jsonl_read_prompts(path, &jp)) return -1;
    p->tokens = err_calloc((size_t)jp.n, sizeof(int *));
    p->len = err_calloc((size_t)jp.n, sizeof(int));
    p->text = jp.text; /* the strings move over; jp keeps only its line numbers */
    p->answer = jp.answer;
    p->n = jp.n;
    int rc = 0;
    for (int i = 0; i < p->n && !rc; i++) {
        const char *s = p->text[i];
        p->tokens[i] = tok_encode(tok, s, strlen(s), &p->len[i]);
        if (!p->tokens[i]) rc = err_prefix("%s:%d: ", path, jp.line[i]);
        else if (p->len[i] < 1 || p->len[i] >= n_ctx)
            rc = err_set("%s:%d: prompt of %d tokens; it must leave room in the context (%d)", path, jp.line[i],
                         p->len[i], n_ctx);
    }
    free(jp.line);
    if (rc) ppo_prompts_free(p);
    return rc;
}

void ppo_prompts_free(PpoPrompts *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->tokens[i]);
        free(p->text[i]);
        free(p->answer[i]);
    }
    free(p->answer);
    free(p->tokens);
    free(p->len);
    free(p->text);
    memset(p, 0, sizeof *p);
}

GenConfig ppo_gen_config(const Config *c, const Tok *tok) {
    return (GenConfig){.max_new = config_int(c, "max_new"),
                       .eot = tok_eot(tok),
                       .sampler = {.greedy = 0,
                                   .temperature = (float)config_float(c, "temperature"),
                                   .top_k = config_int(c, "top_k"),
                                   .top_p = (float)config_float(c, "top_p")},
                       .slots = config_int(c, "actor_slots")};
}
