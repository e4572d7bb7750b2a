# Orket: one Makefile. `make` builds build/orket (and the e2e tests' two helpers); `make check`
# runs the C unit tests and the specs (quick); `make test` runs every test layer but the soak
# tests, `make soak` those; `make asan` builds with AddressSanitizer + UBSan and runs the
# whole suite with it.

# Builds in parallel, one job per core, unless the command line sets -j (make -j1 stays serial).
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 1)
endif

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
PKGS    := lua5.4 lua5.4-luv lua5.4-cjson libuv sqlite3 libcurl libsodium libedit yajl libgit2 libmicrohttpd libseccomp libpq
# libcurl, libpq, libgit2, libmicrohttpd and libedit are loaded with dlopen on first use
# (core/curlapi.h, core/pgapi.h, core/gitapi.h, core/mhdapi.h, core/editapi.h), so they are
# not linked: only their headers are used here. Their dependency trees made every command's
# start-up slow.
LINKPKGS := $(filter-out libcurl libpq libgit2 libmicrohttpd libedit,$(PKGS))

WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_DEFAULT_SOURCE $(WARN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# main.c looks for the library in $(PREFIX)/share/orket when it cannot tell where it runs
# from (no /proc, argv[0] names no file); build with the PREFIX you install to.
override CFLAGS += -DORKET_PREFIX='"$(PREFIX)"'

# mimalloc (Debian's build replaces malloc for the whole process once linked): the Lua heap's
# many small short-lived blocks cost a tenth of an engine turn under glibc's (docs/engine.md,
# "The allocator"). Sanitizer builds keep the sanitizers' own malloc.
MIMALLOC := $(if $(findstring sanitize,$(LDFLAGS)),,-lmimalloc)
LDLIBS  += $(shell pkg-config --libs $(LINKPKGS) 2>/dev/null) $(MIMALLOC) -lm -ldl -lpthread

CORE_SRC := $(filter-out core/main.c core/confine_main.c,$(wildcard core/*.c)) $(wildcard core/gitrepo/*.c)
CORE_OBJ := $(CORE_SRC:core/%.c=$(BUILD)/core/%.o)
CTEST_SRC := $(wildcard tests/c/*.c)
CTEST_OBJ := $(CTEST_SRC:tests/c/%.c=$(BUILD)/tests/%.o)
HEADERS  := $(wildcard core/*.h) $(wildcard core/gitrepo/*.h) $(wildcard tests/c/*.h)

.PHONY: all deps test-deps bench-deps test check soak asan run bench install uninstall clean check-deps fuzz image-test

# with the end-to-end tests' two helpers, so that one e2e file runs after plain make
all: $(BUILD)/orket $(BUILD)/orket-confine $(BUILD)/ptydrive $(BUILD)/nsdeny

# The Debian packages building and running need; the tests' own come with test-deps.
# NO_DEPS=1 skips the check (a package build's own dependencies, a staged install); make
# install and uninstall of a tree already built skip it: they copy files, and never run apt-get
# (as root, or under fakeroot) in the middle of a packager's install step.
ifneq ($(filter install uninstall,$(MAKECMDGOALS)),)
ifneq ($(wildcard $(BUILD)/orket),)
NO_DEPS ?= 1
endif
endif
ifeq ($(NO_DEPS),)
deps:
	@sh scripts/deps.sh
else
deps:
	@:
endif

# after deps: two apt-get runs at once would fight over dpkg's lock
test-deps: deps
	@sh scripts/deps.sh --test
	@echo "test-deps: Chromium for sandboxes' browser checks is chromium-headless-shell and chromium-driver (installed here; plain make installs neither, and without them browser checks are skipped)"

$(BUILD)/core/%.o: core/%.c $(HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore -c $< -o $@

$(BUILD)/tests/%.o: tests/c/%.c $(HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore -c $< -o $@

# Sanitizer builds link libgit2, libmicrohttpd and libedit after all, so that they and the libraries
# they bring load at start, as before they were loaded with dlopen: LeakSanitizer (GCC 12's)
# misreads the dynamic TLS of libraries loaded later and crashes at exit ("Tracer caught
# signal 11"). The tables are still filled with dlopen, which finds them loaded.
SANLINK := $(if $(findstring sanitize,$(LDFLAGS)),-Xlinker --no-as-needed $(shell pkg-config --libs libgit2 libmicrohttpd libedit 2>/dev/null))

# The Lua library precompiled (core/bytecode.h): scripts/luabc.c compiles lua/ into one
# bundle, which core/bytecode_data.S links into orket. A module whose file has changed
# since is loaded from its source, so a stale bundle is never used.
LUA_LIB := $(shell find lua -name '*.lua' 2>/dev/null | LC_ALL=C sort)

$(BUILD)/luabc: scripts/luabc.c $(BUILD)/core/bytecode.o | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(shell pkg-config --libs lua5.4 libsodium 2>/dev/null) -o $@

$(BUILD)/bytecode.bin: $(BUILD)/luabc $(LUA_LIB)
	@echo "luabc $@ ($(words $(LUA_LIB)) files of lua/)"
	@$(BUILD)/luabc $@ $(LUA_LIB)

$(BUILD)/core/bytecode_data.o: core/bytecode_data.S $(BUILD)/bytecode.bin
	@mkdir -p $(dir $@)
	$(CC) -c -DBYTECODE_BIN='"$(BUILD)/bytecode.bin"' $< -o $@

$(BUILD)/orket: $(CORE_OBJ) $(BUILD)/core/main.o $(BUILD)/core/bytecode_data.o
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) $(SANLINK) -o $@

# The process runner's helper (core/confine_main.c), found next to orket: static (no
# dynamic loader at each run's exec), except in sanitizer builds, which cannot be.
$(BUILD)/orket-confine: $(BUILD)/core/confine_main.o $(BUILD)/core/confine.o $(BUILD)/core/confine_relay.o $(BUILD)/core/confine_pids.o
	$(CC) $(CFLAGS) $(LDFLAGS) $(if $(findstring sanitize,$(LDFLAGS)),,-static) $^ -lseccomp -o $@

# The C tests also call libgit2 themselves (repositories set up behind gitrepo's back), so
# they link it: gitrepo's dlopen then finds the very library already loaded. The core's
# fsync and syncfs calls go through the tests' own wrappers (--wrap), which note what was
# synced: how the git tests see which writes were made durable before what (and stat, which
# a test makes fail for one path; strcmp, which a test counts; write, mkdirat, openat and
# unlinkat, which a test makes fail for want of space or for a permission).
$(BUILD)/test_core: $(CORE_OBJ) $(CTEST_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--wrap=fsync -Wl,--wrap=syncfs -Wl,--wrap=stat -Wl,--wrap=strcmp \
		-Wl,--wrap=write -Wl,--wrap=mkdirat -Wl,--wrap=openat -Wl,--wrap=unlinkat $^ $(LDLIBS) \
		$(shell pkg-config --libs libgit2 2>/dev/null) -lutil -o $@

# Drives `orket repl` on a pseudo-terminal for the end-to-end tests.
$(BUILD)/ptydrive: tests/tools/ptydrive.c | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $< -lutil -o $@

# Runs a command under a default container's refusal of namespaces (tests/e2e/container_test.lua).
$(BUILD)/nsdeny: tests/tools/nsdeny.c | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $< -lseccomp -o $@

TEST_BINS := $(BUILD)/orket $(BUILD)/orket-confine $(BUILD)/test_core $(BUILD)/ptydrive $(BUILD)/nsdeny

# Every layer (each test file a process, several at a time: tests/run.sh), then one summary
# line: "N passed, N failed, N skipped". The soak tests (many killed and repeated runs) are make soak's.
# TEST_LAYERS="c spec e2e pg" (the default; "soak" adds make soak's) names the layers to run.
test: test-deps $(TEST_BINS)
	@TEST_LAYERS="$(TEST_LAYERS)" sh tests/run.sh $(BUILD)

# The C unit tests and the specs: what to run after each change.
check: test-deps $(TEST_BINS)
	@sh tests/run.sh --check $(BUILD)

soak: test-deps $(TEST_BINS)
	@sh tests/run.sh --soak $(BUILD)

ASAN := BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	LDFLAGS="-fsanitize=address,undefined"
# every layer, the soak tests too, unless TEST_LAYERS names some
asan:
	$(MAKE) $(ASAN) TEST_LAYERS="$(or $(TEST_LAYERS),c spec e2e pg soak)" test

bench-deps: deps
	@sh scripts/deps.sh --bench

run: $(BUILD)/orket
	@sh examples/notes/run.sh $(BUILD)/orket

# Builds the container image with podman and checks it from outside (scripts/image-test.sh).
image-test:
	@sh scripts/image-test.sh

# The transport benchmark's floor: a plain libcurl client (bench/curlfloor.c), linked
# directly; orket itself loads libcurl with dlopen.
$(BUILD)/curlfloor: bench/curlfloor.c | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(shell pkg-config --libs libcurl 2>/dev/null) -o $@

# The serve benchmark's floor: a bare libmicrohttpd server on a libuv loop (bench/mhdfloor.c).
$(BUILD)/mhdfloor: bench/mhdfloor.c | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(shell pkg-config --libs libmicrohttpd libuv 2>/dev/null) -o $@

# The sandbox proxy's floor: libmicrohttpd answering with what libcurl fetched (bench/proxyfloor.c).
$(BUILD)/proxyfloor: bench/proxyfloor.c | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(shell pkg-config --libs libmicrohttpd libcurl libuv 2>/dev/null) -o $@

# The git benchmark's floor: the least libgit2 work per card (bench/gitfloor.c).
$(BUILD)/gitfloor: bench/gitfloor.c bench/floor.h | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(shell pkg-config --libs libgit2 2>/dev/null) -o $@

# With the journal floor, the C floor under the W2 figure: the run's model requests replayed
# by a plain libcurl client and the cards' files written durably (bench/w2floor.c).
$(BUILD)/w2floor: bench/w2floor.c bench/floor.h | deps
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(shell pkg-config --libs libcurl 2>/dev/null) -o $@

bench: bench-deps $(BUILD)/orket $(BUILD)/orket-confine $(BUILD)/curlfloor $(BUILD)/mhdfloor $(BUILD)/proxyfloor $(BUILD)/gitfloor $(BUILD)/w2floor
	@sh bench/run.sh $(BUILD)

# The binaries and the library, replaced whole (scripts/install.sh says why); uninstall removes
# them. Installing what is built already checks no Debian package (NO_DEPS, below).
install: $(BUILD)/orket $(BUILD)/orket-confine
	@sh scripts/install.sh install '$(DESTDIR)' '$(PREFIX)' '$(BUILD)'

uninstall:
	@sh scripts/install.sh uninstall '$(DESTDIR)' '$(PREFIX)' '$(BUILD)'

clean:
	rm -rf build build-asan build-fuzz

# libFuzzer targets (clang) for the tool-call scan and the schema validator + gate; each
# runs FUZZ_SECONDS (default 60) from its corpus directory under build-fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -g -O1 -std=c11 -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined -Icore
FUZZ_TARGETS := toolscan schema

fuzz:
	@sh scripts/deps.sh --fuzz
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) fuzz/fuzz_toolscan.c core/toolscan.c -o build-fuzz/fuzz_toolscan
	clang $(FUZZ_CFLAGS) fuzz/fuzz_schema.c core/schema.c core/gate.c core/statemachine.c core/workspace.c \
	  core/inert.c core/jsonout.c -lm -o build-fuzz/fuzz_schema
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus-$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus-$$t fuzz/seeds-$$t \
	    >build-fuzz/$$t.log 2>&1 || { tail -n 40 build-fuzz/$$t.log; exit 1; }; \
	  grep -E '^(#[0-9]+.*DONE|Done)' build-fuzz/$$t.log | tail -n 2; \
	done
