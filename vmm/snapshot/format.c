/*
 * The snapshot container (see herd/snapshot.h): sections collected in
 * memory, then header + sections + RAM written with pwrite; a reader that
 * checks everything before it hands a section out.
 */
#include "herd/snapshot.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "herd/file_io.h"
#include "herd/vmm_config.h"

_Static_assert(sizeof(struct snap_header) == 144, "the header layout is the file format");
_Static_assert(sizeof(struct snap_section) == 16, "the section header is the file format");

#define PAGE 4096ULL

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~7ULL;
}

static uint64_t align_up(uint64_t n, uint64_t a)
{
    return (n + a - 1) / a * a;
}

static uint32_t crc(const void *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);

    /* zlib's length is a uInt: feed large buffers in pieces */
    for (const uint8_t *b = p; n;) {
        size_t k = n > (1U << 30) ? (1U << 30) : n;

        c = crc32(c, b, (uInt)k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}

static uint32_t header_crc(const struct snap_header *h)
{
    struct snap_header copy = *h;

    copy.header_crc = 0;
    return crc(&copy, sizeof(copy));
}

const char *snap_section_name(uint32_t type)
{
    static const char *const names[SNAP_S_MAX] = {
        [SNAP_S_CONFIG] = "config", [SNAP_S_VCPU_REGS] = "vcpu-regs",
        [SNAP_S_VCPU_SREGS] = "vcpu-sregs", [SNAP_S_VCPU_XSAVE] = "vcpu-xsave",
        [SNAP_S_VCPU_XCRS] = "vcpu-xcrs", [SNAP_S_VCPU_MSRS] = "vcpu-msrs",
        [SNAP_S_VCPU_LAPIC] = "vcpu-lapic", [SNAP_S_VCPU_EVENTS] = "vcpu-events",
        [SNAP_S_VCPU_MP_STATE] = "vcpu-mp-state", [SNAP_S_VCPU_DEBUGREGS] = "vcpu-debugregs",
        [SNAP_S_VCPU_CPUID] = "vcpu-cpuid", [SNAP_S_IRQCHIP] = "irqchip", [SNAP_S_PIT] = "pit",
        [SNAP_S_CLOCK] = "clock", [SNAP_S_SERIAL] = "serial", [SNAP_S_I8042] = "i8042",
        [SNAP_S_GED] = "acpi-ged", [SNAP_S_PCI_CONFIG] = "pci-config", [SNAP_S_VIRTIO] = "virtio",
        [SNAP_S_VIRTIO_NET] = "virtio-net",
    };

    return type < SNAP_S_MAX && names[type] ? names[type] : "unknown";
}

/* ---- writing ---------------------------------------------------------------- */

void snap_writer_init(struct snap_writer *w)
{
    memset(w, 0, sizeof(*w));
}

void snap_writer_free(struct snap_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

static bool reserve(struct snap_writer *w, size_t more)
{
    size_t cap = w->cap ? w->cap : 65536;
    uint8_t *b;

    if (w->len + more > SNAP_STATE_MAX) {
        w->error = -EFBIG;
        return false;
    }
    while (cap < w->len + more)
        cap *= 2;
    if (cap == w->cap)
        return true;
    b = realloc(w->buf, cap);
    if (!b) {
        w->error = -ENOMEM;
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

void snap_add(struct snap_writer *w, uint32_t type, uint32_t index, const void *data, size_t len)
{
    struct snap_section s = {.type = type, .index = index, .len = len};
    size_t padded = pad8(len);

    if (w->error)
        return;
    if (w->nr_sections >= SNAP_SECTIONS_MAX) {
        w->error = -E2BIG;
        return;
    }
    if (!reserve(w, sizeof(s) + padded))
        return;
    memcpy(w->buf + w->len, &s, sizeof(s));
    memcpy(w->buf + w->len + sizeof(s), data, len);
    memset(w->buf + w->len + sizeof(s) + len, 0, padded - len);
    w->len += sizeof(s) + padded;
    w->nr_sections++;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;

    for (unsigned i = 0; i < PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

/* RAM in runs of non-zero pages; zero pages stay holes of the file. */
static int write_ram(int fd, const uint8_t *ram, uint64_t size, uint64_t off)
{
    uint64_t p = 0;

    while (p < size) {
        uint64_t start, end;
        int rc;

        while (p < size && page_is_zero(ram + p))
            p += PAGE;
        start = p;
        while (p < size && !page_is_zero(ram + p))
            p += PAGE;
        end = p;
        if (end > start && (rc = herd_pwrite_all(fd, ram + start, end - start, off + start)))
            return rc;
    }
    return 0;
}

static int check_target(int fd, struct herd_err *err)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return herd_err_set(err, -errno, "", "snapshot file: fstat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return herd_err_set(err, -EINVAL, "", "the snapshot must go to a regular file");
    if (st.st_size != 0)
        return herd_err_set(err, -EEXIST, "", "the snapshot file is not empty (%lld bytes)",
                            (long long)st.st_size);
    return 0;
}

int snap_write(struct snap_writer *w, int fd, const void *ram, uint64_t ram_size,
               struct herd_err *err)
{
    struct snap_header h;
    int rc;

    if (w->error)
        return herd_err_set(err, w->error, "", "snapshot state: %s", strerror(-w->error));
    if ((ram_size % PAGE) != 0)
        return herd_err_set(err, -EINVAL, "", "guest RAM of %llu bytes is not whole pages",
                            (unsigned long long)ram_size);
    rc = check_target(fd, err);
    if (rc)
        return rc;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = SNAP_VERSION;
    h.header_size = sizeof(h);
    h.state_off = SNAP_STATE_OFF;
    h.state_len = w->len;
    h.state_crc = crc(w->buf, w->len);
    h.nr_sections = w->nr_sections;
    h.ram_off = align_up(SNAP_STATE_OFF + w->len, SNAP_RAM_ALIGN);
    h.ram_size = ram_size;
    h.file_size = h.ram_off + ram_size;
    snprintf(h.producer, sizeof(h.producer), "herd-vmm %s", HERD_VERSION);
    h.header_crc = header_crc(&h);
    if (ftruncate(fd, (off_t)h.file_size) < 0)
        return herd_err_set(err, -errno, "", "snapshot file of %llu bytes: %s",
                            (unsigned long long)h.file_size, strerror(errno));
    rc = herd_pwrite_all(fd, w->buf, w->len, h.state_off);
    if (!rc)
        rc = write_ram(fd, ram, ram_size, h.ram_off);
    /* the header last: a snapshot cut short has none and is refused */
    if (!rc)
        rc = herd_pwrite_all(fd, &h, sizeof(h), 0);
    if (!rc && fdatasync(fd) < 0)
        rc = -errno;
    if (rc)
        return herd_err_set(err, rc, "", "writing the snapshot: %s", strerror(-rc));
    return 0;
}

/* ---- reading ---------------------------------------------------------------- */

int snap_check_header(const struct snap_header *h, uint64_t file_size, struct herd_err *err)
{
    uint64_t state_end;

    if (memcmp(h->magic, SNAP_MAGIC, 8) != 0)
        return herd_err_set(err, -EINVAL, "", "not a herd snapshot (no %s magic)", SNAP_MAGIC);
    if (h->version != SNAP_VERSION)
        return herd_err_set(err, -EPROTONOSUPPORT, "",
                            "snapshot format version %u; this herd-vmm reads version %u",
                            h->version, SNAP_VERSION);
    if (h->header_size != sizeof(*h))
        return herd_err_set(err, -EINVAL, "", "snapshot header of %u bytes, expected %zu",
                            h->header_size, sizeof(*h));
    if (h->header_crc != header_crc(h))
        return herd_err_set(err, -EBADMSG, "", "snapshot header checksum mismatch");
    if (h->flags)
        return herd_err_set(err, -EPROTONOSUPPORT, "", "snapshot flags %#x unknown to this herd-vmm",
                            h->flags);
    if (h->state_off != SNAP_STATE_OFF || h->state_len > SNAP_STATE_MAX ||
        h->nr_sections > SNAP_SECTIONS_MAX)
        return herd_err_set(err, -EINVAL, "", "snapshot state at %llu, %llu bytes, %u sections: "
                            "outside the limits", (unsigned long long)h->state_off,
                            (unsigned long long)h->state_len, h->nr_sections);
    state_end = h->state_off + h->state_len;
    if (h->ram_off % SNAP_RAM_ALIGN || h->ram_off < state_end || h->ram_size % PAGE ||
        h->ram_size == 0 || h->ram_size > (1ULL << 46) || h->file_size != h->ram_off + h->ram_size)
        return herd_err_set(err, -EINVAL, "", "snapshot RAM at %llu, %llu bytes, in a file of "
                            "%llu: not a valid layout", (unsigned long long)h->ram_off,
                            (unsigned long long)h->ram_size, (unsigned long long)h->file_size);
    if (file_size != h->file_size)
        return herd_err_set(err, -EINVAL, "", "snapshot file is %llu bytes, its header says %llu "
                            "(truncated or appended to)", (unsigned long long)file_size,
                            (unsigned long long)h->file_size);
    return 0;
}

/* Walks the section table: every section inside the state, no duplicate. */
static int index_sections(struct snap_reader *r, struct herd_err *err)
{
    uint64_t off = 0, len = r->hdr.state_len;

    r->sections = calloc(r->hdr.nr_sections ? r->hdr.nr_sections : 1, sizeof(*r->sections));
    if (!r->sections)
        return herd_err_set(err, -ENOMEM, "", "out of memory for the snapshot's sections");
    for (uint32_t i = 0; i < r->hdr.nr_sections; i++) {
        struct snap_section s;

        if (len - off < sizeof(s))
            return herd_err_set(err, -EINVAL, "", "snapshot section %u starts past the state", i);
        memcpy(&s, r->state + off, sizeof(s));
        off += sizeof(s);
        if (s.len > len - off || pad8(s.len) > len - off)
            return herd_err_set(err, -EINVAL, "", "snapshot section %u (%s) of %llu bytes runs "
                                "past the state", i, snap_section_name(s.type),
                                (unsigned long long)s.len);
        if (snap_find(r, s.type, s.index, NULL))
            return herd_err_set(err, -EINVAL, "", "snapshot section %s %u appears twice",
                                snap_section_name(s.type), s.index);
        r->sections[i].type = s.type;
        r->sections[i].index = s.index;
        r->sections[i].len = s.len;
        r->sections[i].data = r->state + off;
        r->nr_sections = i + 1;
        off += pad8(s.len);
    }
    if (off != len)
        return herd_err_set(err, -EINVAL, "", "snapshot state has %llu bytes after its last section",
                            (unsigned long long)(len - off));
    return 0;
}

int snap_read(struct snap_reader *r, int fd, struct herd_err *err)
{
    struct stat st;
    int rc;

    memset(r, 0, sizeof(*r));
    if (fstat(fd, &st) < 0)
        return herd_err_set(err, -errno, "", "snapshot: fstat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return herd_err_set(err, -EINVAL, "", "the snapshot is not a regular file");
    if ((uint64_t)st.st_size < sizeof(r->hdr))
        return herd_err_set(err, -EINVAL, "", "snapshot file of %lld bytes has no header",
                            (long long)st.st_size);
    rc = herd_pread_all(fd, &r->hdr, sizeof(r->hdr), 0);
    if (rc)
        return herd_err_set(err, rc, "", "reading the snapshot header: %s", strerror(-rc));
    rc = snap_check_header(&r->hdr, (uint64_t)st.st_size, err);
    if (rc)
        return rc;
    r->state = malloc(r->hdr.state_len ? r->hdr.state_len : 1);
    if (!r->state)
        return herd_err_set(err, -ENOMEM, "", "out of memory for %llu bytes of snapshot state",
                            (unsigned long long)r->hdr.state_len);
    rc = herd_pread_all(fd, r->state, r->hdr.state_len, r->hdr.state_off);
    if (rc)
        herd_err_set(err, rc, "", "reading the snapshot state: %s", strerror(-rc));
    else if (crc(r->state, r->hdr.state_len) != r->hdr.state_crc)
        rc = herd_err_set(err, -EBADMSG, "", "snapshot state checksum mismatch (corrupted)");
    else
        rc = index_sections(r, err);
    if (rc)
        snap_reader_free(r);
    return rc;
}

const void *snap_find(const struct snap_reader *r, uint32_t type, uint32_t index, uint64_t *len)
{
    for (uint32_t i = 0; i < r->nr_sections; i++) {
        if (r->sections[i].type == type && r->sections[i].index == index) {
            if (len)
                *len = r->sections[i].len;
            return r->sections[i].data;
        }
    }
    return NULL;
}

const void *snap_get(const struct snap_reader *r, uint32_t type, uint32_t index, uint64_t len,
                     const char *what, struct herd_err *err)
{
    uint64_t have;
    const void *p = snap_find(r, type, index, &have);

    if (!p) {
        herd_err_set(err, -ENOENT, "", "snapshot lacks %s (section %s %u)", what,
                     snap_section_name(type), index);
        return NULL;
    }
    if (have != len) {
        herd_err_set(err, -EINVAL, "", "snapshot's %s is %llu bytes, this herd-vmm expects %llu",
                     what, (unsigned long long)have, (unsigned long long)len);
        return NULL;
    }
    return p;
}

void snap_reader_free(struct snap_reader *r)
{
    free(r->state);
    free(r->sections);
    memset(r, 0, sizeof(*r));
}
