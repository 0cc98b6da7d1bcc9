#!/usr/bin/python3
"""kill_job — sends a signal to a running rlhf job at a chosen moment and
measures how long the job takes to go away; used by tests/cli/faults.sh.

Usage: kill_job.py PID [--after S] [--when GLOB [--then S]] [--signal N]
                       [--rank R | --tree] [--watch S]

PID is the process the test started: a single-rank trainer, or mpirun.
Moment: --after S seconds from now, or as soon as a file matching GLOB
exists (inotify on its directory once that exists: to land inside a
checkpoint write), whichever comes first, plus --then S more seconds;
with neither, at once.
Target: PID itself (default); --rank R: the rank process of mpirun PID whose
OMPI_COMM_WORLD_RANK is R; --tree: PID and every descendant (mpirun is
stopped with SIGSTOP first, so it can neither start nor signal anything
while its ranks are killed; a node failure or preemption kill looks the
same).
Then waits up to --watch seconds (default 30) for PID and all its
descendants to exit (a zombie counts as exited) and prints one line:
    fired SIG at T s (why) on PIDS; job gone after X s
Exit status: 0 fired and gone; 1 fired but processes remain after --watch
(listed); 3 the job ended (or its ranks did) before the moment came
(nothing sent).
"""
import argparse
import ctypes
import fnmatch
import glob
import os
import select
import signal
import struct
import sys
import time


def state(pid):
    """The process state letter, or None if it no longer exists."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid):
    return state(pid) not in (None, "Z", "X")


def descendants(pid):
    """Every process below pid, from one pass over /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        k = kids.get(todo.pop(), [])
        out += k
        todo += k
    return out


def rank_of(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
                    return int(kv.split(b"=", 1)[1])
    except OSError:
        pass
    return None


class Inotify:
    """File creation events of one directory (Linux inotify through libc):
    a checkpoint temporary is seen microseconds after it is created, while
    its writer is still inside HDF5, which polling cannot promise."""
    IN_CREATE, IN_MOVED_TO = 0x100, 0x80

    def __init__(self, directory):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0 or self.libc.inotify_add_watch(self.fd, directory.encode(),
                                                      self.IN_CREATE | self.IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify on " + directory)

    def names(self):
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i + 16 <= len(data):
            _, _, _, n = struct.unpack_from("iIII", data, i)
            out.append(data[i + 16:i + 16 + n].split(b"\0", 1)[0].decode(errors="replace"))
            i += 16 + n
        return out


def wait_moment(pid, after, pattern, family):
    """Returns the reason the moment came, or None if the job ended first.
    Keeps family (PID's descendants) up to date meanwhile: scanning /proc
    takes milliseconds, too long once the moment has come."""
    t0 = time.monotonic()
    watch, scanned = None, 0.0
    while True:
        if time.monotonic() - scanned > 0.2:
            family[:] = descendants(pid)
            scanned = time.monotonic()
        if pattern and not watch and os.path.isdir(os.path.dirname(pattern) or "."):
            watch = Inotify(os.path.dirname(pattern) or ".")
        if watch:
            for name in watch.names():
                if fnmatch.fnmatch(name, os.path.basename(pattern)):
                    return "file %s" % name
        if pattern:
            hits = glob.glob(pattern)
            if hits:
                return "file %s" % os.path.basename(hits[0])
        if after is not None and time.monotonic() - t0 >= after:
            return "after %.2f s" % after
        if after is None and not pattern:
            return "at once"
        if not alive(pid):
            return None
        if watch:  # sleep until a file is created (or 1 ms passes)
            select.select([watch.fd], [], [], 0.001)
        else:
            time.sleep(0.0005)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--after", type=float)
    ap.add_argument("--when")
    ap.add_argument("--then", type=float, default=0.0)
    ap.add_argument("--signal", type=int, default=signal.SIGKILL)
    ap.add_argument("--rank", type=int)
    ap.add_argument("--tree", action="store_true")
    ap.add_argument("--watch", type=float, default=30.0)
    a = ap.parse_args()

    t_start = time.monotonic()
    family = []
    why = wait_moment(a.pid, a.after, a.when, family)
    if why is None:
        print("job ended before the moment came; nothing sent")
        return 3
    if a.then > 0:  # a little later: into the write, not at its first byte
        time.sleep(a.then)
        why += " + %.1f ms" % (1000 * a.then)
    if a.tree:  # freeze everyone first, so that a writer stays inside its write
        for p in [a.pid] + family:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        family = descendants(a.pid)
    tree = family + [a.pid]  # known before firing: orphaned ranks are no longer descendants
    if a.tree:
        targets = tree
    elif a.rank is not None:
        targets = [p for p in tree if rank_of(p) == a.rank]
        if not targets:  # the ranks have finished; mpirun is winding up
            print("no process of rank %d under %d; nothing sent" % (a.rank, a.pid))
            return 3
    else:
        targets = [a.pid]
    t_fire = time.monotonic()
    for p in targets:
        try:
            os.kill(p, a.signal)
        except ProcessLookupError:
            pass
    if a.tree and a.signal != signal.SIGKILL:
        for p in tree:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
    watched = set(tree)
    while time.monotonic() - t_fire < a.watch:
        watched = {p for p in watched if alive(p)}
        if not watched:
            break
        time.sleep(0.005)
    gone = time.monotonic() - t_fire
    line = "fired %s at %.2f s (%s) on %s; " % (signal.Signals(a.signal).name, t_fire - t_start, why,
                                               ",".join(map(str, targets)))
    if watched:
        print(line + "still running after %.1f s: %s" % (a.watch, sorted(watched)))
        return 1
    print(line + "job gone after %.2f s" % gone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
