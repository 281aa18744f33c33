/*
 * The ACPI Generic Event Device (GED, _HID "ACPI0013") of herd-vmm's
 * hardware-reduced platform: how the host tells the guest's OS about an
 * event, here the power button (\_SB.PWRB, PNP0C0C). There is no SCI and no
 * GPE block on such a platform; instead the GED owns one interrupt and its
 * _EVT method reads the event register below and Notify()s the device the
 * event belongs to (power button: Notify (\_SB.PWRB, 0x80), which Linux
 * turns into KEY_POWER; systemd-logind then powers off).
 *
 * Event register: one byte at I/O port ACPI_GED_PORT.
 *   - read:  the pending events (bit 0: power button), then they are
 *            cleared and the interrupt line is lowered (read-to-clear, so
 *            _EVT sees each event once);
 *   - write: ignored.
 * Interrupt: GSI ACPI_GED_GSI on the in-kernel IOAPIC, level-triggered,
 * active high: raised while any event is pending. Level, not edge, so a
 * press made while the guest has the pin masked (booting, no driver yet)
 * is delivered once it unmasks it instead of being lost.
 *
 * A hostile guest can only read (and so clear) its own pending events.
 */
#ifndef HERD_ACPI_GED_H
#define HERD_ACPI_GED_H

#include <pthread.h>
#include <stdint.h>

#include "herd/bus.h"

#define ACPI_GED_PORT 0x604 /* next to the ACPI power ports 0x600-0x603 */
#define ACPI_GED_GSI  23    /* IOAPIC pin 23: free (ISA IRQs are 0-15, PCI uses MSI-X) */

#define ACPI_GED_EVT_POWER_BUTTON 0x01
#define ACPI_GED_EVT_ALL          ACPI_GED_EVT_POWER_BUTTON

typedef void (*acpi_ged_irq_fn)(void *ctx, int level);

struct acpi_ged {
    pthread_mutex_t lock;
    uint8_t pending; /* ACPI_GED_EVT_* bits not read by the guest yet */
    int irq_level;
    acpi_ged_irq_fn set_irq;
    void *irq_ctx;
};

/* Pending events and the line, for snapshots. */
struct acpi_ged_state {
    uint8_t pending, irq_level, pad[2];
};
void acpi_ged_save(struct acpi_ged *g, struct acpi_ged_state *out);
int acpi_ged_load(struct acpi_ged *g, const struct acpi_ged_state *in);

void acpi_ged_init(struct acpi_ged *g, acpi_ged_irq_fn set_irq, void *irq_ctx);
void acpi_ged_destroy(struct acpi_ged *g);

/* Claims ACPI_GED_PORT on the port bus; g must outlive the registration. */
int acpi_ged_register(struct acpi_ged *g, struct bus *pio);

/* Host side: records events (ACPI_GED_EVT_* bits) and raises the
 * interrupt. Any thread. 0, or -EINVAL for no or unknown bits. */
int acpi_ged_notify(struct acpi_ged *g, uint8_t events);

/* Guest side: the event register read (returns and clears the pending
 * events, lowers the interrupt). Also what the port bus calls. */
uint8_t acpi_ged_read_events(struct acpi_ged *g);

#endif
