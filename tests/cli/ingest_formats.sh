# ingest_formats.sh — every input format through the CLI: detection by
# content, npy directories, vLLM / OpenAI JSONL, summaries, re-runs.
. "$SLIM_ROOT/tests/cli/lib.sh"
G="$SLIM_BUILD/tests/test_ingest_parse"
S="$T/s.store"
cd "$T" || exit 1

expect version 0 slim-ingest --version
expect_out version_out "^slim-ingest [0-9]"
expect help 0 slim-ingest --help
expect_out help_out "^usage: slim-ingest --dataset D"
expect_help_complete help_describes_every_option

# a safetensors file named .jsonl is still safetensors: detection by content
"$G" gen dense misnamed.jsonl dtype=F16 n=3 t=5 v=80 seed=4
expect auto_by_content 0 slim-ingest --store "$S" --dataset a --teacher tA --sparsify topk:8 --json misnamed.jsonl
expect_out auto_summary '"added":3,"skipped":0,"refused":0,"positions":15,"entries":120'
expect forced_wrong_format 1 slim-ingest --store "$S" --dataset a --teacher tA --format jsonl misnamed.jsonl
expect_err forced_wrong_msg "'misnamed.jsonl': line 1: invalid JSON"

mkdir npy
"$G" gen npy npy n=2 t=6 v=50 seed=8
expect npy_dir 0 slim-ingest --store "$S" --dataset n --teacher tN --sparsify topfrac:0.1 --json npy
expect_out npy_summary '"added":2,.*"positions":12,"entries":60'
expect npy_rerun 0 slim-ingest --store "$S" --dataset n --teacher tN --sparsify topfrac:0.1 --json npy
expect_out npy_rerun_out '"added":0,"skipped":2'
# other arrays in a directory are ignored, even of a dtype slim does not read (<i2)
cp -r npy npyx
h="{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }"
pad=$(( 64 - (10 + ${#h} + 1) % 64 ))
{ printf '\223NUMPY\001\000'; printf "\\$(printf %03o $(( ${#h} + pad + 1 )))\\000"
  printf '%s%*s\n' "$h" $pad ''; printf 'abcdef'; } > npyx/position_ids.npy
expect npy_dir_other_arrays 0 slim-ingest --store "$T/nx" --dataset n --sparsify topfrac:0.1 --json npyx
expect_out npy_dir_other_arrays_out '"added":2,.*"positions":12,"entries":60'
expect npy_file_i2_named 1 slim-ingest --store "$T/nx" --dataset n2 --sparsify topfrac:0.1 npyx/position_ids.npy
expect_err npy_file_i2_msg "'npyx/position_ids.npy': byte 10: unknown or missing dtype '<i2'"
# a transformers dump with many other tensors (40 hidden-state tensors first): only its own are read
"$G" gen dense hidden.st n=2 t=5 v=50 seed=2 extra=40
expect many_tensors 0 slim-ingest --store "$T/nh" --dataset h --sparsify topk:4 --json hidden.st
expect_out many_tensors_out '"added":2,.*"positions":10,"entries":40'
# a file without the tensors slim reads says what it has (here generate()'s names), in one line;
# a tensor of more than 4 dimensions that slim does not read is shown cut
h='{"sequences":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"scores":{"dtype":"F32","shape":[1,1,2],"data_offsets":[8,16]},"att":{"dtype":"I8","shape":[0,1,1,1,1],"data_offsets":[16,16]}}'
pad=$(( (8 - ${#h} % 8) % 8 ))
{ printf "\\$(printf %03o $(( ${#h} + pad )))\\000\\000\\000\\000\\000\\000\\000"; printf '%s%*s' "$h" $pad ''
  printf '\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000'; } > gen.safetensors
expect names_missing 1 slim-ingest --store "$T/nh" --dataset h2 gen.safetensors
expect_err names_missing_msg "^slim-ingest: 'gen.safetensors': no 'input_ids' tensor; the file has 'sequences' I64 \[1,1\], 'scores' F32 \[1,1,2\], 'att' I8 \[0,1,1,1,…\]$"
check names_missing_one_line test "$(wc -l < "$_last_err")" -eq 1
# the arrays named one after another on the command line are one input
expect npy_files 0 slim-ingest --store "$T/n2" --dataset n --sparsify topfrac:0.1 --json npy/logits.npy npy/input_ids.npy
expect_out npy_files_out '"added":2,.*"positions":12,"entries":60'
run sqlite3 "$T/n2/meta.sqlite" "SELECT path FROM ingest_inputs"
expect_out npy_files_input '^npy/logits.npy\+npy/input_ids.npy$'

# standard input ("-"): JSONL from a pipe gives the same sequences, and the
# run records the same content hash as for the file (1.3 MB: the stream is
# hashed in 64 KiB blocks as it is read, across line boundaries)
awk 'BEGIN { s = 7; for (i = 0; i < 3000; i++) { T = 3 + i % 10; printf "{\"id\":\"s%d\",\"tokens\":[", i;
       for (t = 0; t < T; t++) { s = (s * 69069 + 1) % 4294967296; printf "%s%d", (t ? "," : ""), s % 100 }
       printf "],\"top\":[";
       for (t = 1; t < T; t++) { printf "%s[", (t > 1 ? "," : "");
         for (j = 0; j < 4; j++) { s = (s * 69069 + 1) % 4294967296; printf "%s[%d,-%d.%03d]", (j ? "," : ""), j * 25 + s % 25, s % 5, s % 1000 }
         printf "]" }
       printf "]}\n" } }' > stream.jsonl
expect stdin_file 0 slim-ingest --store "$T/sf" --dataset j --vocab-size 100 stream.jsonl
run sh -c 'cat stream.jsonl | slim-ingest --store "$1" --dataset j --vocab-size 100 --json -' sh "$T/sp"
check stdin_exit test "$rc" -eq 0
expect_out stdin_summary '"added":3000,"skipped":0,"refused":0'
hashes() { sqlite3 "$1/meta.sqlite" "SELECT content_hash, added FROM ingest_inputs"; }
check stdin_same_hash test "$(hashes "$T/sf")" = "$(hashes "$T/sp")" -a -n "$(hashes "$T/sp")"
run sqlite3 "$T/sp/meta.sqlite" "SELECT path FROM ingest_inputs"
expect_out stdin_path '^-$'
seqs() { sqlite3 "$1/meta.sqlite" "SELECT seq, npos, entries, hex(content_hash) FROM sequences ORDER BY seq"; }
check stdin_same_sequences test "$(seqs "$T/sf")" = "$(seqs "$T/sp")" -a -n "$(seqs "$T/sp")"
run sh -c 'cat stream.jsonl | slim-ingest --store "$1" --dataset j --vocab-size 100 -' sh "$T/sp"
expect_out stdin_rerun 'added 0 sequences .*skipped 3000 duplicates'
# only JSONL comes through a pipe: a safetensors file piped in, or another format asked for, is refused
run sh -c 'cat misnamed.jsonl | slim-ingest --store "$1" --dataset b --vocab-size 100 -' sh "$T/sb"
check stdin_binary_exit test "$rc" -eq 1
expect_err stdin_binary_msg "^slim-ingest: '-': byte 0: standard input is read as JSONL only \(safetensors and npy need a file\)"
run sh -c 'cat stream.jsonl | slim-ingest --store "$1" --dataset b --format npy -' sh "$T/sb"
expect_err stdin_format_msg "^slim-ingest: '-': byte 0: standard input is read as JSONL only"
run sqlite3 "$T/sb/meta.sqlite" "SELECT count(*) FROM datasets"
expect_out stdin_refused_writes_nothing '^0$'

# vLLM RequestOutput with two outputs (two sequences sharing the prompt)
cat > vllm.jsonl <<'J'
{"request_id":"r0","prompt_token_ids":[1,2,3],"prompt_logprobs":[null,{"2":{"logprob":-0.1,"rank":1,"decoded_token":"b"},"7":{"logprob":-2.4,"rank":2}},{"3":{"logprob":-0.3,"rank":1},"8":{"logprob":-1.6,"rank":2}}],"outputs":[{"index":0,"token_ids":[4,5],"logprobs":[{"4":{"logprob":-0.2,"rank":1},"9":{"logprob":-1.9,"rank":2}},{"5":{"logprob":-0.5,"rank":1},"6":{"logprob":-1.1,"rank":2}}]},{"index":1,"token_ids":[6],"logprobs":[{"4":{"logprob":-0.2,"rank":1},"6":{"logprob":-3.0,"rank":4},"9":{"logprob":-1.9,"rank":2}}]}]}
J
expect vllm 0 slim-ingest --store "$S" --dataset v --teacher tV --vocab-size 16 --json vllm.jsonl
expect_out vllm_summary '"added":2,"skipped":0,"refused":0,"positions":7,"entries":14'
cat > openai.jsonl <<'J'
{"id":"cmpl-9","object":"chat.completion","choices":[{"index":0,"prompt_token_ids":[1,2],"prompt_logprobs":[null,{"2":{"logprob":-0.05,"rank":1},"3":{"logprob":-3.2,"rank":2}}],"logprobs":{"content":[{"token":"token_id:11","logprob":-0.4,"top_logprobs":[{"token":"token_id:11","logprob":-0.4},{"token":"token_id:12","logprob":-1.3}]}]}}]}
J
expect openai 0 slim-ingest --store "$S" --dataset v --teacher tV --json openai.jsonl
expect_out openai_summary '"added":1,"skipped":0,"refused":0,"positions":2'
printf '{"choices":[{"prompt_token_ids":[1],"logprobs":{"content":[{"token":"hello","logprob":-0.1,"top_logprobs":[]}]}}]}\n' > textok.jsonl
expect openai_text_tokens 1 slim-ingest --store "$S" --dataset v --teacher tV textok.jsonl
expect_err openai_text_msg "'textok.jsonl': line 1: choice 0: logprobs.content\[0\].token is not \"token_id:N\""
# OpenAI-compatible completions (vLLM /v1/completions with --return-tokens-as-token-ids):
# line 1 without echo (prompt_logprobs + generated), line 2 with echo (the prompt in the lists)
cat > completions.jsonl <<'J'
{"id":"cmpl-5","object":"text_completion","choices":[{"index":0,"text":"x","prompt_token_ids":[1,2],"prompt_logprobs":[null,{"2":{"logprob":-0.1,"rank":1},"3":{"logprob":-2.0,"rank":2}}],"logprobs":{"text_offset":[0],"token_logprobs":[-0.3],"tokens":["token_id:13"],"top_logprobs":[{"token_id:13":-0.3,"token_id:12":-1.4}]}}]}
{"id":"cmpl-6","object":"text_completion","choices":[{"index":0,"text":"ab x","logprobs":{"text_offset":[0,1,2],"token_logprobs":[null,-0.2,-0.4],"tokens":["token_id:1","token_id:3","token_id:11"],"top_logprobs":[null,{"token_id:3":-0.2,"token_id:2":-1.8},{"token_id:11":-0.4,"token_id:13":-1.1}]}}]}
J
expect completions 0 slim-ingest --store "$S" --dataset v --teacher tV --json completions.jsonl
expect_out completions_summary '"added":2,"skipped":0,"refused":0,"positions":4,"entries":8'
run slim-query --store "$S" --csv "SELECT t.pos, t.token FROM seqs s JOIN topk t ON t.dataset = s.dataset AND t.seq = s.seq WHERE s.ext_id = 'cmpl-6' AND t.rank = 1 ORDER BY t.pos"
expect_out completions_echo_shift '^pos,token'
check completions_echo_positions test "$(tail -n +2 "$_last_out" | tr -d '\r' | tr '\n' ' ')" = "0,3 1,11 "

# the dataset's teacher is fixed by the first ingest
expect teacher_mismatch 1 slim-ingest --store "$S" --dataset v --teacher other --vocab-size 16 vllm.jsonl
expect_err teacher_mismatch_msg "^slim-ingest: 'vllm.jsonl': cannot add to dataset: "
expect sparsify_on_sparse 1 slim-ingest --store "$S" --dataset v --teacher tV --sparsify topk:2 openai.jsonl
expect_err sparsify_on_sparse_msg "already sparse"

# sampled records, seeded: the same seed gives the same store content
"$G" gen dense s.st n=2 t=4 v=40 seed=3
expect sample_a 0 slim-ingest --store "$T/sa" --dataset s --sparsify sample:16 --seed 5 --json s.st
cp "$_last_out" sa.json
expect sample_b 0 slim-ingest --store "$T/sb" --dataset s --sparsify sample:16 --seed 5 --json s.st
ea=$(grep -o '"entries":[0-9]*' sa.json); eb=$(grep -o '"entries":[0-9]*' "$_last_out")
check sample_same_entries test -n "$ea" -a "$ea" = "$eb"
expect progress_flag 0 slim-ingest --store "$T/sc" --dataset s --progress s.st
expect_err progress_out "positions/s"

# --vocab tokenizer.json: pieces imported (byte-level "Ġ" decoded, added
# tokens included), the teacher's tokenizer hash is the file's sha256
cat > tok.json <<'J'
{"version":"1.0","added_tokens":[{"id":5,"content":"<|end|>","special":true}],"pre_tokenizer":{"type":"ByteLevel"},"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0,"b":1,"Ġc":2,"ab":3,"Ġ":4},"merges":["a b"]}}
J
printf '{"tokens":[1,2],"top":[[[2,-0.3]]]}\n' > one.jsonl
expect vocab_import 0 slim-ingest --store "$T/tv" --dataset tv --teacher tok --vocab-size 8 --vocab tok.json one.jsonl
run sqlite3 "$T/tv/meta.sqlite" "SELECT id || '=' || quote(piece) FROM vocab ORDER BY id"
expect_out vocab_pieces "^2=' c'$"
expect_out vocab_added "^5='<\|end\|>'$"
h=$(sha256sum tok.json | cut -c1-64)
run sqlite3 "$T/tv/meta.sqlite" "SELECT tokenizer_hash FROM teachers WHERE name = 'tok'"
expect_out vocab_hash "^$h$"

# prefix sharing keeps the first copy and counts disagreeing second copies:
# three sequences share their first 20 tokens; the second one's
# distribution at position 19 (the last shared one) names another top token
line() {  # $1 = last token, $2 = top-1 id at position 19
    awk -v last="$1" -v t19="$2" 'BEGIN {
        printf "{\"tokens\":["; for (i = 0; i < 21; i++) printf "%s%d", i ? "," : "", i < 20 ? i + 1 : last
        printf "],\"top\":["; for (i = 0; i < 20; i++) printf "%s[[%d,-0.1],[0,-2.5]]", i ? "," : "", i < 19 ? i + 2 : t19
        printf "]}\n" }'
}
{ line 30 21; line 31 25; line 32 21; } > pre.jsonl
expect prefix_share 0 slim-ingest --store "$T/tp" --dataset p --vocab-size 40 --json pre.jsonl
expect_out prefix_counts '"added":3,.*"shared_sequences":2,"shared_positions":40,"prefix_checked":2,"prefix_disagree":1'

# [T] ids with [T,V] logits; already-sparse topk_logits (no normaliser known)
"$G" gen dense flat.st n=1 t=7 v=40 flat=1 dtype=BF16 ids=I32
expect flat_tensors 0 slim-ingest --store "$T/fl" --dataset f --sparsify topk:3 --json flat.st
expect_out flat_summary '"added":1,.*"positions":7,"entries":21'
"$G" gen sparse tkl.st vals=logits n=2 t=5 k=3 v=50
expect topk_logits 0 slim-ingest --store "$T/tl" --dataset t --vocab-size 50 --json tkl.st
expect_out topk_logits_summary '"added":2,.*"positions":10,"entries":30'
run sqlite3 "$T/tl/meta.sqlite" "SELECT source FROM teachers"
expect_out topk_logits_source '^logits$'
