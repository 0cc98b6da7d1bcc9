/* actor — PPO rollout generation; see actor.h. */
#include "actor/actor.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/io/ckpt.h"
#include "common/err.h"
#include "common/model/generate.h"
#include "common/mpi/rollout.h"
#include "common/fsutil.h"

typedef struct {
    Gpt policy;
    Tok *tok;
    int version;
    PpoPrompts prompts;
    GenConfig gen;
    const PpoLayout *layout;
} Actor;

static void take_snapshot(Actor *a, MsgBuf *b) {
    int learner = a->layout->learners[0];
    int version = msg_get_i32(b);
    long long n = msg_get_i32(b);
    if (b->bad || n != (long long)a->policy.n_params)
        err_die("actor %d: snapshot of %lld parameters, expected %zu", a->layout->index, n, a->policy.n_params);
    msg_recv_f32(a->policy.params, a->policy.n_params, learner, MSG_SNAPSHOT_DATA, MPI_COMM_WORLD);
    gpt_pack_head(&a->policy); /* once per snapshot, not once per order */
    a->version = version;
}

/* Samples an order's prompts and sends the batch to its rewarder. */
static void serve(Actor *a, const RolloutOrder *o) {
    const int *prompts[o->n];
    int plen[o->n];
    for (int i = 0; i < o->n; i++) {
        int k = o->prompt_index[i];
        if (k < 0 || k >= a->prompts.n) err_die("actor: order for prompt %d of %d", k, a->prompts.n);
        prompts[i] = a->prompts.tokens[k], plen[i] = a->prompts.len[k];
    }
    Rng rng;
    rng_seed(&rng, o->seed);
    GenResult g;
    double t0 = fs_now();
    if (gen_run(&a->policy, prompts, plen, o->n, &a->gen, &rng, &g)) err_die("actor: %s", err_msg());
    RolloutBatch rb = {o->iteration, o->chunk, a->version, a->layout->rank, 0, o->lambda, fs_now() - t0, 0, 0, o->n,
                       err_calloc((size_t)o->n, sizeof(Rollout))};
    for (int i = 0; i < o->n; i++) {
        Rollout *r = &rb.r[i];
        r->prompt_index = o->prompt_index[i], r->prompt_len = plen[i], r->resp_len = g.len[i], r->stop = g.stop[i];
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
    char kind[32];
    const char *path = config_str(cfg, "policy");
    memset(a, 0, sizeof *a);
    a->layout = l;
    if (ckpt_load_model(path, &a->policy, &a->tok, kind, sizeof kind)) return -1;
    if (a->policy.cfg.head != GPT_HEAD_LM) return err_set("%s: is a %s checkpoint; policy must be a language model", path, kind);
    if (ppo_prompts_load(&a->prompts, config_str(cfg, "prompts"), a->tok, a->policy.cfg.n_ctx)) return -1;
    a->gen = (GenConfig){config_int(cfg, "max_new"), tok_eot(a->tok),
                         {0, (float)config_float(cfg, "temperature"), config_int(cfg, "top_k"),
                          (float)config_float(cfg, "top_p")}};
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
        if (tag == MSG_STOP) break;
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
