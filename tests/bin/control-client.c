/*
 * control-client SOCKET [-t SECONDS]: `socat - UNIX-CONNECT:SOCKET` for the
 * tests (no socat needed): copies stdin to a unix stream socket and the
 * socket to stdout. At stdin's end it shuts down its sending side and keeps
 * printing until the server closes or SECONDS (default 2) pass without a
 * byte from it. Exit 0, or 1 when the socket cannot be reached (message on
 * stderr).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
    int timeout_ms = 2000, fd, in_open = 1;
    char buf[65536];

    if (argc == 4 && strcmp(argv[2], "-t") == 0)
        timeout_ms = (int)(atof(argv[3]) * 1000);
    else if (argc != 2) {
        fprintf(stderr, "usage: control-client SOCKET [-t SECONDS]\n");
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
            } else if (write_all(fd, buf, (size_t)r)) {
                in_open = 0;
            }
        }
    }
    close(fd);
    return 0;
}
