/*
 * The 8250 UART at 0x3f8: register offsets and the probe's line output.
 */
#ifndef HERD_PROBE_SERIAL_H
#define HERD_PROBE_SERIAL_H

#include <stdint.h>

#define COM1 0x3f8
#define UART_RBR 0 /* read, DLAB=0 */
#define UART_THR 0 /* write, DLAB=0 */
#define UART_IER 1
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_THRI 0x02
#define UART_IIR_NO_INT 0x01
#define UART_IIR_ID 0x0e
#define UART_IIR_THRI 0x02
#define UART_LCR_8N1 0x03
#define UART_LCR_DLAB 0x80
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

/* Put the UART into a known state for output (8N1, DLAB off, IER 0). */
void serial_init(void);

/* "herd-probe: " + formatted text + "\n", sent with one ud2 call. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
