/* identity.c - who is calling: the token service (OAuth2 client credentials, with a secret or a
 * certificate assertion), the discovery documents clients read before they log in, the check of
 * the bearer token on every ARM call, and skiff's service-principal API.
 *
 * Access tokens are RS256 JWTs signed with skiffd's own key. Azure's clients never look inside
 * them; skiffd checks signature, lifetime, tenant and audience on every call. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_internal.h"
#include "auth/auth.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "model/model.h"
#include "store/store.h"

#define CLOCK_SKEW_S 300
#define MAX_CERT_PEM (64 * 1024)
#define MAX_NAME_LEN 128

/* ---- helpers ------------------------------------------------------------- */

static int
constant_time_eq (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  unsigned char d = (unsigned char)(la != lb);
  for (size_t i = 0; i < la && i < lb; i++)
    d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}

/* Compares two URLs ignoring case and trailing slashes. */
static int
audience_eq (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  while (la > 0 && a[la - 1] == '/')
    la--;
  while (lb > 0 && b[lb - 1] == '/')
    lb--;
  return la == lb && strncasecmp (a, b, la) == 0;
}

static int
audience_accepted (api_ctx_t *ctx, const char *aud)
{
  if (aud == NULL || ctx->audiences == NULL)
    return 0;
  for (const char *const *a = ctx->audiences; *a; a++)
    if (audience_eq (*a, aud))
      return 1;
  return 0;
}

static void
oauth_error (call_t *c, int status, const char *error, const char *description)
{
  char ts[40];
  skiff_format_time (skiff_now_ns (), ts, sizeof (ts));
  api_reply_json (c, status,
                  json_pack ("{s:s,s:s,s:[],s:s,s:s}", "error", error, "error_description", description, "error_codes",
                             "timestamp", ts, "trace_id", ""));
}

/* The tenant segment of a token-service path: our tenant id or "adfs". */
static int
tenant_ok (call_t *c, const char *t)
{
  return strcasecmp (t, "adfs") == 0 || strcasecmp (t, c->ctx->tenant_id) == 0;
}

static json_t *
openid_configuration (call_t *c, const char *tenant)
{
  cleanup_free char *base = api_base_url (c);
  int adfs = strcasecmp (tenant, "adfs") == 0;
  cleanup_free char *prefix
      = adfs ? skiff_strdup_printf ("%s/adfs", base) : skiff_strdup_printf ("%s/%s", base, tenant);
  cleanup_free char *issuer = adfs ? skiff_strdup (prefix) : skiff_strdup_printf ("%s/v2.0", prefix);
  cleanup_free char *token = skiff_strdup_printf ("%s/oauth2%s/token", prefix, adfs ? "" : "/v2.0");
  cleanup_free char *authz = skiff_strdup_printf ("%s/oauth2%s/authorize", prefix, adfs ? "" : "/v2.0");
  cleanup_free char *keys = skiff_strdup_printf ("%s/discovery%s/keys", prefix, adfs ? "" : "/v2.0");
  return json_pack ("{s:s,s:s,s:s,s:s,s:[s],s:[s],s:[s,s],s:[s],s:[s],s:s,s:[s]}", "issuer", issuer,
                    "authorization_endpoint", authz, "token_endpoint", token, "jwks_uri", keys,
                    "response_types_supported", "token", "grant_types_supported", "client_credentials",
                    "token_endpoint_auth_methods_supported", "client_secret_post", "private_key_jwt",
                    "id_token_signing_alg_values_supported", "RS256", "subject_types_supported", "pairwise",
                    "tenant_region_scope", "local", "scopes_supported", "openid");
}

static json_t *
metadata_endpoints (call_t *c)
{
  cleanup_free char *base = api_base_url (c);
  cleanup_free char *login = skiff_strdup_printf ("%s/adfs", base);
  cleanup_free char *rm = skiff_strdup_printf ("%s/", base);
  return json_pack ("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:[s,s],s:s,s:s},s:s,s:{}}", "galleryEndpoint", "", "graphEndpoint",
                    "https://graph.windows.net/", "graphAudience", "https://graph.windows.net/", "portalEndpoint", "",
                    "name", "skiff", "authentication", "loginEndpoint", login, "audiences", rm,
                    "https://management.core.windows.net/", "tenant", "adfs", "identityProvider", "ADFS",
                    "resourceManager", rm, "suffixes");
}

/* ---- the token endpoint --------------------------------------------------- */

static char *
form_get (call_t *c, const char *name)
{
  return api_query_get (c->req->body, c->req->body_len, name);
}

/* Compares a thumbprint from a JWT header with ours: MSAL Python pads its base64url with '='. */
static int
thumbprint_eq (const char *theirs, const char *ours)
{
  if (ours == NULL)
    return 0;
  size_t lt = strlen (theirs), lo = strlen (ours);
  while (lt > 0 && theirs[lt - 1] == '=')
    lt--;
  return lt == lo && strncmp (theirs, ours, lo) == 0;
}

/* Checks a client_assertion JWT (RS256 or PS256) against the principal's certificate. */
static int
check_assertion (call_t *c, json_t *principal, const char *client_id, const char *assertion, const char **why)
{
  const char *pem = json_string_value (json_object_get (principal, "certificate"));
  if (pem == NULL)
    {
      *why = "The application has no certificate credential.";
      return -1;
    }
  X509 *cert = NULL;
  cleanup_error skiff_error_t err = NULL;
  if (auth_cert_parse (pem, strlen (pem), &cert, &err) < 0)
    {
      *why = "The application's certificate cannot be read.";
      return -1;
    }
  cleanup_json json_t *header = NULL, *claims = NULL;
  int rc = -1;
  EVP_PKEY *pub = X509_get0_pubkey (cert);
  cleanup_free char *x5t = auth_cert_x5t (cert);
  cleanup_free char *x5t256 = auth_cert_x5t_s256 (cert);
  if (pub == NULL || auth_jwt_verify_assertion (assertion, pub, &header, &claims, &err) < 0)
    *why = "The client assertion is malformed or its signature does not match the registered certificate.";
  else
    {
      const char *hx5t = json_string_value (json_object_get (header, "x5t"));
      const char *hx5t256 = json_string_value (json_object_get (header, "x5t#S256"));
      const char *iss = json_string_value (json_object_get (claims, "iss"));
      const char *sub = json_string_value (json_object_get (claims, "sub"));
      const char *aud = json_string_value (json_object_get (claims, "aud"));
      json_t *exp = json_object_get (claims, "exp"), *nbf = json_object_get (claims, "nbf");
      time_t now = time (NULL);
      cleanup_free char *base = api_base_url (c);
      cleanup_free char *path = strndup (c->req->path, c->req->path_len);
      cleanup_free char *endpoint = skiff_strdup_printf ("%s%s", base, path);
      if ((hx5t && !thumbprint_eq (hx5t, x5t)) || (hx5t256 && !thumbprint_eq (hx5t256, x5t256)))
        *why = "The client assertion's x5t does not match the registered certificate.";
      else if (iss == NULL || sub == NULL || strcasecmp (iss, client_id) != 0 || strcasecmp (sub, client_id) != 0)
        *why = "The client assertion's iss and sub must be the client id.";
      else if (aud == NULL || !audience_eq (aud, endpoint))
        *why = "The client assertion's audience must be the token endpoint.";
      else if (!json_is_integer (exp) && !json_is_real (exp))
        *why = "The client assertion has no expiry.";
      else if (json_number_value (exp) + CLOCK_SKEW_S < (double)now)
        *why = "The client assertion has expired.";
      else if (nbf && json_is_number (nbf) && json_number_value (nbf) > (double)now + CLOCK_SKEW_S)
        *why = "The client assertion is not valid yet.";
      else
        rc = 0;
    }
  X509_free (cert);
  return rc;
}

static void
handle_token (call_t *c, const char *tenant)
{
  if (!api_method_is (c, "POST"))
    return oauth_error (c, 405, "invalid_request", "The token endpoint takes POST requests.");
  if (!tenant_ok (c, tenant))
    return oauth_error (c, 400, "invalid_tenant", "The tenant is not known to this server.");
  if (c->ctx->signing_key == NULL)
    return oauth_error (c, 503, "temporarily_unavailable", "This server issues no tokens.");
  cleanup_free char *grant = form_get (c, "grant_type");
  cleanup_free char *client_id = form_get (c, "client_id");
  cleanup_free char *secret = form_get (c, "client_secret");
  cleanup_free char *assertion_type = form_get (c, "client_assertion_type");
  cleanup_free char *assertion = form_get (c, "client_assertion");
  cleanup_free char *scope = form_get (c, "scope");
  cleanup_free char *resource = form_get (c, "resource");
  if (grant == NULL || strcmp (grant, "client_credentials") != 0)
    return oauth_error (c, 400, "unsupported_grant_type", "Only the client_credentials grant is supported.");
  if (client_id == NULL || *client_id == '\0' || strlen (client_id) > 64)
    return oauth_error (c, 400, "invalid_request", "The request body must contain the 'client_id' parameter.");
  /* the resource: the first scope ending in /.default (v2), or the resource parameter (v1) */
  cleanup_free char *aud = NULL;
  if (scope)
    {
      char *save = NULL;
      for (char *tok = strtok_r (scope, " ", &save); tok && aud == NULL; tok = strtok_r (NULL, " ", &save))
        {
          size_t l = strlen (tok);
          if (l > 9 && strcmp (tok + l - 9, "/.default") == 0)
            aud = strndup (tok, l - 9);
        }
    }
  else if (resource)
    aud = skiff_strdup (resource);
  if (aud == NULL)
    return oauth_error (c, 400, "invalid_scope", "The request must name a resource as a scope ending in '/.default'.");
  if (!audience_accepted (c->ctx, aud))
    {
      cleanup_free char *m = skiff_strdup_printf ("The resource '%s' is not served by this server.", aud);
      return oauth_error (c, 400, "invalid_resource", m);
    }
  cleanup_json json_t *p = NULL;
  cleanup_error skiff_error_t err = NULL;
  if (store_principal_get (c->ctx->store, client_id, &p, &err) < 0)
    return oauth_error (c, 500, "server_error", "The identity store failed.");
  const char *app_id = json_string_value (json_object_get (p, "appId"));
  if (p == NULL || app_id == NULL || strcasecmp (app_id, client_id) != 0)
    {
      cleanup_free char *m
          = skiff_strdup_printf ("Application with identifier '%s' was not found in the tenant.", client_id);
      return oauth_error (c, 400, "unauthorized_client", m);
    }
  if (secret)
    {
      const char *hash = json_string_value (json_object_get (p, "secretHash"));
      if (hash == NULL || !auth_secret_verify (secret, hash))
        return oauth_error (c, 401, "invalid_client", "Invalid client secret provided.");
    }
  else if (assertion)
    {
      const char *why = NULL;
      if (assertion_type == NULL || strcmp (assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"))
        return oauth_error (c, 400, "invalid_request", "The client_assertion_type must be jwt-bearer.");
      if (check_assertion (c, p, client_id, assertion, &why) < 0)
        return oauth_error (c, 401, "invalid_client", why);
    }
  else
    return oauth_error (c, 401, "invalid_client",
                        "The request body must contain 'client_secret' or 'client_assertion'.");

  int lifetime = c->ctx->token_lifetime_s > 0 ? c->ctx->token_lifetime_s : 3600;
  json_int_t now = (json_int_t)time (NULL);
  cleanup_free char *base = api_base_url (c);
  cleanup_free char *iss = skiff_strdup_printf ("%s/%s/v2.0", base, c->ctx->tenant_id);
  char uti[40];
  skiff_uuid (uti);
  const char *oid = json_string_value (json_object_get (p, "objectId"));
  cleanup_json json_t *claims
      = json_pack ("{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "aud", aud, "iss", iss, "iat", now,
                   "nbf", now, "exp", now + lifetime, "tid", c->ctx->tenant_id, "oid", oid, "sub", oid, "appid", app_id,
                   "azp", app_id, "appidacr", secret ? "1" : "2", "idtyp", "app", "ver", "1.0", "uti", uti);
  cleanup_free char *kid = auth_key_id (c->ctx->signing_key);
  cleanup_free char *token = NULL;
  if (auth_jwt_sign (c->ctx->signing_key, kid, claims, &token, &err) < 0)
    {
      log_error ("sign token: %s", err->msg);
      return oauth_error (c, 500, "server_error", "The token could not be signed.");
    }
  log_info ("issued a token to %s for %s", app_id, aud);
  api_reply_json (c, 200,
                  json_pack ("{s:s,s:i,s:i,s:I,s:s,s:s}", "token_type", "Bearer", "expires_in", lifetime - 1,
                             "ext_expires_in", lifetime - 1, "expires_on", now + lifetime, "resource", aud,
                             "access_token", token));
}

int
api_identity_route (call_t *c)
{
  api_path_t *p = &c->path;
  if (p->n == 2 && api_seg_is (c, 0, "metadata") && api_seg_is (c, 1, "endpoints"))
    {
      api_reply_json (c, 200, metadata_endpoints (c));
      return 1;
    }
  if (p->n < 3)
    return 0;
  const char *tenant = p->seg[0];
  if (!strcasecmp (tenant, "subscriptions") || !strcasecmp (tenant, "providers") || !strcasecmp (tenant, "skiff"))
    return 0;
  /* {tenant}/.well-known/openid-configuration and {tenant}/v2.0/.well-known/openid-configuration */
  if ((p->n == 3 && api_seg_is (c, 1, ".well-known") && api_seg_is (c, 2, "openid-configuration"))
      || (p->n == 4 && api_seg_is (c, 1, "v2.0") && api_seg_is (c, 2, ".well-known")
          && api_seg_is (c, 3, "openid-configuration")))
    {
      if (!tenant_ok (c, tenant))
        oauth_error (c, 400, "invalid_tenant", "The tenant is not known to this server.");
      else
        api_reply_json (c, 200, openid_configuration (c, tenant));
      return 1;
    }
  /* {tenant}/oauth2/token and {tenant}/oauth2/v2.0/token */
  if ((p->n == 3 && api_seg_is (c, 1, "oauth2") && api_seg_is (c, 2, "token"))
      || (p->n == 4 && api_seg_is (c, 1, "oauth2") && api_seg_is (c, 2, "v2.0") && api_seg_is (c, 3, "token")))
    {
      handle_token (c, tenant);
      return 1;
    }
  /* {tenant}/discovery/keys and {tenant}/discovery/v2.0/keys */
  if ((p->n == 3 && api_seg_is (c, 1, "discovery") && api_seg_is (c, 2, "keys"))
      || (p->n == 4 && api_seg_is (c, 1, "discovery") && api_seg_is (c, 2, "v2.0") && api_seg_is (c, 3, "keys")))
    {
      if (!tenant_ok (c, tenant) || c->ctx->signing_key == NULL)
        oauth_error (c, 404, "invalid_tenant", "The tenant is not known to this server.");
      else
        api_reply_json (c, 200, auth_jwks (c->ctx->signing_key));
      return 1;
    }
  return 0;
}

/* ---- bearer tokens on ARM calls ------------------------------------------- */

static int
unauthorized (call_t *c, const char *code, const char *message)
{
  cleanup_free char *base = api_base_url (c);
  cleanup_free char *h = skiff_strdup_printf (
      "Bearer authorization_uri=\"%s/adfs\", error=\"invalid_token\", error_description=\"%s\"", base, code);
  api_add_header (c->res, "WWW-Authenticate", h);
  api_reply_error (c, 401, code, message, NULL);
  return -1;
}

int
api_authenticate (call_t *c)
{
  const char *h = c->req->authorization;
  if (h == NULL)
    return unauthorized (c, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.");
  if (strncasecmp (h, "Bearer ", 7) != 0)
    return unauthorized (c, "AuthenticationFailed",
                         "Authentication failed. The 'Authorization' header is provided in an invalid format.");
  const char *token = h + 7;
  while (*token == ' ')
    token++;
  if (c->ctx->admin_token && constant_time_eq (token, c->ctx->admin_token))
    {
      c->who.is_admin = 1;
      return 0;
    }
  cleanup_json json_t *header = NULL, *claims = NULL;
  cleanup_error skiff_error_t err = NULL;
  if (c->ctx->signing_key == NULL || auth_jwt_verify (token, c->ctx->signing_key, &header, &claims, &err) < 0)
    return unauthorized (c, "InvalidAuthenticationToken", "The access token is invalid.");
  json_t *exp = json_object_get (claims, "exp"), *nbf = json_object_get (claims, "nbf");
  time_t now = time (NULL);
  if (!json_is_number (exp) || json_number_value (exp) <= (double)now)
    {
      char e[40] = "", n[40];
      if (json_is_number (exp))
        skiff_format_time ((int64_t)json_number_value (exp) * 1000000000LL, e, sizeof (e));
      skiff_format_time ((int64_t)now * 1000000000LL, n, sizeof (n));
      cleanup_free char *m
          = skiff_strdup_printf ("The access token expiry UTC time '%s' is earlier than current UTC time '%s'.", e, n);
      return unauthorized (c, "ExpiredAuthenticationToken", m);
    }
  if (json_is_number (nbf) && json_number_value (nbf) > (double)now + CLOCK_SKEW_S)
    return unauthorized (c, "InvalidAuthenticationToken", "The access token is not valid yet.");
  const char *tid = json_string_value (json_object_get (claims, "tid"));
  if (tid == NULL || strcasecmp (tid, c->ctx->tenant_id) != 0)
    return unauthorized (c, "InvalidAuthenticationTokenTenant",
                         "The access token is from a tenant that this server does not serve.");
  const char *aud = json_string_value (json_object_get (claims, "aud"));
  if (!audience_accepted (c->ctx, aud))
    return unauthorized (c, "InvalidAuthenticationTokenAudience",
                         "The access token has been obtained for the wrong audience or resource.");
  const char *oid = json_string_value (json_object_get (claims, "oid"));
  cleanup_json json_t *p = NULL;
  if (oid == NULL || store_principal_get (c->ctx->store, oid, &p, &err) < 0 || p == NULL)
    return unauthorized (c, "InvalidAuthenticationToken", "The access token's principal no longer exists.");
  c->who.app_id = skiff_strdup (json_string_value (json_object_get (p, "appId")));
  c->who.object_id = skiff_strdup (json_string_value (json_object_get (p, "objectId")));
  if (store_role_assignment_list (c->ctx->store, c->who.object_id, &c->who.assignments, &err) < 0)
    {
      api_reply_skiff_error (c, err);
      return -1;
    }
  return 0;
}

/* ---- service principals (skiff's own API) ---------------------------------- */

static json_t *
principal_view (api_ctx_t *ctx, json_t *p)
{
  char ts[40];
  skiff_format_time ((int64_t)json_integer_value (json_object_get (p, "createdNs")), ts, sizeof (ts));
  return json_pack ("{s:O,s:O,s:O,s:s,s:b,s:b,s:s}", "appId", json_object_get (p, "appId"), "objectId",
                    json_object_get (p, "objectId"), "displayName", json_object_get (p, "displayName"), "tenant",
                    ctx->tenant_id, "hasPassword", json_object_get (p, "secretHash") != NULL, "hasCertificate",
                    json_object_get (p, "certificate") != NULL, "createdTime", ts);
}

static void
principal_create (call_t *c)
{
  cleanup_error skiff_error_t err = NULL;
  cleanup_json json_t *body = NULL;
  if (model_parse_json (c->req->body, c->req->body_len, &body, &err) < 0)
    return api_reply_skiff_error (c, err);
  if (!json_is_object (body))
    return api_reply_error (c, 400, "InvalidRequestContent", "The request content must be a JSON object.", NULL);
  const char *name = skiff_json_get_string (body, "displayName");
  if (name == NULL)
    name = skiff_json_get_string (body, "name");
  if (name == NULL || *name == '\0' || strlen (name) > MAX_NAME_LEN)
    return api_reply_error (c, 400, "InvalidRequestContent",
                            "The property 'displayName' is required and must be 1-128 characters.", "displayName");
  json_t *cert_j = skiff_json_get (body, "certificate");
  const char *cert = json_string_value (cert_j);
  if (cert_j && !json_is_null (cert_j))
    {
      if (cert == NULL || strlen (cert) > MAX_CERT_PEM)
        return api_reply_error (c, 400, "InvalidCertificate", "The property 'certificate' must be a PEM certificate.",
                                "certificate");
      X509 *x = NULL;
      if (auth_cert_parse (cert, strlen (cert), &x, &err) < 0)
        return api_reply_error (c, 400, "InvalidCertificate",
                                "The property 'certificate' does not hold a readable PEM certificate.", "certificate");
      X509_free (x);
    }
  else
    cert = NULL;
  char app_id[40], object_id[40];
  skiff_uuid (app_id);
  skiff_uuid (object_id);
  cleanup_free char *secret = cert ? NULL : auth_secret_new ();
  cleanup_free char *hash = secret ? auth_secret_hash (secret) : NULL;
  if (store_principal_put (c->ctx->store, app_id, object_id, name, hash, cert, &err) < 0)
    return api_reply_skiff_error (c, err);
  log_info ("created service principal %s (%s)", app_id, name);
  cleanup_json json_t *p = NULL;
  if (store_principal_get (c->ctx->store, app_id, &p, &err) < 0 || p == NULL)
    return api_reply_skiff_error (c, err);
  json_t *view = principal_view (c->ctx, p);
  if (secret)
    json_object_set_new (view, "password", json_string (secret));
  api_reply_json (c, 201, view);
}

void
api_handle_principals (call_t *c)
{
  cleanup_error skiff_error_t err = NULL;
  cleanup_free char *scope = skiff_strdup_printf ("/subscriptions/%s", c->ctx->subscription_id);
  api_path_t *p = &c->path;
  if (p->n == 2)
    {
      if (api_method_is (c, "POST"))
        {
          if (api_authorize (c, scope, "Skiff.Identity/servicePrincipals/write") < 0)
            return;
          return principal_create (c);
        }
      if (!api_method_is (c, "GET"))
        return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      if (api_authorize (c, scope, "Skiff.Identity/servicePrincipals/read") < 0)
        return;
      cleanup_json json_t *list = NULL;
      if (store_principal_list (c->ctx->store, &list, &err) < 0)
        return api_reply_skiff_error (c, err);
      json_t *value = json_array ();
      size_t i;
      json_t *e;
      json_array_foreach (list, i, e) json_array_append_new (value, principal_view (c->ctx, e));
      return api_reply_json (c, 200, json_pack ("{s:o}", "value", value));
    }
  if (p->n != 3)
    return api_reply_error (c, 404, "NotFound", "The requested path is not served by this API.", NULL);
  const char *id = p->seg[2];
  int del = api_method_is (c, "DELETE");
  if (!del && !api_method_is (c, "GET"))
    return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  if (api_authorize (c, scope,
                     del ? "Skiff.Identity/servicePrincipals/delete" : "Skiff.Identity/servicePrincipals/read")
      < 0)
    return;
  cleanup_json json_t *found = NULL;
  if (store_principal_get (c->ctx->store, id, &found, &err) < 0)
    return api_reply_skiff_error (c, err);
  if (found == NULL)
    {
      if (del)
        return api_reply_json (c, 204, NULL);
      cleanup_free char *m = skiff_strdup_printf ("The service principal '%s' was not found.", id);
      return api_reply_error (c, 404, "PrincipalNotFound", m, NULL);
    }
  if (!del)
    return api_reply_json (c, 200, principal_view (c->ctx, found));
  int deleted = 0;
  if (store_principal_delete (c->ctx->store, json_string_value (json_object_get (found, "appId")), &deleted, &err) < 0)
    return api_reply_skiff_error (c, err);
  log_info ("deleted service principal %s", json_string_value (json_object_get (found, "appId")));
  api_reply_json (c, 200, principal_view (c->ctx, found));
}
