/*
 * herd_err: the one error record blockdev, netdev, herd-vmm and herdd share.
 *
 * A library function that can fail in a way worth explaining takes a
 * struct herd_err * (NULL when the caller does not want the detail) and fills
 * it on failure:
 *   code  the negative errno the function also returns (0: no errno, e.g. one
 *         of herdd's own request checks);
 *   field the offending input, as a dotted path into the configuration or
 *         request ("roles.communication.segments[0].vxlan.vni", "disk"), or ""
 *         when the error is not about one field;
 *   msg   one line for a human: what is wrong and what was expected.
 * The record travels unchanged up to herdd, which hands &hd_err.lib to the
 * libraries and adds only the HTTP status (ctl/herdd/herdd.h); API clients get
 * {"error": msg, "field": field}. See docs/herdd.md, "Errors".
 *
 * The helpers are static inline so that every library (each its own archive,
 * linked alone by its tests and tools) has them without a common library.
 */
#ifndef HERD_ERROR_H
#define HERD_ERROR_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HERD_ERR_FIELDS \
    int code;           \
    char field[96];     \
    char msg[512]

struct herd_err {
    HERD_ERR_FIELDS;
};

static inline int herd_err_vset(struct herd_err *e, int code, const char *field,
                                const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Fills e (if not NULL) and returns code. */
static inline int herd_err_vset(struct herd_err *e, int code, const char *field,
                                const char *fmt, va_list ap)
{
    if (!e)
        return code;
    e->code = code;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return code;
}

static inline int herd_err_set(struct herd_err *e, int code, const char *field,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static inline int herd_err_set(struct herd_err *e, int code, const char *field,
                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_err_vset(e, code, field, fmt, ap);
    va_end(ap);
    return code;
}

static inline void herd_err_clear(struct herd_err *e)
{
    if (e)
        memset(e, 0, sizeof(*e));
}

#endif
