#!/bin/bash
# `make bench`: the C model against the same model in PyTorch, measured in
# this run on this machine. Torch runs at its best: both thread settings
# (torch 2 threads + OpenBLAS 1, torch 1 + OpenBLAS 2) with glibc's malloc
# told not to return memory (page faults on big temporaries otherwise
# dominate), and the faster of the two is quoted. Prints a table of ratios.
# Speed is never asserted: this is a report, not a test.
#
# Further sections, each printing its own table (or a note on stderr saying
# why it was skipped): llmc (our step against llm.c's train_gpt2.c; needs
# LLMC_DIR, see tests/bench/llmc.sh), snapshot (policy snapshot transfer
# against a raw MPI send; needs mpirun), ppo (rollouts/s and iteration time
# split of PPO and GRPO with 1, 2, 3 actors; needs mpirun), plan (rlhf
# plan's predicted iteration time against the measured one, 1-3 actors;
# needs mpirun), memory (peak resident set of each role against what it
# needs, with and without value and reference models), rl (one GRPO and one
# PPO iteration of the job against the same iteration in torch, per phase;
# needs mpirun and torch), decode (the decoding step's achieved GB/s beside
# STREAM copy/triad bandwidth measured in the same process), group (G = 8
# samples of one 48-token prompt, 16 new tokens, against torch's loop on the
# prompt repeated 8 times, prefill logits at the last position only, as
# ours). BENCH_SECTIONS picks sections (default: "model decode group llmc
# snapshot ppo plan memory rl"; "model" is the comparison with torch).
set -u
cd "$(dirname "$0")/../.."
: "${BENCH_DIR:=build/opt/bench}"
# vocab,d,layers,heads,T,batch[,steps] [;...]: issue 7's three configurations
# and GPT-2 small (124M) at T 128, batch 8, in fewer steps
CONFIGS=${BENCH_CONFIGS:-"257,256,4,4,128,8;50257,256,4,4,128,8;257,512,8,8,256,4;50257,768,12,12,128,8,3"}
STEPS=${BENCH_STEPS:-10}
MALLOC="MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000"
SECTIONS=" ${BENCH_SECTIONS:-model decode group llmc snapshot ppo plan memory rl} "
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# ---- model: the C model against torch ----------------------------------------
if [[ $SECTIONS == *" model "* ]]; then
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "bench: python3-torch is missing (RLHF_BENCH_DEPS=1 launch/install-deps.sh); C numbers only" >&2
    NOTORCH=1
fi

for cfg in ${CONFIGS//;/ }; do
    IFS=, read -r V D L H T B S <<<"$cfg"
    S=${S:-$STEPS}
    echo "bench: vocab $V d $D layers $L heads $H T $T batch $B ($S steps)" >&2
    c=$("$BENCH_DIR/bench_gpt" "$V" "$D" "$L" "$H" "$T" "$B" "$S")
    echo "$c" >>"$out"
    [ -n "${NOTORCH:-}" ] && continue
    for setting in "2 1" "1 2"; do
        read -r tt ob <<<"$setting"
        env $MALLOC OPENBLAS_NUM_THREADS=$ob /usr/bin/python3 tests/bench/torch_bench.py --vocab "$V" --d "$D" \
            --layers "$L" --heads "$H" --T "$T" --batch "$B" --steps "$S" --gen-new 128 --gen-batch 8 \
            --threads "$tt" --json >>"$out"
        env $MALLOC OPENBLAS_NUM_THREADS=$ob /usr/bin/python3 tests/bench/torch_bench.py --vocab "$V" --d "$D" \
            --layers "$L" --heads "$H" --T "$T" --batch "$B" --steps 2 --warmup 1 --gen-new 128 --gen-batch 1 \
            --threads "$tt" --json | sed 's/"impl": "torch"/"impl": "torch-b1"/' >>"$out"
    done
done

/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
c_rows = [r for r in rows if r["impl"] == "c"]
print()
print("%-28s %12s %12s %8s" % ("measure", "C", "torch best", "ratio"))
for c in c_rows:
    key = lambda r: (r.get("vocab"), r.get("d"), r.get("layers"), r.get("T"), r.get("batch"))
    t8 = [r for r in rows if r["impl"] == "torch" and key(r) == key(c)]
    t1 = [r for r in rows if r["impl"] == "torch-b1" and key(r) == key(c)]
    print("config: vocab %d, d %d, %d layers, %d heads, T %d, batch %d (%d params)" %
          (c["vocab"], c["d"], c["layers"], c["heads"], c["T"], c["batch"], c["params"]))
    def line(name, cv, tv):
        ratio = "%.2fx" % (cv / tv) if tv else "-"
        print("  %-26s %12.0f %12s %8s" % (name, cv, "%.0f" % tv if tv else "-", ratio))
    best = lambda rs, k: max((r[k] for r in rs if k in r), default=0)
    line("train tokens/s", c["train_tokens_per_s"], best(t8, "train_tokens_per_s"))
    line("generate b8 new tokens/s", c["gen_b8_tokens_per_s"], best(t8, "gen_tokens_per_s"))
    line("generate b1 new tokens/s", c["gen_b1_tokens_per_s"], best(t1, "gen_tokens_per_s"))
    if "gen_b1_unpacked_tokens_per_s" in c:  # weights read in place, without gpt_pack_decode
        line("  b1, weights not packed", c["gen_b1_unpacked_tokens_per_s"], best(t1, "gen_tokens_per_s"))
    for r in t8:
        print("  torch: torch threads %s, OpenBLAS threads %s: train %.0f tokens/s, generate b8 %.0f tokens/s"
              % (r.get("torch_threads"), r.get("openblas_threads"), r["train_tokens_per_s"], r["gen_tokens_per_s"]))
    if c.get("gen_b1_tokens_per_s") and "gen_b1_bound_tokens_per_s" in c:
        print("  %-26s %12.0f   (b1 time per token / time to read the weights once: %.2f;"
              " memory read %.1f GB/s, weights %.1f MB)" %
              ("generate b1 streaming bound", c["gen_b1_bound_tokens_per_s"],
               c["gen_b1_bound_tokens_per_s"] / c["gen_b1_tokens_per_s"], c["read_gbs"], c["weights_mb"]))
    print("  %-26s %12.1f   (sgemm alone at the step's shapes: %.1f GFLOP/s)" %
          ("train GFLOP/s", c["train_gflops"], c["sgemm_gflops"]))
    print("  %-26s %11.0f%%   (time of the step's products in bare cblas_sgemm / step time)" %
          ("share of sgemm limit", 100 * c["share_of_sgemm"]))
PY
fi

# ---- decode: the decoding step against the memory bandwidth ------------------
if [[ $SECTIONS == *" decode "* ]]; then
echo "bench: decoding step bandwidth (vocab 50257, d 256, 4 layers; batch 1 and 8)" >&2
"$BENCH_DIR/decode_bw" 50257 256 4 4 1 8 >"$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print()
print("decoding step vs memory bandwidth (same process, %d threads; STREAM arrays %d MB each)"
      % (rows[0]["threads"], rows[0]["stream_array_mb"]))
print("%-7s %9s %9s %11s %11s %11s %9s %12s" % ("batch", "step ms", "tok/s", "read MB", "decode GB/s",
                                                  "STREAM copy", "triad", "decode/copy"))
for r in rows:
    print("%-7d %9.2f %9.0f %11.1f %11.1f %11.1f %9.1f %11.2fx" %
          (r["batch"], r["step_ms"], r["tokens_per_s"], r["step_weights_mb"] + r["step_kv_mb"], r["decode_gbs"],
           r["stream_copy_gbs"], r["stream_triad_gbs"], r["decode_gbs"] / r["stream_copy_gbs"]))
print("  (read MB: every weight once, the head as packed panels, plus the KV cache read; read-only sum: %s GB/s)"
      % ", ".join("%.1f" % r["read_gbs"] for r in rows))
PY
fi

# ---- group: G samples of one prompt against torch's repeated-prompt loop ------
if [[ $SECTIONS == *" group "* ]]; then
echo "bench: group generation (G 8, prompt 48, 16 new tokens, vocab 50257, d 256, 4 layers)" >&2
"$BENCH_DIR/group_gen" 50257 256 4 4 8 48 16 5 >"$out"
if [ -z "${NOTORCH:-}" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
    for setting in "2 1" "1 2"; do
        read -r tt ob <<<"$setting"
        env $MALLOC OPENBLAS_NUM_THREADS=$ob /usr/bin/python3 tests/bench/torch_bench.py --vocab 50257 --d 256 \
            --layers 4 --heads 4 --T 64 --batch 8 --skip-train --gen-batch 8 --gen-repeat --prompt-len 48 \
            --gen-new 16 --sample --prefill-last --gen-reps 5 --threads "$tt" --json >>"$out"
    done
fi
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
c = next(r for r in rows if r["impl"] == "c")
t = [r for r in rows if r["impl"] == "torch"]
best = max((r["gen_tokens_per_s"] for r in t), default=0)
print()
print("group generation: G %d samples of one %d-token prompt, %d new tokens each, sampled (new tokens/s, prefill included)"
      % (c["group"], c["prompt_len"], c["gen_new"]))
print("  %-44s %10.0f" % ("C, gen_run (shared prefill)", c["gen_tokens_per_s"]))
print("  %-44s %10.0f" % ("C, gen_run with prefill_each = 1", c["gen_prefill_each_tokens_per_s"]))
for r in t:
    print("  %-44s %10.0f" % ("torch, prompt repeated: torch %s threads, OpenBLAS %s" %
                               (r["torch_threads"], r["openblas_threads"]), r["gen_tokens_per_s"]))
if best:
    print("  %-44s %9.2fx" % ("ratio C / torch best", c["gen_tokens_per_s"] / best))
PY
fi

# ---- llmc: training step against llm.c (skipped without LLMC_DIR) -------------
if [[ $SECTIONS == *" llmc "* ]]; then
    BENCH_DIR=$BENCH_DIR bash tests/bench/llmc.sh
fi

# ---- snapshot: learner -> actor weight transfer against raw MPI_Send ----------
if [[ $SECTIONS == *" snapshot "* ]]; then
    BENCH_DIR=$BENCH_DIR bash tests/bench/snapshot.sh
fi

# ---- ppo: rollouts/s and iteration split of PPO and GRPO with 1, 2, 3 actors ---
if [[ $SECTIONS == *" ppo "* ]]; then
    RLHF_BIN=${RLHF_BIN:-build/opt/rlhf} bash tests/bench/ppo_scaling.sh
fi

# ---- plan: the capacity model's prediction against the measured iteration -----
if [[ $SECTIONS == *" plan "* ]]; then
    RLHF_BIN=${RLHF_BIN:-build/opt/rlhf} bash tests/bench/plan.sh
fi

# ---- memory: peak resident set of each role against its needs ----------------
if [[ $SECTIONS == *" memory "* ]]; then
    RLHF_BIN=${RLHF_BIN:-build/opt/rlhf} bash tests/bench/memory.sh
fi

# ---- rl: one GRPO and one PPO iteration against torch, per phase --------------
if [[ $SECTIONS == *" rl "* ]]; then
    RLHF_BIN=${RLHF_BIN:-build/opt/rlhf} bash tests/bench/rl_vs_torch.sh
fi
