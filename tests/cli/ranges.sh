#!/bin/bash
# Out-of-range settings (issue 14 items 8, 12, 14): every stage refuses a
# number outside its key's range before any work starts, with one error line
# naming the key, where the value came from and the range; no output file is
# created and nothing already in out_dir changes. Before ranges, ckpt_every=0
# and log_every=0 divided by zero (SIGFPE) after training had begun, and a
# negative lr, epochs=0 or beta1=1 ran. Options of the other subcommands
# (init, generate, eval, ...) are checked the same way.
set -u
SUITE=ranges
. "$(dirname "$0")/../lib.sh"
scratch ranges
use_mpirun
cd "$T"
D=data
"$RLHF" data arith --out $D --n 200 --seed 1 2>/dev/null
"$RLHF" init --out m.h5 --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 2>/dev/null
TINY="n_layer=1 n_head=2 n_embd=16 n_ctx=32 batch_size=8 micro_batch=8 max_steps=2"

# a stage's refusal: one error line naming PATTERN, and out_dir never created
refused_fresh() {
    local name=$1 pat=$2
    shift 2
    rm -rf fresh
    expect_err "$name" "$pat" "$@" out_dir=fresh
    [ ! -e fresh ] && pass "$name: out_dir not created" || fail "$name: out_dir not created" "$(ls -la fresh)"
}

# item 8: intervals of 0 or below, before any step (they divided by zero)
refused_fresh "pretrain ckpt_every=0" "command line: ckpt_every must be >= 1, got 0" \
    "$RLHF" pretrain train_data=$D/pretrain.txt $TINY ckpt_every=0
refused_fresh "pretrain log_every=0" "command line: log_every must be >= 1, got 0" \
    "$RLHF" pretrain train_data=$D/pretrain.txt $TINY log_every=0
refused_fresh "pretrain log_every=-1" "command line: log_every must be >= 1, got -1" \
    "$RLHF" pretrain train_data=$D/pretrain.txt $TINY log_every=-1
# item 14: one key per stage, and the keys the issue names
refused_fresh "sft lr<0" "command line: lr must be >= 0, got -1e-3" \
    "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl lr=-1e-3
refused_fresh "sft epochs=0" "epochs must be >= 1, got 0" "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl epochs=0
refused_fresh "sft beta1=1" "beta1 must be in \[0, 1), got 1" "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl beta1=1
refused_fresh "sft dropout=1" "dropout must be in \[0, 1), got 1" "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl dropout=1
refused_fresh "sft warmup_steps<0" "warmup_steps must be >= 0, got -5" \
    "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl warmup_steps=-5
refused_fresh "sft keep_checkpoints<0" "keep_checkpoints must be >= 0, got -1" \
    "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl keep_checkpoints=-1
refused_fresh "sft lr_min > lr" "lr_min (0.01, from command line) must be <= lr (0.001, from command line)" \
    "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl lr=1e-3 lr_min=1e-2
refused_fresh "rm norm_max_new=0" "norm_max_new must be >= 1, got 0" \
    "$RLHF" rm init=m.h5 train_data=$D/prefs.jsonl norm_max_new=0
refused_fresh "dpo beta=0" "beta must be > 0, got 0" "$RLHF" dpo init=m.h5 train_data=$D/prefs.jsonl beta=0
refused_fresh "dpo grad_clip<0" "grad_clip must be >= 0, got -1" \
    "$RLHF" dpo init=m.h5 train_data=$D/prefs.jsonl grad_clip=-1
printf 'train_data = %s\n# a comment\nmax_steps = -2\n' "$D/pretrain.txt" >bad.conf
refused_fresh "a config file names file:line" "bad.conf:3: max_steps must be >= 0, got -2" \
    "$RLHF" pretrain --config bad.conf $TINY

# a run directory that exists is left byte-identical
mkdir -p keep && printf 'not a real log\n' >keep/metrics.h5 && printf 'x' >keep/final.h5
sha=$(cat keep/* | sha256sum)
expect_err "sft ckpt_every=0 in an existing out_dir" "ckpt_every must be >= 1, got 0" \
    "$RLHF" sft init=m.h5 train_data=$D/sft.jsonl ckpt_every=0 out_dir=keep
[ "$(cat keep/* | sha256sum)" = "$sha" ] && [ "$(ls keep | wc -l)" = 2 ] && pass "existing out_dir untouched" \
    || fail "existing out_dir untouched" "$(ls -la keep)"

# PPO: every rank refuses, one line, before roles are assigned
PPO="policy=m.h5 reward_model=m.h5 prompts=$D/rl_prompts.jsonl"
for kv in "ckpt_every=0:ckpt_every must be >= 1, got 0" "clip=-0.1:clip must be >= 0, got -0.1" \
          "kl_target=-1:kl_target must be >= 0, got -1" "reward_clip=-5:reward_clip must be >= 0, got -5" \
          "gamma=1.5:gamma must be in \[0, 1\], got 1.5" "top_p=0:top_p must be in (0, 1\], got 0"; do
    refused_fresh "ppo ${kv%%:*}" "ppo: command line: ${kv#*:}" $MPIRUN -n 3 "$RLHF" ppo $PPO "${kv%%:*}"
done

# options of the other subcommands; an existing output is not touched
printf 'keep me' >old.h5
expect_err "init --n-layer 0" "init: --n-layer must be >= 1, got 0" "$RLHF" init --out old.h5 --n-layer 0
[ "$(cat old.h5)" = "keep me" ] && pass "init refusal leaves --out untouched" || fail "init refusal leaves --out untouched"
expect_err "generate --temperature 0" "generate: --temperature must be > 0, got 0" \
    "$RLHF" generate --model m.h5 --prompt Hi --temperature 0
expect_err "generate --batch 0" "generate: --batch must be >= 1, got 0" "$RLHF" generate --model m.h5 --prompt Hi --batch 0
expect_err "eval --n -1" "eval: --n must be >= 0, got -1" "$RLHF" eval --policy m.h5 --prompts $D/eval_prompts.jsonl --n -1
expect_err "eval --top-p 2" "eval: --top-p must be in (0, 1\], got 2" \
    "$RLHF" eval --policy m.h5 --prompts $D/eval_prompts.jsonl --top-p 2
expect_err "nll --batch 0" "nll: --batch must be >= 1, got 0" "$RLHF" nll --model m.h5 --text $D/pretrain.txt --batch 0
expect_err "data --n -1" "data: --n must be >= 1, got -1" "$RLHF" data arith --out d2 --n -1
[ ! -e d2 ] && pass "data refusal creates nothing" || fail "data refusal creates nothing"

# help shows the ranges
"$RLHF" sft --help | grep -q "ckpt_every=INT .*(default: 100; >= 1)" && pass "sft --help shows ranges" \
    || fail "sft --help shows ranges"
"$RLHF" generate --help | grep -q -- "--top-p P .*in (0, 1\])" && pass "generate --help shows ranges" \
    || fail "generate --help shows ranges"
"$RLHF" config-reference | grep -q '^| `beta1` | float | `0.9` | `\[0, 1)` |' && pass "config-reference has a Range column" \
    || fail "config-reference has a Range column"
