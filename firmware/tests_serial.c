/*
 * Test "serial": the 8250 at 0x3f8 behaves like one. Scratch register keeps
 * what was written; LSR shows THRE|TEMT when idle; in loopback mode (MCR bit
 * 4) a byte written to THR comes back in RBR with LSR.DR; with the THRE
 * interrupt enabled, IRQ 4 reaches the CPU through the IOAPIC. The UART's
 * IER/MCR/LCR are restored afterwards so output keeps working.
 */
#include "apic.h"
#include "cpl0.h"
#include "lib.h"
#include "serial.h"
#include "tests.h"

#define SERIAL_PIN 4

static uint8_t uin(uint32_t reg) { return inb((uint16_t)(COM1 + reg)); }
static void uout(uint32_t reg, uint8_t v) { outb((uint16_t)(COM1 + reg), v); }

static void check_scratch(struct test_ctx *t)
{
    static const uint8_t pat[] = { 0x5a, 0xa5 };
    for (uint32_t i = 0; i < ARRAY_SIZE(pat); i++) {
        uout(UART_SCR, pat[i]);
        uint8_t v = uin(UART_SCR);
        if (v != pat[i])
            fail(t, "scratch register: wrote 0x%x, read 0x%x", pat[i], v);
    }
}

static void check_loopback(struct test_ctx *t, uint8_t mcr)
{
    static const uint8_t pat[] = { 0x55, 0xaa, 0x00, 0xff };
    uout(UART_MCR, UART_MCR_LOOP);
    /* Drop anything that was already received (bounded: a FIFO is 16). */
    for (int i = 0; i < 64 && (uin(UART_LSR) & UART_LSR_DR); i++)
        (void)uin(UART_RBR);
    for (uint32_t i = 0; i < ARRAY_SIZE(pat); i++) {
        uout(UART_THR, pat[i]);
        uint8_t lsr = uin(UART_LSR);
        if (!(lsr & UART_LSR_DR)) {
            fail(t, "loopback: no data ready after writing 0x%x (LSR 0x%x)", pat[i], lsr);
            break;
        }
        uint8_t v = uin(UART_RBR);
        if (v != pat[i]) {
            fail(t, "loopback: wrote 0x%x, received 0x%x", pat[i], v);
            break;
        }
        lsr = uin(UART_LSR);
        if (lsr & UART_LSR_DR) {
            fail(t, "loopback: data ready still set after reading (LSR 0x%x)", lsr);
            break;
        }
    }
    uout(UART_MCR, mcr);
}

static void check_irq(struct test_ctx *t)
{
    uint32_t pins = ioapic_pins();
    if (pins <= SERIAL_PIN || pins > 240) {
        fail(t, "IOAPIC reports %u redirection entries", pins);
        return;
    }
    lapic_enable();
    volatile uint64_t *cnt = &irq_counts[VEC_SERIAL];
    uint64_t base = *cnt;
    ioapic_route(SERIAL_PIN, VEC_SERIAL, 0);
    uout(UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
    cpl3_set_if(1);
    /* THR is empty, so enabling the THRE interrupt raises IRQ 4 at once. */
    uout(UART_IER, UART_IER_THRI);
    uint64_t got = wait_count(cnt, base + 1, WAIT_CYCLES);
    uint8_t iir = uin(UART_IIR);
    uint8_t iir2 = uin(UART_IIR);
    uout(UART_IER, 0);
    cpl3_set_if(0);
    ioapic_mask(SERIAL_PIN);
    if (got == base)
        fail(t, "no interrupt on IRQ 4 (vector 0x%x) after enabling the THRE interrupt (IIR 0x%x)",
             VEC_SERIAL, iir);
    else if ((iir & 0x0f) != UART_IIR_THRI)
        fail(t, "IIR 0x%x after the interrupt, expected THRE pending (0x2)", iir);
    else if (!(iir2 & UART_IIR_NO_INT))
        fail(t, "THRE interrupt still pending after reading IIR (IIR 0x%x)", iir2);
}

void test_serial(struct test_ctx *t)
{
    uint8_t lcr = uin(UART_LCR);
    if (lcr & UART_LCR_DLAB) {
        fail(t, "LCR has DLAB set (0x%x) after init", lcr);
        return;
    }
    uint8_t ier = uin(UART_IER), mcr = uin(UART_MCR);
    check_scratch(t);
    uint8_t lsr = uin(UART_LSR);
    if ((lsr & (UART_LSR_THRE | UART_LSR_TEMT)) != (UART_LSR_THRE | UART_LSR_TEMT))
        fail(t, "LSR 0x%x when idle: THRE and TEMT should be set", lsr);
    check_loopback(t, mcr);
    check_irq(t);
    uout(UART_IER, ier);
    uout(UART_MCR, mcr);
    uout(UART_LCR, lcr);
}
