# tests/cli/teacher_cli.sh — the command-line wiring of the built-in teacher
# and of token-only text: slim-train tokenizer, slim-ingest --text (with and
# without --model), --generate, slim-train --train-limit, and their usage
# errors.  Small text and a tiny model, so it runs in seconds.
. "$SLIM_ROOT/tests/cli/lib.sh"
export SLIM_STORE="$T/store"

# a small deterministic corpus: 60 documents separated by blank lines
/usr/bin/awk 'BEGIN { srand(3); split("the of and a to in is you that it he was for on are as with his they at be this", w, " ");
    for (d = 0; d < 60; d++) { n = 20 + int(rand() * 60); s = "";
        for (i = 0; i < n; i++) s = s (i ? " " : "") w[1 + int(rand() * 22)] (rand() < 0.1 ? "." : "");
        print s; print "" } }' > "$T/corpus.txt"

# ---- slim-train tokenizer
expect tok_usage 2 slim-train tokenizer --corpus "$T/corpus.txt" --out "$T/tok.slim"
expect_err tok_usage_msg '^slim-train tokenizer: --corpus, --vocab-size and --out are required'
expect tok_bad_size 2 slim-train tokenizer --corpus "$T/corpus.txt" --vocab-size 12 --out "$T/tok.slim"
expect tok_missing 1 slim-train tokenizer --corpus "$T/none.txt" --vocab-size 300 --out "$T/tok.slim"
expect_err tok_missing_msg "cannot open '$T/none.txt': No such file or directory"
expect tok_train 0 slim-train tokenizer --corpus "$T/corpus.txt" --vocab-size 300 --out "$T/tok.slim" --hf-json "$T/tok.json"
expect_out tok_train_summary "tok.slim: 300 tokens \(43 merges\), sha256 [0-9a-f]{64}"
check tok_files test -s "$T/tok.slim" -a -s "$T/tok.json"
run slim-train tokenizer --corpus "$T/corpus.txt" --vocab-size 300 --out "$T/tok2.slim"
check tok_deterministic cmp "$T/tok.slim" "$T/tok2.slim"

# ---- usage errors of the new slim-ingest flags
expect ingest_generate_needs_model 2 slim-ingest --dataset x --generate 3
expect_err ingest_generate_needs_model_msg 'need --model'
expect ingest_model_needs_mode 2 slim-ingest --dataset x --model "$T/t.ckpt"
expect_err ingest_model_needs_mode_msg 'exactly one of --text and --generate'
expect ingest_model_both 2 slim-ingest --dataset x --model "$T/t.ckpt" --text "$T/corpus.txt" --generate 2
expect ingest_model_files 2 slim-ingest --dataset x --model "$T/t.ckpt" --generate 2 a.jsonl
expect ingest_bad_topp 2 slim-ingest --dataset x --model "$T/t.ckpt" --generate 2 --top-p 1.5
expect ingest_text_needs_tok 1 slim-ingest --dataset x --text "$T/corpus.txt"
expect_err ingest_text_needs_tok_msg '^slim-ingest: --text needs --tokenizer'
expect ingest_text_sparsify 2 slim-ingest --dataset x --text "$T/corpus.txt" --tokenizer t --sparsify topk:4
expect_err ingest_text_sparsify_msg '--sparsify needs --model'
expect ingest_help 0 slim-ingest --help
expect_out ingest_help_model '--model CKPT --generate N'

# ---- token-only text -> teacher with CE
expect text_ingest 0 slim-ingest --dataset corpus --text "$T/corpus.txt" --tokenizer "$T/tok.slim" --ctx 32
expect_out text_ingest_summary "^dataset 'corpus': added [0-9]+ sequences \(0 positions\)"
run slim-query --csv "SELECT t.name, t.vocab_size, max(s.npos), max(s.ntokens), count(*) FROM sequences s
    JOIN datasets d ON d.id = s.dataset_id JOIN teachers t ON t.id = d.teacher_id WHERE d.name = 'corpus'"
expect_out text_ingest_rows '^text,300,0,32,[0-9]+'
# every id but 0 (the NUL byte: the vocab table holds NUL-free text)
run slim-query --csv "SELECT count(*) FROM vocab"
expect_out text_ingest_vocab '^299'
expect text_ingest_again 0 slim-ingest --dataset corpus --text "$T/corpus.txt" --tokenizer "$T/tok.slim" --ctx 32
expect_out text_ingest_again_dups "added 0 sequences .*skipped [1-9][0-9]* duplicates"
expect text_ingest_missing 1 slim-ingest --dataset corpus --text "$T/none.txt" --tokenizer "$T/tok.slim"
expect_err text_ingest_missing_msg "cannot open '$T/none.txt': No such file or directory"
expect text_ingest_small_v 1 slim-ingest --dataset corpus2 --text "$T/corpus.txt" --tokenizer "$T/tok.slim" --vocab-size 100
expect_err text_ingest_small_v_msg 'tokenizer has 300 tokens but --vocab-size is 100'
run slim-query --csv "SELECT count(*) FROM datasets WHERE name = 'corpus2'"
expect_out text_ingest_refused_untouched '^0'
run slim-store snapshot create corpus --dataset corpus --split valid=0.1
SHAPE="--layers 1 --dim 32 --heads 2 --ctx 32 --batch 4 --lr 3e-3 --warmup 2 --seed 1"
# shellcheck disable=SC2086
expect teacher_train_ce 0 slim-train --snapshot corpus --out "$T/t.ckpt" --loss ce $SHAPE --steps 20 --json
check teacher_train_ce_loss_drops /usr/bin/awk -F'"loss":' 'NR == 1 { split($2, a, ","); f = a[1] } { split($2, a, ","); l = a[1] }
    END { exit !(l < f) }' "$_last_out"
expect teacher_eval 0 slim-train eval --snapshot corpus --ckpt "$T/t.ckpt" --csv
expect_out teacher_eval_csv '^[0-9a-f]{64},20,"corpus",valid,[0-9]+,[0-9.]+,nan,nan'

# ---- --train-limit: the first N train members, recorded in the run's config
# shellcheck disable=SC2086
expect train_limit 0 slim-train --snapshot corpus --out "$T/l.ckpt" --loss ce $SHAPE --steps 2 --train-limit 5
run slim-query --csv "SELECT json_extract(config, '\$.\"train-limit\"') FROM runs ORDER BY id DESC LIMIT 1"
expect_out train_limit_recorded '^5'
# shellcheck disable=SC2086
expect train_limit_stop 0 slim-train --snapshot corpus --out "$T/r.ckpt" --loss ce $SHAPE --steps 4 --stop-after 2 --train-limit 5
expect train_limit_resume_other 1 slim-train --snapshot corpus --out "$T/r2.ckpt" --resume "$T/r.ckpt" --train-limit 6
expect_err train_limit_resume_other_msg 'another configuration: it has train-limit=5, this run train-limit=6'
expect train_limit_resume_same 0 slim-train --snapshot corpus --out "$T/r2.ckpt" --resume "$T/r.ckpt"
# shellcheck disable=SC2086
expect train_limit_too_big 1 slim-train --snapshot corpus --out "$T/l.ckpt" --loss ce $SHAPE --steps 2 --train-limit 100000
expect_err train_limit_too_big_msg 'has only [0-9]+ training sequences'
# shellcheck disable=SC2086
expect train_limit_negative 2 slim-train --snapshot corpus --out "$T/l.ckpt" $SHAPE --train-limit -3

# ---- the teacher: generate (seeded, reproducible) and score
printf 'the of and a to in\nyou that it he was\n' > "$T/prompts.txt"
gen() {  # DATASET SEED
    slim-ingest --dataset "$1" --teacher tiny --model "$T/t.ckpt" --tokenizer "$T/tok.slim" \
        --generate 6 --prompts "$T/prompts.txt" --max-tokens 8 --seed "$2" --json
}
expect gen_a 0 gen g1 5
expect_out gen_a_added '"added":6'
expect gen_b 0 gen g2 5
expect gen_c 0 gen g3 6
tokens_of() { slim-query --csv "SELECT hex(s.tokens) FROM sequences s JOIN datasets d ON d.id = s.dataset_id
                                WHERE d.name = '$1' ORDER BY seq"; }
check gen_reproducible test "$(tokens_of g1)" = "$(tokens_of g2)"
check gen_seed_matters test "$(tokens_of g1)" != "$(tokens_of g3)"
run slim-query --csv "SELECT min(npos = ntokens), max(ntokens) FROM sequences s JOIN datasets d ON d.id = s.dataset_id WHERE d.name = 'g1'"
expect_out gen_positions_stored '^1,'
expect gen_again_dedup 0 gen g1 5
expect_out gen_again_dedup_skipped '"added":0,"skipped":6'
expect gen_sampled 0 slim-ingest --dataset g1-rs --teacher tiny --model "$T/t.ckpt" --tokenizer "$T/tok.slim" \
    --generate 6 --prompts "$T/prompts.txt" --max-tokens 8 --seed 5 --sparsify sample:16
check gen_sampled_same_tokens test "$(tokens_of g1)" = "$(tokens_of g1-rs)"
head -12 "$T/corpus.txt" > "$T/score.txt"
expect score_text 0 slim-ingest --dataset scored --model "$T/t.ckpt" --tokenizer "$T/tok.slim" --text "$T/score.txt"
expect_out score_text_summary "^dataset 'scored': added [1-9][0-9]* sequences \([1-9][0-9]* positions\)"
expect score_text_missing_model 1 slim-ingest --dataset scored2 --model "$T/none.ckpt" --tokenizer "$T/tok.slim" --text "$T/score.txt"
expect_err score_text_missing_model_msg "^slim-ingest: .*none.ckpt"
