/* internal.h - helpers shared by the files of src/auth (not part of its interface). */
#ifndef SKIFF_AUTH_INTERNAL_H
#define SKIFF_AUTH_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"

static inline void
auth_pkey_freep (EVP_PKEY **p)
{
  EVP_PKEY_free (*p);
  *p = NULL;
}
static inline void
auth_x509_freep (X509 **p)
{
  X509_free (*p);
  *p = NULL;
}
static inline void
auth_bio_freep (BIO **p)
{
  BIO_free (*p);
  *p = NULL;
}
static inline void
auth_md_ctx_freep (EVP_MD_CTX **p)
{
  EVP_MD_CTX_free (*p);
  *p = NULL;
}
static inline void
auth_bn_freep (BIGNUM **p)
{
  BN_free (*p);
  *p = NULL;
}
static inline void
auth_json_decrefp (json_t **p)
{
  json_decref (*p);
  *p = NULL;
}

#define cleanup_pkey __attribute__ ((cleanup (auth_pkey_freep)))
#define cleanup_x509 __attribute__ ((cleanup (auth_x509_freep)))
#define cleanup_bio __attribute__ ((cleanup (auth_bio_freep)))
#define cleanup_md_ctx __attribute__ ((cleanup (auth_md_ctx_freep)))
#define cleanup_bn __attribute__ ((cleanup (auth_bn_freep)))
#define cleanup_json __attribute__ ((cleanup (auth_json_decrefp)))

/* Sets *err to the formatted message followed by OpenSSL's oldest queued error, and empties
 * this thread's OpenSSL error queue (so a stale entry never confuses later TLS calls). Returns -1. */
static inline int __attribute__ ((format (printf, 2, 3))) auth_ossl_error (skiff_error_t *err, const char *fmt, ...)
{
  char msg[512], ossl[256] = "";
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof (msg), fmt, ap);
  va_end (ap);
  unsigned long e = ERR_peek_error ();
  if (e != 0)
    ERR_error_string_n (e, ossl, sizeof (ossl));
  ERR_clear_error ();
  if (ossl[0])
    return skiff_error_set (err, 0, "%s: %s", msg, ossl);
  return skiff_error_set (err, 0, "%s", msg);
}

/* Generates a new RSA-2048 key (aborts on failure: only an allocation or RNG failure can cause it). */
EVP_PKEY *auth_rsa_generate (void);

/* Returns the contents of a memory BIO as a new NUL-terminated string (aborts on allocation failure). */
char *auth_bio_to_string (BIO *bio);

/* Returns key as a PKCS#8 PEM string, or NULL with err set. */
char *auth_pkey_to_pem (EVP_PKEY *key, skiff_error_t *err);

/* Parses a PEM private key of at most 64 KiB; fails when it is not RSA or EC. */
int auth_pkey_parse (const char *pem, size_t len, EVP_PKEY **out, skiff_error_t *err);

#endif
