/* Unit tests: Microsoft.Network resources through the API over a real SQLite store (no agent):
 * virtual networks and subnets, private DNS zones and links, their validation and delete rules,
 * authorization, and the subnet lookup of container groups (api_subnet_resolve). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "api/api.h"
#include "api/api_internal.h"
#include "auth/auth.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "store/store.h"
#include "test.h"

static api_ctx_t ctx;
static const char *const locs[] = { "local", NULL };
static const char *const auds[] = { "https://management.core.windows.net/", NULL };

#define ADMIN "Bearer 0123456789abcdef0123456789abcdef"
#define READER_ROLE "acdd72a7-3385-48ef-bd42-f606fba81ae7"

static const char *who = ADMIN;          /* the Authorization header of the next calls */
static const char *if_none_match = NULL; /* their If-None-Match header */

static json_t *
call (const char *method, const char *url, const char *body, int *status)
{
  const char *q = strchr (url, '?');
  api_request_t req = { .method = method,
                        .path = url,
                        .path_len = q ? (size_t)(q - url) : strlen (url),
                        .query = q ? q + 1 : NULL,
                        .query_len = q ? strlen (q + 1) : 0,
                        .authorization = who,
                        .host = "127.0.0.1:1",
                        .if_none_match = if_none_match,
                        .scheme = "http",
                        .body = body,
                        .body_len = body ? strlen (body) : 0 };
  api_response_t res;
  api_handle (&ctx, &req, &res);
  *status = res.status;
  json_t *j = res.body ? json_loads (res.body, 0, NULL) : NULL;
  api_response_clear (&res);
  return j;
}

static const char *
code_of (json_t *j)
{
  return json_string_value (json_object_get (json_object_get (j, "error"), "code"));
}

/* Calls and checks the status (and the error code when code is not NULL). */
static void
expect (const char *method, const char *url, const char *body, int want, const char *code, int line)
{
  int st;
  json_t *j = call (method, url, body, &st);
  int ok = st == want && (code == NULL || (code_of (j) && strcmp (code_of (j), code) == 0));
  if (ok)
    test_passed++;
  else
    {
      test_failed++;
      char *dump = j ? json_dumps (j, JSON_COMPACT) : NULL;
      fprintf (stderr, "FAIL line %d: %s %s -> %d %s (wanted %d %s)\n", line, method, url, st, dump ? dump : "", want,
               code ? code : "");
      free (dump);
    }
  json_decref (j);
}
#define EXPECT(m, u, b, st, code) expect (m, u, b, st, code, __LINE__)

/* GETs url and returns the size of its "value" list (-1 when not 200). */
static int
list_size (const char *url)
{
  int st;
  json_t *j = call ("GET", url, NULL, &st);
  int n = st == 200 ? (int)json_array_size (json_object_get (j, "value")) : -1;
  json_decref (j);
  return n;
}

/* A service principal with `role` at `scope`; returns its "Bearer ..." header (owned). */
static char *
principal_with_role (const char *name, const char *role, const char *scope)
{
  int st;
  const char *saved = who;
  who = ADMIN;
  char *body = skiff_strdup_printf ("{\"displayName\":\"%s\"}", name);
  json_t *j = call ("POST", "/skiff/servicePrincipals?api-version=1", body, &st);
  free (body);
  CHECK (st == 201);
  char *app = skiff_strdup (json_string_value (json_object_get (j, "appId")));
  char *oid = skiff_strdup (json_string_value (json_object_get (j, "objectId")));
  char *pw = skiff_strdup (json_string_value (json_object_get (j, "password")));
  json_decref (j);
  char u[40];
  skiff_uuid (u);
  if (scope && role)
    {
      char *url = skiff_strdup_printf ("%s/providers/Microsoft.Authorization/roleAssignments/%s?api-version=2022-04-01",
                                       scope, u);
      body = skiff_strdup_printf ("{\"properties\":{\"roleDefinitionId\":\"/subscriptions/sub1/providers/"
                                  "Microsoft.Authorization/roleDefinitions/%s\",\"principalId\":\"%s\"}}",
                                  role, oid);
      j = call ("PUT", url, body, &st);
      CHECK (st == 201);
      json_decref (j);
      free (url);
      free (body);
    }
  char *form = skiff_strdup_printf ("grant_type=client_credentials&client_id=%s&client_secret=%s&scope=https%%3A%%2F%%"
                                    "2Fmanagement.core.windows.net%%2F%%2F.default",
                                    app, pw);
  j = call ("POST", "/adfs/oauth2/token", form, &st);
  CHECK (st == 200);
  char *tok = skiff_strdup_printf ("Bearer %s", json_string_value (json_object_get (j, "access_token")));
  json_decref (j);
  free (form);
  free (app);
  free (oid);
  free (pw);
  who = saved;
  return tok;
}

/* Calls api_subnet_resolve and checks its result: want_code NULL for success. */
static void
resolve (const char *id, int want_status, const char *want_code, int line)
{
  skiff_error_t err = NULL;
  uint32_t addr = 1;
  int prefix = 1;
  char *vnet = NULL;
  int rc = api_subnet_resolve (ctx.store, "sub1", id, &addr, &prefix, &vnet, &err);
  int ok = want_code ? rc < 0 && err && err->code && strcmp (err->code, want_code) == 0
                           && skiff_error_http_status (err) == want_status && vnet == NULL && addr == 0
                     : rc == 0 && err == NULL;
  if (ok)
    test_passed++;
  else
    {
      test_failed++;
      fprintf (stderr, "FAIL line %d: api_subnet_resolve (%s) -> %d %s (wanted %d %s)\n", line, id ? id : "NULL", rc,
               err && err->code ? err->code : "", want_status, want_code ? want_code : "success");
    }
  free (vnet);
  skiff_error_release (&err);
}
#define RESOLVE(id, st, code) resolve (id, st, code, __LINE__)

#define RG "/subscriptions/sub1/resourceGroups/net"
#define NET RG "/providers/Microsoft.Network"
#define V "?api-version=2023-09-01"
#define Z "?api-version=2020-06-01"
#define DELEG                                                                                                          \
  "\"delegations\":[{\"name\":\"aci\",\"properties\":{\"serviceName\":\"Microsoft.ContainerInstance/"                  \
  "containerGroups\"}}]"
#define VNET_A                                                                                                         \
  "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/16\"]},"                  \
  "\"subnets\":[{\"name\":\"front\",\"properties\":{\"addressPrefix\":\"10.1.0.0/24\"," DELEG "}},"                    \
  "{\"name\":\"back\",\"properties\":{\"addressPrefix\":\"10.1.1.0/24\"}}]}}"
#define GROUP_IN(subnet)                                                                                               \
  "{\"location\":\"local\",\"properties\":{\"osType\":\"Linux\",\"subnetIds\":[{\"id\":\"" subnet "\"}],"              \
  "\"containers\":[{\"name\":\"c\",\"properties\":{\"image\":\"busybox\",\"resources\":{\"requests\":"                 \
  "{\"cpu\":1,\"memoryInGB\":1}}}}]}}"

int
main (void)
{
  char dir[] = "/tmp/skiff-test-netapi-XXXXXX";
  if (mkdtemp (dir) == NULL)
    return 1;
  char *db = skiff_strdup_printf ("%s/skiff.db", dir);
  skiff_error_t err = NULL;
  store_t *store = NULL;
  CHECK (store_open_sqlite (db, &store, &err) == 0);
  char *keyfile = skiff_strdup_printf ("%s/keys/signing.pem", dir);
  EVP_PKEY *key = NULL;
  CHECK (auth_key_load_or_create (keyfile, &key, &err) == 0);
  ctx = (api_ctx_t){ .store = store,
                     .subscription_id = "sub1",
                     .tenant_id = "t1",
                     .admin_token = "0123456789abcdef0123456789abcdef",
                     .limits = { .host_cpus = 2, .host_memory_gb = 8, .locations = locs },
                     .page_size = 100,
                     .data_dir = dir,
                     .host_net = 0x0af20000, /* 10.242.0.0/16 */
                     .host_net_prefix = 16,
                     .signing_key = key,
                     .audiences = auds,
                     .token_lifetime_s = 3600,
                     .sessions = api_sessions_new () };
  int st;
  json_t *j;

  EXPECT ("PUT", NET "/virtualNetworks/a" V, VNET_A, 404, "ResourceGroupNotFound");
  EXPECT ("PUT", RG "?api-version=2021-04-01", "{\"location\":\"local\"}", 201, NULL);

  /* a virtual network lives in a location this host serves ("Local" and "lo cal" name it too) */
  EXPECT ("PUT", NET "/virtualNetworks/elsewhere" V,
          "{\"location\":\"westeurope\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.9.0.0/16\"]}}}",
          400, "LocationNotAvailableForResourceType");
  EXPECT ("PUT", NET "/virtualNetworks/spelled" V,
          "{\"location\":\"Lo cal\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.9.0.0/16\"]}}}", 201,
          NULL);
  EXPECT ("DELETE", NET "/virtualNetworks/spelled" V, NULL, 200, NULL);

  /* a virtual network with two subnets: created, then updated */
  j = call ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, &st);
  CHECK (st == 201);
  CHECK_STR (json_string_value (json_object_get (j, "type")), "Microsoft.Network/virtualNetworks");
  CHECK_STR (json_string_value (json_object_get (j, "id")), NET "/virtualNetworks/vnet-a");
  json_t *subs = json_object_get (json_object_get (j, "properties"), "subnets");
  CHECK (json_array_size (subs) == 2);
  CHECK_STR (json_string_value (json_object_get (json_array_get (subs, 0), "id")),
             NET "/virtualNetworks/vnet-a/subnets/back");
  json_t *front = json_array_get (subs, 1);
  CHECK_STR (json_string_value (json_object_get (
                 json_array_get (json_object_get (json_object_get (front, "properties"), "delegations"), 0), "type")),
             "Microsoft.Network/virtualNetworks/subnets/delegations");
  const char *guid = json_string_value (json_object_get (json_object_get (j, "properties"), "resourceGuid"));
  char *guid1 = skiff_strdup (guid ? guid : "");
  json_decref (j);
  j = call ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "properties"), "resourceGuid")), guid1);
  free (guid1);
  json_decref (j);
  j = call ("GET", NET "/virtualNetworks" V, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  json_decref (j);
  j = call ("GET", "/subscriptions/sub1/providers/Microsoft.Network/virtualNetworks" V, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  json_decref (j);
  EXPECT ("GET", NET "/virtualNetworks/nope" V, NULL, 404, "ResourceNotFound");
  EXPECT ("GET", NET "/virtualNetworks/vnet-a/subnets/front" V, NULL, 200, NULL);
  EXPECT ("GET", NET "/virtualNetworks/vnet-a/subnets/none" V, NULL, 404, "ResourceNotFound");

  /* the shapes, read through a path in other case: ids keep the first spelling */
  j = call ("GET", "/SUBSCRIPTIONS/sub1/RESOURCEGROUPS/NET/PROVIDERS/MICROSOFT.NETWORK/VIRTUALNETWORKS/VNET-A" V, NULL,
            &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (j, "id")), NET "/virtualNetworks/vnet-a");
  CHECK_STR (json_string_value (json_object_get (j, "name")), "vnet-a");
  CHECK_STR (json_string_value (json_object_get (j, "location")), "local");
  CHECK (strncmp (json_string_value (json_object_get (j, "etag")) ?: "", "W/\"", 3) == 0);
  json_t *vp = json_object_get (j, "properties");
  CHECK_STR (json_string_value (json_object_get (vp, "provisioningState")), "Succeeded");
  CHECK (json_is_false (json_object_get (vp, "enableDdosProtection")));
  CHECK (json_is_array (json_object_get (vp, "virtualNetworkPeerings")));
  CHECK_STR (
      json_string_value (json_array_get (json_object_get (json_object_get (vp, "addressSpace"), "addressPrefixes"), 0)),
      "10.1.0.0/16");
  char *etag1 = skiff_strdup (json_string_value (json_object_get (j, "etag")) ?: "");
  json_decref (j);
  j = call ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, &st);
  CHECK (st == 200 && strcmp (json_string_value (json_object_get (j, "etag")) ?: "", etag1) != 0);
  free (etag1);
  json_decref (j);
  CHECK (list_size (NET "/virtualNetworks/vnet-a/subnets" V) == 2);
  j = call ("GET", NET "/virtualNetworks/vnet-a/subnets/front" V, NULL, &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (j, "type")), "Microsoft.Network/virtualNetworks/subnets");
  json_t *sp = json_object_get (j, "properties");
  CHECK_STR (json_string_value (json_object_get (sp, "addressPrefix")), "10.1.0.0/24");
  CHECK_STR (json_string_value (json_object_get (sp, "privateEndpointNetworkPolicies")), "Disabled");
  CHECK_STR (json_string_value (json_object_get (sp, "privateLinkServiceNetworkPolicies")), "Enabled");
  json_t *dp = json_object_get (json_array_get (json_object_get (sp, "delegations"), 0), "properties");
  CHECK_STR (json_string_value (json_object_get (dp, "serviceName")), "Microsoft.ContainerInstance/containerGroups");
  CHECK_STR (json_string_value (json_array_get (json_object_get (dp, "actions"), 0)),
             "Microsoft.Network/virtualNetworks/subnets/action");
  json_decref (j);
  j = call ("GET", NET "/virtualNetworks/nope" V, NULL, &st);
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "error"), "message")),
             "The Resource 'Microsoft.Network/virtualNetworks/nope' under resource group 'net' was not found.");
  json_decref (j);
  EXPECT ("GET", NET "/virtualNetworks/nope/subnets" V, NULL, 404, "ResourceNotFound");
  EXPECT ("PUT", NET "/virtualNetworks/nope/subnets/s" V, "{\"properties\":{\"addressPrefix\":\"10.1.9.0/24\"}}", 404,
          "ResourceNotFound");
  EXPECT ("POST", NET "/virtualNetworks/vnet-a" V, "{}", 405, NULL);
  EXPECT ("PUT", NET "/virtualNetworks" V, "{}", 405, NULL);
  EXPECT ("GET", NET "/virtualNetworks/vnet-a/virtualNetworkPeerings" V, NULL, 404, "InvalidResourceType");
  EXPECT ("GET", NET "/virtualNetworks/vnet-a/subnets/front/x" V, NULL, 404, "InvalidResourceType");
  EXPECT ("GET", NET "/networkSecurityGroups/x" V, NULL, 404, "InvalidResourceType");
  EXPECT ("GET", "/subscriptions/sub1/providers/Microsoft.Network/loadBalancers" V, NULL, 404, "InvalidResourceType");
  EXPECT ("GET", "/subscriptions/sub1/providers/Microsoft.Network/virtualNetworks/vnet-a" V, NULL, 404,
          "InvalidResourceType");

  /* inline subnets: a PUT without `subnets` keeps them, one that lists them replaces them */
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/16\"]}}}", 200,
          NULL);
  CHECK (list_size (NET "/virtualNetworks/vnet-a/subnets" V) == 2);
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"front\",\"properties\":{\"addressPrefix\":\"10.1.0.0/24\"," DELEG "}}]}}",
          200, NULL);
  CHECK (list_size (NET "/virtualNetworks/vnet-a/subnets" V) == 1);
  EXPECT ("GET", NET "/virtualNetworks/vnet-a/subnets/back" V, NULL, 404, "ResourceNotFound");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, 200, NULL);
  CHECK (list_size (NET "/virtualNetworks/vnet-a/subnets" V) == 2);
  /* the address space grows, and shrinks back; it may not leave a subnet outside */
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/16\","
          "\"10.5.0.0/16\"]}}}",
          200, NULL);
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/far" V, "{\"properties\":{\"addressPrefix\":\"10.5.0.0/24\"}}",
          201, NULL);
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/16\"]}}}", 400,
          "NetcfgSubnetRangeOutsideVnet");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/24\"]}}}", 400,
          "NetcfgSubnetRangeOutsideVnet");
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a/subnets/far" V, NULL, 200, NULL);
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, 200, NULL);

  /* validation */
  EXPECT ("PUT", NET "/virtualNetworks/x" V, "{", 400, "InvalidRequestContent");
  EXPECT ("PUT", NET "/virtualNetworks/x" V, "[]", 400, "InvalidRequestContent");
  EXPECT ("PUT", NET "/virtualNetworks/x" V, "{\"location\":\"local\",\"properties\":{}}", 400, "InvalidRequestFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.0.0.0/7\"]}}}", 400,
          "InvalidAddressPrefixFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.02.0.0/16\"]}}}", 400,
          "InvalidAddressPrefixFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"fd00::/64\"]}}}", 400,
          "InvalidAddressPrefixFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[42]}}}", 400,
          "InvalidAddressPrefixFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"tags\":\"t\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":"
          "[\"10.3.0.0/16\"]}}}",
          400, "InvalidRequestContent");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\"]},"
          "\"subnets\":{}}}",
          400, "InvalidRequestFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"s\",\"properties\":{\"addressPrefix\":\"10.3.0.0/24\"}},"
          "{\"name\":\"S\",\"properties\":{\"addressPrefix\":\"10.3.1.0/24\"}}]}}",
          400, "DuplicateSubnetName");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"a b\",\"properties\":{\"addressPrefix\":\"10.3.0.0/24\"}}]}}",
          400, "InvalidResourceName");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"s\",\"properties\":{}}]}}",
          400, "InvalidRequestFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"s\",\"properties\":{\"addressPrefix\":\"10.3.0.0/30\"}}]}}",
          400, "InvalidAddressPrefixFormat");
  EXPECT ("GET", NET "/virtualNetworks/x" V, NULL, 404, "ResourceNotFound"); /* nothing of the above was stored */
  {
    char long_name[82];
    memset (long_name, 'n', 81);
    long_name[81] = '\0';
    char *url = skiff_strdup_printf (NET "/virtualNetworks/%s" V, long_name);
    EXPECT ("PUT", url, VNET_A, 400, "InvalidResourceName");
    free (url);
    long_name[80] = '\0';
    url = skiff_strdup_printf (NET "/virtualNetworks/%s" V, long_name);
    EXPECT ("PUT", url,
            "{\"location\":\"local\",\"tags\":{\"k\":\"v\"},\"properties\":{\"addressSpace\":{\"addressPrefixes\":"
            "[\"10.3.0.0/16\"]}}}",
            201, NULL);
    j = call ("GET", url, NULL, &st);
    CHECK (st == 200 && json_is_object (json_object_get (j, "tags")));
    json_decref (j);
    EXPECT ("DELETE", url, NULL, 200, NULL);
    free (url);
  }
  /* address spaces are unique across resource groups too */
  EXPECT ("PUT", "/subscriptions/sub1/resourceGroups/net2?api-version=2021-04-01", "{\"location\":\"local\"}", 201,
          NULL);
  EXPECT ("PUT", "/subscriptions/sub1/resourceGroups/net2/providers/Microsoft.Network/virtualNetworks/v2" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.5.0/24\"]}}}", 400,
          "VnetAddressSpaceOverlaps");
  EXPECT ("PUT", "/subscriptions/sub1/resourceGroups/net2/providers/Microsoft.Network/virtualNetworks/v2" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.0.0.0/8\"]}}}", 400,
          "VnetAddressSpaceOverlaps");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/bad%21" V, "{\"properties\":{\"addressPrefix\":\"10.1.2.0/24\"}}",
          400, "InvalidResourceName");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/s3" V, "{\"properties\":{}}", 400, "InvalidRequestFormat");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/s3" V, "{\"properties\":{\"addressPrefix\":\"10.9.0.0/24\"}}",
          400, "NetcfgSubnetRangeOutsideVnet");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/s3" V, "{\"properties\":{\"addressPrefix\":\"10.1.2.0/29\"}}",
          201, NULL);
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/s3" V, "{\"properties\":{\"addressPrefix\":\"10.1.2.8/29\"}}",
          200, NULL);
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a/subnets/s3" V, NULL, 200, NULL);
  EXPECT ("PUT", NET "/virtualNetworks/x" V, "{\"properties\":{}}", 400, "LocationRequired");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[]}}}", 400,
          "InvalidRequestFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.2.0.1/16\"]}}}", 400,
          "InvalidAddressPrefixFormat");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.128.0/17\"]}}}", 400,
          "VnetAddressSpaceOverlaps");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.242.5.0/24\"]}}}", 400,
          "VnetAddressSpaceOverlaps");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\","
          "\"10.3.4.0/24\"]}}}",
          400, "VnetAddressSpacesOverlap");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"s\",\"properties\":{\"addressPrefix\":\"10.4.0.0/24\"}}]}}",
          400, "NetcfgSubnetRangeOutsideVnet");
  EXPECT ("PUT", NET "/virtualNetworks/x" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.3.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"s\",\"properties\":{\"addressPrefix\":\"10.3.0.0/24\"}},"
          "{\"name\":\"t\",\"properties\":{\"addressPrefix\":\"10.3.0.128/25\"}}]}}",
          400, "NetcfgSubnetRangesOverlap");
  EXPECT ("PUT", NET "/virtualNetworks/bad%20name" V, VNET_A, 400, "InvalidResourceName");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/s3" V, "{\"properties\":{\"addressPrefix\":\"10.1.1.128/25\"}}",
          400, "NetcfgSubnetRangesOverlap");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/s3" V, "{\"properties\":{\"addressPrefix\":\"10.1.2.0/30\"}}",
          400, "InvalidAddressPrefixFormat");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/s3" V, "{\"properties\":{\"addressPrefix\":\"10.1.2.0/24\"}}",
          201, NULL);
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a/subnets/s3" V, NULL, 200, NULL);
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a/subnets/s3" V, NULL, 204, NULL);

  /* a container group in a subnet: it must exist and be delegated; then the subnet stays */
  EXPECT ("PUT", RG "/providers/Microsoft.ContainerInstance/containerGroups/g1?api-version=2023-05-01",
          GROUP_IN (NET "/virtualNetworks/vnet-a/subnets/back"), 400, "SubnetMissingRequiredDelegation");
  EXPECT ("PUT", RG "/providers/Microsoft.ContainerInstance/containerGroups/g1?api-version=2023-05-01",
          GROUP_IN (NET "/virtualNetworks/vnet-a/subnets/gone"), 404, "SubnetNotFound");
  EXPECT ("PUT", RG "/providers/Microsoft.ContainerInstance/containerGroups/g1?api-version=2023-05-01",
          GROUP_IN (NET "/virtualNetworks/vnet-z/subnets/gone"), 404, "VirtualNetworkNotFound");
  EXPECT ("PUT", RG "/providers/Microsoft.ContainerInstance/containerGroups/g1?api-version=2023-05-01",
          GROUP_IN ("/subscriptions/other/resourceGroups/x/providers/Microsoft.Network/virtualNetworks/v/subnets/s"),
          400, "InvalidSubnetId");
  EXPECT ("PUT", RG "/providers/Microsoft.ContainerInstance/containerGroups/g1?api-version=2023-05-01",
          GROUP_IN (NET "/virtualNetworks/vnet-a/subnets/front"), 201, NULL);
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a/subnets/front" V, NULL, 409, "InUseSubnetCannotBeDeleted");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/front" V, "{\"properties\":{\"addressPrefix\":\"10.1.4.0/24\"}}",
          409, "InUseSubnetCannotBeUpdated");
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a" V, NULL, 409, "InUseSubnetCannotBeDeleted");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/16\"]},"
          "\"subnets\":[]}}",
          409, "InUseSubnetCannotBeDeleted");
  EXPECT ("DELETE", "/subscriptions/sub1/resourcegroups/net?api-version=2021-04-01", NULL, 409,
          "ResourceGroupNotEmpty");
  /* nothing changed by the refused updates */
  CHECK (list_size (NET "/virtualNetworks/vnet-a/subnets" V) == 2);
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/front" V,
          "{\"properties\":{\"addressPrefix\":\"10.1.0.0/24\",\"delegations\":[]}}", 409, "InUseSubnetCannotBeUpdated");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/front" V,
          "{\"properties\":{\"addressPrefix\":\"10.1.0.0/24\"," DELEG "}}", 200, NULL);
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.1.0.0/16\"]},"
          "\"subnets\":[{\"name\":\"front\",\"properties\":{\"addressPrefix\":\"10.1.8.0/24\"," DELEG "}},"
          "{\"name\":\"back\",\"properties\":{\"addressPrefix\":\"10.1.1.0/24\"}}]}}",
          409, "InUseSubnetCannotBeUpdated");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, 200, NULL);
  /* but the unused sibling may go */
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/spare" V, "{\"properties\":{\"addressPrefix\":\"10.1.3.0/24\"}}",
          201, NULL);
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a/subnets/spare" V, NULL, 200, NULL);

  /* the lookup container groups use */
  {
    uint32_t addr = 0;
    int prefix = 0;
    char *vnet = NULL;
    skiff_error_t e = NULL;
    CHECK (api_subnet_resolve (store, "sub1", NET "/virtualNetworks/vnet-a/subnets/front", &addr, &prefix, &vnet, &e)
           == 0);
    CHECK (addr == 0x0a010000 && prefix == 24);
    CHECK_STR (vnet, NET "/virtualNetworks/vnet-a");
    free (vnet);
    vnet = NULL;
    CHECK (api_subnet_resolve (store, "SUB1",
                               "/Subscriptions/sub1/ResourceGroups/NET/providers/microsoft.network/VirtualNetworks/"
                               "VNET-A/Subnets/FRONT",
                               &addr, &prefix, &vnet, &e)
           == 0);
    CHECK_STR (vnet, NET "/virtualNetworks/vnet-a");
    free (vnet);
    CHECK (api_subnet_resolve (store, "sub1", NET "/virtualNetworks/vnet-a/subnets/front", NULL, NULL, NULL, &e) == 0);
    skiff_error_release (&e);
  }
  RESOLVE (NET "/virtualNetworks/vnet-a/subnets/front", 0, NULL);
  RESOLVE (NET "/virtualNetworks/vnet-a/subnets/back", 400, "SubnetMissingRequiredDelegation");
  RESOLVE (NET "/virtualNetworks/vnet-a/subnets/gone", 404, "SubnetNotFound");
  RESOLVE (NET "/virtualNetworks/vnet-z/subnets/front", 404, "VirtualNetworkNotFound");
  RESOLVE ("/subscriptions/sub1/resourceGroups/elsewhere/providers/Microsoft.Network/virtualNetworks/vnet-a/subnets/"
           "front",
           404, "VirtualNetworkNotFound");
  RESOLVE ("/subscriptions/other/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet-a/subnets/front",
           400, "InvalidSubnetId");
  RESOLVE (RG "/providers/Microsoft.Compute/virtualNetworks/vnet-a/subnets/front", 400, "InvalidSubnetId");
  RESOLVE (NET "/virtualNetworks/vnet-a", 400, "InvalidSubnetId");
  RESOLVE (NET "/virtualNetworks/vnet-a/subnets/front/x", 400, "InvalidSubnetId");
  RESOLVE (NET "/virtualNetworks/vnet-a/subnet/front", 400, "InvalidSubnetId");
  RESOLVE (NET "/virtualNetworks/vnet-a/subnets/fr%6Fnt", 400, "InvalidSubnetId");
  RESOLVE ("subscriptions/sub1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vnet-a/subnets/front",
           400, "InvalidSubnetId");
  RESOLVE ("", 400, "InvalidSubnetId");
  RESOLVE (NULL, 400, "InvalidSubnetId");

  /* private DNS zones and links */
  EXPECT ("PUT", NET "/privateDnsZones/corp.test" Z, "{\"location\":\"westeurope\"}", 400,
          "LocationNotAvailableForResourceType");
  EXPECT ("PUT", NET "/privateDnsZones/single" Z, "{\"location\":\"global\"}", 400, "InvalidResourceName");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test" Z, "{\"location\":\"global\"}", 201, NULL);
  EXPECT ("PUT", NET "/privateDnsZones/other.test" Z, "{\"location\":\"Global\"}", 201, NULL);
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
          "/virtualNetworks/missing\"},\"registrationEnabled\":true}}",
          400, "InvalidVirtualNetworkId");
  j = call ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z,
            "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
            "/virtualNetworks/vnet-a\"},\"registrationEnabled\":true}}",
            &st);
  CHECK (st == 201);
  CHECK (json_is_true (json_object_get (json_object_get (j, "properties"), "registrationEnabled")));
  json_decref (j);
  /* If-None-Match: * creates only (what `az network private-dns ... create` sends) */
  if_none_match = "*";
  EXPECT ("PUT", NET "/privateDnsZones/corp.test" Z, "{\"location\":\"global\"}", 412, "PreconditionFailed");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
          "/virtualNetworks/vnet-a\"},\"registrationEnabled\":false}}",
          412, "PreconditionFailed");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, 412, "PreconditionFailed");
  EXPECT ("PUT", NET "/virtualNetworks/vnet-a/subnets/front" V, "{\"properties\":{\"addressPrefix\":\"10.1.0.0/24\"}}",
          412, "PreconditionFailed");
  EXPECT ("PUT", NET "/privateDnsZones/fresh.test" Z, "{\"location\":\"global\"}", 201, NULL);
  if_none_match = "\"some-etag\""; /* only `*` is understood: an update as without the header */
  EXPECT ("PUT", NET "/privateDnsZones/fresh.test" Z, "{\"location\":\"global\"}", 200, NULL);
  if_none_match = NULL;
  EXPECT ("DELETE", NET "/privateDnsZones/fresh.test" Z, NULL, 200, NULL);
  j = call ("GET", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z, NULL, &st);
  CHECK (st == 200 && json_is_true (json_object_get (json_object_get (j, "properties"), "registrationEnabled")));
  json_decref (j);
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l2" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET "/virtualNetworks/vnet-a\"}}}",
          409, "VirtualNetworkAlreadyLinked");
  EXPECT ("PUT", NET "/privateDnsZones/other.test/virtualNetworkLinks/l3" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
          "/virtualNetworks/vnet-a\"},\"registrationEnabled\":true}}",
          409, "RegistrationVirtualNetworkAlreadyLinked");
  EXPECT ("PUT", NET "/privateDnsZones/other.test/virtualNetworkLinks/l3" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
          "/virtualNetworks/vnet-a\"},\"registrationEnabled\":false}}",
          201, NULL);
  j = call ("GET", NET "/privateDnsZones/corp.test" Z, NULL, &st);
  CHECK (st == 200);
  CHECK (json_integer_value (json_object_get (json_object_get (j, "properties"), "numberOfVirtualNetworkLinks")) == 1);
  CHECK (json_integer_value (
             json_object_get (json_object_get (j, "properties"), "numberOfVirtualNetworkLinksWithRegistration"))
         == 1);
  json_decref (j);
  j = call ("GET", NET "/privateDnsZones" Z, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 2);
  json_decref (j);
  EXPECT ("DELETE", NET "/privateDnsZones/corp.test" Z, NULL, 409, "ZoneHasVirtualNetworkLinks");
  j = call ("GET", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z, NULL, &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (j, "type")), "Microsoft.Network/privateDnsZones/virtualNetworkLinks");
  CHECK_STR (json_string_value (json_object_get (j, "location")), "global");
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "properties"), "virtualNetworkLinkState")),
             "Completed");
  CHECK_STR (
      json_string_value (json_object_get (json_object_get (json_object_get (j, "properties"), "virtualNetwork"), "id")),
      NET "/virtualNetworks/vnet-a");
  json_decref (j);
  /* a link updates in place (it does not clash with itself) */
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
          "/virtualNetworks/VNET-A\"},\"registrationEnabled\":true}}",
          200, NULL);
  CHECK (list_size (NET "/privateDnsZones/corp.test/virtualNetworkLinks" Z) == 1);
  CHECK (list_size ("/subscriptions/sub1/providers/Microsoft.Network/privateDnsZones" Z) == 2);
  EXPECT ("GET", NET "/privateDnsZones/corp.test/virtualNetworkLinks/none" Z, NULL, 404, "ResourceNotFound");
  EXPECT ("GET", NET "/privateDnsZones/none.test" Z, NULL, 404, "ResourceNotFound");
  EXPECT ("PUT", NET "/privateDnsZones/none.test/virtualNetworkLinks/l9" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET "/virtualNetworks/vnet-a\"}}}",
          404, "ResourceNotFound");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l9" Z,
          "{\"location\":\"global\",\"properties\":{}}", 400, "InvalidRequestFormat");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l9" Z,
          "{\"location\":\"westus\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET "/virtualNetworks/vnet-a\"}}}",
          400, "LocationNotAvailableForResourceType");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l9" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
          "/virtualNetworks/vnet-a\"},\"registrationEnabled\":\"yes\"}}",
          400, "InvalidRequestFormat");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l9" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
          "/virtualNetworks/vnet-a/subnets/front\"}}}",
          400, "InvalidVirtualNetworkId");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l9" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"/subscriptions/other/resourceGroups/"
          "net/providers/Microsoft.Network/virtualNetworks/vnet-a\"}}}",
          400, "InvalidVirtualNetworkId");
  EXPECT ("PUT", NET "/privateDnsZones/corp.test/virtualNetworkLinks/bad%20name" Z,
          "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET "/virtualNetworks/vnet-a\"}}}",
          400, "InvalidResourceName");
  EXPECT ("PUT", NET "/privateDnsZones/bad_zone.test" Z, "{\"location\":\"global\"}", 400, "InvalidResourceName");
  EXPECT ("PUT", NET "/privateDnsZones/trailing.test." Z, "{\"location\":\"global\"}", 400, "InvalidResourceName");
  EXPECT ("PUT", NET "/privateDnsZones/x.test" Z, "{}", 400, "LocationNotAvailableForResourceType");
  j = call ("GET", NET "/privateDnsZones/corp.test" Z, NULL, &st);
  CHECK (json_integer_value (json_object_get (json_object_get (j, "properties"), "maxNumberOfRecordSets")) == 25000);
  CHECK (json_integer_value (json_object_get (json_object_get (j, "properties"), "numberOfRecordSets")) == 1);
  CHECK_STR (json_string_value (json_object_get (j, "type")), "Microsoft.Network/privateDnsZones");
  json_decref (j);
  /* a zone keeps its name's spelling; names compare without case */
  j = call ("PUT", NET "/privateDnsZones/Mixed.Example" Z, "{\"location\":\"global\",\"tags\":{\"a\":\"b\"}}", &st);
  CHECK (st == 201);
  CHECK_STR (json_string_value (json_object_get (j, "name")), "Mixed.Example");
  json_decref (j);
  j = call ("GET", NET "/privateDnsZones/mixed.example" Z, NULL, &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (j, "id")), NET "/privateDnsZones/Mixed.Example");
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "tags"), "a")), "b");
  json_decref (j);
  EXPECT ("DELETE", NET "/privateDnsZones/MIXED.example" Z, NULL, 200, NULL);
  EXPECT ("DELETE", NET "/privateDnsZones/MIXED.example" Z, NULL, 204, NULL);

  /* a resource group holding only network resources is not empty */
  EXPECT ("PUT", "/subscriptions/sub1/resourceGroups/net2/providers/Microsoft.Network/privateDnsZones/z.test" Z,
          "{\"location\":\"global\"}", 201, NULL);
  EXPECT ("DELETE", "/subscriptions/sub1/resourceGroups/net2?api-version=2021-04-01", NULL, 409,
          "ResourceGroupNotEmpty");
  EXPECT ("DELETE", "/subscriptions/sub1/resourceGroups/net2/providers/Microsoft.Network/privateDnsZones/z.test" Z,
          NULL, 200, NULL);
  EXPECT ("PUT", "/subscriptions/sub1/resourceGroups/net2/providers/Microsoft.Network/virtualNetworks/v2" V,
          "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.30.0.0/16\"]}}}", 201,
          NULL);
  EXPECT ("DELETE", "/subscriptions/sub1/resourceGroups/net2?api-version=2021-04-01", NULL, 409,
          "ResourceGroupNotEmpty");
  CHECK (list_size ("/subscriptions/sub1/providers/Microsoft.Network/virtualNetworks" V) == 2);
  CHECK (list_size (NET "/virtualNetworks" V) == 1);

  /* authorization: a Reader of the resource group reads but does not write */
  {
    char *reader = principal_with_role ("net-reader", READER_ROLE, RG);
    char *narrow = principal_with_role ("group-reader", READER_ROLE,
                                        RG "/providers/Microsoft.ContainerInstance/containerGroups/g1");
    char *nobody = principal_with_role ("nobody", NULL, NULL);
    who = reader;
    EXPECT ("GET", NET "/virtualNetworks/vnet-a" V, NULL, 200, NULL);
    EXPECT ("GET", NET "/virtualNetworks/vnet-a/subnets/front" V, NULL, 200, NULL);
    EXPECT ("GET", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z, NULL, 200, NULL);
    CHECK (list_size (NET "/virtualNetworks" V) == 1);
    CHECK (list_size ("/subscriptions/sub1/providers/Microsoft.Network/virtualNetworks" V) == 1); /* not net2's */
    EXPECT ("PUT", NET "/virtualNetworks/vnet-a" V, VNET_A, 403, "AuthorizationFailed");
    EXPECT ("PUT", NET "/virtualNetworks/vnet-new" V, VNET_A, 403, "AuthorizationFailed");
    EXPECT ("DELETE", NET "/virtualNetworks/vnet-a/subnets/back" V, NULL, 403, "AuthorizationFailed");
    EXPECT ("PUT", NET "/privateDnsZones/corp.test" Z, "{\"location\":\"global\"}", 403, "AuthorizationFailed");
    EXPECT ("DELETE", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z, NULL, 403, "AuthorizationFailed");
    EXPECT ("GET", "/subscriptions/sub1/resourceGroups/net2/providers/Microsoft.Network/virtualNetworks/v2" V, NULL,
            403, "AuthorizationFailed");
    /* a Reader of one container group of the resource group lists it, but sees no network in it */
    who = narrow;
    CHECK (list_size (NET "/virtualNetworks" V) == 0);
    CHECK (list_size (NET "/privateDnsZones" Z) == 0);
    CHECK (list_size ("/subscriptions/sub1/providers/Microsoft.Network/virtualNetworks" V) == 0);
    EXPECT ("GET", NET "/virtualNetworks/vnet-a" V, NULL, 403, "AuthorizationFailed");
    EXPECT ("GET", NET "/privateDnsZones/corp.test" Z, NULL, 403, "AuthorizationFailed");
    /* no role at all: refused before anything is looked up */
    who = nobody;
    EXPECT ("GET", NET "/virtualNetworks" V, NULL, 403, "AuthorizationFailed");
    EXPECT ("GET", NET "/virtualNetworks/vnet-a" V, NULL, 403, "AuthorizationFailed");
    EXPECT ("GET", "/subscriptions/sub1/resourceGroups/missing/providers/Microsoft.Network/virtualNetworks/v" V, NULL,
            403, "AuthorizationFailed");
    who = ADMIN;
    free (reader);
    free (narrow);
    free (nobody);
  }
  EXPECT ("DELETE", "/subscriptions/sub1/resourceGroups/net2/providers/Microsoft.Network/virtualNetworks/v2" V, NULL,
          200, NULL);
  EXPECT ("DELETE", "/subscriptions/sub1/resourceGroups/net2?api-version=2021-04-01", NULL, 200, NULL);

  /* the store lists across subscriptions */
  store_netres_t *all = NULL;
  int n = 0;
  CHECK (store_netres_list (store, "Microsoft.Network/privateDnsZones/virtualNetworkLinks", NULL, NULL, NULL, &all, &n,
                            &err)
             == 0
         && n == 2);
  store_netres_free_array (all, n);

  /* teardown in order: group, links, zones, then the network */
  EXPECT ("DELETE", RG "/providers/Microsoft.ContainerInstance/containerGroups/g1?api-version=2023-05-01", NULL, 202,
          NULL);
  store_group_t g = { 0 };
  if (store_group_get (store, "sub1", "net", "g1", &g, &err) == 0 && g.id)
    store_group_delete (store, g.id, &err);
  store_group_clear (&g);
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a" V, NULL, 409, "InUseVirtualNetworkCannotBeDeleted");
  EXPECT ("DELETE", NET "/privateDnsZones/corp.test/virtualNetworkLinks/l1" Z, NULL, 200, NULL);
  EXPECT ("DELETE", NET "/privateDnsZones/other.test/virtualNetworkLinks/l3" Z, NULL, 200, NULL);
  EXPECT ("DELETE", NET "/privateDnsZones/corp.test" Z, NULL, 200, NULL);
  EXPECT ("DELETE", NET "/privateDnsZones/other.test" Z, NULL, 200, NULL);
  EXPECT ("DELETE", NET "/virtualNetworks/vnet-a" V, NULL, 200, NULL);
  CHECK (store_netres_list (store, "Microsoft.Network/virtualNetworks/subnets", NULL, NULL, NULL, &all, &n, &err) == 0
         && n == 0);
  store_netres_free_array (all, n);
  EXPECT ("GET", NET "/virtualNetworks/vnet-a" V, NULL, 404, "ResourceNotFound");
  EXPECT ("GET", NET "/loadBalancers" V, NULL, 404, "InvalidResourceType");

  /* Azure's limits: 100 links with registration per zone; virtual networks per subscription (1000,
     here 110 to keep the test short) */
  ctx.max_virtual_networks = 110;
  {
    int ok = 1, zone_st;
    json_decref (call ("PUT", NET "/privateDnsZones/many.test" Z, "{\"location\":\"global\"}", &zone_st));
    CHECK (zone_st == 201);
    for (int i = 0; i < 110 && ok; i++)
      {
        char url[256], body[256];
        snprintf (url, sizeof url, NET "/virtualNetworks/v%d" V, i);
        snprintf (
            body, sizeof body,
            "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.%d.%d.0/24\"]}}}",
            100 + i / 250, i % 250);
        json_decref (call ("PUT", url, body, &st));
        ok = st == 201;
        if (ok && i <= 100)
          {
            snprintf (url, sizeof url, NET "/privateDnsZones/many.test/virtualNetworkLinks/l%d" Z, i);
            snprintf (body, sizeof body,
                      "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
                      "/virtualNetworks/v%d\"},\"registrationEnabled\":true}}",
                      i);
            j = call ("PUT", url, body, &st);
            ok = i < 100 ? st == 201 : st == 409 && strcmp (code_of (j) ? code_of (j) : "", "QuotaExceeded") == 0;
            json_decref (j);
          }
      }
    CHECK (ok);
    /* the 101st link without registration is fine; the 111th network is not */
    EXPECT ("PUT", NET "/privateDnsZones/many.test/virtualNetworkLinks/l100" Z,
            "{\"location\":\"global\",\"properties\":{\"virtualNetwork\":{\"id\":\"" NET
            "/virtualNetworks/v100\"},\"registrationEnabled\":false}}",
            201, NULL);
    EXPECT ("PUT", NET "/virtualNetworks/one-too-many" V,
            "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.99.0.0/24\"]}}}", 409,
            "QuotaExceeded");
    /* an update of an existing one is no new network */
    EXPECT ("PUT", NET "/virtualNetworks/v109" V,
            "{\"location\":\"local\",\"tags\":{\"t\":\"1\"},\"properties\":{\"addressSpace\":{"
            "\"addressPrefixes\":[\"10.100.109.0/24\"]}}}",
            200, NULL);
    for (int i = 0; i <= 100; i++)
      {
        char url[256];
        snprintf (url, sizeof url, NET "/privateDnsZones/many.test/virtualNetworkLinks/l%d" Z, i);
        json_decref (call ("DELETE", url, NULL, &st));
      }
    EXPECT ("DELETE", NET "/privateDnsZones/many.test" Z, NULL, 200, NULL);
    for (int i = 0; i < 110; i++)
      {
        char url[256];
        snprintf (url, sizeof url, NET "/virtualNetworks/v%d" V, i);
        json_decref (call ("DELETE", url, NULL, &st));
      }
    EXPECT ("PUT", NET "/virtualNetworks/one-too-many" V,
            "{\"location\":\"local\",\"properties\":{\"addressSpace\":{\"addressPrefixes\":[\"10.99.0.0/24\"]}}}", 201,
            NULL);
    EXPECT ("DELETE", NET "/virtualNetworks/one-too-many" V, NULL, 200, NULL);
  }
  EXPECT ("DELETE", "/subscriptions/sub1/resourcegroups/net?api-version=2021-04-01", NULL, 200, NULL);

  EVP_PKEY_free (key);
  api_sessions_free (ctx.sessions);
  free (keyfile);
  store_close (store);
  char *rm = skiff_strdup_printf ("rm -rf %s", dir);
  if (system (rm) != 0)
    fprintf (stderr, "cleanup failed\n");
  free (rm);
  free (db);
  TEST_MAIN_END ();
}
