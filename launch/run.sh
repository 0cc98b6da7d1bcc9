#!/bin/bash
# launch/run.sh — starts an rlhf stage with the MPI launcher the machine
# needs, prints the command, then runs it (exec: the launcher takes this
# process's place, so the caller's pid, signals and exit status are its own).
# Stopping a run cleanly: see launch/slurm/requeue.sh for which process must
# get the SIGTERM (not srun, which then kills its step; not mpirun, which
# gives ranks 1 s before SIGKILL).
#
#   launch/run.sh STAGE [--learners L] [--rewarders R] [--actors A]
#                       [--ranks N] [--dry-run] CONFIG [key=value ...]
#
# STAGE is pretrain, sft, rm, dpo (data-parallel over --ranks N) or ppo
# (L learners + R rewarders + A actors, in that rank order; learners= and
# rewarders= are passed to rlhf so its role layout matches the rank count).
#
# Inside a Slurm allocation (SLURM_JOB_ID set): `srun --mpi=pmix` (Debian's
# Open MPI has no PMI-1/PMI-2 client: the default and --mpi=pmi2 fail), with
# -O when the tasks exceed the allocation's CPUs. Elsewhere: `mpirun`, with
# --allow-run-as-root only for root, --oversubscribe only when the ranks
# exceed the cores, and OPENBLAS_NUM_THREADS per rank = cores / ranks (1 when
# the ranks fill the cores; with several threads, --bind-to none, since Open
# MPI would pin each rank and its threads to one core). Defaults: outside
# Slurm --ranks 1 and --actors 1; inside an allocation the ranks fill its
# SLURM_NTASKS.
#
# Environment:
#   RLHF_BIN            the binary (default: bin/rlhf beside this directory)
#   RLHF_LAUNCHER       mpirun or srun: force one (e.g. mpirun inside Slurm)
#   RLHF_LAUNCH_ARGS    extra launcher arguments (e.g. "--hostfile hosts")
#   RLHF_ASSUME_UID     pretend to run as this uid (tests: root vs not)
#   RLHF_ASSUME_CORES   pretend the machine has this many cores (tests)
set -euo pipefail

STAGES="pretrain sft rm dpo ppo"
ME=launch/run.sh

usage() {
    cat <<EOF
usage: $ME STAGE [--learners L] [--rewarders R] [--actors A] [--ranks N] [--dry-run] CONFIG [key=value ...]

STAGE: pretrain, sft, rm, dpo (--ranks N data-parallel ranks) or ppo
(--learners L, --rewarders R, --actors A: L + R + A ranks).
Prints the launch command (mpirun, or srun --mpi=pmix inside Slurm), then runs
it; --dry-run prints it on stdout and stops.
EOF
}

die() {
    echo "$ME: error: $*" >&2
    exit 2
}

# positive_int NAME VALUE: VALUE must be a whole number >= 1 (dies otherwise).
positive_int() {
    [[ $2 =~ ^[0-9]+$ ]] || die "$1 expects a whole number, got '$2'"
    [ "$2" -ge 1 ] || die "$1 must be at least 1, got $2"
}

# config_value FILE KEY: the last "KEY = value" in a config file (empty if none),
# with the file's comment rules: a '#' that starts a word ends the value.
config_value() {
    awk -v key="$2" '
        { sub(/^[ \t]+/, "") }
        /^#/ { next }
        {
            i = index($0, "=")
            if (i == 0) next
            k = substr($0, 1, i - 1); sub(/[ \t]+$/, "", k)
            if (k != key) next
            v = substr($0, i + 1); sub(/(^|[ \t])#.*/, "", v)
            gsub(/^[ \t]+|[ \t]+$/, "", v)
            val = v; line = NR
        }
        END { if (line) print line ":" val }' "$1"
}

# slurm_cpus: the CPUs of the allocation, from SLURM_JOB_CPUS_PER_NODE
# ("4(x2),2" = 4 + 4 + 2); falls back to SLURM_CPUS_ON_NODE x nodes.
slurm_cpus() {
    local spec=${SLURM_JOB_CPUS_PER_NODE:-} total=0 part n reps
    if [ -z "$spec" ]; then
        echo $(( ${SLURM_CPUS_ON_NODE:-1} * ${SLURM_JOB_NUM_NODES:-1} ))
        return
    fi
    IFS=, read -ra parts <<<"$spec"
    for part in "${parts[@]}"; do
        n=${part%%(*}
        reps=1
        [[ $part =~ \(x([0-9]+)\) ]] && reps=${BASH_REMATCH[1]}
        total=$(( total + n * reps ))
    done
    echo "$total"
}

# shell_words WORD...: the words as one line a shell reads back the same,
# quoting only the words that need it (printf %q alone would escape commas)
shell_words() {
    local w out=()
    for w in "$@"; do
        if [[ $w =~ ^[A-Za-z0-9_./=:,@%+-]+$ ]]; then out+=("$w"); else out+=("$(printf '%q' "$w")"); fi
    done
    echo "${out[*]}"
}

# ---- arguments ---------------------------------------------------------------

[ $# -ge 1 ] || { usage >&2; exit 2; }
case $1 in -h|--help) usage; exit 0 ;; esac
STAGE=$1
shift
[[ " $STAGES " == *" $STAGE "* ]] || die "unknown stage '$STAGE' (expected one of: ${STAGES// /, })"

learners="" rewarders="" actors="" ranks="" dry_run=0 config="" overrides=()
while [ $# -gt 0 ]; do
    arg=$1
    shift
    case $arg in
        --*=*) set -- "${arg%%=*}" "${arg#*=}" "$@"; continue ;;   # --opt=V as --opt V
    esac
    case $arg in
        --dry-run) dry_run=1 ;;
        --learners|--rewarders|--actors|--ranks)
            [ $# -ge 1 ] || die "$arg needs a value"
            positive_int "$arg" "$1"
            printf -v "${arg#--}" '%s' "$1"
            shift ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option '$arg' (see $ME --help)" ;;
        *=*)
            [ -n "$config" ] || die "the config file must come before key=value overrides ('$arg')"
            case ${arg%%=*} in   # these two decide the rank count: same meaning as the options
                learners) positive_int learners "${arg#*=}"; learners=${arg#*=} ;;
                rewarders) positive_int rewarders "${arg#*=}"; rewarders=${arg#*=} ;;
                *) overrides+=("$arg") ;;
            esac ;;
        *)
            [ -z "$config" ] || die "unexpected argument '$arg' (overrides are key=value)"
            config=$arg ;;
    esac
done

[ -n "$config" ] || die "missing CONFIG file (usage: $ME $STAGE [options] CONFIG [key=value ...])"
[ -f "$config" ] || die "config file '$config' not found"
[ -r "$config" ] || die "config file '$config' is not readable"

IN_SLURM=0
[ -n "${SLURM_JOB_ID:-}" ] && IN_SLURM=1

# ---- rank count -----------------------------------------------------------

if [ "$STAGE" = ppo ]; then
    [ -z "$ranks" ] || die "ppo takes --learners/--rewarders/--actors, not --ranks"
    for key in learners rewarders; do
        [ -n "${!key}" ] && continue
        found=$(config_value "$config" "$key")
        if [ -n "$found" ]; then
            [[ ${found#*:} =~ ^[1-9][0-9]*$ ]] ||
                die "$config:${found%%:*}: $key must be a whole number >= 1, got '${found#*:}'"
            printf -v "$key" '%s' "${found#*:}"
        else
            printf -v "$key" '%s' 1
        fi
    done
    if [ -z "$actors" ]; then
        actors=1
        if [ $IN_SLURM = 1 ] && [ -n "${SLURM_NTASKS:-}" ]; then
            actors=$(( SLURM_NTASKS - learners - rewarders ))
            [ "$actors" -ge 1 ] || die "the allocation's $SLURM_NTASKS tasks leave no actor after $learners learner(s)" \
                "and $rewarders rewarder(s): request more tasks or pass --actors"
        fi
    fi
    NRANKS=$(( learners + rewarders + actors ))
    overrides+=("learners=$learners" "rewarders=$rewarders")
else
    [ -z "$learners$rewarders$actors" ] || die "--learners/--rewarders/--actors are for ppo; $STAGE takes --ranks N"
    if [ -z "$ranks" ]; then
        ranks=1
        [ $IN_SLURM = 1 ] && [ -n "${SLURM_NTASKS:-}" ] && ranks=$SLURM_NTASKS
    fi
    NRANKS=$ranks
fi

# ---- command -----------------------------------------------------------------

BIN=${RLHF_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin/rlhf}
if [ $dry_run = 0 ] && [ ! -x "$BIN" ]; then
    die "$BIN not found or not executable (build it with 'make bin/rlhf', or set RLHF_BIN)"
fi

LAUNCHER=${RLHF_LAUNCHER:-}
if [ -z "$LAUNCHER" ]; then
    LAUNCHER=mpirun
    [ $IN_SLURM = 1 ] && LAUNCHER=srun
fi
read -ra extra <<<"${RLHF_LAUNCH_ARGS:-}"

cmd=()
case $LAUNCHER in
srun)
    [ $IN_SLURM = 1 ] || die "RLHF_LAUNCHER=srun needs a Slurm allocation (SLURM_JOB_ID is not set)"
    cpus=$(slurm_cpus)
    threads=${SLURM_CPUS_PER_TASK:-1}
    cmd=(srun --mpi=pmix --kill-on-bad-exit=1 -n "$NRANKS")
    if [ $(( NRANKS * threads )) -gt "$cpus" ]; then
        # without -O srun refuses ("More processors requested than permitted")
        # or, outside an allocation, waits forever
        cmd+=(--overcommit)
        threads=1
    elif [ "$threads" -gt 1 ]; then
        # srun does not inherit the job's --cpus-per-task (srun(1), Slurm 22.05)
        cmd+=("--cpus-per-task=$threads")
    fi
    cmd+=("--export=ALL,OPENBLAS_NUM_THREADS=$threads") ;;
mpirun)
    # inside an allocation mpirun gets its slots from Slurm: SLURM_NTASKS
    slots=$(nproc)
    [ $IN_SLURM = 1 ] && slots=${SLURM_NTASKS:-$(slurm_cpus)}
    cores=${RLHF_ASSUME_CORES:-$slots}
    positive_int RLHF_ASSUME_CORES "$cores"
    uid=${RLHF_ASSUME_UID:-$(id -u)}
    threads=$(( cores / NRANKS ))
    [ "$threads" -ge 1 ] || threads=1
    cmd=(mpirun)
    [ "$uid" = 0 ] && cmd+=(--allow-run-as-root)
    [ "$NRANKS" -gt "$cores" ] && cmd+=(--oversubscribe)
    # Open MPI binds each rank to one core by default (np <= 2): a rank's
    # OpenBLAS threads would then share that core
    [ "$threads" -gt 1 ] && cmd+=(--bind-to none)
    cmd+=(-n "$NRANKS" -x "OPENBLAS_NUM_THREADS=$threads") ;;
*) die "RLHF_LAUNCHER must be mpirun or srun, got '$LAUNCHER'" ;;
esac
cmd+=("${extra[@]}" "$BIN" "$STAGE" --config "$config" "${overrides[@]}")

if [ $dry_run = 1 ]; then
    shell_words "${cmd[@]}"
    exit 0
fi
echo "$ME: $(shell_words "${cmd[@]}")" >&2
exec "${cmd[@]}"
