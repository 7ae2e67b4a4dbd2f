#!/bin/sh
# tests/corpus.sh OUT [all|fortunes|bible] — build slim's plain-text demo
# corpus from Debian packages, with no download:
#
#   fortunes        every file under /usr/share/games/fortunes (the .dat index
#                   and .u8 files skipped, the offensive "off/" subtree never
#                   read); fortunes are separated by a line holding "%";
#                   overstrike sequences (x BACKSPACE y, and "___" followed by
#                   as many BACKSPACEs, used for underlining) are removed so
#                   only the overstriking text is left.
#   bible-kjv-text  all 31,102 verses of the King James Bible, dumped with one
#                   call of the `bible` program (package bible-kjv) over
#                   gen1:1-rev22:21, one verse per line with the "Ge1:1 "
#                   reference dropped.
#
# Output: UTF-8 text, one document per paragraph: each fortune, then each
# chapter of the Bible, separated from the next by one empty line.  Inside a
# document, lines end with "\n" and empty lines are removed, so "\n\n" only
# ever separates documents.  Files are read in C-locale sorted order, so the
# output is byte-identical on every run (~6.7 MB: ~2.5 MB fortunes, ~4.2 MB
# Bible).  Needs: fortunes (or fortune-mod's data), bible-kjv, bible-kjv-text,
# sed, awk.  Exit 1 with a message when a source is missing.
set -eu
LC_ALL=C
export LC_ALL
me=corpus.sh
[ $# -ge 1 ] || { echo "usage: $me OUT [all|fortunes|bible]" >&2; exit 2; }
out=$1
what=${2:-all}
case $what in all|fortunes|bible) ;; *) echo "usage: $me OUT [all|fortunes|bible]" >&2; exit 2 ;; esac
FORTUNES=${SLIM_FORTUNES_DIR:-/usr/share/games/fortunes}
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT INT TERM
: > "$tmp"

fortunes() {
    [ -d "$FORTUNES" ] || { echo "$me: cannot open '$FORTUNES': No such directory (apt-get install fortunes)" >&2; exit 1; }
    n=0
    for f in $(find "$FORTUNES" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort); do
        # '%' alone on a line ends a fortune; print each as one paragraph
        sed -e ':a' -e 's/[^\x08]\x08//g' -e 'ta' -e 's/\x08//g' "$f" | awk '
            /^%[ \t]*$/ { if (n) printf "\n"; n = 0; next }
            /^[ \t]*$/  { next }
            { print; n++ }
            END { if (n) printf "\n" }'
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || { echo "$me: no fortune files in '$FORTUNES'" >&2; exit 1; }
}

bible_text() {
    command -v bible > /dev/null 2>&1 || { echo "$me: cannot run 'bible' (apt-get install bible-kjv bible-kjv-text)" >&2; exit 1; }
    # -f: one verse per line as "Ge1:1 text"; a new chapter starts at verse 1
    bible -f gen1:1-rev22:21 | awk '
        { ref = $1; sub(/^[^ ]+ /, ""); verse = ref; sub(/^.*:/, "", verse) }
        verse == "1" && NR > 1 { printf "\n" }
        { print }
        END { printf "\n" }'
}

case $what in
    all) fortunes >> "$tmp"; bible_text >> "$tmp" ;;
    fortunes) fortunes >> "$tmp" ;;
    bible) bible_text >> "$tmp" ;;
esac
[ -s "$tmp" ] || { echo "$me: empty corpus" >&2; exit 1; }
mv "$tmp" "$out"
trap - EXIT INT TERM
