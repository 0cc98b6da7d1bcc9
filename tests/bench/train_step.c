/* train_step — wall time of our training step alone (forward, cross-entropy,
 * backward, AdamW: the calls bench_gpt times), without bench_gpt's sgemm
 * and generation measurements, so tests/bench/llmc.sh can alternate short
 * runs of it with llm.c's step several times in one benchmark. Usage:
 *   train_step VOCAB D LAYERS HEADS T BATCH STEPS
 * Two warm-up steps, then STEPS timed steps; prints one JSON line with the
 * median and every step's milliseconds. Threads: OPENBLAS_NUM_THREADS, as
 * for the whole library. A report, never a test. */
#include <stdio.h>
#include <stdlib.h>

#include "common/model/adamw.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/model/gpt.h"
#include "common/model/ops.h"
#include "tests/bench/bench_util.h"

/* Parses a positive integer argument; 0 (and a message) if it is not one. */
static int arg_int(const char *s, const char *name) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1000000) {
        fprintf(stderr, "train_step: %s = '%s': expected a positive integer\n", name, s);
        return 0;
    }
    return (int)v;
}

int main(int argc, char **argv) {
    static const char *names[] = {"VOCAB", "D", "LAYERS", "HEADS", "T", "BATCH", "STEPS"};
    int a[7];
    if (argc != 8) {
        fprintf(stderr, "usage: train_step VOCAB D LAYERS HEADS T BATCH STEPS\n");
        return 2;
    }
    for (int i = 0; i < 7; i++)
        if (!(a[i] = arg_int(argv[i + 1], names[i]))) return 2;
    int V = a[0], C = a[1], L = a[2], H = a[3], T = a[4], B = a[5], steps = a[6];
    GptConfig c = {.vocab_size = V, .n_ctx = T, .n_layer = L, .n_head = H, .n_embd = C, .head = GPT_HEAD_LM};
    Gpt m;
    if (gpt_init(&m, &c)) {
        fprintf(stderr, "train_step: %s\n", err_msg());
        return 2;
    }
    gpt_init_random(&m, 1);
    double *ms = malloc(steps * sizeof(double)), *sorted = malloc(steps * sizeof(double));
    bench_train_steps(&m, B, T, steps, ms);
    for (int i = 0; i < steps; i++) ms[i] *= 1e3, sorted[i] = ms[i];
    printf("{\"impl\": \"c\", \"vocab\": %d, \"d\": %d, \"layers\": %d, \"heads\": %d, \"T\": %d, \"batch\": %d, "
           "\"params\": %zu, \"threads\": %d, \"train_step_ms\": %.2f, \"step_ms\": [",
           V, C, L, H, T, B, m.n_params, ops_threads(), bench_median(sorted, steps));
    for (int i = 0; i < steps; i++) printf("%s%.2f", i ? ", " : "", ms[i]);
    printf("]}\n");
    free(ms), free(sorted);
    gpt_free(&m);
    return 0;
}
