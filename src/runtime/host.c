/* host.c - host preparation (cgroup layout, runtime check, limits), cgroup clean-up
 * and forced deletion of runtime containers. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "runtime/runtime_internal.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

extern char **environ;

void
runtime_id_map (const runtime_config_t *cfg, uint32_t *shift, uint32_t *range)
{
  *shift = cfg ? cfg->id_shift : 100000;
  *range = cfg && cfg->id_range ? cfg->id_range : 65536;
}

const char *
runtime_path_or_default (const runtime_config_t *cfg)
{
  return cfg && cfg->runtime_path && cfg->runtime_path[0] ? cfg->runtime_path : "/usr/bin/crun";
}

/* Unescapes the octal escapes (\040 etc.) of a mountinfo field in place. */
static void
unescape_mountinfo (char *s)
{
  char *w = s;
  for (char *r = s; *r; r++)
    {
      if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7')
        {
          *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
          r += 3;
        }
      else
        *w++ = *r;
    }
  *w = '\0';
}

int
runtime_list_mounts (int (*cb) (const char *mountpoint, const char *fstype, const char *superopts, void *data),
                     void *data, skiff_error_t *err)
{
  cleanup_file FILE *f = fopen ("/proc/self/mountinfo", "re");
  if (f == NULL)
    return skiff_error_set (err, errno, "open /proc/self/mountinfo");
  cleanup_free char *line = NULL;
  size_t cap = 0;
  while (getline (&line, &cap, f) > 0)
    {
      char *save = NULL;
      char *fields[6] = { 0 };
      int n = 0;
      char *sep = strstr (line, " - ");
      if (sep == NULL)
        continue;
      *sep = '\0';
      for (char *t = strtok_r (line, " ", &save); t && n < 6; t = strtok_r (NULL, " ", &save))
        fields[n++] = t;
      if (n < 5)
        continue;
      char *rest = sep + 3;
      char *fstype = strtok_r (rest, " ", &save);
      char *source = strtok_r (NULL, " ", &save);
      char *superopts = strtok_r (NULL, " \n", &save);
      (void)source;
      if (fstype == NULL)
        continue;
      unescape_mountinfo (fields[4]);
      int r = cb (fields[4], fstype, superopts ? superopts : "", data);
      if (r != 0)
        return r > 0 ? 0 : r;
    }
  return 0;
}

int
runtime_run_capture (const char *const *argv, char **out, int *exit_status, skiff_error_t *err)
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return skiff_error_set (err, errno, "pipe");
  cleanup_close int rd = p[0];
  cleanup_close int wr = p[1];
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, wr, 1);
  posix_spawn_file_actions_adddup2 (&fa, wr, 2);
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0)
    return skiff_error_set (err, r, "run `%s`", argv[0]);
  close (steal_fd (&wr));

  size_t len = 0, size = 4096;
  cleanup_free char *buf = malloc (size);
  if (buf == NULL)
    abort ();
  for (;;)
    {
      if (len + 1 >= size)
        {
          if (size >= (1 << 20))
            {
              char sink[4096];
              ssize_t k = read (rd, sink, sizeof sink);
              if (k > 0 || (k < 0 && errno == EINTR))
                continue;
              break;
            }
          size *= 2;
          char *nb = realloc (buf, size);
          if (nb == NULL)
            abort ();
          buf = nb;
        }
      ssize_t k = read (rd, buf + len, size - len - 1);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        break;
      len += (size_t)k;
    }
  buf[len] = '\0';
  int st;
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return skiff_error_set (err, errno, "waitpid `%s`", argv[0]);
  *exit_status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + (WIFSIGNALED (st) ? WTERMSIG (st) : 0);
  if (out)
    *out = steal_pointer (&buf);
  return 0;
}

/* ---- cgroups ---- */

struct cgroup2_find
{
  char *mountpoint;
};

static int
find_cgroup2_cb (const char *mp, const char *fstype, const char *superopts, void *data)
{
  (void)superopts;
  struct cgroup2_find *f = data;
  if (strcmp (fstype, "cgroup2") == 0 && f->mountpoint == NULL)
    f->mountpoint = skiff_strdup (mp);
  return 0;
}

static int
read_small (const char *path, char **out)
{
  skiff_error_t e = NULL;
  int r = skiff_read_file (path, 1 << 16, out, NULL, &e);
  skiff_error_release (&e);
  return r;
}

/* Remounts /sys/fs/cgroup (a tmpfs on v1 hosts) with or without MS_RDONLY, keeping
 * its other flags. */
static int
remount_cgroup_tmpfs (int readonly, skiff_error_t *err)
{
  struct statvfs sv;
  if (statvfs (CGROUP_ROOT, &sv) < 0)
    return skiff_error_set (err, errno, "statvfs " CGROUP_ROOT);
  unsigned long flags = MS_REMOUNT;
  if (sv.f_flag & ST_NOSUID)
    flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV)
    flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC)
    flags |= MS_NOEXEC;
  if (readonly)
    flags |= MS_RDONLY;
  if (mount (NULL, CGROUP_ROOT, NULL, flags, "mode=755") < 0)
    return skiff_error_set (err, errno, "remount " CGROUP_ROOT " %s", readonly ? "ro" : "rw");
  return 0;
}

/* On a hybrid host, mounts each controller still owned by cgroup2 as its own v1
 * hierarchy. Appends what it did to *rep. */
static int
fix_hybrid (const char *unified, char **rep, skiff_error_t *err)
{
  cleanup_free char *ctrl_path = skiff_strdup_printf ("%s/cgroup.controllers", unified);
  cleanup_free char *ctrls = NULL;
  if (read_small (ctrl_path, &ctrls) < 0)
    return 0;
  int remounted = 0;
  char *save = NULL;
  int ret = 0;
  for (char *c = strtok_r (ctrls, " \n", &save); c; c = strtok_r (NULL, " \n", &save))
    {
      if (strchr (c, '/') || strcmp (c, ".") == 0 || strcmp (c, "..") == 0)
        continue;
      cleanup_free char *target = skiff_strdup_printf (CGROUP_ROOT "/%s", c);
      if (mkdir (target, 0755) < 0 && errno != EEXIST)
        {
          if (errno != EROFS || remounted)
            {
              ret = skiff_error_set (err, errno, "mkdir `%s`", target);
              break;
            }
          if (remount_cgroup_tmpfs (0, err) < 0)
            return -1;
          remounted = 1;
          if (mkdir (target, 0755) < 0 && errno != EEXIST)
            {
              ret = skiff_error_set (err, errno, "mkdir `%s`", target);
              break;
            }
        }
      if (mount ("cgroup", target, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, c) < 0)
        {
          ret = skiff_error_set (err, errno, "mount cgroup v1 hierarchy `%s` at `%s`", c, target);
          break;
        }
      char *n = skiff_strdup_printf ("%shybrid cgroups: mounted controller %s (owned by cgroup2 at %s) as v1 at %s\n",
                                     *rep, c, unified, target);
      free (*rep);
      *rep = n;
    }
  if (remounted)
    {
      skiff_error_t e2 = NULL;
      if (remount_cgroup_tmpfs (1, &e2) < 0 && ret == 0)
        {
          *err = e2;
          return -1;
        }
      skiff_error_release (&e2);
    }
  if (ret < 0)
    return ret;
  free (ctrls);
  ctrls = NULL;
  if (read_small (ctrl_path, &ctrls) == 0 && ctrls[strspn (ctrls, " \n")] != '\0')
    return skiff_error_set (err, 0, "cgroup2 at `%s` still owns controllers after moving them to v1: %s", unified,
                            ctrls);
  return 0;
}

static int
v2_has_swap (void)
{
  cleanup_dir DIR *d = opendir (CGROUP_ROOT);
  if (d == NULL)
    return 0;
  struct dirent *de;
  while ((de = readdir (d)))
    {
      if (de->d_type != DT_DIR || de->d_name[0] == '.')
        continue;
      cleanup_free char *p = skiff_strdup_printf (CGROUP_ROOT "/%s/memory.swap.max", de->d_name);
      if (access (p, F_OK) == 0)
        return 1;
    }
  return 0;
}

int
runtime_prepare_host (const runtime_config_t *cfg, runtime_host_t *host, char **report, skiff_error_t *err)
{
  memset (host, 0, sizeof (*host));
  cleanup_free char *rep = skiff_strdup ("");
  struct statfs sf;
  if (statfs (CGROUP_ROOT, &sf) < 0)
    return skiff_error_set (err, errno, "statfs " CGROUP_ROOT);

  if ((unsigned long)sf.f_type == (unsigned long)CGROUP2_SUPER_MAGIC)
    {
      host->cgroup_version = 2;
      host->swap_accounting = v2_has_swap ();
      char *n = skiff_strdup_printf ("%scgroup: unified v2 at " CGROUP_ROOT "\n", rep);
      free (rep);
      rep = n;
    }
  else
    {
      host->cgroup_version = 1;
      struct cgroup2_find f = { NULL };
      if (runtime_list_mounts (find_cgroup2_cb, &f, err) < 0)
        return -1;
      cleanup_free char *unified = f.mountpoint;
      if (unified)
        {
          if (fix_hybrid (unified, &rep, err) < 0)
            return skiff_error_wrap (err, "prepare hybrid cgroup host");
        }
      host->swap_accounting = access (CGROUP_ROOT "/memory/memory.memsw.limit_in_bytes", F_OK) == 0;
      char *n = skiff_strdup_printf ("%scgroup: v1%s%s%s, swap accounting %s\n", rep, unified ? " (cgroup2 at " : "",
                                     unified ? unified : "", unified ? " has no controllers)" : "",
                                     host->swap_accounting ? "on" : "off");
      free (rep);
      rep = n;
    }

  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return skiff_error_set (err, errno, "getrlimit NOFILE");
  host->nofile_hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
  if (getrlimit (RLIMIT_NPROC, &rl) < 0)
    return skiff_error_set (err, errno, "getrlimit NPROC");
  host->nproc_hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;

  const char *rt = runtime_path_or_default (cfg);
  if (access (rt, X_OK) < 0)
    return skiff_error_set (err, errno, "OCI runtime `%s`", rt);
  const char *argv[] = { rt, "--version", NULL };
  cleanup_free char *out = NULL;
  int status = 0;
  if (runtime_run_capture (argv, &out, &status, err) < 0)
    return -1;
  if (status != 0)
    return skiff_error_set (err, 0, "`%s --version` exited with %d: %.200s", rt, status, out);
  size_t l = strcspn (out, "\n");
  if (l >= sizeof (host->runtime_version))
    l = sizeof (host->runtime_version) - 1;
  memcpy (host->runtime_version, out, l);
  host->runtime_version[l] = '\0';

  char *n = skiff_strdup_printf ("%sruntime: %s (%s)\nlimits: nofile hard %llu, nproc hard %llu\n", rep, rt,
                                 host->runtime_version, (unsigned long long)host->nofile_hard,
                                 (unsigned long long)host->nproc_hard);
  free (rep);
  rep = n;
  if (report)
    *report = steal_pointer (&rep);
  return 0;
}

static int
valid_cgroup_path (const char *p)
{
  if (p == NULL || p[0] != '/' || p[1] == '\0')
    return 0;
  for (const char *s = p; *s; s++)
    if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0'))
      return 0;
  return 1;
}

/* Removes the cgroup folder `path` and its children, deepest first. */
static int
rmdir_cgroup_tree (const char *path, skiff_error_t *err)
{
  cleanup_dir DIR *d = opendir (path);
  if (d == NULL)
    {
      if (errno == ENOENT)
        return 0;
      return skiff_error_set (err, errno, "opendir `%s`", path);
    }
  struct dirent *de;
  while ((de = readdir (d)))
    {
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      cleanup_free char *child = skiff_strdup_printf ("%s/%s", path, de->d_name);
      if (rmdir_cgroup_tree (child, err) < 0)
        return -1;
    }
  /* A cgroup whose last task just exited can stay busy for a short while. */
  for (int i = 0;; i++)
    {
      if (rmdir (path) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY || i >= 100)
        return skiff_error_set (err, errno, "rmdir cgroup `%s`", path);
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
}

struct rm_cg
{
  const char *group_path;
  skiff_error_t *err;
  int failed;
};

static int
rm_cg_cb (const char *mp, const char *fstype, const char *superopts, void *data)
{
  (void)superopts;
  struct rm_cg *r = data;
  if (strcmp (fstype, "cgroup") != 0 && strcmp (fstype, "cgroup2") != 0)
    return 0;
  if (strncmp (mp, CGROUP_ROOT, strlen (CGROUP_ROOT)) != 0)
    return 0;
  cleanup_free char *p = skiff_strdup_printf ("%s%s", mp, r->group_path);
  if (rmdir_cgroup_tree (p, r->err) < 0)
    r->failed = 1; /* keep going: remove what can be removed */
  return 0;
}

int
runtime_remove_cgroups (const runtime_host_t *host, const char *group_cgroup_path, skiff_error_t *err)
{
  (void)host;
  if (!valid_cgroup_path (group_cgroup_path))
    return skiff_error_set (err, EINVAL, "invalid cgroup path `%s`", group_cgroup_path ? group_cgroup_path : "");
  struct rm_cg r = { group_cgroup_path, err, 0 };
  if (runtime_list_mounts (rm_cg_cb, &r, err) < 0)
    return -1;
  return r.failed ? -1 : 0;
}

int
runtime_memory_cgroup_dir (const runtime_host_t *host, const char *cgroup_path, char **out, skiff_error_t *err)
{
  if (!valid_cgroup_path (cgroup_path))
    return skiff_error_set (err, EINVAL, "invalid cgroup path `%s`", cgroup_path ? cgroup_path : "");
  if (host->cgroup_version == 2)
    *out = skiff_strdup_printf (CGROUP_ROOT "%s", cgroup_path);
  else
    *out = skiff_strdup_printf (CGROUP_ROOT "/memory%s", cgroup_path);
  return 0;
}

int
runtime_force_delete (const runtime_config_t *cfg, const char *runtime_root, const char *id, skiff_error_t *err)
{
  if (id == NULL || id[0] == '\0' || id[0] == '-' || strchr (id, '/'))
    return skiff_error_set (err, EINVAL, "invalid container id `%s`", id ? id : "");
  const char *rt = runtime_path_or_default (cfg);
  const char *argv[8];
  int n = 0;
  argv[n++] = rt;
  if (runtime_root)
    {
      argv[n++] = "--root";
      argv[n++] = runtime_root;
    }
  argv[n++] = "delete";
  argv[n++] = "-f";
  argv[n++] = id;
  argv[n] = NULL;
  cleanup_free char *out = NULL;
  int status = 0;
  if (runtime_run_capture (argv, &out, &status, err) < 0)
    return -1;
  if (status == 0)
    return 0;
  if (strstr (out, "does not exist") || strstr (out, "not exist") || strstr (out, "No such file"))
    return 0;
  size_t l = strlen (out);
  while (l > 0 && out[l - 1] == '\n')
    out[--l] = '\0';
  return skiff_error_set (err, 0, "`%s delete -f %s` exited with %d: %.300s", rt, id, status, out);
}
