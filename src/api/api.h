/* api.h - the ARM REST API of skiffd: routing, authentication, handlers.
 *
 * The handlers know HTTP only through api_request_t / api_response_t, so they are
 * tested without a server, and the HTTP library (h2o, in http_server.c) stays
 * behind api_server_*. */
#ifndef SKIFF_API_API_H
#define SKIFF_API_API_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/error.h"
#include "model/model.h"

struct store;
struct agent;
typedef struct api_cache api_cache_t;
typedef struct api_sessions api_sessions_t;

/* A cache of rendered GET responses (see cache.c); the API works without one. */
api_cache_t *api_cache_new (void);
void api_cache_free (api_cache_t *c);

typedef struct
{
  struct store *store;
  struct agent *agent; /* may be NULL in tests: then nothing is reconciled */
  const char *data_dir;
  const char *subscription_id;
  const char *tenant_id;
  const char *admin_token;
  model_limits_t limits;
  int page_size;                /* list page size (default 100) */
  api_cache_t *cache;           /* may be NULL */
  EVP_PKEY *signing_key;        /* signs and checks access tokens; NULL: only the admin token works */
  const char *const *audiences; /* accepted token audiences, NULL-terminated (trailing '/' ignored) */
  int token_lifetime_s;         /* access-token lifetime (default 3600) */
  api_sessions_t *sessions;     /* exec/attach sessions; NULL: exec and attach are refused */
  uint32_t host_net;            /* the host's default group network (host order); virtual networks */
  int host_net_prefix;          /* may not overlap it. 0/0: none */
  int max_virtual_networks;     /* per subscription (0: Azure's 1000) */
} api_ctx_t;

typedef struct
{
  const char *method;
  const char *path; /* raw path without the query, not NUL-terminated */
  size_t path_len;
  const char *query; /* raw query after '?', may be NULL */
  size_t query_len;
  const char *authorization; /* NUL-terminated header value or NULL */
  const char *host;          /* NUL-terminated Host header or NULL */
  const char *if_none_match; /* NUL-terminated If-None-Match header or NULL */
  const char *scheme;        /* "http" or "https" */
  const char *body;
  size_t body_len;
} api_request_t;

#define API_MAX_HEADERS 8

typedef struct
{
  int status;
  char *body; /* owned, may be NULL */
  size_t body_len;
  int n_headers;
  char *header_names[API_MAX_HEADERS]; /* owned */
  char *header_values[API_MAX_HEADERS];
} api_response_t;

/* Handles one request completely: authentication, routing, the operation, and the
 * ARM-shaped response (errors included). Never fails: errors become responses. */
void api_handle (api_ctx_t *ctx, const api_request_t *req, api_response_t *res);

/* Frees what a response owns. */
void api_response_clear (api_response_t *res);

/* --- routing, exposed for unit tests ------------------------------------- */

#define API_MAX_SEGMENTS 16

typedef struct
{
  int n;
  char *seg[API_MAX_SEGMENTS]; /* percent-decoded, owned */
} api_path_t;

/* Splits a raw path into decoded segments, collapsing empty ones ("//"). Fails with 400
 * InvalidRequestUri on bad escapes, NUL bytes, too many or too long segments. */
int api_path_parse (const char *path, size_t len, api_path_t *out, skiff_error_t *err);
void api_path_clear (api_path_t *p);

/* Finds a query parameter (case-insensitive name), percent-decoded, owned; NULL if absent. */
char *api_query_get (const char *query, size_t len, const char *name);

/* --- exec and attach sessions ------------------------------------------ */

typedef struct
{
  int is_exec;
  char *group_id;
  char *container;
  char **argv; /* exec only, NULL-terminated */
  int rows, cols;
} api_session_t;

/* An in-memory table of sessions handed out by POST .../exec|attach; thread-safe. */
api_sessions_t *api_sessions_new (void);
void api_sessions_free (api_sessions_t *t);
/* 1 when id names a session that has not expired (the WebSocket upgrade is refused otherwise). */
int api_session_exists (api_sessions_t *t, const char *id);
/* Removes session id (any attempt uses it up) and, when password matches and it has not expired,
 * returns it in *out (owned: api_session_free). Returns -1 otherwise. */
int api_session_take (api_sessions_t *t, const char *id, const char *password, size_t password_len,
                      api_session_t **out);
void api_session_free (api_session_t *s);
/* Opens the byte stream of a taken session through the agent (exec: a pty in the container;
 * attach: the container's output); *fd is a connected non-blocking socket. */
int api_session_open (api_ctx_t *ctx, const api_session_t *s, int *fd, skiff_error_t *err);

/* --- server -------------------------------------------------------------- */

typedef struct api_server api_server_t;

typedef struct
{
  const char *address;   /* TCP listen address (default 127.0.0.1) */
  int port;              /* 0: any free port */
  const char *tls_cert;  /* PEM certificate chain; NULL serves plain HTTP on TCP (tests only) */
  const char *tls_key;   /* PEM private key */
  const char *unix_path; /* plain HTTP on this unix socket (mode 0600), or NULL */
  int threads;
} api_server_config_t;

/* Binds the TCP listener (TLS when a certificate is given) and the unix socket, and starts the
 * event-loop threads serving ctx. Fails clearly if the port is in use or TLS files are bad. */
int api_server_start (api_ctx_t *ctx, const api_server_config_t *cfg, api_server_t **out, skiff_error_t *err);
/* Returns the bound port (useful with port 0). */
int api_server_port (api_server_t *s);
/* Stops the loops and frees the server. */
void api_server_stop (api_server_t *s);

#endif
