/* fuzz_config — libFuzzer harness for common/config.c. An even first byte
 * makes the rest a `key = value` config file (config_load_file); an odd one
 * splits the rest at NUL bytes into command-line arguments
 * (config_parse_args, which also loads any --config file named, here the
 * same input file). The keys cover every type, an enum and a required key.
 * Whatever is accepted must print as a config file that reads back to the
 * same values (config.h promises config_print's output is a valid file). */
#include "common/config.h"
#include "common/err.h"
#include "tests/fuzz/fuzz_util.h"

static const CfgKey fuzz_config_keys[] = {
    {.key = "batch_size", .type = CFG_INT, .def = "8", .help = "sequences per step"},
    {.key = "lr", .type = CFG_FLOAT, .def = "3e-4", .help = "learning rate"},
    {.key = "name", .type = CFG_STR, .def = "run", .help = "run name"},
    {.key = "resume", .type = CFG_BOOL, .def = "false", .help = "resume from the last checkpoint"},
    {.key = "kl_estimator", .type = CFG_ENUM, .def = "k1", .help = "per-token KL estimator", .choices = "k1|k3|abs"},
    {.key = "prompts", .type = CFG_STR, .def = NULL, .help = "JSONL file of prompts"},
    {.key = "empty", .type = CFG_STR, .def = "", .help = "a key whose default is empty"},
    {0}};

static Config *fuzz_config_new(void) {
    const CfgKey *const tables[] = {fuzz_config_keys};
    Config *c = config_new(tables, 1);
    FUZZ_CHECK(c != NULL, "config_new: %s", err_msg());
    return c;
}

/* config_print's text must load back into a fresh Config with no
 * difference in any value. */
static void fuzz_config_round_trip(const Config *c) {
    const char *path = fuzz_path("printed.conf");
    FILE *f = fopen(path, "w");
    if (!f) abort();
    config_print(c, f);
    fclose(f);
    Config *back = fuzz_config_new();
    if (!back) return;
    int rc = config_load_file(back, path);
    FUZZ_CHECK(rc == 0, "printed config does not load back: %s", err_msg());
    char diff[512];
    if (!rc) FUZZ_CHECK(config_diff(c, back, diff, sizeof diff) == 0, "values changed: %s", diff);
    config_free(back);
}

/* Splits s[0..n) at NUL bytes into at most max arguments. */
static int fuzz_config_split(char *s, size_t n, char **argv, int max) {
    int argc = 0;
    for (size_t i = 0; i < n && argc < max;) {
        argv[argc++] = s + i;
        i += strlen(s + i) + 1;
    }
    return argc;
}

static void fuzz_config(const uint8_t *data, size_t n) {
    if (n == 0) return;
    err_clear();
    const char *path = fuzz_path("fuzz.conf");
    Config *c = fuzz_config_new();
    if (!c) return;
    int rc;
    if (data[0] % 2 == 0) {
        fuzz_write(path, data + 1, n - 1);
        rc = config_load_file(c, path);
    } else {
        /* --config names the file by its place; its contents are fixed. */
        static const char file[] = "batch_size = 4\nname = \"a # b\"\n";
        fuzz_write(path, file, sizeof file - 1);
        char *copy = malloc(n);
        memcpy(copy, data + 1, n - 1);
        copy[n - 1] = 0;
        char *argv[64];
        int argc = fuzz_config_split(copy, n - 1, argv, 64), help;
        for (int i = 0; i < argc; i++)
            if (!strcmp(argv[i], "@")) argv[i] = (char *)path; /* "--config @" */
        rc = config_parse_args(c, argc, argv, &help);
        free(copy);
    }
    if (rc == 0) {
        config_check_required(c);
        fuzz_config_round_trip(c);
    } else {
        FUZZ_CHECK(err_msg()[0] != 0, "error without a message");
    }
    config_free(c);
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    fuzz_config(data, n);
    return 0;
}
#endif
