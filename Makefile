# slim — plain Makefile.  `make deps` (root) installs the Debian packages,
# `make` builds, `make test` runs the suite, `make asan` the suite under
# ASan+UBSan, `make bench` the benchmarks, `make demo` the end-to-end job.
#
# Layout of the build (all under build/ or $(B)):
#   libslim.a          store/*.c            (the library, public header slim.h)
#   libslimingest.a    ingest/*.c but tool mains (slim-*.c)
#   libslimquery.a     query/*.c  but tool mains and the extension entry
#   libslimtrain.a     train/*.c  but tool mains
#   bin/slim-*         one per {store,ingest,query,train}/slim-*.c
#   tests/test_*       one per tests/test_<part>*.c (unit tests; exit 0 = pass)
#   bench/*            one per bench/bench_<part>*.c
# <part> is store, codec, ingest, query, train or demo: it decides what links.
# New source files are picked up by the wildcards; nothing to register here.

B ?= build
CC ?= cc
PREFIX ?= /usr/local

OPENBLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
OPENBLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 \
        -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif
ifdef WERROR
WARN += -Werror
endif

OPT ?= -O2 -g
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fopenmp -pthread \
               -Istore -I$(OPENBLAS_INC) -I$(B)/gen
CFLAGS_ALL = $(CFLAGS_BASE) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS_ALL := -llmdb -lsqlite3 -lzstd -lxxhash -ljansson -lcrypto -lreadline \
              -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -fopenmp -pthread -lm
LDFLAGS_ALL = $(LDFLAGS) $(EXTRA_LDFLAGS)

STORE_SRC  := $(filter-out store/slim-%.c,$(wildcard store/*.c))
INGEST_SRC := $(filter-out ingest/slim-%.c,$(wildcard ingest/*.c))
QUERY_SRC  := $(filter-out query/slim-%.c query/ext_%.c,$(wildcard query/*.c))
TRAIN_SRC  := $(filter-out train/slim-%.c,$(wildcard train/*.c))
TOOL_SRC   := $(wildcard store/slim-*.c ingest/slim-*.c query/slim-*.c train/slim-*.c)
TEST_SRC   := $(wildcard tests/test_*.c)
TESTLIB_SRC:= $(wildcard tests/lib/*.c)
BENCH_SRC  := $(wildcard bench/*.c)
SCHEMA_SQL := $(sort $(wildcard schema/*.sql))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIBS := $(B)/libslimquery.a $(B)/libslimingest.a $(B)/libslimtrain.a $(B)/libslim.a
TOOLS := $(patsubst %.c,$(B)/bin/%,$(notdir $(TOOL_SRC)))
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
EXT := $(if $(wildcard query/ext_*.c),$(B)/slimext.so)

.PHONY: all deps bench-deps test asan bench demo fuzz install clean tools tests benches check-blas
# keep objects that pattern-rule chains would otherwise delete as intermediates
.SECONDARY:
all: tools tests $(EXT)
tools: $(TOOLS)
tests: $(TESTS) $(B)/tests/pread_eof.so $(B)/tests/sync_fault.so
benches: $(BENCHES)

# ----------------------------------------------------------------- deps
DEB_PACKAGES := build-essential pkg-config liblmdb-dev lmdb-utils libsqlite3-dev sqlite3 \
  libzstd-dev zstd libxxhash-dev libjansson-dev libssl-dev libreadline-dev \
  libopenblas-openmp-dev clang libclang-rt-14-dev fortunes bible-kjv bible-kjv-text
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

# Optional: Debian's PyTorch (and numpy) for `make bench`'s peer figures and
# the reference scripts (bench/torch_ref.py, tests/ref/); slim never needs them.
BENCH_PACKAGES := python3 python3-torch python3-numpy
bench-deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BENCH_PACKAGES)

# ---------------------------------------------------------------- schema
$(B)/gen/schema.c: $(SCHEMA_SQL) schema/embed.sh
	@mkdir -p $(@D)
	sh schema/embed.sh $(SCHEMA_SQL) > $@.tmp && mv $@.tmp $@

# ----------------------------------------------------------------- build
$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(B)/obj/gen/schema.o: $(B)/gen/schema.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/libslim.a: $(call obj,$(STORE_SRC)) $(B)/obj/gen/schema.o
$(B)/libslimingest.a: $(call obj,$(INGEST_SRC))
$(B)/libslimquery.a: $(call obj,$(QUERY_SRC))
$(B)/libslimtrain.a: $(call obj,$(TRAIN_SRC))
$(B)/%.a:
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# Each tool / test links only the libraries of its part, so one part's
# unfinished code never blocks another's build.
L_STORE  := $(B)/libslim.a
L_INGEST := $(B)/libslimingest.a $(B)/libslimtrain.a $(B)/libslim.a
L_QUERY  := $(B)/libslimquery.a $(B)/libslim.a
L_TRAIN  := $(B)/libslimtrain.a $(B)/libslim.a
TESTLIB_OBJ = $(call obj,$(TESTLIB_SRC))

define link_rule
$(B)/bin/slim-%: $(B)/obj/$(1)/slim-%.o $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$< $(2) $$(LDLIBS_ALL)
$(B)/tests/test_$(1)%: $(B)/obj/tests/test_$(1)%.o $$(TESTLIB_OBJ) $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$< $$(TESTLIB_OBJ) $(2) $$(LDLIBS_ALL)
$(B)/bench/bench_$(1)%: $(B)/obj/bench/bench_$(1)%.o $$(TESTLIB_OBJ) $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$< $$(TESTLIB_OBJ) $(2) $$(LDLIBS_ALL)
endef
$(eval $(call link_rule,store,$(L_STORE)))
$(eval $(call link_rule,codec,$(L_STORE)))
$(eval $(call link_rule,ingest,$(L_INGEST)))
$(eval $(call link_rule,query,$(L_QUERY)))
$(eval $(call link_rule,train,$(L_TRAIN)))
$(eval $(call link_rule,demo,$(L_INGEST)))

# The SQLite extension: store + query code compiled position-independent.
PIC_SRC := $(STORE_SRC) $(QUERY_SRC) $(wildcard query/ext_*.c)
$(B)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -fPIC -MMD -MP -c $< -o $@
$(B)/pic/gen/schema.o: $(B)/gen/schema.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -fPIC -c $< -o $@
$(B)/slimext.so: $(patsubst %.c,$(B)/pic/%.o,$(PIC_SRC)) $(B)/pic/gen/schema.o
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^ -lsqlite3 -llmdb -lzstd -lxxhash -ljansson -lcrypto -lm -pthread

# fault injection for tests/cli (LD_PRELOAD), built without the sanitizers
$(B)/tests/%.so: tests/fault/%.c tests/fault/fault_fd.h
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -shared -fPIC -o $@ $< -ldl

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# ----------------------------------------------------------------- tests
test: all
	@sh tests/run.sh $(B)

asan:
	$(MAKE) B=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 SLIM_ASAN=1 \
	  sh tests/run.sh build-asan

# ------------------------------------------------------------------ fuzz
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 60
fuzz:
	$(MAKE) B=build-fuzz CC=clang OPT="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" $(LIBS:$(B)/%=build-fuzz/%)
	@mkdir -p build-fuzz/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -Istore -I$(OPENBLAS_INC) \
	    -o build-fuzz/fuzz/$$n $$f $(LIBS:$(B)/%=build-fuzz/%) $(LDLIBS_ALL) || exit 1; \
	  mkdir -p tests/fuzz/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  build-fuzz/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 tests/fuzz/corpus/$$n || exit 1; \
	done

# ----------------------------------------------------------------- bench
bench: all benches
	sh bench/run.sh $(B)

# ------------------------------------------------------------------ demo
demo: all
	sh tests/demo.sh $(B)

# --------------------------------------------------------------- install
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(B)/libslim.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 store/slim.h $(DESTDIR)$(PREFIX)/include/
	$(if $(EXT),install -m 755 $(EXT) $(DESTDIR)$(PREFIX)/lib/)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/#define SLIM_VERSION_STRING "\(.*\)"/\1/p' store/slim.h)|' \
	  store/slim.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/slim.pc

clean:
	rm -rf build build-asan build-fuzz
