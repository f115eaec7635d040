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

/* A growable set of IPv4 addresses. */
typedef struct
{
  uint32_t *v;
  size_t n, cap;
} agent_u32vec_t;

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

  /* networking (network.c) */
  pthread_mutex_t net_lock; /* one sync at a time; guards the fields below */
  pthread_cond_t push_cond;
  int push_pending;
  pthread_t pusher;
  int pusher_started;
  agent_u32vec_t dns_gw;     /* gateway addresses the DNS server listens on */
  agent_u32vec_t fwd_except; /* group addresses left out of DNS forwarding */
};

/* ---- networking (network.c) ---- */

/* Writes the host-side interface name of a group's veth ("sk" and 13 hex digits of its id) into
 * buf (>= 16 bytes) and returns buf. */
const char *agent_net_ifname (const char *group_id, char *buf);

/* Where a group's network namespace is plugged in. */
typedef struct
{
  char bridge[16];
  uint32_t subnet, gateway; /* host order; 0 without group networking */
  int prefix;
  char *vnet_id; /* owned; NULL on the default network */
} agent_net_place_t;

/* Finds where a group with this spec goes: its first subnet's virtual network, or the default
 * network. Zeroes *p without group networking. 404 SubnetNotFound for a missing subnet. */
int agent_net_place (agent_t *a, json_t *spec, agent_net_place_t *p, skiff_error_t *err);
void agent_net_place_clear (agent_net_place_t *p);

/* Gives the group its address (kept across stops) and plugs the namespace pinned under ns_dir
 * in; fills *p and *addr (0 without group networking). Syncs the host when the group publishes
 * ports, has a DNS name or lives in a virtual network. */
int agent_net_attach (agent_t *a, store_group_t *g, const char *ns_dir, agent_net_place_t *p, uint32_t *addr,
                      skiff_error_t *err);

/* Unplugs the group's interface (the address stays with the group). */
void agent_net_detach (agent_t *a, const char *group_id);

/* Gives back everything the group holds (addresses, host ports, DNS name) and syncs. */
void agent_net_release (agent_t *a, const char *group_id);

/* The group's resolv.conf (owned): skiff's DNS on the gateway first, then dnsConfig's name
 * servers (or the host's non-loopback ones), searchDomains and options. */
char *agent_net_resolv_conf (agent_t *a, json_t *spec, const agent_net_place_t *p);

/* The group's FQDN from its dnsNameLabel (owned, lowercase), NULL without a label. */
char *agent_net_fqdn (agent_t *a, const char *tenant, const store_group_t *g);

/* Brings bridges, nftables elements, public addresses and DNS records in step with the store. */
void agent_net_sync (agent_t *a);

/* Releases claims of groups that are gone and unplugs interfaces no group owns. */
void agent_net_remove_orphans (agent_t *a);

/* Sets up host networking, repairs it from the store and starts the DNS update thread. */
int agent_net_start (agent_t *a, skiff_error_t *err);

/* Stops the DNS update thread. */
void agent_net_stop (agent_t *a);

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
