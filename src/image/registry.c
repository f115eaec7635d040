/* registry.c - OCI distribution / Docker Registry v2 client on libcurl.
 *
 * Anonymous, bearer-token and basic auth; connections, DNS and TLS sessions are shared between
 * all handles through one curl share handle. Blobs are streamed through a per-blob multi
 * handle that the consumer drives (pull model), hashed with OpenSSL and size-capped.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "image/internal.h"

#define ACCEPT_MANIFESTS                                                                                               \
  "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "                      \
  "application/vnd.docker.distribution.manifest.v2+json, "                                                             \
  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MAX_HEADER_VALUE 8192
#define MAX_ERROR_BODY 65536
#define MAX_TOKEN_BODY (1024 * 1024)
#define BLOB_PAUSE_AT (8 * 1024 * 1024)

static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void
share_lock (CURL *h, curl_lock_data data, curl_lock_access access, void *u)
{
  (void)h;
  (void)access;
  (void)u;
  pthread_mutex_lock (&share_locks[data]);
}

static void
share_unlock (CURL *h, curl_lock_data data, void *u)
{
  (void)h;
  (void)u;
  pthread_mutex_unlock (&share_locks[data]);
}

static void
global_init_once (void)
{
  curl_global_init (CURL_GLOBAL_ALL);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init (&share_locks[i], NULL);
  share = curl_share_init ();
  curl_share_setopt (share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt (share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt (share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt (share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt (share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
}

void
registry_global_init (void)
{
  pthread_once (&global_once, global_init_once);
}

struct registry_client
{
  char *base; /* scheme://host[:port]/v2/<repo> */
  char *registry;
  char *username, *password;
  char *ca_file;
  pthread_mutex_t lock;
  char *auth_header; /* "Authorization: ..." or NULL; protected by lock */
};

void
image_sha256_digest (const void *data, size_t len, char *out)
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  EVP_Digest (data, len, md, &mdlen, EVP_sha256 (), NULL);
  strcpy (out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf (out + 7 + 2 * i, "%02x", md[i]);
}

static bool
host_is_local (const char *hostport)
{
  char host[256];
  snprintf (host, sizeof host, "%s", hostport);
  if (host[0] == '[')
    {
      char *e = strchr (host, ']');
      if (e)
        *e = '\0';
      return strcmp (host + 1, "::1") == 0;
    }
  char *colon = strchr (host, ':');
  if (colon)
    *colon = '\0';
  if (strcmp (host, "localhost") == 0)
    return true;
  unsigned a, b, c, d;
  char extra;
  if (sscanf (host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a == 127 && b < 256 && c < 256 && d < 256)
    return true;
  return false;
}

static bool
server_matches (const char *server, const image_ref_t *ref)
{
  const char *s = server;
  if (strncmp (s, "https://", 8) == 0)
    s += 8;
  else if (strncmp (s, "http://", 7) == 0)
    s += 7;
  size_t n = strcspn (s, "/");
  if ((strlen (ref->registry) == n && strncmp (s, ref->registry, n) == 0)
      || (strlen (ref->api_host) == n && strncmp (s, ref->api_host, n) == 0))
    return true;
  if (strcmp (ref->registry, "docker.io") == 0)
    {
      static const char *const hub[] = { "docker.io", "index.docker.io", "registry-1.docker.io", NULL };
      for (int i = 0; hub[i]; i++)
        if (strlen (hub[i]) == n && strncmp (s, hub[i], n) == 0)
          return true;
    }
  return false;
}

int
registry_client_new (const image_ref_t *ref, const image_credentials_t *creds, const char *const *insecure_registries,
                     const char *ca_file, registry_client_t **out, skiff_error_t *err)
{
  registry_global_init ();
  bool plain = host_is_local (ref->api_host);
  for (const char *const *i = insecure_registries; i && *i && !plain; i++)
    if (strcmp (*i, ref->api_host) == 0 || strcmp (*i, ref->registry) == 0)
      plain = true;
  registry_client_t *c = calloc (1, sizeof (*c));
  if (c == NULL)
    return skiff_error_set (err, ENOMEM, "registry client");
  c->base = skiff_strdup_printf ("%s://%s/v2/%s", plain ? "http" : "https", ref->api_host, ref->repository);
  c->registry = skiff_strdup (ref->registry);
  c->ca_file = skiff_strdup (ca_file);
  pthread_mutex_init (&c->lock, NULL);
  for (const image_credentials_t *cr = creds; cr && cr->server; cr++)
    if (server_matches (cr->server, ref))
      {
        c->username = skiff_strdup (cr->username ? cr->username : "");
        c->password = skiff_strdup (cr->password ? cr->password : "");
        break;
      }
  *out = c;
  return 0;
}

void
registry_client_free (registry_client_t *c)
{
  if (c == NULL)
    return;
  free (c->base);
  free (c->registry);
  free (c->username);
  if (c->password)
    {
      explicit_bzero (c->password, strlen (c->password));
      free (c->password);
    }
  free (c->ca_file);
  free (c->auth_header);
  pthread_mutex_destroy (&c->lock);
  free (c);
}

/* ---- one request into memory ---- */

typedef struct
{
  char *body;
  size_t len, cap, max;
  bool too_big;
  char *www_auth;
  char *content_type;
} mem_t;

static size_t
mem_write (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  mem_t *m = opaque;
  size_t n = size * nmemb;
  if (m->len + n > m->max)
    {
      m->too_big = true;
      return 0;
    }
  if (m->len + n + 1 > m->cap)
    {
      size_t cap = m->cap ? m->cap : 16384;
      while (cap < m->len + n + 1)
        cap *= 2;
      char *b = realloc (m->body, cap);
      if (b == NULL)
        return 0;
      m->body = b;
      m->cap = cap;
    }
  memcpy (m->body + m->len, ptr, n);
  m->len += n;
  m->body[m->len] = '\0';
  return n;
}

static char *
header_value (const char *line, size_t n, const char *name)
{
  size_t nl = strlen (name);
  if (n <= nl + 1 || strncasecmp (line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  const char *v = line + nl + 1;
  const char *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  if (end - v > MAX_HEADER_VALUE)
    return NULL;
  return strndup (v, (size_t)(end - v));
}

static size_t
mem_header (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  mem_t *m = opaque;
  size_t n = size * nmemb;
  char *v;
  if ((v = header_value (ptr, n, "WWW-Authenticate")))
    {
      free (m->www_auth);
      m->www_auth = v;
    }
  else if ((v = header_value (ptr, n, "Content-Type")))
    {
      free (m->content_type);
      m->content_type = v;
    }
  return n;
}

static void
mem_clear (mem_t *m)
{
  free (m->body);
  free (m->www_auth);
  free (m->content_type);
  memset (m, 0, sizeof (*m));
}

static CURL *
new_handle (registry_client_t *c)
{
  CURL *h = curl_easy_init ();
  if (h == NULL)
    return NULL;
  curl_easy_setopt (h, CURLOPT_SHARE, share);
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt (h, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt (h, CURLOPT_USERAGENT, "skiff/0.1");
  curl_easy_setopt (h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (c->ca_file)
    curl_easy_setopt (h, CURLOPT_CAINFO, c->ca_file);
  return h;
}

/* Message from a registry error body {"errors":[{"code","message"}]}, or a generic one. */
static char *
registry_error_message (long status, const char *body, size_t len)
{
  if (body && len)
    {
      json_error_t je;
      cleanup_json json_t *j = json_loadb (body, len, 0, &je);
      json_t *errs = json_object_get (j, "errors");
      json_t *e0 = json_array_get (errs, 0);
      const char *code = json_string_value (json_object_get (e0, "code"));
      const char *msg = json_string_value (json_object_get (e0, "message"));
      if (code || msg)
        return skiff_strdup_printf ("HTTP %ld: %s%s%s", status, code ? code : "", code && msg ? ": " : "",
                                    msg ? msg : "");
    }
  if (status == 401)
    return skiff_strdup ("HTTP 401: authentication required or credentials rejected");
  if (status == 404)
    return skiff_strdup ("HTTP 404: not found");
  return skiff_strdup_printf ("HTTP %ld", status);
}

/* Parses `Bearer realm="..",service="..",scope=".."` or `Basic realm=".."`. */
static int
parse_challenge (const char *h, char **scheme, char **realm, char **service, char **scope)
{
  const char *p = h;
  size_t sl = strcspn (p, " ");
  *scheme = strndup (p, sl);
  p += sl;
  while (*p)
    {
      while (*p == ' ' || *p == ',')
        p++;
      size_t kl = strcspn (p, "=");
      if (p[kl] != '=')
        break;
      char key[32];
      snprintf (key, sizeof key, "%.*s", (int)(kl < 31 ? kl : 31), p);
      p += kl + 1;
      char *val;
      if (*p == '"')
        {
          p++;
          size_t vl = strcspn (p, "\"");
          val = strndup (p, vl);
          p += vl;
          if (*p == '"')
            p++;
        }
      else
        {
          size_t vl = strcspn (p, ",");
          val = strndup (p, vl);
          p += vl;
        }
      char **dst = strcasecmp (key, "realm") == 0     ? realm
                   : strcasecmp (key, "service") == 0 ? service
                   : strcasecmp (key, "scope") == 0   ? scope
                                                      : NULL;
      if (dst && *dst == NULL)
        *dst = val;
      else
        free (val);
    }
  return 0;
}

static int
authenticate (registry_client_t *c, const char *challenge, skiff_error_t *err)
{
  cleanup_free char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
  parse_challenge (challenge, &scheme, &realm, &service, &scope);
  if (scheme && strcasecmp (scheme, "Basic") == 0)
    {
      if (c->username == NULL)
        return skiff_error_set (err, 0, "the registry requires credentials (basic auth) and none were given");
      cleanup_free char *raw = skiff_strdup_printf ("%s:%s", c->username, c->password);
      size_t rl = strlen (raw);
      cleanup_free char *b64 = malloc (4 * ((rl + 2) / 3) + 1);
      EVP_EncodeBlock ((unsigned char *)b64, (unsigned char *)raw, (int)rl);
      explicit_bzero (raw, rl);
      pthread_mutex_lock (&c->lock);
      free (c->auth_header);
      c->auth_header = skiff_strdup_printf ("Authorization: Basic %s", b64);
      pthread_mutex_unlock (&c->lock);
      return 0;
    }
  if (scheme == NULL || strcasecmp (scheme, "Bearer") != 0 || realm == NULL)
    return skiff_error_set (err, 0, "unsupported authentication challenge from the registry");
  if (strncmp (realm, "https://", 8) != 0 && strncmp (realm, "http://", 7) != 0)
    return skiff_error_set (err, 0, "invalid token realm in the registry's challenge");
  CURL *h = new_handle (c);
  if (h == NULL)
    return skiff_error_set (err, ENOMEM, "curl");
  cleanup_free char *url = NULL;
  {
    char *es = service ? curl_easy_escape (h, service, 0) : NULL;
    char *esc = scope ? curl_easy_escape (h, scope, 0) : NULL;
    url = skiff_strdup_printf ("%s%s%s%s%s%s", realm, strchr (realm, '?') ? "&" : "?", es ? "service=" : "",
                               es ? es : "", esc ? (es ? "&scope=" : "scope=") : "", esc ? esc : "");
    curl_free (es);
    curl_free (esc);
  }
  mem_t m = { .max = MAX_TOKEN_BODY };
  curl_easy_setopt (h, CURLOPT_URL, url);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, mem_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &m);
  if (c->username)
    {
      curl_easy_setopt (h, CURLOPT_USERNAME, c->username);
      curl_easy_setopt (h, CURLOPT_PASSWORD, c->password);
      curl_easy_setopt (h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
  CURLcode rc = curl_easy_perform (h);
  long status = 0;
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup (h);
  if (rc != CURLE_OK)
    {
      mem_clear (&m);
      return skiff_error_set (err, 0, "token request failed: %s", curl_easy_strerror (rc));
    }
  if (status != 200)
    {
      cleanup_free char *msg = registry_error_message (status, m.body, m.len);
      mem_clear (&m);
      return skiff_error_set (err, 0, "token request refused (%s)", msg);
    }
  json_error_t je;
  cleanup_json json_t *j = json_loadb (m.body ? m.body : "", m.len, 0, &je);
  mem_clear (&m);
  const char *tok = json_string_value (json_object_get (j, "token"));
  if (tok == NULL || *tok == '\0')
    tok = json_string_value (json_object_get (j, "access_token"));
  if (tok == NULL || *tok == '\0' || strlen (tok) > 65536 || strpbrk (tok, "\r\n"))
    return skiff_error_set (err, 0, "the token service returned no usable token");
  pthread_mutex_lock (&c->lock);
  free (c->auth_header);
  c->auth_header = skiff_strdup_printf ("Authorization: Bearer %s", tok);
  pthread_mutex_unlock (&c->lock);
  return 0;
}

static struct curl_slist *
request_headers (registry_client_t *c, const char *accept)
{
  struct curl_slist *l = NULL;
  if (accept)
    l = curl_slist_append (l, accept);
  pthread_mutex_lock (&c->lock);
  if (c->auth_header)
    l = curl_slist_append (l, c->auth_header);
  pthread_mutex_unlock (&c->lock);
  return l;
}

/* GET url into memory (max bytes), authenticating on 401 once. */
static int
get_mem (registry_client_t *c, const char *url, const char *accept, size_t max, mem_t *m, skiff_error_t *err)
{
  for (int attempt = 0;; attempt++)
    {
      mem_clear (m);
      m->max = max;
      CURL *h = new_handle (c);
      if (h == NULL)
        return skiff_error_set (err, ENOMEM, "curl");
      struct curl_slist *hdrs = request_headers (c, accept);
      curl_easy_setopt (h, CURLOPT_URL, url);
      curl_easy_setopt (h, CURLOPT_HTTPHEADER, hdrs);
      curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, mem_write);
      curl_easy_setopt (h, CURLOPT_WRITEDATA, m);
      curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, mem_header);
      curl_easy_setopt (h, CURLOPT_HEADERDATA, m);
      CURLcode rc = curl_easy_perform (h);
      long status = 0;
      curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_cleanup (h);
      curl_slist_free_all (hdrs);
      if (m->too_big)
        return skiff_error_set (err, 0, "response larger than %zu bytes", max);
      if (rc != CURLE_OK)
        return skiff_error_set (err, 0, "%s", curl_easy_strerror (rc));
      if (status == 400 && strncmp (c->base, "http://", 7) == 0 && m->body && strstr (m->body, "HTTPS"))
        {
          /* a local or insecure registry that speaks TLS: use https (verified) from now on */
          pthread_mutex_lock (&c->lock);
          char *nb = skiff_strdup_printf ("https://%s", c->base + 7);
          free (c->base);
          c->base = nb;
          pthread_mutex_unlock (&c->lock);
          cleanup_free char *nurl = skiff_strdup_printf ("https://%s", url + 7);
          return get_mem (c, nurl, accept, max, m, err);
        }
      if (status == 401 && attempt == 0 && m->www_auth)
        {
          cleanup_free char *chal = steal_pointer (&m->www_auth);
          if (authenticate (c, chal, err) < 0)
            return -1;
          continue;
        }
      if (status != 200)
        {
          cleanup_free char *msg = registry_error_message (status, m->body, m->len);
          if (status == 401 && c->username == NULL)
            return skiff_error_set (err, 0, "%s (no credentials given for %s)", msg, c->registry);
          return skiff_error_set (err, 0, "%s", msg);
        }
      return 0;
    }
}

int
registry_get_manifest (registry_client_t *c, const char *tag_or_digest, char **body, size_t *len, char **media_type,
                       skiff_error_t *err)
{
  cleanup_free char *url = skiff_strdup_printf ("%s/manifests/%s", c->base, tag_or_digest);
  mem_t m = { 0 };
  if (get_mem (c, url, ACCEPT_MANIFESTS, IMAGE_MAX_MANIFEST_SIZE, &m, err) < 0)
    {
      mem_clear (&m);
      return skiff_error_wrap (err, "manifest %s", tag_or_digest);
    }
  *body = m.body ? steal_pointer (&m.body) : skiff_strdup ("");
  *len = m.len;
  if (media_type)
    {
      *media_type = steal_pointer (&m.content_type);
      if (*media_type)
        (*media_type)[strcspn (*media_type, ";")] = '\0';
    }
  mem_clear (&m);
  return 0;
}

int
registry_get_blob_mem (registry_client_t *c, const char *digest, int64_t size, char **body, skiff_error_t *err)
{
  if (size < 0 || size > IMAGE_MAX_CONFIG_SIZE)
    return skiff_error_set (err, 0, "blob %s: size %lld out of range", digest, (long long)size);
  cleanup_free char *url = skiff_strdup_printf ("%s/blobs/%s", c->base, digest);
  mem_t m = { 0 };
  if (get_mem (c, url, NULL, (size_t)size, &m, err) < 0)
    {
      mem_clear (&m);
      return skiff_error_wrap (err, "blob %s", digest);
    }
  if ((int64_t)m.len != size)
    {
      mem_clear (&m);
      return skiff_error_set (err, 0, "blob %s: size differs from the descriptor (%lld bytes)", digest,
                              (long long)size);
    }
  char got[80];
  image_sha256_digest (m.body ? m.body : "", m.len, got);
  if (strcmp (got, digest) != 0)
    {
      mem_clear (&m);
      return skiff_error_set (err, 0, "blob %s: digest mismatch (got %s)", digest, got);
    }
  *body = m.body ? steal_pointer (&m.body) : skiff_strdup ("");
  mem_clear (&m);
  return 0;
}

/* ---- streaming blobs ---- */

struct registry_blob
{
  registry_client_t *c;
  char *digest;
  int64_t size, total;
  CURLM *multi;
  CURL *h;
  struct curl_slist *hdrs;
  EVP_MD_CTX *md;
  char *buf;
  size_t len, cap;
  bool done, paused, too_long, http_error;
  CURLcode result;
  long status;
  mem_t errbody;
  registry_bytes_cb cb;
  void *cb_opaque;
};

static size_t
blob_write (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  registry_blob_t *b = opaque;
  size_t n = size * nmemb;
  if (b->status == 0)
    curl_easy_getinfo (b->h, CURLINFO_RESPONSE_CODE, &b->status);
  if (b->status != 200)
    {
      b->http_error = true;
      if (b->errbody.len + n <= MAX_ERROR_BODY)
        mem_write (ptr, 1, n, &b->errbody);
      return n;
    }
  if (b->len >= BLOB_PAUSE_AT)
    {
      b->paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
  if (b->total + (int64_t)n > b->size)
    {
      b->too_long = true;
      return 0;
    }
  if (b->len + n > b->cap)
    {
      size_t cap = b->cap ? b->cap : 1024 * 1024;
      while (cap < b->len + n)
        cap *= 2;
      char *nb = realloc (b->buf, cap);
      if (nb == NULL)
        return 0;
      b->buf = nb;
      b->cap = cap;
    }
  memcpy (b->buf + b->len, ptr, n);
  b->len += n;
  b->total += (int64_t)n;
  EVP_DigestUpdate (b->md, ptr, n);
  if (b->cb)
    b->cb (b->cb_opaque, (int64_t)n);
  return n;
}

static size_t
blob_header (char *ptr, size_t size, size_t nmemb, void *opaque)
{
  registry_blob_t *b = opaque;
  size_t n = size * nmemb;
  /* a redirect or 401 starts a new response: the status is read again with the body */
  if (n > 5 && strncmp (ptr, "HTTP/", 5) == 0)
    b->status = 0;
  return n;
}

int
registry_blob_open (registry_client_t *c, const char *digest, int64_t size, registry_bytes_cb cb, void *opaque,
                    registry_blob_t **out, skiff_error_t *err)
{
  registry_blob_t *b = calloc (1, sizeof (*b));
  if (b == NULL)
    return skiff_error_set (err, ENOMEM, "blob");
  b->c = c;
  b->digest = skiff_strdup (digest);
  b->size = size;
  b->cb = cb;
  b->cb_opaque = opaque;
  b->md = EVP_MD_CTX_new ();
  b->multi = curl_multi_init ();
  b->h = new_handle (c);
  if (b->md == NULL || b->multi == NULL || b->h == NULL)
    {
      registry_blob_free (b);
      return skiff_error_set (err, ENOMEM, "blob");
    }
  EVP_DigestInit_ex (b->md, EVP_sha256 (), NULL);
  cleanup_free char *url = skiff_strdup_printf ("%s/blobs/%s", c->base, digest);
  b->hdrs = request_headers (c, NULL);
  curl_easy_setopt (b->h, CURLOPT_URL, url);
  curl_easy_setopt (b->h, CURLOPT_HTTPHEADER, b->hdrs);
  curl_easy_setopt (b->h, CURLOPT_WRITEFUNCTION, blob_write);
  curl_easy_setopt (b->h, CURLOPT_WRITEDATA, b);
  curl_easy_setopt (b->h, CURLOPT_HEADERFUNCTION, blob_header);
  curl_easy_setopt (b->h, CURLOPT_HEADERDATA, b);
  curl_multi_add_handle (b->multi, b->h);
  *out = b;
  return 0;
}

ssize_t
registry_blob_read (void *opaque, const void **buf, skiff_error_t *err)
{
  registry_blob_t *b = opaque;
  b->len = 0; /* the previous chunk is consumed */
  for (;;)
    {
      if (b->paused)
        {
          b->paused = false;
          curl_easy_pause (b->h, CURLPAUSE_CONT);
        }
      if (b->len > 0)
        {
          *buf = b->buf;
          return (ssize_t)b->len;
        }
      if (b->done)
        {
          if (b->too_long)
            return skiff_error_set (err, 0, "blob %s is longer than its declared size %lld", b->digest,
                                    (long long)b->size);
          if (b->http_error || (b->status != 200 && b->status != 0))
            {
              cleanup_free char *msg = registry_error_message (b->status, b->errbody.body, b->errbody.len);
              return skiff_error_set (err, 0, "blob %s: %s", b->digest, msg);
            }
          if (b->result != CURLE_OK)
            return skiff_error_set (err, 0, "blob %s: %s", b->digest, curl_easy_strerror (b->result));
          return 0;
        }
      int running = 0;
      CURLMcode mc = curl_multi_perform (b->multi, &running);
      if (mc != CURLM_OK)
        return skiff_error_set (err, 0, "blob %s: %s", b->digest, curl_multi_strerror (mc));
      CURLMsg *msg;
      int left;
      while ((msg = curl_multi_info_read (b->multi, &left)))
        if (msg->msg == CURLMSG_DONE)
          {
            b->done = true;
            b->result = msg->data.result;
            curl_easy_getinfo (b->h, CURLINFO_RESPONSE_CODE, &b->status);
          }
      if (b->len == 0 && !b->done && !b->paused)
        curl_multi_poll (b->multi, NULL, 0, 1000, NULL);
    }
}

int
registry_blob_finish (registry_blob_t *b, skiff_error_t *err)
{
  if (b->total != b->size)
    return skiff_error_set (err, 0, "blob %s is %lld bytes, its descriptor says %lld", b->digest, (long long)b->total,
                            (long long)b->size);
  unsigned char md[32];
  unsigned int mdlen = 0;
  EVP_DigestFinal_ex (b->md, md, &mdlen);
  char got[80] = "sha256:";
  for (int i = 0; i < 32; i++)
    sprintf (got + 7 + 2 * i, "%02x", md[i]);
  if (strcmp (got, b->digest) != 0)
    return skiff_error_set (err, 0, "blob %s: digest mismatch (got %s)", b->digest, got);
  return 0;
}

void
registry_blob_free (registry_blob_t *b)
{
  if (b == NULL)
    return;
  if (b->multi && b->h)
    curl_multi_remove_handle (b->multi, b->h);
  if (b->h)
    curl_easy_cleanup (b->h);
  if (b->multi)
    curl_multi_cleanup (b->multi);
  curl_slist_free_all (b->hdrs);
  if (b->md)
    EVP_MD_CTX_free (b->md);
  free (b->buf);
  free (b->digest);
  mem_clear (&b->errbody);
  free (b);
}
