/*
 * MP table writer. Layout, checksums and entry formats follow the Intel MP
 * Specification 1.4; the interrupt wiring matches KVM's default GSI routing
 * (GSI n -> IOAPIC pin n), which is what herd-vmm uses.
 */
#include "herd/mptable.h"

#include <errno.h>
#include <string.h>

#include "herd/layout.h"

struct mpf_intel {
    char signature[4]; /* "_MP_" */
    uint32_t physptr;
    uint8_t length; /* in 16-byte units */
    uint8_t specification;
    uint8_t checksum;
    uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
    char signature[4]; /* "PCMP" */
    uint16_t length;
    uint8_t spec;
    uint8_t checksum;
    char oem[8];
    char product[12];
    uint32_t oemptr;
    uint16_t oemsize;
    uint16_t oemcount;
    uint32_t lapic;
    uint16_t ext_length;
    uint8_t ext_checksum;
    uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
    uint8_t type;
    uint8_t apicid;
    uint8_t apicver;
    uint8_t cpuflag;
    uint32_t cpufeature;
    uint32_t featureflag;
    uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
    uint8_t type;
    uint8_t busid;
    char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
    uint8_t type;
    uint8_t apicid;
    uint8_t apicver;
    uint8_t flags;
    uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
    uint8_t type;
    uint8_t irqtype;
    uint16_t irqflag;
    uint8_t srcbus;
    uint8_t srcbusirq;
    uint8_t dstapic;
    uint8_t dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer is 16 bytes");
_Static_assert(sizeof(struct mpc_table) == 44, "MP config header is 44 bytes");
_Static_assert(sizeof(struct mpc_cpu) == 20, "processor entry is 20 bytes");

enum {
    MP_PROCESSOR = 0,
    MP_BUS = 1,
    MP_IOAPIC = 2,
    MP_INTSRC = 3,
    MP_LINTSRC = 4,
};

enum { MP_IRQ_INT = 0, MP_IRQ_NMI = 1, MP_IRQ_EXTINT = 3 };

#define CPU_ENABLED     0x1
#define CPU_BOOTPROC    0x2
#define LAPIC_VERSION   0x14
#define IOAPIC_VERSION  0x11
#define MP_SPEC_REV     4
#define BUS_ISA         0
/* Family 6 signature and FPU|APIC features, as a plain PC would report. */
#define CPU_SIGNATURE   0x600
#define CPU_FEATURES    0x201

static uint8_t checksum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    for (size_t i = 0; i < len; i++)
        sum += b[i];
    return (uint8_t)-sum;
}

unsigned mptable_size(unsigned nr_cpus)
{
    return sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
           nr_cpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
           sizeof(struct mpc_ioapic) + 16 * sizeof(struct mpc_intsrc) +
           2 * sizeof(struct mpc_intsrc);
}

static uint8_t *put(uint8_t *p, const void *entry, size_t len)
{
    memcpy(p, entry, len);
    return p + len;
}

int mptable_write(const struct guest_mem *gm, unsigned nr_cpus)
{
    unsigned size = mptable_size(nr_cpus);
    uint8_t ioapic_id = (uint8_t)nr_cpus;
    struct mpf_intel *mpf;
    struct mpc_table *mpc;
    uint8_t *base, *p;
    uint16_t entries = 0;

    if (nr_cpus == 0 || nr_cpus > MPTABLE_MAX_CPUS)
        return -EINVAL;
    if (size > 0xa0000 - LAYOUT_MPTABLE)
        return -E2BIG;
    base = guest_mem_ptr(gm, LAYOUT_MPTABLE, size);
    if (!base)
        return -EFAULT;
    memset(base, 0, size);

    mpf = (struct mpf_intel *)base;
    mpc = (struct mpc_table *)(base + sizeof(*mpf));
    p = (uint8_t *)(mpc + 1);

    for (unsigned i = 0; i < nr_cpus; i++, entries++) {
        struct mpc_cpu cpu = {
            .type = MP_PROCESSOR,
            .apicid = (uint8_t)i,
            .apicver = LAPIC_VERSION,
            .cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROC : 0),
            .cpufeature = CPU_SIGNATURE,
            .featureflag = CPU_FEATURES,
        };
        p = put(p, &cpu, sizeof(cpu));
    }

    struct mpc_bus bus = {.type = MP_BUS, .busid = BUS_ISA, .bustype = "ISA   "};
    p = put(p, &bus, sizeof(bus));
    entries++;

    struct mpc_ioapic ioapic = {.type = MP_IOAPIC,
                                .apicid = ioapic_id,
                                .apicver = IOAPIC_VERSION,
                                .flags = 1,
                                .apicaddr = (uint32_t)LAYOUT_IOAPIC};
    p = put(p, &ioapic, sizeof(ioapic));
    entries++;

    for (uint8_t irq = 0; irq < 16; irq++, entries++) {
        struct mpc_intsrc src = {.type = MP_INTSRC,
                                 .irqtype = MP_IRQ_INT,
                                 .srcbus = BUS_ISA,
                                 .srcbusirq = irq,
                                 .dstapic = ioapic_id,
                                 .dstirq = irq};
        p = put(p, &src, sizeof(src));
    }

    /* LINT0 takes ExtINT from the 8259, LINT1 is NMI, on every CPU. */
    struct mpc_intsrc lint0 = {.type = MP_LINTSRC, .irqtype = MP_IRQ_EXTINT, .srcbus = BUS_ISA,
                               .dstapic = 0xff, .dstirq = 0};
    struct mpc_intsrc lint1 = {.type = MP_LINTSRC, .irqtype = MP_IRQ_NMI, .srcbus = BUS_ISA,
                               .dstapic = 0xff, .dstirq = 1};
    p = put(p, &lint0, sizeof(lint0));
    p = put(p, &lint1, sizeof(lint1));
    entries += 2;

    memcpy(mpc->signature, "PCMP", 4);
    mpc->length = (uint16_t)(p - (uint8_t *)mpc);
    mpc->spec = MP_SPEC_REV;
    memcpy(mpc->oem, "HERD    ", 8);
    memcpy(mpc->product, "herd-vmm    ", 12);
    mpc->oemcount = entries;
    mpc->lapic = (uint32_t)LAYOUT_LAPIC;
    mpc->checksum = checksum(mpc, mpc->length);

    memcpy(mpf->signature, "_MP_", 4);
    mpf->physptr = (uint32_t)(LAYOUT_MPTABLE + sizeof(*mpf));
    mpf->length = 1;
    mpf->specification = MP_SPEC_REV;
    mpf->checksum = checksum(mpf, sizeof(*mpf));
    return 0;
}
