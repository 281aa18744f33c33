/*
 * Freestanding memory/string helpers and snprintf for herd-probe. gcc may
 * emit calls to memset/memcpy/memmove/memcmp itself, so those keep their
 * standard names and semantics.
 */
#include "lib.h"

void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp < sp) {
        while (n--)
            *dp++ = *sp++;
    } else {
        while (n--)
            dp[n] = sp[n];
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x != y)
            return x < y ? -1 : 1;
        if (!x)
            return 0;
    }
    return 0;
}

/* Does the counted string [a, a+alen) equal the C string b? */
bool streq_n(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0, base = 10;
    size_t i = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i == len)
        return false;
    for (; i < len; i++) {
        char c = s[i];
        uint64_t d;
        if (c >= '0' && c <= '9')
            d = (uint64_t)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = (uint64_t)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = (uint64_t)(c - 'A' + 10);
        else
            return false;
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

struct out {
    char *buf;
    size_t n, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->n)
        o->buf[o->len] = c;
    o->len++;
}

static void put_padded(struct out *o, const char *s, size_t slen, int width, bool left, char pad)
{
    size_t w = width > 0 ? (size_t)width : 0;
    if (!left)
        for (size_t i = slen; i < w; i++)
            put(o, pad);
    for (size_t i = 0; i < slen; i++)
        put(o, s[i]);
    if (left)
        for (size_t i = slen; i < w; i++)
            put(o, ' ');
}

int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
    struct out o = { buf, n, 0 };
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        f++;
        bool left = false;
        char pad = ' ';
        for (;; f++) {
            if (*f == '-')
                left = true;
            else if (*f == '0')
                pad = '0';
            else
                break;
        }
        int width = 0;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        int lng = 0;
        while (*f == 'l' || *f == 'z') {
            lng = *f == 'z' ? 2 : lng + 1;
            f++;
        }
        char tmp[24];
        size_t tl = 0;
        switch (*f) {
        case '%':
            put(&o, '%');
            break;
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            put_padded(&o, tmp, 1, width, left, ' ');
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            put_padded(&o, s, strlen(s), width, left, ' ');
            break;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'p': {
            uint64_t v;
            bool neg = false;
            unsigned base = (*f == 'x' || *f == 'X' || *f == 'p') ? 16 : 10;
            if (*f == 'p') {
                v = (uint64_t)(uintptr_t)va_arg(ap, void *);
                put(&o, '0');
                put(&o, 'x');
            } else if (*f == 'd' || *f == 'i') {
                int64_t sv = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
                neg = sv < 0;
                v = neg ? (uint64_t)0 - (uint64_t)sv : (uint64_t)sv;
            } else {
                v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
            }
            const char *digits = *f == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            char rev[24];
            size_t rl = 0;
            do {
                rev[rl++] = digits[v % base];
                v /= base;
            } while (v);
            if (neg)
                tmp[tl++] = '-';
            while (rl)
                tmp[tl++] = rev[--rl];
            if (neg && pad == '0' && !left) {
                /* sign goes before the zero padding */
                put(&o, '-');
                put_padded(&o, tmp + 1, tl - 1, width - 1, left, pad);
            } else {
                put_padded(&o, tmp, tl, width, left, left ? ' ' : pad);
            }
            break;
        }
        case '\0':
            f--; /* lone % at the end */
            break;
        default:
            put(&o, '%');
            put(&o, *f);
            break;
        }
    }
    if (n)
        o.buf[o.len < n ? o.len : n - 1] = '\0';
    return (int)o.len;
}

int snprintf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r;
}
