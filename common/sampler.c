/* sampler — stub, being written; see sampler.h. */
#include "common/sampler.h"
SamplerConfig sampler_default(void) { SamplerConfig c = {0, 1.0f, 0, 1.0f}; return c; }
int sampler_validate(const SamplerConfig *c) { (void)c; return 0; }
void sampler_init(Sampler *s, int vocab) { (void)s; (void)vocab; }
void sampler_free(Sampler *s) { (void)s; }
int sampler_sample(Sampler *s, const SamplerConfig *c, const float *logits, Rng *rng, float *a, float *b) {
    (void)s; (void)c; (void)logits; (void)rng; (void)a; (void)b; return 0; }
