/* agent_internal.h - shared between the agent's files; not part of its surface. */
#ifndef SKIFF_AGENT_INTERNAL_H
#define SKIFF_AGENT_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "agent.h"
#include "image/image.h"
#include "runtime/runtime.h"
#include "store/store.h"

#define AGENT_MAX_WORKERS 16

typedef struct watch
{
  struct watch *next;
  char *group_id;
  int fd;
  struct monclient_sub_s *sub;
} watch_t;

struct agent
{
  agent_config_t cfg; /* strings owned */
  char *runtime_root;
  store_t *store;
  image_store_t *images;
  pthread_rwlock_t images_lock; /* read: a create between pulling and recording its images; write: prune */
  runtime_config_t rcfg;
  runtime_host_t host;

  pthread_mutex_t lock;
  pthread_cond_t cond;
  char **queue; /* pending group ids (unique) */
  size_t queue_n, queue_cap;
  char **busy; /* ids being reconciled */
  size_t busy_n;
  int stopping;
  pthread_t workers[AGENT_MAX_WORKERS];
  int n_workers;

  /* monitor watcher */
  int epfd;
  int wake_fd; /* eventfd to stop the watcher */
  pthread_t watcher;
  pthread_mutex_t watch_lock;
  watch_t *watches;
};

/* Writes the host-side interface name of a group's veth ("sk" and 13 hex digits of its id) into
 * buf (>= 16 bytes) and returns buf. */
const char *agent_net_ifname (const char *group_id, char *buf);

/* Returns the data folder. */
const char *agent_data_dir (agent_t *a);

/* Group folder path (owned). */
char *agent_group_dir (agent_t *a, const char *group_id);

/* Reconciles one group (worker thread). */
void agent_reconcile (agent_t *a, const char *group_id);

/* Starts following a live monitor (idempotent) and catches up from the store's monitor_seq. */
int agent_watch_group (agent_t *a, const char *group_id, skiff_error_t *err);
/* Stops following (if followed). */
void agent_unwatch_group (agent_t *a, const char *group_id);
/* Applies a monitor state object and new events to the store. old_run: the state is the
 * last word of a run being stopped, so it must not complete the group's current operation. */
void agent_apply_monitor_state (agent_t *a, const char *group_id, json_t *state, json_t *events, int old_run);
/* Runs the watcher loop (thread body). */
void *agent_watch_main (void *arg);

typedef enum
{
  TEARDOWN_ALL,       /* the whole group folder */
  TEARDOWN_KEEP_LOGS, /* everything but logs/ */
  TEARDOWN_RUNTIME    /* mounts, namespaces, cgroups, runtime containers; logs and final state stay */
} teardown_t;
/* Stops a group's monitor (except in TEARDOWN_RUNTIME) and removes what `mode` names. */
void agent_teardown (agent_t *a, const char *group_id, teardown_t mode);

#endif
