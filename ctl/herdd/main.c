/* herdd: the node daemon. See docs/herdd.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "herdd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: herdd [--config FILE]\n\n"
               "The herd node daemon: templates, guests and ranges on this node, served as\n"
               "HTTP/1.1 + JSON on a unix socket (see docs/herdd.md, docs/api.yaml).\n\n"
               "  --config FILE   YAML configuration (default /etc/herd/herdd.yaml)\n"
               "  --check         load and check the configuration, then exit\n"
               "  --help, --version\n");
}

/* Whether herd-vmm's --help names OPTION. */
static bool vmm_supports(const char *vmm, const char *option)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", vmm);
    FILE *p = popen(cmd, "r");
    char line[512];
    bool yes = false;
    if (!p)
        return false;
    while (fgets(line, sizeof(line), p))
        if (strstr(line, option))
            yes = true;
    pclose(p);
    return yes;
}

static int mkdirs(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *config = "/etc/herd/herdd.yaml";
    bool check_only = false;
    struct hd_err err = {0};
    int c;

    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'k': check_only = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("herdd %s\n", HD_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    if (hd_config_load(config, &g.cfg, &err) < 0) {
        fprintf(stderr, "herdd: %s%s%s%s\n", err.msg, err.field[0] ? " (field " : "",
                err.field, err.field[0] ? ")" : "");
        return 2;
    }
    if (check_only) {
        printf("herdd: %s is valid\n", config);
        hd_config_free(&g.cfg);
        return 0;
    }
    if (strlen(g.cfg.state_dir) + sizeof("/run/18446744073709551615/ctl.sock") > 108) {
        fprintf(stderr, "herdd: state_dir %s is too long for the guests' control sockets "
                        "(at most %zu characters)\n",
                g.cfg.state_dir, 108 - sizeof("/run/18446744073709551615/ctl.sock"));
        return 2;
    }
    /* one pidfd per guest plus one descriptor per API connection */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (access(g.cfg.vmm_path, X_OK) < 0) {
        fprintf(stderr, "herdd: vmm %s: %s\n", g.cfg.vmm_path, strerror(errno));
        return 2;
    }
    char p[4096];
    if (mkdirs(g.cfg.state_dir) < 0) {
        fprintf(stderr, "herdd: %s: %s\n", g.cfg.state_dir, strerror(errno));
        return 1;
    }
    snprintf(p, sizeof(p), "%s/vms", g.cfg.state_dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/run", g.cfg.state_dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/herdd.lock", g.cfg.state_dir);
    int lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "herdd: %s: another herdd owns this state dir\n", p);
        return 1;
    }

    /* Signals: only the main thread takes them (every thread inherits the mask). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.changed, &ca);
    pthread_condattr_destroy(&ca);
    hd_events_init();
    g.started_at = hd_now_ms();
    g.vmm_has_control = vmm_supports(g.cfg.vmm_path, "--control");
    g.vmm_has_fsize = vmm_supports(g.cfg.vmm_path, "--file-size-max");
    g.epfd = epoll_create1(EPOLL_CLOEXEC);

    if (hd_image_dirs_prepare(&g.cfg, &err) < 0 || hd_jail_init(&err) < 0 ||
        hd_db_open(&err) < 0 || hd_db_load(&err) < 0 ||
        hd_audit_open(&err) < 0) {
        fprintf(stderr, "herdd: %s\n", err.msg);
        return 1;
    }
    if (g.cfg.net_setup && g.cfg.net.bridges) {
        struct netdev_nl *nl;
        struct herd_err nerr;
        herd_err_clear(&nerr);
        int rc = netdev_nl_open(&nl);
        if (rc == 0) {
            rc = netdev_setup(nl, &g.cfg.net, &nerr);
            netdev_nl_close(nl);
        }
        if (rc < 0) {
            fprintf(stderr, "herdd: network setup: %s (%s)\n",
                    nerr.msg[0] ? nerr.msg : strerror(-rc), nerr.field);
            return 1;
        }
    }
    hd_storage_check();
    hd_vm_set_spawn_hook(hd_supervise_add); /* guests are supervised from above */
    hd_adopt_all();
    hd_audit(getuid(), HD_ROLE_SYSADMIN, "START", "herdd", g.cfg.node_name, 200, NULL);
    if (hd_supervise_start() < 0) {
        fprintf(stderr, "herdd: cannot start the supervisor\n");
        return 1;
    }
    hd_ranges_resume();
    if (hd_api_start(&err) < 0) {
        fprintf(stderr, "herdd: %s\n", err.msg);
        g.stopping = 1;
        hd_supervise_stop();
        return 1;
    }
    fprintf(stderr, "herdd %s: node %s, state %s, listening on %s, vmm %s%s\n", HD_VERSION,
            g.cfg.node_name, g.cfg.state_dir, g.cfg.socket_path, g.cfg.vmm_path,
            g.vmm_has_control ? " (control sockets)" : " (no control socket support)");
    hd_event("node.started", g.cfg.node_name, NULL);

    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "herdd: signal %d: stopping (guests keep running)\n", sig);
    g.stopping = 1;
    hd_event("node.stopping", g.cfg.node_name, NULL);
    hd_api_stop();
    hd_supervise_stop();
    hd_audit(getuid(), HD_ROLE_SYSADMIN, "STOP", "herdd", g.cfg.node_name, 200, NULL);
    hd_audit_close();
    pthread_mutex_lock(&g.mu);
    hd_db_close();
    pthread_mutex_unlock(&g.mu);
    return 0;
}
