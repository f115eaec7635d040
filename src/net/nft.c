/* nft.c - the host's nftables rules for the container bridge, through libnftables.
 *
 * The whole table is written as rule-set text and replaced in one transaction:
 * `table` (creates it when missing), `delete table`, then the full table. nftables applies a
 * buffer as a single batch, so the rules are never half there and a second run converges. */
#include "net/net_internal.h"

#include <errno.h>
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
  char net[16], gw[16];
  net_format_ip (c->subnet, net);
  net_format_ip (c->gateway, gw);
  const char *b = c->bridge, *t = c->table;
  int p = c->prefix;
  /* forward: traffic between two ports of the bridge only shows up here when br_netfilter is
     loaded; it is allowed. Containers may go out (IPv4 from their subnet), replies come back,
     nothing else enters the bridge. input: from the bridge only replies and DNS to the gateway. */
  cleanup_free char *text = skiff_strdup_printf ("table inet %s\n"
                                                 "delete table inet %s\n"
                                                 "table inet %s {\n"
                                                 "  chain postrouting {\n"
                                                 "    type nat hook postrouting priority srcnat; policy accept;\n"
                                                 "    ip saddr %s/%d oifname != \"%s\" masquerade\n"
                                                 "  }\n"
                                                 "  chain forward {\n"
                                                 "    type filter hook forward priority filter; policy accept;\n"
                                                 "    iifname \"%s\" oifname \"%s\" accept\n"
                                                 "    iifname \"%s\" ip saddr %s/%d accept\n"
                                                 "    iifname \"%s\" drop\n"
                                                 "    oifname \"%s\" ct state established,related accept\n"
                                                 "    oifname \"%s\" drop\n"
                                                 "  }\n"
                                                 "  chain input {\n"
                                                 "    type filter hook input priority filter; policy accept;\n"
                                                 "    iifname \"%s\" ct state established,related accept\n"
                                                 "    iifname \"%s\" ip daddr %s udp dport 53 accept\n"
                                                 "    iifname \"%s\" ip daddr %s tcp dport 53 accept\n"
                                                 "    iifname \"%s\" drop\n"
                                                 "  }\n"
                                                 "}\n",
                                                 t, t, t, net, p, b, b, b, b, net, p, b, b, b, b, b, gw, b, gw, b);
  if (net_nft_run (text, NULL, err) < 0)
    return skiff_error_wrap (err, "replace nftables table inet %s", t);
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
