/*
 * ACPI sleep control/status and reset registers (see herd/acpi_power.h).
 * Stateless: each byte of an access is judged on its own, so any width at
 * any offset behaves like the equivalent run of byte accesses.
 */
#include "herd/acpi_power.h"

#include <errno.h>
#include <string.h>

int acpi_power_decode(uint16_t port, uint8_t value, const char **reason)
{
    uint8_t slp_typ = (value & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT;

    if (port == ACPI_SLEEP_CONTROL_PORT && (value & ACPI_SLP_EN) &&
        slp_typ == ACPI_S5_SLP_TYP) {
        *reason = "guest powered off (ACPI S5)";
        return 1;
    }
    if (port == ACPI_RESET_PORT && value == ACPI_RESET_VALUE) {
        *reason = "guest reset (ACPI reset register)";
        return 1;
    }
    if (port == ACPI_RESET_PORT && value == ACPI_RESET_VECTOR_VALUE) {
        *reason = "guest reset (reset vector)";
        return 1;
    }
    return 0;
}

static void pio_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    /* Sleep status: WAK_STS never set (nothing wakes a powered-off guest). */
    memset(data, 0, len);
}

static void pio_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    const struct vm_stopper *stopper = opaque;
    const char *reason;

    for (unsigned i = 0; i < len && offset + i < ACPI_POWER_PORTS; i++) {
        if (acpi_power_decode((uint16_t)(ACPI_POWER_PORT + offset + i), data[i], &reason)) {
            vm_stopper_stop(stopper, 0, reason);
            return;
        }
    }
}

int acpi_power_register(struct bus *pio, const struct vm_stopper *stopper)
{
    struct bus_range r = {.base = ACPI_POWER_PORT, .size = ACPI_POWER_PORTS,
                          .name = "acpi-power", .read = pio_read, .write = pio_write,
                          .opaque = (void *)stopper};

    return bus_register(pio, &r);
}

int acpi_power_write_reset_vector(const struct guest_mem *gm)
{
    /* Real mode: mov al, RESET_VECTOR_VALUE; mov dx, RESET_PORT; out dx, al;
     * 1: hlt; jmp 1b */
    const uint8_t code[] = {0xb0, ACPI_RESET_VECTOR_VALUE,
                            0xba, ACPI_RESET_PORT & 0xff, ACPI_RESET_PORT >> 8,
                            0xee, 0xf4, 0xeb, 0xfd};
    uint8_t *p = guest_mem_ptr(gm, ACPI_RESET_VECTOR, 16);

    if (!p)
        return -EFAULT;
    memset(p, 0xf4, 16); /* hlt around it */
    memcpy(p, code, sizeof(code));
    return 0;
}
