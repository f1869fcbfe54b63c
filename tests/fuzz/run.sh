#!/bin/sh
# run.sh — run each libFuzzer binary given on the command line for
# $FUZZ_SECONDS (default 60) over a corpus in build/fuzz/corpus/<name>,
# seeded by the target itself (`-mrag_seeds=DIR`, where supported) and by
# files in tests/fuzz/seeds/<name>/ when that folder exists. Prints one
# line per target and exits non-zero when any target crashed or failed.
BUILD=${BUILD:-build/fuzz}
SECS=${FUZZ_SECONDS:-60}
status=0
for bin in "$@"; do
  name=$(basename "$bin")
  if [ ! -x "$bin" ]; then
    echo "fuzz $name: FAIL: $bin is not built"
    status=1
    continue
  fi
  corpus="$BUILD/corpus/$name"
  art="$BUILD/artifacts/$name"
  log="$BUILD/logs/$name.log"
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  # Text seeds committed under tests/fuzz/seeds/<name>/ join the corpus.
  if [ -d "tests/fuzz/seeds/$name" ]; then cp -p "tests/fuzz/seeds/$name"/* "$corpus"/ 2>/dev/null; fi
  # Targets that know -mrag_seeds write seeds and exit; others just replay
  # the (maybe empty) corpus once (-runs=0) and exit, so this never hangs.
  "$bin" -mrag_seeds="$corpus" -runs=0 "$corpus" >/dev/null 2>&1
  "$bin" -max_total_time="$SECS" -timeout=10 -max_len=16384 -rss_limit_mb=2048 \
         -print_final_stats=1 -artifact_prefix="$art/" "$corpus" > "$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  files=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then
    echo "fuzz $name: ok, ${SECS}s, ${runs:-?} runs, ${eps:-?} exec/s, corpus $files files"
  else
    crash=$(ls -t "$art" 2>/dev/null | head -1)
    echo "fuzz $name: FAIL (exit $rc) after ${runs:-?} runs; input: $art/$crash; log: $log"
    grep -m 3 -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | sed 's/^/  /'
    status=1
  fi
done
exit $status
