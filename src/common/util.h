/* util.h - small file-system, time and string helpers shared by every skiff program. */
#ifndef SKIFF_COMMON_UTIL_H
#define SKIFF_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Creates `path` and its missing parents with `mode`. Existing folders are fine. */
int skiff_mkdir_p (const char *path, mode_t mode, skiff_error_t *err);

/* Writes `len` bytes to `path` atomically (temp file, fsync, rename) with `mode`. */
int skiff_write_file_atomic (const char *path, const void *data, size_t len, mode_t mode, skiff_error_t *err);

/* Like skiff_write_file_atomic but without fsync: readers never see a partial file and a
 * process crash keeps it, but a power loss may lose it. For files that are re-created
 * whenever they are missing or stale (a group's bundle and run files). */
int skiff_write_file_replace (const char *path, const void *data, size_t len, mode_t mode, skiff_error_t *err);

/* Reads the whole file into a NUL-terminated buffer. Fails with EFBIG when it is
 * larger than `max_len`. On success *out is owned by the caller. */
int skiff_read_file (const char *path, size_t max_len, char **out, size_t *out_len, skiff_error_t *err);

/* Removes `path` recursively (like rm -rf) without crossing into other mounts.
 * A missing path is not an error. */
int skiff_rm_rf (const char *path, skiff_error_t *err);

/* Wall clock in nanoseconds since the epoch. */
int64_t skiff_now_ns (void);

/* Monotonic clock in nanoseconds. */
int64_t skiff_monotonic_ns (void);

/* Formats ns-since-epoch as RFC 3339 UTC with milliseconds ("2024-01-01T00:00:00.000Z")
 * into buf (at least 32 bytes). Returns buf. */
char *skiff_format_time (int64_t ns, char *buf, size_t len);

/* Formats with nanosecond precision, as used in log lines. buf >= 40 bytes. */
char *skiff_format_time_ns (int64_t ns, char *buf, size_t len);

/* Parses an RFC 3339 UTC timestamp as written by skiff_format_time*; returns -1 on error. */
int64_t skiff_parse_time (const char *s);

/* Fills buf with a random lowercase UUID (36 chars + NUL). buf >= 37 bytes. */
void skiff_uuid (char *buf);

/* Fills out with 2*n lowercase hex characters of random data plus NUL. */
void skiff_random_hex (char *out, size_t n);

/* ASCII case-insensitive equality; NULL-safe (two NULLs are equal). */
int skiff_strcaseeq (const char *a, const char *b);

/* asprintf that aborts on allocation failure; returns the new string. */
char *skiff_strdup_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* strdup that aborts on allocation failure; NULL in, NULL out. */
char *skiff_strdup (const char *s);

/* Lowercases an ASCII string in place and returns it. */
char *skiff_ascii_lower (char *s);

#endif
