/* arm.c - the ARM JSON of a container group as clients see it (secrets removed). */
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "model.h"

/* Copies an object, leaving out the keys in `drop` (NULL-terminated). */
static json_t *
copy_without (json_t *o, const char *const *drop)
{
  json_t *r = json_object ();
  const char *k;
  json_t *v;
  json_object_foreach (o, k, v)
  {
    int skip = 0;
    for (const char *const *d = drop; *d; d++)
      if (strcmp (*d, k) == 0)
        skip = 1;
    if (!skip)
      json_object_set (r, k, v);
  }
  return r;
}

static json_t *
events_for (json_t *events, const char *container)
{
  json_t *r = json_array ();
  size_t i;
  json_t *e;
  json_array_foreach (events, i, e)
  {
    const char *c = json_string_value (json_object_get (e, "container"));
    if ((container == NULL && c == NULL) || (container && c && strcmp (c, container) == 0))
      {
        static const char *const drop[] = { "container", NULL };
        json_array_append_new (r, copy_without (e, drop));
      }
  }
  return r;
}

static json_t *
container_to_arm (json_t *c, const model_group_view_t *v, int with_iv)
{
  const char *name = json_string_value (json_object_get (c, "name"));
  json_t *props = json_object_get (c, "properties");
  static const char *const drop_props[] = { "environmentVariables", NULL };
  json_t *op = copy_without (props, drop_props);
  json_t *envs = json_array ();
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (props, "environmentVariables"), i, e)
  {
    if (json_object_get (e, "secureValue"))
      json_array_append_new (envs, json_pack ("{s:O}", "name", json_object_get (e, "name")));
    else
      json_array_append (envs, e);
  }
  json_object_set_new (op, "environmentVariables", envs);
  if (json_object_get (op, "command") == NULL)
    json_object_set_new (op, "command", json_array ());
  if (with_iv)
    {
      json_t *cv = v->containers_view ? json_object_get (v->containers_view, name) : NULL;
      json_t *iv = json_object ();
      json_object_set_new (iv, "restartCount",
                           json_integer (json_integer_value (json_object_get (cv, "restartCount"))));
      json_t *cur = json_object_get (cv, "currentState");
      json_object_set_new (iv, "currentState",
                           cur ? json_incref (cur) : json_pack ("{s:s,s:s}", "state", "Waiting", "detailStatus", ""));
      json_t *prev = json_object_get (cv, "previousState");
      if (prev)
        json_object_set (iv, "previousState", prev);
      json_object_set_new (iv, "events", events_for (v->events, name));
      json_object_set_new (op, "instanceView", iv);
    }
  return json_pack ("{s:s,s:o}", "name", name, "properties", op);
}

json_t *
model_group_to_arm (const model_group_view_t *v, int with_instance_view)
{
  json_t *spec_props = json_object_get (v->spec, "properties");
  cleanup_free char *id = model_group_id (v->sub, v->rg, v->name);
  json_t *out = json_object ();
  json_object_set_new (out, "id", json_string (id));
  json_object_set_new (out, "name", json_string (v->name));
  json_object_set_new (out, "type", json_string (MODEL_GROUP_TYPE));
  json_object_set_new (out, "location", json_string (v->location));
  json_object_set (out, "tags", v->tags ? v->tags : json_object_get (v->spec, "tags"));
  if (json_object_get (out, "tags") == NULL)
    json_object_set_new (out, "tags", json_object ());
  if (json_object_get (v->spec, "zones"))
    json_object_set (out, "zones", json_object_get (v->spec, "zones"));

  static const char *const drop_group[]
      = { "containers", "initContainers", "imageRegistryCredentials", "volumes", NULL };
  json_t *props = copy_without (spec_props, drop_group);
  json_object_set_new (props, "provisioningState", json_string (v->provisioning_state));
  json_t *cs = json_array ();
  size_t i;
  json_t *c;
  json_array_foreach (json_object_get (spec_props, "containers"), i, c)
      json_array_append_new (cs, container_to_arm (c, v, with_instance_view));
  json_object_set_new (props, "containers", cs);
  json_t *ics = json_array ();
  json_array_foreach (json_object_get (spec_props, "initContainers"), i, c)
      json_array_append_new (ics, container_to_arm (c, v, with_instance_view));
  json_object_set_new (props, "initContainers", ics);
  json_t *creds = json_array ();
  json_array_foreach (json_object_get (spec_props, "imageRegistryCredentials"), i, c)
  {
    static const char *const drop[] = { "password", NULL };
    json_array_append_new (creds, copy_without (c, drop));
  }
  json_object_set_new (props, "imageRegistryCredentials", creds);
  json_t *vols = json_object_get (spec_props, "volumes");
  if (vols)
    {
      json_t *ov = json_array ();
      json_array_foreach (vols, i, c)
      {
        json_t *o = json_object ();
        const char *k;
        json_t *val;
        json_object_foreach (c, k, val)
        {
          if (strcmp (k, "secret") == 0)
            json_object_set_new (o, k, json_object ());
          else if (strcmp (k, "azureFile") == 0)
            {
              static const char *const drop[] = { "storageAccountKey", NULL };
              json_object_set_new (o, k, copy_without (val, drop));
            }
          else
            json_object_set (o, k, val);
        }
        json_array_append_new (ov, o);
      }
      json_object_set_new (props, "volumes", ov);
    }
  if (with_instance_view)
    {
      json_t *iv = json_object ();
      json_object_set_new (iv, "state", json_string (v->state ? v->state : "Pending"));
      json_object_set_new (iv, "events", events_for (v->events, NULL));
      json_object_set_new (props, "instanceView", iv);
    }
  json_object_set_new (props, "provisioningTimeoutInSeconds", json_integer (1800));
  json_object_set_new (props, "isCustomProvisioningTimeout", json_false ());
  json_object_set_new (out, "properties", props);
  return out;
}
