/* store_sqlite.c - the SQLite backend of store.h.
 *
 * One connection in WAL mode with synchronous=FULL (a returned write is on disk),
 * serialized by a mutex: SQLite serializes writers anyway and reads are tens of
 * microseconds. Schema changes are numbered migrations tracked in user_version. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "store.h"
#include "store_internal.h"

static const char *const migrations[] = {
  /* 1: initial schema */
  "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
  "CREATE TABLE resource_groups (sub TEXT NOT NULL, name_key TEXT NOT NULL, name TEXT NOT NULL,"
  "  location TEXT NOT NULL, tags TEXT, created_ns INTEGER NOT NULL, PRIMARY KEY (sub, name_key));"
  "CREATE TABLE groups (id TEXT PRIMARY KEY, sub TEXT NOT NULL, rg_key TEXT NOT NULL, rg TEXT NOT NULL,"
  "  name_key TEXT NOT NULL, name TEXT NOT NULL, location TEXT NOT NULL, spec TEXT NOT NULL, tags TEXT,"
  "  provisioning_state TEXT NOT NULL, desired TEXT NOT NULL, state TEXT, containers_view TEXT,"
  "  generation INTEGER NOT NULL DEFAULT 0, monitor_seq INTEGER NOT NULL DEFAULT 0,"
  "  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);"
  "CREATE UNIQUE INDEX groups_by_name ON groups (sub, rg_key, name_key);"
  "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id TEXT NOT NULL, container TEXT,"
  "  name TEXT NOT NULL, type TEXT NOT NULL, message TEXT NOT NULL, count INTEGER NOT NULL,"
  "  first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL);"
  "CREATE INDEX events_by_group ON events (group_id, seq);"
  "CREATE TABLE operations (id TEXT PRIMARY KEY, group_id TEXT NOT NULL, status TEXT NOT NULL, error TEXT,"
  "  start_ns INTEGER NOT NULL, end_ns INTEGER);"
  "CREATE INDEX operations_by_group ON operations (group_id);",
  /* 2: identities and role assignments */
  "CREATE TABLE principals (app_id TEXT PRIMARY KEY, object_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
  "  secret_hash TEXT, certificate TEXT, created_ns INTEGER NOT NULL);"
  "CREATE TABLE role_assignments (name TEXT PRIMARY KEY, scope TEXT NOT NULL, scope_key TEXT NOT NULL,"
  "  role_id TEXT NOT NULL, principal_id TEXT NOT NULL, created_ns INTEGER NOT NULL,"
  "  UNIQUE (scope_key, role_id, principal_id));"
  "CREATE INDEX role_assignments_by_principal ON role_assignments (principal_id);",
  /* 3: one address per group, from the host's group network */
  "CREATE TABLE addresses (addr INTEGER PRIMARY KEY, group_id TEXT NOT NULL UNIQUE);",
  /* 4: public addresses and host ports, DNS names, network resources */
  "CREATE TABLE public_addresses (addr INTEGER PRIMARY KEY, group_id TEXT NOT NULL UNIQUE);"
  "CREATE TABLE host_ports (proto TEXT NOT NULL, port INTEGER NOT NULL, group_id TEXT NOT NULL,"
  "  PRIMARY KEY (proto, port));"
  "CREATE INDEX host_ports_by_group ON host_ports (group_id);"
  "CREATE TABLE dns_names (fqdn TEXT PRIMARY KEY, group_id TEXT NOT NULL UNIQUE);"
  "CREATE TABLE net_resources (id_key TEXT PRIMARY KEY, type TEXT NOT NULL, sub TEXT NOT NULL,"
  "  rg_key TEXT NOT NULL, parent_key TEXT, name TEXT NOT NULL, body TEXT NOT NULL,"
  "  created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);"
  "CREATE INDEX net_resources_by_parent ON net_resources (parent_key, type);"
  "CREATE INDEX net_resources_by_rg ON net_resources (sub, rg_key, type);",
};

static int
exec_sql (store_t *s, const char *sql, skiff_error_t *err)
{
  char *msg = NULL;
  int rc = sqlite3_exec (s->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    {
      int r = skiff_error_arm (err, 500, "InternalServerError", "store: %s", msg ? msg : "exec failed");
      sqlite3_free (msg);
      return r;
    }
  return 0;
}

/* Observed state and events are re-derived from the monitors' files after a crash, so
 * their commits skip the fsync (synchronous=NORMAL: safe against process crashes, and the
 * next durable commit syncs them too). Desired state stays synchronous=FULL. */
static void
restore_full_sync (store_t **s)
{
  sqlite3_exec ((*s)->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
}
#define OBSERVED_WRITE(s)                                                                                              \
  store_t *_obs __attribute__ ((cleanup (restore_full_sync), unused)) = (s);                                           \
  sqlite3_exec ((s)->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL)

/* Prepares `sql` whose two parameters are a subscription and a case-insensitive name. */
static int
prepare_sub_name (store_t *s, const char *sql, const char *sub, const char *name, sqlite3_stmt **st, skiff_error_t *err)
{
  if (prepare (s, sql, st, err) < 0)
    return -1;
  cleanup_free char *key = lower_dup (name);
  bind_text (*st, 1, sub);
  bind_text (*st, 2, key);
  return 0;
}

static void
on_row_change (void *opaque, int op, const char *db, const char *table, sqlite3_int64 rowid)
{
  (void)op;
  (void)db;
  (void)table;
  (void)rowid;
  store_t *s = opaque;
  atomic_fetch_add (&s->changes, 1);
}

uint64_t
store_change_count (store_t *s)
{
  return atomic_load (&s->changes);
}

int
store_open_sqlite (const char *path, store_t **out, skiff_error_t *err)
{
  /* Create the file 0600 before SQLite does: it holds secrets. */
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return skiff_error_set (err, errno, "open store `%s`", path);
  fchmod (fd, 0600);
  close (fd);
  store_t *s = calloc (1, sizeof (*s));
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "open store");
  pthread_mutex_init (&s->lock, NULL);
  int rc = sqlite3_open_v2 (path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    {
      int r = skiff_error_set (err, 0, "open store `%s`: %s", path, s->db ? sqlite3_errmsg (s->db) : "?");
      store_close (s);
      return r;
    }
  sqlite3_busy_timeout (s->db, 5000);
  sqlite3_update_hook (s->db, on_row_change, s);
  if (exec_sql (s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err) < 0)
    {
      store_close (s);
      return -1;
    }
  sqlite3_stmt *st = NULL;
  int version = 0;
  if (sqlite3_prepare_v2 (s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step (st) == SQLITE_ROW)
    version = sqlite3_column_int (st, 0);
  sqlite3_finalize (st);
  int n = (int)(sizeof (migrations) / sizeof (migrations[0]));
  if (version > n)
    {
      store_close (s);
      return skiff_error_set (err, 0, "store `%s` has schema version %d, newer than this skiffd (%d)", path, version,
                              n);
    }
  for (int v = version; v < n; v++)
    {
      cleanup_free char *sql = skiff_strdup_printf ("BEGIN; %s PRAGMA user_version=%d; COMMIT;", migrations[v], v + 1);
      if (exec_sql (s, sql, err) < 0)
        {
          exec_sql (s, "ROLLBACK", NULL);
          skiff_error_wrap (err, "migrate store to version %d", v + 1);
          store_close (s);
          return -1;
        }
    }
  *out = s;
  return 0;
}

void
store_close (store_t *s)
{
  if (s == NULL)
    return;
  if (s->db)
    sqlite3_close (s->db);
  pthread_mutex_destroy (&s->lock);
  free (s);
}

int
store_meta_get (store_t *s, const char *key, char **value, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT value FROM meta WHERE key=?", &st, err) < 0)
    return -1;
  bind_text (st, 1, key);
  int rc = sqlite3_step (st);
  *value = rc == SQLITE_ROW ? col_str (st, 0) : NULL;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_error (s, rc, "meta get", err);
  return 0;
}

int
store_meta_set (store_t *s, const char *key, const char *value, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, key);
  bind_text (st, 2, value);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "meta set", err);
  return 0;
}

void
store_rg_clear (store_rg_t *r)
{
  free (r->sub);
  free (r->name);
  free (r->location);
  if (r->tags)
    json_decref (r->tags);
  memset (r, 0, sizeof (*r));
}

static int
rg_get_locked (store_t *s, const char *sub, const char *name, store_rg_t *out, skiff_error_t *err)
{
  memset (out, 0, sizeof (*out));
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare_sub_name (s, "SELECT name, location, tags FROM resource_groups WHERE sub=? AND name_key=?", sub, name,
                        &st, err)
      < 0)
    return -1;
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      out->sub = skiff_strdup (sub);
      out->name = col_str (st, 0);
      out->location = col_str (st, 1);
      out->tags = col_json (st, 2);
      return 0;
    }
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "get resource group", err);
  return 0;
}

int
store_rg_get (store_t *s, const char *sub, const char *name, store_rg_t *out, skiff_error_t *err)
{
  LOCKED (s);
  return rg_get_locked (s, sub, name, out, err);
}

int
store_rg_put (store_t *s, const char *sub, const char *name, const char *location, json_t *tags, int *created,
              store_rg_t *out, skiff_error_t *err)
{
  LOCKED (s);
  store_rg_t old;
  if (rg_get_locked (s, sub, name, &old, err) < 0)
    return -1;
  *created = old.name == NULL;
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free char *key = lower_dup (name);
  cleanup_free char *tj = json_text (tags);
  if (*created)
    {
      if (prepare (s,
                   "INSERT INTO resource_groups (sub, name_key, name, location, tags, created_ns) VALUES (?,?,?,?,?,?)",
                   &st, err)
          < 0)
        return -1;
      bind_text (st, 1, sub);
      bind_text (st, 2, key);
      bind_text (st, 3, name);
      bind_text (st, 4, location);
      bind_text (st, 5, tj);
      sqlite3_bind_int64 (st, 6, skiff_now_ns ());
    }
  else
    {
      if (prepare (s, "UPDATE resource_groups SET tags=? WHERE sub=? AND name_key=?", &st, err) < 0)
        {
          store_rg_clear (&old);
          return -1;
        }
      bind_text (st, 1, tj);
      bind_text (st, 2, sub);
      bind_text (st, 3, key);
    }
  int rc = sqlite3_step (st);
  store_rg_clear (&old);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "put resource group", err);
  return out ? rg_get_locked (s, sub, name, out, err) : 0;
}

int
store_rg_list (store_t *s, const char *sub, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT name, location, tags FROM resource_groups WHERE sub=? ORDER BY name_key", &st, err) < 0)
    return -1;
  bind_text (st, 1, sub);
  json_t *arr = json_array ();
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      json_t *tags = col_json (st, 2);
      json_array_append_new (arr, json_pack ("{s:s,s:s,s:o}", "name", sqlite3_column_text (st, 0), "location",
                                             sqlite3_column_text (st, 1), "tags", tags ? tags : json_object ()));
    }
  if (rc != SQLITE_DONE)
    {
      json_decref (arr);
      return db_error (s, rc, "list resource groups", err);
    }
  *out = arr;
  return 0;
}

int
store_rg_delete (store_t *s, const char *sub, const char *name, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare_sub_name (s, "DELETE FROM resource_groups WHERE sub=? AND name_key=?", sub, name, &st, err) < 0)
    return -1;
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "delete resource group", err);
  return 0;
}

int
store_rg_count_groups (store_t *s, const char *sub, const char *rg, int64_t *n, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare_sub_name (s, "SELECT COUNT(*) FROM groups WHERE sub=? AND rg_key=?", sub, rg, &st, err) < 0)
    return -1;
  int rc = sqlite3_step (st);
  if (rc != SQLITE_ROW)
    return db_error (s, rc, "count groups", err);
  *n = sqlite3_column_int64 (st, 0);
  return 0;
}

void
store_group_clear (store_group_t *g)
{
  free (g->id);
  free (g->sub);
  free (g->rg);
  free (g->name);
  free (g->location);
  free (g->provisioning_state);
  free (g->desired);
  free (g->state);
  if (g->spec)
    json_decref (g->spec);
  if (g->tags)
    json_decref (g->tags);
  if (g->containers_view)
    json_decref (g->containers_view);
  memset (g, 0, sizeof (*g));
}

void
store_group_free_array (store_group_t *a, int n)
{
  for (int i = 0; i < n; i++)
    store_group_clear (&a[i]);
  free (a);
}

#define GROUP_COLS                                                                                                     \
  "id, sub, rg, name, location, spec, tags, provisioning_state, desired, state, containers_view, generation, "         \
  "monitor_seq, created_ns, updated_ns"

static void
read_group (sqlite3_stmt *st, store_group_t *g)
{
  g->id = col_str (st, 0);
  g->sub = col_str (st, 1);
  g->rg = col_str (st, 2);
  g->name = col_str (st, 3);
  g->location = col_str (st, 4);
  g->spec = col_json (st, 5);
  g->tags = col_json (st, 6);
  g->provisioning_state = col_str (st, 7);
  g->desired = col_str (st, 8);
  g->state = col_str (st, 9);
  g->containers_view = col_json (st, 10);
  g->generation = sqlite3_column_int64 (st, 11);
  g->monitor_seq = sqlite3_column_int64 (st, 12);
  g->created_ns = sqlite3_column_int64 (st, 13);
  g->updated_ns = sqlite3_column_int64 (st, 14);
}

static int
group_get_locked (store_t *s, const char *sub, const char *rg, const char *name, const char *id, store_group_t *out,
                  skiff_error_t *err)
{
  memset (out, 0, sizeof (*out));
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (id)
    {
      if (prepare (s, "SELECT " GROUP_COLS " FROM groups WHERE id=?", &st, err) < 0)
        return -1;
      bind_text (st, 1, id);
    }
  else
    {
      if (prepare (s, "SELECT " GROUP_COLS " FROM groups WHERE sub=? AND rg_key=? AND name_key=?", &st, err) < 0)
        return -1;
      cleanup_free char *rk = lower_dup (rg);
      cleanup_free char *nk = lower_dup (name);
      bind_text (st, 1, sub);
      bind_text (st, 2, rk);
      bind_text (st, 3, nk);
    }
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    read_group (st, out);
  else if (rc != SQLITE_DONE)
    return db_error (s, rc, "get group", err);
  return 0;
}

int
store_group_get (store_t *s, const char *sub, const char *rg, const char *name, store_group_t *out, skiff_error_t *err)
{
  LOCKED (s);
  return group_get_locked (s, sub, rg, name, NULL, out, err);
}

int
store_group_get_by_id (store_t *s, const char *id, store_group_t *out, skiff_error_t *err)
{
  LOCKED (s);
  return group_get_locked (s, NULL, NULL, NULL, id, out, err);
}

static int
op_set_locked (store_t *s, const char *op_id, const char *group_id, const char *status, json_t *error,
               skiff_error_t *err)
{
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "INSERT INTO operations (id, group_id, status, error, start_ns) VALUES (?,?,?,?,?) "
               "ON CONFLICT(id) DO UPDATE SET status=excluded.status, error=excluded.error, end_ns=?",
               &st, err)
      < 0)
    return -1;
  cleanup_free char *ej = json_text (error);
  int64_t now = skiff_now_ns ();
  bind_text (st, 1, op_id);
  bind_text (st, 2, group_id);
  bind_text (st, 3, status);
  bind_text (st, 4, ej);
  sqlite3_bind_int64 (st, 5, now);
  sqlite3_bind_int64 (st, 6, now);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "set operation", err);
  return 0;
}

int
store_group_put (store_t *s, store_group_t *g, const char *op_id, int *created, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_free char *spec = json_text (g->spec);
  cleanup_free char *tags = json_text (g->tags);
  store_group_t old;
  memset (&old, 0, sizeof (old));
  if (exec_sql (s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  if (group_get_locked (s, g->sub, g->rg, g->name, NULL, &old, err) < 0)
    goto fail;
  *created = old.id == NULL;
  int64_t now = skiff_now_ns ();
  {
    cleanup_stmt sqlite3_stmt *st = NULL;
    if (*created)
      {
        if (prepare (s,
                     "INSERT INTO groups (id, sub, rg_key, rg, name_key, name, location, spec, tags, "
                     "provisioning_state, desired, generation, created_ns, updated_ns) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,1,?,?)",
                     &st, err)
            < 0)
          goto fail;
        cleanup_free char *rk = lower_dup (g->rg);
        cleanup_free char *nk = lower_dup (g->name);
        bind_text (st, 1, g->id);
        bind_text (st, 2, g->sub);
        bind_text (st, 3, rk);
        bind_text (st, 4, g->rg);
        bind_text (st, 5, nk);
        bind_text (st, 6, g->name);
        bind_text (st, 7, g->location);
        bind_text (st, 8, spec);
        bind_text (st, 9, tags);
        bind_text (st, 10, g->provisioning_state);
        bind_text (st, 11, g->desired);
        sqlite3_bind_int64 (st, 12, now);
        sqlite3_bind_int64 (st, 13, now);
        g->generation = 1;
      }
    else
      {
        if (prepare (s,
                     "UPDATE groups SET spec=?, tags=?, provisioning_state=?, desired=?, location=?, "
                     "generation=generation+1, updated_ns=? WHERE id=?",
                     &st, err)
            < 0)
          goto fail;
        bind_text (st, 1, spec);
        bind_text (st, 2, tags);
        bind_text (st, 3, g->provisioning_state);
        bind_text (st, 4, g->desired);
        bind_text (st, 5, g->location);
        sqlite3_bind_int64 (st, 6, now);
        bind_text (st, 7, old.id);
        free (g->id);
        g->id = skiff_strdup (old.id);
        g->generation = old.generation + 1;
      }
    int rc = sqlite3_step (st);
    if (rc != SQLITE_DONE)
      {
        db_error (s, rc, "put group", err);
        goto fail;
      }
  }
  if (op_id && op_set_locked (s, op_id, g->id, "InProgress", NULL, err) < 0)
    goto fail;
  store_group_clear (&old);
  return exec_sql (s, "COMMIT", err);
fail:
  store_group_clear (&old);
  exec_sql (s, "ROLLBACK", NULL);
  return -1;
}

int
store_group_list (store_t *s, const char *sub, const char *rg, const char *after, int limit, store_group_t **out,
                  int *n, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  const char *sql = "SELECT " GROUP_COLS " FROM groups WHERE (?1 IS NULL OR sub=?1) AND (?2 IS NULL OR rg_key=?2) "
                    "AND (?3 IS NULL OR rg_key || '/' || name_key > ?3) ORDER BY rg_key, name_key LIMIT ?4";
  if (prepare (s, sql, &st, err) < 0)
    return -1;
  cleanup_free char *rk = rg ? lower_dup (rg) : NULL;
  bind_text (st, 1, sub);
  bind_text (st, 2, rk);
  bind_text (st, 3, after);
  sqlite3_bind_int (st, 4, limit > 0 ? limit : 1000000);
  int cap = 16, cnt = 0;
  store_group_t *arr = calloc ((size_t)cap, sizeof (*arr));
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (cnt == cap)
        {
          cap *= 2;
          arr = realloc (arr, (size_t)cap * sizeof (*arr));
          if (arr == NULL)
            abort ();
        }
      memset (&arr[cnt], 0, sizeof (arr[cnt]));
      read_group (st, &arr[cnt++]);
    }
  if (rc != SQLITE_DONE)
    {
      store_group_free_array (arr, cnt);
      return db_error (s, rc, "list groups", err);
    }
  *out = arr;
  *n = cnt;
  return 0;
}

int
store_group_set_status (store_t *s, const char *id, const char *provisioning_state, const char *state,
                        json_t *containers_view, int64_t monitor_seq, skiff_error_t *err)
{
  LOCKED (s);
  OBSERVED_WRITE (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "UPDATE groups SET provisioning_state=COALESCE(?1, provisioning_state), state=COALESCE(?2, state), "
               "containers_view=COALESCE(?3, containers_view), monitor_seq=CASE WHEN ?4 < 0 THEN monitor_seq ELSE ?4 "
               "END, updated_ns=?5 WHERE id=?6",
               &st, err)
      < 0)
    return -1;
  cleanup_free char *cv = json_text (containers_view);
  bind_text (st, 1, provisioning_state);
  bind_text (st, 2, state);
  bind_text (st, 3, cv);
  sqlite3_bind_int64 (st, 4, monitor_seq);
  sqlite3_bind_int64 (st, 5, skiff_now_ns ());
  bind_text (st, 6, id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "set group status", err);
  return 0;
}

int
store_group_set_desired (store_t *s, const char *id, const char *desired, int bump_generation, const char *op_id,
                         skiff_error_t *err)
{
  LOCKED (s);
  if (exec_sql (s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "UPDATE groups SET desired=?, generation=generation+?, updated_ns=? WHERE id=?", &st, err) < 0)
    goto fail;
  bind_text (st, 1, desired);
  sqlite3_bind_int (st, 2, bump_generation ? 1 : 0);
  sqlite3_bind_int64 (st, 3, skiff_now_ns ());
  bind_text (st, 4, id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    {
      db_error (s, rc, "set desired", err);
      goto fail;
    }
  if (op_id && op_set_locked (s, op_id, id, "InProgress", NULL, err) < 0)
    goto fail;
  return exec_sql (s, "COMMIT", err);
fail:
  exec_sql (s, "ROLLBACK", NULL);
  return -1;
}

int
store_group_set_tags (store_t *s, const char *id, json_t *tags, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "UPDATE groups SET tags=?, updated_ns=? WHERE id=?", &st, err) < 0)
    return -1;
  cleanup_free char *tj = json_text (tags);
  bind_text (st, 1, tj);
  sqlite3_bind_int64 (st, 2, skiff_now_ns ());
  bind_text (st, 3, id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "set tags", err);
  return 0;
}

int
store_group_delete (store_t *s, const char *id, skiff_error_t *err)
{
  LOCKED (s);
  if (exec_sql (s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  static const char *const sqls[] = { "DELETE FROM groups WHERE id=?", "DELETE FROM events WHERE group_id=?",
                                      "DELETE FROM operations WHERE group_id=? AND status='InProgress'" };
  for (size_t i = 0; i < sizeof (sqls) / sizeof (sqls[0]); i++)
    {
      cleanup_stmt sqlite3_stmt *st = NULL;
      if (prepare (s, sqls[i], &st, err) < 0)
        goto fail;
      bind_text (st, 1, id);
      int rc = sqlite3_step (st);
      if (rc != SQLITE_DONE)
        {
          db_error (s, rc, "delete group", err);
          goto fail;
        }
    }
  return exec_sql (s, "COMMIT", err);
fail:
  exec_sql (s, "ROLLBACK", NULL);
  return -1;
}

int
store_event_add (store_t *s, const char *group_id, const char *container, const char *name, const char *type,
                 const char *message, int64_t ts_ns, int replace_message, skiff_error_t *err)
{
  LOCKED (s);
  OBSERVED_WRITE (s);
  int64_t last_seq = -1;
  {
    cleanup_stmt sqlite3_stmt *st = NULL;
    const char *sql
        = replace_message
              ? "SELECT seq FROM events WHERE group_id=?1 AND container IS ?2 AND name=?3 ORDER BY seq DESC LIMIT 1"
              : "SELECT seq FROM events WHERE group_id=?1 AND container IS ?2 AND name=?3 AND message=?4 AND "
                "seq=(SELECT MAX(seq) FROM events WHERE group_id=?1 AND container IS ?2 AND name=?3)";
    if (prepare (s, sql, &st, err) < 0)
      return -1;
    bind_text (st, 1, group_id);
    bind_text (st, 2, container);
    bind_text (st, 3, name);
    if (!replace_message)
      bind_text (st, 4, message);
    if (sqlite3_step (st) == SQLITE_ROW)
      last_seq = sqlite3_column_int64 (st, 0);
  }
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (last_seq >= 0)
    {
      const char *sql = replace_message ? "UPDATE events SET message=?, last_ns=? WHERE seq=?"
                                        : "UPDATE events SET count=count+1, last_ns=?2 WHERE seq=?3";
      if (prepare (s, sql, &st, err) < 0)
        return -1;
      bind_text (st, 1, message);
      sqlite3_bind_int64 (st, 2, ts_ns);
      sqlite3_bind_int64 (st, 3, last_seq);
    }
  else
    {
      if (prepare (s,
                   "INSERT INTO events (group_id, container, name, type, message, count, first_ns, last_ns) "
                   "VALUES (?,?,?,?,?,1,?,?)",
                   &st, err)
          < 0)
        return -1;
      bind_text (st, 1, group_id);
      bind_text (st, 2, container);
      bind_text (st, 3, name);
      bind_text (st, 4, type);
      bind_text (st, 5, message);
      sqlite3_bind_int64 (st, 6, ts_ns);
      sqlite3_bind_int64 (st, 7, ts_ns);
    }
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "add event", err);
  return 0;
}

int
store_event_list (store_t *s, const char *group_id, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "SELECT container, name, type, message, count, first_ns, last_ns FROM events WHERE group_id=? "
               "ORDER BY seq",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, group_id);
  json_t *arr = json_array ();
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      char t1[40], t2[40];
      /* ACI writes event times without fractions. */
      skiff_format_time (sqlite3_column_int64 (st, 5), t1, sizeof (t1));
      skiff_format_time (sqlite3_column_int64 (st, 6), t2, sizeof (t2));
      strcpy (t1 + 19, "Z");
      strcpy (t2 + 19, "Z");
      json_t *e = json_pack ("{s:i,s:s,s:s,s:s,s:s,s:s}", "count", sqlite3_column_int (st, 4), "firstTimestamp", t1,
                             "lastTimestamp", t2, "name", sqlite3_column_text (st, 1), "message",
                             sqlite3_column_text (st, 3), "type", sqlite3_column_text (st, 2));
      if (sqlite3_column_type (st, 0) != SQLITE_NULL)
        json_object_set_new (e, "container", json_string ((const char *)sqlite3_column_text (st, 0)));
      json_array_append_new (arr, e);
    }
  if (rc != SQLITE_DONE)
    {
      json_decref (arr);
      return db_error (s, rc, "list events", err);
    }
  *out = arr;
  return 0;
}

int
store_op_set (store_t *s, const char *op_id, const char *group_id, const char *status, json_t *error,
              skiff_error_t *err)
{
  LOCKED (s);
  return op_set_locked (s, op_id, group_id, status, error, err);
}

int
store_op_finish_group (store_t *s, const char *group_id, const char *status, json_t *error, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "UPDATE operations SET status=?, error=?, end_ns=? WHERE group_id=? AND status='InProgress'", &st,
               err)
      < 0)
    return -1;
  cleanup_free char *ej = json_text (error);
  bind_text (st, 1, status);
  bind_text (st, 2, ej);
  sqlite3_bind_int64 (st, 3, skiff_now_ns ());
  bind_text (st, 4, group_id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "finish operations", err);
  return 0;
}

int
store_op_get (store_t *s, const char *op_id, char **status, json_t **error, char **group_id, int64_t *start_ns,
              skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT status, error, group_id, start_ns FROM operations WHERE id=?", &st, err) < 0)
    return -1;
  bind_text (st, 1, op_id);
  *status = NULL;
  *error = NULL;
  *group_id = NULL;
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      *status = col_str (st, 0);
      *error = col_json (st, 1);
      *group_id = col_str (st, 2);
      *start_ns = sqlite3_column_int64 (st, 3);
    }
  else if (rc != SQLITE_DONE)
    return db_error (s, rc, "get operation", err);
  return 0;
}

/* ---- principals and role assignments -------------------------------------- */

static json_t *
principal_row (sqlite3_stmt *st)
{
  json_t *p
      = json_pack ("{s:s,s:s,s:s,s:I}", "appId", sqlite3_column_text (st, 0), "objectId", sqlite3_column_text (st, 1),
                   "displayName", sqlite3_column_text (st, 2), "createdNs", (json_int_t)sqlite3_column_int64 (st, 5));
  if (sqlite3_column_type (st, 3) != SQLITE_NULL)
    json_object_set_new (p, "secretHash", json_string ((const char *)sqlite3_column_text (st, 3)));
  if (sqlite3_column_type (st, 4) != SQLITE_NULL)
    json_object_set_new (p, "certificate", json_string ((const char *)sqlite3_column_text (st, 4)));
  return p;
}

int
store_principal_put (store_t *s, const char *app_id, const char *object_id, const char *name, const char *secret_hash,
                     const char *certificate, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "INSERT INTO principals (app_id, object_id, name, secret_hash, certificate, created_ns)"
               " VALUES (?,?,?,?,?,?)",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, app_id);
  bind_text (st, 2, object_id);
  bind_text (st, 3, name);
  bind_text (st, 4, secret_hash);
  bind_text (st, 5, certificate);
  sqlite3_bind_int64 (st, 6, skiff_now_ns ());
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "insert principal", err);
  return 0;
}

int
store_principal_get (store_t *s, const char *id, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  *out = NULL;
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "SELECT app_id, object_id, name, secret_hash, certificate, created_ns FROM principals"
               " WHERE app_id=lower(?1) OR object_id=lower(?1)",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, id);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    *out = principal_row (st);
  else if (rc != SQLITE_DONE)
    return db_error (s, rc, "get principal", err);
  return 0;
}

int
store_principal_list (store_t *s, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "SELECT app_id, object_id, name, secret_hash, certificate, created_ns FROM principals"
               " ORDER BY created_ns, app_id",
               &st, err)
      < 0)
    return -1;
  json_t *arr = json_array ();
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    json_array_append_new (arr, principal_row (st));
  if (rc != SQLITE_DONE)
    {
      json_decref (arr);
      return db_error (s, rc, "list principals", err);
    }
  *out = arr;
  return 0;
}

int
store_principal_delete (store_t *s, const char *app_id, int *deleted, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  *deleted = 0;
  if (exec_sql (s, "BEGIN", err) < 0)
    return -1;
  if (prepare (
          s,
          "DELETE FROM role_assignments WHERE principal_id IN (SELECT object_id FROM principals WHERE app_id=lower(?))",
          &st, err)
          < 0
      || (bind_text (st, 1, app_id), sqlite3_step (st)) != SQLITE_DONE)
    {
      exec_sql (s, "ROLLBACK", NULL);
      return err && *err ? -1 : db_error (s, SQLITE_ERROR, "delete role assignments", err);
    }
  sqlite3_finalize (st);
  st = NULL;
  if (prepare (s, "DELETE FROM principals WHERE app_id=lower(?)", &st, err) < 0
      || (bind_text (st, 1, app_id), sqlite3_step (st)) != SQLITE_DONE)
    {
      exec_sql (s, "ROLLBACK", NULL);
      return err && *err ? -1 : db_error (s, SQLITE_ERROR, "delete principal", err);
    }
  *deleted = sqlite3_changes (s->db) > 0;
  return exec_sql (s, "COMMIT", err);
}

static json_t *
assignment_row (sqlite3_stmt *st)
{
  return json_pack ("{s:s,s:s,s:s,s:s,s:I}", "name", sqlite3_column_text (st, 0), "scope", sqlite3_column_text (st, 1),
                    "roleId", sqlite3_column_text (st, 2), "principalId", sqlite3_column_text (st, 3), "createdNs",
                    (json_int_t)sqlite3_column_int64 (st, 4));
}

int
store_role_assignment_put (store_t *s, const char *name, const char *scope, const char *role_id,
                           const char *principal_id, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free char *key = lower_dup (scope);
  if (prepare (s,
               "INSERT INTO role_assignments (name, scope, scope_key, role_id, principal_id, created_ns)"
               " VALUES (lower(?),?,?,lower(?),lower(?),?)",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, name);
  bind_text (st, 2, scope);
  bind_text (st, 3, key);
  bind_text (st, 4, role_id);
  bind_text (st, 5, principal_id);
  sqlite3_bind_int64 (st, 6, skiff_now_ns ());
  int rc = sqlite3_step (st);
  if (rc == SQLITE_CONSTRAINT)
    return skiff_error_arm (err, 409, "RoleAssignmentExists", "The role assignment already exists.");
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "insert role assignment", err);
  return 0;
}

int
store_role_assignment_get (store_t *s, const char *name, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  *out = NULL;
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT name, scope, role_id, principal_id, created_ns FROM role_assignments WHERE name=lower(?)",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, name);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    *out = assignment_row (st);
  else if (rc != SQLITE_DONE)
    return db_error (s, rc, "get role assignment", err);
  return 0;
}

int
store_role_assignment_list (store_t *s, const char *principal_id, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               principal_id ? "SELECT name, scope, role_id, principal_id, created_ns FROM role_assignments"
                              " WHERE principal_id=lower(?) ORDER BY scope_key, created_ns"
                            : "SELECT name, scope, role_id, principal_id, created_ns FROM role_assignments"
                              " ORDER BY scope_key, created_ns",
               &st, err)
      < 0)
    return -1;
  if (principal_id)
    bind_text (st, 1, principal_id);
  json_t *arr = json_array ();
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    json_array_append_new (arr, assignment_row (st));
  if (rc != SQLITE_DONE)
    {
      json_decref (arr);
      return db_error (s, rc, "list role assignments", err);
    }
  *out = arr;
  return 0;
}

int
store_role_assignment_delete (store_t *s, const char *name, int *deleted, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "DELETE FROM role_assignments WHERE name=lower(?)", &st, err) < 0)
    return -1;
  bind_text (st, 1, name);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "delete role assignment", err);
  *deleted = sqlite3_changes (s->db) > 0;
  return 0;
}

/* ---- group addresses ------------------------------------------------------ */

static const char *
pool_table (store_pool_t pool)
{
  return pool == STORE_POOL_PUBLIC ? "public_addresses" : "addresses";
}

int
store_pool_get (store_t *s, store_pool_t pool, const char *group_id, uint32_t *addr, skiff_error_t *err)
{
  LOCKED (s);
  *addr = 0;
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free char *sql = skiff_strdup_printf ("SELECT addr FROM %s WHERE group_id=?", pool_table (pool));
  if (prepare (s, sql, &st, err) < 0)
    return -1;
  bind_text (st, 1, group_id);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    *addr = (uint32_t)sqlite3_column_int64 (st, 0);
  else if (rc != SQLITE_DONE)
    return db_error (s, rc, "get address", err);
  return 0;
}

int
store_pool_allocate (store_t *s, store_pool_t pool, const char *group_id, uint32_t first, uint32_t last, uint32_t *addr,
                     skiff_error_t *err)
{
  LOCKED (s);
  const char *table = pool_table (pool);
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free char *q1 = skiff_strdup_printf ("SELECT addr FROM %s WHERE group_id=?", table);
  if (prepare (s, q1, &st, err) < 0)
    return -1;
  bind_text (st, 1, group_id);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      uint32_t have = (uint32_t)sqlite3_column_int64 (st, 0);
      if (have >= first && have <= last)
        {
          *addr = have;
          return 0;
        }
      /* the group moved to another range (a new subnet): its old address goes back */
      sqlite3_finalize (st);
      st = NULL;
      cleanup_free char *qd = skiff_strdup_printf ("DELETE FROM %s WHERE group_id=?", table);
      if (prepare (s, qd, &st, err) < 0)
        return -1;
      bind_text (st, 1, group_id);
      if ((rc = sqlite3_step (st)) != SQLITE_DONE)
        return db_error (s, rc, "release address", err);
    }
  else if (rc != SQLITE_DONE)
    return db_error (s, rc, "get address", err);
  sqlite3_finalize (st);
  st = NULL;
  /* the lowest free address: walk the taken ones in order until a gap */
  cleanup_free char *q2 = skiff_strdup_printf ("SELECT addr FROM %s WHERE addr BETWEEN ? AND ? ORDER BY addr", table);
  if (prepare (s, q2, &st, err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, first);
  sqlite3_bind_int64 (st, 2, last);
  uint64_t want = first;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW && (uint64_t)sqlite3_column_int64 (st, 0) == want)
    want++;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_error (s, rc, "list addresses", err);
  if (want > last)
    return pool == STORE_POOL_PUBLIC
               ? skiff_error_arm (err, 409, "PublicIpAddressPoolExhausted",
                                  "The public IP address pool of this host has no free address left.")
               : skiff_error_arm (err, 409, "InsufficientAddressSpace",
                                  "The group's network has no free address left.");
  sqlite3_finalize (st);
  st = NULL;
  cleanup_free char *q3 = skiff_strdup_printf ("INSERT INTO %s (addr, group_id) VALUES (?, ?)", table);
  if (prepare (s, q3, &st, err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, (sqlite3_int64)want);
  bind_text (st, 2, group_id);
  rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "insert address", err);
  *addr = (uint32_t)want;
  return 0;
}

int
store_pool_release (store_t *s, store_pool_t pool, const char *group_id, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  cleanup_free char *sql = skiff_strdup_printf ("DELETE FROM %s WHERE group_id=?", pool_table (pool));
  if (prepare (s, sql, &st, err) < 0)
    return -1;
  bind_text (st, 1, group_id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "release address", err);
  return 0;
}

int
store_address_get (store_t *s, const char *group_id, uint32_t *addr, skiff_error_t *err)
{
  return store_pool_get (s, STORE_POOL_PRIVATE, group_id, addr, err);
}

int
store_address_allocate (store_t *s, const char *group_id, uint32_t first, uint32_t last, uint32_t *addr,
                        skiff_error_t *err)
{
  return store_pool_allocate (s, STORE_POOL_PRIVATE, group_id, first, last, addr, err);
}

int
store_address_release (store_t *s, const char *group_id, skiff_error_t *err)
{
  return store_pool_release (s, STORE_POOL_PRIVATE, group_id, err);
}

/* ---- host ports ----------------------------------------------------------- */

int
store_host_ports_claim (store_t *s, const char *group_id, const char *const *protos, const int *ports, size_t n,
                        skiff_error_t *err)
{
  LOCKED (s);
  if (exec_sql (s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  int ok = 0;
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "DELETE FROM host_ports WHERE group_id=?", &st, err) < 0)
    goto out;
  bind_text (st, 1, group_id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    {
      db_error (s, rc, "release host ports", err);
      goto out;
    }
  sqlite3_finalize (st);
  st = NULL;
  for (size_t i = 0; i < n; i++)
    {
      if (prepare (s, "SELECT group_id FROM host_ports WHERE proto=? AND port=?", &st, err) < 0)
        goto out;
      bind_text (st, 1, protos[i]);
      sqlite3_bind_int (st, 2, ports[i]);
      rc = sqlite3_step (st);
      if (rc == SQLITE_ROW)
        {
          skiff_error_arm (err, 409, "PortAlreadyInUse",
                           "Port %d/%s of this host is already published by another container group.", ports[i],
                           protos[i]);
          goto out;
        }
      if (rc != SQLITE_DONE)
        {
          db_error (s, rc, "check host port", err);
          goto out;
        }
      sqlite3_finalize (st);
      st = NULL;
      if (prepare (s, "INSERT OR IGNORE INTO host_ports (proto, port, group_id) VALUES (?, ?, ?)", &st, err) < 0)
        goto out;
      bind_text (st, 1, protos[i]);
      sqlite3_bind_int (st, 2, ports[i]);
      bind_text (st, 3, group_id);
      if ((rc = sqlite3_step (st)) != SQLITE_DONE)
        {
          db_error (s, rc, "claim host port", err);
          goto out;
        }
      sqlite3_finalize (st);
      st = NULL;
    }
  ok = 1;
out:
  finalizep (&st);
  if (ok)
    return exec_sql (s, "COMMIT", err);
  sqlite3_exec (s->db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}

int
store_host_ports_release (store_t *s, const char *group_id, skiff_error_t *err)
{
  return store_host_ports_claim (s, group_id, NULL, NULL, 0, err);
}

/* ---- DNS names ------------------------------------------------------------ */

int
store_dns_name_claim (store_t *s, const char *group_id, const char *fqdn, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT group_id FROM dns_names WHERE fqdn=?", &st, err) < 0)
    return -1;
  bind_text (st, 1, fqdn);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      if (strcmp ((const char *)sqlite3_column_text (st, 0), group_id) == 0)
        return 0;
      return skiff_error_arm (err, 409, "DnsNameLabelAlreadyInUse",
                              "The DNS name label of FQDN '%s' is already in use by another container group.", fqdn);
    }
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "check DNS name", err);
  sqlite3_finalize (st);
  st = NULL;
  if (prepare (s, "INSERT OR REPLACE INTO dns_names (fqdn, group_id) VALUES (?, ?)", &st, err) < 0)
    return -1;
  bind_text (st, 1, fqdn);
  bind_text (st, 2, group_id);
  if ((rc = sqlite3_step (st)) != SQLITE_DONE)
    return db_error (s, rc, "claim DNS name", err);
  return 0;
}

int
store_dns_name_release (store_t *s, const char *group_id, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "DELETE FROM dns_names WHERE group_id=?", &st, err) < 0)
    return -1;
  bind_text (st, 1, group_id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "release DNS name", err);
  return 0;
}

int
store_group_claims (store_t *s, const char *group_id, int64_t *n, skiff_error_t *err)
{
  LOCKED (s);
  *n = 0;
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "SELECT (SELECT count(*) FROM public_addresses WHERE group_id=?1)"
               " + (SELECT count(*) FROM dns_names WHERE group_id=?1)"
               " + (SELECT count(*) FROM host_ports WHERE group_id=?1)",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, group_id);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_ROW)
    return db_error (s, rc, "count claims", err);
  *n = sqlite3_column_int64 (st, 0);
  return 0;
}

/* ---- listings of what groups hold ---------------------------------------- */

/* Runs a two-column query (integer or text, text) into [{key: col0, "group": col1}]. */
static int
list_pairs (store_t *s, const char *sql, const char *key, int int_key, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  *out = NULL;
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, sql, &st, err) < 0)
    return -1;
  json_t *arr = json_array ();
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      json_t *k = int_key ? json_integer (sqlite3_column_int64 (st, 0))
                          : json_string ((const char *)sqlite3_column_text (st, 0));
      json_array_append_new (arr, json_pack ("{s:o,s:s}", key, k, "group", (const char *)sqlite3_column_text (st, 1)));
    }
  if (rc != SQLITE_DONE)
    {
      json_decref (arr);
      return db_error (s, rc, "list", err);
    }
  *out = arr;
  return 0;
}

int
store_pool_list (store_t *s, store_pool_t pool, json_t **out, skiff_error_t *err)
{
  cleanup_free char *sql = skiff_strdup_printf ("SELECT addr, group_id FROM %s ORDER BY addr", pool_table (pool));
  return list_pairs (s, sql, "addr", 1, out, err);
}

int
store_dns_name_list (store_t *s, json_t **out, skiff_error_t *err)
{
  return list_pairs (s, "SELECT fqdn, group_id FROM dns_names ORDER BY fqdn", "fqdn", 0, out, err);
}

int
store_host_ports_list (store_t *s, json_t **out, skiff_error_t *err)
{
  LOCKED (s);
  *out = NULL;
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT proto, port, group_id FROM host_ports ORDER BY proto, port", &st, err) < 0)
    return -1;
  json_t *arr = json_array ();
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    json_array_append_new (arr,
                           json_pack ("{s:s,s:i,s:s}", "protocol", (const char *)sqlite3_column_text (st, 0), "port",
                                      sqlite3_column_int (st, 1), "group", (const char *)sqlite3_column_text (st, 2)));
  if (rc != SQLITE_DONE)
    {
      json_decref (arr);
      return db_error (s, rc, "list host ports", err);
    }
  *out = arr;
  return 0;
}
