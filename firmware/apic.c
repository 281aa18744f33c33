/*
 * LAPIC/IOAPIC register access for herd-probe (CPL3, MMIO). Each access is
 * an exit on the PVM host (~50 us), so the tests touch as few registers as
 * the checks need.
 */
#include "apic.h"

#include "cpl0.h"
#include "lib.h"

#define LAPIC_BASE 0xfee00000ULL
#define IOAPIC_BASE 0xfec00000ULL
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REDIR(pin) (0x10 + 2 * (pin))

uint32_t lapic_read(uint32_t reg) { return rd32(LAPIC_BASE + reg); }
void lapic_write(uint32_t reg, uint32_t v) { wr32(LAPIC_BASE + reg, v); }

void lapic_enable(void)
{
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
}

uint32_t ioapic_read(uint32_t reg)
{
    wr32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
    return rd32(IOAPIC_BASE + IOAPIC_WIN);
}

void ioapic_write(uint32_t reg, uint32_t v)
{
    wr32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
    wr32(IOAPIC_BASE + IOAPIC_WIN, v);
}

uint32_t ioapic_pins(void) { return ((ioapic_read(IOAPIC_REG_VER) >> 16) & 0xff) + 1; }

void ioapic_route(uint32_t pin, uint8_t vector, uint8_t apic_id)
{
    /* Destination first, then the low word, which unmasks. */
    ioapic_write(IOAPIC_REDIR(pin) + 1, (uint32_t)apic_id << 24);
    ioapic_write(IOAPIC_REDIR(pin), vector);
}

void ioapic_mask(uint32_t pin) { ioapic_write(IOAPIC_REDIR(pin), LVT_MASKED); }
