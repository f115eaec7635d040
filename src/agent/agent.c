/* agent.c - the agent's threads, its work queue, and re-adoption at start. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "monclient/monclient.h"

const char *
agent_data_dir (agent_t *a)
{
  return a->cfg.data_dir;
}

char *
agent_group_dir (agent_t *a, const char *group_id)
{
  return skiff_strdup_printf ("%s/groups/%s", a->cfg.data_dir, group_id);
}

static int
list_has (char **v, size_t n, const char *id)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp (v[i], id) == 0)
      return 1;
  return 0;
}

void
agent_notify (agent_t *a, const char *group_id)
{
  if (a == NULL)
    return;
  pthread_mutex_lock (&a->lock);
  if (!list_has (a->queue, a->queue_n, group_id))
    {
      if (a->queue_n == a->queue_cap)
        {
          a->queue_cap = a->queue_cap ? a->queue_cap * 2 : 64;
          a->queue = realloc (a->queue, a->queue_cap * sizeof (char *));
          if (a->queue == NULL)
            abort ();
        }
      a->queue[a->queue_n++] = skiff_strdup (group_id);
    }
  pthread_cond_broadcast (&a->cond);
  pthread_mutex_unlock (&a->lock);
}

/* Takes the first queued id that no other worker is busy with. Caller holds the lock. */
static char *
take_work (agent_t *a)
{
  for (size_t i = 0; i < a->queue_n; i++)
    {
      if (list_has (a->busy, a->busy_n, a->queue[i]))
        continue;
      char *id = a->queue[i];
      memmove (&a->queue[i], &a->queue[i + 1], (a->queue_n - i - 1) * sizeof (char *));
      a->queue_n--;
      a->busy = realloc (a->busy, (a->busy_n + 1) * sizeof (char *));
      if (a->busy == NULL)
        abort ();
      a->busy[a->busy_n++] = id;
      return id;
    }
  return NULL;
}

static void
done_work (agent_t *a, char *id)
{
  for (size_t i = 0; i < a->busy_n; i++)
    if (a->busy[i] == id)
      {
        a->busy[i] = a->busy[--a->busy_n];
        break;
      }
  free (id);
  pthread_cond_broadcast (&a->cond);
}

static void *
worker_main (void *arg)
{
  agent_t *a = arg;
  pthread_mutex_lock (&a->lock);
  while (!a->stopping)
    {
      char *id = take_work (a);
      if (id == NULL)
        {
          pthread_cond_wait (&a->cond, &a->lock);
          continue;
        }
      pthread_mutex_unlock (&a->lock);
      agent_reconcile (a, id);
      pthread_mutex_lock (&a->lock);
      done_work (a, id);
    }
  pthread_mutex_unlock (&a->lock);
  return NULL;
}

/* Removes what is on the host for groups the store does not know (a crash between
 * creating files and committing, or a delete interrupted after the row went away). */
static void
remove_orphans (agent_t *a)
{
  cleanup_free char *groups = skiff_strdup_printf ("%s/groups", a->cfg.data_dir);
  cleanup_dir DIR *d = opendir (groups);
  if (d == NULL)
    return;
  struct dirent *de;
  while ((de = readdir (d)))
    {
      if (de->d_name[0] == '.')
        continue;
      store_group_t g = { 0 };
      if (store_group_get_by_id (a->store, de->d_name, &g, NULL) < 0)
        continue;
      if (g.id == NULL)
        {
          log_info ("removing orphaned group folder %s", de->d_name);
          agent_teardown (a, de->d_name, TEARDOWN_ALL);
        }
      store_group_clear (&g);
    }
  /* runtime containers whose group is gone */
  cleanup_dir DIR *rd = opendir (a->runtime_root);
  while (rd && (de = readdir (rd)))
    {
      if (strncmp (de->d_name, "skiff-", 6) != 0 || strlen (de->d_name) < 6 + 36)
        continue;
      char gid[37];
      memcpy (gid, de->d_name + 6, 36);
      gid[36] = '\0';
      store_group_t g = { 0 };
      if (store_group_get_by_id (a->store, gid, &g, NULL) == 0 && g.id == NULL)
        {
          log_info ("removing orphaned runtime container %s", de->d_name);
          runtime_force_delete (&a->rcfg, a->runtime_root, de->d_name, NULL);
        }
      store_group_clear (&g);
    }
}

int
agent_start (const agent_config_t *cfg, store_t *store, agent_t **out, skiff_error_t *err)
{
  agent_t *a = calloc (1, sizeof (*a));
  if (a == NULL)
    return skiff_error_set (err, ENOMEM, "agent");
  a->cfg = *cfg;
  a->cfg.data_dir = skiff_strdup (cfg->data_dir);
  a->cfg.monitor_path = skiff_strdup (cfg->monitor_path);
  a->cfg.runtime_path = skiff_strdup (cfg->runtime_path ? cfg->runtime_path : "/usr/bin/crun");
  if (a->cfg.workers <= 0)
    a->cfg.workers = 4;
  if (a->cfg.workers > AGENT_MAX_WORKERS)
    a->cfg.workers = AGENT_MAX_WORKERS;
  a->store = store;
  a->runtime_root = skiff_strdup_printf ("%s/run/runtime", a->cfg.data_dir);
  pthread_mutex_init (&a->lock, NULL);
  pthread_cond_init (&a->cond, NULL);
  pthread_mutex_init (&a->watch_lock, NULL);
  pthread_mutex_init (&a->net_lock, NULL);
  pthread_cond_init (&a->push_cond, NULL);
  pthread_rwlock_init (&a->images_lock, NULL);
  a->rcfg.runtime_path = a->cfg.runtime_path;
  a->rcfg.id_shift = cfg->id_shift;
  a->rcfg.id_range = cfg->id_range;

  cleanup_free char *groups = skiff_strdup_printf ("%s/groups", a->cfg.data_dir);
  if (skiff_mkdir_p (groups, 0711, err) < 0 || skiff_mkdir_p (a->runtime_root, 0700, err) < 0)
    return -1;
  chmod (groups, 0711); /* container roots (shifted ids) must traverse to their rootfs */
  cleanup_free char *report = NULL;
  if (runtime_prepare_host (&a->rcfg, &a->host, &report, err) < 0)
    return skiff_error_wrap (err, "prepare host");
  if (report && *report)
    log_info ("host: %s", report);
  {
    json_t *profile = runtime_seccomp_default ();
    skiff_error_t e = NULL;
    if (runtime_seccomp_compile (profile, &a->host.seccomp_bpf_b64, &e) < 0)
      {
        log_warn ("seccomp profile left to the runtime to compile: %s", e->msg);
        skiff_error_release (&e);
      }
    json_decref (profile);
  }

  image_store_config_t icfg = { .data_dir = a->cfg.data_dir,
                                .uid_shift = cfg->id_shift,
                                .gid_shift = cfg->id_shift,
                                .id_range = cfg->id_range,
                                .insecure_registries = cfg->insecure_registries,
                                .ca_file = cfg->registry_ca_file,
                                .max_parallel_layers = 4 };
  if (image_store_open (&icfg, &a->images, err) < 0)
    return skiff_error_wrap (err, "open image store");

  a->epfd = epoll_create1 (EPOLL_CLOEXEC);
  a->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl (a->epfd, EPOLL_CTL_ADD, a->wake_fd, &ev);
  if (pthread_create (&a->watcher, NULL, agent_watch_main, a) != 0)
    return skiff_error_set (err, EAGAIN, "start watcher thread");

  remove_orphans (a);
  if (agent_net_start (a, err) < 0)
    return -1;

  for (int i = 0; i < a->cfg.workers; i++)
    {
      if (pthread_create (&a->workers[i], NULL, worker_main, a) != 0)
        return skiff_error_set (err, EAGAIN, "start worker thread");
      a->n_workers++;
    }

  /* re-adopt: every known group is reconciled once */
  store_group_t *all = NULL;
  int n = 0;
  if (store_group_list (store, NULL, NULL, NULL, 0, &all, &n, err) < 0)
    return -1;
  for (int i = 0; i < n; i++)
    agent_notify (a, all[i].id);
  store_group_free_array (all, n);
  *out = a;
  return 0;
}

void
agent_stop (agent_t *a)
{
  if (a == NULL)
    return;
  pthread_mutex_lock (&a->lock);
  a->stopping = 1;
  pthread_cond_broadcast (&a->cond);
  pthread_mutex_unlock (&a->lock);
  for (int i = 0; i < a->n_workers; i++)
    pthread_join (a->workers[i], NULL);
  uint64_t one = 1;
  if (write (a->wake_fd, &one, sizeof (one)) < 0)
    log_warn ("wake watcher: %s", strerror (errno));
  pthread_join (a->watcher, NULL);
  agent_net_stop (a);
  /* Monitors keep running; only skiffd's own view of them goes away. */
  while (a->watches)
    {
      watch_t *w = a->watches;
      a->watches = w->next;
      monclient_sub_free (w->sub);
      free (w->group_id);
      free (w);
    }
  for (size_t i = 0; i < a->queue_n; i++)
    free (a->queue[i]);
  free (a->queue);
  free (a->busy);
  close (a->epfd);
  close (a->wake_fd);
  image_store_close (a->images);
  free (a->host.seccomp_bpf_b64);
  free ((char *)a->cfg.data_dir);
  free ((char *)a->cfg.monitor_path);
  free ((char *)a->cfg.runtime_path);
  free (a->runtime_root);
  pthread_mutex_destroy (&a->lock);
  pthread_cond_destroy (&a->cond);
  pthread_mutex_destroy (&a->watch_lock);
  pthread_rwlock_destroy (&a->images_lock);
  free (a);
}

int
agent_prune_images (agent_t *a, int *removed, skiff_error_t *err)
{
  pthread_rwlock_wrlock (&a->images_lock);
  /* every group folder lists the manifests its containers run from */
  size_t n = 0, cap = 16;
  char **keep = calloc (cap, sizeof (char *));
  if (keep == NULL)
    abort ();
  cleanup_free char *groups = skiff_strdup_printf ("%s/groups", a->cfg.data_dir);
  cleanup_dir DIR *d = opendir (groups);
  struct dirent *de;
  while (d && (de = readdir (d)))
    {
      if (de->d_name[0] == '.')
        continue;
      cleanup_free char *path = skiff_strdup_printf ("%s/%s/images", groups, de->d_name);
      cleanup_free char *buf = NULL;
      skiff_error_t e = NULL;
      if (skiff_read_file (path, 1 << 20, &buf, NULL, &e) < 0)
        {
          skiff_error_release (&e);
          cleanup_free char *cdir = skiff_strdup_printf ("%s/%s/containers", groups, de->d_name);
          struct stat st;
          if (stat (cdir, &st) == 0)
            {
              /* a group whose images are not recorded may run from any layer: keep them all */
              pthread_rwlock_unlock (&a->images_lock);
              skiff_strv_free (keep);
              return skiff_error_arm (err, 409, "ImagesInUseUnknown",
                                      "Group folder %s does not record its images; nothing was pruned.", de->d_name);
            }
          continue;
        }
      for (char *save = NULL, *line = strtok_r (buf, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
        {
          if (n + 2 > cap)
            {
              cap *= 2;
              keep = realloc (keep, cap * sizeof (char *));
              if (keep == NULL)
                abort ();
            }
          keep[n++] = skiff_strdup (line);
          keep[n] = NULL;
        }
    }
  int r = image_gc (a->images, (const char *const *)keep, err);
  pthread_rwlock_unlock (&a->images_lock);
  skiff_strv_free (keep);
  if (r < 0)
    return -1;
  *removed = r;
  log_info ("pruned %d unused image objects", r);
  return 0;
}
