/* reply.c - building ARM responses, shared by the API's handlers. */
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* ---- responses ---------------------------------------------------------- */

void
api_add_header (api_response_t *res, const char *name, const char *value)
{
  if (res->n_headers >= API_MAX_HEADERS)
    return;
  res->header_names[res->n_headers] = skiff_strdup (name);
  res->header_values[res->n_headers] = skiff_strdup (value);
  res->n_headers++;
}

void
api_reply_json (call_t *c, int status, json_t *body /* stolen, may be NULL */)
{
  c->res->status = status;
  if (body)
    {
      c->res->body = json_dumps (body, JSON_COMPACT);
      c->res->body_len = strlen (c->res->body);
      json_decref (body);
    }
}

void
api_reply_error (call_t *c, int status, const char *code, const char *message, const char *target)
{
  json_t *e = json_pack ("{s:s,s:s}", "code", code, "message", message);
  if (target)
    json_object_set_new (e, "target", json_string (target));
  api_reply_json (c, status, json_pack ("{s:o}", "error", e));
}

void
api_reply_skiff_error (call_t *c, skiff_error_t err)
{
  if (err == NULL)
    return api_reply_error (c, 409, "Conflict", "The resource changed while the request ran. Please retry.", NULL);
  int status = skiff_error_http_status (err);
  if (err->code == NULL)
    log_error ("internal error: %s", err->msg);
  api_reply_error (c, status, err->code ? err->code : "InternalServerError",
                   err->code ? err->msg : "The server encountered an internal error. Please retry the request.",
                   err->target);
}

void
api_response_clear (api_response_t *res)
{
  free (res->body);
  for (int i = 0; i < res->n_headers; i++)
    {
      free (res->header_names[i]);
      free (res->header_values[i]);
    }
  memset (res, 0, sizeof (*res));
}

int
api_seg_is (call_t *c, int i, const char *lit)
{
  return i < c->path.n && strcasecmp (c->path.seg[i], lit) == 0;
}

int
api_method_is (call_t *c, const char *m)
{
  return strcmp (c->req->method, m) == 0;
}

char *
api_base_url (call_t *c)
{
  const char *host = c->req->host ? c->req->host : "127.0.0.1";
  return skiff_strdup_printf ("%s://%s", c->req->scheme ? c->req->scheme : "http", host);
}
