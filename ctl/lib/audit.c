/* audit: stub, implementation in progress. */
#include <errno.h>
#include <stdlib.h>
#include "herd/audit.h"

int audit_open(const char *path, struct audit_log **out) { *out = NULL; return -ENOSYS; }
void audit_close(struct audit_log *log) { (void)log; }
int audit_append(struct audit_log *log, uid_t uid, const char *role, const char *action, const char *target, const char *result, struct audit_entry *out) { return -ENOSYS; }
int audit_append_at(struct audit_log *log, int64_t sec, unsigned msec, uid_t uid, const char *role, const char *action, const char *target, const char *result, struct audit_entry *out) { return -ENOSYS; }
void audit_get_head(struct audit_log *log, struct audit_head *out) { (void)log; (void)out; }
int audit_verify(const char *path, struct audit_report *report) { return -ENOSYS; }
int audit_verify_anchor(const char *path, const struct audit_head *anchor, struct audit_report *report) { return -ENOSYS; }
int audit_list(const char *path, const struct audit_filter *f, struct audit_entry **out, size_t *n) { return -ENOSYS; }
int audit_parse_line(const char *line, size_t len, struct audit_entry *e) { return -ENOSYS; }
