/*
 * The control protocol without the socket: one request line in, one reply
 * line out. Strict about what it accepts (an object, a known "cmd", no
 * unknown keys) and precise about what it refuses; nothing a client sends
 * can do more than earn an {"ok":false,...} reply.
 */
#include "herd/control.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *control_state_name(enum control_state s)
{
    switch (s) {
    case CONTROL_RUNNING:
        return "running";
    case CONTROL_PAUSED:
        return "paused";
    case CONTROL_STOPPING:
        return "stopping";
    }
    return "unknown";
}

/* Serialises `reply` (stealing the reference) as one line with '\n'. */
static char *finish(json_t *reply)
{
    char *text, *line;
    size_t n;

    if (!reply)
        return NULL;
    text = json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(reply);
    if (!text)
        return NULL;
    n = strlen(text);
    line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    return line;
}

/* A JSON string for host text that may not be UTF-8 (a path, a command
 * line): invalid bytes become '?'. */
static json_t *text(const char *s)
{
    json_t *j;
    char *copy;

    if (!s)
        s = "";
    j = json_string(s);
    if (j)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *error_object(const char *msg)
{
    /* msg may quote the client's bytes (a JSON syntax error): made UTF-8. */
    return json_pack("{s:b, s:o}", "ok", 0, "error", text(msg));
}

char *control_reply_error(const char *msg)
{
    return finish(error_object(msg));
}

static json_t *disk_json(const struct control_disk_status *d)
{
    return json_pack("{s:o, s:o, s:b}", "path", text(d->path), "format", text(d->format),
                     "readonly", d->readonly);
}

static json_t *nic_json(const struct control_nic_status *n)
{
    char mac[18], buf[2048];
    json_t *stats = NULL;
    int len;

    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
             n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
    len = netstats_format_json(&n->stats, buf, sizeof(buf));
    if (len > 0 && (size_t)len < sizeof(buf))
        stats = json_loads(buf, 0, NULL);
    if (!stats)
        stats = json_null();
    return json_pack("{s:o, s:s, s:s, s:o}", "tap", text(n->tap), "mac", mac, "path",
                     n->path == NET_PATH_VHOST ? "vhost" : "userspace", "stats", stats);
}

json_t *control_status_json(const struct control_status *st)
{
    json_t *o, *disks = json_array(), *nics = json_array();

    if (!disks || !nics)
        goto fail;
    for (unsigned i = 0; i < st->nr_disks && i < VMM_MAX_DISKS; i++)
        if (json_array_append_new(disks, disk_json(&st->disks[i])))
            goto fail;
    for (unsigned i = 0; i < st->nr_nics && i < VMM_MAX_NICS; i++)
        if (json_array_append_new(nics, nic_json(&st->nics[i])))
            goto fail;
    o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o}",
                  "state", control_state_name(st->state),
                  "pid", (json_int_t)st->pid,
                  "uptime_ms", (json_int_t)st->uptime_ms,
                  "cpus", (json_int_t)st->cpus,
                  "mem", (json_int_t)st->mem,
                  "kernel", text(st->kernel),
                  "cmdline", text(st->cmdline),
                  "boot_marker_us",
                  st->boot_marker_us ? json_integer((json_int_t)st->boot_marker_us)
                                     : json_null(),
                  "disks", disks, "nics", nics);
    return o; /* json_pack's "o" stole disks and nics, also on failure */
fail:
    json_decref(disks);
    json_decref(nics);
    return NULL;
}

static const char *const commands[] = {"ping", "status", "pause", "resume", "stop", "input",
                                       "powerdown", "snapshot"};
#define COMMAND_LIST "ping, status, pause, resume, stop, input, powerdown, snapshot"

/* "data" belongs to input, and input needs it: a string of bounded size. */
static const char *check_data(json_t *req, const char *cmd)
{
    json_t *d = json_object_get(req, "data");

    if (strcmp(cmd, "input") != 0)
        return d ? "\"data\" is only for the input command" : NULL;
    if (!d || !json_is_string(d))
        return "input needs \"data\": a string of bytes for the guest's console";
    if (json_string_length(d) > CONTROL_MAX_INPUT)
        return "input \"data\" is longer than 4096 bytes";
    return NULL;
}

/* Checks the request's shape; NULL or an error message (in buf). */
static const char *check_request(json_t *req, const char **cmd, char *buf, size_t buflen)
{
    const char *key;
    json_t *v, *c;

    if (!json_is_object(req))
        return "a request must be a JSON object, e.g. {\"cmd\":\"status\"}";
    json_object_foreach(req, key, v) {
        if (strcmp(key, "cmd") && strcmp(key, "id") && strcmp(key, "data")) {
            snprintf(buf, buflen, "unknown key '%.64s' (a request has \"cmd\", optionally "
                     "\"id\", and \"data\" for input)", key);
            return buf;
        }
    }
    c = json_object_get(req, "cmd");
    if (!c)
        return "missing \"cmd\" (one of " COMMAND_LIST ")";
    if (!json_is_string(c))
        return "\"cmd\" must be a string (one of " COMMAND_LIST ")";
    *cmd = json_string_value(c);
    for (unsigned i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(*cmd, commands[i]) == 0 && strlen(*cmd) == json_string_length(c))
            return check_data(req, *cmd);
    snprintf(buf, buflen, "unknown command '%.64s' (one of " COMMAND_LIST ")", *cmd);
    return buf;
}

static json_t *powerdown(const struct control_ops *ops, void *ctx)
{
    struct herd_err err = {0};
    int rc;

    if (!ops->powerdown)
        return error_object("powerdown: this VM has no power button");
    rc = ops->powerdown(ctx, &err);
    if (!rc)
        return json_pack("{s:b}", "ok", 1);
    if (!err.msg[0])
        herd_err_set(&err, rc, "", "powerdown: %s", strerror(-rc));
    return error_object(err.msg);
}

/* The target file comes with the request (SCM_RIGHTS): herd-vmm never opens
 * a path for it, so a client can only have it write where the client
 * itself could. */
static json_t *snapshot(const struct control_ops *ops, void *ctx, int *passed_fd)
{
    struct herd_err err = {0};
    int rc, fd = passed_fd ? *passed_fd : -1;

    if (fd < 0)
        return error_object("snapshot: send the target file with the request: an empty regular "
                            "file open for writing, as SCM_RIGHTS (docs/snapshot.md)");
    *passed_fd = -1;
    rc = ops->snapshot ? ops->snapshot(ctx, fd, &err) : -EOPNOTSUPP;
    close(fd);
    if (!rc)
        return json_pack("{s:b}", "ok", 1);
    if (!err.msg[0])
        herd_err_set(&err, rc, "", "snapshot: %s", strerror(-rc));
    return error_object(err.msg);
}

static json_t *dispatch(const char *cmd, json_t *req, const struct control_ops *ops,
                        void *ctx, int *passed_fd, enum control_action *action)
{
    struct herd_err err = {0};
    int rc;

    if (strcmp(cmd, "ping") == 0)
        return json_pack("{s:b}", "ok", 1);
    if (strcmp(cmd, "input") == 0) {
        json_t *d = json_object_get(req, "data");
        size_t n = ops->input ? ops->input(ctx, (const uint8_t *)json_string_value(d),
                                           json_string_length(d))
                              : 0;

        return json_pack("{s:b,s:I}", "ok", 1, "accepted", (json_int_t)n);
    }
    if (strcmp(cmd, "status") == 0) {
        struct control_status *st = calloc(1, sizeof(*st));
        json_t *o = json_pack("{s:b}", "ok", 1);

        if (!st || !o) {
            free(st);
            json_decref(o);
            return NULL;
        }
        ops->status(ctx, st);
        if (json_object_update_new(o, control_status_json(st))) { /* "ok" stays first */
            json_decref(o);
            o = NULL;
        }
        free(st);
        return o;
    }
    if (strcmp(cmd, "powerdown") == 0)
        return powerdown(ops, ctx);
    if (strcmp(cmd, "snapshot") == 0)
        return snapshot(ops, ctx, passed_fd);
    if (strcmp(cmd, "stop") == 0) {
        *action = CONTROL_ACTION_STOP;
        return json_pack("{s:b}", "ok", 1);
    }
    rc = strcmp(cmd, "pause") == 0 ? ops->pause(ctx, &err) : ops->resume(ctx, &err);
    if (rc) {
        if (!err.msg[0])
            herd_err_set(&err, rc, "", "%s: %s", cmd, strerror(-rc));
        return error_object(err.msg);
    }
    return json_pack("{s:b}", "ok", 1);
}

char *control_handle(const char *line, size_t len, const struct control_ops *ops, void *ctx,
                     int *passed_fd, enum control_action *action)
{
    char buf[CONTROL_ERR_LEN];
    json_error_t jerr;
    json_t *req, *reply, *id;
    const char *cmd = NULL, *why;

    *action = CONTROL_ACTION_NONE;
    if (len > CONTROL_MAX_LINE) {
        snprintf(buf, sizeof(buf), "request line longer than %d bytes", CONTROL_MAX_LINE);
        return control_reply_error(buf);
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return control_reply_error("empty request line (expected one JSON object per line)");
    req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        snprintf(buf, sizeof(buf), "malformed JSON at column %d: %s", jerr.column, jerr.text);
        return control_reply_error(buf);
    }
    why = check_request(req, &cmd, buf, sizeof(buf));
    if (why) {
        json_decref(req);
        return control_reply_error(why);
    }
    reply = dispatch(cmd, req, ops, ctx, passed_fd, action);
    id = json_object_get(req, "id");
    if (reply && id && json_object_set(reply, "id", id)) {
        json_decref(reply);
        reply = NULL;
    }
    json_decref(req);
    if (!reply) {
        *action = CONTROL_ACTION_NONE;
        return control_reply_error("out of memory");
    }
    return finish(reply);
}
