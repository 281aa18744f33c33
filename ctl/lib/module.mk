# ctl/lib: pure pieces herdd and herdctl link: the range YAML spec, capacity
# planning / admission, the hash-chained audit log, IP address
# management (subnets and address pools), a range's address plan and the
# etcd v3 client (its JSON gateway over libcurl); the placement of a
# range's guests on a cluster's nodes (placement.c); parent image copies'
# published entries, HTTP ranges and SHA-256 (image_copy.c). libherd-ctl.a.

CTL_LIB_SRCS := ctl/lib/range_spec.c ctl/lib/range_addr.c ctl/lib/capacity.c ctl/lib/audit.c \
                ctl/lib/ipam.c ctl/lib/etcd.c ctl/lib/etcd_reply.c ctl/lib/placement.c \
                ctl/lib/image_copy.c
CTL_LIB_OBJS := $(CTL_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CTL_LIB      := $(BUILD)/lib/libherd-ctl.a

CTL_LIB_CFLAGS := $(shell $(PKG_CONFIG) --cflags yaml-0.1 libcrypto libcurl jansson)
# What a program linking libherd-ctl.a needs after it.
CTL_LIB_LDLIBS := $(shell $(PKG_CONFIG) --libs yaml-0.1 libcrypto libcurl jansson) -lm -lpthread

LIBS += $(CTL_LIB)
$(CTL_LIB): $(CTL_LIB_OBJS)
$(CTL_LIB_OBJS): CFLAGS += $(CTL_LIB_CFLAGS)

# Unit tests, one program each: tests/unit/test_ctl_<name>.c
CTL_LIB_UNIT := range_spec capacity audit ipam range_addr placement image_copy
CTL_LIB_UNIT_PROGS := $(CTL_LIB_UNIT:%=$(BUILD)/tests/unit/test_ctl_%)
UNIT_TESTS += $(CTL_LIB_UNIT_PROGS)

$(CTL_LIB_UNIT_PROGS): $(BUILD)/tests/unit/test_ctl_%: $(BUILD)/obj/tests/unit/test_ctl_%.o $(CTL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CTL_LIB_LDLIBS) -lcmocka $(LDLIBS)

.SECONDARY: $(CTL_LIB_UNIT:%=$(BUILD)/obj/tests/unit/test_ctl_%.o)

# The etcd client: tests/unit/test_etcd.c (the gateway's replies, hostile
# ones too) and tests/unit/test_etcd_live.c (against an etcd it starts;
# skipped without /usr/bin/etcd).
ETCD_UNIT_PROGS := $(BUILD)/tests/unit/test_etcd $(BUILD)/tests/unit/test_etcd_live
UNIT_TESTS += $(ETCD_UNIT_PROGS)
$(ETCD_UNIT_PROGS:$(BUILD)/tests/unit/%=$(BUILD)/obj/tests/unit/%.o): CFLAGS += $(CTL_LIB_CFLAGS)

$(ETCD_UNIT_PROGS): $(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(CTL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CTL_LIB_LDLIBS) -lcmocka $(LDLIBS)

.SECONDARY: $(ETCD_UNIT_PROGS:$(BUILD)/tests/unit/%=$(BUILD)/obj/tests/unit/%.o)
