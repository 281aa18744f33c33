/*
 * The control socket's callbacks for a running struct vm: a status
 * snapshot, pause/resume through the vCPU pause gate, stop as an ordinary
 * stop request (exit status 0, devices torn down by vm_destroy, which
 * drains and flushes the disks), powerdown as a press of the ACPI power
 * button (the guest shuts itself down, or not).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "herd/control.h"
#include "herd/debugport.h"
#include "herd/snapshot_vm.h"
#include "herd/vm.h"
#include "herd/virtio_net.h"

static void vm_status(void *ctx, struct control_status *st)
{
    struct vm *vm = ctx;
    const struct vmm_config *cfg = vm->cfg;

    memset(st, 0, sizeof(*st));
    if (__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE))
        st->state = CONTROL_STOPPING;
    else
        st->state = vcpu_pause_requested(&vm->pause) ? CONTROL_PAUSED : CONTROL_RUNNING;
    st->pid = (long)getpid();
    st->uptime_ms = (debugport_now_ns() - debugport_process_start_ns()) / 1000000ULL;
    st->cpus = vm->nr_vcpus;
    st->mem = cfg->mem;
    st->kernel = cfg->kernel;
    st->cmdline = cfg->cmdline;
    st->boot_marker_us = __atomic_load_n(&vm->debugport.first_marker_us, __ATOMIC_RELAXED);
    st->nr_disks = cfg->nr_disks;
    for (unsigned i = 0; i < cfg->nr_disks; i++) {
        st->disks[i].path = cfg->disks[i].path;
        st->disks[i].format = cfg->disks[i].format;
        st->disks[i].readonly = cfg->disks[i].readonly;
    }
    for (unsigned i = 0; i < cfg->nr_nics; i++) {
        if (!vm->nics[i])
            continue;
        st->nics[st->nr_nics].tap = cfg->nics[i].tap;
        virtio_net_info(vm->nics[i], st->nics[st->nr_nics].mac, &st->nics[st->nr_nics].path,
                        &st->nics[st->nr_nics].stats);
        st->nr_nics++;
    }
}

static size_t vm_input(void *ctx, const uint8_t *data, size_t len)
{
    struct vm *vm = ctx;

    return serial_receive(&vm->serial, data, len);
}

static int vm_pause(void *ctx, struct herd_err *err)
{
    struct vm *vm = ctx;
    int rc = vcpu_pause_all(&vm->pause, vm->vcpus, vm->nr_vcpus, &vm->stopping,
                            CONTROL_PAUSE_TIMEOUT_MS);

    if (rc == -ESHUTDOWN)
        herd_err_set(err, rc, "", "pause: the guest is stopping");
    else if (rc == -ETIMEDOUT)
        herd_err_set(err, rc, "", "pause: a vCPU did not leave KVM_RUN within %d ms; the guest "
                     "keeps running", CONTROL_PAUSE_TIMEOUT_MS);
    else if (rc)
        herd_err_set(err, rc, "", "pause: %s", strerror(-rc));
    return rc;
}

static int vm_resume(void *ctx, struct herd_err *err)
{
    struct vm *vm = ctx;

    if (__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE))
        return herd_err_set(err, -ESHUTDOWN, "", "resume: the guest is stopping");
    vcpu_resume_all(&vm->pause);
    return 0;
}

static int vm_powerdown(void *ctx, struct herd_err *err)
{
    int rc = vm_press_power_button(ctx);

    if (rc == -ESHUTDOWN)
        herd_err_set(err, rc, "", "powerdown: the guest is stopping");
    else if (rc)
        herd_err_set(err, rc, "", "powerdown: %s", strerror(-rc));
    return rc;
}

static int vm_snapshot_op(void *ctx, int fd, struct herd_err *err)
{
    return vm_snapshot(ctx, fd, err);
}

static void vm_stop(void *ctx)
{
    vm_request_stop(ctx, VMM_EXIT_OK, "stopped by control request");
}

const struct control_ops control_vm_ops = {
    .status = vm_status,
    .pause = vm_pause,
    .resume = vm_resume,
    .stop = vm_stop,
    .input = vm_input,
    .powerdown = vm_powerdown,
    .snapshot = vm_snapshot_op,
};
