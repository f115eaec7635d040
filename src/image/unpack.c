/* unpack.c - safe tar layer unpacker: igzip inflate -> libarchive -> files under a dir fd.
 *
 * Every name is resolved component by component with openat(O_NOFOLLOW|O_DIRECTORY) from the
 * layer root, so no symlink is ever followed; existing names are replaced (removed, then
 * created with O_EXCL), never written into.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <isa-l/igzip_lib.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "image/internal.h"

#define INFLATE_OUT_SIZE (1024 * 1024)
#define FD_READ_SIZE (1024 * 1024)

typedef struct
{
  image_source_fn src;
  void *src_opaque;
  image_compression_t compression;
  skiff_error_t err; /* error raised inside the read callback */
  bool src_eof;
  const uint8_t *in;
  size_t in_len;
  struct inflate_state *st;
  bool member_done;
  bool started;
  uint8_t *out;
} stream_t;

static ssize_t
stream_refill (stream_t *s)
{
  if (s->in_len > 0 || s->src_eof)
    return (ssize_t)s->in_len;
  const void *b = NULL;
  ssize_t r = s->src (s->src_opaque, &b, &s->err);
  if (r < 0)
    return -1;
  if (r == 0)
    s->src_eof = true;
  s->in = b;
  s->in_len = (size_t)r;
  return r;
}

/* Returns decompressed bytes in *buf: >0 bytes, 0 at end, -1 on error (s->err set). */
static ssize_t
stream_read (stream_t *s, const void **buf)
{
  if (s->compression != IMAGE_COMPRESSION_GZIP)
    {
      if (stream_refill (s) < 0)
        return -1;
      *buf = s->in;
      ssize_t n = (ssize_t)s->in_len;
      s->in_len = 0;
      return n;
    }
  for (;;)
    {
      if (stream_refill (s) < 0)
        return -1;
      if (s->member_done || !s->started)
        {
          if (s->in_len == 0)
            {
              if (!s->started)
                {
                  skiff_error_set (&s->err, 0, "gzip: empty layer blob");
                  return -1;
                }
              return 0;
            }
          if (s->in[0] != 0x1f)
            {
              if (!s->started)
                {
                  skiff_error_set (&s->err, 0, "gzip: not in gzip format");
                  return -1;
                }
              /* trailing padding after the last member: ignored (still read for the digest) */
              s->in_len = 0;
              return 0;
            }
          isal_inflate_reset (s->st);
          s->st->crc_flag = ISAL_GZIP;
          s->member_done = false;
          s->started = true;
        }
      s->st->next_in = (uint8_t *)s->in;
      s->st->avail_in = (uint32_t)(s->in_len > UINT32_MAX ? UINT32_MAX : s->in_len);
      s->st->next_out = s->out;
      s->st->avail_out = INFLATE_OUT_SIZE;
      size_t before = s->st->avail_in;
      int ret = isal_inflate (s->st);
      size_t used = before - s->st->avail_in;
      s->in += used;
      s->in_len -= used;
      if (ret < 0)
        {
          skiff_error_set (&s->err, 0, "gzip: corrupt data (igzip error %d)", ret);
          return -1;
        }
      if (s->st->block_state == ISAL_BLOCK_FINISH)
        s->member_done = true;
      size_t produced = INFLATE_OUT_SIZE - s->st->avail_out;
      if (produced > 0)
        {
          *buf = s->out;
          return (ssize_t)produced;
        }
      if (s->in_len == 0 && s->src_eof && !s->member_done)
        {
          skiff_error_set (&s->err, 0, "gzip: unexpected end of data");
          return -1;
        }
    }
}

static la_ssize_t
archive_read_cb (struct archive *a, void *opaque, const void **buf)
{
  stream_t *s = opaque;
  ssize_t r = stream_read (s, buf);
  if (r < 0)
    {
      archive_set_error (a, EIO, "%s", s->err ? s->err->msg : "read error");
      return -1;
    }
  return r;
}

/* ---- unpack state ---- */

typedef struct
{
  char *path;
  struct timespec ts[2];
} dir_time_t;

typedef struct
{
  int rootfd;
  uint32_t uid_shift, gid_shift, id_range;
  char *cache_path; /* parent path whose fd is cache_fd ("" = root) */
  int cache_fd;
  char **implicit;
  size_t n_implicit, cap_implicit;
  dir_time_t *dirs;
  size_t n_dirs, cap_dirs;
  char *entry_name; /* current entry, for messages */
} unpack_t;

static uid_t
map_uid (unpack_t *u, int64_t id)
{
  if (id < 0 || id >= (int64_t)u->id_range)
    id = 65534;
  return (uid_t)(u->uid_shift + (uint32_t)id);
}

static gid_t
map_gid (unpack_t *u, int64_t id)
{
  if (id < 0 || id >= (int64_t)u->id_range)
    id = 65534;
  return (gid_t)(u->gid_shift + (uint32_t)id);
}

static void
cache_drop (unpack_t *u)
{
  if (u->cache_fd >= 0 && u->cache_fd != u->rootfd)
    close (u->cache_fd);
  u->cache_fd = -1;
  free (u->cache_path);
  u->cache_path = NULL;
}

/* Removes `name` in dfd recursively, never following symlinks. Missing is fine. */
static int
rm_at (int dfd, const char *name, int depth)
{
  if (unlinkat (dfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return -1;
  if (depth > IMAGE_MAX_PATH)
    {
      errno = ELOOP;
      return -1;
    }
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  DIR *d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return -1;
    }
  struct dirent *de;
  int ret = 0;
  while ((de = readdir (d)))
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (rm_at (dirfd (d), de->d_name, depth + 1) < 0)
        {
          ret = -1;
          break;
        }
    }
  closedir (d);
  if (ret < 0)
    return -1;
  if (unlinkat (dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return -1;
  return 0;
}

static int
remove_existing (unpack_t *u, int pfd, const char *name, skiff_error_t *err)
{
  int r = rm_at (pfd, name, 0);
  int e = errno;
  cache_drop (u); /* a removed directory may be (a prefix of) the cached parent: callers reopen pfd */
  if (r < 0)
    return skiff_error_set (err, e, "entry `%s`: cannot replace existing name", u->entry_name);
  return 0;
}

static int
add_implicit (unpack_t *u, const char *path)
{
  if (u->n_implicit + 2 > u->cap_implicit)
    {
      size_t cap = u->cap_implicit ? u->cap_implicit * 2 : 16;
      char **n = realloc (u->implicit, cap * sizeof (char *));
      if (n == NULL)
        return -1;
      u->implicit = n;
      u->cap_implicit = cap;
    }
  u->implicit[u->n_implicit++] = skiff_strdup (path);
  u->implicit[u->n_implicit] = NULL;
  return 0;
}

static void
drop_implicit (unpack_t *u, const char *path)
{
  for (size_t i = 0; i < u->n_implicit; i++)
    if (strcmp (u->implicit[i], path) == 0)
      {
        free (u->implicit[i]);
        u->implicit[i] = u->implicit[--u->n_implicit];
        u->implicit[u->n_implicit] = NULL;
        return;
      }
}

/* Splits a tar name into a clean relative path (components joined by '/', no ".", no empty
 * ones). Rejects "..", absolute names and over-long names. Writes into out (IMAGE_MAX_PATH+1). */
static int
clean_path (const char *what, const char *name, char *out, skiff_error_t *err)
{
  if (name == NULL)
    return skiff_error_set (err, 0, "%s without a name", what);
  size_t len = strlen (name);
  if (len > IMAGE_MAX_PATH)
    return skiff_error_set (err, 0, "%s name is longer than %d bytes", what, IMAGE_MAX_PATH);
  if (name[0] == '/')
    return skiff_error_set (err, 0, "%s `%s` is an absolute path", what, name);
  size_t o = 0;
  const char *p = name;
  while (*p)
    {
      const char *e = strchr (p, '/');
      size_t cl = e ? (size_t)(e - p) : strlen (p);
      if (cl == 2 && p[0] == '.' && p[1] == '.')
        return skiff_error_set (err, 0, "%s `%s` escapes the root (`..` component)", what, name);
      if (!(cl == 0 || (cl == 1 && p[0] == '.')))
        {
          if (o)
            out[o++] = '/';
          memcpy (out + o, p, cl);
          o += cl;
        }
      p += cl;
      if (*p == '/')
        p++;
    }
  out[o] = '\0';
  return 0;
}

/* Walks to the directory `path` (clean, relative, not "") from the root without following
 * symlinks. create: make missing components (recorded as implicit). Returns an owned fd or -1
 * with err set. */
static int
walk_dir (unpack_t *u, const char *path, bool create, skiff_error_t *err)
{
  char buf[IMAGE_MAX_PATH + 1];
  strcpy (buf, path);
  int cur = u->rootfd;
  char *p = buf;
  for (;;)
    {
      char *slash = strchr (p, '/');
      if (slash)
        *slash = '\0';
      int fd = openat (cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && create)
        {
          if (mkdirat (cur, p, 0755) < 0 && errno != EEXIST)
            {
              int e = errno;
              if (cur != u->rootfd)
                close (cur);
              return skiff_error_set (err, e, "entry `%s`: cannot create parent `%s`", u->entry_name, buf);
            }
          if (fchownat (cur, p, map_uid (u, 0), map_gid (u, 0), AT_SYMLINK_NOFOLLOW) < 0)
            {
              int e = errno;
              if (cur != u->rootfd)
                close (cur);
              return skiff_error_set (err, e, "entry `%s`: chown `%s`", u->entry_name, buf);
            }
          add_implicit (u, buf);
          fd = openat (cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
      int e = errno;
      if (cur != u->rootfd)
        close (cur);
      if (fd < 0)
        {
          if (e == ELOOP || e == ENOTDIR)
            return skiff_error_set (err, 0, "entry `%s`: parent `%s` is a symlink or not a directory", u->entry_name,
                                    buf);
          return skiff_error_set (err, e, "entry `%s`: cannot open parent `%s`", u->entry_name, buf);
        }
      cur = fd;
      if (slash == NULL)
        break;
      *slash = '/';
      p = slash + 1;
    }
  return cur;
}

/* Like walk_dir but "" gives the root and the result is cached: do not close it. */
static int
open_dir (unpack_t *u, const char *path, bool create, skiff_error_t *err)
{
  if (path[0] == '\0')
    return u->rootfd;
  if (u->cache_path && strcmp (u->cache_path, path) == 0)
    return u->cache_fd;
  cache_drop (u);
  int fd = walk_dir (u, path, create, err);
  if (fd < 0)
    return -1;
  u->cache_path = skiff_strdup (path);
  u->cache_fd = fd;
  return fd;
}

static void
split_parent (char *path, const char **parent, const char **name)
{
  char *slash = strrchr (path, '/');
  if (slash == NULL)
    {
      *parent = "";
      *name = path;
    }
  else
    {
      *slash = '\0';
      *parent = path;
      *name = slash + 1;
    }
}

static int
write_file_data (struct archive *a, int fd, int64_t size, const char *name, skiff_error_t *err)
{
  int64_t pos = 0;
  for (;;)
    {
      const void *buf;
      size_t len;
      la_int64_t off;
      int r = archive_read_data_block (a, &buf, &len, &off);
      if (r == ARCHIVE_EOF)
        break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return skiff_error_set (err, 0, "entry `%s`: %s", name, archive_error_string (a));
      if (off < 0 || off + (int64_t)len > size)
        return skiff_error_set (err, 0, "entry `%s`: data beyond its size", name);
      if (off != pos)
        {
          if (lseek (fd, off, SEEK_SET) < 0)
            return skiff_error_set (err, errno, "entry `%s`: seek", name);
          pos = off;
        }
      const char *b = buf;
      while (len > 0)
        {
          ssize_t w = write (fd, b, len);
          if (w < 0)
            {
              if (errno == EINTR)
                continue;
              return skiff_error_set (err, errno, "entry `%s`: write", name);
            }
          b += w;
          len -= (size_t)w;
          pos += w;
        }
    }
  if (pos < size && ftruncate (fd, size) < 0)
    return skiff_error_set (err, errno, "entry `%s`: truncate", name);
  return 0;
}

static int
add_dir_time (unpack_t *u, const char *path, struct archive_entry *e)
{
  if (u->n_dirs == u->cap_dirs)
    {
      size_t cap = u->cap_dirs ? u->cap_dirs * 2 : 64;
      dir_time_t *n = realloc (u->dirs, cap * sizeof (*n));
      if (n == NULL)
        return -1;
      u->dirs = n;
      u->cap_dirs = cap;
    }
  dir_time_t *d = &u->dirs[u->n_dirs++];
  d->path = skiff_strdup (path);
  d->ts[0].tv_sec = archive_entry_atime_is_set (e) ? archive_entry_atime (e) : archive_entry_mtime (e);
  d->ts[0].tv_nsec = archive_entry_atime_is_set (e) ? archive_entry_atime_nsec (e) : archive_entry_mtime_nsec (e);
  d->ts[1].tv_sec = archive_entry_mtime (e);
  d->ts[1].tv_nsec = archive_entry_mtime_nsec (e);
  return 0;
}

static mode_t
current_umask (void)
{
  static mode_t mask = (mode_t)-1;
  if (mask == (mode_t)-1)
    {
      mode_t m = 0777; /* unknown: always chmod */
      cleanup_file FILE *f = fopen ("/proc/self/status", "re");
      char line[256];
      while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "Umask:", 6) == 0)
          {
            m = (mode_t)strtoul (line + 6, NULL, 8);
            break;
          }
      mask = m;
    }
  return mask;
}

static int
unpack_entry (unpack_t *u, struct archive *a, struct archive_entry *e, skiff_error_t *err)
{
  char path[IMAGE_MAX_PATH + 1];
  const char *raw = archive_entry_pathname (e);
  free (u->entry_name);
  u->entry_name = skiff_strdup (raw ? raw : "(null)");
  if (clean_path ("entry", raw, path, err) < 0)
    return -1;

  mode_t type = archive_entry_filetype (e);
  const char *hardlink = archive_entry_hardlink (e);
  int64_t size = archive_entry_size (e);
  if (size < 0 || size > IMAGE_MAX_ENTRY_SIZE)
    return skiff_error_set (err, 0, "entry `%s` is too large (%lld bytes)", u->entry_name, (long long)size);

  if (!hardlink && (type == AE_IFCHR || type == AE_IFBLK))
    return skiff_error_set (err, 0, "entry `%s` is a %s device node (%u:%u): device nodes are not allowed",
                            u->entry_name, type == AE_IFCHR ? "char" : "block", (unsigned)archive_entry_rdevmajor (e),
                            (unsigned)archive_entry_rdevminor (e));

  if (path[0] == '\0')
    {
      /* the root itself ("./"): only its times are kept */
      if (type == AE_IFDIR)
        add_dir_time (u, "", e);
      return 0;
    }

  char full[IMAGE_MAX_PATH + 1];
  strcpy (full, path);
  const char *parent, *name;
  split_parent (path, &parent, &name);

  /* whiteouts */
  if (strncmp (name, ".wh.", 4) == 0)
    {
      int pfd = open_dir (u, parent, true, err);
      if (pfd < 0)
        return -1;
      if (strcmp (name, ".wh..wh..opq") == 0)
        {
          if (fsetxattr (pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
            return skiff_error_set (err, errno, "entry `%s`: cannot mark the directory opaque", u->entry_name);
          return 0;
        }
      if (strncmp (name, ".wh..wh.", 8) == 0)
        return 0; /* aufs metadata (e.g. .wh..wh.plnk): nothing to do for overlay */
      const char *victim = name + 4;
      if (victim[0] == '\0' || strcmp (victim, ".") == 0 || strcmp (victim, "..") == 0)
        return skiff_error_set (err, 0, "entry `%s`: invalid whiteout", u->entry_name);
      if (remove_existing (u, pfd, victim, err) < 0)
        return -1;
      pfd = open_dir (u, parent, false, err);
      if (pfd < 0)
        return -1;
      if (mknodat (pfd, victim, S_IFCHR | 0, makedev (0, 0)) < 0)
        return skiff_error_set (err, errno, "entry `%s`: cannot create whiteout", u->entry_name);
      if (fchownat (pfd, victim, map_uid (u, 0), map_gid (u, 0), AT_SYMLINK_NOFOLLOW) < 0)
        return skiff_error_set (err, errno, "entry `%s`: chown whiteout", u->entry_name);
      return 0;
    }

  int pfd = open_dir (u, parent, true, err);
  if (pfd < 0)
    return -1;
  uid_t uid = map_uid (u, archive_entry_uid (e));
  gid_t gid = map_gid (u, archive_entry_gid (e));
  mode_t mode = archive_entry_perm (e) & 07777;
  struct timespec ts[2] = { { archive_entry_mtime (e), archive_entry_mtime_nsec (e) },
                            { archive_entry_mtime (e), archive_entry_mtime_nsec (e) } };
  if (archive_entry_atime_is_set (e))
    {
      ts[0].tv_sec = archive_entry_atime (e);
      ts[0].tv_nsec = archive_entry_atime_nsec (e);
    }

  if (hardlink)
    {
      char target[IMAGE_MAX_PATH + 1];
      if (clean_path ("hardlink target of", hardlink, target, err) < 0)
        return skiff_error_wrap (err, "entry `%s`", u->entry_name);
      if (target[0] == '\0' || strcmp (target, full) == 0)
        return skiff_error_set (err, 0, "entry `%s`: invalid hardlink target `%s`", u->entry_name, hardlink);
      const char *tparent, *tname;
      split_parent (target, &tparent, &tname);
      /* the target's parent must exist in this layer */
      cleanup_close int tfd_owned = -1;
      int tfd = u->rootfd;
      if (tparent[0] != '\0')
        {
          tfd_owned = walk_dir (u, tparent, false, err);
          if (tfd_owned < 0)
            return skiff_error_wrap (err, "hardlink `%s` -> `%s`: target not in this layer", u->entry_name, hardlink);
          tfd = tfd_owned;
        }
      pfd = open_dir (u, parent, true, err);
      if (pfd < 0)
        return -1;
      for (int attempt = 0;; attempt++)
        {
          if (linkat (tfd, tname, pfd, name, 0) == 0)
            break;
          int e = errno;
          if (e == EEXIST && attempt == 0)
            {
              if (remove_existing (u, pfd, name, err) < 0)
                return -1;
              pfd = open_dir (u, parent, false, err);
              if (pfd < 0)
                return -1;
              continue;
            }
          if (e == ENOENT)
            return skiff_error_set (err, 0, "hardlink `%s` -> `%s`: target missing in this layer", u->entry_name,
                                    hardlink);
          return skiff_error_set (err, e, "hardlink `%s` -> `%s`", u->entry_name, hardlink);
        }
      return 0;
    }

  switch (type)
    {
    case AE_IFREG:
      {
        int fd = -1;
        for (int attempt = 0; attempt < 2; attempt++)
          {
            fd = openat (pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
            if (fd >= 0 || errno != EEXIST || attempt > 0)
              break;
            if (remove_existing (u, pfd, name, err) < 0)
              return -1;
            pfd = open_dir (u, parent, false, err);
            if (pfd < 0)
              return -1;
          }
        if (fd < 0)
          return skiff_error_set (err, errno, "entry `%s`: cannot create file", u->entry_name);
        cleanup_close int cfd = fd;
        if (write_file_data (a, cfd, size, u->entry_name, err) < 0)
          return -1;
        /* the mode given to open is exact unless umask masked bits or special bits (which chown
         * clears) are wanted: only then chmod, after chown */
        bool need_chmod = (mode & 07000) || (mode & current_umask ());
        if (fchown (cfd, uid, gid) < 0 || (need_chmod && fchmod (cfd, mode) < 0) || futimens (cfd, ts) < 0)
          return skiff_error_set (err, errno, "entry `%s`: cannot set owner, mode or times", u->entry_name);
        return 0;
      }
    case AE_IFDIR:
      {
        if (mkdirat (pfd, name, 0700) < 0)
          {
            if (errno != EEXIST)
              return skiff_error_set (err, errno, "entry `%s`: cannot create directory", u->entry_name);
            struct stat st;
            if (fstatat (pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
              return skiff_error_set (err, errno, "entry `%s`: stat", u->entry_name);
            if (!S_ISDIR (st.st_mode))
              {
                if (remove_existing (u, pfd, name, err) < 0)
                  return -1;
                pfd = open_dir (u, parent, false, err);
                if (pfd < 0)
                  return -1;
                if (mkdirat (pfd, name, 0700) < 0)
                  return skiff_error_set (err, errno, "entry `%s`: cannot create directory", u->entry_name);
              }
            else
              drop_implicit (u, full);
          }
        cleanup_close int dfd = openat (pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
          return skiff_error_set (err, errno, "entry `%s`: cannot open directory", u->entry_name);
        if (fchown (dfd, uid, gid) < 0 || fchmod (dfd, mode) < 0)
          return skiff_error_set (err, errno, "entry `%s`: cannot set owner or mode", u->entry_name);
        return add_dir_time (u, full, e);
      }
    case AE_IFLNK:
      {
        const char *target = archive_entry_symlink (e);
        if (target == NULL || strlen (target) > IMAGE_MAX_PATH)
          return skiff_error_set (err, 0, "entry `%s`: missing or over-long symlink target", u->entry_name);
        for (int attempt = 0;; attempt++)
          {
            if (symlinkat (target, pfd, name) == 0)
              break;
            if (errno != EEXIST || attempt > 0)
              return skiff_error_set (err, errno, "entry `%s`: cannot create symlink", u->entry_name);
            if (remove_existing (u, pfd, name, err) < 0)
              return -1;
            pfd = open_dir (u, parent, false, err);
            if (pfd < 0)
              return -1;
          }
        if (fchownat (pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0
            || utimensat (pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
          return skiff_error_set (err, errno, "entry `%s`: cannot set symlink owner or times", u->entry_name);
        return 0;
      }
    case AE_IFIFO:
      {
        for (int attempt = 0;; attempt++)
          {
            if (mknodat (pfd, name, S_IFIFO | 0600, 0) == 0)
              break;
            if (errno != EEXIST || attempt > 0)
              return skiff_error_set (err, errno, "entry `%s`: cannot create fifo", u->entry_name);
            if (remove_existing (u, pfd, name, err) < 0)
              return -1;
            pfd = open_dir (u, parent, false, err);
            if (pfd < 0)
              return -1;
          }
        if (fchownat (pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 || fchmodat (pfd, name, mode, 0) < 0
            || utimensat (pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
          return skiff_error_set (err, errno, "entry `%s`: cannot set fifo owner, mode or times", u->entry_name);
        return 0;
      }
    default:
      return skiff_error_set (err, 0, "entry `%s` has an unsupported type (0%o)", u->entry_name, (unsigned)type);
    }
}

static void
apply_dir_times (unpack_t *u)
{
  for (size_t i = u->n_dirs; i-- > 0;)
    {
      skiff_error_t e = NULL;
      char *p = u->dirs[i].path;
      if (p[0] == '\0')
        {
          futimens (u->rootfd, u->dirs[i].ts);
          continue;
        }
      char tmp[IMAGE_MAX_PATH + 1];
      strcpy (tmp, p);
      const char *parent, *name;
      split_parent (tmp, &parent, &name);
      int pfd = open_dir (u, parent, false, &e);
      if (pfd >= 0)
        utimensat (pfd, name, u->dirs[i].ts, AT_SYMLINK_NOFOLLOW);
      skiff_error_release (&e);
    }
}

int
image_layer_compression (const char *media_type)
{
  if (media_type == NULL)
    return -1;
  static const struct
  {
    const char *mt;
    image_compression_t c;
  } table[] = {
    { "application/vnd.oci.image.layer.v1.tar+gzip", IMAGE_COMPRESSION_GZIP },
    { "application/vnd.docker.image.rootfs.diff.tar.gzip", IMAGE_COMPRESSION_GZIP },
    { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", IMAGE_COMPRESSION_GZIP },
    { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", IMAGE_COMPRESSION_GZIP },
    { "application/vnd.oci.image.layer.v1.tar", IMAGE_COMPRESSION_NONE },
    { "application/vnd.docker.image.rootfs.diff.tar", IMAGE_COMPRESSION_NONE },
    { "application/vnd.oci.image.layer.nondistributable.v1.tar", IMAGE_COMPRESSION_NONE },
    { "application/vnd.oci.image.layer.v1.tar+zstd", IMAGE_COMPRESSION_ZSTD },
    { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", IMAGE_COMPRESSION_ZSTD },
  };
  for (size_t i = 0; i < sizeof (table) / sizeof (table[0]); i++)
    if (strcmp (media_type, table[i].mt) == 0)
      return (int)table[i].c;
  return -1;
}

int
image_unpack_stream (image_source_fn src, void *opaque, image_compression_t compression, const char *dest_dir,
                     const image_store_config_t *cfg, char ***implicit_dirs, skiff_error_t *err)
{
  int ret = -1;
  stream_t s = { .src = src, .src_opaque = opaque, .compression = compression };
  unpack_t u = { .rootfd = -1,
                 .cache_fd = -1,
                 .uid_shift = cfg ? cfg->uid_shift : 0,
                 .gid_shift = cfg ? cfg->gid_shift : 0,
                 .id_range = cfg && cfg->id_range ? cfg->id_range : 65536 };
  struct archive *a = NULL;

  u.rootfd = open (dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (u.rootfd < 0)
    {
      skiff_error_set (err, errno, "open `%s`", dest_dir);
      goto out;
    }
  if (compression == IMAGE_COMPRESSION_GZIP)
    {
      s.st = calloc (1, sizeof (*s.st));
      s.out = malloc (INFLATE_OUT_SIZE);
      if (s.st == NULL || s.out == NULL)
        {
          skiff_error_set (err, ENOMEM, "unpack");
          goto out;
        }
    }
  a = archive_read_new ();
  if (a == NULL)
    {
      skiff_error_set (err, ENOMEM, "archive_read_new");
      goto out;
    }
  archive_read_support_format_tar (a);
  if (compression == IMAGE_COMPRESSION_ZSTD && archive_read_support_filter_zstd (a) != ARCHIVE_OK)
    {
      skiff_error_set (err, 0, "zstd-compressed layers are not supported by this build of libarchive");
      goto out;
    }
  if (archive_read_open (a, &s, NULL, archive_read_cb, NULL) != ARCHIVE_OK)
    {
      if (s.err)
        skiff_error_set (err, 0, "%s", s.err->msg);
      else
        skiff_error_set (err, 0, "not a tar archive: %s", archive_error_string (a));
      goto out;
    }
  int64_t count = 0;
  for (;;)
    {
      struct archive_entry *e;
      int r = archive_read_next_header (a, &e);
      if (r == ARCHIVE_EOF)
        break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        {
          if (s.err)
            skiff_error_set (err, 0, "%s", s.err->msg);
          else
            skiff_error_set (err, 0, "tar: %s", archive_error_string (a));
          goto out;
        }
      if (++count > IMAGE_MAX_ENTRIES)
        {
          skiff_error_set (err, 0, "more than %d entries in the layer", IMAGE_MAX_ENTRIES);
          goto out;
        }
      if (unpack_entry (&u, a, e, err) < 0)
        {
          if (s.err)
            skiff_error_set (err, 0, "%s", s.err->msg);
          goto out;
        }
    }
  /* read what follows the tar end (padding, gzip trailer) so the source sees every byte */
  for (;;)
    {
      const void *b;
      ssize_t r = stream_read (&s, &b);
      if (r < 0)
        {
          skiff_error_set (err, 0, "%s", s.err->msg);
          goto out;
        }
      if (r == 0)
        break;
    }
  while (!s.src_eof)
    {
      s.in_len = 0;
      if (stream_refill (&s) < 0)
        {
          skiff_error_set (err, 0, "%s", s.err->msg);
          goto out;
        }
    }
  apply_dir_times (&u);
  if (implicit_dirs)
    {
      if (u.implicit == NULL)
        u.implicit = calloc (1, sizeof (char *));
      *implicit_dirs = steal_pointer (&u.implicit);
    }
  ret = 0;
out:
  if (a)
    archive_read_free (a);
  cache_drop (&u);
  if (u.rootfd >= 0)
    close (u.rootfd);
  skiff_strv_free (u.implicit);
  for (size_t i = 0; i < u.n_dirs; i++)
    free (u.dirs[i].path);
  free (u.dirs);
  free (u.entry_name);
  free (s.st);
  free (s.out);
  skiff_error_release (&s.err);
  return ret;
}

typedef struct
{
  int fd;
  char *buf;
} fd_source_t;

static ssize_t
fd_source_read (void *opaque, const void **buf, skiff_error_t *err)
{
  fd_source_t *f = opaque;
  for (;;)
    {
      ssize_t r = read (f->fd, f->buf, FD_READ_SIZE);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return skiff_error_set (err, errno, "read layer");
      *buf = f->buf;
      return r;
    }
}

int
image_unpack_layer_fd (int fd, image_compression_t compression, const char *dest_dir, const image_store_config_t *cfg,
                       char ***implicit_dirs, skiff_error_t *err)
{
  cleanup_free char *buf = malloc (FD_READ_SIZE);
  if (buf == NULL)
    return skiff_error_set (err, ENOMEM, "unpack");
  fd_source_t f = { .fd = fd, .buf = buf };
  return image_unpack_stream (fd_source_read, &f, compression, dest_dir, cfg, implicit_dirs, err);
}

/* Looks `path` up in layer dir `root` without following symlinks: 1 when every component is a
 * directory, 0 when one is missing (or whited out: then *stop is set, lower layers are hidden),
 * -1 when one is a symlink or not a directory. */
static int
lookup_in_layer (const char *root, const char *path, bool *stop)
{
  int cur = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0)
    return 0;
  char buf[IMAGE_MAX_PATH + 1];
  snprintf (buf, sizeof buf, "%s", path);
  char *p = buf;
  int ret = 1;
  for (;;)
    {
      char *slash = strchr (p, '/');
      if (slash)
        *slash = '\0';
      struct stat st;
      if (fstatat (cur, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          ret = 0;
          break;
        }
      if (S_ISCHR (st.st_mode) && st.st_rdev == makedev (0, 0))
        {
          *stop = true; /* whited out: lower layers do not matter */
          ret = 0;
          break;
        }
      if (!S_ISDIR (st.st_mode))
        {
          ret = -1;
          break;
        }
      int fd = openat (cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        {
          ret = -1;
          break;
        }
      close (cur);
      cur = fd;
      if (slash == NULL)
        break;
      p = slash + 1;
    }
  close (cur);
  return ret;
}

int
image_check_implicit_dirs (const char *const *lower_dirs, const char *const *implicit_dirs, skiff_error_t *err)
{
  if (lower_dirs == NULL || implicit_dirs == NULL)
    return 0;
  size_t n = 0;
  while (lower_dirs[n])
    n++;
  for (const char *const *d = implicit_dirs; *d; d++)
    {
      bool stop = false;
      for (size_t i = n; i-- > 0 && !stop;)
        {
          int r = lookup_in_layer (lower_dirs[i], *d, &stop);
          if (r < 0)
            return skiff_error_set (err, 0,
                                    "directory `%s` is a symlink or not a directory in a lower layer: entries "
                                    "below it would not land where the image meant",
                                    *d);
          if (r > 0)
            break;
        }
    }
  return 0;
}
