/*
 * What each herd-vmm thread class may call (vmm/seccomp_policy.c). Private
 * to vmm/jail.c.
 */
#ifndef HERD_SECCOMP_POLICY_H
#define HERD_SECCOMP_POLICY_H

#include <seccomp.h>
#include <stddef.h>

#include "herd/error.h"
#include "herd/jail.h"

/* Adds class c's allow rules to ctx (default action: trap). */
int seccomp_policy_add(scmp_filter_ctx ctx, enum jail_class c, struct herd_err *err);

#endif
