#!/bin/bash
# Messages that mislead or omit the file/field (issue 14 items 17, 18): each
# refusal is one error line that says what is wrong and what to do, exit
# status non-zero, and nothing that existed before changes.
set -u
SUITE=messages
. "$(dirname "$0")/../lib.sh"
scratch messages
cd "$T"
D=data
"$RLHF" data arith --out $D --n 50 --seed 5 2>/dev/null
"$RLHF" init --out m.h5 --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 2>/dev/null
TINY="n_layer=1 n_head=2 n_embd=16 n_ctx=32 batch_size=8 micro_batch=8 max_steps=2"
sum0=$(sha256sum m.h5)
unchanged() { [ "$(sha256sum m.h5)" = "$sum0" ] && pass "$1: m.h5 unchanged" || fail "$1: m.h5 unchanged"; }

# item 17: a float outside float's range is named as such, not "not a number"
expect_err "generate --temperature 1e-45" "generate: --temperature: 1e-45 is too small for a float (smallest normal 1.2e-38)" \
    "$RLHF" generate --model m.h5 --prompt hi --temperature 1e-45
expect_err "generate --temperature 1e39" "generate: --temperature: 1e39 is too large for a float (largest 3.4e+38)" \
    "$RLHF" generate --model m.h5 --prompt hi --temperature 1e39
expect_ok "generate --temperature 1e-30 (fits a float)" "$RLHF" generate --model m.h5 --prompt hi --temperature 1e-30 --max-new 2
expect_err "pretrain lr=1e-45" "command line: 'lr': 1e-45 is too small for a float" \
    "$RLHF" pretrain out_dir=pt train_data=$D/pretrain.txt $TINY lr=1e-45
expect_err "pretrain lr=1e39" "command line: 'lr': 1e39 is too large for a float" \
    "$RLHF" pretrain out_dir=pt train_data=$D/pretrain.txt $TINY lr=1e39
[ ! -e pt ] && pass "pretrain lr=1e-45: out_dir not created" || fail "pretrain lr=1e-45: out_dir not created"
unchanged "float range"

# item 17: micro_batch > batch_size had a rank-count hint ("a rank count that divides 0")
expect_err "pretrain micro_batch > batch_size" "micro_batch (16) is larger than batch_size (8); set micro_batch to at most batch_size" \
    "$RLHF" pretrain out_dir=pt train_data=$D/pretrain.txt $TINY micro_batch=16
expect_err "pretrain batch_size not a multiple of micro_batch" "batch_size (12) must be a multiple of micro_batch (8); change batch_size or micro_batch" \
    "$RLHF" pretrain out_dir=pt train_data=$D/pretrain.txt $TINY batch_size=12

# item 17: inspect --json on a checkpoint printed the text summary; now one
# JSON object with the text's fields, valid UTF-8 even for a non-UTF-8 path
cp m.h5 "$(printf 'bad\xff.h5')"
"$RLHF" inspect --json "$(printf 'bad\xff.h5')" >insp.json 2>insp.err
rc=$?
if [ $rc = 0 ] && "$PY" - insp.json <<'PY'; then pass "inspect --json checkpoint: JSON with the text's fields"; else fail "inspect --json checkpoint: JSON with the text's fields" "exit $rc: $(head -c 300 insp.json) $(cat insp.err)"; fi
import json, sys
raw = open(sys.argv[1], "rb").read()
o = json.loads(raw.decode("utf-8"))  # strict: invalid UTF-8 raises
assert raw.count(b"\n") == 1
assert o["file"] == "bad\ufffd.h5", o["file"]
assert (o["layers"], o["heads"], o["width"], o["context"], o["vocab"]) == (1, 2, 16, 32, 257), o
assert o["tokenizer"] == "byte" and o["parameters"] == 7936 and o["param_rms"] > 0, o
assert set(o) == {"file", "kind", "head", "layers", "heads", "width", "context", "vocab", "tokenizer", "parameters", "param_rms"}, o
PY
"$RLHF" inspect m.h5 >insp.txt && grep -q "^parameters  7936$" insp.txt && pass "inspect checkpoint: text unchanged" || fail "inspect checkpoint: text unchanged" "$(cat insp.txt)"
unchanged "inspect"

# item 17: a Hugging Face directory with the weights in another form said
# only "model.safetensors: cannot open"; now what to do
"$RLHF" export-hf m.h5 --out hf 2>/dev/null
cp -r hf hfbin && mv hfbin/model.safetensors hfbin/pytorch_model.bin
cp -r hf hfshard && mv hfshard/model.safetensors hfshard/model-00001-of-00002.safetensors
echo '{"weight_map": {}}' >hfshard/model.safetensors.index.json
sumd=$(cat hfbin/* hfshard/* | sha256sum)
expect_err "import-hf pytorch_model.bin only" "hfbin: has pytorch_model.bin but no model.safetensors; convert it with transformers: model.save_pretrained(dir, safe_serialization=True" \
    "$RLHF" import-hf hfbin --out imp.h5
expect_err "import-hf sharded safetensors" "hfshard: has a sharded checkpoint (model.safetensors.index.json) but no model.safetensors; sharded checkpoints are not supported: .*max_shard_size" \
    "$RLHF" import-hf hfshard --out imp.h5
[ ! -e imp.h5 ] && [ "$(cat hfbin/* hfshard/* | sha256sum)" = "$sumd" ] && pass "import-hf refusals: nothing written or changed" \
    || fail "import-hf refusals: nothing written or changed"
rm -f hf/model.safetensors
expect_err "import-hf no weights at all" "hf/model.safetensors: cannot open: No such file" "$RLHF" import-hf hf --out imp.h5

# item 17: with value_init empty the value model is the reward model; a
# reward model with a shorter context was reported as "the value model",
# which only value_init names. MPMD, so that only the learner sees the short
# reward model (the rewarder would otherwise report it first, as the reward model)
use_mpirun
"$RLHF" init --out rm16.h5 --head scalar --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 16 2>/dev/null
"$RLHF" init --out rm32.h5 --head scalar --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 2>/dev/null
sumr=$(sha256sum rm16.h5 rm32.h5)
PPO="policy=m.h5 prompts=$D/rl_prompts.jsonl batch_size=8 iterations=1 max_new=4"
expect_err "ppo short reward model as value model" "ppo: rm16.h5: the value model (reward_model, as value_init is empty) must have at least the context of the policy (32 tokens); it has 16" \
    $MPIRUN -n 1 "$RLHF" ppo $PPO out_dir=ppo1 reward_model=rm16.h5 role=learner : -n 1 "$RLHF" ppo $PPO out_dir=ppo1 reward_model=rm32.h5 role=rewarder \
    : -n 1 "$RLHF" ppo $PPO out_dir=ppo1 reward_model=rm32.h5 role=actor
expect_err "ppo short value_init" "ppo: rm16.h5: the value model (value_init) must have at least the context of the policy (32 tokens); it has 16" \
    $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=ppo2 reward_model=rm32.h5 value_init=rm16.h5
[ "$(sha256sum rm16.h5 rm32.h5)" = "$sumr" ] && pass "ppo value model refusals: models unchanged" || fail "ppo value model refusals: models unchanged"
unchanged "ppo"
