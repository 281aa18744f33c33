# blockdev: image formats and I/O (raw, qcow2, io_uring, OFD locks, NBD).
BLOCKDEV_SRCS := $(wildcard blockdev/*.c)
BLOCKDEV_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(BLOCKDEV_SRCS))
BLOCKDEV_LIB  := $(BUILD)/lib/libherd-blockdev.a
# libnbd is dlopen()ed on first use (blockdev/nbd.c), not linked.
BLOCKDEV_LDLIBS := -luring -lz -lzstd

LIBS += $(BLOCKDEV_LIB)
$(BLOCKDEV_LIB): $(BLOCKDEV_OBJS)

# Unit tests: tests/unit/test_blockdev*.c and test_qcow2*.c, one program each.
BLOCKDEV_TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,\
                      $(wildcard tests/unit/test_blockdev*.c tests/unit/test_qcow2*.c))
UNIT_TESTS += $(BLOCKDEV_TEST_BINS)

$(BLOCKDEV_TEST_BINS): $(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(BLOCKDEV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BLOCKDEV_LDLIBS) -lcmocka $(LDLIBS)
