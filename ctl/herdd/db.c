/* herdd's SQLite database (STATE/herdd.db): templates, guests, ranges,
 * snapshots, meta.
 * Called with the store lock held (one connection, serialised by herdd). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herdd.h"

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS templates ("
    "  name TEXT PRIMARY KEY, image TEXT NOT NULL, format TEXT NOT NULL,"
    "  kernel TEXT NOT NULL, initrd TEXT, cmdline TEXT NOT NULL, ready_line TEXT NOT NULL,"
    "  cpus INTEGER NOT NULL, mem INTEGER NOT NULL, nics TEXT NOT NULL,"
    "  sha256 TEXT NOT NULL, image_size INTEGER NOT NULL, file_size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL, parent TEXT, snapshot TEXT);"
    "CREATE TABLE IF NOT EXISTS ranges ("
    "  name TEXT PRIMARY KEY, spec TEXT NOT NULL, doc TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vms ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL,"
    "  template TEXT NOT NULL REFERENCES templates(name),"
    "  range TEXT, state TEXT NOT NULL, pid INTEGER, doc TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshots ("
    "  name TEXT PRIMARY KEY, template TEXT NOT NULL REFERENCES templates(name),"
    "  doc TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES ('schema', '1');";

/* Columns added after a table was first made: added to a database that
 * lacks them (SQLite has no ADD COLUMN IF NOT EXISTS). */
static const struct {
    const char *table, *column, *type;
} added_columns[] = {
    {"templates", "snapshot", "TEXT"}, /* warm templates */
};

static int columns_add(sqlite3 *db, struct hd_err *err)
{
    for (size_t i = 0; i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
        char sql[256];
        sqlite3_stmt *probe = NULL;
        snprintf(sql, sizeof(sql), "SELECT %s FROM %s LIMIT 0", added_columns[i].column,
                 added_columns[i].table);
        if (sqlite3_prepare_v2(db, sql, -1, &probe, NULL) == SQLITE_OK) {
            sqlite3_finalize(probe);
            continue;
        }
        snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", added_columns[i].table,
                 added_columns[i].column, added_columns[i].type);
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            hd_fail(err, 500, "state_dir", "database: %s: %s", sql, msg ? msg : "?");
            sqlite3_free(msg);
            return -1;
        }
    }
    return 0;
}

int hd_db_exec(struct hd_store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "herdd: sqlite: %s\n", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int hd_db_open(struct hd_store *st, struct hd_err *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/herdd.db", st->cfg->state_dir);
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK)
        return hd_fail(err, 500, "state_dir", "%s: %s", path, sqlite3_errstr(rc));
    sqlite3_busy_timeout(st->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(st->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        hd_fail(err, 500, "state_dir", "%s: schema: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return columns_add(st->db, err);
}

void hd_db_close(struct hd_store *st)
{
    if (st->db)
        sqlite3_close(st->db);
    st->db = NULL;
}

static sqlite3_stmt *prep(struct hd_store *st, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "herdd: sqlite: %s: %s\n", sql, sqlite3_errmsg(st->db));
        return NULL;
    }
    return stmt;
}

static int step_done(struct hd_store *st, sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        fprintf(stderr, "herdd: sqlite: %s\n", sqlite3_errmsg(st->db));
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, i);
}

int hd_db_save_template(struct hd_store *st, const struct hd_template *t)
{
    sqlite3_stmt *stmt = prep(st, "INSERT OR REPLACE INTO templates (name, image, format, "
                                  "kernel, initrd, cmdline, ready_line, cpus, mem, nics, sha256, "
                                  "image_size, file_size, created, parent, snapshot) VALUES "
                                  "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!stmt)
        return -1;
    char *nics = json_dumps(t->nics, JSON_COMPACT);
    bind_text(stmt, 1, t->name);
    bind_text(stmt, 2, t->image);
    bind_text(stmt, 3, t->format);
    bind_text(stmt, 4, t->kernel);
    bind_text(stmt, 5, t->initrd);
    bind_text(stmt, 6, t->cmdline);
    bind_text(stmt, 7, t->ready_line);
    sqlite3_bind_int64(stmt, 8, t->cpus);
    sqlite3_bind_int64(stmt, 9, (sqlite3_int64)t->mem);
    bind_text(stmt, 10, nics);
    bind_text(stmt, 11, t->sha256);
    sqlite3_bind_int64(stmt, 12, (sqlite3_int64)t->image_size);
    sqlite3_bind_int64(stmt, 13, (sqlite3_int64)t->file_size);
    sqlite3_bind_int64(stmt, 14, t->created);
    bind_text(stmt, 15, t->parent[0] ? t->parent : NULL);
    bind_text(stmt, 16, t->snapshot[0] ? t->snapshot : NULL);
    free(nics);
    return step_done(st, stmt);
}

int hd_db_delete_template(struct hd_store *st, const char *name)
{
    sqlite3_stmt *stmt = prep(st, "DELETE FROM templates WHERE name = ?");
    if (!stmt)
        return -1;
    bind_text(stmt, 1, name);
    return step_done(st, stmt);
}

int hd_db_save_vm(struct hd_store *st, struct hd_vm *vm)
{
    json_t *doc = hd_vm_json(vm, true);
    char *text = json_dumps(doc, JSON_COMPACT);
    sqlite3_stmt *stmt;
    int rc;

    json_decref(doc);
    if (vm->id == 0) {
        stmt = prep(st, "INSERT INTO vms (name, template, range, state, pid, doc) "
                        "VALUES (?,?,?,?,?,?)");
    } else {
        stmt = prep(st, "UPDATE vms SET name=?, template=?, range=?, state=?, pid=?, doc=? "
                        "WHERE id=?");
        if (stmt)
            sqlite3_bind_int64(stmt, 7, vm->id);
    }
    if (!stmt) {
        free(text);
        return -1;
    }
    bind_text(stmt, 1, vm->name);
    bind_text(stmt, 2, vm->tmpl);
    bind_text(stmt, 3, vm->range[0] ? vm->range : NULL);
    bind_text(stmt, 4, vm->state);
    sqlite3_bind_int64(stmt, 5, vm->pid);
    bind_text(stmt, 6, text);
    free(text);
    rc = step_done(st, stmt);
    if (rc == 0 && vm->id == 0)
        vm->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int hd_db_delete_vm(struct hd_store *st, const struct hd_vm *vm)
{
    sqlite3_stmt *stmt = prep(st, "DELETE FROM vms WHERE id = ?");
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, vm->id);
    return step_done(st, stmt);
}

/* sql: an INSERT of (a, b, doc as compact JSON text). */
static int save_doc(struct hd_store *st, const char *sql, const char *a, const char *b,
                    json_t *doc)
{
    sqlite3_stmt *stmt = prep(st, sql);
    if (!stmt)
        return -1;
    char *text = json_dumps(doc, JSON_COMPACT);
    bind_text(stmt, 1, a);
    bind_text(stmt, 2, b);
    bind_text(stmt, 3, text);
    free(text);
    return step_done(st, stmt);
}

/* sql: a DELETE with the name as its one parameter. */
static int delete_named(struct hd_store *st, const char *sql, const char *name)
{
    sqlite3_stmt *stmt = prep(st, sql);
    if (!stmt)
        return -1;
    bind_text(stmt, 1, name);
    return step_done(st, stmt);
}

int hd_db_save_range(struct hd_store *st, const char *name, const char *spec, json_t *doc)
{
    return save_doc(st, "INSERT OR REPLACE INTO ranges VALUES (?,?,?)", name, spec, doc);
}

int hd_db_delete_range(struct hd_store *st, const char *name)
{
    return delete_named(st, "DELETE FROM ranges WHERE name = ?", name);
}

json_t *hd_db_ranges(struct hd_store *st, const char *name)
{
    sqlite3_stmt *stmt = prep(st, name ? "SELECT name, spec, doc FROM ranges WHERE name = ?"
                                       : "SELECT name, spec, doc FROM ranges ORDER BY name");
    json_t *out = json_array();
    if (!stmt)
        return out;
    if (name)
        bind_text(stmt, 1, name);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        json_t *doc = json_loads((const char *)sqlite3_column_text(stmt, 2), 0, NULL);
        if (!doc)
            doc = json_object();
        json_object_set_new(doc, "name", json_string((const char *)sqlite3_column_text(stmt, 0)));
        json_object_set_new(doc, "spec", json_string((const char *)sqlite3_column_text(stmt, 1)));
        json_array_append_new(out, doc);
    }
    sqlite3_finalize(stmt);
    if (name) {
        json_t *one = json_array_size(out) ? json_incref(json_array_get(out, 0)) : NULL;
        json_decref(out);
        return one;
    }
    return out;
}

int hd_db_save_snapshot(struct hd_store *st, const char *name, const char *tmpl, json_t *doc)
{
    return save_doc(st, "INSERT INTO snapshots VALUES (?,?,?)", name, tmpl, doc);
}

int hd_db_delete_snapshot(struct hd_store *st, const char *name)
{
    return delete_named(st, "DELETE FROM snapshots WHERE name = ?", name);
}

json_t *hd_db_snapshots(struct hd_store *st, const char *name)
{
    sqlite3_stmt *stmt = prep(st, name ? "SELECT doc FROM snapshots WHERE name = ?"
                                       : "SELECT doc FROM snapshots ORDER BY name");
    json_t *out = json_array();
    if (!stmt)
        return name ? (json_decref(out), NULL) : out;
    if (name)
        bind_text(stmt, 1, name);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        json_t *doc = json_loads((const char *)sqlite3_column_text(stmt, 0), 0, NULL);
        if (doc)
            json_array_append_new(out, doc);
    }
    sqlite3_finalize(stmt);
    if (name) {
        json_t *one = json_array_size(out) ? json_incref(json_array_get(out, 0)) : NULL;
        json_decref(out);
        return one;
    }
    return out;
}

int hd_db_meta_put(struct hd_store *st, const char *key, json_t *doc)
{
    sqlite3_stmt *stmt = prep(st, "INSERT OR REPLACE INTO meta VALUES (?,?)");
    if (!stmt)
        return -1;
    char *text = json_dumps(doc, JSON_COMPACT);
    bind_text(stmt, 1, key);
    bind_text(stmt, 2, text);
    free(text);
    return step_done(st, stmt);
}

int hd_db_meta_delete(struct hd_store *st, const char *key)
{
    return delete_named(st, "DELETE FROM meta WHERE key = ?", key);
}

json_t *hd_db_meta_prefix(struct hd_store *st, const char *prefix)
{
    sqlite3_stmt *stmt = prep(st, "SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) "
                                  "= ?1 ORDER BY key");
    json_t *out = json_object();
    if (!stmt)
        return out;
    bind_text(stmt, 1, prefix);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        json_t *doc = json_loads((const char *)sqlite3_column_text(stmt, 1), 0, NULL);
        json_object_set_new(out, (const char *)sqlite3_column_text(stmt, 0),
                            doc ? doc : json_null());
    }
    sqlite3_finalize(stmt);
    return out;
}

int hd_db_snapshots_of_template(struct hd_store *st, const char *tmpl)
{
    sqlite3_stmt *stmt = prep(st, "SELECT count(*) FROM snapshots WHERE template = ?");
    if (!stmt)
        return -1;
    bind_text(stmt, 1, tmpl);
    int n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return n;
}

static char *col_dup(sqlite3_stmt *stmt, int i)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);
    return s ? strdup((const char *)s) : NULL;
}

static void copy_str(char *dst, size_t size, json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(dst, size, "%s", s ? s : "");
}

static int64_t get_int(json_t *o, const char *key, int64_t def)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

/* One row of SELECT ... FROM templates (hd_db_load's column order). */
static struct hd_template *template_from_row(sqlite3_stmt *stmt)
{
    struct hd_template *t = calloc(1, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", sqlite3_column_text(stmt, 0));
    t->image = col_dup(stmt, 1);
    t->format = col_dup(stmt, 2);
    t->kernel = col_dup(stmt, 3);
    t->initrd = col_dup(stmt, 4);
    t->cmdline = col_dup(stmt, 5);
    t->ready_line = col_dup(stmt, 6);
    t->cpus = (unsigned)sqlite3_column_int64(stmt, 7);
    t->mem = (uint64_t)sqlite3_column_int64(stmt, 8);
    t->nics = json_loads((const char *)sqlite3_column_text(stmt, 9), 0, NULL);
    if (!t->nics)
        t->nics = json_array();
    t->sha256 = col_dup(stmt, 10);
    t->image_size = (uint64_t)sqlite3_column_int64(stmt, 11);
    t->file_size = (uint64_t)sqlite3_column_int64(stmt, 12);
    t->created = sqlite3_column_int64(stmt, 13);
    if (sqlite3_column_text(stmt, 14))
        snprintf(t->parent, sizeof(t->parent), "%s", sqlite3_column_text(stmt, 14));
    if (sqlite3_column_text(stmt, 15))
        snprintf(t->snapshot, sizeof(t->snapshot), "%s", sqlite3_column_text(stmt, 15));
    return t;
}

static int load_templates(struct hd_store *st, struct hd_err *err)
{
    sqlite3_stmt *stmt = prep(st, "SELECT name, image, format, kernel, initrd, cmdline, ready_line,"
                                  " cpus, mem, nics, sha256, image_size, file_size, created, parent,"
                                  " snapshot FROM templates ORDER BY name DESC");
    if (!stmt)
        return hd_fail(err, 500, "", "database: cannot read templates");
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        struct hd_template *t = template_from_row(stmt);
        t->next = st->templates;
        st->templates = t;
    }
    sqlite3_finalize(stmt);
    return 0;
}

/* The stored record's "escape_attempt" and "exit" objects. */
static void vm_exit_from_doc(struct hd_vm *vm, json_t *d)
{
    json_t *esc = json_object_get(d, "escape_attempt");
    if (json_is_object(esc)) {
        copy_str(vm->escape, sizeof(vm->escape), esc, "line");
        vm->escape_at = get_int(esc, "time", 0);
    }
    json_t *ex = json_object_get(d, "exit");
    if (json_is_object(ex)) {
        vm->has_exit = true;
        vm->exit_code = (int)get_int(ex, "code", -1);
        vm->exit_signal = (int)get_int(ex, "signal", 0);
        hd_cgroup_events_load(vm, ex);
        json_t *lc = json_object_get(ex, "last_console");
        vm->last_console = lc ? json_incref(lc) : NULL;
    }
}

/* The stored record's "nics", at most HD_MAX_NICS of them. */
static void vm_nics_from_doc(struct hd_vm *vm, json_t *d)
{
    json_t *nics = json_object_get(d, "nics");
    size_t i;
    json_t *n;
    json_array_foreach(nics, i, n) {
        if (vm->n_nics >= HD_MAX_NICS)
            break;
        struct hd_nic *nic = &vm->nics[vm->n_nics++];
        copy_str(nic->role, sizeof(nic->role), n, "role");
        copy_str(nic->bridge, sizeof(nic->bridge), n, "bridge");
        copy_str(nic->tap, sizeof(nic->tap), n, "tap");
        copy_str(nic->mac, sizeof(nic->mac), n, "mac");
        copy_str(nic->segment, sizeof(nic->segment), n, "segment");
        copy_str(nic->ipv4, sizeof(nic->ipv4), n, "ipv4");
        copy_str(nic->gateway, sizeof(nic->gateway), n, "gateway");
        copy_str(nic->ipv6, sizeof(nic->ipv6), n, "ipv6");
    }
}

/* Where a guest restored from a snapshot goes back to on a reset, and
 * whether its next start restores. Records older than these fields: the
 * snapshot is the origin, and only a guest never started restores. */
static void vm_origin_from_doc(struct hd_vm *vm, json_t *d)
{
    json_t *o = json_object_get(d, "origin");
    if (json_is_string(o))
        copy_str(vm->origin, sizeof(vm->origin), d, "origin");
    else if (!o)
        memcpy(vm->origin, vm->snapshot, sizeof(vm->origin));
    json_t *p = json_object_get(d, "restore_pending");
    if (p)
        vm->restore_pending = json_is_true(p) && vm->snapshot[0];
    else
        vm->restore_pending = vm->snapshot[0] && !strcmp(vm->state, "created");
}

/* A guest record from its stored document d (the JSON hd_vm_json made). */
static struct hd_vm *vm_from_doc(struct hd_store *st, int64_t id, json_t *d)
{
    struct hd_vm *vm = calloc(1, sizeof(*vm));
    vm->id = id;
    vm->pidfd = -1;
    vm->state_dir = st->cfg->state_dir;
    copy_str(vm->name, sizeof(vm->name), d, "name");
    copy_str(vm->tmpl, sizeof(vm->tmpl), d, "template");
    copy_str(vm->range, sizeof(vm->range), d, "range");
    copy_str(vm->snapshot, sizeof(vm->snapshot), d, "snapshot");
    copy_str(vm->state, sizeof(vm->state), d, "state");
    copy_str(vm->restart, sizeof(vm->restart), d, "restart");
    copy_str(vm->note, sizeof(vm->note), d, "note");
    vm->cpus = (unsigned)get_int(d, "cpus", 1);
    vm->mem = (uint64_t)get_int(d, "mem", 64 << 20);
    vm->ready = json_is_true(json_object_get(d, "ready"));
    vm->pid = (pid_t)get_int(d, "pid", 0);
    vm->restarts = (unsigned)get_int(d, "restarts", 0);
    vm->created = get_int(d, "created", 0);
    vm->started = get_int(d, "started", 0);
    vm->ready_at = get_int(d, "ready_at", 0);
    vm->exited = get_int(d, "exited", 0);
    vm->uid = (uid_t)get_int(d, "uid", 0);
    vm_exit_from_doc(vm, d);
    vm_origin_from_doc(vm, d);
    json_t *ci = json_object_get(d, "cloud_init");
    if (json_is_object(ci)) {
        vm->cloud_init = json_incref(ci);
        vm->seed_gen = (unsigned)get_int(json_object_get(d, "seed"), "generation", 0);
        /* herdd's own record (resdisk.c's path), only with a seed */
        const char *res = json_string_value(json_object_get(d, "resources"));
        if (res && *res == '/')
            vm->resources = strdup(res);
    }
    vm_nics_from_doc(vm, d);
    return vm;
}

static int load_guests(struct hd_store *st, struct hd_err *err)
{
    sqlite3_stmt *stmt = prep(st, "SELECT id, doc FROM vms ORDER BY id DESC");
    if (!stmt)
        return hd_fail(err, 500, "", "database: cannot read guests");
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        json_t *d = json_loads((const char *)sqlite3_column_text(stmt, 1), 0, NULL);
        if (!d)
            continue;
        struct hd_vm *vm = vm_from_doc(st, sqlite3_column_int64(stmt, 0), d);
        json_decref(d);
        vm->next = st->vms;
        st->vms = vm;
    }
    sqlite3_finalize(stmt);
    return 0;
}

int hd_db_load(struct hd_store *st, struct hd_err *err)
{
    if (load_templates(st, err) < 0)
        return -1;
    return load_guests(st, err);
}
