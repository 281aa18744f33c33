/*
 * boot-timer: runs a VMM command line N times and reports, per run, the
 * wall time from just before fork() to the first console line matching a
 * marker string, and to process exit. Used by `make bench` to time herd-vmm
 * and QEMU the same way from the outside, so neither VMM's own clock is
 * trusted.
 *
 * usage: boot-timer [-p] RUNS MARKER -- COMMAND [ARGS...]
 * prints: one line per run "marker_us exit_us status", then
 *         "median marker_us exit_us"
 * -p: the marker counts as soon as its bytes are out, without waiting for
 *     the rest of its line (on PVM every console byte costs an exit, so a
 *     long line can take milliseconds: -p times the guest's first words).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* One run: returns 0 and fills the times, or -1. */
static int run_once(char **argv, const char *marker, int partial, uint64_t *marker_us,
                    uint64_t *exit_us, int *status)
{
    char buf[4096], line[8192];
    size_t used = 0;
    int pfd[2], found = 0;
    uint64_t t0;
    pid_t pid;

    if (pipe(pfd) < 0)
        return -1;
    t0 = now_us();
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    *marker_us = 0;
    for (;;) {
        ssize_t n = read(pfd[0], buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && !found; i++) {
            if (used < sizeof(line) - 1)
                line[used++] = buf[i];
            line[used] = 0;
            if ((partial || buf[i] == '\n') && strstr(line, marker)) {
                *marker_us = now_us() - t0;
                found = 1;
            }
            if (buf[i] == '\n')
                used = 0;
        }
    }
    close(pfd[0]);
    if (waitpid(pid, status, 0) < 0)
        return -1;
    *exit_us = now_us() - t0;
    return found ? 0 : -1;
}

int main(int argc, char **argv)
{
    uint64_t *marks, *exits;
    const char *marker;
    int runs, ok = 0, partial = 0;

    if (argc > 1 && strcmp(argv[1], "-p") == 0) {
        partial = 1;
        argv++;
        argc--;
    }
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: boot-timer [-p] RUNS MARKER -- COMMAND [ARGS...]\n");
        return 2;
    }
    runs = atoi(argv[1]);
    marker = argv[2];
    if (runs <= 0 || runs > 10000) {
        fprintf(stderr, "boot-timer: RUNS must be 1-10000\n");
        return 2;
    }
    marks = calloc((size_t)runs, sizeof(*marks));
    exits = calloc((size_t)runs, sizeof(*exits));
    if (!marks || !exits)
        return 2;
    for (int i = 0; i < runs; i++) {
        int status = 0;

        if (run_once(argv + 4, marker, partial, &marks[ok], &exits[ok], &status) == 0) {
            printf("%llu %llu %d\n", (unsigned long long)marks[ok],
                   (unsigned long long)exits[ok], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            ok++;
        } else {
            printf("run %d: marker '%s' not seen\n", i, marker);
        }
    }
    if (ok == 0) {
        fprintf(stderr, "boot-timer: no run printed the marker\n");
        return 1;
    }
    qsort(marks, (size_t)ok, sizeof(*marks), cmp_u64);
    qsort(exits, (size_t)ok, sizeof(*exits), cmp_u64);
    printf("median %llu %llu\n", (unsigned long long)marks[ok / 2],
           (unsigned long long)exits[ok / 2]);
    free(marks);
    free(exits);
    return ok == runs ? 0 : 1;
}
