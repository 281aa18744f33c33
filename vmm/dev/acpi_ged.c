/*
 * ACPI Generic Event Device: the power button's event register and
 * interrupt (see herd/acpi_ged.h).
 */
#include "herd/acpi_ged.h"

#include <errno.h>
#include <string.h>

void acpi_ged_init(struct acpi_ged *g, acpi_ged_irq_fn set_irq, void *irq_ctx)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    g->set_irq = set_irq;
    g->irq_ctx = irq_ctx;
}

void acpi_ged_destroy(struct acpi_ged *g)
{
    pthread_mutex_destroy(&g->lock);
}

/* The line follows the pending events; called with the lock held. */
static void update_irq(struct acpi_ged *g)
{
    int level = g->pending != 0;

    if (level == g->irq_level)
        return;
    g->irq_level = level;
    if (g->set_irq)
        g->set_irq(g->irq_ctx, level);
}

void acpi_ged_save(struct acpi_ged *g, struct acpi_ged_state *out)
{
    pthread_mutex_lock(&g->lock);
    *out = (struct acpi_ged_state){.pending = g->pending, .irq_level = (uint8_t)g->irq_level};
    pthread_mutex_unlock(&g->lock);
}

int acpi_ged_load(struct acpi_ged *g, const struct acpi_ged_state *in)
{
    if (in->irq_level > 1)
        return -EINVAL;
    pthread_mutex_lock(&g->lock);
    g->pending = in->pending;
    g->irq_level = in->irq_level; /* the restored IOAPIC holds the line's level */
    update_irq(g);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

int acpi_ged_notify(struct acpi_ged *g, uint8_t events)
{
    if (!events || (events & ~ACPI_GED_EVT_ALL))
        return -EINVAL;
    pthread_mutex_lock(&g->lock);
    g->pending |= events;
    update_irq(g);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

uint8_t acpi_ged_read_events(struct acpi_ged *g)
{
    uint8_t events;

    pthread_mutex_lock(&g->lock);
    events = g->pending;
    g->pending = 0;
    update_irq(g);
    pthread_mutex_unlock(&g->lock);
    return events;
}

static void pio_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    memset(data, 0, len);
    data[0] = acpi_ged_read_events(opaque);
}

int acpi_ged_register(struct acpi_ged *g, struct bus *pio)
{
    /* No write callback: writes are dropped. */
    struct bus_range r = {.base = ACPI_GED_PORT, .size = 1, .name = "acpi-ged",
                          .read = pio_read, .opaque = g};

    return bus_register(pio, &r);
}
