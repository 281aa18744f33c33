/*
 * The VM as KVM sees it: /dev/kvm, the VM file descriptor, RAM slots, the
 * in-kernel interrupt controllers. Everything that needs a KVM capability
 * checks it here first, so a host that lacks one gets an error naming it
 * instead of a failed ioctl later.
 */
#ifndef HERD_KVM_H
#define HERD_KVM_H

#include <linux/kvm.h>
#include <stdint.h>

#include "herd/guest_mem.h"

struct kvm {
    int dev_fd;     /* /dev/kvm */
    int vm_fd;
    int run_size;   /* bytes of each vCPU's kvm_run mapping */
    int max_vcpus;
};

/* Opens /dev/kvm (path may be NULL for the default), checks the API version
 * and every capability herd-vmm relies on. On failure writes a one-line
 * reason into err and returns a negative errno. */
int kvm_open(struct kvm *kvm, const char *path, char *err, size_t errlen);

/* Creates the VM with its in-kernel IRQ chip (PIC, IOAPIC, LAPICs) and PIT,
 * and registers guest RAM. */
int kvm_create_vm(struct kvm *kvm, const struct guest_mem *gm, char *err, size_t errlen);

void kvm_close(struct kvm *kvm);

/* Raises or lowers an interrupt line (GSI) of the in-kernel IRQ chip. */
int kvm_irq_line(const struct kvm *kvm, unsigned gsi, int level);

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
