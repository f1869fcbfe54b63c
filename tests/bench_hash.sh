#!/bin/sh
# bench_hash.sh — the model fingerprint cache (llm/sha_cache.c), a benchmark,
# not a test: a sparse 4 GB Mistral-7B-shaped Q4_K file (mkmodel --sparse:
# all-zero weights written as holes, so it costs no disk and no generation),
# a folder of 5 small documents; `mrag ingest` runs three times into a fresh
# index with a fresh hash cache. Run 1 hashes the whole file (and embeds the
# documents); runs 2 and 3 find nothing changed and, with the cache, hash only
# the file's header. Prints the wall seconds of each run with the load
# average (a run on a busy machine is not a figure to publish).
#
#   BUILD=build sh tests/bench_hash.sh
#
# The goal (issue 12): run 2 under one second. MRAG_SHA_CACHE=off shows the
# cost without the cache (every run hashes 4 GB).
set -eu
BUILD=${BUILD:-build}
MRAG=$BUILD/mrag
[ -x "$MRAG" ] && [ -x "$BUILD/mkmodel" ] || { echo "bench_hash: build first (make BUILD=$BUILD)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mrag-bench-hash.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
VOCAB=../shared/models/mistral-v0.1-vocab-derived.gguf
if [ -f "$VOCAB" ]; then V="--vocab-from $VOCAB"; else V="--vocab-size 32000"; fi
"$BUILD/mkmodel" --sparse --dim 4096 --layers 32 --heads 32 --kv-heads 8 --ff 14336 $V --type q4_k \
    --out "$TMP/model.gguf" 2>/dev/null
mkdir "$TMP/docs"
for i in 1 2 3 4 5; do echo "Document $i: the keeper climbed the stairs every evening." > "$TMP/docs/d$i.txt"; done
export MRAG_CACHE_DIR="$TMP/cache"
echo "model: $(ls -l "$TMP/model.gguf" | awk '{print $5}') bytes ($(du -k "$TMP/model.gguf" | cut -f1) KB on disk)"
for run in 1 2 3; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  a=$(date +%s.%N)
  "$MRAG" ingest "$TMP/docs" --index "$TMP/idx" -m "$TMP/model.gguf" -q >/dev/null 2>&1
  b=$(date +%s.%N)
  awk -v r="$run" -v l="$load" -v a="$a" -v b="$b" 'BEGIN { printf "ingest run %d: %.2f s, load %s\n", r, b - a, l }'
done
