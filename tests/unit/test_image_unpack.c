/* test_image_unpack.c - the layer unpacker against hand-made tars (no network; run as root). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "image/image.h"
#include "test.h"

enum
{
  F = 1, /* file */
  D,     /* dir */
  L,     /* symlink */
  H,     /* hardlink */
  P,     /* fifo */
  C,     /* char device */
  B,     /* block device */
};

typedef struct
{
  int type;
  const char *path;
  const char *arg; /* file content, symlink or hardlink target */
  int mode;
  int uid;
} ent_t;

static char base[256];
static int counter;
static const image_store_config_t shift_cfg = { .uid_shift = 100000, .gid_shift = 100000, .id_range = 65536 };

/* Writes the entries as a pax tar into a memfd; gzip: pipe through `gzip` in two members. */
static int
make_tar (const ent_t *ents, size_t n, bool gzip)
{
  int fd = memfd_create ("tar", MFD_CLOEXEC);
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  archive_write_open_fd (a, fd);
  for (size_t i = 0; i < n; i++)
    {
      const ent_t *e = &ents[i];
      struct archive_entry *ae = archive_entry_new ();
      archive_entry_set_pathname (ae, e->path);
      archive_entry_set_uid (ae, e->uid);
      archive_entry_set_gid (ae, e->uid);
      archive_entry_set_mtime (ae, 1704067200, 0);
      int mode = e->mode ? e->mode : (e->type == D ? 0755 : 0644);
      switch (e->type)
        {
        case F:
          archive_entry_set_filetype (ae, AE_IFREG);
          archive_entry_set_size (ae, e->arg ? strlen (e->arg) : 0);
          break;
        case D:
          archive_entry_set_filetype (ae, AE_IFDIR);
          break;
        case L:
          archive_entry_set_filetype (ae, AE_IFLNK);
          archive_entry_set_symlink (ae, e->arg);
          mode = 0777;
          break;
        case H:
          archive_entry_set_filetype (ae, AE_IFREG);
          archive_entry_set_hardlink (ae, e->arg);
          break;
        case P:
          archive_entry_set_filetype (ae, AE_IFIFO);
          break;
        case C:
          archive_entry_set_filetype (ae, AE_IFCHR);
          archive_entry_set_rdevmajor (ae, 1);
          archive_entry_set_rdevminor (ae, 1);
          break;
        case B:
          archive_entry_set_filetype (ae, AE_IFBLK);
          archive_entry_set_rdevmajor (ae, 254);
          archive_entry_set_rdevminor (ae, 0);
          break;
        }
      archive_entry_set_perm (ae, mode);
      archive_write_header (a, ae);
      if (e->type == F && e->arg)
        archive_write_data (a, e->arg, strlen (e->arg));
      archive_entry_free (ae);
    }
  archive_write_close (a);
  archive_write_free (a);
  lseek (fd, 0, SEEK_SET);
  if (!gzip)
    return fd;
  /* two gzip members: the first 1024 bytes and the rest */
  char in[64], out[512];
  snprintf (in, sizeof in, "/proc/%d/fd/%d", (int)getpid (), fd);
  snprintf (out, sizeof out, "%s/tar.gz", base);
  cleanup_free char *cmd = skiff_strdup_printf (
      "(head -c 1024 %s | gzip -n; tail -c +1025 %s | gzip -n; printf '\\0\\0\\0\\0') > %s", in, in, out);
  CHECK (system (cmd) == 0);
  close (fd);
  return open (out, O_RDONLY | O_CLOEXEC);
}

static char *
new_dir (void)
{
  char *d = skiff_strdup_printf ("%s/l%d", base, counter++);
  mkdir (d, 0755);
  return d;
}

/* Unpacks; returns rc, *msg gets the error message (owned) or NULL. */
static int
unpack (const ent_t *ents, size_t n, const char *dir, char ***implicit, char **msg, bool gzip)
{
  int fd = make_tar (ents, n, gzip);
  skiff_error_t err = NULL;
  int rc = image_unpack_layer_fd (fd, gzip ? IMAGE_COMPRESSION_GZIP : IMAGE_COMPRESSION_NONE, dir, &shift_cfg, implicit,
                                  &err);
  close (fd);
  if (msg)
    *msg = err ? strdup (err->msg) : NULL;
  skiff_error_release (&err);
  return rc;
}

#define N(a) (sizeof (a) / sizeof ((a)[0]))

static void
expect_fail (const char *what, const ent_t *ents, size_t n, const char *needle)
{
  cleanup_free char *d = new_dir ();
  cleanup_free char *msg = NULL;
  int rc = unpack (ents, n, d, NULL, &msg, false);
  CHECK (rc < 0);
  if (rc < 0 && needle && (msg == NULL || strstr (msg, needle) == NULL))
    {
      fprintf (stderr, "FAIL %s: message `%s` lacks `%s`\n", what, msg ? msg : "", needle);
      test_failed++;
    }
  else if (rc < 0)
    printf ("%s: rejected: %s\n", what, msg);
}

static bool
file_is (const char *path, const char *content)
{
  cleanup_free char *buf = NULL;
  size_t len;
  skiff_error_t err = NULL;
  int rc = skiff_read_file (path, 1 << 20, &buf, &len, &err);
  skiff_error_release (&err);
  return rc == 0 && strcmp (buf, content) == 0;
}

static void
test_normal (bool gzip)
{
  char longname[200];
  snprintf (longname, sizeof longname, "a/%0150d", 7);
  const ent_t ents[] = {
    { D, "./", NULL, 0755, 0 },
    { D, "./a/", NULL, 0750, 0 },
    { F, "./a/f", "hello", 0640, 1000 },
    { L, "a/l", "f", 0, 0 },
    { L, "a/abs", "/etc/passwd", 0, 0 },
    { H, "a/h", "a/f", 0, 0 },
    { P, "a/p", NULL, 0600, 0 },
    { F, "a/s", "suid", 04755, 0 },
    { F, "b/c/d", "implicit parents", 0, 70000 },
    { F, longname, "long", 0, 0 },
    { D, "x/", NULL, 0, 0 },
    { F, "x/y", "in dir", 0, 0 },
    { F, "x", "file replacing a dir", 0, 0 },
    { F, "z", "file", 0, 0 },
    { D, "z/", NULL, 0700, 0 },
    { F, "z/inner", "dir replacing a file", 0, 0 },
    { F, "t", "orig", 0, 0 },
    { H, "u", "t", 0, 0 },
    { F, "u", "new", 0, 0 },
  };
  cleanup_free char *d = new_dir ();
  cleanup_strv char **implicit = NULL;
  cleanup_free char *msg = NULL;
  int rc = unpack (ents, N (ents), d, &implicit, &msg, gzip);
  CHECK (rc == 0);
  if (rc < 0)
    {
      fprintf (stderr, "  unpack: %s\n", msg);
      return;
    }
  struct stat st;
  char p[4096];
  snprintf (p, sizeof p, "%s/a/f", d);
  CHECK (file_is (p, "hello"));
  CHECK (lstat (p, &st) == 0 && st.st_uid == 101000 && st.st_gid == 101000 && (st.st_mode & 07777) == 0640);
  CHECK (st.st_nlink == 2);
  CHECK (st.st_mtime == 1704067200);
  snprintf (p, sizeof p, "%s/a", d);
  CHECK (lstat (p, &st) == 0 && S_ISDIR (st.st_mode) && (st.st_mode & 07777) == 0750 && st.st_uid == 100000);
  CHECK (st.st_mtime == 1704067200);
  char t[256];
  snprintf (p, sizeof p, "%s/a/l", d);
  ssize_t n = readlink (p, t, sizeof t - 1);
  CHECK (n == 1 && t[0] == 'f');
  CHECK (lstat (p, &st) == 0 && st.st_uid == 100000);
  snprintf (p, sizeof p, "%s/a/abs", d);
  n = readlink (p, t, sizeof t - 1);
  CHECK (n == 11 && strncmp (t, "/etc/passwd", 11) == 0);
  snprintf (p, sizeof p, "%s/a/h", d);
  CHECK (file_is (p, "hello"));
  snprintf (p, sizeof p, "%s/a/p", d);
  CHECK (lstat (p, &st) == 0 && S_ISFIFO (st.st_mode) && (st.st_mode & 07777) == 0600);
  snprintf (p, sizeof p, "%s/a/s", d);
  CHECK (lstat (p, &st) == 0 && (st.st_mode & 07777) == 04755 && st.st_uid == 100000);
  snprintf (p, sizeof p, "%s/b/c/d", d);
  CHECK (file_is (p, "implicit parents"));
  CHECK (lstat (p, &st) == 0 && st.st_uid == 100000 + 65534); /* uid 70000 is out of range */
  snprintf (p, sizeof p, "%s/%s", d, longname);
  CHECK (file_is (p, "long"));
  snprintf (p, sizeof p, "%s/x", d);
  CHECK (file_is (p, "file replacing a dir"));
  snprintf (p, sizeof p, "%s/z/inner", d);
  CHECK (file_is (p, "dir replacing a file"));
  snprintf (p, sizeof p, "%s/t", d);
  CHECK (file_is (p, "orig")); /* replaced u, did not write through the hardlink */
  snprintf (p, sizeof p, "%s/u", d);
  CHECK (file_is (p, "new"));
  /* implicit dirs: b and b/c */
  int nb = 0;
  for (char **i = implicit; i && *i; i++)
    nb += strcmp (*i, "b") == 0 || strcmp (*i, "b/c") == 0;
  CHECK (nb == 2);
}

static void
test_whiteouts (void)
{
  const ent_t lower[] = {
    { D, "d/", NULL, 0, 0 },
    { F, "d/old", "old", 0, 0 },
  };
  cleanup_free char *l1 = new_dir ();
  CHECK (unpack (lower, N (lower), l1, NULL, NULL, false) == 0);
  const ent_t upper[] = {
    { F, "d/.wh..wh..opq", "", 0, 0 }, { F, "d/new", "new", 0, 0 },       { F, "e/.wh.gone", "", 0, 0 },
    { F, "f/kept", "kept", 0, 0 },     { F, "f/.wh..wh..opq", "", 0, 0 }, { F, ".wh.top", "", 0, 0 },
  };
  cleanup_free char *l2 = new_dir ();
  CHECK (unpack (upper, N (upper), l2, NULL, NULL, false) == 0);
  char p[4096], v[8];
  struct stat st;
  snprintf (p, sizeof p, "%s/d", l2);
  CHECK (lgetxattr (p, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y');
  snprintf (p, sizeof p, "%s/d/new", l2);
  CHECK (file_is (p, "new"));
  snprintf (p, sizeof p, "%s/f/kept", l2);
  CHECK (file_is (p, "kept"));
  snprintf (p, sizeof p, "%s/f", l2);
  CHECK (lgetxattr (p, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y');
  snprintf (p, sizeof p, "%s/e/gone", l2);
  CHECK (lstat (p, &st) == 0 && S_ISCHR (st.st_mode) && st.st_rdev == makedev (0, 0) && st.st_uid == 100000);
  snprintf (p, sizeof p, "%s/top", l2);
  CHECK (lstat (p, &st) == 0 && S_ISCHR (st.st_mode));
  snprintf (p, sizeof p, "%s/e/.wh.gone", l2);
  CHECK (lstat (p, &st) < 0);
}

static void
test_evil (void)
{
  char pax[300];
  snprintf (pax, sizeof pax, "../../../../../../../../../../tmp/skiff-unpack-evil-pax-%0150d", 1);
  cleanup_free char *victim = skiff_strdup_printf ("%s/victim", base);
  cleanup_free char *victim_rel = skiff_strdup_printf ("../../../../../../../..%s/victim", base);
  int vfd = open (victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK (vfd >= 0 && write (vfd, "victim", 6) == 6);
  close (vfd);

  const ent_t trav[] = { { F, "../escape", "x", 0, 0 } };
  expect_fail ("traversal", trav, N (trav), "escapes the root");
  const ent_t trav2[] = { { F, "a/b/../../../escape", "x", 0, 0 } };
  expect_fail ("inner traversal", trav2, N (trav2), "escapes the root");
  const ent_t paxt[] = { { F, pax, "x", 0, 0 } };
  expect_fail ("pax path traversal", paxt, N (paxt), "escapes the root");
  const ent_t abs[] = { { F, "/tmp/skiff-unpack-evil-abs", "x", 0, 0 } };
  expect_fail ("absolute", abs, N (abs), "absolute");
  const ent_t sym[] = { { L, "esc", "/tmp", 0, 0 }, { F, "esc/skiff-unpack-evil-sym", "x", 0, 0 } };
  expect_fail ("symlink escape (same layer)", sym, N (sym), "symlink");
  const ent_t symrel[]
      = { { L, "esc", "../../../../../../../../tmp", 0, 0 }, { D, "esc/skiff-unpack-evil-symdir", NULL, 0, 0 } };
  expect_fail ("relative symlink escape", symrel, N (symrel), "symlink");
  const ent_t hl[] = { { H, "h", "/etc/passwd", 0, 0 } };
  expect_fail ("hardlink absolute", hl, N (hl), "absolute");
  ent_t hl2[] = { { H, "h", victim_rel, 0, 0 } };
  expect_fail ("hardlink traversal", hl2, N (hl2), "escapes the root");
  const ent_t hl3[] = { { H, "h", "missing", 0, 0 } };
  expect_fail ("hardlink to a missing name", hl3, N (hl3), "missing");
  const ent_t hl4[] = { { L, "s", "/tmp", 0, 0 }, { H, "h", "s/x", 0, 0 } };
  expect_fail ("hardlink through a symlink", hl4, N (hl4), "symlink");
  const ent_t dev[] = { { C, "mem", NULL, 0666, 0 } };
  expect_fail ("char device", dev, N (dev), "device");
  const ent_t blk[] = { { B, "vda", NULL, 0666, 0 } };
  expect_fail ("block device", blk, N (blk), "device");
  const ent_t wh[] = { { L, "w", base, 0, 0 }, { F, "w/.wh.victim", "", 0, 0 } };
  expect_fail ("whiteout through a symlink", wh, N (wh), "symlink");
  const ent_t opq[] = { { L, "w", base, 0, 0 }, { F, "w/.wh..wh..opq", "", 0, 0 } };
  expect_fail ("opaque through a symlink", opq, N (opq), "symlink");
  const ent_t whdot[] = { { F, ".wh..", "", 0, 0 } };
  expect_fail ("whiteout of ..", whdot, N (whdot), NULL);
  CHECK (file_is (victim, "victim"));
  CHECK (access ("/tmp/skiff-unpack-evil-abs", F_OK) < 0);
  CHECK (access ("/tmp/skiff-unpack-evil-sym", F_OK) < 0);
  CHECK (access ("/tmp/skiff-unpack-evil-symdir", F_OK) < 0);

  /* next-layer symlink escape: layer 1 has esc -> /tmp, layer 2 writes esc/file */
  const ent_t la[] = { { L, "esc", "/tmp", 0, 0 }, { D, "ok/", NULL, 0, 0 } };
  const ent_t lb[] = { { F, "esc/skiff-unpack-evil-next", "x", 0, 0 }, { F, "ok/fine", "x", 0, 0 } };
  cleanup_free char *d1 = new_dir ();
  cleanup_free char *d2 = new_dir ();
  cleanup_strv char **implicit = NULL;
  CHECK (unpack (la, N (la), d1, NULL, NULL, false) == 0);
  CHECK (unpack (lb, N (lb), d2, &implicit, NULL, false) == 0);
  const char *lowers[] = { d1, NULL };
  skiff_error_t err = NULL;
  CHECK (image_check_implicit_dirs (lowers, (const char *const *)implicit, &err) < 0);
  if (err)
    printf ("next-layer symlink escape: rejected: %s\n", err->msg);
  skiff_error_release (&err);
  CHECK (access ("/tmp/skiff-unpack-evil-next", F_OK) < 0);
  /* a dir in the lower layer is fine */
  const char *ok_implicit[] = { "ok", NULL };
  CHECK (image_check_implicit_dirs (lowers, ok_implicit, &err) == 0);
  skiff_error_release (&err);
}

static void
test_garbage (void)
{
  cleanup_free char *d = new_dir ();
  int fd = memfd_create ("junk", MFD_CLOEXEC);
  CHECK (write (fd, "\x1f\x8bjunkjunkjunk", 14) == 14);
  lseek (fd, 0, SEEK_SET);
  skiff_error_t err = NULL;
  CHECK (image_unpack_layer_fd (fd, IMAGE_COMPRESSION_GZIP, d, NULL, NULL, &err) < 0);
  if (err)
    printf ("corrupt gzip: rejected: %s\n", err->msg);
  skiff_error_release (&err);
  close (fd);
  fd = memfd_create ("junk", MFD_CLOEXEC);
  lseek (fd, 0, SEEK_SET);
  CHECK (image_unpack_layer_fd (fd, IMAGE_COMPRESSION_GZIP, d, NULL, NULL, &err) < 0);
  skiff_error_release (&err);
  close (fd);
}

int
main (void)
{
  if (geteuid () != 0)
    {
      printf ("test_image_unpack: skipped (needs root for chown and mknod)\n");
      TEST_MAIN_END ();
    }
  snprintf (base, sizeof base, "/tmp/skiff-unpack-test-XXXXXX");
  if (mkdtemp (base) == NULL)
    return 1;
  test_normal (false);
  test_normal (true);
  test_whiteouts ();
  test_evil ();
  test_garbage ();
  skiff_error_t err = NULL;
  skiff_rm_rf (base, &err);
  skiff_error_release (&err);
  TEST_MAIN_END ();
}
