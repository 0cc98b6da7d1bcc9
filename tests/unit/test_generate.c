/* Tests for common/model/generate.c: the batch's sampling runs over the kernel
 * threads with one random stream per sequence, so the tokens and log-probs
 * are the same bits on 1 and 2 threads, and a sequence's draws follow the
 * stream seeded by its place in the batch; a sampling failure on a pool
 * thread still reaches the caller as an error with its message. Batch
 * invariance: a sequence's bits do not depend on its neighbours, a shared
 * prefill, or the slot count of continuous batching; gpt_kv_copy forks a
 * cache exactly. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "tests/harness.h"

static void model(Gpt *m) {
    GptConfig c = {.vocab_size = 61, .n_ctx = 48, .n_layer = 2, .n_head = 2, .n_embd = 32, .head = GPT_HEAD_LM};
    gpt_init(m, &c);
    gpt_init_random(m, 7);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 20.0f; /* far from uniform */
}

static int run(const Gpt *m, int n, uint64_t seed, GenResult *r) {
    static int p0[] = {1, 2, 3}, p1[] = {4, 5}, p2[] = {6}, p3[] = {7, 8, 9, 10}, p4[] = {11}, p5[] = {12, 13};
    const int *prompts[] = {p0, p1, p2, p3, p4, p5};
    int len[] = {3, 2, 1, 4, 1, 2};
    /* temperature 1, top-p 0.9, stop on token 0 */
    GenConfig gc = {
        .max_new = 12, .eot = 0, .sampler = {.greedy = 0, .temperature = 1.0f, .top_k = 0, .top_p = 0.9f}};
    Rng rng;
    rng_seed(&rng, seed);
    return gen_run(m, prompts, len, n, &gc, &rng, r);
}

static int same(const GenResult *a, const GenResult *b, int n) {
    for (int i = 0; i < n; i++) {
        if (a->len[i] != b->len[i] || a->stop[i] != b->stop[i]) return 0;
        size_t k = (size_t)a->len[i];
        if (memcmp(a->tokens[i], b->tokens[i], k * sizeof(int)) ||
            memcmp(a->logp_sample[i], b->logp_sample[i], k * sizeof(float)) ||
            memcmp(a->logp_model[i], b->logp_model[i], k * sizeof(float)))
            return 0;
    }
    return 1;
}

TEST(gen_same_bits_on_one_and_two_threads) {
    Gpt m;
    model(&m);
    int saved = openblas_get_num_threads();
    GenResult r1, r2, r3;
    openblas_set_num_threads(1);
    CHECK(run(&m, 6, 3, &r1) == 0);
    openblas_set_num_threads(2);
    CHECK(run(&m, 6, 3, &r2) == 0);
    CHECK(same(&r1, &r2, 6));
    CHECK(run(&m, 6, 4, &r3) == 0); /* another seed gives other samples: the check can fail */
    CHECK(!same(&r1, &r3, 6));
    openblas_set_num_threads(saved);
    gen_result_free(&r1), gen_result_free(&r2), gen_result_free(&r3);
    gpt_free(&m);
}

/* Sequence i's stream is the i-th draw of the caller's generator: the first
 * sequences of a batch sample the same tokens whatever follows them. */
TEST(gen_sequence_streams_do_not_depend_on_later_sequences) {
    Gpt m;
    model(&m);
    GenResult all, two;
    CHECK(run(&m, 6, 9, &all) == 0);
    CHECK(run(&m, 2, 9, &two) == 0);
    for (int i = 0; i < 2; i++) {
        CHECK(all.len[i] == two.len[i]);
        CHECK(memcmp(all.tokens[i], two.tokens[i], (size_t)two.len[i] * sizeof(int)) == 0);
    }
    gen_result_free(&all), gen_result_free(&two);
    gpt_free(&m);
}

TEST(gen_sampling_failure_on_pool_thread_is_reported) {
    Gpt m;
    model(&m);
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(2);
    for (int i = 0; i < m.cfg.n_embd; i++) m.p.lnf_b[i] = NAN; /* every logit NaN */
    GenResult r;
    err_set("(none)");
    CHECK(run(&m, 6, 1, &r) == -1);
    CHECKF(strstr(err_msg(), "sampler") != NULL, "message: %s", err_msg());
    openblas_set_num_threads(saved);
    gpt_free(&m);
}

/* Shared prefill: groups of one prompt (by pointer or by content) are fed
 * once and fork the cache; every sample's tokens and log-probs are the bits
 * of prefilling each sequence itself (GenConfig.prefill_each), with the
 * packed head and without, and the samples of a group still differ (each
 * has its own stream). */
static int run_groups(const Gpt *m, int each, GenResult *r) {
    static int a[] = {3, 1, 4, 1, 5}, b[] = {9, 2, 6}, b2[] = {9, 2, 6}, c[] = {5, 3};
    const int *prompts[] = {a, a, a, b, b2, c, a, a};
    int len[] = {5, 5, 5, 3, 3, 2, 5, 5};
    GenConfig gc = {.max_new = 10, .eot = 0, .sampler = {.temperature = 3.0f, .top_p = 1.0f}, .prefill_each = each};
    Rng rng;
    rng_seed(&rng, 21);
    return gen_run(m, prompts, len, 8, &gc, &rng, r);
}

TEST(gen_shared_prefill_matches_prefilling_each_sequence) {
    Gpt m;
    model(&m);
    for (int packed = 0; packed < 2; packed++) {
        if (packed) gpt_pack_decode(&m);
        GenResult shared, each;
        CHECK(run_groups(&m, 0, &shared) == 0);
        CHECK(run_groups(&m, 1, &each) == 0);
        CHECK(same(&shared, &each, 8));
        int differ = 0; /* a group's samples are not copies of each other */
        for (int i = 1; i < 3; i++)
            differ |= shared.len[i] != shared.len[0] ||
                      memcmp(shared.tokens[i], shared.tokens[0], (size_t)shared.len[0] * sizeof(int));
        CHECK(differ);
        gen_result_free(&shared), gen_result_free(&each);
    }
    gpt_free(&m);
}

/* Batch invariance (gpt_forward_cached's rule): each of 40 sequences, with
 * prompts of 1..23 tokens (prefill and decoding steps over many chunks of
 * rows), samples the same bits in the batch as alone with its own stream
 * (sequence i of a batch draws the i-th seed of the caller's generator). */
TEST(gen_each_sequence_decodes_the_same_bits_alone_and_in_a_batch) {
    Gpt m;
    model(&m);
    enum { N = 40 };
    int store[N][23], len[N];
    const int *prompts[N];
    for (int i = 0; i < N; i++) {
        len[i] = 1 + (i * 7) % 23;
        for (int t = 0; t < len[i]; t++) store[i][t] = 1 + (i * 13 + t * 5) % 60;
        prompts[i] = store[i];
    }
    GenConfig gc = {.max_new = 12, .eot = 0, .sampler = {.temperature = 2.0f, .top_p = 1.0f}};
    for (int packed = 0; packed < 2; packed++) {
        if (packed) gpt_pack_decode(&m);
        Rng rng;
        rng_seed(&rng, 5);
        GenResult all;
        CHECK(gen_run(&m, prompts, len, N, &gc, &rng, &all) == 0);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            Rng solo;
            rng_seed(&solo, 5);
            for (int k = 0; k < i; k++) rng_u64(&solo);
            GenResult one;
            CHECK(gen_run(&m, prompts + i, len + i, 1, &gc, &solo, &one) == 0);
            GenResult row = {.len = all.len + i, .stop = all.stop + i, .tokens = all.tokens + i,
                             .logp_sample = all.logp_sample + i, .logp_model = all.logp_model + i};
            bad += !same(&row, &one, 1);
            gen_result_free(&one);
        }
        CHECKF(bad == 0, "%d of %d sequences differ (packed head: %d)", bad, N, packed);
        gen_result_free(&all);
    }
    gpt_free(&m);
}

/* Continuous batching: with S slots, S sequences decode at once and a
 * finished one's slot takes the next; every sequence's bits are those of
 * the run with all of them at once, for S = 1, 2, 3, 7, 16 (groups of a
 * repeated prompt then straddle admissions) and with the packed head. */
TEST(gen_slots_give_the_same_bits_as_one_batch) {
    Gpt m;
    model(&m);
    enum { N = 24 };
    int store[N][9], len[N];
    const int *prompts[N];
    for (int i = 0; i < N; i++) { /* groups of 3 samples of one prompt */
        int p = i / 3;
        len[i] = 1 + (p * 5) % 9;
        for (int t = 0; t < len[i]; t++) store[i][t] = 1 + (p * 11 + t * 7) % 60;
        prompts[i] = store[i];
    }
    const int slots[] = {1, 2, 3, 7, 16};
    for (int packed = 0; packed < 2; packed++) {
        if (packed) gpt_pack_decode(&m);
        GenConfig gc = {.max_new = 14, .eot = 0, .sampler = {.temperature = 2.0f, .top_p = 1.0f}};
        Rng rng;
        rng_seed(&rng, 8);
        GenResult all;
        CHECK(gen_run(&m, prompts, len, N, &gc, &rng, &all) == 0);
        int lens_differ = 0; /* sequences end at different steps: slots are reused */
        for (int i = 1; i < N; i++) lens_differ |= all.len[i] != all.len[0];
        CHECK(lens_differ);
        for (size_t k = 0; k < sizeof slots / sizeof *slots; k++) {
            gc.slots = slots[k];
            rng_seed(&rng, 8);
            GenResult r;
            CHECK(gen_run(&m, prompts, len, N, &gc, &rng, &r) == 0);
            CHECKF(same(&r, &all, N), "slots %d (packed head %d) differ from one batch", slots[k], packed);
            gen_result_free(&r);
        }
        gen_result_free(&all);
    }
    GenConfig bad = {.max_new = 4, .slots = -1, .sampler = {.temperature = 1.0f, .top_p = 1.0f}};
    Rng rng;
    rng_seed(&rng, 1);
    GenResult r;
    CHECK(gen_run(&m, prompts, len, N, &bad, &rng, &r) == -1);
    CHECK(strstr(err_msg(), "slots") != NULL);
    gpt_free(&m);
}

/* gpt_kv_copy: decoding a token after a forked cache gives the logits of
 * decoding it after the source's own past, to the bit. */
TEST(gpt_kv_copy_forks_a_sequence) {
    Gpt m;
    model(&m);
    GptKV kv;
    CHECK(gpt_kv_init(&kv, &m, 3, 16) == 0);
    int toks[] = {3, 1, 4, 1}, seq0[] = {0, 0, 0, 0}, seq2[] = {2, 2, 2, 2};
    int V = m.cfg.vocab_size;
    float out[4 * 61], x[61], y[61], z[61];
    CHECK(gpt_forward_cached(&m, &kv, toks, seq0, 4, NULL, out, V) == 0);
    CHECK(gpt_forward_cached(&m, &kv, toks, seq2, 4, NULL, out, V) == 0);
    gpt_kv_copy(&kv, &m, 1, 0);
    CHECK(kv.len[1] == 4);
    int next = 7, s0 = 0, s1 = 1, s2 = 2;
    CHECK(gpt_forward_cached(&m, &kv, &next, &s1, 1, NULL, x, V) == 0);
    CHECK(gpt_forward_cached(&m, &kv, &next, &s2, 1, NULL, y, V) == 0);
    CHECK(gpt_forward_cached(&m, &kv, &next, &s0, 1, NULL, z, V) == 0);
    CHECK(memcmp(x, y, sizeof x) == 0);
    CHECK(memcmp(x, z, sizeof x) == 0);
    gpt_kv_free(&kv);
    gpt_free(&m);
}

/* GenConfig.step_hook (the actor moves snapshot broadcasts on there): called
 * once before every decoding step, and the samples are the bits of a run
 * without it. */
static void count_step(void *ctx) { ++*(int *)ctx; }

TEST(gen_step_hook_called_each_step_results_unchanged) {
    Gpt m;
    model(&m);
    static int p0[] = {1, 2, 3}, p1[] = {4, 5}, p2[] = {6};
    const int *prompts[] = {p0, p1, p2};
    int len[] = {3, 2, 1}, calls = 0;
    GenConfig gc = {.max_new = 9, .eot = 0, .sampler = {.temperature = 1.0f, .top_p = 1.0f}};
    GenResult plain, hooked;
    Rng rng;
    rng_seed(&rng, 5);
    CHECK(gen_run(&m, prompts, len, 3, &gc, &rng, &plain) == 0);
    gc.step_hook = count_step;
    gc.step_ctx = &calls;
    rng_seed(&rng, 5);
    CHECK(gen_run(&m, prompts, len, 3, &gc, &rng, &hooked) == 0);
    CHECK(same(&plain, &hooked, 3));
    int steps = 0; /* every slot decodes at once: one step per token of the longest sequence */
    for (int i = 0; i < 3; i++) steps = plain.len[i] > steps ? plain.len[i] : steps;
    CHECKF(calls == steps, "%d calls, %d steps", calls, steps);
    gen_result_free(&plain), gen_result_free(&hooked);
    gpt_free(&m);
}
