/* cache.c - rendered GET responses of container groups, keyed by ARM path and valid for
 * one value of the store's change counter. An idle group's GET costs a hash lookup and a
 * copy instead of three queries and a JSON rendering. */
#include <pthread.h>
#include <string.h>

#include "api_internal.h"
#include "common/util.h"

#define CACHE_SLOTS 1024
#define CACHE_MAX_BODY (256 * 1024)

typedef struct
{
  char *key;
  uint64_t version;
  char *body;
  size_t len;
} slot_t;

struct api_cache
{
  pthread_mutex_t lock;
  slot_t slots[CACHE_SLOTS];
};

api_cache_t *
api_cache_new (void)
{
  api_cache_t *c = calloc (1, sizeof (*c));
  if (c == NULL)
    abort ();
  pthread_mutex_init (&c->lock, NULL);
  return c;
}

void
api_cache_free (api_cache_t *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    {
      free (c->slots[i].key);
      free (c->slots[i].body);
    }
  pthread_mutex_destroy (&c->lock);
  free (c);
}

static size_t
slot_of (const char *key)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)key; *p; p++)
    h = (h ^ *p) * 1099511628211ULL;
  return (size_t)(h % CACHE_SLOTS);
}

int
api_cache_get (api_cache_t *c, const char *key, uint64_t version, char **body, size_t *len)
{
  if (c == NULL)
    return 0;
  int hit = 0;
  pthread_mutex_lock (&c->lock);
  slot_t *s = &c->slots[slot_of (key)];
  if (s->key && s->version == version && strcmp (s->key, key) == 0)
    {
      *body = malloc (s->len + 1);
      if (*body == NULL)
        abort ();
      memcpy (*body, s->body, s->len + 1);
      *len = s->len;
      hit = 1;
    }
  pthread_mutex_unlock (&c->lock);
  return hit;
}

void
api_cache_put (api_cache_t *c, const char *key, uint64_t version, const char *body, size_t len)
{
  if (c == NULL || len > CACHE_MAX_BODY)
    return;
  char *k = skiff_strdup (key);
  char *b = malloc (len + 1);
  if (b == NULL)
    abort ();
  memcpy (b, body, len);
  b[len] = '\0';
  pthread_mutex_lock (&c->lock);
  slot_t *s = &c->slots[slot_of (key)];
  free (s->key);
  free (s->body);
  *s = (slot_t){ .key = k, .version = version, .body = b, .len = len };
  pthread_mutex_unlock (&c->lock);
}
