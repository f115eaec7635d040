/* store.c - the image store: pull (manifest resolution, parallel layer download+unpack with
 * per-layer dedup), content blobs by digest, garbage collection. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "image/internal.h"

#define PROGRESS_BYTES (4 * 1024 * 1024)
#define PROGRESS_NS (100 * 1000 * 1000LL)
#define MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

typedef struct inflight
{
  char hex[65];
  struct inflight *next;
} inflight_t;

struct image_store
{
  char *data_dir, *content_dir, *layers_dir;
  uint32_t uid_shift, gid_shift, id_range;
  char **insecure;
  char *ca_file;
  int max_parallel;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  inflight_t *inflight;
  pthread_rwlock_t gc_lock;
  atomic_llong downloads;
};

typedef struct
{
  char *media_type;
  char *digest;
  int64_t size;
} desc_t;

typedef struct
{
  image_store_t *s;
  registry_client_t *client;
  const char *reference;
  desc_t *layers;
  size_t n_layers;
  /* shared between workers, under mu */
  pthread_mutex_t mu;
  size_t next;
  skiff_error_t first_err;
  image_progress_cb cb;
  void *opaque;
  int layers_done;
  int64_t bytes_total, bytes_done, last_bytes, last_ns;
} pull_t;

static void
desc_clear (desc_t *d)
{
  free (d->media_type);
  free (d->digest);
  memset (d, 0, sizeof (*d));
}

static int
store_config_from (image_store_t *s, const image_store_config_t *cfg, skiff_error_t *err)
{
  if (cfg == NULL || cfg->data_dir == NULL || cfg->data_dir[0] == '\0')
    return skiff_error_set (err, EINVAL, "image store: data_dir is required");
  if (skiff_mkdir_p (cfg->data_dir, 0700, err) < 0)
    return -1;
  char real[PATH_MAX];
  if (realpath (cfg->data_dir, real) == NULL)
    return skiff_error_set (err, errno, "image store: realpath `%s`", cfg->data_dir);
  s->data_dir = skiff_strdup (real);
  s->content_dir = skiff_strdup_printf ("%s/content/sha256", real);
  s->layers_dir = skiff_strdup_printf ("%s/layers", real);
  s->uid_shift = cfg->uid_shift;
  s->gid_shift = cfg->gid_shift;
  s->id_range = cfg->id_range ? cfg->id_range : 65536;
  s->max_parallel = cfg->max_parallel_layers > 0 ? cfg->max_parallel_layers : 4;
  if (s->max_parallel > 32)
    s->max_parallel = 32;
  s->ca_file = skiff_strdup (cfg->ca_file);
  size_t n = 0;
  while (cfg->insecure_registries && cfg->insecure_registries[n])
    n++;
  s->insecure = calloc (n + 1, sizeof (char *));
  if (s->insecure == NULL)
    return skiff_error_set (err, ENOMEM, "image store");
  for (size_t i = 0; i < n; i++)
    s->insecure[i] = skiff_strdup (cfg->insecure_registries[i]);
  if (skiff_mkdir_p (s->content_dir, 0700, err) < 0 || skiff_mkdir_p (s->layers_dir, 0755, err) < 0)
    return -1;
  return 0;
}

int
image_store_open (const image_store_config_t *cfg, image_store_t **out, skiff_error_t *err)
{
  image_store_t *s = calloc (1, sizeof (*s));
  if (s == NULL)
    return skiff_error_set (err, ENOMEM, "image store");
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->cond, NULL);
  pthread_rwlock_init (&s->gc_lock, NULL);
  if (store_config_from (s, cfg, err) < 0)
    {
      image_store_close (s);
      return -1;
    }
  /* scratch dirs left by a crash */
  cleanup_dir DIR *d = opendir (s->layers_dir);
  struct dirent *de;
  while (d && (de = readdir (d)))
    if (strncmp (de->d_name, ".tmp-", 5) == 0)
      {
        cleanup_free char *p = skiff_strdup_printf ("%s/%s", s->layers_dir, de->d_name);
        skiff_error_t e = NULL;
        skiff_rm_rf (p, &e);
        skiff_error_release (&e);
      }
  registry_global_init ();
  *out = s;
  return 0;
}

void
image_store_close (image_store_t *s)
{
  if (s == NULL)
    return;
  free (s->data_dir);
  free (s->content_dir);
  free (s->layers_dir);
  skiff_strv_free (s->insecure);
  free (s->ca_file);
  pthread_mutex_destroy (&s->lock);
  pthread_cond_destroy (&s->cond);
  pthread_rwlock_destroy (&s->gc_lock);
  free (s);
}

int64_t
image_store_layer_downloads (image_store_t *s)
{
  return atomic_load (&s->downloads);
}

void
image_free (image_t *img)
{
  if (img == NULL)
    return;
  free (img->reference);
  free (img->manifest_digest);
  free (img->config_digest);
  skiff_strv_free (img->layer_dirs);
  skiff_strv_free (img->entrypoint);
  skiff_strv_free (img->cmd);
  skiff_strv_free (img->env);
  free (img->working_dir);
  free (img->user);
  free (img);
}

/* ---- content store ---- */

static char *
content_path (image_store_t *s, const char *digest)
{
  return skiff_strdup_printf ("%s/%s", s->content_dir, digest + 7);
}

static int
content_put (image_store_t *s, const char *digest, const char *data, size_t len, skiff_error_t *err)
{
  cleanup_free char *path = content_path (s, digest);
  if (access (path, F_OK) == 0)
    return 0;
  char rnd[17];
  skiff_random_hex (rnd, 8);
  cleanup_free char *tmp = skiff_strdup_printf ("%s/.tmp-%s", s->content_dir, rnd);
  cleanup_close int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return skiff_error_set (err, errno, "create `%s`", tmp);
  size_t off = 0;
  while (off < len)
    {
      ssize_t w = write (fd, data + off, len - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        {
          int e = errno;
          unlink (tmp);
          return skiff_error_set (err, e, "write `%s`", tmp);
        }
      off += (size_t)w;
    }
  if (rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return skiff_error_set (err, e, "rename `%s`", path);
    }
  return 0;
}

/* Reads a stored blob, re-checking its digest. 1 found, 0 absent, -1 error. */
static int
content_get (image_store_t *s, const char *digest, size_t max, char **out, size_t *len, skiff_error_t *err)
{
  cleanup_free char *path = content_path (s, digest);
  if (access (path, F_OK) < 0)
    return 0;
  if (skiff_read_file (path, max, out, len, err) < 0)
    return -1;
  char got[80];
  image_sha256_digest (*out, *len, got);
  if (strcmp (got, digest) != 0)
    {
      free (*out);
      *out = NULL;
      unlink (path);
      return 0;
    }
  return 1;
}

/* ---- manifests ---- */

static bool
is_index (const char *media_type, json_t *j)
{
  const char *mt = json_string_value (json_object_get (j, "mediaType"));
  if (mt == NULL)
    mt = media_type;
  if (mt && (strcmp (mt, MEDIA_OCI_INDEX) == 0 || strcmp (mt, MEDIA_DOCKER_LIST) == 0))
    return true;
  return json_is_array (json_object_get (j, "manifests")) && !json_object_get (j, "layers");
}

static int
parse_desc (json_t *j, desc_t *d, const char *what, skiff_error_t *err)
{
  const char *mt = json_string_value (json_object_get (j, "mediaType"));
  const char *dg = json_string_value (json_object_get (j, "digest"));
  json_t *sz = json_object_get (j, "size");
  if (dg == NULL || !json_is_integer (sz))
    return skiff_error_set (err, 0, "%s descriptor lacks digest or size", what);
  if (!image_digest_valid (dg))
    return skiff_error_set (err, 0, "%s digest `%.80s` is not a supported sha256 digest", what, dg);
  if (json_integer_value (sz) < 0)
    return skiff_error_set (err, 0, "%s %s has a negative size", what, dg);
  d->media_type = skiff_strdup (mt);
  d->digest = skiff_strdup (dg);
  d->size = json_integer_value (sz);
  return 0;
}

/* Fetches (or reads from the store) the manifest `ref_or_digest`; verifies it against
 * expect_digest when not NULL. Returns the parsed JSON and its digest. */
static int
fetch_manifest (pull_t *p, const char *ref_or_digest, const char *expect_digest, json_t **out, char **digest_out,
                char **media_type, skiff_error_t *err)
{
  cleanup_free char *body = NULL;
  size_t len = 0;
  char digest[80];
  *media_type = NULL;
  int found = 0;
  if (expect_digest)
    {
      found = content_get (p->s, expect_digest, IMAGE_MAX_MANIFEST_SIZE, &body, &len, err);
      if (found < 0)
        return -1;
    }
  if (!found)
    {
      if (p->client == NULL)
        return skiff_error_set (err, 0, "no registry client");
      if (registry_get_manifest (p->client, ref_or_digest, &body, &len, media_type, err) < 0)
        return -1;
    }
  image_sha256_digest (body, len, digest);
  if (expect_digest && strcmp (digest, expect_digest) != 0)
    return skiff_error_set (err, 0, "manifest digest mismatch: expected %s, got %s", expect_digest, digest);
  json_error_t je;
  json_t *j = json_loadb (body, len, 0, &je);
  if (!json_is_object (j))
    {
      json_decref (j);
      return skiff_error_set (err, 0, "manifest %s is not valid JSON", digest);
    }
  if (content_put (p->s, digest, body, len, err) < 0)
    {
      json_decref (j);
      return -1;
    }
  *out = j;
  *digest_out = skiff_strdup (digest);
  return 0;
}

static int
pick_platform (json_t *index, char **digest, skiff_error_t *err)
{
  json_t *ms = json_object_get (index, "manifests");
  size_t i;
  json_t *m;
  const char *best = NULL;
  int best_score = -1;
  if (json_array_size (ms) > 4096)
    return skiff_error_set (err, 0, "image index lists too many manifests");
  json_array_foreach (ms, i, m)
  {
    json_t *pl = json_object_get (m, "platform");
    const char *os = json_string_value (json_object_get (pl, "os"));
    const char *arch = json_string_value (json_object_get (pl, "architecture"));
    const char *dg = json_string_value (json_object_get (m, "digest"));
    if (!os || !arch || !dg || strcmp (os, "linux") != 0 || strcmp (arch, "amd64") != 0 || !image_digest_valid (dg))
      continue;
    int score = json_object_get (pl, "variant") ? 1 : 2;
    if (score > best_score)
      {
        best = dg;
        best_score = score;
      }
  }
  if (best == NULL)
    return skiff_error_set (err, 0, "the image index has no linux/amd64 manifest");
  *digest = skiff_strdup (best);
  return 0;
}

static char **
json_strv (json_t *a)
{
  if (!json_is_array (a))
    return NULL;
  size_t n = json_array_size (a);
  char **v = calloc (n + 1, sizeof (char *));
  if (v == NULL)
    abort ();
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    {
      const char *s = json_string_value (json_array_get (a, i));
      if (s)
        v[k++] = skiff_strdup (s);
    }
  return v;
}

static char *
json_str_nonempty (json_t *o, const char *key)
{
  const char *s = json_string_value (json_object_get (o, key));
  return s && *s ? skiff_strdup (s) : NULL;
}

/* ---- progress ---- */

static void
progress_emit_locked (pull_t *p, const char *phase, bool force)
{
  if (p->cb == NULL)
    return;
  int64_t now = skiff_monotonic_ns ();
  if (!force && p->bytes_done - p->last_bytes < PROGRESS_BYTES && now - p->last_ns < PROGRESS_NS)
    return;
  p->last_bytes = p->bytes_done;
  p->last_ns = now;
  image_progress_t pr = { .reference = p->reference,
                          .layers_total = (int)p->n_layers,
                          .layers_done = p->layers_done,
                          .bytes_total = p->bytes_total,
                          .bytes_done = p->bytes_done,
                          .phase = phase };
  p->cb (p->opaque, &pr);
}

static void
progress_bytes (void *opaque, int64_t n)
{
  pull_t *p = opaque;
  pthread_mutex_lock (&p->mu);
  p->bytes_done += n;
  progress_emit_locked (p, "downloading", false);
  pthread_mutex_unlock (&p->mu);
}

/* ---- layers ---- */

static char *
layer_path (image_store_t *s, const char *digest)
{
  return skiff_strdup_printf ("%s/%s", s->layers_dir, digest + 7);
}

static int
write_parents_record (image_store_t *s, const char *digest, char **implicit, skiff_error_t *err)
{
  cleanup_free char *path = skiff_strdup_printf ("%s/%s.parents", s->layers_dir, digest + 7);
  if (implicit == NULL || implicit[0] == NULL)
    {
      unlink (path);
      return 0;
    }
  size_t len = 0;
  for (char **i = implicit; *i; i++)
    len += strlen (*i) + 1;
  cleanup_free char *buf = malloc (len);
  if (buf == NULL)
    return skiff_error_set (err, ENOMEM, "parents record");
  size_t o = 0;
  for (char **i = implicit; *i; i++)
    {
      size_t l = strlen (*i) + 1;
      memcpy (buf + o, *i, l);
      o += l;
    }
  return skiff_write_file_atomic (path, buf, len, 0600, err);
}

static char **
read_parents_record (image_store_t *s, const char *digest)
{
  cleanup_free char *path = skiff_strdup_printf ("%s/%s.parents", s->layers_dir, digest + 7);
  cleanup_free char *buf = NULL;
  size_t len = 0;
  skiff_error_t e = NULL;
  if (access (path, F_OK) < 0 || skiff_read_file (path, 64 * 1024 * 1024, &buf, &len, &e) < 0)
    {
      skiff_error_release (&e);
      return NULL;
    }
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += buf[i] == '\0';
  char **v = calloc (n + 1, sizeof (char *));
  if (v == NULL)
    abort ();
  size_t k = 0;
  for (size_t i = 0; i < len && k < n;)
    {
      v[k++] = skiff_strdup (buf + i);
      i += strlen (buf + i) + 1;
    }
  return v;
}

static int
download_layer (pull_t *p, const desc_t *l, skiff_error_t *err)
{
  image_store_t *s = p->s;
  int comp = image_layer_compression (l->media_type);
  if (comp < 0)
    return skiff_error_set (err, 0, "layer %s has an unsupported media type `%s`", l->digest,
                            l->media_type ? l->media_type : "(none)");
  atomic_fetch_add (&s->downloads, 1);
  char rnd[17];
  skiff_random_hex (rnd, 8);
  cleanup_free char *scratch = skiff_strdup_printf ("%s/.tmp-%s", s->layers_dir, rnd);
  cleanup_free char *final = layer_path (s, l->digest);
  if (mkdir (scratch, 0755) < 0)
    return skiff_error_set (err, errno, "mkdir `%s`", scratch);
  int ret = -1;
  registry_blob_t *b = NULL;
  cleanup_strv char **implicit = NULL;
  if (chown (scratch, s->uid_shift, s->gid_shift) < 0)
    {
      skiff_error_set (err, errno, "chown `%s`", scratch);
      goto out;
    }
  if (registry_blob_open (p->client, l->digest, l->size, progress_bytes, p, &b, err) < 0)
    goto out;
  image_store_config_t cfg = { .uid_shift = s->uid_shift, .gid_shift = s->gid_shift, .id_range = s->id_range };
  int64_t t0 = skiff_monotonic_ns ();
  int r = image_unpack_stream (registry_blob_read, b, (image_compression_t)comp, scratch, &cfg, &implicit, err);
  log_debug ("layer %.19s: %lld bytes unpacked in %lld ms", l->digest, (long long)l->size,
             (long long)((skiff_monotonic_ns () - t0) / 1000000));
  if (r < 0)
    {
      skiff_error_wrap (err, "layer %s", l->digest);
      goto out;
    }
  if (registry_blob_finish (b, err) < 0)
    goto out;
  if (write_parents_record (s, l->digest, implicit, err) < 0)
    goto out;
  if (rename (scratch, final) < 0)
    {
      if (errno != EEXIST && errno != ENOTEMPTY)
        {
          skiff_error_set (err, errno, "rename `%s`", final);
          goto out;
        }
      goto out_ok; /* another process committed it first */
    }
  free (scratch);
  scratch = NULL;
out_ok:
  ret = 0;
out:
  registry_blob_free (b);
  if (scratch)
    {
      skiff_error_t e = NULL;
      skiff_rm_rf (scratch, &e);
      skiff_error_release (&e);
    }
  return ret;
}

/* Makes sure layer l is unpacked; concurrent callers for one digest wait for the first. */
static int
ensure_layer (pull_t *p, const desc_t *l, skiff_error_t *err)
{
  image_store_t *s = p->s;
  cleanup_free char *final = layer_path (s, l->digest);
  inflight_t me = { .next = NULL };
  snprintf (me.hex, sizeof me.hex, "%s", l->digest + 7);
  pthread_mutex_lock (&s->lock);
  for (;;)
    {
      if (access (final, F_OK) == 0)
        {
          pthread_mutex_unlock (&s->lock);
          return 1; /* cached */
        }
      inflight_t *i;
      for (i = s->inflight; i; i = i->next)
        if (strcmp (i->hex, me.hex) == 0)
          break;
      if (i == NULL)
        break;
      pthread_cond_wait (&s->cond, &s->lock);
    }
  me.next = s->inflight;
  s->inflight = &me;
  pthread_mutex_unlock (&s->lock);

  int r = download_layer (p, l, err);

  pthread_mutex_lock (&s->lock);
  for (inflight_t **pp = &s->inflight; *pp; pp = &(*pp)->next)
    if (*pp == &me)
      {
        *pp = me.next;
        break;
      }
  pthread_cond_broadcast (&s->cond);
  pthread_mutex_unlock (&s->lock);
  return r < 0 ? -1 : 0;
}

static void *
layer_worker (void *opaque)
{
  pull_t *p = opaque;
  for (;;)
    {
      pthread_mutex_lock (&p->mu);
      if (p->first_err || p->next >= p->n_layers)
        {
          pthread_mutex_unlock (&p->mu);
          return NULL;
        }
      size_t i = p->next++;
      pthread_mutex_unlock (&p->mu);
      skiff_error_t e = NULL;
      int r = ensure_layer (p, &p->layers[i], &e);
      pthread_mutex_lock (&p->mu);
      if (r < 0)
        {
          if (p->first_err == NULL)
            p->first_err = steal_pointer (&e);
        }
      else
        {
          p->layers_done++;
          if (r == 1)
            p->bytes_done += p->layers[i].size;
          progress_emit_locked (p, "downloading", true);
        }
      pthread_mutex_unlock (&p->mu);
      skiff_error_release (&e);
    }
}

static int
pull_image (pull_t *p, image_ref_t *ref, image_t *img, skiff_error_t *err)
{
  image_store_t *s = p->s;
  cleanup_json json_t *top = NULL;
  cleanup_free char *top_digest = NULL, *top_mt = NULL;
  if (fetch_manifest (p, ref->digest ? ref->digest : ref->tag, ref->digest, &top, &top_digest, &top_mt, err) < 0)
    return -1;
  cleanup_json json_t *man = NULL;
  cleanup_free char *man_digest = NULL, *man_mt = NULL;
  if (is_index (top_mt, top))
    {
      cleanup_free char *child = NULL;
      if (pick_platform (top, &child, err) < 0)
        return -1;
      if (fetch_manifest (p, child, child, &man, &man_digest, &man_mt, err) < 0)
        return -1;
      if (is_index (man_mt, man))
        return skiff_error_set (err, 0, "nested image indexes are not supported");
    }
  else
    {
      man = steal_pointer (&top);
      man_digest = steal_pointer (&top_digest);
      man_mt = steal_pointer (&top_mt);
    }
  json_t *sv = json_object_get (man, "schemaVersion");
  if (json_integer_value (sv) != 2)
    return skiff_error_set (err, 0, "unsupported manifest schema version (only schema 2 / OCI are supported)");
  const char *mt = json_string_value (json_object_get (man, "mediaType"));
  if (mt && strcmp (mt, MEDIA_OCI_MANIFEST) != 0 && strcmp (mt, MEDIA_DOCKER_MANIFEST) != 0)
    return skiff_error_set (err, 0, "unsupported manifest media type `%.100s`", mt);

  desc_t config = { 0 };
  if (parse_desc (json_object_get (man, "config"), &config, "config", err) < 0)
    return -1;
  cleanup_free char *config_body = NULL;
  size_t config_len = 0;
  if (config.size > IMAGE_MAX_CONFIG_SIZE)
    {
      desc_clear (&config);
      return skiff_error_set (err, 0, "config is larger than %d bytes", IMAGE_MAX_CONFIG_SIZE);
    }
  int found = content_get (s, config.digest, IMAGE_MAX_CONFIG_SIZE, &config_body, &config_len, err);
  if (found < 0)
    {
      desc_clear (&config);
      return -1;
    }
  if (!found)
    {
      if (registry_get_blob_mem (p->client, config.digest, config.size, &config_body, err) < 0
          || content_put (s, config.digest, config_body, (size_t)config.size, err) < 0)
        {
          desc_clear (&config);
          return -1;
        }
      config_len = (size_t)config.size;
    }
  json_error_t je;
  cleanup_json json_t *cj = json_loadb (config_body, config_len, 0, &je);
  if (!json_is_object (cj))
    {
      desc_clear (&config);
      return skiff_error_set (err, 0, "image config is not valid JSON");
    }
  const char *os = json_string_value (json_object_get (cj, "os"));
  if (os && strcmp (os, "linux") != 0)
    {
      desc_clear (&config);
      return skiff_error_set (err, 0, "image is for os `%.40s`, not linux", os);
    }

  json_t *layers = json_object_get (man, "layers");
  size_t n = json_array_size (layers);
  if (!json_is_array (layers) || n == 0)
    {
      desc_clear (&config);
      return skiff_error_set (err, 0, "manifest has no layers");
    }
  if (n > IMAGE_MAX_LAYERS)
    {
      desc_clear (&config);
      return skiff_error_set (err, 0, "manifest has %zu layers, more than %d", n, IMAGE_MAX_LAYERS);
    }
  p->layers = calloc (n, sizeof (desc_t));
  if (p->layers == NULL)
    abort ();
  p->n_layers = n;
  int64_t total = config.size;
  int ret = -1;
  for (size_t i = 0; i < n; i++)
    {
      char what[32];
      snprintf (what, sizeof what, "layer %zu", i);
      if (parse_desc (json_array_get (layers, i), &p->layers[i], what, err) < 0)
        goto out;
      if (p->layers[i].size > IMAGE_MAX_LAYER_SIZE)
        {
          skiff_error_set (err, 0, "layer %s is larger than the limit", p->layers[i].digest);
          goto out;
        }
      if (image_layer_compression (p->layers[i].media_type) < 0)
        {
          skiff_error_set (err, 0, "layer %s has an unsupported media type `%.100s`", p->layers[i].digest,
                           p->layers[i].media_type ? p->layers[i].media_type : "(none)");
          goto out;
        }
      total += p->layers[i].size;
    }

  pthread_mutex_lock (&p->mu);
  p->bytes_total = total - config.size;
  progress_emit_locked (p, "downloading", true);
  pthread_mutex_unlock (&p->mu);

  int nthreads = s->max_parallel < (int)n ? s->max_parallel : (int)n;
  pthread_t th[32];
  int started = 0;
  for (int i = 1; i < nthreads; i++)
    if (pthread_create (&th[started], NULL, layer_worker, p) == 0)
      started++;
  layer_worker (p);
  for (int i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  if (p->first_err)
    {
      skiff_error_release (err);
      *err = steal_pointer (&p->first_err);
      goto out;
    }

  img->layer_dirs = calloc (n + 1, sizeof (char *));
  if (img->layer_dirs == NULL)
    abort ();
  for (size_t i = 0; i < n; i++)
    img->layer_dirs[i] = layer_path (s, p->layers[i].digest);
  for (size_t i = 1; i < n; i++)
    {
      cleanup_strv char **implicit = read_parents_record (s, p->layers[i].digest);
      char *saved = img->layer_dirs[i];
      img->layer_dirs[i] = NULL;
      int r = image_check_implicit_dirs ((const char *const *)img->layer_dirs, (const char *const *)implicit, err);
      img->layer_dirs[i] = saved;
      if (r < 0)
        {
          skiff_error_wrap (err, "layer %s", p->layers[i].digest);
          goto out;
        }
    }

  json_t *c = json_object_get (cj, "config");
  img->entrypoint = json_strv (json_object_get (c, "Entrypoint"));
  img->cmd = json_strv (json_object_get (c, "Cmd"));
  img->env = json_strv (json_object_get (c, "Env"));
  img->working_dir = json_str_nonempty (c, "WorkingDir");
  img->user = json_str_nonempty (c, "User");
  img->manifest_digest = steal_pointer (&man_digest);
  img->config_digest = steal_pointer (&config.digest);
  img->size_bytes = total;
  ret = 0;
out:
  desc_clear (&config);
  return ret;
}

int
image_pull (image_store_t *s, const char *reference, const image_credentials_t *creds, image_progress_cb cb,
            void *opaque, image_t **out, skiff_error_t *err)
{
  image_ref_t ref;
  if (image_ref_parse (reference, &ref, err) < 0)
    return -1;
  cleanup_free char *normalized = image_ref_format (&ref);
  pull_t p = { .s = s, .reference = normalized, .cb = cb, .opaque = opaque };
  pthread_mutex_init (&p.mu, NULL);
  image_t *img = calloc (1, sizeof (*img));
  if (img == NULL)
    abort ();
  img->reference = skiff_strdup (normalized);
  int ret = -1;
  skiff_error_t e = NULL;
  pthread_rwlock_rdlock (&s->gc_lock);
  if (cb)
    {
      image_progress_t pr = { .reference = normalized, .phase = "resolving" };
      cb (opaque, &pr);
    }
  if (registry_client_new (&ref, creds, (const char *const *)s->insecure, s->ca_file, &p.client, &e) == 0
      && pull_image (&p, &ref, img, &e) == 0)
    ret = 0;
  pthread_rwlock_unlock (&s->gc_lock);
  if (ret == 0)
    {
      pthread_mutex_lock (&p.mu);
      p.bytes_done = p.bytes_total;
      p.layers_done = (int)p.n_layers;
      progress_emit_locked (&p, "done", true);
      pthread_mutex_unlock (&p.mu);
      *out = img;
    }
  else
    {
      skiff_error_arm (err, 400, "InaccessibleImage", "failed to pull image '%s': %s", normalized,
                       e && e->msg ? e->msg : "unknown error");
      image_free (img);
    }
  skiff_error_release (&e);
  skiff_error_release (&p.first_err);
  registry_client_free (p.client);
  for (size_t i = 0; i < p.n_layers; i++)
    desc_clear (&p.layers[i]);
  free (p.layers);
  pthread_mutex_destroy (&p.mu);
  image_ref_clear (&ref);
  return ret;
}

/* ---- gc ---- */

typedef struct
{
  char **v;
  size_t n, cap;
} hexset_t;

static void
hexset_add (hexset_t *h, const char *digest)
{
  if (!image_digest_valid (digest))
    return;
  if (h->n == h->cap)
    {
      h->cap = h->cap ? h->cap * 2 : 64;
      h->v = realloc (h->v, h->cap * sizeof (char *));
      if (h->v == NULL)
        abort ();
    }
  h->v[h->n++] = skiff_strdup (digest + 7);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

static bool
hexset_has (hexset_t *h, const char *hex)
{
  return h->n && bsearch (&hex, h->v, h->n, sizeof (char *), cmp_str) != NULL;
}

static void
keep_manifest (image_store_t *s, hexset_t *keep, const char *digest, int depth)
{
  cleanup_free char *body = NULL;
  size_t len = 0;
  skiff_error_t e = NULL;
  if (!image_digest_valid (digest) || content_get (s, digest, IMAGE_MAX_MANIFEST_SIZE, &body, &len, &e) <= 0)
    {
      skiff_error_release (&e);
      return;
    }
  hexset_add (keep, digest);
  json_error_t je;
  cleanup_json json_t *j = json_loadb (body, len, 0, &je);
  hexset_add (keep, json_string_value (json_object_get (json_object_get (j, "config"), "digest")));
  size_t i;
  json_t *l;
  json_array_foreach (json_object_get (j, "layers"), i, l)
      hexset_add (keep, json_string_value (json_object_get (l, "digest")));
  if (depth == 0)
    json_array_foreach (json_object_get (j, "manifests"), i, l)
        keep_manifest (s, keep, json_string_value (json_object_get (l, "digest")), 1);
}

int
image_gc (image_store_t *s, const char *const *keep_manifest_digests, skiff_error_t *err)
{
  hexset_t keep = { 0 };
  int removed = 0, ret = 0;
  pthread_rwlock_wrlock (&s->gc_lock);
  for (const char *const *k = keep_manifest_digests; k && *k; k++)
    keep_manifest (s, &keep, *k, 0);
  if (keep.n)
    qsort (keep.v, keep.n, sizeof (char *), cmp_str);

  const char *dirs[] = { s->content_dir, s->layers_dir };
  for (int di = 0; di < 2 && ret == 0; di++)
    {
      cleanup_dir DIR *d = opendir (dirs[di]);
      if (d == NULL)
        {
          ret = skiff_error_set (err, errno, "opendir `%s`", dirs[di]);
          break;
        }
      struct dirent *de;
      while ((de = readdir (d)))
        {
          const char *name = de->d_name;
          if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
            continue;
          char hex[65] = "";
          bool sidecar = false;
          size_t nl = strlen (name);
          if (nl >= 64)
            {
              memcpy (hex, name, 64);
              hex[64] = '\0';
              sidecar = strcmp (name + 64, ".parents") == 0;
            }
          bool tmp = strncmp (name, ".tmp-", 5) == 0;
          if (!tmp && (nl != 64 && !sidecar))
            continue; /* not ours */
          if (!tmp && hexset_has (&keep, hex))
            continue;
          cleanup_free char *path = skiff_strdup_printf ("%s/%s", dirs[di], name);
          skiff_error_t e = NULL;
          if (skiff_rm_rf (path, &e) < 0)
            {
              ret = skiff_error_wrap (&e, "gc");
              skiff_error_release (err);
              *err = steal_pointer (&e);
              break;
            }
          if (!tmp && !sidecar)
            removed++;
        }
    }
  pthread_rwlock_unlock (&s->gc_lock);
  for (size_t i = 0; i < keep.n; i++)
    free (keep.v[i]);
  free (keep.v);
  return ret < 0 ? -1 : removed;
}
