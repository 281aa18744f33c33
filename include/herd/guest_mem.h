/*
 * Guest RAM: one memfd, mapped once into herd-vmm, split into the slots KVM
 * sees (below the 32-bit MMIO hole, and above 4 GiB for the rest).
 *
 * Every guest-physical address that comes from a guest or an image goes
 * through guest_mem_ptr(), which refuses ranges that are not wholly inside
 * one RAM slot. The loaders and tests can also build a guest_mem over a plain
 * buffer (guest_mem_init_buffer) so they run without /dev/kvm.
 */
#ifndef HERD_GUEST_MEM_H
#define HERD_GUEST_MEM_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define GUEST_MEM_MAX_SLOTS 2

struct guest_mem_slot {
    uint64_t gpa;   /* first guest-physical address */
    uint64_t size;  /* bytes */
    uint8_t *host;  /* where it is mapped in herd-vmm */
};

struct guest_mem {
    uint64_t size;      /* total RAM the user asked for */
    uint8_t *base;      /* host mapping of the whole memfd */
    int memfd;          /* -1 for buffer-backed memory */
    int own_buffer;     /* base came from guest_mem_create: unmap on destroy */
    unsigned nr_slots;
    struct guest_mem_slot slots[GUEST_MEM_MAX_SLOTS];
};

/* Creates memfd-backed RAM of `size` bytes (multiple of 4 KiB, >= 2 MiB). */
int guest_mem_create(struct guest_mem *gm, uint64_t size);

/* RAM from a snapshot: `size` bytes of `fd` at `offset` (page-aligned).
 * copy false: the file mapped MAP_PRIVATE, so every guest restored from it
 * shares the pages it has not written; copy true: memfd-backed RAM filled
 * from the file. The caller may close fd afterwards. */
int guest_mem_create_from_file(struct guest_mem *gm, uint64_t size, int fd, uint64_t offset,
                               bool copy);

/* Lays the slots out over a caller-owned buffer (unit tests, tools). */
int guest_mem_init_buffer(struct guest_mem *gm, void *buf, uint64_t size);

void guest_mem_destroy(struct guest_mem *gm);

/* Host pointer for [gpa, gpa+len) if it lies inside one slot, else NULL. */
void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copies into guest memory; -EFAULT if the range is not RAM. */
int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len);

/* Highest RAM address below the MMIO hole (end of the low slot). */
uint64_t guest_mem_low_end(const struct guest_mem *gm);

#endif
