/*
 * The boot vCPU's first state for each boot mode: the GDT and identity page
 * tables written into guest memory, and the segment, control and general
 * registers KVM is given. Kept apart from the vCPU run loop so it can be
 * unit-tested without /dev/kvm.
 */
#ifndef HERD_BOOT_CPU_H
#define HERD_BOOT_CPU_H

#include <linux/kvm.h>

#include "herd/boot.h"
#include "herd/guest_mem.h"

/* GDT selectors (the Linux boot protocol wants __BOOT_CS=0x10, __BOOT_DS=0x18). */
#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA   0x18
#define BOOT_SEL_TSS    0x20

#define X86_CR0_PE  (1ULL << 0)
#define X86_CR0_ET  (1ULL << 4)
#define X86_CR0_NE  (1ULL << 5)
#define X86_CR0_PG  (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)

/* Writes the boot GDT and the page tables identity-mapping 0-4 GiB. */
int boot_cpu_write_tables(const struct guest_mem *gm);

/* Fills sregs (which should hold KVM's current values) for the mode. */
void boot_cpu_sregs(const struct boot_entry *entry, struct kvm_sregs *sregs);

/* Fills regs for the mode (rip, rflags, and ebx or rsi). */
void boot_cpu_regs(const struct boot_entry *entry, struct kvm_regs *regs);

/* Encodes a GDT descriptor from KVM's segment view (exposed for tests). */
uint64_t boot_cpu_gdt_entry(const struct kvm_segment *seg);

#endif
