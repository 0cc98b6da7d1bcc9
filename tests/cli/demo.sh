#!/bin/bash
# `make demo` at reduced size (DEMO_SIZE=small, ~1-2 minutes): the whole
# pipeline runs, prints the SFT/DPO/PPO table, and PPO's gold score beats SFT's.
set -u
RLHF=${RLHF_BIN:-bin/rlhf}
T=$(mktemp -d /tmp/rlhf-demo-XXXXXX)
trap 'rm -rf "$T"' EXIT
if RLHF_BIN=$RLHF OUT=$T DEMO_SIZE=small bash launch/demo.sh >"$T/log" 2>&1; then
    echo "ok   demo: small pipeline runs end to end"
else
    echo "FAIL demo: small pipeline runs end to end"; tail -5 "$T/log" | sed 's/^/    /'
fi
grep -q "^SFT .* +- " "$T/log" && grep -q "^PPO .* +- " "$T/log" && echo "ok   demo: final table printed" || echo "FAIL demo: final table printed"
if /usr/bin/python3 -c "
import json, sys
s, p = (json.load(open('$T/eval_%s.json' % k))['gold'] for k in ('sft', 'ppo'))
print('    sft gold %.3f +- %.3f, ppo gold %.3f +- %.3f' % (s['mean'], s['se'], p['mean'], p['se']))
sys.exit(0 if p['mean'] > s['mean'] else 1)"; then echo "ok   demo: PPO gold score exceeds SFT's"; else echo "FAIL demo: PPO gold score exceeds SFT's"; fi
ls "$T"/plots/*.png >/dev/null 2>&1 && echo "ok   demo: plots written" || echo "FAIL demo: plots written"
