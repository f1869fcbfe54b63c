#!/bin/sh
# bench_wiki.sh — wiki sync throughput (a benchmark, not a test): a
# throw-away MediaWiki (tests/wiki_env.sh) gets N pages through
# importDump.php (English and German, two sections each); then `mrag
# ingest-wiki` is timed for a full sync, a no-change incremental re-sync, a
# no-change --full re-sync (revision check of every page, nothing fetched)
# and an incremental sync after 10 edits. Prints pages/s for each; the
# full sync runs twice, first with one page fetch at a time, then with the
# default 4 in flight (the wiki serves 2 PHP workers), with the load average.
#
#   BUILD=build/x sh tests/bench_wiki.sh [N]      (default N=500)
#
# The embedding model is a tiny random-weight mkmodel (dim 64, 1 layer), so
# the figures measure the connector and the wiki (PHP renders each page for
# action=parse), not the embedding cost of a real model. --rate 0: no
# request limit (the default of 10 requests/s would cap a sync at about 10
# pages/s, since each fetched page costs one action=parse request).
set -eu
BUILD=${BUILD:-build}
N=${1:-500}
MRAG=$BUILD/mrag
[ -x "$MRAG" ] && [ -x "$BUILD/mkmodel" ] || { echo "bench_wiki: build first (make BUILD=$BUILD)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mrag-bench-wiki.XXXXXX")
cleanup() { sh tests/wiki_env.sh stop "$TMP/wiki" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; printf "%.2f s, %.1f pages/s", d, (d > 0 ? n / d : 0) }'; }

set +e
sh tests/wiki_env.sh start "$TMP/wiki" public --no-pages >/dev/null 2>"$TMP/start.log"
st=$?
set -e
if [ $st -eq 77 ]; then echo "bench_wiki: skipped: MediaWiki or PHP not installed"; exit 0; fi
[ $st -eq 0 ] || { cat "$TMP/start.log" >&2; exit 1; }
. "$TMP/wiki/env"

# ------------------------------------------------------------ the pages
{
  echo '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="en">'
  i=1
  while [ $i -le "$N" ]; do
    if [ $((i % 3)) -eq 0 ]; then
      body="Seite $i beschreibt das Verfahren Nummer $i für die Abteilung $((i % 17)).

== Zweck ==
Dieses Verfahren regelt die Ablage der Unterlagen $i. Die Frist beträgt $((i % 30 + 1)) Tage; zuständig ist das Team $((i % 11)).

== Ablauf ==
Zuerst wird der Antrag geprüft, dann freigegeben und archiviert. Rückfragen gehen an die Hotline $((1000 + i))."
    else
      body="Page $i documents procedure number $i for department $((i % 17)).

== Purpose ==
This procedure governs how records $i are filed. The deadline is $((i % 30 + 1)) days; team $((i % 11)) owns it.

== Steps ==
First the request is reviewed, then approved and archived. Questions go to extension $((1000 + i))."
    fi
    printf '<page><title>Bench page %d</title><ns>0</ns><revision><timestamp>2026-01-01T00:00:00Z</timestamp><contributor><username>Admin</username></contributor><model>wikitext</model><format>text/x-wiki</format><text xml:space="preserve">%s</text></revision></page>\n' "$i" "$body"
    i=$((i + 1))
  done
  echo '</mediawiki>'
} > "$TMP/dump.xml"
t0=$(now)
sh tests/wiki_env.sh php "$TMP/wiki" importDump.php --no-updates "$TMP/dump.xml" >/dev/null 2>&1
t1=$(now)
echo "wiki: $WIKI_URL, $N pages imported in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"

"$BUILD/mkmodel" --dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 7 --out "$TMP/m.gguf" >/dev/null 2>&1
IDX=$TMP/idx
run() { "$MRAG" ingest-wiki "$WIKI_API" --index "$IDX" -m "$TMP/m.gguf" --rate 0 --threads 1 -q "$@" > "$TMP/out.txt" 2>&1 ||
        { cat "$TMP/out.txt" >&2; exit 1; }; }
pages_in() { n=$(sed -n 's/^\([0-9]*\) pages\{0,1\} in .*/\1/p' "$TMP/out.txt"); echo "${n:-0}"; }

# the same full sync with one page fetch at a time (--fetch-parallel 1),
# into another index, just before the default (4 fetches in flight)
t0=$(now); run --fetch-parallel 1 --index "$TMP/idx-seq"; t1=$(now)
echo "full sync, 1 fetch at a time: $(pages_in) pages, $(rate "$(pages_in)" "$t0" "$t1")  [$(head -1 "$TMP/out.txt")] (load $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(now); run; t1=$(now)
echo "full sync (4 fetches):      $(pages_in) pages, $(rate "$(pages_in)" "$t0" "$t1")  [$(head -1 "$TMP/out.txt")] (load $(cut -d' ' -f1-3 /proc/loadavg))"
t0=$(now); run; t1=$(now)
echo "no-change incremental sync: $(rate "$N" "$t0" "$t1") (pages per second of wall time for the $N-page wiki)  [$(head -1 "$TMP/out.txt")]"
t0=$(now); run --full; t1=$(now)
echo "no-change --full re-sync:   $(pages_in) pages, $(rate "$(pages_in)" "$t0" "$t1")  [$(head -1 "$TMP/out.txt")]"
i=1
while [ $i -le 10 ]; do
  printf 'Page %d was edited for the benchmark: new text about the heron %d.\n' "$i" "$i" |
    sh tests/wiki_env.sh edit "$TMP/wiki" "Bench page $i" >/dev/null
  i=$((i + 1))
done
t0=$(now); run; t1=$(now)
echo "incremental after 10 edits: $(rate 10 "$t0" "$t1") (changed pages per second)  [$(head -1 "$TMP/out.txt")]"
