# netdev: host networking library (bridges, taps, VXLAN, userspace-path
# filters and rate limits). No KVM knowledge.

NETDEV_SRCS := netdev/role.c netdev/name.c netdev/mac.c \
               netdev/config.c netdev/validate.c netdev/nl.c netdev/bridge.c \
               netdev/vxlan.c netdev/setup.c netdev/tap.c netdev/tapclean.c \
               netdev/machost.c netdev/antispoof.c netdev/ratelimit.c \
               netdev/stats.c netdev/path.c netdev/kfilter.c netdev/kfilter_nft.c \
               netdev/veth.c netdev/fdb.c
NETDEV_OBJS := $(NETDEV_SRCS:%.c=$(BUILD)/obj/%.o)
NETDEV_LIB  := $(BUILD)/lib/libherd-netdev.a

NETDEV_CFLAGS := $(shell $(PKG_CONFIG) --cflags libnl-route-3.0 jansson)
# What a program linking libherd-netdev.a needs after it.
NETDEV_LDLIBS := $(shell $(PKG_CONFIG) --libs libnl-route-3.0 jansson)
# The kernel filter (kfilter_nft.c, and netdev_tap_cleanup which removes
# orphaned filters) also needs libnftables; herd-vmm never links those.
NETDEV_NFT_LDLIBS := $(shell $(PKG_CONFIG) --libs libnftables)

LIBS += $(NETDEV_LIB)
$(NETDEV_LIB): $(NETDEV_OBJS)
# Messages and config paths are cut at their buffer size on purpose.
$(NETDEV_OBJS): CFLAGS += $(NETDEV_CFLAGS) -Wno-format-truncation

# Unit tests (pure logic), one program each.
NETDEV_UNIT := names mac config antispoof ratelimit stats kfilter
UNIT_TESTS += $(NETDEV_UNIT:%=$(BUILD)/tests/unit/test_netdev_%)

$(BUILD)/tests/unit/test_netdev_%: $(BUILD)/obj/tests/unit/test_netdev_%.o $(NETDEV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(NETDEV_LDLIBS) -lcmocka $(LDLIBS)

# Test helpers for tests/integration/netdev-*.sh (not installed programs).
NETDEV_TEST_BINS := $(BUILD)/tests/bin/netdev-ctl $(BUILD)/tests/bin/netdev-tapio
all: $(NETDEV_TEST_BINS)
$(BUILD)/obj/tests/bin/%.o: CFLAGS += $(NETDEV_CFLAGS)

$(BUILD)/tests/bin/netdev-%: $(BUILD)/obj/tests/bin/netdev-%.o $(NETDEV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(NETDEV_LDLIBS) $(NETDEV_NFT_LDLIBS) -lpthread $(LDLIBS)

# Keep the objects of pattern-built programs (make would delete them).
.SECONDARY: $(NETDEV_UNIT:%=$(BUILD)/obj/tests/unit/test_netdev_%.o) \
            $(NETDEV_TEST_BINS:$(BUILD)/tests/bin/%=$(BUILD)/obj/tests/bin/%.o)
