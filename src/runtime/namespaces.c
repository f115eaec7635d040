/* namespaces.c - per-group user, network, IPC and UTS namespaces pinned by bind mounts.
 *
 * The group's user namespace owns its network, IPC and UTS namespaces, so the containers
 * (which join that user namespace) hold capabilities over them: they mount a fresh sysfs
 * showing only the group's interfaces and their own mqueue, as with namespaces of their
 * own. A new user namespace cannot be made by a multi-threaded process with unshare(), so
 * a tiny child is cloned into the four namespaces at once (sharing skiffd's memory and file
 * table: no copy of either) and only waits; skiffd writes its id maps, bind-mounts
 * /proc/<child>/ns/{user,net,ipc,uts} onto the pin files, then lets it exit. A helper
 * thread then joins the net and UTS namespaces to set the hostname and bring loopback up.
 * About a millisecond in all. */
#include "runtime/runtime.h"
#include "runtime/runtime_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

/* user first: the others belong to it */
static const char *const ns_names[] = { "user", "net", "ipc", "uts" };
#define N_NS 4
#define CHILD_STACK (64 * 1024)

static int
is_pinned (const char *path)
{
  struct statfs sf;
  return statfs (path, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)NSFS_MAGIC;
}

struct pin_job
{
  const char *ns_dir;
  const char *hostname;
  int status;     /* errno of the failure, 0 on success */
  char what[512]; /* the step that failed */
};

/* Joins the pinned net and UTS namespaces (a thread may: they are per task) and sets them up. */
static void *
setup_thread (void *arg)
{
  struct pin_job *j = arg;
  static const char *const joined[] = { "net", "uts" };
  for (int i = 0; i < 2; i++)
    {
      char path[4096];
      snprintf (path, sizeof path, "%s/%s", j->ns_dir, joined[i]);
      cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns (fd, 0) < 0)
        {
          j->status = errno;
          snprintf (j->what, sizeof j->what, "join the pinned %s namespace", joined[i]);
          return NULL;
        }
    }
  if (j->hostname && j->hostname[0] && sethostname (j->hostname, strlen (j->hostname)) < 0)
    {
      j->status = errno;
      snprintf (j->what, sizeof j->what, "sethostname `%s`", j->hostname);
      return NULL;
    }
  {
    cleanup_close int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset (&ifr, 0, sizeof ifr);
    strcpy (ifr.ifr_name, "lo");
    if (s < 0 || ioctl (s, SIOCGIFFLAGS, &ifr) < 0
        || (ifr.ifr_flags |= IFF_UP | IFF_RUNNING, ioctl (s, SIOCSIFFLAGS, &ifr) < 0))
      {
        j->status = errno;
        snprintf (j->what, sizeof j->what, "bring loopback up");
        return NULL;
      }
  }
  {
    /* Container root may bind any port (CAP_NET_BIND_SERVICE over the group's netns); let
       non-root users bind ports below 1024 too in this group-private namespace, as docker
       does for its containers. */
    cleanup_close int fd = open ("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write (fd, "0", 1) != 1)
      {
        j->status = errno;
        snprintf (j->what, sizeof j->what, "set net.ipv4.ip_unprivileged_port_start");
        return NULL;
      }
  }
  return NULL;
}

/* The cloned child: lives in the new namespaces until skiffd has pinned them (EOF on the
 * pipe). It shares skiffd's memory, so it makes nothing but raw system calls. */
static int
holder_main (void *arg)
{
  int fd = *(int *)arg;
  char c;
  while (syscall (SYS_read, fd, &c, 1) < 0)
    ;
  return 0;
}

static int
write_map (pid_t pid, const char *which, uint32_t shift, uint32_t range, skiff_error_t *err)
{
  char path[64], map[64];
  snprintf (path, sizeof path, "/proc/%d/%s", (int)pid, which);
  int n = snprintf (map, sizeof map, "0 %u %u\n", shift, range);
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write (fd, map, (size_t)n) != n)
    return skiff_error_set (err, errno, "write `%s` of the group's user namespace", which);
  return 0;
}

/* Creates the four namespaces in a child and bind-mounts them onto the pin files. */
static int
pin_new (const char *ns_dir, uint32_t shift, uint32_t range, skiff_error_t *err)
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return skiff_error_set (err, errno, "pipe");
  cleanup_close int rd = p[0];
  int wr = p[1];
  cleanup_free char *stack = malloc (CHILD_STACK);
  if (stack == NULL)
    {
      close (wr);
      return skiff_error_set (err, ENOMEM, "child stack");
    }
  /* CLONE_FILES: closing wr here closes it for the child too (its EOF); exit signal 0: no
   * SIGCHLD, and only a waitpid with __WCLONE sees the child */
  pid_t pid = clone (holder_main, stack + CHILD_STACK,
                     CLONE_VM | CLONE_FILES | CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS, &rd);
  if (pid < 0)
    {
      close (wr);
      return skiff_error_set (err, errno, "clone into new user, net, ipc and uts namespaces");
    }
  int r = 0;
  if (write_map (pid, "uid_map", shift, range, err) < 0 || write_map (pid, "gid_map", shift, range, err) < 0)
    r = -1;
  for (int i = 0; r == 0 && i < N_NS; i++)
    {
      char src[64];
      snprintf (src, sizeof src, "/proc/%d/ns/%s", (int)pid, ns_names[i]);
      cleanup_free char *dst = skiff_strdup_printf ("%s/%s", ns_dir, ns_names[i]);
      if (mount (src, dst, NULL, MS_BIND, NULL) < 0)
        r = skiff_error_set (err, errno, "bind-mount %s onto `%s`", src, dst);
    }
  close (wr);
  int st;
  while (waitpid (pid, &st, __WCLONE) < 0 && errno == EINTR)
    ;
  return r;
}

int
runtime_release_namespaces (const char *ns_dir, skiff_error_t *err)
{
  for (int i = 0; i < N_NS; i++)
    {
      cleanup_free char *p = skiff_strdup_printf ("%s/%s", ns_dir, ns_names[i]);
      /* a pin file may carry more than one mount if something pinned twice */
      for (int k = 0; k < 16; k++)
        {
          if (umount2 (p, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
            continue;
          if (errno == EINVAL || errno == ENOENT)
            break;
          return skiff_error_set (err, errno, "unmount `%s`", p);
        }
      if (unlink (p) < 0 && errno != ENOENT)
        return skiff_error_set (err, errno, "unlink `%s`", p);
    }
  return 0;
}

int
runtime_pin_namespaces (const runtime_config_t *cfg, const char *ns_dir, const char *hostname, skiff_error_t *err)
{
  if (ns_dir == NULL || ns_dir[0] != '/' || strlen (ns_dir) > 3000)
    return skiff_error_set (err, EINVAL, "namespace folder must be an absolute path");
  if (hostname && strlen (hostname) > 64)
    return skiff_error_set (err, EINVAL, "hostname `%s` longer than 64 characters", hostname);

  int pinned = 0;
  for (int i = 0; i < N_NS; i++)
    {
      cleanup_free char *p = skiff_strdup_printf ("%s/%s", ns_dir, ns_names[i]);
      pinned += is_pinned (p);
    }
  if (pinned == N_NS)
    return 0;
  if (pinned > 0 && runtime_release_namespaces (ns_dir, err) < 0)
    return skiff_error_wrap (err, "release partly pinned namespaces");

  if (skiff_mkdir_p (ns_dir, 0700, err) < 0)
    return -1;
  for (int i = 0; i < N_NS; i++)
    {
      cleanup_free char *p = skiff_strdup_printf ("%s/%s", ns_dir, ns_names[i]);
      cleanup_close int fd = open (p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
      if (fd < 0)
        return skiff_error_set (err, errno, "create `%s`", p);
    }

  uint32_t shift, range;
  runtime_id_map (cfg, &shift, &range);
  if (pin_new (ns_dir, shift, range, err) < 0)
    goto fail;
  struct pin_job job = { ns_dir, hostname, 0, "" };
  pthread_t th;
  int r = pthread_create (&th, NULL, setup_thread, &job);
  if (r != 0)
    {
      skiff_error_set (err, r, "pthread_create");
      goto fail;
    }
  pthread_join (th, NULL);
  if (job.status != 0)
    {
      skiff_error_set (err, job.status, "set up namespaces in `%s`: %s", ns_dir, job.what);
      goto fail;
    }
  return 0;

fail:
  {
    skiff_error_t e2 = NULL;
    runtime_release_namespaces (ns_dir, &e2);
    skiff_error_release (&e2);
  }
  return -1;
}
