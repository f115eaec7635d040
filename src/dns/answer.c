/* answer.c - skiff's authoritative answers: the immutable record set (built and checked from the
 * caller's zones and records, with per-zone serials) and the pure function that turns one query
 * into an answer, both over ldns's packet types. */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "dns/dns_internal.h"

/* The UDP size skiff advertises in its EDNS answers (no fragmentation on common paths). */
#define EDNS_ADVERTISED 1232
/* SOA timers of the synthesized SOA: refresh, retry, expire. */
#define SOA_TIMERS "3600 600 1209600"

static void
set_freep (dns_set_t **p)
{
  dns_set_free (*p);
  *p = NULL;
}
#define cleanup_set __attribute__ ((cleanup (set_freep)))

void
dns_set_free (dns_set_t *s)
{
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n_zones; i++)
    {
      free (s->zones[i].name);
      free (s->zones[i].clients);
      free (s->zones[i].recs);
    }
  for (size_t i = 0; i < s->n_records; i++)
    {
      free (s->records[i].name);
      free (s->records[i].value);
    }
  free (s->zones);
  free (s->records);
  free (s->names);
  free (s);
}

/* The index of the zone named exactly name, or -1. */
static long
zone_index (const dns_set_t *s, const char *name)
{
  size_t lo = 0, hi = s->n_zones;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp (s->zones[mid].name, name);
      if (c == 0)
        return (long)mid;
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return -1;
}

/* The index of the longest zone holding name (lowercase, no trailing dot), or -1. */
static long
find_zone (const dns_set_t *s, const char *name)
{
  for (const char *p = name; p; p = dns_name_parent (p))
    {
      long i = zone_index (s, p);
      if (i >= 0)
        return i;
    }
  return -1;
}

static int
zone_cmp (const void *a, const void *b)
{
  return strcmp (((const dns_zone_entry_t *)a)->name, ((const dns_zone_entry_t *)b)->name);
}

static int
record_cmp (const void *a, const void *b)
{
  const dns_record_entry_t *x = a, *y = b;
  int c = strcmp (x->name, y->name);
  if (c == 0)
    c = (int)x->type - (int)y->type;
  return c ? c : strcmp (x->value, y->value);
}

static int
name_cmp (const void *a, const void *b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* The canonical form of a record's value, or NULL when it does not parse. */
static char *
canonical_value (dns_type_t type, const char *value)
{
  if (value == NULL)
    return NULL;
  if (type == DNS_TYPE_A)
    {
      struct in_addr a;
      char buf[INET_ADDRSTRLEN];
      if (inet_pton (AF_INET, value, &a) != 1 || inet_ntop (AF_INET, &a, buf, sizeof buf) == NULL)
        return NULL;
      return skiff_strdup (buf);
    }
  if (type == DNS_TYPE_PTR && dns_valid_name (value))
    return skiff_ascii_lower (skiff_strdup (value));
  return NULL;
}

static int
add_zones (dns_set_t *s, const dns_zone_t *zones, size_t n_zones, skiff_error_t *err)
{
  for (size_t i = 0; i < n_zones; i++)
    {
      const dns_zone_t *z = &zones[i];
      if (!dns_valid_name (z->name))
        return skiff_error_set (err, EINVAL, "zone `%.64s` is not a valid DNS name", z->name ? z->name : "");
      if (z->n_clients > DNS_MAX_CLIENT_NETS || (z->n_clients && z->clients == NULL))
        return skiff_error_set (err, EINVAL, "zone `%s`: at most %d client networks", z->name, DNS_MAX_CLIENT_NETS);
      for (size_t k = 0; k < z->n_clients; k++)
        if (z->clients[k].prefix < 0 || z->clients[k].prefix > 32)
          return skiff_error_set (err, EINVAL, "zone `%s`: client prefix /%d is not in 0..32", z->name,
                                  z->clients[k].prefix);
      dns_zone_entry_t *e = &s->zones[s->n_zones++];
      e->name = skiff_ascii_lower (skiff_strdup (z->name));
      e->ttl = z->ttl;
      if (z->n_clients)
        {
          e->clients = calloc (z->n_clients, sizeof (dns_net_t));
          if (e->clients == NULL)
            return skiff_error_set (err, ENOMEM, "DNS zones");
          memcpy (e->clients, z->clients, z->n_clients * sizeof (dns_net_t));
          e->n_clients = z->n_clients;
        }
    }
  qsort (s->zones, s->n_zones, sizeof *s->zones, zone_cmp);
  for (size_t i = 1; i < s->n_zones; i++)
    if (strcmp (s->zones[i - 1].name, s->zones[i].name) == 0)
      return skiff_error_set (err, EINVAL, "zone `%s` is listed twice", s->zones[i].name);
  return 0;
}

static int
add_records (dns_set_t *s, const dns_record_t *records, size_t n_records, skiff_error_t *err)
{
  for (size_t i = 0; i < n_records; i++)
    {
      const dns_record_t *r = &records[i];
      if (!dns_valid_name (r->name))
        return skiff_error_set (err, EINVAL, "record `%.64s` is not a valid DNS name", r->name ? r->name : "");
      cleanup_free char *name = skiff_ascii_lower (skiff_strdup (r->name));
      long zone = find_zone (s, name);
      if (zone < 0)
        return skiff_error_set (err, EINVAL, "record `%s` is outside every zone", name);
      if (r->type != DNS_TYPE_A && r->type != DNS_TYPE_PTR)
        return skiff_error_set (err, EINVAL, "record `%s`: type %d is not supported", name, (int)r->type);
      cleanup_free char *value = canonical_value (r->type, r->value);
      if (value == NULL)
        return skiff_error_set (err, EINVAL, "record `%s`: `%.64s` is not a valid %s value", name,
                                r->value ? r->value : "", r->type == DNS_TYPE_A ? "A" : "PTR");
      dns_record_entry_t *e = &s->records[s->n_records++];
      e->name = steal_pointer (&name);
      e->type = r->type;
      e->value = steal_pointer (&value);
      e->zone = (size_t)zone;
    }
  qsort (s->records, s->n_records, sizeof *s->records, record_cmp);
  /* duplicates answer once */
  size_t kept = 0;
  for (size_t i = 0; i < s->n_records; i++)
    {
      if (kept && record_cmp (&s->records[kept - 1], &s->records[i]) == 0)
        {
          free (s->records[i].name);
          free (s->records[i].value);
          continue;
        }
      s->records[kept++] = s->records[i];
    }
  s->n_records = kept;
  return 0;
}

/* Each zone's record indices, and every name that exists. */
static int
index_records (dns_set_t *s, skiff_error_t *err)
{
  size_t n_names = 0;
  for (size_t i = 0; i < s->n_records; i++)
    {
      s->zones[s->records[i].zone].n_recs++;
      for (const char *p = s->records[i].name; p; p = dns_name_parent (p))
        {
          n_names++;
          if (strcmp (p, s->zones[s->records[i].zone].name) == 0)
            break;
        }
    }
  for (size_t z = 0; z < s->n_zones; z++)
    {
      s->zones[z].recs = calloc (s->zones[z].n_recs + 1, sizeof (size_t));
      if (s->zones[z].recs == NULL)
        return skiff_error_set (err, ENOMEM, "DNS records");
      s->zones[z].n_recs = 0;
    }
  s->names = calloc (n_names + 1, sizeof (char *));
  if (s->names == NULL)
    return skiff_error_set (err, ENOMEM, "DNS records");
  for (size_t i = 0; i < s->n_records; i++)
    {
      dns_zone_entry_t *z = &s->zones[s->records[i].zone];
      z->recs[z->n_recs++] = i;
      for (const char *p = s->records[i].name; p; p = dns_name_parent (p))
        {
          s->names[s->n_names++] = p;
          if (strcmp (p, z->name) == 0)
            break;
        }
    }
  qsort (s->names, s->n_names, sizeof *s->names, name_cmp);
  size_t kept = 0;
  for (size_t i = 0; i < s->n_names; i++)
    if (kept == 0 || strcmp (s->names[kept - 1], s->names[i]) != 0)
      s->names[kept++] = s->names[i];
  s->n_names = kept;
  return 0;
}

int
dns_set_build (const dns_zone_t *zones, size_t n_zones, const dns_record_t *records, size_t n_records, dns_set_t **out,
               skiff_error_t *err)
{
  if (n_zones > DNS_MAX_ZONES || n_records > DNS_MAX_RECORDS)
    return skiff_error_set (err, E2BIG, "at most %d DNS zones and %d records", DNS_MAX_ZONES, DNS_MAX_RECORDS);
  if ((n_zones && zones == NULL) || (n_records && records == NULL))
    return skiff_error_set (err, EINVAL, "missing DNS zones or records");
  cleanup_set dns_set_t *s = calloc (1, sizeof *s);
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "DNS records");
  s->zones = calloc (n_zones + 1, sizeof *s->zones);
  s->records = calloc (n_records + 1, sizeof *s->records);
  if (s->zones == NULL || s->records == NULL)
    return skiff_error_set (err, ENOMEM, "DNS records");
  if (add_zones (s, zones, n_zones, err) < 0 || add_records (s, records, n_records, err) < 0
      || index_records (s, err) < 0)
    return -1;
  *out = steal_pointer (&s);
  return 0;
}

/* 1 when zone a of set x and zone b of set y have the same content. */
static int
zone_same (const dns_set_t *x, const dns_zone_entry_t *a, const dns_set_t *y, const dns_zone_entry_t *b)
{
  if (a->ttl != b->ttl || a->n_clients != b->n_clients || a->n_recs != b->n_recs)
    return 0;
  for (size_t i = 0; i < a->n_clients; i++)
    if (a->clients[i].addr != b->clients[i].addr || a->clients[i].prefix != b->clients[i].prefix)
      return 0;
  for (size_t i = 0; i < a->n_recs; i++)
    {
      const dns_record_entry_t *r = &x->records[a->recs[i]], *q = &y->records[b->recs[i]];
      if (r->type != q->type || strcmp (r->name, q->name) != 0 || strcmp (r->value, q->value) != 0)
        return 0;
    }
  return 1;
}

void
dns_set_serials (dns_set_t *next, const dns_set_t *prev, uint32_t *high)
{
  uint32_t fresh = 0;
  for (size_t i = 0; i < next->n_zones; i++)
    {
      dns_zone_entry_t *z = &next->zones[i];
      long pi = prev ? zone_index (prev, z->name) : -1;
      if (pi >= 0 && zone_same (next, z, prev, &prev->zones[pi]))
        {
          z->serial = prev->zones[pi].serial;
          continue;
        }
      if (fresh == 0)
        {
          uint32_t now = (uint32_t)time (NULL);
          fresh = now > *high ? now : *high + 1;
          if (fresh == 0)
            fresh = 1;
          *high = fresh;
        }
      z->serial = fresh;
    }
}

/* ---- answers ---- */

static void
pkt_freep (ldns_pkt **p)
{
  if (*p)
    ldns_pkt_free (*p);
  *p = NULL;
}
#define cleanup_pkt __attribute__ ((cleanup (pkt_freep)))

static ldns_rr *rr_from (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* An RR from its presentation format (the set's names and values are checked, so this parses). */
static ldns_rr *
rr_from (const char *fmt, ...)
{
  char text[640];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (text, sizeof text, fmt, ap);
  va_end (ap);
  ldns_rr *rr = NULL;
  if (n < 0 || (size_t)n >= sizeof text || ldns_rr_new_frm_str (&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
    return NULL;
  return rr;
}

static void
push (ldns_pkt *p, ldns_pkt_section sec, ldns_rr *rr)
{
  if (rr && !ldns_pkt_push_rr (p, sec, rr))
    ldns_rr_free (rr);
}

static ldns_rr *
soa_rr (const dns_zone_entry_t *z)
{
  return rr_from ("%s. %u IN SOA ns.%s. hostmaster.%s. %u " SOA_TIMERS " %u", z->name, z->ttl, z->name, z->name,
                  z->serial, z->ttl);
}

static int
client_allowed (const dns_zone_entry_t *z, uint32_t src)
{
  if (z->n_clients == 0 || (src >> 24) == 127)
    return 1;
  for (size_t i = 0; i < z->n_clients; i++)
    {
      int prefix = z->clients[i].prefix;
      uint32_t mask = prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : 0xffffffffu << (32 - prefix);
      if ((src & mask) == (z->clients[i].addr & mask))
        return 1;
    }
  return 0;
}

static int
name_exists (const dns_set_t *s, const char *name)
{
  return bsearch (&name, s->names, s->n_names, sizeof *s->names, name_cmp) != NULL;
}

static int
to_wire (ldns_pkt *p, uint8_t **out, size_t *outlen)
{
  uint8_t *w = NULL;
  size_t n = 0;
  if (p == NULL || ldns_pkt2wire (&w, p, &n) != LDNS_STATUS_OK)
    {
      free (w);
      return -1;
    }
  *out = w;
  *outlen = n;
  return 0;
}

/* An answer to query with its id, opcode, RD, question (when there is exactly one) and EDNS. */
static ldns_pkt *
reply_new (const ldns_pkt *query, ldns_pkt_rcode rcode, bool aa)
{
  ldns_pkt *p = ldns_pkt_new ();
  if (p == NULL)
    return NULL;
  ldns_pkt_set_id (p, ldns_pkt_id (query));
  ldns_pkt_set_qr (p, true);
  ldns_pkt_set_opcode (p, ldns_pkt_get_opcode (query));
  ldns_pkt_set_rd (p, ldns_pkt_rd (query));
  ldns_pkt_set_aa (p, aa);
  ldns_pkt_set_rcode (p, rcode);
  ldns_rr_list *qs = ldns_pkt_question (query);
  if (qs && ldns_rr_list_rr_count (qs) == 1)
    push (p, LDNS_SECTION_QUESTION, ldns_rr_clone (ldns_rr_list_rr (qs, 0)));
  if (ldns_pkt_edns (query))
    ldns_pkt_set_edns_udp_size (p, EDNS_ADVERTISED);
  return p;
}

static int
bare_reply (const ldns_pkt *query, ldns_pkt_rcode rcode, bool aa, bool tc, uint8_t **out, size_t *outlen)
{
  cleanup_pkt ldns_pkt *p = reply_new (query, rcode, aa);
  if (p == NULL)
    return -1;
  ldns_pkt_set_tc (p, tc);
  return to_wire (p, out, outlen);
}

/* FORMERR for a packet ldns cannot read, built from the header's id and opcode. */
static int
formerr (const uint8_t *q, uint8_t **out, size_t *outlen)
{
  cleanup_pkt ldns_pkt *p = ldns_pkt_new ();
  if (p == NULL)
    return -1;
  ldns_pkt_set_id (p, LDNS_ID_WIRE (q));
  ldns_pkt_set_qr (p, true);
  ldns_pkt_set_opcode (p, (ldns_pkt_opcode)LDNS_OPCODE_WIRE (q));
  ldns_pkt_set_rcode (p, LDNS_RCODE_FORMERR);
  return to_wire (p, out, outlen);
}

/* The question's name in lowercase presentation format without the trailing dot. */
static char *
question_name (const ldns_rr *question)
{
  char *name = ldns_rdf2str (ldns_rr_owner (question));
  if (name == NULL)
    return NULL;
  size_t n = strlen (name);
  if (n > 1 && name[n - 1] == '.')
    name[n - 1] = '\0';
  return skiff_ascii_lower (name);
}

/* Adds the answer records for qname/qtype in zone z; returns how many. */
static size_t
add_answers (ldns_pkt *p, const dns_set_t *set, const dns_zone_entry_t *z, const char *qname, ldns_rr_type qtype)
{
  size_t answers = 0;
  size_t lo = 0, hi = set->n_records;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      if (strcmp (set->records[mid].name, qname) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  for (size_t i = lo; i < set->n_records && strcmp (set->records[i].name, qname) == 0; i++)
    {
      const dns_record_entry_t *r = &set->records[i];
      int a = r->type == DNS_TYPE_A;
      if (qtype != LDNS_RR_TYPE_ANY && qtype != (a ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_PTR))
        continue;
      push (p, LDNS_SECTION_ANSWER,
            rr_from ("%s. %u IN %s %s%s", r->name, z->ttl, a ? "A" : "PTR", r->value, a ? "" : "."));
      answers++;
    }
  if (strcmp (qname, z->name) == 0)
    {
      if (qtype == LDNS_RR_TYPE_SOA || qtype == LDNS_RR_TYPE_ANY)
        {
          push (p, LDNS_SECTION_ANSWER, soa_rr (z));
          answers++;
        }
      if (qtype == LDNS_RR_TYPE_NS || qtype == LDNS_RR_TYPE_ANY)
        {
          push (p, LDNS_SECTION_ANSWER, rr_from ("%s. %u IN NS ns.%s.", z->name, z->ttl, z->name));
          answers++;
        }
    }
  return answers;
}

int
dns_answer (const dns_set_t *set, const uint8_t *q, size_t qlen, uint32_t src, size_t udp_max, uint8_t **out,
            size_t *outlen)
{
  *out = NULL;
  *outlen = 0;
  if (set == NULL || q == NULL || qlen < LDNS_HEADER_SIZE || qlen > DNS_MAX_MSG)
    return -1;
  if (LDNS_QR_WIRE (q))
    return -1; /* never answer an answer */
  cleanup_pkt ldns_pkt *query = NULL;
  if (ldns_wire2pkt (&query, q, qlen) != LDNS_STATUS_OK)
    return formerr (q, out, outlen);
  if (ldns_pkt_get_opcode (query) != LDNS_PACKET_QUERY)
    return bare_reply (query, LDNS_RCODE_NOTIMPL, false, false, out, outlen);
  ldns_rr_list *qs = ldns_pkt_question (query);
  if (qs == NULL || ldns_rr_list_rr_count (qs) != 1)
    return bare_reply (query, LDNS_RCODE_FORMERR, false, false, out, outlen);
  if (ldns_pkt_edns (query) && ldns_pkt_edns_version (query) > 0)
    {
      /* BADVERS (16): extended rcode 1, header rcode 0 */
      cleanup_pkt ldns_pkt *p = reply_new (query, LDNS_RCODE_NOERROR, false);
      if (p == NULL)
        return -1;
      ldns_pkt_set_edns_extended_rcode (p, 1);
      return to_wire (p, out, outlen);
    }
  size_t max = udp_max ? udp_max : DNS_MAX_MSG;
  if (udp_max && ldns_pkt_edns (query))
    {
      size_t edns = ldns_pkt_edns_udp_size (query);
      if (edns > DNS_MAX_UDP)
        edns = DNS_MAX_UDP;
      if (edns > max)
        max = edns;
    }
  ldns_rr *question = ldns_rr_list_rr (qs, 0);
  ldns_rr_type qtype = ldns_rr_get_type (question);
  cleanup_free char *qname = question_name (question);
  if (qname == NULL)
    return -1;
  /* zone transfers are not offered */
  int transfer = qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR;
  long zi = ldns_rr_get_class (question) == LDNS_RR_CLASS_IN && !transfer ? find_zone (set, qname) : -1;
  if (zi < 0 || !client_allowed (&set->zones[zi], src))
    {
      /* not skiff's to answer (for this client): a forwarder may ask another server */
      if (bare_reply (query, LDNS_RCODE_REFUSED, false, false, out, outlen) < 0)
        return -1;
      return transfer || ldns_rr_get_class (question) != LDNS_RR_CLASS_IN ? 0 : 1;
    }
  const dns_zone_entry_t *z = &set->zones[zi];
  cleanup_pkt ldns_pkt *p = reply_new (query, LDNS_RCODE_NOERROR, true);
  if (p == NULL)
    return -1;
  if (add_answers (p, set, z, qname, qtype) == 0)
    {
      /* no data: NOERROR when the name exists (records, the apex, or names below it), else
         NXDOMAIN; the SOA in authority either way (negative caching) */
      int exists = strcmp (qname, z->name) == 0 || name_exists (set, qname);
      ldns_pkt_set_rcode (p, exists ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN);
      push (p, LDNS_SECTION_AUTHORITY, soa_rr (z));
    }
  uint8_t *w = NULL;
  size_t n = 0;
  if (to_wire (p, &w, &n) < 0)
    return -1;
  if (n > max)
    {
      free (w);
      return bare_reply (query, LDNS_RCODE_NOERROR, true, true, out, outlen);
    }
  *out = w;
  *outlen = n;
  return 0;
}

int
dns_reply_servfail (const uint8_t *q, size_t qlen, uint8_t **out, size_t *outlen)
{
  *out = NULL;
  *outlen = 0;
  cleanup_pkt ldns_pkt *query = NULL;
  if (q == NULL || qlen < LDNS_HEADER_SIZE || ldns_wire2pkt (&query, q, qlen) != LDNS_STATUS_OK)
    return -1;
  cleanup_pkt ldns_pkt *p = reply_new (query, LDNS_RCODE_SERVFAIL, false);
  if (p == NULL)
    return -1;
  ldns_pkt_set_ra (p, true);
  return to_wire (p, out, outlen);
}

int
dns_same_question (const uint8_t *q, size_t qlen, const uint8_t *r, size_t rlen)
{
  cleanup_pkt ldns_pkt *query = NULL;
  cleanup_pkt ldns_pkt *reply = NULL;
  if (q == NULL || r == NULL || qlen < LDNS_HEADER_SIZE || rlen < LDNS_HEADER_SIZE || !LDNS_QR_WIRE (r)
      || LDNS_QR_WIRE (q) || LDNS_ID_WIRE (q) != LDNS_ID_WIRE (r))
    return 0;
  if (ldns_wire2pkt (&query, q, qlen) != LDNS_STATUS_OK || ldns_wire2pkt (&reply, r, rlen) != LDNS_STATUS_OK)
    return 0;
  ldns_rr_list *a = ldns_pkt_question (query), *b = ldns_pkt_question (reply);
  if (a == NULL || b == NULL || ldns_rr_list_rr_count (a) != 1 || ldns_rr_list_rr_count (b) != 1)
    return 0;
  ldns_rr *x = ldns_rr_list_rr (a, 0), *y = ldns_rr_list_rr (b, 0);
  return ldns_rr_get_type (x) == ldns_rr_get_type (y) && ldns_rr_get_class (x) == ldns_rr_get_class (y)
         && ldns_dname_compare (ldns_rr_owner (x), ldns_rr_owner (y)) == 0;
}
