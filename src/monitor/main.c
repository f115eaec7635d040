/* main.c - skiff-monitor: start-up, the event loop, group sequencing and state.
 *
 * Usage: skiff-monitor <group_dir> [--ready-fd N]
 *
 * Reads <group_dir>/monitor.json, serves <group_dir>/monitor.sock, writes
 * <group_dir>/monitor.pid, state.json, events.jsonl and logs/<name>.log, runs the
 * init containers in order and then the containers, and applies the restart policy.
 * See monitor.h for the shape of the loop.
 */
#include "monitor/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"

struct monitor M;

int
mon_watch (int fd, uint32_t events, struct watch *w)
{
  struct epoll_event ev = { .events = events, .data.ptr = w };
  return epoll_ctl (M.epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Appends one event to events.jsonl and to the batch for subscribers. */
void
mon_event (const char *container, const char *name, const char *type, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof (msg), fmt, ap);
  va_end (ap);
  json_t *ev = mon_event_new (++M.seq, container, name, type, msg, skiff_now_ns ());
  cleanup_free char *line = json_dumps (ev, JSON_COMPACT);
  if (line)
    {
      cleanup_close int fd = open ("events.jsonl", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      size_t len = strlen (line);
      line[len] = '\n'; /* json_dumps' NUL is replaced: write len + 1 bytes */
      if (fd < 0 || write (fd, line, len + 1) != (ssize_t)(len + 1))
        log_warn ("cannot append to events.jsonl: %s", strerror (errno));
      line[len] = '\0';
    }
  json_array_append_new (M.pending_events, ev);
  M.dirty = true;
}

void
mon_set_phase (const char *phase)
{
  if (M.phase == NULL || strcmp (M.phase, phase) != 0)
    {
      M.phase = phase;
      M.dirty = true;
    }
}

json_t *
mon_state_json (void)
{
  json_t *ctrs = json_array ();
  for (size_t i = 0; i < M.n; i++)
    {
      struct ctr *c = &M.ctrs[i];
      json_t *o = json_pack ("{s:s, s:b, s:i, s:O, s:i}", "name", c->cfg->name, "init", c->cfg->init, "restartCount",
                             c->restart_count, "currentState", c->cur, "pid", (int)c->pid);
      if (c->prev)
        json_object_set (o, "previousState", c->prev);
      json_array_append_new (ctrs, o);
    }
  return json_pack ("{s:s, s:s, s:i, s:I, s:o}", "group", M.cfg.group, "phase", M.phase, "monitorPid", (int)getpid (),
                    "lastSeq", (json_int_t)M.seq, "containers", ctrs);
}

/* Writes state.json and pushes the pending events to subscribers, once per loop turn. */
static void
mon_publish (void)
{
  if (!M.dirty)
    return;
  M.dirty = false;
  cleanup_json json_t *state = mon_state_json ();
  cleanup_free char *s = json_dumps (state, JSON_COMPACT);
  cleanup_error skiff_error_t err = NULL;
  if (s == NULL || skiff_write_file_replace ("state.json", s, strlen (s), 0640, &err) < 0)
    log_warn ("cannot write state.json: %s", err ? err->msg : "out of memory");
  sock_publish (state);
  json_array_clear (M.pending_events);
}

/* Publishes, then answers the clients waiting for a finished stop or restart, so that
 * state.json is current when they read it. */
static void
mon_flush (void)
{
  mon_publish ();
  if (M.op_done)
    {
      M.op_done = false;
      sock_op_done (NULL);
    }
}

/* Marks the containers that will never start because an init container failed. */
static void
fail_group (struct ctr *failed)
{
  for (size_t i = 0; i < M.n; i++)
    {
      struct ctr *c = &M.ctrs[i];
      if (c->status != CS_IDLE)
        continue;
      c->status = CS_DONE;
      json_decref (c->cur);
      c->cur = mon_state_waiting ("InitContainerFailed");
      M.dirty = true;
    }
  log_info ("init container %s failed; group exits", failed->cfg->name);
}

/* Moves the group forward: next init container, then all containers, then Exited. */
void
mon_advance (void)
{
  if (M.op != OP_NONE || M.exiting)
    return;
  for (size_t i = 0; i < M.n; i++)
    {
      struct ctr *c = &M.ctrs[i];
      if (!c->cfg->init)
        continue;
      if (c->status == CS_IDLE)
        ctr_start (c);
      if (c->status == CS_RUNNING || c->status == CS_BACKOFF)
        return;
      if (c->last_exit != 0)
        {
          fail_group (c);
          break;
        }
    }
  if (!M.main_started)
    {
      M.main_started = true;
      for (size_t i = 0; i < M.n; i++)
        if (!M.ctrs[i].cfg->init && M.ctrs[i].status == CS_IDLE)
          ctr_start (&M.ctrs[i]);
    }
  bool all_done = true;
  for (size_t i = 0; i < M.n; i++)
    if (M.ctrs[i].status != CS_DONE)
      all_done = false;
  if (all_done)
    {
      mon_set_phase ("Exited");
      M.exiting = true;
    }
  else
    mon_set_phase ("Running");
}

/* Begins stopping every container: SIGTERM now, SIGKILL at the deadline. A stop
 * requested during a restart turns the restart into a stop. */
void
mon_stop (enum mon_op op, int64_t grace_s)
{
  if (M.op != OP_NONE)
    {
      if (op == OP_STOP)
        M.op = OP_STOP;
      return;
    }
  M.op = op;
  M.killed = false;
  M.kill_at = skiff_monotonic_ns () + grace_s * 1000000000LL;
  mon_set_phase ("Stopping");
  for (size_t i = 0; i < M.n; i++)
    {
      struct ctr *c = &M.ctrs[i];
      if (c->status == CS_RUNNING)
        {
          mon_event (c->cfg->name, "Killing", "Normal", "Stopping container %s", c->cfg->name);
          if (ctr_kill (c, grace_s > 0 ? "TERM" : "KILL") < 0)
            kill (c->pid, grace_s > 0 ? SIGTERM : SIGKILL);
        }
      else if (c->status == CS_BACKOFF)
        {
          /* Its last termination becomes its final state. */
          c->status = CS_DONE;
          if (c->prev)
            {
              json_decref (c->cur);
              c->cur = c->prev;
              c->prev = NULL;
            }
          M.dirty = true;
        }
    }
  if (grace_s == 0)
    M.killed = true;
  mon_op_progress ();
}

/* Completes a stop or restart once no container is running any more. */
void
mon_op_progress (void)
{
  if (M.op == OP_NONE)
    return;
  for (size_t i = 0; i < M.n; i++)
    if (M.ctrs[i].status == CS_RUNNING)
      return;
  if (M.op == OP_STOP)
    {
      for (size_t i = 0; i < M.n; i++)
        ctr_delete (&M.ctrs[i]);
      mon_set_phase ("Stopped");
      M.exiting = true;
      M.op_done = true; /* replied to after state.json says Stopped */
      return;
    }
  /* Restart: every container starts again from the first init container. */
  M.op = OP_NONE;
  M.main_started = false;
  for (size_t i = 0; i < M.n; i++)
    {
      struct ctr *c = &M.ctrs[i];
      c->status = CS_IDLE;
      c->consecutive = 0;
      c->restart_count++;
    }
  mon_set_phase ("Starting");
  M.dirty = true;
  mon_advance ();
  M.op_done = true;
}

/* Reaps every exited child; container init processes arrive here as orphans. */
static void
reap (void)
{
  for (;;)
    {
      int st;
      pid_t pid = waitpid (-1, &st, WNOHANG);
      if (pid <= 0)
        return;
      /* An exec session's runtime process is never taken for a container's exit. */
      if (exec_reaped (pid, st))
        continue;
      for (size_t i = 0; i < M.n; i++)
        if (M.ctrs[i].status == CS_RUNNING && M.ctrs[i].pid == pid)
          {
            ctr_reaped (&M.ctrs[i], st);
            break;
          }
    }
}

static void
on_signal (void)
{
  struct signalfd_siginfo si;
  bool child = false;
  while (read (M.sigfd, &si, sizeof (si)) == (ssize_t)sizeof (si))
    {
      if (si.ssi_signo == SIGCHLD)
        child = true;
      else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
        {
          log_info ("signal %d: stopping the group", (int)si.ssi_signo);
          mon_stop (OP_STOP, M.cfg.stop_grace_s);
        }
    }
  if (child)
    reap ();
  mon_advance ();
}

/* Fires due back-off restarts and the SIGKILL deadline of a stop. */
static void
on_timer (void)
{
  uint64_t ticks;
  if (read (M.timerfd, &ticks, sizeof (ticks)) < 0 && errno != EAGAIN)
    log_warn ("timerfd: %s", strerror (errno));
  int64_t now = skiff_monotonic_ns ();
  exec_timer (now);
  if (M.op != OP_NONE && !M.killed && now >= M.kill_at)
    {
      M.killed = true;
      for (size_t i = 0; i < M.n; i++)
        {
          struct ctr *c = &M.ctrs[i];
          if (c->status != CS_RUNNING)
            continue;
          log_info ("container %s ignored SIGTERM: killing", c->cfg->name);
          if (ctr_kill (c, "KILL") < 0)
            kill (c->pid, SIGKILL);
        }
    }
  if (M.op == OP_NONE)
    for (size_t i = 0; i < M.n; i++)
      {
        struct ctr *c = &M.ctrs[i];
        if (c->status == CS_BACKOFF && now >= c->restart_at)
          {
            c->restart_count++;
            ctr_start (c);
          }
      }
  mon_advance ();
}

/* Arms the timerfd for the earliest pending deadline (or disarms it). */
static void
arm_timer (void)
{
  int64_t next = 0;
  if (M.op != OP_NONE && !M.killed)
    next = M.kill_at;
  if (M.op == OP_NONE)
    for (size_t i = 0; i < M.n; i++)
      if (M.ctrs[i].status == CS_BACKOFF && (next == 0 || M.ctrs[i].restart_at < next))
        next = M.ctrs[i].restart_at;
  int64_t ex = exec_next_deadline ();
  if (ex > 0 && (next == 0 || ex < next))
    next = ex;
  struct itimerspec its = { 0 };
  if (next > 0)
    {
      its.it_value.tv_sec = next / 1000000000LL;
      its.it_value.tv_nsec = next % 1000000000LL;
      if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    }
  timerfd_settime (M.timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static int
write_pid_file (skiff_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof (buf), "%d\n", (int)getpid ());
  return skiff_write_file_replace ("monitor.pid", buf, (size_t)n, 0644, err);
}

/* Everything up to readiness: config, folders, signals, fds, socket, pid file. */
static int
setup (const char *group_dir, skiff_error_t *err)
{
  M.dir = realpath (group_dir, NULL);
  if (M.dir == NULL)
    return skiff_error_set (err, errno, "group folder `%s`", group_dir);
  if (chdir (M.dir) < 0)
    return skiff_error_set (err, errno, "chdir `%s`", M.dir);
  if (mon_config_load ("monitor.json", &M.cfg, err) < 0)
    return -1;
  if (skiff_mkdir_p ("logs", 0750, err) < 0 || skiff_mkdir_p ("run", 0700, err) < 0)
    return -1;

  cleanup_json json_t *none = NULL;
  if (mon_events_read ("events.jsonl", INT64_MAX, 0, &none, &M.seq, err) < 0)
    return -1;
  M.pending_events = json_array ();

  M.n = M.cfg.n_ctrs;
  M.ctrs = calloc (M.n ? M.n : 1, sizeof (*M.ctrs));
  if (M.ctrs == NULL)
    return skiff_error_set (err, ENOMEM, "containers");
  for (size_t i = 0; i < M.n; i++)
    ctr_init (&M.ctrs[i], &M.cfg.ctrs[i]);

  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return skiff_error_set (err, errno, "PR_SET_CHILD_SUBREAPER");
  signal (SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0)
    return skiff_error_set (err, errno, "sigprocmask");
  M.sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  M.timerfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  M.epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (M.sigfd < 0 || M.timerfd < 0 || M.epfd < 0)
    return skiff_error_set (err, errno, "signalfd/timerfd/epoll");
  M.sig_w.kind = W_SIGNAL;
  M.timer_w.kind = W_TIMER;
  M.listen_w.kind = W_LISTEN;
  if (mon_watch (M.sigfd, EPOLLIN, &M.sig_w) < 0 || mon_watch (M.timerfd, EPOLLIN, &M.timer_w) < 0)
    return skiff_error_set (err, errno, "epoll_ctl");
  if (sock_listen (err) < 0)
    return -1;
  if (mon_watch (M.listen_fd, EPOLLIN, &M.listen_w) < 0)
    return skiff_error_set (err, errno, "epoll_ctl");
  if (write_pid_file (err) < 0)
    return -1;
  M.phase = "Starting";
  M.dirty = true;
  return 0;
}

/* Reads what the containers still had in their pipes before the monitor goes. */
static void
drain_all (void)
{
  for (size_t i = 0; i < M.n; i++)
    {
      ctr_close_pipes (&M.ctrs[i]);
      mon_log_close (&M.ctrs[i].log);
    }
}

int
main (int argc, char **argv)
{
  const char *dir = NULL;
  int ready_fd = -1;
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--ready-fd") == 0 && i + 1 < argc)
        ready_fd = atoi (argv[++i]);
      else if (strncmp (argv[i], "--ready-fd=", 11) == 0)
        ready_fd = atoi (argv[i] + 11);
      else if (dir == NULL && argv[i][0] != '-')
        dir = argv[i];
      else
        {
          fprintf (stderr, "usage: skiff-monitor <group_dir> [--ready-fd N]\n");
          return 2;
        }
    }
  if (dir == NULL)
    {
      fprintf (stderr, "usage: skiff-monitor <group_dir> [--ready-fd N]\n");
      return 2;
    }
  if (ready_fd >= 0)
    fcntl (ready_fd, F_SETFD, FD_CLOEXEC);

  cleanup_error skiff_error_t err = NULL;
  if (setup (dir, &err) < 0)
    {
      /* skiffd reads this line from monitor.log when the ready byte never comes. */
      fprintf (stderr, "skiff-monitor: %s\n", err->msg);
      return 1;
    }
  log_info ("monitor for group %s ready (pid %d, %zu containers)", M.cfg.group, (int)getpid (), M.n);
  if (ready_fd >= 0)
    {
      if (write (ready_fd, "R", 1) != 1)
        log_warn ("ready fd: %s", strerror (errno));
      close (ready_fd);
    }

  mon_advance ();
  mon_flush ();
  while (!M.exiting)
    {
      arm_timer ();
      struct epoll_event evs[16];
      int n = epoll_wait (M.epfd, evs, 16, -1);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          log_error ("epoll_wait: %s", strerror (errno));
          break;
        }
      for (int i = 0; i < n; i++)
        {
          struct watch *w = evs[i].data.ptr;
          switch (w->kind)
            {
            case W_SIGNAL:
              on_signal ();
              break;
            case W_TIMER:
              on_timer ();
              break;
            case W_LISTEN:
              sock_accept ();
              break;
            case W_CLIENT:
              sock_client_ready (w->obj, evs[i].events);
              break;
            case W_PIPE:
              ctr_pipe_ready (w->obj, w->stream);
              break;
            case W_CONSOLE:
              exec_console_ready (w->obj);
              break;
            case W_PTY:
              exec_pty_ready (w->obj, evs[i].events);
              break;
            }
        }
      mon_flush ();
      sock_sweep ();
      exec_sweep ();
    }
  drain_all ();
  mon_flush ();
  exec_close_all ();
  sock_close_all ();
  unlink ("monitor.sock");
  unlink ("monitor.pid");
  log_info ("monitor for group %s exits (phase %s)", M.cfg.group, M.phase);
  return 0;
}
