/*
 * Write-back cache of cluster-sized metadata tables (L2 tables, refblocks).
 * Set-associative: a table lives in one of `ways` slots of the set its host
 * offset hashes to; a miss evicts the least recently used slot of that set.
 * Writing a dirty table first writes and syncs the cache it depends on, which
 * is how refcount increments reach the disk before the L2 entries using them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2_int.h"

#define CACHE_WAYS 4u

int qcow2_cache_init(struct qcow2_cache *c, struct qcow2 *q, size_t entries)
{
    memset(c, 0, sizeof(*c));
    c->q = q;
    c->ways = CACHE_WAYS;
    c->sets = (unsigned)BD_MAX(entries / CACHE_WAYS, 1);
    c->e = calloc((size_t)c->sets * c->ways, sizeof(*c->e));
    return c->e ? 0 : -ENOMEM;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
    if (!c->e)
        return;
    for (size_t i = 0; i < (size_t)c->sets * c->ways; i++)
        free(c->e[i].data);
    free(c->e);
    c->e = NULL;
}

static struct qcow2_cache_entry *set_of(struct qcow2_cache *c, uint64_t offset)
{
    uint64_t k = offset >> c->q->cluster_bits;
    k *= 0x9e3779b97f4a7c15ull;
    return &c->e[(size_t)((k >> 32) % c->sets) * c->ways];
}

static int entry_write(struct qcow2_cache *c, struct qcow2_cache_entry *e)
{
    if (!e->dirty)
        return 0;
    if (c->depends) {
        int r = qcow2_cache_flush(c->depends);
        if (r < 0)
            return r;
    }
    if (qcow2_overlaps_metadata(c->q, e->offset, c->q->cs))
        return qcow2_mark_corrupt(c->q, "table write at %#llx overlaps fixed metadata",
                                  (unsigned long long)e->offset);
    int r = bd_pwrite_full(c->q->fd, e->data, c->q->cs, e->offset);
    if (r == 0)
        e->dirty = false;
    return r;
}

static int slot_take(struct qcow2_cache *c, uint64_t offset, struct qcow2_cache_entry **out)
{
    struct qcow2_cache_entry *set = set_of(c, offset), *victim = &set[0];
    for (unsigned w = 0; w < c->ways; w++) {
        if (set[w].offset == 0) {
            victim = &set[w];
            break;
        }
        if (set[w].lru < victim->lru)
            victim = &set[w];
    }
    int r = entry_write(c, victim);
    if (r < 0)
        return r;
    if (!victim->data) {
        victim->data = aligned_alloc(4096, BD_MAX(c->q->cs, 4096));
        if (!victim->data)
            return -ENOMEM;
    }
    victim->offset = 0;
    *out = victim;
    return 0;
}

static struct qcow2_cache_entry *lookup(struct qcow2_cache *c, uint64_t offset)
{
    struct qcow2_cache_entry *set = set_of(c, offset);
    /* Offset 0 marks an empty slot; it is also the header, never a table. */
    if (offset == 0)
        return NULL;
    for (unsigned w = 0; w < c->ways; w++)
        if (set[w].offset == offset) {
            set[w].lru = ++c->tick;
            return &set[w];
        }
    return NULL;
}

int qcow2_cache_get(struct qcow2_cache *c, uint64_t offset, uint8_t **data)
{
    if (offset < c->q->cs) /* a metadata table over the header: corrupt */
        return -EIO;
    struct qcow2_cache_entry *e = lookup(c, offset);
    if (e) {
        *data = e->data;
        return 0;
    }
    int r = slot_take(c, offset, &e);
    if (r < 0)
        return r;
    r = bd_pread_full(c->q->fd, e->data, c->q->cs, offset);
    if (r < 0)
        return r;
    e->offset = offset;
    e->dirty = false;
    e->lru = ++c->tick;
    *data = e->data;
    return 0;
}

int qcow2_cache_get_empty(struct qcow2_cache *c, uint64_t offset, uint8_t **data)
{
    if (offset < c->q->cs)
        return -EIO;
    struct qcow2_cache_entry *e = lookup(c, offset);
    if (!e) {
        int r = slot_take(c, offset, &e);
        if (r < 0)
            return r;
    }
    memset(e->data, 0, c->q->cs);
    e->offset = offset;
    e->dirty = true;
    e->lru = ++c->tick;
    *data = e->data;
    return 0;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t offset)
{
    struct qcow2_cache_entry *e = lookup(c, offset);
    if (e)
        e->dirty = true;
}

int qcow2_cache_flush(struct qcow2_cache *c)
{
    bool wrote = false;
    for (size_t i = 0; i < (size_t)c->sets * c->ways; i++) {
        struct qcow2_cache_entry *e = &c->e[i];
        if (!e->offset || !e->dirty)
            continue;
        int r = entry_write(c, e);
        if (r < 0)
            return r;
        wrote = true;
    }
    if (wrote && c->depends == NULL)
        return bd_fdatasync(c->q->fd); /* refblocks durable before what uses them */
    return 0;
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset)
{
    struct qcow2_cache_entry *e = lookup(c, offset);
    if (e) {
        e->offset = 0;
        e->dirty = false;
    }
}
