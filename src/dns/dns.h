/* dns.h - skiff's DNS: an authoritative server for the names skiff owns (DNS name labels of
 * public groups, private DNS zones of virtual networks) and an RFC 2136 client that pushes the
 * same records to another server, signed with TSIG.
 *
 * The wire format is ldns's: no DNS message is parsed or built by hand here. */
#ifndef SKIFF_DNS_DNS_H
#define SKIFF_DNS_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define DNS_MAX_NAME 253
#define DNS_MAX_ZONES 4096
#define DNS_MAX_RECORDS 262144
#define DNS_MAX_CLIENT_NETS 64
#define DNS_MAX_LISTENERS 256

typedef enum
{
  DNS_TYPE_A = 1,
  DNS_TYPE_PTR = 12,
} dns_type_t;

/* A client network: address and prefix length, host byte order. */
typedef struct
{
  uint32_t addr;
  int prefix;
} dns_net_t;

/* A zone skiff is authoritative for. Names are lowercase, without the trailing dot
 * ("westeurope.skiff.local", "contoso.internal", "2.242.10.in-addr.arpa"). Clients: when
 * n_clients is 0 anyone may ask; otherwise only sources inside one of the client networks, or a
 * loopback source (the host's own administrator), get answers; others get REFUSED. */
typedef struct
{
  const char *name;
  uint32_t ttl; /* for its records, the SOA minimum and negative answers */
  const dns_net_t *clients;
  size_t n_clients;
} dns_zone_t;

/* A record: name lowercase without trailing dot, inside one of the zones. A: value is a dotted
 * quad; PTR: value is the target name (without trailing dot). */
typedef struct
{
  const char *name;
  dns_type_t type;
  const char *value;
} dns_record_t;

/* ---- the authoritative server ---- */

typedef struct dns_server dns_server_t;

/* Starts the server on its own thread, listening on UDP and TCP at addr:port (IPv4 dotted quad;
 * port 0 picks a free port, see dns_server_port). It answers, authoritatively (AA), A, PTR, SOA
 * and NS queries for names in its zones (NOERROR with an empty answer and the SOA in authority
 * for other types of a known name, NXDOMAIN with the SOA for an unknown name in a zone) and
 * REFUSED for names outside its zones. Queries over UDP get answers truncated (TC) past 512 bytes
 * (or the EDNS size); TCP takes length-prefixed messages, several per connection, with an idle
 * timeout and a cap on connections. Malformed packets are dropped (FORMERR when the header can be
 * read). Starts with no zones. */
int dns_server_start (const char *addr, int port, dns_server_t **out, skiff_error_t *err);

/* The UDP/TCP port of the first listener (useful after port 0). */
int dns_server_port (dns_server_t *s);

/* Adds a listener (UDP and TCP) on addr:port; adding one that exists is a no-op. Used for the
 * bridges' gateway addresses, port 53, so containers reach the server. Safe from any thread. */
int dns_server_listen (dns_server_t *s, const char *addr, int port, skiff_error_t *err);

/* Removes the listener on addr:port, if there is one. Safe from any thread. Its sockets are
 * closed when this returns (the port can be bound again). */
void dns_server_unlisten (dns_server_t *s, const char *addr, int port);

/* Replaces all zones and records at once (copies them); queries see either the old or the new
 * set, never a mix. Records outside every zone, names that are not valid DNS names, or values
 * that do not parse are refused (EINVAL, nothing changes). Safe from any thread. A zone's SOA
 * serial grows when its content (ttl, clients, records) changes and stays when it does not. */
int dns_server_set (dns_server_t *s, const dns_zone_t *zones, size_t n_zones, const dns_record_t *records,
                    size_t n_records, skiff_error_t *err);

/* A server that forwarded queries go to: IPv4 address (host order) and port (53 when 0). */
typedef struct
{
  uint32_t addr;
  int port;
} dns_upstream_t;

#define DNS_MAX_UPSTREAMS 8
#define DNS_MAX_FORWARD_NETS 65536

/* Sets the servers that queries skiff does not answer are forwarded to (over UDP, tried in
 * order, 2 s each, SERVFAIL when none answers), as a container engine's embedded DNS does; n = 0
 * turns forwarding off. A query is forwarded only when its source is inside one of the client
 * networks (dns_server_set_forward_clients) and would otherwise be REFUSED: a name outside every
 * zone, or in a zone the client may not ask. The answer goes back unchanged but for its id. At most
 * DNS_MAX_UPSTREAMS (E2BIG); an upstream that is one of the server's own listeners is skipped.
 * Safe from any thread. */
int dns_server_set_upstreams (dns_server_t *s, const dns_upstream_t *upstreams, size_t n, skiff_error_t *err);

/* The number of upstreams set (0: no forwarding). Safe from any thread. */
size_t dns_server_n_upstreams (dns_server_t *s);

/* Sets who gets forwarding: sources inside one of clients but inside none of except (both up to
 * DNS_MAX_FORWARD_NETS, E2BIG past it; EINVAL for a prefix outside 0..32). Replaces the previous
 * lists. Safe from any thread. */
int dns_server_set_forward_clients (dns_server_t *s, const dns_net_t *clients, size_t n_clients,
                                    const dns_net_t *except, size_t n_except, skiff_error_t *err);

/* Stops the thread, closes every socket and frees the server. NULL is fine. */
void dns_server_stop (dns_server_t *s);

/* ---- RFC 2136 dynamic updates with TSIG ---- */

/* Where updates go and how they are signed. key_secret is base64 as in BIND's key files. */
typedef struct
{
  const char *server; /* IPv4 dotted quad */
  int port;           /* 53 when 0 */
  const char *zone;   /* the zone updated (the update's zone section) */
  const char *key_name;
  const char *key_algorithm; /* "hmac-sha256" (default when NULL), "hmac-sha512", "hmac-sha1" */
  const char *key_secret;
  int timeout_ms; /* per attempt; 3000 when 0 */
} dns_update_target_t;

/* One change: set (value != NULL: the RRset name/type becomes exactly this one value, ttl) or
 * delete (value == NULL: the whole RRset name/type goes). Both are idempotent. */
typedef struct
{
  const char *name;
  dns_type_t type;
  const char *value;
  uint32_t ttl;
} dns_change_t;

/* Sends the changes as one signed UPDATE message over TCP and waits for the answer, which must
 * be NOERROR and carry a valid TSIG from the same key. A set is "delete RRset, add RR", so
 * repeating a change is harmless. At most 1024 changes. Fails with the server's rcode in the
 * message (EPROTO), or the socket's errno. */
int dns_update_send (const dns_update_target_t *t, const dns_change_t *changes, size_t n, skiff_error_t *err);

/* ---- names ---- */

/* The reverse name of an IPv4 address (host byte order): "4.3.2.10.in-addr.arpa" for 10.2.3.4,
 * written into buf (>= 32 bytes); returns buf. */
const char *dns_reverse_name (uint32_t addr, char *buf);

/* 1 when s is a valid DNS name (labels of 1..63 letters, digits and '-', not starting or ending
 * with '-', total at most 253, no trailing dot), else 0. */
int dns_valid_name (const char *s);

#endif
