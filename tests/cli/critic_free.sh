#!/bin/bash
# End-to-end tests of the critic-free RL family on the distributed job
# (issue 15, "Algorithms"): every advantage estimator's advantages in
# rollouts.h5 agree with a float64 numpy computation written from the papers'
# formulas (from the logged rewards, KL and groups — not from our code); no
# value model is loaded, trained or saved without gae; the loss normaliser
# does not depend on micro_batch or the learner count (the same update to
# rounding, while another loss_agg gives another update); mask_truncated,
# clip-higher, dual-clip and KL in the loss take effect; a GRPO run resumes
# bit-identically; bad combinations are refused before work starts.
set -u
SUITE=critic-free
. "$(dirname "$0")/../lib.sh"
scratch critic_free
use_mpirun
cd "$T"
D=data
tiny_models && pass "tiny SFT and RM" || fail "tiny SFT and RM"
# a policy that has learnt to end its answers: responses of varied lengths,
# some ended by the end token, some truncated (the normalisers and the mask
# then matter)
"$RLHF" sft init=pt/final.h5 out_dir=sftl train_data=$D/sft.jsonl batch_size=16 micro_batch=8 log_every=1000 \
    warmup_steps=2 epochs=8 lr=2e-3 >/dev/null 2>&1

BASE="policy=sftl/final.h5 reward_model=rm/final.h5 prompts=$D/rl_prompts.jsonl batch_size=16 chunk=4"
BASE="$BASE max_new=8 lr=1e-4 log_samples=0 kl_target=0 group_size=4"
PPO="$BASE minibatch=8 micro_batch=8 ppo_epochs=2"

# ---- advantages against numpy ------------------------------------------------------
# ref.py DIR ESTIMATOR GAMMA G: recomputes every logged advantage from the
# logged rewards (score on the last token, -lambda * kl per token) and groups.
cat >ref.py <<'PY'
import sys, h5py, numpy as np
d, est, gamma, G = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
f = h5py.File(d + "/rollouts.h5", "r")
it, grp, n = f["iteration"][()], f["group"][()], f["response_len"][()]
kl, lam, adv = f["kl"][()].astype(np.float64), f["lambda"][()], f["advantages"][()].astype(np.float64)
score = (f["score"] if "score" in f else f["r_theta"])[()].astype(np.float64)
R = f["reward"][()]                       # sum of the token rewards
worst = 0.0
for i in np.unique(it):
    rows = np.where(it == i)[0]
    assert len(rows) == 16, len(rows)
    out = {}
    if est in ("grpo", "drgrpo", "rloo"):
        for g in np.unique(grp[rows]):
            m = rows[grp[rows] == g]
            assert len(m) == G, (g, len(m))
            r = R[m]
            if est == "grpo": a = (r - r.mean()) / (r.std(ddof=1) + 1e-6)
            elif est == "drgrpo": a = r - r.mean()
            else: a = np.array([r[j] - np.delete(r, j).mean() for j in range(len(r))])
            for j, k in enumerate(m): out[k] = np.full(n[k], a[j])
    else:                                 # reinforce++, reinforce++-baseline
        base = {}
        for g in np.unique(grp[rows]):
            m = rows[grp[rows] == g]
            base[g] = score[m].mean() if est == "reinforce++-baseline" else 0.0
        for k in rows:
            r = np.float32(-lam[k] * kl[k, :n[k]]).astype(np.float64)
            r[-1] = np.float32(-lam[k] * kl[k, n[k] - 1] + score[k])
            r[-1] -= base[grp[k]]
            ret = np.zeros(n[k]); g_ = 0.0
            for t in range(n[k] - 1, -1, -1):
                g_ = r[t] + gamma * g_; ret[t] = g_
            out[k] = ret
        x = np.concatenate([out[k] for k in rows])
        mu, var = x.mean(), x.var(ddof=1)
        for k in rows: out[k] = (out[k] - mu) / np.sqrt(var + 1e-8)
    for k in rows:
        worst = max(worst, np.abs(adv[k, :n[k]] - out[k]).max())
        assert (adv[k, n[k]:] == 0).all()
print(est, "max |adv - numpy|", worst)
assert worst < 2e-4, worst
PY
for est in grpo drgrpo rloo reinforce++ reinforce++-baseline; do
    gamma=1
    case $est in reinforce*) gamma=0.9 ;; esac
    $MPIRUN -n 3 "$RLHF" ppo $PPO advantage=$est gamma=$gamma kl_coef=0.05 out_dir=a_$est iterations=2 >a_$est.log 2>&1
    check "advantage=$est: rollouts.h5 advantages = numpy from the logged rewards" $PY ref.py a_$est $est $gamma 4
    # 3 actors: the same orders (prompts, seeds) spread over more ranks
    $MPIRUN -n 5 "$RLHF" ppo $PPO advantage=$est gamma=$gamma kl_coef=0.05 out_dir=b_$est iterations=2 >/dev/null 2>&1
    check "advantage=$est: 3 actors give the 1-actor result bit for bit" \
        $PY "$ROOT/tests/compare_ckpt.py" a_$est/final.h5 b_$est/final.h5
done
# continuous batching on the actors (issue 16): 3 slots per actor, groups of 4 straddle admissions
$MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo kl_coef=0.05 actor_slots=3 out_dir=s_grpo iterations=2 >/dev/null 2>&1
check "actor_slots=3: continuous batching gives the whole-order result bit for bit" \
    $PY "$ROOT/tests/compare_ckpt.py" a_grpo/final.h5 s_grpo/final.h5
check "the reference would catch a wrong estimator (grpo's advantages are not drgrpo's)" \
    sh -c "! $PY ref.py a_grpo drgrpo 1 4"

# ---- no value model without gae -------------------------------------------------------
if grep -q "no value model (advantage = grpo)" a_grpo.log && [ ! -e a_grpo/value.h5 ] &&
    $PY -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); sys.exit('value' in f or 'value_m' in f['optim'])" \
        a_grpo/ckpt-000002.h5; then
    pass "grpo: no value model loaded, no value.h5, no value tensors in checkpoints"
else
    fail "grpo: no value model loaded, no value.h5, no value tensors in checkpoints" "$(grep 'value' a_grpo.log | head -2)"
fi
expect_err "gae without a value model is refused" "advantage = gae needs a value model" \
    $MPIRUN -n 3 "$RLHF" ppo ${PPO/reward_model=rm\/final.h5/} reward=verifier out_dir=x iterations=1
expect_err "rloo with groups of one is refused" "advantage = rloo needs group_size >= 2" \
    $MPIRUN -n 3 "$RLHF" ppo $PPO advantage=rloo group_size=1 out_dir=x iterations=1
expect_err "groups split across orders are refused" "chunk (4) must be a multiple of group_size (3)" \
    $MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo group_size=3 out_dir=x iterations=1

# ---- the normaliser: micro-batch size and learner count do not change the update -------
# upd.py INIT A B MAX|-MIN: |update A - update B| / |update A| (the updates
# from INIT) at most MAX, or at least MIN. Relative to the update, since Adam
# turns rounding noise in gradients that are 0 analytically (the attention
# key bias) into steps of up to lr: parameters differ by more than rounding
# where the updates as a whole agree to 1e-3.
cat >upd.py <<'PY'
import sys, h5py, numpy as np
def params(p):
    with h5py.File(p, "r") as f: return {k: f["params"][k][()].astype(np.float64) for k in f["params"]}
i, a, b = (params(p) for p in sys.argv[1:4])
da = np.concatenate([(a[k] - i[k]).ravel() for k in sorted(i)])
db = np.concatenate([(b[k] - i[k]).ravel() for k in sorted(i)])
rel, lim = np.linalg.norm(da - db) / np.linalg.norm(da), float(sys.argv[4])
print("relative difference of the updates", rel)
sys.exit(not (rel <= lim if lim > 0 else rel >= -lim))
PY
ONE="$BASE advantage=grpo minibatch=16 ppo_epochs=2 iterations=1 lr=1e-3" # one batch: the same rollouts everywhere
for agg in token-mean seq-mean-token-mean seq-mean-token-sum-norm; do
    $MPIRUN -n 3 "$RLHF" ppo $ONE loss_agg=$agg micro_batch=8 out_dir=m8_$agg >/dev/null 2>&1
    $MPIRUN -n 3 "$RLHF" ppo $ONE loss_agg=$agg micro_batch=4 out_dir=m4_$agg >/dev/null 2>&1
    $MPIRUN -n 4 "$RLHF" ppo $ONE loss_agg=$agg micro_batch=8 learners=2 out_dir=l2_$agg >/dev/null 2>&1
    check "loss_agg=$agg: micro_batch 4 and 8 give the same update (to rounding)" \
        $PY upd.py sftl/final.h5 m8_$agg/final.h5 m4_$agg/final.h5 5e-3
    check "loss_agg=$agg: 1 and 2 learners give the same update (to rounding)" \
        $PY upd.py sftl/final.h5 m8_$agg/final.h5 l2_$agg/final.h5 5e-3
done
check "another loss_agg is another update (the comparison can fail)" \
    $PY upd.py sftl/final.h5 m8_token-mean/final.h5 m8_seq-mean-token-mean/final.h5 -0.1
check "policy_loss and entropy logged alike whatever the micro-batch and learner count" $PY - <<'PY'
import h5py, numpy as np
for agg in ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]:
    m = [h5py.File(f"{d}_{agg}/metrics.h5", "r") for d in ("m8", "m4", "l2")]
    for k in ["policy_loss", "entropy", "clipfrac"]:
        a = [x[k][()] for x in m]
        assert np.allclose(a[0], a[1], rtol=1e-5, atol=1e-7) and np.allclose(a[0], a[2], rtol=1e-5, atol=1e-7), (agg, k, a)
PY

# ---- mask_truncated --------------------------------------------------------------------
$MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo max_new=4 mask_truncated=1 out_dir=mask iterations=2 >mask.log 2>&1
check "mask_truncated: truncated responses have zero advantages, the others train" $PY - <<'PY'
import h5py, numpy as np
f = h5py.File("mask/rollouts.h5", "r")
stop, adv, n = f["stop"][()], f["advantages"][()], f["response_len"][()]
t = stop != 0
assert t.any() and (~t).any(), stop
assert (adv[t] == 0).all()
assert any(np.abs(adv[k, :n[k]]).max() > 0 for k in np.where(~t)[0])
m = h5py.File("mask/metrics.h5", "r")
assert np.isfinite(m["policy_loss"][()]).all()
PY

# ---- clipping and KL in the loss -------------------------------------------------------------
$MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo clip_low=0 clip_high=0 lr=1e-3 out_dir=clip0 iterations=2 >/dev/null 2>&1
check "clip_low=clip_high=0: most tokens clipped, clipfrac = clipfrac_low + clipfrac_high" $PY - <<'PY'
import h5py, numpy as np
m = h5py.File("clip0/metrics.h5", "r")
c, lo, hi = m["clipfrac"][()], m["clipfrac_low"][()], m["clipfrac_high"][()]
assert (c > 0.2).all(), c
assert np.allclose(c, lo + hi, atol=1e-12), (c, lo, hi)
assert (lo > 0).all() and (hi > 0).all(), (lo, hi)
PY
$MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo clip_low=0.2 clip_high=10 lr=1e-3 out_dir=cliph iterations=2 >/dev/null 2>&1
check "clip_high=10: nothing clipped above, below still" $PY -c "
import h5py; m = h5py.File('cliph/metrics.h5', 'r')
assert (m['clipfrac_high'][()] == 0).all(), m['clipfrac_high'][()]"
$MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo clip=0.01 dual_clip=1.01 lr=1e-2 out_dir=dual iterations=2 >/dev/null 2>&1
check "dual_clip=1.01 with a large step: some negative-advantage tokens capped" $PY -c "
import h5py; m = h5py.File('dual/metrics.h5', 'r')
assert m['dual_clipfrac'][()].max() > 0, m['dual_clipfrac'][()]"
$MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo kl_in=loss kl_estimator=k3 kl_coef=0.1 lr=1e-3 out_dir=klloss iterations=2 >/dev/null 2>&1
$MPIRUN -n 3 "$RLHF" ppo $PPO advantage=grpo kl_in=reward lr=1e-3 out_dir=klrew iterations=2 >/dev/null 2>&1
check "kl_in=loss: the KL term is in the loss (kl_loss > 0 once the policy moved); kl_in=reward: 0" $PY -c "
import h5py; a = h5py.File('klloss/metrics.h5', 'r')['kl_loss'][()]; b = h5py.File('klrew/metrics.h5', 'r')['kl_loss'][()]
assert a[-1] > 0 and (b == 0).all(), (a, b)"
expect_err "dual_clip must exceed 1" "dual_clip = 0.5: must be > 1" \
    $MPIRUN -n 3 "$RLHF" ppo $PPO dual_clip=0.5 out_dir=x iterations=1
expect_err "clip_high between -1 and 0 refused" "clip_high = -0.5: must be >= 0, or -1" \
    $MPIRUN -n 3 "$RLHF" ppo $PPO clip_high=-0.5 out_dir=x iterations=1

# ---- filter_groups (DAPO dynamic sampling) ------------------------------------------------
# at temperature 0.05 the samples of a group are often all alike: groups
# without variance to drop
COLD="$PPO advantage=grpo temperature=0.05 iterations=3"
$MPIRUN -n 4 "$RLHF" ppo $COLD out_dir=cold >/dev/null 2>&1
$MPIRUN -n 4 "$RLHF" ppo $COLD filter_groups=1 max_fill_rounds=3 out_dir=filt >filt.log 2>&1
$MPIRUN -n 5 "$RLHF" ppo $COLD filter_groups=1 max_fill_rounds=3 learners=2 out_dir=filt2 >filt2.log 2>&1
cat >filt.py <<'PY'
import sys, h5py, numpy as np
d, rounds = sys.argv[1], int(sys.argv[2])
f, m = h5py.File(d + "/rollouts.h5", "r"), h5py.File(d + "/metrics.h5", "r")
it, grp, score = f["iteration"][()], f["group"][()], (f["score"] if "score" in f else f["r_theta"])[()]
dead, fill = m["dead_groups"][()], m["fill_rounds"][()]
print("dead fraction", dead, "fill rounds", fill)
assert list(np.bincount(it)) == [16] * len(dead)
for i in range(len(dead)):
    rows = it == i
    for g in np.unique(grp[rows]):
        s = score[rows & (grp == g)]
        assert len(s) == 4
        assert s.max() > s.min() or fill[i] == rounds, (i, g, s)   # dead groups only once the rounds ran out
    assert grp[rows].min() >= i * 16 * (1 + rounds) // 4 and grp[rows].max() < (i + 1) * 16 * (1 + rounds) // 4
assert (fill > 0).any() and (dead > 0).any()
assert (grp >= 4).any()                                              # groups of fill rounds were used
PY
check "without filter_groups: the dead-group fraction is reported, dead groups are kept" $PY -c "
import h5py; m = h5py.File('cold/metrics.h5', 'r'); assert m['dead_groups'][()].max() > 0 and (m['fill_rounds'][()] == 0).all()"
check "filter_groups: dead groups replaced by fill rounds' live groups, the batch stays full" $PY filt.py filt 3
check "filter_groups with 2 learners" $PY filt.py filt2 3
grep -q "without variance" filt.log && grep -q "filter_groups: [0-9] fill round" filt.log &&
    pass "filter_groups: the progress line reports dead groups and fill rounds" ||
    fail "filter_groups: the progress line reports dead groups and fill rounds" "$(grep groups filt.log | head -3)"
check "the advantages of a filtered batch are still grpo's" $PY ref.py filt grpo 1 4
expect_err "filter_groups needs groups" "filter_groups needs group_size >= 2" \
    $MPIRUN -n 3 "$RLHF" ppo $PPO filter_groups=1 group_size=1 out_dir=x iterations=1

# ---- resume ------------------------------------------------------------------------------
R6="$PPO advantage=grpo iterations=100 ckpt_every=2 temperature=0.3 filter_groups=1" # long enough to be caught running
$MPIRUN -n 3 "$RLHF" ppo $R6 out_dir=full >/dev/null 2>&1
bg termed.log $MPIRUN -n 3 "$RLHF" ppo $R6 out_dir=termed
wait_file termed/ckpt-000002.h5
ranks=$(tree_pids $PID)
kill -TERM $PID
fin termed.log
wait_gone $ranks
$MPIRUN -n 3 "$RLHF" ppo $R6 out_dir=termed >>termed.log 2>&1
grep -q "resuming from" termed.log && pass "grpo with filter_groups: SIGTERM then rerun resumes" ||
    fail "grpo with filter_groups: SIGTERM then rerun resumes" "$(tail -3 termed.log)"
check "grpo with filter_groups: resumed run bit-identical to the uninterrupted one" $PY "$ROOT/tests/compare_ckpt.py" full/final.h5 termed/final.h5
