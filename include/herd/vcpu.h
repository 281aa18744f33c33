/*
 * One virtual CPU: its KVM file descriptor and kvm_run page, its first
 * state (CPUID, MSRs, LAPIC, registers) and its run loop, which hands port
 * and MMIO exits to the buses and turns fatal exits into a stop request
 * carrying the registers.
 */
#ifndef HERD_VCPU_H
#define HERD_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>

#include "herd/boot.h"
#include "herd/bus.h"
#include "herd/kvm.h"
#include "herd/vm_stop.h"

/* Exit statuses herd-vmm uses for itself (debug-exit statuses are odd). */
#define VMM_EXIT_OK          0
#define VMM_EXIT_ERROR       2
#define VMM_EXIT_GUEST_CRASH 4

/* What the run loop needs from the VM around it. */
struct vcpu_env {
    const struct bus *pio;
    const struct bus *mmio;
    struct vm_stopper stopper;
    int *stopping; /* set (atomically) once the VM is ending */
};

struct vcpu {
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    int thread_started;
    const struct vcpu_env *env;
    unsigned long exits; /* exits handled in userspace, for stats */
};

int vcpu_create(struct vcpu *v, const struct kvm *kvm, unsigned id, const struct vcpu_env *env,
                char *err, size_t errlen);
void vcpu_destroy(struct vcpu *v);

/* CPUID (filtered for this vCPU), MSRs, FPU and LAPIC LINT pins. */
int vcpu_init_cpu(struct vcpu *v, const struct kvm_cpuid_entry2 *supported, unsigned nr,
                  unsigned nr_vcpus, char *err, size_t errlen);

/* Registers for the boot vCPU (application processors wait for INIT/SIPI). */
int vcpu_init_boot_regs(struct vcpu *v, const struct boot_entry *entry, char *err,
                        size_t errlen);

/* Starts the run loop on its own thread / makes it leave KVM_RUN soon. */
int vcpu_start(struct vcpu *v);
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

/* Formats the registers (several lines) for an error message. */
void vcpu_dump_regs(const struct vcpu *v, char *buf, size_t len);

/* Must be called once before any vcpu_start: installs the kick signal. */
int vcpu_setup_signals(void);

#endif
