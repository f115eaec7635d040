/* monstate.c - container state and event JSON, the events.jsonl reader and the
 * monitor.json parser shared by skiff-monitor and its clients. */
#include "monclient/monlogic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

static json_t *
must (json_t *j)
{
  if (j == NULL)
    abort ();
  return j;
}

static json_t *
time_str (int64_t ns)
{
  char buf[40];
  return json_string (skiff_format_time (ns, buf, sizeof (buf)));
}

json_t *
mon_state_running (int64_t start_ns)
{
  return must (json_pack ("{s:s, s:o, s:s}", "state", "Running", "startTime", time_str (start_ns), "detailStatus", ""));
}

json_t *
mon_state_terminated (int64_t start_ns, int64_t finish_ns, int exit_code, const char *detail)
{
  json_t *j = must (json_pack ("{s:s, s:i, s:o, s:s}", "state", "Terminated", "exitCode", exit_code, "finishTime",
                               time_str (finish_ns), "detailStatus", detail ? detail : ""));
  if (start_ns > 0)
    json_object_set_new (j, "startTime", time_str (start_ns));
  return j;
}

json_t *
mon_state_waiting (const char *detail)
{
  return must (json_pack ("{s:s, s:s}", "state", "Waiting", "detailStatus", detail ? detail : ""));
}

json_t *
mon_event_new (int64_t seq, const char *container, const char *name, const char *type, const char *message, int64_t ns)
{
  return must (json_pack ("{s:I, s:s, s:s, s:s, s:s, s:o}", "seq", (json_int_t)seq, "container",
                          container ? container : "", "name", name, "type", type, "message", message ? message : "",
                          "timestamp", time_str (ns)));
}

int
mon_events_read (const char *path, int64_t since, size_t max, json_t **events, int64_t *last_seq, skiff_error_t *err)
{
  if (last_seq)
    *last_seq = 0;
  if (*events == NULL)
    *events = must (json_array ());
  size_t base = json_array_size (*events);
  cleanup_file FILE *f = fopen (path, "re");
  if (f == NULL)
    {
      if (errno == ENOENT)
        return 0;
      return skiff_error_set (err, errno, "open `%s`", path);
    }
  cleanup_free char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline (&line, &cap, f)) > 0)
    {
      json_t *ev = json_loadb (line, (size_t)n, JSON_DISABLE_EOF_CHECK, NULL);
      if (ev == NULL)
        continue;
      json_t *s = json_object_get (ev, "seq");
      if (!json_is_integer (s))
        {
          json_decref (ev);
          continue;
        }
      int64_t seq = json_integer_value (s);
      if (last_seq && seq > *last_seq)
        *last_seq = seq;
      if (seq > since && max > 0)
        {
          if (json_array_size (*events) - base >= max)
            json_array_remove (*events, base);
          json_array_append (*events, ev);
        }
      json_decref (ev);
    }
  if (ferror (f))
    return skiff_error_set (err, EIO, "read `%s`", path);
  return 0;
}

static bool
valid_token (const char *s)
{
  size_t n = s ? strlen (s) : 0;
  if (n == 0 || n > 128 || s[0] == '.')
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = s[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_'
            || c == '-'))
        return false;
    }
  return true;
}

static int64_t
get_int (const json_t *obj, const char *key, int64_t def)
{
  json_t *v = json_object_get (obj, key);
  return json_is_integer (v) ? (int64_t)json_integer_value (v) : def;
}

static int
parse_ctrs (const json_t *arr, bool init, struct mon_config *cfg, skiff_error_t *err)
{
  if (arr == NULL || json_is_null (arr))
    return 0;
  if (!json_is_array (arr))
    return skiff_error_set (err, EINVAL, "%s must be an array", init ? "initContainers" : "containers");
  size_t i;
  json_t *c;
  json_array_foreach (arr, i, c)
  {
    if (cfg->n_ctrs >= MON_MAX_CONTAINERS)
      return skiff_error_set (err, E2BIG, "more than %d containers", MON_MAX_CONTAINERS);
    const char *name = json_string_value (json_object_get (c, "name"));
    const char *id = json_string_value (json_object_get (c, "id"));
    const char *bundle = json_string_value (json_object_get (c, "bundle"));
    const char *cg = json_string_value (json_object_get (c, "memoryCgroup"));
    if (!valid_token (name))
      return skiff_error_set (err, EINVAL, "invalid container name `%s`", name ? name : "");
    if (!valid_token (id))
      return skiff_error_set (err, EINVAL, "invalid container id `%s`", id ? id : "");
    if (bundle == NULL || bundle[0] != '/')
      return skiff_error_set (err, EINVAL, "container `%s`: bundle must be an absolute path", name);
    if (cg && cg[0] != '\0' && cg[0] != '/')
      return skiff_error_set (err, EINVAL, "container `%s`: memoryCgroup must be an absolute path", name);
    for (size_t k = 0; k < cfg->n_ctrs; k++)
      if (strcmp (cfg->ctrs[k].name, name) == 0 || strcmp (cfg->ctrs[k].id, id) == 0)
        return skiff_error_set (err, EINVAL, "duplicate container name or id `%s`", name);
    struct mon_ctr_config *cc = &cfg->ctrs[cfg->n_ctrs++];
    cc->name = skiff_strdup (name);
    cc->id = skiff_strdup (id);
    cc->bundle = skiff_strdup (bundle);
    cc->memory_cgroup = (cg && cg[0]) ? skiff_strdup (cg) : NULL;
    cc->init = init;
  }
  return 0;
}

int
mon_config_parse (const json_t *j, struct mon_config *cfg, skiff_error_t *err)
{
  memset (cfg, 0, sizeof (*cfg));
  if (!json_is_object (j))
    return skiff_error_set (err, EINVAL, "monitor config must be a JSON object");
  const char *group = json_string_value (json_object_get (j, "group"));
  const char *runtime = json_string_value (json_object_get (j, "runtime"));
  const char *root = json_string_value (json_object_get (j, "runtimeRoot"));
  const char *policy = json_string_value (json_object_get (j, "restartPolicy"));
  if (runtime == NULL || runtime[0] != '/')
    return skiff_error_set (err, EINVAL, "runtime must be an absolute path");
  if (root == NULL || root[0] != '/')
    return skiff_error_set (err, EINVAL, "runtimeRoot must be an absolute path");
  enum mon_policy p = MON_POLICY_ALWAYS;
  if (policy && mon_policy_parse (policy, &p) < 0)
    return skiff_error_set (err, EINVAL, "unknown restartPolicy `%s`", policy);
  json_t *bo = json_object_get (j, "backoff");
  struct mon_backoff b = {
    .initial_ms = get_int (bo, "initialMs", 10000),
    .max_ms = get_int (bo, "maxMs", 300000),
    .reset_after_ms = get_int (bo, "resetAfterMs", 600000),
  };
  if (b.initial_ms < 0 || b.max_ms < 0 || b.reset_after_ms < 0)
    return skiff_error_set (err, EINVAL, "backoff values must not be negative");
  int64_t grace = get_int (j, "stopGraceSeconds", 10);
  int64_t log_max = get_int (j, "logMaxBytes", 4194304);
  if (grace < 0 || grace > 86400)
    return skiff_error_set (err, EINVAL, "stopGraceSeconds out of range");

  struct mon_config c = { 0 };
  c.ctrs = calloc (MON_MAX_CONTAINERS, sizeof (*c.ctrs));
  if (c.ctrs == NULL)
    return skiff_error_set (err, ENOMEM, "monitor config");
  if (parse_ctrs (json_object_get (j, "initContainers"), true, &c, err) < 0
      || parse_ctrs (json_object_get (j, "containers"), false, &c, err) < 0)
    {
      mon_config_free (&c);
      return -1;
    }
  c.group = skiff_strdup (group ? group : "");
  c.runtime = skiff_strdup (runtime);
  c.runtime_root = skiff_strdup (root);
  c.policy = p;
  c.backoff = b;
  c.stop_grace_s = grace;
  c.log_max_bytes = log_max;
  *cfg = c;
  return 0;
}

int
mon_config_load (const char *path, struct mon_config *cfg, skiff_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len = 0;
  memset (cfg, 0, sizeof (*cfg));
  if (skiff_read_file (path, 1 << 20, &data, &len, err) < 0)
    return -1;
  json_error_t jerr;
  cleanup_json json_t *j = json_loadb (data, len, 0, &jerr);
  if (j == NULL)
    return skiff_error_set (err, EINVAL, "parse `%s`: %s (line %d)", path, jerr.text, jerr.line);
  if (mon_config_parse (j, cfg, err) < 0)
    return skiff_error_wrap (err, "`%s`", path);
  return 0;
}

void
mon_config_free (struct mon_config *cfg)
{
  for (size_t i = 0; i < cfg->n_ctrs; i++)
    {
      free (cfg->ctrs[i].name);
      free (cfg->ctrs[i].id);
      free (cfg->ctrs[i].bundle);
      free (cfg->ctrs[i].memory_cgroup);
    }
  free (cfg->ctrs);
  free (cfg->group);
  free (cfg->runtime);
  free (cfg->runtime_root);
  memset (cfg, 0, sizeof (*cfg));
}
