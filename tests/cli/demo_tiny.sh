# tests/cli/demo_tiny.sh — `make demo` at DEMO=tiny (tiny corpus slice,
# tiny models, few steps): every stage runs and leaves its artifacts, and
# results.csv is well-formed (header, 5 methods x 3 sizes, numeric fields).
# Not the paper's claim: that needs the default or full run.
. "$SLIM_ROOT/tests/cli/lib.sh"

if [ ! -d /usr/share/games/fortunes ] || ! command -v bible > /dev/null 2>&1; then
    echo "ok demo_tiny_skipped # the corpus packages (fortunes, bible-kjv) are not installed"
    exit 0
fi
O="$T/out/demo"
expect demo_tiny_runs 0 env DEMO=tiny DEMO_OUT="$O" sh "$SLIM_ROOT/tests/demo.sh" "$SLIM_BUILD"
[ "$rc" -eq 0 ] || tail -20 "$_last_out" "$_last_err"
for f in corpus.txt tokenizer.slim tokenizer.json ckpt/teacher.ckpt results.csv report.md \
         perplexity.svg slim.store/meta.sqlite; do
    check "demo_tiny_artifact_$(echo "$f" | tr '/.' '__')" test -s "$O/$f"
done
for m in ce kd slim kd-ghost rskd; do
    for n in 8 16 32; do check "demo_tiny_ckpt_$m-$n" test -s "$O/ckpt/$m-$n.ckpt"; done
done
check demo_tiny_csv_header test "$(head -1 "$O/results.csv")" = "method,sequences,ppl,kl,ece,top1"
check demo_tiny_csv_rows test "$(awk 'NR > 1' "$O/results.csv" | wc -l)" -eq 15
num='-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'
check demo_tiny_csv_fields awk -F, -v re="^$num\$" 'NR > 1 && (NF != 6 || $1 !~ /^(ce|kd|slim|kd-ghost|rskd)$/ ||
    $2 !~ /^[0-9]+$/ || $3 !~ re || $4 !~ re || $5 !~ re || $6 !~ re || $3 + 0 < 1) { bad = 1 }
    END { exit bad }' "$O/results.csv"
check demo_tiny_csv_combos test "$(awk -F, 'NR > 1 { print $1 "," $2 }' "$O/results.csv" | sort -u | wc -l)" -eq 15
check demo_tiny_report_verdicts test "$(grep -c 'sequences: SLIM came out' "$O/report.md")" -eq 3
check demo_tiny_report_claim grep -Eq "smallest size .*: (reproduced|NOT reproduced)" "$O/report.md"
check demo_tiny_svg_lines test "$(grep -c '<polyline' "$O/perplexity.svg")" -eq 5
if command -v xmllint > /dev/null 2>&1; then
    check demo_tiny_svg_wellformed xmllint --noout "$O/perplexity.svg"
fi
# the store it built is sound and holds what the stages say
check demo_tiny_store_verify slim-store --store "$O/slim.store" verify
expect demo_tiny_query 0 slim-query --store "$O/slim.store" --csv \
    "SELECT name, (SELECT count(*) FROM sequences s WHERE s.dataset_id = d.id AND NOT deleted) FROM datasets d ORDER BY name"
expect_out demo_tiny_query_gen '^gen,48.?$'
expect_out demo_tiny_query_rs '^gen-rs,48.?$'
expect_out demo_tiny_query_heldout '^heldout,16.?$'
