/*
 * virtio 1.x over PCI (modern only): the transport every herd virtio device
 * shares. One 32 KiB memory BAR holds the common configuration, ISR, device
 * configuration, per-queue notify addresses (each an ioeventfd) and the
 * MSI-X table and PBA (each vector an irqfd on its own KVM MSI route).
 * Queues are served by the device's I/O thread (epoll), never by a vCPU.
 *
 * Anything wrong the guest does with rings (bad addresses, loops, ...) marks
 * the device NEEDS_RESET and logs why; the VMM and other devices go on.
 */
#ifndef HERD_VIRTIO_PCI_H
#define HERD_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "herd/error.h"
#include "herd/guest_mem.h"
#include "herd/kvm.h"
#include "herd/pci.h"
#include "herd/virtq.h"

#define VIRTIO_MAX_QUEUES   16
#define VIRTIO_MAX_VECTORS  (VIRTIO_MAX_QUEUES + 1)
#define VIRTIO_NO_VECTOR    0xffff
#define VIRTIO_QUEUE_SIZE   256
/* After serving a queue, the I/O thread keeps looking at its avail ring for
 * this long with guest notifications off: on hosts where every exit costs
 * 30-50 us (PVM), catching the next request without one is the biggest win. */
#define VIRTIO_POLL_NS      50000
#define VIRTIO_POLL_NONE    1 /* ns: effectively no spinning */
#define VIRTIO_IO_SLICE_NS  100000 /* the scheduler slice an I/O thread asks for (EEVDF) */

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* Transport feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* BAR0 layout. */
#define VIRTIO_BAR_SIZE       0x8000
#define VIRTIO_COMMON_OFF     0x0000
#define VIRTIO_COMMON_SIZE    0x38
#define VIRTIO_ISR_OFF        0x1000
#define VIRTIO_DEVCFG_OFF     0x2000
#define VIRTIO_DEVCFG_MAX     0x1000
#define VIRTIO_NOTIFY_OFF     0x3000
#define VIRTIO_NOTIFY_MULT    4
#define VIRTIO_MSIX_TABLE_OFF 0x4000
#define VIRTIO_MSIX_PBA_OFF   0x5000

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

struct virtio_dev;

struct virtio_dev_ops {
    const char *name;       /* "virtio-blk", for logs */
    uint16_t device_id;     /* virtio device type: 1 net, 2 block */
    uint32_t class_code;
    unsigned config_size;   /* bytes of device configuration */
    /* Device configuration space access (dev->lock held). */
    void (*config_read)(struct virtio_dev *dev, unsigned off, uint8_t *data, unsigned len);
    void (*config_write)(struct virtio_dev *dev, unsigned off, const uint8_t *data,
                         unsigned len);
    /* Features are fixed: the driver accepted them (FEATURES_OK). */
    void (*features_ok)(struct virtio_dev *dev);
    /* The driver set DRIVER_OK: queues are configured (dev->lock held). */
    void (*driver_ok)(struct virtio_dev *dev);
    /* Takes what the guest made available on queue q (dev->lock held, I/O
     * thread) and returns how many chains it consumed. The transport owns
     * notification suppression for polled queues: it keeps guest kicks off
     * while it polls and turns them back on (rechecking) when it stops. */
    unsigned (*queue_notify)(struct virtio_dev *dev, unsigned q);
    /* Queues the transport polls after activity (bit q); others (e.g. a
     * NIC's RX queue, which waits for the tap) only get kicks. */
    uint32_t polled_queues;
    /* How long to keep polling them after the last work: 0 is
     * VIRTIO_POLL_NS; VIRTIO_POLL_NONE serves, re-enables notifications and
     * rechecks, without spinning. */
    uint32_t poll_ns;
    /* Optional, asked once at init: the queues served on the vCPU thread
     * that kicks them (bit q). They get no ioeventfd: the kick exits to
     * herd-vmm, which runs queue_notify there and then (dev->lock held)
     * instead of waking the I/O thread. For a queue whose work is short and
     * never blocks (a NIC's TX: copy, filter, one tap write): the guest's
     * own vCPU pays for it and no thread has to be woken and scheduled. */
    uint32_t (*inline_queues)(struct virtio_dev *dev);
    /* Optional: while the transport polls, called every round (dev->lock
     * held, I/O thread) to complete work that finished elsewhere (a disk's
     * I/O); returns how much it completed (any counts as activity). */
    unsigned (*poll)(struct virtio_dev *dev);
    /* Optional: true while the device's work runs on a thread of its own
     * that will wake the I/O thread through a watched fd; the transport
     * then stops polling early instead of spinning on a shared core. */
    bool (*waiting_elsewhere)(struct virtio_dev *dev);
    /* The device was reset by the guest (dev->lock held). */
    void (*reset)(struct virtio_dev *dev);
    /* Optional, for snapshots (dev->lock held, vCPUs parked): finish work in
     * flight elsewhere (a disk's I/O) so that guest memory and the rings
     * stop changing, and make the backend's files consistent (a disk's
     * cached metadata written out). 0 or a negative errno. */
    int (*quiesce)(struct virtio_dev *dev);
};

struct virtio_queue {
    struct virtq vq;
    uint16_t max_size;
    uint16_t msix_vector;
    bool enabled;
    int kick_fd; /* ioeventfd on this queue's notify address */
};

struct virtio_vector {
    uint32_t addr_lo, addr_hi, data, ctrl; /* the MSI-X table entry */
    int fd;  /* irqfd */
    int gsi;
    bool pending;
};

/* An fd the device's I/O thread watches besides the queue kicks. */
typedef void (*virtio_fd_handler)(struct virtio_dev *dev, int fd, uint32_t events);

struct virtio_dev {
    struct pci_dev pci;
    const struct virtio_dev_ops *ops;
    void *backend;
    struct kvm *kvm;
    const struct guest_mem *mem;
    pthread_mutex_t lock;

    uint64_t device_features, driver_features;
    uint32_t dfselect, gfselect;
    uint16_t config_vector;
    uint8_t status;
    uint8_t config_generation;
    uint8_t isr;
    uint16_t queue_sel;
    unsigned nr_queues;
    struct virtio_queue queues[VIRTIO_MAX_QUEUES];
    uint32_t inline_queues; /* ops->inline_queues at init (bit q) */

    unsigned nr_vectors;
    struct virtio_vector vectors[VIRTIO_MAX_VECTORS];
    bool msix_enabled, msix_masked;

    int epoll_fd, stop_fd;
    pthread_t thread;
    bool thread_running;
    struct {
        int fd;
        virtio_fd_handler handler;
    } extra_fds[8];
    unsigned nr_extra_fds;
    unsigned pcicfg_cap;      /* config offset of VIRTIO_PCI_CAP_PCI_CFG */
    unsigned long bad_chains; /* stats */
};

/* Sets up the PCI function, BAR, capabilities, eventfds and routes. The
 * device is plugged into `bus` and its BAR registered on `mmio`. */
int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops, void *backend,
                    uint64_t features, unsigned nr_queues, struct kvm *kvm,
                    const struct guest_mem *mem, struct pci_bus *pci, struct bus *mmio,
                    struct herd_err *err);

/* dev->lock held: serves queue q, turns guest notifications back on (with
 * EVENT_IDX, avail_event moves to what was taken) and serves again what
 * slipped in. Two rounds that take nothing while entries wait mean the
 * device holds them back (a NIC over its rate limit): it stops, and the
 * device's own timer calls it again later. An inline queue's kick runs it;
 * so must whatever else serves an inline queue, or the guest, told to kick
 * only past an old avail_event, would never kick again. */
void virtio_dev_serve(struct virtio_dev *dev, unsigned q);

/* Watches `fd` in the I/O thread (before virtio_dev_start). */
int virtio_dev_watch_fd(struct virtio_dev *dev, int fd, uint32_t events,
                        virtio_fd_handler handler);

/* Changes the events watched on a fd added with virtio_dev_watch_fd (0:
 * stop watching for now). */
int virtio_dev_rewatch_fd(struct virtio_dev *dev, int fd, uint32_t events);

/* Stops or resumes watching queue q's kick eventfd (a kernel backend such
 * as vhost-net takes it over). */
int virtio_dev_watch_queue(struct virtio_dev *dev, unsigned q, bool on);

int virtio_dev_start(struct virtio_dev *dev);
void virtio_dev_destroy(struct virtio_dev *dev);

bool virtio_has_feature(const struct virtio_dev *dev, unsigned bit);

/* Interrupts the guest for queue q if it wants one (dev->lock held). */
void virtio_dev_signal_queue(struct virtio_dev *dev, unsigned q);
/* Raises queue q's MSI-X vector now, honouring masks and pending bits: for
 * a backend (vhost) that already decided an interrupt is due (dev->lock held). */
void virtio_dev_interrupt_queue(struct virtio_dev *dev, unsigned q);
/* Configuration changed: bump the generation, interrupt (dev->lock held). */
void virtio_dev_config_changed(struct virtio_dev *dev);
/* The guest broke the queue protocol: log, NEEDS_RESET, config interrupt. */
void virtio_dev_fail(struct virtio_dev *dev, unsigned q, const char *why);

/* Queue q is live (DRIVER_OK, enabled, no NEEDS_RESET). */
bool virtio_queue_live(const struct virtio_dev *dev, unsigned q);

/* ---- snapshots (docs/snapshot.md) ---- */

struct virtio_queue_state {
    uint64_t desc, avail, used;
    uint16_t size, msix_vector, last_avail, used_idx, signalled_used;
    uint8_t enabled, signalled_valid;
    uint8_t pad[4];
};

struct virtio_vector_state {
    uint32_t addr_lo, addr_hi, data, ctrl, pending, pad;
};

struct virtio_dev_state {
    uint64_t device_features, driver_features;
    uint32_t dfselect, gfselect;
    uint16_t config_vector, queue_sel;
    uint8_t status, config_generation, isr, msix_enabled, msix_masked, pad[3];
    uint32_t nr_queues, nr_vectors;
    struct virtio_vector_state vectors[VIRTIO_MAX_VECTORS];
    struct virtio_queue_state queues[VIRTIO_MAX_QUEUES];
};

/* Takes the device's lock and lets it finish work in flight (ops->quiesce):
 * from then on neither guest memory nor the device's state changes until
 * virtio_dev_unquiesce, which must follow even when this fails (its
 * result is the backend's: e.g. a disk whose flush failed). vCPUs must be
 * parked. */
int virtio_dev_quiesce(struct virtio_dev *dev);
void virtio_dev_unquiesce(struct virtio_dev *dev);
/* The transport's state (between quiesce and unquiesce). */
void virtio_dev_save(const struct virtio_dev *dev, struct virtio_dev_state *out);
/* Puts a saved state into a device built the same way, before its I/O
 * thread starts. Refuses, with the reason, different features or queue and
 * vector counts, and rings that are not in guest RAM; everything else is
 * what a guest could have programmed itself. */
int virtio_dev_load(struct virtio_dev *dev, const struct virtio_dev_state *in,
                    struct herd_err *err);

/* Guest-facing BAR access (vCPU threads; exposed for tests). */
void virtio_bar_read(struct virtio_dev *dev, uint64_t off, uint8_t *data, unsigned len);
void virtio_bar_write(struct virtio_dev *dev, uint64_t off, const uint8_t *data, unsigned len);
/* Whether the VIRTIO_PCI_CAP_PCI_CFG window's bar/offset/length, as the
 * guest wrote them, name an access inside BAR 0 (length 1, 2 or 4; no
 * 32-bit wrap-around of offset + length). */
bool virtio_pci_cfg_window_ok(uint8_t bar, uint32_t off, uint32_t len);

#endif
