#!/bin/bash
# `make demo`: the whole pipeline on the built-in arithmetic task, on one
# machine: data -> pretrain -> SFT -> reward model -> DPO -> distributed PPO
# against the reward model and GRPO on the gold verifier (each 1 learner, 1
# rewarder, 2 actors under mpirun) -> evaluation -> plots, then a table of
# SFT vs DPO vs PPO vs GRPO (gold score, RM score, KL to SFT, length; mean
# +- s.e. over held-out prompts), the SFT model's pass@k beside it, a few
# responses side by side, and where every file is. About 6-10 minutes on 2
# cores. DEMO_SIZE=small runs a
# reduced version in about 2 minutes (used by CI). Rerunning resumes: each
# stage skips itself once its final.h5 exists.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/out/demo}
SIZE=${DEMO_SIZE:-full}
C=$ROOT/launch/configs/demo
R=${RLHF_BIN:-$ROOT/bin/rlhf}   # tests pass their own build
case $R in /*) ;; *) R=$ROOT/$R ;; esac
step() { printf '\n=== %s\n' "$*"; }
t0=$(date +%s)

step "dependencies and build"
bash launch/install-deps.sh
[ -n "${RLHF_BIN:-}" ] || make -j2 bin/rlhf
mkdir -p "$OUT"
cd "$OUT"

MPIRUN="mpirun"
[ "$(id -u)" = 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
[ "$(nproc)" -lt 4 ] && MPIRUN="$MPIRUN --oversubscribe"   # 4 PPO ranks; waiting ranks sleep

if [ "$SIZE" = small ]; then
    N=800 PRE="epochs=2" SFT="epochs=2" RMX="norm_samples=64" DPOX="" PPO="iterations=12" GRPO="iterations=12"
    EVALN=200 PASSN=40
else
    N=4000 PRE="" SFT="" RMX="" DPOX="" PPO="" GRPO="" EVALN=500 PASSN=200
fi

# run STAGE DIR ARGS...: skips a stage that already finished
run() {
    local stage=$1 dir=$2; shift 2
    if [ -e "$dir/final.h5" ]; then echo "$stage: $dir/final.h5 exists, skipping"; return; fi
    local s=$(date +%s)
    "$@"
    echo "$stage: $(( $(date +%s) - s )) s" >> times.txt
}

step "data: the built-in arithmetic task (n = $N)"
[ -e data/README.txt ] || $R data arith --out data --n $N --seed 1
cat data/prefs.jsonl data/rankings.jsonl > data/rm_train.jsonl

step "pretrain: a 4-layer byte-level GPT on arithmetic text"
run pretrain pretrain $R pretrain --config $C/pretrain.conf out_dir=pretrain $PRE
step "SFT on the noisy teacher's demonstrations"
run sft sft $R sft --config $C/sft.conf init=pretrain/final.h5 out_dir=sft $SFT
step "reward model (pairs + K-wise rankings)"
run rm rm $R rm --config $C/rm.conf init=sft/final.h5 out_dir=rm train_data=data/rm_train.jsonl $RMX
step "DPO against the frozen SFT model"
run dpo dpo $R dpo --config $C/dpo.conf init=sft/final.h5 out_dir=dpo $DPOX
step "PPO: 1 learner, 1 rewarder, 2 actors ($MPIRUN -n 4)"
run ppo ppo $MPIRUN -n 4 $R ppo --config $C/ppo.conf policy=sft/final.h5 reward_model=rm/final.h5 \
    prompts=data/rl_prompts.jsonl out_dir=ppo $PPO
step "GRPO on the gold verifier: no reward model, no value model ($MPIRUN -n 4)"
run grpo grpo $MPIRUN -n 4 $R grpo --config $C/grpo.conf policy=sft/final.h5 prompts=data/rl_prompts.jsonl \
    out_dir=grpo $GRPO

step "evaluation on $EVALN held-out prompts (same prompts and seed for every policy)"
for p in sft dpo ppo grpo; do
    $R eval --policy $p/final.h5 --prompts data/eval_prompts.jsonl --n $EVALN --ref sft/final.h5 \
        --rm rm/final.h5 --seed 11 --json --samples eval_$p.jsonl > eval_$p.json
done
# what the SFT model can do: in k tries (pass@k) and at its mode (greedy)
$R eval --policy sft/final.h5 --prompts data/eval_prompts.jsonl --n $PASSN --pass-k 1,4,16 --seed 11 --json \
    > passk_sft.json
$R eval --policy sft/final.h5 --prompts data/eval_prompts.jsonl --n $EVALN --greedy --json > greedy_sft.json

step "plots"
if $R plot --help >/dev/null 2>&1; then $R plot . --out plots || echo "(plots failed; see above)"; fi

step "results"
/usr/bin/python3 - <<'PY'
import json
rows = [("SFT", "sft"), ("DPO", "dpo"), ("PPO", "ppo"), ("GRPO", "grpo")]
def cell(d, k, f="%.3f"):
    return (f + " +- " + f) % (d[k]["mean"], d[k]["se"]) if k in d else "-"
print("%-5s %-19s %-19s %-19s %-19s" % ("", "gold score", "RM score", "KL to SFT (nats)", "length (tokens)"))
res = {}
for name, p in rows:
    d = json.load(open(f"eval_{p}.json")); res[p] = d
    print("%-5s %-19s %-19s %-19s %-19s" % (name, cell(d, "gold"), cell(d, "rm"), cell(d, "kl"), cell(d, "length", "%.2f")))
print("\nfraction correct: " + ", ".join("%s %.3f" % (n, res[p]["correct"]["mean"]) for n, p in rows))
print("fraction offensive: " + ", ".join("%s %.3f" % (n, res[p]["offensive"]["mean"]) for n, p in rows))
pk, gr = json.load(open("passk_sft.json")), json.load(open("greedy_sft.json"))
print("SFT in k tries: " + ", ".join("pass@%d %.3f" % (k, pk["pass@%d" % k]["mean"]) for k in (1, 4, 16)) +
      "; greedy %.3f correct" % gr["correct"]["mean"])
samples = {p: [json.loads(l) for l in open(f"eval_{p}.jsonl")] for _, p in rows}
print("\nsamples (same prompts):")
for i in range(5):
    print("  " + samples["sft"][i]["prompt"].replace("\n", " "))
    for n, p in rows:
        s = samples[p][i]
        print("      %-4s %-40r gold %5.2f" % (n, s["response"], s.get("gold", float("nan"))))
PY
cat <<EOF2

files (in $OUT):
  data/                 the task: pretrain.txt, sft*.jsonl, prefs*.jsonl, rankings.jsonl, *_prompts.jsonl
  pretrain/ sft/ rm/ dpo/   final.h5 checkpoints, metrics.h5 and eval.h5 per stage
  ppo/                  final.h5 (policy), value.h5, rollouts.h5 (one row per sample), metrics.h5
  grpo/                 final.h5 (policy), rollouts.h5 (group id, verifier components), metrics.h5
  eval_*.json[l]        evaluation reports and every sampled response
  passk_sft.json        the SFT model's pass@1, 4, 16; greedy_sft.json its greedy evaluation
  plots/                PNG plots (rlhf plot)
  times.txt             wall time of each stage
inspect: bin/rlhf inspect $OUT/ppo/rollouts.h5
EOF2
cat times.txt
echo "demo: $(( $(date +%s) - t0 )) s in all"
