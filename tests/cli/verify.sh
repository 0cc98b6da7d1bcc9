#!/bin/bash
# End-to-end tests of verifiable rewards on the distributed RL job (issue
# 15, "Rewards"): reward = verifier with no reward model and no reference
# (kl_in = none), rm+verifier weights, the overlong penalty, the answer
# verifier on {"prompt","answer"} prompts, kl_in = loss / reward shaping,
# and external cmd: verifiers that crash, hang or print garbage: the job ends
# on every rank with one error naming the program and the line, never a
# hang. Every check reads the rollout log with h5py and recomputes the
# expected values in numpy from the logged components.
set -u
SUITE=verify
. "$(dirname "$0")/../lib.sh"
scratch verify
use_mpirun
cd "$T"
D=data
tiny_models && pass "tiny SFT and RM" || fail "tiny SFT and RM"
"$RLHF" sft init=pt/final.h5 out_dir=sftl train_data=$D/sft.jsonl batch_size=16 micro_batch=8 log_every=1000 \
    warmup_steps=2 epochs=8 lr=2e-3 >/dev/null 2>&1
V="policy=sftl/final.h5 prompts=$D/rl_prompts.jsonl batch_size=16 chunk=4 max_new=8 lr=1e-4 log_samples=0"
V="$V kl_target=0 group_size=4 minibatch=8 micro_batch=8 ppo_epochs=1 iterations=2 advantage=grpo"
GOLD0="verifier=gold verifier_offensive_penalty=0 verifier_word_penalty=0"

# ---- the gold verifier alone: no reward model, no reference ---------------------------
$MPIRUN -n 3 "$RLHF" ppo $V reward=verifier $GOLD0 kl_in=none out_dir=gold >gold.log 2>&1
check "reward=verifier without reward_model, kl_in=none: the job runs" test -s gold/final.h5
grep -q "rewarders score with the verifier gold; no reference model (kl_in = none)" gold.log &&
    pass "the log says what scores and that no reference is loaded" ||
    fail "the log says what scores and that no reference is loaded" "$(grep 'score with' gold.log)"
check "score = r_verifier = the gold judge's correctness; no RM score, no KL" $PY - <<'PY'
import h5py, numpy as np
f = h5py.File("gold/rollouts.h5", "r")
score, rv, vc, gold = f["score"][()], f["r_verifier"][()], f["v_correct"][()], f["gold"][()]
assert np.array_equal(score, rv) and np.array_equal(rv, vc), (score, rv, vc)
assert np.array_equal(vc, (gold > 0.05).astype(float)), (vc, gold)   # correct iff gold > 0: manners and concision cost < 1
assert np.isnan(f["r_theta"][()]).all() and (f["kl"][()] == 0).all() and (f["logp_ref"][()] == 0).all()
assert np.isnan(f["v_format"][()]).sum() == 0 and set(np.unique(f["v_format"][()])) <= {0.0, 1.0}
m = h5py.File("gold/metrics.h5", "r")
assert np.allclose(m["r_verifier"][()], [rv[f["iteration"][()] == i].mean() for i in range(2)])
PY

# ---- weights and the overlong penalty ---------------------------------------------------
$MPIRUN -n 3 "$RLHF" ppo $V reward=verifier $GOLD0 verifier_weight=2 overlong_buffer=4 overlong_penalty=0.5 \
    out_dir=over >/dev/null 2>&1
check "overlong_buffer=4: score = 2 r_verifier - 0.5 (n - 4) / 4 past 4 tokens" $PY - <<'PY'
import h5py, numpy as np
f = h5py.File("over/rollouts.h5", "r")
n, score, rv, ov = f["response_len"][()], f["score"][()], f["r_verifier"][()], f["overlong"][()]
want = np.where(n > 4, -0.5 * (n - 4) / 4, 0.0)
assert np.allclose(ov, want, atol=1e-7), (n, ov)
assert np.allclose(score, 2 * rv + want, atol=1e-6), (score, rv, want)
assert (n > 4).any()
PY
$MPIRUN -n 3 "$RLHF" ppo $V reward=rm+verifier reward_model=rm/final.h5 rm_weight=0.5 $GOLD0 out_dir=both >/dev/null 2>&1
check "reward=rm+verifier: score = 0.5 r_theta + r_verifier; kl_in=reward: reward = score - lambda kl" $PY - <<'PY'
import h5py, numpy as np
f = h5py.File("both/rollouts.h5", "r")
score, rt, rv = f["score"][()], f["r_theta"][()], f["r_verifier"][()]
assert np.isfinite(rt).all() and np.allclose(score, 0.5 * rt + rv, atol=1e-6)
assert np.allclose(f["reward"][()], score - f["lambda"][()] * f["kl_sum"][()], atol=1e-5)
PY
$MPIRUN -n 3 "$RLHF" ppo $V reward=verifier $GOLD0 kl_in=loss lr=1e-3 ppo_epochs=2 out_dir=klloss >/dev/null 2>&1
check "kl_in=loss: the reference is loaded (KL logged) but the reward is the score alone" $PY - <<'PY'
import h5py, numpy as np
f = h5py.File("klloss/rollouts.h5", "r")
assert np.allclose(f["reward"][()], f["score"][()], atol=1e-7)
it = f["iteration"][()]
assert (f["logp_ref"][()][it == 0] != 0).any() and np.abs(f["kl_sum"][()][it == 1]).max() > 0
PY

# ---- the answer verifier on {"prompt","answer"} ------------------------------------------
$PY - <<'PY'
import json, re
with open("data/rl_prompts.jsonl") as f, open("answers.jsonl", "w") as out:
    for line in f:
        p = json.loads(line)["prompt"]
        a, op, b = re.search(r"(-?\d+)\s*([+-])\s*(-?\d+)", p).groups()
        out.write(json.dumps({"prompt": p, "answer": int(a) + int(b) if op == "+" else int(a) - int(b)}) + "\n")
PY
$MPIRUN -n 3 "$RLHF" ppo ${V/prompts=$D\/rl_prompts.jsonl/prompts=answers.jsonl} reward=verifier verifier=answer \
    kl_in=none out_dir=ans >ans.log 2>&1
check "verifier=answer: correct where the gold judge says so" $PY - <<'PY'
import h5py, numpy as np
f = h5py.File("ans/rollouts.h5", "r")
vc, gold = f["v_correct"][()], f["gold"][()]
assert np.array_equal(vc, (gold > 0.05).astype(float)), np.stack([vc, gold])
assert np.isnan(f["v_manners"][()]).all()     # a component the answer verifier does not measure
PY
printf '{"prompt": "Q: 1+1=?\\nA:", "answer": [2]}\n' >badans.jsonl
expect_err "a bad answer field names file:line" "badans.jsonl:1: .*answer" \
    $MPIRUN -n 3 "$RLHF" ppo ${V/prompts=$D\/rl_prompts.jsonl/prompts=badans.jsonl} reward=verifier verifier=answer out_dir=x
expect_err "reward=rm without reward_model is refused" "reward = rm needs reward_model" \
    $MPIRUN -n 3 "$RLHF" ppo $V reward=rm out_dir=x

# ---- external verifiers ---------------------------------------------------------------------
F=$ROOT/tests/fixtures/verifiers
$MPIRUN -n 3 "$RLHF" ppo ${V/prompts=$D\/rl_prompts.jsonl/prompts=answers.jsonl} reward=verifier \
    "verifier=cmd:$F/good.py" kl_in=none out_dir=ext >ext.log 2>&1
check "cmd: a Python checker scores every sample (1 if the answer is in the response)" $PY - <<'PY'
import h5py, numpy as np
f = h5py.File("ext/rollouts.h5", "r")
rv = f["r_verifier"][()]
assert len(rv) == 32 and set(np.unique(rv)) <= {0.0, 1.0}, rv
PY
# bad NAME WHAT ARGS: the 3-rank job ends, within 60 s, with one error
# naming the rewarder, the program and WHAT, and no rank is left
bad() {
    local name=$1 what=$2
    shift 2
    local t0=$(now_ms)
    expect_err "$name: the job ends with one error naming the program" "$what" \
        $MPIRUN -n 3 "$RLHF" ppo $V reward=verifier kl_in=none verifier_timeout=1 "$@" out_dir=bad_$RANDOM
    [ $(( $(now_ms) - t0 )) -lt 60000 ] && ! pgrep -f "rlhf ppo .*out_dir=bad_" >/dev/null &&
        pass "$name: every rank gone" || fail "$name: every rank gone" "$(pgrep -af 'rlhf ppo')"
}
bad "crashing verifier" "rewarder (rank 1): verifier cmd:.*exit_after_one.sh: .*line 2" "verifier=cmd:$F/exit_after_one.sh"
bad "hanging verifier" "rewarder (rank 1): verifier cmd:.*hang.sh: no answer to line 1 .*verifier_timeout = 1 s" \
    "verifier=cmd:$F/hang.sh"
bad "garbage verifier" "reply.sh abc: line 1 .*'abc', not a number" "verifier=cmd:$F/reply.sh abc"
bad "missing verifier program" "verifier cmd:no-such-checker: no-such-checker: not found on PATH" \
    "verifier=cmd:no-such-checker"
# two rewarders, each with its program: both may report before the job ends
t0=$(now_ms)
timeout 60 $MPIRUN -n 4 "$RLHF" ppo $V rewarders=2 reward=verifier kl_in=none verifier_timeout=1 \
    "verifier=cmd:$F/hang.sh" out_dir=bad2 >bad2.log 2>&1
rc=$?
if [ $rc != 0 ] && [ $rc != 124 ] && grep -q "^rlhf: error: rewarder (rank [12]): verifier cmd:.*hang.sh: no answer" bad2.log &&
    ! pgrep -f "rlhf ppo .*out_dir=bad2" >/dev/null && ! pgrep -f "$F/hang.sh" >/dev/null; then
    pass "2 rewarders, hanging verifiers: the job ends in $(secs $(( $(now_ms) - t0 ))) s, no rank or program left"
else
    fail "2 rewarders, hanging verifiers: the job ends, no rank or program left" "exit $rc: $(grep error bad2.log | head -2)"
fi
