#!/usr/bin/python3
"""check_runs — checks with h5py (independently of the C reader) that the
logs of an interrupted and resumed run hold every row exactly once; used by
tests/cli/faults.sh.

Usage:
  check_runs.py steps METRICS.h5 N [--nan K,K,...]
      the trainer's metrics: column step is exactly 1..N (no gap, no
      duplicate); with --nan, loss is NaN at exactly those steps and finite
      at every other one.
  check_runs.py ppo RUN_DIR ITERATIONS BATCH [--same REF_DIR]
      a PPO run: rollouts.h5 has BATCH rows of every iteration 0..ITERATIONS-1
      in order, metrics.h5 one row per iteration; with --same, every column
      of both logs equals the uninterrupted run's in REF_DIR bit for bit,
      except wall-clock columns (times, timestamps, throughput).
Exit status 0 when every check passes, 1 otherwise (the reason on stdout).
"""
import os
import sys

import h5py
import numpy as np

CLOCK_COLUMNS = {"timestamp", "t_generate", "t_score", "t_learn", "t_wait", "elapsed", "rollouts_per_s"}


def fail(msg):
    print(msg)
    sys.exit(1)


def open_log(path):
    # SWMR: a writer that died (or was killed) leaves the file flagged open
    return h5py.File(path, "r", libver="latest", swmr=True)


def check_steps(path, n, nan_steps):
    with open_log(path) as f:
        steps, loss = f["step"][()], f["loss"][()]
    if list(steps) != list(range(1, n + 1)):
        fail("%s: steps %s, expected 1..%d exactly once" % (path, steps.astype(int).tolist(), n))
    bad = [int(s) for s, l in zip(steps, loss) if not np.isfinite(l)]
    if bad != sorted(nan_steps):
        fail("%s: non-finite loss at steps %s, expected %s" % (path, bad, sorted(nan_steps)))
    print("%s: steps 1..%d once each; non-finite at %s" % (path, n, bad))


def same_columns(a, b, what):
    if sorted(a.keys()) != sorted(b.keys()):
        fail("%s: columns differ: %s vs %s" % (what, sorted(a.keys()), sorted(b.keys())))
    for k in a.keys():
        if k in CLOCK_COLUMNS:
            continue
        x, y = a[k][()], b[k][()]
        if x.shape != y.shape or x.tobytes() != y.tobytes():
            rows = "shape %s vs %s" % (x.shape, y.shape)
            if x.shape == y.shape:
                diff = np.nonzero((x != y) & ~(np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x != y)[0]
                rows = "first differing row %s" % (diff[0] if len(diff) else "? (bits)")
            fail("%s: column %s differs from the uninterrupted run (%s)" % (what, k, rows))


def check_ppo(run, iterations, batch, ref):
    with open_log(os.path.join(run, "rollouts.h5")) as r, open_log(os.path.join(run, "metrics.h5")) as m:
        it = r["iteration"][()]
        want = np.repeat(np.arange(iterations), batch)
        if it.shape != want.shape or (it != want).any():
            fail("%s/rollouts.h5: rows per iteration %s, expected %d of each of 0..%d in order"
                 % (run, np.bincount(it).tolist(), batch, iterations - 1))
        mi = m["iteration"][()]
        if list(mi) != list(range(iterations)):
            fail("%s/metrics.h5: iterations %s, expected 0..%d once each" % (run, mi.tolist(), iterations - 1))
        if ref:
            with open_log(os.path.join(ref, "rollouts.h5")) as rr, open_log(os.path.join(ref, "metrics.h5")) as rm:
                same_columns(r, rr, run + "/rollouts.h5")
                same_columns(m, rm, run + "/metrics.h5")
    print("%s: %d rollout rows, %d of each iteration 0..%d; %d metric rows%s"
          % (run, len(it), batch, iterations - 1, len(mi), "; logs equal %s's" % ref if ref else ""))


def main(argv):
    if len(argv) >= 3 and argv[0] == "steps":
        nan = [int(s) for s in argv[argv.index("--nan") + 1].split(",")] if "--nan" in argv else []
        check_steps(argv[1], int(argv[2]), nan)
    elif len(argv) >= 4 and argv[0] == "ppo":
        ref = argv[argv.index("--same") + 1] if "--same" in argv else None
        check_ppo(argv[1], int(argv[2]), int(argv[3]), ref)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
