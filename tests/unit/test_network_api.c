/* Unit tests: Microsoft.Network resources through the API over a real SQLite store (no agent):
 * virtual networks and subnets, private DNS zones and links, their validation and delete rules,
 * and the subnet check of container groups. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "store/store.h"
#include "test.h"

static api_ctx_t ctx;
static const char *const locs[] = { "local", NULL };

static json_t *
call (const char *method, const char *url, const char *body, int *status)
{
  const char *q = strchr (url, '?');
  api_request_t req = { .method = method,
                        .path = url,
                        .path_len = q ? (size_t)(q - url) : strlen (url),
                        .query = q ? q + 1 : NULL,
                        .query_len = q ? strlen (q + 1) : 0,
                        .authorization = "Bearer 0123456789abcdef0123456789abcdef",
                        .host = "127.0.0.1:1",
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
  ctx = (api_ctx_t){ .store = store,
                     .subscription_id = "sub1",
                     .tenant_id = "t1",
                     .admin_token = "0123456789abcdef0123456789abcdef",
                     .limits = { .host_cpus = 2, .host_memory_gb = 8, .locations = locs },
                     .page_size = 100,
                     .data_dir = dir,
                     .host_net = 0x0af20000, /* 10.242.0.0/16 */
                     .host_net_prefix = 16 };
  int st;
  json_t *j;

  EXPECT ("PUT", NET "/virtualNetworks/a" V, VNET_A, 404, "ResourceGroupNotFound");
  EXPECT ("PUT", RG "?api-version=2021-04-01", "{\"location\":\"local\"}", 201, NULL);

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

  /* validation */
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
  EXPECT ("DELETE", "/subscriptions/sub1/resourcegroups/net?api-version=2021-04-01", NULL, 200, NULL);

  store_close (store);
  char *rm = skiff_strdup_printf ("rm -rf %s", dir);
  if (system (rm) != 0)
    fprintf (stderr, "cleanup failed\n");
  free (rm);
  free (db);
  TEST_MAIN_END ();
}
