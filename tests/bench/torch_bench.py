#!/usr/bin/python3
"""torch_bench — the PyTorch side of the model benchmark: the same GPT-2
architecture as common/model/gpt.c (pre-LN, GELU-tanh, learned positions, tied
unembedding, Conv1D weight layout) in float32 torch, timed on the two things
the C model is timed on:
  (a) a training step: forward + cross-entropy + backward + AdamW step;
      tokens/s = batch*T / step time, median of --steps after --warmup steps;
  (b) generation with a KV cache (written here, inference mode): --gen-batch
      sequences, a 16-token random prompt, --gen-new new tokens, greedy.
      gen_tokens_per_s counts new tokens over prefill + decode;
      gen_decode_tokens_per_s leaves the prefill out. Median of --gen-reps.
      Group generation (G samples of one prompt, as GRPO draws them):
      --gen-repeat gives every sequence the same --prompt-len prompt (torch
      prefills it G times, batched), --sample draws from the softmax
      (torch.multinomial) instead of argmax, --skip-train leaves (a) out,
      --prefill-last takes the prefill's logits at the last position only
      (the C side computes only those; without it torch unembeds every
      prompt position, 384 rows x 50257 for a group of 8 x 48 tokens).
It prints one JSON line (with --json nothing else) holding the numbers, the
torch thread setting and the OpenBLAS thread count torch's BLAS actually uses.

Example (the reference configuration; keep the machine's other users in mind):
    OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \\
      /usr/bin/python3 tests/bench/torch_bench.py --vocab 257 --d 256 --layers 4 \\
      --heads 4 --T 128 --batch 8 --steps 10 --gen-new 128 --gen-batch 8 --threads 2 --json
The model's n_positions is max(T, 16 + gen-new) so generation fits.
"""
import argparse
import ctypes
import ctypes.util
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

PROMPT_LEN = 16  # --prompt-len
LN_EPS = 1e-5


class GPT(torch.nn.Module):
    """GPT-2 with Conv1D-layout weights (y = x @ W + b), GPT-2 initialisation."""

    def __init__(self, vocab, n_pos, d, layers, heads):
        super().__init__()
        self.d, self.heads, self.layers = d, heads, layers
        P = torch.nn.Parameter
        std, proj_std = 0.02, 0.02 / math.sqrt(2 * layers)
        self.wte = P(torch.randn(vocab, d) * std)
        self.wpe = P(torch.randn(n_pos, d) * std)
        self.blocks = torch.nn.ModuleList()
        for _ in range(layers):
            b = torch.nn.Module()
            b.ln1_w, b.ln1_b = P(torch.ones(d)), P(torch.zeros(d))
            b.attn_w, b.attn_b = P(torch.randn(d, 3 * d) * std), P(torch.zeros(3 * d))
            b.proj_w, b.proj_b = P(torch.randn(d, d) * proj_std), P(torch.zeros(d))
            b.ln2_w, b.ln2_b = P(torch.ones(d)), P(torch.zeros(d))
            b.fc_w, b.fc_b = P(torch.randn(d, 4 * d) * std), P(torch.zeros(4 * d))
            b.fcp_w, b.fcp_b = P(torch.randn(4 * d, d) * proj_std), P(torch.zeros(d))
            self.blocks.append(b)
        self.lnf_w, self.lnf_b = P(torch.ones(d)), P(torch.zeros(d))

    def _heads(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.d // self.heads).transpose(1, 2)

    def _block(self, b, x, past_len=0, cache=None):
        """One block. With cache = (k_buf, v_buf) of shape (B, H, max_len, hs),
        writes this call's keys/values at past_len.. and attends over 0..end."""
        B, T, C = x.shape
        h = F.layer_norm(x, (C,), b.ln1_w, b.ln1_b, LN_EPS)
        q, k, v = (torch.addmm(b.attn_b, h.view(-1, C), b.attn_w)
                   .view(B, T, 3 * C).split(C, dim=-1))
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if cache is not None:
            end = past_len + T
            cache[0][:, :, past_len:end] = k
            cache[1][:, :, past_len:end] = v
            k, v = cache[0][:, :, :end], cache[1][:, :, :end]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))
        if T > 1:  # causal mask; a single new token sees all of the past
            S = k.shape[2]
            mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B * T, C)
        x = x + torch.addmm(b.proj_b, y, b.proj_w).view(B, T, C)
        h = F.layer_norm(x, (C,), b.ln2_w, b.ln2_b, LN_EPS).view(-1, C)
        h = F.gelu(torch.addmm(b.fc_b, h, b.fc_w), approximate="tanh")
        return x + torch.addmm(b.fcp_b, h, b.fcp_w).view(B, T, C)

    def forward(self, tokens, past_len=0, caches=None, last_only=False):
        T = tokens.shape[1]
        x = self.wte[tokens] + self.wpe[past_len:past_len + T]
        for i, b in enumerate(self.blocks):
            x = self._block(b, x, past_len, caches[i] if caches else None)
        if last_only:
            x = x[:, -1:]
        x = F.layer_norm(x, (self.d,), self.lnf_w, self.lnf_b, LN_EPS)
        return x @ self.wte.T


def openblas_threads():
    """Threads of the OpenBLAS library torch's BLAS calls land in, or None."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("openblas") or "libopenblas.so.0")
        return int(lib.openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


def make_optimizer(model):
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=3e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)


def bench_train(model, args):
    opt = make_optimizer(model)
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(0, args.vocab, (args.batch, args.T + 1), generator=g)
    tokens, targets = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
    times, loss = [], None
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, args.vocab), targets.view(-1))
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    return {"train_step_ms": 1e3 * step,
            "train_tokens_per_s": args.batch * args.T / step,
            "train_final_loss": float(loss)}


@torch.inference_mode()
def generate(model, prompt, n_new, max_len, sample=False, prefill_last=False):
    """Greedy (or, with sample, multinomial) decoding with a preallocated KV
    cache; returns (tokens, prefill seconds, total seconds)."""
    B = prompt.shape[0]
    hs = model.d // model.heads
    caches = [(torch.empty(B, model.heads, max_len, hs), torch.empty(B, model.heads, max_len, hs))
              for _ in range(model.layers)]
    out = torch.empty(B, n_new, dtype=torch.long)
    t0 = time.perf_counter()
    logits = model(prompt, 0, caches, last_only=prefill_last)
    pick = ((lambda l: torch.multinomial(l.softmax(-1), 1).view(-1)) if sample
            else (lambda l: l.argmax(-1)))
    nxt = pick(logits[:, -1])
    t_prefill = time.perf_counter() - t0
    out[:, 0] = nxt
    pos = prompt.shape[1]
    for i in range(1, n_new):
        logits = model(nxt.view(B, 1), pos, caches)
        nxt = pick(logits[:, -1])
        out[:, i] = nxt
        pos += 1
    return out, t_prefill, time.perf_counter() - t0


@torch.inference_mode()
def check_cache(model, args):
    """The cached path must give the same logits as a full forward."""
    g = torch.Generator().manual_seed(3)
    seq = torch.randint(0, args.vocab, (2, PROMPT_LEN + 4), generator=g)
    shape = (2, model.heads, PROMPT_LEN + 4, model.d // model.heads)
    caches = [(torch.empty(shape), torch.empty(shape)) for _ in range(model.layers)]
    got = [model(seq[:, :PROMPT_LEN], 0, caches)[:, -1]]
    for p in range(PROMPT_LEN, PROMPT_LEN + 4):
        got.append(model(seq[:, p:p + 1], p, caches)[:, -1])
    full = model(seq)[:, PROMPT_LEN - 1:]
    err = (torch.stack(got, 1) - full).abs().max().item()
    if err > 1e-4:
        sys.exit(f"torch_bench: KV-cache logits differ from full forward by {err:g}")


def bench_generate(model, args):
    check_cache(model, args)
    g = torch.Generator().manual_seed(2)
    if args.gen_repeat:  # one prompt, G times (a group)
        prompt = torch.randint(0, args.vocab, (1, PROMPT_LEN), generator=g).repeat(args.gen_batch, 1)
    else:
        prompt = torch.randint(0, args.vocab, (args.gen_batch, PROMPT_LEN), generator=g)
    max_len = PROMPT_LEN + args.gen_new
    gen = lambda n: generate(model, prompt, n, max_len, args.sample, args.prefill_last)
    gen(min(8, args.gen_new))  # warm-up
    runs = [gen(args.gen_new) for _ in range(args.gen_reps)]
    total = statistics.median(r[2] for r in runs)
    decode = statistics.median(r[2] - r[1] for r in runs)
    n_new = args.gen_batch * args.gen_new
    return {"gen_tokens_per_s": n_new / total,
            "gen_decode_tokens_per_s": args.gen_batch * (args.gen_new - 1) / decode,
            "gen_prefill_ms": 1e3 * statistics.median(r[1] for r in runs),
            "gen_first_tokens": runs[0][0][0, :8].tolist()}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=257)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--T", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    ap.add_argument("--gen-new", type=int, default=128)
    ap.add_argument("--gen-batch", type=int, default=8)
    ap.add_argument("--gen-reps", type=int, default=3)
    ap.add_argument("--prompt-len", type=int, default=16, help="generation prompt tokens")
    ap.add_argument("--gen-repeat", action="store_true", help="every sequence gets the same prompt (a group)")
    ap.add_argument("--sample", action="store_true", help="multinomial sampling instead of argmax")
    ap.add_argument("--prefill-last", action="store_true", help="prefill logits at the last position only")
    ap.add_argument("--skip-train", action="store_true", help="generation only")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    a = ap.parse_args()
    if a.d % a.heads or min(a.vocab, a.d, a.layers, a.heads, a.T, a.batch, a.steps,
                            a.gen_new, a.gen_batch, a.gen_reps, a.threads, a.prompt_len) < 1:
        ap.error("sizes must be positive and --d divisible by --heads")
    return a


def main():
    global PROMPT_LEN
    args = parse_args()
    PROMPT_LEN = args.prompt_len
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    n_pos = max(args.T, PROMPT_LEN + args.gen_new)
    model = GPT(args.vocab, n_pos, args.d, args.layers, args.heads)
    result = {"impl": "torch", "torch_version": torch.__version__,
              "torch_threads": torch.get_num_threads(),
              "openblas_threads": openblas_threads(),
              "env_OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
              "vocab": args.vocab, "d": args.d, "layers": args.layers, "heads": args.heads,
              "T": args.T, "batch": args.batch, "n_positions": n_pos,
              "params": sum(p.numel() for p in model.parameters()),
              "steps": args.steps, "warmup": args.warmup,
              "gen_batch": args.gen_batch, "gen_new": args.gen_new, "prompt_len": PROMPT_LEN,
              "gen_repeat": args.gen_repeat, "sample": args.sample, "prefill_last": args.prefill_last}
    if not args.skip_train:
        result.update(bench_train(model, args))
    result.update(bench_generate(model, args))
    if not args.json:
        if not args.skip_train:
            print(f"train {result['train_tokens_per_s']:.0f} tok/s ({result['train_step_ms']:.1f} ms/step)",
                  file=sys.stderr)
        print(f"generate {result['gen_tokens_per_s']:.0f} new tok/s "
              f"(decode only {result['gen_decode_tokens_per_s']:.0f})", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
