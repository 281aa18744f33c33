/*
 * A whole guest as herd-vmm runs it: KVM VM, RAM, boot, devices, vCPUs, and
 * the rules for how it ends (first stop request wins and gives the exit
 * status). main() is a thin shell around vm_create / vm_run / vm_destroy.
 */
#ifndef HERD_VM_H
#define HERD_VM_H

#include <pthread.h>

#include "herd/acpi_ged.h"
#include "herd/bus.h"
#include "herd/debugport.h"
#include "herd/error.h"
#include "herd/guest_mem.h"
#include "herd/i8042.h"
#include "herd/kvm.h"
#include "herd/pci.h"
#include "herd/serial.h"
#include "herd/vcpu.h"
#include "herd/vmm_config.h"

#define VM_ERR_LEN 512

struct virtio_blk;
struct virtio_net;

struct vm {
    const struct vmm_config *cfg;
    struct kvm kvm;
    struct guest_mem mem;
    struct bus pio, mmio;
    struct serial serial;
    struct i8042 i8042;
    struct debugport debugport;
    struct acpi_ged ged; /* the power button's event device */
    struct pci_bus pci;
    bool pci_ready;
    struct virtio_blk *disks[VMM_MAX_DISKS];
    struct virtio_net *nics[VMM_MAX_NICS];
    struct vcpu_env env;
    struct vcpu_pause pause; /* the control socket's pause/resume */
    struct vcpu *vcpus;
    unsigned nr_vcpus;
    int serial_fd;      /* output fd we opened (file mode), or -1 */
    int stop_fd;        /* eventfd written by the first stop request */
    int stopping;
    int exit_status;
    char stop_reason[128];
    pthread_mutex_t stop_lock;
    int devices_ready;
};

/* Builds everything up to the point where vCPUs could run. On failure the
 * VM is left safe to vm_destroy and err says what went wrong. */
int vm_create(struct vm *vm, const struct vmm_config *cfg, struct herd_err *err);

/* Runs until the guest or a signal ends it; returns herd-vmm's exit status. */
int vm_run(struct vm *vm);

void vm_destroy(struct vm *vm);

/* Presses the ACPI power button: the guest's OS decides what to do (a
 * Linux with systemd powers off through ACPI S5). 0, or -ESHUTDOWN when the
 * VM is already stopping. */
int vm_press_power_button(struct vm *vm);

/* Ends the VM with `status` unless something else already did. */
void vm_request_stop(struct vm *vm, int status, const char *reason);

#endif
