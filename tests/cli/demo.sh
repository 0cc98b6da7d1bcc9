#!/bin/bash
# `make demo` at reduced size (DEMO_SIZE=small, ~1-2 minutes): the whole
# pipeline runs, prints the SFT/DPO/PPO/GRPO table, PPO's gold score beats
# SFT's and so does GRPO's (trained on the gold verifier, whose score it is).
set -u
SUITE=demo
. "$(dirname "$0")/../lib.sh"
scratch demo
if RLHF_BIN=$RLHF OUT=$T DEMO_SIZE=small bash launch/demo.sh >"$T/log" 2>&1; then
    pass "small pipeline runs end to end"
else
    fail "small pipeline runs end to end" "$(tail -5 "$T/log")"
fi
grep -q "^SFT .* +- " "$T/log" && grep -q "^PPO .* +- " "$T/log" && grep -q "^GRPO .* +- " "$T/log" &&
    grep -q "^SFT in k tries: pass@1 .*pass@16 .*greedy" "$T/log" && pass "final table printed" || fail "final table printed"
if $PY -c "
import json, sys
s, p = (json.load(open('$T/eval_%s.json' % k))['gold'] for k in ('sft', 'ppo'))
print('    sft gold %.3f +- %.3f, ppo gold %.3f +- %.3f' % (s['mean'], s['se'], p['mean'], p['se']))
sys.exit(0 if p['mean'] > s['mean'] else 1)"; then pass "PPO gold score exceeds SFT's"; else fail "PPO gold score exceeds SFT's"; fi
if $PY -c "
import json, sys
s, g = (json.load(open('$T/eval_%s.json' % k))['gold'] for k in ('sft', 'grpo'))
print('    sft gold %.3f +- %.3f, grpo gold %.3f +- %.3f' % (s['mean'], s['se'], g['mean'], g['se']))
sys.exit(0 if g['mean'] > s['mean'] else 1)"; then pass "GRPO gold score exceeds SFT's"; else fail "GRPO gold score exceeds SFT's"; fi
ls "$T"/plots/grpo_*.png >/dev/null 2>&1 && pass "GRPO plots written" || fail "GRPO plots written"
ls "$T"/plots/*.png >/dev/null 2>&1 && pass "plots written" || fail "plots written"
