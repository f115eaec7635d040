/* runtime.h - every privileged host operation skiffd needs to run containers with an
 * OCI runtime (crun by default, runc by configuration): host preparation (cgroups,
 * runtime check, limits), per-group pinned namespaces, overlay root filesystems,
 * OCI bundles (config.json), cgroup clean-up and forced deletion of orphans.
 *
 * Decisions (mirrored in docs/decisions.md):
 *
 * - Hybrid cgroup hosts. When /sys/fs/cgroup is a v1 tmpfs of controller hierarchies
 *   and a cgroup2 hierarchy (normally /sys/fs/cgroup/unified) still owns controllers,
 *   crun 1.8 refuses every container ("cgroups in hybrid mode not supported").
 *   runtime_prepare_host() mounts each controller still listed in the cgroup2
 *   cgroup.controllers as its own v1 hierarchy at /sys/fs/cgroup/<ctrl> (remounting the
 *   tmpfs read-write for the mkdir if needed), which empties cgroup2's controller list.
 *   It is idempotent and never undone by skiffd (containers may outlive it). Pure v2
 *   (/sys/fs/cgroup/cgroup.controllers) and pure v1 are detected and left alone.
 *
 * - One user-namespace range for all groups: container id 0 maps to host id_shift
 *   (default 100000), id_range ids (default 65536). Image layers are unpacked with
 *   owners shifted by id_shift, so files are owned by container root and layers can be
 *   shared read-only by every group without idmapped mounts. Groups are isolated from
 *   each other by namespaces, cgroups and the capability/seccomp/mask policy, not by
 *   distinct host uids. Consequence: RLIMIT_NPROC, counted per host uid, is shared by
 *   all containers running as the same container uid; the pids cgroup is the real limit.
 *
 * - Namespaces. A container group shares user, network, IPC and UTS namespaces (ACI
 *   semantics: one IP, localhost between containers, one hostname). These are created once
 *   per group, the network, IPC and UTS ones owned by the group's user namespace, and
 *   pinned by bind mounts under the group's ns folder, so they exist before and between
 *   container starts and survive restarts of single containers and of skiffd; each
 *   container's config.json joins them by path. Each container gets its own pid, mount and
 *   cgroup namespaces (restarting one container never disturbs the others). Because the
 *   container's user namespace owns the netns and the IPC namespace, it mounts a fresh
 *   sysfs (which shows only the group's interfaces, never the host's) and the group's
 *   /dev/mqueue, with crun and runc alike.
 *
 * - Rlimits. root may lack CAP_SYS_RESOURCE (seen on the dev host), so an OCI rlimit
 *   above skiffd's own hard limit makes every start fail. Bundles set RLIMIT_NOFILE
 *   soft = hard = skiffd's hard limit (read at runtime_prepare_host, capped at 1048576) and no other rlimit;
 *   everything else is inherited from the runtime process.
 */
#ifndef SKIFF_RUNTIME_RUNTIME_H
#define SKIFF_RUNTIME_RUNTIME_H

#include <stdint.h>

#include <jansson.h>

#include "common/error.h"

typedef struct
{
  const char *runtime_path;    /* "/usr/bin/crun" (NULL: that default) */
  uint32_t id_shift, id_range; /* user namespace: container 0 -> host id_shift, size id_range (100000, 65536) */
} runtime_config_t;

typedef struct
{
  int cgroup_version;       /* 1 or 2 */
  uint64_t nofile_hard;     /* skiffd's RLIMIT_NOFILE hard limit */
  uint64_t nproc_hard;      /* skiffd's RLIMIT_NPROC hard limit */
  int swap_accounting;      /* memory+swap limit files exist (v1 memory.memsw.*, v2 memory.swap.max) */
  char runtime_version[64]; /* first line of `<runtime> --version` */
  char *seccomp_bpf_b64;    /* the default profile compiled to BPF (crun only), NULL if not; owned */
} runtime_host_t;

/* Compiles a seccomp profile in OCI JSON form (as runtime_seccomp_default returns) to
 * classic BPF with libseccomp, base64-encoded in *b64_out (owned). */
int runtime_seccomp_compile (json_t *profile, char **b64_out, skiff_error_t *err);

/* Makes the host able to run containers, idempotently, at skiffd start: detects the
 * cgroup layout (pure v2, pure v1, or hybrid, in which case controllers still owned by
 * cgroup2 are mounted as v1 hierarchies at /sys/fs/cgroup/<ctrl>), checks that the
 * runtime binary runs (`<runtime> --version`), and reads skiffd's RLIMIT_NOFILE and
 * RLIMIT_NPROC hard limits. Fills *host. When report is non-NULL, *report receives an
 * owned human-readable summary of what was found and done. Needs root. */
int runtime_prepare_host (const runtime_config_t *cfg, runtime_host_t *host, char **report, skiff_error_t *err);

/* Pins a fresh user namespace for a group (container 0 -> host cfg->id_shift, cfg->id_range
 * ids) and the network, IPC and UTS namespaces it owns: creates <ns_dir>/{user,net,ipc,uts}
 * and bind-mounts the new namespaces onto them; the UTS namespace gets `hostname` (may be
 * NULL) and the netns has loopback up. Idempotent: if all four are already pinned, does
 * nothing; a partial set is released and pinned again. Takes about a millisecond. */
int runtime_pin_namespaces (const runtime_config_t *cfg, const char *ns_dir, const char *hostname, skiff_error_t *err);

/* Unmounts (MNT_DETACH) and removes <ns_dir>/{user,net,ipc,uts}; missing ones are fine.
 * Leaves ns_dir itself in place. */
int runtime_release_namespaces (const char *ns_dir, skiff_error_t *err);

/* Mounts an overlay rootfs at <container_dir>/rootfs: lowerdirs are layer_dirs (given
 * LOWEST FIRST, NULL-terminated, at least one), upperdir <container_dir>/upper, workdir
 * <container_dir>/work; upper and work are created owned by id_shift:id_shift (container
 * root). Long lowerdir lists that do not fit the mount option page are mounted with
 * paths relative to the layers' common parent (from a helper thread with its own cwd);
 * beyond that, fails with E2BIG. Idempotent: an existing mount at rootfs is kept. */
int runtime_mount_rootfs (const runtime_config_t *cfg, const char *const *layer_dirs, const char *container_dir,
                          skiff_error_t *err);

/* Unmounts <container_dir>/rootfs (MNT_DETACH) and removes the rootfs folder; removes
 * upper and work too when remove_data. Missing pieces are fine. */
int runtime_unmount_rootfs (const char *container_dir, int remove_data, skiff_error_t *err);

typedef struct
{
  const char *const *args; /* final argv, NULL-terminated, args[0] non-NULL */
  const char *const *env;  /* "K=V", NULL-terminated (NULL: empty) */
  const char *cwd;         /* "/" if NULL */
  uint32_t uid, gid;       /* inside the container */
  const char *rootfs;      /* absolute path of the mounted rootfs */
  const char *ns_dir;      /* pinned namespaces to join (net, ipc, uts); NULL: new ones */
  const char *cgroup_path; /* e.g. "/skiff/<group-id>/<container>" (cgroupsPath), NULL: runtime default */
  double cpu_limit;        /* vCPU, 0 = unlimited; quota = cpu * 100000 per period 100000 */
  int64_t memory_limit;    /* bytes, 0 = unlimited; swap limit = same (no swap) when supported */
  int64_t pids_limit;      /* 0 = unlimited */
  const char *hostname;    /* used only when ns_dir is NULL (new UTS namespace) */
  int readonly_rootfs;
  const char *resolv_conf;         /* host files bind-mounted read-only onto /etc/resolv.conf, */
  const char *hosts;               /* /etc/hosts and /etc/hostname when non-NULL (they must be */
  const char *hostname_file;       /* readable by container root: mode 0644) */
  const char *const *extra_mounts; /* reserved, must be NULL */
} runtime_bundle_spec_t;

/* Builds the OCI runtime spec (1.0.2) for one container as a new JSON object in *out:
 * docker's default capabilities (bounding/effective/permitted), maskedPaths and
 * readonlyPaths, seccomp profile, noNewPrivileges, user namespace mapping 0 -> id_shift,
 * new pid/mount/cgroup/user namespaces and network/ipc/uts joined from ns_dir,
 * memory/cpu/pids limits, RLIMIT_NOFILE = host hard limit. Pure: touches no file. */
int runtime_build_spec (const runtime_config_t *cfg, const runtime_host_t *host, const runtime_bundle_spec_t *spec,
                        json_t **out, skiff_error_t *err);

/* Writes <bundle_dir>/config.json (atomically, mode 0600) from runtime_build_spec();
 * creates bundle_dir if missing. */
int runtime_write_bundle (const runtime_config_t *cfg, const runtime_host_t *host, const runtime_bundle_spec_t *spec,
                          const char *bundle_dir, skiff_error_t *err);

/* Returns a new reference to the default seccomp profile as the OCI linux.seccomp
 * object: default SCMP_ACT_ERRNO (EPERM), arches x86_64/x86/x32, an allowlist equivalent
 * to docker's default profile for docker's default capability set (table in
 * seccomp_default.c). */
json_t *runtime_seccomp_default (void);

/* Removes a group's cgroups (every mounted v1 hierarchy and v2) at group_cgroup_path
 * (e.g. "/skiff/<group-id>") and below, deepest first, after its containers are gone.
 * Missing is fine; a cgroup that still has processes fails with EBUSY. */
int runtime_remove_cgroups (const runtime_host_t *host, const char *group_cgroup_path, skiff_error_t *err);

/* Returns in *out (owned) the absolute memory cgroup folder for cgroup_path:
 * v1 /sys/fs/cgroup/memory<path>, v2 /sys/fs/cgroup<path>. */
int runtime_memory_cgroup_dir (const runtime_host_t *host, const char *cgroup_path, char **out, skiff_error_t *err);

/* Force-deletes a runtime container by id (`<runtime> --root R delete -f ID`), for
 * clean-up of orphans. A container that does not exist is not an error. runtime_root may
 * be NULL (runtime default). */
int runtime_force_delete (const runtime_config_t *cfg, const char *runtime_root, const char *id, skiff_error_t *err);

#endif
