/* test_image_pull_registry.c - pulls the fixture images from a local registry.
 *
 * Skipped unless SKIFF_TEST_REGISTRY (e.g. 127.0.0.1:5000) is set. Optional:
 *   SKIFF_FIXTURES             fixtures dir (default ../shared/fixtures relative to the repo)
 *   OCIFIX_IMAGES              image layouts (default /tmp/ocifix-images), for multilayer.expected
 *   SKIFF_TEST_REGISTRY_TLS    host:port of a `registry.sh start --auth --tls` registry
 *   SKIFF_TEST_REGISTRY_CA     its CA file
 * Needs root (overlay mount, chown).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "image/image.h"
#include "test.h"

static const char *registry;
static char fixtures[4096];

static int64_t
now_ms (void)
{
  return skiff_monotonic_ns () / 1000000;
}

static int
run (const char *cmd)
{
  int r = system (cmd);
  return r == -1 ? -1 : WEXITSTATUS (r);
}

static image_t *
pull (image_store_t *s, const char *name, const image_credentials_t *creds, char **errmsg)
{
  char ref[512];
  snprintf (ref, sizeof ref, "%s/%s", registry, name);
  image_t *img = NULL;
  skiff_error_t err = NULL;
  if (image_pull (s, ref, creds, NULL, NULL, &img, &err) < 0)
    {
      if (errmsg)
        *errmsg = strdup (err->msg);
      else
        fprintf (stderr, "pull %s: %s\n", ref, err->msg);
      CHECK_STR (err->code, "InaccessibleImage");
      skiff_error_release (&err);
      return NULL;
    }
  return img;
}

static image_store_t *
open_store (const char *dir, uint32_t shift)
{
  image_store_config_t cfg = { .data_dir = dir, .uid_shift = shift, .gid_shift = shift, .id_range = 65536 };
  image_store_t *s = NULL;
  skiff_error_t err = NULL;
  if (image_store_open (&cfg, &s, &err) < 0)
    {
      fprintf (stderr, "store: %s\n", err->msg);
      skiff_error_release (&err);
    }
  return s;
}

static void
test_busybox (image_store_t *s)
{
  image_t *img = pull (s, "busybox:latest", NULL, NULL);
  CHECK (img != NULL);
  if (!img)
    return;
  CHECK (img->layer_dirs && img->layer_dirs[0] && !img->layer_dirs[1]);
  CHECK (img->cmd && img->cmd[0] && strcmp (img->cmd[0], "sh") == 0 && !img->cmd[1]);
  CHECK (img->entrypoint == NULL);
  CHECK (img->env && img->env[0] && strncmp (img->env[0], "PATH=", 5) == 0);
  CHECK_STR (img->working_dir, "/");
  CHECK (strncmp (img->manifest_digest, "sha256:", 7) == 0);
  char p[4096];
  struct stat st;
  snprintf (p, sizeof p, "%s/bin/busybox", img->layer_dirs[0]);
  CHECK (lstat (p, &st) == 0 && st.st_uid == 100000 && S_ISREG (st.st_mode));
  snprintf (p, sizeof p, "%s/tmp", img->layer_dirs[0]);
  CHECK (lstat (p, &st) == 0 && (st.st_mode & 07777) == 01777);
  char want[600];
  snprintf (want, sizeof want, "%s/busybox:latest", registry);
  CHECK_STR (img->reference, want);
  image_free (img);
}

static void
test_multilayer (const char *dir)
{
  cleanup_free char *d = skiff_strdup_printf ("%s/noshift", dir);
  image_store_t *s = open_store (d, 0);
  image_t *img = pull (s, "busybox:multilayer", NULL, NULL);
  CHECK (img != NULL);
  if (img)
    {
      int n = 0;
      while (img->layer_dirs[n])
        n++;
      CHECK (n == 4);
      char lower[16384] = "";
      for (int i = n - 1; i >= 0; i--)
        {
          strcat (lower, img->layer_dirs[i]);
          if (i)
            strcat (lower, ":");
        }
      cleanup_free char *mnt = skiff_strdup_printf ("%s/mnt", dir);
      mkdir (mnt, 0755);
      cleanup_free char *opts = skiff_strdup_printf ("lowerdir=%s", lower);
      if (mount ("overlay", mnt, "overlay", MS_RDONLY, opts) < 0)
        {
          fprintf (stderr, "mount overlay: %s\n", strerror (errno));
          CHECK (0);
        }
      else
        {
          const char *images = getenv ("OCIFIX_IMAGES") ? getenv ("OCIFIX_IMAGES") : "/tmp/ocifix-images";
          cleanup_free char *cmd = skiff_strdup_printf (
              "bash -c 'diff <(%s/tree-listing.sh %s) %s/busybox/multilayer.expected'", fixtures, mnt, images);
          int r = run (cmd);
          CHECK (r == 0);
          if (r == 0)
            printf ("multilayer: merged overlay matches multilayer.expected\n");
          cleanup_free char *cmd2 = skiff_strdup_printf ("find %s -name '.wh.*' | grep -q . && exit 1; exit 0", mnt);
          CHECK (run (cmd2) == 0);
          umount2 (mnt, MNT_DETACH);
        }
    }
  image_free (img);
  image_store_close (s);
}

static void
test_webserver (image_store_t *s)
{
  image_t *img = pull (s, "webserver:latest", NULL, NULL);
  CHECK (img != NULL);
  if (!img)
    return;
  CHECK (img->cmd && img->cmd[0] && strcmp (img->cmd[0], "httpd") == 0);
  cleanup_free char *p = skiff_strdup_printf ("%s/www/index.html", img->layer_dirs[1]);
  cleanup_free char *body = NULL;
  size_t len = 0;
  skiff_error_t err = NULL;
  CHECK (skiff_read_file (p, 4096, &body, &len, &err) == 0 && strstr (body, "ocifix webserver OK"));
  skiff_error_release (&err);
  image_free (img);
}

static void
test_big (const char *dir)
{
  cleanup_free char *d = skiff_strdup_printf ("%s/big", dir);
  image_store_t *s = open_store (d, 100000);
  int64_t t0 = now_ms ();
  image_t *img = pull (s, "big:latest", NULL, NULL);
  int64_t t1 = now_ms ();
  CHECK (img != NULL);
  printf ("big:latest pulled and unpacked in %lld ms\n", (long long)(t1 - t0));
  if (img)
    {
      struct stat st;
      cleanup_free char *p = skiff_strdup_printf ("%s/data/random.bin", img->layer_dirs[1]);
      CHECK (stat (p, &st) == 0 && st.st_size == 96 * 1024 * 1024);
      cleanup_free char *q = skiff_strdup_printf ("find %s -type f | wc -l | grep -qx 10240", img->layer_dirs[3]);
      CHECK (run (q) == 0);
    }
  /* cached pull: no downloads */
  int64_t before = image_store_layer_downloads (s);
  image_t *again = pull (s, "big:latest", NULL, NULL);
  CHECK (again != NULL && image_store_layer_downloads (s) == before);
  image_free (again);
  image_free (img);
  image_store_close (s);
}

static void
test_evil (image_store_t *s)
{
  static const char *const tags[]
      = { "absolute", "bad-digest", "device", "hardlink", "size-lie", "symlink", "traversal", "whiteout-escape" };
  cleanup_free char *prep = skiff_strdup_printf ("%s/evil-harness.sh prepare", fixtures);
  CHECK (run (prep) == 0);
  for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
    {
      char name[64];
      snprintf (name, sizeof name, "evil:%s", tags[i]);
      char *msg = NULL;
      image_t *img = pull (s, name, NULL, &msg);
      CHECK (img == NULL);
      if (msg)
        printf ("%s rejected: %s\n", name, msg);
      free (msg);
      image_free (img);
    }
  cleanup_free char *check = skiff_strdup_printf ("%s/evil-harness.sh check", fixtures);
  CHECK (run (check) == 0);
  /* no scratch dir may remain */
}

typedef struct
{
  image_store_t *s;
  image_t *img;
} thr_t;

static void *
pull_thread (void *opaque)
{
  thr_t *t = opaque;
  t->img = pull (t->s, "busybox:multilayer", NULL, NULL);
  return NULL;
}

static void
test_concurrent (const char *dir)
{
  cleanup_free char *d = skiff_strdup_printf ("%s/conc", dir);
  image_store_t *s = open_store (d, 100000);
  thr_t a = { .s = s }, b = { .s = s };
  pthread_t ta, tb;
  pthread_create (&ta, NULL, pull_thread, &a);
  pthread_create (&tb, NULL, pull_thread, &b);
  pthread_join (ta, NULL);
  pthread_join (tb, NULL);
  CHECK (a.img && b.img);
  printf ("concurrent pulls: %lld layer downloads for 4 layers\n", (long long)image_store_layer_downloads (s));
  CHECK (image_store_layer_downloads (s) == 4);
  if (a.img && b.img)
    CHECK_STR (a.img->layer_dirs[3], b.img->layer_dirs[3]);
  /* gc keeping busybox:latest's manifest only: the 3 upper layers go */
  if (a.img)
    {
      skiff_error_t err = NULL;
      image_t *bb = pull (s, "busybox:latest", NULL, NULL);
      const char *keep[] = { bb ? bb->manifest_digest : NULL, NULL };
      int removed = image_gc (s, keep, &err);
      CHECK (removed >= 3);
      CHECK (access (a.img->layer_dirs[0], F_OK) == 0);
      CHECK (access (a.img->layer_dirs[3], F_OK) < 0);
      removed = image_gc (s, NULL, &err);
      CHECK (removed >= 1);
      CHECK (access (a.img->layer_dirs[0], F_OK) < 0);
      image_free (bb);
      skiff_error_release (&err);
    }
  image_free (a.img);
  image_free (b.img);
  image_store_close (s);
}

static void
test_tls_auth (const char *dir)
{
  const char *tls = getenv ("SKIFF_TEST_REGISTRY_TLS");
  const char *ca = getenv ("SKIFF_TEST_REGISTRY_CA");
  if (!tls || !ca)
    {
      printf ("TLS/auth registry test skipped (set SKIFF_TEST_REGISTRY_TLS and SKIFF_TEST_REGISTRY_CA)\n");
      return;
    }
  cleanup_free char *d = skiff_strdup_printf ("%s/tls", dir);
  image_store_config_t cfg = { .data_dir = d, .uid_shift = 100000, .gid_shift = 100000, .ca_file = ca };
  image_store_t *s = NULL;
  skiff_error_t err = NULL;
  CHECK (image_store_open (&cfg, &s, &err) == 0);
  /* 127.0.0.1 starts as plain http; the client switches to verified https when the registry
   * answers that it speaks TLS */
  const char *saved = registry;
  registry = tls;
  image_credentials_t creds[] = { { .server = tls, .username = "ocifix", .password = "ocifix-pass" }, { 0 } };
  char *msg = NULL;
  image_t *img = pull (s, "busybox:latest", NULL, &msg);
  CHECK (img == NULL);
  if (msg)
    printf ("without credentials: %s\n", msg);
  free (msg);
  image_free (img);
  img = pull (s, "busybox:latest", creds, NULL);
  CHECK (img != NULL);
  image_free (img);
  registry = saved;
  image_store_close (s);
}

int
main (void)
{
  registry = getenv ("SKIFF_TEST_REGISTRY");
  if (registry == NULL || *registry == '\0')
    {
      printf ("test_image_pull_registry: skipped (set SKIFF_TEST_REGISTRY=127.0.0.1:5000)\n");
      TEST_MAIN_END ();
    }
  const char *fx = getenv ("SKIFF_FIXTURES");
  if (fx)
    snprintf (fixtures, sizeof fixtures, "%s", fx);
  else
    {
      char cwd[2048];
      if (getcwd (cwd, sizeof cwd) == NULL)
        strcpy (cwd, ".");
      snprintf (fixtures, sizeof fixtures, "%s/../shared/fixtures", cwd);
    }
  char dir[] = "/tmp/skiff-image-test-XXXXXX";
  if (mkdtemp (dir) == NULL)
    return 1;

  cleanup_free char *main_dir = skiff_strdup_printf ("%s/main", dir);
  image_store_t *s = open_store (main_dir, 100000);
  CHECK (s != NULL);
  if (s)
    {
      test_busybox (s);
      test_webserver (s);
      test_evil (s);
      cleanup_free char *cmd = skiff_strdup_printf ("ls -A %s/layers | grep -q '^.tmp-' && exit 1; exit 0", main_dir);
      CHECK (run (cmd) == 0);
      image_store_close (s);
    }
  test_multilayer (dir);
  test_concurrent (dir);
  test_tls_auth (dir);
  test_big (dir);

  skiff_error_t err = NULL;
  skiff_rm_rf (dir, &err);
  skiff_error_release (&err);
  TEST_MAIN_END ();
}
