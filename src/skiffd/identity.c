/* identity.c - skiffd's TLS certificate and token-signing key. */
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "identity.h"

static void
strv_add (char ***v, int *n, const char *s)
{
  for (int i = 0; i < *n; i++)
    if (strcmp ((*v)[i], s) == 0)
      return;
  char **nv = realloc (*v, sizeof (char *) * (size_t)(*n + 2));
  if (nv == NULL)
    abort ();
  nv[(*n)++] = skiff_strdup (s);
  nv[*n] = NULL;
  *v = nv;
}

static int
is_ip (const char *s)
{
  unsigned char buf[16];
  return inet_pton (AF_INET, s, buf) == 1 || inet_pton (AF_INET6, s, buf) == 1;
}

int
identity_setup (const char *data, const char *listen_addr, const char *const *extra_names, const char *tls_cert,
                const char *tls_key, identity_t *id, skiff_error_t *err)
{
  int n = 0;
  char host[256] = "";
  strv_add (&id->names, &n, "localhost");
  strv_add (&id->names, &n, "127.0.0.1");
  if (gethostname (host, sizeof (host) - 1) == 0 && host[0])
    strv_add (&id->names, &n, host);
  if (listen_addr && strcmp (listen_addr, "0.0.0.0") != 0)
    strv_add (&id->names, &n, listen_addr);
  for (const char *const *e = extra_names; e && *e; e++)
    strv_add (&id->names, &n, *e);

  if (tls_cert)
    {
      id->cert = skiff_strdup (tls_cert);
      id->key = skiff_strdup (tls_key);
    }
  else
    {
      const char *dns[MAX_HOST_NAMES + 8] = { 0 }, *ips[MAX_HOST_NAMES + 8] = { 0 };
      int nd = 0, ni = 0;
      ips[ni++] = "::1";
      for (char **p = id->names; *p && nd < MAX_HOST_NAMES + 4 && ni < MAX_HOST_NAMES + 4; p++)
        {
          if (is_ip (*p))
            ips[ni++] = *p;
          else
            dns[nd++] = *p;
        }
      cleanup_free char *dir = skiff_strdup_printf ("%s/pki", data);
      if (auth_pki_ensure (dir, dns, ips, err) < 0)
        return skiff_error_wrap (err, "set up the local CA in %s", dir);
      id->cert = skiff_strdup_printf ("%s/server.pem", dir);
      id->key = skiff_strdup_printf ("%s/server.key", dir);
      id->ca = skiff_strdup_printf ("%s/ca.pem", dir);
    }
  cleanup_free char *keyfile = skiff_strdup_printf ("%s/keys/token-signing.pem", data);
  if (auth_key_load_or_create (keyfile, &id->signing_key, err) < 0)
    return skiff_error_wrap (err, "load the token-signing key %s", keyfile);
  return 0;
}

void
identity_audiences (identity_t *id, int port)
{
  int n = 0;
  strv_add (&id->audiences, &n, "https://management.core.windows.net/");
  strv_add (&id->audiences, &n, "https://management.azure.com/");
  for (char **p = id->names; p && *p; p++)
    {
      cleanup_free char *a = strchr (*p, ':') ? skiff_strdup_printf ("https://[%s]:%d/", *p, port)
                                              : skiff_strdup_printf ("https://%s:%d/", *p, port);
      strv_add (&id->audiences, &n, a);
      if (port == 443)
        {
          cleanup_free char *b = skiff_strdup_printf ("https://%s/", *p);
          strv_add (&id->audiences, &n, b);
        }
    }
}

void
identity_clear (identity_t *id)
{
  free (id->cert);
  free (id->key);
  free (id->ca);
  EVP_PKEY_free (id->signing_key);
  skiff_strv_free (id->names);
  skiff_strv_free (id->audiences);
  memset (id, 0, sizeof (*id));
}
