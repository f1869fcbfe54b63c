#!/bin/sh
# install-deps.sh — install mrag's Debian 12 packages and build FAISS's C API
# (libfaiss_c.a) from Debian's own faiss source package into the build folder.
#
# Idempotent: when everything is present a run only asks dpkg and compares a
# stamp (well under a second). Called by `make deps`.
#
#   PREFIX   where libfaiss_c.a goes (default: build/deps in the repo)
#   JOBS     parallel compile jobs (default: nproc)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-$ROOT/build/deps}
JOBS=${JOBS:-$(nproc)}
export DEBIAN_FRONTEND=noninteractive

# libopenblas-openmp-dev comes first so that apt does not pick the pthread
# variant: OpenBLAS's own threads would fight FAISS's OpenMP threads.
# mediawiki + php-sqlite3 + php-cli: the throw-away wiki of the wiki tests
# (tests/wiki_env.sh); php-cgi + lighttpd satisfy mediawiki's web-server
# dependency without apache2 (--no-install-recommends). chromium drives the
# web page test, wrk the HTTP benchmark, zsh the check of the zsh completion. cmake and git build llama.cpp's
# llama-bench from the oracle's source bundle (make llama-bench).
PKGS="
  gcc g++ make pkg-config dpkg-dev clang cmake git
  libopenblas-openmp-dev libfaiss-dev
  libsqlite3-dev libcurl4-openssl-dev libpcre2-dev libutf8proc-dev
  libstemmer-dev hunspell-de-de openthesaurus-de-text libexttextcat-dev
  libmicrohttpd-dev libcjson-dev libedit-dev
  libpoppler-glib-dev libxml2-dev libzip-dev zlib1g-dev libgmime-3.0-dev
  libtesseract-dev tesseract-ocr-eng tesseract-ocr-deu
  poppler-utils
  mediawiki php-sqlite3 php-cli php-cgi lighttpd
  chromium wrk
  zsh
"

# `install-deps.sh guard`: only what `make guard-model` needs to rebuild the
# learned injection detector (tests/guard/corpus.py): Python and the Debian
# packages of German and English prose it reads. `make test` never needs
# them (the trained models are committed).
GUARD_PKGS="
  python3 debian-reference-de debian-faq-de maint-guide-de manpages-de
  debian-reference-en debian-faq maint-guide manpages
"
if [ "${1:-}" = guard ]; then PKGS=$GUARD_PKGS; fi

T0=$(date +%s)
log() { printf '[deps +%ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
APT="$SUDO apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
apt_update() {
  n=0
  until $APT -q update; do
    n=$((n + 1)); [ $n -ge 10 ] && { log "apt-get update keeps failing"; exit 1; }
    log "apt-get update failed (lock?), retry $n in 10s"; sleep 10
  done
}

# ------------------------------------------------------------ 1. packages
# One dpkg-query call for all packages keeps a no-op run fast.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PKGS 2>/dev/null |
            awk '$2 == "installed" { print $1 }')
missing=""
for p in $PKGS; do
  echo "$installed" | grep -qx "$p" || missing="$missing $p"
done
# Node.js and npm drive the llama.cpp test oracle. A machine may already have
# a Node.js with its own npm (not from Debian); only install when absent.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm  >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  log "installing:$missing"
  apt_update
  # shellcheck disable=SC2086
  $APT install -y --no-install-recommends $missing
else
  log "all packages already installed"
fi

if [ "${1:-}" = guard ]; then exit 0; fi

# ------------------------------------------- 2. OpenBLAS: the OpenMP build
# libblas.so.3 / liblapack.so.3 are alternatives; "auto" prefers the pthread
# build when both are installed, so pin the OpenMP one.
MA=$(gcc -print-multiarch)
for name in libblas.so.3 liblapack.so.3 libopenblas.so.0 libblas.so liblapack.so libopenblas.so; do
  target="/usr/lib/$MA/openblas-openmp/$name"
  alt="$name-$MA"
  [ -e "$target" ] || continue
  cur=$(readlink "/etc/alternatives/$alt" 2>/dev/null || true)
  if [ "$cur" != "$target" ]; then
    log "update-alternatives: $alt -> $target"
    $SUDO update-alternatives --set "$alt" "$target" >/dev/null
  fi
done

# ------------------------------------------ 3. FAISS C API (static library)
FAISS_BIN_VER=$(dpkg-query -W -f='${Version}' libfaiss-dev)
FAISS_SRC_VER=$(dpkg-query -W -f='${source:Version}' libfaiss-dev)
STAMP="$PREFIX/faiss_c.version"
if [ -f "$PREFIX/lib/libfaiss_c.a" ] && [ -f "$STAMP" ] &&
   [ "$(cat "$STAMP")" = "$FAISS_BIN_VER" ]; then
  log "FAISS C API for libfaiss-dev $FAISS_BIN_VER is built ($PREFIX/lib)"
  exit 0
fi

# `apt-get source` needs deb-src entries: derive them from the binary ones.
if ! grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
       /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding deb-src entries derived from the configured mirrors"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -E 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      $SUDO tee /etc/apt/sources.list.d/mrag-src.sources >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    sed -nE 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list |
      $SUDO tee /etc/apt/sources.list.d/mrag-src.list >/dev/null
  else
    log "cannot find an apt source to derive deb-src from"; exit 1
  fi
  apt_update
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mrag-faiss.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# apt's unprivileged downloader must be able to write here
if id _apt >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown _apt "$WORK"; fi
log "fetching Debian's faiss source $FAISS_SRC_VER"
# verified against the hashes of the signed Sources index
$APT source -q "faiss=$FAISS_SRC_VER" >apt-source.log 2>&1 ||
  { cat apt-source.log >&2; exit 1; }
SRC=$(find . -maxdepth 1 -type d -name 'faiss-*' | head -n1)
[ -d "$SRC/c_api" ] || { log "no c_api folder in $SRC"; exit 1; }

# Compile against the *installed* headers so the objects match libfaiss.a.
CXXFLAGS_C="-O2 -g0 -std=c++11 -fPIC -fopenmp -DNDEBUG"
mkdir -p obj
find "$SRC/c_api" -name '*.cpp' ! -path '*/gpu/*' | sort > sources.txt
log "compiling $(wc -l < sources.txt) c_api sources with $JOBS jobs"
# shellcheck disable=SC2016
xargs -P "$JOBS" -I{} sh -c '
  o="obj/$(echo "$1" | sed "s#.*/c_api/##; s#/#_#g; s#\.cpp\$#.o#")"
  g++ $2 -I/usr/include -c "$1" -o "$o" || { echo "FAILED: $1" >&2; exit 255; }
' _ {} "$CXXFLAGS_C" < sources.txt

mkdir -p "$PREFIX/lib"
ar rcs "$PREFIX/lib/libfaiss_c.a.tmp" obj/*.o
mv "$PREFIX/lib/libfaiss_c.a.tmp" "$PREFIX/lib/libfaiss_c.a"
echo "$FAISS_BIN_VER" > "$STAMP"
log "built $PREFIX/lib/libfaiss_c.a (faiss $FAISS_BIN_VER)"
