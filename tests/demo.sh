#!/bin/sh
# tests/demo.sh BUILD_DIR — `make demo` until the real demo exists: a small
# end-to-end round trip through a store.  Writes a few sequences of sparse
# log-probabilities as JSONL (slim's simple form), ingests them, shows the
# store, verifies it, snapshots it and reads the snapshot back.
set -e
B=${1:-build}
B=$(cd "$B" && pwd)
PATH="$B/bin:$PATH"
W=$(mktemp -d "${TMPDIR:-/tmp}/slim-demo.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
S="$W/demo.store"

# 40 sequences of 24 tokens over V=500; top[i] holds 8 (id, logprob) pairs,
# deterministic (awk's srand with a fixed seed).
awk 'BEGIN { srand(7);
  for (s = 0; s < 40; s++) {
    printf "{\"id\":\"doc-%d\",\"tokens\":[", s;
    for (i = 0; i < 24; i++) printf "%s%d", (i ? "," : ""), int(rand() * 500);
    printf "],\"top\":[";
    for (i = 0; i < 23; i++) {
      printf "%s[", (i ? "," : ""); lp = 0;
      for (j = 0; j < 8; j++) { lp -= 0.2 + rand() * 1.5; printf "%s[%d,%.4f]", (j ? "," : ""), j * 50 + int(rand() * 50), lp }
      printf "]"
    }
    printf "]}\n"
  } }' > "$W/demo.jsonl"

echo "== slim-store init"
slim-store --store "$S" init
echo "== slim-ingest (40 sequences, JSONL)"
slim-ingest --store "$S" --dataset demo --teacher demo-teacher --vocab-size 500 "$W/demo.jsonl"
echo "== slim-store info"
slim-store --store "$S" info
echo "== slim-store verify"
slim-store --store "$S" verify
echo "== slim-store snapshot create"
slim-store --store "$S" snapshot create demo-v1 --dataset demo --split valid=0.1
echo "== slim-store snapshot show (first rows)"
slim-store --store "$S" snapshot show demo-v1 --csv | head -6
echo "demo: ok"
