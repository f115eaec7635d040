/* jsonutil.h - Jansson helpers: ownership cleanup and case-insensitive lookup. */
#ifndef SKIFF_COMMON_JSONUTIL_H
#define SKIFF_COMMON_JSONUTIL_H

#include <jansson.h>

static inline void
skiff_json_decrefp (json_t **j)
{
  if (*j)
    json_decref (*j);
  *j = NULL;
}
#define cleanup_json __attribute__ ((cleanup (skiff_json_decrefp)))

/* Returns the member of `obj` whose key equals `key` ignoring ASCII case (exact match
 * preferred), or NULL. Borrowed reference. NULL or non-object `obj` gives NULL. */
json_t *skiff_json_get (const json_t *obj, const char *key);

/* Returns the string member (case-insensitive key) or NULL when absent or not a string. */
const char *skiff_json_get_string (const json_t *obj, const char *key);

#endif
