/*
 * Just enough of the PC keyboard controller for a guest to probe it and,
 * above all, to reset the machine the way Linux does with reboot=k
 * (command 0xfe, "pulse reset line"). There is no keyboard behind it.
 */
#ifndef HERD_I8042_H
#define HERD_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "herd/bus.h"
#include "herd/vm_stop.h"

#define I8042_CMD_READ_CTR   0x20
#define I8042_CMD_WRITE_CTR  0x60
#define I8042_CMD_AUX_DIS    0xa7
#define I8042_CMD_AUX_EN     0xa8
#define I8042_CMD_AUX_TEST   0xa9
#define I8042_CMD_SELF_TEST  0xaa
#define I8042_CMD_KBD_TEST   0xab
#define I8042_CMD_KBD_DIS    0xad
#define I8042_CMD_KBD_EN     0xae
#define I8042_CMD_WRITE_OUTP 0xd1
#define I8042_CMD_RESET      0xfe

#define I8042_STR_OBF    0x01
#define I8042_STR_SYSFLAG 0x04
#define I8042_STR_CMDDAT 0x08
#define I8042_STR_KEYLOCK 0x10 /* set: keyboard not inhibited (keylock off) */

struct i8042 {
    pthread_mutex_t lock;
    struct vm_stopper stopper;
    uint8_t ctr;     /* controller configuration ("command byte") */
    uint8_t status;
    uint8_t outb;    /* output buffer, valid when status has OBF */
    uint8_t pending; /* command waiting for its data byte, or 0 */
};

/* Guest-visible state, for snapshots. */
struct i8042_state {
    uint8_t ctr, status, outb, pending;
};
void i8042_save(struct i8042 *k, struct i8042_state *out);
void i8042_load(struct i8042 *k, const struct i8042_state *in);

void i8042_init(struct i8042 *k, const struct vm_stopper *stopper);
void i8042_destroy(struct i8042 *k);
int i8042_register(struct i8042 *k, struct bus *pio);

uint8_t i8042_read(struct i8042 *k, uint16_t port);
void i8042_write(struct i8042 *k, uint16_t port, uint8_t value);

#endif
