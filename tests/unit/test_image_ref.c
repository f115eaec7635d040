/* test_image_ref.c - image reference parsing, normalization, media types. */
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "image/image.h"
#include "test.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
ok (const char *in, const char *registry, const char *api, const char *repo, const char *tag, const char *digest,
    const char *normalized)
{
  image_ref_t r;
  skiff_error_t err = NULL;
  int rc = image_ref_parse (in, &r, &err);
  CHECK (rc == 0);
  if (rc < 0)
    {
      fprintf (stderr, "  %s: %s\n", in, err->msg);
      skiff_error_release (&err);
      return;
    }
  CHECK_STR (r.registry, registry);
  CHECK_STR (r.api_host, api);
  CHECK_STR (r.repository, repo);
  if (tag)
    CHECK_STR (r.tag, tag);
  else
    CHECK (r.tag == NULL);
  if (digest)
    CHECK_STR (r.digest, digest);
  else
    CHECK (r.digest == NULL);
  cleanup_free char *n = image_ref_format (&r);
  CHECK_STR (n, normalized);
  image_ref_clear (&r);
}

static void
bad (const char *in)
{
  image_ref_t r;
  skiff_error_t err = NULL;
  int rc = image_ref_parse (in, &r, &err);
  CHECK (rc < 0);
  if (rc < 0)
    {
      CHECK_STR (err->code, "InvalidImage");
      CHECK (err->http_status == 400);
    }
  else
    {
      fprintf (stderr, "  accepted invalid reference `%s`\n", in);
      image_ref_clear (&r);
    }
  skiff_error_release (&err);
}

int
main (void)
{
  ok ("busybox", "docker.io", "registry-1.docker.io", "library/busybox", "latest", NULL,
      "docker.io/library/busybox:latest");
  ok ("busybox:1.36", "docker.io", "registry-1.docker.io", "library/busybox", "1.36", NULL,
      "docker.io/library/busybox:1.36");
  ok ("docker.io/busybox", "docker.io", "registry-1.docker.io", "library/busybox", "latest", NULL,
      "docker.io/library/busybox:latest");
  ok ("index.docker.io/user/app:v1", "docker.io", "registry-1.docker.io", "user/app", "v1", NULL,
      "docker.io/user/app:v1");
  ok ("user/app", "docker.io", "registry-1.docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest");
  ok ("127.0.0.1:5000/busybox@sha256:" D64, "127.0.0.1:5000", "127.0.0.1:5000", "busybox", NULL, "sha256:" D64,
      "127.0.0.1:5000/busybox@sha256:" D64);
  ok ("127.0.0.1:5000/busybox:multilayer", "127.0.0.1:5000", "127.0.0.1:5000", "busybox", "multilayer", NULL,
      "127.0.0.1:5000/busybox:multilayer");
  ok ("localhost/foo", "localhost", "localhost", "foo", "latest", NULL, "localhost/foo:latest");
  ok ("localhost:5000/a/b/c:tag_1.x-y", "localhost:5000", "localhost:5000", "a/b/c", "tag_1.x-y", NULL,
      "localhost:5000/a/b/c:tag_1.x-y");
  ok ("myregistry.azurecr.io/samples/nginx:latest@sha256:" D64, "myregistry.azurecr.io", "myregistry.azurecr.io",
      "samples/nginx", "latest", "sha256:" D64, "myregistry.azurecr.io/samples/nginx:latest@sha256:" D64);
  ok ("mcr.microsoft.com/azuredocs/aci-helloworld", "mcr.microsoft.com", "mcr.microsoft.com",
      "azuredocs/aci-helloworld", "latest", NULL, "mcr.microsoft.com/azuredocs/aci-helloworld:latest");
  ok ("a__b/c-d--e/f.g", "docker.io", "registry-1.docker.io", "a__b/c-d--e/f.g", "latest", NULL,
      "docker.io/a__b/c-d--e/f.g:latest");
  ok ("[::1]:5000/x", "[::1]:5000", "[::1]:5000", "x", "latest", NULL, "[::1]:5000/x:latest");

  bad ("");
  bad ("Busybox");
  bad ("busybox:");
  bad ("busybox::x");
  bad ("busybox@sha256:abc");
  bad ("busybox@md5:" D64);
  bad ("busybox@sha256:"
       "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef");
  bad ("a/../b");
  bad ("-x");
  bad ("x-");
  bad ("a//b");
  bad ("/busybox");
  bad ("busybox/");
  bad ("bad host:5000/x");
  bad ("host:99999999/x");
  bad ("busybox:-tag");
  bad ("busy\nbox");
  {
    char big[2048];
    memset (big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    bad (big);
  }

  CHECK (image_layer_compression ("application/vnd.oci.image.layer.v1.tar+gzip") == IMAGE_COMPRESSION_GZIP);
  CHECK (image_layer_compression ("application/vnd.docker.image.rootfs.diff.tar.gzip") == IMAGE_COMPRESSION_GZIP);
  CHECK (image_layer_compression ("application/vnd.oci.image.layer.v1.tar") == IMAGE_COMPRESSION_NONE);
  CHECK (image_layer_compression ("application/vnd.oci.image.layer.v1.tar+zstd") == IMAGE_COMPRESSION_ZSTD);
  CHECK (image_layer_compression ("application/octet-stream") < 0);
  CHECK (image_layer_compression (NULL) < 0);
  TEST_MAIN_END ();
}
