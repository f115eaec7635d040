/* netconfig.c - skiffd's networking options: the group network, the public address pool or
 * host publishing, the DNS server's address and the optional RFC 2136 push target. */
#include "skiffd/netconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

static int
parse_ip (const char *s, uint32_t *out)
{
  struct in_addr a;
  if (s == NULL || inet_pton (AF_INET, s, &a) != 1)
    return -1;
  *out = ntohl (a.s_addr);
  return 0;
}

/* "ADDR:PORT" into addr (dotted quad) and port. */
static int
parse_hostport (const char *s, int default_port, char addr[16], int *port, skiff_error_t *err)
{
  char buf[64];
  if (strlen (s) >= sizeof buf)
    return skiff_error_set (err, EINVAL, "`%.64s` is not ADDRESS[:PORT]", s);
  strcpy (buf, s);
  char *colon = strchr (buf, ':');
  *port = default_port;
  if (colon)
    {
      *colon = '\0';
      char *end;
      long p = strtol (colon + 1, &end, 10);
      if (*end || p < 0 || p > 65535)
        return skiff_error_set (err, EINVAL, "`%s`: port must be 0..65535", s);
      *port = (int)p;
    }
  uint32_t a;
  if (parse_ip (buf, &a) < 0)
    return skiff_error_set (err, EINVAL, "`%s` is not an IPv4 ADDRESS[:PORT]", s);
  snprintf (addr, 16, "%s", buf);
  return 0;
}

/* The first IPv4 address of an interface that is up and not a loopback. */
static uint32_t
first_host_address (void)
{
  struct ifaddrs *ifs = NULL;
  uint32_t found = 0;
  if (getifaddrs (&ifs) < 0)
    return 0;
  for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
      {
        uint32_t a = ntohl (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
        if ((a >> 24) != 127 && strncmp (i->ifa_name, "sk", 2) != 0)
          found = a;
      }
  freeifaddrs (ifs);
  return found;
}

/* Reads a TSIG key in the format of BIND's tsig-keygen:
 *   key "name" { algorithm hmac-sha256; secret "base64"; }; */
static int
read_key_file (const char *path, skiffd_netconfig_t *out, skiff_error_t *err)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (skiff_read_file (path, 16384, &text, &len, err) < 0)
    return skiff_error_wrap (err, "TSIG key file");
  char name[256], alg[64], secret[512];
  const char *k = strstr (text, "key");
  const char *a = strstr (text, "algorithm");
  const char *s = strstr (text, "secret");
  if (k == NULL || a == NULL || s == NULL || sscanf (k, "key \"%255[^\"]\"", name) != 1
      || sscanf (a, "algorithm %63[A-Za-z0-9-]", alg) != 1 || sscanf (s, "secret \"%511[^\"]\"", secret) != 1)
    return skiff_error_set (err, EINVAL, "%s: not a TSIG key (key \"NAME\" { algorithm ALG; secret \"BASE64\"; };)",
                            path);
  out->key_name = skiff_strdup (name);
  out->key_algorithm = skiff_strdup (alg);
  out->key_secret = skiff_strdup (secret);
  return 0;
}

/* The upstreams of --dns-forward: "none", "ADDR[:PORT],..." or, when NULL, the IPv4 nameservers
 * of the host's resolv.conf (loopback ones too: skiffd asks from the host). */
static int
parse_forward (const skiffd_netopts_t *o, skiffd_netconfig_t *out, skiff_error_t *err)
{
  out->n_upstreams = 0;
  if (o->dns_forward == NULL)
    {
      cleanup_free char *text = NULL;
      size_t len = 0;
      if (skiff_read_file (o->resolv_conf ? o->resolv_conf : "/etc/resolv.conf", 65536, &text, &len, NULL) < 0)
        return 0; /* no resolver on the host: nothing to forward to */
      char *save = NULL;
      for (char *line = strtok_r (text, "\n", &save); line && out->n_upstreams < 3; line = strtok_r (NULL, "\n", &save))
        {
          char addr[64];
          uint32_t a;
          if (sscanf (line, " nameserver %63s", addr) == 1 && parse_ip (addr, &a) == 0 && a != 0)
            out->upstreams[out->n_upstreams++] = (dns_upstream_t){ a, 53 };
        }
      return 0;
    }
  if (strcmp (o->dns_forward, "none") == 0)
    return 0;
  if (strlen (o->dns_forward) > 512)
    return skiff_error_set (err, EINVAL, "--dns-forward is too long");
  char buf[513];
  strcpy (buf, o->dns_forward);
  char *save = NULL;
  for (char *item = strtok_r (buf, ",", &save); item; item = strtok_r (NULL, ",", &save))
    {
      if (out->n_upstreams == DNS_MAX_UPSTREAMS)
        return skiff_error_set (err, EINVAL, "--dns-forward: at most %d servers", DNS_MAX_UPSTREAMS);
      char addr[16];
      int port;
      uint32_t a;
      if (parse_hostport (item, 53, addr, &port, err) < 0)
        return skiff_error_wrap (err, "--dns-forward");
      if (parse_ip (addr, &a) < 0 || a == 0 || port == 0)
        return skiff_error_set (err, EINVAL, "--dns-forward: `%s` is not a server address and port", item);
      out->upstreams[out->n_upstreams++] = (dns_upstream_t){ a, port };
    }
  if (out->n_upstreams == 0)
    return skiff_error_set (err, EINVAL, "--dns-forward takes ADDR[:PORT],... or `none`");
  return 0;
}

int
skiffd_netconfig_parse (const skiffd_netopts_t *o, skiffd_netconfig_t *out, skiff_error_t *err)
{
  memset (out, 0, sizeof *out);
  const char *bridge = o->bridge;
  if (strlen (bridge) < 1 || strlen (bridge) > 10 || bridge[0] < 'a' || bridge[0] > 'z'
      || strspn (bridge, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen (bridge))
    return skiff_error_set (err, EINVAL,
                            "--bridge must be 1-10 characters of a-z, 0-9 and '_', starting with a letter (the "
                            "bridges of virtual networks add a suffix)");
  out->net.bridge = bridge;
  out->net.table = bridge;
  out->with_network = strcmp (o->network, "none") != 0;
  if (!out->with_network)
    return 0;
  if (net_parse_cidr (o->network, &out->net.subnet, &out->net.prefix, err) < 0)
    return skiff_error_wrap (err, "--network");
  out->net.gateway = out->net.subnet + 1;

  /* public addresses */
  if (strcmp (o->public_ips, "host") == 0)
    {
      if (o->host_address && parse_ip (o->host_address, &out->host_address) < 0)
        return skiff_error_set (err, EINVAL, "--host-address `%s` is not an IPv4 address", o->host_address);
      if (!o->host_address)
        out->host_address = first_host_address ();
    }
  else if (strchr (o->public_ips, '/'))
    {
      uint32_t net;
      int prefix;
      if (net_parse_cidr (o->public_ips, &net, &prefix, err) < 0)
        return skiff_error_wrap (err, "--public-ips");
      out->public_first = net + 1;
      out->public_last = net + ((uint32_t)1 << (32 - prefix)) - 2;
    }
  else
    {
      char a[32], b[32];
      if (sscanf (o->public_ips, "%31[0-9.]-%31[0-9.]", a, b) != 2 || parse_ip (a, &out->public_first) < 0
          || parse_ip (b, &out->public_last) < 0 || out->public_first > out->public_last
          || out->public_last - out->public_first > 65535)
        return skiff_error_set (err, EINVAL,
                                "--public-ips `%s` is not CIDR, FIRST-LAST (at most 65536 addresses) or `host`",
                                o->public_ips);
    }
  uint32_t mask = 0xffffffffu << (32 - out->net.prefix);
  if (out->public_first
      && ((out->public_first & mask) == out->net.subnet || (out->public_last & mask) == out->net.subnet))
    return skiff_error_set (err, EINVAL, "--public-ips overlaps --network");

  /* DNS */
  out->dns_zone = o->dns_zone;
  if (o->dns_zone && !dns_valid_name (o->dns_zone))
    return skiff_error_set (err, EINVAL, "--dns-zone `%s` is not a DNS name", o->dns_zone);
  out->with_dns = strcmp (o->dns_listen, "none") != 0;
  if (out->with_dns && parse_hostport (o->dns_listen, 53, out->dns_addr, &out->dns_port, err) < 0)
    return skiff_error_wrap (err, "--dns-listen");
  if (out->with_dns && parse_forward (o, out, err) < 0)
    return -1;
  if (o->dns_update)
    {
      if (parse_hostport (o->dns_update, 53, out->push_server, &out->push.port, err) < 0)
        return skiff_error_wrap (err, "--dns-update-server");
      if (o->dns_update_key == NULL)
        return skiff_error_set (err, EINVAL, "--dns-update-server needs --dns-update-key FILE (a TSIG key)");
      if (read_key_file (o->dns_update_key, out, err) < 0)
        return -1;
      out->push.server = out->push_server;
      out->push.zone = o->dns_update_zone ? o->dns_update_zone : o->dns_zone;
      if (out->push.zone == NULL || !dns_valid_name (out->push.zone))
        return skiff_error_set (err, EINVAL, "--dns-update-zone must be a DNS name");
      out->push.key_name = out->key_name;
      out->push.key_algorithm = out->key_algorithm;
      out->push.key_secret = out->key_secret;
      out->with_push = 1;
    }
  return 0;
}

void
skiffd_netconfig_clear (skiffd_netconfig_t *c)
{
  free (c->key_name);
  free (c->key_algorithm);
  free (c->key_secret);
  c->key_name = c->key_algorithm = c->key_secret = NULL;
}
