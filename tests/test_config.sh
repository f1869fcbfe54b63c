#!/bin/sh
# test_config.sh — the configuration files: [mrag] and [COMMAND] settings
# become options of the command; precedence command line > environment >
# user file > system file > built-in, seen both in `mrag config` and in what
# a command does; --config FILE and $MRAG_CONFIG read only that file; an
# unknown key, section or flag value is an error naming the file (exit 2).
# Prints ok/FAIL lines like the C tests (tests/run.sh adds them up).
BUILD=${BUILD:-build}
T=test_config
ok() { echo "ok   $T/$1"; }
fail() { echo "FAIL $T/$1 ($2)"; }
mrag=$(pwd)/$BUILD/mrag
[ -x "$mrag" ] || { echo "skip $T/all: $mrag is missing (run make)"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrag-config.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset MRAG_MODEL MRAG_INDEX MRAG_DATA_DIR MRAG_CONFIG MRAG_PREAMBLE
export XDG_CONFIG_HOME="$tmp/xdg" MRAG_SYSTEM_CONFIG="$tmp/system.conf"
mkdir -p "$tmp/xdg/mrag"
cd "$tmp" || exit 1
expect() {   # name, text wanted in output, command...
  name=$1; want=$2; shift 2
  out=$("$@" 2>&1)
  if printf '%s' "$out" | grep -qF -- "$want"; then ok "$name"; else fail "$name" "want [$want] got: $out"; fi
}

# no files: built-in
expect builtin_index "index                        ./.mrag" "$mrag" config
expect no_files_listed "(none)" "$mrag" config

cat > system.conf <<CONF
# the administrator's defaults
[mrag]
index = $tmp/sys-idx
k = 3
threads = 2
[search]
mode = bm25
CONF
expect system_file_index "$tmp/sys-idx" "$mrag" config
expect system_file_applies "no index at $tmp/sys-idx" "$mrag" search VPN
expect system_section_setting "mode                         bm25" "$mrag" config search
expect short_option_key "k                            3" "$mrag" config search

printf '[mrag]\nindex = %s/user-idx\n' "$tmp" > xdg/mrag/mrag.conf
expect user_beats_system "index                        $tmp/user-idx" "$mrag" config
expect user_beats_system_in_use "no index at $tmp/user-idx" "$mrag" search VPN
expect env_beats_user "(environment MRAG_INDEX)" env MRAG_INDEX="$tmp/env-idx" "$mrag" config
expect env_beats_user_in_use "no index at $tmp/env-idx" env MRAG_INDEX="$tmp/env-idx" "$mrag" search VPN
expect cli_beats_env "no index at $tmp/cli-idx" env MRAG_INDEX="$tmp/env-idx" "$mrag" search VPN --index "$tmp/cli-idx"
# --index may be repeated (several indexes): the files' settings still give
# one, and the command line's replaces it instead of adding to it
expect cli_beats_files "no index at $tmp/cli-idx" "$mrag" search VPN --index "$tmp/cli-idx"
out=$("$mrag" search VPN --index="$tmp/cli-idx" 2>&1)
printf '%s' "$out" | grep -q "sys-idx\|user-idx" && fail cli_index_replaces_the_files "$out" || ok cli_index_replaces_the_files

# --config FILE / MRAG_CONFIG: only that file
printf '[search]\nindex = %s/own-idx\n' "$tmp" > own.conf
expect config_option_reads_only_it "no index at $tmp/own-idx" "$mrag" search VPN --config "$tmp/own.conf"
expect config_option_anywhere "no index at $tmp/own-idx" "$mrag" --config="$tmp/own.conf" search VPN
expect MRAG_CONFIG_reads_only_it "$tmp/own.conf" env MRAG_CONFIG="$tmp/own.conf" "$mrag" config
out=$(env MRAG_CONFIG="$tmp/own.conf" "$mrag" config 2>&1)
printf '%s' "$out" | grep -q system.conf && fail MRAG_CONFIG_skips_the_others "$out" || ok MRAG_CONFIG_skips_the_others

# mistakes: exit 2 naming the file and the key
printf '[search]\nbogus = 1\n' > bad1.conf
out=$("$mrag" --config bad1.conf search x 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$out" | grep -q "bad1.conf: \[search\] bogus: not an option of \`mrag search\`" && ok unknown_key_exits_2 || fail unknown_key_exits_2 "rc $rc: $out"
printf '[serach]\nk = 1\n' > bad2.conf
out=$("$mrag" --config bad2.conf search x 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$out" | grep -q "bad2.conf: \[serach\]: not a command" && ok unknown_section_exits_2 || fail unknown_section_exits_2 "rc $rc: $out"
printf '[search]\njson = maybe\n' > bad3.conf
out=$("$mrag" --config bad3.conf search x 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$out" | grep -q "json: 'maybe' is not true or false" && ok bad_flag_value_exits_2 || fail bad_flag_value_exits_2 "rc $rc: $out"
# a bad value names the file, its line, the group and the key (exit 2)
printf '[mrag]\n# the defaults\nk = abc\n' > bad5.conf
out=$("$mrag" --config bad5.conf search x 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$out" | grep -qF "mrag search: configuration bad5.conf line 3, [mrag] k: -k: 'abc' is not a whole number" &&
  ok bad_value_names_file_and_line || fail bad_value_names_file_and_line "rc $rc: $out"
printf '[mrag]\nk = 2\n\n[search]\n  mode  = fuzzy\n' > bad6.conf
out=$("$mrag" --config "$tmp/bad6.conf" search x 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$out" | grep -qF "configuration $tmp/bad6.conf line 5, [search] mode: --mode: 'fuzzy' is not one of dense, bm25 or hybrid" &&
  ok bad_choice_names_file_and_line || fail bad_choice_names_file_and_line "rc $rc: $out"
# the same mistake on the command line names no file
printf '[search]\nmode = bm25\n' > good.conf
out=$("$mrag" --config "$tmp/good.conf" search x --mode fuzzy 2>&1)
printf '%s' "$out" | grep -q "^mrag search: --mode: 'fuzzy'" && ok command_line_value_names_no_file || fail command_line_value_names_no_file "$out"
printf 'no section\n' > bad4.conf
out=$("$mrag" --config bad4.conf search x 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$out" | grep -q "bad4.conf" && ok unparsable_file_exits_2 || fail unparsable_file_exits_2 "rc $rc: $out"
out=$("$mrag" --config "$tmp/missing.conf" search x 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$out" | grep -q "missing.conf: No such file" && ok missing_config_file_exits_2 || fail missing_config_file_exits_2 "rc $rc: $out"

# a flag and a setting really reach the command: search --json from the
# file on a real index (bm25: no model needed for the query)
if [ -x "$(dirname "$mrag")/mkmodel" ] && [ -d "$OLDPWD/data/sample" ]; then
  "$(dirname "$mrag")/mkmodel" --dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 7 --vocab-size 512 \
    --out m.gguf > /dev/null 2>&1
  "$mrag" ingest "$OLDPWD/data/sample" --index "$tmp/idx" -m m.gguf --threads 1 -q > /dev/null 2>&1
  printf '[mrag]\nindex = %s/idx\nk = 2\n[search]\njson = true\nmode = bm25\n' "$tmp" > real.conf
  out=$("$mrag" --config real.conf search VPN 2>&1)
  n=$(printf '%s' "$out" | grep -o '"rank"' | wc -l)
  if printf '%s' "$out" | head -c 1 | grep -q '\[' && [ "$n" = 2 ]; then ok settings_reach_the_command; else fail settings_reach_the_command "$out"; fi
  out=$("$mrag" --config real.conf search VPN -k 1 2>&1)
  n=$(printf '%s' "$out" | grep -o '"rank"' | wc -l)
  [ "$n" = 1 ] && ok command_line_beats_the_file || fail command_line_beats_the_file "$out"
else
  echo "skip $T/settings_reach_the_command: mkmodel or data/sample missing"
fi
