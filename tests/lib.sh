# lib.sh — the helpers every shell test shares (tests/cli/*.sh, tests/soak.sh).
# A test sets SUITE (the word after "ok   " / "FAIL " on its result lines,
# which tests/run.sh counts) and sources this file:
#     SUITE=train
#     . "$(dirname "$0")/../lib.sh"
# Afterwards:
#   ROOT     the repository root; the working directory is ROOT
#   RLHF     the binary under test (RLHF_BIN, default bin/rlhf), absolute
#   PY       the system Python (h5py, numpy)
#   NFAIL    how many fail lines were printed
# and the functions below. Sourcing changes nothing else: no scratch
# directory, no MPI settings, unless asked for (scratch, use_mpirun).

# ---- where things are --------------------------------------------------------
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RLHF=${RLHF_BIN:-bin/rlhf}
# absolute, so that a test may cd into its scratch directory
case $RLHF in
/*) ;;
*) _lib_dir=$(cd "$(dirname "$RLHF")" 2>/dev/null && pwd) && RLHF=$_lib_dir/$(basename "$RLHF") ;;
esac
PY=/usr/bin/python3
cd "$ROOT" || exit 1

# ---- results -------------------------------------------------------------------
NFAIL=0
# pass NAME: "ok   SUITE: NAME"
pass() { echo "ok   $SUITE: $1"; }
# fail NAME [DETAIL]: "FAIL SUITE: NAME", then DETAIL's lines indented
fail() {
    echo "FAIL $SUITE: $1"
    [ -n "${2:-}" ] && echo "$2" | sed 's/^/    /'
    NFAIL=$((NFAIL + 1))
}
# check NAME CMD...: CMD succeeds; else the last lines of its output
check() {
    local n=$1
    shift
    if "$@" >"$T/out" 2>&1; then pass "$n"; else fail "$n" "$(tail -4 "$T/out")"; fi
}
# expect_ok NAME CMD...: CMD succeeds; else the first lines of its stderr
expect_ok() {
    local n=$1
    shift
    if "$@" >"$T/out" 2>"$T/err"; then pass "$n"; else fail "$n" "exit $?: $(head -3 "$T/err")"; fi
}
# expect_err NAME PATTERN CMD...: CMD fails within 60 s and its stderr holds
# exactly one error line, "${ERR_PREFIX}...PATTERN" (a grep pattern;
# ERR_PREFIX is "rlhf: error: " unless set). With ERR_ALONE=1 that line must
# be all the output: nothing else on stderr, nothing on stdout; otherwise other lines (e.g. the configuration a stage
# prints) may surround it. With ERR_STATUS=N the exit status must be N. On
# failure: what was wanted and what came. Afterwards ERR_RC is CMD's exit
# status (e.g. to tell a refusal from a death by a signal).
expect_err() {
    local n=$1 pat=$2 prefix=${ERR_PREFIX-"rlhf: error: "} rc nerr want got
    shift 2
    timeout 60 "$@" >"$T/out" 2>"$T/err"
    rc=$?
    ERR_RC=$rc
    want="want: exit ${ERR_STATUS:-non-zero}, one stderr line '${prefix}.*$pat'"
    [ "${ERR_ALONE:-0}" = 1 ] && want="$want and no other output"
    if [ "${ERR_ALONE:-0}" = 1 ]; then
        nerr=$(( $(wc -l <"$T/err") + $(wc -l <"$T/out") ))
        got=$(head -4 "$T/err" "$T/out")
    else
        nerr=$(grep -c -e "^$prefix" "$T/err")
        got=$(grep -v -E '^ *[a-z_0-9]+ *=|^rlhf plot: ' "$T/err" | head -4)
    fi
    if [ $rc = 0 ]; then
        fail "$n" "$want"$'\n'"got:  exit 0 (succeeded but should have failed)"
    elif [ -n "${ERR_STATUS:-}" ] && [ $rc != "$ERR_STATUS" ]; then
        fail "$n" "$want"$'\n'"got:  exit $rc: $got"
    elif [ "$nerr" -eq 1 ] && grep -q -e "^$prefix.*$pat" "$T/err"; then
        pass "$n"
    else
        fail "$n" "$want"$'\n'"got:  exit $rc, $nerr line(s):"$'\n'"$got"
    fi
}

# ---- the scratch directory -----------------------------------------------------
_LIB_AT_EXIT=()
# at_exit CMD: runs CMD (a string, eval'd) at exit, before the scratch
# directory is removed
at_exit() { _LIB_AT_EXIT+=("$1"); }
_lib_exit() {
    local c
    for c in "${_LIB_AT_EXIT[@]}"; do eval "$c"; done
    [ -n "${T:-}" ] && [ -d "$T" ] || return 0
    if [ -n "${KEEP:-}" ] && [ "$KEEP" != 0 ]; then echo "kept $T"
    elif [ "${KEEP_ON_FAIL:-0}" = 1 ] && [ "$NFAIL" != 0 ]; then echo "kept $T"
    else rm -rf "$T"; fi
}
trap _lib_exit EXIT
# scratch NAME: T, a fresh /tmp/rlhf-NAME-XXXXXX, removed at exit unless
# KEEP=1 (or KEEP_ON_FAIL=1 and a check failed): then "kept T" is printed
scratch() { T=$(mktemp -d "/tmp/rlhf-$1-XXXXXX") || exit 1; }

# ---- MPI -------------------------------------------------------------------------
# use_mpirun: MPIRUN (mpirun, which needs --allow-run-as-root as root) and
# oversubscription allowed (tests start more ranks than the machine's cores)
use_mpirun() {
    MPIRUN="mpirun"
    [ "$(id -u)" = 0 ] && MPIRUN="mpirun --allow-run-as-root"
    export OMPI_MCA_rmaps_base_oversubscribe=1
}

# ---- models for the RL tests -----------------------------------------------------
# tiny_models [MODEL]: in the current directory, the built-in task's data
# (data/, 400 examples, seed 5) and pt/, sft/, rm/final.h5 after a few steps
# each; MODEL is the shape (default 2 layers, width 32, context 32). Fails
# if the reward model is missing at the end.
tiny_models() {
    local model=${1:-"n_layer=2 n_embd=32 n_head=2 n_ctx=32"}
    local common="batch_size=16 micro_batch=8 log_every=1000 warmup_steps=2"
    "$RLHF" data arith --out data --n 400 --seed 5 2>/dev/null
    "$RLHF" pretrain out_dir=pt train_data=data/pretrain.txt $model $common max_steps=30 lr=2e-3 >/dev/null 2>&1
    "$RLHF" sft init=pt/final.h5 out_dir=sft train_data=data/sft.jsonl $common max_steps=20 lr=1e-3 >/dev/null 2>&1
    "$RLHF" rm init=sft/final.h5 out_dir=rm train_data=data/prefs.jsonl $common max_steps=20 norm_samples=16 >/dev/null 2>&1
    [ -e rm/final.h5 ]
}

# ---- time ------------------------------------------------------------------------
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# secs MS: MS as seconds with three decimals
secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }

# ---- background jobs ---------------------------------------------------------------
# bg LOG CMD...: starts CMD in the background, stdout and stderr appended to
# LOG, inside a wrapper subshell (so that bash prints no "Killed" notice when a
# test kills it); sets PID (CMD's process, to signal) and WRAP (the wrapper).
# fin LOG: waits for it; RC = its exit status.
bg() {
    local log=$1
    shift
    rm -f "$log.pid" "$log.rc"
    ( "$@" >>"$log" 2>&1 & echo $! >"$log.pid"; wait $!; echo $? >"$log.rc" ) 2>/dev/null &
    WRAP=$!
    while [ ! -s "$log.pid" ]; do sleep 0.005; done
    PID=$(cat "$log.pid")
}
fin() { wait $WRAP; RC=$(cat "$1.rc" 2>/dev/null || echo "?"); }
# wait_file PATH: until PATH exists (30 s at most)
wait_file() { for i in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
# wait_line LOG PATTERN N: until LOG has N lines matching PATTERN (60 s at most)
wait_line() { for i in $(seq 3000); do [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0; sleep 0.02; done; return 1; }
# stale_temps DIR: how many checkpoint temporaries (*.tmp.*) DIR holds
stale_temps() { ls "$1"/*.tmp.* 2>/dev/null | wc -l; }
# tree_pids PID: PID and every process below it, now
tree_pids() {
    local p
    echo "$1"
    for p in $(pgrep -P "$1"); do tree_pids "$p"; done
}
# wait_gone PIDS...: until none of PIDS is running (10 s at most), e.g. the
# ranks of an mpirun that was signalled (tree_pids before the signal)
wait_gone() {
    local i p left
    for i in $(seq 100); do
        left=""
        for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    return 1
}
# For suites that stop ranks (stall.sh, snapshots.sh):
# rank_pid PID RANK: the process of MPI rank RANK under mpirun PID
rank_pid() {
    local p
    for p in $(tree_pids "$1"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# until_file PATH [SECONDS]: wait for PATH (20 s unless given)
until_file() {
    local i
    for i in $(seq $((${2:-20} * 20))); do
        [ -e "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# until_line LOG PATTERN: wait (20 s at most) for a line of LOG matching PATTERN
until_line() {
    local i
    for i in $(seq 400); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# watchdog PIDS...: kill -9 them after WATCHDOG seconds (60), so that a
# binary without deadlines fails this suite instead of hanging it; unwatch
# calls it off.
watchdog() {
    ( sleep "${WATCHDOG:-60}"; kill -CONT "$@"; kill -9 "$@" ) >/dev/null 2>&1 &
    DOG=$!
}
unwatch() { kill "$DOG" 2>/dev/null; wait "$DOG" 2>/dev/null; }
