/* agent.h - the reconciler: drives every container group from its desired state
 * in the store to the actual state on the host (pull, namespaces, rootfs, bundles,
 * skiff-monitor), and folds what monitors report back into the store.
 *
 * The API only writes desired state and calls agent_notify(); all host work
 * happens on the agent's worker threads, one group at a time per group. */
#ifndef SKIFF_AGENT_AGENT_H
#define SKIFF_AGENT_AGENT_H

#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "dns/dns.h"
#include "net/net.h"

struct store;

typedef struct
{
  const char *data_dir;
  const char *monitor_path; /* skiff-monitor binary */
  const char *runtime_path; /* crun (default) or runc */
  uint32_t id_shift, id_range;
  int workers;                            /* reconcile threads (default 4) */
  int backoff_initial_ms, backoff_max_ms; /* restart back-off */
  int stop_grace_seconds;                 /* SIGTERM -> SIGKILL on stop */
  int64_t log_max_bytes;                  /* per container log file */
  const char *const *insecure_registries;
  const char *registry_ca_file; /* extra CA bundle for registries, may be NULL */
  const net_config_t *net;      /* the group network; NULL: each group has only its loopback */
  /* public addresses: a pool [public_first, public_last] (host order), or both 0 to publish
     ports on the host's own addresses (reported as host_address) */
  uint32_t public_first, public_last;
  uint32_t host_address;
  const char *dns_zone;                /* DNS name labels: <label>.<location>.<dns_zone> */
  dns_server_t *dns;                   /* answers for labels and private zones; may be NULL */
  const dns_update_target_t *dns_push; /* pushes label records there (RFC 2136); may be NULL */
} agent_config_t;

typedef struct agent agent_t;

/* Prepares the host (cgroups, runtime), opens the image store, starts the worker and
 * watcher threads, then re-adopts every group in the store: running monitors are
 * reconnected and caught up, half-done work is finished or rolled back, and files,
 * mounts, namespaces, cgroups and runtime containers that belong to no group are removed. */
int agent_start (const agent_config_t *cfg, struct store *store, agent_t **out, skiff_error_t *err);

/* Queues group `group_id` for reconciliation. Thread-safe, never blocks on host work. */
void agent_notify (agent_t *a, const char *group_id);

struct store_group_s;

/* Claims what a group's ipAddress asks for before the group is stored (its id must be final):
 * a public address from the pool, or its ports on the host's own addresses (409 PortAlreadyInUse
 * when another group or a host process has one), and its DNS name (409
 * DnsNameLabelAlreadyInUse). What the spec no longer asks for is given back. ARM errors. */
int agent_net_claim (agent_t *a, const char *tenant, const struct store_group_s *g, skiff_error_t *err);

/* Fills ipAddress.ip and ipAddress.fqdn of a group's ARM view from what it holds. a NULL: no-op. */
void agent_net_view (agent_t *a, const struct store_group_s *g, json_t *ip_view);

/* Tells the agent that network resources (virtual networks, subnets, private DNS zones, their
 * links) changed: it brings DNS records and host networking in step, asynchronously. NULL is fine. */
void agent_network_changed (agent_t *a);

/* Reads the log of a container: last `tail` lines (tail < 0: all, capped at 4 MB),
 * each prefixed by its RFC 3339 timestamp when `timestamps`. *out is owned. */
int agent_read_logs (agent_t *a, const char *group_id, const char *container, int tail, int timestamps, char **out,
                     skiff_error_t *err);

/* Starts `argv` (NULL-terminated, at most 256 words and 64 KiB) in a running container
 * of group `group_id` on a new pty of rows x cols (0: the default) and returns in
 * *fd_out a connected socket (non-blocking, close-on-exec, owned by the caller) that
 * carries raw bytes both ways: what is written goes to the pty, what is read comes
 * from it. The monitor closes it when the process ends; closing it ends the process
 * (SIGHUP, SIGKILL after 2 s). Errors are ARM errors: 409 ContainerGroupNotRunning
 * (no monitor), 404 ContainerNotFound, 409 ContainerNotRunning, 400
 * InvalidRequestContent, 429 TooManyRequests (16 sessions per group), 500 ExecFailed. */
int agent_exec_open (agent_t *a, const char *group_id, const char *container, char *const *argv, int rows, int cols,
                     int *fd_out, skiff_error_t *err);

/* Attaches to the output of a running container: *fd_out receives its stdout and
 * stderr bytes from now on until its run ends (then EOF); input is ignored. A reader
 * more than 256 KiB behind is dropped by the monitor. Errors as agent_exec_open. */
int agent_attach_open (agent_t *a, const char *group_id, const char *container, int *fd_out, skiff_error_t *err);

/* Removes unpacked layers and blobs that no group on this host uses; *removed tells how
 * many. Waits for creates that are between pulling and recording their images. */
int agent_prune_images (agent_t *a, int *removed, skiff_error_t *err);

/* Stops the threads (containers keep running: skiffd is crash-only). */
void agent_stop (agent_t *a);

#endif
