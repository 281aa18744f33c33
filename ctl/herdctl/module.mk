# ctl/herdctl: the CLI (herdctl), libcurl to herdd's unix socket.

HERDCTL_OBJS := $(BUILD)/obj/ctl/herdctl/main.o
HERDCTL_CFLAGS = $(eval HERDCTL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl jansson))$(HERDCTL_CFLAGS)
HERDCTL_LDLIBS = $(eval HERDCTL_LDLIBS := $(shell $(PKG_CONFIG) --libs libcurl jansson))$(HERDCTL_LDLIBS)

BINS += $(BUILD)/bin/herdctl
$(HERDCTL_OBJS): CFLAGS += $(HERDCTL_CFLAGS) -Wno-format-truncation

$(BUILD)/bin/herdctl: $(HERDCTL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(HERDCTL_LDLIBS) $(LDLIBS)
