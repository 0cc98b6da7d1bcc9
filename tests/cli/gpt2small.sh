#!/bin/bash
# Every stage at GPT-2 small's size (124M: 12 layers, 12 heads, 768 wide,
# 1024 context, GPT-2 BPE), from launch/configs/gpt2-small/ shortened by
# overrides: the NLL of an imported 124M model against a float64 torch
# reference (tests/fixtures/gpt2small-nll.json, relative 1e-5); then a
# fresh 124M model through the Hugging Face layout (init, export-hf,
# import-hf) and pretrain -> SFT -> RM -> DPO -> PPO and GRPO on it, each a
# few steps: losses finite, falling where they should, DPO starting at
# log 2, PPO and GRPO at lag 0 with |ratio - 1| at float rounding.
# SLOW=1: more steps and larger batches (a few minutes more).
set -u
SUITE=gpt2small
. "$(dirname "$0")/../lib.sh"
scratch gpt2small
use_mpirun
FIX=$ROOT/tests/fixtures
CONF=$ROOT/launch/configs/gpt2-small
cd "$T"

# --- numerics at scale: NLL of an imported 124M model ------------------------
check "a 124M GPT-2 in Hugging Face layout (numpy)" $PY "$FIX/gpt2small_weights.py" hf_ref
check "import-hf of the 124M model" "$RLHF" import-hf hf_ref --out ref.h5
check "nll at 124M = float64 torch to relative 1e-5" $PY - "$RLHF" "$FIX/gpt2small-nll.json" <<'PY'
import json, subprocess, sys
rlhf, fix = sys.argv[1], json.load(open(sys.argv[2]))
got = json.load(open("hf_ref/checksums.json"))
for k, v in fix["checksums"].items():  # a changed generator, not a wrong forward pass
    assert abs(got[k] - v) <= 1e-9 * max(1.0, abs(v)), ("weights differ from the fixture's: regenerate it", k, got[k], v)
open("text.txt", "w").write(fix["text"])
out = json.loads(subprocess.run([rlhf, "nll", "--model", "ref.h5", "--text", "text.txt", "--json"],
                                check=True, capture_output=True, text=True).stdout)
assert out["tokens"] == len(fix["ids"]) - 1, (out["tokens"], len(fix["ids"]))
rel = abs(out["nll"] - fix["nll"]) / fix["nll"]
print("rlhf %.6f torch float64 %.9f rel %.2e" % (out["nll"], fix["nll"], rel))
assert rel < 1e-5, rel
PY
rm -rf hf_ref ref.h5

# --- the pipeline at 124M ----------------------------------------------------
if [ "${SLOW:-0}" = 1 ]; then
    N_PT=30 N_SFT=20 N_RM=20 N_DPO=10 N_RL=3 B=8
else
    N_PT=3 N_SFT=3 N_RM=2 N_DPO=2 N_RL=1 B=4
fi
# the stages' own checkpoints for resuming (1.5 GB each at this size) are not needed here
tidy() { rm -f "$1"/ckpt-*.h5; }
STEPS="batch_size=$B micro_batch=4 warmup_steps=0 log_every=1"
"$RLHF" data arith --out data --n 200 --seed 1 2>/dev/null
head -n $((4 * B)) data/prefs.jsonl >data/prefs_short.jsonl # DPO scores every pair with the reference first
# GPT-2's own initialisation (the model above is too sharp to train at these rates)
check "init a GPT-2 small shape with GPT-2's BPE" "$RLHF" init --out init.h5 --n-layer 12 --n-head 12 \
    --n-embd 768 --n-ctx 1024 --tokenizer "$FIX/gpt2-bpe" --seed 1
check "export-hf then import-hf at 124M" sh -c "'$RLHF' export-hf init.h5 --out hf && '$RLHF' import-hf hf --out base.h5"
rm -rf init.h5 hf
# losses NAME METRIC [falls]: finite, and the last below the first
losses() {
    $PY - "$@" <<'PY'
import sys, h5py, numpy as np
path, key = sys.argv[1], sys.argv[2]
v = h5py.File(path, "r")[key][()]
print(key, v)
assert len(v) >= 2 and np.isfinite(v).all(), v
assert len(sys.argv) < 4 or v[-1] < v[0], v
PY
}
check "pretrain (gpt2-small/pretrain.conf, init from the import)" "$RLHF" pretrain --config "$CONF/pretrain.conf" \
    init=base.h5 train_data=data/pretrain.txt out_dir=pt block_size=32 $STEPS max_steps=$N_PT lr=3e-4
check "pretrain loss falls" losses pt/metrics.h5 loss falls
tidy pt
rm -f base.h5
check "sft (gpt2-small/sft.conf)" "$RLHF" sft --config "$CONF/sft.conf" init=pt/final.h5 out_dir=sft \
    train_data=data/sft.jsonl $STEPS max_steps=$N_SFT lr=1e-4
check "sft loss falls" losses sft/metrics.h5 loss falls
tidy sft
check "rm (gpt2-small/rm.conf)" "$RLHF" rm --config "$CONF/rm.conf" init=sft/final.h5 out_dir=rm \
    train_data=data/prefs_short.jsonl $STEPS max_steps=$N_RM norm_samples=8 norm_max_new=8
check "rm loss finite" losses rm/metrics.h5 loss
tidy rm
check "dpo (gpt2-small/dpo.conf)" "$RLHF" dpo --config "$CONF/dpo.conf" init=sft/final.h5 out_dir=dpo \
    train_data=data/prefs_short.jsonl $STEPS max_steps=$N_DPO
check "dpo starts at log 2 (policy = reference), finite" $PY - <<'PY'
import math, h5py, numpy as np
v = h5py.File("dpo/metrics.h5", "r")["loss"][()]
print(v)
assert np.isfinite(v).all() and abs(v[0] - math.log(2)) < 1e-4, v
PY
rm -rf dpo

# ratio_dev RUN: the first minibatch's max |ratio - 1| at float rounding
# (actors sampled with the weights the learner starts from), losses finite
ratio_dev() {
    $PY - "$1" <<'PY'
import sys, h5py, numpy as np
m = h5py.File(sys.argv[1] + "/metrics.h5", "r")
d = m["ratio_dev_first"][()]
print("max |ratio-1| first minibatch:", d, "policy loss", m["policy_loss"][()])
assert len(d) >= 1 and (d < 1e-5).all(), d
assert np.isfinite(m["policy_loss"][()]).all()
PY
}
RL="prompts=data/rl_prompts.jsonl iterations=$N_RL batch_size=$B micro_batch=4 minibatch=$B max_new=8 log_samples=0"
check "ppo at 124M (gpt2-small/ppo.conf; 1 learner, 1 rewarder, 2 actors)" $MPIRUN -n 4 "$RLHF" ppo \
    --config "$CONF/ppo.conf" policy=sft/final.h5 reward_model=rm/final.h5 out_dir=ppo $RL chunk=2 ppo_epochs=1
check "ppo: |ratio - 1| at float rounding at lag 0" ratio_dev ppo
rm -rf ppo
check "grpo at 124M (gpt2-small/grpo.conf; 1 learner, 1 rewarder, 1 actor)" $MPIRUN -n 3 "$RLHF" grpo \
    --config "$CONF/grpo.conf" policy=sft/final.h5 out_dir=grpo $RL group_size=4 chunk=4 verifier=gold
check "grpo: |ratio - 1| at float rounding at lag 0" ratio_dev grpo
