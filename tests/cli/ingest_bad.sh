# ingest_bad.sh — every malformed input is refused with exit 1, one line
# naming the file and the place, and the store unchanged for that unit.
. "$SLIM_ROOT/tests/cli/lib.sh"
G="$SLIM_BUILD/tests/test_ingest_parse"
S="$T/s.store"
cd "$T" || exit 1
ing() { slim-ingest --store "$S" "$@"; }

# a good base so "unchanged" means something
"$G" gen dense good.st n=3 t=6 v=64 seed=1
expect base_ok 0 ing --dataset d --sparsify topk:4 good.st

for k in trunc overlap range dtype shape; do "$G" gen bad $k bad_$k.st; done
expect trunc_exit 1 ing --dataset d --sparsify topk:4 bad_trunc.st
expect_err trunc_msg "^slim-ingest: 'bad_trunc.st': byte 0: header length [0-9]+ runs past end of file"
expect overlap_exit 1 ing --dataset d --sparsify topk:4 bad_overlap.st
expect_err overlap_msg "'bad_overlap.st': byte [0-9]+: tensors .* overlap"
expect range_exit 1 ing --dataset d --sparsify topk:4 bad_range.st
expect_err range_msg "'bad_range.st': byte 8: tensor 'logits': data_offsets out of range"
expect dtype_exit 1 ing --dataset d --sparsify topk:4 bad_dtype.st
expect_err dtype_msg "'bad_dtype.st': byte 8: tensor 'logits': unknown dtype 'F8_E4M3'"
expect shape_exit 1 ing --dataset d --sparsify topk:4 bad_shape.st
expect_err shape_msg "'bad_shape.st': byte [0-9]+: shape mismatch: input_ids \[1,2\] but 'logits' F32 \[1,3,4\]"
# logits for fewer positions than tokens (generate()'s new tokens alone): the message says why
h='{"input_ids":{"dtype":"I64","shape":[1,3],"data_offsets":[0,24]},"logits":{"dtype":"F32","shape":[1,2,2],"data_offsets":[24,40]}}'
pad=$(( (8 - ${#h} % 8) % 8 ))
{ printf "\\$(printf %03o $(( ${#h} + pad )))\\000\\000\\000\\000\\000\\000\\000"; printf '%s%*s' "$h" $pad ''
  head -c 40 /dev/zero; } > gen_only.st
expect gen_only_exit 1 ing --dataset d gen_only.st
expect_err gen_only_msg "shape mismatch: input_ids \[1,3\] but 'logits' F32 \[1,2,2\] \(a position per token is needed: logits of the generated tokens alone leave the prompt's out"

"$G" gen dense nan.st n=4 t=6 v=64 seed=2 nan_seq=2 nan_pos=3
expect nan_exit 1 ing --dataset d --sparsify topk:4 nan.st
expect_err nan_msg "'nan.st': sequence 2 position 3: logit of token 1 is NaN"
expect_err nan_committed "committed 2 new sequences before the error"
run sqlite3 "$S/meta.sqlite" "SELECT r.status, i.added, i.refused, i.content_hash LIKE 'xxh3-128x64k:%' FROM ingest_runs r JOIN ingest_inputs i ON i.run_id = r.id WHERE i.path = 'nan.st'"
expect_out nan_run_recorded "^failed\|2\|1\|1$"

# a row that cannot be read (the file shrank under the ingest), injected:
# eof_ing NAME END ARGS...: the ingest's reads of NAME see it end at byte END
eof_ing() {
    f=$1; e=$2; shift 2
    LD_PRELOAD="$SLIM_BUILD/tests/pread_eof.so" SLIM_FAULT_PREAD_FILE="$f" SLIM_FAULT_PREAD_END="$e" \
    SLIM_FAULT_PREAD_SIZE="${pread_size:-}" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" ing "$@"
}
# shrink.st ends 100 bytes into its 18th row of logits (rows of 256 bytes
# from byte 416): sequence 3 position 2, one 5-row sequence per batch
"$G" gen dense shrink.st n=6 t=5 v=64 seed=3
expect shrink_exit 1 eof_ing shrink.st 4868 --dataset r --sparsify topk:4 --batch-positions 5 shrink.st
expect_err shrink_msg "^slim-ingest: 'shrink.st': sequence 3 position 2: cannot read its logits \(byte 4768\): the file ended early"
expect_err shrink_committed "committed 3 new sequences before the error"
run sqlite3 "$S/meta.sqlite" "SELECT r.status, i.added, i.content_hash FROM ingest_runs r JOIN ingest_inputs i ON i.run_id = r.id WHERE i.path = 'shrink.st'"
expect_out shrink_run_recorded "^failed\|3\|unknown$"
expect shrink_rerun 0 ing --dataset r --sparsify topk:4 --batch-positions 5 shrink.st
expect_out shrink_rerun_rest "added 3 sequences .*skipped 3 duplicates"
# the same file in one batch, whose last two sequences are worked on in
# halves: cut 10 bytes into row 28 (sequence 5 position 3, second half)
cp shrink.st shrink2.st
expect shrink_half_exit 1 eof_ing shrink2.st 7594 --dataset r2 --sparsify topk:4 shrink2.st
expect_err shrink_half_msg "^slim-ingest: 'shrink2.st': sequence 5 position 3: cannot read its logits \\(byte 7584\\): the file ended early"
expect_err shrink_half_committed "committed 5 new sequences before the error"
# the file is unreadable only when the input hash reads back the block no
# worker held whole (the 8096-byte file is one block: pread_size): every
# row was read, so every sequence is added and the run is ok, but the
# input's hash is unknown (the fold reads by pread, never the mapping)
cp shrink.st shrink3.st
pread_size=8096
expect shrink_hash_exit 0 eof_ing shrink3.st 0 --dataset r3 --sparsify topk:4 shrink3.st
pread_size=
run sqlite3 "$S/meta.sqlite" "SELECT r.status, i.added, i.content_hash FROM ingest_runs r JOIN ingest_inputs i ON i.run_id = r.id WHERE i.path = 'shrink3.st'"
expect_out shrink_hash_unknown "^ok\|6\|unknown$"
expect shrink_hash_rerun 0 ing --dataset r3 --sparsify topk:4 shrink3.st
expect_out shrink_hash_rerun_skips "added 0 sequences .*skipped 6 duplicates"
# tokens are read with pread too (input_ids: 40 bytes a sequence from
# byte 176): sequence 3's cannot be read, the three before are committed
cp shrink.st shrink4.st
pread_size=40
expect shrink_tok_exit 1 eof_ing shrink4.st 296 --dataset r4 --sparsify topk:4 --batch-positions 5 shrink4.st
pread_size=
expect_err shrink_tok_msg "^slim-ingest: 'shrink4.st': sequence 3: cannot read its tokens \\(byte 296\\): the file ended early \\(was it truncated\\?\\)$"
expect_err shrink_tok_committed "committed 3 new sequences before the error"
run sqlite3 "$S/meta.sqlite" "SELECT r.status, i.added FROM ingest_runs r JOIN ingest_inputs i ON i.run_id = r.id WHERE i.path = 'shrink4.st'"
expect_out shrink_tok_run_recorded "^failed\|3$"

: > empty.jsonl
expect empty_exit 1 ing --dataset d empty.jsonl
expect_err empty_msg "'empty.jsonl': byte 0: empty file"

# refused_jsonl NAME FILE CONTENT REGEX: CONTENT (printf format) into FILE; ingesting it exits 1
# with stderr matching REGEX
refused_jsonl() {
    printf "$3" > "$2"
    expect "$1_exit" 1 ing --dataset j --vocab-size 64 "$2"
    expect_err "$1_msg" "$4"
}
refused_jsonl badjson badjson.jsonl '{"tokens":[1,2],"top":[[[2,-0.1]]]}\n{"tokens":[1,2,3],"top":[[[2,-0.1]]\n' \
    "'badjson.jsonl': line 2: invalid JSON"
refused_jsonl logprob_pos pos.jsonl '{"tokens":[1,2],"top":[[[2,0.3]]]}\n' \
    "'pos.jsonl': line 1: position 0: token id 2: log-prob 0.3 > 0"
refused_jsonl dup dup.jsonl '{"tokens":[1,2],"top":[[[2,-0.3],[7,-1],[2,-2]]]}\n' \
    "'dup.jsonl': line 1: position 0: token id 2 appears twice"
refused_jsonl id_ge_v big.jsonl '{"tokens":[1,2],"top":[[[70,-0.3]]]}\n' \
    "'big.jsonl': line 1: position 0: token id 70 >= vocab size 64"
refused_jsonl missing missing.jsonl '{"tokens":[1,2]}\n' "'missing.jsonl': line 1: missing field 'top'"
# json.dump(list, f) and pretty-printed objects: refused, saying what JSON Lines needs
refused_jsonl array array.json '[{"tokens":[1,2],"top":[[[2,-0.5]]]}]\n' \
    "^slim-ingest: 'array.json': byte 0: a JSON array, not JSON Lines: slim reads one JSON object per line \\(convert with: jq -c '\\.\\[\\]' 'array.json' > out.jsonl\\)$"
run sh -c 'slim-ingest --store "$1" --dataset j --vocab-size 64 - < array.json' sh "$S"
expect_err array_stdin_msg "^slim-ingest: '-': byte 0: standard input is read as JSONL only \\(a JSON array is not"
refused_jsonl pretty pretty.jsonl '{"tokens":[1,2],\n "top":[[[2,-0.5]]]}\n' \
    "'pretty.jsonl': line 1: invalid JSON .* \\(a line cut short, or one object over several lines\\? JSON Lines needs one object per line"
# Python's json.dumps of a -inf log-prob: refused, with the reason (a quoted "NaN" is no reason)
refused_jsonl pyinf pyinf.jsonl '{"tokens":[1,2],"top":[[[2,-0.5],[3,-Infinity]]]}\n' \
    "'pyinf.jsonl': line 1: invalid JSON at column 37: .* \\(Python's json.dumps writes -Infinity/NaN, which JSON does not allow"
refused_jsonl pystr pystr.jsonl '{"id":"NaN","tokens":[1,2],"top":[[[2,-0.5]]}\n' "'pystr.jsonl': line 1: invalid JSON"
check pystr_no_hint sh -c "! grep -q Python '$_last_err'"
# several input files, the third bad at its third line: every input has its row in the run record
# (the rows of finished inputs ride with the next commit), and the counts are what the store holds
for f in 1 2 3; do
    : > multi$f.jsonl
    for i in 1 2 3 4; do
        if [ $f = 3 ] && [ $i = 3 ]; then echo '{"tokens":[1,2],"top":[[[70,-0.5]]]}' >> multi$f.jsonl
        else echo "{\"id\":\"m$f-$i\",\"tokens\":[$f,$i,3],\"top\":[[[$i,-0.5]],[[3,-0.1]]]}" >> multi$f.jsonl; fi
    done
done
expect multi_exit 1 slim-ingest --store "$T/multi.store" --dataset m --vocab-size 64 multi1.jsonl multi2.jsonl multi3.jsonl
expect_err multi_msg "'multi3.jsonl': line 3: position 0: token id 70 >= vocab size 64"
run sqlite3 "$T/multi.store/meta.sqlite" "SELECT group_concat(path || ':' || added, ' ') FROM ingest_inputs; SELECT status, added FROM ingest_runs; SELECT count(*) FROM sequences"
expect_out multi_rows "^multi1.jsonl:4 multi2.jsonl:4 multi3.jsonl:2$"
expect_out multi_run "^failed\|10$"
expect_out multi_seqs "^10$"
expect multi_rerun 0 slim-ingest --store "$T/multi.store" --dataset m --vocab-size 64 --json multi1.jsonl multi2.jsonl
expect_out multi_rerun_out '"added":0,"skipped":8'
run sqlite3 "$T/multi.store/meta.sqlite" "SELECT count(*) FROM ingest_inputs WHERE run_id = 2"
expect_out multi_rerun_rows "^2$"

# a server response without any log-probs (they were not requested): refused, nothing stored
printf '{"choices":[{"prompt_token_ids":[1,2],"logprobs":null}]}\n' > nolp.jsonl
expect nologprobs_exit 1 ing --dataset j2 --vocab-size 64 nolp.jsonl
expect_err nologprobs_msg "'nolp.jsonl': line 1: no log-probs: neither 'prompt_logprobs' nor the generated tokens' logprobs \(request prompt_logprobs=K or logprobs=K\)"
run sqlite3 "$S/meta.sqlite" "SELECT count(*) FROM datasets WHERE name = 'j2'"
expect_out nologprobs_nothing '^0$'
printf '{"tokens":[1,2],"top":[[[2,-0.3]]]}\n' > ok.jsonl
expect novocab_exit 1 ing --dataset k ok.jsonl
expect_err novocab_msg "vocabulary size unknown: pass --vocab-size"

"$G" gen sparse neg.st bad=neg
expect neg_exit 1 ing --dataset s --vocab-size 100 neg.st
expect_err neg_msg "'neg.st': sequence 1 position 1: token id -1 is negative"
"$G" gen sparse sdup.st bad=dup
expect sdup_exit 1 ing --dataset s --vocab-size 100 sdup.st
expect_err sdup_msg "'sdup.st': sequence 1 position 1: token id [0-9]+ appears twice"

"$G" gen dense v32.st n=1 t=4 v=32 seed=1
expect vocab_mismatch_exit 1 ing --dataset d --sparsify topk:4 v32.st
expect_err vocab_mismatch_msg "'v32.st': vocab size 32 differs from dataset 'd' teacher's 64"

# dataset d: 3 (base) + 2 (before the NaN); nothing from any refused unit
expect count_after 0 slim-ingest --store "$S" --dataset d --sparsify topk:4 --json good.st
expect_out count_rerun_adds_nothing '"added":0,"skipped":3'
expect usage_no_dataset 2 ing good.st
expect usage_bad_spec 2 ing --dataset d --sparsify topq:3 good.st
expect usage_bad_precision 2 ing --dataset d --precision logprob:0 good.st
expect_err usage_bad_precision_msg "^slim-ingest: invalid precision 'logprob:0' \(expected logprob:EPS or prob:EPS with EPS > 0, or lossless\)$"
expect missing_file 1 ing --dataset d nosuch.st
expect_err missing_file_msg "^slim-ingest: cannot open 'nosuch.st': No such file or directory"

# A store that fills up mid-run (a small LMDB map): the batch whose
# transaction cannot commit counts as not added, so what the tool says it
# committed is what the store and the run record hold, and a re-run with
# room adds exactly the rest.
"$G" gen dense full.st n=60 t=16 v=32000 seed=3
SLIM_MAP_SIZE=1500000 slim-store --store full.store init > /dev/null
expect full_exit 1 env SLIM_MAP_SIZE=1500000 slim-ingest --store full.store --dataset d --batch-positions 64 full.st
# (the map fills while a record is written, or at the commit's own write when batches were
# grouped into one commit: which depends on the disk's timing)
expect_err full_msg "^slim-ingest: ('full.st': sequence [0-9]+: writing record |commit failed: writing the generation: ).*MDB_MAP_FULL"
n=$(sed -n 's/^slim-ingest: committed \([0-9]*\) new sequences before the error.*/\1/p' "$_last_err")
run sqlite3 full.store/meta.sqlite "SELECT (SELECT count(*) FROM sequences) || ' ' || (SELECT added FROM ingest_inputs) || ' ' || (SELECT status FROM ingest_runs)"
expect_out full_committed_is_stored "^${n:-none} ${n:-none} failed$"
check full_some_committed test "${n:-0}" -gt 0
expect full_rerun 0 slim-ingest --store full.store --dataset d --batch-positions 64 full.st
expect_out full_rerun_rest "added $((60 - ${n:-0})) sequences .*skipped ${n:-0} duplicates"
expect full_verify 0 slim-store --store full.store verify

# Commits that wait for the disk (tests/fault/sync_fault.c): the writer
# frees a batch's slot once its records are in the transaction, before the
# syncs, so the next batch is parsed and worked on while it commits.  With
# one sequence per batch and 5 ms per sync, slots are refilled during
# commits all the time; the store must be the one a plain run makes (and
# the run must end: a slot handed back twice has deadlocked it).
sync_ing() {
    LD_PRELOAD="$SLIM_BUILD/tests/sync_fault.so" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}
seqs() { sqlite3 "$1/meta.sqlite" "SELECT seq, npos, entries, record_bytes, hex(content_hash) FROM sequences ORDER BY seq"; }
"$G" gen dense sync.st n=40 t=16 v=2000 seed=5
expect sync_plain 0 slim-ingest --store sync0.store --dataset d --batch-positions 16 sync.st
expect sync_slow 0 sync_ing timeout 120 env SLIM_FAULT_SYNC_MS=5 slim-ingest --store sync1.store --dataset d --batch-positions 16 --json sync.st
expect_out sync_slow_all '"added":40,'
# a batch's work (~1 ms) is far shorter than a commit (>= 10 ms): batches are grouped
b=$(sed -n 's/.*"batches":\([0-9]*\),"commits":\([0-9]*\).*/\1 \2/p' "$_last_out")
check sync_slow_grouped test "${b% *}" -eq 40 -a "${b#* }" -ge 5 -a "${b#* }" -lt 40
check sync_slow_same_store test "$(seqs sync0.store)" = "$(seqs sync1.store)" -a -n "$(seqs sync0.store)"
expect sync_slow_verify 0 slim-store --store sync1.store verify

# A sync the disk refuses mid-run: the commit it belongs to fails, what the
# tool says it committed is what the store and the run record hold, and a
# re-run adds exactly the rest.  LMDB syncs data.mdb once per commit (the
# store's creation is the first), SQLite its WAL twice while the store is
# created, then once per commit (and for the PRAGMA optimize after some,
# whose failure is not an error), so each case below lands in a batch's
# commit: LMDB's half (records) or SQLite's (metadata, the records then
# orphans for recovery).  Several batches may share a commit here (small
# batches, done faster than a commit): all of them must be left out.  When
# the first commit fails, the run it began is not in the store either, and
# nothing (no input record) may name it.
for f in data.mdb:2:records data.mdb:4:records data.mdb:6:records meta.sqlite-wal:3:metadata; do
    file=${f%%:*}; rest=${f#*:}; n=${rest%%:*}; half=${rest#*:}
    st=syncf-$file-$n.store; tn=sync_fail_${file%%.*}_$n
    expect "$tn" 1 sync_ing env SLIM_FAULT_SYNC_FILE=$file SLIM_FAULT_SYNC_FAIL=$n \
        slim-ingest --store $st --dataset d --batch-positions 16 sync.st
    expect_err "${tn}_msg" "^slim-ingest: commit failed: committing $half: "
    c=$(sed -n 's/^slim-ingest: committed \([0-9]*\) new sequences before the error.*/\1/p' "$_last_err")
    run sqlite3 $st/meta.sqlite "SELECT (SELECT count(*) FROM sequences) || ' ' || ifnull((SELECT added FROM ingest_inputs), 'none') || ' ' || ifnull((SELECT status FROM ingest_runs), 'none')"
    expect_out "${tn}_committed_is_stored" "^${c:-x} ${c:-x} failed$|^0 none none$"
    expect "${tn}_rerun" 0 slim-ingest --store $st --dataset d --batch-positions 16 sync.st
    expect_out "${tn}_rerun_rest" "added $((40 - ${c:-0})) sequences .*skipped ${c:-0} duplicates"
    check "${tn}_same_store" test "$(seqs sync0.store)" = "$(seqs $st)"
    expect "${tn}_verify" 0 slim-store --store $st verify
done

# An interrupt mid-run (SIGTERM here; SIGINT, as from Ctrl-C, is handled
# the same, but a shell's background job ignores it): no new batch is read,
# the ones in flight are committed, the tool says what it committed, the run
# is recorded as interrupted, and the tool then ends by the signal (status
# 128 + 15 in a shell, so a loop over files stops too); a re-run adds the
# rest.  The syncs are slowed so the run lasts: at least five more commits of
# 100 ms after the first, which the test waits to see.
LD_PRELOAD="$SLIM_BUILD/tests/sync_fault.so" SLIM_FAULT_SYNC_MS=50 \
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    slim-ingest --store intr.store --dataset d --batch-positions 16 sync.st > intr.out 2> intr.err &
pid=$!
i=0
while [ $i -lt 300 ]; do
    c=$(sqlite3 intr.store/meta.sqlite "SELECT count(*) FROM sequences" 2> /dev/null)
    [ "${c:-0}" -gt 0 ] && break
    sleep 0.1; i=$((i + 1))
done
kill -TERM $pid
wait $pid; rc=$?
check intr_exit_by_signal test "$rc" -eq 143
_last_err=intr.err; _last_out=intr.out
expect_err intr_msg "^slim-ingest: 'sync.st': interrupted$"
c=$(sed -n 's/^slim-ingest: committed \([0-9]*\) new sequences before the interrupt;.*/\1/p' intr.err)
check intr_some_not_all test "${c:-0}" -gt 0 -a "${c:-40}" -lt 40
run sqlite3 intr.store/meta.sqlite "SELECT (SELECT count(*) FROM sequences) || ' ' || (SELECT added FROM ingest_inputs) || ' ' || (SELECT status FROM ingest_runs)"
expect_out intr_committed_is_stored "^${c:-x} ${c:-x} interrupted$"
expect intr_rerun 0 slim-ingest --store intr.store --dataset d --batch-positions 16 sync.st
expect_out intr_rerun_rest "added $((40 - ${c:-0})) sequences .*skipped ${c:-0} duplicates"
check intr_same_store test "$(seqs sync0.store)" = "$(seqs intr.store)"
expect intr_verify 0 slim-store --store intr.store verify
