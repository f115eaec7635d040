/* handlers.c - routing and the ARM operations of skiffd. */
#include <string.h>
#include <strings.h>

#include "agent/agent.h"
#include "api.h"
#include "api_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "model/model.h"
#include "store/store.h"

#define OP_API_VERSION "2018-06-01"

/* ---- helpers ------------------------------------------------------------ */

static int
check_subscription (call_t *c, const char *sub)
{
  if (strcasecmp (sub, c->ctx->subscription_id) != 0)
    {
      cleanup_free char *m = skiff_strdup_printf ("The subscription '%s' could not be found.", sub);
      api_reply_error (c, 404, "SubscriptionNotFound", m, NULL);
      return -1;
    }
  return 0;
}

static json_t *
subscription_json (call_t *c)
{
  cleanup_free char *id = skiff_strdup_printf ("/subscriptions/%s", c->ctx->subscription_id);
  return json_pack ("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "id", id, "subscriptionId", c->ctx->subscription_id,
                    "tenantId", c->ctx->tenant_id, "displayName", "skiff", "state", "Enabled", "subscriptionPolicies",
                    "locationPlacementId", "Public_2014-09-01", "quotaId", "skiff", "spendingLimit", "Off");
}

static json_t *
rg_json (const char *sub, const char *name, const char *location, json_t *tags)
{
  cleanup_free char *id = skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s", sub, name);
  return json_pack ("{s:s,s:s,s:s,s:s,s:o,s:{s:s}}", "id", id, "name", name, "type",
                    "Microsoft.Resources/resourceGroups", "location", location, "tags",
                    tags ? json_incref (tags) : json_object (), "properties", "provisioningState", "Succeeded");
}

static int
require_rg (call_t *c, const char *sub, const char *rg, store_rg_t *out)
{
  cleanup_error skiff_error_t err = NULL;
  if (store_rg_get (c->ctx->store, sub, rg, out, &err) < 0)
    {
      api_reply_skiff_error (c, err);
      return -1;
    }
  if (out->name == NULL)
    {
      cleanup_free char *m = skiff_strdup_printf ("Resource group '%s' could not be found.", rg);
      api_reply_error (c, 404, "ResourceGroupNotFound", m, NULL);
      return -1;
    }
  return 0;
}

static void
group_not_found (call_t *c, const char *rg, const char *name)
{
  cleanup_free char *m = skiff_strdup_printf (
      "The Resource '" MODEL_GROUP_TYPE "/%s' under resource group '%s' was not found.", name, rg);
  api_reply_error (c, 404, "ResourceNotFound", m, NULL);
}

static json_t *
group_arm (call_t *c, store_group_t *g, int with_iv)
{
  cleanup_json json_t *events = NULL;
  if (with_iv)
    {
      cleanup_error skiff_error_t err = NULL;
      if (store_event_list (c->ctx->store, g->id, &events, &err) < 0)
        events = json_array ();
    }
  model_group_view_t v = { .sub = g->sub,
                           .rg = g->rg,
                           .name = g->name,
                           .location = g->location,
                           .spec = g->spec,
                           .tags = g->tags,
                           .provisioning_state = g->provisioning_state,
                           .state = g->state,
                           .containers_view = g->containers_view,
                           .events = events };
  json_t *arm = model_group_to_arm (&v, with_iv);
  agent_net_view (c->ctx->agent, g, json_object_get (json_object_get (arm, "properties"), "ipAddress"));
  return arm;
}

static void
set_async_headers (call_t *c, const char *location, const char *op_id, int with_location)
{
  cleanup_free char *base = api_base_url (c);
  cleanup_free char *loc = skiff_ascii_lower (skiff_strdup (location));
  cleanup_free char *url = skiff_strdup_printf ("%s/subscriptions/%s/providers/" MODEL_PROVIDER
                                                "/locations/%s/operations/%s?api-version=" OP_API_VERSION,
                                                base, c->ctx->subscription_id, loc, op_id);
  api_add_header (c->res, "Azure-AsyncOperation", url);
  if (with_location)
    api_add_header (c->res, "Location", url);
  api_add_header (c->res, "Retry-After", "1");
}

/* ---- subscriptions and resource groups ----------------------------------- */

static void
handle_subscriptions (call_t *c)
{
  if (!api_method_is (c, "GET"))
    return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  cleanup_free char *scope = skiff_strdup_printf ("/subscriptions/%s", c->ctx->subscription_id);
  int visible = api_touches_scope (&c->who, scope);
  if (c->path.n == 1)
    return api_reply_json (
        c, 200, visible ? json_pack ("{s:[o]}", "value", subscription_json (c)) : json_pack ("{s:[]}", "value"));
  if (check_subscription (c, c->path.seg[1]) < 0)
    return;
  if (!visible)
    {
      api_authorize (c, scope, "Microsoft.Resources/subscriptions/read");
      return;
    }
  api_reply_json (c, 200, subscription_json (c));
}

static void
handle_resource_group (call_t *c)
{
  const char *sub = c->path.seg[1];
  cleanup_error skiff_error_t err = NULL;
  if (c->path.n == 3)
    {
      if (!api_method_is (c, "GET"))
        return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
      cleanup_json json_t *list = NULL;
      if (store_rg_list (c->ctx->store, c->ctx->subscription_id, &list, &err) < 0)
        return api_reply_skiff_error (c, err);
      json_t *value = json_array ();
      size_t i;
      json_t *r;
      json_array_foreach (list, i, r)
      {
        const char *name = json_string_value (json_object_get (r, "name"));
        cleanup_free char *scope
            = skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s", c->ctx->subscription_id, name);
        if (api_touches_scope (&c->who, scope))
          json_array_append_new (value, rg_json (c->ctx->subscription_id, name,
                                                 json_string_value (json_object_get (r, "location")),
                                                 json_object_get (r, "tags")));
      }
      return api_reply_json (c, 200, json_pack ("{s:o}", "value", value));
    }
  const char *rg = c->path.seg[3];
  {
    cleanup_free char *scope = skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s", sub, rg);
    const char *action = api_method_is (c, "GET")      ? "Microsoft.Resources/subscriptions/resourceGroups/read"
                         : api_method_is (c, "DELETE") ? "Microsoft.Resources/subscriptions/resourceGroups/delete"
                                                       : "Microsoft.Resources/subscriptions/resourceGroups/write";
    if (api_authorize (c, scope, action) < 0)
      return;
  }
  if (!model_valid_resource_group_name (rg))
    {
      cleanup_free char *m = skiff_strdup_printf (
          "Resource group name '%s' is invalid. It must be 1-90 characters of letters, digits, '_', '-', '.', '(' and "
          "')', and must not end with '.'.",
          rg);
      return api_reply_error (c, 400, "InvalidResourceGroupName", m, "name");
    }
  if (api_method_is (c, "PUT") || api_method_is (c, "PATCH"))
    {
      cleanup_json json_t *body = NULL;
      if (model_parse_json (c->req->body, c->req->body_len, &body, &err) < 0)
        return api_reply_skiff_error (c, err);
      if (!json_is_object (body))
        return api_reply_error (c, 400, "InvalidRequestContent", "The request content must be a JSON object.", NULL);
      store_rg_t cur = { 0 };
      if (store_rg_get (c->ctx->store, c->ctx->subscription_id, rg, &cur, &err) < 0)
        return api_reply_skiff_error (c, err);
      const char *loc = skiff_json_get_string (body, "location");
      if (api_method_is (c, "PATCH"))
        {
          if (cur.name == NULL)
            {
              cleanup_free char *m = skiff_strdup_printf ("Resource group '%s' could not be found.", rg);
              return api_reply_error (c, 404, "ResourceGroupNotFound", m, NULL);
            }
          loc = cur.location;
        }
      if (loc == NULL || *loc == '\0')
        {
          store_rg_clear (&cur);
          return api_reply_error (c, 400, "LocationRequired", "The location property is required for this definition.",
                                  "location");
        }
      json_t *tags = skiff_json_get (body, "tags");
      if (tags && !json_is_object (tags))
        {
          store_rg_clear (&cur);
          return api_reply_error (c, 400, "InvalidRequestContent", "The property 'tags' must be an object.", "tags");
        }
      int created = 0;
      store_rg_t out = { 0 };
      cleanup_free char *locdup = skiff_strdup (loc);
      store_rg_clear (&cur);
      if (store_rg_put (c->ctx->store, c->ctx->subscription_id, rg, locdup, tags, &created, &out, &err) < 0)
        return api_reply_skiff_error (c, err);
      json_t *j = rg_json (c->ctx->subscription_id, out.name, out.location, out.tags);
      store_rg_clear (&out);
      return api_reply_json (c, created ? 201 : 200, j);
    }
  store_rg_t cur = { 0 };
  if (require_rg (c, c->ctx->subscription_id, rg, &cur) < 0)
    return;
  if (api_method_is (c, "GET"))
    {
      json_t *j = rg_json (c->ctx->subscription_id, cur.name, cur.location, cur.tags);
      store_rg_clear (&cur);
      return api_reply_json (c, 200, j);
    }
  if (api_method_is (c, "DELETE"))
    {
      int64_t n = 0;
      if (store_rg_count_groups (c->ctx->store, c->ctx->subscription_id, rg, &n, &err) < 0)
        {
          store_rg_clear (&cur);
          return api_reply_skiff_error (c, err);
        }
      int64_t nets = 0;
      if (api_network_rg_count (c->ctx->store, c->ctx->subscription_id, rg, &nets, &err) < 0)
        {
          store_rg_clear (&cur);
          return api_reply_skiff_error (c, err);
        }
      if (nets > 0 && n == 0)
        {
          cleanup_free char *m = skiff_strdup_printf (
              "The resource group '%s' still holds %lld virtual network(s) or private DNS zone(s). Delete them first.",
              cur.name, (long long)nets);
          store_rg_clear (&cur);
          return api_reply_error (c, 409, "ResourceGroupNotEmpty", m, NULL);
        }
      if (n > 0)
        {
          cleanup_free char *m
              = skiff_strdup_printf ("The resource group '%s' still holds %lld container group(s). Delete them first.",
                                     cur.name, (long long)n);
          store_rg_clear (&cur);
          return api_reply_error (c, 409, "ResourceGroupNotEmpty", m, NULL);
        }
      store_rg_clear (&cur);
      if (store_rg_delete (c->ctx->store, c->ctx->subscription_id, rg, &err) < 0)
        return api_reply_skiff_error (c, err);
      return api_reply_json (c, 200, NULL);
    }
  store_rg_clear (&cur);
  api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
}

/* ---- container groups --------------------------------------------------- */

static void
handle_group_list (call_t *c, const char *rg)
{
  cleanup_error skiff_error_t err = NULL;
  if (!api_method_is (c, "GET"))
    return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  /* Callers see the groups they may read: all of them with read access at this scope, else those
     their resource-level assignments reach; a resource group they have no role in is refused. */
  cleanup_free char *list_scope
      = rg ? skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s", c->ctx->subscription_id, rg)
           : skiff_strdup_printf ("/subscriptions/%s", c->ctx->subscription_id);
  int filter = !api_allowed (&c->who, list_scope, MODEL_GROUP_TYPE "/read");
  if (filter && rg && !api_touches_scope (&c->who, list_scope))
    {
      api_authorize (c, list_scope, MODEL_GROUP_TYPE "/read");
      return;
    }
  if (rg)
    {
      store_rg_t r = { 0 };
      if (require_rg (c, c->ctx->subscription_id, rg, &r) < 0)
        return;
      store_rg_clear (&r);
    }
  int page = c->ctx->page_size > 0 ? c->ctx->page_size : 100;
  cleanup_free char *top = api_query_get (c->req->query, c->req->query_len, "$top");
  if (top && atoi (top) > 0 && atoi (top) < page)
    page = atoi (top);
  cleanup_free char *skip = api_query_get (c->req->query, c->req->query_len, "$skipToken");
  store_group_t *groups = NULL;
  int n = 0;
  if (store_group_list (c->ctx->store, c->ctx->subscription_id, rg, skip, page + 1, &groups, &n, &err) < 0)
    return api_reply_skiff_error (c, err);
  json_t *value = json_array ();
  for (int i = 0; i < n && i < page; i++)
    {
      if (strcmp (groups[i].desired, "Deleted") == 0)
        continue;
      if (filter)
        {
          cleanup_free char *gs = model_group_id (groups[i].sub, groups[i].rg, groups[i].name);
          if (!api_allowed (&c->who, gs, MODEL_GROUP_TYPE "/read"))
            continue;
        }
      json_array_append_new (value, group_arm (c, &groups[i], 0));
    }
  json_t *body = json_pack ("{s:o}", "value", value);
  if (n > page)
    {
      cleanup_free char *key
          = skiff_ascii_lower (skiff_strdup_printf ("%s/%s", groups[page - 1].rg, groups[page - 1].name));
      cleanup_free char *base = api_base_url (c);
      char enc[600];
      size_t j = 0;
      for (const char *p = key; *p && j + 4 < sizeof (enc); p++)
        {
          if (*p == '/' || *p == '(' || *p == ')')
            j += (size_t)snprintf (enc + j, sizeof (enc) - j, "%%%02X", (unsigned char)*p);
          else
            enc[j++] = *p;
        }
      enc[j] = '\0';
      cleanup_free char *path = strndup (c->req->path, c->req->path_len);
      cleanup_free char *next
          = skiff_strdup_printf ("%s%s?api-version=%s&$top=%d&$skipToken=%s", base, path, c->api_version, page, enc);
      json_object_set_new (body, "nextLink", json_string (next));
    }
  store_group_free_array (groups, n);
  api_reply_json (c, 200, body);
}

static void handle_group_put_checked (call_t *c, const char *rg, const char *name, store_rg_t *r, json_t *spec);

static void
handle_group_put (call_t *c, const char *rg, const char *name, store_rg_t *r)
{
  cleanup_error skiff_error_t err = NULL;
  cleanup_json json_t *spec = NULL;
  if (model_parse_group (c->req->body, c->req->body_len, name, &c->ctx->limits, &spec, &err) < 0)
    return api_reply_skiff_error (c, err);
  /* a subnet must exist and be delegated to container groups, and stay so until the group is
     recorded (the network writes check for groups using a subnet) */
  int in_subnet = json_array_size (json_object_get (json_object_get (spec, "properties"), "subnetIds")) > 0;
  if (in_subnet)
    api_network_lock ();
  handle_group_put_checked (c, rg, name, r, spec);
  if (in_subnet)
    api_network_unlock ();
}

/* handle_group_put with the body parsed into spec (borrowed). */
static void
handle_group_put_checked (call_t *c, const char *rg, const char *name, store_rg_t *r, json_t *spec)
{
  cleanup_error skiff_error_t err = NULL;
  const char *subnet_id = json_string_value (
      json_object_get (json_array_get (json_object_get (json_object_get (spec, "properties"), "subnetIds"), 0), "id"));
  if (subnet_id && api_subnet_resolve (c->ctx->store, c->ctx->subscription_id, subnet_id, NULL, NULL, NULL, &err) < 0)
    return api_reply_skiff_error (c, err);
  store_group_t cur = { 0 };
  if (store_group_get (c->ctx->store, c->ctx->subscription_id, rg, name, &cur, &err) < 0)
    return api_reply_skiff_error (c, err);
  if (cur.id && strcmp (cur.desired, "Deleted") == 0)
    {
      store_group_clear (&cur);
      return api_reply_error (c, 409, "ContainerGroupInTransition",
                              "The container group is being deleted. Retry the request once the deletion finished.",
                              NULL);
    }
  char op_id[40], gid[40];
  skiff_uuid (op_id);
  skiff_uuid (gid);
  json_t *tags = json_object_get (spec, "tags");
  store_group_t g = { .id = skiff_strdup (gid),
                      .sub = (char *)c->ctx->subscription_id,
                      .rg = r->name,
                      .name = (char *)name,
                      .location = (char *)json_string_value (json_object_get (spec, "location")),
                      .spec = spec,
                      .tags = tags ? tags : NULL,
                      .provisioning_state = (char *)"Pending",
                      .desired = (char *)"Running" };
  if (cur.id)
    {
      g.name = cur.name; /* keep the first spelling */
      free (g.id);
      g.id = skiff_strdup (cur.id); /* an update keeps the group's id */
    }
  /* addresses, host ports and the DNS name are claimed before the group is recorded, so a clash
     is the PUT's answer (a crash in between leaves claims that the next start gives back) */
  if (c->ctx->agent && agent_net_claim (c->ctx->agent, c->ctx->tenant_id, &g, &err) < 0)
    {
      free (g.id);
      store_group_clear (&cur);
      return api_reply_skiff_error (c, err);
    }
  int created = 0;
  int rc = store_group_put (c->ctx->store, &g, op_id, &created, &err);
  cleanup_free char *id = g.id;
  if (rc < 0)
    {
      store_group_clear (&cur);
      return api_reply_skiff_error (c, err);
    }
  store_event_add (c->ctx->store, id, NULL, created ? "Accepted" : "Updating", "Normal",
                   created ? "Container group accepted" : "Container group update accepted", skiff_now_ns (), 0, NULL);
  store_group_clear (&cur);
  if (c->ctx->agent)
    agent_notify (c->ctx->agent, id);
  store_group_t fresh = { 0 };
  if (store_group_get_by_id (c->ctx->store, id, &fresh, &err) < 0 || fresh.id == NULL)
    return api_reply_skiff_error (c, err);
  json_t *body = group_arm (c, &fresh, 1);
  set_async_headers (c, fresh.location, op_id, 0);
  store_group_clear (&fresh);
  api_reply_json (c, created ? 201 : 200, body);
}

/* The Azure action a request on a container group (or below it) performs. */
static const char *
group_action (call_t *c, int action_idx)
{
  if (action_idx < 0)
    return api_method_is (c, "GET")      ? MODEL_GROUP_TYPE "/read"
           : api_method_is (c, "DELETE") ? MODEL_GROUP_TYPE "/delete"
                                         : MODEL_GROUP_TYPE "/write";
  const char *what = c->path.seg[action_idx];
  int n = c->path.n - action_idx;
  if (n == 1 && !strcasecmp (what, "start"))
    return MODEL_GROUP_TYPE "/start/action";
  if (n == 1 && !strcasecmp (what, "stop"))
    return MODEL_GROUP_TYPE "/stop/action";
  if (n == 1 && !strcasecmp (what, "restart"))
    return MODEL_GROUP_TYPE "/restart/action";
  if (n == 3 && !strcasecmp (what, "containers") && !strcasecmp (c->path.seg[action_idx + 2], "exec"))
    return MODEL_GROUP_TYPE "/containers/exec/action";
  if (n == 3 && !strcasecmp (what, "containers") && !strcasecmp (c->path.seg[action_idx + 2], "attach"))
    return MODEL_GROUP_TYPE "/containers/attach/action";
  if (n == 3 && !strcasecmp (what, "containers") && !strcasecmp (c->path.seg[action_idx + 2], "logs"))
    return MODEL_GROUP_TYPE "/containers/logs/read";
  return api_method_is (c, "GET") ? MODEL_GROUP_TYPE "/read" : MODEL_GROUP_TYPE "/write";
}

static void
handle_group (call_t *c, const char *rg, const char *name, int action_idx)
{
  cleanup_error skiff_error_t err = NULL;
  {
    cleanup_free char *scope = model_group_id (c->ctx->subscription_id, rg, name);
    if (api_authorize (c, scope, group_action (c, action_idx)) < 0)
      return;
  }
  /* The counter is read before the store: a body cached under it is at least that new. */
  uint64_t version = store_change_count (c->ctx->store);
  cleanup_free char *cache_key = NULL;
  if (action_idx < 0 && api_method_is (c, "GET"))
    {
      cache_key = skiff_ascii_lower (skiff_strdup_printf ("%s|%s|%s", c->ctx->subscription_id, rg, name));
      if (api_cache_get (c->ctx->cache, cache_key, version, &c->res->body, &c->res->body_len))
        {
          c->res->status = 200;
          return;
        }
    }
  store_rg_t r = { 0 };
  if (require_rg (c, c->ctx->subscription_id, rg, &r) < 0)
    return;
  if (action_idx < 0 && api_method_is (c, "PUT"))
    {
      handle_group_put (c, rg, name, &r);
      store_rg_clear (&r);
      return;
    }
  store_rg_clear (&r);
  store_group_t g = { 0 };
  if (store_group_get (c->ctx->store, c->ctx->subscription_id, rg, name, &g, &err) < 0)
    return api_reply_skiff_error (c, err);
  if (g.id == NULL || (strcmp (g.desired, "Deleted") == 0 && !api_method_is (c, "GET") && !api_method_is (c, "DELETE")))
    {
      if (g.id == NULL && action_idx < 0 && api_method_is (c, "DELETE"))
        return api_reply_json (c, 204, NULL);
      store_group_clear (&g);
      return group_not_found (c, rg, name);
    }
  if (action_idx < 0)
    {
      if (api_method_is (c, "GET"))
        {
          json_t *j = group_arm (c, &g, 1);
          store_group_clear (&g);
          api_reply_json (c, 200, j);
          if (c->res->body)
            api_cache_put (c->ctx->cache, cache_key, version, c->res->body, c->res->body_len);
          return;
        }
      if (api_method_is (c, "PATCH"))
        {
          cleanup_json json_t *body = NULL;
          if (model_parse_json (c->req->body, c->req->body_len, &body, &err) < 0)
            {
              store_group_clear (&g);
              return api_reply_skiff_error (c, err);
            }
          json_t *tags = skiff_json_get (body, "tags");
          if (!json_is_object (body) || (tags && !json_is_object (tags)))
            {
              store_group_clear (&g);
              return api_reply_error (c, 400, "InvalidRequestContent", "The property 'tags' must be an object.",
                                      "tags");
            }
          if (tags)
            {
              const char *k;
              json_t *v;
              json_object_foreach (tags, k, v)
              {
                if (!json_is_string (v))
                  {
                    store_group_clear (&g);
                    return api_reply_error (c, 400, "InvalidRequestContent", "Tag values must be strings.", "tags");
                  }
              }
              if (store_group_set_tags (c->ctx->store, g.id, tags, &err) < 0)
                {
                  store_group_clear (&g);
                  return api_reply_skiff_error (c, err);
                }
              json_decref (g.tags);
              g.tags = json_incref (tags);
            }
          json_t *j = group_arm (c, &g, 1);
          store_group_clear (&g);
          return api_reply_json (c, 200, j);
        }
      if (api_method_is (c, "DELETE"))
        {
          char op_id[40];
          skiff_uuid (op_id);
          if (strcmp (g.desired, "Deleted") != 0
              && store_group_set_desired (c->ctx->store, g.id, "Deleted", 1, op_id, &err) < 0)
            {
              store_group_clear (&g);
              return api_reply_skiff_error (c, err);
            }
          if (strcmp (g.desired, "Deleted") == 0)
            store_op_set (c->ctx->store, op_id, g.id, "InProgress", NULL, NULL);
          store_group_set_status (c->ctx->store, g.id, "Deleting", NULL, NULL, -1, NULL);
          if (c->ctx->agent)
            agent_notify (c->ctx->agent, g.id);
          set_async_headers (c, g.location, op_id, 1);
          store_group_clear (&g);
          return api_reply_json (c, 202, NULL);
        }
      store_group_clear (&g);
      return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
    }

  /* sub-resources and actions */
  const char *action = c->path.seg[action_idx];
  if (c->path.n == action_idx + 1 && api_method_is (c, "POST")
      && (!strcasecmp (action, "start") || !strcasecmp (action, "stop") || !strcasecmp (action, "restart")))
    {
      char op_id[40];
      skiff_uuid (op_id);
      int rc = 0;
      if (!strcasecmp (action, "stop"))
        {
          if (g.state && (!strcmp (g.state, "Succeeded") || !strcmp (g.state, "Failed"))
              && !strcmp (g.desired, "Running"))
            rc = 0; /* ACI: stop does nothing once the group has ended */
          else
            rc = store_group_set_desired (c->ctx->store, g.id, "Stopped", 0, NULL, &err);
          if (rc == 0 && strcmp (g.desired, "Stopped") != 0)
            {
              /* ACI answers stop synchronously: the group reads Stopped from now on while the
                 agent terminates its containers (SIGTERM, then SIGKILL after the grace period). */
              store_group_set_status (c->ctx->store, g.id, NULL, "Stopped", NULL, -1, NULL);
              store_event_add (c->ctx->store, g.id, NULL, "Stopping", "Normal", "Stopping container group",
                               skiff_now_ns (), 0, NULL);
            }
        }
      else if (!strcasecmp (action, "start"))
        {
          if (!strcmp (g.desired, "Running") && g.state && strcmp (g.state, "Stopped") != 0
              && strcmp (g.state, "Succeeded") != 0 && strcmp (g.state, "Failed") != 0)
            {
              store_group_clear (&g);
              return api_reply_json (c, 204, NULL); /* already running or starting */
            }
          rc = store_group_set_desired (c->ctx->store, g.id, "Running", 1, op_id, &err);
          if (rc == 0)
            store_group_set_status (c->ctx->store, g.id, "Pending", "Pending", NULL, -1, NULL);
        }
      else
        {
          if (strcmp (g.desired, "Running") != 0 || (g.state && strcmp (g.state, "Running") != 0))
            {
              store_group_clear (&g);
              return api_reply_error (c, 409, "ContainerGroupNotRunning",
                                      "The container group can only be restarted while it is running. Use start "
                                      "instead.",
                                      NULL);
            }
          rc = store_group_set_desired (c->ctx->store, g.id, "Running", 1, op_id, &err);
        }
      if (rc < 0)
        {
          store_group_clear (&g);
          return api_reply_skiff_error (c, err);
        }
      if (c->ctx->agent)
        agent_notify (c->ctx->agent, g.id);
      int status = 204;
      if (!strcasecmp (action, "start"))
        {
          set_async_headers (c, g.location, op_id, 1);
          status = 202;
        }
      else if (!strcasecmp (action, "restart"))
        set_async_headers (c, g.location, op_id, 0);
      store_group_clear (&g);
      return api_reply_json (c, status, NULL);
    }
  if (c->path.n == action_idx + 1 && api_method_is (c, "GET")
      && !strcasecmp (action, "outboundNetworkDependenciesEndpoints"))
    {
      store_group_clear (&g);
      return api_reply_json (c, 200, json_array ());
    }
  if (c->path.n == action_idx + 3 && !strcasecmp (action, "containers"))
    {
      const char *cname = c->path.seg[action_idx + 1];
      const char *sub = c->path.seg[action_idx + 2];
      int found = 0;
      size_t i;
      json_t *ct;
      json_t *props = json_object_get (g.spec, "properties");
      json_array_foreach (json_object_get (props, "containers"), i, ct) found
          |= skiff_strcaseeq (json_string_value (json_object_get (ct, "name")), cname);
      json_array_foreach (json_object_get (props, "initContainers"), i, ct) found
          |= skiff_strcaseeq (json_string_value (json_object_get (ct, "name")), cname);
      if (!found)
        {
          cleanup_free char *m
              = skiff_strdup_printf ("The container '%s' was not found in container group '%s'.", cname, g.name);
          store_group_clear (&g);
          return api_reply_error (c, 404, "ContainerNotFound", m, NULL);
        }
      if (!strcasecmp (sub, "logs") && api_method_is (c, "GET"))
        {
          cleanup_free char *tail_s = api_query_get (c->req->query, c->req->query_len, "tail");
          cleanup_free char *ts_s = api_query_get (c->req->query, c->req->query_len, "timestamps");
          int tail = -1;
          if (tail_s)
            {
              char *end = NULL;
              long v = strtol (tail_s, &end, 10);
              if (end == tail_s || *end || v < 0 || v > 1000000000L)
                {
                  store_group_clear (&g);
                  return api_reply_error (c, 400, "InvalidParameter",
                                          "The 'tail' parameter must be a non-negative integer.", "tail");
                }
              tail = (int)v;
            }
          int ts = ts_s && !strcasecmp (ts_s, "true");
          cleanup_free char *content = NULL;
          cleanup_free char *lower_name = skiff_ascii_lower (skiff_strdup (cname));
          if (agent_read_logs (c->ctx->agent, g.id, lower_name, tail, ts, &content, &err) < 0)
            {
              store_group_clear (&g);
              return api_reply_skiff_error (c, err);
            }
          store_group_clear (&g);
          return api_reply_json (c, 200, json_pack ("{s:s}", "content", content ? content : ""));
        }
      if ((!strcasecmp (sub, "exec") || !strcasecmp (sub, "attach")) && api_method_is (c, "POST"))
        {
          cleanup_free char *lower_name = skiff_ascii_lower (skiff_strdup (cname));
          api_handle_stream_post (c, g.id, lower_name, !strcasecmp (sub, "exec"));
          store_group_clear (&g);
          return;
        }
      store_group_clear (&g);
      return api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
    }
  store_group_clear (&g);
  api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
}

static void
handle_operation (call_t *c, const char *op_id)
{
  cleanup_error skiff_error_t err = NULL;
  cleanup_free char *status = NULL, *gid = NULL;
  cleanup_json json_t *error = NULL;
  int64_t start = 0;
  if (store_op_get (c->ctx->store, op_id, &status, &error, &gid, &start, &err) < 0)
    return api_reply_skiff_error (c, err);
  if (status == NULL)
    {
      cleanup_free char *m = skiff_strdup_printf ("The operation '%s' was not found.", op_id);
      return api_reply_error (c, 404, "OperationNotFound", m, NULL);
    }
  char ts[40];
  skiff_format_time (start, ts, sizeof (ts));
  json_t *body = json_pack ("{s:s,s:s,s:s}", "name", op_id, "status", status, "startTime", ts);
  store_group_t g = { 0 };
  if (store_group_get_by_id (c->ctx->store, gid, &g, NULL) == 0 && g.id)
    {
      cleanup_free char *id = model_group_id (g.sub, g.rg, g.name);
      if (!api_allowed (&c->who, id, MODEL_GROUP_TYPE "/read"))
        {
          store_group_clear (&g);
          json_decref (body);
          cleanup_free char *m = skiff_strdup_printf ("The operation '%s' was not found.", op_id);
          return api_reply_error (c, 404, "OperationNotFound", m, NULL);
        }
      json_object_set_new (body, "id", json_string (id));
      json_t *events = NULL;
      if (store_event_list (c->ctx->store, g.id, &events, NULL) == 0)
        json_object_set_new (body, "properties", json_pack ("{s:o}", "events", events));
    }
  store_group_clear (&g);
  if (error)
    json_object_set (body, "error", json_object_get (error, "error") ? json_object_get (error, "error") : error);
  /* not done yet: ask for the next poll in a second (without it, the Azure SDKs wait 30 s) */
  if (strcmp (status, "InProgress") == 0)
    api_add_header (c->res, "Retry-After", "1");
  api_reply_json (c, 200, body);
}

static void
handle_provider_locations (call_t *c, const char *loc, const char *what, int n_after)
{
  if (!strcasecmp (what, "cachedImages") && n_after == 1 && api_seg_is (c, c->path.n - 1, "prune"))
    {
      /* skiff's own action: remove image layers no group on this host uses */
      if (!api_method_is (c, "POST"))
        return api_reply_error (c, 405, "MethodNotAllowed", "Use POST to prune cached images.", NULL);
      cleanup_free char *scope = skiff_strdup_printf ("/subscriptions/%s", c->ctx->subscription_id);
      if (api_authorize (c, scope, MODEL_PROVIDER "/locations/cachedImages/prune/action") < 0)
        return;
      int removed = 0;
      cleanup_error skiff_error_t err = NULL;
      if (c->ctx->agent && agent_prune_images (c->ctx->agent, &removed, &err) < 0)
        return api_reply_skiff_error (c, err);
      return api_reply_json (c, 200, json_pack ("{s:i}", "removed", removed));
    }
  if (!api_method_is (c, "GET"))
    return api_reply_error (c, 405, "MethodNotAllowed", "The method is not allowed for this resource.", NULL);
  if (!strcasecmp (what, "operations") && n_after == 1)
    return handle_operation (c, c->path.seg[c->path.n - 1]);
  if (n_after != 0)
    return api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
  if (!strcasecmp (what, "usages"))
    {
      store_group_t *groups = NULL;
      int n = 0;
      cleanup_error skiff_error_t err = NULL;
      if (store_group_list (c->ctx->store, c->ctx->subscription_id, NULL, NULL, 0, &groups, &n, &err) < 0)
        return api_reply_skiff_error (c, err);
      store_group_free_array (groups, n);
      return api_reply_json (c, 200,
                             json_pack ("{s:[{s:s,s:i,s:i,s:{s:s,s:s}}]}", "value", "unit", "Count", "currentValue", n,
                                        "limit", 2000, "name", "value", "ContainerGroups", "localizedValue",
                                        "Container Groups"));
    }
  if (!strcasecmp (what, "capabilities"))
    return api_reply_json (c, 200,
                           json_pack ("{s:[{s:s,s:s,s:s,s:s,s:s,s:{s:f,s:f,s:i}}]}", "value", "resourceType",
                                      "containerGroups", "osType", "Linux", "location", loc, "ipAddressType", "Public",
                                      "gpu", "None", "capabilities", "maxMemoryInGB", c->ctx->limits.host_memory_gb,
                                      "maxCpu", c->ctx->limits.host_cpus, "maxGpuCount", 0));
  if (!strcasecmp (what, "cachedImages"))
    return api_reply_json (c, 200, json_pack ("{s:[]}", "value"));
  api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
}

/* ---- dispatch ----------------------------------------------------------- */

static void
route (call_t *c)
{
  api_path_t *p = &c->path;
  if (p->n >= 1 && api_seg_is (c, 0, "providers"))
    {
      if (p->n == 3 && api_seg_is (c, 1, MODEL_PROVIDER) && api_seg_is (c, 2, "operations"))
        return api_reply_json (c, 200,
                               json_pack ("{s:[{s:s,s:{s:s,s:s,s:s,s:s},s:s}]}", "value", "name",
                                          MODEL_GROUP_TYPE "/read", "display", "provider", MODEL_PROVIDER, "resource",
                                          "containerGroups", "operation", "Get Container Group", "description",
                                          "Get all container groups.", "origin", "User"));
      return api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
    }
  if (p->n == 1 && api_seg_is (c, 0, "tenants"))
    return api_reply_json (c, 200,
                           json_pack ("{s:[{s:s+,s:s,s:s,s:s}]}", "value", "id", "/tenants/", c->ctx->tenant_id,
                                      "tenantId", c->ctx->tenant_id, "tenantCategory", "Home", "displayName", "skiff"));
  if (p->n >= 2 && api_seg_is (c, 0, "skiff") && api_seg_is (c, 1, "servicePrincipals"))
    return api_handle_principals (c);
  if (p->n == 0 || !api_seg_is (c, 0, "subscriptions"))
    return api_reply_error (c, 404, "NotFound", "The requested path is not served by this API.", NULL);
  /* role assignments and definitions at any scope: {scope}/providers/Microsoft.Authorization/... */
  for (int i = 2; i + 2 < p->n; i++)
    if (api_seg_is (c, i, "providers") && api_seg_is (c, i + 1, "Microsoft.Authorization"))
      {
        if (check_subscription (c, p->seg[1]) < 0)
          return;
        return api_handle_authorization (c, i);
      }
  if (p->n <= 2)
    return handle_subscriptions (c);
  if (check_subscription (c, p->seg[1]) < 0)
    return;
  /* {sub}/resourcegroups[/{rg}] */
  if (api_seg_is (c, 2, "resourcegroups") && p->n <= 4)
    return handle_resource_group (c);
  /* Microsoft.Network at subscription ({sub}/providers/...) or resource-group scope */
  if (p->n >= 5 && api_seg_is (c, 2, "providers") && api_seg_is (c, 3, "Microsoft.Network"))
    return api_handle_network (c, 2);
  if (p->n >= 7 && api_seg_is (c, 2, "resourcegroups") && api_seg_is (c, 4, "providers")
      && api_seg_is (c, 5, "Microsoft.Network"))
    return api_handle_network (c, 4);
  /* {sub}/providers/Microsoft.ContainerInstance/... */
  if (api_seg_is (c, 2, "providers"))
    {
      if (p->n >= 4 && !api_seg_is (c, 3, MODEL_PROVIDER))
        return api_reply_error (c, 404, "NoRegisteredProviderFound", "No registered resource provider found.", NULL);
      cleanup_free char *sub_scope = skiff_strdup_printf ("/subscriptions/%s", c->ctx->subscription_id);
      if (!api_touches_scope (&c->who, sub_scope))
        {
          api_authorize (c, sub_scope, MODEL_PROVIDER "/read");
          return;
        }
      if (p->n == 4)
        return api_reply_json (c, 200,
                               json_pack ("{s:s,s:s,s:s,s:[{s:s,s:[s]}]}", "id", "", "namespace", MODEL_PROVIDER,
                                          "registrationState", "Registered", "resourceTypes", "resourceType",
                                          "containerGroups", "locations", "local"));
      if (p->n == 5 && api_seg_is (c, 4, "containerGroups"))
        return handle_group_list (c, NULL);
      if (p->n >= 7 && api_seg_is (c, 4, "locations"))
        return handle_provider_locations (c, p->seg[5], p->seg[6], p->n - 7);
      return api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
    }
  /* {sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups[/{name}[/...]] */
  if (api_seg_is (c, 2, "resourcegroups") && api_seg_is (c, 4, "providers"))
    {
      if (p->n >= 6 && !api_seg_is (c, 5, MODEL_PROVIDER))
        return api_reply_error (c, 404, "NoRegisteredProviderFound", "No registered resource provider found.", NULL);
      if (p->n >= 7 && api_seg_is (c, 6, "containerGroups"))
        {
          if (p->n == 7)
            return handle_group_list (c, p->seg[3]);
          return handle_group (c, p->seg[3], p->seg[7], p->n > 8 ? 8 : -1);
        }
    }
  api_reply_error (c, 404, "InvalidResourceType", "The resource type could not be found.", NULL);
}

void
api_handle (api_ctx_t *ctx, const api_request_t *req, api_response_t *res)
{
  call_t c = { .ctx = ctx, .req = req, .res = res };
  memset (res, 0, sizeof (*res));
  cleanup_error skiff_error_t err = NULL;
  if (api_path_parse (req->path, req->path_len, &c.path, &err) < 0)
    {
      api_reply_skiff_error (&c, err);
      goto out;
    }
  if (api_identity_route (&c))
    goto out;
  if (api_authenticate (&c) < 0)
    goto out;
  c.api_version = api_query_get (req->query, req->query_len, "api-version");
  if (c.api_version == NULL || c.api_version[0] == '\0')
    {
      api_reply_error (&c, 400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.", NULL);
      goto out;
    }
  route (&c);
out:
  api_add_header (res, "Cache-Control", "no-cache");
  char rid[40];
  skiff_uuid (rid);
  api_add_header (res, "x-ms-request-id", rid);
  free (c.api_version);
  api_principal_clear (&c.who);
  api_path_clear (&c.path);
}
