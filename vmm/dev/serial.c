/*
 * 16550A UART model. The register semantics follow the National/TI 16550
 * data sheet; the interrupt identification priorities are those of the
 * chip (receive data, then THR empty, then modem status). Line status
 * errors never happen on a virtual wire, so that source is not modelled.
 */
#include "herd/serial.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "herd/jail.h"
#include "herd/log.h"

#define MSR_NO_LOOP (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS)

void serial_init(struct serial *s, int out_fd, serial_irq_fn set_irq, void *irq_ctx)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->out_fd = out_fd;
    s->set_irq = set_irq;
    s->irq_ctx = irq_ctx;
    s->lsr = UART_LSR_THRE | UART_LSR_TEMT;
    s->msr = MSR_NO_LOOP;
    s->mcr = UART_MCR_OUT2;
    s->dll = 0x0c; /* 9600 baud, the reset value */
    s->input_fd = -1;
}

void serial_destroy(struct serial *s)
{
    /* The input thread blocks in poll on a descriptor we do not own; it is
     * cancelled rather than joined so a silent stdin cannot hang shutdown. */
    if (s->input_running) {
        pthread_cancel(s->input_thread);
        pthread_join(s->input_thread, NULL);
        s->input_running = 0;
    }
    pthread_mutex_destroy(&s->lock);
}

static uint8_t pending_iir(const struct serial *s)
{
    if ((s->ier & UART_IER_RDI) && s->rx_count)
        return UART_IIR_RDI;
    if ((s->ier & UART_IER_THRI) && s->thr_ipending)
        return UART_IIR_THRI;
    if ((s->ier & UART_IER_MSI) && (s->msr & 0x0f))
        return UART_IIR_MSI;
    return UART_IIR_NO_INT;
}

/* Recomputes the interrupt line; called with the lock held. */
static void update_irq(struct serial *s)
{
    int level = pending_iir(s) != UART_IIR_NO_INT;

    /* On a PC the UART's interrupt reaches the PIC only when OUT2 is set;
     * Linux relies on that, so honour it. */
    if (!(s->mcr & UART_MCR_OUT2) || (s->mcr & UART_MCR_LOOP))
        level = 0;
    if (level != s->irq_level) {
        s->irq_level = level;
        if (s->set_irq)
            s->set_irq(s->irq_ctx, level);
    }
}

void serial_save(struct serial *s, struct serial_state *out)
{
    pthread_mutex_lock(&s->lock);
    *out = (struct serial_state){.ier = s->ier, .lcr = s->lcr, .mcr = s->mcr, .lsr = s->lsr,
                                 .msr = s->msr, .scr = s->scr, .fcr = s->fcr, .dll = s->dll,
                                 .dlm = s->dlm, .thr_ipending = (uint32_t)s->thr_ipending,
                                 .rx_head = s->rx_head, .rx_count = s->rx_count,
                                 .irq_level = (uint32_t)s->irq_level};
    memcpy(out->rx, s->rx, sizeof(out->rx));
    pthread_mutex_unlock(&s->lock);
}

int serial_load(struct serial *s, const struct serial_state *in)
{
    if (in->rx_head >= SERIAL_RX_FIFO || in->rx_count > SERIAL_RX_FIFO || in->thr_ipending > 1 ||
        in->irq_level > 1)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->ier = in->ier, s->lcr = in->lcr, s->mcr = in->mcr, s->lsr = in->lsr, s->msr = in->msr;
    s->scr = in->scr, s->fcr = in->fcr, s->dll = in->dll, s->dlm = in->dlm;
    s->thr_ipending = (int)in->thr_ipending;
    s->rx_head = in->rx_head;
    s->rx_count = in->rx_count;
    memcpy(s->rx, in->rx, sizeof(s->rx));
    /* The restored interrupt controllers already hold the line's level. */
    s->irq_level = (int)in->irq_level;
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void rx_push(struct serial *s, uint8_t byte)
{
    if (s->rx_count == SERIAL_RX_FIFO) {
        s->lsr |= UART_LSR_OE;
        return;
    }
    s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO] = byte;
    s->rx_count++;
    s->lsr |= UART_LSR_DR;
}

static uint8_t rx_pop(struct serial *s)
{
    uint8_t byte;

    if (!s->rx_count)
        return 0;
    byte = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
    s->rx_count--;
    if (!s->rx_count)
        s->lsr &= ~UART_LSR_DR;
    return byte;
}

static void transmit(struct serial *s, uint8_t byte)
{
    if (s->mcr & UART_MCR_LOOP) {
        rx_push(s, byte);
    } else if (s->out_fd >= 0) {
        ssize_t n;

        do {
            n = write(s->out_fd, &byte, 1);
        } while (n < 0 && errno == EINTR);
    }
    s->thr_ipending = 1; /* transmission is instant: THR is empty again */
}

/* In loopback the modem inputs are wired to the modem outputs. */
static void update_loop_msr(struct serial *s)
{
    uint8_t old = s->msr, msr = 0;

    if (!(s->mcr & UART_MCR_LOOP)) {
        s->msr = (uint8_t)((old & 0x0f) | MSR_NO_LOOP);
        return;
    }
    if (s->mcr & UART_MCR_RTS)
        msr |= UART_MSR_CTS;
    if (s->mcr & UART_MCR_DTR)
        msr |= UART_MSR_DSR;
    if (s->mcr & UART_MCR_OUT1)
        msr |= UART_MSR_RI;
    if (s->mcr & UART_MCR_OUT2)
        msr |= UART_MSR_DCD;
    if ((msr ^ old) & UART_MSR_CTS)
        msr |= UART_MSR_DCTS;
    if ((msr ^ old) & UART_MSR_DSR)
        msr |= UART_MSR_DDSR;
    if ((msr ^ old) & UART_MSR_DCD)
        msr |= UART_MSR_DDCD;
    if ((old & UART_MSR_RI) && !(msr & UART_MSR_RI))
        msr |= UART_MSR_TERI;
    s->msr = (uint8_t)(msr | (old & 0x0f));
}

static uint8_t read_locked(struct serial *s, unsigned reg)
{
    uint8_t v = 0;

    switch (reg) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB)
            return s->dll;
        return rx_pop(s);
    case UART_IER:
        return (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
    case UART_IIR_FCR:
        v = pending_iir(s);
        if (v == UART_IIR_THRI)
            s->thr_ipending = 0; /* reading IIR acknowledges THRE */
        return (uint8_t)(v | ((s->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0));
    case UART_LCR:
        return s->lcr;
    case UART_MCR:
        return s->mcr;
    case UART_LSR:
        v = s->lsr;
        s->lsr &= ~UART_LSR_OE;
        return v;
    case UART_MSR:
        v = s->msr;
        s->msr &= 0xf0; /* delta bits clear on read */
        return v;
    case UART_SCR:
        return s->scr;
    default:
        return 0xff;
    }
}

static void write_locked(struct serial *s, unsigned reg, uint8_t value)
{
    switch (reg) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB)
            s->dll = value;
        else
            transmit(s, value);
        break;
    case UART_IER:
        if (s->lcr & UART_LCR_DLAB) {
            s->dlm = value;
            break;
        }
        /* Enabling THRI while THR is empty raises the interrupt at once. */
        if ((value & UART_IER_THRI) && !(s->ier & UART_IER_THRI))
            s->thr_ipending = 1;
        s->ier = value & 0x0f;
        break;
    case UART_IIR_FCR:
        s->fcr = value & 0xc9;
        if (value & UART_FCR_CLEAR_RX) {
            s->rx_count = 0;
            s->lsr &= ~UART_LSR_DR;
        }
        break;
    case UART_LCR:
        s->lcr = value;
        break;
    case UART_MCR:
        s->mcr = value & 0x1f;
        update_loop_msr(s);
        break;
    case UART_SCR:
        s->scr = value;
        break;
    default: /* LSR and MSR are read-only */
        break;
    }
}

uint8_t serial_read(struct serial *s, unsigned reg)
{
    uint8_t v;

    pthread_mutex_lock(&s->lock);
    v = read_locked(s, reg);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return v;
}

void serial_write(struct serial *s, unsigned reg, uint8_t value)
{
    pthread_mutex_lock(&s->lock);
    write_locked(s, reg, value);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t n = 0;

    pthread_mutex_lock(&s->lock);
    if (!(s->mcr & UART_MCR_LOOP)) {
        while (n < len && s->rx_count < SERIAL_RX_FIFO)
            rx_push(s, buf[n++]);
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void pio_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    data[0] = serial_read(opaque, (unsigned)offset);
    if (len > 1)
        memset(data + 1, 0, len - 1);
}

static void pio_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    serial_write(opaque, (unsigned)offset, data[0]);
}

int serial_register(struct serial *s, struct bus *pio, uint16_t base)
{
    struct bus_range r = {.base = base, .size = SERIAL_PORTS, .name = "serial",
                          .read = pio_read, .write = pio_write, .opaque = s};

    return bus_register(pio, &r);
}

/* Forwards host input while the guest has room; waits (polls) when the FIFO
 * is full rather than dropping keystrokes. */
static void *input_main(void *arg)
{
    struct serial *s = arg;
    uint8_t buf[SERIAL_RX_FIFO];
    size_t have = 0, off = 0;

    jail_enter(JAIL_SERIAL_IN);

    for (;;) {
        if (off == have) {
            struct pollfd pfd = {.fd = s->input_fd, .events = POLLIN};
            ssize_t n;

            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                break;
            n = read(s->input_fd, buf, sizeof(buf));
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                break; /* EOF: the guest simply gets no more input */
            if (n < 0)
                continue;
            have = (size_t)n;
            off = 0;
        }
        off += serial_receive(s, buf + off, have - off);
        if (off < have)
            usleep(1000);
    }
    return NULL;
}

int serial_start_input(struct serial *s, int fd)
{
    int rc;

    s->input_fd = fd;
    rc = pthread_create(&s->input_thread, NULL, input_main, s);
    if (rc)
        return -rc;
    s->input_running = 1;
    return 0;
}
