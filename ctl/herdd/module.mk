# ctl/herdd: the node daemon (herdd); ctl/herdctl: the CLI (herdctl).
# Both link libherd-ctl.a (ctl/lib); herdd also the block and network libraries.

HERDD_SRCS := ctl/herdd/main.c ctl/herdd/state.c ctl/herdd/config.c ctl/herdd/guest.c \
              ctl/herdd/control.c ctl/herdd/db.c ctl/herdd/events.c \
              ctl/herdd/audit.c ctl/herdd/templates.c ctl/herdd/vm.c ctl/herdd/supervise.c \
              ctl/herdd/node.c ctl/herdd/ranges.c ctl/herdd/api.c ctl/herdd/routes.c \
              ctl/herdd/jail.c ctl/herdd/console.c ctl/herdd/chain.c \
              ctl/herdd/vmm_argv.c ctl/herdd/addr.c ctl/herdd/seed.c \
              ctl/herdd/dhcp.c ctl/herdd/ranges_dhcp.c ctl/herdd/iso.c ctl/herdd/resdisk.c \
              ctl/herdd/snapshot.c               ctl/herdd/cluster.c \
              ctl/herdd/cluster_range.c ctl/herdd/cluster_reconcile.c \
              ctl/herdd/cluster_view.c ctl/herdd/cluster_segments.c
HERDD_SRCS += ctl/herdd/checkpoint.c
HERDD_SRCS += ctl/herdd/cluster_images.c
HERDD_OBJS := $(HERDD_SRCS:%.c=$(BUILD)/obj/%.o)
HERDD_PKGS := libmicrohttpd jansson sqlite3 yaml-0.1 libcrypto libisofs-1 libcurl
HERDD_CFLAGS = $(eval HERDD_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(HERDD_PKGS)))$(HERDD_CFLAGS)
HERDD_LDLIBS = $(eval HERDD_LDLIBS := $(shell $(PKG_CONFIG) --libs $(HERDD_PKGS)))$(HERDD_LDLIBS)

BINS += $(BUILD)/bin/herdd
# Paths and messages are cut at their buffer size on purpose.
$(HERDD_OBJS): CFLAGS += $(HERDD_CFLAGS) -Wno-format-truncation

# (library paths spelled out: ctl/lib, blockdev and netdev are read after this file)
$(BUILD)/bin/herdd: $(HERDD_OBJS) $(BUILD)/lib/libherd-ctl.a $(BUILD)/lib/libherd-blockdev.a \
                    $(BUILD)/lib/libherd-netdev.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(HERDD_LDLIBS) $(CTL_LIB_LDLIBS) $(BLOCKDEV_LDLIBS) \
	    $(NETDEV_LDLIBS) $(NETDEV_NFT_LDLIBS) -lpthread $(LDLIBS)

# Unit tests: tests/unit/test_herdd_<name>.c against herdd's own objects.
HERDD_UNIT := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_herdd_*.c))
UNIT_TESTS += $(HERDD_UNIT)
$(HERDD_UNIT:$(BUILD)/tests/unit/%=$(BUILD)/obj/tests/unit/%.o): CFLAGS += $(HERDD_CFLAGS) -Wno-format-truncation

$(BUILD)/tests/unit/test_herdd_config: $(BUILD)/obj/tests/unit/test_herdd_config.o \
                                       $(BUILD)/obj/ctl/herdd/config.o $(BUILD)/lib/libherd-netdev.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(HERDD_LDLIBS) $(NETDEV_LDLIBS) $(LDLIBS)

# herd-vmm's argv from herdd, parsed back by herd-vmm's own parser
$(BUILD)/tests/unit/test_herdd_vmm_argv: $(BUILD)/obj/tests/unit/test_herdd_vmm_argv.o \
                                         $(BUILD)/obj/ctl/herdd/vmm_argv.o \
                                         $(BUILD)/obj/ctl/herdd/config.o \
                                         $(BUILD)/lib/libherd-vmm.a $(BUILD)/lib/libherd-blockdev.a \
                                         $(BUILD)/lib/libherd-netdev.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(HERDD_LDLIBS) $(VMM_LDLIBS) $(LDLIBS)

# The route table is api.c's (its rows point at api.c's handlers): the test
# links every herdd object but main.o.
$(BUILD)/tests/unit/test_herdd_routes: $(BUILD)/obj/tests/unit/test_herdd_routes.o \
                                       $(filter-out $(BUILD)/obj/ctl/herdd/main.o,$(HERDD_OBJS)) \
                                       $(BUILD)/lib/libherd-ctl.a $(BUILD)/lib/libherd-blockdev.a \
                                       $(BUILD)/lib/libherd-netdev.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(HERDD_LDLIBS) $(CTL_LIB_LDLIBS) $(BLOCKDEV_LDLIBS) \
	    $(NETDEV_LDLIBS) $(NETDEV_NFT_LDLIBS) -lpthread $(LDLIBS)

.SECONDARY: $(HERDD_UNIT:$(BUILD)/tests/unit/%=$(BUILD)/obj/tests/unit/%.o)
