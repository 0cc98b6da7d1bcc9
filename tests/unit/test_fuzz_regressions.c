/* Regression tests for what tests/fuzz (libFuzzer) found, and a replay of
 * the committed fuzz inputs in the ordinary unit-test binary.
 *
 * The harness sources are included here with their libFuzzer entry points
 * left out (FUZZ_NO_ENTRY) and their property checks reported as test
 * failures (FUZZ_UNIT_TESTS), so every seed in tests/fuzz/corpus/TARGET/
 * and every reproducer in tests/fuzz/regressions/TARGET/ goes through
 * exactly the code the fuzzers ran, also under `make SAN=1` (ASan, UBSan,
 * LeakSanitizer) and without clang. Each finding also has a test of its own
 * below that checks the behaviour the fix promises (the message, the time
 * taken), not only the absence of a crash. */
#define FUZZ_NO_ENTRY
#define FUZZ_UNIT_TESTS
#include "tests/fuzz/fuzz_ckpt.c"
#include "tests/fuzz/fuzz_ckpt_raw.c"
#include "tests/fuzz/fuzz_config.c"
#include "tests/fuzz/fuzz_h5log.c"
#include "tests/fuzz/fuzz_h5log_raw.c"
#include "tests/fuzz/fuzz_hf_config.c"
#include "tests/fuzz/fuzz_hf_safetensors.c"
#include "tests/fuzz/fuzz_jsonl.c"
#include "tests/fuzz/fuzz_safetensors.c"
#include "tests/fuzz/fuzz_tok.c"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include "tests/harness.h"

/* ---- replay ------------------------------------------------------------- */

/* Runs fn on every file in tests/fuzz/SUB/TARGET (sorted by the directory;
 * the order does not matter). Returns the number of inputs. */
static int replay_dir(const char *sub, const char *target, void (*fn)(const uint8_t *, size_t)) {
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "tests/fuzz/%s/%s", sub, target);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        char *buf = fuzz_read(path, &len);
        CHECKF(buf != NULL, "cannot read %s", path);
        if (!buf) continue;
        fn((const uint8_t *)buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void replay(const char *target, void (*fn)(const uint8_t *, size_t)) {
    int seeds = replay_dir("corpus", target, fn);
    CHECKF(seeds > 0, "no seeds in tests/fuzz/corpus/%s (run from the repository root)", target);
    replay_dir("regressions", target, fn);
}

TEST(fuzz_replay_jsonl) { replay("fuzz_jsonl", fuzz_jsonl); }
TEST(fuzz_replay_config) { replay("fuzz_config", fuzz_config); }
TEST(fuzz_replay_safetensors) { replay("fuzz_safetensors", fuzz_safetensors); }
TEST(fuzz_replay_tok) { replay("fuzz_tok", fuzz_tok); }
TEST(fuzz_replay_hf_config) { replay("fuzz_hf_config", fuzz_hf_config); }
TEST(fuzz_replay_hf_safetensors) { replay("fuzz_hf_safetensors", fuzz_hf_safetensors); }
TEST(fuzz_replay_ckpt) { replay("fuzz_ckpt", fuzz_ckpt); }
TEST(fuzz_replay_ckpt_raw) { replay("fuzz_ckpt_raw", fuzz_ckpt_raw); }
TEST(fuzz_replay_h5log) { replay("fuzz_h5log", fuzz_h5log); }
TEST(fuzz_replay_h5log_raw) { replay("fuzz_h5log_raw", fuzz_h5log_raw); }

/* ---- helpers ------------------------------------------------------------ */

/* Runs fn(arg) in a child killed after limit seconds; returns the seconds
 * it took, or -1 if it was killed or failed (a hang must fail the test,
 * not stall the suite). */
static double run_bounded(void (*fn)(const char *), const char *arg, unsigned limit) {
    double t0 = fs_now();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(limit);
        fn(arg);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return fs_now() - t0;
}

/* ---- h5log: a damaged log made the SWMR reader sleep forever ------------ */

/* The fuzzer's input: a rollout log with 12 bytes of one chunk index block
 * zeroed. HDF5's SWMR reader retried the failing checksum 100 times with a
 * doubling sleep (2^100 ns); now it gives up after about 17 ms. */
static void read_damaged_log(const char *path) {
    err_clear();
    H5log *l = h5log_open_read(path);
    if (!l) _exit(strstr(err_msg(), path) ? 0 : 3);
    for (int i = 0; i < h5log_n_columns(l); i++) {
        double v[2 * 32];
        const H5logColumn *c = h5log_column(l, i);
        if (c->width > 32) continue; /* the log's columns are narrower */
        int64_t rows = h5log_rows(l) < 2 ? h5log_rows(l) : 2;
        if (h5log_read_f64(l, c->name, 0, rows, v) && !strstr(err_msg(), path)) _exit(4);
    }
    h5log_close(l);
}

TEST(fuzz_h5log_damaged_swmr_log_does_not_hang) {
    const char *path = "tests/fuzz/regressions/fuzz_h5log_raw/swmr-retry-hang";
    double took = run_bounded(read_damaged_log, path, 30);
    CHECKF(took >= 0, "reading %s hung (killed after 30 s) or gave a message without the path", path);
    CHECKF(took < 5, "reading %s took %.1f s", path, took);
}

/* ---- ckpt: sizes claimed by the file were allocated unchecked ----------- */

/* The base checkpoint copied to name, opened for writing with HDF5. */
static hid_t edit_base_ckpt(const char *name, char *path, size_t n) {
    size_t len;
    char *bytes = fuzz_read(fuzz_base_ckpt(), &len);
    snprintf(path, n, "%s/%s", harness_tmpdir(), name);
    fuzz_write(path, bytes, len);
    free(bytes);
    return H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
}

/* A 1-D u8 dataset of 2^40 bytes that was never written takes no space:
 * the tokenizer loader allocated 1 TB for it. */
TEST(fuzz_ckpt_tokenizer_bytes_larger_than_the_file) {
    char path[600];
    hid_t f = edit_base_ckpt("vocab-1tb.h5", path, sizeof path);
    CHECK(f >= 0);
    hsize_t dims[1] = {(hsize_t)1 << 40};
    H5Ldelete(f, "/tokenizer/vocab_json", H5P_DEFAULT);
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "/tokenizer/vocab_json", H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
    Ckpt *c = ckpt_open(path);
    CHECKF(c != NULL, "%s", err_msg());
    if (!c) return;
    Tok *t = ckpt_get_tok(c);
    CHECK(t == NULL);
    CHECKF(strstr(err_msg(), path) && strstr(err_msg(), "/tokenizer/vocab_json: claims 1099511627776 bytes"),
           "message: %s", err_msg());
    Gpt m;
    CHECKF(ckpt_get_model(c, &m) == 0, "the weights are intact: %s", err_msg());
    gpt_free(&m);
    tok_free(t);
    ckpt_close(c);
}

/* n_embd = vocab_size = 2^20 in a 27 KB file: gpt_init was asked for 57 TB. */
TEST(fuzz_ckpt_model_config_larger_than_the_file) {
    char path[600];
    hid_t f = edit_base_ckpt("config-57tb.h5", path, sizeof path);
    CHECK(f >= 0);
    const int64_t big = (int64_t)1 << 20;
    static const char *const names[] = {"n_embd", "vocab_size"};
    for (int i = 0; i < 2; i++) {
        H5Adelete(f, names[i]);
        hid_t s = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, names[i], H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &big);
        H5Aclose(a);
        H5Sclose(s);
    }
    H5Fclose(f);
    Ckpt *c = ckpt_open(path);
    CHECKF(c != NULL, "%s", err_msg());
    if (!c) return;
    GptConfig cfg;
    CHECK(ckpt_get_config(c, &cfg) == 0 && cfg.n_embd == big); /* a valid config in itself */
    Gpt m;
    CHECK(ckpt_get_model(c, &m) < 0);
    CHECK(m.params == NULL);
    CHECKF(strstr(err_msg(), path) && strstr(err_msg(), "model config implies") &&
               strstr(err_msg(), "more than the file"),
           "message: %s", err_msg());
    ckpt_close(c);
    /* The unedited file still loads: the check refuses only what cannot fit. */
    c = ckpt_open(fuzz_base_ckpt());
    CHECK(c && ckpt_get_model(c, &m) == 0);
    if (c && m.params) gpt_free(&m);
    ckpt_close(c);
}
