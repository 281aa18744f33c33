/*
 * herd-vmm's confinement: cgroup, uid/gid, capabilities, no_new_privs and
 * seccomp filters per thread class. docs/security.md explains the layers;
 * vmm/seccomp_policy.c holds what each class may call.
 *
 * The filters are compiled to BPF once, in the main thread, before anything
 * is dropped; a thread installing its filter then makes exactly one system
 * call (seccomp), so it needs no allocation and no file. A denied call traps
 * (SECCOMP_RET_TRAP): the SIGSYS handler writes one line naming the call and
 * the thread class from tables built ahead of time and ends the process with
 * VMM_EXIT_SECCOMP, using only write and exit_group.
 */
#include "herd/jail.h"

#include <cap-ng.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "herd/log.h"
#include "seccomp_policy.h"

#define SYSNAME_MAX 512 /* x86_64 numbers in use are below 470 */
#define SYSNAME_LEN 28

static const char *const class_names[JAIL_NR_CLASSES] = {
    [JAIL_MAIN] = "main", [JAIL_VCPU] = "vcpu", [JAIL_IO] = "io",
    [JAIL_CONTROL] = "control", [JAIL_SERIAL_IN] = "serial-input",
};

/* Comm names (15 characters at most) so /proc and ps tell the threads apart. */
static const char *const thread_names[JAIL_NR_CLASSES] = {
    [JAIL_MAIN] = "herd-vmm", [JAIL_VCPU] = "herd-vcpu", [JAIL_IO] = "herd-io",
    [JAIL_CONTROL] = "herd-control", [JAIL_SERIAL_IN] = "herd-serial-in",
};

static bool seccomp_on;
static struct sock_fprog progs[JAIL_NR_CLASSES];
static char sys_names[SYSNAME_MAX][SYSNAME_LEN];
static __thread int my_class = JAIL_MAIN;
#ifdef HERD_TEST_HOOKS
static int forbidden_class = -1; /* HERD_TEST_FORBIDDEN_SYSCALL=<class> */
static int uring_attack_setup(struct herd_err *err);
#endif

const char *jail_class_name(enum jail_class c)
{
    return (unsigned)c < JAIL_NR_CLASSES ? class_names[c] : "unknown";
}

bool jail_seccomp_active(void)
{
    return seccomp_on;
}

/* ---- cgroup ------------------------------------------------------------- */

int jail_join_cgroup(const char *path, struct herd_err *err)
{
    char file[4096], pid[32];
    int fd, n, rc = 0;

    if ((size_t)snprintf(file, sizeof(file), "%s/cgroup.procs", path) >= sizeof(file))
        return herd_err_set(err, -ENAMETOOLONG, "", "cgroup: the path is too long");
    fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "cgroup: %s: %s (herdd creates the group before starting "
                     "herd-vmm)", file, strerror(errno));
        return rc;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (write(fd, pid, (size_t)n) != n) {
        rc = -errno;
        herd_err_set(err, rc, "", "cgroup: cannot join %s: %s", path, strerror(errno));
    }
    close(fd);
    return rc;
}

/* ---- the SIGSYS handler (async-signal-safe only) -------------------------- */

static size_t put_str(char *buf, size_t off, size_t len, const char *s)
{
    while (*s && off + 1 < len)
        buf[off++] = *s++;
    return off;
}

static size_t put_num(char *buf, size_t off, size_t len, unsigned long long v, unsigned base)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && n < (int)sizeof(tmp));
    if (base == 16)
        off = put_str(buf, off, len, "0x");
    while (n > 0 && off + 1 < len)
        buf[off++] = tmp[--n];
    return off;
}

static void sigsys_handler(int sig, siginfo_t *si, void *ucv)
{
    const ucontext_t *uc = ucv;
    char line[256];
    size_t off = 0;
    int nr = si->si_syscall;

    (void)sig;
    off = put_str(line, off, sizeof(line), "herd-vmm: seccomp: ");
    off = put_str(line, off, sizeof(line), jail_class_name((enum jail_class)my_class));
    off = put_str(line, off, sizeof(line), " thread made forbidden system call ");
    if (si->si_arch != AUDIT_ARCH_X86_64) {
        off = put_str(line, off, sizeof(line), "of another architecture (audit arch ");
        off = put_num(line, off, sizeof(line), si->si_arch, 16);
        off = put_str(line, off, sizeof(line), ") number ");
        off = put_num(line, off, sizeof(line), (unsigned)nr, 10);
    } else {
        off = put_str(line, off, sizeof(line),
                      nr >= 0 && nr < SYSNAME_MAX && sys_names[nr][0] ? sys_names[nr] : "?");
        off = put_str(line, off, sizeof(line), " (");
        off = put_num(line, off, sizeof(line), (unsigned)nr, 10);
        off = put_str(line, off, sizeof(line), ")");
        if (nr == SYS_ioctl) { /* which request: the second argument, in rsi */
            off = put_str(line, off, sizeof(line), " request ");
            off = put_num(line, off, sizeof(line),
                          (unsigned long long)uc->uc_mcontext.gregs[REG_RSI] & 0xffffffffu, 16);
        }
    }
    off = put_str(line, off, sizeof(line), "; terminating\n");
    if (write(STDERR_FILENO, line, off) < 0) {
        /* stderr gone: the exit status still says it */
    }
    syscall(SYS_exit_group, VMM_EXIT_SECCOMP);
    for (;;)
        ;
}

/* ---- building the filters --------------------------------------------- */

static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
    int fd = memfd_create("herd-seccomp", MFD_CLOEXEC);
    off_t size;
    int rc = 0;

    if (fd < 0)
        return -errno;
    rc = seccomp_export_bpf(ctx, fd);
    if (!rc) {
        size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size % (off_t)sizeof(struct sock_filter) ||
            size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
            rc = -EINVAL;
    }
    if (!rc) {
        prog->filter = malloc((size_t)size);
        prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
        if (!prog->filter)
            rc = -ENOMEM;
        else if (pread(fd, prog->filter, (size_t)size, 0) != (ssize_t)size)
            rc = -EIO;
    }
    close(fd);
    return rc;
}

static int build_class(enum jail_class c, struct herd_err *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    int rc;

    if (!ctx)
        return herd_err_set(err, -ENOMEM, "", "seccomp: cannot start the %s filter",
                            class_names[c]);
    /* Calls of another architecture (int 0x80, x32) trap as well. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
    if (!rc)
        rc = seccomp_policy_add(ctx, c, err);
    if (!rc)
        rc = export_bpf(ctx, &progs[c]);
    if (rc && err && !err->msg[0])
        herd_err_set(err, rc, "", "seccomp: %s filter: %s", class_names[c], strerror(-rc));
    seccomp_release(ctx);
    return rc;
}

static void fill_sys_names(void)
{
    for (int nr = 0; nr < SYSNAME_MAX; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

        if (name) {
            snprintf(sys_names[nr], SYSNAME_LEN, "%s", name);
            free(name);
        }
    }
}

static void *cancel_me(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* What glibc and jansson would otherwise do on first use, when the filters
 * forbid it: pthread_cancel (serial_destroy) installs the SIGCANCEL handler
 * and dlopens libgcc_s for the unwinder; jansson's first object reads
 * /dev/urandom for its hash seed. Done once here, they are not done again. */
static void preload_lazy_state(void)
{
    pthread_t t;

    json_object_seed(0);
    if (pthread_create(&t, NULL, cancel_me, NULL) == 0) {
        pthread_cancel(t);
        pthread_join(t, NULL);
    }
}

int jail_prepare(const struct jail_opts *o, struct herd_err *err)
{
    struct sigaction sa;
    int rc;

    herd_err_clear(err);
#ifdef HERD_TEST_HOOKS
    {
        const char *want = getenv("HERD_TEST_FORBIDDEN_SYSCALL");

        for (int c = 0; want && c < JAIL_NR_CLASSES; c++)
            if (strcmp(want, class_names[c]) == 0)
                forbidden_class = c;
        if (want && forbidden_class < 0)
            return herd_err_set(err, -EINVAL, "",
                                "HERD_TEST_FORBIDDEN_SYSCALL: '%s' is no thread class", want);
        rc = uring_attack_setup(err);
        if (rc)
            return rc;
    }
#endif
    seccomp_on = o->seccomp;
#if defined(__SANITIZE_ADDRESS__)
    if (seccomp_on) {
        log_info("seccomp: off in this sanitizer build (the ASan/LSan runtime needs ptrace, "
                 "clone and /proc at exit); capabilities, uid and no_new_privs still apply");
        seccomp_on = false;
    }
#endif
    if (!o->seccomp)
        log_warn("seccomp: off (--seccomp=off): for debugging only, every system call is "
                 "allowed");
    preload_lazy_state();
    if (!seccomp_on)
        return 0;
    fill_sys_names();
    for (int c = 0; c < JAIL_NR_CLASSES; c++) {
        rc = build_class((enum jail_class)c, err);
        if (rc)
            return rc;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigsys_handler;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "seccomp: SIGSYS handler: %s", strerror(errno));
        return rc;
    }
    return 0;
}

/* ---- dropping privileges ---------------------------------------------- */

int jail_drop(const struct jail_opts *o, struct herd_err *err)
{
    int rc;

    if ((o->uid < 0) != (o->gid < 0))
        return herd_err_set(err, -EINVAL, "", "--uid and --gid go together");
    capng_get_caps_process();
    if (o->uid >= 0) {
        /* No supplementary groups, the gid, the uid, and with them every
         * capability including the bounding set. */
        capng_clear(CAPNG_SELECT_BOTH);
        rc = capng_change_id((int)o->uid, (int)o->gid,
                             CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
        if (rc)
            return herd_err_set(err, -EPERM, "",
                                "cannot switch to uid %ld gid %ld (libcap-ng error %d): %s", o->uid,
                                o->gid, rc, strerror(errno));
    } else if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE ||
               capng_have_capabilities(CAPNG_SELECT_BOUNDS) != CAPNG_NONE) {
        /* The bounding set can only shrink with CAP_SETPCAP; without it
         * (an unprivileged user) no_new_privs keeps it from mattering. */
        bool bounds = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);

        capng_clear(bounds ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS);
        if (capng_apply(bounds ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS))
            return herd_err_set(err, -EPERM, "", "cannot drop capabilities: %s", strerror(errno));
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
        herd_err_set(err, -errno, "", "cannot clear ambient capabilities: %s", strerror(errno));
        return -errno;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        rc = -errno;
        herd_err_set(err, rc, "", "cannot set no_new_privs: %s", strerror(errno));
        return rc;
    }
    return 0;
}

/* ---- per thread ------------------------------------------------------- */

#ifdef HERD_TEST_HOOKS
/*
 * HERD_TEST_FORBIDDEN_URING=<op,op,...|all>: at the first disk request the
 * guest makes (in the confined thread serving it, holding the device lock,
 * nothing else in flight on that ring) submit each named operation on the
 * disk's own io_uring as a compromised herd-vmm would, and log one line per
 * operation: "uring-attack NAME: refused (-EACCES)", "...: failed (-ERR)" or
 * "...: ALLOWED (result N)". "all" is every operation but REGISTER-FILES
 * (io_uring_register, which seccomp answers by ending the process).
 * HERD_TEST_URING_FILE (OPENAT's file, default /etc/passwd),
 * HERD_TEST_URING_DIR (where SYMLINKAT, RENAMEAT and UNLINKAT aim: symlink,
 * rename-me -> renamed, victim; default /tmp), HERD_TEST_URING_SOCKET
 * (CONNECT's unix socket, default /nonexistent).
 */
#include <liburing.h>

#include "../blockdev/internal.h"

static unsigned uring_ops; /* bit per enum bd_uring_attack */
static struct bd_uring_attack_ctx uring_ctx = {.sock_fd = -1};

static const char *errno_name(int e)
{
    static const struct {
        int e;
        const char *n;
    } t[] = {{EACCES, "EACCES"}, {EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {EBADF, "EBADF"},
             {EINVAL, "EINVAL"}, {EEXIST, "EEXIST"}, {ENOTSOCK, "ENOTSOCK"},
             {ECONNREFUSED, "ECONNREFUSED"}, {ETIME, "ETIME (no completion)"},
             {EOPNOTSUPP, "EOPNOTSUPP"}, {EBUSY, "EBUSY"}, {ENXIO, "ENXIO"}};

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].e == e)
            return t[i].n;
    return "another errno";
}

static void uring_attack(struct io_uring *ring, int fd)
{
    log_info("test hook: the %s thread attacks its disk's io_uring (fd %d)",
             class_names[my_class], ring->ring_fd);
    for (int op = 0; op < BD_ATK_NR; op++) {
        int r;

        if (!(uring_ops & (1u << op)))
            continue;
        r = bd_test_uring_attack(ring, fd, (enum bd_uring_attack)op, &uring_ctx);
        if (r == -EACCES)
            log_info("uring-attack %s: refused (-EACCES)", bd_uring_attack_names[op]);
        else if (r < 0)
            log_info("uring-attack %s: failed (-%s, %d)", bd_uring_attack_names[op],
                     errno_name(-r), r);
        else
            log_info("uring-attack %s: ALLOWED (result %d)", bd_uring_attack_names[op], r);
    }
    log_info("uring-attack done");
}

static int uring_attack_setup(struct herd_err *err)
{
    const char *want = getenv("HERD_TEST_FORBIDDEN_URING"), *v;
    char list[256], *save = NULL;

    if (!want)
        return 0;
    snprintf(list, sizeof(list), "%s", want);
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int op = -1;

        if (strcmp(tok, "all") == 0) {
            uring_ops |= ((1u << BD_ATK_NR) - 1) & ~(1u << BD_ATK_REGISTER);
            continue;
        }
        for (int i = 0; i < BD_ATK_NR; i++)
            if (strcmp(tok, bd_uring_attack_names[i]) == 0)
                op = i;
        if (op < 0)
            return herd_err_set(err, -EINVAL, "", "HERD_TEST_FORBIDDEN_URING: '%s' is no operation",
                                tok);
        uring_ops |= 1u << op;
    }
    uring_ctx.file = (v = getenv("HERD_TEST_URING_FILE")) ? v : "/etc/passwd";
    uring_ctx.dir = (v = getenv("HERD_TEST_URING_DIR")) ? v : "/tmp";
    uring_ctx.sock = (v = getenv("HERD_TEST_URING_SOCKET")) ? v : "/nonexistent";
    bd_test_on_first_submit(uring_attack);
    return 0;
}

static void test_forbidden_syscall(enum jail_class c)
{
    if ((int)c != forbidden_class)
        return;
    log_info("test hook: the %s thread calls mount", class_names[c]);
    syscall(SYS_mount, "none", "/nonexistent", "tmpfs", 0UL, NULL);
}
#endif

#ifdef HERD_TEST_HOOKS
/* HERD_TEST_HOG=memory: once confined, the main thread plays a compromised
 * herd-vmm and touches ever more anonymous memory (mmap without PROT_EXEC
 * is allowed) until the kernel stops it at its cgroup's memory.max (an OOM
 * kill herdd records). Bounded for hosts without a limit: after 1 GiB it
 * says so and exits with status 3. */
static void test_hog(enum jail_class c)
{
    const char *what = getenv("HERD_TEST_HOG");
    const size_t chunk = (size_t)4 << 20;

    if (c != JAIL_MAIN || !what)
        return;
    if (strcmp(what, "memory") != 0) {
        log_error("HERD_TEST_HOG: '%s' is not memory", what);
        syscall(SYS_exit_group, 2);
    }
    log_info("test hook: the main thread touches ever more memory");
    for (size_t total = 0; total < ((size_t)1 << 30); total += chunk) {
        char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED) {
            log_error("test hook: mmap after %zu MiB: %s", total >> 20, strerror(errno));
            syscall(SYS_exit_group, 3);
        }
        memset(p, 0xa5, chunk);
    }
    log_error("test hook: 1 GiB touched and still running: no memory limit");
    syscall(SYS_exit_group, 3);
}
#endif

void jail_enter(enum jail_class c)
{
    sigset_t sys;

    my_class = (int)c;
    if (c != JAIL_MAIN)
        prctl(PR_SET_NAME, thread_names[c], 0, 0, 0);
    if (seccomp_on) {
        /* A blocked SIGSYS would make the kernel kill us without the line. */
        sigemptyset(&sys);
        sigaddset(&sys, SIGSYS);
        pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[c]) < 0) {
            log_error("seccomp: cannot install the %s thread's filter: %s; terminating",
                      class_names[c], strerror(errno));
            syscall(SYS_exit_group, 2);
        }
    }
#ifdef HERD_TEST_HOOKS
    test_forbidden_syscall(c);
    test_hog(c);
#endif
}

/* ---- --jail-check ----------------------------------------------------- */

#define REPORT_MAX_THREADS 64

static struct {
    int self_status, self_cgroup;
    int nr;
    long tid[REPORT_MAX_THREADS];
    int fd[REPORT_MAX_THREADS];
} rep = {.self_status = -1, .self_cgroup = -1};

int jail_report_open(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;

    rep.self_status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    rep.self_cgroup = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    if (!d)
        return -errno;
    while ((de = readdir(d)) && rep.nr < REPORT_MAX_THREADS) {
        char path[64];

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%.20s/status", de->d_name);
        rep.fd[rep.nr] = open(path, O_RDONLY | O_CLOEXEC);
        if (rep.fd[rep.nr] < 0)
            continue;
        rep.tid[rep.nr++] = strtol(de->d_name, NULL, 10);
    }
    closedir(d);
    return 0;
}

static ssize_t read_at0(int fd, char *buf, size_t len)
{
    ssize_t n = fd >= 0 ? pread(fd, buf, len - 1, 0) : -1;

    buf[n > 0 ? n : 0] = 0;
    return n;
}

/* The value of "Key:" in a /proc status text, or "?" */
static const char *field(const char *text, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
            const char *v = p + kl + 1;
            size_t n = 0;

            while (*v == ' ' || *v == '\t')
                v++;
            while (v[n] && v[n] != '\n')
                n++;
            snprintf(out, outlen, "%.*s", (int)n, v);
            for (char *t = out; *t; t++)
                if (*t == '\t')
                    *t = ' ';
            return out;
        }
    }
    snprintf(out, outlen, "?");
    return out;
}

void jail_report(FILE *out, unsigned expect_threads)
{
    static char text[8192];
    char v[256];
    struct timespec pause_ = {0, 10 * 1000 * 1000};

    /* Threads install their filter as they start: wait (2 s at most) until
     * every one shows it. */
    for (int tries = 0; seccomp_on && tries < 200; tries++) {
        int done = 0;

        for (int i = 0; i < rep.nr; i++)
            if (read_at0(rep.fd[i], text, sizeof(text)) <= 0 || /* gone */
                strcmp(field(text, "Seccomp", v, sizeof(v)), "2") == 0)
                done++;
        if (done >= rep.nr)
            break;
        nanosleep(&pause_, NULL);
    }
    read_at0(rep.self_status, text, sizeof(text));
    fprintf(out, "herd-vmm jail-check (pid %ld, %d threads, %u expected)\n", (long)getpid(),
            rep.nr, expect_threads);
    fprintf(out, "uid: %s\n", field(text, "Uid", v, sizeof(v)));
    fprintf(out, "gid: %s\n", field(text, "Gid", v, sizeof(v)));
    fprintf(out, "groups: %s\n", field(text, "Groups", v, sizeof(v)));
    fprintf(out, "CapInh: %s\n", field(text, "CapInh", v, sizeof(v)));
    fprintf(out, "CapPrm: %s\n", field(text, "CapPrm", v, sizeof(v)));
    fprintf(out, "CapEff: %s\n", field(text, "CapEff", v, sizeof(v)));
    fprintf(out, "CapBnd: %s\n", field(text, "CapBnd", v, sizeof(v)));
    fprintf(out, "CapAmb: %s\n", field(text, "CapAmb", v, sizeof(v)));
    fprintf(out, "NoNewPrivs: %s\n", field(text, "NoNewPrivs", v, sizeof(v)));
#if defined(__SANITIZE_ADDRESS__)
    fprintf(out, "seccomp: %s\n", "off (sanitizer build)");
#else
    fprintf(out, "seccomp: %s\n", seccomp_on ? "on (one filter per thread class)"
                                             : "off (--seccomp=off)");
#endif
    for (int i = 0; i < rep.nr; i++) {
        char name[32], sc[16], nf[16];

        if (read_at0(rep.fd[i], text, sizeof(text)) <= 0)
            continue;
        field(text, "Name", name, sizeof(name));
        field(text, "Seccomp", sc, sizeof(sc));
        field(text, "Seccomp_filters", nf, sizeof(nf));
        fprintf(out, "thread %ld %s: Seccomp %s filters %s NoNewPrivs %s CapEff %s\n", rep.tid[i],
                name, sc, nf, field(text, "NoNewPrivs", v, sizeof(v)),
                field(text, "CapEff", v + 64, sizeof(v) - 64));
    }
    read_at0(rep.self_cgroup, text, sizeof(text));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(out, "cgroup: %s\n", line);
    fflush(out);
}
