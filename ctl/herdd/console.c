/*
 * The guest's console: the pipe from herd-vmm into a capped, rotated
 * console.log (below), and for herdctl: output as bytes from an offset of the
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
#define CONSOLE_PIPE_SIZE (1 << 20)     /* herd-vmm may run this far ahead */
#define CONSOLE_DRAIN_MAX (16u << 20)   /* per guest per supervisor tick (20 ms) */

/*
 * The console log is written by herdd, not herd-vmm: herd-vmm's serial
 * output is a FIFO (console.pipe, made here before the spawn, opened by
 * herd-vmm write-only before it drops privileges), and herdd appends what
 * it reads to console.log. console.log never passes console_log_max: when
 * the next bytes would, it becomes console.log.1 (replacing the older one)
 * and a new console.log starts. So whatever a guest or a compromised
 * herd-vmm writes, the console takes at most twice console_log_max on disk.
 *
 * Offsets (GET .../console?offset=N) count every byte since the guest
 * started: console.log begins at console offset con_base (kept in
 * console.base for a herdd restart), console.log.1 holds the bytes just
 * before it. A follower keeps its offset across a rotation; one that fell
 * further behind than console.log.1 reaches jumps to its first byte.
 */

static void console_file(const struct hd_vm *vm, const char *name, char *out, size_t len)
{
    hd_vm_path(vm, name, out, len);
}

static uint64_t load_base(const struct hd_vm *vm)
{
    char p[4096], buf[32] = "";
    int fd;
    ssize_t n;

    if (vm->con_open)
        return vm->con_base;
    console_file(vm, "console.base", p, sizeof(p));
    fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return strtoull(buf, NULL, 10);
}

static void save_base(const struct hd_vm *vm)
{
    char p[4096], tmp[4200], buf[32];
    int fd, n;

    console_file(vm, "console.base", p, sizeof(p));
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)vm->con_base);
    if (write(fd, buf, (size_t)n) != n) {
        close(fd);
        unlink(tmp);
        return;
    }
    close(fd);
    rename(tmp, p);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int open_log(const struct hd_vm *vm, bool trunc)
{
    char p[4096];

    console_file(vm, "console.log", p, sizeof(p));
    return hd_fd_high(
        open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0600));
}

/* The pipe's descriptors closed (what is still in it stays unread). */
static void close_pipe(struct hd_vm *vm)
{
    if (!vm->con_open)
        return;
    close(vm->con_rfd);
    if (vm->con_wfd >= 0)
        close(vm->con_wfd);
    vm->con_rfd = vm->con_wfd = -1;
    vm->con_open = false;
}

int hd_console_start(const struct hd_config *cfg, struct hd_vm *vm, char *fifo, size_t fifo_len,
                     struct hd_err *err)
{
    static const char *const old[] = {"console.log", "console.log.1", "console.base",
                                      "console.pipe"};
    char p[4096];

    hd_console_finish(cfg, vm);
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        console_file(vm, old[i], p, sizeof(p));
        unlink(p);
    }
    console_file(vm, "console.pipe", fifo, fifo_len);
    if (mkfifo(fifo, 0600) < 0)
        return hd_fail(err, 500, "", "mkfifo %s: %s", fifo, strerror(errno));
    /* the reader first: herd-vmm's non-blocking open for writing needs one */
    vm->con_rfd = hd_fd_high(open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (vm->con_rfd < 0)
        return hd_fail(err, 500, "", "open %s: %s", fifo, strerror(errno));
    fcntl(vm->con_rfd, F_SETPIPE_SZ, CONSOLE_PIPE_SIZE);
    vm->con_wfd = open_log(vm, true);
    if (vm->con_wfd < 0) {
        int e = errno;
        close(vm->con_rfd);
        return hd_fail(err, 500, "", "console.log of %s: %s", vm->name, strerror(e));
    }
    vm->con_size = 0;
    vm->con_base = 0;
    vm->con_open = true;
    save_base(vm);
    return 0;
}

bool hd_console_adopt(struct hd_vm *vm)
{
    char p[4096];
    struct stat st;

    /* a record being adopted has no pipe open (hd_db_load made it): this
     * only closes what might be, as hd_console_finish would */
    close_pipe(vm);
    console_file(vm, "console.pipe", p, sizeof(p));
    if (lstat(p, &st) < 0 || !S_ISFIFO(st.st_mode))
        return false;
    vm->con_base = load_base(vm);
    vm->con_rfd = hd_fd_high(open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (vm->con_rfd < 0)
        return false;
    fcntl(vm->con_rfd, F_SETPIPE_SZ, CONSOLE_PIPE_SIZE);
    vm->con_wfd = open_log(vm, false);
    if (vm->con_wfd < 0 || fstat(vm->con_wfd, &st) < 0) {
        if (vm->con_wfd >= 0)
            close(vm->con_wfd);
        close(vm->con_rfd);
        return false;
    }
    vm->con_size = (uint64_t)st.st_size;
    vm->con_open = true;
    return true;
}

/* console.log -> console.log.1, a new console.log. */
static void rotate(struct hd_vm *vm)
{
    char cur[4096], old[4200];

    console_file(vm, "console.log", cur, sizeof(cur));
    snprintf(old, sizeof(old), "%s.1", cur);
    close(vm->con_wfd);
    rename(cur, old);
    vm->con_base += vm->con_size;
    vm->con_size = 0;
    save_base(vm);
    vm->con_wfd = open_log(vm, true);
}

static void append(const struct hd_config *cfg, struct hd_vm *vm, const char *p, size_t n)
{
    uint64_t max = cfg->console_log_max;

    while (n && vm->con_wfd >= 0) {
        if (vm->con_size >= max) {
            rotate(vm);
            continue;
        }
        size_t w = n < max - vm->con_size ? n : (size_t)(max - vm->con_size);
        ssize_t k = write(vm->con_wfd, p, w);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* a full disk: these bytes are lost (offsets follow the file) */
        vm->con_size += (uint64_t)k;
        p += k;
        n -= (size_t)k;
    }
}

ssize_t hd_console_drain(const struct hd_config *cfg, struct hd_vm *vm)
{
    char buf[16384];
    size_t total = 0;

    if (!vm->con_open)
        return 0;
    while (total < CONSOLE_DRAIN_MAX) {
        ssize_t n = read(vm->con_rfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 && total == 0)
            return -1; /* no writer, nothing left */
        if (n <= 0)
            break;
        append(cfg, vm, buf, (size_t)n);
        total += (size_t)n;
    }
    return (ssize_t)total;
}

void hd_console_finish(const struct hd_config *cfg, struct hd_vm *vm)
{
    if (!vm->con_open)
        return;
    hd_console_drain(cfg, vm);
    close_pipe(vm);
}

ssize_t hd_console_pread(const struct hd_vm *vm, uint64_t *off, char *buf, size_t len)
{
    char cur[4096], old[4200];
    uint64_t base = load_base(vm), size, old_size = 0, first;
    ssize_t n;
    int fd;

    console_file(vm, "console.log", cur, sizeof(cur));
    snprintf(old, sizeof(old), "%s.1", cur);
    size = vm->con_open ? vm->con_size : file_size(cur);
    if (base)
        old_size = file_size(old);
    first = base > old_size ? base - old_size : 0;
    /* A restarted guest starts a new log: begin again from 0. */
    if (*off > base + size)
        *off = 0;
    if (*off < first)
        *off = first;
    if (*off >= base) {
        fd = open(cur, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        n = pread(fd, buf, len, (off_t)(*off - base));
    } else {
        fd = open(old, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        n = pread(fd, buf, len, (off_t)(*off - first));
    }
    close(fd);
    return n < 0 ? 0 : n;
}

json_t *hd_vm_console_read(struct hd_store *st, const char *name, long long offset,
                           struct hd_err *err)
{
    char *buf;
    ssize_t n = 0;
    uint64_t off = (uint64_t)offset;

    if (offset < 0) {
        hd_fail(err, 400, "offset", "offset must be 0 or more");
        return NULL;
    }
    buf = malloc(CONSOLE_CHUNK + 1);
    if (!buf) {
        hd_fail(err, 500, "", "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, name);
    if (!vm) {
        pthread_mutex_unlock(&st->mu);
        free(buf);
        hd_fail(err, 404, "name", "no guest '%s'", name);
        return NULL;
    }
    /* under the store lock: the supervisor rotates the files under it */
    n = hd_console_pread(vm, &off, buf, CONSOLE_CHUNK);
    pthread_mutex_unlock(&st->mu);
    offset = (long long)off;
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

int hd_vm_console_input(struct hd_store *st, const char *name, json_t *body, json_t **out,
                        struct hd_err *err)
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
    pthread_mutex_lock(&st->mu);
    struct hd_vm *vm = hd_vm_find(st, name);
    if (!vm) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 404, "name", "no guest '%s'", name);
    }
    if (vm->pidfd < 0) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 409, "state", "guest '%s' is not running", name);
    }
    json_t *req = json_pack("{ss sO}", "cmd", "input", "data", data);
    line = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!line) {
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 500, "", "out of memory");
    }
    size_t len = strlen(line);
    char *msg = malloc(len + 2);
    if (!msg) {
        free(line);
        pthread_mutex_unlock(&st->mu);
        return hd_fail(err, 500, "", "out of memory");
    }
    memcpy(msg, line, len);
    memcpy(msg + len, "\n", 2);
    free(line);
    json_t *rep = hd_control_request(vm, msg, "input", 2000, why, sizeof(why));
    pthread_mutex_unlock(&st->mu);
    free(msg);
    if (!rep)
        return hd_fail(err, 502, "", "%s", why);
    *out = json_pack("{ss sO}", "name", name, "accepted", json_object_get(rep, "accepted"));
    json_decref(rep);
    return *out ? 0 : hd_fail(err, 500, "", "out of memory");
}
