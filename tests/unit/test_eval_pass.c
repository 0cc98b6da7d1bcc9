/* Tests for eval_pass_at_k (common/task/evaluate.c, `rlhf eval --pass-k`):
 * values derived by hand from 1 - C(n-c, k) / C(n, k), the exact fractions
 * of larger cases (Python's fractions and math.comb, quoted beside each),
 * the identities pass@1 = c/n and pass@k = 1 when fewer than k samples
 * fail, and the arguments that have no estimate. */
#include <math.h>

#include "common/task/evaluate.h"
#include "tests/harness.h"

TEST(eval_pass_at_k_hand_derived) {
    CHECK_NEAR(eval_pass_at_k(5, 2, 1), 0.4, 1e-15);       /* 1 - 3/5 */
    CHECK_NEAR(eval_pass_at_k(5, 2, 2), 0.7, 1e-15);       /* 1 - C(3,2)/C(5,2) = 1 - 3/10 */
    CHECK_NEAR(eval_pass_at_k(5, 2, 3), 0.9, 1e-15);       /* 1 - C(3,3)/C(5,3) = 1 - 1/10 */
    CHECK(eval_pass_at_k(5, 2, 4) == 1.0);                 /* 3 failures cannot fill 4 draws */
    CHECK_NEAR(eval_pass_at_k(16, 1, 4), 0.25, 1e-15);     /* 1 - C(15,4)/C(16,4) = 1 - 1365/1820 */
    CHECK_NEAR(eval_pass_at_k(4, 1, 2), 0.5, 1e-15);       /* 1 - C(3,2)/C(4,2) = 1 - 3/6 */
}

TEST(eval_pass_at_k_exact_fractions) {
    /* 1 - Fraction(comb(n-c, k), comb(n, k)), printed with %.17g */
    CHECK_NEAR(eval_pass_at_k(200, 10, 100), 0.99922897393728216, 1e-14);
    CHECK_NEAR(eval_pass_at_k(16, 3, 8), 0.9, 1e-14);
    CHECK_NEAR(eval_pass_at_k(100, 1, 50), 0.5, 1e-14);
    CHECK_NEAR(eval_pass_at_k(10, 9, 1), 0.9, 1e-15);
}

TEST(eval_pass_at_k_identities) {
    for (int n = 1; n <= 20; n++)
        for (int c = 0; c <= n; c++) {
            CHECK_NEAR(eval_pass_at_k(n, c, 1), (double)c / n, 1e-14);
            CHECK(eval_pass_at_k(n, c, n) == (c > 0 ? 1.0 : 0.0));
            for (int k = 1; k < n; k++) /* more draws never lower the chance */
                CHECK(eval_pass_at_k(n, c, k + 1) >= eval_pass_at_k(n, c, k) - 1e-15);
        }
}

TEST(eval_pass_at_k_undefined) {
    CHECK(isnan(eval_pass_at_k(4, 1, 0)));
    CHECK(isnan(eval_pass_at_k(4, 1, 5)));
    CHECK(isnan(eval_pass_at_k(4, 5, 1)));
    CHECK(isnan(eval_pass_at_k(4, -1, 1)));
    CHECK(isnan(eval_pass_at_k(0, 0, 1)));
}
