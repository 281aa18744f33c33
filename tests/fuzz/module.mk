# Fuzzing (libFuzzer): tests/fuzz/fuzz_*.c, one program per target, built with
# clang into build/fuzz/ from the library sources themselves (never the gcc
# objects), with -fsanitize=fuzzer,address,undefined. Nothing here is part of
# `make` (all): the fuzzers build for `make fuzz` / `make fuzz-build` and for
# tests/integration/fuzz-smoke.sh. See docs/fuzzing.md.
#
#   make fuzz                       build, then run every target FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=600 FUZZ_RUN="blockdev boot"
#   make fuzz-build                 build only (build/fuzz/bin/fuzz_<target>)

FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := blockdev boot vmm_config netdev_config netfilter kfilter snapshot etcd_reply \
                image_copy
FUZZ_RUN     ?= $(FUZZ_TARGETS)
FUZZERS      := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/bin/fuzz_%)

FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
# Library code is gated by the gcc build's -Werror; clang warns about a few
# things gcc does not on x86 (-Wcast-align is a no-op there), so here library
# warnings are shown, not fatal. The harnesses themselves build with -Werror.
FUZZ_LIB_WARNINGS := $(WARNINGS) -Wno-error -Wno-cast-align \
                     -Wno-gnu-variable-sized-type-not-at-end
# Headers of the libraries the sources use (libnl, jansson): evaluated once, on use.
FUZZ_PKG_CFLAGS = $(eval FUZZ_PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags libnl-route-3.0 \
                  jansson))$(FUZZ_PKG_CFLAGS)
FUZZ_CFLAGS = -O1 -g -std=gnu11 -D_GNU_SOURCE -Iinclude -MMD -MP -fno-strict-aliasing \
              $(FUZZ_SANITIZE) -fsanitize=fuzzer-no-link $(FUZZ_PKG_CFLAGS)
FUZZ_LDFLAGS := $(FUZZ_SANITIZE) -fsanitize=fuzzer

# The libraries, from the same sources as build/lib/*.a (the lists in
# blockdev/, vmm/ and netdev/module.mk, which are read after this file: hence
# the second expansion).
.SECONDEXPANSION:
$(FUZZ_DIR)/lib/libherd-blockdev.a: $$(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$$(BLOCKDEV_SRCS))
$(FUZZ_DIR)/lib/libherd-vmm.a: $$(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$$(VMM_LIB_SRCS))
$(FUZZ_DIR)/lib/libherd-netdev.a: $$(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$$(NETDEV_SRCS))
$(FUZZ_DIR)/lib/libherd-ctl.a: $$(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$$(CTL_LIB_SRCS))

$(FUZZ_DIR)/lib/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	@$(AR) rcs $@ $^

$(FUZZ_DIR)/obj/%.o: FUZZ_WARN = $(FUZZ_LIB_WARNINGS)
$(FUZZ_DIR)/obj/tests/fuzz/%.o: FUZZ_WARN = $(WARNINGS)
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_WARN) -c -o $@ $<

# Which library (and link flags, from the library's module.mk) each target needs.
$(FUZZ_DIR)/bin/fuzz_blockdev: $(FUZZ_DIR)/lib/libherd-blockdev.a
$(FUZZ_DIR)/bin/fuzz_blockdev: FUZZ_LIBS = $(BLOCKDEV_LDLIBS)
$(FUZZ_DIR)/bin/fuzz_boot $(FUZZ_DIR)/bin/fuzz_vmm_config $(FUZZ_DIR)/bin/fuzz_snapshot: $(FUZZ_DIR)/lib/libherd-vmm.a
$(FUZZ_DIR)/bin/fuzz_boot $(FUZZ_DIR)/bin/fuzz_vmm_config $(FUZZ_DIR)/bin/fuzz_snapshot: FUZZ_LIBS = $(VMM_LDLIBS)
$(FUZZ_DIR)/bin/fuzz_netdev_config $(FUZZ_DIR)/bin/fuzz_netfilter $(FUZZ_DIR)/bin/fuzz_kfilter: $(FUZZ_DIR)/lib/libherd-netdev.a
$(FUZZ_DIR)/bin/fuzz_netdev_config $(FUZZ_DIR)/bin/fuzz_netfilter $(FUZZ_DIR)/bin/fuzz_kfilter: FUZZ_LIBS = $(NETDEV_LDLIBS)
$(FUZZ_DIR)/bin/fuzz_etcd_reply $(FUZZ_DIR)/bin/fuzz_image_copy: $(FUZZ_DIR)/lib/libherd-ctl.a
$(FUZZ_DIR)/bin/fuzz_etcd_reply $(FUZZ_DIR)/bin/fuzz_image_copy: FUZZ_LIBS = $(CTL_LIB_LDLIBS)

$(FUZZERS): $(FUZZ_DIR)/bin/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o
	@mkdir -p $(dir $@)
	@echo "  FUZZLD  $@"
	@$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(FUZZ_LIBS)

.PHONY: fuzz-build
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o)

fuzz-build: $(FUZZERS)

fuzz: $(FUZZERS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run $(FUZZ_RUN)

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
