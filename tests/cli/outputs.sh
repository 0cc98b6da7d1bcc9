#!/bin/bash
# Outputs never damage anything, and inputs that cannot be seeked never hang
# (issue 14, items 1, 2, 6, 7 and 11; the rules are at fs_check_target and
# its neighbours in common/fsutil.h). Every writer is pointed at a device, a
# FIFO, a directory and a symlink; an output naming an input of the same
# command is refused (trainers and ppo: any file they write in out_dir,
# runrec_check_inputs); export-hf failing midway keeps the old export; init
# and import-hf keep an existing checkpoint unless --force; a FIFO where a
# checkpoint, safetensors file or HF file belongs is refused at once while
# prompts from a pipe still work. Each refusal: one line naming the file,
# non-zero exit, pre-existing files byte-identical (sha256sum). Cases that
# could block use timeout -s KILL: a rank blocked in open() of a FIFO restarts
# it after SIGTERM (the stop flag handler), so plain timeout would hang.
set -u
SUITE=outputs
. "$(dirname "$0")/../lib.sh"
scratch outputs
cd "$T"
ERR_ALONE=1

# snap NAME FILE...: remember the files' hashes; same NAME TEST: still equal
snap() {
    local n=$1
    shift
    sha256sum "$@" >"$T/snap.$n" 2>&1
}
same() {
    if sha256sum -c --quiet "$T/snap.$1" >/dev/null 2>&1; then pass "$2"; else fail "$2" "$(sha256sum -c "$T/snap.$1" 2>&1 | head -3)"; fi
}
# kind PATH: file type (lstat) for "not replaced" checks
kind() { stat -c %F "$1" 2>/dev/null; }
DEVNULL_ID=$(stat -c %t,%T /dev/null)
devnull_intact() {
    [ "$(kind /dev/null)" = "character special file" ] && [ "$(stat -c %t,%T /dev/null)" = "$DEVNULL_ID" ] &&
        pass "$1: /dev/null still the device" || fail "$1: /dev/null replaced" "$(ls -l /dev/null)"
}
no_temporaries() {
    local left
    left=$(find "$@" -name '*.tmp.*' 2>/dev/null | head -3)
    [ -z "$left" ] && pass "$1...: no temporaries left" || fail "no temporaries left" "$left"
}

"$RLHF" data arith --out data --n 60 --seed 3 2>/dev/null
head -n 4 data/eval_prompts.jsonl >p.jsonl
"$RLHF" init --out m.h5 --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 --seed 1 2>/dev/null
"$RLHF" init --out m7.h5 --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 --seed 7 2>/dev/null
echo "victim: not a log" >victim.txt
mkfifo fifo
mkdir adir
ln -s victim.txt link
ln -s /dev/null devlink
snap base m.h5 m7.h5 p.jsonl victim.txt
[ -e m.h5 ] && [ -e data/eval_prompts.jsonl ] && pass "setup" || fail "setup"

# --- item 1: every writer refuses non-regular targets --------------------------
for t in fifo adir devlink /dev/null; do
    expect_err "init --out $t" "$t: exists and is not a regular file" timeout -s KILL 10 "$RLHF" init --out $t --force \
        --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32
done
devnull_intact "init"
[ "$(kind fifo)" = fifo ] && [ "$(kind adir)" = directory ] && [ "$(kind devlink)" = "symbolic link" ] &&
    pass "init: targets left as they were" || fail "init: targets left as they were"

# eval --samples: a FIFO once blocked fopen("w"); a symlink is replaced as a
# link (its target untouched), the others are refused
EV=(timeout -s KILL 10 "$RLHF" eval --policy m.h5 --prompts p.jsonl --n 2 --max-new 4 --json)
for t in fifo adir devlink /dev/null; do
    expect_err "eval --samples $t" "$t: exists and is not a regular file" "${EV[@]}" --samples $t
done
devnull_intact "eval --samples"
ERR_ALONE=0
expect_ok "eval --samples symlink" "${EV[@]}" --samples link
ERR_ALONE=1
[ "$(kind link)" = "regular file" ] && grep -q '"prompt"' link && pass "eval --samples: the link replaced as a link" ||
    fail "eval --samples: the link replaced as a link" "$(ls -l link)"
same base "eval --samples: the link's target untouched"
rm -f link
ln -s victim.txt link

# export-hf: a FIFO or directory where one of its files goes
mkdir hfx
mkfifo hfx/config.json
expect_err "export-hf config.json a FIFO" "hfx/config.json: exists and is not a regular file" \
    timeout -s KILL 10 "$RLHF" export-hf m.h5 --out hfx
[ "$(kind hfx/config.json)" = fifo ] && [ ! -e hfx/model.safetensors ] && pass "export-hf: nothing written" ||
    fail "export-hf: nothing written" "$(ls hfx)"
no_temporaries hfx

# HDF5 logs in out_dir: a symlinked metrics.h5 once truncated its target
mkdir -p runl runf
ln -s ../victim.txt runl/metrics.h5
mkfifo runf/metrics.h5
TR=(timeout -s KILL 20 "$RLHF" pretrain train_data=data/pretrain.txt n_layer=1 n_embd=16 n_head=2 n_ctx=32 batch_size=8
    micro_batch=8 max_steps=2 log_every=1000)
ERR_ALONE=0
expect_err "pretrain: symlinked metrics.h5" "runl/metrics.h5: is a symbolic link" "${TR[@]}" out_dir=runl
expect_err "pretrain: metrics.h5 a FIFO" "runf/metrics.h5: exists and is not a regular file" "${TR[@]}" out_dir=runf
ERR_ALONE=1
same base "pretrain: the log link's target untouched"
[ "$(kind runf/metrics.h5)" = fifo ] && [ "$(kind runl/metrics.h5)" = "symbolic link" ] &&
    pass "pretrain: log targets left as they were" || fail "pretrain: log targets left as they were"

# plot: NAME.dat / NAME.png as a FIFO, a directory; a symlinked .dat is
# replaced as a link
"${TR[@]}" out_dir=prun >/dev/null 2>&1
mkdir -p run/pretrain
cp prun/metrics.h5 prun/eval.h5 run/pretrain/ 2>/dev/null
"$RLHF" plot run --out plots >/dev/null 2>&1 && pass "plot setup" || fail "plot setup"
dat=$(ls plots/*.dat | head -1)
png=$(ls plots/*.png | head -1)
for t in fifo dir; do
    for f in "$dat" "$png"; do
        rm -f "$f"
        if [ $t = fifo ]; then mkfifo "$f"; else mkdir "$f"; fi
        ERR_ALONE=0
        expect_err "plot: $(basename "$f") a $t" "$f: exists and is not a regular file" timeout -s KILL 20 "$RLHF" plot run --out plots
        ERR_ALONE=1
        [ "$( [ $t = fifo ] && echo fifo || echo directory)" = "$(kind "$f")" ] && pass "plot: $(basename "$f") left a $t" ||
            fail "plot: $(basename "$f") left a $t"
        rmdir "$f" 2>/dev/null || rm -f "$f"
        "$RLHF" plot run --out plots >/dev/null 2>&1
    done
done
rm -f "$dat"
ln -s ../victim.txt "$dat"
"$RLHF" plot run --out plots >/dev/null 2>&1 && [ "$(kind "$dat")" = "regular file" ] &&
    pass "plot: a symlinked .dat replaced as a link" || fail "plot: a symlinked .dat replaced as a link" "$(ls -l "$dat")"
same base "plot: the .dat link's target untouched"
no_temporaries plots

# --- item 2: an output that is an input of the same command --------------------
rm -f "$dat"
ln run/pretrain/metrics.h5 "$dat"
snap log run/pretrain/metrics.h5
ERR_ALONE=0
expect_err "plot: a .dat hard-linked to a log it reads" "$dat: is the same file as the input" \
    timeout -s KILL 20 "$RLHF" plot run --out plots
ERR_ALONE=1
same log "plot: the log byte-identical"
rm -f "$dat"
expect_err "eval --samples = --prompts" "p.jsonl: is the same file as the input" "${EV[@]}" --samples p.jsonl
expect_err "eval --samples = --policy" "m.h5: is the same file as the input" "${EV[@]}" --samples m.h5
expect_err "eval --samples = --ref" "m7.h5: is the same file as the input" "${EV[@]}" --ref m7.h5 --samples ./m7.h5
ln m.h5 hardlink.h5
expect_err "eval --samples hard link of --policy" "hardlink.h5: is the same file as the input m.h5" "${EV[@]}" \
    --samples hardlink.h5
same base "eval: inputs byte-identical"
mkdir -p self
cp m.h5 self/model.safetensors
snap self self/model.safetensors
expect_err "export-hf onto its own input" "self/model.safetensors: is the same file as the input" \
    "$RLHF" export-hf self/model.safetensors --out self
same self "export-hf: its input byte-identical"
[ ! -e self/config.json ] && pass "export-hf onto its input: nothing written" || fail "export-hf onto its input: nothing written"
"$RLHF" export-hf m.h5 --out hf 2>/dev/null
snap hf hf/*
expect_err "import-hf --out a file of its directory" "hf/model.safetensors: is the same file as the input" \
    "$RLHF" import-hf hf --out hf/model.safetensors --force
same hf "import-hf: the directory byte-identical"
# trainers and ppo: an input that is a file the run writes in out_dir (its
# final.h5, a log, a checkpoint it would prune or remove), by name or by a
# hard link, is refused before out_dir is touched. Before: overwrite=1
# removed the init checkpoint it had just loaded; a data file hard-linked as
# out_dir/metrics.h5 was truncated by the log
ERR_ALONE=0
digest() { (cd "$1" && find . -type f ! -name .lock | LC_ALL=C sort | xargs sha256sum); }
before=$(digest prun)
expect_err "pretrain init = a checkpoint of its out_dir (overwrite=1 would remove it)" \
    "prun/ckpt-00000002.h5: is the same file as the input prun/ckpt-00000002.h5; refusing to overwrite an input (key init)" \
    "${TR[@]}" out_dir=prun init=prun/ckpt-00000002.h5 overwrite=1
expect_err "sft init = out_dir/final.h5" "prun/final.h5: is the same file as the input prun/final.h5; .* (key init)" \
    timeout -s KILL 20 "$RLHF" sft init=prun/final.h5 out_dir=prun train_data=data/sft.jsonl batch_size=8 micro_batch=8 \
    max_steps=2 overwrite=1
[ "$(digest prun)" = "$before" ] && pass "trainers: the run directory byte-identical" ||
    fail "trainers: the run directory byte-identical" "$(ls -l prun)"
mkdir -p hl
cp data/pretrain.txt text.txt
ln text.txt hl/metrics.h5
snap text text.txt
expect_err "pretrain train_data hard-linked as out_dir/metrics.h5" \
    "hl/metrics.h5: is the same file as the input text.txt; refusing to overwrite an input (key train_data)" \
    "${TR[@]}" out_dir=hl train_data=text.txt
same text "pretrain: the hard-linked data byte-identical"
use_mpirun
"$RLHF" init --out rmi.h5 --head scalar --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32 2>/dev/null
mkdir -p pp
cp m.h5 pp/final.h5
snap pp pp/final.h5
expect_err "ppo policy = out_dir/final.h5" "pp/final.h5: is the same file as the input pp/final.h5; .* (key policy)" \
    timeout -s KILL 60 $MPIRUN -n 3 "$RLHF" ppo policy=pp/final.h5 reward_model=rmi.h5 prompts=p.jsonl out_dir=pp \
    batch_size=4 chunk=2 minibatch=2 micro_batch=2 max_new=4 iterations=1 ppo_epochs=1 log_samples=0
same pp "ppo: its policy byte-identical"
[ ! -e pp/metrics.h5 ] && [ ! -e pp/settings.cfg ] && pass "ppo: nothing written in out_dir" ||
    fail "ppo: nothing written in out_dir" "$(ls pp)"
ERR_ALONE=1

# --- item 6: export-hf into an existing export is atomic as a whole ------------
for f in model.safetensors vocab.json merges.txt config.json; do
    expect_err "export-hf failing at $f" "$f.tmp.*write failed" env RLHF_TEST_FAIL_WRITE=$f "$RLHF" export-hf m7.h5 --out hf
    same hf "export-hf failing at $f: old export unchanged"
done
# the same without fault injection: merges.txt is a directory, refused only
# after the new weights were renamed into place before the fix
mkdir -p hfd
"$RLHF" export-hf m.h5 --out hfd 2>/dev/null
rm hfd/merges.txt
mkdir hfd/merges.txt
snap hfd hfd/config.json hfd/model.safetensors hfd/vocab.json
expect_err "export-hf with merges.txt a directory" "hfd/merges.txt: exists and is not a regular file" \
    "$RLHF" export-hf m7.h5 --out hfd
same hfd "export-hf with merges.txt a directory: old files unchanged"
no_temporaries hf hfd
expect_ok "export-hf over an export" "$RLHF" export-hf m7.h5 --out hf
! sha256sum -c --quiet "$T/snap.hf" >/dev/null 2>&1 && pass "export-hf over an export: replaced" ||
    fail "export-hf over an export: replaced"

# --- item 7: init and import-hf keep an existing checkpoint unless --force ------
expect_err "init onto an existing checkpoint" "m.h5: exists; give --force" "$RLHF" init --out m.h5 --seed 9
expect_err "import-hf onto an existing checkpoint" "m7.h5: exists; give --force" "$RLHF" import-hf hf --out m7.h5
expect_err "init onto a dangling symlink" "dangle.h5: exists; give --force" \
    sh -c "ln -s nowhere dangle.h5 && exec \"$RLHF\" init --out dangle.h5"
same base "init/import-hf without --force: checkpoints byte-identical"
cp m.h5 f.h5
expect_ok "init --force" "$RLHF" init --out f.h5 --force --seed 9 --n-layer 1 --n-head 2 --n-embd 16 --n-ctx 32
! cmp -s m.h5 f.h5 && pass "init --force replaced it" || fail "init --force replaced it"
expect_ok "import-hf --force" "$RLHF" import-hf hf --out f.h5 --force

# --- item 11: FIFOs where seekable files belong; pipes for text inputs ----------
expect_err "generate --model FIFO" "fifo: a checkpoint must be a regular file, not a FIFO" \
    timeout -s KILL 10 "$RLHF" generate --model fifo --prompt x
expect_err "inspect FIFO" "fifo: a checkpoint must be a regular file" timeout -s KILL 10 "$RLHF" inspect fifo
expect_err "export-hf FIFO checkpoint" "fifo: a checkpoint must be a regular file" \
    timeout -s KILL 10 "$RLHF" export-hf fifo --out hfy
expect_err "eval --ref FIFO" "fifo: a checkpoint must be a regular file" \
    timeout -s KILL 10 "$RLHF" eval --policy m.h5 --prompts p.jsonl --ref fifo
ERR_ALONE=0
expect_err "sft init=FIFO" "fifo: a checkpoint must be a regular file" \
    timeout -s KILL 20 "$RLHF" sft init=fifo out_dir=sftf train_data=data/sft.jsonl max_steps=1
ERR_ALONE=1
for f in config.json model.safetensors vocab.json merges.txt; do
    rm -rf hff
    cp -r hf hff
    rm hff/$f
    mkfifo hff/$f
    expect_err "import-hf $f a FIFO" "hff/$f: a file of a Hugging Face directory must be a regular file, not a FIFO" \
        timeout -s KILL 10 "$RLHF" import-hf hff --out fromfifo.h5
done
[ ! -e fromfifo.h5 ] && pass "import-hf from FIFOs: nothing written" || fail "import-hf from FIFOs: nothing written"
ERR_ALONE=0
expect_ok "eval --prompts from a pipe" timeout 60 "$RLHF" eval --policy m.h5 --prompts <(cat p.jsonl) --n 2 --max-new 4
expect_ok "generate --prompts from a pipe" timeout 60 "$RLHF" generate --model m.h5 --prompts <(printf '{"prompt": "Hi"}\n{"prompt": "Yo"}\n') --max-new 4
ERR_ALONE=1
devnull_intact "end"
same base "end: pre-existing files byte-identical"

exit $((NFAIL > 0))
