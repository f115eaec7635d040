/* nft.c - the host's nftables rules for the container bridge, through libnftables.
 *
 * The whole table is written as rule-set text and replaced in one transaction:
 * `table` (creates it when missing), `delete table`, then the full table. nftables applies a
 * buffer as a single batch, so the rules are never half there and a second run converges. */
#include "net/net_internal.h"

#include <errno.h>
#include <stdio.h>
#include <nftables/libnftables.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

static void
nft_ctx_freep (struct nft_ctx **c)
{
  if (*c)
    nft_ctx_free (*c);
  *c = NULL;
}

int
net_nft_run (const char *cmds, char **output, skiff_error_t *err)
{
  __attribute__ ((cleanup (nft_ctx_freep))) struct nft_ctx *ctx = nft_ctx_new (NFT_CTX_DEFAULT);
  if (ctx == NULL)
    return skiff_error_set (err, ENOMEM, "nftables context");
  if (nft_ctx_buffer_output (ctx) < 0 || nft_ctx_buffer_error (ctx) < 0)
    return skiff_error_set (err, ENOMEM, "nftables buffers");
  if (nft_run_cmd_from_buffer (ctx, cmds) != 0)
    {
      const char *e = nft_ctx_get_error_buffer (ctx);
      /* keep the first line of nft's message, capped */
      size_t len = e ? strcspn (e, "\n") : 0;
      if (len > 400)
        len = 400;
      return skiff_error_set (err, 0, "nftables: %.*s", (int)len, len ? e : "command failed");
    }
  if (output)
    {
      const char *o = nft_ctx_get_output_buffer (ctx);
      *output = skiff_strdup (o ? o : "");
    }
  return 0;
}

int
net_nft_apply (const net_cfg_t *c, skiff_error_t *err)
{
  const char *t = c->table;
  /* Static chains over sets that net_nft_sync fills. nat: published ports (public addresses and
     the host's own) are DNATed to their group; traffic from a bridge leaving through another
     interface is masqueraded, as are loopback-sourced and hairpin connections into a bridge.
     forward: a bridge talks to itself (its subnets route through the host); into a bridge only
     published ports and replies pass, so virtual networks do not reach each other and nothing
     from outside reaches a private group. input: public addresses refuse ports they do not
     publish; from a bridge only replies and DNS to a gateway reach the host. */
  cleanup_free char *text = skiff_strdup_printf (
      "table inet %s\n"
      "delete table inet %s\n"
      "table inet %s {\n"
      "  set bridges { type ifname; }\n"
      "  set same { type ifname . ifname; }\n"
      "  set gateways { type ipv4_addr; }\n"
      "  set public_addrs { type ipv4_addr; }\n"
      "  map public_ports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }\n"
      "  map host_ports { type inet_proto . inet_service : ipv4_addr . inet_service; }\n"
      "  chain prerouting {\n"
      "    type nat hook prerouting priority dstnat; policy accept;\n"
      "    dnat ip to ip daddr . meta l4proto . th dport map @public_ports\n"
      "    fib daddr type local dnat ip to meta l4proto . th dport map @host_ports\n"
      "  }\n"
      "  chain output {\n"
      "    type nat hook output priority -100; policy accept;\n"
      "    dnat ip to ip daddr . meta l4proto . th dport map @public_ports\n"
      "    fib daddr type local dnat ip to meta l4proto . th dport map @host_ports\n"
      "  }\n"
      "  chain postrouting {\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "    oifname @bridges ip saddr 127.0.0.0/8 masquerade\n"
      "    ct status dnat iifname @bridges oifname @bridges masquerade\n"
      "    iifname @bridges oifname != @bridges masquerade\n"
      "  }\n"
      "  chain forward {\n"
      "    type filter hook forward priority filter; policy accept;\n"
      "    iifname . oifname @same accept\n"
      "    oifname @bridges ct status dnat accept\n"
      "    oifname @bridges ct state established,related accept\n"
      "    oifname @bridges drop\n"
      "  }\n"
      "  chain input {\n"
      "    type filter hook input priority filter; policy accept;\n"
      "    ip daddr @public_addrs meta l4proto tcp reject with tcp reset\n"
      "    ip daddr @public_addrs reject\n"
      "    iifname @bridges ct state established,related accept\n"
      "    iifname @bridges ip daddr @gateways meta l4proto { tcp, udp } th dport 53 accept\n"
      "    iifname @bridges drop\n"
      "  }\n"
      "}\n",
      t, t, t);
  if (net_nft_run (text, NULL, err) < 0)
    return skiff_error_wrap (err, "replace nftables table inet %s", t);
  return 0;
}

static void
fclosep (FILE **f)
{
  if (*f)
    fclose (*f);
  *f = NULL;
}

int
net_nft_sync (const char *table, const net_rules_t *r, skiff_error_t *err)
{
  if (r->n_bridges > NET_MAX_ELEMENTS || r->n_gateways > NET_MAX_ELEMENTS || r->n_public > NET_MAX_ELEMENTS
      || r->n_maps > NET_MAX_ELEMENTS)
    return skiff_error_set (err, E2BIG, "more than %d nftables elements of one kind", NET_MAX_ELEMENTS);
  for (size_t i = 0; i < r->n_bridges; i++)
    if (!net_valid_ifname (r->bridges[i]))
      return skiff_error_set (err, EINVAL, "bridge name `%.32s` is not valid", r->bridges[i]);
  cleanup_free char *text = NULL;
  size_t len = 0;
  {
    __attribute__ ((cleanup (fclosep))) FILE *f = open_memstream (&text, &len);
    if (f == NULL)
      return skiff_error_set (err, errno, "open_memstream");
    static const char *const sets[][2]
        = { { "set", "bridges" },      { "set", "same" },         { "set", "gateways" },
            { "set", "public_addrs" }, { "map", "public_ports" }, { "map", "host_ports" } };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
      fprintf (f, "flush %s inet %s %s\n", sets[i][0], table, sets[i][1]);
    char a[16], b[16];
    for (size_t i = 0; i < r->n_bridges; i++)
      fprintf (f, "add element inet %s bridges { \"%s\" }\nadd element inet %s same { \"%s\" . \"%s\" }\n", table,
               r->bridges[i], table, r->bridges[i], r->bridges[i]);
    for (size_t i = 0; i < r->n_gateways; i++)
      fprintf (f, "add element inet %s gateways { %s }\n", table, net_format_ip (r->gateways[i], a));
    for (size_t i = 0; i < r->n_public; i++)
      fprintf (f, "add element inet %s public_addrs { %s }\n", table, net_format_ip (r->public_addrs[i], a));
    for (size_t i = 0; i < r->n_maps; i++)
      {
        const net_portmap_t *m = &r->maps[i];
        if (m->port < 1 || m->port > 65535)
          return skiff_error_set (err, EINVAL, "port %d out of range", m->port);
        const char *proto = m->udp ? "udp" : "tcp";
        if (m->public_addr)
          fprintf (f, "add element inet %s public_ports { %s . %s . %d : %s . %d }\n", table,
                   net_format_ip (m->public_addr, a), proto, m->port, net_format_ip (m->group_addr, b), m->port);
        else
          fprintf (f, "add element inet %s host_ports { %s . %d : %s . %d }\n", table, proto, m->port,
                   net_format_ip (m->group_addr, b), m->port);
      }
    if (fflush (f) != 0)
      return skiff_error_set (err, errno, "build nftables commands");
  }
  if (net_nft_run (text, NULL, err) < 0)
    return skiff_error_wrap (err, "update nftables table inet %s", table);
  return 0;
}

int
net_nft_delete (const char *table, skiff_error_t *err)
{
  cleanup_free char *text = skiff_strdup_printf ("table inet %s\ndelete table inet %s\n", table, table);
  if (net_nft_run (text, NULL, err) < 0)
    return skiff_error_wrap (err, "delete nftables table inet %s", table);
  return 0;
}
