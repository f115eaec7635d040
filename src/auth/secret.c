/* secret.c - service-principal client secrets: generation and PBKDF2-HMAC-SHA256 hashes. */
#include "auth.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/cleanup.h"
#include "common/util.h"

#define SECRET_PREFIX "pbkdf2-sha256$"
#define SECRET_ITERATIONS 50000
#define SECRET_SALT_BYTES 16
#define SECRET_HASH_BYTES 32
#define SECRET_MIN_ITERATIONS 1000
#define SECRET_MAX_ITERATIONS 10000000L
/* Longest secret ever hashed or checked; longer input is refused rather than hashed. */
#define SECRET_MAX_BYTES 1024

static void
random_bytes (unsigned char *buf, size_t n)
{
  if (RAND_bytes (buf, (int)n) != 1)
    abort (); /* no randomness: nothing safe can be made */
}

char *
auth_secret_new (void)
{
  unsigned char buf[30]; /* 30 bytes = 40 base64url characters, 240 bits */
  random_bytes (buf, sizeof (buf));
  char *s = auth_b64url_encode (buf, sizeof (buf));
  OPENSSL_cleanse (buf, sizeof (buf));
  return s;
}

static int
pbkdf2 (const char *secret, const unsigned char *salt, size_t salt_len, int iterations, unsigned char *out)
{
  return PKCS5_PBKDF2_HMAC (secret, (int)strlen (secret), salt, (int)salt_len, iterations, EVP_sha256 (),
                            SECRET_HASH_BYTES, out)
                 == 1
             ? 0
             : -1;
}

char *
auth_secret_hash (const char *secret)
{
  if (secret == NULL || strlen (secret) > SECRET_MAX_BYTES)
    return NULL;
  unsigned char salt[SECRET_SALT_BYTES], hash[SECRET_HASH_BYTES];
  random_bytes (salt, sizeof (salt));
  if (pbkdf2 (secret, salt, sizeof (salt), SECRET_ITERATIONS, hash) < 0)
    abort ();
  cleanup_free char *salt64 = auth_b64url_encode (salt, sizeof (salt));
  cleanup_free char *hash64 = auth_b64url_encode (hash, sizeof (hash));
  return skiff_strdup_printf (SECRET_PREFIX "%d$%s$%s", SECRET_ITERATIONS, salt64, hash64);
}

int
auth_secret_verify (const char *secret, const char *stored)
{
  if (secret == NULL || stored == NULL || strlen (secret) > SECRET_MAX_BYTES || strlen (stored) > 512)
    return 0;
  if (strncmp (stored, SECRET_PREFIX, strlen (SECRET_PREFIX)) != 0)
    return 0;
  const char *p = stored + strlen (SECRET_PREFIX);

  /* iterations: plain decimal digits, no sign, no leading zero */
  long iterations = 0;
  const char *q = p;
  if (*q < '1' || *q > '9')
    return 0;
  while (*q >= '0' && *q <= '9')
    {
      iterations = iterations * 10 + (*q - '0');
      if (iterations > SECRET_MAX_ITERATIONS)
        return 0;
      q++;
    }
  if (*q != '$' || iterations < SECRET_MIN_ITERATIONS)
    return 0;

  const char *salt64 = q + 1;
  const char *dollar = strchr (salt64, '$');
  if (dollar == NULL)
    return 0;
  const char *hash64 = dollar + 1;
  if (strchr (hash64, '$') != NULL)
    return 0;

  cleanup_free unsigned char *salt = NULL;
  cleanup_free unsigned char *want = NULL;
  size_t salt_len = 0, want_len = 0;
  skiff_error_t err = NULL;
  if (auth_b64url_decode (salt64, (size_t)(dollar - salt64), &salt, &salt_len, &err) < 0
      || auth_b64url_decode (hash64, strlen (hash64), &want, &want_len, &err) < 0)
    {
      skiff_error_release (&err);
      return 0;
    }
  if (salt_len < 8 || salt_len > 64 || want_len != SECRET_HASH_BYTES)
    return 0;
  unsigned char got[SECRET_HASH_BYTES];
  if (pbkdf2 (secret, salt, salt_len, (int)iterations, got) < 0)
    return 0;
  int ok = CRYPTO_memcmp (got, want, SECRET_HASH_BYTES) == 0;
  OPENSSL_cleanse (got, sizeof (got));
  return ok;
}
