/* herd-vmm's control socket, the client side (layer 1, docs/herdd.md
 * "Layers"): one request line, one reply line, bounded by a timeout. A
 * request may carry one descriptor (SCM_RIGHTS on the same sendmsg as the
 * line): the file a snapshot is written to. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "herdd.h"

json_t *hd_control(const struct hd_vm *vm, const char *cmd, int timeout_ms, char *why,
                   size_t why_size)
{
    char req[64];

    snprintf(req, sizeof(req), "{\"cmd\":\"%s\"}\n", cmd);
    return hd_control_request(vm, req, cmd, timeout_ms, why, why_size);
}

json_t *hd_control_request(const struct hd_vm *vm, const char *request, const char *cmd,
                           int timeout_ms, char *why, size_t why_size)
{
    return hd_control_request_fd(vm, request, cmd, -1, timeout_ms, why, why_size);
}

/* The whole request line in one sendmsg, with pass_fd (when >= 0) as its
 * SCM_RIGHTS descriptor: herd-vmm takes a descriptor with the line it came
 * with. */
static int send_request(int fd, const char *request, int pass_fd)
{
    size_t n = strlen(request);
    struct iovec iov = {.iov_base = (void *)request, .iov_len = n};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0)
        return -1;
    if ((size_t)w == n)
        return 0;
    /* the descriptor went with the first bytes; the rest is plain */
    const char *rest = request + w;
    size_t left = n - (size_t)w;
    while (left) {
        w = send(fd, rest, left, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        rest += w;
        left -= (size_t)w;
    }
    return 0;
}

json_t *hd_control_request_fd(const struct hd_vm *vm, const char *request, const char *cmd,
                              int pass_fd, int timeout_ms, char *why, size_t why_size)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char line[8192];
    size_t have = 0;
    int fd;

    hd_vm_control_path(vm, a.sun_path, sizeof(a.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        snprintf(why, why_size, "control socket %s: %s", a.sun_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (send_request(fd, request, pass_fd) < 0) {
        snprintf(why, why_size, "control socket: write: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    int64_t deadline = hd_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t left = (deadline - hd_mono_ns()) / 1000000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            snprintf(why, why_size, "control socket: no answer to %s in %d ms", cmd,
                     timeout_ms);
            close(fd);
            return NULL;
        }
        ssize_t r = read(fd, line + have, sizeof(line) - 1 - have);
        if (r <= 0) {
            snprintf(why, why_size, "control socket: closed before answering %s", cmd);
            close(fd);
            return NULL;
        }
        have += (size_t)r;
        line[have] = 0;
        char *nl = strchr(line, '\n');
        if (nl || have == sizeof(line) - 1) {
            if (nl)
                *nl = 0;
            break;
        }
    }
    close(fd);
    json_error_t je;
    json_t *rep = json_loads(line, 0, &je);
    if (!json_is_object(rep)) {
        json_decref(rep);
        snprintf(why, why_size, "control socket: bad reply to %s", cmd);
        return NULL;
    }
    if (!json_is_true(json_object_get(rep, "ok"))) {
        const char *e = json_string_value(json_object_get(rep, "error"));
        snprintf(why, why_size, "herd-vmm refused %s: %s", cmd, e ? e : "?");
        json_decref(rep);
        return NULL;
    }
    return rep;
}
