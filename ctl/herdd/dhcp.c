/* dhcp.c (layer 2): herdd's DHCPv4 servers, one per range scope (a network
 * or a segment) with `dhcp: true` (docs/ranges.md "DHCP").
 *
 * Each server is one dnsmasq (Debian's dnsmasq-base) in a network namespace
 * of its own, joined to the scope's bridge by a veth pair whose namespace
 * end holds the server address. The host has no address on the bridge, so
 * a guest reaches no host service through it and the host never routes
 * between segments; the server sees only its own bridge. dnsmasq answers
 * only the static leases herdd wrote (each guest NIC's MAC, its planned
 * address, the guest's name as host name), serves no DNS (port=0), keeps
 * no lease file and runs as nobody after setting up.
 *
 * herdd forks the server itself: the child enters a new network namespace
 * (unshare), waits until herdd has put the veth's peer there, then execs
 * dnsmasq in the foreground. Between fork and exec the child makes only
 * async-signal-safe system calls (herdd is multithreaded). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "herdd.h"

int hd_dhcp_available(void)
{
    return access(HD_DNSMASQ, X_OK) == 0 ? 0 : -errno;
}

/* STATE/ranges/RANGE/dhcp-BRIDGE.SUFFIX, making the directories. */
static int scope_path(const struct hd_config *cfg, const char *range, const char *bridge,
                      const char *suffix, char *out, size_t size, struct hd_err *err)
{
    char dir[4096];
    if (hd_range_state_dir(cfg, range, dir, sizeof(dir), "", err) < 0)
        return -1;
    int n = snprintf(out, size, "%s/dhcp-%s.%s", dir, bridge, suffix);
    if (n < 0 || (size_t)n >= size)
        return hd_fail(err, 500, "", "%s/dhcp-%s.%s: name too long", dir, bridge, suffix);
    return 0;
}

/* dnsmasq's configuration: read once, as root, before it drops to nobody. */
static int write_conf(const char *path, const struct hd_dhcp_scope *sc)
{
    char net[IPAM_ADDR_STR], mask[IPAM_ADDR_STR], gw[IPAM_ADDR_STR];
    struct ipam_addr m = {.family = AF_INET};
    uint32_t bits = sc->net.len ? 0xffffffffu << (32 - sc->net.len) : 0;
    for (int i = 0; i < 4; i++)
        m.b[i] = (uint8_t)(bits >> (24 - 8 * i));
    ipam_addr_format(&sc->net.base, net);
    ipam_addr_format(&m, mask);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    fprintf(f, "# written by herdd: range %s, bridge %s (docs/ranges.md \"DHCP\")\n"
               "port=0\ninterface=" HD_DHCP_IFNAME "\nbind-interfaces\n"
               "no-resolv\nno-hosts\nleasefile-ro\npid-file=\n"
               "user=nobody\ngroup=nogroup\nlog-facility=-\nlog-dhcp\n"
               "dhcp-authoritative\ndhcp-ignore=tag:!known\n"
               "dhcp-range=%s,static,%s,infinite\ndhcp-option=option:dns-server\n",
            sc->range, sc->bridge, net, mask);
    if (sc->has_gateway) {
        ipam_addr_format(&sc->gateway, gw);
        fprintf(f, "dhcp-option=option:router,%s\n", gw);
    } else {
        fputs("dhcp-option=option:router\n", f);
    }
    fputs(sc->hosts, f);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* The child: a new network namespace, a byte on ready, then exec when go
 * says so. Async-signal-safe calls only. */
static void child(int ready, int go, int logfd, char *const argv[])
{
    static char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    char c = 'n';
    if (unshare(CLONE_NEWNET) < 0)
        _exit(126);
    if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
        _exit(125);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
        _exit(124);
    close_range(3, ~0U, 0);
    execve(HD_DNSMASQ, argv, envp);
    _exit(127);
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Forks the server into its namespace; *pid, and the open namespace in
 * *nsfd. The child waits on *go (write a byte to let it exec). */
static int spawn(const char *conf, int logfd, pid_t *pid, int *nsfd, int *go)
{
    char conf_arg[4200];
    snprintf(conf_arg, sizeof(conf_arg), "--conf-file=%s", conf);
    char *const argv[] = {"dnsmasq", "--keep-in-foreground", conf_arg, NULL};
    int rp[2], gp[2];
    if (pipe2(rp, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(gp, O_CLOEXEC) < 0) {
        int e = -errno;
        close(rp[0]);
        close(rp[1]);
        return e;
    }
    *pid = fork();
    if (*pid == 0)
        child(rp[1], gp[0], logfd, argv);
    int rc = *pid < 0 ? -errno : 0;
    close(rp[1]);
    close(gp[0]);
    char c;
    if (rc == 0 && read(rp[0], &c, 1) != 1)
        rc = -ECHILD; /* it could not unshare */
    close(rp[0]);
    if (rc == 0) {
        char ns[64];
        snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)*pid);
        *nsfd = open(ns, O_RDONLY | O_CLOEXEC);
        if (*nsfd < 0)
            rc = -errno;
    }
    if (rc < 0) {
        if (*pid > 0)
            reap(*pid);
        close(gp[1]);
        return rc;
    }
    *go = gp[1];
    return 0;
}

/* What a server leaves: its files, its veth pair (NULL: none made). */
static void remove_files(const char *conf, const char *log, const char *veth)
{
    struct netdev_nl *nl = NULL;
    if (veth && netdev_nl_open(&nl) == 0) {
        netdev_veth_remove(nl, veth);
        netdev_nl_close(nl);
    }
    if (conf)
        unlink(conf);
    if (log)
        unlink(log);
}

/* The veth's host end: "hd-" and a hash of range and bridge. */
static void veth_name(const struct hd_dhcp_scope *sc, char out[IFNAMSIZ])
{
    char ident[NETDEV_IDENT_MAX + 1];
    snprintf(ident, sizeof(ident), "%s.%s", sc->range, sc->bridge);
    if (netdev_name_derive(out, NETDEV_VETH_PREFIX, ident) < 0)
        snprintf(out, IFNAMSIZ, NETDEV_VETH_PREFIX "dhcp");
}

/* The veth pair, the peer in the server's namespace with its address. */
static int plumb(const struct hd_dhcp_scope *sc, const char *veth, int nsfd,
                 struct hd_err *err)
{
    struct netdev_nl *nl = NULL;
    int rc = netdev_nl_open(&nl);
    if (rc < 0)
        return hd_fail(err, 500, "", "netlink: %s", strerror(-rc));
    netdev_veth_remove(nl, veth); /* a leftover of a crash */
    struct herd_err nerr;
    herd_err_clear(&nerr);
    struct in_addr a;
    memcpy(&a, sc->server.b, 4);
    rc = netdev_veth_into_ns(nl, veth, sc->bridge, nsfd, HD_DHCP_IFNAME, a, sc->net.len, &nerr);
    netdev_nl_close(nl);
    if (rc < 0)
        return hd_fail(err, 500, "", "DHCP server on %s: %s", sc->bridge, nerr.msg);
    return 0;
}

int hd_dhcp_start(const struct hd_config *cfg, const struct hd_dhcp_scope *sc, json_t **rec,
                  struct hd_err *err)
{
    char conf[4096], log[4096], veth[IFNAMSIZ];
    if (scope_path(cfg, sc->range, sc->bridge, "conf", conf, sizeof(conf), err) < 0 ||
        scope_path(cfg, sc->range, sc->bridge, "log", log, sizeof(log), err) < 0)
        return -1;
    int rc = write_conf(conf, sc);
    if (rc < 0)
        return hd_fail(err, 500, "", "DHCP server for %s: %s", sc->bridge, strerror(-rc));
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd < 0) {
        unlink(conf);
        return hd_fail(err, 500, "", "%s: %s", log, strerror(errno));
    }
    pid_t pid = -1;
    int nsfd = -1, go = -1;
    rc = spawn(conf, logfd, &pid, &nsfd, &go);
    close(logfd);
    if (rc < 0) {
        unlink(conf);
        unlink(log);
        return hd_fail(err, 500, "", "DHCP server for %s: cannot start: %s", sc->bridge,
                       strerror(-rc));
    }
    veth_name(sc, veth);
    rc = plumb(sc, veth, nsfd, err);
    close(nsfd);
    if (rc < 0) {
        close(go);
        reap(pid);
        remove_files(conf, log, NULL);
        return -1;
    }
    char c = 'g';
    if (write(go, &c, 1) != 1) {
        int e = errno;
        close(go);
        reap(pid);
        remove_files(conf, log, veth);
        return hd_fail(err, 500, "", "DHCP server for %s: cannot start: %s", sc->bridge,
                       strerror(e));
    }
    close(go);
    *rec = json_pack("{ss ss sI ss ss}", "bridge", sc->bridge, "veth", veth, "pid",
                     (json_int_t)pid, "conf", conf, "log", log);
    return 0;
}

/* /proc/PID/WHAT into buf (NUL-terminated): its length, or -1. */
static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* pid is the dnsmasq started with this conf (not a reused pid). */
static bool is_ours(pid_t pid, const char *conf)
{
    char buf[8192], want[4200];
    ssize_t n = read_proc(pid, "cmdline", buf, sizeof(buf));
    if (n < 0)
        return false;
    snprintf(want, sizeof(want), "--conf-file=%s", conf);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
        if (!strcmp(buf + i, want))
            return true;
    return false;
}

/* pid is a dnsmasq child of herdd that has exited (a zombie: its cmdline is
 * gone, so is_ours cannot tell). */
static bool is_our_zombie(pid_t pid)
{
    char buf[256], state = 0;
    int ppid = 0;
    return read_proc(pid, "stat", buf, sizeof(buf)) > 0 &&
           sscanf(buf, "%*d (dnsmasq) %c %d", &state, &ppid) == 2 && state == 'Z' &&
           ppid == (int)getpid();
}

/* SIGTERM, then SIGKILL after 2 s; reaped when it is herdd's child. */
static void stop_pid(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        pid_t w = waitpid(pid, NULL, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD && kill(pid, 0) < 0))
            return;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, WNOHANG);
}

void hd_dhcp_stop(json_t *rec)
{
    pid_t pid = (pid_t)json_integer_value(json_object_get(rec, "pid"));
    const char *conf = json_string_value(json_object_get(rec, "conf"));
    const char *log = json_string_value(json_object_get(rec, "log"));
    const char *veth = json_string_value(json_object_get(rec, "veth"));
    if (pid > 1 && conf && is_ours(pid, conf))
        stop_pid(pid);
    else if (pid > 1 && is_our_zombie(pid))
        waitpid(pid, NULL, 0);
    remove_files(conf, log, veth);
}

bool hd_dhcp_running(json_t *rec)
{
    pid_t pid = (pid_t)json_integer_value(json_object_get(rec, "pid"));
    const char *conf = json_string_value(json_object_get(rec, "conf"));
    return pid > 1 && conf && is_ours(pid, conf);
}
