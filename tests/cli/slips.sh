#!/bin/bash
# The last operator slips of issue 14 (items 13, 17, 18): sizes computed
# from settings and write errors on logs.
#  - a huge model, batch or length is refused at once with one line naming
#    the keys and the size, never a wrapped number ("out of memory allocating
#    10100654644230196224 x 4 bytes") or a crash; every such case runs under
#    `ulimit -v` (4 GB) and within a few seconds, so a multi-GB allocation
#    attempt would show as a different message;
#  - the trainers check the data against n_ctx and the batch keys before
#    the model or any batch buffer is built (n_ctx=1e8 once built a 3 GB
#    model before saying the data was shorter than one window);
#  - a log row that cannot be written (RLHF_TEST_FAIL_WRITE, as a full disk)
#    ends the run at that step with one error naming the log, no warning per
#    step, and no final checkpoint claiming the lost rows.
# The rules are at err_mul_size (common/err.h) and metrics_append
# (learner/metrics.h).
set -u
SUITE=slips
. "$(dirname "$0")/../lib.sh"
scratch slips
use_mpirun
cd "$T"
D=data
"$RLHF" data arith --out $D --n 100 --seed 5 2>/dev/null
"$RLHF" init --out m.h5 --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 2>/dev/null
sum0=$(sha256sum m.h5 $D/*)
unchanged() { [ "$(sha256sum m.h5 $D/*)" = "$sum0" ] && pass "$1: inputs unchanged" || fail "$1: inputs unchanged"; }
ERR_ALONE=0
# SMALL_VM CMD...: CMD with 4 GB of address space, which a model or buffer
# of several GB would exceed (a command, not a function: expect_err runs it
# under timeout). Under `make test SAN=1` ASan needs terabytes of address
# space for its shadow memory, so there the limit is left out and ASan is
# told to return NULL for an allocation it cannot make, as malloc does.
SMALL_VM=(bash -c 'ulimit -v 4000000 && exec "$@"' small_vm)
case $RLHF in
*/build/san/*) SMALL_VM=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:allocator_may_return_null=1") ;;
esac
# fast N NAME CMD...: expect_err's last command took under N seconds
started() { T0=$(now_ms); }
fast() {
    local ms=$(( $(now_ms) - T0 ))
    [ $ms -lt $(( $1 * 1000 )) ] && pass "$2: done in $(secs $ms) s" || fail "$2: took $(secs $ms) s"
}

# ---- item 17: sizes that overflow or cannot be allocated name the keys -------------
started
expect_err "init --n-embd 2e9 (3 x n_embd overflowed an int)" "init: model: n_embd=2000000000 is too large (at most 536870911)" \
    "${SMALL_VM[@]}" "$RLHF" init --out big.h5 --n-layer 2 --n-head 2 --n-embd 2000000000 --n-ctx 10
expect_err "init --n-layer 1000 --n-embd 100000" \
    "init: model: n_layer=1000 n_embd=100000 (n_ctx 64, vocab_size 257): 120001332300000 parameters need 480.0 TB, and as much again for gradients; out of memory" \
    "${SMALL_VM[@]}" "$RLHF" init --out big.h5 --n-layer 1000 --n-head 4 --n-embd 100000 --n-ctx 64
expect_err "init --n-layer 2e7 --n-embd 5e8: more than can be addressed" \
    "init: model: n_layer=20000000 n_embd=500000000 (n_ctx 10, vocab_size 257): more parameters than can be addressed; too large" \
    "${SMALL_VM[@]}" "$RLHF" init --out big.h5 --n-layer 20000000 --n-head 2 --n-embd 500000000 --n-ctx 10
expect_err "init --n-ctx 1e9: 64 GB of parameters" "init: model: n_layer=2 n_embd=16 (n_ctx 1000000000, vocab_size 257): .* need 64.0 GB" \
    "${SMALL_VM[@]}" "$RLHF" init --out big.h5 --n-layer 2 --n-head 2 --n-embd 16 --n-ctx 1000000000
fast 10 "init: four huge models"
[ ! -e big.h5 ] && pass "init: nothing written" || fail "init: nothing written"
expect_err "pretrain n_embd=2e9: named before the data is read" "pretrain: model: n_embd=2000000000 is too large" \
    "${SMALL_VM[@]}" "$RLHF" pretrain out_dir=pb train_data=$D/pretrain.txt n_head=2 n_embd=2000000000

# micro_batch x n_ctx buffers were allocated before the layout was checked:
# "out of memory allocating 128000000000 bytes"
started
expect_err "sft batch_size=micro_batch=1e9: the data is checked first" \
    "sft: $D/sft.jsonl: 100 examples, fewer than one batch (batch_size 1000000000)" \
    "${SMALL_VM[@]}" "$RLHF" sft init=m.h5 out_dir=s1 train_data=$D/sft.jsonl batch_size=1000000000 micro_batch=1000000000
expect_err "dpo batch_size=micro_batch=1e9: before the reference pass" \
    "dpo: $D/prefs.jsonl: 100 examples, fewer than one batch (batch_size 1000000000)" \
    "${SMALL_VM[@]}" "$RLHF" dpo init=m.h5 out_dir=d1 train_data=$D/prefs.jsonl batch_size=1000000000 micro_batch=1000000000
expect_err "rm batch_size=micro_batch=1e9" "rm: $D/prefs.jsonl: 100 examples, fewer than one batch" \
    "${SMALL_VM[@]}" "$RLHF" rm init=m.h5 out_dir=r1 train_data=$D/prefs.jsonl batch_size=1000000000 micro_batch=1000000000
fast 10 "sft, dpo, rm with a batch of 1e9"
[ ! -e s1/final.h5 ] && [ ! -e s1/settings.cfg ] && pass "sft: no run recorded" || fail "sft: no run recorded" "$(ls s1)"

# generate: --max-new beyond the context once sized the result (8 GB for 2e9,
# an int overflow for 2^31-1); generation stops when the context is full
started
ERR_ALONE=0
expect_ok "generate --max-new 2147483647 on a 32-token model" \
    "${SMALL_VM[@]}" "$RLHF" generate --model m.h5 --prompt "Q: 1+1=?" --max-new 2147483647 --jsonl
grep -q '"stop": *"\(context\|eot\)"' "$T/out" && pass "generate --max-new 2^31-1: stops at the context or the end token" ||
    fail "generate --max-new 2^31-1: stops at the context or the end token" "$(head -2 "$T/out")"
expect_ok "generate --prompts with --batch 1e9 --max-new 1e9" \
    "${SMALL_VM[@]}" "$RLHF" generate --model m.h5 --prompts $D/eval_prompts.jsonl --batch 1000000000 --max-new 1000000000 --jsonl
[ "$(wc -l <"$T/out")" = "$(wc -l <$D/eval_prompts.jsonl)" ] && pass "generate --batch 1e9: one line per prompt" ||
    fail "generate --batch 1e9: one line per prompt" "$(wc -l <"$T/out") lines"
fast 10 "generate with --max-new 2^31-1 and --batch 1e9"
unchanged "sizes"

# ---- item 18: the data is checked against the window before the model is built ----
# n_ctx=1e8 at n_embd=8 is a 3.2 GB model (and as much for gradients): under
# 4 GB it once failed allocating; now the data's length is the message
started
expect_err "pretrain n_ctx=1e8: the data is shorter than one window, said before building the model" \
    "pretrain: $D/pretrain.txt: [0-9]* tokens; pretraining needs at least one window of 100000001 (block_size + 1)" \
    "${SMALL_VM[@]}" "$RLHF" pretrain out_dir=p1 train_data=$D/pretrain.txt n_layer=1 n_head=2 n_embd=8 n_ctx=100000000
expect_err "pretrain n_ctx=2^31-1: no n_ctx + 1 overflow" "pretraining needs at least one window of 2147483648 (block_size + 1)" \
    "${SMALL_VM[@]}" "$RLHF" pretrain out_dir=p2 train_data=$D/pretrain.txt n_layer=1 n_head=2 n_embd=8 n_ctx=2147483647
expect_err "pretrain batch_size=1e9: fewer than one batch, before the model" \
    "pretrain: $D/pretrain.txt: [0-9]* examples, fewer than one batch (batch_size 1000000000)" \
    "${SMALL_VM[@]}" "$RLHF" pretrain out_dir=p3 train_data=$D/pretrain.txt n_layer=1 n_head=2 n_embd=8 n_ctx=8 \
    batch_size=1000000000 micro_batch=1000000000
fast 10 "pretrain: three data checks"
[ ! -e p1/settings.cfg ] && [ ! -e p1/final.h5 ] && pass "pretrain n_ctx=1e8: no run recorded" ||
    fail "pretrain n_ctx=1e8: no run recorded" "$(ls p1)"
unchanged "data checks"

# ---- item 13: a log row that cannot be written ends the run ------------------------
# 9000 steps of a tiny model (under a second): the 8192nd row fills
# metrics.h5's buffer and is the first write; it once warned on every later
# step and failed only at the next checkpoint (here: the last step)
LONG="out_dir=lf train_data=$D/pretrain.txt n_layer=1 n_head=1 n_embd=8 n_ctx=4 batch_size=1 micro_batch=1 max_steps=9000
      epochs=20 ckpt_every=100000 log_every=4096"
ERR_STATUS=1 expect_err "pretrain: metrics.h5 cannot be written (a full disk)" \
    "pretrain: lf/metrics.h5: column 'step': cannot write rows (No space left on device" \
    env RLHF_TEST_FAIL_WRITE=lf/metrics.h5 "$RLHF" pretrain $LONG
if ! grep -q "warning" "$T/err" && grep -q "step 8192/9000" "$T/err" && ! grep -q "step 9000/9000" "$T/err"; then
    pass "pretrain: stopped at the step that failed (8192), no warnings"
else fail "pretrain: stopped at the step that failed (8192), no warnings" \
    "$(grep -c warning "$T/err") warnings; $(grep '^pretrain: step' "$T/err" | tail -2)"; fi
[ ! -e lf/final.h5 ] && [ "$(ls lf/ckpt-* 2>/dev/null | wc -l)" = 0 ] && pass "pretrain: no checkpoint claims the lost rows" ||
    fail "pretrain: no checkpoint claims the lost rows" "$(ls lf)"
tiny_models "n_layer=1 n_embd=16 n_head=2 n_ctx=32" || fail "tiny models for PPO"
PPO="policy=sft/final.h5 reward_model=rm/final.h5 prompts=data/rl_prompts.jsonl batch_size=16 chunk=4 minibatch=8
     micro_batch=8 max_new=8 ppo_epochs=1 lr=1e-4 value_lr=1e-4 log_samples=0 iterations=2"
expect_err "ppo: rollouts.h5 cannot be written: every rank ends" "pf/rollouts.h5: column 'iteration': cannot write rows (No space left on device" \
    env RLHF_TEST_FAIL_WRITE=pf/rollouts.h5 $MPIRUN -x RLHF_TEST_FAIL_WRITE -n 3 "$RLHF" ppo $PPO out_dir=pf
[ ! -e pf/final.h5 ] && pass "ppo: no final.h5 after the failed log" || fail "ppo: no final.h5 after the failed log" "$(ls pf)"

exit $((NFAIL > 0))
