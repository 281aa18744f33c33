/*
 * The VM as KVM sees it: /dev/kvm, the VM file descriptor, RAM slots, the
 * in-kernel interrupt controllers. Everything that needs a KVM capability
 * checks it here first, so a host that lacks one gets an error naming it
 * instead of a failed ioctl later.
 */
#ifndef HERD_KVM_H
#define HERD_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "herd/error.h"
#include "herd/guest_mem.h"

#define KVM_IOAPIC_PINS   24
#define KVM_MAX_MSI_ROUTES 512

struct kvm_msi_route {
    uint64_t addr;
    uint32_t data;
    bool used;
};

struct kvm {
    int dev_fd;     /* /dev/kvm */
    int vm_fd;
    int run_size;   /* bytes of each vCPU's kvm_run mapping */
    int max_vcpus;
    bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER: the LAPIC has TSC-deadline mode */
    /* GSI routing: KVM_SET_GSI_ROUTING replaces the whole table, so herd-vmm
     * keeps it (the default IRQ chip routes plus one MSI route per vector). */
    pthread_mutex_t routes_lock;
    struct kvm_msi_route msi[KVM_MAX_MSI_ROUTES]; /* GSI = KVM_IOAPIC_PINS + index */
};

/* Opens /dev/kvm (path may be NULL for the default), checks the API version
 * and every capability herd-vmm relies on. On failure writes a one-line
 * reason into err and returns a negative errno. */
int kvm_open(struct kvm *kvm, const char *path, struct herd_err *err);

/* Creates the VM with its in-kernel IRQ chip (PIC, IOAPIC, LAPICs) and PIT,
 * and registers guest RAM. */
int kvm_create_vm(struct kvm *kvm, const struct guest_mem *gm, struct herd_err *err);

void kvm_close(struct kvm *kvm);

/* Raises or lowers an interrupt line (GSI) of the in-kernel IRQ chip. */
int kvm_irq_line(const struct kvm *kvm, unsigned gsi, int level);

/* Reserves a GSI for an MSI route (address/data set later); -ENOSPC. */
int kvm_msi_gsi_alloc(struct kvm *kvm);
/* Points an MSI GSI at (addr, data) and commits the routing table. */
int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t addr, uint32_t data);
void kvm_msi_gsi_free(struct kvm *kvm, unsigned gsi);

/* KVM_IRQFD: writing to `fd` raises `gsi`. */
int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool assign);
/* KVM_IOEVENTFD: a guest write to MMIO [addr, addr+len) signals `fd`
 * without leaving the kernel (len 0: any width). */
int kvm_ioeventfd(const struct kvm *kvm, int fd, uint64_t addr, unsigned len, bool assign);

/* KVM_GET_SUPPORTED_CPUID into a caller buffer of `max` entries; returns the
 * number of entries or a negative errno. */
int kvm_supported_cpuid(const struct kvm *kvm, struct kvm_cpuid_entry2 *entries, unsigned max);

/* The capabilities kvm_open insists on, for --help and error messages. */
struct kvm_required_cap {
    int cap;
    const char *name;
    const char *why;
};
extern const struct kvm_required_cap kvm_required_caps[];
extern const unsigned kvm_nr_required_caps;

#endif
