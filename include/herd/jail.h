/*
 * herd-vmm's confinement (docs/security.md): an optional cgroup, a switch
 * to a per-guest uid/gid, every capability dropped (bounding set too),
 * no_new_privs, and one seccomp filter per thread class.
 *
 * Order, all in the main thread except jail_enter:
 *   jail_join_cgroup   first, so guest RAM is charged to the guest's cgroup
 *   (vm_create opens /dev/kvm, RAM, images, taps; the control socket exists)
 *   jail_prepare       builds the filters (BPF in memory), the syscall name
 *                      table and the SIGSYS handler; loads what glibc would
 *                      load lazily later (libgcc_s for pthread_cancel)
 *   jail_drop          uid/gid, capabilities, no_new_privs; single-threaded
 *   jail_enter(class)  each thread as it starts, the main thread last (after
 *                      it started every other thread)
 */
#ifndef HERD_JAIL_H
#define HERD_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "herd/error.h"

/* A thread made a system call its class does not allow. Even, like every
 * herd-vmm status, so it never collides with a debug-exit verdict. */
#define VMM_EXIT_SECCOMP 6

enum jail_class {
    JAIL_MAIN,      /* waits for the stop, then tears the VM down */
    JAIL_VCPU,      /* KVM_RUN and the device models it calls */
    JAIL_IO,        /* virtio device I/O threads (queues, tap, disk) */
    JAIL_CONTROL,   /* the control socket */
    JAIL_SERIAL_IN, /* stdin to the UART */
    JAIL_NR_CLASSES
};

struct jail_opts {
    const char *cgroup; /* directory of a cgroup v2 group, or NULL */
    long uid, gid;      /* -1: keep */
    bool seccomp;       /* install the filters (on by default) */
};

const char *jail_class_name(enum jail_class c);

/* Writes our pid to PATH/cgroup.procs. */
int jail_join_cgroup(const char *path, struct herd_err *err);

/* Builds everything jail_enter needs, so that it is one system call. */
int jail_prepare(const struct jail_opts *o, struct herd_err *err);

/* setgroups(0)/setgid/setuid when asked, then drops every capability
 * (effective, permitted, inheritable, ambient, bounding) and sets
 * no_new_privs. Must run before any other thread exists. */
int jail_drop(const struct jail_opts *o, struct herd_err *err);

/* Installs the calling thread's filter (nothing when seccomp is off).
 * A failure here ends the process: a thread must never run unconfined. */
void jail_enter(enum jail_class c);

/* Whether seccomp filters are being installed (false: --seccomp=off, or a
 * sanitizer build). */
bool jail_seccomp_active(void);

/* --jail-check: opens /proc/self/{status,cgroup,task} now (call it once the
 * threads are started and before the main thread's filter), then
 * jail_report prints what is in effect once every thread is confined. */
int jail_report_open(void);
void jail_report(FILE *out, unsigned expect_threads);

#endif
