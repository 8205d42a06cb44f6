# cordon — one binary, one library that the binary, unit tests and fuzzers link.
# Sources are found by glob: add a file under src/<module>/ and it is built.

CC       ?= cc
BUILD    ?= build
LLHTTP   := /usr/share/llhttp
PY       := /usr/bin/python3

WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wmissing-prototypes \
            -Wstrict-prototypes -Wswitch-enum -Wno-unused-parameter
CPPFLAGS := -D_GNU_SOURCE -Isrc -I/usr/share/include/llhttp -MMD -MP
CFLAGS   ?= -O2 -g
override CFLAGS += -std=c11 -pthread $(WARN) $(EXTRA_CFLAGS)
LDLIBS   := -lssl -lcrypto -lyaml -ljansson -lcares -lwslay -lmnl \
            -lnetfilter_log -lseccomp -lsqlite3 -lutil -lpthread
override LDFLAGS += -pthread $(EXTRA_LDFLAGS)

LIB_SRC  := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC  := $(wildcard src/cli/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
LLHTTP_OBJ := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit integration asan demo clean fuzz setup format

all: $(BUILD)/cordon

setup:
	./scripts/setup

$(BUILD)/llhttp/%.o: $(LLHTTP)/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fPIC $(EXTRA_CFLAGS) -I/usr/share/include/llhttp -c $< -o $@

$(BUILD)/libllhttp.a: $(LLHTTP_OBJ)
	ar rcs $@ $^

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libcordon.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cordon: $(CLI_OBJ) $(BUILD)/libcordon.a $(BUILD)/libllhttp.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libcordon.a $(BUILD)/libllhttp.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcordon.a $(BUILD)/libllhttp.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libcordon.a $(BUILD)/libllhttp.a -lcmocka $(LDLIBS)

unit: $(UNIT_BIN)
	@./tests/run-unit $(UNIT_BIN)

integration: $(BUILD)/cordon
	CORDON=$(abspath $(BUILD)/cordon) $(PY) -m pytest -q -ra tests/integration $(PYTEST_ARGS)

# The full suite: setup, build, unit tests, integration tests; ends with both summaries.
test: setup
	$(MAKE) all
	BUILD=$(BUILD) ./tests/run-all

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer, in a separate tree.
ASAN_ENV := BUILD=build-asan CFLAGS="-O1 -g" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined"
asan: setup
	$(ASAN_ENV) $(MAKE) all
	$(ASAN_ENV) ./tests/run-all

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# Builds the library with coverage hooks in build-fuzz/, links each
# tests/fuzz/fuzz_*.c, then runs it FUZZ_SECONDS (default 30) per target.
# New inputs go to build-fuzz/corpus/<name>, crashes to build-fuzz/fuzz/;
# the seed corpus in tests/fuzz/corpus/<name> is only read.
# CFLAGS goes through the environment: on the command line it would
# override the Makefile's "CFLAGS +=" and drop the sanitizers. Warnings do
# not fail this build (the gcc build is the gate; clang warns differently).
fuzz: setup
	CFLAGS="-O1 -g" $(MAKE) BUILD=build-fuzz CC=clang \
	  EXTRA_CFLAGS="-Wno-error -fsanitize=fuzzer-no-link $(FUZZ_SAN)" EXTRA_LDFLAGS="$(FUZZ_SAN)" \
	  build-fuzz/libcordon.a build-fuzz/libllhttp.a
	@mkdir -p build-fuzz/fuzz
	for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang $(CPPFLAGS) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -o build-fuzz/fuzz/$$n $$f \
	    build-fuzz/libcordon.a build-fuzz/libllhttp.a $(LDLIBS) || exit 1; done
	for f in $(FUZZ_SRC); do n=$$(basename $$f .c); mkdir -p build-fuzz/corpus/$$n; \
	  build-fuzz/fuzz/$$n -max_total_time=$${FUZZ_SECONDS:-30} \
	    -artifact_prefix=build-fuzz/fuzz/$$n- build-fuzz/corpus/$$n tests/fuzz/corpus/$$n \
	    || exit 1; done

demo: setup
	$(MAKE) all
	./scripts/demo

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
