/* Unit tests: the DNS module. Names (reverse names, validation, the label walk); the record set
 * (checks, duplicates, per-zone serials); the answer function (A/PTR/SOA/NS/ANY, NXDOMAIN and
 * NODATA with the SOA, REFUSED outside the zones and for sources outside a zone's client
 * networks, EDNS, truncation, NOTIMPL, FORMERR, garbage); the server over UDP and TCP on
 * 127.0.0.1 (atomic replacement, also under a concurrent writer, serials, TC over UDP and the full
 * answer over TCP, pipelining, the connection cap, garbage and a huge TCP length that must not
 * stop it, listeners on 127.0.0.2, bind conflicts) and the update client against it (NOTIMPL).
 * Traffic stays on loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"
#include "test.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

/* A query in wire format; edns: the EDNS UDP size (0: none); version: the EDNS version. */
static uint8_t *
query_wire_ex (const char *name, ldns_rr_type type, ldns_rr_class cls, uint16_t edns, uint8_t version, size_t *len)
{
  ldns_pkt *q = NULL;
  if (ldns_pkt_query_new_frm_str (&q, name, type, cls, LDNS_RD) != LDNS_STATUS_OK)
    return NULL;
  ldns_pkt_set_id (q, 4242);
  if (edns)
    {
      ldns_pkt_set_edns_udp_size (q, edns);
      ldns_pkt_set_edns_version (q, version);
    }
  uint8_t *w = NULL;
  if (ldns_pkt2wire (&w, q, len) != LDNS_STATUS_OK)
    w = NULL;
  ldns_pkt_free (q);
  return w;
}

static uint8_t *
query_wire (const char *name, ldns_rr_type type, size_t *len)
{
  return query_wire_ex (name, type, LDNS_RR_CLASS_IN, 0, 0, len);
}

/* Answers wire q from src through dns_answer; returns the parsed answer (or NULL). */
static ldns_pkt *
ask_wire (const dns_set_t *set, uint8_t *q, size_t len, uint32_t src, size_t udp_max, size_t *olen_out)
{
  size_t olen = 0;
  uint8_t *out = NULL;
  ldns_pkt *p = NULL;
  if (q && dns_answer (set, q, len, src, udp_max, &out, &olen) >= 0 && ldns_wire2pkt (&p, out, olen) != LDNS_STATUS_OK)
    p = NULL;
  if (olen_out)
    *olen_out = olen;
  free (q);
  free (out);
  return p;
}

static ldns_pkt *
ask (const dns_set_t *set, const char *name, ldns_rr_type type, uint32_t src, size_t udp_max)
{
  size_t len = 0;
  uint8_t *q = query_wire (name, type, &len);
  return ask_wire (set, q, len, src, udp_max, NULL);
}

static const char *
type_name (ldns_rr_type t)
{
  switch (t)
    {
    case LDNS_RR_TYPE_A:
      return "A";
    case LDNS_RR_TYPE_PTR:
      return "PTR";
    case LDNS_RR_TYPE_SOA:
      return "SOA";
    case LDNS_RR_TYPE_NS:
      return "NS";
    default:
      return "?";
    }
}

/* The section as "type value" lines (first rdata field), joined by ';'. */
static void
section (ldns_rr_list *l, char *buf, size_t n)
{
  buf[0] = '\0';
  size_t len = 0;
  for (size_t i = 0; l && i < ldns_rr_list_rr_count (l) && len < n; i++)
    {
      ldns_rr *rr = ldns_rr_list_rr (l, i);
      char *v = ldns_rdf2str (ldns_rr_rdf (rr, 0));
      len += (size_t)snprintf (buf + len, n - len, "%s%s %s", i ? ";" : "", type_name (ldns_rr_get_type (rr)),
                               v ? v : "");
      free (v);
    }
}

static void
answers (ldns_pkt *p, char *buf, size_t n)
{
  section (p ? ldns_pkt_answer (p) : NULL, buf, n);
}

static int
rcode_is (ldns_pkt *p, ldns_pkt_rcode rc)
{
  return p && ldns_pkt_qr (p) && ldns_pkt_get_rcode (p) == rc;
}

/* The SOA of the answer or authority section: field i of its rdata as a number. */
static uint32_t
soa_field (ldns_pkt *p, int i)
{
  ldns_rr_list *secs[2] = { p ? ldns_pkt_answer (p) : NULL, p ? ldns_pkt_authority (p) : NULL };
  for (int s = 0; s < 2; s++)
    for (size_t k = 0; secs[s] && k < ldns_rr_list_rr_count (secs[s]); k++)
      {
        ldns_rr *rr = ldns_rr_list_rr (secs[s], k);
        if (ldns_rr_get_type (rr) == LDNS_RR_TYPE_SOA)
          return ldns_rdf2native_int32 (ldns_rr_rdf (rr, (size_t)i));
      }
  return 0;
}

static void
test_names (void)
{
  char buf[32];
  CHECK_STR (dns_reverse_name (IP (10, 2, 3, 4), buf), "4.3.2.10.in-addr.arpa");
  CHECK_STR (dns_reverse_name (IP (255, 255, 255, 255), buf), "255.255.255.255.in-addr.arpa");
  CHECK_STR (dns_reverse_name (0, buf), "0.0.0.0.in-addr.arpa");
  CHECK (dns_valid_name ("web-one.westeurope.skiff.internal"));
  CHECK (dns_valid_name ("a"));
  CHECK (dns_valid_name ("A.Example.TEST"));
  CHECK (dns_valid_name ("1.2.3.in-addr.arpa"));
  CHECK (dns_valid_name ("xn--bcher-kva.example"));
  CHECK (!dns_valid_name (""));
  CHECK (!dns_valid_name ("."));
  CHECK (!dns_valid_name ("a..b"));
  CHECK (!dns_valid_name (".a"));
  CHECK (!dns_valid_name ("-a.b"));
  CHECK (!dns_valid_name ("a-.b"));
  CHECK (!dns_valid_name ("a.b-"));
  CHECK (!dns_valid_name ("a.b."));
  CHECK (!dns_valid_name ("a b"));
  CHECK (!dns_valid_name ("a_b.c"));
  CHECK (!dns_valid_name ("a\\.b"));
  CHECK (!dns_valid_name ("caf\xc3\xa9.test"));
  CHECK (!dns_valid_name (NULL));
  char label[70];
  memset (label, 'a', 64);
  label[64] = '\0';
  CHECK (!dns_valid_name (label));
  label[63] = '\0';
  CHECK (dns_valid_name (label));
  /* 253 characters is the most: 4 labels of 63 and dots = 255; trim to 253 and 254 */
  char longname[300];
  size_t n = 0;
  for (int i = 0; i < 4; i++)
    {
      memset (longname + n, 'b', 63);
      n += 63;
      longname[n++] = '.';
    }
  longname[253] = '\0';
  longname[252] = 'c'; /* no trailing dot, last label 60 long */
  CHECK (strlen (longname) == 253 && dns_valid_name (longname));
  longname[253] = 'c';
  longname[254] = '\0';
  CHECK (!dns_valid_name (longname));
  /* the label walk */
  CHECK_STR (dns_name_parent ("a.b.c"), "b.c");
  CHECK (dns_name_parent ("c") == NULL);
  CHECK_STR (dns_name_parent ("a\\.b.c"), "c");
  CHECK_STR (dns_name_parent ("a\\046b.c"), "c");
  CHECK_STR (dns_name_parent ("a\\\\.c"), "c");
  CHECK (dns_name_parent ("a\\") == NULL);
  CHECK (dns_name_parent ("a\\1") == NULL);
}

static size_t
zone_of (const dns_set_t *s, const char *name)
{
  for (size_t i = 0; i < s->n_zones; i++)
    if (strcmp (s->zones[i].name, name) == 0)
      return i;
  return 0;
}

static const dns_net_t vnet[] = { { IP (10, 1, 0, 0), 16 } };

static dns_set_t *
build (const dns_zone_t *z, size_t nz, const dns_record_t *r, size_t nr)
{
  dns_set_t *s = NULL;
  skiff_error_t err = NULL;
  if (dns_set_build (z, nz, r, nr, &s, &err) < 0)
    {
      fprintf (stderr, "set: %s\n", err->msg);
      skiff_error_release (&err);
    }
  return s;
}

static dns_set_t *
sample_set (void)
{
  dns_zone_t zones[] = { { "skiff.internal", 10, NULL, 0 },
                         { "corp.test", 30, vnet, 1 },
                         { "1.10.in-addr.arpa", 30, vnet, 1 },
                         { "sub.skiff.internal", 20, NULL, 0 } };
  dns_record_t recs[] = { { "web.local.skiff.internal", DNS_TYPE_A, "127.42.0.1" },
                          { "APP.corp.test", DNS_TYPE_A, "10.1.0.5" },
                          { "5.0.1.10.in-addr.arpa", DNS_TYPE_PTR, "App.Corp.Test" },
                          { "multi.local.skiff.internal", DNS_TYPE_A, "127.42.0.3" },
                          { "multi.local.skiff.internal", DNS_TYPE_A, "127.42.0.2" },
                          { "multi.local.skiff.internal", DNS_TYPE_A, "127.42.0.2" }, /* duplicate */
                          { "x.sub.skiff.internal", DNS_TYPE_A, "127.42.0.9" } };
  dns_set_t *s = build (zones, 4, recs, 7);
  uint32_t high = 0;
  if (s)
    dns_set_serials (s, NULL, &high);
  return s;
}

static void
test_set (void)
{
  /* invalid zones and records are refused */
  dns_set_t *bad = NULL;
  skiff_error_t err = NULL;
  dns_zone_t z[] = { { "skiff.internal", 10, NULL, 0 } };
  const dns_net_t wide[] = { { IP (10, 0, 0, 0), 33 } };
  dns_zone_t bad_prefix[] = { { "p.test", 10, wide, 1 } };
  dns_zone_t twice[] = { { "skiff.internal", 10, NULL, 0 }, { "SKIFF.internal", 10, NULL, 0 } };
  dns_zone_t bad_zone[] = { { "bad..zone", 10, NULL, 0 } };
  dns_zone_t null_zone[] = { { NULL, 10, NULL, 0 } };
  dns_record_t cases[][1] = { { { "web.example.com", DNS_TYPE_A, "1.2.3.4" } },
                              { { "web.skiff.internal", DNS_TYPE_A, "1.2.3" } },
                              { { "web.skiff.internal", DNS_TYPE_A, "1.2.3.4 ; x" } },
                              { { "web.skiff.internal", DNS_TYPE_A, NULL } },
                              { { "web.skiff.internal", DNS_TYPE_PTR, "target." } },
                              { { "web.skiff.internal", DNS_TYPE_PTR, "a b" } },
                              { { "web.skiff.internal", (dns_type_t)5, "x.skiff.internal" } },
                              { { "web..skiff.internal", DNS_TYPE_A, "1.2.3.4" } },
                              { { NULL, DNS_TYPE_A, "1.2.3.4" } },
                              { { "skiff.internal.evil", DNS_TYPE_A, "1.2.3.4" } },
                              { { "xskiff.internal", DNS_TYPE_A, "1.2.3.4" } } };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      int rc = dns_set_build (z, 1, cases[i], 1, &bad, &err);
      CHECK (rc < 0 && err && err->status == EINVAL);
      if (rc == 0)
        fprintf (stderr, "  case %zu accepted\n", i);
      skiff_error_release (&err);
    }
  CHECK (dns_set_build (bad_zone, 1, NULL, 0, &bad, &err) < 0);
  skiff_error_release (&err);
  CHECK (dns_set_build (null_zone, 1, NULL, 0, &bad, &err) < 0);
  skiff_error_release (&err);
  CHECK (dns_set_build (bad_prefix, 1, NULL, 0, &bad, &err) < 0);
  skiff_error_release (&err);
  CHECK (dns_set_build (twice, 2, NULL, 0, &bad, &err) < 0);
  skiff_error_release (&err);
  CHECK (dns_set_build (z, DNS_MAX_ZONES + 1, NULL, 0, &bad, &err) < 0 && err->status == E2BIG);
  skiff_error_release (&err);
  CHECK (bad == NULL);
  /* empty is fine */
  dns_set_t *empty = build (NULL, 0, NULL, 0);
  CHECK (empty && empty->n_zones == 0 && empty->n_records == 0);
  dns_set_free (empty);
  dns_set_free (NULL);

  /* duplicates answer once; values are canonical */
  dns_set_t *s = sample_set ();
  CHECK (s && s->n_records == 6);
  dns_set_free (s);

  /* serials: fresh for a new or changed zone, kept for an unchanged one, always growing */
  dns_zone_t zs[] = { { "a.test", 10, NULL, 0 }, { "b.test", 10, vnet, 1 } };
  dns_record_t r1[] = { { "x.a.test", DNS_TYPE_A, "10.0.0.1" }, { "x.b.test", DNS_TYPE_A, "10.0.0.1" } };
  dns_record_t r2[] = { { "x.b.test", DNS_TYPE_A, "10.0.0.1" }, { "X.A.test", DNS_TYPE_A, "10.0.0.1" } };
  dns_record_t r3[] = { { "x.a.test", DNS_TYPE_A, "10.0.0.2" }, { "x.b.test", DNS_TYPE_A, "10.0.0.1" } };
  uint32_t high = 0;
  dns_set_t *s1 = build (zs, 2, r1, 2), *s2 = build (zs, 2, r2, 2), *s3 = build (zs, 2, r3, 2);
  dns_zone_t zs4[] = { { "a.test", 10, NULL, 0 }, { "b.test", 11, vnet, 1 } };
  dns_set_t *s4 = build (zs4, 2, r3, 2);
  CHECK (s1 && s2 && s3 && s4);
  if (s1 && s2 && s3 && s4)
    {
      dns_set_serials (s1, NULL, &high);
      CHECK (s1->zones[0].serial > 0 && s1->zones[0].serial == s1->zones[1].serial && high == s1->zones[0].serial);
      dns_set_serials (s2, s1, &high); /* same content, other order and case */
      CHECK (s2->zones[0].serial == s1->zones[0].serial && s2->zones[1].serial == s1->zones[1].serial);
      dns_set_serials (s3, s2, &high); /* a.test changed */
      CHECK (s3->zones[0].serial > s2->zones[0].serial && s3->zones[1].serial == s2->zones[1].serial);
      dns_set_serials (s4, s3, &high); /* b.test's ttl changed */
      CHECK (s4->zones[0].serial == s3->zones[0].serial && s4->zones[1].serial > s3->zones[1].serial);
      CHECK (s4->zones[1].serial > s3->zones[0].serial);
    }
  dns_set_free (s1);
  dns_set_free (s2);
  dns_set_free (s3);
  dns_set_free (s4);
}

static void
test_answers (void)
{
  dns_set_t *s = sample_set ();
  CHECK (s != NULL);
  if (s == NULL)
    return;
  char buf[1024];
  const uint32_t lo = IP (127, 0, 0, 1), lo2 = IP (127, 9, 8, 7), inside = IP (10, 1, 2, 3), outside = IP (10, 9, 0, 1);
  ldns_pkt *p = ask (s, "web.local.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.1");
  CHECK (rcode_is (p, LDNS_RCODE_NOERROR) && ldns_pkt_aa (p) && ldns_pkt_id (p) == 4242 && ldns_pkt_rd (p)
         && !ldns_pkt_ra (p) && ldns_pkt_qdcount (p) == 1);
  CHECK (p && ldns_pkt_ancount (p) == 1 && ldns_rr_ttl (ldns_rr_list_rr (ldns_pkt_answer (p), 0)) == 10);
  ldns_pkt_free (p);
  /* case-insensitive, several values, sorted, the duplicate once */
  p = ask (s, "MULTI.Local.SKIFF.internal", LDNS_RR_TYPE_A, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2;A 127.42.0.3");
  ldns_pkt_free (p);
  /* unknown name: NXDOMAIN with the SOA in authority (minimum = zone ttl); known name, other
     type: NOERROR without answers, the SOA in authority */
  p = ask (s, "nothing.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  CHECK (rcode_is (p, LDNS_RCODE_NXDOMAIN) && ldns_pkt_aa (p) && ldns_pkt_ancount (p) == 0
         && ldns_pkt_nscount (p) == 1);
  section (p ? ldns_pkt_authority (p) : NULL, buf, sizeof buf);
  CHECK_STR (buf, "SOA ns.skiff.internal.");
  CHECK (soa_field (p, 6) == 10);
  ldns_pkt_free (p);
  p = ask (s, "web.local.skiff.internal", LDNS_RR_TYPE_MX, outside, 512);
  CHECK (rcode_is (p, LDNS_RCODE_NOERROR) && ldns_pkt_ancount (p) == 0 && ldns_pkt_nscount (p) == 1);
  ldns_pkt_free (p);
  p = ask (s, "web.local.skiff.internal", LDNS_RR_TYPE_PTR, outside, 512);
  CHECK (rcode_is (p, LDNS_RCODE_NOERROR) && ldns_pkt_ancount (p) == 0 && ldns_pkt_nscount (p) == 1);
  ldns_pkt_free (p);
  /* an empty non-terminal exists; a name below a record does not */
  p = ask (s, "local.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  CHECK (rcode_is (p, LDNS_RCODE_NOERROR) && ldns_pkt_ancount (p) == 0);
  ldns_pkt_free (p);
  p = ask (s, "deeper.web.local.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  CHECK (rcode_is (p, LDNS_RCODE_NXDOMAIN));
  ldns_pkt_free (p);
  /* an escaped dot is no label separator: still inside the zone, unknown */
  p = ask (s, "web\\.local.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  CHECK (rcode_is (p, LDNS_RCODE_NXDOMAIN));
  ldns_pkt_free (p);
  /* SOA and NS at the apex, with the zone's serial and timers */
  p = ask (s, "Skiff.Internal", LDNS_RR_TYPE_SOA, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK (strcasecmp (buf, "SOA ns.skiff.internal.") == 0); /* compression may take the question's case */
  CHECK (soa_field (p, 2) == s->zones[zone_of (s, "skiff.internal")].serial && soa_field (p, 2) > 0);
  CHECK (soa_field (p, 3) >= 600 && soa_field (p, 4) >= 60 && soa_field (p, 5) > soa_field (p, 3)
         && soa_field (p, 6) == 10);
  ldns_rr *soa = p && ldns_pkt_ancount (p) ? ldns_rr_list_rr (ldns_pkt_answer (p), 0) : NULL;
  char *rname = soa ? ldns_rdf2str (ldns_rr_rdf (soa, 1)) : NULL;
  CHECK (rname && strcasecmp (rname, "hostmaster.skiff.internal.") == 0);
  free (rname);
  ldns_pkt_free (p);
  p = ask (s, "skiff.internal", LDNS_RR_TYPE_NS, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "NS ns.skiff.internal.");
  ldns_pkt_free (p);
  p = ask (s, "skiff.internal", LDNS_RR_TYPE_A, outside, 512); /* the apex has no A: NODATA */
  CHECK (rcode_is (p, LDNS_RCODE_NOERROR) && ldns_pkt_ancount (p) == 0 && ldns_pkt_nscount (p) == 1);
  ldns_pkt_free (p);
  p = ask (s, "skiff.internal", LDNS_RR_TYPE_ANY, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "SOA ns.skiff.internal.;NS ns.skiff.internal.");
  ldns_pkt_free (p);
  p = ask (s, "multi.local.skiff.internal", LDNS_RR_TYPE_ANY, outside, 512);
  CHECK (p && ldns_pkt_ancount (p) == 2);
  ldns_pkt_free (p);
  /* the longest zone wins: a nested zone has its own SOA */
  p = ask (s, "x.sub.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  CHECK (p && ldns_pkt_ancount (p) == 1 && ldns_rr_ttl (ldns_rr_list_rr (ldns_pkt_answer (p), 0)) == 20);
  ldns_pkt_free (p);
  p = ask (s, "y.sub.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  section (p ? ldns_pkt_authority (p) : NULL, buf, sizeof buf);
  CHECK (rcode_is (p, LDNS_RCODE_NXDOMAIN));
  CHECK_STR (buf, "SOA ns.sub.skiff.internal.");
  ldns_pkt_free (p);
  /* outside every zone, or not class IN: REFUSED, no answers, not authoritative */
  const char *outside_names[] = { "example.com", "internal", "xskiff.internal", "skiff.internal.evil", "." };
  for (size_t i = 0; i < sizeof outside_names / sizeof outside_names[0]; i++)
    {
      p = ask (s, outside_names[i], LDNS_RR_TYPE_A, outside, 512);
      CHECK (rcode_is (p, LDNS_RCODE_REFUSED) && ldns_pkt_ancount (p) == 0 && !ldns_pkt_aa (p));
      ldns_pkt_free (p);
    }
  size_t len = 0;
  uint8_t *q = query_wire_ex ("web.local.skiff.internal", LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH, 0, 0, &len);
  p = ask_wire (s, q, len, outside, 512, NULL);
  CHECK (rcode_is (p, LDNS_RCODE_REFUSED));
  ldns_pkt_free (p);
  p = ask (s, "skiff.internal", LDNS_RR_TYPE_AXFR, lo, 0); /* no zone transfers */
  CHECK (rcode_is (p, LDNS_RCODE_REFUSED));
  ldns_pkt_free (p);
  /* a private zone answers its virtual network and any loopback source, nobody else */
  const uint32_t allowed[] = { inside, lo, lo2, IP (10, 1, 255, 255) };
  for (size_t i = 0; i < 4; i++)
    {
      p = ask (s, "app.corp.test", LDNS_RR_TYPE_A, allowed[i], 512);
      answers (p, buf, sizeof buf);
      CHECK_STR (buf, "A 10.1.0.5");
      ldns_pkt_free (p);
    }
  const uint32_t refused[] = { outside, IP (10, 2, 0, 1), IP (192, 168, 1, 1), IP (128, 0, 0, 1), 0 };
  for (size_t i = 0; i < 5; i++)
    {
      p = ask (s, "app.corp.test", LDNS_RR_TYPE_A, refused[i], 512);
      CHECK (rcode_is (p, LDNS_RCODE_REFUSED) && ldns_pkt_ancount (p) == 0 && ldns_pkt_nscount (p) == 0);
      ldns_pkt_free (p);
      /* no hint of existence either */
      p = ask (s, "nothing.corp.test", LDNS_RR_TYPE_A, refused[i], 512);
      CHECK (rcode_is (p, LDNS_RCODE_REFUSED));
      ldns_pkt_free (p);
    }
  p = ask (s, "5.0.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, inside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "PTR app.corp.test.");
  ldns_pkt_free (p);
  p = ask (s, "5.0.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, outside, 512);
  CHECK (rcode_is (p, LDNS_RCODE_REFUSED));
  ldns_pkt_free (p);
  /* an answer past the size limit is truncated (TC, no records); TCP (0) is not */
  p = ask (s, "multi.local.skiff.internal", LDNS_RR_TYPE_A, outside, 60);
  CHECK (p && ldns_pkt_tc (p) && ldns_pkt_ancount (p) == 0 && ldns_pkt_qdcount (p) == 1 && ldns_pkt_id (p) == 4242);
  ldns_pkt_free (p);
  p = ask (s, "multi.local.skiff.internal", LDNS_RR_TYPE_A, outside, 0);
  CHECK (p && !ldns_pkt_tc (p) && ldns_pkt_ancount (p) == 2);
  ldns_pkt_free (p);
  /* EDNS: the answer carries an OPT; version 1 gets BADVERS */
  q = query_wire_ex ("web.local.skiff.internal", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 1232, 0, &len);
  p = ask_wire (s, q, len, outside, 512, NULL);
  CHECK (p && ldns_pkt_edns (p) && ldns_pkt_edns_udp_size (p) > 512 && ldns_pkt_ancount (p) == 1);
  ldns_pkt_free (p);
  q = query_wire_ex ("web.local.skiff.internal", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 1232, 1, &len);
  p = ask_wire (s, q, len, outside, 512, NULL);
  CHECK (p && ldns_pkt_edns (p) && ldns_pkt_edns_extended_rcode (p) == 1 && ldns_pkt_ancount (p) == 0);
  ldns_pkt_free (p);
  /* other opcodes: NOTIMPL; two questions: FORMERR */
  q = query_wire ("web.local.skiff.internal", LDNS_RR_TYPE_A, &len);
  if (q)
    q[2] = (uint8_t)((q[2] & ~0x78) | (LDNS_PACKET_NOTIFY << 3));
  p = ask_wire (s, q, len, outside, 512, NULL);
  CHECK (rcode_is (p, LDNS_RCODE_NOTIMPL) && ldns_pkt_get_opcode (p) == LDNS_PACKET_NOTIFY);
  ldns_pkt_free (p);
  ldns_pkt *two = NULL;
  uint8_t *w = NULL;
  if (ldns_pkt_query_new_frm_str (&two, "a.skiff.internal", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0) == LDNS_STATUS_OK)
    {
      ldns_rr *extra = NULL;
      if (ldns_rr_new_question_frm_str (&extra, "b.skiff.internal. IN A", NULL, NULL) == LDNS_STATUS_OK)
        ldns_pkt_push_rr (two, LDNS_SECTION_QUESTION, extra);
      if (ldns_pkt2wire (&w, two, &len) != LDNS_STATUS_OK)
        w = NULL;
      ldns_pkt_free (two);
    }
  p = ask_wire (s, w, len, outside, 512, NULL);
  CHECK (rcode_is (p, LDNS_RCODE_FORMERR));
  ldns_pkt_free (p);

  /* garbage: too short is dropped, an unreadable body with a header gets FORMERR (same id),
     answers are never answered */
  uint8_t junk[40], *out = NULL;
  size_t olen = 0;
  memset (junk, 0xff, sizeof junk);
  CHECK (dns_answer (s, junk, 5, outside, 512, &out, &olen) < 0 && out == NULL);
  CHECK (dns_answer (s, junk, 0, outside, 512, &out, &olen) < 0);
  CHECK (dns_answer (s, NULL, 12, outside, 512, &out, &olen) < 0);
  CHECK (dns_answer (NULL, junk, sizeof junk, outside, 512, &out, &olen) < 0);
  junk[2] = 0x01;
  CHECK (dns_answer (s, junk, sizeof junk, outside, 512, &out, &olen) == 0 && olen >= 12 && (out[3] & 0xf) == 1
         && out[0] == 0xff && out[1] == 0xff && (out[2] & 0x80));
  free (out);
  out = NULL;
  junk[2] = 0x81;
  CHECK (dns_answer (s, junk, sizeof junk, outside, 512, &out, &olen) < 0);
  /* a header alone (no question): FORMERR */
  uint8_t hdr_only[12] = { 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  p = NULL;
  if (dns_answer (s, hdr_only, 12, outside, 512, &out, &olen) == 0 && ldns_wire2pkt (&p, out, olen) != LDNS_STATUS_OK)
    p = NULL;
  CHECK (rcode_is (p, LDNS_RCODE_FORMERR) && ldns_pkt_id (p) == 0x0102);
  ldns_pkt_free (p);
  free (out);
  out = NULL;
  /* random bytes, and a valid query with random bytes flipped and cut */
  size_t qlen = 0;
  uint8_t *good = query_wire ("multi.local.skiff.internal", LDNS_RR_TYPE_A, &qlen);
  int answered = 0, malformed = 0;
  for (int i = 0; i < 20000 && good; i++)
    {
      uint8_t r[128];
      size_t n;
      if (i % 2)
        {
          for (size_t k = 0; k < sizeof r; k++)
            r[k] = (uint8_t)rand ();
          n = (size_t)(rand () % (int)sizeof r);
        }
      else
        {
          memcpy (r, good, qlen);
          for (int f = 0; f < 1 + rand () % 4; f++)
            r[(size_t)rand () % qlen] ^= (uint8_t)(1u << (rand () % 8));
          n = (size_t)(rand () % 3 ? qlen : (size_t)rand () % (qlen + 1));
        }
      r[2] &= 0x7f;
      if (dns_answer (s, r, n, outside, 512, &out, &olen) >= 0)
        {
          answered++;
          malformed += !(olen >= 12 && olen <= 512 && (out[2] & 0x80));
        }
      free (out);
      out = NULL;
    }
  free (good);
  CHECK (answered > 0 && malformed == 0); /* still here */
  dns_set_free (s);
}

/* ---- the server ---- */

/* Sends query wire q to addr:port over UDP or TCP; the parsed answer or NULL. *raw_len gets the
 * answer's size. */
static ldns_pkt *
send_query (const char *addr, int port, int tcp, const uint8_t *q, size_t len, size_t *raw_len)
{
  int fd = socket (AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (fd < 0)
    return NULL;
  struct timeval tv = { tcp ? 2 : 1, 0 };
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  inet_pton (AF_INET, addr, &sa.sin_addr);
  ldns_pkt *p = NULL;
  uint8_t *buf = malloc (65536);
  ssize_t n = -1;
  if (buf && q && connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
    {
      if (tcp)
        {
          uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
          if (write (fd, hdr, 2) == 2 && write (fd, q, len) == (ssize_t)len && recv (fd, hdr, 2, MSG_WAITALL) == 2)
            n = recv (fd, buf, ((size_t)hdr[0] << 8) | hdr[1], MSG_WAITALL);
        }
      else
        /* UDP may lose a datagram (the garbage tests fill the server's receive buffer): retry
           like a resolver */
        for (int attempt = 0; attempt < 3 && n < 0; attempt++)
          if (send (fd, q, len, 0) == (ssize_t)len)
            n = recv (fd, buf, 65536, 0);
    }
  if (n > 0 && ldns_wire2pkt (&p, buf, (size_t)n) != LDNS_STATUS_OK)
    p = NULL;
  if (raw_len)
    *raw_len = n > 0 ? (size_t)n : 0;
  close (fd);
  free (buf);
  return p;
}

static ldns_pkt *
ask_server (const char *addr, int port, int tcp, const char *name, ldns_rr_type type)
{
  size_t len = 0;
  uint8_t *q = query_wire (name, type, &len);
  ldns_pkt *p = send_query (addr, port, tcp, q, len, NULL);
  free (q);
  return p;
}

static uint32_t
server_serial (int port, const char *zone)
{
  ldns_pkt *p = ask_server ("127.0.0.1", port, 0, zone, LDNS_RR_TYPE_SOA);
  uint32_t serial = soa_field (p, 2);
  ldns_pkt_free (p);
  return serial;
}

/* Expects "A <value>" for name over both transports. */
static void
expect_a (int port, const char *name, const char *want)
{
  char buf[256];
  for (int tcp = 0; tcp < 2; tcp++)
    {
      ldns_pkt *p = ask_server ("127.0.0.1", port, tcp, name, LDNS_RR_TYPE_A);
      answers (p, buf, sizeof buf);
      CHECK_STR (buf, want);
      ldns_pkt_free (p);
    }
}

typedef struct
{
  dns_server_t *s;
  int rounds;
  int failures;
} flipper_t;

static const dns_zone_t flip_zone[] = { { "flip.test", 5, NULL, 0 } };
static const dns_record_t flip_a[]
    = { { "x.flip.test", DNS_TYPE_A, "10.0.0.1" }, { "x.flip.test", DNS_TYPE_A, "10.0.0.2" } };
static const dns_record_t flip_b[]
    = { { "x.flip.test", DNS_TYPE_A, "10.0.0.3" }, { "x.flip.test", DNS_TYPE_A, "10.0.0.4" } };

static void *
flipper (void *arg)
{
  flipper_t *f = arg;
  for (int i = 0; i < f->rounds; i++)
    {
      skiff_error_t e = NULL;
      if (dns_server_set (f->s, flip_zone, 1, i % 2 ? flip_a : flip_b, 2, &e) < 0)
        {
          f->failures++;
          skiff_error_release (&e);
        }
    }
  return NULL;
}

static int
connect_tcp (int port)
{
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  struct timeval tv = { 2, 0 };
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd >= 0 && connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

static void
test_server (void)
{
  dns_server_t *s = NULL;
  skiff_error_t err = NULL;
  CHECK (dns_server_start ("127.0.0.1", 0, &s, &err) == 0);
  if (s == NULL)
    {
      fprintf (stderr, "start: %s\n", err ? err->msg : "?");
      skiff_error_release (&err);
      return;
    }
  int port = dns_server_port (s);
  CHECK (port > 0);
  /* no zones yet: REFUSED */
  ldns_pkt *p = ask_server ("127.0.0.1", port, 0, "a.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (rcode_is (p, LDNS_RCODE_REFUSED));
  ldns_pkt_free (p);
  dns_zone_t z[] = { { "skiff.internal", 10, NULL, 0 }, { "2.0.10.in-addr.arpa", 10, NULL, 0 } };
  dns_record_t r1[] = { { "a.skiff.internal", DNS_TYPE_A, "127.42.0.1" },
                        { "4.2.0.10.in-addr.arpa", DNS_TYPE_PTR, "a.skiff.internal" } };
  dns_record_t r2[] = { { "b.skiff.internal", DNS_TYPE_A, "127.42.0.2" },
                        { "4.2.0.10.in-addr.arpa", DNS_TYPE_PTR, "a.skiff.internal" } };
  CHECK (dns_server_set (s, z, 2, r1, 2, &err) == 0);
  expect_a (port, "a.skiff.internal", "A 127.42.0.1");
  expect_a (port, "A.SKIFF.INTERNAL", "A 127.42.0.1");
  char buf[4096];
  p = ask_server ("127.0.0.1", port, 1, "4.2.0.10.in-addr.arpa", LDNS_RR_TYPE_PTR);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "PTR a.skiff.internal.");
  ldns_pkt_free (p);
  p = ask_server ("127.0.0.1", port, 0, "skiff.internal", LDNS_RR_TYPE_NS);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "NS ns.skiff.internal.");
  ldns_pkt_free (p);
  p = ask_server ("127.0.0.1", port, 1, "nope.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (rcode_is (p, LDNS_RCODE_NXDOMAIN) && ldns_pkt_nscount (p) == 1 && soa_field (p, 2) > 0);
  ldns_pkt_free (p);
  p = ask_server ("127.0.0.1", port, 1, "example.com", LDNS_RR_TYPE_A);
  CHECK (rcode_is (p, LDNS_RCODE_REFUSED));
  ldns_pkt_free (p);
  uint32_t serial1 = server_serial (port, "skiff.internal"), rev1 = server_serial (port, "2.0.10.in-addr.arpa");
  CHECK (serial1 > 0 && rev1 > 0);
  /* the same content again: same serial */
  CHECK (dns_server_set (s, z, 2, r1, 2, &err) == 0);
  CHECK (server_serial (port, "skiff.internal") == serial1);
  /* replaced at once: the old name is gone, the new one there, the changed zone's serial grew,
     the other zone's did not */
  CHECK (dns_server_set (s, z, 2, r2, 2, &err) == 0);
  p = ask_server ("127.0.0.1", port, 0, "a.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (rcode_is (p, LDNS_RCODE_NXDOMAIN));
  ldns_pkt_free (p);
  expect_a (port, "b.skiff.internal", "A 127.42.0.2");
  uint32_t serial2 = server_serial (port, "skiff.internal");
  CHECK (serial2 > serial1);
  CHECK (server_serial (port, "2.0.10.in-addr.arpa") == rev1);
  /* an invalid set changes nothing */
  dns_record_t bad[] = { { "b.skiff.internal", DNS_TYPE_A, "127.42.0.7" }, { "x.example.com", DNS_TYPE_A, "1.1.1.1" } };
  CHECK (dns_server_set (s, z, 2, bad, 2, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  expect_a (port, "b.skiff.internal", "A 127.42.0.2");
  CHECK (server_serial (port, "skiff.internal") == serial2);

  /* many A records for one name: TC over UDP (with and without EDNS), all of them over TCP */
  enum
  {
    MANY = 300
  };
  dns_record_t many[MANY];
  char values[MANY][16];
  for (int i = 0; i < MANY; i++)
    {
      snprintf (values[i], sizeof values[i], "10.7.%d.%d", i / 200, i % 200 + 1);
      many[i] = (dns_record_t){ "many.skiff.internal", DNS_TYPE_A, values[i] };
    }
  CHECK (dns_server_set (s, z, 1, many, MANY, &err) == 0);
  size_t raw = 0, len = 0;
  p = ask_server ("127.0.0.1", port, 0, "many.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (p && ldns_pkt_tc (p) && ldns_pkt_ancount (p) == 0);
  ldns_pkt_free (p);
  uint8_t *q = query_wire_ex ("many.skiff.internal", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 65000, 0, &len);
  p = send_query ("127.0.0.1", port, 0, q, len, &raw);
  CHECK (p && ldns_pkt_tc (p) && raw <= DNS_MAX_UDP);
  ldns_pkt_free (p);
  free (q);
  p = ask_server ("127.0.0.1", port, 1, "many.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (p && !ldns_pkt_tc (p) && ldns_pkt_ancount (p) == MANY);
  ldns_pkt_free (p);
  CHECK (dns_server_set (s, z, 2, r2, 2, &err) == 0);

  /* several queries in one TCP write, answered in order on the same connection */
  int fd = connect_tcp (port);
  CHECK (fd >= 0);
  if (fd >= 0)
    {
      uint8_t msg[1024];
      size_t n = 0;
      const char *names[] = { "b.skiff.internal", "nope.skiff.internal", "b.skiff.internal" };
      for (int i = 0; i < 3; i++)
        {
          uint8_t *w = query_wire (names[i], LDNS_RR_TYPE_A, &len);
          if (w == NULL)
            continue;
          msg[n++] = (uint8_t)(len >> 8);
          msg[n++] = (uint8_t)len;
          memcpy (msg + n, w, len);
          n += len;
          free (w);
        }
      CHECK (write (fd, msg, n) == (ssize_t)n);
      for (int i = 0; i < 3; i++)
        {
          uint8_t hdr[2], body[4096];
          ldns_pkt *a = NULL;
          if (recv (fd, hdr, 2, MSG_WAITALL) == 2)
            {
              size_t alen = ((size_t)hdr[0] << 8) | hdr[1];
              if (alen <= sizeof body && recv (fd, body, alen, MSG_WAITALL) == (ssize_t)alen
                  && ldns_wire2pkt (&a, body, alen) != LDNS_STATUS_OK)
                a = NULL;
            }
          CHECK (rcode_is (a, i == 1 ? LDNS_RCODE_NXDOMAIN : LDNS_RCODE_NOERROR));
          ldns_pkt_free (a);
        }
      /* a length below a header closes the connection */
      uint8_t tiny[5] = { 0, 3, 1, 2, 3 };
      CHECK (write (fd, tiny, sizeof tiny) == (ssize_t)sizeof tiny);
      uint8_t c;
      CHECK (recv (fd, &c, 1, 0) == 0);
      close (fd);
    }

  /* garbage over UDP, truncated headers, a huge TCP length with a few bytes, a TCP connection
     that stops mid-message: the server keeps answering */
  fd = socket (AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  for (int i = 0; i < 500; i++)
    {
      uint8_t g[200];
      for (size_t k = 0; k < sizeof g; k++)
        g[k] = (uint8_t)rand ();
      sendto (fd, g, (size_t)(rand () % (i < 100 ? 12 : 200)), 0, (struct sockaddr *)&sa, sizeof sa);
    }
  close (fd);
  int huge = connect_tcp (port);
  if (huge >= 0)
    {
      uint8_t hdr[4] = { 0xff, 0xff, 1, 2 };
      CHECK (write (huge, hdr, 4) == 4);
    }
  for (int i = 0; i < 50; i++)
    {
      fd = connect_tcp (port);
      if (fd < 0)
        continue;
      uint8_t g[300];
      for (size_t k = 0; k < sizeof g; k++)
        g[k] = (uint8_t)rand ();
      g[0] = 0;
      g[1] = (uint8_t)(12 + rand () % 200);
      if (write (fd, g, (size_t)(rand () % (int)sizeof g)) < 0)
        CHECK (0);
      close (fd);
    }
  expect_a (port, "b.skiff.internal", "A 127.42.0.2");
  if (huge >= 0)
    close (huge);

  /* the connection cap: past 64 open connections a new one is closed without an answer; once
     they are gone, TCP answers again */
  int conns[64];
  int opened = 0;
  for (int i = 0; i < 64; i++)
    if ((conns[i] = connect_tcp (port)) >= 0)
      opened++;
  CHECK (opened == 64);
  usleep (200000);
  p = ask_server ("127.0.0.1", port, 1, "b.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (p == NULL);
  ldns_pkt_free (p);
  p = ask_server ("127.0.0.1", port, 0, "b.skiff.internal", LDNS_RR_TYPE_A); /* UDP still answers */
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2");
  ldns_pkt_free (p);
  for (int i = 0; i < 64; i++)
    if (conns[i] >= 0)
      close (conns[i]);
  usleep (200000);
  p = ask_server ("127.0.0.1", port, 1, "b.skiff.internal", LDNS_RR_TYPE_A);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2");
  ldns_pkt_free (p);

  /* a concurrent writer: every answer is one whole set, never a mix */
  flipper_t f = { s, 400, 0 };
  pthread_t th;
  CHECK (pthread_create (&th, NULL, flipper, &f) == 0);
  int mixed = 0, whole = 0;
  for (int i = 0; i < 400; i++)
    {
      p = ask_server ("127.0.0.1", port, i % 2, "x.flip.test", LDNS_RR_TYPE_A);
      answers (p, buf, sizeof buf);
      if (strcmp (buf, "A 10.0.0.1;A 10.0.0.2") == 0 || strcmp (buf, "A 10.0.0.3;A 10.0.0.4") == 0)
        whole++;
      else if (rcode_is (p, LDNS_RCODE_REFUSED)) /* before the first set */
        ;
      else
        mixed++;
      ldns_pkt_free (p);
    }
  pthread_join (th, NULL);
  CHECK (mixed == 0 && whole > 0 && f.failures == 0);

  /* another listener on another loopback address (same port), then gone at once */
  CHECK (dns_server_listen (s, "127.0.0.2", port, &err) == 0);
  CHECK (dns_server_listen (s, "127.0.0.2", port, &err) == 0); /* again: no-op */
  p = ask_server ("127.0.0.2", port, 0, "x.flip.test", LDNS_RR_TYPE_A);
  CHECK (p && ldns_pkt_ancount (p) == 2);
  ldns_pkt_free (p);
  p = ask_server ("127.0.0.2", port, 1, "x.flip.test", LDNS_RR_TYPE_A);
  CHECK (p && ldns_pkt_ancount (p) == 2);
  ldns_pkt_free (p);
  dns_server_unlisten (s, "127.0.0.2", port);
  dns_server_unlisten (s, "127.0.0.2", port); /* again: nothing */
  p = ask_server ("127.0.0.2", port, 1, "x.flip.test", LDNS_RR_TYPE_A);
  CHECK (p == NULL);
  ldns_pkt_free (p);
  /* the port is free again: listening anew works */
  CHECK (dns_server_listen (s, "127.0.0.2", port, &err) == 0);
  p = ask_server ("127.0.0.2", port, 0, "x.flip.test", LDNS_RR_TYPE_A);
  CHECK (p && ldns_pkt_ancount (p) == 2);
  ldns_pkt_free (p);
  dns_server_unlisten (s, "127.0.0.2", port);
  CHECK (dns_server_port (s) == port);
  /* bind failures are errors: a port another socket holds, a bad address */
  int holder = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in hs = { .sin_family = AF_INET, .sin_port = 0 };
  inet_pton (AF_INET, "127.0.0.3", &hs.sin_addr);
  socklen_t hl = sizeof hs;
  if (holder >= 0 && bind (holder, (struct sockaddr *)&hs, sizeof hs) == 0 && listen (holder, 1) == 0
      && getsockname (holder, (struct sockaddr *)&hs, &hl) == 0)
    {
      CHECK (dns_server_listen (s, "127.0.0.3", ntohs (hs.sin_port), &err) < 0 && err && err->status == EADDRINUSE);
      skiff_error_release (&err);
      dns_server_t *other = NULL;
      CHECK (dns_server_start ("127.0.0.3", ntohs (hs.sin_port), &other, &err) < 0 && other == NULL);
      skiff_error_release (&err);
    }
  if (holder >= 0)
    close (holder);
  int uholder = socket (AF_INET, SOCK_DGRAM, 0);
  inet_pton (AF_INET, "127.0.0.3", &hs.sin_addr);
  hs.sin_port = 0;
  hl = sizeof hs;
  if (uholder >= 0 && bind (uholder, (struct sockaddr *)&hs, sizeof hs) == 0
      && getsockname (uholder, (struct sockaddr *)&hs, &hl) == 0)
    {
      CHECK (dns_server_listen (s, "127.0.0.3", ntohs (hs.sin_port), &err) < 0 && err && err->status == EADDRINUSE);
      skiff_error_release (&err);
    }
  if (uholder >= 0)
    close (uholder);
  CHECK (dns_server_listen (s, "999.0.0.1", 53, &err) < 0 && err->status == EINVAL);
  skiff_error_release (&err);
  CHECK (dns_server_listen (s, "127.0.0.1", 70000, &err) < 0);
  skiff_error_release (&err);
  dns_server_unlisten (s, "not an address", 1);
  expect_a (port, "x.flip.test", "A 10.0.0.1;A 10.0.0.2"); /* the flipper's last set */

  /* the update client against this server: it does not do UPDATE (NOTIMPL) */
  dns_update_target_t t = { "127.0.0.1", port, "flip.test", "k", NULL, "c2tpZmYtdGVzdC1rZXktMDEyMzQ1Njc4OQ==", 2000 };
  dns_change_t ch[] = { { "x.flip.test", DNS_TYPE_A, "10.0.0.9", 60 } };
  CHECK (dns_update_send (&t, ch, 1, &err) < 0 && err && err->status == EPROTO && strstr (err->msg, "NOTIMPL"));
  skiff_error_release (&err);
  /* checked locally: names outside the zone, bad values, bad algorithm, too many changes */
  dns_change_t outside[] = { { "x.other.test", DNS_TYPE_A, "10.0.0.9", 60 } };
  CHECK (dns_update_send (&t, outside, 1, &err) < 0 && err->status == EINVAL);
  skiff_error_release (&err);
  dns_change_t badval[] = { { "x.flip.test", DNS_TYPE_A, "10.0.0.9 ; x", 60 } };
  CHECK (dns_update_send (&t, badval, 1, &err) < 0 && err->status == EINVAL);
  skiff_error_release (&err);
  dns_update_target_t t2 = t;
  t2.key_algorithm = "hmac-md4";
  CHECK (dns_update_send (&t2, ch, 1, &err) < 0 && err->status == EINVAL);
  skiff_error_release (&err);
  t2 = t;
  t2.key_secret = "not base64 !!";
  CHECK (dns_update_send (&t2, ch, 1, &err) < 0 && err->status == EINVAL);
  skiff_error_release (&err);
  CHECK (dns_update_send (&t, ch, 1025, &err) < 0 && err->status == E2BIG);
  skiff_error_release (&err);

  dns_server_stop (s);
  dns_server_stop (NULL);
  /* stopped: nothing answers there */
  p = ask_server ("127.0.0.1", port, 1, "x.flip.test", LDNS_RR_TYPE_A);
  CHECK (p == NULL);
  ldns_pkt_free (p);
}

int
main (void)
{
  /* the connection-cap check writes to connections the server closes on purpose */
  signal (SIGPIPE, SIG_IGN);
  srand (1234);
  test_names ();
  test_set ();
  test_answers ();
  test_server ();
  TEST_MAIN_END ();
}
