#!/bin/sh
# check_layers.sh — the layering rules of mrag (docs/architecture.md), checked
# on the source tree and the built libraries:
#
#   app -> rag -> {llm, index}; never upward, never sideways.
#   llm/    includes only llm/ headers           (and libc)
#   index/  includes only index/ headers
#   rag/    includes rag/, llm/llm.h, index/index.h
#   app/    includes app/, rag/'s public headers (not *_internal.h),
#           llm/llm.h, index/index.h
#   no "../" includes anywhere in those folders;
#   libllm.a, libindex.a, librag.a export only llm_*, idx_*, rag_* symbols.
#
# usage: check_layers.sh [ROOT [BUILD]]   (ROOT default ., BUILD default
# $BUILD or build; the symbol check is skipped for libraries not built).
# Prints one line per violation (file:line and the rule) and exits 1, or
# "check-layers: ok (N files, M libraries)" and exits 0.
ROOT=${1:-.}
BUILD_DIR=${2:-${BUILD:-build}}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
bad=0
nfiles=0

# allowed LAYER PATH: true when a file of LAYER may include PATH
allowed() {
  case $1:$2 in
    llm:llm/*) return 0 ;;
    index:index/*) return 0 ;;
    rag:rag/*|rag:llm/llm.h|rag:index/index.h) return 0 ;;
    app:rag/*_internal.h) return 1 ;;
    app:app/*|app:rag/*.h|app:llm/llm.h|app:index/index.h) return 0 ;;
  esac
  return 1
}

rule() {
  case $1 in
    llm) echo "llm/ includes only llm/ headers" ;;
    index) echo "index/ includes only index/ headers" ;;
    rag) echo "rag/ includes rag/, llm/llm.h and index/index.h" ;;
    app) echo "app/ includes app/, rag/'s public headers, llm/llm.h and index/index.h" ;;
  esac
}

for layer in llm index rag app; do
  [ -d "$ROOT/$layer" ] || continue
  for f in "$ROOT/$layer"/*.c "$ROOT/$layer"/*.h; do
    [ -f "$f" ] || continue
    nfiles=$((nfiles + 1))
    rel=${f#"$ROOT"/}
    # every #include of a project path: "x/..." or <x/...> with x a layer, and any ../
    out=$(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' "$f" |
      sed -n 's/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*["<]\([^">]*\)[">].*/\1 \2/p')
    [ -n "$out" ] || continue
    while read -r line path; do
      case $path in
        ../*|*/../*)
          echo "check-layers: $rel:$line includes $path: no \"../\" includes (name the header from the top of the tree)"
          bad=$((bad + 1)); continue ;;
        llm/*|index/*|rag/*|app/*|tests/*) ;;
        *) continue ;;
      esac
      if ! allowed "$layer" "$path"; then
        echo "check-layers: $rel:$line includes $path: $(rule "$layer")"
        bad=$((bad + 1))
      fi
    done <<EOF
$out
EOF
  done
done

# exported symbols of the libraries: the module prefix, nothing that could
# clash with another library linked beside them (e.g. the real ggml's)
nlibs=0
for pair in llm:llm_ index:idx_ rag:rag_; do
  lib=${pair%%:*}
  prefix=${pair#*:}
  a=$BUILD_DIR/lib$lib.a
  [ -f "$a" ] || continue
  nlibs=$((nlibs + 1))
  # the sanitizers add their own globals (__odr_asan.NAME, __asan_*,
  # __ubsan_*) beside the library's: those are the compiler's, not ours
  syms=$(nm -g --defined-only "$a" 2>/dev/null | awk 'NF == 3 { print $3 }' | grep -v "^$prefix" |
         grep -v -E '^__(odr_asan|asan|ubsan|sanitizer)' | sort -u)
  for s in $syms; do
    echo "check-layers: lib$lib.a exports $s: exported symbols of lib$lib.a start with $prefix (make it static or prefix it)"
    bad=$((bad + 1))
  done
done

if [ "$bad" -gt 0 ]; then
  echo "check-layers: $bad violation(s) of the layering (docs/architecture.md)"
  exit 1
fi
echo "check-layers: ok ($nfiles files, $nlibs libraries)"
