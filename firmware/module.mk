# firmware/: herd-probe, the freestanding test guest.
#
# Always built into build/firmware (whatever $(BUILD)/SAN say: the guest is
# the same for both trees) with its own flags: freestanding, no sanitizers,
# no red zone, general registers only, linked at 1 MiB by probe.ld.
#   build/firmware/herd-probe.elf      PVH ELF (XEN_ELFNOTE_PHYS32_ENTRY)
#   build/firmware/herd-probe.bzImage  the same code behind a Linux setup header

FW_OUT   := build/firmware
FW_CC    ?= gcc
FW_CFLAGS := -std=gnu11 -O2 -g -m64 -ffreestanding -nostdlib -fno-pic -fno-pie \
             -mno-red-zone -mgeneral-regs-only -mcmodel=small \
             -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables \
             -fcf-protection=none -fno-tree-loop-distribute-patterns \
             -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wmissing-prototypes \
             -Wstrict-prototypes -Wvla -Wundef \
             -Ifirmware -Iinclude -MMD -MP
FW_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,firmware/probe.ld -Wl,--build-id=none \
              -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

FW_SRCS := firmware/entry.S firmware/tables.S firmware/cpl0.S \
           firmware/main.c firmware/lib.c firmware/serial.c firmware/bootinfo.c \
           firmware/cmdline.c firmware/acpi_mp.c firmware/apic.c \
           firmware/tests_boot.c firmware/tests_serial.c firmware/tests_cpuid.c \
           firmware/tests_timer.c firmware/tests_crash.c \
           firmware/tsc.c firmware/dma.c firmware/pci.c firmware/virtqueue.c firmware/virtio_pci.c \
           firmware/virtio_blk.c firmware/virtio_net.c \
           firmware/tests_pci.c firmware/tests_blk.c firmware/tests_net.c firmware/tests_hostile.c \
           firmware/tests_msix.c firmware/tests_flood.c firmware/tests_ticks.c
FW_OBJS := $(patsubst firmware/%,$(FW_OUT)/obj/%.o,$(FW_SRCS))

FIRMWARE += $(FW_OUT)/herd-probe.elf $(FW_OUT)/herd-probe.bzImage $(FW_OUT)/mkpattern

$(FW_OUT)/obj/%.c.o: firmware/%.c
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) -c -o $@ $<

$(FW_OUT)/obj/%.S.o: firmware/%.S
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) -c -o $@ $<

$(FW_OUT)/herd-probe.elf: $(FW_OBJS) firmware/probe.ld
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) $(FW_LDFLAGS) -o $@ $(FW_OBJS)

# Host tool: plain host compiler, no project CFLAGS (no sanitizers needed).
$(FW_OUT)/mkbzimage: firmware/mkbzimage.c
	@mkdir -p $(dir $@)
	$(FW_CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

$(FW_OUT)/mkpattern: firmware/mkpattern.c firmware/pattern.h
	@mkdir -p $(dir $@)
	$(FW_CC) -std=gnu11 -O2 -Wall -Wextra -Werror -Ifirmware -o $@ $<

$(FW_OUT)/herd-probe.bzImage: $(FW_OUT)/herd-probe.elf $(FW_OUT)/mkbzimage
	$(FW_OUT)/mkbzimage $< $@

-include $(wildcard $(FW_OUT)/obj/*.d)
