#!/usr/bin/python3
"""make_seeds — writes the committed seed corpora tests/fuzz/corpus/TARGET/
from hand-written examples and the base files of make_seeds.c (argv[1]).
Small valid inputs of every kind each parser accepts, plus a few typical
mistakes; the fuzzers grow their own corpora from these."""
import json
import os
import random
import struct
import sys

BASE = sys.argv[1]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(*p):
    with open(os.path.join(BASE, *p), "rb") as f:
        return f.read()


# ---- jsonl ----------------------------------------------------------------
put("fuzz_jsonl", "sft", '{"prompt": "2+2=", "completion": " 4"}\n{"prompt": "a", "completion": "b"}\n')
put("fuzz_jsonl", "prefs", '{"prompt": "Hi", "chosen": " hello", "rejected": " go away"}\n')
put("fuzz_jsonl", "ranking", '{"prompt": "x", "ranking": ["best", "mid", "worst"]}\n')
put("fuzz_jsonl", "prompts", '\ufeff{"prompt": "caf\u00e9 \\u00e9\\n"}\r\n\n   \n{"prompt": "q", "id": 3.0}\n')
put("fuzz_jsonl", "bad", '{"prompt": 1}\n[1, 2]\n{"prompt": "a", "prompt": "b"}\n{"prompt": "\xff"}\n{"x":\n')

# ---- config ---------------------------------------------------------------
put("fuzz_config", "file", b"\x00# run\nbatch_size = 16\nlr = 3e-4   # peak\nname = \"two words # x\"\n"
    b"resume = yes\nkl_estimator = K3\nprompts = data/p.jsonl\nempty =\n")
put("fuzz_config", "file_bad", b"\x00batch_size = 8x\nlr = inf\nbatch = 3\n = 4\nname = \"open\n")
put("fuzz_config", "args", b"\x01--config\x00@\x00batch_size=32\x00--lr\x001e-3\x00--resume\x00prompts=p.jsonl")
put("fuzz_config", "args_bad", b"\x01--batch-size=x\x00--nope\x00= 3\x00--help")

# ---- safetensors ------------------------------------------------------------
def safetensors(header, data, pad=True):
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


model = read("hf", "model.safetensors")
put("fuzz_safetensors", "base_model", model)
put("fuzz_hf_safetensors", "base_model", model)
vals = struct.pack("<4f", 1.0, -2.5, 0.0, 3.0e38)
put("fuzz_safetensors", "dtypes", safetensors({
    "__metadata__": {"format": "pt"},
    "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    "h": {"dtype": "F16", "shape": [2], "data_offsets": [16, 20]},
    "b": {"dtype": "BF16", "shape": [2], "data_offsets": [20, 24]},
    "d": {"dtype": "F64", "shape": [1], "data_offsets": [24, 32]},
    "i": {"dtype": "I64", "shape": [], "data_offsets": [32, 40]},
    "e": {"dtype": "U8", "shape": [0, 5], "data_offsets": [40, 40]}},
    vals + struct.pack("<2e", 1.5, -0.0) + b"\x80\x3f\x00\xc0" + struct.pack("<d", 0.1) + struct.pack("<q", -7)))
put("fuzz_safetensors", "overlap", safetensors({
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, vals))

# The base weights in other spellings hf_import accepts: the
# "transformer." prefix, F16 data, a tied lm_head.weight.
n = struct.unpack("<Q", model[:8])[0]
hdr = json.loads(model[8:8 + n])
data = model[8 + n:]
meta = hdr.pop("__metadata__", None)
pref = {("transformer." + k): v for k, v in hdr.items()}
put("fuzz_hf_safetensors", "prefixed", safetensors(pref, data))
half, off, hdr16 = b"", 0, {}
for k, v in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    b, e = v["data_offsets"]
    floats = struct.unpack("<%df" % ((e - b) // 4), data[b:e])
    chunk = struct.pack("<%de" % len(floats), *floats)
    hdr16[k] = {"dtype": "F16", "shape": v["shape"], "data_offsets": [off, off + len(chunk)]}
    half += chunk
    off += len(chunk)
put("fuzz_hf_safetensors", "f16", safetensors(hdr16, half))
wte = hdr["wte.weight"]
tied = dict(hdr)
b, e = wte["data_offsets"]
tied["lm_head.weight"] = {"dtype": "F32", "shape": wte["shape"], "data_offsets": [len(data), len(data) + e - b]}
put("fuzz_hf_safetensors", "tied_lm_head", safetensors(tied, data + data[b:e]))

# ---- hf config.json ---------------------------------------------------------
cfg = read("hf", "config.json")
put("fuzz_hf_config", "base", cfg)
c = json.loads(cfg)
put("fuzz_hf_config", "minimal", json.dumps({k: c[k] for k in ("n_embd", "n_layer", "n_head", "vocab_size")} | {"n_ctx": 4}))
c2 = dict(c, architectures=["GPT2ForSequenceClassification"], num_labels=1, n_inner=16)
put("fuzz_hf_config", "classifier", json.dumps(c2))
put("fuzz_hf_config", "wrong", json.dumps(dict(c, n_embd=2**31, layer_norm_epsilon=1e-6, model_type="llama")))

# ---- tokenizer: vocab.json NUL merges.txt ------------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs, k = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


put("fuzz_tok", "base", read("hf", "vocab.json") + b"\0" + read("hf", "merges.txt"))
b2u = bytes_to_unicode()
vocab = {b2u[b]: b for b in range(256)}
merges = []
for a, b in [(" ", "t"), ("h", "e"), (" t", "he"), ("i", "n"), (" ", "a"), ("e", "r"), (" ", " "), ("  ", "  ")]:
    a2, b2 = "".join(b2u[ord(x)] for x in a), "".join(b2u[ord(x)] for x in b)
    merges.append(a2 + " " + b2)
    vocab.setdefault(a2 + b2, len(vocab))
vocab["<|endoftext|>"] = len(vocab)
put("fuzz_tok", "bytes_merges", json.dumps(vocab) + "\0#version: 0.2\n" + "\n".join(merges) + "\n")
put("fuzz_tok", "bad_merge", '{"a": 0, "b": 1, "<|endoftext|>": 2}\0a b\nb\n')

# ---- HDF5 files ---------------------------------------------------------------
put("fuzz_ckpt_raw", "base", read("base.h5"))
put("fuzz_h5log_raw", "base", read("log.h5"))
rng = random.Random(8)
for i in range(6):  # edit programs: any bytes are a valid program
    put("fuzz_ckpt", "edits%d" % i, bytes(rng.randrange(256) for _ in range(24 + 16 * i)))
    put("fuzz_h5log", "edits%d" % i, bytes(rng.randrange(256) for _ in range(24 + 16 * i)))
put("fuzz_ckpt", "none", b"")
put("fuzz_h5log", "none", b"")
