/* Tests for common/opts.c ranges (issue 14): a numeric option outside its
 * declared range is refused as it is read, naming the command, the option
 * and the range; values on each boundary pass; --help prints the range. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/opts.h"
#include "tests/harness.h"

static struct {
    int n, seed;
    float p;
    double g;
} args;

static const Opt range_opts[] = {
    {.name = "n", .type = OPT_INT, .dest = &args.n, .metavar = "N", .help = "count", .range = ">= 1"},
    {.name = "p", .type = OPT_FLOAT, .dest = &args.p, .metavar = "P", .help = "mass", .range = "(0, 1]"},
    {.name = "g", .type = OPT_DOUBLE, .dest = &args.g, .metavar = "G", .help = "discount", .range = "[0, 1)"},
    {.name = "seed", .type = OPT_INT, .dest = &args.seed, .metavar = "S", .help = "seed", .range = "any"},
    {0}};

static const OptSpec spec = {.command = "demo", .usage = "rlhf demo", .summary = "s", .opts = range_opts};

/* opts_parse on one "--name=value" argument. */
static int parse_one(const char *arg) {
    char buf[64], *argv[1] = {buf}, *pos[1];
    int n_pos;
    snprintf(buf, sizeof buf, "%s", arg);
    err_clear();
    return opts_parse(&spec, 1, argv, pos, &n_pos);
}

TEST(opts_range_refuses_values_outside) {
    args.n = 4;
    CHECK(parse_one("--n=1") == 0 && args.n == 1);
    CHECK(parse_one("--n=0") == -1 && args.n == 1);
    CHECK_ERR("demo: ", "--n must be >= 1, got 0");
    CHECK(parse_one("--n=-3") == -1);
    CHECK_ERR("demo: ", "--n must be >= 1, got -3");
    CHECK(parse_one("--p=1") == 0 && args.p == 1.0f);
    CHECK(parse_one("--p=0") == -1);
    CHECK_ERR("demo: ", "--p must be in (0, 1], got 0");
    CHECK(parse_one("--p=1.5") == -1);
    CHECK_ERR("demo: ", "--p must be in (0, 1], got 1.5");
    CHECK(parse_one("--p=nan") == -1);
    CHECK(parse_one("--g=0") == 0 && args.g == 0);
    CHECK(parse_one("--g=1") == -1);
    CHECK_ERR("demo: ", "--g must be in [0, 1), got 1");
    CHECK(parse_one("--seed=-7") == 0 && args.seed == -7);
    CHECK(parse_one("--n=ten") == -1);
    CHECK_ERR("demo: ", "--n expects an integer, got 'ten'");
}

/* An integer too large for an int is named as such, as config keys do,
 * not "expects an integer" (tests/cli/hostile.sh: --n 9999999999). */
TEST(opts_int_out_of_range_says_so) {
    args.seed = 3;
    CHECK(parse_one("--seed=9999999999") == -1 && args.seed == 3);
    CHECK_ERR("demo: ", "--seed: 9999999999 is out of range for an integer (-2147483648..2147483647)");
    CHECK(parse_one("--seed=-99999999999999999999") == -1);
    CHECK_ERR("demo: ", "--seed: -99999999999999999999 is out of range for an integer");
    CHECK(parse_one("--seed=-2147483648") == 0 && args.seed == -2147483647 - 1);
    CHECK(parse_one("--seed=2147483647") == 0 && args.seed == 2147483647);
}

TEST(opts_help_prints_ranges) {
    args.n = 2;
    args.p = 0.5f;
    args.g = 0.9;
    args.seed = 1;
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    opts_help(&spec, f);
    fclose(f);
    CHECKF(strstr(s, "  --n N                    count (default: 2; >= 1)\n"), "%s", s);
    CHECK(strstr(s, "  --p P                    mass (default: 0.5; in (0, 1])\n"));
    CHECK(strstr(s, "  --g G                    discount (default: 0.9; in [0, 1))\n"));
    CHECK(strstr(s, "  --seed S                 seed (default: 1)\n"));
    free(s);
}
