/* role.c - `skiff role assignment create|list|delete`: ARM role assignments
 * ({scope}/providers/Microsoft.Authorization/roleAssignments), shaped like `az role assignment`. */
#include "cli/cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

#define RA_PROVIDER "/providers/Microsoft.Authorization/roleAssignments"

#define SCOPE_OPTS                                                                                                     \
  { "scope", NULL, CLI_OPT_VALUE, "SCOPE", "Scope: /subscriptions/SUB[/resourceGroups/RG[/providers/...]]." },         \
      { "resource-group", "g", CLI_OPT_VALUE, "GROUP", "Use this resource group as the scope." },                      \
  {                                                                                                                    \
    "name", "n", CLI_OPT_VALUE, "NAME", "With -g: use this container group as the scope."                              \
  }

const struct cli_opt cli_role_create_opts[] = {
  { "assignee|assignee-object-id", NULL, CLI_OPT_VALUE, "ID",
    "[Required] appId or objectId of the service principal." },
  { "role", NULL, CLI_OPT_VALUE, "ROLE", "[Required] Owner, Contributor, Reader, or a role definition id or GUID." },
  SCOPE_OPTS,
  CLI_OPT_END,
};
const struct cli_opt cli_role_list_opts[] = {
  { "assignee", NULL, CLI_OPT_VALUE, "ID", "Only assignments of this appId or objectId." },
  { "role", NULL, CLI_OPT_VALUE, "ROLE", "Only assignments of this role." },
  SCOPE_OPTS,
  CLI_OPT_END,
};
const struct cli_opt cli_role_delete_opts[] = {
  { "ids", NULL, CLI_OPT_LIST, "ID", "Full ids of the assignments to delete (nothing else may be given)." },
  { "assignee", NULL, CLI_OPT_VALUE, "ID", "Delete the assignments of this appId or objectId at the scope." },
  { "role", NULL, CLI_OPT_VALUE, "ROLE", "Delete the assignments of this role at the scope." },
  SCOPE_OPTS,
  { "yes", "y", CLI_OPT_FLAG, NULL, "Accepted for az compatibility; skiff does not prompt here." },
  CLI_OPT_END,
};

static const struct
{
  const char *name, *guid;
} builtin_roles[] = {
  { "Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635" },
  { "Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c" },
  { "Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7" },
};
#define N_ROLES (sizeof builtin_roles / sizeof builtin_roles[0])

static bool
is_guid (const char *s)
{
  if (strlen (s) != 36)
    return false;
  for (size_t i = 0; i < 36; i++)
    {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? s[i] != '-' : !isxdigit ((unsigned char)s[i]))
        return false;
    }
  return true;
}

/* The last '/'-segment of s (s itself when there is none). */
static const char *
last_segment (const char *s)
{
  const char *p = strrchr (s, '/');
  return p ? p + 1 : s;
}

/* ------------------------------------------------------------------ table */

static json_t *
ra_props (json_t *ra)
{
  return skiff_json_get (ra, "properties");
}

static char *
cell_principal (json_t *ra)
{
  return skiff_strdup (skiff_json_get_string (ra_props (ra), "principalId"));
}

static char *
cell_role (json_t *ra)
{
  const char *n = skiff_json_get_string (ra_props (ra), "roleDefinitionName");
  if (n)
    return skiff_strdup (n);
  const char *id = skiff_json_get_string (ra_props (ra), "roleDefinitionId");
  if (id == NULL)
    return NULL;
  for (size_t i = 0; i < N_ROLES; i++)
    if (strcasecmp (last_segment (id), builtin_roles[i].guid) == 0)
      return skiff_strdup (builtin_roles[i].name);
  return skiff_strdup (last_segment (id));
}

static char *
cell_scope (json_t *ra)
{
  return skiff_strdup (skiff_json_get_string (ra_props (ra), "scope"));
}

static const struct cli_column ra_columns[] = {
  { "Principal", cell_principal },
  { "Role", cell_role },
  { "Scope", cell_scope },
};
#define N_RA_COLUMNS (sizeof ra_columns / sizeof ra_columns[0])

/* ------------------------------------------------------------------ helpers */

/* Percent-encodes every segment of an ARM path, keeping the '/'s. */
static char *
escape_path (const char *path)
{
  char *out = skiff_strdup ("");
  const char *p = path;
  while (*p)
    {
      size_t l = strcspn (p, "/");
      cleanup_free char *seg = strndup (p, l);
      if (seg == NULL)
        abort ();
      cleanup_free char *e = cli_escape (seg);
      char *n = skiff_strdup_printf ("%s%s%s", out, e, p[l] == '/' ? "/" : "");
      free (out);
      out = n;
      p += l + (p[l] == '/' ? 1 : 0);
    }
  return out;
}

/* The scope from --scope, or -g [--name], or the subscription. malloc'd, without a trailing '/'. */
static char *
scope_of (struct cli_args *args, skiff_error_t *err)
{
  const char *scope = cli_arg (args, "scope");
  const char *rg = cli_arg (args, "resource-group");
  const char *name = cli_arg (args, "name");
  if (scope && (rg || name))
    {
      cli_usage_error (err, "usage error: --scope cannot be combined with --resource-group/--name");
      return NULL;
    }
  if (name && !rg)
    {
      cli_usage_error (err, "usage error: --name needs --resource-group");
      return NULL;
    }
  if (scope)
    {
      if (scope[0] != '/' || strstr (scope, "//") || strchr (scope, '?') || strchr (scope, '#'))
        {
          cli_usage_error (err, "argument --scope: '%s' is not a resource id such as /subscriptions/SUB", scope);
          return NULL;
        }
      char *s = skiff_strdup (scope);
      size_t n = strlen (s);
      while (n > 1 && s[n - 1] == '/')
        s[--n] = '\0';
      return s;
    }
  if (rg && *rg == '\0')
    {
      cli_usage_error (err, "argument --resource-group: empty");
      return NULL;
    }
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return NULL;
  if (rg && name)
    return skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/"
                                "containerGroups/%s",
                                sub, rg, name);
  if (rg)
    return skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s", sub, rg);
  return skiff_strdup_printf ("/subscriptions/%s", sub);
}

/* The subscription named in a scope ("/subscriptions/X/..."), malloc'd, or NULL. */
static char *
scope_subscription (const char *scope)
{
  if (strncasecmp (scope, "/subscriptions/", 15) != 0)
    return NULL;
  const char *s = scope + 15;
  size_t l = strcspn (s, "/");
  return l ? strndup (s, l) : NULL;
}

/* Checks --role without any request: a built-in name, a GUID or a full id. */
static int
check_role (const char *role, skiff_error_t *err)
{
  if (role[0] == '/' || is_guid (role))
    return 0;
  for (size_t i = 0; i < N_ROLES; i++)
    if (strcasecmp (role, builtin_roles[i].name) == 0)
      return 0;
  return cli_usage_error (
      err, "argument --role: unknown role '%s' (Owner, Contributor, Reader, or a role definition id)", role);
}

/* The roleDefinitionId for --role: a built-in name, a GUID or a full id. malloc'd. */
static char *
role_definition_id (const char *role, const char *scope, skiff_error_t *err)
{
  const char *guid = NULL;
  if (role[0] == '/')
    return skiff_strdup (role);
  for (size_t i = 0; i < N_ROLES; i++)
    if (strcasecmp (role, builtin_roles[i].name) == 0)
      guid = builtin_roles[i].guid;
  if (guid == NULL && is_guid (role))
    guid = role;
  if (guid == NULL)
    {
      cli_usage_error (err, "argument --role: unknown role '%s' (Owner, Contributor, Reader, or a role definition id)",
                       role);
      return NULL;
    }
  cleanup_free char *sub = scope_subscription (scope);
  if (sub == NULL)
    {
      const char *s = cli_subscription (err);
      if (s == NULL)
        return NULL;
      sub = skiff_strdup (s);
    }
  return skiff_strdup_printf ("/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s", sub, guid);
}

/* True when assignment ra is of the role `role` (name, GUID or id). */
static bool
role_matches (json_t *ra, const char *role)
{
  const char *id = skiff_json_get_string (ra_props (ra), "roleDefinitionId");
  const char *name = skiff_json_get_string (ra_props (ra), "roleDefinitionName");
  if (name && strcasecmp (name, role) == 0)
    return true;
  if (id == NULL)
    return false;
  if (strcasecmp (id, role) == 0 || strcasecmp (last_segment (id), last_segment (role)) == 0)
    return true;
  for (size_t i = 0; i < N_ROLES; i++)
    if (strcasecmp (role, builtin_roles[i].name) == 0 && strcasecmp (last_segment (id), builtin_roles[i].guid) == 0)
      return true;
  return false;
}

/* The objectId of the service principal whose appId is `assignee`, or a copy of assignee when
 * there is none (or it cannot be looked up: the caller may not read principals). */
static char *
principal_object_id (const char *assignee, skiff_error_t *err)
{
  cleanup_free char *e = cli_escape (assignee);
  cleanup_free char *path = skiff_strdup_printf ("/skiff/servicePrincipals/%s?api-version=" CLI_API_SKIFF, e);
  struct cli_response r;
  if (cli_http_request ("GET", path, NULL, &r, err) < 0)
    return NULL;
  const char *oid = r.status == 200 ? skiff_json_get_string (r.body, "objectId") : NULL;
  char *out = skiff_strdup (oid ? oid : assignee);
  cli_response_clear (&r);
  return out;
}

/* Lists the assignments at scope, of `assignee` (appId or objectId, may be NULL) and `role`
 * (may be NULL); with exact_scope only those whose properties.scope is the scope itself. */
static int
list_assignments (const char *scope, const char *assignee, const char *role, bool exact_scope, json_t **out,
                  skiff_error_t *err)
{
  cleanup_free char *escope = escape_path (scope);
  cleanup_free char *oid = NULL;
  cleanup_free char *path = NULL;
  if (assignee)
    {
      oid = principal_object_id (assignee, err);
      if (oid == NULL)
        return -1;
      cleanup_free char *eoid = cli_escape (oid);
      path = skiff_strdup_printf (
          "%s" RA_PROVIDER "?api-version=" CLI_API_AUTHZ "&$filter=principalId%%20eq%%20%%27%s%%27", escope, eoid);
    }
  else
    path = skiff_strdup_printf ("%s" RA_PROVIDER "?api-version=" CLI_API_AUTHZ, escope);
  cleanup_json json_t *all = NULL;
  if (cli_http_list (path, &all, err) < 0)
    return -1;
  cleanup_json json_t *kept = json_array ();
  size_t i;
  json_t *ra;
  json_array_foreach (all, i, ra)
  {
    const char *pid = skiff_json_get_string (ra_props (ra), "principalId");
    const char *sc = skiff_json_get_string (ra_props (ra), "scope");
    if (oid && (pid == NULL || (strcasecmp (pid, oid) != 0 && strcasecmp (pid, assignee) != 0)))
      continue;
    if (role && !role_matches (ra, role))
      continue;
    if (exact_scope && (sc == NULL || strcasecmp (sc, scope) != 0))
      continue;
    json_array_append (kept, ra);
  }
  *out = steal_pointer (&kept);
  return 0;
}

/* ------------------------------------------------------------------ verbs */

int
cli_role_assignment_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  const char *assignee = cli_arg (args, "assignee");
  const char *role = cli_arg (args, "role");
  if (assignee == NULL || *assignee == '\0' || role == NULL || *role == '\0')
    return cli_usage_error (err, "the following arguments are required: --assignee, --role");
  if (check_role (role, err) < 0)
    return -1;
  cleanup_free char *scope = scope_of (args, err);
  if (scope == NULL)
    return -1;
  cleanup_free char *def = role_definition_id (role, scope, err);
  if (def == NULL)
    return -1;
  char uuid[37];
  skiff_uuid (uuid);
  cleanup_free char *escope = escape_path (scope);
  cleanup_free char *path = skiff_strdup_printf ("%s" RA_PROVIDER "/%s?api-version=" CLI_API_AUTHZ, escope, uuid);
  cleanup_json json_t *body
      = json_pack ("{s:{s:s,s:s}}", "properties", "roleDefinitionId", def, "principalId", assignee);
  if (body == NULL)
    return cli_usage_error (err, "arguments must be valid UTF-8");
  struct cli_response r;
  if (cli_http_call ("PUT", path, body, &r, err) < 0)
    return -1;
  int rc = cli_print (stdout, r.body, ctx->output, ra_columns, N_RA_COLUMNS, err);
  cli_response_clear (&r);
  return rc;
}

int
cli_role_assignment_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  cleanup_free char *scope = scope_of (args, err);
  if (scope == NULL)
    return -1;
  const char *assignee = cli_arg (args, "assignee");
  const char *role = cli_arg (args, "role");
  cleanup_json json_t *all = NULL;
  if (list_assignments (scope, assignee && *assignee ? assignee : NULL, role && *role ? role : NULL, false, &all, err)
      < 0)
    return -1;
  return cli_print (stdout, all, ctx->output, ra_columns, N_RA_COLUMNS, err);
}

static int
delete_id (const char *id, skiff_error_t *err)
{
  if (id[0] != '/' || strchr (id, '?') || strchr (id, '#'))
    return cli_usage_error (err, "argument --ids: '%s' is not a role assignment id", id);
  cleanup_free char *eid = escape_path (id);
  cleanup_free char *path = skiff_strdup_printf ("%s?api-version=" CLI_API_AUTHZ, eid);
  struct cli_response r;
  if (cli_http_call ("DELETE", path, NULL, &r, err) < 0)
    return -1;
  cli_response_clear (&r);
  return 0;
}

int
cli_role_assignment_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  size_t nids = 0;
  char **ids = cli_arg_list (args, "ids", &nids);
  const char *assignee = cli_arg (args, "assignee");
  const char *role = cli_arg (args, "role");
  if (nids)
    {
      if (assignee || role || cli_has (args, "scope") || cli_has (args, "resource-group") || cli_has (args, "name"))
        return cli_usage_error (err, "usage error: --ids cannot be combined with --assignee/--role/--scope/-g/-n");
      for (size_t i = 0; i < nids; i++)
        if (delete_id (ids[i], err) < 0)
          return -1;
      return 0;
    }
  if ((assignee == NULL || *assignee == '\0') && (role == NULL || *role == '\0'))
    return cli_usage_error (err, "usage error: give --ids, or --assignee and/or --role");
  cleanup_free char *scope = scope_of (args, err);
  if (scope == NULL)
    return -1;
  cleanup_json json_t *matched = NULL;
  if (list_assignments (scope, assignee && *assignee ? assignee : NULL, role && *role ? role : NULL, true, &matched,
                        err)
      < 0)
    return -1;
  if (json_array_size (matched) == 0)
    return skiff_error_set (err, 0, "No matched assignments were found to delete");
  size_t i;
  json_t *ra;
  json_array_foreach (matched, i, ra)
  {
    const char *id = skiff_json_get_string (ra, "id");
    if (id == NULL)
      return skiff_error_set (err, 0, "the server listed a role assignment without an id");
    if (delete_id (id, err) < 0)
      return -1;
  }
  return 0;
}
