/*
 * Local APIC (xAPIC MMIO at 0xfee00000) and IOAPIC (0xfec00000) access for
 * the interrupt tests. All of it runs at CPL3: the registers are ordinary
 * MMIO in user-accessible pages.
 */
#ifndef HERD_PROBE_APIC_H
#define HERD_PROBE_APIC_H

#include <stdint.h>

#define LAPIC_ID 0x20
#define LAPIC_VER 0x30
#define LAPIC_TPR 0x80
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0

#define LAPIC_SVR_ENABLE 0x100
#define LVT_MASKED (1U << 16)
#define LVT_TIMER_PERIODIC (1U << 17)

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);

/* Software-enable the LAPIC (spurious vector 0xff) and accept all
 * priorities. Idempotent. */
void lapic_enable(void);

uint32_t ioapic_read(uint32_t reg);
void ioapic_write(uint32_t reg, uint32_t v);
/* Number of redirection entries (from the version register). */
uint32_t ioapic_pins(void);
/* Route `pin` to `vector`: fixed delivery, physical dest `apic_id`,
 * active high, edge triggered, unmasked. */
void ioapic_route(uint32_t pin, uint8_t vector, uint8_t apic_id);
void ioapic_mask(uint32_t pin);

#endif
