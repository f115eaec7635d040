/* store_internal.h - what the SQLite store's source files share: the connection, its lock and
 * small statement helpers. Not for use outside src/store. */
#ifndef SKIFF_STORE_STORE_INTERNAL_H
#define SKIFF_STORE_STORE_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/util.h"
#include "store.h"

struct store
{
  sqlite3 *db;
  pthread_mutex_t lock;
  _Atomic uint64_t changes; /* bumped on every row written: readers' cheap staleness check */
};

static inline int
db_error (store_t *s, int rc, const char *what, skiff_error_t *err)
{
  return skiff_error_arm (err, 500, "InternalServerError", "store: %s: %s (%d)", what, sqlite3_errmsg (s->db), rc);
}

static inline void
finalizep (sqlite3_stmt **st)
{
  if (*st)
    sqlite3_finalize (*st);
  *st = NULL;
}
#define cleanup_stmt __attribute__ ((cleanup (finalizep)))

static inline void
unlockp (pthread_mutex_t **m)
{
  if (*m)
    pthread_mutex_unlock (*m);
}
#define LOCKED(s)                                                                                                      \
  pthread_mutex_t *_lk __attribute__ ((cleanup (unlockp))) = &(s)->lock;                                               \
  pthread_mutex_lock (_lk)

static inline int
prepare (store_t *s, const char *sql, sqlite3_stmt **st, skiff_error_t *err)
{
  int rc = sqlite3_prepare_v2 (s->db, sql, -1, st, NULL);
  if (rc != SQLITE_OK)
    return db_error (s, rc, "prepare", err);
  return 0;
}

static inline char *
json_text (json_t *j)
{
  return j ? json_dumps (j, JSON_COMPACT) : NULL;
}

static inline void
bind_text (sqlite3_stmt *st, int i, const char *v)
{
  if (v)
    sqlite3_bind_text (st, i, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (st, i);
}

static inline json_t *
col_json (sqlite3_stmt *st, int i)
{
  const char *t = (const char *)sqlite3_column_text (st, i);
  return t ? json_loads (t, 0, NULL) : NULL;
}

static inline char *
col_str (sqlite3_stmt *st, int i)
{
  const char *t = (const char *)sqlite3_column_text (st, i);
  return t ? skiff_strdup (t) : NULL;
}

static inline char *
lower_dup (const char *s)
{
  return skiff_ascii_lower (skiff_strdup (s));
}

#endif
