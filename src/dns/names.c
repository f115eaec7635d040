/* names.c - DNS name helpers: reverse names of IPv4 addresses, name validation, and the walk over
 * a presentation-format name's labels the zone lookups use. */
#include <stdio.h>
#include <string.h>

#include "dns/dns_internal.h"

const char *
dns_reverse_name (uint32_t addr, char *buf)
{
  snprintf (buf, 32, "%u.%u.%u.%u.in-addr.arpa", addr & 0xff, (addr >> 8) & 0xff, (addr >> 16) & 0xff,
            (addr >> 24) & 0xff);
  return buf;
}

int
dns_valid_name (const char *s)
{
  if (s == NULL)
    return 0;
  size_t n = strnlen (s, DNS_MAX_NAME + 1);
  if (n == 0 || n > DNS_MAX_NAME)
    return 0;
  size_t label = 0;
  for (size_t i = 0; i <= n; i++)
    {
      char c = s[i];
      if (c == '.' || c == '\0')
        {
          /* label > 0 here means i > 0 */
          if (label == 0 || label > 63 || s[i - 1] == '-')
            return 0;
          label = 0;
          continue;
        }
      int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok || (label == 0 && c == '-'))
        return 0;
      label++;
    }
  return 1;
}

const char *
dns_name_parent (const char *name)
{
  for (const char *p = name; *p; p++)
    {
      if (*p == '\\')
        {
          /* "\DDD" or "\X": an escaped character, never a separator */
          if (p[1] >= '0' && p[1] <= '9')
            p += strnlen (p + 1, 3);
          else if (p[1])
            p++;
          continue;
        }
      if (*p == '.')
        return p[1] ? p + 1 : NULL;
    }
  return NULL;
}
