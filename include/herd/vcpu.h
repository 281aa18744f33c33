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
#include <stdbool.h>
#include <stddef.h>

#include "herd/boot.h"
#include "herd/bus.h"
#include "herd/error.h"
#include "herd/kvm.h"
#include "herd/vm_stop.h"

/* Exit statuses herd-vmm uses for itself (debug-exit statuses are odd). */
#define VMM_EXIT_OK          0
#define VMM_EXIT_ERROR       2
#define VMM_EXIT_GUEST_CRASH 4

/*
 * Pause (herd-vmm's control socket): while `requested` is set, each vCPU
 * thread parks at the top of its loop, outside KVM_RUN, on `cond`, until
 * resumed or the VM stops. `running` counts vCPU threads inside their loop,
 * `parked` those waiting; all fields under `lock` except `requested`.
 */
struct vcpu_pause {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* parked vCPUs and the pauser both wait on it */
    int requested;       /* atomic */
    unsigned running;
    unsigned parked;
};

/* What the run loop needs from the VM around it. */
struct vcpu_env {
    const struct bus *pio;
    const struct bus *mmio;
    struct vm_stopper stopper;
    int *stopping; /* set (atomically) once the VM is ending */
    struct vcpu_pause *pause; /* NULL: the VM cannot be paused */
};

struct vcpu {
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    int thread_started; /* atomic: the control thread kicks too */
    int parked;         /* under env->pause->lock */
    const struct vcpu_env *env;
    unsigned long exits; /* exits handled in userspace, for stats */
};

int vcpu_create(struct vcpu *v, const struct kvm *kvm, unsigned id, const struct vcpu_env *env,
                struct herd_err *err);
void vcpu_destroy(struct vcpu *v);

/* CPUID (filtered for this vCPU), MSRs, FPU and LAPIC LINT pins. */
int vcpu_init_cpu(struct vcpu *v, const struct kvm_cpuid_entry2 *supported, unsigned nr,
                  unsigned nr_vcpus, struct herd_err *err);

/* Registers for the boot vCPU (application processors wait for INIT/SIPI). */
int vcpu_init_boot_regs(struct vcpu *v, const struct boot_entry *entry, struct herd_err *err);

/* Starts the run loop on its own thread / makes it leave KVM_RUN soon. */
int vcpu_start(struct vcpu *v);
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

void vcpu_pause_init(struct vcpu_pause *p);
void vcpu_pause_destroy(struct vcpu_pause *p);
/* Asks every vCPU to park and waits (kicking them out of KVM_RUN again
 * every 10 ms) until every vCPU thread in its loop is parked. 0; -ESHUTDOWN
 * when the VM is stopping; -ETIMEDOUT after timeout_ms (the pause is then
 * withdrawn: the vCPUs run on). Idempotent. Not on a vCPU thread. */
int vcpu_pause_all(struct vcpu_pause *p, struct vcpu *vcpus, unsigned n, const int *stopping,
                   unsigned timeout_ms);
/* Lets parked vCPUs run again (nothing to do when not paused). */
void vcpu_resume_all(struct vcpu_pause *p);
bool vcpu_pause_requested(struct vcpu_pause *p);
/* Once the stop flag is set: wakes parked vCPUs so they see it. After this
 * returns no vcpu_pause_all() kicks a vCPU any more (safe to join them). */
void vcpu_pause_wake_for_stop(struct vcpu_pause *p);

/* Formats the registers (several lines) for an error message. */
void vcpu_dump_regs(const struct vcpu *v, char *buf, size_t len);

/* Must be called once before any vcpu_start: installs the kick signal. */
int vcpu_setup_signals(void);

#endif
