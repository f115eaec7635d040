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
};

/* What an epoll event points at. */
struct watch
{
  enum watch_kind kind;
  int stream; /* W_PIPE: MON_STDOUT or MON_STDERR */
  void *obj;  /* W_PIPE: struct ctr; W_CLIENT: struct client */
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

struct client
{
  int fd;
  struct watch w;
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
int sock_listen (skiff_error_t *err);
void sock_accept (void);
void sock_client_ready (struct client *cl, uint32_t events);
void sock_publish (json_t *state);
void sock_op_done (const char *error);
void sock_close_all (void);
void sock_sweep (void);

#endif
