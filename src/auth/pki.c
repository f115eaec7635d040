/* pki.c - the local PKI: a CA, the server certificate it signs, thumbprints, and self-signed
 * client certificates for service principals. */
#include "auth.h"
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/cleanup.h"
#include "common/util.h"

#define PKI_MAX_PEM_BYTES (64 * 1024)
#define CA_DAYS 3650
#define LEAF_DAYS 730
/* A certificate closer than this to its end is replaced. */
#define RENEW_BEFORE_SECONDS (30L * 86400)

static void
gens_freep (GENERAL_NAMES **p)
{
  GENERAL_NAMES_free (*p);
  *p = NULL;
}
#define cleanup_gens __attribute__ ((cleanup (gens_freep)))

/* --- building certificates ------------------------------------------------- */

/* Sets a random positive 16-byte serial number. */
static int
set_serial (X509 *x, skiff_error_t *err)
{
  unsigned char buf[16];
  if (RAND_bytes (buf, sizeof (buf)) != 1)
    return auth_ossl_error (err, "random serial");
  buf[0] = (unsigned char)((buf[0] & 0x7f) | 0x40); /* positive, and exactly 16 bytes in DER */
  cleanup_bn BIGNUM *bn = BN_bin2bn (buf, sizeof (buf), NULL);
  if (bn == NULL || BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (x)) == NULL)
    return auth_ossl_error (err, "set serial");
  return 0;
}

/* notBefore = now - 1 hour (tolerates clock skew), notAfter = now + days. */
static int
set_validity (X509 *x, int days, skiff_error_t *err)
{
  if (X509_gmtime_adj (X509_getm_notBefore (x), -3600) == NULL
      || X509_time_adj_ex (X509_getm_notAfter (x), days, 0, NULL) == NULL)
    return auth_ossl_error (err, "set validity");
  return 0;
}

static int
add_ext (X509 *issuer, X509 *subject, int nid, const char *value, skiff_error_t *err)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, issuer, subject, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (ext == NULL)
    return auth_ossl_error (err, "extension %s = %s", OBJ_nid2sn (nid), value);
  int ok = X509_add_ext (subject, ext, -1);
  X509_EXTENSION_free (ext);
  if (ok != 1)
    return auth_ossl_error (err, "add extension %s", OBJ_nid2sn (nid));
  return 0;
}

/* Starts a v3 certificate for key with subject CN=cn (issuer still unset). */
static X509 *
new_cert (EVP_PKEY *key, const char *cn, int days, skiff_error_t *err)
{
  cleanup_x509 X509 *x = X509_new ();
  if (x == NULL || X509_set_version (x, X509_VERSION_3) != 1)
    {
      auth_ossl_error (err, "new certificate");
      return NULL;
    }
  if (set_serial (x, err) < 0 || set_validity (x, days, err) < 0)
    return NULL;
  X509_NAME *name = X509_get_subject_name (x);
  if (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1
      || X509_set_pubkey (x, key) != 1)
    {
      auth_ossl_error (err, "certificate subject `%s`", cn);
      return NULL;
    }
  return steal_pointer (&x);
}

static int
sign_cert (X509 *x, EVP_PKEY *issuer_key, skiff_error_t *err)
{
  if (X509_sign (x, issuer_key, EVP_sha256 ()) <= 0)
    return auth_ossl_error (err, "sign certificate");
  return 0;
}

static int
make_ca (EVP_PKEY **key_out, X509 **cert_out, skiff_error_t *err)
{
  char hex[17];
  skiff_random_hex (hex, 8);
  cleanup_free char *cn = skiff_strdup_printf ("skiff local CA %s", hex);
  cleanup_pkey EVP_PKEY *key = auth_rsa_generate ();
  cleanup_x509 X509 *x = new_cert (key, cn, CA_DAYS, err);
  if (x == NULL)
    return -1;
  if (X509_set_issuer_name (x, X509_get_subject_name (x)) != 1)
    return auth_ossl_error (err, "CA issuer");
  if (add_ext (x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err) < 0
      || add_ext (x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err) < 0
      || add_ext (x, x, NID_subject_key_identifier, "hash", err) < 0
      || add_ext (x, x, NID_authority_key_identifier, "keyid:always", err) < 0 || sign_cert (x, key, err) < 0)
    return -1;
  *key_out = steal_pointer (&key);
  *cert_out = steal_pointer (&x);
  return 0;
}

/* A DNS name we are willing to put in a certificate: 1-253 characters of letters, digits,
 * '-', '_' and '.', optionally starting with the wildcard label "*.". */
static int
valid_dns_name (const char *s)
{
  size_t len = strlen (s);
  if (len == 0 || len > 253)
    return 0;
  if (strncmp (s, "*.", 2) == 0)
    s += 2;
  if (*s == '\0' || *s == '.')
    return 0;
  for (; *s; s++)
    {
      char c = *s;
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
            || c == '.'))
        return 0;
    }
  return 1;
}

/* Builds the subjectAltName list for the requested names; fails on an invalid one. */
static int
build_sans (const char *const *dns_names, const char *const *ip_addrs, GENERAL_NAMES **out, skiff_error_t *err)
{
  cleanup_gens GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null ();
  if (gens == NULL)
    abort ();
  for (size_t i = 0; dns_names && dns_names[i]; i++)
    {
      if (!valid_dns_name (dns_names[i]))
        return skiff_error_set (err, EINVAL, "invalid DNS name `%s` for the server certificate", dns_names[i]);
      GENERAL_NAME *g = GENERAL_NAME_new ();
      ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new ();
      if (g == NULL || ia5 == NULL || ASN1_STRING_set (ia5, dns_names[i], -1) != 1)
        abort ();
      GENERAL_NAME_set0_value (g, GEN_DNS, ia5);
      if (sk_GENERAL_NAME_push (gens, g) <= 0)
        abort ();
    }
  for (size_t i = 0; ip_addrs && ip_addrs[i]; i++)
    {
      ASN1_OCTET_STRING *ip = a2i_IPADDRESS (ip_addrs[i]);
      if (ip == NULL)
        {
          ERR_clear_error ();
          return skiff_error_set (err, EINVAL, "invalid IP address `%s` for the server certificate", ip_addrs[i]);
        }
      GENERAL_NAME *g = GENERAL_NAME_new ();
      if (g == NULL)
        abort ();
      GENERAL_NAME_set0_value (g, GEN_IPADD, ip);
      if (sk_GENERAL_NAME_push (gens, g) <= 0)
        abort ();
    }
  if (sk_GENERAL_NAME_num (gens) == 0)
    return skiff_error_set (err, EINVAL, "server certificate: no DNS name or IP address given");
  *out = steal_pointer (&gens);
  return 0;
}

static int
make_leaf (EVP_PKEY *ca_key, X509 *ca, const char *const *dns_names, GENERAL_NAMES *sans, EVP_PKEY **key_out,
           X509 **cert_out, skiff_error_t *err)
{
  const char *cn = "skiff";
  if (dns_names && dns_names[0] && strlen (dns_names[0]) <= 64)
    cn = dns_names[0];
  cleanup_pkey EVP_PKEY *key = auth_rsa_generate ();
  cleanup_x509 X509 *x = new_cert (key, cn, LEAF_DAYS, err);
  if (x == NULL)
    return -1;
  if (X509_set_issuer_name (x, X509_get_subject_name (ca)) != 1)
    return auth_ossl_error (err, "server certificate issuer");
  if (X509_add1_ext_i2d (x, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1)
    return auth_ossl_error (err, "server certificate subjectAltName");
  if (add_ext (ca, x, NID_basic_constraints, "critical,CA:FALSE", err) < 0
      || add_ext (ca, x, NID_key_usage, "critical,digitalSignature,keyEncipherment", err) < 0
      || add_ext (ca, x, NID_ext_key_usage, "serverAuth", err) < 0
      || add_ext (ca, x, NID_subject_key_identifier, "hash", err) < 0
      || add_ext (ca, x, NID_authority_key_identifier, "keyid:always", err) < 0 || sign_cert (x, ca_key, err) < 0)
    return -1;
  *key_out = steal_pointer (&key);
  *cert_out = steal_pointer (&x);
  return 0;
}

/* --- PEM files ---------------------------------------------------------------- */

static char *
cert_to_pem (X509 *x, skiff_error_t *err)
{
  cleanup_bio BIO *bio = BIO_new (BIO_s_mem ());
  if (bio == NULL || PEM_write_bio_X509 (bio, x) != 1)
    {
      auth_ossl_error (err, "write certificate");
      return NULL;
    }
  return auth_bio_to_string (bio);
}

static int
write_key (const char *path, EVP_PKEY *key, skiff_error_t *err)
{
  cleanup_free char *pem = auth_pkey_to_pem (key, err);
  if (pem == NULL)
    return -1;
  int r = skiff_write_file_atomic (path, pem, strlen (pem), 0600, err);
  OPENSSL_cleanse (pem, strlen (pem));
  return r;
}

/* Writes the PEM of cert, followed by chain when not NULL, to path (0644). */
static int
write_certs (const char *path, X509 *cert, X509 *chain, skiff_error_t *err)
{
  cleanup_free char *a = cert_to_pem (cert, err);
  if (a == NULL)
    return -1;
  cleanup_free char *b = chain ? cert_to_pem (chain, err) : skiff_strdup ("");
  if (b == NULL)
    return -1;
  cleanup_free char *all = skiff_strdup_printf ("%s%s", a, b);
  return skiff_write_file_atomic (path, all, strlen (all), 0644, err);
}

/* Reads the first certificate of path and, when second is not NULL, the one after it. */
static int
read_certs (const char *path, X509 **first, X509 **second, skiff_error_t *err)
{
  cleanup_free char *pem = NULL;
  size_t len = 0;
  if (skiff_read_file (path, PKI_MAX_PEM_BYTES, &pem, &len, err) < 0)
    return -1;
  cleanup_bio BIO *bio = BIO_new_mem_buf (pem, (int)len);
  if (bio == NULL)
    return auth_ossl_error (err, "read `%s`", path);
  cleanup_x509 X509 *a = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  if (a == NULL)
    return auth_ossl_error (err, "parse `%s`", path);
  if (second)
    {
      *second = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
      ERR_clear_error ();
    }
  *first = steal_pointer (&a);
  return 0;
}

static int
read_key (const char *path, EVP_PKEY **out, skiff_error_t *err)
{
  cleanup_free char *pem = NULL;
  size_t len = 0;
  if (skiff_read_file (path, PKI_MAX_PEM_BYTES, &pem, &len, err) < 0)
    return -1;
  int r = auth_pkey_parse (pem, len, out, err);
  OPENSSL_cleanse (pem, len);
  if (r < 0)
    return skiff_error_wrap (err, "`%s`", path);
  return 0;
}

/* 1 when x is valid now and for RENEW_BEFORE_SECONDS more. */
static int
valid_for_a_while (X509 *x)
{
  time_t later = time (NULL) + RENEW_BEFORE_SECONDS;
  return X509_cmp_time (X509_get0_notBefore (x), NULL) < 0 && X509_cmp_time (X509_get0_notAfter (x), &later) > 0;
}

/* Loads ca.pem + ca.key; fails when either is missing, unparsable, mismatched, not a CA or ending soon. */
static int
load_ca (const char *cert_path, const char *key_path, EVP_PKEY **key_out, X509 **cert_out, skiff_error_t *err)
{
  cleanup_x509 X509 *ca = NULL;
  cleanup_pkey EVP_PKEY *key = NULL;
  if (read_certs (cert_path, &ca, NULL, err) < 0 || read_key (key_path, &key, err) < 0)
    return -1;
  int ok = X509_check_private_key (ca, key) == 1 && X509_check_ca (ca) == 1 && valid_for_a_while (ca);
  ERR_clear_error ();
  if (!ok)
    return skiff_error_set (err, 0, "`%s` is not a usable CA for `%s`", cert_path, key_path);
  *key_out = steal_pointer (&key);
  *cert_out = steal_pointer (&ca);
  return 0;
}

/* 1 when every requested name is among x's subjectAltNames. */
static int
covers_names (X509 *x, GENERAL_NAMES *want)
{
  cleanup_gens GENERAL_NAMES *have = X509_get_ext_d2i (x, NID_subject_alt_name, NULL, NULL);
  if (have == NULL)
    return 0;
  for (int i = 0; i < sk_GENERAL_NAME_num (want); i++)
    {
      GENERAL_NAME *w = sk_GENERAL_NAME_value (want, i);
      int wtype = 0;
      ASN1_STRING *wv = GENERAL_NAME_get0_value (w, &wtype);
      int found = 0;
      for (int j = 0; j < sk_GENERAL_NAME_num (have) && !found; j++)
        {
          int htype = 0;
          ASN1_STRING *hv = GENERAL_NAME_get0_value (sk_GENERAL_NAME_value (have, j), &htype);
          if (htype != wtype || ASN1_STRING_length (hv) != ASN1_STRING_length (wv))
            continue;
          const unsigned char *a = ASN1_STRING_get0_data (hv), *b = ASN1_STRING_get0_data (wv);
          size_t n = (size_t)ASN1_STRING_length (wv);
          if (wtype == GEN_DNS)
            found = strncasecmp ((const char *)a, (const char *)b, n) == 0;
          else
            found = memcmp (a, b, n) == 0;
        }
      if (!found)
        return 0;
    }
  return 1;
}

/* 1 when server.pem/server.key hold a leaf signed by ca, for every wanted name, not ending soon,
 * followed by ca itself. */
static int
leaf_reusable (const char *cert_path, const char *key_path, X509 *ca, GENERAL_NAMES *sans)
{
  cleanup_error skiff_error_t err = NULL;
  cleanup_x509 X509 *leaf = NULL;
  cleanup_x509 X509 *chain = NULL;
  cleanup_pkey EVP_PKEY *key = NULL;
  if (read_certs (cert_path, &leaf, &chain, &err) < 0 || read_key (key_path, &key, &err) < 0)
    return 0;
  int ok = chain != NULL && X509_cmp (chain, ca) == 0 && X509_check_private_key (leaf, key) == 1
           && X509_check_issued (ca, leaf) == X509_V_OK && X509_verify (leaf, X509_get0_pubkey (ca)) == 1
           && valid_for_a_while (leaf) && covers_names (leaf, sans);
  ERR_clear_error ();
  return ok;
}

int
auth_pki_ensure (const char *dir, const char *const *dns_names, const char *const *ip_addrs, skiff_error_t *err)
{
  cleanup_gens GENERAL_NAMES *sans = NULL;
  if (build_sans (dns_names, ip_addrs, &sans, err) < 0)
    return -1;
  if (skiff_mkdir_p (dir, 0755, err) < 0)
    return -1;
  cleanup_free char *ca_pem = skiff_strdup_printf ("%s/ca.pem", dir);
  cleanup_free char *ca_key_path = skiff_strdup_printf ("%s/ca.key", dir);
  cleanup_free char *server_pem = skiff_strdup_printf ("%s/server.pem", dir);
  cleanup_free char *server_key = skiff_strdup_printf ("%s/server.key", dir);

  cleanup_pkey EVP_PKEY *ca_key = NULL;
  cleanup_x509 X509 *ca = NULL;
  cleanup_error skiff_error_t ca_err = NULL;
  if (load_ca (ca_pem, ca_key_path, &ca_key, &ca, &ca_err) < 0)
    {
      /* Key first: a crash between the two writes leaves a mismatched pair, which is replaced. */
      if (make_ca (&ca_key, &ca, err) < 0 || write_key (ca_key_path, ca_key, err) < 0
          || write_certs (ca_pem, ca, NULL, err) < 0)
        return -1;
    }
  else if (leaf_reusable (server_pem, server_key, ca, sans))
    return 0;

  cleanup_pkey EVP_PKEY *key = NULL;
  cleanup_x509 X509 *leaf = NULL;
  if (make_leaf (ca_key, ca, dns_names, sans, &key, &leaf, err) < 0 || write_key (server_key, key, err) < 0
      || write_certs (server_pem, leaf, ca, err) < 0)
    return -1;
  return 0;
}

/* --- parsing, thumbprints, self-signed client certificates ------------------- */

int
auth_cert_parse (const char *pem, size_t len, X509 **out, skiff_error_t *err)
{
  if (pem == NULL || len == 0)
    return skiff_error_set (err, 0, "certificate: empty");
  if (len > PKI_MAX_PEM_BYTES)
    return skiff_error_set (err, 0, "certificate: PEM over %d bytes", PKI_MAX_PEM_BYTES);
  cleanup_bio BIO *bio = BIO_new_mem_buf (pem, (int)len);
  if (bio == NULL)
    return auth_ossl_error (err, "certificate");
  X509 *x = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  if (x == NULL)
    return auth_ossl_error (err, "certificate: not a PEM certificate");
  *out = x;
  return 0;
}

static char *
cert_thumbprint (X509 *cert, const EVP_MD *md_type)
{
  if (cert == NULL)
    return NULL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest (cert, md_type, md, &n) != 1)
    {
      ERR_clear_error ();
      return NULL;
    }
  return auth_b64url_encode (md, n);
}

char *
auth_cert_x5t (X509 *cert)
{
  return cert_thumbprint (cert, EVP_sha1 ());
}

char *
auth_cert_x5t_s256 (X509 *cert)
{
  return cert_thumbprint (cert, EVP_sha256 ());
}

int
auth_cert_self_signed (const char *cn, int days, char **key_pem, char **cert_pem, skiff_error_t *err)
{
  if (cn == NULL || cn[0] == '\0' || strlen (cn) > 64)
    return skiff_error_set (err, EINVAL, "self-signed certificate: CN must be 1-64 bytes");
  if (days < 1 || days > 36500)
    return skiff_error_set (err, EINVAL, "self-signed certificate: %d days is out of range", days);
  cleanup_pkey EVP_PKEY *key = auth_rsa_generate ();
  cleanup_x509 X509 *x = new_cert (key, cn, days, err);
  if (x == NULL)
    return -1;
  if (X509_set_issuer_name (x, X509_get_subject_name (x)) != 1)
    return auth_ossl_error (err, "self-signed certificate issuer");
  if (add_ext (x, x, NID_basic_constraints, "critical,CA:FALSE", err) < 0
      || add_ext (x, x, NID_key_usage, "critical,digitalSignature", err) < 0
      || add_ext (x, x, NID_ext_key_usage, "clientAuth", err) < 0
      || add_ext (x, x, NID_subject_key_identifier, "hash", err) < 0 || sign_cert (x, key, err) < 0)
    return -1;
  cleanup_free char *k = auth_pkey_to_pem (key, err);
  if (k == NULL)
    return -1;
  char *c = cert_to_pem (x, err);
  if (c == NULL)
    return -1;
  *key_pem = steal_pointer (&k);
  *cert_pem = c;
  return 0;
}
