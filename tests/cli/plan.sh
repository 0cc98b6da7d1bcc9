#!/bin/bash
# rlhf plan (issue 16): the RL job's capacity model. A calibration measured
# here is written, read back and used; then a calibration file with round
# numbers is given and every predicted time is checked against values
# derived by hand from the model in common/tools/plan.h (6 orders, lag 0
# and 1, 1 and 2 rewarders, shared cores, 2 learners, snapshots by
# broadcast and point-to-point, one shared core); the busiest role and
# the learner-bound actor count; then the refusals: a calibration of
# another shape (named field), a malformed or incomplete file, a bad actor
# list, keys that do not go together, a missing policy.
set -u
SUITE=plan
. "$(dirname "$0")/../lib.sh"
scratch plan
cd "$T"
tiny_models && pass "tiny models" || fail "tiny models"
JOB=(policy=sft/final.h5 reward_model=rm/final.h5 prompts=data/rl_prompts.jsonl batch_size=48 chunk=8 minibatch=16
     micro_batch=16 ppo_epochs=1 max_new=8 normalize_reward=false)

expect_ok "--help" "$RLHF" plan --help
grep -q "calibration" "$T/out" && grep -q "save_calibration" "$T/out" && pass "--help lists the plan keys" ||
    fail "--help lists the plan keys" "$(head -5 "$T/out")"

# ---- calibration here, saved and read back ---------------------------------------
expect_ok "calibrates on this machine" "$RLHF" plan "${JOB[@]}" save_calibration=cal.txt actors=1,2,3
grep -q "^ *1 " "$T/out" && grep -q "bound" "$T/out" && pass "prints a row per actor count" ||
    fail "prints a row per actor count" "$(cat "$T/out")"
$PY - cal.txt <<'PY' && pass "the calibration file holds positive times" || fail "the calibration file holds positive times"
import sys
kv = dict(l.split("#")[0].split("=") for l in open(sys.argv[1]) if "=" in l and not l.startswith("#"))
kv = {k.strip(): float(v) for k, v in kv.items()}
assert kv["chunk"] == 8 and kv["max_new"] == 8 and kv["micro_batch"] == 16 and kv["policy_params"] > 0, kv
for k in ["gen_order", "ref_order", "rm_order", "policy_micro", "value_micro", "value_fwd", "step", "bandwidth"]:
    assert kv[k] > 0, k
assert 1 <= kv["resp_len"] <= 8, kv["resp_len"]
PY
expect_ok "reads its calibration back" "$RLHF" plan "${JOB[@]}" calibration=cal.txt actors=1,2,3 json=1
cp "$T/out" again.json

# ---- hand-derived predictions ----------------------------------------------------
# O = 48 / 8 = 6 orders; M = 1 x 48 / 16 = 3 micro-steps, S = 3 steps;
# gen_order 1, r = ref 0.25 + rm 0.25 = 0.5, policy_micro 0.5, value_micro 0.3,
# value_fwd 0.1, step 0.05, bandwidth 1e9 B/s; snapshot = 4 x policy_params B.
P=$(sed -n 's/^policy_params = \([0-9]*\).*/\1/p' cal.txt)
sed -e 's/^gen_order = .*/gen_order = 1/' -e 's/^ref_order = .*/ref_order = 0.25/' -e 's/^rm_order = .*/rm_order = 0.25/' \
    -e 's/^policy_micro = .*/policy_micro = 0.5/' -e 's/^value_micro = .*/value_micro = 0.3/' \
    -e 's/^value_fwd = .*/value_fwd = 0.1/' -e 's/^step = .*/step = 0.05/' -e 's/^bandwidth = .*/bandwidth = 1e9/' \
    cal.txt >round.txt
# predict NAME ARGS...: the JSON of a plan with round.txt into NAME.json
predict() {
    local n=$1
    shift
    "$RLHF" plan "${JOB[@]}" calibration=round.txt json=1 "$@" >"$n.json" 2>"$n.err" ||
        fail "plan $n" "$(cat "$n.err")"
}
predict base actors=1,2,3,6
predict cores cores=2 actors=3
predict lag max_policy_lag=1 actors=2
predict lagcores max_policy_lag=1 cores=2 actors=2
predict rew rewarders=2 actors=2
predict two learners=2 actors=2
predict p2p snapshot_send=p2p actors=3,6
predict onecore cores=1 actors=6
$PY - "$P" <<'PY' && pass "predictions equal the hand-derived values" || fail "predictions equal the hand-derived values"
import json, sys
P = int(sys.argv[1]); snap = 4.0 * P / 1e9
def rows(n): return {r["actors"]: r for r in json.load(open(n + ".json"))["rows"]}
def near(a, b): assert abs(a - b) <= 1e-6 * max(1, abs(b)), (a, b)
learn = 3 * (0.5 + 0.3) + 3 * 0.1 + 3 * 0.05          # micro-steps, value forward, optimizer steps: 2.85
b = rows("base")
# A=1: generate 6 x 1; scored last wave 1 order x 0.5 after it (backlog 1 + 6 x 0.5 = 4 is earlier)
# snapshots by broadcast (the default): a binomial tree's ceil(log2(A + 1)) rounds: 1, 2, 2, 3 for A = 1, 2, 3, 6
near(b[1]["generate"], 6); near(b[1]["reward"], 0.5); near(b[1]["learn"], learn); near(b[1]["transfer"], snap)
near(b[1]["iteration"], 6.5 + learn + snap)
# A=2: generate 3; last wave 2 orders -> 3 + 1 = 4 = backlog 4
near(b[2]["generate"], 3); near(b[2]["reward"], 1); near(b[2]["iteration"], 4 + learn + 2 * snap)
# A=3: generate 2; last wave 3 x 0.5 -> 3.5; the backlog 4 is later
near(b[3]["generate"], 2); near(b[3]["reward"], 2); near(b[3]["iteration"], 4 + learn + 2 * snap)
# A=6: generate 1; the rewarder's backlog: 1 + 3 = 4 = 1 + 6 x 0.5
near(b[6]["generate"], 1); near(b[6]["reward"], 3); near(b[6]["transfer"], 3 * snap)
# point-to-point: the learner sends A copies in turn
near(rows("p2p")[3]["transfer"], 3 * snap); near(rows("p2p")[6]["transfer"], 6 * snap)
# one shared core copies one at a time: ceil(6 / 1) = 6 copies, more than the tree's 3 rounds
near(rows("onecore")[6]["transfer"], 6 * snap)
assert json.load(open("p2p.json"))["snapshot_send"] == "p2p" and json.load(open("base.json"))["snapshot_send"] == "bcast"
assert b[6]["bound"] == "rewarders" and b[1]["bound"] == "actors", (b[1]["bound"], b[6]["bound"])
near(b[6]["util_rewarder"], 3.0 / b[6]["iteration"])
# 2 cores, 3 actors, processor sharing: the actors alone (2 s each, 3 on 2 cores at 2/3) take 3 s; with the
# rewarder (3 s) 4 processes run at 1/2 until the actors are done at 4 s, then the rewarder alone 1 s more: 5
c = rows("cores")[3]
near(c["generate"], 3); near(c["reward"], 2); near(c["learn"], learn); near(c["iteration"], 5 + learn + 2 * snap)
# lag 1: actors sample the next iteration during learning: max(4, 2.85 + transfer)
near(rows("lag")[2]["iteration"], 4.0)
# lag 1 on 2 cores, 2 actors (3 s each), the rewarder (3 s) and the learner (2.85 s) share them: 4 processes at 1/2
# until the learner is done at 5.7 s, then 3 at 2/3 for the last 0.15 s of each: 5.7 + 0.225 = 5.925
near(rows("lagcores")[2]["iteration"], 5.925)
# 2 rewarders, 2 actors: last wave 2 orders on 2 rewarders -> 3 + 0.5; backlog 1 + 3 x 0.5 = 2.5
r = rows("rew")[2]
near(r["generate"], 3); near(r["reward"], 0.5)
# 2 learners: micro-steps and value forwards halved, every learner steps, 3 all-reduces of 2 x snapshot
t = rows("two")[2]
near(t["learn"], (3 * 0.8 + 3 * 0.1) / 2 + 3 * 0.05 + 3 * 2 * snap)
# saturation with 1 rewarder: A=1 9.35, A=2..6 6.85 (+ transfers): from 2 actors on, bound by the rewarder's backlog
j = json.load(open("base.json"))
assert j["saturation_actors"] == 2, j["saturation_actors"]
PY
predict bound rewarders=8 actors=1,2,4,6
predict boundlag rewarders=8 max_policy_lag=1 actors=1
$PY - <<'PY' && pass "saturation: actor count and the bounding role" || fail "saturation: actor count and the bounding role" "$(cat bound.json)"
import json
j = json.load(open("bound.json"))
# 8 rewarders, lag 0: A=1 6.5 + 2.85 = 9.35, A=2 3.5 + 2.85, A=3 and 4 2.5 + 2.85, A=6 1.5 + 2.85 = 4.35: only 6 is
# within 5% of 4.35; there the learner is busiest (2.85 / 4.35)
assert j["saturation_actors"] == 6 and j["saturation_bound"] == "learner", j
r = {x["actors"]: x for x in j["rows"]}
assert r[6]["bound"] == "learner" and r[1]["bound"] == "actors", r
# lag 1: the iteration is max(generate + reward, learn + transfer): 2.5 <= 2.85 from A=3 on
j = json.load(open("boundlag.json"))
assert j["saturation_actors"] == 3 and j["saturation_bound"] == "learner", j
PY
"$RLHF" plan "${JOB[@]}" calibration=round.txt actors=1,2,4 rewarders=8 >text.out 2>&1
grep -q "from 6 actor(s) on, more actors shorten the iteration by less than 5%: it is bound by the learner there" text.out &&
    pass "text report names where more actors stop paying" || fail "text report names where more actors stop paying" "$(tail -3 text.out)"

# ---- refusals ---------------------------------------------------------------------
ERR_PREFIX="rlhf: error: plan: "
sed 's/^chunk = .*/chunk = 16/' round.txt >shape.txt
expect_err "calibration of another shape names the field" "shape.txt: chunk was 16 when measured, the configuration gives 8" \
    "$RLHF" plan "${JOB[@]}" calibration=shape.txt
grep -v '^step = ' round.txt >short.txt
expect_err "incomplete calibration names the key" "step" "$RLHF" plan "${JOB[@]}" calibration=short.txt
printf 'gen_order = fast\n' >bad.txt
expect_err "malformed calibration names the line" "bad.txt:1" "$RLHF" plan "${JOB[@]}" calibration=bad.txt
expect_err "missing calibration file" "nope.txt" "$RLHF" plan "${JOB[@]}" calibration=nope.txt
expect_err "bad actor list" "actors: expected actor counts" "$RLHF" plan "${JOB[@]}" calibration=round.txt actors=1,x
expect_err "zero actors" "actors: expected actor counts" "$RLHF" plan "${JOB[@]}" calibration=round.txt actors=0
expect_err "keys that do not go together" "chunk" "$RLHF" plan "${JOB[@]}" calibration=round.txt group_size=3
expect_err "unknown key" "acters" "$RLHF" plan "${JOB[@]}" acters=2
expect_err "missing policy" "policy" "$RLHF" plan prompts=data/rl_prompts.jsonl
cp round.txt keep.txt
expect_err "save_calibration onto a directory is refused" "dir" "$RLHF" plan "${JOB[@]}" calibration=round.txt save_calibration=data
cmp -s round.txt keep.txt && pass "the calibration read is left as it was" || fail "the calibration read is left as it was"
expect_ok "grpo preset plans without a reward model" "$RLHF" plan policy=sft/final.h5 prompts=data/rl_prompts.jsonl \
    preset=grpo batch_size=32 chunk=16 max_new=8 actors=1,2
grep -q "reward model 0.0000 s" "$T/out" && pass "grpo: no reward model is timed" || fail "grpo: no reward model is timed" "$(head -3 "$T/out")"
exit $NFAIL
