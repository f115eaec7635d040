/* Unit tests: DNS forwarding. The API's checks (E2BIG, EINVAL, NULL); dns_answer's "a forwarder may
 * pass this on" result; dns_same_question (ids, names in any case, types, QR, garbage); and two
 * servers on 127.0.0.1 (F forwards to U) over UDP and TCP: forwarded answers with the client's
 * id, local answers still authoritative, pipelining, forwarding off, the client and except
 * networks, an upstream that is F itself, an unreachable and a silent upstream (SERVFAIL, then the
 * next upstream) and spoofed answers from an upstream this test plays. TCP clients are forwarded
 * over TCP: a truncated UDP answer against the full TCP one, refused, silent and lying TCP
 * upstreams, a client that resets while it waits, and no fd left open once the servers stopped.
 * Traffic stays on 127.0.0.1. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"
#include "test.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define LO IP (127, 0, 0, 1)

/* A message in wire format: a query (qr 0) or an answer (qr 1, with an A record when a != NULL). */
static uint8_t *
msg_wire (const char *name, ldns_rr_type type, ldns_rr_class cls, uint16_t id, int qr, const char *a, size_t *len)
{
  ldns_pkt *p = NULL;
  uint8_t *w = NULL;
  if (ldns_pkt_query_new_frm_str (&p, name, type, cls, LDNS_RD) != LDNS_STATUS_OK)
    return NULL;
  ldns_pkt_set_id (p, id);
  ldns_pkt_set_qr (p, qr != 0);
  if (a)
    {
      char text[300];
      ldns_rr *rr = NULL;
      snprintf (text, sizeof text, "%s. 60 IN A %s", name, a);
      if (ldns_rr_new_frm_str (&rr, text, 0, NULL, NULL) == LDNS_STATUS_OK
          && !ldns_pkt_push_rr (p, LDNS_SECTION_ANSWER, rr))
        ldns_rr_free (rr);
    }
  if (ldns_pkt2wire (&w, p, len) != LDNS_STATUS_OK)
    w = NULL;
  ldns_pkt_free (p);
  return w;
}

static uint8_t *
query_wire (const char *name, ldns_rr_type type, uint16_t id, size_t *len)
{
  return msg_wire (name, type, LDNS_RR_CLASS_IN, id, 0, NULL, len);
}

static ldns_pkt *
parse (const uint8_t *b, ssize_t n)
{
  ldns_pkt *p = NULL;
  if (n <= 0 || ldns_wire2pkt (&p, b, (size_t)n) != LDNS_STATUS_OK)
    return NULL;
  return p;
}

/* A socket connected to 127.0.0.1:port (UDP or TCP), reads time out after timeout_s. */
static int
connect_to (int port, int tcp, int timeout_s)
{
  int fd = socket (AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  sa.sin_addr.s_addr = htonl (LO);
  struct timeval tv = { timeout_s, 0 };
  if (fd >= 0
      && (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0
          || connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0))
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* A UDP socket bound to 127.0.0.1 on a free port (*port); reads time out after timeout_s. */
static int
bind_udp (int *port, int timeout_s)
{
  int fd = socket (AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET };
  sa.sin_addr.s_addr = htonl (LO);
  socklen_t sl = sizeof sa;
  struct timeval tv = { timeout_s, 0 };
  if (fd >= 0
      && (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0
          || bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockname (fd, (struct sockaddr *)&sa, &sl) < 0))
    {
      close (fd);
      return -1;
    }
  *port = ntohs (sa.sin_port);
  return fd;
}

/* A TCP socket listening on 127.0.0.1 at *port (0: a free one, then *port); accept and reads
 * time out after timeout_s. */
static int
listen_tcp (int *port, int timeout_s)
{
  int fd = socket (AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)*port) };
  sa.sin_addr.s_addr = htonl (LO);
  socklen_t sl = sizeof sa;
  struct timeval tv = { timeout_s, 0 };
  if (fd >= 0
      && (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0
          || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
          || bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen (fd, 16) < 0
          || getsockname (fd, (struct sockaddr *)&sa, &sl) < 0))
    {
      close (fd);
      return -1;
    }
  *port = ntohs (sa.sin_port);
  return fd;
}

/* A UDP socket (returned) and a TCP listener (*tcp) on 127.0.0.1 at one free port (*port): an
 * upstream this test plays on both transports; -1 when no port was free for both. */
static int
bind_both (int *port, int *tcp, int timeout_s)
{
  for (int attempt = 0; attempt < 16; attempt++)
    {
      int p = 0, udp = bind_udp (&p, timeout_s);
      if (udp < 0)
        return -1;
      if ((*tcp = listen_tcp (&p, timeout_s)) >= 0)
        {
          *port = p;
          return udp;
        }
      close (udp); /* its TCP side is taken (another test's connection): another port */
    }
  return -1;
}

/* Writes all of b; MSG_NOSIGNAL: a peer that closed is a failed check, not a SIGPIPE. */
static int
send_all (int fd, const uint8_t *b, size_t len)
{
  return b && send (fd, b, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static int
tcp_send (int fd, const uint8_t *q, size_t len)
{
  uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
  return q && send_all (fd, hdr, 2) == 0 && send_all (fd, q, len) == 0 ? 0 : -1;
}

/* One length-prefixed message into buf (at most cap bytes); its length, or -1. */
static ssize_t
tcp_recv_raw (int fd, uint8_t *buf, size_t cap)
{
  uint8_t hdr[2];
  if (recv (fd, hdr, 2, MSG_WAITALL) != 2)
    return -1;
  size_t n = ((size_t)hdr[0] << 8) | hdr[1];
  if (n > cap || recv (fd, buf, n, MSG_WAITALL) != (ssize_t)n)
    return -1;
  return (ssize_t)n;
}

static ldns_pkt *
tcp_recv (int fd)
{
  uint8_t body[4096];
  ssize_t n = tcp_recv_raw (fd, body, sizeof body);
  return parse (body, n);
}

/* An answer to "name A" with id: n A records (10.0.i/256.i%256), the TC bit when tc. */
static uint8_t *
long_answer (const char *name, uint16_t id, int n, int tc, size_t *len)
{
  ldns_pkt *p = NULL;
  uint8_t *w = NULL;
  if (ldns_pkt_query_new_frm_str (&p, name, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD) != LDNS_STATUS_OK)
    return NULL;
  ldns_pkt_set_id (p, id);
  ldns_pkt_set_qr (p, 1);
  ldns_pkt_set_tc (p, tc != 0);
  for (int i = 0; i < n; i++)
    {
      char text[300];
      ldns_rr *rr = NULL;
      snprintf (text, sizeof text, "%s. 60 IN A 10.0.%d.%d", name, i / 256, i % 256);
      if (ldns_rr_new_frm_str (&rr, text, 0, NULL, NULL) == LDNS_STATUS_OK
          && !ldns_pkt_push_rr (p, LDNS_SECTION_ANSWER, rr))
        ldns_rr_free (rr);
    }
  if (ldns_pkt2wire (&w, p, len) != LDNS_STATUS_OK)
    w = NULL;
  ldns_pkt_free (p);
  return w;
}

/* Accepts F's connection to the TCP upstream l (this test plays it) and reads the query F sent
 * into q (*qlen bytes, -1 when none); the connection (reads time out after 10 s), or -1. */
static int
accept_query (int l, uint8_t *q, size_t cap, ssize_t *qlen)
{
  struct timeval tv = { 10, 0 };
  int c = accept (l, NULL, NULL);
  *qlen = -1;
  if (c >= 0 && setsockopt (c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0)
    *qlen = tcp_recv_raw (c, q, cap);
  return c;
}

/* The upstream id of a query F sent (0 when there is none). */
static uint16_t
id_of (const uint8_t *q, ssize_t qlen)
{
  return qlen >= 12 ? (uint16_t)((q[0] << 8) | q[1]) : 0;
}

/* 1 when the peer of c closed the connection (end of file or reset) before the read timeout. */
static int
closed_by_peer (int c)
{
  uint8_t b[512];
  ssize_t n;
  while ((n = recv (c, b, sizeof b, 0)) > 0)
    ;
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* 1 when nothing waits to be read on the UDP socket fd. */
static int
nothing_came (int fd)
{
  uint8_t b[512];
  return recv (fd, b, sizeof b, MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Which of the sockets a and b becomes readable first (0 or 1; -1 for both at once or none in
 * 10 s): tells which answer came first, without measuring time. */
static int
first_readable (int a, int b)
{
  struct pollfd pf[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
  if (poll (pf, 2, 10000) <= 0 || ((pf[0].revents != 0) == (pf[1].revents != 0)))
    return -1;
  return pf[0].revents ? 0 : 1;
}

/* Open file descriptors of this process (-1 when unknown). */
static int
count_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  int n = 0;
  if (d == NULL)
    return -1;
  for (struct dirent *e; (e = readdir (d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir (d);
  return n - 1; /* less d's own */
}

/* One query to F at port over UDP (sent once: a retry would be a second forward) or TCP. */
static ldns_pkt *
ask (int port, int tcp, const char *name, uint16_t id, int timeout_s)
{
  size_t len = 0;
  uint8_t *q = query_wire (name, LDNS_RR_TYPE_A, id, &len);
  int fd = connect_to (port, tcp, timeout_s);
  ldns_pkt *p = NULL;
  if (fd >= 0 && q)
    {
      if (tcp && tcp_send (fd, q, len) == 0)
        p = tcp_recv (fd);
      else if (!tcp && send (fd, q, len, 0) == (ssize_t)len)
        {
          uint8_t buf[4096];
          p = parse (buf, recv (fd, buf, sizeof buf, 0));
        }
    }
  if (fd >= 0)
    close (fd);
  free (q);
  return p;
}

/* p answers with rcode rc and id; with want != NULL, its one answer is "A want". */
static int
is_answer (ldns_pkt *p, uint16_t id, ldns_pkt_rcode rc, const char *want)
{
  if (p == NULL || !ldns_pkt_qr (p) || ldns_pkt_id (p) != id || ldns_pkt_get_rcode (p) != rc)
    return 0;
  if (want == NULL)
    return 1;
  if (ldns_pkt_ancount (p) != 1)
    return 0;
  ldns_rr *rr = ldns_rr_list_rr (ldns_pkt_answer (p), 0);
  char *v = ldns_rdf2str (ldns_rr_rdf (rr, 0));
  int ok = ldns_rr_get_type (rr) == LDNS_RR_TYPE_A && v && strcmp (v, want) == 0;
  free (v);
  return ok;
}

/* 1 when F answers its own name b.front.test (A 10.9.9.9, id) on the open TCP connection fd: the
 * connection still serves after a forward on it ended. */
static int
serves_own_zone (int fd, uint16_t id)
{
  size_t len = 0;
  uint8_t *q = query_wire ("b.front.test", LDNS_RR_TYPE_A, id, &len);
  ldns_pkt *p = q && tcp_send (fd, q, len) == 0 ? tcp_recv (fd) : NULL;
  int ok = is_answer (p, id, LDNS_RCODE_NOERROR, "10.9.9.9");
  ldns_pkt_free (p);
  free (q);
  return ok;
}

/* Asks and checks in one go; frees the answer. */
static int
ask_is (int port, int tcp, const char *name, uint16_t id, ldns_pkt_rcode rc, const char *want, int aa)
{
  ldns_pkt *p = ask (port, tcp, name, id, 10);
  int ok = is_answer (p, id, rc, want) && (aa < 0 || ldns_pkt_aa (p) == (aa != 0));
  ldns_pkt_free (p);
  return ok;
}

static dns_server_t *
start (const char *zone, const char *name, const char *value)
{
  dns_server_t *s = NULL;
  skiff_error_t err = NULL;
  dns_zone_t z[] = { { zone, 30, NULL, 0 } };
  dns_record_t r[] = { { name, DNS_TYPE_A, value } };
  if (dns_server_start ("127.0.0.1", 0, &s, &err) < 0 || dns_server_set (s, z, 1, r, 1, &err) < 0)
    {
      fprintf (stderr, "start: %s\n", err ? err->msg : "?");
      skiff_error_release (&err);
      dns_server_stop (s);
      return NULL;
    }
  return s;
}

static int
set_up (dns_server_t *s, const dns_upstream_t *u, size_t n)
{
  skiff_error_t err = NULL;
  int rc = dns_server_set_upstreams (s, u, n, &err);
  skiff_error_release (&err);
  return rc;
}

static int
set_clients (dns_server_t *s, const dns_net_t *c, size_t nc, const dns_net_t *x, size_t nx)
{
  skiff_error_t err = NULL;
  int rc = dns_server_set_forward_clients (s, c, nc, x, nx, &err);
  skiff_error_release (&err);
  return rc;
}

static void
test_api (void)
{
  dns_server_t *s = start ("api.test", "x.api.test", "10.0.0.1");
  CHECK (s != NULL);
  if (s == NULL)
    return;
  skiff_error_t err = NULL;
  dns_upstream_t nine[9];
  for (int i = 0; i < 9; i++)
    nine[i] = (dns_upstream_t){ IP (10, 0, 0, (uint32_t)i + 1), 53 };
  CHECK (dns_server_set_upstreams (s, nine, 9, &err) < 0 && err && err->status == E2BIG);
  skiff_error_release (&err);
  CHECK (dns_server_n_upstreams (s) == 0);
  CHECK (dns_server_set_upstreams (s, nine, 8, &err) == 0 && dns_server_n_upstreams (s) == 8);
  dns_upstream_t zero[] = { { LO, 53 }, { 0, 53 } };
  CHECK (dns_server_set_upstreams (s, zero, 2, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  dns_upstream_t port[] = { { LO, 70000 } };
  CHECK (dns_server_set_upstreams (s, port, 1, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  CHECK (dns_server_n_upstreams (s) == 8); /* a refused list changes nothing */
  CHECK (dns_server_set_upstreams (s, NULL, 0, &err) == 0 && dns_server_n_upstreams (s) == 0);
  dns_net_t wide[] = { { IP (10, 0, 0, 0), 33 } }, neg[] = { { IP (10, 0, 0, 0), -1 } };
  dns_net_t ok[] = { { IP (10, 0, 0, 0), 8 } };
  CHECK (dns_server_set_forward_clients (s, wide, 1, NULL, 0, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  CHECK (dns_server_set_forward_clients (s, ok, 1, neg, 1, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  CHECK (dns_server_set_forward_clients (s, ok, 1, ok, 1, &err) == 0);
  CHECK (dns_server_set_forward_clients (s, NULL, 0, NULL, 0, &err) == 0);
  CHECK (dns_server_set_upstreams (NULL, zero, 1, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  CHECK (dns_server_set_forward_clients (NULL, ok, 1, NULL, 0, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  CHECK (dns_server_n_upstreams (NULL) == 0);
  dns_server_stop (s);
}

/* dns_answer's return: 1 only for a class IN REFUSED that a forwarder may pass on. */
static int
answer_rc (const dns_set_t *set, const char *name, ldns_rr_type t, ldns_rr_class cls, uint32_t src,
           ldns_pkt_rcode *rcode)
{
  size_t len = 0, olen = 0;
  uint8_t *q = msg_wire (name, t, cls, 7, 0, NULL, &len), *out = NULL;
  int rc = q ? dns_answer (set, q, len, src, 512, &out, &olen) : -2;
  ldns_pkt *p = parse (out, (ssize_t)olen);
  *rcode = p ? ldns_pkt_get_rcode (p) : (ldns_pkt_rcode)99;
  ldns_pkt_free (p);
  free (q);
  free (out);
  return rc;
}

static void
test_answer_rc (void)
{
  const dns_net_t vnet[] = { { IP (10, 1, 0, 0), 16 } };
  dns_zone_t z[] = { { "open.test", 30, NULL, 0 }, { "vnet.test", 30, vnet, 1 } };
  dns_record_t r[] = { { "x.open.test", DNS_TYPE_A, "10.0.0.1" }, { "y.vnet.test", DNS_TYPE_A, "10.1.0.5" } };
  dns_set_t *set = NULL;
  skiff_error_t err = NULL;
  CHECK (dns_set_build (z, 2, r, 2, &set, &err) == 0);
  skiff_error_release (&err);
  if (set == NULL)
    return;
  uint32_t high = 0, out = IP (10, 2, 0, 1), in = IP (10, 1, 0, 9);
  dns_set_serials (set, NULL, &high);
  ldns_pkt_rcode rc;
  const ldns_rr_class IN = LDNS_RR_CLASS_IN;
  CHECK (answer_rc (set, "x.open.test", LDNS_RR_TYPE_A, IN, out, &rc) == 0 && rc == LDNS_RCODE_NOERROR);
  CHECK (answer_rc (set, "nope.open.test", LDNS_RR_TYPE_A, IN, out, &rc) == 0 && rc == LDNS_RCODE_NXDOMAIN);
  CHECK (answer_rc (set, "example.com", LDNS_RR_TYPE_A, IN, out, &rc) == 1 && rc == LDNS_RCODE_REFUSED);
  CHECK (answer_rc (set, "open.test.example", LDNS_RR_TYPE_MX, IN, LO, &rc) == 1 && rc == LDNS_RCODE_REFUSED);
  /* a zone whose clients exclude the source: 1; inside them or loopback: answered */
  CHECK (answer_rc (set, "y.vnet.test", LDNS_RR_TYPE_A, IN, out, &rc) == 1 && rc == LDNS_RCODE_REFUSED);
  CHECK (answer_rc (set, "y.vnet.test", LDNS_RR_TYPE_A, IN, in, &rc) == 0 && rc == LDNS_RCODE_NOERROR);
  CHECK (answer_rc (set, "y.vnet.test", LDNS_RR_TYPE_A, IN, LO, &rc) == 0 && rc == LDNS_RCODE_NOERROR);
  /* zone transfers and other classes: REFUSED, never forwarded */
  CHECK (answer_rc (set, "example.com", LDNS_RR_TYPE_AXFR, IN, out, &rc) == 0 && rc == LDNS_RCODE_REFUSED);
  CHECK (answer_rc (set, "open.test", LDNS_RR_TYPE_AXFR, IN, out, &rc) == 0 && rc == LDNS_RCODE_REFUSED);
  CHECK (answer_rc (set, "example.com", LDNS_RR_TYPE_IXFR, IN, out, &rc) == 0 && rc == LDNS_RCODE_REFUSED);
  CHECK (answer_rc (set, "version.bind", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH, out, &rc) == 0
         && rc == LDNS_RCODE_REFUSED);
  CHECK (answer_rc (set, "x.open.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH, out, &rc) == 0 && rc == LDNS_RCODE_REFUSED);
  dns_set_free (set);
}

static void
test_same_question (void)
{
  size_t ql = 0, l[9] = { 0 };
  uint8_t *q = query_wire ("a.up.test", LDNS_RR_TYPE_A, 100, &ql);
  uint8_t *r[9] = {
    msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 100, 1, "10.1.2.3", &l[0]), /* the answer */
    msg_wire ("A.Up.TEST", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 100, 1, NULL, &l[1]),       /* other case */
    msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 101, 1, "10.1.2.3", &l[2]), /* other id */
    msg_wire ("b.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 100, 1, "10.1.2.3", &l[3]), /* other name */
    msg_wire ("a.up.test", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, 100, 1, NULL, &l[4]),    /* other type */
    msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH, 100, 1, NULL, &l[5]),       /* other class */
    msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 100, 0, NULL, &l[6]),       /* QR=0 */
    msg_wire ("a.up.tes", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 100, 1, NULL, &l[7]),        /* a prefix */
    NULL,
  };
  uint8_t garbage[40] = { 0, 100, 0x80 };
  for (size_t i = 3; i < sizeof garbage; i++)
    garbage[i] = (uint8_t)(i * 37 + 11);
  CHECK (q && dns_same_question (q, ql, r[0], l[0]) == 1);
  CHECK (dns_same_question (q, ql, r[1], l[1]) == 1);
  for (int i = 2; i < 8; i++)
    CHECK (r[i] && dns_same_question (q, ql, r[i], l[i]) == 0);
  CHECK (dns_same_question (q, ql, garbage, sizeof garbage) == 0);
  CHECK (dns_same_question (q, ql, r[0], 11) == 0);   /* shorter than a header */
  CHECK (dns_same_question (q, ql, r[0], 20) == 0);   /* cut in the question */
  CHECK (dns_same_question (r[0], l[0], q, ql) == 0); /* the wrong way round */
  CHECK (dns_same_question (NULL, 0, r[0], l[0]) == 0 && dns_same_question (q, ql, NULL, 0) == 0);
  free (q);
  for (int i = 0; i < 9; i++)
    free (r[i]);
}

/* Forwarded, local and forwarded again, in one TCP write: answered in order with their ids. */
static void
pipelined (int port, const char *third, ldns_pkt_rcode third_rc, const char *third_a)
{
  int fd = connect_to (port, 1, 10);
  const char *names[] = { "a.up.test", "b.front.test", third };
  uint8_t msg[1024];
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    {
      size_t len = 0;
      uint8_t *w = query_wire (names[i], LDNS_RR_TYPE_A, (uint16_t)(500 + i), &len);
      if (w && n + 2 + len <= sizeof msg)
        {
          msg[n++] = (uint8_t)(len >> 8);
          msg[n++] = (uint8_t)len;
          memcpy (msg + n, w, len);
          n += len;
        }
      free (w);
    }
  CHECK (fd >= 0 && write (fd, msg, n) == (ssize_t)n);
  const char *want[] = { "10.1.2.3", "10.9.9.9", third_a };
  for (int i = 0; i < 3 && fd >= 0; i++)
    {
      ldns_pkt *p = tcp_recv (fd);
      CHECK (is_answer (p, (uint16_t)(500 + i), i == 2 ? third_rc : LDNS_RCODE_NOERROR, want[i]));
      ldns_pkt_free (p);
    }
  if (fd >= 0)
    close (fd);
}

/* F forwards a query to an upstream this test plays; answers that are not the answer (another
 * source port, id, name or type, QR=0, garbage) are dropped; the answer goes to the client
 * unchanged but for its id. */
static void
spoofing (dns_server_t *f, int fport)
{
  int me = 0, other = 0;
  int up = bind_udp (&me, 10), spoofer = bind_udp (&other, 10), client = connect_to (fport, 0, 10);
  dns_upstream_t u[] = { { LO, me } };
  CHECK (up >= 0 && spoofer >= 0 && client >= 0 && set_up (f, u, 1) == 0);
  size_t len = 0;
  uint8_t *q = query_wire ("a.up.test", LDNS_RR_TYPE_A, 0x4d2, &len), fq[512];
  CHECK (q && send (client, q, len, 0) == (ssize_t)len);
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t n = recvfrom (up, fq, sizeof fq, 0, (struct sockaddr *)&from, &fl);
  ldns_pkt *fwd = parse (fq, n);
  CHECK (fwd && !ldns_pkt_qr (fwd) && n == (ssize_t)len && memcmp (fq + 2, q + 2, len - 2) == 0);
  ldns_pkt_free (fwd);
  if (n >= 12)
    {
      uint16_t id = (uint16_t)((fq[0] << 8) | fq[1]);
      size_t sl[6] = { 0 };
      uint8_t *spoof[6] = {
        msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id ^ 1, 1, "10.6.6.6", &sl[0]),
        msg_wire ("b.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id, 1, "10.6.6.6", &sl[1]),
        msg_wire ("a.up.test", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, id, 1, NULL, &sl[2]),
        msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id, 0, "10.6.6.6", &sl[3]),
        msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id, 1, "10.6.6.6", &sl[4]), /* from elsewhere */
        msg_wire ("A.UP.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id, 1, "10.7.7.7", &sl[5]), /* the answer */
      };
      uint8_t garbage[30] = { fq[0], fq[1], 0x81, 0x80, 0, 1, 0, 1 };
      memset (garbage + 8, 0xee, sizeof garbage - 8);
      for (int i = 0; i < 6; i++)
        CHECK (spoof[i]
               && sendto (i == 4 ? spoofer : up, spoof[i], sl[i], 0, (struct sockaddr *)&from, fl) == (ssize_t)sl[i]);
      CHECK (sendto (up, garbage, sizeof garbage, 0, (struct sockaddr *)&from, fl) == (ssize_t)sizeof garbage);
      /* loopback keeps the order: the first thing the client gets is the answer, id restored */
      uint8_t got[512];
      ssize_t g = recv (client, got, sizeof got, 0);
      ldns_pkt *p = parse (got, g);
      CHECK (is_answer (p, 0x4d2, LDNS_RCODE_NOERROR, "10.7.7.7"));
      CHECK (g == (ssize_t)sl[5] && spoof[5] && memcmp (got + 2, spoof[5] + 2, sl[5] - 2) == 0);
      ldns_pkt_free (p);
      for (int i = 0; i < 6; i++)
        free (spoof[i]);
    }
  free (q);
  close (up);
  close (spoofer);
  close (client);
}

/* Sends the framed bytes b (len) to c in three writes (2 ms apart): F reads a length and an
 * answer in pieces. */
static int
send_pieces (int c, const uint8_t *b, size_t len)
{
  size_t cut[4] = { 0, 1, len > 3 ? 3 : len, len };
  for (int i = 0; i < 3; i++)
    {
      if (cut[i + 1] > cut[i] && send_all (c, b + cut[i], cut[i + 1] - cut[i]) < 0)
        return -1;
      usleep (2000);
    }
  return 0;
}

/* Frames the message m (mlen bytes) with its length into out (cap bytes); the framed length. */
static size_t
framed (const uint8_t *m, size_t mlen, uint8_t *out, size_t cap)
{
  if (m == NULL || mlen + 2 > cap)
    return 0;
  out[0] = (uint8_t)(mlen >> 8);
  out[1] = (uint8_t)mlen;
  memcpy (out + 2, m, mlen);
  return mlen + 2;
}

/* A TCP client's query goes upstream over TCP, to upstreams this test plays (UDP, TCP or both at
 * one port), and U. What F does with a TCP upstream: the answer (read in pieces, past 512 bytes)
 * goes to the client with its id and F closes the connection; a refused connection, an early end
 * of file, garbage (a length under a header's, a body that is no DNS) or an answer that is not
 * the answer (id, name, type, QR) are not delivered: F drops the connection and asks the next
 * upstream at once, or answers SERVFAIL when none is left. A client that resets while it waits:
 * the forward and its upstream connection are dropped at once. */
static void
tcp_upstreams (dns_server_t *f, int fport, int uport)
{
  uint8_t buf[8192], out[8192];
  size_t len = 0;
  ssize_t n = 0;
  struct sockaddr_in from;
  socklen_t fl = sizeof from;

  /* an upstream whose UDP answer is truncated: the UDP client gets that one; the TCP client gets
     the whole answer (100 A records), which never went over UDP, and its connection goes on */
  int port = 0, l = -1, udp = bind_both (&port, &l, 10);
  dns_upstream_t big[] = { { LO, port } };
  CHECK (udp >= 0 && l >= 0 && set_up (f, big, 1) == 0);
  int client = connect_to (fport, 0, 10);
  uint8_t *q = query_wire ("big.up.test", LDNS_RR_TYPE_A, 0x600, &len);
  CHECK (client >= 0 && q && send (client, q, len, 0) == (ssize_t)len);
  n = recvfrom (udp, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
  size_t al = 0;
  uint8_t *ans = long_answer ("big.up.test", id_of (buf, n), 0, 1, &al);
  CHECK (n == (ssize_t)len && ans && sendto (udp, ans, al, 0, (struct sockaddr *)&from, fl) == (ssize_t)al);
  ldns_pkt *p = parse (buf, recv (client, buf, sizeof buf, 0));
  CHECK (is_answer (p, 0x600, LDNS_RCODE_NOERROR, NULL) && ldns_pkt_tc (p) && ldns_pkt_ancount (p) == 0);
  ldns_pkt_free (p);
  close (client);
  free (q);
  free (ans);
  client = connect_to (fport, 1, 10);
  q = query_wire ("big.up.test", LDNS_RR_TYPE_A, 0x601, &len);
  CHECK (client >= 0 && tcp_send (client, q, len) == 0);
  int c = accept_query (l, buf, sizeof buf, &n);
  CHECK (c >= 0 && q && n == (ssize_t)len && memcmp (buf + 2, q + 2, len - 2) == 0);
  ans = long_answer ("big.up.test", id_of (buf, n), 100, 0, &al);
  CHECK (ans && al > 512 && send_pieces (c, out, framed (ans, al, out, sizeof out)) == 0);
  n = tcp_recv_raw (client, buf, sizeof buf);
  CHECK (ans && n == (ssize_t)al && buf[0] == 0x06 && buf[1] == 0x01 && memcmp (buf + 2, ans + 2, al - 2) == 0);
  p = parse (buf, n);
  CHECK (is_answer (p, 0x601, LDNS_RCODE_NOERROR, NULL) && !ldns_pkt_tc (p) && ldns_pkt_ancount (p) == 100);
  ldns_pkt_free (p);
  CHECK (closed_by_peer (c));
  CHECK (nothing_came (udp));
  free (q);
  CHECK (serves_own_zone (client, 0x602));
  free (ans);
  close (c);
  close (client);
  close (l);
  close (udp);

  /* a TCP port that refuses, its UDP side silent, then U: a UDP client that asked first waits
     for the silent one's timeout; the TCP client, asked later, gets U's answer first (it moved
     on at once); nothing of it went over UDP. Alone: SERVFAIL. */
  int sport = 0, silent = bind_udp (&sport, 10);
  dns_upstream_t refused_u[] = { { LO, sport }, { LO, uport } }, refused[] = { { LO, sport } };
  CHECK (silent >= 0 && set_up (f, refused_u, 2) == 0);
  int uc = connect_to (fport, 0, 10);
  client = connect_to (fport, 1, 10);
  q = query_wire ("a.up.test", LDNS_RR_TYPE_A, 0x610, &len);
  CHECK (uc >= 0 && q && send (uc, q, len, 0) == (ssize_t)len);
  CHECK (recv (silent, buf, sizeof buf, 0) == (ssize_t)len); /* the UDP query is out */
  free (q);
  q = query_wire ("a.up.test", LDNS_RR_TYPE_A, 0x611, &len);
  CHECK (client >= 0 && tcp_send (client, q, len) == 0);
  CHECK (first_readable (uc, client) == 1);
  p = tcp_recv (client);
  CHECK (is_answer (p, 0x611, LDNS_RCODE_NOERROR, "10.1.2.3"));
  ldns_pkt_free (p);
  p = parse (buf, recv (uc, buf, sizeof buf, 0));
  CHECK (is_answer (p, 0x610, LDNS_RCODE_NOERROR, "10.1.2.3"));
  ldns_pkt_free (p);
  CHECK (nothing_came (silent));
  free (q);
  close (client);
  CHECK (set_up (f, refused, 1) == 0);
  CHECK (ask_is (fport, 1, "a.up.test", 0x612, LDNS_RCODE_SERVFAIL, NULL, -1));

  /* a lying TCP upstream (the answer is not delivered; U answers; alone: SERVFAIL) */
  int lport = 0, liar = listen_tcp (&lport, 10);
  dns_upstream_t liar_u[] = { { LO, lport }, { LO, uport } }, liar_only[] = { { LO, lport } };
  CHECK (liar >= 0);
  for (int i = 0; i < 8; i++)
    {
      CHECK (i < 7 ? set_up (f, liar_u, 2) == 0 : set_up (f, liar_only, 1) == 0);
      client = connect_to (fport, 1, 10);
      q = query_wire ("a.up.test", LDNS_RR_TYPE_A, (uint16_t)(0x620 + i), &len);
      CHECK (client >= 0 && tcp_send (client, q, len) == 0);
      c = accept_query (liar, buf, sizeof buf, &n);
      uint16_t id = id_of (buf, n);
      CHECK (c >= 0 && n == (ssize_t)len);
      size_t wl = 0, ol = 0;
      uint8_t *w = NULL;
      switch (i)
        {
        case 0: /* another id */
        case 7:
          w = msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id ^ 1, 1, "10.6.6.6", &wl);
          break;
        case 1: /* another name */
          w = msg_wire ("b.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id, 1, "10.6.6.6", &wl);
          break;
        case 2: /* another type */
          w = msg_wire ("a.up.test", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, id, 1, NULL, &wl);
          break;
        case 3: /* the query itself (QR=0) */
          w = msg_wire ("a.up.test", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, id, 0, "10.6.6.6", &wl);
          break;
        default:
          break;
        }
      if (w)
        ol = framed (w, wl, out, sizeof out);
      else
        {
          /* 4: a body that is no DNS; 5: a length under a header's; 6: 20 of 200 bytes, then the
             end of file */
          size_t body = i == 4 ? 30 : i == 5 ? 5 : 200;
          uint8_t g[200] = { (uint8_t)(id >> 8), (uint8_t)id, 0x81, 0x80, 0, 1, 0, 1 };
          memset (g + 8, 0xee, sizeof g - 8);
          ol = framed (g, body, out, sizeof out);
          if (i == 6)
            ol = 22;
        }
      CHECK (ol > 0 && send_all (c, out, ol) == 0);
      if (i == 6)
        shutdown (c, SHUT_WR);
      p = tcp_recv (client);
      CHECK (i < 7 ? is_answer (p, (uint16_t)(0x620 + i), LDNS_RCODE_NOERROR, "10.1.2.3")
                   : is_answer (p, 0x627, LDNS_RCODE_SERVFAIL, NULL));
      ldns_pkt_free (p);
      CHECK (closed_by_peer (c));
      free (w);
      free (q);
      close (c);
      close (client);
    }

  /* a TCP client that resets while it waits: its forward and upstream connection are dropped at
     once, before the forward of a client that asked first times out (SERVFAIL); F keeps serving */
  close (uc);
  CHECK (set_up (f, liar_only, 1) == 0);
  int first = connect_to (fport, 1, 10);
  q = query_wire ("a.up.test", LDNS_RR_TYPE_A, 0x630, &len);
  CHECK (first >= 0 && tcp_send (first, q, len) == 0);
  int c_first = accept_query (liar, buf, sizeof buf, &n);
  CHECK (c_first >= 0 && n == (ssize_t)len);
  client = connect_to (fport, 1, 10);
  CHECK (client >= 0 && tcp_send (client, q, len) == 0);
  c = accept_query (liar, buf, sizeof buf, &n);
  CHECK (c >= 0 && n == (ssize_t)len);
  struct linger lg = { 1, 0 };
  CHECK (setsockopt (client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  close (client);
  CHECK (first_readable (c_first, c) == 1);
  CHECK (closed_by_peer (c));
  p = tcp_recv (first);
  CHECK (is_answer (p, 0x630, LDNS_RCODE_SERVFAIL, NULL));
  ldns_pkt_free (p);
  CHECK (closed_by_peer (c_first));
  free (q);
  CHECK (serves_own_zone (first, 0x631));
  close (c_first);
  close (first);
  close (c);
  close (liar);
  close (silent);
}

static void
test_forward (void)
{
  int fds_before = count_fds ();
  dns_server_t *u = start ("up.test", "a.up.test", "10.1.2.3"), *f = start ("front.test", "b.front.test", "10.9.9.9");
  CHECK (u != NULL && f != NULL);
  if (u == NULL || f == NULL)
    {
      dns_server_stop (u);
      dns_server_stop (f);
      return;
    }
  int uport = dns_server_port (u), fport = dns_server_port (f);
  const dns_net_t loop8[] = { { IP (127, 0, 0, 0), 8 } }, ten8[] = { { IP (10, 0, 0, 0), 8 } };
  const dns_net_t lo32[] = { { LO, 32 } }, lo2[] = { { IP (127, 0, 0, 2), 32 } };
  dns_upstream_t to_u[] = { { LO, uport } };
  /* no upstreams yet: REFUSED */
  CHECK (ask_is (fport, 0, "a.up.test", 11, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (set_clients (f, loop8, 1, NULL, 0) == 0 && set_up (f, to_u, 1) == 0);
  CHECK (dns_server_n_upstreams (f) == 1);
  /* forwarded over UDP and TCP: U's answer (authoritative there), the client's id */
  CHECK (ask_is (fport, 0, "a.up.test", 0x1234, LDNS_RCODE_NOERROR, "10.1.2.3", 1));
  CHECK (ask_is (fport, 1, "a.up.test", 0xbeef, LDNS_RCODE_NOERROR, "10.1.2.3", 1));
  CHECK (ask_is (fport, 0, "nope.up.test", 12, LDNS_RCODE_NXDOMAIN, NULL, 1));
  /* F's own zone is still F's */
  CHECK (ask_is (fport, 0, "b.front.test", 13, LDNS_RCODE_NOERROR, "10.9.9.9", 1));
  CHECK (ask_is (fport, 1, "b.front.test", 14, LDNS_RCODE_NOERROR, "10.9.9.9", 1));
  CHECK (ask_is (fport, 0, "nope.front.test", 15, LDNS_RCODE_NXDOMAIN, NULL, 1));
  /* U refuses what is not its: passed on as is */
  CHECK (ask_is (fport, 0, "elsewhere.test", 16, LDNS_RCODE_REFUSED, NULL, -1));
  pipelined (fport, "a.up.test", LDNS_RCODE_NOERROR, "10.1.2.3");
  /* n = 0: forwarding off */
  CHECK (set_up (f, NULL, 0) == 0 && dns_server_n_upstreams (f) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 17, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (ask_is (fport, 1, "a.up.test", 18, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (set_up (f, to_u, 1) == 0 && dns_server_n_upstreams (f) == 1);
  /* who is forwarded: the client networks, less the except networks; nobody when none */
  CHECK (set_clients (f, ten8, 1, NULL, 0) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 19, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (ask_is (fport, 1, "a.up.test", 20, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (set_clients (f, loop8, 1, lo32, 1) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 21, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (ask_is (fport, 1, "a.up.test", 22, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (set_clients (f, loop8, 1, lo2, 1) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 23, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
  CHECK (set_clients (f, NULL, 0, NULL, 0) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 24, LDNS_RCODE_REFUSED, NULL, -1));
  CHECK (set_clients (f, loop8, 1, NULL, 0) == 0);
  /* an upstream that is F's own listener is skipped: alone, SERVFAIL at once; first, U answers */
  dns_upstream_t self[] = { { LO, fport } }, self_u[] = { { LO, fport }, { LO, uport } };
  CHECK (set_up (f, self, 1) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 25, LDNS_RCODE_SERVFAIL, NULL, -1));
  CHECK (ask_is (fport, 1, "a.up.test", 26, LDNS_RCODE_SERVFAIL, NULL, -1));
  CHECK (ask_is (fport, 0, "b.front.test", 27, LDNS_RCODE_NOERROR, "10.9.9.9", 1)); /* still serving */
  CHECK (set_up (f, self_u, 2) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 28, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
  /* so is one that reaches F through a wildcard listener (any local address at its port) */
  {
    int wport = 0, listening = 0;
    for (int attempt = 0; attempt < 16 && !listening; attempt++)
      {
        /* a free port; another test may take it meanwhile: then another */
        int w = bind_udp (&wport, 1);
        if (w >= 0)
          close (w);
        skiff_error_t err = NULL;
        listening = w >= 0 && dns_server_listen (f, "0.0.0.0", wport, &err) == 0;
        skiff_error_release (&err);
      }
    CHECK (listening);
    dns_upstream_t wild[] = { { LO, wport } }, wild_u[] = { { LO, wport }, { LO, uport } };
    CHECK (set_up (f, wild, 1) == 0);
    CHECK (ask_is (fport, 0, "a.up.test", 0x51, LDNS_RCODE_SERVFAIL, NULL, -1));
    CHECK (ask_is (fport, 1, "a.up.test", 0x54, LDNS_RCODE_SERVFAIL, NULL, -1));
    CHECK (set_up (f, wild_u, 2) == 0);
    CHECK (ask_is (fport, 0, "a.up.test", 0x52, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
    CHECK (ask_is (fport, 1, "a.up.test", 0x55, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
    CHECK (ask_is (wport, 0, "a.up.test", 0x53, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
    dns_server_unlisten (f, "0.0.0.0", wport);
  }
  /* an unreachable upstream (a closed port): the next one answers */
  int closed_port = 0, c = bind_udp (&closed_port, 1);
  CHECK (c >= 0);
  close (c);
  dns_upstream_t closed_u[] = { { LO, closed_port }, { LO, uport } }, closed[] = { { LO, closed_port } };
  CHECK (set_up (f, closed_u, 2) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 29, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
  CHECK (ask_is (fport, 1, "a.up.test", 30, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
  CHECK (set_up (f, closed, 1) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 31, LDNS_RCODE_SERVFAIL, NULL, -1));
  CHECK (ask_is (fport, 1, "a.up.test", 0x31, LDNS_RCODE_SERVFAIL, NULL, -1));
  /* a silent upstream (UDP, and TCP that accepts but never answers): SERVFAIL after its timeout,
     over UDP and (pipelined) TCP at once, and F closes its upstream connection; the client's
     connection then answers more queries */
  int silent_port = 0, silent_tcp = -1, silent = bind_both (&silent_port, &silent_tcp, 10);
  CHECK (silent >= 0 && silent_tcp >= 0);
  dns_upstream_t mute[] = { { LO, silent_port } }, mute_u[] = { { LO, silent_port }, { LO, uport } };
  CHECK (set_up (f, mute, 1) == 0);
  int ufd = connect_to (fport, 0, 10), tfd = connect_to (fport, 1, 10);
  size_t l1 = 0, l2 = 0, l3 = 0;
  uint8_t *q1 = query_wire ("a.up.test", LDNS_RR_TYPE_A, 32, &l1),
          *q2 = query_wire ("a.up.test", LDNS_RR_TYPE_A, 33, &l2);
  uint8_t *q3 = query_wire ("b.front.test", LDNS_RR_TYPE_A, 34, &l3);
  CHECK (ufd >= 0 && tfd >= 0 && q1 && send (ufd, q1, l1, 0) == (ssize_t)l1);
  CHECK (tcp_send (tfd, q2, l2) == 0 && tcp_send (tfd, q3, l3) == 0);
  uint8_t buf[512];
  ldns_pkt *p = parse (buf, recv (ufd, buf, sizeof buf, 0));
  CHECK (is_answer (p, 32, LDNS_RCODE_SERVFAIL, NULL) && ldns_pkt_ra (p));
  ldns_pkt_free (p);
  p = tcp_recv (tfd);
  CHECK (is_answer (p, 33, LDNS_RCODE_SERVFAIL, NULL));
  ldns_pkt_free (p);
  p = tcp_recv (tfd);
  CHECK (is_answer (p, 34, LDNS_RCODE_NOERROR, "10.9.9.9"));
  ldns_pkt_free (p);
  CHECK (serves_own_zone (tfd, 34));
  ssize_t got = 0;
  c = accept_query (silent_tcp, buf, sizeof buf, &got);
  CHECK (c >= 0 && got == (ssize_t)l2 && closed_by_peer (c));
  if (c >= 0)
    close (c);
  free (q1);
  free (q2);
  free (q3);
  close (ufd);
  close (tfd);
  /* silent first, then U: U's answer, after the first timed out */
  CHECK (set_up (f, mute_u, 2) == 0);
  CHECK (ask_is (fport, 0, "a.up.test", 35, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
  CHECK (ask_is (fport, 1, "a.up.test", 0x35, LDNS_RCODE_NOERROR, "10.1.2.3", -1));
  c = accept_query (silent_tcp, buf, sizeof buf, &got);
  CHECK (c >= 0 && closed_by_peer (c));
  if (c >= 0)
    close (c);
  /* spoofed answers from an upstream this test plays */
  spoofing (f, fport);
  /* TCP clients are forwarded over TCP */
  tcp_upstreams (f, fport, uport);
  /* stopping with forwards in flight (UDP, and TCP with its upstream connection) frees them: the
     sanitizers check the memory, the count of open fds the sockets */
  CHECK (set_up (f, mute, 1) == 0);
  ufd = connect_to (fport, 0, 1);
  tfd = connect_to (fport, 1, 1);
  q1 = query_wire ("a.up.test", LDNS_RR_TYPE_A, 36, &l1);
  CHECK (ufd >= 0 && q1 && send (ufd, q1, l1, 0) == (ssize_t)l1);
  CHECK (tfd >= 0 && tcp_send (tfd, q1, l1) == 0);
  c = accept_query (silent_tcp, buf, sizeof buf, &got);
  CHECK (c >= 0 && got == (ssize_t)l1);
  dns_server_stop (f);
  dns_server_stop (u);
  CHECK (c >= 0 && closed_by_peer (c));
  if (c >= 0)
    close (c);
  free (q1);
  close (ufd);
  close (tfd);
  close (silent);
  close (silent_tcp);
  CHECK (fds_before >= 0 && count_fds () == fds_before);
}

int
main (void)
{
  test_api ();
  test_answer_rc ();
  test_same_question ();
  test_forward ();
  TEST_MAIN_END ();
}
