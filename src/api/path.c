/* path.c - request path and query parsing for the router. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "common/cleanup.h"
#include "common/util.h"

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)tolower ((unsigned char)c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Decodes %XX (and '+' only when plus_is_space) into a new string; NULL on bad input. */
static char *
pct_decode (const char *s, size_t len, int plus_is_space)
{
  char *out = malloc (len + 1);
  if (out == NULL)
    abort ();
  size_t j = 0;
  for (size_t i = 0; i < len; i++)
    {
      if (s[i] == '%')
        {
          int h = i + 2 < len ? hexval (s[i + 1]) : -1;
          int l = i + 2 < len ? hexval (s[i + 2]) : -1;
          if (h < 0 || l < 0 || (h == 0 && l == 0))
            {
              free (out);
              return NULL;
            }
          out[j++] = (char)(h * 16 + l);
          i += 2;
        }
      else if (plus_is_space && s[i] == '+')
        out[j++] = ' ';
      else
        out[j++] = s[i];
    }
  out[j] = '\0';
  return out;
}

int
api_path_parse (const char *path, size_t len, api_path_t *out, skiff_error_t *err)
{
  memset (out, 0, sizeof (*out));
  if (len > 4096)
    return skiff_error_arm (err, 414, "InvalidRequestUri", "The request URI is too long.");
  size_t i = 0;
  while (i < len)
    {
      while (i < len && path[i] == '/')
        i++;
      size_t start = i;
      while (i < len && path[i] != '/')
        i++;
      if (i == start)
        break;
      if (out->n == API_MAX_SEGMENTS)
        {
          api_path_clear (out);
          return skiff_error_arm (err, 404, "InvalidResourceType", "The request path has too many segments.");
        }
      char *seg = pct_decode (path + start, i - start, 0);
      if (seg == NULL || strchr (seg, '/') || strlen (seg) > 256)
        {
          free (seg);
          api_path_clear (out);
          return skiff_error_arm (err, 400, "InvalidRequestUri", "The request URI has an invalid path segment.");
        }
      out->seg[out->n++] = seg;
    }
  return 0;
}

void
api_path_clear (api_path_t *p)
{
  for (int i = 0; i < p->n; i++)
    free (p->seg[i]);
  p->n = 0;
}

char *
api_query_get (const char *query, size_t len, const char *name)
{
  if (query == NULL)
    return NULL;
  size_t nl = strlen (name);
  size_t i = 0;
  while (i < len)
    {
      size_t start = i;
      while (i < len && query[i] != '&')
        i++;
      size_t end = i;
      i++;
      const char *eq = memchr (query + start, '=', end - start);
      size_t klen = eq ? (size_t)(eq - (query + start)) : end - start;
      cleanup_free char *key = pct_decode (query + start, klen, 1);
      if (key && strlen (key) == nl && strncasecmp (key, name, nl) == 0)
        {
          if (eq == NULL)
            return skiff_strdup ("");
          return pct_decode (eq + 1, (size_t)(query + end - (eq + 1)), 1);
        }
    }
  return NULL;
}
