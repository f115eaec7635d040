/* test_net_live.c - the net module against the real kernel: a test bridge "sktest0" on
 * 10.231.0.0/24 with nftables table "inet skiff_test" (never a real skiffd's), two network
 * namespaces pinned by bind mounts under a temp folder and attached as 10.231.0.2 / .3.
 * Checks addresses, routes and loopback inside, TCP between the namespaces, that a namespace
 * cannot reach a host listener (input drop) while the host can, DNS port allowed to the
 * gateway, that set-up twice converges, re-attach, detach, listing, CIDR parsing, and prints
 * the time an attach takes. Traffic stays between the test's namespaces and the host's own
 * addresses. Needs root and nf_tables; otherwise prints a skip note. Cleans up at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "net/net.h"
#include "net/net_internal.h"
#include "test.h"

#define IF_A "sktva0"
#define IF_B "sktvb0"
#define IF_C "sktvc0"
#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define IP_GW IP (10, 231, 0, 1)
#define IP_A IP (10, 231, 0, 2)
#define IP_B IP (10, 231, 0, 3)
#define IP_C IP (10, 231, 0, 4)

static const net_config_t cfg = { "sktest0", IP (10, 231, 0, 0), 24, 0, "skiff_test" };

static char tmp[] = "/tmp/skiff-net-XXXXXX";
static char ns_a[128], ns_b[128], ns_c[128];
static char saved_forward = 0;

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
      skiff_error_t _e = NULL;                                                                                         \
      if ((call) < 0)                                                                                                  \
        fail_err (what, &_e);                                                                                          \
      else                                                                                                             \
        test_passed++;                                                                                                 \
    }                                                                                                                  \
  while (0)

/* Expects call (which uses `e`) to fail with errno status st. */
#define FAILS(call, st)                                                                                                \
  do                                                                                                                   \
    {                                                                                                                  \
      skiff_error_t e = NULL;                                                                                          \
      int _r = (call);                                                                                                 \
      CHECK (_r < 0 && e && e->status == (st));                                                                        \
      if (!(_r < 0 && e && e->status == (st)))                                                                         \
        fprintf (stderr, "  got %d: %s\n", _r, e ? e->msg : "no error");                                               \
      skiff_error_release (&e);                                                                                        \
    }                                                                                                                  \
  while (0)

/* ---- namespaces and sockets ---- */

struct ns_job
{
  const char *path;
  int domain, type; /* for socket_in_ns */
  int fd;
  int status;
};

static void *
pin_thread (void *arg)
{
  struct ns_job *j = arg;
  if (unshare (CLONE_NEWNET) < 0 || mount ("/proc/thread-self/ns/net", j->path, NULL, MS_BIND, NULL) < 0)
    j->status = errno;
  return NULL;
}

static int
pin_netns (const char *path)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
  if (fd < 0)
    return -1;
  struct ns_job j = { path, 0, 0, -1, 0 };
  pthread_t th;
  if (pthread_create (&th, NULL, pin_thread, &j) != 0)
    return -1;
  pthread_join (th, NULL);
  errno = j.status;
  return j.status ? -1 : 0;
}

static void *
socket_thread (void *arg)
{
  struct ns_job *j = arg;
  cleanup_close int nsfd = open (j->path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0 || setns (nsfd, CLONE_NEWNET) < 0)
    {
      j->status = errno;
      return NULL;
    }
  j->fd = socket (j->domain, j->type | SOCK_CLOEXEC, 0);
  if (j->fd < 0)
    j->status = errno;
  return NULL;
}

/* A socket that lives in the network namespace pinned at path. */
static int
socket_in_ns (const char *path, int domain, int type)
{
  struct ns_job j = { path, domain, type, -1, 0 };
  pthread_t th;
  if (pthread_create (&th, NULL, socket_thread, &j) != 0)
    return -1;
  pthread_join (th, NULL);
  errno = j.status;
  return j.fd;
}

static struct sockaddr_in
sin_of (uint32_t addr, int port)
{
  struct sockaddr_in sa;
  memset (&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl (addr);
  sa.sin_port = htons ((uint16_t)port);
  return sa;
}

/* Listening TCP socket on addr:port (port 0: any) in the caller's or path's namespace. */
static int
listener (const char *ns_path, uint32_t addr, int port, int *bound_port)
{
  int fd = ns_path ? socket_in_ns (ns_path, AF_INET, SOCK_STREAM) : socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = sin_of (addr, port);
  socklen_t len = sizeof sa;
  if (bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen (fd, 8) < 0
      || getsockname (fd, (struct sockaddr *)&sa, &len) < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  if (bound_port)
    *bound_port = ntohs (sa.sin_port);
  return fd;
}

/* Connects fd to addr:port within ms. 0 on success, else -1 with errno (ETIMEDOUT when no answer). */
static int
connect_within (int fd, uint32_t addr, int port, int ms)
{
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
  struct sockaddr_in sa = sin_of (addr, port);
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
    return 0;
  if (errno != EINPROGRESS)
    return -1;
  struct pollfd p = { fd, POLLOUT, 0 };
  int r = poll (&p, 1, ms);
  if (r == 0)
    {
      errno = ETIMEDOUT;
      return -1;
    }
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (r < 0 || getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
    return -1;
  errno = soerr;
  return soerr ? -1 : 0;
}

/* Connects from namespace ns_path (NULL: host) to addr:port; returns 0 or -1 with errno. */
static int
try_connect (const char *ns_path, uint32_t addr, int port, int ms)
{
  cleanup_close int fd
      = ns_path ? socket_in_ns (ns_path, AF_INET, SOCK_STREAM) : socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  return connect_within (fd, addr, port, ms);
}

/* Accepts one pending connection without waiting more than ms; returns the peer address or 0. */
static uint32_t
accept_peer (int lfd, int ms)
{
  struct pollfd p = { lfd, POLLIN, 0 };
  if (poll (&p, 1, ms) <= 0)
    return 0;
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  cleanup_close int c = accept4 (lfd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
  return c < 0 ? 0 : ntohl (sa.sin_addr.s_addr);
}

/* ---- helpers ---- */

/* Runs a shell command and returns its stdout (at most 64 KiB); NULL when it could not run. */
static char *capture (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static char *
capture (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  cleanup_free char *cmd = NULL;
  if (vasprintf (&cmd, fmt, ap) < 0)
    cmd = NULL;
  va_end (ap);
  if (cmd == NULL)
    return NULL;
  FILE *f = popen (cmd, "r");
  if (f == NULL)
    return NULL;
  size_t cap = 65536, n = 0;
  char *out = malloc (cap + 1);
  if (out)
    {
      size_t k;
      while (n < cap && (k = fread (out + n, 1, cap - n, f)) > 0)
        n += k;
      out[n] = '\0';
    }
  pclose (f);
  return out;
}

static int
contains (const char *hay, const char *needle)
{
  return hay && strstr (hay, needle) != NULL;
}

static int
count_of (const char *hay, const char *needle)
{
  int n = 0;
  for (const char *p = hay; p && (p = strstr (p, needle)); p += strlen (needle))
    n++;
  return n;
}

static int
strv_has (char **v, const char *s)
{
  for (char **p = v; p && *p; p++)
    if (strcmp (*p, s) == 0)
      return 1;
  return 0;
}

static char *
list_table (void)
{
  skiff_error_t e = NULL;
  char *out = NULL;
  if (net_nft_run ("list table inet skiff_test", &out, &e) < 0)
    {
      skiff_error_release (&e);
      return NULL;
    }
  return out;
}

static char
read_forward (void)
{
  cleanup_close int fd = open ("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
  char c = 0;
  if (fd < 0 || read (fd, &c, 1) != 1)
    return 0;
  return c;
}

/* ---- the checks ---- */

static void
test_parse (void)
{
  uint32_t s = 0;
  int p = 0;
  skiff_error_t e = NULL;
  CHECK (net_parse_cidr ("10.88.0.0/16", &s, &p, &e) == 0 && s == IP (10, 88, 0, 0) && p == 16);
  CHECK (net_parse_cidr ("10.231.0.0/24", &s, &p, &e) == 0 && s == IP (10, 231, 0, 0) && p == 24);
  CHECK (net_parse_cidr ("10.0.0.0/8", &s, &p, &e) == 0 && s == IP (10, 0, 0, 0) && p == 8);
  CHECK (net_parse_cidr ("192.168.255.252/30", &s, &p, &e) == 0 && s == IP (192, 168, 255, 252) && p == 30);
  CHECK (net_parse_cidr ("0.0.0.0/8", &s, &p, &e) == 0 && s == 0 && p == 8);
  static const char *const bad[] = { "",
                                     "10.88.0.0",
                                     "10.88.0.0/",
                                     "10.88.0/16",
                                     "10.88.0.0.0/16",
                                     "10.88.0.1/16",
                                     "10.88.0.0/7",
                                     "10.88.0.0/31",
                                     "10.88.0.0/32",
                                     "10.88.0.0/33",
                                     "256.0.0.0/8",
                                     "10.088.0.0/16",
                                     "10.88.0.0/016",
                                     " 10.88.0.0/16",
                                     "10.88.0.0/16 ",
                                     "a.b.c.d/8",
                                     "10.88.0.0/-1",
                                     "10.88.0.0/1x",
                                     "10..0.0/16",
                                     "10.88.0.0//16",
                                     "1000.0.0.0/8",
                                     "10.88.0.0/16/",
                                     "10.88.0.0/999999999999",
                                     NULL };
  for (int i = 0; bad[i]; i++)
    {
      s = 7;
      p = 7;
      int r = net_parse_cidr (bad[i], &s, &p, &e);
      CHECK (r < 0 && e && e->status == EINVAL && s == 7 && p == 7);
      if (r == 0)
        fprintf (stderr, "  accepted `%s`\n", bad[i]);
      skiff_error_release (&e);
    }
  FAILS (net_parse_cidr (NULL, &s, &p, &e), EINVAL);
  char buf[16];
  CHECK_STR (net_format_ip (IP (10, 231, 0, 1), buf), "10.231.0.1");
  CHECK_STR (net_format_ip (0xffffffffu, buf), "255.255.255.255");
  CHECK_STR (net_format_ip (0, buf), "0.0.0.0");
}

static void
test_validation (void)
{
  net_config_t c = cfg;
  c.table = "bad;name";
  FAILS (net_host_setup (&c, &e), EINVAL);
  c = cfg;
  c.bridge = "br\"x";
  FAILS (net_host_setup (&c, &e), EINVAL);
  c = cfg;
  c.bridge = "sktest0123456789";
  FAILS (net_host_setup (&c, &e), EINVAL);
  c = cfg;
  c.gateway = IP (10, 232, 0, 1);
  FAILS (net_host_setup (&c, &e), EINVAL);
  c = cfg;
  c.gateway = IP (10, 231, 0, 255);
  FAILS (net_host_setup (&c, &e), EINVAL);
  c = cfg;
  c.subnet = IP (10, 231, 0, 1);
  FAILS (net_host_setup (&c, &e), EINVAL);
  c = cfg;
  c.prefix = 31;
  FAILS (net_host_setup (&c, &e), EINVAL);
  FAILS (net_group_attach (&cfg, ns_a, "sktv0123456789ab", IP_A, &e), EINVAL);
  FAILS (net_group_attach (&cfg, ns_a, "a b", IP_A, &e), EINVAL);
  FAILS (net_group_attach (&cfg, ns_a, "", IP_A, &e), EINVAL);
  FAILS (net_group_attach (&cfg, ns_a, IF_A, IP (10, 232, 0, 2), &e), EINVAL);
  FAILS (net_group_attach (&cfg, ns_a, IF_A, IP_GW, &e), EINVAL);
  FAILS (net_group_attach (&cfg, ns_a, IF_A, IP (10, 231, 0, 0), &e), EINVAL);
  FAILS (net_group_attach (&cfg, ns_a, IF_A, IP (10, 231, 0, 255), &e), EINVAL);
  FAILS (net_group_attach (&cfg, "relative/ns", IF_A, IP_A, &e), EINVAL);
  FAILS (net_group_detach ("../x", &e), EINVAL);
  FAILS (net_list_ifaces ("sktv0123456789abc", NULL, &e), EINVAL);
}

static void
test_host_setup (void)
{
  OK (net_host_setup (&cfg, &_e), "net_host_setup");
  cleanup_free char *addrs = capture ("ip -4 addr show dev sktest0 2>&1");
  CHECK (contains (addrs, "inet 10.231.0.1/24"));
  cleanup_free char *link = capture ("ip link show dev sktest0 2>&1");
  CHECK (contains (link, ",UP") || contains (link, "<UP"));
  CHECK (read_forward () == '1');
  cleanup_free char *t1 = list_table ();
  CHECK (t1 != NULL);
  CHECK (count_of (t1, "masquerade") == 3);
  CHECK (contains (t1, "iifname @bridges oifname != @bridges masquerade"));
  CHECK (contains (t1, "iifname @bridges ip daddr @gateways meta l4proto { tcp, udp } th dport 53 accept"));
  CHECK (contains (t1, "elements = { \"sktest0\" }"));
  CHECK (contains (t1, "elements = { \"sktest0\" . \"sktest0\" }"));
  CHECK (contains (t1, "elements = { 10.231.0.1 }"));
  CHECK (count_of (t1, "drop") == 2);

  /* a stray address on the bridge goes; a second set-up converges to the same table */
  free (capture ("ip addr add 10.231.0.200/24 dev sktest0 2>&1"));
  free (capture ("ip addr add 10.77.0.1/16 dev sktest0 2>&1"));
  int64_t t0 = skiff_monotonic_ns ();
  OK (net_host_setup (&cfg, &_e), "net_host_setup again");
  int64_t dt = skiff_monotonic_ns () - t0;
  cleanup_free char *t2 = list_table ();
  CHECK_STR (t1, t2);
  cleanup_free char *addrs2 = capture ("ip -4 addr show dev sktest0 2>&1");
  CHECK (contains (addrs2, "inet 10.231.0.1/24"));
  CHECK (!contains (addrs2, "10.231.0.200") && !contains (addrs2, "10.77.0.1"));
  printf ("net_host_setup (existing bridge and table): %.2f ms\n", dt / 1e6);
  if (test_failed)
    fprintf (stderr, "table:\n%s\naddresses:\n%s\n", t1 ? t1 : "(none)", addrs2 ? addrs2 : "");
}

static int64_t
timed_attach (const char *ns, const char *ifname, uint32_t addr, const char *what)
{
  int64_t t0 = skiff_monotonic_ns ();
  skiff_error_t e = NULL;
  int r = net_group_attach (&cfg, ns, ifname, addr, &e);
  int64_t dt = skiff_monotonic_ns () - t0;
  if (r < 0)
    {
      fail_err (what, &e);
      return -1;
    }
  test_passed++;
  return dt;
}

static void
check_inside (const char *ns, const char *addr_prefix, const char *label)
{
  cleanup_free char *a = capture ("nsenter --net=%s ip -4 addr show dev eth0 2>&1", ns);
  cleanup_free char *r = capture ("nsenter --net=%s ip -4 route show 2>&1", ns);
  cleanup_free char *lo = capture ("nsenter --net=%s ip link show dev lo 2>&1", ns);
  cleanup_free char *eth = capture ("nsenter --net=%s ip link show dev eth0 2>&1", ns);
  char needle[64];
  snprintf (needle, sizeof needle, "inet %s", addr_prefix);
  CHECK (contains (a, needle));
  CHECK (contains (r, "default via 10.231.0.1 dev eth0"));
  CHECK (contains (r, "10.231.0.0/24 dev eth0"));
  CHECK (contains (lo, ",UP"));
  CHECK (contains (eth, ",UP") && contains (eth, "LOWER_UP"));
  if (!contains (a, needle) || !contains (r, "default via 10.231.0.1 dev eth0"))
    fprintf (stderr, "  %s: addr: %s  route: %s\n", label, a ? a : "", r ? r : "");
}

static void
check_a_reaches_b (const char *label)
{
  int port = 0;
  cleanup_close int l = listener (ns_b, IP_B, 0, &port);
  CHECK (l >= 0);
  if (l < 0)
    return;
  int r = try_connect (ns_a, IP_B, port, 2000);
  CHECK (r == 0);
  if (r < 0)
    fprintf (stderr, "  %s: A -> B connect: %s\n", label, strerror (errno));
  /* same network: no NAT between groups */
  CHECK (accept_peer (l, 1000) == IP_A);
}

static void
test_groups (void)
{
  /* no bridge by that name: ENODEV; not a veth: EEXIST and left alone */
  net_config_t nob = cfg;
  nob.bridge = "sktestnone";
  FAILS (net_group_attach (&nob, ns_a, IF_A, IP_A, &e), ENODEV);
  FAILS (net_group_attach (&cfg, ns_a, "sktest0", IP_A, &e), EEXIST);
  FAILS (net_group_detach ("sktest0", &e), EEXIST);
  FAILS (net_group_detach ("lo", &e), EEXIST);
  {
    char p[256];
    snprintf (p, sizeof p, "%s/missing", tmp);
    FAILS (net_group_attach (&cfg, p, IF_A, IP_A, &e), ENOENT);
  }

  int64_t ta = timed_attach (ns_a, IF_A, IP_A, "attach A");
  int64_t tb = timed_attach (ns_b, IF_B, IP_B, "attach B");
  printf ("attach (first): A %.3f ms, B %.3f ms\n", ta / 1e6, tb / 1e6);
  check_inside (ns_a, "10.231.0.2/24", "A");
  check_inside (ns_b, "10.231.0.3/24", "B");
  {
    cleanup_free char *l = capture ("ip link show dev " IF_A " 2>&1");
    CHECK (contains (l, "master sktest0") && contains (l, ",UP"));
  }

  cleanup_strv char **names = NULL;
  OK (net_list_ifaces ("sktv", &names, &_e), "net_list_ifaces");
  CHECK (strv_has (names, IF_A) && strv_has (names, IF_B) && !strv_has (names, "sktest0"));
  {
    cleanup_strv char **none = NULL;
    OK (net_list_ifaces ("sktvnothing", &none, &_e), "net_list_ifaces (none)");
    CHECK (none != NULL && none[0] == NULL);
    cleanup_strv char **all = NULL;
    OK (net_list_ifaces ("", &all, &_e), "net_list_ifaces (all)");
    CHECK (strv_has (all, "lo") && strv_has (all, "sktest0") && strv_has (all, IF_A));
  }

  check_a_reaches_b ("first attach");

  /* a host listener on 0.0.0.0: not reachable from a namespace (input drop), reachable from the host */
  {
    int port = 0;
    cleanup_close int l = listener (NULL, INADDR_ANY, 0, &port);
    CHECK (l >= 0);
    if (l >= 0)
      {
        int r = try_connect (ns_a, IP_GW, port, 500);
        int e = errno;
        CHECK (r < 0 && e == ETIMEDOUT);
        if (r == 0 || e != ETIMEDOUT)
          fprintf (stderr, "  namespace -> host listener: %s\n", r == 0 ? "connected" : strerror (e));
        CHECK (accept_peer (l, 0) == 0);
        CHECK (try_connect (NULL, IP (127, 0, 0, 1), port, 1000) == 0);
        CHECK (accept_peer (l, 1000) == IP (127, 0, 0, 1));
        CHECK (try_connect (NULL, IP_GW, port, 1000) == 0);
        CHECK (accept_peer (l, 1000) != 0);
      }
  }
  /* the host may connect into a namespace (replies pass the established rule) */
  {
    int port = 0;
    cleanup_close int l = listener (ns_a, IP_A, 0, &port);
    CHECK (l >= 0 && try_connect (NULL, IP_A, port, 2000) == 0);
    CHECK (l >= 0 && accept_peer (l, 1000) == IP_GW);
  }
  /* TCP port 53 on the gateway is allowed (DNS) */
  {
    cleanup_close int l = listener (NULL, IP_GW, 53, NULL);
    if (l < 0)
      printf ("note: TCP 10.231.0.1:53 not bindable (%s); DNS allow check skipped\n", strerror (errno));
    else
      {
        CHECK (try_connect (ns_b, IP_GW, 53, 2000) == 0);
        CHECK (accept_peer (l, 1000) == IP_B);
      }
  }

  /* re-attach of an existing name */
  int64_t tr = timed_attach (ns_a, IF_A, IP_A, "re-attach A");
  printf ("re-attach (existing veth deleted first): %.3f ms\n", tr / 1e6);
  check_inside (ns_a, "10.231.0.2/24", "A again");
  check_a_reaches_b ("re-attach");

  /* a stale eth0 whose host side was renamed: replaced */
  free (capture ("ip link set dev " IF_A " name sktvx0 2>&1"));
  {
    cleanup_strv char **v = NULL;
    OK (net_list_ifaces ("sktv", &v, &_e), "net_list_ifaces");
    CHECK (strv_has (v, "sktvx0") && !strv_has (v, IF_A));
  }
  timed_attach (ns_a, IF_A, IP_A, "attach A over a stale eth0");
  {
    cleanup_strv char **v = NULL;
    OK (net_list_ifaces ("sktv", &v, &_e), "net_list_ifaces");
    CHECK (!strv_has (v, "sktvx0") && strv_has (v, IF_A));
  }
  check_inside (ns_a, "10.231.0.2/24", "A over stale");
  check_a_reaches_b ("after stale eth0");

  /* attach cost over repeated fresh attaches of a third namespace */
  enum
  {
    N = 30
  };
  int64_t sum = 0, mn = INT64_MAX, mx = 0, dsum = 0;
  int ok = 1;
  for (int i = 0; i < N && ok; i++)
    {
      int64_t t = timed_attach (ns_c, IF_C, IP_C, "attach C");
      if (t < 0)
        ok = 0;
      else
        {
          sum += t;
          mn = t < mn ? t : mn;
          mx = t > mx ? t : mx;
        }
      int64_t t0 = skiff_monotonic_ns ();
      OK (net_group_detach (IF_C, &_e), "detach C");
      dsum += skiff_monotonic_ns () - t0;
    }
  if (ok)
    {
      printf ("attach (fresh, %d runs): avg %.3f ms, min %.3f ms, max %.3f ms; detach avg %.3f ms\n", N, sum / 1e6 / N,
              mn / 1e6, mx / 1e6, dsum / 1e6 / N);
      CHECK (sum / N < 5 * 1000 * 1000); /* a few milliseconds at most */
    }

  /* detach: both ends go; a second detach is fine */
  OK (net_group_detach (IF_A, &_e), "detach A");
  {
    cleanup_strv char **v = NULL;
    OK (net_list_ifaces ("sktv", &v, &_e), "net_list_ifaces");
    CHECK (!strv_has (v, IF_A) && strv_has (v, IF_B));
    cleanup_free char *eth = capture ("nsenter --net=%s ip -o link show 2>&1", ns_a);
    CHECK (eth && !contains (eth, "eth0") && contains (eth, "lo:"));
  }
  OK (net_group_detach (IF_A, &_e), "second detach A");
  OK (net_group_detach (IF_B, &_e), "detach B");
}

static void
cleanup_all (void)
{
  skiff_error_t e = NULL;
  const char *ifs[] = { IF_A, IF_B, IF_C, "sktvx0" };
  for (size_t i = 0; i < sizeof ifs / sizeof ifs[0]; i++)
    if (net_group_detach (ifs[i], &e) < 0)
      fail_err ("clean-up detach", &e);
  if (net_host_teardown (&cfg, &e) < 0)
    fail_err ("clean-up teardown", &e);
  const char *ns[] = { ns_a, ns_b, ns_c };
  for (size_t i = 0; i < 3; i++)
    if (ns[i][0])
      umount2 (ns[i], MNT_DETACH);
  if (skiff_rm_rf (tmp, &e) < 0)
    fail_err ("clean-up rm", &e);
  if (saved_forward && read_forward () != saved_forward)
    {
      cleanup_close int fd = open ("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write (fd, &saved_forward, 1) != 1)
        perror ("restore ip_forward");
    }
}

int
main (void)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (geteuid () != 0)
    {
      printf ("skip: test_net_live needs root\n");
      return 0;
    }
  {
    skiff_error_t e = NULL;
    if (net_nft_run ("add table inet skiff_probe\ndelete table inet skiff_probe\n", NULL, &e) < 0)
      {
        printf ("skip: test_net_live needs nf_tables (%s)\n", e ? e->msg : "?");
        skiff_error_release (&e);
        return 0;
      }
  }
  if (mkdtemp (tmp) == NULL)
    {
      perror ("mkdtemp");
      return 1;
    }
  saved_forward = read_forward ();
  snprintf (ns_a, sizeof ns_a, "%s/ns-a", tmp);
  snprintf (ns_b, sizeof ns_b, "%s/ns-b", tmp);
  snprintf (ns_c, sizeof ns_c, "%s/ns-c", tmp);

  /* left-overs of an interrupted earlier run */
  {
    skiff_error_t e = NULL;
    const char *ifs[] = { IF_A, IF_B, IF_C, "sktvx0" };
    for (size_t i = 0; i < sizeof ifs / sizeof ifs[0]; i++)
      if (net_group_detach (ifs[i], &e) < 0)
        skiff_error_release (&e);
    if (net_host_teardown (&cfg, &e) < 0)
      skiff_error_release (&e);
  }

  test_parse ();
  test_validation ();
  int pinned = pin_netns (ns_a) == 0 && pin_netns (ns_b) == 0 && pin_netns (ns_c) == 0;
  CHECK (pinned);
  if (!pinned)
    perror ("pin network namespaces");
  test_host_setup ();
  if (pinned && test_failed == 0)
    test_groups ();

  /* teardown removes the table and the bridge; a second teardown is fine */
  OK (net_host_teardown (&cfg, &_e), "net_host_teardown");
  {
    cleanup_free char *t = list_table ();
    CHECK (t == NULL);
    cleanup_strv char **v = NULL;
    OK (net_list_ifaces ("sktest", &v, &_e), "net_list_ifaces");
    CHECK (v && !strv_has (v, "sktest0"));
  }
  OK (net_host_teardown (&cfg, &_e), "second net_host_teardown");
  cleanup_all ();
  TEST_MAIN_END ();
}
