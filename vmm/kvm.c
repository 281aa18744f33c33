/*
 * /dev/kvm and the VM file descriptor. Capability checks happen once, up
 * front, with the reason each one is needed, so an unsuitable host fails at
 * start with a sentence rather than mid-boot with an errno.
 */
#include "herd/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "herd/layout.h"

const struct kvm_required_cap kvm_required_caps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM is a user memory slot"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT for the guest's timer calibration"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "virtio notifications without exits to userspace"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts from I/O threads"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "MSI routes for virtio-pci"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "the TSS pages VT-x needs for real mode"},
};
const unsigned kvm_nr_required_caps = sizeof(kvm_required_caps) / sizeof(kvm_required_caps[0]);

/* Where VT-x keeps its real-mode TSS and identity map: three pages just below
 * the BIOS ROM at 4 GiB, inside the MMIO hole, never RAM. */
#define KVM_TSS_ADDR        0xfffbd000ULL
#define KVM_IDENTITY_MAP    0xfffbc000ULL

int kvm_open(struct kvm *kvm, const char *path, struct herd_err *err)
{
    int version, rc;

    memset(kvm, 0, sizeof(*kvm));
    kvm->vm_fd = -1;
    pthread_mutex_init(&kvm->routes_lock, NULL);
    path = path ? path : "/dev/kvm";
    kvm->dev_fd = open(path, O_RDWR | O_CLOEXEC);
    if (kvm->dev_fd < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "cannot open %s: %s%s", path, strerror(errno),
                     errno == ENOENT   ? " (is the kvm module loaded?)"
                     : errno == EACCES ? " (are you in the kvm group, or root?)"
                                       : "");
        return rc;
    }
    version = ioctl(kvm->dev_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        herd_err_set(err, -ENOTSUP, "", "%s speaks KVM API version %d, herd-vmm needs %d", path,
                     version, KVM_API_VERSION);
        kvm_close(kvm);
        return -ENOTSUP;
    }
    for (unsigned i = 0; i < kvm_nr_required_caps; i++) {
        if (ioctl(kvm->dev_fd, KVM_CHECK_EXTENSION, kvm_required_caps[i].cap) <= 0) {
            herd_err_set(err, -ENOTSUP, "", "KVM on this host lacks %s (needed for %s)",
                         kvm_required_caps[i].name, kvm_required_caps[i].why);
            kvm_close(kvm);
            return -ENOTSUP;
        }
    }
    kvm->run_size = ioctl(kvm->dev_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm->run_size < (int)sizeof(struct kvm_run)) {
        herd_err_set(err, -ENOTSUP, "", "KVM_GET_VCPU_MMAP_SIZE returned %d", kvm->run_size);
        kvm_close(kvm);
        return -ENOTSUP;
    }
    kvm->max_vcpus = ioctl(kvm->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (kvm->max_vcpus <= 0)
        kvm->max_vcpus = ioctl(kvm->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (kvm->max_vcpus <= 0)
        kvm->max_vcpus = 1;
    kvm->tsc_deadline = ioctl(kvm->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    return 0;
}

static int set_slot(struct kvm *kvm, unsigned slot, const struct guest_mem_slot *s)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .guest_phys_addr = s->gpa,
        .memory_size = s->size,
        .userspace_addr = (uintptr_t)s->host,
    };

    return ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0 ? -errno : 0;
}

static int fail(int rc, struct herd_err *err, const char *what)
{
    herd_err_set(err, rc, "", "%s: %s", what, strerror(-rc));
    return rc;
}

/*
 * The in-kernel 8259s start unprogrammed: all inputs unmasked, vector base
 * 0. KVM routes GSI 0-15 to them as well as to the IOAPIC, and the boot
 * CPU's LINT0 comes out of reset as ExtINT, which Linux leaves unmasked
 * when it finds it so. A guest that never programs the PICs (Linux on our
 * hardware-reduced ACPI uses none) could then take the serial port's IRQ 4
 * as vector 4, the i8042's as vector 1 (#DB). Leave them the way a PC
 * firmware does: vectors 0x08/0x70, every input masked; a
 * guest that wants the PICs initialises them itself (ICW1 clears the mask).
 */
static int pic_mask_all(struct kvm *kvm)
{
    static const uint8_t base[2] = {0x08, 0x70};

    for (uint32_t chip = KVM_IRQCHIP_PIC_MASTER; chip <= KVM_IRQCHIP_PIC_SLAVE; chip++) {
        struct kvm_irqchip ic = {.chip_id = chip};

        if (ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
            return -errno;
        ic.chip.pic.imr = 0xff;
        ic.chip.pic.irq_base = base[chip];
        ic.chip.pic.init_state = 0;
        if (ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &ic) < 0)
            return -errno;
    }
    return 0;
}

int kvm_create_vm(struct kvm *kvm, const struct guest_mem *gm, struct herd_err *err)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    uint64_t identity = KVM_IDENTITY_MAP;
    int rc;

    kvm->vm_fd = ioctl(kvm->dev_fd, KVM_CREATE_VM, 0);
    if (kvm->vm_fd < 0)
        return fail(-errno, err, "KVM_CREATE_VM");
    /* RAM first: registering it after KVM_CREATE_IRQCHIP/PIT2 took 6-11 ms
     * per call on the PVM development host (the memslot update waits for an
     * SRCU grace period once those exist), before them ~0.1 ms. */
    for (unsigned i = 0; i < gm->nr_slots; i++) {
        rc = set_slot(kvm, i, &gm->slots[i]);
        if (rc)
            return fail(rc, err, "KVM_SET_USER_MEMORY_REGION");
    }
    if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
        return fail(-errno, err, "KVM_SET_TSS_ADDR");
    if (ioctl(kvm->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
        ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
        return fail(-errno, err, "KVM_SET_IDENTITY_MAP_ADDR");
    if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return fail(-errno, err, "KVM_CREATE_IRQCHIP");
    rc = pic_mask_all(kvm);
    if (rc < 0)
        return fail(rc, err, "KVM_SET_IRQCHIP (8259 mask)");
    if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return fail(-errno, err, "KVM_CREATE_PIT2");
    return 0;
}

void kvm_close(struct kvm *kvm)
{
    if (kvm->dev_fd < 0 && kvm->vm_fd < 0)
        return;
    if (kvm->vm_fd >= 0)
        close(kvm->vm_fd);
    if (kvm->dev_fd >= 0)
        close(kvm->dev_fd);
    kvm->vm_fd = kvm->dev_fd = -1;
}

int kvm_irq_line(const struct kvm *kvm, unsigned gsi, int level)
{
    struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};

    return ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int kvm_supported_cpuid(const struct kvm *kvm, struct kvm_cpuid_entry2 *entries, unsigned max)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(*entries));
    int rc;

    if (!c)
        return -ENOMEM;
    c->nent = max;
    if (ioctl(kvm->dev_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
        rc = -errno;
        free(c);
        return rc;
    }
    memcpy(entries, c->entries, c->nent * sizeof(*entries));
    rc = (int)c->nent;
    free(c);
    return rc;
}

/* KVM's default table, rebuilt each time: GSI 0-15 to both PICs and the
 * IOAPIC, 16-23 to the IOAPIC only. */
static unsigned default_routes(struct kvm_irq_routing_entry *e)
{
    unsigned n = 0;

    for (unsigned gsi = 0; gsi < KVM_IOAPIC_PINS; gsi++) {
        e[n++] = (struct kvm_irq_routing_entry){
            .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi}};
        if (gsi < 16)
            e[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                              .pin = gsi % 8}};
    }
    return n;
}

static int commit_routes(struct kvm *kvm)
{
    const unsigned max = 2 * KVM_IOAPIC_PINS + KVM_MAX_MSI_ROUTES;
    struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
    unsigned n;
    int rc = 0;

    if (!r)
        return -ENOMEM;
    n = default_routes(r->entries);
    for (unsigned i = 0; i < KVM_MAX_MSI_ROUTES; i++) {
        if (!kvm->msi[i].used)
            continue;
        r->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = KVM_IOAPIC_PINS + i, .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = {.address_lo = (uint32_t)kvm->msi[i].addr,
                      .address_hi = (uint32_t)(kvm->msi[i].addr >> 32),
                      .data = kvm->msi[i].data}};
    }
    r->nr = n;
    if (ioctl(kvm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
        rc = -errno;
    free(r);
    return rc;
}

int kvm_msi_gsi_alloc(struct kvm *kvm)
{
    int gsi = -ENOSPC;

    pthread_mutex_lock(&kvm->routes_lock);
    for (unsigned i = 0; i < KVM_MAX_MSI_ROUTES; i++) {
        if (!kvm->msi[i].used) {
            kvm->msi[i] = (struct kvm_msi_route){.used = true};
            gsi = (int)(KVM_IOAPIC_PINS + i);
            break;
        }
    }
    pthread_mutex_unlock(&kvm->routes_lock);
    return gsi;
}

int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t addr, uint32_t data)
{
    unsigned i = gsi - KVM_IOAPIC_PINS;
    int rc;

    if (gsi < KVM_IOAPIC_PINS || i >= KVM_MAX_MSI_ROUTES)
        return -EINVAL;
    pthread_mutex_lock(&kvm->routes_lock);
    if (kvm->msi[i].addr == addr && kvm->msi[i].data == data) {
        pthread_mutex_unlock(&kvm->routes_lock);
        return 0;
    }
    kvm->msi[i].addr = addr;
    kvm->msi[i].data = data;
    rc = commit_routes(kvm);
    pthread_mutex_unlock(&kvm->routes_lock);
    return rc;
}

void kvm_msi_gsi_free(struct kvm *kvm, unsigned gsi)
{
    unsigned i = gsi - KVM_IOAPIC_PINS;

    if (gsi < KVM_IOAPIC_PINS || i >= KVM_MAX_MSI_ROUTES)
        return;
    pthread_mutex_lock(&kvm->routes_lock);
    kvm->msi[i] = (struct kvm_msi_route){0};
    pthread_mutex_unlock(&kvm->routes_lock);
}

int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool assign)
{
    struct kvm_irqfd req = {.fd = (uint32_t)fd, .gsi = gsi,
                            .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};

    return ioctl(kvm->vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

int kvm_ioeventfd(const struct kvm *kvm, int fd, uint64_t addr, unsigned len, bool assign)
{
    struct kvm_ioeventfd req = {.addr = addr, .len = len, .fd = fd,
                                .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN};

    return ioctl(kvm->vm_fd, KVM_IOEVENTFD, &req) < 0 ? -errno : 0;
}
