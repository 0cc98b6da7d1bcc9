#!/bin/bash
# The soak of tests/soak.sh (PPO with SIGTERM/resume cycles: memory flat,
# results identical to an uninterrupted run) at a size for `make test`:
# the tiny model, 400 iterations, ~5 SIGTERMs, RSS sampled every 50 ms;
# ~25 s on 2 idle cores. Under a sanitizer build (slower, and its RSS is not
# meaningful) 150 iterations and no memory checks. `make soak`: the full one.
SUITE=soak
. "$(dirname "$0")/../lib.sh"
ITERS=400
case "$RLHF" in */san/*) ITERS=150 ;; esac
SOAK_SIZE=tiny SOAK_ITERS=${SOAK_ITERS:-$ITERS} SOAK_CYCLES=${SOAK_CYCLES:-5} SOAK_INTERVAL=${SOAK_INTERVAL:-0.05} \
    RLHF_BIN=$RLHF exec bash "$ROOT/tests/soak.sh"
