#include "tests.h"
void test_hostile(struct test_ctx *t) { fail(t, "not yet"); }
