/* roles.c - Microsoft.Authorization in ARM's shape: role assignments and the built-in role
 * definitions, at subscription, resource-group and container-group scope. */
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "model/model.h"
#include "store/store.h"

#define AUTHZ "Microsoft.Authorization"

/* Joins path segments [0, n) into "/a/b/c". */
static char *
join_scope (call_t *c, int n)
{
  size_t len = 1;
  for (int i = 0; i < n; i++)
    len += strlen (c->path.seg[i]) + 1;
  char *s = malloc (len + 1);
  if (s == NULL)
    abort ();
  s[0] = '\0';
  size_t o = 0;
  for (int i = 0; i < n; i++)
    o += (size_t)sprintf (s + o, "/%s", c->path.seg[i]);
  return s;
}

/* A scope roles may be assigned at: the subscription, a resource group, or a container group. */
static int
valid_scope (call_t *c, int n)
{
  if (n == 2)
    return 1;
  if (n == 4)
    return api_seg_is (c, 2, "resourceGroups") && model_valid_resource_group_name (c->path.seg[3]);
  if (n == 8)
    return api_seg_is (c, 2, "resourceGroups") && api_seg_is (c, 4, "providers") && api_seg_is (c, 5, MODEL_PROVIDER)
           && api_seg_is (c, 6, "containerGroups");
  return 0;
}

/* Replies 404 and returns -1 when the resource group or container group of the scope does not exist. */
static int
scope_exists (call_t *c, int n)
{
  cleanup_error skiff_error_t err = NULL;
  if (n < 4)
    return 0;
  store_rg_t r = { 0 };
  if (store_rg_get (c->ctx->store, c->ctx->subscription_id, c->path.seg[3], &r, &err) < 0)
    {
      api_reply_skiff_error (c, err);
      return -1;
    }
  int found = r.name != NULL;
  store_rg_clear (&r);
  if (!found)
    {
      cleanup_free char *m = skiff_strdup_printf ("Resource group '%s' could not be found.", c->path.seg[3]);
      api_reply_error (c, 404, "ResourceGroupNotFound", m, NULL);
      return -1;
    }
  if (n < 8)
    return 0;
  store_group_t g = { 0 };
  if (store_group_get (c->ctx->store, c->ctx->subscription_id, c->path.seg[3], c->path.seg[7], &g, &err) < 0)
    {
      api_reply_skiff_error (c, err);
      return -1;
    }
  found = g.id != NULL && strcmp (g.desired, "Deleted") != 0;
  store_group_clear (&g);
  if (!found)
    {
      cleanup_free char *m
          = skiff_strdup_printf ("The Resource '" MODEL_GROUP_TYPE "/%s' under resource group '%s' was not found.",
                                 c->path.seg[7], c->path.seg[3]);
      api_reply_error (c, 404, "ResourceNotFound", m, NULL);
      return -1;
    }
  return 0;
}

static int
is_guid (const char *s)
{
  if (strlen (s) != 36)
    return 0;
  for (int i = 0; i < 36; i++)
    {
      char ch = s[i];
      if (i == 8 || i == 13 || i == 18 || i == 23)
        {
          if (ch != '-')
            return 0;
        }
      else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
        return 0;
    }
  return 1;
}

static char *
role_definition_id (call_t *c, const char *role_guid)
{
  return skiff_strdup_printf ("/subscriptions/%s/providers/" AUTHZ "/roleDefinitions/%s", c->ctx->subscription_id,
                              role_guid);
}

static json_t *
assignment_view (call_t *c, json_t *a)
{
  const char *scope = json_string_value (json_object_get (a, "scope"));
  const char *name = json_string_value (json_object_get (a, "name"));
  const api_role_t *r = api_role_find (json_string_value (json_object_get (a, "roleId")));
  cleanup_free char *id = skiff_strdup_printf ("%s/providers/" AUTHZ "/roleAssignments/%s", scope, name);
  cleanup_free char *rd = role_definition_id (c, r ? r->id : json_string_value (json_object_get (a, "roleId")));
  char ts[40];
  skiff_format_time ((int64_t)json_integer_value (json_object_get (a, "createdNs")), ts, sizeof (ts));
  return json_pack ("{s:s,s:s,s:s,s:{s:s,s:s,s:O,s:s,s:s,s:s,s:s}}", "id", id, "name", name, "type",
                    AUTHZ "/roleAssignments", "properties", "roleDefinitionId", rd, "roleDefinitionName",
                    r ? r->name : "", "principalId", json_object_get (a, "principalId"), "principalType",
                    "ServicePrincipal", "scope", scope, "createdOn", ts, "updatedOn", ts);
}

static json_t *
definition_view (const char *scope, const api_role_t *r)
{
  json_t *actions = json_array (), *not_actions = json_array ();
  for (const char *const *a = r->actions; *a; a++)
    json_array_append_new (actions, json_string (*a));
  for (const char *const *a = r->not_actions; *a; a++)
    json_array_append_new (not_actions, json_string (*a));
  cleanup_free char *id = skiff_strdup_printf ("%s/providers/" AUTHZ "/roleDefinitions/%s", scope, r->id);
  return json_pack ("{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:[s],s:[{s:o,s:o,s:[],s:[]}]}}", "id", id, "name", r->id, "type",
                    AUTHZ "/roleDefinitions", "properties", "roleName", r->name, "type", "BuiltInRole", "description",
                    r->description, "assignableScopes", "/", "permissions", "actions", actions, "notActions",
                    not_actions, "dataActions", "notDataActions");
}

/* Reads "<field> eq '<value>'" out of an OData $filter (owned), or NULL. */
static char *
filter_value (const char *filter, const char *field)
{
  if (filter == NULL)
    return NULL;
  const char *p = strcasestr (filter, field);
  if (p == NULL)
    return NULL;
  p += strlen (field);
  while (*p == ' ')
    p++;
  if (strncasecmp (p, "eq", 2) != 0)
    return NULL;
  p += 2;
  while (*p == ' ')
    p++;
  if (*p != '\'')
    return NULL;
  const char *end = strchr (p + 1, '\'');
  return end ? strndup (p + 1, (size_t)(end - p - 1)) : NULL;
}

static void
handle_definitions (call_t *c, const char *scope, int first)
{
  if (!api_method_is (c, "GET"))
    return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  if (!api_touches_scope (&c->who, scope))
    {
      api_authorize (c, scope, AUTHZ "/roleDefinitions/read");
      return;
    }
  int n;
  const api_role_t *roles = api_roles (&n);
  if (c->path.n == first + 4)
    {
      const api_role_t *r = api_role_find (c->path.seg[first + 3]);
      if (r == NULL)
        return api_reply_error (c, 404, "RoleDefinitionDoesNotExist", "The specified role definition does not exist.",
                                NULL);
      return api_reply_json (c, 200, definition_view (scope, r));
    }
  cleanup_free char *f = api_query_get (c->req->query, c->req->query_len, "$filter");
  cleanup_free char *want = filter_value (f, "roleName");
  json_t *value = json_array ();
  for (int i = 0; i < n; i++)
    if (want == NULL || strcasecmp (want, roles[i].name) == 0)
      json_array_append_new (value, definition_view (scope, &roles[i]));
  api_reply_json (c, 200, json_pack ("{s:o}", "value", value));
}

static void
assignment_put (call_t *c, const char *scope, const char *name)
{
  cleanup_error skiff_error_t err = NULL;
  if (!is_guid (name))
    return api_reply_error (c, 400, "InvalidRoleAssignmentId",
                            "The role assignment ID is not valid. The role assignment ID must be a GUID.", NULL);
  cleanup_json json_t *body = NULL;
  if (model_parse_json (c->req->body, c->req->body_len, &body, &err) < 0)
    return api_reply_skiff_error (c, err);
  json_t *props = skiff_json_get (body, "properties");
  const char *role_ref = skiff_json_get_string (props, "roleDefinitionId");
  const char *principal = skiff_json_get_string (props, "principalId");
  if (!json_is_object (props) || role_ref == NULL || principal == NULL)
    return api_reply_error (c, 400, "InvalidRequestContent",
                            "The properties 'roleDefinitionId' and 'principalId' are required.", "properties");
  const api_role_t *r = api_role_find (role_ref);
  if (r == NULL)
    return api_reply_error (c, 400, "RoleDefinitionDoesNotExist", "The specified role definition does not exist.",
                            "properties.roleDefinitionId");
  if (strlen (principal) > 64)
    return api_reply_error (c, 400, "PrincipalNotFound", "The principal id is too long.", "properties.principalId");
  cleanup_json json_t *p = NULL;
  if (store_principal_get (c->ctx->store, principal, &p, &err) < 0)
    return api_reply_skiff_error (c, err);
  if (p == NULL)
    {
      cleanup_free char *m
          = skiff_strdup_printf ("Principal %s does not exist in the directory %s.", principal, c->ctx->tenant_id);
      return api_reply_error (c, 400, "PrincipalNotFound", m, "properties.principalId");
    }
  const char *oid = json_string_value (json_object_get (p, "objectId"));
  if (store_role_assignment_put (c->ctx->store, name, scope, r->id, oid, &err) < 0)
    return api_reply_skiff_error (c, err);
  log_info ("assigned %s to %s at %s", r->name, oid, scope);
  cleanup_json json_t *a = NULL;
  if (store_role_assignment_get (c->ctx->store, name, &a, &err) < 0 || a == NULL)
    return api_reply_skiff_error (c, err);
  api_reply_json (c, 201, assignment_view (c, a));
}

void
api_handle_authorization (call_t *c, int first)
{
  cleanup_error skiff_error_t err = NULL;
  cleanup_free char *scope = join_scope (c, first);
  if (!valid_scope (c, first))
    return api_reply_error (c, 400, "InvalidScope",
                            "Roles can be assigned at a subscription, a resource group or a container group.", NULL);
  const char *what = c->path.seg[first + 2];
  int n_after = c->path.n - first - 3;
  if (!strcasecmp (what, "roleDefinitions") && n_after <= 1)
    return handle_definitions (c, scope, first);
  if (strcasecmp (what, "roleAssignments") != 0 || n_after > 1)
    return api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);

  if (n_after == 0)
    {
      if (!api_method_is (c, "GET"))
        return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      if (api_authorize (c, scope, AUTHZ "/roleAssignments/read") < 0)
        return;
      cleanup_free char *f = api_query_get (c->req->query, c->req->query_len, "$filter");
      cleanup_free char *want = filter_value (f, "principalId");
      int at_scope = f && strcasestr (f, "atScope()") != NULL;
      cleanup_free char *want_oid = NULL;
      if (want)
        {
          cleanup_json json_t *p = NULL;
          if (store_principal_get (c->ctx->store, want, &p, &err) < 0)
            return api_reply_skiff_error (c, err);
          want_oid = skiff_strdup (p ? json_string_value (json_object_get (p, "objectId")) : want);
        }
      cleanup_json json_t *list = NULL;
      if (store_role_assignment_list (c->ctx->store, want_oid, &list, &err) < 0)
        return api_reply_skiff_error (c, err);
      json_t *value = json_array ();
      size_t i;
      json_t *a;
      json_array_foreach (list, i, a)
      {
        const char *as = json_string_value (json_object_get (a, "scope"));
        /* at or above the scope, and (unless atScope()) below it */
        if (api_scope_within (scope, as) || (!at_scope && api_scope_within (as, scope)))
          json_array_append_new (value, assignment_view (c, a));
      }
      return api_reply_json (c, 200, json_pack ("{s:o}", "value", value));
    }

  const char *name = c->path.seg[first + 3];
  if (api_method_is (c, "PUT"))
    {
      if (api_authorize (c, scope, AUTHZ "/roleAssignments/write") < 0)
        return;
      if (scope_exists (c, first) < 0)
        return;
      return assignment_put (c, scope, name);
    }
  int del = api_method_is (c, "DELETE");
  if (!del && !api_method_is (c, "GET"))
    return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  if (api_authorize (c, scope, del ? AUTHZ "/roleAssignments/delete" : AUTHZ "/roleAssignments/read") < 0)
    return;
  cleanup_json json_t *a = NULL;
  if (strlen (name) <= 64 && store_role_assignment_get (c->ctx->store, name, &a, &err) < 0)
    return api_reply_skiff_error (c, err);
  if (a == NULL || strcasecmp (json_string_value (json_object_get (a, "scope")), scope) != 0)
    {
      if (del)
        return api_reply_json (c, 204, NULL);
      return api_reply_error (c, 404, "RoleAssignmentNotFound", "The role assignment does not exist.", NULL);
    }
  if (!del)
    return api_reply_json (c, 200, assignment_view (c, a));
  int deleted = 0;
  if (store_role_assignment_delete (c->ctx->store, name, &deleted, &err) < 0)
    return api_reply_skiff_error (c, err);
  log_info ("deleted role assignment %s at %s", name, scope);
  api_reply_json (c, 200, assignment_view (c, a));
}
