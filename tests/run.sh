#!/bin/sh
# tests/run.sh BUILD_DIR — run every unit test binary and every CLI test
# script; each prints "ok NAME" or "FAIL NAME: why" per case.  Ends with the
# line "N passed, N failed" and exits non-zero when anything failed (or when
# nothing ran at all).  A program that runs past SLIM_TEST_TIMEOUT seconds
# (default 900) is stopped and counts as failed: a hang is a failure, not a
# CI run that never ends.
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "$B" && pwd)
export SLIM_BUILD="$B" SLIM_ROOT="$ROOT" PATH="$B/bin:$PATH"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slim-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
log="$TMP/log"
: > "$log"
broken=0

run_one() {  # name, command...
    name=$1; shift
    out="$TMP/out"
    start=$(date +%s)
    ( cd "$TMP" && SLIM_TMP="$TMP/w.$name" && mkdir -p "$SLIM_TMP" && export SLIM_TMP &&
      timeout "${SLIM_TEST_TIMEOUT:-900}" "$@" ) > "$out" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    cat "$out" >> "$log"
    npass=$(grep -c '^ok ' "$out")
    nfail=$(grep -c '^FAIL ' "$out")
    if [ "$rc" -eq 124 ]; then
        echo "FAIL $name: stopped after ${SLIM_TEST_TIMEOUT:-900} s (a hang?)" | tee -a "$log" | sed 's/^/    /'
        nfail=$((nfail + 1)); broken=$((broken + 1))
    elif [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
        echo "FAIL $name: exited $rc with no failing case reported" >> "$log"
        nfail=1; broken=$((broken + 1))
        tail -20 "$out" | sed 's/^/    /'
    fi
    grep '^FAIL ' "$out" | sed 's/^/    /'
    printf '%-32s %4d passed %4d failed  %3ds\n' "$name" "$npass" "$nfail" "$secs"
    rm -rf "$TMP/w.$name"
}

for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for s in "$ROOT"/tests/cli/*.sh; do
    [ -f "$s" ] || continue
    case "$(basename "$s")" in lib.sh) continue ;; esac
    run_one "cli/$(basename "$s" .sh)" sh "$s"
done

passed=$(grep -c '^ok ' "$log")
failed=$(( $(grep -c '^FAIL ' "$log") ))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
