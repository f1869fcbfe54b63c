#!/bin/sh
# run.sh — run test binaries (and tests/test_*.sh scripts), add up their
# "ok" / "FAIL" / "skip" lines and end with "N passed, N failed, N skipped".
# A binary that crashes or exits non-zero without a FAIL line counts as one
# failure of its own, so a crash can never pass silently.
BUILD=${BUILD:-build}
export BUILD
TIMEOUT=${TEST_TIMEOUT:-900}
log=$(mktemp)
# the model-hash cache (llm/sha_cache.c) of the tests, not the user's
cache=$(mktemp -d)
export MRAG_CACHE_DIR="$cache"
trap 'rm -f "$log" "$log.one"; rm -rf "$cache"' EXIT
extra_fail=0
for t in "$@" tests/test_*.sh; do
  [ -e "$t" ] || continue
  case "$t" in *.sh) cmd="sh $t" ;; *) cmd="$t" ;; esac
  start=$(date +%s)
  timeout "$TIMEOUT" $cmd > "$log.one" 2>&1
  rc=$?
  cat "$log.one"
  cat "$log.one" >> "$log"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$log.one"; then
    echo "FAIL $(basename "$t"): exited with status $rc (crash, timeout or error)"
    extra_fail=$((extra_fail + 1))
  fi
  echo "# $(basename "$t"): $(( $(date +%s) - start ))s"
done
passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^skip ' "$log")
failed=$((failed + extra_fail))
echo
if [ "$skipped" -gt 0 ]; then
  echo "skipped:"; grep '^skip ' "$log" | sed 's/^/  /'
fi
if [ "$failed" -gt 0 ]; then
  echo "failed:"; grep '^FAIL ' "$log" | sed 's/^/  /'
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
