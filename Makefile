# Orket: one Makefile. `make` builds build/orket; `make test` runs every test layer;
# `make asan` builds with AddressSanitizer + UBSan and runs the whole suite with it.

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
PKGS    := lua5.4 lua5.4-luv lua5.4-cjson libuv sqlite3 libcurl libsodium libedit

WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_DEFAULT_SOURCE $(WARN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -ldl -lpthread

CORE_SRC := $(filter-out core/main.c,$(wildcard core/*.c))
CORE_OBJ := $(CORE_SRC:core/%.c=$(BUILD)/core/%.o)
CTEST_SRC := $(wildcard tests/c/*.c)
CTEST_OBJ := $(CTEST_SRC:tests/c/%.c=$(BUILD)/tests/%.o)
HEADERS  := $(wildcard core/*.h) $(wildcard tests/c/*.h)

.PHONY: all deps test asan run bench install clean check-deps

all: $(BUILD)/orket

deps:
	@sh scripts/deps.sh

$(BUILD)/core/%.o: core/%.c $(HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore -c $< -o $@

$(BUILD)/tests/%.o: tests/c/%.c $(HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icore -c $< -o $@

$(BUILD)/orket: $(CORE_OBJ) $(BUILD)/core/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/test_core: $(CORE_OBJ) $(CTEST_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -lutil -o $@

# Every layer, then one summary line: "N passed, N failed".
test: $(BUILD)/orket $(BUILD)/test_core
	@sh tests/run.sh $(BUILD)

asan:
	@sh scripts/deps.sh --asan
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" test

run: $(BUILD)/orket
	$(BUILD)/orket lua examples/hello/hello.lua

bench: $(BUILD)/orket
	@sh bench/run.sh $(BUILD)

install: $(BUILD)/orket
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/orket
	install -m 755 $(BUILD)/orket $(DESTDIR)$(PREFIX)/bin/orket
	cp -R lua roles tools policies $(DESTDIR)$(PREFIX)/share/orket/

clean:
	rm -rf build build-asan build-fuzz
