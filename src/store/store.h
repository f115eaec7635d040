/* store.h - the persistent state of skiffd: resource groups, container groups
 * (desired spec + observed state), events and async operations.
 *
 * This header is the whole interface; a backend (SQLite today, PostgreSQL for
 * scale-out) fills a store_ops table. Nothing outside src/store writes SQL.
 * Every write is durable when the call returns (callers acknowledge clients only
 * afterwards). All functions are safe to call from several threads.
 */
#ifndef SKIFF_STORE_STORE_H
#define SKIFF_STORE_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"

typedef struct store_group_s
{
  char *id; /* internal id, also the folder name under groups/ */
  char *sub, *rg, *name, *location;
  json_t *spec; /* canonical spec (holds secrets) */
  json_t *tags;
  char *provisioning_state; /* Pending, Creating, Succeeded, Failed, Deleting */
  char *desired;            /* Running, Stopped, Deleted */
  char *state;              /* group instanceView.state or NULL */
  json_t *containers_view;  /* name -> {restartCount,currentState,previousState}, may be NULL */
  int64_t generation;       /* bumped by every PUT, start and restart */
  int64_t monitor_seq;      /* last monitor event applied */
  int64_t created_ns, updated_ns;
} store_group_t;

typedef struct
{
  char *sub, *name, *location;
  json_t *tags;
} store_rg_t;

typedef struct store store_t;

/* Opens (creating and migrating as needed) the SQLite store at `path` (WAL mode, 0600). */
int store_open_sqlite (const char *path, store_t **out, skiff_error_t *err);
void store_close (store_t *s);

/* A counter that grows with every row written (before the write is visible to readers
 * that come after it). Equal values before and after a read mean nothing changed. */
uint64_t store_change_count (store_t *s);

/* Key/value settings (subscription id, tenant, schema facts). *value NULL when absent. */
int store_meta_get (store_t *s, const char *key, char **value, skiff_error_t *err);
int store_meta_set (store_t *s, const char *key, const char *value, skiff_error_t *err);

/* Resource groups: names compare case-insensitively; the first spelling is kept. */
int store_rg_put (store_t *s, const char *sub, const char *name, const char *location, json_t *tags, int *created,
                  store_rg_t *out, skiff_error_t *err);
/* Returns 0 and fills *out, or 0 with out->name NULL when absent. */
int store_rg_get (store_t *s, const char *sub, const char *name, store_rg_t *out, skiff_error_t *err);
/* Returns a JSON array of {name,location,tags}. */
int store_rg_list (store_t *s, const char *sub, json_t **out, skiff_error_t *err);
int store_rg_delete (store_t *s, const char *sub, const char *name, skiff_error_t *err);
/* Number of container groups in the resource group. */
int store_rg_count_groups (store_t *s, const char *sub, const char *rg, int64_t *n, skiff_error_t *err);
void store_rg_clear (store_rg_t *r);

/* Creates or replaces a group's desired spec, sets provisioning_state and desired,
 * bumps generation, and records an async operation `op_id` (InProgress), all in one
 * transaction. For a new group g->id must be set by the caller; for an existing
 * group the stored id is kept and written back into g->id. *created tells which. */
int store_group_put (store_t *s, store_group_t *g, const char *op_id, int *created, skiff_error_t *err);
/* Looks a group up by (sub, rg, name) case-insensitively. Returns 0 with out->id NULL when absent. */
int store_group_get (store_t *s, const char *sub, const char *rg, const char *name, store_group_t *out,
                     skiff_error_t *err);
int store_group_get_by_id (store_t *s, const char *id, store_group_t *out, skiff_error_t *err);
/* Lists groups ordered by (rg, name) after the key `after` ("rg/name", lowercased, or NULL),
 * at most `limit`. rg NULL = whole subscription; sub NULL = everything (for re-adoption). */
int store_group_list (store_t *s, const char *sub, const char *rg, const char *after, int limit, store_group_t **out,
                      int *n, skiff_error_t *err);
/* Records observed state. Any argument that is NULL (or seq < 0) is left unchanged. */
int store_group_set_status (store_t *s, const char *id, const char *provisioning_state, const char *state,
                            json_t *containers_view, int64_t monitor_seq, skiff_error_t *err);
/* Changes the desired state; bump_generation also increments generation. op_id may be NULL. */
int store_group_set_desired (store_t *s, const char *id, const char *desired, int bump_generation, const char *op_id,
                             skiff_error_t *err);
int store_group_set_tags (store_t *s, const char *id, json_t *tags, skiff_error_t *err);
/* Deletes the group row, its events and operations. */
int store_group_delete (store_t *s, const char *id, skiff_error_t *err);
void store_group_clear (store_group_t *g);
void store_group_free_array (store_group_t *a, int n);

/* Appends an event, or folds it into the last event with the same (group, container,
 * name, message): count+1 and lastTimestamp. With replace_message, an event with the same
 * (group, container, name) is updated in place (its message replaced): used for progress. */
int store_event_add (store_t *s, const char *group_id, const char *container, const char *name, const char *type,
                     const char *message, int64_t ts_ns, int replace_message, skiff_error_t *err);
/* JSON array of {container|null,name,type,message,count,firstTimestamp,lastTimestamp} in order. */
int store_event_list (store_t *s, const char *group_id, json_t **out, skiff_error_t *err);

/* Async operations: status InProgress, Succeeded or Failed, error an ARM error body or NULL. */
int store_op_set (store_t *s, const char *op_id, const char *group_id, const char *status, json_t *error,
                  skiff_error_t *err);
/* Marks every InProgress operation of the group as status. */
int store_op_finish_group (store_t *s, const char *group_id, const char *status, json_t *error, skiff_error_t *err);
/* Returns 0 with *status NULL when unknown. */
int store_op_get (store_t *s, const char *op_id, char **status, json_t **error, char **group_id, int64_t *start_ns,
                  skiff_error_t *err);

/* ---- service principals and role assignments ----
 * Principals are JSON objects {appId, objectId, displayName, secretHash?, certificate?, createdNs}; ids are
 * stored lower-case. Assignments are {name, scope, roleId, principalId (an objectId), createdNs}. */

/* Inserts a principal; fails if the appId or objectId exists. */
int store_principal_put (store_t *s, const char *app_id, const char *object_id, const char *name,
                         const char *secret_hash, const char *certificate, skiff_error_t *err);
/* Finds a principal by appId or objectId; *out NULL when there is none. */
int store_principal_get (store_t *s, const char *id, json_t **out, skiff_error_t *err);
int store_principal_list (store_t *s, json_t **out, skiff_error_t *err);
/* Deletes a principal and its role assignments in one transaction; *deleted 0 when none existed. */
int store_principal_delete (store_t *s, const char *app_id, int *deleted, skiff_error_t *err);

/* Inserts an assignment; 409 RoleAssignmentExists when the name or the same (scope, role, principal) exists. */
int store_role_assignment_put (store_t *s, const char *name, const char *scope, const char *role_id,
                               const char *principal_id, skiff_error_t *err);
/* *out NULL when there is none. */
int store_role_assignment_get (store_t *s, const char *name, json_t **out, skiff_error_t *err);
/* Every assignment, or those of one principal (objectId) when principal_id is not NULL. */
int store_role_assignment_list (store_t *s, const char *principal_id, json_t **out, skiff_error_t *err);
int store_role_assignment_delete (store_t *s, const char *name, int *deleted, skiff_error_t *err);

/* ---- group addresses (IPv4, host byte order) ---- */

/* *addr 0 when the group holds none. */
int store_address_get (store_t *s, const char *group_id, uint32_t *addr, skiff_error_t *err);
/* Returns the group's address, or takes the lowest free one in [first, last] for it;
 * 409 InsufficientAddressSpace when none is free. */
int store_address_allocate (store_t *s, const char *group_id, uint32_t first, uint32_t last, uint32_t *addr,
                            skiff_error_t *err);
/* Gives the group's address back (nothing when it holds none). */
int store_address_release (store_t *s, const char *group_id, skiff_error_t *err);

/* ---- address pools ---- */

typedef enum
{
  STORE_POOL_PRIVATE, /* the group's address on its network (default network or subnet) */
  STORE_POOL_PUBLIC,  /* its public address */
} store_pool_t;

/* The group's address in pool, 0 when it has none. */
int store_pool_get (store_t *s, store_pool_t pool, const char *group_id, uint32_t *addr, skiff_error_t *err);

/* Gives the group an address in [first, last] (host order): the one it has when that lies in the
 * range (an address outside it is given back first), else the lowest free one. 409
 * InsufficientAddressSpace / PublicIpAddressPoolExhausted when none is free. */
int store_pool_allocate (store_t *s, store_pool_t pool, const char *group_id, uint32_t first, uint32_t last,
                         uint32_t *addr, skiff_error_t *err);

/* Gives the group's address in pool back; none is fine. */
int store_pool_release (store_t *s, store_pool_t pool, const char *group_id, skiff_error_t *err);

/* ---- host ports (publishing on the host's own addresses) ---- */

/* Makes exactly these n (protocol "TCP"/"UDP", port) pairs the group's host ports, in one
 * transaction: 409 PortAlreadyInUse (and nothing changes) when another group holds one. */
int store_host_ports_claim (store_t *s, const char *group_id, const char *const *protos, const int *ports, size_t n,
                            skiff_error_t *err);

/* Gives all of the group's host ports back. */
int store_host_ports_release (store_t *s, const char *group_id, skiff_error_t *err);

/* ---- DNS names ---- */

/* Makes fqdn (lowercase) the group's DNS name, replacing the one it had: 409
 * DnsNameLabelAlreadyInUse when another group holds it. */
int store_dns_name_claim (store_t *s, const char *group_id, const char *fqdn, skiff_error_t *err);

/* Gives the group's DNS name back; none is fine. */
int store_dns_name_release (store_t *s, const char *group_id, skiff_error_t *err);

/* How many public addresses, DNS names and host ports the group holds. */
int store_group_claims (store_t *s, const char *group_id, int64_t *n, skiff_error_t *err);

/* ---- listings ---- */

/* Every address of pool as [{"addr": int (host order), "group": id}], ordered by address. */
int store_pool_list (store_t *s, store_pool_t pool, json_t **out, skiff_error_t *err);

/* Every DNS name as [{"fqdn", "group"}]. */
int store_dns_name_list (store_t *s, json_t **out, skiff_error_t *err);

/* Every host port as [{"protocol", "port", "group"}]. */
int store_host_ports_list (store_t *s, json_t **out, skiff_error_t *err);

/* ---- network resources (store_network.c): Microsoft.Network ARM resources, stored as JSON ---- */

/* A stored network resource. id is its ARM id as the client spelled it on creation; type is its
 * ARM type ("Microsoft.Network/virtualNetworks", ".../subnets", "Microsoft.Network/privateDnsZones",
 * ".../virtualNetworkLinks"); parent_id the id of the resource it belongs to (NULL at top level). */
typedef struct
{
  char *id;
  char *type;
  char *sub;
  char *rg;
  char *parent_id;
  char *name;
  json_t *body;
  int64_t created_ns;
  int64_t updated_ns;
} store_netres_t;

/* Frees the members of r (not r itself). */
void store_netres_clear (store_netres_t *r);

/* Frees an array of n resources. */
void store_netres_free_array (store_netres_t *a, int n);

/* Creates or replaces the resource with ARM id `id` (matched case-insensitively). *created is 1
 * when it did not exist. */
int store_netres_put (store_t *s, const store_netres_t *r, int *created, skiff_error_t *err);

/* Gets a resource by ARM id (case-insensitive): 0 and out filled, or 1 when it does not exist. */
int store_netres_get (store_t *s, const char *id, store_netres_t *out, skiff_error_t *err);

/* Lists resources of `type`: the children of parent_id when it is not NULL, else those of a
 * resource group (rg not NULL) or of a subscription. Ordered by name. */
int store_netres_list (store_t *s, const char *type, const char *sub, const char *rg, const char *parent_id,
                       store_netres_t **out, int *n, skiff_error_t *err);

/* Deletes a resource and its children (by parent id, recursively); *deleted is 1 when it existed. */
int store_netres_delete (store_t *s, const char *id, int *deleted, skiff_error_t *err);

#endif
