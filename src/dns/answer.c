/* answer.c - skiff's authoritative answers: the record set and the function that turns a query
 * into an answer, both over ldns's packet types. */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "dns/dns_internal.h"

const char *
dns_reverse_name (uint32_t addr, char *buf)
{
  snprintf (buf, 32, "%u.%u.%u.%u.in-addr.arpa", addr & 0xff, (addr >> 8) & 0xff, (addr >> 16) & 0xff,
            (addr >> 24) & 0xff);
  return buf;
}

int
dns_valid_name (const char *s)
{
  if (s == NULL)
    return 0;
  size_t n = strnlen (s, DNS_MAX_NAME + 1);
  if (n == 0 || n > DNS_MAX_NAME)
    return 0;
  size_t label = 0;
  for (size_t i = 0; i <= n; i++)
    {
      char c = s[i];
      if (c == '.' || c == '\0')
        {
          if (label == 0 || label > 63 || s[i - 1] == '-')
            return 0;
          label = 0;
          continue;
        }
      int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok || (label == 0 && c == '-'))
        return 0;
      label++;
    }
  return 1;
}

/* 1 when name equals zone or lies below it (both lowercase). */
static int
in_zone (const char *name, const char *zone)
{
  size_t n = strlen (name), z = strlen (zone);
  if (n == z)
    return strcmp (name, zone) == 0;
  return n > z && name[n - z - 1] == '.' && strcmp (name + n - z, zone) == 0;
}

/* The index of the longest zone holding name, or -1. */
static long
find_zone (const dns_zone_entry_t *zones, size_t n, const char *name)
{
  long best = -1;
  size_t best_len = 0;
  for (size_t i = 0; i < n; i++)
    if (in_zone (name, zones[i].name) && (best < 0 || strlen (zones[i].name) > best_len))
      {
        best = (long)i;
        best_len = strlen (zones[i].name);
      }
  return best;
}

static int
record_cmp (const void *a, const void *b)
{
  const dns_record_entry_t *x = a, *y = b;
  int c = strcmp (x->name, y->name);
  return c ? c : (int)x->type - (int)y->type;
}

void
dns_set_free (dns_set_t *s)
{
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n_zones; i++)
    {
      free (s->zones[i].name);
      free (s->zones[i].clients);
    }
  for (size_t i = 0; i < s->n_records; i++)
    {
      free (s->records[i].name);
      free (s->records[i].value);
    }
  free (s->zones);
  free (s->records);
  free (s);
}

int
dns_set_build (const dns_zone_t *zones, size_t n_zones, const dns_record_t *records, size_t n_records, uint32_t serial,
               dns_set_t **out, skiff_error_t *err)
{
  if (n_zones > DNS_MAX_ZONES || n_records > DNS_MAX_RECORDS)
    return skiff_error_set (err, E2BIG, "at most %d zones and %d records", DNS_MAX_ZONES, DNS_MAX_RECORDS);
  dns_set_t *s = calloc (1, sizeof *s);
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "DNS records");
  s->serial = serial;
  s->zones = calloc (n_zones + 1, sizeof *s->zones);
  s->records = calloc (n_records + 1, sizeof *s->records);
  if (s->zones == NULL || s->records == NULL)
    {
      dns_set_free (s);
      return skiff_error_set (err, ENOMEM, "DNS records");
    }
  for (size_t i = 0; i < n_zones; i++)
    {
      if (!dns_valid_name (zones[i].name) || zones[i].n_clients > DNS_MAX_CLIENT_NETS)
        {
          dns_set_free (s);
          return skiff_error_set (err, EINVAL, "zone `%.64s` is not a valid DNS name",
                                  zones[i].name ? zones[i].name : "");
        }
      dns_zone_entry_t *z = &s->zones[s->n_zones++];
      z->name = skiff_ascii_lower (skiff_strdup (zones[i].name));
      z->ttl = zones[i].ttl;
      if (zones[i].n_clients)
        {
          z->clients = calloc (zones[i].n_clients, sizeof (dns_net_t));
          if (z->clients == NULL)
            abort ();
          memcpy (z->clients, zones[i].clients, zones[i].n_clients * sizeof (dns_net_t));
          z->n_clients = zones[i].n_clients;
        }
    }
  for (size_t i = 0; i < n_records; i++)
    {
      const dns_record_t *r = &records[i];
      cleanup_free char *name = r->name ? skiff_ascii_lower (skiff_strdup (r->name)) : NULL;
      long zone = name && dns_valid_name (name) ? find_zone (s->zones, s->n_zones, name) : -1;
      struct in_addr a;
      int value_ok = r->value
                     && ((r->type == DNS_TYPE_A && inet_pton (AF_INET, r->value, &a) == 1)
                         || (r->type == DNS_TYPE_PTR && dns_valid_name (r->value)));
      if (zone < 0 || !value_ok)
        {
          dns_set_free (s);
          return skiff_error_set (err, EINVAL, "record `%.64s` (%d `%.64s`) is invalid or outside the zones",
                                  r->name ? r->name : "", (int)r->type, r->value ? r->value : "");
        }
      dns_record_entry_t *e = &s->records[s->n_records++];
      e->name = steal_pointer (&name);
      e->type = r->type;
      e->value = skiff_strdup (r->value);
      e->zone = (size_t)zone;
    }
  qsort (s->records, s->n_records, sizeof *s->records, record_cmp);
  *out = s;
  return 0;
}

/* The first record of name (any type) in the sorted set, or -1. */
static long
first_of (const dns_set_t *s, const char *name)
{
  size_t lo = 0, hi = s->n_records;
  while (lo < hi)
    {
      size_t mid = (lo + hi) / 2;
      if (strcmp (s->records[mid].name, name) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo < s->n_records && strcmp (s->records[lo].name, name) == 0 ? (long)lo : -1;
}

static ldns_rr *rr_from (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static ldns_rr *
rr_from (const char *fmt, ...)
{
  char text[600];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (text, sizeof text, fmt, ap);
  va_end (ap);
  ldns_rr *rr = NULL;
  if (ldns_rr_new_frm_str (&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
    return NULL;
  return rr;
}

static void
push (ldns_pkt *p, ldns_pkt_section sec, ldns_rr *rr)
{
  if (rr)
    ldns_pkt_push_rr (p, sec, rr);
}

static ldns_rr *
soa_rr (const dns_set_t *s, const dns_zone_entry_t *z)
{
  return rr_from ("%s. %u IN SOA ns.%s. hostmaster.%s. %u 3600 600 86400 %u", z->name, z->ttl, z->name, z->name,
                  s->serial, z->ttl);
}

static int
client_allowed (const dns_zone_entry_t *z, uint32_t src)
{
  if (z->n_clients == 0 || (src >> 24) == 127)
    return 1;
  for (size_t i = 0; i < z->n_clients; i++)
    {
      uint32_t mask = z->clients[i].prefix <= 0 ? 0 : 0xffffffffu << (32 - z->clients[i].prefix);
      if ((src & mask) == (z->clients[i].addr & mask))
        return 1;
    }
  return 0;
}

static int
to_wire (ldns_pkt *p, uint8_t **out, size_t *outlen)
{
  uint8_t *w = NULL;
  size_t n = 0;
  if (ldns_pkt2wire (&w, p, &n) != LDNS_STATUS_OK)
    return -1;
  *out = w;
  *outlen = n;
  return 0;
}

/* An answer with only the header and the question: rcode, or a truncated reply. */
static int
bare_answer (const ldns_pkt *q, ldns_pkt_rcode rcode, int aa, int tc, uint8_t **out, size_t *outlen)
{
  ldns_pkt *p = ldns_pkt_new ();
  if (p == NULL)
    return -1;
  ldns_pkt_set_id (p, ldns_pkt_id (q));
  ldns_pkt_set_qr (p, true);
  ldns_pkt_set_opcode (p, ldns_pkt_get_opcode (q));
  ldns_pkt_set_rd (p, ldns_pkt_rd (q));
  ldns_pkt_set_aa (p, aa);
  ldns_pkt_set_tc (p, tc);
  ldns_pkt_set_rcode (p, rcode);
  ldns_rr_list *qs = ldns_pkt_question (q);
  if (qs && ldns_rr_list_rr_count (qs) > 0)
    ldns_pkt_push_rr (p, LDNS_SECTION_QUESTION, ldns_rr_clone (ldns_rr_list_rr (qs, 0)));
  int rc = to_wire (p, out, outlen);
  ldns_pkt_free (p);
  return rc;
}

int
dns_answer (const dns_set_t *set, const uint8_t *q, size_t qlen, uint32_t src, size_t max, uint8_t **out,
            size_t *outlen)
{
  *out = NULL;
  *outlen = 0;
  if (qlen < 12 || qlen > 65535)
    return -1;
  ldns_pkt *query = NULL;
  if (ldns_wire2pkt (&query, q, qlen) != LDNS_STATUS_OK)
    {
      /* a readable header gets FORMERR, copying its id */
      if (q[2] & 0x80)
        return -1; /* never answer an answer */
      uint8_t *w = calloc (1, 12);
      if (w == NULL)
        return -1;
      w[0] = q[0];
      w[1] = q[1];
      w[2] = 0x80 | (q[2] & 0x78);
      w[3] = LDNS_RCODE_FORMERR;
      *out = w;
      *outlen = 12;
      return 0;
    }
  int rc = -1;
  ldns_pkt *p = NULL;
  char *qname = NULL;
  if (ldns_pkt_qr (query))
    goto out;
  ldns_rr_list *qs = ldns_pkt_question (query);
  if (ldns_pkt_get_opcode (query) != LDNS_PACKET_QUERY)
    {
      rc = bare_answer (query, LDNS_RCODE_NOTIMPL, 0, 0, out, outlen);
      goto out;
    }
  if (qs == NULL || ldns_rr_list_rr_count (qs) != 1)
    {
      rc = bare_answer (query, LDNS_RCODE_FORMERR, 0, 0, out, outlen);
      goto out;
    }
  if (max == 512 && ldns_pkt_edns (query))
    {
      /* a UDP client that announced a larger buffer (EDNS) gets up to that, at most 4096 */
      size_t edns = ldns_pkt_edns_udp_size (query);
      max = edns < 512 ? 512 : edns > 4096 ? 4096 : edns;
    }
  ldns_rr *question = ldns_rr_list_rr (qs, 0);
  ldns_rr_type qtype = ldns_rr_get_type (question);
  qname = ldns_rdf2str (ldns_rr_owner (question));
  if (qname == NULL)
    goto out;
  size_t ql = strlen (qname);
  if (ql > 1 && qname[ql - 1] == '.')
    qname[ql - 1] = '\0';
  skiff_ascii_lower (qname);
  long zi = ldns_rr_get_class (question) == LDNS_RR_CLASS_IN ? find_zone (set->zones, set->n_zones, qname) : -1;
  if (zi < 0 || !client_allowed (&set->zones[zi], src))
    {
      rc = bare_answer (query, LDNS_RCODE_REFUSED, 0, 0, out, outlen);
      goto out;
    }
  const dns_zone_entry_t *z = &set->zones[zi];
  p = ldns_pkt_new ();
  if (p == NULL)
    goto out;
  ldns_pkt_set_id (p, ldns_pkt_id (query));
  ldns_pkt_set_qr (p, true);
  ldns_pkt_set_aa (p, true);
  ldns_pkt_set_rd (p, ldns_pkt_rd (query));
  ldns_pkt_set_opcode (p, LDNS_PACKET_QUERY);
  ldns_pkt_push_rr (p, LDNS_SECTION_QUESTION, ldns_rr_clone (question));
  int is_apex = strcmp (qname, z->name) == 0;
  long first = first_of (set, qname);
  size_t answers = 0;
  if (first >= 0)
    for (size_t i = (size_t)first; i < set->n_records && strcmp (set->records[i].name, qname) == 0; i++)
      {
        const dns_record_entry_t *r = &set->records[i];
        int want = qtype == LDNS_RR_TYPE_ANY || (qtype == LDNS_RR_TYPE_A && r->type == DNS_TYPE_A)
                   || (qtype == LDNS_RR_TYPE_PTR && r->type == DNS_TYPE_PTR);
        if (!want)
          continue;
        push (p, LDNS_SECTION_ANSWER,
              rr_from ("%s. %u IN %s %s%s", r->name, z->ttl, r->type == DNS_TYPE_A ? "A" : "PTR", r->value,
                       r->type == DNS_TYPE_PTR ? "." : ""));
        answers++;
      }
  if (is_apex && (qtype == LDNS_RR_TYPE_SOA || qtype == LDNS_RR_TYPE_ANY))
    {
      push (p, LDNS_SECTION_ANSWER, soa_rr (set, z));
      answers++;
    }
  if (is_apex && (qtype == LDNS_RR_TYPE_NS || qtype == LDNS_RR_TYPE_ANY))
    {
      push (p, LDNS_SECTION_ANSWER, rr_from ("%s. %u IN NS ns.%s.", z->name, z->ttl, z->name));
      answers++;
    }
  if (answers == 0)
    {
      /* the name exists (records, the apex, or names below it): NOERROR without data */
      int exists = first >= 0 || is_apex;
      for (size_t i = 0; i < set->n_records && !exists; i++)
        exists = in_zone (set->records[i].name, qname);
      ldns_pkt_set_rcode (p, exists ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN);
      push (p, LDNS_SECTION_AUTHORITY, soa_rr (set, z));
    }
  uint8_t *w = NULL;
  size_t n = 0;
  if (to_wire (p, &w, &n) < 0)
    goto out;
  if (n > max)
    {
      free (w);
      rc = bare_answer (query, LDNS_RCODE_NOERROR, 1, 1, out, outlen);
      goto out;
    }
  *out = w;
  *outlen = n;
  rc = 0;
out:
  free (qname);
  if (p)
    ldns_pkt_free (p);
  ldns_pkt_free (query);
  return rc;
}
