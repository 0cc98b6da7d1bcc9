#!/bin/bash
# memory.sh — peak resident set of each role against what its model state
# needs. Runs a short pretraining job (the trainer) and two short PPO jobs with
# 1 learner, 1 rewarder and 1 actor, every process under /usr/bin/time -v
# ("Maximum resident set size"), for each model configuration, and computes
# what the role needs from the model configuration:
#   trainer   params 4 B + grads 4 B + AdamW m, v 8 B per parameter, and the
#             activations of a (micro_batch, n_ctx) step (common/model/gpt.c
#             acts_layout, forward and backward scratch)
#   learner   the same for the policy (LM head) and the value model (scalar
#             head), activations at (micro_batch, longest prompt + response)
#   learner-cf  the critic-free learner (advantage = grpo, group_size 8): the
#             policy alone, no value model (a second PPO job, below)
#   rewarder  inference only: reference policy and reward model parameters,
#             forward activations of one order (chunk rows)
#   rewarder-rm  the rewarder without a reference model (kl_in = none,
#             reward = rm): the reward model alone (the same second job)
#   actor     inference only: policy parameters, KV cache (keys with rows
#             rounded to 16), the sampler's logits (2 x chunk x V), the
#             cached forward's scratch for the prompt rows, and the logits
#             it writes (one row of V per sequence: only the last prompt
#             position's logits are wanted, in the scratch and prefill output)
# The second job (advantage=grpo group_size=8 kl_in=none reward=rm) differs
# from the first only in what the learner and rewarder hold. Sequence lengths
# come from each run's own rollout log. Gradients of the
# inference roles are allocated zeroed (calloc) and never touched, so they are
# not resident and not counted. Each role is also run with a tiny model of the
# same vocabulary: its peak minus its own need is the fixed cost of the
# process (libraries, MPI, HDF5, tokenizer), shown separately. Aim: measured
# / need <= 1.3. A report, never a test.
#
#   RLHF_BIN=build/opt/rlhf tests/bench/memory.sh
# Environment: MEM_CONFIGS ("tokenizer,n_layer,n_head,n_embd,n_ctx[;...]",
# tokenizer byte or gpt2; default "byte,4,4,256,128;gpt2,4,4,256,128;gpt2,12,12,768,128":
# the last is GPT-2 small's shape at context 128),
# MEM_JSON (append the JSON lines there), KEEP=1 keeps the scratch directory.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
RLHF=${RLHF_BIN:-build/opt/rlhf}
RLHF=$(cd "$(dirname "$RLHF")" && pwd)/$(basename "$RLHF")
[ -x "$RLHF" ] || { echo "memory: $RLHF is missing (make)" >&2; exit 1; }
if [ ! -x /usr/bin/time ]; then
    echo "memory: skipped: /usr/bin/time is missing (apt-get install time)" >&2
    exit 0
fi
if ! /usr/bin/python3 -c "import h5py" 2>/dev/null; then
    echo "memory: skipped: python3-h5py is missing (reads the rollout log)" >&2
    exit 0
fi
NOMPI=
command -v mpirun >/dev/null || { NOMPI=1; echo "memory: mpirun is missing: trainer only" >&2; }
CONFIGS=${MEM_CONFIGS:-"byte,4,4,256,128;gpt2,4,4,256,128;gpt2,12,12,768,128"}
MPIRUN="mpirun"
[ "$(id -u)" = 0 ] && MPIRUN="mpirun --allow-run-as-root"
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1

T=$(mktemp -d /tmp/rlhf-bench-mem-XXXXXX)
[ "${KEEP:-0}" = 1 ] && echo "memory: scratch kept in $T" >&2 || trap 'rm -rf "$T"' EXIT
cd "$T"
"$RLHF" data arith --out data --n 400 --seed 5 >/dev/null 2>&1 || { echo "memory: rlhf data failed" >&2; exit 1; }
# every rank under /usr/bin/time, one report per rank
cat >timed.sh <<'EOF'
#!/bin/sh
exec /usr/bin/time -v -o "$MEM_OUT.${OMPI_COMM_WORLD_RANK:-0}" "$@"
EOF
chmod +x timed.sh

TRAIN="batch_size=16 micro_batch=8 max_steps=3 warmup_steps=1 log_every=1000 ckpt_every=1000 dropout=0"
PPO="prompts=data/rl_prompts.jsonl normalize_reward=false batch_size=16 chunk=8 minibatch=8 micro_batch=8"
PPO="$PPO max_new=32 ppo_epochs=1 iterations=2 log_samples=0 ckpt_every=1000"
out=$T/mem.json

# run_roles NAME TOK L H D CTX: trainer and PPO roles of one model; appends
# one JSON line per role.
run_roles() {
    local name=$1 tokname=$2 L=$3 H=$4 D=$5 CTX=$6 tokarg="" tokkey="tokenizer=byte"
    if [ "$tokname" = gpt2 ]; then
        tokarg="--tokenizer $ROOT/tests/fixtures/gpt2-bpe"
        tokkey="tokenizer=$ROOT/tests/fixtures/gpt2-bpe"
    fi
    local dir=$T/$name
    mkdir -p "$dir"
    echo "memory: $name: $tokname vocabulary, $L layers, $H heads, width $D, context $CTX" >&2
    MEM_OUT=$dir/trainer ./timed.sh "$RLHF" pretrain out_dir="$dir/pt" train_data=data/pretrain.txt $tokkey \
        n_layer=$L n_head=$H n_embd=$D n_ctx=$CTX $TRAIN >"$dir/trainer.log" 2>&1 ||
        { echo "memory: pretrain failed: $(tail -2 "$dir/trainer.log")" >&2; return 1; }
    [ -n "$NOMPI" ] && return 0
    "$RLHF" init --out "$dir/policy.h5" $tokarg --n-layer "$L" --n-head "$H" --n-embd "$D" --n-ctx "$CTX" >/dev/null 2>&1 &&
        "$RLHF" init --out "$dir/rm.h5" --head scalar $tokarg --n-layer "$L" --n-head "$H" --n-embd "$D" --n-ctx "$CTX" \
            --seed 2 >/dev/null 2>&1 || { echo "memory: rlhf init failed" >&2; return 1; }
    MEM_OUT=$dir/ppo $MPIRUN -n 3 -x MEM_OUT ./timed.sh "$RLHF" ppo $PPO policy="$dir/policy.h5" \
        reward_model="$dir/rm.h5" out_dir="$dir/run" >"$dir/ppo.log" 2>&1 ||
        { echo "memory: ppo failed: $(tail -3 "$dir/ppo.log")" >&2; return 1; }
    # critic-free learner, rewarder without a reference: no value model, no reference model
    MEM_OUT=$dir/cf $MPIRUN -n 3 -x MEM_OUT ./timed.sh "$RLHF" ppo $PPO advantage=grpo group_size=8 kl_in=none \
        reward=rm policy="$dir/policy.h5" reward_model="$dir/rm.h5" out_dir="$dir/run-cf" >"$dir/cf.log" 2>&1 ||
        { echo "memory: ppo (critic-free, kl_in=none) failed: $(tail -3 "$dir/cf.log")" >&2; return 1; }
}

for cfg in ${CONFIGS//;/ }; do
    IFS=, read -r TOK L H D CTX <<<"$cfg"
    run_roles "$TOK-$L-$H-$D-$CTX" "$TOK" "$L" "$H" "$D" "$CTX" || exit 1
    run_roles "$TOK-tiny" "$TOK" 1 1 8 "$CTX" || exit 1
    /usr/bin/python3 - "$T" "$TOK" "$L" "$H" "$D" "$CTX" >>"$out" <<'PY' || exit 1
import h5py, json, os, re, sys
T, tok, L, H, D, ctx = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
V = 50257 if tok == "gpt2" else 257
MICRO, CHUNK, MAX_NEW, PREFILL_ROWS = 8, 8, 32, 512   # as in memory.sh's settings and common/model/generate.c

def params(L, C, ctx, scalar):
    """gpt_count_params: wte, wpe, blocks, final LayerNorm; scalar head adds score.weight + bias."""
    return V * C + ctx * C + L * (12 * C * C + 13 * C) + 2 * C + (C + 1 if scalar else 0)

def acts(L, NH, C, B, Tn, out_cols, backward):
    """Floats of common/model/gpt.c acts_layout for (B, T), without dropout masks."""
    N = B * Tn
    f = N * C + L * (18 * N * C + 4 * N + N * NH * Tn) + N * C + 2 * N + N * out_cols
    return f + (15 * N * C + 2 * Tn * Tn if backward else 0)

def kv_stride(n):
    return (n + 15) // 16 * 16

def peak_kb(path):
    for line in open(path):
        if "Maximum resident set size" in line:
            return int(line.split(":")[1])
    raise SystemExit("memory: no peak in " + path)

def need(L, NH, C, run):
    """Bytes each role needs, from the configuration and the run's rollout log."""
    P, Pv = params(L, C, ctx, 0), params(L, C, ctx, 1)
    r = {"trainer": 16 * P + 4 * acts(L, NH, C, MICRO, ctx, V, 1)}
    log = os.path.join(run, "run", "rollouts.h5")
    if not os.path.exists(log):
        return r
    def lengths(log):
        f = h5py.File(log, "r")
        plen, rlen = f["prompt_len"][()], f["response_len"][()]
        seq = int((plen + rlen).max())            # longest prompt + response
        # learner/ppo.c pack(): inputs stop before the last token; the reward model sees the end token too
        return plen, seq - 1, min(ctx, seq + 1)
    plen, t_learn, t_rm = lengths(log)
    r["learner"] = 16 * (P + Pv) + 4 * (acts(L, NH, C, MICRO, t_learn, V, 1) + acts(L, NH, C, MICRO, t_learn, 1, 1))
    r["rewarder"] = 4 * (P + Pv) + 4 * (acts(L, NH, C, CHUNK, t_learn, V, 0) + acts(L, NH, C, CHUNK, t_rm, 1, 0))
    log_cf = os.path.join(run, "run-cf", "rollouts.h5")
    if os.path.exists(log_cf):
        _, t_learn_cf, t_rm_cf = lengths(log_cf)
        r["learner-cf"] = 16 * P + 4 * acts(L, NH, C, MICRO, t_learn_cf, V, 1)      # the policy alone
        r["rewarder-rm"] = 4 * Pv + 4 * acts(L, NH, C, CHUNK, t_rm_cf, 1, 0)        # the reward model alone
    max_len = min(ctx, int(plen.max()) + MAX_NEW)
    rows = min(int(sum(sorted(plen)[-CHUNK:])), PREFILL_ROWS)   # prefill rows of the longest order
    kv = L * CHUNK * C * (kv_stride(max_len) + max_len)
    scratch = rows * (16 * C + NH * kv_stride(max_len)) + 2 * rows   # logits part: wanted rows only, below
    r["actor"] = 4 * (P + kv + 2 * CHUNK * V + scratch + 2 * CHUNK * V)
    return r

def measured(run):
    m = {"trainer": peak_kb(os.path.join(run, "trainer.0")) * 1024}
    for rank, role in enumerate(["learner", "rewarder", "actor"]):
        p = os.path.join(run, "ppo.%d" % rank)
        if os.path.exists(p):
            m[role] = peak_kb(p) * 1024
    for rank, role in enumerate(["learner-cf", "rewarder-rm"]):
        p = os.path.join(run, "cf.%d" % rank)
        if os.path.exists(p):
            m[role] = peak_kb(p) * 1024
    return m

big = os.path.join(T, "%s-%d-%d-%d-%d" % (tok, L, H, D, ctx))
tiny = os.path.join(T, "%s-tiny" % tok)
nb, mb = need(L, H, D, big), measured(big)
nt, mt = need(1, 1, 8, tiny), measured(tiny)
for role in ["trainer", "learner", "learner-cf", "rewarder", "rewarder-rm", "actor"]:
    if role not in mb:
        continue
    fixed = mt[role] - nt[role]
    print(json.dumps({"impl": "memory", "tokenizer": tok, "vocab": V, "layers": L, "heads": H, "d": D, "n_ctx": ctx,
                      "params": params(L, D, ctx, 0), "role": role, "need_mb": nb[role] / 1e6,
                      "peak_mb": mb[role] / 1e6, "fixed_mb": fixed / 1e6, "ratio": mb[role] / nb[role],
                      "ratio_above_fixed": (mb[role] - fixed) / nb[role]}))
PY
done
[ -n "${MEM_JSON:-}" ] && cat "$out" >>"$MEM_JSON"

/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print()
print("peak resident set per role against what its model state needs (aim: <= 1.3x)")
print("%-34s %-11s %10s %10s %9s %8s %14s" % ("model", "role", "need MB", "peak MB", "ratio", "fixed MB", "(peak-fixed)/need"))
for r in rows:
    model = "%s vocab, L%d H%d d%d ctx%d (%.1fM)" % (r["tokenizer"], r["layers"], r["heads"], r["d"], r["n_ctx"], r["params"] / 1e6)
    print("%-34s %-11s %10.1f %10.1f %8.2fx %8.1f %13.2fx" % (model, r["role"], r["need_mb"], r["peak_mb"], r["ratio"],
                                                          r["fixed_mb"], r["ratio_above_fixed"]))
print("  need: params 4 B + grads 4 B + AdamW 8 B per parameter and acts_layout activations for the training roles;")
print("  parameters, forward activations, KV cache and logits for the inference roles. fixed: the same role's peak")
print("  with a 1-layer width-8 model of the same vocabulary, less that model's need (libraries, MPI, HDF5, tokenizer).")
print("  learner-cf: critic-free learner (advantage=grpo group_size=8): the policy's state alone, no value model;")
print("  rewarder-rm: rewarder without a reference model (kl_in=none, reward=rm): the reward model alone.")
print("  not in the actor's need: its packed copy of the unembedding and the layers' matrices for batched decoding")
print("  (gpt_pack_decode, made once per snapshot; ~(V x C + 12 L C^2) floats): %s" %
      ", ".join("%s vocab L%d %.1f MB" % (t, l, 4 * (v * d + 12 * l * d * d) / 1e6)
                for t, v, d, l in sorted({(r["tokenizer"], r["vocab"], r["d"], r["layers"]) for r in rows})))
PY
