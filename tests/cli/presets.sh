#!/bin/bash
# The presets of the RL job (issue 15): `rlhf grpo`, `rlhf rloo` and
# `rlhf reinforce` are `rlhf ppo` with each algorithm's published defaults.
# Each --help names the algorithm and lists its values (and its key list
# shows them as the defaults); the configuration a run prints before any
# work shows them, marked "# preset NAME"; a config file and the command
# line override any of them (the command line winning); an unknown key is
# still refused, and the preset's values go through the same cross-key
# checks as any; a run started with `rlhf grpo` resumes with `rlhf grpo` and
# with `rlhf ppo` given the same values, is refused by a plain `rlhf ppo`
# (naming the keys), and its checkpoints hold the preset's values. The
# README's side-by-side table agrees with the binary. The expected values
# are written out here, not read from the binary, so a changed preset fails
# until this file and the README say so too.
set -u
SUITE=presets
. "$(dirname "$0")/../lib.sh"
scratch presets
use_mpirun
export OPENBLAS_NUM_THREADS=1
cd "$T"
D=data
"$RLHF" data arith --out $D --n 60 --seed 3 2>/dev/null
"$RLHF" init --out m.h5 --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 --seed 1 2>/dev/null
"$RLHF" init --out rm.h5 --head scalar --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 --seed 2 2>/dev/null

# ---- the values each preset must set ----------------------------------------------------
# "key=value" words; a value equal to ppo's default is printed without a comment
GRPO="advantage=grpo group_size=8 kl_in=loss kl_estimator=k3 kl_coef=0.04 kl_target=0 loss_agg=seq-mean-token-mean clip=0.2 ppo_epochs=1 reward=verifier"
RLOO="advantage=rloo group_size=4 kl_in=reward kl_estimator=k1 kl_coef=0.05 kl_target=0 loss_agg=seq-mean-token-sum-norm clip=0.2 ppo_epochs=1 reward=verifier"
REINFORCE="advantage=reinforce++ group_size=1 kl_in=reward kl_estimator=k1 kl_coef=0.01 kl_target=0 loss_agg=token-mean clip=0.2 ppo_epochs=1 reward=verifier"
values_of() { case $1 in grpo) echo "$GRPO" ;; rloo) echo "$RLOO" ;; reinforce) echo "$REINFORCE" ;; esac; }
algorithm_of() { case $1 in grpo) echo "GRPO (Shao et al. 2024" ;; rloo) echo "RLOO (Ahmadian et al. 2024" ;; reinforce) echo "REINFORCE++ (Hu 2025" ;; esac; }
# ppo's default of a key (from ppo --help): a preset value equal to it prints without "# preset"
"$RLHF" ppo --help >ppo_help.txt
ppo_default() { sed -n "s/^  $1=.*(default: \([^;)]*\).*/\1/p" ppo_help.txt; }
# the value lines of a printed configuration, "key = value" with the padding squeezed
squeeze() { sed -n 's/^\([a-z_0-9]*\) *= \(.*\)$/\1 = \2/p' "$1"; }

# ---- --help -------------------------------------------------------------------------------
"$RLHF" --help >help.txt
for p in grpo rloo reinforce; do
    grep -q "^  $p  *the ppo job with" help.txt && pass "rlhf --help lists $p" || fail "rlhf --help lists $p" "$(cat help.txt)"
done
for p in grpo rloo reinforce; do
    "$RLHF" $p --help >h.txt 2>h.err
    rc=$?
    missing=""
    [ $rc = 0 ] || missing="exit $rc: $(head -2 h.err)"
    grep -q "^usage: mpirun -n N rlhf $p \[--config FILE\] \[key=value ...\]" h.txt || missing="$missing; usage line"
    grep -q -F "$(algorithm_of $p)" h.txt || missing="$missing; the algorithm"
    for kv in $(values_of $p); do
        k=${kv%%=*} v=${kv#*=}
        awk -v l="  $k = $v " 'index($0, l) == 1 && /  # ./ {f = 1} END {exit !f}' h.txt ||
            missing="$missing; preset line '$k = $v  # WHY'"
        grep -q -F -- "  $k=" h.txt && grep -F -- "  $k=" h.txt | grep -q -F "(default: $v" ||
            missing="$missing; key list default of $k not $v"
    done
    [ -z "$missing" ] && pass "$p --help names the algorithm and lists its values" ||
        fail "$p --help names the algorithm and lists its values" "${missing#; }"
done
[ "$(ppo_default advantage)" = gae ] && [ "$(ppo_default kl_coef)" = 0.05 ] && ! grep -q "preset" ppo_help.txt &&
    pass "ppo --help keeps ppo's defaults" || fail "ppo --help keeps ppo's defaults" "$(grep -E '^  (advantage|kl_coef)=' ppo_help.txt)"

# ---- the configuration printed before any work ----------------------------------------------
# A policy that does not exist: the configuration is printed, then the
# learner fails to load it (so no training and no wiring of the algorithms is
# needed) and the job ends on every rank; out_dir is never created.
IN="prompts=$D/rl_prompts.jsonl log_samples=0"
for p in grpo rloo reinforce; do
    rm -rf o
    timeout 60 $MPIRUN -n 3 "$RLHF" $p policy=nosuch.h5 $IN out_dir=o >out.txt 2>err.txt
    rc=$?
    squeeze err.txt >cfg.txt
    missing=""
    for kv in $(values_of $p); do
        k=${kv%%=*} v=${kv#*=}
        line="$k = $v  # preset $p"
        [ "$(ppo_default $k)" = "$v" ] && line="$k = $v"
        grep -q -x -F "$line" cfg.txt || missing="$missing; '$line'"
    done
    [ -z "$missing" ] && pass "$p prints its configuration with the preset's values" ||
        fail "$p prints its configuration with the preset's values" "${missing#; }"$'\n'"$(head -3 err.txt)"
    [ $rc != 0 ] && [ $rc -lt 128 ] && grep -q "^rlhf: error: .*nosuch.h5" err.txt && [ ! -e o ] &&
        pass "$p: a missing policy ends the job, out_dir not created" ||
        fail "$p: a missing policy ends the job, out_dir not created" "exit $rc: $(grep error err.txt)"
done

# ---- overrides ---------------------------------------------------------------------------------
# A config file over the preset, the command line over both.
printf 'group_size = 4\nkl_coef = 0.2\nloss_agg = token-mean\n' >over.conf
rm -rf o
timeout 60 $MPIRUN -n 3 "$RLHF" grpo --config over.conf policy=nosuch.h5 $IN out_dir=o kl_coef=0.1 kl_in=none >out.txt 2>err.txt
squeeze err.txt >cfg.txt
missing=""
for line in "group_size = 4  # over.conf:1" "loss_agg = token-mean" "kl_coef = 0.1  # command line" \
    "kl_in = none  # command line" "advantage = grpo  # preset grpo" "kl_estimator = k3  # preset grpo"; do
    grep -q -x -F "$line" cfg.txt || missing="$missing; '$line'"
done
[ -z "$missing" ] && pass "a config file overrides a preset value, the command line both" ||
    fail "a config file overrides a preset value, the command line both" "${missing#; }"$'\n'"$(grep -E '^(group_size|kl_coef|kl_in|loss_agg) ' err.txt)"

# ---- refusals ------------------------------------------------------------------------------------
# one process is enough: these are refused before the ranks are laid out
ERR_ALONE=1 expect_err "grpo: an unknown key on the command line is refused" \
    "ppo: command line: unknown key 'advantages' (did you mean 'advantage'?)" \
    "$RLHF" grpo policy=m.h5 $IN out_dir=o advantages=rloo
printf 'kl_coeff = 0.1\n' >typo.conf
ERR_ALONE=1 expect_err "rloo: an unknown key in a config file is refused" \
    "ppo: typo.conf:1: unknown key 'kl_coeff' (did you mean 'kl_coef'?)" \
    "$RLHF" rloo --config typo.conf policy=m.h5 $IN out_dir=o
ERR_ALONE=1 expect_err "reinforce: a value out of its range is refused" "ppo: command line: kl_coef must be >= 0, got -1" \
    "$RLHF" reinforce policy=m.h5 $IN out_dir=o kl_coef=-1
# the preset's values meet the cross-key checks like any other
ERR_ALONE=1 expect_err "rloo group_size=1: rloo needs a group" "advantage = rloo needs group_size >= 2" \
    "$RLHF" rloo policy=m.h5 $IN out_dir=o group_size=1
ERR_ALONE=1 expect_err "grpo chunk=12: not a multiple of the preset's group_size" \
    "chunk (12) must be a multiple of group_size (8)" "$RLHF" grpo policy=m.h5 $IN out_dir=o chunk=12
ERR_ALONE=1 expect_err "grpo reward=rm without a reward model" "reward = rm needs reward_model" \
    "$RLHF" grpo policy=m.h5 $IN out_dir=o reward=rm
[ ! -e o ] && pass "refusals: out_dir not created" || fail "refusals: out_dir not created"

# ---- the settings record and resume --------------------------------------------------------------
# reward_model is given so that the same command line as rlhf ppo (reward = rm,
# gae) is refused for its settings, not for a missing reward model.
RUN="policy=m.h5 reward_model=rm.h5 $IN out_dir=run batch_size=8 chunk=8 minibatch=8 micro_batch=8 max_new=4 iterations=2 ckpt_every=1"
check "grpo: a short run" timeout 120 $MPIRUN -n 3 "$RLHF" grpo $RUN
check "its checkpoints hold the preset's values" $PY - "$GRPO" <<'PY'
import h5py, sys
want = dict(kv.split("=", 1) for kv in sys.argv[1].split())
for path in ["run/ckpt-000002.h5", "run/final.h5"]:
    c = h5py.File(path, "r")["config"].attrs
    got = {k: (c[k].decode() if isinstance(c[k], bytes) else str(c[k])) for k in want}
    assert got == want, (path, got)
PY
grep -q -x -E "advantage +  = grpo  # preset grpo" run/settings.cfg && pass "settings.cfg records the preset's values" ||
    fail "settings.cfg records the preset's values" "$(grep advantage run/settings.cfg)"
before=$(cd run && find . -type f ! -name .lock | LC_ALL=C sort | xargs sha256sum)
expect_err "ppo without the preset's values is refused, naming them" \
    "ppo: run/settings.cfg: written with a different configuration: group_size (1 vs 8), advantage (gae vs grpo),.* reward (rm vs verifier)" \
    timeout 120 $MPIRUN -n 3 "$RLHF" ppo $RUN
after=$(cd run && find . -type f ! -name .lock | LC_ALL=C sort | xargs sha256sum)
[ "$before" = "$after" ] && pass "the refused run changed nothing in out_dir" || fail "the refused run changed nothing in out_dir"
# resuming: a finished 3-iteration run loses its last checkpoint and final
# files, so that the next run resumes from the one before
RUN3="${RUN/out_dir=run/out_dir=run3} iterations=3"
check "grpo: a 3-iteration run" timeout 120 $MPIRUN -n 3 "$RLHF" grpo $RUN3
rm -f run3/ckpt-000003.h5 run3/final.h5 run3/value.h5
timeout 120 $MPIRUN -n 3 "$RLHF" grpo $RUN3 >out.txt 2>err.txt
rc=$?
[ $rc = 0 ] && grep -q "resuming from run3/ckpt-000002.h5" err.txt && [ -s run3/final.h5 ] &&
    pass "grpo resumes a grpo run" || fail "grpo resumes a grpo run" "exit $rc: $(grep -v '^[a-z_0-9]* *=' err.txt | tail -3)"
rm -f run3/ckpt-000003.h5 run3/final.h5 run3/value.h5
timeout 120 $MPIRUN -n 3 "$RLHF" ppo $RUN3 $GRPO >out.txt 2>err.txt
rc=$?
[ $rc = 0 ] && grep -q "resuming from run3/ckpt-000002.h5" err.txt && [ -s run3/final.h5 ] &&
    pass "ppo given the preset's values resumes a grpo run" ||
    fail "ppo given the preset's values resumes a grpo run" "exit $rc: $(grep -v '^[a-z_0-9]* *=' err.txt | tail -3)"
# without settings.cfg the checkpoint's own configuration still refuses a plain ppo
rm run3/settings.cfg run3/ckpt-000003.h5 run3/final.h5
expect_err "the checkpoint's configuration refuses ppo without the preset's values" \
    "cannot resume: run3/ckpt-000002.h5: written with a different configuration: .*advantage (gae vs grpo)" \
    timeout 120 $MPIRUN -n 3 "$RLHF" ppo $RUN3

# ---- the README's side-by-side table -------------------------------------------------------------
# The rows "| `key` | `grpo's` | `rloo's` | `reinforce's` | peers..." of the
# section "Critic-free RL" must hold the values above.
sed -n '/^## Critic-free RL: grpo/,/^## /p' "$ROOT/README.md" >readme.txt
missing=""
[ -s readme.txt ] || missing="no section '## Critic-free RL'"
for kv in $GRPO; do
    k=${kv%%=*}
    row=$(grep -m1 "^| \`$k\` |" readme.txt)
    [ -n "$row" ] || { missing="$missing; no row for $k"; continue; }
    i=2
    for p in grpo rloo reinforce; do
        want=""
        for w in $(values_of $p); do [ "${w%%=*}" = "$k" ] && want=${w#*=}; done
        got=$(echo "$row" | awk -F'|' -v i=$((i + 1)) '{print $i}' | sed 's/^ *`\{0,1\}//; s/`\{0,1\} *$//')
        got=${got%% *}
        got=${got%\`}
        [ "$got" = "$want" ] || missing="$missing; $k of $p: README '$got', want '$want'"
        i=$((i + 1))
    done
done
[ -z "$missing" ] && pass "README's side-by-side table holds the presets' values" ||
    fail "README's side-by-side table holds the presets' values" "${missing#; }"

exit 0
