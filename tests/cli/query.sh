# tests/cli/query.sh — slim-query end to end over the fixture store that
# tests/test_query_sql.c builds through the library (deterministic data):
# golden outputs, exit codes, --write enforcement, input sources, and the
# loadable extension in the stock sqlite3 shell.
. "$(dirname "$0")/lib.sh"
G="$(dirname "$0")/golden"
S="$T/q.store"
"$SLIM_BUILD/tests/test_query_sql" --fixture "$S" > "$T/fixture.log" 2>&1 ||
    { echo "FAIL query_fixture: $(cat "$T/fixture.log")"; exit 1; }
export SLIM_STORE="$S"

# Reals with a fraction are compared to 9 significant digits: their last bits
# follow summation order and the store's float handling, not the format.
numnorm() {
    awk '{ out = ""; s = $0
           while (match(s, /-?[0-9]+\.[0-9]+(e[-+]?[0-9]+)?/)) {
               out = out substr(s, 1, RSTART - 1) sprintf("%.9g", substr(s, RSTART, RLENGTH) + 0)
               s = substr(s, RSTART + RLENGTH) }
           print out s }' "$1"
}
# golden NAME CMD...: exit 0 and stdout equal to golden/query_NAME.out
# (SLIM_GOLDEN_UPDATE=1 rewrites the file instead: review the diff by eye)
golden() {
    name=$1; shift
    run "$@"
    if [ -n "$SLIM_GOLDEN_UPDATE" ]; then cp "$_last_out" "$G/query_$name.out"; fi
    if [ "$rc" -ne 0 ]; then echo "FAIL query_golden_$name: exit $rc: $(head -c 300 "$_last_err")"
    elif numnorm "$G/query_$name.out" > "$T/.want" && numnorm "$_last_out" > "$T/.got" &&
         diff -u "$T/.want" "$T/.got" > "$T/.diff"; then echo "ok query_golden_$name"
    else echo "FAIL query_golden_$name: differs from $G/query_$name.out: $(head -c 400 "$T/.diff" | tr '\n' '|')"; fi
}

golden positions_csv slim-query --csv \
    "SELECT * FROM positions WHERE dataset = 'web' AND seq = 1 AND pos BETWEEN 3 AND 8"
golden positions_end_table slim-query --table \
    "SELECT dataset, seq, pos, token, k, token_rank FROM positions
     WHERE dataset = 'web' AND seq IN (0, 1) AND pos >= 17 ORDER BY seq, pos"
golden topk_json slim-query --json \
    "SELECT * FROM topk WHERE dataset = 'web' AND seq = 2 AND pos = 7 AND rank <= 5"
golden escaping_csv slim-query --csv \
    "SELECT id, piece(dataset, id) AS piece FROM (SELECT 'web' AS dataset, value AS id
     FROM json_each('[6, 7, 8, 9]'))"
golden escaping_json slim-query --json "SELECT piece('web', 7) AS a, piece('web', 8) AS b,
     piece('nolse', 7) AS c, 1.5 AS r, x'00ff' AS blob"
golden show_web slim-query --csv show web 3
golden show_nolse_table slim-query --table show nolse 0
# record bytes follow the codec, which evolves: compared with the metadata
# instead of a golden file
golden stats_web sh -c 'slim-query --csv stats web | grep -v bytes'
golden stats_samp_json sh -c 'slim-query --json stats samp | grep -v bytes'
run slim-query --csv stats web
b1=$(grep '^record_bytes,' "$_last_out" | cut -d, -f2)
run slim-query --csv "SELECT record_bytes FROM datasets WHERE name = 'web'"
check query_stats_record_bytes test -n "$b1" -a "$b1" = "$(tail -n 1 "$_last_out" | tr -d '\r')"
golden join slim-query --csv \
    "SELECT s.dataset, s.seq, s.ext_id, count(*) AS n, round(avg(p.entropy), 6) AS mean_entropy,
       sum(p.token_rank IS NULL AND p.token IS NOT NULL) AS outside_k
     FROM seqs s JOIN positions p USING (dataset, seq)
     WHERE s.dataset = 'web2' GROUP BY s.dataset, s.seq ORDER BY s.seq"
golden kl slim-query --csv \
    "SELECT pos, round(kl('web', 0, pos, 'web2', 0, pos), 9) AS kl_ab,
       round(kl('web2', 0, pos, 'web', 0, pos), 9) AS kl_ba, round(kl('web', 0, pos, 'web', 0, pos), 9) AS kl_aa
     FROM positions WHERE dataset = 'web' AND seq = 0 AND pos < 4"
golden multi slim-query --csv "SELECT 1 AS a; SELECT name FROM datasets ORDER BY id; SELECT 2 AS b"

# the same answers from -f FILE and from standard input
printf "SELECT count(*) AS n FROM positions;\nSELECT count(*) AS n FROM topk WHERE rank = 1;\n" > "$T/q.sql"
golden counts slim-query --csv -f "$T/q.sql"
run sh -c 'slim-query --csv < "$1"' sh "$T/q.sql"
expect_same query_stdin_same_as_file "$G/query_counts.out"
# not a terminal: CSV by default
run slim-query "SELECT 1 AS one, 'a,b' AS two"
check query_default_csv_off_terminal test "$(cat "$_last_out")" = "$(printf 'one,two\r\n1,"a,b"\r')"

# errors: exit 1 with SQLite's / the store's message; usage errors exit 2
expect query_syntax_error 1 slim-query "SELEC 1"
expect_err query_syntax_error_msg 'slim-query: near "SELEC": syntax error'
expect query_unknown_dataset 1 slim-query "SELECT * FROM positions WHERE dataset = 'nope'"
expect_err query_unknown_dataset_msg "no such dataset 'nope'"
expect query_show_unknown_seq 1 slim-query show web 99
expect_err query_show_unknown_seq_msg "no sequence 99 in dataset 'web'"
expect query_stats_unknown_dataset 1 slim-query stats nope
expect query_no_store 1 slim-query --store "$T/absent" "SELECT 1"
expect_err query_no_store_msg "cannot open store '.*absent'"
expect query_unknown_option 2 slim-query --frobnicate "SELECT 1"
expect query_show_usage 2 slim-query show web
expect query_help 0 slim-query --help
expect_out query_help_text 'usage: slim-query'
expect_help_complete query_help_complete
expect query_version 0 slim-query --version

# --write: refused without it (nothing changes), allowed with it
expect query_write_refused 1 slim-query "CREATE TABLE notes(x)"
expect_err query_write_refused_msg 'read-only \(use --write\)'
expect query_write_refused_nothing 1 slim-query "SELECT * FROM notes"
expect query_write_ok 0 slim-query --write "CREATE TABLE notes(x); INSERT INTO notes VALUES (42)"
run slim-query "SELECT x FROM notes"
check query_write_visible test "$(tr -d '\r' < "$_last_out")" = "$(printf 'x\n42')"
expect query_write_all_or_nothing 1 slim-query --write "INSERT INTO notes VALUES (43); SELEC"
run slim-query "SELECT count(*) AS n FROM notes"
check query_write_rolled_back test "$(tr -d '\r' < "$_last_out")" = "$(printf 'n\n1')"

# the loadable extension in the stock sqlite3 shell: same answers.  Under
# ASan (make asan) the shell needs the sanitizer runtimes preloaded.
sq() {
    if [ -n "$SLIM_ASAN" ]; then
        env LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)" \
            ASAN_OPTIONS=detect_leaks=0 sqlite3 "$@"
    else sqlite3 "$@"; fi
}
if command -v sqlite3 > /dev/null && [ -f "$SLIM_BUILD/slimext.so" ]; then
    Q="SELECT count(*), round(sum(entropy), 6), sum(token_rank) FROM positions WHERE dataset = 'web'"
    run sq -csv "$S/meta.sqlite" ".load $SLIM_BUILD/slimext" "$Q"
    ext=$(cat "$_last_out")
    run slim-query --csv "$Q"
    check query_extension_same_answer test -n "$ext" -a "$ext" = "$(tail -n 1 "$_last_out" | tr -d '\r')"
    run sq "$S/meta.sqlite" ".load $SLIM_BUILD/slimext" \
        "SELECT piece('web', 42), detok('web', 0, 0, 0) IS NULL, count(*) FROM topk WHERE dataset = 'samp'"
    check query_extension_functions test "$(cat "$_last_out")" = " w42|0|973"
    run sq "$S/meta.sqlite" ".load $SLIM_BUILD/slimext" "SELECT * FROM positions WHERE dataset = 'x'"
    check query_extension_error test "$rc" -ne 0
    expect_err query_extension_error_msg "no such dataset 'x'"
else
    echo "FAIL query_extension: sqlite3 or $SLIM_BUILD/slimext.so missing"
fi

# the interactive prompt (readline needs a terminal: script(1) gives one)
if command -v script > /dev/null; then
    printf "SELECT count(*) AS n\n  FROM datasets;\nSELEC;\nSELECT 40 + 2 AS answer;\n.quit\n" |
        HOME="$T" script -qc "slim-query --store '$S'" /dev/null > "$T/tty.out" 2>&1
    check query_interactive_multiline grep -q "  4" "$T/tty.out"
    check query_interactive_error_goes_on grep -q "42" "$T/tty.out"
    check query_interactive_history grep -qx "SELECT 40 + 2 AS answer;" "$T/.slim_query_history"
    printf ".tables\n.mode json\nSELECT 7 AS seven;\n.stats nope\n.quit\n" |
        HOME="$T" script -qc "slim-query --store '$S'" /dev/null > "$T/tty2.out" 2>&1
    check query_interactive_tables grep -q "topk  *virtual table" "$T/tty2.out"
    check query_interactive_mode grep -q '{"seven": 7}' "$T/tty2.out"
    check query_interactive_dot_error grep -q "no such dataset 'nope'" "$T/tty2.out"
fi
