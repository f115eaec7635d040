/* schema.c - canonicalizes client JSON against the ACI schema.
 *
 * Clients send property names in any casing (memoryInGB vs memoryInGb) and extra
 * properties the server does not know. This walks a static description of the
 * schema, looks every property up case-insensitively, type-checks it and copies
 * it under its canonical name. Unknown properties are dropped. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "schema.h"

#define F_END                                                                                                          \
  {                                                                                                                    \
    NULL, 0, NULL                                                                                                      \
  }

static const schema_field_t gpu_fields[] = { { "count", SCHEMA_INT, NULL }, { "sku", SCHEMA_STRING, NULL }, F_END };
static const schema_field_t req_fields[] = {
  { "memoryInGB", SCHEMA_NUMBER, NULL }, { "cpu", SCHEMA_NUMBER, NULL }, { "gpu", SCHEMA_OBJECT, gpu_fields }, F_END
};
static const schema_field_t resources_fields[]
    = { { "requests", SCHEMA_OBJECT, req_fields }, { "limits", SCHEMA_OBJECT, req_fields }, F_END };
static const schema_field_t port_fields[]
    = { { "port", SCHEMA_INT, NULL }, { "protocol", SCHEMA_STRING, NULL }, F_END };
static const schema_field_t env_fields[] = {
  { "name", SCHEMA_STRING, NULL }, { "value", SCHEMA_STRING, NULL }, { "secureValue", SCHEMA_STRING, NULL }, F_END
};
static const schema_field_t mount_fields[] = {
  { "name", SCHEMA_STRING, NULL }, { "mountPath", SCHEMA_STRING, NULL }, { "readOnly", SCHEMA_BOOL, NULL }, F_END
};
static const schema_field_t exec_fields[] = { { "command", SCHEMA_STRING_ARRAY, NULL }, F_END };
static const schema_field_t header_fields[]
    = { { "name", SCHEMA_STRING, NULL }, { "value", SCHEMA_STRING, NULL }, F_END };
static const schema_field_t httpget_fields[] = { { "path", SCHEMA_STRING, NULL },
                                                 { "port", SCHEMA_INT, NULL },
                                                 { "scheme", SCHEMA_STRING, NULL },
                                                 { "httpHeaders", SCHEMA_OBJECT_ARRAY, header_fields },
                                                 F_END };
static const schema_field_t probe_fields[]
    = { { "exec", SCHEMA_OBJECT, exec_fields },      { "httpGet", SCHEMA_OBJECT, httpget_fields },
        { "initialDelaySeconds", SCHEMA_INT, NULL }, { "periodSeconds", SCHEMA_INT, NULL },
        { "failureThreshold", SCHEMA_INT, NULL },    { "successThreshold", SCHEMA_INT, NULL },
        { "timeoutSeconds", SCHEMA_INT, NULL },      F_END };
static const schema_field_t caps_fields[]
    = { { "add", SCHEMA_STRING_ARRAY, NULL }, { "drop", SCHEMA_STRING_ARRAY, NULL }, F_END };
static const schema_field_t secctx_fields[] = { { "privileged", SCHEMA_BOOL, NULL },
                                                { "allowPrivilegeEscalation", SCHEMA_BOOL, NULL },
                                                { "capabilities", SCHEMA_OBJECT, caps_fields },
                                                { "runAsGroup", SCHEMA_INT, NULL },
                                                { "runAsUser", SCHEMA_INT, NULL },
                                                { "seccompProfile", SCHEMA_STRING, NULL },
                                                F_END };
static const schema_field_t container_props[] = { { "image", SCHEMA_STRING, NULL },
                                                  { "command", SCHEMA_STRING_ARRAY, NULL },
                                                  { "ports", SCHEMA_OBJECT_ARRAY, port_fields },
                                                  { "environmentVariables", SCHEMA_OBJECT_ARRAY, env_fields },
                                                  { "resources", SCHEMA_OBJECT, resources_fields },
                                                  { "volumeMounts", SCHEMA_OBJECT_ARRAY, mount_fields },
                                                  { "livenessProbe", SCHEMA_OBJECT, probe_fields },
                                                  { "readinessProbe", SCHEMA_OBJECT, probe_fields },
                                                  { "securityContext", SCHEMA_OBJECT, secctx_fields },
                                                  F_END };
static const schema_field_t container_fields[]
    = { { "name", SCHEMA_STRING, NULL }, { "properties", SCHEMA_OBJECT, container_props }, F_END };
static const schema_field_t cred_fields[]
    = { { "server", SCHEMA_STRING, NULL },      { "username", SCHEMA_STRING, NULL },
        { "password", SCHEMA_STRING, NULL },    { "identity", SCHEMA_STRING, NULL },
        { "identityUrl", SCHEMA_STRING, NULL }, F_END };
static const schema_field_t ip_fields[] = { { "ports", SCHEMA_OBJECT_ARRAY, port_fields },
                                            { "type", SCHEMA_STRING, NULL },
                                            { "ip", SCHEMA_STRING, NULL },
                                            { "dnsNameLabel", SCHEMA_STRING, NULL },
                                            { "autoGeneratedDomainNameLabelScope", SCHEMA_STRING, NULL },
                                            { "fqdn", SCHEMA_STRING, NULL },
                                            F_END };
static const schema_field_t azurefile_fields[] = { { "shareName", SCHEMA_STRING, NULL },
                                                   { "storageAccountName", SCHEMA_STRING, NULL },
                                                   { "readOnly", SCHEMA_BOOL, NULL },
                                                   { "storageAccountKey", SCHEMA_STRING, NULL },
                                                   F_END };
static const schema_field_t gitrepo_fields[] = { { "repository", SCHEMA_STRING, NULL },
                                                 { "directory", SCHEMA_STRING, NULL },
                                                 { "revision", SCHEMA_STRING, NULL },
                                                 F_END };
static const schema_field_t empty_fields[] = { F_END };
static const schema_field_t volume_fields[] = { { "name", SCHEMA_STRING, NULL },
                                                { "azureFile", SCHEMA_OBJECT, azurefile_fields },
                                                { "emptyDir", SCHEMA_OBJECT, empty_fields },
                                                { "secret", SCHEMA_STRING_MAP, NULL },
                                                { "gitRepo", SCHEMA_OBJECT, gitrepo_fields },
                                                F_END };
static const schema_field_t subnet_fields[] = { { "id", SCHEMA_STRING, NULL }, { "name", SCHEMA_STRING, NULL }, F_END };
static const schema_field_t dns_fields[] = { { "nameServers", SCHEMA_STRING_ARRAY, NULL },
                                             { "searchDomains", SCHEMA_STRING, NULL },
                                             { "options", SCHEMA_STRING, NULL },
                                             F_END };
static const schema_field_t group_props[] = { { "containers", SCHEMA_OBJECT_ARRAY, container_fields },
                                              { "initContainers", SCHEMA_OBJECT_ARRAY, container_fields },
                                              { "imageRegistryCredentials", SCHEMA_OBJECT_ARRAY, cred_fields },
                                              { "restartPolicy", SCHEMA_STRING, NULL },
                                              { "ipAddress", SCHEMA_OBJECT, ip_fields },
                                              { "osType", SCHEMA_STRING, NULL },
                                              { "volumes", SCHEMA_OBJECT_ARRAY, volume_fields },
                                              { "subnetIds", SCHEMA_OBJECT_ARRAY, subnet_fields },
                                              { "dnsConfig", SCHEMA_OBJECT, dns_fields },
                                              { "sku", SCHEMA_STRING, NULL },
                                              { "priority", SCHEMA_STRING, NULL },
                                              F_END };
static const schema_field_t identity_fields[] = { { "type", SCHEMA_STRING, NULL }, F_END };
const schema_field_t schema_group_fields[]
    = { { "location", SCHEMA_STRING, NULL },          { "tags", SCHEMA_STRING_MAP, NULL },
        { "zones", SCHEMA_STRING_ARRAY, NULL },       { "identity", SCHEMA_OBJECT, identity_fields },
        { "properties", SCHEMA_OBJECT, group_props }, F_END };

static const char *
type_name (schema_type_t t)
{
  switch (t)
    {
    case SCHEMA_STRING:
      return "a string";
    case SCHEMA_NUMBER:
      return "a number";
    case SCHEMA_INT:
      return "an integer";
    case SCHEMA_BOOL:
      return "a boolean";
    case SCHEMA_OBJECT:
    case SCHEMA_STRING_MAP:
      return "an object";
    case SCHEMA_OBJECT_ARRAY:
    case SCHEMA_STRING_ARRAY:
      return "an array";
    }
  return "a value";
}

static int
type_error (const char *path, schema_type_t t, skiff_error_t *err)
{
  return skiff_error_arm_target (err, 400, "InvalidRequestContent", path,
                                 "The request content was invalid: property '%s' must be %s.", path, type_name (t));
}

static int canon_value (const json_t *in, schema_type_t t, const schema_field_t *sub, const char *path, int depth,
                        json_t **out, skiff_error_t *err);

static int
canon_object (const json_t *in, const schema_field_t *fields, const char *path, int depth, json_t **out,
              skiff_error_t *err)
{
  cleanup_json json_t *o = json_object ();
  for (const schema_field_t *f = fields; f->name; f++)
    {
      json_t *v = skiff_json_get (in, f->name);
      if (v == NULL || json_is_null (v))
        continue;
      cleanup_free char *p = path[0] ? skiff_strdup_printf ("%s.%s", path, f->name) : skiff_strdup (f->name);
      json_t *c = NULL;
      if (canon_value (v, f->type, f->sub, p, depth + 1, &c, err) < 0)
        return -1;
      json_object_set_new (o, f->name, c);
    }
  *out = steal_pointer (&o);
  return 0;
}

static int
canon_value (const json_t *in, schema_type_t t, const schema_field_t *sub, const char *path, int depth, json_t **out,
             skiff_error_t *err)
{
  if (depth > 16)
    return skiff_error_arm_target (err, 400, "InvalidRequestContent", path, "The request content is nested too deep.");
  switch (t)
    {
    case SCHEMA_STRING:
      if (!json_is_string (in))
        return type_error (path, t, err);
      if (json_string_length (in) > 65536)
        return skiff_error_arm_target (err, 400, "InvalidRequestContent", path, "Property '%s' is too long.", path);
      *out = json_incref ((json_t *)in);
      return 0;
    case SCHEMA_NUMBER:
      {
        double d;
        if (json_is_number (in))
          d = json_number_value (in);
        else if (json_is_string (in))
          {
            /* ARM accepts numbers written as strings ("1.5") as the SDKs' serializers may. */
            char *end = NULL;
            d = strtod (json_string_value (in), &end);
            if (end == json_string_value (in) || *end != '\0')
              return type_error (path, t, err);
          }
        else
          return type_error (path, t, err);
        if (!isfinite (d))
          return type_error (path, t, err);
        *out = json_real (d);
        return 0;
      }
    case SCHEMA_INT:
      {
        long long v;
        if (json_is_integer (in))
          v = json_integer_value (in);
        else if (json_is_real (in) && json_real_value (in) == floor (json_real_value (in))
                 && fabs (json_real_value (in)) < 2147483648.0)
          v = (long long)json_real_value (in);
        else if (json_is_string (in))
          {
            char *end = NULL;
            v = strtoll (json_string_value (in), &end, 10);
            if (end == json_string_value (in) || *end != '\0')
              return type_error (path, t, err);
          }
        else
          return type_error (path, t, err);
        if (v < -2147483648LL || v > 2147483647LL)
          return skiff_error_arm_target (err, 400, "InvalidRequestContent", path,
                                         "Property '%s' is out of the int32 range.", path);
        *out = json_integer (v);
        return 0;
      }
    case SCHEMA_BOOL:
      if (json_is_boolean (in))
        *out = json_incref ((json_t *)in);
      else if (json_is_string (in)
               && (skiff_strcaseeq (json_string_value (in), "true")
                   || skiff_strcaseeq (json_string_value (in), "false")))
        *out = json_boolean (skiff_strcaseeq (json_string_value (in), "true"));
      else
        return type_error (path, t, err);
      return 0;
    case SCHEMA_OBJECT:
      if (!json_is_object (in))
        return type_error (path, t, err);
      return canon_object (in, sub, path, depth, out, err);
    case SCHEMA_STRING_MAP:
      {
        if (!json_is_object (in))
          return type_error (path, t, err);
        if (json_object_size (in) > 1024)
          return skiff_error_arm_target (err, 400, "InvalidRequestContent", path, "Property '%s' has too many entries.",
                                         path);
        cleanup_json json_t *o = json_object ();
        const char *k;
        json_t *v;
        json_object_foreach ((json_t *)in, k, v)
        {
          if (!json_is_string (v))
            {
              cleanup_free char *p = skiff_strdup_printf ("%s.%s", path, k);
              return type_error (p, SCHEMA_STRING, err);
            }
          json_object_set (o, k, v);
        }
        *out = steal_pointer (&o);
        return 0;
      }
    case SCHEMA_STRING_ARRAY:
    case SCHEMA_OBJECT_ARRAY:
      {
        if (!json_is_array (in))
          return type_error (path, t, err);
        if (json_array_size (in) > 4096)
          return skiff_error_arm_target (err, 400, "InvalidRequestContent", path, "Property '%s' has too many items.",
                                         path);
        cleanup_json json_t *a = json_array ();
        size_t i;
        json_t *v;
        json_array_foreach (in, i, v)
        {
          cleanup_free char *p = skiff_strdup_printf ("%s[%zu]", path, i);
          json_t *c = NULL;
          if (canon_value (v, t == SCHEMA_STRING_ARRAY ? SCHEMA_STRING : SCHEMA_OBJECT, sub, p, depth + 1, &c, err) < 0)
            return -1;
          json_array_append_new (a, c);
        }
        *out = steal_pointer (&a);
        return 0;
      }
    }
  return type_error (path, t, err);
}

int
schema_canonicalize (const json_t *in, const schema_field_t *fields, json_t **out, skiff_error_t *err)
{
  if (!json_is_object (in))
    return skiff_error_arm (err, 400, "InvalidRequestContent", "The request content must be a JSON object.");
  return canon_object (in, fields, "", 0, out, err);
}
