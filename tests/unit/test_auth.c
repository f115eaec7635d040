/* Unit tests: base64url, RS256 JWTs, the signing key, client secrets and the local PKI. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "auth/auth.h"
#include "common/util.h"
#include "test.h"

static char tmpdir[] = "/tmp/skiff-test-auth-XXXXXX";

/* --- helpers ----------------------------------------------------------------- */

/* Decodes s; returns the decoded text (static buffer) or "ERR". */
static const char *
dec (const char *s)
{
  static char buf[256];
  unsigned char *out = NULL;
  size_t n = 0;
  skiff_error_t err = NULL;
  if (auth_b64url_decode (s, strlen (s), &out, &n, &err) < 0)
    {
      skiff_error_release (&err);
      return "ERR";
    }
  snprintf (buf, sizeof (buf), "%.*s", (int)n, out);
  free (out);
  return buf;
}

static char *
b64s (const char *s)
{
  return auth_b64url_encode (s, strlen (s));
}

/* Builds a token from raw header and claims text, signed RS256 with key (whatever the header says). */
static char *
raw_token (EVP_PKEY *key, const char *header, const char *claims)
{
  char *h = b64s (header), *c = b64s (claims);
  char *input = skiff_strdup_printf ("%s.%s", h, c);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  unsigned char sig[512];
  size_t sig_len = sizeof (sig);
  if (EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, key) != 1
      || EVP_DigestSign (ctx, sig, &sig_len, (unsigned char *)input, strlen (input)) != 1)
    abort ();
  EVP_MD_CTX_free (ctx);
  char *s = auth_b64url_encode (sig, sig_len);
  char *tok = skiff_strdup_printf ("%s.%s", input, s);
  free (h);
  free (c);
  free (input);
  free (s);
  return tok;
}

/* 0 when token verifies with key, -1 when not (the error is released). */
static int
verify (const char *token, EVP_PKEY *key)
{
  skiff_error_t err = NULL;
  json_t *h = NULL, *c = NULL;
  int r = auth_jwt_verify (token, key, &h, &c, &err);
  if (r < 0)
    {
      CHECK (err != NULL && err->msg != NULL);
      CHECK (h == NULL && c == NULL);
    }
  skiff_error_release (&err);
  json_decref (h);
  json_decref (c);
  return r < 0 ? -1 : 0;
}

static int
decode_ok (const char *token)
{
  skiff_error_t err = NULL;
  json_t *h = NULL, *c = NULL;
  int r = auth_jwt_decode (token, &h, &c, &err);
  skiff_error_release (&err);
  json_decref (h);
  json_decref (c);
  return r == 0;
}

static char *
slurp (const char *path)
{
  char *buf = NULL;
  skiff_error_t err = NULL;
  if (skiff_read_file (path, 1 << 20, &buf, NULL, &err) < 0)
    {
      skiff_error_release (&err);
      return NULL;
    }
  return buf;
}

static void
spit (const char *path, const char *text)
{
  skiff_error_t err = NULL;
  if (skiff_write_file_atomic (path, text, strlen (text), 0600, &err) < 0)
    abort ();
}

static int
file_mode (const char *path)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return -1;
  return (int)(st.st_mode & 07777);
}

static int
same (const char *a, const char *b)
{
  return a && b && strcmp (a, b) == 0;
}

/* Reads the n-th (0-based) certificate of a PEM file. */
static X509 *
cert_n (const char *path, int n)
{
  char *pem = slurp (path);
  if (pem == NULL)
    return NULL;
  BIO *bio = BIO_new_mem_buf (pem, -1);
  X509 *x = NULL;
  for (int i = 0; i <= n; i++)
    {
      X509_free (x);
      x = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    }
  BIO_free (bio);
  free (pem);
  ERR_clear_error ();
  return x;
}

static EVP_PKEY *
key_file (const char *path)
{
  char *pem = slurp (path);
  if (pem == NULL)
    return NULL;
  BIO *bio = BIO_new_mem_buf (pem, -1);
  EVP_PKEY *k = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
  BIO_free (bio);
  free (pem);
  return k;
}

/* 1 when leaf chains to ca with OpenSSL's strict verification for purpose sslserver. */
static int
chain_ok (X509 *ca, X509 *leaf)
{
  X509_STORE *store = X509_STORE_new ();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new ();
  X509_STORE_add_cert (store, ca);
  X509_STORE_CTX_init (ctx, store, leaf, NULL);
  X509_STORE_CTX_set_flags (ctx, X509_V_FLAG_X509_STRICT);
  X509_STORE_CTX_set_purpose (ctx, X509_PURPOSE_SSL_SERVER);
  int ok = X509_verify_cert (ctx) == 1;
  if (!ok)
    fprintf (stderr, "verify: %s\n", X509_verify_cert_error_string (X509_STORE_CTX_get_error (ctx)));
  X509_STORE_CTX_free (ctx);
  X509_STORE_free (store);
  return ok;
}

/* --- base64url ----------------------------------------------------------------- */

static void
test_b64url (void)
{
  const char *vec[][2] = { { "", "" },           { "f", "Zg" },          { "fo", "Zm8" },         { "foo", "Zm9v" },
                           { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" } };
  for (size_t i = 0; i < sizeof (vec) / sizeof (vec[0]); i++)
    {
      char *e = b64s (vec[i][0]);
      CHECK_STR (e, vec[i][1]);
      CHECK_STR (dec (e), vec[i][0]);
      free (e);
    }
  unsigned char bin[] = { 0xfb, 0xff, 0xbf };
  char *e = auth_b64url_encode (bin, sizeof (bin));
  CHECK_STR (e, "-_-_");
  free (e);

  /* every length and every byte value round-trips */
  unsigned char data[300];
  for (size_t i = 0; i < sizeof (data); i++)
    data[i] = (unsigned char)(i * 37 + 11);
  int all_ok = 1;
  for (size_t len = 0; len <= sizeof (data); len++)
    {
      char *s = auth_b64url_encode (data, len);
      unsigned char *out = NULL;
      size_t n = 0;
      skiff_error_t err = NULL;
      if (strlen (s) != (len * 4 + 2) / 3 || auth_b64url_decode (s, strlen (s), &out, &n, &err) < 0 || n != len
          || memcmp (out, data, len) != 0 || out[n] != '\0')
        all_ok = 0;
      skiff_error_release (&err);
      free (out);
      free (s);
    }
  CHECK (all_ok);

  /* optional padding */
  CHECK_STR (dec ("Zg=="), "f");
  CHECK_STR (dec ("Zm8="), "fo");
  /* rejects */
  CHECK_STR (dec ("Zg="), "ERR");
  CHECK_STR (dec ("Zg==="), "ERR");
  CHECK_STR (dec ("Zm9v="), "ERR");
  CHECK_STR (dec ("Zm8=="), "ERR");
  CHECK_STR (dec ("Z=g="), "ERR");
  CHECK_STR (dec ("Z"), "ERR");
  CHECK_STR (dec ("Zm9vY"), "ERR");
  CHECK_STR (dec ("Zm9v+"), "ERR");
  CHECK_STR (dec ("Zm/v"), "ERR");
  CHECK_STR (dec ("Zm 9v"), "ERR");
  CHECK_STR (dec ("Zm9v\n"), "ERR");
  CHECK_STR (dec ("Zh"), "ERR");  /* non-zero trailing bits */
  CHECK_STR (dec ("Zm9"), "ERR"); /* non-zero trailing bits */
  CHECK_STR (dec ("===="), "ERR");
  {
    unsigned char *out = NULL;
    skiff_error_t err = NULL;
    CHECK (auth_b64url_decode ("Zm\0v", 4, &out, NULL, &err) < 0);
    skiff_error_release (&err);
    CHECK (auth_b64url_decode (NULL, 0, &out, NULL, &err) < 0);
    skiff_error_release (&err);
    size_t big = (size_t)AUTH_MAX_JWT_BYTES * 2 + 4;
    char *s = malloc (big + 1);
    memset (s, 'A', big);
    s[big] = '\0';
    CHECK (auth_b64url_decode (s, big, &out, NULL, &err) < 0);
    skiff_error_release (&err);
    CHECK (auth_b64url_decode (s, big - 4, &out, NULL, &err) == 0);
    free (out);
    free (s);
  }
}

/* --- keys ---------------------------------------------------------------------- */

static EVP_PKEY *
test_keys (void)
{
  char *path = skiff_strdup_printf ("%s/keys/sub/token-signing.pem", tmpdir);
  skiff_error_t err = NULL;
  EVP_PKEY *k1 = NULL, *k2 = NULL;
  CHECK (auth_key_load_or_create (path, &k1, &err) == 0 && k1 != NULL);
  CHECK (file_mode (path) == 0600);
  char *pem1 = slurp (path);
  CHECK (pem1 && strncmp (pem1, "-----BEGIN PRIVATE KEY-----", 27) == 0);
  CHECK (auth_key_load_or_create (path, &k2, &err) == 0 && k2 != NULL);
  char *pem2 = slurp (path);
  CHECK (same (pem1, pem2));
  CHECK (EVP_PKEY_eq (k1, k2) == 1);
  CHECK (EVP_PKEY_get_bits (k1) == 2048);
  char *kid1 = auth_key_id (k1), *kid2 = auth_key_id (k2);
  CHECK (kid1 && strlen (kid1) == 43);
  CHECK_STR (kid1, kid2);
  char *tmpfile = skiff_strdup_printf ("%s.new.%d", path, (int)getpid ());
  CHECK (access (tmpfile, F_OK) < 0);

  /* a different key has a different id */
  EVP_PKEY *other = EVP_RSA_gen (2048);
  char *kid3 = auth_key_id (other);
  CHECK (kid3 && !same (kid1, kid3));

  json_t *jwks = auth_jwks (k1);
  json_t *jk = json_array_get (json_object_get (jwks, "keys"), 0);
  CHECK_STR (json_string_value (json_object_get (jk, "kty")), "RSA");
  CHECK_STR (json_string_value (json_object_get (jk, "alg")), "RS256");
  CHECK_STR (json_string_value (json_object_get (jk, "use")), "sig");
  CHECK_STR (json_string_value (json_object_get (jk, "kid")), kid1);
  CHECK_STR (json_string_value (json_object_get (jk, "e")), "AQAB");
  const char *n = json_string_value (json_object_get (jk, "n"));
  CHECK (n && strlen (n) == 342); /* 256 bytes */
  CHECK (json_array_size (json_object_get (jwks, "keys")) == 1);
  json_decref (jwks);

  /* a broken key file is an error, not replaced */
  char *bad = skiff_strdup_printf ("%s/keys/bad.pem", tmpdir);
  spit (bad, "not a key\n");
  EVP_PKEY *k3 = NULL;
  CHECK (auth_key_load_or_create (bad, &k3, &err) < 0 && k3 == NULL && err != NULL);
  skiff_error_release (&err);
  char *still = slurp (bad);
  CHECK_STR (still, "not a key\n");

  /* an encrypted key is refused (no passphrase prompt) */
  BIO *bio = BIO_new (BIO_s_mem ());
  PEM_write_bio_PrivateKey (bio, other, EVP_aes_128_cbc (), (unsigned char *)"pw", 2, NULL, NULL);
  BIO_write (bio, "", 1);
  char *enc = NULL;
  BIO_get_mem_data (bio, &enc);
  CHECK (strstr (enc, "ENCRYPTED") != NULL);
  spit (bad, enc);
  BIO_free (bio);
  CHECK (auth_key_load_or_create (bad, &k3, &err) < 0 && k3 == NULL);
  skiff_error_release (&err);
  /* an EC key is not a signing key */
  EVP_PKEY *ec = EVP_EC_gen ("P-256");
  bio = BIO_new (BIO_s_mem ());
  PEM_write_bio_PrivateKey (bio, ec, NULL, NULL, 0, NULL, NULL);
  BIO_write (bio, "", 1);
  BIO_get_mem_data (bio, &enc);
  spit (bad, enc);
  BIO_free (bio);
  EVP_PKEY_free (ec);
  CHECK (auth_key_load_or_create (bad, &k3, &err) < 0 && k3 == NULL);
  skiff_error_release (&err);

  free (still);
  free (bad);
  free (kid3);
  EVP_PKEY_free (other);
  free (tmpfile);
  free (kid1);
  free (kid2);
  free (pem1);
  free (pem2);
  free (path);
  EVP_PKEY_free (k2);
  return k1;
}

/* --- JWT ----------------------------------------------------------------------- */

static void
test_jwt (EVP_PKEY *key)
{
  skiff_error_t err = NULL;
  char *kid = auth_key_id (key);
  json_t *claims = json_pack ("{s:s,s:i,s:s}", "sub", "app", "exp", 2000000000, "aud", "https://management.azure.com/");
  char *tok = NULL;
  CHECK (auth_jwt_sign (key, kid, claims, &tok, &err) == 0 && tok != NULL);

  json_t *h = NULL, *c = NULL;
  CHECK (auth_jwt_verify (tok, key, &h, &c, &err) == 0);
  CHECK_STR (json_string_value (json_object_get (h, "alg")), "RS256");
  CHECK_STR (json_string_value (json_object_get (h, "typ")), "JWT");
  CHECK_STR (json_string_value (json_object_get (h, "kid")), kid);
  CHECK_STR (json_string_value (json_object_get (c, "sub")), "app");
  CHECK (json_equal (c, claims));
  json_decref (h);
  json_decref (c);
  h = c = NULL;
  CHECK (auth_jwt_decode (tok, &h, &c, &err) == 0 && json_equal (c, claims));
  json_decref (h);
  json_decref (c);
  CHECK (verify (tok, key) == 0);

  /* no kid */
  char *tok2 = NULL;
  CHECK (auth_jwt_sign (key, NULL, claims, &tok2, &err) == 0);
  h = NULL;
  CHECK (auth_jwt_verify (tok2, key, &h, NULL, &err) == 0 && json_object_get (h, "kid") == NULL);
  json_decref (h);
  free (tok2);

  char *d1 = strchr (tok, '.'), *d2 = strchr (d1 + 1, '.');
  char *head64 = strndup (tok, (size_t)(d1 - tok));
  char *sig64 = strdup (d2 + 1);

  /* modified payload, same header and signature */
  char *evil = b64s ("{\"aud\":\"https://management.azure.com/\",\"exp\":2000000000,\"sub\":\"admin\"}");
  char *t = skiff_strdup_printf ("%s.%s.%s", head64, evil, sig64);
  CHECK (decode_ok (t));
  CHECK (verify (t, key) < 0);
  free (t);
  free (evil);

  /* modified signature */
  t = strdup (tok);
  char *sp = strrchr (t, '.') + 10;
  *sp = *sp == 'A' ? 'B' : 'A';
  CHECK (verify (t, key) < 0);
  free (t);
  /* truncated or missing signature */
  t = strndup (tok, strlen (tok) - 4);
  CHECK (verify (t, key) < 0);
  free (t);
  t = strndup (tok, (size_t)(d2 - tok) + 1);
  CHECK (decode_ok (t));
  CHECK (verify (t, key) < 0);
  free (t);

  /* alg none: unsigned, and even with a valid RSA signature */
  char *none = b64s ("{\"alg\":\"none\",\"typ\":\"JWT\"}");
  t = skiff_strdup_printf ("%s.%.*s.", none, (int)(d2 - d1 - 1), d1 + 1);
  CHECK (decode_ok (t));
  CHECK (verify (t, key) < 0);
  free (t);
  free (none);
  t = raw_token (key, "{\"alg\":\"none\"}", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  /* other algorithms, no alg, alg of the wrong type, alg case */
  t = raw_token (key, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"app\"}");
  CHECK (decode_ok (t));
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"alg\":\"PS256\"}", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"typ\":\"JWT\"}", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"alg\":[\"RS256\"]}", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"alg\":\"rs256\"}", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"alg\":\"RS256\",\"crit\":[\"x\"],\"x\":1}", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  /* the raw builder itself makes acceptable tokens */
  t = raw_token (key, "{\"alg\":\"RS256\"}", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) == 0);
  free (t);

  /* structure */
  CHECK (!decode_ok ("abc.def"));
  t = skiff_strdup_printf ("%s.%.*s", head64, (int)(d2 - d1 - 1), d1 + 1);
  CHECK (verify (t, key) < 0);
  free (t);
  t = skiff_strdup_printf ("%s.x", tok);
  CHECK (!decode_ok (t));
  CHECK (verify (t, key) < 0);
  free (t);
  t = skiff_strdup_printf ("%s.", tok);
  CHECK (verify (t, key) < 0);
  free (t);
  CHECK (!decode_ok (""));
  CHECK (!decode_ok (".."));
  CHECK (!decode_ok (NULL));
  CHECK (verify (NULL, key) < 0);
  CHECK (verify (tok, NULL) < 0);
  t = skiff_strdup_printf (" %s", tok);
  CHECK (verify (t, key) < 0);
  free (t);

  /* non-object header or claims, bad JSON, duplicate claims */
  t = raw_token (key, "{\"alg\":\"RS256\"}", "[1,2]");
  CHECK (!decode_ok (t));
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"alg\":\"RS256\"}", "\"sub\"");
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "[\"RS256\"]", "{\"sub\":\"app\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"alg\":\"RS256\"}", "{\"sub\":\"app\"");
  CHECK (verify (t, key) < 0);
  free (t);
  t = raw_token (key, "{\"alg\":\"RS256\"}", "{\"sub\":\"app\",\"sub\":\"admin\"}");
  CHECK (verify (t, key) < 0);
  free (t);
  json_t *arr = json_array ();
  char *bad = NULL;
  CHECK (auth_jwt_sign (key, NULL, arr, &bad, &err) < 0 && bad == NULL);
  skiff_error_release (&err);
  json_decref (arr);

  /* size limits */
  char *pad = malloc (AUTH_MAX_JWT_BYTES + 1);
  memset (pad, 'a', AUTH_MAX_JWT_BYTES);
  pad[AUTH_MAX_JWT_BYTES] = '\0';
  json_t *huge = json_pack ("{s:s}", "pad", pad);
  CHECK (auth_jwt_sign (key, NULL, huge, &bad, &err) < 0 && bad == NULL);
  skiff_error_release (&err);
  json_decref (huge);
  pad[11000] = '\0';
  json_t *big = json_pack ("{s:s}", "pad", pad);
  char *bigtok = NULL;
  CHECK (auth_jwt_sign (key, NULL, big, &bigtok, &err) == 0 && strlen (bigtok) <= AUTH_MAX_JWT_BYTES);
  CHECK (verify (bigtok, key) == 0);
  free (bigtok);
  json_decref (big);
  /* well-formed tokens at and just over the limit: {"alg":"RS256"} is 20 characters, a 2048-bit
   * signature 342, the claims {"pad":"a...a"} are L + 10 bytes */
  pad[11000] = 'a';
  size_t L = 11000, at = 0;
  for (; L < AUTH_MAX_JWT_BYTES; L++)
    {
      size_t n = L + 10, b = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
      if (20 + 1 + b + 1 + 342 > AUTH_MAX_JWT_BYTES)
        break;
      at = L;
    }
  char *claims_text = skiff_strdup_printf ("{\"pad\":\"%.*s\"}", (int)at, pad);
  t = raw_token (key, "{\"alg\":\"RS256\"}", claims_text);
  CHECK (strlen (t) <= AUTH_MAX_JWT_BYTES && strlen (t) >= AUTH_MAX_JWT_BYTES - 2);
  CHECK (verify (t, key) == 0);
  free (t);
  free (claims_text);
  claims_text = skiff_strdup_printf ("{\"pad\":\"%.*s\"}", (int)L, pad);
  t = raw_token (key, "{\"alg\":\"RS256\"}", claims_text);
  CHECK (strlen (t) > AUTH_MAX_JWT_BYTES && strlen (t) <= AUTH_MAX_JWT_BYTES + 2);
  CHECK (!decode_ok (t));
  CHECK (verify (t, key) < 0);
  free (t);
  free (claims_text);
  free (pad);

  /* a token signed by another key */
  EVP_PKEY *other = EVP_RSA_gen (2048);
  char *otok = NULL;
  CHECK (auth_jwt_sign (other, kid, claims, &otok, &err) == 0);
  CHECK (verify (otok, key) < 0);
  CHECK (verify (otok, other) == 0);
  CHECK (verify (tok, other) < 0);
  free (otok);
  /* a 3072-bit key: signatures of the wrong length are refused before verifying */
  EVP_PKEY *k3072 = EVP_RSA_gen (3072);
  CHECK (auth_jwt_sign (k3072, NULL, claims, &otok, &err) == 0);
  CHECK (verify (otok, k3072) == 0);
  CHECK (verify (otok, key) < 0);
  free (otok);
  EVP_PKEY_free (k3072);
  /* an EC key is not accepted for RS256 */
  EVP_PKEY *ec = EVP_EC_gen ("P-256");
  CHECK (auth_jwt_sign (ec, NULL, claims, &otok, &err) < 0);
  skiff_error_release (&err);
  CHECK (verify (tok, ec) < 0);
  EVP_PKEY_free (ec);
  EVP_PKEY_free (other);

  /* verify with only the public half */
  unsigned char *der = NULL;
  int der_len = i2d_PUBKEY (key, &der);
  const unsigned char *p = der;
  EVP_PKEY *pub = d2i_PUBKEY (NULL, &p, der_len);
  CHECK (pub != NULL && verify (tok, pub) == 0);
  EVP_PKEY_free (pub);
  OPENSSL_free (der);

  free (head64);
  free (sig64);
  free (tok);
  free (kid);
  json_decref (claims);
}

/* --- secrets ------------------------------------------------------------------- */

static void
test_secret (void)
{
  char *s1 = auth_secret_new (), *s2 = auth_secret_new ();
  CHECK (s1 && strlen (s1) == 40
         && strspn (s1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 40);
  CHECK (s2 && !same (s1, s2));
  char *h1 = auth_secret_hash (s1), *h1b = auth_secret_hash (s1);
  CHECK (h1 && strncmp (h1, "pbkdf2-sha256$50000$", 20) == 0);
  CHECK (h1 && h1b && !same (h1, h1b)); /* salted */
  CHECK (auth_secret_verify (s1, h1) == 1);
  CHECK (auth_secret_verify (s1, h1b) == 1);
  CHECK (auth_secret_verify (s2, h1) == 0);
  CHECK (auth_secret_verify ("", h1) == 0);
  CHECK (auth_secret_verify ("wrong", h1) == 0);
  char *almost = strdup (s1);
  almost[39] = almost[39] == 'A' ? 'B' : 'A';
  CHECK (auth_secret_verify (almost, h1) == 0);
  free (almost);
  CHECK (auth_secret_verify (NULL, h1) == 0);
  CHECK (auth_secret_verify (s1, NULL) == 0);

  /* the stored format: 4 fields */
  char *salt = strchr (h1 + 20, '$') ? h1 + 20 : NULL;
  CHECK (salt != NULL);
  char *hash = strchr (salt, '$') + 1;
  CHECK (strlen (hash) == 43 && (size_t)(hash - salt - 1) == 22);

  /* another iteration count in range, computed independently */
  unsigned char saltb[16] = "0123456789abcdef", out[32];
  PKCS5_PBKDF2_HMAC (s1, (int)strlen (s1), saltb, 16, 1000, EVP_sha256 (), 32, out);
  char *salt64 = auth_b64url_encode (saltb, 16), *out64 = auth_b64url_encode (out, 32);
  char *h1000 = skiff_strdup_printf ("pbkdf2-sha256$1000$%s$%s", salt64, out64);
  CHECK (auth_secret_verify (s1, h1000) == 1);
  CHECK (auth_secret_verify (s2, h1000) == 0);
  PKCS5_PBKDF2_HMAC (s1, (int)strlen (s1), saltb, 16, 999, EVP_sha256 (), 32, out);
  char *out999 = auth_b64url_encode (out, 32);
  char *h999 = skiff_strdup_printf ("pbkdf2-sha256$999$%s$%s", salt64, out999);
  CHECK (auth_secret_verify (s1, h999) == 0); /* right hash, iteration count too low */

  const char *fmts[] = {
    "%.0s%.0s",
    "pbkdf2-sha256$%.0s%.0s",
    "pbkdf2-sha256$$%s$%s",
    "pbkdf2-sha256$1000%s$%s",
    "pbkdf2-sha256$1000$%s%s",
    "pbkdf2-sha256$1000$%s$%s$",
    "pbkdf2-sha256$1000$%s$%s$x",
    "pbkdf2-sha256$+1000$%s$%s",
    "pbkdf2-sha256$01000$%s$%s",
    "pbkdf2-sha256$-1000$%s$%s",
    "pbkdf2-sha256$1000x$%s$%s",
    "pbkdf2-sha256$ 1000$%s$%s",
    "pbkdf2-sha256$10000001$%s$%s",
    "pbkdf2-sha256$99999999999999999999999$%s$%s",
    "pbkdf2-sha256$1000$%s$%s==",
    "pbkdf2-sha256$1000$%s$%.42s",
    "pbkdf2-sha256$1000$%s$%sAAAA",
    "pbkdf2-sha256$1000$%.4s$%s",
    "pbkdf2-sha256$1000$$%s%.0s",
    "pbkdf2-sha256$1000$%s$",
    "pbkdf2-sha1$1000$%s$%s",
    "PBKDF2-SHA256$1000$%s$%s",
    "$pbkdf2-sha256$1000$%s$%s",
    "pbkdf2-sha256$1000$%s+$%s",
  };
  int all_rejected = 1;
  for (size_t i = 0; i < sizeof (fmts) / sizeof (fmts[0]); i++)
    {
      char *st = skiff_strdup_printf (fmts[i], salt64, out64);
      if (auth_secret_verify (s1, st) != 0)
        {
          fprintf (stderr, "accepted: %s\n", st);
          all_rejected = 0;
        }
      free (st);
    }
  CHECK (all_rejected);

  free (h999);
  free (out999);
  free (h1000);
  free (salt64);
  free (out64);
  free (h1);
  free (h1b);
  free (s1);
  free (s2);
}

/* --- PKI ----------------------------------------------------------------------- */

struct pki_files
{
  char *ca_pem, *ca_key, *server_pem, *server_key;
};

static void
pki_read (const char *dir, struct pki_files *f)
{
  char *p;
  p = skiff_strdup_printf ("%s/ca.pem", dir), f->ca_pem = slurp (p), free (p);
  p = skiff_strdup_printf ("%s/ca.key", dir), f->ca_key = slurp (p), free (p);
  p = skiff_strdup_printf ("%s/server.pem", dir), f->server_pem = slurp (p), free (p);
  p = skiff_strdup_printf ("%s/server.key", dir), f->server_key = slurp (p), free (p);
}

static void
pki_free (struct pki_files *f)
{
  free (f->ca_pem);
  free (f->ca_key);
  free (f->server_pem);
  free (f->server_key);
  memset (f, 0, sizeof (*f));
}

static int
pki_ensure (const char *dir, const char *const *dns, const char *const *ips)
{
  skiff_error_t err = NULL;
  int r = auth_pki_ensure (dir, dns, ips, &err);
  if (r < 0)
    {
      CHECK (err != NULL);
      skiff_error_release (&err);
    }
  return r;
}

/* Writes a leaf for localhost/127.0.0.1 signed by the CA in dir, valid for `days`. */
static void
write_short_leaf (const char *dir, int days)
{
  char *p = skiff_strdup_printf ("%s/ca.key", dir);
  EVP_PKEY *ca_key = key_file (p);
  free (p);
  p = skiff_strdup_printf ("%s/ca.pem", dir);
  X509 *ca = cert_n (p, 0);
  free (p);
  EVP_PKEY *key = EVP_RSA_gen (2048);
  X509 *x = X509_new ();
  X509_set_version (x, X509_VERSION_3);
  ASN1_INTEGER_set (X509_get_serialNumber (x), 42);
  X509_gmtime_adj (X509_getm_notBefore (x), -3600);
  X509_time_adj_ex (X509_getm_notAfter (x), days, 0, NULL);
  X509_NAME_add_entry_by_txt (X509_get_subject_name (x), "CN", MBSTRING_ASC, (unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name (x, X509_get_subject_name (ca));
  X509_set_pubkey (x, key);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, ca, x, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  X509_add_ext (x, ext, -1);
  X509_EXTENSION_free (ext);
  X509_sign (x, ca_key, EVP_sha256 ());
  BIO *bio = BIO_new (BIO_s_mem ());
  PEM_write_bio_X509 (bio, x);
  PEM_write_bio_X509 (bio, ca);
  BIO_write (bio, "", 1);
  char *data = NULL;
  BIO_get_mem_data (bio, &data);
  p = skiff_strdup_printf ("%s/server.pem", dir);
  spit (p, data);
  free (p);
  BIO_free (bio);
  bio = BIO_new (BIO_s_mem ());
  PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL);
  BIO_write (bio, "", 1);
  BIO_get_mem_data (bio, &data);
  p = skiff_strdup_printf ("%s/server.key", dir);
  spit (p, data);
  free (p);
  BIO_free (bio);
  X509_free (x);
  X509_free (ca);
  EVP_PKEY_free (key);
  EVP_PKEY_free (ca_key);
}

static void
test_pki (void)
{
  char *dir = skiff_strdup_printf ("%s/data/pki", tmpdir);
  char *ca_pem = skiff_strdup_printf ("%s/ca.pem", dir), *ca_key = skiff_strdup_printf ("%s/ca.key", dir);
  char *server_pem = skiff_strdup_printf ("%s/server.pem", dir);
  char *server_key = skiff_strdup_printf ("%s/server.key", dir);
  const char *const dns[] = { "localhost", "skiff.example", NULL };
  const char *const ips[] = { "127.0.0.1", "::1", "10.1.2.3", NULL };

  CHECK (pki_ensure (dir, dns, ips) == 0);
  struct pki_files f1 = { 0 }, f2 = { 0 }, f3 = { 0 };
  pki_read (dir, &f1);
  CHECK (f1.ca_pem && f1.ca_key && f1.server_pem && f1.server_key);
  CHECK (file_mode (ca_key) == 0600);
  CHECK (file_mode (server_key) == 0600);
  CHECK (file_mode (ca_pem) == 0644);
  CHECK (f1.server_key && strncmp (f1.server_key, "-----BEGIN PRIVATE KEY-----", 27) == 0);

  X509 *ca = cert_n (ca_pem, 0), *leaf = cert_n (server_pem, 0), *chain = cert_n (server_pem, 1);
  EVP_PKEY *cakey = key_file (ca_key), *leafkey = key_file (server_key);
  CHECK (ca && leaf && chain && cakey && leafkey);
  CHECK (X509_cmp (ca, chain) == 0);
  CHECK (X509_check_ca (ca) == 1);
  CHECK (X509_check_private_key (ca, cakey) == 1);
  CHECK (X509_check_private_key (leaf, leafkey) == 1);
  CHECK (X509_verify (leaf, X509_get0_pubkey (ca)) == 1);
  CHECK (X509_verify (ca, X509_get0_pubkey (ca)) == 1);
  CHECK (X509_check_ca (leaf) == 0);
  char cn[128] = "";
  X509_NAME_get_text_by_NID (X509_get_subject_name (ca), NID_commonName, cn, sizeof (cn));
  CHECK (strncmp (cn, "skiff local CA ", 15) == 0 && strlen (cn) == 31);
  CHECK (X509_check_host (leaf, "localhost", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1);
  CHECK (X509_check_host (leaf, "SKIFF.example", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1);
  CHECK (X509_check_host (leaf, "other.example", 0, 0, NULL) != 1);
  CHECK (X509_check_ip_asc (leaf, "127.0.0.1", 0) == 1);
  CHECK (X509_check_ip_asc (leaf, "::1", 0) == 1);
  CHECK (X509_check_ip_asc (leaf, "0:0::1", 0) == 1);
  CHECK (X509_check_ip_asc (leaf, "10.1.2.3", 0) == 1);
  CHECK (X509_check_ip_asc (leaf, "10.1.2.4", 0) != 1);
  CHECK (X509_check_purpose (leaf, X509_PURPOSE_SSL_SERVER, 0) == 1);
  CHECK (X509_check_purpose (leaf, X509_PURPOSE_SSL_CLIENT, 0) != 1);
  CHECK (chain_ok (ca, leaf));
  const ASN1_INTEGER *serial = X509_get0_serialNumber (leaf);
  CHECK (serial && ASN1_STRING_length (serial) == 16);
  /* validity: about 2 years for the leaf, 10 for the CA, started an hour ago */
  int days = 0, secs = 0;
  ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (leaf));
  CHECK (days >= 729 && days <= 730);
  ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (ca));
  CHECK (days >= 3649 && days <= 3650);
  ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notBefore (leaf));
  CHECK (days == 0 && secs <= -3590 && secs >= -3610);

  /* second call: nothing changes */
  CHECK (pki_ensure (dir, dns, ips) == 0);
  pki_read (dir, &f2);
  CHECK (same (f1.ca_pem, f2.ca_pem) && same (f1.ca_key, f2.ca_key));
  CHECK (same (f1.server_pem, f2.server_pem) && same (f1.server_key, f2.server_key));
  pki_free (&f2);
  /* a subset of the names is covered too */
  const char *const dns_sub[] = { "LOCALHOST", NULL };
  const char *const ips_sub[] = { "0:0:0:0:0:0:0:1", NULL };
  CHECK (pki_ensure (dir, dns_sub, ips_sub) == 0);
  pki_read (dir, &f2);
  CHECK (same (f1.server_pem, f2.server_pem));
  pki_free (&f2);

  /* a new name: the leaf is re-issued by the same CA */
  const char *const dns2[] = { "localhost", "skiff.example", "new.example", NULL };
  CHECK (pki_ensure (dir, dns2, ips) == 0);
  pki_read (dir, &f2);
  CHECK (same (f1.ca_pem, f2.ca_pem) && same (f1.ca_key, f2.ca_key));
  CHECK (!same (f1.server_pem, f2.server_pem) && !same (f1.server_key, f2.server_key));
  X509 *leaf2 = cert_n (server_pem, 0);
  CHECK (leaf2 && X509_verify (leaf2, X509_get0_pubkey (ca)) == 1);
  CHECK (X509_check_host (leaf2, "new.example", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1);
  CHECK (X509_check_host (leaf2, "localhost", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1);
  CHECK (X509_check_ip_asc (leaf2, "::1", 0) == 1);
  CHECK (X509_cmp (leaf, leaf2) != 0);
  CHECK (chain_ok (ca, leaf2));
  X509_free (leaf2);
  pki_free (&f2);
  /* a new IP address too */
  const char *const ips2[] = { "127.0.0.1", "::1", "10.1.2.3", "fd00::5", NULL };
  pki_read (dir, &f2);
  CHECK (pki_ensure (dir, dns2, ips2) == 0);
  pki_read (dir, &f3);
  CHECK (same (f2.ca_pem, f3.ca_pem) && !same (f2.server_pem, f3.server_pem));
  leaf2 = cert_n (server_pem, 0);
  CHECK (leaf2 && X509_check_ip_asc (leaf2, "fd00::5", 0) == 1);
  X509_free (leaf2);
  pki_free (&f2);
  pki_free (&f3);

  /* a leaf that ends within 30 days is replaced; one with 60 days left is kept */
  write_short_leaf (dir, 60);
  pki_read (dir, &f2);
  CHECK (pki_ensure (dir, dns_sub, NULL) == 0);
  pki_read (dir, &f3);
  CHECK (same (f2.server_pem, f3.server_pem));
  pki_free (&f2);
  pki_free (&f3);
  write_short_leaf (dir, 10);
  pki_read (dir, &f2);
  CHECK (pki_ensure (dir, dns_sub, NULL) == 0);
  pki_read (dir, &f3);
  CHECK (same (f2.ca_pem, f3.ca_pem) && !same (f2.server_pem, f3.server_pem));
  leaf2 = cert_n (server_pem, 0);
  ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (leaf2));
  CHECK (days >= 729);
  X509_free (leaf2);
  pki_free (&f2);
  pki_free (&f3);

  /* a leaf not signed by the CA (self-signed, right names) is replaced */
  {
    skiff_error_t err = NULL;
    char *k = NULL, *c = NULL;
    CHECK (auth_cert_self_signed ("localhost", 365, &k, &c, &err) == 0);
    char *both = skiff_strdup_printf ("%s%s", c, f1.ca_pem);
    spit (server_pem, both);
    spit (server_key, k);
    CHECK (pki_ensure (dir, dns_sub, NULL) == 0);
    pki_read (dir, &f2);
    CHECK (!same (f2.server_pem, both) && same (f2.ca_pem, f1.ca_pem));
    leaf2 = cert_n (server_pem, 0);
    CHECK (leaf2 && X509_verify (leaf2, X509_get0_pubkey (ca)) == 1);
    X509_free (leaf2);
    pki_free (&f2);
    free (both);
    free (k);
    free (c);
  }
  /* a leaf whose key file does not match is replaced */
  pki_read (dir, &f2);
  spit (server_key, f1.server_key);
  CHECK (pki_ensure (dir, dns, ips) == 0);
  pki_read (dir, &f3);
  CHECK (!same (f2.server_pem, f3.server_pem) && same (f2.ca_pem, f3.ca_pem));
  pki_free (&f2);
  pki_free (&f3);
  /* server.pem without the CA after the leaf is rewritten */
  pki_read (dir, &f2);
  {
    char *end = strstr (f2.server_pem, "-----END CERTIFICATE-----\n");
    end[strlen ("-----END CERTIFICATE-----\n")] = '\0';
    spit (server_pem, f2.server_pem);
  }
  CHECK (pki_ensure (dir, dns, ips) == 0);
  leaf2 = cert_n (server_pem, 1);
  CHECK (leaf2 && X509_cmp (leaf2, ca) == 0);
  X509_free (leaf2);
  pki_free (&f2);

  /* a broken CA key: a new CA and a new leaf */
  pki_read (dir, &f2);
  spit (ca_key, "garbage\n");
  CHECK (pki_ensure (dir, dns, ips) == 0);
  pki_read (dir, &f3);
  CHECK (!same (f2.ca_pem, f3.ca_pem) && !same (f2.server_pem, f3.server_pem) && !same (f3.ca_key, "garbage\n"));
  X509 *ca2 = cert_n (ca_pem, 0);
  leaf2 = cert_n (server_pem, 0);
  CHECK (ca2 && leaf2 && X509_verify (leaf2, X509_get0_pubkey (ca2)) == 1);
  CHECK (X509_verify (leaf2, X509_get0_pubkey (ca)) != 1);
  CHECK (chain_ok (ca2, leaf2));
  ERR_clear_error ();
  X509_free (leaf2);
  pki_free (&f2);
  pki_free (&f3);
  /* a missing CA certificate: same */
  unlink (ca_pem);
  CHECK (pki_ensure (dir, dns, ips) == 0);
  X509 *ca3 = cert_n (ca_pem, 0);
  CHECK (ca3 && X509_cmp (ca2, ca3) != 0);
  leaf2 = cert_n (server_pem, 0);
  CHECK (leaf2 && X509_verify (leaf2, X509_get0_pubkey (ca3)) == 1);
  X509_free (leaf2);
  X509_free (ca3);
  X509_free (ca2);

  /* invalid requests */
  const char *const bad_dns[] = { "bad name", NULL };
  const char *const bad_dns2[] = { "", NULL };
  const char *const bad_ip[] = { "300.1.1.1", NULL };
  const char *const bad_ip2[] = { "localhost", NULL };
  CHECK (pki_ensure (dir, bad_dns, NULL) < 0);
  CHECK (pki_ensure (dir, bad_dns2, NULL) < 0);
  CHECK (pki_ensure (dir, dns, bad_ip) < 0);
  CHECK (pki_ensure (dir, NULL, bad_ip2) < 0);
  CHECK (pki_ensure (dir, NULL, NULL) < 0);
  /* an IP-only certificate */
  char *dir2 = skiff_strdup_printf ("%s/ipo", tmpdir);
  CHECK (pki_ensure (dir2, NULL, ips) == 0);
  free (dir2);

  pki_free (&f1);
  X509_free (ca);
  X509_free (leaf);
  X509_free (chain);
  EVP_PKEY_free (cakey);
  EVP_PKEY_free (leafkey);
  free (dir);
  free (ca_pem);
  free (ca_key);
  free (server_pem);
  free (server_key);
}

/* --- client certificates ------------------------------------------------------- */

static void
test_self_signed (void)
{
  skiff_error_t err = NULL;
  char *k = NULL, *c = NULL;
  CHECK (auth_cert_self_signed ("app-one", 365, &k, &c, &err) == 0);
  CHECK (k && strncmp (k, "-----BEGIN PRIVATE KEY-----", 27) == 0);
  CHECK (c && strncmp (c, "-----BEGIN CERTIFICATE-----", 27) == 0);
  X509 *x = NULL;
  CHECK (auth_cert_parse (c, strlen (c), &x, &err) == 0 && x != NULL);
  BIO *bio = BIO_new_mem_buf (k, -1);
  EVP_PKEY *key = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
  BIO_free (bio);
  CHECK (key && EVP_PKEY_is_a (key, "RSA") && EVP_PKEY_get_bits (key) == 2048);
  CHECK (X509_check_private_key (x, key) == 1);
  char cn[128] = "";
  X509_NAME_get_text_by_NID (X509_get_subject_name (x), NID_commonName, cn, sizeof (cn));
  CHECK_STR (cn, "app-one");
  CHECK (X509_check_purpose (x, X509_PURPOSE_SSL_CLIENT, 0) == 1);
  CHECK (X509_verify (x, X509_get0_pubkey (x)) == 1);
  int days = 0, secs = 0;
  ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (x));
  CHECK (days >= 364 && days <= 365);
  char *x5t = auth_cert_x5t (x), *x5t2 = auth_cert_x5t (x);
  CHECK (x5t && strlen (x5t) == 27);
  CHECK_STR (x5t, x5t2);
  /* x5t is the SHA-1 of the DER */
  unsigned char *der = NULL;
  int der_len = i2d_X509 (x, &der);
  unsigned char md[20];
  EVP_Digest (der, (size_t)der_len, md, NULL, EVP_sha1 (), NULL);
  char *want = auth_b64url_encode (md, 20);
  CHECK_STR (x5t, want);
  free (want);
  OPENSSL_free (der);

  /* the client-assertion flow: sign with the key, verify with the certificate's public key */
  json_t *claims = json_pack ("{s:s}", "iss", "app-one");
  char *tok = NULL;
  CHECK (auth_jwt_sign (key, x5t, claims, &tok, &err) == 0);
  CHECK (verify (tok, X509_get0_pubkey (x)) == 0);
  json_decref (claims);
  free (tok);

  /* msal-node signs assertions PS256 and names the certificate by x5t#S256 */
  {
    char *h = b64s ("{\"alg\":\"PS256\",\"typ\":\"JWT\"}"), *cl = b64s ("{\"iss\":\"app-one\"}");
    char *input = skiff_strdup_printf ("%s.%s", h, cl);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new ();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[512];
    size_t sig_len = sizeof (sig);
    CHECK (EVP_DigestSignInit (mctx, &pctx, EVP_sha256 (), NULL, key) == 1
           && EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) == 1
           && EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, 32) == 1
           && EVP_DigestSign (mctx, sig, &sig_len, (unsigned char *)input, strlen (input)) == 1);
    EVP_MD_CTX_free (mctx);
    char *sg = auth_b64url_encode (sig, sig_len);
    char *ps = skiff_strdup_printf ("%s.%s", input, sg);
    json_t *hd = NULL, *cc = NULL;
    CHECK (auth_jwt_verify_assertion (ps, X509_get0_pubkey (x), &hd, &cc, &err) == 0);
    CHECK_STR (json_string_value (json_object_get (cc, "iss")), "app-one");
    json_decref (hd);
    json_decref (cc);
    CHECK (verify (ps, X509_get0_pubkey (x)) < 0); /* never for skiffd's own tokens */
    ps[strlen (ps) - 2] = ps[strlen (ps) - 2] == 'A' ? 'B' : 'A';
    CHECK (auth_jwt_verify_assertion (ps, X509_get0_pubkey (x), NULL, NULL, &err) < 0);
    skiff_error_release (&err);
    char *s256 = auth_cert_x5t_s256 (x);
    unsigned char md256[32];
    unsigned char *der2 = NULL;
    int der2_len = i2d_X509 (x, &der2);
    EVP_Digest (der2, (size_t)der2_len, md256, NULL, EVP_sha256 (), NULL);
    char *want256 = auth_b64url_encode (md256, 32);
    CHECK (s256 && strlen (s256) == 43);
    CHECK_STR (s256, want256);
    OPENSSL_free (der2);
    free (want256), free (s256), free (h), free (cl), free (input), free (sg), free (ps);
  }

  /* a second certificate differs */
  char *k2 = NULL, *c2 = NULL;
  CHECK (auth_cert_self_signed ("app-one", 1, &k2, &c2, &err) == 0);
  X509 *y = NULL;
  CHECK (auth_cert_parse (c2, strlen (c2), &y, &err) == 0);
  char *y5t = auth_cert_x5t (y);
  CHECK (y5t && !same (x5t, y5t));
  CHECK (X509_check_private_key (y, key) != 1);
  ERR_clear_error ();
  free (y5t);
  X509_free (y);
  free (k2);
  free (c2);

  /* bad arguments and input */
  CHECK (auth_cert_self_signed ("", 365, &k2, &c2, &err) < 0);
  skiff_error_release (&err);
  CHECK (auth_cert_self_signed ("x", 0, &k2, &c2, &err) < 0);
  skiff_error_release (&err);
  CHECK (auth_cert_self_signed (NULL, 30, &k2, &c2, &err) < 0);
  skiff_error_release (&err);
  X509 *z = NULL;
  CHECK (auth_cert_parse ("not a cert", 10, &z, &err) < 0 && z == NULL);
  skiff_error_release (&err);
  CHECK (auth_cert_parse (k, strlen (k), &z, &err) < 0 && z == NULL);
  skiff_error_release (&err);
  CHECK (auth_cert_parse (c, 40, &z, &err) < 0 && z == NULL);
  skiff_error_release (&err);
  size_t big = 64 * 1024 + 1;
  char *huge = malloc (big + strlen (c) + 1);
  memset (huge, '\n', big);
  strcpy (huge + big, c);
  CHECK (auth_cert_parse (huge, strlen (huge), &z, &err) < 0 && z == NULL);
  skiff_error_release (&err);
  free (huge);
  CHECK (auth_cert_x5t (NULL) == NULL);
  CHECK (ERR_peek_error () == 0); /* no stale OpenSSL errors left behind */

  free (x5t);
  free (x5t2);
  EVP_PKEY_free (key);
  X509_free (x);
  free (k);
  free (c);
}

int
main (void)
{
  if (mkdtemp (tmpdir) == NULL)
    {
      perror ("mkdtemp");
      return 1;
    }
  test_b64url ();
  EVP_PKEY *key = test_keys ();
  test_jwt (key);
  EVP_PKEY_free (key);
  test_secret ();
  test_pki ();
  test_self_signed ();
  skiff_error_t err = NULL;
  if (skiff_rm_rf (tmpdir, &err) < 0)
    skiff_error_release (&err);
  TEST_MAIN_END ();
}
