/*
 * How a device asks the VM to end (guest reset, debug-exit): the first
 * request wins and sets herd-vmm's exit status; later ones are ignored.
 */
#ifndef HERD_VM_STOP_H
#define HERD_VM_STOP_H

typedef void (*vm_stop_fn)(void *ctx, int exit_status, const char *reason);

struct vm_stopper {
    vm_stop_fn stop;
    void *ctx;
};

static inline void vm_stopper_stop(const struct vm_stopper *s, int status, const char *reason)
{
    if (s->stop)
        s->stop(s->ctx, status, reason);
}

#endif
