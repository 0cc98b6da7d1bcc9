#!/bin/bash
# `make demo`: the end-to-end path that exists today, on a fresh machine in
# well under a minute: install dependencies, build, import a Hugging Face
# GPT-2 directory (the tiny one the tests use), inspect it, generate with
# each decoding strategy, measure perplexity, export it back to Hugging Face
# format and check the round trip. Later stages (SFT, RM, DPO, PPO) join
# this script as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
step() { printf '\n=== %s\n' "$*"; }

step "dependencies and build"
bash launch/install-deps.sh
make -j2 bin/rlhf
mkdir -p "$OUT"

step "import a Hugging Face GPT-2 directory (tests/fixtures/tiny-gpt2)"
bin/rlhf import-hf tests/fixtures/tiny-gpt2 --out "$OUT/tiny.h5"
bin/rlhf inspect "$OUT/tiny.h5"

step "generate: greedy, then temperature 0.8 with top-k 40, then top-p 0.9"
bin/rlhf generate --model "$OUT/tiny.h5" --prompt "Hello" --max-new 20 --greedy
bin/rlhf generate --model "$OUT/tiny.h5" --prompt "Hello" --max-new 20 --temperature 0.8 --top-k 40 --seed 7
bin/rlhf generate --model "$OUT/tiny.h5" --prompt "Hello" --max-new 20 --top-p 0.9 --seed 7 --jsonl

step "perplexity of README.md under the (random) model: about the vocabulary size, 257"
bin/rlhf nll --model "$OUT/tiny.h5" --text README.md

step "a fresh random model, saved, exported to Hugging Face format and imported back"
bin/rlhf init --out "$OUT/fresh.h5" --n-layer 2 --n-head 4 --n-embd 64 --n-ctx 64 --seed 3
bin/rlhf export-hf "$OUT/fresh.h5" --out "$OUT/fresh-hf"
bin/rlhf import-hf "$OUT/fresh-hf" --out "$OUT/fresh-again.h5"
a=$(bin/rlhf generate --model "$OUT/fresh.h5" --prompt "The" --max-new 30 --greedy --jsonl)
b=$(bin/rlhf generate --model "$OUT/fresh-again.h5" --prompt "The" --max-new 30 --greedy --jsonl)
[ "$a" = "$b" ] && echo "round trip: identical greedy output" || { echo "round trip: outputs differ"; exit 1; }

step "done: files in $OUT/"
ls -l "$OUT"
