/* actor — PPO rollout generation; see actor.h. */
#include "actor/actor.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/io/ckpt.h"
#include "common/model/generate.h"
#include "common/mpi/rollout.h"

/* A message taken off MPI, waiting its turn: the actor handles messages in
 * the order they came (from the leader, the order sent), but takes them
 * early, between decoding steps, to start the broadcasts they announce. */
typedef struct {
    int tag, src;
    MsgBuf b;
    RolloutSnapshot snap; /* MSG_SNAPSHOT: the header, unpacked when it came */
} Queued;

/* The staging buffer of snapshot broadcasts (snapshot_send = bcast): the
 * weights arrive there while the policy samples with the version held, and
 * are copied in when the header's turn comes. */
typedef enum {
    STAGE_FREE,      /* no broadcast in flight */
    STAGE_RECEIVING, /* posted, not complete */
    STAGE_READY,     /* complete and checked, not yet taken */
    STAGE_DROPPED,   /* posted, not complete, not wanted (a point-to-point copy came instead) */
} StageState;

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
    Queued *q; /* messages taken, not yet handled: q[q_head .. q_len) */
    int q_head, q_len, q_cap;
    float *stage;
    StageState stage_state;
    RolloutSnapshot stage_snap; /* the header of the broadcast in the stage */
    MPI_Request stage_req;
    int64_t bcasts_seen, bcasts_posted; /* broadcast headers taken; broadcasts posted (in order) */
} Actor;

/* Tests only: RLHF_TEST_ACTOR_STOP=RANK:VERSION:posting|holding stops
 * (SIGSTOP) world rank RANK once, just before it posts its part of version
 * VERSION's broadcast, or just after it took that version: so that
 * tests/cli/snapshots.sh stops an actor at a known point of the protocol. */
static void test_stop(const Actor *a, int64_t version, const char *when) {
    const char *v = getenv("RLHF_TEST_ACTOR_STOP");
    static int done;
    int rank;
    long long ver;
    char w[16];
    if (done || !v || sscanf(v, "%d:%lld:%15s", &rank, &ver, w) != 3) return;
    if (rank != a->layout->rank || ver != version || strcmp(w, when)) return;
    done = 1;
    raise(SIGSTOP);
}

static void nap(void) {
    struct timespec t = {0, 1000000}; /* 1 ms: ~1% CPU while waiting */
    nanosleep(&t, NULL);
}

static void check_source(const Actor *a, int src, int tag);

/* Takes the messages waiting on MPI into the queue, in order, up to
 * point-to-point weights (those are received in place with their header). */
static void pull(Actor *a) {
    int src, tag;
    while (msg_probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &src, &tag)) {
        if (tag == MSG_SNAPSHOT_DATA) return;
        if (tag != MSG_STOP && tag != MSG_SNAPSHOT && tag != MSG_ORDER)
            err_die("actor: unexpected message tag %d from rank %d", tag, src);
        check_source(a, src, tag);
        if (a->q_len == a->q_cap) {
            if (a->q_head > 0) {
                memmove(a->q, a->q + a->q_head, (size_t)(a->q_len - a->q_head) * sizeof *a->q);
                a->q_len -= a->q_head;
                a->q_head = 0;
            } else {
                a->q_cap = a->q_cap ? 2 * a->q_cap : 16;
                a->q = err_realloc(a->q, (size_t)a->q_cap * sizeof *a->q);
            }
        }
        Queued *e = &a->q[a->q_len++];
        memset(e, 0, sizeof *e);
        e->tag = tag;
        e->src = src;
        msg_buf_init(&e->b);
        msg_recv(&e->b, src, tag, MPI_COMM_WORLD, NULL);
        if (tag != MSG_SNAPSHOT) continue;
        if (rollout_snapshot_unpack(&e->b, &e->snap) ||
            rollout_snapshot_check_count(&e->snap, a->policy.n_params))
            err_die("actor %d: %s", a->layout->index, err_msg());
        if (e->snap.bcast_seq >= 0 && e->snap.bcast_seq != a->bcasts_seen++)
            err_die("actor %d: snapshot header message: bcast_seq: %lld, expected %lld (broadcasts in order)",
                    a->layout->index, (long long)e->snap.bcast_seq, (long long)a->bcasts_seen - 1);
    }
}

/* Posts the broadcast of header s into the stage (it is free). */
static void post_bcast(Actor *a, const RolloutSnapshot *s) {
    if (a->stage_state != STAGE_FREE || s->bcast_seq != a->bcasts_posted)
        err_die("actor %d: broadcast %lld posted out of turn (stage %d, %lld posted)", a->layout->index,
                (long long)s->bcast_seq, (int)a->stage_state, (long long)a->bcasts_posted);
    if (!a->stage) a->stage = err_malloc(a->policy.n_params * sizeof(float));
    test_stop(a, s->version, "posting");
    rollout_snapshot_ibcast(a->stage, a->policy.n_params, 0, a->layout->snap_comm, &a->stage_req);
    a->stage_snap = *s;
    a->stage_state = STAGE_RECEIVING;
    a->bcasts_posted++;
}

/* Moves the broadcasts on: takes waiting messages, completes the one in
 * flight (checks it, tells the leader: it may post the next), posts the
 * next one queued when the stage is free. Between orders and before every
 * decoding step (GenConfig.step_hook). */
static void progress(Actor *a) {
    pull(a);
    if (a->stage_state == STAGE_RECEIVING || a->stage_state == STAGE_DROPPED) {
        int done = 0;
        MPI_Test(&a->stage_req, &done, MPI_STATUS_IGNORE);
        if (done) {
            if (rollout_snapshot_check_weights(&a->stage_snap, a->stage, a->policy.n_params))
                err_die("actor %d: %s", a->layout->index, err_msg());
            RolloutHolds h = {.version = a->stage_snap.version, .bcast_seq = a->stage_snap.bcast_seq};
            MsgBuf b;
            msg_buf_init(&b);
            rollout_holds_pack(&h, &b);
            msg_send(&b, a->layout->learners[0], MSG_HOLDS, MPI_COMM_WORLD);
            msg_buf_free(&b);
            a->stage_state = a->stage_state == STAGE_RECEIVING ? STAGE_READY : STAGE_FREE;
        }
    }
    if (a->stage_state != STAGE_FREE) return;
    for (int i = a->q_head; i < a->q_len; i++)
        if (a->q[i].tag == MSG_SNAPSHOT && a->q[i].snap.bcast_seq == a->bcasts_posted) {
            post_bcast(a, &a->q[i].snap);
            return;
        }
}

static void step_hook(void *ctx) { progress(ctx); }

/* 1 if a point-to-point copy of version v or a newer one is queued (the
 * leader sent it to actors that had not finished a broadcast). */
static int superseded(const Actor *a, int64_t v) {
    for (int i = a->q_head; i < a->q_len; i++)
        if (a->q[i].tag == MSG_SNAPSHOT && a->q[i].snap.bcast_seq < 0 && a->q[i].snap.version >= v) return 1;
    return 0;
}

/* Replaces the policy with the snapshot of header s, in its turn: weights
 * point-to-point arrive in place, checked against the header's count and
 * checksum; a broadcast's are waited for in the stage (checked there) and
 * copied in, unless a point-to-point copy of it comes first (the broadcast
 * is stuck behind a stopped actor): then it is left to finish, unused. */
static void take_snapshot(Actor *a, const RolloutSnapshot *s) {
    if (s->bcast_seq < 0) {
        if (rollout_snapshot_recv(s, a->policy.params, a->policy.n_params, a->layout->learners[0], MPI_COMM_WORLD))
            err_die("actor %d: %s", a->layout->index, err_msg());
    } else {
        if (a->bcasts_posted == s->bcast_seq) post_bcast(a, s);
        for (;;) {
            progress(a);
            if (a->stage_state == STAGE_READY && a->stage_snap.bcast_seq == s->bcast_seq) break;
            if (superseded(a, s->version)) {
                if (a->stage_state == STAGE_RECEIVING && a->stage_snap.bcast_seq == s->bcast_seq)
                    a->stage_state = STAGE_DROPPED;
                return;
            }
            nap();
        }
        memcpy(a->policy.params, a->stage, a->policy.n_params * sizeof(float));
        a->stage_state = STAGE_FREE;
        progress(a); /* the next broadcast, if one is queued */
    }
    gpt_pack_decode(&a->policy); /* once per snapshot, not once per order */
    a->version = (int)s->version;
    test_stop(a, s->version, "holding");
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
static int stop_waiting(const Actor *a) {
    for (int i = a->q_head; i < a->q_len; i++)
        if (a->q[i].tag == MSG_STOP) return 1;
    return msg_probe(a->layout->learners[0], MSG_STOP, MPI_COMM_WORLD, NULL, NULL);
}

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
    if (!strcmp(config_str(cfg, "snapshot_send"), "bcast")) { /* p2p: nothing to move on between steps */
        a->gen.step_hook = step_hook;
        a->gen.step_ctx = a;
    }
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

/* The next message in its turn (waiting, with the broadcasts moving on). */
static Queued next_message(Actor *a) {
    while (a->q_head == a->q_len) {
        if (a->gen.step_hook) progress(a);
        else pull(a);
        if (a->q_head == a->q_len) nap();
    }
    Queued e = a->q[a->q_head++];
    if (a->q_head == a->q_len) a->q_head = a->q_len = 0;
    return e;
}

int actor_run(const Config *cfg, const PpoLayout *l) {
    Actor a;
    msg_check_all(actor_setup(&a, cfg, l), "ppo: ");
    MsgBuf b;
    for (;;) {
        Queued e = next_message(&a);
        int tag = e.tag, src = e.src;
        if (tag == MSG_STOP) {
            if (rollout_stop_unpack(&e.b)) err_die("actor: %s", err_msg());
            msg_buf_free(&e.b);
            break;
        }
        if (tag == MSG_SNAPSHOT) {
            take_snapshot(&a, &e.snap);
            serve_deferred(&a);
        } else {
            RolloutOrder o;
            if (rollout_order_unpack(&e.b, &o)) err_die("actor: from rank %d: %s", src, err_msg());
            take_order(&a, &o);
        }
        msg_buf_free(&e.b);
    }
    msg_buf_init(&b);
    rollout_stopped_pack(&b);
    msg_send(&b, l->learners[0], MSG_STOPPED, MPI_COMM_WORLD);
    msg_buf_free(&b);
    while (a.stage_state == STAGE_RECEIVING || a.stage_state == STAGE_DROPPED) { /* no request left for Finalize */
        progress(&a);
        nap();
    }
    for (int i = a.q_head; i < a.q_len; i++) msg_buf_free(&a.q[i].b);
    free(a.q);
    free(a.stage);
    for (int i = 0; i < a.n_deferred; i++) rollout_order_free(&a.deferred[i]);
    free(a.deferred);
    ppo_prompts_free(&a.prompts);
    gpt_free(&a.policy);
    tok_free(a.tok);
    return 0;
}
