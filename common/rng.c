/* rng — xoshiro256** (Blackman & Vigna) seeded through splitmix64; see rng.h.
 * The generator's whole state is the four words in Rng, so saving them in a
 * checkpoint and restoring them continues the exact same stream. Everything
 * derived from it (uniform floats, normals, bounded integers) draws a fixed,
 * documented number of words so runs are bit-reproducible. */
#include "common/rng.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

uint64_t rng_splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* splitmix64 step: advances *x and returns a well-mixed word. Used only to
 * spread one 64-bit seed over the 256-bit state (never all zero). */
static uint64_t splitmix64_next(uint64_t *x) { return rng_splitmix64_mix(*x += 0x9e3779b97f4a7c15ull); }

void rng_seed(Rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64_next(&seed);
}

uint64_t rng_u64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The top bits are used because they are the best-mixed ones; a float has a
 * 24-bit significand, so k/2^24 is exact and strictly below 1. */
float rng_uniform(Rng *r) { return (float)(rng_u64(r) >> 40) * 0x1.0p-24f; }

double rng_uniform_double(Rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

/* Box-Muller, returning only the cosine branch: caching the sine branch would
 * add hidden state that checkpoints do not save. 1 - u lies in (0, 1], so the
 * logarithm is finite. Uses two words. */
float rng_normal(Rng *r) {
    double u1 = 1.0 - rng_uniform_double(r);
    double u2 = rng_uniform_double(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* Unbiased by rejection: 2^32 mod n values at the bottom of the 32-bit range
 * would make some residues more likely, so they are redrawn (at most half of
 * all draws for any n, usually far fewer). n == 0 returns 0. */
uint32_t rng_below(Rng *r, uint32_t n) {
    if (n == 0) return 0;
    uint32_t threshold = (uint32_t)(-n) % n; /* = 2^32 mod n */
    for (;;) {
        uint32_t x = (uint32_t)(rng_u64(r) >> 32);
        if (x >= threshold) return x % n;
    }
}
