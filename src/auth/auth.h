/* auth.h - the cryptography of skiff's identity service: base64url, RS256 JWTs, service-principal
 * secrets, and the local PKI (CA, server certificate, client certificates).
 *
 * Everything here is pure computation or file creation under a folder it is given; the token
 * endpoint, principals and role checks that use it live in src/api. */
#ifndef SKIFF_AUTH_AUTH_H
#define SKIFF_AUTH_AUTH_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/error.h"

/* Longest token or assertion accepted anywhere (bytes). */
#define AUTH_MAX_JWT_BYTES 16384

/* --- base64url (RFC 4648 §5, no padding) --------------------------------- */

/* Returns a new NUL-terminated base64url string of data (never NULL). */
char *auth_b64url_encode (const void *data, size_t len);
/* Decodes s[0..len) (padding optional); fails on any other character, an impossible length, non-zero
 * trailing bits or input over 2 * AUTH_MAX_JWT_BYTES. *out is owned (NUL-terminated too). */
int auth_b64url_decode (const char *s, size_t len, unsigned char **out, size_t *out_len, skiff_error_t *err);

/* --- keys ------------------------------------------------------------------ */

/* Loads the RSA private key in PEM file `path`, creating a 2048-bit one (mode 0600, written
 * atomically, parent folders created) if the file does not exist. A file that exists but is not an
 * RSA key of at least 2048 bits is an error (it is never replaced). */
int auth_key_load_or_create (const char *path, EVP_PKEY **out, skiff_error_t *err);
/* Returns a stable key id for key (base64url of the SHA-256 of its public key DER, 43 chars);
 * NULL only when key is NULL or unusable. */
char *auth_key_id (EVP_PKEY *key);
/* Returns a JWKS document {"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid","n","e"}]} for key
 * (kid as auth_key_id); NULL when key is not RSA. */
json_t *auth_jwks (EVP_PKEY *key);

/* --- JWT (RS256 only) ------------------------------------------------------ */

/* Signs claims as a compact JWS: header {"alg":"RS256","typ":"JWT","kid":kid} (kid omitted if NULL). */
int auth_jwt_sign (EVP_PKEY *key, const char *kid, json_t *claims, char **out, skiff_error_t *err);
/* Splits and decodes a compact JWT without checking the signature (for finding who signed an
 * assertion). Fails on malformed input or input over AUTH_MAX_JWT_BYTES. Outputs are new references. */
int auth_jwt_decode (const char *token, json_t **header, json_t **claims, skiff_error_t *err);
/* Decodes token and checks that header alg is RS256 and that the signature verifies with pub.
 * Does not look at any claim. Fails (-1, err) on malformed input or a bad signature. */
int auth_jwt_verify (const char *token, EVP_PKEY *pub, json_t **header, json_t **claims, skiff_error_t *err);
/* Like auth_jwt_verify, but also accepts PS256 (RSASSA-PSS with SHA-256, salt of 32 bytes), which
 * msal-node uses for client assertions. For checking assertions, never skiffd's own tokens. */
int auth_jwt_verify_assertion (const char *token, EVP_PKEY *pub, json_t **header, json_t **claims, skiff_error_t *err);

/* --- service-principal secrets --------------------------------------------- */

/* Returns a new random client secret (40 url-safe characters). */
char *auth_secret_new (void);
/* Returns the storable hash of secret: "pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>"
 * (50000 iterations, 16-byte salt, 32-byte hash); NULL when secret is NULL or over 1024 bytes. */
char *auth_secret_hash (const char *secret);
/* Returns 1 when secret matches stored (constant time on the hash), 0 when not or when stored is malformed
 * (iteration counts outside 1000..10,000,000 are malformed). */
int auth_secret_verify (const char *secret, const char *stored);

/* --- PKI ------------------------------------------------------------------- */

/* Makes sure dir holds ca.pem/ca.key (a local CA, 10 years) and server.pem/server.key (a leaf for
 * the given DNS names and IP addresses, signed by that CA, 2 years). Existing files are kept when the
 * leaf covers every name and address and is valid for 30 more days; otherwise the leaf is re-issued
 * from the existing CA. Keys are written 0600 and atomically. NULL-terminated name lists. */
int auth_pki_ensure (const char *dir, const char *const *dns_names, const char *const *ip_addrs, skiff_error_t *err);
/* Parses the first certificate of a PEM text of at most 64 KiB. */
int auth_cert_parse (const char *pem, size_t len, X509 **out, skiff_error_t *err);
/* Returns the base64url SHA-1 thumbprint of cert (JWT "x5t", 27 chars); NULL when cert is NULL. */
char *auth_cert_x5t (X509 *cert);
/* Returns the base64url SHA-256 thumbprint of cert (JWT "x5t#S256", 43 chars); NULL when cert is NULL. */
char *auth_cert_x5t_s256 (X509 *cert);
/* Creates a self-signed RSA-2048 certificate with subject CN=cn valid for `days`, returning the
 * private key and the certificate as PEM text (for service-principal certificate credentials). */
int auth_cert_self_signed (const char *cn, int days, char **key_pem, char **cert_pem, skiff_error_t *err);

#endif
