#!/bin/sh
# heldout.sh — measures the guardrails on data they were not built from:
# trains both detector models on the training part of the split
# (tests/guard/corpus.py wrote DIR/split and DIR/heldout), then runs
# `mrag guard-eval` with the default rules and those models over every
# held-out set and prints one line per set. Deterministic: the same inputs
# give the same figures.
set -eu
DIR=${1:-build/guard}
BUILD=${BUILD:-build}
MRAG=$BUILD/mrag
GUARD_TRAIN=${GUARD_TRAIN:---seed 1}
# shellcheck disable=SC2086
$MRAG guard-train $GUARD_TRAIN -o "$DIR/split/input.model" "$DIR/split/train.input.jsonl"
# shellcheck disable=SC2086
$MRAG guard-train $GUARD_TRAIN -o "$DIR/split/context.model" "$DIR/split/train.context.jsonl"
# shellcheck disable=SC2086
$MRAG guard-train $GUARD_TRAIN --whole-sentence -o "$DIR/split/request.model" "$DIR/split/train.request.jsonl"
ABS=$(cd "$DIR/split" && pwd)
cat > "$DIR/split/eval.rules" <<RULES
# the default detector rules, with the models of the split
id: inj.detector.input
model: $ABS/input.model

id: inj.detector.context
model: $ABS/context.model

id: inj.detector.task
model: $ABS/request.model
RULES
printf '%-24s %8s %9s %8s %10s\n' "held-out set" attacks detected benign "false pos"
# the development set of the unrelated-request check (written for it,
# tuned on: not a held-out measure; printed last, as "dev-requests")
mkdir -p "$DIR/dev"
python3 "$(dirname "$0")/devset.py" > "$DIR/dev/dev-requests.jsonl"
for f in "$DIR"/heldout/*.jsonl "$DIR/dev/dev-requests.jsonl"; do
  name=$(basename "$f" .jsonl)
  $MRAG guard-eval --json --list 0 --rules "$DIR/split/eval.rules" "$f" 2>/dev/null |
    python3 -c '
import json, sys
j = json.load(sys.stdin)
p, d, b, f = j["injections"], j["detected"], j["benign"], j["false_positives"]
print("%-24s %8s %9s %8s %10s" % (sys.argv[1], p or "-", ("%.1f%%" % (100.0 * d / p)) if p else "-", b or "-",
      ("%.2f%% (%d)" % (100.0 * f / b, f)) if b else "-"))' "$name"
done
