#!/bin/bash
# rl_vs_torch.sh — one GRPO iteration and one PPO iteration of our RL job
# against the same iteration in PyTorch (tests/bench/torch_rl_bench.py: same
# model, batch, group size, response length, epochs, minibatch, micro-batch,
# loss), on this machine in this run, with the time of each phase.
#
# What is compared. Our job runs its roles as separate ranks: 1 learner,
# 1 rewarder, 1 actor, on-policy (max_policy_lag=0), the learner with 2
# OpenBLAS threads and the actor and rewarder with 1 each — while the actor
# samples and the rewarder scores, the learner sleeps, and while the learner
# trains the others sleep, so at most 2 threads are busy (the machine's 2
# cores). The actor samples order k+1 while the rewarder scores order k, so
# our iteration is shorter than the sum of its phases. Torch runs the phases
# one after another in one process on 2 threads (at its best: both settings,
# torch 2 threads + OpenBLAS 1 and torch 1 + OpenBLAS 2, with glibc's malloc
# told to keep its memory; per phase the faster setting is quoted). Each
# run's figure is the median over its iterations after the first; rounds
# alternate our job and torch, and each side's fastest round is quoted (the
# machine may be shared: the least disturbed round is the best estimate for
# either side). Per phase, from metrics.h5:
#   generate  our t_generate: actor-seconds of sampling (1 thread) | torch's
#             sampling of the same orders (2 threads)
#   reward    our t_score: rewarder-seconds (reference forward; the reward
#             model for PPO, the gold verifier for GRPO; 1 thread) | torch's
#             reference (+ reward model) forward, with a python rule reward
#             standing in for the gold verifier
#   learn     our t_learn (advantages incl. the value model's forward for
#             PPO, the epochs of minibatch updates; 2 threads) | the same in
#             torch
#   iteration our wall time per iteration (metrics 'elapsed', so the overlap
#             of generate and reward, messages, snapshot and logs included) |
#             torch's whole iteration
# The models are random (rlhf init / torch's GPT-2 initialisation), so the
# response lengths are the sampler's; mean lengths are printed for both.
# Prompts: the arith task's, taken from our run's rollout log for torch.
# A report, never a test.
#
#   RLHF_BIN=build/opt/rlhf tests/bench/rl_vs_torch.sh
# Environment: RL_ALGOS ("grpo ppo"), RL_MODEL ("vocab,d,layers,heads,n_ctx":
# "257,256,4,4,128"; vocab 50257 takes tests/fixtures/gpt2-bpe), RL_ITERS
# (iterations per run, 4), RL_ROUNDS (2: our job and torch alternate),
# RL_GRPO / RL_PPO (the settings, key=value as for rlhf), RL_JSON (append the
# JSON lines there), KEEP=1 keeps the scratch directory.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
RLHF=${RLHF_BIN:-build/opt/rlhf}
RLHF=$(cd "$(dirname "$RLHF")" && pwd)/$(basename "$RLHF")
[ -x "$RLHF" ] || { echo "rl_vs_torch: $RLHF is missing (make)" >&2; exit 1; }
if ! command -v mpirun >/dev/null; then
    echo "rl_vs_torch: skipped: mpirun is missing (launch/install-deps.sh)" >&2
    exit 0
fi
if ! /usr/bin/python3 -c "import h5py, torch" 2>/dev/null; then
    echo "rl_vs_torch: skipped: python3-h5py or python3-torch is missing (RLHF_BENCH_DEPS=1 launch/install-deps.sh)" >&2
    exit 0
fi
ALGOS=${RL_ALGOS:-"grpo ppo"}
IFS=, read -r V D NL NH NCTX <<<"${RL_MODEL:-257,256,4,4,128}"
ITERS=${RL_ITERS:-4}
ROUNDS=${RL_ROUNDS:-2}
# launch/configs/demo/grpo.conf's GRPO (the preset's loss and KL, clip-higher)
GRPO_SET=${RL_GRPO:-"batch_size=64 chunk=16 group_size=8 minibatch=32 micro_batch=16 max_new=16 ppo_epochs=2 lr=5e-5 clip_high=0.28"}
# rlhf ppo's defaults: 64 rollouts, orders of 16, 4 epochs of minibatches of 16
PPO_SET=${RL_PPO:-"batch_size=64 chunk=16 group_size=1 minibatch=16 micro_batch=16 max_new=32 ppo_epochs=4 lr=1e-5"}
MALLOC="MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000"
MPIRUN="mpirun"
[ "$(id -u)" = 0 ] && MPIRUN="mpirun --allow-run-as-root"
export OMPI_MCA_rmaps_base_oversubscribe=1
tokarg="" tokkey=""
if [ "$V" = 50257 ]; then
    tokarg="--tokenizer $ROOT/tests/fixtures/gpt2-bpe"
    tokkey="tokenizer=$ROOT/tests/fixtures/gpt2-bpe"
elif [ "$V" != 257 ]; then
    echo "rl_vs_torch: RL_MODEL: vocab must be 257 (bytes) or 50257 (GPT-2), got $V" >&2
    exit 1
fi

T=$(mktemp -d /tmp/rlhf-bench-rl-XXXXXX)
[ "${KEEP:-0}" = 1 ] && echo "rl_vs_torch: scratch kept in $T" >&2 || trap 'rm -rf "$T"' EXIT
cd "$T"
"$RLHF" data arith --out data --n 400 --seed 5 >/dev/null 2>&1 &&
    "$RLHF" init --out policy.h5 $tokarg --n-layer "$NL" --n-head "$NH" --n-embd "$D" --n-ctx "$NCTX" --seed 1 >/dev/null 2>&1 &&
    "$RLHF" init --out rm.h5 --head scalar $tokarg --n-layer "$NL" --n-head "$NH" --n-embd "$D" --n-ctx "$NCTX" --seed 2 >/dev/null 2>&1 ||
    { echo "rl_vs_torch: could not make the data and models" >&2; exit 1; }

# key=value settings -> torch_rl_bench.py flags (the keys both understand)
torch_flags() {
    local kv flags=""
    for kv in $1; do
        case ${kv%%=*} in
            batch_size|chunk|group_size|minibatch|micro_batch|max_new|ppo_epochs|lr|clip|clip_low|clip_high|kl_in|kl_coef|kl_estimator|loss_agg|value_lr|vf_coef)
                flags="$flags --$(echo "${kv%%=*}" | tr _ -) ${kv#*=}" ;;
            *) echo "rl_vs_torch: $kv has no torch counterpart" >&2; return 1 ;;
        esac
    done
    echo "$flags"
}

out=$T/rl.json
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
    for algo in $ALGOS; do
        case $algo in
            grpo) set=$GRPO_SET extra="" ;;  # the preset: gold verifier, KL k3 in the loss, no value model
            ppo) set=$PPO_SET extra="reward_model=rm.h5 normalize_reward=false" ;;
            *) echo "rl_vs_torch: RL_ALGOS: unknown algorithm '$algo' (grpo, ppo)" >&2; exit 1 ;;
        esac
        flags=$(torch_flags "$set") || exit 1
        dir=run-r$r-$algo
        echo "rl_vs_torch: round $r, $algo: rlhf" >&2
        args="policy=policy.h5 prompts=data/rl_prompts.jsonl $tokkey $set $extra max_policy_lag=0 iterations=$ITERS"
        args="$args log_samples=0 ckpt_every=100000 out_dir=$dir"
        if ! $MPIRUN -n 1 -x OPENBLAS_NUM_THREADS=2 "$RLHF" "$algo" $args : \
            -n 2 -x OPENBLAS_NUM_THREADS=1 "$RLHF" "$algo" $args >$dir.log 2>&1; then
            echo "rl_vs_torch: the run failed:" >&2
            tail -5 $dir.log >&2
            exit 1
        fi
        # our split, and the prompts (one per group, in order) for torch
        /usr/bin/python3 - "$dir" "$r" "$algo" >>"$out" <<'PY' || exit 1
import h5py, json, sys
import numpy as np
d, rnd, algo = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = h5py.File(d + "/metrics.h5", "r")
el = m["elapsed"][()]
it = np.diff(np.concatenate([[0.0], el]))[1:]
row = {"impl": "rlhf", "algo": algo, "round": rnd, "iterations": len(it), "iter_s": float(np.median(it))}
for k in ["t_generate", "t_score", "t_learn", "t_wait", "length"]:
    row[k] = float(np.median(m[k][1:]))
print(json.dumps(row))
f = h5py.File(d + "/rollouts.h5", "r")
g, pl, pr = f["group"][()], f["prompt_len"][()], f["prompt"][()]
with open(d + ".prompts", "w") as out:
    seen = set()
    for i in np.argsort(g, kind="stable"):
        if g[i] not in seen:
            seen.add(g[i])
            out.write(json.dumps(pr[i, :pl[i]].tolist()) + "\n")
PY
        for setting in "2 1" "1 2"; do
            read -r tt ob <<<"$setting"
            echo "rl_vs_torch: round $r, $algo: torch, $tt torch thread(s), OpenBLAS $ob" >&2
            env $MALLOC OPENBLAS_NUM_THREADS=$ob /usr/bin/python3 "$ROOT/tests/bench/torch_rl_bench.py" --algo "$algo" \
                --vocab "$V" --d "$D" --layers "$NL" --heads "$NH" --n-ctx "$NCTX" $flags --prompts $dir.prompts \
                --iterations $((ITERS - 1)) --warmup 1 --threads "$tt" --json >$dir.torch.json ||
                { echo "rl_vs_torch: torch_rl_bench.py failed" >&2; exit 1; }
            /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['round']=int(sys.argv[2]); print(json.dumps(r))" \
                $dir.torch.json "$r" >>"$out"
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
[ -n "${RL_JSON:-}" ] && cat "$out" >>"$RL_JSON"

/usr/bin/python3 - "$out" "$GRPO_SET" "$PPO_SET" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sets = {"grpo": sys.argv[2], "ppo": sys.argv[3]}
desc = {"grpo": "rlhf grpo (advantage grpo, gold verifier | torch: a python rule reward, KL k3 in the loss, "
                "seq-mean-token-mean, no value model)",
        "ppo": "rlhf ppo (gae, value model from the reward model, reward model score, KL k1 in the reward, "
               "token-mean, whitened advantages)"}
r0 = next(r for r in rows if r["impl"] == "torch")
print()
print("one RL iteration against torch: random models of vocab %d, %d layers, %d heads, width %d, context %d "
      "(%.1fM parameters)" % (r0["vocab"], r0["layers"], r0["heads"], r0["d"], r0["n_ctx"], r0["params"] / 1e6))
print("  rlhf: 1 learner (2 OpenBLAS threads), 1 rewarder, 1 actor (1 thread each), on-policy; torch: one process,")
print("  2 threads, the faster thread setting per phase; a run's median over its iterations (first left out),")
print("  the fastest of %d round(s) for each side" % max(r["round"] for r in rows))
phases = [("generate", "t_generate"), ("reward", "t_score"), ("learn", "t_learn"), ("iteration", "iter_s")]
for algo in [a for a in ["grpo", "ppo"] if any(r["algo"] == a for r in rows)]:
    ours = [r for r in rows if r["impl"] == "rlhf" and r["algo"] == algo]
    tor = [r for r in rows if r["impl"] == "torch" and r["algo"] == algo]
    print()
    print("%s: %s" % (algo, desc[algo]))
    print("  %s" % sets[algo])
    print("  %-10s %10s %10s %11s" % ("phase", "rlhf s", "torch s", "torch/rlhf"))
    for name, k in phases:
        c = min(r[k] for r in ours)      # the fastest round
        best = min(r[k] for r in tor)    # the fastest round and thread setting
        print("  %-10s %10.3f %10.3f %10.2fx" % (name, c, best, best / c))
    c_sum = min(r["t_generate"] + r["t_score"] + r["t_learn"] for r in ours)
    print("  %-10s %10.3f %10s   (rlhf: the learner waiting for rollouts: generate + reward, overlapped, + messages)"
          % ("wait", min(r["t_wait"] for r in ours), ""))
    print("  rlhf's phases add up to %.3f s; its iteration is shorter where generate and reward overlap" % c_sum)
    print("  mean response tokens: rlhf %.1f, torch %.1f" % (st.median(r["length"] for r in ours),
                                                             st.median(r["length"] for r in tor)))
    for r in ours:
        print("  rlhf round %d: generate %.3f, reward %.3f, learn %.3f, wait %.3f, iteration %.3f s"
              % (r["round"], r["t_generate"], r["t_score"], r["t_learn"], r["t_wait"], r["iter_s"]))
    for r in tor:
        print("  torch round %d: torch threads %s, OpenBLAS threads %s: generate %.3f, reward %.3f, learn %.3f, "
              "iteration %.3f s" % (r["round"], r["torch_threads"], r["openblas_threads"], r["t_generate"],
                                   r["t_score"], r["t_learn"], r["iter_s"]))
PY
echo "  load average before $load_before, after $load_after ($(nproc) cores; the machine may be shared)"
