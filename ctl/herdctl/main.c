/* herdctl: the herd CLI. Talks HTTP/1.1 + JSON to herdd on its unix socket
 * (libcurl). Human tables by default, --json for machines; exit status 1
 * with the daemon's message when a request fails. See docs/herdctl.md. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <termios.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path;
static bool json_out;

struct buf {
    char *p;
    size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
    struct buf *b = u;
    size_t n = sz * nm;
    b->p = realloc(b->p, b->n + n + 1);
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("herdctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static char *url_for(const char *path)
{
    char *u;
    if (asprintf(&u, "http://herd%s", path) < 0)
        die("out of memory");
    return u;
}

/* One request. Returns the parsed JSON (or NULL for an empty body); on an
 * HTTP error prints the daemon's message and exits 1. */
static json_t *request(const char *method, const char *path, const char *body, size_t len,
                       const char *ctype, long *status_out)
{
    CURL *c = curl_easy_init();
    struct buf b = {NULL, 0};
    struct curl_slist *h = NULL;
    char *u = url_for(path);
    long status = 0;

    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock_path);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype ? ctype : "application/json");
        h = curl_slist_append(h, hdr);
        h = curl_slist_append(h, "Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        die("cannot reach herdd at %s: %s", sock_path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(u);
    json_t *j = b.n ? json_loadb(b.p, b.n, 0, NULL) : NULL;
    if (status >= 400) {
        const char *e = json_string_value(json_object_get(j, "error"));
        const char *f = json_string_value(json_object_get(j, "field"));
        if (json_out && j) {
            char *t = json_dumps(j, JSON_INDENT(2));
            fprintf(stderr, "%s\n", t);
            free(t);
        }
        fprintf(stderr, "herdctl: %s%s%s%s (HTTP %ld)\n", e ? e : (b.p ? b.p : "error"),
                f && *f ? " [field " : "", f && *f ? f : "", f && *f ? "]" : "", status);
        exit(1);
    }
    free(b.p);
    if (status_out)
        *status_out = status;
    return j;
}

static json_t *GET(const char *path)
{
    return request("GET", path, NULL, 0, NULL, NULL);
}

static json_t *send_json(const char *method, const char *path, json_t *body)
{
    char *t = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *r = request(method, path, t ? t : "", t ? strlen(t) : 0, NULL, NULL);
    free(t);
    return r;
}

/* `vm console NAME`: follows the console from the byte offset the daemon
 * reports; on a terminal, keystrokes go to the guest (raw mode) until
 * Ctrl-] detaches. Without a terminal on stdin it only follows. */
#define CONSOLE_DETACH 0x1d /* Ctrl-] */

static struct termios console_saved;
static bool console_raw;

static void console_restore(void)
{
    if (console_raw)
        tcsetattr(0, TCSANOW, &console_saved);
    console_raw = false;
}

static void console_send(const char *name, const char *data, size_t len)
{
    char path[512];
    json_t *b = json_pack("{ss#}", "data", data, len);

    snprintf(path, sizeof(path), "/v1/vms/%s/console", name);
    json_decref(send_json("POST", path, b));
    json_decref(b);
}

static void vm_console(const char *name)
{
    char path[512];
    long long offset = 0;
    bool interactive = isatty(0);

    json_t *r;

    /* From the first byte: what the guest printed so far is context. */
    if (interactive && tcgetattr(0, &console_saved) == 0) {
        struct termios t = console_saved;

        cfmakeraw(&t);
        t.c_oflag |= OPOST; /* keep \n -> \r\n for our own output */
        if (tcsetattr(0, TCSANOW, &t) == 0) {
            console_raw = true;
            atexit(console_restore);
        }
        fprintf(stderr, "herdctl: attached to %s's console; Ctrl-] detaches\r\n", name);
    }
    for (;;) {
        snprintf(path, sizeof(path), "/v1/vms/%s/console?offset=%lld", name, offset);
        r = GET(path);
        const char *data = json_string_value(json_object_get(r, "data"));
        size_t n = json_string_length(json_object_get(r, "data"));
        json_int_t from = json_integer_value(json_object_get(r, "offset"));

        if (data && n && fwrite(data, 1, n, stdout) != n)
            die("console: stdout: %s", strerror(errno));
        fflush(stdout);
        offset = (long long)from + (long long)n;
        json_decref(r);
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (interactive && poll(&p, 1, n ? 0 : 100) > 0) {
            char in[512];
            ssize_t k = read(0, in, sizeof(in));

            if (k <= 0)
                break;
            char *det = memchr(in, CONSOLE_DETACH, (size_t)k);
            if (det != in)
                console_send(name, in, det ? (size_t)(det - in) : (size_t)k);
            if (det)
                break;
        } else if (!interactive && !n) {
            usleep(100000);
        }
    }
    console_restore();
    fprintf(stderr, "\nherdctl: detached from %s\n", name);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f)
        die("%s: %s", path, strerror(errno));
    char *p = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = (n + 65536) * 2;
            p = realloc(p, cap);
        }
        size_t r = fread(p + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    p[n] = 0;
    *len = n;
    return p;
}

static void print_json(json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", t ? t : "null");
    free(t);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static char *fmt_bytes(char *b, size_t n, long long v)
{
    const char *u[] = {"B", "K", "M", "G", "T"};
    int i = 0;
    double d = (double)v;
    while (d >= 1024 && i < 4) {
        d /= 1024;
        i++;
    }
    if (d == (long long)d)
        snprintf(b, n, "%lld%s", (long long)d, u[i]);
    else
        snprintf(b, n, "%.1f%s", d, u[i]);
    return b;
}

static long long num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* ---- commands ------------------------------------------------------------------ */

static int by_name(const void *x, const void *y)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)x, "name")),
                  json_string_value(json_object_get(*(json_t *const *)y, "name")));
}

/* The IPv4 addresses of a guest's NICs (no prefix), comma-separated; "-"
 * when it has none. */
static void nic_addresses(json_t *nics, char *out, size_t size)
{
    size_t i, used = 0;
    json_t *n;
    out[0] = 0;
    json_array_foreach(nics, i, n) {
        const char *a = json_string_value(json_object_get(n, "ipv4"));
        if (!a)
            continue;
        int w = snprintf(out + used, size - used, "%s%.*s", used ? "," : "",
                         (int)strcspn(a, "/"), a);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
    if (!out[0])
        snprintf(out, size, "-");
}

static void vm_table(json_t *in)
{
    size_t i, n = json_array_size(in);
    json_t *v;
    json_t **rows = calloc(n + 1, sizeof(*rows));
    json_array_foreach(in, i, v) rows[i] = v;
    qsort(rows, n, sizeof(*rows), by_name);
    json_t *a = json_array();
    for (i = 0; i < n; i++)
        json_array_append(a, rows[i]);
    free(rows);
    char mem[32];
    printf("%-32s %-9s %-5s %-12s %4s %6s %7s %-17s %-15s %s\n", "NAME", "STATE", "READY",
           "TEMPLATE", "CPUS", "MEM", "PID", "MAC", "ADDRESSES", "NOTE");
    json_array_foreach(a, i, v) {
        json_t *nics = json_object_get(v, "nics");
        const char *mac = json_array_size(nics) ? str(json_array_get(nics, 0), "mac") : "-";
        const char *note = str(v, "note");
        char addrs[256];
        nic_addresses(nics, addrs, sizeof(addrs));
        printf("%-32s %-9s %-5s %-12s %4lld %6s %7lld %-17s %-15s %s\n", str(v, "name"),
               str(v, "state"), json_is_true(json_object_get(v, "ready")) ? "yes" : "no",
               str(v, "template"), num(v, "cpus"), fmt_bytes(mem, sizeof(mem), num(v, "mem")),
               num(v, "pid"), mac, addrs, strcmp(note, "-") ? note : "");
    }
    json_decref(a);
}

/* --nic ROLE, or a NIC object: '{"network": "communication", "addresses":
 * ["10.1.0.5"], "rate_limit": {...}}' */
static json_t *nic_arg(const char *a)
{
    json_error_t je;
    json_t *o;

    if (*a != '{')
        return json_string(a);
    if (!(o = json_loads(a, 0, &je)))
        die("--nic %s: %s", a, je.text);
    return o;
}

/* herdctl vm net NAME: the kernel filter's counters of each NIC. */
static void vm_net_table(json_t *r)
{
    size_t i;
    json_t *n;

    printf("%-4s %-15s %-17s %10s %10s  %s\n", "NIC", "TAP", "MAC", "ACCEPTED", "DROPPED",
           "DROPS BY REASON / LIMITS");
    json_array_foreach(json_object_get(r, "nics"), i, n) {
        json_t *f = json_object_get(n, "filter");
        printf("%-4zu %-15s %-17s ", i, str(n, "tap"), str(n, "mac"));
        if (!json_is_object(f)) {
            printf("%10s %10s  %s\n", "-", "-", str(n, "filter_error"));
            continue;
        }
        printf("%10lld %10lld ", num(json_object_get(f, "accepted"), "packets"),
               num(json_object_get(f, "dropped"), "packets"));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(f, "drops"), k, v)
            if (num(v, "packets"))
                printf(" %s=%lld", k, num(v, "packets"));
        json_object_foreach(json_object_get(f, "limits"), k, v)
            printf(" limit:%s=%lld%s/%s", k, num(v, "rate"),
                   strcmp(k, "bytes") ? "" : "B", str(v, "per"));
        json_t *ad = json_object_get(f, "addresses");
        printf(" addresses:%s", json_is_array(ad) ? "" : "any");
        json_t *x;
        size_t j;
        json_array_foreach(ad, j, x) printf("%s%s", j ? "," : "", json_string_value(x));
        printf("\n");
    }
}

/* ---- snapshots ------------------------------------------------------------------ */

static void snapshot_line(json_t *s)
{
    char b1[32], b2[32], b3[32];
    json_t *file = json_object_get(s, "file");
    json_t *disk = json_array_get(json_object_get(s, "disks"), 0);
    time_t t = (time_t)(num(s, "created") / 1000);
    struct tm tm;
    char ts[32];
    localtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    printf("%-16s %-16s %-16s %4lld %6s %9s %9s %6lld  %s\n", str(s, "name"), str(s, "vm"),
           str(s, "template"), num(s, "cpus"), fmt_bytes(b1, sizeof(b1), num(s, "mem")),
           fmt_bytes(b2, sizeof(b2), num(file, "allocated")),
           fmt_bytes(b3, sizeof(b3), num(disk, "allocated")), num(s, "guests"), ts);
}

static void snapshot_header(void)
{
    printf("%-16s %-16s %-16s %4s %6s %9s %9s %6s  %s\n", "NAME", "VM", "TEMPLATE", "CPUS",
           "MEM", "FILE", "DISK", "GUESTS", "CREATED");
}

/* `vm snapshot VM NAME` */
static int vm_snapshot(int argc, char **argv)
{
    char path[512];
    if (argc != 2)
        die("vm snapshot: VM NAME");
    snprintf(path, sizeof(path), "/v1/vms/%s/snapshot", argv[0]);
    json_t *b = json_pack("{ss}", "name", argv[1]);
    json_t *r = send_json("POST", path, b);
    json_decref(b);
    if (json_out)
        print_json(r);
    else
        printf("snapshot %s of %s taken (guest paused %lld us)\n", str(r, "name"), argv[0],
               num(r, "paused_us"));
    json_decref(r);
    return 0;
}

/* `vm restore VM SNAPSHOT` */
static int vm_restore(int argc, char **argv)
{
    char path[512];
    if (argc != 2)
        die("vm restore: VM SNAPSHOT");
    snprintf(path, sizeof(path), "/v1/vms/%s/restore", argv[0]);
    json_t *b = json_pack("{ss}", "snapshot", argv[1]);
    json_t *r = send_json("POST", path, b);
    json_decref(b);
    json_out ? print_json(r) : (void)printf("%s restored from snapshot %s\n", argv[0], argv[1]);
    json_decref(r);
    return 0;
}

/* `snapshot ls | show NAME | rm NAME` */
static int cmd_snapshot(int argc, char **argv)
{
    char path[512];
    if (argc < 2)
        die("snapshot: ls|show|rm");
    const char *sub = argv[1];
    if (!strcmp(sub, "ls")) {
        json_t *a = GET("/v1/snapshots");
        if (json_out) {
            print_json(a);
        } else {
            size_t i;
            json_t *s;
            snapshot_header();
            json_array_foreach(a, i, s) snapshot_line(s);
        }
        json_decref(a);
        return 0;
    }
    if (argc != 3)
        die("snapshot %s: a snapshot name is needed", sub);
    snprintf(path, sizeof(path), "/v1/snapshots/%s", argv[2]);
    json_t *r;
    if (!strcmp(sub, "show") || !strcmp(sub, "inspect")) {
        print_json(r = GET(path));
    } else if (!strcmp(sub, "rm")) {
        r = request("DELETE", path, NULL, 0, NULL, NULL);
        json_out ? print_json(r) : (void)printf("snapshot %s removed\n", argv[2]);
    } else {
        die("snapshot: unknown command '%s'", sub);
    }
    json_decref(r);
    return 0;
}

static int cmd_vm(int argc, char **argv)
{
    static const struct option o[] = {
        {"template", required_argument, NULL, 't'}, {"cpus", required_argument, NULL, 'c'},
        {"mem", required_argument, NULL, 'm'},      {"nic", required_argument, NULL, 'n'},
        {"restart", required_argument, NULL, 'r'},  {"start", no_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 'T'},  {"force", no_argument, NULL, 'f'},
        {"lines", required_argument, NULL, 'l'},    {"vmm", no_argument, NULL, 'V'},
        {"range", required_argument, NULL, 'R'},    {"follow", no_argument, NULL, 'F'},
        {"snapshot", required_argument, NULL, 'P'}, {NULL, 0, NULL, 0}};
    if (argc < 2)
        die("vm: ls|create|start|stop|shutdown|kill|pause|resume|reboot|rm|inspect|net|logs|"
            "console|snapshot");
    const char *sub = argv[1];
    json_t *body = json_object();
    json_t *nics = NULL;
    bool force = false, vmm = false, follow = false;
    const char *lines = "50", *range = NULL;
    double timeout = -1;
    int c;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "t:c:m:n:r:sT:fl:VR:FP:", o, NULL)) != -1) {
        switch (c) {
        case 't': json_object_set_new(body, "template", json_string(optarg)); break;
        case 'c': json_object_set_new(body, "cpus", json_integer(atoi(optarg))); break;
        case 'm': json_object_set_new(body, "mem", json_string(optarg)); break;
        case 'n':
            if (!nics)
                nics = json_array();
            json_array_append_new(nics, nic_arg(optarg));
            break;
        case 'r': json_object_set_new(body, "restart", json_string(optarg)); break;
        case 's': json_object_set_new(body, "start", json_true()); break;
        case 'T': timeout = atof(optarg); break;
        case 'f': force = true; break;
        case 'l': lines = optarg; break;
        case 'V': vmm = true; break;
        case 'R': range = optarg; break;
        case 'F': follow = true; break;
        case 'P': json_object_set_new(body, "snapshot", json_string(optarg)); break;
        default: exit(2);
        }
    }
    if (nics)
        json_object_set_new(body, "nics", nics);
    char path[512];
    if (!strcmp(sub, "ls")) {
        snprintf(path, sizeof(path), "/v1/vms%s%s", range ? "?range=" : "", range ? range : "");
        json_t *a = GET(path);
        json_out ? print_json(a) : vm_table(a);
        json_decref(a);
        json_decref(body);
        return 0;
    }
    if (optind + 1 >= argc)
        die("vm %s: a guest name is needed", sub);
    if (!strcmp(sub, "create")) {
        json_object_set_new(body, "name", json_string(argv[optind + 1]));
        json_t *r = send_json("POST", "/v1/vms", body);
        if (json_out)
            print_json(r);
        else
            printf("%s %s (overlay in %lld us, overlay and taps in %lld us)\n", str(r, "name"),
                   str(r, "state"), num(r, "overlay_us"), num(r, "create_us"));
        json_decref(r);
        json_decref(body);
        return 0;
    }
    if (!strcmp(sub, "snapshot")) {
        json_decref(body);
        return vm_snapshot(argc - optind - 1, argv + optind + 1);
    }
    if (!strcmp(sub, "restore")) {
        json_decref(body);
        return vm_restore(argc - optind - 1, argv + optind + 1);
    }
    int rc = 0;
    for (int i = optind + 1; i < argc; i++) {
        const char *name = argv[i];
        json_t *r = NULL;
        if (!strcmp(sub, "inspect")) {
            snprintf(path, sizeof(path), "/v1/vms/%s", name);
            print_json(r = GET(path));
        } else if (!strcmp(sub, "net")) {
            snprintf(path, sizeof(path), "/v1/vms/%s/net", name);
            r = GET(path);
            json_out ? print_json(r) : vm_net_table(r);
        } else if (!strcmp(sub, "rm")) {
            snprintf(path, sizeof(path), "/v1/vms/%s%s", name, force ? "?force=1" : "");
            r = request("DELETE", path, NULL, 0, NULL, NULL);
            json_out ? print_json(r) : (void)printf("%s removed\n", name);
        } else if (!strcmp(sub, "console")) {
            vm_console(name);
        } else if (!strcmp(sub, "logs")) {
            bool cons = false;
            size_t shown = 0;
            do {
                snprintf(path, sizeof(path), "/v1/vms/%s/logs?lines=%s&log=%s", name,
                         cons ? "100000" : lines, vmm ? "vmm" : "console");
                r = GET(path);
                json_t *l = json_object_get(r, "lines");
                if (json_out && !cons && !follow) {
                    print_json(r);
                } else {
                    size_t k;
                    json_t *s;
                    if (json_array_size(l) < shown)
                        shown = 0; /* restarted: the console starts over */
                    json_array_foreach(l, k, s) if (k >= shown) printf("%s\n", json_string_value(s));
                    shown = json_array_size(l);
                    fflush(stdout);
                }
                if (cons || follow) {
                    json_decref(r);
                    r = NULL;
                    usleep(200000);
                }
            } while (cons || follow);
        } else if (!strcmp(sub, "start") || !strcmp(sub, "stop") || !strcmp(sub, "shutdown") ||
                   !strcmp(sub, "kill") || !strcmp(sub, "pause") || !strcmp(sub, "resume") ||
                   !strcmp(sub, "reboot")) {
            snprintf(path, sizeof(path), "/v1/vms/%s/%s", name, sub);
            json_t *b = timeout >= 0 ? json_pack("{sf}", "timeout", timeout) : NULL;
            r = send_json("POST", path, b);
            json_decref(b);
            if (json_out)
                print_json(r);
            else
                printf("%s %s\n", name, str(r, "state"));
        } else {
            die("vm: unknown command '%s'", sub);
        }
        json_decref(r);
    }
    json_decref(body);
    return rc;
}

static int cmd_template(int argc, char **argv)
{
    static const struct option o[] = {
        {"image", required_argument, NULL, 'i'},  {"format", required_argument, NULL, 'F'},
        {"kernel", required_argument, NULL, 'k'}, {"initrd", required_argument, NULL, 'I'},
        {"cmdline", required_argument, NULL, 'C'}, {"cpus", required_argument, NULL, 'c'},
        {"mem", required_argument, NULL, 'm'},    {"nic", required_argument, NULL, 'n'},
        {"ready-line", required_argument, NULL, 'r'}, {"vm", required_argument, NULL, 'v'},
        {"snapshot", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
    if (argc < 2)
        die("template: add|ls|rm|inspect|derive");
    const char *sub = argv[1];
    json_t *body = json_object();
    json_t *nics = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "i:F:k:I:C:c:m:n:r:v:S:", o, NULL)) != -1) {
        switch (c) {
        case 'i': {
            char *abs = realpath(optarg, NULL);
            json_object_set_new(body, "image", json_string(abs ? abs : optarg));
            free(abs);
            break;
        }
        case 'F': json_object_set_new(body, "format", json_string(optarg)); break;
        case 'k':
        case 'I': {
            char *abs = realpath(optarg, NULL);
            json_object_set_new(body, c == 'k' ? "kernel" : "initrd",
                                json_string(abs ? abs : optarg));
            free(abs);
            break;
        }
        case 'C': json_object_set_new(body, "cmdline", json_string(optarg)); break;
        case 'c': json_object_set_new(body, "cpus", json_integer(atoi(optarg))); break;
        case 'm': json_object_set_new(body, "mem", json_string(optarg)); break;
        case 'n':
            if (!nics)
                nics = json_array();
            json_array_append_new(nics, nic_arg(optarg));
            break;
        case 'r': json_object_set_new(body, "ready_line", json_string(optarg)); break;
        case 'v': json_object_set_new(body, "vm", json_string(optarg)); break;
        case 'S': json_object_set_new(body, "snapshot", json_string(optarg)); break;
        default: exit(2);
        }
    }
    if (nics)
        json_object_set_new(body, "nics", nics);
    if (!strcmp(sub, "ls")) {
        json_t *a = GET("/v1/templates");
        if (json_out) {
            print_json(a);
        } else {
            size_t i;
            json_t *t;
            char s1[32], s2[32];
            printf("%-16s %-6s %8s %4s %6s %-24s %6s %-12s %s\n", "NAME", "FORMAT", "SIZE", "CPUS",
                   "MEM", "NICS", "GUESTS", "SHA256", "IMAGE");
            json_array_foreach(a, i, t) {
                char nl[128] = "";
                size_t k;
                json_t *n;
                json_array_foreach(json_object_get(t, "nics"), k, n) {
                    if (k)
                        strncat(nl, ",", sizeof(nl) - strlen(nl) - 1);
                    strncat(nl, json_string_value(n), sizeof(nl) - strlen(nl) - 1);
                }
                printf("%-16s %-6s %8s %4lld %6s %-24s %6lld %.12s %s\n", str(t, "name"),
                       str(t, "format"), fmt_bytes(s1, sizeof(s1), num(t, "image_size")),
                       num(t, "cpus"), fmt_bytes(s2, sizeof(s2), num(t, "mem")),
                       nl[0] ? nl : "-", num(t, "guests"), str(t, "sha256"), str(t, "image"));
            }
        }
        json_decref(a);
        json_decref(body);
        return 0;
    }
    if (optind + 1 >= argc)
        die("template %s: a template name is needed", sub);
    char path[512];
    json_t *r;
    if (!strcmp(sub, "add")) {
        json_object_set_new(body, "name", json_string(argv[optind + 1]));
        r = send_json("POST", "/v1/templates", body);
        if (json_out)
            print_json(r);
        else if (json_object_get(r, "snapshot"))
            printf("template %s added (warm: clones of snapshot %s)\n", str(r, "name"),
                   str(r, "snapshot"));
        else
            printf("template %s added (sha256 %s)\n", str(r, "name"), str(r, "sha256"));
    } else if (!strcmp(sub, "rm")) {
        snprintf(path, sizeof(path), "/v1/templates/%s", argv[optind + 1]);
        r = request("DELETE", path, NULL, 0, NULL, NULL);
        json_out ? print_json(r) : (void)printf("template %s removed\n", argv[optind + 1]);
    } else if (!strcmp(sub, "inspect")) {
        snprintf(path, sizeof(path), "/v1/templates/%s", argv[optind + 1]);
        print_json(r = GET(path));
    } else if (!strcmp(sub, "derive")) {
        json_object_set_new(body, "name", json_string(argv[optind + 1]));
        r = send_json("POST", "/v1/templates/derive", body);
        json_out ? print_json(r)
                 : (void)printf("template %s derived from %s (delta %s, sha256 %s)\n",
                                str(r, "name"), str(r, "parent"), str(r, "image"),
                                str(r, "sha256"));
    } else {
        die("template: unknown command '%s'", sub);
    }
    json_decref(r);
    json_decref(body);
    return 0;
}

/* ---- events and ranges -------------------------------------------------------------- */

struct stream {
    char *line;
    size_t n;
    int (*on_event)(json_t *e, void *ctx); /* non-zero: stop */
    void *ctx;
    int stop;
};

static size_t on_stream(char *d, size_t sz, size_t nm, void *u)
{
    struct stream *s = u;
    size_t n = sz * nm;
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '\n') {
            s->line = realloc(s->line, s->n + 2);
            s->line[s->n++] = d[i];
            continue;
        }
        if (s->n) {
            s->line[s->n] = 0;
            json_t *e = json_loads(s->line, 0, NULL);
            if (e && s->on_event(e, s->ctx))
                s->stop = 1;
            json_decref(e);
        }
        s->n = 0;
        if (s->stop)
            return 0; /* ends the transfer */
    }
    return n;
}

static void follow_events(const char *query, int (*fn)(json_t *, void *), void *ctx)
{
    char path[512];
    snprintf(path, sizeof(path), "/v1/events?follow=1%s", query);
    CURL *c = curl_easy_init();
    char *u = url_for(path);
    struct stream s = {NULL, 0, fn, ctx, 0};
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock_path);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK && !s.stop)
        die("events: %s", curl_easy_strerror(rc));
    curl_easy_cleanup(c);
    free(u);
    free(s.line);
}

static int print_event(json_t *e, void *ctx)
{
    (void)ctx;
    if (json_out) {
        char *t = json_dumps(e, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
    } else {
        time_t t = (time_t)(num(e, "time") / 1000);
        struct tm tm;
        char ts[32];
        localtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
        json_t *copy = json_deep_copy(e);
        json_object_del(copy, "type");
        json_object_del(copy, "time");
        json_object_del(copy, "name");
        json_object_del(copy, "seq");
        char *rest = json_dumps(copy, JSON_COMPACT);
        printf("%s.%03lld %-18s %-32s %s\n", ts, num(e, "time") % 1000, str(e, "type"),
               str(e, "name"), strcmp(rest, "{}") ? rest : "");
        free(rest);
        json_decref(copy);
    }
    fflush(stdout);
    return 0;
}

static int cmd_events(int argc, char **argv)
{
    static const struct option o[] = {{"since", required_argument, NULL, 's'},
                                      {"type", required_argument, NULL, 't'},
                                      {"name", required_argument, NULL, 'n'},
                                      {NULL, 0, NULL, 0}};
    char q[400] = "";
    int c;
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "s:t:n:", o, NULL)) != -1) {
        char part[160];
        switch (c) {
        case 's': snprintf(part, sizeof(part), "&since=%s", optarg); break;
        case 't': snprintf(part, sizeof(part), "&type=%s", optarg); break;
        case 'n': snprintf(part, sizeof(part), "&name=%s", optarg); break;
        default: exit(2);
        }
        strncat(q, part, sizeof(q) - strlen(q) - 1);
    }
    follow_events(q, print_event, NULL);
    return 0;
}

struct progress {
    const char *range;
    long total, created, started, ready, failed;
    bool tty, said_started;
    int rc;
    struct timespec t0;
};

static double since_s(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static int on_range_event(json_t *e, void *ctx)
{
    struct progress *p = ctx;
    const char *type = str(e, "type");
    if (json_out) {
        print_event(e, NULL);
    }
    if (!strcmp(type, "range.progress")) {
        p->created = num(e, "created");
        p->started = num(e, "started");
        p->ready = num(e, "ready");
        p->failed = num(e, "failed");
    } else if (!strcmp(type, "range.failed_guest") && !json_out) {
        fprintf(stderr, "%s%s: %s\n", p->tty ? "\n" : "", str(e, "name"), str(e, "error"));
    }
    bool done = !strcmp(type, "range.up.done");
    if (done) {
        p->created = num(e, "created");
        p->started = num(e, "started");
        p->ready = num(e, "ready");
        p->failed = num(e, "failed");
        p->rc = p->failed ? 1 : 0;
    }
    /* not a terminal: one line when every guest is started, one at the end */
    bool all_started = p->started + p->failed >= p->total && !p->said_started;
    if (!p->tty && all_started && !done)
        p->said_started = true;
    if (!json_out && (p->tty || done || (all_started && !strcmp(type, "range.progress")))) {
        printf("%srange %s: %ld/%ld created, %ld started, %ld ready, %ld failed (%.1fs)%s",
               p->tty ? "\r" : "", p->range, p->created, p->total, p->started, p->ready,
               p->failed, since_s(&p->t0), p->tty && !done ? "" : "\n");
        fflush(stdout);
    }
    return done;
}

/* `range reset NAME [--to CHECKPOINT] [GUEST...]` */
static json_t *range_reset(int argc, char **argv)
{
    char path[512];
    json_t *b = NULL;
    const char *to = NULL;
    for (int i = 1; i < argc; i++) { /* [GUEST...]: those only */
        if (!strcmp(argv[i], "--to")) {
            if (++i == argc)
                die("range reset: --to CHECKPOINT");
            to = argv[i];
            continue;
        }
        if (!b)
            b = json_object();
        if (!json_object_get(b, "vms"))
            json_object_set_new(b, "vms", json_array());
        json_array_append_new(json_object_get(b, "vms"), json_string(argv[i]));
    }
    if (to) {
        if (!b)
            b = json_object();
        json_object_set_new(b, "to", json_string(to));
    }
    snprintf(path, sizeof(path), "/v1/ranges/%s/reset", argv[0]);
    json_t *r = send_json("POST", path, b);
    json_decref(b);
    if (json_out)
        print_json(r);
    else if (to)
        printf("range %s reset: %lld guests restored from checkpoint %s in %lld ms\n", argv[0],
               num(r, "reset"), to, num(r, "reset_us") / 1000);
    else
        printf("range %s reset: %lld guests on fresh overlays\n", argv[0], num(r, "reset"));
    return r;
}

/* `range checkpoint NAME CP | checkpoints NAME | checkpoint-rm NAME CP` */
static json_t *range_checkpoint(const char *sub, int argc, char **argv)
{
    char path[512];
    json_t *r;
    char s1[32];
    if (!strcmp(sub, "checkpoints")) {
        snprintf(path, sizeof(path), "/v1/ranges/%s/checkpoints", argv[0]);
        r = GET(path);
        if (json_out) {
            print_json(r);
            return r;
        }
        size_t i;
        json_t *c;
        printf("%-24s %6s %10s %s\n", "CHECKPOINT", "GUESTS", "ALLOCATED", "CREATED");
        json_array_foreach(r, i, c) {
            time_t t = (time_t)(num(c, "created") / 1000);
            char when[32];
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
            printf("%-24s %6lld %10s %s\n", str(c, "name"), num(c, "guests"),
                   fmt_bytes(s1, sizeof(s1), num(c, "allocated")), when);
        }
        return r;
    }
    if (argc != 2)
        die("range %s: NAME CHECKPOINT", sub);
    if (!strcmp(sub, "checkpoint-rm")) {
        snprintf(path, sizeof(path), "/v1/ranges/%s/checkpoints/%s", argv[0], argv[1]);
        r = request("DELETE", path, NULL, 0, NULL, NULL);
        json_out ? print_json(r)
                 : (void)printf("checkpoint %s of range %s removed\n", argv[1], argv[0]);
        return r;
    }
    snprintf(path, sizeof(path), "/v1/ranges/%s/checkpoints", argv[0]);
    json_t *b = json_pack("{ss}", "name", argv[1]);
    r = send_json("POST", path, b);
    json_decref(b);
    json_out ? print_json(r)
             : (void)printf("checkpoint %s of range %s: %lld guests (paused %lld ms, %s)\n",
                            argv[1], argv[0], num(r, "guests"), num(r, "paused_us") / 1000,
                            fmt_bytes(s1, sizeof(s1), num(r, "allocated")));
    return r;
}

/* `range up` on a cluster (docs/cluster.md "Ranges"): where the guests went;
 * then, unless --detach or --json, the range's status every half second
 * until each guest is ready, failed or lost (exit 1 unless all are ready),
 * for at most CLUSTER_FOLLOW_S. */
#define CLUSTER_FOLLOW_S 900
static int range_placed(json_t *r, bool detach, bool tty)
{
    const char *node;
    json_t *v;
    char path[512];
    long long last = -1;
    int rc = 1;
    struct timespec t0, now;

    if (json_out) {
        print_json(r);
        json_decref(r);
        return 0;
    }
    json_object_foreach(json_object_get(r, "placement"), node, v)
        printf("  %-24s %lld guests\n", node, (long long)json_integer_value(v));
    printf("placed %lld, kept %lld\n", num(r, "placed"), num(r, "kept"));
    snprintf(path, sizeof(path), "/v1/ranges/%s", str(r, "name"));
    json_decref(r);
    if (detach)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        json_t *st = GET(path);
        long long total = num(st, "guests"), ready = num(st, "ready"), failed = num(st, "failed");
        long long lost = num(st, "lost"), key = ready + (failed << 20) + (lost << 40);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double s = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        bool done = ready + failed + lost >= total;
        if (tty || key != last || done)
            printf("%srange %s: %lld/%lld ready, %lld failed, %lld lost (%.1fs)%s", tty ? "\r" : "",
                   str(st, "name"), ready, total, failed, lost, s, tty && !done ? "" : "\n");
        fflush(stdout);
        last = key;
        json_decref(st);
        if (done) {
            rc = ready == total ? 0 : 1;
            break;
        }
        if (s > CLUSTER_FOLLOW_S) {
            printf("%sstill coming up after %d s: `herdctl range status` follows it\n",
                   tty ? "\n" : "", CLUSTER_FOLLOW_S);
            break;
        }
        nanosleep(&(struct timespec){0, 500000000}, NULL);
    }
    return rc;
}

static int cmd_range(int argc, char **argv)
{
    if (argc < 3 && !(argc == 2 && !strcmp(argv[1], "ls")))
        die("range: up FILE | down NAME | status NAME | reset NAME [--to CHECKPOINT] [GUEST...] "
            "| checkpoint NAME CHECKPOINT | checkpoints NAME | checkpoint-rm NAME CHECKPOINT | ls");
    const char *sub = argv[1];
    char path[512];
    json_t *r;
    if (!strcmp(sub, "up")) {
        bool detach = argc > 3 && !strcmp(argv[3], "--detach");
        size_t len;
        char *yaml = read_file(argv[2], &len);
        struct progress p = {.tty = isatty(1) != 0};
        clock_gettime(CLOCK_MONOTONIC, &p.t0);
        r = request("POST", "/v1/ranges", yaml, len, "application/yaml", NULL);
        free(yaml);
        p.range = str(r, "name");
        p.total = num(r, "guests");
        if (!json_out)
            printf("range %s: %ld guests\n", p.range, p.total);
        if (json_is_true(json_object_get(r, "cluster"))) /* placed on the cluster's nodes */
            return range_placed(r, detach, p.tty);
        if (detach) {
            if (json_out)
                print_json(r);
            json_decref(r);
            return 0;
        }
        char q[200];
        snprintf(q, sizeof(q), "&since=%lld&name=%s&type=range.", num(r, "event_seq"), p.range);
        follow_events(q, on_range_event, &p);
        json_decref(r);
        return p.rc;
    }
    if (!strcmp(sub, "ls")) {
        r = GET("/v1/ranges");
        if (json_out) {
            print_json(r);
        } else {
            size_t i;
            json_t *x;
            printf("%-24s %-10s %6s %6s %6s\n", "NAME", "STATE", "GUESTS", "READY", "FAILED");
            json_array_foreach(r, i, x)
                printf("%-24s %-10s %6lld %6lld %6lld\n", str(x, "name"), str(x, "state"),
                       num(x, "guests"), num(x, "ready"), num(x, "failed"));
        }
    } else if (!strcmp(sub, "status")) {
        snprintf(path, sizeof(path), "/v1/ranges/%s", argv[2]);
        r = GET(path);
        if (json_out) {
            print_json(r);
        } else {
            printf("range %s: %s, %lld guests, %lld running, %lld ready, %lld failed, %lld not "
                   "started\n",
                   str(r, "name"), str(r, "state"), num(r, "guests"), num(r, "running"),
                   num(r, "ready"), num(r, "failed"), num(r, "not_started"));
            if (json_is_true(json_object_get(r, "cluster"))) /* lost: docs/cluster.md */
                printf("on the cluster: %lld lost\n", num(r, "lost"));
            vm_table(json_object_get(r, "vms"));
        }
    } else if (!strcmp(sub, "down")) {
        snprintf(path, sizeof(path), "/v1/ranges/%s", argv[2]);
        r = request("DELETE", path, NULL, 0, NULL, NULL);
        json_out ? print_json(r)
                 : (void)printf("range %s down: %lld guests removed\n", argv[2],
                                num(r, "removed"));
    } else if (!strcmp(sub, "reset")) {
        r = range_reset(argc - 2, argv + 2);
    } else if (!strcmp(sub, "checkpoint") || !strcmp(sub, "checkpoints") ||
               !strcmp(sub, "checkpoint-rm")) {
        r = range_checkpoint(sub, argc - 2, argv + 2);
    } else {
        die("range: unknown command '%s'", sub);
    }
    json_decref(r);
    return 0;
}

static int cmd_node(int argc, char **argv)
{
    if (argc < 2)
        die("node: profile | plan FILE | network");
    json_t *r;
    char b1[32], b2[32], b3[32];
    if (!strcmp(argv[1], "profile")) {
        r = GET("/v1/node");
        if (json_out) {
            print_json(r);
        } else {
            json_t *h = json_object_get(r, "host"), *u = json_object_get(r, "use"),
                   *l = json_object_get(r, "limits");
            printf("node      %s (herdd %s, up %llds)\n", str(r, "node"), str(r, "version"),
                   num(r, "uptime_ms") / 1000);
            printf("cpus      %lld (vCPU limit %lld, in use %lld)\n", num(h, "cpus"),
                   num(l, "vcpus"), num(u, "vcpus"));
            printf("memory    %s total, %s available (guest limit %s, in use %s)\n",
                   fmt_bytes(b1, sizeof(b1), num(h, "mem_total")),
                   fmt_bytes(b2, sizeof(b2), num(h, "mem_available")),
                   fmt_bytes(b3, sizeof(b3), num(l, "mem")), str(u, "mem_text"));
            printf("          committed %s of %s (memory_overcommit %g), resident %s (measured)\n",
                   str(u, "mem_text"), fmt_bytes(b1, sizeof(b1), num(l, "mem_commit")),
                   json_number_value(json_object_get(json_object_get(r, "policy"),
                                                     "memory_overcommit")),
                   fmt_bytes(b2, sizeof(b2), num(u, "resident")));
            printf("disk      %s free of %s in %s\n", fmt_bytes(b1, sizeof(b1), num(h, "disk_free")),
                   fmt_bytes(b2, sizeof(b2), num(h, "disk_total")), str(r, "state_dir"));
            printf("guests    %lld (%lld running, %lld ready), %lld templates\n", num(u, "guests"),
                   num(u, "running"), num(u, "ready"), num(u, "templates"));
            size_t i;
            json_t *b;
            json_array_foreach(json_object_get(r, "bridges"), i, b)
                printf("bridge    %-14s %-15s mtu %lld %s\n", str(b, "role"), str(b, "bridge"),
                       num(b, "mtu"), json_is_true(json_object_get(b, "present")) ? "up" : "MISSING");
        }
    } else if (!strcmp(argv[1], "plan")) {
        if (argc < 3)
            die("node plan FILE");
        size_t len;
        char *yaml = read_file(argv[2], &len);
        r = request("POST", "/v1/node/plan", yaml, len, "application/yaml", NULL);
        free(yaml);
        if (json_out) {
            print_json(r);
        } else {
            size_t i;
            json_t *row;
            printf("%-34s %-12s %4s %6s %6s %8s %s\n", "SCENARIO/ROLE", "TEMPLATE", "CPUS", "MEM",
                   "COUNT", "FITS", "BOUND BY");
            json_array_foreach(json_object_get(r, "rows"), i, row) {
                char fits[32];
                json_t *f = json_object_get(row, "fits");
                snprintf(fits, sizeof(fits), "%s", json_is_null(f) ? "any" : "");
                if (!json_is_null(f))
                    snprintf(fits, sizeof(fits), "%lld", (long long)json_integer_value(f));
                printf("%-34s %-12s %4lld %6s %6lld %8s %s\n", str(row, "role"),
                       str(row, "template"), num(row, "cpus"),
                       fmt_bytes(b1, sizeof(b1), num(row, "mem")), num(row, "count"), fits,
                       str(row, "binds"));
            }
            printf("memory: the range commits %s (limit %s, %s committed now), ",
                   fmt_bytes(b1, sizeof(b1), num(r, "req_mem")),
                   fmt_bytes(b2, sizeof(b2), num(r, "mem_commit_limit")),
                   fmt_bytes(b3, sizeof(b3), num(r, "use_mem")));
            printf("expected to hold %s (limit %s, %s held now)\n",
                   fmt_bytes(b1, sizeof(b1), num(r, "req_resident")),
                   fmt_bytes(b2, sizeof(b2), num(r, "mem_limit")),
                   fmt_bytes(b3, sizeof(b3), num(r, "use_resident")));
            printf("range %s (%lld guests): %s\n", str(r, "range"), num(r, "guests"),
                   str(r, "message"));
        }
    } else if (!strcmp(argv[1], "network")) {
        r = send_json("POST", "/v1/node/network", NULL);
        json_out ? print_json(r) : (void)printf("bridges set up\n");
    } else {
        die("node: unknown command '%s'", argv[1]);
    }
    json_decref(r);
    return 0;
}

/* "probe:120 web:30(memory)": per template, guests of its shape that still
 * fit on the node and, when bounded, the limit that binds */
static void template_fits(json_t *templates, char *out, size_t size)
{
    const char *name;
    json_t *t;
    size_t at = 0;

    out[0] = 0;
    json_object_foreach(templates, name, t) {
        json_t *f = json_object_get(t, "fits");
        char n[32];
        snprintf(n, sizeof(n), json_is_integer(f) ? "%lld" : "any",
                 (long long)json_integer_value(f));
        int w = snprintf(out + at, size - at, "%s%s:%s", at ? " " : "", name, n);
        if (w < 0 || (size_t)w >= size - at)
            break;
        at += (size_t)w;
    }
    if (!at)
        snprintf(out, size, "-");
}

static void cluster_nodes_table(json_t *r)
{
    size_t i;
    json_t *n;
    char b1[32], b2[32], fits[256];

    printf("%-20s %-16s %4s %7s %9s %-17s %s\n", "NAME", "ADDRESS", "CPUS", "MEM", "DISK FREE",
           "LEASE", "FITS (TEMPLATE:GUESTS)");
    json_array_foreach(json_object_get(r, "nodes"), i, n) {
        if (json_object_get(n, "error")) {
            printf("%-20s %s\n", str(n, "name"), str(n, "error"));
            continue;
        }
        template_fits(json_object_get(n, "templates"), fits, sizeof(fits));
        printf("%-20s %-16s %4lld %7s %9s %-17s %s\n", str(n, "name"), str(n, "address"),
               num(n, "cpus"), fmt_bytes(b1, sizeof(b1), num(n, "mem_total")),
               fmt_bytes(b2, sizeof(b2), num(n, "disk_free")), str(n, "lease"), fits);
    }
}

/* cluster status's images: the port, what was served and fetched, each
 * copy in progress with its bytes (docs/cluster.md "Parent images") */
static void cluster_images_text(json_t *im)
{
    char b1[32], b2[32];
    size_t i;
    json_t *c;

    if (!json_is_object(im))
        return;
    if (json_is_true(json_object_get(im, "serving")))
        printf("images      served on port %lld: %lld request(s), %s; fetched %lld file(s), "
               "%s\n", num(im, "port"), num(im, "served"),
               fmt_bytes(b1, sizeof(b1), num(im, "served_bytes")), num(im, "fetched"),
               fmt_bytes(b2, sizeof(b2), num(im, "fetched_bytes")));
    else
        printf("images      not served (%s); fetched %lld file(s)\n",
               str(im, "serve_error")[0] ? str(im, "serve_error") : "image_port 0",
               num(im, "fetched"));
    json_array_foreach(json_object_get(im, "copies"), i, c) {
        printf("  copy      %-16s %s", str(c, "template"), str(c, "state"));
        if (json_object_get(c, "file"))
            printf(": %s from %s, %s of %s", str(c, "file"), str(c, "from"),
                   fmt_bytes(b1, sizeof(b1), num(c, "done")),
                   fmt_bytes(b2, sizeof(b2), num(c, "total")));
        if (json_object_get(c, "error"))
            printf(": %s", str(c, "error"));
        printf("\n");
    }
}

static void cluster_status_text(json_t *r)
{
    json_t *left = json_object_get(r, "ttl_left");
    size_t i;
    json_t *e;

    printf("node        %s (%s)\n", str(r, "node"), str(r, "address"));
    printf("registered  %s as %s, %lld registration(s)\n",
           json_is_true(json_object_get(r, "registered")) ? "yes" : "NO", str(r, "key"),
           num(r, "registrations"));
    printf("lease       %s, TTL %lld s, ", str(r, "lease"), num(r, "ttl"));
    if (json_is_integer(left))
        printf("%lld s left\n", (long long)json_integer_value(left));
    else
        printf("time left unknown (%s)\n", str(r, "ttl_error"));
    printf("etcd        %s in use of", str(r, "endpoint"));
    json_array_foreach(json_object_get(r, "endpoints"), i, e)
        printf(" %s", json_string_value(e) ? json_string_value(e) : "?");
    printf("\n");
    if (str(r, "last_error")[0] && strcmp(str(r, "last_error"), "-"))
        printf("last error  %s\n", str(r, "last_error"));
    cluster_images_text(json_object_get(r, "images"));
}

static int cmd_cluster(int argc, char **argv)
{
    json_t *r;

    if (argc < 2)
        die("cluster: nodes | status");
    if (!strcmp(argv[1], "nodes"))
        r = GET("/v1/cluster/nodes");
    else if (!strcmp(argv[1], "status"))
        r = GET("/v1/cluster/status");
    else
        die("cluster: unknown command '%s' (nodes | status)", argv[1]);
    if (json_out)
        print_json(r);
    else if (!strcmp(argv[1], "nodes"))
        cluster_nodes_table(r);
    else
        cluster_status_text(r);
    json_decref(r);
    return 0;
}

static int cmd_audit(int argc, char **argv)
{
    if (argc < 2)
        die("audit: ls [N] | verify");
    json_t *r;
    if (!strcmp(argv[1], "ls")) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/audit?limit=%s", argc > 2 ? argv[2] : "50");
        r = GET(path);
        if (json_out) {
            print_json(r);
        } else {
            size_t i;
            json_t *e;
            printf("%6s %-24s %6s %-9s %-28s %-24s %s\n", "SEQ", "TIME", "UID", "ROLE", "ACTION",
                   "TARGET", "RESULT");
            json_array_foreach(r, i, e)
                printf("%6lld %-24s %6lld %-9s %-28s %-24s %s\n", num(e, "seq"), str(e, "time"),
                       num(e, "uid"), str(e, "role"), str(e, "action"), str(e, "target"),
                       str(e, "result"));
        }
        json_decref(r);
        return 0;
    }
    if (!strcmp(argv[1], "verify")) {
        r = GET("/v1/audit/verify");
        bool ok = json_is_true(json_object_get(r, "ok"));
        if (json_out)
            print_json(r);
        else
            printf("audit log %s: %s (%lld entries)\n", str(r, "path"), str(r, "message"),
                   num(r, "entries"));
        json_decref(r);
        return ok ? 0 : 1;
    }
    die("audit: unknown command '%s'", argv[1]);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: herdctl [--socket PATH] [--json] COMMAND ...\n\n"
            "  vm ls [--range R] | create NAME --template T [--cpus N] [--mem M] [--nic ROLE|JSON]...\n"
            "     [--restart no|on-failure|always] [--start]\n"
            "  vm create NAME --snapshot S [--restart ...] [--start]   (restored from S)\n"
            "  vm snapshot VM NAME       (pauses a running guest, snapshots it, resumes it)\n"
            "  vm restore VM SNAPSHOT    (the guest back to that snapshot: RAM, devices, disk)\n"
            "  vm start|stop|shutdown|kill|pause|resume|reboot NAME... [--timeout S]\n"
            "  vm rm NAME... [--force] | inspect NAME | logs NAME [--lines N] [--vmm] [--follow]\n"
            "  vm net NAME...            (kernel filter counters per NIC: accepted, drops by reason)\n"
            "  vm console NAME           (attach to the serial console; Ctrl-] detaches)\n"
            "  template add NAME --image P --format raw|qcow2 --kernel K [--initrd I]\n"
            "     [--cmdline C] [--cpus N] [--mem M] [--nic ROLE|JSON]... [--ready-line S]\n"
            "  template derive NAME --vm STOPPED-GUEST [--cmdline C] [--cpus N] [--mem M]\n"
            "  template add NAME --snapshot S   (a warm template: its guests are clones of S)\n"
            "  template ls | rm NAME | inspect NAME\n"
            "  snapshot ls | show NAME | rm NAME\n"
            "  range up FILE.yaml [--detach] | down NAME | status NAME | reset NAME [GUEST...] | ls\n"
            "  range checkpoint NAME CP | checkpoints NAME | checkpoint-rm NAME CP\n"
            "  range reset NAME --to CP [GUEST...]   (each guest back to its snapshot in CP)\n"
            "  node profile | plan FILE.yaml | network\n"
            "  cluster nodes | status    (the nodes registered in etcd; this node's registration)\n"
            "  events [--since N] [--type PREFIX] [--name NAME]\n"
            "  audit ls [N] | verify\n\n"
            "The socket defaults to $HERD_SOCKET, else /var/lib/herd/herdd.sock.\n");
}

int main(int argc, char **argv)
{
    static const struct option o[] = {{"socket", required_argument, NULL, 'S'},
                                      {"json", no_argument, NULL, 'j'},
                                      {"help", no_argument, NULL, 'h'},
                                      {NULL, 0, NULL, 0}};
    int c;
    sock_path = getenv("HERD_SOCKET") ? getenv("HERD_SOCKET") : "/var/lib/herd/herdd.sock";
    /* global options come before the command */
    while ((c = getopt_long(argc, argv, "+S:jh", o, NULL)) != -1) {
        switch (c) {
        case 'S': sock_path = optarg; break;
        case 'j': json_out = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    /* --json is also accepted after the command */
    int n = 0;
    char **args = calloc((size_t)argc + 1, sizeof(char *));
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json_out = true;
        else
            args[n++] = argv[i];
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *cmd = args[0];
    int rc;
    if (!strcmp(cmd, "vm"))
        rc = cmd_vm(n, args);
    else if (!strcmp(cmd, "template"))
        rc = cmd_template(n, args);
    else if (!strcmp(cmd, "range"))
        rc = cmd_range(n, args);
    else if (!strcmp(cmd, "node"))
        rc = cmd_node(n, args);
    else if (!strcmp(cmd, "events"))
        rc = cmd_events(n, args);
    else if (!strcmp(cmd, "audit"))
        rc = cmd_audit(n, args);
    else if (!strcmp(cmd, "snapshot"))
        rc = cmd_snapshot(n, args);
    else if (!strcmp(cmd, "cluster"))
        rc = cmd_cluster(n, args);
    else {
        usage(stderr);
        rc = 2;
    }
    free(args);
    curl_global_cleanup();
    return rc;
}
