/* capacity: stub, implementation in progress. */
#include <errno.h>
#include <stdlib.h>
#include "herd/capacity.h"

void cap_policy_default(struct cap_policy *p) { (void)p; }
int cap_policy_check(const struct cap_policy *p, char *msg, size_t msglen) { return -ENOSYS; }
uint64_t cap_vcpu_limit(const struct cap_node *node, const struct cap_policy *p) { return 0; }
uint64_t cap_mem_limit(const struct cap_node *node, const struct cap_policy *p) { return 0; }
uint64_t cap_guest_mem(const struct cap_policy *p, uint64_t mem, uint64_t count) { return 0; }
int cap_admit(const struct cap_node *node, const struct cap_policy *p, const struct cap_use *use, const struct cap_item *req, size_t n, enum cap_limit *limit, char *msg, size_t msglen) { return -ENOSYS; }
int cap_plan(const struct cap_node *node, const struct cap_policy *p, const struct cap_use *use, const struct cap_item *req, size_t n, struct cap_plan *out) { return -ENOSYS; }
void cap_plan_free(struct cap_plan *plan) { (void)plan; }
const char *cap_limit_name(enum cap_limit l) { return "none"; }
int capacity_read_node(const char *proc_root, const char *dir, struct cap_node *out) { return -ENOSYS; }
const char *cap_fmt_bytes(char *buf, size_t len, uint64_t bytes) { return buf; }
