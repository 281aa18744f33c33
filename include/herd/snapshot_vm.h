/*
 * Saving a paused guest into a snapshot file and building a guest from one
 * (docs/snapshot.md). The container is herd/snapshot.h; this is what goes in
 * it: KVM's state of every vCPU and of the VM (vmm/snapshot/kvm_state.c),
 * the devices', and RAM (vmm/vm_snapshot.c).
 */
#ifndef HERD_SNAPSHOT_VM_H
#define HERD_SNAPSHOT_VM_H

#include "herd/error.h"
#include "herd/kvm.h"
#include "herd/snapshot.h"
#include "herd/vcpu.h"

struct vm;

/* One vCPU's state (it must be out of KVM_RUN): CPUID, registers, special
 * registers, XSAVE, XCRs, debug registers, LAPIC, MSRs, events, MP state. */
int snap_save_vcpu(struct snap_writer *w, const struct vcpu *v, const struct kvm *kvm,
                   struct herd_err *err);
/* Puts it back into a vCPU created the same way; refuses a CPUID that
 * differs from what this host gave the new vCPU. */
int snap_load_vcpu(const struct snap_reader *r, const struct vcpu *v, struct herd_err *err);

/* The PICs, the IOAPIC, the PIT and the KVM clock. */
int snap_save_vm(struct snap_writer *w, const struct kvm *kvm, struct herd_err *err);
int snap_load_vm(const struct snap_reader *r, const struct kvm *kvm, struct herd_err *err);

/* Writes the whole guest to `fd` (an empty regular file, writable). Every
 * vCPU must be parked (control socket pause); devices are quiesced for the
 * time it takes (disk requests in flight complete first). */
int vm_snapshot(struct vm *vm, int fd, struct herd_err *err);

/* Checks that the snapshot describes the machine `vm`'s configuration
 * asks for (vCPUs, RAM, disks, NICs and their queues). */
int vm_snapshot_check_config(const struct vm *vm, const struct snap_reader *r,
                             struct herd_err *err);

/* After vm_create built the machine from the same configuration, with RAM
 * from the snapshot: puts back the VM's, the vCPUs' and the devices' state. */
int vm_restore_state(struct vm *vm, const struct snap_reader *r, struct herd_err *err);

#endif
