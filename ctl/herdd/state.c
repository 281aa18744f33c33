/* herdd's process state and clock (layer 0, docs/herdd.md "Layers"): the
 * one struct hd_state main.c fills and every layer reads, and the two
 * clocks, so that no layer has to reach up into main.c for them. */
#include <time.h>

#include "herdd.h"

struct hd_state g = {.mu = PTHREAD_MUTEX_INITIALIZER, .epfd = -1};

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
