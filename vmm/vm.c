/*
 * Assembles a guest: KVM, RAM, kernel, firmware tables, devices and vCPUs,
 * then runs it until a stop request (guest reset/shutdown, debug-exit, crash)
 * or a termination signal, and reports how it ended.
 */
#include "herd/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "herd/acpi.h"
#include "herd/acpi_power.h"
#include "herd/boot.h"
#include "herd/boot_cpu.h"
#include "herd/cpuid.h"
#include "herd/e820.h"
#include "herd/jail.h"
#include "herd/layout.h"
#include "herd/log.h"
#include "herd/mptable.h"
#include "herd/snapshot_vm.h"
#include "herd/virtio_blk.h"
#include "herd/virtio_net.h"

struct mapped_file {
    uint8_t *data;
    size_t len;
};

static int map_file(const char *what, const char *path, struct mapped_file *f, struct herd_err *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    f->data = NULL;
    f->len = 0;
    if (fd < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "%s %s: %s", what, path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        herd_err_set(err, -EINVAL, "", "%s %s: not a non-empty regular file", what, path);
        close(fd);
        return -EINVAL;
    }
    f->data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    rc = f->data == MAP_FAILED ? -errno : 0;
    close(fd);
    if (rc) {
        f->data = NULL;
        herd_err_set(err, rc, "", "%s %s: mmap: %s", what, path, strerror(-rc));
        return rc;
    }
    f->len = (size_t)st.st_size;
    return 0;
}

static void unmap_file(struct mapped_file *f)
{
    if (f->data)
        munmap(f->data, f->len);
    f->data = NULL;
}

void vm_request_stop(struct vm *vm, int status, const char *reason)
{
    uint64_t one = 1;

    pthread_mutex_lock(&vm->stop_lock);
    if (!vm->stopping) {
        vm->exit_status = status;
        snprintf(vm->stop_reason, sizeof(vm->stop_reason), "%s", reason);
        __atomic_store_n(&vm->stopping, 1, __ATOMIC_RELEASE);
        if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
            /* eventfd writes of 1 cannot fail short of a bug; the vCPU that
             * called us stops on its own and vm_run polls the flag too. */
        }
    }
    pthread_mutex_unlock(&vm->stop_lock);
}

static void stop_cb(void *ctx, int status, const char *reason)
{
    vm_request_stop(ctx, status, reason);
}

static void serial_irq(void *ctx, int level)
{
    struct vm *vm = ctx;

    kvm_irq_line(&vm->kvm, SERIAL0_IRQ, level);
}

static void ged_irq(void *ctx, int level)
{
    struct vm *vm = ctx;

    kvm_irq_line(&vm->kvm, ACPI_GED_GSI, level);
}

int vm_press_power_button(struct vm *vm)
{
    if (__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE))
        return -ESHUTDOWN;
    return acpi_ged_notify(&vm->ged, ACPI_GED_EVT_POWER_BUTTON);
}

static int load_kernel(struct vm *vm, struct herd_err *err)
{
    struct mapped_file kernel, initrd = {0};
    struct boot_entry entry;
    struct e820_map map;
    struct boot_args args;
    uint64_t rsdp = 0;
    int rc;

    rc = e820_build(&map, &vm->mem);
    if (rc) {
        herd_err_set(err, rc, "", "cannot build the memory map: %s", strerror(-rc));
        return rc;
    }
    rc = acpi_write_tables(&vm->mem, vm->nr_vcpus, &rsdp);
    if (!rc)
        rc = acpi_power_write_reset_vector(&vm->mem);
    if (!rc)
        rc = mptable_write(&vm->mem, vm->nr_vcpus);
    if (rc) {
        herd_err_set(err, rc, "", "cannot write the ACPI and MP tables: %s", strerror(-rc));
        return rc;
    }
    rc = map_file("kernel", vm->cfg->kernel, &kernel, err);
    if (rc)
        return rc;
    if (vm->cfg->initrd) {
        rc = map_file("initrd", vm->cfg->initrd, &initrd, err);
        if (rc) {
            unmap_file(&kernel);
            return rc;
        }
    }
    args = (struct boot_args){.cmdline = vm->cfg->cmdline, .initrd = initrd.data,
                              .initrd_size = initrd.len, .e820 = &map,
                              .rsdp = rsdp};
    struct herd_err why = {0};

    rc = boot_load(&vm->mem, kernel.data, kernel.len, &args, &entry, &why);
    unmap_file(&kernel);
    unmap_file(&initrd);
    if (rc) {
        herd_err_set(err, rc, "", "kernel %s: %s", vm->cfg->kernel, why.msg);
        return rc;
    }
    rc = boot_cpu_write_tables(&vm->mem);
    if (rc) {
        herd_err_set(err, rc, "", "cannot write boot tables: %s", strerror(-rc));
        return rc;
    }
    return vcpu_init_boot_regs(&vm->vcpus[0], &entry, err);
}

static int open_serial_output(struct vm *vm, struct herd_err *err)
{
    switch (vm->cfg->serial) {
    case SERIAL_STDIO:
        return STDOUT_FILENO;
    case SERIAL_NONE:
        return -1;
    case SERIAL_FILE: {
        /* O_APPEND: whoever rotates the file finds the next byte at its
         * end. O_NONBLOCK matters for a FIFO (herdd's console pipe, which
         * herdd drains into a capped console.log): when the reader lags a
         * whole pipe buffer behind, bytes are dropped rather than a vCPU
         * stalled. A FIFO is opened read-write (Linux, fifo(7)): herd-vmm
         * then holds a reader itself, so while herdd is away (restarting,
         * or not yet there when herdd ended right after spawning us) the
         * guest's output waits in the pipe, up to its size, for the next
         * herdd to drain, instead of failing with EPIPE (and the guest's
         * ready line being lost) or the open failing with ENXIO. */
        struct stat st;
        bool fifo = stat(vm->cfg->serial_path, &st) == 0 && S_ISFIFO(st.st_mode);

        if (fifo)
            vm->serial_fd = open(vm->cfg->serial_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        else
            vm->serial_fd = open(vm->cfg->serial_path,
                                 O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
        if (vm->serial_fd < 0) {
            herd_err_set(err, -EIO, "", "serial file %s: %s", vm->cfg->serial_path,
                         strerror(errno));
            return -2;
        }
        if (fifo)
            signal(SIGPIPE, SIG_IGN); /* never expected: we hold a reader */
        return vm->serial_fd;
    }
    }
    return -1;
}

static int create_devices(struct vm *vm, struct herd_err *err)
{
    struct vm_stopper stopper = {.stop = stop_cb, .ctx = vm};
    int out_fd = open_serial_output(vm, err);
    int rc;

    if (out_fd == -2)
        return -EIO;
    bus_init(&vm->pio, "pio");
    bus_init(&vm->mmio, "mmio");
    serial_init(&vm->serial, out_fd, serial_irq, vm);
    i8042_init(&vm->i8042, &stopper);
    debugport_init(&vm->debugport, &stopper, debugport_process_start_ns());
    acpi_ged_init(&vm->ged, ged_irq, vm);
    vm->devices_ready = 1;
    rc = serial_register(&vm->serial, &vm->pio, PORT_SERIAL0);
    if (!rc)
        rc = i8042_register(&vm->i8042, &vm->pio);
    if (!rc)
        rc = debugport_register(&vm->debugport, &vm->pio, &vm->mmio);
    /* The power ports keep a pointer to a stopper that lives as long as the
     * VM: the vCPU environment's (create_vcpus sets the same value again). */
    vm->env.stopper = stopper;
    if (!rc)
        rc = acpi_power_register(&vm->pio, &vm->env.stopper);
    if (!rc)
        rc = acpi_ged_register(&vm->ged, &vm->pio);
    if (rc)
        herd_err_set(err, rc, "", "device registration: %s", strerror(-rc));
    return rc;
}

/* PCI bus 0 and the virtio devices the user asked for. */
static int create_pci_devices(struct vm *vm, struct herd_err *err)
{
    int rc = pci_bus_init(&vm->pci, &vm->pio, &vm->mmio);

    if (rc) {
        herd_err_set(err, rc, "", "PCI bus: %s", strerror(-rc));
        return rc;
    }
    vm->pci_ready = true;
    for (unsigned i = 0; i < vm->cfg->nr_disks; i++) {
        rc = virtio_blk_create(&vm->cfg->disks[i], &vm->kvm, &vm->mem, &vm->pci, &vm->mmio,
                               &vm->disks[i], err);
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < vm->cfg->nr_nics; i++) {
        rc = virtio_net_create(&vm->cfg->nics[i], i, &vm->kvm, &vm->mem, &vm->pci, &vm->mmio,
                               &vm->nics[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

static int start_pci_devices(struct vm *vm)
{
    int rc = 0;

    for (unsigned i = 0; i < vm->cfg->nr_disks && !rc; i++)
        rc = virtio_blk_start(vm->disks[i]);
    for (unsigned i = 0; i < vm->cfg->nr_nics && !rc; i++)
        rc = virtio_net_start(vm->nics[i]);
    return rc;
}

static void destroy_pci_devices(struct vm *vm)
{
    for (unsigned i = 0; i < VMM_MAX_DISKS; i++) {
        virtio_blk_destroy(vm->disks[i]);
        vm->disks[i] = NULL;
    }
    for (unsigned i = 0; i < VMM_MAX_NICS; i++) {
        virtio_net_destroy(vm->nics[i]);
        vm->nics[i] = NULL;
    }
    if (vm->pci_ready) {
        pci_bus_destroy(&vm->pci);
        vm->pci_ready = false;
    }
}

static int create_vcpus(struct vm *vm, struct herd_err *err)
{
    struct kvm_cpuid_entry2 *cpuid = calloc(CPUID_MAX_ENTRIES, sizeof(*cpuid));
    int nr, rc = 0;

    if (!cpuid)
        return -ENOMEM;
    nr = kvm_supported_cpuid(&vm->kvm, cpuid, CPUID_MAX_ENTRIES);
    if (nr < 0) {
        herd_err_set(err, nr, "", "KVM_GET_SUPPORTED_CPUID: %s", strerror(-nr));
        free(cpuid);
        return nr;
    }
    /* Not in KVM's table even where its LAPIC has it (a capability says so). */
    cpuid_set_tsc_deadline(cpuid, (unsigned)nr, vm->kvm.tsc_deadline);
    vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
    if (!vm->vcpus) {
        free(cpuid);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vm->vcpus[i].fd = -1;
    vm->env = (struct vcpu_env){.pio = &vm->pio, .mmio = &vm->mmio,
                                .stopper = {.stop = stop_cb, .ctx = vm},
                                .stopping = &vm->stopping, .pause = &vm->pause};
    for (unsigned i = 0; i < vm->nr_vcpus && !rc; i++) {
        rc = vcpu_create(&vm->vcpus[i], &vm->kvm, i, &vm->env, err);
        if (!rc)
            rc = vcpu_init_cpu(&vm->vcpus[i], cpuid, (unsigned)nr, vm->nr_vcpus, err);
    }
    free(cpuid);
    return rc;
}

/* Guest RAM: fresh, or the snapshot's (mapped copy-on-write, or copied). */
static int create_ram(struct vm *vm, int snap_fd, const struct snap_reader *snap,
                      struct herd_err *err)
{
    const struct vmm_config *cfg = vm->cfg;
    int rc;

    if (snap_fd < 0)
        rc = guest_mem_create(&vm->mem, cfg->mem);
    else
        rc = guest_mem_create_from_file(&vm->mem, cfg->mem, snap_fd, snap->hdr.ram_off,
                                        cfg->restore_copy);
    if (rc)
        herd_err_set(err, rc, "", "guest RAM of %llu MiB%s: %s",
                     (unsigned long long)(cfg->mem >> 20), snap_fd < 0 ? "" : " from the snapshot",
                     strerror(-rc));
    return rc;
}

/* Opens and checks the snapshot named by --restore (header, every section's
 * checksum, and that it is of the machine this configuration builds). */
static int open_snapshot(struct vm *vm, struct snap_reader *snap, struct herd_err *err)
{
    int fd = open(vm->cfg->restore, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        herd_err_set(err, -errno, "--restore", "snapshot %s: %s", vm->cfg->restore,
                     strerror(errno));
        return -1;
    }
    rc = snap_read(snap, fd, err);
    if (!rc)
        rc = vm_snapshot_check_config(vm, snap, err);
    if (rc) {
        snap_reader_free(snap);
        close(fd);
        return -1;
    }
    return fd;
}

static int create_machine(struct vm *vm, int snap_fd, const struct snap_reader *snap,
                          struct herd_err *err)
{
    int rc = create_ram(vm, snap_fd, snap, err);

    if (rc)
        return rc;
    rc = kvm_create_vm(&vm->kvm, &vm->mem, err);
    if (rc)
        return rc;
    rc = create_devices(vm, err);
    if (rc)
        return rc;
    rc = create_pci_devices(vm, err);
    if (rc)
        return rc;
    rc = create_vcpus(vm, err);
    if (rc)
        return rc;
    if (snap_fd < 0)
        return load_kernel(vm, err);
    rc = vm_restore_state(vm, snap, err);
    if (!rc)
        log_info("restored from %s (%s)", vm->cfg->restore,
                 vm->cfg->restore_copy ? "RAM copied" : "RAM mapped copy-on-write");
    return rc;
}

int vm_create(struct vm *vm, const struct vmm_config *cfg, struct herd_err *err)
{
    struct snap_reader snap = {0};
    int rc, snap_fd = -1;

    memset(vm, 0, sizeof(*vm));
    vm->cfg = cfg;
    vm->serial_fd = -1;
    vm->kvm.dev_fd = vm->kvm.vm_fd = -1;
    vm->mem.memfd = -1;
    vm->nr_vcpus = cfg->cpus;
    pthread_mutex_init(&vm->stop_lock, NULL);
    vcpu_pause_init(&vm->pause);
    vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->stop_fd < 0) {
        herd_err_set(err, -errno, "", "eventfd: %s", strerror(errno));
        return -errno;
    }
    rc = kvm_open(&vm->kvm, NULL, err);
    if (rc)
        return rc;
    if (cfg->cpus > (unsigned)vm->kvm.max_vcpus)
        return herd_err_set(err, -EINVAL, "", "cpus: %u requested, KVM on this host allows %d",
                            cfg->cpus, vm->kvm.max_vcpus);
    if (cfg->restore) {
        snap_fd = open_snapshot(vm, &snap, err);
        if (snap_fd < 0)
            return err->code ? err->code : -EINVAL;
    }
    rc = create_machine(vm, snap_fd, &snap, err);
    if (snap_fd >= 0) {
        snap_reader_free(&snap);
        close(snap_fd);
    }
    return rc;
}

static struct termios saved_tty;
static int tty_raw;

static void tty_restore(void)
{
    if (tty_raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
    tty_raw = 0;
}

/* Character-at-a-time input for an interactive console; Ctrl-C still
 * reaches herd-vmm (ISIG stays on). */
static void tty_make_raw(void)
{
    struct termios t;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
        return;
    t = saved_tty;
    t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
    t.c_iflag &= (tcflag_t) ~(ICRNL);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
        tty_raw = 1;
        atexit(tty_restore);
    }
}

/* A supervised guest (--control) has no terminal: SIGHUP from a closed
 * session must not stop it, so it is ignored there. */
static int block_termination_signals(const struct vm *vm, sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    if (vm->cfg->control)
        signal(SIGHUP, SIG_IGN);
    else
        sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
    if (pthread_sigmask(SIG_BLOCK, set, NULL))
        return -1;
    return signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void wait_for_stop(struct vm *vm, int sig_fd)
{
    while (!__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE)) {
        struct pollfd pfd[2] = {{.fd = vm->stop_fd, .events = POLLIN},
                                {.fd = sig_fd, .events = POLLIN}};
        struct signalfd_siginfo si;

        if (poll(pfd, sig_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
            break;
        if (sig_fd >= 0 && (pfd[1].revents & POLLIN) &&
            read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            char why[64];

            snprintf(why, sizeof(why), "stopped by signal %u (%s)", si.ssi_signo,
                     strsignal((int)si.ssi_signo));
            vm_request_stop(vm, 128 + (int)si.ssi_signo, why);
        }
    }
}

int vm_run(struct vm *vm)
{
    sigset_t set;
    int sig_fd, rc;

    rc = vcpu_setup_signals();
    if (rc) {
        log_error("cannot install the vCPU kick signal: %s", strerror(-rc));
        return VMM_EXIT_ERROR;
    }
    sig_fd = block_termination_signals(vm, &set);
    if (vm->cfg->serial == SERIAL_STDIO) {
        tty_make_raw();
        if (serial_start_input(&vm->serial, STDIN_FILENO))
            log_warn("serial input disabled: cannot start its thread");
    }
    /* --jail-check: the vCPU threads start parked, the guest never runs. */
    if (vm->cfg->jail_check)
        __atomic_store_n(&vm->pause.requested, 1, __ATOMIC_SEQ_CST);
    /* Device threads inherit the blocked termination signals, like vCPUs. */
    if (start_pci_devices(vm))
        vm_request_stop(vm, VMM_EXIT_ERROR, "cannot start a device I/O thread");
    for (unsigned i = 0; i < vm->nr_vcpus && !vm->stopping; i++) {
        rc = vcpu_start(&vm->vcpus[i]);
        if (rc) {
            vm_request_stop(vm, VMM_EXIT_ERROR, "cannot start a vCPU thread");
            break;
        }
    }
    /* Every other thread installs its own filter as it starts; the main
     * thread's comes last, once it has started them (docs/security.md). */
    if (vm->cfg->jail_check)
        jail_report_open();
    jail_enter(JAIL_MAIN);
    if (vm->cfg->jail_check) {
        /* a disk has two threads: its I/O thread and blockdev's worker */
        jail_report(stdout, 1 + vm->nr_vcpus + 2 * vm->cfg->nr_disks + vm->cfg->nr_nics +
                                (vm->cfg->control ? 1 : 0) +
                                (vm->cfg->serial == SERIAL_STDIO ? 1 : 0));
        vm_request_stop(vm, VMM_EXIT_OK, "jail check done");
    }
    wait_for_stop(vm, sig_fd);
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_kick(&vm->vcpus[i]);
    vcpu_pause_wake_for_stop(&vm->pause); /* paused vCPUs see the stop too */
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        vcpu_join(&vm->vcpus[i]);
    if (sig_fd >= 0)
        close(sig_fd);
    tty_restore();
    if (vm->exit_status == VMM_EXIT_OK)
        log_info("%s", vm->stop_reason);
    else
        log_info("%s (exit status %d)", vm->stop_reason, vm->exit_status);
    return vm->exit_status;
}

void vm_destroy(struct vm *vm)
{
    destroy_pci_devices(vm);
    if (vm->vcpus) {
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            vcpu_destroy(&vm->vcpus[i]);
        free(vm->vcpus);
        vm->vcpus = NULL;
    }
    if (vm->devices_ready) {
        serial_destroy(&vm->serial);
        i8042_destroy(&vm->i8042);
        acpi_ged_destroy(&vm->ged);
        vm->devices_ready = 0;
    }
    kvm_close(&vm->kvm);
    guest_mem_destroy(&vm->mem);
    if (vm->serial_fd >= 0)
        close(vm->serial_fd);
    if (vm->stop_fd >= 0)
        close(vm->stop_fd);
    vm->serial_fd = vm->stop_fd = -1;
    pthread_mutex_destroy(&vm->stop_lock);
    vcpu_pause_destroy(&vm->pause);
}
