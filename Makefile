# herd — top-level build.
#
# Non-recursive: every directory describes its own pieces in <dir>/module.mk,
# (or <dir>/<sub>/module.mk), which this file includes. A module.mk appends to:
#   BINS        programs that end up in $(BUILD)/bin
#   UNIT_TESTS  cmocka test programs ($(BUILD)/tests/unit/...)
#   FIRMWARE    guest images ($(BUILD)/firmware/...)
#   LIBS        static libraries other modules link ($(BUILD)/lib/...)
#
# `make`            builds everything into build/
# `make SAN=1`      builds the same tree with ASan+UBSan into build/san/
# `make check`      installs what is missing, builds both trees, runs every test
# `make check-full` the same with the slowest cases too (docs/testing.md)
# `make demo`       installs what is missing, builds, runs the main job
# `make bench`      prints herd vs its peers, side by side, from one run
# `make iotests`    QEMU's qemu-iotests (qcow2, no VM) with herd-img: the count

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/san
else
BUILD ?= build
endif

CC      ?= gcc
AR      ?= ar
PKG_CONFIG ?= pkg-config

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 \
            -Wmissing-prototypes -Wstrict-prototypes -Wold-style-definition \
            -Wvla -Wundef -Wcast-align -Wno-unused-parameter

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARNINGS) -D_GNU_SOURCE -Iinclude -MMD -MP \
           -fno-strict-aliasing -fstack-protector-strong
LDFLAGS ?=
LDLIBS  ?=

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

BINS       :=
UNIT_TESTS :=
FIRMWARE   :=
LIBS       :=

.PHONY: all check check-full demo bench clean deps fuzz iotests
all:

include $(sort $(wildcard */module.mk */*/module.mk))

all: $(LIBS) $(BINS) $(FIRMWARE) $(UNIT_TESTS)

# Objects for host code (programs, libraries, tests).
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

deps:
	./tools/install-deps

# The README's test command. The sanitizer tree is built by a sub-make so both
# trees share one set of rules.
check: deps
	$(MAKE) all
	$(MAKE) SAN=1 all
	./tools/fetch-test-kernel || echo "check: no test kernel; the real-Linux tests will skip"
	./tools/build-guest-image build/guest || echo "check: no guest image; the Debian guest tests will skip"
	./tools/fetch-qemu-iotests || echo "check: no QEMU iotests; herd-img-iotests will skip"
	./tests/run-all

# make check plus the slowest cases (docs/testing.md says which and why).
check-full:
	HERD_CHECK_FULL=1 $(MAKE) check

# QEMU's qemu-iotests (qcow2, no VM) with herd-img as qemu-img and qemu-io:
# every test, one line each, then the count (docs/testing.md).
iotests: deps
	$(MAKE) $(BUILD)/bin/herd-img
	./tools/fetch-qemu-iotests
	HERD_BUILD=$(BUILD) ./tests/iotests/run

demo: deps
	$(MAKE) all
	./tools/build-guest-image build/guest
	./tools/demo

bench: deps
	$(MAKE) all
	./tools/bench

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
