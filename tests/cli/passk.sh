#!/bin/bash
# rlhf eval --samples-per-prompt n --pass-k k (issue 15): pass@k with the
# unbiased estimator of Chen et al. 2021. Each check recomputes the report
# in Python from the samples file, with math.comb in the estimator's
# defining form 1 - C(n-c, k)/C(n, k) (the C code uses the product form),
# and judges each sample independently of the C judges where it can: the
# gold judge's pass is gold > 0 (correct scores 1, its penalties at most
# 0.9), an external verifier's is recomputed from the response text, the
# answer verifier's from the last number of the response. Then the
# refusals: bad --pass-k lists, too few samples, unknown verifiers, prompts
# without answers, verifier programs that exit or hang (the samples file
# that existed before stays as it was).
set -u
SUITE=passk
. "$(dirname "$0")/../lib.sh"
scratch passk
cd "$T"
tiny_models && pass "tiny SFT" || fail "tiny SFT"
EV=("$RLHF" eval --policy sft/final.h5 --prompts data/eval_prompts.jsonl --n 12 --max-new 6 --seed 3)

# recompute FILE.json FILE.jsonl N KS PASS_RULE: the report's pass@k and the
# samples' pass flags against Python's own (PASS_RULE: gold | one | answer)
recompute() {
    $PY - "$@" <<'PY'
import json, math, re, sys
rep, lines = json.load(open(sys.argv[1])), [json.loads(l) for l in open(sys.argv[2])]
n, ks, rule = int(sys.argv[3]), [int(k) for k in sys.argv[4].split(",")], sys.argv[5]
assert len(lines) % n == 0 and len(lines) // n == 12, len(lines)
def judge(d):
    if rule == "gold": return d["gold"] > 0
    if rule == "one": return "1" in d["response"]
    a, b = re.match(r"Q: (\d+)([+-])(\d+)=\?", d["prompt"]).groups()[0::2], d["prompt"][3:].split("=")[0]
    want = eval(b)                                     # "7+5" or "9-3": the task's own arithmetic
    nums = re.findall(r"(?<![A-Za-z0-9])-?\d+|\d+", d["response"])
    return bool(nums) and int(nums[-1]) == want
groups = [lines[i:i + n] for i in range(0, len(lines), n)]
for g in groups:
    assert len({d["prompt"] for d in g}) == 1 and [d.get("sample") for d in g] == (list(range(n)) if n > 1 else [None])
    for d in g:
        assert d["pass"] == judge(d), ("pass flag", d)
for k in ks:
    want = sum(1 - math.comb(n - c, k) / math.comb(n, k) for c in (sum(d["pass"] for d in g) for g in groups)) / len(groups)
    got = rep["pass@%d" % k]
    assert abs(got["mean"] - want) <= 1e-5 * max(1, want) and got["n"] == len(groups), (k, got, want)
if 1 in ks:  # pass@1 is the fraction of samples that pass
    assert abs(rep["pass@1"]["mean"] - sum(d["pass"] for d in lines) / len(lines)) < 1e-5
if rule == "gold" and 1 in ks:
    assert abs(rep["pass@1"]["mean"] - rep["correct"]["mean"]) < 1e-5, rep
print("ok", [rep["pass@%d" % k]["mean"] for k in ks])
PY
}

# ---- the gold judge ------------------------------------------------------------------------
"${EV[@]}" --samples-per-prompt 6 --pass-k 1,2,6 --samples g.jsonl --json >g.json 2>g.err
check "gold judge: pass@1,2,6 of 6 samples per prompt = 1 - C(n-c,k)/C(n,k) over the samples" \
    recompute g.json g.jsonl 6 1,2,6 gold
"${EV[@]}" --pass-k 4 --samples d.jsonl --json >d.json 2>/dev/null
check "--pass-k alone samples max k per prompt" recompute d.json d.jsonl 4 4 gold
"${EV[@]}" --samples one.jsonl --json >one.json 2>/dev/null
"${EV[@]}" --samples-per-prompt 1 --pass-k 1 --samples one1.jsonl --json >one1.json 2>/dev/null
check "one sample per prompt: pass@1 = correct" recompute one1.json one1.jsonl 1 1 gold
check "one sample per prompt: the same responses with and without --pass-k" $PY - <<'PY'
import json
a = [json.loads(l) for l in open("one.jsonl")]
b = [json.loads(l) for l in open("one1.jsonl")]
assert [(x["prompt"], x["response"]) for x in a] == [(x["prompt"], x["response"]) for x in b]
assert all("pass" not in x and "sample" not in x for x in a)
PY
"${EV[@]}" --samples-per-prompt 6 --pass-k 1,2,6 >g.txt 2>&1
grep -q "eval: 72 responses (12 prompts x 6)" g.txt && grep -q "pass@6 .*(over prompts)" g.txt &&
    pass "the text report names the samples per prompt and each pass@k" || fail "text report" "$(cat g.txt)"

# ---- verifiers -------------------------------------------------------------------------------
cat >one.py <<'PY'
#!/usr/bin/python3
# passes a response holding the digit 1
import json, sys
for line in sys.stdin:
    print(1 if "1" in json.loads(line)["response"] else 0, flush=True)
PY
chmod +x one.py
"${EV[@]}" --samples-per-prompt 5 --pass-k 1,3 --verifier "cmd:$T/one.py" --samples c.jsonl --json >c.json 2>c.err
check "cmd: verifier: a score > 0 passes; pass@1,3 recomputed" recompute c.json c.jsonl 5 1,3 one
check "cmd: verifier: its mean score is reported" $PY - <<'PY'
import json
rep, lines = json.load(open("c.json")), [json.loads(l) for l in open("c.jsonl")]
assert abs(rep["verifier"]["mean"] - sum(d["verifier"] for d in lines) / len(lines)) < 1e-5, rep
assert all(d["verifier"] == (1.0 if d["pass"] else 0.0) for d in lines)
PY
$PY - <<'PY'
import json, re
with open("ans.jsonl", "w") as out:
    for l in open("data/eval_prompts.jsonl"):
        p = json.loads(l)["prompt"]
        out.write(json.dumps({"prompt": p, "answer": str(eval(p[3:].split("=")[0]))}) + "\n")
PY
"${EV[@]/data\/eval_prompts.jsonl/ans.jsonl}" --samples-per-prompt 4 --pass-k 1,4 --verifier answer --samples a.jsonl \
    --json >a.json 2>a.err
check "answer verifier on {prompt, answer}: the last number of the response" recompute a.json a.jsonl 4 1,4 answer

# ---- refusals ---------------------------------------------------------------------------------
echo "older" >keep.jsonl
cp keep.jsonl keep.orig
expect_err "--pass-k 0" "eval: --pass-k: '0' is not a list of integers >= 1" "${EV[@]}" --pass-k 0
expect_err "--pass-k 1,x" "eval: --pass-k: '1,x' is not a list" "${EV[@]}" --pass-k 1,x
expect_err "--pass-k 1," "eval: --pass-k: '1,' is not a list" "${EV[@]}" --pass-k 1,
expect_err "--pass-k with 9 values" "eval: --pass-k: at most 8 values" "${EV[@]}" --pass-k 1,2,3,4,5,6,7,8,9
expect_err "--pass-k above --samples-per-prompt" "eval: --pass-k 8 needs --samples-per-prompt >= 8 (it is 4)" \
    "${EV[@]}" --pass-k 1,8 --samples-per-prompt 4
expect_err "--samples-per-prompt 0" "samples-per-prompt" "${EV[@]}" --samples-per-prompt 0
expect_err "unknown verifier" "eval: --verifier: unknown verifier 'bogus'" "${EV[@]}" --verifier bogus --pass-k 1
expect_err "answer verifier without answers names the prompt's line" \
    "eval_prompts.jsonl:1-12: .*no \"answer\"" "${EV[@]}" --verifier answer --pass-k 1 --samples keep.jsonl
expect_err "a verifier program that is not there" "eval: --verifier.*nonexistent" \
    "${EV[@]}" --verifier cmd:/nonexistent/v --pass-k 1 --samples keep.jsonl
expect_err "a verifier program that exits" "exit_after_one.sh" \
    "${EV[@]}" --verifier "cmd:$ROOT/tests/fixtures/verifiers/exit_after_one.sh" --pass-k 1 --samples keep.jsonl
s=$(now_ms)
expect_err "a verifier program that hangs: --verifier-timeout" "hang.sh.*1 s\|hang.sh.*timeout\|hang.sh" \
    "${EV[@]}" --verifier "cmd:$ROOT/tests/fixtures/verifiers/hang.sh" --verifier-timeout 1 --pass-k 1 --samples keep.jsonl
[ $(( $(now_ms) - s )) -lt 20000 ] && pass "the hanging verifier ends eval within seconds" ||
    fail "the hanging verifier ends eval within seconds" "$(( $(now_ms) - s )) ms"
cmp -s keep.jsonl keep.orig && [ "$(stale_temps .)" = 0 ] && pass "failed runs leave the samples file as it was" ||
    fail "failed runs leave the samples file as it was" "$(ls)"
exit $NFAIL
