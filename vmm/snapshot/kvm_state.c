/*
 * What KVM holds of a guest, saved into snapshot sections and put back:
 * per vCPU the registers, special registers, XSAVE area, XCRs, debug
 * registers, LAPIC, pending events, MP state and every MSR KVM lists as
 * worth saving; per VM the PICs, the IOAPIC, the PIT and the KVM clock.
 *
 * Restore order per vCPU: special registers (they carry the APIC base)
 * before the LAPIC, the LAPIC before the MSRs (TSC_DEADLINE lives in the
 * LAPIC timer), pending events and the MP state last. A section that is
 * missing, of the wrong size, or that KVM refuses ends the restore with the
 * reason: a guest never runs on half its state.
 */
#include "herd/snapshot_vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "herd/cpuid.h"

#define MSRS_MAX 512

struct msr_entry {
    uint32_t index, pad;
    uint64_t value;
};

static int ioctl_err(int rc, struct herd_err *err, const char *what, unsigned cpu)
{
    if (rc >= 0)
        return 0;
    return herd_err_set(err, -errno, "", "%s of vCPU %u: %s", what, cpu, strerror(errno));
}

/* ---- MSRs ----------------------------------------------------------------- */

/* The MSRs KVM says a VMM should save; NULL and err on failure. */
static struct kvm_msr_list *msr_index_list(const struct kvm *kvm, struct herd_err *err)
{
    struct kvm_msr_list probe = {.nmsrs = 0}, *list;

    if (ioctl(kvm->dev_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
        herd_err_set(err, -errno, "", "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
        return NULL;
    }
    if (probe.nmsrs == 0 || probe.nmsrs > MSRS_MAX) {
        herd_err_set(err, -EINVAL, "", "KVM lists %u MSRs to save (1-%d expected)", probe.nmsrs,
                     MSRS_MAX);
        return NULL;
    }
    list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
    if (!list) {
        herd_err_set(err, -ENOMEM, "", "out of memory for the MSR list");
        return NULL;
    }
    list->nmsrs = probe.nmsrs;
    if (ioctl(kvm->dev_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
        herd_err_set(err, -errno, "", "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
        free(list);
        return NULL;
    }
    return list;
}

static struct kvm_msrs *msrs_alloc(unsigned n)
{
    return calloc(1, sizeof(struct kvm_msrs) + n * sizeof(struct kvm_msr_entry));
}

/* Reads every listed MSR this vCPU has; KVM_GET_MSRS stops at the first one
 * it cannot read, which is then left out (some exist only with features the
 * guest was not given). */
static int save_msrs(struct snap_writer *w, const struct vcpu *v, const struct kvm *kvm,
                     struct herd_err *err)
{
    struct kvm_msr_list *list = msr_index_list(kvm, err);
    struct kvm_msrs *m;
    struct msr_entry *out;
    unsigned n = 0, next = 0;

    if (!list)
        return err->code;
    m = msrs_alloc(list->nmsrs);
    out = calloc(list->nmsrs, sizeof(*out));
    if (!m || !out) {
        free(list), free(m), free(out);
        return herd_err_set(err, -ENOMEM, "", "out of memory for MSRs");
    }
    while (next < list->nmsrs) {
        int got;

        m->nmsrs = list->nmsrs - next;
        for (unsigned i = 0; i < m->nmsrs; i++)
            m->entries[i] = (struct kvm_msr_entry){.index = list->indices[next + i]};
        got = ioctl(v->fd, KVM_GET_MSRS, m);
        if (got < 0) {
            free(list), free(m), free(out);
            return ioctl_err(-1, err, "KVM_GET_MSRS", v->id);
        }
        for (int i = 0; i < got; i++)
            out[n++] = (struct msr_entry){.index = m->entries[i].index, .value = m->entries[i].data};
        next += (unsigned)got + 1; /* skip the one it could not read */
    }
    snap_add(w, SNAP_S_VCPU_MSRS, v->id, out, n * sizeof(*out));
    free(list), free(m), free(out);
    return 0;
}

static int load_msrs(const struct snap_reader *r, const struct vcpu *v, struct herd_err *err)
{
    uint64_t len;
    const struct msr_entry *in = snap_find(r, SNAP_S_VCPU_MSRS, v->id, &len);
    struct kvm_msrs *m;
    unsigned n;
    int set;

    if (!in || len % sizeof(*in) || len / sizeof(*in) > MSRS_MAX)
        return herd_err_set(err, -EINVAL, "", "snapshot's MSRs of vCPU %u are missing or malformed",
                            v->id);
    n = (unsigned)(len / sizeof(*in));
    m = msrs_alloc(n ? n : 1);
    if (!m)
        return herd_err_set(err, -ENOMEM, "", "out of memory for MSRs");
    m->nmsrs = n;
    for (unsigned i = 0; i < n; i++)
        m->entries[i] = (struct kvm_msr_entry){.index = in[i].index, .data = in[i].value};
    set = ioctl(v->fd, KVM_SET_MSRS, m);
    free(m);
    if (set < 0)
        return ioctl_err(-1, err, "KVM_SET_MSRS", v->id);
    if ((unsigned)set != n)
        return herd_err_set(err, -EINVAL, "", "KVM refused MSR %#x of vCPU %u (this host's CPU "
                            "or KVM differs from the snapshot's)", in[set].index, v->id);
    return 0;
}

/* ---- CPUID: the restoring host must give the guest the same CPU ------------ */

static struct kvm_cpuid2 *get_cpuid(const struct vcpu *v, struct herd_err *err)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));

    if (!c) {
        herd_err_set(err, -ENOMEM, "", "out of memory for CPUID");
        return NULL;
    }
    c->nent = CPUID_MAX_ENTRIES;
    if (ioctl(v->fd, KVM_GET_CPUID2, c) < 0) {
        ioctl_err(-1, err, "KVM_GET_CPUID2", v->id);
        free(c);
        return NULL;
    }
    return c;
}

static int save_cpuid(struct snap_writer *w, const struct vcpu *v, struct herd_err *err)
{
    struct kvm_cpuid2 *c = get_cpuid(v, err);

    if (!c)
        return err->code;
    snap_add(w, SNAP_S_VCPU_CPUID, v->id, c->entries, c->nent * sizeof(c->entries[0]));
    free(c);
    return 0;
}

/* Bits KVM rewrites while the guest runs: they mirror CR4.OSXSAVE and the
 * APIC base MSR (leaf 1), CR4.PKE (leaf 7), and XCR0/XSS (the XSAVE sizes
 * of leaf 0xd). The restored registers set them again; they say nothing
 * about the CPU. */
static struct kvm_cpuid_entry2 static_part(const struct kvm_cpuid_entry2 *e)
{
    struct kvm_cpuid_entry2 s = *e;

    if (s.function == 1) {
        s.ecx &= ~(1u << 27); /* OSXSAVE */
        s.edx &= ~(1u << 9);  /* APIC */
    } else if (s.function == 7 && s.index == 0) {
        s.ecx &= ~(1u << 4); /* OSPKE */
    } else if (s.function == 0xd && s.index <= 1) {
        s.ebx = 0; /* XSAVE area size for the enabled features */
    }
    return s;
}

static bool same_leaf(const struct kvm_cpuid_entry2 *a, const struct kvm_cpuid_entry2 *b)
{
    return a->function == b->function &&
           (!(b->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || a->index == b->index);
}

static const struct kvm_cpuid_entry2 *find_leaf(const struct kvm_cpuid_entry2 *e, unsigned n,
                                                const struct kvm_cpuid_entry2 *want)
{
    /* The index only tells leaves apart where KVM says it matters; in other
     * entries it is whatever the table held. */
    for (unsigned i = 0; i < n; i++)
        if (same_leaf(&e[i], want))
            return &e[i];
    return NULL;
}

/* The snapshot's CPUID against what this herd-vmm gave the new vCPU. The
 * initial APIC id (leaf 1 EBX[31:24], leaves 0xb/0x1f EDX) is the vCPU's
 * own and so compared per vCPU like everything else. */
static int check_cpuid(const struct snap_reader *r, const struct vcpu *v, struct herd_err *err)
{
    uint64_t len;
    const struct kvm_cpuid_entry2 *saved = snap_find(r, SNAP_S_VCPU_CPUID, v->id, &len);
    struct kvm_cpuid2 *now;
    unsigned n;
    int rc = 0;

    if (!saved || len % sizeof(*saved) || len / sizeof(*saved) > CPUID_MAX_ENTRIES)
        return herd_err_set(err, -EINVAL, "", "snapshot's CPUID of vCPU %u is missing or malformed",
                            v->id);
    n = (unsigned)(len / sizeof(*saved));
    now = get_cpuid(v, err);
    if (!now)
        return err->code;
    if (now->nent != n)
        rc = herd_err_set(err, -EINVAL, "", "CPUID mismatch on vCPU %u: the snapshot has %u "
                          "leaves, this host gives %u", v->id, n, now->nent);
    for (unsigned i = 0; !rc && i < n; i++) {
        /* Entry by entry: both tables come from the same code, and a table
         * may hold a leaf twice (KVM uses the first); by leaf otherwise. */
        const struct kvm_cpuid_entry2 *h = same_leaf(&now->entries[i], &saved[i])
                                               ? &now->entries[i]
                                               : find_leaf(now->entries, now->nent, &saved[i]);
        struct kvm_cpuid_entry2 a, b;

        if (h) {
            a = static_part(h);
            b = static_part(&saved[i]);
        }
        if (!h)
            rc = herd_err_set(err, -EINVAL, "", "CPUID mismatch on vCPU %u: leaf %#x.%u of the "
                              "snapshot is not on this host", v->id, saved[i].function,
                              saved[i].index);
        else if (a.eax != b.eax || a.ebx != b.ebx || a.ecx != b.ecx || a.edx != b.edx)
            rc = herd_err_set(err, -EINVAL, "", "CPUID mismatch on vCPU %u: leaf %#x.%u differs "
                              "between the snapshot (%08x %08x %08x %08x) and this host (%08x "
                              "%08x %08x %08x)", v->id, saved[i].function, saved[i].index,
                              saved[i].eax, saved[i].ebx, saved[i].ecx, saved[i].edx, h->eax,
                              h->ebx, h->ecx, h->edx);
    }
    free(now);
    return rc;
}

/* ---- one vCPU ----------------------------------------------------------------- */

/* The fixed-size per-vCPU sections: KVM get/set request and size. */
struct vcpu_part {
    uint32_t type;
    unsigned long get, set;
    size_t size;
    const char *name;
};

static const struct vcpu_part parts[] = {
    {SNAP_S_VCPU_SREGS, KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), "special registers"},
    {SNAP_S_VCPU_REGS, KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), "registers"},
    {SNAP_S_VCPU_XSAVE, KVM_GET_XSAVE, KVM_SET_XSAVE, sizeof(struct kvm_xsave), "XSAVE area"},
    {SNAP_S_VCPU_XCRS, KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), "XCRs"},
    {SNAP_S_VCPU_DEBUGREGS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs),
     "debug registers"},
    {SNAP_S_VCPU_LAPIC, KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), "LAPIC"},
};

static const struct vcpu_part late_parts[] = {
    {SNAP_S_VCPU_EVENTS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events),
     "pending events"},
    {SNAP_S_VCPU_MP_STATE, KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state),
     "MP state"},
};

static int save_part(struct snap_writer *w, const struct vcpu *v, const struct vcpu_part *p,
                     struct herd_err *err)
{
    uint8_t buf[sizeof(struct kvm_xsave)] __attribute__((aligned(16)));

    _Static_assert(sizeof(struct kvm_xsave) >= sizeof(struct kvm_lapic_state), "buffer size");
    memset(buf, 0, sizeof(buf));
    if (ioctl(v->fd, p->get, buf) < 0)
        return ioctl_err(-1, err, p->name, v->id);
    snap_add(w, p->type, v->id, buf, p->size);
    return 0;
}

static int load_part(const struct snap_reader *r, const struct vcpu *v, const struct vcpu_part *p,
                     struct herd_err *err)
{
    uint8_t buf[sizeof(struct kvm_xsave)] __attribute__((aligned(16)));
    char what[64];
    const void *s;

    snprintf(what, sizeof(what), "%s of vCPU %u", p->name, v->id);
    s = snap_get(r, p->type, v->id, p->size, what, err);
    if (!s)
        return err->code;
    memcpy(buf, s, p->size); /* aligned for KVM, and KVM may not write into the file's copy */
    if (ioctl(v->fd, p->set, buf) < 0)
        return herd_err_set(err, -errno, "", "KVM refused the %s: %s", what, strerror(errno));
    return 0;
}

int snap_save_vcpu(struct snap_writer *w, const struct vcpu *v, const struct kvm *kvm,
                   struct herd_err *err)
{
    int rc = save_cpuid(w, v, err);

    for (size_t i = 0; !rc && i < sizeof(parts) / sizeof(parts[0]); i++)
        rc = save_part(w, v, &parts[i], err);
    if (!rc)
        rc = save_msrs(w, v, kvm, err);
    for (size_t i = 0; !rc && i < sizeof(late_parts) / sizeof(late_parts[0]); i++)
        rc = save_part(w, v, &late_parts[i], err);
    return rc;
}

int snap_load_vcpu(const struct snap_reader *r, const struct vcpu *v, struct herd_err *err)
{
    int rc = check_cpuid(r, v, err);

    for (size_t i = 0; !rc && i < sizeof(parts) / sizeof(parts[0]); i++)
        rc = load_part(r, v, &parts[i], err);
    if (!rc)
        rc = load_msrs(r, v, err);
    for (size_t i = 0; !rc && i < sizeof(late_parts) / sizeof(late_parts[0]); i++)
        rc = load_part(r, v, &late_parts[i], err);
    return rc;
}

/* ---- the VM: interrupt controllers, PIT, clock ---------------------------------- */

static const struct {
    uint32_t chip;
    const char *name;
} chips[] = {
    {KVM_IRQCHIP_PIC_MASTER, "master PIC"},
    {KVM_IRQCHIP_PIC_SLAVE, "slave PIC"},
    {KVM_IRQCHIP_IOAPIC, "IOAPIC"},
};

int snap_save_vm(struct snap_writer *w, const struct kvm *kvm, struct herd_err *err)
{
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;

    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++) {
        struct kvm_irqchip c = {.chip_id = chips[i].chip};

        if (ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &c) < 0)
            return herd_err_set(err, -errno, "", "KVM_GET_IRQCHIP (%s): %s", chips[i].name,
                                strerror(errno));
        snap_add(w, SNAP_S_IRQCHIP, chips[i].chip, &c, sizeof(c));
    }
    memset(&pit, 0, sizeof(pit));
    if (ioctl(kvm->vm_fd, KVM_GET_PIT2, &pit) < 0)
        return herd_err_set(err, -errno, "", "KVM_GET_PIT2: %s", strerror(errno));
    snap_add(w, SNAP_S_PIT, 0, &pit, sizeof(pit));
    memset(&clock, 0, sizeof(clock));
    if (ioctl(kvm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
        return herd_err_set(err, -errno, "", "KVM_GET_CLOCK: %s", strerror(errno));
    snap_add(w, SNAP_S_CLOCK, 0, &clock, sizeof(clock));
    return 0;
}

int snap_load_vm(const struct snap_reader *r, const struct kvm *kvm, struct herd_err *err)
{
    const void *s;

    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++) {
        struct kvm_irqchip c;

        s = snap_get(r, SNAP_S_IRQCHIP, chips[i].chip, sizeof(c), chips[i].name, err);
        if (!s)
            return err->code;
        memcpy(&c, s, sizeof(c));
        if (c.chip_id != chips[i].chip)
            return herd_err_set(err, -EINVAL, "", "snapshot's %s names chip %u", chips[i].name,
                                c.chip_id);
        if (ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &c) < 0)
            return herd_err_set(err, -errno, "", "KVM refused the %s: %s", chips[i].name,
                                strerror(errno));
    }
    s = snap_get(r, SNAP_S_PIT, 0, sizeof(struct kvm_pit_state2), "PIT", err);
    if (!s)
        return err->code;
    {
        struct kvm_pit_state2 pit;

        memcpy(&pit, s, sizeof(pit));
        if (ioctl(kvm->vm_fd, KVM_SET_PIT2, &pit) < 0)
            return herd_err_set(err, -errno, "", "KVM refused the PIT: %s", strerror(errno));
    }
    s = snap_get(r, SNAP_S_CLOCK, 0, sizeof(struct kvm_clock_data), "KVM clock", err);
    if (!s)
        return err->code;
    {
        struct kvm_clock_data clock;

        memcpy(&clock, s, sizeof(clock));
        clock.flags = 0; /* only the clock value: the realtime pairing is of the old host */
        if (ioctl(kvm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
            return herd_err_set(err, -errno, "", "KVM refused the clock: %s", strerror(errno));
    }
    return 0;
}
