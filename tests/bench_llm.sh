#!/bin/sh
# bench_llm.sh — `make bench-llm`: mrag beside llama.cpp's own llama-bench
# (built natively by `make llama-bench`) on ~0.5B-parameter Mistral-shaped
# models: one F16 file written by mkmodel (random weights, the Mistral
# vocabulary), quantized by llama-quantize to Q4_0, Q8_0, Q4_K_M, Q5_K_M and
# Q6_K as real downloads are made. Files are cached under build/bench/.
# Then tests/bench_llm measures both engines, interleaved per file: prefill
# of BENCH_PP (1024) tokens and BENCH_TG (256) decoded tokens after it, with
# BENCH_THREADS (2) threads. It refuses to report while the machine is busy
# (BENCH_FORCE=1 measures anyway and marks the output not for publication).
set -e
BUILD=${BUILD:-build}
SHARED=${MRAG_SHARED:-../shared}
VOCAB="$SHARED/models/mistral-v0.1-vocab-derived.gguf"
OUT=build/bench
THREADS=${BENCH_THREADS:-2}
REPS=${BENCH_REPS:-3}
PP=${BENCH_PP:-1024}
TG=${BENCH_TG:-256}
TYPES=${BENCH_TYPES:-"Q4_0 Q8_0 Q4_K_M Q5_K_M Q6_K"}
LB=${LLAMA_DIR:-build/llama.cpp}/b/bin

if [ ! -f "$VOCAB" ]; then
  echo "bench_llm: $VOCAB is absent (set MRAG_SHARED to the shared folder)" >&2
  exit 1
fi
if [ ! -x "$LB/llama-bench" ] || [ ! -x "$LB/llama-quantize" ]; then
  echo "bench_llm: $LB/llama-bench or llama-quantize is missing: run 'make llama-bench' first" >&2
  exit 1
fi
mkdir -p "$OUT"
base="$OUT/mistral-0.5b-f16.gguf"
if [ ! -s "$base" ]; then
  echo "bench_llm: writing $base (dim 2048, 8 layers, 16 heads, 4 KV heads, ff 5632, Mistral vocab, F16)" >&2
  "$BUILD/mkmodel" --dim 2048 --layers 8 --heads 16 --kv-heads 4 --ff 5632 \
    --vocab-from "$VOCAB" --ctx 4096 --rope-theta 10000 --type f16 --seed 1 --out "$base.tmp"
  mv "$base.tmp" "$base"
fi
models=""
for type in $TYPES; do
  lower=$(echo "$type" | tr 'A-Z' 'a-z')
  f="$OUT/mistral-0.5b-$lower.gguf"
  # a file of another origin (older mkmodel quantization) is made again
  if [ ! -s "$f" ] || [ ! -f "$f.lq" ] || [ "$base" -nt "$f" ]; then
    echo "bench_llm: llama-quantize $base -> $f ($type)" >&2
    if ! "$LB/llama-quantize" "$base" "$f.tmp" "$type" "$THREADS" >"$OUT/quantize-$lower.log" 2>&1; then
      echo "bench_llm: llama-quantize failed for $type; see $OUT/quantize-$lower.log" >&2
      exit 1
    fi
    mv "$f.tmp" "$f"
    touch "$f.lq"
  fi
  models="$models $f"
done
force=""
[ -n "$BENCH_FORCE" ] && [ "$BENCH_FORCE" != 0 ] && force="--force"
# shellcheck disable=SC2086
exec "$BUILD/tests/bench_llm" --threads "$THREADS" --pp "$PP" --tg "$TG" --reps "$REPS" \
  --llama-bench "$LB/llama-bench" --max-load "${BENCH_MAX_LOAD:-0.5}" $force $models
