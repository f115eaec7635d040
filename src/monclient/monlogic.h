/* monlogic.h - the pure logic of skiff-monitor: restart policy and back-off, exit
 * classification, CRI log lines with rotation, state/event JSON and monitor.json.
 *
 * These functions do no process management, so unit tests link them from libskiff.a
 * and the monitor program compiles the same files (see src/monitor/shared.c).
 * Keep them free of threads and large buffers: they run inside every monitor.
 */
#ifndef SKIFF_MONCLIENT_MONLOGIC_H
#define SKIFF_MONCLIENT_MONLOGIC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* ---- restart policy and back-off (policy.c) ---- */

enum mon_policy
{
  MON_POLICY_ALWAYS,
  MON_POLICY_ON_FAILURE,
  MON_POLICY_NEVER,
};

/* Parses "Always", "OnFailure" or "Never" (ASCII case-insensitive) into *out.
 * Returns 0, or -1 (with *out untouched) for anything else, NULL included. */
int mon_policy_parse (const char *s, enum mon_policy *out);

/* Returns the canonical spelling of a policy ("Always", "OnFailure", "Never"). */
const char *mon_policy_name (enum mon_policy p);

/* Decides whether a container that exited with `exit_code` is started again.
 * Init containers never restart after a success: pass init=true for them, which
 * treats Always as OnFailure. */
bool mon_policy_should_restart (enum mon_policy p, bool init, int exit_code);

struct mon_backoff
{
  int64_t initial_ms;     /* delay before the first restart */
  int64_t max_ms;         /* cap on the delay */
  int64_t reset_after_ms; /* a run longer than this forgets earlier failures */
};

/* Delay before the n-th consecutive restart: initial_ms * 2^(n-1), capped at max_ms.
 * n < 1 counts as 1. Never overflows, whatever n is. */
int64_t mon_backoff_delay_ms (const struct mon_backoff *b, int n);

/* Called once per restart: resets *consecutive to 0 when the container ran longer
 * than reset_after_ms (ran_ms), then increments it and returns the delay to wait. */
int64_t mon_backoff_next (const struct mon_backoff *b, int *consecutive, int64_t ran_ms);

/* Exit code of a waitpid() status as shells show it: the exit status, or 128+signal. */
int mon_exit_code (int wait_status);

/* Finds the line "oom_kill N" in the text of cgroup v1 memory.oom_control or v2
 * memory.events and returns N; -1 when there is no such line. */
int64_t mon_parse_oom_kill (const char *text);

/* detailStatus of a termination: "OOMKilled" when oom, "Completed" for 0, else "Error". */
const char *mon_detail_status (int exit_code, bool oom);

/* Exit code recorded when the runtime could not start a container, from its error
 * message: 127 when the executable was not found, 126 when it could not be
 * executed (permission), 128 otherwise. NULL counts as "otherwise". */
int mon_start_failure_code (const char *runtime_msg);

/* ---- CRI log lines (logfmt.c) ---- */

/* Longest line content written as one log entry; longer lines are split into
 * entries tagged P (partial) followed by one tagged F. */
#define MON_LOG_LINE_MAX 16384

enum mon_stream
{
  MON_STDOUT = 0,
  MON_STDERR = 1,
};

/* Writes "<RFC3339Nano UTC> stdout|stderr F|P " into buf (>= 64 bytes) and returns
 * its length (without NUL). */
size_t mon_log_prefix (char *buf, size_t len, int64_t ns, enum mon_stream stream, bool partial);

/* One container's log file, capped at max_bytes with one rotated file "<path>.1". */
struct mon_log
{
  int fd;
  char *path;
  int64_t size;
  int64_t max_bytes;
};

/* Opens (appends to) path; max_bytes <= 0 means no cap. On failure l->fd stays -1. */
int mon_log_open (struct mon_log *l, const char *path, int64_t max_bytes, skiff_error_t *err);

/* Writes one entry whose content is a followed by b (either may be empty). Rotates
 * first when the entry would take the file past max_bytes (a non-empty file only,
 * so an entry longer than the cap still gets written). */
int mon_log_write (struct mon_log *l, int64_t ns, enum mon_stream stream, bool partial, const char *a, size_t alen,
                   const char *b, size_t blen, skiff_error_t *err);

/* Closes the file and frees the path. Safe to call twice. */
void mon_log_close (struct mon_log *l);

/* Reassembles lines from a byte stream. Holds at most MON_LOG_LINE_MAX bytes; the
 * buffer is allocated only while a line is incomplete, so idle streams cost nothing. */
struct mon_linebuf
{
  char *buf;
  size_t len;
  size_t cap;
};

/* Receives one entry: content a+b (no newline), partial when it was cut at the cap. */
typedef int (*mon_line_cb) (void *opaque, const char *a, size_t alen, const char *b, size_t blen, bool partial);

/* Feeds bytes; calls cb for each complete line and each MON_LOG_LINE_MAX piece of an
 * over-long one. Returns 0 or the first negative value cb returned (or -1 on ENOMEM). */
int mon_linebuf_feed (struct mon_linebuf *lb, const char *data, size_t len, mon_line_cb cb, void *opaque);

/* At end of stream: hands any incomplete last line to cb as a full (F) entry. */
int mon_linebuf_flush (struct mon_linebuf *lb, mon_line_cb cb, void *opaque);

/* Frees the buffer. */
void mon_linebuf_free (struct mon_linebuf *lb);

/* ---- state and events (monstate.c) ---- */

/* New ACI container states. Times are ns since the epoch, written with
 * skiff_format_time; detail may be NULL (then ""). Never NULL (aborts on ENOMEM). */
json_t *mon_state_running (int64_t start_ns);
json_t *mon_state_terminated (int64_t start_ns, int64_t finish_ns, int exit_code, const char *detail);
json_t *mon_state_waiting (const char *detail);

/* New event object {"seq","container","name","type","message","timestamp"}. */
json_t *mon_event_new (int64_t seq, const char *container, const char *name, const char *type, const char *message,
                       int64_t ns);

/* Reads an events.jsonl file: appends to *events (a new array when *events is NULL)
 * the events with seq > since, keeping only the newest `max` of them, and stores the
 * highest seq seen in the whole file in *last_seq (0 for none; may be NULL). A
 * missing file is an empty log. Unparsable lines (a torn last write) are skipped. */
int mon_events_read (const char *path, int64_t since, size_t max, json_t **events, int64_t *last_seq,
                     skiff_error_t *err);

/* ---- monitor.json (monstate.c) ---- */

struct mon_ctr_config
{
  char *name;
  char *id;
  char *bundle;
  char *memory_cgroup; /* NULL when not given or empty */
  bool init;
};

struct mon_config
{
  char *group;
  char *runtime;
  char *runtime_root;
  enum mon_policy policy;
  struct mon_backoff backoff;
  int64_t stop_grace_s;
  int64_t log_max_bytes;
  size_t n_ctrs; /* init containers first, in order, then the containers */
  struct mon_ctr_config *ctrs;
};

/* Maximum number of containers (init included) one group may have. */
#define MON_MAX_CONTAINERS 64

/* Fills cfg from a parsed monitor.json, applying defaults (policy Always, back-off
 * 10 s / 300 s / 600 s, grace 10 s, logs 4 MiB). Names and ids must be 1..128
 * characters of [A-Za-z0-9._-], not starting with '.'; names unique; bundle absolute.
 * On failure cfg is left empty (nothing to free). */
int mon_config_parse (const json_t *j, struct mon_config *cfg, skiff_error_t *err);

/* Reads and parses the file (at most 1 MiB). */
int mon_config_load (const char *path, struct mon_config *cfg, skiff_error_t *err);

/* Frees everything cfg owns and zeroes it. */
void mon_config_free (struct mon_config *cfg);

#endif
