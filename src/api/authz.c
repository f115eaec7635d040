/* authz.c - the built-in roles and the permission check of every API call.
 *
 * A role is a list of action patterns it allows and a list it excludes (Azure's Actions and
 * NotActions). A caller may perform an action on a scope when one of its role assignments sits at
 * that scope or above it and its role allows the action. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "common/cleanup.h"
#include "common/util.h"

static const char *const owner_actions[] = { "*", NULL };
static const char *const none[] = { NULL };
static const char *const contributor_not[]
    = { "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action", "Skiff.Identity/*", NULL };
static const char *const reader_actions[] = { "*/read", NULL };

static const api_role_t roles[] = {
  { "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner",
    "Grants full access to manage all resources, including the ability to assign roles.", owner_actions, none },
  { "b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor",
    "Grants full access to manage all resources, but does not allow you to assign roles or manage identities.",
    owner_actions, contributor_not },
  { "acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources, but does not allow you to make any changes.",
    reader_actions, none },
};

const api_role_t *
api_roles (int *n)
{
  *n = (int)(sizeof (roles) / sizeof (roles[0]));
  return roles;
}

const api_role_t *
api_role_find (const char *ref)
{
  if (ref == NULL)
    return NULL;
  const char *slash = strrchr (ref, '/');
  const char *id = slash ? slash + 1 : ref;
  for (size_t i = 0; i < sizeof (roles) / sizeof (roles[0]); i++)
    if (strcasecmp (id, roles[i].id) == 0 || (slash == NULL && strcasecmp (ref, roles[i].name) == 0))
      return &roles[i];
  return NULL;
}

int
api_action_match (const char *pattern, const char *action)
{
  /* iterative wildcard match; `*` spans any characters, '/' included */
  const char *star = NULL, *resume = NULL;
  while (*action)
    {
      if (*pattern == '*')
        {
          star = pattern++;
          resume = action;
        }
      else if (*pattern && tolower ((unsigned char)*pattern) == tolower ((unsigned char)*action))
        {
          pattern++;
          action++;
        }
      else if (star)
        {
          pattern = star + 1;
          action = ++resume;
        }
      else
        return 0;
    }
  while (*pattern == '*')
    pattern++;
  return *pattern == '\0';
}

int
api_scope_within (const char *scope, const char *outer)
{
  size_t lo = strlen (outer);
  while (lo > 0 && outer[lo - 1] == '/')
    lo--;
  if (strncasecmp (scope, outer, lo) != 0)
    return 0;
  return scope[lo] == '\0' || scope[lo] == '/';
}

static int
role_allows (const api_role_t *r, const char *action)
{
  int ok = 0;
  for (const char *const *a = r->actions; *a && !ok; a++)
    ok = api_action_match (*a, action);
  for (const char *const *a = r->not_actions; *a && ok; a++)
    ok = !api_action_match (*a, action);
  return ok;
}

int
api_allowed (const api_principal_t *who, const char *scope, const char *action)
{
  if (who->is_admin)
    return 1;
  size_t i;
  json_t *a;
  json_array_foreach (who->assignments, i, a)
  {
    const char *as = json_string_value (json_object_get (a, "scope"));
    const api_role_t *r = api_role_find (json_string_value (json_object_get (a, "roleId")));
    if (as && r && api_scope_within (scope, as) && role_allows (r, action))
      return 1;
  }
  return 0;
}

int
api_touches_scope (const api_principal_t *who, const char *scope)
{
  if (who->is_admin)
    return 1;
  size_t i;
  json_t *a;
  json_array_foreach (who->assignments, i, a)
  {
    const char *as = json_string_value (json_object_get (a, "scope"));
    if (as && (api_scope_within (scope, as) || api_scope_within (as, scope)))
      return 1;
  }
  return 0;
}

int
api_authorize (call_t *c, const char *scope, const char *action)
{
  if (api_allowed (&c->who, scope, action))
    return 0;
  cleanup_free char *m = skiff_strdup_printf (
      "The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the "
      "scope is invalid. If access was recently granted, please refresh your credentials.",
      c->who.app_id ? c->who.app_id : "", c->who.object_id ? c->who.object_id : "", action, scope);
  api_reply_error (c, 403, "AuthorizationFailed", m, NULL);
  return -1;
}

void
api_principal_clear (api_principal_t *who)
{
  free (who->app_id);
  free (who->object_id);
  json_decref (who->assignments);
  memset (who, 0, sizeof (*who));
}
