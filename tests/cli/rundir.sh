#!/bin/bash
# Who owns a run directory (issue 14, items 3, 4, 5, 16): one run at a time
# (out_dir/.lock, released by the kernel when a run dies, even by kill -9);
# the settings record (out_dir/settings.cfg) refuses a run with other
# settings whatever files the directory holds, unless overwrite=1 (or
# --overwrite, or --force); resume
# compares the whole model configuration, not the parameter count; PPO warns
# when resumed on another learner count, as the trainers do for ranks. Every
# refusal: one error line naming the file/field, non-zero exit, and the
# directory byte-identical afterwards.
set -u
SUITE=rundir
. "$(dirname "$0")/../lib.sh"
scratch rundir
use_mpirun
cd "$T"
D=data
COMMON="batch_size=16 micro_batch=8 log_every=1000 warmup_steps=2"
SMALL="n_layer=1 n_embd=16 n_head=2 n_ctx=32"
HOST=$(hostname)
"$RLHF" data arith --out $D --n 400 --seed 5 2>/dev/null
# digest DIR: one line per file (name and sha256), for byte-identical checks
digest() { (cd "$1" && find . -type f ! -name .lock | LC_ALL=C sort | xargs sha256sum); }
# rows LOG: the number of rows of a metrics or rollout log
rows() { $PY -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); print(f[sys.argv[2]].shape[0])" "$1" "$2"; }

# ---- item 3: one run at a time ------------------------------------------------
# a run long enough to be caught in the middle (a few seconds)
LONG="out_dir=busy train_data=$D/pretrain.txt n_layer=2 n_embd=64 n_head=4 n_ctx=48 $COMMON epochs=20 ckpt_every=50"
bg busy.log "$RLHF" pretrain $LONG
first=$PID
wait_file busy/metrics.h5
expect_err "a second run into a busy out_dir is refused, naming the holder's pid and host" \
    "busy: in use by another run (pid $first on $HOST" "$RLHF" pretrain $LONG
expect_err "the same under mpirun -n 2: every rank exits" \
    "in use by another run (pid $first on $HOST" $MPIRUN -n 2 "$RLHF" pretrain $LONG
# (init is outside busy: one of busy's checkpoints as init is refused as an input the run would overwrite;
# the lock is taken before init is read, so it need not exist)
expect_err "another stage into the busy out_dir is refused too" \
    "busy: in use by another run" "$RLHF" sft init=elsewhere.h5 out_dir=busy train_data=$D/sft.jsonl $COMMON
fin busy.log
steps=$(grep -o 'steps of 16' busy.log >/dev/null && sed -n 's/.* \([0-9]*\) steps of 16.*/\1/p' busy.log | head -1)
if [ "$RC" = 0 ] && [ -e busy/final.h5 ] && [ "$(rows busy/metrics.h5 step)" = "$steps" ] &&
    ! grep -q "error" busy.log; then
    pass "the first run finishes normally, its metrics.h5 whole ($steps rows)"
else
    fail "the first run finishes normally, its metrics.h5 whole" "exit $RC, $(tail -3 busy.log)"
fi

# kill -9: the kernel releases the lock; the next run takes the directory over
bg dead.log "$RLHF" pretrain ${LONG/out_dir=busy/out_dir=dead}
wait_file dead/metrics.h5
dead=$PID
kill -9 $dead
fin dead.log
[ "$(cut -d' ' -f1 dead/.lock)" = "$dead" ] && pass "kill -9 leaves the lock file behind, naming the dead run" ||
    fail "kill -9 leaves the lock file behind, naming the dead run" "$(cat dead/.lock)"
expect_ok "a run after kill -9 takes the lock over (the kernel released it)" \
    "$RLHF" pretrain ${LONG/out_dir=busy/out_dir=dead} log_every=100
[ "$(cut -d' ' -f1 dead/.lock)" != "$dead" ] && [ -e dead/final.h5 ] &&
    pass "the new run finished and wrote its own pid into the lock" ||
    fail "the new run finished and wrote its own pid into the lock" "$(cat dead/.lock)"

# ---- item 4: the settings record ------------------------------------------------
RUN="out_dir=fin train_data=$D/pretrain.txt $SMALL $COMMON max_steps=10"
expect_ok "a finished run" "$RLHF" pretrain $RUN
rm -f fin/ckpt-*.h5 # only final.h5 and the logs are left
before=$(digest fin)
expect_err "only final.h5 left: a rerun with another lr is refused, naming lr" \
    "fin/settings.cfg: written with a different configuration: lr (0.001 vs 0.0003)" "$RLHF" pretrain $RUN lr=1e-3
[ "$(digest fin)" = "$before" ] && pass "the refused run left every file byte-identical" ||
    fail "the refused run left every file byte-identical"
rm -f fin/final.h5 # only the logs
expect_err "only logs left: refused the same way" "written with a different configuration: lr" \
    "$RLHF" pretrain $RUN lr=1e-3
expect_err "another stage into the directory is refused, naming the stage" "fin holds a pretrain run, not a sft run" \
    "$RLHF" sft init=busy/final.h5 out_dir=fin train_data=$D/sft.jsonl $COMMON
expect_ok "log_every and ckpt_every may change between runs" "$RLHF" pretrain $RUN log_every=3 ckpt_every=7
before=$(digest fin)
expect_ok "overwrite=1 replaces the finished run deliberately" "$RLHF" pretrain $RUN lr=1e-3 overwrite=1
if [ "$(digest fin)" != "$before" ] && grep -q "lr  *= 0.001" fin/settings.cfg &&
    [ "$(rows fin/metrics.h5 step)" = 10 ]; then
    pass "overwrite=1: new final.h5, new record, metrics.h5 restarted (10 rows)"
else fail "overwrite=1: new final.h5, new record, metrics.h5 restarted (10 rows)" "$(head -3 fin/settings.cfg)"; fi
expect_ok "--overwrite (a bool flag) works the same" "$RLHF" pretrain $RUN lr=2e-3 --overwrite
# the issue's spelling, as for init and import-hf: --force is overwrite=1
expect_ok "--force works the same" "$RLHF" pretrain $RUN lr=3e-3 --force
grep -q "lr  *= 0.003" fin/settings.cfg && grep -q "overwrite = true: replacing the earlier run in fin" "$T/err" &&
    pass "--force: the run replaced, the new lr recorded" || fail "--force: the run replaced, the new lr recorded" "$(grep lr fin/settings.cfg)"
expect_err "--force=false refuses like the default" "written with a different configuration: lr" \
    "$RLHF" pretrain $RUN lr=4e-3 --force=false
"$RLHF" pretrain --help | grep -q "^  overwrite=BOOL .*--force is the same" && pass "pretrain --help names --force" ||
    fail "pretrain --help names --force"

# ---- item 5: resume compares the whole model configuration -----------------------
"$RLHF" pretrain out_dir=h2 train_data=$D/pretrain.txt n_layer=1 n_embd=32 n_head=2 n_ctx=32 $COMMON max_steps=2 >/dev/null 2>&1
"$RLHF" pretrain out_dir=h4 train_data=$D/pretrain.txt n_layer=1 n_embd=32 n_head=4 n_ctx=32 $COMMON max_steps=2 >/dev/null 2>&1
cp h2/final.h5 init.h5
SFT="init=init.h5 out_dir=s train_data=$D/sft.jsonl $COMMON max_steps=6 ckpt_every=3"
"$RLHF" sft $SFT >/dev/null 2>&1
rm -f s/final.h5 # as if interrupted after its checkpoints
cp h4/final.h5 init.h5 # the same parameter count, 4 heads instead of 2
before=$(digest s)
expect_err "resuming a 2-head checkpoint as 4 heads is refused, naming n_head" \
    "s/ckpt-00000006.h5: the model: n_head is 2 in the checkpoint, 4 in this run" "$RLHF" sft $SFT
[ "$(digest s)" = "$before" ] && pass "the refused resume left every file byte-identical" ||
    fail "the refused resume left every file byte-identical"

# ---- PPO: the lock, the record, the learner count ---------------------------------
tiny_models "n_layer=1 n_embd=16 n_head=2 n_ctx=32" || fail "tiny models for PPO"
PPO="policy=sft/final.h5 reward_model=rm/final.h5 prompts=$D/rl_prompts.jsonl batch_size=16 chunk=4 minibatch=8"
PPO="$PPO micro_batch=8 max_new=8 ppo_epochs=1 lr=1e-4 value_lr=1e-4 log_samples=0"
bg ppobusy.log $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=pb iterations=1000000
wrap=$PID
wait_file pb/metrics.h5
holder=$(cut -d' ' -f1 pb/.lock)
expect_err "PPO: a second job into a busy out_dir is refused on every rank, naming pid and host" \
    "pb: in use by another run (pid $holder on $HOST" $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=pb iterations=200
ranks=$(tree_pids $wrap)
kill -TERM $wrap 2>/dev/null
fin ppobusy.log
wait_gone $ranks
grep -q "signal received: checkpoint" ppobusy.log && pass "PPO: the first job was unaffected (checkpoints on SIGTERM)" ||
    fail "PPO: the first job was unaffected (checkpoints on SIGTERM)" "$(tail -3 ppobusy.log)"

expect_ok "PPO on 1 learner" $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=pl iterations=2 ckpt_every=1
rm -f pl/final.h5 pl/value.h5
expect_ok "PPO resumed on 2 learners" $MPIRUN -n 4 "$RLHF" ppo $PPO out_dir=pl iterations=2 ckpt_every=1 learners=2
grep -q "ppo: warning: resuming a 1-learner run on 2 learners: results will not be bit-identical" "$T/err" &&
    pass "PPO warns when resumed on another learner count (as the trainers do for ranks)" ||
    fail "PPO warns when resumed on another learner count (as the trainers do for ranks)" "$(grep -v = "$T/err" | head -3)"
rm -f pl/ckpt-*.h5
before=$(digest pl)
expect_err "PPO: only final.h5 left, a rerun with another lr is refused" \
    "pl/settings.cfg: written with a different configuration: lr (0.0002 vs 0.0001)" \
    $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=pl iterations=2 lr=2e-4
[ "$(digest pl)" = "$before" ] && pass "PPO: the refused run left every file byte-identical" ||
    fail "PPO: the refused run left every file byte-identical"
expect_ok "PPO: overwrite=1 replaces it" $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=pl iterations=1 lr=2e-4 overwrite=1
expect_ok "PPO: --force replaces it the same way" $MPIRUN -n 3 "$RLHF" ppo $PPO out_dir=pl iterations=1 lr=3e-4 --force
grep -q "lr  *= 0.0003" pl/settings.cfg && grep -q "overwrite = true: replacing the earlier run in pl" "$T/err" &&
    pass "PPO --force: the run replaced, the new lr recorded" ||
    fail "PPO --force: the run replaced, the new lr recorded" "$(grep "^lr" pl/settings.cfg)"
"$RLHF" ppo --help | grep -q "^  overwrite=BOOL .*--force is the same" && pass "ppo --help names --force" ||
    fail "ppo --help names --force"
expect_err "a trainer into a PPO out_dir: 'holds a ppo run'" "pl holds a ppo run, not a pretrain run" \
    "$RLHF" pretrain out_dir=pl train_data=$D/pretrain.txt $SMALL $COMMON

exit $((NFAIL > 0))
