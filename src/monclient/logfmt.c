/* logfmt.c - CRI-format container log files ("<time> <stream> <P|F> <content>"),
 * capped in size with one rotated file, and the line splitter that feeds them. */
#include "monclient/monlogic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

size_t
mon_log_prefix (char *buf, size_t len, int64_t ns, enum mon_stream stream, bool partial)
{
  char ts[48];
  skiff_format_time_ns (ns, ts, sizeof (ts));
  int n = snprintf (buf, len, "%s %s %c ", ts, stream == MON_STDERR ? "stderr" : "stdout", partial ? 'P' : 'F');
  if (n < 0)
    return 0;
  return (size_t)n < len ? (size_t)n : len - 1;
}

int
mon_log_open (struct mon_log *l, const char *path, int64_t max_bytes, skiff_error_t *err)
{
  l->fd = -1;
  l->size = 0;
  l->max_bytes = max_bytes;
  l->path = skiff_strdup (path);
  int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return skiff_error_set (err, errno, "open log `%s`", path);
  struct stat st;
  if (fstat (fd, &st) == 0)
    l->size = st.st_size;
  l->fd = fd;
  return 0;
}

/* Moves the current file to "<path>.1" (replacing the older one) and starts anew. */
static int
log_rotate (struct mon_log *l, skiff_error_t *err)
{
  cleanup_free char *old = skiff_strdup_printf ("%s.1", l->path);
  if (rename (l->path, old) < 0 && errno != ENOENT)
    return skiff_error_set (err, errno, "rotate log `%s`", l->path);
  int fd = open (l->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return skiff_error_set (err, errno, "open log `%s`", l->path);
  if (l->fd >= 0)
    close (l->fd);
  l->fd = fd;
  l->size = 0;
  return 0;
}

int
mon_log_write (struct mon_log *l, int64_t ns, enum mon_stream stream, bool partial, const char *a, size_t alen,
               const char *b, size_t blen, skiff_error_t *err)
{
  if (l->fd < 0)
    return skiff_error_set (err, EBADF, "log `%s` not open", l->path ? l->path : "?");
  char prefix[64];
  size_t plen = mon_log_prefix (prefix, sizeof (prefix), ns, stream, partial);
  int64_t total = (int64_t)(plen + alen + blen + 1);
  if (l->max_bytes > 0 && l->size > 0 && l->size + total > l->max_bytes)
    {
      if (log_rotate (l, err) < 0)
        return -1;
    }
  struct iovec iov[4] = {
    { prefix, plen },
    { (void *)a, alen },
    { (void *)b, blen },
    { (void *)"\n", 1 },
  };
  int iovcnt = 4, first = 0;
  size_t left = (size_t)total;
  while (left > 0)
    {
      ssize_t w = writev (l->fd, iov + first, iovcnt - first);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          return skiff_error_set (err, errno, "write log `%s`", l->path);
        }
      left -= (size_t)w;
      l->size += w;
      /* Skip what was written; rare (regular files take whole writes) but cheap. */
      size_t done = (size_t)w;
      while (first < iovcnt && done >= iov[first].iov_len)
        done -= iov[first++].iov_len;
      if (first < iovcnt)
        {
          iov[first].iov_base = (char *)iov[first].iov_base + done;
          iov[first].iov_len -= done;
        }
    }
  return 0;
}

void
mon_log_close (struct mon_log *l)
{
  if (l->fd >= 0)
    close (l->fd);
  l->fd = -1;
  free (l->path);
  l->path = NULL;
}

/* Appends to the pending partial line, growing the buffer (up to the cap) by doubling. */
static int
linebuf_append (struct mon_linebuf *lb, const char *data, size_t len)
{
  size_t need = lb->len + len;
  if (need > lb->cap)
    {
      size_t ncap = lb->cap ? lb->cap : 256;
      while (ncap < need)
        ncap *= 2;
      if (ncap > MON_LOG_LINE_MAX)
        ncap = MON_LOG_LINE_MAX;
      char *nb = realloc (lb->buf, ncap);
      if (nb == NULL)
        return -1;
      lb->buf = nb;
      lb->cap = ncap;
    }
  memcpy (lb->buf + lb->len, data, len);
  lb->len += len;
  return 0;
}

/* Drops the pending line; frees a buffer grown for a long line so idle streams stay small. */
static void
linebuf_reset (struct mon_linebuf *lb)
{
  lb->len = 0;
  if (lb->cap > 1024)
    {
      free (lb->buf);
      lb->buf = NULL;
      lb->cap = 0;
    }
}

int
mon_linebuf_feed (struct mon_linebuf *lb, const char *data, size_t len, mon_line_cb cb, void *opaque)
{
  while (len > 0)
    {
      const char *nl = memchr (data, '\n', len);
      size_t seg = nl ? (size_t)(nl - data) : len;
      size_t room = MON_LOG_LINE_MAX - lb->len;
      int r;
      if (seg > room)
        {
          /* The line goes past the cap: emit the first MON_LOG_LINE_MAX bytes as P. */
          r = cb (opaque, lb->buf, lb->len, data, room, true);
          linebuf_reset (lb);
          data += room;
          len -= room;
          if (r < 0)
            return r;
        }
      else if (nl)
        {
          r = cb (opaque, lb->buf, lb->len, data, seg, false);
          linebuf_reset (lb);
          data += seg + 1;
          len -= seg + 1;
          if (r < 0)
            return r;
        }
      else
        {
          if (linebuf_append (lb, data, seg) < 0)
            return -1;
          return 0;
        }
    }
  return 0;
}

int
mon_linebuf_flush (struct mon_linebuf *lb, mon_line_cb cb, void *opaque)
{
  if (lb->len == 0)
    return 0;
  int r = cb (opaque, lb->buf, lb->len, NULL, 0, false);
  linebuf_reset (lb);
  return r;
}

void
mon_linebuf_free (struct mon_linebuf *lb)
{
  free (lb->buf);
  lb->buf = NULL;
  lb->len = lb->cap = 0;
}
