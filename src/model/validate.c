/* validate.c - ACI validation rules for a container-group PUT body. */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "model.h"
#include "schema.h"

int
model_parse_json (const char *body, size_t len, json_t **out, skiff_error_t *err)
{
  if (len > MODEL_MAX_BODY_BYTES)
    return skiff_error_arm (err, 413, "RequestEntityTooLarge", "The request body is larger than the limit of %d bytes.",
                            MODEL_MAX_BODY_BYTES);
  if (body == NULL || len == 0)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "The request content was invalid: the body is empty.");
  json_error_t jerr;
  json_t *j = json_loadb (body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL)
    return skiff_error_arm (err, 400, "InvalidRequestContent",
                            "The request content was invalid and could not be deserialized: %s at line %d column %d.",
                            jerr.text, jerr.line, jerr.column);
  *out = j;
  return 0;
}

/* lowercase letters, digits and '-', 1..63, no leading/trailing '-', no "--". */
static int
valid_dns_like (const char *s, size_t minlen, size_t maxlen, int forbid_double_dash)
{
  if (s == NULL)
    return 0;
  size_t n = strlen (s);
  if (n < minlen || n > maxlen)
    return 0;
  if (s[0] == '-' || s[n - 1] == '-')
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      char c = s[i];
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return 0;
      if (forbid_double_dash && c == '-' && i > 0 && s[i - 1] == '-')
        return 0;
    }
  return 1;
}

int
model_valid_group_name (const char *name)
{
  return valid_dns_like (name, 1, 63, 1);
}

int
model_valid_container_name (const char *name)
{
  return valid_dns_like (name, 1, 63, 0);
}

int
model_valid_resource_group_name (const char *name)
{
  /* ARM: 1-90 characters: alphanumerics, underscores, parentheses, hyphens, periods; not ending in a period. */
  if (name == NULL)
    return 0;
  size_t n = strlen (name);
  if (n < 1 || n > 90 || name[n - 1] == '.')
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char)name[i];
      if (!(isalnum (c) || c == '_' || c == '(' || c == ')' || c == '-' || c == '.'))
        return 0;
    }
  return 1;
}

int
model_valid_env_name (const char *name)
{
  if (name == NULL)
    return 0;
  size_t n = strlen (name);
  if (n < 1 || n > 63)
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char)name[i];
      if (!(isalnum (c) || c == '_'))
        return 0;
    }
  return name[0] != '_' && name[n - 1] != '_';
}

/* A light check of an image reference: [host[:port]/]path[:tag][@sha256:hex]. The
 * registry client parses it fully when pulling. */
static int
valid_image_ref (const char *s)
{
  size_t n = strlen (s);
  if (n == 0 || n > 1024)
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char)s[i];
      if (c <= ' ' || c >= 127 || c == '\\' || c == '"' || c == '\'')
        return 0;
    }
  if (s[0] == '/' || s[0] == ':' || s[0] == '@' || s[n - 1] == '/' || s[n - 1] == ':' || strstr (s, "//"))
    return 0;
  const char *at = strchr (s, '@');
  if (at)
    {
      if (strncmp (at + 1, "sha256:", 7) != 0 || strlen (at + 8) != 64)
        return 0;
      for (const char *p = at + 8; *p; p++)
        if (!isxdigit ((unsigned char)*p) || isupper ((unsigned char)*p))
          return 0;
    }
  /* the repository path (after an optional host) must be lowercase */
  const char *slash = strchr (s, '/');
  const char *repo = s;
  if (slash)
    {
      size_t hl = (size_t)(slash - s);
      if (memchr (s, '.', hl) || memchr (s, ':', hl) || (hl == 9 && strncmp (s, "localhost", 9) == 0))
        repo = slash + 1;
    }
  for (const char *p = repo; *p && *p != ':' && *p != '@'; p++)
    if (isupper ((unsigned char)*p))
      return 0;
  return 1;
}

int
model_parse_restart_policy (const char *s, model_restart_policy_t *out)
{
  if (s == NULL || skiff_strcaseeq (s, "Always"))
    *out = MODEL_POLICY_ALWAYS;
  else if (skiff_strcaseeq (s, "OnFailure"))
    *out = MODEL_POLICY_ONFAILURE;
  else if (skiff_strcaseeq (s, "Never"))
    *out = MODEL_POLICY_NEVER;
  else
    return -1;
  return 0;
}

static int
check_ports (json_t *ports, const char *path, skiff_error_t *err)
{
  size_t i;
  json_t *p;
  json_array_foreach (ports, i, p)
  {
    json_t *port = json_object_get (p, "port");
    if (port == NULL)
      return skiff_error_arm_target (err, 400, "MissingRequiredProperty", path,
                                     "The 'port' property is required in '%s[%zu]'.", path, i);
    json_int_t v = json_integer_value (port);
    if (v < 1 || v > 65535)
      return skiff_error_arm_target (err, 400, "InvalidContainerPort", path,
                                     "The port '%lld' in '%s[%zu]' is invalid. A port must be between 1 and 65535.",
                                     (long long)v, path, i);
    const char *proto = json_string_value (json_object_get (p, "protocol"));
    if (proto == NULL)
      json_object_set_new (p, "protocol", json_string ("TCP"));
    else if (skiff_strcaseeq (proto, "TCP") || skiff_strcaseeq (proto, "UDP"))
      json_object_set_new (p, "protocol", json_string (skiff_strcaseeq (proto, "TCP") ? "TCP" : "UDP"));
    else
      return skiff_error_arm_target (err, 400, "InvalidPortProtocol", path,
                                     "The protocol '%s' of '%s[%zu]' is invalid. The value must be one of 'TCP,UDP'.",
                                     proto, path, i);
  }
  return 0;
}

static int
check_container (json_t *c, size_t idx, int init, const char *group_name, double *cpu_sum, double *mem_sum,
                 skiff_error_t *err)
{
  const char *kind = init ? "initContainers" : "containers";
  cleanup_free char *path = skiff_strdup_printf ("properties.%s[%zu]", kind, idx);
  const char *name = json_string_value (json_object_get (c, "name"));
  if (name == NULL)
    return skiff_error_arm_target (err, 400, "MissingRequiredProperty", path,
                                   "The 'name' property is required in '%s'.", path);
  if (!model_valid_container_name (name))
    return skiff_error_arm_target (
        err, 400, "InvalidContainerName", path,
        "The container name '%s' in container group '%s' is invalid. A container name must be 1 to 63 characters of "
        "lowercase letters, numbers and '-', and must not start or end with '-'.",
        name, group_name);
  json_t *props = json_object_get (c, "properties");
  if (props == NULL)
    return skiff_error_arm_target (err, 400, "MissingRequiredProperty", path,
                                   "The 'properties' property is required in container '%s'.", name);
  const char *image = json_string_value (json_object_get (props, "image"));
  if (image == NULL || *image == '\0')
    return skiff_error_arm_target (err, 400, "InvalidImage", path,
                                   "The 'image' property is required in container '%s' of container group '%s'.", name,
                                   group_name);
  if (!valid_image_ref (image))
    return skiff_error_arm_target (err, 400, "InvalidImage", path,
                                   "The image '%s' in container '%s' of container group '%s' is not a valid image "
                                   "reference.",
                                   image, name, group_name);
  json_t *cmd = json_object_get (props, "command");
  if (cmd && json_array_size (cmd) > 0 && json_string_length (json_array_get (cmd, 0)) == 0)
    return skiff_error_arm_target (err, 400, "InvalidCommand", path,
                                   "The first element of 'command' in container '%s' must not be empty.", name);

  /* environment variables */
  json_t *envs = json_object_get (props, "environmentVariables");
  size_t i;
  json_t *e;
  json_array_foreach (envs, i, e)
  {
    const char *en = json_string_value (json_object_get (e, "name"));
    if (!model_valid_env_name (en))
      return skiff_error_arm_target (
          err, 400, "InvalidEnvironmentVariable", path,
          "The environment variable name '%s' in container '%s' of container group '%s' is invalid. A name must be 1 "
          "to 63 characters of letters, numbers and '_'.",
          en ? en : "", name, group_name);
    for (size_t j = 0; j < i; j++)
      if (strcmp (en, json_string_value (json_object_get (json_array_get (envs, j), "name"))) == 0)
        return skiff_error_arm_target (err, 400, "DuplicateEnvironmentVariables", path,
                                       "The environment variable '%s' is set more than once in container '%s'.", en,
                                       name);
  }
  json_t *ports = json_object_get (props, "ports");
  if (ports)
    {
      cleanup_free char *pp = skiff_strdup_printf ("%s.properties.ports", path);
      if (check_ports (ports, pp, err) < 0)
        return -1;
    }
  else
    json_object_set_new (props, "ports", json_array ());
  if (json_object_get (props, "environmentVariables") == NULL)
    json_object_set_new (props, "environmentVariables", json_array ());
  json_t *mounts = json_object_get (props, "volumeMounts");
  json_array_foreach (mounts, i, e)
  {
    const char *mp = json_string_value (json_object_get (e, "mountPath"));
    if (mp == NULL || mp[0] != '/' || strchr (mp, ':'))
      return skiff_error_arm_target (err, 400, "InvalidVolumeMount", path,
                                     "The mount path '%s' in container '%s' is invalid: it must be absolute and must "
                                     "not contain ':'.",
                                     mp ? mp : "", name);
  }

  if (init)
    return 0; /* init containers take no resources of their own in ACI */

  json_t *res = json_object_get (props, "resources");
  json_t *req = json_object_get (res, "requests");
  if (req == NULL)
    return skiff_error_arm_target (err, 400, "ResourceRequestsNotSpecified", path,
                                   "The resource requests are not specified in container '%s' of contain group '%s'. "
                                   "Both memory and CPU requests are required since API version '2017-07-01-preview'.",
                                   name, group_name);
  json_t *cpu = json_object_get (req, "cpu"), *mem = json_object_get (req, "memoryInGB");
  if (cpu == NULL || mem == NULL)
    return skiff_error_arm_target (err, 400, "ResourceSomeRequestsNotSpecified", path,
                                   "The '%s' request is not specified in container '%s' of container group '%s'.",
                                   cpu == NULL ? "Cpu" : "MemoryInGB", name, group_name);
  double c_cpu = json_real_value (cpu), c_mem = json_real_value (mem);
  if (c_cpu <= 0 || c_mem <= 0)
    return skiff_error_arm_target (err, 400, "InvalidResourceRequests", path,
                                   "The resource requests of container '%s' in container group '%s' are invalid: cpu "
                                   "and memoryInGB must be greater than 0.",
                                   name, group_name);
  json_t *gpu = json_object_get (req, "gpu");
  if (gpu)
    {
      json_int_t n = json_integer_value (json_object_get (gpu, "count"));
      const char *sku = json_string_value (json_object_get (gpu, "sku"));
      if ((n != 1 && n != 2 && n != 4) || sku == NULL
          || !(skiff_strcaseeq (sku, "K80") || skiff_strcaseeq (sku, "P100") || skiff_strcaseeq (sku, "V100")))
        return skiff_error_arm_target (err, 400, "InvalidGpuResource", path,
                                       "The GPU request of container '%s' is invalid: count must be 1, 2 or 4 and sku "
                                       "one of 'K80,P100,V100'.",
                                       name);
    }
  json_t *lim = json_object_get (res, "limits");
  if (lim)
    {
      json_t *lc = json_object_get (lim, "cpu"), *lm = json_object_get (lim, "memoryInGB");
      if ((lc && json_real_value (lc) <= 0) || (lm && json_real_value (lm) <= 0))
        return skiff_error_arm_target (err, 400, "InvalidResourceLimits", path,
                                       "The resource limits of container '%s' must be greater than 0.", name);
    }
  *cpu_sum += c_cpu;
  *mem_sum += c_mem;
  return 0;
}

int
model_location_served (const model_limits_t *limits, const char *location)
{
  if (limits == NULL || limits->locations == NULL)
    return 1;
  /* "West US" and "westus" name the same location. */
  char norm[128];
  size_t k = 0;
  for (const char *p = location; *p && k + 1 < sizeof (norm); p++)
    if (*p != ' ')
      norm[k++] = (char)tolower ((unsigned char)*p);
  norm[k] = '\0';
  for (const char *const *l = limits->locations; *l; l++)
    if (strcmp (*l, norm) == 0)
      return 1;
  return 0;
}

int
model_parse_group (const char *body, size_t len, const char *group_name, const model_limits_t *limits, json_t **out,
                   skiff_error_t *err)
{
  if (!model_valid_group_name (group_name))
    return skiff_error_arm_target (
        err, 400, "InvalidContainerGroupName", "name",
        "The container group name '%s' is invalid. A container group name must contain no more than 63 characters and "
        "must match the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').",
        group_name);
  cleanup_json json_t *raw = NULL;
  if (model_parse_json (body, len, &raw, err) < 0)
    return -1;
  cleanup_json json_t *spec = NULL;
  if (schema_canonicalize (raw, schema_group_fields, &spec, err) < 0)
    return -1;

  const char *loc = json_string_value (json_object_get (spec, "location"));
  if (loc == NULL || *loc == '\0')
    return skiff_error_arm_target (err, 400, "LocationRequired", "location",
                                   "The location property is required for this definition.");
  if (!model_location_served (limits, loc))
    return skiff_error_arm_target (err, 409, "ServiceUnavailable", "location",
                                   "The requested resource is not available in the location '%s' at this moment. "
                                   "Please retry with a different resource request or in another location.",
                                   loc);
  json_t *props = json_object_get (spec, "properties");
  if (props == NULL)
    return skiff_error_arm_target (err, 400, "MissingRequiredProperty", "properties",
                                   "The 'properties' property is required for container group '%s'.", group_name);
  const char *os = json_string_value (json_object_get (props, "osType"));
  if (os == NULL || !(skiff_strcaseeq (os, "Linux") || skiff_strcaseeq (os, "Windows")))
    return skiff_error_arm_target (err, 400, "InvalidOsType", "properties.osType",
                                   "The 'osType' for container group '%s' is invalid. The value must be one of "
                                   "'Windows,Linux'.",
                                   group_name);
  if (skiff_strcaseeq (os, "Windows"))
    return skiff_error_arm_target (err, 400, "OsTypeNotSupported", "properties.osType",
                                   "The 'osType' 'Windows' is not supported by this host. Only 'Linux' is.");
  json_object_set_new (props, "osType", json_string ("Linux"));

  model_restart_policy_t pol;
  const char *rp = json_string_value (json_object_get (props, "restartPolicy"));
  if (model_parse_restart_policy (rp, &pol) < 0)
    return skiff_error_arm_target (err, 400, "InvalidRestartPolicy", "properties.restartPolicy",
                                   "The restart policy '%s' of container group '%s' is invalid. The value must be one "
                                   "of 'Always,OnFailure,Never'.",
                                   rp, group_name);
  static const char *const pol_names[] = { "Always", "OnFailure", "Never" };
  json_object_set_new (props, "restartPolicy", json_string (pol_names[pol]));

  json_t *containers = json_object_get (props, "containers");
  if (containers == NULL || json_array_size (containers) == 0)
    return skiff_error_arm_target (err, 400, "MissingRequiredProperty", "properties.containers",
                                   "The container group '%s' must have at least one container in 'containers'.",
                                   group_name);
  if (json_array_size (containers) > MODEL_MAX_CONTAINERS)
    return skiff_error_arm_target (err, 400, "ContainerGroupTooManyContainers", "properties.containers",
                                   "The container group '%s' has %zu containers; at most %d are allowed.", group_name,
                                   json_array_size (containers), MODEL_MAX_CONTAINERS);
  json_t *inits = json_object_get (props, "initContainers");
  if (inits == NULL)
    json_object_set_new (props, "initContainers", inits = json_array ());
  double cpu = 0, mem = 0;
  size_t i;
  json_t *c;
  json_array_foreach (inits, i, c)
  {
    if (check_container (c, i, 1, group_name, &cpu, &mem, err) < 0)
      return -1;
  }
  json_array_foreach (containers, i, c)
  {
    if (check_container (c, i, 0, group_name, &cpu, &mem, err) < 0)
      return -1;
  }
  /* duplicate names across containers and init containers (containers first, then inits) */
  size_t n_c = json_array_size (containers), n_all = n_c + json_array_size (inits);
  for (size_t k = 1; k < n_all; k++)
    {
      json_t *ck = k < n_c ? json_array_get (containers, k) : json_array_get (inits, k - n_c);
      const char *n = json_string_value (json_object_get (ck, "name"));
      for (size_t j = 0; j < k; j++)
        {
          json_t *cj = j < n_c ? json_array_get (containers, j) : json_array_get (inits, j - n_c);
          if (strcmp (n, json_string_value (json_object_get (cj, "name"))) == 0)
            return skiff_error_arm_target (err, 400, "DuplicateContainerName",
                                           j >= n_c ? "properties.initContainers" : "properties.containers",
                                           "The container name '%s' is used more than once in container group "
                                           "'%s'. Container names must be unique.",
                                           n, group_name);
        }
    }
  if (cpu > MODEL_MAX_GROUP_CPU + 1e-9 || mem > MODEL_MAX_GROUP_MEMORY_GB + 1e-9)
    return skiff_error_arm_target (err, 400, "ResourceRequestsExceedMaxAllowed", "properties.containers",
                                   "The total requested resources of container group '%s' ('%.2f' CPU, '%.2f' GB "
                                   "memory) exceed the maximum allowed per container group: '%.0f' CPU and '%.0f' GB "
                                   "memory.",
                                   group_name, cpu, mem, MODEL_MAX_GROUP_CPU, MODEL_MAX_GROUP_MEMORY_GB);
  /* limits may not exceed the group total */
  json_array_foreach (containers, i, c)
  {
    json_t *lim = json_object_get (json_object_get (json_object_get (c, "properties"), "resources"), "limits");
    json_t *lc = json_object_get (lim, "cpu"), *lm = json_object_get (lim, "memoryInGB");
    if ((lc && json_real_value (lc) > cpu + 1e-9) || (lm && json_real_value (lm) > mem + 1e-9))
      return skiff_error_arm_target (err, 400, "InvalidResourceLimits", "properties.containers",
                                     "The resource limits of container '%s' exceed the total requests of container "
                                     "group '%s'.",
                                     json_string_value (json_object_get (c, "name")), group_name);
  }
  if (limits
      && ((limits->host_cpus > 0 && cpu > limits->host_cpus + 1e-9)
          || (limits->host_memory_gb > 0 && mem > limits->host_memory_gb + 1e-9)))
    return skiff_error_arm_target (err, 409, "ServiceUnavailable", "properties.containers",
                                   "The requested resource is not available in the location '%s' at this moment. "
                                   "Please retry with a different resource request or in another location. Resource "
                                   "requested: '%g' CPU '%g' GB memory 'Linux' OS. This host offers at most '%g' CPU "
                                   "and '%g' GB memory to one container group.",
                                   loc, cpu, mem, limits->host_cpus, limits->host_memory_gb);

  json_t *ip = json_object_get (props, "ipAddress");
  if (ip)
    {
      /* the address and the name are the host's to give: what a client echoes back is dropped */
      json_object_del (ip, "ip");
      json_object_del (ip, "fqdn");
      json_t *ports = json_object_get (ip, "ports");
      if (ports == NULL)
        return skiff_error_arm_target (err, 400, "MissingRequiredProperty", "properties.ipAddress.ports",
                                       "The 'ports' property is required in 'ipAddress'.");
      if (json_array_size (ports) == 0)
        return skiff_error_arm_target (err, 400, "MissingIpAddressPorts", "properties.ipAddress.ports",
                                       "The ports in the 'ipAddress' of container group '%s' cannot be empty.",
                                       group_name);
      if (check_ports (ports, "properties.ipAddress.ports", err) < 0)
        return -1;
      if (json_array_size (ports) > MODEL_MAX_PORTS_PER_IP)
        return skiff_error_arm_target (err, 400, "TooManyPorts", "properties.ipAddress.ports",
                                       "The IP address of container group '%s' has %zu ports; at most %d are "
                                       "allowed.",
                                       group_name, json_array_size (ports), MODEL_MAX_PORTS_PER_IP);
      const char *label = json_string_value (json_object_get (ip, "dnsNameLabel"));
      if (label && !(valid_dns_like (label, 5, 63, 0) && label[0] >= 'a' && label[0] <= 'z'))
        return skiff_error_arm_target (
            err, 400, "InvalidDnsNameLabel", "properties.ipAddress.dnsNameLabel",
            "The DNS name label '%s' in container group '%s' is invalid. It can contain only lowercase letters, "
            "numbers and hyphens. The first character must be a letter. The last character must be a letter or "
            "number. The value must be between 5 and 63 characters long.",
            label, group_name);
      const char *scope = json_string_value (json_object_get (ip, "autoGeneratedDomainNameLabelScope"));
      if (scope
          && !(skiff_strcaseeq (scope, "Unsecure") || skiff_strcaseeq (scope, "TenantReuse")
               || skiff_strcaseeq (scope, "SubscriptionReuse") || skiff_strcaseeq (scope, "ResourceGroupReuse")
               || skiff_strcaseeq (scope, "Noreuse")))
        return skiff_error_arm_target (err, 400, "InvalidAutoGeneratedDomainNameLabelScope",
                                       "properties.ipAddress.autoGeneratedDomainNameLabelScope",
                                       "The value '%s' is invalid. The value must be one of 'Unsecure, TenantReuse, "
                                       "SubscriptionReuse, ResourceGroupReuse, Noreuse'.",
                                       scope);
      const char *type = json_string_value (json_object_get (ip, "type"));
      if (type == NULL || !(skiff_strcaseeq (type, "Public") || skiff_strcaseeq (type, "Private")))
        return skiff_error_arm_target (err, 400, "InvalidIpAddressType", "properties.ipAddress.type",
                                       "The IP address type '%s' is invalid. The value must be one of "
                                       "'Public,Private'.",
                                       type ? type : "");
      /* every port of the address must be a port of one of the (non-init) containers */
      char unused[256] = "";
      size_t un = 0, pi;
      json_t *pp;
      json_array_foreach (ports, pi, pp)
      {
        json_int_t port = json_integer_value (json_object_get (pp, "port"));
        const char *proto = json_string_value (json_object_get (pp, "protocol"));
        int found = 0;
        size_t ci, cpi;
        json_t *cc, *cp;
        json_array_foreach (json_object_get (props, "containers"), ci, cc)
            json_array_foreach (json_object_get (json_object_get (cc, "properties"), "ports"), cpi, cp)
        {
          const char *cproto = json_string_value (json_object_get (cp, "protocol"));
          if (json_integer_value (json_object_get (cp, "port")) == port
              && skiff_strcaseeq (cproto ? cproto : "TCP", proto ? proto : "TCP"))
            found = 1;
        }
        if (!found && un + 16 < sizeof unused)
          un += (size_t)snprintf (unused + un, sizeof unused - un, "%s%lld", un ? ", " : "", (long long)port);
      }
      if (un)
        return skiff_error_arm_target (err, 400, "InvalidIpAddressPorts", "properties.ipAddress.ports",
                                       "The following ports in the 'ipAddress' of container group '%s' are not "
                                       "used by any of its containers: %s. Add them to a container's 'ports'.",
                                       group_name, unused);
    }
  json_t *vols = json_object_get (props, "volumes");
  if (json_array_size (vols) > MODEL_MAX_VOLUMES)
    return skiff_error_arm_target (err, 400, "ContainerGroupTooManyVolumes", "properties.volumes",
                                   "The container group '%s' has %zu volumes; at most %d are allowed.", group_name,
                                   json_array_size (vols), MODEL_MAX_VOLUMES);
  json_array_foreach (vols, i, c)
  {
    const char *vn = json_string_value (json_object_get (c, "name"));
    if (vn == NULL || !valid_dns_like (vn, 5, 63, 1))
      return skiff_error_arm_target (err, 400, "InvalidVolumeName", "properties.volumes",
                                     "The volume name '%s' is invalid. A volume name must be 5 to 63 characters of "
                                     "lowercase letters, numbers and '-', must not start or end with '-' and must "
                                     "not contain '--'.",
                                     vn ? vn : "");
    int sources = !!json_object_get (c, "azureFile") + !!json_object_get (c, "emptyDir")
                  + !!json_object_get (c, "secret") + !!json_object_get (c, "gitRepo");
    if (sources != 1)
      return skiff_error_arm_target (err, 400, "InvalidVolume", "properties.volumes",
                                     "The volume '%s' must have exactly one source: azureFile, emptyDir, secret or "
                                     "gitRepo.",
                                     vn);
    const char *dir = json_string_value (json_object_get (json_object_get (c, "gitRepo"), "directory"));
    if (dir && strstr (dir, ".."))
      return skiff_error_arm_target (err, 400, "InvalidGitRepoDirectory", "properties.volumes",
                                     "The gitRepo directory '%s' of volume '%s' must not contain '..'.", dir, vn);
  }
  /* every mount names a volume of the group */
  for (int pass = 0; pass < 2; pass++)
    {
      json_array_foreach (pass ? inits : containers, i, c)
      {
        size_t k;
        json_t *m;
        json_array_foreach (json_object_get (json_object_get (c, "properties"), "volumeMounts"), k, m)
        {
          const char *mn = json_string_value (json_object_get (m, "name"));
          int found = 0;
          size_t j;
          json_t *v;
          json_array_foreach (vols, j, v) found
              |= mn && skiff_strcaseeq (mn, json_string_value (json_object_get (v, "name")));
          if (!found)
            return skiff_error_arm_target (err, 400, "VolumeMountNotFound", "properties.containers",
                                           "The volume mount '%s' of container '%s' does not name a volume of "
                                           "container group '%s'.",
                                           mn ? mn : "", json_string_value (json_object_get (c, "name")), group_name);
        }
      }
    }
  if (json_array_size (vols) > 0)
    return skiff_error_arm_target (err, 400, "VolumesNotSupported", "properties.volumes",
                                   "Volumes are not supported by this host yet; remove 'volumes' and "
                                   "'volumeMounts' from container group '%s'.",
                                   group_name);
  if (json_object_get (props, "imageRegistryCredentials") == NULL)
    json_object_set_new (props, "imageRegistryCredentials", json_array ());
  json_t *creds = json_object_get (props, "imageRegistryCredentials");
  json_array_foreach (creds, i, c)
  {
    const char *server = json_string_value (json_object_get (c, "server"));
    if (server == NULL || *server == '\0' || strstr (server, "://"))
      return skiff_error_arm_target (err, 400, "InvalidImageRegistryServer", "properties.imageRegistryCredentials",
                                     "The image registry server '%s' is invalid: give the host name only, without a "
                                     "scheme.",
                                     server ? server : "");
  }
  if (json_object_get (props, "sku") == NULL)
    json_object_set_new (props, "sku", json_string ("Standard"));
  *out = steal_pointer (&spec);
  return 0;
}

char *
model_group_id (const char *sub, const char *rg, const char *name)
{
  return skiff_strdup_printf ("/subscriptions/%s/resourceGroups/%s/providers/" MODEL_GROUP_TYPE "/%s", sub, rg, name);
}
