# launch/slurm/requeue.sh — sourced by the batch scripts in this directory:
# runs an rlhf job so that a warning signal (sbatch --signal=B:TERM@120, or
# `scancel --batch --signal=TERM JOB`) makes rlhf checkpoint and exit, and
# then requeues the job; the requeued job reruns the same command and rlhf
# resumes from the latest checkpoint in out_dir by itself.
#
#   requeue_on_signal steps|children CMD...
#
# How the signal reaches rlhf depends on what CMD starts (measured with
# Slurm 22.05 and Open MPI 4.1 on Debian 12):
#   steps     CMD starts Slurm job steps (srun, or launch/run.sh inside
#             Slurm). srun answers SIGTERM by killing its step at once, so
#             the signal must not go to srun: `scancel --signal=TERM
#             $SLURM_JOB_ID` sends it to every task of every step (not to
#             this batch shell), and tasks get as long as they need to exit.
#   children  CMD is mpirun: the ranks it started on this node, its
#             children, get the SIGTERM directly. mpirun itself must not get
#             it: it answers with SIGCONT, waits odls_base_sigkill_timeout
#             (1 s), sends SIGTERM, waits again and sends SIGKILL, so ranks
#             would have about 1 s to checkpoint (raising the timeout delays
#             the SIGTERM by as much). Ranks on other nodes are not reached,
#             and need not be: rlhf stops when one rank has the signal (a
#             learner, for PPO; any rank of a trainer), and mpirun puts rank
#             0 on this node.
#
# Returns CMD's exit status. Requeues only when a signal arrived and CMD
# failed (rlhf exits non-zero when it stops early; a run that completed just
# as the signal came is not rerun). Needs `#SBATCH --requeue`.

requeue_on_signal() {
    local how=$1 rc prev seen
    shift
    case $how in steps|children) ;; *) echo "requeue_on_signal: first argument must be steps or children" >&2; return 2 ;; esac
    _requeue_how=$how _requeue_signals=0 _requeue_pid=""
    # trap before starting CMD: a signal that lands in between must not kill this shell
    trap _requeue_forward TERM USR1
    "$@" &
    _requeue_pid=$!
    [ "$_requeue_signals" = 0 ] || _requeue_send
    wait "$_requeue_pid"
    rc=$?
    # a trapped signal interrupts `wait` (status > 128) while CMD still runs: wait again
    while [ "$_requeue_signals" != "${seen:-0}" ]; do
        seen=$_requeue_signals prev=$rc
        wait "$_requeue_pid"
        rc=$?
        [ $rc = 127 ] && rc=$prev   # CMD had already been reaped: keep its status
    done
    trap - TERM USR1
    if [ "$_requeue_signals" != 0 ] && [ $rc != 0 ]; then
        echo "requeue: stopped by a signal (exit $rc): requeueing job $SLURM_JOB_ID; it resumes from the last checkpoint" >&2
        scontrol requeue "$SLURM_JOB_ID" ||
            echo "requeue: scontrol requeue failed (was the job submitted with --requeue?)" >&2
    fi
    return $rc
}

# Signal handler: counts the signals and passes the first one on.
_requeue_forward() {
    _requeue_signals=$((_requeue_signals + 1))
    [ "$_requeue_signals" = 1 ] && [ -n "$_requeue_pid" ] && _requeue_send
    return 0
}

_requeue_send() {
    echo "requeue: signal received at $(date +%T): asking rlhf to checkpoint and stop" >&2
    if [ "$_requeue_how" = steps ]; then
        scancel --signal=TERM "$SLURM_JOB_ID"
    else
        pkill -TERM -P "$_requeue_pid"
    fi
}
