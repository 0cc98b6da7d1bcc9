#!/usr/bin/python3
"""torch_rl_bench — the PyTorch side of the RL iteration benchmark: one
iteration of our RL job (`rlhf ppo` / `rlhf grpo` with one actor, one
rewarder, one learner) written as one float32 torch script, same model
(torch_bench.GPT: the GPT-2 of common/model/gpt.c), same batch, group size,
response length, epochs, minibatches, micro-batches and loss. Timed per phase:

  generate  the actor's work: batch_size rollouts in orders of --chunk
            (chunk / G prompts, each sampled G times), KV-cache sampling at
            temperature 1 with the behaviour log-prob of every sampled token,
            stopping at the end token or --max-new. A group's prompt is
            prefilled once and its cache copied to the G rows (as our actor).
            Rows that have ended ride along until the whole order is done.
  reward    the rewarder's work, per order: the reference model's log-probs
            of the response tokens (one forward of prompt + response; not with
            --kl-in none), per-token KL (k1 or k3), and the sequence score:
            --reward rm runs the reward model (scalar head on the last token
            of prompt + response + end token); --reward rule is a cheap
            stand-in for our gold verifier (which parses the arithmetic):
            1 if the decoded bytes hold a digit, else 0, plus a length
            penalty. Token rewards: score on the last token, -kl_coef * KL on
            every token with --kl-in reward.
  learn     the learner's work: advantages (gae: the value model's forward
            over the batch in micro-batches, GAE, whitening; grpo: the
            group-normalised score), then --ppo-epochs passes over a random
            permutation in minibatches of --minibatch, each accumulated over
            micro-batches of --micro-batch: the policy forward (log-probs of
            the response tokens, entropy detached), PPO's clipped surrogate
            (clip_low / clip_high, log-ratio clamped to +-20), the k3 KL to the
            reference in the loss with --kl-in loss, aggregated by --loss-agg;
            for gae the value model's forward and clipped value loss; backward,
            gradient-norm clip, AdamW step per model.

The times are medians over --iterations after --warmup untimed iterations;
the iteration time is the sum of the phases plus the bookkeeping between
them (torch runs them one after another in one process). Prompts come from
--prompts (JSON lines of token-id lists: the bench takes our run's prompts
from its rollouts.h5) or are random (--prompt-len tokens). Prints one JSON
line (with --json nothing else).

Example (the bench's GRPO row):
    OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \\
      /usr/bin/python3 tests/bench/torch_rl_bench.py --algo grpo --vocab 257 --d 256 \\
      --layers 4 --heads 4 --n-ctx 128 --batch-size 64 --chunk 16 --group-size 8 \\
      --max-new 16 --ppo-epochs 2 --minibatch 32 --micro-batch 16 --threads 2 --json
"""
import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import GPT, LN_EPS, openblas_threads  # noqa: E402  (the model benchmark's model)

LOG_RATIO_MAX = 20.0  # common/model/kl.h and learner/ppo_math.c
K3_MAX = 10.0


class Model(GPT):
    """torch_bench's GPT with per-row positions and a key-padding mask (for
    left-padded prompts in sampling) and, with scalar=True, the scalar head
    of a reward or value model (score.weight, score.bias) in place of the
    tied unembedding."""

    def __init__(self, vocab, n_pos, d, layers, heads, scalar=False):
        super().__init__(vocab, n_pos, d, layers, heads)
        if scalar:
            self.score_w = torch.nn.Parameter(torch.randn(d) * 0.02)
            self.score_b = torch.nn.Parameter(torch.zeros(1))

    def _block_masked(self, b, x, col0, cache, allowed):
        """torch_bench's block with an explicit mask allowed (B, 1, T, S)."""
        B, T, C = x.shape
        h = F.layer_norm(x, (C,), b.ln1_w, b.ln1_b, LN_EPS)
        q, k, v = torch.addmm(b.attn_b, h.view(-1, C), b.attn_w).view(B, T, 3 * C).split(C, dim=-1)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        end = col0 + T
        cache[0][:, :, col0:end] = k
        cache[1][:, :, col0:end] = v
        k, v = cache[0][:, :, :end], cache[1][:, :, :end]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))
        if allowed is not None:
            att = att.masked_fill(~allowed, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B * T, C)
        x = x + torch.addmm(b.proj_b, y, b.proj_w).view(B, T, C)
        h = F.layer_norm(x, (C,), b.ln2_w, b.ln2_b, LN_EPS).view(-1, C)
        h = F.gelu(torch.addmm(b.fc_b, h, b.fc_w), approximate="tanh")
        return x + torch.addmm(b.fcp_b, h, b.fcp_w).view(B, T, C)

    def cached(self, tokens, pos, caches, col0, key_valid):
        """Final hidden states of tokens (B, T) at positions pos (B, T), written
        to the caches at columns col0..col0+T; key_valid (B, S) or None."""
        B, T = tokens.shape
        end = col0 + T
        allowed = None
        if T > 1:
            allowed = torch.ones(T, end, dtype=torch.bool).tril(end - T)
            if key_valid is not None:  # a padding query sees itself: no empty rows
                diag = torch.zeros(T, end, dtype=torch.bool)
                diag[torch.arange(T), torch.arange(end - T, end)] = True
                allowed = (allowed & key_valid[:, None, :end]) | diag
        elif key_valid is not None:
            allowed = key_valid[:, None, :end]
        if allowed is not None and allowed.dim() == 3:
            allowed = allowed[:, None]
        x = self.wte[tokens] + self.wpe[pos]
        for i, b in enumerate(self.blocks):
            x = self._block_masked(b, x, col0, caches[i], allowed)
        return F.layer_norm(x, (self.d,), self.lnf_w, self.lnf_b, LN_EPS)

    def hidden(self, tokens):
        """Final hidden states of right-padded rows (causal: padding at the end
        changes nothing before it)."""
        T = tokens.shape[1]
        x = self.wte[tokens] + self.wpe[:T]
        for b in self.blocks:
            x = self._block(b, x)
        return F.layer_norm(x, (self.d,), self.lnf_w, self.lnf_b, LN_EPS)

    def values(self, tokens):
        return self.hidden(tokens) @ self.score_w + self.score_b


# ---- generation ------------------------------------------------------------------------------

@torch.inference_mode()
def sample(model, prompts, G, max_new, eot, n_ctx, gen):
    """prompts: lists of token ids, each sampled G times. Returns per rollout
    (prompt, response tokens, behaviour log-probs)."""
    n_u = len(prompts)
    P = max(len(p) for p in prompts)
    max_new = min(max_new, n_ctx - P)
    S = P + max_new
    pad = torch.tensor([P - len(p) for p in prompts])
    tokens = torch.full((n_u, P), eot, dtype=torch.long)
    for i, p in enumerate(prompts):
        tokens[i, P - len(p):] = torch.tensor(p)
    key_valid = None
    if int(pad.max()):
        key_valid = torch.arange(S)[None, :] >= pad[:, None]
    pos = (torch.arange(P)[None, :] - pad[:, None]).clamp(min=0)
    hs = model.d // model.heads
    caches = [(torch.empty(n_u, model.heads, S, hs), torch.empty(n_u, model.heads, S, hs))
              for _ in range(model.layers)]
    h = model.cached(tokens, pos, caches, 0, key_valid)[:, -1]
    logits = h @ model.wte.T
    # the group shares its prefill
    caches = [(k.repeat_interleave(G, 0), v.repeat_interleave(G, 0)) for k, v in caches]
    logits = logits.repeat_interleave(G, 0)
    pad = pad.repeat_interleave(G, 0)
    if key_valid is not None:
        key_valid = key_valid.repeat_interleave(G, 0)
    B = n_u * G
    out = torch.empty(B, max_new, dtype=torch.long)
    logp = torch.empty(B, max_new)
    lens = torch.zeros(B, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(max_new):
        lsm = logits.log_softmax(-1)  # temperature 1
        nxt = torch.multinomial(lsm.exp(), 1, generator=gen).view(B)
        out[:, t] = nxt
        logp[:, t] = lsm.gather(1, nxt[:, None]).view(B)
        lens += (~done).long()
        done |= nxt == eot
        if t == max_new - 1 or bool(done.all()):
            break
        h = model.cached(nxt[:, None], (P + t - pad)[:, None], caches, P + t, key_valid)
        logits = h[:, -1] @ model.wte.T
    return [(prompts[i // G], out[i, :lens[i]].clone(), logp[i, :lens[i]].clone()) for i in range(B)]


@torch.inference_mode()
def check_cached(model, vocab):
    """The left-padded cached path gives the full forward's logits (rows of
    prompt lengths 5 and 3, then 4 decoding steps)."""
    g = torch.Generator().manual_seed(3)
    seqs = [torch.randint(0, vocab, (5 + 4,), generator=g), torch.randint(0, vocab, (3 + 4,), generator=g)]
    P, S = 5, 9
    pad = torch.tensor([0, 2])
    tokens = torch.zeros(2, P, dtype=torch.long)
    tokens[0], tokens[1, 2:] = seqs[0][:5], seqs[1][:3]
    key_valid = torch.arange(S)[None, :] >= pad[:, None]
    hs = model.d // model.heads
    caches = [(torch.zeros(2, model.heads, S, hs), torch.zeros(2, model.heads, S, hs)) for _ in range(model.layers)]
    got = [model.cached(tokens, (torch.arange(P)[None] - pad[:, None]).clamp(min=0), caches, 0, key_valid)[:, -1]]
    for t in range(3):
        nxt = torch.stack([seqs[0][5 + t], seqs[1][3 + t]])[:, None]
        got.append(model.cached(nxt, (P + t - pad)[:, None], caches, P + t, key_valid)[:, -1])
    for i, plen in enumerate([5, 3]):
        full = model.hidden(seqs[i][None, :plen + 3])[0, plen - 1:]
        err = (torch.stack([x[i] for x in got]) - full).abs().max().item()
        if err > 1e-4:
            sys.exit(f"torch_rl_bench: cached hidden states differ from the full forward by {err:g}")


# ---- packed passes ------------------------------------------------------------------------------

def pack(rows, eot):
    """Rows (prompt, response) as common/model/score.c packs them: prompt +
    response, inputs stop before the last token, T = longest - 1, right-padded
    with the end token. Returns tokens (n, T), targets (n, T) (-1 where no
    response token is predicted), positions (n, R) of response token k's
    prediction and its mask (n, R)."""
    n = len(rows)
    T = max(1, max(len(p) + len(r) for p, r in rows) - 1)
    R = max(len(r) for _, r in rows)
    tokens = torch.full((n, T), eot, dtype=torch.long)
    targets = torch.full((n, T), -1, dtype=torch.long)
    pos = torch.zeros(n, R, dtype=torch.long)
    mask = torch.zeros(n, R)
    for i, (p, r) in enumerate(rows):
        seq = torch.cat([torch.tensor(p), r])
        L = len(seq) - 1
        tokens[i, :L] = seq[:-1]
        targets[i, len(p) - 1:L] = r
        pos[i, :len(r)] = torch.arange(len(p) - 1, len(p) - 1 + len(r))
        mask[i, :len(r)] = 1
    return tokens, targets, pos, mask


def response_logp(model, tokens, targets, pos, want_entropy=False):
    """Log-probs (n, R) of the response tokens (and their entropies,
    detached): one forward, fused log-softmax + gather (cross_entropy)."""
    n, T = tokens.shape
    logits = model(tokens)
    V = logits.shape[-1]
    lp = -F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1, reduction="none").view(n, T)
    out = lp.gather(1, pos)
    ent = None
    if want_entropy:
        with torch.no_grad():
            lg = logits.detach().gather(1, pos[:, :, None].expand(-1, -1, V)).log_softmax(-1)
            ent = -(lg.exp() * lg).sum(-1)
    return out, ent


def kl_tokens(est, logp, ref):
    if est == "k1":
        return logp - ref
    x = (ref - logp).clamp(-LOG_RATIO_MAX, LOG_RATIO_MAX)  # k3, clamped as verl and kl.c
    return (torch.expm1(x) - x).clamp(0.0, K3_MAX)


def padded(seqs, R):
    out = torch.zeros(len(seqs), R)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


# ---- the rewarder -------------------------------------------------------------------------------

def rule_score(resp, eot):
    """Stand-in for the gold verifier: a digit in the decoded bytes, minus a
    word-count style penalty (python, microseconds per response)."""
    body = bytes(int(t) & 0xff for t in resp.tolist() if t != eot)
    return float(any(48 <= c <= 57 for c in body)) - 0.04 * min(10, body.count(b" "))


@torch.inference_mode()
def score_order(a, models, order):
    """Scores one order in place: ref log-probs, KL, score, token rewards."""
    eot = a.vocab - 1
    rows = [(p, r) for p, r, _ in order["rollouts"]]
    n = len(rows)
    if a.kl_in != "none":
        tokens, targets, pos, mask = pack(rows, eot)
        ref, _ = response_logp(models["ref"], tokens, targets, pos)
    if a.reward == "rm":
        seqs = []
        for p, r in rows:
            s = list(p) + r.tolist()
            if not r.numel() or int(r[-1]) != eot:
                s.append(eot)
            seqs.append(s[:a.n_ctx])
        L = torch.tensor([len(s) for s in seqs])
        tok = torch.full((n, int(L.max())), eot, dtype=torch.long)
        for i, s in enumerate(seqs):
            tok[i, :len(s)] = torch.tensor(s)
        h = models["rm"].hidden(tok)
        scores = (h[torch.arange(n), L - 1] @ models["rm"].score_w + models["rm"].score_b).tolist()
    else:
        scores = [rule_score(r, eot) for _, r in rows]
    order["ref"], order["kl"], order["reward"], order["score"] = [], [], [], scores
    for i, (p, r, behav) in enumerate(order["rollouts"]):
        k = len(r)
        ref_i = ref[i, :k].clone() if a.kl_in != "none" else torch.zeros(k)
        kl = kl_tokens(a.kl_estimator, behav, ref_i) if a.kl_in != "none" else torch.zeros(k)
        rew = -a.kl_coef * kl if a.kl_in == "reward" else torch.zeros(k)
        rew[-1] += scores[i]
        order["ref"].append(ref_i)
        order["kl"].append(kl)
        order["reward"].append(rew)


# ---- the learner --------------------------------------------------------------------------------

@torch.no_grad()
def advantages(a, models, batch):
    """Per-token advantages (B, R), returns and old values (gae), from the
    batch of rollouts (prompt, response, behaviour logp) with rewards."""
    eot = a.vocab - 1
    B = len(batch["resp"])
    R = max(len(r) for r in batch["resp"])
    mask = padded([torch.ones(len(r)) for r in batch["resp"]], R)
    if a.advantage == "grpo":
        s = torch.tensor(batch["score"]).view(-1, a.group_size)
        adv = (s - s.mean(1, keepdim=True)) / (s.std(1, keepdim=True) + 1e-6)  # std with n - 1
        return adv.view(B, 1) * mask, None, None
    values = torch.zeros(B, R)
    for start in range(0, B, a.micro_batch):
        idx = range(start, min(B, start + a.micro_batch))
        tokens, _, pos, m = pack([(batch["prompt"][i], batch["resp"][i]) for i in idx], eot)
        v = models["value"].values(tokens).gather(1, pos) * m
        values[start:start + len(idx), :v.shape[1]] = v
    rew = padded(batch["reward"], R)
    adv = torch.zeros(B, R)
    last = torch.zeros(B)
    for t in reversed(range(R)):  # GAE; values (and rewards) are 0 beyond a response's end
        nxt_v = values[:, t + 1] if t + 1 < R else torch.zeros(B)
        delta = rew[:, t] + a.gamma * nxt_v - values[:, t]
        last = (delta + a.gamma * a.lam * last) * mask[:, t]
        adv[:, t] = last
    ret = adv + values
    if a.whiten:
        sel = mask.bool()
        mu, sd = adv[sel].mean(), adv[sel].std()
        adv = (adv - mu) / (sd + 1e-8) * mask
    return adv, ret, values


def agg_weights(a, lens):
    """Per-sequence token weight of --loss-agg over one minibatch."""
    lens = lens.float()
    if a.loss_agg == "token-mean":
        return torch.full_like(lens, 1.0 / float(lens.sum()))
    if a.loss_agg == "seq-mean-token-mean":
        return 1.0 / (len(lens) * lens)
    return torch.full_like(lens, 1.0 / (len(lens) * a.max_new))  # seq-mean-token-sum-norm


def learn(a, models, opts, batch, gen):
    eot = a.vocab - 1
    adv, ret, old_v = advantages(a, models, batch)
    B = len(batch["resp"])
    lens = torch.tensor([len(r) for r in batch["resp"]])
    R = adv.shape[1]
    behav = padded(batch["behav"], R)
    ref = padded(batch["ref"], R)
    lo, hi = (a.clip if a.clip_low < 0 else a.clip_low), (a.clip if a.clip_high < 0 else a.clip_high)
    policy, value = models["policy"], models.get("value")
    stats = {"policy_loss": 0.0, "entropy": 0.0}
    for _ in range(a.ppo_epochs):
        perm = torch.randperm(B, generator=gen)
        for start in range(0, B - a.minibatch + 1, a.minibatch):
            mbi = perm[start:start + a.minibatch]
            w_seq = agg_weights(a, lens[mbi])
            tokens_mb = float(lens[mbi].sum())
            for o in opts.values():
                o.zero_grad(set_to_none=True)
            for m0 in range(0, a.minibatch, a.micro_batch):
                ii = mbi[m0:m0 + a.micro_batch]
                tokens, targets, pos, mask = pack([(batch["prompt"][i], batch["resp"][i]) for i in ii.tolist()], eot)
                r = pos.shape[1]
                logp, ent = response_logp(policy, tokens, targets, pos, want_entropy=True)
                A, old, w = adv[ii, :r], behav[ii, :r], w_seq[m0:m0 + a.micro_batch, None] * mask
                ratio = torch.exp((logp - old).clamp(-LOG_RATIO_MAX, LOG_RATIO_MAX))
                tok_loss = torch.max(-A * ratio, -A * ratio.clamp(1 - lo, 1 + hi))
                loss = (tok_loss * w).sum()
                if a.kl_in == "loss":
                    loss = loss + a.kl_coef * (kl_tokens("k3", logp, ref[ii, :r]) * w).sum()
                if value is not None:  # token-mean clipped value loss, vf_coef
                    v = value.values(tokens).gather(1, pos)
                    vo, rt = old_v[ii, :r], ret[ii, :r]
                    vc = torch.max(torch.min(v, vo + a.value_clip), vo - a.value_clip)
                    vl = torch.max(0.5 * (v - rt) ** 2, 0.5 * (vc - rt) ** 2)
                    loss = loss + a.vf_coef * (vl * mask).sum() / tokens_mb
                loss.backward()
                stats["policy_loss"] += float(loss)
                stats["entropy"] += float((ent * mask).sum()) / tokens_mb
            for name, o in opts.items():
                if a.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(models[name].parameters(), a.grad_clip)
                o.step()
    return stats


# ---- one iteration ------------------------------------------------------------------------------

def iteration(a, models, opts, prompts, it, gen):
    eot = a.vocab - 1
    n_prompts = a.batch_size // a.group_size
    per_order = a.chunk // a.group_size
    ps = [prompts[(it * n_prompts + i) % len(prompts)] for i in range(n_prompts)]
    batch = {k: [] for k in ["prompt", "resp", "behav", "ref", "reward", "score"]}
    t_gen = t_score = 0.0
    t0 = time.perf_counter()
    for o in range(0, n_prompts, per_order):
        t1 = time.perf_counter()
        order = {"rollouts": sample(models["policy"], ps[o:o + per_order], a.group_size, a.max_new, eot,
                                    a.n_ctx, gen)}
        t2 = time.perf_counter()
        score_order(a, models, order)
        t3 = time.perf_counter()
        t_gen += t2 - t1
        t_score += t3 - t2
        for i, (p, r, lp) in enumerate(order["rollouts"]):
            batch["prompt"].append(p)
            batch["resp"].append(r)
            batch["behav"].append(lp)
            batch["ref"].append(order["ref"][i])
            batch["reward"].append(order["reward"][i])
            batch["score"].append(order["score"][i])
    t4 = time.perf_counter()
    stats = learn(a, models, opts, batch, gen)
    t5 = time.perf_counter()
    return {"t_generate": t_gen, "t_score": t_score, "t_learn": t5 - t4, "iter_s": t5 - t0,
            "length": statistics.mean(len(r) for r in batch["resp"]), **stats}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--algo", choices=["ppo", "grpo"], default="grpo",
                    help="defaults of rlhf ppo (gae, RM, KL in the reward, token-mean) or rlhf grpo")
    ap.add_argument("--vocab", type=int, default=257)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--n-ctx", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--group-size", type=int)
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--ppo-epochs", type=int)
    ap.add_argument("--minibatch", type=int, default=16)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--value-lr", type=float, default=1e-5)
    ap.add_argument("--clip", type=float, default=0.2)
    ap.add_argument("--clip-low", type=float, default=-1)
    ap.add_argument("--clip-high", type=float, default=-1)
    ap.add_argument("--kl-in", choices=["reward", "loss", "none"])
    ap.add_argument("--kl-estimator", choices=["k1", "k3"])
    ap.add_argument("--kl-coef", type=float)
    ap.add_argument("--loss-agg", choices=["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
    ap.add_argument("--reward", choices=["rm", "rule"])
    ap.add_argument("--vf-coef", type=float, default=0.1)
    ap.add_argument("--value-clip", type=float, default=0.2)
    ap.add_argument("--gamma", type=float, default=1.0)
    ap.add_argument("--lam", type=float, default=0.95)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--prompts", help="JSON lines, each a list of prompt token ids")
    ap.add_argument("--prompt-len", type=int, default=11, help="random prompts of this length without --prompts")
    ap.add_argument("--iterations", type=int, default=3, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    a = ap.parse_args()
    ppo = a.algo == "ppo"
    for k, pv, gv in [("group_size", 1, 8), ("ppo_epochs", 4, 1), ("kl_in", "reward", "loss"),
                      ("kl_estimator", "k1", "k3"), ("kl_coef", 0.05, 0.04),
                      ("loss_agg", "token-mean", "seq-mean-token-mean"), ("reward", "rm", "rule")]:
        if getattr(a, k) is None:
            setattr(a, k, pv if ppo else gv)
    a.advantage, a.whiten = ("gae", True) if ppo else ("grpo", False)
    if a.d % a.heads or a.chunk % a.group_size or a.batch_size % a.chunk or a.batch_size % a.minibatch:
        ap.error("--d must divide by --heads, --chunk by --group-size, --batch-size by --chunk and --minibatch")
    if a.advantage == "grpo" and a.group_size < 2:
        ap.error("grpo needs --group-size >= 2")
    return a


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    policy = Model(a.vocab, a.n_ctx, a.d, a.layers, a.heads)
    models = {"policy": policy}
    if a.kl_in != "none":
        models["ref"] = copy.deepcopy(policy).requires_grad_(False)
    if a.reward == "rm" or a.advantage == "gae":
        rm = Model(a.vocab, a.n_ctx, a.d, a.layers, a.heads, scalar=True)
        if a.reward == "rm":
            models["rm"] = rm.requires_grad_(False)
        if a.advantage == "gae":  # the value model starts from the reward model (InstructGPT)
            models["value"] = copy.deepcopy(rm).requires_grad_(True)

    def adamw(m, lr):
        return torch.optim.AdamW(m.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, foreach=True)
    check_cached(policy, a.vocab)
    opts = {"policy": adamw(policy, a.lr)}
    if "value" in models:
        opts["value"] = adamw(models["value"], a.value_lr)
    if a.prompts:
        prompts = [json.loads(l) for l in open(a.prompts) if l.strip()]
    else:
        g = torch.Generator().manual_seed(a.seed + 2)
        prompts = torch.randint(0, a.vocab - 1, (a.batch_size, a.prompt_len), generator=g).tolist()
    runs = [iteration(a, models, opts, prompts, it, gen) for it in range(a.warmup + a.iterations)][a.warmup:]
    med = {k: statistics.median(r[k] for r in runs) for k in ["t_generate", "t_score", "t_learn", "iter_s", "length"]}
    result = {"impl": "torch", "algo": a.algo, "torch_version": torch.__version__,
              "torch_threads": torch.get_num_threads(), "openblas_threads": openblas_threads(),
              "vocab": a.vocab, "d": a.d, "layers": a.layers, "heads": a.heads, "n_ctx": a.n_ctx,
              "params": sum(p.numel() for p in policy.parameters()),
              "batch_size": a.batch_size, "chunk": a.chunk, "group_size": a.group_size, "max_new": a.max_new,
              "ppo_epochs": a.ppo_epochs, "minibatch": a.minibatch, "micro_batch": a.micro_batch,
              "advantage": a.advantage, "kl_in": a.kl_in, "reward": a.reward, "loss_agg": a.loss_agg,
              "iterations": a.iterations, "warmup": a.warmup, **med,
              "final_policy_loss": runs[-1]["policy_loss"]}
    if not a.json:
        print("%s: generate %.3f s, reward %.3f s, learn %.3f s, iteration %.3f s (mean response %.1f tokens)"
              % (a.algo, med["t_generate"], med["t_score"], med["t_learn"], med["iter_s"], med["length"]),
              file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
