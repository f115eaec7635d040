/* runtime_internal.h - private helpers shared by the files of src/runtime/ (not part of
 * the module's API: include runtime.h from outside). */
#ifndef SKIFF_RUNTIME_INTERNAL_H
#define SKIFF_RUNTIME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/runtime.h"

/* Returns cfg->runtime_path, or "/usr/bin/crun" when unset. */
const char *runtime_path_or_default (const runtime_config_t *cfg);

/* The user-namespace mapping of cfg, the same for a group's pinned user namespace and its
 * containers' bundles: container 0 -> *shift (cfg->id_shift; 100000 without cfg), *range ids
 * (cfg->id_range; 65536 when unset). */
void runtime_id_map (const runtime_config_t *cfg, uint32_t *shift, uint32_t *range);

/* Calls cb for every line of /proc/self/mountinfo (mount point unescaped). cb returns 0
 * to go on, > 0 to stop (success), < 0 to stop with that error. */
int runtime_list_mounts (int (*cb) (const char *mountpoint, const char *fstype, const char *superopts, void *data),
                         void *data, skiff_error_t *err);

/* Runs argv (argv[0] an absolute path) with stdin /dev/null, collects stdout+stderr
 * (up to 1 MiB) in *out (owned, may be NULL to discard) and the exit status in
 * *exit_status (128+signal when killed). */
int runtime_run_capture (const char *const *argv, char **out, int *exit_status, skiff_error_t *err);

/* The default seccomp profile's unconditional allowlist (seccomp_default.c). */
extern const char *const runtime_seccomp_allow[];
extern const size_t runtime_seccomp_allow_len;

#endif
