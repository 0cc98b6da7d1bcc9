#!/bin/bash
# ppo_scaling.sh — distributed PPO and GRPO throughput as actors are added: the same
# job (1 learner, 1 rewarder, a small randomly initialised policy and reward
# model on the arith prompts) with 1, 2 and 3 actors, on-policy
# (max_policy_lag=0) and with max_policy_lag=1 (actors sample iteration k+1
# while the learner trains on k). Reads each run's metrics.h5: rollouts/s,
# wall time per iteration (difference of `elapsed`) and its split: t_generate
# (actor-seconds of sampling, summed over actors), t_score (rewarder),
# t_learn, t_wait (learner idle, waiting for scored rollouts). The first
# WARMUP iterations are left out; actor counts alternate, ROUNDS times, and
# medians are printed. Every rank runs one OpenBLAS thread (ranks x threads
# <= what the machine can hold; with more ranks than cores the extra actors
# only share the cores). A report, never a test.
# Orders of 8 rollouts of 32 new tokens keep every message under Open MPI's
# 4 KB shared-memory eager limit: at the time of writing, max_policy_lag >= 1
# deadlocks once rollout messages go over it (max_new=64 here: the learner
# blocks sending a snapshot to the actor, which blocks sending rollouts to
# the rewarder, which blocks sending scores to the learner).
# Each configuration runs PPO (`rlhf ppo`: value model, reward model,
# reference for the KL in the reward) and GRPO (`rlhf grpo`: no value model,
# the gold verifier instead of a reward model, the reference's KL in the loss;
# group_size 8, so an order of 8 is one group) on the same batch, response
# length, epochs and minibatches, so their splits stand side by side: GRPO's
# learner trains one model instead of two and its rewarder runs one forward
# (the reference) instead of two.
#
#   RLHF_BIN=build/opt/rlhf tests/bench/ppo_scaling.sh
# Environment: PPO_ALGOS ("ppo grpo"), PPO_ACTORS ("1 2 3"), PPO_LAGS ("0 1"), PPO_ROUNDS (2),
# PPO_ITERS (6), PPO_WARMUP (1), PPO_MODEL ("n_layer,n_head,n_embd,n_ctx":
# "4,4,256,64"), PPO_ARGS (extra key=value for both), GRPO_ARGS (for rlhf grpo only), PPO_JSON (append
# the per-run JSON lines there), KEEP=1 keeps the scratch directory.
set -u
cd "$(dirname "$0")/../.."
RLHF=${RLHF_BIN:-build/opt/rlhf}
RLHF=$(cd "$(dirname "$RLHF")" && pwd)/$(basename "$RLHF")
if ! command -v mpirun >/dev/null; then
    echo "ppo_scaling: skipped: mpirun is missing (launch/install-deps.sh)" >&2
    exit 0
fi
if ! /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    echo "ppo_scaling: skipped: python3-h5py is missing (reads metrics.h5)" >&2
    exit 0
fi
[ -x "$RLHF" ] || { echo "ppo_scaling: $RLHF is missing (make)" >&2; exit 1; }
ALGOS=${PPO_ALGOS:-"ppo grpo"}
ACTORS=${PPO_ACTORS:-"1 2 3"}
LAGS=${PPO_LAGS:-"0 1"}
ROUNDS=${PPO_ROUNDS:-2}
ITERS=${PPO_ITERS:-6}
WARMUP=${PPO_WARMUP:-1}
IFS=, read -r NL NH ND NCTX <<<"${PPO_MODEL:-4,4,256,64}"
MPIRUN="mpirun"
[ "$(id -u)" = 0 ] && MPIRUN="mpirun --allow-run-as-root"
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1

T=$(mktemp -d /tmp/rlhf-bench-ppo-XXXXXX)
[ "${KEEP:-0}" = 1 ] && echo "ppo_scaling: scratch kept in $T" >&2 || trap 'rm -rf "$T"' EXIT
cd "$T"
"$RLHF" data arith --out data --n 400 --seed 5 >/dev/null 2>&1 &&
    "$RLHF" init --out policy.h5 --n-layer "$NL" --n-head "$NH" --n-embd "$ND" --n-ctx "$NCTX" --seed 1 >/dev/null 2>&1 &&
    "$RLHF" init --out rm.h5 --head scalar --n-layer "$NL" --n-head "$NH" --n-embd "$ND" --n-ctx "$NCTX" --seed 2 >/dev/null 2>&1 ||
    { echo "ppo_scaling: could not make the data and models" >&2; exit 1; }

# 48 rollouts in 6 orders of 8: an equal share for 1, 2 or 3 actors
COMMON="policy=policy.h5 prompts=data/rl_prompts.jsonl"
COMMON="$COMMON batch_size=48 chunk=8 minibatch=16 micro_batch=16 max_new=32 ppo_epochs=1 lr=1e-5"
COMMON="$COMMON log_samples=0 ckpt_every=100000 iterations=$ITERS ${PPO_ARGS:-}"
PPO="reward_model=rm.h5 normalize_reward=false value_lr=1e-5"
# the preset's advantage, KL and reward (the gold verifier); groups of 8
GRPO="group_size=8 ${GRPO_ARGS:-}"
out=$T/runs.json
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
    for lag in $LAGS; do
        for a in $ACTORS; do
          for algo in $ALGOS; do
            dir=run-r$r-lag$lag-a$a-$algo
            case $algo in
                ppo) extra=$PPO ;;
                grpo) extra=$GRPO ;;
                *) echo "ppo_scaling: PPO_ALGOS: unknown algorithm '$algo' (ppo, grpo)" >&2; exit 1 ;;
            esac
            echo "ppo_scaling: round $r, $algo, max_policy_lag $lag, $a actor(s)" >&2
            if ! $MPIRUN -n $((2 + a)) "$RLHF" $algo $COMMON $extra out_dir=$dir max_policy_lag=$lag >$dir.log 2>&1; then
                echo "ppo_scaling: the run failed:" >&2
                tail -5 $dir.log >&2
                exit 1
            fi
            /usr/bin/python3 - "$dir/metrics.h5" "$r" "$lag" "$a" "$WARMUP" "$algo" >>"$out" <<'PY'
import h5py, json, sys
import numpy as np
path, rnd, lag, actors, warm, algo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
m = h5py.File(path, "r")
el = m["elapsed"][()]
it_time = np.diff(np.concatenate([[0.0], el]))[warm:]     # wall seconds per iteration
keep = slice(warm, None)
row = {"impl": "ppo", "algo": algo, "round": rnd, "lag": lag, "actors": actors, "iterations": int(len(el) - warm),
       "iter_s": float(np.median(it_time))}
for k in ["t_generate", "t_score", "t_learn", "t_wait", "rollouts_per_s", "length", "lag_mean"]:
    row[k] = float(np.median(m[k][keep]))
print(json.dumps(row))
PY
          done
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
[ -n "${PPO_JSON:-}" ] && cat "$out" >>"$PPO_JSON"

/usr/bin/python3 - "$out" "$NL,$NH,$ND,$NCTX" "${COMMON%% log_samples=*}" "$PPO" "$GRPO" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
L, H, D, ctx = sys.argv[2].split(",")
print()
print("PPO and GRPO scaling: random policy (and reward/value models) of %s layers, %s heads, width %s, context %s, "
      "byte vocabulary;" % (L, H, D, ctx))
print("  1 learner, 1 rewarder, 1 OpenBLAS thread per rank; %s" % sys.argv[3].replace("policy=policy.h5 ", ""))
print("  ppo: rlhf ppo %s (value model from the reward model, KL k1 in the reward)" % sys.argv[4])
print("  grpo: rlhf grpo %s (preset: no value model, gold verifier, KL k3 in the loss, seq-mean-token-mean)"
      % sys.argv[5].strip())
print("%-5s %-4s %-7s %11s %10s %8s %9s %9s %9s %9s %8s" % ("algo", "lag", "actors", "rollouts/s", "iter s",
      "speedup", "gen a-s", "score s", "learn s", "wait s", "resp len"))
for algo in [a for a in ["ppo", "grpo"] if any(r.get("algo", "ppo") == a for r in rows)]:
    for lag in sorted({r["lag"] for r in rows}):
        base = None
        for a in sorted({r["actors"] for r in rows if r["lag"] == lag}):
            sel = [r for r in rows if r["lag"] == lag and r["actors"] == a and r.get("algo", "ppo") == algo]
            if not sel:
                continue
            med = lambda k: st.median(r[k] for r in sel)
            rps = 48.0 / med("iter_s")
            base = base or rps
            print("%-5s %-4d %-7d %11.1f %10.3f %7.2fx %9.3f %9.3f %9.3f %9.3f %8.1f" % (algo, lag, a, rps,
                  med("iter_s"), rps / base, med("t_generate"), med("t_score"), med("t_learn"), med("t_wait"),
                  med("length")))
print("  rollouts/s = 48 / median wall time per iteration (metrics 'elapsed'); gen a-s: actor-seconds of sampling "
      "per iteration, summed over actors; speedup against 1 actor of the same algorithm and lag; medians over %d "
      "round(s)" % max(r["round"] for r in rows))
PY
echo "  load average before $load_before, after $load_after ($(nproc) cores)"
