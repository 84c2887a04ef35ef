# kpool — build, test and run.
#
#   make up      install what is missing, build, run `kpool up` (the main job)
#   make test    install what is missing, build with ASan+UBSan, run every test
#   make build   build/kpool (optimised)
#   make bench   the benchmark suite (bench/peers.sh), not part of `make test`
#   make fuzz    longer libFuzzer runs (FUZZ_SECONDS each, default 300)
#   make soak    a soak test with chaos (SOAK_MINUTES, default 10), not part of `make test`;
#                SOAK_MODE=replicated: a replicated pool under a nemesis
#   make tls-stream  1 GiB through mutual TLS, every byte checked (issue 19; ~2 min)
#   make format  clang-format every C file
#
# Variants live side by side: build/ (release), build/asan/ (tests), build/fuzz/ (clang).

B        ?= build
CC       ?= cc
PKGS     := rdkafka openssl jansson libmicrohttpd zlib libzstd liblz4 yaml-0.1 sqlite3 libpcre2-8 libcurl avro-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lsnappy -lpthread -lm
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g $(WARN) -Isrc -I$(B)/gen $(PKG_CFLAGS) -MMD -MP
GEN_CFLAGS  := -std=gnu11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wno-unused-parameter -Isrc -I$(B)/gen $(PKG_CFLAGS) -MMD -MP

# VARIANT picks the flags, B the directory (so several builds can run side by side:
# `make VARIANT=asan B=build/mine unit-bins`).
ifeq ($(origin VARIANT),undefined)
  ifeq ($(B),build/asan)
    VARIANT := asan
  else ifeq ($(B),build/fuzz)
    VARIANT := fuzz
  else
    VARIANT := release
  endif
endif
ifeq ($(VARIANT),asan)
  OPT := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(VARIANT),fuzz)
  CC := clang
  OPT := -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DKP_FUZZING
else
  OPT := -O2
endif

DEFS     := $(sort $(wildcard src/protocol/defs/*.def))
LIB_SRCS := $(filter-out src/cli/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS := $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRCS)) $(B)/obj/gen/kp_msgs.o \
            $(B)/obj/gen/web_assets.o
# the web console (web/), compiled into the binary by tools/embed_web.py
WEB_FILES := $(sort $(shell find web -type f -not -name '.*' 2>/dev/null))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all build up test deps asan unit fuzz-build fuzz-smoke fuzz-verify fuzz integration bench format \
        format-check clean kpool-bin soak tls-stream

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@$(MAKE) --no-print-directory B=build kpool-bin

kpool-bin: $(B)/kpool

up: build
	./build/kpool up --data-dir ./kpool-data

$(B)/gen/kp_msgs.c $(B)/gen/kp_msgs.h: tools/kpgen.py $(DEFS)
	@mkdir -p $(B)/gen
	python3 tools/kpgen.py -o $(B)/gen $(DEFS)

$(B)/obj/gen/kp_msgs.o: $(B)/gen/kp_msgs.c
	@mkdir -p $(dir $@)
	@echo "  CC $(B) $<"
	@$(CC) $(GEN_CFLAGS) $(OPT) -c $< -o $@

# web itself: a file removed changes the directory, not any listed file
$(B)/gen/web_assets.c: tools/embed_web.py web $(WEB_FILES)
	@mkdir -p $(B)/gen
	python3 tools/embed_web.py -o $@ web

$(B)/obj/gen/web_assets.o: $(B)/gen/web_assets.c src/control/api/web_assets.h
	@mkdir -p $(dir $@)
	@echo "  CC $(B) $<"
	@$(CC) $(GEN_CFLAGS) $(OPT) -c $< -o $@

$(B)/obj/%.o: src/%.c $(B)/gen/kp_msgs.h
	@mkdir -p $(dir $@)
	@echo "  CC $(B) $<"
	@$(CC) $(BASE_CFLAGS) $(OPT) -c $< -o $@

$(B)/libkpool.a: $(LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(B)/kpool: $(B)/obj/cli/main.o $(B)/libkpool.a
	@echo "  LD $@"
	@$(CC) $(OPT) -o $@ $^ $(PKG_LIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libkpool.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(BASE_CFLAGS) -Wno-missing-prototypes -Itests/unit $(OPT) -o $@ $< $(B)/libkpool.a $(PKG_LIBS) -lcmocka

$(B)/fuzz/%: tests/fuzz/%.c $(B)/libkpool.a
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(BASE_CFLAGS) -Wno-missing-prototypes $(OPT) -fsanitize=fuzzer -o $@ $< $(B)/libkpool.a $(PKG_LIBS)

# the driver of tests/integration/test_etcd.py (src/cluster against a real etcd)
$(B)/tests/etcd_driver: tests/integration/c/etcd_driver.c $(B)/libkpool.a
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(BASE_CFLAGS) -Wno-missing-prototypes $(OPT) -o $@ $< $(B)/libkpool.a $(PKG_LIBS)

UB ?= build/asan
unit-bins: $(UNIT_BINS) $(B)/tests/etcd_driver
fuzz-bins: $(FUZZ_BINS)

# Test build: ASan+UBSan binary, unit tests, a short fuzz run, integration tests with real
# clients against the sanitizer build.
test: deps
	@$(MAKE) --no-print-directory B=build kpool-bin
	@$(MAKE) --no-print-directory B=build/asan kpool-bin unit-bins
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory integration
	@echo "make test: all tests passed"

unit:
	@set -e; for t in $(patsubst tests/unit/%.c,$(UB)/tests/%,$(UNIT_SRCS)); do \
	  echo "== $$t"; $$t; done
	@echo "== layers (docs/architecture.md)"
	@python3 tests/tools/test_check_layers.py -q
	@python3 tools/check_layers.py

# every target replays its seed corpus and explores briefly along a fixed path (seed
# FUZZ_SMOKE_SEED, at most FUZZ_SMOKE_RUNS inputs: `make fuzz-verify` runs that whole path
# here); `make fuzz` is the long run, with random seeds
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SMOKE_SEED ?= 1207
FUZZ_SMOKE_RUNS ?= 200000
fuzz-smoke:
	@$(MAKE) --no-print-directory B=build/fuzz fuzz-bins
	@FUZZ_SEED=$(FUZZ_SMOKE_SEED) FUZZ_RUNS=$(FUZZ_SMOKE_RUNS) ./scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

fuzz-verify:
	@$(MAKE) --no-print-directory B=build/fuzz fuzz-bins
	@FUZZ_SEED=$(FUZZ_SMOKE_SEED) FUZZ_RUNS=$(FUZZ_SMOKE_RUNS) ./scripts/fuzz.sh --verify

FUZZ_SECONDS ?= 300
fuzz:
	@$(MAKE) --no-print-directory B=build/fuzz fuzz-bins
	@./scripts/fuzz.sh $(FUZZ_SECONDS)

# the integration tests run in PYTEST_WORKERS processes (pytest-xdist, one test file per
# worker at a time); PYTEST_WORKERS=0 runs them in this one (docs/testing.md)
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
PYTEST_XDIST = $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile)
KPOOL_BIN ?= $(CURDIR)/build/asan/kpool
integration:
	cd tests/integration && KPOOL_BIN=$(KPOOL_BIN) /usr/bin/python3 -m pytest -q $(PYTEST_XDIST) $(PYTEST_ARGS)

# Soak: one broker (KPOOL_BIN, the ASan+UBSan build by default) under load from real clients
# while it and its consumers are killed and restarted; invariants checked throughout
# (tests/soak/soak.py, docs/testing.md). SOAK_SEED repeats a run's random choices.
# SOAK_MODE=replicated: a pool of brokers and etcd under a nemesis (tests/soak/replicated.py).
SOAK_MINUTES ?= 10
SOAK_MODE ?= single
SOAK_SCRIPT = $(if $(filter replicated,$(SOAK_MODE)),replicated,soak)
soak: deps
	@$(MAKE) --no-print-directory B=build/asan kpool-bin
	KPOOL_BIN=$(KPOOL_BIN) SOAK_MINUTES=$(SOAK_MINUTES) /usr/bin/python3 tests/soak/$(SOAK_SCRIPT).py

bench: build
	./bench/peers.sh

# Issue 19's acceptance stream: 1 GiB through mutual TLS (release build), read back twice by
# consumers that compare every byte; prints its throughput. Not part of `make test` (~2 min).
tls-stream: build
	cd tests/integration && KPOOL_TLS_STREAM_MB=1024 KPOOL_BIN=$(CURDIR)/build/kpool \
		/usr/bin/python3 -m pytest -q -s test_tls_data_path.py -k big_multi

format:
	clang-format -i $$(find src tests bench -name '*.[ch]')

format-check:
	clang-format --dry-run -Werror $$(find src tests bench -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
