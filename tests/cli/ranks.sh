#!/bin/bash
# Many ranks on few cores (issue 16): the RL job at 32 ranks on a 2-core
# machine (PPO with a reward model at max_policy_lag 0, GRPO on the gold
# verifier at lag 1; 1 learner, 3 rewarders, 28 actors) and with 2 learners
# x 3 actors x 2 rewarders, each run to the end and judged from its logs with
# h5py: the expected rows per iteration; every work order (iteration, chunk,
# sample) logged exactly once, by the actor the dispatch rule gives it
# (chunk c -> actor c mod actors); every rollout's policy version by the lag
# rule (lag 0: the iteration; lag 1: one behind, never more) and the metrics
# agreeing; exit 0, every rank seen and gone, no temporaries, the final
# policy loads (rlhf inspect). Waiting ranks sleep (DESIGN, "Data flow"):
# in the steady state every actor and rewarder naps when it waits (voluntary context switches: what tells a
# sleeping rank from a polling one when 32 share 2 cores). Results: 32 ranks
# give the 3-rank result bit for bit (actor and rewarder counts change
# nothing); 2 learners give the 1-learner run's first iteration bit for bit
# and its first update (policy and value model, GAE) to rounding. Already
# elsewhere, not repeated: critic_free.sh (1 and 2 learners, the critic-free
# estimators' update to rounding), stall.sh (2-learner runs deterministic,
# a stopped rank's work moved).
set -u
SUITE=ranks
. "$(dirname "$0")/../lib.sh"
scratch ranks
use_mpirun
cd "$T"
tiny_models && pass "tiny SFT and RM" || fail "tiny SFT and RM"

# cpu.py PID LOG: until PID exits, every 0.1 s, for every rlhf rank below
# PID: its CPU seconds (utime + stime of all threads, /proc/P/stat) and its
# main thread's voluntary and involuntary context switches (/proc/P/status);
# prints JSON: each rank's pid, the samples [[t, {rank: [cpu, vol, invol]}],
# ...], and when LOG first had an iteration's progress line (the job past
# its start-up)
cat >cpu.py <<'PY'
import json, os, sys, time
top, log = int(sys.argv[1]), sys.argv[2]
tck = os.sysconf("SC_CLK_TCK")
pids, samples, first = {}, [], None
def stat(p):
    with open(f"/proc/{p}/stat") as f: return f.read().rsplit(")", 1)[1].split()
while os.path.exists(f"/proc/{top}"):
    t, st, kids = time.time(), {}, {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try: st[int(d)] = stat(d)
            except (OSError, IndexError): pass
    for p, s in st.items(): kids.setdefault(int(s[1]), []).append(p)
    todo, cpu = [top], {}
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        if p == top or st[p][0] == "Z": continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f: env = f.read().split(b"\0")
            exe = os.path.basename(os.readlink(f"/proc/{p}/exe"))
            with open(f"/proc/{p}/status") as f:
                cs = {l.split(":")[0]: int(l.split()[1]) for l in f if "ctxt_switches" in l}
        except OSError: continue
        r = [e for e in env if e.startswith(b"OMPI_COMM_WORLD_RANK=")]
        if r and exe.startswith("rlhf"):
            k = int(r[0].split(b"=")[1])
            pids[k] = p
            cpu[k] = [(int(st[p][11]) + int(st[p][12])) / tck, cs["voluntary_ctxt_switches"],
                      cs["nonvoluntary_ctxt_switches"]]
    samples.append([t, cpu])
    if first is None:
        try:
            with open(log) as f:
                if any(l.startswith("ppo: it 1/") for l in f): first = t
        except OSError: pass
    time.sleep(0.1)
json.dump({"pids": pids, "samples": samples, "first": first}, sys.stdout)
PY

# job NAME NRANKS ARGS...: `rlhf ARGS` on NRANKS ranks (120 s at most),
# output in NAME.log; "wall user sys" seconds of mpirun and every rank in
# NAME.time (bash's time counts the children mpirun reaped), the ranks' CPU
# over time in NAME.cpu; RC = the exit status
job() {
    local name=$1 n=$2 w
    shift 2
    ( TIMEFORMAT='%R %U %S'; time timeout -k 5 120 $MPIRUN -n "$n" "$RLHF" "$@" >"$name.log" 2>&1 ) 2>"$name.time" &
    w=$!
    $PY cpu.py $w "$name.log" >"$name.cpu"
    wait $w
    RC=$?
}

# ended NAME NRANKS: exit 0, the end reported, no error or warning, every
# one of the NRANKS ranks seen and gone, no temporaries in the run directory
ended() {
    local name=$1 n=$2 pids
    [ "$RC" = 0 ] && grep -q "^ppo: done: $name/final.h5" "$name.log" && ! grep -q "^rlhf: \(error\|warning\)" "$name.log" &&
        pass "$name: $n ranks run to the end, exit 0" ||
        fail "$name: $n ranks run to the end, exit 0" "exit $RC: $(grep -v '^ *[a-z_0-9]* *=\|^ppo: \(it\|roles\|[0-9]* ranks\)\|^     ' "$name.log" | tail -4)"
    pids=$($PY -c "import json, sys; d = json.load(open(sys.argv[1]))['pids']; print(len(d), *d.values())" "$name.cpu")
    if [ "${pids%% *}" = "$n" ] && wait_gone ${pids#* }; then pass "$name: all $n ranks seen running, none left"
    else fail "$name: all $n ranks seen running, none left" "seen ${pids%% *}; left: $(ps -o pid=,args= -p "$(echo ${pids#* } | tr ' ' ,)" | head -3)"; fi
    [ -z "$(find "$name" -name '*.tmp.*')" ] && pass "$name: no temporaries left" || fail "$name: no temporaries left" "$(find "$name" -name '*.tmp.*')"
    "$RLHF" inspect "$name/final.h5" >"$name.insp" 2>&1 && grep -q "^kind *policy" "$name.insp" &&
        pass "$name: the final policy loads (rlhf inspect)" || fail "$name: the final policy loads (rlhf inspect)" "$(head -3 "$name.insp")"
}

# logs.py DIR WHAT ITERS BATCH G CHUNK LAG LEARNERS REWARDERS ACTORS: WHAT is
# rows (BATCH rows per iteration), orders (each work order once, by its
# actor) or versions (the lag rule, and the metrics agree)
cat >logs.py <<'PY'
import sys, collections, h5py, numpy as np
d, what = sys.argv[1], sys.argv[2]
N, B, G, C, lag, nl, nr, na = map(int, sys.argv[3:11])
f = h5py.File(d + "/rollouts.h5", "r", libver="latest", swmr=True)
m = h5py.File(d + "/metrics.h5", "r", libver="latest", swmr=True)
it, ver, act, grp, pr = (f[k][()].astype(np.int64) for k in ("iteration", "version", "actor", "group", "prompt_index"))
if what == "rows":
    assert len(it) == N * B and all(f[k].shape[0] == N * B for k in f), (len(it), {k: f[k].shape[0] for k in f})
    assert list(np.bincount(it, minlength=N)) == [B] * N, np.bincount(it)
    assert list(m["iteration"][()]) == list(range(N)), m["iteration"][()]
elif what == "orders":
    first, n_chunks = nl + nr, B // C
    for i in range(N):
        rows = np.where(it == i)[0]
        # G samples of each group, the groups of the iteration and no other (G = 1: each sample once)
        count = collections.Counter(grp[rows])
        want = set(range(i * B // G, (i + 1) * B // G))
        assert set(count) == want, (i, sorted(set(count) ^ want)[:8])
        assert set(count.values()) == {G}, (i, [g for g, c in count.items() if c != G][:8])
        for g in want:
            assert len(set(pr[rows][grp[rows] == g])) == 1, (i, g, "a group of several prompts")
        # chunk c of the iteration: C rows, from actor c mod actors
        chunk = grp[rows] * G // C - i * n_chunks
        for c in range(n_chunks):
            a = set(act[rows][chunk == c])
            assert (chunk == c).sum() == C and a == {first + c % na}, (i, c, (chunk == c).sum(), a)
    assert sorted(set(act)) == list(range(first, first + min(na, n_chunks))), sorted(set(act))
elif what == "versions":
    v_want = np.maximum(it - lag, 0)
    bad = np.where(ver != v_want)[0]
    assert not len(bad), [(int(it[k]), int(ver[k])) for k in bad[:8]]
    assert ((it - ver >= 0) & (it - ver <= lag)).all()
    lag_max = [int((it - ver)[it == i].max()) for i in range(N)]
    assert list(m["lag_max"][()]) == lag_max, (m["lag_max"][()], lag_max)
    assert list(m["version"][()]) == list(range(1, N + 1)), m["version"][()]
print(d, what, "ok")
PY

# cpu_check.py NAME WHAT [ARGS]:
#   job: prints the job's CPU time / wall time (mpirun and every rank; a
#     report: on 2 cores the work fills them whether waits sleep or not)
#   learners: learner 1 used no more CPU than learner 0, which does all it
#     does and dispatches, logs and checkpoints besides
#   sleep LEARNERS: in the steady state, every actor and rewarder (the ranks
#     from LEARNERS on) sleeps when it waits: at least 10% of its main
#     thread's context switches are voluntary (a nap). Measured on 2 cores
#     with others' jobs: ~50% for the 1 ms naps, 0.1% for a rank that polls
#     without sleeping (Open MPI's blocking calls: sched_yield keeps it
#     runnable). CPU shares cannot tell them apart there: 32 ranks polling
#     on 2 busy cores got ~1-2% of a core each, what the naps cost.
cat >cpu_check.py <<'PY'
import json, sys
name, what = sys.argv[1], sys.argv[2]
if what == "job":
    wall, user, sys_ = map(float, open(name + ".time").read().split()[-3:])
    cores = (user + sys_) / wall
    print(f"{user + sys_:.1f} s CPU in {wall:.1f} s: {cores:.2f} cores")
    sys.exit(0)
d = json.load(open(name + ".cpu"))
n = len(d["pids"])
full = [s for s in d["samples"] if len(s[1]) == n]
if what == "learners":
    last = full[-1][1]
    print(f"learner 0 {last['0'][0]:.2f} s CPU, learner 1 {last['1'][0]:.2f} s")
    assert last["1"][0] <= last["0"][0], (last["0"], last["1"])
    sys.exit(0)
nl = int(sys.argv[3])
w = [s for s in full if d["first"] and s[0] >= d["first"]]
assert len(w) >= 2 and w[-1][0] - w[0][0] >= 0.5, "steady state too short to measure"
dt = w[-1][0] - w[0][0]
diff = {int(k): [b - a for a, b in zip(w[0][1][k], w[-1][1][k])] for k in w[0][1]}
vol = {k: v / max(v + i, 1) for k, (c, v, i) in diff.items()}
others = [k for k in diff if k >= nl]
print(f"steady {dt:.1f} s: learner 0 {100 * diff[0][0] / dt:.0f}% of a core; the {len(others)} others: CPU mean "
      f"{100 * sum(diff[k][0] for k in others) / len(others) / dt:.1f}% of a core, voluntary switches min "
      f"{100 * min(vol[k] for k in others):.0f}%, {min(diff[k][1] for k in others) / dt:.0f}/s")
bad = [(k, round(vol[k], 3)) for k in others if vol[k] < 0.1]
assert not bad, f"{len(bad)} ranks poll (rank, voluntary fraction): {sorted(bad)[:6]}"
PY

# measure NAME CMD...: check NAME CMD..., then (if it passed) CMD's last
# output line, what it measured, indented
measure() {
    local nfail=$NFAIL
    check "$@"
    [ "$NFAIL" = "$nfail" ] && echo "     $(tail -1 "$T/out")"
}

# ---- 32 ranks: PPO with a reward model, on-policy ---------------------------------------
# 1 learner, 3 rewarders, 28 actors; 28 chunks of 2: an order for every actor each iteration
P="policy=sft/final.h5 reward_model=rm/final.h5 prompts=data/rl_prompts.jsonl batch_size=56 chunk=2"
P="$P minibatch=8 micro_batch=8 max_new=8 ppo_epochs=4 lr=1e-4 value_lr=1e-4 log_samples=0 iterations=40 ckpt_every=10"
t0=$(now_ms)
job p32 32 ppo $P out_dir=p32 rewarders=3
echo "     p32: $(secs $(($(now_ms) - t0))) s"
ended p32 32
check "p32: 56 rows per iteration, 40 iterations" $PY logs.py p32 rows 40 56 1 2 0 1 3 28
check "p32: every (iteration, chunk, sample) logged once, chunk c by actor c mod 28" $PY logs.py p32 orders 40 56 1 2 0 1 3 28
check "p32: max_policy_lag 0: every rollout sampled with the iteration's version" $PY logs.py p32 versions 40 56 1 2 0 1 3 28
echo "     p32: the job used $($PY cpu_check.py p32 job) (reported: on 2 cores the work itself fills them)"
measure "p32: waiting actors and rewarders sleep, not poll" $PY cpu_check.py p32 sleep 1
# the same run on 3 ranks (1 actor, 1 rewarder)
$MPIRUN -n 3 "$RLHF" ppo $P out_dir=p3 >p3.log 2>&1
check "p32: the final policy and value model of the 3-rank run, bit for bit" \
    sh -c "$PY '$ROOT/tests/compare_ckpt.py' p3/final.h5 p32/final.h5 && $PY '$ROOT/tests/compare_ckpt.py' p3/value.h5 p32/value.h5"

# ---- 32 ranks: GRPO on the gold verifier, policy lag 1 ------------------------------------
# groups of 4; 28 chunks of 8
GR="--config $ROOT/launch/configs/tiny/grpo.conf policy=sft/final.h5 prompts=data/rl_prompts.jsonl"
GR="$GR batch_size=224 max_policy_lag=1 iterations=20 rewarders=3"
t0=$(now_ms)
job g32 32 grpo $GR out_dir=g32
echo "     g32: $(secs $(($(now_ms) - t0))) s"
ended g32 32
check "g32: 224 rows per iteration, 20 iterations" $PY logs.py g32 rows 20 224 4 8 1 1 3 28
check "g32: every group of 4 logged once, chunk c by actor c mod 28" $PY logs.py g32 orders 20 224 4 8 1 1 3 28
check "g32: max_policy_lag 1: versions one behind, never more" $PY logs.py g32 versions 20 224 4 8 1 1 3 28
echo "     g32: the job used $($PY cpu_check.py g32 job) (reported: on 2 cores the work itself fills them)"
measure "g32: waiting actors and rewarders sleep, not poll" $PY cpu_check.py g32 sleep 1

# ---- 2 learners x 3 actors x 2 rewarders ---------------------------------------------------
# one minibatch per epoch: then the update does not depend on how the
# learners split the batch (README, "Critic-free RL"), only on rounding
L2="policy=sft/final.h5 reward_model=rm/final.h5 prompts=data/rl_prompts.jsonl batch_size=24 chunk=4"
L2="$L2 minibatch=24 micro_batch=4 max_new=8 ppo_epochs=2 lr=1e-4 value_lr=1e-4 log_samples=0 iterations=30"
L2="$L2 max_policy_lag=1 ckpt_every=1 keep_checkpoints=40 rewarders=2"
t0=$(now_ms)
job l2 7 ppo $L2 out_dir=l2 learners=2
echo "     l2: $(secs $(($(now_ms) - t0))) s"
ended l2 7
check "l2: 24 rows per iteration, 30 iterations" $PY logs.py l2 rows 30 24 1 4 1 2 2 3
check "l2: every (iteration, chunk, sample) logged once, chunk c by actor c mod 3" $PY logs.py l2 orders 30 24 1 4 1 2 2 3
check "l2: max_policy_lag 1: versions one behind, never more" $PY logs.py l2 versions 30 24 1 4 1 2 2 3
echo "     l2: the job used $($PY cpu_check.py l2 job) (reported: on 2 cores the work itself fills them)"
measure "l2: waiting actors and rewarders sleep, not poll" $PY cpu_check.py l2 sleep 2
measure "l2: the second learner, waiting for the leader, uses no more CPU than it" $PY cpu_check.py l2 learners
$MPIRUN -n 6 "$RLHF" ppo $L2 out_dir=l1 >l1.log 2>&1
check "l2: the first iteration's rollouts are the 1-learner run's, bit for bit" $PY - <<'PY'
import h5py, numpy as np
a, b = h5py.File("l1/rollouts.h5", "r"), h5py.File("l2/rollouts.h5", "r")
def first(f):
    it, g = f["iteration"][()], f["group"][()]
    return np.lexsort((g, it))[:24]
ia, ib = first(a), first(b)
for k in a:
    if k in ("timestamp", "t_generate", "t_score"): continue
    x, y = a[k][()][ia], b[k][()][ib]
    if k == "actor": x, y = x - 3, y - 4           # actor index: the first actor is rank 3, with 2 learners rank 4
    assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
PY
cat >upd.py <<'PY'
import sys, h5py, numpy as np
# |update A - update B| / |update A| of the models under GROUP, from INIT
init, a, b, group = sys.argv[1:5]
def params(p, g):
    with h5py.File(p, "r") as f: return {k: f[g][k][()].astype(np.float64) for k in f[g]}
i, x, y = params(init, "params"), params(a, group), params(b, group)
dx = np.concatenate([(x[k] - i[k]).ravel() for k in sorted(i)])
dy = np.concatenate([(y[k] - i[k]).ravel() for k in sorted(i)])
rel = np.linalg.norm(dx - dy) / np.linalg.norm(dx)
print(group, "relative difference of the updates", rel)
assert rel < 5e-3, rel
PY
check "l2: the first update of the policy is the 1-learner run's, to rounding" \
    $PY upd.py sft/final.h5 l1/ckpt-000001.h5 l2/ckpt-000001.h5 params
check "l2: ... and of the value model" $PY upd.py rm/final.h5 l1/ckpt-000001.h5 l2/ckpt-000001.h5 value/params
exit 0
