#!/bin/bash
# Long-run soak of distributed PPO (issue 8): a 4-rank job (1 learner,
# 1 rewarder, 2 actors) runs SOAK_ITERS iterations twice:
#  1. uninterrupted (the reference), while every rank's VmRSS is sampled from
#     /proc with the iteration it was at: memory must stay flat — for each
#     rank the median RSS over the last quarter of the iterations exceeds the
#     median after warm-up (15-25% of the iterations) by less than
#     SOAK_RSS_BOUND_KB (2 MB: a rank's buffers are all allocated in its first
#     iterations, so what is left is allocator noise, a few pages; a leak of
#     one buffer per iteration grows linearly and crosses 2 MB within the
#     soak once it is >= 2 MB / (0.675 x iterations), ~10 KB at 300). The
#     slope of a least-squares line (KB per iteration) is reported too.
#     (This found the learner keeping every log chunk it wrote in HDF5's
#     default chunk cache, 1 MiB per dataset, since capped by h5log.c;
#     SOAK_STRICT=0 allows the learner that growth again, for comparison.)
#  2. the same command, with SIGTERM sent to the learner rank (rank 0) at
#     seeded random moments (a random time after each segment's start-up, so
#     the signal lands in every phase of an iteration), rerun until done:
#     every interrupted segment exits 143 after checkpointing, every rerun
#     resumes from that checkpoint; then the final policy and value model are
#     bit-identical to the reference's, the rollout log holds exactly
#     iterations x batch rows equal to the reference's row for row (sorted by
#     iteration and prompt), metrics.h5 every iteration once and equal, no
#     temporary left; no segment's peak RSS exceeds the reference's by more
#     than SOAK_PEAK_MARGIN_KB.
# Negative controls show the checks can fail. Prints "ok   soak: NAME" /
# "FAIL soak: NAME" lines and a summary table; exit status 1 on any FAIL.
# Environment: RLHF_BIN (the binary), SOAK_SIZE full|tiny (model and batch),
# SOAK_ITERS (300), SOAK_CYCLES (SIGTERMs aimed for, 12), SOAK_SEED (1),
# SOAK_INTERVAL (seconds between RSS samples, 0.25), SOAK_CKPT_EVERY (10),
# SOAK_PERIOD=MIN_MS:MAX_MS (time from a segment's start-up to its SIGTERM;
# default 0.4-1.6 x the time for iterations/(cycles+1) iterations),
# KEEP=1 keeps the scratch directory (with the RSS samples, mem_*.csv); it is
# kept anyway when a check fails.
# `make soak` runs the full size (~3 minutes on 2 idle cores);
# tests/cli/soak.sh a reduced one inside `make test`.
set -u
SUITE=soak
. "$(dirname "$0")/lib.sh"
FX=$ROOT/tests/faults
scratch soak
KEEP_ON_FAIL=1
use_mpirun
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

SIZE=${SOAK_SIZE:-full}
ITERS=${SOAK_ITERS:-300}
CYCLES=${SOAK_CYCLES:-12}
SEED=${SOAK_SEED:-1}
INTERVAL=${SOAK_INTERVAL:-0.25}
CKPT_EVERY=${SOAK_CKPT_EVERY:-10}
BOUND_KB=${SOAK_RSS_BOUND_KB:-2048}
PEAK_MARGIN_KB=${SOAK_PEAK_MARGIN_KB:-4096}
STRICT=${SOAK_STRICT:-1}
case $SIZE in
tiny) MODEL="n_layer=2 n_embd=32 n_head=2 n_ctx=32" B=16 SHAPE="batch_size=16 chunk=4 minibatch=8 micro_batch=8 max_new=8" ;;
full) MODEL="n_layer=4 n_embd=128 n_head=4 n_ctx=40" B=32 SHAPE="batch_size=32 chunk=8 minibatch=16 micro_batch=16 max_new=16" ;;
*) echo "FAIL soak: SOAK_SIZE must be full or tiny, not $SIZE"; exit 1 ;;
esac
MEMCHECK=1
case "$RLHF" in */san/*) MEMCHECK=0 ;; esac # ASan's quarantine holds freed memory: RSS cannot be flat
# a private copy: a rebuild during the soak (make in a shared tree) must not
# change the program between the runs compared (it did once: the sampler's
# arithmetic changed between the reference and a resumed segment)
cp "$RLHF" "$T/rlhf" || { echo "FAIL soak: cannot copy $RLHF"; exit 1; }
RLHF=$T/rlhf


# ---- the helper: RSS sampler, memory analysis, log comparison ----------------
cat >"$T/soak.py" <<'PY'
"""soak.py — helper of tests/soak.sh.
  sample TOP LOG OFFSET CSV SEGMENT INTERVAL
      until process TOP is gone: every INTERVAL s, VmRSS and VmHWM (KB) of
      each rank process below TOP (OMPI_COMM_WORLD_RANK in its environment),
      with the last iteration LOG reports from byte OFFSET on ("ppo: it N/"),
      appended to CSV as: seconds,segment,iteration,rank,pid,rss_kb,hwm_kb
  memory REF.csv RUN.csv ITERS B REF_DIR ROLES BOUND_KB MARGIN_KB STRICT TABLE [--inject F]
      flat memory per rank in REF.csv, peaks of RUN.csv against REF.csv's;
      table rows appended to TABLE; with --inject F, instead: adds to every
      sample a leak growing F x (bound + allowance) over the window and exits
      0 only if every rank is flagged.
  logs RUN_DIR REF_DIR ITERS B
      rollouts.h5 and metrics.h5 of RUN_DIR: every iteration's rows exactly
      once and equal to REF_DIR's (sorted by iteration, prompt index, actor,
      response), clock columns aside. Last lines "lost: ...", "differs: ...",
      "first: N" (the first iteration that differs, -1 if none).
  diag RUN_DIR REF_DIR DIAG_DIR K A.h5 B.h5
      after a difference first seen at resume point K: are the checkpoint
      the interrupted run wrote at K (A) and a second uninterrupted run's at
      K (B) equal (every dataset, /state attributes), and whose rows of
      iteration K differ from whose.
  spoil DIR KIND
      damages the logs of a copy of a run (negative controls).
"""
import os
import re
import sys
import time

CLOCK = {"timestamp", "t_generate", "t_score", "t_learn", "t_wait", "elapsed", "rollouts_per_s"}


sys.path.insert(0, os.environ["SOAK_FAULTS_DIR"])
from kill_job import alive, descendants, rank_of  # noqa: E402  (tests/faults/kill_job.py)


def mem(pid):
    r = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    r[line[:5]] = int(line.split()[1])
    except OSError:
        return None
    return r if len(r) == 2 else None


def sample(top, log, offset, out, seg, interval):
    pat = re.compile(rb"^ppo: it (\d+)/")
    it, buf, ranks, scanned, t0 = -1, b"", {}, 0.0, time.time()
    with open(out, "a") as f:
        while alive(top):
            try:
                with open(log, "rb") as lf:
                    lf.seek(offset)
                    data = lf.read()
                offset += len(data)
                lines = (buf + data).split(b"\n")
                buf = lines.pop()
                for line in lines:
                    m = pat.match(line)
                    if m:
                        it = int(m.group(1))
            except OSError:
                pass
            # look for ranks until all 4 are known, and again when one is gone
            if len(ranks) < 4 or time.monotonic() - scanned > 2.0:
                for p in descendants(top):
                    if p not in ranks:
                        r = rank_of(p)
                        if r is not None:
                            ranks[p] = r
                scanned = time.monotonic()
            for p, r in list(ranks.items()):
                m = mem(p)
                if m is None:
                    del ranks[p]
                    continue
                f.write("%.3f,%d,%d,%d,%d,%d,%d\n" % (time.time() - t0, seg, it, r, p, m["VmRSS"], m["VmHWM"]))
            f.flush()
            time.sleep(interval)


def load(path):
    rows = []
    if os.path.exists(path):
        for line in open(path):
            p = line.split(",")
            if len(p) == 7:
                rows.append((float(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), int(p[6])))
    return rows


def median(v):
    v = sorted(v)
    n = len(v)
    return (v[n // 2] + v[(n - 1) // 2]) / 2


def slope(pts):
    n = len(pts)
    mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else 0.0


def log_bytes_per_row(path):
    """{column: uncompressed bytes per row} of an rlhf HDF5 log."""
    import h5py
    import numpy as np
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        return {k: f[k].dtype.itemsize * int(np.prod(f[k].shape[1:])) for k in f.keys()}


def allowance_kb(ref_dir, b, span_iters):
    """What HDF5's default chunk cache (1 MiB per dataset) may keep of the
    rows the learner appended over span_iters iterations."""
    total = 0
    for name, rows_per_it in (("rollouts.h5", b), ("metrics.h5", 1)):
        for _, nb in log_bytes_per_row(os.path.join(ref_dir, name)).items():
            total += min(nb * rows_per_it * span_iters, 1 << 20)
    return total / 1024


def memory(ref_csv, run_csv, iters, b, ref_dir, roles, bound, margin, strict, table, inject=None):
    role = dict(kv.split("=") for kv in roles.split())
    ref, run = load(ref_csv), load(run_csv)
    w0, w1, e0 = 0.15 * iters, 0.25 * iters, 0.75 * iters
    flagged, nranks, lines, bad = 0, 0, [], []
    for r in sorted({x[3] for x in ref}):
        nranks += 1
        pts = [(x[2], x[5]) for x in ref if x[3] == r and 0 <= x[2] < iters]  # not the shut-down after the last one
        warm = [p for p in pts if w0 <= p[0] <= w1]
        end = [p for p in pts if p[0] >= e0]
        if len(warm) < 3 or len(end) < 3:
            bad.append("rank %d: too few samples (%d after warm-up, %d in the last quarter): sample more often"
                       % (r, len(warm), len(end)))
            flagged += 1
            continue
        span = median([p[0] for p in end]) - median([p[0] for p in warm])
        allow = allowance_kb(ref_dir, b, span) if role.get(str(r)) == "learner" and r == 0 and not strict else 0.0
        if inject is not None:  # a leak of k KB per iteration on top of the measured samples
            k = inject * (bound + allow) / span
            pts = [(i, v + k * i) for i, v in pts]
            warm = [p for p in pts if w0 <= p[0] <= w1]
            end = [p for p in pts if p[0] >= e0]
        start, stop = median([p[1] for p in warm]), median([p[1] for p in end])
        growth = stop - start
        sl = slope([p for p in pts if p[0] >= 0.2 * iters])
        peak_ref = max(x[6] for x in ref if x[3] == r)
        seg_peaks = [x[6] for x in run if x[3] == r]
        peak_run = max(seg_peaks) if seg_peaks else 0
        flat = growth - allow < bound
        if not flat:
            flagged += 1
            bad.append("rank %d (%s): RSS grew %.0f KB from iteration %d to %d (%.2f KB/iteration), allowance %.0f KB,"
                       " bound %d KB" % (r, role.get(str(r), "?"), growth, median([p[0] for p in warm]),
                                         median([p[0] for p in end]), sl, allow, bound))
        if inject is None and peak_run > peak_ref + margin:
            bad.append("rank %d (%s): interrupted run's peak RSS %d KB > reference peak %d KB + %d KB"
                       % (r, role.get(str(r), "?"), peak_run, peak_ref, margin))
        lines.append("%-4d %-9s %10.1f %10.1f %9.0f %9.0f %11.2f %10.1f %10.1f" % (
            r, role.get(str(r), "?"), start / 1024, stop / 1024, growth, allow, sl, peak_ref / 1024, peak_run / 1024))
    if inject is not None:
        print("%d of %d ranks flagged" % (flagged, nranks))
        return 0 if nranks and flagged == nranks else 1
    with open(table, "a") as f:
        for line in lines:
            f.write(line + "\n")
    for x in bad:
        print(x)
    return 1 if bad or not nranks else 0


def open_log(path):
    import h5py
    return h5py.File(path, "r", libver="latest", swmr=True)


def logs(run, ref, iters, b):
    import numpy as np
    lost, differ, first = [], [], []
    with open_log(os.path.join(run, "rollouts.h5")) as r, open_log(os.path.join(ref, "rollouts.h5")) as rr:
        it = r["iteration"][()]
        counts = np.bincount(it, minlength=iters) if len(it) else np.zeros(iters, int)
        short = [i for i in range(iters) if counts[i] < b]
        extra = [i for i in range(len(counts)) if counts[i] > b or i >= iters]
        if short:
            lost.append("rollout rows missing at iterations %s" % short[:10])
        if extra:
            lost.append("rollout rows repeated or beyond the run at iterations %s" % extra[:10])
        if len(it) != iters * b:
            lost.append("rollouts.h5 has %d rows, expected %d x %d = %d" % (len(it), iters, b, iters * b))
        if sorted(r.keys()) != sorted(rr.keys()):
            differ.append("rollouts.h5 columns differ from the reference's")
        elif not lost:
            def order(f):
                resp = f["response"][()]
                keys = [resp[:, j] for j in reversed(range(resp.shape[1]))]
                return np.lexsort(keys + [f["actor"][()], f["prompt_index"][()], f["iteration"][()]])
            o, oo = order(r), order(rr)
            same_order = bool((o == oo).all())
            its = it[o]
            for k in sorted(r.keys()):
                if k in CLOCK:
                    continue
                x, y = r[k][()][o], rr[k][()][oo]
                if x.shape != y.shape or x.tobytes() != y.tobytes():
                    rows = np.nonzero((x.view(np.uint8) != y.view(np.uint8)).reshape(len(x), -1).any(axis=1))[0] \
                        if x.shape == y.shape else []
                    at = int(its[rows[0]]) if len(rows) else -1
                    first.append(at)
                    differ.append("rollouts.h5 %s (%d rows from iteration %d)" % (k, len(rows), at))
            if not differ:
                print("rollouts.h5: %d rows, %d of each iteration 0..%d, equal to the reference's row for row%s"
                      % (len(it), b, iters - 1, "" if same_order else " (after sorting)"))
    with open_log(os.path.join(run, "metrics.h5")) as m, open_log(os.path.join(ref, "metrics.h5")) as mm:
        mi = m["iteration"][()]
        if list(mi) != list(range(iters)):
            dup = sorted({int(i) for i in mi if list(mi).count(i) > 1})
            miss = sorted(set(range(iters)) - {int(i) for i in mi})
            lost.append("metrics.h5 iterations: %d rows, missing %s, repeated %s" % (len(mi), miss[:10], dup[:10]))
        else:
            for k in sorted(m.keys()):
                if k in CLOCK:
                    continue
                if k not in mm or m[k].shape != mm[k].shape:
                    differ.append("metrics.h5 %s (shape)" % k)
                    continue
                x, y = m[k][()], mm[k][()]
                rows = np.nonzero((x.view(np.uint8) != y.view(np.uint8)).reshape(len(x), -1).any(axis=1))[0]
                if len(rows):
                    first.append(int(rows[0]))
                    differ.append("metrics.h5 %s (from iteration %d)" % (k, rows[0]))
            if not [d for d in differ if d.startswith("metrics")]:
                print("metrics.h5: iterations 0..%d once each, equal to the reference's" % (iters - 1))
    for x in lost + differ:
        print(x)
    print("lost: " + ("; ".join(lost) if lost else "nothing"))
    print("differs: " + ("from iteration %d: %s" % (min(first), ", ".join(d.split(" (")[0] for d in differ))
                         if first else "; ".join(differ) if differ else "nothing"))
    print("first: %d" % (min(first) if first else -1))
    return 1 if lost or differ else 0


def ckpt_contents(path):
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()].tobytes()) if isinstance(o, h5py.Dataset) else None)
        for k, v in f["state"].attrs.items():
            out["state@" + k] = repr(v)
    return out


def diag(run, ref, dg, k, a, b):
    import numpy as np
    x, y = ckpt_contents(a), ckpt_contents(b)
    names = sorted(n for n in set(x) | set(y) if x.get(n) != y.get(n))
    print("checkpoint at iteration %d written on SIGTERM %s a second uninterrupted run's%s"
          % (k, "equals" if not names else "differs from", "" if not names else
             " (%d of %d datasets/attributes: %s)" % (len(names), len(x), ", ".join(names[:6]))))
    rows = {}
    for name, d in (("interrupted", run), ("reference", ref), ("second uninterrupted", dg)):
        with open_log(os.path.join(d, "rollouts.h5")) as f:
            sel = f["iteration"][()] == k
            rows[name] = {c: f[c][()][sel] for c in f.keys() if c not in CLOCK}
    def same(p, q):
        return all(rows[p][c].tobytes() == rows[q][c].tobytes() for c in rows[p]) if len(rows[q]["iteration"]) else None
    for p, q in (("interrupted", "reference"), ("second uninterrupted", "reference"), ("interrupted", "second uninterrupted")):
        r = same(p, q)
        cols = [] if r in (True, None) else [c for c in rows[p] if rows[p][c].tobytes() != rows[q][c].tobytes()]
        print("iteration %d rows: %s run %s the %s run's%s" % (k, p, "?" if r is None else "equal to" if r else "differ from",
              q, "" if not cols else " (" + ", ".join(cols) + ")"))
    return 0


def spoil(d, kind):
    import h5py
    with h5py.File(os.path.join(d, "rollouts.h5"), "r+") as r:
        if kind == "token":  # one token of one response changed
            x = r["response"][100]
            x[0] = (x[0] + 1) % 256
            r["response"][100] = x
        elif kind == "moved":  # a row of iteration 5 claims iteration 6
            i = int((r["iteration"][()] == 5).nonzero()[0][0])
            r["iteration"][i] = 6
    if kind == "metrics":  # the last metric row written twice (as a resumed run that logged it again would)
        with h5py.File(os.path.join(d, "metrics.h5"), "r+") as m:
            for k in m.keys():
                n = m[k].shape[0]
                m[k].resize((n + 1,) + m[k].shape[1:])
                m[k][n] = m[k][n - 1]
    return 0


def main(a):
    if a[0] == "sample":
        sample(int(a[1]), a[2], int(a[3]), a[4], int(a[5]), float(a[6]))
        return 0
    if a[0] == "memory":
        inject = float(a[a.index("--inject") + 1]) if "--inject" in a else None
        return memory(a[1], a[2], int(a[3]), int(a[4]), a[5], a[6], int(a[7]), int(a[8]), a[9] == "1", a[10], inject)
    if a[0] == "logs":
        return logs(a[1], a[2], int(a[3]), int(a[4]))
    if a[0] == "diag":
        return diag(a[1], a[2], a[3], int(a[4]), a[5], a[6])
    if a[0] == "spoil":
        return spoil(a[1], a[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
PY
SOAK="env SOAK_FAULTS_DIR=$ROOT/tests/faults $PY $T/soak.py"
cd "$T"

# ---- tiny pipeline: data, pretrain, SFT, RM ----------------------------------------
T_ALL=$(now_ms)
D=data
if tiny_models "$MODEL"; then pass "$SIZE SFT and reward models ($MODEL)"
else fail "$SIZE SFT and reward models ($MODEL)"; exit 1; fi

PPO="policy=sft/final.h5 reward_model=rm/final.h5 prompts=$D/rl_prompts.jsonl $SHAPE ppo_epochs=2"
PPO="$PPO lr=1e-4 value_lr=1e-4 log_samples=0 iterations=$ITERS ckpt_every=$CKPT_EVERY"
JOB="$MPIRUN -n 4 $RLHF ppo $PPO"

# ---- 1. the uninterrupted reference, RSS sampled ---------------------------------
t0=$(now_ms)
bg ref.log timeout -k 10 $(( 20 * ITERS + 120 )) $JOB out_dir=ref
$SOAK sample $PID ref.log 0 mem_ref.csv 0 $INTERVAL &
SAMPLER=$!
wait_line ref.log "iterations of" 1
t1=$(now_ms)
wait_line ref.log "done: " 1 || true
t2=$(now_ms)
fin ref.log
wait $SAMPLER
REF_WALL=$(( $(now_ms) - t0 )) REF_TRAIN=$(( t2 - t1 ))
MS_PER_IT=$(( REF_TRAIN / ITERS + 1 ))
ROLES=$(sed -n 's/^ppo: roles by rank: //p' ref.log | head -1)
if [ "$RC" = 0 ] && [ -e ref/final.h5 ] && [ -e ref/value.h5 ]; then
    pass "uninterrupted reference: $ITERS iterations x $B rollouts in $(secs $REF_WALL) s ($MS_PER_IT ms/iteration; ranks $ROLES)"
else fail "uninterrupted reference: $ITERS iterations" "exit $RC: $(grep -v '^ *[a-z_0-9]* *=' ref.log | tail -3)"; exit 1; fi

# ---- 2. the same job, SIGTERM to the learner at random moments, rerun until done -----------
if [ -n "${SOAK_PERIOD:-}" ]; then PMIN=${SOAK_PERIOD%:*} PMAX=${SOAK_PERIOD#*:}
else
    mean=$(( MS_PER_IT * ITERS / (CYCLES + 1) ))
    PMIN=$(( mean * 4 / 10 )) PMAX=$(( mean * 16 / 10 ))
    [ $PMIN -lt 100 ] && PMIN=100
fi
MAXSEG=$(( 3 * CYCLES + 5 ))
DEADLINE=$(( $(now_ms) + 3 * REF_WALL + (CYCLES + 1) * 30000 ))
RANDOM=$SEED
seg=0 terms=0 prev="" moments="" stops="" resumes="" problems="" done=0
t0=$(now_ms)
touch run.log
while [ $seg -lt $MAXSEG ] && [ $(now_ms) -lt $DEADLINE ]; do
    seg=$((seg + 1))
    off=$(stat -c %s run.log)
    n0=$(grep -c "iterations of" run.log)
    bg run.log timeout -k 10 $(( (DEADLINE - $(now_ms)) / 1000 + 1 )) $JOB out_dir=run
    $SOAK sample $PID run.log $off mem_run.csv $seg $INTERVAL &
    SAMPLER=$!
    if ! wait_line run.log "iterations of" $((n0 + 1)); then
        kill -TERM $PID 2>/dev/null; fin run.log; wait $SAMPLER
        problems="$problems segment $seg: no start-up line in 60 s (exit $RC);"
        break
    fi
    d=$(( PMIN + ( (RANDOM << 15 | RANDOM) % (PMAX - PMIN + 1) ) ))
    $PY "$FX/kill_job.py" $PID --rank 0 --signal 15 --after "$(secs $d)" --watch 60 >kill.$seg 2>&1
    k=$?
    fin run.log
    wait $SAMPLER
    part=$(tail -c +$((off + 1)) run.log)
    if [ -n "$prev" ] && ! echo "$part" | grep -q "^ppo: resuming from run/ckpt-$(printf %06d $prev).h5"; then
        problems="$problems segment $seg did not resume from iteration $prev ($(echo "$part" | grep -o 'resuming from [^ ]*' || echo 'no resume line'));"
    fi
    resumes="$resumes ${prev:-0}"
    at=$(echo "$part" | sed -n 's/^ppo: signal received: checkpoint at iteration \([0-9]*\);.*/\1/p')
    if [ $k = 3 ] || { [ $k = 0 ] && [ "$RC" = 0 ]; }; then # finished before the signal, or the signal came in the last iteration
        [ "$RC" = 0 ] && [ -e run/final.h5 ] && [ -z "$at" ] || problems="$problems last segment $seg: exit $RC, final.h5 $([ -e run/final.h5 ] && echo present || echo missing), checkpoint line '$at';"
        [ $k = 0 ] && moments="$moments $(secs $d)s(last iteration)"
        done=1
        break
    fi
    if [ $k != 0 ]; then
        problems="$problems segment $seg: $(cat kill.$seg);"
        break
    fi
    terms=$((terms + 1)) moments="$moments $(secs $d)s" stops="$stops ${at:-?}"
    [ -n "$at" ] && mkdir -p sigckpt && ln -f run/ckpt-$(printf %06d "$at").h5 sigckpt/ 2>/dev/null # for a diagnosis
    if [ "$RC" != 143 ] || [ -z "$at" ] || [ ! -e run/ckpt-$(printf %06d "$at").h5 ] || [ -e run/final.h5 ]; then
        problems="$problems segment $seg: exit $RC (want 143), checkpoint line '${at:-none}', $(ls run | tr '\n' ' ');"
        [ "$RC" = 143 ] || break
    fi
    prev=$at
done
RUN_WALL=$(( $(now_ms) - t0 ))
[ $done = 1 ] || problems="$problems not finished after $seg segments, $(secs $RUN_WALL) s;"
if [ -z "$problems" ] && [ $terms -ge 1 ]; then
    pass "$terms SIGTERMs to the learner: each segment exited 143 after a checkpoint, each rerun resumed from it ($seg segments, $(secs $RUN_WALL) s)"
else fail "$terms SIGTERMs to the learner: each segment exited 143 after a checkpoint, each rerun resumed from it" "${problems:-no SIGTERM landed: SOAK_PERIOD too long?}"; fi

check "final policy bit-identical to the uninterrupted run's" $PY "$ROOT/tests/compare_ckpt.py" ref/final.h5 run/final.h5
check "final value model bit-identical to the uninterrupted run's" $PY "$ROOT/tests/compare_ckpt.py" ref/value.h5 run/value.h5
$SOAK logs run ref $ITERS $B >logs.out 2>&1
LOGS_RC=$?
LOST=$(sed -n 's/^lost: //p' logs.out)
DIFFERS=$(sed -n 's/^differs: //p' logs.out)
if [ $LOGS_RC = 0 ]; then pass "rollout and metric logs: every iteration exactly once, row for row equal to the reference's"
else fail "rollout and metric logs: every iteration exactly once, row for row equal to the reference's" "$(grep -E '^(lost|differs):' logs.out || tail -3 logs.out)"
    LOST=${LOST:-"logs unreadable"}; fi
# a difference first seen where a segment resumed: was the checkpoint written
# on SIGTERM already different, or did the resumed segment go elsewhere?
FIRST=$(sed -n 's/^first: //p' logs.out)
K=""
for s in $stops; do case $s in *[!0-9]*) continue ;; esac; [ -n "$FIRST" ] && [ "$FIRST" -ge 0 ] && [ "$s" -le "$FIRST" ] && K=$s; done
if [ -n "$K" ] && [ -e sigckpt/ckpt-$(printf %06d $K).h5 ]; then
    n0=$(grep -c "iterations of" diag.log 2>/dev/null)
    bg diag.log timeout -k 10 $(( 20 * ITERS + 120 )) $JOB out_dir=diag ckpt_every=$K keep_checkpoints=1000
    wait_line diag.log "iterations of" 1
    for i in $(seq 6000); do [ -e diag/ckpt-$(printf %06d $((K + 1))).h5 ] || [ -e diag/final.h5 ] || [ "$(grep -c '^ppo: it ' diag.log)" -gt $((K + 1)) ] && break; sleep 0.05; done
    $PY "$FX/kill_job.py" $PID --rank 0 --signal 15 >/dev/null 2>&1
    fin diag.log
    echo "    diagnosis: first difference at iteration $FIRST; the interrupted run resumed at $K (segments started at:$resumes)"
    $SOAK diag run ref diag $K sigckpt/ckpt-$(printf %06d $K).h5 diag/ckpt-$(printf %06d $K).h5 2>&1 | sed 's/^/    diagnosis: /'
fi
if [ "$(stale_temps run)" = 0 ] && [ "$(stale_temps ref)" = 0 ]; then pass "no temporary file left (*.tmp.*)"
else fail "no temporary file left (*.tmp.*)" "$(ls run ref)"; LOST="$LOST; temporaries left"; fi

# negative controls: the same checks reject damaged copies
mkdir -p neg && ok=1 why=""
for kind in token moved metrics; do
    rm -rf neg/$kind && cp -r ref neg/$kind && $SOAK spoil neg/$kind $kind
    if $SOAK logs neg/$kind ref $ITERS $B >neg/$kind.out 2>&1; then ok=0 why="$why $kind passed;"; fi
done
last=$(ls ref/ckpt-*.h5 | tail -2 | head -1)
$PY "$ROOT/tests/compare_ckpt.py" ref/final.h5 $last >/dev/null 2>&1 && { ok=0 why="$why $last equals final;"; }
[ $ok = 1 ] && pass "checks reject a changed token, a row moved to another iteration, a repeated metric row, an earlier checkpoint" ||
    fail "checks reject a changed token, a row moved to another iteration, a repeated metric row, an earlier checkpoint" "$why"

# memory
TABLE=$T/table
if [ $MEMCHECK = 1 ]; then
    if $SOAK memory mem_ref.csv mem_run.csv $ITERS $B ref "$ROLES" $BOUND_KB $PEAK_MARGIN_KB $STRICT $TABLE >mem.out 2>&1; then
        pass "memory flat on every rank (growth from 20% to the last quarter < $BOUND_KB KB$([ $STRICT = 1 ] || echo ' beyond the logs'"'"' chunk cache')), interrupted segments' peaks within $PEAK_MARGIN_KB KB of the reference's"
    else fail "memory flat on every rank, interrupted segments' peaks within $PEAK_MARGIN_KB KB of the reference's" "$(cat mem.out)"; fi
    if $SOAK memory mem_ref.csv mem_run.csv $ITERS $B ref "$ROLES" $BOUND_KB $PEAK_MARGIN_KB $STRICT /dev/null --inject 2 >mem_neg.out 2>&1; then
        pass "memory check flags every rank when the same samples carry a leak twice the bound ($(cat mem_neg.out))"
    else fail "memory check flags every rank when the same samples carry a leak twice the bound" "$(cat mem_neg.out)"; fi
else
    echo "skip soak: memory checks (sanitizer build: ASan keeps freed memory in quarantine)"
fi

# ---- summary -----------------------------------------------------------------------
echo "     soak summary: $SIZE size ($MODEL), $ITERS iterations x $B rollouts, 4 ranks ($ROLES), ckpt_every=$CKPT_EVERY, seed $SEED"
printf '     %-14s %8s %10s %9s %9s\n' run "wall s" iterations segments SIGTERMs
printf '     %-14s %8s %10s %9s %9s\n' uninterrupted "$(secs $REF_WALL)" $ITERS 1 0
printf '     %-14s %8s %10s %9s %9s\n' interrupted "$(secs $RUN_WALL)" $ITERS $seg $terms
echo "     SIGTERM after start-up (range $(secs $PMIN)-$(secs $PMAX) s):$moments"
echo "     checkpoints at iterations:$stops; segments started at iterations:$resumes"
if [ $MEMCHECK = 1 ] && [ -s $TABLE ]; then
    printf '     %-4s %-9s %10s %10s %9s %9s %11s %10s %10s\n' rank role "RSS@20% MB" "RSS end MB" "growth KB" "allow KB" "slope KB/it" "peak ref" "peak intr"
    sed 's/^/     /' $TABLE
fi
echo "     lost: ${LOST:-nothing}; differs from the reference: ${DIFFERS:-?}; total $(secs $(( $(now_ms) - T_ALL ))) s"
[ $NFAIL = 0 ]
