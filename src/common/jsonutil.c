/* jsonutil.c - Jansson helpers. */
#include "jsonutil.h"

#include <strings.h>

json_t *
skiff_json_get (const json_t *obj, const char *key)
{
  if (obj == NULL || !json_is_object (obj))
    return NULL;
  json_t *v = json_object_get (obj, key);
  if (v)
    return v;
  const char *k;
  json_t *val;
  json_object_foreach ((json_t *)obj, k, val)
  {
    if (strcasecmp (k, key) == 0)
      return val;
  }
  return NULL;
}

const char *
skiff_json_get_string (const json_t *obj, const char *key)
{
  json_t *v = skiff_json_get (obj, key);
  return json_is_string (v) ? json_string_value (v) : NULL;
}
