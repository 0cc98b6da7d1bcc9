# rlhf — build, test, demo and benchmark targets.
# `make` builds bin/rlhf; `make test` builds and runs every test and prints
# "N passed, N failed"; `make test SAN=1` does the same under ASan+UBSan.

PKGS     := openblas hdf5-serial ompi-c jansson libpcre2-8

# Every target but clean first installs what is missing, so that a fresh
# Debian 12 machine needs nothing but make: the outer make runs
# launch/install-deps.sh (it only queries dpkg when everything is there) and
# then the requested targets in an inner make (RLHF_INNER=1), whose
# pkg-config flags are read after the install. `make -n` shows the order.
GOALS    := $(or $(MAKECMDGOALS),all)
ifeq ($(RLHF_INNER)$(filter-out clean,$(GOALS)),)
RLHF_INNER := 1
endif
ifeq ($(RLHF_INNER),)
.PHONY: $(GOALS) rlhf-deps
$(GOALS): rlhf-deps
	@:
rlhf-deps:
	@bash launch/install-deps.sh || { echo "make: launch/install-deps.sh failed; run it as root or with sudo" >&2; exit 1; }
	+@$(MAKE) --no-print-directory RLHF_INNER=1 $(MAKECMDGOALS)
else
CC       ?= gcc
OPT      ?= -O2 -march=native -fvect-cost-model=dynamic -fno-math-errno -fno-trapping-math
ifeq ($(VG),1)      # for valgrind, which does not decode AVX-512: AVX2 only
OPT      := -O1 -march=x86-64-v3 -fno-math-errno -fno-trapping-math
endif
CFLAGS   := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -I. $(shell pkg-config --cflags $(PKGS))
LDLIBS   := $(shell pkg-config --libs $(PKGS)) -lm -lpthread

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BUILD   := build/san
else ifeq ($(VG),1)
BUILD   := build/vg
else
BUILD   := build/opt
endif

LIB_SRC  := $(wildcard common/*.c common/*/*.c actor/*.c rewarder/*.c learner/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/unit/test_*.c) tests/harness.c
TEST_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(TEST_SRC))
BENCH_SRC:= $(wildcard tests/bench/*.c)

RLHF     := $(BUILD)/rlhf
UNIT     := $(BUILD)/unit_tests

.PHONY: all test test-slurm fuzz soak bench demo clean deps
all: bin/rlhf

bin/rlhf: $(RLHF)
	@mkdir -p bin
	cp $< $@.tmp && mv -f $@.tmp $@   # replace, even while an old copy runs

$(RLHF): $(BUILD)/rlhf.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT): $(TEST_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/bench/%: tests/bench/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

test: $(RLHF) $(UNIT)
	RLHF_BIN=$(RLHF) UNIT_BIN=$(UNIT) bash tests/run.sh

# A one-node Slurm cluster on localhost (installs slurm-wlm and munge; root).
test-slurm: $(RLHF)
	RLHF_BIN=$(RLHF) bash tests/slurm/test_slurm.sh

# libFuzzer harnesses (clang; apt-get install clang libclang-rt-14-dev), each
# run FUZZ_SECONDS from its committed seed corpus.
FUZZ_SECONDS ?= 20
fuzz:
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Long-run soak of distributed PPO: SOAK_ITERS (300) iterations, SIGTERM/resume
# cycles, memory flat, results identical to an uninterrupted run (~2 minutes).
soak: $(RLHF)
	RLHF_BIN=$(RLHF) bash tests/soak.sh

bench: $(RLHF) $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
	BENCH_DIR=$(BUILD)/bench RLHF_BIN=$(RLHF) bash tests/bench/run.sh

demo: bin/rlhf
	bash launch/demo.sh

deps:
	bash launch/install-deps.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

endif # RLHF_INNER
