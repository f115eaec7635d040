/* sp.c - `skiff sp create|list|show|delete`: skiff's service principals (/skiff/servicePrincipals),
 * shaped like `az ad sp create-for-rbac` (appId, displayName, password, tenant). */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "auth/auth.h"
#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

#define MAX_CERT_FILE (64u * 1024)
#define MAX_YEARS 30
#define SP_PATH "/skiff/servicePrincipals"

const struct cli_opt cli_sp_create_opts[] = {
  { "name|display-name", "n", CLI_OPT_VALUE, "NAME", "[Required] Display name of the service principal." },
  { "cert-file", NULL, CLI_OPT_VALUE, "FILE", "Register the first certificate of this PEM file as a credential." },
  { "create-cert", NULL, CLI_OPT_FLAG, NULL,
    "Create a self-signed certificate and key, register the certificate, and write both to a PEM file (0600)." },
  { "cert-out", NULL, CLI_OPT_VALUE, "FILE",
    "Where --create-cert writes key and certificate (default: ./NAME-TIME.pem); never overwritten." },
  { "years", NULL, CLI_OPT_VALUE, "N", "Validity of the created certificate in years (default 1)." },
  CLI_OPT_END,
};
const struct cli_opt cli_sp_list_opts[] = { CLI_OPT_END };
const struct cli_opt cli_sp_id_opts[] = {
  { "id", NULL, CLI_OPT_VALUE, "APPID", "[Required] Application id (appId) of the service principal." },
  CLI_OPT_END,
};

static char *
cell_str (json_t *row, const char *key)
{
  json_t *v = skiff_json_get (row, key);
  if (json_is_string (v))
    return skiff_strdup (json_string_value (v));
  if (json_is_boolean (v))
    return skiff_strdup (json_is_true (v) ? "True" : "False");
  return NULL;
}

static char *
cell_display_name (json_t *row)
{
  return cell_str (row, "displayName");
}

static char *
cell_app_id (json_t *row)
{
  return cell_str (row, "appId");
}

static char *
cell_object_id (json_t *row)
{
  return cell_str (row, "objectId");
}

static char *
cell_has_cert (json_t *row)
{
  return cell_str (row, "hasCertificate");
}

static char *
cell_created (json_t *row)
{
  return cell_str (row, "createdTime");
}

static char *
cell_tenant (json_t *row)
{
  return cell_str (row, "tenant");
}

static char *
cell_password (json_t *row)
{
  return cell_str (row, "password");
}

static char *
cell_cert_file (json_t *row)
{
  return cell_str (row, "fileWithCertAndPrivateKey");
}

static const struct cli_column sp_columns[] = {
  { "DisplayName", cell_display_name }, { "AppId", cell_app_id },        { "ObjectId", cell_object_id },
  { "HasCertificate", cell_has_cert },  { "CreatedTime", cell_created },
};
static const struct cli_column created_columns[] = {
  { "AppId", cell_app_id },
  { "DisplayName", cell_display_name },
  { "Password", cell_password },
  { "Tenant", cell_tenant },
  { "FileWithCertAndPrivateKey", cell_cert_file },
};
#define N_SP_COLUMNS (sizeof sp_columns / sizeof sp_columns[0])
#define N_CREATED_COLUMNS (sizeof created_columns / sizeof created_columns[0])

/* The first "-----BEGIN CERTIFICATE-----" block of a PEM text (malloc'd), checked with
 * auth_cert_parse, or NULL with a usage error. */
static char *
first_certificate (const char *file, const char *text, size_t len, skiff_error_t *err)
{
  static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
  const char *b = memmem (text, len, begin, sizeof begin - 1);
  const char *e = b ? memmem (b, len - (size_t)(b - text), end, sizeof end - 1) : NULL;
  if (b == NULL || e == NULL)
    {
      cli_usage_error (err, "argument --cert-file: '%s' holds no PEM certificate", file);
      return NULL;
    }
  size_t n = (size_t)(e - b) + sizeof end - 1;
  cleanup_free char *pem = skiff_strdup_printf ("%.*s\n", (int)n, b);
  X509 *cert = NULL;
  if (auth_cert_parse (pem, strlen (pem), &cert, err) < 0)
    {
      skiff_error_wrap (err, "argument --cert-file: '%s'", file);
      return NULL;
    }
  X509_free (cert);
  return steal_pointer (&pem);
}

/* Writes key+cert to a new file (0600, refusing an existing one) and returns its absolute path. */
static char *
write_pem (const char *path, const char *key_pem, const char *cert_pem, skiff_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      if (errno == EEXIST)
        skiff_error_set (err, 0, "'%s' exists; choose another file with --cert-out", path);
      else
        skiff_error_set (err, errno, "creating '%s'", path);
      return NULL;
    }
  const char *parts[] = { key_pem, cert_pem };
  for (size_t i = 0; i < 2; i++)
    {
      const char *p = parts[i];
      size_t len = strlen (p);
      while (len > 0)
        {
          ssize_t n = write (fd, p, len);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            {
              skiff_error_set (err, errno, "writing '%s'", path);
              unlink (path);
              return NULL;
            }
          p += n;
          len -= (size_t)n;
        }
    }
  if (fsync (fd) < 0)
    {
      skiff_error_set (err, errno, "writing '%s'", path);
      unlink (path);
      return NULL;
    }
  char *abs = realpath (path, NULL);
  return abs ? abs : skiff_strdup (path);
}

/* "./NAME-YYYYmmdd-HHMMSS.pem" with every character of NAME outside [A-Za-z0-9._-] made '_'. */
static char *
default_cert_path (const char *name)
{
  cleanup_free char *safe = skiff_strdup (name);
  for (char *p = safe; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
          || *p == '_'))
      *p = '_';
  if (safe[0] == '.')
    safe[0] = '_';
  if (strlen (safe) > 64)
    safe[64] = '\0';
  char stamp[32];
  time_t now = time (NULL);
  struct tm tm;
  gmtime_r (&now, &tm);
  strftime (stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return skiff_strdup_printf ("%s-%s.pem", safe, stamp);
}

static void
free_secret (char *s)
{
  if (s)
    {
      OPENSSL_cleanse (s, strlen (s));
      free (s);
    }
}

int
cli_sp_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  const char *name = cli_arg (args, "name");
  if (name == NULL || *name == '\0')
    return cli_usage_error (err, "the following arguments are required: --name/-n");
  const char *cert_file = cli_arg (args, "cert-file");
  bool create = cli_has (args, "create-cert");
  if (cert_file && create)
    return cli_usage_error (err, "usage error: --cert-file and --create-cert cannot be used together");
  if (!create && (cli_has (args, "cert-out") || cli_has (args, "years")))
    return cli_usage_error (err, "usage error: --cert-out and --years need --create-cert");
  long years = 1;
  const char *y = cli_arg (args, "years");
  if (y)
    {
      char *end = NULL;
      errno = 0;
      years = strtol (y, &end, 10);
      if (errno || end == y || *end || years < 1 || years > MAX_YEARS)
        return cli_usage_error (err, "argument --years: expected 1 to %d, got '%s'", MAX_YEARS, y);
    }

  cleanup_json json_t *body = json_pack ("{s:s}", "displayName", name);
  if (body == NULL)
    return cli_usage_error (err, "argument --name: not valid UTF-8");
  cleanup_free char *cert_path = NULL;
  if (cert_file)
    {
      cleanup_free char *text = NULL;
      size_t len = 0;
      if (skiff_read_file (cert_file, MAX_CERT_FILE, &text, &len, err) < 0)
        return skiff_error_wrap (err, "reading '%s'", cert_file);
      cleanup_free char *pem = first_certificate (cert_file, text, len, err);
      OPENSSL_cleanse (text, len); /* the file may hold a private key too */
      if (pem == NULL)
        return -1;
      json_object_set_new (body, "certificate", json_string (pem));
    }
  else if (create)
    {
      char *key_pem = NULL, *cert_pem = NULL;
      if (auth_cert_self_signed (name, (int)(years * 365), &key_pem, &cert_pem, err) < 0)
        return skiff_error_wrap (err, "creating a certificate");
      const char *out = cli_arg (args, "cert-out");
      cleanup_free char *def = out && *out ? NULL : default_cert_path (name);
      cert_path = write_pem (out && *out ? out : def, key_pem, cert_pem, err);
      free_secret (key_pem);
      if (cert_path == NULL)
        {
          free (cert_pem);
          return -1;
        }
      json_object_set_new (body, "certificate", json_string (cert_pem));
      free (cert_pem);
    }

  struct cli_response r;
  if (cli_http_call ("POST", SP_PATH "?api-version=" CLI_API_SKIFF, body, &r, err) < 0)
    {
      if (cert_path)
        unlink (cert_path); /* no principal holds this certificate */
      return -1;
    }
  cleanup_json json_t *outj = json_is_object (r.body) ? json_deep_copy (r.body) : json_object ();
  cli_response_clear (&r);
  if (cert_path)
    json_object_set_new (outj, "fileWithCertAndPrivateKey", json_string (cert_path));
  return cli_print (stdout, outj, ctx->output, created_columns, N_CREATED_COLUMNS - (cert_path ? 0 : 1), err);
}

int
cli_sp_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)args;
  cleanup_json json_t *all = NULL;
  if (cli_http_list (SP_PATH "?api-version=" CLI_API_SKIFF, &all, err) < 0)
    return -1;
  return cli_print (stdout, all, ctx->output, sp_columns, N_SP_COLUMNS, err);
}

/* SP_PATH/{id}?api-version=..., from the required --id. */
static char *
sp_item_path (struct cli_args *args, skiff_error_t *err)
{
  const char *id = cli_arg (args, "id");
  if (id == NULL || *id == '\0')
    {
      cli_usage_error (err, "the following arguments are required: --id");
      return NULL;
    }
  cleanup_free char *eid = cli_escape (id);
  return skiff_strdup_printf (SP_PATH "/%s?api-version=" CLI_API_SKIFF, eid);
}

int
cli_sp_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  cleanup_free char *path = sp_item_path (args, err);
  if (path == NULL)
    return -1;
  struct cli_response r;
  if (cli_http_call ("GET", path, NULL, &r, err) < 0)
    return -1;
  int rc = cli_print (stdout, r.body, ctx->output, sp_columns, N_SP_COLUMNS, err);
  cli_response_clear (&r);
  return rc;
}

int
cli_sp_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  cleanup_free char *path = sp_item_path (args, err);
  if (path == NULL)
    return -1;
  struct cli_response r;
  if (cli_http_call ("DELETE", path, NULL, &r, err) < 0)
    return -1;
  cli_response_clear (&r);
  return 0;
}
