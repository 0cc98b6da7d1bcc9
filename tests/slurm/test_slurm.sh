#!/bin/bash
# tests/slurm/test_slurm.sh (`make test-slurm`) — proves the Slurm launch path
# for real: installs Debian's slurm-wlm and munge if missing, starts a
# one-node cluster on this machine (munged, slurmctld, slurmd under a
# temporary directory, no cgroups, no systemd), and runs tiny rlhf jobs
# through it: srun of a data-parallel trainer, sbatch --wait of PPO through
# launch/run.sh, the batch scripts in launch/slurm/ (data-parallel SFT, PPO,
# MPMD PPO with mpirun and with srun --multi-prog), and a preemption: the
# warning signal makes rlhf checkpoint, the job requeues itself and resumes.
# Daemons are always shut down (trap). Prints "ok   slurm: NAME" / "FAIL
# slurm: NAME" lines and "N passed, N failed", or one "skipped: REASON" line
# when a cluster cannot run here (not root, no packages, daemons do not start).
# Needs root (it installs packages and runs slurmd). About a minute after the
# packages are installed.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RLHF=${RLHF_BIN:-$ROOT/bin/rlhf}
RLHF=$(cd "$(dirname "$RLHF")" && pwd)/$(basename "$RLHF")
export RLHF_BIN=$RLHF OPENBLAS_NUM_THREADS=1
npass=0 nfail=0
pass() { echo "ok   slurm: $1"; npass=$((npass + 1)); }
fail() { echo "FAIL slurm: $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/    /'; nfail=$((nfail + 1)); }
info() { echo "info slurm: $*"; }
summary() { echo "$npass passed, $nfail failed"; [ "$nfail" -eq 0 ]; }
skip() { echo "skipped: $*"; echo "0 passed, 0 failed"; exit 0; }

[ -x "$RLHF" ] || { echo "FAIL slurm: $RLHF not built (make bin/rlhf)"; echo "0 passed, 1 failed"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root (installs slurm-wlm and munge, runs slurmd)"

# ---- packages -----------------------------------------------------------------

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
   ! command -v sbatch >/dev/null; then
    echo "installing slurm-wlm and munge (Debian packages)..."
    # if the packages start their own services, no harm: ours use their own
    # sockets, ports and files
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge; } >/tmp/rlhf-slurm-install.log 2>&1 ||
        skip "apt-get install slurm-wlm munge failed: $(tail -1 /tmp/rlhf-slurm-install.log)"
fi

# ---- a one-node cluster ------------------------------------------------------------

T=$(mktemp -d /tmp/rlhf-slurm-XXXXXX)
chmod 755 "$T"        # munged refuses a socket in a directory others cannot search
PIDS=()
shutdown() {
    # end our jobs first (their slurmstepd would outlive slurmd); only on our
    # own cluster: with another SLURM_CONF this would reach a real one
    [ "${SLURM_CONF:-}" = "$T/slurm.conf" ] && scancel --quiet --user=root 2>/dev/null && sleep 1
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$T"
}
trap shutdown EXIT
trap 'exit 130' INT TERM

# free TCP ports for slurmctld and slurmd (a system Slurm may hold 6817/6818)
read -r CTLD_PORT SLURMD_PORT < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
HOST=$(hostname -s)
MEM=$(( $(awk '/^MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
PMIX=none
[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] || ls /usr/lib/*/slurm-wlm/mpi_pmix.so >/dev/null 2>&1 && PMIX=pmix
mkdir -p "$T/state" "$T/spool" "$T/work"
cat >"$T/slurm.conf" <<EOF
# one node on localhost, for tests: no cgroups (containers), no accounting
ClusterName=rlhftest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge.sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=$PMIX
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf

dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$T/munge.key"
munged -F --key-file="$T/munge.key" --socket="$T/munge.sock" --pid-file="$T/munged.pid" \
    --log-file="$T/munged.log" --seed-file="$T/munged.seed" >"$T/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/munge.sock" ] && break; sleep 0.1; done
[ -S "$T/munge.sock" ] || skip "munged did not start: $(tail -1 "$T/munged.out")"

slurmctld -D -f "$T/slurm.conf" >"$T/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -N "$HOST" -f "$T/slurm.conf" >"$T/slurmd.out" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 150); do
    state=$(sinfo -h -o %T 2>/dev/null)
    [ "$state" = idle ] && break
    sleep 0.2
done
if [ "$state" != idle ]; then
    why=$(grep -h -i -E "error|fatal" "$T/slurmctld.out" "$T/slurmd.out" | grep -v "state file\|Trying backup" | tail -2 | tr '\n' ' ')
    skip "the one-node cluster did not become idle (node state '${state:-none}'): $why"
fi
info "cluster up: node $HOST, $(nproc) CPUs, MpiDefault=$PMIX, Slurm $(sinfo -V | cut -d' ' -f2)"

# ---- tiny models ----------------------------------------------------------------------

cd "$T/work" || exit 1
COMMON="batch_size=16 micro_batch=8 log_every=1000 warmup_steps=2"
"$RLHF" data arith --out data --n 400 --seed 5 2>/dev/null
"$RLHF" pretrain out_dir=pt train_data=data/pretrain.txt n_layer=2 n_embd=32 n_head=2 n_ctx=32 $COMMON \
    max_steps=20 lr=2e-3 >/dev/null 2>&1
"$RLHF" sft init=pt/final.h5 out_dir=sft train_data=data/sft.jsonl $COMMON max_steps=10 >/dev/null 2>&1
"$RLHF" rm init=sft/final.h5 out_dir=rm train_data=data/prefs.jsonl $COMMON max_steps=10 norm_samples=16 >/dev/null 2>&1
[ -e rm/final.h5 ] || { fail "tiny models for the jobs"; summary; exit; }
cat >ppo.conf <<EOF
policy       = sft/final.h5
reward_model = rm/final.h5
prompts      = data/rl_prompts.jsonl
batch_size   = 16
chunk        = 4
minibatch    = 8
micro_batch  = 8
max_new      = 8
ppo_epochs   = 2
lr           = 1e-4
value_lr     = 1e-4
log_samples  = 0
iterations   = 3
EOF
printf 'train_data = data/sft.jsonl\ninit = pt/final.h5\nbatch_size = 16\nmicro_batch = 8\nmax_steps = 8\nlog_every = 100\n' >sft.conf
ln -s "$ROOT/launch" launch       # the batch scripts run from a repository root
mkdir -p bin && ln -s "$RLHF" bin/rlhf

# ---- srun -------------------------------------------------------------------------------

# which --mpi plugins start Debian's Open MPI (facts for the documentation)
for mpi in pmix pmi2 none; do
    if timeout 30 srun --mpi=$mpi -n 2 "$RLHF" sft --config sft.conf out_dir=mpi_$mpi >"mpi_$mpi.log" 2>&1; then
        info "srun --mpi=$mpi: a 2-rank rlhf sft runs"
    else
        why=$(grep -m1 -o "OMPI was not built with SLURM's PMI support" "mpi_$mpi.log" || tail -1 "mpi_$mpi.log")
        info "srun --mpi=$mpi: fails ($why)"
    fi
done

if timeout 60 srun --mpi=pmix -n 2 "$RLHF" sft --config sft.conf out_dir=srun_sft >srun_sft.log 2>&1 &&
   [ -s srun_sft/final.h5 ] && grep -q "sft: 2 ranks" srun_sft.log; then
    pass "srun --mpi=pmix -n 2 rlhf sft (data-parallel trainer) writes final.h5"
else fail "srun --mpi=pmix -n 2 rlhf sft" "$(tail -3 srun_sft.log)"; fi

if timeout 60 srun --mpi=pmix -O -n 4 "$RLHF" ppo --config ppo.conf out_dir=srun_ppo >srun_ppo.log 2>&1 &&
   [ -s srun_ppo/final.h5 ]; then
    pass "srun --mpi=pmix -O -n 4 rlhf ppo (more tasks than CPUs)"
else fail "srun --mpi=pmix -O -n 4 rlhf ppo" "$(tail -3 srun_ppo.log)"; fi

# ---- sbatch -------------------------------------------------------------------------------

# sbatch_wait NAME SBATCH-ARGS...: submits, waits (at most 90 s), prints the job id
sbatch_wait() {
    local id
    id=$(sbatch --parsable "$@") || return 1
    for _ in $(seq 450); do
        case $(squeue -h -j "$id" -o %T 2>/dev/null) in "") break ;; esac
        sleep 0.2
    done
    echo "$id"
}
job_state() { scontrol -o show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }

cat >ppo_runsh.sbatch <<'EOF'
#!/bin/bash
#SBATCH --ntasks=4
#SBATCH --overcommit
#SBATCH --output=ppo_runsh.log
launch/run.sh ppo ppo.conf out_dir=sb_ppo
EOF
if timeout 120 sbatch --wait ppo_runsh.sbatch >/dev/null 2>&1 && [ -s sb_ppo/final.h5 ] &&
   grep -q "^launch/run.sh: srun --mpi=pmix .*-n 4 --overcommit" ppo_runsh.log &&
   grep -q "4 ranks: 1 learner(s), 1 rewarder(s), 2 actor(s)" ppo_runsh.log; then
    pass "sbatch --wait: PPO through launch/run.sh (srun --mpi=pmix -O, 1+1+2 ranks) writes final.h5"
else fail "sbatch --wait: PPO through launch/run.sh" "$(grep -v '^ *[a-z_0-9]* *=' ppo_runsh.log 2>/dev/null | tail -4)"; fi

# the batch scripts themselves, small
id=$(sbatch_wait --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 launch/slurm/sft_multinode.sbatch sft.conf out_dir=sb_sft)
if [ -n "$id" ] && [ -s sb_sft/final.h5 ] && grep -q "srun --mpi=pmix .*-n 2 " "rlhf-sft-$id.out"; then
    pass "launch/slurm/sft_multinode.sbatch (2 ranks) writes final.h5"
else fail "launch/slurm/sft_multinode.sbatch" "$(tail -4 "rlhf-sft-$id.out" 2>/dev/null)"; fi

id=$(sbatch_wait --nodes=1 --ntasks=4 --overcommit launch/slurm/ppo.sbatch ppo.conf out_dir=sb_ppo2)
if [ -n "$id" ] && [ -s sb_ppo2/final.h5 ] && grep -q "2 actor(s)" "rlhf-ppo-$id.out"; then
    pass "launch/slurm/ppo.sbatch (1 learner, 1 rewarder, 2 actors) writes final.h5"
else fail "launch/slurm/ppo.sbatch" "$(grep -v '^ *[a-z_0-9]* *=' "rlhf-ppo-$id.out" 2>/dev/null | tail -4)"; fi

id=$(sbatch_wait --ntasks=4 --overcommit launch/slurm/ppo_mpmd.sbatch ppo.conf out_dir=sb_mpmd)
if [ -n "$id" ] && [ -s sb_mpmd/final.h5 ] && grep -q "roles by rank: 0=learner 1=rewarder 2=actor 3=actor" "rlhf-ppo-mpmd-$id.out" &&
   grep -q "2 OpenBLAS thread(s) per rank" "rlhf-ppo-mpmd-$id.out"; then
    pass "launch/slurm/ppo_mpmd.sbatch (mpirun MPMD in the allocation, learner with 2 threads) writes final.h5"
else fail "launch/slurm/ppo_mpmd.sbatch" "$(grep -v '^ *[a-z_0-9]* *=' "rlhf-ppo-mpmd-$id.out" 2>/dev/null | tail -4)"; fi

# srun --multi-prog with the layout file (its paths point at the demo config:
# use a copy pointing at ours)
sed -e 's#launch/configs/demo/ppo.conf#ppo.conf#' -e 's#out_dir=runs/ppo#out_dir=sb_multi#' \
    launch/slurm/ppo_mpmd.conf >multi.conf
if timeout 60 srun --mpi=pmix -O -n 4 --multi-prog multi.conf >multi.log 2>&1 && [ -s sb_multi/final.h5 ] &&
   grep -q "1 learner(s), 1 rewarder(s), 2 actor(s)" multi.log; then
    pass "srun --multi-prog with launch/slurm/ppo_mpmd.conf (roles from --role, MPI_APPNUM ignored)"
else fail "srun --multi-prog launch/slurm/ppo_mpmd.conf" "$(grep -v '^ *[a-z_0-9]* *=' multi.log | tail -4)"; fi

# ---- preemption: warning signal, checkpoint, requeue, resume --------------------------------

# preempt NAME SCRIPT LOG_PREFIX OUT_DIR: a PPO run long enough to interrupt;
# `scancel --batch --signal=TERM` is exactly what `#SBATCH --signal=B:TERM@120`
# delivers before the time limit. The script must pass the signal on (to the
# job steps, or to mpirun), requeue the job, and the rerun must resume.
preempt() {
    local name=$1 script=$2 prefix=$3 out=$4 id requeued=0 log
    id=$(sbatch --parsable --nodes=1 --ntasks=3 --overcommit "$script" ppo.conf \
        out_dir="$out" iterations=150 ckpt_every=1)
    for _ in $(seq 300); do ls "$out"/ckpt-*.h5 >/dev/null 2>&1 && break; sleep 0.1; done
    scancel --batch --signal=TERM "$id"
    # the first run ends and the job goes back to the queue; skip the ~2 minute
    # delay Slurm puts on a requeued job's start, but not before the first
    # run's slurmstepd processes are gone (a step restarted under the same id
    # while the old one cleans up fails: "stepd.slurm.pmix.ID.0: Address
    # already in use"), and not in the second the job was killed: slurmd
    # refuses a credential no newer than its revocation, to the second ("Job
    # ID already killed, do not launch batch job")
    for _ in $(seq 300); do
        if [ "$(job_state "$id")" = PENDING ]; then requeued=1; break; fi
        sleep 0.1
    done
    for _ in $(seq 300); do pgrep -f "^slurmstepd: \[$id\." >/dev/null || break; sleep 0.1; done
    sleep 2
    [ $requeued = 1 ] && scontrol update JobId="$id" StartTime=now
    for _ in $(seq 900); do [ -z "$(squeue -h -j "$id" 2>/dev/null)" ] && break; sleep 0.2; done
    log="$prefix-$id.out"
    if [ $requeued = 1 ] && grep -q "signal received: checkpoint at iteration" "$log" &&
       grep -q "requeueing job $id" "$log" && grep -q "run 2," "$log" && grep -q "resuming from" "$log" &&
       [ -s "$out/final.h5" ]; then
        pass "preemption, $name: SIGTERM to the batch script -> checkpoint -> requeue -> resume -> final.h5"
    else fail "preemption, $name" "requeued=$requeued; $(grep -E 'requeue|signal|resum|run [0-9]|rror' "$log" 2>/dev/null | tail -6)"; fi
    if /usr/bin/python3 - "$out/metrics.h5" <<'PY' >pre_check.log 2>&1; then
import sys, h5py
it = list(h5py.File(sys.argv[1], "r")["iteration"][()])
assert it == list(range(150)), it
PY
        pass "preemption, $name: the resumed run logged every iteration once"
    else fail "preemption, $name: the resumed run logged every iteration once" "$(tail -2 pre_check.log)"; fi
}
preempt "ppo.sbatch (srun steps)" launch/slurm/ppo.sbatch rlhf-ppo sb_pre
preempt "ppo_mpmd.sbatch (mpirun)" launch/slurm/ppo_mpmd.sbatch rlhf-ppo-mpmd sb_pre_mpmd

summary
