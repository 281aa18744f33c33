/*
 * Serial output for herd-probe. Each line is formatted at CPL3 and handed to
 * CPL0 in one ud2 call (OP_WRITE), which costs one port exit per byte: the
 * cheapest output the PVM host allows without relying on string I/O.
 * We don't poll LSR.THRE per byte: the VMMs' 8250s take a byte per write,
 * and polling would double the exits.
 */
#include "serial.h"

#include "cpl0.h"
#include "lib.h"

void serial_init(void)
{
    /* A firmware (qboot) may leave DLAB set, which would turn THR writes
     * into divisor writes. */
    outb(COM1 + UART_LCR, UART_LCR_8N1);
    outb(COM1 + UART_IER, 0);
}

void say(const char *fmt, ...)
{
    static char line[1024];
    static const char prefix[] = "herd-probe: ";
    size_t p = sizeof(prefix) - 1;
    memcpy(line, prefix, p);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + p, sizeof(line) - p - 1, fmt, ap);
    va_end(ap);
    size_t len = p + (n < 0 ? 0 : (size_t)n);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated */
    /* Text from the command line or tables must not become terminal
     * control sequences or extra lines. */
    for (size_t i = p; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] == 0x7f)
            line[i] = '?';
    line[len++] = '\n';
    cpl0_call(OP_WRITE, COM1, (uint64_t)(uintptr_t)line, len);
}
