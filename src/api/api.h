/* api.h - the ARM REST API of skiffd: routing, authentication, handlers.
 *
 * The handlers know HTTP only through api_request_t / api_response_t, so they are
 * tested without a server, and the HTTP library (h2o, in http_server.c) stays
 * behind api_server_*. */
#ifndef SKIFF_API_API_H
#define SKIFF_API_API_H

#include <stddef.h>

#include "common/error.h"
#include "model/model.h"

struct store;
struct agent;
typedef struct api_cache api_cache_t;

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
  int page_size;      /* list page size (default 100) */
  api_cache_t *cache; /* may be NULL */
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

/* --- server -------------------------------------------------------------- */

typedef struct api_server api_server_t;

/* Binds 127.0.0.1:port (or `address`) and starts `threads` event-loop threads serving
 * ctx. Fails clearly if the port is in use. */
int api_server_start (api_ctx_t *ctx, const char *address, int port, int threads, api_server_t **out,
                      skiff_error_t *err);
/* Returns the bound port (useful with port 0). */
int api_server_port (api_server_t *s);
/* Stops the loops and frees the server. */
void api_server_stop (api_server_t *s);

#endif
