/*
 * herd-vmm's log: one line per event on stderr, prefixed with the program
 * name so a supervisor can tell its lines from the guest console's.
 */
#ifndef HERD_LOG_H
#define HERD_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
void log_set_prefix(const char *prefix);
int log_parse_level(const char *name, enum log_level *out);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Lines a guest can cause at will (a refused BAR move, a protocol violation,
 * a boot marker) are rate-limited per call site: a token bucket of
 * LOG_RATELIMIT_BURST lines, refilled by one every LOG_RATELIMIT_PERIOD_S
 * seconds. A line let through after others were dropped says how many
 * ("[N more like this suppressed]"). So a guest adds at most about one line
 * per 10 s per site to herd-vmm's log, however fast it tries.
 */
#define LOG_RATELIMIT_BURST 10
#define LOG_RATELIMIT_PERIOD_S 10

struct log_ratelimit {
    long long last_ns;   /* when the bucket was last refilled; 0 = never used */
    unsigned tokens;
    unsigned long suppressed;
};

/* The bucket's decision at time now_ns (monotonic): 1 = log (and
 * *suppressed = how many were dropped since the last logged one), 0 = drop.
 * Not locked: callers hold the log's lock (log_msg_limited) or own rl. */
int log_ratelimit_take(struct log_ratelimit *rl, long long now_ns, unsigned long *suppressed);

void log_msg_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One bucket per call site. */
#define log_limited(level, ...)                                                              \
    do {                                                                                     \
        static struct log_ratelimit log_rl_;                                                 \
        log_msg_limited(&log_rl_, level, __VA_ARGS__);                                       \
    } while (0)
#define log_warn_guest(...) log_limited(LOG_WARN, __VA_ARGS__)
#define log_info_guest(...) log_limited(LOG_INFO, __VA_ARGS__)

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
