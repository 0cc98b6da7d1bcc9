#!/bin/bash
# A rank that stops answering (SIGSTOP: a hung node, an NFS stall) never
# hangs a PPO job (issue 14 item 10; learner/watch.h has the rule,
# learner/dispatch.c the mechanism). With rank_timeout T: after T of silence
# the late rank is named and its work goes to another rank; a rank that
# answers again (SIGCONT) is taken back and the run ends as if nothing
# happened (lag 0: bit-identical to an undisturbed run); one still silent at
# 2T ends the job on every rank with a checkpoint of the last complete
# iteration, from which the same command resumes to the same result. SIGTERM
# to the learner while an actor is stopped checkpoints and ends the job
# within seconds, without waiting for the stopped rank.
set -u
SUITE=stall
. "$(dirname "$0")/../lib.sh"
scratch stall
use_mpirun
cd "$T"
tiny_models && pass "tiny SFT and RM" || fail "tiny SFT and RM"
PPO="policy=sft/final.h5 reward_model=rm/final.h5 prompts=data/rl_prompts.jsonl batch_size=16 chunk=4 minibatch=8"
PPO="$PPO micro_batch=8 max_new=8 ppo_epochs=2 lr=1e-4 value_lr=1e-4 log_samples=0 iterations=40 ckpt_every=5"
PPO="$PPO keep_checkpoints=20 rank_timeout=1"

# same_policy A B NAME: the two final policies are bit-identical
same_policy() {
    if $PY - "$1" "$2" >"$T/cmp" 2>&1 <<'PY'; then pass "$3"; else fail "$3" "$(tail -3 "$T/cmp")"; fi
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
bad = []
a.visititems(lambda n, o: bad.append(n) if isinstance(o, h5py.Dataset) and not np.array_equal(o[()], b[n][()]) else None)
assert not bad, "differ: %s" % bad[:4]
PY
}

# stall OUT NRANKS VICTIM MODE [KEY=VALUE...]: runs PPO on NRANKS ranks into
# OUT, stops rank VICTIM (SIGSTOP) once ckpt 5 exists; MODE cont: SIGCONT
# after the warning; stay: left stopped. Sets RC, LOG (OUT.log), RANKS.
stall() {
    local out=$1 n=$2 victim=$3 mode=$4 vpid
    shift 4
    LOG=$out.log
    bg "$LOG" $MPIRUN -n "$n" "$RLHF" ppo $PPO out_dir="$out" "$@"
    until_file "$out/ckpt-000005.h5" && sleep 0.1
    RANKS=$(tree_pids "$PID")
    watchdog $RANKS
    vpid=$(rank_pid "$PID" "$victim")
    kill -STOP "$vpid"
    if [ "$mode" = cont ]; then
        until_line "$LOG" "warning: .*rank $victim "
        kill -CONT "$vpid"
    fi
    fin "$LOG"
    unwatch
}

# the undisturbed run every result is compared with
expect_ok "undisturbed reference run" $MPIRUN -n 4 "$RLHF" ppo $PPO out_dir=ref
ref=ref/final.h5

# ==== an actor stops for a while, then answers again =========================
stall cont_actor 4 3 cont
[ "$RC" = 0 ] && pass "actor stopped, then continued: the run completes (exit 0)" ||
    fail "actor stopped, then continued: the run completes (exit 0)" "exit $RC: $(grep -v '^ppo: it\|=' "$LOG" | tail -4)"
grep -q "warning: ppo: rank 3 (actor) has not answered for 1.[0-9] s (rank_timeout 1 s): its work goes to other ranks" "$LOG" &&
    pass "the late actor is named, with the timeout" || fail "the late actor is named, with the timeout" "$(grep -i 'warn\|error' "$LOG")"
same_policy "$ref" cont_actor/final.h5 "work reassigned from a stopped actor: final policy bit-identical to the undisturbed run"

# ==== a rewarder stops for a while (two rewarders) ==========================
stall cont_rewarder 5 2 cont rewarders=2
[ "$RC" = 0 ] && pass "rewarder stopped, then continued: the run completes" ||
    fail "rewarder stopped, then continued: the run completes" "exit $RC: $(grep -v '^ppo: it\|=' "$LOG" | tail -4)"
grep -q "warning: ppo: rank 2 (rewarder) has not answered" "$LOG" && pass "the late rewarder is named" ||
    fail "the late rewarder is named" "$(grep -i 'warn\|error' "$LOG")"
same_policy "$ref" cont_rewarder/final.h5 "work reassigned from a stopped rewarder: final policy bit-identical"

# ==== two learners: the owner of a chunk moves it ===========================
stall cont_learners 6 5 cont learners=2
[ "$RC" = 0 ] && pass "2 learners, actor stopped then continued: the run completes" ||
    fail "2 learners, actor stopped then continued: the run completes" "exit $RC: $(grep -v '^ppo: it\|=' "$LOG" | tail -4)"
# (two learners sum gradients in another order than one: their own reference)
expect_ok "undisturbed reference run, 2 learners" $MPIRUN -n 6 "$RLHF" ppo $PPO out_dir=ref2 learners=2
same_policy ref2/final.h5 cont_learners/final.h5 "2 learners: final policy bit-identical to the undisturbed run"

# ==== an actor that never answers again ends the job ========================
stall gone_actor 4 3 stay
[ "$RC" = 1 ] && pass "actor stopped for good: the job ends (exit 1)" || fail "actor stopped for good: the job ends (exit 1)" "exit $RC"
ERR=$(grep '^rlhf: error:' "$LOG")
last=$(echo "$ERR" | sed -n 's/.*the last complete iteration (\([0-9]*\)) is in \([^;]*\);.*/\1 \2/p')
case "$ERR" in
*"rank 3 (actor) has not answered for 2."*" s, twice rank_timeout (1 s): ending the job"*) pass "the error names the rank and the deadline" ;;
*) fail "the error names the rank and the deadline" "$ERR" ;;
esac
if [ -n "$last" ] && [ -s "${last#* }" ]; then pass "its checkpoint of the last complete iteration is there (${last#* })"
else fail "its checkpoint of the last complete iteration is there" "$ERR | $(ls gone_actor)"; fi
wait_gone $RANKS && pass "every rank of the job is gone, the stopped one too" || fail "every rank of the job is gone" "$(ps -o pid,stat,args -p "$(echo $RANKS | tr ' ' ,)")"
[ -z "$(find gone_actor -name '*.tmp.*')" ] && pass "no temporaries left" || fail "no temporaries left" "$(ls gone_actor)"
expect_ok "the same command resumes" $MPIRUN -n 4 "$RLHF" ppo $PPO out_dir=gone_actor
grep -q "resuming from gone_actor/ckpt-0000${last%% *}.h5\|resuming from gone_actor/ckpt-$(printf %06d "${last%% *}").h5" "$T/err" &&
    pass "it resumes from that checkpoint" || fail "it resumes from that checkpoint" "$(grep resum "$T/err")"
same_policy "$ref" gone_actor/final.h5 "resumed after the job ended: final policy bit-identical to the undisturbed run"

# ==== the only actor stops: nobody can take its work =======================
stall gone_single 3 2 stay
[ "$RC" = 1 ] && pass "the only actor stopped: the job ends (exit 1)" || fail "the only actor stopped: the job ends (exit 1)" "exit $RC"
grep -q "rank 2 (actor) has not answered .*: no other rank of its role can take its work" "$LOG" &&
    pass "the warning says no other actor can take the work" || fail "the warning says no other actor can take the work" "$(grep -i 'warn' "$LOG")"

# ==== SIGTERM to the learner while an actor is stopped ======================
PPO_LONG="$PPO iterations=2000 rank_timeout=60"
bg term.log $MPIRUN -n 4 "$RLHF" ppo $PPO_LONG out_dir=term
until_file term/ckpt-000005.h5 && sleep 0.1
RANKS=$(tree_pids "$PID")
watchdog $RANKS
kill -STOP "$(rank_pid "$PID" 3)"
sleep 0.3
t0=$(now_ms)
kill -TERM "$(rank_pid "$PID" 0)"
fin term.log
unwatch
ms=$(($(now_ms) - t0))
[ "$RC" = 143 ] && pass "SIGTERM with an actor stopped: exit 143" || fail "SIGTERM with an actor stopped: exit 143" "exit $RC: $(tail -3 term.log)"
# the bound is a hang check, far below rank_timeout (60 s): the learner does not wait for the stopped rank
[ "$ms" -lt 15000 ] && pass "... and ends within seconds ($ms ms), not after rank_timeout" || fail "... ends within seconds" "$ms ms"
grep -q "signal received: checkpoint at iteration [0-9]*; run the same command again to resume (term/ckpt-" term.log && pass "... after a checkpoint" ||
    fail "... after a checkpoint" "$(grep -v '^ppo: it\|=' term.log | tail -4)"
grep -q "rank 3 (actor) did not stop" term.log && pass "... naming the rank that did not stop" ||
    fail "... naming the rank that did not stop" "$(grep error term.log)"
wait_gone $RANKS && pass "... and no rank lingers" || fail "... and no rank lingers"

# ==== rank_timeout itself ===================================================
for v in 0 -1 nan; do
    expect_err "rank_timeout=$v refused" "rank_timeout.*\(must be > 0\|finite number\)" $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=bad rank_timeout=$v
done
exit 0
