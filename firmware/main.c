/*
 * herd-probe main program (CPL3): boot marker, boot facts, command line,
 * the requested tests in order, the summary line, then debug-exit (or idle
 * forever with probe.idle=1).
 */
#include "bootinfo.h"
#include "cmdline.h"
#include "cpl0.h"
#include "lib.h"
#include "serial.h"
#include "tests.h"

#define BOOT_MARKER_MMIO 0xc0000000ULL
#define BOOT_MARKER_PORT 0x3f0
#define BOOT_MARKER_MAGIC 123
#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1

void probe_main(uint64_t via, uint64_t info);

static const struct {
    const char *name;
    void (*fn)(struct test_ctx *);
} all_tests[] = {
    { "boot", test_boot },
    { "serial", test_serial },
    { "cpuid", test_cpuid },
    { "timer", test_timer },
    { "crash", test_crash },
    { "pci", test_pci },
    { "blk", test_blk },
    { "net", test_net },
    { "hostile", test_hostile },
    { "msix", test_msix },
    { "flood", test_flood },
    { "ticks", test_ticks },
};

static struct bootinfo bi;
static struct probe_args args;

void fail(struct test_ctx *t, const char *fmt, ...)
{
    size_t used = strlen(t->why);
    if (t->nfail++ && used + 2 < sizeof(t->why)) {
        memcpy(t->why + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why + used, sizeof(t->why) - used, fmt, ap);
    va_end(ap);
}

uint64_t wait_count(volatile uint64_t *counter, uint64_t target, uint64_t cycles)
{
    uint64_t start = rdtsc();
    while (*counter < target && rdtsc() - start < cycles)
        cpu_relax();
    return *counter;
}

static bool run_test(const char *name)
{
    static struct test_ctx t;
    memset(&t, 0, sizeof(t));
    t.bi = &bi;
    t.args = &args;
    void (*fn)(struct test_ctx *) = 0;
    for (size_t i = 0; i < ARRAY_SIZE(all_tests); i++)
        if (strncmp(all_tests[i].name, name, TEST_NAME_MAX) == 0)
            fn = all_tests[i].fn;
    if (!fn)
        fail(&t, "unknown test");
    else
        fn(&t);
    if (t.nfail)
        say("%s FAIL %s", name, t.why);
    else
        say("%s ok", name);
    return t.nfail == 0;
}

void probe_main(uint64_t via, uint64_t info)
{
    /* Boot-time marker first (Firecracker convention): an MMIO byte and a
     * port byte, so either kind of VMM can timestamp it. */
    wr8(BOOT_MARKER_MMIO, BOOT_MARKER_MAGIC);
    outb(BOOT_MARKER_PORT, BOOT_MARKER_MAGIC);
    /* Mask the 8259s: the tests route interrupts through the IOAPIC only,
     * and an unprogrammed PIC would deliver on exception vectors. */
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
    serial_init();

    bootinfo_read(&bi, (int)via, info);
    say("boot via %s", via == BOOT_PVH ? "pvh" : via == BOOT_LINUX ? "linux" : "unknown");
    say("cmdline: %s", bi.cmdline_present ? bi.cmdline : "(none)");
    cmdline_parse(bi.cmdline, &args);

    uint32_t passed = 0, failed = 0;
    if (!args.has_tests) {
        /* Nothing asked for: run the boot test, which fails on exactly that. */
        args.ntests = 1;
        memcpy(args.tests[0], "boot", 5);
    }
    for (uint32_t i = 0; i < args.ntests; i++) {
        if (run_test(args.tests[i]))
            passed++;
        else
            failed++;
    }
    if (args.tests_overflow) {
        say("probe.tests FAIL more than %u tests", MAX_TESTS);
        failed++;
    }
    say("%u passed, %u failed", passed, failed);
    if (args.idle) {
        say("ready");
        cpl0_idle();
    }
    cpl0_exit(failed ? EXIT_FAIL : EXIT_PASS);
}
