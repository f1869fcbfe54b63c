#!/bin/sh
# llama_bench_build.sh — `make llama-bench`: builds llama.cpp's own llama-bench
# and llama-quantize natively from the source bundle that the oracle's npm
# package (node-llama-cpp) carries, into build/llama.cpp/. Nothing of llama.cpp
# is committed here; the build is cached and only redone when the bundle
# changes. Prints the two binaries' paths on success.
set -e
BUNDLE=${LLAMA_BUNDLE:-tests/oracle/node_modules/node-llama-cpp/llama/gitRelease.bundle}
DIR=${LLAMA_DIR:-build/llama.cpp}
JOBS=${LLAMA_JOBS:-$(nproc)}

if [ ! -s "$BUNDLE" ]; then
  echo "llama-bench: the llama.cpp source bundle $BUNDLE is missing." >&2
  echo "llama-bench: run 'make oracle' (or 'make test') first: it installs node-llama-cpp, which carries it." >&2
  exit 1
fi
for tool in git cmake c++; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "llama-bench: '$tool' is not installed (make deps installs it)" >&2
    exit 1
  fi
done

# The bundle's checksum names the build: a new oracle version rebuilds.
sum=$(sha256sum "$BUNDLE" | cut -c1-16)
stamp="$DIR/.mrag-bundle"
if [ -x "$DIR/b/bin/llama-bench" ] && [ -x "$DIR/b/bin/llama-quantize" ] && \
   [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
  echo "$DIR/b/bin/llama-bench"
  echo "$DIR/b/bin/llama-quantize"
  exit 0
fi

if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  rm -rf "$DIR"
fi
if [ ! -d "$DIR/src/.git" ]; then
  mkdir -p "$DIR"
  echo "llama-bench: cloning $BUNDLE into $DIR/src" >&2
  rm -rf "$DIR/src"
  git -c advice.detachedHead=false clone --quiet "$BUNDLE" "$DIR/src"
fi
echo "llama-bench: configuring (GGML_NATIVE=ON) in $DIR/b" >&2
cmake -S "$DIR/src" -B "$DIR/b" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF >"$DIR/cmake.log" 2>&1 || {
  echo "llama-bench: cmake failed; see $DIR/cmake.log" >&2; exit 1; }
echo "llama-bench: building llama-bench and llama-quantize with $JOBS jobs (about 10 minutes on 2 cores; log: $DIR/build.log)" >&2
cmake --build "$DIR/b" -j "$JOBS" --target llama-bench llama-quantize >"$DIR/build.log" 2>&1 || {
  echo "llama-bench: build failed; see $DIR/build.log" >&2; tail -20 "$DIR/build.log" >&2; exit 1; }
echo "$sum" >"$stamp"
echo "$DIR/b/bin/llama-bench"
echo "$DIR/b/bin/llama-quantize"
