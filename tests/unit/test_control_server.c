/*
 * The control socket itself (control_server_*), with fake VM callbacks, in
 * a temporary directory: path checks (live, stale, not a socket, too long),
 * mode 0600, lines split across writes and several per write, oversize
 * lines, concurrent clients, the client limit, stop after its reply, and
 * the socket file removed on close (only if it is still ours).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "herd/control.h"

static int stops;

static void fake_status(void *ctx, struct control_status *out)
{
    memset(out, 0, sizeof(*out));
    out->state = CONTROL_RUNNING;
    out->pid = 42;
    out->cpus = 1;
    out->kernel = "k";
}

static int fake_pause(void *ctx, struct herd_err *err)
{
    return 0;
}

static void fake_stop(void *ctx)
{
    __atomic_add_fetch(&stops, 1, __ATOMIC_SEQ_CST);
}

static const struct control_ops ops = {
    .status = fake_status, .pause = fake_pause, .resume = fake_pause, .stop = fake_stop,
};

struct env {
    char dir[64];
    char path[96];
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));

    if (!e)
        return -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/herd-ctl-test.XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->path, sizeof(e->path), "%s/vm.sock", e->dir);
    stops = 0;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;

    unlink(e->path);
    rmdir(e->dir);
    free(e);
    return 0;
}

static int dial(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* One reply line (without '\n'), 5 s at most. */
static void read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;

        assert_int_equal(poll(&p, 1, 5000), 1);
        r = recv(fd, buf + n, 1, 0);
        assert_int_equal(r, 1);
        if (buf[n] == '\n') {
            buf[n] = 0;
            return;
        }
        n++;
        assert_true(n < size - 1);
    }
}

static void expect_line(int fd, const char *want)
{
    char buf[4096];

    read_line(fd, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static struct control_server *serve(const struct env *e)
{
    struct herd_err err = {0};
    struct control_server *s = NULL;

    assert_int_equal(control_server_open(e->path, &s, &err), 0);
    assert_int_equal(control_server_start(s, &ops, NULL, &err), 0);
    return s;
}

static void test_open_checks(void **state)
{
    struct env *e = *state;
    struct herd_err err = {0};
    char longp[200];
    struct control_server *s, *s2 = NULL;
    struct stat st;
    int fd;

    s = serve(e);
    assert_int_equal(stat(e->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A live socket: refused, and left alone. */
    assert_int_equal(control_server_open(e->path, &s2, &err), -EADDRINUSE);
    assert_null(s2);
    assert_non_null(strstr(err.msg, "is a live socket"));
    assert_int_equal(stat(e->path, &st), 0);
    control_server_close(s);
    assert_int_equal(stat(e->path, &st), -1);

    /* A stale socket (bound, nobody listening): replaced. */
    {
        struct sockaddr_un a = {.sun_family = AF_UNIX};

        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", e->path);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        close(fd);
    }
    s = serve(e);
    fd = dial(e->path);
    send_str(fd, "{\"cmd\":\"ping\"}\n");
    expect_line(fd, "{\"ok\":true}");
    close(fd);
    control_server_close(s);

    /* Not a socket: refused and kept. */
    fd = open(e->path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    herd_err_clear(&err);
    assert_int_equal(control_server_open(e->path, &s2, &err), -EEXIST);
    assert_non_null(strstr(err.msg, "exists and is not a socket"));
    assert_int_equal(stat(e->path, &st), 0);
    unlink(e->path);

    /* Too long for sun_path. */
    memset(longp, 'x', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = 0;
    assert_int_equal(control_server_open(longp, &s2, &err), -ENAMETOOLONG);
    assert_non_null(strstr(err.msg, "holds at most 107"));
    /* A directory that does not exist. */
    assert_int_equal(control_server_open("/nonexistent-herd/x.sock", &s2, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "cannot create the socket"));

    /* Never started: close still removes the file. */
    assert_int_equal(control_server_open(e->path, &s2, &err), 0);
    control_server_close(s2);
    assert_int_equal(stat(e->path, &st), -1);
    control_server_close(NULL);
}

static void test_lines(void **state)
{
    struct env *e = *state;
    struct control_server *s = serve(e);
    int fd = dial(e->path), fd2;
    char *big;

    /* One request in pieces, then two in one write. */
    send_str(fd, "{\"cmd\"");
    usleep(20000);
    send_str(fd, ":\"ping\",\"id\":1}");
    usleep(20000);
    send_str(fd, "\n{\"cmd\":\"ping\",\"id\":2}\n{\"cmd\":\"ping\",\"id\":3}\r\n");
    expect_line(fd, "{\"ok\":true,\"id\":1}");
    expect_line(fd, "{\"ok\":true,\"id\":2}");
    expect_line(fd, "{\"ok\":true,\"id\":3}");

    /* A second client while the first stays open. */
    fd2 = dial(e->path);
    send_str(fd2, "{\"cmd\":\"status\"}\n");
    {
        char buf[4096];

        read_line(fd2, buf, sizeof(buf));
        assert_non_null(strstr(buf, "\"state\":\"running\""));
        assert_non_null(strstr(buf, "\"pid\":42"));
    }
    send_str(fd, "junk\n");
    {
        char buf[4096];

        read_line(fd, buf, sizeof(buf));
        assert_non_null(strstr(buf, "{\"ok\":false,\"error\":\"malformed JSON at column "));
    }

    /* Oversize, in many writes; the rest of the line is skipped. */
    big = malloc(3 * CONTROL_MAX_LINE);
    assert_non_null(big);
    memset(big, 'a', 3 * CONTROL_MAX_LINE);
    for (int i = 0; i < 3; i++)
        send_all(fd, big, CONTROL_MAX_LINE);
    send_str(fd, "\n{\"cmd\":\"ping\",\"id\":4}\n");
    expect_line(fd, "{\"ok\":false,\"error\":\"request line longer than 65536 bytes\"}");
    expect_line(fd, "{\"ok\":true,\"id\":4}");
    /* Exactly at the limit (with a newline) is still parsed. */
    memset(big, ' ', CONTROL_MAX_LINE);
    memcpy(big, "{\"cmd\":\"ping\",\"id\":5}", 21);
    big[CONTROL_MAX_LINE] = '\n';
    send_all(fd, big, CONTROL_MAX_LINE + 1);
    expect_line(fd, "{\"ok\":true,\"id\":5}");
    free(big);

    /* A last request without newline, then EOF: answered, then closed. */
    send_str(fd2, "{\"cmd\":\"ping\",\"id\":6}");
    shutdown(fd2, SHUT_WR);
    expect_line(fd2, "{\"ok\":true,\"id\":6}");
    {
        char c;
        struct pollfd p = {.fd = fd2, .events = POLLIN};

        assert_int_equal(poll(&p, 1, 5000), 1);
        assert_int_equal(recv(fd2, &c, 1, 0), 0);
    }
    close(fd2);
    close(fd);
    control_server_close(s);
}

static void test_client_limit(void **state)
{
    struct env *e = *state;
    struct control_server *s = serve(e);
    int fds[CONTROL_MAX_CLIENTS], extra;

    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        fds[i] = dial(e->path);
        send_str(fds[i], "{\"cmd\":\"ping\"}\n");
        expect_line(fds[i], "{\"ok\":true}");
    }
    extra = dial(e->path);
    expect_line(extra, "{\"ok\":false,\"error\":\"too many control connections (at most 64)\"}");
    close(extra);
    close(fds[0]);
    usleep(50000); /* the server sees the hangup and frees the slot */
    extra = dial(e->path);
    send_str(extra, "{\"cmd\":\"ping\"}\n");
    expect_line(extra, "{\"ok\":true}");
    close(extra);
    for (int i = 1; i < CONTROL_MAX_CLIENTS; i++)
        close(fds[i]);
    control_server_close(s);
}

static void test_stop_after_reply(void **state)
{
    struct env *e = *state;
    struct control_server *s = serve(e);
    int fd = dial(e->path);

    send_str(fd, "{\"cmd\":\"stop\"}\n");
    expect_line(fd, "{\"ok\":true}");
    for (int i = 0; i < 500 && !__atomic_load_n(&stops, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    assert_int_equal(__atomic_load_n(&stops, __ATOMIC_SEQ_CST), 1);
    /* A client that vanished mid-reply costs nothing (no SIGPIPE). */
    send_str(fd, "{\"cmd\":\"status\"}\n{\"cmd\":\"status\"}\n");
    close(fd);
    usleep(20000);
    fd = dial(e->path);
    send_str(fd, "{\"cmd\":\"ping\"}\n");
    expect_line(fd, "{\"ok\":true}");
    /* Closing with a client connected: the client sees EOF, the file goes. */
    control_server_close(s);
    {
        char c;
        struct stat st;

        assert_int_equal(recv(fd, &c, 1, 0), 0);
        assert_int_equal(stat(e->path, &st), -1);
    }
    close(fd);
}

static void test_close_keeps_a_replaced_file(void **state)
{
    struct env *e = *state;
    struct control_server *s = serve(e);
    struct stat st;
    int fd;

    /* Someone else (a newer herd-vmm) now owns the path. */
    unlink(e->path);
    fd = open(e->path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    control_server_close(s);
    assert_int_equal(stat(e->path, &st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_after_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_keeps_a_replaced_file, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
