/*
 * vCPU setup and run loop. The loop runs on its own thread; device models
 * are called directly from it (they lock internally). A stop is seen either
 * at the top of the loop or, if the vCPU is inside KVM_RUN, through the kick
 * signal plus kvm_run->immediate_exit, which closes the race between checking
 * the flag and entering the guest.
 */
#include "herd/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "herd/boot_cpu.h"
#include "herd/cpuid.h"
#include "herd/jail.h"
#include "herd/log.h"

#define KICK_SIGNAL SIGUSR1

#define MSR_IA32_TSC            0x10
#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MISC_ENABLE    0x1a0
#define MSR_MTRR_DEF_TYPE       0x2ff
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102
#define MISC_ENABLE_FAST_STRING 0x1
#define MTRR_ENABLE_WB          0x806 /* MTRRs on, default type write-back */

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static void kick_handler(int sig)
{
    (void)sig; /* only there to interrupt KVM_RUN */
}

int vcpu_setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
    return sigaction(KICK_SIGNAL, &sa, NULL) ? -errno : 0;
}

int vcpu_create(struct vcpu *v, const struct kvm *kvm, unsigned id, const struct vcpu_env *env,
                struct herd_err *err)
{
    memset(v, 0, sizeof(*v));
    v->id = id;
    v->env = env;
    v->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (v->fd < 0) {
        herd_err_set(err, -errno, "", "KVM_CREATE_VCPU %u: %s", id, strerror(errno));
        return -errno;
    }
    v->run_size = (size_t)kvm->run_size;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        int rc = -errno;

        herd_err_set(err, rc, "", "mmap of vCPU %u's kvm_run: %s", id, strerror(errno));
        close(v->fd);
        v->fd = -1;
        v->run = NULL;
        return rc;
    }
    return 0;
}

void vcpu_destroy(struct vcpu *v)
{
    if (v->run)
        munmap(v->run, v->run_size);
    if (v->fd >= 0)
        close(v->fd);
    v->run = NULL;
    v->fd = -1;
}

static int set_cpuid(struct vcpu *v, const struct kvm_cpuid_entry2 *supported, unsigned nr,
                     unsigned nr_vcpus)
{
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nr * sizeof(c->entries[0]));
    int rc = 0;

    if (!c)
        return -ENOMEM;
    c->nent = nr;
    memcpy(c->entries, supported, nr * sizeof(c->entries[0]));
    cpuid_filter(c->entries, nr, v->id, nr_vcpus);
    if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
        rc = -errno;
    free(c);
    return rc;
}

static int set_msrs(struct vcpu *v)
{
    static const struct {
        uint32_t index;
        uint64_t value;
    } boot_msrs[] = {
        {MSR_IA32_SYSENTER_CS, 0}, {MSR_IA32_SYSENTER_ESP, 0}, {MSR_IA32_SYSENTER_EIP, 0},
        {MSR_STAR, 0}, {MSR_LSTAR, 0}, {MSR_CSTAR, 0}, {MSR_SYSCALL_MASK, 0},
        {MSR_KERNEL_GS_BASE, 0}, {MSR_IA32_TSC, 0},
        {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING}, {MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB},
    };
    const unsigned n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[sizeof(boot_msrs) / sizeof(boot_msrs[0])];
    } msrs;
    int done;

    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = n;
    for (unsigned i = 0; i < n; i++) {
        msrs.e[i].index = boot_msrs[i].index;
        msrs.e[i].data = boot_msrs[i].value;
    }
    done = ioctl(v->fd, KVM_SET_MSRS, &msrs);
    if (done < 0)
        return -errno;
    if ((unsigned)done < n) {
        log_warn("vCPU %u: KVM refused MSR %#x (and %u after it); continuing without", v->id,
                 boot_msrs[done].index, n - (unsigned)done - 1);
    }
    return 0;
}

static int set_fpu(struct vcpu *v)
{
    struct kvm_fpu fpu;

    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;   /* x87 reset value: all exceptions masked */
    fpu.mxcsr = 0x1f80; /* SSE reset value */
    return ioctl(v->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static void set_lvt_mode(struct kvm_lapic_state *lapic, unsigned reg, uint32_t mode)
{
    uint32_t val;

    memcpy(&val, &lapic->regs[reg], sizeof(val));
    val = (val & ~0x700u) | (mode << 8);
    memcpy(&lapic->regs[reg], &val, sizeof(val));
}

/* LINT0 takes the 8259's ExtINT and LINT1 NMIs, as the MP table says. */
static int set_lapic(struct vcpu *v)
{
    struct kvm_lapic_state lapic;

    if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
        return -errno;
    set_lvt_mode(&lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
    set_lvt_mode(&lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
    return ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0 ? -errno : 0;
}

int vcpu_init_cpu(struct vcpu *v, const struct kvm_cpuid_entry2 *supported, unsigned nr,
                  unsigned nr_vcpus, struct herd_err *err)
{
    int rc;

    rc = set_cpuid(v, supported, nr, nr_vcpus);
    if (rc) {
        herd_err_set(err, rc, "", "vCPU %u: KVM_SET_CPUID2: %s", v->id, strerror(-rc));
        return rc;
    }
    rc = set_msrs(v);
    if (rc) {
        herd_err_set(err, rc, "", "vCPU %u: KVM_SET_MSRS: %s", v->id, strerror(-rc));
        return rc;
    }
    rc = set_fpu(v);
    if (rc) {
        herd_err_set(err, rc, "", "vCPU %u: KVM_SET_FPU: %s", v->id, strerror(-rc));
        return rc;
    }
    rc = set_lapic(v);
    if (rc)
        herd_err_set(err, rc, "", "vCPU %u: KVM_GET/SET_LAPIC: %s", v->id, strerror(-rc));
    return rc;
}

int vcpu_init_boot_regs(struct vcpu *v, const struct boot_entry *entry, struct herd_err *err)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs;

    if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
        herd_err_set(err, -errno, "", "vCPU %u: KVM_GET_SREGS: %s", v->id, strerror(errno));
        return -errno;
    }
    boot_cpu_sregs(entry, &sregs);
    if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0) {
        herd_err_set(err, -errno, "", "vCPU %u: KVM_SET_SREGS: %s", v->id, strerror(errno));
        return -errno;
    }
    boot_cpu_regs(entry, &regs);
    if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
        herd_err_set(err, -errno, "", "vCPU %u: KVM_SET_REGS: %s", v->id, strerror(errno));
        return -errno;
    }
    return 0;
}

static int append(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*off >= len)
        return 0;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n;
    return n;
}

static void dump_segment(char *buf, size_t len, size_t *off, const char *name,
                         const struct kvm_segment *s)
{
    append(buf, len, off, "%s=%04x base=%llx lim=%x type=%x dpl=%u l=%u db=%u p=%u\n", name,
           s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl, s->l, s->db,
           s->present);
}

void vcpu_dump_regs(const struct vcpu *v, char *buf, size_t len)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    size_t off = 0;

    buf[0] = 0;
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
        snprintf(buf, len, "(registers unavailable: %s)", strerror(errno));
        return;
    }
    append(buf, len, &off, "vCPU %u registers:\n", v->id);
    append(buf, len, &off, "RIP=%016llx RSP=%016llx RFLAGS=%08llx\n", r.rip, r.rsp, r.rflags);
    append(buf, len, &off, "RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n", r.rax, r.rbx,
           r.rcx, r.rdx);
    append(buf, len, &off, "RSI=%016llx RDI=%016llx RBP=%016llx R8 =%016llx\n", r.rsi, r.rdi,
           r.rbp, r.r8);
    append(buf, len, &off, "R9 =%016llx R10=%016llx R11=%016llx R12=%016llx\n", r.r9, r.r10,
           r.r11, r.r12);
    append(buf, len, &off, "R13=%016llx R14=%016llx R15=%016llx\n", r.r13, r.r14, r.r15);
    append(buf, len, &off, "CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx EFER=%llx\n", s.cr0,
           s.cr2, s.cr3, s.cr4, s.efer);
    dump_segment(buf, len, &off, "CS", &s.cs);
    dump_segment(buf, len, &off, "SS", &s.ss);
    dump_segment(buf, len, &off, "DS", &s.ds);
    dump_segment(buf, len, &off, "TR", &s.tr);
    append(buf, len, &off, "GDT=%llx/%x IDT=%llx/%x", (unsigned long long)s.gdt.base,
           s.gdt.limit, (unsigned long long)s.idt.base, s.idt.limit);
}

static int stopping(const struct vcpu *v)
{
    return __atomic_load_n(v->env->stopping, __ATOMIC_ACQUIRE);
}

/* A fatal guest event: log why with the registers, ask the VM to end. */
static void crash(struct vcpu *v, const char *why)
{
    char regs[1600];

    vcpu_dump_regs(v, regs, sizeof(regs));
    log_error("%s\n%s", why, regs);
    vm_stopper_stop(&v->env->stopper, VMM_EXIT_GUEST_CRASH, why);
}

static void handle_io(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool write = run->io.direction == KVM_EXIT_IO_OUT;

    /* String I/O (rep ins/outs) comes as `count` back-to-back items. */
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
        bus_dispatch(v->env->pio, run->io.port, data, run->io.size, write);
}

static void handle_mmio(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    unsigned len = run->mmio.len > 8 ? 8 : run->mmio.len;

    bus_dispatch(v->env->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

static void handle_system_event(struct vcpu *v)
{
    switch (v->run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
        vm_stopper_stop(&v->env->stopper, VMM_EXIT_OK, "guest shut down");
        break;
    case KVM_SYSTEM_EVENT_RESET:
        vm_stopper_stop(&v->env->stopper, VMM_EXIT_OK, "guest reset");
        break;
    default: {
        char why[80];

        snprintf(why, sizeof(why), "guest system event %u (crash)", v->run->system_event.type);
        crash(v, why);
        break;
    }
    }
}

static void handle_internal_error(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    char why[256];
    size_t off = 0;

    append(why, sizeof(why), &off, "KVM internal error, suberror %u%s", run->internal.suberror,
           run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)"
                                                                   : "");
    for (uint32_t i = 0; i < run->internal.ndata && i < 4; i++)
        append(why, sizeof(why), &off, " data[%u]=%llx", i,
               (unsigned long long)run->internal.data[i]);
    crash(v, why);
}

/* Handles one exit; returns false when the loop should end. */
static bool handle_exit(struct vcpu *v)
{
    char why[128];

    switch (v->run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(v);
        return true;
    case KVM_EXIT_MMIO:
        handle_mmio(v);
        return true;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT:
        return true;
    case KVM_EXIT_SHUTDOWN:
        crash(v, "guest triple fault (KVM_EXIT_SHUTDOWN)");
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        handle_system_event(v);
        return false;
    case KVM_EXIT_INTERNAL_ERROR:
        handle_internal_error(v);
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(why, sizeof(why), "VM entry failed, hardware reason %#llx",
                 (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
        crash(v, why);
        return false;
    default:
        snprintf(why, sizeof(why), "unexpected KVM exit reason %u", v->run->exit_reason);
        crash(v, why);
        return false;
    }
}

/* Waits outside KVM_RUN while a pause is requested (see vcpu_pause_all). */
static void park(struct vcpu *v)
{
    struct vcpu_pause *p = v->env->pause;

    pthread_mutex_lock(&p->lock);
    v->parked = 1;
    p->parked++;
    pthread_cond_broadcast(&p->cond);
    while (__atomic_load_n(&p->requested, __ATOMIC_SEQ_CST) && !stopping(v))
        pthread_cond_wait(&p->cond, &p->lock);
    p->parked--;
    v->parked = 0;
    pthread_mutex_unlock(&p->lock);
    /* A pause kick may have left immediate_exit set; both flags are read
     * again at the top of the loop, after this store. */
    __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

static void count_running(struct vcpu *v, int delta)
{
    struct vcpu_pause *p = v->env->pause;

    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->running = (unsigned)((int)p->running + delta);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void *vcpu_main(void *arg)
{
    struct vcpu *v = arg;
    struct vcpu_pause *p = v->env->pause;

    jail_enter(JAIL_VCPU);

    count_running(v, 1);
    while (!stopping(v)) {
        if (p && __atomic_load_n(&p->requested, __ATOMIC_SEQ_CST)) {
            park(v);
            continue;
        }
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                /* Full barrier: a kick's flags stored before this are seen
                 * by the checks at the top of the loop. */
                __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
                continue;
            }
            char why[96];

            snprintf(why, sizeof(why), "KVM_RUN failed on vCPU %u: %s", v->id, strerror(errno));
            crash(v, why);
            break;
        }
        v->exits++;
        if (!handle_exit(v))
            break;
    }
    count_running(v, -1);
    return NULL;
}

int vcpu_start(struct vcpu *v)
{
    int rc;

    /* The caller blocks its termination signals; the kick must stay open. */
    rc = pthread_create(&v->thread, NULL, vcpu_main, v);
    if (rc)
        return -rc;
    __atomic_store_n(&v->thread_started, 1, __ATOMIC_RELEASE);
    return 0;
}

void vcpu_kick(struct vcpu *v)
{
    if (!__atomic_load_n(&v->thread_started, __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
    pthread_kill(v->thread, KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
    if (v->thread_started) {
        pthread_join(v->thread, NULL);
        __atomic_store_n(&v->thread_started, 0, __ATOMIC_RELEASE);
    }
}

void vcpu_pause_init(struct vcpu_pause *p)
{
    pthread_condattr_t attr;

    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
}

void vcpu_pause_destroy(struct vcpu_pause *p)
{
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

static void timespec_add_ms(struct timespec *t, unsigned ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static int timespec_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int vcpu_pause_all(struct vcpu_pause *p, struct vcpu *vcpus, unsigned n, const int *stopping_flag,
                   unsigned timeout_ms)
{
    struct timespec now, deadline, next;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    timespec_add_ms(&deadline, timeout_ms);
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->requested, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        /* Checked under the lock: once vcpu_pause_wake_for_stop has run,
         * this sees the stop and kicks nobody (the vCPUs may be joined). */
        if (__atomic_load_n(stopping_flag, __ATOMIC_SEQ_CST)) {
            rc = -ESHUTDOWN;
            break;
        }
        if (p->parked >= p->running)
            break;
        /* Kicked again on every round: a vCPU that was between its check
         * and KVM_RUN when its signal came would otherwise stay inside. */
        for (unsigned i = 0; i < n; i++)
            if (!vcpus[i].parked)
                vcpu_kick(&vcpus[i]);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!timespec_before(&now, &deadline)) {
            rc = -ETIMEDOUT;
            break;
        }
        next = now;
        timespec_add_ms(&next, 10);
        if (timespec_before(&deadline, &next))
            next = deadline;
        pthread_cond_timedwait(&p->cond, &p->lock, &next);
    }
    if (rc) {
        __atomic_store_n(&p->requested, 0, __ATOMIC_SEQ_CST);
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void vcpu_resume_all(struct vcpu_pause *p)
{
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->requested, 0, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

bool vcpu_pause_requested(struct vcpu_pause *p)
{
    return __atomic_load_n(&p->requested, __ATOMIC_SEQ_CST) != 0;
}

void vcpu_pause_wake_for_stop(struct vcpu_pause *p)
{
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}
