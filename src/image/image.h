/* image.h - OCI image store: registry client, content store, safe layer unpack.
 *
 * Layout under data_dir:
 *   content/sha256/<hex>   manifests, indexes and configs, stored by digest
 *   layers/<hex>/          one unpacked, read-only layer per compressed-layer digest;
 *                          an existing layer dir is complete (rename is the commit point)
 *   layers/.tmp-<random>/  scratch dirs of layers being unpacked (deleted on failure)
 *
 * Each layer is unpacked into its own directory so that it can be used as an overlayfs
 * lowerdir: whiteouts become overlay whiteouts (char device 0:0) and opaque markers the
 * xattr trusted.overlay.opaque="y". File owners are shifted by uid_shift/gid_shift.
 *
 * Unpack policy: entries with a `..` component, absolute names (also for hardlink targets),
 * parents that are symlinks or not directories, hardlinks to names missing in the layer,
 * char/block devices and oversized entries are rejected: the whole pull fails.
 * Leading "./" is stripped. xattrs from the tar are not applied.
 */
#ifndef SKIFF_IMAGE_IMAGE_H
#define SKIFF_IMAGE_IMAGE_H

#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* Caps on what comes from a registry or a tar stream. */
#define IMAGE_MAX_MANIFEST_SIZE (4 * 1024 * 1024)
#define IMAGE_MAX_CONFIG_SIZE (8 * 1024 * 1024)
#define IMAGE_MAX_LAYERS 256
#define IMAGE_MAX_LAYER_SIZE (64LL * 1024 * 1024 * 1024)
#define IMAGE_MAX_ENTRY_SIZE (16LL * 1024 * 1024 * 1024)
#define IMAGE_MAX_ENTRIES (1024 * 1024)
#define IMAGE_MAX_PATH 4096
#define IMAGE_MAX_REFERENCE 1024

typedef struct image_store image_store_t;

typedef struct
{
  const char *data_dir;          /* blobs in <data_dir>/content/sha256/<hex>, layers in <data_dir>/layers/<id>/ */
  uint32_t uid_shift, gid_shift; /* file owners are written as shift+id */
  uint32_t id_range;             /* e.g. 65536; ids >= range map to shift+65534; 0 means 65536 */
  const char *const *insecure_registries; /* NULL-terminated host[:port] list allowed over plain http
                                             besides 127.0.0.0/8 and localhost */
  int max_parallel_layers;                /* default 4 when <= 0 */
  const char *ca_file;                    /* extra CA bundle for HTTPS (NULL: system CAs / SSL_CERT_FILE) */
} image_store_config_t;

typedef struct
{
  const char *server; /* host[:port] as in the reference; "docker.io" also matches Docker Hub */
  const char *username;
  const char *password;
} image_credentials_t;

typedef struct
{ /* progress callback payload */
  const char *reference;
  int layers_total;
  int layers_done;
  int64_t bytes_total;
  int64_t bytes_done;
  const char *phase; /* "resolving", "downloading", "done" */
} image_progress_t;

typedef void (*image_progress_cb) (void *opaque, const image_progress_t *p);

typedef struct
{
  char *reference;       /* normalized, e.g. docker.io/library/busybox:latest or 127.0.0.1:5000/busybox@sha256:... */
  char *manifest_digest; /* sha256:... of the resolved (platform) manifest */
  char *config_digest;   /* sha256:... of the image config */
  char **layer_dirs;     /* NULL-terminated, absolute paths of unpacked read-only layers, LOWEST FIRST */
  char **entrypoint, **cmd, **env; /* NULL-terminated or NULL when absent, from the image config */
  char *working_dir, *user;        /* NULL when absent */
  int64_t size_bytes;              /* config + compressed layer sizes */
} image_t;

typedef struct
{
  char *registry;   /* name as written in normalized references: "docker.io", "127.0.0.1:5000" */
  char *api_host;   /* host[:port] the API is reached at: "registry-1.docker.io" for docker.io */
  char *repository; /* "library/busybox" */
  char *tag;        /* "latest" when neither tag nor digest is given; NULL when only a digest is */
  char *digest;     /* "sha256:<64 hex>" or NULL */
} image_ref_t;

/* Opens (creating its folders) the store described by cfg. cfg strings are copied.
 * Stale scratch dirs layers/.tmp-* are removed. */
int image_store_open (const image_store_config_t *cfg, image_store_t **out, skiff_error_t *err);

/* Closes the store. No pull may be running. NULL is fine. */
void image_store_close (image_store_t *s);

/* Thread-safe, blocking. Resolves `reference` (index -> linux/amd64), downloads what is not
 * cached, verifies every blob's digest and size and unpacks layers (in parallel, up to
 * max_parallel_layers). Concurrent pulls of one layer download and unpack it once; the others
 * wait for it. creds may be NULL or an array ended by an entry with server == NULL; the entry
 * whose server matches the image's registry is used. cb (may be NULL) is called from the
 * pulling threads, serialized, throttled. On success *out is owned by the caller (image_free).
 * Failures are API errors: "InvalidImage" (400) for a bad reference, "InaccessibleImage" (400)
 * otherwise, naming the image and the reason. */
int image_pull (image_store_t *s, const char *reference, const image_credentials_t *creds, image_progress_cb cb,
                void *opaque, image_t **out, skiff_error_t *err);

/* Frees an image returned by image_pull. NULL is fine. */
void image_free (image_t *img);

/* Parses and validates a reference. Docker defaults apply: "busybox" becomes
 * docker.io/library/busybox:latest with api_host registry-1.docker.io. Fills *out with owned
 * strings (image_ref_clear). Fails with "InvalidImage" (400). */
int image_ref_parse (const char *ref, image_ref_t *out, skiff_error_t *err);

/* Frees the strings of a parsed reference and zeroes it. */
void image_ref_clear (image_ref_t *r);

/* Returns the normalized form of a parsed reference, "registry/repo[:tag][@digest]" (owned). */
char *image_ref_format (const image_ref_t *r);

/* Removes unpacked layers and content blobs that no image in `keep` (NULL-terminated manifest
 * digests, may be NULL) references; returns the number removed. Waits for running pulls. */
int image_gc (image_store_t *s, const char *const *keep_manifest_digests, skiff_error_t *err);

/* Number of layer downloads this store has started (for tests: proves dedup of concurrent pulls). */
int64_t image_store_layer_downloads (image_store_t *s);

/* ---- lower-level pieces, exported for tests and tools ---- */

/* Layer compression accepted by image_unpack_layer_fd. */
typedef enum
{
  IMAGE_COMPRESSION_NONE = 0,
  IMAGE_COMPRESSION_GZIP = 1,
  IMAGE_COMPRESSION_ZSTD = 2,
} image_compression_t;

/* Maps a layer media type to its compression; returns -1 (no err filled) for unknown types. */
int image_layer_compression (const char *media_type);

/* Unpacks the (optionally compressed) tar stream read from fd into dest_dir, which must exist
 * and should be empty, applying the safety policy described at the top of this file and the
 * owner shift from cfg (only uid_shift, gid_shift, id_range are used; cfg may be NULL for no
 * shift). Does not remove dest_dir on failure. When implicit_dirs is not NULL it receives the
 * NULL-terminated list (owned) of directories the layer created without a tar entry for them
 * (needed by image_check_implicit_dirs). */
int image_unpack_layer_fd (int fd, image_compression_t compression, const char *dest_dir,
                           const image_store_config_t *cfg, char ***implicit_dirs, skiff_error_t *err);

/* Checks that no directory an upper layer created implicitly (implicit_dirs, relative paths)
 * sits where a lower layer (lower_dirs, LOWEST FIRST, NULL-terminated) has a symlink or a
 * non-directory: the tar meant to write through that symlink (e.g. `link -> /tmp`, then
 * `link/file` in the next layer), which skiff refuses. Fails with a message naming the path. */
int image_check_implicit_dirs (const char *const *lower_dirs, const char *const *implicit_dirs, skiff_error_t *err);

#endif
