/* dns_internal.h - the DNS module's private pieces: the record set the server answers from, the
 * pure function that answers one query (unit-tested without sockets), and name helpers. */
#ifndef SKIFF_DNS_DNS_INTERNAL_H
#define SKIFF_DNS_DNS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

/* The largest DNS message (TCP), and the largest UDP answer skiff sends to an EDNS client. */
#define DNS_MAX_MSG 65535
#define DNS_MAX_UDP 4096

typedef struct
{
  char *name; /* lowercase, no trailing dot */
  uint32_t ttl;
  dns_net_t *clients;
  size_t n_clients;
  uint32_t serial;
  size_t *recs; /* indices of the zone's records in the set, in the set's order */
  size_t n_recs;
} dns_zone_entry_t;

typedef struct
{
  char *name; /* lowercase, no trailing dot */
  dns_type_t type;
  char *value; /* canonical: dotted quad, or lowercase name */
  size_t zone; /* index into zones */
} dns_record_entry_t;

/* An immutable set of zones and records. Zones sorted by name; records sorted by name, type,
 * value, without duplicates; names: every name that exists (record owners and their ancestors up
 * to their zone's apex), sorted, unique, pointing into the records' names. */
typedef struct
{
  dns_zone_entry_t *zones;
  size_t n_zones;
  dns_record_entry_t *records;
  size_t n_records;
  const char **names;
  size_t n_names;
} dns_set_t;

/* Builds a set from the caller's zones and records (copied, checked: EINVAL for an invalid zone
 * or record, a record outside every zone, a zone listed twice, a client prefix outside 0..32;
 * E2BIG past the limits). Every zone's serial is 0 until dns_set_serials. */
int dns_set_build (const dns_zone_t *zones, size_t n_zones, const dns_record_t *records, size_t n_records,
                   dns_set_t **out, skiff_error_t *err);

/* Gives each zone of next its serial: prev's serial for the same zone when its content (ttl,
 * clients, records) did not change, else max(now, *high + 1), which becomes *high. prev may be
 * NULL. */
void dns_set_serials (dns_set_t *next, const dns_set_t *prev, uint32_t *high);

/* Frees a set; NULL is fine. */
void dns_set_free (dns_set_t *s);

/* Answers the query in wire format q (qlen bytes) from source address src (host order). udp_max:
 * 0 for TCP (answers up to DNS_MAX_MSG), else the UDP limit without EDNS (512), raised to the
 * client's EDNS size up to DNS_MAX_UDP; an answer past the limit goes out as a bare TC answer.
 * *out (malloc'd) gets the answer; returns 0, 1 when the answer is a REFUSED because the name is
 * not skiff's to answer for this client (outside every zone, or in a zone this client may not
 * ask: a class IN query that a forwarder may pass on instead), or -1 when the packet gets no
 * answer (shorter than a header, itself an answer, or no memory). */
int dns_answer (const dns_set_t *set, const uint8_t *q, size_t qlen, uint32_t src, size_t udp_max, uint8_t **out,
                size_t *outlen);

/* A SERVFAIL answer (recursion available) to the query q, in *out (malloc'd); -1 when q does
 * not parse or on no memory. */
int dns_reply_servfail (const uint8_t *q, size_t qlen, uint8_t **out, size_t *outlen);

/* 1 when r is an answer to the query q: same id, one question each, with the same name (any
 * case), type and class; else 0. */
int dns_same_question (const uint8_t *q, size_t qlen, const uint8_t *r, size_t rlen);

/* The name one label up from a presentation-format name ("b.c" for "a.b.c"; escaped dots such
 * as "a\.b" are not separators), or NULL for a single label. Points into name. */
const char *dns_name_parent (const char *name);

#endif
