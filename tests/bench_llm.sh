#!/bin/sh
# bench_llm.sh — `make bench-llm`: makes (or reuses) ~0.5B-parameter
# Mistral-shaped models in Q4_0 and Q8_0 under build/bench/ and runs
# tests/bench_llm on them: mrag beside llama.cpp (tests/oracle), 2 threads.
set -e
BUILD=${BUILD:-build}
SHARED=${MRAG_SHARED:-../shared}
VOCAB="$SHARED/models/mistral-v0.1-vocab-derived.gguf"
OUT=build/bench
THREADS=${BENCH_THREADS:-2}
REPS=${BENCH_REPS:-2}

if [ ! -f "$VOCAB" ]; then
  echo "bench_llm: $VOCAB is absent (set MRAG_SHARED to the shared folder)" >&2
  exit 1
fi
mkdir -p "$OUT"
models=""
for type in q4_0 q8_0; do
  f="$OUT/mistral-0.5b-$type.gguf"
  if [ ! -s "$f" ]; then
    echo "bench_llm: writing $f (dim 2048, 8 layers, 16 heads, 4 KV heads, ff 5632, Mistral vocab)" >&2
    "$BUILD/mkmodel" --dim 2048 --layers 8 --heads 16 --kv-heads 4 --ff 5632 \
      --vocab-from "$VOCAB" --ctx 4096 --rope-theta 10000 --type "$type" --seed 1 --out "$f"
  fi
  models="$models $f"
done
echo "bench_llm: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" >&2
# shellcheck disable=SC2086
"$BUILD/tests/bench_llm" --threads "$THREADS" --pp 512 --tg 128 --reps "$REPS" $models
