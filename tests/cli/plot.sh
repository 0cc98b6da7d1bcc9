#!/bin/bash
# End-to-end tests of `rlhf plot`: a tiny pipeline run (pretrain, SFT, RM,
# DPO, 4-rank PPO; seconds) in a directory whose name has a space, then the
# plots: every expected PNG is a valid, drawn PNG of the asked size; every
# file written is listed; the .dat tables hold exactly the HDF5 logs' values
# (h5py) and trailing means recomputed here; scripts re-plot; missing
# stages, curves and values are skipped with notes; bad input (no run dir,
# a file that is not an rlhf log, a log of the wrong kind, gnuplot missing
# or failing) fails with one "rlhf: error:" line naming the path.
# Prints "ok   plot: NAME" / "FAIL plot: NAME".
set -u
SUITE=plot
. "$(dirname "$0")/../lib.sh"
scratch plot
use_mpirun
export OPENBLAS_NUM_THREADS=1

if ! "$RLHF" plot --help >"$T/out" 2>&1; then
    fail "rlhf has a plot subcommand" "$(head -2 "$T/out")"
    exit 0
fi
grep -q "^usage: rlhf plot" "$T/out" && grep -q "gnuplot-nox" "$T/out" && pass "--help" || fail "--help" "$(head -2 "$T/out")"
command -v gnuplot >/dev/null && pass "gnuplot installed" || fail "gnuplot installed" "apt-get install gnuplot-nox"

# --- a tiny pipeline run ---------------------------------------------------------
R="$T/run dir"
mkdir -p "$R" && cd "$R"
D=data
COMMON="batch_size=16 micro_batch=8 log_every=1000 warmup_steps=2 eval_every=5"
MODEL="n_layer=1 n_embd=32 n_head=2 n_ctx=32"
{
    "$RLHF" data arith --out $D --n 200 --seed 5 &&
    head -c 20000 $D/pretrain.txt >$D/pretrain_valid.txt &&
    "$RLHF" pretrain out_dir=pretrain train_data=$D/pretrain.txt valid_data=$D/pretrain_valid.txt $MODEL $COMMON \
        epochs=2 max_steps=45 lr=2e-3 &&
    "$RLHF" sft init=pretrain/final.h5 out_dir=sft train_data=$D/sft.jsonl valid_data=$D/sft_valid.jsonl $COMMON \
        max_steps=10 lr=1e-3 &&
    "$RLHF" rm init=sft/final.h5 out_dir=rm train_data=$D/prefs.jsonl valid_data=$D/prefs_valid.jsonl $COMMON \
        max_steps=10 norm_samples=16 &&
    "$RLHF" dpo init=sft/final.h5 out_dir=dpo train_data=$D/prefs.jsonl valid_data=$D/prefs_valid.jsonl $COMMON \
        max_steps=10 lr=1e-4 &&
    $MPIRUN -n 4 "$RLHF" ppo policy=sft/final.h5 reward_model=rm/final.h5 prompts=$D/rl_prompts.jsonl \
        batch_size=16 chunk=4 minibatch=8 micro_batch=8 max_new=8 ppo_epochs=1 lr=1e-4 value_lr=1e-4 \
        log_samples=0 out_dir=ppo iterations=4 &&
    $MPIRUN -n 3 "$RLHF" ppo policy=sft/final.h5 reward_model=rm/final.h5 prompts=$D/rl_prompts.jsonl \
        advantage=grpo group_size=4 batch_size=16 chunk=4 minibatch=8 micro_batch=8 max_new=8 ppo_epochs=1 \
        lr=1e-4 log_samples=0 out_dir=grpo iterations=4
} >"$T/pipeline.log" 2>&1 && pass "tiny pipeline run" || fail "tiny pipeline run" "$(tail -3 "$T/pipeline.log")"
cd "$T"

PPO_PLOTS="ppo_reward ppo_kl ppo_gold ppo_entropy ppo_length ppo_time ppo_overoptimisation"
GRPO_PLOTS="grpo_reward grpo_gold grpo_groups grpo_kl"
ALL_PLOTS="$PPO_PLOTS $GRPO_PLOTS loss_pretrain loss_sft loss_rm loss_dpo rm_accuracy dpo_accuracy dpo_rewards"
SOURCES="pretrain_train pretrain_eval sft_train sft_eval rm_train rm_eval dpo_train dpo_eval ppo_metrics grpo_metrics"

# pngs_ok DIR WIDTH HEIGHT NAME...: each DIR/NAME.png is a valid PNG of that
# size (signature, IHDR first with a good CRC, IEND last, > 1 KB) with a
# drawing in it (many distinct bytes in the decompressed pixels)
pngs_ok() {
    $PY - "$@" <<'PY'
import os, struct, sys, zlib
d, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for name in sys.argv[4:]:
    p = os.path.join(d, name + ".png")
    b = open(p, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", (p, "no PNG signature")
    n, typ = struct.unpack(">I4s", b[8:16])
    assert typ == b"IHDR" and n == 13, (p, "first chunk", typ, n)
    assert struct.unpack(">I", b[29:33])[0] == zlib.crc32(b[12:29]), (p, "IHDR CRC")
    W, H = struct.unpack(">II", b[16:24])
    assert (W, H) == (w, h), (p, "size", W, H)
    assert b[-8:-4] == b"IEND", (p, "no IEND at the end")
    assert len(b) > 1024, (p, len(b), "bytes")
    idat, i = b"", 8
    while i < len(b):
        n, typ = struct.unpack(">I4s", b[i:i + 8])
        if typ == b"IDAT": idat += b[i + 8:i + 8 + n]
        i += 12 + n
    px = zlib.decompress(idat)
    assert len(set(px)) > 16, (p, "looks blank:", len(set(px)), "distinct bytes")
PY
}

# --- plots of the whole run ------------------------------------------------------
O="$T/out plots"
if "$RLHF" plot "$R" --out "$O" --width 640 --height 400 >"$T/list" 2>"$T/notes"; then pass "plot a pipeline run"
else fail "plot a pipeline run" "$(tail -3 "$T/notes")"; fi
check "every expected PNG is valid, 640x400, drawn" pngs_ok "$O" 640 400 $ALL_PLOTS
check "nothing skipped in a full run" sh -c "! grep -q 'skipped [a-z_]*.png\\|without' '$T/notes' && grep -q '18 plots' '$T/notes'"
check "stdout lists exactly the files written (.dat, .gp, .png)" $PY - "$O" "$T/list" $SOURCES -- $ALL_PLOTS <<'PY'
import os, sys
d, listing = sys.argv[1], sys.argv[2]
k = sys.argv.index("--")
want = {s + ".dat" for s in sys.argv[3:k]} | {p + e for p in sys.argv[k + 1:] for e in (".gp", ".png")}
listed = [l.rstrip("\n") for l in open(listing)]
assert all(os.path.dirname(l) == d for l in listed), listed[:3]
names = [os.path.basename(l) for l in listed]
assert len(names) == len(set(names)) and set(names) == want, set(names) ^ want
assert set(os.listdir(d)) == want, set(os.listdir(d)) ^ want
PY
check ".dat tables hold the logs' values and trailing means" $PY - "$R" "$O" <<'PY'
import math, os, sys
import h5py, numpy as np
run, out = sys.argv[1], sys.argv[2]
def read_dat(p):
    lines = [l.split() for l in open(p) if not l.startswith("#")]
    return lines[0], np.array([[float(v) for v in r] for r in lines[1:]])
def trailing_mean(v, w):
    out = []
    for i in range(len(v)):
        win = [x for x in v[max(0, i - w + 1):i + 1] if math.isfinite(x)]
        out.append(sum(win) / len(win) if win else float("nan"))
    return np.array(out)
checked = 0
for stage in ["pretrain", "sft", "rm", "dpo", "ppo"]:
    for log, name in [("metrics.h5", "train"), ("eval.h5", "eval")]:
        src = os.path.join(run, stage, log)
        if stage == "ppo":
            if log == "eval.h5": continue
            name = "metrics"
        f = h5py.File(src, "r")
        head, rows = read_dat(os.path.join(out, f"{stage}_{name}.dat"))
        cols = [k for k in f.keys() if f[k].ndim == 1]
        n = f[cols[0]].shape[0]
        assert rows.shape[0] == n, (src, rows.shape, n)
        for c in cols:
            ref = f[c][()].astype(float)
            got = rows[:, head.index(c)]
            assert np.allclose(got, ref, rtol=1e-9, atol=0, equal_nan=True), (src, c, got[:4], ref[:4])
            checked += 1
        if name == "train":
            w = max(1, min(200, n // 20))
            for c in ["loss", "grad_norm"] + [k for k in cols if k not in
                      ("step", "loss", "lr", "grad_norm", "tokens", "elapsed")]:
                got = rows[:, head.index(c + "_avg")]
                assert np.allclose(got, trailing_mean(f[c][()], w), rtol=1e-9, equal_nan=True), (src, c, w)
                checked += 1
            assert not any(h in head for h in ("step_avg", "lr_avg", "tokens_avg", "elapsed_avg")), head
print(checked, "columns")
PY
check "pretrain means span more than one step (45 rows, window 2)" grep -q "mean of the last 2 rows" "$O/pretrain_train.dat"
check "over-optimisation plot: one point per PPO iteration, coloured by iteration" sh -c \
    "[ \$(grep -vc '^#' '$O/ppo_metrics.dat') -eq 5 ] && grep -q 'using \"kl\":\"gold\":\"iteration\"' '$O/ppo_overoptimisation.gp'"
check "scripts draw the right columns" sh -c "grep -q '\"ppo_metrics.dat\" using \"iteration\":\"r_theta\"' '$O/ppo_reward.gp' &&
    grep -q '\"rm_eval.dat\" using \"step\":\"accuracy\"' '$O/rm_accuracy.gp' &&
    grep -q '\"lambda\" axes x1y2' '$O/ppo_kl.gp' && grep -q '\"t_wait\"' '$O/ppo_time.gp'"
rm -f "$O/ppo_overoptimisation.png"
check "a .gp script re-plots in its directory" sh -c "cd '$O' && gnuplot ppo_overoptimisation.gp"
check "the re-plotted PNG is valid" pngs_ok "$O" 640 400 ppo_overoptimisation

# --- partial runs: missing stages, curves and values are skipped with notes ----------
mkdir -p "$T/only ppo" && cp -r "$R/ppo" "$T/only ppo/"
if "$RLHF" plot "$T/only ppo" >"$T/list" 2>"$T/notes" && pngs_ok "$T/only ppo/plots" 800 500 $PPO_PLOTS &&
   [ "$(grep -c '\.png$' "$T/list")" -eq 7 ] && grep -q "skipped loss_sft.png: .*only ppo/sft/metrics.h5 not found" "$T/notes"
then pass "PPO stage only: PPO plots, the rest skipped with notes, default --out RUN_DIR/plots"
else fail "PPO stage only" "$(head -3 "$T/notes")"; fi
if "$RLHF" plot "$R/ppo" --out "$T/p2" >"$T/list" 2>"$T/notes" && pngs_ok "$T/p2" 800 500 $PPO_PLOTS
then pass "a PPO out_dir on its own"; else fail "a PPO out_dir on its own" "$(head -3 "$T/notes")"; fi

mkdir -p "$T/edited" && cp -r "$R/rm" "$R/ppo" "$T/edited/"
$PY - "$T/edited" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(d + "/ppo/metrics.h5", "r+") as f:   # no gold judge: gold and correct all NaN
    f["gold"][:] = np.nan; f["correct"][:] = np.nan
with h5py.File(d + "/rm/eval.h5", "r+") as f:       # validation not reached yet
    for k in f: f[k].resize((0,) + f[k].shape[1:])
PY
if "$RLHF" plot "$T/edited" --out "$T/e" >"$T/list" 2>"$T/notes" &&
   grep -q "skipped ppo_gold.png: .*column 'gold' has no values" "$T/notes" &&
   grep -q "ppo_overoptimisation.png without \"gold score (filled)\"" "$T/notes" &&
   grep -q "rm_accuracy.png without \"held-out\": .*rm/eval.h5 has no rows yet" "$T/notes" &&
   pngs_ok "$T/e" 800 500 ppo_overoptimisation rm_accuracy loss_rm ppo_reward && [ ! -e "$T/e/ppo_gold.png" ]
then pass "all-NaN columns and empty logs: curves skipped with notes"
else fail "all-NaN columns and empty logs" "$(grep -v '^rlhf plot: skipped loss\|dpo' "$T/notes" | head -4)"; fi

# --- errors ---------------------------------------------------------------------
expect_err "missing run dir" "$T/nothere: no such run directory" "$RLHF" plot "$T/nothere" --out "$T/x"
expect_err "run dir is a file" "pipeline.log: not a directory" "$RLHF" plot "$T/pipeline.log" --out "$T/x"
mkdir -p "$T/empty"
expect_err "run dir without logs" "$T/empty: no rlhf logs found" "$RLHF" plot "$T/empty" --out "$T/x"
mkdir -p "$T/bad1/rm" && echo "not hdf5" >"$T/bad1/rm/eval.h5"
expect_err "text file in place of a log" "bad1/rm/eval.h5: not an HDF5 file" "$RLHF" plot "$T/bad1" --out "$T/x"
mkdir -p "$T/bad2/sft" && cp "$R/sft/final.h5" "$T/bad2/sft/metrics.h5"
expect_err "checkpoint in place of a log" "bad2/sft/metrics.h5: not an rlhf log" "$RLHF" plot "$T/bad2" --out "$T/x"
mkdir -p "$T/bad3/sft" && cp "$R/ppo/metrics.h5" "$T/bad3/sft/metrics.h5"
expect_err "log of the wrong kind" "bad3/sft/metrics.h5: a \"ppo-metrics\" log; sft/metrics.h5 should be a \"train\" log" \
    "$RLHF" plot "$T/bad3" --out "$T/x"
expect_err "one supervised stage's directory" "rm/metrics.h5: a \"train\" log of one stage; give the pipeline directory" \
    "$RLHF" plot "$R/rm" --out "$T/x"
expect_err "gnuplot not installed" "gnuplot: not found; .*apt-get install gnuplot-nox" env PATH=/nonexistent "$RLHF" plot "$R" --out "$T/x"
expect_err "--gnuplot path missing" "$T/no such/gnuplot: not found" "$RLHF" plot "$R" --out "$T/x" --gnuplot "$T/no such/gnuplot"
expect_err "gnuplot exit status checked" "ppo_reward.gp: .*false exited with status 1" "$RLHF" plot "$R" --out "$T/f1" --gnuplot false
check "a failed plot leaves no PNG" sh -c "! ls '$T/f1'/*.png 2>/dev/null"
printf '#!/bin/sh\necho "gnuplot> plot x" >&2\necho "\\"$1\\" line 7: undefined variable: x" >&2\necho >&2\nexit 1\n' >"$T/fake-gnuplot"
printf '#!/bin/sh\nexit 0\n' >"$T/lazy-gnuplot"
chmod +x "$T/fake-gnuplot" "$T/lazy-gnuplot"
expect_err "gnuplot's error line reported" "status 1: \"ppo_reward.gp\" line 7: undefined variable: x" \
    "$RLHF" plot "$R" --out "$T/f2" --gnuplot "$T/fake-gnuplot"
expect_err "gnuplot that writes no PNG" "ppo_reward.gp: .*lazy-gnuplot exited with status 0 but wrote no PNG" \
    "$RLHF" plot "$R" --out "$T/f3" --gnuplot "$T/lazy-gnuplot"
touch "$T/afile"
expect_err "output path is a file" "afile: not a directory" "$RLHF" plot "$R" --out "$T/afile"
expect_err "bad --width" "--width expects an integer, got 'wide'" "$RLHF" plot "$R" --width wide
expect_err "size out of range" "size 20x500 out of range" "$RLHF" plot "$R" --out "$T/x" --width 20
expect_err "no run dir given" "missing argument" "$RLHF" plot --out "$T/x"
