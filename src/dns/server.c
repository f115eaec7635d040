/* server.c - skiff's authoritative DNS server: one thread polls the UDP and TCP listeners, the TCP
 * connections and an eventfd that wakes it for listen/unlisten/stop. Answers come from an
 * immutable record set (answer.c) that dns_server_set swaps under a mutex. TCP connections are
 * capped, non-blocking both ways (an answer that does not fit the socket waits for POLLOUT, and
 * the connection reads nothing more meanwhile) and closed when idle. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "dns/dns_internal.h"

#define MAX_TCP 64
#define TCP_IDLE_MS 10000
#define TCP_BACKLOG 64
#define UDP_LIMIT 512
#define UDP_BATCH 64 /* datagrams read per wake-up of one socket */

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
  int64_t last_ms;
  size_t have;  /* bytes in in */
  uint8_t *out; /* length-prefixed answer being written, or NULL */
  size_t out_len, out_off;
  uint8_t in[2 + DNS_MAX_MSG];
} conn_t;

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
  /* the thread's own */
  conn_t *conns[MAX_TCP];
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

static void
serve_udp (dns_server_t *s, int fd)
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
      if (answer (s, s->udp_buf, (size_t)n, ntohl (from.sin_addr.s_addr), UDP_LIMIT, &out, &olen) == 0
          && sendto (fd, out, olen, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&from, flen) < 0)
        log_debug ("dns: UDP answer: %s", strerror (errno));
    }
}

static void
conn_close (dns_server_t *s, int i)
{
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

/* Answers the complete messages in the input buffer while nothing waits to be written; -1 when
 * the connection is to be closed. */
static int
process_tcp (dns_server_t *s, conn_t *k)
{
  size_t used = 0;
  int rc = 0;
  while (k->out == NULL && k->have - used >= 2)
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
      if (answer (s, m + 2, len, k->peer, 0, &ans, &alen) == 0)
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
          free (ans);
        }
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
      if (flush_out (k) < 0 || (k->out == NULL && process_tcp (s, k) < 0))
        conn_close (s, i);
      return;
    }
  if (!(revents & (POLLIN | POLLHUP | POLLERR)))
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
  if (process_tcp (s, k) < 0)
    conn_close (s, i);
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
  KIND_WAKE = -3,
  KIND_UDP = -2,
  KIND_LISTEN = -1, /* >= 0: a connection */
};

static void *
server_main (void *arg)
{
  dns_server_t *s = arg;
  struct pollfd fds[1 + 2 * DNS_MAX_LISTENERS + MAX_TCP];
  int kinds[1 + 2 * DNS_MAX_LISTENERS + MAX_TCP];
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
      for (size_t i = 0; i < s->n_listeners; i++)
        {
          fds[n] = (struct pollfd){ s->listeners[i].udp, POLLIN, 0 };
          kinds[n++] = KIND_UDP;
          fds[n] = (struct pollfd){ s->listeners[i].tcp, POLLIN, 0 };
          kinds[n++] = KIND_LISTEN;
        }
      pthread_mutex_unlock (&s->lock);
      int64_t t = now_ms ();
      for (int i = 0; i < MAX_TCP; i++)
        if (s->conns[i])
          {
            if (t - s->conns[i]->last_ms > TCP_IDLE_MS)
              {
                conn_close (s, i);
                continue;
              }
            fds[n] = (struct pollfd){ s->conns[i]->fd, s->conns[i]->out ? POLLOUT : POLLIN, 0 };
            kinds[n++] = i;
          }
      int r = poll (fds, n, 1000);
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
          else if (kinds[i] == KIND_UDP)
            serve_udp (s, fds[i].fd);
          else if (kinds[i] == KIND_LISTEN)
            accept_tcp (s, fds[i].fd);
          else if (s->conns[kinds[i]])
            serve_tcp (s, kinds[i], fds[i].revents);
        }
    }
  for (int i = 0; i < MAX_TCP; i++)
    if (s->conns[i])
      conn_close (s, i);
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
dns_server_start (const char *addr, int port, dns_server_t **out, skiff_error_t *err)
{
  dns_server_t *s = calloc (1, sizeof *s);
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "DNS server");
  pthread_mutex_init (&s->listen_lock, NULL);
  pthread_mutex_init (&s->set_lock, NULL);
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->drained, NULL);
  s->wake = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake < 0)
    {
      int e = errno;
      dns_server_stop (s);
      return skiff_error_set (err, e, "eventfd");
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
  dns_set_free (s->set);
  pthread_cond_destroy (&s->drained);
  pthread_mutex_destroy (&s->lock);
  pthread_mutex_destroy (&s->set_lock);
  pthread_mutex_destroy (&s->listen_lock);
  free (s);
}
