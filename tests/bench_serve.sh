#!/bin/sh
# bench_serve.sh — `make bench-serve`: a bounded wrk run against `mrag serve`
# on loopback (a benchmark, not a test). Builds (once, then reuses) a
# random-weight model and an index of a few thousand chunks of synthetic
# documents under $BUILD/bench-serve, starts the server, and for
# GET /api/search and POST /v1/embeddings prints requests/s, p50/p90/p99
# latency and the error counts (non-2xx must be 0), plus the server's RSS
# before, after a warm-up and after each run (flat RSS = no leak) and the
# machine's load average.
#
#   BUILD=build sh tests/bench_serve.sh
#   env: BENCH_SECONDS (20), BENCH_THREADS (2), BENCH_CONNS (8), BENCH_DOCS (160),
#        BENCH_SERVE_THREADS (engine threads of the server, 1), BENCH_MODE (hybrid)
BUILD=${BUILD:-build}
MRAG=$BUILD/mrag
MK=$BUILD/mkmodel
SECS=${BENCH_SECONDS:-20}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-8}
DOCS=${BENCH_DOCS:-160}
SRV_THREADS=${BENCH_SERVE_THREADS:-1}
MODE=${BENCH_MODE:-hybrid}
export BENCH_MODE=$MODE

die() { echo "bench_serve: $*" >&2; exit 1; }
command -v wrk >/dev/null 2>&1 || die "wrk is not installed (apt-get install wrk)"
command -v curl >/dev/null 2>&1 || die "curl is not installed"
[ -x "$MRAG" ] && [ -x "$MK" ] || die "$MRAG or $MK is missing (run make)"
"$MRAG" serve --help >/dev/null 2>&1 || die "this mrag has no serve command"

work=$BUILD/bench-serve
mkdir -p "$work"

# ---------------------------------------------------------------- model
model=$work/model.gguf
if [ ! -f "$model" ]; then
  vocab=../shared/models/mistral-v0.1-vocab-derived.gguf
  if [ -f "$vocab" ]; then vopt="--vocab-from $vocab"; else vopt="--vocab-size 4096"; fi
  echo "model: writing $model (dim 256, 2 layers, 8/2 heads, ff 768, Q8_0)"
  # shellcheck disable=SC2086
  "$MK" --dim 256 --layers 2 --heads 8 --kv-heads 2 --ff 768 $vopt --ctx 2048 \
    --type q8_0 --seed 3 --out "$model" >/dev/null || die "mkmodel failed"
fi

# ---------------------------------------------------------------- corpus
# DOCS synthetic markdown documents of ~700 words drawn (seeded, Zipf-ish)
# from the words of data/sample, so BM25 and the tokenizer see real words.
docs=$work/docs
if [ ! -f "$docs/.complete-$DOCS" ]; then
  rm -rf "$docs"
  mkdir -p "$docs"
  cat data/sample/*/* | LC_ALL=C tr -cs 'A-Za-z' '\n' | awk 'length($0) > 2' | sort | uniq -c \
    | sort -rn | awk '{print $2}' | head -3000 > "$work/words"
  awk -v n="$DOCS" -v dir="$docs" '
    { w[NR] = $0 } END {
      srand(42); nw = NR
      for (d = 1; d <= n; d++) {
        f = sprintf("%s/doc-%04d.md", dir, d)
        printf "# Document %d\n\n", d > f
        for (p = 1; p <= 14; p++) {
          if (p % 5 == 1) printf "## Section %d.%d\n\n", d, p > f
          line = ""
          for (i = 1; i <= 50; i++) {
            r = rand(); idx = int(nw * r * r * r) + 1   # favours frequent words
            line = line (i > 1 ? " " : "") w[idx]
          }
          printf "%s.\n\n", line > f
        }
        close(f)
      }
    }' "$work/words"
  touch "$docs/.complete-$DOCS"
fi

idx=$work/index
echo "index: $idx (incremental: only the first run embeds)"
env -u MRAG_MODEL -u MRAG_INDEX "$MRAG" ingest "$docs" --index "$idx" -m "$model" \
  --chunk-tokens 96 --overlap 16 --quiet || die "mrag ingest failed"

# ---------------------------------------------------------------- server
log=$work/serve.log
env -u MRAG_MODEL -u MRAG_INDEX "$MRAG" serve --index "$idx" -m "$model" \
  --listen 127.0.0.1:0 --threads "$SRV_THREADS" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
trap 'exit 1' INT TERM
i=0
port=
until [ -n "$port" ] && curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do
  i=$((i + 1))
  if [ $i -gt 150 ] || ! kill -0 $pid 2>/dev/null; then cat "$log"; die "the server did not come up"; fi
  sleep 0.2
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -1)
done
base="http://127.0.0.1:$port"
health=$(curl -s "$base/healthz")

rss() { awk '/^VmRSS/ {printf "%.1f MB", $2 / 1024}' /proc/$pid/status; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# the server's CPU time so far (user + system) in clock ticks
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
HZ=$(getconf CLK_TCK)

echo
echo "== mrag serve benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
echo "   $health"
echo "   wrk: $THREADS threads, $CONNS connections, ${SECS} s per endpoint; server: --threads $SRV_THREADS"
echo "   load average before: $(load)"
echo "   RSS idle: $(rss)"

# checks that each endpoint answers 200 before timing it
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/api/search?q=vacation&k=10&mode=$MODE")
[ "$code" = 200 ] || die "/api/search answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"model":"mrag","input":"hello"}' "$base/v1/embeddings")
[ "$code" = 200 ] || die "/v1/embeddings answered $code"

run() {  # run NAME SCRIPT PATH SECONDS
  t0=$(ticks)
  wrk -t"$THREADS" -c"$CONNS" -d"$4s" --timeout 10s -s "$2" "$base$3" > "$work/wrk-$1.txt" 2>&1
  printf '%s server_cpu_s=%s\n' "$(sed -n 's/^RESULT //p' "$work/wrk-$1.txt")" \
    "$(awk -v a="$t0" -v b="$(ticks)" -v hz="$HZ" 'BEGIN {printf "%.2f", (b - a) / hz}')"
}

r=$(run warmup-search tests/bench/search.lua /api/search 5)
r=$(run warmup-embed tests/bench/embeddings.lua /v1/embeddings 5)
echo "   RSS after a 2 x 5 s warm-up: $(rss)"

status=0
report() {  # report LABEL RESULT-LINE
  # shellcheck disable=SC2086
  set -- "$1" $2
  label=$1; shift
  rps= p50= p99= non2xx= errs=0
  for kv in "$@"; do
    case $kv in
      rps=*) rps=${kv#rps=} ;; p50_ms=*) p50=${kv#p50_ms=} ;; p90_ms=*) p90=${kv#p90_ms=} ;;
      p99_ms=*) p99=${kv#p99_ms=} ;; requests=*) reqs=${kv#requests=} ;;
      non2xx=*) non2xx=${kv#non2xx=} ;; server_cpu_s=*) cpu=${kv#server_cpu_s=} ;;
      connect_err=*|read_err=*|write_err=*|timeouts=*) errs=$((errs + ${kv#*=})) ;;
    esac
  done
  cpu_ms=$(awk -v c="$cpu" -v n="$reqs" 'BEGIN {if (n > 0) printf "%.2f", c * 1000 / n; else print "-"}')
  printf '   %-16s %8s req/s  p50 %7s ms  p90 %7s ms  p99 %7s ms  requests %s  non-2xx %s  socket errors %s  server CPU/request %s ms  RSS after %s\n' \
    "$label" "$rps" "$p50" "$p90" "$p99" "$reqs" "$non2xx" "$errs" "$cpu_ms" "$(rss)"
  if [ "${non2xx:-1}" != 0 ] || [ "$errs" != 0 ]; then status=1; fi
}

report "/api/search" "$(run search tests/bench/search.lua /api/search "$SECS")"
report "/v1/embeddings" "$(run embed tests/bench/embeddings.lua /v1/embeddings "$SECS")"
report "/api/search (2)" "$(run search2 tests/bench/search.lua /api/search "$SECS")"
echo "   load average after: $(load)"
echo "   wrk outputs: $work/wrk-*.txt"
[ $status -eq 0 ] || echo "bench_serve: errors above (non-2xx or socket errors must be 0)" >&2
exit $status
