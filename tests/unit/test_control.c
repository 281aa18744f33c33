/*
 * The control protocol (control_handle, control_status_json) with fake VM
 * callbacks: every command, the "id" echo, the status document, and every
 * kind of bad request getting a precise ok:false as exactly one line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/control.h"

struct fake {
    int status_calls, pause_calls, resume_calls, stop_calls, powerdown_calls;
    int pause_rc, powerdown_rc;
    const char *powerdown_err;
    const char *pause_err;
    struct control_status st;
};

static void fake_status(void *ctx, struct control_status *out)
{
    struct fake *f = ctx;

    f->status_calls++;
    *out = f->st;
}

static int fake_pause(void *ctx, struct herd_err *err)
{
    struct fake *f = ctx;

    f->pause_calls++;
    if (f->pause_err)
        herd_err_set(err, f->pause_rc, "", "%s", f->pause_err);
    return f->pause_rc;
}

static int fake_resume(void *ctx, struct herd_err *err)
{
    struct fake *f = ctx;

    f->resume_calls++;
    return 0;
}

static void fake_stop(void *ctx)
{
    ((struct fake *)ctx)->stop_calls++;
}

static int fake_powerdown(void *ctx, struct herd_err *err)
{
    struct fake *f = ctx;

    f->powerdown_calls++;
    if (f->powerdown_err)
        herd_err_set(err, f->powerdown_rc, "", "%s", f->powerdown_err);
    return f->powerdown_rc;
}

static int snapshot_calls, snapshot_fd = -1;

static int fake_snapshot(void *ctx, int fd, struct herd_err *err)
{
    snapshot_calls++;
    snapshot_fd = fd;
    if (fd == 999)
        return herd_err_set(err, -EBUSY, "", "snapshot: the guest is running; pause it first");
    return 0;
}

static const struct control_ops ops = {
    .status = fake_status, .pause = fake_pause, .resume = fake_resume, .stop = fake_stop,
    .powerdown = fake_powerdown, .snapshot = fake_snapshot,
};

static struct fake fake;

static int setup(void **state)
{
    memset(&fake, 0, sizeof(fake));
    fake.st.state = CONTROL_RUNNING;
    fake.st.pid = 1234;
    fake.st.uptime_ms = 5678;
    fake.st.cpus = 2;
    fake.st.mem = 64ULL << 20;
    fake.st.kernel = "/k/herd-probe.elf";
    fake.st.cmdline = "probe.tests=boot probe.idle=1";
    return 0;
}

/* Runs one request; checks the reply is one '\n'-terminated JSON object. */
static json_t *request(const char *line, size_t len, enum control_action *action)
{
    enum control_action a;
    char *reply = control_handle(line, len, &ops, &fake, NULL, action ? action : &a);
    json_error_t jerr;
    json_t *j;
    size_t n;

    assert_non_null(reply);
    n = strlen(reply);
    assert_true(n >= 2);
    assert_int_equal(reply[n - 1], '\n');
    assert_null(memchr(reply, '\n', n - 1));
    j = json_loadb(reply, n - 1, 0, &jerr);
    if (!j)
        fail_msg("reply is not JSON (%s): %s", jerr.text, reply);
    assert_true(json_is_object(j));
    free(reply);
    return j;
}

static json_t *req(const char *line)
{
    return request(line, strlen(line), NULL);
}

static void assert_ok(json_t *j)
{
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_null(json_object_get(j, "error"));
}

/* ok:false and an error containing `part`. */
static void assert_error(json_t *j, const char *part)
{
    const char *e = json_string_value(json_object_get(j, "error"));

    assert_true(json_is_false(json_object_get(j, "ok")));
    assert_non_null(e);
    if (!strstr(e, part))
        fail_msg("error '%s' lacks '%s'", e, part);
    json_decref(j);
}

/* snapshot takes the descriptor that came with its line (and closes it);
 * without one it is refused and the callback never runs. */
static void test_snapshot(void **state)
{
    enum control_action a;
    const char *line = "{\"cmd\":\"snapshot\"}";
    int fd = dup(STDIN_FILENO), keep = -1;
    char *reply;

    snapshot_calls = 0;
    assert_error(req(line), "send the target file");
    assert_int_equal(snapshot_calls, 0);
    reply = control_handle(line, strlen(line), &ops, &fake, &keep, &a);
    assert_non_null(strstr(reply, "send the target file"));
    free(reply);
    assert_true(fd >= 0);
    keep = fd;
    reply = control_handle(line, strlen(line), &ops, &fake, &keep, &a);
    assert_string_equal(reply, "{\"ok\":true}\n");
    free(reply);
    assert_int_equal(snapshot_calls, 1);
    assert_int_equal(snapshot_fd, fd);
    assert_int_equal(keep, -1);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed after use */
    /* another command leaves the descriptor to its caller */
    keep = dup(STDIN_FILENO);
    reply = control_handle("{\"cmd\":\"ping\"}", 15, &ops, &fake, &keep, &a);
    free(reply);
    assert_true(keep >= 0);
    close(keep);
    /* the callback's error comes back as is */
    keep = 999;
    reply = control_handle(line, strlen(line), &ops, &fake, &keep, &a);
    assert_non_null(strstr(reply, "pause it first"));
    free(reply);
    (void)state;
}

static void test_ping(void **state)
{
    json_t *j = req("{\"cmd\":\"ping\"}");

    assert_ok(j);
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);
    assert_int_equal(fake.status_calls + fake.pause_calls + fake.stop_calls, 0);
}

static void test_id_echoed(void **state)
{
    json_t *j = req("{\"id\":7,\"cmd\":\"ping\"}");

    assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
    json_decref(j);
    j = req("{\"cmd\":\"ping\",\"id\":{\"a\":[1,\"x\"]}}");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(j, "id"), "a"), 1)), "x");
    json_decref(j);
    /* Also on errors that come after the request was understood. */
    fake.pause_rc = -EIO;
    j = req("{\"cmd\":\"pause\",\"id\":\"p1\"}");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "p1");
    assert_error(j, "pause");
}

static void test_status(void **state)
{
    json_t *j = req("{\"cmd\":\"status\"}");

    assert_ok(j);
    assert_int_equal(fake.status_calls, 1);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(j, "pid")), 1234);
    assert_int_equal(json_integer_value(json_object_get(j, "uptime_ms")), 5678);
    assert_int_equal(json_integer_value(json_object_get(j, "cpus")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "mem")), 64 << 20);
    assert_string_equal(json_string_value(json_object_get(j, "kernel")), "/k/herd-probe.elf");
    assert_string_equal(json_string_value(json_object_get(j, "cmdline")),
                        "probe.tests=boot probe.idle=1");
    assert_true(json_is_null(json_object_get(j, "boot_marker_us")));
    assert_int_equal(json_array_size(json_object_get(j, "disks")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "nics")), 0);
    /* "ok" comes first, for readers that look at the start of the line. */
    assert_string_equal(json_object_iter_key(json_object_iter(j)), "ok");
    json_decref(j);
}

static void test_status_states_and_devices(void **state)
{
    static const char *names[] = {"running", "paused", "stopping"};
    json_t *j, *d, *n, *stats;

    fake.st.boot_marker_us = 2853;
    fake.st.cmdline = NULL;
    fake.st.nr_disks = 2;
    fake.st.disks[0] = (struct control_disk_status){"/img/a.qcow2", "qcow2", false};
    fake.st.disks[1] = (struct control_disk_status){"/img/p.raw", "raw", true};
    fake.st.nr_nics = 1;
    fake.st.nics[0].tap = "htap0";
    memcpy(fake.st.nics[0].mac, "\x0e\x68\x00\x01\xab\xff", 6);
    fake.st.nics[0].path = NET_PATH_VHOST;
    fake.st.nics[0].stats.tx_frames = 3;
    fake.st.nics[0].stats.rx_bytes = 1500;
    for (int s = CONTROL_RUNNING; s <= CONTROL_STOPPING; s++) {
        fake.st.state = (enum control_state)s;
        j = req("{\"cmd\":\"status\"}");
        assert_string_equal(json_string_value(json_object_get(j, "state")), names[s]);
        json_decref(j);
    }
    j = req("{\"cmd\":\"status\"}");
    assert_int_equal(json_integer_value(json_object_get(j, "boot_marker_us")), 2853);
    assert_string_equal(json_string_value(json_object_get(j, "cmdline")), "");
    d = json_object_get(j, "disks");
    assert_int_equal(json_array_size(d), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "path")),
                        "/img/a.qcow2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "format")),
                        "qcow2");
    assert_true(json_is_false(json_object_get(json_array_get(d, 0), "readonly")));
    assert_true(json_is_true(json_object_get(json_array_get(d, 1), "readonly")));
    n = json_array_get(json_object_get(j, "nics"), 0);
    assert_string_equal(json_string_value(json_object_get(n, "tap")), "htap0");
    assert_string_equal(json_string_value(json_object_get(n, "mac")), "0e:68:00:01:ab:ff");
    assert_string_equal(json_string_value(json_object_get(n, "path")), "vhost");
    stats = json_object_get(n, "stats");
    assert_true(json_is_object(stats));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "tx"), "frames")),
                     3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "rx"), "bytes")),
                     1500);
    json_decref(j);
    fake.st.nics[0].path = NET_PATH_USERSPACE;
    j = req("{\"cmd\":\"status\"}");
    n = json_array_get(json_object_get(j, "nics"), 0);
    assert_string_equal(json_string_value(json_object_get(n, "path")), "userspace");
    json_decref(j);
}

static void test_status_non_utf8_text(void **state)
{
    json_t *j;

    fake.st.kernel = "/k/\xff\xfe.elf";
    fake.st.cmdline = "a=\xc3";
    j = req("{\"cmd\":\"status\"}");
    assert_ok(j);
    assert_string_equal(json_string_value(json_object_get(j, "kernel")), "/k/??.elf");
    assert_string_equal(json_string_value(json_object_get(j, "cmdline")), "a=?");
    json_decref(j);
}

static void test_stop_is_left_to_the_caller(void **state)
{
    enum control_action a = CONTROL_ACTION_NONE;
    const char *line = "{\"cmd\":\"stop\"}";
    json_t *j = request(line, strlen(line), &a);

    assert_ok(j);
    json_decref(j);
    assert_int_equal(a, CONTROL_ACTION_STOP);
    assert_int_equal(fake.stop_calls, 0);
    line = "{\"cmd\":\"ping\"}";
    j = request(line, strlen(line), &a);
    json_decref(j);
    assert_int_equal(a, CONTROL_ACTION_NONE);
    line = "{\"cmd\":\"stop\",\"x\":1}";
    j = request(line, strlen(line), &a);
    assert_int_equal(a, CONTROL_ACTION_NONE); /* a refused stop stops nothing */
    assert_error(j, "unknown key 'x'");
}

/* powerdown presses the button and answers at once; the VM keeps running
 * (no stop action): the guest decides. */
static void test_powerdown(void **state)
{
    enum control_action a = CONTROL_ACTION_STOP;
    const char *line = "{\"cmd\":\"powerdown\",\"id\":\"pd\"}";
    json_t *j = request(line, strlen(line), &a);

    assert_ok(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "pd");
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);
    assert_int_equal(a, CONTROL_ACTION_NONE);
    assert_int_equal(fake.powerdown_calls, 1);
    assert_int_equal(fake.stop_calls, 0);
    /* Pressing again is another press. */
    j = req("{\"cmd\":\"powerdown\"}");
    assert_ok(j);
    json_decref(j);
    assert_int_equal(fake.powerdown_calls, 2);
    /* Failures carry the callback's message, or the errno's. */
    fake.powerdown_rc = -ESHUTDOWN;
    fake.powerdown_err = "powerdown: the guest is stopping";
    assert_error(req("{\"cmd\":\"powerdown\"}"), "powerdown: the guest is stopping");
    fake.powerdown_err = NULL;
    fake.powerdown_rc = -EIO;
    assert_error(req("{\"cmd\":\"powerdown\"}"), "powerdown: Input/output error");
    /* Shape: no "data", nothing else; the name is exact. */
    assert_error(req("{\"cmd\":\"powerdown\",\"data\":\"x\"}"),
                 "\"data\" is only for the input command");
    assert_error(req("{\"cmd\":\"powerdown\",\"force\":true}"), "unknown key 'force'");
    assert_error(req("{\"cmd\":\"Powerdown\"}"), "unknown command 'Powerdown'");
    assert_error(req("{\"cmd\":\"powerdown\\u0000\"}"), "");
    assert_int_equal(fake.powerdown_calls, 4);
    /* The command list in errors names it. */
    assert_error(req("{\"cmd\":\"reboot\"}"), "stop, input, powerdown, snapshot)");
}

static void test_powerdown_without_button(void **state)
{
    static const struct control_ops no_button = {
        .status = fake_status, .pause = fake_pause, .resume = fake_resume, .stop = fake_stop,
    };
    enum control_action a;
    const char *line = "{\"cmd\":\"powerdown\"}";
    char *reply = control_handle(line, strlen(line), &no_button, &fake, NULL, &a);

    assert_non_null(reply);
    assert_non_null(strstr(reply, "\"ok\":false"));
    assert_non_null(strstr(reply, "powerdown: this VM has no power button"));
    assert_int_equal(a, CONTROL_ACTION_NONE);
    free(reply);
}

static void test_pause_resume(void **state)
{
    json_t *j = req("{\"cmd\":\"pause\"}");

    assert_ok(j);
    json_decref(j);
    j = req("{\"cmd\":\"resume\"}");
    assert_ok(j);
    json_decref(j);
    assert_int_equal(fake.pause_calls, 1);
    assert_int_equal(fake.resume_calls, 1);
    fake.pause_rc = -ESHUTDOWN;
    fake.pause_err = "pause: the guest is stopping";
    assert_error(req("{\"cmd\":\"pause\"}"), "pause: the guest is stopping");
    fake.pause_err = NULL;
    fake.pause_rc = -ETIMEDOUT;
    assert_error(req("{\"cmd\":\"pause\"}"), "pause: Connection timed out");
}

static void test_bad_requests(void **state)
{
    assert_error(req("not json"), "malformed JSON at column");
    assert_error(req("{\"cmd\":\"ping\""), "malformed JSON");
    assert_error(req("{\"cmd\":\"ping\"} {}"), "malformed JSON");
    assert_error(req("[\"ping\"]"), "must be a JSON object");
    assert_error(req("\"ping\""), "malformed JSON"); /* jansson wants an array/object */
    assert_error(req("{}"), "missing \"cmd\"");
    assert_error(req("{\"cmd\":null}"), "\"cmd\" must be a string");
    assert_error(req("{\"cmd\":[\"ping\"]}"), "\"cmd\" must be a string");
    assert_error(req("{\"cmd\":\"reboot\"}"), "unknown command 'reboot'");
    assert_error(req("{\"cmd\":\"PING\"}"), "unknown command 'PING'");
    assert_error(req("{\"cmd\":\"\"}"), "unknown command ''");
    assert_error(req("{\"cmd\":\"ping\",\"cmd\":\"stop\"}"), "duplicate");
    assert_error(req("{\"cmd\":\"ping\",\"force\":true}"), "unknown key 'force'");
    assert_error(req(""), "empty request line");
    assert_error(req(" \r"), "empty request line");
    assert_int_equal(fake.status_calls + fake.pause_calls + fake.resume_calls, 0);
}

static void test_odd_bytes(void **state)
{
    static const char nul_in_cmd[] = "{\"cmd\":\"ping\\u0000x\"}";
    static const char raw_nul[] = "{\"cmd\":\"ping\"}\0junk";
    static const char bad_utf8[] = "{\"cmd\":\"\xff\xfe\"}";
    json_t *j;

    /* "ping\0x" is not "ping" (jansson refuses \u0000 by default anyway). */
    j = req(nul_in_cmd);
    assert_true(json_is_false(json_object_get(j, "ok")));
    json_decref(j);
    j = request(raw_nul, sizeof(raw_nul) - 1, NULL);
    assert_true(json_is_false(json_object_get(j, "ok")));
    json_decref(j);
    /* The error quotes nothing that would make the reply invalid. */
    j = req(bad_utf8);
    assert_true(json_is_false(json_object_get(j, "ok")));
    json_decref(j);
    j = req("\x01\x02\x03\xff\n\n");
    assert_true(json_is_false(json_object_get(j, "ok")));
    json_decref(j);
}

static void test_trailing_cr_and_blanks(void **state)
{
    json_t *j = req("{\"cmd\":\"ping\"}\r");

    assert_ok(j);
    json_decref(j);
    j = req("  {\"cmd\":\"ping\"} \t");
    assert_ok(j);
    json_decref(j);
}

static void test_oversize(void **state)
{
    size_t n = CONTROL_MAX_LINE + 1;
    char *big = malloc(n);
    json_t *j;

    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"cmd\":\"ping\"}", 14);
    j = request(big, n, NULL);
    assert_error(j, "request line longer than 65536 bytes");
    /* Exactly the limit is still a request. */
    j = request(big, CONTROL_MAX_LINE, NULL);
    assert_ok(j);
    json_decref(j);
    free(big);
    j = NULL;
    {
        char *r = control_reply_error("x\xffy");
        json_t *e;

        assert_non_null(r);
        e = json_loads(r, 0, NULL);
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(e, "error")), "x?y");
        json_decref(e);
        free(r);
    }
}

static void test_state_names(void **state)
{
    assert_string_equal(control_state_name(CONTROL_RUNNING), "running");
    assert_string_equal(control_state_name(CONTROL_PAUSED), "paused");
    assert_string_equal(control_state_name(CONTROL_STOPPING), "stopping");
    assert_string_equal(control_state_name((enum control_state)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ping, setup),
        cmocka_unit_test_setup(test_snapshot, setup),
        cmocka_unit_test_setup(test_id_echoed, setup),
        cmocka_unit_test_setup(test_status, setup),
        cmocka_unit_test_setup(test_status_states_and_devices, setup),
        cmocka_unit_test_setup(test_status_non_utf8_text, setup),
        cmocka_unit_test_setup(test_stop_is_left_to_the_caller, setup),
        cmocka_unit_test_setup(test_powerdown, setup),
        cmocka_unit_test_setup(test_powerdown_without_button, setup),
        cmocka_unit_test_setup(test_pause_resume, setup),
        cmocka_unit_test_setup(test_bad_requests, setup),
        cmocka_unit_test_setup(test_odd_bytes, setup),
        cmocka_unit_test_setup(test_trailing_cr_and_blanks, setup),
        cmocka_unit_test_setup(test_oversize, setup),
        cmocka_unit_test_setup(test_state_names, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
