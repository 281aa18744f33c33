/*
 * control-client SOCKET [-t SECONDS] [-F FILE]: `socat - UNIX-CONNECT:SOCKET`
 * for the tests (no socat needed): copies stdin to a unix stream socket and
 * the socket to stdout. At stdin's end it shuts down its sending side and
 * keeps printing until the server closes or SECONDS (default 2) pass
 * without a byte from it. -F sends FILE (opened read-write, created 0600 if
 * missing, never truncated) as SCM_RIGHTS with the first bytes: the
 * snapshot command's target. Exit 0, or 1 when the socket or FILE cannot be
 * reached (message on stderr).
 */
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The first write carries `pass` (if >= 0) as SCM_RIGHTS. */
static int send_with_fd(int fd, const char *p, size_t n, int pass)
{
    union {
        char space[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space,
                         .msg_controllen = sizeof(u.space)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pass, sizeof(pass));
    return (int)sendmsg(fd, &msg, MSG_NOSIGNAL);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int timeout_ms = 2000, fd, in_open = 1, pass = -1;
    char buf[65536];

    for (int i = 2; i < argc; i += 2) {
        if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
            timeout_ms = (int)(atof(argv[i + 1]) * 1000);
        } else if (i + 1 < argc && strcmp(argv[i], "-F") == 0) {
            pass = open(argv[i + 1], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (pass < 0) {
                fprintf(stderr, "control-client: %s: %s\n", argv[i + 1], strerror(errno));
                return 1;
            }
        } else {
            fprintf(stderr, "usage: control-client SOCKET [-t SECONDS] [-F FILE]\n");
            return 2;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "usage: control-client SOCKET [-t SECONDS] [-F FILE]\n");
        return 2;
    }
    if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "control-client: path too long\n");
        return 1;
    }
    strcpy(addr.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "control-client: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = STDIN_FILENO, .events = POLLIN}};
        int n = poll(p, in_open ? 2 : 1, in_open ? -1 : timeout_ms);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* timeout after stdin's end */
        if (p[0].revents) {
            ssize_t r = read(fd, buf, sizeof(buf));

            if (r <= 0)
                break;
            if (write_all(STDOUT_FILENO, buf, (size_t)r))
                break;
        }
        if (in_open && p[1].revents) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));

            if (r <= 0) {
                in_open = 0;
                shutdown(fd, SHUT_WR);
            } else if (pass >= 0) {
                ssize_t w = send_with_fd(fd, buf, (size_t)r, pass);

                close(pass);
                pass = -1;
                if (w < 0 || write_all(fd, buf + w, (size_t)(r - w)))
                    in_open = 0;
            } else if (write_all(fd, buf, (size_t)r)) {
                in_open = 0;
            }
        }
    }
    close(fd);
    return 0;
}
