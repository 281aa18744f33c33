# herd-img: the image tool.
HERD_IMG_SRCS := $(wildcard tools/herd-img/*.c)
HERD_IMG_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(HERD_IMG_SRCS))
BINS += $(BUILD)/bin/herd-img

$(BUILD)/bin/herd-img: $(HERD_IMG_OBJS) $(BUILD)/lib/libherd-blockdev.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BLOCKDEV_LDLIBS) -lm $(LDLIBS)
