/*
 * The ACPI power-control ports of herd-vmm's hardware-reduced platform: the
 * FADT's sleep control and sleep status registers and its reset register.
 * A guest powers off by writing SLP_TYP 5 (the \_S5 value in the DSDT) with
 * SLP_EN to the sleep control register, and resets by writing the reset
 * value to the reset register; both end herd-vmm with status 0.
 *
 * Every other value, width and offset is ignored (reads return 0), so a
 * hostile guest can do nothing here but end its own VM.
 *
 * The reset vector: Linux on a hardware-reduced platform reboots through
 * EFI, then through the BIOS (real mode, a jump to F000:FFF0), before it
 * would try anything else; herd-vmm has neither, so the 16 bytes at
 * 0xffff0 hold real-mode code that writes its own value to the reset
 * register (so the log tells the two paths apart), which is what a real
 * machine's reset vector amounts to here.
 */
#ifndef HERD_ACPI_POWER_H
#define HERD_ACPI_POWER_H

#include <stdint.h>

#include "herd/bus.h"
#include "herd/guest_mem.h"
#include "herd/vm_stop.h"

#define ACPI_POWER_PORT        0x600 /* four ports, 0x600-0x603 */
#define ACPI_POWER_PORTS       4
#define ACPI_SLEEP_CONTROL_PORT (ACPI_POWER_PORT + 0)
#define ACPI_SLEEP_STATUS_PORT  (ACPI_POWER_PORT + 1)
#define ACPI_RESET_PORT         (ACPI_POWER_PORT + 2)
#define ACPI_RESET_VALUE        0x01 /* the FADT's RESET_VALUE */
#define ACPI_RESET_VECTOR_VALUE 0x02 /* what the reset-vector code writes */

/* Sleep control register (ACPI 6.5, 4.8.3.7): SLP_TYP in bits 2-4,
 * SLP_EN in bit 5. */
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK  0x1c
#define ACPI_SLP_EN        0x20
#define ACPI_S5_SLP_TYP    5

#define ACPI_RESET_VECTOR 0xffff0ULL /* F000:FFF0 */

/* The stopper must outlive the registration (the bus keeps a pointer). */
int acpi_power_register(struct bus *pio, const struct vm_stopper *stopper);

/* What one byte written to `port` does: 1 if it ends the VM (and then
 * *reason says how), 0 if it is ignored. */
int acpi_power_decode(uint16_t port, uint8_t value, const char **reason);

/* Writes the reset-vector code at ACPI_RESET_VECTOR; 0 or -EFAULT. */
int acpi_power_write_reset_vector(const struct guest_mem *gm);

#endif
