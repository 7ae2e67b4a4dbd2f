# tests/cli/store.sh — slim-store: exit codes, info, verify, snapshots,
# corruption and newer-format refusal.  Data comes from the store unit
# test's generator: `test_store_crash fill DIR DATASET N`.
. "$(dirname "$0")/lib.sh"
S="$T/st"
FILL="$SLIM_BUILD/tests/test_store_crash"

expect version 0 slim-store --version
expect_out version_text '^slim-store [0-9]+\.[0-9]+\.[0-9]+'
expect help 0 slim-store --help
expect_out help_text 'snapshot create NAME'
expect_help_complete help_complete
expect bad_option 2 slim-store --store "$S" --frobnicate
expect_err bad_option_msg "^slim-store: unknown option '--frobnicate'"
expect no_command 2 slim-store --store "$S"
expect missing_store 1 slim-store --store "$S" info
expect_err missing_store_msg "^slim-store: .*'$S'"

expect init 0 slim-store --store "$S" init
expect init_again 0 slim-store --store "$S" init
expect fill 0 "$FILL" fill "$S" web 12
expect info_json 0 slim-store --store "$S" info --json
expect_out info_sequences '"name":"web","teacher":"crash-teacher".*"sequences":12,'
expect_out info_fields '"entries":[1-9][0-9]*,"record_bytes":[1-9][0-9]*,"bytes_per_position":[0-9.]+'
expect_out info_file_bytes '"file_bytes":[1-9][0-9]*'
check info_one_line test "$(wc -l < "$_last_out")" -eq 1
expect info_text 0 slim-store --store "$S" info
expect_out info_text_row '^web +crash-teacher +12 '
SLIM_STORE="$S" expect env_store 0 slim-store info
expect_out env_store_row '^web '
expect verify_clean 0 slim-store --store "$S" verify
expect_err verify_clean_msg 'is sound'

expect snap_create 0 slim-store --store "$S" snapshot create s1 --dataset web --split valid=0.25
expect_out snap_create_msg "^snapshot 's1': 12 members \([0-9]+ valid\), sha256 [0-9a-f]{64}$"
expect snap_dup 1 slim-store --store "$S" snapshot create s1 --dataset web
expect_err snap_dup_msg "snapshot 's1' already exists"
expect snap_no_dataset 2 slim-store --store "$S" snapshot create s2
expect snap_unknown_dataset 1 slim-store --store "$S" snapshot create s2 --dataset nope
expect_err snap_unknown_msg "no such dataset 'nope'"
expect snap_bad_split 2 slim-store --store "$S" snapshot create s2 --dataset web --split valid=1.5
expect snap_list 0 slim-store --store "$S" snapshot list --csv
expect_out snap_list_header '^name,members,valid,datasets,hash,created_at'
expect_out snap_list_row '^s1,12,[0-9]+,web,[0-9a-f]{64},'
expect snap_show_json 0 slim-store --store "$S" snapshot show s1 --json
check snap_show_rows test "$(grep -c '"dataset":"web"' "$_last_out")" -eq 12
expect_out snap_show_first '^\{"ord":0,"dataset":"web","seq":0,"split":"(train|valid)","content_hash":"[0-9a-f]{32}"\}'
expect snap_show_csv 0 slim-store --store "$S" snapshot show s1 --csv
check snap_show_csv_rows test "$(wc -l < "$_last_out")" -eq 13
expect snap_show_missing 1 slim-store --store "$S" snapshot show nope
expect_err snap_show_missing_msg "no such snapshot 'nope'"

# a tampered metadata row: verify names it and exits 1; so does the snapshot
sqlite3 "$S/meta.sqlite" "UPDATE sequences SET content_hash = zeroblob(16) WHERE seq = 3"
expect verify_tampered 1 slim-store --store "$S" verify
expect_out verify_names_seq "^dataset 'web' seq 3: content hash mismatch"
expect_err verify_count_msg 'verify: [0-9]+ problems? in'
expect snap_show_tampered 1 slim-store --store "$S" snapshot show s1
expect_err snap_show_tampered_msg "seq 3 changed content"

# a store from a newer slim is refused and left as it was
sqlite3 "$S/meta.sqlite" "PRAGMA user_version = 99"
before=$(cksum < "$S/meta.sqlite")
expect newer_refused 1 slim-store --store "$S" info
expect_err newer_msg 'format version 99, newer than'
check newer_untouched test "$before" = "$(cksum < "$S/meta.sqlite")"
