/* http_server.c - the HTTP/1.1 front of the API on h2o's event loop.
 *
 * One listening socket (bound without SO_REUSEPORT, so a second skiffd on the same
 * port fails loudly) shared by N loop threads. Each request is answered inline by
 * api_handle(), which only touches the store and queues work for the agent. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "api.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_THREADS 8
/* h2o answers 413 by itself above this; the API answers an ARM 413 above MODEL_MAX_BODY_BYTES. */
#define H2O_ENTITY_CAP (8 * 1024 * 1024)

typedef struct
{
  h2o_handler_t super;
  api_ctx_t *ctx;
} api_handler_t;

typedef struct
{
  struct api_server *server;
  pthread_t thread;
  h2o_evloop_t *loop;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept_ctx;
  h2o_socket_t *listener;
} loop_thread_t;

struct api_server
{
  h2o_globalconf_t config;
  api_ctx_t *ctx;
  int fd;
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

static int
on_req (h2o_handler_t *self, h2o_req_t *req)
{
  api_handler_t *h = (api_handler_t *)self;
  cleanup_free char *method = strndup (req->method.base, req->method.len);
  cleanup_free char *auth = header_dup (req, H2O_TOKEN_AUTHORIZATION);
  cleanup_free char *host = req->authority.len < 256 ? strndup (req->authority.base, req->authority.len) : NULL;
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  api_request_t ar = { .method = method,
                       .path = req->path.base,
                       .path_len = plen,
                       .query = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : NULL,
                       .query_len = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0,
                       .authorization = auth,
                       .host = host,
                       .scheme = "http",
                       .body = req->entity.base,
                       .body_len = req->entity.base ? req->entity.len : 0 };
  api_response_t res;
  api_handle (h->ctx, &ar, &res);
  req->res.status = res.status;
  req->res.reason = "OK";
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
  loop_thread_t *t = listener->data;
  h2o_socket_t *sock;
  /* accept as many as are queued; another loop may take some of them */
  for (int i = 0; i < 16; i++)
    {
      if ((sock = h2o_evloop_socket_accept (listener)) == NULL)
        return;
      h2o_accept (&t->accept_ctx, sock);
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

int
api_server_start (api_ctx_t *ctx, const char *address, int port, int threads, api_server_t **out, skiff_error_t *err)
{
  if (threads < 1)
    threads = 1;
  if (threads > MAX_THREADS)
    threads = MAX_THREADS;
  struct api_server *s = calloc (1, sizeof (*s));
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "api server");
  s->ctx = ctx;
  s->n = threads;
  signal (SIGPIPE, SIG_IGN);

  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
  if (inet_pton (AF_INET, address ? address : "127.0.0.1", &sa.sin_addr) != 1)
    {
      free (s);
      return skiff_error_set (err, EINVAL, "listen address `%s`", address);
    }
  s->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt (s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
  setsockopt (s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
  if (bind (s->fd, (struct sockaddr *)&sa, sizeof (sa)) < 0 || listen (s->fd, SOMAXCONN) < 0)
    {
      int e = errno;
      close (s->fd);
      free (s);
      return skiff_error_set (err, e, "listen on %s:%d", address ? address : "127.0.0.1", port);
    }
  socklen_t sl = sizeof (sa);
  getsockname (s->fd, (struct sockaddr *)&sa, &sl);
  s->port = ntohs (sa.sin_port);

  h2o_config_init (&s->config);
  s->config.max_request_entity_size = H2O_ENTITY_CAP;
  h2o_hostconf_t *host = h2o_config_register_host (&s->config, h2o_iovec_init (H2O_STRLIT ("default")), 65535);
  h2o_pathconf_t *pc = h2o_config_register_path (host, "/", 0);
  api_handler_t *h = (api_handler_t *)h2o_create_handler (pc, sizeof (*h));
  h->super.on_req = on_req;
  h->ctx = ctx;

  for (int i = 0; i < threads; i++)
    {
      loop_thread_t *t = &s->threads[i];
      t->server = s;
      t->loop = h2o_evloop_create ();
      h2o_context_init (&t->ctx, t->loop, &s->config);
      t->accept_ctx.ctx = &t->ctx;
      t->accept_ctx.hosts = s->config.hosts;
      int fd = dup (s->fd);
      fcntl (fd, F_SETFD, FD_CLOEXEC);
      t->listener = h2o_evloop_socket_create (t->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
      t->listener->data = t;
      h2o_socket_read_start (t->listener, on_accept);
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
  /* The loops, contexts and configuration stay: connections still open are owned by them,
     and h2o 2.2 asserts when a context with live connections is disposed. The process is
     about to exit (tests/lsan.supp names these allocations). The server struct itself is
     referenced by them, so it stays too. */
}
