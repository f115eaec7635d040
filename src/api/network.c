/* network.c - Microsoft.Network resources in ARM's shape: virtual networks with their subnets,
 * private DNS zones with their virtual network links. They are stored as JSON (store_network.c);
 * the agent derives bridges, rules and DNS records from them (agent_network_changed).
 *
 * ARM error codes: Azure's where they exist (ResourceNotFound, ResourceGroupNotFound,
 * InvalidResourceType, InvalidResourceName, LocationRequired, InvalidRequestFormat,
 * InvalidRequestContent, InvalidAddressPrefixFormat, NetcfgSubnetRangeOutsideVnet,
 * NetcfgSubnetRangesOverlap, VnetAddressSpacesOverlap, InUseSubnetCannotBeDeleted,
 * InUseSubnetCannotBeUpdated, LocationNotAvailableForResourceType, InvalidSubnetId,
 * SubnetMissingRequiredDelegation). skiff's own:
 *   VnetAddressSpaceOverlaps (400): the address space overlaps another virtual network's or the
 *     host's group network (skiff routes all virtual networks in the host's routing table);
 *   DuplicateSubnetName (400): a vnet PUT lists two subnets of the same name;
 *   InUseVirtualNetworkCannotBeDeleted (409): a private DNS zone still links the vnet;
 *   ZoneHasVirtualNetworkLinks (409): deleting a zone that still has links;
 *   InvalidVirtualNetworkId (400): a link's virtualNetwork.id names no vnet of this subscription;
 *   VirtualNetworkAlreadyLinked (409): the vnet already has a link to this zone;
 *   RegistrationVirtualNetworkAlreadyLinked (409): the vnet already registers in another zone;
 *   VirtualNetworkNotFound / SubnetNotFound (404): api_subnet_resolve's missing vnet / subnet.
 * A PUT with `If-None-Match: *` of a resource that exists gets ARM's 412 PreconditionFailed.
 * Creating one more than Azure's limits (MAX_VNETS, MAX_ZONES, MAX_LINKS, MAX_REGISTRATION_LINKS)
 * gets 409 QuotaExceeded. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "api_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "dns/dns.h"
#include "model/model.h"
#include "net/net.h"
#include "store/store.h"

#define NET_PROVIDER "Microsoft.Network"
#define VNET_TYPE NET_PROVIDER "/virtualNetworks"
#define SUBNET_TYPE VNET_TYPE "/subnets"
#define ZONE_TYPE NET_PROVIDER "/privateDnsZones"
#define LINK_TYPE ZONE_TYPE "/virtualNetworkLinks"
#define ACI_SERVICE "Microsoft.ContainerInstance/containerGroups"
#define MAX_PREFIXES 16
#define MAX_SUBNETS 256
/* Azure's limits: virtual networks (unless the context says) and private DNS zones per
 * subscription, links per zone */
#define MAX_VNETS 1000
#define MAX_ZONES 1000
#define MAX_LINKS 1000
#define MAX_REGISTRATION_LINKS 100

typedef struct
{
  uint32_t net;
  int prefix;
} cidr_t;

static uint32_t
mask_of (int prefix)
{
  return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static int
overlaps (cidr_t a, cidr_t b)
{
  int p = a.prefix < b.prefix ? a.prefix : b.prefix;
  return (a.net & mask_of (p)) == (b.net & mask_of (p));
}

static int
inside (cidr_t inner, cidr_t outer)
{
  return inner.prefix >= outer.prefix && (inner.net & mask_of (outer.prefix)) == outer.net;
}

static int
valid_name (const char *s)
{
  size_t n = s ? strnlen (s, 81) : 0;
  return n >= 1 && n <= 80 && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static char *
new_etag (void)
{
  char u[40];
  skiff_uuid (u);
  return skiff_strdup_printf ("W/\"%s\"", u);
}

/* Parses a CIDR from a request into c; ARM 400 InvalidAddressPrefixFormat otherwise. */
static int
parse_prefix (const char *s, const char *target, cidr_t *c, skiff_error_t *err)
{
  skiff_error_t e = NULL;
  if (s == NULL || net_parse_cidr (s, &c->net, &c->prefix, &e) < 0)
    {
      int r = skiff_error_arm_target (err, 400, "InvalidAddressPrefixFormat", target,
                                      "The address prefix '%s' is not valid: %s", s ? s : "",
                                      e ? e->msg : "expected an IPv4 CIDR such as 10.1.0.0/16");
      skiff_error_release (&e);
      return r;
    }
  return 0;
}

static pthread_mutex_t network_writes = PTHREAD_MUTEX_INITIALIZER;

void
api_network_lock (void)
{
  pthread_mutex_lock (&network_writes);
}

void
api_network_unlock (void)
{
  pthread_mutex_unlock (&network_writes);
}

/* 1 when subnet properties carry a delegation to container groups. */
static int
delegated_to_aci (json_t *props)
{
  size_t i;
  json_t *d;
  json_array_foreach (json_object_get (props, "delegations"), i, d)
  {
    const char *svc = json_string_value (json_object_get (json_object_get (d, "properties"), "serviceName"));
    if (svc && strcasecmp (svc, ACI_SERVICE) == 0)
      return 1;
  }
  return 0;
}

/* ---- who uses a subnet ---- */

/* 1 when some container group of the subscription refers to the subnet id (or, with
 * whole_vnet, to any subnet of the virtual network id). */
static int
subnet_in_use (store_t *store, const char *sub, const char *id, int whole_vnet, skiff_error_t *err)
{
  store_group_t *groups = NULL;
  int n = 0;
  if (store_group_list (store, sub, NULL, NULL, 0, &groups, &n, err) < 0)
    return -1;
  int used = 0;
  size_t idl = strlen (id);
  for (int i = 0; i < n && !used; i++)
    {
      size_t k;
      json_t *e;
      json_array_foreach (json_object_get (json_object_get (groups[i].spec, "properties"), "subnetIds"), k, e)
      {
        const char *sid = json_string_value (json_object_get (e, "id"));
        if (sid == NULL)
          continue;
        if (whole_vnet ? (strncasecmp (sid, id, idl) == 0 && strncasecmp (sid + idl, "/subnets/", 9) == 0)
                       : strcasecmp (sid, id) == 0)
          used = 1;
      }
    }
  store_group_free_array (groups, n);
  return used;
}

/* ---- views ---- */

static json_t *
subnet_view (const store_netres_t *r)
{
  json_t *p = json_object_get (r->body, "properties");
  json_t *dels = json_array ();
  size_t i;
  json_t *d;
  json_array_foreach (json_object_get (p, "delegations"), i, d)
  {
    const char *name = json_string_value (json_object_get (d, "name"));
    const char *svc = json_string_value (json_object_get (json_object_get (d, "properties"), "serviceName"));
    cleanup_free char *id = skiff_strdup_printf ("%s/delegations/%s", r->id, name);
    json_t *actions = json_array ();
    if (svc && strcasecmp (svc, ACI_SERVICE) == 0)
      json_array_append_new (actions, json_string (SUBNET_TYPE "/action"));
    json_array_append_new (dels, json_pack ("{s:s,s:s,s:s,s:O,s:{s:s,s:o,s:s}}", "id", id, "name", name, "type",
                                            SUBNET_TYPE "/delegations", "etag", json_object_get (r->body, "etag"),
                                            "properties", "serviceName", svc, "actions", actions, "provisioningState",
                                            "Succeeded"));
  }
  return json_pack ("{s:s,s:s,s:s,s:O,s:{s:s,s:O,s:o,s:s,s:s}}", "id", r->id, "name", r->name, "type", SUBNET_TYPE,
                    "etag", json_object_get (r->body, "etag"), "properties", "provisioningState", "Succeeded",
                    "addressPrefix", json_object_get (p, "addressPrefix"), "delegations", dels,
                    "privateEndpointNetworkPolicies", "Disabled", "privateLinkServiceNetworkPolicies", "Enabled");
}

static json_t *
vnet_view (call_t *c, const store_netres_t *r)
{
  json_t *subnets = json_array ();
  store_netres_t *subs = NULL;
  int n = 0;
  if (store_netres_list (c->ctx->store, SUBNET_TYPE, NULL, NULL, r->id, &subs, &n, NULL) == 0)
    {
      for (int i = 0; i < n; i++)
        json_array_append_new (subnets, subnet_view (&subs[i]));
      store_netres_free_array (subs, n);
    }
  json_t *p = json_object_get (r->body, "properties");
  json_t *v = json_pack (
      "{s:s,s:s,s:s,s:O,s:O,s:{s:s,s:O,s:O,s:o,s:[],s:b}}", "id", r->id, "name", r->name, "type", VNET_TYPE, "location",
      json_object_get (r->body, "location"), "etag", json_object_get (r->body, "etag"), "properties",
      "provisioningState", "Succeeded", "resourceGuid", json_object_get (p, "resourceGuid"), "addressSpace",
      json_object_get (p, "addressSpace"), "subnets", subnets, "virtualNetworkPeerings", "enableDdosProtection", 0);
  if (json_object_get (r->body, "tags"))
    json_object_set (v, "tags", json_object_get (r->body, "tags"));
  return v;
}

static json_t *
link_view (const store_netres_t *r)
{
  json_t *p = json_object_get (r->body, "properties");
  return json_pack ("{s:s,s:s,s:s,s:s,s:O,s:{s:O,s:O,s:s,s:s}}", "id", r->id, "name", r->name, "type", LINK_TYPE,
                    "location", "global", "etag", json_object_get (r->body, "etag"), "properties", "virtualNetwork",
                    json_object_get (p, "virtualNetwork"), "registrationEnabled",
                    json_object_get (p, "registrationEnabled"), "virtualNetworkLinkState", "Completed",
                    "provisioningState", "Succeeded");
}

static int zone_registered (store_t *store, const store_netres_t *zone, json_t **out, skiff_error_t *err);

/* Counts the links of zone zone_id other than except_id (may be NULL) in *n, and those among them
 * with registration in *registering. */
static int
zone_link_counts (store_t *store, const char *zone_id, const char *except_id, int *n, int *registering,
                  skiff_error_t *err)
{
  store_netres_t *links = NULL;
  int count = 0;
  *n = *registering = 0;
  if (store_netres_list (store, LINK_TYPE, NULL, NULL, zone_id, &links, &count, err) < 0)
    return -1;
  for (int i = 0; i < count; i++)
    if (except_id == NULL || strcasecmp (links[i].id, except_id) != 0)
      {
        (*n)++;
        *registering
            += json_is_true (json_object_get (json_object_get (links[i].body, "properties"), "registrationEnabled"));
      }
  store_netres_free_array (links, count);
  return 0;
}

static json_t *
zone_view (call_t *c, const store_netres_t *r)
{
  json_t *names = NULL;
  size_t record_sets = 1; /* the SOA */
  if (zone_registered (c->ctx->store, r, &names, NULL) == 0)
    record_sets += json_object_size (names);
  json_decref (names);
  int n = 0, reg = 0;
  zone_link_counts (c->ctx->store, r->id, NULL, &n, &reg, NULL);
  json_t *v = json_pack ("{s:s,s:s,s:s,s:s,s:O,s:{s:i,s:i,s:i,s:i,s:i,s:i,s:s}}", "id", r->id, "name", r->name, "type",
                         ZONE_TYPE, "location", "global", "etag", json_object_get (r->body, "etag"), "properties",
                         "maxNumberOfRecordSets", 25000, "maxNumberOfVirtualNetworkLinks", MAX_LINKS,
                         "maxNumberOfVirtualNetworkLinksWithRegistration", MAX_REGISTRATION_LINKS, "numberOfRecordSets",
                         (int)record_sets, "numberOfVirtualNetworkLinks", n,
                         "numberOfVirtualNetworkLinksWithRegistration", reg, "provisioningState", "Succeeded");
  if (json_object_get (r->body, "tags"))
    json_object_set (v, "tags", json_object_get (r->body, "tags"));
  return v;
}

/* ---- request plumbing ---- */

typedef struct
{
  call_t *c;
  const char *sub;
  const char *rg; /* NULL at subscription level */
  char *rg_id;    /* /subscriptions/S/resourceGroups/RG */
} netcall_t;

static void
not_found (call_t *c, const char *type, const char *name, const char *rg)
{
  cleanup_free char *m
      = skiff_strdup_printf ("The Resource '%s/%s' under resource group '%s' was not found.", type, name, rg);
  api_reply_error (c, 404, "ResourceNotFound", m, NULL);
}

static const char *
action_for (call_t *c)
{
  return api_method_is (c, "GET") ? "read" : api_method_is (c, "DELETE") ? "delete" : "write";
}

/* Checks the caller may do the request's action on type at scope (replies 403 otherwise). */
static int
authorize (call_t *c, const char *scope, const char *type)
{
  cleanup_free char *action = skiff_strdup_printf ("%s/%s", type, action_for (c));
  return api_authorize (c, scope, action);
}

static int
read_body (call_t *c, json_t **out)
{
  cleanup_error skiff_error_t err = NULL;
  if (model_parse_json (c->req->body, c->req->body_len, out, &err) < 0)
    {
      api_reply_skiff_error (c, err);
      return -1;
    }
  if (!json_is_object (*out))
    {
      json_decref (*out);
      *out = NULL;
      api_reply_error (c, 400, "InvalidRequestContent", "The request content must be a JSON object.", NULL);
      return -1;
    }
  return 0;
}

/* Lists resources of type below parent (or in the rg / subscription), filtered to what the
 * caller may read. */
static void
reply_list (netcall_t *n, const char *type, const char *parent, json_t *(*view) (call_t *, const store_netres_t *))
{
  call_t *c = n->c;
  cleanup_error skiff_error_t err = NULL;
  store_netres_t *v = NULL;
  int count = 0;
  if (store_netres_list (c->ctx->store, type, parent ? NULL : n->sub, parent ? NULL : n->rg, parent, &v, &count, &err)
      < 0)
    return api_reply_skiff_error (c, err);
  cleanup_free char *action = skiff_strdup_printf ("%s/read", type);
  json_t *value = json_array ();
  for (int i = 0; i < count; i++)
    if (api_allowed (&c->who, v[i].id, action))
      json_array_append_new (value, view (c, &v[i]));
  store_netres_free_array (v, count);
  api_reply_json (c, 200, json_pack ("{s:o}", "value", value));
}

static json_t *
subnet_view_c (call_t *c, const store_netres_t *r)
{
  (void)c;
  return subnet_view (r);
}

static json_t *
link_view_c (call_t *c, const store_netres_t *r)
{
  (void)c;
  return link_view (r);
}

static void
changed (call_t *c)
{
  agent_network_changed (c->ctx->agent);
}

/* ---- virtual networks and subnets ---- */

/* Checks a subnet body (addressPrefix inside the vnet, delegations) and fills *out with what is
 * stored. */
static int
check_subnet (json_t *props, const char *target, const cidr_t *space, size_t n_space, cidr_t *out, json_t **stored,
              skiff_error_t *err)
{
  const char *prefix = json_string_value (json_object_get (props, "addressPrefix"));
  if (prefix == NULL)
    return skiff_error_arm_target (err, 400, "InvalidRequestFormat", target,
                                   "The subnet needs properties.addressPrefix.");
  if (parse_prefix (prefix, target, out, err) < 0)
    return -1;
  if (out->prefix > 29)
    return skiff_error_arm_target (err, 400, "InvalidAddressPrefixFormat", target,
                                   "The subnet prefix '%s' is too small: the smallest subnet is a /29.", prefix);
  int ok = 0;
  for (size_t i = 0; i < n_space && !ok; i++)
    ok = inside (*out, space[i]);
  if (!ok)
    return skiff_error_arm_target (err, 400, "NetcfgSubnetRangeOutsideVnet", target,
                                   "Subnet address prefix '%s' is not within the address space of its virtual "
                                   "network.",
                                   prefix);
  json_t *dels = json_array ();
  size_t i;
  json_t *d;
  json_array_foreach (json_object_get (props, "delegations"), i, d)
  {
    const char *name = json_string_value (json_object_get (d, "name"));
    const char *svc = json_string_value (json_object_get (json_object_get (d, "properties"), "serviceName"));
    if (svc == NULL || i >= 8)
      {
        json_decref (dels);
        return skiff_error_arm_target (err, 400, "InvalidRequestFormat", target,
                                       "A delegation needs properties.serviceName (at most 8 delegations).");
      }
    cleanup_free char *dn = skiff_strdup_printf ("%zu", i);
    json_array_append_new (
        dels, json_pack ("{s:s,s:{s:s}}", "name", valid_name (name) ? name : dn, "properties", "serviceName", svc));
  }
  *stored = json_pack ("{s:s,s:o}", "addressPrefix", prefix, "delegations", dels);
  return 0;
}

static int
load_prefixes (json_t *vnet_body, cidr_t *v, size_t *n)
{
  *n = 0;
  size_t i;
  json_t *e;
  json_array_foreach (
      json_object_get (json_object_get (json_object_get (vnet_body, "properties"), "addressSpace"), "addressPrefixes"),
      i, e)
  {
    skiff_error_t err = NULL;
    if (*n < MAX_PREFIXES && net_parse_cidr (json_string_value (e), &v[*n].net, &v[*n].prefix, &err) == 0)
      (*n)++;
    skiff_error_release (&err);
  }
  return 0;
}

static void
vnet_put (netcall_t *n, const char *id, const char *name)
{
  call_t *c = n->c;
  cleanup_error skiff_error_t err = NULL;
  cleanup_json json_t *body = NULL;
  if (!valid_name (name))
    return api_reply_error (c, 400, "InvalidResourceName",
                            "A virtual network name has 1 to 80 letters, digits, '_', '.' and '-'.", NULL);
  if (read_body (c, &body) < 0)
    return;
  const char *location = json_string_value (json_object_get (body, "location"));
  if (location == NULL || !*location)
    return api_reply_error (c, 400, "LocationRequired", "The location property is required for this definition.",
                            "location");
  if (!model_location_served (&c->ctx->limits, location))
    {
      cleanup_free char *m
          = skiff_strdup_printf ("The provided location '%.64s' is not available for resource type '" VNET_TYPE
                                 "'. This host serves its --location values.",
                                 location);
      return api_reply_error (c, 400, "LocationNotAvailableForResourceType", m, "location");
    }
  json_t *tags = json_object_get (body, "tags");
  if (tags && !json_is_object (tags) && !json_is_null (tags))
    return api_reply_error (c, 400, "InvalidRequestContent", "The property 'tags' must be an object.", "tags");
  json_t *props = json_object_get (body, "properties");
  json_t *subs = json_object_get (props, "subnets");
  if (json_is_null (subs))
    subs = NULL; /* like an absent list: the stored subnets stay */
  if (subs && !json_is_array (subs))
    return api_reply_error (c, 400, "InvalidRequestFormat", "properties.subnets must be an array of subnets.",
                            "properties.subnets");
  json_t *prefixes = json_object_get (json_object_get (props, "addressSpace"), "addressPrefixes");
  if (!json_is_array (prefixes) || json_array_size (prefixes) == 0 || json_array_size (prefixes) > MAX_PREFIXES)
    return api_reply_error (c, 400, "InvalidRequestFormat",
                            "properties.addressSpace.addressPrefixes needs 1 to 16 address prefixes.",
                            "properties.addressSpace.addressPrefixes");
  cidr_t space[MAX_PREFIXES];
  size_t ns = 0, i;
  json_t *e;
  json_array_foreach (prefixes, i, e)
  {
    if (parse_prefix (json_string_value (e), "properties.addressSpace.addressPrefixes", &space[ns], &err) < 0)
      return api_reply_skiff_error (c, err);
    for (size_t k = 0; k < ns; k++)
      if (overlaps (space[k], space[ns]))
        return api_reply_error (c, 400, "VnetAddressSpacesOverlap",
                                "The address prefixes of the virtual network overlap each other.",
                                "properties.addressSpace.addressPrefixes");
    cidr_t host = { c->ctx->host_net, c->ctx->host_net_prefix };
    if (c->ctx->host_net_prefix && overlaps (space[ns], host))
      {
        cleanup_free char *m = skiff_strdup_printf (
            "The address prefix '%s' overlaps the host's group network. Virtual networks share the host's "
            "routing table in skiff, so their address spaces must not overlap it or each other.",
            json_string_value (e));
        return api_reply_error (c, 400, "VnetAddressSpaceOverlaps", m, "properties.addressSpace.addressPrefixes");
      }
    ns++;
  }
  /* no overlap with another virtual network on this host */
  store_netres_t *all = NULL;
  int na = 0;
  if (store_netres_list (c->ctx->store, VNET_TYPE, NULL, NULL, NULL, &all, &na, &err) < 0)
    return api_reply_skiff_error (c, err);
  for (int k = 0; k < na; k++)
    {
      if (strcasecmp (all[k].id, id) == 0)
        continue;
      cidr_t other[MAX_PREFIXES];
      size_t no;
      load_prefixes (all[k].body, other, &no);
      for (size_t a = 0; a < ns; a++)
        for (size_t b = 0; b < no; b++)
          if (overlaps (space[a], other[b]))
            {
              cleanup_free char *m
                  = skiff_strdup_printf ("The address space of the virtual network overlaps that of '%s'. Virtual "
                                         "networks share the host's routing table in skiff, so their address "
                                         "spaces must not overlap.",
                                         all[k].id);
              store_netres_free_array (all, na);
              return api_reply_error (c, 400, "VnetAddressSpaceOverlaps", m, "properties.addressSpace.addressPrefixes");
            }
    }
  store_netres_free_array (all, na);

  /* the subnets: those in the body replace the stored ones; without `subnets` the stored ones stay */
  store_netres_t cur = { 0 };
  int exists = store_netres_get (c->ctx->store, id, &cur, &err);
  if (exists < 0)
    return api_reply_skiff_error (c, err);
  store_netres_t *old_subs = NULL;
  int n_old = 0;
  if (exists == 0 && store_netres_list (c->ctx->store, SUBNET_TYPE, NULL, NULL, id, &old_subs, &n_old, &err) < 0)
    {
      store_netres_clear (&cur);
      return api_reply_skiff_error (c, err);
    }
  size_t n_new = json_array_size (subs);
  cidr_t new_cidrs[MAX_SUBNETS];
  cleanup_json json_t *new_bodies = json_array ();
  const char *fail_code = NULL;
  cleanup_free char *fail_msg = NULL;
  if (n_new > MAX_SUBNETS)
    {
      fail_code = "InvalidRequestFormat";
      fail_msg = skiff_strdup_printf ("At most %d subnets.", MAX_SUBNETS);
    }
  for (i = 0; !fail_code && i < n_new; i++)
    {
      json_t *s = json_array_get (subs, i);
      const char *sn = json_string_value (json_object_get (s, "name"));
      json_t *stored = NULL;
      if (!valid_name (sn))
        {
          fail_code = "InvalidResourceName";
          fail_msg = skiff_strdup ("A subnet name has 1 to 80 letters, digits, '_', '.' and '-'.");
          break;
        }
      for (size_t k = 0; k < i && !fail_code; k++)
        if (strcasecmp (json_string_value (json_object_get (json_array_get (new_bodies, k), "name")), sn) == 0)
          {
            fail_code = "DuplicateSubnetName";
            fail_msg = skiff_strdup_printf ("Subnet '%s' is listed more than once.", sn);
          }
      if (fail_code)
        break;
      if (check_subnet (json_object_get (s, "properties"), "properties.subnets", space, ns, &new_cidrs[i], &stored,
                        &err)
          < 0)
        break;
      for (size_t k = 0; k < i; k++)
        if (overlaps (new_cidrs[k], new_cidrs[i]))
          {
            fail_code = "NetcfgSubnetRangesOverlap";
            fail_msg = skiff_strdup_printf ("Subnet '%s' overlaps another subnet of the virtual network.", sn);
          }
      json_array_append_new (new_bodies, json_pack ("{s:s,s:o}", "name", sn, "properties", stored));
    }
  /* stored subnets that go away or change, or that no longer fit the address space */
  for (int k = 0; !err && !fail_code && k < n_old; k++)
    {
      const char *prefix
          = json_string_value (json_object_get (json_object_get (old_subs[k].body, "properties"), "addressPrefix"));
      json_t *replacement = NULL;
      for (i = 0; subs && i < n_new; i++)
        if (strcasecmp (json_string_value (json_object_get (json_array_get (new_bodies, i), "name")), old_subs[k].name)
            == 0)
          replacement = json_array_get (new_bodies, i);
      const char *new_prefix
          = replacement
                ? json_string_value (json_object_get (json_object_get (replacement, "properties"), "addressPrefix"))
                : prefix;
      int goes = subs && replacement == NULL;
      int moves = replacement
                  && (strcmp (new_prefix ? new_prefix : "", prefix ? prefix : "") != 0
                      || (delegated_to_aci (json_object_get (old_subs[k].body, "properties"))
                          && !delegated_to_aci (json_object_get (replacement, "properties"))));
      if (!subs)
        {
          cidr_t sc;
          skiff_error_t pe = NULL;
          int fits = 0;
          if (net_parse_cidr (prefix, &sc.net, &sc.prefix, &pe) == 0)
            for (size_t a = 0; a < ns && !fits; a++)
              fits = inside (sc, space[a]);
          skiff_error_release (&pe);
          if (!fits)
            {
              fail_code = "NetcfgSubnetRangeOutsideVnet";
              fail_msg = skiff_strdup_printf ("Subnet '%s' (%s) would lie outside the new address space.",
                                              old_subs[k].name, prefix ? prefix : "");
              break;
            }
        }
      if (goes || moves)
        {
          int used = subnet_in_use (c->ctx->store, n->sub, old_subs[k].id, 0, &err);
          if (used > 0)
            {
              fail_code = goes ? "InUseSubnetCannotBeDeleted" : "InUseSubnetCannotBeUpdated";
              fail_msg = skiff_strdup_printf ("Subnet '%s' is in use by a container group: it cannot be %s.",
                                              old_subs[k].name,
                                              goes ? "deleted" : "given another address prefix or lose its delegation");
            }
        }
    }
  if (err || fail_code)
    {
      store_netres_clear (&cur);
      store_netres_free_array (old_subs, n_old);
      if (err)
        return api_reply_skiff_error (c, err);
      int status = !strncmp (fail_code, "InUse", 5) ? 409 : 400;
      return api_reply_error (c, status, fail_code, fail_msg, "properties.subnets");
    }

  /* write: the vnet, then its subnets (those not listed go) */
  const char *guid = json_string_value (json_object_get (json_object_get (cur.body, "properties"), "resourceGuid"));
  char g[40];
  if (guid == NULL)
    {
      skiff_uuid (g);
      guid = g;
    }
  cleanup_free char *etag = new_etag ();
  cleanup_json json_t *stored
      = json_pack ("{s:s,s:s,s:{s:s,s:{s:O}}}", "location", location, "etag", etag, "properties", "resourceGuid", guid,
                   "addressSpace", "addressPrefixes", prefixes);
  if (json_is_object (tags))
    json_object_set (stored, "tags", tags);
  store_netres_t r = { .id = (char *)id,
                       .type = (char *)VNET_TYPE,
                       .sub = (char *)n->sub,
                       .rg = (char *)n->rg,
                       .name = (char *)name,
                       .body = stored };
  int created = 0;
  int rc = store_netres_put (c->ctx->store, &r, &created, &err);
  for (int k = 0; rc == 0 && subs && k < n_old; k++)
    {
      int listed = 0;
      for (i = 0; i < n_new; i++)
        listed |= strcasecmp (json_string_value (json_object_get (json_array_get (new_bodies, i), "name")),
                              old_subs[k].name)
                  == 0;
      int deleted;
      if (!listed)
        rc = store_netres_delete (c->ctx->store, old_subs[k].id, &deleted, &err);
    }
  for (i = 0; rc == 0 && i < n_new; i++)
    {
      json_t *s = json_array_get (new_bodies, i);
      const char *sn = json_string_value (json_object_get (s, "name"));
      cleanup_free char *sid = skiff_strdup_printf ("%s/subnets/%s", id, sn);
      cleanup_free char *setag = new_etag ();
      cleanup_json json_t *sbody
          = json_pack ("{s:s,s:O}", "etag", setag, "properties", json_object_get (s, "properties"));
      store_netres_t sr = { .id = sid,
                            .type = (char *)SUBNET_TYPE,
                            .sub = (char *)n->sub,
                            .rg = (char *)n->rg,
                            .parent_id = (char *)id,
                            .name = (char *)sn,
                            .body = sbody };
      int sc;
      rc = store_netres_put (c->ctx->store, &sr, &sc, &err);
    }
  store_netres_clear (&cur);
  store_netres_free_array (old_subs, n_old);
  if (rc < 0)
    return api_reply_skiff_error (c, err);
  changed (c);
  store_netres_t fresh = { 0 };
  if (store_netres_get (c->ctx->store, id, &fresh, &err) != 0)
    return api_reply_skiff_error (c, err);
  json_t *view = vnet_view (c, &fresh);
  store_netres_clear (&fresh);
  api_reply_json (c, created ? 201 : 200, view);
}

static void
subnet_put (netcall_t *n, const store_netres_t *vnet, const char *id, const char *name)
{
  call_t *c = n->c;
  cleanup_error skiff_error_t err = NULL;
  cleanup_json json_t *body = NULL;
  if (!valid_name (name))
    return api_reply_error (c, 400, "InvalidResourceName",
                            "A subnet name has 1 to 80 letters, digits, '_', '.' and '-'.", NULL);
  if (read_body (c, &body) < 0)
    return;
  cidr_t space[MAX_PREFIXES], mine;
  size_t ns;
  load_prefixes (vnet->body, space, &ns);
  json_t *stored = NULL;
  if (check_subnet (json_object_get (body, "properties"), "properties.addressPrefix", space, ns, &mine, &stored, &err)
      < 0)
    return api_reply_skiff_error (c, err);
  cleanup_json json_t *stored_props = stored;
  store_netres_t *sibs = NULL;
  int nsib = 0;
  if (store_netres_list (c->ctx->store, SUBNET_TYPE, NULL, NULL, vnet->id, &sibs, &nsib, &err) < 0)
    return api_reply_skiff_error (c, err);
  for (int k = 0; k < nsib; k++)
    {
      const char *prefix
          = json_string_value (json_object_get (json_object_get (sibs[k].body, "properties"), "addressPrefix"));
      if (strcasecmp (sibs[k].id, id) == 0)
        {
          int moves
              = strcmp (prefix ? prefix : "", json_string_value (json_object_get (stored_props, "addressPrefix"))) != 0;
          int undelegates
              = delegated_to_aci (json_object_get (sibs[k].body, "properties")) && !delegated_to_aci (stored_props);
          int used = moves || undelegates ? subnet_in_use (c->ctx->store, n->sub, id, 0, &err) : 0;
          if (used < 0)
            {
              store_netres_free_array (sibs, nsib);
              return api_reply_skiff_error (c, err);
            }
          if (used)
            {
              store_netres_free_array (sibs, nsib);
              return api_reply_error (c, 409, "InUseSubnetCannotBeUpdated",
                                      "The subnet is in use by a container group: its address prefix and its "
                                      "delegation to container groups cannot change.",
                                      moves ? "properties.addressPrefix" : "properties.delegations");
            }
          continue;
        }
      cidr_t other;
      skiff_error_t pe = NULL;
      if (net_parse_cidr (prefix, &other.net, &other.prefix, &pe) == 0 && overlaps (other, mine))
        {
          cleanup_free char *m
              = skiff_strdup_printf ("The subnet's address prefix overlaps subnet '%s'.", sibs[k].name);
          store_netres_free_array (sibs, nsib);
          return api_reply_error (c, 400, "NetcfgSubnetRangesOverlap", m, "properties.addressPrefix");
        }
      skiff_error_release (&pe);
    }
  store_netres_free_array (sibs, nsib);
  cleanup_free char *etag = new_etag ();
  cleanup_json json_t *sbody = json_pack ("{s:s,s:O}", "etag", etag, "properties", stored_props);
  store_netres_t sr = { .id = (char *)id,
                        .type = (char *)SUBNET_TYPE,
                        .sub = (char *)n->sub,
                        .rg = (char *)n->rg,
                        .parent_id = vnet->id,
                        .name = (char *)name,
                        .body = sbody };
  int created;
  if (store_netres_put (c->ctx->store, &sr, &created, &err) < 0)
    return api_reply_skiff_error (c, err);
  changed (c);
  api_reply_json (c, created ? 201 : 200, subnet_view (&sr));
}

/* Deletes a resource once nothing refers to it. */
static void
delete_resource (netcall_t *n, const char *id)
{
  cleanup_error skiff_error_t err = NULL;
  int deleted = 0;
  if (store_netres_delete (n->c->ctx->store, id, &deleted, &err) < 0)
    return api_reply_skiff_error (n->c, err);
  if (deleted)
    changed (n->c);
  api_reply_json (n->c, deleted ? 200 : 204, NULL);
}

/* The links of any zone that point at vnet id. */
static int
links_to_vnet (store_t *store, const char *vnet_id, store_netres_t **out, int *n, skiff_error_t *err)
{
  store_netres_t *all = NULL;
  int na = 0;
  if (store_netres_list (store, LINK_TYPE, NULL, NULL, NULL, &all, &na, err) < 0)
    return -1;
  int k = 0;
  for (int i = 0; i < na; i++)
    {
      const char *vid = json_string_value (
          json_object_get (json_object_get (json_object_get (all[i].body, "properties"), "virtualNetwork"), "id"));
      if (vid && strcasecmp (vid, vnet_id) == 0)
        {
          if (k != i)
            {
              all[k] = all[i];
              memset (&all[i], 0, sizeof all[i]);
            }
          k++;
        }
      else
        store_netres_clear (&all[i]);
    }
  *out = all;
  *n = k;
  return 0;
}

/* Replies 409 QuotaExceeded and returns 1 when `type` already has `max` resources in the
 * subscription (parent NULL) or under parent; -1 (replied) on a store error; 0 to go on. */
static int
quota_reached (call_t *c, const char *type, const char *sub, const char *parent, int max, const char *what)
{
  cleanup_error skiff_error_t err = NULL;
  store_netres_t *v = NULL;
  int count = 0;
  if (store_netres_list (c->ctx->store, type, parent ? NULL : sub, NULL, parent, &v, &count, &err) < 0)
    {
      api_reply_skiff_error (c, err);
      return -1;
    }
  store_netres_free_array (v, count);
  if (count < max)
    return 0;
  cleanup_free char *m = skiff_strdup_printf ("At most %d %s.", max, what);
  api_reply_error (c, 409, "QuotaExceeded", m, NULL);
  return 1;
}

/* A PUT with `If-None-Match: *` creates only: when the resource exists, replies 412
 * PreconditionFailed and returns 1 (as ARM does; `az network private-dns ... create` sends it). */
static int
create_only_refused (call_t *c, int exists)
{
  if (!exists || c->req->if_none_match == NULL || strcmp (c->req->if_none_match, "*") != 0)
    return 0;
  api_reply_error (c, 412, "PreconditionFailed",
                   "The resource already exists, and the request asked to create it only (If-None-Match: *).", NULL);
  return 1;
}

static void
handle_vnets (netcall_t *n, int first, int depth)
{
  call_t *c = n->c;
  api_path_t *p = &c->path;
  cleanup_error skiff_error_t err = NULL;
  if (depth == 0)
    {
      if (!api_method_is (c, "GET"))
        return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      return reply_list (n, VNET_TYPE, NULL, vnet_view);
    }
  const char *vname = p->seg[first + 3];
  cleanup_free char *vid = skiff_strdup_printf ("%s/providers/" VNET_TYPE "/%s", n->rg_id, vname);
  cleanup_free char *sid = depth == 3 ? skiff_strdup_printf ("%s/subnets/%s", vid, p->seg[first + 5]) : NULL;
  store_netres_t vnet = { 0 };
  int missing = store_netres_get (c->ctx->store, vid, &vnet, &err);
  if (missing < 0)
    return api_reply_skiff_error (c, err);
  if (depth == 1)
    {
      if (api_method_is (c, "PUT"))
        {
          /* an update keeps the first spelling of the name and id */
          if (create_only_refused (c, !missing)
              || (missing
                  && quota_reached (c, VNET_TYPE, n->sub, NULL,
                                    c->ctx->max_virtual_networks > 0 ? c->ctx->max_virtual_networks : MAX_VNETS,
                                    "virtual networks per subscription")))
            {
              store_netres_clear (&vnet);
              return;
            }
          cleanup_free char *id = skiff_strdup (missing ? vid : vnet.id);
          cleanup_free char *name = skiff_strdup (missing ? vname : vnet.name);
          store_netres_clear (&vnet);
          return vnet_put (n, id, name);
        }
      if (api_method_is (c, "GET"))
        {
          if (missing)
            return not_found (c, VNET_TYPE, vname, n->rg);
          json_t *v = vnet_view (c, &vnet);
          store_netres_clear (&vnet);
          return api_reply_json (c, 200, v);
        }
      if (api_method_is (c, "DELETE"))
        {
          if (missing)
            return api_reply_json (c, 204, NULL);
          store_netres_clear (&vnet);
          int used = subnet_in_use (c->ctx->store, n->sub, vid, 1, &err);
          if (used < 0)
            return api_reply_skiff_error (c, err);
          if (used)
            return api_reply_error (c, 409, "InUseSubnetCannotBeDeleted",
                                    "A subnet of the virtual network is in use by a container group. Delete the "
                                    "container groups first.",
                                    NULL);
          store_netres_t *links = NULL;
          int nl = 0;
          if (links_to_vnet (c->ctx->store, vid, &links, &nl, &err) < 0)
            return api_reply_skiff_error (c, err);
          store_netres_free_array (links, nl);
          if (nl)
            return api_reply_error (c, 409, "InUseVirtualNetworkCannotBeDeleted",
                                    "The virtual network is linked from a private DNS zone. Delete the virtual "
                                    "network link first.",
                                    NULL);
          return delete_resource (n, vid);
        }
      store_netres_clear (&vnet);
      return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
    }
  if (missing)
    return not_found (c, VNET_TYPE, vname, n->rg);
  if (depth == 2)
    {
      store_netres_clear (&vnet);
      if (!api_method_is (c, "GET"))
        return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      cleanup_free char *stored_vid = skiff_strdup (vid);
      return reply_list (n, SUBNET_TYPE, stored_vid, subnet_view_c);
    }
  store_netres_t sub = { 0 };
  int smissing = store_netres_get (c->ctx->store, sid, &sub, &err);
  if (smissing < 0)
    {
      store_netres_clear (&vnet);
      return api_reply_skiff_error (c, err);
    }
  if (api_method_is (c, "PUT"))
    {
      if (!create_only_refused (c, !smissing))
        subnet_put (n, &vnet, smissing ? sid : sub.id, smissing ? p->seg[first + 5] : sub.name);
    }
  else if (api_method_is (c, "GET"))
    {
      if (smissing)
        {
          cleanup_free char *nested = skiff_strdup_printf ("%s/subnets/%s", vnet.name, p->seg[first + 5]);
          not_found (c, VNET_TYPE, nested, n->rg);
        }
      else
        api_reply_json (c, 200, subnet_view (&sub));
    }
  else if (api_method_is (c, "DELETE"))
    {
      int used = smissing ? 0 : subnet_in_use (c->ctx->store, n->sub, sid, 0, &err);
      if (used < 0)
        api_reply_skiff_error (c, err);
      else if (used)
        api_reply_error (c, 409, "InUseSubnetCannotBeDeleted",
                         "The subnet is in use by a container group. Delete the container group first.", NULL);
      else if (smissing)
        api_reply_json (c, 204, NULL);
      else
        delete_resource (n, sid);
    }
  else
    api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  store_netres_clear (&vnet);
  store_netres_clear (&sub);
}

/* ---- private DNS zones and links ---- */

static void
zone_put (netcall_t *n, const char *id, const char *name)
{
  call_t *c = n->c;
  cleanup_error skiff_error_t err = NULL;
  cleanup_json json_t *body = NULL;
  if (!dns_valid_name (name) || strchr (name, '.') == NULL)
    return api_reply_error (c, 400, "InvalidResourceName",
                            "A private DNS zone name is a DNS name of at least two labels, such as contoso.internal.",
                            NULL);
  if (read_body (c, &body) < 0)
    return;
  const char *location = json_string_value (json_object_get (body, "location"));
  if (location == NULL || strcasecmp (location, "global") != 0)
    return api_reply_error (c, 400, "LocationNotAvailableForResourceType",
                            "The location of a private DNS zone must be 'global'.", "location");
  json_t *tags = json_object_get (body, "tags");
  if (tags && !json_is_object (tags) && !json_is_null (tags))
    return api_reply_error (c, 400, "InvalidRequestContent", "The property 'tags' must be an object.", "tags");
  cleanup_free char *etag = new_etag ();
  cleanup_json json_t *stored = json_pack ("{s:s,s:s}", "location", "global", "etag", etag);
  if (json_is_object (tags))
    json_object_set (stored, "tags", tags);
  store_netres_t r = { .id = (char *)id,
                       .type = (char *)ZONE_TYPE,
                       .sub = (char *)n->sub,
                       .rg = (char *)n->rg,
                       .name = (char *)name, /* as spelled; names compare case-insensitively */
                       .body = stored };
  int created;
  if (store_netres_put (c->ctx->store, &r, &created, &err) < 0)
    return api_reply_skiff_error (c, err);
  changed (c);
  api_reply_json (c, created ? 201 : 200, zone_view (c, &r));
}

static void
link_put (netcall_t *n, const store_netres_t *zone, const char *id, const char *name)
{
  call_t *c = n->c;
  cleanup_error skiff_error_t err = NULL;
  cleanup_json json_t *body = NULL;
  if (!valid_name (name))
    return api_reply_error (c, 400, "InvalidResourceName", "A link name has 1 to 80 letters, digits, '_', '.' and '-'.",
                            NULL);
  if (read_body (c, &body) < 0)
    return;
  const char *location = json_string_value (json_object_get (body, "location"));
  if (location && strcasecmp (location, "global") != 0)
    return api_reply_error (c, 400, "LocationNotAvailableForResourceType",
                            "The location of a virtual network link must be 'global'.", "location");
  json_t *props = json_object_get (body, "properties");
  const char *vid = json_string_value (json_object_get (json_object_get (props, "virtualNetwork"), "id"));
  json_t *reg = json_object_get (props, "registrationEnabled");
  if (reg && !json_is_boolean (reg))
    return api_reply_error (c, 400, "InvalidRequestFormat", "registrationEnabled must be true or false.",
                            "properties.registrationEnabled");
  int registration = json_is_true (reg);
  if (vid == NULL)
    return api_reply_error (c, 400, "InvalidRequestFormat", "properties.virtualNetwork.id is required.",
                            "properties.virtualNetwork.id");
  store_netres_t vnet = { 0 };
  int missing = store_netres_get (c->ctx->store, vid, &vnet, &err);
  if (missing < 0)
    return api_reply_skiff_error (c, err);
  int is_vnet = !missing && strcmp (vnet.type, VNET_TYPE) == 0 && strcasecmp (vnet.sub, n->sub) == 0;
  cleanup_free char *vnet_id = is_vnet ? skiff_strdup (vnet.id) : NULL;
  store_netres_clear (&vnet);
  if (!is_vnet)
    {
      cleanup_free char *m = skiff_strdup_printf ("The virtual network '%s' was not found.", vid);
      return api_reply_error (c, 400, "InvalidVirtualNetworkId", m, "properties.virtualNetwork.id");
    }
  store_netres_t *links = NULL;
  int nl = 0;
  if (links_to_vnet (c->ctx->store, vnet_id, &links, &nl, &err) < 0)
    return api_reply_skiff_error (c, err);
  const char *clash = NULL, *clash_code = NULL;
  for (int i = 0; i < nl && !clash; i++)
    {
      if (strcasecmp (links[i].id, id) == 0)
        continue;
      if (links[i].parent_id && strcasecmp (links[i].parent_id, zone->id) == 0)
        {
          clash = "The virtual network is already linked to this zone.";
          clash_code = "VirtualNetworkAlreadyLinked";
        }
      else if (registration
               && json_is_true (json_object_get (json_object_get (links[i].body, "properties"), "registrationEnabled")))
        {
          clash = "The virtual network already has a link with auto-registration to another private DNS zone; a "
                  "virtual network registers its groups in one zone only.";
          clash_code = "RegistrationVirtualNetworkAlreadyLinked";
        }
    }
  if (clash)
    {
      api_reply_error (c, 409, clash_code, clash, "properties.virtualNetwork.id");
      store_netres_free_array (links, nl);
      return;
    }
  store_netres_free_array (links, nl);
  if (registration)
    {
      int others = 0, registering = 0;
      if (zone_link_counts (c->ctx->store, zone->id, id, &others, &registering, &err) < 0)
        return api_reply_skiff_error (c, err);
      if (registering >= MAX_REGISTRATION_LINKS)
        {
          cleanup_free char *m = skiff_strdup_printf ("At most %d virtual network links with registration per zone.",
                                                      MAX_REGISTRATION_LINKS);
          return api_reply_error (c, 409, "QuotaExceeded", m, "properties.registrationEnabled");
        }
    }
  cleanup_free char *etag = new_etag ();
  cleanup_json json_t *stored
      = json_pack ("{s:s,s:s,s:{s:{s:s},s:b}}", "location", "global", "etag", etag, "properties", "virtualNetwork",
                   "id", vnet_id, "registrationEnabled", registration);
  store_netres_t r = { .id = (char *)id,
                       .type = (char *)LINK_TYPE,
                       .sub = (char *)n->sub,
                       .rg = (char *)n->rg,
                       .parent_id = zone->id,
                       .name = (char *)name,
                       .body = stored };
  int created;
  if (store_netres_put (c->ctx->store, &r, &created, &err) < 0)
    return api_reply_skiff_error (c, err);
  changed (c);
  api_reply_json (c, created ? 201 : 200, link_view (&r));
}

static void
handle_zones (netcall_t *n, int first, int depth)
{
  call_t *c = n->c;
  api_path_t *p = &c->path;
  cleanup_error skiff_error_t err = NULL;
  if (depth == 0)
    {
      if (!api_method_is (c, "GET"))
        return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      return reply_list (n, ZONE_TYPE, NULL, zone_view);
    }
  const char *zname = p->seg[first + 3];
  cleanup_free char *zid = skiff_strdup_printf ("%s/providers/" ZONE_TYPE "/%s", n->rg_id, zname);
  cleanup_free char *lid
      = depth == 3 ? skiff_strdup_printf ("%s/virtualNetworkLinks/%s", zid, p->seg[first + 5]) : NULL;
  store_netres_t zone = { 0 };
  int missing = store_netres_get (c->ctx->store, zid, &zone, &err);
  if (missing < 0)
    return api_reply_skiff_error (c, err);
  if (depth == 1)
    {
      int has_links = 0;
      if (!missing)
        {
          store_netres_t *links = NULL;
          if (store_netres_list (c->ctx->store, LINK_TYPE, NULL, NULL, zone.id, &links, &has_links, &err) < 0)
            {
              store_netres_clear (&zone);
              return api_reply_skiff_error (c, err);
            }
          store_netres_free_array (links, has_links);
        }
      if (api_method_is (c, "PUT"))
        {
          if (!create_only_refused (c, !missing)
              && !(missing
                   && quota_reached (c, ZONE_TYPE, n->sub, NULL, MAX_ZONES, "private DNS zones per subscription")))
            zone_put (n, missing ? zid : zone.id, missing ? zname : zone.name);
        }
      else if (api_method_is (c, "GET"))
        {
          if (missing)
            not_found (c, ZONE_TYPE, zname, n->rg);
          else
            api_reply_json (c, 200, zone_view (c, &zone));
        }
      else if (api_method_is (c, "DELETE"))
        {
          if (missing)
            api_reply_json (c, 204, NULL);
          else if (has_links)
            api_reply_error (c, 409, "ZoneHasVirtualNetworkLinks",
                             "The private DNS zone has virtual network links. Delete them first.", NULL);
          else
            delete_resource (n, zone.id);
        }
      else
        api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      store_netres_clear (&zone);
      return;
    }
  if (missing)
    return not_found (c, ZONE_TYPE, zname, n->rg);
  if (depth == 2)
    {
      if (!api_method_is (c, "GET"))
        api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      else
        reply_list (n, LINK_TYPE, zone.id, link_view_c);
      store_netres_clear (&zone);
      return;
    }
  store_netres_t link = { 0 };
  int lmissing = store_netres_get (c->ctx->store, lid, &link, &err);
  if (lmissing < 0)
    {
      store_netres_clear (&zone);
      return api_reply_skiff_error (c, err);
    }
  if (api_method_is (c, "PUT"))
    {
      if (!create_only_refused (c, !lmissing)
          && !(lmissing && quota_reached (c, LINK_TYPE, NULL, zone.id, MAX_LINKS, "virtual network links per zone")))
        link_put (n, &zone, lmissing ? lid : link.id, lmissing ? p->seg[first + 5] : link.name);
    }
  else if (api_method_is (c, "GET"))
    {
      if (lmissing)
        {
          cleanup_free char *nested = skiff_strdup_printf ("%s/virtualNetworkLinks/%s", zone.name, p->seg[first + 5]);
          not_found (c, ZONE_TYPE, nested, n->rg);
        }
      else
        api_reply_json (c, 200, link_view (&link));
    }
  else if (api_method_is (c, "DELETE"))
    {
      if (lmissing)
        api_reply_json (c, 204, NULL);
      else
        delete_resource (n, link.id);
    }
  else
    api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  store_netres_clear (&zone);
  store_netres_clear (&link);
}

/* ---- record sets of a private zone: read-only, the records registration keeps ---- */

/* The record types of Azure's private zones; NULL when segment i is none of them (or "ALL"). */
static const char *
record_kind (call_t *c, int i)
{
  static const char *const kinds[] = { "ALL", "A", "AAAA", "CNAME", "MX", "PTR", "SOA", "SRV", "TXT" };
  if (i >= c->path.n)
    return NULL;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    if (api_seg_is (c, i, kinds[k]))
      return kinds[k];
  return NULL;
}

/* The A records that registration keeps in zone: {lowercase group name: [addresses]} for the
 * groups with an address in a virtual network linked to the zone with registration, in the
 * zone's subscription. */
static int
zone_registered (store_t *store, const store_netres_t *zone, json_t **out, skiff_error_t *err)
{
  cleanup_json json_t *names = json_object ();
  store_netres_t *links = NULL;
  int nl = 0;
  if (store_netres_list (store, LINK_TYPE, NULL, NULL, zone->id, &links, &nl, err) < 0)
    return -1;
  store_group_t *groups = NULL;
  int ng = 0;
  cleanup_json json_t *pool = NULL;
  if (nl > 0
      && (store_group_list (store, zone->sub, NULL, NULL, 0, &groups, &ng, err) < 0
          || store_pool_list (store, STORE_POOL_PRIVATE, &pool, err) < 0))
    {
      store_netres_free_array (links, nl);
      store_group_free_array (groups, ng);
      return -1;
    }
  for (int li = 0; li < nl; li++)
    {
      json_t *lp = json_object_get (links[li].body, "properties");
      const char *vnet_id = json_string_value (json_object_get (json_object_get (lp, "virtualNetwork"), "id"));
      if (vnet_id == NULL || !json_is_true (json_object_get (lp, "registrationEnabled")))
        continue;
      size_t vl = strlen (vnet_id);
      for (int gi = 0; gi < ng; gi++)
        {
          store_group_t *g = &groups[gi];
          const char *sid = json_string_value (json_object_get (
              json_array_get (json_object_get (json_object_get (g->spec, "properties"), "subnetIds"), 0), "id"));
          if (sid == NULL || strcmp (g->desired, "Deleted") == 0 || strncasecmp (sid, vnet_id, vl) != 0
              || strncasecmp (sid + vl, "/subnets/", 9) != 0)
            continue;
          size_t i;
          json_t *e;
          json_array_foreach (pool, i, e)
          {
            if (strcmp (json_string_value (json_object_get (e, "group")), g->id) != 0)
              continue;
            char ip[16];
            uint32_t a = (uint32_t)json_integer_value (json_object_get (e, "addr"));
            snprintf (ip, sizeof ip, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
            cleanup_free char *name = skiff_ascii_lower (skiff_strdup (g->name));
            json_t *list = json_object_get (names, name);
            if (list == NULL)
              json_object_set_new (names, name, list = json_array ());
            json_array_append_new (list, json_pack ("{s:s}", "ipv4Address", ip));
          }
        }
    }
  store_netres_free_array (links, nl);
  store_group_free_array (groups, ng);
  *out = steal_pointer (&names);
  return 0;
}

/* A record set in ARM's shape. */
static json_t *
record_set_view (const store_netres_t *zone, const char *kind, const char *name, json_t *records)
{
  cleanup_free char *id = skiff_strdup_printf ("%s/%s/%s", zone->id, kind, name);
  cleanup_free char *fqdn = strcmp (name, "@") == 0 ? skiff_strdup_printf ("%s.", zone->name)
                                                    : skiff_strdup_printf ("%s.%s.", name, zone->name);
  cleanup_free char *type = skiff_strdup_printf (ZONE_TYPE "/%s", kind);
  cleanup_free char *dump = records ? json_dumps (records, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
  /* the etag changes with the records (FNV-1a over them) */
  uint32_t h = 2166136261u;
  for (const char *q = dump ? dump : zone->id; *q; q++)
    h = (h ^ (uint8_t)*q) * 16777619u;
  char etag[40];
  snprintf (etag, sizeof etag, "%08x-0000-0000-0000-000000000000", h);
  json_t *props = json_pack ("{s:s,s:i,s:b}", "fqdn", fqdn, "ttl", strcmp (kind, "SOA") == 0 ? 3600 : 10,
                             "isAutoRegistered", strcmp (kind, "A") == 0);
  if (strcmp (kind, "SOA") == 0)
    {
      cleanup_free char *host = skiff_strdup_printf ("ns.%s", zone->name);
      cleanup_free char *email = skiff_strdup_printf ("hostmaster.%s", zone->name);
      json_object_set_new (props, "soaRecord",
                           json_pack ("{s:s,s:s,s:i,s:i,s:i,s:i,s:i}", "host", host, "email", email, "serialNumber", 1,
                                      "refreshTime", 3600, "retryTime", 600, "expireTime", 1209600, "minimumTtl", 10));
    }
  else
    json_object_set (props, "aRecords", records);
  return json_pack ("{s:s,s:s,s:s,s:s,s:o}", "id", id, "name", name, "type", type, "etag", etag, "properties", props);
}

/* GET .../privateDnsZones/{zone}/{ALL|A|SOA|...}[/{name}]: the zone's SOA and the A records its
 * registration keeps. skiff takes no record sets of its own: writes get 400. */
static void
handle_record_sets (netcall_t *n, int first, int depth)
{
  call_t *c = n->c;
  cleanup_error skiff_error_t err = NULL;
  const char *kind = record_kind (c, first + 4);
  if (!api_method_is (c, "GET"))
    return (void)api_reply_error (c, 400, "RecordSetsNotSupported",
                                  "skiff keeps the records of registered container groups itself; it does not take "
                                  "record sets of its own.",
                                  NULL);
  if (depth == 3 && strcmp (kind, "ALL") == 0)
    return (void)api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
  const char *zname = c->path.seg[first + 3];
  cleanup_free char *zid = skiff_strdup_printf ("%s/providers/" ZONE_TYPE "/%s", n->rg_id, zname);
  store_netres_t zone = { 0 };
  int missing = store_netres_get (c->ctx->store, zid, &zone, &err);
  if (missing < 0)
    return api_reply_skiff_error (c, err);
  if (missing)
    return not_found (c, ZONE_TYPE, zname, n->rg);
  cleanup_json json_t *names = NULL;
  if (zone_registered (c->ctx->store, &zone, &names, &err) < 0)
    {
      store_netres_clear (&zone);
      return api_reply_skiff_error (c, err);
    }
  int all = strcmp (kind, "ALL") == 0;
  if (depth == 2)
    {
      json_t *value = json_array ();
      if (all || strcmp (kind, "SOA") == 0)
        json_array_append_new (value, record_set_view (&zone, "SOA", "@", NULL));
      const char *name;
      json_t *records;
      if (all || strcmp (kind, "A") == 0)
        json_object_foreach (names, name, records)
            json_array_append_new (value, record_set_view (&zone, "A", name, records));
      api_reply_json (c, 200, json_pack ("{s:o}", "value", value));
    }
  else
    {
      cleanup_free char *name = skiff_ascii_lower (skiff_strdup (c->path.seg[first + 5]));
      json_t *records = json_object_get (names, name);
      if (strcmp (kind, "SOA") == 0 && strcmp (name, "@") == 0)
        api_reply_json (c, 200, record_set_view (&zone, "SOA", "@", NULL));
      else if (strcmp (kind, "A") == 0 && records)
        api_reply_json (c, 200, record_set_view (&zone, "A", name, records));
      else
        {
          cleanup_free char *nested = skiff_strdup_printf ("%s/%s/%s", zone.name, kind, c->path.seg[first + 5]);
          not_found (c, ZONE_TYPE, nested, n->rg);
        }
    }
  store_netres_clear (&zone);
}

void
api_handle_network (call_t *c, int first)
{
  api_path_t *p = &c->path;
  netcall_t n = { .c = c, .sub = c->ctx->subscription_id };
  int at_rg = first == 4 && api_seg_is (c, 2, "resourcegroups");
  int depth = p->n - (first + 3); /* 0: the collection, 1: a resource, 2: its children, 3: a child */
  int vnets = p->n > first + 2 && api_seg_is (c, first + 2, "virtualNetworks");
  int zones = p->n > first + 2 && api_seg_is (c, first + 2, "privateDnsZones");
  int records = zones && depth >= 2 && record_kind (c, first + 4) != NULL;
  if ((!vnets && !zones) || depth < 0 || depth > 3 || (!at_rg && depth != 0)
      || (depth >= 2 && !records && !api_seg_is (c, first + 4, vnets ? "subnets" : "virtualNetworkLinks")))
    return api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
  /* record sets are read through their zone (and its role) */
  const char *type = depth <= 1 || records ? (vnets ? VNET_TYPE : ZONE_TYPE) : (vnets ? SUBNET_TYPE : LINK_TYPE);

  /* authorization first, on the scope the URL names (the resource group may not exist yet) */
  cleanup_free char *scope = at_rg ? skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s", n.sub, p->seg[3])
                                   : skiff_strdup_printf ("/subscriptions/%s", n.sub);
  if (depth == 0)
    {
      /* a list needs no role at its scope: it shows what the caller may read */
      if (!api_touches_scope (&c->who, scope))
        {
          cleanup_free char *action = skiff_strdup_printf ("%s/read", type);
          api_authorize (c, scope, action);
          return;
        }
    }
  else
    {
      /* the resource (depth 1, and 2: a list of its children), or a child (depth 3) */
      cleanup_free char *rscope
          = depth == 3 && !records
                ? skiff_strdup_printf ("%s/providers/%s/%s/%s/%s/%s", scope, NET_PROVIDER,
                                       vnets ? "virtualNetworks" : "privateDnsZones", p->seg[first + 3],
                                       vnets ? "subnets" : "virtualNetworkLinks", p->seg[first + 5])
                : skiff_strdup_printf ("%s/providers/%s/%s/%s", scope, NET_PROVIDER,
                                       vnets ? "virtualNetworks" : "privateDnsZones", p->seg[first + 3]);
      if (authorize (c, rscope, type) < 0)
        return;
    }

  store_rg_t rg = { 0 };
  if (at_rg)
    {
      cleanup_error skiff_error_t err = NULL;
      if (store_rg_get (c->ctx->store, n.sub, p->seg[3], &rg, &err) < 0)
        return api_reply_skiff_error (c, err);
      if (rg.name == NULL)
        {
          cleanup_free char *m = skiff_strdup_printf ("Resource group '%s' could not be found.", p->seg[3]);
          return api_reply_error (c, 404, "ResourceGroupNotFound", m, NULL);
        }
      n.rg = rg.name;
      n.rg_id = skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s", n.sub, rg.name);
    }
  else
    n.rg_id = skiff_strdup_printf ("/subscriptions/%s", n.sub);
  /* writes check the store, then change it (overlaps, links, subnets in use): one at a time,
     whichever loop thread serves them */
  int writes = !api_method_is (c, "GET");
  if (writes)
    api_network_lock ();
  if (records)
    handle_record_sets (&n, first, depth);
  else if (vnets)
    handle_vnets (&n, first, depth);
  else
    handle_zones (&n, first, depth);
  if (writes)
    api_network_unlock ();
  free (n.rg_id);
  store_rg_clear (&rg);
}

int
api_network_rg_count (store_t *store, const char *sub, const char *rg, int64_t *count, skiff_error_t *err)
{
  *count = 0;
  static const char *const types[] = { VNET_TYPE, ZONE_TYPE };
  for (size_t t = 0; t < 2; t++)
    {
      store_netres_t *v = NULL;
      int n = 0;
      if (store_netres_list (store, types[t], sub, rg, NULL, &v, &n, err) < 0)
        return -1;
      store_netres_free_array (v, n);
      *count += n;
    }
  return 0;
}

int
api_subnet_resolve (store_t *store, const char *sub, const char *subnet_id, uint32_t *addr, int *prefix, char **vnet_id,
                    skiff_error_t *err)
{
  if (addr)
    *addr = 0;
  if (prefix)
    *prefix = 0;
  if (vnet_id)
    *vnet_id = NULL;
  /* /subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/V/subnets/N, any case */
  api_path_t p = { 0 };
  skiff_error_t pe = NULL;
  int ok = subnet_id && subnet_id[0] == '/' && strchr (subnet_id, '%') == NULL && strchr (subnet_id, '?') == NULL
           && api_path_parse (subnet_id, strlen (subnet_id), &p, &pe) == 0;
  skiff_error_release (&pe);
  ok = ok && p.n == 10 && strcasecmp (p.seg[0], "subscriptions") == 0 && strcasecmp (p.seg[1], sub) == 0
       && strcasecmp (p.seg[2], "resourceGroups") == 0 && strcasecmp (p.seg[4], "providers") == 0
       && strcasecmp (p.seg[5], NET_PROVIDER) == 0 && strcasecmp (p.seg[6], "virtualNetworks") == 0
       && strcasecmp (p.seg[8], "subnets") == 0 && valid_name (p.seg[7]) && valid_name (p.seg[9]);
  if (!ok)
    {
      api_path_clear (&p);
      return skiff_error_arm_target (err, 400, "InvalidSubnetId", "properties.subnetIds",
                                     "'%s' is not the id of a subnet of a virtual network in this subscription.",
                                     subnet_id ? subnet_id : "");
    }
  cleanup_free char *vid = skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s/providers/" VNET_TYPE "/%s",
                                                p.seg[1], p.seg[3], p.seg[7]);
  cleanup_free char *sid = skiff_strdup_printf ("%s/subnets/%s", vid, p.seg[9]);
  cleanup_free char *vname = skiff_strdup (p.seg[7]);
  cleanup_free char *sname = skiff_strdup (p.seg[9]);
  api_path_clear (&p);

  store_netres_t v = { 0 };
  int missing = store_netres_get (store, vid, &v, err);
  if (missing < 0)
    return -1;
  if (missing || strcmp (v.type, VNET_TYPE) != 0)
    {
      store_netres_clear (&v);
      return skiff_error_arm_target (err, 404, "VirtualNetworkNotFound", "properties.subnetIds",
                                     "The virtual network '%s' of subnet '%s' was not found.", vname, sname);
    }
  store_netres_t r = { 0 };
  missing = store_netres_get (store, sid, &r, err);
  if (missing < 0)
    {
      store_netres_clear (&v);
      return -1;
    }
  if (missing || strcmp (r.type, SUBNET_TYPE) != 0)
    {
      store_netres_clear (&v);
      store_netres_clear (&r);
      return skiff_error_arm_target (err, 404, "SubnetNotFound", "properties.subnetIds",
                                     "The subnet '%s' of virtual network '%s' was not found.", sname, vname);
    }
  json_t *props = json_object_get (r.body, "properties");
  int delegated = delegated_to_aci (props);
  cidr_t cidr = { 0, 0 };
  skiff_error_t ce = NULL;
  int parsed
      = net_parse_cidr (json_string_value (json_object_get (props, "addressPrefix")), &cidr.net, &cidr.prefix, &ce);
  skiff_error_release (&ce);
  int rc = 0;
  if (!delegated)
    rc = skiff_error_arm_target (
        err, 400, "SubnetMissingRequiredDelegation", "properties.subnetIds",
        "Subnet '%s' must be delegated to '" ACI_SERVICE "' before container groups can use it.", r.name);
  else if (parsed < 0) /* stored subnets were validated: only a damaged store gets here */
    rc = skiff_error_arm (err, 500, "InternalServerError", "The stored subnet '%s' has no valid address prefix.", r.id);
  else
    {
      if (addr)
        *addr = cidr.net;
      if (prefix)
        *prefix = cidr.prefix;
      if (vnet_id)
        *vnet_id = skiff_strdup (v.id);
    }
  store_netres_clear (&v);
  store_netres_clear (&r);
  return rc;
}
