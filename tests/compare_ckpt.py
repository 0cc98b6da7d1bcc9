#!/usr/bin/python3
"""compare_ckpt — compares the parameters of two rlhf checkpoints with h5py
(independently of the C reader). Usage:
    compare_ckpt.py A.h5 B.h5 [--tol T]
Exit 0 if every /params dataset has the same shape and max |a - b| <= T
(T = 0: bit-identical), 1 otherwise. Prints the largest difference."""
import sys

import h5py
import numpy as np

a_path, b_path = sys.argv[1], sys.argv[2]
tol = float(sys.argv[sys.argv.index("--tol") + 1]) if "--tol" in sys.argv else 0.0
with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
    names = sorted(a["params"].keys())
    if names != sorted(b["params"].keys()):
        print("different parameter names")
        sys.exit(1)
    worst, where = 0.0, ""
    for n in names:
        x, y = a["params"][n][()], b["params"][n][()]
        if x.shape != y.shape:
            print(f"{n}: shapes {x.shape} vs {y.shape}")
            sys.exit(1)
        d = float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0
        if d > worst or not where:
            worst, where = d, n
print(f"max |diff| {worst:.3g} ({where})")
sys.exit(0 if worst <= tol else 1)
