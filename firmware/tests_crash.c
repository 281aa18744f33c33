/*
 * Test "crash": never passes. Reads an unmapped address (above the 4 GiB the
 * page tables cover) at CPL3, so the page fault goes to the CPL0 crash
 * handler, which prints a "herd-probe: CRASH ..." line and exits with
 * EXIT_CRASH (status 5). Lets a VMM's tests check that guest exceptions are
 * delivered and that a crashing guest is reported as one.
 */
#include "lib.h"
#include "tests.h"

void test_crash(struct test_ctx *t)
{
    (void)rd64(0x100000000ULL);
    fail(t, "reading an unmapped address did not fault");
}
