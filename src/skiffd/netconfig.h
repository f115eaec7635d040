/* netconfig.h - skiffd's networking options, parsed and checked. */
#ifndef SKIFF_SKIFFD_NETCONFIG_H
#define SKIFF_SKIFFD_NETCONFIG_H

#include <stdint.h>

#include "common/error.h"
#include "dns/dns.h"
#include "net/net.h"

/* The options as given on the command line. */
typedef struct
{
  const char *network;         /* CIDR or "none" */
  const char *bridge;          /* also the nftables table */
  const char *public_ips;      /* CIDR, FIRST-LAST or "host" */
  const char *host_address;    /* with "host": the address reported as ipAddress.ip */
  const char *dns_zone;        /* zone of the DNS name labels */
  const char *dns_listen;      /* ADDR[:PORT] or "none" */
  const char *dns_update;      /* ADDR[:PORT] of a server taking RFC 2136 updates, or NULL */
  const char *dns_update_zone; /* the zone updated there (default dns_zone) */
  const char *dns_update_key;  /* TSIG key file (tsig-keygen format) */
  const char *dns_forward;     /* ADDR[:PORT],... or "none"; NULL: the host's resolv.conf */
  const char *resolv_conf;     /* the host's resolv.conf (NULL: /etc/resolv.conf) */
} skiffd_netopts_t;

typedef struct
{
  int with_network;
  net_config_t net;
  uint32_t public_first, public_last; /* 0/0: publish on the host's addresses */
  uint32_t host_address;
  const char *dns_zone;
  int with_dns;
  char dns_addr[16];
  int dns_port;
  int with_push;
  dns_update_target_t push;
  char push_server[16];
  char *key_name, *key_algorithm, *key_secret; /* owned */
  dns_upstream_t upstreams[DNS_MAX_UPSTREAMS]; /* where containers' other queries go */
  size_t n_upstreams;
} skiffd_netconfig_t;

/* Checks the options and fills *out (which points into o: keep o alive). EINVAL with the
 * option's name in the message. */
int skiffd_netconfig_parse (const skiffd_netopts_t *o, skiffd_netconfig_t *out, skiff_error_t *err);

/* Frees what *c owns. */
void skiffd_netconfig_clear (skiffd_netconfig_t *c);

#endif
