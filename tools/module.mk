# Developer and benchmark tools that are not part of the product.

TOOLS_BINS := $(BUILD)/tools/boot-timer
BINS += $(TOOLS_BINS)

$(BUILD)/tools/boot-timer: $(BUILD)/obj/tools/boot-timer.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
