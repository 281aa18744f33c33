/* The four network roles of a node. */
#include <errno.h>
#include <string.h>

#include "herd/netdev.h"

static const struct {
    const char *name;
    char letter;
} roles[NETDEV_ROLE_COUNT] = {
    [NETDEV_ROLE_MANAGEMENT] = {"management", 'm'},
    [NETDEV_ROLE_STORAGE] = {"storage", 's'},
    [NETDEV_ROLE_SERVICE] = {"service", 'v'},
    [NETDEV_ROLE_COMMUNICATION] = {"communication", 'c'},
};

const char *netdev_role_name(enum netdev_role role)
{
    if ((unsigned)role >= NETDEV_ROLE_COUNT)
        return "?";
    return roles[role].name;
}

char netdev_role_letter(enum netdev_role role)
{
    if ((unsigned)role >= NETDEV_ROLE_COUNT)
        return '?';
    return roles[role].letter;
}

int netdev_role_parse(const char *name, enum netdev_role *out)
{
    for (int i = 0; i < NETDEV_ROLE_COUNT; i++) {
        if (strcmp(name, roles[i].name) == 0) {
            *out = (enum netdev_role)i;
            return 0;
        }
    }
    return -EINVAL;
}
