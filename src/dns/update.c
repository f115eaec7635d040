/* update.c - RFC 2136 dynamic updates signed with TSIG (RFC 8945), sent over TCP with ldns
 * building, signing and checking the messages. */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "dns/dns.h"

#define MAX_CHANGES 1024

static void
pkt_freep (ldns_pkt **p)
{
  if (*p)
    ldns_pkt_free (*p);
  *p = NULL;
}
#define cleanup_pkt __attribute__ ((cleanup (pkt_freep)))

static int64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Adds "name. ttl IN type value" (or the RRset deletion) to list. */
static int
add_rr (ldns_rr_list *list, const char *text)
{
  ldns_rr *rr = NULL;
  if (ldns_rr_new_frm_str (&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
    return -1;
  ldns_rr_list_push_rr (list, rr);
  return 0;
}

/* The RRset deletion of RFC 2136 2.5.2: class ANY, TTL 0, no data. */
static int
add_delete (ldns_rr_list *list, const char *name, ldns_rr_type type)
{
  ldns_rr *rr = ldns_rr_new ();
  ldns_rdf *owner = NULL;
  cleanup_free char *fq = skiff_strdup_printf ("%s.", name);
  if (rr == NULL || ldns_str2rdf_dname (&owner, fq) != LDNS_STATUS_OK)
    {
      ldns_rr_free (rr);
      return -1;
    }
  ldns_rr_set_owner (rr, owner);
  ldns_rr_set_type (rr, type);
  ldns_rr_set_class (rr, LDNS_RR_CLASS_ANY);
  ldns_rr_set_ttl (rr, 0);
  ldns_rr_list_push_rr (list, rr);
  return 0;
}

static const char *
algorithm_name (const char *a)
{
  if (a == NULL || strcasecmp (a, "hmac-sha256") == 0)
    return "hmac-sha256.";
  if (strcasecmp (a, "hmac-sha512") == 0)
    return "hmac-sha512.";
  if (strcasecmp (a, "hmac-sha384") == 0)
    return "hmac-sha384.";
  if (strcasecmp (a, "hmac-sha1") == 0)
    return "hmac-sha1.";
  return NULL;
}

int
dns_update_send (const dns_update_target_t *t, const dns_change_t *changes, size_t n, skiff_error_t *err)
{
  if (n > MAX_CHANGES)
    return skiff_error_set (err, E2BIG, "at most %d changes in one update", MAX_CHANGES);
  const char *alg = algorithm_name (t->key_algorithm);
  if (alg == NULL)
    return skiff_error_set (err, EINVAL, "TSIG algorithm `%.32s` is not supported", t->key_algorithm);
  if (!dns_valid_name (t->zone) || t->key_name == NULL || t->key_secret == NULL)
    return skiff_error_set (err, EINVAL, "the update needs a zone and a TSIG key");
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)(t->port ? t->port : 53)) };
  if (t->server == NULL || inet_pton (AF_INET, t->server, &sa.sin_addr) != 1)
    return skiff_error_set (err, EINVAL, "DNS server `%.32s` is not an IPv4 address", t->server ? t->server : "");

  /* the update section: for a set "delete the RRset, add the record", for a delete the first */
  ldns_rr_list *up = ldns_rr_list_new ();
  for (size_t i = 0; i < n; i++)
    {
      const dns_change_t *c = &changes[i];
      ldns_rr_type type = c->type == DNS_TYPE_PTR ? LDNS_RR_TYPE_PTR : LDNS_RR_TYPE_A;
      int bad = !dns_valid_name (c->name) || add_delete (up, c->name, type) < 0;
      if (!bad && c->value)
        {
          cleanup_free char *text
              = skiff_strdup_printf ("%s. %u IN %s %s%s", c->name, c->ttl, type == LDNS_RR_TYPE_A ? "A" : "PTR",
                                     c->value, type == LDNS_RR_TYPE_PTR ? "." : "");
          bad = add_rr (up, text) < 0;
        }
      if (bad)
        {
          ldns_rr_list_deep_free (up);
          return skiff_error_set (err, EINVAL, "change %zu (`%.64s`) is not a valid record", i, c->name ? c->name : "");
        }
    }
  cleanup_free char *zone_fq = skiff_strdup_printf ("%s.", t->zone);
  ldns_rdf *zone = NULL;
  if (ldns_str2rdf_dname (&zone, zone_fq) != LDNS_STATUS_OK)
    {
      ldns_rr_list_deep_free (up);
      return skiff_error_set (err, EINVAL, "zone `%s`", t->zone);
    }
  cleanup_pkt ldns_pkt *req = ldns_update_pkt_new (zone, LDNS_RR_CLASS_IN, NULL, up, NULL);
  ldns_rr_list_deep_free (up);
  if (req == NULL)
    return skiff_error_set (err, ENOMEM, "build the update");
  char hex[5];
  skiff_random_hex (hex, 2);
  uint16_t id = (uint16_t)strtoul (hex, NULL, 16);
  ldns_pkt_set_id (req, id);
  cleanup_free char *key_fq = skiff_strdup_printf ("%s.", t->key_name);
  if (ldns_pkt_tsig_sign (req, key_fq, t->key_secret, 300, alg, NULL) != LDNS_STATUS_OK)
    return skiff_error_set (err, EINVAL, "sign the update with key `%s` (is the secret base64?)", t->key_name);
  uint8_t *wire = NULL;
  size_t wlen = 0;
  if (ldns_pkt2wire (&wire, req, &wlen) != LDNS_STATUS_OK || wlen > 65535)
    {
      free (wire);
      return skiff_error_set (err, E2BIG, "the update does not fit one message");
    }
  cleanup_free uint8_t *msg = malloc (wlen + 2);
  if (msg == NULL)
    {
      free (wire);
      return skiff_error_set (err, ENOMEM, "update");
    }
  msg[0] = (uint8_t)(wlen >> 8);
  msg[1] = (uint8_t)wlen;
  memcpy (msg + 2, wire, wlen);
  free (wire);

  int64_t deadline = now_ms () + (t->timeout_ms > 0 ? t->timeout_ms : 3000);
  cleanup_close int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "socket");
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
    return skiff_error_set (err, errno, "connect to %s:%d", t->server, ntohs (sa.sin_port));
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (wait_fd (fd, POLLOUT, deadline) < 0 || getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr)
    return skiff_error_set (err, soerr ? soerr : errno, "connect to %s:%d", t->server, ntohs (sa.sin_port));
  if (io_all (fd, msg, wlen + 2, 1, deadline) < 0)
    return skiff_error_set (err, errno, "send the update to %s", t->server);
  uint8_t hdr[2];
  if (io_all (fd, hdr, 2, 0, deadline) < 0)
    return skiff_error_set (err, errno, "read the answer of %s", t->server);
  size_t alen = ((size_t)hdr[0] << 8) | hdr[1];
  if (alen < 12)
    return skiff_error_set (err, EPROTO, "short answer from %s", t->server);
  cleanup_free uint8_t *ans = malloc (alen);
  if (ans == NULL)
    return skiff_error_set (err, ENOMEM, "answer");
  if (io_all (fd, ans, alen, 0, deadline) < 0)
    return skiff_error_set (err, errno, "read the answer of %s", t->server);
  cleanup_pkt ldns_pkt *resp = NULL;
  if (ldns_wire2pkt (&resp, ans, alen) != LDNS_STATUS_OK)
    return skiff_error_set (err, EPROTO, "unreadable answer from %s", t->server);
  if (ldns_pkt_id (resp) != id || !ldns_pkt_qr (resp))
    return skiff_error_set (err, EPROTO, "the answer of %s does not match the update", t->server);
  if (ldns_pkt_get_rcode (resp) != LDNS_RCODE_NOERROR)
    {
      ldns_lookup_table *rc = ldns_lookup_by_id (ldns_rcodes, ldns_pkt_get_rcode (resp));
      ldns_rr *tsig = ldns_pkt_tsig (resp);
      return skiff_error_set (err, EPROTO, "%s refused the update: %s%s", t->server, rc ? rc->name : "error",
                              tsig ? "" : " (answer not signed: the key was not accepted)");
    }
  ldns_rr *req_tsig = ldns_pkt_tsig (req);
  ldns_rdf *req_mac = req_tsig ? ldns_rr_rdf (req_tsig, 3) : NULL;
  if (!ldns_pkt_tsig_verify (resp, ans, alen, key_fq, t->key_secret, req_mac))
    return skiff_error_set (err, EPROTO, "the answer of %s is not signed with the key `%s`", t->server, t->key_name);
  return 0;
}
