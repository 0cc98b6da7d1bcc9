/* actor — PPO rollout generation; see actor.h. */
#include "actor/actor.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/ckpt.h"
#include "common/model/generate.h"
#include "common/mpi/rollout.h"

typedef struct {
    Gpt policy;
    Tok *tok;
    int version;
    PpoPrompts prompts;
    GenConfig gen;
    const PpoLayout *layout;
} Actor;

/* Replaces the policy with the snapshot whose header is in b; its weights
 * arrive in place, checked against the header's count and checksum. */
static void take_snapshot(Actor *a, MsgBuf *b) {
    RolloutSnapshot s;
    if (rollout_snapshot_unpack(b, &s) ||
        rollout_snapshot_recv(&s, a->policy.params, a->policy.n_params, a->layout->learners[0], MPI_COMM_WORLD))
        err_die("actor %d: %s", a->layout->index, err_msg());
    gpt_pack_head(&a->policy); /* once per snapshot, not once per order */
    a->version = (int)s.version;
}

/* Samples an order's prompts and sends the batch to its rewarder. */
static void serve(Actor *a, const RolloutOrder *o) {
    const int *prompts[o->n];
    int plen[o->n];
    for (int i = 0; i < o->n; i++) {
        int k = o->prompt_index[i];
        if (k < 0 || k >= a->prompts.n) err_die("actor: order for prompt %d of %d", k, a->prompts.n);
        prompts[i] = a->prompts.tokens[k];
        plen[i] = a->prompts.len[k];
    }
    Rng rng;
    rng_seed(&rng, o->seed);
    GenResult g;
    double t0 = fs_now();
    if (gen_run(&a->policy, prompts, plen, o->n, &a->gen, &rng, &g)) err_die("actor: %s", err_msg());
    RolloutBatch rb = {.iteration = o->iteration,
                       .chunk = o->chunk,
                       .version = a->version,
                       .actor = a->layout->rank,
                       .scored = 0,
                       .lambda = o->lambda,
                       .t_generate = fs_now() - t0,
                       .n = o->n,
                       .r = err_calloc((size_t)o->n, sizeof(Rollout))};
    for (int i = 0; i < o->n; i++) {
        Rollout *r = &rb.r[i];
        r->prompt_index = o->prompt_index[i];
        r->prompt_len = plen[i];
        r->resp_len = g.len[i];
        r->stop = g.stop[i];
        r->prompt = (int32_t *)prompts[i]; /* borrowed for packing */
        r->resp = g.tokens[i];
        r->logp_behav = g.logp_model[i];
    }
    MsgBuf b;
    msg_buf_init(&b);
    rb.t_sent = fs_now();
    rollout_batch_pack(&rb, &b);
    const PpoLayout *l = a->layout;
    msg_send(&b, l->rewarders[o->chunk % l->n_rewarders], MSG_ROLLOUT, MPI_COMM_WORLD);
    msg_buf_free(&b);
    free(rb.r);
    gen_result_free(&g);
}

static int actor_setup(Actor *a, const Config *cfg, const PpoLayout *l) {
    const char *path = config_str(cfg, "policy");
    memset(a, 0, sizeof *a);
    a->layout = l;
    CkptWant want = {.head = GPT_HEAD_LM, .what = "the policy"};
    if (ckpt_load_model_as(path, &a->policy, &a->tok, &want)) return -1;
    if (ppo_prompts_load(&a->prompts, config_str(cfg, "prompts"), a->tok, a->policy.cfg.n_ctx)) return -1;
    a->gen = (GenConfig){.max_new = config_int(cfg, "max_new"),
                         .eot = tok_eot(a->tok),
                         .sampler = {.greedy = 0,
                                     .temperature = (float)config_float(cfg, "temperature"),
                                     .top_k = config_int(cfg, "top_k"),
                                     .top_p = (float)config_float(cfg, "top_p")}};
    if (config_int(cfg, "max_new") < 1) return err_set("max_new must be >= 1");
    return sampler_validate(&a->gen.sampler);
}

int actor_run(const Config *cfg, const PpoLayout *l) {
    Actor a;
    msg_check_all(actor_setup(&a, cfg, l), "ppo: ");
    MsgBuf b;
    msg_buf_init(&b);
    for (;;) {
        int tag = msg_recv(&b, l->learners[0], MPI_ANY_TAG, MPI_COMM_WORLD, NULL);
        if (tag == MSG_STOP) {
            if (rollout_stop_unpack(&b)) err_die("actor: %s", err_msg());
            break;
        }
        if (tag == MSG_SNAPSHOT) {
            take_snapshot(&a, &b);
        } else if (tag == MSG_ORDER) {
            RolloutOrder o;
            if (rollout_order_unpack(&b, &o)) err_die("actor: %s", err_msg());
            serve(&a, &o);
            rollout_order_free(&o);
        } else {
            err_die("actor: unexpected message tag %d from the learner", tag);
        }
    }
    msg_buf_free(&b);
    ppo_prompts_free(&a.prompts);
    gpt_free(&a.policy);
    tok_free(a.tok);
    return 0;
}
