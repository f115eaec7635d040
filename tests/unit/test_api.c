/* Unit tests: routing, authentication and handlers over a real SQLite store (no agent). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "store/store.h"
#include "test.h"

static api_ctx_t ctx;
static const char *const locs[] = { "local", NULL };

static json_t *
call (const char *method, const char *url, const char *auth, const char *body, int *status)
{
  const char *q = strchr (url, '?');
  api_request_t req = { .method = method,
                        .path = url,
                        .path_len = q ? (size_t)(q - url) : strlen (url),
                        .query = q ? q + 1 : NULL,
                        .query_len = q ? strlen (q + 1) : 0,
                        .authorization = auth,
                        .host = "127.0.0.1:1",
                        .scheme = "http",
                        .body = body,
                        .body_len = body ? strlen (body) : 0 };
  api_response_t res;
  api_handle (&ctx, &req, &res);
  *status = res.status;
  json_t *j = res.body ? json_loads (res.body, 0, NULL) : NULL;
  api_response_clear (&res);
  return j;
}

static const char *
code_of (json_t *j)
{
  return json_string_value (json_object_get (json_object_get (j, "error"), "code"));
}

#define AUTH "Bearer 0123456789abcdef0123456789abcdef"
#define SUB "/subscriptions/sub1"
#define CG SUB "/resourceGroups/demo/providers/Microsoft.ContainerInstance/containerGroups"

int
main (void)
{
  char dir[] = "/tmp/skiff-test-api-XXXXXX";
  if (mkdtemp (dir) == NULL)
    return 1;
  char *db = skiff_strdup_printf ("%s/skiff.db", dir);
  skiff_error_t err = NULL;
  store_t *store = NULL;
  CHECK (store_open_sqlite (db, &store, &err) == 0);
  ctx = (api_ctx_t){ .store = store,
                     .subscription_id = "sub1",
                     .tenant_id = "t1",
                     .admin_token = "0123456789abcdef0123456789abcdef",
                     .limits = { .host_cpus = 2, .host_memory_gb = 8, .locations = locs },
                     .page_size = 2,
                     .data_dir = dir };
  int st;
  json_t *j;

  /* path parsing */
  api_path_t p;
  CHECK (api_path_parse ("//a///b%2Fc/", 12, &p, &err) < 0); /* %2F inside a segment is refused */
  skiff_error_release (&err);
  CHECK (api_path_parse ("//subscriptions///x/", 20, &p, &err) == 0 && p.n == 2);
  api_path_clear (&p);
  char *v = api_query_get ("a=1&API-VERSION=2023-05-01&b", 28, "api-version");
  CHECK_STR (v, "2023-05-01");
  free (v);

  /* auth */
  j = call ("GET", SUB "?api-version=2022-12-01", NULL, NULL, &st);
  CHECK (st == 401);
  CHECK_STR (code_of (j), "AuthenticationFailed");
  json_decref (j);
  j = call ("GET", SUB "?api-version=2022-12-01", "Bearer nope", NULL, &st);
  CHECK (st == 401);
  CHECK_STR (code_of (j), "InvalidAuthenticationToken");
  json_decref (j);
  /* api-version */
  j = call ("GET", SUB, AUTH, NULL, &st);
  CHECK (st == 400);
  CHECK_STR (code_of (j), "MissingApiVersionParameter");
  json_decref (j);
  j = call ("GET", "/SUBSCRIPTIONS?api-version=x", AUTH, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 1);
  json_decref (j);
  j = call ("GET", "/subscriptions/other?api-version=x", AUTH, NULL, &st);
  CHECK (st == 404);
  json_decref (j);

  /* resource groups */
  j = call ("GET", CG "/g1?api-version=2023-05-01", AUTH, NULL, &st);
  CHECK (st == 404);
  CHECK_STR (code_of (j), "ResourceGroupNotFound");
  json_decref (j);
  j = call ("PUT", SUB "/resourcegroups/demo?api-version=2021-04-01", AUTH, "{\"location\":\"local\"}", &st);
  CHECK (st == 201);
  json_decref (j);
  j = call ("PUT", SUB "/resourcegroups/DEMO?api-version=2021-04-01", AUTH, "{\"location\":\"local\"}", &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (j, "name")), "demo");
  json_decref (j);

  /* container groups */
  const char *body
      = "{\"location\":\"local\",\"properties\":{\"osType\":\"Linux\",\"containers\":[{\"name\":\"c1\","
        "\"properties\":{\"image\":\"busybox\",\"environmentVariables\":[{\"name\":\"S\",\"secureValue\":\"sekret\"}],"
        "\"resources\":{\"requests\":{\"cpu\":1,\"memoryInGb\":1}}}}]}}";
  j = call ("PUT",
            "//subscriptions/sub1/resourcegroups/Demo/providers/microsoft.containerinstance/CONTAINERGROUPS/"
            "g1?api-version=2023-05-01",
            AUTH, body, &st);
  CHECK (st == 201);
  CHECK_STR (json_string_value (json_object_get (j, "id")), CG "/g1");
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "properties"), "provisioningState")), "Pending");
  char *text = j ? json_dumps (j, 0) : NULL;
  CHECK (text && strstr (text, "sekret") == NULL);
  free (text);
  json_decref (j);
  j = call ("PUT", CG "/g1?api-version=2023-05-01", AUTH, body, &st);
  CHECK (st == 200);
  json_decref (j);
  j = call ("PUT", CG "/g2?api-version=2023-05-01", AUTH, "{\"location\":", &st);
  CHECK (st == 400);
  CHECK_STR (code_of (j), "InvalidRequestContent");
  json_decref (j);
  j = call ("PUT", CG "/g2?api-version=2023-05-01", AUTH, body, &st);
  json_decref (j);
  j = call ("PUT", CG "/g3?api-version=2023-05-01", AUTH, body, &st);
  json_decref (j);
  /* paging: page size 2, three groups */
  j = call ("GET", CG "?api-version=2023-05-01", AUTH, NULL, &st);
  CHECK (st == 200 && json_array_size (json_object_get (j, "value")) == 2);
  const char *next = json_string_value (json_object_get (j, "nextLink"));
  CHECK (next != NULL);
  if (next)
    {
      const char *path = strstr (next, "/subscriptions");
      json_t *j2 = call ("GET", path, AUTH, NULL, &st);
      CHECK (st == 200 && json_array_size (json_object_get (j2, "value")) == 1);
      CHECK (json_object_get (j2, "nextLink") == NULL);
      CHECK (json_object_get (json_object_get (json_array_get (json_object_get (j2, "value"), 0), "properties"),
                              "instanceView")
             == NULL);
      json_decref (j2);
    }
  json_decref (j);
  /* cached GETs follow every change */
  j = call ("GET", CG "/g1?api-version=2023-05-01", AUTH, NULL, &st);
  json_decref (j);
  j = call ("GET", CG "/g1?api-version=2023-05-01", AUTH, NULL, &st);
  CHECK (st == 200 && json_object_size (json_object_get (j, "tags")) == 0);
  json_decref (j);
  j = call ("PATCH", CG "/g1?api-version=2023-05-01", AUTH, "{\"tags\":{\"c\":\"1\"}}", &st);
  json_decref (j);
  j = call ("GET", CG "/G1?api-version=2023-05-01", AUTH, NULL, &st);
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "tags"), "c")), "1");
  json_decref (j);
  /* PATCH tags */
  j = call ("PATCH", CG "/g1?api-version=2023-05-01", AUTH, "{\"tags\":{\"k\":\"v\"}}", &st);
  CHECK (st == 200);
  CHECK_STR (json_string_value (json_object_get (json_object_get (j, "tags"), "k")), "v");
  json_decref (j);
  /* resource group with groups cannot be deleted */
  j = call ("DELETE", SUB "/resourcegroups/demo?api-version=2021-04-01", AUTH, NULL, &st);
  CHECK (st == 409);
  json_decref (j);
  /* logs of an unknown container */
  j = call ("GET", CG "/g1/containers/nope/logs?api-version=2023-05-01", AUTH, NULL, &st);
  CHECK (st == 404);
  json_decref (j);
  /* delete: accepted, then absent when deleted again after the row goes */
  j = call ("DELETE", CG "/g1?api-version=2023-05-01", AUTH, NULL, &st);
  CHECK (st == 202);
  json_decref (j);
  j = call ("DELETE", CG "/nothere?api-version=2023-05-01", AUTH, NULL, &st);
  CHECK (st == 204);
  json_decref (j);
  /* hostile input */
  j = call ("GET", "/subscriptions/sub1/%00?api-version=1", AUTH, NULL, &st);
  CHECK (st == 400);
  json_decref (j);
  char *huge = malloc (2 * 1024 * 1024 + 1);
  memset (huge, ' ', 2 * 1024 * 1024);
  huge[2 * 1024 * 1024] = '\0';
  j = call ("PUT", CG "/g9?api-version=2023-05-01", AUTH, huge, &st);
  CHECK (st == 413);
  json_decref (j);
  free (huge);

  store_close (store);
  api_cache_free (ctx.cache);
  char *cmd = skiff_strdup_printf ("rm -rf %s", dir);
  CHECK (system (cmd) == 0);
  free (cmd);
  free (db);
  TEST_MAIN_END ();
}
