/* rng — a small seeded random number generator (xoshiro256**, seeded via
 * splitmix64). Its whole state is four 64-bit words, so checkpoints can save
 * and restore it and runs are bit-reproducible. */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
/* Uniform float in [0, 1), 24 random bits. */
float rng_uniform(Rng *r);
/* Uniform double in [0, 1), 53 random bits. */
double rng_uniform_double(Rng *r);
/* Standard normal (Box-Muller, no cached second value: state stays 4 words). */
float rng_normal(Rng *r);
/* Uniform integer in [0, n). */
uint32_t rng_below(Rng *r, uint32_t n);

/* Stateless 64-bit mixers: every input bit affects every output bit, and
 * each is a bijection. rng_mix64 is MurmurHash3's fmix64 finaliser (derives
 * seeds from seed, step, epoch...); rng_splitmix64_mix is splitmix64's
 * output function (without its additive step; also a hash for tables). */
uint64_t rng_mix64(uint64_t x);
uint64_t rng_splitmix64_mix(uint64_t z);

#endif
