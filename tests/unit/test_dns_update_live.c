/* test_dns_update_live.c - the RFC 2136 client against a real BIND: named runs in the foreground
 * from a temp folder, listening only on 127.0.0.1 at a free port, primary for example.test and
 * 10.in-addr.arpa, updates allowed with TSIG keys the test generates (hmac-sha256 and
 * hmac-sha512). Checks, by asking named with ldns: set A and PTR, setting again (one value),
 * changing (one value), several changes in one message, deleting (NXDOMAIN, idempotent), the
 * sha512 key; errors: a wrong secret (NOTAUTH/BADSIG, nothing changed), an unknown key, a zone
 * named does not serve, a port nobody listens on (fast ECONNREFUSED), a listener that never
 * answers (ETIMEDOUT in time). Traffic stays on 127.0.0.1. Needs root and /usr/sbin/named;
 * otherwise prints a skip note. named is killed and the folder removed at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "dns/dns.h"
#include "test.h"

#define NAMED "/usr/sbin/named"
#define KEY "skiff-test"
#define KEY512 "skiff-test-512"

static char tmp[] = "/tmp/skiff-dns-live-XXXXXX";
static int have_tmp;
static pid_t named_pid = -1;
static int port;
static char secret[64], secret512[128];

static void
stop_named (void)
{
  if (named_pid > 0)
    {
      kill (named_pid, SIGTERM);
      int waited = 0;
      while (waitpid (named_pid, NULL, WNOHANG) == 0)
        {
          if (++waited == 50)
            kill (named_pid, SIGKILL); /* 5 s */
          usleep (100000);
        }
      named_pid = -1;
    }
  if (have_tmp)
    {
      skiff_error_t e = NULL;
      if (skiff_rm_rf (tmp, &e) < 0)
        {
          fprintf (stderr, "remove %s: %s\n", tmp, e->msg);
          skiff_error_release (&e);
        }
      have_tmp = 0;
    }
}

static void
fail_err (const char *what, skiff_error_t *e)
{
  fprintf (stderr, "FAIL %s: %s\n", what, *e ? (*e)->msg : "?");
  test_failed++;
  skiff_error_release (e);
}

#define OK(call, what)                                                                                                 \
  do                                                                                                                   \
    {                                                                                                                  \
      skiff_error_t e = NULL;                                                                                          \
      if ((call) < 0)                                                                                                  \
        fail_err (what, &e);                                                                                           \
      else                                                                                                             \
        test_passed++;                                                                                                 \
    }                                                                                                                  \
  while (0)

static int
has (const char *msg, const char *want)
{
  return want == NULL || strstr (msg, want) != NULL;
}

/* Expects call (which uses `e`) to fail with errno status st and, when want is set, a message
 * holding it. */
#define FAILS(call, st, want)                                                                                          \
  do                                                                                                                   \
    {                                                                                                                  \
      skiff_error_t e = NULL;                                                                                          \
      int _r = (call);                                                                                                 \
      int _ok = _r < 0 && e && e->status == (st) && has (e->msg, (want));                                              \
      CHECK (_ok);                                                                                                     \
      if (!_ok)                                                                                                        \
        fprintf (stderr, "  got %d: %s\n", _r, e ? e->msg : "no error");                                               \
      skiff_error_release (&e);                                                                                        \
    }                                                                                                                  \
  while (0)

/* ---- named ---- */

static void
random_secret (char *out, size_t out_len, size_t bytes)
{
  unsigned char raw[64];
  if (bytes > sizeof raw || RAND_bytes (raw, (int)bytes) != 1 || out_len < 4 * ((bytes + 2) / 3) + 1)
    abort ();
  EVP_EncodeBlock ((unsigned char *)out, raw, (int)bytes);
}

/* A port free for TCP and UDP on 127.0.0.1 (at the time of asking). */
static int
free_port (void)
{
  for (int attempt = 0; attempt < 20; attempt++)
    {
      int t = socket (AF_INET, SOCK_STREAM, 0), u = socket (AF_INET, SOCK_DGRAM, 0);
      struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
      socklen_t len = sizeof sa;
      int p = -1;
      if (t >= 0 && u >= 0 && bind (t, (struct sockaddr *)&sa, sizeof sa) == 0
          && getsockname (t, (struct sockaddr *)&sa, &len) == 0 && bind (u, (struct sockaddr *)&sa, sizeof sa) == 0)
        p = ntohs (sa.sin_port);
      close (t);
      close (u);
      if (p > 0)
        return p;
    }
  return -1;
}

static int
write_text (const char *name, const char *text)
{
  char *path = skiff_strdup_printf ("%s/%s", tmp, name);
  skiff_error_t e = NULL;
  int rc = skiff_write_file_replace (path, text, strlen (text), 0644, &e);
  if (rc < 0)
    fail_err (path, &e);
  free (path);
  return rc;
}

static int
write_config (void)
{
  char *conf = skiff_strdup_printf ("options {\n"
                                    "  directory \"%s\";\n"
                                    "  pid-file \"%s/named.pid\";\n"
                                    "  session-keyfile \"%s/session.key\";\n"
                                    "  managed-keys-directory \"%s\";\n"
                                    "  listen-on port %d { 127.0.0.1; };\n"
                                    "  listen-on-v6 { none; };\n"
                                    "  recursion no;\n"
                                    "  allow-query { 127.0.0.1; };\n"
                                    "  allow-transfer { none; };\n"
                                    "  notify no;\n"
                                    "  dnssec-validation no;\n"
                                    "};\n"
                                    "controls { };\n"
                                    "key \"" KEY "\" { algorithm hmac-sha256; secret \"%s\"; };\n"
                                    "key \"" KEY512 "\" { algorithm hmac-sha512; secret \"%s\"; };\n"
                                    "zone \"example.test\" { type primary; file \"%s/example.test.db\";\n"
                                    "  allow-update { key \"" KEY "\"; key \"" KEY512 "\"; }; };\n"
                                    "zone \"10.in-addr.arpa\" { type primary; file \"%s/10.rev.db\";\n"
                                    "  allow-update { key \"" KEY "\"; }; };\n",
                                    tmp, tmp, tmp, tmp, port, secret, secret512, tmp, tmp);
  int rc = write_text ("named.conf", conf);
  free (conf);
  if (rc < 0)
    return -1;
  const char *fwd = "$TTL 300\n"
                    "@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
                    "@ IN NS ns.example.test.\n"
                    "ns IN A 127.0.0.1\n"
                    "keep IN A 10.9.9.9\n";
  const char *rev = "$TTL 300\n"
                    "@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
                    "@ IN NS ns.example.test.\n";
  return write_text ("example.test.db", fwd) < 0 || write_text ("10.rev.db", rev) < 0 ? -1 : 0;
}

static void
print_log (void)
{
  char *path = skiff_strdup_printf ("%s/named.log", tmp);
  char *text = NULL;
  size_t len = 0;
  skiff_error_t e = NULL;
  if (skiff_read_file (path, 1 << 20, &text, &len, &e) == 0)
    fprintf (stderr, "---- named.log (last 3000 bytes) ----\n%s\n----\n", len > 3000 ? text + len - 3000 : text);
  skiff_error_release (&e);
  free (text);
  free (path);
}

static int
start_named (void)
{
  char *conf = skiff_strdup_printf ("%s/named.conf", tmp);
  char *log = skiff_strdup_printf ("%s/named.log", tmp);
  pid_t pid = fork ();
  if (pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
      int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0)
        {
          dup2 (fd, 1);
          dup2 (fd, 2);
        }
      execl (NAMED, "named", "-g", "-4", "-n", "1", "-c", conf, (char *)NULL);
      _exit (127);
    }
  free (conf);
  free (log);
  if (pid < 0)
    return -1;
  named_pid = pid;
  return 0;
}

/* ---- asking named ---- */

/* Asks named for name/type over UDP; the answer or NULL. */
static ldns_pkt *
ask (const char *name, ldns_rr_type type)
{
  ldns_pkt *q = NULL, *p = NULL;
  uint8_t *w = NULL;
  size_t len = 0;
  if (ldns_pkt_query_new_frm_str (&q, name, type, LDNS_RR_CLASS_IN, 0) != LDNS_STATUS_OK)
    return NULL;
  ldns_pkt_set_random_id (q);
  int fd = socket (AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  struct timeval tv = { 1, 0 };
  uint8_t buf[4096];
  if (fd >= 0 && ldns_pkt2wire (&w, q, &len) == LDNS_STATUS_OK
      && setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0
      && connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0 && send (fd, w, len, 0) == (ssize_t)len)
    {
      ssize_t n = recv (fd, buf, sizeof buf, 0);
      if (n > 0 && (ldns_wire2pkt (&p, buf, (size_t)n) != LDNS_STATUS_OK || ldns_pkt_id (p) != ldns_pkt_id (q)))
        {
          ldns_pkt_free (p);
          p = NULL;
        }
    }
  if (fd >= 0)
    close (fd);
  free (w);
  ldns_pkt_free (q);
  return p;
}

/* The answer's records of type, their first rdata field, sorted, joined by ' '; "NXDOMAIN",
 * "NODATA", or "ERROR" otherwise. *ttl gets the first record's TTL. */
static void
lookup (const char *name, ldns_rr_type type, char *out, size_t n, uint32_t *ttl)
{
  ldns_pkt *p = ask (name, type);
  snprintf (out, n, "ERROR");
  if (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_NXDOMAIN)
    snprintf (out, n, "NXDOMAIN");
  else if (p && ldns_pkt_get_rcode (p) == LDNS_RCODE_NOERROR)
    {
      ldns_rr_list *l = ldns_pkt_rr_list_by_type (p, type, LDNS_SECTION_ANSWER);
      if (l == NULL || ldns_rr_list_rr_count (l) == 0)
        snprintf (out, n, "NODATA");
      else
        {
          ldns_rr_list_sort (l);
          size_t len = 0;
          out[0] = '\0';
          for (size_t i = 0; i < ldns_rr_list_rr_count (l) && len < n; i++)
            {
              char *v = ldns_rdf2str (ldns_rr_rdf (ldns_rr_list_rr (l, i), 0));
              len += (size_t)snprintf (out + len, n - len, "%s%s", i ? " " : "", v ? v : "?");
              free (v);
            }
          if (ttl)
            *ttl = ldns_rr_ttl (ldns_rr_list_rr (l, 0));
        }
      ldns_rr_list_deep_free (l);
    }
  ldns_pkt_free (p);
}

#define EXPECT(name, type, want)                                                                                       \
  do                                                                                                                   \
    {                                                                                                                  \
      char _got[512];                                                                                                  \
      lookup ((name), (type), _got, sizeof _got, NULL);                                                                \
      CHECK_STR (_got, (want));                                                                                        \
    }                                                                                                                  \
  while (0)

/* Waits until named answers the zone's SOA, up to 10 s; -1 when it exited or never did. */
static int
wait_named (void)
{
  for (int i = 0; i < 100; i++)
    {
      if (waitpid (named_pid, NULL, WNOHANG) == named_pid)
        {
          named_pid = -1;
          return -1;
        }
      char got[512];
      lookup ("example.test", LDNS_RR_TYPE_SOA, got, sizeof got, NULL);
      if (strcmp (got, "ns.example.test.") == 0)
        return 0;
      usleep (100000);
    }
  return -1;
}

static int64_t
ms_now (void)
{
  return skiff_monotonic_ns () / 1000000;
}

/* ---- the checks ---- */

static void
test_updates (void)
{
  dns_update_target_t fwd = { "127.0.0.1", port, "example.test", KEY, "hmac-sha256", secret, 3000 };
  dns_update_target_t rev = fwd;
  rev.zone = "10.in-addr.arpa";

  /* set A and PTR */
  dns_change_t a1[] = { { "www.example.test", DNS_TYPE_A, "10.1.2.3", 60 } };
  dns_change_t p1[] = { { "3.2.1.10.in-addr.arpa", DNS_TYPE_PTR, "www.example.test", 60 } };
  OK (dns_update_send (&fwd, a1, 1, &e), "set A");
  OK (dns_update_send (&rev, p1, 1, &e), "set PTR");
  char got[512];
  uint32_t ttl = 0;
  lookup ("www.example.test", LDNS_RR_TYPE_A, got, sizeof got, &ttl);
  CHECK_STR (got, "10.1.2.3");
  CHECK (ttl == 60);
  EXPECT ("3.2.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, "www.example.test.");
  /* again: still one value */
  OK (dns_update_send (&fwd, a1, 1, &e), "set A again");
  OK (dns_update_send (&rev, p1, 1, &e), "set PTR again");
  EXPECT ("www.example.test", LDNS_RR_TYPE_A, "10.1.2.3");
  EXPECT ("3.2.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, "www.example.test.");
  /* changed: exactly the new value */
  dns_change_t a2[] = { { "WWW.example.test", DNS_TYPE_A, "10.1.2.4", 120 } };
  OK (dns_update_send (&fwd, a2, 1, &e), "change A");
  lookup ("www.example.test", LDNS_RR_TYPE_A, got, sizeof got, &ttl);
  CHECK_STR (got, "10.1.2.4");
  CHECK (ttl == 120);
  dns_change_t p2[] = { { "3.2.1.10.in-addr.arpa", DNS_TYPE_PTR, "web.example.test", 60 } };
  OK (dns_update_send (&rev, p2, 1, &e), "change PTR");
  EXPECT ("3.2.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, "web.example.test.");
  /* several changes in one message, a delete among them */
  dns_change_t many[] = { { "a.example.test", DNS_TYPE_A, "10.1.0.1", 60 },
                          { "b.example.test", DNS_TYPE_A, "10.1.0.2", 60 },
                          { "www.example.test", DNS_TYPE_A, NULL, 0 } };
  OK (dns_update_send (&fwd, many, 3, &e), "several changes");
  EXPECT ("a.example.test", LDNS_RR_TYPE_A, "10.1.0.1");
  EXPECT ("b.example.test", LDNS_RR_TYPE_A, "10.1.0.2");
  EXPECT ("www.example.test", LDNS_RR_TYPE_A, "NXDOMAIN");
  EXPECT ("keep.example.test", LDNS_RR_TYPE_A, "10.9.9.9");
  /* deletes: gone, and deleting again is fine */
  dns_change_t d1[] = { { "3.2.1.10.in-addr.arpa", DNS_TYPE_PTR, NULL, 0 } };
  OK (dns_update_send (&rev, d1, 1, &e), "delete PTR");
  EXPECT ("3.2.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, "NXDOMAIN");
  OK (dns_update_send (&rev, d1, 1, &e), "delete PTR again");
  dns_change_t d2[] = { { "b.example.test", DNS_TYPE_A, NULL, 0 } };
  OK (dns_update_send (&fwd, d2, 1, &e), "delete A");
  EXPECT ("b.example.test", LDNS_RR_TYPE_A, "NXDOMAIN");
  /* deleting A leaves other types of the name alone */
  EXPECT ("example.test", LDNS_RR_TYPE_NS, "ns.example.test.");
  /* an empty update is a signed no-op */
  OK (dns_update_send (&fwd, NULL, 0, &e), "empty update");
  /* the sha512 key, key name with a trailing dot */
  dns_update_target_t fwd512 = fwd;
  fwd512.key_name = KEY512 ".";
  fwd512.key_algorithm = "hmac-sha512";
  fwd512.key_secret = secret512;
  dns_change_t c1[] = { { "c.example.test", DNS_TYPE_A, "10.1.0.3", 60 } };
  OK (dns_update_send (&fwd512, c1, 1, &e), "set with hmac-sha512");
  EXPECT ("c.example.test", LDNS_RR_TYPE_A, "10.1.0.3");
  /* the 512 key may not update the reverse zone */
  dns_update_target_t rev512 = fwd512;
  rev512.zone = "10.in-addr.arpa";
  FAILS (dns_update_send (&rev512, p1, 1, &e), EPROTO, "REFUSED");
  EXPECT ("3.2.1.10.in-addr.arpa", LDNS_RR_TYPE_PTR, "NXDOMAIN");
}

static void
test_errors (void)
{
  dns_update_target_t good = { "127.0.0.1", port, "example.test", KEY, NULL, secret, 3000 };
  dns_change_t ch[] = { { "a.example.test", DNS_TYPE_A, "10.6.6.6", 60 } };
  /* a wrong secret: NOTAUTH with BADSIG, and nothing changed */
  char wrong[64];
  random_secret (wrong, sizeof wrong, 32);
  dns_update_target_t t = good;
  t.key_secret = wrong;
  FAILS (dns_update_send (&t, ch, 1, &e), EPROTO, "NOTAUTH");
  FAILS (dns_update_send (&t, ch, 1, &e), EPROTO, "BADSIG");
  EXPECT ("a.example.test", LDNS_RR_TYPE_A, "10.1.0.1");
  /* an unknown key, the right key with the wrong algorithm */
  t = good;
  t.key_name = "nobody";
  FAILS (dns_update_send (&t, ch, 1, &e), EPROTO, "NOTAUTH");
  t = good;
  t.key_algorithm = "hmac-sha512";
  FAILS (dns_update_send (&t, ch, 1, &e), EPROTO, "NOTAUTH");
  EXPECT ("a.example.test", LDNS_RR_TYPE_A, "10.1.0.1");
  /* a zone named does not serve */
  t = good;
  t.zone = "other.test";
  dns_change_t other[] = { { "x.other.test", DNS_TYPE_A, "10.6.6.6", 60 } };
  FAILS (dns_update_send (&t, other, 1, &e), EPROTO, NULL);
  /* a name outside the zone is refused before sending */
  dns_change_t outside[] = { { "x.other.test", DNS_TYPE_A, "10.6.6.6", 60 } };
  FAILS (dns_update_send (&good, outside, 1, &e), EINVAL, NULL);
  /* nobody listening: refused at once */
  int closed = free_port ();
  t = good;
  t.port = closed;
  int64_t t0 = ms_now ();
  FAILS (dns_update_send (&t, ch, 1, &e), ECONNREFUSED, NULL);
  CHECK (ms_now () - t0 < 1000);
  /* a listener that never answers: ETIMEDOUT after the timeout */
  int l = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  if (l >= 0 && bind (l, (struct sockaddr *)&sa, sizeof sa) == 0 && listen (l, 4) == 0
      && getsockname (l, (struct sockaddr *)&sa, &len) == 0)
    {
      t = good;
      t.port = ntohs (sa.sin_port);
      t.timeout_ms = 300;
      t0 = ms_now ();
      FAILS (dns_update_send (&t, ch, 1, &e), ETIMEDOUT, NULL);
      int64_t took = ms_now () - t0;
      CHECK (took >= 250 && took < 2000);
    }
  else
    CHECK (0);
  if (l >= 0)
    close (l);
  EXPECT ("a.example.test", LDNS_RR_TYPE_A, "10.1.0.1");
}

int
main (void)
{
  if (geteuid () != 0 || access (NAMED, X_OK) != 0)
    {
      printf ("skip: needs root and " NAMED "\n");
      TEST_MAIN_END ();
    }
  signal (SIGPIPE, SIG_IGN);
  if (mkdtemp (tmp) == NULL)
    {
      perror ("mkdtemp");
      return 1;
    }
  have_tmp = 1;
  atexit (stop_named);
  random_secret (secret, sizeof secret, 32);
  random_secret (secret512, sizeof secret512, 64);
  port = free_port ();
  CHECK (port > 0);
  if (port > 0 && write_config () == 0 && start_named () == 0)
    {
      int up = wait_named ();
      CHECK (up == 0);
      if (up == 0)
        {
          test_updates ();
          test_errors ();
        }
      if (test_failed)
        print_log ();
    }
  stop_named ();
  TEST_MAIN_END ();
}
