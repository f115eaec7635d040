/* api_internal.h - shared between the API's files; not part of its surface. */
#ifndef SKIFF_API_INTERNAL_H
#define SKIFF_API_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

/* Returns 1 and a copy of the cached body (owned) when `key` was stored for `version`. */
int api_cache_get (api_cache_t *c, const char *key, uint64_t version, char **body, size_t *len);
/* Stores a rendered body for `key` at `version` (replacing what shared its slot). */
void api_cache_put (api_cache_t *c, const char *key, uint64_t version, const char *body, size_t len);

#endif
