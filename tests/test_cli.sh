#!/bin/sh
# test_cli.sh — the command lines of every mrag command (the list comes
# from `mrag --help`, so a new command is covered the day it lands): an
# unknown option, a missing value and (where the command has one) a bad
# number are usage errors that exit 2 and name the option; options stand
# after the operands, --name=value works, `--` ends the options; --version.
# Prints ok/FAIL lines like the C tests (tests/run.sh adds them up).
BUILD=${BUILD:-build}
T=test_cli
ok() { echo "ok   $T/$1"; }
fail() { echo "FAIL $T/$1 ($2)"; }
mrag=$(pwd)/$BUILD/mrag
[ -x "$mrag" ] || { echo "skip $T/all: $mrag is missing (run make)"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrag-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset MRAG_MODEL MRAG_INDEX MRAG_DATA_DIR
cd "$tmp" || exit 1

cmds=$("$mrag" --help | sed -n '/^commands:/,/^$/p' | awk 'NF && !/^commands:/ {print $1}')
[ "$(printf '%s\n' "$cmds" | wc -l)" -ge 15 ] && ok help_lists_the_commands || fail help_lists_the_commands "$cmds"

# an unknown option, before or after an operand: exit 2, named
for c in $cmds; do
  out=$("$mrag" "$c" some-operand --no-such-option 2>&1 < /dev/null); rc=$?
  if [ $rc -eq 2 ] && printf '%s' "$out" | grep -q "^mrag $c: unknown option '--no-such-option' (see \`mrag $c --help\`)"; then
    ok "unknown_option_exits_2/$c"
  else
    fail "unknown_option_exits_2/$c" "rc $rc: $out"
  fi
  out=$("$mrag" "$c" --help 2>&1); rc=$?
  if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "^usage: mrag $c"; then ok "help_exits_0/$c"; else fail "help_exits_0/$c" "rc $rc"; fi
done

# a missing value and a bad value, per command, on an option it has
check2() {   # name, expected message part, command line...
  name=$1; want=$2; shift 2
  out=$("$mrag" "$@" 2>&1 < /dev/null); rc=$?
  if [ $rc -eq 2 ] && printf '%s' "$out" | grep -qF -- "$want"; then ok "$name"; else fail "$name" "rc $rc: $out"; fi
}
check2 bad_value_exits_2/ingest "--chunk-tokens: 'banana' is not a whole number from 16 to 8192" ingest docs --chunk-tokens banana
check2 bad_value_exits_2/ingest-wiki "--rate: 'x' is not a number from 0 to 1000" ingest-wiki http://127.0.0.1:1/api.php --rate x
check2 bad_value_exits_2/ask "--max-tokens: 'x' is not a whole number from 1 to 1048576" ask "VPN port?" --json --max-tokens x
check2 bad_value_exits_2/chat "--quarantine: 'maybe' is not one of drop or keep" chat --quarantine maybe
check2 bad_value_exits_2/search "--mode: 'fuzzy' is not one of dense, bm25 or hybrid" search VPN --mode fuzzy
check2 bad_value_exits_2/serve "--slots: '0' is not a whole number from 1 to 64" serve --slots 0
check2 bad_listen_exits_2/serve "--listen: 'nowhere' is not HOST:PORT" serve --listen nowhere
check2 bad_value_exits_2/guard-check "--stage: 'sideways' is not one of input, context or output" guard-check x --stage=sideways
check2 bad_value_exits_2/guard-eval "--list: '-1' is not a whole number from 0 to 1000000000" guard-eval f.jsonl --list -1
check2 bad_value_exits_2/guard-train "--bits: '40' is not a whole number from 12 to 22" guard-train -o m f.jsonl --bits 40
check2 bad_value_exits_2/eval-retrieval "--layers: 'top' is not a layer number or 'final'" eval-retrieval --squad f --layers top
check2 bad_value_exits_2/eval-retrieval-misses "--misses: 'best' is not dense, bm25 or hybrid" eval-retrieval --squad f --misses best
check2 bad_value_exits_2/eval-answers "-k: '0' is not a whole number from 1 to 100" eval-answers --squad f -k 0
check2 bad_value_exits_2/check "unexpected argument 'extra'" check extra
check2 bad_value_exits_2/tune "--queries: '5' is not a whole number from 10 to 100000" tune --queries 5
check2 bad_value_exits_2/generate "-n: 'lots' is not a whole number from -1 to 1073741824" generate -m x -p hi -n lots
check2 bad_value_exits_2/embed "--layer: 'x' is not a whole number from 0 to 100000" embed -m x --layer x hi
check2 missing_value_exits_2/tokenize "-m needs a value: FILE" tokenize hello -m
check2 missing_value_exits_2/model-info "--model needs a value: FILE" model-info --model
check2 missing_operand_exits_2/ask "no QUESTION" ask --json
check2 missing_operand_exits_2/search "no QUERY" search -k 3
check2 missing_operand_exits_2/ingest "no DIR to ingest" ingest -q
check2 flag_with_value_exits_2/search "--json takes no value" search VPN --json=yes
check2 abbreviation_exits_2/ask "unknown option '--max'" ask q --max 4
check2 two_folders_exit_2/ingest "one folder at a time" ingest a b
# a missing required option is a usage error too (MRAG_MODEL is unset above)
mkdir -p somedocs
check2 missing_model_exits_2/ingest "mrag ingest: no model: give -m FILE or set MRAG_MODEL" ingest somedocs
check2 missing_model_exits_2/ingest-wiki "mrag ingest-wiki: no model: give -m FILE or set MRAG_MODEL" \
  ingest-wiki http://127.0.0.1:1/w/api.php --index nomodel-idx
[ ! -e nomodel-idx ] && ok missing_model_creates_nothing || fail missing_model_creates_nothing "$(ls -d nomodel-idx)"

# every option of every command's table (what completion is made from) is
# described by its --help (what the man page is made from)
tab=$(printf '\t')
missing=
"$mrag" --dump-options > opts.txt
while IFS="$tab" read -r c l s a; do
  [ "$l" = --help ] && continue
  h=$("$mrag" "$c" --help)
  if [ "$l" != - ] && printf '%s' "$h" | grep -qF -- "$l"; then continue; fi
  if [ "$s" != - ] && printf '%s' "$h" | grep -qE -- "(^|[ ,\[])$s( |,|\]|\$)"; then continue; fi
  missing="$missing $c:$l/$s"
done < opts.txt
[ "$(wc -l < opts.txt)" -gt 100 ] || missing="$missing (only $(wc -l < opts.txt) options dumped)"
if [ -z "$missing" ]; then ok help_describes_every_option; else fail help_describes_every_option "$missing"; fi
"$mrag" --version > /dev/null 2>&1 && ok version_exits_0 || fail version_exits_0 "rc $?"
out=$("$mrag" --version 2>&1)
if printf '%s' "$out" | grep -q '^mrag [0-9]' && printf '%s' "$out" | grep -q '^built with ' &&
   printf '%s' "$out" | grep -q '^build flags: .*-O' && printf '%s' "$out" | grep -q '^SIMD: this CPU offers \(ref\|avx2\|avx512\); the kernels use '; then
  ok version_says_version_build_simd
else
  fail version_says_version_build_simd "$out"
fi
out=$(MRAG_SIMD=ref "$mrag" --version 2>&1)
printf '%s' "$out" | grep -q 'the kernels use ref (capped by MRAG_SIMD)' && ok version_shows_simd_cap || fail version_shows_simd_cap "$out"
check2 version_takes_no_arguments "--version takes no arguments" --version extra

# options after the operands and --name=value really apply: a real index
if [ -x "$(dirname "$mrag")/mkmodel" ] && [ -d "$OLDPWD/data/sample" ]; then
  "$(dirname "$mrag")/mkmodel" --dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 7 --vocab-size 512 \
    --out m.gguf > /dev/null 2>&1
  cp -r "$OLDPWD/data/sample" docs
  "$mrag" ingest docs --index idx -m m.gguf --threads 1 -q > ingest.log 2>&1 || fail ingest "$(tail -3 ingest.log)"
  out=$("$mrag" search VPN port --index=idx -k 1 --mode bm25 2>&1); rc=$?
  n=$(printf '%s\n' "$out" | grep -c '^[0-9]*\. ')
  if [ $rc -eq 0 ] && [ "$n" = 1 ] && ! printf '%s' "$out" | grep -q '(dense '; then
    ok options_after_the_query_apply
  else
    fail options_after_the_query_apply "rc $rc n $n: $out"
  fi
  out=$("$mrag" search --index idx --mode=bm25 --json -- -k 2>&1); rc=$?
  if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q '^\['; then ok double_dash_makes_an_option_the_query; else fail double_dash_makes_an_option_the_query "rc $rc: $out"; fi
  out=$("$mrag" ask "VPN port?" --index idx -m m.gguf --threads 1 --json --max-tokens 2 2>/dev/null); rc=$?
  if [ $rc -eq 0 ] && printf '%s' "$out" | head -c 1 | grep -q '{' && printf '%s' "$out" | grep -q '"answer"'; then
    ok ask_json_after_the_question
  else
    fail ask_json_after_the_question "rc $rc: $(printf '%s' "$out" | head -c 300)"
  fi
else
  echo "skip $T/options_after_the_query_apply: mkmodel or data/sample missing"
fi

# ingest's messages: a failure's reason without the path repeated, "1 chunk",
# a PDF without a text layer named in the summary, -q with only the summary
# and the failures new since the last run
# (tests/data/no-text-layer.pdf: one page with a filled rectangle, no text)
if [ -f m.gguf ]; then
  mkdir -p msgs
  cp "$OLDPWD/tests/data/no-text-layer.pdf" msgs/scan.pdf
  printf 'not a pdf' > msgs/broken.pdf
  printf 'x' > msgs/one.txt
  out=$("$mrag" ingest msgs --index midx -m m.gguf --threads 1 2>&1)
  printf '%s\n' "$out" | grep -qx 'failed    msgs/broken.pdf: not a PDF (no %PDF- header)' &&
    printf '%s\n' "$out" | grep -qx '  msgs/broken.pdf: not a PDF (no %PDF- header)' && ok failure_reason_names_the_file_once ||
    fail failure_reason_names_the_file_once "$out"
  printf '%s\n' "$out" | grep -qx 'added     msgs/one.txt (1 chunk)' && ok one_chunk_is_singular || fail one_chunk_is_singular "$out"
  printf '%s\n' "$out" | grep -qx '3 files found' && ok files_found_counts_the_files || fail files_found_counts_the_files "$out"
  printf '%s\n' "$out" | grep -qx '  msgs/scan.pdf: no text layer (scanned?)' && ok scanned_pdf_named_in_summary || fail scanned_pdf_named_in_summary "$out"
  out=$("$mrag" ingest msgs --index midx -m m.gguf --threads 1 -q 2>&1)
  want='done: 0 added, 0 updated, 0 renamed, 0 removed, 2 unchanged, 0 skipped, 1 failed
1 earlier failure unchanged (run without -q to list them)'
  [ "$out" = "$want" ] && ok quiet_rerun_prints_only_the_summary || fail quiet_rerun_prints_only_the_summary "$out"
  printf 'also not a pdf' > msgs/new.pdf
  out=$("$mrag" ingest msgs --index midx -m m.gguf --threads 1 -q 2>&1)
  want='done: 0 added, 0 updated, 0 renamed, 0 removed, 2 unchanged, 0 skipped, 2 failed
failed (new since the last run):
  msgs/new.pdf: not a PDF (no %PDF- header)
1 earlier failure unchanged (run without -q to list them)'
  [ "$out" = "$want" ] && ok quiet_prints_new_failures || fail quiet_prints_new_failures "$out"
fi

# mail end to end: a mailbox's message is cited as #msg=N
if [ -f m.gguf ]; then
  mkdir -p mail
  printf 'From a@x Mon Dec  7 09:00:00 2026\nFrom: a@x\nSubject: Printer\n\nThe printer is out of toner.\n\nFrom b@x Mon Dec  7 09:00:00 2026\nFrom: b@x\nSubject: Gateway\n\nThe gateway port is 1194.\n' > mail/list.mbox
  printf 'From: c@x\nSubject: Lunch\n\nThe canteen is closed today.\n' > mail/lunch.eml
  "$mrag" ingest mail --index mailidx -m m.gguf --threads 1 -q > mail.log 2>&1 || fail mail_ingest "$(cat mail.log)"
  out=$("$mrag" search gateway port --index mailidx --mode bm25 -k 1 2>&1)
  printf '%s' "$out" | grep -q '^1\. mail/list.mbox#msg=2 ' && ok mail_search_cites_the_message || fail mail_search_cites_the_message "$out"
fi

# a command that fails before doing work creates nothing
"$mrag" ingest nonexist --index fresh-a -m m.gguf > /dev/null 2>&1; rc=$?
if [ $rc -eq 1 ] && [ ! -e fresh-a ]; then ok failed_ingest_leaves_no_index; else fail failed_ingest_leaves_no_index "rc $rc, $(ls -d fresh-a 2>&1)"; fi
if [ -f m.gguf ]; then
  out=$("$mrag" ingest-wiki http://127.0.0.1:1/w/api.php --index fresh-b -m m.gguf --retries 1 --timeout 1 2>&1); rc=$?
  if [ $rc -eq 1 ] && [ ! -e fresh-b ]; then ok unreachable_wiki_leaves_no_index; else fail unreachable_wiki_leaves_no_index "rc $rc, $(ls fresh-b 2>&1)"; fi
  # one try is "1 attempt", not "1 attempts"
  if printf '%s' "$out" | grep -q 'giving up after 1 attempt: ' && ! printf '%s' "$out" | grep -q '1 attempts'; then
    ok one_attempt_is_singular
  else
    fail one_attempt_is_singular "$out"
  fi
fi
