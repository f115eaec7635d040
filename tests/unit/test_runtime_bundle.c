/* test_runtime_bundle.c - the OCI config.json written for a container: capabilities,
 * masks, id mappings, limits, seccomp, rlimits, namespaces. Pure: needs no root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "runtime/runtime.h"
#include "test.h"

static int
strv_has (json_t *arr, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach (arr, i, v)
  {
    if (json_is_string (v) && strcmp (json_string_value (v), s) == 0)
      return 1;
  }
  return 0;
}

static json_t *
find_by (json_t *arr, const char *key, const char *val)
{
  size_t i;
  json_t *v;
  json_array_foreach (arr, i, v)
  {
    const char *s = json_string_value (json_object_get (v, key));
    if (s && strcmp (s, val) == 0)
      return v;
  }
  return NULL;
}

static const char *const docker_caps[] = {
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
  NULL,
};

static void
test_full_spec (void)
{
  skiff_error_t err = NULL;
  runtime_config_t cfg = { "/usr/bin/crun", 100000, 65536 };
  runtime_host_t host = { .cgroup_version = 1, .nofile_hard = 20000, .nproc_hard = 32768, .swap_accounting = 1 };
  const char *args[] = { "/bin/httpd", "-f", "-p", "80", NULL };
  const char *env[] = { "PATH=/bin", "A=b=c", NULL };
  runtime_bundle_spec_t spec = { .args = args,
                                 .env = env,
                                 .cwd = "/www",
                                 .uid = 1000,
                                 .gid = 1001,
                                 .rootfs = "/var/lib/skiff/groups/g/c/rootfs",
                                 .ns_dir = "/var/lib/skiff/groups/g/ns",
                                 .cgroup_path = "/skiff/g/c",
                                 .cpu_limit = 1.5,
                                 .memory_limit = 1536LL << 20,
                                 .pids_limit = 4096,
                                 .hostname = "ignored",
                                 .readonly_rootfs = 1,
                                 .resolv_conf = "/var/lib/skiff/groups/g/resolv.conf",
                                 .hosts = "/var/lib/skiff/groups/g/hosts",
                                 .hostname_file = "/var/lib/skiff/groups/g/hostname" };

  /* through the file, as the runtime reads it */
  char dir[] = "/tmp/skiff-bundle-XXXXXX";
  CHECK (mkdtemp (dir) != NULL);
  cleanup_free char *bdir = skiff_strdup_printf ("%s/bundle", dir);
  CHECK (runtime_write_bundle (&cfg, &host, &spec, bdir, &err) == 0);
  cleanup_free char *path = skiff_strdup_printf ("%s/config.json", bdir);
  json_error_t jerr;
  cleanup_json json_t *j = json_load_file (path, 0, &jerr);
  CHECK (j != NULL);
  if (j == NULL)
    return;

  CHECK_STR (json_string_value (json_object_get (j, "ociVersion")), "1.0.2");
  CHECK (json_object_get (j, "hostname") == NULL); /* uts ns is joined */

  json_t *root = json_object_get (j, "root");
  CHECK_STR (json_string_value (json_object_get (root, "path")), spec.rootfs);
  CHECK (json_is_true (json_object_get (root, "readonly")));

  json_t *proc = json_object_get (j, "process");
  CHECK (json_is_false (json_object_get (proc, "terminal")));
  CHECK (json_is_true (json_object_get (proc, "noNewPrivileges")));
  CHECK_STR (json_string_value (json_object_get (proc, "cwd")), "/www");
  CHECK (json_integer_value (json_object_get (json_object_get (proc, "user"), "uid")) == 1000);
  CHECK (json_integer_value (json_object_get (json_object_get (proc, "user"), "gid")) == 1001);
  json_t *a = json_object_get (proc, "args");
  CHECK (json_array_size (a) == 4);
  CHECK_STR (json_string_value (json_array_get (a, 0)), "/bin/httpd");
  CHECK_STR (json_string_value (json_array_get (a, 3)), "80");
  CHECK (json_array_size (json_object_get (proc, "env")) == 2);
  CHECK (strv_has (json_object_get (proc, "env"), "A=b=c"));

  /* capabilities: docker's 14 in bounding/effective/permitted, none ambient/inheritable */
  json_t *caps = json_object_get (proc, "capabilities");
  const char *sets[] = { "bounding", "effective", "permitted" };
  for (int s = 0; s < 3; s++)
    {
      json_t *set = json_object_get (caps, sets[s]);
      CHECK (json_array_size (set) == 14);
      for (int i = 0; docker_caps[i]; i++)
        CHECK (strv_has (set, docker_caps[i]));
      CHECK (!strv_has (set, "CAP_SYS_ADMIN"));
      CHECK (!strv_has (set, "CAP_SYS_RESOURCE"));
      CHECK (!strv_has (set, "CAP_NET_ADMIN"));
    }
  CHECK (json_object_get (caps, "ambient") == NULL);
  CHECK (json_object_get (caps, "inheritable") == NULL);

  /* rlimits: nothing above the host's hard limits */
  json_t *rl = json_object_get (proc, "rlimits");
  size_t i;
  json_t *v;
  int have_nofile = 0;
  json_array_foreach (rl, i, v)
  {
    const char *type = json_string_value (json_object_get (v, "type"));
    json_int_t hard = json_integer_value (json_object_get (v, "hard"));
    json_int_t soft = json_integer_value (json_object_get (v, "soft"));
    CHECK (soft <= hard);
    if (type && strcmp (type, "RLIMIT_NOFILE") == 0)
      {
        have_nofile = 1;
        CHECK (hard == 20000);
      }
    else if (type && strcmp (type, "RLIMIT_NPROC") == 0)
      CHECK (hard <= 32768);
    else
      CHECK (!"unexpected rlimit");
  }
  CHECK (have_nofile);

  /* mounts */
  json_t *mounts = json_object_get (j, "mounts");
  const char *dests[] = { "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", NULL };
  for (int k = 0; dests[k]; k++)
    CHECK (find_by (mounts, "destination", dests[k]) != NULL);
  json_t *sys = find_by (mounts, "destination", "/sys");
  CHECK (strv_has (json_object_get (sys, "options"), "ro"));
  /* a fresh sysfs: the joined netns belongs to the joined (group's) user namespace */
  CHECK_STR (json_string_value (json_object_get (sys, "type")), "sysfs");
  CHECK (!strv_has (json_object_get (sys, "options"), "rbind"));
  CHECK (strv_has (json_object_get (find_by (mounts, "destination", "/sys/fs/cgroup"), "options"), "ro"));
  json_t *rc = find_by (mounts, "destination", "/etc/resolv.conf");
  CHECK_STR (json_string_value (json_object_get (rc, "source")), spec.resolv_conf);
  CHECK_STR (json_string_value (json_object_get (rc, "type")), "bind");
  CHECK (strv_has (json_object_get (rc, "options"), "rbind"));
  CHECK_STR (json_string_value (json_object_get (find_by (mounts, "destination", "/etc/hosts"), "source")), spec.hosts);
  CHECK_STR (json_string_value (json_object_get (find_by (mounts, "destination", "/etc/hostname"), "source")),
             spec.hostname_file);

  json_t *lx = json_object_get (j, "linux");
  /* id mappings */
  const char *maps[] = { "uidMappings", "gidMappings" };
  for (int m = 0; m < 2; m++)
    {
      json_t *mp = json_object_get (lx, maps[m]);
      CHECK (json_array_size (mp) == 1);
      json_t *e = json_array_get (mp, 0);
      CHECK (json_integer_value (json_object_get (e, "containerID")) == 0);
      CHECK (json_integer_value (json_object_get (e, "hostID")) == 100000);
      CHECK (json_integer_value (json_object_get (e, "size")) == 65536);
    }

  /* namespaces: new pid/mount/cgroup, joined user/network/ipc/uts */
  json_t *ns = json_object_get (lx, "namespaces");
  CHECK (json_array_size (ns) == 7);
  const char *fresh[] = { "pid", "mount", "cgroup" };
  for (int k = 0; k < 3; k++)
    {
      json_t *n = find_by (ns, "type", fresh[k]);
      CHECK (n != NULL && json_object_get (n, "path") == NULL);
    }
  CHECK_STR (json_string_value (json_object_get (find_by (ns, "type", "user"), "path")),
             "/var/lib/skiff/groups/g/ns/user");
  CHECK_STR (json_string_value (json_object_get (find_by (ns, "type", "network"), "path")),
             "/var/lib/skiff/groups/g/ns/net");
  CHECK_STR (json_string_value (json_object_get (find_by (ns, "type", "ipc"), "path")),
             "/var/lib/skiff/groups/g/ns/ipc");
  CHECK_STR (json_string_value (json_object_get (find_by (ns, "type", "uts"), "path")),
             "/var/lib/skiff/groups/g/ns/uts");

  /* masked and read-only paths */
  json_t *masked = json_object_get (lx, "maskedPaths");
  const char *mk[] = { "/proc/kcore", "/proc/keys", "/proc/timer_list",    "/proc/sched_debug", "/sys/firmware",
                       "/proc/scsi",  "/proc/acpi", "/proc/latency_stats", "/proc/timer_stats", NULL };
  for (int k = 0; mk[k]; k++)
    CHECK (strv_has (masked, mk[k]));
  json_t *ro = json_object_get (lx, "readonlyPaths");
  const char *rk[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL };
  for (int k = 0; rk[k]; k++)
    CHECK (strv_has (ro, rk[k]));

  /* resources */
  json_t *res = json_object_get (lx, "resources");
  json_t *mem = json_object_get (res, "memory");
  CHECK (json_integer_value (json_object_get (mem, "limit")) == 1536LL << 20);
  CHECK (json_integer_value (json_object_get (mem, "swap")) == 1536LL << 20);
  json_t *cpu = json_object_get (res, "cpu");
  CHECK (json_integer_value (json_object_get (cpu, "quota")) == 150000);
  CHECK (json_integer_value (json_object_get (cpu, "period")) == 100000);
  CHECK (json_integer_value (json_object_get (json_object_get (res, "pids"), "limit")) == 4096);
  json_t *dev = json_array_get (json_object_get (res, "devices"), 0);
  CHECK (json_is_false (json_object_get (dev, "allow")));
  CHECK_STR (json_string_value (json_object_get (dev, "access")), "rwm");
  CHECK_STR (json_string_value (json_object_get (lx, "cgroupsPath")), "/skiff/g/c");

  /* seccomp */
  json_t *sc = json_object_get (lx, "seccomp");
  CHECK_STR (json_string_value (json_object_get (sc, "defaultAction")), "SCMP_ACT_ERRNO");
  CHECK (json_integer_value (json_object_get (sc, "defaultErrnoRet")) == EPERM);
  json_t *arches = json_object_get (sc, "architectures");
  CHECK (strv_has (arches, "SCMP_ARCH_X86_64") && strv_has (arches, "SCMP_ARCH_X86")
         && strv_has (arches, "SCMP_ARCH_X32"));
  int allow_read = 0, allow_mount = 0, allow_ptrace = 0, clone_cond = 0, clone3_enosys = 0, allow_kexec = 0;
  json_t *rule;
  json_array_foreach (json_object_get (sc, "syscalls"), i, rule)
  {
    const char *action = json_string_value (json_object_get (rule, "action"));
    json_t *names = json_object_get (rule, "names");
    json_t *args_ = json_object_get (rule, "args");
    if (action && strcmp (action, "SCMP_ACT_ALLOW") == 0)
      {
        if (strv_has (names, "read") && args_ == NULL)
          allow_read = 1;
        if (strv_has (names, "mount") || strv_has (names, "umount2") || strv_has (names, "unshare")
            || strv_has (names, "setns") || strv_has (names, "bpf") || strv_has (names, "init_module"))
          allow_mount = 1;
        if (strv_has (names, "kexec_load") || strv_has (names, "reboot") || strv_has (names, "swapon"))
          allow_kexec = 1;
        if (strv_has (names, "ptrace"))
          allow_ptrace = 1;
        if (strv_has (names, "clone"))
          {
            json_t *c0 = json_array_get (args_, 0);
            clone_cond = json_array_size (args_) == 1
                         && strcmp (json_string_value (json_object_get (c0, "op")), "SCMP_CMP_MASKED_EQ") == 0
                         && json_integer_value (json_object_get (c0, "value")) == 0x7E020000
                         && json_integer_value (json_object_get (c0, "valueTwo")) == 0;
          }
      }
    if (action && strcmp (action, "SCMP_ACT_ERRNO") == 0 && strv_has (names, "clone3"))
      clone3_enosys = json_integer_value (json_object_get (rule, "errnoRet")) == ENOSYS;
  }
  CHECK (allow_read);
  CHECK (!allow_mount);
  CHECK (!allow_kexec);
  CHECK (allow_ptrace); /* docker allows it on kernels >= 4.8 */
  CHECK (clone_cond);
  CHECK (clone3_enosys);

  skiff_error_t e2 = NULL;
  skiff_rm_rf (dir, &e2);
  skiff_error_release (&e2);
}

static void
test_variants (void)
{
  skiff_error_t err = NULL;
  runtime_config_t cfg = { NULL, 200000, 65536 };
  runtime_host_t host = { .cgroup_version = 2, .nofile_hard = 4096, .swap_accounting = 0 };
  const char *args[] = { "/bin/sh", NULL };

  /* own namespaces, hostname, no limits, no swap accounting */
  runtime_bundle_spec_t spec = { .args = args, .rootfs = "/r", .hostname = "h1", .memory_limit = 1 << 20 };
  cleanup_json json_t *j = NULL;
  CHECK (runtime_build_spec (&cfg, &host, &spec, &j, &err) == 0);
  CHECK_STR (json_string_value (json_object_get (j, "hostname")), "h1");
  json_t *lx = json_object_get (j, "linux");
  json_t *ns = json_object_get (lx, "namespaces");
  CHECK (json_array_size (ns) == 7);
  json_t *m_sys = find_by (json_object_get (j, "mounts"), "destination", "/sys");
  CHECK_STR (json_string_value (json_object_get (m_sys, "type")), "sysfs");
  CHECK (find_by (json_object_get (j, "mounts"), "destination", "/dev/mqueue") != NULL);
  json_t *net = find_by (ns, "type", "network");
  CHECK (net && json_object_get (net, "path") == NULL);
  json_t *res = json_object_get (lx, "resources");
  CHECK (json_object_get (json_object_get (res, "memory"), "swap") == NULL);
  CHECK (json_object_get (res, "cpu") == NULL);
  CHECK (json_object_get (res, "pids") == NULL);
  CHECK (json_object_get (lx, "cgroupsPath") == NULL);
  CHECK (json_integer_value (json_object_get (json_array_get (json_object_get (lx, "uidMappings"), 0), "hostID"))
         == 200000);
  json_t *proc = json_object_get (j, "process");
  CHECK_STR (json_string_value (json_object_get (proc, "cwd")), "/");
  CHECK (json_array_size (json_object_get (proc, "env")) == 0);
  CHECK (json_integer_value (json_object_get (json_array_get (json_object_get (proc, "rlimits"), 0), "hard")) == 4096);
  CHECK (json_is_false (json_object_get (json_object_get (j, "root"), "readonly")));

  /* small cpu limits round and respect the kernel minimum */
  json_decref (j);
  j = NULL;
  spec.cpu_limit = 0.001;
  CHECK (runtime_build_spec (&cfg, &host, &spec, &j, &err) == 0);
  CHECK (json_integer_value (json_object_get (
             json_object_get (json_object_get (json_object_get (j, "linux"), "resources"), "cpu"), "quota"))
         == 1000);

  /* invalid input */
  json_t *bad = NULL;
  const char *empty[] = { NULL };
  runtime_bundle_spec_t b1 = { .args = empty, .rootfs = "/r" };
  CHECK (runtime_build_spec (&cfg, &host, &b1, &bad, &err) < 0 && err && err->status == EINVAL);
  skiff_error_release (&err);
  runtime_bundle_spec_t b2 = { .args = args, .rootfs = "relative" };
  CHECK (runtime_build_spec (&cfg, &host, &b2, &bad, &err) < 0);
  skiff_error_release (&err);
  runtime_bundle_spec_t b3 = { .args = args, .rootfs = "/r", .uid = 70000 };
  CHECK (runtime_build_spec (&cfg, &host, &b3, &bad, &err) < 0);
  skiff_error_release (&err);
  runtime_bundle_spec_t b4 = { .args = args, .rootfs = "/r", .memory_limit = -1 };
  CHECK (runtime_build_spec (&cfg, &host, &b4, &bad, &err) < 0);
  skiff_error_release (&err);
  runtime_bundle_spec_t b5 = { .args = args, .rootfs = "/r", .cgroup_path = "/skiff/../etc" };
  CHECK (runtime_build_spec (&cfg, &host, &b5, &bad, &err) < 0);
  skiff_error_release (&err);
  const char *badutf[] = { "/bin/\xff", NULL };
  runtime_bundle_spec_t b6 = { .args = badutf, .rootfs = "/r" };
  CHECK (runtime_build_spec (&cfg, &host, &b6, &bad, &err) < 0);
  skiff_error_release (&err);
  CHECK (bad == NULL);
}

static void
test_runc (void)
{
  skiff_error_t err = NULL;
  runtime_config_t cfg = { "/usr/sbin/runc", 100000, 65536 };
  runtime_host_t host = { .cgroup_version = 1, .nofile_hard = 1024 };
  const char *args[] = { "/bin/sh", NULL };
  runtime_bundle_spec_t spec = { .args = args, .rootfs = "/r", .ns_dir = "/ns" };
  cleanup_json json_t *j = NULL;
  CHECK (runtime_build_spec (&cfg, &host, &spec, &j, &err) == 0);
  /* the group's ipc namespace belongs to the user namespace the container joins: runc mounts
   * its mqueue as crun does (test_runtime_live runs both) */
  CHECK (find_by (json_object_get (j, "mounts"), "destination", "/dev/mqueue") != NULL);
  CHECK_STR (
      json_string_value (json_object_get (find_by (json_object_get (j, "mounts"), "destination", "/sys"), "type")),
      "sysfs");
}

static void
test_seccomp_table (void)
{
  cleanup_json json_t *sc = runtime_seccomp_default ();
  json_t *allow = json_object_get (json_array_get (json_object_get (sc, "syscalls"), 0), "names");
  CHECK (json_array_size (allow) > 300);
  /* no duplicates, nothing dangerous */
  size_t i, k;
  json_t *v, *w;
  int dup = 0;
  json_array_foreach (allow, i, v)
  {
    json_array_foreach (allow, k, w)
    {
      if (k > i && json_equal (v, w))
        dup = 1;
    }
  }
  CHECK (!dup);
  const char *never[] = { "mount",
                          "umount",
                          "umount2",
                          "pivot_root",
                          "unshare",
                          "setns",
                          "kexec_load",
                          "kexec_file_load",
                          "init_module",
                          "finit_module",
                          "delete_module",
                          "bpf",
                          "perf_event_open",
                          "keyctl",
                          "add_key",
                          "request_key",
                          "userfaultfd",
                          "open_by_handle_at",
                          "clone",
                          "clone3",
                          "personality",
                          "syslog",
                          "acct",
                          "settimeofday",
                          "clock_settime",
                          "swapon",
                          "reboot",
                          "iopl",
                          "ioperm",
                          "quotactl",
                          "lookup_dcookie",
                          "vhangup",
                          "fsopen",
                          "fsmount",
                          "move_mount",
                          "open_tree",
                          "io_uring_setup",
                          NULL };
  for (int n = 0; never[n]; n++)
    {
      if (strv_has (allow, never[n]))
        fprintf (stderr, "allowlist has %s\n", never[n]);
      CHECK (!strv_has (allow, never[n]));
    }
}

int
main (void)
{
  test_full_spec ();
  test_variants ();
  test_runc ();
  test_seccomp_table ();
  TEST_MAIN_END ();
}
