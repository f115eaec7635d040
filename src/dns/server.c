/* server.c - skiff's authoritative DNS server: one thread polling UDP and TCP listeners and TCP
 * connections; answers come from an immutable record set swapped under a mutex. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#define MAX_MSG 65535

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
  size_t have;
  int64_t last_ms;
  uint8_t buf[2 + MAX_MSG];
} conn_t;

struct dns_server
{
  pthread_t thread;
  int wake;
  pthread_mutex_t lock; /* guards everything below */
  int stopping;
  listener_t listeners[DNS_MAX_LISTENERS];
  size_t n_listeners;
  int closing[2 * DNS_MAX_LISTENERS]; /* fds of removed listeners, closed by the thread */
  size_t n_closing;
  dns_set_t *set;
  uint32_t serial;
  conn_t *conns[MAX_TCP]; /* owned by the thread */
};

static int64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
wake (dns_server_t *s)
{
  uint64_t one = 1;
  if (write (s->wake, &one, sizeof one) < 0)
    log_debug ("dns: wake: %s", strerror (errno));
}

static int
open_socket (int type, uint32_t addr, int port, skiff_error_t *err)
{
  int fd = socket (AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "socket");
  int one = 1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  sa.sin_addr.s_addr = htonl (addr);
  if (bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0 || (type == SOCK_STREAM && listen (fd, 64) < 0))
    {
      int e = errno;
      close (fd);
      char ip[16];
      inet_ntop (AF_INET, &sa.sin_addr, ip, sizeof ip);
      return skiff_error_set (err, e, "bind %s %s:%d", type == SOCK_STREAM ? "TCP" : "UDP", ip, port);
    }
  return fd;
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

/* Answers one query with the current set (under the lock). */
static int
answer (dns_server_t *s, const uint8_t *q, size_t qlen, uint32_t src, size_t max, uint8_t **out, size_t *outlen)
{
  pthread_mutex_lock (&s->lock);
  int rc = s->set ? dns_answer (s->set, q, qlen, src, max, out, outlen) : -1;
  pthread_mutex_unlock (&s->lock);
  return rc;
}

static void
serve_udp (dns_server_t *s, int fd)
{
  uint8_t buf[MAX_MSG];
  for (int i = 0; i < 64; i++)
    {
      struct sockaddr_in from;
      socklen_t flen = sizeof from;
      ssize_t n = recvfrom (fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
      if (n < 0)
        return;
      uint8_t *out = NULL;
      size_t olen = 0;
      if (answer (s, buf, (size_t)n, ntohl (from.sin_addr.s_addr), 512, &out, &olen) == 0)
        sendto (fd, out, olen, MSG_NOSIGNAL, (struct sockaddr *)&from, flen);
      free (out);
    }
}

static void
conn_close (dns_server_t *s, int i)
{
  close (s->conns[i]->fd);
  free (s->conns[i]);
  s->conns[i] = NULL;
}

static void
accept_tcp (dns_server_t *s, int fd)
{
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  int c = accept4 (fd, (struct sockaddr *)&from, &flen, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0)
    return;
  for (int i = 0; i < MAX_TCP; i++)
    if (s->conns[i] == NULL)
      {
        conn_t *k = malloc (sizeof *k);
        if (k == NULL)
          break;
        k->fd = c;
        k->peer = ntohl (from.sin_addr.s_addr);
        k->have = 0;
        k->last_ms = now_ms ();
        s->conns[i] = k;
        return;
      }
  close (c); /* too many connections */
}

/* Writes all of buf to a non-blocking socket, waiting up to a second for room. */
static int
write_all (int fd, const uint8_t *buf, size_t len)
{
  while (len)
    {
      ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN)
        {
          struct pollfd p = { fd, POLLOUT, 0 };
          if (poll (&p, 1, 1000) <= 0)
            return -1;
          continue;
        }
      if (n <= 0)
        return -1;
      buf += n;
      len -= (size_t)n;
    }
  return 0;
}

static void
serve_tcp (dns_server_t *s, int i)
{
  conn_t *k = s->conns[i];
  ssize_t n = recv (k->fd, k->buf + k->have, sizeof k->buf - k->have, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
    {
      conn_close (s, i);
      return;
    }
  if (n < 0)
    return;
  k->have += (size_t)n;
  k->last_ms = now_ms ();
  /* every complete message in the buffer */
  while (k->have >= 2)
    {
      size_t len = ((size_t)k->buf[0] << 8) | k->buf[1];
      if (len < 12)
        {
          conn_close (s, i);
          return;
        }
      if (k->have < 2 + len)
        return;
      uint8_t *out = NULL;
      size_t olen = 0;
      if (answer (s, k->buf + 2, len, k->peer, MAX_MSG, &out, &olen) == 0)
        {
          uint8_t hdr[2] = { (uint8_t)(olen >> 8), (uint8_t)olen };
          int w = write_all (k->fd, hdr, 2) < 0 || write_all (k->fd, out, olen) < 0;
          free (out);
          if (w)
            {
              conn_close (s, i);
              return;
            }
        }
      memmove (k->buf, k->buf + 2 + len, k->have - 2 - len);
      k->have -= 2 + len;
    }
}

static void *
server_main (void *arg)
{
  dns_server_t *s = arg;
  struct pollfd fds[1 + 2 * DNS_MAX_LISTENERS + MAX_TCP];
  int kinds[1 + 2 * DNS_MAX_LISTENERS + MAX_TCP]; /* 0 wake, 1 udp, 2 tcp listener, 3 + i: conn i */
  for (;;)
    {
      size_t n = 0;
      pthread_mutex_lock (&s->lock);
      if (s->stopping)
        {
          pthread_mutex_unlock (&s->lock);
          break;
        }
      for (size_t i = 0; i < s->n_closing; i++)
        close (s->closing[i]);
      s->n_closing = 0;
      fds[n] = (struct pollfd){ s->wake, POLLIN, 0 };
      kinds[n++] = 0;
      for (size_t i = 0; i < s->n_listeners; i++)
        {
          fds[n] = (struct pollfd){ s->listeners[i].udp, POLLIN, 0 };
          kinds[n++] = 1;
          fds[n] = (struct pollfd){ s->listeners[i].tcp, POLLIN, 0 };
          kinds[n++] = 2;
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
            fds[n] = (struct pollfd){ s->conns[i]->fd, POLLIN, 0 };
            kinds[n++] = 3 + i;
          }
      int r = poll (fds, n, 1000);
      if (r <= 0)
        continue;
      for (size_t i = 0; i < n; i++)
        {
          if (!fds[i].revents)
            continue;
          if (kinds[i] == 0)
            {
              uint64_t v;
              if (read (s->wake, &v, sizeof v) < 0)
                continue;
            }
          else if (kinds[i] == 1)
            serve_udp (s, fds[i].fd);
          else if (kinds[i] == 2)
            accept_tcp (s, fds[i].fd);
          else if (s->conns[kinds[i] - 3])
            serve_tcp (s, kinds[i] - 3);
        }
    }
  for (int i = 0; i < MAX_TCP; i++)
    if (s->conns[i])
      conn_close (s, i);
  return NULL;
}

int
dns_server_listen (dns_server_t *s, const char *addr, int port, skiff_error_t *err)
{
  struct in_addr a;
  if (addr == NULL || inet_pton (AF_INET, addr, &a) != 1 || port < 0 || port > 65535)
    return skiff_error_set (err, EINVAL, "`%.32s:%d` is not an IPv4 address and port", addr ? addr : "", port);
  uint32_t ip = ntohl (a.s_addr);
  pthread_mutex_lock (&s->lock);
  for (size_t i = 0; i < s->n_listeners; i++)
    if (s->listeners[i].addr == ip && (s->listeners[i].port == port || port == 0))
      {
        pthread_mutex_unlock (&s->lock);
        return 0;
      }
  int full = s->n_listeners >= DNS_MAX_LISTENERS;
  pthread_mutex_unlock (&s->lock);
  if (full)
    return skiff_error_set (err, E2BIG, "more than %d DNS listeners", DNS_MAX_LISTENERS);
  /* TCP first: with port 0 the UDP socket takes the same port */
  int tcp = open_socket (SOCK_STREAM, ip, port, err);
  if (tcp < 0)
    return -1;
  int bound = bound_port (tcp);
  int udp = open_socket (SOCK_DGRAM, ip, bound, err);
  if (udp < 0)
    {
      close (tcp);
      return -1;
    }
  pthread_mutex_lock (&s->lock);
  s->listeners[s->n_listeners++] = (listener_t){ ip, bound, udp, tcp };
  pthread_mutex_unlock (&s->lock);
  wake (s);
  return 0;
}

void
dns_server_unlisten (dns_server_t *s, const char *addr, int port)
{
  struct in_addr a;
  if (s == NULL || addr == NULL || inet_pton (AF_INET, addr, &a) != 1)
    return;
  uint32_t ip = ntohl (a.s_addr);
  pthread_mutex_lock (&s->lock);
  for (size_t i = 0; i < s->n_listeners; i++)
    if (s->listeners[i].addr == ip && s->listeners[i].port == port)
      {
        s->closing[s->n_closing++] = s->listeners[i].udp;
        s->closing[s->n_closing++] = s->listeners[i].tcp;
        s->listeners[i] = s->listeners[--s->n_listeners];
        break;
      }
  pthread_mutex_unlock (&s->lock);
  wake (s);
}

int
dns_server_port (dns_server_t *s)
{
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
    return 0;
  pthread_mutex_lock (&s->lock);
  /* the serial grows with every change, and never goes back across restarts within a second */
  uint32_t serial = (uint32_t)time (NULL);
  if (serial <= s->serial)
    serial = s->serial + 1;
  pthread_mutex_unlock (&s->lock);
  dns_set_t *set = NULL;
  if (dns_set_build (zones, n_zones, records, n_records, serial, &set, err) < 0)
    return -1;
  pthread_mutex_lock (&s->lock);
  dns_set_t *old = s->set;
  s->set = set;
  s->serial = serial;
  pthread_mutex_unlock (&s->lock);
  dns_set_free (old);
  return 0;
}

int
dns_server_start (const char *addr, int port, dns_server_t **out, skiff_error_t *err)
{
  dns_server_t *s = calloc (1, sizeof *s);
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "DNS server");
  pthread_mutex_init (&s->lock, NULL);
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
  if (pthread_create (&s->thread, NULL, server_main, s) != 0)
    {
      dns_server_stop (s);
      return skiff_error_set (err, EAGAIN, "start the DNS thread");
    }
  *out = s;
  return 0;
}

void
dns_server_stop (dns_server_t *s)
{
  if (s == NULL)
    return;
  pthread_mutex_lock (&s->lock);
  int running = s->thread != 0;
  s->stopping = 1;
  pthread_mutex_unlock (&s->lock);
  if (running)
    {
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
  pthread_mutex_destroy (&s->lock);
  free (s);
}
