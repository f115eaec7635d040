/* watch.c - follows every live skiff-monitor over its socket and folds what it
 * reports (container states, events) into the store. No polling: one epoll loop. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "agent_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "model/model.h"
#include "monclient/monclient.h"

static model_container_status_t
status_of (json_t *c, model_restart_policy_t pol, int exited)
{
  model_container_status_t s = { MODEL_CSTATE_UNKNOWN, -1, 0 };
  json_t *cur = json_object_get (c, "currentState");
  const char *st = json_string_value (json_object_get (cur, "state"));
  if (st == NULL)
    return s;
  if (!strcmp (st, "Running"))
    s.state = MODEL_CSTATE_RUNNING;
  else if (!strcmp (st, "Terminated"))
    {
      s.state = MODEL_CSTATE_TERMINATED;
      s.exit_code = (int)json_integer_value (json_object_get (cur, "exitCode"));
      s.final = exited || !model_should_restart (pol, s.exit_code);
    }
  else if (!strcmp (st, "Waiting"))
    {
      s.state = MODEL_CSTATE_WAITING;
      const char *d = json_string_value (json_object_get (cur, "detailStatus"));
      s.exit_code
          = (d && strcmp (d, "CrashLoopBackOff") == 0) || json_integer_value (json_object_get (c, "restartCount")) > 0
                ? 0
                : -1;
    }
  return s;
}

void
agent_apply_monitor_state (agent_t *a, const char *group_id, json_t *state, json_t *events, int old_run)
{
  store_group_t g = { 0 };
  if (store_group_get_by_id (a->store, group_id, &g, NULL) < 0 || g.id == NULL)
    return;
  size_t i;
  json_t *e;
  int64_t last_seq = -1;
  json_array_foreach (events, i, e)
  {
    int64_t seq = json_integer_value (json_object_get (e, "seq"));
    if (seq <= g.monitor_seq)
      continue;
    int64_t ts = skiff_parse_time (json_string_value (json_object_get (e, "timestamp")));
    store_event_add (a->store, group_id, json_string_value (json_object_get (e, "container")),
                     json_string_value (json_object_get (e, "name")) ?: "Event",
                     json_string_value (json_object_get (e, "type")) ?: "Normal",
                     json_string_value (json_object_get (e, "message")) ?: "", ts > 0 ? ts : skiff_now_ns (), 0, NULL);
    if (seq > last_seq)
      last_seq = seq;
  }
  if (state == NULL)
    {
      if (last_seq >= 0)
        store_group_set_status (a->store, group_id, NULL, NULL, NULL, last_seq, NULL);
      store_group_clear (&g);
      return;
    }
  json_int_t state_seq = json_integer_value (json_object_get (state, "lastSeq"));
  if (state_seq > last_seq)
    last_seq = state_seq;
  const char *phase = json_string_value (json_object_get (state, "phase"));
  int exited = phase && !strcmp (phase, "Exited");
  model_restart_policy_t pol = MODEL_POLICY_ALWAYS;
  model_parse_restart_policy (
      json_string_value (json_object_get (json_object_get (g.spec, "properties"), "restartPolicy")), &pol);
  json_t *view = json_object ();
  json_t *cs = json_object_get (state, "containers");
  size_t n = json_array_size (cs), k = 0;
  model_container_status_t *st = calloc (n + 1, sizeof (*st));
  if (st == NULL)
    abort ();
  int all_started = 1, init_failed = 0;
  json_t *c;
  json_array_foreach (cs, i, c)
  {
    const char *name = json_string_value (json_object_get (c, "name"));
    if (name == NULL)
      continue;
    json_t *v = json_pack ("{s:I}", "restartCount", json_integer_value (json_object_get (c, "restartCount")));
    if (json_object_get (c, "currentState"))
      json_object_set (v, "currentState", json_object_get (c, "currentState"));
    if (json_is_object (json_object_get (c, "previousState")))
      json_object_set (v, "previousState", json_object_get (c, "previousState"));
    json_object_set_new (view, name, v);
    if (json_is_true (json_object_get (c, "init")))
      {
        /* an init container that failed for good ends the group before it starts */
        json_t *cur = json_object_get (c, "currentState");
        if (skiff_strcaseeq (json_string_value (json_object_get (cur, "state")), "Terminated")
            && json_integer_value (json_object_get (cur, "exitCode")) != 0 && (exited || pol == MODEL_POLICY_NEVER))
          init_failed = 1;
        continue;
      }
    st[k] = status_of (c, pol, exited);
    if (st[k].state == MODEL_CSTATE_UNKNOWN || (st[k].state == MODEL_CSTATE_WAITING && st[k].exit_code == -1))
      all_started = 0;
    k++;
  }
  int stopped = strcmp (g.desired, "Stopped") == 0 || (phase && !strcmp (phase, "Stopped"));
  const char *gstate = model_group_state (pol, stopped, init_failed, st, k);
  free (st);
  const char *prov = NULL;
  if (!old_run && (!strcmp (g.provisioning_state, "Pending") || !strcmp (g.provisioning_state, "Creating"))
      && (all_started || exited || init_failed))
    {
      prov = "Succeeded";
      store_op_finish_group (a->store, group_id, "Succeeded", NULL, NULL);
    }
  if (strcmp (g.desired, "Deleted") != 0)
    store_group_set_status (a->store, group_id, prov, gstate, view, last_seq, NULL);
  json_decref (view);
  store_group_clear (&g);
}

static watch_t *
find_watch (agent_t *a, const char *group_id)
{
  for (watch_t *w = a->watches; w; w = w->next)
    if (strcmp (w->group_id, group_id) == 0)
      return w;
  return NULL;
}

int
agent_watch_group (agent_t *a, const char *group_id, skiff_error_t *err)
{
  pthread_mutex_lock (&a->watch_lock);
  int have = find_watch (a, group_id) != NULL;
  pthread_mutex_unlock (&a->watch_lock);
  if (have)
    return 0;
  cleanup_free char *gdir = agent_group_dir (a, group_id);
  /* The subscription itself catches up from the last event stored, so this never waits
     for a monitor that is busy starting containers. */
  store_group_t g = { 0 };
  if (store_group_get_by_id (a->store, group_id, &g, err) < 0)
    return -1;
  int64_t since = g.monitor_seq;
  store_group_clear (&g);
  monclient_sub_t *sub = NULL;
  if (monclient_subscribe_from (gdir, since, &sub, err) < 0)
    return -1;
  int fd = monclient_sub_fd (sub);
  watch_t *w = calloc (1, sizeof (*w));
  if (w == NULL)
    abort ();
  w->group_id = skiff_strdup (group_id);
  w->fd = fd;
  w->sub = sub;
  pthread_mutex_lock (&a->watch_lock);
  if (find_watch (a, group_id))
    {
      pthread_mutex_unlock (&a->watch_lock);
      monclient_sub_free (sub);
      free (w->group_id);
      free (w);
      return 0;
    }
  w->next = a->watches;
  a->watches = w;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = w };
  epoll_ctl (a->epfd, EPOLL_CTL_ADD, fd, &ev);
  pthread_mutex_unlock (&a->watch_lock);

  return 0;
}

static void
free_watch (watch_t *w)
{
  monclient_sub_free (w->sub);
  free (w->group_id);
  free (w);
}

void
agent_unwatch_group (agent_t *a, const char *group_id)
{
  pthread_mutex_lock (&a->watch_lock);
  for (watch_t **pp = &a->watches; *pp; pp = &(*pp)->next)
    if (strcmp ((*pp)->group_id, group_id) == 0)
      {
        watch_t *w = *pp;
        *pp = w->next;
        epoll_ctl (a->epfd, EPOLL_CTL_DEL, w->fd, NULL);
        free_watch (w);
        break;
      }
  pthread_mutex_unlock (&a->watch_lock);
}

/* Applies every update available without blocking. Returns 1 at EOF or error. */
static int
pump (agent_t *a, watch_t *w)
{
  for (;;)
    {
      json_t *u = NULL;
      skiff_error_t e = NULL;
      int r = monclient_read_update (w->sub, &u, &e);
      if (r < 0)
        {
          log_warn ("group %s: monitor stream: %s", w->group_id, e->msg);
          skiff_error_release (&e);
          return 1;
        }
      if (r == MONCLIENT_AGAIN)
        return 0;
      if (r == MONCLIENT_EOF)
        return 1;
      if (json_object_get (u, "state"))
        agent_apply_monitor_state (a, w->group_id, json_object_get (u, "state"), json_object_get (u, "events"), 0);
      json_decref (u);
    }
}

void *
agent_watch_main (void *arg)
{
  agent_t *a = arg;
  struct epoll_event evs[32];
  for (;;)
    {
      int n = epoll_wait (a->epfd, evs, 32, -1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      for (int i = 0; i < n; i++)
        {
          if (evs[i].data.ptr == NULL)
            return NULL; /* wake_fd: stopping */
          watch_t *w = evs[i].data.ptr;
          pthread_mutex_lock (&a->watch_lock);
          int known = 0;
          for (watch_t *x = a->watches; x; x = x->next)
            known |= x == w;
          if (!known)
            {
              pthread_mutex_unlock (&a->watch_lock);
              continue;
            }
          int eof = pump (a, w);
          cleanup_free char *gid = eof ? skiff_strdup (w->group_id) : NULL;
          pthread_mutex_unlock (&a->watch_lock);
          if (eof)
            {
              /* The monitor closed: it stopped, finished, or died. Let the reconciler decide. */
              agent_unwatch_group (a, gid);
              agent_notify (a, gid);
            }
        }
    }
  return NULL;
}
