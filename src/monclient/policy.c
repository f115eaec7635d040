/* policy.c - restart policy, back-off and exit classification for skiff-monitor. */
#include "monclient/monlogic.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/util.h"

int
mon_policy_parse (const char *s, enum mon_policy *out)
{
  if (s == NULL)
    return -1;
  if (skiff_strcaseeq (s, "Always"))
    *out = MON_POLICY_ALWAYS;
  else if (skiff_strcaseeq (s, "OnFailure"))
    *out = MON_POLICY_ON_FAILURE;
  else if (skiff_strcaseeq (s, "Never"))
    *out = MON_POLICY_NEVER;
  else
    return -1;
  return 0;
}

const char *
mon_policy_name (enum mon_policy p)
{
  switch (p)
    {
    case MON_POLICY_ALWAYS:
      return "Always";
    case MON_POLICY_ON_FAILURE:
      return "OnFailure";
    case MON_POLICY_NEVER:
    default:
      return "Never";
    }
}

bool
mon_policy_should_restart (enum mon_policy p, bool init, int exit_code)
{
  switch (p)
    {
    case MON_POLICY_ALWAYS:
      return init ? exit_code != 0 : true;
    case MON_POLICY_ON_FAILURE:
      return exit_code != 0;
    case MON_POLICY_NEVER:
    default:
      return false;
    }
}

int64_t
mon_backoff_delay_ms (const struct mon_backoff *b, int n)
{
  int64_t initial = b->initial_ms > 0 ? b->initial_ms : 0;
  int64_t cap = b->max_ms > 0 ? b->max_ms : initial;
  if (n < 1)
    n = 1;
  int64_t d = initial;
  /* Double step by step and stop at the cap: no shift can overflow. */
  for (int i = 1; i < n && d < cap; i++)
    d = d > cap / 2 ? cap : d * 2;
  return d > cap ? cap : d;
}

int64_t
mon_backoff_next (const struct mon_backoff *b, int *consecutive, int64_t ran_ms)
{
  if (b->reset_after_ms > 0 && ran_ms > b->reset_after_ms)
    *consecutive = 0;
  if (*consecutive < 1000000)
    (*consecutive)++;
  return mon_backoff_delay_ms (b, *consecutive);
}

int
mon_exit_code (int wait_status)
{
  if (WIFEXITED (wait_status))
    return WEXITSTATUS (wait_status);
  if (WIFSIGNALED (wait_status))
    return 128 + WTERMSIG (wait_status);
  return 255;
}

int64_t
mon_parse_oom_kill (const char *text)
{
  if (text == NULL)
    return -1;
  const char *p = text;
  while (*p)
    {
      if (strncmp (p, "oom_kill ", 9) == 0)
        {
          char *end = NULL;
          long long v = strtoll (p + 9, &end, 10);
          if (end != p + 9 && v >= 0)
            return v;
        }
      const char *nl = strchr (p, '\n');
      if (nl == NULL)
        break;
      p = nl + 1;
    }
  return -1;
}

const char *
mon_detail_status (int exit_code, bool oom)
{
  if (oom)
    return "OOMKilled";
  return exit_code == 0 ? "Completed" : "Error";
}

int
mon_start_failure_code (const char *msg)
{
  if (msg == NULL)
    return 128;
  if (strstr (msg, "not found") || strstr (msg, "No such file"))
    return 127;
  if (strstr (msg, "ermission denied"))
    return 126;
  return 128;
}
