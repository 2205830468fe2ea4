# casty — build. `make` builds the libraries, examples, benches and tools;
# `make test`, `make tsan`, `make asan`, `make bench`, `make install`.
# Every target first makes sure the Debian build dependencies are present
# (tools/install-deps.sh installs them when pkg-config or a header is missing).

CC      ?= cc
SHELL   := /bin/bash
PREFIX  ?= /usr/local
BUILD   ?= build
OPT     ?= -O2
# Link-time optimisation (gcc): the runtime's calls across its own files,
# and a program's calls into libcasty.a (casty_msg_as, casty_same), inlined
# where that pays (docs/performance.md, "Link-time optimisation, again").
# Fat objects: a program linked without -flto, or by another compiler,
# still links against the same archive. `make LTO=` builds without.
LTO     ?= -flto=auto -ffat-lto-objects
CSTD     = -std=c17 -D_GNU_SOURCE
WARN     = -Wall -Wextra -Werror
CFLAGS_ALL = $(CSTD) $(OPT) $(LTO) -g $(WARN) -fvisibility=hidden -Iinclude -Iruntime -Ipersist -Inet $(EXTRA_CFLAGS)
LIBS     = -luring -lxxhash -lpcre2-8 -lsodium -lpthread -lm
TEST_LIBS = -lcriterion

LIB_SRCS  = $(wildcard runtime/*.c persist/*.c net/*.c)
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
PIC_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/pic/%.o)
EXAMPLES  = $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
BENCHES   = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
TOOLS     = $(patsubst tools/%.c,$(BUILD)/tools/%,$(wildcard tools/*.c))
TEST_SRCS = $(wildcard tests/test_*.c)
STRESS_SRCS = $(wildcard tests/test_stress_*.c)
DEPS_STAMP = $(BUILD)/.deps-ok

.PHONY: all lib examples benches tools test tsan asan bench install clean deps check-clang toml-test fuzz-toml fuzz-journal fuzz-wire scaling bench-compare bench-remote instructions
.SUFFIXES:

all: lib examples benches tools

deps: $(DEPS_STAMP)
$(DEPS_STAMP): tools/install-deps.sh
	@./tools/install-deps.sh
	@mkdir -p $(BUILD) && touch $@

lib: $(BUILD)/libcasty.a $(BUILD)/libcasty.so

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -MMD -MP -c $< -o $@

$(BUILD)/libcasty.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcasty.so: $(PIC_OBJS) casty.map
	$(CC) $(OPT) $(LTO) -shared -Wl,--version-script=casty.map -Wl,-soname,libcasty.so.0 -o $@ $(PIC_OBJS) $(LIBS)

examples: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(BUILD)/libcasty.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libcasty.a $(LIBS)

benches: $(BENCHES)
$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(BUILD)/libcasty.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ibench $< -o $@ $(BUILD)/libcasty.a $(LIBS)

tools: $(TOOLS)
$(BUILD)/tools/%: tools/%.c $(BUILD)/libcasty.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libcasty.a $(LIBS)

# ---- tests ------------------------------------------------------------------
TEST_OBJS = $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/tests/casty_tests: $(TEST_OBJS) $(BUILD)/libcasty.a
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(LTO) -o $@ $(TEST_OBJS) $(BUILD)/libcasty.a $(TEST_LIBS) $(LIBS)

# A peer process for the tests that kill one (tests/test_remote_kill.c),
# found through CASTY_REMOTE_PEER by every test binary.
REMOTE_PEER = $(BUILD)/tests/remote_peer
export CASTY_REMOTE_PEER = $(abspath $(REMOTE_PEER))
$(REMOTE_PEER): tests/helpers/remote_peer.c $(BUILD)/libcasty.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libcasty.a $(LIBS)

# The README's test command. Runs the Criterion suite, then the example
# programs against their expected output, then the out-of-tree pkg-config build.
test: all $(BUILD)/tests/casty_tests $(REMOTE_PEER)
	$(BUILD)/tests/casty_tests --jobs 1
	./tests/run_examples.sh $(BUILD)/examples
	./tests/pkgconfig_test.sh
	BUILD=$(BUILD) ./tools/toml-test.sh

# TOML 1.0 conformance of runtime/toml.c against ../shared/toml-test
# (skipped with a notice when the suite is absent).
toml-test: tools
	BUILD=$(BUILD) ./tools/toml-test.sh

# libFuzzer targets (clang; not part of all/test): make fuzz-toml, then
# build/fuzz/fuzz_toml -max_total_time=60 ../shared/toml-test/valid; make
# fuzz-journal, then build/fuzz/fuzz_journal_record -max_total_time=60.
# make test runs a short seeded pass of both decoders (tests/test_*_fuzz_smoke.c).
fuzz-journal: $(BUILD)/fuzz/fuzz_journal_record
$(BUILD)/fuzz/fuzz_journal_record: persist/journal_format.c persist/journal_format.h tests/fuzz/fuzz_journal_record.c tests/journal_record_check.h
	@mkdir -p $(dir $@)
	clang $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ipersist persist/journal_format.c tests/fuzz/fuzz_journal_record.c -lxxhash -o $@

fuzz-wire: $(BUILD)/fuzz/fuzz_wire
$(BUILD)/fuzz/fuzz_wire: net/wire.c net/wire.h tests/fuzz/fuzz_wire.c tests/wire_check.h
	@mkdir -p $(dir $@)
	clang $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Inet net/wire.c tests/fuzz/fuzz_wire.c -lsodium -o $@

fuzz-toml: $(BUILD)/fuzz/fuzz_toml
$(BUILD)/fuzz/fuzz_toml: runtime/toml.c runtime/toml.h tests/fuzz/fuzz_toml.c tests/toml_check.h
	@mkdir -p $(dir $@)
	clang $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Iruntime runtime/toml.c tests/fuzz/fuzz_toml.c -o $@

# Sanitizer builds: the concurrency stress tests under ThreadSanitizer, the
# whole suite under AddressSanitizer/LeakSanitizer.
SAN_CFLAGS = $(CSTD) -O1 -g -fno-omit-frame-pointer $(WARN) -Iinclude -Iruntime -Ipersist -Inet
TSAN_DIR = $(BUILD)/tsan
ASAN_DIR = $(BUILD)/asan

$(TSAN_DIR)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -fsanitize=thread -DCK_USE_CC_BUILTINS=1 -MMD -MP -c $< -o $@
# Criterion's runner crashes under TSan (Snaipe/Criterion#274): the tests
# (the stress tests and every functional test) are compiled against an
# in-process stand-in for its macros (tests/tsan_shim/) and run in one process.
$(TSAN_DIR)/shim/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -Itests/tsan_shim -fsanitize=thread -DCK_USE_CC_BUILTINS=1 -MMD -MP -c $< -o $@
$(TSAN_DIR)/stress: $(LIB_SRCS:%.c=$(TSAN_DIR)/obj/%.o) $(TEST_SRCS:%.c=$(TSAN_DIR)/shim/%.o) $(TSAN_DIR)/shim/tests/tsan_shim/runner.o
	$(CC) -fsanitize=thread -o $@ $^ $(LIBS)
tsan: $(TSAN_DIR)/stress $(REMOTE_PEER)
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 history_size=7 exitcode=66" \
	CASTY_STRESS_SCALE=$${CASTY_STRESS_SCALE:-10} $(TSAN_DIR)/stress

$(ASAN_DIR)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -fsanitize=address,undefined -DCK_USE_CC_BUILTINS=1 -MMD -MP -c $< -o $@
$(ASAN_DIR)/tests: $(LIB_SRCS:%.c=$(ASAN_DIR)/obj/%.o) $(TEST_SRCS:%.c=$(ASAN_DIR)/obj/%.o)
	$(CC) -fsanitize=address,undefined -o $@ $^ $(TEST_LIBS) $(LIBS)
# Criterion runs each test in a child whose LeakSanitizer report does not
# fail the test, so the log is checked for any sanitizer report as well.
asan: $(ASAN_DIR)/tests $(REMOTE_PEER)
	set -o pipefail; ASAN_OPTIONS="detect_leaks=1 abort_on_error=0" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
	CASTY_STRESS_SCALE=$${CASTY_STRESS_SCALE:-4} $(ASAN_DIR)/tests --jobs 1 2>&1 | tee $(ASAN_DIR)/log
	@if grep -q -E "Sanitizer|runtime error" $(ASAN_DIR)/log; then echo "asan: sanitizer report above"; exit 1; fi

# ---- benchmarks ---------------------------------------------------------------
bench: benches
	./tools/run-bench.sh $(BUILD)/bench
	$(MAKE) --no-print-directory bench-remote

# Remoting between two processes over loopback: one-way msgs/s and ask
# round-trip latency (bench/remote.c).
bench-remote: $(BUILD)/bench/remote
	timeout 300 $(BUILD)/bench/remote

# casty against Erlang/OTP and Go on the same benchmarks (installs erlang-base,
# golang-go and gnuplot-nox when missing): a table of medians with ratios,
# bench/results/<date>.csv and .svg.
bench-compare: benches
	BUILD=$(BUILD) ./tools/bench-compare.sh

# Throughput and parallel efficiency of the parallel benchmarks at 1..nproc workers.
scaling: benches
	./tools/scaling.sh $(BUILD)/bench

# Instructions per message at 1 worker under callgrind (needs valgrind):
# repeatable where wall-clock rates on a shared machine are not.
instructions: benches
	./tools/instructions.sh $(BUILD)/bench

# ---- install ------------------------------------------------------------------
install: lib
	install -d $(DESTDIR)$(PREFIX)/include/casty $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/casty.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/casty/*.h $(DESTDIR)$(PREFIX)/include/casty/
	install -m 644 $(BUILD)/libcasty.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libcasty.so $(DESTDIR)$(PREFIX)/lib/libcasty.so.0
	ln -sf libcasty.so.0 $(DESTDIR)$(PREFIX)/lib/libcasty.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' casty.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/casty.pc

# Both compilers must build warning-free.
check-clang:
	$(MAKE) BUILD=$(BUILD)/clang CC=clang LTO= all

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
