#!/bin/sh
# demo.sh — `make demo`: a short tour of what mrag can do today.
# Uses the model named by MRAG_MODEL when set; otherwise generates a small
# random-weight Mistral-shaped model (its text is meaningless: it shows the
# machinery, not answers). Never fails the make run for a missing piece: each
# step says what it does and whether it worked.
BUILD=${BUILD:-build}
MRAG=$BUILD/mrag
MK=$BUILD/mkmodel
out=$BUILD/demo
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; rc=$?; [ $rc -eq 0 ] || printf '(exit %d)\n' $rc; return 0; }

model=${MRAG_MODEL:-}
if [ -z "$model" ]; then
  model=$out/demo-model.gguf
  vocab=../shared/models/mistral-v0.1-vocab-derived.gguf
  if [ ! -f "$model" ]; then
    step "No MRAG_MODEL set: generating a small random-weight Mistral-shaped model"
    if [ -f "$vocab" ]; then
      vopt="--vocab-from $vocab"
    else
      vopt="--vocab-size 4096"
    fi
    # shellcheck disable=SC2086
    run "$MK" --dim 256 --layers 4 --heads 8 --kv-heads 2 --ff 768 $vopt \
        --ctx 2048 --rope-theta 1000000 --type q8_0 --seed 1 --out "$model"
  fi
  echo "note: this model has random weights, so the generated text is not meaningful;"
  echo "      run with a real Mistral GGUF: MRAG_MODEL=/path/mistral-7b-instruct.Q4_K_M.gguf make demo"
fi

step "Model information"
run "$MRAG" model-info "$model"

step "Tokenizing with the model's SentencePiece vocabulary"
run "$MRAG" tokenize -m "$model" --pieces "Mistral läuft lokal: [INST] no network needed [/INST]"
run "$MRAG" tokenize -m "$model" --special "[INST] Hello [/INST]"

step "Generating (greedy) with the in-process engine"
run "$MRAG" generate -m "$model" -p "The quick brown fox" -n 24 --temp 0 --verbose
echo

step "Embedding a sentence (first values of the L2-normalised mean hidden state)"
printf '$ %s\n' "$MRAG embed -m $model \"Where is the VPN guide?\""
"$MRAG" embed -m "$model" "Where is the VPN guide?" | cut -c1-120
echo "..."
exit 0
