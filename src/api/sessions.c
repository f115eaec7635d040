/* sessions.c - exec and attach: the POST that hands out a WebSocket address and a one-time
 * password, and the table of sessions waiting for their WebSocket.
 *
 * A session lives 60 seconds or until its first WebSocket message, whichever comes first; the
 * password is checked in constant time and any attempt, right or wrong, uses the session up. */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "api_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/shellsplit.h"
#include "common/util.h"
#include "model/model.h"
#include "store/store.h"

#define SESSION_TTL_NS (60LL * 1000000000LL)
#define MAX_SESSIONS 256
#define MAX_COMMAND (64 * 1024)
#define MAX_TERMINAL 4096

typedef struct session_entry
{
  struct session_entry *next;
  char id[40];
  char password[65];
  int64_t expires_ns;
  api_session_t *s;
} session_entry_t;

struct api_sessions
{
  pthread_mutex_t lock;
  session_entry_t *head;
  int n;
};

api_sessions_t *
api_sessions_new (void)
{
  api_sessions_t *t = calloc (1, sizeof (*t));
  if (t == NULL)
    abort ();
  pthread_mutex_init (&t->lock, NULL);
  return t;
}

void
api_session_free (api_session_t *s)
{
  if (s == NULL)
    return;
  free (s->group_id);
  free (s->container);
  skiff_strv_free (s->argv);
  free (s);
}

static void
entry_free (session_entry_t *e)
{
  api_session_free (e->s);
  explicit_bzero (e->password, sizeof (e->password));
  free (e);
}

void
api_sessions_free (api_sessions_t *t)
{
  if (t == NULL)
    return;
  while (t->head)
    {
      session_entry_t *e = t->head;
      t->head = e->next;
      entry_free (e);
    }
  pthread_mutex_destroy (&t->lock);
  free (t);
}

/* Drops expired entries; called with the lock held. */
static void
prune_locked (api_sessions_t *t, int64_t now)
{
  for (session_entry_t **pp = &t->head; *pp;)
    {
      session_entry_t *e = *pp;
      if (e->expires_ns <= now)
        {
          *pp = e->next;
          entry_free (e);
          t->n--;
        }
      else
        pp = &e->next;
    }
}

/* Adds s (stolen) and fills id and password; -1 when the table is full. */
static int
session_add (api_sessions_t *t, api_session_t *s, char id[40], char password[65])
{
  session_entry_t *e = calloc (1, sizeof (*e));
  if (e == NULL)
    abort ();
  skiff_uuid (e->id);
  skiff_random_hex (e->password, 32);
  e->s = s;
  e->expires_ns = skiff_now_ns () + SESSION_TTL_NS;
  pthread_mutex_lock (&t->lock);
  prune_locked (t, skiff_now_ns ());
  if (t->n >= MAX_SESSIONS)
    {
      pthread_mutex_unlock (&t->lock);
      entry_free (e);
      return -1;
    }
  e->next = t->head;
  t->head = e;
  t->n++;
  memcpy (id, e->id, 40);
  memcpy (password, e->password, 65);
  pthread_mutex_unlock (&t->lock);
  return 0;
}

int
api_session_exists (api_sessions_t *t, const char *id)
{
  if (t == NULL)
    return 0;
  pthread_mutex_lock (&t->lock);
  prune_locked (t, skiff_now_ns ());
  int found = 0;
  for (session_entry_t *e = t->head; e && !found; e = e->next)
    found = strcmp (e->id, id) == 0;
  pthread_mutex_unlock (&t->lock);
  return found;
}

int
api_session_take (api_sessions_t *t, const char *id, const char *password, size_t password_len, api_session_t **out)
{
  *out = NULL;
  if (t == NULL)
    return -1;
  session_entry_t *e = NULL;
  pthread_mutex_lock (&t->lock);
  prune_locked (t, skiff_now_ns ());
  for (session_entry_t **pp = &t->head; *pp; pp = &(*pp)->next)
    if (strcmp ((*pp)->id, id) == 0)
      {
        e = *pp;
        *pp = e->next;
        t->n--;
        break;
      }
  pthread_mutex_unlock (&t->lock);
  if (e == NULL)
    return -1;
  size_t pl = strlen (e->password);
  unsigned char d = (unsigned char)(password_len != pl);
  for (size_t i = 0; i < pl; i++)
    d |= (unsigned char)(e->password[i] ^ (i < password_len ? password[i] : 0));
  if (d != 0)
    {
      entry_free (e);
      return -1;
    }
  *out = steal_pointer (&e->s);
  entry_free (e);
  return 0;
}

int
api_session_open (api_ctx_t *ctx, const api_session_t *s, int *fd, skiff_error_t *err)
{
  if (ctx->agent == NULL)
    return skiff_error_arm (err, 503, "ServiceUnavailable", "This server runs no containers.");
  if (s->is_exec)
    return agent_exec_open (ctx->agent, s->group_id, s->container, s->argv, s->rows, s->cols, fd, err);
  return agent_attach_open (ctx->agent, s->group_id, s->container, fd, err);
}

static int
terminal_dim (json_t *size, const char *name, int *out)
{
  json_t *v = skiff_json_get (size, name);
  if (v == NULL || json_is_null (v))
    return 0;
  if (!json_is_integer (v) || json_integer_value (v) < 0 || json_integer_value (v) > MAX_TERMINAL)
    return -1;
  *out = (int)json_integer_value (v);
  return 0;
}

void
api_handle_stream_post (call_t *c, const char *group_id, const char *container, int is_exec)
{
  cleanup_error skiff_error_t err = NULL;
  if (c->ctx->sessions == NULL)
    return api_reply_error (c, 501, "NotImplemented", "This server does not serve exec or attach.", NULL);
  store_group_t g = { 0 };
  if (store_group_get_by_id (c->ctx->store, group_id, &g, &err) < 0)
    return api_reply_skiff_error (c, err);
  int running = g.state && strcmp (g.state, "Running") == 0 && g.desired && strcmp (g.desired, "Running") == 0;
  store_group_clear (&g);
  if (!running)
    return api_reply_error (c, 409, "ContainerGroupNotRunning",
                            "The container group is not running. Start it before you exec into or attach to it.", NULL);
  api_session_t *s = calloc (1, sizeof (*s));
  if (s == NULL)
    abort ();
  s->is_exec = is_exec;
  s->group_id = skiff_strdup (group_id);
  s->container = skiff_strdup (container);
  if (is_exec)
    {
      cleanup_json json_t *body = NULL;
      if (model_parse_json (c->req->body, c->req->body_len, &body, &err) < 0)
        {
          api_session_free (s);
          return api_reply_skiff_error (c, err);
        }
      const char *command = skiff_json_get_string (body, "command");
      json_t *size = skiff_json_get (body, "terminalSize");
      if (command == NULL || strlen (command) > MAX_COMMAND)
        {
          api_session_free (s);
          return api_reply_error (c, 400, "InvalidRequestContent",
                                  "The property 'command' is required and must be a string of at most 65536 bytes.",
                                  "command");
        }
      if ((size && !json_is_object (size) && !json_is_null (size)) || terminal_dim (size, "rows", &s->rows) < 0
          || terminal_dim (size, "cols", &s->cols) < 0)
        {
          api_session_free (s);
          return api_reply_error (c, 400, "InvalidRequestContent",
                                  "The property 'terminalSize' must hold 'rows' and 'cols' between 0 and 4096.",
                                  "terminalSize");
        }
      if (skiff_shell_split (command, &s->argv, &err) < 0)
        {
          api_session_free (s);
          return api_reply_skiff_error (c, err);
        }
    }
  char id[40], password[65];
  if (session_add (c->ctx->sessions, s, id, password) < 0)
    return api_reply_error (c, 429, "TooManyRequests", "Too many exec and attach sessions are waiting. Retry later.",
                            NULL);
  const char *host = c->req->host ? c->req->host : "127.0.0.1";
  int tls = c->req->scheme && strcmp (c->req->scheme, "https") == 0;
  cleanup_free char *uri = skiff_strdup_printf ("%s://%s/skiff/sessions/%s", tls ? "wss" : "ws", host, id);
  api_reply_json (c, 200, json_pack ("{s:s,s:s}", "webSocketUri", uri, "password", password));
  explicit_bzero (password, sizeof (password));
}
