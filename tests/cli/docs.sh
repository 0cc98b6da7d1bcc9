#!/bin/bash
# The README's configuration reference must be exactly what
# `rlhf config-reference` prints (the same tables --help uses); every
# subcommand is documented; launch/configs/ holds every stage at each size.
SUITE=docs
. "$(dirname "$0")/../lib.sh"
scratch docs
want=$("$RLHF" config-reference)
have=$(sed -n '/<!-- config-reference begin -->/,/<!-- config-reference end -->/p' README.md | sed '1d;$d')
if [ "$want" = "$have" ]; then pass "README configuration reference matches rlhf config-reference"
else fail "README configuration reference is stale: run  (sed -n '1,/config-reference begin/p' README.md; bin/rlhf config-reference; echo '<!-- config-reference end -->') > README.new"; fi
for c in $("$RLHF" --help | awk '/^  [a-z]/ {print $1}'); do
    grep -q "\`$c\`" README.md && pass "README documents $c" || fail "README documents $c"
done
# launch/configs/{tiny,demo,gpt2-small}: a config for every stage, each key
# one its stage knows (from the same reference)
check "shipped configs: every stage, known keys only" $PY - "$ROOT/launch/configs" <<PY
import os, re, sys
ref = """$want"""
keys, section = {}, None
for line in ref.splitlines():
    if line.startswith("#### "):
        section = line[5:].strip()
        keys[section] = set()
    m = re.match(r"\| \`([a-z_0-9]+)\` \|", line)
    if m and section:
        keys[section].add(m.group(1))
common = next(v for k, v in keys.items() if k.startswith("Keys of every trainer"))
known = {s: common | keys[s] for s in ("pretrain", "sft", "rm", "dpo")}
known["ppo"] = known["grpo"] = keys["ppo"]
bad = []
for d in ("tiny", "demo", "gpt2-small"):
    for stage in known:
        p = os.path.join(sys.argv[1], d, stage + ".conf")
        if not os.path.exists(p):
            bad.append(p + ": missing")
            continue
        for n, line in enumerate(open(p), 1):
            line = line.split("#")[0].strip()
            if line and line.split("=")[0].strip() not in known[stage]:
                bad.append("%s:%d: %s" % (p, n, line))
assert not bad, bad
PY
