#!/bin/sh
# tests/demo.sh BUILD_DIR — `make demo`: the seed paper's pre-training
# experiment in miniature, end to end, with no download (docs/TUTORIAL.md
# walks through it; docs/RESULTS.md holds a default run's numbers).
#
#   corpus (tests/corpus.sh) -> tokenizer -> token-only dataset -> teacher
#   trained with CE -> two ingest runs of teacher generations (+ a repeat to
#   show ingest-time dedup; prompts repeated to show shared prefixes) and the
#   same sequences again with --sparsify sample:N for RS-KD -> info, queries,
#   dedup -> snapshots -> students on three data sizes with ce, kd, slim,
#   kd --tail ghost and rskd -> eval on held-out generations -> results.csv,
#   report.md, perplexity.svg.
#
# DEMO=tiny|default|full (environment).  Output in $DEMO_OUT (default
# out/demo, relative to the current directory); its store is
# $DEMO_OUT/slim.store.  Stage progress with timestamps on stdout.
#
# Held-out set: a separate generation run (its own seed and prompts), never
# trained on.  It is not a --split valid=F of the training datasets because
# splits are a function of each sequence's content hash, which covers the
# stored distributions: the top-5 % dataset and its sample:N twin hold the
# same token sequences but would get different splits, and the RS-KD student
# would then train on sequences the others are evaluated on.  The training
# snapshots therefore keep every sequence (valid=0) in ingest order, and
# --train-limit N takes the same first N sequences from both.
set -eu
B=${1:-build}
B=$(cd "$B" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
PATH="$B/bin:$PATH"
export PATH
LC_ALL=C
export LC_ALL
DEMO=${DEMO:-default}
OUT=${DEMO_OUT:-out/demo}

case $DEMO in
tiny)
    CORPUS_BYTES=300000 VOCAB=300 TCTX=64
    T_SHAPE="--layers 1 --dim 32 --heads 2 --ctx 64" T_STEPS=30 T_BATCH=8 T_LR=3e-3
    NPROMPT=12 N1=24 N2=24 NREP=4 NHELD=16 MAXTOK=16 SAMPLES=16
    SIZES="8 16 32" S_SHAPE="--layers 1 --dim 16 --heads 2 --ctx 64" S_STEPS=10 S_BATCH=4 S_LR=3e-3
    ;;
default)
    CORPUS_BYTES=0 VOCAB=1024 TCTX=128
    T_SHAPE="--layers 4 --dim 192 --heads 4 --ctx 128" T_STEPS=320 T_BATCH=16 T_LR=2e-3
    NPROMPT=100 N1=400 N2=400 NREP=32 NHELD=160 MAXTOK=48 SAMPLES=64
    SIZES="100 300 760" S_SHAPE="--layers 2 --dim 48 --heads 4 --ctx 128" S_STEPS=200 S_BATCH=16 S_LR=3e-3
    ;;
full)
    # 25 min measured on an idle 2-core VM (docs/RESULTS.md)
    CORPUS_BYTES=0 VOCAB=2048 TCTX=128
    T_SHAPE="--layers 6 --dim 256 --heads 8 --ctx 128" T_STEPS=800 T_BATCH=16 T_LR=1.5e-3
    NPROMPT=400 N1=2000 N2=2000 NREP=64 NHELD=500 MAXTOK=96 SAMPLES=128
    SIZES="250 1000 3900" S_SHAPE="--layers 2 --dim 64 --heads 4 --ctx 128" S_STEPS=600 S_BATCH=32 S_LR=3e-3
    ;;
*) echo "demo: DEMO must be tiny, default or full, not '$DEMO'" >&2; exit 2 ;;
esac

START=$(date +%s)
stage() {
    now=$(date +%s)
    echo "== [$(date -u +%H:%M:%S) +$((now - START))s] $*"
}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
S="$OUT/slim.store"
rm -rf "$S" "$OUT/ckpt" "$OUT/logs"
rm -f "$OUT/results.csv" "$OUT/report.md" "$OUT/perplexity.svg" "$OUT/corpus.txt" \
      "$OUT/prompts.txt" "$OUT/heldout-prompts.txt" "$OUT/tokenizer.slim" "$OUT/tokenizer.json"
mkdir -p "$OUT/ckpt" "$OUT/logs"
SLIM_STORE=$S
export SLIM_STORE
echo "demo: DEMO=$DEMO, output in $OUT"

# ---------------------------------------------------------------- corpus
stage "corpus (tests/corpus.sh: fortunes + King James Bible from Debian packages)"
sh "$HERE/corpus.sh" "$OUT/corpus.full.txt"
if [ "$CORPUS_BYTES" -gt 0 ]; then
    # a slice that ends at a document boundary
    head -c "$CORPUS_BYTES" "$OUT/corpus.full.txt" | awk 'BEGIN{RS="";ORS="\n\n"} {d[NR]=$0} END{for(i=1;i<NR;i++) print d[i]}' > "$OUT/corpus.txt"
    rm -f "$OUT/corpus.full.txt"
else
    mv "$OUT/corpus.full.txt" "$OUT/corpus.txt"
fi
wc -c "$OUT/corpus.txt" | awk '{printf "corpus: %d bytes\n", $1}'

stage "tokenizer: byte-level BPE, V=$VOCAB"
slim-train tokenizer --corpus "$OUT/corpus.txt" --vocab-size "$VOCAB" --out "$OUT/tokenizer.slim" \
    --hf-json "$OUT/tokenizer.json"

stage "token-only dataset 'corpus' (windows of $TCTX tokens, no distributions)"
slim-store init
slim-ingest --dataset corpus --teacher text --text "$OUT/corpus.txt" \
    --tokenizer "$OUT/tokenizer.slim" --ctx "$TCTX"
slim-store snapshot create corpus --dataset corpus --split valid=0.02

stage "teacher: $T_SHAPE, CE, $T_STEPS steps x $T_BATCH windows"
# shellcheck disable=SC2086
slim-train --snapshot corpus --out "$OUT/ckpt/teacher.ckpt" --loss ce $T_SHAPE \
    --steps "$T_STEPS" --batch "$T_BATCH" --lr "$T_LR" --warmup $((T_STEPS / 10)) \
    --eval-every "$T_STEPS" --log-every $((T_STEPS / 4)) --progress --seed 1 \
    > "$OUT/logs/teacher.log" 2>&1 || { cat "$OUT/logs/teacher.log" >&2; exit 1; }
grep -E "^eval|^done" "$OUT/logs/teacher.log"

# Prompts: the opening words (about 40 bytes, cut at a space) of every 7th
# document; a second, disjoint set (every 7th from the 4th) for held-out.
prompts() {
    awk -v first="$1" -v n="$2" 'BEGIN { RS = "" }
        (NR - first) % 7 == 0 && NR >= first && c < n {
            line = $0; sub(/\n.*/, "", line)
            if (length(line) < 40) next
            line = substr(line, 1, 40); sub(/ [^ ]*$/, "", line)
            print line; c++ }' "$OUT/corpus.txt"
}
prompts 1 "$NPROMPT" > "$OUT/prompts.txt"
prompts 4 "$NPROMPT" > "$OUT/heldout-prompts.txt"

# Each generation is ingested twice, identically seeded: top-5 % logits into
# 'gen', a sample:N draw into 'gen-rs' (same tokens; sampling of the next
# token does not depend on the sparsifier).
generate() {  # SEED N LABEL
    for spec in "gen topfrac:0.05" "gen-rs sample:$SAMPLES"; do
        # shellcheck disable=SC2086  # split "DATASET SPEC" on purpose
        set -- "$1" "$2" "$3" $spec
        slim-ingest --dataset "$4" --teacher demo-teacher --model "$OUT/ckpt/teacher.ckpt" \
            --tokenizer "$OUT/tokenizer.slim" --prompts "$OUT/prompts.txt" --generate "$2" \
            --max-tokens "$MAXTOK" --seed "$1" --sparsify "$5" --min-prefix 8
    done
}
stage "ingest run 1: $N1 generations (seed 1, $NPROMPT prompts cycled, <= $MAXTOK new tokens)"
generate 1 "$N1" run1
stage "ingest run 2: $N2 more generations (seed 2) - the dataset grows incrementally"
generate 2 "$N2" run2
stage "ingest run 3: the first $NREP of run 1 again (seed 1) - skipped as duplicates"
generate 1 "$NREP" repeat
stage "held-out: $NHELD generations from other prompts (seed 1000)"
slim-ingest --dataset heldout --teacher demo-teacher --model "$OUT/ckpt/teacher.ckpt" \
    --tokenizer "$OUT/tokenizer.slim" --prompts "$OUT/heldout-prompts.txt" --generate "$NHELD" \
    --max-tokens "$MAXTOK" --seed 1000 --min-prefix 8

stage "slim-store info"
slim-store info
stage "slim-query: sequence 0 of 'gen', first positions"
slim-query --table show gen 0 | head -12
stage "slim-query: dataset statistics"
slim-query --table stats gen
stage "slim-query: sequences sharing a prefix with an earlier one"
slim-query --table "SELECT d.name AS dataset, count(*) AS sequences, sum(s.prefix_seq IS NOT NULL) AS sharing,
                    sum(s.prefix_len) AS shared_positions, sum(s.npos) AS positions
                    FROM sequences s JOIN datasets d ON d.id = s.dataset_id GROUP BY d.name ORDER BY d.name"
stage "slim-dedup (exact duplicates that ingest did not already skip)"
slim-dedup --dataset gen
slim-dedup --dataset gen-rs
slim-store verify

stage "snapshots"
slim-store snapshot create train --dataset gen --split valid=0
slim-store snapshot create train-rs --dataset gen-rs --split valid=0
slim-store snapshot create heldout --dataset heldout --split valid=0
NTRAIN=$(slim-store snapshot show train --csv | awk 'NR > 1' | wc -l)
NRS=$(slim-store snapshot show train-rs --csv | awk 'NR > 1' | wc -l)
[ "$NTRAIN" -eq "$NRS" ] || { echo "demo: 'gen' has $NTRAIN sequences but 'gen-rs' $NRS" >&2; exit 1; }

# ---------------------------------------------------------------- students
METHODS="ce kd slim kd-ghost rskd"
stage "students: $S_SHAPE, $S_STEPS steps x $S_BATCH sequences each, sizes $SIZES, methods $METHODS (KD weight 0.5)"
student() {  # METHOD SIZE
    case $1 in
    ce) a="--snapshot train --loss ce" ;;
    kd) a="--snapshot train --loss kd --kd-weight 0.5" ;;
    slim) a="--snapshot train --loss slim" ;;
    kd-ghost) a="--snapshot train --loss kd --kd-weight 0.5 --tail ghost" ;;
    rskd) a="--snapshot train-rs --loss rskd --kd-weight 0.5" ;;
    esac
    # shellcheck disable=SC2086
    slim-train $a --train-limit "$2" --out "$OUT/ckpt/$1-$2.ckpt" $S_SHAPE --steps "$S_STEPS" \
        --batch "$S_BATCH" --lr "$S_LR" --warmup $((S_STEPS / 10)) --seed 7 --threads 1 \
        --log-every "$S_STEPS" > "$OUT/logs/$1-$2.log" 2>&1
}
# two single-threaded runs at a time: small models scale poorly across threads
pids=""
for n in $SIZES; do
    [ "$n" -le "$NTRAIN" ] || { echo "demo: size $n > $NTRAIN training sequences" >&2; exit 1; }
    for m in $METHODS; do
        student "$m" "$n" &
        pids="$pids $!"
        # shellcheck disable=SC2086  # one word per pid
        set -- $pids
        if [ $# -ge 2 ]; then wait "$1" || { echo "demo: a student run failed (logs in $OUT/logs)" >&2; exit 1; }; shift; pids="$*"; fi
    done
done
for p in $pids; do wait "$p" || { echo "demo: a student run failed (logs in $OUT/logs)" >&2; exit 1; }; done

stage "eval on the held-out generations"
echo "method,sequences,ppl,kl,ece,top1" > "$OUT/results.csv"
for n in $SIZES; do
    for m in $METHODS; do
        slim-train eval --snapshot heldout --split train --ckpt "$OUT/ckpt/$m-$n.ckpt" --csv \
            | awk -F, -v m="$m" -v n="$n" 'NR == 2 { printf "%s,%d,%.4f,%.5f,%.5f,%.4f\n", m, n, $6, $7, $9, $8 }' \
            >> "$OUT/results.csv"
    done
done
cat "$OUT/results.csv"

# ---------------------------------------------------------------- report
stage "report.md and perplexity.svg"
awk -F, -v demo="$DEMO" -v steps="$S_STEPS" -v batch="$S_BATCH" -v shape="$S_SHAPE" '
NR == 1 { next }
{ p[$1, $2] = $3; if (!($2 in seen)) { seen[$2] = 1; sizes[++ns] = $2 } }
END {
    print "# slim demo report (DEMO=" demo ")\n"
    print "Students " shape ", " steps " steps x " batch " sequences for every method and size;"
    print "KD weight 0.5 (kd, kd-ghost, rskd); held-out perplexity on separate teacher generations"
    print "(lower is better).  Computed from results.csv by awk.\n"
    print "| sequences | ce (SFT) | kd | slim | kd-ghost | rskd |"
    print "|---|---|---|---|---|---|"
    for (i = 1; i <= ns; i++) { n = sizes[i]
        printf "| %d | %s | %s | %s | %s | %s |\n", n, p["ce", n], p["kd", n], p["slim", n], p["kd-ghost", n], p["rskd", n] }
    print ""
    for (i = 1; i <= ns; i++) { n = sizes[i]; s = p["slim", n]; k = p["kd", n]; c = p["ce", n]
        printf "- %d sequences: SLIM %s KD (%.2f vs %.2f) and %s SFT (%.2f vs %.2f, %+.1f %%); KD vs SFT %+.1f %%.\n",
            n, (s + 0 <= k + 0 ? "came out ahead of (or tied with)" : "came out behind"), s, k,
            (s + 0 < c + 0 ? "ahead of" : "behind"), s, c, 100 * (s - c) / c, 100 * (k - c) / c }
    n = sizes[1]; s = p["slim", n]; k = p["kd", n]; c = p["ce", n]
    ok = s + 0 <= k + 0 && s + 0 <= 0.95 * c && k + 0 <= 0.95 * c
    printf "\nThe paper'"'"'s qualitative claim at the smallest size (SLIM <= KD, both >= 5 %% below SFT): %s.\n",
        ok ? "reproduced" : "NOT reproduced"
}' "$OUT/results.csv" > "$OUT/report.md"
cat "$OUT/report.md"

awk -F, '
NR == 1 { next }
{ m = $1; if (!(m in mi)) { mi[m] = ++nm; mname[nm] = m }
  if (!($2 in si)) { si[$2] = ++ns; sval[ns] = $2 }
  v[m, $2] = $3 + 0; if ($3 + 0 > ymax) ymax = $3 + 0; if (ymin == "" || $3 + 0 < ymin) ymin = $3 + 0 }
function X(s) { return 80 + (log(s) - lx0) / (lx1 - lx0 + 1e-12) * 440 }
function Y(y) { return 320 - (log(y) - y0) / (y1 - y0) * 280 }
END {
    lx0 = log(sval[1]); lx1 = log(sval[ns]); y0 = log(ymin * 0.95); y1 = log(ymax * 1.05)
    split("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd", col, " ")
    print "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    print "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\" height=\"380\" viewBox=\"0 0 680 380\" font-family=\"sans-serif\" font-size=\"12\">"
    print "<rect width=\"680\" height=\"380\" fill=\"white\"/>"
    print "<text x=\"300\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">Held-out perplexity vs training sequences</text>"
    print "<line x1=\"80\" y1=\"320\" x2=\"520\" y2=\"320\" stroke=\"black\"/>"
    print "<line x1=\"80\" y1=\"40\" x2=\"80\" y2=\"320\" stroke=\"black\"/>"
    for (i = 1; i <= ns; i++) {
        x = X(sval[i])
        printf "<line x1=\"%.1f\" y1=\"320\" x2=\"%.1f\" y2=\"325\" stroke=\"black\"/>\n", x, x
        printf "<text x=\"%.1f\" y=\"340\" text-anchor=\"middle\">%d</text>\n", x, sval[i] }
    for (t = 0; t <= 4; t++) {
        yv = exp(y0 + (y1 - y0) * t / 4); y = Y(yv)
        printf "<line x1=\"75\" y1=\"%.1f\" x2=\"80\" y2=\"%.1f\" stroke=\"black\"/>\n", y, y
        printf "<text x=\"72\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", y + 4, yv }
    print "<text x=\"300\" y=\"365\" text-anchor=\"middle\">training sequences (log scale)</text>"
    print "<text x=\"20\" y=\"180\" text-anchor=\"middle\" transform=\"rotate(-90 20 180)\">perplexity (log scale)</text>"
    for (j = 1; j <= nm; j++) { m = mname[j]; pts = ""
        for (i = 1; i <= ns; i++) pts = pts sprintf("%.1f,%.1f ", X(sval[i]), Y(v[m, sval[i]]))
        printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", col[j], pts
        for (i = 1; i <= ns; i++) printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", X(sval[i]), Y(v[m, sval[i]]), col[j]
        printf "<line x1=\"540\" y1=\"%d\" x2=\"565\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", 50 + 20 * j, 50 + 20 * j, col[j]
        printf "<text x=\"572\" y=\"%d\">%s</text>\n", 54 + 20 * j, m }
    print "</svg>"
}' "$OUT/results.csv" > "$OUT/perplexity.svg"
if command -v xmllint > /dev/null 2>&1; then xmllint --noout "$OUT/perplexity.svg"; fi

stage "done: $OUT/results.csv, $OUT/report.md, $OUT/perplexity.svg"
