# tests/cli/train.sh — slim-train's command-line contract: --help, --version,
# usage errors (exit 2) and refusals (exit 1) with git-style messages; then,
# when slim-store and slim-ingest are built, a JSONL -> snapshot -> train ->
# eval round trip.  (The store-level CLI cases live in tests/test_train_store.c.)
. "$SLIM_ROOT/tests/cli/lib.sh"
export SLIM_STORE="$T/store"

expect train_help 0 slim-train --help
expect_out train_help_usage '^usage: slim-train --snapshot S --out CKPT'
expect_help_complete train_help_complete
expect train_version 0 slim-train --version
expect_out train_version_text '^slim-train [0-9]+\.[0-9]+\.[0-9]+$'
expect train_no_snapshot 2 slim-train --out x.ckpt
expect_err train_no_snapshot_msg '^slim-train: --snapshot is required'
expect train_unknown_option 2 slim-train --snapshot s --out x.ckpt --frobnicate
expect_err train_unknown_option_msg "^slim-train: unknown option.*frobnicate"
expect train_bad_preset 2 slim-train --snapshot s --out x.ckpt --preset huge
expect_err train_bad_preset_msg "unknown preset 'huge'"
expect train_bad_heads 2 slim-train --snapshot s --out x.ckpt --dim 64 --heads 3
expect_err train_bad_heads_msg 'heads \(3\) must divide dim \(64\)'
expect train_bad_lr 2 slim-train --snapshot s --out x.ckpt --lr -1
expect_err train_bad_lr_msg 'lr must be positive'
expect train_bad_loss 2 slim-train --snapshot s --out x.ckpt --loss mse
expect train_missing_store 1 slim-train --store "$T/nowhere/deeper" --snapshot s --out x.ckpt
expect_err train_missing_store_msg "^slim-train: cannot open store '$T/nowhere/deeper'"
printf '# a config file\nlayers = 2\nbogus_key = 1\n' > "$T/bad.conf"
expect train_config_unknown_key 1 slim-train --snapshot s --out x.ckpt --config "$T/bad.conf"
expect_err train_config_unknown_key_msg "bad.conf' line 3: unknown setting 'bogus-key'"
printf 'layers=0\n' > "$T/zero.conf"
expect train_config_zero_layers 2 slim-train --snapshot s --out x.ckpt --config "$T/zero.conf"
expect_err train_config_zero_layers_msg 'layers must be at least 1'
printf 'layers=0\n' > "$T/zero.conf"
expect train_flag_overrides_config 1 slim-train --store "$T/nowhere" --snapshot s --out x.ckpt --config "$T/zero.conf" --layers 2
expect_err train_flag_overrides_config_msg 'cannot open store'
expect eval_needs_ckpt 2 slim-train eval --snapshot s
expect eval_missing_ckpt 1 slim-train eval --snapshot s --ckpt "$T/none.ckpt"
expect_err eval_missing_ckpt_msg "cannot open '$T/none.ckpt': No such file or directory"

if command -v slim-store > /dev/null && command -v slim-ingest > /dev/null; then
    # 24 sequences of 30 tokens over V=50, each position's top-3 (log-probs)
    /usr/bin/awk 'BEGIN { srand(7); for (s = 0; s < 24; s++) {
        printf "{\"id\": \"s%d\", \"tokens\": [", s; t[0] = int(rand() * 50)
        for (i = 0; i < 30; i++) { if (i) { t[i] = (t[i-1] * 7 + 3) % 50 }; printf "%s%d", (i ? "," : ""), t[i] }
        printf "], \"top\": ["
        for (i = 0; i < 29; i++) { n = (t[i] * 7 + 3) % 50; printf "%s[[%d, -0.3], [%d, -2.0], [%d, -2.5]]", (i ? "," : ""), n, (n + 1) % 50, (n + 2) % 50 }
        printf "]}\n" } }' > "$T/d.jsonl"
    run slim-store init
    expect train_e2e_ingest 0 slim-ingest --dataset d --teacher synth --vocab-size 50 --format jsonl "$T/d.jsonl"
    expect train_e2e_snapshot 0 slim-store snapshot create snap --dataset d --split valid=0.2
    expect train_e2e_train 0 slim-train --snapshot snap --out "$T/a.ckpt" --preset tiny --ctx 16 --steps 30 --threads 2 --json
    expect_out train_e2e_json '"step":30'
    expect train_e2e_eval 0 slim-train eval --snapshot snap --ckpt "$T/a.ckpt" --csv
    expect_out train_e2e_eval_csv '^ckpt_sha256,step,snapshot,split,positions,perplexity,kl,top1_agree,ece$'
    expect train_e2e_config_refused 1 slim-train --snapshot snap --out "$T/b.ckpt" --resume "$T/a.ckpt" --steps 40 --dim 32
    expect_err train_e2e_config_msg 'another configuration'
    if command -v slim-query > /dev/null; then
        expect train_e2e_query 0 slim-query --csv "SELECT loss, status, final_step FROM runs ORDER BY id"
        expect_out train_e2e_query_row '^slim,done,30'
    fi
    # a run whose records cannot be written (here a trigger refuses the metrics)
    # still writes its checkpoint, says why, exits 1 — and does not crash: a
    # failed metrics insert with a checkpoint pending used to finalize a
    # statement twice
    if command -v sqlite3 > /dev/null; then
        sqlite3 "$T/store/meta.sqlite" "CREATE TRIGGER refuse_metrics BEFORE INSERT ON run_metrics
            BEGIN SELECT RAISE(ABORT, 'metrics refused by the test'); END"
        # 300 logged steps: more than the recorder's 128-row buffer, which a
        # failed flush must empty rather than overrun
        expect train_record_fails 1 slim-train --snapshot snap --out "$T/c.ckpt" --preset tiny --ctx 16 --steps 300 --log-every 1 --threads 1
        expect_err train_record_fails_why '^slim-train: run_metrics: metrics refused by the test'
        expect_err train_record_fails_msg "c.ckpt' was written, but the run's record in '.*' is incomplete"
        check train_record_fails_ckpt test -s "$T/c.ckpt"
        sqlite3 "$T/store/meta.sqlite" "DROP TRIGGER refuse_metrics"
    fi
else
    echo "# slim-store / slim-ingest not built: end-to-end part skipped"
fi
