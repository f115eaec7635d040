/* monclient.h - skiffd's side of skiff-monitor: spawn it, talk to it, read its files.
 *
 * Every function is thread-safe (no shared state; fork is followed only by
 * async-signal-safe calls) and blocking with bounded waits. A group folder holds:
 *   monitor.json   written by skiffd before monclient_spawn (see monlogic.h)
 *   monitor.sock   the monitor's control socket (newline-delimited JSON)
 *   monitor.pid    the monitor's pid
 *   monitor.log    the monitor's own stderr
 *   state.json     {"phase","monitorPid","lastSeq","containers":[...]} after each change
 *   events.jsonl   one event per line, seq increasing
 *   logs/<name>.log (+ .1)   CRI-format container logs
 *
 * Errors meaning "the monitor is gone" carry status ENOENT (no socket) or
 * ECONNREFUSED (socket left behind, nobody listening), so callers can fall back to
 * monclient_read_state.
 */
#ifndef SKIFF_MONCLIENT_MONCLIENT_H
#define SKIFF_MONCLIENT_MONCLIENT_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"

/* Starts `monitor_bin <group_dir> --ready-fd 3` detached from the caller (double fork
 * and setsid, so it survives skiffd; stdin /dev/null, stdout and stderr appended to
 * <group_dir>/monitor.log, every other fd closed) and waits up to 10 s for it to be
 * ready (socket bound, pid file written). On failure the error carries the monitor's
 * last line in monitor.log (e.g. a monitor.json problem) and no monitor is left
 * running. Fails with EEXIST when a live monitor already serves the group. */
int monclient_spawn (const char *monitor_bin, const char *group_dir, skiff_error_t *err);

/* Sends one request object as a line on <group_dir>/monitor.sock and reads one reply
 * line (at most 16 MiB) into *reply (new reference). timeout_ms bounds the whole
 * exchange (<= 0: 30 s). A reply {"ok":false,"error":...} is still a success here:
 * callers inspect "ok". Monitor gone: status ENOENT or ECONNREFUSED; timeout:
 * ETIMEDOUT; connection closed without a reply: ECONNRESET. */
int monclient_request (const char *group_dir, json_t *request, int timeout_ms, json_t **reply, skiff_error_t *err);

/* A subscription: a connected socket plus the bytes of a partly read update. */
typedef struct monclient_sub_s monclient_sub_t;

/* Opens a subscription ({"op":"subscribe"}, waits up to 5 s for {"ok":true}) and
 * returns it in *sub_out. The monitor then pushes {"state":...,"events":[...]} after
 * every change. Poll monclient_sub_fd for input and call monclient_read_update. */
int monclient_subscribe (const char *group_dir, monclient_sub_t **sub_out, skiff_error_t *err);

/* Like monclient_subscribe, but does not wait for the monitor to answer (a busy monitor
 * never blocks the caller): the first update carries the current state and the events
 * after since_seq; the {"ok":true} line comes as an update without "state". */
int monclient_subscribe_from (const char *group_dir, int64_t since_seq, monclient_sub_t **sub_out, skiff_error_t *err);

/* The subscription's socket (non-blocking), for poll/epoll. Owned by the sub. */
int monclient_sub_fd (const monclient_sub_t *sub);

enum
{
  MONCLIENT_AGAIN = 0,  /* no complete update yet: wait for the fd to be readable */
  MONCLIENT_UPDATE = 1, /* *update holds one update (new reference) */
  MONCLIENT_EOF = 2,    /* the monitor closed the stream (it exited): *update is NULL */
};

/* Returns the next pushed update without blocking. Several updates may arrive in
 * one read: after the fd is readable, call until it returns MONCLIENT_AGAIN or
 * MONCLIENT_EOF. Updates longer than 16 MiB or not JSON are errors (negative). */
int monclient_read_update (monclient_sub_t *sub, json_t **update, skiff_error_t *err);

/* Closes the socket and frees the subscription. NULL is fine. */
void monclient_sub_free (monclient_sub_t *sub);

/* Opens an exec or attach stream: connects to the monitor socket at sock_path, sends
 * `request` ({"op":"exec","container":C,"argv":[...],"rows":R,"cols":N} or
 * {"op":"attach","container":C}) and reads the reply line (waits up to 12 s, a little
 * longer than the monitor gives the runtime). On {"ok":true} it returns the connected
 * socket (non-blocking, close-on-exec; also stored in *fd_out, owned by the caller),
 * positioned right after the reply line: from there on it carries raw bytes (exec: to
 * and from the pty; attach: the container's output, input ignored) until the monitor
 * closes it. An error reply gives -1 with an ARM error: 404 ContainerNotFound,
 * 409 ContainerNotRunning, 400 InvalidRequestContent, 429 TooManyRequests,
 * 500 ExecFailed (the runtime's message). A monitor that is not there (no socket,
 * nobody listening) gives 409 ContainerGroupNotRunning. */
int monclient_open_stream (const char *sock_path, json_t *request, int *fd_out, skiff_error_t *err);

/* Reads <group_dir>/state.json into *state (NULL when the file does not exist yet)
 * and the events with seq > since_seq from events.jsonl into *events (an array,
 * newest 10000 at most), without talking to the monitor. Either out pointer may be
 * NULL when not wanted. */
int monclient_read_state (const char *group_dir, int64_t since_seq, json_t **state, json_t **events,
                          skiff_error_t *err);

/* Returns 1 when the pid in <group_dir>/monitor.pid is alive and is a skiff-monitor
 * for this group folder (its /proc/PID/cmdline), else 0. */
int monclient_monitor_alive (const char *group_dir);

#endif
