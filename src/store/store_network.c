/* store_network.c - Microsoft.Network resources (virtual networks, subnets, private DNS zones,
 * their links) in the SQLite store: one row per resource with its ARM body as JSON, keyed by
 * its lowercased ARM id, children found through their parent's key. */
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "store.h"
#include "store_internal.h"

void
store_netres_clear (store_netres_t *r)
{
  free (r->id);
  free (r->type);
  free (r->sub);
  free (r->rg);
  free (r->parent_id);
  free (r->name);
  json_decref (r->body);
  memset (r, 0, sizeof *r);
}

void
store_netres_free_array (store_netres_t *a, int n)
{
  for (int i = 0; i < n; i++)
    store_netres_clear (&a[i]);
  free (a);
}

static char *
lower (const char *s)
{
  return s ? skiff_ascii_lower (skiff_strdup (s)) : NULL;
}

#define COLUMNS "type, sub, name, body, created_ns, updated_ns"

/* Fills r from a row of COLUMNS; the ids, resource group and parent come from the body's
 * "_skiff" object (the spelling the client used). */
static void
read_row (sqlite3_stmt *st, store_netres_t *r)
{
  memset (r, 0, sizeof *r);
  r->type = col_str (st, 0);
  r->sub = col_str (st, 1);
  r->name = col_str (st, 2);
  json_t *body = col_json (st, 3);
  json_t *meta = json_object_get (body, "_skiff");
  r->id = skiff_strdup (json_string_value (json_object_get (meta, "id")) ?: "");
  r->rg = skiff_strdup (json_string_value (json_object_get (meta, "rg")) ?: "");
  const char *parent = json_string_value (json_object_get (meta, "parent"));
  r->parent_id = parent ? skiff_strdup (parent) : NULL;
  json_object_del (body, "_skiff");
  r->body = body ? body : json_object ();
  r->created_ns = sqlite3_column_int64 (st, 4);
  r->updated_ns = sqlite3_column_int64 (st, 5);
}

int
store_netres_put (store_t *s, const store_netres_t *r, int *created, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_free char *key = lower (r->id);
  cleanup_free char *rg_key = lower (r->rg);
  cleanup_free char *parent_key = lower (r->parent_id);
  int64_t now = skiff_now_ns ();
  cleanup_json json_t *body = json_deep_copy (r->body ? r->body : json_object ());
  json_object_set_new (body, "_skiff",
                       json_pack ("{s:s,s:s,s:o}", "id", r->id, "rg", r->rg ? r->rg : "", "parent",
                                  r->parent_id ? json_string (r->parent_id) : json_null ()));
  cleanup_free char *text = json_dumps (body, JSON_COMPACT);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT created_ns FROM net_resources WHERE id_key=?", &st, err) < 0)
    return -1;
  bind_text (st, 1, key);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_error (s, rc, "get network resource", err);
  int64_t created_ns = rc == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : now;
  *created = rc == SQLITE_DONE;
  sqlite3_finalize (st);
  st = NULL;
  if (prepare (s,
               "INSERT OR REPLACE INTO net_resources (id_key, type, sub, rg_key, parent_key, name, body, created_ns, "
               "updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, key);
  bind_text (st, 2, r->type);
  bind_text (st, 3, r->sub);
  bind_text (st, 4, rg_key ? rg_key : "");
  bind_text (st, 5, parent_key);
  bind_text (st, 6, r->name);
  bind_text (st, 7, text);
  sqlite3_bind_int64 (st, 8, created_ns);
  sqlite3_bind_int64 (st, 9, now);
  if ((rc = sqlite3_step (st)) != SQLITE_DONE)
    return db_error (s, rc, "put network resource", err);
  return 0;
}

int
store_netres_get (store_t *s, const char *id, store_netres_t *out, skiff_error_t *err)
{
  LOCKED (s);
  memset (out, 0, sizeof *out);
  cleanup_free char *key = lower (id);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s, "SELECT " COLUMNS " FROM net_resources WHERE id_key=?", &st, err) < 0)
    return -1;
  bind_text (st, 1, key);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_DONE)
    return 1;
  if (rc != SQLITE_ROW)
    return db_error (s, rc, "get network resource", err);
  read_row (st, out);
  return 0;
}

int
store_netres_list (store_t *s, const char *type, const char *sub, const char *rg, const char *parent_id,
                   store_netres_t **out, int *n, skiff_error_t *err)
{
  LOCKED (s);
  *out = NULL;
  *n = 0;
  cleanup_free char *rg_key = lower (rg);
  cleanup_free char *parent_key = lower (parent_id);
  cleanup_stmt sqlite3_stmt *st = NULL;
  if (prepare (s,
               "SELECT " COLUMNS " FROM net_resources WHERE type=?1 AND (?2 IS NULL OR parent_key=?2)"
               " AND (?3 IS NULL OR sub=?3) AND (?4 IS NULL OR rg_key=?4) ORDER BY name, id_key",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, type);
  bind_text (st, 2, parent_key);
  bind_text (st, 3, sub);
  bind_text (st, 4, rg_key);
  int cap = 0, rc;
  store_netres_t *v = NULL;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (*n == cap)
        {
          cap = cap ? cap * 2 : 8;
          store_netres_t *nv = realloc (v, (size_t)cap * sizeof *v);
          if (nv == NULL)
            abort ();
          v = nv;
        }
      read_row (st, &v[(*n)++]);
    }
  if (rc != SQLITE_DONE)
    {
      store_netres_free_array (v, *n);
      *n = 0;
      return db_error (s, rc, "list network resources", err);
    }
  *out = v;
  return 0;
}

int
store_netres_delete (store_t *s, const char *id, int *deleted, skiff_error_t *err)
{
  LOCKED (s);
  cleanup_free char *key = lower (id);
  cleanup_stmt sqlite3_stmt *st = NULL;
  /* the resource and everything below it (children, their children ...) */
  if (prepare (s,
               "WITH RECURSIVE tree(k) AS (SELECT ?1 UNION SELECT n.id_key FROM net_resources n JOIN tree t ON "
               "n.parent_key = t.k) DELETE FROM net_resources WHERE id_key IN (SELECT k FROM tree)",
               &st, err)
      < 0)
    return -1;
  bind_text (st, 1, key);
  int rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    return db_error (s, rc, "delete network resource", err);
  *deleted = sqlite3_changes (s->db) > 0;
  return 0;
}
