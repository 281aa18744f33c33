/* herdd's clocks (layer 0, docs/herdd.md "Layers"): the one place the time
 * comes from, so that no layer has to reach up into main.c for it. herdd's
 * state is not here: main.c owns it (struct herdd) and hands each layer its
 * context. */
#include <time.h>

#include "herdd.h"

int64_t hd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hd_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
