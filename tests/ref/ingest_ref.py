#!/usr/bin/python3
"""ingest_ref.py [BIN_DIR] -- dense ingest checked against PyTorch and numpy.

Writes teacher logits made by torch in every dtype slim reads (F32, F16,
BF16; ids I64 and I32) as safetensors (written here from the published
format: an 8-byte little-endian header length, a JSON header, the raw
tensors) and as .npy files written by numpy itself, ingests each with
slim-ingest (topk:K, --precision lossless), reads every stored entry back
through slim-query, and compares with the reference computed here:

  - the tokens (position t followed by token t + 1) and the selected ids of
    every position: the K largest of torch's logits upcast to float32,
    ties to the lower id;
  - every stored logit bit-for-bit against that upcast value (torch's own
    F16 / BF16 -> F32 conversion);
  - every log-prob against logit - logsumexp(all V) in float64, within
    1e-6 of max(1, |lse|);
  - and once more at the default precision (logprob:0.01): the same ids,
    every value within 0.01 of torch's.

Debian's /usr/bin/python3 with python3-torch and python3-numpy (make
bench-deps); never needed by make test.  Exit 0 when everything agrees.
"""
import csv
import io
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../build/bin")
# two shapes: a small vocabulary (the sparsifier's bins path) and SLIM's top 5 % of V = 32000
# (the sampled-threshold path); both with ties, a flat row and a masked token
SHAPES = [(3, 17, 1003, "topk:40", 40), (2, 9, 32000, "topfrac:0.05", 1600)]


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, torch tensor); data in header order."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dt, t) in tensors.items():
        if dt == "BF16":  # numpy has no bfloat16: its bits as int16
            raw = t.contiguous().view(torch.int16).numpy().tobytes()
        else:
            raw = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the header padded to 8 bytes, as the safetensors library does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def ingest(store, files, ds, spec, eps=0.0):
    prec = "logprob:%g" % eps if eps else "lossless"
    subprocess.run([os.path.join(BIN, "slim-ingest"), "--store", store, "--dataset", ds,
                    "--teacher", ds, "--sparsify", spec, "--precision", prec,
                    "--min-prefix", "0"] + files, check=True, capture_output=True)


def read_back(store, ds):
    sql = ("SELECT seq, pos, rank, token, logit, logprob FROM topk WHERE dataset = '%s' "
           "ORDER BY seq, pos, rank" % ds)
    out = subprocess.run([os.path.join(BIN, "slim-query"), "--store", store, "--csv", sql],
                         check=True, capture_output=True, text=True).stdout
    rows = {}
    for r in csv.DictReader(io.StringIO(out)):
        rows.setdefault((int(r["seq"]), int(r["pos"])), []).append(
            (int(r["token"]), float(r["logit"]), float(r["logprob"])))
    toks = subprocess.run([os.path.join(BIN, "slim-query"), "--store", store, "--csv",
                           "SELECT seq, ntokens FROM seqs WHERE dataset = '%s' ORDER BY seq" % ds],
                          check=True, capture_output=True, text=True).stdout
    pos = subprocess.run([os.path.join(BIN, "slim-query"), "--store", store, "--csv",
                          "SELECT seq, pos, token FROM positions WHERE dataset = '%s'" % ds],
                         check=True, capture_output=True, text=True).stdout
    nexts = {(int(r["seq"]), int(r["pos"])): (int(r["token"]) if r["token"] else None)
             for r in csv.DictReader(io.StringIO(pos))}
    return rows, [int(r["ntokens"]) for r in csv.DictReader(io.StringIO(toks))], nexts


def check(name, got, logits, ids, K, eps=0.0):
    N, T, V = logits.shape
    rows, ntok, nexts = got
    bad, worst = 0, 0.0
    if ntok != [T] * N:
        print("FAIL %s: token counts %s" % (name, ntok))
        return 1
    for n in range(N):  # position t is followed by token t + 1 (none after the last)
        for t in range(T):
            if nexts.get((n, t)) != (ids[n, t + 1].item() if t + 1 < T else None):
                print("FAIL %s: seq %d pos %d: next token %r" % (name, n, t, nexts.get((n, t))))
                bad += 1
    x = logits.float()  # torch's upcast: the values slim must see
    lse = torch.logsumexp(x.double(), dim=-1)
    for n in range(N):
        for t in range(T):
            got = rows.get((n, t))
            row = x[n, t]
            # top K, ties to the lower id: sort by (-value, id)
            order = sorted(range(V), key=lambda i: (-row[i].item(), i))[:K]
            want = sorted(order)
            if got is None or sorted(g[0] for g in got) != want:
                print("FAIL %s: seq %d pos %d: ids differ" % (name, n, t))
                bad += 1
                continue
            for tok, logit, lp in got:
                ref = row[tok].item()
                if ref == float("-inf") and logit == ref:
                    continue  # a masked token among the kept (the flat rows of small V)
                if (np.float32(logit) != np.float32(ref) if not eps else abs(logit - ref) > eps * (1 + 1e-6)):
                    print("FAIL %s: seq %d pos %d token %d: logit %r, torch %r" % (name, n, t, tok, logit, ref))
                    bad += 1
                tol = eps + 1e-6 * max(1.0, abs(lse[n, t].item()))
                worst = max(worst, abs(lp - (ref - lse[n, t].item())))
                if abs(lp - (ref - lse[n, t].item())) > tol:
                    print("FAIL %s: seq %d pos %d token %d: logprob %r, want %r" %
                          (name, n, t, tok, lp, ref - lse[n, t].item()))
                    bad += 1
    print("%s %s: %d positions, %d entries; largest log-prob error %.2g" %
          ("ok" if not bad else "FAIL", name, N * T, N * T * K, worst))
    return bad


def main():
    torch.manual_seed(7)
    fails = 0
    with tempfile.TemporaryDirectory() as d:
        store = os.path.join(d, "s")
        for N, T, V, spec, K in SHAPES:
            base = torch.randn(N, T, V) * 3
            base[0, 3, 10:20] = base[0, 3].topk(K).values[-1].item()  # ties at the K-th value
            base[1, 5, :] = 0.0                # a flat row: the lowest K ids
            base[N - 1, 7, 900] = float("-inf")  # a masked token
            ids = torch.randint(0, V, (N, T), dtype=torch.int64)
            cases = [("F32_I64", "F32", torch.float32, "I64", torch.int64),
                     ("F16_I32", "F16", torch.float16, "I32", torch.int32),
                     ("BF16_I64", "BF16", torch.bfloat16, "I64", torch.int64)]
            for tag, dt, tdt, it, tit in cases:
                name = "V%d_safetensors_%s" % (V, tag)
                lg = base.to(tdt)
                f = os.path.join(d, name + ".safetensors")
                write_safetensors(f, {"input_ids": (it, ids.to(tit)), "logits": (dt, lg)})
                ingest(store, [f], name, spec)
                fails += check(name, read_back(store, name), lg, ids, K)
            # the default precision: the same ids, every value within eps
            name = "V%d_safetensors_F32_logprob0.01" % V
            f = os.path.join(d, name + ".safetensors")
            write_safetensors(f, {"input_ids": ("I64", ids), "logits": ("F32", base)})
            ingest(store, [f], name, spec, 0.01)
            fails += check(name, read_back(store, name), base, ids, K, 0.01)
            for tag, ndt in [("f4", np.float32), ("f2", np.float16)]:
                name = "V%d_npy_%s" % (V, tag)
                nd = os.path.join(d, name)
                os.mkdir(nd)
                np.save(os.path.join(nd, "input_ids.npy"), ids.numpy())
                np.save(os.path.join(nd, "logits.npy"), base.numpy().astype(ndt))
                ingest(store, [nd], name, spec)
                fails += check(name, read_back(store, name), torch.from_numpy(base.numpy().astype(ndt)), ids, K)
    print("%d failed" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
