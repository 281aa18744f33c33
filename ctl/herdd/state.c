/* herdd's clocks and descriptors (layer 0, docs/herdd.md "Layers"): the one
 * place the time comes from, so that no layer has to reach up into main.c
 * for it, and where a guest's long-lived descriptors are moved out of the
 * way. herdd's state is not here: main.c owns it (struct herdd) and hands
 * each layer its context. */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "herdd.h"

int64_t hd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Descriptors a guest keeps while it runs (its pidfd, its console pipe and
 * log: three per guest) are moved to HD_FD_FLOOR and above, so that the
 * descriptors herdd opens for a moment stay under FD_SETSIZE (1024) with
 * any number of guests: libraries herdd links still hand theirs to
 * select(), which aborts the process past 1023 (libnftables' netlink talk
 * when netdev installs a tap's filter). When RLIMIT_NOFILE leaves no room
 * up there, fd stays where it is (no descriptor can then pass 1023). */
int hd_fd_high(int fd)
{
    if (fd < 0 || fd >= HD_FD_FLOOR)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, HD_FD_FLOOR);
    if (high < 0)
        return fd;
    close(fd);
    return high;
}

int64_t hd_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
