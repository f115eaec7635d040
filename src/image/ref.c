/* ref.c - image reference parsing and normalization (docker/distribution grammar). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "image/internal.h"

#define INVALID(err, ref, ...) skiff_error_arm (err, 400, "InvalidImage", __VA_ARGS__)

bool
image_digest_valid (const char *s)
{
  if (s == NULL || strncmp (s, "sha256:", 7) != 0 || strlen (s) != 7 + 64)
    return false;
  for (const char *p = s + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

static bool
is_alnum_lower (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool
component_valid (const char *s, size_t n)
{
  if (n == 0 || !is_alnum_lower (s[0]) || !is_alnum_lower (s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = s[i];
      if (is_alnum_lower (c))
        continue;
      if (c == '.' || c == '_')
        {
          if (c == '_' && i + 1 < n && s[i + 1] == '_')
            i++;
          if (i + 1 >= n || !is_alnum_lower (s[i + 1]))
            return false;
          continue;
        }
      if (c == '-')
        {
          while (i + 1 < n && s[i + 1] == '-')
            i++;
          if (i + 1 >= n || !is_alnum_lower (s[i + 1]))
            return false;
          continue;
        }
      return false;
    }
  return true;
}

static bool
domain_valid (const char *s, size_t n)
{
  if (n == 0 || n > 255)
    return false;
  size_t i = 0;
  if (s[0] == '[')
    {
      while (i < n && s[i] != ']')
        {
          if (!(isxdigit ((unsigned char)s[i]) || s[i] == ':' || s[i] == '[' || s[i] == '.'))
            return false;
          i++;
        }
      if (i == n)
        return false;
      i++;
    }
  else
    {
      size_t start = i;
      while (i < n && s[i] != ':')
        {
          char c = s[i];
          if (!(isalnum ((unsigned char)c) || c == '.' || c == '-'))
            return false;
          i++;
        }
      if (i == start || s[start] == '.' || s[start] == '-' || s[i - 1] == '.' || s[i - 1] == '-')
        return false;
    }
  if (i < n)
    {
      if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
        return false;
      for (size_t j = i + 1; j < n; j++)
        if (!isdigit ((unsigned char)s[j]))
          return false;
    }
  return true;
}

static bool
tag_valid (const char *t)
{
  size_t n = strlen (t);
  if (n == 0 || n > 128)
    return false;
  if (!(isalnum ((unsigned char)t[0]) || t[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum ((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
      return false;
  return true;
}

void
image_ref_clear (image_ref_t *r)
{
  if (r == NULL)
    return;
  free (r->registry);
  free (r->api_host);
  free (r->repository);
  free (r->tag);
  free (r->digest);
  memset (r, 0, sizeof (*r));
}

int
image_ref_parse (const char *ref, image_ref_t *out, skiff_error_t *err)
{
  memset (out, 0, sizeof (*out));
  if (ref == NULL || *ref == '\0')
    return INVALID (err, ref, "the image reference is empty");
  size_t rl = strlen (ref);
  if (rl > IMAGE_MAX_REFERENCE)
    return INVALID (err, ref, "the image reference is longer than %d characters", IMAGE_MAX_REFERENCE);
  for (const char *p = ref; *p; p++)
    if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
      return INVALID (err, ref, "the image reference '%.200s' contains invalid characters", ref);

  cleanup_free char *buf = skiff_strdup (ref);
  cleanup_free char *digest = NULL, *tag = NULL, *domain = NULL;
  char *at = strchr (buf, '@');
  if (at)
    {
      *at = '\0';
      if (!image_digest_valid (at + 1))
        return INVALID (err, ref, "image '%.200s': invalid digest (only sha256:<64 lowercase hex> is supported)", ref);
      digest = skiff_strdup (at + 1);
    }
  char *name = buf;
  char *slash = strchr (name, '/');
  if (slash)
    {
      size_t fl = (size_t)(slash - name);
      bool is_domain = memchr (name, '.', fl) || memchr (name, ':', fl) || (fl == 9 && !strncmp (name, "localhost", 9));
      for (size_t i = 0; i < fl && !is_domain; i++)
        if (isupper ((unsigned char)name[i]))
          is_domain = true;
      if (is_domain)
        {
          if (!domain_valid (name, fl))
            return INVALID (err, ref, "image '%.200s': invalid registry host", ref);
          domain = strndup (name, fl);
          name = slash + 1;
        }
    }
  /* tag: after the last ':' in the path part */
  char *colon = strrchr (name, ':');
  if (colon)
    {
      *colon = '\0';
      if (!tag_valid (colon + 1))
        return INVALID (err, ref, "image '%.200s': invalid tag", ref);
      tag = skiff_strdup (colon + 1);
    }
  size_t nl = strlen (name);
  if (nl == 0 || nl > 255)
    return INVALID (err, ref, "image '%.200s': invalid repository name", ref);
  for (const char *p = name;;)
    {
      const char *e = strchr (p, '/');
      size_t cl = e ? (size_t)(e - p) : strlen (p);
      if (!component_valid (p, cl))
        return INVALID (err, ref,
                        "image '%.200s': invalid repository name (lowercase letters, digits and separators only)", ref);
      if (e == NULL)
        break;
      p = e + 1;
    }
  if (domain == NULL || strcmp (domain, "docker.io") == 0 || strcmp (domain, "index.docker.io") == 0)
    {
      out->registry = skiff_strdup ("docker.io");
      out->api_host = skiff_strdup ("registry-1.docker.io");
      out->repository = strchr (name, '/') ? skiff_strdup (name) : skiff_strdup_printf ("library/%s", name);
    }
  else
    {
      out->registry = skiff_ascii_lower (skiff_strdup (domain));
      out->api_host = skiff_strdup (out->registry);
      out->repository = skiff_strdup (name);
    }
  if (tag == NULL && digest == NULL)
    tag = skiff_strdup ("latest");
  out->tag = steal_pointer (&tag);
  out->digest = steal_pointer (&digest);
  return 0;
}

char *
image_ref_format (const image_ref_t *r)
{
  return skiff_strdup_printf ("%s/%s%s%s%s%s", r->registry, r->repository, r->tag ? ":" : "", r->tag ? r->tag : "",
                              r->digest ? "@" : "", r->digest ? r->digest : "");
}
