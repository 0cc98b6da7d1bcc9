#!/bin/bash
# Snapshots go out once (issue 16): with snapshot_send = bcast the leader
# sends each policy version's header point-to-point and its weights once, by
# MPI_Ibcast on the learner + actors communicator; p2p sends header and
# weights to every actor. The two give the same run bit for bit (final
# policy, value model, every rollout log field but the timings) with 1 and 3
# actors at lag 0 and 1; the rollout log's versions follow the lag rule; the
# run says how many versions went each way. A stopped actor (SIGSTOP, at a
# known point: RLHF_TEST_ACTOR_STOP) under bcast costs speed, never the
# result or the end of the job: the versions go point-to-point while it is
# late, the run completes bit-identical when it answers again (also with a
# binomial broadcast tree and the actor stopped inside it before its part:
# the one below it takes the version point-to-point), one stopped for good
# ends the job at twice rank_timeout with a checkpoint from which the same
# command resumes to the same result, and SIGTERM to the learner ends the job
# within seconds.
set -u
SUITE=snapshots
. "$(dirname "$0")/../lib.sh"
scratch snapshots
use_mpirun
cd "$T"
tiny_models && pass "tiny SFT and RM" || fail "tiny SFT and RM"
PPO="policy=sft/final.h5 reward_model=rm/final.h5 prompts=data/rl_prompts.jsonl batch_size=16 chunk=4 minibatch=8"
PPO="$PPO micro_batch=8 max_new=8 ppo_epochs=2 lr=1e-4 value_lr=1e-4 log_samples=0"

# same_run A B NAME: final policy and value model bit-identical, and every
# rollout log field but the timings (NaN = NaN) and those in SAME_SKIP
same_run() {
    if $PY - "$1" "$2" "${SAME_SKIP:-}" >"$T/cmp" 2>&1 <<'PY'; then pass "$3"; else fail "$3" "$(tail -3 "$T/cmp")"; fi
import h5py, numpy as np, sys
def eq(x, y):
    if x.dtype == object:
        return len(x) == len(y) and all(eq(np.asarray(p), np.asarray(q)) for p, q in zip(x, y))
    return x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
bad = []
for f in ["final.h5", "value.h5"]:
    a, b = h5py.File(sys.argv[1] + "/" + f, "r"), h5py.File(sys.argv[2] + "/" + f, "r")
    a.visititems(lambda n, o: bad.append(f + ":" + n) if isinstance(o, h5py.Dataset) and not eq(o[()], b[n][()]) else None)
a = h5py.File(sys.argv[1] + "/rollouts.h5", "r", libver="latest", swmr=True)
b = h5py.File(sys.argv[2] + "/rollouts.h5", "r", libver="latest", swmr=True)
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
skip = ("t_generate", "t_score", "timestamp") + tuple(sys.argv[3].split())
bad += ["rollouts:" + k for k in a if k not in skip and not eq(a[k][()], b[k][()])]
assert not bad, "differ: %s" % bad[:6]
PY
}

# versions LOG WAY: "B P" from the run's "snapshots: B version(s) sent by broadcast, P point-to-point" line
ways() { sed -n 's/^ppo: snapshots: \([0-9]*\) version(s) sent by broadcast, \([0-9]*\) point-to-point.*/\1 \2/p' "$1"; }

# ==== bcast = p2p, bit for bit =============================================
for n in 1 3; do
    for lag in 0 1; do
        for way in bcast p2p; do
            $MPIRUN -n $((n + 2)) "$RLHF" ppo $PPO out_dir=a$n.l$lag.$way iterations=6 max_policy_lag=$lag \
                snapshot_send=$way >a$n.l$lag.$way.log 2>&1 || fail "$n actor(s), lag $lag, $way: run" "$(tail -3 a$n.l$lag.$way.log)"
        done
        same_run a$n.l$lag.bcast a$n.l$lag.p2p "$n actor(s), lag $lag: bcast and p2p give the same policy, value model and rollout log"
        [ "$(ways a$n.l$lag.bcast.log)" = "6 0" ] && pass "$n actor(s), lag $lag: bcast sent all 6 versions by broadcast" ||
            fail "$n actor(s), lag $lag: bcast sent all 6 versions by broadcast" "$(ways a$n.l$lag.bcast.log)"
        [ "$(ways a$n.l$lag.p2p.log)" = "0 6" ] && pass "$n actor(s), lag $lag: p2p sent all 6 point-to-point" ||
            fail "$n actor(s), lag $lag: p2p sent all 6 point-to-point" "$(ways a$n.l$lag.p2p.log)"
        check "$n actor(s), lag $lag: rollout log versions follow the lag rule, every actor's samples logged" \
            $PY - a$n.l$lag.bcast $lag $n <<'PY'
import h5py, numpy as np, sys
d, lag, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = h5py.File(d + "/rollouts.h5", "r", libver="latest", swmr=True)
it, v = f["iteration"][()], f["version"][()]
assert list(np.bincount(it)) == [16] * 6, np.bincount(it)
assert (v == np.maximum(it - lag, 0)).all(), list(zip(it, v))   # the version each order was for, from the broadcast
assert len(set(f["actor"][()])) == n, set(f["actor"][()])
m = h5py.File(d + "/metrics.h5", "r")
assert m["lag_max"][()].max() <= lag, m["lag_max"][()]
PY
    done
done
check "the default is bcast" grep -q "snapshot_send = bcast" a3.l0.bcast.log
expect_err "snapshot_send=tree refused" "snapshot_send" $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=bad iterations=1 snapshot_send=tree

# ==== a stopped actor under bcast ============================================
S="$PPO iterations=40 ckpt_every=5 keep_checkpoints=20 rank_timeout=1 snapshot_send=bcast"
# stopped RANK: waits (20 s at most) until world rank RANK of the job $PID is
# stopped (state T), and prints its process id
stopped() {
    local i p
    for i in $(seq 400); do
        p=$(rank_pid "$PID" "$1") && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = T ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    return 1
}
# stall OUT NRANKS VICTIM WHEN MODE [KEY=VALUE...]: runs PPO on NRANKS ranks
# into OUT; actor rank VICTIM stops itself (RLHF_TEST_ACTOR_STOP, actor.c)
# just before it posts its part of version 5's broadcast (WHEN posting) or
# just after it took version 5 (holding); MODE cont: SIGCONT 0.5 s after the
# warning; stay: left stopped. STALL_ENV: more NAME=VALUE for mpirun's
# environment. Sets RC, LOG (OUT.log), RANKS.
stall() {
    local out=$1 n=$2 victim=$3 when=$4 mode=$5 vpid
    shift 5
    LOG=$out.log
    bg "$LOG" env RLHF_TEST_ACTOR_STOP="$victim:5:$when" ${STALL_ENV:-} $MPIRUN -x RLHF_TEST_ACTOR_STOP -n "$n" "$RLHF" ppo $S out_dir="$out" "$@"
    until_file "$out/ckpt-000005.h5" 5 # (not there when the update is held: the wait is only a start)
    RANKS=$(tree_pids "$PID")
    watchdog $RANKS
    vpid=$(stopped "$victim") || fail "$out: rank $victim stopped itself" "$(tail -3 "$LOG")"
    if [ "$mode" = cont ]; then
        until_line "$LOG" "warning: .*rank $victim "
        sleep 0.5 # versions meanwhile go point-to-point
        kill -CONT "$vpid"
    fi
    fin "$LOG"
    unwatch
}
expect_ok "undisturbed reference, 3 actors" $MPIRUN -n 5 "$RLHF" ppo $S out_dir=ref
expect_ok "undisturbed reference, 3 actors, p2p" $MPIRUN -n 5 "$RLHF" ppo $S out_dir=ref_p2p snapshot_send=p2p
same_run ref ref_p2p "40 iterations, 3 actors: bcast = p2p"
SAME_SKIP=actor # the late actor's work was sampled by another: the same samples, another actor field

# an actor stops after taking version 5: its orders go to the other two, and
# the versions while it is late go point-to-point; once it answers, by
# broadcast again
stall cont 5 4 holding cont
[ "$RC" = 0 ] && pass "bcast, an actor of 3 stopped after taking a version, then continued: the run completes" ||
    fail "bcast, an actor of 3 stopped after taking a version, then continued: the run completes" "exit $RC: $(grep -v '^ppo: it\|=' "$LOG" | tail -4)"
grep -q "warning: ppo: rank 4 (actor) has not answered for 1.[0-9] s (rank_timeout 1 s): its work goes to other ranks" "$LOG" &&
    pass "... the late actor is named" || fail "... the late actor is named" "$(grep -i 'warn\|error' "$LOG")"
w=$(ways "$LOG")
[ "${w#* }" -ge 1 ] 2>/dev/null && [ "${w% *}" -ge 1 ] && [ $((${w% *} + ${w#* })) = 40 ] &&
    grep -q "ppo: snapshot version 6 goes point-to-point: rank 4 (actor) is late" "$LOG" &&
    pass "... versions went point-to-point while it was late (broadcast, point-to-point: $w)" ||
    fail "... versions went point-to-point while it was late" "ways '$w': $(grep 'snapshot' "$LOG" | tail -4)"
grep -q "ppo: snapshot version [0-9]* goes by broadcast again" "$LOG" && pass "... and by broadcast again once it answered" ||
    fail "... and by broadcast again once it answered" "$(grep 'snapshot' "$LOG" | tail -4)"
same_run ref cont "... final policy, value model and samples bit-identical to the undisturbed run"

# a binomial tree (for 4 members Open MPI takes a linear one): actors are
# world ranks 2..5, broadcast ranks 1..4; Open MPI's binomial tree from 0
# (libnbc: vrank v receives from v - 2^r, 2^r <= v < 2^(r+1)) is 0 -> 1, 2, 4
# and 1 -> 3, so world rank 2 stopped before its part of version 5 holds up
# world rank 4 below it (and the learner, whose send to it cannot complete):
# at the deadline both are sent version 5 point-to-point, rank 4 takes it and
# goes on
expect_ok "undisturbed reference, 4 actors" $MPIRUN -n 6 "$RLHF" ppo $S out_dir=ref4
STALL_ENV=OMPI_MCA_coll_libnbc_ibcast_algorithm=2 stall tree 6 2 posting cont
[ "$RC" = 0 ] && pass "binomial tree, an inner actor stopped before its part of a broadcast, then continued: the run completes" ||
    fail "binomial tree, an inner actor stopped before its part of a broadcast, then continued: the run completes" "exit $RC: $(grep -v '^ppo: it\|=' "$LOG" | tail -4)"
grep -q "ppo: snapshot version 5: sent again point-to-point to 2 actor(s) that have not finished its broadcast" "$LOG" &&
    pass "... version 5 sent again point-to-point to it and the actor below it" ||
    fail "... version 5 sent again point-to-point to it and the actor below it" "$(grep 'snapshot\|warn' "$LOG" | tail -5)"
same_run ref4 tree "... final policy, value model and samples bit-identical to the undisturbed run ($(ways "$LOG" | tr ' ' /) broadcast/point-to-point)"

# stopped for good before its part of a broadcast: the job ends at twice
# rank_timeout with a checkpoint; the same command resumes
stall gone 5 4 posting stay
[ "$RC" = 1 ] && pass "bcast, an actor stopped for good: the job ends (exit 1)" || fail "bcast, an actor stopped for good: the job ends (exit 1)" "exit $RC"
ERR=$(grep '^rlhf: error:' "$LOG")
case "$ERR" in
*"rank 4 (actor) has not answered for 2."*" s, twice rank_timeout (1 s): ending the job; the last complete iteration ("*) pass "... naming the rank, with a checkpoint" ;;
*) fail "... naming the rank, with a checkpoint" "$ERR" ;;
esac
wait_gone $RANKS && pass "... every rank of the job is gone, the stopped one too" || fail "... every rank of the job is gone"
expect_ok "... the same command resumes" $MPIRUN -n 5 "$RLHF" ppo $S out_dir=gone
SAME_SKIP= same_run ref gone "... resumed: final policy, value model and rollout log bit-identical to the undisturbed run"

bg term.log $MPIRUN -n 5 "$RLHF" ppo $S iterations=2000 rank_timeout=60 out_dir=term
until_file term/ckpt-000005.h5 && sleep 0.1
RANKS=$(tree_pids "$PID")
watchdog $RANKS
kill -STOP "$(rank_pid "$PID" 4)"
sleep 0.3
t0=$(now_ms)
kill -TERM "$(rank_pid "$PID" 0)"
fin term.log
unwatch
ms=$(($(now_ms) - t0))
[ "$RC" = 143 ] && [ "$ms" -lt 15000 ] && pass "bcast, SIGTERM with an actor stopped: exit 143 within seconds ($ms ms)" ||
    fail "bcast, SIGTERM with an actor stopped: exit 143 within seconds" "exit $RC, $ms ms: $(tail -3 term.log)"
wait_gone $RANKS && pass "... and no rank lingers" || fail "... and no rank lingers"
exit 0
