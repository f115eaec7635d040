/* dns_internal.h - the DNS module's private pieces: the record set the server answers from and
 * the pure function that answers one query (unit-tested without sockets). */
#ifndef SKIFF_DNS_DNS_INTERNAL_H
#define SKIFF_DNS_DNS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

typedef struct
{
  char *name;
  uint32_t ttl;
  dns_net_t *clients;
  size_t n_clients;
} dns_zone_entry_t;

typedef struct
{
  char *name; /* lowercase, no trailing dot */
  dns_type_t type;
  char *value;
  size_t zone; /* index into zones */
} dns_record_entry_t;

/* An immutable set of zones and records; records sorted by name, then type. */
typedef struct
{
  dns_zone_entry_t *zones;
  size_t n_zones;
  dns_record_entry_t *records;
  size_t n_records;
  uint32_t serial;
} dns_set_t;

/* Builds a set from the caller's zones and records (copied, checked). */
int dns_set_build (const dns_zone_t *zones, size_t n_zones, const dns_record_t *records, size_t n_records,
                   uint32_t serial, dns_set_t **out, skiff_error_t *err);

/* Frees a set; NULL is fine. */
void dns_set_free (dns_set_t *s);

/* Answers the query in wire format q (qlen bytes) from source address src (host order) with at
 * most max bytes (TC and no records past that). *out (malloc'd) gets the answer; returns 0, or -1
 * when the packet is not worth an answer (garbage that does not even parse as a header). */
int dns_answer (const dns_set_t *set, const uint8_t *q, size_t qlen, uint32_t src, size_t max, uint8_t **out,
                size_t *outlen);

#endif
