/* herdd's audit trail: every state-changing request (who, what, when,
 * result) goes to STATE/audit.log through libherd-ctl's hash-chained log;
 * the chain head is kept as an anchor in the database's meta table so that
 * entries cut from the end are caught by verify too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/audit.h"
#include "herdd.h"

static void anchor_save(struct hd_store *st, const struct audit_head *h)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT OR REPLACE INTO meta VALUES ('audit_head', '%llu:%s')",
             (unsigned long long)h->seq, h->hash);
    pthread_mutex_lock(&st->mu);
    hd_db_exec(st, sql);
    pthread_mutex_unlock(&st->mu);
}

static int anchor_load(struct hd_store *st, struct audit_head *h)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    memset(h, 0, sizeof(*h));
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'audit_head'", -1, &stmt,
                           NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        unsigned long long seq;
        char hash[AUDIT_HEX_LEN + 1];
        if (sscanf((const char *)sqlite3_column_text(stmt, 0), "%llu:%64s", &seq, hash) == 2) {
            h->seq = seq;
            snprintf(h->hash, sizeof(h->hash), "%s", hash);
            rc = 0;
        }
    }
    sqlite3_finalize(stmt);
    return rc;
}

int hd_audit_open(struct hd_store *st, struct hd_err *err)
{
    snprintf(st->audit.path, sizeof(st->audit.path), "%s/audit.log", st->cfg->state_dir);
    int rc = audit_open(st->audit.path, &st->audit.log);
    if (rc == -ENOSYS) {
        fprintf(stderr, "herdd: audit log: libherd-ctl has no audit yet; not auditing\n");
        st->audit.log = NULL;
        return 0;
    }
    if (rc < 0)
        return hd_fail(err, 500, "state_dir", "%s: %s (run `herdctl audit verify`)", st->audit.path,
                       strerror(-rc));
    return 0;
}

void hd_audit_close(struct hd_store *st)
{
    if (st->audit.log)
        audit_close(st->audit.log);
    st->audit.log = NULL;
}

static const char *role_name(unsigned roles)
{
    if (roles & HD_ROLE_SYSADMIN)
        return "sysadmin";
    if (roles & HD_ROLE_SECADMIN)
        return "secadmin";
    if (roles & HD_ROLE_AUDITOR)
        return "auditor";
    return "none";
}

void hd_audit(struct hd_store *st, uid_t uid, unsigned roles, const char *method, const char *path,
              const char *target, int status, const char *what)
{
    char action[AUDIT_ACTION_MAX + 1];
    char result[AUDIT_RESULT_MAX + 1];
    struct audit_entry e;

    if (!st->audit.log)
        return;
    snprintf(action, sizeof(action), "%s %s", method, path);
    if (status < 300)
        snprintf(result, sizeof(result), "ok");
    else
        snprintf(result, sizeof(result), "error: %d %s", status, what ? what : "");
    pthread_mutex_lock(&st->audit.mu);
    int rc = audit_append(st->audit.log, uid, role_name(roles), action, target ? target : "",
                          result, &e);
    if (rc == 0) {
        struct audit_head h = {.seq = e.seq};
        memcpy(h.hash, e.hash, sizeof(h.hash));
        anchor_save(st, &h);
    } else {
        fprintf(stderr, "herdd: audit append: %s\n", strerror(-rc));
    }
    pthread_mutex_unlock(&st->audit.mu);
}

static json_t *entry_json(const struct audit_entry *e)
{
    return json_pack("{sI ss si ss ss ss ss ss ss}", "seq", (json_int_t)e->seq, "time", e->time,
                     "uid", (int)e->uid, "role", e->role, "action", e->action, "target",
                     e->target, "result", e->result, "prev", e->prev, "hash", e->hash);
}

json_t *hd_audit_list(struct hd_store *st, size_t limit, struct hd_err *err)
{
    struct audit_filter f = {.limit = limit, .tail = true};
    struct audit_entry *es = NULL;
    size_t n = 0;
    int rc = audit_list(st->audit.path, &f, &es, &n);
    if (rc < 0) {
        hd_fail(err, rc == -ENOSYS ? 501 : 500, "", "audit log: %s", strerror(-rc));
        return NULL;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, entry_json(&es[i]));
    free(es);
    return a;
}

json_t *hd_audit_verify(struct hd_store *st, struct hd_err *err)
{
    struct audit_head anchor;
    struct audit_report rep;
    memset(&rep, 0, sizeof(rep));
    pthread_mutex_lock(&st->audit.mu);
    pthread_mutex_lock(&st->mu);
    anchor_load(st, &anchor);
    pthread_mutex_unlock(&st->mu);
    int rc = audit_verify_anchor(st->audit.path, &anchor, &rep);
    pthread_mutex_unlock(&st->audit.mu);
    if (rc < 0 && rc != -EBADMSG) {
        hd_fail(err, rc == -ENOSYS ? 501 : 500, "", "audit log: %s", strerror(-rc));
        return NULL;
    }
    return json_pack("{sb sI sI sI ss sI ss}", "ok", rep.ok, "entries", (json_int_t)rep.entries,
                     "first_bad_seq", (json_int_t)rep.first_bad_seq, "first_bad_line",
                     (json_int_t)rep.first_bad_line, "message", rep.ok ? "intact" : rep.msg,
                     "anchor_seq", (json_int_t)anchor.seq, "path", st->audit.path);
}
