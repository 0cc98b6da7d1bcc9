#!/bin/bash
# The README's configuration reference must be exactly what
# `rlhf config-reference` prints (the same tables --help uses).
RLHF=${RLHF_BIN:-bin/rlhf}
want=$("$RLHF" config-reference)
have=$(sed -n '/<!-- config-reference begin -->/,/<!-- config-reference end -->/p' README.md | sed '1d;$d')
if [ "$want" = "$have" ]; then echo "ok   docs: README configuration reference matches rlhf config-reference"
else echo "FAIL docs: README configuration reference is stale: run  (sed -n '1,/config-reference begin/p' README.md; bin/rlhf config-reference; echo '<!-- config-reference end -->') > README.new"; fi
for c in $("$RLHF" --help | awk '/^  [a-z]/ {print $1}'); do
    grep -q "\`$c\`" README.md && echo "ok   docs: README documents $c" || echo "FAIL docs: README documents $c"
done
