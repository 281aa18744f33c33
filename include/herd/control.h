/*
 * herd-vmm's per-VM control socket (--control PATH): how herdd supervises,
 * stops, pauses and re-adopts a guest, also after herdd itself restarted.
 * The full protocol is in docs/control-socket.md; in short: a unix stream
 * socket (mode 0600), one JSON object per line in, one JSON object per line
 * out, in order, any number of clients at once.
 *
 *   {"cmd":"ping"}    -> {"ok":true}
 *   {"cmd":"status"}  -> {"ok":true,"state":"running"|"paused"|"stopping",...}
 *   {"cmd":"pause"}   -> {"ok":true} once no vCPU is inside KVM_RUN
 *   {"cmd":"resume"}  -> {"ok":true}
 *   {"cmd":"stop"}    -> {"ok":true}, then herd-vmm ends the guest, exit 0
 *   {"cmd":"powerdown"} -> {"ok":true}: the ACPI power button is pressed; the
 *                      guest's OS decides (a Linux shuts down, S5, exit 0)
 *   anything else     -> {"ok":false,"error":"..."}; the connection stays usable
 *
 * A request may carry "id" (any JSON value): the reply repeats it.
 *
 * Three layers: control_handle() is pure (one request line -> one reply
 * line, through a table of callbacks: unit-tested with fakes);
 * control_server_*() owns the socket and its thread; control_vm_ops binds
 * the callbacks to a struct vm.
 */
#ifndef HERD_CONTROL_H
#define HERD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/error.h"
#include "herd/netstats.h"
#include "herd/virtio_net.h"
#include "herd/vmm_config.h"

#define CONTROL_MAX_LINE    (64 * 1024) /* request bytes, newline excluded */
#define CONTROL_MAX_CLIENTS 64
#define CONTROL_ERR_LEN     256
#define CONTROL_PAUSE_TIMEOUT_MS 5000
#define CONTROL_MAX_INPUT   4096 /* bytes of console input per request */

enum control_state { CONTROL_RUNNING, CONTROL_PAUSED, CONTROL_STOPPING };

struct control_disk_status {
    const char *path;
    const char *format;
    bool readonly;
};

struct control_nic_status {
    const char *tap;
    uint8_t mac[6];
    enum net_path path;
    struct netstats stats;
};

/* A snapshot for "status"; strings point into the VM's configuration. */
struct control_status {
    enum control_state state;
    long pid;
    uint64_t uptime_ms;
    unsigned cpus;
    uint64_t mem;              /* bytes */
    const char *kernel;
    const char *cmdline;       /* NULL: none (reported as "") */
    uint64_t boot_marker_us;   /* 0: no marker yet (reported as null) */
    unsigned nr_disks, nr_nics;
    struct control_disk_status disks[VMM_MAX_DISKS];
    struct control_nic_status nics[VMM_MAX_NICS];
};

/* What a request may do to the VM. pause/resume return 0 or a negative
 * errno with a message in err. stop only records the request: the caller
 * runs it after the reply has been sent (see control_handle). */
struct control_ops {
    void (*status)(void *ctx, struct control_status *out);
    int (*pause)(void *ctx, struct herd_err *err);
    int (*resume)(void *ctx, struct herd_err *err);
    void (*stop)(void *ctx);
    /* Console input: bytes for the guest's serial port; returns how many
     * the UART's receive FIFO took (the rest is the client's to resend). */
    size_t (*input)(void *ctx, const uint8_t *data, size_t len);
    /* Presses the ACPI power button; 0 or a negative errno with a message
     * in err. NULL: the command answers an error. */
    int (*powerdown)(void *ctx, struct herd_err *err);
    /* Writes a snapshot of the paused guest to `fd` (the caller closes it);
     * 0 or a negative errno with a message (docs/snapshot.md). */
    int (*snapshot)(void *ctx, int fd, struct herd_err *err);
};

enum control_action { CONTROL_ACTION_NONE, CONTROL_ACTION_STOP };

/*
 * Handles one request line (len bytes, no newline; need not be
 * NUL-terminated; may hold any bytes). Returns the reply as one line of
 * JSON with its trailing newline, malloc()ed (NULL only when memory ran
 * out). *action says what the caller must do once the reply is out:
 * CONTROL_ACTION_STOP -> call ops->stop. Never calls ops->stop itself.
 * *passed_fd (may be NULL) is a descriptor that came with the line, or -1:
 * "snapshot" takes it (closes it and sets -1); other commands leave it.
 */
char *control_handle(const char *line, size_t len, const struct control_ops *ops, void *ctx,
                     int *passed_fd, enum control_action *action);

/* The reply for a request line longer than CONTROL_MAX_LINE (the server
 * drops the rest of that line and keeps the connection). malloc()ed. */
char *control_reply_error(const char *msg);

/* "status" reply fields as a JSON object (a new reference), without "ok". */
struct json_t;
struct json_t *control_status_json(const struct control_status *st);

const char *control_state_name(enum control_state s);

/*
 * The socket. control_server_open() runs early (before the VM is built and,
 * later, before privileges are dropped): it refuses a path where a live
 * socket answers, removes a stale socket file, refuses any other existing
 * file, and binds with mode 0600. control_server_start() serves it from one
 * thread (all signals blocked there). control_server_close() stops the
 * thread, sends what replies are pending, closes every connection and
 * removes the socket file (only if it is still the one we created).
 * Safe to call with NULL and on a server that never started.
 */
struct control_server;

int control_server_open(const char *path, struct control_server **out, struct herd_err *err);
int control_server_start(struct control_server *s, const struct control_ops *ops, void *ctx,
                         struct herd_err *err);
void control_server_close(struct control_server *s);

/* Callbacks for a struct vm (ctx: struct vm *). */
extern const struct control_ops control_vm_ops;

#endif
