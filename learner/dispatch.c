/* dispatch — work orders, snapshots, scored batches, rank deadlines and the
 * end of the job, for the PPO learner; see dispatch.h. Every wait here
 * polls (MPI_Iprobe / MPI_Test and a 1 ms nap): a waiting rank must not
 * spin a core, and it must go on receiving while it waits, or a rewarder
 * blocked sending to it would close a circle of waits. */
#include "learner/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/rng.h"

/* A send in flight: a byte message, or a snapshot (its header in buf, the
 * weights read from the learner's parameters). */
typedef struct DispatchSend {
    MPI_Request req[2];
    int n_req, dest, snapshot; /* dest -1: the broadcast of a snapshot's weights (snapshot 2) */
    double since;
    MsgBuf buf;
} DispatchSend;

/* Progress an actor reported for an order of a later iteration. */
typedef struct DispatchNote {
    int64_t iteration;
    int chunk, actor, rewarder;
} DispatchNote;

/* One of this learner's chunks of the iteration being gathered. */
typedef struct {
    int chunk, actor, rewarder;
    int sampled;        /* its actor reported it on its way to the rewarder */
    double since;       /* when its holder got it */
    int arrived;
    RolloutBatch batch;
} Wait;

static void nap(void) {
    struct timespec t = {0, 1000000}; /* 1 ms: ~1% CPU while waiting */
    nanosleep(&t, NULL);
}

static int is_leader(const Dispatch *d) { return d->c.lay->index == 0; }
static const char *role_of(const Dispatch *d, int rank) { return ppo_role_name(ppo_layout_role_of(d->c.lay, rank)); }

/* Orders of iteration it sample from this version: the first snapshot for
 * the first lag + 1 iterations, then the one lag versions back. */
static int64_t version_of(const Dispatch *d, int64_t it) {
    return it - d->c.lag > d->c.start ? it - d->c.lag : d->c.start;
}

int dispatch_init(Dispatch *d, const DispatchConfig *c) {
    memset(d, 0, sizeof *d);
    d->c = *c;
    d->n_chunks = c->chunk > 0 ? c->batch / c->chunk : 0;
    if (d->c.rounds < 1) d->c.rounds = 1;
    d->perm_epoch = -1;
    if (watch_init(&d->watch, c->lay->world, c->rank_timeout, fs_now())) return -1;
    d->kl_of_version = err_calloc((size_t)c->lag + 1, sizeof(double));
    d->perm = err_malloc((size_t)(c->n_prompts > 0 ? c->n_prompts : 1) * sizeof(int));
    d->holds = err_malloc((size_t)c->lay->world * sizeof *d->holds);
    for (int r = 0; r < c->lay->world; r++) d->holds[r] = -1;
    d->bcast_last.bcast_seq = -1;
    d->sent_version = -1;
    d->way = -1;
    if (c->bcast && is_leader(d) && c->lay->snap_comm == MPI_COMM_NULL)
        return err_set("snapshot_send = bcast: the leading learner has no snapshot communicator");
    return 0;
}

void dispatch_free(Dispatch *d) {
    for (int i = 0; i < d->n_out; i++) msg_buf_free(&d->out[i].buf);
    for (int i = 0; i < d->n_pending; i++) rollout_batch_free(&d->pending[i]);
    free(d->out);
    free(d->pending);
    free(d->notes);
    free(d->perm);
    free(d->kl_of_version);
    free(d->holds);
    watch_free(&d->watch);
    memset(d, 0, sizeof *d);
}

void dispatch_note_kl(Dispatch *d, int64_t version, double kl) { d->kl_of_version[version % (d->c.lag + 1)] = kl; }

const char *dispatch_why(const Dispatch *d) { return d->why; }

/* ---- the prompt schedule and the orders ---------------------------------- */

int dispatch_prompt_of(Dispatch *d, int64_t g) {
    int n = d->c.n_prompts, *perm = d->perm;
    int64_t epoch = g / n, pos = g % n;
    if (epoch != d->perm_epoch) { /* a fresh seeded permutation per pass */
        for (int i = 0; i < n; i++) perm[i] = i;
        Rng r;
        rng_seed(&r, rng_mix64(d->c.seed ^ (uint64_t)(epoch + 1) * 0x9e3779b97f4a7c15ULL));
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint32_t)i + 1), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        d->perm_epoch = epoch;
    }
    return perm[pos];
}

/* The prompt of group `g` of a fill round's chunk c of iteration it: drawn
 * at random, seeded by (seed, it, c, g), so that the schedule of the first
 * round (and so every run without filter_groups) is left as it was. */
static int fill_prompt_of(const Dispatch *d, int64_t it, int c, int g) {
    Rng r;
    rng_seed(&r, rng_mix64(d->c.seed ^ rng_mix64((uint64_t)it * 0x9e3779b97f4a7c15ULL + (uint64_t)c * 131u + (uint64_t)g)));
    return (int)rng_below(&r, (uint32_t)d->c.n_prompts);
}

/* The order of chunk c of iteration it, as the leader first sends it; the
 * owner rebuilds the same one to send it elsewhere. idx: chunk entries.
 * Chunks of fill round k (filter_groups) are k * n_chunks + c. */
static RolloutOrder order_of(Dispatch *d, int64_t it, int c, int32_t *idx) {
    for (int i = 0; i < d->c.chunk; i++) /* group g = global sample / G: one prompt, G consecutive samples */
        idx[i] = c < d->n_chunks ? dispatch_prompt_of(d, (it * d->c.batch + (int64_t)c * d->c.chunk + i) / d->c.group)
                                 : fill_prompt_of(d, it, c, i / d->c.group);
    int64_t v = version_of(d, it);
    const PpoLayout *l = d->c.lay;
    return (RolloutOrder){.iteration = (int32_t)it,
                          .chunk = c,
                          .lambda = d->kl_of_version[v % (d->c.lag + 1)],
                          .seed = rng_mix64(d->c.seed * 1000003u + (uint64_t)it * 7919u + (uint64_t)c),
                          .version = (int32_t)v,
                          .rewarder = l->rewarders[c % l->n_rewarders],
                          .n = d->c.chunk,
                          .prompt_index = idx};
}

/* ---- sends in flight ------------------------------------------------------- */

static DispatchSend *new_send(Dispatch *d, int dest) {
    d->out = err_realloc(d->out, (size_t)(d->n_out + 1) * sizeof *d->out);
    DispatchSend *s = &d->out[d->n_out++];
    memset(s, 0, sizeof *s);
    msg_buf_init(&s->buf);
    s->dest = dest;
    s->since = fs_now();
    return s;
}

/* Posts b's bytes to dest; the send owns them from now on. */
static void post(Dispatch *d, MsgBuf *b, int dest, int tag) {
    DispatchSend *s = new_send(d, dest);
    s->buf = *b;
    msg_buf_init(b);
    msg_isend(&s->buf, dest, tag, MPI_COMM_WORLD, &s->req[0]);
    s->n_req = 1;
}

/* Retires the sends that completed; returns how many snapshot sends are left. */
static int test_sends(Dispatch *d) {
    int snapshots = 0;
    for (int i = 0; i < d->n_out;) {
        DispatchSend *s = &d->out[i];
        int done = 0;
        MPI_Testall(s->n_req, s->req, &done, MPI_STATUSES_IGNORE);
        if (!done) {
            snapshots += s->snapshot;
            i++;
            continue;
        }
        msg_buf_free(&s->buf);
        d->out[i] = d->out[--d->n_out];
    }
    return snapshots;
}

static int take_incoming(Dispatch *d, int64_t it, Wait *w, int n_w, int *src);

/* Header and weights to one actor, point-to-point. */
static void send_p2p(Dispatch *d, const RolloutSnapshot *h, const float *params, size_t n, int dest) {
    DispatchSend *s = new_send(d, dest);
    rollout_snapshot_pack(h, &s->buf);
    rollout_snapshot_isend(&s->buf, params, n, dest, MPI_COMM_WORLD, s->req);
    s->n_req = 2;
    s->snapshot = 1;
}

/* 1 if actor rank has not finished the last broadcast. */
static int lacks_bcast(const Dispatch *d, int rank) {
    return d->bcast_last.bcast_seq >= 0 && d->holds[rank] < d->bcast_last.bcast_seq;
}

/* 1 if the next version may go by broadcast: every actor finished the last
 * one (so none has two in flight, and its staging buffer is free) and none
 * is late (a stopped actor never posts its part). Otherwise *why_rank: an
 * actor in the way. */
static int may_bcast(const Dispatch *d, int *why_rank) {
    const PpoLayout *l = d->c.lay;
    for (int a = 0; a < l->n_actors; a++)
        if (lacks_bcast(d, l->actors[a]) || watch_is_late(&d->watch, l->actors[a])) {
            *why_rank = l->actors[a];
            return 0;
        }
    return 1;
}

/* With snapshot_send = bcast, a line when versions change the way they go
 * (not for every version: a late actor may keep them point-to-point for
 * long). */
static void note_way(Dispatch *d, int bcast, int64_t version, int why_rank) {
    if (!d->c.bcast || bcast == d->way) return;
    if (!bcast)
        fprintf(stderr, "ppo: snapshot version %lld goes point-to-point: rank %d (actor) %s\n", (long long)version,
                why_rank, watch_is_late(&d->watch, why_rank) ? "is late" : "has not finished the last broadcast");
    else if (d->way >= 0)
        fprintf(stderr, "ppo: snapshot version %lld goes by broadcast again\n", (long long)version);
    d->way = bcast;
}

void dispatch_send_snapshot(Dispatch *d, const float *params, size_t n, int64_t version) {
    const PpoLayout *l = d->c.lay;
    int src;
    while (take_incoming(d, d->gathering, NULL, 0, &src)) {} /* word of finished broadcasts */
    test_sends(d);
    RolloutSnapshot h = rollout_snapshot_of(version, params, n); /* one checksum per version */
    d->sent_version = version;
    d->params = params;
    d->n_params = n;
    int why_rank = -1, bcast = d->c.bcast && may_bcast(d, &why_rank);
    note_way(d, bcast, version, why_rank);
    if (!bcast) {
        for (int a = 0; a < l->n_actors; a++) /* a late actor too: it needs the weights if it answers again */
            send_p2p(d, &h, params, n, l->actors[a]);
        d->n_p2p++;
        return;
    }
    h.bcast_seq = d->bcast_next++;
    for (int a = 0; a < l->n_actors; a++) { /* headers point-to-point: they say the weights come by broadcast */
        MsgBuf b;
        msg_buf_init(&b);
        rollout_snapshot_pack(&h, &b);
        post(d, &b, l->actors[a], MSG_SNAPSHOT);
    }
    DispatchSend *s = new_send(d, -1);
    s->snapshot = 2;
    s->n_req = 1;
    rollout_snapshot_ibcast((float *)params, n, 0, l->snap_comm, &s->req[0]); /* the root only reads */
    d->bcast_last = h;
    d->bcast_since = s->since;
    d->bcast_resent = 0;
    d->n_bcast++;
}

void dispatch_snapshot_counts(const Dispatch *d, int64_t *n_bcast, int64_t *n_p2p) {
    *n_bcast = d->n_bcast;
    *n_p2p = d->n_p2p;
}

/* The last broadcast point-to-point to every actor that has not finished
 * it, once, while the learner still holds its weights (they are the last
 * version sent). The late actor gets it too; one stuck behind it in the
 * tree takes this copy and goes on (see actor.c). */
static void resend_bcast(Dispatch *d) {
    const PpoLayout *l = d->c.lay;
    if (d->bcast_resent || d->bcast_last.version != d->sent_version) return;
    RolloutSnapshot h = d->bcast_last;
    h.bcast_seq = -1;
    int k = 0;
    for (int a = 0; a < l->n_actors; a++)
        if (lacks_bcast(d, l->actors[a])) {
            send_p2p(d, &h, d->params, d->n_params, l->actors[a]);
            k++;
        }
    d->bcast_resent = 1;
    if (k)
        fprintf(stderr, "ppo: snapshot version %lld: sent again point-to-point to %d actor(s) that have not finished "
                "its broadcast; later versions go point-to-point while an actor is late\n",
                (long long)h.version, k);
}

void dispatch_send_orders(Dispatch *d, int64_t it) {
    dispatch_send_round(d, it, 0);
}

void dispatch_send_round(Dispatch *d, int64_t it, int round) {
    const PpoLayout *l = d->c.lay;
    int32_t idx[d->c.chunk];
    for (int c = round * d->n_chunks; c < (round + 1) * d->n_chunks; c++) {
        RolloutOrder o = order_of(d, it, c, idx);
        MsgBuf b;
        msg_buf_init(&b);
        rollout_order_pack(&o, &b);
        post(d, &b, l->actors[c % l->n_actors], MSG_ORDER);
    }
    test_sends(d);
}

/* ---- receiving ------------------------------------------------------------ */

/* What the learner alone can check of a scored batch: that it answers an
 * order this learner owns and its samples fit the prompts and the context
 * (slots and packed rows are sized by them). */
static int check_scored(const Dispatch *d, const RolloutBatch *rb) {
    const PpoLayout *l = d->c.lay;
    if (rb->chunk >= d->n_chunks * d->c.rounds || ppo_layout_owner(l, rb->chunk) != l->rank)
        return err_set("scored batch message: chunk: %d is not one of this learner's %d chunks", rb->chunk,
                       d->n_chunks * d->c.rounds);
    if (rb->n != d->c.chunk) return err_set("scored batch message: n: %d samples, a chunk has %d", rb->n, d->c.chunk);
    for (int i = 0; i < rb->n; i++) {
        const Rollout *r = &rb->r[i];
        if (r->prompt_index >= d->c.n_prompts)
            return err_set("scored batch message: sample %d: prompt_index: %d of %d prompts", i, r->prompt_index,
                           d->c.n_prompts);
        if (r->resp_len > d->c.max_new || r->prompt_len + r->resp_len > d->c.n_ctx)
            return err_set("scored batch message: sample %d: resp_len: %d response tokens after %d of prompt (max_new "
                           "%d, context %d)", i, r->resp_len, r->prompt_len, d->c.max_new, d->c.n_ctx);
    }
    return 0;
}

/* The wait entry of chunk c, or NULL (not gathering, or not ours, or of
 * another round). */
static Wait *wait_of(Wait *w, int n_w, int c, const Dispatch *d) {
    int in_round = c - d->round * d->n_chunks;
    if (in_round < 0) return NULL;
    int k = in_round / d->c.lay->n_learners;
    return w && k < n_w && w[k].chunk == c ? &w[k] : NULL;
}

static void keep_pending(Dispatch *d, RolloutBatch *rb) {
    d->pending = err_realloc(d->pending, (size_t)(d->n_pending + 1) * sizeof *d->pending);
    d->pending[d->n_pending++] = *rb;
}

/* A batch for the iteration being gathered fills its chunk; one for a later
 * iteration waits; a duplicate (the late rank answered after all) or one of
 * an abandoned iteration is dropped. */
static void take_scored(Dispatch *d, int64_t it, Wait *w, int n_w, MsgBuf *b, int src) {
    RolloutBatch rb;
    if (rollout_batch_unpack(b, 1, &rb) || check_scored(d, &rb)) err_die("learner: from rank %d: %s", src, err_msg());
    Wait *x = rb.iteration == it ? wait_of(w, n_w, rb.chunk, d) : NULL;
    if (x && !x->arrived) {
        x->batch = rb;
        x->arrived = 1;
    } else if (rb.iteration > it) {
        keep_pending(d, &rb);
    } else {
        rollout_batch_free(&rb);
    }
}

static void add_note(Dispatch *d, const RolloutProgress *p, int actor) {
    d->notes = err_realloc(d->notes, (size_t)(d->n_notes + 1) * sizeof *d->notes);
    d->notes[d->n_notes++] = (DispatchNote){.iteration = p->iteration, .chunk = p->chunk, .actor = actor,
                                            .rewarder = p->rewarder};
}

/* The chunk's holder is now its rewarder, if the report comes from the
 * actor that holds it (not from a late one whose work went elsewhere). */
static void mark_sampled(Wait *x, int actor, int rewarder, double now) {
    if (!x || x->arrived || x->sampled || x->actor != actor) return;
    x->sampled = 1;
    x->rewarder = rewarder;
    x->since = now;
}

static void take_progress(Dispatch *d, int64_t it, Wait *w, int n_w, MsgBuf *b, int src) {
    RolloutProgress p;
    if (rollout_progress_unpack(b, &p)) err_die("learner: from rank %d: %s", src, err_msg());
    if (p.chunk >= d->n_chunks * d->c.rounds || ppo_layout_owner(d->c.lay, p.chunk) != d->c.lay->rank ||
        ppo_layout_role_of(d->c.lay, p.rewarder) != PPO_REWARDER)
        err_die("learner: from rank %d: progress message: chunk %d / rewarder %d is not an order of this learner",
                src, p.chunk, p.rewarder);
    if (p.iteration == it) mark_sampled(wait_of(w, n_w, p.chunk, d), src, p.rewarder, fs_now());
    else if (p.iteration > it) add_note(d, &p, src);
}

/* Receives one message from an actor or rewarder if one is waiting, and
 * returns its tag (0: none). Scored batches and progress are taken as for
 * gathering iteration it into w (w NULL: not gathering: what is of it and
 * before is dropped, what is of later iterations kept). *src: the sender. */
static int take_incoming(Dispatch *d, int64_t it, Wait *w, int n_w, int *src) {
    int tag;
    if (!msg_probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, src, &tag)) return 0;
    MsgBuf b;
    msg_buf_init(&b);
    msg_recv(&b, *src, tag, MPI_COMM_WORLD, NULL);
    watch_heard(&d->watch, *src, fs_now());
    if (tag == MSG_SCORED) {
        take_scored(d, it, w, n_w, &b, *src);
    } else if (tag == MSG_PROGRESS) {
        take_progress(d, it, w, n_w, &b, *src);
    } else if (tag == MSG_STOPPED) {
        if (rollout_stopped_unpack(&b)) err_die("learner: from rank %d: %s", *src, err_msg());
    } else if (tag == MSG_HOLDS && is_leader(d) && ppo_layout_role_of(d->c.lay, *src) == PPO_ACTOR) {
        RolloutHolds h;
        if (rollout_holds_unpack(&b, &h)) err_die("learner: from rank %d: %s", *src, err_msg());
        if (h.bcast_seq >= d->bcast_next)
            err_die("learner: from rank %d: snapshot held message: bcast_seq: %lld, but %lld broadcast(s) were sent",
                    *src, (long long)h.bcast_seq, (long long)d->bcast_next);
        if (h.bcast_seq > d->holds[*src]) d->holds[*src] = h.bcast_seq;
    } else {
        err_die("learner: unexpected %s message (tag %d) from rank %d (a %s)", msg_tag_name(tag), tag, *src,
                role_of(d, *src));
    }
    msg_buf_free(&b);
    return tag;
}

/* ---- deadlines --------------------------------------------------------------- */

/* 1 if a rank of rank's role other than itself is not late. */
static int has_spare(const Dispatch *d, int rank) {
    const PpoLayout *l = d->c.lay;
    int actor = ppo_layout_role_of(l, rank) == PPO_ACTOR;
    const int *ranks = actor ? l->actors : l->rewarders;
    int n = actor ? l->n_actors : l->n_rewarders;
    return watch_pick(&d->watch, ranks, n, 0, rank) >= 0;
}

static void warn_late(const Dispatch *d, int rank, double now) {
    double t = d->c.rank_timeout;
    err_warn("ppo: rank %d (%s) has not answered for %.1f s (rank_timeout %g s): %s; if it is still silent after "
             "%g s, the job ends with a checkpoint",
             rank, role_of(d, rank), watch_silent_for(&d->watch, rank, now), t,
             has_spare(d, rank) ? "its work goes to other ranks" : "no other rank of its role can take its work",
             2 * t);
}

static int pos_of(const int *ranks, int n, int rank) {
    for (int i = 0; i < n; i++)
        if (ranks[i] == rank) return i;
    return 0;
}

/* Sends the chunk's order again, to an actor and a rewarder that are not
 * late (the actor that sampled it is left out if another can do it: it may
 * be blocked sending to the late rewarder). Nothing if there is none. */
static void reassign(Dispatch *d, int64_t it, Wait *x, double now, int verbose) {
    const PpoLayout *l = d->c.lay;
    const Watch *wt = &d->watch;
    int actor = watch_pick(wt, l->actors, l->n_actors, pos_of(l->actors, l->n_actors, x->actor) + 1, x->actor);
    if (actor < 0 && x->sampled && !watch_is_late(wt, x->actor)) actor = x->actor;
    int rewarder = x->rewarder;
    if (watch_is_late(wt, rewarder))
        rewarder = watch_pick(wt, l->rewarders, l->n_rewarders, pos_of(l->rewarders, l->n_rewarders, rewarder) + 1,
                              rewarder);
    if (actor < 0 || rewarder < 0) return;
    int32_t idx[d->c.chunk];
    RolloutOrder o = order_of(d, it, x->chunk, idx);
    o.rewarder = rewarder;
    MsgBuf b;
    msg_buf_init(&b);
    rollout_order_pack(&o, &b);
    post(d, &b, actor, MSG_ORDER);
    if (verbose)
        fprintf(stderr, "ppo: iteration %lld, chunk %d: sent again, to actor rank %d and rewarder rank %d\n",
                (long long)it, x->chunk, actor, rewarder);
    x->actor = actor;
    x->rewarder = rewarder;
    x->sampled = 0;
    x->since = now;
}

/* Warns about ranks that just became late and moves their chunks; returns
 * a rank past its second deadline (d->why says so), or -1. */
static int check_deadlines(Dispatch *d, int64_t it, Wait *w, int n_w) {
    double now = fs_now();
    for (int k = 0; k < n_w; k++) {
        if (w[k].arrived) continue;
        int holder = w[k].sampled ? w[k].rewarder : w[k].actor;
        WatchState s = watch_check(&d->watch, holder, w[k].since, now);
        if (s == WATCH_NEWLY_LATE) warn_late(d, holder, now);
        /* named once; while it stays late its chunks move at once, silently */
        if (s == WATCH_NEWLY_LATE || s == WATCH_LATE) reassign(d, it, &w[k], now, s == WATCH_NEWLY_LATE);
    }
    for (int i = 0; i < d->n_out; i++) {
        WatchState s = watch_check(&d->watch, d->out[i].dest, d->out[i].since, now);
        if (s == WATCH_NEWLY_LATE)
            warn_late(d, d->out[i].dest, now);
    }
    /* actors that have not finished the last broadcast hold it, while its
     * weights are still the learner's (later versions are sent otherwise) */
    const PpoLayout *l = d->c.lay;
    for (int a = 0; d->bcast_last.version == d->sent_version && a < l->n_actors; a++) {
        if (!lacks_bcast(d, l->actors[a])) continue;
        WatchState s = watch_check(&d->watch, l->actors[a], d->bcast_since, now);
        if (s == WATCH_NEWLY_LATE) warn_late(d, l->actors[a], now);
        if (s == WATCH_NEWLY_LATE || s == WATCH_LATE) resend_bcast(d);
    }
    for (int r = 0; r < d->c.lay->world; r++) {
        if (!watch_is_late(&d->watch, r) || watch_check(&d->watch, r, now, now) != WATCH_GONE) continue;
        snprintf(d->why, sizeof d->why, "rank %d (%s) has not answered for %.1f s, twice rank_timeout (%g s)", r,
                 role_of(d, r), watch_silent_for(&d->watch, r, now), d->c.rank_timeout);
        return r;
    }
    return -1;
}

/* ---- gathering ---------------------------------------------------------------- */

/* This learner's chunks of iteration it (of round d->round), with what is
 * already known of them: batches that came early, progress reported early. */
static Wait *waits_of(Dispatch *d, int64_t it, int *n_w) {
    const PpoLayout *l = d->c.lay;
    int n = 0;
    for (int c = l->index; c < d->n_chunks; c += l->n_learners) n++;
    Wait *w = err_calloc((size_t)(n ? n : 1), sizeof *w);
    double now = fs_now();
    for (int k = 0; k < n; k++) {
        int c = d->round * d->n_chunks + l->index + k * l->n_learners;
        w[k] = (Wait){.chunk = c, .actor = l->actors[c % l->n_actors], .rewarder = l->rewarders[c % l->n_rewarders],
                      .since = now};
    }
    for (int i = 0; i < d->n_notes;) {
        DispatchNote *t = &d->notes[i];
        if (t->iteration == it) mark_sampled(wait_of(w, n, t->chunk, d), t->actor, t->rewarder, now);
        if (t->iteration > it) {
            i++;
            continue;
        }
        *t = d->notes[--d->n_notes];
    }
    for (int i = 0; i < d->n_pending;) {
        RolloutBatch *rb = &d->pending[i];
        if (rb->iteration > it) {
            i++;
            continue;
        }
        Wait *x = rb->iteration == it ? wait_of(w, n, rb->chunk, d) : NULL;
        if (x && !x->arrived) {
            x->batch = *rb;
            x->arrived = 1;
        } else {
            rollout_batch_free(rb);
        }
        *rb = d->pending[--d->n_pending];
    }
    *n_w = n;
    return w;
}

static int all_arrived(const Wait *w, int n) {
    for (int k = 0; k < n; k++)
        if (!w[k].arrived) return 0;
    return 1;
}

/* Tells the other learners to leave their iteration too. */
static void tell_learners(const Dispatch *d, RolloutAbandon why) {
    const PpoLayout *l = d->c.lay;
    MsgBuf b;
    msg_buf_init(&b);
    rollout_abandon_pack(why, &b);
    for (int k = 0; k < l->n_learners; k++)
        if (k != l->index) msg_send(&b, k, MSG_ABANDON, l->role_comm);
    msg_buf_free(&b);
}

/* A learner that left its iteration says why (0: none has). */
static int told_by_learner(const Dispatch *d) {
    int src;
    if (d->c.lay->n_learners < 2 || !msg_probe(MPI_ANY_SOURCE, MSG_ABANDON, d->c.lay->role_comm, &src, NULL)) return 0;
    MsgBuf b;
    RolloutAbandon why;
    msg_buf_init(&b);
    msg_recv(&b, src, MSG_ABANDON, d->c.lay->role_comm, NULL);
    if (rollout_abandon_unpack(&b, &why)) err_die("learner: from learner %d: %s", src, err_msg());
    msg_buf_free(&b);
    return why;
}

/* Why to leave the iteration now, or 0. */
static int reason_to_leave(Dispatch *d, int64_t it, Wait *w, int n_w) {
    if (*d->c.stop) return ROLLOUT_ABANDON_SIGNAL;
    int told = told_by_learner(d);
    if (told) return -told; /* negative: the others know already */
    return check_deadlines(d, it, w, n_w) >= 0 ? ROLLOUT_ABANDON_DEADLINE : 0;
}

int dispatch_gather(Dispatch *d, int64_t it, RolloutBatch **out, int *n_out, double *t_wait) {
    return dispatch_gather_round(d, it, 0, out, n_out, t_wait);
}

int dispatch_gather_round(Dispatch *d, int64_t it, int round, RolloutBatch **out, int *n_out, double *t_wait) {
    int n_w, reason = 0, snapshots = 1;
    d->why[0] = 0;
    d->gathering = it;
    d->round = round;
    Wait *w = waits_of(d, it, &n_w);
    double t0 = fs_now();
    while (!all_arrived(w, n_w) || snapshots) {
        int src;
        if (take_incoming(d, it, w, n_w, &src)) continue;
        snapshots = test_sends(d);
        if ((reason = reason_to_leave(d, it, w, n_w))) break;
        if (!all_arrived(w, n_w) || snapshots) nap();
    }
    *t_wait = fs_now() - t0;
    if (reason > 0 && d->c.lay->n_learners > 1) tell_learners(d, (RolloutAbandon)reason);
    *n_out = 0;
    *out = err_malloc((size_t)(n_w ? n_w : 1) * sizeof **out);
    for (int k = 0; k < n_w; k++) {
        if (!w[k].arrived) continue;
        if (reason) rollout_batch_free(&w[k].batch);
        else (*out)[(*n_out)++] = w[k].batch;
    }
    free(w);
    return reason < 0 ? -reason : reason;
}

int dispatch_agree(Dispatch *d, int reason) {
    const PpoLayout *l = d->c.lay;
    if (l->n_learners < 2) return reason;
    int all = 0, done = 0, src;
    MPI_Request r;
    MPI_Iallreduce(&reason, &all, 1, MPI_INT, MPI_MAX, l->role_comm, &r);
    for (MPI_Test(&r, &done, MPI_STATUS_IGNORE); !done; MPI_Test(&r, &done, MPI_STATUS_IGNORE)) {
        /* batches of later iterations and progress keep coming meanwhile */
        if (!take_incoming(d, d->gathering, NULL, 0, &src)) nap();
        test_sends(d);
    }
    return all;
}

/* ---- the end ------------------------------------------------------------------- */

/* Stops ranks[0..n) and waits for each that is not late to say it stopped,
 * dropping whatever else still comes; at most `limit` seconds. */
static void stop_ranks(Dispatch *d, const int *ranks, int n, char *stopped, double limit) {
    MsgBuf b;
    for (int i = 0; i < n; i++) {
        if (watch_is_late(&d->watch, ranks[i])) continue;
        msg_buf_init(&b);
        rollout_stop_pack(&b);
        post(d, &b, ranks[i], MSG_STOP);
    }
    double t0 = fs_now();
    for (;;) {
        int waiting = 0, src, tag;
        for (int i = 0; i < n; i++) waiting += !stopped[ranks[i]] && !watch_is_late(&d->watch, ranks[i]);
        if (!waiting || fs_now() - t0 > limit) return;
        if ((tag = take_incoming(d, INT64_MAX, NULL, 0, &src))) {
            if (tag == MSG_STOPPED) stopped[src] = 1;
            continue;
        }
        test_sends(d);
        nap();
    }
}

/* Other learners: drop what still comes until the leader says all is done. */
static void drain_until_done(Dispatch *d) {
    MPI_Comm rc = d->c.lay->role_comm;
    while (!msg_probe(0, MSG_STOP, rc, NULL, NULL)) {
        int src;
        if (!take_incoming(d, INT64_MAX, NULL, 0, &src)) nap();
        test_sends(d);
    }
    MsgBuf b;
    msg_buf_init(&b);
    msg_recv(&b, 0, MSG_STOP, rc, NULL);
    if (rollout_stop_unpack(&b)) err_die("learner: from the leading learner: %s", err_msg());
    msg_buf_free(&b);
}

/* The first actor or rewarder that did not stop, or -1. */
static int first_not_stopped(const Dispatch *d, const char *stopped) {
    const PpoLayout *l = d->c.lay;
    for (int r = 0; r < l->world; r++)
        if (ppo_layout_role_of(l, r) != PPO_LEARNER && !stopped[r]) return r;
    return -1;
}

int dispatch_shutdown(Dispatch *d, int after_signal) {
    const PpoLayout *l = d->c.lay;
    if (!is_leader(d)) {
        drain_until_done(d);
        return 0;
    }
    double limit = after_signal && d->c.rank_timeout > 3 ? 3 : d->c.rank_timeout;
    char *stopped = err_calloc((size_t)l->world, 1);
    stop_ranks(d, l->actors, l->n_actors, stopped, limit);   /* first: nothing new reaches the rewarders */
    stop_ranks(d, l->rewarders, l->n_rewarders, stopped, limit);
    MsgBuf b;
    msg_buf_init(&b);
    rollout_stop_pack(&b);
    for (int k = 1; k < l->n_learners; k++) msg_send(&b, k, MSG_STOP, l->role_comm);
    msg_buf_free(&b);
    int r = first_not_stopped(d, stopped), rc = 0;
    test_sends(d);
    if (r >= 0)
        rc = err_set("rank %d (%s) did not stop (silent for %.1f s)", r, role_of(d, r),
                     watch_silent_for(&d->watch, r, fs_now()));
    else if (d->n_out && d->out[0].dest < 0)
        rc = err_set("the broadcast of snapshot version %lld never completed", (long long)d->bcast_last.version);
    else if (d->n_out)
        rc = err_set("a send to rank %d (%s) never completed", d->out[0].dest, role_of(d, d->out[0].dest));
    free(stopped);
    return rc;
}
