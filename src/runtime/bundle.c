/* bundle.c - OCI runtime spec (config.json) for one container. */
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "runtime/runtime_internal.h"

/* docker's default capability set. */
static const char *const default_caps[] = {
  "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
  "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
  "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
  "CAP_KILL",    "CAP_AUDIT_WRITE",
};

/* docker's default masked and read-only paths. */
static const char *const masked_paths[] = {
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

#define CPU_PERIOD 100000

/* Returns 1 when the configured runtime is crun (by the binary's name). */
static int
runtime_is_crun (const runtime_config_t *cfg)
{
  const char *p = runtime_path_or_default (cfg);
  const char *base = strrchr (p, '/');
  base = base ? base + 1 : p;
  return strncmp (base, "crun", 4) == 0;
}

static json_t *
strv_json (const char *const *v, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; n == (size_t)-1 ? v && v[i] : i < n; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

static json_t *
mount_json (const char *dest, const char *type, const char *source, const char *const *opts)
{
  return json_pack ("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source, "options",
                    strv_json (opts, (size_t)-1));
}

/* Returns 1 when v is NULL-terminated valid UTF-8 strings (jansson refuses others),
 * with at least one entry when need_one. */
static int
valid_strv (const char *const *v, int need_one)
{
  if (v == NULL)
    return !need_one;
  if (need_one && v[0] == NULL)
    return 0;
  for (size_t i = 0; v[i]; i++)
    {
      json_t *s = json_string (v[i]);
      if (s == NULL)
        return 0;
      json_decref (s);
    }
  return 1;
}

int
runtime_build_spec (const runtime_config_t *cfg, const runtime_host_t *host, const runtime_bundle_spec_t *spec,
                    json_t **out, skiff_error_t *err)
{
  if (spec == NULL || !valid_strv (spec->args, 1) || spec->args[0][0] == '\0')
    return skiff_error_set (err, EINVAL, "bundle needs a non-empty args[0] and UTF-8 arguments");
  if (!valid_strv (spec->env, 0))
    return skiff_error_set (err, EINVAL, "bundle environment must be UTF-8");
  if (spec->rootfs == NULL || spec->rootfs[0] != '/')
    return skiff_error_set (err, EINVAL, "bundle rootfs must be an absolute path");
  if (spec->extra_mounts && spec->extra_mounts[0])
    return skiff_error_set (err, ENOTSUP, "extra mounts are not supported yet");
  if (spec->cpu_limit < 0 || !isfinite (spec->cpu_limit) || spec->memory_limit < 0 || spec->pids_limit < 0)
    return skiff_error_set (err, EINVAL, "negative resource limit");
  if (spec->cgroup_path && (spec->cgroup_path[0] != '/' || strstr (spec->cgroup_path, "/..")))
    return skiff_error_set (err, EINVAL, "invalid cgroup path `%s`", spec->cgroup_path);
  uint32_t shift, range;
  runtime_id_map (cfg, &shift, &range);
  if (spec->uid >= range || spec->gid >= range)
    return skiff_error_set (err, EINVAL, "user %u:%u is outside the mapped range of %u ids", spec->uid, spec->gid,
                            range);

  /* process */
  json_t *caps = strv_json (default_caps, sizeof default_caps / sizeof default_caps[0]);
  json_t *capabilities = json_pack ("{s:O, s:O, s:O}", "bounding", caps, "effective", caps, "permitted", caps);
  json_decref (caps);
  json_t *rlimits = json_array ();
  if (host && host->nofile_hard > 0)
    {
      /* never above skiffd's own hard limit: root may lack CAP_SYS_RESOURCE */
      json_int_t nofile = host->nofile_hard > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)host->nofile_hard;
      if (nofile > 1048576)
        nofile = 1048576;
      json_array_append_new (rlimits,
                             json_pack ("{s:s, s:I, s:I}", "type", "RLIMIT_NOFILE", "hard", nofile, "soft", nofile));
    }
  json_t *process
      = json_pack ("{s:b, s:{s:I, s:I}, s:o, s:o, s:s, s:o, s:b, s:o}", "terminal", 0, "user", "uid",
                   (json_int_t)spec->uid, "gid", (json_int_t)spec->gid, "args", strv_json (spec->args, (size_t)-1),
                   "env", strv_json (spec->env, (size_t)-1), "cwd", spec->cwd && spec->cwd[0] ? spec->cwd : "/",
                   "capabilities", capabilities, "noNewPrivileges", 1, "rlimits", rlimits);

  /* mounts */
  json_t *mounts = json_array ();
  json_array_append_new (mounts,
                         mount_json ("/proc", "proc", "proc", (const char *[]){ "nosuid", "noexec", "nodev", NULL }));
  json_array_append_new (mounts,
                         mount_json ("/dev", "tmpfs", "tmpfs",
                                     (const char *[]){ "nosuid", "strictatime", "mode=755", "size=65536k", NULL }));
  json_array_append_new (
      mounts, mount_json ("/dev/pts", "devpts", "devpts",
                          (const char *[]){ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", NULL }));
  json_array_append_new (
      mounts, mount_json ("/dev/shm", "tmpfs", "shm",
                          (const char *[]){ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL }));
  /* the group's IPC and network namespaces belong to the group's user namespace, which the
   * container joins: it may mount their mqueue and a fresh sysfs */
  json_array_append_new (
      mounts, mount_json ("/dev/mqueue", "mqueue", "mqueue", (const char *[]){ "nosuid", "noexec", "nodev", NULL }));
  json_array_append_new (
      mounts, mount_json ("/sys", "sysfs", "sysfs", (const char *[]){ "nosuid", "noexec", "nodev", "ro", NULL }));
  json_array_append_new (mounts, mount_json ("/sys/fs/cgroup", "cgroup", "cgroup",
                                             (const char *[]){ "nosuid", "noexec", "nodev", "relatime", "ro", NULL }));
  const char *const bind_ro[] = { "rbind", "ro", "nosuid", "nodev", "noexec", NULL };
  if (spec->resolv_conf)
    json_array_append_new (mounts, mount_json ("/etc/resolv.conf", "bind", spec->resolv_conf, bind_ro));
  if (spec->hosts)
    json_array_append_new (mounts, mount_json ("/etc/hosts", "bind", spec->hosts, bind_ro));
  if (spec->hostname_file)
    json_array_append_new (mounts, mount_json ("/etc/hostname", "bind", spec->hostname_file, bind_ro));

  /* namespaces */
  json_t *namespaces = json_pack ("[{s:s}, {s:s}, {s:s}]", "type", "pid", "type", "mount", "type", "cgroup");
  static const char *const joined[][2]
      = { { "user", "user" }, { "network", "net" }, { "ipc", "ipc" }, { "uts", "uts" } };
  for (size_t i = 0; i < 4; i++)
    {
      if (spec->ns_dir)
        {
          cleanup_free char *p = skiff_strdup_printf ("%s/%s", spec->ns_dir, joined[i][1]);
          json_array_append_new (namespaces, json_pack ("{s:s, s:s}", "type", joined[i][0], "path", p));
        }
      else
        json_array_append_new (namespaces, json_pack ("{s:s}", "type", joined[i][0]));
    }

  /* resources */
  json_t *resources = json_pack ("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm");
  if (spec->memory_limit > 0)
    {
      json_t *mem = json_pack ("{s:I}", "limit", (json_int_t)spec->memory_limit);
      if (!host || host->swap_accounting)
        json_object_set_new (mem, "swap", json_integer (spec->memory_limit));
      json_object_set_new (resources, "memory", mem);
    }
  if (spec->cpu_limit > 0)
    {
      json_int_t quota = (json_int_t)llround (spec->cpu_limit * CPU_PERIOD);
      if (quota < 1000)
        quota = 1000; /* the kernel's minimum quota is 1 ms */
      json_object_set_new (resources, "cpu",
                           json_pack ("{s:I, s:I}", "quota", quota, "period", (json_int_t)CPU_PERIOD));
    }
  if (spec->pids_limit > 0)
    json_object_set_new (resources, "pids", json_pack ("{s:I}", "limit", (json_int_t)spec->pids_limit));

  json_t *mapping = json_pack ("[{s:I, s:I, s:I}]", "containerID", (json_int_t)0, "hostID", (json_int_t)shift, "size",
                               (json_int_t)range);
  json_t *linux_ = json_pack ("{s:O, s:O, s:o, s:o, s:o, s:o, s:o}", "uidMappings", mapping, "gidMappings", mapping,
                              "namespaces", namespaces, "resources", resources, "maskedPaths",
                              strv_json (masked_paths, sizeof masked_paths / sizeof masked_paths[0]), "readonlyPaths",
                              strv_json (readonly_paths, sizeof readonly_paths / sizeof readonly_paths[0]), "seccomp",
                              json_null ());
  json_decref (mapping);
  if (host && host->seccomp_bpf_b64 && runtime_is_crun (cfg))
    json_object_del (linux_, "seccomp"); /* the precompiled filter goes in an annotation */
  else
    json_object_set_new (linux_, "seccomp", runtime_seccomp_default ());
  if (spec->cgroup_path)
    json_object_set_new (linux_, "cgroupsPath", json_string (spec->cgroup_path));

  json_t *root
      = json_pack ("{s:s, s:o, s:{s:s, s:b}, s:o, s:o}", "ociVersion", "1.0.2", "process", process, "root", "path",
                   spec->rootfs, "readonly", spec->readonly_rootfs ? 1 : 0, "mounts", mounts, "linux", linux_);
  if (root == NULL)
    return skiff_error_set (err, ENOMEM, "build OCI spec");
  if (spec->ns_dir == NULL && spec->hostname && spec->hostname[0])
    json_object_set_new (root, "hostname", json_string (spec->hostname));
  if (host && host->seccomp_bpf_b64 && runtime_is_crun (cfg))
    json_object_set_new (root, "annotations", json_pack ("{s:s}", "run.oci.seccomp_bpf_data", host->seccomp_bpf_b64));
  *out = root;
  return 0;
}

int
runtime_write_bundle (const runtime_config_t *cfg, const runtime_host_t *host, const runtime_bundle_spec_t *spec,
                      const char *bundle_dir, skiff_error_t *err)
{
  cleanup_json json_t *root = NULL;
  if (runtime_build_spec (cfg, host, spec, &root, err) < 0)
    return -1;
  if (skiff_mkdir_p (bundle_dir, 0700, err) < 0)
    return -1;
  cleanup_free char *text = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  if (text == NULL)
    return skiff_error_set (err, ENOMEM, "serialize OCI spec");
  cleanup_free char *path = skiff_strdup_printf ("%s/config.json", bundle_dir);
  return skiff_write_file_replace (path, text, strlen (text), 0600, err);
}
