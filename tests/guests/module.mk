# Tiny PVH guests for the VMM's failure-path tests (triple fault, reset).
# Built freestanding like the firmware: never with host CFLAGS/sanitizers.

TEST_GUESTS := triple-fault i8042-reset echo
TEST_GUEST_ELFS := $(TEST_GUESTS:%=build/tests/guests/%.elf)
FIRMWARE += $(TEST_GUEST_ELFS)

build/tests/guests/%.elf: tests/guests/%.S tests/guests/pvh-note.S tests/guests/guest.ld
	@mkdir -p $(dir $@)
	$(CC) -c -o $@.o $<
	$(CC) -c -o $@.note.o tests/guests/pvh-note.S
	ld -m elf_x86_64 -nostdlib -T tests/guests/guest.ld -o $@ $@.o $@.note.o
	rm -f $@.o $@.note.o
