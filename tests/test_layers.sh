#!/bin/sh
# test_layers.sh — tests/check_layers.sh (what `make check-layers` runs):
# the real tree passes; a tree with an upward include, a sideways include,
# another layer's internal header, a "../" include, or a library exporting
# an unprefixed symbol fails with each one named. Prints ok/FAIL lines like
# the C tests (tests/run.sh adds them up).
BUILD=${BUILD:-build}
T=test_layers
ok() { echo "ok   $T/$1"; }
fail() { echo "FAIL $T/$1 ($2)"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrag-layers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

out=$(sh tests/check_layers.sh . "$BUILD" 2>&1)
if [ $? -eq 0 ]; then ok the_tree_keeps_its_layers; else fail the_tree_keeps_its_layers "$out"; fi

# a small tree that keeps the rules
mk() { mkdir -p "$(dirname "$tmp/$1")"; printf '%s\n' "$2" > "$tmp/$1"; }
mk llm/llm.h '/* public */'
mk llm/model.h '#include "llm/llm.h"'
mk index/index.h '/* public */'
mk index/idx_internal.h '#include "index/index.h"'
mk rag/rag.h '#include "llm/llm.h"'
mk rag/guard_internal.h '#include "rag/rag.h"'
mk rag/answer.c '#include "rag/rag.h"
#include "rag/guard_internal.h"
#include "index/index.h"
#include <stdio.h>'
mk app/main.c '#include "rag/rag.h"
#include "llm/llm.h"
#include <cJSON.h>'
out=$(sh tests/check_layers.sh "$tmp" "$tmp/build" 2>&1)
if [ $? -eq 0 ]; then ok a_clean_tree_passes; else fail a_clean_tree_passes "$out"; fi

# each kind of violation, each named with its file and line
mk llm/forward.c '#include "llm/model.h"
#include "rag/rag.h"'
mk index/store.c '#include "llm/llm.h"'
mk rag/retrieve.c '#include "app/app.h"'
mk rag/ingest.c '#include "index/idx_internal.h"'
mk app/cmd.c '#include "rag/guard_internal.h"
#include "llm/model.h"'
mk rag/walk.c '#include "../app/app.h"'
out=$(sh tests/check_layers.sh "$tmp" "$tmp/build" 2>&1)
rc=$?
want="llm/forward.c:2 includes rag/rag.h
index/store.c:1 includes llm/llm.h
rag/retrieve.c:1 includes app/app.h
rag/ingest.c:1 includes index/idx_internal.h
app/cmd.c:1 includes rag/guard_internal.h
app/cmd.c:2 includes llm/model.h
rag/walk.c:1 includes ../app/app.h"
missing=
while IFS= read -r w; do
  printf '%s\n' "$out" | grep -qF "$w" || missing="$missing [$w]"
done <<EOF
$want
EOF
n=$(printf '%s\n' "$out" | grep -c '^check-layers: .*includes')
if [ $rc -ne 0 ] && [ -z "$missing" ] && [ "$n" -eq 7 ]; then ok upward_sideways_and_internal_includes_fail
else fail upward_sideways_and_internal_includes_fail "rc $rc, $n reported, missing:$missing: $out"; fi

# a library exporting a name without the module prefix
rm -f "$tmp/llm/forward.c" "$tmp/index/store.c" "$tmp/rag/retrieve.c" "$tmp/rag/ingest.c" "$tmp/app/cmd.c" "$tmp/rag/walk.c"
mkdir -p "$tmp/build"
printf 'int llm_ok(void) { return 1; }\nint ggml_row_size(void) { return 2; }\nstatic int hidden(void) { return 3; }\nint llm_uses(void) { return hidden(); }\n' > "$tmp/s.c"
if ${CC:-cc} -c "$tmp/s.c" -o "$tmp/s.o" 2>/dev/null && ar rcs "$tmp/build/libllm.a" "$tmp/s.o"; then
  out=$(sh tests/check_layers.sh "$tmp" "$tmp/build" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q 'libllm.a exports ggml_row_size' &&
     ! printf '%s\n' "$out" | grep -q 'llm_ok\|hidden'; then ok unprefixed_exported_symbols_fail
  else fail unprefixed_exported_symbols_fail "rc $rc: $out"; fi
else
  fail unprefixed_exported_symbols_fail "cannot compile a test library"
fi
