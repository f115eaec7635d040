/* namespaces.c - per-group network, IPC and UTS namespaces pinned by bind mounts.
 *
 * A short-lived helper thread unshares the three namespaces (allowed in a
 * multi-threaded process, they are per task), sets the hostname, brings loopback up
 * and bind-mounts /proc/thread-self/ns/{net,ipc,uts} onto the pin files. No fork, so
 * the cost does not grow with skiffd's memory; it takes about a millisecond. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

static const char *const ns_names[] = { "net", "ipc", "uts" };
#define N_NS 3

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

static void *
pin_thread (void *arg)
{
  struct pin_job *j = arg;
  if (unshare (CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
    {
      j->status = errno;
      snprintf (j->what, sizeof j->what, "unshare net/ipc/uts");
      return NULL;
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
    /* The netns belongs to the host's user namespace, so CAP_NET_BIND_SERVICE in a
       container's own user namespace does not count for it: let every port be bound
       in this (group-private) namespace, as docker does for its containers. */
    cleanup_close int fd = open ("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write (fd, "0", 1) != 1)
      {
        j->status = errno;
        snprintf (j->what, sizeof j->what, "set net.ipv4.ip_unprivileged_port_start");
        return NULL;
      }
  }
  for (int i = 0; i < N_NS; i++)
    {
      char src[64], dst[4096];
      snprintf (src, sizeof src, "/proc/thread-self/ns/%s", ns_names[i]);
      snprintf (dst, sizeof dst, "%s/%s", j->ns_dir, ns_names[i]);
      if (mount (src, dst, NULL, MS_BIND, NULL) < 0)
        {
          j->status = errno;
          snprintf (j->what, sizeof j->what, "bind-mount %s onto `%s/%s`", src, "<ns_dir>", ns_names[i]);
          return NULL;
        }
    }
  return NULL;
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
runtime_pin_namespaces (const char *ns_dir, const char *hostname, skiff_error_t *err)
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

  struct pin_job job = { ns_dir, hostname, 0, "" };
  pthread_t th;
  int r = pthread_create (&th, NULL, pin_thread, &job);
  if (r != 0)
    return skiff_error_set (err, r, "pthread_create");
  pthread_join (th, NULL);
  if (job.status != 0)
    {
      skiff_error_t e2 = NULL;
      runtime_release_namespaces (ns_dir, &e2);
      skiff_error_release (&e2);
      return skiff_error_set (err, job.status, "pin namespaces in `%s`: %s", ns_dir, job.what);
    }
  return 0;
}
