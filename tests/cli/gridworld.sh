#!/bin/bash
# End-to-end tests of `rlhf gridworld`: --help shows the map, a default run
# learns a shortest safe path (greedy path = BFS length, no broom) and reaches
# the meat in >= 95% of slipping episodes (verdict PASS, exit 0), same seed
# gives the same output, several seeds all pass, gamma 0.95 takes the broom
# shortcut as documented (verdict FAIL, still exit 0), and bad options or maps
# fail with one "rlhf: error:" line naming the problem. Prints "ok NAME" /
# "FAIL NAME". Takes about a second.
set -u
SUITE=gridworld
. "$(dirname "$0")/../lib.sh"
scratch gridworld
ERR_ALONE=1 # every refusal here is one line and nothing else

if ! "$RLHF" gridworld --help >"$T/help" 2>&1; then
    fail "subcommand present" "'$RLHF gridworld --help' failed: rlhf.c needs a gridworld row in its command table"
    exit 0
fi
grep -q "^usage: rlhf gridworld" "$T/help" && grep -q "C . T . M" "$T/help" && grep -q -- "--slip" "$T/help" &&
    pass "--help shows usage, options and the map" || fail "--help shows usage, options and the map"

# a default run: exit 0, verdict PASS, the path and the success rate
if "$RLHF" gridworld --seed 1 >"$T/run1" 2>"$T/err"; then pass "default run exits 0"; else fail "default run exits 0" "$(head -3 "$T/err")"; fi
grep -q "^verdict: PASS" "$T/run1" && pass "default run: verdict PASS" || fail "default run: verdict PASS" "$(grep verdict "$T/run1")"
safe=$(sed -n 's/^shortest safe path *\([0-9]*\) steps.*/\1/p' "$T/run1")
greedy=$(sed -n 's/^greedy path *without slips: \([0-9]*\) steps, reaches the meat, 0 brooms$/\1/p' "$T/run1")
[ "$safe" = 8 ] && [ "$greedy" = 8 ] && pass "greedy path without slips = shortest safe path (8 steps, no broom)" ||
    fail "greedy path without slips = shortest safe path" "safe '$safe', greedy '$greedy'"
succ=$(sed -n 's/^greedy policy *over [0-9]* episodes with slip 0.1: success \([0-9.]*\)%.*/\1/p' "$T/run1")
awk -v s="$succ" 'BEGIN { exit !(s != "" && s >= 95) }' && pass "success with slips >= 95% ($succ%)" ||
    fail "success with slips >= 95%" "got '$succ'"
[ "$(grep -c '^iter ' "$T/run1")" -ge 5 ] && grep -q "return .* length .* success .* entropy" "$T/run1" &&
    pass "progress lines (return, length, success, entropy)" || fail "progress lines"
grep -q "^C \. T \. M  *[v<>^] [v<>^] T [v<>^] M" "$T/run1" && pass "arrow map printed" || fail "arrow map printed"

# determinism
"$RLHF" gridworld --seed 1 >"$T/run1b" 2>/dev/null
cmp -s "$T/run1" "$T/run1b" && pass "same seed, same output" || fail "same seed, same output"
"$RLHF" gridworld --seed 2 >"$T/run2" 2>/dev/null
! cmp -s <(grep '^iter' "$T/run1") <(grep '^iter' "$T/run2") && pass "different seed, different run" ||
    fail "different seed, different run"

# robustness: every one of several seeds passes
bad=""
for s in 3 4 5 6 7 8; do
    "$RLHF" gridworld --seed $s --log-every 0 2>/dev/null | grep -q "^verdict: PASS" || bad="$bad $s"
done
[ -z "$bad" ] && pass "seeds 3-8 all pass" || fail "seeds 3-8 all pass" "failed seeds:$bad"

# gamma 0.95: two extra steps cost more than two brooms; the documented
# outcome is the 6-step shortcut, reported as FAIL with exit status 0
if "$RLHF" gridworld --gamma 0.95 --log-every 0 >"$T/g95" 2>"$T/err" &&
   grep -q "^verdict: FAIL.*6 steps, 2 brooms" "$T/g95" && grep -q "^optimal path .*6 steps, reaches the meat, 2 brooms" "$T/g95"; then
    pass "gamma 0.95 takes the broom shortcut like value iteration (exit 0, verdict FAIL)"
else fail "gamma 0.95 takes the broom shortcut" "$(grep -E 'verdict|path' "$T/g95") $(head -2 "$T/err")"; fi

# another map: here the only 3-step path runs beside the bathtub, so even the
# optimal policy slips in ~3.3% of the time (value iteration: ~96%)
if "$RLHF" gridworld --map "C..M/.TB./...." --min-success 0.9 --log-every 0 >"$T/small" 2>"$T/err" && grep -q "^verdict: PASS" "$T/small" &&
   grep -q "^shortest safe path *3 steps" "$T/small"; then pass "custom --map"
else fail "custom --map" "$(grep verdict "$T/small") $(head -2 "$T/err")"; fi

# bad input
expect_err "unknown option" "unknown option --bogus" "$RLHF" gridworld --bogus 1
expect_err "slip out of range" "--slip must be in \[0, 1\], got 1.5" "$RLHF" gridworld --slip 1.5
expect_err "gamma out of range" "--gamma" "$RLHF" gridworld --gamma 0
expect_err "episodes not a number" "--episodes expects an integer, got 'many'" "$RLHF" gridworld --episodes many
expect_err "zero episodes" "--episodes must be >= 1" "$RLHF" gridworld --episodes 0
expect_err "map with an unknown cell" "--map: gridworld map: row 2, column 1: unknown cell 'x'" "$RLHF" gridworld --map "C.M/x.."
expect_err "ragged map" "row 2 has 2 cells, expected 3" "$RLHF" gridworld --map "C.M/.."
expect_err "map without start" "exactly one start C, found 0" "$RLHF" gridworld --map "..M"
expect_err "unreachable meat" "without entering a bathtub" "$RLHF" gridworld --map "CTM"
expect_err "positional argument" "unexpected argument 'extra'" "$RLHF" gridworld extra
exit 0
