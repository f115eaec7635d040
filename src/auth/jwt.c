/* jwt.c - the token-signing key (load or create, key id, JWKS) and RS256 compact JWTs. */
#include "auth.h"
#include "internal.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/cleanup.h"
#include "common/util.h"

/* Largest PEM key file read (a 4096-bit RSA key is about 3.3 KiB). */
#define AUTH_MAX_PEM_BYTES (64 * 1024)

/* --- shared helpers (declared in internal.h) ------------------------------- */

EVP_PKEY *
auth_rsa_generate (void)
{
  EVP_PKEY *key = EVP_RSA_gen (2048);
  if (key == NULL)
    abort (); /* only allocation or RNG failure gets here */
  return key;
}

char *
auth_bio_to_string (BIO *bio)
{
  char *data = NULL;
  long n = BIO_get_mem_data (bio, &data);
  if (n < 0)
    n = 0;
  char *s = malloc ((size_t)n + 1);
  if (s == NULL)
    abort ();
  if (n > 0)
    memcpy (s, data, (size_t)n);
  s[n] = '\0';
  return s;
}

char *
auth_pkey_to_pem (EVP_PKEY *key, skiff_error_t *err)
{
  cleanup_bio BIO *bio = BIO_new (BIO_s_mem ());
  if (bio == NULL || PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL) != 1)
    {
      auth_ossl_error (err, "write private key");
      return NULL;
    }
  return auth_bio_to_string (bio);
}

/* Refuses encrypted keys instead of letting OpenSSL prompt on the terminal for a passphrase. */
static int
no_passphrase (char *buf, int size, int rwflag, void *u)
{
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

int
auth_pkey_parse (const char *pem, size_t len, EVP_PKEY **out, skiff_error_t *err)
{
  if (pem == NULL || len > AUTH_MAX_PEM_BYTES)
    return skiff_error_set (err, 0, "private key PEM missing or over %d bytes", AUTH_MAX_PEM_BYTES);
  cleanup_bio BIO *bio = BIO_new_mem_buf (pem, (int)len);
  if (bio == NULL)
    return auth_ossl_error (err, "parse private key");
  EVP_PKEY *key = PEM_read_bio_PrivateKey (bio, NULL, no_passphrase, NULL);
  if (key == NULL)
    return auth_ossl_error (err, "parse private key");
  if (!EVP_PKEY_is_a (key, "RSA") && !EVP_PKEY_is_a (key, "EC"))
    {
      EVP_PKEY_free (key);
      return skiff_error_set (err, 0, "private key is neither RSA nor EC");
    }
  *out = key;
  return 0;
}

/* --- the signing key --------------------------------------------------------- */

static int
load_key_file (const char *path, EVP_PKEY **out, skiff_error_t *err)
{
  cleanup_free char *pem = NULL;
  size_t len = 0;
  if (skiff_read_file (path, AUTH_MAX_PEM_BYTES, &pem, &len, err) < 0)
    return -1;
  cleanup_pkey EVP_PKEY *key = NULL;
  if (auth_pkey_parse (pem, len, &key, err) < 0)
    return skiff_error_wrap (err, "key `%s`", path);
  if (!EVP_PKEY_is_a (key, "RSA") || EVP_PKEY_get_bits (key) < 2048)
    return skiff_error_set (err, 0, "key `%s` is not an RSA key of at least 2048 bits", path);
  *out = steal_pointer (&key);
  return 0;
}

int
auth_key_load_or_create (const char *path, EVP_PKEY **out, skiff_error_t *err)
{
  cleanup_error skiff_error_t load_err = NULL;
  if (load_key_file (path, out, &load_err) == 0)
    return 0;
  if (load_err->status != ENOENT)
    {
      if (err)
        {
          skiff_error_release (err);
          *err = steal_pointer (&load_err);
        }
      return -1;
    }

  cleanup_free char *parent = skiff_strdup (path);
  if (skiff_mkdir_p (dirname (parent), 0700, err) < 0)
    return -1;
  cleanup_pkey EVP_PKEY *key = auth_rsa_generate ();
  cleanup_free char *pem = auth_pkey_to_pem (key, err);
  if (pem == NULL)
    return -1;
  /* Written complete under a temporary name, then hard-linked into place: link() never replaces
   * a file, so when two processes race, both end up using the one key that won. */
  cleanup_free char *tmp = skiff_strdup_printf ("%s.new.%d", path, (int)getpid ());
  if (skiff_write_file_atomic (tmp, pem, strlen (pem), 0600, err) < 0)
    return -1;
  if (link (tmp, path) < 0)
    {
      int e = errno;
      if (e == EEXIST)
        {
          unlink (tmp);
          return load_key_file (path, out, err);
        }
      if (e != EPERM && e != ENOTSUP && e != EOPNOTSUPP)
        {
          unlink (tmp);
          return skiff_error_set (err, e, "link `%s`", path);
        }
      /* a file system without hard links */
      if (rename (tmp, path) < 0)
        {
          e = errno;
          unlink (tmp);
          return skiff_error_set (err, e, "rename `%s`", path);
        }
    }
  else
    unlink (tmp);
  *out = steal_pointer (&key);
  return 0;
}

char *
auth_key_id (EVP_PKEY *key)
{
  if (key == NULL)
    return NULL;
  int len = i2d_PUBKEY (key, NULL);
  if (len <= 0)
    {
      ERR_clear_error ();
      return NULL;
    }
  cleanup_free unsigned char *der = malloc ((size_t)len);
  if (der == NULL)
    abort ();
  unsigned char *p = der;
  if (i2d_PUBKEY (key, &p) != len)
    {
      ERR_clear_error ();
      return NULL;
    }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest (der, (size_t)len, md, &md_len, EVP_sha256 (), NULL) != 1)
    {
      ERR_clear_error ();
      return NULL;
    }
  return auth_b64url_encode (md, md_len);
}

/* Returns the base64url big-endian bytes of RSA parameter `name` of key, or NULL. */
static char *
bn_param_b64 (EVP_PKEY *key, const char *name)
{
  cleanup_bn BIGNUM *bn = NULL;
  if (EVP_PKEY_get_bn_param (key, name, &bn) != 1)
    {
      ERR_clear_error ();
      return NULL;
    }
  int n = BN_num_bytes (bn);
  cleanup_free unsigned char *buf = malloc (n > 0 ? (size_t)n : 1);
  if (buf == NULL)
    abort ();
  BN_bn2bin (bn, buf);
  return auth_b64url_encode (buf, (size_t)n);
}

json_t *
auth_jwks (EVP_PKEY *key)
{
  if (key == NULL || !EVP_PKEY_is_a (key, "RSA"))
    return NULL;
  cleanup_free char *kid = auth_key_id (key);
  cleanup_free char *n = bn_param_b64 (key, OSSL_PKEY_PARAM_RSA_N);
  cleanup_free char *e = bn_param_b64 (key, OSSL_PKEY_PARAM_RSA_E);
  if (kid == NULL || n == NULL || e == NULL)
    return NULL;
  return json_pack ("{s:[{s:s,s:s,s:s,s:s,s:s,s:s}]}", "keys", "kty", "RSA", "use", "sig", "alg", "RS256", "kid", kid,
                    "n", n, "e", e);
}

/* --- JWT ------------------------------------------------------------------- */

/* Encodes json (compact) as base64url; NULL on failure. */
static char *
json_b64 (json_t *json)
{
  cleanup_free char *text = json_dumps (json, JSON_COMPACT);
  if (text == NULL)
    return NULL;
  return auth_b64url_encode (text, strlen (text));
}

int
auth_jwt_sign (EVP_PKEY *key, const char *kid, json_t *claims, char **out, skiff_error_t *err)
{
  if (key == NULL || !EVP_PKEY_is_a (key, "RSA"))
    return skiff_error_set (err, EINVAL, "jwt sign: an RSA key is needed");
  if (!json_is_object (claims))
    return skiff_error_set (err, EINVAL, "jwt sign: claims must be a JSON object");
  cleanup_json json_t *header = json_pack ("{s:s,s:s}", "alg", "RS256", "typ", "JWT");
  if (header == NULL)
    abort ();
  if (kid != NULL)
    {
      json_t *k = json_string (kid);
      if (k == NULL)
        return skiff_error_set (err, EINVAL, "jwt sign: kid is not UTF-8");
      json_object_set_new (header, "kid", k);
    }
  cleanup_free char *h64 = json_b64 (header);
  cleanup_free char *c64 = json_b64 (claims);
  if (h64 == NULL || c64 == NULL)
    return skiff_error_set (err, EINVAL, "jwt sign: cannot serialize the claims");
  cleanup_free char *input = skiff_strdup_printf ("%s.%s", h64, c64);
  size_t input_len = strlen (input);

  cleanup_md_ctx EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  EVP_PKEY_CTX *pctx = NULL;
  size_t sig_len = 0;
  if (ctx == NULL || EVP_DigestSignInit (ctx, &pctx, EVP_sha256 (), NULL, key) != 1
      || EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PADDING) <= 0
      || EVP_DigestSign (ctx, NULL, &sig_len, (const unsigned char *)input, input_len) != 1)
    return auth_ossl_error (err, "jwt sign");
  cleanup_free unsigned char *sig = malloc (sig_len);
  if (sig == NULL)
    abort ();
  if (EVP_DigestSign (ctx, sig, &sig_len, (const unsigned char *)input, input_len) != 1)
    return auth_ossl_error (err, "jwt sign");
  cleanup_free char *s64 = auth_b64url_encode (sig, sig_len);
  char *token = skiff_strdup_printf ("%s.%s", input, s64);
  if (strlen (token) > AUTH_MAX_JWT_BYTES)
    {
      free (token);
      return skiff_error_set (err, 0, "jwt sign: token over %d bytes", AUTH_MAX_JWT_BYTES);
    }
  *out = token;
  return 0;
}

/* Decodes a base64url JSON object part of a JWT. */
static int
decode_part (const char *s, size_t len, const char *what, json_t **out, skiff_error_t *err)
{
  cleanup_free unsigned char *buf = NULL;
  size_t n = 0;
  if (auth_b64url_decode (s, len, &buf, &n, err) < 0)
    return skiff_error_wrap (err, "jwt %s", what);
  json_error_t jerr;
  json_t *j = json_loadb ((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL)
    return skiff_error_set (err, 0, "jwt %s: invalid JSON: %s", what, jerr.text);
  if (!json_is_object (j))
    {
      json_decref (j);
      return skiff_error_set (err, 0, "jwt %s: not a JSON object", what);
    }
  *out = j;
  return 0;
}

/* Splits token into its three parts and decodes them. *signed_len is the length of
 * "header.claims", the signing input. */
static int
jwt_split (const char *token, json_t **header, json_t **claims, unsigned char **sig, size_t *sig_len,
           size_t *signed_len, skiff_error_t *err)
{
  if (token == NULL)
    return skiff_error_set (err, 0, "jwt: no token");
  size_t len = strnlen (token, (size_t)AUTH_MAX_JWT_BYTES + 1);
  if (len > AUTH_MAX_JWT_BYTES)
    return skiff_error_set (err, 0, "jwt: token over %d bytes", AUTH_MAX_JWT_BYTES);
  const char *d1 = memchr (token, '.', len);
  const char *d2 = d1 ? memchr (d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (d1 == NULL || d2 == NULL || memchr (d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
    return skiff_error_set (err, 0, "jwt: not three dot-separated parts");
  cleanup_json json_t *h = NULL;
  cleanup_json json_t *c = NULL;
  if (decode_part (token, (size_t)(d1 - token), "header", &h, err) < 0
      || decode_part (d1 + 1, (size_t)(d2 - d1 - 1), "claims", &c, err) < 0)
    return -1;
  cleanup_free unsigned char *s = NULL;
  size_t n = 0;
  if (auth_b64url_decode (d2 + 1, len - (size_t)(d2 + 1 - token), &s, &n, err) < 0)
    return skiff_error_wrap (err, "jwt signature");
  if (header)
    *header = steal_pointer (&h);
  if (claims)
    *claims = steal_pointer (&c);
  if (sig)
    *sig = steal_pointer (&s);
  if (sig_len)
    *sig_len = n;
  if (signed_len)
    *signed_len = (size_t)(d2 - token);
  return 0;
}

int
auth_jwt_decode (const char *token, json_t **header, json_t **claims, skiff_error_t *err)
{
  return jwt_split (token, header, claims, NULL, NULL, NULL, err);
}

/* Verifies with RS256, and also PS256 (RSASSA-PSS, SHA-256, salt = digest length) when allow_pss. */
static int
jwt_verify (const char *token, EVP_PKEY *pub, int allow_pss, json_t **header, json_t **claims, skiff_error_t *err)
{
  if (pub == NULL || !EVP_PKEY_is_a (pub, "RSA"))
    return skiff_error_set (err, 0, "jwt verify: no RSA key to verify with");
  cleanup_json json_t *h = NULL;
  cleanup_json json_t *c = NULL;
  cleanup_free unsigned char *sig = NULL;
  size_t sig_len = 0, signed_len = 0;
  if (jwt_split (token, &h, &c, &sig, &sig_len, &signed_len, err) < 0)
    return -1;
  const char *alg = json_string_value (json_object_get (h, "alg"));
  int pss = alg && allow_pss && strcmp (alg, "PS256") == 0;
  if (alg == NULL || (strcmp (alg, "RS256") != 0 && !pss))
    return skiff_error_set (err, 0, "jwt: unsupported alg `%s` (only RS256%s is accepted)", alg ? alg : "(none)",
                            allow_pss ? " or PS256" : "");
  if (json_object_get (h, "crit") != NULL)
    return skiff_error_set (err, 0, "jwt: critical header extensions are not supported");
  if (sig_len == 0 || sig_len != (size_t)EVP_PKEY_get_size (pub))
    return skiff_error_set (err, 0, "jwt: signature has the wrong length");

  cleanup_md_ctx EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  EVP_PKEY_CTX *pctx = NULL;
  if (ctx == NULL || EVP_DigestVerifyInit (ctx, &pctx, EVP_sha256 (), NULL, pub) != 1
      || EVP_PKEY_CTX_set_rsa_padding (pctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <= 0
      || (pss && EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
    return auth_ossl_error (err, "jwt verify");
  int ok = EVP_DigestVerify (ctx, sig, sig_len, (const unsigned char *)token, signed_len);
  ERR_clear_error ();
  if (ok != 1)
    return skiff_error_set (err, 0, "jwt: bad signature");
  if (header)
    *header = steal_pointer (&h);
  if (claims)
    *claims = steal_pointer (&c);
  return 0;
}

int
auth_jwt_verify (const char *token, EVP_PKEY *pub, json_t **header, json_t **claims, skiff_error_t *err)
{
  return jwt_verify (token, pub, 0, header, claims, err);
}

int
auth_jwt_verify_assertion (const char *token, EVP_PKEY *pub, json_t **header, json_t **claims, skiff_error_t *err)
{
  return jwt_verify (token, pub, 1, header, claims, err);
}
