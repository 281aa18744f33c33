/*
 * Interactive console for herdctl: output as bytes from an offset of the
 * guest's console log (so a client can follow it without losing or
 * repeating anything, prompts without newlines included), and input sent
 * to herd-vmm's control socket ({"cmd":"input"}), which feeds the UART.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herdd.h"

#define CONSOLE_CHUNK (64 * 1024)
#define CONSOLE_INPUT_MAX 4096

json_t *hd_vm_console_read(const char *name, long long offset, struct hd_err *err)
{
    char path[4096], *buf;
    struct stat st;
    ssize_t n = 0;
    int fd;

    if (offset < 0) {
        hd_fail(err, 400, "offset", "offset must be 0 or more");
        return NULL;
    }
    pthread_mutex_lock(&g.mu);
    struct hd_vm *vm = hd_vm_find(name);
    if (!vm) {
        pthread_mutex_unlock(&g.mu);
        hd_fail(err, 404, "name", "no guest '%s'", name);
        return NULL;
    }
    hd_vm_path(vm, "console.log", path, sizeof(path));
    pthread_mutex_unlock(&g.mu);
    buf = malloc(CONSOLE_CHUNK + 1);
    if (!buf) {
        hd_fail(err, 500, "", "out of memory");
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) == 0) {
        /* A restarted guest starts a new log: begin again from 0. */
        if (offset > st.st_size)
            offset = 0;
        n = pread(fd, buf, CONSOLE_CHUNK, offset);
        if (n < 0)
            n = 0;
    }
    if (fd >= 0)
        close(fd);
    /* JSON strings are text: bytes that are not printable ASCII, newline,
     * carriage return, tab, backspace or escape show as '?'. */
    for (ssize_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)buf[i];

        if (!((ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\r' || ch == '\t' ||
              ch == '\b' || ch == 0x1b))
            buf[i] = '?';
    }
    json_t *out = json_pack("{ss sI sI ss#}", "name", name, "offset", (json_int_t)offset,
                            "next", (json_int_t)(offset + n), "data", buf, (size_t)n);
    free(buf);
    if (!out)
        hd_fail(err, 500, "", "out of memory");
    return out;
}

int hd_vm_console_input(const char *name, json_t *body, json_t **out, struct hd_err *err)
{
    char why[256], *line;
    const char *key;
    json_t *v, *data = json_object_get(body, "data");

    json_object_foreach(body, key, v) {
        if (strcmp(key, "data"))
            return hd_fail(err, 400, key, "unknown field '%s' (console input takes \"data\")",
                           key);
    }
    if (!json_is_string(data))
        return hd_fail(err, 400, "data", "data must be a string");
    if (json_string_length(data) == 0 || json_string_length(data) > CONSOLE_INPUT_MAX)
        return hd_fail(err, 400, "data", "data must be 1-%d bytes", CONSOLE_INPUT_MAX);
    pthread_mutex_lock(&g.mu);
    struct hd_vm *vm = hd_vm_find(name);
    if (!vm) {
        pthread_mutex_unlock(&g.mu);
        return hd_fail(err, 404, "name", "no guest '%s'", name);
    }
    if (vm->pidfd < 0) {
        pthread_mutex_unlock(&g.mu);
        return hd_fail(err, 409, "state", "guest '%s' is not running", name);
    }
    json_t *req = json_pack("{ss sO}", "cmd", "input", "data", data);
    line = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!line) {
        pthread_mutex_unlock(&g.mu);
        return hd_fail(err, 500, "", "out of memory");
    }
    size_t len = strlen(line);
    char *msg = malloc(len + 2);
    if (!msg) {
        free(line);
        pthread_mutex_unlock(&g.mu);
        return hd_fail(err, 500, "", "out of memory");
    }
    memcpy(msg, line, len);
    memcpy(msg + len, "\n", 2);
    free(line);
    json_t *rep = hd_control_request(vm, msg, "input", 2000, why, sizeof(why));
    pthread_mutex_unlock(&g.mu);
    free(msg);
    if (!rep)
        return hd_fail(err, 502, "", "%s", why);
    *out = json_pack("{ss sO}", "name", name, "accepted", json_object_get(rep, "accepted"));
    json_decref(rep);
    return *out ? 0 : hd_fail(err, 500, "", "out of memory");
}
