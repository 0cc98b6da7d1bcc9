#!/bin/bash
# The README's configuration reference must be exactly what
# `rlhf config-reference` prints (the same tables --help uses).
SUITE=docs
. "$(dirname "$0")/../lib.sh"
want=$("$RLHF" config-reference)
have=$(sed -n '/<!-- config-reference begin -->/,/<!-- config-reference end -->/p' README.md | sed '1d;$d')
if [ "$want" = "$have" ]; then pass "README configuration reference matches rlhf config-reference"
else fail "README configuration reference is stale: run  (sed -n '1,/config-reference begin/p' README.md; bin/rlhf config-reference; echo '<!-- config-reference end -->') > README.new"; fi
for c in $("$RLHF" --help | awk '/^  [a-z]/ {print $1}'); do
    grep -q "\`$c\`" README.md && pass "README documents $c" || fail "README documents $c"
done
