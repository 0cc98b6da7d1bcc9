/* Tests for common/gpt.c: parameter layout. */
#include "common/gpt.h"
#include "tests/harness.h"

TEST(gpt_param_count_matches_gpt2_small) {
    GptConfig c = {50257, 1024, 12, 12, 768, GPT_HEAD_LM};
    CHECK(gpt_count_params(&c) == 124439808u);
}
