#!/usr/bin/python3
"""torch_ref.py - the slim-train student (RMSNorm, RoPE, SwiGLU, untied head)
and its CE / SLIM losses in PyTorch CPU, for bench/bench_train_throughput.c to compare
training throughput at the same shape and thread count.  A reference and a
benchmark only: never needed by `make test`.  Run with Debian's interpreter:

    /usr/bin/python3 bench/torch_ref.py --threads 2 --layers 4 --dim 256 \
        --heads 4 --ctx 256 --vocab 4096 --batch 8 --steps 6 --k 205

Prints one JSON line per loss: {"loss": "ce", "tokens_per_s": ..., ...} for
the best (least disturbed) of --steps timed steps.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(s, C, H, Fh):
        super().__init__()
        s.H = H
        s.rms1 = torch.nn.Parameter(torch.ones(C))
        s.rms2 = torch.nn.Parameter(torch.ones(C))
        s.wq, s.wk, s.wv, s.wo = (torch.nn.Linear(C, C, bias=False) for _ in range(4))
        s.w1 = torch.nn.Linear(C, Fh, bias=False)
        s.w3 = torch.nn.Linear(C, Fh, bias=False)
        s.w2 = torch.nn.Linear(Fh, C, bias=False)

    def forward(s, x, cos, sin):
        B, T, C = x.shape
        h = rms(x, s.rms1)
        q, k, v = (w(h).view(B, T, s.H, C // s.H).transpose(1, 2) for w in (s.wq, s.wk, s.wv))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // s.H)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + s.wo((att @ v).transpose(1, 2).reshape(B, T, C))
        h = rms(x, s.rms2)
        return x + s.w2(F.silu(s.w1(h)) * s.w3(h))


def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):  # pairs (2i, 2i+1) as in train/model.c
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), -1).flatten(-2)


class Student(torch.nn.Module):
    def __init__(s, V, C, L, H, T, Fh):
        super().__init__()
        s.wte = torch.nn.Embedding(V, C)
        s.blocks = torch.nn.ModuleList(Block(C, H, Fh) for _ in range(L))
        s.rmsf = torch.nn.Parameter(torch.ones(C))
        s.head = torch.nn.Linear(C, V, bias=False)
        hs = C // H
        freq = 10000.0 ** (-2.0 * torch.arange(hs // 2) / hs)
        ang = torch.arange(T)[:, None] * freq[None, :]
        s.register_buffer("cos", ang.cos())
        s.register_buffer("sin", ang.sin())

    def forward(s, idx):
        x = s.wte(idx)
        for b in s.blocks:
            x = b(x, s.cos, s.sin)
        return s.head(rms(x, s.rmsf))


def slim_loss(logits, y, ids, pt):
    """CE + w KD_K (renorm), w = 1 - exp(-p_T(y)/p_S(y)) detached."""
    logp = logits.log_softmax(-1)
    ce = -logp.gather(-1, y[..., None]).squeeze(-1)
    q = pt / pt.sum(-1, keepdim=True)
    kd = -(q * logp.gather(-1, ids)).sum(-1)
    pty = (pt * (ids == y[..., None])).sum(-1)
    w = (1 - torch.exp(-pty / ce.neg().exp())).detach()
    return (ce + w * kd).mean()


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(threads=2, layers=4, dim=256, heads=4, ctx=256, vocab=4096, batch=8,
                     steps=6, k=205, ffn=0).items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    Fh = a.ffn or (8 * a.dim // 3 + 31) // 32 * 32
    m = Student(a.vocab, a.dim, a.layers, a.heads, a.ctx, Fh)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    idx = torch.randint(a.vocab, (a.batch, a.ctx))
    y = torch.randint(a.vocab, (a.batch, a.ctx))
    ids = torch.stack([torch.randperm(a.vocab)[:a.k] for _ in range(a.batch * a.ctx)]).view(a.batch, a.ctx, a.k)
    pt = torch.rand(a.batch, a.ctx, a.k) / a.k
    for name in ("ce", "slim"):
        def step():
            logits = m(idx)
            if name == "ce":
                loss = F.cross_entropy(logits.view(-1, a.vocab), y.view(-1))
            else:
                loss = slim_loss(logits, y, ids, pt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
        step()  # warm-up
        best = float("inf")
        for _ in range(a.steps):  # best step: the machine may be shared
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
        print(json.dumps({"loss": name, "tokens_per_s": a.batch * a.ctx / best,
                          "step_s": best, "threads": a.threads,
                          "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
