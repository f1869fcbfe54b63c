#!/bin/sh
# test_man.sh — the manual page and the completion scripts the build makes:
# `man -l` renders mrag(1) with every command's section and its options (the
# page is made from the --help texts, so a drift would be a change of
# --help); bash completion offers the commands, each command's options and
# the choices of an option; the zsh script parses (when zsh is installed).
# Prints ok/FAIL lines like the C tests (tests/run.sh adds them up).
BUILD=${BUILD:-build}
T=test_man
ok() { echo "ok   $T/$1"; }
fail() { echo "FAIL $T/$1 ($2)"; }
mrag=$BUILD/mrag
page=$BUILD/man/mrag.1
for f in "$mrag" "$page" "$BUILD/completion/mrag" "$BUILD/completion/_mrag"; do
  [ -e "$f" ] || { echo "skip $T/all: $f is missing (run make)"; exit 0; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrag-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# the page in the tree is the one the current program makes
sh dist/mkman.sh "$mrag" "$(sed -n 's/^VERSION := //p' Makefile)" > "$tmp/now.1"
cmp -s "$tmp/now.1" "$page" && ok page_is_current || fail page_is_current "$(diff "$tmp/now.1" "$page" | head -5)"

if ! command -v man > /dev/null; then
  echo "skip $T/man_renders: man is not installed"
else
  MANWIDTH=100 man -l "$page" > "$tmp/page.txt" 2> "$tmp/man.err"; rc=$?
  if [ $rc -eq 0 ] && [ ! -s "$tmp/man.err" ] && grep -q '^NAME' "$tmp/page.txt" && grep -q '^EXIT STATUS' "$tmp/page.txt"; then
    ok man_renders
  else
    fail man_renders "rc $rc: $(head -3 "$tmp/man.err")"
  fi
  missing=
  for c in $("$mrag" --help | sed -n '/^commands:/,/^$/p' | awk 'NF && !/^commands:/ {print $1}'); do
    grep -q "^   $c\$" "$tmp/page.txt" || missing="$missing section:$c"
    grep -q "usage: mrag $c" "$tmp/page.txt" || missing="$missing usage:$c"
  done
  grep -q -- '--mode M        dense | bm25 | hybrid' "$tmp/page.txt" || missing="$missing search--mode"
  grep -q -- 'mrag config \[COMMAND\]' "$tmp/page.txt" || missing="$missing config"
  if [ -z "$missing" ]; then ok page_has_every_command_and_its_help; else fail page_has_every_command_and_its_help "$missing"; fi
fi

out=$(bash -c '. "$1"; comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); COMPREPLY=(); _mrag; echo "${COMPREPLY[*]}"; }
  comp mrag se; comp mrag search --mode ""; comp mrag search --mo; comp mrag ask --quarantine k; comp mrag guard-check --st' \
  sh "$BUILD/completion/mrag" 2>&1)
want='search serve
dense bm25 hybrid
--model --mode
keep
--stage'
if [ "$out" = "$want" ]; then ok bash_completes_commands_options_choices; else fail bash_completes_commands_options_choices "$out"; fi
n_opts=$("$mrag" --dump-options | grep -c "^serve	")
n_comp=$(bash -c '. "$1"; COMP_WORDS=(mrag serve --); COMP_CWORD=2; _mrag; echo "${#COMPREPLY[@]}"' sh "$BUILD/completion/mrag")
[ "$n_comp" -ge "$n_opts" ] && ok bash_offers_every_option || fail bash_offers_every_option "$n_comp < $n_opts"

if command -v zsh > /dev/null; then
  zsh -n "$BUILD/completion/_mrag" && ok zsh_script_parses || fail zsh_script_parses "zsh -n failed"
else
  echo "skip $T/zsh_script_parses: zsh is not installed"
fi
