/* herdd's event stream: guest state changes, alarms, range progress. A ring
 * of the last HD_EVENTS_KEPT events in memory, numbered from 1; readers ask
 * for what came after a number and may wait for it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herdd.h"

void hd_events_init(struct hd_events *ev)
{
    pthread_mutex_init(&ev->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->cond, &a);
    pthread_condattr_destroy(&a);
}

void hd_events_stop(struct hd_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    ev->stopping = true;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->mu);
}

uint64_t hd_event(struct hd_events *ev, const char *type, const char *name, json_t *data)
{
    json_t *e = json_object();
    uint64_t seq;

    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "time", json_integer(hd_now_ms()));
    if (name)
        json_object_set_new(e, "name", json_string(name));
    if (data) {
        json_object_update(e, data);
        json_decref(data);
    }
    pthread_mutex_lock(&ev->mu);
    seq = ++ev->seq;
    json_object_set_new(e, "seq", json_integer((json_int_t)seq));
    json_decref(ev->ring[seq % HD_EVENTS_KEPT]);
    ev->ring[seq % HD_EVENTS_KEPT] = e;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->mu);
    return seq;
}

uint64_t hd_event_seq(struct hd_events *ev)
{
    pthread_mutex_lock(&ev->mu);
    uint64_t s = ev->seq;
    pthread_mutex_unlock(&ev->mu);
    return s;
}

static bool match(json_t *e, const char *type_prefix, const char *name_prefix)
{
    const char *t = json_string_value(json_object_get(e, "type"));
    const char *n = json_string_value(json_object_get(e, "name"));
    const char *r = json_string_value(json_object_get(e, "range"));
    if (type_prefix && *type_prefix && (!t || strncmp(t, type_prefix, strlen(type_prefix))))
        return false;
    if (name_prefix && *name_prefix) {
        bool ok = (n && !strncmp(n, name_prefix, strlen(name_prefix))) ||
                  (r && !strcmp(r, name_prefix));
        if (!ok)
            return false;
    }
    return true;
}

json_t *hd_events_after(struct hd_events *ev, uint64_t seq, const char *type_prefix,
                        const char *name_prefix, size_t max, int wait_ms, uint64_t *last)
{
    json_t *out = json_array();
    struct timespec dl;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ev->mu);
    for (;;) {
        uint64_t first = ev->seq > HD_EVENTS_KEPT ? ev->seq - HD_EVENTS_KEPT + 1 : 1;
        if (seq + 1 < first)
            seq = first - 1;
        while (seq < ev->seq && json_array_size(out) < max) {
            seq++;
            json_t *e = ev->ring[seq % HD_EVENTS_KEPT];
            if (e && match(e, type_prefix, name_prefix))
                json_array_append(out, e);
        }
        if (json_array_size(out) || wait_ms <= 0 || ev->stopping)
            break;
        if (pthread_cond_timedwait(&ev->cond, &ev->mu, &dl) == ETIMEDOUT) {
            wait_ms = 0;
        }
    }
    pthread_mutex_unlock(&ev->mu);
    *last = seq;
    return out;
}
