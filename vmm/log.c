/*
 * Logging for herd-vmm. Each line is formatted in full and written with one
 * write(2), so lines from vCPU threads never interleave mid-line.
 */
#include "herd/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_INFO;
static const char *current_prefix = "herd";

void log_set_level(enum log_level level)
{
    current_level = level;
}

void log_set_prefix(const char *prefix)
{
    current_prefix = prefix;
}

int log_enabled(enum log_level level)
{
    return level <= current_level;
}

int log_parse_level(const char *name, enum log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

static void log_vmsg(enum log_level level, unsigned long suppressed, const char *fmt,
                     va_list ap) __attribute__((format(printf, 3, 0)));
static void log_vmsg(enum log_level level, unsigned long suppressed, const char *fmt,
                     va_list ap)
{
    static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
    char line[1024];
    int n;

    n = snprintf(line, sizeof(line), "%s: %s", current_prefix, tags[level]);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    if (suppressed) {
        n += snprintf(line + n, sizeof(line) - (size_t)n - 1,
                      " [%lu more like this suppressed]", suppressed);
        if (n > (int)sizeof(line) - 2)
            n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* Nothing sensible to do if stderr is gone. */
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    log_vmsg(level, 0, fmt, ap);
    va_end(ap);
}

int log_ratelimit_take(struct log_ratelimit *rl, long long now_ns, unsigned long *suppressed)
{
    const long long period = (long long)LOG_RATELIMIT_PERIOD_S * 1000000000LL;

    if (!rl->last_ns) {
        rl->last_ns = now_ns ? now_ns : 1;
        rl->tokens = LOG_RATELIMIT_BURST;
    } else if (now_ns - rl->last_ns >= period) {
        long long add = (now_ns - rl->last_ns) / period;

        rl->tokens = add >= LOG_RATELIMIT_BURST || rl->tokens + add >= LOG_RATELIMIT_BURST
                         ? LOG_RATELIMIT_BURST : rl->tokens + (unsigned)add;
        rl->last_ns += add * period;
    }
    if (!rl->tokens) {
        rl->suppressed++;
        return 0;
    }
    rl->tokens--;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}

/* One lock for every site's bucket (vCPU and I/O threads log; it is taken
 * only for a line of a guest-triggerable kind). */
static pthread_mutex_t ratelimit_mu = PTHREAD_MUTEX_INITIALIZER;

void log_msg_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
    struct timespec ts;
    unsigned long suppressed = 0;
    va_list ap;
    int ok;

    if (!log_enabled(level))
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pthread_mutex_lock(&ratelimit_mu);
    ok = log_ratelimit_take(rl, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, &suppressed);
    pthread_mutex_unlock(&ratelimit_mu);
    if (!ok)
        return;
    va_start(ap, fmt);
    log_vmsg(level, suppressed, fmt, ap);
    va_end(ap);
}
