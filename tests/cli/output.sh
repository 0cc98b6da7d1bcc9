#!/bin/bash
# End-to-end tests of what commands print and load (issue 14, items 9, 13,
# 15, 17): JSON output stays valid UTF-8 whatever bytes a prompt or a model
# produces; a failed write to stdout (`> /dev/full`) is an error for every
# printing subcommand; NaN/Inf weights and HDF5 external links are refused
# when a checkpoint or Hugging Face directory is loaded, naming the tensor or
# link, with the files given left byte-identical; prompts are named FILE:LINE
# in generate and eval alike. Prints "ok   output: NAME" / "FAIL output: NAME".
set -u
SUITE=output
. "$(dirname "$0")/../lib.sh"
scratch output
export OPENBLAS_NUM_THREADS=1
ERR_ALONE=1 # every refusal here is one line and nothing else

"$RLHF" init --out "$T/m.h5" --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 --seed 3 2>/dev/null
"$RLHF" init --out "$T/rm.h5" --head scalar --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 --seed 4 2>/dev/null
[ -e "$T/m.h5" ] && [ -e "$T/rm.h5" ] && pass "tiny models" || fail "tiny models"

# valid_json FILE [PYTHON-CONDITION]: every line of FILE is JSON in strict
# UTF-8 and the condition (on `rows`, the parsed lines) holds
valid_json() {
    "$PY" -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8', errors='strict')]
assert rows and (${2:-True}), rows" "$1" 2>&1
}

# ---- item 9: invalid UTF-8 never crashes JSON output ------------------------------
if "$RLHF" generate --model "$T/m.h5" --prompt "$(printf 'a\xff\xfe')" --jsonl --greedy --max-new 4 >"$T/g1" 2>"$T/err" &&
   msg=$(valid_json "$T/g1" "rows[0]['prompt'] == 'a\ufffd\ufffd'"); then
    pass "generate --jsonl --prompt with bytes that are not UTF-8: U+FFFD"
else fail "generate --jsonl --prompt with bytes that are not UTF-8" "exit $?: $(head -3 "$T/err") ${msg:-}"; fi
expect_ok "generate (text) --prompt with bytes that are not UTF-8" \
    "$RLHF" generate --model "$T/m.h5" --prompt "$(printf '\xff')" --greedy --max-new 4
printf '{"prompt": "a\xff\xfe"}\n' >"$T/raw.jsonl"
expect_err "generate --prompts file with raw invalid UTF-8" "raw.jsonl:1: invalid UTF-8" \
    "$RLHF" generate --model "$T/m.h5" --prompts "$T/raw.jsonl" --jsonl
# a random byte model emits bytes >= 0x80 that do not form UTF-8: sampled at
# temperature 2 some of them must show as U+FFFD
printf '{"prompt": "x\\u00ff"}\n\n{"prompt": "y"}\n{"prompt": "z"}\n' >"$T/p.jsonl"
if "$RLHF" generate --model "$T/m.h5" --prompts "$T/p.jsonl" --jsonl --temperature 2 --max-new 24 >"$T/g2" 2>"$T/err" &&
   msg=$(valid_json "$T/g2" "len(rows) == 3 and rows[0]['prompt'] == 'x\u00ff' and any('\ufffd' in r['completion'] for r in rows)"); then
    pass "generate --jsonl: model output that is not UTF-8 becomes U+FFFD"
else fail "generate --jsonl: model output that is not UTF-8" "$(head -3 "$T/err") ${msg:-}"; fi
if "$RLHF" eval --policy "$T/m.h5" --prompts "$T/p.jsonl" --temperature 2 --max-new 24 --samples "$T/s.jsonl" \
       >"$T/out" 2>"$T/err" &&
   msg=$(valid_json "$T/s.jsonl" "len(rows) == 3 and any('\ufffd' in r['response'] for r in rows)"); then
    pass "eval --samples: responses that are not UTF-8 become U+FFFD"
else fail "eval --samples: responses that are not UTF-8" "$(head -3 "$T/err") ${msg:-}"; fi

# ---- item 13: a failed write to stdout is an error ----------------------------------
printf '{"prompt": "a", "completion": "b"}\n' >"$T/score.jsonl"
printf 'hello world, hello world\n' >"$T/text.txt"
# the metrics log of a 2-step pretraining run, for inspect and plot
"$RLHF" pretrain out_dir="$T/run/pretrain" train_data="$T/text.txt" n_layer=1 n_embd=16 n_head=2 n_ctx=8 \
    batch_size=2 micro_batch=2 max_steps=2 log_every=1 warmup_steps=0 >/dev/null 2>&1
[ -e "$T/run/pretrain/metrics.h5" ] && pass "pretrain for the log" || fail "pretrain for the log"
# to_full CMD...: CMD with stdout on /dev/full (a command, for expect_err's timeout)
to_full=(bash -c 'exec "$@" >/dev/full' to_full)
FULL="stdout: No space left on device"
while IFS='|' read -r name args; do
    eval "set -- $args"
    # other stderr lines (eval's and score's summaries) may come too; one error line
    ERR_ALONE=0 expect_err "$name > /dev/full" "$FULL" "${to_full[@]}" "$RLHF" "$@"
done <<EOF
--help|--help
--version|--version
config-reference|config-reference
generate --help|generate --help
pretrain --help|pretrain --help
ppo --help|ppo --help
grpo --help|grpo --help
generate|generate --model "$T/m.h5" --prompt hi --max-new 4
generate --jsonl|generate --model "$T/m.h5" --prompts "$T/p.jsonl" --jsonl --max-new 4 --batch 1
eval|eval --policy "$T/m.h5" --prompts "$T/p.jsonl" --max-new 4
eval --json|eval --policy "$T/m.h5" --prompts "$T/p.jsonl" --max-new 4 --json
score|score --model "$T/rm.h5" --data "$T/score.jsonl"
nll|nll --model "$T/m.h5" --text "$T/text.txt"
nll --json|nll --model "$T/m.h5" --text "$T/text.txt" --json
inspect checkpoint|inspect "$T/m.h5"
inspect --json log|inspect "$T/run/pretrain/metrics.h5" --json
plot listing|plot "$T/run" --out "$T/plots"
EOF
# the same commands succeed when stdout can be written
expect_ok "eval --json to a file" "$RLHF" eval --policy "$T/m.h5" --prompts "$T/p.jsonl" --max-new 4 --json
expect_ok "data > /dev/full (prints nothing on stdout)" "${to_full[@]}" "$RLHF" data arith --out "$T/data" --n 20

# ---- item 15: NaN/Inf weights and external links are refused on loading ----------------
cp "$T/m.h5" "$T/nan.h5"
"$PY" -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r+') as f:
    d = f['params/h.0.attn.c_attn.weight']; x = d[...]; x.flat[17] = float('nan'); d[...] = x" "$T/nan.h5"
sum=$(sha256sum <"$T/nan.h5")
expect_err "generate with a NaN weight" "nan.h5: /params: tensor h.0.attn.c_attn.weight holds NaN at element 17" \
    "$RLHF" generate --model "$T/nan.h5" --prompt hi
expect_err "eval with a NaN weight" "nan.h5: /params: tensor h.0.attn.c_attn.weight holds NaN" \
    "$RLHF" eval --policy "$T/nan.h5" --prompts "$T/p.jsonl"
[ "$(sha256sum <"$T/nan.h5")" = "$sum" ] && pass "NaN checkpoint unchanged" || fail "NaN checkpoint unchanged"

"$RLHF" export-hf "$T/m.h5" --out "$T/hf" 2>/dev/null
"$PY" -c "
import json, struct, sys
p = sys.argv[1]; raw = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', raw[:8])[0]; a = json.loads(raw[8:8 + n])['h.0.mlp.c_proj.bias']['data_offsets'][0]
raw[8 + n + a + 12:8 + n + a + 16] = struct.pack('<f', float('inf')); open(p, 'wb').write(raw)" "$T/hf/model.safetensors"
cp "$T/rm.h5" "$T/keep.h5"
sum=$(sha256sum <"$T/hf/model.safetensors")
expect_err "import-hf with an Inf weight" "model.safetensors: tensor h.0.mlp.c_proj.bias holds Inf at element 3" \
    "$RLHF" import-hf "$T/hf" --out "$T/imported.h5"
[ ! -e "$T/imported.h5" ] && [ "$(sha256sum <"$T/hf/model.safetensors")" = "$sum" ] &&
    pass "import-hf refusal writes nothing" || fail "import-hf refusal writes nothing"

cp "$T/m.h5" "$T/elink.h5"
"$PY" -c "
import h5py, sys
with h5py.File(sys.argv[2], 'w') as g: g['w'] = h5py.File(sys.argv[3], 'r')['params/wpe.weight'][...]
with h5py.File(sys.argv[1], 'r+') as f:
    del f['params/wpe.weight']; f['params/wpe.weight'] = h5py.ExternalLink(sys.argv[2], '/w')" \
    "$T/elink.h5" "$T/target.h5" "$T/m.h5"
sum=$(sha256sum <"$T/elink.h5")
expect_err "checkpoint with an external link" "elink.h5: /params/wpe.weight: external link to .*target.h5:/w refused" \
    "$RLHF" generate --model "$T/elink.h5" --prompt hi
expect_err "inspect of a checkpoint with an external link" "external link" "$RLHF" inspect "$T/elink.h5"
[ "$(sha256sum <"$T/elink.h5")" = "$sum" ] && pass "linked checkpoint unchanged" || fail "linked checkpoint unchanged"

# ---- item 17: prompts are FILE:LINE in generate and eval ----------------------------------
# line 3 (after a blank line): the prompt's index would be 2 (1-based) or 1 (0-based)
{ printf '{"prompt": "ok"}\n\n'; head -c 40 /dev/zero | tr '\0' 'x' | sed 's/.*/{"prompt": "&"}/'; } >"$T/long.jsonl"
expect_err "generate names the long prompt by line" "long.jsonl:3: prompt has 40 tokens; the model's context is 32" \
    "$RLHF" generate --model "$T/m.h5" --prompts "$T/long.jsonl"
expect_err "eval names the long prompt by line" "long.jsonl:3: prompt has 40 tokens; the model's context is 32" \
    "$RLHF" eval --policy "$T/m.h5" --prompts "$T/long.jsonl" --batch 1
printf '{"prompt": "ok"}\n\n\n{"prompt": ""}\n' >"$T/empty.jsonl"
expect_err "eval names the empty prompt by line" "empty.jsonl:4: prompt is empty" \
    "$RLHF" eval --policy "$T/m.h5" --prompts "$T/empty.jsonl"

exit 0
