#!/bin/sh
# test_guard_triggers.sh — tests/guard/check_triggers.py proves the
# "trigger:" lines of the default rules sound against their patterns
# (docs/guardrails.md, "Triggers"); and the check can fail: a trigger that
# misses a branch, a prefix that does not start the word, and a whole word
# where the pattern allows a longer one are each reported. Prints ok/FAIL
# lines like the C tests (tests/run.sh adds them up).
T=test_guard_triggers
ok() { echo "ok   $T/$1"; }
fail() { echo "FAIL $T/$1 ($2)"; }
skip() { echo "skip $T/$1 ($2)"; }

if ! command -v python3 >/dev/null 2>&1; then
  skip the_default_triggers_are_sound "python3 not found"
  exit 0
fi
out=$(python3 tests/guard/check_triggers.py data/guardrails/*.rules 2>&1)
if [ $? -eq 0 ]; then ok the_default_triggers_are_sound; else fail the_default_triggers_are_sound "$out"; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrag-trig.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# bad: a branch without the trigger's word; a prefix inside a word; a whole
# word where "ignore[sd]?" allows "ignores"; good: the same rules fixed
cat > "$tmp/bad.rules" <<'RULES'
id: t.branch
trigger: ignor
stage: input
action: block
flags: i
pattern: \bignore\s+all\b|\bforget\s+all\b

id: t.inside
trigger: prompt
stage: input
action: block
flags: i
pattern: \bsystem-?prompt\b

id: t.whole
trigger: ignore$+all$
stage: input
action: block
flags: i
pattern: \bignore[sd]?\s+all\b
RULES
cat > "$tmp/good.rules" <<'RULES'
id: t.branch
trigger: ignor+all$ forget$+all$
stage: input
action: block
flags: i
pattern: \bignore\s+all\b|\bforget\s+all\b

id: t.inside
trigger: system
stage: input
action: block
flags: i
pattern: \bsystem-?prompt\b

id: t.whole
trigger: ignore+all$
stage: input
action: block
flags: i
pattern: \bignore[sd]?\s+all\b
RULES
out=$(python3 tests/guard/check_triggers.py "$tmp/bad.rules" 2>&1)
rc=$?
n=$(printf '%s\n' "$out" | grep -c 'holds no trigger item')
if [ $rc -ne 0 ] && [ "$n" -eq 3 ] && printf '%s' "$out" | grep -q 't.branch' && printf '%s' "$out" | grep -q 't.inside' \
   && printf '%s' "$out" | grep -q 't.whole'; then
  ok wrong_triggers_are_reported
else
  fail wrong_triggers_are_reported "rc $rc, $n reports: $out"
fi
out=$(python3 tests/guard/check_triggers.py "$tmp/good.rules" 2>&1)
if [ $? -eq 0 ]; then ok right_triggers_pass; else fail right_triggers_pass "$out"; fi
