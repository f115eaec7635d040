/* stream.c - exec sessions and attached clients of skiff-monitor.
 *
 * exec: {"op":"exec","container":C,"argv":[...],"rows":R,"cols":N} writes
 * run/exec-<n>.json (the container's process from its bundle with these args, a
 * terminal and consoleSize) and runs `<runtime> --root R exec --tty --console-socket S
 * --pid-file P --process run/exec-<n>.json <id>` without waiting for it. The runtime
 * connects to S and sends the pty master (SCM_RIGHTS); the monitor sets the window size
 * (again), replies {"ok":true}, and the connection becomes a raw
 * byte stream between the client and the pty. It ends when the pty reports the
 * process gone (EIO), or one second after the runtime process exited (something in
 * the background kept the pty open). When the client goes first, the pty is closed
 * (SIGHUP) and the process is killed after a two-second grace.
 *
 * attach: {"op":"attach","container":C} replies {"ok":true}, then passes on the raw
 * bytes the container writes to stdout and stderr (the pipes the log is written from)
 * until its run ends. A client more than 256 KiB behind is dropped: log writing
 * never waits for a client.
 *
 * Nothing here is allocated while no session exists. Errors before a stream starts
 * are one line {"ok":false,"error":...,"code":...} and the connection is closed; codes:
 * InvalidRequest, ContainerNotFound, ContainerNotRunning, TooManySessions, ExecFailed.
 */
#include "monitor/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_EXEC 16
#define MAX_ATTACH 16
#define MAX_ARGV 256
#define MAX_ARGV_BYTES (64 * 1024)
#define PTY_IN_MAX (64 * 1024)   /* client bytes not yet written to the pty */
#define PTY_OUT_HIGH (64 * 1024) /* the pty is not read while the client lags this much */
#define CONSOLE_TIMEOUT_NS (10 * 1000000000LL)
#define KILL_GRACE_NS (2 * 1000000000LL)
#define DRAIN_NS (1 * 1000000000LL)

struct exec_sess
{
  struct exec_sess *next;
  struct client *cl; /* NULL once the client is gone */
  unsigned id;       /* names run/exec-<id>.{sock,pid,log} */
  pid_t runtime_pid; /* 0 once reaped */
  int console_fd;    /* listening socket, then the runtime's connection; -1 when done */
  bool console_accepted;
  bool started; /* the pty arrived and {"ok":true} was sent */
  int pty_fd;   /* -1 when closed */
  uint32_t pty_mask;
  struct watch console_w, pty_w;
  int rows, cols;
  int64_t deadline; /* monotonic; its meaning depends on the state (see exec_timer) */
  char *in;         /* client bytes for the pty */
  size_t in_len;
  char *sock_path;
  bool dead; /* freed by exec_sweep */
};

static unsigned exec_seq;
static size_t n_exec;

static char *
sess_file (const struct exec_sess *ex, const char *ext)
{
  return skiff_strdup_printf ("%s/run/exec-%u.%s", M.dir, ex->id, ext);
}

static struct ctr *
find_ctr (const char *name)
{
  for (size_t i = 0; i < M.n; i++)
    if (strcmp (M.ctrs[i].cfg->name, name) == 0)
      return &M.ctrs[i];
  return NULL;
}

/* Writes the process.json of an exec: the container's own process (user, env, cwd,
 * capabilities, rlimits from its bundle) with args, a terminal, TERM=xterm when the
 * environment has no TERM, and consoleSize when asked, so the runtime sizes the pty
 * before the process starts. Returns 0, or -1 when the bundle cannot be read. */
static int
write_process_json (struct ctr *c, json_t *args, int rows, int cols, const char *path)
{
  cleanup_free char *cfg_path = skiff_strdup_printf ("%s/config.json", c->cfg->bundle);
  json_error_t jerr;
  cleanup_json json_t *cfg = json_load_file (cfg_path, 0, &jerr);
  json_t *proc = json_object_get (cfg, "process");
  if (!json_is_object (proc))
    return -1;
  json_object_set (proc, "args", args);
  json_object_set_new (proc, "terminal", json_true ());
  if (rows > 0 || cols > 0)
    json_object_set_new (proc, "consoleSize",
                         json_pack ("{s:i, s:i}", "height", rows > 0 ? rows : 24, "width", cols > 0 ? cols : 80));
  json_t *env = json_object_get (proc, "env");
  if (!json_is_array (env))
    {
      env = json_array ();
      json_object_set_new (proc, "env", env);
    }
  bool has_term = false;
  for (size_t i = 0; i < json_array_size (env); i++)
    {
      const char *v = json_string_value (json_array_get (env, i));
      if (v && strncmp (v, "TERM=", 5) == 0)
        has_term = true;
    }
  if (!has_term)
    json_array_append_new (env, json_string ("TERM=xterm"));
  return json_dump_file (proc, path, JSON_COMPACT) == 0 ? 0 : -1;
}

/* Starts argv with stdin, stdout and stderr on /dev/null; does not wait. */
static pid_t
spawn_nowait (char *const argv[])
{
  cleanup_close int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0)
    return -1;
  pid_t pid = fork ();
  if (pid == 0)
    {
      sigset_t all;
      sigemptyset (&all);
      sigprocmask (SIG_SETMASK, &all, NULL);
      signal (SIGPIPE, SIG_DFL);
      if (dup2 (devnull, 0) < 0 || dup2 (devnull, 1) < 0 || dup2 (devnull, 2) < 0)
        _exit (127);
      close_range (3, ~0U, 0);
      execv (argv[0], argv);
      _exit (127);
    }
  return pid;
}

static struct client *
detach_client (struct exec_sess *ex)
{
  struct client *cl = ex->cl;
  ex->cl = NULL;
  if (cl)
    cl->ex = NULL;
  return cl;
}

static void
console_close (struct exec_sess *ex)
{
  if (ex->console_fd >= 0)
    {
      epoll_ctl (M.epfd, EPOLL_CTL_DEL, ex->console_fd, NULL);
      close (ex->console_fd);
      ex->console_fd = -1;
    }
  if (ex->sock_path)
    {
      unlink (ex->sock_path);
      free (ex->sock_path);
      ex->sock_path = NULL;
    }
}

static void
pty_close (struct exec_sess *ex)
{
  if (ex->pty_fd < 0)
    return;
  if (ex->pty_mask)
    epoll_ctl (M.epfd, EPOLL_CTL_DEL, ex->pty_fd, NULL);
  close (ex->pty_fd);
  ex->pty_fd = -1;
  ex->pty_mask = 0;
}

/* Marks the session dead once nothing of it is left (client, runtime, fds). */
static void
maybe_done (struct exec_sess *ex)
{
  if (ex->dead || ex->cl || ex->runtime_pid > 0 || ex->pty_fd >= 0 || ex->console_fd >= 0)
    return;
  console_close (ex);
  cleanup_free char *pid_path = sess_file (ex, "pid");
  cleanup_free char *log_path = sess_file (ex, "log");
  cleanup_free char *proc_path = sess_file (ex, "json");
  unlink (pid_path);
  unlink (log_path);
  unlink (proc_path);
  free (ex->in);
  ex->in = NULL;
  ex->in_len = 0;
  ex->deadline = 0;
  ex->dead = true;
  n_exec--;
}

/* SIGKILL to the exec'd process group and, while the runtime process still waits for
 * it, to the process itself and the runtime. The exec'd process leads its own session
 * and process group (--tty), so the group takes its children with it; once the runtime
 * reaped the leader, only the group is signalled (its pid may be reused, the group id
 * not while members live). */
static void
kill_procs (struct exec_sess *ex)
{
  cleanup_free char *pid_path = sess_file (ex, "pid");
  cleanup_free char *text = NULL;
  cleanup_error skiff_error_t err = NULL;
  if (skiff_read_file (pid_path, 64, &text, NULL, &err) == 0)
    {
      int pid = atoi (text);
      if (pid > 1)
        {
          kill (-pid, SIGKILL);
          if (ex->runtime_pid > 0)
            kill (pid, SIGKILL);
        }
    }
  if (ex->runtime_pid > 0)
    kill (ex->runtime_pid, SIGKILL);
}

/* Watches the pty for what the session can use now: output while the client keeps up,
 * writability while client input waits. Unwatched entirely when neither (a hung-up pty
 * would otherwise report EPOLLHUP in a loop). */
static void
exec_rearm (struct exec_sess *ex)
{
  if (ex->cl)
    sock_rearm (ex->cl);
  if (ex->pty_fd < 0)
    return;
  uint32_t want = 0;
  if (ex->cl && !ex->cl->dead && !ex->cl->closing && ex->cl->out_len < PTY_OUT_HIGH)
    want |= EPOLLIN;
  if (ex->in_len > 0)
    want |= EPOLLOUT;
  if (want == ex->pty_mask)
    return;
  struct epoll_event ev = { .events = want, .data.ptr = &ex->pty_w };
  int r;
  if (want == 0)
    r = epoll_ctl (M.epfd, EPOLL_CTL_DEL, ex->pty_fd, NULL);
  else
    r = epoll_ctl (M.epfd, ex->pty_mask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ex->pty_fd, &ev);
  if (r == 0)
    ex->pty_mask = want;
  else
    log_warn ("exec session %u: epoll: %s", ex->id, strerror (errno));
}

/* The process is done with the terminal: the client gets what is queued, then EOF. */
static void
stream_end (struct exec_sess *ex)
{
  pty_close (ex);
  struct client *cl = detach_client (ex);
  if (cl)
    sock_close_after_flush (cl);
  if (ex->runtime_pid > 0)
    ex->deadline = skiff_monotonic_ns () + KILL_GRACE_NS;
  maybe_done (ex);
}

static void
pty_write (struct exec_sess *ex)
{
  size_t off = 0;
  while (off < ex->in_len && ex->pty_fd >= 0)
    {
      ssize_t w = write (ex->pty_fd, ex->in + off, ex->in_len - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno == EAGAIN)
        break;
      if (w < 0)
        {
          off = ex->in_len; /* the terminal is going away: the input has no reader */
          break;
        }
      off += (size_t)w;
    }
  memmove (ex->in, ex->in + off, ex->in_len - off);
  ex->in_len -= off;
  if (ex->in_len == 0)
    {
      free (ex->in);
      ex->in = NULL;
    }
}

/* Reads up to `rounds` buffers from the pty into the client's output. */
static void
pty_read (struct exec_sess *ex, int rounds)
{
  char buf[8192];
  for (int i = 0; i < rounds && ex->pty_fd >= 0; i++)
    {
      if (ex->cl == NULL || ex->cl->dead)
        {
          stream_end (ex);
          return;
        }
      if (ex->cl->out_len >= PTY_OUT_HIGH)
        break;
      ssize_t r = read (ex->pty_fd, buf, sizeof (buf));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 && errno == EAGAIN)
        break;
      if (r <= 0)
        {
          stream_end (ex); /* EIO: no process holds the terminal any more */
          return;
        }
      if (sock_send_raw (ex->cl, buf, (size_t)r, SOCK_STREAM_MAX_OUT) < 0)
        {
          stream_end (ex);
          return;
        }
    }
  exec_rearm (ex);
}

void
exec_request (struct client *cl, json_t *req)
{
  const char *name = json_string_value (json_object_get (req, "container"));
  json_t *args = json_object_get (req, "argv");
  json_t *rows_j = json_object_get (req, "rows"), *cols_j = json_object_get (req, "cols");
  if (name == NULL)
    {
      sock_fail (cl, "InvalidRequest", "missing \"container\"");
      return;
    }
  size_t n = json_array_size (args);
  if (!json_is_array (args) || n == 0 || n > MAX_ARGV)
    {
      sock_fail (cl, "InvalidRequest", "\"argv\" must be an array of 1 to 256 strings");
      return;
    }
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    {
      const char *a = json_string_value (json_array_get (args, i));
      if (a == NULL || strlen (a) != json_string_length (json_array_get (args, i)))
        {
          sock_fail (cl, "InvalidRequest", "\"argv\" must hold strings without NUL characters");
          return;
        }
      total += strlen (a) + 1;
    }
  if (total > MAX_ARGV_BYTES)
    {
      sock_fail (cl, "InvalidRequest", "\"argv\" is longer than 64 KiB");
      return;
    }
  json_int_t rows = json_is_integer (rows_j) ? json_integer_value (rows_j) : 0;
  json_int_t cols = json_is_integer (cols_j) ? json_integer_value (cols_j) : 0;
  if ((rows_j && !json_is_integer (rows_j)) || (cols_j && !json_is_integer (cols_j)) || rows < 0 || rows > 65535
      || cols < 0 || cols > 65535)
    {
      sock_fail (cl, "InvalidRequest", "\"rows\" and \"cols\" must be integers from 0 to 65535");
      return;
    }
  struct ctr *c = find_ctr (name);
  if (c == NULL)
    {
      cleanup_free char *msg = skiff_strdup_printf ("container `%.128s` not found", name);
      {
        sock_fail (cl, "ContainerNotFound", msg);
        return;
      }
    }
  if (c->status != CS_RUNNING || c->pid <= 0)
    {
      cleanup_free char *msg = skiff_strdup_printf ("container `%s` is not running", c->cfg->name);
      {
        sock_fail (cl, "ContainerNotRunning", msg);
        return;
      }
    }
  if (n_exec >= MAX_EXEC)
    {
      sock_fail (cl, "TooManySessions", "too many exec sessions (at most 16)");
      return;
    }

  struct exec_sess *ex = calloc (1, sizeof (*ex));
  if (ex == NULL)
    {
      sock_fail (cl, "ExecFailed", "out of memory");
      return;
    }
  ex->id = ++exec_seq;
  ex->console_fd = ex->pty_fd = -1;
  ex->rows = (int)rows;
  ex->cols = (int)cols;
  ex->console_w.kind = W_CONSOLE;
  ex->console_w.obj = ex;
  ex->pty_w.kind = W_PTY;
  ex->pty_w.obj = ex;
  n_exec++;
  ex->next = M.execs;
  M.execs = ex;

  /* The console socket: absolute when it fits in sun_path, else relative to the group
     folder (the runtime starts there, as the monitor's child). */
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  ex->sock_path = sess_file (ex, "sock");
  if (strlen (ex->sock_path) >= sizeof (addr.sun_path))
    {
      free (ex->sock_path);
      ex->sock_path = skiff_strdup_printf ("run/exec-%u.sock", ex->id);
    }
  strcpy (addr.sun_path, ex->sock_path);
  unlink (ex->sock_path);
  cleanup_free char *pid_path = sess_file (ex, "pid");
  cleanup_free char *log_path = sess_file (ex, "log");
  cleanup_free char *proc_path = sess_file (ex, "json");
  unlink (pid_path);
  unlink (log_path);
  bool use_process = write_process_json (c, args, ex->rows, ex->cols, proc_path) == 0;
  if (!use_process)
    log_warn ("exec session %u: cannot read the bundle of %s; using the runtime's defaults", ex->id, c->cfg->name);
  ex->console_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ex->console_fd < 0 || bind (ex->console_fd, (struct sockaddr *)&addr, sizeof (addr)) < 0
      || listen (ex->console_fd, 1) < 0 || mon_watch (ex->console_fd, EPOLLIN, &ex->console_w) < 0)
    {
      cleanup_free char *msg = skiff_strdup_printf ("console socket: %s", strerror (errno));
      console_close (ex);
      maybe_done (ex);
      {
        sock_fail (cl, "ExecFailed", msg);
        return;
      }
    }

  cleanup_free char *log_opt = ctr_runtime_log_opt (log_path);
  cleanup_free char **argv = calloc (n + 16, sizeof (char *));
  if (argv == NULL)
    {
      console_close (ex);
      maybe_done (ex);
      {
        sock_fail (cl, "ExecFailed", "out of memory");
        return;
      }
    }
  size_t k = 0;
  argv[k++] = M.cfg.runtime;
  argv[k++] = (char *)"--root";
  argv[k++] = M.cfg.runtime_root;
  argv[k++] = log_opt;
  argv[k++] = (char *)"--log-format=text";
  argv[k++] = (char *)"exec";
  argv[k++] = (char *)"--tty";
  argv[k++] = (char *)"--console-socket";
  argv[k++] = ex->sock_path;
  argv[k++] = (char *)"--pid-file";
  argv[k++] = pid_path;
  if (use_process)
    {
      argv[k++] = (char *)"--process";
      argv[k++] = proc_path;
      argv[k++] = c->cfg->id;
    }
  else
    {
      /* No readable bundle: the runtime's defaults, the size is set once the pty is here. */
      argv[k++] = c->cfg->id; /* everything after the id is the command, options included */
      for (size_t i = 0; i < n; i++)
        argv[k++] = (char *)json_string_value (json_array_get (args, i));
    }
  argv[k] = NULL;
  pid_t pid = spawn_nowait (argv);
  if (pid < 0)
    {
      cleanup_free char *msg = skiff_strdup_printf ("cannot run the runtime: %s", strerror (errno));
      console_close (ex);
      maybe_done (ex);
      {
        sock_fail (cl, "ExecFailed", msg);
        return;
      }
    }
  ex->runtime_pid = pid;
  ex->deadline = skiff_monotonic_ns () + CONSOLE_TIMEOUT_NS;
  ex->cl = cl;
  cl->mode = CM_EXEC;
  cl->ex = ex;
  log_info ("exec session %u in container %s (runtime pid %d)", ex->id, c->cfg->name, (int)pid);
  exec_rearm (ex);
}

/* The session fails before its stream started: error line, then the runtime is killed. */
static void
start_failed (struct exec_sess *ex, const char *msg)
{
  console_close (ex);
  pty_close (ex);
  struct client *cl = detach_client (ex);
  if (cl)
    sock_fail (cl, "ExecFailed", msg);
  if (ex->runtime_pid > 0)
    kill_procs (ex);
  ex->deadline = 0;
  maybe_done (ex);
}

void
exec_console_ready (struct exec_sess *ex)
{
  if (ex->dead || ex->console_fd < 0)
    return;
  if (!ex->console_accepted)
    {
      int fd = accept4 (ex->console_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return;
      /* One connection is all there is: the listening socket goes. */
      epoll_ctl (M.epfd, EPOLL_CTL_DEL, ex->console_fd, NULL);
      close (ex->console_fd);
      unlink (ex->sock_path);
      ex->console_fd = fd;
      ex->console_accepted = true;
      if (mon_watch (fd, EPOLLIN, &ex->console_w) < 0)
        {
          start_failed (ex, "epoll on the console connection failed");
          return;
        }
    }
  char byte[64];
  union
  {
    char buf[CMSG_SPACE (sizeof (int) * 4)];
    struct cmsghdr align;
  } cbuf;
  struct iovec iov = { .iov_base = byte, .iov_len = sizeof (byte) };
  struct msghdr msg
      = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf, .msg_controllen = sizeof (cbuf.buf) };
  ssize_t r = recvmsg (ex->console_fd, &msg, MSG_CMSG_CLOEXEC);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  int pty = -1;
  for (struct cmsghdr *cm = r > 0 ? CMSG_FIRSTHDR (&msg) : NULL; cm; cm = CMSG_NXTHDR (&msg, cm))
    {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
        continue;
      size_t nfd = (cm->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      for (size_t i = 0; i < nfd; i++)
        {
          int fd;
          memcpy (&fd, CMSG_DATA (cm) + i * sizeof (int), sizeof (int));
          if (pty < 0)
            pty = fd;
          else
            close (fd);
        }
    }
  console_close (ex);
  if (pty < 0)
    {
      /* The runtime closed the console without a terminal: its exit says why. */
      if (ex->runtime_pid == 0)
        start_failed (ex, "the runtime sent no terminal");
      return;
    }
  if (ex->cl == NULL)
    {
      close (pty);
      maybe_done (ex);
      return;
    }
  fcntl (pty, F_SETFL, fcntl (pty, F_GETFL) | O_NONBLOCK);
  if (ex->rows > 0 || ex->cols > 0)
    {
      struct winsize ws = { 0 };
      ioctl (pty, TIOCGWINSZ, &ws);
      if (ex->rows > 0)
        ws.ws_row = (unsigned short)ex->rows;
      if (ex->cols > 0)
        ws.ws_col = (unsigned short)ex->cols;
      if (ioctl (pty, TIOCSWINSZ, &ws) < 0)
        log_warn ("exec session %u: TIOCSWINSZ: %s", ex->id, strerror (errno));
    }
  ex->pty_fd = pty;
  ex->started = true;
  ex->deadline = 0;
  cleanup_json json_t *ok = json_pack ("{s:b}", "ok", 1);
  sock_send_json (ex->cl, ok);
  if (ex->cl == NULL || ex->cl->dead)
    return; /* the client went away: exec_client_gone cleaned up */
  if (ex->in_len > 0)
    pty_write (ex);
  exec_rearm (ex);
  if (ex->runtime_pid == 0)
    ex->deadline = skiff_monotonic_ns () + DRAIN_NS; /* the process already ended */
}

void
exec_pty_ready (struct exec_sess *ex, uint32_t events)
{
  if (ex->dead || ex->pty_fd < 0)
    return;
  if (events & EPOLLOUT)
    pty_write (ex);
  if (ex->pty_fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    pty_read (ex, 16);
  else
    exec_rearm (ex);
}

void
exec_client_input (struct exec_sess *ex, const char *data, size_t len)
{
  if (len == 0)
    return;
  if (len > PTY_IN_MAX - ex->in_len)
    len = PTY_IN_MAX - ex->in_len;
  char *nb = realloc (ex->in, ex->in_len + len);
  if (nb == NULL)
    return;
  memcpy (nb + ex->in_len, data, len);
  ex->in = nb;
  ex->in_len += len;
  if (ex->pty_fd >= 0)
    pty_write (ex);
  exec_rearm (ex);
}

bool
exec_wants_input (const struct exec_sess *ex)
{
  return ex->in_len < PTY_IN_MAX;
}

void
exec_client_read (struct client *cl)
{
  struct exec_sess *ex = cl->ex;
  if (ex == NULL)
    return;
  char buf[4096];
  while (ex->in_len < PTY_IN_MAX)
    {
      size_t room = PTY_IN_MAX - ex->in_len;
      ssize_t r = recv (cl->fd, buf, room < sizeof (buf) ? room : sizeof (buf), 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 && errno == EAGAIN)
        break;
      if (r <= 0)
        {
          sock_client_close (cl); /* the client is gone: the session ends */
          return;
        }
      char *nb = realloc (ex->in, ex->in_len + (size_t)r);
      if (nb == NULL)
        break;
      memcpy (nb + ex->in_len, buf, (size_t)r);
      ex->in = nb;
      ex->in_len += (size_t)r;
    }
  if (ex->pty_fd >= 0)
    pty_write (ex);
  exec_rearm (ex);
}

void
exec_client_gone (struct exec_sess *ex)
{
  ex->cl = NULL;
  console_close (ex);
  pty_close (ex); /* the session leader gets SIGHUP */
  free (ex->in);
  ex->in = NULL;
  ex->in_len = 0;
  if (ex->runtime_pid > 0)
    ex->deadline = skiff_monotonic_ns () + KILL_GRACE_NS;
  else if (ex->started)
    kill_procs (ex); /* what is left of the process group (it held the pty) */
  maybe_done (ex);
}

void
exec_client_drained (struct exec_sess *ex)
{
  exec_rearm (ex);
}

bool
exec_reaped (pid_t pid, int wait_status)
{
  for (struct exec_sess *ex = M.execs; ex; ex = ex->next)
    {
      if (ex->dead || ex->runtime_pid != pid)
        continue;
      ex->runtime_pid = 0;
      if (ex->cl == NULL && ex->started)
        kill_procs (ex); /* the client went first: children that ignored SIGHUP go too */
      if (!ex->started && ex->cl)
        {
          /* Before the terminal arrived: the runtime failed. */
          cleanup_free char *log_path = sess_file (ex, "log");
          cleanup_free char *msg = ctr_runtime_error (log_path, wait_status);
          log_warn ("exec session %u failed: %s", ex->id, msg);
          start_failed (ex, msg);
          return true;
        }
      if (ex->pty_fd >= 0)
        {
          /* What the process wrote last may still be on its way through the pty. */
          pty_read (ex, 64);
          if (ex->pty_fd >= 0)
            ex->deadline = skiff_monotonic_ns () + DRAIN_NS;
        }
      else
        ex->deadline = 0;
      maybe_done (ex);
      return true;
    }
  return false;
}

int64_t
exec_next_deadline (void)
{
  int64_t next = 0;
  for (struct exec_sess *ex = M.execs; ex; ex = ex->next)
    if (!ex->dead && ex->deadline > 0 && (next == 0 || ex->deadline < next))
      next = ex->deadline;
  return next;
}

void
exec_timer (int64_t now)
{
  for (struct exec_sess *ex = M.execs; ex; ex = ex->next)
    {
      if (ex->dead || ex->deadline == 0 || now < ex->deadline)
        continue;
      ex->deadline = 0;
      if (!ex->started && ex->cl)
        start_failed (ex, "the runtime did not start the exec session within 10 s");
      else if (ex->cl == NULL && ex->runtime_pid > 0)
        {
          log_info ("exec session %u: its client is gone; killing the process", ex->id);
          kill_procs (ex);
        }
      else if (ex->runtime_pid == 0 && ex->pty_fd >= 0)
        stream_end (ex);
    }
}

void
exec_close_all (void)
{
  for (struct exec_sess *ex = M.execs; ex; ex = ex->next)
    {
      if (ex->dead)
        continue;
      struct client *cl = detach_client (ex);
      if (cl)
        cl->closing = true;
      console_close (ex);
      pty_close (ex);
      if (ex->runtime_pid > 0)
        kill_procs (ex);
      ex->runtime_pid = 0;
      maybe_done (ex);
    }
  exec_sweep ();
}

void
exec_sweep (void)
{
  struct exec_sess **pp = &M.execs;
  while (*pp)
    {
      struct exec_sess *ex = *pp;
      if (ex->dead)
        {
          *pp = ex->next;
          free (ex->in);
          free (ex->sock_path);
          free (ex);
        }
      else
        pp = &ex->next;
    }
}

void
attach_request (struct client *cl, json_t *req)
{
  const char *name = json_string_value (json_object_get (req, "container"));
  if (name == NULL)
    {
      sock_fail (cl, "InvalidRequest", "missing \"container\"");
      return;
    }
  struct ctr *c = find_ctr (name);
  if (c == NULL)
    {
      cleanup_free char *msg = skiff_strdup_printf ("container `%.128s` not found", name);
      {
        sock_fail (cl, "ContainerNotFound", msg);
        return;
      }
    }
  if (c->status != CS_RUNNING || c->pid <= 0)
    {
      cleanup_free char *msg = skiff_strdup_printf ("container `%s` is not running", c->cfg->name);
      {
        sock_fail (cl, "ContainerNotRunning", msg);
        return;
      }
    }
  size_t n = 0;
  for (struct client *o = M.clients; o; o = o->next)
    if (!o->dead && o->mode == CM_ATTACH)
      n++;
  if (n >= MAX_ATTACH)
    {
      sock_fail (cl, "TooManySessions", "too many attached clients (at most 16)");
      return;
    }
  cleanup_json json_t *ok = json_pack ("{s:b}", "ok", 1);
  sock_send_json (cl, ok);
  if (cl->dead)
    return;
  cl->mode = CM_ATTACH;
  cl->att = c;
}

void
attach_feed (struct ctr *c, const char *data, size_t len)
{
  for (struct client *cl = M.clients; cl; cl = cl->next)
    {
      if (cl->dead || cl->closing || cl->mode != CM_ATTACH || cl->att != c)
        continue;
      if (sock_send_raw (cl, data, len, SOCK_STREAM_MAX_OUT) < 0)
        {
          log_warn ("container %s: dropping an attached client that does not keep up", c->cfg->name);
          sock_client_close (cl);
        }
    }
}

void
attach_end (struct ctr *c)
{
  for (struct client *cl = M.clients; cl; cl = cl->next)
    {
      if (cl->dead || cl->mode != CM_ATTACH || cl->att != c)
        continue;
      cl->att = NULL;
      sock_close_after_flush (cl);
    }
}
