/* Tests of common/mpi/ppo_config's prompt loading: every prompt tokenized,
 * and a prompt that leaves no room for a response named by its line. */
#include <string.h>

#include "common/model/tok.h"
#include "common/mpi/ppo_config.h"
#include "tests/harness.h"

TEST(ppo_prompts_load_tokenizes_every_prompt) {
    Tok *tok = tok_byte_new();
    const char *path = harness_tmp_text("rl.jsonl", "{\"prompt\": \"ab\"}\n\n{\"prompt\": \"xyz\"}\n");
    PpoPrompts p;
    CHECK(ppo_prompts_load(&p, path, tok, 8) == 0);
    CHECK(p.n == 2);
    if (p.n == 2) {
        CHECK(p.len[0] == 2 && p.tokens[0][0] == 'a' && p.tokens[0][1] == 'b');
        CHECK(p.len[1] == 3 && p.tokens[1][2] == 'z');
        CHECK(strcmp(p.text[1], "xyz") == 0);
    }
    ppo_prompts_free(&p);
    CHECK(p.n == 0 && p.tokens == NULL);
    tok_free(tok);
}

/* The third line (after a blank one) fills the context: no room to answer. */
TEST(ppo_prompts_load_names_the_line_of_a_long_prompt) {
    Tok *tok = tok_byte_new();
    const char *path = harness_tmp_text("rl_long.jsonl", "{\"prompt\": \"ab\"}\n\n{\"prompt\": \"12345678\"}\n");
    PpoPrompts p;
    CHECK(ppo_prompts_load(&p, path, tok, 8) == -1);
    CHECK_ERR(path, ":3: prompt of 8 tokens; it must leave room in the context (8)");
    CHECK(p.n == 0 && p.tokens == NULL && p.text == NULL);
    path = harness_tmp_text("rl_empty.jsonl", "{\"prompt\": \"\"}\n");
    CHECK(ppo_prompts_load(&p, path, tok, 8) == -1);
    CHECK_ERR(path, ":1: prompt of 0 tokens");
    path = harness_tmp_text("rl_none.jsonl", "\n");
    CHECK(ppo_prompts_load(&p, path, tok, 8) == -1);
    CHECK_ERR(path, ": no prompts in file");
    tok_free(tok);
}
