/* network.c - the agent's side of group networking.
 *
 * A group's network namespace is plugged into the default network's bridge, or into the bridge
 * of the virtual network its subnet belongs to. Addresses (private and public), published host
 * ports and DNS names are held in the store; everything on the host that derives from them (the
 * virtual networks' bridges, nftables sets and maps, public addresses on a dummy interface, the
 * DNS server's records and listeners, records pushed to another DNS server) is rebuilt from the
 * store by agent_net_sync, so a crash at any point is repaired by the next sync. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "dns/dns.h"
#include "model/model.h"
#include "net/net.h"

#define VNET_TYPE "Microsoft.Network/virtualNetworks"
#define SUBNET_TYPE "Microsoft.Network/virtualNetworks/subnets"
#define ZONE_TYPE "Microsoft.Network/privateDnsZones"
#define LINK_TYPE "Microsoft.Network/privateDnsZones/virtualNetworkLinks"
#define DNS_TTL 10
#define PUSHED_META "dns_pushed"

const char *
agent_net_ifname (const char *group_id, char *buf)
{
  size_t n = 0;
  buf[n++] = 's';
  buf[n++] = 'k';
  for (const char *p = group_id; *p && n < 15; p++)
    if (*p != '-')
      buf[n++] = *p;
  buf[n] = '\0';
  return buf;
}

/* FNV-1a of the lowercased string. */
static uint32_t
hash_lower (const char *s)
{
  uint32_t h = 2166136261u;
  for (; *s; s++)
    {
      h ^= (uint32_t)tolower ((unsigned char)*s);
      h *= 16777619u;
    }
  return h;
}

/* The bridge of a virtual network: the default bridge's name, 'v' and 4 hex digits of its id. */
static const char *
vnet_bridge (agent_t *a, const char *vnet_id, char *buf)
{
  snprintf (buf, 16, "%.10sv%04x", a->cfg.net->bridge, hash_lower (vnet_id) & 0xffff);
  return buf;
}

static int
is_public (json_t *spec)
{
  json_t *ip = json_object_get (json_object_get (spec, "properties"), "ipAddress");
  const char *type = json_string_value (json_object_get (ip, "type"));
  return ip && type && skiff_strcaseeq (type, "Public");
}

/* 1 when the group's dnsConfig names its own nameServers. */
static int
has_own_nameservers (json_t *spec)
{
  return json_array_size (
             json_object_get (json_object_get (json_object_get (spec, "properties"), "dnsConfig"), "nameServers"))
         > 0;
}

static int
u32_has (const agent_u32vec_t *v, uint32_t x)
{
  for (size_t i = 0; i < v->n; i++)
    if (v->v[i] == x)
      return 1;
  return 0;
}

static const char *
first_subnet_id (json_t *spec)
{
  json_t *subnets = json_object_get (json_object_get (spec, "properties"), "subnetIds");
  return json_string_value (json_object_get (json_array_get (subnets, 0), "id"));
}

/* Reads a subnet's prefix and its virtual network's id from the store. 1 when it is missing. */
static int
lookup_subnet (agent_t *a, const char *subnet_id, uint32_t *net, int *prefix, char **vnet_id, skiff_error_t *err)
{
  store_netres_t r = { 0 };
  int rc = store_netres_get (a->store, subnet_id, &r, err);
  if (rc != 0)
    return rc;
  const char *cidr = json_string_value (json_object_get (json_object_get (r.body, "properties"), "addressPrefix"));
  if (net_parse_cidr (cidr, net, prefix, err) < 0 || r.parent_id == NULL)
    {
      store_netres_clear (&r);
      return skiff_error_wrap (err, "subnet %s", subnet_id);
    }
  *vnet_id = steal_pointer (&r.parent_id);
  store_netres_clear (&r);
  return 0;
}

int
agent_net_place (agent_t *a, json_t *spec, agent_net_place_t *p, skiff_error_t *err)
{
  memset (p, 0, sizeof *p);
  const net_config_t *nc = a->cfg.net;
  if (nc == NULL)
    return 0;
  const char *subnet_id = first_subnet_id (spec);
  if (subnet_id == NULL)
    {
      snprintf (p->bridge, sizeof p->bridge, "%s", nc->bridge);
      p->subnet = nc->subnet;
      p->prefix = nc->prefix;
      p->gateway = nc->gateway;
      return 0;
    }
  int rc = lookup_subnet (a, subnet_id, &p->subnet, &p->prefix, &p->vnet_id, err);
  if (rc < 0)
    return -1;
  if (rc == 1)
    return skiff_error_arm (err, 404, "SubnetNotFound", "The subnet '%s' of the container group does not exist.",
                            subnet_id);
  p->gateway = p->subnet + 1;
  vnet_bridge (a, p->vnet_id, p->bridge);
  return 0;
}

void
agent_net_place_clear (agent_net_place_t *p)
{
  free (p->vnet_id);
  p->vnet_id = NULL;
}

/* The bridge of a virtual network with the gateways of its subnets. */
static int
ensure_vnet_bridge (agent_t *a, const char *vnet_id, skiff_error_t *err)
{
  store_netres_t *subs = NULL;
  int n = 0;
  if (store_netres_list (a->store, SUBNET_TYPE, NULL, NULL, vnet_id, &subs, &n, err) < 0)
    return -1;
  cleanup_free uint32_t *gws = calloc ((size_t)n + 1, sizeof (uint32_t));
  cleanup_free int *prefixes = calloc ((size_t)n + 1, sizeof (int));
  size_t k = 0;
  for (int i = 0; i < n; i++)
    {
      const char *cidr
          = json_string_value (json_object_get (json_object_get (subs[i].body, "properties"), "addressPrefix"));
      uint32_t net;
      int prefix;
      skiff_error_t e = NULL;
      if (net_parse_cidr (cidr, &net, &prefix, &e) < 0)
        {
          skiff_error_release (&e);
          continue;
        }
      gws[k] = net + 1;
      prefixes[k++] = prefix;
    }
  store_netres_free_array (subs, n);
  char name[16];
  net_bridge_t b = { vnet_bridge (a, vnet_id, name), gws, prefixes, k };
  return net_bridge_ensure (&b, err);
}

int
agent_net_attach (agent_t *a, store_group_t *g, const char *ns_dir, agent_net_place_t *p, uint32_t *addr,
                  skiff_error_t *err)
{
  *addr = 0;
  const net_config_t *nc = a->cfg.net;
  if (nc == NULL)
    return 0;
  if (agent_net_place (a, g->spec, p, err) < 0)
    return -1;
  uint32_t size = (uint32_t)1 << (32 - p->prefix);
  /* the first address is the network, then the gateway; the last is the broadcast */
  if (store_pool_allocate (a->store, STORE_POOL_PRIVATE, g->id, p->gateway + 1, p->subnet + size - 2, addr, err) < 0)
    return -1;
  int64_t t = skiff_monotonic_ns ();
  if (p->vnet_id)
    {
      pthread_mutex_lock (&a->net_lock);
      int rc = ensure_vnet_bridge (a, p->vnet_id, err);
      pthread_mutex_unlock (&a->net_lock);
      if (rc < 0)
        return skiff_error_wrap (err, "set up the virtual network's bridge");
    }
  net_config_t where
      = { .bridge = p->bridge, .subnet = p->subnet, .prefix = p->prefix, .gateway = p->gateway, .table = nc->table };
  char ifname[16];
  cleanup_free char *netns = skiff_strdup_printf ("%s/net", ns_dir);
  if (net_group_attach (&where, netns, agent_net_ifname (g->id, ifname), *addr, err) < 0)
    return skiff_error_wrap (err, "connect the group's network");
  /* published ports, virtual network rules, DNS records and who is left out of DNS forwarding
     follow the new address */
  json_t *ip = json_object_get (json_object_get (g->spec, "properties"), "ipAddress");
  pthread_mutex_lock (&a->net_lock);
  int forwarding_changes = a->cfg.dns && dns_server_n_upstreams (a->cfg.dns) > 0
                           && has_own_nameservers (g->spec) != u32_has (&a->fwd_except, *addr);
  pthread_mutex_unlock (&a->net_lock);
  if (p->vnet_id || is_public (g->spec) || json_object_get (ip, "dnsNameLabel") || forwarding_changes)
    agent_net_sync (a);
  log_debug ("group %s: network attach %.2f ms", g->id, (double)(skiff_monotonic_ns () - t) / 1e6);
  return 0;
}

void
agent_net_detach (agent_t *a, const char *group_id)
{
  if (a->cfg.net == NULL)
    return;
  char ifname[16];
  skiff_error_t e = NULL;
  if (net_group_detach (agent_net_ifname (group_id, ifname), &e) < 0)
    {
      log_warn ("group %s: remove its network interface: %s", group_id, e->msg);
      skiff_error_release (&e);
    }
}

void
agent_net_release (agent_t *a, const char *group_id)
{
  skiff_error_t e = NULL;
  if (store_pool_release (a->store, STORE_POOL_PRIVATE, group_id, &e) < 0
      || store_pool_release (a->store, STORE_POOL_PUBLIC, group_id, &e) < 0
      || store_host_ports_release (a->store, group_id, &e) < 0 || store_dns_name_release (a->store, group_id, &e) < 0)
    {
      log_warn ("group %s: release its addresses: %s", group_id, e->msg);
      skiff_error_release (&e);
    }
  agent_net_sync (a);
}

/* ---- claims at PUT time ---- */

/* 16 characters of base32 (lowercase) of SHA-256 over the scope key and the label. */
static void
label_hash (const char *key, const char *label, char out[17])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  cleanup_free char *text = skiff_strdup_printf ("%s\n%s", key, label);
  EVP_Digest (text, strlen (text), md, &len, EVP_sha256 (), NULL);
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  for (int i = 0; i < 16; i++)
    out[i] = alphabet[md[i] & 31];
  out[16] = '\0';
}

char *
agent_net_fqdn (agent_t *a, const char *tenant, const store_group_t *g)
{
  json_t *ip = json_object_get (json_object_get (g->spec, "properties"), "ipAddress");
  const char *label = json_string_value (json_object_get (ip, "dnsNameLabel"));
  if (label == NULL || a->cfg.dns_zone == NULL)
    return NULL;
  const char *scope = json_string_value (json_object_get (ip, "autoGeneratedDomainNameLabelScope"));
  cleanup_free char *key = NULL;
  if (scope == NULL || skiff_strcaseeq (scope, "Unsecure"))
    key = NULL;
  else if (skiff_strcaseeq (scope, "TenantReuse"))
    key = skiff_strdup_printf ("tenant/%s", tenant ? tenant : "");
  else if (skiff_strcaseeq (scope, "SubscriptionReuse"))
    key = skiff_strdup_printf ("subscription/%s", g->sub);
  else if (skiff_strcaseeq (scope, "ResourceGroupReuse"))
    key = skiff_strdup_printf ("subscription/%s/resourcegroup/%s", g->sub, g->rg);
  else /* Noreuse: a new name for every new group */
    key = skiff_strdup_printf ("group/%s", g->id);
  /* "West Europe" and "westeurope" are one location, and the name must stay a DNS name */
  cleanup_free char *loc = skiff_ascii_lower (skiff_strdup (g->location ? g->location : "local"));
  size_t w = 0;
  for (size_t r = 0; loc[r]; r++)
    if ((loc[r] >= 'a' && loc[r] <= 'z') || (loc[r] >= '0' && loc[r] <= '9') || loc[r] == '-')
      loc[w++] = loc[r];
  loc[w] = '\0';
  if (w == 0)
    {
      free (loc);
      loc = skiff_strdup ("local");
    }
  char *fqdn;
  if (key)
    {
      cleanup_free char *lkey = skiff_ascii_lower (skiff_strdup (key));
      char h[17];
      label_hash (lkey, label, h);
      /* label, '-' and the hash must stay one DNS label (at most 63 characters) */
      fqdn = skiff_strdup_printf ("%.46s-%s.%s.%s", label, h, loc, a->cfg.dns_zone);
    }
  else
    fqdn = skiff_strdup_printf ("%s.%s.%s", label, loc, a->cfg.dns_zone);
  return skiff_ascii_lower (fqdn);
}

/* Fails with EADDRINUSE when a process on the host already uses port/proto on any address. */
static int
probe_host_port (int udp, int port)
{
  cleanup_close int fd = socket (AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  sa.sin_addr.s_addr = htonl (INADDR_ANY);
  return bind (fd, (struct sockaddr *)&sa, sizeof sa);
}

static int
claim (agent_t *a, const char *tenant, const store_group_t *g, int64_t held_before, skiff_error_t *err)
{
  json_t *props = json_object_get (g->spec, "properties");
  json_t *ip = json_object_get (props, "ipAddress");
  int public = is_public (g->spec);

  if (a->cfg.net == NULL && (ip || json_object_get (props, "subnetIds")))
    return skiff_error_arm_target (err, 400, "NetworkingNotEnabled", "properties.ipAddress",
                                   "This host runs container groups without networking (skiffd --network none): "
                                   "'ipAddress' and 'subnetIds' are not available.");
  if (public && first_subnet_id (g->spec))
    return skiff_error_arm_target (err, 400, "PublicIpAddressNotSupportedInVirtualNetwork", "properties.ipAddress.type",
                                   "A container group in a virtual network (subnetIds) cannot have a public IP "
                                   "address. Use the type 'Private'.");
  if (public && a->cfg.public_first)
    {
      uint32_t addr;
      if (store_pool_allocate (a->store, STORE_POOL_PUBLIC, g->id, a->cfg.public_first, a->cfg.public_last, &addr, err)
          < 0)
        return -1;
    }
  else if (store_pool_release (a->store, STORE_POOL_PUBLIC, g->id, err) < 0)
    return -1;

  /* publishing on the host's own addresses: the ports are the host's, one group each */
  size_t n = public && !a->cfg.public_first ? json_array_size (json_object_get (ip, "ports")) : 0;
  const char *protos[MODEL_MAX_PORTS_PER_IP + 1];
  int ports[MODEL_MAX_PORTS_PER_IP + 1];
  json_t *held = NULL;
  if (n > MODEL_MAX_PORTS_PER_IP)
    n = MODEL_MAX_PORTS_PER_IP;
  if (n && store_host_ports_list (a->store, &held, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      json_t *pp = json_array_get (json_object_get (ip, "ports"), i);
      const char *proto = json_string_value (json_object_get (pp, "protocol"));
      protos[i] = proto && skiff_strcaseeq (proto, "UDP") ? "UDP" : "TCP";
      ports[i] = (int)json_integer_value (json_object_get (pp, "port"));
      int ours = 0;
      size_t k;
      json_t *h;
      json_array_foreach (held, k, h) ours
          |= json_integer_value (json_object_get (h, "port")) == ports[i]
             && strcmp (json_string_value (json_object_get (h, "protocol")), protos[i]) == 0
             && strcmp (json_string_value (json_object_get (h, "group")), g->id) == 0;
      if (!ours && probe_host_port (protos[i][0] == 'U', ports[i]) < 0 && errno == EADDRINUSE)
        {
          json_decref (held);
          return skiff_error_arm_target (err, 409, "PortAlreadyInUse", "properties.ipAddress.ports",
                                         "Port %d/%s is already in use by a process on this host.", ports[i],
                                         protos[i]);
        }
    }
  json_decref (held);
  if (store_host_ports_claim (a->store, g->id, protos, ports, n, err) < 0)
    return -1;

  cleanup_free char *fqdn = agent_net_fqdn (a, tenant, g);
  if (fqdn && strlen (fqdn) > DNS_MAX_NAME)
    return skiff_error_arm_target (err, 400, "InvalidDnsNameLabel", "properties.ipAddress.dnsNameLabel",
                                   "The DNS name '%s' is longer than %d characters.", fqdn, DNS_MAX_NAME);
  if ((fqdn ? store_dns_name_claim (a->store, g->id, fqdn, err) : store_dns_name_release (a->store, g->id, err)) < 0)
    return -1;
  if (held_before > 0)
    agent_net_sync (a);
  return 0;
}

int
agent_net_claim (agent_t *a, const char *tenant, const store_group_t *g, skiff_error_t *err)
{
  /* what the group held before: when it gives something back, the host follows at once */
  int64_t held_before = 0;
  if (store_group_claims (a->store, g->id, &held_before, err) < 0)
    return -1;
  if (claim (a, tenant, g, held_before, err) == 0)
    return 0;
  if (held_before == 0)
    {
      /* nothing half done: a group that held nothing keeps nothing */
      store_pool_release (a->store, STORE_POOL_PUBLIC, g->id, NULL);
      store_host_ports_release (a->store, g->id, NULL);
      store_dns_name_release (a->store, g->id, NULL);
    }
  return -1;
}

void
agent_net_view (agent_t *a, const store_group_t *g, json_t *ip_view)
{
  if (a == NULL || ip_view == NULL)
    return;
  uint32_t addr = 0;
  char buf[16];
  if (is_public (g->spec))
    {
      if (a->cfg.public_first)
        store_pool_get (a->store, STORE_POOL_PUBLIC, g->id, &addr, NULL);
      else
        addr = a->cfg.host_address;
    }
  else
    store_pool_get (a->store, STORE_POOL_PRIVATE, g->id, &addr, NULL);
  if (addr)
    json_object_set_new (ip_view, "ip", json_string (net_format_ip (addr, buf)));
  json_t *names = NULL;
  if (json_object_get (ip_view, "dnsNameLabel") && store_dns_name_list (a->store, &names, NULL) == 0)
    {
      size_t i;
      json_t *n;
      json_array_foreach (names, i, n) if (strcmp (json_string_value (json_object_get (n, "group")), g->id) == 0)
          json_object_set (ip_view, "fqdn", json_object_get (n, "fqdn"));
      json_decref (names);
    }
}

/* ---- resolv.conf ---- */

/* 1 when s is made only of characters from allowed (and is not empty). */
static int
only (const char *s, const char *allowed)
{
  return s && *s && strspn (s, allowed) == strlen (s);
}

char *
agent_net_resolv_conf (agent_t *a, json_t *spec, const agent_net_place_t *p)
{
  json_t *dns = json_object_get (json_object_get (spec, "properties"), "dnsConfig");
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  if (f == NULL)
    abort ();
  fprintf (f, "# written by skiff\n");
  char gw[16];
  if (a->cfg.dns && p->gateway)
    fprintf (f, "nameserver %s\n", net_format_ip (p->gateway, gw));
  json_t *servers = json_object_get (dns, "nameServers");
  size_t i;
  json_t *s;
  int n = 0;
  json_array_foreach (servers, i, s) if (only (json_string_value (s), "0123456789abcdefABCDEF.:") && n++ < 3)
      fprintf (f, "nameserver %s\n", json_string_value (s));
  if (n == 0 && !(a->cfg.dns && p->gateway))
    {
      /* without skiff's DNS: the host's own resolvers, unless they live on its loopback
         (unreachable from a group). With it, skiff forwards what it does not answer (or, with
         --dns-forward none, containers resolve skiff's names only) */
      cleanup_free char *host = NULL;
      size_t hl = 0;
      if (skiff_read_file ("/etc/resolv.conf", 65536, &host, &hl, NULL) == 0)
        for (char *line = strtok (host, "\n"); line; line = strtok (NULL, "\n"))
          {
            char addr[64];
            if (sscanf (line, "nameserver %63s", addr) == 1 && strncmp (addr, "127.", 4) != 0
                && strcmp (addr, "::1") != 0 && only (addr, "0123456789abcdefABCDEF.:") && n++ < 3)
              fprintf (f, "nameserver %s\n", addr);
          }
    }
  const char *search = json_string_value (json_object_get (dns, "searchDomains"));
  if (only (search, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.- "))
    fprintf (f, "search %s\n", search);
  const char *options = json_string_value (json_object_get (dns, "options"));
  if (only (options, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_ "))
    fprintf (f, "options %s\n", options);
  fclose (f);
  return text;
}

/* ---- bringing the host in step ---- */

static void
u32_push (agent_u32vec_t *v, uint32_t x)
{
  for (size_t i = 0; i < v->n; i++)
    if (v->v[i] == x)
      return;
  if (v->n == v->cap)
    {
      v->cap = v->cap ? v->cap * 2 : 16;
      v->v = realloc (v->v, v->cap * sizeof (uint32_t));
      if (v->v == NULL)
        abort ();
    }
  v->v[v->n++] = x;
}

/* The address of group id in a pool listing, 0 when none. */
static uint32_t
addr_of (json_t *pool, const char *id)
{
  size_t i;
  json_t *e;
  json_array_foreach (pool, i, e) if (strcmp (json_string_value (json_object_get (e, "group")), id)
                                      == 0) return (uint32_t)json_integer_value (json_object_get (e, "addr"));
  return 0;
}

/* A DNS zone being assembled: its name and client networks. */
typedef struct
{
  char *name;
  dns_net_t clients[DNS_MAX_CLIENT_NETS];
  size_t n_clients;
  int open; /* anyone may ask */
} zone_acc_t;

typedef struct
{
  zone_acc_t *z;
  size_t nz, capz;
  dns_record_t *r;
  size_t nr, capr;
} dns_acc_t;

static zone_acc_t *
zone_get (dns_acc_t *d, const char *name)
{
  for (size_t i = 0; i < d->nz; i++)
    if (strcasecmp (d->z[i].name, name) == 0)
      return &d->z[i];
  if (d->nz == d->capz)
    {
      d->capz = d->capz ? d->capz * 2 : 8;
      d->z = realloc (d->z, d->capz * sizeof (zone_acc_t));
      if (d->z == NULL)
        abort ();
    }
  zone_acc_t *z = &d->z[d->nz++];
  memset (z, 0, sizeof *z);
  z->name = skiff_ascii_lower (skiff_strdup (name));
  return z;
}

static void
zone_add_client (zone_acc_t *z, uint32_t net, int prefix)
{
  for (size_t i = 0; i < z->n_clients; i++)
    if (z->clients[i].addr == net && z->clients[i].prefix == prefix)
      return;
  if (z->n_clients < DNS_MAX_CLIENT_NETS)
    z->clients[z->n_clients++] = (dns_net_t){ net, prefix };
}

static void
record_add (dns_acc_t *d, const char *name, dns_type_t type, const char *value)
{
  /* one bad name must not cost every other record (the server refuses a set with one) */
  if (!dns_valid_name (name))
    return;
  if (d->nr == d->capr)
    {
      d->capr = d->capr ? d->capr * 2 : 32;
      d->r = realloc (d->r, d->capr * sizeof (dns_record_t));
      if (d->r == NULL)
        abort ();
    }
  d->r[d->nr++] = (dns_record_t){ skiff_ascii_lower (skiff_strdup (name)), type, skiff_strdup (value) };
}

static void
dns_acc_free (dns_acc_t *d)
{
  for (size_t i = 0; i < d->nz; i++)
    free (d->z[i].name);
  for (size_t i = 0; i < d->nr; i++)
    {
      free ((char *)d->r[i].name);
      free ((char *)d->r[i].value);
    }
  free (d->z);
  free (d->r);
}

/* The reverse zone covering net/prefix, at an octet boundary ("1.10.in-addr.arpa"). */
static char *
reverse_zone (uint32_t net, int prefix)
{
  int octets = prefix / 8;
  if (octets < 1)
    octets = 1;
  if (octets > 3)
    octets = 3;
  char buf[64] = "";
  size_t n = 0;
  for (int i = octets - 1; i >= 0; i--)
    n += (size_t)snprintf (buf + n, sizeof buf - n, "%u.", (net >> (24 - 8 * i)) & 0xff);
  snprintf (buf + n, sizeof buf - n, "in-addr.arpa");
  return skiff_strdup (buf);
}

/* The address prefixes of a virtual network. */
static size_t
vnet_prefixes (json_t *vnet_body, uint32_t *nets, int *prefixes, size_t max)
{
  json_t *list = json_object_get (json_object_get (json_object_get (vnet_body, "properties"), "addressSpace"),
                                  "addressPrefixes");
  size_t n = 0, i;
  json_t *e;
  json_array_foreach (list, i, e)
  {
    skiff_error_t err = NULL;
    if (n < max && net_parse_cidr (json_string_value (e), &nets[n], &prefixes[n], &err) == 0)
      n++;
    skiff_error_release (&err);
  }
  return n;
}

/* What the sync reads from the store. */
typedef struct
{
  store_group_t *groups;
  int n_groups;
  json_t *private_pool, *public_pool, *names, *host_ports;
  store_netres_t *vnets;
  int n_vnets;
  store_netres_t *zones;
  int n_zones;
} snapshot_t;

static void
snapshot_clear (snapshot_t *s)
{
  store_group_free_array (s->groups, s->n_groups);
  json_decref (s->private_pool);
  json_decref (s->public_pool);
  json_decref (s->names);
  json_decref (s->host_ports);
  store_netres_free_array (s->vnets, s->n_vnets);
  store_netres_free_array (s->zones, s->n_zones);
  memset (s, 0, sizeof *s);
}

static int
snapshot_take (agent_t *a, snapshot_t *s, skiff_error_t *err)
{
  memset (s, 0, sizeof *s);
  if (store_group_list (a->store, NULL, NULL, NULL, 0, &s->groups, &s->n_groups, err) < 0
      || store_pool_list (a->store, STORE_POOL_PRIVATE, &s->private_pool, err) < 0
      || store_pool_list (a->store, STORE_POOL_PUBLIC, &s->public_pool, err) < 0
      || store_dns_name_list (a->store, &s->names, err) < 0 || store_host_ports_list (a->store, &s->host_ports, err) < 0
      || store_netres_list (a->store, VNET_TYPE, NULL, NULL, NULL, &s->vnets, &s->n_vnets, err) < 0
      || store_netres_list (a->store, ZONE_TYPE, NULL, NULL, NULL, &s->zones, &s->n_zones, err) < 0)
    {
      snapshot_clear (s);
      return -1;
    }
  return 0;
}

static store_group_t *
group_of (snapshot_t *s, const char *id)
{
  for (int i = 0; i < s->n_groups; i++)
    if (strcmp (s->groups[i].id, id) == 0)
      return &s->groups[i];
  return NULL;
}

/* Bridges, nftables sets and maps, and the dummy interface of public addresses. */
static int
sync_host (agent_t *a, snapshot_t *s, agent_u32vec_t *gateways, skiff_error_t *err)
{
  const net_config_t *nc = a->cfg.net;
  size_t nb = 1 + (size_t)s->n_vnets;
  cleanup_free const char **bridges = calloc (nb, sizeof (char *));
  cleanup_free char (*names)[16] = calloc (nb, 16);
  if (bridges == NULL || names == NULL)
    abort ();
  bridges[0] = nc->bridge;
  u32_push (gateways, nc->gateway);
  for (int i = 0; i < s->n_vnets; i++)
    {
      bridges[1 + i] = vnet_bridge (a, s->vnets[i].id, names[1 + i]);
      if (ensure_vnet_bridge (a, s->vnets[i].id, err) < 0)
        return -1;
      store_netres_t *subs = NULL;
      int n = 0;
      if (store_netres_list (a->store, SUBNET_TYPE, NULL, NULL, s->vnets[i].id, &subs, &n, err) < 0)
        return -1;
      for (int k = 0; k < n; k++)
        {
          uint32_t net;
          int prefix;
          skiff_error_t e = NULL;
          if (net_parse_cidr (
                  json_string_value (json_object_get (json_object_get (subs[k].body, "properties"), "addressPrefix")),
                  &net, &prefix, &e)
              == 0)
            u32_push (gateways, net + 1);
          skiff_error_release (&e);
        }
      store_netres_free_array (subs, n);
    }
  /* bridges of virtual networks that are gone */
  char prefix[16];
  snprintf (prefix, sizeof prefix, "%.10sv", nc->bridge);
  cleanup_strv char **ifs = NULL;
  if (net_list_ifaces (prefix, &ifs, err) < 0)
    return -1;
  for (char **p = ifs; p && *p; p++)
    {
      int wanted = strlen (*p) != strlen (prefix) + 4;
      for (size_t i = 1; i < nb && !wanted; i++)
        wanted = strcmp (*p, bridges[i]) == 0;
      skiff_error_t e = NULL;
      if (!wanted && net_bridge_remove (*p, &e) < 0)
        {
          log_warn ("remove bridge %s: %s", *p, e->msg);
          skiff_error_release (&e);
        }
    }

  /* published ports */
  net_portmap_t maps[1024];
  size_t nm = 0;
  agent_u32vec_t pub = { 0 }, local = { 0 };
  size_t i;
  json_t *e;
  json_array_foreach (s->public_pool, i, e)
  {
    uint32_t paddr = (uint32_t)json_integer_value (json_object_get (e, "addr"));
    const char *id = json_string_value (json_object_get (e, "group"));
    u32_push (&pub, paddr);
    if ((paddr >> 24) != 127)
      u32_push (&local, paddr);
    store_group_t *g = group_of (s, id);
    uint32_t gaddr = addr_of (s->private_pool, id);
    if (g == NULL || gaddr == 0)
      continue;
    json_t *ports = json_object_get (json_object_get (json_object_get (g->spec, "properties"), "ipAddress"), "ports");
    size_t k;
    json_t *pp;
    json_array_foreach (ports, k, pp)
    {
      const char *proto = json_string_value (json_object_get (pp, "protocol"));
      if (nm < sizeof maps / sizeof maps[0])
        maps[nm++] = (net_portmap_t){ paddr, proto && skiff_strcaseeq (proto, "UDP"),
                                      (int)json_integer_value (json_object_get (pp, "port")), gaddr };
    }
  }
  json_array_foreach (s->host_ports, i, e)
  {
    uint32_t gaddr = addr_of (s->private_pool, json_string_value (json_object_get (e, "group")));
    if (gaddr && nm < sizeof maps / sizeof maps[0])
      maps[nm++] = (net_portmap_t){ 0, strcmp (json_string_value (json_object_get (e, "protocol")), "UDP") == 0,
                                    (int)json_integer_value (json_object_get (e, "port")), gaddr };
  }
  net_rules_t r = { .bridges = bridges,
                    .n_bridges = nb,
                    .gateways = gateways->v,
                    .n_gateways = gateways->n,
                    .public_addrs = pub.v,
                    .n_public = pub.n,
                    .maps = maps,
                    .n_maps = nm };
  int rc = net_rules_sync (nc->table, &r, err);
  if (rc == 0)
    {
      char dummy[16];
      snprintf (dummy, sizeof dummy, "%.10spub", nc->bridge);
      rc = net_local_addrs_sync (dummy, local.v, local.n, err);
    }
  free (pub.v);
  free (local.v);
  return rc;
}

/* The DNS server's zones and records: the name labels' zone, and each private DNS zone with the
 * groups of the virtual networks linked to it with registration. */
static void
build_dns (agent_t *a, snapshot_t *s, dns_acc_t *d)
{
  char buf[64];
  if (a->cfg.dns_zone)
    {
      zone_acc_t *z = zone_get (d, a->cfg.dns_zone);
      z->open = 1;
      size_t i;
      json_t *e;
      json_array_foreach (s->names, i, e)
      {
        const char *id = json_string_value (json_object_get (e, "group"));
        store_group_t *g = group_of (s, id);
        uint32_t addr = a->cfg.public_first ? addr_of (s->public_pool, id) : a->cfg.host_address;
        if (g && addr && strcmp (g->desired, "Deleted") != 0)
          record_add (d, json_string_value (json_object_get (e, "fqdn")), DNS_TYPE_A, net_format_ip (addr, buf));
      }
    }
  for (int zi = 0; zi < s->n_zones; zi++)
    {
      store_netres_t *links = NULL;
      int nl = 0;
      if (store_netres_list (a->store, LINK_TYPE, NULL, NULL, s->zones[zi].id, &links, &nl, NULL) < 0)
        continue;
      zone_acc_t *z = zone_get (d, s->zones[zi].name);
      for (int li = 0; li < nl; li++)
        {
          json_t *lp = json_object_get (links[li].body, "properties");
          const char *vnet_id = json_string_value (json_object_get (json_object_get (lp, "virtualNetwork"), "id"));
          int registration = json_is_true (json_object_get (lp, "registrationEnabled"));
          store_netres_t *vnet = NULL;
          for (int v = 0; v < s->n_vnets && vnet_id; v++)
            if (strcasecmp (s->vnets[v].id, vnet_id) == 0)
              vnet = &s->vnets[v];
          if (vnet == NULL)
            continue;
          uint32_t nets[16];
          int prefixes[16];
          size_t np = vnet_prefixes (vnet->body, nets, prefixes, 16);
          for (size_t k = 0; k < np; k++)
            zone_add_client (z, nets[k], prefixes[k]);
          if (!registration)
            continue;
          for (size_t k = 0; k < np; k++)
            {
              cleanup_free char *rz = reverse_zone (nets[k], prefixes[k]);
              zone_acc_t *r = zone_get (d, rz);
              for (size_t m = 0; m < np; m++)
                zone_add_client (r, nets[m], prefixes[m]);
            }
          /* the groups of this virtual network that have an address */
          for (int gi = 0; gi < s->n_groups; gi++)
            {
              store_group_t *g = &s->groups[gi];
              const char *sid = first_subnet_id (g->spec);
              uint32_t addr = addr_of (s->private_pool, g->id);
              if (sid == NULL || addr == 0 || strcmp (g->desired, "Deleted") == 0)
                continue;
              /* the subnet belongs to this vnet when its id starts with the vnet's id + "/subnets/" */
              size_t vl = strlen (vnet->id);
              if (strncasecmp (sid, vnet->id, vl) != 0 || strncasecmp (sid + vl, "/subnets/", 9) != 0)
                continue;
              cleanup_free char *name = skiff_strdup_printf ("%s.%s", g->name, z->name);
              if (!dns_valid_name (name))
                continue;
              record_add (d, name, DNS_TYPE_A, net_format_ip (addr, buf));
              record_add (d, dns_reverse_name (addr, buf), DNS_TYPE_PTR, name);
            }
        }
      store_netres_free_array (links, nl);
    }
}

/* Who gets their other queries forwarded: the containers of the default network and of every
 * virtual network, except groups with nameServers of their own (they get REFUSED and ask their
 * own servers next, as their resolv.conf lists them). */
static void
sync_forwarding (agent_t *a, snapshot_t *s)
{
  if (dns_server_n_upstreams (a->cfg.dns) == 0)
    return;
  size_t cap = 1 + 16 * (size_t)s->n_vnets;
  cleanup_free dns_net_t *clients = calloc (cap, sizeof (dns_net_t));
  cleanup_free dns_net_t *except = calloc ((size_t)s->n_groups + 1, sizeof (dns_net_t));
  if (clients == NULL || except == NULL)
    abort ();
  size_t nc = 0, nx = 0;
  clients[nc++] = (dns_net_t){ a->cfg.net->subnet, a->cfg.net->prefix };
  for (int i = 0; i < s->n_vnets; i++)
    {
      uint32_t nets[16];
      int prefixes[16];
      size_t np = vnet_prefixes (s->vnets[i].body, nets, prefixes, 16);
      for (size_t k = 0; k < np; k++)
        clients[nc++] = (dns_net_t){ nets[k], prefixes[k] };
    }
  for (int i = 0; i < s->n_groups; i++)
    {
      uint32_t addr = addr_of (s->private_pool, s->groups[i].id);
      if (addr && has_own_nameservers (s->groups[i].spec))
        except[nx++] = (dns_net_t){ addr, 32 };
    }
  skiff_error_t e = NULL;
  if (dns_server_set_forward_clients (a->cfg.dns, clients, nc, except, nx, &e) < 0)
    {
      log_warn ("DNS forwarding: %s", e->msg);
      skiff_error_release (&e);
      return;
    }
  a->fwd_except.n = 0;
  for (size_t i = 0; i < nx; i++)
    u32_push (&a->fwd_except, except[i].addr);
}

static void
sync_dns (agent_t *a, snapshot_t *s, agent_u32vec_t *gateways)
{
  sync_forwarding (a, s);
  dns_acc_t d = { 0 };
  build_dns (a, s, &d);
  cleanup_free dns_zone_t *zones = calloc (d.nz + 1, sizeof (dns_zone_t));
  if (zones == NULL)
    abort ();
  for (size_t i = 0; i < d.nz; i++)
    zones[i]
        = (dns_zone_t){ d.z[i].name, DNS_TTL, d.z[i].open ? NULL : d.z[i].clients, d.z[i].open ? 0 : d.z[i].n_clients };
  skiff_error_t e = NULL;
  if (dns_server_set (a->cfg.dns, zones, d.nz, d.r, d.nr, &e) < 0)
    {
      log_warn ("DNS records: %s", e->msg);
      skiff_error_release (&e);
    }
  dns_acc_free (&d);
  /* containers ask their gateway */
  char ip[16];
  for (size_t i = 0; i < gateways->n; i++)
    {
      int known = 0;
      for (size_t k = 0; k < a->dns_gw.n && !known; k++)
        known = a->dns_gw.v[k] == gateways->v[i];
      if (!known)
        {
          if (dns_server_listen (a->cfg.dns, net_format_ip (gateways->v[i], ip), 53, &e) < 0)
            {
              log_warn ("DNS for containers on %s: %s", ip, e->msg);
              skiff_error_release (&e);
              continue;
            }
          u32_push (&a->dns_gw, gateways->v[i]);
        }
    }
  for (size_t k = 0; k < a->dns_gw.n;)
    {
      int wanted = 0;
      for (size_t i = 0; i < gateways->n && !wanted; i++)
        wanted = a->dns_gw.v[k] == gateways->v[i];
      if (wanted)
        {
          k++;
          continue;
        }
      dns_server_unlisten (a->cfg.dns, net_format_ip (a->dns_gw.v[k], ip), 53);
      a->dns_gw.v[k] = a->dns_gw.v[--a->dns_gw.n];
    }
}

void
agent_net_sync (agent_t *a)
{
  if (a == NULL || a->cfg.net == NULL)
    return;
  int64_t t0 = skiff_monotonic_ns ();
  pthread_mutex_lock (&a->net_lock);
  snapshot_t s;
  skiff_error_t err = NULL;
  agent_u32vec_t gateways = { 0 };
  if (snapshot_take (a, &s, &err) < 0)
    goto out;
  if (sync_host (a, &s, &gateways, &err) < 0)
    {
      log_warn ("host network rules: %s", err->msg);
      skiff_error_release (&err);
    }
  if (a->cfg.dns)
    sync_dns (a, &s, &gateways);
  snapshot_clear (&s);
  /* the pusher compares what it pushed with the store */
  a->push_pending = 1;
  pthread_cond_broadcast (&a->push_cond);
out:
  if (err)
    {
      log_warn ("network sync: %s", err->msg);
      skiff_error_release (&err);
    }
  free (gateways.v);
  pthread_mutex_unlock (&a->net_lock);
  log_debug ("network sync %.2f ms", (double)(skiff_monotonic_ns () - t0) / 1e6);
}

void
agent_network_changed (agent_t *a)
{
  agent_net_sync (a);
}

void
agent_net_remove_orphans (agent_t *a)
{
  if (a->cfg.net == NULL)
    return;
  store_group_t *all = NULL;
  int n = 0;
  if (store_group_list (a->store, NULL, NULL, NULL, 0, &all, &n, NULL) < 0)
    return;
  /* addresses, ports and names held for groups that are gone (a crash between a claim and
     recording the group, or during a delete) */
  json_t *lists[3] = { NULL, NULL, NULL };
  store_pool_list (a->store, STORE_POOL_PRIVATE, &lists[0], NULL);
  store_pool_list (a->store, STORE_POOL_PUBLIC, &lists[1], NULL);
  store_dns_name_list (a->store, &lists[2], NULL);
  for (int l = 0; l < 3; l++)
    {
      size_t i;
      json_t *e;
      json_array_foreach (lists[l], i, e)
      {
        const char *id = json_string_value (json_object_get (e, "group"));
        int known = 0;
        for (int k = 0; k < n && !known; k++)
          known = strcmp (all[k].id, id) == 0;
        if (!known)
          {
            log_info ("releasing the address or name of a group that is gone (%s)", id);
            store_pool_release (a->store, STORE_POOL_PRIVATE, id, NULL);
            store_pool_release (a->store, STORE_POOL_PUBLIC, id, NULL);
            store_host_ports_release (a->store, id, NULL);
            store_dns_name_release (a->store, id, NULL);
          }
      }
      json_decref (lists[l]);
    }
  /* ports of skiff's bridges that no group owns */
  cleanup_strv char **bridges = NULL;
  char prefix[16];
  snprintf (prefix, sizeof prefix, "%.10s", a->cfg.net->bridge);
  net_list_ifaces (prefix, &bridges, NULL);
  for (char **b = bridges; b && *b; b++)
    {
      if (strcmp (*b, a->cfg.net->bridge) != 0
          && !(strncmp (*b + strlen (prefix), "v", 1) == 0 && strlen (*b) == strlen (prefix) + 5))
        continue;
      cleanup_free char *brif = skiff_strdup_printf ("/sys/class/net/%s/brif", *b);
      cleanup_dir DIR *bd = opendir (brif);
      struct dirent *de;
      while (bd && (de = readdir (bd)))
        {
          if (de->d_name[0] == '.')
            continue;
          int known = 0;
          for (int k = 0; k < n && !known; k++)
            {
              char ifname[16];
              known = strcmp (de->d_name, agent_net_ifname (all[k].id, ifname)) == 0;
            }
          if (!known)
            {
              log_info ("removing orphaned network interface %s", de->d_name);
              net_group_detach (de->d_name, NULL);
            }
        }
    }
  store_group_free_array (all, n);
}

/* ---- pushing label records to another DNS server ---- */

/* The label records as {fqdn: address}. */
static json_t *
wanted_push (agent_t *a)
{
  json_t *want = json_object ();
  json_t *names = NULL, *pool = NULL;
  if (store_dns_name_list (a->store, &names, NULL) < 0
      || store_pool_list (a->store, STORE_POOL_PUBLIC, &pool, NULL) < 0)
    {
      json_decref (names);
      json_decref (want);
      return NULL;
    }
  const char *zone = a->cfg.dns_push->zone;
  size_t zl = strlen (zone), i;
  json_t *e;
  char buf[16];
  json_array_foreach (names, i, e)
  {
    const char *fqdn = json_string_value (json_object_get (e, "fqdn"));
    size_t fl = strlen (fqdn);
    uint32_t addr
        = a->cfg.public_first ? addr_of (pool, json_string_value (json_object_get (e, "group"))) : a->cfg.host_address;
    /* only names inside the pushed zone */
    if (addr && (fl == zl || (fl > zl && fqdn[fl - zl - 1] == '.')) && strcasecmp (fqdn + fl - zl, zone) == 0)
      json_object_set_new (want, fqdn, json_string (net_format_ip (addr, buf)));
  }
  json_decref (names);
  json_decref (pool);
  return want;
}

/* Sends what differs between the pushed records (kept in the store) and the wanted ones. */
static int
push_once (agent_t *a, skiff_error_t *err)
{
  cleanup_json json_t *want = wanted_push (a);
  if (want == NULL)
    return skiff_error_set (err, EIO, "read the DNS names");
  cleanup_free char *pushed_text = NULL;
  if (store_meta_get (a->store, PUSHED_META, &pushed_text, err) < 0)
    return -1;
  cleanup_json json_t *pushed = pushed_text ? json_loads (pushed_text, 0, NULL) : json_object ();
  if (!json_is_object (pushed))
    {
      json_decref (pushed);
      pushed = json_object ();
    }
  dns_change_t changes[1024];
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach (want, k, v)
  {
    json_t *old = json_object_get (pushed, k);
    if ((old == NULL || !json_equal (old, v)) && n < 1024)
      changes[n++] = (dns_change_t){ k, DNS_TYPE_A, json_string_value (v), DNS_TTL };
  }
  json_object_foreach (pushed, k, v) if (json_object_get (want, k) == NULL && n < 1024) changes[n++]
      = (dns_change_t){ k, DNS_TYPE_A, NULL, 0 };
  if (n == 0)
    return 0;
  if (dns_update_send (a->cfg.dns_push, changes, n, err) < 0)
    return -1;
  log_info ("pushed %zu DNS change(s) to %s", n, a->cfg.dns_push->server);
  /* what was just sent is now the pushed state (a crash before this line re-sends: harmless) */
  cleanup_free char *text = json_dumps (want, JSON_COMPACT | JSON_SORT_KEYS);
  return store_meta_set (a->store, PUSHED_META, text, err);
}

static void *
pusher_main (void *arg)
{
  agent_t *a = arg;
  int backoff_ms = 500;
  pthread_mutex_lock (&a->net_lock);
  for (;;)
    {
      while (!a->push_pending && !a->stopping)
        {
          struct timespec ts;
          clock_gettime (CLOCK_REALTIME, &ts);
          ts.tv_sec += 30; /* also re-check now and then */
          if (pthread_cond_timedwait (&a->push_cond, &a->net_lock, &ts) != 0)
            break;
        }
      if (a->stopping)
        break;
      a->push_pending = 0;
      pthread_mutex_unlock (&a->net_lock);
      skiff_error_t err = NULL;
      int rc = push_once (a, &err);
      if (rc < 0)
        {
          log_warn ("DNS update to %s: %s (retrying)", a->cfg.dns_push->server, err->msg);
          skiff_error_release (&err);
          usleep ((useconds_t)backoff_ms * 1000);
          backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
        }
      else
        backoff_ms = 500;
      pthread_mutex_lock (&a->net_lock);
      if (rc < 0)
        a->push_pending = 1;
    }
  pthread_mutex_unlock (&a->net_lock);
  return NULL;
}

int
agent_net_start (agent_t *a, skiff_error_t *err)
{
  if (a->cfg.net == NULL)
    return 0;
  if (net_host_setup (a->cfg.net, err) < 0)
    return skiff_error_wrap (err, "set up the group network (bridge %s; --network none runs without)",
                             a->cfg.net->bridge);
  agent_net_remove_orphans (a);
  agent_net_sync (a);
  if (a->cfg.dns_push)
    {
      a->push_pending = 1;
      if (pthread_create (&a->pusher, NULL, pusher_main, a) != 0)
        return skiff_error_set (err, EAGAIN, "start the DNS update thread");
      a->pusher_started = 1;
    }
  return 0;
}

void
agent_net_stop (agent_t *a)
{
  if (a->pusher_started)
    {
      pthread_mutex_lock (&a->net_lock);
      pthread_cond_broadcast (&a->push_cond);
      pthread_mutex_unlock (&a->net_lock);
      pthread_join (a->pusher, NULL);
      a->pusher_started = 0;
    }
  free (a->dns_gw.v);
  a->dns_gw.v = NULL;
  free (a->fwd_except.v);
  a->fwd_except.v = NULL;
  a->fwd_except.n = a->fwd_except.cap = 0;
  a->dns_gw.n = a->dns_gw.cap = 0;
}
