/* group_gen — group generation as GRPO samples it: G samples of one
 * prompt, through gen_run the way the actor calls it (head packed, the
 * prompt in G consecutive sequences, so it is prefilled once and its cache
 * forked; multinomial sampling at temperature 1 with both log-probs
 * recorded). New tokens per second over the whole call (prefill included),
 * best of REPS; also with GenConfig.prefill_each = 1 (every copy prefilled),
 * to show what the shared prefill saves. tests/bench/run.sh compares it
 * with torch_bench.py --gen-repeat --sample (the prompt repeated G times,
 * batched). Usage:
 *   group_gen [VOCAB D LAYERS HEADS G PROMPT_LEN NEW REPS]
 * (default 50257 256 4 4 8 48 16 5). Prints one JSON line. A report, never
 * a test. */
#include <stdio.h>
#include <stdlib.h>

#include "common/fsutil.h"
#include "common/model/generate.h"
#include "common/model/gpt.h"
#include "common/model/ops.h"

static double group_tokens_per_s(const Gpt *m, int G, int P, int new_tokens, int reps, int prefill_each) {
    int *prompt = malloc(P * sizeof(int)), *len = malloc(G * sizeof(int));
    const int **p = malloc(G * sizeof(int *));
    for (int i = 0; i < P; i++) prompt[i] = (i * 7919 + 13) % m->cfg.vocab_size;
    for (int g = 0; g < G; g++) p[g] = prompt, len[g] = P;
    GenConfig gc = {.max_new = new_tokens, .eot = -1, .sampler = sampler_default(), .prefill_each = prefill_each};
    Rng rng;
    rng_seed(&rng, 1);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { /* the first run warms up */
        GenResult res;
        double t0 = fs_now();
        if (gen_run(m, p, len, G, &gc, &rng, &res)) exit(1);
        double t = fs_now() - t0;
        if (r) best = t < best ? t : best;
        gen_result_free(&res);
    }
    free(prompt), free(len), free(p);
    return (double)G * new_tokens / best;
}

int main(int argc, char **argv) {
    int a[8] = {50257, 256, 4, 4, 8, 48, 16, 5};
    for (int i = 1; i < argc && i <= 8; i++) a[i - 1] = atoi(argv[i]);
    int V = a[0], C = a[1], L = a[2], H = a[3], G = a[4], P = a[5], NEW = a[6], reps = a[7];
    GptConfig c = {.vocab_size = V, .n_ctx = P + NEW, .n_layer = L, .n_head = H, .n_embd = C,
                   .head = GPT_HEAD_LM};
    Gpt m;
    if (gpt_init(&m, &c)) return 1;
    gpt_init_random(&m, 1);
    gpt_pack_decode(&m); /* as the actors do, once per snapshot */
    double shared = group_tokens_per_s(&m, G, P, NEW, reps, 0);
    double each = group_tokens_per_s(&m, G, P, NEW, reps, 1);
    printf("{\"impl\": \"c\", \"bench\": \"group_gen\", \"vocab\": %d, \"d\": %d, \"layers\": %d, \"heads\": %d, "
           "\"group\": %d, \"prompt_len\": %d, \"gen_new\": %d, \"threads\": %d, \"gen_tokens_per_s\": %.1f, "
           "\"gen_prefill_each_tokens_per_s\": %.1f}\n",
           V, C, L, H, G, P, NEW, ops_threads(), shared, each);
    gpt_free(&m);
    return 0;
}
