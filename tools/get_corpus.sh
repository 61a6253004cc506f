#!/bin/sh
# dump the king james bible (debian's bible-kjv-text, public domain) as plain text:
# one verse per line without its number, a blank line between chapters, no headings.
# usage: tools/get_corpus.sh OUT.txt   (installs bible-kjv with apt-get when `bible` is missing)
set -eu
out=${1:?usage: get_corpus.sh OUT.txt}
if ! command -v bible >/dev/null 2>&1; then
    apt-get install -y bible-kjv >/dev/null || { apt-get update >/dev/null && apt-get install -y bible-kjv >/dev/null; }
fi
# -l with a huge width keeps each verse on one line; output is "Book N" headings and "  N text" verses
bible -l1000000 "Gen1:1-Rev22:21" | awk '
    /^  *[0-9]+ / { sub(/^ *[0-9]+ /, ""); print; started = 1; next }
    /^[1-3]? ?[A-Za-z]/ { if (started) print "" }
' > "$out"
chapters=$(grep -c '^$' "$out" || true)
verses=$(grep -vc '^$' "$out")
echo "$out: $verses verses, $((chapters + 1)) chapters, $(wc -c < "$out") bytes"
