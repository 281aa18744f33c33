/* netdev error reporting: a field path and a one-line message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "herd/netdev.h"

int netdev_err_set(struct netdev_err *err, int rc, const char *field,
                   const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return rc;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

void netdev_err_clear(struct netdev_err *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}
