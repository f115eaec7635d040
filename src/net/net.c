/* net.c - host bridge set-up and per-group veth attach (see net.h). */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "net/net_internal.h"

const char *
net_format_ip (uint32_t addr, char *buf)
{
  snprintf (buf, 16, "%u.%u.%u.%u", (addr >> 24) & 0xff, (addr >> 16) & 0xff, (addr >> 8) & 0xff, addr & 0xff);
  return buf;
}

/* Reads a decimal number of 1..3 digits without a leading zero (but "0"), at most max. */
static const char *
parse_dec (const char *s, unsigned max, unsigned *out)
{
  unsigned v = 0;
  int n = 0;
  while (s[n] >= '0' && s[n] <= '9')
    {
      if (n == 3)
        return NULL;
      v = v * 10 + (unsigned)(s[n] - '0');
      n++;
    }
  if (n == 0 || (n > 1 && s[0] == '0') || v > max)
    return NULL;
  *out = v;
  return s + n;
}

int
net_parse_cidr (const char *s, uint32_t *subnet, int *prefix, skiff_error_t *err)
{
  if (s == NULL)
    return skiff_error_set (err, EINVAL, "missing subnet");
  if (strnlen (s, 32) > 18)
    return skiff_error_set (err, EINVAL, "subnet `%.32s` is not an IPv4 CIDR such as 10.88.0.0/16", s);
  uint32_t a = 0;
  const char *p = s;
  for (int i = 0; i < 4; i++)
    {
      unsigned o;
      p = parse_dec (p, 255, &o);
      if (p == NULL || *p != (i < 3 ? '.' : '/'))
        return skiff_error_set (err, EINVAL, "subnet `%s` is not an IPv4 CIDR such as 10.88.0.0/16", s);
      p++;
      a = (a << 8) | o;
    }
  unsigned len;
  p = parse_dec (p, 32, &len);
  if (p == NULL || *p != '\0')
    return skiff_error_set (err, EINVAL, "subnet `%s` is not an IPv4 CIDR such as 10.88.0.0/16", s);
  if (len < 8 || len > 30)
    return skiff_error_set (err, EINVAL, "subnet `%s`: prefix length must be 8..30", s);
  uint32_t mask = 0xffffffffu << (32 - len);
  if (a & ~mask)
    return skiff_error_set (err, EINVAL, "subnet `%s` has host bits set", s);
  *subnet = a;
  *prefix = (int)len;
  return 0;
}

int
net_valid_ifname (const char *name)
{
  if (name == NULL)
    return 0;
  size_t n = strnlen (name, 16);
  if (n == 0 || n > 15 || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      char c = name[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'
            || c == '-'))
        return 0;
    }
  return 1;
}

static int
valid_table (const char *name)
{
  size_t n = strnlen (name, 65);
  if (n == 0 || n > 64 || (name[0] >= '0' && name[0] <= '9'))
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      char c = name[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
        return 0;
    }
  return 1;
}

int
net_cfg_resolve (const net_config_t *cfg, net_cfg_t *out, skiff_error_t *err)
{
  static const net_config_t defaults = { 0 };
  if (cfg == NULL)
    cfg = &defaults;
  memset (out, 0, sizeof *out);
  const char *bridge = cfg->bridge ? cfg->bridge : NET_DEFAULT_BRIDGE;
  const char *table = cfg->table ? cfg->table : NET_DEFAULT_TABLE;
  if (!net_valid_ifname (bridge))
    return skiff_error_set (err, EINVAL, "bridge name `%.32s` is not 1..15 characters of [A-Za-z0-9_.-]", bridge);
  if (!valid_table (table))
    return skiff_error_set (err, EINVAL, "nftables table name `%.70s` is not 1..64 characters of [A-Za-z0-9_]", table);
  strcpy (out->bridge, bridge);
  strcpy (out->table, table);
  out->subnet = cfg->subnet ? cfg->subnet : NET_DEFAULT_SUBNET;
  out->prefix = cfg->prefix ? cfg->prefix : NET_DEFAULT_PREFIX;
  if (out->prefix < 8 || out->prefix > 30)
    return skiff_error_set (err, EINVAL, "prefix length %d is not 8..30", out->prefix);
  out->mask = 0xffffffffu << (32 - out->prefix);
  char a[16], b[16];
  if (out->subnet & ~out->mask)
    return skiff_error_set (err, EINVAL, "subnet %s/%d has host bits set", net_format_ip (out->subnet, a), out->prefix);
  out->gateway = cfg->gateway ? cfg->gateway : out->subnet + 1;
  uint32_t host = out->gateway & ~out->mask;
  if ((out->gateway & out->mask) != out->subnet || host == 0 || host == ~out->mask)
    return skiff_error_set (err, EINVAL, "gateway %s is not a host address of %s/%d", net_format_ip (out->gateway, a),
                            net_format_ip (out->subnet, b), out->prefix);
  return 0;
}

static int
enable_ip_forward (skiff_error_t *err)
{
  static const char path[] = "/proc/sys/net/ipv4/ip_forward";
  cleanup_close int fd = open (path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return skiff_error_set (err, errno, "open %s", path);
  char c = 0;
  if (read (fd, &c, 1) == 1 && c == '1')
    return 0;
  if (pwrite (fd, "1", 1, 0) != 1)
    return skiff_error_set (err, errno, "enable IPv4 forwarding (%s)", path);
  return 0;
}

static int set_conf (const char *ifname, const char *key, const char *value, skiff_error_t *err);

int
net_host_setup (const net_config_t *cfg, skiff_error_t *err)
{
  net_cfg_t c;
  if (net_cfg_resolve (cfg, &c, err) < 0)
    return -1;
  cleanup_nl nl_t nl = { 0 };
  if (nl_open (&nl, err) < 0)
    return -1;
  int index;
  char kind[32];
  if (nl_link_get (&nl, c.bridge, &index, kind, err) < 0)
    return -1;
  if (index > 0 && strcmp (kind, "bridge") != 0)
    return skiff_error_set (err, EEXIST, "interface `%s` exists and is not a bridge (%s)", c.bridge,
                            kind[0] ? kind : "no kind");
  if (index == 0)
    {
      if (nl_bridge_add (&nl, c.bridge, err) < 0 || nl_link_get (&nl, c.bridge, &index, NULL, err) < 0)
        return -1;
      if (index == 0)
        return skiff_error_set (err, ENODEV, "bridge `%s` vanished after creation", c.bridge);
    }
  if (nl_addr_replace (&nl, index, c.gateway, c.prefix, err) < 0
      || nl_addr_prune (&nl, index, &c.gateway, &c.prefix, 1, err) < 0 || nl_link_up (&nl, c.bridge, err) < 0)
    return skiff_error_wrap (err, "set up bridge `%s`", c.bridge);
  if (set_conf (c.bridge, "route_localnet", "1", err) < 0 || set_conf (c.bridge, "send_redirects", "0", err) < 0
      || enable_ip_forward (err) < 0)
    return -1;
  if (net_nft_apply (&c, err) < 0)
    return -1;
  const char *bridges[] = { c.bridge };
  net_rules_t r = { .bridges = bridges, .n_bridges = 1, .gateways = &c.gateway, .n_gateways = 1 };
  return net_nft_sync (c.table, &r, err);
}

/* Writes value to /proc/sys/net/ipv4/conf/<ifname>/<key>. */
static int
set_conf (const char *ifname, const char *key, const char *value, skiff_error_t *err)
{
  char path[128];
  snprintf (path, sizeof path, "/proc/sys/net/ipv4/conf/%s/%s", ifname, key);
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write (fd, value, strlen (value)) < 0)
    return skiff_error_set (err, errno, "write %s", path);
  return 0;
}

/* Makes sure an interface of this kind called name exists, up, with exactly these addresses. */
static int
ensure_link (const char *name, const char *kind, const uint32_t *addrs, const int *prefixes, size_t n,
             skiff_error_t *err)
{
  if (!net_valid_ifname (name))
    return skiff_error_set (err, EINVAL, "interface name `%.32s` is not 1..15 characters of [A-Za-z0-9_.-]",
                            name ? name : "");
  if (n > 1024)
    return skiff_error_set (err, E2BIG, "more than 1024 addresses for `%s`", name);
  cleanup_nl nl_t nl = { 0 };
  if (nl_open (&nl, err) < 0)
    return -1;
  int index;
  char have[32];
  if (nl_link_get (&nl, name, &index, have, err) < 0)
    return -1;
  if (index > 0 && strcmp (have, kind) != 0)
    return skiff_error_set (err, EEXIST, "interface `%s` exists and is not a %s (%s)", name, kind,
                            have[0] ? have : "no kind");
  if (index == 0)
    {
      if (nl_link_add_kind (&nl, name, kind, err) < 0 || nl_link_get (&nl, name, &index, NULL, err) < 0)
        return -1;
      if (index == 0)
        return skiff_error_set (err, ENODEV, "%s `%s` vanished after creation", kind, name);
    }
  for (size_t i = 0; i < n; i++)
    if (nl_addr_replace (&nl, index, addrs[i], prefixes[i], err) < 0)
      return skiff_error_wrap (err, "set up %s `%s`", kind, name);
  if (nl_addr_prune (&nl, index, addrs, prefixes, n, err) < 0 || nl_link_up (&nl, name, err) < 0)
    return skiff_error_wrap (err, "set up %s `%s`", kind, name);
  return 0;
}

int
net_bridge_ensure (const net_bridge_t *b, skiff_error_t *err)
{
  if (ensure_link (b->name, "bridge", b->gateways, b->prefixes, b->n, err) < 0)
    return -1;
  /* loopback-sourced connections to published ports are routed into the bridge (then
     masqueraded); containers of two subnets of one bridge talk through the host, which must not
     tell them to go direct */
  if (set_conf (b->name, "route_localnet", "1", err) < 0 || set_conf (b->name, "send_redirects", "0", err) < 0)
    return -1;
  return enable_ip_forward (err);
}

static int
remove_link (const char *name, const char *kind, skiff_error_t *err)
{
  if (!net_valid_ifname (name))
    return skiff_error_set (err, EINVAL, "interface name `%.32s` is not valid", name ? name : "");
  cleanup_nl nl_t nl = { 0 };
  if (nl_open (&nl, err) < 0)
    return -1;
  int index;
  char have[32];
  if (nl_link_get (&nl, name, &index, have, err) < 0)
    return -1;
  if (index == 0)
    return 0;
  if (strcmp (have, kind) != 0)
    return skiff_error_set (err, EEXIST, "interface `%s` is not a %s: left alone", name, kind);
  return nl_link_del (&nl, index, err);
}

int
net_bridge_remove (const char *name, skiff_error_t *err)
{
  return remove_link (name, "bridge", err);
}

int
net_local_addrs_sync (const char *ifname, const uint32_t *addrs, size_t n, skiff_error_t *err)
{
  if (n == 0)
    return remove_link (ifname, "dummy", err);
  cleanup_free int *prefixes = calloc (n, sizeof (int));
  if (prefixes == NULL)
    return skiff_error_set (err, ENOMEM, "address list");
  for (size_t i = 0; i < n; i++)
    prefixes[i] = 32;
  return ensure_link (ifname, "dummy", addrs, prefixes, n, err);
}

int
net_rules_sync (const char *table, const net_rules_t *r, skiff_error_t *err)
{
  if (table == NULL || !valid_table (table))
    return skiff_error_set (err, EINVAL, "nftables table name `%.70s` is not 1..64 characters of [A-Za-z0-9_]",
                            table ? table : "");
  return net_nft_sync (table, r, err);
}

int
net_host_teardown (const net_config_t *cfg, skiff_error_t *err)
{
  net_cfg_t c;
  if (net_cfg_resolve (cfg, &c, err) < 0)
    return -1;
  if (net_nft_delete (c.table, err) < 0)
    return -1;
  cleanup_nl nl_t nl = { 0 };
  if (nl_open (&nl, err) < 0)
    return -1;
  int index;
  char kind[32];
  if (nl_link_get (&nl, c.bridge, &index, kind, err) < 0)
    return -1;
  if (index == 0)
    return 0;
  if (strcmp (kind, "bridge") != 0)
    return skiff_error_set (err, EEXIST, "interface `%s` is not a bridge: left alone", c.bridge);
  return nl_link_del (&nl, index, err);
}

/* Deletes the veth called name if there is one; anything else with that name is an error. */
static int
delete_veth (nl_t *nl, const char *name, skiff_error_t *err)
{
  int index;
  char kind[32];
  if (nl_link_get (nl, name, &index, kind, err) < 0)
    return -1;
  if (index == 0)
    return 0;
  if (strcmp (kind, "veth") != 0)
    return skiff_error_set (err, EEXIST, "interface `%s` exists and is not a veth (%s): left alone", name,
                            kind[0] ? kind : "no kind");
  return nl_link_del (nl, index, err);
}

int
net_group_attach (const net_config_t *cfg, const char *netns_path, const char *host_ifname, uint32_t addr,
                  skiff_error_t *err)
{
  net_cfg_t c;
  if (net_cfg_resolve (cfg, &c, err) < 0)
    return -1;
  if (!net_valid_ifname (host_ifname))
    return skiff_error_set (err, EINVAL, "interface name `%.32s` is not 1..15 characters of [A-Za-z0-9_.-]",
                            host_ifname ? host_ifname : "");
  char a[16], s[16];
  uint32_t host = addr & ~c.mask;
  if ((addr & c.mask) != c.subnet || host == 0 || host == ~c.mask || addr == c.gateway)
    return skiff_error_set (err, EINVAL, "address %s is not a free host address of %s/%d", net_format_ip (addr, a),
                            net_format_ip (c.subnet, s), c.prefix);
  if (netns_path == NULL || netns_path[0] != '/' || strnlen (netns_path, 4097) > 4096)
    return skiff_error_set (err, EINVAL, "network namespace path must be absolute");

  cleanup_close int nsfd = open (netns_path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    return skiff_error_set (err, errno, "open network namespace `%s`", netns_path);
  cleanup_nl nl_t host_nl = { 0 };
  cleanup_nl nl_t ns_nl = { 0 };
  if (nl_open (&host_nl, err) < 0)
    return -1;
  if (nl_open_netns (&ns_nl, nsfd, err) < 0)
    return skiff_error_wrap (err, "network namespace `%s`", netns_path);

  int br;
  if (nl_link_get (&host_nl, c.bridge, &br, NULL, err) < 0)
    return -1;
  if (br == 0)
    return skiff_error_set (err, ENODEV, "bridge `%s` does not exist (host networking not set up)", c.bridge);
  if (delete_veth (&host_nl, host_ifname, err) < 0)
    return -1;

  /* the MAC follows the address (locally administered 0a:58 and the four address bytes), so
     the neighbour entries of the host and of other groups stay right when a group comes back
     with its address on a new veth */
  const uint8_t mac[6]
      = { 0x0a, 0x58, (uint8_t)(addr >> 24), (uint8_t)(addr >> 16), (uint8_t)(addr >> 8), (uint8_t)addr };
  if (nl_veth_add (&host_nl, host_ifname, br, NET_CONTAINER_IFNAME, nsfd, mac, err) < 0)
    {
      if ((*err)->status != EEXIST)
        return -1;
      /* a stale eth0 in the namespace (its host side was renamed or is gone): replace it */
      skiff_error_release (err);
      if (delete_veth (&ns_nl, NET_CONTAINER_IFNAME, err) < 0)
        return skiff_error_wrap (err, "network namespace `%s`", netns_path);
      if (nl_veth_add (&host_nl, host_ifname, br, NET_CONTAINER_IFNAME, nsfd, mac, err) < 0)
        return -1;
    }

  int eth;
  if (nl_link_get (&ns_nl, NET_CONTAINER_IFNAME, &eth, NULL, err) < 0 || nl_link_up (&ns_nl, "lo", err) < 0
      || nl_link_up (&ns_nl, NET_CONTAINER_IFNAME, err) < 0)
    goto fail;
  if (eth == 0)
    {
      skiff_error_set (err, ENODEV, "%s missing after creation", NET_CONTAINER_IFNAME);
      goto fail;
    }
  if (nl_addr_replace (&ns_nl, eth, addr, c.prefix, err) < 0 || nl_route_default (&ns_nl, eth, c.gateway, err) < 0)
    goto fail;
  return 0;

fail:
  {
    /* do not leave a half-configured veth behind */
    skiff_error_t e2 = NULL;
    delete_veth (&host_nl, host_ifname, &e2);
    skiff_error_release (&e2);
  }
  return skiff_error_wrap (err, "configure %s in `%s`", NET_CONTAINER_IFNAME, netns_path);
}

int
net_group_detach (const char *host_ifname, skiff_error_t *err)
{
  if (!net_valid_ifname (host_ifname))
    return skiff_error_set (err, EINVAL, "interface name `%.32s` is not 1..15 characters of [A-Za-z0-9_.-]",
                            host_ifname ? host_ifname : "");
  cleanup_nl nl_t nl = { 0 };
  if (nl_open (&nl, err) < 0)
    return -1;
  return delete_veth (&nl, host_ifname, err);
}

int
net_list_ifaces (const char *prefix, char ***names, skiff_error_t *err)
{
  if (prefix == NULL || strnlen (prefix, 16) > 15)
    return skiff_error_set (err, EINVAL, "interface prefix must be at most 15 characters");
  cleanup_nl nl_t nl = { 0 };
  if (nl_open (&nl, err) < 0)
    return -1;
  return nl_link_names (&nl, prefix, names, err);
}
