#!/bin/sh
# bench/run.sh BUILD_DIR — `make bench`: run every bench/bench_* binary with
# no arguments (each picks defaults; see its header comment), then the
# store's crash soak (SLIM_SOAK_ROUNDS, default 200).  Prints each program's
# output under a header; exits non-zero if any of them failed.  Figures are
# copied by hand into docs/BENCHMARKS.md with the command that made them.
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$B" && pwd)
export SLIM_BUILD="$B" SLIM_ROOT="$ROOT" PATH="$B/bin:$PATH"
W=$(mktemp -d "${TMPDIR:-/tmp}/slim-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
export SLIM_TMP="$W"
# the tokenizer benchmark wants a corpus; build the demo corpus once if we can
if [ -z "$SLIM_CORPUS" ] && [ -f "$ROOT/tests/corpus.sh" ]; then
    sh "$ROOT/tests/corpus.sh" "$W/corpus.txt" > /dev/null 2>&1 && export SLIM_CORPUS="$W/corpus.txt"
fi
failed=0
for b in "$B"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    ( cd "$W" && "$b" ) || { echo "bench: $(basename "$b") failed"; failed=$((failed + 1)); }
done
echo "== store crash soak (SLIM_SOAK_ROUNDS=${SLIM_SOAK_ROUNDS:-200})"
SLIM_SOAK_ROUNDS=${SLIM_SOAK_ROUNDS:-200} "$B/tests/test_store_crash" || failed=$((failed + 1))
[ "$failed" -eq 0 ]
