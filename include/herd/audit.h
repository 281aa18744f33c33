/*
 * audit: append-only, hash-chained audit log (one JSON object per line).
 *
 *   {"seq":1,"time":"2024-05-01T12:00:00.123Z","uid":0,"role":"sysadmin",
 *    "action":"vm.start","target":"lab1-red-attacker-1","result":"ok",
 *    "prev":"<64 hex>","hash":"<64 hex>"}
 *
 * - seq starts at 1 and grows by one per line.
 * - prev is the SHA-256 of the previous line's bytes (without its '\n');
 *   64 zeros for seq 1.
 * - hash is the SHA-256 of the line's bytes up to (not including)
 *   ',"hash":' followed by '}', i.e. of the entry serialized without hash.
 * - Keys appear in exactly this order, no whitespace; strings are JSON
 *   escaped (control characters as \u00XX, non-ASCII bytes as written).
 * - result is "ok" or "error: <message>".
 * Each append is one write() on an O_APPEND descriptor followed by fsync.
 *
 * The chain proves that no entry was edited, removed, inserted or reordered
 * and that the file was not cut mid-line. Dropping whole entries at the END
 * is only detected against an anchor (a (seq, hash) kept elsewhere, e.g. in
 * herdd's database): audit_verify_anchor().
 *
 * Functions return 0 or a negative errno.
 */
#ifndef HERD_AUDIT_H
#define HERD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUDIT_ROLE_MAX    32
#define AUDIT_ACTION_MAX  64
#define AUDIT_TARGET_MAX  256
#define AUDIT_RESULT_MAX  512   /* longer results are cut */
#define AUDIT_LINE_MAX    8192  /* longest valid line, '\n' excluded */
#define AUDIT_HEX_LEN     64

struct audit_entry {
    uint64_t seq;
    char time[32];                        /* "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) */
    uint32_t uid;
    char role[AUDIT_ROLE_MAX + 1];
    char action[AUDIT_ACTION_MAX + 1];
    char target[AUDIT_TARGET_MAX + 1];
    char result[AUDIT_RESULT_MAX + 1];
    char prev[AUDIT_HEX_LEN + 1];
    char hash[AUDIT_HEX_LEN + 1];
};

struct audit_head {           /* the last entry: what to keep as an anchor */
    uint64_t seq;             /* 0 for an empty log */
    char hash[AUDIT_HEX_LEN + 1];
};

struct audit_log;

/* Opens (creates, mode 0600) path for appending. Reads the last line to
 * continue the chain: -EBADMSG if it is not a valid entry (cut mid-line,
 * edited) — run audit_verify() to see where. Holds an exclusive flock(2) on
 * the file while open: a second audit_open() of the same file, from any
 * process or the same one, gets -EBUSY. Appends are thread-safe; readers
 * (audit_verify, audit_list) need no lock and see whole lines only. */
int audit_open(const char *path, struct audit_log **out);
void audit_close(struct audit_log *log);
/* Appends one entry stamped with the current time. role/action/target are
 * cut at their maximum, result at AUDIT_RESULT_MAX; NULL is "". out (may be
 * NULL) gets the entry as written. -EIO/-ENOSPC... on write/fsync errors
 * (then the chain head is unchanged and the log should be reopened). */
int audit_append(struct audit_log *log, uid_t uid, const char *role,
                 const char *action, const char *target, const char *result,
                 struct audit_entry *out);
/* Same with a given time (seconds + milliseconds since the epoch, UTC). */
int audit_append_at(struct audit_log *log, int64_t sec, unsigned msec,
                    uid_t uid, const char *role, const char *action,
                    const char *target, const char *result,
                    struct audit_entry *out);
void audit_get_head(struct audit_log *log, struct audit_head *out);

struct audit_report {
    bool ok;
    uint64_t entries;        /* valid entries before the first bad one (all, if ok) */
    uint64_t first_bad_seq;  /* the seq expected at the first bad line; 0 if ok */
    uint64_t first_bad_line; /* 1-based line number; 0 if ok */
    struct audit_head head;  /* last valid entry */
    char msg[256];           /* "line 7 (seq 7): hash mismatch (entry edited)" */
};

/* Verifies the whole chain. 0 and report->ok if intact (an empty or missing
 * file is intact), -EBADMSG with the report filled if not, other negative
 * errno on I/O errors. */
int audit_verify(const char *path, struct audit_report *report);
/* Same, and the log must contain the anchor's entry with the same hash
 * (catches entries dropped from the end). anchor->seq == 0 checks nothing more. */
int audit_verify_anchor(const char *path, const struct audit_head *anchor,
                        struct audit_report *report);

/* Filter for audit_list(); zero-initialised fields match everything. */
struct audit_filter {
    uint64_t since_seq;      /* seq >= since_seq */
    const char *action;      /* exact, or a prefix ending in '.' or '*': "vm.*" */
    const char *target;      /* exact */
    const char *role;        /* exact */
    bool by_uid;
    uint32_t uid;
    const char *time_from;   /* time >= time_from (ISO 8601 strings compare) */
    const char *time_to;     /* time < time_to */
    bool errors_only;        /* result != "ok" */
    size_t limit;            /* 0 = no limit; with tail, the last `limit` */
    bool tail;
};

/* Entries matching f (may be NULL) in log order into a malloc'd array
 * (free()). Lines that do not parse are skipped (audit_verify is the check);
 * a missing file is an empty list. */
int audit_list(const char *path, const struct audit_filter *f,
               struct audit_entry **out, size_t *n);

/* Parses one line (without '\n') into e; checks form and hash, not the
 * chain. -EBADMSG if malformed or the hash does not match. */
int audit_parse_line(const char *line, size_t len, struct audit_entry *e);

#endif
