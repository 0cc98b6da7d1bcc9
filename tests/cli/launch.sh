#!/bin/bash
# Tests of launch/run.sh, the launcher wrapper: with --dry-run it must build
# the right command in every case — mpirun as root or not, ranks within or
# beyond the cores (threads per rank, oversubscription, binding), inside a
# Slurm allocation (srun --mpi=pmix, -O when tasks exceed CPUs, ranks that
# fill the allocation), PPO rank arithmetic (learners + rewarders + actors,
# from options, the config file or key=value), trainer --ranks — and refuse
# bad input with one clear line. Then two real tiny runs through it (a
# 2-rank trainer and a 3-rank PPO job) prove the commands work.
# The machine is simulated with RLHF_ASSUME_UID (0 = root) and
# RLHF_ASSUME_CORES (instead of nproc), which run.sh reads for this purpose.
# Prints "ok   launch: NAME" / "FAIL launch: NAME".
set -u
SUITE=launch
. "$(dirname "$0")/../lib.sh"
scratch launch
RUN=$ROOT/launch/run.sh
# a clean slate: no allocation, no launcher overrides from the caller
for v in $(compgen -e | grep -E '^(SLURM_|SRUN_|RLHF_LAUNCH|RLHF_ASSUME)'); do unset "$v"; done
export RLHF_BIN=$RLHF OPENBLAS_NUM_THREADS=1

cd "$T" || exit 1
printf '# a trainer config\nlr = 1e-4\n' >c.conf
printf 'learners  = 2   # data-parallel learners\nrewarders = 3\n' >p.conf
printf 'rewarders = 1\nlearners = 0\n' >bad.conf

# expect_cmd NAME EXPECTED ARGS...: `run.sh --dry-run ARGS` prints exactly EXPECTED, nothing on stderr
# (the environment for the case goes in front: expect_cmd is run through env)
expect_cmd() {
    local n=$1 want=$2 got
    shift 2
    got=$(env "$@" --dry-run 2>"$T/err")
    if [ "$got" = "$want" ] && [ ! -s "$T/err" ]; then pass "$n"
    else fail "$n" "want: $want"$'\n'"got:  $got $(cat "$T/err")"; fi
}
# expect_refusal NAME PATTERN ARGS...: run.sh exits 2, its only output one
# stderr line "launch/run.sh: error: ...PATTERN" (run through env, with
# --dry-run appended, unless DRY= is set empty for the call)
expect_refusal() {
    local n=$1 pat=$2
    shift 2
    ERR_PREFIX="launch/run.sh: error: " ERR_ALONE=1 ERR_STATUS=2 expect_err "$n" "$pat" env "$@" ${DRY---dry-run}
}
USER1="RLHF_ASSUME_UID=1000"
ROOTU="RLHF_ASSUME_UID=0"

# ---- mpirun on one machine -------------------------------------------------------

expect_cmd "trainer, 1 rank on 4 cores: 4 threads, no pinning, no root flag" \
    "mpirun --bind-to none -n 1 -x OPENBLAS_NUM_THREADS=4 $RLHF sft --config c.conf" \
    $USER1 RLHF_ASSUME_CORES=4 "$RUN" sft c.conf
expect_cmd "root adds --allow-run-as-root" \
    "mpirun --allow-run-as-root --bind-to none -n 1 -x OPENBLAS_NUM_THREADS=4 $RLHF sft --config c.conf" \
    $ROOTU RLHF_ASSUME_CORES=4 "$RUN" sft c.conf
expect_cmd "trainer --ranks 2 on 5 cores: 2 threads each (cores / ranks, rounded down)" \
    "mpirun --bind-to none -n 2 -x OPENBLAS_NUM_THREADS=2 $RLHF dpo --config c.conf beta=0.2" \
    $USER1 RLHF_ASSUME_CORES=5 "$RUN" dpo --ranks 2 c.conf beta=0.2
expect_cmd "ranks = cores: 1 thread, no oversubscription" \
    "mpirun -n 4 -x OPENBLAS_NUM_THREADS=1 $RLHF pretrain --config c.conf" \
    $USER1 RLHF_ASSUME_CORES=4 "$RUN" pretrain --ranks 4 c.conf
expect_cmd "ranks > cores: --oversubscribe, 1 thread" \
    "mpirun --allow-run-as-root --oversubscribe -n 3 -x OPENBLAS_NUM_THREADS=1 $RLHF rm --config c.conf" \
    $ROOTU RLHF_ASSUME_CORES=2 "$RUN" rm --ranks=3 c.conf
expect_cmd "ppo defaults: 1 learner + 1 rewarder + 1 actor = 3 ranks, 8 cores: 2 threads" \
    "mpirun --bind-to none -n 3 -x OPENBLAS_NUM_THREADS=2 $RLHF ppo --config c.conf learners=1 rewarders=1" \
    $USER1 RLHF_ASSUME_CORES=8 "$RUN" ppo c.conf
expect_cmd "ppo --learners 2 --rewarders 2 --actors 5 = 9 ranks on 4 cores" \
    "mpirun --oversubscribe -n 9 -x OPENBLAS_NUM_THREADS=1 $RLHF ppo --config c.conf iterations=5 learners=2 rewarders=2" \
    $USER1 RLHF_ASSUME_CORES=4 "$RUN" ppo --learners 2 --rewarders 2 --actors 5 c.conf iterations=5
expect_cmd "ppo reads learners/rewarders from the config file (2 + 3 + 2 actors)" \
    "mpirun -n 7 -x OPENBLAS_NUM_THREADS=1 $RLHF ppo --config p.conf learners=2 rewarders=3" \
    $USER1 RLHF_ASSUME_CORES=8 "$RUN" ppo --actors 2 p.conf
expect_cmd "ppo key=value learners= overrides the file and counts like --learners" \
    "mpirun -n 5 -x OPENBLAS_NUM_THREADS=1 $RLHF ppo --config p.conf lr=1e-5 learners=1 rewarders=3" \
    $USER1 RLHF_ASSUME_CORES=8 "$RUN" ppo p.conf learners=1 lr=1e-5
expect_cmd "options after CONFIG; RLHF_LAUNCH_ARGS go before the program" \
    "mpirun -n 2 -x OPENBLAS_NUM_THREADS=1 --hostfile hosts $RLHF sft --config c.conf" \
    $USER1 RLHF_ASSUME_CORES=2 "RLHF_LAUNCH_ARGS=--hostfile hosts" "$RUN" sft c.conf --ranks 2

# the printed command is shell input: a value with spaces and $ survives a round trip
line=$(env $USER1 RLHF_ASSUME_CORES=2 "$RUN" sft c.conf 'note=two words $HOME' --dry-run 2>&1)
eval "set -- $line"
if [ "${!#}" = 'note=two words $HOME' ]; then pass "printed command quotes what needs quoting"
else fail "printed command quotes what needs quoting" "$line"; fi

# ---- inside a Slurm allocation -------------------------------------------------------

SL="SLURM_JOB_ID=42 SLURM_JOB_NUM_NODES=2"
expect_cmd "Slurm: ppo fills the allocation: 8 tasks = 1 + 1 + 6 actors, srun --mpi=pmix" \
    "srun --mpi=pmix --kill-on-bad-exit=1 -n 8 --export=ALL,OPENBLAS_NUM_THREADS=1 $RLHF ppo --config c.conf learners=1 rewarders=1" \
    $SL SLURM_NTASKS=8 "SLURM_JOB_CPUS_PER_NODE=4(x2)" "$RUN" ppo c.conf
expect_cmd "Slurm: tasks beyond the allocation's CPUs get --overcommit" \
    "srun --mpi=pmix --kill-on-bad-exit=1 -n 12 --overcommit --export=ALL,OPENBLAS_NUM_THREADS=1 $RLHF ppo --config p.conf learners=2 rewarders=3" \
    $SL SLURM_NTASKS=8 "SLURM_JOB_CPUS_PER_NODE=4,3" "$RUN" ppo --actors 7 p.conf
expect_cmd "Slurm: trainer ranks = SLURM_NTASKS; --cpus-per-task restated, threads from it" \
    "srun --mpi=pmix --kill-on-bad-exit=1 -n 4 --cpus-per-task=4 --export=ALL,OPENBLAS_NUM_THREADS=4 $RLHF sft --config c.conf" \
    $SL SLURM_NTASKS=4 SLURM_CPUS_PER_TASK=4 "SLURM_JOB_CPUS_PER_NODE=8(x2)" "$RUN" sft c.conf
expect_cmd "Slurm: --ranks wins over SLURM_NTASKS; root makes no difference to srun" \
    "srun --mpi=pmix --kill-on-bad-exit=1 -n 2 --export=ALL,OPENBLAS_NUM_THREADS=1 $RLHF sft --config c.conf" \
    $SL $ROOTU SLURM_NTASKS=4 "SLURM_JOB_CPUS_PER_NODE=2(x2)" "$RUN" sft --ranks 2 c.conf
expect_cmd "Slurm without SLURM_JOB_CPUS_PER_NODE: CPUs = SLURM_CPUS_ON_NODE x nodes" \
    "srun --mpi=pmix --kill-on-bad-exit=1 -n 5 --overcommit --export=ALL,OPENBLAS_NUM_THREADS=1 $RLHF ppo --config c.conf learners=1 rewarders=1" \
    $SL SLURM_NTASKS=4 SLURM_CPUS_ON_NODE=2 "$RUN" ppo --actors 3 c.conf
expect_cmd "Slurm with RLHF_LAUNCHER=mpirun: slots from SLURM_NTASKS" \
    "mpirun --allow-run-as-root --oversubscribe -n 6 -x OPENBLAS_NUM_THREADS=1 $RLHF ppo --config c.conf learners=1 rewarders=1" \
    $SL $ROOTU SLURM_NTASKS=4 RLHF_LAUNCHER=mpirun "$RUN" ppo --actors 4 c.conf

# ---- refusals ------------------------------------------------------------------------------

expect_refusal "unknown stage" "unknown stage 'train' (expected one of: pretrain, sft, rm, dpo, ppo)" "$RUN" train c.conf
expect_refusal "missing config file" "config file 'none.conf' not found" "$RUN" sft none.conf
expect_refusal "no config given" "missing CONFIG" "$RUN" ppo --actors 2
expect_refusal "zero actors" "--actors must be at least 1, got 0" "$RUN" ppo --actors 0 c.conf
expect_refusal "non-numeric rank count" "--ranks expects a whole number, got 'two'" "$RUN" sft --ranks two c.conf
expect_refusal "learners=0 in the config file names file and line" "bad.conf:2: learners must be a whole number >= 1, got '0'" \
    "$RUN" ppo bad.conf
expect_refusal "--ranks with ppo" "ppo takes --learners/--rewarders/--actors, not --ranks" "$RUN" ppo --ranks 4 c.conf
expect_refusal "--actors with a trainer" "for ppo; sft takes --ranks N" "$RUN" sft --actors 2 c.conf
expect_refusal "a stray word after CONFIG" "unexpected argument 'lr' (overrides are key=value)" "$RUN" sft c.conf lr
expect_refusal "an override before CONFIG" "the config file must come before key=value overrides" "$RUN" sft lr=1 c.conf
expect_refusal "unknown option" "unknown option '--nodes'" "$RUN" sft --nodes 2 c.conf
DRY='' expect_refusal "option without its value" "--actors needs a value" "$RUN" ppo c.conf --actors
expect_refusal "Slurm allocation too small for an actor" "allocation's 2 tasks leave no actor" \
    SLURM_JOB_ID=1 SLURM_NTASKS=2 "$RUN" ppo c.conf
expect_refusal "srun outside Slurm" "RLHF_LAUNCHER=srun needs a Slurm allocation" RLHF_LAUNCHER=srun "$RUN" sft c.conf
DRY='' expect_refusal "binary missing (real run)" "/nonexistent/rlhf not found or not executable" \
    RLHF_BIN=/nonexistent/rlhf "$RUN" sft c.conf
if "$RUN" --help | grep -q "^usage: launch/run.sh STAGE"; then pass "--help"; else fail "--help"; fi

# ---- real runs through run.sh ------------------------------------------------------------------

D=data
COMMON="batch_size=16 micro_batch=8 log_every=1000 warmup_steps=2"
"$RLHF" data arith --out $D --n 400 --seed 5 2>/dev/null
printf 'train_data = %s/pretrain.txt\nn_layer = 2\nn_embd = 32\nn_head = 2\nn_ctx = 32\nmax_steps = 20\nlr = 2e-3\n' $D >pt.conf
# the cores seen are the real ones (2 on the test machine): ranks = cores -> 1 thread each
"$RUN" pretrain --ranks 2 pt.conf out_dir=pt $COMMON >pt.log 2>&1
rc=$?
if [ $rc = 0 ] && [ -s pt/final.h5 ] && grep -q "^launch/run.sh: mpirun .*-n 2 " pt.log && grep -q "pretrain: 2 ranks" pt.log; then
    pass "real run: pretrain on 2 ranks through run.sh writes final.h5"
else fail "real run: pretrain on 2 ranks" "exit $rc: $(grep -v '^ *[a-z_0-9]* *=' pt.log | tail -4)"; fi

"$RLHF" sft init=pt/final.h5 out_dir=sft train_data=$D/sft.jsonl $COMMON max_steps=10 >/dev/null 2>&1
"$RLHF" rm init=sft/final.h5 out_dir=rm train_data=$D/prefs.jsonl $COMMON max_steps=10 norm_samples=16 >/dev/null 2>&1
cat >ppo.conf <<EOF
policy = sft/final.h5
reward_model = rm/final.h5
prompts = $D/rl_prompts.jsonl
batch_size = 16
chunk = 4
minibatch = 8
micro_batch = 8
max_new = 8
ppo_epochs = 2
log_samples = 0
EOF
"$RUN" ppo ppo.conf out_dir=ppo iterations=2 >ppo.log 2>&1
rc=$?
if [ $rc = 0 ] && [ -s ppo/final.h5 ] && grep -q "^launch/run.sh: mpirun .*-n 3 .*learners=1 rewarders=1$" ppo.log &&
   grep -q "3 ranks: 1 learner(s), 1 rewarder(s), 1 actor(s); 1 OpenBLAS thread" ppo.log; then
    pass "real run: ppo on 3 ranks (1 learner, 1 rewarder, 1 actor) through run.sh writes final.h5"
else fail "real run: ppo on 3 ranks" "exit $rc: $(grep -v '^ *[a-z_0-9]* *=' ppo.log | tail -4)"; fi

# bad input reaches rlhf, which fails on every rank: its message and status come back
timeout 60 "$RUN" ppo ppo.conf out_dir=x iterations=1 prompts=nothere.jsonl >bad.log 2>&1
rc=$?
if [ $rc != 0 ] && [ $rc != 124 ] && grep -q "^rlhf: error: .*nothere.jsonl" bad.log; then
    pass "real run: rlhf's error and exit status come through run.sh"
else fail "real run: rlhf's error and exit status come through run.sh" "exit $rc: $(tail -3 bad.log)"; fi
