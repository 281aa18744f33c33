/*
 * Logging for herd-vmm. Each line is formatted in full and written with one
 * write(2), so lines from vCPU threads never interleave mid-line.
 */
#include "herd/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
    char line[1024];
    va_list ap;
    int n;

    if (!log_enabled(level))
        return;
    n = snprintf(line, sizeof(line), "%s: %s", current_prefix, tags[level]);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* Nothing sensible to do if stderr is gone. */
    }
}
