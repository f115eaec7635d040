/* http.c - the CLI's ARM client: one reused libcurl easy handle (keep-alive), endpoint and token
 * discovery, subscription discovery, ARM error bodies, nextLink paging and async-operation polling. */
#include "cli/cli.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

/* Bodies larger than this are refused: the biggest legitimate answer is a 4 MB log. */
#define CLI_MAX_BODY (64u * 1024 * 1024)
#define CLI_MAX_PAGES 10000

static struct
{
  CURL *curl;
  char *endpoint;  /* without trailing '/' */
  char *unix_path; /* HTTP over this unix socket when not NULL */
  char *ca_bundle; /* CA file for https, NULL: the system store */
  char *token;
  char *subscription;
  const char *subscription_arg;
  bool debug;
  bool loaded;
} http;

static void
http_cleanup (void)
{
  if (http.curl)
    curl_easy_cleanup (http.curl);
  http.curl = NULL;
  free (http.endpoint);
  free (http.unix_path);
  free (http.ca_bundle);
  free (http.token);
  free (http.subscription);
  curl_global_cleanup ();
}

void
cli_http_configure (bool debug, const char *subscription)
{
  http.debug = debug;
  http.subscription_arg = subscription;
}

void
cli_sleep_ms (long ms)
{
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

static char *
trim (char *s)
{
  while (*s && isspace ((unsigned char)*s))
    s++;
  size_t n = strlen (s);
  while (n > 0 && isspace ((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

/* The data folder: $SKIFF_DATA, else /var/lib/skiff. */
static const char *
data_dir (void)
{
  const char *dir = getenv ("SKIFF_DATA");
  return dir && *dir ? dir : "/var/lib/skiff";
}

/* Reads the first line of $SKIFF_DATA/<name>, trimmed. NULL when the file is missing. */
static char *
read_data_file (const char *name, skiff_error_t *err)
{
  cleanup_free char *path = skiff_strdup_printf ("%s/%s", data_dir (), name);
  cleanup_free char *data = NULL;
  size_t len = 0;
  skiff_error_t local = NULL;
  if (skiff_read_file (path, 64 * 1024, &data, &len, &local) < 0)
    {
      int st = local->status;
      if (st == ENOENT)
        {
          skiff_error_release (&local);
          return NULL;
        }
      *err = local;
      return NULL;
    }
  char *nl = strchr (data, '\n');
  if (nl)
    *nl = '\0';
  return skiff_strdup (trim (data));
}

/* Finds the transport: $SKIFF_ENDPOINT (with $SKIFF_CA_BUNDLE), else the unix socket
 * <data>/api.sock when it exists, else the URL in <data>/endpoint, trusting <data>/pki/ca.pem for
 * https unless $SKIFF_CA_BUNDLE names another bundle. */
static int
load_endpoint (skiff_error_t *err)
{
  const char *ca = getenv ("SKIFF_CA_BUNDLE");
  if (ca && *ca)
    http.ca_bundle = skiff_strdup (ca);
  const char *e = getenv ("SKIFF_ENDPOINT");
  if (e && *e)
    {
      http.endpoint = skiff_strdup (e);
      return 0;
    }
  cleanup_free char *sock = skiff_strdup_printf ("%s/api.sock", data_dir ());
  struct stat st;
  if (stat (sock, &st) == 0 && S_ISSOCK (st.st_mode))
    {
      http.unix_path = steal_pointer (&sock);
      http.endpoint = skiff_strdup ("http://localhost");
      return 0;
    }
  http.endpoint = read_data_file ("endpoint", err);
  if (http.endpoint == NULL)
    {
      if (*err)
        return skiff_error_wrap (err, "reading the skiff endpoint");
      return skiff_error_set (err, 0,
                              "no skiff endpoint: set SKIFF_ENDPOINT, or start skiffd (it writes $SKIFF_DATA/api.sock "
                              "and $SKIFF_DATA/endpoint)");
    }
  if (http.ca_bundle == NULL && strncasecmp (http.endpoint, "https://", 8) == 0)
    {
      cleanup_free char *local_ca = skiff_strdup_printf ("%s/pki/ca.pem", data_dir ());
      if (access (local_ca, R_OK) == 0)
        http.ca_bundle = steal_pointer (&local_ca);
    }
  return 0;
}

static int
load_config (skiff_error_t *err)
{
  if (http.loaded)
    return 0;
  if (load_endpoint (err) < 0)
    return -1;
  size_t n = strlen (http.endpoint);
  while (n > 0 && http.endpoint[n - 1] == '/')
    http.endpoint[--n] = '\0';
  if (n == 0)
    return skiff_error_set (err, 0, "the skiff endpoint is empty");

  const char *t = getenv ("SKIFF_TOKEN");
  if (t && *t)
    http.token = skiff_strdup (t);
  else
    {
      http.token = read_data_file ("admin.token", err);
      if (http.token == NULL)
        {
          if (*err)
            return skiff_error_wrap (err, "reading the skiff token");
          return skiff_error_set (err, 0, "no access token: set SKIFF_TOKEN or write it to $SKIFF_DATA/admin.token");
        }
    }

  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return skiff_error_set (err, 0, "cannot initialise libcurl");
  http.curl = curl_easy_init ();
  if (http.curl == NULL)
    return skiff_error_set (err, 0, "cannot create a libcurl handle");
  atexit (http_cleanup);
  http.loaded = true;
  return 0;
}

int
cli_http_transport (struct cli_transport *out, skiff_error_t *err)
{
  if (load_config (err) < 0)
    return -1;
  out->unix_path = http.unix_path;
  out->endpoint = http.endpoint;
  out->ca_bundle = http.ca_bundle;
  return 0;
}

void
cli_response_clear (struct cli_response *r)
{
  if (r->body)
    json_decref (r->body);
  free (r->raw);
  free (r->async_operation);
  free (r->location);
  memset (r, 0, sizeof (*r));
  r->retry_after = -1;
}

static size_t
on_body (char *data, size_t size, size_t nmemb, void *user)
{
  struct cli_response *r = user;
  size_t n = size * nmemb;
  if (r->raw_len + n > CLI_MAX_BODY)
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
  char *nb = realloc (r->raw, r->raw_len + n + 1);
  if (nb == NULL)
    return 0;
  r->raw = nb;
  memcpy (r->raw + r->raw_len, data, n);
  r->raw_len += n;
  r->raw[r->raw_len] = '\0';
  return n;
}

/* Returns a copy of the header value when `line` is "<name>: value", else NULL. */
static char *
header_value (const char *line, size_t len, const char *name)
{
  size_t nl = strlen (name);
  if (len <= nl || strncasecmp (line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  const char *v = line + nl + 1;
  const char *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  return strndup (v, (size_t)(end - v));
}

static size_t
on_header (char *data, size_t size, size_t nmemb, void *user)
{
  struct cli_response *r = user;
  size_t n = size * nmemb;
  char *v;
  if ((v = header_value (data, n, "Azure-AsyncOperation")))
    {
      free (r->async_operation);
      r->async_operation = v;
    }
  else if ((v = header_value (data, n, "Location")))
    {
      free (r->location);
      r->location = v;
    }
  else if ((v = header_value (data, n, "Retry-After")))
    {
      char *end = NULL;
      long s = strtol (v, &end, 10);
      if (end != v && s >= 0 && s < 3600)
        r->retry_after = (int)s;
      free (v);
    }
  return n;
}

int
cli_http_request (const char *method, const char *target, json_t *body, struct cli_response *resp, skiff_error_t *err)
{
  memset (resp, 0, sizeof (*resp));
  resp->retry_after = -1;
  if (load_config (err) < 0)
    return -1;

  cleanup_free char *url = NULL;
  if (strncmp (target, "http://", 7) == 0 || strncmp (target, "https://", 8) == 0)
    url = skiff_strdup (target);
  else
    url = skiff_strdup_printf ("%s%s", http.endpoint, target);

  cleanup_free char *payload = NULL;
  if (body)
    {
      payload = json_dumps (body, JSON_COMPACT);
      if (payload == NULL)
        return skiff_error_set (err, ENOMEM, "cannot encode the request body");
    }

  CURL *c = http.curl;
  curl_easy_reset (c); /* keeps the connection cache, so the connection is reused */
  curl_easy_setopt (c, CURLOPT_URL, url);
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt (c, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt (c, CURLOPT_USERAGENT, "skiff-cli/" SKIFF_VERSION);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, resp);
  curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (c, CURLOPT_HEADERDATA, resp);
  if (http.unix_path)
    curl_easy_setopt (c, CURLOPT_UNIX_SOCKET_PATH, http.unix_path);
  if (http.ca_bundle)
    curl_easy_setopt (c, CURLOPT_CAINFO, http.ca_bundle);

  struct curl_slist *headers = NULL;
  cleanup_free char *auth = skiff_strdup_printf ("Authorization: Bearer %s", http.token);
  headers = curl_slist_append (headers, auth);
  headers = curl_slist_append (headers, "Accept: application/json");
  if (payload)
    headers = curl_slist_append (headers, "Content-Type: application/json");
  headers = curl_slist_append (headers, "Expect:"); /* no 100-continue round trip for large bodies */
  curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);

  if (strcmp (method, "GET") == 0)
    curl_easy_setopt (c, CURLOPT_HTTPGET, 1L);
  else
    {
      curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, method);
      if (payload || strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0)
        {
          curl_easy_setopt (c, CURLOPT_POSTFIELDS, payload ? payload : "");
          curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE, (long)(payload ? strlen (payload) : 0));
        }
    }

  CURLcode rc = curl_easy_perform (c);
  curl_slist_free_all (headers);
  if (rc != CURLE_OK)
    {
      cli_response_clear (resp);
      return skiff_error_set (err, 0, "%s %s: %s", method, url, curl_easy_strerror (rc));
    }
  curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &resp->status);
  if (http.debug)
    {
      long connects = 0;
      curl_easy_getinfo (c, CURLINFO_NUM_CONNECTS, &connects);
      fprintf (stderr, "DEBUG: %s %s%s%s -> %ld%s\n", method, url, http.unix_path ? " via " : "",
               http.unix_path ? http.unix_path : "", resp->status, connects ? " (new connection)" : "");
    }
  if (resp->raw == NULL)
    resp->raw = skiff_strdup ("");
  if (resp->raw_len > 0)
    resp->body = json_loadb (resp->raw, resp->raw_len, 0, NULL);
  return 0;
}

int
cli_http_call (const char *method, const char *target, json_t *body, struct cli_response *resp, skiff_error_t *err)
{
  if (cli_http_request (method, target, body, resp, err) < 0)
    return -1;
  if (resp->status >= 200 && resp->status < 300)
    return 0;
  long status = resp->status;
  json_t *e = skiff_json_get (resp->body, "error");
  const char *code = skiff_json_get_string (e, "code");
  const char *msg = skiff_json_get_string (e, "message");
  const char *target_prop = skiff_json_get_string (e, "target");
  cleanup_free char *raw = NULL;
  if (msg == NULL)
    {
      /* Not an ARM body: show what came back, shortened. */
      raw = strndup (resp->raw ? resp->raw : "", 300);
      msg = raw && *raw ? trim (raw) : "";
    }
  if (code == NULL)
    code = status == 404 ? "NotFound" : "HttpError";
  if (*msg == '\0')
    skiff_error_arm_target (err, (int)status, code, target_prop, "Operation returned an invalid status %ld", status);
  else
    skiff_error_arm_target (err, (int)status, code, target_prop, "%s", msg);
  cli_response_clear (resp);
  return -1;
}

const char *
cli_subscription (skiff_error_t *err)
{
  if (http.subscription)
    return http.subscription;
  if (http.subscription_arg && *http.subscription_arg)
    return http.subscription = skiff_strdup (http.subscription_arg);
  const char *e = getenv ("SKIFF_SUBSCRIPTION");
  if (e && *e)
    return http.subscription = skiff_strdup (e);

  struct cli_response r;
  if (cli_http_call ("GET", "/subscriptions?api-version=" CLI_API_SUBS, NULL, &r, err) < 0)
    {
      if ((*err)->code == NULL) /* ARM errors are shown as the server wrote them */
        skiff_error_wrap (err, "listing subscriptions");
      return NULL;
    }
  json_t *v = skiff_json_get (r.body, "value");
  const char *id = skiff_json_get_string (json_array_get (v, 0), "subscriptionId");
  if (id == NULL)
    {
      cli_response_clear (&r);
      skiff_error_set (err, 0, "the server lists no subscription; pass --subscription");
      return NULL;
    }
  http.subscription = skiff_strdup (id);
  cli_response_clear (&r);
  return http.subscription;
}

char *
cli_escape (const char *segment)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen (segment);
  char *out = malloc (n * 3 + 1), *o = out;
  if (out == NULL)
    abort ();
  for (const unsigned char *p = (const unsigned char *)segment; *p; p++)
    {
      if (isalnum (*p) || strchr ("-._~()", *p))
        *o++ = (char)*p;
      else
        {
          *o++ = '%';
          *o++ = hex[*p >> 4];
          *o++ = hex[*p & 15];
        }
    }
  *o = '\0';
  return out;
}

char *
cli_cg_path (const char *sub, const char *rg, const char *name, const char *suffix, const char *api_version,
             const char *extra_query)
{
  cleanup_free char *esub = cli_escape (sub);
  cleanup_free char *erg = cli_escape (rg);
  cleanup_free char *ename = name ? cli_escape (name) : NULL;
  return skiff_strdup_printf (
      "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/containerGroups%s%s%s"
      "?api-version=%s%s",
      esub, erg, ename ? "/" : "", ename ? ename : "", suffix ? suffix : "", api_version,
      extra_query ? extra_query : "");
}

int
cli_http_list (const char *target, json_t **out, skiff_error_t *err)
{
  cleanup_json json_t *all = json_array ();
  cleanup_free char *next = skiff_strdup (target);
  for (int page = 0; next && *next; page++)
    {
      if (page >= CLI_MAX_PAGES)
        return skiff_error_set (err, 0, "too many pages in the list answer");
      struct cli_response r;
      if (cli_http_call ("GET", next, NULL, &r, err) < 0)
        return -1;
      json_t *v = skiff_json_get (r.body, "value");
      if (json_is_array (v))
        json_array_extend (all, v);
      const char *nl = skiff_json_get_string (r.body, "nextLink");
      free (next);
      next = nl && *nl ? skiff_strdup (nl) : NULL;
      cli_response_clear (&r);
    }
  *out = steal_pointer (&all);
  return 0;
}

int
cli_http_wait_async (const char *async_url, const char *location_url, double timeout_s, skiff_error_t *err)
{
  int64_t deadline = skiff_monotonic_ns () + (int64_t)(timeout_s * 1e9);
  const char *url = async_url ? async_url : location_url;
  if (url == NULL)
    return 0;
  for (;;)
    {
      struct cli_response r;
      if (cli_http_call ("GET", url, NULL, &r, err) < 0)
        return -1;
      int delay = r.retry_after > 0 ? r.retry_after : 1;
      if (async_url == NULL)
        {
          /* Location polling: 202 means still running, anything else is done. */
          bool done = r.status != 202;
          cli_response_clear (&r);
          if (done)
            return 0;
        }
      else
        {
          const char *status = skiff_json_get_string (r.body, "status");
          if (status && (strcasecmp (status, "Failed") == 0 || strcasecmp (status, "Canceled") == 0))
            {
              json_t *e = skiff_json_get (r.body, "error");
              const char *code = skiff_json_get_string (e, "code");
              const char *msg = skiff_json_get_string (e, "message");
              skiff_error_arm (err, 0, code ? code : status, "%s", msg ? msg : "the operation did not succeed");
              cli_response_clear (&r);
              return -1;
            }
          bool done = status && strcasecmp (status, "Succeeded") == 0;
          cli_response_clear (&r);
          if (done)
            return 0;
        }
      if (skiff_monotonic_ns () + (int64_t)delay * 1000000000LL > deadline)
        return skiff_error_set (err, 0, "timed out waiting for the operation to finish");
      cli_sleep_ms (delay * 1000L);
    }
}
