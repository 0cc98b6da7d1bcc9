/* Tests for rng_mix64 (MurmurHash3's fmix64) and rng_splitmix64_mix
 * (splitmix64's output function) against values from
 * tests/fixtures/rng_reference.py, an independent Python transcription. */
#include <stdint.h>

#include "common/rng.h"
#include "tests/harness.h"

static const uint64_t inputs[5] = {0, 1, 42, 0x9e3779b97f4a7c15ull, UINT64_MAX};

TEST(rng_mix64_reference_values) {
    static const uint64_t want[5] = {0x0000000000000000ull, 0xb456bcfc34c2cb2cull, 0x810879608e4259ccull,
                                     0x9ca066f1a4ab2eeaull, 0x64b5720b4b825f21ull};
    for (int i = 0; i < 5; i++)
        CHECKF(rng_mix64(inputs[i]) == want[i], "rng_mix64(0x%llx) = 0x%016llx, expected 0x%016llx",
               (unsigned long long)inputs[i], (unsigned long long)rng_mix64(inputs[i]),
               (unsigned long long)want[i]);
}

/* The last but one input is splitmix64's first state from seed 0, so its
 * value is also rng_seed(0)'s first state word. */
TEST(rng_splitmix64_mix_reference_values) {
    static const uint64_t want[5] = {0x0000000000000000ull, 0x5692161d100b05e5ull, 0xa759ea27d4727622ull,
                                     0xe220a8397b1dcdafull, 0xb4d055fcf2cbbd7bull};
    for (int i = 0; i < 5; i++)
        CHECKF(rng_splitmix64_mix(inputs[i]) == want[i], "rng_splitmix64_mix(0x%llx) = 0x%016llx, expected 0x%016llx",
               (unsigned long long)inputs[i], (unsigned long long)rng_splitmix64_mix(inputs[i]),
               (unsigned long long)want[i]);
    Rng r;
    rng_seed(&r, 0);
    CHECK(r.s[0] == want[3]);
}
