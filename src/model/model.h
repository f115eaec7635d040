/* model.h - the container-group model: ARM JSON in, canonical spec, validation,
 * ARM JSON out, and the group state machine.
 *
 * The canonical spec is a Jansson object with exactly the property names of the
 * ACI schema (api-version 2023-05-01), whatever casing the client used; unknown
 * properties are dropped. It still holds secrets (secureValue, registry passwords):
 * model_group_to_arm() is the only way out to clients and never copies them.
 */
#ifndef SKIFF_MODEL_MODEL_H
#define SKIFF_MODEL_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define MODEL_MAX_CONTAINERS 60
#define MODEL_MAX_VOLUMES 20
#define MODEL_MAX_PORTS_PER_IP 5
#define MODEL_MAX_GROUP_CPU 31.0
#define MODEL_MAX_GROUP_MEMORY_GB 240.0
#define MODEL_MAX_BODY_BYTES (1024 * 1024)
#define MODEL_PROVIDER "Microsoft.ContainerInstance"
#define MODEL_GROUP_TYPE "Microsoft.ContainerInstance/containerGroups"

typedef struct
{
  double host_cpus;             /* what one group may ask for on this host */
  double host_memory_gb;        /* idem */
  const char *const *locations; /* NULL-terminated list of served locations (lowercase) */
} model_limits_t;

/* Whether location (any case, spaces ignored: "West US" is "westus") is one of
 * limits->locations; every location is when that list is NULL. */
int model_location_served (const model_limits_t *limits, const char *location);

/* Parses a PUT body for container group `group_name` into a canonical spec (*out, owned).
 * Checks every validation rule of the ACI reference; failures are ARM errors with
 * the HTTP status and code ACI uses and the offending property in the message and target. */
int model_parse_group (const char *body, size_t len, const char *group_name, const model_limits_t *limits, json_t **out,
                       skiff_error_t *err);

/* Parses a JSON body into a Jansson value, mapping syntax errors to ARM's
 * InvalidRequestContent (400). Refuses bodies over MODEL_MAX_BODY_BYTES (413). */
int model_parse_json (const char *body, size_t len, json_t **out, skiff_error_t *err);

/* Validates a name: group names, container names (ACI rules). Returns 1 if valid. */
int model_valid_group_name (const char *name);
int model_valid_container_name (const char *name);
int model_valid_resource_group_name (const char *name);
int model_valid_env_name (const char *name);

/* Builds the ARM id of a container group with canonical casing. Owned string. */
char *model_group_id (const char *sub, const char *rg, const char *name);

/* The data a response is built from; all borrowed. */
typedef struct
{
  const char *sub, *rg, *name, *location;
  json_t *spec; /* canonical spec */
  json_t *tags; /* may be NULL */
  const char *provisioning_state;
  const char *state;       /* group instanceView.state, NULL when unknown */
  json_t *containers_view; /* object: container name -> {restartCount,currentState,previousState} (may be NULL) */
  json_t *events; /* array of stored events {container|null,name,type,message,count,firstTimestamp,lastTimestamp} */
} model_group_view_t;

/* Builds the ARM JSON of a group for clients. Secrets are never copied.
 * with_instance_view: 1 for GET (instance views and events), 0 for lists. Owned result. */
json_t *model_group_to_arm (const model_group_view_t *v, int with_instance_view);

/* --- state machine ------------------------------------------------------- */

typedef enum
{
  MODEL_POLICY_ALWAYS,
  MODEL_POLICY_ONFAILURE,
  MODEL_POLICY_NEVER
} model_restart_policy_t;

/* Parses a restart policy (case-insensitive); NULL means Always. Returns -1 if unknown. */
int model_parse_restart_policy (const char *s, model_restart_policy_t *out);

typedef enum
{
  MODEL_CSTATE_UNKNOWN,
  MODEL_CSTATE_WAITING,
  MODEL_CSTATE_RUNNING,
  MODEL_CSTATE_TERMINATED
} model_container_state_t;

typedef struct
{
  model_container_state_t state;
  int exit_code;
  int final; /* terminated and will not be restarted */
} model_container_status_t;

/* Derives the group's instanceView.state (Pending, Running, Stopped, Succeeded, Failed)
 * from the restart policy, whether the group was stopped by the user, whether it has
 * failed to provision, and its (non-init) containers' statuses. Returns a static string. */
const char *model_group_state (model_restart_policy_t policy, int stopped, int provisioning_failed,
                               const model_container_status_t *c, size_t n);

/* Decides whether a container that exited with exit_code is restarted under policy. */
int model_should_restart (model_restart_policy_t policy, int exit_code);

#endif
