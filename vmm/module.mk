# herd-vmm: the per-guest VMM, and its unit tests.

VMM_LIB_SRCS := vmm/log.c vmm/guest_mem.c vmm/bus.c vmm/kvm.c vmm/vcpu.c vmm/vm.c \
                vmm/config.c vmm/x86/e820.c vmm/x86/mptable.c vmm/x86/acpi.c vmm/x86/aml.c vmm/x86/cpuid.c \
                vmm/x86/boot_cpu.c vmm/boot/boot.c vmm/boot/linux.c vmm/boot/pvh.c \
                vmm/dev/serial.c vmm/dev/i8042.c vmm/dev/debugport.c vmm/dev/acpi_power.c vmm/dev/acpi_ged.c vmm/pci.c \
                vmm/device_config.c vmm/virtio/iov.c vmm/virtio/virtq.c vmm/virtio/pci.c \
                vmm/virtio/blk.c vmm/virtio/net.c vmm/virtio/vhost_net.c \
                vmm/control.c vmm/control_server.c vmm/control_vm.c \
                vmm/jail.c vmm/seccomp_policy.c \
                vmm/snapshot/format.c vmm/snapshot/kvm_state.c vmm/vm_snapshot.c vmm/file_io.c
VMM_LIB_OBJS := $(VMM_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
VMM_LIB      := $(BUILD)/lib/libherd-vmm.a
# herd-vmm links the block and network libraries after its own.
VMM_LDLIBS   = $(BLOCKDEV_LIB) $(NETDEV_LIB) $(BLOCKDEV_LDLIBS) $(NETDEV_LDLIBS) -ljansson -lseccomp -lcap-ng -lpthread

LIBS += $(VMM_LIB)
BINS += $(BUILD)/bin/herd-vmm

$(VMM_LIB): $(VMM_LIB_OBJS)

$(BUILD)/bin/herd-vmm: $(BUILD)/obj/vmm/main.o $(VMM_LIB) $(BLOCKDEV_LIB) $(NETDEV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LDLIBS) $(LDLIBS)

# The test build of herd-vmm: the same program with vmm/jail.c compiled with
# HERD_TEST_HOOKS (HERD_TEST_FORBIDDEN_SYSCALL=<thread class> makes that
# thread call mount once confined; tests/integration/vmm-jail.sh). Its
# object comes before the library, so the library's jail.o is never linked
# in; build/bin/herd-vmm has no hook.
VMM_HOOKS_BIN := $(BUILD)/tests/bin/herd-vmm-hooks
all: $(VMM_HOOKS_BIN)
$(BUILD)/obj/vmm/jail-hooks.o: vmm/jail.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DHERD_TEST_HOOKS -c -o $@ $<
# HERD_TEST_FORBIDDEN_URING=<ops|all> attacks a disk's io_uring from the
# thread serving the guest's first disk request: jail.c parses it, the
# engine (blockdev/io_uring.c with HERD_TEST_HOOKS, linked before the
# library likewise) runs it; tests/integration/escape-uring.sh.
$(BUILD)/obj/blockdev/io_uring-hooks.o: blockdev/io_uring.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DHERD_TEST_HOOKS -c -o $@ $<
$(VMM_HOOKS_BIN): $(BUILD)/obj/vmm/main.o $(BUILD)/obj/vmm/jail-hooks.o \
                  $(BUILD)/obj/blockdev/io_uring-hooks.o $(VMM_LIB) $(BLOCKDEV_LIB) $(NETDEV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LDLIBS) $(LDLIBS)

# The io_uring restrictions without KVM: an engine on a temporary image, the
# same attacks, and a control ring without restrictions (tests/unit).
URING_UNIT_TEST := $(BUILD)/tests/unit/test_uring_restrict
UNIT_TESTS += $(URING_UNIT_TEST)
$(BUILD)/obj/tests/unit/test_uring_restrict.o: CFLAGS += -DHERD_TEST_HOOKS
$(URING_UNIT_TEST): $(BUILD)/obj/tests/unit/test_uring_restrict.o \
                    $(BUILD)/obj/blockdev/io_uring-hooks.o $(BLOCKDEV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BLOCKDEV_LDLIBS) -lcmocka $(LDLIBS)

# Unit tests: one cmocka program per concept, linked against the VMM library.
# Only the ones whose source exists are built, so the list can lead the code.
VMM_UNIT_TESTS := test_e820 test_mptable test_cpuid test_boot_pvh test_boot_linux \
                  test_boot_cpu test_serial test_i8042 test_bus test_vmm_config \
                  test_guest_mem test_debugport test_acpi test_aml test_acpi_power test_acpi_ged test_virtio_net \
                  test_iov test_device_config test_virtq test_pci test_virtio_pci test_virtio_pci_window \
                  test_virtio_net_tx \
                  test_control test_control_server test_log_ratelimit test_snapshot_format
VMM_UNIT_TESTS := $(filter $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/*.c)),$(VMM_UNIT_TESTS))
VMM_UNIT_BINS  := $(VMM_UNIT_TESTS:%=$(BUILD)/tests/unit/%)
UNIT_TESTS += $(VMM_UNIT_BINS)

$(VMM_UNIT_BINS): $(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/tests/unit/support.o \
                 $(BUILD)/obj/tests/unit/virtio_driver.o $(VMM_LIB) $(BLOCKDEV_LIB) $(NETDEV_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(VMM_LDLIBS) $(LDLIBS)

# Test helper for tests/integration/vmm-control.sh (a socat stand-in).
VMM_TEST_BINS := $(BUILD)/tests/bin/control-client
all: $(VMM_TEST_BINS)
$(BUILD)/tests/bin/control-client: $(BUILD)/obj/tests/bin/control-client.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
