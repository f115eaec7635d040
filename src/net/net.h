/* net.h - container group networking: one host bridge with NAT and an input filter
 * (nftables), and a veth pair per group into the group's pinned network namespace.
 *
 * Netlink goes through libmnl and nftables through libnftables: no `ip` or `nft` process.
 * Every call is idempotent; a group attach costs well under a millisecond on a quiet host.
 * Names from outside are checked: interface names 1..15 characters of [A-Za-z0-9_.-],
 * table names 1..64 characters of [A-Za-z0-9_] (they end up in an nftables rule set). */
#ifndef SKIFF_NET_NET_H
#define SKIFF_NET_NET_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define NET_DEFAULT_BRIDGE "skiff0"
#define NET_DEFAULT_SUBNET 0x0a580000u /* 10.88.0.0 */
#define NET_DEFAULT_PREFIX 16
#define NET_DEFAULT_TABLE "skiff"
#define NET_CONTAINER_IFNAME "eth0"

/* Zero / NULL fields take the defaults; cfg itself may be NULL (all defaults). */
typedef struct
{
  const char *bridge; /* bridge name, default "skiff0" */
  uint32_t subnet;    /* network address, host byte order (default 10.88.0.0) */
  int prefix;         /* default 16 */
  uint32_t gateway;   /* the bridge's address (default subnet+1) */
  const char *table;  /* nftables table name in family inet, default "skiff" */
} net_config_t;

/* Makes sure the bridge exists and is up with gateway/prefix (other IPv4 addresses on it are
 * removed), IPv4 forwarding is on (/proc/sys/net/ipv4/ip_forward), and the nftables table
 * `inet <table>` holds: masquerade for traffic from the subnet leaving through another
 * interface; forward: bridge->bridge, bridge->other interfaces (IPv4 from the subnet only),
 * established/related back into the bridge, nothing else into it; input from the bridge:
 * established/related, UDP and TCP port 53 to the gateway, everything else dropped (containers
 * must not reach the host's services). The table is replaced atomically (add, delete, add in one
 * nftables transaction), so calling it again converges. Fails when an interface with the
 * bridge's name exists and is not a bridge. */
int net_host_setup (const net_config_t *cfg, skiff_error_t *err);

/* A bridge with the gateway addresses of the subnets behind it (a virtual network's subnets
 * share one bridge). */
typedef struct
{
  const char *name;
  const uint32_t *gateways; /* host order */
  const int *prefixes;
  size_t n;
} net_bridge_t;

/* Makes sure bridge b exists and is up with exactly its gateway addresses (others removed),
 * with route_localnet on (published loopback addresses reach it) and ICMP redirects off. */
int net_bridge_ensure (const net_bridge_t *b, skiff_error_t *err);

/* Removes the bridge called name; a missing one is fine, a non-bridge is an error (EEXIST). */
int net_bridge_remove (const char *name, skiff_error_t *err);

/* Makes sure the dummy interface `ifname` exists, is up and carries exactly these addresses as
 * /32 (public addresses the host must answer for); n == 0 removes the interface. */
int net_local_addrs_sync (const char *ifname, const uint32_t *addrs, size_t n, skiff_error_t *err);

/* A published port: traffic to public_addr:port (public_addr 0: any of the host's own
 * addresses) goes to group_addr:port. */
typedef struct
{
  uint32_t public_addr;
  int udp; /* 0: TCP */
  int port;
  uint32_t group_addr;
} net_portmap_t;

/* The dynamic part of the rule set. Bridges in the same set talk among themselves; between two
 * different bridges nothing passes; into a bridge only replies and published ports pass. */
typedef struct
{
  const char *const *bridges; /* every skiff bridge (the default one and the virtual networks') */
  size_t n_bridges;
  const uint32_t *gateways; /* the bridges' addresses: containers may ask them for DNS (port 53) */
  size_t n_gateways;
  const uint32_t *public_addrs; /* every allocated public address: ports not published are refused */
  size_t n_public;
  const net_portmap_t *maps;
  size_t n_maps;
} net_rules_t;

/* Replaces the elements of the table's sets and maps with r's in one nftables transaction (the
 * table must exist: net_host_setup). At most 65536 elements of each kind. */
int net_rules_sync (const char *table, const net_rules_t *r, skiff_error_t *err);

/* Removes the nftables table and the bridge; missing ones are fine. Leaves ip_forward as it is. */
int net_host_teardown (const net_config_t *cfg, skiff_error_t *err);

/* Connects the network namespace pinned at netns_path: a veth pair, host side `host_ifname`
 * (<= 15 chars) enslaved to the bridge and up, the other side created inside the namespace as
 * eth0 with addr/prefix and the MAC 0a:58:<addr> (stable across re-attach), up, with a default
 * route via the gateway; lo is brought up too.
 * An existing veth called host_ifname is deleted first (re-attach after a crash), as is a stale
 * eth0 in the namespace; an existing non-veth interface with that name is an error (EEXIST).
 * addr must lie inside the subnet and be neither the network, broadcast nor gateway address.
 * Needs net_host_setup's bridge (ENODEV otherwise). */
int net_group_attach (const net_config_t *cfg, const char *netns_path, const char *host_ifname, uint32_t addr,
                      skiff_error_t *err);

/* Deletes the veth `host_ifname` (both ends go); a missing interface is not an error, one that
 * is not a veth is (EEXIST, left alone). */
int net_group_detach (const char *host_ifname, skiff_error_t *err);

/* Lists the host's interface names that start with prefix (NULL-terminated, sorted as the kernel
 * lists them; free with skiff_strv_free). At most 65536 names. */
int net_list_ifaces (const char *prefix, char ***names, skiff_error_t *err);

/* Parses "10.88.0.0/16" into subnet and prefix (host order). Fails (EINVAL) on anything else:
 * missing or extra parts, leading zeros, host bits set, prefix outside 8..30. */
int net_parse_cidr (const char *s, uint32_t *subnet, int *prefix, skiff_error_t *err);

/* Formats a host-order IPv4 address as dotted quad into buf (>= 16 bytes); returns buf. */
const char *net_format_ip (uint32_t addr, char *buf);

#endif
