/*
 * 16550A-compatible UART (the PC's COM1): what Linux's 8250 driver and our
 * test guest drive. Transmit is instant (bytes go straight to the output fd),
 * receive has a FIFO fed from the host, loopback mode works, and the
 * interrupt line follows the 16550's rules (THRE, received data, modem
 * status) so interrupt-driven guests work too.
 */
#ifndef HERD_SERIAL_H
#define HERD_SERIAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/bus.h"

#define SERIAL_PORTS    8
#define SERIAL_RX_FIFO  64

/* Register offsets (DLAB=0 unless noted). */
enum serial_reg {
    UART_RBR_THR = 0, /* DLL with DLAB */
    UART_IER = 1,     /* DLM with DLAB */
    UART_IIR_FCR = 2,
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

#define UART_IER_RDI  0x01
#define UART_IER_THRI 0x02
#define UART_IER_RLSI 0x04
#define UART_IER_MSI  0x08
#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI    0x00
#define UART_IIR_THRI   0x02
#define UART_IIR_RDI    0x04
#define UART_IIR_FIFO   0xc0
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_LCR_DLAB 0x80
#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR   0x01
#define UART_LSR_OE   0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_CTS  0x10
#define UART_MSR_DSR  0x20
#define UART_MSR_RI   0x40
#define UART_MSR_DCD  0x80

typedef void (*serial_irq_fn)(void *ctx, int level);

struct serial {
    pthread_mutex_t lock;
    int out_fd; /* -1: output discarded */
    serial_irq_fn set_irq;
    void *irq_ctx;
    int irq_level;

    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm;
    int thr_ipending; /* THR-empty interrupt pending until IIR read or THR write */
    uint8_t rx[SERIAL_RX_FIFO];
    unsigned rx_head, rx_count;

    pthread_t input_thread;
    int input_fd;
    int input_running;
};

void serial_init(struct serial *s, int out_fd, serial_irq_fn set_irq, void *irq_ctx);

/* The guest-visible registers and receive FIFO, for snapshots. */
struct serial_state {
    uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm, pad[3];
    uint32_t thr_ipending, rx_head, rx_count, irq_level;
    uint8_t rx[SERIAL_RX_FIFO];
};
void serial_save(struct serial *s, struct serial_state *out);
/* Refuses (-EINVAL) a FIFO position or fill outside the FIFO. */
int serial_load(struct serial *s, const struct serial_state *in);
void serial_destroy(struct serial *s);

/* Claims 8 ports at `base` on the port bus. */
int serial_register(struct serial *s, struct bus *pio, uint16_t base);

/* Register access as the guest sees it (also used by unit tests). */
uint8_t serial_read(struct serial *s, unsigned reg);
void serial_write(struct serial *s, unsigned reg, uint8_t value);

/* Feeds bytes from the host side; returns how many fit in the FIFO. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

/* Starts a thread that forwards `fd` (e.g. stdin) into the receive FIFO. */
int serial_start_input(struct serial *s, int fd);

#endif
