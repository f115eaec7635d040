/* sock.c - the monitor's control socket: newline-delimited JSON requests
 * (status, stop, restart, subscribe, exec, attach), many clients at once, non-blocking.
 *
 * Each client has an input buffer (one request line, at most 64 KiB) and an output
 * buffer (at most 8 MiB; a subscriber that stops reading is dropped instead of
 * making the monitor grow). After a successful exec or attach reply the connection
 * carries raw bytes (see stream.c).
 */
#include "monitor/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"

#define SOCK_NAME "monitor.sock"
#define MAX_REQUEST (64 * 1024)
#define MAX_OUT (8 * 1024 * 1024)
#define MAX_CLIENTS 128
#define MAX_EVENTS_REPLY 1000

static size_t n_clients;

int
sock_listen (skiff_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  strcpy (addr.sun_path, SOCK_NAME); /* relative: the working directory is the group folder */

  /* Refuse to run beside a live monitor of the same group. */
  cleanup_close int probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 && connect (probe, (struct sockaddr *)&addr, sizeof (addr)) == 0)
    return skiff_error_set (err, EEXIST, "another monitor serves `%s/%s`", M.dir, SOCK_NAME);
  unlink (SOCK_NAME);

  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "socket");
  mode_t old = umask (0177);
  int r = bind (fd, (struct sockaddr *)&addr, sizeof (addr));
  umask (old);
  if (r < 0)
    return skiff_error_set (err, errno, "bind `%s/%s`", M.dir, SOCK_NAME);
  chmod (SOCK_NAME, 0600);
  if (listen (fd, 64) < 0)
    return skiff_error_set (err, errno, "listen");
  M.listen_fd = steal_fd (&fd);
  return 0;
}

static void client_flush (struct client *cl);

void
sock_client_close (struct client *cl)
{
  if (cl->dead)
    return;
  if (cl->mode == CM_EXEC && cl->ex)
    exec_client_gone (cl->ex);
  cl->ex = NULL;
  cl->att = NULL;
  epoll_ctl (M.epfd, EPOLL_CTL_DEL, cl->fd, NULL);
  close (cl->fd);
  cl->fd = -1;
  cl->dead = true;
  free (cl->in);
  free (cl->out);
  cl->in = cl->out = NULL;
  cl->in_len = cl->out_len = 0;
  n_clients--;
}

void
sock_sweep (void)
{
  struct client **pp = &M.clients;
  while (*pp)
    {
      struct client *cl = *pp;
      if (cl->dead)
        {
          *pp = cl->next;
          free (cl);
        }
      else
        pp = &cl->next;
    }
}

/* Writes as much of the output buffer as the socket takes; watches EPOLLOUT for the rest. */
static void
client_flush (struct client *cl)
{
  size_t off = 0;
  while (off < cl->out_len)
    {
      ssize_t w = send (cl->fd, cl->out + off, cl->out_len - off, MSG_NOSIGNAL);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            break;
          sock_client_close (cl);
          return;
        }
      off += (size_t)w;
    }
  if (off > 0)
    {
      memmove (cl->out, cl->out + off, cl->out_len - off);
      cl->out_len -= off;
    }
  if (cl->out_len == 0)
    {
      free (cl->out);
      cl->out = NULL;
      if (cl->closing)
        {
          sock_client_close (cl);
          return;
        }
    }
  if (off > 0 && cl->mode == CM_EXEC && cl->ex)
    exec_client_drained (cl->ex);
  sock_rearm (cl);
}

void
sock_rearm (struct client *cl)
{
  if (cl->dead)
    return;
  uint32_t want = cl->out_len ? EPOLLOUT : 0;
  if (!cl->closing)
    {
      /* Input is read except from an exec client whose pty input buffer is full. */
      if (cl->mode != CM_EXEC || (cl->ex && exec_wants_input (cl->ex)))
        want |= EPOLLIN;
    }
  if (want == cl->ev_mask)
    return;
  struct epoll_event ev = { .events = want, .data.ptr = &cl->w };
  if (epoll_ctl (M.epfd, EPOLL_CTL_MOD, cl->fd, &ev) == 0)
    cl->ev_mask = want;
}

void
sock_close_after_flush (struct client *cl)
{
  if (cl->dead)
    return;
  cl->closing = true;
  client_flush (cl);
}

int
sock_send_raw (struct client *cl, const void *data, size_t len, size_t cap)
{
  if (cl->dead)
    return -1;
  if (len == 0)
    return 0;
  if (cl->out_len + len > cap)
    return -1;
  size_t off = 0;
  if (cl->out_len == 0)
    {
      /* Nothing queued: write directly, buffer only what the socket does not take. */
      while (off < len)
        {
          ssize_t w = send (cl->fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0 && errno == EAGAIN)
            break;
          if (w < 0)
            {
              sock_client_close (cl);
              return 0; /* gone; the caller's loop sees cl->dead */
            }
          off += (size_t)w;
        }
      if (off == len)
        return 0;
    }
  char *nb = realloc (cl->out, cl->out_len + len - off);
  if (nb == NULL)
    return -1;
  cl->out = nb;
  memcpy (cl->out + cl->out_len, (const char *)data + off, len - off);
  cl->out_len += len - off;
  sock_rearm (cl);
  return 0;
}

void
sock_send_json (struct client *cl, json_t *j)
{
  if (cl->dead)
    return;
  cleanup_free char *s = json_dumps (j, JSON_COMPACT);
  if (s == NULL)
    return;
  size_t len = strlen (s);
  if (cl->out_len + len + 1 > MAX_OUT)
    {
      log_warn ("dropping a client that does not read its replies");
      sock_client_close (cl);
      return;
    }
  char *nb = realloc (cl->out, cl->out_len + len + 1);
  if (nb == NULL)
    {
      sock_client_close (cl);
      return;
    }
  cl->out = nb;
  memcpy (cl->out + cl->out_len, s, len);
  cl->out[cl->out_len + len] = '\n';
  cl->out_len += len + 1;
  client_flush (cl);
}

static void
client_error (struct client *cl, const char *msg)
{
  cleanup_json json_t *j = json_pack ("{s:b, s:s}", "ok", 0, "error", msg);
  sock_send_json (cl, j);
}

void
sock_fail (struct client *cl, const char *code, const char *msg)
{
  cleanup_json json_t *j = json_pack ("{s:b, s:s, s:s}", "ok", 0, "error", msg, "code", code);
  sock_send_json (cl, j);
  sock_close_after_flush (cl);
}

static void
client_ok (struct client *cl)
{
  cleanup_json json_t *j = json_pack ("{s:b}", "ok", 1);
  sock_send_json (cl, j);
}

static void
handle_request (struct client *cl, const char *line, size_t len)
{
  json_error_t jerr;
  cleanup_json json_t *req = json_loadb (line, len, 0, &jerr);
  const char *op = json_string_value (json_object_get (req, "op"));
  if (req == NULL || op == NULL)
    {
      client_error (cl, req == NULL ? "invalid JSON request" : "missing \"op\"");
      return;
    }
  if (strcmp (op, "status") == 0)
    {
      json_t *since = json_object_get (req, "sinceSeq");
      int64_t s = json_is_integer (since) ? (int64_t)json_integer_value (since) : 0;
      json_t *events = NULL;
      cleanup_error skiff_error_t err = NULL;
      if (mon_events_read ("events.jsonl", s, MAX_EVENTS_REPLY, &events, NULL, &err) < 0)
        log_warn ("%s", err->msg);
      cleanup_json json_t *reply = json_pack ("{s:b, s:o, s:o}", "ok", 1, "state", mon_state_json (), "events", events);
      sock_send_json (cl, reply);
    }
  else if (strcmp (op, "stop") == 0 || strcmp (op, "restart") == 0)
    {
      bool stop = op[0] == 's';
      json_t *g = json_object_get (req, "graceSeconds");
      int64_t grace = json_is_integer (g) ? (int64_t)json_integer_value (g) : M.cfg.stop_grace_s;
      if (grace < 0 || grace > 86400)
        grace = M.cfg.stop_grace_s;
      if (!stop && M.op == OP_STOP)
        {
          client_error (cl, "the group is stopping");
          return;
        }
      cl->waiting = true;
      mon_stop (stop ? OP_STOP : OP_RESTART, grace);
    }
  else if (strcmp (op, "subscribe") == 0)
    {
      cl->subscribed = true;
      client_ok (cl);
      json_t *since = json_object_get (req, "sinceSeq");
      if (json_is_integer (since))
        {
          /* catch-up: the current state and the events after sinceSeq, as one update */
          json_t *events = NULL;
          cleanup_error skiff_error_t err = NULL;
          if (mon_events_read ("events.jsonl", (int64_t)json_integer_value (since), MAX_EVENTS_REPLY, &events, NULL,
                               &err)
              < 0)
            log_warn ("%s", err->msg);
          cleanup_json json_t *line
              = json_pack ("{s:o, s:o}", "state", mon_state_json (), "events", events ? events : json_array ());
          sock_send_json (cl, line);
        }
    }
  else if (strcmp (op, "exec") == 0)
    exec_request (cl, req);
  else if (strcmp (op, "attach") == 0)
    attach_request (cl, req);
  else
    {
      cleanup_free char *msg = skiff_strdup_printf ("unknown op `%.64s`", op);
      client_error (cl, msg);
    }
}

static void
client_read (struct client *cl)
{
  char buf[4096];
  for (;;)
    {
      ssize_t r = recv (cl->fd, buf, sizeof (buf), 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 && errno == EAGAIN)
        return;
      if (r <= 0)
        {
          sock_client_close (cl);
          return;
        }
      char *nb = realloc (cl->in, cl->in_len + (size_t)r);
      if (nb == NULL)
        {
          sock_client_close (cl);
          return;
        }
      cl->in = nb;
      memcpy (cl->in + cl->in_len, buf, (size_t)r);
      cl->in_len += (size_t)r;
      char *nl;
      while (!cl->dead && cl->in_len > 0 && (nl = memchr (cl->in, '\n', cl->in_len)) != NULL)
        {
          size_t llen = (size_t)(nl - cl->in);
          if (llen > 0)
            handle_request (cl, cl->in, llen);
          if (cl->dead)
            return;
          memmove (cl->in, nl + 1, cl->in_len - llen - 1);
          cl->in_len -= llen + 1;
          if (cl->mode != CM_CONTROL || cl->closing)
            {
              /* The connection is a raw stream now (or ends): what came after the
                 request line is exec input, or discarded. */
              if (cl->mode == CM_EXEC && cl->ex && !cl->closing)
                exec_client_input (cl->ex, cl->in, cl->in_len);
              free (cl->in);
              cl->in = NULL;
              cl->in_len = 0;
              return;
            }
        }
      if (cl->in_len > MAX_REQUEST)
        {
          client_error (cl, "request line longer than 64 KiB");
          cl->closing = true;
          client_flush (cl);
          return;
        }
      if (cl->in_len == 0)
        {
          free (cl->in);
          cl->in = NULL;
        }
    }
}

void
sock_accept (void)
{
  for (;;)
    {
      int fd = accept4 (M.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return;
      if (n_clients >= MAX_CLIENTS)
        {
          close (fd);
          log_warn ("too many clients");
          continue;
        }
      struct client *cl = calloc (1, sizeof (*cl));
      if (cl == NULL)
        {
          close (fd);
          return;
        }
      cl->fd = fd;
      cl->w.kind = W_CLIENT;
      cl->w.obj = cl;
      cl->ev_mask = EPOLLIN;
      if (mon_watch (fd, EPOLLIN, &cl->w) < 0)
        {
          close (fd);
          free (cl);
          continue;
        }
      cl->next = M.clients;
      M.clients = cl;
      n_clients++;
    }
}

/* An attached client sends nothing useful: read and drop, notice the close. */
static void
attach_client_read (struct client *cl)
{
  char buf[1024];
  for (;;)
    {
      ssize_t r = recv (cl->fd, buf, sizeof (buf), 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 && errno == EAGAIN)
        return;
      if (r <= 0)
        {
          sock_client_close (cl);
          return;
        }
    }
}

void
sock_client_ready (struct client *cl, uint32_t events)
{
  if (cl->dead)
    return;
  if (events & EPOLLOUT)
    client_flush (cl);
  if (!cl->dead && cl->closing && (events & (EPOLLHUP | EPOLLERR)))
    sock_client_close (cl); /* the peer is gone: nothing more can be delivered */
  if (cl->dead || cl->closing || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;
  if (cl->mode == CM_EXEC)
    exec_client_read (cl);
  else if (cl->mode == CM_ATTACH)
    attach_client_read (cl);
  else
    client_read (cl);
}

void
sock_publish (json_t *state)
{
  json_t *line = NULL;
  for (struct client *cl = M.clients; cl; cl = cl->next)
    {
      if (cl->dead || !cl->subscribed)
        continue;
      if (line == NULL)
        line = json_pack ("{s:O, s:O}", "state", state, "events", M.pending_events);
      sock_send_json (cl, line);
    }
  if (line)
    json_decref (line);
}

void
sock_op_done (const char *error)
{
  for (struct client *cl = M.clients; cl; cl = cl->next)
    {
      if (cl->dead || !cl->waiting)
        continue;
      cl->waiting = false;
      if (error)
        client_error (cl, error);
      else
        client_ok (cl);
    }
}

void
sock_close_all (void)
{
  if (M.listen_fd >= 0)
    {
      close (M.listen_fd);
      M.listen_fd = -1;
    }
  for (struct client *cl = M.clients; cl; cl = cl->next)
    {
      if (cl->dead)
        continue;
      /* Last replies (the stop's {"ok":true}, the final update): wait briefly for them. */
      int fl = fcntl (cl->fd, F_GETFL);
      fcntl (cl->fd, F_SETFL, fl & ~O_NONBLOCK);
      struct timeval tv = { .tv_sec = 2 };
      setsockopt (cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof (tv));
      size_t off = 0;
      while (off < cl->out_len)
        {
          ssize_t w = send (cl->fd, cl->out + off, cl->out_len - off, MSG_NOSIGNAL);
          if (w <= 0)
            break;
          off += (size_t)w;
        }
      sock_client_close (cl);
    }
  sock_sweep ();
}
