#!/bin/bash
# End-to-end tests of the supervised stages on the built-in task at a tiny
# size: data determinism; pretrain -> SFT -> RM -> DPO with the learning
# signals checked (SFT lowers held-out loss, the RM beats chance, DPO beats SFT
# on gold score); data-parallel N=2 equals N=1; kill -9 and SIGTERM resume to
# bit-identical weights with no duplicate metric rows; and bad input, each
# with a one-line error naming the file/line/key and nothing damaged.
set -u
SUITE=train
. "$(dirname "$0")/../lib.sh"
scratch train
use_mpirun
cd "$T"
D=data
MODEL="n_layer=2 n_embd=64 n_head=4 n_ctx=48"
COMMON="batch_size=16 micro_batch=8 log_every=1000 warmup_steps=5"

# --- data -----------------------------------------------------------------
"$RLHF" data arith --out $D --n 800 --seed 3 2>/dev/null
"$RLHF" data arith --out d2 --n 800 --seed 3 2>/dev/null
"$RLHF" data arith --out d3 --n 800 --seed 4 2>/dev/null
same=1; for f in pretrain.txt sft.jsonl prefs.jsonl rankings.jsonl eval_prompts.jsonl; do cmp -s $D/$f d2/$f || same=0; done
[ $same = 1 ] && ! cmp -s $D/sft.jsonl d3/sft.jsonl && pass "data arith deterministic per seed" || fail "data arith deterministic per seed"

# --- the pipeline ------------------------------------------------------------
check "pretrain" "$RLHF" pretrain out_dir=pt train_data=$D/pretrain.txt $MODEL $COMMON epochs=3 lr=2e-3
# block_size: windows shorter than the context, from a checkpoint; never longer
"$RLHF" pretrain out_dir=pt_b16 init=pt/final.h5 train_data=$D/pretrain.txt block_size=16 $COMMON max_steps=2 2>pt_b16.err
check "pretrain block_size=16 cuts 16-token windows" $PY - pt_b16.err <<'PY'
import re, sys
err = open(sys.argv[1]).read()
n = int(re.search(r"(\d+) training examples", err).group(1))
toks = len(open("data/pretrain.txt", "rb").read())  # the byte tokenizer: one token a byte
assert n == (toks - 1) // 16, (n, toks)
PY
expect_err "pretrain block_size above n_ctx" "block_size = 49: more than the model's context (n_ctx 48)" \
    "$RLHF" pretrain out_dir=pt_b49 init=pt/final.h5 train_data=$D/pretrain.txt block_size=49 $COMMON
check "sft" "$RLHF" sft init=pt/final.h5 out_dir=sft train_data=$D/sft.jsonl valid_data=$D/sft_valid.jsonl $COMMON epochs=3 lr=1e-3 dropout=0.1
check "sft lowers held-out loss" $PY - <<'PY'
import h5py
l = h5py.File("sft/eval.h5", "r")["loss"][()]
print(l); assert len(l) >= 2 and l[-1] < l[0] - 0.1, l
PY
check "rm (pairs + rankings)" sh -c "cat $D/prefs.jsonl $D/rankings.jsonl > $D/rm_train.jsonl &&
    '$RLHF' rm init=sft/final.h5 out_dir=rm train_data=$D/rm_train.jsonl valid_data=$D/prefs_valid.jsonl $COMMON epochs=3 lr=1e-3 norm_samples=64"
check "rm held-out accuracy well above chance" $PY - <<'PY'
import h5py
a = h5py.File("rm/eval.h5", "r")["accuracy"][()]
print(a); assert a[-1] > 0.6, a   # 80 held-out pairs of 10 prompts: chance 0.5
PY
check "rm stores score normalisation" $PY -c "import h5py; a=h5py.File('rm/final.h5','r')['reward'].attrs; assert a['score_scale']>0, dict(a)"
check "dpo" "$RLHF" dpo init=sft/final.h5 out_dir=dpo train_data=$D/prefs.jsonl valid_data=$D/prefs_valid.jsonl $COMMON epochs=1 lr=1e-4 beta=0.1
for v in ipo cdpo; do
    ls_=""; [ $v = cdpo ] && ls_="label_smoothing=0.1"
    check "dpo loss_type=$v" "$RLHF" dpo init=sft/final.h5 out_dir=dpo_$v train_data=$D/prefs.jsonl $COMMON max_steps=3 loss_type=$v $ls_
done
"$RLHF" eval --policy sft/final.h5 --prompts $D/eval_prompts.jsonl --rm rm/final.h5 --ref sft/final.h5 --json --seed 5 >sft_eval.json 2>/dev/null
"$RLHF" eval --policy dpo/final.h5 --prompts $D/eval_prompts.jsonl --rm rm/final.h5 --ref sft/final.h5 --json --seed 5 >dpo_eval.json 2>/dev/null
check "dpo raises gold score over sft" $PY - <<'PY'
import json
s, d = json.load(open("sft_eval.json")), json.load(open("dpo_eval.json"))
print("sft", s["gold"], "dpo", d["gold"]); assert d["gold"]["mean"] > s["gold"]["mean"], (s, d)
PY
check "score" sh -c "'$RLHF' score --model rm/final.h5 --data $D/prefs_valid.jsonl > scores.jsonl && [ \$(wc -l < scores.jsonl) -eq 80 ]"

# --- data parallel: N=2 equals N=1 --------------------------------------------
SFT1="init=pt/final.h5 train_data=$D/sft.jsonl $COMMON max_steps=4 dropout=0.1"
"$RLHF" sft $SFT1 out_dir=dp1 >/dev/null 2>&1
$MPIRUN -n 2 "$RLHF" sft $SFT1 out_dir=dp2 >/dev/null 2>&1
check "data-parallel 2 ranks = 1 rank (float reduction order only)" $PY "$ROOT/tests/compare_ckpt.py" dp1/final.h5 dp2/final.h5 --tol 1e-4
expect_err "batch not divisible by ranks" "multiple of micro_batch" $MPIRUN -n 3 "$RLHF" sft $SFT1 out_dir=dp3

# --- resume ------------------------------------------------------------------
# (40 steps: the signals below must land before the run ends, which on an
# idle machine is a fraction of a second after the first checkpoint)
RES="init=pt/final.h5 train_data=$D/sft.jsonl $COMMON max_steps=40 ckpt_every=3 dropout=0.1"
# first_ckpt DIR: until DIR holds a step checkpoint (they rotate: keep 2)
first_ckpt() { for i in $(seq 2000); do ls "$1"/ckpt-*.h5 >/dev/null 2>&1 && return 0; sleep 0.005; done; return 1; }
"$RLHF" sft $RES out_dir=full >/dev/null 2>&1
"$RLHF" sft $RES out_dir=killed >/dev/null 2>&1 &
pid=$!
first_ckpt killed
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
"$RLHF" sft $RES out_dir=killed >killed.log 2>&1
grep -q "resuming from" killed.log && pass "kill -9 then rerun resumes" || fail "kill -9 then rerun resumes" "$(tail -2 killed.log)"
check "resumed run bit-identical to uninterrupted" $PY "$ROOT/tests/compare_ckpt.py" full/final.h5 killed/final.h5
check "metrics: no duplicate or missing rows" $PY - <<'PY'
import h5py, numpy as np
s = h5py.File("killed/metrics.h5", "r")["step"][()]
assert list(s) == list(range(1, 41)), s
PY
"$RLHF" sft $RES out_dir=termed >/dev/null 2>&1 &
pid=$!
first_ckpt termed
kill -TERM $pid; wait $pid; rc=$?
[ $rc = 143 ] && pass "SIGTERM: checkpoint and exit 143" || fail "SIGTERM: checkpoint and exit 143" "exit $rc"
"$RLHF" sft $RES out_dir=termed >/dev/null 2>&1
check "SIGTERM resume bit-identical" $PY "$ROOT/tests/compare_ckpt.py" full/final.h5 termed/final.h5

# --- bad input ------------------------------------------------------------------
S="init=pt/final.h5 $COMMON max_steps=2"
printf '{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": }\n' >bad_json.jsonl
expect_err "bad JSON names file:line" "bad_json.jsonl:2" "$RLHF" sft $S out_dir=x train_data=bad_json.jsonl
printf '{"prompt": "a"}\n' >no_field.jsonl
expect_err "missing field" 'no_field.jsonl:1: field "completion": missing' "$RLHF" sft $S out_dir=x train_data=no_field.jsonl
printf '{"prompt": "a", "completion": 7}\n' >bad_type.jsonl
expect_err "mistyped field" 'bad_type.jsonl:1: field "completion"' "$RLHF" sft $S out_dir=x train_data=bad_type.jsonl
printf '{"prompt": "a", "completion": "\xff\xfe"}\n' >bad_utf8.jsonl
expect_err "invalid UTF-8" "bad_utf8.jsonl:1: .*UTF-8" "$RLHF" sft $S out_dir=x train_data=bad_utf8.jsonl
: >empty.jsonl
expect_err "empty file" "empty.jsonl: no usable examples" "$RLHF" sft $S out_dir=x train_data=empty.jsonl
expect_err "missing file" "nothere.jsonl" "$RLHF" sft $S out_dir=x train_data=nothere.jsonl
long=$(head -c 100 /dev/zero | tr '\0' 'x')
printf '{"prompt": "a", "completion": "%s"}\n' "$long" >long.jsonl
expect_err "too long with long_sequences=error" "long.jsonl:1: sequence of .* longer than the context" "$RLHF" sft $S out_dir=x train_data=long.jsonl long_sequences=error
expect_err "unknown config key" "unknown key 'lerning_rate'" "$RLHF" sft $S out_dir=x train_data=$D/sft.jsonl lerning_rate=1
printf 'lr = 1e-3\nbatch_size = 8x\n' >bad.conf
expect_err "bad config value names file:line" "bad.conf:2: 'batch_size' expects an integer" "$RLHF" sft --config bad.conf $S out_dir=x train_data=$D/sft.jsonl
expect_err "reward model where a policy is expected" "rm/final.h5: is a reward checkpoint" "$RLHF" sft init=rm/final.h5 $COMMON out_dir=x train_data=$D/sft.jsonl
"$RLHF" init --out other_vocab.h5 --tokenizer "$ROOT/tests/fixtures/gpt2-bpe" --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 48 2>/dev/null
expect_err "reference with another vocabulary" "other_vocab.h5: the reference must be" "$RLHF" dpo init=sft/final.h5 ref=other_vocab.h5 $COMMON out_dir=x train_data=$D/prefs.jsonl
expect_err "bad data under mpirun: every rank exits" "bad_json.jsonl:2" $MPIRUN -n 2 "$RLHF" sft $S out_dir=x train_data=bad_json.jsonl
cp sft/final.h5 keep.h5
expect_err "changed config on an existing run" "different configuration" "$RLHF" sft init=pt/final.h5 train_data=$D/sft.jsonl valid_data=$D/sft_valid.jsonl $COMMON epochs=3 lr=9e-4 dropout=0.1 out_dir=sft
cmp -s sft/final.h5 keep.h5 && pass "failed runs leave existing results intact" || fail "failed runs leave existing results intact"
