/* streams.c - exec and attach streams of a running group, served by its skiff-monitor
 * (see src/monitor/stream.c for the protocol). */
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "agent_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "monclient/monclient.h"

#define MAX_ARGV 256
#define MAX_ARGV_BYTES (64 * 1024)

/* Sends request to the group's monitor and returns the stream socket. */
static int
open_stream (agent_t *a, const char *group_id, json_t *request, int *fd_out, skiff_error_t *err)
{
  *fd_out = -1;
  if (a == NULL)
    return skiff_error_arm (err, 409, "ContainerGroupNotRunning", "the container group is not running");
  if (group_id == NULL || group_id[0] == '\0' || strchr (group_id, '/') || strcmp (group_id, ".") == 0
      || strcmp (group_id, "..") == 0)
    return skiff_error_set (err, EINVAL, "bad group id");
  cleanup_free char *dir = agent_group_dir (a, group_id);
  cleanup_free char *sock = skiff_strdup_printf ("%s/monitor.sock", dir);
  if (monclient_open_stream (sock, request, fd_out, err) < 0)
    return -1;
  return 0;
}

int
agent_exec_open (agent_t *a, const char *group_id, const char *container, char *const *argv, int rows, int cols,
                 int *fd_out, skiff_error_t *err)
{
  *fd_out = -1;
  if (argv == NULL || argv[0] == NULL)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "the command is empty");
  cleanup_json json_t *args = json_array ();
  size_t n = 0, total = 0;
  for (; argv[n]; n++)
    {
      total += strlen (argv[n]) + 1;
      if (n >= MAX_ARGV || total > MAX_ARGV_BYTES)
        return skiff_error_arm (err, 400, "InvalidRequestContent", "the command has more than %d words or 64 KiB",
                                MAX_ARGV);
      json_array_append_new (args, json_string (argv[n]));
    }
  if (rows < 0 || rows > 65535 || cols < 0 || cols > 65535)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "the terminal size is out of range");
  cleanup_json json_t *req = json_pack ("{s:s, s:s, s:O, s:i, s:i}", "op", "exec", "container", container, "argv", args,
                                        "rows", rows, "cols", cols);
  if (req == NULL)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "the command is not valid UTF-8");
  return open_stream (a, group_id, req, fd_out, err);
}

int
agent_attach_open (agent_t *a, const char *group_id, const char *container, int *fd_out, skiff_error_t *err)
{
  cleanup_json json_t *req = json_pack ("{s:s, s:s}", "op", "attach", "container", container);
  if (req == NULL)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "bad container name");
  return open_stream (a, group_id, req, fd_out, err);
}
