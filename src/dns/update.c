/* update.c - RFC 2136 dynamic updates signed with TSIG (RFC 8945): ldns builds the UPDATE, signs
 * it and checks the answer's signature; one TCP connection per update, 2-byte length framing,
 * every wait bounded by the target's timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "dns/dns_internal.h"

#define MAX_CHANGES 1024
#define TSIG_FUDGE 300
#define DEFAULT_TIMEOUT_MS 3000
#define MAX_KEY_NAME 253
#define MAX_SECRET 1024

static void
pkt_freep (ldns_pkt **p)
{
  if (*p)
    ldns_pkt_free (*p);
  *p = NULL;
}
#define cleanup_pkt __attribute__ ((cleanup (pkt_freep)))

static void
rr_list_freep (ldns_rr_list **l)
{
  if (*l)
    ldns_rr_list_deep_free (*l);
  *l = NULL;
}
#define cleanup_rr_list __attribute__ ((cleanup (rr_list_freep)))

static int64_t
now_ms (void)
{
  return skiff_monotonic_ns () / 1000000;
}

/* Waits until fd is ready for events or the deadline passes (ETIMEDOUT). */
static int
wait_fd (int fd, short events, int64_t deadline)
{
  for (;;)
    {
      int64_t left = deadline - now_ms ();
      if (left <= 0)
        {
          errno = ETIMEDOUT;
          return -1;
        }
      struct pollfd p = { fd, events, 0 };
      int r = poll (&p, 1, (int)left);
      if (r > 0)
        return 0;
      if (r < 0 && errno != EINTR)
        return -1;
    }
}

/* Sends or receives exactly len bytes before the deadline. */
static int
io_all (int fd, uint8_t *buf, size_t len, int writing, int64_t deadline)
{
  while (len)
    {
      if (wait_fd (fd, writing ? POLLOUT : POLLIN, deadline) < 0)
        return -1;
      ssize_t n = writing ? send (fd, buf, len, MSG_NOSIGNAL) : recv (fd, buf, len, 0);
      if (n == 0)
        {
          errno = ECONNRESET;
          return -1;
        }
      if (n < 0)
        {
          if (errno == EAGAIN || errno == EINTR)
            continue;
          return -1;
        }
      buf += n;
      len -= (size_t)n;
    }
  return 0;
}

/* The RRset deletion of RFC 2136 2.5.2: class ANY, TTL 0, no data. */
static ldns_rr *
rrset_delete (const char *name, ldns_rr_type type)
{
  cleanup_free char *fq = skiff_strdup_printf ("%s.", name);
  ldns_rdf *owner = NULL;
  if (ldns_str2rdf_dname (&owner, fq) != LDNS_STATUS_OK)
    return NULL;
  ldns_rr *rr = ldns_rr_new ();
  if (rr == NULL)
    {
      ldns_rdf_deep_free (owner);
      return NULL;
    }
  ldns_rr_set_owner (rr, owner);
  ldns_rr_set_type (rr, type);
  ldns_rr_set_class (rr, LDNS_RR_CLASS_ANY);
  ldns_rr_set_ttl (rr, 0);
  return rr;
}

/* The record "name ttl IN type value", value checked first (no text reaches ldns unchecked). */
static ldns_rr *
record (const char *name, dns_type_t type, const char *value, uint32_t ttl)
{
  struct in_addr a;
  if (type == DNS_TYPE_A ? inet_pton (AF_INET, value, &a) != 1 : !dns_valid_name (value))
    return NULL;
  cleanup_free char *text = skiff_strdup_printf ("%s. %u IN %s %s%s", name, ttl, type == DNS_TYPE_A ? "A" : "PTR",
                                                 value, type == DNS_TYPE_A ? "" : ".");
  ldns_rr *rr = NULL;
  if (ldns_rr_new_frm_str (&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
    return NULL;
  return rr;
}

/* 1 when name is zone or below it (ASCII case-insensitive). */
static int
in_zone (const char *name, const char *zone)
{
  size_t n = strlen (name), z = strlen (zone);
  if (n == z)
    return strcasecmp (name, zone) == 0;
  return n > z && name[n - z - 1] == '.' && strcasecmp (name + n - z, zone) == 0;
}

/* The update section: for a set "delete the RRset, add the record", for a delete the first. */
static int
build_changes (const char *zone, const dns_change_t *changes, size_t n, ldns_rr_list *up, skiff_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      const dns_change_t *c = &changes[i];
      if (!dns_valid_name (c->name) || !in_zone (c->name, zone))
        return skiff_error_set (err, EINVAL, "change %zu: `%.64s` is not a DNS name in zone `%s`", i,
                                c->name ? c->name : "", zone);
      if (c->type != DNS_TYPE_A && c->type != DNS_TYPE_PTR)
        return skiff_error_set (err, EINVAL, "change %zu (`%s`): type %d is not supported", i, c->name, (int)c->type);
      ldns_rr *del = rrset_delete (c->name, c->type == DNS_TYPE_A ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_PTR);
      if (del == NULL || !ldns_rr_list_push_rr (up, del))
        {
          ldns_rr_free (del);
          return skiff_error_set (err, ENOMEM, "change %zu (`%s`)", i, c->name);
        }
      if (c->value == NULL)
        continue;
      ldns_rr *add = record (c->name, c->type, c->value, c->ttl);
      if (add == NULL)
        return skiff_error_set (err, EINVAL, "change %zu (`%s`): `%.64s` is not a valid %s value", i, c->name, c->value,
                                c->type == DNS_TYPE_A ? "A" : "PTR");
      if (!ldns_rr_list_push_rr (up, add))
        {
          ldns_rr_free (add);
          return skiff_error_set (err, ENOMEM, "change %zu (`%s`)", i, c->name);
        }
    }
  return 0;
}

static const char *
algorithm_name (const char *a)
{
  if (a == NULL || strcasecmp (a, "hmac-sha256") == 0 || strcasecmp (a, "hmac-sha256.") == 0)
    return "hmac-sha256.";
  if (strcasecmp (a, "hmac-sha512") == 0 || strcasecmp (a, "hmac-sha512.") == 0)
    return "hmac-sha512.";
  if (strcasecmp (a, "hmac-sha384") == 0 || strcasecmp (a, "hmac-sha384.") == 0)
    return "hmac-sha384.";
  if (strcasecmp (a, "hmac-sha1") == 0 || strcasecmp (a, "hmac-sha1.") == 0)
    return "hmac-sha1.";
  return NULL;
}

static const char *
tsig_error_name (unsigned e)
{
  static const char *const names[] = { "BADSIG", "BADKEY", "BADTIME", "BADMODE", "BADNAME", "BADALG", "BADTRUNC" };
  return e >= 16 && e <= 22 ? names[e - 16] : NULL;
}

/* The error message for an answer that is not NOERROR: the rcode, and the TSIG error if any. */
static int
rcode_error (const dns_update_target_t *t, ldns_pkt *resp, skiff_error_t *err)
{
  ldns_lookup_table *rc = ldns_lookup_by_id (ldns_rcodes, ldns_pkt_get_rcode (resp));
  ldns_rr *tsig = ldns_pkt_tsig (resp);
  ldns_rdf *terr = tsig && ldns_rr_rd_count (tsig) > 5 ? ldns_rr_rdf (tsig, 5) : NULL;
  unsigned tsig_error = terr && ldns_rdf_size (terr) == 2 ? ldns_rdf2native_int16 (terr) : 0;
  const char *tname = tsig_error_name (tsig_error);
  char code[16];
  snprintf (code, sizeof code, "rcode %d", (int)ldns_pkt_get_rcode (resp));
  return skiff_error_set (err, EPROTO, "%s:%d refused the update of zone `%s`: %s%s%s%s", t->server,
                          t->port ? t->port : 53, t->zone, rc ? rc->name : code, tname ? " (TSIG " : "",
                          tname ? tname : "", tname ? ")" : "");
}

/* Builds the signed UPDATE: *wire gets the length-prefixed message, *req the packet (for the
 * request MAC), *id its id. */
static int
build_request (const dns_update_target_t *t, const char *alg, const char *key_fq, const dns_change_t *changes, size_t n,
               ldns_pkt **req_out, uint8_t **wire_out, size_t *wlen_out, skiff_error_t *err)
{
  cleanup_rr_list ldns_rr_list *up = ldns_rr_list_new ();
  if (up == NULL)
    return skiff_error_set (err, ENOMEM, "update");
  if (build_changes (t->zone, changes, n, up, err) < 0)
    return -1;
  cleanup_free char *zone_fq = skiff_strdup_printf ("%s.", t->zone);
  ldns_rdf *zone = NULL;
  if (ldns_str2rdf_dname (&zone, zone_fq) != LDNS_STATUS_OK)
    return skiff_error_set (err, EINVAL, "zone `%s` is not a DNS name", t->zone);
  /* takes zone */
  cleanup_pkt ldns_pkt *req = ldns_update_pkt_new (zone, LDNS_RR_CLASS_IN, NULL, up, NULL);
  if (req == NULL)
    return skiff_error_set (err, ENOMEM, "build the update");
  ldns_pkt_set_rd (req, false);
  ldns_pkt_set_random_id (req);
  if (ldns_pkt_tsig_sign (req, key_fq, t->key_secret, TSIG_FUDGE, alg, NULL) != LDNS_STATUS_OK)
    return skiff_error_set (err, EINVAL, "sign the update with key `%s` (is the secret base64?)", t->key_name);
  uint8_t *w = NULL;
  size_t wlen = 0;
  if (ldns_pkt2wire (&w, req, &wlen) != LDNS_STATUS_OK || wlen > DNS_MAX_MSG)
    {
      free (w);
      return skiff_error_set (err, E2BIG, "the update does not fit one DNS message");
    }
  cleanup_free uint8_t *wire = w;
  uint8_t *msg = malloc (wlen + 2);
  if (msg == NULL)
    return skiff_error_set (err, ENOMEM, "update");
  msg[0] = (uint8_t)(wlen >> 8);
  msg[1] = (uint8_t)wlen;
  memcpy (msg + 2, wire, wlen);
  *wire_out = msg;
  *wlen_out = wlen + 2;
  *req_out = steal_pointer (&req);
  return 0;
}

int
dns_update_send (const dns_update_target_t *t, const dns_change_t *changes, size_t n, skiff_error_t *err)
{
  if (t == NULL || (n && changes == NULL))
    return skiff_error_set (err, EINVAL, "no update target or changes");
  if (n > MAX_CHANGES)
    return skiff_error_set (err, E2BIG, "at most %d changes in one update", MAX_CHANGES);
  const char *alg = algorithm_name (t->key_algorithm);
  if (alg == NULL)
    return skiff_error_set (err, EINVAL, "TSIG algorithm `%.32s` is not supported", t->key_algorithm);
  if (!dns_valid_name (t->zone))
    return skiff_error_set (err, EINVAL, "the update needs a zone (a DNS name)");
  if (t->key_name == NULL || t->key_secret == NULL || strnlen (t->key_secret, MAX_SECRET + 1) > MAX_SECRET)
    return skiff_error_set (err, EINVAL, "the update needs a TSIG key name and a base64 secret");
  /* checked here: ldns_pkt_tsig_sign leaks its half-built TSIG record when the secret is bad */
  ldns_rdf *secret = NULL;
  int secret_ok = ldns_str2rdf_b64 (&secret, t->key_secret) == LDNS_STATUS_OK && ldns_rdf_size (secret) > 0;
  ldns_rdf_deep_free (secret);
  if (!secret_ok)
    return skiff_error_set (err, EINVAL, "the TSIG secret of key `%.64s` is not base64", t->key_name);
  /* the key's name as a fully qualified name */
  size_t kl = strnlen (t->key_name, MAX_KEY_NAME + 2);
  if (kl > 0 && t->key_name[kl - 1] == '.')
    kl--;
  if (kl == 0 || kl > MAX_KEY_NAME)
    return skiff_error_set (err, EINVAL, "TSIG key name `%.64s` is not a DNS name", t->key_name);
  cleanup_free char *key_fq = skiff_strdup_printf ("%.*s.", (int)kl, t->key_name);
  int port = t->port ? t->port : 53;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  if (t->server == NULL || inet_pton (AF_INET, t->server, &sa.sin_addr) != 1 || port < 0 || port > 65535)
    return skiff_error_set (err, EINVAL, "DNS server `%.32s:%d` is not an IPv4 address and port",
                            t->server ? t->server : "", port);

  cleanup_pkt ldns_pkt *req = NULL;
  cleanup_free uint8_t *msg = NULL;
  size_t mlen = 0;
  if (build_request (t, alg, key_fq, changes, n, &req, &msg, &mlen, err) < 0)
    return -1;

  int64_t deadline = now_ms () + (t->timeout_ms > 0 ? t->timeout_ms : DEFAULT_TIMEOUT_MS);
  cleanup_close int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "socket");
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
    return skiff_error_set (err, errno, "connect to %s:%d", t->server, port);
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (wait_fd (fd, POLLOUT, deadline) < 0 || getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr)
    return skiff_error_set (err, soerr ? soerr : errno, "connect to %s:%d", t->server, port);
  if (io_all (fd, msg, mlen, 1, deadline) < 0)
    return skiff_error_set (err, errno, "send the update to %s:%d", t->server, port);
  uint8_t hdr[2];
  if (io_all (fd, hdr, 2, 0, deadline) < 0)
    return skiff_error_set (err, errno, "read the answer of %s:%d", t->server, port);
  size_t alen = ((size_t)hdr[0] << 8) | hdr[1];
  if (alen < LDNS_HEADER_SIZE)
    return skiff_error_set (err, EPROTO, "short answer from %s:%d", t->server, port);
  cleanup_free uint8_t *ans = malloc (alen);
  if (ans == NULL)
    return skiff_error_set (err, ENOMEM, "answer");
  if (io_all (fd, ans, alen, 0, deadline) < 0)
    return skiff_error_set (err, errno, "read the answer of %s:%d", t->server, port);

  cleanup_pkt ldns_pkt *resp = NULL;
  if (ldns_wire2pkt (&resp, ans, alen) != LDNS_STATUS_OK)
    return skiff_error_set (err, EPROTO, "unreadable answer from %s:%d", t->server, port);
  if (ldns_pkt_id (resp) != ldns_pkt_id (req) || !ldns_pkt_qr (resp)
      || ldns_pkt_get_opcode (resp) != LDNS_PACKET_UPDATE)
    return skiff_error_set (err, EPROTO, "the answer of %s:%d does not match the update", t->server, port);
  if (ldns_pkt_get_rcode (resp) != LDNS_RCODE_NOERROR)
    return rcode_error (t, resp, err);
  ldns_rr *req_tsig = ldns_pkt_tsig (req);
  ldns_rdf *req_mac = req_tsig && ldns_rr_rd_count (req_tsig) > 3 ? ldns_rr_rdf (req_tsig, 3) : NULL;
  if (req_mac == NULL || ldns_pkt_tsig (resp) == NULL
      || !ldns_pkt_tsig_verify (resp, ans, alen, key_fq, t->key_secret, req_mac))
    return skiff_error_set (err, EPROTO, "the answer of %s:%d is not signed with the key `%s`", t->server, port,
                            t->key_name);
  return 0;
}
