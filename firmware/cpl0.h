/*
 * The probe's CPL3 -> CPL0 call ABI ("ud2 calls") and the fixed numbers the
 * assembly and C halves share (segment selectors, vectors, boot types).
 *
 * Why ud2: on the PVM host (see docs/herd-probe.md) `int $n` and `syscall`
 * from CPL3 never reach CPL0 and IOPL is lost on iretq, but exceptions do
 * reach the CPL0 IDT. So CPL3 raises #UD on purpose and the CPL0 #UD handler
 * treats it as a call:
 *   in:  rax = op, rdi = arg0, rsi = arg1, rdx = arg2
 *   out: rax = result (cpuid: eax/ebx/ecx/edx); rip advanced past the ud2
 *   clobbered: rbx (cpuid only), rcx, rdx, rsi, rdi, r8-r11, flags
 * A ud2 that is not at CPL3, or an op out of range, is a probe crash.
 */
#ifndef HERD_PROBE_CPL0_H
#define HERD_PROBE_CPL0_H

/* GDT selectors (tables.S). */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b /* 0x18 | RPL 3 */
#define SEL_UCODE 0x23 /* 0x20 | RPL 3 */
#define SEL_TSS   0x28

/* Boot paths, passed from entry.S to probe_main in rdi. */
#define BOOT_PVH   1
#define BOOT_LINUX 2

/* ud2 call ops. */
#define OP_OUTB   0 /* port, value */
#define OP_OUTW   1
#define OP_OUTL   2
#define OP_INB    3 /* port -> value */
#define OP_INW    4
#define OP_INL    5
#define OP_WRITE  6 /* port, buf, len: outb each byte (one ud2 per line) */
#define OP_WAIT   7 /* sti; hlt; cli: sleep until one interrupt was handled */
#define OP_IDLE   8 /* cli; hlt forever (cheap idle; never returns) */
#define OP_EXIT   9 /* value: outb value to the debug-exit port, then idle */
#define OP_CPUID  10 /* leaf, subleaf -> eax, ebx, ecx, edx (the VMM's view) */
#define OP_RDMSR  11 /* msr -> value */
#define OP_WRMSR  12 /* msr, value */
#define OP_SETIF  13 /* 0/1: RFLAGS.IF the CPL3 code returns to */
#define OP_COUNT  14

/* Interrupt vectors the probe uses. Vectors >= 32 all go to one counting
 * handler; 0xff is the LAPIC spurious vector (counted, never EOI'd). */
#define VEC_FIRST_IRQ 32
#define VEC_SERIAL    0x24
#define VEC_TIMER     0x30
#define VEC_SPURIOUS  0xff

/* Debug-exit values (exit status (v << 1) | 1). */
#define EXIT_PASS  0
#define EXIT_FAIL  1
#define EXIT_CRASH 2

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Per-vector interrupt counts, written by the CPL0 interrupt handler. */
extern volatile uint64_t irq_counts[256];

static inline uint64_t cpl0_call(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2)
{
    uint64_t ret;
    __asm__ volatile("ud2"
                     : "=a"(ret), "+D"(a0), "+S"(a1), "+d"(a2)
                     : "a"(op)
                     : "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
    return ret;
}

static inline void outb(uint16_t port, uint8_t v) { cpl0_call(OP_OUTB, port, v, 0); }
static inline void outw(uint16_t port, uint16_t v) { cpl0_call(OP_OUTW, port, v, 0); }
static inline void outl(uint16_t port, uint32_t v) { cpl0_call(OP_OUTL, port, v, 0); }
static inline uint8_t inb(uint16_t port) { return (uint8_t)cpl0_call(OP_INB, port, 0, 0); }
static inline uint16_t inw(uint16_t port) { return (uint16_t)cpl0_call(OP_INW, port, 0, 0); }
static inline uint32_t inl(uint16_t port) { return (uint32_t)cpl0_call(OP_INL, port, 0, 0); }
static inline uint64_t rdmsr(uint32_t msr) { return cpl0_call(OP_RDMSR, msr, 0, 0); }
static inline void wrmsr(uint32_t msr, uint64_t v) { cpl0_call(OP_WRMSR, msr, v, 0); }
static inline void cpl3_set_if(int on) { cpl0_call(OP_SETIF, on ? 1 : 0, 0, 0); }
static inline void cpl0_wait(void) { cpl0_call(OP_WAIT, 0, 0, 0); }

__attribute__((noreturn)) static inline void cpl0_exit(uint8_t v)
{
    cpl0_call(OP_EXIT, v, 0, 0);
    __builtin_unreachable();
}

__attribute__((noreturn)) static inline void cpl0_idle(void)
{
    cpl0_call(OP_IDLE, 0, 0, 0);
    __builtin_unreachable();
}

/* CPUID as the VMM configured it: executed at (emulated) CPL0. */
static inline void cpuid_vmm(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    uint64_t a = OP_CPUID, b, c, d, di = leaf, si = sub;
    __asm__ volatile("ud2"
                     : "+a"(a), "=b"(b), "=c"(c), "=d"(d), "+D"(di), "+S"(si)
                     :
                     : "r8", "r9", "r10", "r11", "memory", "cc");
    r[0] = (uint32_t)a;
    r[1] = (uint32_t)b;
    r[2] = (uint32_t)c;
    r[3] = (uint32_t)d;
}

/* CPUID executed natively at CPL3 (may bypass the VMM on PVM). */
static inline void cpuid_native(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

#endif /* !__ASSEMBLER__ */
#endif
