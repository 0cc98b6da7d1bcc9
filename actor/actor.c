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
    /* orders that need a newer snapshot than the one held: an order a
     * learner reassigned can overtake the leader's snapshot on the way */
    RolloutOrder *deferred;
    int n_deferred;
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

/* Tells the order's learner that the order is sampled and on its way to its
 * rewarder, so that the learner's deadline (rank_timeout) watches the right
 * rank. */
static void send_progress(const Actor *a, const RolloutOrder *o) {
    RolloutProgress p = {.iteration = o->iteration, .chunk = o->chunk, .rewarder = o->rewarder};
    MsgBuf b;
    msg_buf_init(&b);
    rollout_progress_pack(&p, &b);
    msg_send(&b, ppo_layout_owner(a->layout, o->chunk), MSG_PROGRESS, MPI_COMM_WORLD);
    msg_buf_free(&b);
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
    if (ppo_layout_role_of(a->layout, o->rewarder) != PPO_REWARDER)
        err_die("actor: work order names rank %d as its rewarder, which is a %s", o->rewarder,
                ppo_role_name(ppo_layout_role_of(a->layout, o->rewarder)));
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
        r->logp_behav = g.logp_sample[i]; /* of logits / temperature: what the learner and rewarder take */
    }
    MsgBuf b;
    msg_buf_init(&b);
    rb.t_sent = fs_now();
    rollout_batch_pack(&rb, &b);
    send_progress(a, o);
    msg_send(&b, o->rewarder, MSG_ROLLOUT, MPI_COMM_WORLD);
    msg_buf_free(&b);
    free(rb.r);
    gen_result_free(&g);
}

/* A stop from the leader overtakes the orders still queued: after a signal
 * the job ends without sampling work nobody will wait for. */
static int stop_waiting(const Actor *a) { return msg_probe(a->layout->learners[0], MSG_STOP, MPI_COMM_WORLD, NULL, NULL); }

/* An order of an iteration before the snapshot held is done with: the
 * learner sends version v only after iteration v - 1 is complete (orders
 * that waited in a stopped actor's queue, or went to another actor). */
static int obsolete(const Actor *a, const RolloutOrder *o) { return o->iteration < a->version; }

/* Serves o now, or keeps it until a new enough snapshot has come. */
static void take_order(Actor *a, RolloutOrder *o) {
    if (o->version > a->version && !obsolete(a, o)) {
        a->deferred = err_realloc(a->deferred, (size_t)(a->n_deferred + 1) * sizeof *a->deferred);
        a->deferred[a->n_deferred++] = *o;
        return;
    }
    if (!obsolete(a, o) && !stop_waiting(a)) serve(a, o);
    rollout_order_free(o);
}

/* After a snapshot: the deferred orders it is new enough for. */
static void serve_deferred(Actor *a) {
    for (int i = 0; i < a->n_deferred;) {
        if (a->deferred[i].version > a->version) {
            i++;
            continue;
        }
        RolloutOrder o = a->deferred[i];
        a->deferred[i] = a->deferred[--a->n_deferred];
        if (!obsolete(a, &o) && !stop_waiting(a)) serve(a, &o);
        rollout_order_free(&o);
    }
}

static int actor_setup(Actor *a, const Config *cfg, const PpoLayout *l) {
    const char *path = config_str(cfg, "policy");
    memset(a, 0, sizeof *a);
    a->layout = l;
    CkptWant want = {.head = GPT_HEAD_LM, .what = "the policy"};
    if (ckpt_load_model_as(path, &a->policy, &a->tok, &want)) return -1;
    if (ppo_prompts_load(&a->prompts, config_str(cfg, "prompts"), a->tok, a->policy.cfg.n_ctx)) return -1;
    a->gen = ppo_gen_config(cfg, a->tok);
    if (config_int(cfg, "max_new") < 1) return err_set("max_new must be >= 1");
    return sampler_validate(&a->gen.sampler);
}

/* Orders come from any learner (the leader's, or one a learner reassigned
 * from a late rank); snapshots and the stop from the leader only. */
static void check_source(const Actor *a, int src, int tag) {
    PpoRole role = ppo_layout_role_of(a->layout, src);
    int from_leader = src == a->layout->learners[0];
    if (tag == MSG_ORDER ? role == PPO_LEARNER : from_leader) return;
    err_die("actor: unexpected %s message (tag %d) from rank %d (a %s)", msg_tag_name(tag), tag, src,
            ppo_role_name(role));
}

int actor_run(const Config *cfg, const PpoLayout *l) {
    Actor a;
    msg_check_all(actor_setup(&a, cfg, l), "ppo: ");
    MsgBuf b;
    msg_buf_init(&b);
    for (;;) {
        int src, tag = msg_recv(&b, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &src);
        if (tag != MSG_STOP && tag != MSG_SNAPSHOT && tag != MSG_ORDER)
            err_die("actor: unexpected message tag %d from rank %d", tag, src);
        check_source(&a, src, tag);
        if (tag == MSG_STOP) {
            if (rollout_stop_unpack(&b)) err_die("actor: %s", err_msg());
            break;
        }
        if (tag == MSG_SNAPSHOT) {
            take_snapshot(&a, &b);
            serve_deferred(&a);
        } else {
            RolloutOrder o;
            if (rollout_order_unpack(&b, &o)) err_die("actor: from rank %d: %s", src, err_msg());
            take_order(&a, &o);
        }
    }
    b.len = b.pos = 0;
    rollout_stopped_pack(&b);
    msg_send(&b, l->learners[0], MSG_STOPPED, MPI_COMM_WORLD);
    msg_buf_free(&b);
    for (int i = 0; i < a.n_deferred; i++) rollout_order_free(&a.deferred[i]);
    free(a.deferred);
    ppo_prompts_free(&a.prompts);
    gpt_free(&a.policy);
    tok_free(a.tok);
    return 0;
}
