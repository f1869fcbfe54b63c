#!/bin/sh
# bench_remote_ingest.sh — part of `make bench-scale` (a benchmark, not a
# test): ingestion through a remote embedding server on loopback (`mrag
# serve`) at 1, 4 and 16 requests in flight, against the server's own
# /v1/embeddings throughput measured alone on the same chunks with the same
# batches and concurrency (tests/bench_embed_alone.c: nothing but the
# requests). Both sides run interleaved for each concurrency; every line
# carries the load average (figures from a busy machine are noise).
#
#   BUILD=build sh tests/bench_remote_ingest.sh
#   env: REMOTE_COPIES (16: copies of data/sample, ~1,550 chunks), REMOTE_BATCH (16),
#        REMOTE_PARALLEL ("1 4 16"), REMOTE_SLOTS (server --embed-slots, 2),
#        REMOTE_MODEL_ARGS (mkmodel shape, default dim 512, 4 layers),
#        REMOTE_SMALL_FILES (1000: the many-small-files case, 4 in flight)
#
# The goal (issue 17): ingestion within 10 % of the server alone.
set -eu
BUILD=${BUILD:-build}
MRAG=$BUILD/mrag
ALONE=$BUILD/tests/bench_embed_alone
COPIES=${REMOTE_COPIES:-16}
BATCH=${REMOTE_BATCH:-16}
PARS=${REMOTE_PARALLEL:-1 4 16}
SLOTS=${REMOTE_SLOTS:-2}
SHAPE=${REMOTE_MODEL_ARGS:---dim 512 --layers 4 --heads 8 --kv-heads 2 --ff 1536 --ctx 2048}
die() { echo "bench_remote_ingest: $*" >&2; exit 1; }
[ -x "$MRAG" ] && [ -x "$BUILD/mkmodel" ] && [ -x "$ALONE" ] || die "build first (make $BUILD/tests/bench_embed_alone)"
[ -d data/sample ] || die "data/sample is missing (run from the repository root)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mrag-bench-remote.XXXXXX")
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
VOCAB=../shared/models/mistral-v0.1-vocab-derived.gguf
if [ -f "$VOCAB" ]; then V="--vocab-from $VOCAB"; else V="--vocab-size 4096"; fi
# shellcheck disable=SC2086
"$BUILD/mkmodel" $SHAPE $V --out "$TMP/model.gguf" >/dev/null 2>&1 || die "mkmodel failed"
i=0
while [ "$i" -lt "$COPIES" ]; do
  mkdir -p "$TMP/docs/c$i"
  cp -r data/sample/. "$TMP/docs/c$i/"
  # each copy its own content (no two files alike)
  find "$TMP/docs/c$i" -name '*.txt' -o -name '*.md' | while read -r f; do echo "Copy $i of $(basename "$f")." >> "$f"; done
  i=$((i + 1))
done
env -u MRAG_MODEL "$MRAG" ingest data/sample/recipes --index "$TMP/srvidx" -m "$TMP/model.gguf" -q >/dev/null 2>&1 || die "server index"
env -u MRAG_MODEL "$MRAG" serve --index "$TMP/srvidx" -m "$TMP/model.gguf" --listen 127.0.0.1:0 --threads 1 \
    --embed-slots "$SLOTS" --queue 64 2> "$TMP/serve.err" &
srv=$!
url=
for _ in $(seq 1 600); do
  url=$(sed -n 's|.*listening on \(http://127.0.0.1:[0-9]*\).*|\1|p' "$TMP/serve.err" | head -1)
  [ -n "$url" ] && break
  kill -0 "$srv" 2>/dev/null || die "the server did not start: $(cat "$TMP/serve.err")"
  sleep 0.1
done
[ -n "$url" ] || die "the server did not listen"
echo "remote ingestion: $COPIES copies of data/sample, model $SHAPE, server $url --embed-slots $SLOTS, batches of $BATCH"
# measure DIR P LABEL: the server alone, then the ingest, on DIR's chunks.
# The ratio uses the run's own time (the summary's: walk to last store),
# not the fusion weights learned after it (200 one-query requests).
measure() {
  load=$(cut -d' ' -f1 /proc/loadavg)
  alone=$("$ALONE" "$url/v1" "$1" "$TMP/model.gguf" "$BATCH" "$2") || die "server alone: $alone"
  a_cps=$(echo "$alone" | sed -n 's/.*= \([0-9.]*\) chunks\/s.*/\1/p')
  rm -rf "$TMP/idx"
  t0=$(date +%s.%N)
  out=$(env -u MRAG_MODEL "$MRAG" ingest "$1" --index "$TMP/idx" -m "$TMP/model.gguf" --llm-url "$url/v1" \
        --llm-embeddings --embed-parallel "$2" --embed-batch "$BATCH" 2>&1) || die "ingest: $out"
  t1=$(date +%s.%N)
  chunks=$(echo "$out" | sed -n 's/^\([0-9]*\) chunks\{0,1\} written.*/\1/p')
  run_s=$(echo "$out" | sed -n 's/.* removed in \([0-9.]*\) s .*/\1/p')
  awk -v p="$2" -v c="$chunks" -v a="$t0" -v b="$t1" -v rs="$run_s" -v al="$a_cps" -v l="$load" -v l2="$(cut -d' ' -f1 /proc/loadavg)" -v lab="$3" 'BEGIN {
    s = b - a; r = (rs > 0 ? c / rs : 0)
    printf "%sin flight %2d: ingest %d chunks in %.2f s (wall with start-up and fusion weights %.2f s) = %.1f chunks/s; server alone %.1f chunks/s; ingest/alone %.2f (load %s -> %s)\n",
           lab, p, c, rs, s, r, al, (al > 0 ? r / al : 0), l, l2 }'
}
for p in $PARS; do measure "$TMP/docs" "$p" ""; done
# many small files (one chunk each): batches filled across documents keep
# the requests full (the server alone sends full batches of the same chunks)
SMALL=${REMOTE_SMALL_FILES:-1000}
mkdir -p "$TMP/small"
i=0
while [ "$i" -lt "$SMALL" ]; do
  printf '# Note %d\n\nNote %d of the benchmark says that shelf %d holds the spare cables.\n' "$i" "$i" "$i" > "$TMP/small/n$i.md"
  i=$((i + 1))
done
measure "$TMP/small" 4 "$SMALL small files, "
