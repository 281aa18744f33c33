/*
 * A whole guest into a snapshot file and back (docs/snapshot.md): the
 * machine's shape (snap_config), KVM's VM and vCPU state, the legacy
 * devices, each PCI function's config space and virtio transport, the NICs'
 * own state, and RAM.
 *
 * Saving needs a paused guest: vCPUs parked outside KVM_RUN. Each virtio
 * device is then quiesced (its lock held, a disk's requests in flight
 * completed into the rings, the disk image flushed: its file is then the
 * disk the guest saw) so that neither RAM nor any device changes while the
 * file is written; they resume together at the end.
 */
#include "herd/snapshot_vm.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/log.h"
#include "herd/virtio_blk.h"
#include "herd/virtio_net.h"
#include "herd/vm.h"

/* The sections' layouts are the file format (docs/snapshot.md). */
_Static_assert(sizeof(struct snap_config) == 152, "snap_config layout");
_Static_assert(sizeof(struct virtio_dev_state) == 1096 &&
                   offsetof(struct virtio_dev_state, queues) == 456,
               "virtio_dev_state layout");
_Static_assert(sizeof(struct virtio_queue_state) == 40, "virtio_queue_state layout");
_Static_assert(sizeof(struct serial_state) == 92, "serial_state layout");
_Static_assert(sizeof(struct virtio_net_state) == 16, "virtio_net_state layout");

static struct virtio_dev *pci_virtio(struct vm *vm, unsigned i)
{
    return i < vm->cfg->nr_disks ? virtio_blk_dev(vm->disks[i])
                                 : virtio_net_dev(vm->nics[i - vm->cfg->nr_disks]);
}

static unsigned nr_pci_virtio(const struct vm *vm)
{
    return vm->cfg->nr_disks + vm->cfg->nr_nics;
}

static void fill_config(const struct vm *vm, struct snap_config *c)
{
    memset(c, 0, sizeof(*c));
    c->nr_vcpus = vm->nr_vcpus;
    c->nr_disks = vm->cfg->nr_disks;
    c->nr_nics = vm->cfg->nr_nics;
    c->mem_size = vm->cfg->mem;
    for (unsigned i = 0; i < vm->cfg->nr_nics && i < 8; i++)
        c->nic_queues[i] = vm->cfg->nics[i].queues ? vm->cfg->nics[i].queues : 1;
}

static int save_devices(struct snap_writer *w, struct vm *vm, struct herd_err *err)
{
    struct serial_state ss;
    struct i8042_state ks;
    struct acpi_ged_state gs;

    serial_save(&vm->serial, &ss);
    snap_add(w, SNAP_S_SERIAL, 0, &ss, sizeof(ss));
    i8042_save(&vm->i8042, &ks);
    snap_add(w, SNAP_S_I8042, 0, &ks, sizeof(ks));
    acpi_ged_save(&vm->ged, &gs);
    snap_add(w, SNAP_S_GED, 0, &gs, sizeof(gs));
    for (unsigned i = 0; i < nr_pci_virtio(vm); i++) {
        struct virtio_dev *dev = pci_virtio(vm, i);
        struct virtio_dev_state *st = calloc(1, sizeof(*st));
        uint8_t config[PCI_CONFIG_SIZE];

        if (!st)
            return herd_err_set(err, -ENOMEM, "", "out of memory for device state");
        pci_dev_save_config(&vm->pci, &dev->pci, config);
        snap_add(w, SNAP_S_PCI_CONFIG, i, config, sizeof(config));
        virtio_dev_save(dev, st);
        snap_add(w, SNAP_S_VIRTIO, i, st, sizeof(*st));
        free(st);
    }
    for (unsigned i = 0; i < vm->cfg->nr_nics; i++) {
        struct virtio_net_state ns;
        int rc = virtio_net_save(vm->nics[i], &ns);

        if (rc)
            return herd_err_set(err, rc, "", "NIC %u (%s) is served by vhost-net, which "
                                "snapshots do not support yet (use vhost=off)", i,
                                vm->cfg->nics[i].tap);
        snap_add(w, SNAP_S_VIRTIO_NET, i, &ns, sizeof(ns));
    }
    return 0;
}

static int save_all(struct snap_writer *w, struct vm *vm, struct herd_err *err)
{
    struct snap_config c;
    int rc;

    fill_config(vm, &c);
    snap_add(w, SNAP_S_CONFIG, 0, &c, sizeof(c));
    rc = snap_save_vm(w, &vm->kvm, err);
    for (unsigned i = 0; !rc && i < vm->nr_vcpus; i++)
        rc = snap_save_vcpu(w, &vm->vcpus[i], &vm->kvm, err);
    if (!rc)
        rc = save_devices(w, vm, err);
    return rc;
}

int vm_snapshot(struct vm *vm, int fd, struct herd_err *err)
{
    struct snap_writer w;
    unsigned quiesced = 0;
    int rc;

    if (!vcpu_pause_requested(&vm->pause))
        return herd_err_set(err, -EBUSY, "", "snapshot: the guest is running; pause it first");
    snap_writer_init(&w);
    for (rc = 0; quiesced < nr_pci_virtio(vm) && !rc; quiesced++) {
        rc = virtio_dev_quiesce(pci_virtio(vm, quiesced));
        if (rc)
            herd_err_set(err, rc, "", "snapshot: %s (pci %02x.0) could not be made consistent: %s",
                         pci_virtio(vm, quiesced)->ops->name, pci_virtio(vm, quiesced)->pci.slot,
                         strerror(-rc));
    }
    if (!rc)
        rc = save_all(&w, vm, err);
    if (!rc)
        rc = snap_write(&w, fd, vm->mem.base, vm->mem.size, err);
    while (quiesced--)
        virtio_dev_unquiesce(pci_virtio(vm, quiesced));
    if (!rc)
        log_info("snapshot: %u vCPUs, %llu MiB of RAM, %u sections, %zu bytes of state",
                 vm->nr_vcpus, (unsigned long long)(vm->mem.size >> 20), w.nr_sections, w.len);
    snap_writer_free(&w);
    return rc;
}

int vm_snapshot_check_config(const struct vm *vm, const struct snap_reader *r,
                             struct herd_err *err)
{
    struct snap_config want;
    const struct snap_config *c = snap_get(r, SNAP_S_CONFIG, 0, sizeof(*c), "the machine's shape",
                                           err);

    if (!c)
        return err->code;
    fill_config(vm, &want);
    if (c->nr_vcpus != want.nr_vcpus || c->mem_size != want.mem_size)
        return herd_err_set(err, -EINVAL, "--restore", "the snapshot is of a guest with %u vCPUs "
                            "and %llu MiB of RAM: give --cpus %u --mem %lluM",
                            c->nr_vcpus, (unsigned long long)(c->mem_size >> 20), c->nr_vcpus,
                            (unsigned long long)(c->mem_size >> 20));
    if (r->hdr.ram_size != c->mem_size)
        return herd_err_set(err, -EINVAL, "--restore", "the snapshot holds %llu bytes of RAM for "
                            "a guest of %llu", (unsigned long long)r->hdr.ram_size,
                            (unsigned long long)c->mem_size);
    if (c->nr_disks != want.nr_disks || c->nr_nics != want.nr_nics)
        return herd_err_set(err, -EINVAL, "--restore", "the snapshot's guest has %u disks and %u "
                            "NICs; give as many --disk and --net", c->nr_disks, c->nr_nics);
    for (unsigned i = 0; i < want.nr_nics && i < 8; i++)
        if (c->nic_queues[i] != want.nic_queues[i])
            return herd_err_set(err, -EINVAL, "--restore", "NIC %u had queues=%llu in the "
                                "snapshot", i, (unsigned long long)c->nic_queues[i]);
    return 0;
}

static int load_legacy(struct vm *vm, const struct snap_reader *r, struct herd_err *err)
{
    const struct serial_state *ss = snap_get(r, SNAP_S_SERIAL, 0, sizeof(*ss), "the UART", err);
    const struct i8042_state *ks;
    const struct acpi_ged_state *gs;

    if (!ss)
        return err->code;
    if (serial_load(&vm->serial, ss))
        return herd_err_set(err, -EINVAL, "", "the snapshot's UART state is malformed");
    ks = snap_get(r, SNAP_S_I8042, 0, sizeof(*ks), "the i8042", err);
    if (!ks)
        return err->code;
    i8042_load(&vm->i8042, ks);
    gs = snap_get(r, SNAP_S_GED, 0, sizeof(*gs), "the ACPI event device", err);
    if (!gs)
        return err->code;
    if (acpi_ged_load(&vm->ged, gs))
        return herd_err_set(err, -EINVAL, "", "the snapshot's ACPI event state is malformed");
    return 0;
}

static int load_pci(struct vm *vm, const struct snap_reader *r, struct herd_err *err)
{
    for (unsigned i = 0; i < nr_pci_virtio(vm); i++) {
        struct virtio_dev *dev = pci_virtio(vm, i);
        const uint8_t *config = snap_get(r, SNAP_S_PCI_CONFIG, i, PCI_CONFIG_SIZE,
                                         "a PCI function's config space", err);
        const struct virtio_dev_state *st;
        struct virtio_dev_state copy;
        int rc;

        if (!config)
            return err->code;
        st = snap_get(r, SNAP_S_VIRTIO, i, sizeof(*st), "a virtio device", err);
        if (!st)
            return err->code;
        pci_dev_load_config(&vm->pci, &dev->pci, config);
        memcpy(&copy, st, sizeof(copy)); /* aligned */
        rc = virtio_dev_load(dev, &copy, err);
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < vm->cfg->nr_nics; i++) {
        const struct virtio_net_state *ns = snap_get(r, SNAP_S_VIRTIO_NET, i, sizeof(*ns),
                                                     "a NIC", err);

        if (!ns)
            return err->code;
        if (virtio_net_load(vm->nics[i], ns))
            return herd_err_set(err, -EINVAL, "", "NIC %u: the snapshot says %u of %u queue "
                                "pairs in use", i, ns->active_pairs, ns->pairs);
    }
    return 0;
}

int vm_restore_state(struct vm *vm, const struct snap_reader *r, struct herd_err *err)
{
    int rc = snap_load_vm(r, &vm->kvm, err);

    if (!rc)
        rc = load_legacy(vm, r, err);
    if (!rc)
        rc = load_pci(vm, r, err);
    for (unsigned i = 0; !rc && i < vm->nr_vcpus; i++)
        rc = snap_load_vcpu(r, &vm->vcpus[i], err);
    return rc;
}
