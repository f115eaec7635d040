/* test_runtime_live.c - runs two real containers of one group with crun: busybox rootfs
 * from two overlay "layers" (one container's rootfs with a long lowerdir list), pinned
 * net/ipc/uts namespaces shared by both, bundles from runtime_write_bundle. Checks the
 * user namespace, the shared hostname and loopback, cgroup limits, masks, read-only
 * paths, capabilities, seccomp and no_new_privs, then cleans everything up.
 * Needs root and crun; otherwise prints a skip note. SKIFF_CRUN overrides the runtime. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "runtime/runtime.h"
#include "runtime/runtime_internal.h"
#include "test.h"

extern char **environ;

#define SHIFT 100000
#define N_EXTRA_LAYERS 53

static char tmp[] = "/tmp/skiff-rt-XXXXXX";
static const char *crun;
static char *crun_root;
static char group_cg[64];

static void
die_err (const char *what, skiff_error_t *e)
{
  fprintf (stderr, "FAIL %s: %s\n", what, *e ? (*e)->msg : "?");
  test_failed++;
  skiff_error_release (e);
}

static int
write_str (const char *path, const char *s, mode_t mode)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return -1;
  size_t n = strlen (s);
  return write (fd, s, n) == (ssize_t)n ? 0 : -1;
}

static int
copy_file (const char *src, const char *dst, mode_t mode)
{
  cleanup_free char *data = NULL;
  size_t len = 0;
  skiff_error_t e = NULL;
  if (skiff_read_file (src, 64 << 20, &data, &len, &e) < 0)
    {
      die_err ("read busybox", &e);
      return -1;
    }
  cleanup_close int fd = open (dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0 || write (fd, data, len) != (ssize_t)len)
    return -1;
  return fchmod (fd, mode);
}

static void
mkdir_owned (const char *path, mode_t mode)
{
  mkdir (path, mode);
  chmod (path, mode);
  if (lchown (path, SHIFT, SHIFT) < 0)
    perror ("lchown");
}

/* Layer 1: busybox and its applets, the usual folders. Layer 2: one file. */
static int
build_layers (char *l1, char *l2)
{
  static const char *const applets[]
      = { "sh",  "id",  "cat",   "hostname", "grep", "wc",   "ls",   "tr",    "nc", "sleep",
          "seq", "cut", "httpd", "unshare",  "head", "echo", "true", "touch", NULL };
  char p[4096];
  mkdir_owned (l1, 0755);
  const char *dirs[] = { "bin", "proc", "sys", "dev", "etc", "root", "tmp", NULL };
  for (int i = 0; dirs[i]; i++)
    {
      snprintf (p, sizeof p, "%s/%s", l1, dirs[i]);
      mkdir_owned (p, strcmp (dirs[i], "tmp") == 0 ? 01777 : 0755);
    }
  snprintf (p, sizeof p, "%s/bin/busybox", l1);
  if (copy_file ("/bin/busybox", p, 0755) < 0 || lchown (p, SHIFT, SHIFT) < 0)
    return -1;
  for (int i = 0; applets[i]; i++)
    {
      snprintf (p, sizeof p, "%s/bin/%s", l1, applets[i]);
      if (symlink ("busybox", p) < 0 || lchown (p, SHIFT, SHIFT) < 0)
        return -1;
    }
  snprintf (p, sizeof p, "%s/etc/passwd", l1);
  write_str (p, "root:x:0:0:root:/root:/bin/sh\n", 0644);
  lchown (p, SHIFT, SHIFT);
  mkdir_owned (l2, 0755);
  snprintf (p, sizeof p, "%s/etc", l2);
  mkdir_owned (p, 0755);
  snprintf (p, sizeof p, "%s/etc/layer2.txt", l2);
  write_str (p, "from-layer-2\n", 0644);
  lchown (p, SHIFT, SHIFT);
  return 0;
}

static pid_t
spawn_runtime (const char *const *argv, int out_fd)
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2 (&fa, out_fd, 2);
  pid_t pid = -1;
  if (posix_spawn (&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy (&fa);
  return pid;
}

static char *
read_text (const char *path)
{
  char *s = NULL;
  skiff_error_t e = NULL;
  if (skiff_read_file (path, 1 << 20, &s, NULL, &e) < 0)
    skiff_error_release (&e);
  return s;
}

/* Returns the pid of a running container, or 0. */
static long
container_pid (const char *id)
{
  const char *argv[] = { crun, "--root", crun_root, "state", id, NULL };
  cleanup_free char *out = NULL;
  int st = 0;
  skiff_error_t e = NULL;
  if (runtime_run_capture (argv, &out, &st, &e) < 0)
    {
      skiff_error_release (&e);
      return 0;
    }
  if (st != 0)
    return 0;
  cleanup_json json_t *j = json_loads (out, 0, NULL);
  const char *status = json_string_value (json_object_get (j, "status"));
  if (status == NULL || strcmp (status, "running") != 0)
    return 0;
  return (long)json_integer_value (json_object_get (j, "pid"));
}

static int
cmp_i64 (const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void
check_file_eq (const char *path, const char *want)
{
  cleanup_free char *s = read_text (path);
  if (s)
    s[strcspn (s, "\n")] = '\0';
  CHECK_STR (s, want);
}

static int
mounts_under (const char *dir)
{
  cleanup_free char *mi = read_text ("/proc/self/mountinfo");
  int n = 0;
  if (mi == NULL)
    return -1;
  cleanup_free char *needle = skiff_strdup_printf (" %s", dir);
  for (char *p = mi; (p = strstr (p, needle)); p++)
    n++;
  return n;
}

int
main (void)
{
  crun = getenv ("SKIFF_CRUN") ? getenv ("SKIFF_CRUN") : "/usr/bin/crun";
  if (geteuid () != 0 || access (crun, X_OK) < 0 || access ("/bin/busybox", X_OK) < 0)
    {
      printf ("skip: test_runtime_live needs root, %s and /bin/busybox (busybox-static)\n", crun);
      printf ("%s: 0 passed, 0 failed\n", __FILE__);
      return 0;
    }
  skiff_error_t err = NULL;
  runtime_config_t cfg = { crun, SHIFT, 65536 };
  runtime_host_t host;
  cleanup_free char *report = NULL;
  int64_t t0 = skiff_monotonic_ns ();
  if (runtime_prepare_host (&cfg, &host, &report, &err) < 0)
    {
      die_err ("runtime_prepare_host", &err);
      TEST_MAIN_END ();
    }
  printf ("runtime_prepare_host: %.2f ms\n%s", (skiff_monotonic_ns () - t0) / 1e6, report);
  CHECK (host.cgroup_version == 1 || host.cgroup_version == 2);
  CHECK (host.nofile_hard > 0);
  /* idempotent */
  CHECK (runtime_prepare_host (&cfg, &host, NULL, &err) == 0);

  if (mkdtemp (tmp) == NULL)
    {
      perror ("mkdtemp");
      return 1;
    }
  chmod (tmp, 0755);
  char hex[9];
  skiff_random_hex (hex, 4);
  snprintf (group_cg, sizeof group_cg, "/skiff/rt-test-%s", hex);
  crun_root = skiff_strdup_printf ("%s/crun", tmp);
  cleanup_free char *layers = skiff_strdup_printf ("%s/layers", tmp);
  cleanup_free char *l1 = skiff_strdup_printf ("%s/l1", layers);
  cleanup_free char *l2 = skiff_strdup_printf ("%s/l2", layers);
  cleanup_free char *gdir = skiff_strdup_printf ("%s/g1", tmp);
  cleanup_free char *ns_dir = skiff_strdup_printf ("%s/ns", gdir);
  mkdir (layers, 0755);
  mkdir (gdir, 0755);
  CHECK (build_layers (l1, l2) == 0);

  /* pinning: timed, released and pinned again */
  int64_t times[21];
  for (int i = 0; i < 21; i++)
    {
      int64_t s = skiff_monotonic_ns ();
      int r = runtime_pin_namespaces (&cfg, ns_dir, "skiff-g1", &err);
      times[i] = skiff_monotonic_ns () - s;
      if (r < 0)
        {
          die_err ("runtime_pin_namespaces", &err);
          break;
        }
      if (i < 20 && runtime_release_namespaces (ns_dir, &err) < 0)
        die_err ("runtime_release_namespaces", &err);
    }
  qsort (times, 21, sizeof times[0], cmp_i64);
  printf ("runtime_pin_namespaces (21 runs): min %.3f ms, median %.3f ms, max %.3f ms\n", times[0] / 1e6,
          times[10] / 1e6, times[20] / 1e6);
  CHECK (times[10] < 20 * 1000 * 1000);
  int64_t s = skiff_monotonic_ns ();
  CHECK (runtime_pin_namespaces (&cfg, ns_dir, "other-name", &err) == 0); /* already pinned: no-op */
  printf ("runtime_pin_namespaces when already pinned: %.3f ms\n", (skiff_monotonic_ns () - s) / 1e6);
  /* the pinned net, ipc and uts namespaces belong to the pinned user namespace */
  {
    struct stat user_st;
    cleanup_free char *user_pin = skiff_strdup_printf ("%s/user", ns_dir);
    CHECK (stat (user_pin, &user_st) == 0);
    static const char *const owned[] = { "net", "ipc", "uts" };
    for (int i = 0; i < 3; i++)
      {
        cleanup_free char *pin = skiff_strdup_printf ("%s/%s", ns_dir, owned[i]);
        cleanup_close int fd = open (pin, O_RDONLY | O_CLOEXEC);
        cleanup_close int owner = fd >= 0 ? ioctl (fd, NS_GET_USERNS) : -1;
        struct stat owner_st;
        CHECK (owner >= 0 && fstat (owner, &owner_st) == 0 && owner_st.st_ino == user_st.st_ino
               && owner_st.st_dev == user_st.st_dev);
      }
  }

  /* rootfs of a: the two layers; rootfs of b: the same plus many empty layers on top
   * with long names, too long for absolute lowerdir paths */
  cleanup_free char *cdir_a = skiff_strdup_printf ("%s/c-a", gdir);
  cleanup_free char *cdir_b = skiff_strdup_printf ("%s/c-b", gdir);
  const char *la[] = { l1, l2, NULL };
  const char *lb[N_EXTRA_LAYERS + 3];
  char *extra[N_EXTRA_LAYERS];
  lb[0] = l1;
  lb[1] = l2;
  for (int i = 0; i < N_EXTRA_LAYERS; i++)
    {
      char h[65];
      skiff_random_hex (h, 32);
      extra[i] = skiff_strdup_printf ("%s/%s", layers, h);
      mkdir_owned (extra[i], 0755);
      lb[i + 2] = extra[i];
    }
  lb[N_EXTRA_LAYERS + 2] = NULL;
  s = skiff_monotonic_ns ();
  if (runtime_mount_rootfs (&cfg, la, cdir_a, &err) < 0)
    die_err ("mount rootfs a", &err);
  printf ("runtime_mount_rootfs (2 layers): %.3f ms\n", (skiff_monotonic_ns () - s) / 1e6);
  s = skiff_monotonic_ns ();
  if (runtime_mount_rootfs (&cfg, lb, cdir_b, &err) < 0)
    die_err ("mount rootfs b (long lowerdir)", &err);
  printf ("runtime_mount_rootfs (%d layers, relative lowerdir): %.3f ms\n", N_EXTRA_LAYERS + 2,
          (skiff_monotonic_ns () - s) / 1e6);
  CHECK (runtime_mount_rootfs (&cfg, la, cdir_a, &err) == 0); /* idempotent */
  {
    struct stat st;
    cleanup_free char *up = skiff_strdup_printf ("%s/upper", cdir_a);
    CHECK (stat (up, &st) == 0 && st.st_uid == SHIFT && st.st_gid == SHIFT);
    cleanup_free char *f = skiff_strdup_printf ("%s/rootfs/etc/layer2.txt", cdir_b);
    CHECK (access (f, R_OK) == 0);
  }

  const char *script_a = "echo uid=$(id -u); echo hostname=$(hostname); "
                         "echo mq=$(grep ' /dev/mqueue ' /proc/self/mountinfo | cut -d' ' -f3); "
                         /* nc's stdin never ends (a fifo held open read-write): at EOF it would
                            shut its side down, and b's nc, seeing that before its own stdin, could
                            quit unsent */
                         "mkfifo /tmp/in; exec 3<>/tmp/in; nc -l -p 8080 <&3 > /tmp/got; "
                         "echo got=$(cat /tmp/got)";
  const char *script_b
      = "echo uid=$(id -u); set -- $(cat /proc/self/uid_map); echo uidmap=$1 $2 $3; echo hostname=$(hostname); "
        "grep CapBnd /proc/self/status; grep '^Seccomp:' /proc/self/status; grep NoNewPrivs /proc/self/status; "
        "if [ -e /proc/kcore ]; then echo kcore=$(wc -c < /proc/kcore); else echo kcore=0; fi; "
        "echo keys=$(wc -c < /proc/keys); echo firmware=$(ls /sys/firmware | wc -l); "
        "echo sysmount=$(grep ' /sys ' /proc/self/mountinfo | head -1); "
        "grep -q ' /proc/sys ro' /proc/self/mountinfo && echo procsys=ro; "
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo procsys-write=denied; "
        "echo layer2=$(cat /etc/layer2.txt); "
        "echo mq=$(grep ' /dev/mqueue ' /proc/self/mountinfo | cut -d' ' -f3); "
        "echo sysnet=$(ls /sys/class/net | tr '\\n' ' '); "
        "echo sysdev=$(grep ' /sys ' /proc/self/mountinfo | cut -d' ' -f3); "
        "unshare -n true 2>/dev/null && echo unshare=allowed || echo unshare=denied; "
        "touch /written-by-b && echo write=ok; "
        "httpd -p 80 -h /tmp && echo lowport=ok; "
        "for i in $(seq 1 100); do echo hello-from-b | nc 127.0.0.1 8080 2>/dev/null && echo sent=ok && break; "
        "sleep 0.05; done";
  const char *const env[] = { "PATH=/bin", "HOME=/root", NULL };
  struct
  {
    const char *id, *cdir, *script;
  } c[2] = { { NULL, cdir_a, script_a }, { NULL, cdir_b, script_b } };
  char id_a[32], id_b[32];
  snprintf (id_a, sizeof id_a, "rt-%s-a", hex);
  snprintf (id_b, sizeof id_b, "rt-%s-b", hex);
  c[0].id = id_a;
  c[1].id = id_b;
  char *bundles[2];
  for (int i = 0; i < 2; i++)
    {
      cleanup_free char *rootfs = skiff_strdup_printf ("%s/rootfs", c[i].cdir);
      cleanup_free char *cg = skiff_strdup_printf ("%s/%c", group_cg, 'a' + i);
      const char *args[] = { "/bin/sh", "-c", c[i].script, NULL };
      runtime_bundle_spec_t spec = { .args = args,
                                     .env = env,
                                     .cwd = "/",
                                     .rootfs = rootfs,
                                     .ns_dir = ns_dir,
                                     .cgroup_path = cg,
                                     .cpu_limit = 0.5,
                                     .memory_limit = 64 << 20,
                                     .pids_limit = 100 };
      bundles[i] = skiff_strdup_printf ("%s/bundle", c[i].cdir);
      if (runtime_write_bundle (&cfg, &host, &spec, bundles[i], &err) < 0)
        die_err ("runtime_write_bundle", &err);
    }

  /* a: in the background */
  cleanup_free char *out_a_path = skiff_strdup_printf ("%s/a.out", tmp);
  int fd_a = open (out_a_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const char *argv_a[] = { crun, "--root", crun_root, "run", "--bundle", bundles[0], id_a, NULL };
  s = skiff_monotonic_ns ();
  pid_t pa = spawn_runtime (argv_a, fd_a);
  close (fd_a);
  CHECK (pa > 0);
  long cpid = 0;
  for (int i = 0; i < 400 && pa > 0 && (cpid = container_pid (id_a)) == 0; i++)
    usleep (5000);
  printf ("container a running after %.1f ms (pid %ld)\n", (skiff_monotonic_ns () - s) / 1e6, cpid);
  CHECK (cpid > 0);
  if (cpid > 0)
    {
      cleanup_free char *sp = skiff_strdup_printf ("/proc/%ld/status", cpid);
      cleanup_free char *st = read_text (sp);
      CHECK (st && strstr (st, "\nUid:\t100000\t100000\t100000\t100000\n"));
      CHECK (st && strstr (st, "\nGid:\t100000\t100000\t100000\t100000\n"));
      cleanup_free char *memdir = NULL;
      cleanup_free char *cg = skiff_strdup_printf ("%s/a", group_cg);
      CHECK (runtime_memory_cgroup_dir (&host, cg, &memdir, &err) == 0);
      if (host.cgroup_version == 1)
        {
          cleanup_free char *p1 = skiff_strdup_printf ("%s/memory.limit_in_bytes", memdir);
          check_file_eq (p1, "67108864");
          if (host.swap_accounting)
            {
              cleanup_free char *p2 = skiff_strdup_printf ("%s/memory.memsw.limit_in_bytes", memdir);
              check_file_eq (p2, "67108864");
            }
          cleanup_free char *p3 = skiff_strdup_printf ("/sys/fs/cgroup/cpu%s/cpu.cfs_quota_us", cg);
          check_file_eq (p3, "50000");
          cleanup_free char *p4 = skiff_strdup_printf ("/sys/fs/cgroup/cpu%s/cpu.cfs_period_us", cg);
          check_file_eq (p4, "100000");
          cleanup_free char *p5 = skiff_strdup_printf ("/sys/fs/cgroup/pids%s/pids.max", cg);
          check_file_eq (p5, "100");
        }
      else
        {
          cleanup_free char *p1 = skiff_strdup_printf ("%s/memory.max", memdir);
          check_file_eq (p1, "67108864");
          cleanup_free char *p3 = skiff_strdup_printf ("%s/cpu.max", memdir);
          check_file_eq (p3, "50000 100000");
          cleanup_free char *p5 = skiff_strdup_printf ("%s/pids.max", memdir);
          check_file_eq (p5, "100");
        }
    }

  /* b: in the foreground, talks to a over the shared loopback */
  const char *argv_b[] = { crun, "--root", crun_root, "run", "--bundle", bundles[1], id_b, NULL };
  cleanup_free char *out_b = NULL;
  int st_b = -1;
  s = skiff_monotonic_ns ();
  if (runtime_run_capture (argv_b, &out_b, &st_b, &err) < 0)
    die_err ("crun run b", &err);
  printf ("container b ran in %.1f ms, exit %d\n--- b ---\n%s", (skiff_monotonic_ns () - s) / 1e6, st_b,
          out_b ? out_b : "");
  CHECK (st_b == 0);
  int st_a = -1;
  if (pa > 0)
    {
      for (int i = 0; i < 500; i++)
        {
          pid_t r = waitpid (pa, &st_a, WNOHANG);
          if (r == pa)
            break;
          if (i == 499)
            {
              fprintf (stderr, "container a did not finish: killing it\n");
              skiff_error_t e2 = NULL;
              runtime_force_delete (&cfg, crun_root, id_a, &e2);
              skiff_error_release (&e2);
              waitpid (pa, &st_a, 0);
            }
          usleep (10000);
        }
    }
  cleanup_free char *out_a = read_text (out_a_path);
  printf ("--- a ---\n%s", out_a ? out_a : "");
  CHECK (WIFEXITED (st_a) && WEXITSTATUS (st_a) == 0);
  if (out_b)
    {
      CHECK (strstr (out_b, "uid=0\n") != NULL);
      CHECK (strstr (out_b, "uidmap=0 100000 65536\n") != NULL);
      CHECK (strstr (out_b, "hostname=skiff-g1\n") != NULL);
      CHECK (strstr (out_b, "CapBnd:\t00000000a80425fb\n") != NULL);
      CHECK (strstr (out_b, "Seccomp:\t2\n") != NULL);
      CHECK (strstr (out_b, "NoNewPrivs:\t1\n") != NULL);
      CHECK (strstr (out_b, "kcore=0\n") != NULL);
      CHECK (strstr (out_b, "keys=0\n") != NULL);
      CHECK (strstr (out_b, "firmware=0\n") != NULL);
      CHECK (strstr (out_b, "procsys=ro\n") != NULL);
      CHECK (strstr (out_b, "procsys-write=denied\n") != NULL);
      CHECK (strstr (out_b, "layer2=from-layer-2\n") != NULL);
      CHECK (strstr (out_b, "unshare=denied\n") != NULL);
      CHECK (strstr (out_b, "write=ok\n") != NULL);
      CHECK (strstr (out_b, "lowport=ok\n") != NULL); /* port 80 bindable in the group netns */
      CHECK (strstr (out_b, "sent=ok\n") != NULL);
    }
  if (out_a)
    {
      CHECK (strstr (out_a, "uid=0\n") != NULL);
      CHECK (strstr (out_a, "hostname=skiff-g1\n") != NULL);
      CHECK (strstr (out_a, "got=hello-from-b\n") != NULL);
    }
  /* b wrote into its upper dir as container root = host 100000 */
  {
    cleanup_free char *w = skiff_strdup_printf ("%s/upper/written-by-b", cdir_b);
    struct stat st;
    CHECK (stat (w, &st) == 0 && st.st_uid == SHIFT);
  }

  /* /dev/mqueue: a and b (joined ipc ns) see the same mqueue instance, a container with
   * its own ipc namespace another one */
  {
    cleanup_free char *rootfs = skiff_strdup_printf ("%s/rootfs", cdir_a);
    cleanup_free char *cg = skiff_strdup_printf ("%s/own", group_cg);
    const char *args[] = { "/bin/sh", "-c",
                           "echo mq=$(grep ' /dev/mqueue ' /proc/self/mountinfo | cut -d' ' -f3); hostname; "
                           "echo sysdev=$(grep ' /sys ' /proc/self/mountinfo | cut -d' ' -f3); "
                           "echo sysnet=$(ls /sys/class/net | tr '\\n' ' ')",
                           NULL };
    runtime_bundle_spec_t spec = { .args = args, .rootfs = rootfs, .cgroup_path = cg, .hostname = "own-uts" };
    cleanup_free char *bdir = skiff_strdup_printf ("%s/bundle-own", cdir_a);
    if (runtime_write_bundle (&cfg, &host, &spec, bdir, &err) < 0)
      die_err ("write bundle with own namespaces", &err);
    char id_own[32];
    snprintf (id_own, sizeof id_own, "rt-%s-own", hex);
    const char *argv[] = { crun, "--root", crun_root, "run", "--bundle", bdir, id_own, NULL };
    cleanup_free char *out = NULL;
    int st = -1;
    if (runtime_run_capture (argv, &out, &st, &err) < 0)
      die_err ("crun run own", &err);
    printf ("--- own namespaces ---\n%s", out ? out : "");
    CHECK (st == 0);
    CHECK (out && strstr (out, "own-uts\n"));
    char *mq_a = out_a ? strstr (out_a, "mq=") : NULL;
    char *mq_b = out_b ? strstr (out_b, "mq=") : NULL;
    char *mq_o = out ? strstr (out, "mq=") : NULL;
    CHECK (mq_a && mq_b && mq_o);
    if (mq_a && mq_b && mq_o)
      {
        size_t la_ = strcspn (mq_a, "\n");
        CHECK (la_ > 4 && strncmp (mq_a, mq_b, la_ + 1) == 0);
        CHECK (strncmp (mq_a, mq_o, la_ + 1) != 0);
      }
    /* sysfs: a fresh instance, in the group's netns (owned by the group's userns, which the
     * container joins) as in a netns of the container's own; never the host's /sys */
    struct stat sys_st;
    char host_sys[64] = "";
    if (stat ("/sys", &sys_st) == 0)
      snprintf (host_sys, sizeof host_sys, "sysdev=%u:%u", major (sys_st.st_dev), minor (sys_st.st_dev));
    CHECK (out_b && !strstr (out_b, host_sys));
    CHECK (out_b && strstr (out_b, "sysnet=lo\n"));
    CHECK (out && !strstr (out, host_sys));
    CHECK (out && strstr (out, "sysnet=lo\n"));
    CHECK (runtime_force_delete (&cfg, crun_root, id_own, &err) == 0);
  }

  /* clean-up */
  CHECK (runtime_force_delete (&cfg, crun_root, id_a, &err) == 0);
  CHECK (runtime_force_delete (&cfg, crun_root, id_b, &err) == 0);
  CHECK (runtime_force_delete (&cfg, crun_root, "never-existed", &err) == 0);
  if (err)
    die_err ("force delete", &err);
  for (int i = 0; i < 2; i++)
    {
      if (runtime_unmount_rootfs (c[i].cdir, 1, &err) < 0)
        die_err ("runtime_unmount_rootfs", &err);
      free (bundles[i]);
    }
  if (runtime_release_namespaces (ns_dir, &err) < 0)
    die_err ("runtime_release_namespaces", &err);
  CHECK (runtime_release_namespaces (ns_dir, &err) == 0); /* missing is fine */
  s = skiff_monotonic_ns ();
  if (runtime_remove_cgroups (&host, group_cg, &err) < 0)
    die_err ("runtime_remove_cgroups", &err);
  printf ("runtime_remove_cgroups: %.3f ms\n", (skiff_monotonic_ns () - s) / 1e6);
  CHECK (runtime_remove_cgroups (&host, group_cg, &err) == 0); /* missing is fine */
  CHECK (runtime_remove_cgroups (&host, "/", &err) < 0);
  skiff_error_release (&err);
  {
    cleanup_free char *m = NULL;
    runtime_memory_cgroup_dir (&host, group_cg, &m, &err);
    CHECK (m && access (m, F_OK) < 0 && errno == ENOENT);
    cleanup_free char *p = skiff_strdup_printf ("/sys/fs/cgroup/pids%s", group_cg);
    CHECK (host.cgroup_version == 2 || (access (p, F_OK) < 0 && errno == ENOENT));
  }
  CHECK (mounts_under (tmp) == 0);
  {
    cleanup_free char *up = skiff_strdup_printf ("%s/upper", cdir_a);
    CHECK (access (up, F_OK) < 0);
  }
  for (int i = 0; i < N_EXTRA_LAYERS; i++)
    free (extra[i]);
  if (skiff_rm_rf (tmp, &err) < 0)
    die_err ("rm -rf tmp", &err);
  free (crun_root);
  TEST_MAIN_END ();
}
