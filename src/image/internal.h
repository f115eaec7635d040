/* internal.h - declarations shared between the files of src/image/ (not public). */
#ifndef SKIFF_IMAGE_INTERNAL_H
#define SKIFF_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "image/image.h"

/* A pull-based byte source: sets *buf to the next chunk (valid until the next call) and
 * returns its length, 0 at the end, or a negative value with *err filled. */
typedef ssize_t (*image_source_fn) (void *opaque, const void **buf, skiff_error_t *err);

/* Unpacks a layer read from `src` into dest_dir (see image_unpack_layer_fd). After the tar's
 * end the rest of the source is read to its end (so a digesting source sees every byte). */
int image_unpack_stream (image_source_fn src, void *opaque, image_compression_t compression, const char *dest_dir,
                         const image_store_config_t *cfg, char ***implicit_dirs, skiff_error_t *err);

/* true when s is "sha256:" followed by 64 lowercase hex digits. */
bool image_digest_valid (const char *s);

/* ---- registry client (registry.c) ---- */

typedef struct registry_client registry_client_t;

/* Global curl setup shared by all stores (idempotent, thread-safe). */
void registry_global_init (void);

/* A client for one pull: ref's registry and repository, credentials (may be NULL). */
int registry_client_new (const image_ref_t *ref, const image_credentials_t *creds,
                         const char *const *insecure_registries, const char *ca_file, registry_client_t **out,
                         skiff_error_t *err);
void registry_client_free (registry_client_t *c);

/* GETs a manifest by tag or digest into memory (<= IMAGE_MAX_MANIFEST_SIZE). *media_type gets
 * the Content-Type (owned, may be NULL). */
int registry_get_manifest (registry_client_t *c, const char *tag_or_digest, char **body, size_t *len, char **media_type,
                           skiff_error_t *err);

/* GETs a small blob into memory, checking size (exactly `size`) and digest. */
int registry_get_blob_mem (registry_client_t *c, const char *digest, int64_t size, char **body, skiff_error_t *err);

/* Streaming blob download: a source for image_unpack_stream. The data is hashed and counted;
 * registry_blob_finish checks digest and size once the source hit its end. */
typedef struct registry_blob registry_blob_t;
typedef void (*registry_bytes_cb) (void *opaque, int64_t n);
int registry_blob_open (registry_client_t *c, const char *digest, int64_t size, registry_bytes_cb cb, void *opaque,
                        registry_blob_t **out, skiff_error_t *err);
ssize_t registry_blob_read (void *blob, const void **buf, skiff_error_t *err);
int registry_blob_finish (registry_blob_t *b, skiff_error_t *err);
void registry_blob_free (registry_blob_t *b);

/* sha256 of a buffer as "sha256:<hex>" into out (>= 72 bytes). */
void image_sha256_digest (const void *data, size_t len, char *out);

#endif
