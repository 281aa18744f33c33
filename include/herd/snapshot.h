/*
 * herd-vmm's snapshot file (docs/snapshot.md): one regular file holding a
 * paused guest's state and its RAM.
 *
 *   offset 0          header (struct snap_header), CRC-32 over itself
 *   state_off (4 KiB) sections: {type, index, length, payload padded to 8},
 *                     CRC-32 over all of them (state_crc)
 *   ram_off (2 MiB)   guest RAM, byte for byte (all-zero pages are holes)
 *
 * RAM starts 2 MiB-aligned so that a restore can map it MAP_PRIVATE straight
 * from the file: clones of one snapshot share every page they do not write.
 *
 * This module only writes and checks the container; what a section holds is
 * the business of the code that saves it (vmm/snapshot/). A reader trusts
 * nothing: every offset, length, count and checksum is checked before any
 * section is handed out, and a file that fails a check is refused with the
 * reason.
 */
#ifndef HERD_SNAPSHOT_H
#define HERD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "herd/error.h"

#define SNAP_MAGIC         "HERDSNAP"
#define SNAP_VERSION       1
#define SNAP_STATE_OFF     4096ULL
#define SNAP_RAM_ALIGN     (2ULL << 20)
#define SNAP_STATE_MAX     (64ULL << 20) /* far more than 64 vCPUs and every device */
#define SNAP_SECTIONS_MAX  4096

/* Section types. The index tells instances apart (vCPU number, disk
 * number, ...). */
enum snap_section_type {
    SNAP_S_CONFIG = 1,     /* struct snap_config: what the guest was built with */
    SNAP_S_VCPU_REGS,      /* struct kvm_regs */
    SNAP_S_VCPU_SREGS,     /* struct kvm_sregs */
    SNAP_S_VCPU_XSAVE,     /* struct kvm_xsave (KVM_GET_XSAVE's 4 KiB) */
    SNAP_S_VCPU_XCRS,      /* struct kvm_xcrs */
    SNAP_S_VCPU_MSRS,      /* {u32 index, u32 pad, u64 value}[] */
    SNAP_S_VCPU_LAPIC,     /* struct kvm_lapic_state */
    SNAP_S_VCPU_EVENTS,    /* struct kvm_vcpu_events */
    SNAP_S_VCPU_MP_STATE,  /* struct kvm_mp_state */
    SNAP_S_VCPU_DEBUGREGS, /* struct kvm_debugregs */
    SNAP_S_VCPU_CPUID,     /* struct kvm_cpuid_entry2[]: what the vCPU was given */
    SNAP_S_IRQCHIP,        /* struct kvm_irqchip; index = KVM_IRQCHIP_* */
    SNAP_S_PIT,            /* struct kvm_pit_state2 */
    SNAP_S_CLOCK,          /* struct kvm_clock_data */
    SNAP_S_SERIAL,         /* struct serial_state */
    SNAP_S_I8042,          /* struct i8042_state */
    SNAP_S_GED,            /* struct acpi_ged_state */
    SNAP_S_PCI_CONFIG,     /* a PCI function's 256-byte config space; index = slot */
    SNAP_S_VIRTIO,         /* struct virtio_dev_state + queues; index = slot */
    SNAP_S_VIRTIO_NET,     /* struct virtio_net_state; index = NIC number */
    SNAP_S_MAX
};

struct snap_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t state_off, state_len;
    uint32_t state_crc;
    uint32_t nr_sections;
    uint64_t ram_off, ram_size;
    uint64_t file_size;
    char producer[32];    /* "herd-vmm <version>", NUL-padded */
    uint8_t reserved[40];
    uint32_t flags;       /* none defined: a reader refuses any */
    uint32_t header_crc;  /* CRC-32 of the header with this field 0 */
};

struct snap_section {
    uint32_t type;
    uint32_t index;
    uint64_t len;
};

/* The machine a snapshot was taken of; a restore must build the same. */
struct snap_config {
    uint32_t nr_vcpus;
    uint32_t nr_disks, nr_nics;
    uint32_t pad;
    uint64_t mem_size;
    uint64_t nic_queues[8]; /* queue pairs per NIC */
    uint8_t reserved[64];
};

/* ---- writing ---------------------------------------------------------------- */

struct snap_writer {
    uint8_t *buf;
    size_t len, cap;
    uint32_t nr_sections;
    int error; /* first failure (negative errno), reported by snap_write */
};

void snap_writer_init(struct snap_writer *w);
void snap_writer_free(struct snap_writer *w);
/* Appends one section (copies `len` bytes). Failures are remembered. */
void snap_add(struct snap_writer *w, uint32_t type, uint32_t index, const void *data, size_t len);

/* Writes header, sections and `ram_size` bytes of RAM to `fd`, which must be
 * an empty regular file opened for writing. All-zero 4 KiB pages of RAM are
 * left as holes. 0, or a negative errno with the reason in err. */
int snap_write(struct snap_writer *w, int fd, const void *ram, uint64_t ram_size,
               struct herd_err *err);

/* ---- reading ---------------------------------------------------------------- */

struct snap_reader {
    struct snap_header hdr;
    uint8_t *state; /* state_len bytes, checked */
    struct {
        uint32_t type, index;
        uint64_t len;
        const uint8_t *data;
    } *sections;
    uint32_t nr_sections;
};

/* Reads and checks the header and every section of the snapshot in `fd`.
 * 0, or a negative errno with the reason in err (the reader is then empty). */
int snap_read(struct snap_reader *r, int fd, struct herd_err *err);

/* Checks a header alone (exposed for tests): `file_size` is the real size. */
int snap_check_header(const struct snap_header *h, uint64_t file_size, struct herd_err *err);

/* The section (type, index) and its length, or NULL when absent. */
const void *snap_find(const struct snap_reader *r, uint32_t type, uint32_t index, uint64_t *len);

/* Like snap_find, but the section must be exactly `len` bytes: else NULL and
 * the reason (missing, or its size) in err. */
const void *snap_get(const struct snap_reader *r, uint32_t type, uint32_t index, uint64_t len,
                     const char *what, struct herd_err *err);

void snap_reader_free(struct snap_reader *r);

const char *snap_section_name(uint32_t type);

#endif
