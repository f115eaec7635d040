/* state.c - the group state machine: container statuses -> group instanceView.state. */
#include "model.h"

int
model_should_restart (model_restart_policy_t policy, int exit_code)
{
  switch (policy)
    {
    case MODEL_POLICY_ALWAYS:
      return 1;
    case MODEL_POLICY_ONFAILURE:
      return exit_code != 0;
    case MODEL_POLICY_NEVER:
      return 0;
    }
  return 0;
}

const char *
model_group_state (model_restart_policy_t policy, int stopped, int provisioning_failed,
                   const model_container_status_t *c, size_t n)
{
  if (stopped)
    return "Stopped";
  if (provisioning_failed)
    return policy == MODEL_POLICY_NEVER ? "Failed" : "Pending";
  if (n == 0)
    return "Pending";
  size_t running = 0, final = 0, failed = 0, unknown = 0;
  for (size_t i = 0; i < n; i++)
    {
      switch (c[i].state)
        {
        case MODEL_CSTATE_RUNNING:
          running++;
          break;
        case MODEL_CSTATE_TERMINATED:
          if (c[i].final)
            {
              final++;
              if (c[i].exit_code != 0)
                failed++;
            }
          else
            running++; /* about to be restarted: the group is still running */
          break;
        case MODEL_CSTATE_WAITING:
          /* Waiting after a first start means crash-loop back-off: the group runs. */
          running += c[i].exit_code == -1 ? 0 : 1;
          unknown += c[i].exit_code == -1 ? 1 : 0;
          break;
        case MODEL_CSTATE_UNKNOWN:
          unknown++;
          break;
        }
    }
  if (final == n)
    {
      /* Everything ended for good. */
      if (policy == MODEL_POLICY_NEVER && failed > 0)
        return "Failed";
      return "Succeeded";
    }
  if (unknown == n)
    return "Pending";
  return "Running";
}
