/*
 * Guest RAM backed by a memfd. The memfd (not anonymous memory) is what lets
 * later work share RAM with device processes and return it to the host
 * zeroed; here it is mapped once and carved into KVM slots around the
 * 32-bit MMIO hole.
 */
#include "herd/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "herd/file_io.h"
#include "herd/layout.h"

static void layout_slots(struct guest_mem *gm)
{
    uint64_t low = gm->size < LAYOUT_MMIO_HOLE_START ? gm->size : LAYOUT_MMIO_HOLE_START;

    gm->nr_slots = 1;
    gm->slots[0] = (struct guest_mem_slot){.gpa = 0, .size = low, .host = gm->base};
    if (gm->size > low) {
        gm->slots[1] = (struct guest_mem_slot){
            .gpa = LAYOUT_HIGH_RAM_START, .size = gm->size - low, .host = gm->base + low};
        gm->nr_slots = 2;
    }
}

static int check_size(uint64_t size)
{
    if (size < 2 * MiB || size % (4 * KiB))
        return -EINVAL;
    if (size > 1024 * GiB)
        return -E2BIG;
    return 0;
}

int guest_mem_init_buffer(struct guest_mem *gm, void *buf, uint64_t size)
{
    int rc = check_size(size);

    if (rc)
        return rc;
    memset(gm, 0, sizeof(*gm));
    gm->size = size;
    gm->base = buf;
    gm->memfd = -1;
    layout_slots(gm);
    return 0;
}

int guest_mem_create(struct guest_mem *gm, uint64_t size)
{
    int rc = check_size(size);
    int fd;
    void *p;

    if (rc)
        return rc;
    fd = memfd_create("herd-guest-ram", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        rc = -errno;
        close(fd);
        return rc;
    }
    /* Guest RAM must not end up in a core dump of the VMM. */
    madvise(p, size, MADV_DONTDUMP);
    memset(gm, 0, sizeof(*gm));
    gm->size = size;
    gm->base = p;
    gm->memfd = fd;
    gm->own_buffer = 1;
    layout_slots(gm);
    return 0;
}

int guest_mem_create_from_file(struct guest_mem *gm, uint64_t size, int fd, uint64_t offset,
                               bool copy)
{
    int rc = check_size(size);
    void *p;

    if (rc)
        return rc;
    if (offset % (4 * KiB))
        return -EINVAL;
    if (copy) {
        rc = guest_mem_create(gm, size);
        if (!rc && (rc = herd_pread_all(fd, gm->base, size, offset)))
            guest_mem_destroy(gm);
        return rc;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, (off_t)offset);
    if (p == MAP_FAILED)
        return -errno;
    madvise(p, size, MADV_DONTDUMP);
    memset(gm, 0, sizeof(*gm));
    gm->size = size;
    gm->base = p;
    gm->memfd = -1;
    gm->own_buffer = 1;
    layout_slots(gm);
    return 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
    if (gm->own_buffer && gm->base)
        munmap(gm->base, gm->size);
    if (gm->memfd >= 0)
        close(gm->memfd);
    memset(gm, 0, sizeof(*gm));
    gm->memfd = -1;
}

void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < gm->nr_slots; i++) {
        const struct guest_mem_slot *s = &gm->slots[i];

        if (gpa < s->gpa || gpa - s->gpa >= s->size)
            continue;
        if (len > s->size - (gpa - s->gpa))
            return NULL;
        return s->host + (gpa - s->gpa);
    }
    return NULL;
}

int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
    void *dst = guest_mem_ptr(gm, gpa, len);

    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *gm)
{
    return gm->slots[0].size;
}
