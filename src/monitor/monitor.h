/* monitor.h - internals of skiff-monitor, shared by its files (not a public API).
 *
 * One process per container group. Single-threaded: one epoll loop over a signalfd
 * (SIGCHLD, SIGTERM, SIGINT), one timerfd (back-off and stop deadlines), the listening
 * socket, its clients and the containers' stdout/stderr pipes. Every change of state
 * marks the monitor dirty; the loop then writes state.json once and pushes one update
 * to the subscribers (mon_publish).
 */
#ifndef SKIFF_MONITOR_MONITOR_H
#define SKIFF_MONITOR_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "monclient/monlogic.h"

enum watch_kind
{
  W_SIGNAL,
  W_TIMER,
  W_LISTEN,
  W_CLIENT,
  W_PIPE,
  W_CONSOLE, /* an exec session's console socket (listening, then the runtime's connection) */
  W_PTY,     /* an exec session's pty master */
};

/* What an epoll event points at. */
struct watch
{
  enum watch_kind kind;
  int stream; /* W_PIPE: MON_STDOUT or MON_STDERR */
  void *obj;  /* W_PIPE: struct ctr; W_CLIENT: struct client; W_CONSOLE, W_PTY: struct exec_sess */
};

enum ctr_status
{
  CS_IDLE,    /* not started in this round */
  CS_RUNNING, /* its init process is alive */
  CS_BACKOFF, /* waiting to be started again */
  CS_DONE,    /* terminated for good (or stopped) */
};

struct ctr
{
  struct mon_ctr_config *cfg;
  enum ctr_status status;
  int restart_count;
  int consecutive; /* consecutive restarts, for the back-off */
  int last_exit;
  int64_t oom_base; /* OOM kills already counted in its cgroup before this run */
  pid_t pid;
  int64_t start_ns;   /* wall clock of the current run */
  int64_t start_mono; /* monotonic clock of the current run */
  int64_t restart_at; /* monotonic deadline in CS_BACKOFF */
  json_t *cur;        /* currentState */
  json_t *prev;       /* previousState or NULL */
  int pipe_fd[2];     /* read ends of stdout and stderr, -1 when closed */
  struct watch pipe_w[2];
  struct mon_linebuf lines[2];
  struct mon_log log;
};

enum client_mode
{
  CM_CONTROL, /* newline-delimited JSON requests and replies */
  CM_EXEC,    /* an exec session: raw bytes to and from a pty (after the reply line) */
  CM_ATTACH,  /* raw stdout/stderr bytes of one container; input is discarded */
};

struct exec_sess;

struct client
{
  int fd;
  struct watch w;
  enum client_mode mode;
  uint32_t ev_mask;     /* the events it is watched for now */
  struct exec_sess *ex; /* CM_EXEC */
  struct ctr *att;      /* CM_ATTACH */
  char *in;
  size_t in_len;
  char *out;
  size_t out_len;
  bool subscribed;
  bool waiting; /* owes a reply when the current stop/restart completes */
  bool closing; /* close once out is flushed */
  bool dead;    /* closed; freed by sock_sweep at the end of the loop turn */
  struct client *next;
};

enum mon_op
{
  OP_NONE,
  OP_STOP,    /* stop every container, then exit */
  OP_RESTART, /* stop every container, then start the group again */
};

struct monitor
{
  struct mon_config cfg;
  char *dir; /* absolute group folder; also the working directory */
  struct ctr *ctrs;
  size_t n;
  int epfd, sigfd, timerfd, listen_fd;
  struct watch sig_w, timer_w, listen_w;
  const char *phase;
  bool main_started; /* the (non-init) containers were started in this round */
  int64_t seq;
  json_t *pending_events; /* events not yet pushed to subscribers */
  bool dirty;
  enum mon_op op;
  bool op_done;    /* a stop/restart finished: reply once state.json is written */
  int64_t kill_at; /* monotonic deadline for SIGKILL during a stop */
  bool killed;
  struct client *clients;
  struct exec_sess *execs; /* exec sessions, NULL when none */
  bool exiting;
};

extern struct monitor M;

/* ctr.c */
void ctr_init (struct ctr *c, struct mon_ctr_config *cfg);
void ctr_start (struct ctr *c);
void ctr_reaped (struct ctr *c, int wait_status);
void ctr_pipe_ready (struct ctr *c, int stream);
void ctr_close_pipes (struct ctr *c);
int ctr_kill (struct ctr *c, const char *sig);
void ctr_delete (struct ctr *c);
/* The runtime's own error message from its --log file (last line), or a description of
 * the wait status st (-1: could not run). Owned by the caller. */
char *ctr_runtime_error (const char *log_path, int st);
/* The --log option for the configured runtime (crun takes a driver prefix). Owned. */
char *ctr_runtime_log_opt (const char *log_path);

/* main.c */
void mon_event (const char *container, const char *name, const char *type, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
void mon_set_phase (const char *phase);
void mon_advance (void);
void mon_stop (enum mon_op op, int64_t grace_s);
void mon_op_progress (void);
json_t *mon_state_json (void);
int mon_watch (int fd, uint32_t events, struct watch *w);

/* sock.c */
#define SOCK_STREAM_MAX_OUT (256 * 1024) /* pending bytes a stream client may lag behind */
int sock_listen (skiff_error_t *err);
void sock_accept (void);
void sock_client_ready (struct client *cl, uint32_t events);
void sock_publish (json_t *state);
void sock_op_done (const char *error);
void sock_close_all (void);
void sock_sweep (void);
/* Queues a JSON reply line / raw bytes and flushes what the socket takes. sock_send_raw
 * returns -1 (and queues nothing) when that would put more than `cap` bytes pending. */
void sock_send_json (struct client *cl, json_t *j);
int sock_send_raw (struct client *cl, const void *data, size_t len, size_t cap);
/* An error reply {"ok":false,"error":msg,"code":code}, then the connection is closed. */
void sock_fail (struct client *cl, const char *code, const char *msg);
/* Re-computes which events the client is watched for (after its buffers changed). */
void sock_rearm (struct client *cl);
/* Closes once the pending output is written. */
void sock_close_after_flush (struct client *cl);
void sock_client_close (struct client *cl);

/* stream.c: exec sessions and attached clients */
void exec_request (struct client *cl, json_t *req);
void attach_request (struct client *cl, json_t *req);
void exec_console_ready (struct exec_sess *ex);
void exec_pty_ready (struct exec_sess *ex, uint32_t events);
/* Input from an exec client (data already received, e.g. after the request line). */
void exec_client_input (struct exec_sess *ex, const char *data, size_t len);
/* Reads an exec client's socket into the pty's input buffer. */
void exec_client_read (struct client *cl);
/* Whether an exec client should be watched for input (its pty input buffer has room). */
bool exec_wants_input (const struct exec_sess *ex);
/* The client of an exec session is closing or closed. */
void exec_client_gone (struct exec_sess *ex);
/* The client's output buffer drained: the pty may be read again. */
void exec_client_drained (struct exec_sess *ex);
/* Returns true when pid was an exec session's runtime process (and handles its exit). */
bool exec_reaped (pid_t pid, int wait_status);
/* The earliest exec deadline (monotonic ns), 0 when none; exec_timer acts on due ones. */
int64_t exec_next_deadline (void);
void exec_timer (int64_t now);
/* Ends every session (the monitor exits): kills their processes, frees them. */
void exec_close_all (void);
/* Frees the sessions that ended in this loop turn (events may still point at them). */
void exec_sweep (void);
/* Raw container output for the attached clients of c. */
void attach_feed (struct ctr *c, const char *data, size_t len);
/* The run of c ended: its attached clients get their pending bytes and are closed. */
void attach_end (struct ctr *c);

#endif
