#!/usr/bin/python3
"""ckpt_ref.py CKPT LOGITS.json — an independent reading of a slim-train
checkpoint, following docs/CHECKPOINT.md byte by byte, and the student's
forward in PyTorch (float64, the whole sequence at once, causal mask);
compares with the logits slim's KV-cache path printed (tests/ref/dump_logits.c).
Exit 0 when the largest difference is below 1e-3.  Debian's /usr/bin/python3
with python3-torch; never needed by make test."""
import json
import struct
import sys

import torch


def read_ckpt(path):
    b = open(path, "rb").read()
    assert b[:8] == b"SLIMCKPT", "bad magic"
    ver, hdr = struct.unpack_from("<II", b, 8)
    assert ver == 1 and hdr == 256
    V, T, L, C, H, F, tie = struct.unpack_from("<7i", b, 16)
    theta, eps = struct.unpack_from("<2f", b, 44)
    flags, n = struct.unpack_from("<IQ", b, 52)
    (clen,) = struct.unpack_from("<I", b, 168)
    blocks = 3 if flags & 1 else 1
    assert len(b) == 256 + blocks * n * 4 + clen, "size does not match the header"
    p = torch.frombuffer(bytearray(b[256:256 + n * 4]), dtype=torch.float32).double()
    off = 0

    def take(*shape):
        nonlocal off
        cnt = 1
        for s in shape:
            cnt *= s
        t = p[off:off + cnt].view(*shape)
        off += cnt
        return t
    w = dict(wte=take(V, C), rms1=take(L, C), wq=take(L, C, C), wk=take(L, C, C),
             wv=take(L, C, C), wo=take(L, C, C), rms2=take(L, C), w1=take(L, F, C),
             w3=take(L, F, C), w2=take(L, C, F), rmsf=take(C))
    w["head"] = w["wte"] if tie else take(V, C)
    assert off == n, "tensor sizes do not add up to n"
    return dict(V=V, T=T, L=L, C=C, H=H, F=F, theta=theta, eps=eps), w


def forward(cfg, w, toks):
    T, C, H = len(toks), cfg["C"], cfg["H"]
    hs = C // H
    rms = lambda x, g: x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg["eps"]) * g
    freq = torch.tensor(cfg["theta"], dtype=torch.float64) ** (-2.0 * torch.arange(hs // 2, dtype=torch.float64) / hs)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
    cos, sin = ang.cos(), ang.sin()

    def rope(x):  # (H, T, hs), pairs (2i, 2i+1)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), -1).flatten(-2)
    x = w["wte"][torch.tensor(toks)]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    for l in range(cfg["L"]):
        h = rms(x, w["rms1"][l])
        q, k, v = ((h @ w[n][l].T).view(T, H, hs).transpose(0, 1) for n in ("wq", "wk", "wv"))
        att = (rope(q) @ rope(k).transpose(-1, -2)) / hs ** 0.5
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(0, 1).reshape(T, C) @ w["wo"][l].T
        h = rms(x, w["rms2"][l])
        a = h @ w["w1"][l].T
        x = x + (a * torch.sigmoid(a) * (h @ w["w3"][l].T)) @ w["w2"][l].T
    return rms(x, w["rmsf"]) @ w["head"].T


def main():
    cfg, w = read_ckpt(sys.argv[1])
    d = json.load(open(sys.argv[2]))
    ref = forward(cfg, w, d["tokens"])
    got = torch.tensor(d["logits"], dtype=torch.float64)
    diff = (ref - got).abs().max().item()
    print(json.dumps({"positions": len(d["tokens"]), "vocab": cfg["V"], "max_abs_diff": diff}))
    sys.exit(0 if diff < 1e-3 else 1)


if __name__ == "__main__":
    main()
