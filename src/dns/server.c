/* server.c - skiff's authoritative DNS server: one thread polls the UDP and TCP listeners, the TCP
 * connections, the forwarding sockets and an eventfd that wakes it for listen/unlisten/stop.
 * Answers come from an immutable record set (answer.c) that dns_server_set swaps under a mutex.
 * TCP connections are capped, non-blocking both ways (an answer that does not fit the socket
 * waits for POLLOUT, and the connection reads nothing more meanwhile) and closed when idle.
 *
 * Forwarding: a query that is not skiff's to answer, from a client network, goes to the first
 * upstream with a fresh random id, over the transport it came in on: a UDP query over one shared
 * UDP socket, the answer matched by upstream address, id and question; a TCP query (typically a
 * retry after a truncated UDP answer) over a non-blocking TCP connection of its own, whose one
 * length-prefixed answer must carry the id and question. The answer gets the client's id back and
 * goes to the client (a TCP connection waits for it before it reads its next query). No answer in
 * FORWARD_TIMEOUT_MS, or (UDP) an ICMP unreachable, or (TCP) a refused, reset or early closed
 * connection or a wrong answer: the next upstream, then SERVFAIL. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/errqueue.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "dns/dns_internal.h"

#define MAX_TCP 64 /* client connections; as many TCP forwards at most (one per waiting connection) */
#define TCP_IDLE_MS 10000
#define TCP_BACKLOG 64
#define UDP_LIMIT 512
#define UDP_BATCH 64 /* datagrams read per wake-up of one socket */
#define MAX_PENDING 1024
#define FORWARD_TIMEOUT_MS 2000

typedef struct
{
  uint32_t addr;
  int port;
  int udp, tcp;
} listener_t;

typedef struct
{
  int fd;
  uint32_t peer;
  int peer_port;
  uint64_t serial; /* tells a new connection in the same slot from the one a forward is for */
  int waiting;     /* a forwarded query's answer is due: read nothing more */
  int64_t last_ms;
  size_t have;  /* bytes in in */
  uint8_t *out; /* length-prefixed answer being written, or NULL */
  size_t out_len, out_off;
  uint8_t in[2 + DNS_MAX_MSG];
} conn_t;

/* A forwarded query waiting for its answer. */
typedef struct
{
  int used;
  uint16_t id;       /* the id sent upstream */
  size_t tries;      /* upstreams asked so far */
  dns_upstream_t to; /* the upstream asked last */
  int64_t deadline;
  int tcp; /* the client: TCP connection conn (with serial), or UDP */
  int conn;
  uint64_t serial;
  uint32_t l_addr; /* UDP: the listener the query came to, and its source */
  int l_port;
  struct sockaddr_in from;
  uint8_t *query; /* the client's query, its own id */
  size_t qlen;
  /* TCP client: the query goes upstream over a connection of its own */
  int fd;              /* -1 when none */
  uint32_t local_addr; /* its local end (tells skiff's own queries coming back) */
  int local_port;
  size_t sent;     /* bytes of the length-prefixed query written */
  uint8_t head[2]; /* the answer's length */
  uint8_t *ans;    /* the answer, once its length is known */
  size_t got;      /* bytes read: the length, then the answer */
  size_t alen;
} pending_t;

typedef struct
{
  dns_net_t *v;
  size_t n;
} netlist_t;

struct dns_server
{
  pthread_t thread;
  int started;
  int wake;
  pthread_mutex_t listen_lock; /* one dns_server_listen at a time */
  pthread_mutex_t set_lock;    /* one dns_server_set at a time; guards high */
  uint32_t high;               /* the highest serial handed out */
  pthread_mutex_t lock;        /* guards everything below */
  pthread_cond_t drained;
  int stopping, exited;
  listener_t listeners[DNS_MAX_LISTENERS];
  size_t n_listeners;
  int closing[2 * DNS_MAX_LISTENERS]; /* fds of removed listeners, closed by the thread */
  size_t n_closing;
  uint64_t generation; /* grows each time the thread closed the closing fds */
  dns_set_t *set;
  dns_upstream_t upstreams[DNS_MAX_UPSTREAMS];
  size_t n_upstreams;
  netlist_t fwd_clients, fwd_except;
  int fwd;      /* the UDP forwarding socket */
  int fwd_port; /* its local port, once it sent */
  /* the thread's own */
  conn_t *conns[MAX_TCP];
  uint64_t next_serial;
  pending_t pending[MAX_PENDING];
  size_t n_pending;
  uint8_t udp_buf[DNS_MAX_MSG];
};

static int64_t
now_ms (void)
{
  return skiff_monotonic_ns () / 1000000;
}

static void
wake (dns_server_t *s)
{
  uint64_t one = 1;
  if (write (s->wake, &one, sizeof one) < 0 && errno != EAGAIN)
    log_debug ("dns: wake: %s", strerror (errno));
}

/* A non-blocking UDP or TCP socket bound to addr:port (TCP listening, with SO_REUSEADDR so a
 * restart does not wait for TIME_WAIT; UDP without it, so a port another socket holds is an
 * error rather than shared). */
static int
open_socket (int type, uint32_t addr, int port, skiff_error_t *err)
{
  const char *what = type == SOCK_STREAM ? "TCP" : "UDP";
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  sa.sin_addr.s_addr = htonl (addr);
  char ip[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &sa.sin_addr, ip, sizeof ip);
  cleanup_close int fd = socket (AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "DNS %s socket", what);
  int one = 1;
  if (type == SOCK_STREAM && setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return skiff_error_set (err, errno, "SO_REUSEADDR on the DNS TCP socket");
  if (bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return skiff_error_set (err, errno, "bind DNS %s %s:%d", what, ip, port);
  if (type == SOCK_STREAM && listen (fd, TCP_BACKLOG) < 0)
    return skiff_error_set (err, errno, "listen DNS TCP %s:%d", ip, port);
  return steal_fd (&fd);
}

static int
bound_port (int fd)
{
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname (fd, (struct sockaddr *)&sa, &len) < 0)
    return -1;
  return ntohs (sa.sin_port);
}

/* Answers one query with the current set. */
static int
answer (dns_server_t *s, const uint8_t *q, size_t qlen, uint32_t src, size_t udp_max, uint8_t **out, size_t *outlen)
{
  pthread_mutex_lock (&s->lock);
  int rc = dns_answer (s->set, q, qlen, src, udp_max, out, outlen);
  pthread_mutex_unlock (&s->lock);
  return rc;
}

static int forward_start (dns_server_t *s, const uint8_t *q, size_t qlen, const pending_t *client);
static int forward_wanted (dns_server_t *s, uint32_t src, int src_port, int tcp);
static void forward_cancel (dns_server_t *s, int conn, uint64_t serial);

/* Reads what arrived on the UDP listener l (fd, address, port) and answers or forwards it. */
static void
serve_udp (dns_server_t *s, int fd, uint32_t l_addr, int l_port)
{
  for (int i = 0; i < UDP_BATCH; i++)
    {
      struct sockaddr_in from;
      socklen_t flen = sizeof from;
      ssize_t n = recvfrom (fd, s->udp_buf, sizeof s->udp_buf, 0, (struct sockaddr *)&from, &flen);
      if (n < 0)
        return;
      if (flen != sizeof from || from.sin_family != AF_INET || from.sin_port == 0)
        continue;
      cleanup_free uint8_t *out = NULL;
      size_t olen = 0;
      uint32_t src = ntohl (from.sin_addr.s_addr);
      int rc = answer (s, s->udp_buf, (size_t)n, src, UDP_LIMIT, &out, &olen);
      if (rc == 1 && forward_wanted (s, src, ntohs (from.sin_port), 0))
        {
          pending_t client = { .l_addr = l_addr, .l_port = l_port, .from = from };
          if (forward_start (s, s->udp_buf, (size_t)n, &client) == 0)
            continue;
          free (out);
          out = NULL;
          if (dns_reply_servfail (s->udp_buf, (size_t)n, &out, &olen) < 0)
            continue;
        }
      if (rc >= 0 && sendto (fd, out, olen, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&from, flen) < 0)
        log_debug ("dns: UDP answer: %s", strerror (errno));
    }
}

/* Closes connection i, and drops the forward it waits for. */
static void
conn_close (dns_server_t *s, int i)
{
  if (s->conns[i]->waiting)
    forward_cancel (s, i, s->conns[i]->serial);
  close (s->conns[i]->fd);
  free (s->conns[i]->out);
  free (s->conns[i]);
  s->conns[i] = NULL;
}

static void
accept_tcp (dns_server_t *s, int fd)
{
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  cleanup_close int c = accept4 (fd, (struct sockaddr *)&from, &flen, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0 || flen != sizeof from)
    return;
  for (int i = 0; i < MAX_TCP; i++)
    if (s->conns[i] == NULL)
      {
        conn_t *k = malloc (sizeof *k);
        if (k == NULL)
          return;
        k->fd = steal_fd (&c);
        k->peer = ntohl (from.sin_addr.s_addr);
        k->peer_port = ntohs (from.sin_port);
        k->serial = ++s->next_serial;
        k->waiting = 0;
        k->last_ms = now_ms ();
        k->have = 0;
        k->out = NULL;
        k->out_len = k->out_off = 0;
        s->conns[i] = k;
        return;
      }
  /* too many connections: this one is closed */
}

/* Writes what the socket takes of the pending answer; -1 when the connection failed. */
static int
flush_out (conn_t *k)
{
  while (k->out && k->out_off < k->out_len)
    {
      ssize_t n = send (k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
      if (n <= 0)
        return -1;
      k->out_off += (size_t)n;
      k->last_ms = now_ms ();
    }
  free (k->out);
  k->out = NULL;
  k->out_len = k->out_off = 0;
  return 0;
}

/* Sets the answer a TCP connection writes next (length-prefixed). */
static void
conn_set_out (conn_t *k, const uint8_t *ans, size_t alen)
{
  k->out = alen <= DNS_MAX_MSG ? malloc (alen + 2) : NULL;
  if (k->out)
    {
      k->out[0] = (uint8_t)(alen >> 8);
      k->out[1] = (uint8_t)alen;
      memcpy (k->out + 2, ans, alen);
      k->out_len = alen + 2;
      k->out_off = 0;
    }
}

/* Answers (or forwards) the complete messages in the input buffer of connection i while nothing
 * waits to be written or forwarded; -1 when the connection is to be closed. */
static int
process_tcp (dns_server_t *s, int i)
{
  conn_t *k = s->conns[i];
  size_t used = 0;
  int rc = 0;
  while (k->out == NULL && !k->waiting && k->have - used >= 2)
    {
      const uint8_t *m = k->in + used;
      size_t len = ((size_t)m[0] << 8) | m[1];
      if (len < 12)
        {
          rc = -1; /* not DNS */
          break;
        }
      if (k->have - used < 2 + len)
        break;
      uint8_t *ans = NULL;
      size_t alen = 0;
      int arc = answer (s, m + 2, len, k->peer, 0, &ans, &alen);
      if (arc == 1 && forward_wanted (s, k->peer, k->peer_port, 1))
        {
          pending_t client = { .tcp = 1, .conn = i, .serial = k->serial };
          if (forward_start (s, m + 2, len, &client) == 0)
            {
              k->waiting = 1;
              free (ans);
              used += 2 + len;
              break;
            }
          free (ans);
          ans = NULL;
          arc = dns_reply_servfail (m + 2, len, &ans, &alen);
        }
      if (arc >= 0)
        conn_set_out (k, ans, alen);
      free (ans);
      used += 2 + len;
      if (flush_out (k) < 0)
        {
          rc = -1;
          break;
        }
    }
  memmove (k->in, k->in + used, k->have - used);
  k->have -= used;
  return rc;
}

static void
serve_tcp (dns_server_t *s, int i, short revents)
{
  conn_t *k = s->conns[i];
  if (k->out)
    {
      if (flush_out (k) < 0 || (k->out == NULL && process_tcp (s, i) < 0))
        conn_close (s, i);
      return;
    }
  if (!(revents & (POLLIN | POLLHUP | POLLERR)))
    return;
  if (k->waiting && !(revents & (POLLHUP | POLLERR)))
    return;
  ssize_t n = recv (k->fd, k->in + k->have, sizeof k->in - k->have, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      conn_close (s, i);
      return;
    }
  k->have += (size_t)n;
  k->last_ms = now_ms ();
  if (process_tcp (s, i) < 0)
    conn_close (s, i);
}

/* ---- forwarding ---- */

static int
net_contains (const netlist_t *l, uint32_t a)
{
  for (size_t i = 0; i < l->n; i++)
    {
      uint32_t mask = l->v[i].prefix == 0 ? 0 : 0xffffffffu << (32 - l->v[i].prefix);
      if ((a & mask) == (l->v[i].addr & mask))
        return 1;
    }
  return 0;
}

/* 1 when src:src_port is the local end of one of the upstream TCP connections. */
static int
own_upstream_connection (dns_server_t *s, uint32_t src, int src_port)
{
  for (size_t k = 0; k < MAX_PENDING && s->n_pending > 0; k++)
    {
      const pending_t *p = &s->pending[k];
      if (p->used && p->fd >= 0 && p->local_port == src_port && p->local_addr == src)
        return 1;
    }
  return 0;
}

/* 1 when a query from src:src_port (over TCP when tcp) that skiff does not answer goes upstream.
 * Never for skiff's own forwarded queries (an upstream that points back at skiff): from the UDP
 * forwarding socket's port at a local address, or from one of the upstream TCP connections. */
static int
forward_wanted (dns_server_t *s, uint32_t src, int src_port, int tcp)
{
  if (tcp && own_upstream_connection (s, src, src_port))
    return 0;
  pthread_mutex_lock (&s->lock);
  int yes = s->n_upstreams > 0 && net_contains (&s->fwd_clients, src) && !net_contains (&s->fwd_except, src);
  if (yes && !tcp && src_port != 0 && src_port == s->fwd_port)
    {
      if ((src >> 24) == 127)
        yes = 0;
      for (size_t i = 0; i < s->n_listeners && yes; i++)
        yes = s->listeners[i].addr != src;
    }
  pthread_mutex_unlock (&s->lock);
  return yes;
}

/* Whether addr is one of this host's addresses (a socket can be bound to it). */
static int
is_local_address (uint32_t addr)
{
  if ((addr >> 24) == 127)
    return 1;
  cleanup_close int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl (addr) };
  return fd >= 0 && bind (fd, (struct sockaddr *)&sa, sizeof sa) == 0;
}

/* Closes p's upstream TCP connection, if any, and drops what it read of the answer. */
static void
upstream_close (pending_t *p)
{
  if (p->fd >= 0)
    close (p->fd);
  free (p->ans);
  p->fd = -1;
  p->ans = NULL;
  p->sent = p->got = p->alen = 0;
}

/* Sends p's query (the upstream id in it) to `to` over the UDP forwarding socket; -1 when it
 * could not. */
static int
upstream_udp (dns_server_t *s, pending_t *p, const struct sockaddr_in *to)
{
  uint8_t hdr[2] = { (uint8_t)(p->id >> 8), (uint8_t)p->id };
  struct iovec iov[2] = { { hdr, 2 }, { p->query + 2, p->qlen - 2 } };
  struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = sizeof *to, .msg_iov = iov, .msg_iovlen = 2 };
  if (sendmsg (s->fwd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
    {
      log_debug ("dns: forward: %s", strerror (errno));
      return -1;
    }
  if (s->fwd_port == 0)
    {
      int port = bound_port (s->fwd);
      pthread_mutex_lock (&s->lock);
      s->fwd_port = port > 0 ? port : 0;
      pthread_mutex_unlock (&s->lock);
    }
  return 0;
}

/* Starts p's non-blocking TCP connection to `to` (serve_upstream writes the query once it is
 * writable); -1 when it failed at once. */
static int
upstream_connect (pending_t *p, const struct sockaddr_in *to)
{
  cleanup_close int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || (connect (fd, (const struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS))
    {
      log_debug ("dns: forward over TCP: %s", strerror (errno));
      return -1;
    }
  struct sockaddr_in local;
  socklen_t len = sizeof local;
  if (getsockname (fd, (struct sockaddr *)&local, &len) == 0 && len == sizeof local)
    {
      p->local_addr = ntohl (local.sin_addr.s_addr);
      p->local_port = ntohs (local.sin_port);
    }
  p->fd = steal_fd (&fd);
  return 0;
}

/* Sends pending p to upstream number p->tries (of the current list), skipping the server's own
 * listeners (a wildcard one: any local address at its port): a UDP client's query over the UDP
 * forwarding socket, a TCP client's over a new TCP connection (p's previous one closed first);
 * -1 when no upstream is left. */
static int
forward_send (dns_server_t *s, pending_t *p)
{
  upstream_close (p);
  for (;;)
    {
      pthread_mutex_lock (&s->lock);
      size_t n = s->n_upstreams;
      dns_upstream_t up = p->tries < n ? s->upstreams[p->tries] : (dns_upstream_t){ 0, 0 };
      int own = 0, wildcard = 0;
      for (size_t i = 0; i < s->n_listeners && p->tries < n; i++)
        if (s->listeners[i].port == up.port)
          {
            own |= s->listeners[i].addr == up.addr;
            wildcard |= s->listeners[i].addr == INADDR_ANY;
          }
      pthread_mutex_unlock (&s->lock);
      if (p->tries >= n)
        return -1;
      p->tries++;
      if (own || (wildcard && is_local_address (up.addr)))
        continue; /* ourselves: the query would come back */
      struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)up.port) };
      to.sin_addr.s_addr = htonl (up.addr);
      if ((p->tcp ? upstream_connect (p, &to) : upstream_udp (s, p, &to)) < 0)
        continue;
      p->to = up;
      p->deadline = now_ms () + FORWARD_TIMEOUT_MS;
      return 0;
    }
}

static void
pending_free (dns_server_t *s, pending_t *p)
{
  upstream_close (p);
  free (p->query);
  memset (p, 0, sizeof *p);
  s->n_pending--;
}

/* Starts forwarding query q for client (tcp/conn/serial or l_addr/l_port/from); -1 when the table
 * is full or no upstream takes it (the caller answers SERVFAIL). */
static int
forward_start (dns_server_t *s, const uint8_t *q, size_t qlen, const pending_t *client)
{
  if (s->fwd < 0 || s->n_pending >= MAX_PENDING || qlen < 12)
    return -1;
  pending_t *p = NULL;
  for (size_t i = 0; i < MAX_PENDING && p == NULL; i++)
    if (!s->pending[i].used)
      p = &s->pending[i];
  uint16_t id;
  int clash;
  do
    {
      id = (uint16_t)arc4random_uniform (65536);
      clash = 0;
      for (size_t i = 0; i < MAX_PENDING && !clash; i++)
        clash = s->pending[i].used && s->pending[i].id == id;
    }
  while (clash);
  uint8_t *copy = malloc (qlen);
  if (p == NULL || copy == NULL)
    {
      free (copy);
      return -1;
    }
  memcpy (copy, q, qlen);
  *p = *client;
  p->fd = -1;
  p->ans = NULL;
  p->used = 1;
  p->id = id;
  p->tries = 0;
  p->query = copy;
  p->qlen = qlen;
  s->n_pending++;
  if (forward_send (s, p) < 0)
    {
      pending_free (s, p);
      return -1;
    }
  return 0;
}

/* Gives the client of p its answer (ans, the client's id already in it). */
static void
forward_deliver (dns_server_t *s, pending_t *p, const uint8_t *ans, size_t alen)
{
  if (p->tcp)
    {
      conn_t *k = s->conns[p->conn];
      if (k == NULL || k->serial != p->serial)
        return; /* the connection went away */
      k->waiting = 0;
      k->last_ms = now_ms ();
      conn_set_out (k, ans, alen);
      if (flush_out (k) < 0 || (k->out == NULL && process_tcp (s, p->conn) < 0))
        conn_close (s, p->conn);
      return;
    }
  int fd = -1;
  pthread_mutex_lock (&s->lock);
  for (size_t i = 0; i < s->n_listeners && fd < 0; i++)
    if (s->listeners[i].addr == p->l_addr && s->listeners[i].port == p->l_port)
      fd = s->listeners[i].udp;
  if (fd >= 0 && sendto (fd, ans, alen, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&p->from, sizeof p->from) < 0)
    log_debug ("dns: forwarded answer: %s", strerror (errno));
  pthread_mutex_unlock (&s->lock);
}

/* Answers SERVFAIL to the client of p and frees p. */
static void
forward_fail (dns_server_t *s, pending_t *p)
{
  cleanup_free uint8_t *out = NULL;
  size_t olen = 0;
  if (dns_reply_servfail (p->query, p->qlen, &out, &olen) == 0)
    forward_deliver (s, p, out, olen);
  else if (p->tcp && s->conns[p->conn] && s->conns[p->conn]->serial == p->serial)
    s->conns[p->conn]->waiting = 0;
  pending_free (s, p);
}

/* Drops the forward that connection conn (serial) waits for: it is closing, nobody is left to
 * answer. Keeps each TCP forward, and its upstream connection, tied to a live client connection:
 * at most MAX_TCP of them. */
static void
forward_cancel (dns_server_t *s, int conn, uint64_t serial)
{
  for (size_t k = 0; k < MAX_PENDING; k++)
    {
      pending_t *p = &s->pending[k];
      if (p->used && p->tcp && p->conn == conn && p->serial == serial)
        {
          pending_free (s, p);
          return;
        }
    }
}

/* Reads the ICMP errors for queries sent upstream (port or host unreachable: nobody serves DNS
 * there) and moves each such query on to the next upstream at once, or fails it, instead of
 * waiting for its timeout. The error carries the query's destination and its first bytes (the
 * id). */
static void
forward_errors (dns_server_t *s)
{
  for (int i = 0; i < UDP_BATCH; i++)
    {
      struct sockaddr_in dest;
      uint8_t head[12];
      char control[256];
      struct iovec iov = { head, sizeof head };
      struct msghdr mh = { .msg_name = &dest,
                           .msg_namelen = sizeof dest,
                           .msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = control,
                           .msg_controllen = sizeof control };
      ssize_t n = recvmsg (s->fwd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
      if (n < 0)
        return;
      int icmp = 0;
      for (struct cmsghdr *cm = CMSG_FIRSTHDR (&mh); cm; cm = CMSG_NXTHDR (&mh, cm))
        if (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR)
          {
            struct sock_extended_err ee;
            memcpy (&ee, CMSG_DATA (cm), sizeof ee);
            icmp = ee.ee_origin == SO_EE_ORIGIN_ICMP
                   && (ee.ee_errno == ECONNREFUSED || ee.ee_errno == EHOSTUNREACH || ee.ee_errno == ENETUNREACH
                       || ee.ee_errno == EHOSTDOWN);
          }
      if (!icmp || n < 2 || mh.msg_namelen != sizeof dest || dest.sin_family != AF_INET)
        continue;
      uint16_t id = (uint16_t)((head[0] << 8) | head[1]);
      for (size_t k = 0; k < MAX_PENDING; k++)
        {
          pending_t *p = &s->pending[k];
          if (!p->used || p->tcp || p->id != id || p->to.addr != ntohl (dest.sin_addr.s_addr)
              || p->to.port != ntohs (dest.sin_port))
            continue;
          log_debug ("dns: upstream %s:%d unreachable", inet_ntoa (dest.sin_addr), p->to.port);
          if (forward_send (s, p) < 0)
            forward_fail (s, p);
          break;
        }
    }
}

/* Reads the upstreams' answers on the UDP forwarding socket and passes each on to the (UDP)
 * client that asked. */
static void
serve_forward (dns_server_t *s)
{
  forward_errors (s);
  for (int i = 0; i < UDP_BATCH; i++)
    {
      struct sockaddr_in from;
      socklen_t flen = sizeof from;
      ssize_t n = recvfrom (s->fwd, s->udp_buf, sizeof s->udp_buf, 0, (struct sockaddr *)&from, &flen);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n < 0)
        continue; /* an ICMP error reported once more (IP_RECVERR): forward_errors dealt with it */
      if (flen != sizeof from || from.sin_family != AF_INET || n < 12)
        continue;
      uint16_t id = (uint16_t)((s->udp_buf[0] << 8) | s->udp_buf[1]);
      uint32_t src = ntohl (from.sin_addr.s_addr);
      for (size_t k = 0; k < MAX_PENDING; k++)
        {
          pending_t *p = &s->pending[k];
          if (!p->used || p->tcp || p->id != id || p->to.addr != src || p->to.port != ntohs (from.sin_port))
            continue;
          /* the answer carries the client's id from here on */
          s->udp_buf[0] = p->query[0];
          s->udp_buf[1] = p->query[1];
          if (dns_same_question (p->query, p->qlen, s->udp_buf, (size_t)n))
            {
              forward_deliver (s, p, s->udp_buf, (size_t)n);
              pending_free (s, p);
            }
          break;
        }
    }
}

/* Writes what p's upstream TCP connection takes of the length-prefixed query, with the upstream
 * id; -1 when the connection failed (refused, reset). */
static int
upstream_write (pending_t *p)
{
  uint8_t head[4] = { (uint8_t)(p->qlen >> 8), (uint8_t)p->qlen, (uint8_t)(p->id >> 8), (uint8_t)p->id };
  while (p->sent < 2 + p->qlen)
    {
      size_t body = p->sent > sizeof head ? p->sent - sizeof head : 0; /* bytes of query + 2 sent */
      struct iovec iov[2];
      int n_iov = 0;
      if (p->sent < sizeof head)
        iov[n_iov++] = (struct iovec){ head + p->sent, sizeof head - p->sent };
      iov[n_iov++] = (struct iovec){ p->query + 2 + body, p->qlen - 2 - body };
      struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n_iov };
      ssize_t n = sendmsg (p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
      if (n <= 0)
        return -1;
      p->sent += (size_t)n;
    }
  return 0;
}

/* Reads what arrived of the length-prefixed answer on p's upstream TCP connection (one message,
 * at most DNS_MAX_MSG bytes by its 16-bit length); 1 once it is complete, 0 while more is due, -1
 * when the connection failed or closed first or the length is shorter than a DNS header. */
static int
upstream_read (pending_t *p)
{
  for (;;)
    {
      uint8_t *to = p->got < 2 ? p->head + p->got : p->ans + (p->got - 2);
      size_t want = p->got < 2 ? 2 - p->got : p->alen - (p->got - 2);
      if (want == 0)
        return 1;
      ssize_t n = recv (p->fd, to, want, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
      if (n <= 0)
        return -1;
      p->got += (size_t)n;
      if (p->got == 2)
        {
          p->alen = ((size_t)p->head[0] << 8) | p->head[1];
          if (p->alen < 12 || (p->ans = malloc (p->alen)) == NULL)
            return -1;
        }
    }
}

/* Moves p's upstream TCP connection on: writes the query, then reads the answer and, when it is
 * the answer (the upstream id, the question), passes it on to the client with the client's id.
 * A connection that failed or closed before a whole answer, or whose answer is garbage or not the
 * answer (the connection is p's alone: nobody else could have put it there), moves p on to the
 * next upstream at once, or fails it. */
static void
serve_upstream (dns_server_t *s, pending_t *p)
{
  int rc = upstream_write (p);
  if (rc == 0 && p->sent == 2 + p->qlen)
    rc = upstream_read (p);
  if (rc == 0)
    return;
  if (rc == 1 && ((p->ans[0] << 8) | p->ans[1]) == p->id)
    {
      /* the answer carries the client's id from here on */
      p->ans[0] = p->query[0];
      p->ans[1] = p->query[1];
      if (dns_same_question (p->query, p->qlen, p->ans, p->alen))
        {
          forward_deliver (s, p, p->ans, p->alen);
          pending_free (s, p);
          return;
        }
    }
  struct in_addr a = { htonl (p->to.addr) };
  log_debug ("dns: TCP upstream %s:%d: %s", inet_ntoa (a), p->to.port,
             rc == 1 ? "not the answer" : "no answer (refused, reset, closed early or garbage)");
  if (forward_send (s, p) < 0)
    forward_fail (s, p);
}

/* Moves the forwards past their deadline on to the next upstream, or fails them; returns the
 * milliseconds until the next deadline (at most max_ms). */
static int
forward_expire (dns_server_t *s, int max_ms)
{
  if (s->n_pending == 0)
    return max_ms;
  int64_t t = now_ms ();
  int64_t next = t + max_ms;
  for (size_t k = 0; k < MAX_PENDING; k++)
    {
      pending_t *p = &s->pending[k];
      if (!p->used)
        continue;
      if (p->deadline <= t && forward_send (s, p) < 0)
        {
          forward_fail (s, p);
          continue;
        }
      if (p->deadline < next)
        next = p->deadline;
    }
  return next <= t ? 0 : (int)(next - t);
}

/* Closes the fds of removed listeners (under the lock) and tells the waiting unlisten calls. */
static void
drain_closing (dns_server_t *s)
{
  for (size_t i = 0; i < s->n_closing; i++)
    close (s->closing[i]);
  s->n_closing = 0;
  s->generation++;
  pthread_cond_broadcast (&s->drained);
}

enum
{
  KIND_UPSTREAM = -5,
  KIND_FORWARD = -4,
  KIND_WAKE = -3,
  KIND_UDP = -2,
  KIND_LISTEN = -1, /* >= 0: a connection */
};

/* The poll set: the eventfd, the UDP forwarding socket, the listeners, the connections and the
 * upstream TCP connections (one at most per connection: forward_cancel). */
#define MAX_FDS (2 + 2 * DNS_MAX_LISTENERS + 2 * MAX_TCP)

static void *
server_main (void *arg)
{
  dns_server_t *s = arg;
  struct pollfd fds[MAX_FDS];
  int kinds[MAX_FDS];
  listener_t seen[DNS_MAX_LISTENERS]; /* which listener each UDP fd is */
  size_t slot[MAX_FDS];               /* the listener (UDP) or pending (upstream) of an entry */
  for (;;)
    {
      size_t n = 0;
      pthread_mutex_lock (&s->lock);
      drain_closing (s);
      if (s->stopping)
        {
          s->exited = 1;
          pthread_mutex_unlock (&s->lock);
          break;
        }
      fds[n] = (struct pollfd){ s->wake, POLLIN, 0 };
      kinds[n++] = KIND_WAKE;
      if (s->fwd >= 0)
        {
          fds[n] = (struct pollfd){ s->fwd, POLLIN, 0 };
          kinds[n++] = KIND_FORWARD;
        }
      for (size_t i = 0; i < s->n_listeners; i++)
        {
          seen[i] = s->listeners[i];
          slot[n] = i;
          fds[n] = (struct pollfd){ s->listeners[i].udp, POLLIN, 0 };
          kinds[n++] = KIND_UDP;
          fds[n] = (struct pollfd){ s->listeners[i].tcp, POLLIN, 0 };
          kinds[n++] = KIND_LISTEN;
        }
      pthread_mutex_unlock (&s->lock);
      /* before the connections' entries: a forward failed here un-waits its connection */
      int timeout = forward_expire (s, 1000);
      int64_t t = now_ms ();
      for (int i = 0; i < MAX_TCP; i++)
        if (s->conns[i])
          {
            /* a connection waiting for a forwarded answer is bounded by the forward's deadlines */
            if (!s->conns[i]->waiting && t - s->conns[i]->last_ms > TCP_IDLE_MS)
              {
                conn_close (s, i);
                continue;
              }
            short ev = s->conns[i]->out ? POLLOUT : s->conns[i]->waiting ? 0 : POLLIN;
            fds[n] = (struct pollfd){ s->conns[i]->fd, ev, 0 };
            kinds[n++] = i;
          }
      for (size_t k = 0; k < MAX_PENDING && s->n_pending > 0 && n < MAX_FDS; k++)
        {
          const pending_t *p = &s->pending[k];
          if (!p->used || p->fd < 0)
            continue;
          /* writable: connected (or failed), ready for the query; then readable: the answer */
          fds[n] = (struct pollfd){ p->fd, p->sent < 2 + p->qlen ? POLLOUT : POLLIN, 0 };
          slot[n] = k;
          kinds[n++] = KIND_UPSTREAM;
        }
      int r = poll (fds, n, timeout);
      if (r <= 0)
        continue;
      for (size_t i = 0; i < n; i++)
        {
          if (!fds[i].revents)
            continue;
          if (kinds[i] == KIND_WAKE)
            {
              uint64_t v;
              if (read (s->wake, &v, sizeof v) < 0 && errno != EAGAIN)
                log_debug ("dns: wake read: %s", strerror (errno));
            }
          else if (kinds[i] == KIND_FORWARD)
            serve_forward (s);
          else if (kinds[i] == KIND_UDP)
            serve_udp (s, fds[i].fd, seen[slot[i]].addr, seen[slot[i]].port);
          else if (kinds[i] == KIND_LISTEN)
            accept_tcp (s, fds[i].fd);
          else if (kinds[i] == KIND_UPSTREAM)
            {
              /* still the same connection: this iteration may have ended the forward already */
              pending_t *p = &s->pending[slot[i]];
              if (p->used && p->fd == fds[i].fd)
                serve_upstream (s, p);
            }
          else if (s->conns[kinds[i]])
            serve_tcp (s, kinds[i], fds[i].revents);
        }
    }
  for (int i = 0; i < MAX_TCP; i++)
    if (s->conns[i])
      conn_close (s, i);
  for (size_t k = 0; k < MAX_PENDING; k++)
    if (s->pending[k].used)
      pending_free (s, &s->pending[k]);
  return NULL;
}

static int
parse_addr (const char *addr, int port, uint32_t *ip, skiff_error_t *err)
{
  struct in_addr a;
  if (addr == NULL || inet_pton (AF_INET, addr, &a) != 1 || port < 0 || port > 65535)
    return skiff_error_set (err, EINVAL, "`%.32s:%d` is not an IPv4 address and port", addr ? addr : "", port);
  *ip = ntohl (a.s_addr);
  return 0;
}

/* Opens the TCP and UDP sockets of addr:port; with port 0, the same free port for both. */
static int
open_listener (uint32_t ip, int port, listener_t *l, skiff_error_t *err)
{
  for (int attempt = 0;; attempt++)
    {
      cleanup_close int tcp = open_socket (SOCK_STREAM, ip, port, err);
      if (tcp < 0)
        return -1;
      int bound = bound_port (tcp);
      if (bound <= 0)
        return skiff_error_set (err, errno, "getsockname");
      skiff_error_t e = NULL;
      int udp = open_socket (SOCK_DGRAM, ip, bound, &e);
      if (udp < 0)
        {
          /* a picked port whose UDP side is taken: pick another */
          if (port == 0 && e->status == EADDRINUSE && attempt < 16)
            {
              skiff_error_release (&e);
              continue;
            }
          *err = e;
          return -1;
        }
      *l = (listener_t){ ip, bound, udp, steal_fd (&tcp) };
      return 0;
    }
}

int
dns_server_listen (dns_server_t *s, const char *addr, int port, skiff_error_t *err)
{
  uint32_t ip;
  if (s == NULL)
    return skiff_error_set (err, EINVAL, "no DNS server");
  if (parse_addr (addr, port, &ip, err) < 0)
    return -1;
  pthread_mutex_lock (&s->listen_lock);
  pthread_mutex_lock (&s->lock);
  int exists = 0;
  for (size_t i = 0; i < s->n_listeners && !exists; i++)
    exists = s->listeners[i].addr == ip && s->listeners[i].port == port;
  int full = s->n_listeners >= DNS_MAX_LISTENERS;
  pthread_mutex_unlock (&s->lock);
  int rc = 0;
  listener_t l;
  if (exists)
    ;
  else if (full)
    rc = skiff_error_set (err, E2BIG, "more than %d DNS listeners", DNS_MAX_LISTENERS);
  else if ((rc = open_listener (ip, port, &l, err)) == 0)
    {
      pthread_mutex_lock (&s->lock);
      s->listeners[s->n_listeners++] = l;
      pthread_mutex_unlock (&s->lock);
      wake (s);
    }
  pthread_mutex_unlock (&s->listen_lock);
  return rc;
}

void
dns_server_unlisten (dns_server_t *s, const char *addr, int port)
{
  uint32_t ip;
  skiff_error_t e = NULL;
  if (s == NULL || parse_addr (addr, port, &ip, &e) < 0)
    {
      skiff_error_release (&e);
      return;
    }
  pthread_mutex_lock (&s->lock);
  for (size_t i = 0; i < s->n_listeners; i++)
    if (s->listeners[i].addr == ip && s->listeners[i].port == port)
      {
        listener_t l = s->listeners[i];
        memmove (&s->listeners[i], &s->listeners[i + 1], (s->n_listeners - i - 1) * sizeof (listener_t));
        s->n_listeners--;
        if (!s->started || s->exited)
          {
            close (l.udp);
            close (l.tcp);
            break;
          }
        /* the thread may be polling them: it closes them, and this waits until it did, so the
           port is free when this returns */
        s->closing[s->n_closing++] = l.udp;
        s->closing[s->n_closing++] = l.tcp;
        uint64_t seen = s->generation;
        wake (s);
        while (s->generation == seen && !s->exited)
          pthread_cond_wait (&s->drained, &s->lock);
        break;
      }
  pthread_mutex_unlock (&s->lock);
}

int
dns_server_port (dns_server_t *s)
{
  if (s == NULL)
    return -1;
  pthread_mutex_lock (&s->lock);
  int p = s->n_listeners ? s->listeners[0].port : -1;
  pthread_mutex_unlock (&s->lock);
  return p;
}

int
dns_server_set (dns_server_t *s, const dns_zone_t *zones, size_t n_zones, const dns_record_t *records, size_t n_records,
                skiff_error_t *err)
{
  if (s == NULL)
    return skiff_error_set (err, EINVAL, "no DNS server");
  dns_set_t *set = NULL;
  if (dns_set_build (zones, n_zones, records, n_records, &set, err) < 0)
    return -1;
  pthread_mutex_lock (&s->set_lock);
  /* s->set changes only here, under set_lock: prev stays valid while it is held */
  dns_set_t *prev = s->set;
  dns_set_serials (set, prev, &s->high);
  pthread_mutex_lock (&s->lock);
  s->set = set;
  pthread_mutex_unlock (&s->lock);
  pthread_mutex_unlock (&s->set_lock);
  dns_set_free (prev);
  return 0;
}

int
dns_server_set_upstreams (dns_server_t *s, const dns_upstream_t *upstreams, size_t n, skiff_error_t *err)
{
  if (s == NULL)
    return skiff_error_set (err, EINVAL, "no DNS server");
  if (n > DNS_MAX_UPSTREAMS)
    return skiff_error_set (err, E2BIG, "more than %d DNS upstreams", DNS_MAX_UPSTREAMS);
  for (size_t i = 0; i < n; i++)
    if (upstreams[i].addr == 0 || upstreams[i].port < 0 || upstreams[i].port > 65535)
      return skiff_error_set (err, EINVAL, "DNS upstream %zu: no address or a port outside 0..65535", i);
  pthread_mutex_lock (&s->lock);
  for (size_t i = 0; i < n; i++)
    s->upstreams[i] = (dns_upstream_t){ upstreams[i].addr, upstreams[i].port ? upstreams[i].port : 53 };
  s->n_upstreams = n;
  pthread_mutex_unlock (&s->lock);
  return 0;
}

size_t
dns_server_n_upstreams (dns_server_t *s)
{
  if (s == NULL)
    return 0;
  pthread_mutex_lock (&s->lock);
  size_t n = s->n_upstreams;
  pthread_mutex_unlock (&s->lock);
  return n;
}

static int
netlist_copy (const dns_net_t *v, size_t n, netlist_t *out, skiff_error_t *err)
{
  if (n > DNS_MAX_FORWARD_NETS)
    return skiff_error_set (err, E2BIG, "more than %d forwarding networks", DNS_MAX_FORWARD_NETS);
  for (size_t i = 0; i < n; i++)
    if (v[i].prefix < 0 || v[i].prefix > 32)
      return skiff_error_set (err, EINVAL, "forwarding network %zu: prefix %d is outside 0..32", i, v[i].prefix);
  out->v = n ? malloc (n * sizeof *v) : NULL;
  if (n && out->v == NULL)
    return skiff_error_set (err, ENOMEM, "forwarding networks");
  if (n)
    memcpy (out->v, v, n * sizeof *v);
  out->n = n;
  return 0;
}

int
dns_server_set_forward_clients (dns_server_t *s, const dns_net_t *clients, size_t n_clients, const dns_net_t *except,
                                size_t n_except, skiff_error_t *err)
{
  if (s == NULL)
    return skiff_error_set (err, EINVAL, "no DNS server");
  netlist_t c = { 0 }, x = { 0 };
  if (netlist_copy (clients, n_clients, &c, err) < 0)
    return -1;
  if (netlist_copy (except, n_except, &x, err) < 0)
    {
      free (c.v);
      return -1;
    }
  pthread_mutex_lock (&s->lock);
  netlist_t old_c = s->fwd_clients, old_x = s->fwd_except;
  s->fwd_clients = c;
  s->fwd_except = x;
  pthread_mutex_unlock (&s->lock);
  free (old_c.v);
  free (old_x.v);
  return 0;
}

int
dns_server_start (const char *addr, int port, dns_server_t **out, skiff_error_t *err)
{
  dns_server_t *s = calloc (1, sizeof *s);
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "DNS server");
  pthread_mutex_init (&s->listen_lock, NULL);
  pthread_mutex_init (&s->set_lock, NULL);
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->drained, NULL);
  s->fwd = -1;
  s->wake = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake < 0)
    {
      int e = errno;
      dns_server_stop (s);
      return skiff_error_set (err, e, "eventfd");
    }
  s->fwd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (s->fwd < 0 || setsockopt (s->fwd, SOL_IP, IP_RECVERR, &one, sizeof one) < 0)
    {
      int e = errno;
      dns_server_stop (s);
      return skiff_error_set (err, e, "DNS forwarding socket");
    }
  if (dns_server_set (s, NULL, 0, NULL, 0, err) < 0 || dns_server_listen (s, addr, port, err) < 0)
    {
      dns_server_stop (s);
      return -1;
    }
  int e = pthread_create (&s->thread, NULL, server_main, s);
  if (e != 0)
    {
      dns_server_stop (s);
      return skiff_error_set (err, e, "start the DNS thread");
    }
  s->started = 1;
  *out = s;
  return 0;
}

void
dns_server_stop (dns_server_t *s)
{
  if (s == NULL)
    return;
  if (s->started)
    {
      pthread_mutex_lock (&s->lock);
      s->stopping = 1;
      pthread_mutex_unlock (&s->lock);
      wake (s);
      pthread_join (s->thread, NULL);
    }
  for (size_t i = 0; i < s->n_listeners; i++)
    {
      close (s->listeners[i].udp);
      close (s->listeners[i].tcp);
    }
  for (size_t i = 0; i < s->n_closing; i++)
    close (s->closing[i]);
  if (s->wake >= 0)
    close (s->wake);
  if (s->fwd >= 0)
    close (s->fwd);
  free (s->fwd_clients.v);
  free (s->fwd_except.v);
  dns_set_free (s->set);
  pthread_cond_destroy (&s->drained);
  pthread_mutex_destroy (&s->lock);
  pthread_mutex_destroy (&s->set_lock);
  pthread_mutex_destroy (&s->listen_lock);
  free (s);
}
