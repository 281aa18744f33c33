/*
 * Port and MMIO decoding. Ranges are registered before the vCPUs start and
 * never change afterwards, so lookups need no lock.
 */
#include "herd/bus.h"

#include <errno.h>
#include <string.h>

#include "herd/log.h"

void bus_init(struct bus *bus, const char *name)
{
    memset(bus, 0, sizeof(*bus));
    bus->name = name;
}

static bool overlaps(const struct bus_range *a, const struct bus_range *b)
{
    return a->base < b->base + b->size && b->base < a->base + a->size;
}

int bus_register(struct bus *bus, const struct bus_range *range)
{
    unsigned pos = 0;

    if (range->size == 0 || range->base + range->size < range->base)
        return -EINVAL;
    for (unsigned i = 0; i < bus->nr; i++) {
        if (overlaps(&bus->ranges[i], range))
            return -EEXIST;
        if (bus->ranges[i].base < range->base)
            pos = i + 1;
    }
    if (bus->nr == BUS_MAX_DEVICES)
        return -ENOSPC;
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->nr - pos) * sizeof(*range));
    bus->ranges[pos] = *range;
    bus->nr++;
    return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned len)
{
    unsigned lo = 0, hi = bus->nr;

    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const struct bus_range *r = &bus->ranges[mid];

        if (addr < r->base) {
            hi = mid;
        } else if (addr - r->base >= r->size) {
            lo = mid + 1;
        } else {
            return len <= r->size - (addr - r->base) ? r : NULL;
        }
    }
    return NULL;
}

bool bus_dispatch(const struct bus *bus, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
    const struct bus_range *r = bus_find(bus, addr, len);

    if (!r) {
        if (!write)
            memset(data, 0xff, len);
        if (log_enabled(LOG_DEBUG))
            log_debug("unclaimed %s %s at %#llx (%u bytes)", bus->name, write ? "write" : "read",
                      (unsigned long long)addr, len);
        return false;
    }
    if (write) {
        if (r->write)
            r->write(r->opaque, addr - r->base, data, len);
    } else if (r->read) {
        r->read(r->opaque, addr - r->base, data, len);
    } else {
        memset(data, 0xff, len);
    }
    return true;
}
