/*
 * The seccomp policy: per thread class, the system calls it makes once the
 * guest runs, and for ioctl the request numbers. Found by strace -f over the
 * integration tests (probe-vmm, probe-virtio-vmm incl. hostile resets and
 * the tap pair, vmm-control, vmm-jail) and by reading the code paths; see
 * docs/security.md for why each group is there. Everything else traps.
 *
 * Rules every class shares: glibc's own needs (futex, signal masks, thread
 * exit, malloc's arenas) and the log line (write). mmap and mprotect never
 * with PROT_EXEC: no new code can appear in herd-vmm.
 */
#include "seccomp_policy.h"

#include <errno.h>
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/ioctl.h>

#define END (-1)

static const int base_calls[] = {
    SCMP_SYS(futex), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(write),
    SCMP_SYS(madvise), SCMP_SYS(munmap), SCMP_SYS(brk), SCMP_SYS(mremap),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
    END,
};

/* Disk requests: synchronous fallbacks, qcow2 metadata, flushes, and the
 * io_uring ring opened before confinement (entering it, never setting one up). */
#define BLOCK_CALLS                                                                            \
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv),                  \
        SCMP_SYS(pwritev), SCMP_SYS(preadv2), SCMP_SYS(pwritev2), SCMP_SYS(fdatasync),          \
        SCMP_SYS(fsync), SCMP_SYS(fallocate), SCMP_SYS(io_uring_enter)

static const int vcpu_calls[] = {
    /* device models run here: eventfds, tap offloads, epoll re-arming, a
     * virtio reset's drain of the disk queue, and virtio-net's TX (tap
     * writes; the rate limiter's timer) */
    BLOCK_CALLS, SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(epoll_ctl), SCMP_SYS(ioctl),
    SCMP_SYS(timerfd_settime), END,
};

static const int io_calls[] = {
    BLOCK_CALLS, SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), END,
};

static const int control_calls[] = {
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(accept4),
    SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(close), SCMP_SYS(read),
    SCMP_SYS(tgkill), /* pause kicks the vCPUs out of KVM_RUN */
    SCMP_SYS(ioctl),  /* console input raises the UART's interrupt */
    /* snapshot: the target file comes as SCM_RIGHTS with the request; a
     * disk's requests in flight complete first (the block calls) */
    SCMP_SYS(recvmsg), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(ftruncate),
    BLOCK_CALLS,
    END,
};

static const int serial_in_calls[] = {
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(read), SCMP_SYS(ioctl), END,
};

static const int main_calls[] = {
    /* wait for the stop: eventfd + signalfd */
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(read),
    /* kick and join the vCPUs, cancel the serial input thread */
    SCMP_SYS(tgkill),
    /* tear down: flush and close disks (qcow2 metadata, OFD lock release),
     * close everything, remove our control socket */
    BLOCK_CALLS, SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(newfstatat), SCMP_SYS(fstat),
    SCMP_SYS(unlink), SCMP_SYS(epoll_ctl), SCMP_SYS(ioctl), SCMP_SYS(lseek),
    /* a qcow2 file grown ahead of its writes is cut back to its last cluster */
    SCMP_SYS(ftruncate),
    END,
};

static const unsigned long vcpu_ioctls[] = {
    KVM_RUN, KVM_IRQ_LINE, KVM_SET_GSI_ROUTING, /* MSI-X table writes */
    KVM_GET_REGS, KVM_GET_SREGS,                /* the crash dump */
    TUNSETOFFLOAD,                              /* virtio-net FEATURES_OK */
    VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE, VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE,
    VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL, VHOST_NET_SET_BACKEND,
    0,
};

static const unsigned long serial_in_ioctls[] = {KVM_IRQ_LINE, 0};
static const unsigned long control_ioctls[] = {
    KVM_IRQ_LINE,
    /* snapshot of the paused guest: KVM's state, read only */
    KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_XSAVE, KVM_GET_XCRS, KVM_GET_DEBUGREGS, KVM_GET_LAPIC,
    KVM_GET_MSRS, KVM_GET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_GET_CPUID2, KVM_GET_MSR_INDEX_LIST,
    KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_CLOCK,
    0,
};

static const unsigned long main_ioctls[] = {
    KVM_IRQFD, KVM_IOEVENTFD, KVM_SET_GSI_ROUTING, /* deassign at device teardown */
    VHOST_NET_SET_BACKEND,                         /* detach the tap */
    TCGETS, TCSETS, TCSETSW, TCSETSF,              /* restore the terminal */
    0,
};

static int allow_list(scmp_filter_ctx ctx, const int *calls)
{
    for (; *calls != END; calls++) {
        if (*calls == SCMP_SYS(ioctl))
            continue; /* only with the listed requests */
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, *calls, 0);

        if (rc)
            return rc;
    }
    return 0;
}

static int allow_ioctls(scmp_filter_ctx ctx, const unsigned long *req)
{
    for (; req && *req; req++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, *req));

        if (rc)
            return rc;
    }
    return 0;
}

int seccomp_policy_add(scmp_filter_ctx ctx, enum jail_class c, struct herd_err *err)
{
    static const int *const calls[JAIL_NR_CLASSES] = {
        [JAIL_MAIN] = main_calls, [JAIL_VCPU] = vcpu_calls, [JAIL_IO] = io_calls,
        [JAIL_CONTROL] = control_calls, [JAIL_SERIAL_IN] = serial_in_calls,
    };
    static const unsigned long *const ioctls[JAIL_NR_CLASSES] = {
        [JAIL_MAIN] = main_ioctls, [JAIL_VCPU] = vcpu_ioctls,
        [JAIL_SERIAL_IN] = serial_in_ioctls, [JAIL_CONTROL] = control_ioctls,
    };
    int rc = allow_list(ctx, base_calls);

    if (!rc)
        rc = allow_list(ctx, calls[c]);
    if (!rc)
        rc = allow_ioctls(ctx, ioctls[c]);
    /* Memory, never executable. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* glibc's malloc reads /proc/sys/vm/overcommit_memory the first time the
     * main thread shrinks another thread's arena (at teardown); it copes
     * with a failure, so there opening a file fails instead of trapping. */
    if (!rc && c == JAIL_MAIN)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
    if (rc)
        herd_err_set(err, rc, "", "seccomp: building the %s filter: %s", jail_class_name(c),
                     strerror(-rc));
    return rc;
}
