/*
 * Command-line parsing for herd-probe: space-separated words, keys of the
 * form probe.NAME=VALUE; the last occurrence of a key wins.
 */
#include "cmdline.h"

#include "lib.h"

bool parse_size(const char *s, uint32_t len, uint64_t *out)
{
    uint64_t mul = 1, v;
    if (len == 0)
        return false;
    char c = s[len - 1];
    if (c == 'k' || c == 'K')
        mul = 1ULL << 10;
    else if (c == 'm' || c == 'M')
        mul = 1ULL << 20;
    else if (c == 'g' || c == 'G')
        mul = 1ULL << 30;
    if (mul != 1)
        len--;
    if (!parse_u64(s, len, &v) || v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

static void bad(struct probe_args *a, const char *key, const char *v, uint32_t vlen)
{
    if (a->err[0])
        return;
    char tmp[41];
    uint32_t n = vlen > 40 ? 40 : vlen;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    snprintf(a->err, sizeof(a->err), "bad %s value '%s'", key, tmp);
}

static void parse_tests(struct probe_args *a, const char *v, uint32_t vlen)
{
    a->has_tests = true;
    a->ntests = 0;
    a->tests_overflow = false;
    uint32_t i = 0;
    while (i <= vlen) {
        uint32_t j = i;
        while (j < vlen && v[j] != ',')
            j++;
        uint32_t n = j - i;
        if (n > 0) {
            if (a->ntests == MAX_TESTS) {
                a->tests_overflow = true;
                break;
            }
            if (n > TEST_NAME_MAX - 1)
                n = TEST_NAME_MAX - 1;
            memcpy(a->tests[a->ntests], v + i, n);
            a->tests[a->ntests][n] = '\0';
            a->ntests++;
        }
        i = j + 1;
    }
}

void cmdline_parse(const char *s, struct probe_args *a)
{
    memset(a, 0, sizeof(*a));
    uint32_t i = 0;
    while (s[i]) {
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')
            i++;
        uint32_t start = i;
        while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
            i++;
        const char *w = s + start;
        uint32_t wlen = i - start, eq = 0;
        while (eq < wlen && w[eq] != '=')
            eq++;
        if (eq == wlen)
            continue; /* not key=value */
        const char *v = w + eq + 1;
        uint32_t vlen = wlen - eq - 1;
        if (streq_n(w, eq, "probe.tests")) {
            parse_tests(a, v, vlen);
        } else if (streq_n(w, eq, "probe.mem")) {
            a->has_mem = parse_size(v, vlen, &a->mem) && a->mem > 0;
            if (!a->has_mem)
                bad(a, "probe.mem", v, vlen);
        } else if (streq_n(w, eq, "probe.cpus")) {
            a->has_cpus = parse_u64(v, vlen, &a->cpus) && a->cpus > 0 && a->cpus <= 4096;
            if (!a->has_cpus)
                bad(a, "probe.cpus", v, vlen);
        } else if (streq_n(w, eq, "probe.idle")) {
            a->idle = streq_n(v, vlen, "1") || streq_n(v, vlen, "yes") || streq_n(v, vlen, "true");
        } else if (streq_n(w, eq, "probe.verbose")) {
            a->verbose = streq_n(v, vlen, "1") || streq_n(v, vlen, "yes") || streq_n(v, vlen, "true");
        } else if (streq_n(w, eq, "probe.cpusrc")) {
            if (streq_n(v, vlen, "mptable"))
                a->cpusrc = "mptable";
            else if (streq_n(v, vlen, "madt"))
                a->cpusrc = "madt";
            else
                bad(a, "probe.cpusrc", v, vlen);
        }
    }
}

const char *cmdline_value(const char *s, const char *key, uint32_t *vlen)
{
    const char *found = 0;
    uint32_t klen = (uint32_t)strlen(key), i = 0;
    while (s[i]) {
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')
            i++;
        uint32_t start = i;
        while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
            i++;
        if (i - start > klen && s[start + klen] == '=' && memcmp(s + start, key, klen) == 0) {
            found = s + start + klen + 1;
            *vlen = i - start - klen - 1;
        }
    }
    return found;
}

bool cmdline_u64(const char *s, const char *key, uint64_t dflt, uint64_t *out)
{
    uint32_t n;
    const char *v = cmdline_value(s, key, &n);
    *out = dflt;
    return !v || parse_u64(v, n, out);
}

bool cmdline_size(const char *s, const char *key, uint64_t dflt, uint64_t *out)
{
    uint32_t n;
    const char *v = cmdline_value(s, key, &n);
    *out = dflt;
    return !v || parse_size(v, n, out);
}

bool cmdline_flag(const char *s, const char *key, bool dflt, bool *out)
{
    uint32_t n;
    const char *v = cmdline_value(s, key, &n);
    *out = dflt;
    if (!v)
        return true;
    if (streq_n(v, n, "1") || streq_n(v, n, "yes") || streq_n(v, n, "true") || streq_n(v, n, "on"))
        *out = true;
    else if (streq_n(v, n, "0") || streq_n(v, n, "no") || streq_n(v, n, "false") || streq_n(v, n, "off"))
        *out = false;
    else
        return false;
    return true;
}
