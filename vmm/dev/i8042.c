/*
 * i8042 keyboard controller, reduced to the controller itself: commands,
 * configuration byte, self tests, and the reset line. Data written for the
 * (absent) keyboard is answered with "resend" so drivers give up quickly.
 */
#include "herd/i8042.h"

#include <string.h>

#include "herd/layout.h"

#define KBD_RESEND 0xfe
#define SELF_TEST_OK 0x55
#define PORT_TEST_OK 0x00
#define CTR_DEFAULT 0x45 /* kbd interrupt, system flag, translation */
#define OUTPORT_RESET_BIT 0x01

void i8042_init(struct i8042 *k, const struct vm_stopper *stopper)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->lock, NULL);
    k->stopper = *stopper;
    k->ctr = CTR_DEFAULT;
    /* The keylock switch is off (bit 4 set: keyboard not inhibited); Linux
     * warns "Keylock active" when it is clear. */
    k->status = I8042_STR_SYSFLAG | I8042_STR_KEYLOCK;
}

void i8042_save(struct i8042 *k, struct i8042_state *out)
{
    pthread_mutex_lock(&k->lock);
    *out = (struct i8042_state){.ctr = k->ctr, .status = k->status, .outb = k->outb,
                                .pending = k->pending};
    pthread_mutex_unlock(&k->lock);
}

/* Any byte values are states the guest could have produced itself. */
void i8042_load(struct i8042 *k, const struct i8042_state *in)
{
    pthread_mutex_lock(&k->lock);
    k->ctr = in->ctr, k->status = in->status, k->outb = in->outb, k->pending = in->pending;
    pthread_mutex_unlock(&k->lock);
}

void i8042_destroy(struct i8042 *k)
{
    pthread_mutex_destroy(&k->lock);
}

static void output(struct i8042 *k, uint8_t byte)
{
    k->outb = byte;
    k->status |= I8042_STR_OBF;
}

static void reset(struct i8042 *k)
{
    vm_stopper_stop(&k->stopper, 0, "guest reset (i8042)");
}

static void command(struct i8042 *k, uint8_t cmd)
{
    k->status |= I8042_STR_CMDDAT;
    switch (cmd) {
    case I8042_CMD_READ_CTR:
        output(k, k->ctr);
        break;
    case I8042_CMD_WRITE_CTR:
    case I8042_CMD_WRITE_OUTP:
        k->pending = cmd;
        break;
    case I8042_CMD_SELF_TEST:
        output(k, SELF_TEST_OK);
        break;
    case I8042_CMD_KBD_TEST:
    case I8042_CMD_AUX_TEST:
        output(k, PORT_TEST_OK);
        break;
    case I8042_CMD_KBD_DIS:
        k->ctr |= 0x10;
        break;
    case I8042_CMD_KBD_EN:
        k->ctr &= (uint8_t)~0x10;
        break;
    case I8042_CMD_AUX_DIS:
        k->ctr |= 0x20;
        break;
    case I8042_CMD_AUX_EN:
        k->ctr &= (uint8_t)~0x20;
        break;
    case I8042_CMD_RESET:
        reset(k);
        break;
    default:
        break;
    }
}

static void data(struct i8042 *k, uint8_t value)
{
    uint8_t cmd = k->pending;

    k->status &= (uint8_t)~I8042_STR_CMDDAT;
    k->pending = 0;
    switch (cmd) {
    case I8042_CMD_WRITE_CTR:
        k->ctr = value;
        break;
    case I8042_CMD_WRITE_OUTP:
        if (!(value & OUTPORT_RESET_BIT)) /* bit 0 low holds the CPU in reset */
            reset(k);
        break;
    default:
        output(k, KBD_RESEND);
        break;
    }
}

uint8_t i8042_read(struct i8042 *k, uint16_t port)
{
    uint8_t v;

    pthread_mutex_lock(&k->lock);
    if (port == PORT_I8042_CMD) {
        v = k->status;
    } else {
        v = k->outb;
        k->status &= (uint8_t)~I8042_STR_OBF;
    }
    pthread_mutex_unlock(&k->lock);
    return v;
}

void i8042_write(struct i8042 *k, uint16_t port, uint8_t value)
{
    pthread_mutex_lock(&k->lock);
    if (port == PORT_I8042_CMD)
        command(k, value);
    else
        data(k, value);
    pthread_mutex_unlock(&k->lock);
}

static int is_i8042_port(uint64_t offset)
{
    return offset == 0 || offset == PORT_I8042_CMD - PORT_I8042_DATA;
}

static void pio_read(void *opaque, uint64_t offset, uint8_t *d, unsigned len)
{
    memset(d, 0, len);
    if (is_i8042_port(offset))
        d[0] = i8042_read(opaque, (uint16_t)(PORT_I8042_DATA + offset));
}

static void pio_write(void *opaque, uint64_t offset, const uint8_t *d, unsigned len)
{
    if (is_i8042_port(offset))
        i8042_write(opaque, (uint16_t)(PORT_I8042_DATA + offset), d[0]);
}

int i8042_register(struct i8042 *k, struct bus *pio)
{
    /* Ports 0x60 and 0x64; 0x61-0x63 (PC speaker, etc.) sit between them and
     * are claimed too so they read as zero rather than all ones. */
    struct bus_range r = {.base = PORT_I8042_DATA, .size = 5, .name = "i8042",
                          .read = pio_read, .write = pio_write, .opaque = k};

    return bus_register(pio, &r);
}
