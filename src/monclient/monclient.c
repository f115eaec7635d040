/* monclient.c - spawning skiff-monitor and talking to it over its unix socket. */
#include "monclient/monclient.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "monclient/monlogic.h"

#define MAX_REPLY (16 * 1024 * 1024)
#define SPAWN_TIMEOUT_MS 10000

struct monclient_sub_s
{
  int fd;
  char *buf;
  size_t len;
};

static int64_t
now_ms (void)
{
  return skiff_monotonic_ns () / 1000000;
}

/* Milliseconds left until deadline (>= 0). */
static int
left_ms (int64_t deadline)
{
  int64_t l = deadline - now_ms ();
  return l < 0 ? 0 : (l > INT_MAX ? INT_MAX : (int)l);
}

/* Connects to <group_dir>/monitor.sock. Long folder names go through /proc/self/fd,
 * since sun_path holds only 107 characters. Returns a non-blocking socket. */
static int
connect_monitor (const char *group_dir, int64_t deadline, skiff_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  cleanup_close int dirfd = -1;
  int n = snprintf (addr.sun_path, sizeof (addr.sun_path), "%s/monitor.sock", group_dir);
  if (n < 0 || (size_t)n >= sizeof (addr.sun_path))
    {
      dirfd = open (group_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        return skiff_error_set (err, errno, "monitor folder `%s`", group_dir);
      snprintf (addr.sun_path, sizeof (addr.sun_path), "/proc/self/fd/%d/monitor.sock", dirfd);
    }
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "socket");
  for (;;)
    {
      if (connect (fd, (struct sockaddr *)&addr, sizeof (addr)) == 0)
        break;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN && left_ms (deadline) > 0)
        {
          /* Backlog full: the monitor is busy for a moment. */
          struct timespec ts = { 0, 5000000 };
          nanosleep (&ts, NULL);
          continue;
        }
      return skiff_error_set (err, errno == EAGAIN ? ETIMEDOUT : errno, "connect to monitor of `%s`", group_dir);
    }
  return steal_fd (&fd);
}

static int
send_all (int fd, const char *data, size_t len, int64_t deadline, skiff_error_t *err)
{
  while (len > 0)
    {
      ssize_t w = send (fd, data, len, MSG_NOSIGNAL);
      if (w > 0)
        {
          data += w;
          len -= (size_t)w;
          continue;
        }
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno != EAGAIN)
        return skiff_error_set (err, errno, "send to monitor");
      struct pollfd p = { .fd = fd, .events = POLLOUT };
      int r = poll (&p, 1, left_ms (deadline));
      if (r == 0)
        return skiff_error_set (err, ETIMEDOUT, "send to monitor");
      if (r < 0 && errno != EINTR)
        return skiff_error_set (err, errno, "poll");
    }
  return 0;
}

static int
send_json (int fd, json_t *j, int64_t deadline, skiff_error_t *err)
{
  cleanup_free char *s = json_dumps (j, JSON_COMPACT);
  if (s == NULL)
    return skiff_error_set (err, EINVAL, "cannot encode the request");
  size_t len = strlen (s);
  s[len] = '\n'; /* the NUL is not sent */
  return send_all (fd, s, len + 1, deadline, err);
}

/* Reads once from fd into the buffer. Returns bytes read, 0 at EOF, -EAGAIN when
 * nothing is there, or a negative error (err filled). */
static ssize_t
fill (int fd, char **buf, size_t *len, skiff_error_t *err)
{
  char tmp[16384];
  for (;;)
    {
      ssize_t r = recv (fd, tmp, sizeof (tmp), 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 && errno == EAGAIN)
        return -EAGAIN;
      if (r < 0)
        return skiff_error_set (err, errno, "read from monitor");
      if (r == 0)
        return 0;
      if (*len + (size_t)r > MAX_REPLY)
        return skiff_error_set (err, EMSGSIZE, "monitor message longer than %d bytes", MAX_REPLY);
      char *nb = realloc (*buf, *len + (size_t)r);
      if (nb == NULL)
        return skiff_error_set (err, ENOMEM, "read from monitor");
      memcpy (nb + *len, tmp, (size_t)r);
      *buf = nb;
      *len += (size_t)r;
      return r;
    }
}

/* Takes one complete line off the buffer and parses it; returns 1 with *out set,
 * 0 when no line is complete, negative on bad JSON. */
static int
take_line (char **buf, size_t *len, json_t **out, skiff_error_t *err)
{
  char *nl = *len ? memchr (*buf, '\n', *len) : NULL;
  if (nl == NULL)
    return 0;
  size_t llen = (size_t)(nl - *buf);
  json_error_t jerr;
  json_t *j = json_loadb (*buf, llen, 0, &jerr);
  memmove (*buf, nl + 1, *len - llen - 1);
  *len -= llen + 1;
  if (j == NULL)
    return skiff_error_set (err, EPROTO, "bad message from monitor: %s", jerr.text);
  *out = j;
  return 1;
}

/* Reads until one line is complete or the deadline passes. */
static int
read_line (int fd, char **buf, size_t *len, int64_t deadline, json_t **out, skiff_error_t *err)
{
  for (;;)
    {
      int t = take_line (buf, len, out, err);
      if (t != 0)
        return t < 0 ? -1 : 0;
      ssize_t r = fill (fd, buf, len, err);
      if (r == 0)
        return skiff_error_set (err, ECONNRESET, "monitor closed the connection without a reply");
      if (r == -EAGAIN)
        {
          struct pollfd p = { .fd = fd, .events = POLLIN };
          int pr = poll (&p, 1, left_ms (deadline));
          if (pr == 0)
            return skiff_error_set (err, ETIMEDOUT, "waiting for the monitor");
          if (pr < 0 && errno != EINTR)
            return skiff_error_set (err, errno, "poll");
          continue;
        }
      if (r < 0)
        return -1;
    }
}

int
monclient_request (const char *group_dir, json_t *request, int timeout_ms, json_t **reply, skiff_error_t *err)
{
  int64_t deadline = now_ms () + (timeout_ms > 0 ? timeout_ms : 30000);
  cleanup_close int fd = connect_monitor (group_dir, deadline, err);
  if (fd < 0)
    return -1;
  if (send_json (fd, request, deadline, err) < 0)
    return -1;
  cleanup_free char *buf = NULL;
  size_t len = 0;
  return read_line (fd, &buf, &len, deadline, reply, err);
}

#define STREAM_REPLY_TIMEOUT_MS 12000
#define STREAM_REPLY_MAX 65536

/* Maps a monitor error reply of a stream request onto an ARM error. */
static int
stream_error (json_t *reply, skiff_error_t *err)
{
  const char *code = json_string_value (json_object_get (reply, "code"));
  const char *msg = json_string_value (json_object_get (reply, "error"));
  if (msg == NULL)
    msg = "the monitor refused the request";
  if (code == NULL)
    code = "";
  if (strcmp (code, "ContainerNotFound") == 0)
    return skiff_error_arm (err, 404, "ContainerNotFound", "%s", msg);
  if (strcmp (code, "ContainerNotRunning") == 0)
    return skiff_error_arm (err, 409, "ContainerNotRunning", "%s", msg);
  if (strcmp (code, "InvalidRequest") == 0)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "%s", msg);
  if (strcmp (code, "TooManySessions") == 0)
    return skiff_error_arm (err, 429, "TooManyRequests", "%s", msg);
  return skiff_error_arm (err, 500, "ExecFailed", "%s", msg);
}

int
monclient_open_stream (const char *sock_path, json_t *request, int *fd_out, skiff_error_t *err)
{
  *fd_out = -1;
  int64_t deadline = now_ms () + STREAM_REPLY_TIMEOUT_MS;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  cleanup_close int dirfd = -1;
  if (strlen (sock_path) >= sizeof (addr.sun_path))
    {
      /* Long paths go through /proc/self/fd, as in connect_monitor. */
      const char *slash = strrchr (sock_path, '/');
      if (slash == NULL || strlen (slash) > 64)
        return skiff_error_set (err, ENAMETOOLONG, "monitor socket `%s`", sock_path);
      cleanup_free char *dir = strndup (sock_path, (size_t)(slash - sock_path));
      dirfd = dir ? open (dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
      if (dirfd < 0)
        {
          if (errno == ENOENT)
            return skiff_error_arm (err, 409, "ContainerGroupNotRunning", "the container group is not running");
          return skiff_error_set (err, errno, "monitor folder of `%s`", sock_path);
        }
      snprintf (addr.sun_path, sizeof (addr.sun_path), "/proc/self/fd/%d%s", dirfd, slash);
    }
  else
    strcpy (addr.sun_path, sock_path);
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return skiff_error_set (err, errno, "socket");
  for (;;)
    {
      if (connect (fd, (struct sockaddr *)&addr, sizeof (addr)) == 0)
        break;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN && left_ms (deadline) > 0)
        {
          struct timespec ts = { 0, 5000000 };
          nanosleep (&ts, NULL);
          continue;
        }
      if (errno == ENOENT || errno == ECONNREFUSED)
        return skiff_error_arm (err, 409, "ContainerGroupNotRunning", "the container group is not running");
      return skiff_error_set (err, errno == EAGAIN ? ETIMEDOUT : errno, "connect to `%s`", sock_path);
    }
  if (send_json (fd, request, deadline, err) < 0)
    return -1;
  /* One byte at a time: whatever follows the reply line is stream data and stays in
     the socket for the caller. */
  cleanup_free char *line = malloc (STREAM_REPLY_MAX);
  if (line == NULL)
    return skiff_error_set (err, ENOMEM, "stream reply");
  size_t len = 0;
  for (;;)
    {
      char c;
      ssize_t r = recv (fd, &c, 1, 0);
      if (r == 1)
        {
          if (c == '\n')
            break;
          if (len + 1 >= STREAM_REPLY_MAX)
            return skiff_error_set (err, EMSGSIZE, "monitor reply longer than %d bytes", STREAM_REPLY_MAX);
          line[len++] = c;
          continue;
        }
      if (r == 0)
        return skiff_error_set (err, ECONNRESET, "monitor closed the connection without a reply");
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN)
        return skiff_error_set (err, errno, "read from monitor");
      struct pollfd p = { .fd = fd, .events = POLLIN };
      int pr = poll (&p, 1, left_ms (deadline));
      if (pr == 0)
        return skiff_error_set (err, ETIMEDOUT, "waiting for the monitor to open the stream");
      if (pr < 0 && errno != EINTR)
        return skiff_error_set (err, errno, "poll");
    }
  json_error_t jerr;
  cleanup_json json_t *reply = json_loadb (line, len, 0, &jerr);
  if (reply == NULL)
    return skiff_error_set (err, EPROTO, "bad reply from monitor: %s", jerr.text);
  if (!json_is_true (json_object_get (reply, "ok")))
    return stream_error (reply, err);
  *fd_out = steal_fd (&fd);
  return *fd_out;
}

int
monclient_subscribe (const char *group_dir, monclient_sub_t **sub_out, skiff_error_t *err)
{
  int64_t deadline = now_ms () + 5000;
  cleanup_close int fd = connect_monitor (group_dir, deadline, err);
  if (fd < 0)
    return -1;
  cleanup_json json_t *req = json_pack ("{s:s}", "op", "subscribe");
  if (send_json (fd, req, deadline, err) < 0)
    return -1;
  cleanup_free char *buf = NULL;
  size_t len = 0;
  cleanup_json json_t *reply = NULL;
  if (read_line (fd, &buf, &len, deadline, &reply, err) < 0)
    return -1;
  if (!json_is_true (json_object_get (reply, "ok")))
    return skiff_error_set (err, EPROTO, "monitor refused the subscription: %s",
                            json_string_value (json_object_get (reply, "error")) ?: "?");
  monclient_sub_t *sub = calloc (1, sizeof (*sub));
  if (sub == NULL)
    return skiff_error_set (err, ENOMEM, "subscribe");
  sub->fd = steal_fd (&fd);
  sub->buf = steal_pointer (&buf);
  sub->len = len;
  *sub_out = sub;
  return 0;
}

int
monclient_subscribe_from (const char *group_dir, int64_t since_seq, monclient_sub_t **sub_out, skiff_error_t *err)
{
  int64_t deadline = now_ms () + 5000;
  cleanup_close int fd = connect_monitor (group_dir, deadline, err);
  if (fd < 0)
    return -1;
  cleanup_json json_t *req = json_pack ("{s:s, s:I}", "op", "subscribe", "sinceSeq", (json_int_t)since_seq);
  if (send_json (fd, req, deadline, err) < 0)
    return -1;
  monclient_sub_t *sub = calloc (1, sizeof (*sub));
  if (sub == NULL)
    return skiff_error_set (err, ENOMEM, "subscribe");
  sub->fd = steal_fd (&fd);
  *sub_out = sub;
  return 0;
}

int
monclient_sub_fd (const monclient_sub_t *sub)
{
  return sub->fd;
}

int
monclient_read_update (monclient_sub_t *sub, json_t **update, skiff_error_t *err)
{
  *update = NULL;
  for (;;)
    {
      int t = take_line (&sub->buf, &sub->len, update, err);
      if (t < 0)
        return -1;
      if (t > 0)
        return MONCLIENT_UPDATE;
      ssize_t r = fill (sub->fd, &sub->buf, &sub->len, err);
      if (r == -EAGAIN)
        return MONCLIENT_AGAIN;
      if (r == 0)
        return MONCLIENT_EOF;
      if (r < 0)
        return -1;
    }
}

void
monclient_sub_free (monclient_sub_t *sub)
{
  if (sub == NULL)
    return;
  if (sub->fd >= 0)
    close (sub->fd);
  free (sub->buf);
  free (sub);
}

int
monclient_read_state (const char *group_dir, int64_t since_seq, json_t **state, json_t **events, skiff_error_t *err)
{
  if (state)
    {
      *state = NULL;
      cleanup_free char *path = skiff_strdup_printf ("%s/state.json", group_dir);
      cleanup_free char *data = NULL;
      size_t len = 0;
      cleanup_error skiff_error_t e = NULL;
      if (skiff_read_file (path, MAX_REPLY, &data, &len, &e) < 0)
        {
          if (e->status != ENOENT)
            {
              *err = steal_pointer (&e);
              return -1;
            }
        }
      else
        {
          json_error_t jerr;
          *state = json_loadb (data, len, 0, &jerr);
          if (*state == NULL)
            return skiff_error_set (err, EPROTO, "parse `%s`: %s", path, jerr.text);
        }
    }
  if (events)
    {
      *events = NULL;
      cleanup_free char *path = skiff_strdup_printf ("%s/events.jsonl", group_dir);
      if (mon_events_read (path, since_seq, 10000, events, NULL, err) < 0)
        {
          if (state)
            skiff_json_decrefp (state);
          skiff_json_decrefp (events);
          return -1;
        }
    }
  return 0;
}

int
monclient_monitor_alive (const char *group_dir)
{
  cleanup_free char *pid_path = skiff_strdup_printf ("%s/monitor.pid", group_dir);
  cleanup_free char *text = NULL;
  cleanup_error skiff_error_t err = NULL;
  if (skiff_read_file (pid_path, 64, &text, NULL, &err) < 0)
    return 0;
  int pid = atoi (text);
  if (pid <= 0 || (kill (pid, 0) < 0 && errno != EPERM))
    return 0;
  /* The pid may have been reused: it must be a skiff-monitor whose folder is ours
   * (the monitor's working directory is its group folder). */
  cleanup_free char *cmd_path = skiff_strdup_printf ("/proc/%d/cmdline", pid);
  cleanup_free char *cmdline = NULL;
  if (skiff_read_file (cmd_path, 65536, &cmdline, NULL, &err) < 0)
    return 0;
  const char *base = strrchr (cmdline, '/');
  base = base ? base + 1 : cmdline;
  if (strncmp (base, "skiff-monitor", 13) != 0)
    return 0;
  cleanup_free char *want = realpath (group_dir, NULL);
  cleanup_free char *cwd_link = skiff_strdup_printf ("/proc/%d/cwd", pid);
  char cwd[PATH_MAX];
  ssize_t n = readlink (cwd_link, cwd, sizeof (cwd) - 1);
  if (want == NULL || n <= 0)
    return 0;
  cwd[n] = '\0';
  return strcmp (cwd, want) == 0;
}

/* The last non-empty line of the monitor's log, for spawn errors. */
static char *
last_log_line (const char *log_path)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  cleanup_error skiff_error_t err = NULL;
  if (skiff_read_file (log_path, 8 << 20, &text, &len, &err) < 0)
    return skiff_strdup ("no monitor.log");
  while (len > 0 && text[len - 1] == '\n')
    text[--len] = '\0';
  char *nl = strrchr (text, '\n');
  return skiff_strdup_printf ("%.1000s", nl ? nl + 1 : text);
}

/* Runs in the forked child of a possibly multi-threaded caller: only async-signal-safe
 * calls until exec. */
static void __attribute__ ((noreturn)) spawn_child (char *const argv[], int devnull, int log_fd, int ready_fd)
{
  if (setsid () < 0)
    _exit (126);
  pid_t p = fork ();
  if (p != 0)
    _exit (p < 0 ? 126 : 0); /* the intermediate process: the monitor is orphaned to init */
  /* Move the sources out of 0..3 first so the dup2 below cannot clobber one. */
  int dn = fcntl (devnull, F_DUPFD_CLOEXEC, 10);
  int lf = fcntl (log_fd, F_DUPFD_CLOEXEC, 10);
  int rf = fcntl (ready_fd, F_DUPFD_CLOEXEC, 10);
  if (dn < 0 || lf < 0 || rf < 0 || dup2 (dn, 0) < 0 || dup2 (lf, 1) < 0 || dup2 (lf, 2) < 0 || dup2 (rf, 3) < 0)
    _exit (126);
  close_range (4, ~0U, 0);
  struct sigaction sa = { .sa_handler = SIG_DFL };
  for (int s = 1; s < NSIG; s++)
    sigaction (s, &sa, NULL);
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  if (chdir ("/") < 0)
    _exit (126);
  execv (argv[0], argv);
  _exit (127);
}

int
monclient_spawn (const char *monitor_bin, const char *group_dir, skiff_error_t *err)
{
  cleanup_free char *dir = realpath (group_dir, NULL);
  if (dir == NULL)
    return skiff_error_set (err, errno, "group folder `%s`", group_dir);
  if (monclient_monitor_alive (dir))
    return skiff_error_set (err, EEXIST, "a monitor already runs for `%s`", dir);
  cleanup_free char *bin = skiff_strdup (monitor_bin);
  cleanup_free char *log_path = skiff_strdup_printf ("%s/monitor.log", dir);
  cleanup_close int log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0)
    return skiff_error_set (err, errno, "open `%s`", log_path);
  cleanup_close int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0)
    return skiff_error_set (err, errno, "open /dev/null");
  int ready[2];
  if (pipe2 (ready, O_CLOEXEC) < 0)
    return skiff_error_set (err, errno, "pipe");
  cleanup_close int ready_r = ready[0];
  cleanup_close int ready_w = ready[1];
  char *argv[] = { bin, dir, (char *)"--ready-fd", (char *)"3", NULL };

  pid_t pid = fork ();
  if (pid < 0)
    return skiff_error_set (err, errno, "fork");
  if (pid == 0)
    spawn_child (argv, devnull, log_fd, ready_w);
  skiff_closep (&ready_w);
  int st = 0;
  while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
    ;
  /* ECHILD (someone else reaped it) is fine: the ready pipe tells the outcome. */

  int64_t deadline = now_ms () + SPAWN_TIMEOUT_MS;
  for (;;)
    {
      struct pollfd p = { .fd = ready_r, .events = POLLIN };
      int r = poll (&p, 1, left_ms (deadline));
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          /* Do not leave a half-started monitor behind. */
          cleanup_free char *pid_path = skiff_strdup_printf ("%s/monitor.pid", dir);
          cleanup_free char *text = NULL;
          cleanup_error skiff_error_t e2 = NULL;
          if (monclient_monitor_alive (dir) && skiff_read_file (pid_path, 64, &text, NULL, &e2) == 0)
            kill (atoi (text), SIGKILL);
          return skiff_error_set (err, ETIMEDOUT, "monitor for `%s` not ready after %d ms", dir, SPAWN_TIMEOUT_MS);
        }
      char c;
      ssize_t n = read (ready_r, &c, 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 1)
        return 0;
      /* EOF without the byte: the monitor exited; its reason is the last log line. */
      cleanup_free char *why = last_log_line (log_path);
      return skiff_error_set (err, 0, "monitor for `%s` failed to start: %s", dir, why);
    }
}
