/* reconcile.c - brings one group from its desired state to the host. */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/util.h"
#include "model/model.h"
#include "monclient/monclient.h"

static char *
read_small (const char *dir, const char *name)
{
  cleanup_free char *path = skiff_strdup_printf ("%s/%s", dir, name);
  char *buf = NULL;
  skiff_error_t e = NULL;
  if (skiff_read_file (path, 4096, &buf, NULL, &e) < 0)
    {
      skiff_error_release (&e);
      return NULL;
    }
  char *nl = strchr (buf, '\n');
  if (nl)
    *nl = '\0';
  return buf;
}

static int
write_small (const char *dir, const char *name, const char *value, skiff_error_t *err)
{
  cleanup_free char *path = skiff_strdup_printf ("%s/%s", dir, name);
  return skiff_write_file_replace (path, value, strlen (value), 0600, err);
}

/* sha256 of the canonical spec: tells a restart (same spec) from an update. */
static char *
spec_hash (json_t *spec)
{
  cleanup_free char *text = json_dumps (spec, JSON_COMPACT | JSON_SORT_KEYS);
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest (text, strlen (text), md, &len, EVP_sha256 (), NULL);
  char *hex = malloc (65);
  if (hex == NULL)
    abort ();
  for (int i = 0; i < 32; i++)
    sprintf (hex + 2 * i, "%02x", md[i]);
  return hex;
}

static char *
container_id (const char *group_id, const char *name)
{
  return skiff_strdup_printf ("skiff-%s-%s", group_id, name);
}

void
agent_teardown (agent_t *a, const char *group_id, teardown_t mode)
{
  cleanup_free char *gdir = agent_group_dir (a, group_id);
  agent_unwatch_group (a, group_id);
  if (mode != TEARDOWN_RUNTIME && monclient_monitor_alive (gdir))
    {
      json_t *req = json_pack ("{s:s,s:i}", "op", "stop", "graceSeconds", 0);
      json_t *reply = NULL;
      skiff_error_t e = NULL;
      if (monclient_request (gdir, req, 15000, &reply, &e) < 0)
        {
          log_warn ("group %s: stop monitor: %s", group_id, e->msg);
          skiff_error_release (&e);
        }
      json_decref (req);
      if (reply)
        json_decref (reply);
    }
  /* runtime containers and rootfs mounts, found from the folder itself */
  cleanup_free char *cdirs = skiff_strdup_printf ("%s/containers", gdir);
  cleanup_dir DIR *d = opendir (cdirs);
  struct dirent *de;
  while (d && (de = readdir (d)))
    {
      if (de->d_name[0] == '.')
        continue;
      cleanup_free char *id = container_id (group_id, de->d_name);
      runtime_force_delete (&a->rcfg, a->runtime_root, id, NULL);
      cleanup_free char *cdir = skiff_strdup_printf ("%s/%s", cdirs, de->d_name);
      skiff_error_t e = NULL;
      if (runtime_unmount_rootfs (cdir, 1, &e) < 0)
        {
          log_warn ("group %s: unmount %s: %s", group_id, de->d_name, e->msg);
          skiff_error_release (&e);
        }
    }
  agent_net_detach (a, group_id);
  cleanup_free char *ns = skiff_strdup_printf ("%s/ns", gdir);
  runtime_release_namespaces (ns, NULL);
  cleanup_free char *cg = skiff_strdup_printf ("/skiff/%s", group_id);
  runtime_remove_cgroups (&a->host, cg, NULL);
  skiff_error_t e = NULL;
  if (mode == TEARDOWN_ALL)
    {
      if (skiff_rm_rf (gdir, &e) < 0)
        {
          log_warn ("group %s: remove folder: %s", group_id, e->msg);
          skiff_error_release (&e);
        }
      return;
    }
  static const char *const files[]
      = { "containers", "ns",           "monitor.json", "state.json", "events.jsonl", "generation",
          "spec.hash",  "monitor.sock", "monitor.pid",  "run",        "etc",          NULL };
  /* a finished run keeps what tells it finished (state, events, generation, spec hash) */
  static const char *const runtime_files[] = { "containers", "ns", "run", "etc", NULL };
  for (const char *const *f = mode == TEARDOWN_RUNTIME ? runtime_files : files; *f; f++)
    {
      cleanup_free char *p = skiff_strdup_printf ("%s/%s", gdir, *f);
      if (skiff_rm_rf (p, &e) < 0)
        {
          log_warn ("group %s: remove %s: %s", group_id, *f, e->msg);
          skiff_error_release (&e);
        }
    }
}

typedef struct
{
  agent_t *a;
  const char *group_id;
  const char *container;
  const char *image;
  int64_t last_ns;
} progress_ctx_t;

static void
on_progress (void *opaque, const image_progress_t *p)
{
  progress_ctx_t *pc = opaque;
  int64_t now = skiff_monotonic_ns ();
  int done = p->phase && strcmp (p->phase, "done") == 0;
  if (!done && now - pc->last_ns < 250000000LL)
    return;
  pc->last_ns = now;
  cleanup_free char *msg
      = skiff_strdup_printf ("pulling image \"%s\": %d/%d layers, %.1f/%.1f MB", pc->image, p->layers_done,
                             p->layers_total, (double)p->bytes_done / 1e6, (double)p->bytes_total / 1e6);
  store_event_add (pc->a->store, pc->group_id, pc->container, "Pulling", "Normal", msg, skiff_now_ns (), 1, NULL);
}

/* Returns a NULL-terminated array of credentials from the spec (borrowed strings). */
static image_credentials_t *
credentials (json_t *props)
{
  json_t *creds = json_object_get (props, "imageRegistryCredentials");
  size_t n = json_array_size (creds);
  image_credentials_t *out = calloc (n + 1, sizeof (*out));
  if (out == NULL)
    abort ();
  size_t i;
  json_t *c;
  json_array_foreach (creds, i, c)
  {
    out[i].server = json_string_value (json_object_get (c, "server"));
    out[i].username = json_string_value (json_object_get (c, "username"));
    out[i].password = json_string_value (json_object_get (c, "password"));
  }
  return out;
}

static char **
strv_from_json (json_t *arr)
{
  size_t n = json_array_size (arr);
  char **v = calloc (n + 1, sizeof (char *));
  if (v == NULL)
    abort ();
  for (size_t i = 0; i < n; i++)
    v[i] = skiff_strdup (json_string_value (json_array_get (arr, i)));
  return v;
}

static size_t
strv_len (char **v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

/* The process of a container: ACI's `command` replaces both ENTRYPOINT and CMD. */
static char **
resolve_args (json_t *cprops, image_t *img)
{
  json_t *cmd = json_object_get (cprops, "command");
  if (json_array_size (cmd) > 0)
    return strv_from_json (cmd);
  size_t ne = strv_len (img->entrypoint), nc = strv_len (img->cmd);
  if (ne + nc == 0)
    return NULL;
  char **v = calloc (ne + nc + 1, sizeof (char *));
  if (v == NULL)
    abort ();
  for (size_t i = 0; i < ne; i++)
    v[i] = skiff_strdup (img->entrypoint[i]);
  for (size_t i = 0; i < nc; i++)
    v[ne + i] = skiff_strdup (img->cmd[i]);
  return v;
}

static char **
resolve_env (json_t *cprops, image_t *img, const char *hostname)
{
  json_t *envs = json_object_get (cprops, "environmentVariables");
  size_t ni = strv_len (img->env), ns = json_array_size (envs);
  char **v = calloc (ni + ns + 3, sizeof (char *));
  if (v == NULL)
    abort ();
  size_t n = 0;
  int has_path = 0;
  for (size_t i = 0; i < ni; i++)
    {
      v[n++] = skiff_strdup (img->env[i]);
      has_path |= strncmp (img->env[i], "PATH=", 5) == 0;
    }
  if (!has_path)
    v[n++] = skiff_strdup ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  v[n++] = skiff_strdup_printf ("HOSTNAME=%s", hostname);
  size_t i;
  json_t *e;
  json_array_foreach (envs, i, e)
  {
    const char *name = json_string_value (json_object_get (e, "name"));
    const char *val = json_string_value (json_object_get (e, "secureValue"));
    if (val == NULL)
      val = json_string_value (json_object_get (e, "value"));
    size_t nl = strlen (name);
    char *entry = skiff_strdup_printf ("%s=%s", name, val ? val : "");
    int replaced = 0;
    for (size_t k = 0; k < n; k++)
      if (strncmp (v[k], name, nl) == 0 && v[k][nl] == '=')
        {
          free (v[k]);
          v[k] = entry;
          replaced = 1;
          break;
        }
    if (!replaced)
      v[n++] = entry;
  }
  return v;
}

/* Resolves the image's User ("uid[:gid]" or a name in the rootfs' /etc/passwd). */
static int
resolve_user (const char *user, const char *rootfs, uint32_t *uid, uint32_t *gid, skiff_error_t *err)
{
  *uid = 0;
  *gid = 0;
  if (user == NULL || *user == '\0')
    return 0;
  cleanup_free char *u = skiff_strdup (user);
  char *colon = strchr (u, ':');
  if (colon)
    *colon++ = '\0';
  char *end = NULL;
  unsigned long v = strtoul (u, &end, 10);
  if (*u && *end == '\0')
    {
      *uid = (uint32_t)v;
      *gid = (uint32_t)v;
    }
  else
    {
      cleanup_free char *pw = skiff_strdup_printf ("%s/etc/passwd", rootfs);
      cleanup_free char *buf = NULL;
      if (skiff_read_file (pw, 1 << 20, &buf, NULL, err) < 0)
        return skiff_error_wrap (err, "user `%s`", user);
      int found = 0;
      for (char *line = strtok (buf, "\n"); line; line = strtok (NULL, "\n"))
        {
          char *f[4] = { 0 };
          char *p = line;
          for (int k = 0; k < 4 && p; k++)
            {
              f[k] = p;
              p = strchr (p, ':');
              if (p)
                *p++ = '\0';
            }
          if (f[0] && f[2] && f[3] && strcmp (f[0], u) == 0)
            {
              *uid = (uint32_t)strtoul (f[2], NULL, 10);
              *gid = (uint32_t)strtoul (f[3], NULL, 10);
              found = 1;
              break;
            }
        }
      if (!found)
        return skiff_error_arm (err, 400, "InvalidImage", "the image's user `%s` is not in its /etc/passwd", user);
    }
  if (colon && *colon)
    *gid = (uint32_t)strtoul (colon, NULL, 10);
  return 0;
}

static double
res_value (json_t *cprops, const char *which, const char *key)
{
  json_t *r = json_object_get (json_object_get (cprops, "resources"), which);
  json_t *v = json_object_get (r, key);
  return v ? json_real_value (v) : 0;
}

/* Writes /etc/hosts, /etc/hostname and /etc/resolv.conf for the group. */
static int
write_etc (const char *gdir, const char *hostname, uint32_t addr, const char *resolv, skiff_error_t *err)
{
  cleanup_free char *etc = skiff_strdup_printf ("%s/etc", gdir);
  if (skiff_mkdir_p (etc, 0755, err) < 0)
    return -1;
  chmod (etc, 0755);
  char ip[16] = "127.0.1.1";
  if (addr)
    net_format_ip (addr, ip);
  cleanup_free char *hosts = skiff_strdup_printf ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                                                  "%s\t%s\n",
                                                  ip, hostname);
  cleanup_free char *hn = skiff_strdup_printf ("%s\n", hostname);
  cleanup_free char *p1 = skiff_strdup_printf ("%s/hosts", etc);
  cleanup_free char *p2 = skiff_strdup_printf ("%s/hostname", etc);
  cleanup_free char *p3 = skiff_strdup_printf ("%s/resolv.conf", etc);
  if (resolv == NULL)
    resolv = "# skiff: this group has no network but its loopback\noptions ndots:0\n";
  if (skiff_write_file_replace (p1, hosts, strlen (hosts), 0644, err) < 0
      || skiff_write_file_replace (p2, hn, strlen (hn), 0644, err) < 0
      || skiff_write_file_replace (p3, resolv, strlen (resolv), 0644, err) < 0)
    return -1;
  return 0;
}

static void
record_failure (agent_t *a, store_group_t *g, skiff_error_t e)
{
  const char *code = e->code ? e->code : "ContainerGroupDeploymentFailed";
  json_t *error = json_pack ("{s:{s:s,s:s}}", "error", "code", code, "message", e->msg);
  model_restart_policy_t pol = MODEL_POLICY_ALWAYS;
  model_parse_restart_policy (
      json_string_value (json_object_get (json_object_get (g->spec, "properties"), "restartPolicy")), &pol);
  const char *state = model_group_state (pol, 0, 1, NULL, 0);
  store_group_set_status (a->store, g->id, "Failed", state, NULL, -1, NULL);
  store_op_finish_group (a->store, g->id, "Failed", error, NULL);
  json_decref (error);
}

/* Pulls, prepares and starts a group from scratch. The folder must be clean. */
static int
create_group (agent_t *a, store_group_t *g, skiff_error_t *err)
{
  cleanup_free char *gdir = agent_group_dir (a, g->id);
  cleanup_free char *logs = skiff_strdup_printf ("%s/logs", gdir);
  cleanup_free char *run = skiff_strdup_printf ("%s/run", gdir);
  cleanup_free char *cdirs = skiff_strdup_printf ("%s/containers", gdir);
  if (skiff_mkdir_p (logs, 0700, err) < 0 || skiff_mkdir_p (run, 0700, err) < 0 || skiff_mkdir_p (cdirs, 0711, err) < 0)
    return -1;
  chmod (gdir, 0711);
  store_group_set_status (a->store, g->id, "Creating", NULL, NULL, 0, NULL);
  int64_t t0 = skiff_monotonic_ns ();

  json_t *props = json_object_get (g->spec, "properties");
  json_t *inits = json_object_get (props, "initContainers");
  json_t *conts = json_object_get (props, "containers");
  size_t n_init = json_array_size (inits), n = n_init + json_array_size (conts);
  image_credentials_t *creds = credentials (props);
  image_t **images = calloc (n, sizeof (image_t *));
  if (images == NULL)
    abort ();
  int rc = -1;
  json_t *monitor = NULL;
  cleanup_free char *ns = skiff_strdup_printf ("%s/ns", gdir);
  cleanup_free char *etc_hosts = skiff_strdup_printf ("%s/etc/hosts", gdir);
  cleanup_free char *etc_hostname = skiff_strdup_printf ("%s/etc/hostname", gdir);
  cleanup_free char *etc_resolv = skiff_strdup_printf ("%s/etc/resolv.conf", gdir);
  cleanup_free char *resolv = NULL;
  agent_net_place_t place = { 0 };
  /* pull every image first: nothing is started unless all of them are there. A prune waits
     until the images this group uses are recorded in its folder. */
  pthread_rwlock_rdlock (&a->images_lock);
  int images_locked = 1;
  for (size_t i = 0; i < n; i++)
    {
      json_t *c = i < n_init ? json_array_get (inits, i) : json_array_get (conts, i - n_init);
      const char *name = json_string_value (json_object_get (c, "name"));
      const char *image = json_string_value (json_object_get (json_object_get (c, "properties"), "image"));
      cleanup_free char *msg = skiff_strdup_printf ("pulling image \"%s\"", image);
      store_event_add (a->store, g->id, name, "Pulling", "Normal", msg, skiff_now_ns (), 1, NULL);
      progress_ctx_t pc = { .a = a, .group_id = g->id, .container = name, .image = image };
      if (image_pull (a->images, image, creds, on_progress, &pc, &images[i], err) < 0)
        {
          cleanup_free char *fm = skiff_strdup_printf ("Failed to pull image \"%s\": %s", image, (*err)->msg);
          store_event_add (a->store, g->id, name, "Failed", "Warning", fm, skiff_now_ns (), 0, NULL);
          if ((*err)->code == NULL)
            {
              char *m = skiff_strdup_printf (
                  "The image '%s' in container group '%s' is not accessible. Please check the image and registry "
                  "credential. (%s)",
                  image, g->name, (*err)->msg);
              skiff_error_arm (err, 400, "InaccessibleImage", "%s", m);
              free (m);
            }
          goto out;
        }
      cleanup_free char *ok = skiff_strdup_printf ("Successfully pulled image \"%s\"", image);
      store_event_add (a->store, g->id, name, "Pulled", "Normal", ok, skiff_now_ns (), 0, NULL);
    }

  {
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
      total += strlen (images[i]->manifest_digest) + 1;
    cleanup_free char *list = calloc (total + 1, 1);
    if (list == NULL)
      abort ();
    for (size_t i = 0; i < n; i++)
      {
        strcat (list, images[i]->manifest_digest);
        strcat (list, "\n");
      }
    if (write_small (gdir, "images", list, err) < 0)
      goto out;
  }
  pthread_rwlock_unlock (&a->images_lock);
  images_locked = 0;
  int64_t t_pulled = skiff_monotonic_ns ();

  uint32_t addr = 0;
  if (runtime_pin_namespaces (&a->rcfg, ns, g->name, err) < 0 || agent_net_attach (a, g, ns, &place, &addr, err) < 0)
    goto out;
  resolv = addr ? agent_net_resolv_conf (a, g->spec, &place) : NULL;
  if (write_etc (gdir, g->name, addr, resolv, err) < 0)
    goto out;

  monitor = json_pack ("{s:s,s:s,s:s,s:s,s:{s:i,s:i,s:i},s:i,s:I,s:[],s:[]}", "group", g->id, "runtime",
                       a->cfg.runtime_path, "runtimeRoot", a->runtime_root, "restartPolicy",
                       json_string_value (json_object_get (props, "restartPolicy")), "backoff", "initialMs",
                       a->cfg.backoff_initial_ms, "maxMs", a->cfg.backoff_max_ms, "resetAfterMs", 600000,
                       "stopGraceSeconds", a->cfg.stop_grace_seconds, "logMaxBytes", (json_int_t)a->cfg.log_max_bytes,
                       "initContainers", "containers");
  for (size_t i = 0; i < n; i++)
    {
      int is_init = i < n_init;
      json_t *c = is_init ? json_array_get (inits, i) : json_array_get (conts, i - n_init);
      const char *name = json_string_value (json_object_get (c, "name"));
      json_t *cprops = json_object_get (c, "properties");
      cleanup_free char *cdir = skiff_strdup_printf ("%s/%s", cdirs, name);
      cleanup_free char *rootfs = skiff_strdup_printf ("%s/rootfs", cdir);
      if (skiff_mkdir_p (cdir, 0711, err) < 0
          || runtime_mount_rootfs (&a->rcfg, (const char *const *)images[i]->layer_dirs, cdir, err) < 0)
        goto out;
      cleanup_strv char **args = resolve_args (cprops, images[i]);
      if (args == NULL)
        {
          skiff_error_arm (err, 400, "InvalidContainerCommand",
                           "Container '%s' has no command: the image '%s' sets neither entrypoint nor cmd and the "
                           "container sets no 'command'.",
                           name, images[i]->reference);
          goto out;
        }
      cleanup_strv char **env = resolve_env (cprops, images[i], g->name);
      uint32_t uid, gid;
      if (resolve_user (images[i]->user, rootfs, &uid, &gid, err) < 0)
        goto out;
      cleanup_free char *cg = skiff_strdup_printf ("/skiff/%s/%s", g->id, name);
      double cpu = res_value (cprops, "limits", "cpu");
      double mem = res_value (cprops, "limits", "memoryInGB");
      if (cpu <= 0)
        cpu = res_value (cprops, "requests", "cpu");
      if (mem <= 0)
        mem = res_value (cprops, "requests", "memoryInGB");
      if (is_init && cpu <= 0)
        cpu = 1;
      if (is_init && mem <= 0)
        mem = 0.5;
      runtime_bundle_spec_t bs
          = { .args = (const char *const *)args,
              .env = (const char *const *)env,
              .cwd = images[i]->working_dir && *images[i]->working_dir ? images[i]->working_dir : "/",
              .uid = uid,
              .gid = gid,
              .rootfs = rootfs,
              .ns_dir = ns,
              .cgroup_path = cg,
              .cpu_limit = cpu,
              .memory_limit = (int64_t)(mem * 1024.0 * 1024.0 * 1024.0),
              .pids_limit = 4096,
              .hostname = g->name,
              .resolv_conf = etc_resolv,
              .hosts = etc_hosts,
              .hostname_file = etc_hostname };
      if (runtime_write_bundle (&a->rcfg, &a->host, &bs, cdir, err) < 0)
        goto out;
      cleanup_free char *memcg = NULL;
      if (runtime_memory_cgroup_dir (&a->host, cg, &memcg, err) < 0)
        goto out;
      cleanup_free char *id = container_id (g->id, name);
      json_array_append_new (
          json_object_get (monitor, is_init ? "initContainers" : "containers"),
          json_pack ("{s:s,s:s,s:s,s:s}", "name", name, "id", id, "bundle", cdir, "memoryCgroup", memcg));
    }
  {
    cleanup_free char *mj = json_dumps (monitor, JSON_INDENT (1));
    cleanup_free char *mpath = skiff_strdup_printf ("%s/monitor.json", gdir);
    cleanup_free char *hash = spec_hash (g->spec);
    char gen[32];
    snprintf (gen, sizeof (gen), "%lld", (long long)g->generation);
    if (skiff_write_file_replace (mpath, mj, strlen (mj), 0600, err) < 0
        || write_small (gdir, "spec.hash", hash, err) < 0 || write_small (gdir, "generation", gen, err) < 0)
      goto out;
  }
  int64_t t_prepared = skiff_monotonic_ns ();
  if (monclient_spawn (a->cfg.monitor_path, gdir, err) < 0)
    goto out;
  log_debug ("group %s: images %.1f ms, namespaces+rootfs+bundles %.1f ms, monitor ready %.1f ms", g->id,
             (double)(t_pulled - t0) / 1e6, (double)(t_prepared - t_pulled) / 1e6,
             (double)(skiff_monotonic_ns () - t_prepared) / 1e6);
  skiff_error_t werr = NULL;
  if (agent_watch_group (a, g->id, &werr) < 0)
    {
      /* A group whose containers end at once may see its monitor exit before we
         subscribe: the next pass folds in the final state from its files. */
      log_debug ("group %s: watch after start: %s", g->id, werr->msg);
      skiff_error_release (&werr);
      agent_notify (a, g->id);
    }
  rc = 0;
out:
  if (images_locked)
    pthread_rwlock_unlock (&a->images_lock);
  for (size_t i = 0; i < n; i++)
    if (images[i])
      image_free (images[i]);
  free (images);
  free (creds);
  agent_net_place_clear (&place);
  if (monitor)
    json_decref (monitor);
  return rc;
}

static void
finish_stopped (agent_t *a, store_group_t *g)
{
  /* ACI: stopped containers are recycled; their last state stays visible as Terminated. */
  json_t *view = g->containers_view ? json_deep_copy (g->containers_view) : json_object ();
  const char *k;
  json_t *v;
  char ts[40];
  skiff_format_time (skiff_now_ns (), ts, sizeof (ts));
  json_object_foreach (view, k, v)
  {
    json_t *cur = json_object_get (v, "currentState");
    if (cur && skiff_strcaseeq (json_string_value (json_object_get (cur, "state")), "Running"))
      {
        json_object_set (v, "previousState", cur);
        json_object_set_new (v, "currentState",
                             json_pack ("{s:s,s:O,s:i,s:s,s:s}", "state", "Terminated", "startTime",
                                        json_object_get (cur, "startTime"), "exitCode", 137, "finishTime", ts,
                                        "detailStatus", "Stopped"));
      }
  }
  store_group_set_status (a->store, g->id, "Succeeded", "Stopped", view, 0, NULL);
  json_decref (view);
  /* stop has no async operation; a start that raced in keeps its own until it runs */
}

/* Reads the monitor's files; when its run ended for good ("Exited"), records the final
 * state, gives back mounts, namespaces and cgroups (logs stay) and returns 1. With
 * apply_always the state is recorded even when the run did not end. */
static int
fold_final_state (agent_t *a, store_group_t *g, const char *gdir, int apply_always)
{
  json_t *state = NULL, *events = NULL;
  if (monclient_read_state (gdir, g->monitor_seq, &state, &events, NULL) < 0)
    return 0;
  const char *phase = json_string_value (json_object_get (state, "phase"));
  int exited = phase && strcmp (phase, "Exited") == 0;
  if (exited || apply_always)
    agent_apply_monitor_state (a, g->id, state, events, 0);
  json_decref (state);
  json_decref (events);
  if (exited)
    agent_teardown (a, g->id, TEARDOWN_RUNTIME);
  return exited;
}

void
agent_reconcile (agent_t *a, const char *group_id)
{
  store_group_t g = { 0 };
  cleanup_error skiff_error_t err = NULL;
  if (store_group_get_by_id (a->store, group_id, &g, &err) < 0)
    {
      log_error ("group %s: %s", group_id, err->msg);
      return;
    }
  if (g.id == NULL)
    {
      agent_teardown (a, group_id, TEARDOWN_ALL);
      return;
    }
  cleanup_free char *gdir = agent_group_dir (a, g.id);
  if (strcmp (g.desired, "Deleted") == 0)
    {
      store_event_add (a->store, g.id, NULL, "Killing", "Normal", "Deleting container group", skiff_now_ns (), 0, NULL);
      agent_teardown (a, g.id, TEARDOWN_ALL);
      agent_net_release (a, g.id);
      store_op_finish_group (a->store, g.id, "Succeeded", NULL, NULL);
      if (store_group_delete (a->store, g.id, &err) < 0)
        log_error ("group %s: delete: %s", g.id, err->msg);
      log_info ("group %s/%s deleted", g.rg, g.name);
      goto done;
    }
  if (strcmp (g.desired, "Stopped") == 0)
    {
      cleanup_free char *gen_s = read_small (gdir, "generation");
      if (g.state && strcmp (g.state, "Stopped") == 0 && !monclient_monitor_alive (gdir) && gen_s == NULL)
        goto done; /* already stopped and cleaned */
      agent_unwatch_group (a, g.id);
      if (monclient_monitor_alive (gdir))
        {
          json_t *req = json_pack ("{s:s,s:i}", "op", "stop", "graceSeconds", a->cfg.stop_grace_seconds);
          json_t *reply = NULL;
          if (monclient_request (gdir, req, (a->cfg.stop_grace_seconds + 15) * 1000, &reply, &err) < 0)
            {
              log_warn ("group %s: stop: %s", g.id, err->msg);
              skiff_error_release (&err);
            }
          json_decref (req);
          if (reply)
            json_decref (reply);
        }
      /* fold in what the monitor recorded up to the end */
      json_t *state = NULL, *events = NULL;
      if (monclient_read_state (gdir, g.monitor_seq, &state, &events, NULL) == 0)
        {
          agent_apply_monitor_state (a, g.id, state, events, 1);
          json_decref (state);
          json_decref (events);
          store_group_clear (&g);
          if (store_group_get_by_id (a->store, group_id, &g, &err) < 0 || g.id == NULL)
            goto done;
        }
      agent_teardown (a, g.id, TEARDOWN_KEEP_LOGS);
      finish_stopped (a, &g);
      store_event_add (a->store, g.id, NULL, "Stopped", "Normal", "Container group stopped", skiff_now_ns (), 0, NULL);
      goto done;
    }

  /* desired Running */
  {
    cleanup_free char *gen_s = read_small (gdir, "generation");
    cleanup_free char *hash_s = read_small (gdir, "spec.hash");
    cleanup_free char *hash = spec_hash (g.spec);
    long long running_gen = gen_s ? atoll (gen_s) : -1;
    int alive = monclient_monitor_alive (gdir);
    if (alive && running_gen == g.generation)
      {
        if (agent_watch_group (a, g.id, &err) == 0)
          goto done;
        /* The monitor is on its way out (it closes its socket once its final state is
           on disk, then exits): fold that state in now, or look again very soon. */
        log_debug ("group %s: watch: %s", g.id, err->msg);
        skiff_error_release (&err);
        if (fold_final_state (a, &g, gdir, 0))
          goto done;
        usleep (5000);
        agent_notify (a, g.id);
        goto done;
      }
    if (alive && hash_s && strcmp (hash_s, hash) == 0)
      {
        /* same spec, newer generation: a restart in place */
        store_event_add (a->store, g.id, NULL, "Restarting", "Normal", "Restarting container group", skiff_now_ns (), 0,
                         NULL);
        json_t *req = json_pack ("{s:s}", "op", "restart");
        json_t *reply = NULL;
        int rc = monclient_request (gdir, req, (a->cfg.stop_grace_seconds + 30) * 1000, &reply, &err);
        json_decref (req);
        if (reply)
          json_decref (reply);
        if (rc == 0)
          {
            char gen[32];
            snprintf (gen, sizeof (gen), "%lld", (long long)g.generation);
            write_small (gdir, "generation", gen, NULL);
            store_op_finish_group (a->store, g.id, "Succeeded", NULL, NULL);
            goto done;
          }
        log_warn ("group %s: restart: %s; re-creating", g.id, err->msg);
        skiff_error_release (&err);
      }
    if (!alive && running_gen == g.generation && hash_s && strcmp (hash_s, hash) == 0)
      {
        /* The monitor is gone. If it finished on its own, fold in its final state. */
        if (fold_final_state (a, &g, gdir, 1))
          goto done;
        log_warn ("group %s: its monitor is gone; starting the group again", g.id);
      }
    /* (re)create from scratch */
    if (strcmp (g.provisioning_state, "Failed") == 0 && gen_s == NULL)
      goto done; /* a failed deployment stays failed until the next PUT or start */
    struct stat st;
    if (stat (gdir, &st) == 0) /* a new group has no folder yet: nothing to clear */
      agent_teardown (a, g.id, TEARDOWN_KEEP_LOGS);
    json_t *empty = json_object ();
    store_group_set_status (a->store, g.id, NULL, "Pending", empty, 0, NULL);
    json_decref (empty);
    if (create_group (a, &g, &err) < 0)
      {
        log_warn ("group %s/%s: create failed: %s", g.rg, g.name, err->msg);
        store_event_add (a->store, g.id, NULL, "Failed", "Warning", err->msg, skiff_now_ns (), 0, NULL);
        agent_teardown (a, g.id, TEARDOWN_KEEP_LOGS);
        record_failure (a, &g, err);
        goto done;
      }
    log_info ("group %s/%s started (generation %lld)", g.rg, g.name, (long long)g.generation);
  }
done:
  store_group_clear (&g);
}
