# tests/cli/lib.sh — sourced by CLI test scripts.  Each check prints
# "ok NAME" or "FAIL NAME: why".  $SLIM_TMP is a fresh scratch directory.
T=${SLIM_TMP:-$(mktemp -d)}
_last_out="$T/.out"; _last_err="$T/.err"

# run CMD...: runs it, keeps stdout/stderr/exit code in $_last_out/$_last_err/$rc
run() { "$@" > "$_last_out" 2> "$_last_err"; rc=$?; }

# expect NAME CODE CMD...: the command exits CODE
expect() {
    name=$1; code=$2; shift 2
    run "$@"
    if [ "$rc" -eq "$code" ]; then echo "ok $name"
    else echo "FAIL $name: exit $rc, expected $code: $(head -c 300 "$_last_err")"; fi
}
# expect_err NAME REGEX: stderr of the last run matches (grep -E)
expect_err() {
    if grep -Eq -- "$2" "$_last_err"; then echo "ok $1"
    else echo "FAIL $1: stderr does not match '$2': $(head -c 300 "$_last_err")"; fi
}
# expect_out NAME REGEX: stdout of the last run matches (grep -E)
expect_out() {
    if grep -Eq -- "$2" "$_last_out"; then echo "ok $1"
    else echo "FAIL $1: stdout does not match '$2': $(head -c 300 "$_last_out")"; fi
}
# expect_same NAME FILE_EXPECTED: stdout of the last run equals a golden file
expect_same() {
    if diff -u "$2" "$_last_out" > "$T/.diff"; then echo "ok $1"
    else echo "FAIL $1: differs from $2: $(head -c 400 "$T/.diff" | tr '\n' '|')"; fi
}
# expect_help_complete NAME: every --option in the synopsis of the last run's
# stdout (its lines up to the first blank one) has a line of its own below,
# "  --option ..." (several may share one, as "  --seed N --threads N")
expect_help_complete() {
    _undoc=
    for _o in $(sed -n '1,/^$/p' "$_last_out" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
        sed '1,/^$/d' "$_last_out" | grep -Eq -- "^ +(--[a-z/-]+ [^ ]+ )*$_o([ ,/]|$)" || _undoc="$_undoc $_o"
    done
    if [ -z "$_undoc" ]; then echo "ok $1"; else echo "FAIL $1: --help does not describe$_undoc"; fi
}
# check NAME CONDITION-COMMAND...: ok when the command succeeds
check() {
    name=$1; shift
    if "$@" > /dev/null 2>&1; then echo "ok $name"; else echo "FAIL $name: '$*' failed"; fi
}
