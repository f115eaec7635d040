/* util.c - file-system, time and string helpers. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

int
skiff_mkdir_p (const char *path, mode_t mode, skiff_error_t *err)
{
  cleanup_free char *p = strdup (path);
  if (p == NULL)
    return skiff_error_set (err, ENOMEM, "mkdir %s", path);
  size_t len = strlen (p);
  for (size_t i = 1; i <= len; i++)
    {
      if (p[i] == '/' || p[i] == '\0')
        {
          char saved = p[i];
          p[i] = '\0';
          if (mkdir (p, mode) < 0 && errno != EEXIST)
            return skiff_error_set (err, errno, "mkdir `%s`", p);
          p[i] = saved;
        }
    }
  return 0;
}

static int write_file (const char *path, const void *data, size_t len, mode_t mode, int sync, skiff_error_t *err);

int
skiff_write_file_atomic (const char *path, const void *data, size_t len, mode_t mode, skiff_error_t *err)
{
  return write_file (path, data, len, mode, 1, err);
}

int
skiff_write_file_replace (const char *path, const void *data, size_t len, mode_t mode, skiff_error_t *err)
{
  return write_file (path, data, len, mode, 0, err);
}

static int
write_file (const char *path, const void *data, size_t len, mode_t mode, int sync, skiff_error_t *err)
{
  cleanup_free char *tmp = skiff_strdup_printf ("%s.tmp.%d", path, (int)getpid ());
  cleanup_close int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return skiff_error_set (err, errno, "open `%s`", tmp);
  const char *p = data;
  size_t left = len;
  while (left > 0)
    {
      ssize_t w = write (fd, p, left);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          int e = errno;
          unlink (tmp);
          return skiff_error_set (err, e, "write `%s`", tmp);
        }
      p += w;
      left -= (size_t)w;
    }
  if (fchmod (fd, mode) < 0 || (sync && fsync (fd) < 0))
    {
      int e = errno;
      unlink (tmp);
      return skiff_error_set (err, e, "sync `%s`", tmp);
    }
  if (rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return skiff_error_set (err, e, "rename `%s`", path);
    }
  return 0;
}

int
skiff_read_file (const char *path, size_t max_len, char **out, size_t *out_len, skiff_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return skiff_error_set (err, errno, "open `%s`", path);
  size_t cap = 4096, len = 0;
  cleanup_free char *buf = malloc (cap + 1);
  if (buf == NULL)
    return skiff_error_set (err, ENOMEM, "read `%s`", path);
  for (;;)
    {
      if (len == cap)
        {
          if (cap >= max_len)
            return skiff_error_set (err, EFBIG, "read `%s` (over %zu bytes)", path, max_len);
          size_t ncap = cap * 2 > max_len ? max_len : cap * 2;
          char *nb = realloc (buf, ncap + 1);
          if (nb == NULL)
            return skiff_error_set (err, ENOMEM, "read `%s`", path);
          buf = nb;
          cap = ncap;
        }
      ssize_t r = read (fd, buf + len, cap - len);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return skiff_error_set (err, errno, "read `%s`", path);
        }
      if (r == 0)
        break;
      len += (size_t)r;
    }
  buf[len] = '\0';
  if (out_len)
    *out_len = len;
  *out = steal_pointer (&buf);
  return 0;
}

static int
rm_cb (const char *fpath, const struct stat *sb, int typeflag, struct FTW *ftwbuf)
{
  (void)sb;
  (void)ftwbuf;
  int r = (typeflag == FTW_DP) ? rmdir (fpath) : unlink (fpath);
  if (r < 0 && errno != ENOENT)
    {
      /* A folder left behind because it is a mount point is reported by the caller's check. */
      return 0;
    }
  return 0;
}

int
skiff_rm_rf (const char *path, skiff_error_t *err)
{
  struct stat st;
  if (lstat (path, &st) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return skiff_error_set (err, errno, "stat `%s`", path);
    }
  if (!S_ISDIR (st.st_mode))
    {
      if (unlink (path) < 0 && errno != ENOENT)
        return skiff_error_set (err, errno, "unlink `%s`", path);
      return 0;
    }
  if (nftw (path, rm_cb, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
    return skiff_error_set (err, errno, "remove `%s`", path);
  if (lstat (path, &st) == 0)
    return skiff_error_set (err, EBUSY, "remove `%s`: still present", path);
  return 0;
}

int64_t
skiff_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t
skiff_monotonic_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

char *
skiff_format_time (int64_t ns, char *buf, size_t len)
{
  time_t s = (time_t)(ns / 1000000000LL);
  struct tm tm;
  gmtime_r (&s, &tm);
  char base[32];
  strftime (base, sizeof (base), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (buf, len, "%s.%03dZ", base, (int)((ns / 1000000LL) % 1000));
  return buf;
}

char *
skiff_format_time_ns (int64_t ns, char *buf, size_t len)
{
  time_t s = (time_t)(ns / 1000000000LL);
  struct tm tm;
  gmtime_r (&s, &tm);
  char base[32];
  strftime (base, sizeof (base), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (buf, len, "%s.%09lldZ", base, (long long)(ns % 1000000000LL));
  return buf;
}

int64_t
skiff_parse_time (const char *s)
{
  struct tm tm = { 0 };
  if (s == NULL)
    return -1;
  const char *rest = strptime (s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == NULL)
    return -1;
  int64_t frac = 0;
  if (*rest == '.')
    {
      rest++;
      int digits = 0;
      while (isdigit ((unsigned char)*rest))
        {
          if (digits < 9)
            {
              frac = frac * 10 + (*rest - '0');
              digits++;
            }
          rest++;
        }
      while (digits++ < 9)
        frac *= 10;
    }
  if (*rest != 'Z' && *rest != '\0')
    return -1;
  return (int64_t)timegm (&tm) * 1000000000LL + frac;
}

void
skiff_uuid (char *buf)
{
  unsigned char b[16];
  if (getrandom (b, sizeof (b), 0) != (ssize_t)sizeof (b))
    abort ();
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf (buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
            b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void
skiff_random_hex (char *out, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char b[64];
  size_t done = 0;
  while (done < n)
    {
      size_t chunk = n - done > sizeof (b) ? sizeof (b) : n - done;
      if (getrandom (b, chunk, 0) != (ssize_t)chunk)
        abort ();
      for (size_t i = 0; i < chunk; i++)
        {
          out[2 * (done + i)] = hex[b[i] >> 4];
          out[2 * (done + i) + 1] = hex[b[i] & 15];
        }
      done += chunk;
    }
  out[2 * n] = '\0';
}

int
skiff_strcaseeq (const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcasecmp (a, b) == 0;
}

char *
skiff_strdup_printf (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    abort ();
  va_end (ap);
  return s;
}

char *
skiff_strdup (const char *s)
{
  if (s == NULL)
    return NULL;
  char *r = strdup (s);
  if (r == NULL)
    abort ();
  return r;
}

char *
skiff_ascii_lower (char *s)
{
  for (char *p = s; p && *p; p++)
    *p = (char)tolower ((unsigned char)*p);
  return s;
}
