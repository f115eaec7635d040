/* ctr.c - one container's life in skiff-monitor: runtime calls (crun run/kill/delete),
 * stdout/stderr pipes into the log file, exit classification and restart decisions.
 *
 * Runtime calls are synchronous fork+exec+waitpid of the runtime binary: `crun run
 * --detach` returns once the container runs (about 10 ms), and the monitor never waits
 * on a container itself: container init processes are reaped from the SIGCHLD loop.
 */
#include "monitor/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

void
ctr_init (struct ctr *c, struct mon_ctr_config *cfg)
{
  c->cfg = cfg;
  c->status = CS_IDLE;
  c->pipe_fd[0] = c->pipe_fd[1] = -1;
  for (int s = 0; s < 2; s++)
    {
      c->pipe_w[s].kind = W_PIPE;
      c->pipe_w[s].stream = s;
      c->pipe_w[s].obj = c;
    }
  c->cur = mon_state_waiting ("Waiting");
  cleanup_free char *path = skiff_strdup_printf ("%s/logs/%s.log", M.dir, cfg->name);
  cleanup_error skiff_error_t err = NULL;
  if (mon_log_open (&c->log, path, M.cfg.log_max_bytes, &err) < 0)
    log_warn ("container %s: %s", cfg->name, err->msg);
}

/* Runs argv with stdin from /dev/null and stdout/stderr on the given fds (-1: /dev/null)
 * and waits for it. Returns the wait status, or -1 when it could not be started. */
static int
spawn_wait (char *const argv[], int out_fd, int err_fd)
{
  cleanup_close int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0)
    return -1;
  pid_t pid = fork ();
  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      sigset_t all;
      sigemptyset (&all);
      sigprocmask (SIG_SETMASK, &all, NULL);
      signal (SIGPIPE, SIG_DFL);
      if (dup2 (devnull, 0) < 0 || dup2 (out_fd >= 0 ? out_fd : devnull, 1) < 0
          || dup2 (err_fd >= 0 ? err_fd : devnull, 2) < 0)
        _exit (127);
      close_range (3, ~0U, 0);
      execv (argv[0], argv);
      _exit (127);
    }
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  return st;
}

/* `<runtime> --root R <verb> [a] [b] <id>`, output discarded. Returns 0 when it exited 0. */
static int
runtime_simple (struct ctr *c, const char *verb, const char *a, const char *b)
{
  char *argv[9];
  int n = 0;
  argv[n++] = M.cfg.runtime;
  argv[n++] = (char *)"--root";
  argv[n++] = M.cfg.runtime_root;
  argv[n++] = (char *)verb;
  if (a)
    argv[n++] = (char *)a;
  argv[n++] = c->cfg->id;
  if (b)
    argv[n++] = (char *)b;
  argv[n] = NULL;
  int st = spawn_wait (argv, -1, -1);
  return (st >= 0 && WIFEXITED (st) && WEXITSTATUS (st) == 0) ? 0 : -1;
}

void
ctr_delete (struct ctr *c)
{
  runtime_simple (c, "delete", "-f", NULL);
}

int
ctr_kill (struct ctr *c, const char *sig)
{
  return runtime_simple (c, "kill", NULL, sig);
}

/* The OOM-kill counter of the container's memory cgroup (v2 or v1), 0 when unknown. */
static int64_t
read_oom_count (struct ctr *c)
{
  if (c->cfg->memory_cgroup == NULL)
    return 0;
  static const char *const files[] = { "memory.events", "memory.oom_control" };
  for (size_t i = 0; i < 2; i++)
    {
      cleanup_free char *path = skiff_strdup_printf ("%s/%s", c->cfg->memory_cgroup, files[i]);
      cleanup_free char *text = NULL;
      cleanup_error skiff_error_t err = NULL;
      if (skiff_read_file (path, 65536, &text, NULL, &err) < 0)
        continue;
      int64_t n = mon_parse_oom_kill (text);
      if (n >= 0)
        return n;
    }
  return 0;
}

struct line_ctx
{
  struct ctr *c;
  enum mon_stream stream;
  int64_t ns;
};

static int
write_line (void *opaque, const char *a, size_t alen, const char *b, size_t blen, bool partial)
{
  struct line_ctx *lc = opaque;
  cleanup_error skiff_error_t err = NULL;
  if (lc->c->log.fd >= 0 && mon_log_write (&lc->c->log, lc->ns, lc->stream, partial, a, alen, b, blen, &err) < 0)
    log_warn ("container %s: %s", lc->c->cfg->name, err->msg);
  return 0; /* a full disk must not stop the monitor from draining the pipe */
}

/* Reads up to `rounds` buffers from one pipe. Returns 1 at EOF (or error), else 0. */
static int
pipe_read (struct ctr *c, int stream, int rounds)
{
  char buf[8192];
  struct line_ctx lc = { c, (enum mon_stream)stream, 0 };
  for (int i = 0; i < rounds; i++)
    {
      ssize_t r = read (c->pipe_fd[stream], buf, sizeof (buf));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 && errno == EAGAIN)
        return 0;
      if (r <= 0)
        return 1;
      lc.ns = skiff_now_ns ();
      attach_feed (c, buf, (size_t)r);
      mon_linebuf_feed (&c->lines[stream], buf, (size_t)r, write_line, &lc);
    }
  return 0;
}

static void
pipe_close (struct ctr *c, int stream)
{
  if (c->pipe_fd[stream] < 0)
    return;
  struct line_ctx lc = { c, (enum mon_stream)stream, skiff_now_ns () };
  mon_linebuf_flush (&c->lines[stream], write_line, &lc);
  mon_linebuf_free (&c->lines[stream]);
  epoll_ctl (M.epfd, EPOLL_CTL_DEL, c->pipe_fd[stream], NULL);
  close (c->pipe_fd[stream]);
  c->pipe_fd[stream] = -1;
}

void
ctr_pipe_ready (struct ctr *c, int stream)
{
  /* A bounded number of reads per turn keeps one chatty container from starving others. */
  if (pipe_read (c, stream, 16))
    pipe_close (c, stream);
}

void
ctr_close_pipes (struct ctr *c)
{
  for (int s = 0; s < 2; s++)
    if (c->pipe_fd[s] >= 0)
      {
        pipe_read (c, s, 1024);
        pipe_close (c, s);
      }
}

/* Records a termination and applies the restart policy (not during a stop/restart). */
static void
ctr_finish (struct ctr *c, int code, const char *detail)
{
  int64_t now = skiff_now_ns ();
  json_t *term = mon_state_terminated (c->start_ns, now, code, detail);
  json_decref (c->cur);
  c->cur = term;
  c->last_exit = code;
  c->pid = 0;
  M.dirty = true;
  attach_end (c); /* an attach follows one run */
  mon_event (c->cfg->name, "Terminated", code == 0 ? "Normal" : "Warning",
             "Container %s terminated with exit code %d (%s)", c->cfg->name, code, detail);
  if (M.op != OP_NONE)
    {
      c->status = CS_DONE;
      mon_op_progress ();
      return;
    }
  if (!mon_policy_should_restart (M.cfg.policy, c->cfg->init, code))
    {
      c->status = CS_DONE;
      return;
    }
  int64_t ran_ms = c->start_mono ? (skiff_monotonic_ns () - c->start_mono) / 1000000 : 0;
  int64_t delay = mon_backoff_next (&M.cfg.backoff, &c->consecutive, ran_ms);
  json_decref (c->prev);
  c->prev = c->cur;
  c->cur = mon_state_waiting ("CrashLoopBackOff");
  c->status = CS_BACKOFF;
  c->restart_at = skiff_monotonic_ns () + delay * 1000000LL;
  mon_event (c->cfg->name, "BackOff", "Warning", "Back-off restarting failed container");
}

char *
ctr_runtime_error (const char *log_path, int st)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  cleanup_error skiff_error_t err = NULL;
  if (skiff_read_file (log_path, 1 << 20, &text, &len, &err) == 0)
    {
      while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
      if (len > 0)
        {
          char *nl = strrchr (text, '\n');
          const char *last = nl ? nl + 1 : text;
          if (strlen (last) > 1000)
            return skiff_strdup_printf ("%.1000s", last);
          return skiff_strdup (last);
        }
    }
  if (st < 0)
    return skiff_strdup_printf ("cannot run the runtime: %s", strerror (errno));
  return skiff_strdup_printf ("runtime failed with exit code %d", mon_exit_code (st));
}

char *
ctr_runtime_log_opt (const char *log_path)
{
  /* crun takes a driver prefix (file:, journald:); runc takes a plain path */
  const char *rt_base = strrchr (M.cfg.runtime, '/') ? strrchr (M.cfg.runtime, '/') + 1 : M.cfg.runtime;
  return strncmp (rt_base, "crun", 4) == 0 ? skiff_strdup_printf ("--log=file:%s", log_path)
                                           : skiff_strdup_printf ("--log=%s", log_path);
}

void
ctr_start (struct ctr *c)
{
  const char *name = c->cfg->name;
  /* stale state from an earlier run or an earlier monitor (crun keeps it in <root>/<id>) */
  cleanup_free char *state_dir = skiff_strdup_printf ("%s/%s", M.cfg.runtime_root, c->cfg->id);
  if (access (state_dir, F_OK) == 0)
    ctr_delete (c);
  ctr_close_pipes (c);
  cleanup_free char *pid_path = skiff_strdup_printf ("%s/run/%s.pid", M.dir, name);
  cleanup_free char *log_path = skiff_strdup_printf ("%s/run/%s.crun.log", M.dir, name);
  cleanup_free char *log_opt = ctr_runtime_log_opt (log_path);
  unlink (pid_path);
  unlink (log_path);

  int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
  int st = -1;
  c->oom_base = read_oom_count (c);
  if (pipe2 (out, O_CLOEXEC) == 0 && pipe2 (errp, O_CLOEXEC) == 0)
    {
      char *argv[] = { M.cfg.runtime,
                       (char *)"--root",
                       M.cfg.runtime_root,
                       log_opt,
                       (char *)"--log-format=text",
                       (char *)"run",
                       (char *)"--detach",
                       (char *)"--bundle",
                       c->cfg->bundle,
                       (char *)"--pid-file",
                       pid_path,
                       c->cfg->id,
                       NULL };
      st = spawn_wait (argv, out[1], errp[1]);
    }
  else
    log_warn ("container %s: pipe: %s", name, strerror (errno));
  int rd[2] = { out[0], errp[0] };
  if (out[1] >= 0)
    close (out[1]);
  if (errp[1] >= 0)
    close (errp[1]);
  for (int s = 0; s < 2; s++)
    {
      c->pipe_fd[s] = rd[s];
      if (rd[s] < 0)
        continue;
      fcntl (rd[s], F_SETFL, O_NONBLOCK);
      if (mon_watch (rd[s], EPOLLIN, &c->pipe_w[s]) < 0)
        log_warn ("container %s: epoll: %s", name, strerror (errno));
    }

  pid_t pid = 0;
  if (st == 0)
    {
      cleanup_free char *text = NULL;
      cleanup_error skiff_error_t err = NULL;
      if (skiff_read_file (pid_path, 64, &text, NULL, &err) == 0)
        pid = (pid_t)atoi (text);
    }
  int64_t now = skiff_now_ns ();
  c->start_ns = now;
  c->start_mono = skiff_monotonic_ns ();
  if (pid > 0)
    {
      c->pid = pid;
      c->status = CS_RUNNING;
      const char *was = json_string_value (json_object_get (c->cur, "state"));
      if (was && strcmp (was, "Terminated") == 0)
        {
          /* A restart after a stop: the last termination becomes previousState. */
          json_decref (c->prev);
          c->prev = c->cur;
        }
      else
        json_decref (c->cur); /* Waiting; previousState (if any) was set at the back-off */
      c->cur = mon_state_running (now);
      M.dirty = true;
      mon_event (name, "Started", "Normal", "Started container %s", name);
      return;
    }

  /* The runtime failed before the container ran: record it like an exit. */
  cleanup_free char *msg = ctr_runtime_error (log_path, st);
  ctr_close_pipes (c); /* the runtime's own stderr, if any, goes to the log too */
  ctr_delete (c);
  log_warn ("container %s failed to start: %s", name, msg);
  mon_event (name, "Failed", "Warning", "%s", msg);
  c->status = CS_RUNNING; /* so that ctr_finish applies the policy as for any exit */
  ctr_finish (c, mon_start_failure_code (msg), msg);
}

void
ctr_reaped (struct ctr *c, int wait_status)
{
  int code = mon_exit_code (wait_status);
  /* The counter lives in the cgroup, which `delete` removes: read it first. */
  bool oom = read_oom_count (c) > c->oom_base;
  if (oom)
    code = 137;
  log_info ("container %s (pid %d) exited with code %d%s", c->cfg->name, (int)c->pid, code, oom ? " (OOM)" : "");
  /* Whatever the container wrote before it exited is in the pipes now: log it before the
     exit is recorded, so a client that sees the exit also sees every line. */
  for (int s = 0; s < 2; s++)
    if (c->pipe_fd[s] >= 0 && pipe_read (c, s, 1024))
      pipe_close (c, s);
  c->pid = 0;
  ctr_delete (c);
  ctr_finish (c, code, mon_detail_status (code, oom));
}
