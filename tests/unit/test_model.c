/* Unit tests: validation, canonical JSON, ARM output, and the group state machine. */
#include <stdlib.h>
#include <string.h>

#include "common/jsonutil.h"
#include "model/model.h"
#include "test.h"

static const char *const locs[] = { "local", "westus", NULL };
static const model_limits_t limits = { .host_cpus = 4, .host_memory_gb = 16, .locations = locs };

/* Parses body for group "g1"; returns the error code or "OK" (static buffer). */
static const char *
parse (const char *body, json_t **out)
{
  static char code[128];
  skiff_error_t err = NULL;
  json_t *spec = NULL;
  if (model_parse_group (body, strlen (body), "g1", &limits, &spec, &err) < 0)
    {
      snprintf (code, sizeof (code), "%s/%d", err->code ? err->code : "?", err->http_status);
      skiff_error_release (&err);
      return code;
    }
  if (out)
    *out = spec;
  else
    json_decref (spec);
  return "OK";
}

#define GROUP(containers, extra)                                                                                       \
  "{\"location\":\"local\",\"properties\":{\"osType\":\"Linux\"" extra ",\"containers\":[" containers "]}}"
#define C(name, image)                                                                                                 \
  "{\"name\":\"" name "\",\"properties\":{\"image\":\"" image                                                          \
  "\",\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1.5}}}}"
/* a container with ports (a JSON array body) */
#define CP(name, image, ports)                                                                                         \
  "{\"name\":\"" name "\",\"properties\":{\"image\":\"" image "\",\"ports\":" ports                                    \
  ",\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1.5}}}}"

static void
test_validation (void)
{
  CHECK_STR (parse (GROUP (C ("c1", "busybox"), ""), NULL), "OK");
  CHECK_STR (parse ("{not json", NULL), "InvalidRequestContent/400");
  CHECK_STR (parse ("[]", NULL), "InvalidRequestContent/400");
  CHECK_STR (parse ("{\"properties\":{}}", NULL), "LocationRequired/400");
  CHECK_STR (parse ("{\"location\":\"mars\",\"properties\":{}}", NULL), "ServiceUnavailable/409");
  CHECK_STR (parse ("{\"location\":\"West US\",\"properties\":{\"containers\":[" C ("c1", "busybox") "]}}", NULL),
             "InvalidOsType/400");
  CHECK_STR (parse (GROUP (C ("C1", "busybox"), ""), NULL), "InvalidContainerName/400");
  CHECK_STR (parse (GROUP (C ("-c1", "busybox"), ""), NULL), "InvalidContainerName/400");
  CHECK_STR (parse (GROUP (C ("c1", "busybox") "," C ("c1", "busybox"), ""), NULL), "DuplicateContainerName/400");
  CHECK_STR (parse (GROUP (C ("c1", "Busy Box"), ""), NULL), "InvalidImage/400");
  CHECK_STR (parse (GROUP (C ("c1", "busybox@sha256:1234"), ""), NULL), "InvalidImage/400");
  CHECK_STR (parse (GROUP (C ("c1", "127.0.0.1:5000/busybox:latest"), ""), NULL), "OK");
  CHECK_STR (parse (GROUP (C ("c1", "busybox"), ",\"restartPolicy\":\"Sometimes\""), NULL), "InvalidRestartPolicy/400");
  CHECK_STR (parse (GROUP (C ("c1", "busybox"), ",\"restartPolicy\":\"onfailure\""), NULL), "OK");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\"}}", ""), NULL),
             "ResourceRequestsNotSpecified/400");
  CHECK_STR (
      parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"resources\":{\"requests\":{\"cpu\":1}}}}",
                    ""),
             NULL),
      "ResourceSomeRequestsNotSpecified/400");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"resources\":{\"requests\":{"
                           "\"cpu\":\"x\",\"memoryInGB\":1}}}}",
                           ""),
                    NULL),
             "InvalidRequestContent/400");
  /* memoryInGb (docs' casing) is the same property */
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"resources\":{\"requests\":{"
                           "\"cpu\":1,\"memoryInGb\":1}}}}",
                           ""),
                    NULL),
             "OK");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"resources\":{\"requests\":{"
                           "\"cpu\":32,\"memoryInGB\":1}}}}",
                           ""),
                    NULL),
             "ResourceRequestsExceedMaxAllowed/400");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"resources\":{\"requests\":{"
                           "\"cpu\":8,\"memoryInGB\":1}}}}",
                           ""),
                    NULL),
             "ServiceUnavailable/409");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"resources\":{\"requests\":{"
                           "\"cpu\":0,\"memoryInGB\":1}}}}",
                           ""),
                    NULL),
             "InvalidResourceRequests/400");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"ports\":[{\"port\":70000}],"
                           "\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}",
                           ""),
                    NULL),
             "InvalidContainerPort/400");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"ports\":[{\"port\":80,"
                           "\"protocol\":\"SCTP\"}],\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}",
                           ""),
                    NULL),
             "InvalidPortProtocol/400");
  CHECK_STR (parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"environmentVariables\":[{\"name\":"
                           "\"A-B\",\"value\":\"x\"}],\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}",
                           ""),
                    NULL),
             "InvalidEnvironmentVariable/400");
  CHECK_STR (parse ("{\"location\":\"local\",\"properties\":{\"osType\":\"Linux\",\"containers\":[]}}", NULL),
             "MissingRequiredProperty/400");

  CHECK_STR (parse (GROUP (C ("c1", "busybox"), ",\"volumes\":[{\"name\":\"vol\",\"emptyDir\":{}}]"), NULL),
             "InvalidVolumeName/400");
  CHECK_STR (parse (GROUP (C ("c1", "busybox"), ",\"volumes\":[{\"name\":\"vol-one\"}]"), NULL), "InvalidVolume/400");
  CHECK_STR (
      parse (GROUP (C ("c1", "busybox"),
                    ",\"volumes\":[{\"name\":\"gitrepo\",\"gitRepo\":{\"repository\":\"r\",\"directory\":\"../x\"}}]"),
             NULL),
      "InvalidGitRepoDirectory/400");
  CHECK_STR (
      parse (GROUP ("{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"volumeMounts\":[{\"name\":\"nope1\","
                    "\"mountPath\":\"/m\"}],\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGB\":1}}}}",
                    ""),
             NULL),
      "VolumeMountNotFound/400");
  CHECK_STR (parse (GROUP (C ("c1", "busybox"), ",\"volumes\":[{\"name\":\"vol-one\",\"emptyDir\":{}}]"), NULL),
             "VolumesNotSupported/400");
  CHECK_STR (parse (GROUP (C ("c1", "busybox"),
                           ",\"ipAddress\":{\"type\":\"Public\",\"dnsNameLabel\":\"1abc\",\"ports\":[{\"port\":80}]}"),
                    NULL),
             "InvalidDnsNameLabel/400");
  CHECK_STR (parse (GROUP (C ("c1", "busybox"), ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":1},{\"port\":"
                                                "2},{\"port\":3},{\"port\":4},{\"port\":5},{\"port\":6}]}"),
                    NULL),
             "TooManyPorts/400");
  CHECK_STR (
      parse (GROUP (CP ("c1", "busybox", "[{\"port\":80}]"),
                    ",\"ipAddress\":{\"type\":\"Public\",\"dnsNameLabel\":\"my-app1\",\"ports\":[{\"port\":80}]}"),
             NULL),
      "OK");
  /* the address's ports must be container ports, with the same protocol */
  CHECK_STR (
      parse (GROUP (C ("c1", "busybox"), ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":80}]}"), NULL),
      "InvalidIpAddressPorts/400");
  CHECK_STR (parse (GROUP (CP ("c1", "busybox", "[{\"port\":53,\"protocol\":\"TCP\"}]"),
                           ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":53,\"protocol\":\"UDP\"}]}"),
                    NULL),
             "InvalidIpAddressPorts/400");
  CHECK_STR (
      parse (
          GROUP (
              CP ("c1", "busybox", "[{\"port\":53,\"protocol\":\"udp\"}]") "," CP ("c2", "busybox", "[{\"port\":80}]"),
              ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[{\"port\":53,\"protocol\":\"UDP\"},{\"port\":80}]}"),
          NULL),
      "OK");
  CHECK_STR (
      parse (GROUP (CP ("c1", "busybox", "[{\"port\":80}]"), ",\"ipAddress\":{\"type\":\"Public\",\"ports\":[]}"),
             NULL),
      "MissingIpAddressPorts/400");
  CHECK_STR (parse (GROUP (CP ("c1", "busybox", "[{\"port\":80}]"),
                           ",\"ipAddress\":{\"type\":\"Public\",\"autoGeneratedDomainNameLabelScope\":\"Everywhere\","
                           "\"ports\":[{\"port\":80}]}"),
                    NULL),
             "InvalidAutoGeneratedDomainNameLabelScope/400");

  skiff_error_t err = NULL;
  json_t *spec = NULL;
  CHECK (model_parse_group ("{}", 2, "Bad_Name", &limits, &spec, &err) < 0);
  CHECK_STR (err ? err->code : NULL, "InvalidContainerGroupName");
  skiff_error_release (&err);
  CHECK (model_valid_group_name ("a-b1"));
  CHECK (!model_valid_group_name ("a--b"));
  CHECK (!model_valid_group_name ("a-"));
  CHECK (!model_valid_group_name (""));
  char big[70];
  memset (big, 'a', 64);
  big[64] = '\0';
  CHECK (!model_valid_group_name (big));
}

static void
test_canonical_and_output (void)
{
  json_t *spec = NULL;
  const char *body
      = "{\"LOCATION\":\"local\",\"unknownTop\":1,\"properties\":{\"OSTYPE\":\"linux\",\"extra\":{\"x\":1},"
        "\"containers\":[{\"name\":\"c1\",\"properties\":{\"image\":\"busybox\",\"environmentVariables\":"
        "[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"S\",\"secureValue\":\"hunter2\"}],"
        "\"resources\":{\"requests\":{\"CPU\":1,\"MemoryInGB\":1.5}}}}],"
        "\"imageRegistryCredentials\":[{\"server\":\"r.example\",\"username\":\"u\",\"password\":\"pw\"}]}}";
  CHECK_STR (parse (body, &spec), "OK");
  if (spec == NULL)
    return;
  json_t *props = json_object_get (spec, "properties");
  CHECK (json_object_get (spec, "unknownTop") == NULL);
  CHECK (json_object_get (props, "extra") == NULL);
  CHECK_STR (json_string_value (json_object_get (props, "osType")), "Linux");
  CHECK_STR (json_string_value (json_object_get (props, "restartPolicy")), "Always");
  json_t *c0 = json_object_get (json_array_get (json_object_get (props, "containers"), 0), "properties");
  json_t *req = json_object_get (json_object_get (c0, "resources"), "requests");
  CHECK (json_real_value (json_object_get (req, "memoryInGB")) == 1.5);
  model_group_view_t v = { .sub = "s",
                           .rg = "RG",
                           .name = "g1",
                           .location = "local",
                           .spec = spec,
                           .provisioning_state = "Pending",
                           .state = NULL,
                           .events = NULL };
  json_t *out = model_group_to_arm (&v, 1);
  char *text = json_dumps (out, JSON_COMPACT);
  CHECK (strstr (text, "hunter2") == NULL);
  CHECK (strstr (text, "\"pw\"") == NULL);
  CHECK (strstr (text, "\"name\":\"S\"") != NULL);
  CHECK (strstr (text, "/subscriptions/s/resourceGroups/RG/providers/Microsoft.ContainerInstance/containerGroups/g1")
         != NULL);
  CHECK (strstr (text, "\"instanceView\"") != NULL);
  free (text);
  json_decref (out);
  out = model_group_to_arm (&v, 0);
  text = json_dumps (out, JSON_COMPACT);
  CHECK (strstr (text, "\"instanceView\"") == NULL);
  free (text);
  json_decref (out);
  json_decref (spec);
}

static void
test_state_machine (void)
{
  model_container_status_t running = { MODEL_CSTATE_RUNNING, 0, 0 };
  model_container_status_t ok = { MODEL_CSTATE_TERMINATED, 0, 1 };
  model_container_status_t bad = { MODEL_CSTATE_TERMINATED, 2, 1 };
  model_container_status_t restarting = { MODEL_CSTATE_TERMINATED, 1, 0 };
  model_container_status_t fresh = { MODEL_CSTATE_WAITING, -1, 0 };
  model_container_status_t backoff = { MODEL_CSTATE_WAITING, 0, 0 };
  model_container_status_t a[2];
  CHECK_STR (model_group_state (MODEL_POLICY_ALWAYS, 1, 0, &running, 1), "Stopped");
  CHECK_STR (model_group_state (MODEL_POLICY_ALWAYS, 0, 0, &running, 1), "Running");
  CHECK_STR (model_group_state (MODEL_POLICY_ALWAYS, 0, 0, &fresh, 1), "Pending");
  CHECK_STR (model_group_state (MODEL_POLICY_ALWAYS, 0, 0, &backoff, 1), "Running");
  CHECK_STR (model_group_state (MODEL_POLICY_ALWAYS, 0, 0, &restarting, 1), "Running");
  CHECK_STR (model_group_state (MODEL_POLICY_NEVER, 0, 0, &ok, 1), "Succeeded");
  CHECK_STR (model_group_state (MODEL_POLICY_NEVER, 0, 0, &bad, 1), "Failed");
  CHECK_STR (model_group_state (MODEL_POLICY_ONFAILURE, 0, 0, &ok, 1), "Succeeded");
  a[0] = ok;
  a[1] = running;
  CHECK_STR (model_group_state (MODEL_POLICY_NEVER, 0, 0, a, 2), "Running");
  a[1] = bad;
  CHECK_STR (model_group_state (MODEL_POLICY_NEVER, 0, 0, a, 2), "Failed");
  CHECK_STR (model_group_state (MODEL_POLICY_NEVER, 0, 1, NULL, 0), "Failed");
  CHECK_STR (model_group_state (MODEL_POLICY_ALWAYS, 0, 1, NULL, 0), "Pending");
  CHECK (model_should_restart (MODEL_POLICY_ALWAYS, 0));
  CHECK (model_should_restart (MODEL_POLICY_ONFAILURE, 3));
  CHECK (!model_should_restart (MODEL_POLICY_ONFAILURE, 0));
  CHECK (!model_should_restart (MODEL_POLICY_NEVER, 1));
  model_restart_policy_t p;
  CHECK (model_parse_restart_policy ("NEVER", &p) == 0 && p == MODEL_POLICY_NEVER);
  CHECK (model_parse_restart_policy ("bogus", &p) < 0);
}

int
main (void)
{
  test_validation ();
  test_canonical_and_output ();
  test_state_machine ();
  TEST_MAIN_END ();
}
