#!/bin/bash
# deps — the README's commands work on a fresh machine: every make target but
# `clean` runs launch/install-deps.sh before it compiles anything. Checked in
# a copy of the tree with stub dpkg-query/apt-get/sudo first on PATH, which
# report every package missing and record the install instead of doing it;
# make runs with a compiler stub that records its calls and fails. The
# install must be recorded, and before the first compile; `make -n -B` must
# list it first too.
SUITE=deps
. "$(dirname "$0")/../lib.sh"
scratch deps
at_exit 'rm -rf "$T"'

git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$T" 2>/dev/null)
mkdir -p "$T/stub"
cat >"$T/stub/dpkg-query" <<'STUB'
#!/bin/sh
exit 1
STUB
cat >"$T/stub/apt-get" <<'STUB'
#!/bin/sh
echo "STUB apt-get $*" >&2
echo "apt-get $*" >>"$STUB_LOG"
STUB
cp "$T/stub/apt-get" "$T/stub/sudo"
chmod +x "$T/stub/"*
export STUB_LOG=$T/apt.log
# run as a user would, not as a sub-make of `make test` (whose MAKEFLAGS
# carry RLHF_INNER=1, the inner make's mark)
unset MAKEFLAGS MFLAGS MAKELEVEL RLHF_INNER

# A compiler stub that records its call and fails, so make stops at the
# first compile: the log then shows what ran first.
cat >"$T/stub/cc" <<'STUB'
#!/bin/sh
echo "cc $*" >>"$STUB_LOG"
exit 1
STUB
chmod +x "$T/stub/cc"
for target in test demo all; do
    rm -f "$STUB_LOG"
    (cd "$T" && PATH=$T/stub:$PATH make $target CC="$T/stub/cc" >/dev/null 2>&1)
    first_apt=$(grep -n -m1 '^apt-get install .*libopenblas-dev' "$STUB_LOG" 2>/dev/null | cut -d: -f1)
    first_cc=$(grep -n -m1 '^cc ' "$STUB_LOG" 2>/dev/null | cut -d: -f1)
    if [ -n "$first_apt" ] && [ -n "$first_cc" ] && [ "$first_apt" -lt "$first_cc" ]; then
        pass "make $target: install-deps.sh installs the missing packages before the first compile"
    else
        fail "make $target: install-deps.sh installs the missing packages before the first compile" \
            "log: $(head -3 "$STUB_LOG" 2>/dev/null); first install line ${first_apt:-none}, first compile ${first_cc:-none}"
    fi
    # and make -n shows the same order
    out=$(cd "$T" && PATH=$T/stub:$PATH make -n -B $target 2>&1)
    n_inst=$(echo "$out" | grep -n -m1 'launch/install-deps.sh' | cut -d: -f1)
    n_cc=$(echo "$out" | grep -n -m1 -E '^(cc|gcc|clang) ' | cut -d: -f1)
    if [ -n "$n_inst" ] && [ -n "$n_cc" ] && [ "$n_inst" -lt "$n_cc" ]; then
        pass "make -n -B $target: install-deps.sh is listed before the first compile"
    else
        fail "make -n -B $target: install-deps.sh is listed before the first compile" "$(echo "$out" | head -3)"
    fi
done

rm -f "$STUB_LOG"
(cd "$T" && PATH=$T/stub:$PATH make -n clean >/dev/null 2>&1)
if [ ! -e "$STUB_LOG" ]; then pass "make clean installs nothing"; else fail "make clean installs nothing" "$(cat "$STUB_LOG")"; fi

# A failing install stops make before it compiles, with the reason.
cat >"$T/stub/apt-get" <<'STUB'
#!/bin/sh
echo "E: Unable to locate package" >&2
exit 100
STUB
out=$(cd "$T" && PATH=$T/stub:$PATH make all CC="$T/stub/cc" 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "install-deps.sh failed" && ! echo "$out" | grep -qE '^(cc|gcc) '; then
    pass "a failed install stops make before any compile, naming install-deps.sh"
else
    fail "a failed install stops make before any compile, naming install-deps.sh" "exit $rc: $(echo "$out" | tail -3)"
fi
exit 0
