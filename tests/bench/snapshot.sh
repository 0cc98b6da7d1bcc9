#!/bin/bash
# snapshot.sh — policy snapshot transfer time against a raw MPI send of the
# same bytes: runs build/opt/bench/snapshot_bench on 2 ranks (see its header
# for what is timed) and prints a table. Aim: the snapshot within 2x of the
# raw send. Then the distribution of one snapshot to 1, 2, 4, 8 actors
# (oversubscribed on a small machine), snapshot_send = p2p against bcast:
# the time until the last actor holds it, and until the learner's sends are
# done. Skipped with a note when mpirun is missing. A report, never a test.
#
#   tests/bench/snapshot.sh [floats ...]
# Environment: BENCH_DIR (build/opt/bench), SNAPSHOT_JSON (append the JSON
# lines there), SNAPSHOT_ACTORS ("1 2 4 8"), SNAPSHOT_FAN_FLOATS (floats for
# the fan-out: "262144 4194304", 1 MB and 16 MB).
set -u
cd "$(dirname "$0")/../.."
: "${BENCH_DIR:=build/opt/bench}"
if ! command -v mpirun >/dev/null; then
    echo "snapshot: skipped: mpirun is missing (launch/install-deps.sh)" >&2
    exit 0
fi
[ -x "$BENCH_DIR/snapshot_bench" ] || { echo "snapshot: $BENCH_DIR/snapshot_bench is missing" >&2; exit 1; }
MPIRUN="mpirun"
[ "$(id -u)" = 0 ] && MPIRUN="mpirun --allow-run-as-root"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "snapshot: 2 ranks, sizes ${*:-default}" >&2
OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1 $MPIRUN -n 2 "$BENCH_DIR/snapshot_bench" "$@" >"$out" ||
    { echo "snapshot: snapshot_bench failed" >&2; exit 1; }
[ -n "${SNAPSHOT_JSON:-}" ] && cat "$out" >>"$SNAPSHOT_JSON"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print()
print("snapshot transfer, learner -> actor, 2 ranks on this machine (receiver's time, median; aim: <= 2x raw)")
print("%12s %9s %10s %10s %12s %9s %10s %9s" % ("floats", "MB", "raw ms", "msg ms", "snapshot ms", "raw GB/s",
                                                  "msg/raw", "snap/raw"))
for r in rows:
    print("%12d %9.1f %10.2f %10.2f %12.2f %9.2f %9.2fx %8.2fx" % (r["floats"], r["mbytes"], r["raw_ms"], r["msg_ms"],
          r["snapshot_ms"], r["raw_gbps"], r["msg_over_raw"], r["snapshot_over_raw"]))
print("  raw: MPI_Send/MPI_Recv; msg: msg_send_f32/msg_recv_f32 (1 ms sleeping polls); snapshot: header message + weights,")
print("  as learner/ppo.c send_snapshot; sizes: 1 MB, d=256 4-layer model (byte, GPT-2 vocabulary), GPT-2 small")
PY
echo "  load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"

fan=$(mktemp)
trap 'rm -f "$out" "$fan"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for n in ${SNAPSHOT_ACTORS:-1 2 4 8}; do
    OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1 $MPIRUN -n $((n + 1)) "$BENCH_DIR/snapshot_bench" --fanout \
        ${SNAPSHOT_FAN_FLOATS:-262144 4194304} >>"$fan" || { echo "snapshot: snapshot_bench --fanout on $((n + 1)) ranks failed" >&2; exit 1; }
done
[ -n "${SNAPSHOT_JSON:-}" ] && cat "$fan" >>"$SNAPSHOT_JSON"
/usr/bin/python3 - "$fan" "$(nproc)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print()
print("one snapshot to N actors (1 learner + N actor ranks on %s cores, median ms): the last actor holding it / the learner's sends done" % sys.argv[2])
print("%7s %9s %12s %12s %12s %12s %10s" % ("actors", "MB", "p2p last", "p2p learner", "bcast last", "bcast learn.", "bcast/p2p"))
for r in sorted(rows, key=lambda r: (r["floats"], r["actors"])):
    print("%7d %9.1f %12.2f %12.2f %12.2f %12.2f %9.2fx" % (r["actors"], r["mbytes"], r["p2p_ms"], r["p2p_learner_ms"],
          r["bcast_ms"], r["bcast_learner_ms"], r["bcast_ms"] / r["p2p_ms"]))
print("  p2p: header + weights to every actor (snapshot_send = p2p); bcast: headers point-to-point, the weights once by")
print("  MPI_Ibcast on the learner + actors communicator (snapshot_send = bcast); every wait polls with 1 ms naps")
PY
echo "  load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
