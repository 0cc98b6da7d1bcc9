#!/usr/bin/python3
"""check_h5log — reads an rlhf HDF5 log (common/io/h5log.h) with h5py, as an
independent reader, while it is being written or after: prints its kind,
columns and row count, and fails if it is not an rlhf log or its columns
differ in length.

Usage: check_h5log.py LOG.h5 [--rows N] [--sum COLUMN]
  --rows N      also fail unless the log has exactly N rows
  --sum COLUMN  also print the sum of COLUMN (float64) as "sum COLUMN VALUE"
Exit status 0 when every check passes, 1 otherwise (reason on stderr).
"""
import argparse
import sys

import h5py
import numpy as np

TYPES = {np.dtype("<f8"): "f64", np.dtype("<f4"): "f32",
         np.dtype("<i8"): "i64", np.dtype("<i4"): "i32"}


def fail(msg):
    print("check_h5log: " + msg, file=sys.stderr)
    sys.exit(1)


def describe(d):
    t = TYPES.get(d.dtype)
    if t is None:
        fail("%s: column %s has unsupported dtype %s" % (d.file.filename, d.name, d.dtype))
    if d.ndim == 1:
        return t
    if d.ndim == 2:
        return "%s x%d" % (t, d.shape[1])
    fail("%s: column %s has %d dimensions" % (d.file.filename, d.name, d.ndim))


def column_names(f):
    """Root links in creation order (the order the writer declared them)."""
    names = []
    try:
        f.id.links.iterate(lambda n: names.append(n.decode()), idx_type=h5py.h5.INDEX_CRT_ORDER)
    except (KeyError, RuntimeError, ValueError):
        names = list(f)  # the file does not track creation order: by name
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--sum")
    a = ap.parse_args()
    # swmr=True: the log may be open for writing by a running job.
    try:
        f = h5py.File(a.path, "r", libver="latest", swmr=True)
    except OSError as e:
        fail("%s: cannot open: %s" % (a.path, e))
    with f:
        if f.attrs.get("format") != "rlhf-log":
            fail("%s: not an rlhf log (format %r)" % (a.path, f.attrs.get("format")))
        print("kind %s version %d" % (f.attrs["kind"], f.attrs["version"]))
        lengths = {}
        for name in column_names(f):
            d = f[name]
            if not isinstance(d, h5py.Dataset):
                fail("%s: /%s is not a dataset" % (a.path, name))
            d.refresh()
            lengths[name] = d.shape[0]
            print("column %-20s %-10s rows %-8d %s" % (name, describe(d), d.shape[0], d.attrs.get("help", "")))
        if not lengths:
            fail("%s: no columns" % a.path)
        if len(set(lengths.values())) != 1:
            fail("%s: columns differ in length: %s" % (a.path, lengths))
        rows = next(iter(lengths.values()))
        print("rows %d" % rows)
        if a.rows is not None and rows != a.rows:
            fail("%s: %d rows, expected %d" % (a.path, rows, a.rows))
        if a.sum:
            if a.sum not in f:
                fail("%s: no column %s" % (a.path, a.sum))
            print("sum %s %.17g" % (a.sum, f[a.sum][()].astype(np.float64).sum()))


if __name__ == "__main__":
    main()
