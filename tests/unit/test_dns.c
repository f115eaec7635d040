/* Unit tests: the DNS module. Names; the answer function (zones, A/PTR/SOA/NS, NXDOMAIN,
 * REFUSED, client restrictions, truncation, garbage); the server over UDP and TCP on 127.0.0.1
 * (atomic replacement, serial, listeners on another loopback address, garbage that must not stop
 * it). Traffic stays on loopback. */
#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"
#include "test.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

static uint8_t *
query_wire (const char *name, ldns_rr_type type, size_t *len)
{
  ldns_pkt *q = NULL;
  if (ldns_pkt_query_new_frm_str (&q, name, type, LDNS_RR_CLASS_IN, LDNS_RD) != LDNS_STATUS_OK)
    return NULL;
  ldns_pkt_set_id (q, 4242);
  uint8_t *w = NULL;
  ldns_pkt2wire (&w, q, len);
  ldns_pkt_free (q);
  return w;
}

/* Answers name/type from src through dns_answer; returns the parsed answer (or NULL). */
static ldns_pkt *
ask (const dns_set_t *set, const char *name, ldns_rr_type type, uint32_t src, size_t max)
{
  size_t len = 0, olen = 0;
  uint8_t *q = query_wire (name, type, &len), *out = NULL;
  ldns_pkt *p = NULL;
  if (q && dns_answer (set, q, len, src, max, &out, &olen) == 0)
    ldns_wire2pkt (&p, out, olen);
  free (q);
  free (out);
  return p;
}

/* The answer section as "type value" lines, joined by ';'. */
static void
answers (ldns_pkt *p, char *buf, size_t n)
{
  buf[0] = '\0';
  ldns_rr_list *l = p ? ldns_pkt_answer (p) : NULL;
  size_t len = 0;
  for (size_t i = 0; l && i < ldns_rr_list_rr_count (l); i++)
    {
      ldns_rr *rr = ldns_rr_list_rr (l, i);
      char *v = ldns_rdf2str (ldns_rr_rdf (rr, 0));
      len += (size_t)snprintf (buf + len, n - len, "%s%s %s", i ? ";" : "",
                               ldns_rr_get_type (rr) == LDNS_RR_TYPE_A     ? "A"
                               : ldns_rr_get_type (rr) == LDNS_RR_TYPE_PTR ? "PTR"
                               : ldns_rr_get_type (rr) == LDNS_RR_TYPE_SOA ? "SOA"
                               : ldns_rr_get_type (rr) == LDNS_RR_TYPE_NS  ? "NS"
                                                                           : "?",
                               v);
      free (v);
    }
}

static void
test_names (void)
{
  char buf[32];
  CHECK_STR (dns_reverse_name (IP (10, 2, 3, 4), buf), "4.3.2.10.in-addr.arpa");
  CHECK (dns_valid_name ("web-one.westeurope.skiff.internal"));
  CHECK (dns_valid_name ("a"));
  CHECK (!dns_valid_name (""));
  CHECK (!dns_valid_name ("a..b"));
  CHECK (!dns_valid_name ("-a.b"));
  CHECK (!dns_valid_name ("a-.b"));
  CHECK (!dns_valid_name ("a.b."));
  CHECK (!dns_valid_name ("a b"));
  CHECK (!dns_valid_name (NULL));
  char label[70];
  memset (label, 'a', 64);
  label[64] = '\0';
  CHECK (!dns_valid_name (label));
  label[63] = '\0';
  CHECK (dns_valid_name (label));
}

static dns_set_t *
sample_set (uint32_t serial)
{
  static const dns_net_t vnet[] = { { IP (10, 1, 0, 0), 16 } };
  dns_zone_t zones[]
      = { { "skiff.internal", 10, NULL, 0 }, { "corp.test", 30, vnet, 1 }, { "1.10.in-addr.arpa", 30, vnet, 1 } };
  dns_record_t recs[] = { { "web.local.skiff.internal", DNS_TYPE_A, "127.42.0.1" },
                          { "APP.corp.test", DNS_TYPE_A, "10.1.0.5" },
                          { "5.0.1.10.in-addr.arpa", DNS_TYPE_PTR, "app.corp.test" },
                          { "multi.local.skiff.internal", DNS_TYPE_A, "127.42.0.2" },
                          { "multi.local.skiff.internal", DNS_TYPE_A, "127.42.0.3" } };
  dns_set_t *s = NULL;
  skiff_error_t err = NULL;
  if (dns_set_build (zones, 3, recs, 5, serial, &s, &err) < 0)
    {
      fprintf (stderr, "set: %s\n", err->msg);
      skiff_error_release (&err);
    }
  return s;
}

static void
test_answers (void)
{
  dns_set_t *s = sample_set (7);
  CHECK (s != NULL);
  if (s == NULL)
    return;
  char buf[512];
  const uint32_t lo = IP (127, 0, 0, 1), inside = IP (10, 1, 2, 3), outside = IP (10, 9, 0, 1);
  ldns_pkt *p = ask (s, "web.local.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.1");
  CHECK (p && ldns_pkt_aa (p) && ldns_pkt_qr (p) && ldns_pkt_id (p) == 4242);
  ldns_pkt_free (p);
  /* case-insensitive, several values */
  p = ask (s, "MULTI.Local.SKIFF.internal", LDNS_RR_TYPE_A, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2;A 127.42.0.3");
  ldns_pkt_free (p);
  /* unknown name: NXDOMAIN with the SOA in authority; known name, other type: NOERROR empty */
  p = ask (s, "nothing.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  CHECK (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_NXDOMAIN && ldns_pkt_ancount (p) == 0 && ldns_pkt_nscount (p) == 1);
  ldns_pkt_free (p);
  p = ask (s, "web.local.skiff.internal", LDNS_RR_TYPE_MX, outside, 512);
  CHECK (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_NOERROR && ldns_pkt_ancount (p) == 0 && ldns_pkt_nscount (p) == 1);
  ldns_pkt_free (p);
  /* an empty non-terminal exists */
  p = ask (s, "local.skiff.internal", LDNS_RR_TYPE_A, outside, 512);
  CHECK (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_NOERROR);
  ldns_pkt_free (p);
  /* SOA and NS at the apex, with the set's serial */
  p = ask (s, "skiff.internal", LDNS_RR_TYPE_SOA, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "SOA ns.skiff.internal.");
  ldns_rr *soa = p && ldns_pkt_ancount (p) ? ldns_rr_list_rr (ldns_pkt_answer (p), 0) : NULL;
  CHECK (soa && ldns_rdf2native_int32 (ldns_rr_rdf (soa, 2)) == 7);
  ldns_pkt_free (p);
  p = ask (s, "skiff.internal", LDNS_RR_TYPE_NS, outside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "NS ns.skiff.internal.");
  ldns_pkt_free (p);
  /* outside every zone: REFUSED */
  p = ask (s, "example.com", LDNS_RR_TYPE_A, outside, 512);
  CHECK (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_REFUSED && ldns_pkt_ancount (p) == 0);
  ldns_pkt_free (p);
  /* a private zone answers its virtual network and the host's loopback, nobody else */
  p = ask (s, "app.corp.test", LDNS_RR_TYPE_A, inside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 10.1.0.5");
  ldns_pkt_free (p);
  p = ask (s, "app.corp.test", LDNS_RR_TYPE_A, lo, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 10.1.0.5");
  ldns_pkt_free (p);
  p = ask (s, "app.corp.test", LDNS_RR_TYPE_A, outside, 512);
  CHECK (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_REFUSED && ldns_pkt_ancount (p) == 0);
  ldns_pkt_free (p);
  p = ask (s, "5.0.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, inside, 512);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "PTR app.corp.test.");
  ldns_pkt_free (p);
  /* an answer past the size limit is truncated (TC, no records) */
  p = ask (s, "multi.local.skiff.internal", LDNS_RR_TYPE_A, outside, 60);
  CHECK (p && ldns_pkt_tc (p) && ldns_pkt_ancount (p) == 0);
  ldns_pkt_free (p);
  /* garbage: too short is dropped, an unreadable body with a header gets FORMERR, answers are
     never answered */
  uint8_t junk[40], *out = NULL;
  size_t olen = 0;
  memset (junk, 0xff, sizeof junk);
  CHECK (dns_answer (s, junk, 5, outside, 512, &out, &olen) < 0);
  junk[2] = 0x01;
  CHECK (dns_answer (s, junk, sizeof junk, outside, 512, &out, &olen) == 0 && olen == 12 && (out[3] & 0xf) == 1);
  free (out);
  out = NULL;
  junk[2] = 0x81;
  CHECK (dns_answer (s, junk, sizeof junk, outside, 512, &out, &olen) < 0);
  for (int i = 0; i < 2000; i++)
    {
      uint8_t r[64];
      for (size_t k = 0; k < sizeof r; k++)
        r[k] = (uint8_t)rand ();
      r[2] &= 0x7f;
      if (dns_answer (s, r, 12 + (size_t)(rand () % 52), outside, 512, &out, &olen) == 0)
        free (out);
      out = NULL;
    }
  CHECK (1); /* still here */
  dns_set_free (s);

  /* invalid records and zones are refused */
  dns_set_t *bad = NULL;
  skiff_error_t err = NULL;
  dns_zone_t z[] = { { "skiff.internal", 10, NULL, 0 } };
  dns_record_t outside_zone[] = { { "web.example.com", DNS_TYPE_A, "1.2.3.4" } };
  dns_record_t bad_value[] = { { "web.skiff.internal", DNS_TYPE_A, "1.2.3" } };
  dns_zone_t bad_zone[] = { { "bad..zone", 10, NULL, 0 } };
  CHECK (dns_set_build (z, 1, outside_zone, 1, 1, &bad, &err) < 0);
  skiff_error_release (&err);
  CHECK (dns_set_build (z, 1, bad_value, 1, 1, &bad, &err) < 0);
  skiff_error_release (&err);
  CHECK (dns_set_build (bad_zone, 1, NULL, 0, 1, &bad, &err) < 0);
  skiff_error_release (&err);
}

/* Sends a query to 127.0.0.x:port over UDP or TCP; the parsed answer or NULL. */
static ldns_pkt *
ask_server (const char *addr, int port, int tcp, const char *name, ldns_rr_type type)
{
  size_t len = 0;
  uint8_t *q = query_wire (name, type, &len);
  int fd = socket (AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  struct timeval tv = { 2, 0 };
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  inet_pton (AF_INET, addr, &sa.sin_addr);
  ldns_pkt *p = NULL;
  uint8_t buf[4096];
  ssize_t n = -1;
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
    {
      if (tcp)
        {
          uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
          if (write (fd, hdr, 2) == 2 && write (fd, q, len) == (ssize_t)len && recv (fd, hdr, 2, MSG_WAITALL) == 2)
            n = recv (fd, buf, ((size_t)hdr[0] << 8) | hdr[1], MSG_WAITALL);
        }
      else if (send (fd, q, len, 0) == (ssize_t)len)
        n = recv (fd, buf, sizeof buf, 0);
    }
  if (n > 0)
    ldns_wire2pkt (&p, buf, (size_t)n);
  close (fd);
  free (q);
  return p;
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
      return;
    }
  int port = dns_server_port (s);
  CHECK (port > 0);
  dns_zone_t z[] = { { "skiff.internal", 10, NULL, 0 } };
  dns_record_t r1[] = { { "a.skiff.internal", DNS_TYPE_A, "127.42.0.1" } };
  dns_record_t r2[] = { { "b.skiff.internal", DNS_TYPE_A, "127.42.0.2" } };
  CHECK (dns_server_set (s, z, 1, r1, 1, &err) == 0);
  char buf[256];
  for (int tcp = 0; tcp < 2; tcp++)
    {
      ldns_pkt *p = ask_server ("127.0.0.1", port, tcp, "a.skiff.internal", LDNS_RR_TYPE_A);
      answers (p, buf, sizeof buf);
      CHECK_STR (buf, "A 127.42.0.1");
      ldns_pkt_free (p);
    }
  ldns_pkt *p = ask_server ("127.0.0.1", port, 0, "skiff.internal", LDNS_RR_TYPE_SOA);
  uint32_t serial1 = p && ldns_pkt_ancount (p)
                         ? ldns_rdf2native_int32 (ldns_rr_rdf (ldns_rr_list_rr (ldns_pkt_answer (p), 0), 2))
                         : 0;
  ldns_pkt_free (p);
  /* replaced at once: the old name is gone, the new one there, the serial grew */
  CHECK (dns_server_set (s, z, 1, r2, 1, &err) == 0);
  p = ask_server ("127.0.0.1", port, 0, "a.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_NXDOMAIN);
  ldns_pkt_free (p);
  p = ask_server ("127.0.0.1", port, 1, "b.skiff.internal", LDNS_RR_TYPE_A);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2");
  ldns_pkt_free (p);
  p = ask_server ("127.0.0.1", port, 0, "skiff.internal", LDNS_RR_TYPE_SOA);
  uint32_t serial2 = p && ldns_pkt_ancount (p)
                         ? ldns_rdf2native_int32 (ldns_rr_rdf (ldns_rr_list_rr (ldns_pkt_answer (p), 0), 2))
                         : 0;
  CHECK (serial1 > 0 && serial2 > serial1);
  ldns_pkt_free (p);
  /* an invalid set changes nothing */
  dns_record_t bad[] = { { "x.example.com", DNS_TYPE_A, "1.1.1.1" } };
  CHECK (dns_server_set (s, z, 1, bad, 1, &err) < 0);
  skiff_error_release (&err);
  p = ask_server ("127.0.0.1", port, 0, "b.skiff.internal", LDNS_RR_TYPE_A);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2");
  ldns_pkt_free (p);
  /* garbage over UDP and a huge TCP length: the server keeps answering */
  int fd = socket (AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  for (int i = 0; i < 200; i++)
    {
      uint8_t g[100];
      for (size_t k = 0; k < sizeof g; k++)
        g[k] = (uint8_t)rand ();
      sendto (fd, g, (size_t)(rand () % 100), 0, (struct sockaddr *)&sa, sizeof sa);
    }
  close (fd);
  fd = socket (AF_INET, SOCK_STREAM, 0);
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
    {
      uint8_t hdr[4] = { 0xff, 0xff, 1, 2 };
      CHECK (write (fd, hdr, 4) == 4);
    }
  close (fd);
  p = ask_server ("127.0.0.1", port, 1, "b.skiff.internal", LDNS_RR_TYPE_A);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2");
  ldns_pkt_free (p);
  /* another listener on another loopback address, then gone */
  CHECK (dns_server_listen (s, "127.0.0.2", port, &err) == 0);
  CHECK (dns_server_listen (s, "127.0.0.2", port, &err) == 0); /* again: no-op */
  p = ask_server ("127.0.0.2", port, 0, "b.skiff.internal", LDNS_RR_TYPE_A);
  answers (p, buf, sizeof buf);
  CHECK_STR (buf, "A 127.42.0.2");
  ldns_pkt_free (p);
  dns_server_unlisten (s, "127.0.0.2", port);
  usleep (50000);
  p = ask_server ("127.0.0.2", port, 1, "b.skiff.internal", LDNS_RR_TYPE_A);
  CHECK (p == NULL);
  ldns_pkt_free (p);
  CHECK (dns_server_listen (s, "999.0.0.1", 53, &err) < 0);
  skiff_error_release (&err);
  dns_server_stop (s);
}

int
main (void)
{
  test_names ();
  test_answers ();
  test_server ();
  TEST_MAIN_END ();
}
