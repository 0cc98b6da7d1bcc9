/* make_seeds — writes the valid base files the model-file harnesses start
 * from into DIR, for tests/fuzz/make_seeds.py to turn into seed corpora:
 * DIR/hf/{config.json, model.safetensors, vocab.json, merges.txt} (the
 * small base model exported), DIR/base.h5 (its checkpoint), DIR/log.h5 (a
 * small rollout log). Built and run by `tests/fuzz/run.sh --seeds`. */
#define FUZZ_NO_ENTRY
#include "tests/fuzz/fuzz_h5log_read.h"
#include "tests/fuzz/fuzz_model_base.h"

static void copy_file(const char *from, const char *dir, const char *name) {
    char to[1024];
    size_t n;
    char *buf = fuzz_read(from, &n);
    if (!buf) abort();
    snprintf(to, sizeof to, "%s/%s", dir, name);
    fuzz_write(to, buf, n);
    free(buf);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    char hf[1024], from[1200];
    snprintf(hf, sizeof hf, "%s/hf", argv[1]);
    mkdir(argv[1], 0777);
    mkdir(hf, 0777);
    static const char *const names[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "%s/%s", fuzz_base_hf_dir(), names[i]);
        copy_file(from, hf, names[i]);
    }
    copy_file(fuzz_base_ckpt(), argv[1], "base.h5");
    copy_file(fuzz_base_log(), argv[1], "log.h5");
    return 0;
}
