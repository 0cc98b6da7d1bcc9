/* rng — xoshiro256** seeded by splitmix64; see rng.h. (stub: being written) */
#include "common/rng.h"
void rng_seed(Rng *r, uint64_t seed) { (void)r; (void)seed; }
uint64_t rng_u64(Rng *r) { (void)r; return 0; }
float rng_uniform(Rng *r) { (void)r; return 0; }
double rng_uniform_double(Rng *r) { (void)r; return 0; }
float rng_normal(Rng *r) { (void)r; return 0; }
uint32_t rng_below(Rng *r, uint32_t n) { (void)r; (void)n; return 0; }
