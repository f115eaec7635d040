/* http_server.c - the HTTP/1.1 front of the API on h2o's event loop.
 *
 * A TCP listener (TLS, bound without SO_REUSEPORT, so a second skiffd on the same port fails
 * loudly) and a plain-HTTP unix socket for the local CLI, both shared by N loop threads. Each
 * request is answered inline by api_handle(), which only touches the store and queues work for
 * the agent; exec and attach upgrade to WebSockets relayed here (see the relay below). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/websocket.h>
#include <openssl/ssl.h>

#include "api.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_THREADS 8
/* h2o answers 413 by itself above this; the API answers an ARM 413 above MODEL_MAX_BODY_BYTES. */
#define H2O_ENTITY_CAP (8 * 1024 * 1024)

typedef struct
{
  struct api_server *server;
  pthread_t thread;
  h2o_evloop_t *loop;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept_tcp;  /* TLS when the server has a certificate */
  h2o_accept_ctx_t accept_unix; /* plain HTTP */
  h2o_socket_t *listener;
  h2o_socket_t *unix_listener;
  h2o_timeout_t resume_timeout; /* paused WebSocket relays look again after this */
} loop_thread_t;

typedef struct
{
  h2o_handler_t super;
  api_ctx_t *ctx;
  struct api_server *server;
} api_handler_t;

struct api_server
{
  h2o_globalconf_t config;
  api_ctx_t *ctx;
  SSL_CTX *ssl;
  int fd;
  int unix_fd;
  char *unix_path;
  int port;
  int n;
  volatile int stop;
  loop_thread_t threads[MAX_THREADS];
};

static char *
header_dup (h2o_req_t *req, const h2o_token_t *token)
{
  ssize_t i = h2o_find_header (&req->headers, token, -1);
  if (i < 0)
    return NULL;
  h2o_iovec_t v = req->headers.entries[i].value;
  if (v.len > 16384)
    return NULL;
  return strndup (v.base, v.len);
}

/* The reason phrase of the statuses the API answers with. */
static const char *
reason_of (int status)
{
  switch (status)
    {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "OK" : "Error";
    }
}

static void
send_json (h2o_req_t *req, int status, const char *body)
{
  req->res.status = status;
  req->res.reason = reason_of (status);
  h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                  H2O_STRLIT ("application/json; charset=utf-8"));
  size_t len = strlen (body);
  h2o_iovec_t b = h2o_strdup (&req->pool, body, len);
  req->res.content_length = len;
  h2o_send_inline (req, b.base, b.len);
}

/* ---- WebSocket relay: exec and attach ---------------------------------------
 *
 * The client's first message is the session password; after it, the relay copies client
 * messages into the agent's stream socket and stream bytes into binary messages, on the
 * connection's loop thread. When the stream ends the relay sends a close frame; when the client
 * goes away the stream socket is closed, which ends the exec'd process. */

#define WS_MAX_PENDING_IN (1024 * 1024)     /* client bytes not yet taken by the stream */
#define WS_MAX_QUEUED_OUT (4 * 1024 * 1024) /* stream bytes not yet sent to the client */
#define WS_SESSION_PATH "/skiff/sessions/"

typedef struct
{
  api_ctx_t *ctx;
  h2o_loop_t *loop;
  h2o_websocket_conn_t *ws;
  h2o_socket_t *stream;
  char id[64];
  int authed;
  int is_exec;
  char *pending; /* client bytes waiting for the in-flight write to finish */
  size_t pending_len;
  char *inflight;
  size_t inflight_len;
  h2o_timeout_entry_t resume;
  h2o_timeout_t *resume_timeout;
} ws_relay_t;

static void stream_on_read (h2o_socket_t *sock, const char *err);

static void
ws_queue (ws_relay_t *r, uint8_t opcode, const void *data, size_t len)
{
  struct wslay_event_msg m = { .opcode = opcode, .msg = data, .msg_length = len };
  wslay_event_queue_msg (r->ws->ws_ctx, &m);
}

static void
ws_queue_close (ws_relay_t *r, uint16_t code, const char *reason)
{
  wslay_event_queue_close (r->ws->ws_ctx, code, (const uint8_t *)reason, reason ? strlen (reason) : 0);
}

static void
stream_close (ws_relay_t *r)
{
  if (h2o_timeout_is_linked (&r->resume))
    h2o_timeout_unlink (&r->resume);
  if (r->stream)
    {
      h2o_socket_close (r->stream);
      r->stream = NULL;
    }
}

static void
relay_free (ws_relay_t *r)
{
  stream_close (r);
  free (r->pending);
  free (r->inflight);
  free (r);
}

static void stream_write_next (ws_relay_t *r);

static void
stream_on_write (h2o_socket_t *sock, const char *err)
{
  ws_relay_t *r = sock->data;
  free (r->inflight);
  r->inflight = NULL;
  r->inflight_len = 0;
  if (err != NULL)
    return; /* the read side reports the end of the stream */
  stream_write_next (r);
}

static void
stream_write_next (ws_relay_t *r)
{
  if (r->stream == NULL || r->inflight || r->pending_len == 0)
    return;
  r->inflight = r->pending;
  r->inflight_len = r->pending_len;
  r->pending = NULL;
  r->pending_len = 0;
  h2o_iovec_t b = h2o_iovec_init (r->inflight, r->inflight_len);
  h2o_socket_write (r->stream, &b, 1, stream_on_write);
}

/* Ends the session from the stream side: a close frame, then h2o closes the connection. */
static void
stream_ended (ws_relay_t *r, uint16_t code, const char *reason)
{
  stream_close (r);
  ws_queue_close (r, code, reason);
}

static void
on_resume (h2o_timeout_entry_t *entry)
{
  ws_relay_t *r = H2O_STRUCT_FROM_MEMBER (ws_relay_t, resume, entry);
  if (r->stream == NULL)
    return;
  if (wslay_event_get_queued_msg_length (r->ws->ws_ctx) > WS_MAX_QUEUED_OUT)
    {
      h2o_timeout_link (r->loop, r->resume_timeout, &r->resume);
      return;
    }
  h2o_socket_read_start (r->stream, stream_on_read);
}

static void
stream_on_read (h2o_socket_t *sock, const char *err)
{
  ws_relay_t *r = sock->data;
  if (sock->input->size > 0)
    {
      ws_queue (r, WSLAY_BINARY_FRAME, sock->input->bytes, sock->input->size);
      h2o_buffer_consume (&sock->input, sock->input->size);
    }
  if (err != NULL)
    stream_ended (r, 1000, r->is_exec ? "process exited" : "container stopped");
  else if (wslay_event_get_queued_msg_length (r->ws->ws_ctx) > WS_MAX_QUEUED_OUT)
    {
      /* the client reads slower than the stream produces: pause the stream, not the loop */
      h2o_socket_read_stop (sock);
      h2o_timeout_link (r->loop, r->resume_timeout, &r->resume);
    }
  h2o_websocket_proceed (r->ws); /* may close and free r: nothing after this */
}

static void
relay_start (ws_relay_t *r, const char *password, size_t len)
{
  api_session_t *s = NULL;
  if (api_session_take (r->ctx->sessions, r->id, password, len, &s) < 0)
    {
      log_info ("exec/attach session %s: wrong or expired password", r->id);
      ws_queue_close (r, 1008, "invalid or expired password");
      return;
    }
  r->authed = 1;
  r->is_exec = s->is_exec;
  int fd = -1;
  cleanup_error skiff_error_t err = NULL;
  int rc = api_session_open (r->ctx, s, &fd, &err);
  api_session_free (s);
  if (rc < 0)
    {
      cleanup_free char *m = skiff_strdup_printf ("%s\r\n", err ? err->msg : "the stream could not be opened");
      ws_queue (r, WSLAY_TEXT_FRAME, m, strlen (m));
      ws_queue_close (r, 1011, "stream failed");
      return;
    }
  r->stream = h2o_evloop_socket_create (r->loop, fd, 0);
  r->stream->data = r;
  h2o_socket_read_start (r->stream, stream_on_read);
}

static void
on_ws_msg (h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
  ws_relay_t *r = conn->data;
  if (arg == NULL)
    {
      h2o_websocket_close (conn);
      relay_free (r);
      return;
    }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
    return;
  if (!r->authed)
    {
      if (arg->opcode != WSLAY_TEXT_FRAME)
        {
          ws_queue_close (r, 1008, "the first message must be the password");
          return;
        }
      relay_start (r, (const char *)arg->msg, arg->msg_length);
      return;
    }
  if (!r->is_exec || r->stream == NULL || arg->msg_length == 0)
    return; /* attach takes no input */
  if (r->pending_len + arg->msg_length > WS_MAX_PENDING_IN)
    {
      stream_ended (r, 1009, "input arrives faster than the process reads it");
      return;
    }
  char *n = realloc (r->pending, r->pending_len + arg->msg_length);
  if (n == NULL)
    abort ();
  memcpy (n + r->pending_len, arg->msg, arg->msg_length);
  r->pending = n;
  r->pending_len += arg->msg_length;
  stream_write_next (r);
}

static int
on_ws_request (api_handler_t *h, h2o_req_t *req, const char *path, size_t plen)
{
  loop_thread_t *t = NULL;
  for (int i = 0; i < h->server->n; i++)
    if (&h->server->threads[i].ctx == req->conn->ctx)
      t = &h->server->threads[i];
  const char *id = path + strlen (WS_SESSION_PATH);
  size_t idlen = plen - strlen (WS_SESSION_PATH);
  char idbuf[64];
  if (idlen == 0 || idlen >= sizeof (idbuf) || memchr (id, '/', idlen))
    {
      send_json (req, 404, "{\"error\":{\"code\":\"NotFound\",\"message\":\"No such session.\"}}");
      return 0;
    }
  memcpy (idbuf, id, idlen);
  idbuf[idlen] = '\0';
  const char *client_key = NULL;
  if (h2o_is_websocket_handshake (req, &client_key) != 0 || client_key == NULL || req->version >= 0x200 || t == NULL)
    {
      send_json (req, 400,
                 "{\"error\":{\"code\":\"BadRequest\",\"message\":\"This address takes a WebSocket connection.\"}}");
      return 0;
    }
  if (!api_session_exists (h->ctx->sessions, idbuf))
    {
      send_json (req, 404,
                 "{\"error\":{\"code\":\"NotFound\",\"message\":\"The session does not exist or has expired.\"}}");
      return 0;
    }
  ws_relay_t *r = calloc (1, sizeof (*r));
  if (r == NULL)
    abort ();
  r->ctx = h->ctx;
  r->loop = req->conn->ctx->loop;
  r->resume_timeout = &t->resume_timeout;
  r->resume.cb = on_resume;
  memcpy (r->id, idbuf, idlen + 1);
  r->ws = h2o_upgrade_to_websocket (req, client_key, r, on_ws_msg);
  return 0;
}

/* ---- plain requests ---------------------------------------------------------- */

static int
on_req (h2o_handler_t *self, h2o_req_t *req)
{
  api_handler_t *h = (api_handler_t *)self;
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  if (plen > strlen (WS_SESSION_PATH) && strncmp (req->path.base, WS_SESSION_PATH, strlen (WS_SESSION_PATH)) == 0)
    return on_ws_request (h, req, req->path.base, plen);
  cleanup_free char *method = strndup (req->method.base, req->method.len);
  cleanup_free char *auth = header_dup (req, H2O_TOKEN_AUTHORIZATION);
  cleanup_free char *host = req->authority.len < 256 ? strndup (req->authority.base, req->authority.len) : NULL;
  cleanup_free char *if_none_match = header_dup (req, H2O_TOKEN_IF_NONE_MATCH);
  api_request_t ar = { .method = method,
                       .path = req->path.base,
                       .path_len = plen,
                       .query = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : NULL,
                       .query_len = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0,
                       .authorization = auth,
                       .host = host,
                       .if_none_match = if_none_match,
                       .scheme = req->input.scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http",
                       .body = req->entity.base,
                       .body_len = req->entity.base ? req->entity.len : 0 };
  api_response_t res;
  api_handle (h->ctx, &ar, &res);
  req->res.status = res.status;
  req->res.reason = reason_of (res.status);
  for (int i = 0; i < res.n_headers; i++)
    {
      const char *n = res.header_names[i], *v = res.header_values[i];
      h2o_iovec_t nv = h2o_strdup (&req->pool, n, strlen (n));
      h2o_iovec_t vv = h2o_strdup (&req->pool, v, strlen (v));
      h2o_add_header_by_str (&req->pool, &req->res.headers, nv.base, nv.len, 0, NULL, vv.base, vv.len);
    }
  if (res.body)
    {
      h2o_add_header (&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                      H2O_STRLIT ("application/json; charset=utf-8"));
      req->res.content_length = res.body_len;
      h2o_send_inline (req, res.body, res.body_len);
    }
  else
    {
      req->res.content_length = 0;
      h2o_send_inline (req, "", 0);
    }
  api_response_clear (&res);
  return 0;
}
static void
on_accept (h2o_socket_t *listener, const char *err)
{
  if (err != NULL)
    return;
  h2o_accept_ctx_t *actx = listener->data;
  h2o_socket_t *sock;
  /* accept as many as are queued; another loop may take some of them */
  for (int i = 0; i < 16; i++)
    {
      if ((sock = h2o_evloop_socket_accept (listener)) == NULL)
        return;
      h2o_accept (actx, sock);
    }
}

static void *
loop_main (void *arg)
{
  loop_thread_t *t = arg;
  sigset_t all;
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, NULL);
  while (!t->server->stop)
    h2o_evloop_run (t->loop, 200);
  return NULL;
}

static SSL_CTX *
tls_context (const char *cert, const char *key, skiff_error_t *err)
{
  SSL_CTX *ssl = SSL_CTX_new (TLS_server_method ());
  if (ssl == NULL)
    {
      skiff_error_set (err, 0, "create the TLS context");
      return NULL;
    }
  SSL_CTX_set_min_proto_version (ssl, TLS1_2_VERSION);
  SSL_CTX_set_options (ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file (ssl, cert) != 1)
    {
      SSL_CTX_free (ssl);
      skiff_error_set (err, 0, "read the TLS certificate chain `%s`", cert);
      return NULL;
    }
  if (SSL_CTX_use_PrivateKey_file (ssl, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key (ssl) != 1)
    {
      SSL_CTX_free (ssl);
      skiff_error_set (err, 0, "read the TLS private key `%s` (it must match the certificate)", cert);
      return NULL;
    }
  return ssl;
}

static int
bind_tcp (const char *address, int port, int *fd_out, int *port_out, skiff_error_t *err)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  if (inet_pton (AF_INET, address, &sa.sin_addr) != 1)
    return skiff_error_set (err, EINVAL, "listen address `%s`", address);
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
  if (bind (fd, (struct sockaddr *)&sa, sizeof (sa)) < 0 || listen (fd, SOMAXCONN) < 0)
    {
      int e = errno;
      close (fd);
      return skiff_error_set (err, e, "listen on %s:%d", address, port);
    }
  socklen_t sl = sizeof (sa);
  getsockname (fd, (struct sockaddr *)&sa, &sl);
  *port_out = ntohs (sa.sin_port);
  *fd_out = fd;
  return 0;
}

static int
bind_unix (const char *path, int *fd_out, skiff_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof (sa.sun_path))
    return skiff_error_set (err, ENAMETOOLONG, "unix socket path `%s`", path);
  strcpy (sa.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "socket");
  /* a socket file left by an earlier skiffd: remove it only when nobody answers on it */
  int probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 && connect (probe, (struct sockaddr *)&sa, sizeof (sa)) == 0)
    {
      close (probe);
      close (fd);
      return skiff_error_set (err, EADDRINUSE, "another process serves `%s`", path);
    }
  if (probe >= 0)
    close (probe);
  unlink (path);
  mode_t old = umask (0077);
  int rc = bind (fd, (struct sockaddr *)&sa, sizeof (sa));
  umask (old);
  if (rc < 0 || chmod (path, 0600) < 0 || listen (fd, SOMAXCONN) < 0)
    {
      int e = errno;
      close (fd);
      return skiff_error_set (err, e, "listen on `%s`", path);
    }
  *fd_out = fd;
  return 0;
}

static h2o_socket_t *
add_listener (loop_thread_t *t, int shared_fd, h2o_accept_ctx_t *actx)
{
  int fd = dup (shared_fd);
  fcntl (fd, F_SETFD, FD_CLOEXEC);
  h2o_socket_t *l = h2o_evloop_socket_create (t->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
  l->data = actx;
  h2o_socket_read_start (l, on_accept);
  return l;
}

int
api_server_start (api_ctx_t *ctx, const api_server_config_t *cfg, api_server_t **out, skiff_error_t *err)
{
  int threads = cfg->threads;
  if (threads < 1)
    threads = 1;
  if (threads > MAX_THREADS)
    threads = MAX_THREADS;
  struct api_server *s = calloc (1, sizeof (*s));
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "api server");
  s->ctx = ctx;
  s->n = threads;
  s->fd = s->unix_fd = -1;
  signal (SIGPIPE, SIG_IGN);

  if (cfg->tls_cert && (s->ssl = tls_context (cfg->tls_cert, cfg->tls_key, err)) == NULL)
    {
      free (s);
      return -1;
    }
  if (bind_tcp (cfg->address ? cfg->address : "127.0.0.1", cfg->port, &s->fd, &s->port, err) < 0)
    {
      SSL_CTX_free (s->ssl);
      free (s);
      return -1;
    }
  if (cfg->unix_path)
    {
      if (bind_unix (cfg->unix_path, &s->unix_fd, err) < 0)
        {
          close (s->fd);
          SSL_CTX_free (s->ssl);
          free (s);
          return -1;
        }
      s->unix_path = skiff_strdup (cfg->unix_path);
    }

  h2o_config_init (&s->config);
  s->config.max_request_entity_size = H2O_ENTITY_CAP;
  h2o_hostconf_t *host = h2o_config_register_host (&s->config, h2o_iovec_init (H2O_STRLIT ("default")), 65535);
  h2o_pathconf_t *pc = h2o_config_register_path (host, "/", 0);
  api_handler_t *h = (api_handler_t *)h2o_create_handler (pc, sizeof (*h));
  h->super.on_req = on_req;
  h->ctx = ctx;
  h->server = s;

  for (int i = 0; i < threads; i++)
    {
      loop_thread_t *t = &s->threads[i];
      t->server = s;
      t->loop = h2o_evloop_create ();
      h2o_context_init (&t->ctx, t->loop, &s->config);
      h2o_timeout_init (t->loop, &t->resume_timeout, 20);
      t->accept_tcp.ctx = &t->ctx;
      t->accept_tcp.hosts = s->config.hosts;
      t->accept_tcp.ssl_ctx = s->ssl;
      t->accept_unix.ctx = &t->ctx;
      t->accept_unix.hosts = s->config.hosts;
      t->listener = add_listener (t, s->fd, &t->accept_tcp);
      if (s->unix_fd >= 0)
        t->unix_listener = add_listener (t, s->unix_fd, &t->accept_unix);
      if (pthread_create (&t->thread, NULL, loop_main, t) != 0)
        {
          s->n = i;
          api_server_stop (s);
          return skiff_error_set (err, EAGAIN, "start API thread");
        }
    }
  *out = s;
  return 0;
}

int
api_server_port (api_server_t *s)
{
  return s->port;
}

void
api_server_stop (api_server_t *s)
{
  if (s == NULL)
    return;
  s->stop = 1;
  for (int i = 0; i < s->n; i++)
    pthread_join (s->threads[i].thread, NULL);
  close (s->fd);
  if (s->unix_fd >= 0)
    {
      close (s->unix_fd);
      unlink (s->unix_path);
    }
  /* The loops, contexts and configuration stay: connections still open are owned by them,
     and h2o 2.2 asserts when a context with live connections is disposed. The process is
     about to exit (tests/lsan.supp names these allocations). The server struct itself is
     referenced by them, so it stays too. */
}
