/* herdd: the node daemon. See docs/herdd.md. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* The command line: *config and *check_only set, or an exit status (0 for
 * --help and --version, 2 for a usage error); -1 to go on. */
static int parse_args(int argc, char **argv, const char **config, bool *check_only)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *config = optarg; break;
        case 'k': *check_only = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("herdd %s\n", HD_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* What the loaded configuration asks of this host: a state_dir short
 * enough for the guests' control sockets, descriptors enough, a herd-vmm
 * herdd can run. 0, or the exit status. */
static int check_limits(const struct hd_config *cfg)
{
    if (strlen(cfg->state_dir) + sizeof("/run/18446744073709551615/ctl.sock") > 108) {
        fprintf(stderr, "herdd: state_dir %s is too long for the guests' control sockets "
                        "(at most %zu characters)\n",
                cfg->state_dir, 108 - sizeof("/run/18446744073709551615/ctl.sock"));
        return 2;
    }
    /* one pidfd per guest plus one descriptor per API connection */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (access(cfg->vmm_path, X_OK) < 0) {
        fprintf(stderr, "herdd: vmm %s: %s\n", cfg->vmm_path, strerror(errno));
        return 2;
    }
    return 0;
}

/* The state dir and its vms/ and run/, and its lock (held, its descriptor
 * left open, until herdd exits). 0, or the exit status. */
static int prepare_state_dir(const struct hd_config *cfg)
{
    char p[4096];
    if (mkdirs(cfg->state_dir) < 0) {
        fprintf(stderr, "herdd: %s: %s\n", cfg->state_dir, strerror(errno));
        return 1;
    }
    snprintf(p, sizeof(p), "%s/vms", cfg->state_dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/run", cfg->state_dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/herdd.lock", cfg->state_dir);
    int lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "herdd: %s: another herdd owns this state dir\n", p);
        return 1;
    }
    return 0;
}

/* Signals: only the main thread takes them (every thread inherits the mask). */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Each layer's context, pointing at the ones below it; nothing is opened
 * here but the supervisor's epoll set. */
static void wire(struct herdd *hd)
{
    hd_store_init(&hd->st, &hd->cfg);
    hd->st.started_at = hd_now_ms();
    hd->res = (struct hd_res){.st = &hd->st, .cfg = &hd->cfg};
    hd->res.vmm_has_control = vmm_supports(hd->cfg.vmm_path, "--control");
    hd->res.vmm_has_fsize = vmm_supports(hd->cfg.vmm_path, "--file-size-max");
    hd_guests_init(&hd->gs, &hd->res);
    /* as ever, a failed epoll_create1 is not fatal here: guests then fail to
     * start (hd_supervise_add) */
    hd_super_init(&hd->sv, &hd->gs);
    hd_ranges_init(&hd->rg, &hd->gs);
}

/* Image dirs, confinement, the database, the audit log. 0, or the exit
 * status. */
static int open_state(struct herdd *hd)
{
    struct hd_err err = {0};
    if (hd_image_dirs_prepare(&hd->cfg, &err) < 0 || hd_jail_init(&hd->res, &err) < 0 ||
        hd_db_open(&hd->st, &err) < 0 || hd_db_load(&hd->st, &err) < 0 ||
        hd_audit_open(&hd->st, &err) < 0) {
        fprintf(stderr, "herdd: %s\n", err.msg);
        return 1;
    }
    if (hd_seed_init() < 0) {
        fprintf(stderr, "herdd: libisofs (cloud-init seed disks) did not initialise\n");
        return 1;
    }
    return 0;
}

/* With net_setup: the role bridges that are missing. 0, or the exit status. */
static int setup_network(const struct hd_config *cfg)
{
    if (!cfg->net_setup || !cfg->net.bridges)
        return 0;
    struct netdev_nl *nl;
    struct herd_err nerr;
    herd_err_clear(&nerr);
    int rc = netdev_nl_open(&nl);
    if (rc == 0) {
        rc = netdev_setup(nl, &cfg->net, &nerr);
        netdev_nl_close(nl);
    }
    if (rc < 0) {
        fprintf(stderr, "herdd: network setup: %s (%s)\n",
                nerr.msg[0] ? nerr.msg : strerror(-rc), nerr.field);
        return 1;
    }
    return 0;
}

/* Everything from the state to the open API. 0, or the exit status. */
static int start(struct herdd *hd)
{
    struct hd_err err = {0};
    int rc;

    if ((rc = open_state(hd)) != 0 || (rc = setup_network(&hd->cfg)) != 0)
        return rc;
    hd_storage_check(&hd->res);
    hd_snapshot_sweep(&hd->res); /* what a snapshot cut short by a crash left */
    /* guests are supervised from above */
    hd_vm_set_spawn_hook(&hd->gs, hd_supervise_add, &hd->sv);
    hd_adopt_all(&hd->sv);
    hd_audit(&hd->st, getuid(), HD_ROLE_SYSADMIN, "START", "herdd", hd->cfg.node_name, 200,
             NULL);
    if (hd_supervise_start(&hd->sv) < 0) {
        fprintf(stderr, "herdd: cannot start the supervisor\n");
        return 1;
    }
    hd_checkpoint_recover(&hd->gs);
    hd_ranges_resume(&hd->rg);
    if (hd_cluster_start(&hd->cl, &hd->gs, &err) < 0) {
        fprintf(stderr, "herdd: cluster: %s\n", err.msg);
        hd->st.stopping = 1;
        hd_events_stop(&hd->st.ev);
        hd_supervise_stop(&hd->sv);
        return 1;
    }
    if (hd_api_start(&hd->api, &hd->rg, &hd->gs, &hd->cl, &err) < 0) {
        fprintf(stderr, "herdd: %s\n", err.msg);
        hd->st.stopping = 1;
        hd_events_stop(&hd->st.ev);
        hd_cluster_stop(&hd->cl);
        hd_supervise_stop(&hd->sv);
        return 1;
    }
    fprintf(stderr, "herdd %s: node %s, state %s, listening on %s, vmm %s%s\n", HD_VERSION,
            hd->cfg.node_name, hd->cfg.state_dir, hd->cfg.socket_path, hd->cfg.vmm_path,
            hd->res.vmm_has_control ? " (control sockets)" : " (no control socket support)");
    hd_event(&hd->st.ev, "node.started", hd->cfg.node_name, NULL);
    return 0;
}

static void run_until_signal(sigset_t *set)
{
    int sig = 0;
    sigwait(set, &sig);
    fprintf(stderr, "herdd: signal %d: stopping (guests keep running)\n", sig);
}

/* Guests keep running; the API, the supervisor, the audit log and the
 * database close. */
static void stop(struct herdd *hd)
{
    hd->st.stopping = 1;
    hd_events_stop(&hd->st.ev);
    hd_event(&hd->st.ev, "node.stopping", hd->cfg.node_name, NULL);
    hd_api_stop(&hd->api);
    hd_cluster_stop(&hd->cl); /* the node leaves the cluster at once */
    hd_supervise_stop(&hd->sv);
    hd_audit(&hd->st, getuid(), HD_ROLE_SYSADMIN, "STOP", "herdd", hd->cfg.node_name, 200,
             NULL);
    hd_audit_close(&hd->st);
    pthread_mutex_lock(&hd->st.mu);
    hd_db_close(&hd->st);
    pthread_mutex_unlock(&hd->st.mu);
}

/* herdd's life, as main's exit status. */
static int run(struct herdd *hd, int argc, char **argv)
{
    const char *config = "/etc/herd/herdd.yaml";
    bool check_only = false;
    struct hd_err err = {0};
    sigset_t set;
    int rc;

    if ((rc = parse_args(argc, argv, &config, &check_only)) >= 0)
        return rc;
    setvbuf(stderr, NULL, _IOLBF, 0);
    if (hd_config_load(config, &hd->cfg, &err) < 0) {
        fprintf(stderr, "herdd: %s%s%s%s\n", err.msg, err.field[0] ? " (field " : "",
                err.field, err.field[0] ? ")" : "");
        return 2;
    }
    if (check_only) {
        printf("herdd: %s is valid\n", config);
        hd_config_free(&hd->cfg);
        return 0;
    }
    if ((rc = check_limits(&hd->cfg)) != 0 || (rc = prepare_state_dir(&hd->cfg)) != 0)
        return rc;
    block_signals(&set);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: the etcd client */
    wire(hd);
    if ((rc = start(hd)) != 0)
        return rc;
    run_until_signal(&set);
    stop(hd);
    return 0;
}

int main(int argc, char **argv)
{
    struct herdd hd;

    memset(&hd, 0, sizeof(hd));
    /* One malloc arena per thread (glibc's default, up to 8 per CPU) keeps
     * what each connection or range-job thread freed: measured, herdd held
     * 260 MiB after `range up` of 40 guests, 900 MiB after 120 (6-7 MiB a
     * guest); 280 MiB after 120 with two arenas, 24 MiB after 40 with one.
     * herdd allocates at API and job rates, not at I/O rates: one arena's
     * lock costs nothing measurable. */
    mallopt(M_ARENA_MAX, 1);
    /* exit, not return: hd stays on the stack until the process ends, for
     * threads still running (detached range jobs) and so that what it holds
     * is still reachable at exit (no LeakSanitizer report) */
    exit(run(&hd, argc, argv));
}
