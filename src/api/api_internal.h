/* api_internal.h - shared between the API's files; not part of its surface. */
#ifndef SKIFF_API_INTERNAL_H
#define SKIFF_API_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api.h"

/* Who is calling: the admin token, or a service principal with its role assignments. */
typedef struct
{
  int is_admin;
  char *app_id;
  char *object_id;
  json_t *assignments; /* [{scope, roleId, ...}] of this principal */
} api_principal_t;

/* One request in flight through the handlers. */
typedef struct
{
  api_ctx_t *ctx;
  const api_request_t *req;
  api_response_t *res;
  api_path_t path;
  char *api_version;
  api_principal_t who;
} call_t;

/* ---- responses (reply.c) ---- */

/* Adds a response header (copied); silently ignored past API_MAX_HEADERS. */
void api_add_header (api_response_t *res, const char *name, const char *value);
/* Sets the status and the JSON body (stolen, may be NULL). */
void api_reply_json (call_t *c, int status, json_t *body);
/* Replies an ARM error {"error":{"code","message"[,"target"]}}. */
void api_reply_error (call_t *c, int status, const char *code, const char *message, const char *target);
/* Replies err as an ARM error (500 without detail for errors that carry no ARM code). */
void api_reply_skiff_error (call_t *c, skiff_error_t err);
/* 1 when path segment i exists and equals lit, ignoring case. */
int api_seg_is (call_t *c, int i, const char *lit);
int api_method_is (call_t *c, const char *m);
/* "scheme://host" of this request (owned). */
char *api_base_url (call_t *c);

/* ---- roles and authorization (authz.c) ---- */

typedef struct
{
  const char *id; /* GUID of the built-in role */
  const char *name;
  const char *description;
  const char *const *actions;
  const char *const *not_actions;
} api_role_t;

/* The built-in roles; *n gets their count. */
const api_role_t *api_roles (int *n);
/* Finds a role by GUID, by full roleDefinitions id, or by name (case-insensitive); NULL if unknown. */
const api_role_t *api_role_find (const char *ref);
/* 1 when action matches the Azure action pattern (`*` wildcards, case-insensitive). */
int api_action_match (const char *pattern, const char *action);
/* 1 when scope equals outer or lies below it (segment-wise, case-insensitive). */
int api_scope_within (const char *scope, const char *outer);
/* 1 when who may perform action on scope. */
int api_allowed (const api_principal_t *who, const char *scope, const char *action);
/* 1 when who holds any assignment at, above or below scope (it may then see the scope exist). */
int api_touches_scope (const api_principal_t *who, const char *scope);
/* Checks api_allowed and replies 403 AuthorizationFailed when not; returns -1 then. */
int api_authorize (call_t *c, const char *scope, const char *action);
void api_principal_clear (api_principal_t *who);

/* ---- identity (identity.c) ---- */

/* Resolves the bearer token of the request into c->who; replies 401 and returns -1 when it is missing,
 * malformed, badly signed, expired or for another audience. */
int api_authenticate (call_t *c);
/* Serves the unauthenticated identity endpoints (metadata, OpenID configuration, token, keys); returns 1
 * when the path was one of them (the reply is then set), 0 otherwise. */
int api_identity_route (call_t *c);
/* Serves /skiff/servicePrincipals[/{appId}]. */
void api_handle_principals (call_t *c);
/* Serves {scope}/providers/Microsoft.Authorization/...; first is the index of the `providers` segment. */
void api_handle_authorization (call_t *c, int first);

/* ---- network resources (network.c) ---- */

struct store;

/* Serves .../providers/Microsoft.Network/{virtualNetworks[/subnets] | privateDnsZones[/
 * virtualNetworkLinks]} at resource-group scope and their lists at subscription scope; first is
 * the index of the `providers` segment. */
void api_handle_network (call_t *c, int first);

/* The number of network resources (virtual networks and private DNS zones) in a resource group. */
int api_network_rg_count (struct store *store, const char *sub, const char *rg, int64_t *count, skiff_error_t *err);

/* Serialises the writes that check network resources and then change the store: PUT and
 * DELETE of virtual networks, subnets and zones, and a group PUT that names a subnet (so a subnet
 * cannot go between the group's check and its record). Not recursive. */
void api_network_lock (void);
void api_network_unlock (void);

/* Looks up a subnet by its ARM id (any case) for a container group in subscription sub: fills
 * *addr and *prefix (host order) with its addressPrefix and *vnet_id (owned, the vnet's id as stored);
 * each output may be NULL. ARM errors: 400 InvalidSubnetId when the id is not a subnet id of this
 * subscription, 404 SubnetNotFound / VirtualNetworkNotFound when missing, 400
 * SubnetMissingRequiredDelegation when the subnet is not delegated to
 * Microsoft.ContainerInstance/containerGroups. Needs no call_t. */
int api_subnet_resolve (struct store *store, const char *sub, const char *subnet_id, uint32_t *addr, int *prefix,
                        char **vnet_id, skiff_error_t *err);

/* ---- exec and attach sessions (sessions.c) ---- */

/* Handles POST .../containers/{c}/exec|attach for a running group. */
void api_handle_stream_post (call_t *c, const char *group_id, const char *container, int is_exec);

/* Returns 1 and a copy of the cached body (owned) when `key` was stored for `version`. */
int api_cache_get (api_cache_t *c, const char *key, uint64_t version, char **body, size_t *len);
/* Stores a rendered body for `key` at `version` (replacing what shared its slot). */
void api_cache_put (api_cache_t *c, const char *key, uint64_t version, const char *body, size_t len);

#endif
