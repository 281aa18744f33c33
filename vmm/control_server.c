/*
 * The control socket: a unix stream socket served by one thread (epoll):
 * the listening socket, a wake-up eventfd for shutdown, and up to
 * CONTROL_MAX_CLIENTS connections. Each connection collects bytes into
 * lines, hands each line to control_handle() and queues the reply; replies
 * go out as the client reads them (non-blocking, never SIGPIPE). A line
 * over CONTROL_MAX_LINE earns an error and is skipped to its newline; a
 * client that lets more than CONTROL_MAX_PENDING reply bytes pile up is
 * dropped. Nothing a client does reaches past its own connection.
 */
#include "herd/control.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "herd/jail.h"
#include "herd/log.h"

#define CONTROL_MAX_PENDING (1 << 20)
#define CONTROL_READ_CHUNK  16384
#define EV_LISTEN ((uint64_t)CONTROL_MAX_CLIENTS)
#define EV_WAKE   ((uint64_t)CONTROL_MAX_CLIENTS + 1)

struct client {
    int fd;          /* -1: slot free */
    char *in;        /* partial line */
    size_t in_len, in_cap;
    bool skipping;   /* dropping the rest of an oversize line */
    bool eof;        /* peer closed its side: close once replies are out */
    char *out;       /* replies not yet sent */
    size_t out_len, out_cap;
    uint32_t events; /* what epoll watches */
    int passed_fd;   /* a descriptor sent with the data (SCM_RIGHTS), or -1 */
};

struct control_server {
    char *path;
    int listen_fd, wake_fd, epoll_fd;
    dev_t dev;
    ino_t ino;
    pthread_t thread;
    bool started;
    const struct control_ops *ops;
    void *ctx;
    struct client clients[CONTROL_MAX_CLIENTS];
};

static int make_addr(const char *path, struct sockaddr_un *addr, struct herd_err *err)
{
    size_t len = strlen(path);

    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (len >= sizeof(addr->sun_path))
        return herd_err_set(err, -ENAMETOOLONG, "",
                            "control: the socket path is %zu bytes; a unix socket path "
                            "holds at most %zu: %s", len, sizeof(addr->sun_path) - 1, path);
    memcpy(addr->sun_path, path, len);
    return 0;
}

/* An existing path: a live socket is refused, a stale one removed. */
static int clear_path(const char *path, const struct sockaddr_un *addr, struct herd_err *err)
{
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        rc = -errno;
        herd_err_set(err, rc, "", "control: %s: %s", path, strerror(errno));
        return rc;
    }
    if (!S_ISSOCK(st.st_mode))
        return herd_err_set(err, -EEXIST, "",
                            "control: %s exists and is not a socket; refusing to replace it", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "control: socket: %s", strerror(errno));
        return rc;
    }
    rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : -errno;
    close(fd);
    if (rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS)
        return herd_err_set(err, -EADDRINUSE, "",
                            "control: %s is a live socket (another process serves it, "
                            "another herd-vmm for this guest?); refusing to start", path);
    if (rc != -ECONNREFUSED) {
        herd_err_set(err, rc, "", "control: %s exists and cannot be checked: connect: %s", path,
                     strerror(-rc));
        return rc;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        rc = -errno;
        herd_err_set(err, rc, "", "control: cannot remove the stale socket %s: %s", path,
                     strerror(errno));
        return rc;
    }
    log_info("control: removed the stale socket %s", path);
    return 0;
}

int control_server_open(const char *path, struct control_server **out, struct herd_err *err)
{
    struct control_server *s;
    struct sockaddr_un addr;
    struct stat st;
    mode_t old_mask;
    int rc;

    *out = NULL;
    rc = make_addr(path, &addr, err);
    if (rc)
        return rc;
    rc = clear_path(path, &addr, err);
    if (rc)
        return rc;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return herd_err_set(err, -ENOMEM, "", "control: out of memory");
    }
    s->wake_fd = s->epoll_fd = -1;
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        s->clients[i].fd = s->clients[i].passed_fd = -1;
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->listen_fd < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "control: socket: %s", strerror(errno));
        goto fail;
    }
    /* Created 0600 from the start: no window where others could connect. */
    old_mask = umask(0177);
    rc = bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ? -errno : 0;
    umask(old_mask);
    if (rc) {
        herd_err_set(err, rc, "", "control: cannot create the socket %s: %s", path,
                     rc == -EADDRINUSE ? "the path appeared meanwhile (another herd-vmm?)"
                                       : strerror(-rc));
        goto fail;
    }
    if (stat(path, &st) < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "control: %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    if (chmod(path, 0600) < 0 || listen(s->listen_fd, 32) < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "control: %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->path);
    free(s);
    return rc;
}

static void client_close(struct control_server *s, struct client *c)
{
    if (c->fd < 0)
        return;
    epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->passed_fd >= 0)
        close(c->passed_fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = c->passed_fd = -1;
}

static void client_watch(struct control_server *s, struct client *c)
{
    uint32_t want = (c->eof ? 0 : EPOLLIN) | (c->out_len ? EPOLLOUT : 0);
    struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)(c - s->clients)};

    if (want != c->events && epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = want;
}

/* Sends what it can; false when the connection is gone. */
static bool client_flush(struct client *c)
{
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    return true;
}

/* Queues a reply (taking it) and tries to send; false: drop the client. */
static bool client_reply(struct client *c, char *reply)
{
    size_t n;

    if (!reply)
        return false; /* out of memory: the client would miss a reply */
    n = strlen(reply);
    if (c->out_len + n > CONTROL_MAX_PENDING) {
        free(reply);
        log_warn("control: a client left %zu reply bytes unread; dropping it", c->out_len);
        return false;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        char *p;

        while (cap < c->out_len + n)
            cap *= 2;
        p = realloc(c->out, cap);
        if (!p) {
            free(reply);
            return false;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, reply, n);
    c->out_len += n;
    free(reply);
    return client_flush(c);
}

static bool handle_line(struct control_server *s, struct client *c, const char *line, size_t len)
{
    enum control_action action;
    bool ok = client_reply(c, control_handle(line, len, s->ops, s->ctx, &c->passed_fd, &action));

    /* A descriptor belongs to the line it came with: never to a later one. */
    if (c->passed_fd >= 0) {
        close(c->passed_fd);
        c->passed_fd = -1;
    }

    /* The reply is on its way (or the client is gone) before the VM ends. */
    if (action == CONTROL_ACTION_STOP)
        s->ops->stop(s->ctx);
    return ok;
}

static bool too_long(struct client *c)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "request line longer than %d bytes", CONTROL_MAX_LINE);
    c->in_len = 0;
    return client_reply(c, control_reply_error(msg));
}

static bool append_in(struct client *c, const char *data, size_t n)
{
    if (c->in_len + n > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 1024;
        char *p;

        while (cap < c->in_len + n)
            cap *= 2;
        p = realloc(c->in, cap);
        if (!p)
            return false;
        c->in = p;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    return true;
}

/* Splits received bytes into lines; false: drop the client. */
static bool client_input(struct control_server *s, struct client *c, const char *data, size_t n)
{
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        size_t used = nl ? seg + 1 : n;

        if (c->skipping) {
            c->skipping = !nl;
        } else if (c->in_len + seg > CONTROL_MAX_LINE) {
            if (!too_long(c))
                return false;
            c->skipping = !nl;
        } else if (!nl) {
            if (!append_in(c, data, seg))
                return false;
        } else if (c->in_len == 0) {
            if (!handle_line(s, c, data, seg)) /* the common case: no copy */
                return false;
        } else {
            size_t len;

            if (!append_in(c, data, seg))
                return false;
            len = c->in_len;
            c->in_len = 0;
            if (!handle_line(s, c, c->in, len))
                return false;
        }
        data += used;
        n -= used;
    }
    return true;
}

/* recv that also takes a descriptor the client sent (SCM_RIGHTS, at most
 * one per request: more, or a truncated control message, and every one
 * received is closed and the connection dropped). */
static ssize_t recv_with_fd(struct client *c, char *buf, size_t len)
{
    union {
        char space[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space,
                         .msg_controllen = sizeof(u.space)};
    ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    bool bad = (msg.msg_flags & MSG_CTRUNC) != 0;

    if (n < 0)
        return n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        size_t nfd;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
            if (!bad && c->passed_fd < 0 && nfd == 1) {
                c->passed_fd = fd;
                continue;
            }
            close(fd);
            bad = true;
        }
    }
    if (bad) {
        log_warn("control: a client sent more than one descriptor with a request; dropping it");
        errno = EPROTO;
        return -1;
    }
    return n;
}

static void client_readable(struct control_server *s, struct client *c)
{
    char buf[CONTROL_READ_CHUNK];

    for (;;) {
        ssize_t n = recv_with_fd(c, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            client_close(s, c);
            return;
        }
        if (n == 0) {
            /* A last line without its newline still counts. */
            if (c->in_len && !c->skipping) {
                size_t len = c->in_len;

                c->in_len = 0;
                if (!handle_line(s, c, c->in, len)) {
                    client_close(s, c);
                    return;
                }
            }
            c->eof = true;
            break;
        }
        if (!client_input(s, c, buf, (size_t)n)) {
            client_close(s, c);
            return;
        }
    }
    if (c->eof && !c->out_len) {
        client_close(s, c);
        return;
    }
    client_watch(s, c);
}

static void accept_clients(struct control_server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct client *c = NULL;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("control: accept: %s", strerror(errno));
            return;
        }
        for (unsigned i = 0; i < CONTROL_MAX_CLIENTS && !c; i++)
            if (s->clients[i].fd < 0)
                c = &s->clients[i];
        if (!c) {
            char msg[80];
            char *reply;

            snprintf(msg, sizeof(msg), "too many control connections (at most %d)",
                     CONTROL_MAX_CLIENTS);
            reply = control_reply_error(msg);
            if (reply && send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* best effort: the client is refused either way */
            }
            free(reply);
            close(fd);
            continue;
        }
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->passed_fd = -1;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(c - s->clients)};

        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            log_warn("control: epoll_ctl: %s", strerror(errno));
            close(fd);
            c->fd = -1;
        }
    }
}

static void *serve(void *arg)
{
    struct control_server *s = arg;
    struct epoll_event evs[16];

    jail_enter(JAIL_CONTROL);

    for (;;) {
        int n = epoll_wait(s->epoll_fd, evs, 16, -1);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("control: epoll_wait: %s; the control socket stops serving",
                      strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            struct client *c;

            if (tag == EV_WAKE)
                return NULL;
            if (tag == EV_LISTEN) {
                accept_clients(s);
                continue;
            }
            c = &s->clients[tag];
            if (c->fd < 0)
                continue; /* closed earlier in this batch */
            if (evs[i].events & EPOLLOUT) {
                if (!client_flush(c)) {
                    client_close(s, c);
                    continue;
                }
                if (c->eof && !c->out_len) {
                    client_close(s, c);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if ((evs[i].events & EPOLLERR) && !(evs[i].events & EPOLLIN)) {
                    client_close(s, c);
                    continue;
                }
                client_readable(s, c);
                continue;
            }
            client_watch(s, c);
        }
    }
}

int control_server_start(struct control_server *s, const struct control_ops *ops, void *ctx,
                         struct herd_err *err)
{
    struct epoll_event ev = {.events = EPOLLIN};
    sigset_t all, old;
    int rc;

    s->ops = ops;
    s->ctx = ctx;
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->epoll_fd < 0 || s->wake_fd < 0) {
        herd_err_set(err, -errno, "", "control: epoll/eventfd: %s", strerror(errno));
        return -errno;
    }
    ev.data.u64 = EV_LISTEN;
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
        herd_err_set(err, -errno, "", "control: epoll_ctl: %s", strerror(errno));
        return -errno;
    }
    ev.data.u64 = EV_WAKE;
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0) {
        herd_err_set(err, -errno, "", "control: epoll_ctl: %s", strerror(errno));
        return -errno;
    }
    /* Termination signals belong to the main thread's signalfd, the kick
     * signal to vCPU threads: none of them may land here. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->thread, NULL, serve, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        herd_err_set(err, -rc, "", "control: cannot start its thread: %s", strerror(rc));
        return -rc;
    }
    s->started = true;
    return 0;
}

void control_server_close(struct control_server *s)
{
    struct stat st;
    uint64_t one = 1;

    if (!s)
        return;
    if (s->started) {
        if (write(s->wake_fd, &one, sizeof(one)) < 0)
            log_warn("control: cannot wake its thread: %s", strerror(errno));
        pthread_join(s->thread, NULL);
        s->started = false;
    }
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];

        if (c->fd < 0)
            continue;
        client_flush(c); /* e.g. the {"ok":true} of a stop */
        client_close(s, c);
    }
    /* Only our own socket file: a newer herd-vmm may have replaced it. */
    if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        unlink(s->path);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->epoll_fd >= 0)
        close(s->epoll_fd);
    free(s->path);
    free(s);
}
