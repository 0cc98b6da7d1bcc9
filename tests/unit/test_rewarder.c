/* The rewarder's KL estimators (rewarder/rewarder.c, which may not include
 * learner code) against the PPO mathematics module's (learner/ppo_math.c,
 * checked against torch) and against hand values. */
#include "learner/ppo_math.h"
#include "rewarder/rewarder.h"
#include "tests/harness.h"

TEST(rewarder_kl_matches_ppo_math_and_hand_values) {
    double worst = 0;
    for (double p = -6; p <= 0; p += 0.37)
        for (double q = -6; q <= 0; q += 0.41) {
            worst = fmax(worst, fabs(rewarder_kl(KL_K1, p, q) - ppo_kl(PPO_KL_K1, p, q)));
            worst = fmax(worst, fabs(rewarder_kl(KL_K3, p, q) - ppo_kl(PPO_KL_K3, p, q)));
            CHECK(rewarder_kl(KL_K3, p, q) >= 0);
        }
    CHECKF(worst < 1e-12, "rewarder vs ppo_math KL: %.3g", worst);
    /* k1 = log p - log q; k3 = (q/p - 1) - log(q/p): p = 0.5, q = 0.25 */
    CHECK_NEAR(rewarder_kl(KL_K1, log(0.5), log(0.25)), log(2.0), 1e-12);
    CHECK_NEAR(rewarder_kl(KL_K3, log(0.5), log(0.25)), (0.5 - 1) - log(0.5), 1e-12);
}
