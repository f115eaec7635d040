/* Unit tests: the token service, bearer-token checks, role assignments and permission checks,
 * through api_handle over a real SQLite store (no agent, no server). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "api/api.h"
#include "api/api_internal.h"
#include "auth/auth.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "store/store.h"
#include "test.h"

static api_ctx_t ctx;
static const char *const locs[] = { "local", NULL };
static const char *const auds[] = { "https://management.core.windows.net/", "https://127.0.0.1:1/", NULL };
static char last_www[512];

#define ADMIN "Bearer 0123456789abcdef0123456789abcdef"
#define SUB "/subscriptions/sub1"
#define RG_A SUB "/resourceGroups/a"
#define RG_B SUB "/resourceGroups/b"
#define CG_A RG_A "/providers/Microsoft.ContainerInstance/containerGroups"
#define CG_B RG_B "/providers/Microsoft.ContainerInstance/containerGroups"
#define READER "acdd72a7-3385-48ef-bd42-f606fba81ae7"
#define CONTRIBUTOR "b24988ac-6180-42a0-ab88-20f7382dd24c"

static json_t *
call (const char *method, const char *url, const char *auth, const char *body, int *status)
{
  const char *q = strchr (url, '?');
  api_request_t req = { .method = method,
                        .path = url,
                        .path_len = q ? (size_t)(q - url) : strlen (url),
                        .query = q ? q + 1 : NULL,
                        .query_len = q ? strlen (q + 1) : 0,
                        .authorization = auth,
                        .host = "127.0.0.1:1",
                        .scheme = "https",
                        .body = body,
                        .body_len = body ? strlen (body) : 0 };
  api_response_t res;
  api_handle (&ctx, &req, &res);
  *status = res.status;
  last_www[0] = '\0';
  for (int i = 0; i < res.n_headers; i++)
    if (strcmp (res.header_names[i], "WWW-Authenticate") == 0)
      snprintf (last_www, sizeof (last_www), "%s", res.header_values[i]);
  json_t *j = res.body ? json_loads (res.body, 0, NULL) : NULL;
  api_response_clear (&res);
  return j;
}

static const char *
code_of (json_t *j)
{
  return json_string_value (json_object_get (json_object_get (j, "error"), "code"));
}

/* Creates a principal through the API; returns its appId, objectId and password (owned). */
static void
make_principal (const char *name, char **app, char **oid, char **pw)
{
  int st;
  char *body = skiff_strdup_printf ("{\"displayName\":\"%s\"}", name);
  json_t *j = call ("POST", "/skiff/servicePrincipals?api-version=1", ADMIN, body, &st);
  free (body);
  CHECK (st == 201);
  *app = skiff_strdup (json_string_value (json_object_get (j, "appId")));
  *oid = skiff_strdup (json_string_value (json_object_get (j, "objectId")));
  *pw = skiff_strdup (json_string_value (json_object_get (j, "password")));
  json_decref (j);
}

static char *
get_token (const char *app, const char *pw, const char *scope, int *st)
{
  char *form
      = skiff_strdup_printf ("grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s", app, pw, scope);
  json_t *j = call ("POST", "/adfs/oauth2/token", NULL, form, st);
  free (form);
  char *tok = NULL;
  if (*st == 200)
    {
      CHECK (json_integer_value (json_object_get (j, "expires_in")) > 0);
      tok = skiff_strdup_printf ("Bearer %s", json_string_value (json_object_get (j, "access_token")));
    }
  json_decref (j);
  return tok;
}

static void
assign (const char *scope, const char *role, const char *principal, int expect)
{
  int st;
  char name[40];
  skiff_uuid (name);
  char *url = skiff_strdup_printf ("%s/providers/Microsoft.Authorization/roleAssignments/%s?api-version=2022-04-01",
                                   scope, name);
  char *body = skiff_strdup_printf ("{\"properties\":{\"roleDefinitionId\":\"" SUB
                                    "/providers/Microsoft.Authorization/roleDefinitions/%s\",\"principalId\":\"%s\"}}",
                                    role, principal);
  json_t *j = call ("PUT", url, ADMIN, body, &st);
  CHECK (st == expect);
  json_decref (j);
  free (url);
  free (body);
}

static const char *group_body
    = "{\"location\":\"local\",\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c\",\"properties\":"
      "{\"image\":\"busybox\",\"resources\":{\"requests\":{\"cpu\":0.5,\"memoryInGB\":0.25}}}}]}}";

int
main (void)
{
  char dir[] = "/tmp/skiff-test-rbac-XXXXXX";
  if (mkdtemp (dir) == NULL)
    return 1;
  char *db = skiff_strdup_printf ("%s/skiff.db", dir);
  char *keyfile = skiff_strdup_printf ("%s/keys/signing.pem", dir);
  skiff_error_t err = NULL;
  store_t *store = NULL;
  EVP_PKEY *key = NULL, *other = NULL;
  CHECK (store_open_sqlite (db, &store, &err) == 0);
  CHECK (auth_key_load_or_create (keyfile, &key, &err) == 0);
  char *otherfile = skiff_strdup_printf ("%s/keys/other.pem", dir);
  CHECK (auth_key_load_or_create (otherfile, &other, &err) == 0);
  ctx = (api_ctx_t){ .store = store,
                     .subscription_id = "sub1",
                     .tenant_id = "t1",
                     .admin_token = "0123456789abcdef0123456789abcdef",
                     .limits = { .host_cpus = 2, .host_memory_gb = 8, .locations = locs },
                     .page_size = 100,
                     .data_dir = dir,
                     .signing_key = key,
                     .audiences = auds,
                     .token_lifetime_s = 3600,
                     .sessions = api_sessions_new () };
  int st;
  json_t *j;

  /* pure helpers */
  CHECK (api_action_match ("*", "Microsoft.ContainerInstance/containerGroups/write"));
  CHECK (api_action_match ("*/read", "Microsoft.ContainerInstance/containerGroups/containers/logs/read"));
  CHECK (!api_action_match ("*/read", "Microsoft.ContainerInstance/containerGroups/write"));
  CHECK (api_action_match ("Microsoft.Authorization/*/Write", "microsoft.authorization/roleAssignments/write"));
  CHECK (!api_action_match ("Microsoft.Authorization/*/Write", "Microsoft.ContainerInstance/containerGroups/write"));
  CHECK (api_scope_within ("/subscriptions/s/resourceGroups/A/x", "/subscriptions/s/resourcegroups/a"));
  CHECK (!api_scope_within ("/subscriptions/s/resourceGroups/ab", "/subscriptions/s/resourceGroups/a"));
  CHECK (api_scope_within ("/subscriptions/s", "/subscriptions/s/"));
  CHECK (api_role_find ("reader") && api_role_find (SUB "/providers/Microsoft.Authorization/roleDefinitions/" READER));
  CHECK (api_role_find ("Superuser") == NULL);

  /* discovery documents need no token */
  j = call ("GET", "/metadata/endpoints?api-version=2015-01-01", NULL, NULL, &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "authentication"), "loginEndpoint")),
             "https://127.0.0.1:1/adfs");
  json_decref (j);
  j = call ("GET", "/adfs/.well-known/openid-configuration", NULL, NULL, &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (j, "token_endpoint")), "https://127.0.0.1:1/adfs/oauth2/token");
  json_decref (j);
  j = call ("GET", "/t1/v2.0/.well-known/openid-configuration", NULL, NULL, &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (j, "token_endpoint")), "https://127.0.0.1:1/t1/oauth2/v2.0/token");
  json_decref (j);
  j = call ("GET", "/other-tenant/v2.0/.well-known/openid-configuration", NULL, NULL, &st);
  CHECK (st == 400);
  json_decref (j);
  j = call ("GET", "/adfs/discovery/keys", NULL, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "keys")) == 1);
  json_decref (j);

  /* resource groups a and b, a group in each */
  j = call ("PUT", RG_A "?api-version=2021-04-01", ADMIN, "{\"location\":\"local\"}", &st);
  json_decref (j);
  j = call ("PUT", RG_B "?api-version=2021-04-01", ADMIN, "{\"location\":\"local\"}", &st);
  json_decref (j);
  j = call ("PUT", CG_A "/ga?api-version=2023-05-01", ADMIN, group_body, &st);
  CHECK (st == 201);
  json_decref (j);
  j = call ("PUT", CG_B "/gb?api-version=2023-05-01", ADMIN, group_body, &st);
  CHECK (st == 201);
  json_decref (j);

  /* principals: the secret is shown once, never stored in clear */
  char *app1, *oid1, *pw1, *app2, *oid2, *pw2;
  make_principal ("reader-a", &app1, &oid1, &pw1);
  make_principal ("contrib-b", &app2, &oid2, &pw2);
  CHECK (strlen (pw1) >= 32);
  j = call ("GET", "/skiff/servicePrincipals?api-version=1", ADMIN, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 2);
  char *dumped = json_dumps (j, 0);
  CHECK (strstr (dumped, pw1) == NULL && strstr (dumped, "secretHash") == NULL);
  free (dumped);
  json_decref (j);
  j = call ("POST", "/skiff/servicePrincipals?api-version=1", ADMIN, "{\"displayName\":\"\"}", &st);
  CHECK (st == 400);
  json_decref (j);
  j = call ("POST", "/skiff/servicePrincipals?api-version=1", ADMIN,
            "{\"displayName\":\"x\",\"certificate\":\"-----BEGIN CERTIFICATE-----\\ngarbage\\n\"}", &st);
  CHECK (st == 400);
  CHECK_STR (code_of (j), "InvalidCertificate");
  json_decref (j);

  /* the token endpoint */
  char *t1 = get_token (app1, pw1, "https%3A%2F%2Fmanagement.core.windows.net%2F%2F.default", &st);
  CHECK (st == 200 && t1);
  char *bad = get_token (app1, "wrong-secret", "https://management.core.windows.net//.default", &st);
  CHECK (st == 401 && bad == NULL);
  bad = get_token ("00000000-0000-0000-0000-000000000000", pw1, "https://management.core.windows.net//.default", &st);
  CHECK (st == 400 && bad == NULL);
  bad = get_token (app1, pw1, "https://evil.example//.default", &st);
  CHECK (st == 400 && bad == NULL);
  j = call ("POST", "/adfs/oauth2/token", NULL, "grant_type=password&client_id=x", &st);
  CHECK (st == 400);
  CHECK_STR (json_string_value (json_object_get (j, "error")), "unsupported_grant_type");
  json_decref (j);
  char *t2 = get_token (app2, pw2, "https://127.0.0.1:1/.default", &st);
  CHECK (st == 200 && t2);

  /* a token with no role sees no subscription and is refused everywhere */
  j = call ("GET", "/subscriptions?api-version=2019-11-01", t1, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 0);
  json_decref (j);
  j = call ("GET", CG_A "/ga?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st == 403);
  CHECK_STR (code_of (j), "AuthorizationFailed");
  json_decref (j);

  /* Reader on a, Contributor on b */
  assign (RG_A, READER, app1, 201);
  assign (RG_B, CONTRIBUTOR, oid2, 201);
  assign (RG_B, CONTRIBUTOR, oid2, 409); /* the same assignment twice */
  assign (RG_B, "00000000-0000-0000-0000-00000000dead", oid2, 400);
  assign (RG_B, READER, "no-such-principal", 400);
  assign (SUB "/resourceGroups/nowhere", READER, oid2, 404);
  assign (CG_B "/missing", READER, oid2, 404);
  {
    char *app4, *oid4, *pw4;
    make_principal ("scoped", &app4, &oid4, &pw4);
    assign (CG_B "/gb", READER, oid4, 201); /* a container group is a scope too */
    char *t4 = get_token (app4, pw4, "https://management.core.windows.net//.default", &st);
    j = call ("GET", CG_B "/gb?api-version=2023-05-01", t4, NULL, &st);
    CHECK (st == 200);
    json_decref (j);
    j = call ("GET", CG_B "?api-version=2023-05-01", t4, NULL, &st);
    CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
    json_decref (j);
    char *url = skiff_strdup_printf ("/skiff/servicePrincipals/%s?api-version=1", app4);
    j = call ("DELETE", url, ADMIN, NULL, &st);
    CHECK (st == 200);
    json_decref (j);
    free (url), free (app4), free (oid4), free (pw4), free (t4);
  }

  j = call ("GET", "/subscriptions?api-version=2019-11-01", t1, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  json_decref (j);
  j = call ("GET", CG_A "/ga?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st == 200);
  json_decref (j);
  j = call ("GET", CG_A "/ga/containers/c/logs?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st != 403);
  json_decref (j);
  j = call ("PUT", CG_A "/ga2?api-version=2023-05-01", t1, group_body, &st);
  CHECK (st == 403);
  CHECK_STR (code_of (j), "AuthorizationFailed");
  CHECK (strstr (json_string_value (json_object_get (json_object_get (j, "error"), "message")),
                 "Microsoft.ContainerInstance/containerGroups/write")
         != NULL);
  json_decref (j);
  j = call ("DELETE", CG_A "/ga?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st == 403);
  json_decref (j);
  j = call ("POST", CG_A "/ga/containers/c/exec?api-version=2023-05-01", t1,
            "{\"command\":\"/bin/sh\",\"terminalSize\":{\"rows\":24,\"cols\":80}}", &st);
  CHECK (st == 403);
  json_decref (j);
  j = call ("POST", CG_A "/ga/stop?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st == 403);
  json_decref (j);
  /* the reader sees nothing of b: not the group, not the list, not in the subscription list */
  j = call ("GET", CG_B "/gb?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st == 403);
  json_decref (j);
  j = call ("GET", CG_B "?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st == 403);
  json_decref (j);
  j = call ("GET", SUB "/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01", t1, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  CHECK_STR (json_string_value (json_object_get (json_array_get (json_object_get (j, "value"), 0), "name")), "ga");
  json_decref (j);
  j = call ("GET", SUB "/resourcegroups?api-version=2021-04-01", t1, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  json_decref (j);
  /* readers cannot assign roles */
  {
    char *url = skiff_strdup_printf (RG_A "/providers/Microsoft.Authorization/roleAssignments/%s?api-version=1",
                                     "11111111-1111-1111-1111-111111111111");
    char *body = skiff_strdup_printf ("{\"properties\":{\"roleDefinitionId\":\"Owner\",\"principalId\":\"%s\"}}", oid1);
    j = call ("PUT", url, t1, body, &st);
    CHECK (st == 403);
    json_decref (j);
    free (url);
    free (body);
  }
  /* the contributor on b may change b but not a, and may not manage identities */
  j = call ("PUT", CG_B "/gb2?api-version=2023-05-01", t2, group_body, &st);
  CHECK (st == 201);
  json_decref (j);
  j = call ("PUT", CG_A "/ga3?api-version=2023-05-01", t2, group_body, &st);
  CHECK (st == 403);
  json_decref (j);
  j = call ("POST", "/skiff/servicePrincipals?api-version=1", t2, "{\"displayName\":\"x\"}", &st);
  CHECK (st == 403);
  json_decref (j);

  /* role assignments read back in ARM's shape */
  j = call ("GET", RG_B "/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01", ADMIN, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  json_t *ra = json_array_get (json_object_get (j, "value"), 0);
  CHECK_STR (json_string_value (json_object_get (json_object_get (ra, "properties"), "roleDefinitionName")),
             "Contributor");
  CHECK_STR (json_string_value (json_object_get (json_object_get (ra, "properties"), "principalId")), oid2);
  char *ra_id = skiff_strdup (json_string_value (json_object_get (ra, "id")));
  json_decref (j);
  j = call ("GET",
            SUB "/providers/Microsoft.Authorization/roleDefinitions?api-version=1&$filter=roleName%20eq%20%27Reader%27",
            ADMIN, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  json_decref (j);
  /* deleting the assignment takes the access away at once */
  char *del = skiff_strdup_printf ("%s?api-version=2022-04-01", ra_id);
  j = call ("DELETE", del, ADMIN, NULL, &st);
  CHECK (st == 200);
  json_decref (j);
  j = call ("DELETE", del, ADMIN, NULL, &st);
  CHECK (st == 204);
  json_decref (j);
  j = call ("GET", CG_B "/gb?api-version=2023-05-01", t2, NULL, &st);
  CHECK (st == 403);
  json_decref (j);
  free (del);
  free (ra_id);

  /* bad tokens: garbage, another key's signature, expired, wrong audience; all 401 with WWW-Authenticate */
  j = call ("GET", CG_A "/ga?api-version=2023-05-01", "Bearer garbage.garbage.garbage", NULL, &st);
  CHECK (st == 401);
  CHECK_STR (code_of (j), "InvalidAuthenticationToken");
  CHECK (strstr (last_www, "Bearer") == last_www);
  json_decref (j);
  {
    json_int_t now = (json_int_t)time (NULL);
    json_t *claims = json_pack ("{s:s,s:s,s:I,s:I,s:s,s:s}", "aud", "https://management.core.windows.net/", "tid", "t1",
                                "nbf", now - 100, "exp", now + 600, "oid", oid1, "appid", app1);
    char *tok = NULL, *hdr;
    CHECK (auth_jwt_sign (other, NULL, claims, &tok, &err) == 0);
    hdr = skiff_strdup_printf ("Bearer %s", tok);
    j = call ("GET", CG_A "/ga?api-version=2023-05-01", hdr, NULL, &st);
    CHECK (st == 401);
    CHECK_STR (code_of (j), "InvalidAuthenticationToken");
    json_decref (j);
    free (tok);
    free (hdr);
    json_object_set_new (claims, "exp", json_integer (now - 10));
    CHECK (auth_jwt_sign (key, NULL, claims, &tok, &err) == 0);
    hdr = skiff_strdup_printf ("Bearer %s", tok);
    j = call ("GET", CG_A "/ga?api-version=2023-05-01", hdr, NULL, &st);
    CHECK (st == 401);
    CHECK_STR (code_of (j), "ExpiredAuthenticationToken");
    json_decref (j);
    free (tok);
    free (hdr);
    json_object_set_new (claims, "exp", json_integer (now + 600));
    json_object_set_new (claims, "aud", json_string ("https://elsewhere.example/"));
    CHECK (auth_jwt_sign (key, NULL, claims, &tok, &err) == 0);
    hdr = skiff_strdup_printf ("Bearer %s", tok);
    j = call ("GET", CG_A "/ga?api-version=2023-05-01", hdr, NULL, &st);
    CHECK (st == 401);
    CHECK_STR (code_of (j), "InvalidAuthenticationTokenAudience");
    json_decref (j);
    free (tok);
    free (hdr);
    json_decref (claims);
  }

  /* certificate credentials: a client_assertion signed by the registered certificate's key */
  {
    char *kpem = NULL, *cpem = NULL;
    CHECK (auth_cert_self_signed ("cert-sp", 30, &kpem, &cpem, &err) == 0);
    json_t *req = json_pack ("{s:s,s:s}", "displayName", "cert-sp", "certificate", cpem);
    char *body = json_dumps (req, 0);
    j = call ("POST", "/skiff/servicePrincipals?api-version=1", ADMIN, body, &st);
    CHECK (st == 201 && json_object_get (j, "password") == NULL);
    char *app3 = skiff_strdup (json_string_value (json_object_get (j, "appId")));
    json_decref (j);
    BIO *bio = BIO_new_mem_buf (kpem, -1);
    EVP_PKEY *ck = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
    BIO_free (bio);
    X509 *cert = NULL;
    CHECK (auth_cert_parse (cpem, strlen (cpem), &cert, &err) == 0);
    char *x5t = auth_cert_x5t (cert);
    json_int_t now = (json_int_t)time (NULL);
    json_t *claims = json_pack ("{s:s,s:s,s:s,s:I,s:I,s:s}", "aud", "https://127.0.0.1:1/adfs/oauth2/token", "iss",
                                app3, "sub", app3, "nbf", now, "exp", now + 600, "jti", "x");
    char *assertion = NULL;
    CHECK (auth_jwt_sign (ck, NULL, claims, &assertion, &err) == 0);
    char *form = skiff_strdup_printf (
        "grant_type=client_credentials&client_id=%s&scope=https://management.core.windows.net//.default"
        "&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer"
        "&client_assertion=%s",
        app3, assertion);
    j = call ("POST", "/adfs/oauth2/token", NULL, form, &st);
    CHECK (st == 200 && json_object_get (j, "access_token"));
    json_decref (j);
    free (form);
    free (assertion);
    /* signed by another key: refused */
    CHECK (auth_jwt_sign (other, NULL, claims, &assertion, &err) == 0);
    form = skiff_strdup_printf (
        "grant_type=client_credentials&client_id=%s&scope=https://management.core.windows.net//.default"
        "&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer"
        "&client_assertion=%s",
        app3, assertion);
    j = call ("POST", "/adfs/oauth2/token", NULL, form, &st);
    CHECK (st == 401);
    json_decref (j);
    free (form);
    free (assertion);
    free (x5t);
    X509_free (cert);
    EVP_PKEY_free (ck);
    json_decref (claims);
    json_decref (req);
    free (body);
    free (kpem);
    free (cpem);
    free (app3);
  }

  /* deleting a principal invalidates its tokens */
  {
    char *url = skiff_strdup_printf ("/skiff/servicePrincipals/%s?api-version=1", app1);
    j = call ("DELETE", url, ADMIN, NULL, &st);
    CHECK (st == 200);
    json_decref (j);
    free (url);
    j = call ("GET", CG_A "/ga?api-version=2023-05-01", t1, NULL, &st);
    CHECK (st == 401);
    json_decref (j);
  }

  free (app1), free (oid1), free (pw1), free (app2), free (oid2), free (pw2), free (t1), free (t2);
  EVP_PKEY_free (key);
  EVP_PKEY_free (other);
  api_sessions_free (ctx.sessions);
  store_close (store);
  char *cmd = skiff_strdup_printf ("rm -rf %s", dir);
  CHECK (system (cmd) == 0);
  free (cmd);
  free (db);
  free (keyfile);
  free (otherfile);
  TEST_MAIN_END ();
}
