# dedup.sh — slim-dedup finds later copies, --dry-run changes nothing,
# --across looks into the other datasets of the same teacher.
. "$SLIM_ROOT/tests/cli/lib.sh"
G="$SLIM_BUILD/tests/test_ingest_parse"
S="$T/s.store"
cd "$T" || exit 1
"$G" gen dense a.st n=6 t=20 v=64 seed=1
expect version 0 slim-dedup --version
expect help 0 slim-dedup --help
expect_out help_usage '^usage: slim-dedup --dataset D'
expect_help_complete help_complete
expect usage 2 slim-dedup --store "$S"
expect ingest_d 0 slim-ingest --store "$S" --dataset d --teacher T --sparsify topk:6 a.st
# --min-prefix 0: e gets records of its own (sharing would make the copies free)
expect ingest_e 0 slim-ingest --store "$S" --dataset e --teacher T --sparsify topk:6 --min-prefix 0 a.st
expect inside_none 0 slim-dedup --store "$S" --dataset e --json
expect_out inside_none_out '"scanned":6,"duplicates":0,"removed":0'
expect dry 0 slim-dedup --store "$S" --dataset e --across --dry-run --json
expect_out dry_out '"dry_run":true,"scanned":6,"duplicates":6,"removed":0,"bytes_reclaimed":0,"bytes_reclaimable":[1-9]'
would=$(sed -n 's/.*"bytes_reclaimable":\([0-9]*\).*/\1/p' "$_last_out")
expect dry_text 0 slim-dedup --store "$S" --dataset e --across --dry-run
expect_out dry_text_summary "dataset 'e': 6 sequences scanned, 6 duplicates, 0 removed \(dry run\), $would bytes would be reclaimed"
expect dry_changed_nothing 0 slim-dedup --store "$S" --dataset e --across --dry-run --json
expect_out dry_changed_nothing_out "\"duplicates\":6,\"removed\":0,\"bytes_reclaimed\":0,\"bytes_reclaimable\":$would}"
expect across 0 slim-dedup --store "$S" --dataset e --across
expect_out across_lines "^sequence 5 duplicates 'd' sequence 5$"
expect_out across_summary "dataset 'e': 6 sequences scanned, 6 duplicates, 6 removed, $would bytes reclaimed$"
expect again 0 slim-dedup --store "$S" --dataset e --across --json
expect_out again_out '"scanned":0,"duplicates":0'
# d keeps its copies: re-ingesting into d skips all six
expect d_intact 0 slim-ingest --store "$S" --dataset d --teacher T --sparsify topk:6 --json a.st
expect_out d_intact_out '"added":0,"skipped":6'
expect no_dataset 1 slim-dedup --store "$S" --dataset nope
expect_err no_dataset_msg "^slim-dedup: no dataset 'nope'"
