/* net_internal.h - the net module's private pieces: a small rtnetlink layer over libmnl
 * (netlink.c) and the nftables rule set (nft.c). */
#ifndef SKIFF_NET_NET_INTERNAL_H
#define SKIFF_NET_NET_INTERNAL_H

#include <stdint.h>

#include "common/error.h"
#include "net/net.h"

#define NET_MAX_ELEMENTS 65536

/* A configuration with the defaults filled in and checked. */
typedef struct
{
  char bridge[16];
  char table[65];
  uint32_t subnet;
  uint32_t mask;
  int prefix;
  uint32_t gateway;
} net_cfg_t;

/* Fills *out from cfg (NULL means defaults) and checks it. */
int net_cfg_resolve (const net_config_t *cfg, net_cfg_t *out, skiff_error_t *err);

/* 1..15 characters of [A-Za-z0-9_.-], not "." or "..". */
int net_valid_ifname (const char *name);

/* ---- rtnetlink (netlink.c) ---- */

typedef struct
{
  struct mnl_socket *sock;
  uint32_t portid;
  uint32_t seq;
  char *buf; /* receive buffer, NL_BUF_SIZE bytes */
} nl_t;

/* Opens a NETLINK_ROUTE socket in the caller's network namespace. */
int nl_open (nl_t *nl, skiff_error_t *err);

/* Opens a NETLINK_ROUTE socket in the network namespace netns_fd refers to. The socket is made
 * by a short-lived thread that joined the namespace (the caller's own thread never moves); a
 * socket keeps the namespace it was created in. */
int nl_open_netns (nl_t *nl, int netns_fd, skiff_error_t *err);

/* Closes the socket; safe on a zeroed or closed nl_t. */
void nl_close (nl_t *nl);
#define cleanup_nl __attribute__ ((cleanup (nl_close)))

/* Looks up a link by name: *index gets its ifindex (0 when it does not exist) and kind, when
 * not NULL, its IFLA_INFO_KIND ("" when none; kind must hold 32 bytes). */
int nl_link_get (nl_t *nl, const char *name, int *index, char *kind, skiff_error_t *err);

/* Deletes the link with this index; a missing one (ENODEV) is fine. */
int nl_link_del (nl_t *nl, int index, skiff_error_t *err);

/* Sets IFF_UP on the link named `name`. */
int nl_link_up (nl_t *nl, const char *name, skiff_error_t *err);

/* Creates a link of this kind ("bridge", "dummy") called name (EEXIST is fine). */
int nl_link_add_kind (nl_t *nl, const char *name, const char *kind, skiff_error_t *err);

/* Creates a bridge called name (EEXIST is fine: a concurrent creator won). */
int nl_bridge_add (nl_t *nl, const char *name, skiff_error_t *err);

/* Creates a veth pair: `name` here, up, enslaved to master_index; the peer `peer_name`, up,
 * directly in the network namespace peer_netns_fd. */
int nl_veth_add (nl_t *nl, const char *name, int master_index, const char *peer_name, int peer_netns_fd,
                 const uint8_t *peer_mac, skiff_error_t *err);

/* Gives ifindex the IPv4 address addr/prefix (replacing the same address). */
int nl_addr_replace (nl_t *nl, int ifindex, uint32_t addr, int prefix, skiff_error_t *err);

/* Removes every IPv4 address of ifindex except the n_keep keep[i]/prefixes[i]. */
int nl_addr_prune (nl_t *nl, int ifindex, const uint32_t *keep, const int *prefixes, size_t n_keep, skiff_error_t *err);

/* Installs (or replaces) the IPv4 default route via gateway on ifindex in the main table. */
int nl_route_default (nl_t *nl, int ifindex, uint32_t gateway, skiff_error_t *err);

/* Lists link names starting with prefix (see net_list_ifaces). */
int nl_link_names (nl_t *nl, const char *prefix, char ***names, skiff_error_t *err);

/* ---- nftables (nft.c) ---- */

/* Replaces `inet <table>` with the static chains and empty sets, in one transaction. */
int net_nft_apply (const net_cfg_t *c, skiff_error_t *err);

/* Replaces the elements of the table's sets and maps with r's, in one transaction. */
int net_nft_sync (const char *table, const net_rules_t *r, skiff_error_t *err);

/* Deletes `inet <table>`; a missing table is fine. */
int net_nft_delete (const char *table, skiff_error_t *err);

/* Runs nftables commands in one transaction; *output (when not NULL) gets what nft printed. */
int net_nft_run (const char *cmds, char **output, skiff_error_t *err);

#endif
