/* rootfs.c - overlay root filesystems for containers. */
#include "runtime/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif

/* The mount(2) data argument is copied into one page. */
#define MOUNT_DATA_MAX 4096

/* Returns 1 when `path` is an overlay mounted on a folder of `parent`'s file system. */
static int
is_overlay_mounted (const char *parent, const char *path)
{
  struct stat sp, s;
  struct statfs sf;
  if (stat (parent, &sp) < 0 || stat (path, &s) < 0 || statfs (path, &sf) < 0)
    return 0;
  return s.st_dev != sp.st_dev && (unsigned long)sf.f_type == (unsigned long)OVERLAYFS_SUPER_MAGIC;
}

static int
mkdir_owned (const char *path, uid_t uid, gid_t gid, skiff_error_t *err)
{
  if (mkdir (path, 0755) < 0 && errno != EEXIST)
    return skiff_error_set (err, errno, "mkdir `%s`", path);
  if (chown (path, uid, gid) < 0)
    return skiff_error_set (err, errno, "chown `%s`", path);
  return 0;
}

/* Builds "lowerdir=<highest>:...:<lowest>,upperdir=..,workdir=.." with each layer path
 * stripped of its first `strip` characters. */
static char *
build_options (const char *const *layers, size_t n, size_t strip, const char *upper, const char *work)
{
  size_t len = strlen ("lowerdir=,upperdir=,workdir=") + strlen (upper) + strlen (work) + 1;
  for (size_t i = 0; i < n; i++)
    len += strlen (layers[i]) - strip + 1;
  char *o = malloc (len);
  if (o == NULL)
    abort ();
  char *w = stpcpy (o, "lowerdir=");
  for (size_t i = n; i-- > 0;)
    {
      w = stpcpy (w, layers[i] + strip);
      if (i > 0)
        *w++ = ':';
    }
  w = stpcpy (w, ",upperdir=");
  w = stpcpy (w, upper);
  w = stpcpy (w, ",workdir=");
  stpcpy (w, work);
  return o;
}

struct rel_mount
{
  const char *dir;
  const char *target;
  const char *options;
  int status;
  const char *what;
};

/* Runs in a helper thread with its own cwd (CLONE_FS unshared), so relative lowerdir
 * paths resolve against the layers' common parent without touching the process cwd. */
static void *
rel_mount_thread (void *arg)
{
  struct rel_mount *m = arg;
  if (unshare (CLONE_FS) < 0)
    {
      m->status = errno;
      m->what = "unshare CLONE_FS";
      return NULL;
    }
  if (chdir (m->dir) < 0)
    {
      m->status = errno;
      m->what = "chdir to the layers' common parent";
      return NULL;
    }
  if (mount ("overlay", m->target, "overlay", MS_NODEV, m->options) < 0)
    {
      m->status = errno;
      m->what = "mount overlay";
    }
  return NULL;
}

int
runtime_mount_rootfs (const runtime_config_t *cfg, const char *const *layer_dirs, const char *container_dir,
                      skiff_error_t *err)
{
  if (layer_dirs == NULL || layer_dirs[0] == NULL)
    return skiff_error_set (err, EINVAL, "overlay rootfs needs at least one layer");
  if (container_dir == NULL || container_dir[0] != '/')
    return skiff_error_set (err, EINVAL, "container folder must be an absolute path");
  size_t n = 0;
  for (; layer_dirs[n]; n++)
    if (layer_dirs[n][0] != '/' || strpbrk (layer_dirs[n], ":,\n") != NULL)
      return skiff_error_set (err, EINVAL, "layer folder `%s` must be absolute and free of ':' and ','", layer_dirs[n]);
  if (strpbrk (container_dir, ":,\n") != NULL)
    return skiff_error_set (err, EINVAL, "container folder `%s` must not contain ':' or ','", container_dir);

  cleanup_free char *upper = skiff_strdup_printf ("%s/upper", container_dir);
  cleanup_free char *work = skiff_strdup_printf ("%s/work", container_dir);
  cleanup_free char *rootfs = skiff_strdup_printf ("%s/rootfs", container_dir);
  if (skiff_mkdir_p (container_dir, 0711, err) < 0)
    return -1;
  if (is_overlay_mounted (container_dir, rootfs))
    return 0;
  uid_t id = cfg ? cfg->id_shift : 0;
  if (mkdir_owned (upper, id, id, err) < 0 || mkdir_owned (work, id, id, err) < 0)
    return -1;
  if (mkdir (rootfs, 0755) < 0 && errno != EEXIST)
    return skiff_error_set (err, errno, "mkdir `%s`", rootfs);

  cleanup_free char *opts = build_options (layer_dirs, n, 0, upper, work);
  if (strlen (opts) < MOUNT_DATA_MAX)
    {
      if (mount ("overlay", rootfs, "overlay", MS_NODEV, opts) < 0)
        return skiff_error_set (err, errno, "mount overlay at `%s` (%zu layers)", rootfs, n);
      return 0;
    }

  /* Too long: mount with lowerdirs relative to their longest common parent folder. */
  size_t common = strlen (layer_dirs[0]);
  for (size_t i = 1; i < n; i++)
    {
      size_t k = 0;
      while (k < common && layer_dirs[i][k] == layer_dirs[0][k])
        k++;
      common = k;
    }
  while (common > 0 && layer_dirs[0][common - 1] != '/')
    common--;
  for (size_t i = 0; i < n; i++)
    if (layer_dirs[i][common] == '\0')
      return skiff_error_set (err, EINVAL, "layer folder `%s` is a parent of another layer", layer_dirs[i]);
  cleanup_free char *dir = strndup (layer_dirs[0], common);
  if (dir == NULL)
    abort ();
  free (opts);
  opts = build_options (layer_dirs, n, common, upper, work);
  if (strlen (opts) >= MOUNT_DATA_MAX)
    return skiff_error_set (err, E2BIG, "overlay options for %zu layers exceed %d bytes even with relative paths", n,
                            MOUNT_DATA_MAX);
  struct rel_mount m = { dir, rootfs, opts, 0, NULL };
  pthread_t th;
  int r = pthread_create (&th, NULL, rel_mount_thread, &m);
  if (r != 0)
    return skiff_error_set (err, r, "pthread_create");
  pthread_join (th, NULL);
  if (m.status != 0)
    return skiff_error_set (err, m.status, "%s: overlay at `%s` (%zu layers relative to `%s`)", m.what, rootfs, n, dir);
  return 0;
}

int
runtime_unmount_rootfs (const char *container_dir, int remove_data, skiff_error_t *err)
{
  cleanup_free char *rootfs = skiff_strdup_printf ("%s/rootfs", container_dir);
  for (int k = 0; k < 16; k++)
    {
      if (umount2 (rootfs, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
        continue;
      if (errno == EINVAL || errno == ENOENT)
        break;
      return skiff_error_set (err, errno, "unmount `%s`", rootfs);
    }
  if (rmdir (rootfs) < 0 && errno != ENOENT)
    return skiff_error_set (err, errno, "rmdir `%s`", rootfs);
  if (remove_data)
    {
      cleanup_free char *upper = skiff_strdup_printf ("%s/upper", container_dir);
      cleanup_free char *work = skiff_strdup_printf ("%s/work", container_dir);
      if (skiff_rm_rf (upper, err) < 0 || skiff_rm_rf (work, err) < 0)
        return -1;
    }
  return 0;
}
