/* wsclient.c - the CLI's WebSocket client: connection (unix socket, TCP, TLS), the RFC 6455
 * opening handshake, and a poll loop that drives wslay in client mode. See wsclient.h. */
#include "cli/wsclient.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <wslay/wslay.h>

#include "common/cleanup.h"
#include "common/util.h"

#ifndef SKIFF_VERSION
#define SKIFF_VERSION "0.1.0"
#endif

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HEADERS (16u * 1024)    /* the handshake answer's head */
#define WS_MAX_ERROR_BODY (16u * 1024) /* what is read of a refusal's body */
#define WS_CONNECT_TIMEOUT_MS 10000
#define WS_HANDSHAKE_TIMEOUT_S 30
#define WS_MAX_QUEUED 32 /* input messages waiting to be sent before input is no longer read */

/* ------------------------------------------------------------------ URLs */

static int
parse_port (const char *s, size_t len, int *out)
{
  if (len == 0 || len > 5)
    return -1;
  int v = 0;
  for (size_t i = 0; i < len; i++)
    {
      if (!isdigit ((unsigned char)s[i]))
        return -1;
      v = v * 10 + (s[i] - '0');
    }
  if (v < 1 || v > 65535)
    return -1;
  *out = v;
  return 0;
}

int
ws_parse_url (const char *url, char **scheme, char **host, char **authority, int *port, char **path, skiff_error_t *err)
{
  const char *sep = strstr (url, "://");
  if (sep == NULL)
    return skiff_error_set (err, 0, "'%s' is not an absolute URL", url);
  cleanup_free char *sch = strndup (url, (size_t)(sep - url));
  if (sch == NULL)
    abort ();
  skiff_ascii_lower (sch);
  int def;
  if (strcmp (sch, "http") == 0 || strcmp (sch, "ws") == 0)
    def = 80;
  else if (strcmp (sch, "https") == 0 || strcmp (sch, "wss") == 0)
    def = 443;
  else
    return skiff_error_set (err, 0, "'%s': unsupported scheme '%s'", url, sch);

  const char *a = sep + 3;
  const char *end = a + strcspn (a, "/?#");
  cleanup_free char *auth = strndup (a, (size_t)(end - a));
  if (auth == NULL)
    abort ();
  if (*auth == '\0' || strchr (auth, '@'))
    return skiff_error_set (err, 0, "'%s': bad host", url);
  cleanup_free char *h = NULL;
  int p = def;
  const char *port_s = NULL;
  if (auth[0] == '[')
    {
      char *close = strchr (auth, ']');
      if (close == NULL || close == auth + 1 || (close[1] != '\0' && close[1] != ':'))
        return skiff_error_set (err, 0, "'%s': bad IPv6 host", url);
      h = strndup (auth + 1, (size_t)(close - auth - 1));
      if (close[1] == ':')
        port_s = close + 2;
    }
  else
    {
      char *colon = strrchr (auth, ':');
      h = colon ? strndup (auth, (size_t)(colon - auth)) : skiff_strdup (auth);
      if (colon)
        port_s = colon + 1;
    }
  if (h == NULL)
    abort ();
  if (*h == '\0' || (port_s && parse_port (port_s, strlen (port_s), &p) < 0))
    return skiff_error_set (err, 0, "'%s': bad host or port", url);

  size_t plen = strcspn (end, "#");
  char *pa;
  if (plen == 0)
    pa = skiff_strdup ("/");
  else if (*end == '?')
    pa = skiff_strdup_printf ("/%.*s", (int)plen, end);
  else
    pa = strndup (end, plen);
  if (pa == NULL)
    abort ();

  *scheme = steal_pointer (&sch);
  *host = steal_pointer (&h);
  *authority = steal_pointer (&auth);
  *port = p;
  *path = pa;
  return 0;
}

void
ws_accept_for_key (const char *key, char out[29])
{
  unsigned char md[SHA_DIGEST_LENGTH];
  cleanup_free char *s = skiff_strdup_printf ("%s%s", key, WS_GUID);
  SHA1 ((const unsigned char *)s, strlen (s), md);
  EVP_EncodeBlock ((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 characters and a NUL */
}

/* ------------------------------------------------------------------ connection */

struct conn
{
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
  unsigned char *pending; /* bytes that arrived with the handshake answer, given to wslay first */
  size_t pending_len, pending_off;
  int out_fd;
  bool eof;        /* the server closed the connection */
  int io_errno;    /* errno of a failed recv/send, 0 when none */
  char *tls_error; /* a TLS failure during the session, or NULL */
  int out_errno;   /* errno of a failed write to out_fd, 0 when none */
  bool violation;  /* wslay stopped reading on its own: a frame broke the protocol or the size cap */
  bool got_close;  /* a close frame arrived */
  int close_code;  /* its status code (0 when it had none) */
  char close_reason[128];
};

static void
conn_release (struct conn *c)
{
  if (c->ssl)
    {
      if (c->eof || c->got_close)
        SSL_shutdown (c->ssl); /* one non-blocking close_notify; its answer is not awaited */
      SSL_free (c->ssl);
    }
  if (c->ctx)
    SSL_CTX_free (c->ctx);
  if (c->fd >= 0)
    close (c->fd);
  free (c->pending);
  free (c->tls_error);
  memset (c, 0, sizeof (*c));
  c->fd = -1;
}

/* The newest OpenSSL error as text (malloc'd). */
static char *
tls_error_text (void)
{
  unsigned long e = ERR_get_error ();
  if (e == 0)
    return skiff_strdup ("unknown TLS error");
  char buf[256];
  ERR_error_string_n (e, buf, sizeof buf);
  ERR_clear_error ();
  return skiff_strdup (buf);
}

static int
set_nonblocking (int fd, bool on)
{
  int fl = fcntl (fd, F_GETFL);
  if (fl < 0)
    return -1;
  return fcntl (fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static int
set_timeouts (int fd, int seconds)
{
  struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
  if (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0
      || setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
    return -1;
  return 0;
}

static int
connect_unix (struct conn *c, const char *path, skiff_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof sa.sun_path)
    return skiff_error_set (err, ENAMETOOLONG, "unix socket '%s'", path);
  strcpy (sa.sun_path, path);
  c->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return skiff_error_set (err, errno, "socket");
  if (connect (c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return skiff_error_set (err, errno, "connecting to '%s'", path);
  return 0;
}

/* Connects one address with a timeout. Returns the blocking socket or -1 with errno set. */
static int
connect_addr (const struct addrinfo *ai)
{
  int fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0)
    return -1;
  if (connect (fd, ai->ai_addr, ai->ai_addrlen) < 0)
    {
      if (errno != EINPROGRESS)
        goto fail;
      struct pollfd p = { .fd = fd, .events = POLLOUT };
      int r;
      do
        r = poll (&p, 1, WS_CONNECT_TIMEOUT_MS);
      while (r < 0 && errno == EINTR);
      if (r == 0)
        errno = ETIMEDOUT;
      if (r <= 0)
        goto fail;
      int soerr = 0;
      socklen_t l = sizeof soerr;
      if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0)
        goto fail;
      if (soerr)
        {
          errno = soerr;
          goto fail;
        }
    }
  if (set_nonblocking (fd, false) < 0)
    goto fail;
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* keystrokes go out at once */
  return fd;
fail:;
  int saved = errno;
  close (fd);
  errno = saved;
  return -1;
}

static int
connect_tcp (struct conn *c, const char *host, int port, skiff_error_t *err)
{
  char ps[16];
  snprintf (ps, sizeof ps, "%d", port);
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res = NULL;
  int g = getaddrinfo (host, ps, &hints, &res);
  if (g != 0)
    return skiff_error_set (err, 0, "resolving '%s': %s", host, gai_strerror (g));
  int last = ECONNREFUSED;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    {
      c->fd = connect_addr (ai);
      if (c->fd >= 0)
        break;
      last = errno;
    }
  freeaddrinfo (res);
  if (c->fd < 0)
    return skiff_error_set (err, last, "connecting to %s:%d", host, port);
  return 0;
}

static int
start_tls (struct conn *c, const struct ws_target *t, skiff_error_t *err)
{
  ERR_clear_error ();
  c->ctx = SSL_CTX_new (TLS_client_method ());
  if (c->ctx == NULL)
    return skiff_error_set (err, 0, "TLS: cannot create a context");
  SSL_CTX_set_min_proto_version (c->ctx, TLS1_2_VERSION);
  /* A server that drops the connection without close_notify ends the stream like EOF. */
  SSL_CTX_set_options (c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode (c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (t->ca_bundle)
    {
      if (SSL_CTX_load_verify_locations (c->ctx, t->ca_bundle, NULL) != 1)
        {
          cleanup_free char *e = tls_error_text ();
          return skiff_error_set (err, 0, "TLS: cannot load the CA bundle '%s': %s", t->ca_bundle, e);
        }
    }
  else if (SSL_CTX_set_default_verify_paths (c->ctx) != 1)
    return skiff_error_set (err, 0, "TLS: cannot load the system CA certificates");
  SSL_CTX_set_verify (c->ctx, SSL_VERIFY_PEER, NULL);

  c->ssl = SSL_new (c->ctx);
  if (c->ssl == NULL || SSL_set_fd (c->ssl, c->fd) != 1)
    return skiff_error_set (err, 0, "TLS: cannot create a session");
  unsigned char addr[16];
  if (inet_pton (AF_INET, t->host, addr) == 1 || inet_pton (AF_INET6, t->host, addr) == 1)
    {
      if (X509_VERIFY_PARAM_set1_ip_asc (SSL_get0_param (c->ssl), t->host) != 1)
        return skiff_error_set (err, 0, "TLS: cannot check address '%s'", t->host);
    }
  else if (SSL_set_tlsext_host_name (c->ssl, t->host) != 1 || SSL_set1_host (c->ssl, t->host) != 1)
    return skiff_error_set (err, 0, "TLS: cannot check host name '%s'", t->host);

  if (SSL_connect (c->ssl) != 1)
    {
      long v = SSL_get_verify_result (c->ssl);
      if (v != X509_V_OK)
        return skiff_error_set (err, 0, "TLS handshake with %s:%d: certificate verification failed: %s", t->host,
                                t->port, X509_verify_cert_error_string (v));
      cleanup_free char *e = tls_error_text ();
      return skiff_error_set (err, 0, "TLS handshake with %s:%d: %s", t->host, t->port, e);
    }
  return 0;
}

/* Blocking I/O for the handshake (socket timeouts bound it). */
static int
conn_write_all (struct conn *c, const char *data, size_t len, skiff_error_t *err)
{
  while (len > 0)
    {
      ssize_t n;
      if (c->ssl)
        {
          ERR_clear_error ();
          int r = SSL_write (c->ssl, data, len > INT_MAX ? INT_MAX : (int)len);
          if (r <= 0)
            {
              cleanup_free char *e = tls_error_text ();
              return skiff_error_set (err, 0, "sending the WebSocket handshake: %s", e);
            }
          n = r;
        }
      else
        {
          n = send (c->fd, data, len, MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return skiff_error_set (err, errno == EAGAIN ? ETIMEDOUT : errno, "sending the WebSocket handshake");
        }
      data += n;
      len -= (size_t)n;
    }
  return 0;
}

/* Reads some bytes; returns the count, 0 at EOF, -1 with err. */
static ssize_t
conn_read_some (struct conn *c, void *buf, size_t len, skiff_error_t *err)
{
  for (;;)
    {
      if (c->ssl)
        {
          ERR_clear_error ();
          int r = SSL_read (c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
          if (r > 0)
            return r;
          int e = SSL_get_error (c->ssl, r);
          if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
          if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
            return skiff_error_set (err, ETIMEDOUT, "reading the WebSocket handshake answer");
          cleanup_free char *t = tls_error_text ();
          return skiff_error_set (err, 0, "reading the WebSocket handshake answer: %s", t);
        }
      ssize_t n = recv (c->fd, buf, len, 0);
      if (n >= 0)
        return n;
      if (errno == EINTR)
        continue;
      return skiff_error_set (err, errno == EAGAIN ? ETIMEDOUT : errno, "reading the WebSocket handshake answer");
    }
}

/* ------------------------------------------------------------------ handshake */

/* Finds header `name` among the lines of head (each ending in "\r\n"); returns a malloc'd
 * trimmed value or NULL. */
static char *
find_header (const char *head, const char *name)
{
  size_t nl = strlen (name);
  const char *line = strstr (head, "\r\n");
  while (line && line[2] != '\0')
    {
      line += 2;
      const char *end = strstr (line, "\r\n");
      if (end == NULL)
        break;
      if ((size_t)(end - line) > nl && strncasecmp (line, name, nl) == 0 && line[nl] == ':')
        {
          const char *v = line + nl + 1;
          while (v < end && (*v == ' ' || *v == '\t'))
            v++;
          const char *ve = end;
          while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
          char *out = strndup (v, (size_t)(ve - v));
          if (out == NULL)
            abort ();
          return out;
        }
      line = end;
    }
  return NULL;
}

/* True when the comma-separated list `value` holds `token` (ASCII case-insensitive). */
static bool
has_token (const char *value, const char *token)
{
  size_t tl = strlen (token);
  const char *p = value;
  while (p && *p)
    {
      while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
      size_t l = strcspn (p, ",");
      size_t tlen = l;
      while (tlen > 0 && (p[tlen - 1] == ' ' || p[tlen - 1] == '\t'))
        tlen--;
      if (tlen == tl && strncasecmp (p, token, tl) == 0)
        return true;
      p += l;
    }
  return false;
}

/* Turns a refusal (status != 101) into an error, reading up to WS_MAX_ERROR_BODY of its body. */
static int
refusal_error (struct conn *c, long status, const char *head, skiff_error_t *err)
{
  cleanup_free char *cl = find_header (head, "Content-Length");
  size_t want = c->pending_len;
  if (cl)
    {
      char *end = NULL;
      unsigned long long v = strtoull (cl, &end, 10);
      if (end != cl && *end == '\0')
        want = v > WS_MAX_ERROR_BODY ? WS_MAX_ERROR_BODY : (size_t)v;
    }
  if (want > WS_MAX_ERROR_BODY)
    want = WS_MAX_ERROR_BODY;
  cleanup_free char *body = calloc (1, want + 1);
  if (body == NULL)
    abort ();
  size_t have = c->pending_len < want ? c->pending_len : want;
  memcpy (body, c->pending, have);
  while (have < want)
    {
      skiff_error_t local = NULL;
      ssize_t n = conn_read_some (c, body + have, want - have, &local);
      skiff_error_release (&local);
      if (n <= 0)
        break;
      have += (size_t)n;
    }
  body[have] = '\0';
  json_t *j = json_loadb (body, have, 0, NULL);
  json_t *e = json_object_get (j, "error");
  const char *code = json_string_value (json_object_get (e, "code"));
  const char *msg = json_string_value (json_object_get (e, "message"));
  if (code && msg)
    skiff_error_arm (err, (int)status, code, "%s", msg);
  else
    {
      size_t l = strlen (body);
      while (l > 0 && (body[l - 1] == '\n' || body[l - 1] == '\r' || body[l - 1] == ' '))
        body[--l] = '\0';
      skiff_error_arm (err, (int)status, "WebSocketHandshakeFailed",
                       "the server refused the WebSocket session with HTTP status %ld%s%.300s", status,
                       *body ? ": " : "", body);
    }
  json_decref (j);
  return -1;
}

static int
handshake (struct conn *c, const struct ws_target *t, skiff_error_t *err)
{
  unsigned char raw[16];
  if (RAND_bytes (raw, sizeof raw) != 1)
    return skiff_error_set (err, 0, "no random bytes for the WebSocket key");
  char key[32];
  EVP_EncodeBlock ((unsigned char *)key, raw, sizeof raw);
  cleanup_free char *req = skiff_strdup_printf ("GET %s HTTP/1.1\r\n"
                                                "Host: %s\r\n"
                                                "Upgrade: websocket\r\n"
                                                "Connection: Upgrade\r\n"
                                                "Sec-WebSocket-Key: %s\r\n"
                                                "Sec-WebSocket-Version: 13\r\n"
                                                "User-Agent: skiff-cli/" SKIFF_VERSION "\r\n"
                                                "\r\n",
                                                t->path, t->host_header, key);
  if (conn_write_all (c, req, strlen (req), err) < 0)
    return -1;

  cleanup_free char *buf = malloc (WS_MAX_HEADERS + 1);
  if (buf == NULL)
    abort ();
  size_t len = 0;
  char *end = NULL;
  while (end == NULL)
    {
      if (len >= WS_MAX_HEADERS)
        return skiff_error_set (err, 0, "the WebSocket handshake answer is too long");
      ssize_t n = conn_read_some (c, buf + len, WS_MAX_HEADERS - len, err);
      if (n < 0)
        return -1;
      if (n == 0)
        return skiff_error_set (err, 0, "the server closed the connection during the WebSocket handshake");
      len += (size_t)n;
      buf[len] = '\0';
      end = memmem (buf, len, "\r\n\r\n", 4);
    }
  size_t head_len = (size_t)(end - buf) + 4;
  c->pending_len = len - head_len;
  if (c->pending_len)
    {
      c->pending = malloc (c->pending_len);
      if (c->pending == NULL)
        abort ();
      memcpy (c->pending, buf + head_len, c->pending_len);
    }
  buf[head_len] = '\0';
  if (memchr (buf, '\0', head_len))
    return skiff_error_set (err, 0, "the WebSocket handshake answer holds a NUL byte");

  long status = 0;
  if (sscanf (buf, "HTTP/1.%*1[01] %3ld", &status) != 1)
    return skiff_error_set (err, 0, "the server's WebSocket handshake answer is not HTTP");
  if (status != 101)
    return refusal_error (c, status, buf, err);
  cleanup_free char *upgrade = find_header (buf, "Upgrade");
  cleanup_free char *connection = find_header (buf, "Connection");
  cleanup_free char *accept = find_header (buf, "Sec-WebSocket-Accept");
  if (upgrade == NULL || strcasecmp (upgrade, "websocket") != 0)
    return skiff_error_set (err, 0, "WebSocket handshake: the answer has no 'Upgrade: websocket'");
  if (connection == NULL || !has_token (connection, "upgrade"))
    return skiff_error_set (err, 0, "WebSocket handshake: the answer has no 'Connection: Upgrade'");
  char expected[29];
  ws_accept_for_key (key, expected);
  if (accept == NULL || strcmp (accept, expected) != 0)
    return skiff_error_set (err, 0, "WebSocket handshake: wrong Sec-WebSocket-Accept '%s' (expected '%s')",
                            accept ? accept : "", expected);
  return 0;
}

/* ------------------------------------------------------------------ wslay callbacks */

static ssize_t
on_recv (wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
  (void)flags;
  struct conn *c = user;
  if (c->pending_off < c->pending_len)
    {
      size_t n = c->pending_len - c->pending_off;
      if (n > len)
        n = len;
      memcpy (buf, c->pending + c->pending_off, n);
      c->pending_off += n;
      return (ssize_t)n;
    }
  for (;;)
    {
      if (c->ssl)
        {
          ERR_clear_error ();
          int r = SSL_read (c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
          if (r > 0)
            return r;
          int e = SSL_get_error (c->ssl, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            {
              wslay_event_set_error (ctx, WSLAY_ERR_WOULDBLOCK);
              return -1;
            }
          if (e == SSL_ERROR_ZERO_RETURN)
            c->eof = true;
          else if (e == SSL_ERROR_SYSCALL && errno != 0)
            c->io_errno = errno;
          else
            c->tls_error = tls_error_text ();
          wslay_event_set_error (ctx, WSLAY_ERR_CALLBACK_FAILURE);
          return -1;
        }
      ssize_t n = recv (c->fd, buf, len, 0);
      if (n > 0)
        return n;
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          wslay_event_set_error (ctx, WSLAY_ERR_WOULDBLOCK);
          return -1;
        }
      if (n == 0 || errno == ECONNRESET)
        c->eof = true;
      else
        c->io_errno = errno;
      wslay_event_set_error (ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
}

static ssize_t
on_send (wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
  (void)flags;
  struct conn *c = user;
  for (;;)
    {
      if (c->ssl)
        {
          ERR_clear_error ();
          int r = SSL_write (c->ssl, data, len > INT_MAX ? INT_MAX : (int)len);
          if (r > 0)
            return r;
          int e = SSL_get_error (c->ssl, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            {
              wslay_event_set_error (ctx, WSLAY_ERR_WOULDBLOCK);
              return -1;
            }
          if (e == SSL_ERROR_SYSCALL && errno != 0)
            c->io_errno = errno;
          else if (c->tls_error == NULL)
            c->tls_error = tls_error_text ();
          wslay_event_set_error (ctx, WSLAY_ERR_CALLBACK_FAILURE);
          return -1;
        }
      ssize_t n = send (c->fd, data, len, MSG_NOSIGNAL);
      if (n >= 0)
        return n;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        {
          wslay_event_set_error (ctx, WSLAY_ERR_WOULDBLOCK);
          return -1;
        }
      c->io_errno = errno;
      wslay_event_set_error (ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
}

static int
on_genmask (wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
  (void)user;
  if (RAND_bytes (buf, (int)len) != 1)
    {
      wslay_event_set_error (ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
  return 0;
}

static int
write_all (int fd, const uint8_t *p, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          struct pollfd pf = { .fd = fd, .events = POLLOUT };
          poll (&pf, 1, -1);
          continue;
        }
      if (n < 0)
        return -1;
      p += n;
      len -= (size_t)n;
    }
  return 0;
}

static void
on_msg (wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
  (void)ctx;
  struct conn *c = user;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE)
    {
      c->got_close = true;
      c->close_code = arg->status_code;
      size_t rl = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
      if (rl >= sizeof c->close_reason)
        rl = sizeof c->close_reason - 1;
      if (rl)
        memcpy (c->close_reason, arg->msg + 2, rl);
      c->close_reason[rl] = '\0';
      return;
    }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
    return; /* ping/pong are answered by wslay */
  if (c->out_errno == 0 && write_all (c->out_fd, arg->msg, arg->msg_length) < 0)
    c->out_errno = errno;
}

/* ------------------------------------------------------------------ session */

static bool
normal_close (int code)
{
  return code == WSLAY_CODE_NORMAL_CLOSURE || code == WSLAY_CODE_GOING_AWAY || code == WSLAY_CODE_NO_STATUS_RCVD
         || code == 0;
}

/* The result of a finished session, from what the connection recorded. */
static int
session_result (struct conn *c, wslay_event_context_ptr ctx, skiff_error_t *err)
{
  if (c->out_errno)
    return skiff_error_set (err, c->out_errno, "writing the session output");
  if (c->got_close)
    {
      if (normal_close (c->close_code))
        return 0;
      return skiff_error_set (err, 0, "the server ended the session with close code %d%s%s", c->close_code,
                              c->close_reason[0] ? ": " : "", c->close_reason);
    }
  /* A close we sent ourselves names a protocol violation by the server: report it first, the
   * connection may well have been reset after it. */
  uint16_t sent = wslay_event_get_status_code_sent (ctx);
  if (sent == WSLAY_CODE_MESSAGE_TOO_BIG)
    return skiff_error_set (err, 0, "the server sent a message larger than %u bytes", WS_MAX_MESSAGE);
  if (sent != WSLAY_CODE_ABNORMAL_CLOSURE && sent != 0)
    return skiff_error_set (err, 0, "WebSocket protocol error (close code %u sent)", (unsigned)sent);
  if (c->violation) /* our close frame could not be sent: the server already went away */
    return skiff_error_set (err, 0,
                            "the server broke the WebSocket protocol (a message larger than %u bytes or a malformed "
                            "frame)",
                            WS_MAX_MESSAGE);
  if (c->eof)
    return 0;
  if (c->tls_error)
    return skiff_error_set (err, 0, "TLS error in the session: %s", c->tls_error);
  if (c->io_errno)
    return skiff_error_set (err, c->io_errno, "WebSocket connection");
  return skiff_error_set (err, 0, "the WebSocket session ended unexpectedly");
}

static int
session_loop (struct conn *c, const struct ws_session *s, skiff_error_t *err)
{
  struct wslay_event_callbacks cbs = { on_recv, on_send, on_genmask, NULL, NULL, NULL, on_msg };
  wslay_event_context_ptr ctx = NULL;
  if (wslay_event_context_client_init (&ctx, &cbs, c) != 0)
    return skiff_error_set (err, ENOMEM, "WebSocket context");
  wslay_event_config_set_max_recv_msg_length (ctx, WS_MAX_MESSAGE);

  struct wslay_event_msg first
      = { .opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)s->password, .msg_length = strlen (s->password) };
  wslay_event_queue_msg (ctx, &first);

  cleanup_free uint8_t *buf = malloc (WS_MAX_SEND_FRAME);
  if (buf == NULL)
    abort ();
  bool in_open = s->in_fd >= 0;
  for (;;)
    {
      bool want_read = wslay_event_want_read (ctx), want_write = wslay_event_want_write (ctx);
      if (!want_read && !want_write)
        break;
      struct pollfd p[2] = { { .fd = c->fd, .events = (short)((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0)) },
                             { .fd = s->in_fd, .events = POLLIN } };
      nfds_t n = in_open && want_read && wslay_event_get_queued_msg_count (ctx) < WS_MAX_QUEUED ? 2 : 1;
      bool buffered = c->pending_off < c->pending_len || (c->ssl && SSL_pending (c->ssl) > 0);
      int r = poll (p, n, buffered ? 0 : -1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          wslay_event_context_free (ctx);
          return skiff_error_set (err, errno, "poll");
        }
      if (want_read && (buffered || (p[0].revents & (POLLIN | POLLHUP | POLLERR))))
        {
          if (wslay_event_recv (ctx) != 0)
            break;
          if (!wslay_event_get_read_enabled (ctx) && !c->got_close)
            c->violation = true;
          if (c->out_errno)
            break;
        }
      if (n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
        {
          ssize_t got = read (s->in_fd, buf, WS_MAX_SEND_FRAME);
          if (got > 0)
            {
              struct wslay_event_msg m = { .opcode = WSLAY_BINARY_FRAME, .msg = buf, .msg_length = (size_t)got };
              wslay_event_queue_msg (ctx, &m); /* copies; fails only once a close is under way */
            }
          else if (got == 0 || (errno != EINTR && errno != EAGAIN))
            in_open = false; /* EOF: send nothing more, keep reading until the server closes */
        }
      /* A send failure after the server's close frame is not an error: the server may drop the
       * connection before our close reply; session_result looks at got_close first. */
      if (wslay_event_want_write (ctx) && wslay_event_send (ctx) != 0)
        break;
    }
  int rc = session_result (c, ctx, err);
  wslay_event_context_free (ctx);
  return rc;
}

int
ws_run (const struct ws_target *t, const struct ws_session *s, skiff_error_t *err)
{
  struct conn c = { .fd = -1, .out_fd = s->out_fd };
  struct sigaction ign = { .sa_handler = SIG_IGN }, old;
  sigaction (SIGPIPE, &ign, &old);
  int rc = -1;
  if (t->unix_path ? connect_unix (&c, t->unix_path, err) < 0 : connect_tcp (&c, t->host, t->port, err) < 0)
    goto out;
  if (set_timeouts (c.fd, WS_HANDSHAKE_TIMEOUT_S) < 0)
    {
      skiff_error_set (err, errno, "setsockopt");
      goto out;
    }
  if (t->tls && !t->unix_path && start_tls (&c, t, err) < 0)
    goto out;
  if (handshake (&c, t, err) < 0)
    goto out;
  if (set_timeouts (c.fd, 0) < 0 || set_nonblocking (c.fd, true) < 0)
    {
      skiff_error_set (err, errno, "socket options");
      goto out;
    }
  rc = session_loop (&c, s, err);
out:
  conn_release (&c);
  sigaction (SIGPIPE, &old, NULL);
  return rc;
}
